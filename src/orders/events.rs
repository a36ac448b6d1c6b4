//! What the service writes to the `orders` topic: one record per placed order and per
//! cancel request, keyed by order_id so that both land on the same partition in order.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
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
        #[serde(serialize_with = "crate::orders::timestamp::serialize")]
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

/// An `order_placed` record exactly as [`OrderEvent`] accepts one, with the order's JSON left
/// as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PlacedRecord<'a> {
    #[serde(rename = "type")]
    kind: EventKind,
    #[serde(borrow)]
    order: &'a RawValue,
}

/// The order of an `order_placed` record and the order's JSON as the record holds it (for
/// the status view, which stores that JSON in the order's row instead of encoding the order
/// again). `None` for every other record, including those [`OrderEvent`] refuses: decode
/// those with serde.
pub fn placed_order(payload: &[u8]) -> Option<(Order, &RawValue)> {
    let json = placed_order_json(payload)?;
    let order = serde_json::from_str(json.get()).ok()?;
    Some((order, json))
}

/// The order's JSON of an `order_placed` record, as the record holds it, without decoding
/// the order (for a record already decoded as an [`OrderEvent`]).
pub fn placed_order_json(payload: &[u8]) -> Option<&RawValue> {
    let record: PlacedRecord<'_> = serde_json::from_slice(payload).ok()?;
    matches!(record.kind, EventKind::OrderPlaced).then_some(record.order)
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

    fn order() -> Order {
        let request: crate::orders::OrderRequest = serde_json::from_value(json!({
            "customer_id": "c", "currency": "EUR",
            "items": [{"product_id": "p", "quantity": 1, "unit_price": "1.00"}]
        }))
        .unwrap();
        let rules = crate::orders::OrderRules {
            max_items: 10,
            currencies: vec![],
        };
        request.parse(&rules, Utc::now()).unwrap()
    }

    #[test]
    fn a_placed_order_begins_with_its_tag() {
        // The status view skips records it already holds by this prefix (projector/apply.rs).
        let text = serde_json::to_string(&OrderEvent::OrderPlaced { order: order() }).unwrap();
        assert!(text.starts_with(r#"{"type":"order_placed","#), "{text}");
    }

    #[test]
    fn a_placed_order_is_read_with_its_json_as_written_and_nothing_else_is() {
        let order = order();
        let record = serde_json::to_vec(&OrderEvent::OrderPlaced {
            order: order.clone(),
        })
        .unwrap();
        let (read, json) = placed_order(&record).unwrap();
        assert_eq!(read, order);
        assert_eq!(json.get(), serde_json::to_string(&order).unwrap());
        let cancel = serde_json::to_vec(&OrderEvent::CancelRequested {
            order_id: order.order_id,
            requested_at: Utc::now(),
        })
        .unwrap();
        assert!(placed_order(&cancel).is_none());
        // What `OrderEvent` refuses is refused here too.
        for bad in [
            json!({"type": "order_placed", "order": order, "extra": 1}),
            json!({"type": "order_placed", "order": order, "order_id": order.order_id}),
            json!({"type": "order_placed", "order": {"order_id": order.order_id}}),
            json!({"type": "cancel_requested", "order": order}),
        ] {
            let bytes = serde_json::to_vec(&bad).unwrap();
            assert!(
                serde_json::from_slice::<OrderEvent>(&bytes).is_err(),
                "{bad}"
            );
            assert!(placed_order(&bytes).is_none(), "{bad}");
        }
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
