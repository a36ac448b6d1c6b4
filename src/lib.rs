//! orderflow: an event-driven order service on Apache Kafka.
//!
//! The major parts:
//! - [`config`]: layered settings (file, environment file, environment variables).
//! - [`kafka`]: the generic Kafka wrappers, [`kafka::BaseProducer`] and topic helpers.
//! - [`orders`]: the order domain, its HTTP API and the intake service.
//! - [`clusters`]: Kafka management of the home cluster and of the clusters registered beside
//!   it (registry, topics, groups, messages, operations, templates, local brokers).
//! - [`app`]: the composition root: state, routes, middleware stack, probes, catalog;
//!   building every part from the settings, running, and graceful shutdown.
//! - [`http`]: the toolkit below the features: access control, audit, the problem+json
//!   error type, extractors, the listener, OpenAPI helpers.
//! - [`metrics`], [`telemetry`]: what operators watch.

pub mod app;
pub mod backoff;
pub mod cli;
pub mod clusters;
pub mod config;
pub mod http;
pub mod input;
pub mod kafka;
pub mod memory;
pub mod metrics;
pub mod orders;
pub mod schemas;
pub mod shutdown;
pub mod telemetry;
pub mod trace;
