use serde::{Deserialize, Serialize};

use super::{
    CampaignId, Invalid, OrderId, Quantity, ReservationId, Sku, StockMove, Take, Timestamp,
};

/// Who a reservation or order is for, as the shop knows them: 1 to 128 visible ASCII characters.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct CustomerId(String);

impl CustomerId {
    pub fn parse(text: &str) -> Result<Self, Invalid> {
        if (1..=128).contains(&text.len()) && text.bytes().all(|b| (0x21..=0x7e).contains(&b)) {
            Ok(Self(text.to_owned()))
        } else {
            Err(Invalid::new(
                "customer_id must be 1 to 128 visible ASCII characters",
            ))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for CustomerId {
    type Error = Invalid;
    fn try_from(value: String) -> Result<Self, Invalid> {
        Self::parse(&value)
    }
}

impl From<CustomerId> for String {
    fn from(c: CustomerId) -> String {
        c.0
    }
}

/// One sku and how many of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Line {
    pub sku: Sku,
    pub quantity: Quantity,
}

/// The lines of one request: 1 to 25, each sku at most once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "Vec<Line>", into = "Vec<Line>")]
pub struct Lines(Vec<Line>);

impl Lines {
    pub const MAX: usize = 25;

    pub fn iter(&self) -> std::slice::Iter<'_, Line> {
        self.0.iter()
    }
}

impl TryFrom<Vec<Line>> for Lines {
    type Error = Invalid;
    fn try_from(lines: Vec<Line>) -> Result<Self, Invalid> {
        if lines.is_empty() || lines.len() > Self::MAX {
            return Err(Invalid::new(format!(
                "lines must hold 1 to {} entries",
                Self::MAX
            )));
        }
        let mut seen = std::collections::BTreeSet::new();
        if let Some(dup) = lines.iter().find(|l| !seen.insert(&l.sku)) {
            return Err(Invalid::new(format!(
                "sku {} appears on more than one line",
                dup.sku
            )));
        }
        Ok(Self(lines))
    }
}

impl From<Lines> for Vec<Line> {
    fn from(lines: Lines) -> Self {
        lines.0
    }
}

/// How long a reservation holds its units: 60..=3600 seconds, 900 unless asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "serde_json::Number", into = "u32")]
pub struct HoldDuration(u32);

impl HoldDuration {
    pub fn seconds(self) -> u32 {
        self.0
    }
}

impl Default for HoldDuration {
    fn default() -> Self {
        Self(900)
    }
}

impl TryFrom<serde_json::Number> for HoldDuration {
    type Error = Invalid;
    fn try_from(n: serde_json::Number) -> Result<Self, Invalid> {
        match n.as_u64() {
            Some(s @ 60..=3600) => Ok(Self(s as u32)),
            _ => Err(Invalid::new(
                "hold_seconds must be a whole number from 60 to 3600",
            )),
        }
    }
}

impl From<HoldDuration> for u32 {
    fn from(d: HoldDuration) -> u32 {
        d.0
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReservationStatus {
    Held,
    Committed,
    Released,
    Expired,
}

impl ReservationStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Held => "HELD",
            Self::Committed => "COMMITTED",
            Self::Released => "RELEASED",
            Self::Expired => "EXPIRED",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        [Self::Held, Self::Committed, Self::Released, Self::Expired]
            .into_iter()
            .find(|s| s.as_str() == text)
    }

    /// Where a hold's units go when it ends in this status: sold when it is committed,
    /// back on sale otherwise.
    pub fn ending_move(self) -> StockMove {
        match self {
            Self::Committed => StockMove::COMMIT,
            _ => StockMove::RELEASE,
        }
    }

    /// Whether a campaign hold ending in this status gives its units back to the
    /// customer's allowance: a released or expired hold bought nothing, an order keeps it.
    pub fn returns_allowance(self) -> bool {
        matches!(self, Self::Released | Self::Expired)
    }
}

/// Units of one line taken from one shard: what releasing or committing must give back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Allocation {
    pub sku: Sku,
    pub take: Take,
}

/// A hold on stock; `allocations` say which shards hold the units.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reservation {
    pub reservation_id: ReservationId,
    pub status: ReservationStatus,
    pub lines: Lines,
    pub customer_id: Option<CustomerId>,
    pub campaign_id: Option<CampaignId>,
    pub expires_at: Timestamp,
    pub created_at: Timestamp,
    pub order_id: Option<OrderId>,
    pub allocations: Vec<Allocation>,
}

impl Reservation {
    /// Past its hold: it can no longer be committed, whether or not the sweep has run.
    pub fn is_overdue(&self, now: Timestamp) -> bool {
        self.status == ReservationStatus::Held && now >= self.expires_at
    }

    /// Units over all lines: what a campaign counts against the customer's limit.
    pub fn units(&self) -> u64 {
        self.lines.iter().map(|l| u64::from(l.quantity.get())).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(json: &str) -> Result<Lines, serde_json::Error> {
        serde_json::from_str(json)
    }

    #[test]
    fn lines_need_one_to_25_distinct_skus() {
        assert!(lines("[]").is_err());
        let many: Vec<String> = (0..26)
            .map(|i| format!(r#"{{"sku":"s{i}","quantity":1}}"#))
            .collect();
        assert!(lines(&format!("[{}]", many.join(","))).is_err());
        assert!(lines(&format!("[{}]", many[..25].join(","))).is_ok());
        let err = lines(r#"[{"sku":"a","quantity":1},{"sku":"a","quantity":2}]"#).unwrap_err();
        assert!(err.to_string().contains("more than one line"));
    }

    #[test]
    fn hold_seconds_bounds() {
        assert!(serde_json::from_str::<HoldDuration>("59").is_err());
        assert!(serde_json::from_str::<HoldDuration>("3601").is_err());
        assert_eq!(
            serde_json::from_str::<HoldDuration>("60")
                .unwrap()
                .seconds(),
            60
        );
        assert_eq!(HoldDuration::default().seconds(), 900);
    }

    #[test]
    fn status_text_round_trips() {
        for s in ["HELD", "COMMITTED", "RELEASED", "EXPIRED"] {
            assert_eq!(ReservationStatus::parse(s).unwrap().as_str(), s);
        }
        assert_eq!(ReservationStatus::parse("held"), None);
    }
}

#[cfg(test)]
mod accessors {
    use super::*;

    fn lines(quantities: &[u32]) -> Lines {
        let lines: Vec<Line> = quantities
            .iter()
            .enumerate()
            .map(|(i, q)| Line {
                sku: Sku::parse(&format!("s{i}")).unwrap(),
                quantity: Quantity::new(u64::from(*q)).unwrap(),
            })
            .collect();
        Lines::try_from(lines).unwrap()
    }

    fn held(expires_at: &str) -> Reservation {
        let at = |t: &str| Timestamp::parse(t).unwrap();
        Reservation {
            reservation_id: ReservationId::generate(),
            status: ReservationStatus::Held,
            lines: lines(&[2, 5]),
            customer_id: None,
            campaign_id: None,
            expires_at: at(expires_at),
            created_at: at("2026-01-01T00:00:00Z"),
            order_id: None,
            allocations: vec![],
        }
    }

    #[test]
    fn customer_ids_are_visible_ascii_and_read_back() {
        let c = CustomerId::parse("c-42").unwrap();
        assert_eq!(c.as_str(), "c-42");
        assert_eq!(String::from(c), "c-42");
        assert!(CustomerId::parse("").is_err());
        assert!(CustomerId::parse("has space").is_err());
        assert!(CustomerId::parse(&"c".repeat(129)).is_err());
        assert!(CustomerId::parse(&"c".repeat(128)).is_ok());
    }

    #[test]
    fn lines_convert_back() {
        let back: Vec<Line> = lines(&[1, 2, 3]).into();
        assert_eq!(back.len(), 3);
        assert_eq!(u32::from(back[2].quantity), 3);
    }

    #[test]
    fn hold_seconds_read_back() {
        let d = HoldDuration::try_from(serde_json::Number::from(120u64)).unwrap();
        assert_eq!((u32::from(d), d.seconds()), (120, 120));
    }

    #[test]
    fn a_hold_is_overdue_from_its_expiry_on_and_only_while_held() {
        let r = held("2026-01-01T00:10:00Z");
        let at = |t: &str| Timestamp::parse(t).unwrap();
        assert!(!r.is_overdue(at("2026-01-01T00:09:59.999Z")));
        assert!(r.is_overdue(at("2026-01-01T00:10:00Z")));
        let released = Reservation {
            status: ReservationStatus::Released,
            ..r.clone()
        };
        assert!(!released.is_overdue(at("2026-01-01T01:00:00Z")));
        assert_eq!(r.units(), 7);
    }
}
