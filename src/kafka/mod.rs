//! Generic Kafka building blocks over rdkafka: [`BaseProducer`] (typed, acknowledged sends),
//! [`BaseConsumer`] (typed, at-least-once group consumption with dead letters), and the client configuration and topic helpers shared by everything that talks to Kafka.
//! Nothing here knows about orders. rdkafka has types with the same names; they are always
//! referred to qualified (`rdkafka::producer::…`) so the two never mix.

pub mod admin;
pub mod consumer;
mod context;
pub mod producer;
pub mod topics;

use std::collections::BTreeMap;

pub use consumer::{
    BaseConsumer, ConsumerMetrics, ConsumerOptions, Handler, HandlerError, Received,
};
pub use context::ClientContext;
pub use producer::{BaseProducer, Delivery, OutgoingRecord, ProduceError, RawRecord};

/// Where a client connects and the raw options layered on top of the service's own.
#[derive(Debug, Clone)]
pub struct ClientSettings {
    /// `bootstrap.servers`.
    pub bootstrap_servers: String,
    /// `client.id`.
    pub client_id: String,
    /// Raw librdkafka options, applied last so operators can override anything.
    pub librdkafka: BTreeMap<String, String>,
}

impl ClientSettings {
    /// A librdkafka configuration with the service's `overrides` for this kind of client,
    /// then the operator's raw options on top.
    pub fn client_config(&self, overrides: &[(&str, String)]) -> rdkafka::ClientConfig {
        let mut config = rdkafka::ClientConfig::new();
        config
            .set("bootstrap.servers", &self.bootstrap_servers)
            .set("client.id", &self.client_id);
        for (key, value) in overrides {
            config.set(*key, value);
        }
        for (key, value) in &self.librdkafka {
            config.set(key, value);
        }
        config
    }
}

/// A record's headers with values as (lossy) UTF-8, in order.
pub fn utf8_headers(message: &impl rdkafka::message::Message) -> Vec<(String, String)> {
    use rdkafka::message::Headers;
    message
        .headers()
        .map(|h| {
            h.iter()
                .map(|h| {
                    (
                        h.key.to_string(),
                        String::from_utf8_lossy(h.value.unwrap_or_default()).into_owned(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Checks a topic name by Kafka's rules: 1 to 249 characters of `[a-zA-Z0-9._-]`, and not
/// `.` or `..`.
pub fn validate_topic_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > 249 {
        return Err("topic names are 1 to 249 characters".into());
    }
    if name == "." || name == ".." {
        return Err("a topic cannot be named \".\" or \"..\"".into());
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
    {
        return Err("topic names may only contain a-z, A-Z, 0-9, '.', '_' and '-'".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topic_names_follow_kafka_rules() {
        assert!(validate_topic_name("orders.status").is_ok());
        assert!(validate_topic_name(&"a".repeat(249)).is_ok());
        for bad in ["", ".", "..", "has space", "slash/", &"a".repeat(250)] {
            assert!(validate_topic_name(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn raw_options_override_the_service_choices() {
        let settings = ClientSettings {
            bootstrap_servers: "b:9092".into(),
            client_id: "c".into(),
            librdkafka: [("linger.ms".to_string(), "50".to_string())].into(),
        };
        let config = settings.client_config(&[("linger.ms", "5".into())]);
        assert_eq!(config.get("linger.ms"), Some("50"));
        assert_eq!(config.get("bootstrap.servers"), Some("b:9092"));
    }
}
