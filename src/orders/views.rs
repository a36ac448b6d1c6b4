//! What the orders' routes read from a query and answer with.

use serde::{Deserialize, Serialize};

use uuid::Uuid;

use super::Order;
use super::status::{OrderSnapshot, OrderStatus, StatusChange};

/// An order as the API shows it: the order, its status and its history.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct OrderView {
    /// The order as accepted.
    #[serde(flatten)]
    pub order: Order,
    /// Current status.
    pub status: OrderStatus,
    /// Why it failed or was cancelled.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Whether a cancel is waiting to be acted on.
    pub cancel_requested: bool,
    /// Every status entered, oldest first.
    pub history: Vec<StatusChange>,
}

impl From<OrderSnapshot> for OrderView {
    fn from(s: OrderSnapshot) -> Self {
        OrderView {
            order: s.order,
            status: s.status,
            reason: s.reason,
            cancel_requested: s.cancel_requested,
            history: s.history,
        }
    }
}

/// Query of `GET /api/orders/{id}`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct GetQuery {
    /// Long-poll: answer as soon as the order has this status (or any final one).
    #[param(value_type = Option<crate::orders::OrderStatus>)]
    pub wait_for: Option<String>,
    /// Longest wait, e.g. `5s` or `500ms` (capped by `status_view.max_wait_ms`).
    #[param(pattern = r"^[0-9]{1,9}(ms|s)?$")]
    pub timeout: Option<String>,
}

/// Query of `GET /api/orders`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ListParams {
    /// Only orders in this status.
    #[param(value_type = Option<crate::orders::OrderStatus>)]
    pub status: Option<String>,
    /// Only this customer's orders.
    #[param(min_length = 1, max_length = 64)]
    pub customer_id: Option<String>,
    /// Only orders accepted at or after this time (RFC 3339, e.g. `2026-11-29T10:00:00Z`).
    #[param(value_type = Option<String>, format = DateTime)]
    pub from: Option<String>,
    /// Only orders accepted before this time (RFC 3339).
    #[param(value_type = Option<String>, format = DateTime)]
    pub to: Option<String>,
    /// Page size, 1 to 100 (default 20).
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<usize>,
    /// `next_cursor` of the previous page (`<nanoseconds>_<order id>`).
    #[param(
        pattern = r"^-?[0-9]{1,19}_[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
    )]
    pub cursor: Option<String>,
}

/// A page of orders, newest first.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct OrderPage {
    /// The orders.
    pub orders: Vec<OrderView>,
    /// Pass as `cursor` for the next page; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

/// The answer to a cancel request.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CancelAccepted {
    /// The order.
    pub order_id: Uuid,
    /// Its status when the cancel was accepted.
    pub status: OrderStatus,
    /// Always true: the cancel is on its way to the processor.
    pub cancel_requested: bool,
}
