//! The shapes of the JSON the table keeps in item attributes (a hold's lines, where its
//! units came from, a restock command): types of their own, apart from the domain's and
//! the API's, so that renaming a field there changes neither what is written nor whether
//! items written before still decode. The tests pin the stored text.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::domain::{
    Allocation, CommandId, Line, Lines, OrderId, OrderLine, Quantity, RefundId, Restock, Sku, Take,
    Timestamp,
};

/// A domain value kept as JSON through its stored shape.
pub trait StoredJson: Sized {
    type Shape: Serialize + DeserializeOwned;
    fn shape(&self) -> Self::Shape;
    /// `None` when the stored shape does not make a valid value.
    fn from_shape(shape: Self::Shape) -> Option<Self>;
}

#[derive(Serialize, Deserialize)]
pub struct StoredLine {
    sku: String,
    quantity: u64,
}

impl StoredJson for Line {
    type Shape = StoredLine;
    fn shape(&self) -> StoredLine {
        StoredLine {
            sku: self.sku.to_string(),
            quantity: u64::from(self.quantity.get()),
        }
    }
    fn from_shape(shape: StoredLine) -> Option<Self> {
        Some(Line {
            sku: Sku::parse(&shape.sku).ok()?,
            quantity: Quantity::new(shape.quantity).ok()?,
        })
    }
}

#[derive(Serialize, Deserialize)]
pub struct StoredOrderLine {
    sku: String,
    quantity: u64,
    refunded: u64,
}

impl StoredJson for OrderLine {
    type Shape = StoredOrderLine;
    fn shape(&self) -> StoredOrderLine {
        StoredOrderLine {
            sku: self.sku.to_string(),
            quantity: u64::from(self.quantity.get()),
            refunded: self.refunded,
        }
    }
    fn from_shape(shape: StoredOrderLine) -> Option<Self> {
        Some(OrderLine {
            sku: Sku::parse(&shape.sku).ok()?,
            quantity: Quantity::new(shape.quantity).ok()?,
            refunded: shape.refunded,
        })
    }
}

#[derive(Serialize, Deserialize)]
pub struct StoredAllocation {
    sku: String,
    shard: u16,
    quantity: u64,
}

impl StoredJson for Allocation {
    type Shape = StoredAllocation;
    fn shape(&self) -> StoredAllocation {
        StoredAllocation {
            sku: self.sku.to_string(),
            shard: self.take.shard,
            quantity: self.take.quantity,
        }
    }
    fn from_shape(shape: StoredAllocation) -> Option<Self> {
        Some(Allocation {
            sku: Sku::parse(&shape.sku).ok()?,
            take: Take {
                shard: shape.shard,
                quantity: shape.quantity,
            },
        })
    }
}

#[derive(Serialize, Deserialize)]
pub struct StoredRestock {
    command_id: String,
    order_id: String,
    refund_id: String,
    units: Vec<StoredAllocation>,
    created_at: String,
}

impl StoredJson for Restock {
    type Shape = StoredRestock;
    fn shape(&self) -> StoredRestock {
        StoredRestock {
            command_id: self.command_id.to_string(),
            order_id: self.order_id.to_string(),
            refund_id: self.refund_id.to_string(),
            units: self.units.shape(),
            created_at: self.created_at.to_string(),
        }
    }
    fn from_shape(shape: StoredRestock) -> Option<Self> {
        Some(Restock {
            command_id: CommandId::parse(&shape.command_id).ok()?,
            order_id: OrderId::parse(&shape.order_id).ok()?,
            refund_id: RefundId::parse(&shape.refund_id).ok()?,
            units: Vec::from_shape(shape.units)?,
            created_at: Timestamp::parse(&shape.created_at)?,
        })
    }
}

impl<T: StoredJson> StoredJson for Vec<T> {
    type Shape = Vec<T::Shape>;
    fn shape(&self) -> Self::Shape {
        self.iter().map(T::shape).collect()
    }
    fn from_shape(shape: Self::Shape) -> Option<Self> {
        shape.into_iter().map(T::from_shape).collect()
    }
}

impl StoredJson for Lines {
    type Shape = Vec<StoredLine>;
    fn shape(&self) -> Self::Shape {
        self.iter().map(Line::shape).collect()
    }
    fn from_shape(shape: Self::Shape) -> Option<Self> {
        Lines::try_from(Vec::<Line>::from_shape(shape)?).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Decodes `stored`, and encodes it back to the same text.
    fn round_trip<T: StoredJson>(stored: &str) -> T {
        let shape: T::Shape = serde_json::from_str(stored).expect("the stored shape");
        let value = T::from_shape(shape).expect("a valid value");
        let again = serde_json::to_string(&value.shape()).unwrap();
        assert_eq!(again, stored, "what is written is what was written before");
        value
    }

    #[test]
    fn stored_text_written_before_reads_and_writes_the_same() {
        let lines: Lines = round_trip(r#"[{"sku":"tea-1","quantity":2}]"#);
        assert_eq!(lines.iter().next().unwrap().sku.as_str(), "tea-1");
        let order_lines: Vec<OrderLine> =
            round_trip(r#"[{"sku":"tea-1","quantity":3,"refunded":1}]"#);
        assert_eq!(order_lines[0].left(), 2);
        let allocations: Vec<Allocation> =
            round_trip(r#"[{"sku":"tea-1","shard":4,"quantity":2}]"#);
        assert_eq!(allocations[0].take.shard, 4);
        let restock: Restock = round_trip(
            r#"{"command_id":"cmd_01J9Z3K8Q4W6N2V5T7R0XGHPBM","order_id":"ord_01J9Z3K8Q4W6N2V5T7R0XGHPBM","refund_id":"rfd_01J9Z3K8Q4W6N2V5T7R0XGHPBM","units":[{"sku":"tea-1","shard":0,"quantity":1}],"created_at":"2026-11-22T04:00:00.000Z"}"#,
        );
        assert_eq!(restock.units.len(), 1);
    }

    #[test]
    fn stored_text_that_makes_no_valid_value_is_refused() {
        let invalid = |stored: &str| {
            let shape: Vec<StoredLine> = serde_json::from_str(stored).unwrap();
            Lines::from_shape(shape).is_none()
        };
        assert!(invalid(r#"[{"sku":"two words","quantity":1}]"#));
        assert!(invalid(r#"[{"sku":"tea","quantity":0}]"#));
        assert!(invalid("[]"));
    }
}
