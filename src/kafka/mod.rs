//! Generic Kafka building blocks over rdkafka: [`BaseProducer`] (typed, acknowledged sends),
//! [`BaseConsumer`] (typed, at-least-once group consumption with dead letters), and the client configuration and topic helpers shared by everything that talks to Kafka.
//! Nothing here knows about orders. rdkafka has types with the same names; they are always
//! referred to qualified (`rdkafka::producer::…`) so the two never mix.

pub mod admin;
pub mod consumer;
mod context;
pub mod producer;
pub mod reader;
pub mod table;
pub mod topics;
pub mod wire;

use std::collections::BTreeMap;

pub use consumer::{
    BaseConsumer, ConsumerMetrics, ConsumerOptions, Handler, HandlerError, Received,
};
pub use context::ClientContext;
pub use producer::{BaseProducer, Delivery, OutgoingRecord, ProduceError, Queued, RawRecord};

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

    /// Checks the options the way librdkafka will when a client is created, so a bad option
    /// fails at start-up with a message naming it. The message never holds a secret value.
    pub fn check(&self) -> Result<(), String> {
        self.client_config(&[])
            .create_native_config()
            .map(drop)
            .map_err(|error| self.redact(&error.to_string()))
    }

    /// `text` with the value of every secret option (see [`is_secret_option`]) replaced by
    /// `[redacted]`: for error messages that librdkafka or rdkafka build from option values.
    pub fn redact(&self, text: &str) -> String {
        self.librdkafka
            .iter()
            .filter(|(key, value)| is_secret_option(key) && !value.is_empty())
            .fold(text.to_string(), |text, (_, value)| {
                text.replace(value.as_str(), "[redacted]")
            })
    }
}

/// Whether a librdkafka option holds a secret whose value is never logged or returned:
/// passwords, secrets, tokens, private keys and OAuth configuration.
pub fn is_secret_option(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    ["password", "secret", "token", "credential"]
        .iter()
        .any(|word| name.contains(word))
        || name == "ssl.key.pem"
        || name == "sasl.oauthbearer.config"
}

/// The first header `name` of a record, when its value is UTF-8 (no copy).
pub fn header<'a>(message: &'a impl rdkafka::message::Message, name: &str) -> Option<&'a str> {
    use rdkafka::message::Headers;
    message
        .headers()?
        .iter()
        .find(|h| h.key == name)
        .and_then(|h| h.value)
        .and_then(|v| std::str::from_utf8(v).ok())
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

/// Longest config name or consumer group id accepted.
const MAX_NAME: usize = 255;
/// Longest topic config value accepted, in bytes.
const MAX_CONFIG_VALUE: usize = 8192;

/// Checks a topic config name: 1 to 255 characters of `[a-zA-Z0-9._-]`, as every Kafka config
/// name is.
pub fn validate_config_name(name: &str) -> Result<(), String> {
    let shaped = !name.is_empty()
        && name.len() <= MAX_NAME
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if shaped {
        Ok(())
    } else {
        Err(format!(
            "config name {:?} is not a Kafka config name (1 to {MAX_NAME} characters of a-z, A-Z, 0-9, '.', '_', '-')",
            truncated(name)
        ))
    }
}

/// Checks a topic config value: at most 8 KiB, without control characters.
pub fn validate_config_value(name: &str, value: &str) -> Result<(), String> {
    if value.len() > MAX_CONFIG_VALUE {
        return Err(format!(
            "the value of {name} is over {MAX_CONFIG_VALUE} bytes"
        ));
    }
    if value.chars().any(char::is_control) {
        return Err(format!("the value of {name} contains control characters"));
    }
    Ok(())
}

/// Checks a consumer group id: 1 to 255 characters, without control characters.
pub fn validate_group_id(id: &str) -> Result<(), String> {
    if id.is_empty() || id.len() > MAX_NAME || id.chars().any(char::is_control) {
        return Err(format!(
            "{:?} is not a usable consumer group id (1 to {MAX_NAME} characters, no control characters)",
            truncated(id)
        ));
    }
    Ok(())
}

/// The first 64 characters, for quoting client input back in an error.
fn truncated(text: &str) -> String {
    text.chars().take(64).collect()
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
    fn config_names_values_and_group_ids_are_checked() {
        assert!(validate_config_name("retention.ms").is_ok());
        for bad in ["", "has\0nul", "white space", &"x".repeat(256)] {
            assert!(validate_config_name(bad).is_err(), "{bad:?}");
        }
        assert!(validate_config_value("retention.ms", "86400000").is_ok());
        assert!(validate_config_value("retention.ms", "8\u{0}").is_err());
        assert!(validate_config_value("x", &"1".repeat(9000)).is_err());
        assert!(validate_group_id("order-processors").is_ok());
        assert!(validate_group_id("").is_err());
        assert!(validate_group_id("a\nb").is_err());
    }

    #[test]
    fn secret_values_never_reach_an_error_message() {
        let settings = ClientSettings {
            bootstrap_servers: "b:9092".into(),
            client_id: "c".into(),
            librdkafka: [
                ("no.such.password".to_string(), "hunter2-x".to_string()),
                ("sasl.username".to_string(), "alice".to_string()),
            ]
            .into(),
        };
        let error = settings.check().unwrap_err();
        assert!(error.contains("no.such.password"), "{error}");
        assert!(!error.contains("hunter2-x"), "{error}");
        assert!(is_secret_option("ssl.key.password"));
        assert!(is_secret_option("sasl.oauthbearer.client.secret"));
        assert!(!is_secret_option("sasl.username"));
    }

    #[test]
    fn tls_and_sasl_scram_are_built_in() {
        let settings = ClientSettings {
            bootstrap_servers: "b:9093".into(),
            client_id: "c".into(),
            librdkafka: [
                ("security.protocol", "SASL_SSL"),
                ("sasl.mechanism", "SCRAM-SHA-512"),
                ("sasl.username", "u"),
                ("sasl.password", "p"),
                ("ssl.endpoint.identification.algorithm", "https"),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        };
        assert_eq!(settings.check(), Ok(()));
        let mut plain = settings.clone();
        plain
            .librdkafka
            .insert("sasl.mechanism".into(), "PLAIN".into());
        assert_eq!(plain.check(), Ok(()));
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
