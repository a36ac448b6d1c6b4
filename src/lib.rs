//! orderflow: an event-driven order service on Apache Kafka.
//!
//! The major parts:
//! - [`config`]: layered settings (file, environment file, environment variables).
//! - [`kafka`]: the generic Kafka wrappers, [`kafka::BaseProducer`] and topic helpers.
//! - [`orders`]: the order domain, its HTTP API and the intake service.
//! - [`admin`]: the Kafka management API over [`kafka::admin::KafkaAdmin`], and the catalog.
//! - [`app`]: wiring, the router, start-up and graceful shutdown; [`serve`]: the listener
//!   with its connection cap and timeouts.
//! - [`error`]: the HTTP error type, sent as RFC 9457 problem+json.
//! - [`metrics`], [`telemetry`], [`health`]: what operators watch.

pub mod admin;
pub mod app;
pub mod config;
pub mod error;
pub mod extract;
pub mod health;
pub mod kafka;
pub mod local_broker;
pub mod metrics;
pub mod middleware;
pub mod openapi;
pub mod orders;
pub mod serve;
pub mod shutdown;
pub mod telemetry;
pub mod trace;
