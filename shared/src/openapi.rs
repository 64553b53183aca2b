//! OpenAPI schemas of the parsed newtypes and of the problem document. The newtypes read
//! JSON through `TryFrom`, so their limits live in code, not in derives: each schema here
//! states the same limits from the same constants.

use utoipa::openapi::schema::{
    ArrayBuilder, KnownFormat, ObjectBuilder, OneOfBuilder, Schema, SchemaFormat, Type,
};
use utoipa::openapi::RefOr;
use utoipa::{PartialSchema, ToSchema};

use crate::domain::{
    AdjustmentId, CampaignId, CommandId, CustomerId, Delta, HoldDuration, Line, Lines, OnHand,
    OrderId, Quantity, Reason, RefundId, ReservationId, ShardCount, Sku, Timestamp,
};

/// A sku or campaign id; the lookahead keeps out "." and "..", which a URL path cannot carry.
const NAME_PATTERN: &str = r"^(?!\.\.?$)[A-Za-z0-9._-]{1,64}$";

fn text(description: &str) -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .description(Some(description))
}

fn whole(description: &str, min: i64, max: i64) -> RefOr<Schema> {
    ObjectBuilder::new()
        .schema_type(Type::Integer)
        .format(Some(SchemaFormat::KnownFormat(KnownFormat::Int64)))
        .minimum(Some(min as f64))
        .maximum(Some(max as f64))
        .description(Some(description))
        .into()
}

macro_rules! schema {
    ($name:ty, $body:expr) => {
        impl PartialSchema for $name {
            fn schema() -> RefOr<Schema> {
                $body
            }
        }
        impl ToSchema for $name {}
    };
}

schema!(
    Sku,
    text("A stock-keeping unit: letters, digits, '.', '_' or '-'; not '.' or '..'.")
        .pattern(Some(NAME_PATTERN))
        .examples(["sku-1"])
        .into()
);
schema!(
    CampaignId,
    text("A campaign id, spelled like a sku.")
        .pattern(Some(NAME_PATTERN))
        .examples(["spring-sale"])
        .into()
);
schema!(
    CustomerId,
    text("A customer: 1 to 128 visible ASCII characters.")
        .pattern(Some("^[!-~]{1,128}$"))
        .examples(["customer-1"])
        .into()
);
schema!(
    Reason,
    text("Why, in 1 to 500 characters.")
        .min_length(Some(1))
        .max_length(Some(Reason::MAX_CHARS))
        .into()
);
schema!(
    Timestamp,
    text("RFC 3339, UTC, to the millisecond.")
        .format(Some(SchemaFormat::KnownFormat(KnownFormat::DateTime)))
        .into()
);
schema!(
    Quantity,
    whole("Units of one sku.", 1, i64::from(Quantity::MAX))
);
schema!(
    Delta,
    // Two ranges, because JSON Schema has no "except 0" for a number.
    OneOfBuilder::new()
        .item(whole("Units to remove.", -Delta::LIMIT, -1))
        .item(whole("Units to add.", 1, Delta::LIMIT))
        .description(Some(
            "Units to add (positive) or remove (negative); never 0."
        ))
        .into()
);
schema!(
    OnHand,
    whole("Units on hand, over every shard.", 0, Delta::LIMIT)
);
schema!(
    HoldDuration,
    whole(
        "How long the hold lasts, in seconds (900 unless given).",
        60,
        3600
    )
);
schema!(
    ShardCount,
    whole(
        "How many stock items the units are spread over.",
        1,
        i64::from(ShardCount::MAX)
    )
);

impl PartialSchema for Lines {
    fn schema() -> RefOr<Schema> {
        ArrayBuilder::new()
            .items(Line::name_ref())
            .min_items(Some(1))
            .max_items(Some(Lines::MAX))
            .description(Some("1 to 25 lines, each sku at most once."))
            .into()
    }
}

impl ToSchema for Lines {
    fn schemas(schemas: &mut Vec<(String, RefOr<Schema>)>) {
        schemas.push((Line::name().into(), Line::schema()));
        <Line as ToSchema>::schemas(schemas);
    }
}

/// `$ref` to a named schema.
pub trait NameRef {
    fn name_ref() -> RefOr<Schema>;
}

impl<T: ToSchema> NameRef for T {
    fn name_ref() -> RefOr<Schema> {
        RefOr::Ref(utoipa::openapi::Ref::from_schema_name(T::name()))
    }
}

macro_rules! prefixed_ids {
    ($($name:ty),*) => {$(
        schema!(
            $name,
            text(concat!(stringify!($name), ": a prefix and a ULID."))
                .pattern(Some(format!("^{}[0-9A-HJKMNP-TV-Z]{{26}}$", <$name>::PREFIX)))
                .into()
        );
    )*};
}

prefixed_ids!(AdjustmentId, CommandId, OrderId, RefundId, ReservationId);

/// An RFC 9457 problem document (`application/problem+json`); `code` is machine-readable,
/// and some codes add members (`sku`, `requested`, `available`, `allowed`, ...).
pub struct ProblemDocument;

impl PartialSchema for ProblemDocument {
    fn schema() -> RefOr<Schema> {
        let string = || ObjectBuilder::new().schema_type(Type::String);
        ObjectBuilder::new()
            .property("type", string())
            .property("title", string())
            .property(
                "status",
                ObjectBuilder::new()
                    .schema_type(Type::Integer)
                    .minimum(Some(400.0))
                    .maximum(Some(599.0)),
            )
            .property("detail", string())
            .property("code", string().pattern(Some("^[a-z_]+$")))
            .required("type")
            .required("title")
            .required("status")
            .required("code")
            .description(Some(
                "RFC 9457 problem details; extra members depend on `code`.",
            ))
            .into()
    }
}

impl ToSchema for ProblemDocument {
    fn name() -> std::borrow::Cow<'static, str> {
        "Problem".into()
    }
}
