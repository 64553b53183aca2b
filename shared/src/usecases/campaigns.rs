//! Campaigns: a window, the skus on sale in it, and a per-customer limit.

use std::collections::BTreeSet;

use crate::domain::{Campaign, CampaignId, CampaignTerms, Sku, Timestamp};
use crate::error::{Error, Result};
use crate::idempotency::Answer;
use crate::retry::Backoff;
use crate::store::{Attempt, ReadCampaign, ReadStock, WriteCampaign, WriteStock};

/// Creates (`201`) or replaces (`200`) a campaign; it keeps its first `created_at`. Its
/// terms are stamped on the stock items of each sku it lists (or listed): each sku's
/// stamp is atomic, and every sku carries the new terms once this answers.
pub async fn put(
    store: &(impl ReadCampaign + WriteCampaign + ReadStock + WriteStock),
    id: &CampaignId,
    terms: &CampaignTerms,
    at: Timestamp,
) -> Result<(Answer, Campaign)> {
    let mut backoff = Backoff::default();
    while backoff.next_attempt().await {
        let seen = store.campaign(id).await?;
        let created_at = seen.as_ref().map_or(at, |c| c.created_at);
        let campaign = terms.campaign(id, created_at, at);
        if let Attempt::Committed = store.put_campaign(&campaign, seen.as_ref()).await? {
            let skus: BTreeSet<&Sku> = campaign
                .skus
                .iter()
                .chain(seen.iter().flat_map(|c| &c.skus))
                .collect();
            for sku in skus {
                stamp(store, sku, at).await?;
            }
            let answer = match seen {
                None => Answer::Created,
                Some(_) => Answer::Ok,
            };
            return Ok((answer, campaign));
        }
        // Written meanwhile (a concurrent first PUT makes this one an update): again.
    }
    Err(Error::Contention)
}

/// Stamps the sku's stock items with the offers of the campaigns that list it now (a
/// sku that does not exist yet is stamped when it is created).
pub(super) async fn stamp(
    store: &(impl ReadCampaign + ReadStock + WriteStock),
    sku: &Sku,
    at: Timestamp,
) -> Result<()> {
    let mut backoff = Backoff::default();
    while backoff.next_attempt().await {
        let Some(seen) = store.sku_stock(sku).await? else {
            return Ok(());
        };
        let Some(terms) = seen.terms.next(store.offers_for(sku).await?, at) else {
            return Ok(());
        };
        if let Attempt::Committed = store.stamp_terms(&seen, &terms, at).await? {
            return Ok(());
        }
    }
    Err(Error::Contention)
}

pub async fn campaign(store: &impl ReadCampaign, id: &CampaignId) -> Result<Campaign> {
    store
        .campaign(id)
        .await?
        .ok_or_else(|| Error::CampaignNotFound(id.clone()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::MemoryStore;
    use crate::usecases::testing::*;

    #[tokio::test]
    async fn a_campaign_is_created_then_replaced_keeping_when_it_was_created() {
        let store = MemoryStore::new();
        let id = campaign_id("flash");
        let e = refused(campaign(&store, &id).await);
        assert!(
            matches!(&e, Error::CampaignNotFound(c) if *c == id),
            "{e:?}"
        );

        let (answer, first) = put(&store, &id, &terms(&["tea"], 3), now()).await.unwrap();
        assert_eq!(answer, Answer::Created);
        assert_eq!((first.created_at, first.updated_at), (now(), now()));
        assert_eq!(campaign(&store, &id).await.unwrap(), first);

        let (answer, second) = put(&store, &id, &terms(&["tea", "cup"], 5), later(60))
            .await
            .unwrap();
        assert_eq!(answer, Answer::Ok);
        assert_eq!((second.created_at, second.updated_at), (now(), later(60)));
        assert_eq!((second.skus.len(), second.per_customer_limit), (2, 5));
        assert_eq!(campaign(&store, &id).await.unwrap(), second);
    }
}
