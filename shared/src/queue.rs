//! The compensation queue: a port and its SQS adapter.

use async_trait::async_trait;
use aws_sdk_sqs::Client;
use serde::{Deserialize, Serialize};

use crate::domain::{CommandId, Restock};
use crate::error::{Error, Result};

/// What a message on the compensation queue says: which recorded command to apply. The
/// command itself is read from the table, so a message cannot ask for more than was
/// recorded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommandMessage {
    pub command_id: CommandId,
    pub kind: String,
}

impl CommandMessage {
    pub fn restock(restock: &Restock) -> Self {
        Self {
            command_id: restock.command_id.clone(),
            kind: "restock".into(),
        }
    }
}

#[async_trait]
pub trait CommandQueue: Send + Sync {
    async fn send(&self, message: &CommandMessage) -> Result<()>;

    /// Sends `message`, delivered no sooner than `seconds` from now (at most 900, as
    /// SQS allows). A queue that cannot delay sends it at once: the copy is then only
    /// tried sooner.
    async fn send_after(&self, message: &CommandMessage, seconds: u32) -> Result<()> {
        let _ = seconds;
        self.send(message).await
    }

    /// Keeps a received message hidden for `seconds` more: the back-off before its
    /// next attempt.
    async fn delay(&self, receipt_handle: &str, seconds: u32) -> Result<()>;
}

#[derive(Debug, Clone)]
pub struct SqsQueue {
    client: Client,
    url: String,
}

impl SqsQueue {
    pub fn new(client: Client, url: impl Into<String>) -> Self {
        Self {
            client,
            url: url.into(),
        }
    }
}

fn queue_error(operation: &str, e: impl std::error::Error + 'static) -> Error {
    Error::Store {
        message: format!(
            "{operation}: {}",
            aws_sdk_sqs::error::DisplayErrorContext(e)
        ),
        retryable: true,
    }
}

#[async_trait]
impl CommandQueue for SqsQueue {
    async fn send(&self, message: &CommandMessage) -> Result<()> {
        self.send_after(message, 0).await
    }

    async fn send_after(&self, message: &CommandMessage, seconds: u32) -> Result<()> {
        let body = serde_json::to_string(message).unwrap_or_default();
        self.client
            .send_message()
            .queue_url(&self.url)
            .message_body(body)
            .delay_seconds(seconds.min(900) as i32)
            .send()
            .await
            .map_err(|e| queue_error("SendMessage", e))?;
        Ok(())
    }

    async fn delay(&self, receipt_handle: &str, seconds: u32) -> Result<()> {
        self.client
            .change_message_visibility()
            .queue_url(&self.url)
            .receipt_handle(receipt_handle)
            .visibility_timeout(seconds.min(43_200) as i32)
            .send()
            .await
            .map_err(|e| queue_error("ChangeMessageVisibility", e))?;
        Ok(())
    }
}
