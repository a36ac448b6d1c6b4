//! orderflow: an event-driven order service on Apache Kafka.
//!
//! The major parts:
//! - [`config`]: layered settings (file, environment file, environment variables).
//! - [`kafka`]: the generic Kafka wrappers, [`kafka::BaseProducer`] and topic helpers.
//! - [`orders`]: the order domain, its HTTP API and the intake service.
//! - [`admin`]: the Kafka management API over [`kafka::admin::KafkaAdmin`], and the catalog;
//!   [`clusters`]: the registry of the clusters it manages.
//! - [`app`]: building every part from the settings, running, and graceful shutdown.
//! - [`http`]: the handlers' state, the router and its middleware (access control, limits),
//!   the listener, the problem+json error type, the OpenAPI document and the probes.
//! - [`metrics`], [`telemetry`]: what operators watch.

pub mod admin;
pub mod app;
pub mod backoff;
pub mod cli;
pub mod clusters;
pub mod config;
pub mod http;
pub mod kafka;
pub mod local_broker;
pub mod metrics;
pub mod orders;
pub mod shutdown;
pub mod telemetry;
pub mod trace;
