//! Service configuration: `config/default.toml`, then `config/$ORDERFLOW_ENV.toml`, then
//! `ORDERFLOW__SECTION__KEY` environment variables. Every field is documented in
//! `config/default.toml`; this module owns the types and the checks that make bad
//! configuration fail at start-up with a message naming the option.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

pub mod access;
pub mod clusters;
mod validate;

/// Reads a duration given in whole milliseconds (the `_ms` options).
fn millis<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Duration, D::Error> {
    u64::deserialize(deserializer).map(Duration::from_millis)
}

/// Reads a duration given in whole seconds (the `_secs` options).
pub(crate) fn seconds<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Duration, D::Error> {
    u64::deserialize(deserializer).map(Duration::from_secs)
}

/// All settings of one orderflow instance.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// The HTTP listener and its limits.
    pub http: HttpSettings,
    /// How to reach Kafka, and raw librdkafka options.
    pub kafka: KafkaSettings,
    /// The service's own topics.
    pub topics: TopicsSettings,
    /// The order producer.
    pub producer: ProducerSettings,
    /// Order validation limits.
    pub orders: OrderSettings,
    /// Duplicate-submission detection.
    pub idempotency: IdempotencySettings,
    /// Logging.
    pub telemetry: TelemetrySettings,
    /// Graceful shutdown.
    pub shutdown: ShutdownSettings,
    /// Background order processing.
    pub processing: ProcessingSettings,
    /// The status view (on local disk, with a cache).
    pub status_view: StatusViewSettings,
    /// The local development broker the service can start and stop.
    pub local_broker: LocalBrokerSettings,
    /// Bounds on the Kafka management API.
    pub admin: AdminSettings,
    /// API keys, scopes and rate limits.
    pub auth: access::AuthSettings,
    /// Clusters managed beside the home one, by id.
    #[serde(default)]
    pub clusters: BTreeMap<String, clusters::ClusterSettings>,
    /// The schema registry: built in, or an external one.
    pub schema_registry: SchemaRegistrySettings,
    /// How the service's own records are written.
    pub schemas: SchemasSettings,
}

/// `[schema_registry]`: the built-in registry (on `topics.schemas`), or, with `url`, an
/// external Confluent-compatible one the service is a client of.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SchemaRegistrySettings {
    /// An external registry's URL; empty for the built-in one.
    #[serde(default)]
    pub url: String,
    /// Basic-auth user name at the external registry (a `${NAME}` reference is read from
    /// the environment).
    #[serde(default)]
    pub username: String,
    /// Basic-auth password at the external registry (a `${NAME}` reference is read from
    /// the environment).
    #[serde(default)]
    pub password: String,
    /// How long one request to an external registry may take.
    #[serde(rename = "request_timeout_ms", deserialize_with = "millis")]
    pub request_timeout: Duration,
}

/// `[schemas]`: how the service's own records are written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SchemasSettings {
    /// Write `orders` and `orders.status` records in Confluent's wire format with their
    /// registered JSON Schemas (readers of this service read both forms).
    pub wire_format: bool,
}

/// Bounds on the Kafka management API.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdminSettings {
    /// Most partitions a topic may have (create and add partitions).
    pub max_partitions_per_topic: i32,
    /// Most partitions one request may create.
    pub max_partitions_per_request: i32,
    /// `${NAME}` references in clusters registered through the API resolve only variables
    /// whose names start with this. Default `ORDERFLOW_SECRET_`; empty allows none.
    pub secret_env_prefix: String,
    /// Further variables such references may name, exactly. Default none.
    #[serde(deserialize_with = "text_list")]
    pub secret_env_names: Vec<String>,
    /// URL prefixes a cluster registered through the API may name as its schema registry
    /// (the service calls them). Default none.
    #[serde(deserialize_with = "text_list")]
    pub schema_registry_urls: Vec<String>,
    /// The folder whose files a registered cluster may name as TLS files
    /// (`ssl.ca.location`, …, relative to it). Default empty: no files, PEM inline only.
    pub cluster_files_dir: String,
    /// Cross-cluster operations (replicate, migrate) running at once on this instance; more
    /// wait as `pending`. Default 2.
    pub max_running_operations: usize,
    /// Operations waiting to run on this instance; beyond it a new one is `429`. Default 16.
    pub max_pending_operations: usize,
    /// Most records one message search reads (its `max_scan` is capped here). Default
    /// 1,000,000.
    pub max_scan: u64,
    /// How long a message search answered as one JSON body may read (less than
    /// `http.request_timeout_ms`). Default 4,000 ms.
    #[serde(rename = "scan_budget_ms", deserialize_with = "millis")]
    pub scan_budget: Duration,
    /// How long a streamed search or export (SSE, NDJSON) may read. Default 300,000 ms.
    #[serde(rename = "stream_budget_ms", deserialize_with = "millis")]
    pub stream_budget: Duration,
    /// Message reads (searches, streamed or not, exports, live tails, copies) at once on
    /// this instance, each holding a read-ahead; beyond it a new one is `503 overloaded`.
    /// Default 16.
    pub max_message_streams: usize,
    /// Fields of record values shown as `"***"` to keys without `admin:read-unmasked`.
    #[serde(default)]
    pub masking: Vec<MaskRule>,
}

/// One masking rule: which topics, which fields of their JSON values.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MaskRule {
    /// Topic names, `*` for any run of characters.
    pub topics: String,
    /// Field paths in the value, dot-separated; `*` for every field at that level.
    pub fields: Vec<String>,
}

impl AdminSettings {
    /// The limits the admin client enforces.
    pub fn limits(&self) -> crate::kafka::admin::AdminLimits {
        crate::kafka::admin::AdminLimits {
            max_partitions_per_topic: self.max_partitions_per_topic,
            max_partitions_per_request: self.max_partitions_per_request,
        }
    }
}

/// The local development broker.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LocalBrokerSettings {
    /// Path of the Tansu binary; empty disables the lifecycle endpoints.
    pub command: String,
    /// Port on 127.0.0.1.
    pub port: u16,
    /// Storage engine URL.
    pub storage: String,
    /// Working directory.
    pub data_dir: String,
    /// Lowest port of local clusters' brokers (`"local": true` registrations).
    pub cluster_port_min: u16,
    /// Highest port of local clusters' brokers.
    pub cluster_port_max: u16,
    /// Most local clusters' brokers this instance runs at once; a registration or a start
    /// beyond it is refused (409). Default 4.
    pub max_clusters: usize,
    /// The Kafka cluster id the broker reports; empty for Tansu's own default. Each local
    /// cluster's broker gets `orderflow-local-<id>`, so that each is a cluster of its own.
    #[serde(default)]
    pub kafka_cluster_id: String,
}

/// Background order processing.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProcessingSettings {
    /// Consumer tasks in this instance; 0 for intake only.
    pub consumers: usize,
    /// Consumer group id.
    pub group_id: String,
    /// Messages one task handles at once.
    pub max_in_flight: usize,
    /// Attempts per message before dead-lettering.
    pub max_attempts: u32,
    /// First retry backoff, in milliseconds.
    #[serde(rename = "retry_backoff_ms", deserialize_with = "millis")]
    pub retry_backoff: Duration,
    /// Longest retry backoff, in milliseconds.
    #[serde(rename = "retry_backoff_max_ms", deserialize_with = "millis")]
    pub retry_backoff_max: Duration,
    /// `auto.commit.interval.ms`.
    #[serde(rename = "commit_interval_ms", deserialize_with = "millis")]
    pub commit_interval: Duration,
    /// `session.timeout.ms`.
    #[serde(rename = "session_timeout_ms", deserialize_with = "millis")]
    pub session_timeout: Duration,
    /// `statistics.interval.ms`.
    #[serde(rename = "statistics_interval_ms", deserialize_with = "millis")]
    pub statistics_interval: Duration,
    /// `fetch.wait.max.ms` of the consumers, the status view and the tables.
    #[serde(rename = "fetch_wait_max_ms", deserialize_with = "millis")]
    pub fetch_wait_max: Duration,
    /// Business rules.
    pub rules: RulesSettings,
    /// `auto.offset.reset` of the processors: where a partition without a committed offset
    /// starts, and where a position past the end of its log (the broker lost records) is
    /// moved: `earliest` (default), `latest`, or `error` (left there; not ready).
    pub offset_reset: String,
}

/// Business rules of order processing.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RulesSettings {
    /// Largest total that completes, as a decimal string.
    pub max_order_total: String,
    /// Largest quantity per line that completes.
    pub max_quantity_per_line: u32,
    /// Customers whose orders fail.
    #[serde(deserialize_with = "text_list")]
    pub blocked_customers: Vec<String>,
}

/// The status view: every order's current status on local disk, with a cache in front.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StatusViewSettings {
    /// The view's SQLite file; one per instance (a second process is refused).
    pub path: String,
    /// Orders kept in memory in front of the store.
    pub cache_orders: usize,
    /// SQLite's page cache of the writing connection, in MiB.
    pub store_cache_mb: u64,
    /// How often changes are committed to the store with their Kafka offsets, in ms.
    #[serde(rename = "flush_interval_ms", deserialize_with = "millis")]
    pub flush_interval: Duration,
    /// Final orders whose last change is older than this many days are removed from the
    /// view; 0 keeps every order for as long as the status topic does.
    pub retain_final_days: u64,
    /// Longest long-poll, in milliseconds.
    #[serde(rename = "max_wait_ms", deserialize_with = "millis")]
    pub max_wait: Duration,
    /// Live status streams open at once on this instance.
    pub max_live_streams: usize,
    /// Keep-alive interval of an idle live stream, in seconds.
    #[serde(rename = "live_keep_alive_secs", deserialize_with = "seconds")]
    pub live_keep_alive: Duration,
}

/// The HTTP listener and its limits.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpSettings {
    /// Address to bind.
    pub host: String,
    /// Port to bind; 0 picks a free one.
    pub port: u16,
    /// Largest accepted request body, in bytes.
    pub max_body_bytes: usize,
    /// Upper bound on one request's handling, in milliseconds.
    #[serde(rename = "request_timeout_ms", deserialize_with = "millis")]
    pub request_timeout: Duration,
    /// Requests handled at once before the service sheds load with 503.
    pub max_concurrent_requests: usize,
    /// Seconds sent in `Retry-After` with a 503.
    #[serde(rename = "retry_after_secs", deserialize_with = "seconds")]
    pub retry_after: Duration,
    /// Connections open at once; further clients wait in the listen backlog.
    pub max_connections: usize,
    /// How long a connection may take to send a request's head, in milliseconds. The clock
    /// starts when the server waits for a request, so it also closes idle keep-alive
    /// connections.
    #[serde(rename = "header_read_timeout_ms", deserialize_with = "millis")]
    pub header_read_timeout: Duration,
    /// How long a request may take to send its whole body, in milliseconds; a body not
    /// complete by then is answered 408. Below `request_timeout_ms`.
    #[serde(rename = "body_read_timeout_ms", deserialize_with = "millis")]
    pub body_read_timeout: Duration,
    /// Cross-origin requests from browsers.
    pub cors: CorsSettings,
}

/// Which browser origins may call the API (CORS). No origins: no CORS headers at all.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CorsSettings {
    /// Exact origins (`https://shop.example.com`); empty turns CORS off.
    #[serde(deserialize_with = "text_list")]
    pub allowed_origins: Vec<String>,
    /// Methods those origins may use.
    #[serde(deserialize_with = "text_list")]
    pub allowed_methods: Vec<String>,
    /// Request headers those origins may send.
    #[serde(deserialize_with = "text_list")]
    pub allowed_headers: Vec<String>,
    /// How long a browser may cache a preflight answer, in seconds.
    #[serde(rename = "max_age_secs", deserialize_with = "seconds")]
    pub max_age: Duration,
}

impl CorsSettings {
    /// The tower-http layer, or `None` when no origin is allowed.
    pub fn layer(&self) -> Result<Option<tower_http::cors::CorsLayer>, String> {
        use axum::http::{HeaderName, HeaderValue, Method};
        if self.allowed_origins.is_empty() {
            return Ok(None);
        }
        let origins = self
            .allowed_origins
            .iter()
            .map(|o| {
                let shaped =
                    (o.starts_with("https://") || o.starts_with("http://")) && !o.ends_with('/');
                HeaderValue::from_str(o)
                    .ok()
                    .filter(|_| shaped)
                    .ok_or_else(|| format!("origin {o:?} is not like https://host[:port]"))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let methods = self
            .allowed_methods
            .iter()
            .map(|m| Method::from_bytes(m.as_bytes()).map_err(|_| format!("method {m:?}")))
            .collect::<Result<Vec<_>, _>>()?;
        let headers = self
            .allowed_headers
            .iter()
            .map(|h| HeaderName::from_bytes(h.as_bytes()).map_err(|_| format!("header {h:?}")))
            .collect::<Result<Vec<_>, _>>()?;
        let exposed =
            ["x-request-id", "traceparent", "retry-after", "location"].map(HeaderName::from_static);
        Ok(Some(
            tower_http::cors::CorsLayer::new()
                .allow_origin(origins)
                .allow_methods(methods)
                .allow_headers(headers)
                .expose_headers(exposed)
                .max_age(self.max_age),
        ))
    }
}

/// How to reach Kafka.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KafkaSettings {
    /// Comma-separated `host:port` list.
    pub bootstrap_servers: String,
    /// `client.id` for every client this service creates.
    pub client_id: String,
    /// The home cluster's id in the cluster registry (`/api/clusters/{id}`).
    pub cluster_id: String,
    /// Timeout of admin and metadata requests, in milliseconds.
    #[serde(rename = "admin_timeout_ms", deserialize_with = "millis")]
    pub admin_timeout: Duration,
    /// Raw librdkafka options applied last to every client. Values may be written as
    /// strings, numbers or booleans (an environment variable holding a numeric password is
    /// still a string to librdkafka).
    #[serde(default, deserialize_with = "option_values")]
    pub librdkafka: BTreeMap<String, String>,
}

/// Reads a list of texts from a list (a config file), or from one text (an environment
/// variable): a JSON array (`["EUR","USD"]`), or comma-separated (`EUR,USD`); an empty text
/// is an empty list.
pub(crate) fn text_list<'de, D>(deserializer: D) -> Result<Vec<String>, D::Error>
where
    D: serde::Deserializer<'de>,
{
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum ListOrText {
        List(Vec<String>),
        Text(String),
        Integer(i64),
    }
    match ListOrText::deserialize(deserializer)? {
        ListOrText::List(list) => Ok(list),
        ListOrText::Integer(i) => Ok(vec![i.to_string()]),
        ListOrText::Text(text) if text.trim_start().starts_with('[') => serde_json::from_str(&text)
            .map_err(|e| {
                serde::de::Error::custom(format!("a JSON array of strings was expected: {e}"))
            }),
        ListOrText::Text(text) => Ok(text
            .split(',')
            .map(str::trim)
            .filter(|item| !item.is_empty())
            .map(String::from)
            .collect()),
    }
}

/// Reads librdkafka options whatever scalar type the source gave each value.
pub(crate) fn option_values<'de, D>(deserializer: D) -> Result<BTreeMap<String, String>, D::Error>
where
    D: serde::Deserializer<'de>,
{
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Scalar {
        Text(String),
        Integer(i64),
        Float(f64),
        Flag(bool),
    }
    let raw = BTreeMap::<String, Scalar>::deserialize(deserializer)?;
    Ok(raw
        .into_iter()
        .map(|(key, value)| {
            let text = match value {
                Scalar::Text(t) => t,
                Scalar::Integer(i) => i.to_string(),
                Scalar::Float(f) => f.to_string(),
                Scalar::Flag(b) => b.to_string(),
            };
            (key, text)
        })
        .collect())
}

/// The service's own topics.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TopicsSettings {
    /// Create missing topics at start-up.
    pub create: bool,
    /// Replication factor of created topics.
    pub replication_factor: i32,
    /// Orders and cancel requests.
    pub orders: TopicSettings,
    /// Compacted status snapshots.
    pub status: TopicSettings,
    /// Dead letters.
    pub dlq: TopicSettings,
    /// The audit trail of admin changes and refused keys.
    pub audit: TopicSettings,
    /// Clusters registered at run time (compacted).
    pub clusters: TopicSettings,
    /// Operations across clusters and their progress (compacted).
    pub operations: TopicSettings,
    /// Stored cluster templates (compacted).
    pub templates: TopicSettings,
    /// The built-in schema registry (compacted, one partition).
    pub schemas: TopicSettings,
}

/// One topic's name and partition count.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TopicSettings {
    /// Topic name.
    pub name: String,
    /// Partitions when the service creates it.
    pub partitions: i32,
    /// `retention.ms` when the service creates it; absent for the broker's default.
    #[serde(default)]
    pub retention_ms: Option<i64>,
}

/// The order producer.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProducerSettings {
    /// `message.timeout.ms`: how long a record may wait for its acknowledgement.
    #[serde(rename = "delivery_timeout_ms", deserialize_with = "millis")]
    pub delivery_timeout: Duration,
    /// `queue.buffering.max.messages`.
    pub queue_max_messages: u32,
    /// `linger.ms`.
    #[serde(rename = "linger_ms", deserialize_with = "millis")]
    pub linger: Duration,
    /// `compression.type`.
    pub compression: String,
    /// How long shutdown waits for the local queue to drain, in milliseconds.
    #[serde(rename = "flush_timeout_ms", deserialize_with = "millis")]
    pub flush_timeout: Duration,
    /// `statistics.interval.ms` of the producer (broker and batch gauges); 0 turns it off.
    #[serde(rename = "statistics_interval_ms", deserialize_with = "millis")]
    pub statistics_interval: Duration,
}

/// Order validation limits.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OrderSettings {
    /// Most orders in one bulk request.
    pub max_bulk: usize,
    /// Most lines in one order.
    pub max_items: usize,
    /// Accepted ISO 4217 codes; empty accepts every known code.
    #[serde(deserialize_with = "text_list")]
    pub currencies: Vec<String>,
}

/// Duplicate-submission detection.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IdempotencySettings {
    /// Remembered submissions per instance.
    pub capacity: usize,
}

/// Logging.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TelemetrySettings {
    /// `pretty` or `json`.
    pub log_format: LogFormat,
    /// Default filter when `RUST_LOG` is unset.
    pub log_filter: String,
    /// OpenTelemetry span export (`OTEL_*` variables win over these).
    pub otlp: OtlpSettings,
}

/// `[telemetry.otlp]`: spans exported over OTLP/HTTP (protobuf). Off while `endpoint` is
/// empty and `OTEL_EXPORTER_OTLP_ENDPOINT` is unset.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OtlpSettings {
    /// The collector's base URL (`/v1/traces` is added); empty: no export.
    pub endpoint: String,
    /// Request headers (a `${NAME}` value is read from the environment).
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// The `service.name` resource attribute.
    pub service_name: String,
    /// `parentbased_always_on`, `parentbased_traceidratio`, `traceidratio`, `always_on`,
    /// `always_off` or `parentbased_always_off`.
    pub sampler: String,
    /// The ratio of the `…traceidratio` samplers.
    pub sampler_arg: f64,
    /// How long one export request may take.
    #[serde(rename = "timeout_ms", deserialize_with = "millis")]
    pub timeout: Duration,
    /// Spans waiting for export at most; more are dropped and counted.
    pub max_queue_size: usize,
    /// Spans per export request at most.
    pub max_export_batch_size: usize,
    /// How long a span may wait for a fuller batch.
    #[serde(rename = "schedule_delay_ms", deserialize_with = "millis")]
    pub schedule_delay: Duration,
    /// Further resource attributes (`deployment.environment.name`, …).
    #[serde(default)]
    pub resource_attributes: BTreeMap<String, String>,
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    Pretty,
    /// One JSON object per line.
    Json,
}

/// Graceful shutdown.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShutdownSettings {
    /// How long in-flight work may take after a stop signal, in milliseconds.
    #[serde(rename = "grace_period_ms", deserialize_with = "millis")]
    pub grace_period: Duration,
}

/// The variable a `${NAME}` value refers to.
pub fn reference(value: &str) -> Option<&str> {
    value
        .strip_prefix("${")
        .and_then(|rest| rest.strip_suffix('}'))
        .filter(|name| !name.is_empty())
}

/// Resolves `${ENV_NAME}` references in option values from the environment.
pub fn resolve_references(
    options: &BTreeMap<String, String>,
) -> Result<BTreeMap<String, String>, String> {
    options
        .iter()
        .map(|(name, value)| {
            let resolved = match reference(value) {
                Some(variable) => std::env::var(variable)
                    .map_err(|_| format!("{name} refers to ${{{variable}}}, which is not set"))?,
                None => value.clone(),
            };
            Ok((name.clone(), resolved))
        })
        .collect()
}

/// Configuration that cannot be loaded or makes no sense.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A file or variable could not be read or parsed into the settings.
    #[error("invalid configuration: {0}")]
    Load(#[from] config::ConfigError),
    /// A value parsed but is out of range.
    #[error("invalid configuration: {option}: {reason}")]
    Invalid {
        /// The option's dotted name, e.g. `http.port`.
        option: &'static str,
        /// What is wrong with it.
        reason: String,
    },
}

/// The shipped defaults, compiled in: the base layer wherever the binary runs from.
const DEFAULTS: &str = include_str!("../../config/default.toml");

impl Settings {
    /// Loads the layered configuration: the compiled-in defaults, then `default.toml` and
    /// the `$ORDERFLOW_ENV` file from `$ORDERFLOW_CONFIG_DIR` (default `./config`, which need
    /// not exist), then `ORDERFLOW__…` variables.
    pub fn load() -> Result<Self, ConfigError> {
        let explicit = std::env::var_os("ORDERFLOW_CONFIG_DIR").map(PathBuf::from);
        if let Some(dir) = explicit.as_ref().filter(|dir| !dir.is_dir()) {
            return Err(ConfigError::Invalid {
                option: "ORDERFLOW_CONFIG_DIR",
                reason: format!("{} is not a folder", dir.display()),
            });
        }
        let dir = explicit.unwrap_or_else(|| PathBuf::from("config"));
        let env = std::env::var("ORDERFLOW_ENV")
            .ok()
            .filter(|e| !e.is_empty());
        Self::load_from(&dir, env.as_deref())
    }

    /// Loads the compiled-in defaults, `default.toml` from `dir` when it is there, the
    /// environment's file (which must be there when an environment is named: its settings,
    /// such as required API keys, must not be skipped silently), then the environment.
    pub fn load_from(dir: &Path, environment: Option<&str>) -> Result<Self, ConfigError> {
        let mut builder = config::Config::builder()
            .add_source(config::File::from_str(DEFAULTS, config::FileFormat::Toml))
            .add_source(config::File::from(dir.join("default.toml")).required(false));
        if let Some(env) = environment {
            let file = dir.join(format!("{env}.toml"));
            if !file.is_file() {
                return Err(ConfigError::Invalid {
                    option: "ORDERFLOW_ENV",
                    reason: format!(
                        "{env:?} names {}, which is not there (set ORDERFLOW_CONFIG_DIR to the \
                         folder that holds it)",
                        file.display()
                    ),
                });
            }
            builder = builder.add_source(config::File::from(file));
        }
        let settings: Settings = builder
            .add_source(
                config::Environment::with_prefix("ORDERFLOW")
                    .prefix_separator("__")
                    .separator("__")
                    .try_parsing(true),
            )
            .build()?
            .try_deserialize()?;
        settings.validate()?;
        Ok(settings)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn defaults() -> Settings {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("config");
        Settings::load_from(&dir, None).expect("the shipped defaults load")
    }

    #[test]
    fn shipped_defaults_and_production_file_load() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("config");
        let prod = Settings::load_from(&dir, Some("production")).expect("production loads");
        assert_eq!(prod.telemetry.log_format, LogFormat::Json);
        assert_eq!(defaults().telemetry.log_format, LogFormat::Pretty);
    }

    #[test]
    fn delivery_timeout_must_stay_below_request_timeout() {
        let mut s = defaults();
        s.producer.delivery_timeout = s.http.request_timeout;
        let err = s.validate().unwrap_err().to_string();
        assert!(err.contains("producer.delivery_timeout_ms"), "{err}");
    }

    #[test]
    fn bad_topic_name_names_the_option() {
        let mut s = defaults();
        s.topics.dlq.name = "no spaces".into();
        let err = s.validate().unwrap_err().to_string();
        assert!(err.contains("topics.dlq"), "{err}");
    }

    #[test]
    fn cors_origins_are_checked_and_empty_means_off() {
        let mut s = defaults();
        assert!(s.http.cors.layer().unwrap().is_none());
        s.http.cors.allowed_origins = vec!["https://shop.example".into()];
        assert!(s.http.cors.layer().unwrap().is_some());
        s.http.cors.allowed_origins = vec!["shop.example/".into()];
        assert!(s.validate().unwrap_err().to_string().contains("http.cors"));
    }
}
