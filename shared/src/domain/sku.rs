use std::fmt;

use serde::{Deserialize, Serialize};

use super::Invalid;

/// A stock keeping unit: 1 to 64 of `[A-Za-z0-9._-]`, but not `.` or `..`, which a path
/// cannot carry as a segment (clients and proxies resolve them away).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Sku(String);

impl Sku {
    pub const MAX_LEN: usize = 64;

    pub fn parse(value: &str) -> Result<Self, Invalid> {
        let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-');
        let dots = matches!(value, "." | "..");
        if value.is_empty() || value.len() > Self::MAX_LEN || !value.chars().all(allowed) || dots {
            return Err(Invalid::new(format!(
                "sku must be 1 to {} characters of A-Z, a-z, 0-9, '.', '_' or '-', and not '.' or '..'",
                Self::MAX_LEN
            )));
        }
        Ok(Self(value.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Sku {
    type Error = Invalid;
    fn try_from(value: String) -> Result<Self, Invalid> {
        Self::parse(&value)
    }
}

impl From<Sku> for String {
    fn from(sku: Sku) -> String {
        sku.0
    }
}

impl fmt::Display for Sku {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn rejects_empty_long_and_foreign_characters() {
        for bad in ["", "a b", "a/b", "ä", "x#1", ".", "..", &"a".repeat(65)] {
            assert!(Sku::parse(bad).is_err(), "{bad:?} should be rejected");
        }
    }

    #[test]
    fn accepts_the_allowed_alphabet_up_to_64() {
        for good in ["A", "tea-1.5_L", "...", ".a", &"z".repeat(64)] {
            assert_eq!(Sku::parse(good).unwrap().as_str(), good);
        }
    }

    proptest! {
        #[test]
        fn parses_exactly_the_documented_language(s in "\\PC{0,70}") {
            let ok = !s.is_empty() && s.len() <= 64 && s != "." && s != ".."
                && s.chars().all(|c| c.is_ascii_alphanumeric() || "._-".contains(c));
            prop_assert_eq!(Sku::parse(&s).is_ok(), ok);
        }
    }
}

#[cfg(test)]
mod display {
    use super::*;

    #[test]
    fn a_sku_displays_as_written() {
        assert_eq!(Sku::parse("tea-1").unwrap().to_string(), "tea-1");
    }
}
