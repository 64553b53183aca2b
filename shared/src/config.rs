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

/// The AWS SDK configuration as Lambda gives it: region, credentials and (locally)
/// `AWS_ENDPOINT_URL` from the environment; nothing here knows whether it talks to AWS.
/// Not the SDK's default chains: they carry providers for profile files, SSO, web
/// identity, ECS and IMDS, for credentials Lambda puts in the environment.
pub fn aws() -> aws_config::SdkConfig {
    aws_from_lookup(|name| std::env::var(name).ok())
}

fn aws_from_lookup(lookup: impl Fn(&str) -> Option<String>) -> aws_config::SdkConfig {
    let region = lookup("AWS_REGION").or_else(|| lookup("AWS_DEFAULT_REGION"));
    let mut config = aws_config::SdkConfig::builder()
        .behavior_version(aws_config::BehaviorVersion::latest())
        .region(region.map(aws_config::Region::new))
        .credentials_provider(aws_sdk_dynamodb::config::SharedCredentialsProvider::new(
            aws_config::environment::EnvironmentVariableCredentialsProvider::new(),
        ))
        .retry_config(aws_config::retry::RetryConfig::standard());
    config.set_endpoint_url(lookup("AWS_ENDPOINT_URL").filter(|url| !url.is_empty()));
    config.build()
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

    #[test]
    fn the_sdk_takes_region_and_endpoint_from_the_environment() {
        let env = |name: &str| match name {
            "AWS_DEFAULT_REGION" => Some("eu-west-1".to_owned()),
            "AWS_ENDPOINT_URL" => Some("http://127.0.0.1:4566".to_owned()),
            _ => None,
        };
        let aws = aws_from_lookup(env);
        assert_eq!(aws.region().map(|r| r.as_ref()), Some("eu-west-1"));
        assert_eq!(aws.endpoint_url(), Some("http://127.0.0.1:4566"));
        assert!(aws.credentials_provider().is_some());
        let lambda = aws_from_lookup(|name| (name == "AWS_REGION").then(|| "us-east-1".into()));
        assert_eq!(lambda.region().map(|r| r.as_ref()), Some("us-east-1"));
        assert_eq!(lambda.endpoint_url(), None);
    }
}
