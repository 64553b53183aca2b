use serde::{Deserialize, Serialize};

use super::{AdjustmentId, Invalid, Sku, Timestamp};

/// Why stock changed: 1 to 500 characters, none of them a control character or one that
/// reorders text (bidirectional formatting), which would garble logs and screens.
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
        if text.trim().chars().any(is_hidden) {
            return Err(Invalid::new(
                "reason must not contain control characters (such as line breaks or tabs) or bidirectional formatting characters",
            ));
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

/// Control characters (Unicode Cc), line and paragraph separators, and the marks,
/// embeddings, overrides and isolates that reorder text (CVE-2021-42574's characters).
fn is_hidden(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{061C}' | '\u{200E}' | '\u{200F}' | '\u{2028}'..='\u{202E}' | '\u{2066}'..='\u{2069}'
        )
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_refuse_control_and_bidi_characters() {
        for bad in [
            "line\nbreak",
            "tab\there",
            "nul\u{0}",
            "del\u{7f}",
            "c1\u{85}x",
            "rlo\u{202E}txt",
            "isolate\u{2067}x",
            "mark\u{200F}x",
            "sep\u{2028}x",
        ] {
            assert!(Reason::parse(bad).is_err(), "{bad:?}");
        }
        for good in ["cycle count", "Zählung – Lager 3", "家具 📦", "a\u{200D}b"] {
            assert_eq!(Reason::parse(good).unwrap().as_str(), good);
        }
    }
}

#[cfg(test)]
mod reason_bounds {
    use super::*;

    #[test]
    fn reasons_run_from_one_to_five_hundred_characters_and_read_back() {
        assert!(Reason::parse("").is_err());
        assert!(Reason::parse("   ").is_err());
        assert!(Reason::parse(&"é".repeat(500)).is_ok());
        assert!(Reason::parse(&"é".repeat(501)).is_err());
        assert_eq!(
            String::from(Reason::parse(" delivery ").unwrap()),
            "delivery"
        );
    }
}
