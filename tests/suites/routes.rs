//! Routes are declared once, in each function's router: the routes `template.yaml` has
//! API Gateway send to each function must be exactly the routes that function's router
//! declares, both ways (a route only in a router would be unreachable in AWS; a route
//! only in the template would be answered `route_not_found` by the function).

use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;

use stockroom_local::emulator::venv_python;
use stockroom_local::project_root;
use stockroom_local::server::Function;

/// Prints, as JSON, every HTTP route the template declares (its functions' `HttpApi`
/// events; `http_routes` refuses any other way of declaring one) and the logical id of
/// the function it invokes.
const TEMPLATE_ROUTES: &str = r#"
import json, sys
sys.path.insert(0, sys.argv[1])
from template_resources import http_routes, load

routes = http_routes(load(sys.argv[2]))
json.dump([[r["route"], r["function"]] for r in routes], sys.stdout)
"#;

fn template_routes() -> Vec<(String, String)> {
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
        assert_eq!(
            routers[route].logical_id(),
            function,
            "template.yaml sends {route} to another function than the one whose router declares it"
        );
    }
    assert_eq!(
        declared.len(),
        in_template.len(),
        "a route twice in template.yaml"
    );
}
