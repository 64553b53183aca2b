//! The use cases. Each reads what it needs through the store's ports, decides with the
//! domain rules, and asks for one write conditioned on what it read; when the store says
//! the write found things changed, it reads again and decides again, pacing the attempts
//! with `Backoff`. What a request answers, the first time and on a replay, is decided
//! here; the HTTP layer only renders it.

#[cfg(test)]
mod acting_tests;
pub mod campaigns;
pub mod commands;
pub mod holds;
pub mod orders;
#[cfg(any(test, feature = "scenarios"))]
pub mod scenarios;
pub mod stock;
mod taking;
#[cfg(test)]
mod testing;

pub use taking::StockViews;

use crate::error::{Error, Result};
use crate::idempotency::Recorded;
use crate::store::{ReadRecord, RecordKey};

/// The answer of a request whose record exists: its first answer, if it is the same
/// request (`fingerprint`), or `otherwise` when no record turns up.
async fn replay_or<T>(
    store: &impl ReadRecord,
    key: &RecordKey,
    fingerprint: &str,
    otherwise: Error,
) -> Result<Recorded<T>> {
    match store.recorded(key).await? {
        Some(first) => Ok(Recorded::Replayed(first.replay(fingerprint)?)),
        None => Err(otherwise),
    }
}
