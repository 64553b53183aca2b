//! Routes are declared once, in each function's router: the routes `template.yaml` has
//! API Gateway send to each function must be exactly the routes that function's router
//! declares, both ways (a route only in a router would be unreachable in AWS; a route
//! only in the template would be answered `route_not_found` by the function).

use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;

use stockroom_local::emulator::venv_python;
use stockroom_local::project_root;
use stockroom_local::server::Function;

/// Prints, as JSON, every HTTP route the template declares and the logical id of the
/// function it invokes (null where the template does not say): API Gateway v2 routes
/// and their integrations, SAM `Api`/`HttpApi` events, and an `HttpApi` OpenAPI body.
const TEMPLATE_ROUTES: &str = r#"
import json, re, sys
sys.path.insert(0, sys.argv[1])
from template_resources import TemplateLoader
import yaml

with open(sys.argv[2]) as f:
    resources = yaml.load(f, Loader=TemplateLoader)["Resources"]

def named(value):
    """The logical ids an intrinsic (!Ref, !GetAtt, !Sub) names."""
    if isinstance(value, dict):
        for kind, inner in value.items():
            if kind in ("Ref", "GetAtt", "Fn::GetAtt"):
                name = inner[0] if isinstance(inner, list) else inner.split(".")[0]
                return [name]
            if kind in ("Sub", "Fn::Sub"):
                text = inner[0] if isinstance(inner, list) else inner
                return [n.split(".")[0] for n in re.findall(r"\$\{([^}]+)\}", text)]
    return []

def function_of(value):
    for name in named(value):
        kind = resources.get(name, {}).get("Type")
        if kind == "AWS::Serverless::Function" or kind == "AWS::Lambda::Function":
            return name
        if kind == "AWS::ApiGatewayV2::Integration":
            return function_of(resources[name]["Properties"].get("IntegrationUri"))
    return None

routes = []
for logical_id, resource in resources.items():
    kind, props = resource.get("Type"), resource.get("Properties") or {}
    if kind == "AWS::ApiGatewayV2::Route":
        routes.append([props["RouteKey"], function_of(props.get("Target"))])
    elif kind == "AWS::Serverless::Function":
        for event in (props.get("Events") or {}).values():
            if event.get("Type") in ("Api", "HttpApi"):
                p = event.get("Properties") or {}
                routes.append([f"{p.get('Method', 'ANY').upper()} {p.get('Path', '$default')}", logical_id])
    elif kind in ("AWS::Serverless::HttpApi", "AWS::Serverless::Api", "AWS::ApiGatewayV2::Api"):
        body = props.get("DefinitionBody") or props.get("Body") or {}
        for path, operations in (body.get("paths") or {}).items():
            for method, operation in operations.items():
                integration = operation.get("x-amazon-apigateway-integration", {})
                routes.append([f"{method.upper()} {path}", function_of(integration.get("uri"))])
json.dump(routes, sys.stdout)
"#;

fn template_routes() -> Vec<(String, Option<String>)> {
    let root = project_root();
    let python = venv_python(&root).expect("the project venv (infra/venv)");
    let output = Command::new(python)
        .arg("-c")
        .arg(TEMPLATE_ROUTES)
        .arg(root.join("infra"))
        .arg(root.join("template.yaml"))
        .output()
        .expect("run python");
    assert!(
        output.status.success(),
        "reading the template's routes: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("the routes as JSON")
}

#[test]
fn the_template_routes_to_each_function_what_its_router_declares() {
    let declared = template_routes();
    assert!(
        !declared.is_empty(),
        "template.yaml declares no HTTP route this test can read"
    );
    let routers: BTreeMap<String, Function> = Function::ALL
        .into_iter()
        .flat_map(|f| f.routes().into_iter().map(move |r| (r.to_string(), f)))
        .collect();
    let in_template: BTreeSet<&String> = declared.iter().map(|(route, _)| route).collect();
    let in_routers: BTreeSet<&String> = routers.keys().collect();
    let only_in_routers: Vec<_> = in_routers.difference(&in_template).collect();
    let only_in_template: Vec<_> = in_template.difference(&in_routers).collect();
    assert!(
        only_in_routers.is_empty() && only_in_template.is_empty(),
        "routes only in a router: {only_in_routers:?}; routes only in template.yaml: {only_in_template:?}"
    );
    for (route, function) in &declared {
        if let Some(function) = function {
            assert_eq!(
                routers[route].logical_id(),
                function,
                "template.yaml sends {route} to another function than the one whose router declares it"
            );
        }
    }
    assert_eq!(
        declared.len(),
        in_template.len(),
        "a route twice in template.yaml"
    );
}
