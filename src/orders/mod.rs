//! Orders: the domain model and its validation, the records written to Kafka, the intake
//! service, processing, the status view and the HTTP handlers.

pub mod api;
mod currency;
#[cfg(test)]
mod damage;
pub mod error;
pub mod events;
pub mod examples;
pub mod group;
pub mod idempotency;
pub mod intake;
pub mod live;
pub mod model;
pub mod processor;
pub mod projector;
pub mod socket;
mod state;
pub mod status;
pub mod store;
mod timestamp;
pub mod views;

pub use currency::Currency;
pub use error::OrderError;
pub use events::OrderEvent;
pub use intake::{Accepted, Intake};
pub use model::{Order, OrderLine, OrderRequest, OrderRules};
pub use state::{OrdersParts, OrdersState};
pub use status::{OrderSnapshot, OrderStatus};
pub use store::OrderStore;
