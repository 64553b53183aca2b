//! Counters in CloudWatch embedded metric format: one JSON line on stdout per count,
//! which CloudWatch Logs turns into metrics in Lambda. Elsewhere they are debug logs, and
//! a process that asks for it (the local run) also keeps a running tally of them, which
//! the operator's live view reads as it would read CloudWatch.

use std::collections::BTreeMap;
use std::sync::{Mutex, OnceLock};

use serde::Serialize;
use serde_json::{json, Map, Value};

pub const NAMESPACE: &str = "stockroom";

/// The EMF document for one count; `function` becomes a dimension with the others.
/// With `total`, the count is also published without dimensions, for an alarm on the sum.
pub fn emf(
    name: &str,
    value: u64,
    dimensions: &[(&str, &str)],
    function: &str,
    timestamp_ms: i64,
    total: bool,
) -> Value {
    let mut keys: Vec<&str> = vec!["function"];
    keys.extend(dimensions.iter().map(|(k, _)| *k));
    let sets = if total {
        json!([keys, []])
    } else {
        json!([keys])
    };
    let mut doc = Map::new();
    doc.insert(
        "_aws".into(),
        json!({
            "Timestamp": timestamp_ms,
            "CloudWatchMetrics": [{
                "Namespace": NAMESPACE,
                "Dimensions": sets,
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
    publish(name, value, dimensions, false);
}

/// Counts like `count`, and also into the dimensionless total an alarm watches.
pub fn count_with_total(name: &str, value: u64, dimensions: &[(&str, &str)]) {
    publish(name, value, dimensions, true);
}

/// One count: the metric, its dimensions, and whether it went into the total too.
#[cfg(test)]
pub(crate) type Counted = (String, Vec<(String, String)>, bool);

/// What this process counted, for the unit tests of the code that counts.
#[cfg(test)]
pub(crate) static COUNTED: std::sync::Mutex<Vec<Counted>> = std::sync::Mutex::new(Vec::new());

/// One metric with one set of dimensions, and everything counted into it so far.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Tallied {
    pub name: String,
    pub dimensions: BTreeMap<String, String>,
    pub value: u64,
}

type TallyKey = (String, BTreeMap<String, String>);

static TALLY: OnceLock<Mutex<BTreeMap<TallyKey, u64>>> = OnceLock::new();

/// From now on this process keeps a running tally of every count.
pub fn keep_tally() {
    TALLY.get_or_init(Mutex::default);
}

/// Every count this process kept since `keep_tally` (none if it never asked).
pub fn tally() -> Vec<Tallied> {
    let Some(tally) = TALLY.get() else {
        return Vec::new();
    };
    let tally = tally.lock().unwrap_or_else(|e| e.into_inner());
    tally
        .iter()
        .map(|((name, dimensions), value)| Tallied {
            name: name.clone(),
            dimensions: dimensions.clone(),
            value: *value,
        })
        .collect()
}

fn publish(name: &str, value: u64, dimensions: &[(&str, &str)], total: bool) {
    if let Some(tally) = TALLY.get() {
        let key = (
            name.to_owned(),
            dimensions
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        );
        *tally
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(key)
            .or_default() += value;
    }
    #[cfg(test)]
    COUNTED.lock().unwrap_or_else(|e| e.into_inner()).push((
        name.to_owned(),
        dimensions
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect(),
        total,
    ));
    match std::env::var("AWS_LAMBDA_FUNCTION_NAME") {
        Ok(function) => {
            let now = time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000;
            println!(
                "{}",
                emf(name, value, dimensions, &function, now as i64, total)
            );
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
            false,
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

    #[test]
    fn a_kept_tally_adds_up_each_metric_and_dimension_set() {
        let tallied = |name: &str, code: &str| {
            tally()
                .into_iter()
                .find(|t| {
                    t.name == name && t.dimensions.get("code").map(String::as_str) == Some(code)
                })
                .map_or(0, |t| t.value)
        };
        // A name no code publishes (and that the template's dashboard test, which reads
        // the names passed to `count` as literals, does not see).
        let metric = "TallyTest";
        keep_tally();
        let (a, b) = (tallied(metric, "a"), tallied(metric, "b"));
        count(metric, 2, &[("code", "a")]);
        count(metric, 3, &[("code", "a")]);
        count_with_total(metric, 1, &[("code", "b")]);
        assert_eq!(tallied(metric, "a"), a + 5);
        assert_eq!(tallied(metric, "b"), b + 1);
    }

    #[test]
    fn a_total_adds_the_dimensionless_set() {
        let doc = emf(
            "ServerErrors",
            1,
            &[("code", "internal_error")],
            "f",
            0,
            true,
        );
        assert_eq!(
            doc["_aws"]["CloudWatchMetrics"][0]["Dimensions"],
            json!([["function", "code"], []])
        );
    }
}
