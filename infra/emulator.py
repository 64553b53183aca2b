"""DynamoDB- and SQS-compatible emulator on loopback: moto's WSGI app, made to behave like
DynamoDB where stockroom depends on it.

- Optimistic concurrency: a transaction holds the items it touches for a while
  (--transaction-hold-ms) before it commits, without blocking anyone; another transaction
  touching a held item is cancelled with a `TransactionConflict` reason, a single write on
  it fails with `TransactionConflictException`. Moto's state is still changed under one
  lock, which serializes what the holds let through.
- Per-partition throughput (token buckets of read and write units per partition key).
- DynamoDB's limits and error messages: 100 actions and 4 MB per transaction, 400 KB per
  item, one item once per transaction.
- Transactions roll back only the items they touched (moto copies whole tables).
- A query reads only its partition, of the table or of an index (moto tests every item of
  the table against an index query's condition).
- ClientRequestToken makes a committed TransactWriteItems idempotent for 10 minutes.
- SQS requests stay concurrent so that long polling does not stall the table.
- HTTP/1.1 with keep-alive, a thread per connection and a 4096-deep accept queue, so
  many clients at once neither reconnect per request nor time out connecting.

Defaults come from the flags; a test overrides them for its own table at run time:
  POST /_emulator/tables/<table>  {"transaction_hold_ms": n, "partition_wcu": n,
                                   "partition_rcu": n, "conflicts": bool}
  GET  /_emulator/tables/<table>  the table's effective settings
  GET  /_emulator/stats?table=<t> counters (all tables without ?table=, with every
                                  AWS call by service and operation, e.g. dynamodb:GetItem)
  GET  /_emulator/iam             the IAM gate's usage (with --iam TEMPLATE)

Prints `listening on <port>` once the socket is bound (port 0 picks a free one).
"""

import argparse
import base64
import copy
import dataclasses
import functools
import hashlib
import http.server
import io
import json
import math
import os
import re
import socket
import socketserver
import sys
import threading
import time
import traceback
import urllib.parse
import uuid
import zlib

import moto.backends as moto_backends
import moto.core.responses as moto_core_responses
import moto.dynamodb.responses as moto_dynamodb_responses
from moto.dynamodb.comparisons import get_filter_expression
from moto.dynamodb.exceptions import (
    ItemSizeToUpdateTooLarge,
    MockValidationException,
    TransactionCanceledException,
    TransactWriteSingleOpException,
)
from moto.dynamodb.models import DynamoDBBackend, dynamodb_backends
from moto.dynamodb.models.dynamo_type import DynamoType, LimitedSizeDict
from moto.dynamodb.models.table import Table
from moto.core import DEFAULT_ACCOUNT_ID
from moto.iam.models import get_account_id_from
from moto.server import DomainDispatcherApplication, create_backend_app

MAX_TRANSACTION_ACTIONS = 100
MAX_TRANSACTION_BYTES = 4 * 1024 * 1024
MAX_ITEM_BYTES = 400 * 1024

ITEM_TOO_LARGE = "Item size has exceeded the maximum allowed size"
ITEM_UPDATE_TOO_LARGE = "Item size to update has exceeded the maximum allowed size"
DUPLICATE_ITEM = "Transaction request cannot include multiple operations on one item"
# AWS documents the 4 MB limit but not the wording of its refusal.
TRANSACTION_TOO_LARGE = "Transaction request cannot be larger than 4 MB"
CONFLICT = "Transaction is ongoing for the item"
CONDITION_FAILED = "The conditional request failed"
ON_DEMAND_THROTTLE = (
    "Throughput exceeds the current capacity of your table or index. DynamoDB is"
    " automatically scaling your table or index so please try again shortly. If"
    " exceptions persist, check if you have a hot key:"
    " https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/bp-partition-key-design.html."
)
PROVISIONED_THROTTLE = (
    "The level of configured provisioned throughput for the table was exceeded."
    " Consider increasing your provisioning level with the UpdateTable API."
)
TOKEN_REUSED = (
    "DynamoDB rejected the request because you retried a request with a different"
    " payload but with an idempotent token that was already used."
)
TOKEN_IN_PROGRESS = "The transaction with the given request token is already in progress."
IDEMPOTENCY_WINDOW_S = 600

DYNAMODB_ERROR = "com.amazonaws.dynamodb.v20120810#"
VALIDATION_ERROR = "com.amazon.coral.validate#"
AVAILABILITY_ERROR = "com.amazon.coral.availability#"
CREDENTIAL_SCOPE = re.compile(r"Credential=[^/,]+/[^/,]+/([^/,]+)/([^/,]+)/")
ACCESS_KEY = re.compile(r"Credential=([^/,]+)/")
KEY_EQUALITY = re.compile(r"(#?[\w.-]+)\s*=\s*(:[\w.-]+)")


# --- DynamoDB's size rules -------------------------------------------------------------


def number_size(text):
    digits = text.lstrip("+-").replace(".", "").lower().split("e")[0].strip("0")
    return (len(digits) + 1) // 2 + 1


def value_size(value):
    ((kind, data),) = value.items()
    if kind == "S":
        return len(data.encode())
    if kind == "N":
        return number_size(data)
    if kind == "B":
        return len(base64.b64decode(data)) if isinstance(data, str) else len(data)
    if kind in ("BOOL", "NULL"):
        return 1
    if kind == "SS":
        return sum(len(s.encode()) for s in data)
    if kind == "NS":
        return sum(number_size(n) for n in data)
    if kind == "BS":
        return sum(value_size({"B": b}) for b in data)
    if kind == "L":
        return 3 + sum(1 + value_size(v) for v in data)
    if kind == "M":
        return 3 + sum(len(k.encode()) + 1 + value_size(v) for k, v in data.items())
    return len(json.dumps(data))


def partition_key_text(value):
    """A partition key's value as text: the string itself, or its JSON."""
    return value.get("S") if "S" in value else json.dumps(value, sort_keys=True)


def items_in(response):
    """How many items a successful read answered with (GetItem, Query, BatchGetItem)."""
    if response[0] != 200:
        return 0
    answer = json.loads(response[2])
    if "Item" in answer:
        return 1
    if "Items" in answer:
        return len(answer["Items"])
    return sum(len(items) for items in answer.get("Responses", {}).values())


def item_size(attributes):
    """An item's size as DynamoDB counts it: names plus values, in bytes."""
    return sum(len(name.encode()) + value_size(v) for name, v in attributes.items())


def stored_size(item):
    return item_size(item.to_json()["Attributes"]) if item is not None else 0


# --- Moto, adjusted ---------------------------------------------------------------------


def item_key(table, attributes):
    key = {table.hash_key_attr: attributes[table.hash_key_attr]}
    if table.range_key_attr is not None:
        key[table.range_key_attr] = attributes[table.range_key_attr]
    return key


def restore(table, hash_value, range_value, snapshot):
    if snapshot is None:
        table.delete_item(hash_value, range_value)
    elif range_value is not None:
        table.items[hash_value][range_value] = snapshot
    else:
        table.items[hash_value] = snapshot


def transact_write_items(self, transact_items):
    """Moto's transaction, costing only what it touches: conditions first, then the
    writes, undone item by item if one of them fails."""
    targets = []
    for action in transact_items:
        if len(action) != 1:
            raise TransactWriteSingleOpException()
        op_type, op = next(iter(action.items()))
        table = self.get_table(op["TableName"])
        key = item_key(table, op["Item"]) if op_type == "Put" else op["Key"]
        hash_value, range_value = self.get_keys_value(table, key)
        targets.append((op_type, op, table, key, hash_value, range_value))

    reasons = []
    for op_type, op, table, _, hash_value, range_value in targets:
        current = table.get_item(hash_value, range_value)
        if op_type == "Put" and item_size(op["Item"]) > MAX_ITEM_BYTES:
            reasons.append(("ValidationError", ITEM_TOO_LARGE, None))
            continue
        condition = get_filter_expression(
            op.get("ConditionExpression"),
            op.get("ExpressionAttributeNames"),
            op.get("ExpressionAttributeValues"),
        )
        if condition.expr(current):
            reasons.append((None, None, None))
        else:
            wants_old = op.get("ReturnValuesOnConditionCheckFailure") == "ALL_OLD"
            old = current.to_json()["Attributes"] if wants_old and current else None
            reasons.append(("ConditionalCheckFailed", CONDITION_FAILED, old))
    if any(code for code, _, _ in reasons):
        raise TransactionCanceledException(reasons)

    applied = []
    try:
        for index, (op_type, op, table, key, hash_value, range_value) in enumerate(targets):
            snapshot = copy.deepcopy(table.get_item(hash_value, range_value))
            applied.append((table, hash_value, range_value, snapshot))
            try:
                if op_type == "Put":
                    self.put_item(op["TableName"], op["Item"])
                elif op_type == "Delete":
                    self.delete_item(op["TableName"], key)
                elif op_type == "Update":
                    self.update_item(
                        op["TableName"],
                        key,
                        update_expression=op["UpdateExpression"],
                        expression_attribute_names=op.get("ExpressionAttributeNames"),
                        expression_attribute_values=op.get("ExpressionAttributeValues"),
                    )
            except MockValidationException as e:
                # An action that cannot apply (the item outgrows 400 KB, the update refers
                # to a missing attribute, ...) cancels the transaction, as DynamoDB does.
                reasons = [(None, None, None)] * len(targets)
                reasons[index] = ("ValidationError", e.exception_msg, None)
                raise TransactionCanceledException(reasons)
    except Exception:
        for table, hash_value, range_value, snapshot in reversed(applied):
            restore(table, hash_value, range_value, snapshot)
        raise


moto_update_item = DynamoDBBackend.update_item


def update_item_within_limits(self, table_name, key, *args, **kwargs):
    """Moto's UpdateItem, undone when it fails part-way or the item outgrows 400 KB."""
    table = self.get_table(table_name)
    try:
        hash_value, range_value = self.get_keys_value(table, key)
    except Exception:
        return moto_update_item(self, table_name, key, *args, **kwargs)
    before = copy.deepcopy(table.get_item(hash_value, range_value))
    try:
        item = moto_update_item(self, table_name, key, *args, **kwargs)
        if stored_size(item) > MAX_ITEM_BYTES:
            raise ItemSizeToUpdateTooLarge()
        return item
    except Exception:
        restore(table, hash_value, range_value, before)
        raise


class IndexPartitions:
    """A table's items by the value of an index's hash key, kept until the next write, so
    that an index query reads only its own partition, as DynamoDB does (moto tests every
    item of the table on every index query: a sweep's queries grew with the table's
    history). Used under the moto lock; every write clears them."""

    _built = {}

    @classmethod
    def written(cls):
        cls._built.clear()

    @classmethod
    def of(cls, table, attribute, value):
        key = (id(table), attribute)
        partitions = cls._built.get(key)
        if partitions is None:
            partitions = cls._built[key] = {}
            for partition in table.items.values():
                items = partition.values() if table.range_key_attr else [partition]
                for item in items:
                    found = item.attrs.get(attribute)
                    if found is not None:
                        partitions.setdefault((found.type, str(found.value)), []).append(item)
        return partitions.get((value.type, str(value.value)), [])


class QueryScope:
    """The table as moto's query sees it: only the queried partition for a table query or
    an index query, unsorted (moto sorts the matches itself). Moto's own scope is every item
    in the table, sorted, on every query."""

    def __init__(self, table, hash_key, index_items=None):
        self._table = table
        self._hash_key = hash_key
        self._index_items = index_items

    def __getattr__(self, name):
        return getattr(self._table, name)

    def all_items(self):
        table = self._table
        if self._index_items is not None:
            return list(self._index_items)
        if self._hash_key is None:
            partitions = table.items.values()
        else:
            partitions = [table.items[self._hash_key]] if self._hash_key in table.items else []
        if table.range_key_attr is None:
            return list(partitions)
        return [item for partition in partitions for item in partition.values()]


moto_query = Table.query

# DynamoDB operations that change no item; any other clears the index partitions.
DYNAMODB_READS = frozenset(
    {"GetItem", "BatchGetItem", "Query", "Scan", "TransactGetItems", "DescribeTable"}
)


def query_in_scope(self, hash_key, *args, **kwargs):
    # Moto's signature: index_name is the eighth parameter, after self.
    index_name = args[6] if len(args) > 6 else kwargs.get("index_name")
    if not index_name:
        return moto_query(QueryScope(self, hash_key), hash_key, *args, **kwargs)
    # An index query names its hash key as (attribute, value) pairs.
    conditions = kwargs.get("hash_key_conditions") or []
    index_items = IndexPartitions.of(self, *conditions[0]) if len(conditions) == 1 else None
    return moto_query(QueryScope(self, None, index_items), hash_key, *args, **kwargs)


def patch_moto():
    DynamoDBBackend.transact_write_items = transact_write_items
    Table.query = query_in_scope
    DynamoDBBackend.update_item = update_item_within_limits
    # Item sizes follow DynamoDB's rules here (moto's check is its own and O(n) per attribute).
    LimitedSizeDict.__setitem__ = dict.__setitem__
    moto_dynamodb_responses.TRANSACTION_MAX_ITEMS = MAX_TRANSACTION_ACTIONS
    # Moto lists its package directory and a handler's methods on every request; both are fixed.
    modules = tuple(moto_backends.list_of_moto_modules())
    moto_backends.list_of_moto_modules = lambda: modules
    moto_core_responses.method_names_from_class = functools.cache(
        moto_core_responses.method_names_from_class
    )


# --- Settings and counters --------------------------------------------------------------


@dataclasses.dataclass
class TableSettings:
    transaction_hold_ms: float
    partition_wcu: float
    partition_rcu: float
    conflicts: bool


COUNTERS = (
    "transactions_attempted",
    "transactions_committed",
    "transactions_cancelled_conflict",
    "transactions_cancelled_condition",
    "transactions_cancelled_throttle",
    "single_write_conflicts",
    "read_throttles",
    "write_throttles",
    "limit_refusals",
    "idempotent_replays",
    "items_read",
)


class Stats:
    def __init__(self):
        self._lock = threading.Lock()
        self._tables = {}
        # Per table, how many transaction actions named each partition key: what shows
        # that no transaction touched an item every buyer would share.
        self._transacted = {}

    def add(self, tables, counter, amount=1):
        with self._lock:
            for table in set(tables):
                counts = self._tables.setdefault(table, dict.fromkeys(COUNTERS, 0))
                counts[counter] += amount

    def transacted(self, table, partition_keys):
        with self._lock:
            keys = self._transacted.setdefault(table, {})
            for key in set(partition_keys):
                keys[key] = keys.get(key, 0) + 1

    def of(self, table):
        with self._lock:
            counts = dict(self._tables.get(table, dict.fromkeys(COUNTERS, 0)))
            counts["transactions_by_partition_key"] = dict(self._transacted.get(table, {}))
            return counts

    def all(self):
        with self._lock:
            return {name: dict(counts) for name, counts in self._tables.items()}


class Calls:
    """Every AWS call by service and operation (`dynamodb:GetItem`, `sqs:SendMessage`),
    refused ones too: what a function costs per request in round trips."""

    def __init__(self):
        self._lock = threading.Lock()
        self._counts = {}

    def add(self, call):
        with self._lock:
            self._counts[call] = self._counts.get(call, 0) + 1

    def all(self):
        with self._lock:
            return dict(self._counts)


def call_name(service, target, body):
    """`service:Operation` from the JSON protocol's target or the query protocol's Action."""
    if target:
        return f"{service}:{target.split('.', 1)[-1]}"
    action = urllib.parse.parse_qs(body.decode("utf-8", "replace")).get("Action", ["?"])[0]
    return f"{service}:{action}"


# --- Holds: which items in-flight requests are touching ---------------------------------


class ReadHold:
    def __init__(self, ids):
        self.ids = ids
        self.conflicted = set()


class Holds:
    """Items held by transactions in flight and by single writes while they run. Writes
    win over TransactGetItems: a write to an item a read holds cancels the read."""

    def __init__(self):
        self._lock = threading.Lock()
        self._transactions = {}
        self._single_writes = {}
        self._reads = {}

    def _busy(self, item):
        return item in self._transactions or item in self._single_writes

    def _spoil_reads(self, item):
        for read in self._reads.get(item, ()):
            read.conflicted.add(item)

    def claim_transaction(self, items):
        """Holds every item, or none: returns the positions of the items already held."""
        with self._lock:
            busy = [i for i, item in enumerate(items) if item is not None and self._busy(item)]
            if not busy:
                for item in items:
                    if item is not None:
                        self._transactions[item] = True
                        self._spoil_reads(item)
            return busy

    def release_transaction(self, items):
        with self._lock:
            for item in items:
                self._transactions.pop(item, None)

    def claim_single_write(self, item):
        with self._lock:
            if item in self._transactions:
                return False
            self._single_writes[item] = self._single_writes.get(item, 0) + 1
            self._spoil_reads(item)
            return True

    def release_single_write(self, item):
        with self._lock:
            left = self._single_writes.pop(item) - 1
            if left:
                self._single_writes[item] = left

    def claim_read(self, items):
        with self._lock:
            busy = [i for i, item in enumerate(items) if item is not None and self._busy(item)]
            if busy:
                return busy, None
            read = ReadHold([item for item in items if item is not None])
            for item in read.ids:
                self._reads.setdefault(item, []).append(read)
            return [], read

    def release_read(self, read):
        with self._lock:
            for item in read.ids:
                readers = self._reads.get(item, [])
                readers.remove(read)
                if not readers:
                    del self._reads[item]


# --- Throughput: token buckets per partition key ----------------------------------------


class Throughput:
    """Read and write units per second per (table, index, partition key value), each
    bucket holding at most one second's worth. Used under the moto lock."""

    def __init__(self):
        self._buckets = {}

    def _level(self, partition, rate, now):
        tokens, stamp = self._buckets.get(partition, (rate, now))
        return min(rate, tokens + (now - stamp) * rate)

    def try_charge(self, charges, rate):
        """Charges units per partition if every partition has them; else charges nothing
        and returns the partitions that are short."""
        if rate <= 0:
            return []
        now = time.monotonic()
        levels = {p: self._level(p, rate, now) for p in charges}
        # A request costing more than a full bucket passes when the bucket is full.
        short = [p for p, units in charges.items() if levels[p] < min(units, rate)]
        if not short:
            for partition, units in charges.items():
                self._buckets[partition] = (levels[partition] - units, now)
        return short

    def has_units(self, partition, rate):
        return rate <= 0 or self._level(partition, rate, time.monotonic()) > 0

    def charge(self, partition, units, rate):
        if rate > 0:
            now = time.monotonic()
            self._buckets[partition] = (self._level(partition, rate, now) - units, now)

    def forget_table(self, table_name):
        for partition in [p for p in self._buckets if p[0] == table_name]:
            del self._buckets[partition]


def write_units(size):
    return max(1, math.ceil(size / 1024))


def read_units(size, consistent):
    units = max(1, math.ceil(size / 4096))
    return units if consistent else units / 2


# --- HTTP plumbing ----------------------------------------------------------------------


def json_response(status, payload, content_type="application/x-amz-json-1.0"):
    body = json.dumps(payload).encode()
    headers = [
        ("Content-Type", content_type),
        ("x-amzn-RequestId", str(uuid.uuid4())),
        ("x-amz-crc32", str(zlib.crc32(body))),
    ]
    return status, headers, body


def dynamodb_error(code, message, prefix=DYNAMODB_ERROR, message_field="message", **extra):
    return json_response(400, {"__type": prefix + code, message_field: message, **extra})


def validation_error(message):
    return dynamodb_error("ValidationException", message, prefix=VALIDATION_ERROR)


def hold(settings):
    """Keeps a transaction's items held for the longest hold its tables ask for."""
    hold_ms = max((s.transaction_hold_ms for s in settings if s.conflicts), default=0)
    if hold_ms:
        time.sleep(hold_ms / 1000)


def cancellation(reasons):
    """TransactionCanceledException as DynamoDB sends it: one reason per action, in order;
    `None` (the string) with no message where the action was fine."""
    listed = [
        {"Code": code, "Message": message} if code else {"Code": "None"}
        for code, message in reasons
    ]
    codes = ", ".join(r["Code"] for r in listed)
    return dynamodb_error(
        "TransactionCanceledException",
        f"Transaction cancelled, please refer cancellation reasons for specific reasons [{codes}]",
        message_field="Message",
        CancellationReasons=listed,
    )


def throttle_error(table, kind):
    reason = {"reason": f"Table{kind}KeyRangeThroughputExceeded", "resource": table.table_arn}
    if on_demand(table):
        return dynamodb_error(
            "ThrottlingException",
            ON_DEMAND_THROTTLE,
            prefix=AVAILABILITY_ERROR,
            throttlingReasons=[reason],
        )
    return dynamodb_error(
        "ProvisionedThroughputExceededException", PROVISIONED_THROTTLE, ThrottlingReasons=[reason]
    )


def throttle_reason(table):
    if on_demand(table):
        return ("ThrottlingError", ON_DEMAND_THROTTLE)
    return ("ProvisionedThroughputExceeded", PROVISIONED_THROTTLE)


def on_demand(table):
    return table.billing_mode == "PAY_PER_REQUEST"


def error_type(response):
    status, _, body = response
    if status < 400:
        return None
    try:
        return json.loads(body).get("__type", "").rsplit("#", 1)[-1]
    except ValueError:
        return None


def read_body(environ):
    length = environ.get("CONTENT_LENGTH")
    stream = environ["wsgi.input"]
    if length:
        return stream.read(int(length))
    if environ.get("wsgi.input_terminated"):
        return stream.read()
    return b""


def table_name_of(name):
    """TableName may be an ARN; settings and counters go by name."""
    return name.rsplit("/", 1)[-1] if name.startswith("arn:") else name


class Handler(http.server.BaseHTTPRequestHandler):
    """HTTP/1.1 with keep-alive, one thread per connection, as the SDKs' connection pools
    expect. (Werkzeug's server closes every connection after one response, so every
    request cost a new connection and an accept under load.)"""

    protocol_version = "HTTP/1.1"

    def setup(self):
        super().setup()
        # Headers and body are two writes: without this, Nagle's algorithm and the
        # client's delayed ACK hold the body back for tens of milliseconds.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def read_body(self):
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";", 1)[0], 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def run_wsgi(self):
        body = self.read_body()
        path, _, query = self.path.partition("?")
        host, port = self.server.server_address[:2]
        environ = {
            "REQUEST_METHOD": self.command,
            "SCRIPT_NAME": "",
            "PATH_INFO": urllib.parse.unquote(path, "latin-1"),
            "QUERY_STRING": query,
            "SERVER_NAME": host,
            "SERVER_PORT": str(port),
            "SERVER_PROTOCOL": self.request_version,
            "REMOTE_ADDR": self.client_address[0],
            "CONTENT_TYPE": self.headers.get("Content-Type", ""),
            "CONTENT_LENGTH": str(len(body)),
            "wsgi.version": (1, 0),
            "wsgi.url_scheme": "http",
            "wsgi.input": io.BytesIO(body),
            "wsgi.errors": sys.stderr,
            "wsgi.multithread": True,
            "wsgi.multiprocess": False,
            "wsgi.run_once": False,
        }
        for name, value in self.headers.items():
            key = "HTTP_" + name.upper().replace("-", "_")
            if key not in ("HTTP_CONTENT_TYPE", "HTTP_CONTENT_LENGTH"):
                environ[key] = f"{environ[key]},{value}" if key in environ else value
        response = {}
        chunks = []

        def start_response(status, headers, exc_info=None):
            response["status"], response["headers"] = status, headers
            return chunks.append

        try:
            result = self.server.app(environ, start_response)
            try:
                chunks.extend(result)
            finally:
                if hasattr(result, "close"):
                    result.close()
        except Exception:
            traceback.print_exc()
            response = {
                "status": "500 Internal Server Error",
                "headers": [("Content-Type", "text/plain")],
            }
            chunks = [b"emulator error; see its output"]
        data = b"".join(chunks)
        code, _, reason = response["status"].partition(" ")
        self.send_response(int(code), reason)
        for name, value in response["headers"]:
            if name.lower() not in ("content-length", "connection", "transfer-encoding"):
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = do_PATCH = do_OPTIONS = run_wsgi

    def log_message(self, *args):
        pass


class Server(socketserver.ThreadingMixIn, socketserver.TCPServer):
    """A thread per connection, and a deep accept queue so that a burst of new connections
    waits in the kernel instead of being refused."""

    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 4096

    def __init__(self, address, app):
        self.app = app
        super().__init__(address, Handler)

    def handle_error(self, request, client_address):
        # A client that hangs up mid-request (a timeout, a killed test) is no error here.
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


# --- The emulator -----------------------------------------------------------------------


class Emulator:
    def __init__(self, moto_app, defaults, gate=None):
        self.moto_app = moto_app
        self.defaults = defaults
        self.gate = gate
        self.moto_lock = threading.Lock()
        self.holds = Holds()
        self.throughput = Throughput()
        self.stats = Stats()
        self.calls = Calls()
        self._settings_lock = threading.Lock()
        self._settings = {}
        self._tokens_lock = threading.Lock()
        self._tokens = {}
        self._request = threading.local()

    # WSGI entry point
    def __call__(self, environ, start_response):
        # Read once: the IAM gate, this layer and moto all see the same bytes.
        body = read_body(environ)
        environ["wsgi.input"] = io.BytesIO(body)
        environ["CONTENT_LENGTH"] = str(len(body))
        path = environ.get("PATH_INFO", "")
        if path.startswith("/_emulator/"):
            response = self.control(environ, path, body)
        else:
            response = self.aws(environ, body)
        if response is None:
            return self.moto_app(environ, start_response)
        status, headers, body = response
        headers = [h for h in headers if h[0].lower() != "content-length"]
        headers.append(("Content-Length", str(len(body))))
        start_response(f"{status} {http_reason(status)}", headers)
        return [body]

    def aws(self, environ, body):
        target = environ.get("HTTP_X_AMZ_TARGET", "")
        scope = CREDENTIAL_SCOPE.search(environ.get("HTTP_AUTHORIZATION", ""))
        service = scope.group(2) if scope else ""
        is_dynamodb = target.startswith("DynamoDB_")
        is_sqs = service == "sqs" or target.startswith("AmazonSQS")
        if is_dynamodb or is_sqs:
            self.calls.add(call_name("dynamodb" if is_dynamodb else "sqs", target, body))
        if not is_dynamodb and not (is_sqs and self.gate):
            # SQS without a gate, and everything else: straight to moto, concurrently.
            return None
        if self.gate:
            refusal = self.gate.check(environ, body)
            if refusal is not None:
                return refusal
            environ["wsgi.input"] = io.BytesIO(body)
        if not is_dynamodb:
            return self.call_moto(environ, body)
        return self.dynamodb(environ, body, target.split(".", 1)[-1], scope)

    # Settings
    def settings(self, table_name):
        with self._settings_lock:
            return self._settings.get(table_name, self.defaults)

    def configure(self, table_name, changes):
        fields = {f.name: f.type for f in dataclasses.fields(TableSettings)}
        for name, value in changes.items():
            if name not in fields:
                raise ValueError(f"unknown setting {name!r}; known: {', '.join(fields)}")
            if fields[name] is bool and not isinstance(value, bool):
                raise ValueError(f"{name} must be true or false")
            if fields[name] is float and (
                isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0
            ):
                raise ValueError(f"{name} must be a number >= 0")
        with self._settings_lock:
            current = self._settings.get(table_name, self.defaults)
            self._settings[table_name] = dataclasses.replace(current, **changes)
            return self._settings[table_name]

    # Control endpoints
    def control(self, environ, path, body):
        method = environ.get("REQUEST_METHOD", "GET")
        query = urllib.parse.parse_qs(environ.get("QUERY_STRING", ""))
        if path.startswith("/_emulator/tables/"):
            table_name = urllib.parse.unquote(path[len("/_emulator/tables/") :])
            if not table_name:
                return json_response(404, {"error": "no table named"}, "application/json")
            if method == "POST":
                try:
                    changes = json.loads(body or b"{}")
                    if not isinstance(changes, dict):
                        raise ValueError("expected a JSON object")
                    settings = self.configure(table_name, changes)
                except ValueError as e:
                    return json_response(400, {"error": str(e)}, "application/json")
            else:
                settings = self.settings(table_name)
            return json_response(
                200, {"table": table_name, **dataclasses.asdict(settings)}, "application/json"
            )
        if path == "/_emulator/stats":
            if "table" in query:
                table_name = query["table"][0]
                return json_response(
                    200, {"table": table_name, **self.stats.of(table_name)}, "application/json"
                )
            return json_response(
                200, {"tables": self.stats.all(), "calls": self.calls.all()}, "application/json"
            )
        if path == "/_emulator/iam":
            if self.gate is None:
                return json_response(
                    404,
                    {"error": "the IAM gate is off (start with --iam TEMPLATE)"},
                    "application/json",
                )
            return json_response(200, self.gate.usage(), "application/json")
        return json_response(404, {"error": f"no such endpoint {path}"}, "application/json")

    # Moto
    def call_moto(self, environ, body):
        environ = dict(environ)
        environ["wsgi.input"] = io.BytesIO(body)
        environ["CONTENT_LENGTH"] = str(len(body))
        captured = {}
        chunks = []

        def start_response(status, headers, exc_info=None):
            captured["status"] = int(status.split(" ", 1)[0])
            captured["headers"] = list(headers)
            return chunks.append

        self._request.reached_moto = True
        target = environ.get("HTTP_X_AMZ_TARGET", "")
        if target.startswith("DynamoDB_") and target.split(".", 1)[-1] not in DYNAMODB_READS:
            IndexPartitions.written()  # under the moto lock, as every DynamoDB call is
        result = self.moto_app(environ, start_response)
        try:
            chunks.extend(result)
        finally:
            if hasattr(result, "close"):
                result.close()
        return captured["status"], captured["headers"], b"".join(chunks)

    def backend(self, scope):
        region = scope.group(1) if scope else "us-east-1"
        access_key = ACCESS_KEY.search(scope.string) if scope else None
        account = get_account_id_from(access_key.group(1)) if access_key else DEFAULT_ACCOUNT_ID
        return dynamodb_backends[account][region]

    # DynamoDB
    def dynamodb(self, environ, body, operation, scope):
        handler = {
            "TransactWriteItems": self.transact_write_items,
            "TransactGetItems": self.transact_get_items,
            "PutItem": self.single_write,
            "UpdateItem": self.single_write,
            "DeleteItem": self.single_write,
            "GetItem": self.get_item,
            "Query": self.query,
            "BatchGetItem": self.batch_get_item,
            "BatchWriteItem": self.batch_write_item,
            "DeleteTable": self.delete_table,
        }.get(operation)
        self._request.reached_moto = False
        try:
            request = json.loads(body or b"{}")
            if handler is None or not isinstance(request, dict):
                raise LookupError
            return handler(environ, body, request, self.backend(scope), operation)
        except (ValueError, LookupError, TypeError, AttributeError, StopIteration):
            if self._request.reached_moto:
                raise
            # Malformed, or unknown to this layer: moto gives its own answer.
            with self.moto_lock:
                return self.call_moto(environ, body)

    def table(self, backend, name):
        table = backend.tables.get(table_name_of(name))
        if table is None:
            raise LookupError(name)
        return table

    @staticmethod
    def item_id(table, key):
        parts = [key[table.hash_key_attr]]
        if table.range_key_attr is not None:
            parts.append(key[table.range_key_attr])
        return (table.name, json.dumps(parts, sort_keys=True))

    @staticmethod
    def partition(table, key, index=""):
        return (table.name, index, json.dumps(key[table.hash_key_attr], sort_keys=True))

    @staticmethod
    def current_size(table, key):
        hash_value = DynamoType(key[table.hash_key_attr])
        range_value = DynamoType(key[table.range_key_attr]) if table.range_key_attr else None
        return stored_size(table.get_item(hash_value, range_value))

    def transact_write_items(self, environ, body, request, backend, _):
        actions = request["TransactItems"]
        if len(actions) > MAX_TRANSACTION_ACTIONS:
            return self.too_many_actions(actions, "TransactWriteItem")
        targets = []
        for action in actions:
            op_type, op = next(iter(action.items()))
            table = self.table(backend, op["TableName"])
            key = item_key(table, op["Item"]) if op_type == "Put" else op["Key"]
            targets.append((op_type, op, table, key, self.item_id(table, key)))
        table_names = [table.name for _, _, table, _, _ in targets]
        if len({item for *_, item in targets}) < len(targets):
            self.stats.add(table_names, "limit_refusals")
            return validation_error(DUPLICATE_ITEM)

        token = request.get("ClientRequestToken")
        if not token:
            return self.run_transaction(environ, body, targets, table_names)
        # Scoped to the tables it writes: parallel test processes, each with tables of
        # their own, have been seen to draw the same random token (a fresh-clone run got
        # IdempotentParameterMismatch on a first write); on AWS a client's tokens are its
        # own.
        token = (token, tuple(sorted(set(table_names))))
        digest = hashlib.sha256(json.dumps(actions, sort_keys=True).encode()).digest()
        replay = self.replay(token, digest)
        if replay is not None:
            if replay[0] == 200:
                self.stats.add(table_names, "idempotent_replays")
            return replay
        response = None
        try:
            response = self.run_transaction(environ, body, targets, table_names)
            return response
        finally:
            self.remember(token, digest, response)

    def cancel(self, table_names, failing, counters, reason):
        """Cancels a transaction (one table name per action): `reason(i)` for each failing
        action, `None` for the others, each failing action counted under `counters`."""
        for counter in counters:
            self.stats.add([table_names[i] for i in failing], counter)
        return cancellation(
            [reason(i) if i in failing else (None, None) for i in range(len(table_names))]
        )

    def cancel_conflicts(self, table_names, busy):
        return self.cancel(
            table_names,
            busy,
            ["transactions_cancelled_conflict"],
            lambda i: ("TransactionConflict", CONFLICT),
        )

    def run_transaction(self, environ, body, targets, table_names):
        self.stats.add(table_names, "transactions_attempted")
        for _, _, table, key, _ in targets:
            self.stats.transacted(table.name, [partition_key_text(key[table.hash_key_attr])])
        settings = [self.settings(name) for name in table_names]
        held = [item if s.conflicts else None for (*_, item), s in zip(targets, settings)]
        busy = self.holds.claim_transaction(held)
        if busy:
            return self.cancel_conflicts(table_names, busy)
        try:
            hold(settings)
        finally:
            # The hold is the configured window, not the wait for moto's lock, so that
            # conflict rates do not grow with the emulator's load. Applying under the lock
            # serializes the transaction whatever happens meanwhile.
            self.holds.release_transaction([item for item in held if item is not None])
        with self.moto_lock:
            sizes = [
                item_size(op["Item"]) if op_type == "Put" else self.current_size(table, key)
                for op_type, op, table, key, _ in targets
            ]
            if sum(sizes) > MAX_TRANSACTION_BYTES:
                self.stats.add(table_names, "limit_refusals")
                return validation_error(TRANSACTION_TOO_LARGE)
            # Transactional writes cost two units per KB.
            short = self.charge_transaction(
                [
                    (self.partition(table, key), 2 * write_units(size), s.partition_wcu)
                    for (_, _, table, key, _), size, s in zip(targets, sizes, settings)
                ]
            )
            if short:
                return self.cancel(
                    table_names,
                    short,
                    ["transactions_cancelled_throttle", "write_throttles"],
                    lambda i: throttle_reason(targets[i][2]),
                )
            response = self.call_moto(environ, body)
        self.count_transaction(response, table_names)
        return response

    def too_many_actions(self, actions, kind):
        """DynamoDB's refusal, naming each action as its Java service does (object ids)."""
        listed = ", ".join(
            f"com.amazonaws.dynamodb.v20120810.{kind}@{0x10000001 + i:x}"
            for i in range(len(actions))
        )
        names = []
        for action in actions:
            try:
                ((_, op),) = action.items()
                names.append(table_name_of(op["TableName"]))
            except (ValueError, KeyError, TypeError, AttributeError):
                pass
        self.stats.add(names, "limit_refusals")
        return validation_error(
            f"1 validation error detected: Value '[{listed}]' at 'transactItems' failed to satisfy"
            f" constraint: Member must have length less than or equal to {MAX_TRANSACTION_ACTIONS}"
        )

    def charge_transaction(self, charges):
        """Charges a transaction's (partition, units, rate) per action, all or nothing:
        returns the positions of the actions whose partition is short (none charged then)."""
        by_rate = {}
        for index, (partition, units, rate) in enumerate(charges):
            if rate > 0:
                totals, positions = by_rate.setdefault(rate, ({}, {}))
                totals[partition] = totals.get(partition, 0) + units
                positions.setdefault(partition, []).append(index)
        short = []
        for rate, (totals, positions) in by_rate.items():
            for partition in self.throughput.try_charge(totals, rate):
                short.extend(positions[partition])
        return sorted(short)

    def count_transaction(self, response, table_names):
        kind = error_type(response)
        if kind is None:
            self.stats.add(table_names, "transactions_committed")
        elif kind == "TransactionCanceledException":
            codes = [r.get("Code") for r in json.loads(response[2]).get("CancellationReasons", [])]
            if "ConditionalCheckFailed" in codes:
                self.stats.add(table_names, "transactions_cancelled_condition")
            if "ValidationError" in codes:
                self.stats.add(table_names, "limit_refusals")

    # ClientRequestToken: a committed transaction retried with its token succeeds again
    # without effect, as DynamoDB does for 10 minutes.
    def replay(self, token, digest):
        now = time.monotonic()
        with self._tokens_lock:
            for old in [
                t for t, (_, at, _) in self._tokens.items() if now - at > IDEMPOTENCY_WINDOW_S
            ]:
                del self._tokens[old]
            known = self._tokens.get(token)
            if known is None:
                self._tokens[token] = (digest, now, None)
                return None
        known_digest, _, response = known
        if known_digest != digest:
            return dynamodb_error(
                "IdempotentParameterMismatchException", TOKEN_REUSED, message_field="Message"
            )
        if response is None:
            return dynamodb_error(
                "TransactionInProgressException", TOKEN_IN_PROGRESS, message_field="Message"
            )
        return response

    def remember(self, token, digest, response):
        with self._tokens_lock:
            if response is not None and response[0] == 200:
                self._tokens[token] = (digest, time.monotonic(), response)
            else:
                self._tokens.pop(token, None)

    def transact_get_items(self, environ, body, request, backend, _):
        gets = request["TransactItems"]
        if len(gets) > MAX_TRANSACTION_ACTIONS:
            return self.too_many_actions(gets, "TransactGetItem")
        targets = []
        for get in gets:
            op = get["Get"]
            table = self.table(backend, op["TableName"])
            targets.append((table, op["Key"], self.item_id(table, op["Key"])))
        table_names = [table.name for table, _, _ in targets]
        if len({item for *_, item in targets}) < len(targets):
            self.stats.add(table_names, "limit_refusals")
            return validation_error(DUPLICATE_ITEM)
        self.stats.add(table_names, "transactions_attempted")
        settings = [self.settings(name) for name in table_names]
        held = [item if s.conflicts else None for (*_, item), s in zip(targets, settings)]
        busy, read = self.holds.claim_read(held)
        if busy:
            return self.cancel_conflicts(table_names, busy)
        try:
            hold(settings)
        finally:
            self.holds.release_read(read)
        with self.moto_lock:
            spoiled = [i for i, item in enumerate(held) if item in read.conflicted]
            if spoiled:
                return self.cancel_conflicts(table_names, spoiled)
            sizes = [self.current_size(table, key) for table, key, _ in targets]
            if sum(sizes) > MAX_TRANSACTION_BYTES:
                self.stats.add(table_names, "limit_refusals")
                return validation_error(TRANSACTION_TOO_LARGE)
            # Transactional reads cost two units per 4 KB.
            short = self.charge_transaction(
                [
                    (self.partition(table, key), 2 * read_units(size, True), s.partition_rcu)
                    for (table, key, _), size, s in zip(targets, sizes, settings)
                ]
            )
            if short:
                return self.cancel(
                    table_names,
                    short,
                    ["transactions_cancelled_throttle", "read_throttles"],
                    lambda i: throttle_reason(targets[i][0]),
                )
            response = self.call_moto(environ, body)
        if error_type(response) is None:
            self.stats.add(table_names, "transactions_committed")
            for name in table_names:
                self.stats.add([name], "items_read")
        return response

    def single_write(self, environ, body, request, backend, operation):
        table = self.table(backend, request["TableName"])
        if operation == "PutItem":
            key = item_key(table, request["Item"])
            if item_size(request["Item"]) > MAX_ITEM_BYTES:
                self.stats.add([table.name], "limit_refusals")
                return validation_error(ITEM_TOO_LARGE)
        else:
            key = request["Key"]
        settings = self.settings(table.name)
        item = self.item_id(table, key)
        with self.moto_lock:
            # A single write holds its item while it applies.
            if settings.conflicts and not self.holds.claim_single_write(item):
                self.stats.add([table.name], "single_write_conflicts")
                return dynamodb_error("TransactionConflictException", CONFLICT)
            try:
                if settings.partition_wcu > 0:
                    size = (
                        item_size(request["Item"])
                        if operation == "PutItem"
                        else self.current_size(table, key)
                    )
                    if self.throughput.try_charge(
                        {self.partition(table, key): write_units(size)}, settings.partition_wcu
                    ):
                        self.stats.add([table.name], "write_throttles")
                        return throttle_error(table, "Write")
                response = self.call_moto(environ, body)
            finally:
                if settings.conflicts:
                    self.holds.release_single_write(item)
        if (
            error_type(response) == "ValidationException"
            and ITEM_UPDATE_TOO_LARGE.encode() in response[2]
        ):
            self.stats.add([table.name], "limit_refusals")
        return response

    def get_item(self, environ, body, request, backend, _):
        table = self.table(backend, request["TableName"])
        rate = self.settings(table.name).partition_rcu
        with self.moto_lock:
            if rate > 0:
                key = request["Key"]
                units = read_units(
                    self.current_size(table, key), request.get("ConsistentRead", False)
                )
                if self.throughput.try_charge({self.partition(table, key): units}, rate):
                    self.stats.add([table.name], "read_throttles")
                    return throttle_error(table, "Read")
            response = self.call_moto(environ, body)
        self.stats.add([table.name], "items_read", items_in(response))
        return response

    def query(self, environ, body, request, backend, _):
        table = self.table(backend, request["TableName"])
        rate = self.settings(table.name).partition_rcu
        partition = self.query_partition(table, request) if rate > 0 else None
        with self.moto_lock:
            if partition is None:
                response = self.call_moto(environ, body)
                self.stats.add([table.name], "items_read", items_in(response))
                return response
            # The cost is known once the items are read: refuse when the partition is in
            # debt, charge after.
            if not self.throughput.has_units(partition, rate):
                self.stats.add([table.name], "read_throttles")
                return throttle_error(table, "Read")
            response = self.call_moto(environ, body)
            if response[0] == 200:
                size = sum(item_size(i) for i in json.loads(response[2]).get("Items", []))
                self.throughput.charge(
                    partition, read_units(size, request.get("ConsistentRead", False)), rate
                )
        self.stats.add([table.name], "items_read", items_in(response))
        return response

    def query_partition(self, table, request):
        hash_attr, index = table.hash_key_attr, request.get("IndexName", "")
        if index:
            for candidate in table.global_indexes + table.indexes:
                if candidate.name == index:
                    hash_attr = next(
                        k["AttributeName"] for k in candidate.schema if k["KeyType"] == "HASH"
                    )
        names = request.get("ExpressionAttributeNames", {})
        values = request.get("ExpressionAttributeValues", {})
        for name, value in KEY_EQUALITY.findall(request.get("KeyConditionExpression", "")):
            if names.get(name, name) == hash_attr and value in values:
                return (table.name, index, json.dumps(values[value], sort_keys=True))
        condition = request.get("KeyConditions", {}).get(hash_attr)
        if condition:
            return (
                table.name,
                index,
                json.dumps(condition["AttributeValueList"][0], sort_keys=True),
            )
        return None

    def batch_get_item(self, environ, body, request, backend, operation):
        response = self.batch_get_within_throughput(environ, body, request, backend, operation)
        names = [table_name_of(name) for name in request["RequestItems"]]
        if len(names) == 1:
            self.stats.add(names, "items_read", items_in(response))
        return response

    def batch_get_within_throughput(self, environ, body, request, backend, _):
        """Keys whose partition is out of read units come back in UnprocessedKeys; all of
        them out is a throttling error, as DynamoDB does."""
        requested = request["RequestItems"]
        rates = {name: self.settings(table_name_of(name)).partition_rcu for name in requested}
        if not any(rate > 0 for rate in rates.values()):
            with self.moto_lock:
                return self.call_moto(environ, body)
        with self.moto_lock:
            kept, unprocessed, throttled_table = {}, {}, None
            for name, wanted in requested.items():
                table = self.table(backend, name)
                consistent = wanted.get("ConsistentRead", False)
                for key in wanted["Keys"]:
                    units = read_units(self.current_size(table, key), consistent)
                    if self.throughput.try_charge({self.partition(table, key): units}, rates[name]):
                        unprocessed.setdefault(name, {**wanted, "Keys": []})["Keys"].append(key)
                        throttled_table = table
                        self.stats.add([table.name], "read_throttles")
                    else:
                        kept.setdefault(name, {**wanted, "Keys": []})["Keys"].append(key)
            if not kept:
                return throttle_error(throttled_table, "Read")
            if not unprocessed:
                return self.call_moto(environ, body)
            status, headers, out = self.call_moto(
                environ, json.dumps({**request, "RequestItems": kept}).encode()
            )
        if status != 200:
            return status, headers, out
        result = json.loads(out)
        merged = result.setdefault("UnprocessedKeys", {})
        for name, wanted in unprocessed.items():
            merged.setdefault(name, {**wanted, "Keys": []})["Keys"].extend(wanted["Keys"])
        return json_response(200, result)

    def batch_write_item(self, environ, body, request, backend, _):
        for name, writes in request["RequestItems"].items():
            for write in writes:
                if (
                    "PutRequest" in write
                    and item_size(write["PutRequest"]["Item"]) > MAX_ITEM_BYTES
                ):
                    self.stats.add([table_name_of(name)], "limit_refusals")
                    return validation_error(ITEM_TOO_LARGE)
        with self.moto_lock:
            return self.call_moto(environ, body)

    def delete_table(self, environ, body, request, backend, _):
        with self.moto_lock:
            response = self.call_moto(environ, body)
            if response[0] == 200:
                self.throughput.forget_table(table_name_of(request["TableName"]))
        return response


def http_reason(status):
    return {200: "OK", 400: "Bad Request", 403: "Forbidden", 404: "Not Found"}.get(status, "Status")


def exit_with_parent():
    parent = os.getppid()

    def watch():
        # Soon after the parent: a test runner waits for the output pipes it shares.
        while os.getppid() == parent:
            time.sleep(0.05)
        os._exit(0)

    threading.Thread(target=watch, daemon=True).start()


def main():
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--port", type=int, default=4566)
    parser.add_argument(
        "--exit-with-parent",
        action="store_true",
        help="stop when the process that started this one ends",
    )
    parser.add_argument(
        "--conflicts",
        choices=("on", "off"),
        default="on",
        help="transaction conflicts from overlapping requests (off: no holds, no conflicts)",
    )
    parser.add_argument(
        "--transaction-hold-ms",
        type=float,
        default=10,
        help="how long a transaction holds its items before it commits (default 10)",
    )
    parser.add_argument(
        "--partition-wcu",
        type=float,
        default=0,
        help="write units per second per partition key; AWS allows 1000 (default 0: unlimited)",
    )
    parser.add_argument(
        "--partition-rcu",
        type=float,
        default=0,
        help="read units per second per partition key; AWS allows 3000 (default 0: unlimited)",
    )
    parser.add_argument(
        "--iam",
        metavar="TEMPLATE",
        help="check every DynamoDB and SQS call against the template's policies",
    )
    args = parser.parse_args()
    if args.exit_with_parent:
        exit_with_parent()
    gate = None
    if args.iam:
        import iam  # infra/iam.py, next to this file

        gate = iam.IamGate.from_template(args.iam)
    patch_moto()
    defaults = TableSettings(
        transaction_hold_ms=args.transaction_hold_ms,
        partition_wcu=args.partition_wcu,
        partition_rcu=args.partition_rcu,
        conflicts=args.conflicts == "on",
    )
    app = Emulator(DomainDispatcherApplication(create_backend_app), defaults, gate)
    server = Server(("127.0.0.1", args.port), app)
    print(f"listening on {server.server_address[1]}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    sys.exit(0)


if __name__ == "__main__":
    main()
