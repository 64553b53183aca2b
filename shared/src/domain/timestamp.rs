use std::fmt;

use serde::{Deserialize, Serialize};
use time::format_description::well_known::Rfc3339;
use time::{Duration, OffsetDateTime, UtcOffset};

/// An instant in UTC, shown as RFC 3339 with millisecond precision (`2026-11-21T09:00:00.000Z`).
///
/// The fixed width makes the text sort like the instant, which the expiry index relies on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(OffsetDateTime);

impl Timestamp {
    pub fn new(at: OffsetDateTime) -> Self {
        let utc = at.to_offset(UtcOffset::UTC);
        let millis = utc.millisecond();
        Self(
            utc.replace_nanosecond(u32::from(millis) * 1_000_000)
                .unwrap_or(utc),
        )
    }

    pub fn parse(text: &str) -> Option<Self> {
        OffsetDateTime::parse(text, &Rfc3339).ok().map(Self::new)
    }

    pub fn plus(self, seconds: u32) -> Self {
        Self(self.0 + Duration::seconds(i64::from(seconds)))
    }

    pub fn unix_seconds(self) -> i64 {
        self.0.unix_timestamp()
    }

    pub fn inner(self) -> OffsetDateTime {
        self.0
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let d = self.0;
        write!(
            f,
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
            d.year(),
            u8::from(d.month()),
            d.day(),
            d.hour(),
            d.minute(),
            d.second(),
            d.millisecond()
        )
    }
}

impl Serialize for Timestamp {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        Self::parse(&text).ok_or_else(|| serde::de::Error::custom("expected an RFC 3339 timestamp"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn fixed_width_text_sorts_like_time() {
        let a = Timestamp::new(datetime!(2026-01-02 03:04:05.5 UTC));
        let b = a.plus(3600);
        assert_eq!(a.to_string(), "2026-01-02T03:04:05.500Z");
        assert!(a.to_string() < b.to_string());
        assert_eq!(Timestamp::parse(&b.to_string()), Some(b));
    }

    #[test]
    fn converts_offsets_to_utc() {
        let t = Timestamp::parse("2026-01-02T05:00:00+02:00").unwrap();
        assert_eq!(t.to_string(), "2026-01-02T03:00:00.000Z");
    }
}
