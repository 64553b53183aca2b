use serde::{Deserialize, Serialize};

use super::{AdjustmentId, Invalid, Sku, Timestamp};

/// Why stock changed: 1 to 500 characters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Reason(String);

impl Reason {
    pub const MAX_CHARS: usize = 500;

    pub fn parse(text: &str) -> Result<Self, Invalid> {
        let n = text.trim().chars().count();
        if n == 0 || n > Self::MAX_CHARS {
            return Err(Invalid::new(format!(
                "reason must be 1 to {} characters",
                Self::MAX_CHARS
            )));
        }
        Ok(Self(text.trim().to_owned()))
    }

    /// A reason stockroom writes itself.
    pub(crate) fn system(text: &'static str) -> Self {
        Self(text.to_owned())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Reason {
    type Error = Invalid;
    fn try_from(value: String) -> Result<Self, Invalid> {
        Self::parse(&value)
    }
}

impl From<Reason> for String {
    fn from(r: Reason) -> String {
        r.0
    }
}

/// A change of a sku's on-hand stock. Adjustments are never deleted: their deltas sum
/// to the sku's on_hand, which the audit checks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Adjustment {
    pub id: AdjustmentId,
    pub sku: Sku,
    pub delta: i64,
    pub reason: Reason,
    pub at: Timestamp,
}
