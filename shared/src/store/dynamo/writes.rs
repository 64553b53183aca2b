//! Building the writes of a transaction: conditional updates, puts of new items, and
//! moves of units between a shard's counters.

use aws_sdk_dynamodb::types::{
    Delete, Put, ReturnValuesOnConditionCheckFailure, TransactWriteItem, Update,
};

use super::codec::{n, s, values, Attributes};
use super::{schema, DynamoStore};
use crate::domain::{Allocation, StockMove, Timestamp};
use crate::error::{Error, Result};

/// `#name` in an expression always stands for the attribute `name` (for reserved words
/// such as `status` and `ttl`).
fn placeholder_names(expressions: &[&str]) -> std::collections::HashMap<String, String> {
    expressions
        .iter()
        .flat_map(|e| e.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '#')))
        .filter_map(|token| {
            token
                .strip_prefix('#')
                .map(|name| (token.to_owned(), name.to_owned()))
        })
        .collect()
}

/// A request the SDK's builder refused: a bug of ours, never the client's.
pub(super) fn build<T, E: std::fmt::Display>(what: &str, built: Result<T, E>) -> Result<T> {
    built.map_err(|e| Error::Store {
        message: format!("building {what}: {e}"),
        retryable: false,
    })
}

impl DynamoStore {
    pub(super) fn update(
        &self,
        key: (String, String),
        expression: &str,
        condition: &str,
        values: Attributes,
    ) -> Result<TransactWriteItem> {
        self.update_returning(key, expression, condition, values, &[], None)
    }

    /// An update whose cancellation shows the item as its condition found it: what a
    /// refused take plans again with, instead of reading. `names` are placeholders for
    /// names that are not attribute spellings (a campaign id as a map key).
    pub(super) fn update_showing_old(
        &self,
        key: (String, String),
        expression: &str,
        condition: &str,
        values: Attributes,
        names: &[(&str, &str)],
    ) -> Result<TransactWriteItem> {
        let all_old = ReturnValuesOnConditionCheckFailure::AllOld;
        self.update_returning(key, expression, condition, values, names, Some(all_old))
    }

    fn update_returning(
        &self,
        (pk, sk): (String, String),
        expression: &str,
        condition: &str,
        values: Attributes,
        names: &[(&str, &str)],
        on_failure: Option<ReturnValuesOnConditionCheckFailure>,
    ) -> Result<TransactWriteItem> {
        let mut placeholders = placeholder_names(&[expression, condition]);
        placeholders.extend(
            names
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
        );
        let update = build(
            "update",
            Update::builder()
                .table_name(&self.table)
                .key("pk", s(pk))
                .key("sk", s(sk))
                .update_expression(expression)
                .condition_expression(condition)
                .set_expression_attribute_names((!placeholders.is_empty()).then_some(placeholders))
                .set_expression_attribute_values(Some(values))
                .set_return_values_on_condition_check_failure(on_failure)
                .build(),
        )?;
        Ok(TransactWriteItem::builder().update(update).build())
    }

    /// A put of an item that must not exist yet.
    pub(super) fn put_new(&self, item: Attributes) -> Result<TransactWriteItem> {
        let put = build(
            "put",
            Put::builder()
                .table_name(&self.table)
                .set_item(Some(item))
                .condition_expression("attribute_not_exists(pk)")
                .build(),
        )?;
        Ok(TransactWriteItem::builder().put(put).build())
    }

    /// A put that replaces whatever is there.
    pub(super) fn put(&self, item: Attributes) -> Result<TransactWriteItem> {
        let put = build(
            "put",
            Put::builder()
                .table_name(&self.table)
                .set_item(Some(item))
                .build(),
        )?;
        Ok(TransactWriteItem::builder().put(put).build())
    }

    /// A delete of whatever is there.
    pub(super) fn delete(&self, (pk, sk): (String, String)) -> Result<TransactWriteItem> {
        let delete = build(
            "delete",
            Delete::builder()
                .table_name(&self.table)
                .key("pk", s(pk))
                .key("sk", s(sk))
                .build(),
        )?;
        Ok(TransactWriteItem::builder().delete(delete).build())
    }

    /// One shard's units moved from one counter to another, conditioned on the source.
    pub(super) fn move_stock(
        &self,
        a: &Allocation,
        movement: StockMove,
        at: Timestamp,
    ) -> Result<TransactWriteItem> {
        let (from, to) = (movement.from.name(), movement.to.name());
        self.update(
            schema::stock_key(&a.sku, a.take.shard),
            &format!("SET {from} = {from} - :q, {to} = {to} + :q, updated_at = :at"),
            &format!("{from} >= :q"),
            values([(":q", n(a.take.quantity)), (":at", s(at.to_string()))]),
        )
    }
}
