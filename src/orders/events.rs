//! What the service writes to the `orders` topic: one record per placed order and per
//! cancel request, keyed by order_id so that both land on the same partition in order.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::model::Order;

/// Version of the record layout, sent in the `schema-version` header.
pub const SCHEMA_VERSION: &str = "1";

/// A record on the `orders` topic: `{"type": "order_placed", "order": {…}}` or
/// `{"type": "cancel_requested", "order_id": …, "requested_at": …}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(
    tag = "type",
    rename_all = "snake_case",
    deny_unknown_fields,
    try_from = "EventRecord"
)]
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

/// Both record shapes as one flat struct, read in a single pass: serde reads an internally
/// tagged enum by buffering every field first, which measured about a tenth of the
/// processors' CPU.
#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
struct EventRecord {
    #[serde(rename = "type")]
    kind: EventKind,
    order: Option<Order>,
    order_id: Option<Uuid>,
    requested_at: Option<DateTime<Utc>>,
}

#[derive(Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
enum EventKind {
    OrderPlaced,
    CancelRequested,
}

impl TryFrom<EventRecord> for OrderEvent {
    type Error = &'static str;

    fn try_from(record: EventRecord) -> Result<Self, Self::Error> {
        match (
            record.kind,
            record.order,
            record.order_id,
            record.requested_at,
        ) {
            (EventKind::OrderPlaced, Some(order), None, None) => {
                Ok(OrderEvent::OrderPlaced { order })
            }
            (EventKind::OrderPlaced, ..) => Err("an order_placed record has one field: order"),
            (EventKind::CancelRequested, None, Some(order_id), Some(requested_at)) => {
                Ok(OrderEvent::CancelRequested {
                    order_id,
                    requested_at,
                })
            }
            (EventKind::CancelRequested, ..) => {
                Err("a cancel_requested record has two fields: order_id and requested_at")
            }
        }
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_placed_order_begins_with_its_tag() {
        // The status view skips records it already holds by this prefix (projector/apply.rs).
        let request: crate::orders::OrderRequest = serde_json::from_value(json!({
            "customer_id": "c", "currency": "EUR",
            "items": [{"product_id": "p", "quantity": 1, "unit_price": "1.00"}]
        }))
        .unwrap();
        let rules = crate::orders::OrderRules {
            max_items: 10,
            currencies: vec![],
        };
        let order = request.parse(&rules, Utc::now()).unwrap();
        let text = serde_json::to_string(&OrderEvent::OrderPlaced { order }).unwrap();
        assert!(text.starts_with(r#"{"type":"order_placed","#), "{text}");
    }

    #[test]
    fn both_shapes_read_back_and_mixed_shapes_are_refused() {
        let cancel = OrderEvent::CancelRequested {
            order_id: Uuid::new_v4(),
            requested_at: Utc::now(),
        };
        let text = serde_json::to_string(&cancel).unwrap();
        assert!(text.contains(r#""type":"cancel_requested""#), "{text}");
        assert_eq!(serde_json::from_str::<OrderEvent>(&text).unwrap(), cancel);
        for bad in [
            json!({"type": "cancel_requested", "order_id": Uuid::new_v4()}),
            json!({"type": "order_placed"}),
            json!({"type": "order_placed", "order_id": Uuid::new_v4(), "requested_at": Utc::now()}),
            json!({"type": "refund", "order_id": Uuid::new_v4()}),
            json!({"type": "cancel_requested", "order_id": Uuid::new_v4(), "requested_at": Utc::now(), "extra": 1}),
        ] {
            assert!(
                serde_json::from_value::<OrderEvent>(bad.clone()).is_err(),
                "{bad}"
            );
        }
    }
}
