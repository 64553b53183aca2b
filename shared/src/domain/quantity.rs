use std::fmt;

use serde::{Deserialize, Serialize};

use super::Invalid;

/// Units on one line of a reservation or order: 1..=10000.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "serde_json::Number", into = "u32")]
pub struct Quantity(u32);

impl Quantity {
    pub const MAX: u32 = 10_000;

    pub fn new(value: u64) -> Result<Self, Invalid> {
        if (1..=u64::from(Self::MAX)).contains(&value) {
            Ok(Self(value as u32))
        } else {
            Err(Self::out_of_range())
        }
    }

    fn out_of_range() -> Invalid {
        Invalid::new(format!(
            "quantity must be a whole number from 1 to {}",
            Self::MAX
        ))
    }

    pub fn get(self) -> u32 {
        self.0
    }
}

impl TryFrom<serde_json::Number> for Quantity {
    type Error = Invalid;
    fn try_from(n: serde_json::Number) -> Result<Self, Invalid> {
        n.as_u64()
            .map_or_else(|| Err(Self::out_of_range()), Self::new)
    }
}

impl From<Quantity> for u32 {
    fn from(q: Quantity) -> u32 {
        q.0
    }
}

impl fmt::Display for Quantity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// A signed change to a sku's stock by an administrator: non-zero, at most a billion units.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "serde_json::Number", into = "i64")]
pub struct Delta(i64);

impl Delta {
    pub const LIMIT: i64 = 1_000_000_000;

    pub fn new(value: i64) -> Result<Self, Invalid> {
        if value != 0 && (-Self::LIMIT..=Self::LIMIT).contains(&value) {
            Ok(Self(value))
        } else {
            Err(Self::out_of_range())
        }
    }

    fn out_of_range() -> Invalid {
        Invalid::new(format!(
            "delta must be a non-zero whole number from -{0} to {0}",
            Self::LIMIT
        ))
    }

    pub fn get(self) -> i64 {
        self.0
    }
}

impl TryFrom<serde_json::Number> for Delta {
    type Error = Invalid;
    fn try_from(n: serde_json::Number) -> Result<Self, Invalid> {
        n.as_i64()
            .map_or_else(|| Err(Self::out_of_range()), Self::new)
    }
}

impl From<Delta> for i64 {
    fn from(d: Delta) -> i64 {
        d.0
    }
}

/// A sku's whole stock as an administrator sets it: 0 to a billion units.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "serde_json::Number", into = "u64")]
pub struct OnHand(u64);

impl OnHand {
    pub fn get(self) -> u64 {
        self.0
    }
}

impl TryFrom<serde_json::Number> for OnHand {
    type Error = Invalid;
    fn try_from(n: serde_json::Number) -> Result<Self, Invalid> {
        match n.as_u64() {
            Some(v) if v <= Delta::LIMIT as u64 => Ok(Self(v)),
            _ => Err(Invalid::new(format!(
                "on_hand must be a whole number from 0 to {}",
                Delta::LIMIT
            ))),
        }
    }
}

impl From<OnHand> for u64 {
    fn from(o: OnHand) -> u64 {
        o.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn quantity(json: &str) -> Result<Quantity, serde_json::Error> {
        serde_json::from_str(json)
    }

    #[test]
    fn quantity_bounds() {
        assert_eq!(quantity("1").unwrap().get(), 1);
        assert_eq!(quantity("10000").unwrap().get(), 10_000);
        for bad in [
            "0",
            "-1",
            "10001",
            "18446744073709551616",
            "1.5",
            "\"3\"",
            "null",
        ] {
            assert!(quantity(bad).is_err(), "{bad} should be rejected");
        }
    }

    #[test]
    fn delta_bounds() {
        assert!(serde_json::from_str::<Delta>("0").is_err());
        assert!(serde_json::from_str::<Delta>("1000000001").is_err());
        for extreme in ["-9223372036854775808", "9223372036854775807", "-1000000001"] {
            assert!(serde_json::from_str::<Delta>(extreme).is_err(), "{extreme}");
        }
        assert_eq!(Delta::new(-Delta::LIMIT).unwrap().get(), -Delta::LIMIT);
        assert_eq!(serde_json::from_str::<Delta>("-7").unwrap().get(), -7);
    }
}

#[cfg(test)]
mod conversions {
    use super::*;

    fn number(n: u64) -> serde_json::Number {
        serde_json::Number::from(n)
    }

    #[test]
    fn values_come_back_out_as_they_went_in() {
        let q = Quantity::new(7).unwrap();
        assert_eq!((u32::from(q), q.to_string()), (7, "7".to_owned()));
        let d = Delta::new(-42).unwrap();
        assert_eq!(i64::from(d), -42);
        let on_hand = OnHand::try_from(number(1234)).unwrap();
        assert_eq!((on_hand.get(), u64::from(on_hand)), (1234, 1234));
    }

    #[test]
    fn on_hand_runs_from_zero_to_a_billion() {
        let limit = Delta::LIMIT as u64;
        assert_eq!(OnHand::try_from(number(0)).unwrap().get(), 0);
        assert_eq!(OnHand::try_from(number(limit)).unwrap().get(), limit);
        assert!(OnHand::try_from(number(limit + 1)).is_err());
        assert!(OnHand::try_from(serde_json::Number::from(-1i64)).is_err());
    }
}
