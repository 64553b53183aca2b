//! Campaigns, the offers they stamp on their skus' stock items, and the customer's
//! counter a campaign reservation adds to its transaction.

use async_trait::async_trait;
use aws_sdk_dynamodb::types::{AttributeValue, Put, TransactWriteItem};

use super::codec::{corrupt, get_n, get_parsed, key_of, n, s, values, Attributes};
use super::schema::{self, ItemKey};
use super::writes::build;
use super::{DynamoStore, Transaction};
use crate::domain::{Campaign, CampaignId, Offer, Sku, SkuTerms, Timestamp};
use crate::error::{Error, Result};
use crate::store::{Attempt, CampaignGuard, ReadCampaign, WriteCampaign};

pub(super) fn campaign_from(item: &Attributes) -> Result<Campaign> {
    let campaign_id = get_parsed(item, "campaign_id", |t| CampaignId::parse(t).ok())?;
    if key_of(item)? != ItemKey::Campaign(campaign_id.clone()) {
        return Err(corrupt(item, "its key is not its campaign's"));
    }
    // A string set is never empty in DynamoDB: a campaign is written with its skus.
    let skus = item
        .get("skus")
        .and_then(|v| v.as_ss().ok())
        .ok_or_else(|| corrupt(item, "attribute skus is missing or malformed"))?
        .iter()
        .map(|sku| {
            Sku::parse(sku).map_err(|_| corrupt(item, &format!("sku {sku:?} in skus is not a sku")))
        })
        .collect::<Result<_>>()?;
    Ok(Campaign {
        campaign_id,
        skus,
        starts_at: get_parsed(item, "starts_at", Timestamp::parse)?,
        ends_at: get_parsed(item, "ends_at", Timestamp::parse)?,
        per_customer_limit: get_n(item, "per_customer_limit")?,
        created_at: get_parsed(item, "created_at", Timestamp::parse)?,
        updated_at: get_parsed(item, "updated_at", Timestamp::parse)?,
    })
}

fn campaign_item(campaign: &Campaign) -> Attributes {
    values([
        ("pk", s(schema::campaign(&campaign.campaign_id))),
        ("sk", s(schema::CAMPAIGN)),
        ("entity", s("campaign")),
        ("campaign_id", s(campaign.campaign_id.as_str())),
        (
            "skus",
            AttributeValue::Ss(campaign.skus.iter().map(|s| s.to_string()).collect()),
        ),
        ("starts_at", s(campaign.starts_at.to_string())),
        ("ends_at", s(campaign.ends_at.to_string())),
        ("per_customer_limit", n(campaign.per_customer_limit)),
        ("created_at", s(campaign.created_at.to_string())),
        ("updated_at", s(campaign.updated_at.to_string())),
    ])
}

impl DynamoStore {
    /// A campaign reservation's count in the customer's counter, which must have room
    /// for its units.
    pub(super) fn campaign_counter(
        &self,
        guard: &CampaignGuard,
        at: Timestamp,
    ) -> Result<TransactWriteItem> {
        self.update(
            schema::counter_key(&guard.campaign_id, &guard.customer_id),
            "SET units = if_not_exists(units, :zero) + :q, updated_at = :now",
            "attribute_not_exists(units) OR units <= :room",
            values([
                (":zero", n(0)),
                (":q", n(guard.units)),
                (":room", n(guard.room)),
                (":now", s(at.to_string())),
            ]),
        )
    }
}

fn offer_value(offer: &Offer) -> AttributeValue {
    AttributeValue::M(values([
        ("starts_at", s(offer.starts_at.to_string())),
        ("ends_at", s(offer.ends_at.to_string())),
        ("per_customer_limit", n(offer.per_customer_limit)),
    ]))
}

fn offer_from(item: &Attributes, campaign_id: CampaignId, fields: &Attributes) -> Result<Offer> {
    let field = |name: &str| {
        fields
            .get(name)
            .ok_or_else(|| corrupt(item, &format!("an offer has no {name}")))
    };
    let time = |name: &str| {
        field(name)?
            .as_s()
            .ok()
            .and_then(|t| Timestamp::parse(t))
            .ok_or_else(|| corrupt(item, &format!("an offer's {name} is not a time")))
    };
    Ok(Offer {
        campaign_id,
        starts_at: time("starts_at")?,
        ends_at: time("ends_at")?,
        per_customer_limit: field("per_customer_limit")?
            .as_n()
            .ok()
            .and_then(|l| l.parse().ok())
            .ok_or_else(|| corrupt(item, "an offer's per_customer_limit is not a number"))?,
    })
}

/// The attributes a sku's item and stock items carry for `terms`: its version and its
/// offers by campaign id.
pub(super) fn terms_values(terms: &SkuTerms) -> [(&'static str, AttributeValue); 2] {
    let offers = terms
        .offers
        .iter()
        .map(|o| (o.campaign_id.to_string(), offer_value(o)))
        .collect();
    [
        ("terms", n(terms.version)),
        ("offers", AttributeValue::M(offers)),
    ]
}

/// The terms an item carries; none stamped yet is version 0 with no offers.
pub(super) fn terms_from(item: &Attributes) -> Result<SkuTerms> {
    if !item.contains_key("terms") {
        return Ok(SkuTerms::default());
    }
    let version = get_n(item, "terms")?;
    let offers = item
        .get("offers")
        .and_then(|v| v.as_m().ok())
        .ok_or_else(|| corrupt(item, "attribute offers is missing or malformed"))?;
    let mut offers = offers
        .iter()
        .map(|(id, fields)| {
            let id = CampaignId::parse(id)
                .map_err(|_| corrupt(item, &format!("offer {id:?} is not a campaign id")))?;
            let fields = fields
                .as_m()
                .map_err(|_| corrupt(item, "an offer is not a map"))?;
            offer_from(item, id, fields)
        })
        .collect::<Result<Vec<_>>>()?;
    offers.sort_by(|a, b| a.campaign_id.cmp(&b.campaign_id));
    Ok(SkuTerms { version, offers })
}

/// Where a campaign's offer is kept for one of its skus, whether the sku exists or not.
fn mark_item(sku: &Sku, offer: &Offer) -> Attributes {
    let (pk, sk) = schema::sku_campaign_key(sku, &offer.campaign_id);
    values([
        ("pk", s(pk)),
        ("sk", s(sk)),
        ("entity", s("sku_campaign")),
        ("campaign_id", s(offer.campaign_id.as_str())),
        ("offer", offer_value(offer)),
    ])
}

fn mark_from(item: &Attributes) -> Result<Offer> {
    let campaign_id = get_parsed(item, "campaign_id", |t| CampaignId::parse(t).ok())?;
    if !matches!(key_of(item)?, ItemKey::SkuCampaign(_, of) if of == campaign_id) {
        return Err(corrupt(item, "its key is not its campaign's mark"));
    }
    let fields = item
        .get("offer")
        .and_then(|v| v.as_m().ok())
        .ok_or_else(|| corrupt(item, "attribute offer is missing or malformed"))?;
    offer_from(item, campaign_id, fields)
}

/// How many writes go in one transaction: DynamoDB takes at most 100.
const MARKS_PER_TRANSACTION: usize = 100;

#[async_trait]
impl ReadCampaign for DynamoStore {
    async fn campaign(&self, id: &CampaignId) -> Result<Option<Campaign>> {
        self.get(schema::campaign_key(id))
            .await?
            .as_ref()
            .map(campaign_from)
            .transpose()
    }

    async fn offers_for(&self, sku: &Sku) -> Result<Vec<Offer>> {
        let mut offers = Vec::new();
        self.query_partition(schema::sku(sku), Some(schema::CAMPAIGN_PREFIX), |item| {
            offers.push(mark_from(item)?);
            Ok(())
        })
        .await?;
        Ok(offers)
    }
}

#[async_trait]
impl WriteCampaign for DynamoStore {
    async fn put_campaign(&self, campaign: &Campaign, seen: Option<&Campaign>) -> Result<Attempt> {
        // Created once: a concurrent first PUT makes this one an update, retried.
        let condition = match seen {
            None => "attribute_not_exists(pk)",
            Some(_) => "updated_at = :seen",
        };
        let mut put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(campaign_item(campaign)))
            .condition_expression(condition);
        if let Some(seen) = seen {
            put = put.expression_attribute_values(":seen", s(seen.updated_at.to_string()));
        }
        let put = build("put", put.build())?;
        let write = TransactWriteItem::builder().put(put).build();
        if let Transaction::Cancelled(_) = self.transact(vec![write]).await? {
            return Ok(Attempt::Stale);
        }
        let offer = campaign.offer();
        let mut marks = Vec::new();
        for sku in &campaign.skus {
            marks.push(self.put(mark_item(sku, &offer))?);
        }
        for sku in seen.iter().flat_map(|c| &c.skus) {
            if !campaign.skus.contains(sku) {
                marks.push(self.delete(schema::sku_campaign_key(sku, &campaign.campaign_id))?);
            }
        }
        while !marks.is_empty() {
            let rest = marks.split_off(marks.len().min(MARKS_PER_TRANSACTION));
            if let Transaction::Cancelled(_) =
                self.transact(std::mem::replace(&mut marks, rest)).await?
            {
                return Err(Error::Contention);
            }
        }
        Ok(Attempt::Committed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::dynamo::codec::tests::assert_corrupt;

    fn campaign() -> Campaign {
        let at = |t| Timestamp::parse(t).unwrap();
        Campaign {
            campaign_id: CampaignId::parse("spring").unwrap(),
            skus: ["A-1", "B.2"]
                .iter()
                .map(|s| Sku::parse(s).unwrap())
                .collect(),
            starts_at: at("2026-11-22T04:00:00Z"),
            ends_at: at("2026-11-22T05:00:00Z"),
            per_customer_limit: 2,
            created_at: at("2026-11-21T04:00:00Z"),
            updated_at: at("2026-11-21T05:00:00Z"),
        }
    }

    #[test]
    fn terms_and_offers_read_back_as_written() {
        let none = values([("pk", s("SKU#tea#000")), ("sk", s("STOCK"))]);
        assert_eq!(terms_from(&none).unwrap(), SkuTerms::default());
        let terms = SkuTerms {
            version: 4,
            offers: vec![campaign().offer()],
        };
        let mut item = none.clone();
        item.extend(terms_values(&terms).map(|(k, v)| (k.to_owned(), v)));
        assert_eq!(terms_from(&item).unwrap(), terms);
        let sku = Sku::parse("A-1").unwrap();
        assert_eq!(
            mark_from(&mark_item(&sku, &campaign().offer())).unwrap(),
            campaign().offer()
        );

        item.insert(
            "offers".into(),
            AttributeValue::M(values([("bad id", AttributeValue::M(Default::default()))])),
        );
        assert_corrupt(terms_from(&item), "SKU#tea#000", "bad id");
        let mut item = none;
        item.insert("terms".into(), n(1));
        assert_corrupt(terms_from(&item), "SKU#tea#000", "offers");
    }

    #[test]
    fn a_campaign_reads_back_as_written() {
        assert_eq!(
            campaign_from(&campaign_item(&campaign())).unwrap(),
            campaign()
        );
    }

    #[test]
    fn a_corrupted_campaign_is_a_store_error_naming_its_key() {
        let pk = "CAMPAIGN#spring";
        let mut item = campaign_item(&campaign());
        item.insert(
            "skus".into(),
            AttributeValue::Ss(vec!["A-1".into(), "B 2".into()]),
        );
        assert_corrupt(campaign_from(&item), pk, "B 2");
        item.remove("skus");
        assert_corrupt(campaign_from(&item), pk, "skus");
        let mut item = campaign_item(&campaign());
        item.insert("pk".into(), s("CAMPAIGN#autumn"));
        assert_corrupt(campaign_from(&item), "CAMPAIGN#autumn", "key");
    }
}
