//! Orders: the domain model and its validation, the records written to Kafka, the intake
//! service and the HTTP handlers.

pub mod api;
mod currency;
pub mod events;
pub mod idempotency;
pub mod model;
pub mod service;

pub use currency::Currency;
pub use events::OrderEvent;
pub use model::{Order, OrderLine, OrderRequest, OrderRules};
pub use service::{Accepted, OrderService};
