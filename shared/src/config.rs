//! Configuration from the environment, read once in each function's `main`.

use crate::error::{Error, Result};

#[derive(Debug, Clone)]
pub struct Config {
    /// `STOCKROOM_TABLE`: the one DynamoDB table.
    pub table: String,
    /// `STOCKROOM_QUEUE_URL`: the compensation queue, for functions that send to it.
    pub queue_url: Option<String>,
}

impl Config {
    pub fn from_env() -> Result<Self> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self> {
        let table = lookup("STOCKROOM_TABLE")
            .filter(|t| !t.is_empty())
            .ok_or_else(|| Error::Config("STOCKROOM_TABLE is not set".into()))?;
        Ok(Self {
            table,
            queue_url: lookup("STOCKROOM_QUEUE_URL").filter(|q| !q.is_empty()),
        })
    }
}

/// The AWS SDK configuration: region, credentials and `AWS_ENDPOINT_URL` from the
/// environment, as everywhere else; nothing here knows whether it talks to AWS.
pub async fn aws() -> aws_config::SdkConfig {
    aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_is_required_and_queue_optional() {
        assert!(Config::from_lookup(|_| None).is_err());
        let c = Config::from_lookup(|n| (n == "STOCKROOM_TABLE").then(|| "t".to_owned())).unwrap();
        assert_eq!(c.table, "t");
        assert_eq!(c.queue_url, None);
    }
}
