//! Campaigns, and the guards a campaign reservation adds to its transaction.

use async_trait::async_trait;
use aws_sdk_dynamodb::types::{AttributeValue, ConditionCheck, Put, TransactWriteItem};

use super::codec::{corrupt, get_n, get_parsed, key_of, n, s, values, Attributes};
use super::schema::{self, ItemKey};
use super::writes::build;
use super::{DynamoStore, Transaction};
use crate::domain::{Campaign, CampaignId, CampaignWindow, Sku, Timestamp};
use crate::error::{Error, Result};
use crate::store::{Attempt, CampaignGuard, ReadCampaign, WriteCampaign};

fn campaign_from(item: &Attributes) -> Result<Campaign> {
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
    /// A campaign reservation's guards: the campaign's window, skus and limit as the
    /// reservation was admitted under them, and the customer's counter, which must have
    /// room for its units. In this order: `take` reads its refusals by position.
    pub(super) fn campaign_guards(
        &self,
        guard: &CampaignGuard,
        at: Timestamp,
    ) -> Result<Vec<TransactWriteItem>> {
        let now = s(at.to_string());
        let mut condition =
            "starts_at <= :now AND ends_at > :now AND per_customer_limit = :limit".to_owned();
        let mut check_values = values([(":now", now.clone()), (":limit", n(guard.limit))]);
        for (i, sku) in guard.skus.iter().enumerate() {
            condition.push_str(&format!(" AND contains(skus, :sku{i})"));
            check_values.insert(format!(":sku{i}"), s(sku.as_str()));
        }
        let (pk, sk) = schema::campaign_key(&guard.campaign_id);
        let check = build(
            "condition check",
            ConditionCheck::builder()
                .table_name(&self.table)
                .key("pk", s(pk))
                .key("sk", s(sk))
                .condition_expression(condition)
                .set_expression_attribute_values(Some(check_values))
                .build(),
        )?;
        let counter = self.update(
            schema::counter_key(&guard.campaign_id, &guard.customer_id),
            "SET units = if_not_exists(units, :zero) + :q, updated_at = :now",
            "attribute_not_exists(units) OR units <= :room",
            values([
                (":zero", n(0)),
                (":q", n(guard.units)),
                (":room", n(guard.room)),
                (":now", now),
            ]),
        )?;
        Ok(vec![
            TransactWriteItem::builder().condition_check(check).build(),
            counter,
        ])
    }
}

fn mark_item(sku: &Sku, window: &CampaignWindow) -> Attributes {
    let (pk, sk) = schema::sku_campaign_key(sku, &window.campaign_id);
    values([
        ("pk", s(pk)),
        ("sk", s(sk)),
        ("entity", s("sku_campaign")),
        ("campaign_id", s(window.campaign_id.as_str())),
        ("starts_at", s(window.starts_at.to_string())),
        ("ends_at", s(window.ends_at.to_string())),
    ])
}

fn window_from(item: &Attributes) -> Result<CampaignWindow> {
    let campaign_id = get_parsed(item, "campaign_id", |t| CampaignId::parse(t).ok())?;
    if !matches!(key_of(item)?, ItemKey::SkuCampaign(_, of) if of == campaign_id) {
        return Err(corrupt(item, "its key is not its campaign's mark"));
    }
    Ok(CampaignWindow {
        campaign_id,
        starts_at: get_parsed(item, "starts_at", Timestamp::parse)?,
        ends_at: get_parsed(item, "ends_at", Timestamp::parse)?,
    })
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

    async fn campaigns_selling(&self, sku: &Sku) -> Result<Vec<CampaignWindow>> {
        let mut windows = Vec::new();
        self.query_partition(schema::sku(sku), Some(schema::CAMPAIGN_PREFIX), |item| {
            windows.push(window_from(item)?);
            Ok(())
        })
        .await?;
        Ok(windows)
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
        // Then the marks on its skus: a sale of one outside the campaign is refused from
        // the moment this request answers.
        let window = campaign.window();
        let mut marks = Vec::new();
        for sku in &campaign.skus {
            marks.push(self.put(mark_item(sku, &window))?);
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
