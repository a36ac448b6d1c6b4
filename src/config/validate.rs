//! The checks of values that parse but cannot work, one function per section: each names
//! the option and why.

use std::time::Duration;

use super::{ConfigError, Settings};

impl Settings {
    /// Checks the values that parse but cannot work.
    pub fn validate(&self) -> Result<(), ConfigError> {
        kafka(self)?;
        http(self)?;
        producer(self)?;
        orders(self)?;
        processing(self)?;
        status_view(self)?;
        admin(self)?;
        schema_registry(self)?;
        topics(self)
    }

    /// `processing.rules.max_order_total` parsed, if it is a positive decimal.
    pub fn max_order_total(&self) -> Option<rust_decimal::Decimal> {
        self.processing
            .rules
            .max_order_total
            .parse()
            .ok()
            .filter(|d: &rust_decimal::Decimal| d.is_sign_positive() && !d.is_zero())
    }
}

/// `Ok` when `holds`, otherwise the option and why.
fn ensure(holds: bool, option: &'static str, reason: impl Into<String>) -> Result<(), ConfigError> {
    if holds {
        Ok(())
    } else {
        Err(ConfigError::Invalid {
            option,
            reason: reason.into(),
        })
    }
}

const ABOVE_ZERO: &str = "must be greater than 0";

fn kafka(s: &Settings) -> Result<(), ConfigError> {
    ensure(
        !s.kafka.bootstrap_servers.trim().is_empty(),
        "kafka.bootstrap_servers",
        "must name at least one broker",
    )
}

fn http(s: &Settings) -> Result<(), ConfigError> {
    let h = &s.http;
    ensure(
        !h.request_timeout.is_zero(),
        "http.request_timeout_ms",
        ABOVE_ZERO,
    )?;
    ensure(h.max_connections > 0, "http.max_connections", ABOVE_ZERO)?;
    ensure(
        !h.header_read_timeout.is_zero(),
        "http.header_read_timeout_ms",
        ABOVE_ZERO,
    )?;
    ensure(
        !h.body_read_timeout.is_zero() && h.body_read_timeout < h.request_timeout,
        "http.body_read_timeout_ms",
        format!(
            "must be greater than 0 and less than http.request_timeout_ms ({})",
            h.request_timeout.as_millis()
        ),
    )?;
    if let Err(reason) = h.cors.layer() {
        return ensure(false, "http.cors", reason);
    }
    ensure(
        h.max_concurrent_requests > 0,
        "http.max_concurrent_requests",
        ABOVE_ZERO,
    )
}

fn producer(s: &Settings) -> Result<(), ConfigError> {
    let p = &s.producer;
    ensure(
        !p.delivery_timeout.is_zero()
            && p.delivery_timeout + Duration::from_millis(500) <= s.http.request_timeout,
        "producer.delivery_timeout_ms",
        format!(
            "must be greater than 0 and at least 500 less than http.request_timeout_ms ({})",
            s.http.request_timeout.as_millis()
        ),
    )?;
    ensure(
        ["none", "gzip", "snappy", "lz4", "zstd"].contains(&p.compression.as_str()),
        "producer.compression",
        "must be one of none, gzip, snappy, lz4, zstd",
    )
}

fn orders(s: &Settings) -> Result<(), ConfigError> {
    ensure(s.orders.max_bulk > 0, "orders.max_bulk", ABOVE_ZERO)?;
    ensure(s.orders.max_items > 0, "orders.max_items", ABOVE_ZERO)
}

fn processing(s: &Settings) -> Result<(), ConfigError> {
    let p = &s.processing;
    ensure(
        ["earliest", "latest", "error"].contains(&p.offset_reset.as_str()),
        "processing.offset_reset",
        "must be \"earliest\", \"latest\" or \"error\"",
    )?;
    ensure(p.max_in_flight > 0, "processing.max_in_flight", ABOVE_ZERO)?;
    ensure(
        p.max_attempts > 0,
        "processing.max_attempts",
        "must be at least 1",
    )?;
    ensure(
        !p.group_id.trim().is_empty(),
        "processing.group_id",
        "must not be empty",
    )?;
    ensure(
        s.max_order_total().is_some(),
        "processing.rules.max_order_total",
        "must be a positive decimal string",
    )
}

fn status_view(s: &Settings) -> Result<(), ConfigError> {
    let v = &s.status_view;
    ensure(
        !v.path.trim().is_empty() && v.cache_orders > 0 && !v.flush_interval.is_zero(),
        "status_view.path, status_view.cache_orders, status_view.flush_interval_ms",
        "need a path, a cache of at least one order and an interval above zero",
    )?;
    ensure(
        v.max_live_streams > 0 && !v.live_keep_alive.is_zero(),
        "status_view.max_live_streams, status_view.live_keep_alive_secs",
        "must be at least 1",
    )?;
    ensure(
        v.max_wait < s.http.request_timeout,
        "status_view.max_wait_ms",
        "must be less than http.request_timeout_ms",
    )
}

fn admin(s: &Settings) -> Result<(), ConfigError> {
    ensure(s.admin.max_scan > 0, "admin.max_scan", ABOVE_ZERO)?;
    ensure(
        !s.admin.scan_budget.is_zero() && s.admin.scan_budget < s.http.request_timeout,
        "admin.scan_budget_ms",
        format!(
            "must be greater than 0 and less than http.request_timeout_ms ({})",
            s.http.request_timeout.as_millis()
        ),
    )?;
    ensure(
        !s.admin.stream_budget.is_zero(),
        "admin.stream_budget_ms",
        ABOVE_ZERO,
    )?;
    ensure(
        s.admin.max_message_streams > 0,
        "admin.max_message_streams",
        ABOVE_ZERO,
    )?;
    for rule in &s.admin.masking {
        ensure(
            !rule.topics.is_empty()
                && !rule.fields.is_empty()
                && rule
                    .fields
                    .iter()
                    .all(|f| !f.is_empty() && f.split('.').all(|p| !p.is_empty())),
            "admin.masking",
            "each rule needs topics and fields, each a dot-separated path without empty parts",
        )?;
    }
    ensure(
        s.admin.max_partitions_per_topic >= 1 && s.admin.max_partitions_per_request >= 1,
        "admin.max_partitions_per_topic, admin.max_partitions_per_request",
        "must be at least 1",
    )
}

fn schema_registry(s: &Settings) -> Result<(), ConfigError> {
    let r = &s.schema_registry;
    ensure(
        r.url.is_empty() || r.url.starts_with("http://") || r.url.starts_with("https://"),
        "schema_registry.url",
        "an http:// or https:// URL, or empty for the built-in registry",
    )?;
    ensure(
        r.request_timeout >= std::time::Duration::from_millis(100),
        "schema_registry.request_timeout_ms",
        "at least 100",
    )?;
    ensure(
        s.topics.schemas.partitions == 1,
        "topics.schemas.partitions",
        "must be 1: the registry's ids follow the order of one partition",
    )
}

fn topics(s: &Settings) -> Result<(), ConfigError> {
    let t = &s.topics;
    ensure(
        t.replication_factor >= 1,
        "topics.replication_factor",
        "must be at least 1",
    )?;
    for (option, topic) in [
        ("topics.orders", &t.orders),
        ("topics.status", &t.status),
        ("topics.dlq", &t.dlq),
        ("topics.schemas", &t.schemas),
    ] {
        if let Err(reason) = crate::kafka::validate_topic_name(&topic.name) {
            return ensure(false, option, reason);
        }
        ensure(
            topic.partitions >= 1,
            option,
            "partitions must be at least 1",
        )?;
    }
    Ok(())
}
