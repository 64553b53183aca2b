//! Counting the items DynamoDB's answers to reads carry, under a client the test builds.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use aws_sdk_dynamodb::operation::{
    batch_get_item::BatchGetItemOutput, get_item::GetItemOutput, query::QueryOutput,
    transact_get_items::TransactGetItemsOutput,
};
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::context::AfterDeserializationInterceptorContextRef;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::ConfigBag;
use stockroom::store::DynamoStore;

use crate::TestApp;

/// The items read and the read requests made since the last `take`, whatever the
/// operation.
#[derive(Debug, Clone, Default)]
pub struct ItemsRead {
    items: Arc<AtomicUsize>,
    requests: Arc<AtomicUsize>,
}

impl ItemsRead {
    /// `(items, requests)` so far, and starts counting again from zero.
    pub fn take(&self) -> (usize, usize) {
        (
            self.items.swap(0, Ordering::SeqCst),
            self.requests.swap(0, Ordering::SeqCst),
        )
    }

    /// The store on `app`'s table, each of whose reads is counted here.
    pub fn store(&self, app: &TestApp) -> DynamoStore {
        let config = app
            .dynamodb
            .config()
            .to_builder()
            .interceptor(self.clone())
            .build();
        let client = aws_sdk_dynamodb::Client::from_conf(config);
        DynamoStore::new(client, app.resources.table.clone())
    }
}

impl Intercept for ItemsRead {
    fn name(&self) -> &'static str {
        "ItemsRead"
    }

    fn read_after_deserialization(
        &self,
        context: &AfterDeserializationInterceptorContextRef<'_>,
        _: &RuntimeComponents,
        _: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let Ok(output) = context.output_or_error() else {
            return Ok(());
        };
        let items = if let Some(out) = output.downcast_ref::<QueryOutput>() {
            out.items().len()
        } else if let Some(out) = output.downcast_ref::<GetItemOutput>() {
            usize::from(out.item().is_some())
        } else if let Some(out) = output.downcast_ref::<BatchGetItemOutput>() {
            out.responses()
                .map_or(0, |r| r.values().map(Vec::len).sum())
        } else if let Some(out) = output.downcast_ref::<TransactGetItemsOutput>() {
            out.responses().len()
        } else {
            return Ok(());
        };
        self.items.fetch_add(items, Ordering::SeqCst);
        self.requests.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }
}
