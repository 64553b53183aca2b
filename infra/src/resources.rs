//! The table and queues `template.yaml` declares, created under names of our choosing.
//!
//! `infra/template_resources.py` reads the template (the only description of keys,
//! index and redrive settings); this module creates what it describes.

use std::collections::BTreeMap;
use std::process::Command;

use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection,
    ProjectionType, ScalarAttributeType, TimeToLiveSpecification,
};
use aws_sdk_sqs::types::QueueAttributeName;
use serde::Deserialize;

use crate::emulator::venv_python;
use crate::{project_root, Error, Result};

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Attribute {
    attribute_name: String,
    attribute_type: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Key {
    attribute_name: String,
    key_type: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct IndexProjection {
    projection_type: String,
    #[serde(default)]
    non_key_attributes: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Index {
    index_name: String,
    key_schema: Vec<Key>,
    projection: IndexProjection,
}

#[derive(Debug, Clone, Deserialize)]
struct TableSpec {
    attribute_definitions: Vec<Attribute>,
    key_schema: Vec<Key>,
    global_secondary_indexes: Vec<Index>,
    ttl_attribute: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
struct QueueSpec {
    visibility_timeout: u32,
    message_retention_period: u32,
    dead_letter_queue: Option<String>,
    max_receive_count: Option<u32>,
}

/// What the template declares.
#[derive(Debug, Clone, Deserialize)]
pub struct TemplateResources {
    table: TableSpec,
    queues: BTreeMap<String, QueueSpec>,
}

/// Names of created resources: the table, and each queue's URL by its logical id.
#[derive(Debug, Clone)]
pub struct Resources {
    pub table: String,
    pub queue_urls: BTreeMap<String, String>,
}

impl Resources {
    /// The compensation queue's URL (logical id `CompensationQueue`).
    pub fn compensation_queue(&self) -> Option<&str> {
        self.queue_urls.get("CompensationQueue").map(String::as_str)
    }

    pub async fn delete(&self, dynamodb: &aws_sdk_dynamodb::Client, sqs: &aws_sdk_sqs::Client) {
        // Best effort: a leftover only costs the emulator some memory.
        let _ = dynamodb.delete_table().table_name(&self.table).send().await;
        for url in self.queue_urls.values() {
            let _ = sqs.delete_queue().queue_url(url).send().await;
        }
    }
}

fn aws_error(what: &str) -> impl FnOnce(String) -> Error + '_ {
    move |e| Error::Aws(format!("{what}: {e}"))
}

fn built<T, E: std::fmt::Display>(what: &str, r: std::result::Result<T, E>) -> Result<T> {
    r.map_err(|e| aws_error(what)(e.to_string()))
}

fn keys(schema: &[Key]) -> Result<Vec<KeySchemaElement>> {
    schema
        .iter()
        .map(|k| {
            built(
                "key schema",
                KeySchemaElement::builder()
                    .attribute_name(&k.attribute_name)
                    .key_type(KeyType::from(k.key_type.as_str()))
                    .build(),
            )
        })
        .collect()
}

/// Queue names: `<prefix>-<logical id in kebab case>`.
fn queue_name(prefix: &str, logical_id: &str) -> String {
    let mut name = format!("{prefix}-");
    for (i, c) in logical_id.chars().enumerate() {
        if c.is_ascii_uppercase() && i > 0 {
            name.push('-');
        }
        name.push(c.to_ascii_lowercase());
    }
    name
}

impl TemplateResources {
    /// Reads `template.yaml` through `infra/template_resources.py`.
    pub fn load() -> Result<Self> {
        let root = project_root();
        let output = Command::new(venv_python(&root)?)
            .arg(root.join("infra/template_resources.py"))
            .arg(root.join("template.yaml"))
            .output()
            .map_err(Error::io("running infra/template_resources.py"))?;
        if !output.status.success() {
            return Err(Error::Setup(format!(
                "reading template.yaml failed: {}",
                String::from_utf8_lossy(&output.stderr)
            )));
        }
        serde_json::from_slice(&output.stdout)
            .map_err(|e| Error::Setup(format!("unexpected template description: {e}")))
    }

    /// Creates the table (named `prefix`) and every queue, dead-letter queues first.
    pub async fn create(
        &self,
        dynamodb: &aws_sdk_dynamodb::Client,
        sqs: &aws_sdk_sqs::Client,
        prefix: &str,
    ) -> Result<Resources> {
        self.create_table(dynamodb, prefix).await?;
        let mut queue_urls = BTreeMap::new();
        let mut arns = BTreeMap::new();
        // Dead-letter targets first: their ARNs go into the others' redrive policies.
        let mut order: Vec<_> = self.queues.iter().collect();
        order.sort_by_key(|(_, spec)| spec.dead_letter_queue.is_some());
        for (logical_id, spec) in order {
            let mut request = sqs
                .create_queue()
                .queue_name(queue_name(prefix, logical_id))
                .attributes(
                    QueueAttributeName::VisibilityTimeout,
                    spec.visibility_timeout.to_string(),
                )
                .attributes(
                    QueueAttributeName::MessageRetentionPeriod,
                    spec.message_retention_period.to_string(),
                );
            if let (Some(dlq), Some(max)) = (&spec.dead_letter_queue, spec.max_receive_count) {
                let arn: &String = arns.get(dlq).ok_or_else(|| {
                    Error::Setup(format!(
                        "{logical_id} names an unknown dead-letter queue {dlq}"
                    ))
                })?;
                let policy =
                    serde_json::json!({"deadLetterTargetArn": arn, "maxReceiveCount": max});
                request = request.attributes(QueueAttributeName::RedrivePolicy, policy.to_string());
            }
            let url = request
                .send()
                .await
                .map_err(|e| {
                    aws_error("CreateQueue")(aws_sdk_sqs::error::DisplayErrorContext(e).to_string())
                })?
                .queue_url
                .ok_or_else(|| Error::Aws("CreateQueue returned no URL".into()))?;
            let arn = sqs
                .get_queue_attributes()
                .queue_url(&url)
                .attribute_names(QueueAttributeName::QueueArn)
                .send()
                .await
                .map_err(|e| {
                    aws_error("GetQueueAttributes")(
                        aws_sdk_sqs::error::DisplayErrorContext(e).to_string(),
                    )
                })?
                .attributes
                .and_then(|mut a| a.remove(&QueueAttributeName::QueueArn))
                .ok_or_else(|| Error::Aws("queue has no ARN".into()))?;
            arns.insert(logical_id.clone(), arn);
            queue_urls.insert(logical_id.clone(), url);
        }
        Ok(Resources {
            table: prefix.to_owned(),
            queue_urls,
        })
    }

    async fn create_table(&self, dynamodb: &aws_sdk_dynamodb::Client, name: &str) -> Result<()> {
        let spec = &self.table;
        let mut request = dynamodb
            .create_table()
            .table_name(name)
            .billing_mode(BillingMode::PayPerRequest)
            .set_key_schema(Some(keys(&spec.key_schema)?));
        for a in &spec.attribute_definitions {
            request = request.attribute_definitions(built(
                "attribute definition",
                AttributeDefinition::builder()
                    .attribute_name(&a.attribute_name)
                    .attribute_type(ScalarAttributeType::from(a.attribute_type.as_str()))
                    .build(),
            )?);
        }
        for index in &spec.global_secondary_indexes {
            let projection = Projection::builder()
                .projection_type(ProjectionType::from(
                    index.projection.projection_type.as_str(),
                ))
                .set_non_key_attributes(
                    (!index.projection.non_key_attributes.is_empty())
                        .then(|| index.projection.non_key_attributes.clone()),
                )
                .build();
            request = request.global_secondary_indexes(built(
                "index",
                GlobalSecondaryIndex::builder()
                    .index_name(&index.index_name)
                    .set_key_schema(Some(keys(&index.key_schema)?))
                    .projection(projection)
                    .build(),
            )?);
        }
        request.send().await.map_err(|e| {
            aws_error("CreateTable")(aws_sdk_dynamodb::error::DisplayErrorContext(e).to_string())
        })?;
        if let Some(attribute) = &spec.ttl_attribute {
            dynamodb
                .update_time_to_live()
                .table_name(name)
                .time_to_live_specification(built(
                    "ttl",
                    TimeToLiveSpecification::builder()
                        .attribute_name(attribute)
                        .enabled(true)
                        .build(),
                )?)
                .send()
                .await
                .map_err(|e| {
                    aws_error("UpdateTimeToLive")(
                        aws_sdk_dynamodb::error::DisplayErrorContext(e).to_string(),
                    )
                })?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queue_names_follow_logical_ids() {
        assert_eq!(
            queue_name("stockroom", "CompensationDeadLetterQueue"),
            "stockroom-compensation-dead-letter-queue"
        );
    }
}
