//! What the service writes to the `orders` topic: one record per placed order and per
//! cancel request, keyed by order_id so that both land on the same partition in order.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::model::Order;

/// Version of the record layout, sent in the `schema-version` header.
pub const SCHEMA_VERSION: &str = "1";

/// A record on the `orders` topic.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum OrderEvent {
    /// A validated order, accepted from a client.
    OrderPlaced {
        /// The order.
        order: Order,
    },
    /// A client asked to cancel the order before it reaches a final status.
    CancelRequested {
        /// The order to cancel.
        order_id: Uuid,
        /// When the cancel was accepted.
        requested_at: DateTime<Utc>,
    },
}

impl OrderEvent {
    /// The order this event is about; also the record key.
    pub fn order_id(&self) -> Uuid {
        match self {
            OrderEvent::OrderPlaced { order } => order.order_id,
            OrderEvent::CancelRequested { order_id, .. } => *order_id,
        }
    }

    /// The `event-type` header value.
    pub fn kind(&self) -> &'static str {
        match self {
            OrderEvent::OrderPlaced { .. } => "order_placed",
            OrderEvent::CancelRequested { .. } => "cancel_requested",
        }
    }
}
