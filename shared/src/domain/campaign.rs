//! Flash sales and group buys: a window, the skus on sale, and how much one customer
//! may hold or buy.

use std::collections::BTreeSet;
use std::fmt;

use serde::{Deserialize, Serialize};

use super::{Invalid, Sku, Timestamp};

/// 1 to 64 of `[A-Za-z0-9._-]`, not `.` or `..`: like a sku.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct CampaignId(String);

impl CampaignId {
    pub fn parse(value: &str) -> Result<Self, Invalid> {
        Sku::parse(value)
            .map(|s| Self(s.as_str().to_owned()))
            .map_err(|_| {
                Invalid::new(
                    "campaign ids are 1 to 64 characters of A-Z, a-z, 0-9, '.', '_' or '-', and not '.' or '..'",
                )
            })
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for CampaignId {
    type Error = Invalid;
    fn try_from(value: String) -> Result<Self, Invalid> {
        Self::parse(&value)
    }
}

impl From<CampaignId> for String {
    fn from(id: CampaignId) -> String {
        id.0
    }
}

impl fmt::Display for CampaignId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Campaign {
    pub campaign_id: CampaignId,
    pub skus: BTreeSet<Sku>,
    pub starts_at: Timestamp,
    pub ends_at: Timestamp,
    /// Units one customer may hold plus have bought in this campaign.
    pub per_customer_limit: u32,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

/// A campaign's terms as each of its skus keeps them: stamped on the sku's stock items
/// when the campaign is written, so that a take checks them in its own transaction
/// without touching the campaign's item, which every buyer would share.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Offer {
    pub campaign_id: CampaignId,
    pub starts_at: Timestamp,
    pub ends_at: Timestamp,
    pub per_customer_limit: u32,
}

impl Offer {
    /// Start inclusive, end exclusive.
    pub fn is_open(&self, now: Timestamp) -> bool {
        self.starts_at <= now && now < self.ends_at
    }
}

/// What a sku's stock items say of the campaigns selling it. `version` changes with
/// every change of the offers: a take is conditioned on the version it decided under,
/// so a change of terms and a take never cross.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SkuTerms {
    /// 0: never stamped.
    pub version: u64,
    pub offers: Vec<Offer>,
}

impl SkuTerms {
    /// The campaign selling the sku at `now`, if one is: customers buy it only there.
    pub fn open_campaign(&self, now: Timestamp) -> Option<&CampaignId> {
        self.offers
            .iter()
            .find(|o| o.is_open(now))
            .map(|o| &o.campaign_id)
    }

    pub fn offer(&self, campaign: &CampaignId) -> Option<&Offer> {
        self.offers.iter().find(|o| o.campaign_id == *campaign)
    }

    /// The terms once the campaigns listing the sku offer `offers`: `None` when that is
    /// what these terms say already. Offers that ended by `now` are left out, so the
    /// stamp stays small.
    pub fn next(&self, offers: Vec<Offer>, now: Timestamp) -> Option<SkuTerms> {
        let mut offers: Vec<Offer> = offers.into_iter().filter(|o| o.ends_at > now).collect();
        offers.sort_by(|a, b| a.campaign_id.cmp(&b.campaign_id));
        (offers != self.offers).then(|| SkuTerms {
            version: self.version + 1,
            offers,
        })
    }
}

impl Campaign {
    pub const MAX_SKUS: usize = 100;
    pub const MAX_LIMIT: u32 = 10_000;

    pub fn offer(&self) -> Offer {
        Offer {
            campaign_id: self.campaign_id.clone(),
            starts_at: self.starts_at,
            ends_at: self.ends_at,
            per_customer_limit: self.per_customer_limit,
        }
    }
}

/// The body of `PUT /campaigns/{id}`, checked.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(try_from = "CampaignBody")]
pub struct CampaignTerms {
    #[schema(min_items = 1, max_items = 100)]
    pub skus: BTreeSet<Sku>,
    pub starts_at: Timestamp,
    pub ends_at: Timestamp,
    #[schema(minimum = 1, maximum = 10000)]
    pub per_customer_limit: u32,
}

impl CampaignTerms {
    /// The campaign `id` with these terms, first written at `created_at`.
    pub fn campaign(
        &self,
        id: &CampaignId,
        created_at: Timestamp,
        updated_at: Timestamp,
    ) -> Campaign {
        Campaign {
            campaign_id: id.clone(),
            skus: self.skus.clone(),
            starts_at: self.starts_at,
            ends_at: self.ends_at,
            per_customer_limit: self.per_customer_limit,
            created_at,
            updated_at,
        }
    }
}

#[derive(Debug, Deserialize)]
struct CampaignBody {
    skus: Vec<Sku>,
    starts_at: Timestamp,
    ends_at: Timestamp,
    per_customer_limit: serde_json::Number,
}

impl TryFrom<CampaignBody> for CampaignTerms {
    type Error = Invalid;
    fn try_from(body: CampaignBody) -> Result<Self, Invalid> {
        let count = body.skus.len();
        let skus: BTreeSet<Sku> = body.skus.into_iter().collect();
        if skus.is_empty() || count > Campaign::MAX_SKUS || skus.len() != count {
            return Err(Invalid::new(format!(
                "skus must list 1 to {} distinct skus",
                Campaign::MAX_SKUS
            )));
        }
        if body.starts_at >= body.ends_at {
            return Err(Invalid::new("starts_at must be before ends_at"));
        }
        let limit = body
            .per_customer_limit
            .as_u64()
            .filter(|l| (1..=u64::from(Campaign::MAX_LIMIT)).contains(l))
            .ok_or_else(|| {
                Invalid::new(format!(
                    "per_customer_limit must be a whole number from 1 to {}",
                    Campaign::MAX_LIMIT
                ))
            })?;
        Ok(Self {
            skus,
            starts_at: body.starts_at,
            ends_at: body.ends_at,
            per_customer_limit: limit as u32,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn terms(json: serde_json::Value) -> Result<CampaignTerms, serde_json::Error> {
        serde_json::from_value(json)
    }

    #[test]
    fn terms_are_checked() {
        let ok = serde_json::json!({"skus": ["a"], "starts_at": "2026-01-01T00:00:00Z", "ends_at": "2026-01-02T00:00:00Z", "per_customer_limit": 2});
        assert!(terms(ok.clone()).is_ok());
        for (field, bad) in [
            ("skus", serde_json::json!([])),
            ("skus", serde_json::json!(["a", "a"])),
            ("skus", serde_json::json!(["bad sku"])),
            ("ends_at", serde_json::json!("2025-12-31T00:00:00Z")),
            ("starts_at", serde_json::json!("yesterday")),
            ("per_customer_limit", serde_json::json!(0)),
            ("per_customer_limit", serde_json::json!(10001)),
        ] {
            let mut body = ok.clone();
            body[field] = bad;
            assert!(terms(body).is_err(), "{field}");
        }
    }
}

#[cfg(test)]
mod terms {
    use super::*;

    fn offer(id: &str, from: &str, to: &str, limit: u32) -> Offer {
        Offer {
            campaign_id: CampaignId::parse(id).unwrap(),
            starts_at: Timestamp::parse(from).unwrap(),
            ends_at: Timestamp::parse(to).unwrap(),
            per_customer_limit: limit,
        }
    }

    fn at(t: &str) -> Timestamp {
        Timestamp::parse(t).unwrap()
    }

    #[test]
    fn the_open_campaign_is_the_one_whose_window_holds_now() {
        let terms = SkuTerms {
            version: 3,
            offers: vec![
                offer("early", "2026-01-01T00:00:00Z", "2026-01-02T00:00:00Z", 1),
                offer("late", "2026-01-03T00:00:00Z", "2026-01-04T00:00:00Z", 2),
            ],
        };
        let open = |t| terms.open_campaign(at(t)).map(CampaignId::as_str);
        assert_eq!(open("2026-01-01T00:00:00Z"), Some("early"));
        assert_eq!(open("2026-01-02T00:00:00Z"), None);
        assert_eq!(open("2026-01-03T12:00:00Z"), Some("late"));
        assert_eq!(open("2025-12-31T23:59:59Z"), None);
        let late = CampaignId::parse("late").unwrap();
        assert_eq!(terms.offer(&late).map(|o| o.per_customer_limit), Some(2));
        assert_eq!(terms.offer(&CampaignId::parse("none").unwrap()), None);
        assert_eq!(
            SkuTerms::default().open_campaign(at("2026-01-01T00:00:00Z")),
            None
        );
    }

    #[test]
    fn new_terms_drop_ended_offers_sort_and_bump_the_version_only_on_a_change() {
        let now = at("2026-01-02T00:00:00Z");
        let ended = offer("ended", "2026-01-01T00:00:00Z", "2026-01-02T00:00:00Z", 1);
        let b = offer("b", "2026-01-01T00:00:00Z", "2026-01-05T00:00:00Z", 2);
        let a = offer("a", "2026-01-03T00:00:00Z", "2026-01-04T00:00:00Z", 3);
        let first = SkuTerms::default()
            .next(vec![ended.clone(), b.clone(), a.clone()], now)
            .unwrap();
        assert_eq!(first.version, 1);
        assert_eq!(first.offers, vec![a.clone(), b.clone()]);
        assert_eq!(first.next(vec![b.clone(), a.clone(), ended], now), None);
        let second = first.next(vec![b.clone()], now).unwrap();
        assert_eq!((second.version, second.offers), (2, vec![b]));
        assert_eq!(SkuTerms::default().next(vec![], now), None);
    }
}

#[cfg(test)]
mod bounds {
    use super::*;

    fn body(skus: usize) -> serde_json::Value {
        let skus: Vec<String> = (0..skus).map(|i| format!("s{i}")).collect();
        serde_json::json!({
            "skus": skus,
            "starts_at": "2026-11-11T00:00:00Z",
            "ends_at": "2026-11-12T00:00:00Z",
            "per_customer_limit": 2,
        })
    }

    #[test]
    fn a_campaign_lists_at_most_a_hundred_skus() {
        assert!(serde_json::from_value::<CampaignTerms>(body(Campaign::MAX_SKUS)).is_ok());
        assert!(serde_json::from_value::<CampaignTerms>(body(Campaign::MAX_SKUS + 1)).is_err());
    }

    #[test]
    fn the_window_opens_at_its_start_and_ids_read_back() {
        let terms: CampaignTerms = serde_json::from_value(body(1)).unwrap();
        let id = CampaignId::parse("singles-day").unwrap();
        let campaign = terms.campaign(&id, terms.starts_at, terms.starts_at);
        assert!(campaign.offer().is_open(terms.starts_at));
        assert!(!campaign.offer().is_open(terms.ends_at));
        assert_eq!(
            (id.as_str(), id.to_string(), String::from(id.clone())),
            (
                "singles-day",
                "singles-day".to_owned(),
                "singles-day".to_owned()
            )
        );
    }
}
