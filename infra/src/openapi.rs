//! The OpenAPI 3.1 document of the API: paths from the functions' routes, shapes from the
//! types the handlers read and write. `openapi.json` at the top of the repository is this
//! document; a test regenerates it and fails when they differ.

use std::collections::BTreeMap;

use place_order::OrderBody;
use refund::NewRefund;
use reserve_stock::NewReservation;
use serde_json::{json, Value};
use stock_admin::{AdjustmentBody, SetStockBody};
use stockroom::api::{Campaign, Order, Refund, Reservation, SkuPage, StockLevels};
use stockroom::domain::{CampaignId, CampaignTerms, OrderId, PageLimit, ReservationId, Sku};
use stockroom::http::Route;
use stockroom::openapi::{NameRef, ProblemDocument};
use utoipa::openapi::header::HeaderBuilder;
use utoipa::openapi::link::{Link, LinkBuilder};
use utoipa::openapi::path::{
    HttpMethod, OperationBuilder, ParameterBuilder, ParameterIn, PathItem, PathsBuilder,
};
use utoipa::openapi::request_body::RequestBodyBuilder;
use utoipa::openapi::response::{ResponseBuilder, ResponsesBuilder};
use utoipa::openapi::schema::{
    AllOfBuilder, ComponentsBuilder, ObjectBuilder, OneOfBuilder, Schema, SchemaType, Type,
};
use utoipa::openapi::security::{
    ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme,
};
use utoipa::openapi::{ContentBuilder, InfoBuilder, OpenApi, OpenApiBuilder, RefOr, Required};
use utoipa::ToSchema;

use crate::server::Function;

const PROBLEM_JSON: &str = "application/problem+json";

/// How one route answers: its success statuses and the problem codes it may return
/// besides those every route of its kind shares (see `shared_codes`).
struct Operation {
    /// The `operationId` clients and links name it by.
    id: &'static str,
    summary: &'static str,
    body: Option<fn() -> RefOr<Schema>>,
    /// `true` when the route reads an `Idempotency-Key`.
    idempotent: bool,
    success: &'static [u16],
    answer: fn() -> RefOr<Schema>,
    codes: &'static [&'static str],
    /// The calls a success makes possible, as OpenAPI links.
    next: Vec<Next>,
    /// A request body that succeeds once sku-1 has stock (`infra/contract` gives it some)
    /// and, for a hold, once the campaign example has run.
    example: Option<Value>,
}

/// A link, by `name`, from a success to the operation it names, filling in a path
/// parameter and the body with runtime expressions (`$request.path.sku`,
/// `$response.body#/order_id`) or literals.
struct Next {
    name: &'static str,
    operation: &'static str,
    parameter: Option<(&'static str, &'static str)>,
    body: Option<Value>,
}

fn path(operation: &'static str, parameter: &'static str, value: &'static str) -> Next {
    Next {
        name: operation,
        operation,
        parameter: Some((parameter, value)),
        body: None,
    }
}

fn body(operation: &'static str, body: Value) -> Next {
    Next {
        name: operation,
        operation,
        parameter: None,
        body: Some(body),
    }
}

impl Next {
    /// The same call with `body`, as a link of its own.
    fn with_body(self, name: &'static str, body: Value) -> Self {
        Self {
            name,
            body: Some(body),
            ..self
        }
    }
}

impl Operation {
    fn then(self, next: Vec<Next>) -> Self {
        Self { next, ..self }
    }

    fn example(self, example: Value) -> Self {
        Self {
            example: Some(example),
            ..self
        }
    }
}

/// The API's operations, keyed by route; `document` fails on a route missing here.
fn operations() -> BTreeMap<(&'static str, &'static str), Operation> {
    let op = |id, summary, body, idempotent, success, answer, codes| Operation {
        id,
        summary,
        body,
        idempotent,
        success,
        answer,
        codes,
        next: Vec::new(),
        example: None,
    };
    BTreeMap::from([
        (
            ("PUT", "/skus/{sku}"),
            op(
                "setStock",
                "Set a sku's units on hand (and its shards)",
                Some(SetStockBody::name_ref as fn() -> _),
                false,
                &[200, 201],
                StockLevels::name_ref as fn() -> _,
                &[][..],
            )
            .then(vec![
                path("getStock", "sku", "$request.path.sku"),
                path("adjustStock", "sku", "$request.path.sku"),
                body(
                    "reserveStock",
                    json!({"lines": [{"sku": "$request.path.sku", "quantity": 1}]}),
                ),
                body(
                    "placeOrder",
                    json!({"lines": [{"sku": "$request.path.sku", "quantity": 1}]}),
                ),
            ])
            .example(json!({"on_hand": 1000, "shards": 2})),
        ),
        (
            ("GET", "/skus/{sku}"),
            op(
                "getStock",
                "Read a sku's stock",
                None,
                false,
                &[200],
                StockLevels::name_ref,
                &["sku_not_found"],
            ),
        ),
        (
            ("GET", "/skus"),
            op(
                "listSkus",
                "List skus with their stock, a page at a time",
                None,
                false,
                &[200],
                SkuPage::name_ref,
                &["invalid_request"],
            ),
        ),
        (
            ("POST", "/skus/{sku}/adjustments"),
            op(
                "adjustStock",
                "Add or remove units",
                Some(AdjustmentBody::name_ref),
                true,
                &[200],
                StockLevels::name_ref,
                &["sku_not_found", "insufficient_stock"],
            )
            .then(vec![path("getStock", "sku", "$request.path.sku")])
            .example(json!({"delta": 5, "reason": "found in the back room"})),
        ),
        (
            ("PUT", "/campaigns/{id}"),
            op(
                "putCampaign",
                "Create or replace a campaign",
                Some(CampaignTerms::name_ref),
                false,
                &[200, 201],
                Campaign::name_ref,
                &[],
            )
            .then(vec![path("getCampaign", "id", "$request.path.id")])
            .example(json!({"skus": ["sku-1"], "starts_at": "2026-01-01T00:00:00.000Z", "ends_at": "2999-12-31T23:59:59.999Z", "per_customer_limit": 5})),
        ),
        (
            ("GET", "/campaigns/{id}"),
            op(
                "getCampaign",
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
                "reserveStock",
                "Hold units",
                Some(NewReservation::name_ref),
                true,
                &[201],
                Reservation::name_ref,
                &[
                    "forbidden",
                    "sku_not_found",
                    "insufficient_stock",
                    "too_many_stock_items",
                    "campaign_not_found",
                    "campaign_not_active",
                    "campaign_required",
                    "purchase_limit_exceeded",
                ],
            )
            .then(vec![
                path("getReservation", "id", "$response.body#/reservation_id"),
                path("releaseReservation", "id", "$response.body#/reservation_id"),
                body(
                    "placeOrder",
                    json!({"reservation_id": "$response.body#/reservation_id"}),
                ),
            ])
            .example(json!({"lines": [{"sku": "sku-1", "quantity": 2}], "customer_id": "customer-1", "campaign_id": "spring-sale", "hold_seconds": 900})),
        ),
        (
            ("GET", "/reservations/{id}"),
            op(
                "getReservation",
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
                "releaseReservation",
                "Release a reservation (again 200 once released or expired)",
                None,
                false,
                &[200],
                Reservation::name_ref,
                &["reservation_not_found", "reservation_committed"],
            )
            .then(vec![path("getReservation", "id", "$request.path.id")]),
        ),
        (
            ("POST", "/orders"),
            op(
                "placeOrder",
                "Place an order from a reservation or straight from stock",
                Some(OrderBody::name_ref),
                true,
                &[201],
                Order::name_ref,
                &[
                    "forbidden",
                    "campaign_required",
                    "reservation_not_found",
                    "reservation_expired",
                    "reservation_not_held",
                    "sku_not_found",
                    "insufficient_stock",
                    "too_many_stock_items",
                ],
            )
            .then(vec![
                path("getOrder", "id", "$response.body#/order_id"),
                path("refundOrder", "id", "$response.body#/order_id"),
                // Without restock a refund completes at once (201), with it later (202).
                path("refundOrder", "id", "$response.body#/order_id")
                    .with_body("refundOrderWithoutRestock", json!({"restock": false})),
            ])
            .example(json!({"lines": [{"sku": "sku-1", "quantity": 1}], "customer_id": "customer-1"})),
        ),
        (
            ("GET", "/orders/{id}"),
            op(
                "getOrder",
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
                "refundOrder",
                "Refund lines of an order (no lines: all that is left)",
                Some(NewRefund::name_ref),
                true,
                &[201, 202],
                Refund::name_ref,
                &["order_not_found", "refund_exceeds_order"],
            )
            .then(vec![path("getOrder", "id", "$request.path.id")])
            .example(json!({"lines": [{"sku": "sku-1", "quantity": 1}], "restock": true, "reason": "damaged in transit"})),
        ),
    ])
}

/// The status each problem code is answered with.
fn status(code: &str) -> u16 {
    match code {
        "invalid_request" | "idempotency_key_required" => 400,
        "unauthorized" => 401,
        "forbidden" => 403,
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
    let mut codes = vec![
        "unauthorized",
        "internal_error",
        "contention",
        "service_unavailable",
    ];
    if is_admin(route) {
        // A verified caller that is not a back-office system.
        codes.push("forbidden");
    }
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

/// A stock admin route: IAM (SigV4) callers only.
fn is_admin(route: Route) -> bool {
    Function::StockAdmin.routes().contains(&route)
}

/// The security scheme a route's callers prove themselves with.
fn scheme(route: Route) -> &'static str {
    if is_admin(route) {
        IAM
    } else {
        CUSTOMER_JWT
    }
}

const CUSTOMER_JWT: &str = "customerJwt";
const IAM: &str = "iamSigV4";

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
/// `json()` is what clients read.
fn document() -> OpenApi {
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
    let mut value = serde_json::to_value(document()).expect("the document is JSON");
    spell_links(&mut value);
    let mut text = serde_json::to_string_pretty(&value).expect("the document is JSON");
    text.push('\n');
    text
}

/// utoipa 5 writes a link's members in snake_case (`operation_id`); OpenAPI spells them
/// in camelCase, and tools ignore or reject the other spelling.
fn spell_links(document: &mut Value) {
    let operations = document["paths"]
        .as_object_mut()
        .into_iter()
        .flat_map(|paths| paths.values_mut())
        .filter_map(Value::as_object_mut)
        .flat_map(|item| item.values_mut());
    let links = operations
        .filter_map(|op| op["responses"].as_object_mut())
        .flat_map(|responses| responses.values_mut())
        .filter_map(|response| response.get_mut("links").and_then(Value::as_object_mut))
        .flat_map(|links| links.values_mut())
        .filter_map(Value::as_object_mut);
    for link in links {
        for (snake, camel) in [
            ("operation_id", "operationId"),
            ("operation_ref", "operationRef"),
            ("request_body", "requestBody"),
        ] {
            if let Some(member) = link.remove(snake) {
                link.insert(camel.into(), member);
            }
        }
    }
}

fn components() -> utoipa::openapi::Components {
    let mut schemas = Vec::new();
    fn add<T: ToSchema>(schemas: &mut Vec<(String, RefOr<Schema>)>) {
        add_with::<T>(schemas, None);
    }
    /// `T`'s schema, and with `rule` a rule across its members that the derive cannot state.
    fn add_with<T: ToSchema>(schemas: &mut Vec<(String, RefOr<Schema>)>, rule: Option<Schema>) {
        let schema = match rule {
            Some(rule) => AllOfBuilder::new().item(T::schema()).item(rule).into(),
            None => T::schema(),
        };
        schemas.push((T::name().into(), schema));
        T::schemas(schemas);
    }
    add::<StockLevels>(&mut schemas);
    add::<SkuPage>(&mut schemas);
    add::<SetStockBody>(&mut schemas);
    add::<AdjustmentBody>(&mut schemas);
    add::<Campaign>(&mut schemas);
    add::<CampaignTerms>(&mut schemas);
    add::<Reservation>(&mut schemas);
    add::<NewReservation>(&mut schemas);
    add::<Order>(&mut schemas);
    add_with::<OrderBody>(&mut schemas, Some(one_order_source()));
    add::<Refund>(&mut schemas);
    add::<NewRefund>(&mut schemas);
    add::<ProblemDocument>(&mut schemas);
    add::<Sku>(&mut schemas);
    add::<CampaignId>(&mut schemas);
    add::<ReservationId>(&mut schemas);
    add::<OrderId>(&mut schemas);
    let jwt = HttpBuilder::new()
        .scheme(HttpAuthScheme::Bearer)
        .bearer_format("JWT")
        .description(Some(
            "A customer's or staff member's token, checked by API Gateway's JWT authorizer \
             (locally: `./infra/token customer ID` or `./infra/token staff ID`).",
        ))
        .build();
    let iam = ApiKey::Header(ApiKeyValue::with_description(
        "Authorization",
        "AWS Signature Version 4 of an IAM principal (locally: `./infra/token admin`, as a \
         bearer token).",
    ));
    ComponentsBuilder::new()
        .schemas_from_iter(schemas)
        .security_scheme(CUSTOMER_JWT, SecurityScheme::Http(jwt))
        .security_scheme(IAM, SecurityScheme::ApiKey(iam))
        .build()
}

/// An object in which `member` is present and not null.
fn given(member: &str) -> ObjectBuilder {
    ObjectBuilder::new().required(member).property(
        member,
        ObjectBuilder::new().schema_type(SchemaType::from_iter([
            Type::String,
            Type::Integer,
            Type::Number,
            Type::Boolean,
            Type::Array,
            Type::Object,
        ])),
    )
}

/// An order comes from a hold or from stock: exactly one of the two, not null.
fn one_order_source() -> Schema {
    OneOfBuilder::new()
        .item(given("reservation_id"))
        .item(given("lines"))
        .description(Some("Exactly one of `reservation_id` and `lines`."))
        .into()
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

/// The query parameters a route reads; any other is refused.
fn query_parameters(route: Route) -> Vec<utoipa::openapi::path::Parameter> {
    if (route.method, route.path) != ("GET", "/skus") {
        return Vec::new();
    }
    let after = ParameterBuilder::new()
        .name("after")
        .parameter_in(ParameterIn::Query)
        .required(Required::False)
        .description(Some("The page starts after this sku (a page's `next`)."))
        .schema(Some(Sku::name_ref()))
        .build();
    let limit = ParameterBuilder::new()
        .name("limit")
        .parameter_in(ParameterIn::Query)
        .required(Required::False)
        .description(Some("Skus on the page, 50 unless given."))
        .schema(Some(
            ObjectBuilder::new()
                .schema_type(Type::Integer)
                .minimum(Some(1))
                .maximum(Some(i64::from(PageLimit::MAX))),
        ))
        .build();
    vec![after, limit]
}

fn operation(route: Route, op: &Operation) -> utoipa::openapi::path::Operation {
    let mut builder = OperationBuilder::new()
        .operation_id(Some(op.id))
        .summary(Some(op.summary))
        .security(SecurityRequirement::new::<_, _, String>(scheme(route), []));
    if let Some(parameter) = path_parameter(route.path) {
        builder = builder.parameter(parameter);
    }
    for parameter in query_parameters(route) {
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
                    ContentBuilder::new()
                        .schema(Some(body()))
                        .example(op.example.clone())
                        .build(),
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
        for next in &op.next {
            let (name, link) = link(next);
            response = response.link(name, link);
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

fn link(next: &Next) -> (&'static str, Link) {
    let mut link = LinkBuilder::new()
        .operation_id(next.operation)
        .request_body(next.body.clone());
    if let Some((name, value)) = next.parameter {
        link = link.parameter(name, value);
    }
    (next.name, link.build())
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
