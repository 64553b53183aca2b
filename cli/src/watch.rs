//! `sale watch`: a live view of a sale, redrawn every second.
//!
//! Each refresh reads each watched sku's stock (`GET /skus/{sku}`: that sku's own items,
//! never a scan of the table) and the counts the functions made (the local run serves
//! them at `GET /_local/metrics`; a deployed stack keeps them in CloudWatch, where the
//! operations dashboard shows them). Rates are the change between the newest snapshot
//! and one about `WINDOW` older, so one slow second does not make the view jump.

use std::collections::{BTreeMap, VecDeque};
use std::fmt::Write as _;
use std::future::Future;
use std::time::{Duration, Instant};

use futures::stream::{self, StreamExt, TryStreamExt};
use serde::Serialize;
use serde_json::Value;

use crate::api::{Api, CliError};

/// How far back the rates look.
pub const WINDOW: Duration = Duration::from_secs(5);
/// Where the local run serves its counts.
pub const LOCAL_METRICS_PATH: &str = "/_local/metrics";

/// What to watch: a campaign's skus, or skus by name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Watched {
    Campaign(String),
    Skus(Vec<String>),
}

/// One sku's stock at one moment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Levels {
    pub sku: String,
    pub on_hand: u64,
    pub available: u64,
    pub reserved: u64,
    pub sold: u64,
}

/// Running totals of what the functions counted.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    pub reservations: u64,
    pub orders: u64,
    pub holds_expired: u64,
    /// Refused requests by problem code.
    pub refusals: BTreeMap<String, u64>,
}

/// What one refresh read, `at` seconds after the watch began.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Snapshot {
    pub at: f64,
    pub skus: Vec<Levels>,
    /// None where the API serves no counts (a deployed stack: see the dashboard).
    pub counts: Option<Counts>,
}

/// A sku's line of the view.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SkuLine {
    #[serde(flatten)]
    pub levels: Levels,
    /// Units leaving `available` per second (reserved or sold, less those put back).
    pub taken_per_second: f64,
    pub sold_per_second: f64,
    /// At the current rate; None when nothing is being taken or it is sold out.
    pub sells_out_in_seconds: Option<f64>,
}

/// Per-second rates of the functions' counts.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Rates {
    pub reservations: f64,
    pub orders: f64,
    pub holds_expired: f64,
    pub refusals: BTreeMap<String, f64>,
}

/// One frame of the live view.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct View {
    pub title: String,
    /// The seconds the rates are measured over (0 on the first frame).
    pub over_seconds: f64,
    pub skus: Vec<SkuLine>,
    pub rates: Option<Rates>,
    /// Why this frame repeats the last one: the refresh failed.
    pub problem: Option<String>,
}

/// The view of `newest`, with rates measured since `older`.
pub fn view(title: &str, older: &Snapshot, newest: &Snapshot) -> View {
    let seconds = newest.at - older.at;
    let per_second = |now: u64, then: u64| match seconds > 0.0 {
        true => (now as f64 - then as f64) / seconds,
        false => 0.0,
    };
    let skus = newest
        .skus
        .iter()
        .map(|levels| {
            let then = older
                .skus
                .iter()
                .find(|l| l.sku == levels.sku)
                .unwrap_or(levels);
            let taken = -per_second(levels.available, then.available);
            let sells_out_in_seconds =
                (taken > 0.0 && levels.available > 0).then(|| levels.available as f64 / taken);
            SkuLine {
                levels: levels.clone(),
                taken_per_second: taken,
                sold_per_second: per_second(levels.sold, then.sold),
                sells_out_in_seconds,
            }
        })
        .collect();
    let rates = match (&older.counts, &newest.counts) {
        (Some(then), Some(now)) => Some(Rates {
            reservations: per_second(now.reservations, then.reservations),
            orders: per_second(now.orders, then.orders),
            holds_expired: per_second(now.holds_expired, then.holds_expired),
            refusals: now
                .refusals
                .iter()
                .map(|(code, n)| {
                    let before = then.refusals.get(code).copied().unwrap_or(0);
                    (code.clone(), per_second(*n, before))
                })
                .filter(|(_, rate)| *rate > 0.0)
                .collect(),
        }),
        _ => None,
    };
    View {
        title: title.to_owned(),
        over_seconds: seconds,
        skus,
        rates,
        problem: None,
    }
}

/// The view as the terminal shows it.
pub fn render(view: &View) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{} · rates over the last {:.0} s",
        view.title, view.over_seconds
    );
    let _ = writeln!(
        out,
        "{:<24} {:>9} {:>9} {:>9} {:>9} {:>8} {:>8} {:>14}",
        "sku", "on_hand", "available", "reserved", "sold", "taken/s", "sold/s", "sells out in"
    );
    for line in &view.skus {
        let l = &line.levels;
        let sells_out = match (l.available, line.sells_out_in_seconds) {
            (0, _) => "sold out".to_owned(),
            (_, Some(seconds)) => duration(seconds),
            (_, None) => "-".to_owned(),
        };
        let _ = writeln!(
            out,
            "{:<24} {:>9} {:>9} {:>9} {:>9} {:>8.1} {:>8.1} {:>14}",
            l.sku,
            l.on_hand,
            l.available,
            l.reserved,
            l.sold,
            line.taken_per_second,
            line.sold_per_second,
            sells_out
        );
    }
    match &view.rates {
        Some(rates) => {
            let _ = writeln!(
                out,
                "reservations/s {:.1} · orders/s {:.1} · holds expired/s {:.1}",
                rates.reservations, rates.orders, rates.holds_expired
            );
            let refusals: Vec<String> = rates
                .refusals
                .iter()
                .map(|(code, rate)| format!("{code} {rate:.1}"))
                .collect();
            let refusals = match refusals.is_empty() {
                true => "none".to_owned(),
                false => refusals.join(" · "),
            };
            let _ = writeln!(out, "refusals/s: {refusals}");
        }
        None => {
            let _ = writeln!(
                out,
                "reservations and refusals per second: this API serves no counts (on a deployed stack, the OperationsDashboard)"
            );
        }
    }
    if let Some(problem) = &view.problem {
        let _ = writeln!(out, "not refreshed: {problem}");
    }
    out.push_str("q or Ctrl-C quits\n");
    out
}

/// `seconds` as a person reads it: `42 s`, `3 min 20 s`, `2 h 5 min`.
fn duration(seconds: f64) -> String {
    let whole = seconds.round() as u64;
    match whole {
        0..60 => format!("{whole} s"),
        60..3600 => format!("{} min {} s", whole / 60, whole % 60),
        _ => format!("{} h {} min", whole / 3600, whole % 3600 / 60),
    }
}

/// The skus a watch covers, and its title.
async fn resolve(api: &Api, watched: &Watched) -> Result<(Vec<String>, String), CliError> {
    match watched {
        Watched::Skus(skus) => Ok((skus.clone(), format!("skus {}", skus.join(", ")))),
        Watched::Campaign(id) => {
            let campaign = crate::campaign::campaign_show(api, id).await?;
            let skus = campaign["skus"]
                .as_array()
                .map(|skus| {
                    skus.iter()
                        .filter_map(Value::as_str)
                        .map(str::to_owned)
                        .collect()
                })
                .unwrap_or_default();
            Ok((skus, format!("campaign {id}")))
        }
    }
}

/// Reads every sku's stock and the counts, once.
pub async fn snapshot(api: &Api, skus: &[String], at: f64) -> Result<Snapshot, CliError> {
    let levels: Vec<Levels> = stream::iter(skus)
        .map(|sku| async move {
            let body = api
                .send(reqwest::Method::GET, &format!("/skus/{sku}"), None)
                .await?
                .success()?;
            let level = |name: &str| body[name].as_u64().unwrap_or(0);
            Ok::<_, CliError>(Levels {
                sku: sku.clone(),
                on_hand: level("on_hand"),
                available: level("available"),
                reserved: level("reserved"),
                sold: level("sold"),
            })
        })
        .buffered(8)
        .try_collect()
        .await?;
    let answer = api
        .send(reqwest::Method::GET, LOCAL_METRICS_PATH, None)
        .await?;
    let counts = (answer.status == 200).then(|| counts(&answer.body));
    Ok(Snapshot {
        at,
        skus: levels,
        counts,
    })
}

/// The running totals in the local run's `{"counts":[{"name","dimensions","value"}]}`.
fn counts(body: &Value) -> Counts {
    let mut counts = Counts::default();
    for tallied in body["counts"].as_array().into_iter().flatten() {
        let value = tallied["value"].as_u64().unwrap_or(0);
        match tallied["name"].as_str().unwrap_or("") {
            "Reservations" => counts.reservations += value,
            "Orders" => counts.orders += value,
            "HoldsExpired" => counts.holds_expired += value,
            "Rejections" => {
                let code = tallied["dimensions"]["code"].as_str().unwrap_or("?");
                *counts.refusals.entry(code.to_owned()).or_default() += value;
            }
            _ => {}
        }
    }
    counts
}

/// Watches until `quit` completes, handing `draw` a view every `every`; the number of
/// views drawn. Fails only if the first refresh does (a later failure is shown in the
/// view, and the next refresh tries again).
pub async fn watch(
    api: &Api,
    watched: &Watched,
    every: Duration,
    mut draw: impl FnMut(&View),
    quit: impl Future<Output = ()>,
) -> Result<u64, CliError> {
    let started = Instant::now();
    let (skus, title) = resolve(api, watched).await?;
    let mut history: VecDeque<Snapshot> = VecDeque::new();
    let mut ticks = tokio::time::interval(every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut drawn = 0;
    tokio::pin!(quit);
    loop {
        tokio::select! {
            _ = &mut quit => return Ok(drawn),
            _ = ticks.tick() => {}
        }
        let at = started.elapsed().as_secs_f64();
        let frame = match snapshot(api, &skus, at).await {
            Ok(newest) => {
                history.push_back(newest);
                while history.len() > 2 && at - history[1].at >= WINDOW.as_secs_f64() {
                    history.pop_front();
                }
                let (older, newest) = (&history[0], &history[history.len() - 1]);
                view(&title, older, newest)
            }
            Err(e) if history.is_empty() => return Err(e),
            Err(e) => {
                let last = &history[history.len() - 1];
                View {
                    problem: Some(e.to_string()),
                    ..view(&title, last, last)
                }
            }
        };
        draw(&frame);
        drawn += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn levels(sku: &str, on_hand: u64, available: u64, reserved: u64, sold: u64) -> Levels {
        Levels {
            sku: sku.into(),
            on_hand,
            available,
            reserved,
            sold,
        }
    }

    fn counts(reservations: u64, refusals: &[(&str, u64)]) -> Option<Counts> {
        Some(Counts {
            reservations,
            orders: reservations / 2,
            holds_expired: 1,
            refusals: refusals.iter().map(|(c, n)| ((*c).into(), *n)).collect(),
        })
    }

    fn sale() -> (Snapshot, Snapshot) {
        let older = Snapshot {
            at: 10.0,
            skus: vec![levels("tea", 100, 80, 15, 5), levels("cup", 10, 4, 6, 0)],
            counts: counts(20, &[("campaign_not_active", 1), ("insufficient_stock", 3)]),
        };
        let newest = Snapshot {
            at: 15.0,
            skus: vec![levels("tea", 100, 60, 25, 15), levels("cup", 10, 0, 6, 4)],
            counts: counts(
                40,
                &[
                    ("campaign_not_active", 1),
                    ("insufficient_stock", 13),
                    ("purchase_limit_exceeded", 2),
                ],
            ),
        };
        (older, newest)
    }

    #[test]
    fn a_view_has_each_skus_rates_and_time_to_sell_out() {
        let (older, newest) = sale();
        let v = view("campaign drop", &older, &newest);
        assert_eq!(v.over_seconds, 5.0);
        let tea = &v.skus[0];
        assert_eq!(
            (tea.taken_per_second, tea.sold_per_second),
            (4.0, 2.0),
            "{tea:?}"
        );
        assert_eq!(tea.sells_out_in_seconds, Some(15.0));
        let cup = &v.skus[1];
        assert_eq!(
            (cup.taken_per_second, cup.sells_out_in_seconds),
            (0.8, None)
        );
        let rates = v.rates.expect("both snapshots have counts");
        assert_eq!(
            (rates.reservations, rates.orders, rates.holds_expired),
            (4.0, 2.0, 0.0)
        );
        // A code refused before the window and not since has no rate to show.
        assert_eq!(
            rates.refusals,
            BTreeMap::from([
                ("insufficient_stock".to_owned(), 2.0),
                ("purchase_limit_exceeded".to_owned(), 0.4)
            ])
        );
    }

    #[test]
    fn a_snapshot_is_rendered_as_the_operator_sees_it() {
        let (older, newest) = sale();
        let text = render(&view("campaign drop", &older, &newest));
        let expected = "\
campaign drop · rates over the last 5 s
sku                        on_hand available  reserved      sold  taken/s   sold/s   sells out in
tea                            100        60        25        15      4.0      2.0           15 s
cup                             10         0         6         4      0.8      0.8       sold out
reservations/s 4.0 · orders/s 2.0 · holds expired/s 0.0
refusals/s: insufficient_stock 2.0 · purchase_limit_exceeded 0.4
q or Ctrl-C quits
";
        assert_eq!(text, expected, "\n{text}");
    }

    #[test]
    fn a_first_frame_a_still_sale_and_a_failed_refresh_say_so() {
        let (_, newest) = sale();
        let mut first = view("skus tea", &newest, &newest);
        assert_eq!(first.over_seconds, 0.0);
        assert!(first.skus.iter().all(|l| l.taken_per_second == 0.0));
        assert_eq!(first.skus[0].sells_out_in_seconds, None);
        first.problem = Some("the API at x cannot be reached".into());
        let text = render(&first);
        let tea = text
            .lines()
            .find(|l| l.starts_with("tea"))
            .expect("a tea line");
        assert!(tea.ends_with(" -"), "no rate, no time to sell out: {tea}");
        assert!(
            text.contains("not refreshed: the API at x cannot be reached"),
            "{text}"
        );
        let blind = Snapshot {
            counts: None,
            ..newest.clone()
        };
        let text = render(&view("skus tea", &blind, &blind));
        assert!(text.contains("serves no counts"), "{text}");
    }

    #[test]
    fn durations_read_as_people_say_them() {
        assert_eq!(duration(42.4), "42 s");
        assert_eq!(duration(200.0), "3 min 20 s");
        assert_eq!(duration(7500.0), "2 h 5 min");
    }

    #[test]
    fn the_local_runs_counts_are_summed_by_name_and_code() {
        let body = serde_json::json!({"counts": [
            {"name": "Reservations", "dimensions": {}, "value": 7},
            {"name": "Orders", "dimensions": {}, "value": 2},
            {"name": "HoldsExpired", "dimensions": {}, "value": 1},
            {"name": "Rejections", "dimensions": {"code": "insufficient_stock"}, "value": 5},
            {"name": "ServerErrors", "dimensions": {"code": "internal_error", "route": "r"}, "value": 9},
        ]});
        let c = super::counts(&body);
        assert_eq!((c.reservations, c.orders, c.holds_expired), (7, 2, 1));
        assert_eq!(
            c.refusals,
            BTreeMap::from([("insufficient_stock".to_owned(), 5)])
        );
    }
}
