//! The idempotency record every request-created item carries: the request's fingerprint
//! and its first answer, kept as they were given.

use async_trait::async_trait;

use super::codec::{get_n, get_s, n, s, Attributes};
use super::{schema, DynamoStore};
use crate::error::Result;
use crate::idempotency::RecordedRequest;
use crate::store::{ReadRecord, RecordKey};

/// Adds the record's members to the item that records the request.
pub(super) fn with_receipt(mut item: Attributes, receipt: &RecordedRequest) -> Attributes {
    item.insert("request_hash".into(), s(&receipt.fingerprint));
    item.insert("response_status".into(), n(receipt.status));
    item.insert("response_body".into(), s(&receipt.body));
    item
}

pub(super) fn receipt_of(item: &Attributes) -> Result<RecordedRequest> {
    Ok(RecordedRequest {
        fingerprint: get_s(item, "request_hash")?.to_owned(),
        status: get_n(item, "response_status")?,
        body: get_s(item, "response_body")?.to_owned(),
    })
}

#[async_trait]
impl ReadRecord for DynamoStore {
    async fn recorded(&self, key: &RecordKey) -> Result<Option<RecordedRequest>> {
        let key = match key {
            RecordKey::Reservation(id) => schema::reservation_key(id),
            RecordKey::Order(id) => schema::order_key(id),
            RecordKey::Refund(order, refund) => schema::refund_key(order, refund),
            RecordKey::Adjustment(sku, id) => schema::adjustment_key(sku, id),
        };
        self.get(key).await?.as_ref().map(receipt_of).transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_receipt_reads_back_as_written() {
        let receipt = RecordedRequest {
            fingerprint: "f".into(),
            status: 202,
            body: r#"{"a":1}"#.into(),
        };
        let item = with_receipt(Attributes::new(), &receipt);
        assert_eq!(receipt_of(&item).unwrap(), receipt);
    }
}
