use std::fmt;

use serde::{Deserialize, Serialize};
use time::format_description::well_known::Rfc3339;
use time::{Duration, OffsetDateTime, UtcOffset};

/// An instant in UTC, shown as RFC 3339 with millisecond precision (`2026-11-21T09:00:00.000Z`).
///
/// The fixed width makes the text sort like the instant, which the expiry index relies on.
/// Parsed instants lie in years 2000 to 2999 once in UTC: every one of them is written
/// with four digits and reads back, and none is an offset away from the end of the
/// calendar.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(OffsetDateTime);

impl Timestamp {
    pub const YEARS: std::ops::RangeInclusive<i32> = 2000..=2999;

    pub fn new(at: OffsetDateTime) -> Self {
        let utc = at.checked_to_offset(UtcOffset::UTC).unwrap_or(at);
        let millis = utc.millisecond();
        Self(
            utc.replace_nanosecond(u32::from(millis) * 1_000_000)
                .unwrap_or(utc),
        )
    }

    pub fn parse(text: &str) -> Option<Self> {
        OffsetDateTime::parse(text, &Rfc3339)
            .ok()?
            .checked_to_offset(UtcOffset::UTC)
            .filter(|utc| Self::YEARS.contains(&utc.year()))
            .map(Self::new)
    }

    pub fn plus(self, seconds: u32) -> Self {
        Self(self.0.saturating_add(Duration::seconds(i64::from(seconds))))
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
        Self::parse(&text).ok_or_else(|| {
            serde::de::Error::custom(format!(
                "timestamps must be RFC 3339 (like 2026-11-21T09:00:00Z) and from year {} to {} in UTC",
                Self::YEARS.start(),
                Self::YEARS.end()
            ))
        })
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
    fn only_years_2000_to_2999_in_utc() {
        for bad in [
            "9999-12-31T23:59:59-01:00",
            "9999-12-31T23:59:59Z",
            "0000-01-01T00:00:00Z",
            "0000-01-01T00:00:00+01:00",
            "1999-12-31T23:59:59Z",
            "2000-01-01T00:30:00+01:00",
            "3000-01-01T00:00:00Z",
            "2999-12-31T23:30:00-01:00",
        ] {
            assert_eq!(Timestamp::parse(bad), None, "{bad}");
        }
        for good in ["2000-01-01T00:00:00Z", "2999-12-31T23:59:59.999Z"] {
            let t = Timestamp::parse(good).unwrap();
            assert_eq!(Timestamp::parse(&t.to_string()), Some(t), "{good}");
        }
    }

    #[test]
    fn converts_offsets_to_utc() {
        let t = Timestamp::parse("2026-01-02T05:00:00+02:00").unwrap();
        assert_eq!(t.to_string(), "2026-01-02T03:00:00.000Z");
    }
}

#[cfg(test)]
mod epoch {
    use super::*;

    #[test]
    fn unix_seconds_count_from_the_epoch() {
        let t = Timestamp::parse("2026-01-01T00:00:10Z").unwrap();
        assert_eq!(t.unix_seconds(), 1_767_225_610);
    }
}
