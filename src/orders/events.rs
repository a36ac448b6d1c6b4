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
    #[serde(
        default,
        deserialize_with = "crate::orders::timestamp::deserialize_option"
    )]
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
pub fn placed_order(payload: &[u8]) -> Option<(Order, OrderJson<'_>)> {
    if let Some(read) = placed_as_written(payload) {
        return Some(read);
    }
    let json = placed_order_json(payload)?.get();
    let order = serde_json::from_str(json).ok()?;
    Some((order, OrderJson(json)))
}

/// An order's JSON as an `order_placed` record holds it: one JSON value, which reads as an
/// [`Order`].
#[derive(Debug, Clone, Copy)]
pub struct OrderJson<'a>(&'a str);

impl<'a> OrderJson<'a> {
    /// The JSON text.
    pub fn get(self) -> &'a str {
        self.0
    }
}

/// How the service writes every `order_placed` record: the tag, then the order, nothing
/// else and no space (serde writes an internally tagged enum's tag first).
const PLACED_HEAD: &[u8] = br#"{"type":"order_placed","order":"#;

/// [`placed_order`] of a record laid out as the service writes one, in one pass over the
/// order: what lies between [`PLACED_HEAD`] and the closing brace is the order's JSON when
/// it decodes as an order with nothing after it. `None` otherwise, whether or not the
/// record is valid (the general reader then decides): a record this accepts is one
/// [`OrderEvent`] accepts, with the same order, and the JSON [`placed_order_json`] finds.
fn placed_as_written(payload: &[u8]) -> Option<(Order, OrderJson<'_>)> {
    let json = written_order_json(payload)?;
    // Fails on anything after the order's closing brace (a second field, say).
    let order = serde_json::from_str(json.0).ok()?;
    Some((order, json))
}

/// What lies between [`PLACED_HEAD`] and the closing brace of a record laid out as the
/// service writes one, without reading the order: the order's JSON of a record the service
/// has just written itself. A record from elsewhere is read with [`placed_order`].
pub fn written_order_json(payload: &[u8]) -> Option<OrderJson<'_>> {
    let json = payload.strip_prefix(PLACED_HEAD)?.strip_suffix(b"}")?;
    // The raw value as serde would find it: no space around it.
    if json.first() != Some(&b'{') || json.last() != Some(&b'}') {
        return None;
    }
    std::str::from_utf8(json).ok().map(OrderJson)
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
    use crate::orders::damage::Damage;
    use serde_json::json;

    /// What the general reader makes of a record: the order and its JSON.
    fn general(payload: &[u8]) -> Option<(Order, String)> {
        let json = placed_order_json(payload)?.get();
        let order: Order = serde_json::from_str(json).ok()?;
        Some((order, json.to_owned()))
    }

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
    fn the_order_of_a_record_just_written_is_found_as_written_in_either_form() {
        let order = order();
        let record = serde_json::to_vec(&OrderEvent::OrderPlaced {
            order: order.clone(),
        })
        .unwrap();
        let expected = serde_json::to_string(&order).unwrap();
        let framed = crate::kafka::wire::frame(7, &record);
        for payload in [&record, &framed] {
            let json = written_order_json(crate::kafka::wire::json_payload(payload));
            assert_eq!(json.map(OrderJson::get), Some(expected.as_str()));
        }
        let cancel = serde_json::to_vec(&OrderEvent::CancelRequested {
            order_id: order.order_id,
            requested_at: Utc::now(),
        })
        .unwrap();
        assert!(written_order_json(&cancel).is_none());
    }

    #[test]
    fn a_record_as_written_is_read_in_one_pass_as_the_general_reader_reads_it() {
        let order = order();
        let record = serde_json::to_string(&OrderEvent::OrderPlaced {
            order: order.clone(),
        })
        .unwrap();
        let order_json = serde_json::to_string(&order).unwrap();
        let read = |payload: &[u8]| placed_order(payload).map(|(o, j)| (o, j.get().to_owned()));
        // The service's own layout takes the one pass.
        assert!(placed_as_written(record.as_bytes()).is_some());
        assert_eq!(
            read(record.as_bytes()),
            Some((order.clone(), order_json.clone()))
        );
        let inner = order_json.trim_end_matches('}');
        for variant in [
            record.clone(),
            // Laid out otherwise: the general reader decides.
            record.replacen(r#""order":"#, r#""order": "#, 1),
            format!("{} }}", &record[..record.len() - 1]),
            format!(r#"{{"order":{order_json},"type":"order_placed"}}"#),
            // An order field this version does not know is kept in the JSON.
            format!(r#"{{"type":"order_placed","order":{inner},"later":[1,{{"a":"}}"}}]}}}}"#),
            // Refused by both.
            format!(r#"{{"type":"order_placed","order":{order_json},"extra":1}}"#),
            format!(r#"{{"type":"order_placed","order":{order_json}}}}}"#),
            format!(r#"{{"type":"order_placed","order":{order_json}"#),
            r#"{"type":"order_placed","order":null}"#.to_owned(),
            r#"{"type":"order_placed","order":{}}"#.to_owned(),
            format!(
                r#"{{"type":"order_placed","order":{{"order_id":"{}"}}}}"#,
                order.order_id
            ),
        ] {
            assert_eq!(
                read(variant.as_bytes()),
                general(variant.as_bytes()),
                "{variant}"
            );
        }
        assert!(
            read(format!(r#"{{"type":"order_placed","order":{inner},"later":1}}}}"#).as_bytes())
                .is_some()
        );
    }

    #[test]
    fn a_damaged_record_is_read_as_the_general_reader_reads_it() {
        // Single-byte changes, insertions and deletions all over a record as written: the
        // one-pass read must agree with the general one on each (a small xorshift keeps
        // the cases the same from run to run).
        let record = serde_json::to_vec(&OrderEvent::OrderPlaced { order: order() }).unwrap();
        let mut damage = Damage::new(0x9e37_79b9_7f4a_7c15, br#"{}[]":, 0123456789abcdefZTz.-"#);
        let mut accepted = 0;
        for _ in 0..20_000 {
            let mut damaged = record.clone();
            damage.apply(&mut damaged);
            let read = placed_order(&damaged).map(|(o, j)| (o, j.get().to_owned()));
            accepted += usize::from(read.is_some());
            assert_eq!(
                read,
                general(&damaged),
                "{}",
                String::from_utf8_lossy(&damaged)
            );
        }
        // Some changes leave a valid record (a digit of an id, a space), most do not.
        assert!(accepted > 0 && accepted < 20_000, "{accepted}");
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
