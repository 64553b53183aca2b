"""Tests for infra/iam.py: run with `.venv/bin/python -m unittest infra/test_iam.py`."""

import io
import json
import os
import sys
import tempfile
import unittest
from pathlib import Path

import botocore.session
from botocore import parsers

sys.path.insert(0, str(Path(__file__).resolve().parent))
import iam  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent

TEMPLATE = """
Transform: AWS::Serverless-2016-10-31
Resources:
  Everything:
    Type: AWS::Serverless::Function
    Properties:
      Policies:
        - Statement:
            - Effect: Allow
              Action: ["dynamodb:*", "sqs:*"]
              Resource: "*"
  Writer:
    Type: AWS::Serverless::Function
    Properties:
      Policies:
        - Statement:
            - Sid: Table
              Effect: Allow
              Action:
                - dynamodb:GetItem
                - dynamodb:UpdateItem
              Resource: !GetAtt StockTable.Arn
            - Sid: Sweep
              Effect: Allow
              Action: dynamodb:Query
              Resource: !Sub "${StockTable.Arn}/index/sweep"
            - Sid: Queue
              Effect: Allow
              Action: sqs:SendMessage
              Resource: !GetAtt CompensationQueue.Arn
  AnyIndex:
    Type: AWS::Serverless::Function
    Properties:
      Policies:
        - Statement:
            - Effect: Allow
              Action: dynamodb:Query
              Resource: !Sub
                - "arn:${AWS::Partition}:dynamodb:${AWS::Region}:${AWS::AccountId}:table/${T}/index/*"
                - T: !Ref StockTable
            - Effect: Deny
              Action: dynamodb:Query
              Resource: !Sub "${StockTable.Arn}/index/secret"
  Crud:
    Type: AWS::Serverless::Function
    Properties:
      Policies:
        - DynamoDBCrudPolicy:
            TableName: !Ref StockTable
        - SQSSendMessagePolicy:
            QueueName: !GetAtt CompensationQueue.QueueName
  StockTable:
    Type: AWS::DynamoDB::Table
  CompensationQueue:
    Type: AWS::SQS::Queue
  CompensationDeadLetterQueue:
    Type: AWS::SQS::Queue
"""

TABLE = "arn:aws:dynamodb:us-east-1:123456789012:table/StockTable"
QUEUE = "arn:aws:sqs:us-east-1:123456789012:CompensationQueue"
DEAD_LETTER_QUEUE = "arn:aws:sqs:us-east-1:123456789012:CompensationDeadLetterQueue"
QUEUE_URL = "http://127.0.0.1:4566/123456789012/t01abc-compensation-queue"


def environ(key, target, service="dynamodb"):
    return {
        "HTTP_AUTHORIZATION": (
            f"AWS4-HMAC-SHA256 Credential={key}/20261122/us-east-1/{service}/aws4_request, "
            "SignedHeaders=host;x-amz-date, Signature=abc"
        ),
        "HTTP_X_AMZ_TARGET": target,
        "CONTENT_TYPE": "application/x-amz-json-1.0",
    }


def dynamodb(gate, key, operation, request):
    return gate.check(environ(key, f"DynamoDB_20120810.{operation}"), json.dumps(request).encode())


def sqs(gate, key, operation, request):
    return gate.check(environ(key, f"AmazonSQS.{operation}", "sqs"), json.dumps(request).encode())


def write(text):
    f = tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False)
    f.write(text)
    f.close()
    return f.name


class GateTest(unittest.TestCase):
    def setUp(self):
        self.path = write(TEMPLATE)
        self.gate = iam.IamGate.from_template(self.path)

    def tearDown(self):
        os.unlink(self.path)

    def used(self, function):
        return [tuple(p) for p in self.gate.usage()[function]["used"]]

    def denied(self, function):
        return [tuple(p) for p in self.gate.usage()[function]["denied"]]


class ActionMapping(GateTest):
    """Each operation shape is recorded as the IAM actions AWS authorizes it with."""

    def test_transact_write_items_needs_each_items_action(self):
        items = [
            {"Put": {"TableName": "t01-stock", "Item": {}}},
            {"Update": {"TableName": "t01-stock", "Key": {}}},
            {"Delete": {"TableName": "t01-stock", "Key": {}}},
            {"ConditionCheck": {"TableName": "t01-stock", "Key": {}}},
        ]
        request = {"TransactItems": items}
        self.assertIsNone(dynamodb(self.gate, "Everything", "TransactWriteItems", request))
        self.assertEqual(
            self.used("Everything"),
            [
                ("dynamodb:ConditionCheckItem", TABLE),
                ("dynamodb:DeleteItem", TABLE),
                ("dynamodb:PutItem", TABLE),
                ("dynamodb:UpdateItem", TABLE),
            ],
        )

    def test_transact_get_items_needs_get_item(self):
        request = {"TransactItems": [{"Get": {"TableName": "t01-stock", "Key": {}}}]}
        self.assertIsNone(dynamodb(self.gate, "Everything", "TransactGetItems", request))
        self.assertEqual(self.used("Everything"), [("dynamodb:GetItem", TABLE)])

    def test_query_on_an_index_needs_query_on_the_index(self):
        dynamodb(self.gate, "Everything", "Query", {"TableName": "t01-stock", "IndexName": "sweep"})
        dynamodb(self.gate, "Everything", "Query", {"TableName": "t01-stock"})
        dynamodb(self.gate, "Everything", "Scan", {"TableName": "t01-stock", "IndexName": "other"})
        self.assertEqual(
            self.used("Everything"),
            [
                ("dynamodb:Query", TABLE),
                ("dynamodb:Query", TABLE + "/index/sweep"),
                ("dynamodb:Scan", TABLE + "/index/other"),
            ],
        )

    def test_batch_get_item_is_its_own_action_on_each_table(self):
        request = {"RequestItems": {"t01-stock": {"Keys": []}}}
        self.assertIsNone(dynamodb(self.gate, "Everything", "BatchGetItem", request))
        dynamodb(self.gate, "Everything", "BatchWriteItem", request)
        self.assertEqual(
            self.used("Everything"),
            [("dynamodb:BatchGetItem", TABLE), ("dynamodb:BatchWriteItem", TABLE)],
        )

    def test_single_item_operations_and_a_table_given_as_its_arn(self):
        for operation in ("GetItem", "PutItem", "UpdateItem", "DeleteItem", "DescribeTable"):
            dynamodb(self.gate, "Everything", operation, {"TableName": "t01-stock"})
        arn = "arn:aws:dynamodb:us-east-1:123456789012:table/t01-stock"
        dynamodb(self.gate, "Everything", "GetItem", {"TableName": arn})
        self.assertEqual(
            self.used("Everything"),
            [
                ("dynamodb:DeleteItem", TABLE),
                ("dynamodb:DescribeTable", TABLE),
                ("dynamodb:GetItem", TABLE),
                ("dynamodb:PutItem", TABLE),
                ("dynamodb:UpdateItem", TABLE),
            ],
        )

    def test_sqs_batches_need_their_single_actions(self):
        for operation in (
            "SendMessage",
            "SendMessageBatch",
            "DeleteMessageBatch",
            "ChangeMessageVisibilityBatch",
            "ReceiveMessage",
            "GetQueueAttributes",
        ):
            self.assertIsNone(sqs(self.gate, "Everything", operation, {"QueueUrl": QUEUE_URL}))
        dead_letters = {"QueueName": "t01abc-compensation-dead-letter-queue"}
        sqs(self.gate, "Everything", "GetQueueUrl", dead_letters)
        self.assertEqual(
            self.used("Everything"),
            [
                ("sqs:ChangeMessageVisibility", QUEUE),
                ("sqs:DeleteMessage", QUEUE),
                ("sqs:GetQueueAttributes", QUEUE),
                ("sqs:GetQueueUrl", DEAD_LETTER_QUEUE),
                ("sqs:ReceiveMessage", QUEUE),
                ("sqs:SendMessage", QUEUE),
            ],
        )

    def test_queue_names_map_to_the_longest_logical_id(self):
        self.assertEqual(self.gate.logical_queue("x-compensation-queue"), "CompensationQueue")
        self.assertEqual(
            self.gate.logical_queue("x-compensation-dead-letter-queue"),
            "CompensationDeadLetterQueue",
        )
        self.assertEqual(self.gate.logical_queue("somebody-elses"), "somebody-elses")


class Authorization(GateTest):
    def test_other_keys_are_unrestricted_and_unrecorded(self):
        self.assertIsNone(dynamodb(self.gate, "test", "BatchGetItem", {"RequestItems": {"t": {}}}))
        self.assertIsNone(self.gate.check({"HTTP_X_AMZ_TARGET": "DynamoDB_20120810.Scan"}, b"{}"))
        self.assertNotIn("test", self.gate.usage())
        self.assertTrue(all(not u["used"] and not u["denied"] for u in self.gate.usage().values()))

    def test_a_table_arn_grants_the_table_not_its_indexes(self):
        self.assertIsNone(dynamodb(self.gate, "Writer", "GetItem", {"TableName": "t01-stock"}))
        self.assertIsNone(
            dynamodb(self.gate, "Writer", "Query", {"TableName": "t01-stock", "IndexName": "sweep"})
        )
        self.assertIsNotNone(dynamodb(self.gate, "Writer", "Query", {"TableName": "t01-stock"}))
        self.assertIsNotNone(
            dynamodb(self.gate, "Writer", "Query", {"TableName": "t01-stock", "IndexName": "other"})
        )
        self.assertEqual(
            self.denied("Writer"),
            [("dynamodb:Query", TABLE), ("dynamodb:Query", TABLE + "/index/other")],
        )

    def test_an_index_wildcard_and_an_explicit_deny(self):
        query = {"TableName": "t01-stock", "IndexName": "sweep"}
        self.assertIsNone(dynamodb(self.gate, "AnyIndex", "Query", query))
        self.assertIsNotNone(dynamodb(self.gate, "AnyIndex", "Query", {"TableName": "t01-stock"}))
        query["IndexName"] = "secret"
        self.assertIsNotNone(dynamodb(self.gate, "AnyIndex", "Query", query))

    def test_a_transaction_needs_every_items_action(self):
        items = [
            {"Update": {"TableName": "t01-stock", "Key": {}}},
            {"ConditionCheck": {"TableName": "t01-stock", "Key": {}}},
            {"Put": {"TableName": "t01-stock", "Item": {}}},
        ]
        denial = dynamodb(self.gate, "Writer", "TransactWriteItems", {"TransactItems": items})
        self.assertIn(b"dynamodb:ConditionCheckItem", denial[2])
        self.assertEqual(self.used("Writer"), [("dynamodb:UpdateItem", TABLE)])
        self.assertEqual(
            self.denied("Writer"),
            [("dynamodb:ConditionCheckItem", TABLE), ("dynamodb:PutItem", TABLE)],
        )

    def test_sam_policy_templates_expand_to_their_actions(self):
        self.assertIsNone(dynamodb(self.gate, "Crud", "BatchGetItem", {"RequestItems": {"t": {}}}))
        query = {"TableName": "t", "IndexName": "i"}
        self.assertIsNone(dynamodb(self.gate, "Crud", "Query", query))
        self.assertIsNone(sqs(self.gate, "Crud", "SendMessageBatch", {"QueueUrl": QUEUE_URL}))
        self.assertIsNotNone(sqs(self.gate, "Crud", "ReceiveMessage", {"QueueUrl": QUEUE_URL}))

    def test_an_unknown_operation_shape_is_denied(self):
        items = [{"Upsert": {"TableName": "t01-stock"}}]
        request = {"TransactItems": items}
        status, _, body = dynamodb(self.gate, "Everything", "TransactWriteItems", request)
        self.assertEqual(status, 400)
        self.assertIn(b"unattributable", body)


class WireFormat(GateTest):
    """Denials look like AWS's, and an AWS SDK parses them as AWS's."""

    @staticmethod
    def parsed(service, operation, denial):
        status, headers, body = denial
        model = botocore.session.get_session().get_service_model(service)
        response = {"status_code": status, "headers": dict(headers), "body": body}
        parser = parsers.create_parser(model.metadata["protocol"])
        return parser.parse(response, model.operation_model(operation).output_shape)["Error"]

    def test_dynamodb_denial(self):
        denial = dynamodb(self.gate, "Writer", "BatchGetItem", {"RequestItems": {"t01-stock": {}}})
        status, headers, body = denial
        self.assertEqual(status, 400)
        self.assertIn(("Content-Type", "application/x-amz-json-1.0"), headers)
        self.assertEqual(
            json.loads(body),
            {
                "__type": "com.amazon.coral.service#AccessDeniedException",
                "Message": "User: arn:aws:sts::123456789012:assumed-role/Writer/Writer is not"
                " authorized to perform: dynamodb:BatchGetItem on resource:"
                " arn:aws:dynamodb:us-east-1:123456789012:table/t01-stock because no"
                " identity-based policy allows the dynamodb:BatchGetItem action",
            },
        )
        error = self.parsed("dynamodb", "BatchGetItem", denial)
        self.assertEqual(error["Code"], "AccessDeniedException")
        self.assertIn("dynamodb:BatchGetItem", error["Message"])

    def test_sqs_denial_in_the_json_protocol(self):
        denial = sqs(self.gate, "Writer", "DeleteMessage", {"QueueUrl": QUEUE_URL})
        status, headers, body = denial
        self.assertEqual(status, 403)
        self.assertIn(("x-amzn-query-error", "AccessDenied;Sender"), headers)
        self.assertEqual(
            json.loads(body)["Message"],
            "User: arn:aws:sts::123456789012:assumed-role/Writer/Writer is not authorized to"
            " perform: sqs:deletemessage on resource:"
            " arn:aws:sqs:us-east-1:123456789012:t01abc-compensation-queue because no"
            " identity-based policy allows the sqs:deletemessage action",
        )
        self.assertEqual(self.parsed("sqs", "DeleteMessage", denial)["Code"], "AccessDenied")


class Matching(unittest.TestCase):
    def test_actions_ignore_case_and_take_wildcards(self):
        self.assertTrue(iam.action_matches("dynamodb:getitem", "dynamodb:GetItem"))
        self.assertTrue(iam.action_matches("sqs:SendMessage*", "sqs:SendMessage"))
        self.assertFalse(iam.action_matches("dynamodb:Get*", "dynamodb:BatchGetItem"))

    def test_resources_match_per_component(self):
        prefix = "arn:aws:dynamodb:*:*:table/StockTable*"
        self.assertTrue(iam.resource_matches(prefix, TABLE + "/index/x"))
        self.assertFalse(iam.resource_matches(TABLE, TABLE + "/index/x"))
        self.assertFalse(iam.resource_matches("arn:aws:dynamodb:*:table/StockTable", TABLE))
        self.assertFalse(iam.resource_matches("arn:aws:sqs:*:*:compensationqueue", QUEUE))


class Checker(unittest.TestCase):
    """The check both ways, and its mutants, on synthetic usage."""

    POLICY = """
Resources:
  Fn:
    Type: AWS::Serverless::Function
    Properties:
      Policies:
        - Statement:
            - Effect: Allow
              Action: [dynamodb:GetItem, dynamodb:BatchGetItem]
              Resource: !GetAtt StockTable.Arn
            - Effect: Allow
              Action: dynamodb:Query
              Resource:
                - !GetAtt StockTable.Arn
                - !Sub "${StockTable.Arn}/index/sweep"
  StockTable:
    Type: AWS::DynamoDB::Table
"""
    EXACT = {
        "Fn": {
            "used": [
                ["dynamodb:BatchGetItem", TABLE],
                ["dynamodb:GetItem", TABLE],
                ["dynamodb:Query", TABLE],
                ["dynamodb:Query", TABLE + "/index/sweep"],
            ],
            "denied": [],
        }
    }

    def run_check(self, usage, *flags, policy=POLICY):
        template = write(policy)
        recorded = write(json.dumps(usage))
        out = io.StringIO()
        old, sys.stdout = sys.stdout, out
        try:
            status = iam.main([recorded, "--template", template, *flags])
        finally:
            sys.stdout = old
            os.unlink(template)
            os.unlink(recorded)
        return status, out.getvalue()

    def test_exact_usage_passes_and_every_mutant_fails(self):
        status, out = self.run_check(self.EXACT, "--mutate")
        self.assertEqual(status, 0, out)
        self.assertIn("mutants: 6, each one grant removed; 6 failed the check, 0 survived", out)

    def test_a_denied_call_fails(self):
        usage = json.loads(json.dumps(self.EXACT))
        usage["Fn"]["denied"].append(["dynamodb:PutItem", TABLE])
        status, out = self.run_check(usage)
        self.assertEqual(status, 1)
        self.assertIn("denied: dynamodb:PutItem on table/StockTable", out)

    def test_a_call_the_policy_does_not_allow_fails(self):
        usage = json.loads(json.dumps(self.EXACT))
        usage["Fn"]["used"].append(["dynamodb:Scan", TABLE])
        status, out = self.run_check(usage)
        self.assertEqual(status, 1)
        self.assertIn("not allowed: dynamodb:Scan on table/StockTable", out)

    def test_an_unused_grant_fails(self):
        usage = json.loads(json.dumps(self.EXACT))
        usage["Fn"]["used"].remove(["dynamodb:Query", TABLE + "/index/sweep"])
        status, out = self.run_check(usage)
        self.assertEqual(status, 1)
        self.assertIn("granted but never used: dynamodb:Query on table/StockTable/index/sweep", out)

    def test_a_redundant_grant_survives_its_mutant(self):
        redundant = self.POLICY.replace(
            "Action: [dynamodb:GetItem, dynamodb:BatchGetItem]",
            "Action: [dynamodb:GetItem, dynamodb:BatchGetItem, dynamodb:Query]",
        )
        status, out = self.run_check(self.EXACT, "--mutate", policy=redundant)
        self.assertEqual(status, 1)
        self.assertIn("mutant survived: Fn: without dynamodb:Query in statement 1", out)

    def test_a_function_with_no_calls_fails_on_every_grant(self):
        status, out = self.run_check({})
        self.assertEqual(status, 1)
        self.assertEqual(out.count("granted but never used"), 4)


class ProjectTemplate(unittest.TestCase):
    def test_every_function_has_a_policy_the_gate_reads(self):
        gate = iam.IamGate.from_template(str(ROOT / "template.yaml"))
        self.assertEqual(
            sorted(gate.policies),
            [
                "PlaceOrderFunction",
                "ReconcileFunction",
                "RefundFunction",
                "ReserveStockFunction",
                "StockAdminFunction",
            ],
        )
        self.assertTrue(all(gate.policies.values()))


if __name__ == "__main__":
    unittest.main()
