//! Compensation commands: applying a refund's restock once, or giving up on it.

use crate::domain::{CommandId, CommandStatus, Restock, Timestamp};
use crate::error::{Error, Result};
use crate::retry::Backoff;
use crate::store::{Attempt, ReadCommand, WriteCommand};

/// What applying a compensation command came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    Now,
    Before,
}

/// Puts the command's units back and completes its refund, once. A FAILED command
/// applies too: that is what a redrive from the dead-letter queue is for, once the cause
/// is fixed.
pub async fn apply_restock(
    store: &(impl ReadCommand + WriteCommand),
    id: &CommandId,
    at: Timestamp,
) -> Result<Applied> {
    let mut backoff = Backoff::default();
    while backoff.next_attempt().await {
        let (status, restock) = recorded(store, id).await?;
        if status == CommandStatus::Applied {
            return Ok(Applied::Before);
        }
        let from = [CommandStatus::Pending, CommandStatus::Failed];
        match store.apply_command(&restock, &from, at).await? {
            Attempt::Committed => return Ok(Applied::Now),
            Attempt::Refused(_) => {
                // Nothing sells units back: this stays so until a person fixes the books.
                return Err(Error::Store {
                    message: format!("command {id}: fewer units sold than it puts back"),
                    retryable: false,
                });
            }
            Attempt::Stale => {}
        }
    }
    Err(Error::Contention)
}

/// Gives up on a command whose retries ran out: a PENDING one and its refund become
/// FAILED; an applied or failed one stays as it is.
pub async fn fail_restock(
    store: &(impl ReadCommand + WriteCommand),
    id: &CommandId,
    at: Timestamp,
) -> Result<()> {
    let mut backoff = Backoff::default();
    while backoff.next_attempt().await {
        let Some((CommandStatus::Pending, restock)) = store.command(id).await? else {
            return Ok(()); // Applied, failed already, or never recorded: nothing to mark.
        };
        // Stale: the command left PENDING meanwhile; read it again.
        if let Attempt::Committed = store.fail_command(&restock, at).await? {
            return Ok(());
        }
    }
    Err(Error::Contention)
}

async fn recorded(store: &impl ReadCommand, id: &CommandId) -> Result<(CommandStatus, Restock)> {
    store.command(id).await?.ok_or_else(|| Error::Store {
        message: format!("no command {id} is recorded"),
        retryable: false,
    })
}
