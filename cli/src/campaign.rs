//! `campaign put` / `campaign show`.

use serde::Serialize;
use serde_json::Value;

use crate::api::{Api, CliError};

/// The terms of a campaign, as `PUT /campaigns/{id}` takes them.
#[derive(Debug, Clone, Serialize)]
pub struct CampaignTerms {
    pub skus: Vec<String>,
    pub starts_at: String,
    pub ends_at: String,
    pub per_customer_limit: u32,
}

/// Creates or replaces the campaign `id`; the campaign as the API now has it.
pub async fn campaign_put(api: &Api, id: &str, terms: &CampaignTerms) -> Result<Value, CliError> {
    let body = serde_json::to_value(terms).map_err(|e| CliError::BadInput(e.to_string()))?;
    let path = format!("/campaigns/{id}");
    api.send(reqwest::Method::PUT, &path, Some(body))
        .await?
        .success()
}

/// The campaign `id`.
pub async fn campaign_show(api: &Api, id: &str) -> Result<Value, CliError> {
    let path = format!("/campaigns/{id}");
    api.send(reqwest::Method::GET, &path, None).await?.success()
}
