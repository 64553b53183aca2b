"""Failures are visible: every metric an alarm watches is one the code publishes.

Run with `.venv/bin/python -m unittest discover -s infra -p 'test_*.py'` (infra/test does).
"""

import re
import unittest
from pathlib import Path

import yaml

from template_resources import TemplateLoader

ROOT = Path(__file__).resolve().parent.parent


def alarms():
    template = yaml.load((ROOT / "template.yaml").read_text(), Loader=TemplateLoader)
    return {
        name: resource["Properties"]
        for name, resource in template["Resources"].items()
        if resource["Type"] == "AWS::CloudWatch::Alarm"
    }


def published_totals():
    """Metric names the code counts with a dimensionless total (`count_with_total`)."""
    names = set()
    for source in ROOT.glob("**/src/**/*.rs"):
        if "target" in source.parts:
            continue
        names |= set(re.findall(r'count_with_total\(\s*"(\w+)"', source.read_text()))
    return names


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


if __name__ == "__main__":
    unittest.main()
