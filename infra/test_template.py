"""What template.yaml promises: every metric an alarm watches is one the code publishes,
the dashboard shows every metric the code publishes, and no route is open (customer
routes need a verified token, admin routes IAM).

Run with `.venv/bin/python -m unittest discover -s infra -p 'test_*.py'` (infra/test does).
"""

import json
import re
import unittest
from pathlib import Path

from template_resources import http_routes, load

ROOT = Path(__file__).resolve().parent.parent

# Issue 10: the routes a customer calls with a token, and the stock admin routes (IAM).
CUSTOMER_ROUTES = {
    "POST /reservations",
    "GET /reservations/{id}",
    "DELETE /reservations/{id}",
    "POST /orders",
    "GET /orders/{id}",
    "POST /orders/{id}/refunds",
}
ADMIN_ROUTES = {
    "PUT /skus/{sku}",
    "GET /skus/{sku}",
    "GET /skus",
    "POST /skus/{sku}/adjustments",
    "PUT /campaigns/{id}",
    "GET /campaigns/{id}",
}


def template():
    return load(ROOT / "template.yaml")


def alarms():
    return {
        name: resource["Properties"]
        for name, resource in template()["Resources"].items()
        if resource["Type"] == "AWS::CloudWatch::Alarm"
    }


def counted_in_code(function):
    """Metric names the code passes to `function` (a regex over the metrics API's names)."""
    names = set()
    for source in ROOT.glob("**/src/**/*.rs"):
        if "target" in source.parts:
            continue
        names |= set(re.findall(function + r'\(\s*"(\w+)"', source.read_text()))
    return names


def published_totals():
    """Metric names the code counts with a dimensionless total (`count_with_total`)."""
    return counted_in_code("count_with_total")


class AlarmsWatchWhatTheCodePublishes(unittest.TestCase):
    def alarm_on(self, namespace, metric):
        found = [
            p
            for p in alarms().values()
            if p.get("Namespace") == namespace and p.get("MetricName") == metric
        ]
        self.assertEqual(len(found), 1, f"one alarm on {namespace}/{metric}")
        return found[0]

    def test_every_5xx_a_function_answers_alarms(self):
        self.assertIn("ServerErrors", published_totals())
        alarm = self.alarm_on("stockroom", "ServerErrors")
        # The code publishes the total without dimensions: an alarm with any would match nothing.
        self.assertNotIn("Dimensions", alarm)
        self.assertEqual(alarm["Statistic"], "Sum")

    def test_api_gateway_5xx_alarms(self):
        alarm = self.alarm_on("AWS/ApiGateway", "5xx")
        self.assertEqual(alarm["Dimensions"], [{"Name": "ApiId", "Value": {"Ref": "HttpApi"}}])

    def test_audit_drift_alarms(self):
        self.assertIn("Drift", published_totals())
        alarm = self.alarm_on("stockroom", "Drift")
        self.assertNotIn("Dimensions", alarm)

    def test_every_alarm_notifies_the_topic(self):
        for name, alarm in alarms().items():
            self.assertIn("AlarmActions", alarm, name)


class TheQueueAndTheScheduleShareReconcile(unittest.TestCase):
    """Reconcile is fed by the compensation queue and by the schedule within one reserved
    concurrency: the queue's event source must leave room for the sweep, and its messages
    must not use up their receives on throttled invocations."""

    def setUp(self):
        resources = template()["Resources"]
        self.function = resources["ReconcileFunction"]["Properties"]
        self.queue = resources["CompensationQueue"]["Properties"]
        (self.source,) = [
            r["Properties"]
            for r in resources.values()
            if r["Type"] == "AWS::Lambda::EventSourceMapping"
            and r["Properties"]["FunctionName"] == {"Ref": "ReconcileFunction"}
        ]

    def test_the_queue_leaves_concurrency_for_the_schedule(self):
        reserved = self.function["ReservedConcurrentExecutions"]
        maximum = self.source["ScalingConfig"]["MaximumConcurrency"]
        self.assertGreaterEqual(maximum, 2, "Lambda's least MaximumConcurrency")
        sweeps = 1  # the schedule fires once a minute and a sweep ends within the timeout
        self.assertLess(self.function["Timeout"], 60)
        self.assertLessEqual(maximum + sweeps, reserved)

    def test_a_message_outlives_its_invocation_and_has_receives_to_spare(self):
        self.assertGreaterEqual(self.queue["VisibilityTimeout"], 6 * self.function["Timeout"])
        receives = self.queue["RedrivePolicy"]["maxReceiveCount"]
        self.assertGreaterEqual(receives, 5)
        variables = self.function["Environment"]["Variables"]
        self.assertEqual(variables["STOCKROOM_MAX_RECEIVES"], str(receives))


class Deployment:
    """The template as CloudFormation sees it for given parameter values: its conditions,
    its rules, and values with `Fn::If`/`Ref` of parameters resolved."""

    def __init__(self, template, **parameters):
        self.template = template
        self.parameters = {
            name: parameters.get(name, spec.get("Default"))
            for name, spec in template["Parameters"].items()
        }

    def value(self, expression):
        if isinstance(expression, list):
            return [self.value(e) for e in expression]
        if not (isinstance(expression, dict) and len(expression) == 1):
            return expression
        ((function, argument),) = expression.items()
        function = function.removeprefix("Fn::")
        if function == "Ref":
            return self.parameters.get(argument, expression)
        if function == "Condition":
            return self.condition(argument)
        if function == "If":
            name, when_true, when_false = argument
            return self.value(when_true if self.condition(name) else when_false)
        if function == "Equals":
            left, right = self.value(argument)
            return left == right
        if function == "Not":
            return not self.value(argument[0])
        if function == "And":
            return all(self.value(argument))
        if function == "Or":
            return any(self.value(argument))
        return expression  # !Sub, !GetAtt, ...: left for the caller to read

    def condition(self, name):
        return self.value(self.template["Conditions"][name])

    def exists(self, logical_id):
        resource = self.template["Resources"].get(logical_id)
        return resource is not None and (
            "Condition" not in resource or self.condition(resource["Condition"])
        )

    def refused_by(self):
        """The rules whose assertions fail: CloudFormation refuses such a deploy."""
        return [
            name
            for name, rule in self.template.get("Rules", {}).items()
            if self.value(rule.get("RuleCondition", True))
            and not all(self.value(a["Assert"]) for a in rule["Assertions"])
        ]


def named_resources(expression):
    """The logical ids a `!Ref` or `!Sub` names."""
    ((function, argument),) = expression.items()
    function = function.removeprefix("Fn::")
    if function == "Ref":
        return [argument]
    if function == "Sub":
        return [n for n in re.findall(r"\$\{([^}.]+)\}", argument) if not n.startswith("AWS::")]
    raise AssertionError(f"unexpected {expression!r}")


class NoRouteIsOpen(unittest.TestCase):
    def setUp(self):
        self.template = template()
        self.api = self.template["Resources"]["HttpApi"]
        self.auth = self.api["Properties"]["Auth"]

    def authorizer_of(self, route):
        return route["authorizer"] or self.auth.get("DefaultAuthorizer")

    def test_every_route_is_a_customer_route_or_an_admin_route(self):
        routes = [r["route"] for r in http_routes(self.template)]
        self.assertEqual(len(routes), len(set(routes)), "a route declared twice")
        self.assertEqual(set(routes), CUSTOMER_ROUTES | ADMIN_ROUTES)

    def test_every_route_is_on_the_api_that_checks_tokens(self):
        # An event without ApiId would land on SAM's implicit API, with no authorizer.
        self.assertEqual(self.api["Type"], "AWS::Serverless::HttpApi")
        for route in http_routes(self.template):
            self.assertEqual(route["api"], {"Ref": "HttpApi"}, route["route"])

    def test_customer_routes_need_the_jwt_authorizer_admin_routes_iam(self):
        jwt = self.auth["Authorizers"]
        self.assertTrue(self.auth.get("EnableIamAuthorizer"))
        for route in http_routes(self.template):
            authorizer = self.authorizer_of(route)
            if route["route"] in CUSTOMER_ROUTES:
                self.assertIn(authorizer, jwt, route["route"])
                self.assertIn("JwtConfiguration", jwt[authorizer], route["route"])
            else:
                self.assertEqual(authorizer, "AWS_IAM", route["route"])

    def test_the_flash_sale_throttling_names_real_routes(self):
        # A misspelt route key would leave a flash-sale route at the default rate.
        settings = self.api["Properties"]["RouteSettings"]
        self.assertEqual(set(settings), {"POST /reservations", "POST /orders"})
        self.assertLessEqual(set(settings), {r["route"] for r in http_routes(self.template)})
        for route in settings.values():
            self.assertEqual(
                route,
                {
                    "ThrottlingRateLimit": {"Ref": "FlashSaleRateLimit"},
                    "ThrottlingBurstLimit": {"Ref": "FlashSaleBurstLimit"},
                },
            )

    def jwt_configuration(self, deployment):
        authorizers = self.auth["Authorizers"]
        configuration = authorizers[self.auth["DefaultAuthorizer"]]["JwtConfiguration"]
        return deployment.value(configuration["issuer"]), deployment.value(
            configuration["audience"]
        )

    def test_a_deploy_without_an_issuer_gets_a_user_pool_and_checks_its_tokens(self):
        deployment = Deployment(self.template)
        self.assertEqual(deployment.parameters["JwtIssuer"], "")
        self.assertEqual(deployment.refused_by(), [])
        issuer, audience = self.jwt_configuration(deployment)
        (pool,) = named_resources(issuer)
        self.assertEqual(self.template["Resources"][pool]["Type"], "AWS::Cognito::UserPool")
        self.assertTrue(deployment.exists(pool))
        self.assertIn("https://cognito-idp.", issuer["Sub"])
        (client,) = [named_resources(a)[0] for a in audience]
        self.assertEqual(
            self.template["Resources"][client]["Type"], "AWS::Cognito::UserPoolClient"
        )
        self.assertTrue(deployment.exists(client))
        self.assertEqual(
            self.template["Resources"][client]["Properties"]["UserPoolId"], {"Ref": pool}
        )

    def test_a_deploy_with_its_own_issuer_uses_it_and_creates_no_pool(self):
        deployment = Deployment(
            self.template, JwtIssuer="https://issuer.example", JwtAudience="shop"
        )
        self.assertEqual(deployment.refused_by(), [])
        self.assertEqual(self.jwt_configuration(deployment), ("https://issuer.example", ["shop"]))
        cognito = [
            k for k, r in self.template["Resources"].items() if r["Type"].startswith("AWS::Cognito::")
        ]
        self.assertTrue(cognito)
        self.assertFalse(any(deployment.exists(k) for k in cognito), cognito)

    def test_an_issuer_without_an_audience_or_the_reverse_is_refused(self):
        self.assertTrue(Deployment(self.template, JwtIssuer="https://issuer.example").refused_by())
        self.assertTrue(Deployment(self.template, JwtAudience="shop").refused_by())


def published_metrics():
    """Every metric name the code counts (`metrics::count` or `count_with_total`)."""
    return counted_in_code("count(?:_with_total)?")


class TheDashboardShowsASale(unittest.TestCase):
    def setUp(self):
        (dashboard,) = [
            r["Properties"]
            for r in template()["Resources"].values()
            if r["Type"] == "AWS::CloudWatch::Dashboard"
        ]
        # Fn::Sub's references stand in for what CloudFormation puts there.
        body = re.sub(r"\$\{[^}]+\}", "X", dashboard["DashboardBody"]["Sub"])
        self.widgets = json.loads(body)["widgets"]
        self.shown = set()  # (namespace, metric, stat)
        for widget in self.widgets:
            for row in widget["properties"]["metrics"]:
                options = row[-1] if isinstance(row[-1], dict) else {}
                if "expression" in options:
                    search = re.fullmatch(
                        r"SEARCH\('\{([^,}]+)[^}]*\} MetricName=\"(\w+)\".*', '(\w+)', 60\)",
                        options["expression"],
                    )
                    self.assertIsNotNone(search, options["expression"])
                    self.shown.add(search.groups())
                else:
                    self.shown.add((row[0], row[1], options.get("stat")))

    def test_every_metric_the_code_publishes_is_on_it(self):
        names = published_metrics()
        self.assertIn("Reservations", names)
        on_dashboard = {metric for namespace, metric, _ in self.shown if namespace == "stockroom"}
        self.assertEqual(names - on_dashboard, set())
        self.assertEqual(on_dashboard - names, set(), "a widget shows a metric nobody publishes")

    def test_latency_lag_dead_letters_conflicts_and_throttles_are_on_it(self):
        for wanted in [
            ("AWS/ApiGateway", "Latency", "p50"),
            ("AWS/ApiGateway", "Latency", "p99"),
            ("AWS/ApiGateway", "5xx", "Sum"),
            ("AWS/SQS", "ApproximateAgeOfOldestMessage", "Maximum"),
            ("AWS/SQS", "ApproximateNumberOfMessagesVisible", "Maximum"),
            ("AWS/DynamoDB", "TransactionConflict", "Sum"),
            ("AWS/DynamoDB", "ThrottledRequests", "Sum"),
            ("AWS/Lambda", "Throttles", "Sum"),
        ]:
            self.assertIn(wanted, self.shown)

    def test_widgets_fit_the_grid_without_overlapping(self):
        cells = set()
        for w in self.widgets:
            self.assertLessEqual(w["x"] + w["width"], 24)
            for x in range(w["x"], w["x"] + w["width"]):
                for y in range(w["y"], w["y"] + w["height"]):
                    self.assertNotIn((x, y), cells, w["properties"]["title"])
                    cells.add((x, y))


if __name__ == "__main__":
    unittest.main()
