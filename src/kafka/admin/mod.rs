//! Kafka cluster management: cluster and brokers, topics (list, create, describe, configs,
//! partitions, delete), consumer groups (list, describe with lag, reset offsets, delete) and
//! messages (browse a partition without a group). Built on rdkafka's async `AdminClient`;
//! the calls that block inside librdkafka (metadata, watermarks, group lists, committed
//! offsets) run on tokio's blocking pool. Knows nothing about HTTP or orders.

use std::sync::Arc;
use std::time::{Duration, Instant};

use rdkafka::admin::{AdminClient, AdminOptions};
use rdkafka::consumer::{BaseConsumer as RdBaseConsumer, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};

use super::{ClientContext, ClientSettings};

/// What went wrong, in terms an API can map to a status.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    /// The topic or group does not exist.
    #[error("{0} not found")]
    NotFound(String),
    /// The topic already exists.
    #[error("{0} already exists")]
    AlreadyExists(String),
    /// The request is invalid for Kafka (bad partitions, replication, config, name).
    #[error("{0}")]
    Invalid(String),
    /// The request conflicts with the current state (active group, protected topic).
    #[error("{0}")]
    Conflict(String),
    /// The cluster does not implement this operation.
    #[error("the cluster does not support this operation: {0}")]
    Unsupported(String),
    /// Kafka could not be reached or did not answer in time.
    #[error("kafka unavailable: {0}")]
    Unavailable(String),
    /// Kafka refused for another reason.
    #[error("kafka error: {0}")]
    Kafka(String),
}

impl From<KafkaError> for AdminError {
    fn from(error: KafkaError) -> Self {
        // rdkafka reports admin failures as AdminOp(code) and rdkafka_error_code() omits it.
        let code = match &error {
            KafkaError::AdminOp(code) => Some(*code),
            other => other.rdkafka_error_code(),
        };
        from_code(code, error.to_string())
    }
}

fn from_code(code: Option<RDKafkaErrorCode>, text: String) -> AdminError {
    use RDKafkaErrorCode as C;
    match code {
        Some(
            C::UnknownTopicOrPartition | C::UnknownTopic | C::GroupIdNotFound | C::UnknownPartition,
        ) => AdminError::NotFound(text),
        Some(C::TopicAlreadyExists) => AdminError::AlreadyExists(text),
        Some(
            C::InvalidPartitions
            | C::InvalidReplicationFactor
            | C::InvalidReplicaAssignment
            | C::InvalidConfig
            | C::InvalidTopic
            | C::InvalidRequest
            | C::PolicyViolation,
        ) => AdminError::Invalid(text),
        Some(C::UnsupportedFeature | C::UnsupportedVersion) => AdminError::Unsupported(text),
        Some(C::NonEmptyGroup) => AdminError::Conflict(text),
        Some(
            C::BrokerTransportFailure
            | C::AllBrokersDown
            | C::OperationTimedOut
            | C::RequestTimedOut
            | C::MessageTimedOut
            | C::CoordinatorNotAvailable
            | C::NotCoordinator
            | C::CoordinatorLoadInProgress
            | C::Resolve
            | C::NetworkException,
        ) => AdminError::Unavailable(text),
        _ => AdminError::Kafka(text),
    }
}

mod groups;
mod scan;
mod topics;
mod types;

pub use scan::{
    CopiedRecord, Direction, RecordView, ScanEvent, ScanOutcome, ScanProgress, ScanRequest,
    ScanStart, StopReason, record_view,
};
pub use types::*;

/// Partitions no request may ask for, whatever the configured limits: the bound the API
/// documents (`maximum` in the OpenAPI document).
pub const MAX_PARTITIONS: i32 = 1_000_000;

/// Bounds on what one management request may ask of the cluster: a request for 100,000
/// partitions is accepted by some brokers and leaves them unusable.
#[derive(Debug, Clone, Copy)]
pub struct AdminLimits {
    /// Most partitions one topic may have.
    pub max_partitions_per_topic: i32,
    /// Most partitions one request may create (a topic's, or those added to it).
    pub max_partitions_per_request: i32,
}

/// The management client. Cheap to clone.
#[derive(Clone)]
pub struct KafkaAdmin {
    client: ClientSettings,
    admin: Arc<AdminClient<ClientContext>>,
    metadata: Arc<RdBaseConsumer<ClientContext>>,
    timeout: Duration,
    limits: AdminLimits,
}

/// A topic name from a request path: one that no topic can have is not found.
fn named_topic(name: &str) -> Result<(), AdminError> {
    crate::kafka::validate_topic_name(name)
        .map_err(|why| AdminError::NotFound(format!("topic (the name is invalid: {why})")))
}

/// A group id from a request path: one that no group can have is not found.
fn named_group(id: &str) -> Result<(), AdminError> {
    super::validate_group_id(id).map_err(|why| AdminError::NotFound(format!("group ({why})")))
}

impl KafkaAdmin {
    /// Creates the clients; they connect lazily.
    pub fn new(
        client: ClientSettings,
        timeout: Duration,
        limits: AdminLimits,
    ) -> Result<Self, KafkaError> {
        let admin = client
            .client_config(&[])
            .create_with_context(ClientContext::default())?;
        let metadata = client
            .client_config(&[])
            .create_with_context(ClientContext::default())?;
        Ok(KafkaAdmin {
            client,
            admin: Arc::new(admin),
            metadata: Arc::new(metadata),
            timeout,
            limits,
        })
    }

    fn options(&self) -> AdminOptions {
        AdminOptions::new()
            .request_timeout(Some(self.timeout))
            .operation_timeout(Some(self.timeout))
    }

    /// Runs a blocking metadata-style call on the blocking pool.
    async fn blocking<R: Send + 'static>(
        &self,
        f: impl FnOnce(&RdBaseConsumer<ClientContext>, Duration) -> Result<R, AdminError>
        + Send
        + 'static,
    ) -> Result<R, AdminError> {
        let consumer = self.metadata.clone();
        let timeout = self.timeout;
        tokio::task::spawn_blocking(move || f(&consumer, timeout))
            .await
            .map_err(|e| AdminError::Kafka(format!("blocking task failed: {e}")))?
    }

    /// Cluster id, controller, brokers and a health verdict.
    pub async fn cluster(&self) -> Result<ClusterInfo, AdminError> {
        self.blocking(|consumer, timeout| {
            let started = Instant::now();
            let metadata = consumer.fetch_metadata(None, timeout)?;
            let rtt = started.elapsed();
            let cluster_id = consumer.client().fetch_cluster_id(timeout);
            // SAFETY: the pointer is the live client owned by `consumer`; librdkafka only
            // reads its cached metadata (or waits up to the timeout for it).
            let controller = unsafe {
                rdkafka::bindings::rd_kafka_controllerid(
                    consumer.client().native_ptr(),
                    timeout.as_millis() as i32,
                )
            };
            let brokers: Vec<BrokerInfo> = metadata
                .brokers()
                .iter()
                .map(|b| BrokerInfo {
                    id: b.id(),
                    host: b.host().to_string(),
                    port: b.port(),
                })
                .collect();
            Ok(ClusterInfo {
                cluster_id,
                controller_id: (controller >= 0).then_some(controller),
                health: if brokers.is_empty() {
                    "degraded".into()
                } else {
                    "healthy".into()
                },
                brokers,
                topic_count: metadata.topics().len(),
                partition_count: metadata.topics().iter().map(|t| t.partitions().len()).sum(),
                metadata_rtt_ms: rtt.as_secs_f64() * 1000.0,
            })
        })
        .await
    }

    /// The cluster id its brokers report: what the cluster is, whatever name reaches it.
    pub async fn cluster_id(&self) -> Result<String, AdminError> {
        self.blocking(|consumer, timeout| {
            consumer
                .client()
                .fetch_cluster_id(timeout)
                .filter(|id| !id.is_empty())
                .ok_or_else(|| AdminError::Unavailable("no cluster id from its brokers".into()))
        })
        .await
    }

    /// How this client reaches its cluster.
    pub fn client_settings(&self) -> &ClientSettings {
        &self.client
    }
}

/// The topic's metadata, or `NotFound` when the cluster does not have it.
fn existing_topic<'m>(
    metadata: &'m rdkafka::metadata::Metadata,
    topic: &str,
) -> Result<&'m rdkafka::metadata::MetadataTopic, AdminError> {
    metadata
        .topics()
        .first()
        .filter(|t| t.error().is_none() && !t.partitions().is_empty())
        .ok_or_else(|| AdminError::NotFound(format!("topic {topic}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kafka_codes_map_to_api_meanings() {
        assert!(matches!(
            from_code(Some(RDKafkaErrorCode::TopicAlreadyExists), String::new()),
            AdminError::AlreadyExists(_)
        ));
        assert!(matches!(
            from_code(
                Some(RDKafkaErrorCode::UnknownTopicOrPartition),
                String::new()
            ),
            AdminError::NotFound(_)
        ));
        assert!(matches!(
            from_code(Some(RDKafkaErrorCode::InvalidPartitions), String::new()),
            AdminError::Invalid(_)
        ));
        assert!(matches!(
            from_code(Some(RDKafkaErrorCode::AllBrokersDown), String::new()),
            AdminError::Unavailable(_)
        ));
    }
}
