//! Campaigns, and the guards a campaign reservation adds to its transaction.

use async_trait::async_trait;
use aws_sdk_dynamodb::types::{AttributeValue, ConditionCheck, TransactWriteItem};

use super::codec::{get_n, get_parsed, n, s, values, Attributes};
use super::keys;
use super::stock::build;
use super::{DynamoStore, Transaction};
use crate::domain::{Campaign, CampaignId, CampaignTerms, Reservation, Sku, Timestamp};
use crate::error::{Error, Result};
use crate::retry::Backoff;
use crate::store::{CampaignHold, ReadCampaign, SetCampaign};

fn campaign_from(item: &Attributes) -> Result<Campaign> {
    let skus = item
        .get("skus")
        .and_then(|v| v.as_ss().ok())
        .map(|set| set.iter().filter_map(|s| Sku::parse(s).ok()).collect())
        .unwrap_or_default();
    Ok(Campaign {
        campaign_id: get_parsed(item, "campaign_id", |t| CampaignId::parse(t).ok())?,
        skus,
        starts_at: get_parsed(item, "starts_at", Timestamp::parse)?,
        ends_at: get_parsed(item, "ends_at", Timestamp::parse)?,
        per_customer_limit: get_n(item, "per_customer_limit")?,
        created_at: get_parsed(item, "created_at", Timestamp::parse)?,
        updated_at: get_parsed(item, "updated_at", Timestamp::parse)?,
    })
}

impl DynamoStore {
    /// The campaign's window, skus and limit as the reservation was admitted under them,
    /// and the customer's counter, which may not pass the limit.
    pub(super) fn campaign_guards(
        &self,
        reservation: &Reservation,
        terms: &CampaignHold,
    ) -> Result<Vec<(TransactWriteItem, Error)>> {
        let (Some(campaign), Some(customer)) = (&reservation.campaign_id, &reservation.customer_id)
        else {
            return Ok(Vec::new());
        };
        let now = s(reservation.created_at.to_string());
        let mut condition =
            "starts_at <= :now AND ends_at > :now AND per_customer_limit = :limit".to_owned();
        let mut check_values = values([(":now", now.clone()), (":limit", n(terms.limit))]);
        for (i, line) in reservation.lines.iter().enumerate() {
            condition.push_str(&format!(" AND contains(skus, :sku{i})"));
            check_values.insert(format!(":sku{i}"), s(line.sku.as_str()));
        }
        let check = build(
            "condition check",
            ConditionCheck::builder()
                .table_name(&self.table)
                .key("pk", s(keys::campaign(campaign)))
                .key("sk", s(keys::CAMPAIGN))
                .condition_expression(condition)
                .set_expression_attribute_values(Some(check_values))
                .build(),
        )?;
        let units = reservation.units();
        // More than the limit in one request can never have succeeded: nothing to replay.
        let Some(room) = u64::from(terms.limit).checked_sub(units) else {
            return Err(Error::PurchaseLimitExceeded(campaign.clone()));
        };
        let counter = self.update(
            keys::campaign(campaign),
            keys::customer_counter(customer),
            "SET units = if_not_exists(units, :zero) + :q, updated_at = :now",
            "attribute_not_exists(units) OR units <= :room",
            values([
                (":zero", n(0)),
                (":q", n(units)),
                (":room", n(room)),
                (":now", now),
            ]),
        )?;
        Ok(vec![
            (
                TransactWriteItem::builder().condition_check(check).build(),
                Error::CampaignNotActive {
                    campaign: campaign.clone(),
                    sku: None,
                },
            ),
            (counter, Error::PurchaseLimitExceeded(campaign.clone())),
        ])
    }
}

#[async_trait]
impl ReadCampaign for DynamoStore {
    async fn campaign(&self, id: &CampaignId) -> Result<Option<Campaign>> {
        self.get(keys::campaign(id), keys::CAMPAIGN.into())
            .await?
            .as_ref()
            .map(campaign_from)
            .transpose()
    }
}

#[async_trait]
impl SetCampaign for DynamoStore {
    async fn put_campaign(
        &self,
        id: &CampaignId,
        terms: &CampaignTerms,
        at: Timestamp,
    ) -> Result<(Campaign, bool)> {
        let mut backoff = Backoff::default();
        while backoff.next_attempt().await {
            let existing = self.campaign(id).await?;
            let created_at = existing.as_ref().map_or(at, |c| c.created_at);
            let campaign = Campaign {
                campaign_id: id.clone(),
                skus: terms.skus.clone(),
                starts_at: terms.starts_at,
                ends_at: terms.ends_at,
                per_customer_limit: terms.per_customer_limit,
                created_at,
                updated_at: at,
            };
            let item = values([
                ("pk", s(keys::campaign(id))),
                ("sk", s(keys::CAMPAIGN)),
                ("entity", s("campaign")),
                ("campaign_id", s(id.as_str())),
                (
                    "skus",
                    AttributeValue::Ss(terms.skus.iter().map(|s| s.to_string()).collect()),
                ),
                ("starts_at", s(terms.starts_at.to_string())),
                ("ends_at", s(terms.ends_at.to_string())),
                ("per_customer_limit", n(terms.per_customer_limit)),
                ("created_at", s(created_at.to_string())),
                ("updated_at", s(at.to_string())),
            ]);
            // Created once: a concurrent first PUT makes this one an update, retried.
            let condition = match &existing {
                None => "attribute_not_exists(pk)".to_owned(),
                Some(_) => "updated_at = :seen".to_owned(),
            };
            let mut put = aws_sdk_dynamodb::types::Put::builder()
                .table_name(&self.table)
                .set_item(Some(item))
                .condition_expression(condition);
            if let Some(c) = &existing {
                put = put.expression_attribute_values(":seen", s(c.updated_at.to_string()));
            }
            let put = build("put", put.build())?;
            if let Transaction::Committed = self
                .transact(vec![TransactWriteItem::builder().put(put).build()])
                .await?
            {
                return Ok((campaign, existing.is_none()));
            }
        }
        Err(Error::Contention)
    }
}
