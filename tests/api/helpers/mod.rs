//! Test harness: a real Tansu broker per test (own port, own storage), the service started
//! on port 0 against it with its own topics, and a plain rdkafka reader to see what landed.
//! Split by concern: the broker, the app, Kafka clients, metrics, access, polling.

mod access;
mod app;
pub mod broker;
mod clients;
mod clusters;
mod kafka;
mod messages;
mod metrics;
mod polling;

pub use access::*;
pub use app::*;
pub use broker::*;
pub use clients::*;
pub use clusters::*;
pub use kafka::*;
pub use messages::*;
pub use metrics::*;
pub use polling::*;
