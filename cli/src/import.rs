//! `stock import`: makes each CSV row's sku hold its `on_hand` (and `shards`) through the
//! stock admin API.
//!
//! An import is idempotent and resumable: every row is compared with the sku's stock
//! first and written only if it differs, so a second run, or a run after an interrupted
//! one, writes only what is still missing. A bad row is reported with its reason and
//! never stops the others.

use std::io::Read;

use futures::stream::{self, StreamExt};
use serde::{Deserialize, Serialize};
use serde_json::json;
use stockroom::domain::{OnHand, ShardCount, Sku};

use crate::api::{Answer, Api, CliError, Exit};

/// One CSV row, read and checked: a sku to hold `on_hand` units over `shards`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    /// The row's line in the file (the header is line 1).
    pub line: u64,
    pub sku: Sku,
    pub on_hand: OnHand,
    pub shards: Option<ShardCount>,
}

/// A row that was not applied, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Refused {
    pub line: u64,
    pub sku: String,
    pub reason: String,
}

#[derive(Deserialize)]
struct RawRow {
    sku: String,
    on_hand: String,
    #[serde(default)]
    shards: Option<String>,
}

/// The rows of a CSV with the columns `sku`, `on_hand` and optionally `shards`, and the
/// rows that cannot be applied as written. A file without those columns is bad input.
pub fn read_rows(input: impl Read) -> Result<(Vec<Row>, Vec<Refused>), CliError> {
    let mut reader = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .flexible(true)
        .from_reader(input);
    let headers = reader
        .headers()
        .map_err(|e| CliError::BadInput(format!("the CSV has no header row: {e}")))?
        .clone();
    for column in ["sku", "on_hand"] {
        if !headers.iter().any(|h| h == column) {
            return Err(CliError::BadInput(format!(
                "the CSV has no `{column}` column; its header must name sku,on_hand[,shards]"
            )));
        }
    }
    let (mut rows, mut refused) = (Vec::new(), Vec::new());
    for (index, record) in reader.records().enumerate() {
        let line = index as u64 + 2;
        let raw = record
            .and_then(|r| r.deserialize::<RawRow>(Some(&headers)))
            .map_err(|e| (String::new(), e.to_string()));
        match raw.and_then(|raw| parse_row(line, &raw).map_err(|e| (raw.sku, e))) {
            Ok(row) => rows.push(row),
            Err((sku, reason)) => refused.push(Refused { line, sku, reason }),
        }
    }
    Ok((rows, refused))
}

fn parse_row(line: u64, raw: &RawRow) -> Result<Row, String> {
    let sku = Sku::parse(&raw.sku).map_err(|e| format!("sku {:?}: {}", raw.sku, e.0))?;
    let on_hand = raw
        .on_hand
        .parse::<u64>()
        .ok()
        .and_then(|n| OnHand::try_from(serde_json::Number::from(n)).ok())
        .ok_or_else(|| {
            format!(
                "on_hand {:?} is not a whole number from 0 to 1000000000",
                raw.on_hand
            )
        })?;
    let shards = match raw.shards.as_deref() {
        None | Some("") => None,
        Some(text) => Some(
            text.parse::<u64>()
                .ok()
                .and_then(|n| ShardCount::new(n).ok())
                .ok_or_else(|| {
                    format!(
                        "shards {text:?} is not a whole number from 1 to {}",
                        ShardCount::MAX
                    )
                })?,
        ),
    };
    Ok(Row {
        line,
        sku,
        on_hand,
        shards,
    })
}

/// What an import did with each row.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ImportSummary {
    pub created: u64,
    pub updated: u64,
    pub unchanged: u64,
    pub refused: Vec<Refused>,
}

impl ImportSummary {
    pub fn exit(&self) -> Exit {
        if self.refused.is_empty() {
            Exit::Done
        } else {
            Exit::Refused
        }
    }
}

enum Applied {
    Created,
    Updated,
    Unchanged,
    Refused(Refused),
}

/// Applies every row, `concurrency` at a time, calling `progress` after each; rows
/// refused while reading are in the summary too. Stops only if the API cannot be
/// reached or refuses the caller.
pub async fn import(
    api: &Api,
    rows: Vec<Row>,
    refused_reading: Vec<Refused>,
    concurrency: usize,
    progress: impl Fn(),
) -> Result<ImportSummary, CliError> {
    let mut summary = ImportSummary {
        refused: refused_reading,
        ..ImportSummary::default()
    };
    let mut applied = stream::iter(rows)
        .map(|row| apply(api, row))
        .buffer_unordered(concurrency.max(1));
    while let Some(outcome) = applied.next().await {
        match outcome? {
            Applied::Created => summary.created += 1,
            Applied::Updated => summary.updated += 1,
            Applied::Unchanged => summary.unchanged += 1,
            Applied::Refused(refused) => summary.refused.push(refused),
        }
        progress();
    }
    summary.refused.sort_by_key(|r| r.line);
    Ok(summary)
}

async fn apply(api: &Api, row: Row) -> Result<Applied, CliError> {
    let path = format!("/skus/{}", row.sku);
    let refused = |answer: &Answer| {
        Applied::Refused(Refused {
            line: row.line,
            sku: row.sku.to_string(),
            reason: format!(
                "{} {}: {}",
                answer.status,
                answer.body["code"].as_str().unwrap_or("?"),
                answer.body["detail"].as_str().unwrap_or("no detail")
            ),
        })
    };
    let now = api.send(reqwest::Method::GET, &path, None).await?;
    let same = now.status == 200
        && now.body["on_hand"].as_u64() == Some(row.on_hand.get())
        && row
            .shards
            .is_none_or(|s| now.body["shards"].as_u64() == Some(u64::from(s.get())));
    if same {
        return Ok(Applied::Unchanged);
    }
    if now.status != 200 && now.status != 404 {
        return Ok(refused(&now));
    }
    let mut body = json!({ "on_hand": row.on_hand.get() });
    if let Some(shards) = row.shards {
        body["shards"] = json!(shards.get());
    }
    let put = api.send(reqwest::Method::PUT, &path, Some(body)).await?;
    Ok(match put.status {
        201 => Applied::Created,
        200 => Applied::Updated,
        _ => refused(&put),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_are_read_and_bad_ones_refused_with_their_line_and_reason() {
        let csv = "sku,on_hand,shards\ntea,10,\ncup, 5 ,4\nbad sku,1,\npot,-1,\nlid,3,65\nmug,2\n";
        let (rows, refused) = read_rows(csv.as_bytes()).unwrap();
        let read: Vec<(u64, String, u64, Option<u16>)> = rows
            .iter()
            .map(|r| {
                (
                    r.line,
                    r.sku.to_string(),
                    r.on_hand.get(),
                    r.shards.map(|s| s.get()),
                )
            })
            .collect();
        assert_eq!(
            read,
            vec![
                (2, "tea".into(), 10, None),
                (3, "cup".into(), 5, Some(4)),
                (7, "mug".into(), 2, None)
            ]
        );
        let lines: Vec<u64> = refused.iter().map(|r| r.line).collect();
        assert_eq!(lines, [4, 5, 6]);
        assert!(refused[0].reason.contains("bad sku"), "{:?}", refused[0]);
        assert!(refused[1].reason.contains("on_hand"), "{:?}", refused[1]);
        assert!(refused[2].reason.contains("shards"), "{:?}", refused[2]);
    }

    #[test]
    fn a_file_without_the_columns_is_bad_input() {
        for csv in ["", "name,count\ntea,1\n"] {
            let e = read_rows(csv.as_bytes()).unwrap_err();
            assert_eq!(e.exit(), Exit::BadInput, "{e}");
        }
    }

    #[test]
    fn refused_rows_end_with_their_own_exit_code() {
        let mut summary = ImportSummary::default();
        assert_eq!(summary.exit(), Exit::Done);
        summary.refused.push(Refused {
            line: 2,
            sku: "tea".into(),
            reason: "409".into(),
        });
        assert_eq!(summary.exit(), Exit::Refused);
    }
}
