//! The checks of values that parse but cannot work: each names the option and why.

use std::time::Duration;

use super::{ConfigError, Settings};

impl Settings {
    /// Checks the values that parse but cannot work.
    pub fn validate(&self) -> Result<(), ConfigError> {
        fn invalid(option: &'static str, reason: impl Into<String>) -> ConfigError {
            ConfigError::Invalid {
                option,
                reason: reason.into(),
            }
        }
        if self.kafka.bootstrap_servers.trim().is_empty() {
            return Err(invalid(
                "kafka.bootstrap_servers",
                "must name at least one broker",
            ));
        }
        if self.http.request_timeout.is_zero() {
            return Err(invalid("http.request_timeout_ms", "must be greater than 0"));
        }
        if self.producer.delivery_timeout.is_zero()
            || self.producer.delivery_timeout + Duration::from_millis(500)
                > self.http.request_timeout
        {
            return Err(invalid(
                "producer.delivery_timeout_ms",
                format!(
                    "must be greater than 0 and at least 500 less than http.request_timeout_ms ({})",
                    self.http.request_timeout.as_millis()
                ),
            ));
        }
        if self.http.max_connections == 0 {
            return Err(invalid("http.max_connections", "must be greater than 0"));
        }
        if self.http.header_read_timeout.is_zero() {
            return Err(invalid(
                "http.header_read_timeout_ms",
                "must be greater than 0",
            ));
        }
        if self.http.body_read_timeout.is_zero()
            || self.http.body_read_timeout >= self.http.request_timeout
        {
            return Err(invalid(
                "http.body_read_timeout_ms",
                format!(
                    "must be greater than 0 and less than http.request_timeout_ms ({})",
                    self.http.request_timeout.as_millis()
                ),
            ));
        }
        if let Err(reason) = self.http.cors.layer() {
            return Err(invalid("http.cors", reason));
        }
        if self.http.max_concurrent_requests == 0 {
            return Err(invalid(
                "http.max_concurrent_requests",
                "must be greater than 0",
            ));
        }
        if self.orders.max_bulk == 0 {
            return Err(invalid("orders.max_bulk", "must be greater than 0"));
        }
        if self.orders.max_items == 0 {
            return Err(invalid("orders.max_items", "must be greater than 0"));
        }
        if !["none", "gzip", "snappy", "lz4", "zstd"].contains(&self.producer.compression.as_str())
        {
            return Err(invalid(
                "producer.compression",
                "must be one of none, gzip, snappy, lz4, zstd",
            ));
        }
        if !["earliest", "latest", "error"].contains(&self.processing.offset_reset.as_str()) {
            return Err(invalid(
                "processing.offset_reset",
                "must be \"earliest\", \"latest\" or \"error\"",
            ));
        }
        if self.processing.max_in_flight == 0 {
            return Err(invalid(
                "processing.max_in_flight",
                "must be greater than 0",
            ));
        }
        if self.processing.max_attempts == 0 {
            return Err(invalid("processing.max_attempts", "must be at least 1"));
        }
        if self.processing.group_id.trim().is_empty() {
            return Err(invalid("processing.group_id", "must not be empty"));
        }
        if self.max_order_total().is_none() {
            return Err(invalid(
                "processing.rules.max_order_total",
                "must be a positive decimal string",
            ));
        }
        if self.status_view.path.trim().is_empty()
            || self.status_view.cache_orders == 0
            || self.status_view.flush_interval.is_zero()
        {
            return Err(invalid(
                "status_view.path, status_view.cache_orders, status_view.flush_interval_ms",
                "need a path, a cache of at least one order and an interval above zero",
            ));
        }
        if self.status_view.max_live_streams == 0 || self.status_view.live_keep_alive.is_zero() {
            return Err(invalid(
                "status_view.max_live_streams, status_view.live_keep_alive_secs",
                "must be at least 1",
            ));
        }
        if self.status_view.max_wait >= self.http.request_timeout {
            return Err(invalid(
                "status_view.max_wait_ms",
                "must be less than http.request_timeout_ms",
            ));
        }
        if self.admin.max_partitions_per_topic < 1 || self.admin.max_partitions_per_request < 1 {
            return Err(invalid(
                "admin.max_partitions_per_topic, admin.max_partitions_per_request",
                "must be at least 1",
            ));
        }
        if self.topics.replication_factor < 1 {
            return Err(invalid("topics.replication_factor", "must be at least 1"));
        }
        let topics = [
            ("topics.orders", &self.topics.orders),
            ("topics.status", &self.topics.status),
            ("topics.dlq", &self.topics.dlq),
        ];
        for (option, topic) in topics {
            if let Err(reason) = crate::kafka::validate_topic_name(&topic.name) {
                return Err(invalid(option, reason));
            }
            if topic.partitions < 1 {
                return Err(invalid(option, "partitions must be at least 1"));
            }
        }
        Ok(())
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
