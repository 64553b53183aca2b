"""The emulator behaves like DynamoDB where stockroom depends on it: conflicts from real
overlap, per-partition throttling, DynamoDB's limits and messages, rollback, and many
clients at once. Run: .venv/bin/python -m unittest infra/test_emulator.py
"""

import concurrent.futures
import http.client
import json
import os
import subprocess
import sys
import threading
import time
import unittest
import urllib.request
import uuid

import boto3
import botocore.exceptions
from botocore.config import Config

EMULATOR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "emulator.py")
ON_DEMAND_THROTTLE_START = "Throughput exceeds the current capacity of your table or index."


def start_emulator(*flags):
    process = subprocess.Popen(
        [sys.executable, EMULATOR, "--port", "0", *flags],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    line = process.stdout.readline()
    if not line.startswith("listening on "):
        process.kill()
        raise RuntimeError(f"the emulator did not start: {line}{process.stdout.read()}")

    # Keep draining its output so a traceback cannot block it on a full pipe.
    def drain():
        with process.stdout:
            process.stdout.read()

    threading.Thread(target=drain, daemon=True).start()
    return process, f"http://127.0.0.1:{line.split()[-1]}"


class EmulatorTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.process, cls.endpoint = start_emulator()

    @classmethod
    def tearDownClass(cls):
        cls.process.kill()
        cls.process.wait()

    # --- helpers ---

    def client(self, **config):
        return boto3.client(
            "dynamodb",
            endpoint_url=self.endpoint,
            region_name="us-east-1",
            aws_access_key_id="test",
            aws_secret_access_key="test",
            config=Config(retries={"mode": "standard", "total_max_attempts": 1}, **config),
        )

    def setUp(self):
        self.db = self.client()
        self.table = f"t-{self.id().rsplit('.', 1)[-1]}-{uuid.uuid4().hex[:8]}"
        self.db.create_table(
            TableName=self.table,
            BillingMode="PAY_PER_REQUEST",
            AttributeDefinitions=[
                {"AttributeName": "pk", "AttributeType": "S"},
                {"AttributeName": "sk", "AttributeType": "S"},
            ],
            KeySchema=[
                {"AttributeName": "pk", "KeyType": "HASH"},
                {"AttributeName": "sk", "KeyType": "RANGE"},
            ],
        )

    def tearDown(self):
        self.db.delete_table(TableName=self.table)

    def control(self, path, payload=None):
        data = json.dumps(payload).encode() if payload is not None else None
        request = urllib.request.Request(
            self.endpoint + path, data=data, method="POST" if data else "GET"
        )
        with urllib.request.urlopen(request, timeout=5) as response:
            return json.loads(response.read())

    def configure(self, **settings):
        return self.control(f"/_emulator/tables/{self.table}", settings)

    def stats(self):
        return self.control(f"/_emulator/stats?table={self.table}")

    def key(self, pk, sk="s"):
        return {"pk": {"S": pk}, "sk": {"S": sk}}

    def put(self, pk, sk="s", **attributes):
        return {"Put": {"TableName": self.table, "Item": {**self.key(pk, sk), **attributes}}}

    def decrement(self, pk, sk="s", at_least=1):
        return {
            "Update": {
                "TableName": self.table,
                "Key": self.key(pk, sk),
                "UpdateExpression": "SET n = n - :one",
                "ConditionExpression": "n >= :least",
                "ExpressionAttributeValues": {":one": {"N": "1"}, ":least": {"N": str(at_least)}},
            }
        }

    def item(self, pk, sk="s"):
        return self.db.get_item(
            TableName=self.table, Key=self.key(pk, sk), ConsistentRead=True
        ).get("Item")

    def in_background(self, function):
        pool = concurrent.futures.ThreadPoolExecutor(1)
        self.addCleanup(pool.shutdown)
        return pool.submit(function)

    def assert_error(self, call, code, message=None):
        with self.assertRaises(botocore.exceptions.ClientError) as caught:
            call()
        error = caught.exception.response["Error"]
        self.assertEqual(error["Code"], code, error)
        if message is not None:
            self.assertEqual(error["Message"], message)
        return caught.exception.response

    def reasons(self, response):
        return [(r["Code"], r.get("Message")) for r in response["CancellationReasons"]]

    # --- conflicts ---

    def test_overlapping_transactions_cancel_the_later_one_with_transaction_conflict(self):
        self.configure(transaction_hold_ms=400)
        self.db.put_item(TableName=self.table, Item={**self.key("hot"), "n": {"N": "5"}})
        first = self.in_background(
            lambda: self.client().transact_write_items(
                TransactItems=[self.decrement("hot"), self.put("a")]
            )
        )
        time.sleep(0.15)
        response = self.assert_error(
            lambda: self.db.transact_write_items(
                TransactItems=[self.put("b"), self.decrement("hot")]
            ),
            "TransactionCanceledException",
            "Transaction cancelled, please refer cancellation reasons for specific reasons [None, TransactionConflict]",
        )
        self.assertEqual(
            self.reasons(response),
            [("None", None), ("TransactionConflict", "Transaction is ongoing for the item")],
        )
        first.result(timeout=5)
        self.assertEqual(self.item("hot")["n"], {"N": "4"})
        self.assertIsNone(self.item("b"), "a cancelled transaction writes nothing")
        stats = self.stats()
        self.assertEqual((stats["transactions_attempted"], stats["transactions_committed"]), (2, 1))
        self.assertEqual(stats["transactions_cancelled_conflict"], 1)

    def test_a_single_write_on_an_item_a_transaction_holds_fails_with_transaction_conflict_exception(
        self,
    ):
        self.configure(transaction_hold_ms=400)
        self.db.put_item(TableName=self.table, Item={**self.key("hot"), "n": {"N": "5"}})
        transaction = self.in_background(
            lambda: self.client().transact_write_items(TransactItems=[self.decrement("hot")])
        )
        time.sleep(0.15)
        update = {
            "TableName": self.table,
            "Key": self.key("hot"),
            "UpdateExpression": "SET n = :n",
            "ExpressionAttributeValues": {":n": {"N": "100"}},
        }
        self.assert_error(
            lambda: self.db.update_item(**update),
            "TransactionConflictException",
            "Transaction is ongoing for the item",
        )
        # Another item is not held.
        self.db.put_item(TableName=self.table, Item=self.key("other"))
        transaction.result(timeout=5)
        self.db.update_item(**update)
        self.assertEqual(self.item("hot")["n"], {"N": "100"})
        self.assertEqual(self.stats()["single_write_conflicts"], 1)

    def test_transact_get_items_conflicts_with_a_held_item(self):
        self.configure(transaction_hold_ms=400)
        self.db.put_item(TableName=self.table, Item={**self.key("hot"), "n": {"N": "5"}})
        transaction = self.in_background(
            lambda: self.client().transact_write_items(TransactItems=[self.decrement("hot")])
        )
        time.sleep(0.15)
        gets = [{"Get": {"TableName": self.table, "Key": self.key(pk)}} for pk in ("cold", "hot")]
        response = self.assert_error(
            lambda: self.db.transact_get_items(TransactItems=gets), "TransactionCanceledException"
        )
        self.assertEqual(
            [code for code, _ in self.reasons(response)], ["None", "TransactionConflict"]
        )
        transaction.result(timeout=5)
        self.assertEqual(
            self.db.transact_get_items(TransactItems=gets)["Responses"][1]["Item"]["n"], {"N": "4"}
        )

    def test_with_conflicts_off_overlapping_transactions_both_commit(self):
        self.configure(transaction_hold_ms=400, conflicts=False)
        self.db.put_item(TableName=self.table, Item={**self.key("hot"), "n": {"N": "5"}})
        other = self.client()
        started = time.monotonic()
        first = self.in_background(
            lambda: other.transact_write_items(TransactItems=[self.decrement("hot")])
        )
        time.sleep(0.05)
        self.db.transact_write_items(TransactItems=[self.decrement("hot")])
        first.result(timeout=5)
        self.assertLess(time.monotonic() - started, 0.4, "no holds without conflicts")
        self.assertEqual(self.item("hot")["n"], {"N": "3"})

    # --- throughput ---

    def test_a_partition_beyond_its_write_units_is_throttled_and_others_are_not(self):
        self.configure(partition_wcu=2)
        started, outcomes = time.monotonic(), []
        for i in range(50):
            try:
                self.db.put_item(TableName=self.table, Item=self.key("hot", str(i)))
                outcomes.append("ok")
            except botocore.exceptions.ClientError as e:
                self.assertEqual(e.response["Error"]["Code"], "ThrottlingException")
                self.assertTrue(e.response["Error"]["Message"].startswith(ON_DEMAND_THROTTLE_START))
                outcomes.append("throttled")
                break
        elapsed = time.monotonic() - started
        self.assertEqual(outcomes[-1], "throttled", outcomes)
        self.assertLessEqual(outcomes.count("ok"), 2 + 2 * elapsed + 1, "2 units a second")
        # A transaction costs 2 units per item: the hot partition has not got them back yet.
        response = self.assert_error(
            lambda: self.db.transact_write_items(
                TransactItems=[self.put("cold", "2"), self.put("hot", "x")]
            ),
            "TransactionCanceledException",
        )
        self.assertEqual([code for code, _ in self.reasons(response)], ["None", "ThrottlingError"])
        # Another partition key has its own units.
        self.db.put_item(TableName=self.table, Item=self.key("cold"))
        time.sleep(1.1)
        self.db.put_item(TableName=self.table, Item=self.key("hot", "later"))
        stats = self.stats()
        self.assertEqual(
            (stats["write_throttles"], stats["transactions_cancelled_throttle"]), (2, 1)
        )

    def test_a_partition_beyond_its_read_units_is_throttled(self):
        self.configure(partition_rcu=3)
        for pk in ("hot", "cold"):
            self.db.put_item(TableName=self.table, Item=self.key(pk))
        for reads in range(1, 51):
            try:
                self.item("hot")
            except botocore.exceptions.ClientError as e:
                self.assertEqual(e.response["Error"]["Code"], "ThrottlingException")
                break
        else:
            self.fail("50 consistent reads at 3 units a second were never throttled")
        self.assertGreater(reads, 3)
        # BatchGetItem hands back the hot key unprocessed and reads the cold one.
        out = self.db.batch_get_item(
            RequestItems={
                self.table: {"Keys": [self.key("hot"), self.key("cold")], "ConsistentRead": True}
            }
        )
        self.assertEqual([i["pk"]["S"] for i in out["Responses"][self.table]], ["cold"])
        self.assertEqual(out["UnprocessedKeys"][self.table]["Keys"], [self.key("hot")])
        # A transactional read costs 2 units: the hot partition has none, the cold one does.
        gets = [{"Get": {"TableName": self.table, "Key": self.key(pk)}} for pk in ("cold", "hot")]
        response = self.assert_error(
            lambda: self.db.transact_get_items(TransactItems=gets), "TransactionCanceledException"
        )
        self.assertEqual([code for code, _ in self.reasons(response)], ["None", "ThrottlingError"])
        self.assertEqual(self.stats()["read_throttles"], 3)

    # --- limits ---

    def test_over_100_actions_is_refused_with_dynamodbs_validation_message(self):
        actions = [self.put(f"p{i}") for i in range(101)]
        response = self.assert_error(
            lambda: self.db.transact_write_items(TransactItems=actions), "ValidationException"
        )
        message = response["Error"]["Message"]
        self.assertTrue(
            message.startswith(
                "1 validation error detected: Value '[com.amazonaws.dynamodb.v20120810.TransactWriteItem@"
            )
        )
        self.assertTrue(
            message.endswith(
                "at 'transactItems' failed to satisfy constraint: Member must have length less than or equal to 100"
            )
        )
        self.assertIsNone(self.item("p0"))
        self.db.transact_write_items(TransactItems=actions[:100])
        self.assertIsNotNone(self.item("p99"))
        gets = [{"Get": {"TableName": self.table, "Key": self.key(f"p{i}")}} for i in range(101)]
        self.assert_error(
            lambda: self.db.transact_get_items(TransactItems=gets), "ValidationException"
        )
        self.assertEqual(
            len(self.db.transact_get_items(TransactItems=gets[:100])["Responses"]), 100
        )
        self.assertEqual(self.stats()["limit_refusals"], 2)

    def test_one_item_twice_in_a_transaction_is_refused(self):
        self.assert_error(
            lambda: self.db.transact_write_items(
                TransactItems=[self.put("a"), self.put("b"), self.put("a")]
            ),
            "ValidationException",
            "Transaction request cannot include multiple operations on one item",
        )
        self.assertIsNone(self.item("b"))

    def sized_item(self, pk, size):
        """An item of exactly `size` bytes as DynamoDB counts them."""
        key = self.key(pk)
        overhead = sum(len(name) + len(value["S"]) for name, value in key.items()) + len("blob")
        return {**key, "blob": {"S": "x" * (size - overhead)}}

    def test_items_over_400_kb_are_refused(self):
        self.db.put_item(TableName=self.table, Item=self.sized_item("max", 400 * 1024))
        self.assert_error(
            lambda: self.db.put_item(TableName=self.table, Item=self.sized_item("big", 401 * 1024)),
            "ValidationException",
            "Item size has exceeded the maximum allowed size",
        )
        self.assertIsNone(self.item("big"))
        response = self.assert_error(
            lambda: self.db.transact_write_items(
                TransactItems=[
                    self.put("small"),
                    {"Put": {"TableName": self.table, "Item": self.sized_item("big", 401 * 1024)}},
                ]
            ),
            "TransactionCanceledException",
        )
        self.assertEqual(
            self.reasons(response),
            [
                ("None", None),
                ("ValidationError", "Item size has exceeded the maximum allowed size"),
            ],
        )
        self.assertIsNone(self.item("small"))
        grow = {
            "TableName": self.table,
            "Key": self.key("max"),
            "UpdateExpression": "SET more = :more",
            "ExpressionAttributeValues": {":more": {"S": "y" * 2048}},
        }
        self.assert_error(
            lambda: self.db.update_item(**grow),
            "ValidationException",
            "Item size to update has exceeded the maximum allowed size",
        )
        self.assertNotIn("more", self.item("max"), "a refused update leaves the item as it was")
        self.assert_error(
            lambda: self.db.batch_write_item(
                RequestItems={
                    self.table: [{"PutRequest": {"Item": self.sized_item("big", 401 * 1024)}}]
                }
            ),
            "ValidationException",
            "Item size has exceeded the maximum allowed size",
        )
        self.assertEqual(self.stats()["limit_refusals"], 4)

    def test_a_transaction_over_4_mb_is_refused(self):
        actions = [
            {"Put": {"TableName": self.table, "Item": self.sized_item(f"p{i}", 390 * 1024)}}
            for i in range(11)
        ]
        self.assert_error(
            lambda: self.db.transact_write_items(TransactItems=actions), "ValidationException"
        )
        self.assertIsNone(self.item("p0"))
        self.db.transact_write_items(TransactItems=actions[:10])
        self.assertIsNotNone(self.item("p9"))

    # --- rollback and idempotency ---

    def test_stats_count_items_read_and_the_partition_keys_transactions_name(self):
        for pk in ("a", "b"):
            self.db.put_item(TableName=self.table, Item={**self.key(pk), "n": {"N": "5"}})
        self.item("a")
        self.item("missing")
        self.db.batch_get_item(
            RequestItems={self.table: {"Keys": [self.key("a"), self.key("b"), self.key("c")]}}
        )
        self.db.query(
            TableName=self.table,
            KeyConditionExpression="pk = :pk",
            ExpressionAttributeValues={":pk": {"S": "b"}},
        )
        self.assertEqual(self.stats()["items_read"], 1 + 0 + 2 + 1)
        self.db.transact_write_items(TransactItems=[self.decrement("a"), self.decrement("b")])
        self.assert_error(
            lambda: self.db.transact_write_items(TransactItems=[self.decrement("a", at_least=9)]),
            "TransactionCanceledException",
        )
        self.assertEqual(self.stats()["transactions_by_partition_key"], {"a": 2, "b": 1})

    def test_a_failed_condition_in_a_transaction_shows_the_item_when_asked(self):
        self.db.put_item(TableName=self.table, Item={**self.key("stock"), "n": {"N": "1"}})
        asking = self.decrement("stock", at_least=2)
        asking["Update"]["ReturnValuesOnConditionCheckFailure"] = "ALL_OLD"
        response = self.assert_error(
            lambda: self.db.transact_write_items(TransactItems=[asking, self.put("new")]),
            "TransactionCanceledException",
        )
        reasons = response["CancellationReasons"]
        self.assertEqual(reasons[0]["Item"]["n"], {"N": "1"})
        self.assertNotIn("Item", reasons[1])

    def test_a_cancelled_transaction_leaves_every_item_as_it_was(self):
        self.db.put_item(TableName=self.table, Item={**self.key("stock"), "n": {"N": "1"}})
        self.db.put_item(
            TableName=self.table, Item={**self.key("big"), "blob": {"S": "x" * 400000}}
        )
        grow = {
            "Update": {
                "TableName": self.table,
                "Key": self.key("big"),
                "UpdateExpression": "SET more = :more",
                "ExpressionAttributeValues": {":more": {"S": "y" * 20000}},
            }
        }
        # The update of "big" fails after "stock" and "new" were written: both are undone.
        response = self.assert_error(
            lambda: self.db.transact_write_items(
                TransactItems=[self.decrement("stock"), self.put("new"), grow]
            ),
            "TransactionCanceledException",
        )
        self.assertEqual(
            [code for code, _ in self.reasons(response)], ["None", "None", "ValidationError"]
        )
        self.assertEqual(self.item("stock")["n"], {"N": "1"})
        self.assertIsNone(self.item("new"))
        self.assertNotIn("more", self.item("big"))
        # A failed condition writes nothing either.
        response = self.assert_error(
            lambda: self.db.transact_write_items(
                TransactItems=[self.put("new"), self.decrement("stock", at_least=2)]
            ),
            "TransactionCanceledException",
        )
        self.assertEqual(
            [code for code, _ in self.reasons(response)], ["None", "ConditionalCheckFailed"]
        )
        self.assertIsNone(self.item("new"))
        self.assertEqual(self.stats()["transactions_cancelled_condition"], 1)
        # An update that cannot apply cancels the transaction too.
        unconditional_decrement = self.decrement("absent")
        del unconditional_decrement["Update"]["ConditionExpression"]
        del unconditional_decrement["Update"]["ExpressionAttributeValues"][":least"]
        response = self.assert_error(
            lambda: self.db.transact_write_items(
                TransactItems=[self.put("new"), unconditional_decrement]
            ),
            "TransactionCanceledException",
        )
        self.assertEqual(
            self.reasons(response),
            [
                ("None", None),
                (
                    "ValidationError",
                    "The provided expression refers to an attribute that does not exist in the item",
                ),
            ],
        )
        self.assertIsNone(self.item("new"))
        self.assertIsNone(
            self.item("absent"), "the item the update would have created is undone too"
        )

    def test_a_committed_transaction_retried_with_its_token_takes_effect_once(self):
        self.db.put_item(TableName=self.table, Item={**self.key("stock"), "n": {"N": "5"}})
        token = str(uuid.uuid4())
        for _ in range(3):
            self.db.transact_write_items(
                TransactItems=[self.decrement("stock")], ClientRequestToken=token
            )
        self.assertEqual(self.item("stock")["n"], {"N": "4"})
        self.assert_error(
            lambda: self.db.transact_write_items(
                TransactItems=[self.decrement("stock", at_least=3)], ClientRequestToken=token
            ),
            "IdempotentParameterMismatchException",
        )
        self.assertEqual(self.stats()["idempotent_replays"], 2)

    def test_a_transaction_and_a_query_cost_the_same_on_20_and_on_20000_items(self):
        def median_ms(table, items):
            self.db.create_table(
                TableName=table,
                BillingMode="PAY_PER_REQUEST",
                AttributeDefinitions=[
                    {"AttributeName": "pk", "AttributeType": "S"},
                    {"AttributeName": "sk", "AttributeType": "S"},
                ],
                KeySchema=[
                    {"AttributeName": "pk", "KeyType": "HASH"},
                    {"AttributeName": "sk", "KeyType": "RANGE"},
                ],
            )
            self.addCleanup(self.db.delete_table, TableName=table)
            # Holds off: this measures moto's work, not the configured hold.
            self.control(f"/_emulator/tables/{table}", {"conflicts": False})
            for start in range(0, items, 25):
                puts = [
                    {
                        "PutRequest": {
                            "Item": {
                                "pk": {"S": f"p{i % 200}"},
                                "sk": {"S": str(i)},
                                "n": {"N": "1000"},
                            }
                        }
                    }
                    for i in range(start, min(items, start + 25))
                ]
                self.db.batch_write_item(RequestItems={table: puts})
            self.db.put_item(TableName=table, Item=self.key("solo"))
            transactions, queries = [], []
            for i in range(21):
                decrement = self.decrement("p1", "1")
                decrement["Update"]["TableName"] = table
                started = time.perf_counter()
                self.db.transact_write_items(
                    TransactItems=[
                        decrement,
                        {"Put": {"TableName": table, "Item": self.key("new", str(i))}},
                    ]
                )
                transactions.append((time.perf_counter() - started) * 1000)
                started = time.perf_counter()
                self.db.query(
                    TableName=table,
                    KeyConditionExpression="pk = :p",
                    ExpressionAttributeValues={":p": {"S": "solo"}},
                )
                queries.append((time.perf_counter() - started) * 1000)
            return sorted(transactions)[10], sorted(queries)[10]

        small = median_ms(self.table + "-20", 20)
        large = median_ms(self.table + "-20000", 20000)
        print(
            f"\nmedian 2-item transaction: {small[0]:.1f} ms on 20 items, {large[0]:.1f} ms on 20,000;"
            f" query of one partition: {small[1]:.1f} ms, {large[1]:.1f} ms",
            file=sys.stderr,
        )
        self.assertLess(large[0], 3 * small[0] + 10, "a transaction must not copy the table")
        self.assertLess(
            large[1], 3 * small[1] + 10, "a query must read its partition, not the table"
        )

    def test_a_missing_table_is_answered_as_dynamodb_answers_it(self):
        missing = "missing-" + self.table
        self.assert_error(
            lambda: self.db.put_item(TableName=missing, Item=self.key("a")),
            "ResourceNotFoundException",
        )
        self.assert_error(
            lambda: self.db.transact_write_items(
                TransactItems=[{"Put": {"TableName": missing, "Item": self.key("a")}}]
            ),
            "ResourceNotFoundException",
        )

    # --- control endpoint ---

    def test_settings_are_per_table_and_checked(self):
        self.assertEqual(self.configure(partition_wcu=7)["partition_wcu"], 7)
        self.assertEqual(self.control("/_emulator/tables/some-other-table")["partition_wcu"], 0)
        for bad in ({"partition_wcu": -1}, {"conflicts": "yes"}, {"unknown": 1}):
            with self.assertRaises(urllib.error.HTTPError) as caught:
                self.configure(**bad)
            self.assertEqual(caught.exception.code, 400)

    def queue(self):
        """An SQS client and a queue of this test's own, deleted after it."""
        sqs = boto3.client(
            "sqs",
            endpoint_url=self.endpoint,
            region_name="us-east-1",
            aws_access_key_id="test",
            aws_secret_access_key="test",
        )
        queue = sqs.create_queue(QueueName=self.table)["QueueUrl"]
        self.addCleanup(sqs.delete_queue, QueueUrl=queue)
        return sqs, queue

    def test_an_sqs_long_poll_does_not_stall_the_table(self):
        sqs, queue = self.queue()
        poll = self.in_background(lambda: sqs.receive_message(QueueUrl=queue, WaitTimeSeconds=3))
        time.sleep(0.2)
        started = time.monotonic()
        for i in range(5):
            self.db.put_item(TableName=self.table, Item=self.key(str(i)))
        self.assertLess(time.monotonic() - started, 1.5, "DynamoDB waited for the long poll")
        self.assertFalse(poll.done())
        sqs.send_message(QueueUrl=queue, MessageBody="hello")
        self.assertEqual([m["Body"] for m in poll.result(timeout=5).get("Messages", [])], ["hello"])

    def test_every_call_is_counted_by_service_and_operation(self):
        sqs, queue = self.queue()
        before = self.control("/_emulator/stats")["calls"]
        self.db.get_item(TableName=self.table, Key=self.key("a"))
        self.db.get_item(TableName=self.table, Key=self.key("b"))
        sqs.send_message(QueueUrl=queue, MessageBody="hello")
        after = self.control("/_emulator/stats")["calls"]
        added = {call: n - before.get(call, 0) for call, n in after.items()}
        self.assertEqual(added.get("dynamodb:GetItem"), 2)
        self.assertEqual(added.get("sqs:SendMessage"), 1)

    # --- load ---

    def test_a_connection_serves_many_requests(self):
        host, port = self.endpoint.rsplit("/", 1)[-1].split(":")
        connection = http.client.HTTPConnection(host, int(port), timeout=5)
        self.addCleanup(connection.close)
        local_ports = set()
        for _ in range(3):
            connection.request(
                "POST",
                "/",
                body=json.dumps({"TableName": self.table, "Key": self.key("nothing")}),
                headers={
                    "X-Amz-Target": "DynamoDB_20120810.GetItem",
                    "Content-Type": "application/x-amz-json-1.0",
                    "Authorization": "AWS4-HMAC-SHA256 Credential=test/20240101/us-east-1/dynamodb/aws4_request, SignedHeaders=host, Signature=0",
                },
            )
            response = connection.getresponse()
            self.assertEqual(response.status, 200, response.read())
            response.read()
            self.assertNotEqual(response.getheader("Connection"), "close")
            local_ports.add(connection.sock.getsockname()[1])
        self.assertEqual(len(local_ports), 1, "one connection for every request")

    def test_64_clients_on_their_own_connections_get_no_connection_errors(self):
        clients_count, requests_each, budget_s = 64, 25, 45
        for i in range(4):
            self.db.put_item(
                TableName=self.table, Item={**self.key(f"hot{i}"), "n": {"N": "100000"}}
            )
        clients = [
            self.client(max_pool_connections=1, connect_timeout=3.1, read_timeout=30)
            for _ in range(clients_count)
        ]
        deadline = time.monotonic() + budget_s
        outcomes = {"committed": 0, "conflict": 0, "read": 0}
        lock = threading.Lock()

        def run(number):
            client = clients[number]
            for i in range(requests_each):
                if time.monotonic() > deadline:
                    return
                try:
                    if i % 3 == 2:
                        client.get_item(TableName=self.table, Key=self.key(f"hot{i % 4}"))
                        outcome = "read"
                    else:
                        client.transact_write_items(
                            TransactItems=[
                                self.decrement(f"hot{(number + i) % 4}"),
                                self.put(f"c{number}", str(i)),
                            ]
                        )
                        outcome = "committed"
                except botocore.exceptions.ClientError as e:
                    self.assertEqual(e.response["Error"]["Code"], "TransactionCanceledException")
                    outcome = "conflict"
                with lock:
                    outcomes[outcome] += 1

        started = time.monotonic()
        with concurrent.futures.ThreadPoolExecutor(clients_count) as pool:
            for future in [pool.submit(run, n) for n in range(clients_count)]:
                future.result()  # re-raises any connection error
        elapsed = time.monotonic() - started
        total = sum(outcomes.values())
        print(
            f"\n64 clients: {total} requests in {elapsed:.1f}s ({total / elapsed:.0f}/s):"
            f" {outcomes['committed']} committed, {outcomes['conflict']} conflicts, {outcomes['read']} reads",
            file=sys.stderr,
        )
        self.assertEqual(
            total, clients_count * requests_each, "every request ran within the time budget"
        )
        self.assertGreater(outcomes["conflict"], 0, "four hot items under 64 clients must conflict")
        left = sum(100000 - int(self.item(f"hot{i}")["n"]["N"]) for i in range(4))
        self.assertEqual(left, outcomes["committed"], "each committed transaction decremented once")


class FlagsTest(unittest.TestCase):
    def test_flags_set_every_tables_defaults(self):
        process, endpoint = start_emulator(
            "--conflicts", "off", "--transaction-hold-ms", "25", "--partition-wcu", "1000"
        )
        self.addCleanup(process.wait)
        self.addCleanup(process.kill)
        with urllib.request.urlopen(f"{endpoint}/_emulator/tables/any", timeout=5) as response:
            settings = json.loads(response.read())
        self.assertEqual(
            settings,
            {
                "table": "any",
                "transaction_hold_ms": 25,
                "partition_wcu": 1000,
                "partition_rcu": 0,
                "conflicts": False,
            },
        )


if __name__ == "__main__":
    unittest.main()
