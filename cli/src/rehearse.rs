//! `sale rehearse`: a bounded flash sale against the local run, and a report of it.
//!
//! The seed fixes every choice (which buyer, which sku, how many, and whether the hold is
//! then ordered, released or kept), so two rehearsals with one seed ask for the same
//! things; each run's idempotency keys are its own, so a second run is a second sale.
//! Reservations start at the asked rate, at most `IN_FLIGHT` at once. At the end every
//! sku's books are read and checked: `on_hand = available + reserved + sold`, and
//! `reserved + sold` grew by exactly the units the rehearsal's holds still keep or sold.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use futures::stream::{self, StreamExt};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::Serialize;
use serde_json::{json, Value};

use crate::api::{Api, CliError};

/// Requests in flight at most, whatever the rate.
pub const IN_FLIGHT: usize = 64;
/// Holds last this long, longer than any rehearsal, so none expires during one.
const HOLD_SECONDS: u32 = 3600;

/// What to rehearse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rehearsal {
    pub skus: Vec<String>,
    pub campaign: Option<String>,
    /// Distinct customers, `buyer-1` .. `buyer-N`.
    pub buyers: u32,
    /// Reservations started per second.
    pub rate: u32,
    pub duration: Duration,
    pub seed: u64,
    /// Units per reservation: from 1 to this.
    pub max_quantity: u32,
}

/// What a buyer does with a hold it got.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Then {
    Order,
    Release,
    Keep,
}

/// One buyer's visit: when it starts, what it reserves, and what follows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Visit {
    pub at: Duration,
    pub buyer: u32,
    pub sku: usize,
    pub quantity: u32,
    pub then: Then,
}

/// Every visit of `rehearsal`, in time order: `rate` a second for its duration.
pub fn plan(rehearsal: &Rehearsal) -> Vec<Visit> {
    let mut rng = StdRng::seed_from_u64(rehearsal.seed);
    let total = u64::from(rehearsal.rate) * rehearsal.duration.as_secs();
    (0..total)
        .map(|n| Visit {
            at: Duration::from_secs_f64(n as f64 / f64::from(rehearsal.rate.max(1))),
            buyer: rng.random_range(1..=rehearsal.buyers.max(1)),
            sku: rng.random_range(0..rehearsal.skus.len().max(1)),
            quantity: rng.random_range(1..=rehearsal.max_quantity.max(1)),
            then: match rng.random_range(0..10) {
                0..5 => Then::Order,
                5..7 => Then::Release,
                _ => Then::Keep,
            },
        })
        .collect()
}

/// How long reservations took to answer, in milliseconds.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Latency {
    pub p50: f64,
    pub p99: f64,
    pub max: f64,
}

impl Latency {
    fn of(mut millis: Vec<f64>) -> Self {
        if millis.is_empty() {
            return Self::default();
        }
        millis.sort_by(f64::total_cmp);
        let at = |q: f64| millis[((millis.len() - 1) as f64 * q).round() as usize];
        Self {
            p50: at(0.50),
            p99: at(0.99),
            max: millis[millis.len() - 1],
        }
    }
}

/// One sku's books at the end, and whether they balance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Books {
    pub sku: String,
    pub on_hand: u64,
    pub available: u64,
    pub reserved: u64,
    pub sold: u64,
    /// Units the rehearsal's holds still keep or sold.
    pub taken_by_rehearsal: i64,
    /// How much `reserved + sold` grew during the rehearsal.
    pub reserved_and_sold_grew: i64,
    pub balanced: bool,
}

/// What the rehearsal did and found.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Report {
    pub reservations_asked: u64,
    pub reservations_made: u64,
    pub reservations_refused: u64,
    pub orders: u64,
    pub releases: u64,
    /// Refused requests (4xx) by problem code.
    pub refusals: BTreeMap<String, u64>,
    /// Answers that were not a refusal: 5xx by code, or `unreachable`.
    pub failures: BTreeMap<String, u64>,
    /// Of `POST /reservations`.
    pub latency_ms: Latency,
    pub seconds: f64,
    pub books: Vec<Books>,
    pub books_balance: bool,
}

/// What one visit came to.
#[derive(Default)]
struct Outcome {
    reserve_millis: f64,
    made: bool,
    refused: bool,
    ordered: bool,
    released: bool,
    /// Units the visit's hold still keeps or sold.
    kept: u32,
    refusals: Vec<String>,
    failures: Vec<String>,
}

impl Outcome {
    /// Notes a non-2xx answer by its code.
    fn note(&mut self, status: u16, body: &Value) {
        let code = body["code"].as_str().unwrap_or("no_code").to_owned();
        match status {
            400..500 => self.refusals.push(code),
            _ => self.failures.push(code),
        }
    }
}

/// The stock levels of every sku, in order.
async fn levels(admin: &Api, skus: &[String]) -> Result<Vec<Value>, CliError> {
    let mut all = Vec::with_capacity(skus.len());
    for sku in skus {
        let path = format!("/skus/{sku}");
        all.push(
            admin
                .send(reqwest::Method::GET, &path, None)
                .await?
                .success()?,
        );
    }
    Ok(all)
}

/// Runs `rehearsal`: the buyers' calls with `buyers` (a staff token, acting for each
/// buyer), the books read with `admin`; `progress` after each visit.
pub async fn rehearse(
    admin: &Api,
    buyers: &Api,
    rehearsal: &Rehearsal,
    progress: impl Fn(),
) -> Result<Report, CliError> {
    let before = levels(admin, &rehearsal.skus).await?;
    let run = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let visits = plan(rehearsal);
    let progress = &progress;
    let started = Instant::now();
    let outcomes: Vec<(usize, Outcome)> = stream::iter(visits.into_iter().enumerate())
        .map(|(n, visit)| {
            let key = format!("rehearsal-{run:x}-{n}");
            async move {
                tokio::time::sleep_until((started + visit.at).into()).await;
                let outcome = shop(buyers, rehearsal, &visit, &key).await;
                progress();
                (visit.sku, outcome)
            }
        })
        .buffer_unordered(IN_FLIGHT)
        .collect()
        .await;
    let seconds = started.elapsed().as_secs_f64();

    let mut report = Report {
        reservations_asked: outcomes.len() as u64,
        seconds,
        ..Report::default()
    };
    let mut taken = vec![0i64; rehearsal.skus.len()];
    let mut millis = Vec::with_capacity(outcomes.len());
    for (sku, outcome) in outcomes {
        millis.push(outcome.reserve_millis);
        report.reservations_made += u64::from(outcome.made);
        report.reservations_refused += u64::from(outcome.refused);
        report.orders += u64::from(outcome.ordered);
        report.releases += u64::from(outcome.released);
        taken[sku] += i64::from(outcome.kept);
        for code in outcome.refusals {
            *report.refusals.entry(code).or_default() += 1;
        }
        for code in outcome.failures {
            *report.failures.entry(code).or_default() += 1;
        }
    }
    report.latency_ms = Latency::of(millis);

    let after = levels(admin, &rehearsal.skus).await?;
    for (((sku, then), now), taken) in rehearsal.skus.iter().zip(&before).zip(&after).zip(taken) {
        let level = |view: &Value, name: &str| view[name].as_u64().unwrap_or(0);
        let grew = (level(now, "reserved") + level(now, "sold")) as i64
            - (level(then, "reserved") + level(then, "sold")) as i64;
        let (on_hand, available, reserved, sold) = (
            level(now, "on_hand"),
            level(now, "available"),
            level(now, "reserved"),
            level(now, "sold"),
        );
        report.books.push(Books {
            sku: sku.clone(),
            on_hand,
            available,
            reserved,
            sold,
            taken_by_rehearsal: taken,
            reserved_and_sold_grew: grew,
            balanced: on_hand == available + reserved + sold && grew == taken,
        });
    }
    report.books_balance = report.books.iter().all(|b| b.balanced);
    Ok(report)
}

/// One buyer's visit: a reservation, then an order, a release, or nothing.
async fn shop(buyers: &Api, rehearsal: &Rehearsal, visit: &Visit, key: &str) -> Outcome {
    let mut outcome = Outcome::default();
    let mut body = json!({
        "lines": [{"sku": rehearsal.skus[visit.sku], "quantity": visit.quantity}],
        "customer_id": format!("buyer-{}", visit.buyer),
        "hold_seconds": HOLD_SECONDS,
    });
    if let Some(campaign) = &rehearsal.campaign {
        body["campaign_id"] = json!(campaign);
    }
    let asked = Instant::now();
    let reserved = buyers
        .send_keyed(
            reqwest::Method::POST,
            "/reservations",
            Some(key),
            Some(body),
        )
        .await;
    outcome.reserve_millis = asked.elapsed().as_secs_f64() * 1000.0;
    let reservation = match reserved {
        Ok(answer) if answer.status == 201 => answer.body,
        Ok(answer) => {
            outcome.refused = (400..500).contains(&answer.status);
            outcome.note(answer.status, &answer.body);
            return outcome;
        }
        Err(_) => {
            outcome.failures.push("unreachable".into());
            return outcome;
        }
    };
    outcome.made = true;
    outcome.kept = visit.quantity;
    let id = reservation["reservation_id"].as_str().unwrap_or_default();
    let next = match visit.then {
        Then::Keep => return outcome,
        Then::Order => {
            let body = json!({ "reservation_id": id });
            let key = format!("{key}-order");
            buyers
                .send_keyed(reqwest::Method::POST, "/orders", Some(&key), Some(body))
                .await
        }
        Then::Release => {
            let path = format!("/reservations/{id}");
            buyers.send(reqwest::Method::DELETE, &path, None).await
        }
    };
    match next {
        Ok(answer) if (200..300).contains(&answer.status) => match visit.then {
            Then::Release => {
                outcome.released = true;
                outcome.kept = 0;
            }
            _ => outcome.ordered = true,
        },
        Ok(answer) => outcome.note(answer.status, &answer.body),
        Err(_) => outcome.failures.push("unreachable".into()),
    }
    outcome
}

/// Refuses an API that is not on this machine: a rehearsal is load, for the local run.
pub fn local_only(api: &Api) -> Result<(), CliError> {
    match api.is_local() {
        true => Ok(()),
        false => Err(CliError::BadInput(format!(
            "sale rehearse sends load to the local run only (http://127.0.0.1:PORT); {} is not it",
            api.base()
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rehearsal(seed: u64) -> Rehearsal {
        Rehearsal {
            skus: vec!["tea".into(), "cup".into()],
            campaign: None,
            buyers: 5,
            rate: 20,
            duration: Duration::from_secs(3),
            seed,
            max_quantity: 3,
        }
    }

    #[test]
    fn a_plan_is_rate_times_duration_visits_in_time_order_within_bounds() {
        let visits = plan(&rehearsal(7));
        assert_eq!(visits.len(), 60);
        assert_eq!(visits[1].at, Duration::from_millis(50));
        assert!(visits.windows(2).all(|w| w[0].at < w[1].at));
        assert!(visits
            .iter()
            .all(|v| (1..=5).contains(&v.buyer) && v.sku < 2 && (1..=3).contains(&v.quantity)));
        for then in [Then::Order, Then::Release, Then::Keep] {
            assert!(
                visits.iter().any(|v| v.then == then),
                "{then:?} never chosen"
            );
        }
    }

    #[test]
    fn one_seed_one_plan_another_seed_another() {
        assert_eq!(plan(&rehearsal(7)), plan(&rehearsal(7)));
        assert_ne!(plan(&rehearsal(7)), plan(&rehearsal(8)));
    }

    #[test]
    fn latency_percentiles_are_read_from_the_sorted_samples() {
        let samples: Vec<f64> = (1..=100).rev().map(f64::from).collect();
        let latency = Latency::of(samples);
        assert_eq!((latency.p50, latency.p99, latency.max), (51.0, 99.0, 100.0));
        assert_eq!(Latency::of(Vec::new()), Latency::default());
    }

    #[test]
    fn only_the_local_run_is_rehearsed_on() {
        let api = |base: &str| Api::new(base, None);
        assert!(local_only(&api("http://127.0.0.1:3000")).is_ok());
        assert!(local_only(&api("http://localhost:3000/")).is_ok());
        for base in [
            "https://abc.execute-api.eu-west-1.amazonaws.com",
            "http://10.0.0.1:3000",
            "nonsense",
        ] {
            let refused = local_only(&api(base)).unwrap_err();
            assert_eq!(refused.exit(), crate::Exit::BadInput, "{base}");
        }
    }
}
