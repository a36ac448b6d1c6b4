//! Order status and the snapshot records on the compacted `orders.status` topic. Each status
//! change is one record keyed by order_id carrying the whole order and its history, so the
//! newest record of a key is enough to answer for that order after compaction.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use super::events::OrderJson;
use super::model::Order;
use super::timestamp;

/// Where an order is in its life.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
    schemars::JsonSchema,
)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum OrderStatus {
    /// Accepted and durable in Kafka; not processed yet.
    Pending,
    /// Being processed.
    Processing,
    /// Processed successfully. Final.
    Completed,
    /// Refused by a business rule; the reason says which. Final.
    Failed,
    /// Cancelled before it was completed. Final.
    Cancelled,
}

impl OrderStatus {
    /// Whether no further change can happen.
    pub fn is_final(self) -> bool {
        matches!(
            self,
            OrderStatus::Completed | OrderStatus::Failed | OrderStatus::Cancelled
        )
    }

    /// Parses the upper-case name used in JSON and query strings.
    pub fn parse(text: &str) -> Option<Self> {
        serde_json::from_value(serde_json::Value::String(text.to_string())).ok()
    }

    /// The `event-type` header of a status record entering this status.
    pub fn event_type(self) -> &'static str {
        match self {
            OrderStatus::Pending => "status_pending",
            OrderStatus::Processing => "status_processing",
            OrderStatus::Completed => "status_completed",
            OrderStatus::Failed => "status_failed",
            OrderStatus::Cancelled => "status_cancelled",
        }
    }

    /// The upper-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            OrderStatus::Pending => "PENDING",
            OrderStatus::Processing => "PROCESSING",
            OrderStatus::Completed => "COMPLETED",
            OrderStatus::Failed => "FAILED",
            OrderStatus::Cancelled => "CANCELLED",
        }
    }
}

/// One entry of an order's history.
#[derive(
    Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema, schemars::JsonSchema,
)]
pub struct StatusChange {
    /// The status entered.
    pub status: OrderStatus,
    /// When it was entered.
    #[serde(
        serialize_with = "crate::orders::timestamp::serialize",
        deserialize_with = "crate::orders::timestamp::deserialize"
    )]
    pub at: DateTime<Utc>,
    /// Why, for `FAILED` and `CANCELLED`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// The value of an `orders.status` record, and the view the API answers with.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct OrderSnapshot {
    /// The order as accepted.
    pub order: Order,
    /// The current status (the last history entry).
    pub status: OrderStatus,
    /// Why the order failed or was cancelled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Every status entered, oldest first, starting with `PENDING` at acceptance.
    pub history: Vec<StatusChange>,
    /// Whether a cancel was requested and not yet acted on.
    #[serde(default)]
    pub cancel_requested: bool,
}

/// An [`OrderSnapshot`] with its order as JSON: written field for field as the snapshot is.
#[derive(Serialize)]
struct Around<'a> {
    order: &'a RawValue,
    status: OrderStatus,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<&'a String>,
    history: &'a [StatusChange],
    cancel_requested: bool,
}

impl OrderSnapshot {
    /// A just-accepted order.
    pub fn pending(order: Order) -> Self {
        let at = order.accepted_at;
        OrderSnapshot {
            order,
            status: OrderStatus::Pending,
            reason: None,
            history: vec![StatusChange {
                status: OrderStatus::Pending,
                at,
                reason: None,
            }],
            cancel_requested: false,
        }
    }

    /// The JSON of [`OrderSnapshot::pending`] from the order's own JSON (as an `order_placed`
    /// record holds it): the order is neither encoded nor read again, and the few fields
    /// after it are written as serde writes them (a unit test holds the two equal). `None`
    /// for a time serde writes with a sign (a year outside 0 to 9999).
    pub fn pending_json(order: OrderJson<'_>, accepted_at: DateTime<Utc>) -> Option<Vec<u8>> {
        let mut at = [0; timestamp::LONGEST];
        let at = timestamp::format(&accepted_at, &mut at)?;
        let mut json = Vec::with_capacity(order.get().len() + 96);
        json.extend_from_slice(br#"{"order":"#);
        json.extend_from_slice(order.get().as_bytes());
        json.extend_from_slice(br#","status":"PENDING","history":[{"status":"PENDING","at":""#);
        json.extend_from_slice(at.as_bytes());
        json.extend_from_slice(br#""}],"cancel_requested":false}"#);
        Some(json)
    }

    /// This snapshot's JSON with `order`, the JSON its order was read from, written as it is
    /// (the order is not encoded again).
    pub fn to_json_around(&self, order: &RawValue) -> serde_json::Result<Box<RawValue>> {
        serde_json::value::to_raw_value(&Around {
            order,
            status: self.status,
            reason: self.reason.as_ref(),
            history: &self.history,
            cancel_requested: self.cancel_requested,
        })
    }

    /// This snapshot moved on to `status`.
    pub fn advance(
        mut self,
        status: OrderStatus,
        reason: Option<String>,
        at: DateTime<Utc>,
    ) -> Self {
        self.status = status;
        self.reason = reason.clone();
        self.history.push(StatusChange { status, at, reason });
        if status.is_final() {
            self.cancel_requested = false;
        }
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_snapshot_made_around_its_orders_json_is_the_snapshot_encoded() {
        let request: crate::orders::OrderRequest = serde_json::from_value(serde_json::json!({
            "customer_id": "c", "currency": "EUR", "metadata": {"k": "v \" quoted"},
            "items": [{"product_id": "p", "quantity": 3, "unit_price": "1.25"}]
        }))
        .unwrap();
        let rules = crate::orders::OrderRules {
            max_items: 10,
            currencies: vec![],
        };
        let order = request.parse(&rules, Utc::now()).unwrap();
        let raw = serde_json::value::to_raw_value(&order).unwrap();
        let record = serde_json::to_vec(&crate::orders::events::OrderEvent::OrderPlaced {
            order: order.clone(),
        })
        .unwrap();
        let (_, json) = crate::orders::events::placed_order(&record).unwrap();
        // Accepted now, on a whole second, on a millisecond; in years 0 and 9999 (beyond,
        // serde writes a sign, and the row is encoded whole instead).
        let second = chrono::TimeZone::with_ymd_and_hms(&Utc, 2026, 12, 1, 9, 5, 7).unwrap();
        for at in [
            order.accepted_at,
            second,
            second + chrono::Duration::milliseconds(120),
            chrono::TimeZone::with_ymd_and_hms(&Utc, 0, 1, 1, 0, 0, 0).unwrap(),
            chrono::TimeZone::with_ymd_and_hms(&Utc, 9999, 12, 31, 23, 59, 59).unwrap(),
        ] {
            let spliced = OrderSnapshot::pending_json(json, at).unwrap();
            let mut pending = OrderSnapshot::pending(order.clone());
            pending.history[0].at = at;
            assert_eq!(
                String::from_utf8(spliced).unwrap(),
                serde_json::to_string(&pending).unwrap()
            );
        }
        let year = chrono::TimeZone::with_ymd_and_hms(&Utc, 10000, 1, 1, 0, 0, 0).unwrap();
        assert!(OrderSnapshot::pending_json(json, year).is_none());
        let pending = OrderSnapshot::pending(order);
        // Moved on, with and without a reason, and with a cancel asked.
        let mut asked = pending.clone();
        asked.cancel_requested = true;
        for snapshot in [
            pending.clone(),
            asked,
            pending
                .clone()
                .advance(OrderStatus::Processing, None, Utc::now())
                .advance(OrderStatus::Completed, None, Utc::now()),
            pending.advance(
                OrderStatus::Failed,
                Some("quantity \"x\"".into()),
                Utc::now(),
            ),
        ] {
            assert_eq!(
                snapshot.to_json_around(&raw).unwrap().get(),
                serde_json::to_string(&snapshot).unwrap()
            );
        }
    }
}
