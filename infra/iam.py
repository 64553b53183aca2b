"""Each function's IAM policy from template.yaml, enforced on the emulator and checked by use.

The emulator asks `IamGate.check` about every request. A request signed with a
function's logical id as its access key id (`ReserveStockFunction`, ...) is authorized
as AWS authorizes it for that function's role, per IAM action and resource: a
`TransactWriteItems` needs `PutItem`/`UpdateItem`/`DeleteItem`/`ConditionCheckItem` on
each item's table, a `Query` on an index needs `Query` on the index ARN, and so on. A
denied request gets AWS's AccessDeniedException in the service's wire format. Any other
access key (the test harness's own) is unrestricted.

Every (action, resource) a function was allowed or denied is recorded; `usage()` returns
it, and `infra/iam-check USAGE.json` compares it with the policies both ways: a call the
policy does not allow fails, and so does a grant that no call used.

Resources are compared in a logical space: the template's one table is
`table/StockTable` whatever its concrete name, a queue is named by its logical id
(queues are created as `<prefix>-<logical id in kebab case>`), in a fixed region and
account. Policies resolve their intrinsic functions into the same space.
"""

import argparse
import copy
import functools
import json
import re
import sys
import threading
import uuid
from pathlib import Path
from urllib.parse import urlparse

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from template_resources import TemplateLoader  # noqa: E402

PARTITION = "aws"
REGION = "us-east-1"
# moto's default account: the concrete ARNs in denial messages name it.
ACCOUNT = "123456789012"

DYNAMODB_TARGET = "DynamoDB_20120810."
SQS_TARGET = "AmazonSQS."

# The SAM policy templates this checker can expand: their actions, as SAM's
# policy_templates.json defines them, and the kind of resource they take.
SAM_POLICY_TEMPLATES = {
    "DynamoDBCrudPolicy": (
        "TableName",
        [
            "dynamodb:GetItem",
            "dynamodb:DeleteItem",
            "dynamodb:PutItem",
            "dynamodb:Scan",
            "dynamodb:Query",
            "dynamodb:UpdateItem",
            "dynamodb:BatchWriteItem",
            "dynamodb:BatchGetItem",
            "dynamodb:DescribeTable",
            "dynamodb:ConditionCheckItem",
        ],
    ),
    "DynamoDBReadPolicy": (
        "TableName",
        [
            "dynamodb:GetItem",
            "dynamodb:Scan",
            "dynamodb:Query",
            "dynamodb:BatchGetItem",
            "dynamodb:DescribeTable",
        ],
    ),
    "DynamoDBWritePolicy": (
        "TableName",
        ["dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:BatchWriteItem"],
    ),
    "SQSSendMessagePolicy": ("QueueName", ["sqs:SendMessage*"]),
    "SQSPollerPolicy": (
        "QueueName",
        [
            "sqs:ChangeMessageVisibility",
            "sqs:ChangeMessageVisibilityBatch",
            "sqs:DeleteMessage",
            "sqs:DeleteMessageBatch",
            "sqs:GetQueueAttributes",
            "sqs:ReceiveMessage",
        ],
    ),
}

# SQS authorizes a batch operation with its single counterpart's action.
SQS_ACTIONS = {
    "SendMessageBatch": "SendMessage",
    "DeleteMessageBatch": "DeleteMessage",
    "ChangeMessageVisibilityBatch": "ChangeMessageVisibility",
}

TRANSACT_WRITE_ACTIONS = {
    "Put": "PutItem",
    "Update": "UpdateItem",
    "Delete": "DeleteItem",
    "ConditionCheck": "ConditionCheckItem",
}


class PolicyError(Exception):
    """template.yaml holds a policy this checker cannot evaluate faithfully."""


# ------------------------------------------------------------------ matching


@functools.lru_cache(maxsize=1024)  # every request matches the same few patterns
def _glob(pattern, flags=0):
    """IAM's wildcards: `*` any run of characters, `?` any one character."""
    parts = (".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.compile("".join(parts), flags | re.DOTALL)


def action_matches(pattern, action):
    """Action names compare without regard to case, as IAM compares them."""
    return _glob(pattern, re.IGNORECASE).fullmatch(action) is not None


def resource_matches(pattern, arn):
    """ARNs compare case-sensitively, component by component (the first five by
    colons, the rest as one, since a resource may itself contain colons)."""
    if pattern == "*":
        return True
    pattern_parts = pattern.split(":", 5)
    arn_parts = arn.split(":", 5)
    if len(pattern_parts) != 6 or len(arn_parts) != 6:
        return False
    return all(_glob(p).fullmatch(a) for p, a in zip(pattern_parts, arn_parts))


# ------------------------------------------------------------------ the template


def kebab(logical_id):
    """`CompensationQueue` -> `compensation-queue`, as infra/src/resources.rs names queues."""
    return re.sub(r"(?<!^)([A-Z])", r"-\1", logical_id).lower()


def table_arn(table):
    return f"arn:{PARTITION}:dynamodb:{REGION}:{ACCOUNT}:table/{table}"


def queue_arn(queue):
    return f"arn:{PARTITION}:sqs:{REGION}:{ACCOUNT}:{queue}"


def short(arn):
    """An ARN of the logical space without its fixed prefix, for listings."""
    for prefix in (table_arn("")[: -len("table/")], queue_arn("")):
        if arn.startswith(prefix):
            return arn[len(prefix) :]
    return arn


class Template:
    """What policies may refer to: the template's tables, queues and parameters."""

    def __init__(self, template):
        resources = template.get("Resources", {})
        self.tables = [k for k, r in resources.items() if r["Type"] == "AWS::DynamoDB::Table"]
        self.queues = [k for k, r in resources.items() if r["Type"] == "AWS::SQS::Queue"]
        self.functions = {
            k: r.get("Properties", {}).get("Policies", [])
            for k, r in resources.items()
            if r["Type"] == "AWS::Serverless::Function"
        }

    def attribute(self, logical_id, name):
        if logical_id in self.tables and name == "Arn":
            return table_arn(logical_id)
        if logical_id in self.queues and name == "Arn":
            return queue_arn(logical_id)
        if logical_id in self.queues and name == "QueueName":
            return logical_id
        raise PolicyError(f"cannot resolve {logical_id}.{name} in a policy")

    def ref(self, name):
        pseudo = {"AWS::Partition": PARTITION, "AWS::Region": REGION, "AWS::AccountId": ACCOUNT}
        if name in pseudo:
            return pseudo[name]
        if name in self.tables:
            return name  # a table's Ref is its name
        raise PolicyError(f"cannot resolve !Ref {name} in a policy")

    def resolve(self, value):
        """A policy value with its intrinsic functions evaluated in the logical space."""
        if isinstance(value, str):
            return value
        if isinstance(value, dict) and len(value) == 1:
            ((function, argument),) = value.items()
            function = function.removeprefix("Fn::")
            if function == "Ref":
                return self.ref(argument)
            if function == "GetAtt":
                logical_id, name = (
                    argument.split(".", 1) if isinstance(argument, str) else argument
                )
                return self.attribute(logical_id, name)
            if function == "Sub":
                text, variables = (argument, {}) if isinstance(argument, str) else argument
                return self.substitute(text, variables)
        raise PolicyError(f"cannot resolve {value!r} in a policy")

    def substitute(self, text, variables):
        def one(match):
            name = match.group(1)
            if name in variables:
                return self.resolve(variables[name])
            if "." in name and not name.startswith("AWS::"):
                return self.attribute(*name.split(".", 1))
            return self.ref(name)

        return re.sub(r"\$\{([^}!]+)\}", one, text)


def _as_list(value):
    return value if isinstance(value, list) else [value]


def statements_of(template, policies):
    """A function's `Policies:` as a list of {"effect", "actions", "resources"}."""
    statements = []
    for policy in policies:
        if isinstance(policy, dict) and "Statement" in policy:
            for statement in policy["Statement"]:
                unsupported = set(statement) - {"Sid", "Effect", "Action", "Resource"}
                if unsupported:
                    raise PolicyError(
                        f"statement {statement.get('Sid', '')!r} uses {sorted(unsupported)},"
                        " which this checker does not evaluate"
                    )
                statements.append(
                    {
                        "effect": statement["Effect"],
                        "actions": [template.resolve(a) for a in _as_list(statement["Action"])],
                        "resources": [
                            template.resolve(r) for r in _as_list(statement["Resource"])
                        ],
                    }
                )
        elif isinstance(policy, dict) and len(policy) == 1 and set(policy) <= set(
            SAM_POLICY_TEMPLATES
        ):
            ((name, arguments),) = policy.items()
            parameter, actions = SAM_POLICY_TEMPLATES[name]
            target = template.resolve(arguments[parameter])
            if parameter == "TableName":
                resources = [table_arn(target), table_arn(target) + "/index/*"]
            else:
                resources = [queue_arn(target)]
            statements.append({"effect": "Allow", "actions": actions, "resources": resources})
        else:
            raise PolicyError(f"unsupported policy {policy!r}: list its statements inline")
    return statements


def load_policies(path):
    """Per function logical id, its statements, and the template they came from."""
    with open(path) as f:
        template = Template(yaml.load(f, Loader=TemplateLoader))
    return template, {
        function: statements_of(template, policies)
        for function, policies in template.functions.items()
    }


def allowed(statements, action, arn):
    """IAM's evaluation for one identity policy: an explicit deny wins, then any allow."""

    def hits(statement):
        return any(action_matches(a, action) for a in statement["actions"]) and any(
            resource_matches(r, arn) for r in statement["resources"]
        )

    if any(s["effect"] == "Deny" and hits(s) for s in statements):
        return False
    return any(s["effect"] == "Allow" and hits(s) for s in statements)


# ------------------------------------------------------------------ requests


class Unattributable(Exception):
    """A request of a known function that the gate cannot map to IAM actions."""


def credential(environ):
    """(access key id, region, service) from a SigV4 Authorization header, or None."""
    match = re.search(
        r"Credential=([^/,\s]+)/[^/]*/([^/]*)/([^/]*)/", environ.get("HTTP_AUTHORIZATION", "")
    )
    return match.groups() if match else None


def dynamodb_authorizations(operation, request):
    """(action, table, index) for every authorization a DynamoDB operation needs."""
    if operation in ("BatchGetItem", "BatchWriteItem"):
        return [(f"dynamodb:{operation}", table, None) for table in request.get("RequestItems", {})]
    if operation in ("TransactWriteItems", "TransactGetItems"):
        needs = []
        for item in request.get("TransactItems", []):
            for kind, spec in item.items():
                action = "GetItem" if kind == "Get" else TRANSACT_WRITE_ACTIONS.get(kind)
                if action is None:
                    raise Unattributable(f"{operation} item {kind}")
                needs.append((f"dynamodb:{action}", spec.get("TableName"), None))
        return needs
    if operation == "ListTables":
        return [("dynamodb:ListTables", None, None)]
    if "TableName" not in request:
        raise Unattributable(f"DynamoDB {operation} without a TableName")
    index = request.get("IndexName") if operation in ("Query", "Scan") else None
    return [(f"dynamodb:{operation}", request["TableName"], index)]


class IamGate:
    """Authorizes requests signed by a function's logical id against its policy."""

    def __init__(self, template, policies):
        self.template = template
        self.policies = policies
        self._lock = threading.Lock()
        self._used = {f: set() for f in policies}
        self._denied = {f: set() for f in policies}

    @classmethod
    def from_template(cls, path):
        return cls(*load_policies(path))

    # -- the logical space

    def logical_table(self, name):
        """Every table is the template's one table; a name may also be given as an ARN."""
        name = name.split(":table/", 1)[-1]
        return self.template.tables[0] if len(self.template.tables) == 1 else name

    def logical_queue(self, name):
        matches = [
            q for q in self.template.queues if name == kebab(q) or name.endswith("-" + kebab(q))
        ]
        return max(matches, key=len) if matches else name

    # -- checking

    def check(self, environ, body):
        """None when the request may proceed, else the denial as (status, headers, body)."""
        identity = credential(environ)
        if identity is None or identity[0] not in self.policies:
            return None
        function, region, scope_service = identity
        target = environ.get("HTTP_X_AMZ_TARGET", "")
        try:
            request = json.loads(body or b"{}")
            if target.startswith(DYNAMODB_TARGET):
                needs = self._dynamodb(target[len(DYNAMODB_TARGET) :], request, region)
                service = "dynamodb"
            elif target.startswith(SQS_TARGET):
                needs = self._sqs(target[len(SQS_TARGET) :], request, region)
                service = "sqs"
            else:
                raise Unattributable(f"request with X-Amz-Target {target!r}")
        except (Unattributable, ValueError, AttributeError, TypeError) as e:
            operation = f"{scope_service}:{target.rsplit('.', 1)[-1]}"
            reason = f"unattributable ({e})"
            return self._deny(function, operation, reason, reason, scope_service)
        denial = None
        for action, logical, concrete in needs:
            if allowed(self.policies[function], action, logical):
                with self._lock:
                    self._used[function].add((action, logical))
            elif denial is None:
                denial = (action, logical, concrete)
            else:
                with self._lock:
                    self._denied[function].add((action, logical))
        if denial is None:
            return None
        action, logical, concrete = denial
        return self._deny(function, action, logical, concrete, service)

    def _dynamodb(self, operation, request, region):
        needs = []
        for action, table, index in dynamodb_authorizations(operation, request):
            if table is None:
                needs.append((action, "*", "*"))
                continue
            concrete_name = table.split(":table/", 1)[-1]
            concrete = f"arn:{PARTITION}:dynamodb:{region}:{ACCOUNT}:table/{concrete_name}"
            logical = table_arn(self.logical_table(table))
            if index is not None:
                concrete += f"/index/{index}"
                logical += f"/index/{index}"
            needs.append((action, logical, concrete))
        return needs

    def _sqs(self, operation, request, region):
        action = "sqs:" + SQS_ACTIONS.get(operation, operation)
        if "QueueUrl" in request:
            path = urlparse(request["QueueUrl"]).path.strip("/").split("/")
            account, name = (path[-2], path[-1]) if len(path) >= 2 else (ACCOUNT, path[-1])
        elif "QueueName" in request:
            account, name = ACCOUNT, request["QueueName"]
        elif operation == "ListQueues":
            return [(action, "*", "*")]
        else:
            raise Unattributable(f"SQS {operation} without a queue")
        concrete = f"arn:{PARTITION}:sqs:{region}:{account}:{name}"
        return [(action, queue_arn(self.logical_queue(name)), concrete)]

    def _deny(self, function, action, logical, concrete, service):
        with self._lock:
            self._denied[function].add((action, logical))
        principal = f"arn:aws:sts::{ACCOUNT}:assumed-role/{function}/{function}"
        # SQS names the action in lower case in its denials.
        named = action.lower() if service == "sqs" else action
        message = (
            f"User: {principal} is not authorized to perform: {named} on resource: "
            f"{concrete} because no identity-based policy allows the {named} action"
        )
        body = {"__type": "com.amazon.coral.service#AccessDeniedException", "Message": message}
        headers = [
            ("Content-Type", "application/x-amz-json-1.0"),
            ("x-amzn-RequestId", str(uuid.uuid4())),
        ]
        if service == "sqs":
            # SQS's JSON protocol carries the query protocol's error code here; the SDK
            # reports `AccessDenied` from it.
            headers.append(("x-amzn-query-error", "AccessDenied;Sender"))
            status = 403
        else:
            status = 400
        return status, headers, json.dumps(body).encode()

    def usage(self):
        with self._lock:
            return {
                function: {
                    "used": sorted([list(p) for p in self._used[function]]),
                    "denied": sorted([list(p) for p in self._denied[function]]),
                }
                for function in self.policies
            }


# ------------------------------------------------------------------ the check


def grants(statements):
    """Every (statement index, action, resource) an Allow statement grants."""
    return [
        (i, action, resource)
        for i, s in enumerate(statements)
        if s["effect"] == "Allow"
        for action in s["actions"]
        for resource in s["resources"]
    ]


def findings(policies, usage):
    """Per function: calls the policy refuses (denied, or not allowed) and unused grants."""
    result = {}
    for function in sorted(set(policies) | set(usage)):
        record = usage.get(function, {"used": [], "denied": []})
        statements = policies.get(function)
        if statements is None:
            result[function] = {"unknown function": [tuple(p) for p in record["used"]]}
            continue
        used = [tuple(p) for p in record["used"]]
        result[function] = {
            "denied": [tuple(p) for p in record["denied"]],
            "not allowed": [(a, r) for a, r in used if not allowed(statements, a, r)],
            "granted but never used": [
                (a, r)
                for _, a, r in grants(statements)
                if not any(action_matches(a, ua) and resource_matches(r, ur) for ua, ur in used)
            ],
        }
    return result


def without(statements, index, field, value):
    """The statements with one action or resource taken out of one statement."""
    mutant = copy.deepcopy(statements)
    mutant[index][field].remove(value)
    if not mutant[index][field]:
        del mutant[index]
    return mutant


def mutants(policies):
    """(description, function, mutated statements) for every single removable grant."""
    for function, statements in sorted(policies.items()):
        for i, s in enumerate(statements):
            if s["effect"] != "Allow":
                continue
            for field in ("actions", "resources"):
                for value in s[field]:
                    yield (
                        f"{function}: without {short(value)} in statement {i + 1}",
                        function,
                        without(statements, i, field, value),
                    )


def report(policies, usage, mutate, out):
    """Prints the comparison; returns the exit status."""
    failed = False
    for function, found in findings(policies, usage).items():
        record = usage.get(function, {"used": [], "denied": []})
        problems = {k: v for k, v in found.items() if v}
        granted = len(grants(policies.get(function, [])))
        status = "FAIL" if problems else "ok"
        print(
            f"{function}: {granted} grants, {len(record['used'])} (action, resource) used,"
            f" {len(record['denied'])} denied: {status}",
            file=out,
        )
        for kind, pairs in problems.items():
            for action, resource in pairs:
                print(f"  {kind}: {action} on {short(resource)}", file=out)
        failed |= bool(problems)
    if mutate:
        total = survived = 0
        for description, function, statements in mutants(policies):
            total += 1
            used = [tuple(p) for p in usage.get(function, {"used": []})["used"]]
            if all(allowed(statements, a, r) for a, r in used):
                survived += 1
                print(f"  mutant survived: {description}", file=out)
        print(
            f"mutants: {total}, each one grant removed; {total - survived} failed the check,"
            f" {survived} survived",
            file=out,
        )
        failed |= survived > 0 or total == 0
    print("iam-check: FAIL" if failed else "iam-check: ok", file=out)
    return 1 if failed else 0


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="iam-check",
        description="Compare the AWS calls recorded per function with template.yaml's policies.",
    )
    parser.add_argument("usage", help="JSON written from IamGate.usage()")
    parser.add_argument(
        "--template", default=str(Path(__file__).resolve().parent.parent / "template.yaml")
    )
    parser.add_argument(
        "--mutate",
        action="store_true",
        help="also remove each granted action and resource in turn and require the check to fail",
    )
    args = parser.parse_args(argv)
    try:
        _, policies = load_policies(args.template)
    except PolicyError as e:
        print(f"iam-check: {e}", file=sys.stderr)
        return 2
    with open(args.usage) as f:
        usage = json.load(f)
    return report(policies, usage, args.mutate, sys.stdout)


if __name__ == "__main__":
    sys.exit(main())
