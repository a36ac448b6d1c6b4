//! Why intake or a cancel refused, in the orders' own words. The HTTP surface (`api.rs`)
//! turns each into its problem answer; nothing here knows about HTTP.

use std::time::Duration;

use crate::input::FieldError;

/// Which field of a submit made it a repeat of an earlier one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reused {
    /// The `Idempotency-Key` header.
    IdempotencyKey,
    /// The body's `order_id`.
    OrderId,
}

/// An order refused, or a cancel refused.
#[derive(Debug, thiserror::Error)]
pub enum OrderError {
    /// Fields of the order failed validation.
    #[error("validation failed")]
    Invalid(Vec<FieldError>),
    /// One order of a bulk request is not an order object.
    #[error("invalid body: {0}")]
    NotAnOrder(String),
    /// The key or order id was used before for a different order.
    #[error("reused with a different request: {0:?}")]
    Reused(Reused),
    /// A bulk request carries more orders than `orders.max_bulk`.
    #[error("bulk request of {count} orders is over the limit of {max}")]
    BulkTooLarge {
        /// Orders in the request.
        count: usize,
        /// `orders.max_bulk`.
        max: usize,
    },
    /// No such order.
    #[error("order not found")]
    NotFound,
    /// A cancel of an order that is already final; names its status.
    #[error("the order is already {0}")]
    Final(&'static str),
    /// Kafka did not take the record now.
    #[error("kafka did not acknowledge the record")]
    KafkaUnavailable {
        /// `orders.retry_after`: when a retry may succeed.
        retry_after: Duration,
        /// Whether the record may have been stored anyway.
        outcome_unknown: bool,
    },
    /// The record is larger than Kafka accepts.
    #[error("record too large for Kafka")]
    TooLarge,
    /// Anything else; the cause is logged, never shown.
    #[error(transparent)]
    Internal(anyhow::Error),
}
