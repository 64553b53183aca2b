//! Counters in CloudWatch embedded metric format: one JSON line on stdout per count,
//! which CloudWatch Logs turns into metrics in Lambda. Elsewhere they are debug logs.

use serde_json::{json, Map, Value};

pub const NAMESPACE: &str = "stockroom";

/// The EMF document for one count; `function` becomes a dimension with the others.
pub fn emf(
    name: &str,
    value: u64,
    dimensions: &[(&str, &str)],
    function: &str,
    timestamp_ms: i64,
) -> Value {
    let mut keys: Vec<&str> = vec!["function"];
    keys.extend(dimensions.iter().map(|(k, _)| *k));
    let mut doc = Map::new();
    doc.insert(
        "_aws".into(),
        json!({
            "Timestamp": timestamp_ms,
            "CloudWatchMetrics": [{
                "Namespace": NAMESPACE,
                "Dimensions": [keys],
                "Metrics": [{"Name": name, "Unit": "Count"}],
            }],
        }),
    );
    doc.insert("function".into(), json!(function));
    for (k, v) in dimensions {
        doc.insert((*k).into(), json!(v));
    }
    doc.insert(name.into(), json!(value));
    Value::Object(doc)
}

/// Counts `value` of `name` (e.g. `Reservations`, `Rejections` by `code`).
pub fn count(name: &str, value: u64, dimensions: &[(&str, &str)]) {
    match std::env::var("AWS_LAMBDA_FUNCTION_NAME") {
        Ok(function) => {
            let now = time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000;
            println!("{}", emf(name, value, dimensions, &function, now as i64));
        }
        Err(_) => tracing::debug!(metric = name, value, ?dimensions, "metric"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emf_names_the_metric_its_dimensions_and_value() {
        let doc = emf(
            "Rejections",
            1,
            &[("code", "insufficient_stock")],
            "reserve-stock",
            1_700_000_000_000,
        );
        let directive = &doc["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(directive["Namespace"], "stockroom");
        assert_eq!(directive["Dimensions"], json!([["function", "code"]]));
        assert_eq!(
            directive["Metrics"],
            json!([{"Name": "Rejections", "Unit": "Count"}])
        );
        assert_eq!(doc["_aws"]["Timestamp"], 1_700_000_000_000i64);
        assert_eq!(doc["Rejections"], 1);
        assert_eq!(doc["code"], "insufficient_stock");
        assert_eq!(doc["function"], "reserve-stock");
    }
}
