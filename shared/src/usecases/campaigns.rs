//! Campaigns: a window, the skus on sale in it, and a per-customer limit.

use crate::domain::{Campaign, CampaignId, CampaignTerms, Timestamp};
use crate::error::{Error, Result};
use crate::idempotency::Answer;
use crate::retry::Backoff;
use crate::store::{Attempt, ReadCampaign, WriteCampaign};

/// Creates (`201`) or replaces (`200`) a campaign; it keeps its first `created_at`.
pub async fn put(
    store: &(impl ReadCampaign + WriteCampaign),
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
