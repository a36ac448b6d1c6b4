//! Kafka cluster management: cluster and brokers, topics (list, create, describe, configs,
//! partitions, delete), consumer groups (list, describe with lag, reset offsets, delete) and
//! messages (browse a partition without a group). Built on rdkafka's async `AdminClient`;
//! the calls that block inside librdkafka (metadata, watermarks, group lists, committed
//! offsets) run on tokio's blocking pool. Knows nothing about HTTP or orders.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rdkafka::admin::{
    AdminClient, AdminOptions, AlterConfig, NewPartitions, NewTopic, ResourceSpecifier,
    TopicReplication,
};
use rdkafka::consumer::{BaseConsumer as RdBaseConsumer, CommitMode, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};
use serde::Serialize;

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

/// A broker of the cluster.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct BrokerInfo {
    /// Broker id.
    pub id: i32,
    /// Advertised host.
    pub host: String,
    /// Advertised port.
    pub port: i32,
}

/// The cluster as a metadata request sees it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ClusterInfo {
    /// Cluster id, when the cluster reports one.
    pub cluster_id: Option<String>,
    /// Id of the controller broker, when known.
    pub controller_id: Option<i32>,
    /// Brokers.
    pub brokers: Vec<BrokerInfo>,
    /// Topics, internal ones included.
    pub topic_count: usize,
    /// Partitions over all topics.
    pub partition_count: usize,
    /// `healthy` when metadata came back with brokers.
    pub health: String,
    /// Round-trip time of the metadata request, in milliseconds.
    pub metadata_rtt_ms: f64,
}

/// One topic in a listing.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct TopicSummary {
    /// Name.
    pub name: String,
    /// Partition count.
    pub partitions: usize,
    /// Replicas of the first partition.
    pub replication_factor: usize,
    /// Kafka's own topics (names starting with `__`).
    pub internal: bool,
    /// Sum over partitions of high minus low watermark.
    pub message_count: i64,
}

/// One partition of a described topic.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct PartitionInfo {
    /// Partition id.
    pub partition: i32,
    /// Leader broker id.
    pub leader: i32,
    /// Replica broker ids.
    pub replicas: Vec<i32>,
    /// In-sync replica broker ids.
    pub isr: Vec<i32>,
    /// First offset still stored.
    pub low_watermark: i64,
    /// Offset the next record will get.
    pub high_watermark: i64,
}

/// One config entry of a topic.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ConfigValue {
    /// The value; `null` for sensitive entries.
    pub value: Option<String>,
    /// Whether this is the broker's default rather than set on the topic.
    pub is_default: bool,
    /// Whether the value is a secret (never shown).
    pub is_sensitive: bool,
    /// Where the value comes from (`topic` when set on the topic, `default`, `broker`, …).
    pub source: String,
}

/// A described topic.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct TopicDetails {
    /// Name.
    pub name: String,
    /// Kafka's own topic.
    pub internal: bool,
    /// Partitions with leaders, replicas and watermarks.
    pub partitions: Vec<PartitionInfo>,
    /// Configs by name.
    pub configs: BTreeMap<String, ConfigValue>,
}

/// A topic to create.
#[derive(Debug, Clone)]
pub struct TopicRequest {
    /// Name, by Kafka's rules.
    pub name: String,
    /// Partitions, at least 1.
    pub partitions: i32,
    /// Replication factor, 1 to the number of brokers.
    pub replication_factor: i32,
    /// Topic configs.
    pub configs: BTreeMap<String, String>,
}

/// A consumer group in a listing.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct GroupSummary {
    /// Group id.
    pub group_id: String,
    /// Group state (`Stable`, `Empty`, `PreparingRebalance`, …).
    pub state: String,
    /// Members now.
    pub members: usize,
    /// Protocol type (`consumer` for Kafka consumers).
    pub protocol_type: String,
    /// Assignment protocol (`range`, `roundrobin`, …).
    pub protocol: String,
}

/// A member of a described group.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct MemberInfo {
    /// Member id given by the coordinator.
    pub member_id: String,
    /// The member's `client.id`.
    pub client_id: String,
    /// The member's host.
    pub host: String,
    /// Assigned partitions as `topic` → partitions.
    pub assignment: BTreeMap<String, Vec<i32>>,
}

/// A group's position on one partition.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct PartitionLag {
    /// Topic.
    pub topic: String,
    /// Partition.
    pub partition: i32,
    /// Committed offset, when the group committed one.
    pub committed_offset: Option<i64>,
    /// High watermark.
    pub end_offset: i64,
    /// End minus committed (or minus the low watermark when nothing is committed).
    pub lag: i64,
}

/// A described group.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct GroupDetails {
    /// The listing fields.
    #[serde(flatten)]
    pub summary: GroupSummary,
    /// Members with their assignments.
    pub member_details: Vec<MemberInfo>,
    /// Per-partition offsets and lag over the topics the group consumes or committed on.
    pub offsets: Vec<PartitionLag>,
    /// Sum of `lag`.
    pub total_lag: i64,
}

/// Where to move a group's offsets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResetTo {
    /// The low watermark.
    Earliest,
    /// The high watermark.
    Latest,
    /// This offset on every partition.
    Offset(i64),
}

/// A record read while browsing.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct BrowsedRecord {
    /// Partition.
    pub partition: i32,
    /// Offset.
    pub offset: i64,
    /// Timestamp in milliseconds since the epoch, when set.
    pub timestamp_ms: Option<i64>,
    /// Key as UTF-8 (lossy).
    pub key: Option<String>,
    /// The value: JSON when it parses as JSON, else a string.
    pub value: serde_json::Value,
    /// Headers as UTF-8 (lossy).
    pub headers: BTreeMap<String, String>,
}

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
    super::validate_topic_name(name)
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

    /// Topics with counts; internal topics only when asked.
    pub async fn list_topics(
        &self,
        prefix: Option<String>,
        include_internal: bool,
    ) -> Result<Vec<TopicSummary>, AdminError> {
        self.blocking(move |consumer, timeout| {
            let metadata = consumer.fetch_metadata(None, timeout)?;
            let mut topics = Vec::new();
            for topic in metadata.topics() {
                let internal = topic.name().starts_with("__");
                if (internal && !include_internal)
                    || prefix
                        .as_deref()
                        .is_some_and(|p| !topic.name().starts_with(p))
                {
                    continue;
                }
                let mut message_count = 0;
                for p in topic.partitions() {
                    let (low, high) = consumer.fetch_watermarks(topic.name(), p.id(), timeout)?;
                    message_count += (high - low).max(0);
                }
                topics.push(TopicSummary {
                    name: topic.name().to_string(),
                    partitions: topic.partitions().len(),
                    replication_factor: topic
                        .partitions()
                        .first()
                        .map_or(0, |p| p.replicas().len()),
                    internal,
                    message_count,
                });
            }
            topics.sort_by(|a, b| a.name.cmp(&b.name));
            Ok(topics)
        })
        .await
    }

    /// Creates a topic after checking what Kafka would refuse anyway, with clearer words.
    pub async fn create_topic(&self, request: &TopicRequest) -> Result<(), AdminError> {
        super::validate_topic_name(&request.name).map_err(AdminError::Invalid)?;
        if !(1..=MAX_PARTITIONS).contains(&request.partitions) {
            return Err(AdminError::Invalid(format!(
                "partitions must be 1 to {MAX_PARTITIONS}"
            )));
        }
        let most = self
            .limits
            .max_partitions_per_topic
            .min(self.limits.max_partitions_per_request);
        if request.partitions > most {
            return Err(AdminError::Conflict(format!(
                "at most {most} partitions here (admin.max_partitions_per_topic, admin.max_partitions_per_request)"
            )));
        }
        for (key, value) in &request.configs {
            super::validate_config_name(key).map_err(AdminError::Invalid)?;
            super::validate_config_value(key, value).map_err(AdminError::Invalid)?;
        }
        if request.replication_factor < 1 {
            return Err(AdminError::Invalid(
                "replication_factor must be at least 1".into(),
            ));
        }
        let brokers = self.cluster().await?.brokers.len() as i32;
        if request.replication_factor > brokers {
            return Err(AdminError::Conflict(format!(
                "replication_factor {} is more than the cluster's {brokers} brokers",
                request.replication_factor
            )));
        }
        let topic = request.configs.iter().fold(
            NewTopic::new(
                &request.name,
                request.partitions,
                TopicReplication::Fixed(request.replication_factor),
            ),
            |t, (k, v)| t.set(k, v),
        );
        let results = self.admin.create_topics(&[topic], &self.options()).await?;
        for result in results {
            if let Err((name, code)) = result {
                return Err(from_code(Some(code), format!("topic {name}: {code}")));
            }
        }
        Ok(())
    }

    /// Partitions with leaders and watermarks, and configs.
    pub async fn describe_topic(&self, name: &str) -> Result<TopicDetails, AdminError> {
        named_topic(name)?;
        let topic = name.to_string();
        let (internal, partitions) = self
            .blocking(move |consumer, timeout| {
                let metadata = consumer.fetch_metadata(Some(&topic), timeout)?;
                let t = existing_topic(&metadata, &topic)?;
                let mut partitions = Vec::new();
                for p in t.partitions() {
                    let (low, high) = consumer.fetch_watermarks(&topic, p.id(), timeout)?;
                    partitions.push(PartitionInfo {
                        partition: p.id(),
                        leader: p.leader(),
                        replicas: p.replicas().to_vec(),
                        isr: p.isr().to_vec(),
                        low_watermark: low,
                        high_watermark: high,
                    });
                }
                partitions.sort_by_key(|p| p.partition);
                Ok((topic.starts_with("__"), partitions))
            })
            .await?;
        let configs = self.topic_configs(name).await?;
        Ok(TopicDetails {
            name: name.to_string(),
            internal,
            partitions,
            configs,
        })
    }

    async fn topic_configs(&self, name: &str) -> Result<BTreeMap<String, ConfigValue>, AdminError> {
        let results = self
            .admin
            .describe_configs(&[ResourceSpecifier::Topic(name)], &self.options())
            .await?;
        let mut configs = BTreeMap::new();
        for result in results {
            let resource = result
                .map_err(|code| from_code(Some(code), format!("configs of {name}: {code}")))?;
            for entry in resource.entries {
                configs.insert(
                    entry.name.clone(),
                    ConfigValue {
                        value: if entry.is_sensitive {
                            None
                        } else {
                            entry.value.clone()
                        },
                        is_default: entry.is_default,
                        is_sensitive: entry.is_sensitive,
                        source: config_source(&entry.source).into(),
                    },
                );
            }
        }
        Ok(configs)
    }

    /// Sets (or, with `None`, removes) topic configs, keeping every other override set on
    /// the topic. AlterConfigs replaces the whole set, so the current overrides are read
    /// first. (Sensitive overrides cannot be read back and are not carried over.)
    pub async fn alter_topic_configs(
        &self,
        name: &str,
        changes: &BTreeMap<String, Option<String>>,
    ) -> Result<(), AdminError> {
        named_topic(name)?;
        for (key, value) in changes {
            super::validate_config_name(key).map_err(AdminError::Invalid)?;
            if let Some(value) = value {
                super::validate_config_value(key, value).map_err(AdminError::Invalid)?;
            }
        }
        let mut desired: BTreeMap<String, String> = self
            .topic_configs(name)
            .await?
            .into_iter()
            .filter(|(_, v)| v.source == "topic" && !v.is_sensitive)
            .filter_map(|(k, v)| v.value.map(|v| (k, v)))
            .collect();
        for (key, value) in changes {
            match value {
                Some(v) => desired.insert(key.clone(), v.clone()),
                None => desired.remove(key),
            };
        }
        let alter = desired.iter().fold(
            AlterConfig::new(ResourceSpecifier::Topic(name)),
            |a, (k, v)| a.set(k, v),
        );
        for result in self.admin.alter_configs(&[alter], &self.options()).await? {
            result.map_err(|(_, code)| {
                from_code(Some(code), format!("altering configs of {name}: {code}"))
            })?;
        }
        Ok(())
    }

    /// Raises the partition count (Kafka cannot lower it).
    pub async fn add_partitions(&self, name: &str, total: usize) -> Result<(), AdminError> {
        if !(1..=MAX_PARTITIONS as usize).contains(&total) {
            return Err(AdminError::Invalid(format!(
                "count must be 1 to {MAX_PARTITIONS}"
            )));
        }
        let current = self.describe_topic(name).await?.partitions.len();
        if total <= current {
            return Err(AdminError::Conflict(format!(
                "the topic has {current} partitions; the new count must be larger"
            )));
        }
        let most = usize::try_from(self.limits.max_partitions_per_topic).unwrap_or(0);
        if total > most {
            return Err(AdminError::Conflict(format!(
                "a topic may have at most {most} partitions (admin.max_partitions_per_topic)"
            )));
        }
        let step = usize::try_from(self.limits.max_partitions_per_request).unwrap_or(0);
        if total - current > step {
            return Err(AdminError::Conflict(format!(
                "one request may add at most {step} partitions (admin.max_partitions_per_request)"
            )));
        }
        let request = NewPartitions::new(name, total);
        for result in self
            .admin
            .create_partitions(&[request], &self.options())
            .await?
        {
            result.map_err(|(_, code)| {
                from_code(Some(code), format!("adding partitions to {name}: {code}"))
            })?;
        }
        Ok(())
    }

    /// Deletes a topic.
    pub async fn delete_topic(&self, name: &str) -> Result<(), AdminError> {
        named_topic(name)?;
        for result in self.admin.delete_topics(&[name], &self.options()).await? {
            result.map_err(|(_, code)| from_code(Some(code), format!("topic {name}: {code}")))?;
        }
        Ok(())
    }

    /// Consumer groups with state and member counts.
    pub async fn list_groups(&self) -> Result<Vec<GroupSummary>, AdminError> {
        self.blocking(|consumer, timeout| {
            let list = consumer.fetch_group_list(None, timeout)?;
            let mut groups: Vec<GroupSummary> = list.groups().iter().map(summary).collect();
            groups.sort_by(|a, b| a.group_id.cmp(&b.group_id));
            Ok(groups)
        })
        .await
    }

    /// Members with assignments, and per-partition committed offset, end offset and lag.
    pub async fn describe_group(&self, group_id: &str) -> Result<GroupDetails, AdminError> {
        named_group(group_id)?;
        let id = group_id.to_string();
        let (group, members) = self
            .blocking(move |consumer, timeout| {
                let list = consumer.fetch_group_list(Some(&id), timeout)?;
                let Some(g) = list.groups().iter().find(|g| g.name() == id) else {
                    return Err(AdminError::NotFound(format!("consumer group {id}")));
                };
                let members = g
                    .members()
                    .iter()
                    .map(|m| MemberInfo {
                        member_id: m.id().to_string(),
                        client_id: m.client_id().to_string(),
                        host: m.client_host().to_string(),
                        assignment: m.assignment().map(decode_assignment).unwrap_or_default(),
                    })
                    .collect::<Vec<_>>();
                Ok((summary(g), members))
            })
            .await?;
        if group.state == "Dead" {
            return Err(AdminError::NotFound(format!("consumer group {group_id}")));
        }
        let offsets = self.group_offsets(group_id, &members).await?;
        let total_lag = offsets.iter().map(|o| o.lag).sum();
        Ok(GroupDetails {
            summary: group,
            member_details: members,
            offsets,
            total_lag,
        })
    }

    /// Committed offsets of the group over the topics its members are assigned (or, for an
    /// empty group, every topic it has committed on), with end offsets and lag.
    async fn group_offsets(
        &self,
        group_id: &str,
        members: &[MemberInfo],
    ) -> Result<Vec<PartitionLag>, AdminError> {
        let mut topics: Vec<String> = members
            .iter()
            .flat_map(|m| m.assignment.keys().cloned())
            .collect();
        topics.sort();
        topics.dedup();
        let group = self.group_client(group_id)?;
        self.blocking(move |consumer, timeout| {
            let metadata = consumer.fetch_metadata(None, timeout)?;
            let mut wanted = TopicPartitionList::new();
            for t in metadata.topics() {
                if (topics.is_empty() && !t.name().starts_with("__"))
                    || topics.iter().any(|n| n == t.name())
                {
                    for p in t.partitions() {
                        wanted.add_partition(t.name(), p.id());
                    }
                }
            }
            let committed = group.committed_offsets(wanted, timeout)?;
            let mut offsets = Vec::new();
            for e in committed.elements() {
                let committed_offset = match e.offset() {
                    Offset::Offset(o) => Some(o),
                    _ => None,
                };
                // With no member assigned, only partitions the group committed on count.
                if topics.is_empty() && committed_offset.is_none() {
                    continue;
                }
                let (low, high) = consumer.fetch_watermarks(e.topic(), e.partition(), timeout)?;
                offsets.push(PartitionLag {
                    topic: e.topic().to_string(),
                    partition: e.partition(),
                    committed_offset,
                    end_offset: high,
                    lag: (high - committed_offset.unwrap_or(low)).max(0),
                });
            }
            offsets.sort_by(|a, b| (&a.topic, a.partition).cmp(&(&b.topic, b.partition)));
            drop(group);
            Ok(offsets)
        })
        .await
    }

    /// A client carrying the group's id, for offset fetch and commit without joining it.
    fn group_client(&self, group_id: &str) -> Result<RdBaseConsumer<ClientContext>, AdminError> {
        Ok(self
            .client
            .client_config(&[
                ("group.id", group_id.to_string()),
                ("enable.auto.commit", "false".into()),
            ])
            .create_with_context(ClientContext::default())?)
    }

    /// Moves the group's committed offsets on `topic` (every partition). Refused while the
    /// group has members: they would overwrite it at their next commit.
    pub async fn reset_group_offsets(
        &self,
        group_id: &str,
        topic: &str,
        to: ResetTo,
    ) -> Result<Vec<PartitionLag>, AdminError> {
        named_group(group_id)?;
        named_topic(topic)?;
        self.refuse_active_group(group_id).await?;
        let group = self.group_client(group_id)?;
        let topic = topic.to_string();
        self.blocking(move |consumer, timeout| {
            let metadata = consumer.fetch_metadata(Some(&topic), timeout)?;
            let t = existing_topic(&metadata, &topic)?;
            let mut target = TopicPartitionList::new();
            let mut result = Vec::new();
            for p in t.partitions() {
                let (low, high) = consumer.fetch_watermarks(&topic, p.id(), timeout)?;
                let offset = match to {
                    ResetTo::Earliest => low,
                    ResetTo::Latest => high,
                    ResetTo::Offset(o) => o.clamp(low, high),
                };
                target.add_partition_offset(&topic, p.id(), Offset::Offset(offset))?;
                result.push(PartitionLag {
                    topic: topic.clone(),
                    partition: p.id(),
                    committed_offset: Some(offset),
                    end_offset: high,
                    lag: high - offset,
                });
            }
            group.commit(&target, CommitMode::Sync)?;
            drop(group);
            Ok(result)
        })
        .await
    }

    /// Commits the given offsets for a group (`(topic, partition, offset)`); refused while
    /// the group has members.
    pub async fn commit_offsets(
        &self,
        group_id: &str,
        offsets: Vec<(String, i32, i64)>,
    ) -> Result<(), AdminError> {
        named_group(group_id)?;
        self.refuse_active_group(group_id).await?;
        let group = self.group_client(group_id)?;
        self.blocking(move |_, _| {
            let mut list = TopicPartitionList::new();
            for (topic, partition, offset) in &offsets {
                list.add_partition_offset(topic, *partition, Offset::Offset(*offset))?;
            }
            group.commit(&list, CommitMode::Sync)?;
            drop(group);
            Ok(())
        })
        .await
    }

    /// Low and high watermark of every partition of a topic.
    pub async fn watermarks(&self, topic: &str) -> Result<Vec<(i32, i64, i64)>, AdminError> {
        named_topic(topic)?;
        let topic = topic.to_string();
        self.blocking(move |consumer, timeout| {
            let metadata = consumer.fetch_metadata(Some(&topic), timeout)?;
            let t = existing_topic(&metadata, &topic)?;
            t.partitions()
                .iter()
                .map(|p| {
                    let (low, high) = consumer.fetch_watermarks(&topic, p.id(), timeout)?;
                    Ok((p.id(), low, high))
                })
                .collect()
        })
        .await
    }

    /// How this client reaches its cluster.
    pub fn client_settings(&self) -> &ClientSettings {
        &self.client
    }

    /// `Conflict` while the group has members: changing its offsets or deleting it under
    /// them would make them reprocess or overwrite. (Apache Kafka refuses a delete itself;
    /// some compatible brokers do not.)
    async fn refuse_active_group(&self, group_id: &str) -> Result<(), AdminError> {
        let id = group_id.to_string();
        let state = self
            .blocking(move |consumer, timeout| {
                let list = consumer.fetch_group_list(Some(&id), timeout)?;
                Ok(list
                    .groups()
                    .iter()
                    .find(|g| g.name() == id)
                    .map(|g| (g.state().to_string(), g.members().len())))
            })
            .await?;
        match state {
            Some((state, members)) if members > 0 => Err(AdminError::Conflict(format!(
                "consumer group {group_id} has {members} active members (state {state}); stop them first"
            ))),
            _ => Ok(()),
        }
    }

    /// Deletes a consumer group; refused while it has members.
    pub async fn delete_group(&self, group_id: &str) -> Result<(), AdminError> {
        named_group(group_id)?;
        self.refuse_active_group(group_id).await?;
        for result in self
            .admin
            .delete_groups(&[group_id], &self.options())
            .await?
        {
            result.map_err(|(_, code)| {
                from_code(Some(code), format!("consumer group {group_id}: {code}"))
            })?;
        }
        Ok(())
    }

    /// Reads up to `limit` records of one partition from `offset` (or the last `limit`
    /// records when `offset` is `None`), without joining a group or committing.
    pub async fn browse(
        &self,
        topic: &str,
        partition: i32,
        offset: Option<i64>,
        limit: usize,
    ) -> Result<Vec<BrowsedRecord>, AdminError> {
        named_topic(topic)?;
        if partition < 0 || offset.is_some_and(|o| o < 0) {
            return Err(AdminError::Invalid(
                "partition and offset must not be negative".into(),
            ));
        }
        let reader: RdBaseConsumer<ClientContext> = self
            .client
            .client_config(&[
                (
                    "group.id",
                    format!("orderflow-browse-{}", uuid::Uuid::new_v4()),
                ),
                ("enable.auto.commit", "false".into()),
                ("enable.auto.offset.store", "false".into()),
            ])
            .create_with_context(ClientContext::default())?;
        let topic = topic.to_string();
        self.blocking(move |consumer, timeout| {
            let metadata = consumer.fetch_metadata(Some(&topic), timeout)?;
            let exists = metadata.topics().first().is_some_and(|t| {
                t.error().is_none() && t.partitions().iter().any(|p| p.id() == partition)
            });
            if !exists {
                return Err(AdminError::NotFound(format!(
                    "topic {topic} partition {partition}"
                )));
            }
            let (low, high) = consumer.fetch_watermarks(&topic, partition, timeout)?;
            let start = offset
                .unwrap_or(high - limit as i64)
                .clamp(low, high.max(low));
            let mut records = Vec::new();
            if start < high && limit > 0 {
                let mut assignment = TopicPartitionList::new();
                assignment.add_partition_offset(&topic, partition, Offset::Offset(start))?;
                reader.assign(&assignment)?;
                let deadline = Instant::now() + timeout;
                while records.len() < limit && Instant::now() < deadline {
                    match reader.poll(Duration::from_millis(200)) {
                        Some(Ok(m)) => {
                            records.push(browsed(&m));
                            if m.offset() + 1 >= high {
                                break;
                            }
                        }
                        Some(Err(e)) => return Err(e.into()),
                        None => {}
                    }
                }
            }
            drop(reader);
            Ok(records)
        })
        .await
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

fn config_source(source: &rdkafka::admin::ConfigSource) -> &'static str {
    use rdkafka::admin::ConfigSource as S;
    match source {
        S::DynamicTopic => "topic",
        S::DynamicBroker => "broker",
        S::DynamicDefaultBroker => "cluster",
        S::StaticBroker => "static_broker",
        S::Default => "default",
        S::Unknown => "unknown",
    }
}

fn summary(g: &rdkafka::groups::GroupInfo) -> GroupSummary {
    GroupSummary {
        group_id: g.name().to_string(),
        state: g.state().to_string(),
        members: g.members().len(),
        protocol_type: g.protocol_type().to_string(),
        protocol: g.protocol().to_string(),
    }
}

fn browsed(m: &rdkafka::message::BorrowedMessage<'_>) -> BrowsedRecord {
    let value = m.payload().map_or(serde_json::Value::Null, |p| {
        serde_json::from_slice(p)
            .unwrap_or_else(|_| serde_json::Value::String(String::from_utf8_lossy(p).into_owned()))
    });
    let headers = super::utf8_headers(m).into_iter().collect();
    BrowsedRecord {
        partition: m.partition(),
        offset: m.offset(),
        timestamp_ms: m.timestamp().to_millis(),
        key: m.key().map(|k| String::from_utf8_lossy(k).into_owned()),
        value,
        headers,
    }
}

/// Decodes the consumer protocol's member assignment: version (i16), then an array of
/// (topic string, array of i32 partitions), then user data (ignored).
fn decode_assignment(bytes: &[u8]) -> BTreeMap<String, Vec<i32>> {
    fn take<'a>(bytes: &mut &'a [u8], n: usize) -> Option<&'a [u8]> {
        let (head, tail) = (bytes.get(..n)?, bytes.get(n..)?);
        *bytes = tail;
        Some(head)
    }
    fn parse(mut b: &[u8]) -> Option<BTreeMap<String, Vec<i32>>> {
        let b = &mut b;
        take(b, 2)?;
        let topics = i32::from_be_bytes(take(b, 4)?.try_into().ok()?);
        let mut out = BTreeMap::new();
        for _ in 0..topics.max(0) {
            let len = i16::from_be_bytes(take(b, 2)?.try_into().ok()?);
            let name = String::from_utf8_lossy(take(b, len.max(0) as usize)?).into_owned();
            let count = i32::from_be_bytes(take(b, 4)?.try_into().ok()?);
            let mut partitions = Vec::new();
            for _ in 0..count.max(0) {
                partitions.push(i32::from_be_bytes(take(b, 4)?.try_into().ok()?));
            }
            partitions.sort_unstable();
            out.insert(name, partitions);
        }
        Some(out)
    }
    parse(bytes).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_a_consumer_assignment() {
        let mut bytes = vec![0, 0, 0, 0, 0, 1, 0, 6];
        bytes.extend(b"orders");
        bytes.extend([0, 0, 0, 2, 0, 0, 0, 3, 0, 0, 0, 1, 0, 0, 0, 0]);
        let assignment = decode_assignment(&bytes);
        assert_eq!(assignment["orders"], vec![1, 3]);
        assert!(decode_assignment(&[1, 2]).is_empty());
    }

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
