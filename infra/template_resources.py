"""Reads template.yaml: prints, as JSON, the table and queues it declares; lists its routes.

The local run and the tests create their resources from this, so the template stays the
only description of the table's keys, its index and the queues' redrive settings. The
route check (tests/suites/routes.rs) and infra/test_template.py read the HTTP routes
through `http_routes`.
"""

import json
import sys
from pathlib import Path

import yaml


class TemplateLoader(yaml.SafeLoader):
    """SafeLoader that keeps CloudFormation short-form tags (!Ref, !GetAtt, ...) as data."""


def _intrinsic(loader, tag_suffix, node):
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    return {tag_suffix: value}


TemplateLoader.add_multi_constructor("!", _intrinsic)


def load(path):
    with open(path) as f:
        return yaml.load(f, Loader=TemplateLoader)


# Ways to declare a route other than a function's `HttpApi` event: refused, so that no
# route escapes the checks that read `http_routes`.
OTHER_ROUTE_DECLARATIONS = {
    "AWS::ApiGatewayV2::Route",
    "AWS::ApiGatewayV2::Api",
    "AWS::ApiGateway::RestApi",
    "AWS::Serverless::Api",
}


def http_routes(template):
    """Every route as {"route": "METHOD /path", "function", "api", "authorizer"}.

    `api` is the event's ApiId (an intrinsic) and `authorizer` the one the event names,
    None for the API's default.
    """
    routes = []
    for logical_id, resource in template["Resources"].items():
        kind = resource["Type"]
        props = resource.get("Properties") or {}
        if kind in OTHER_ROUTE_DECLARATIONS or (
            kind == "AWS::Serverless::HttpApi"
            and ("DefinitionBody" in props or "DefinitionUri" in props)
        ):
            raise ValueError(f"{logical_id} declares routes another way than HttpApi events")
        if kind != "AWS::Serverless::Function":
            continue
        for name, event in (props.get("Events") or {}).items():
            if event["Type"] == "Api":
                raise ValueError(f"{logical_id} event {name} is a REST API event")
            if event["Type"] != "HttpApi":
                continue
            properties = event.get("Properties") or {}
            routes.append(
                {
                    "route": f"{properties['Method'].upper()} {properties['Path']}",
                    "function": logical_id,
                    "api": properties.get("ApiId"),
                    "authorizer": (properties.get("Auth") or {}).get("Authorizer"),
                }
            )
    return routes


def resources(template):
    table = None
    queues = {}
    for logical_id, resource in template["Resources"].items():
        kind = resource["Type"]
        props = resource.get("Properties", {})
        if kind == "AWS::DynamoDB::Table":
            if table is not None:
                sys.exit("template.yaml declares more than one table")
            table = {
                "attribute_definitions": props["AttributeDefinitions"],
                "key_schema": props["KeySchema"],
                "global_secondary_indexes": props.get("GlobalSecondaryIndexes", []),
                "ttl_attribute": props.get("TimeToLiveSpecification", {}).get(
                    "AttributeName"
                ),
            }
        elif kind == "AWS::SQS::Queue":
            redrive = props.get("RedrivePolicy")
            queues[logical_id] = {
                "visibility_timeout": props.get("VisibilityTimeout", 30),
                "message_retention_period": props.get("MessageRetentionPeriod", 345600),
                "dead_letter_queue": (
                    redrive["deadLetterTargetArn"]["GetAtt"].split(".")[0]
                    if redrive
                    else None
                ),
                "max_receive_count": redrive["maxReceiveCount"] if redrive else None,
            }
    if table is None:
        sys.exit("template.yaml declares no table")
    return {"table": table, "queues": queues}


def main():
    path = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).parent.parent / "template.yaml"
    json.dump(resources(load(path)), sys.stdout, indent=2)
    print()


if __name__ == "__main__":
    main()
