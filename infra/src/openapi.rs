//! The OpenAPI 3.1 document of the API: paths from the functions' routes, shapes from the
//! types the handlers read and write. `openapi.json` at the top of the repository is this
//! document; a test regenerates it and fails when they differ.

use std::collections::BTreeMap;

use place_order::OrderBody;
use refund::NewRefund;
use reserve_stock::NewReservation;
use stock_admin::{AdjustmentBody, SetStockBody};
use stockroom::domain::{
    Campaign, CampaignId, CampaignTerms, Order, OrderId, Refund, Reservation, ReservationId, Sku,
    StockLevels,
};
use stockroom::http::Route;
use stockroom::openapi::{NameRef, ProblemDocument};
use utoipa::openapi::header::HeaderBuilder;
use utoipa::openapi::path::{
    HttpMethod, OperationBuilder, ParameterBuilder, ParameterIn, PathItem, PathsBuilder,
};
use utoipa::openapi::request_body::RequestBodyBuilder;
use utoipa::openapi::response::{ResponseBuilder, ResponsesBuilder};
use utoipa::openapi::schema::{AllOfBuilder, ComponentsBuilder, ObjectBuilder, Schema, Type};
use utoipa::openapi::{ContentBuilder, InfoBuilder, OpenApi, OpenApiBuilder, RefOr, Required};
use utoipa::ToSchema;

use crate::server::Function;

const PROBLEM_JSON: &str = "application/problem+json";

/// How one route answers: its success statuses and the problem codes it may return
/// besides those every route of its kind shares (see `shared_codes`).
struct Operation {
    summary: &'static str,
    body: Option<fn() -> RefOr<Schema>>,
    /// `true` when the route reads an `Idempotency-Key`.
    idempotent: bool,
    success: &'static [u16],
    answer: fn() -> RefOr<Schema>,
    codes: &'static [&'static str],
}

/// The API's operations, keyed by route; `document` fails on a route missing here.
fn operations() -> BTreeMap<(&'static str, &'static str), Operation> {
    let op = |summary, body, idempotent, success, answer, codes| Operation {
        summary,
        body,
        idempotent,
        success,
        answer,
        codes,
    };
    BTreeMap::from([
        (
            ("PUT", "/skus/{sku}"),
            op(
                "Set a sku's units on hand (and its shards)",
                Some(SetStockBody::name_ref as fn() -> _),
                false,
                &[200, 201],
                StockLevels::name_ref as fn() -> _,
                &[][..],
            ),
        ),
        (
            ("GET", "/skus/{sku}"),
            op(
                "Read a sku's stock",
                None,
                false,
                &[200],
                StockLevels::name_ref,
                &["sku_not_found"],
            ),
        ),
        (
            ("POST", "/skus/{sku}/adjustments"),
            op(
                "Add or remove units",
                Some(AdjustmentBody::name_ref),
                true,
                &[200],
                StockLevels::name_ref,
                &["sku_not_found", "insufficient_stock"],
            ),
        ),
        (
            ("PUT", "/campaigns/{id}"),
            op(
                "Create or replace a campaign",
                Some(CampaignTerms::name_ref),
                false,
                &[200, 201],
                Campaign::name_ref,
                &[],
            ),
        ),
        (
            ("GET", "/campaigns/{id}"),
            op(
                "Read a campaign",
                None,
                false,
                &[200],
                Campaign::name_ref,
                &["campaign_not_found"],
            ),
        ),
        (
            ("POST", "/reservations"),
            op(
                "Hold units",
                Some(NewReservation::name_ref),
                true,
                &[201],
                Reservation::name_ref,
                &[
                    "sku_not_found",
                    "insufficient_stock",
                    "campaign_not_found",
                    "campaign_not_active",
                    "purchase_limit_exceeded",
                ],
            ),
        ),
        (
            ("GET", "/reservations/{id}"),
            op(
                "Read a reservation",
                None,
                false,
                &[200],
                Reservation::name_ref,
                &["reservation_not_found"],
            ),
        ),
        (
            ("DELETE", "/reservations/{id}"),
            op(
                "Release a reservation (again 200 once released or expired)",
                None,
                false,
                &[200],
                Reservation::name_ref,
                &["reservation_not_found", "reservation_committed"],
            ),
        ),
        (
            ("POST", "/orders"),
            op(
                "Place an order from a reservation or straight from stock",
                Some(OrderBody::name_ref),
                true,
                &[201],
                Order::name_ref,
                &[
                    "reservation_not_found",
                    "reservation_expired",
                    "reservation_not_held",
                    "sku_not_found",
                    "insufficient_stock",
                ],
            ),
        ),
        (
            ("GET", "/orders/{id}"),
            op(
                "Read an order with its refunds",
                None,
                false,
                &[200],
                Order::name_ref,
                &["order_not_found"],
            ),
        ),
        (
            ("POST", "/orders/{id}/refunds"),
            op(
                "Refund lines of an order (no lines: all that is left)",
                Some(NewRefund::name_ref),
                true,
                &[201, 202],
                Refund::name_ref,
                &["order_not_found", "refund_exceeds_order"],
            ),
        ),
    ])
}

/// The status each problem code is answered with.
fn status(code: &str) -> u16 {
    match code {
        "invalid_request" | "idempotency_key_required" => 400,
        "payload_too_large" => 413,
        "idempotency_key_reused" => 422,
        "internal_error" => 500,
        "contention" | "service_unavailable" => 503,
        c if c.ends_with("_not_found") => 404,
        _ => 409,
    }
}

/// Codes a route answers because of what it reads, whatever it does.
fn shared_codes(route: Route, op: &Operation) -> Vec<&'static str> {
    let mut codes = vec!["internal_error", "contention", "service_unavailable"];
    if op.body.is_some() {
        codes.extend(["invalid_request", "payload_too_large"]);
    }
    if route.path.contains("/skus/{") || route.path.contains("/campaigns/{") {
        codes.push("invalid_request");
    }
    if op.idempotent {
        codes.extend([
            "idempotency_key_required",
            "idempotency_key_reused",
            "request_in_progress",
        ]);
    }
    codes
}

/// Every route the API functions declare, in order.
pub fn routes() -> Vec<Route> {
    let mut routes: Vec<Route> = Function::ALL
        .into_iter()
        .flat_map(Function::routes)
        .collect();
    routes.sort();
    routes
}

/// The document, built from `routes()`; panics on a route `operations()` does not describe.
pub fn document() -> OpenApi {
    let mut operations = operations();
    let mut paths: BTreeMap<&str, Vec<(HttpMethod, utoipa::openapi::path::Operation)>> =
        BTreeMap::new();
    for route in routes() {
        let op = operations
            .remove(&(route.method, route.path))
            .unwrap_or_else(|| panic!("{route} is not described in infra/src/openapi.rs"));
        paths
            .entry(route.path)
            .or_default()
            .push((method(route.method), operation(route, &op)));
    }
    assert!(
        operations.is_empty(),
        "described but not routed: {:?}",
        operations.keys().collect::<Vec<_>>()
    );
    let mut builder = PathsBuilder::new();
    for (path, ops) in paths {
        let mut ops = ops.into_iter();
        let (first_method, first) = ops.next().expect("a path has a method");
        let mut item = PathItem::new(first_method, first);
        for (m, o) in ops {
            item.merge_operations(PathItem::new(m, o));
        }
        builder = builder.path(path, item);
    }
    OpenApiBuilder::new()
        .info(
            InfoBuilder::new()
                .title("stockroom")
                .version(env!("CARGO_PKG_VERSION"))
                .description(Some(
                    "Inventory, reservations, orders and refunds. Errors are RFC 9457 problems.",
                ))
                .build(),
        )
        .paths(builder.build())
        .components(Some(components()))
        .build()
}

/// The document as committed: pretty JSON, keys in a stable order, a final newline.
pub fn json() -> String {
    let value = serde_json::to_value(document()).expect("the document is JSON");
    let mut text = serde_json::to_string_pretty(&value).expect("the document is JSON");
    text.push('\n');
    text
}

fn components() -> utoipa::openapi::Components {
    let mut schemas = Vec::new();
    fn add<T: ToSchema>(schemas: &mut Vec<(String, RefOr<Schema>)>) {
        schemas.push((T::name().into(), T::schema()));
        T::schemas(schemas);
    }
    add::<StockLevels>(&mut schemas);
    add::<SetStockBody>(&mut schemas);
    add::<AdjustmentBody>(&mut schemas);
    add::<Campaign>(&mut schemas);
    add::<CampaignTerms>(&mut schemas);
    add::<Reservation>(&mut schemas);
    add::<NewReservation>(&mut schemas);
    add::<Order>(&mut schemas);
    add::<OrderBody>(&mut schemas);
    add::<Refund>(&mut schemas);
    add::<NewRefund>(&mut schemas);
    add::<ProblemDocument>(&mut schemas);
    add::<Sku>(&mut schemas);
    add::<CampaignId>(&mut schemas);
    add::<ReservationId>(&mut schemas);
    add::<OrderId>(&mut schemas);
    ComponentsBuilder::new().schemas_from_iter(schemas).build()
}

fn method(name: &str) -> HttpMethod {
    match name {
        "GET" => HttpMethod::Get,
        "PUT" => HttpMethod::Put,
        "POST" => HttpMethod::Post,
        "DELETE" => HttpMethod::Delete,
        other => panic!("no OpenAPI method for {other}"),
    }
}

fn path_parameter(path: &str) -> Option<utoipa::openapi::path::Parameter> {
    let (name, schema) = if path.starts_with("/skus/{sku}") {
        ("sku", Sku::name_ref())
    } else if path.starts_with("/campaigns/{id}") {
        ("id", CampaignId::name_ref())
    } else if path.starts_with("/reservations/{id}") {
        ("id", ReservationId::name_ref())
    } else if path.starts_with("/orders/{id}") {
        ("id", OrderId::name_ref())
    } else {
        assert!(!path.contains('{'), "no parameter schema for {path}");
        return None;
    };
    Some(
        ParameterBuilder::new()
            .name(name)
            .parameter_in(ParameterIn::Path)
            .required(Required::True)
            .schema(Some(schema))
            .build(),
    )
}

fn operation(route: Route, op: &Operation) -> utoipa::openapi::path::Operation {
    let mut builder = OperationBuilder::new().summary(Some(op.summary));
    if let Some(parameter) = path_parameter(route.path) {
        builder = builder.parameter(parameter);
    }
    if op.idempotent {
        builder = builder.parameter(
            ParameterBuilder::new()
                .name("Idempotency-Key")
                .parameter_in(ParameterIn::Header)
                .required(Required::True)
                .description(Some(
                    "1 to 255 visible ASCII characters; the same key and body replay the first answer.",
                ))
                .schema(Some(
                    ObjectBuilder::new()
                        .schema_type(Type::String)
                        .pattern(Some("^[!-~]{1,255}$")),
                ))
                .build(),
        );
    }
    if let Some(body) = op.body {
        builder = builder.request_body(Some(
            RequestBodyBuilder::new()
                .content(
                    "application/json",
                    ContentBuilder::new().schema(Some(body())).build(),
                )
                .required(Some(Required::True))
                .build(),
        ));
    }
    let mut responses = ResponsesBuilder::new();
    for &status in op.success {
        let mut response = ResponseBuilder::new()
            .description(success_description(status))
            .content(
                "application/json",
                ContentBuilder::new().schema(Some((op.answer)())).build(),
            );
        if status == 201 {
            response = response.header(
                "Location",
                HeaderBuilder::new()
                    .schema(ObjectBuilder::new().schema_type(Type::String))
                    .description(Some("Where the created resource is read."))
                    .build(),
            );
        }
        responses = responses.response(status.to_string(), response.build());
    }
    let mut by_status: BTreeMap<u16, Vec<&str>> = BTreeMap::new();
    for code in shared_codes(route, op)
        .into_iter()
        .chain(op.codes.iter().copied())
    {
        let codes = by_status.entry(status(code)).or_default();
        if !codes.contains(&code) {
            codes.push(code);
        }
    }
    for (status, mut codes) in by_status {
        codes.sort_unstable();
        let mut response = ResponseBuilder::new()
            .description(codes.join(", "))
            .content(
                PROBLEM_JSON,
                ContentBuilder::new().schema(Some(problem(&codes))).build(),
            );
        if status == 503 || codes.contains(&"request_in_progress") {
            response = response.header(
                "Retry-After",
                HeaderBuilder::new()
                    .schema(
                        ObjectBuilder::new()
                            .schema_type(Type::Integer)
                            .minimum(Some(0.0)),
                    )
                    .description(Some("Seconds to wait before trying again."))
                    .build(),
            );
        }
        responses = responses.response(status.to_string(), response.build());
    }
    builder.responses(responses.build()).build()
}

fn success_description(status: u16) -> &'static str {
    match status {
        201 => "Created",
        202 => "Accepted: finished in the background",
        _ => "OK",
    }
}

/// A problem whose `code` is one of `codes`.
fn problem(codes: &[&str]) -> RefOr<Schema> {
    AllOfBuilder::new()
        .item(ProblemDocument::name_ref())
        .item(
            ObjectBuilder::new().property(
                "code",
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .enum_values(Some(codes.iter().copied())),
            ),
        )
        .into()
}
