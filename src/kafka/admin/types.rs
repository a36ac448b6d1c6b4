//! What the management client answers with.

use std::collections::BTreeMap;

use serde::Serialize;

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
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResetTo {
    /// The low watermark.
    Earliest,
    /// The high watermark.
    Latest,
    /// This offset on every partition.
    Offset(i64),
    /// The first offset whose timestamp is at or after this (milliseconds); the end where
    /// none is.
    Timestamp(i64),
    /// The committed offset moved by this many (the low watermark where nothing is
    /// committed).
    Shift(i64),
    /// Another group's committed offsets (partitions it has none for stay as they are).
    Group(String),
    /// These offsets, by partition.
    Explicit(BTreeMap<i32, i64>),
}

/// One partition of an offset reset: where the group was and where it is (or would be).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct OffsetMove {
    /// Topic.
    pub topic: String,
    /// Partition.
    pub partition: i32,
    /// The group's committed offset before, when it had one.
    pub previous_offset: Option<i64>,
    /// Its committed offset after (for a dry run: what it would be); unset where the reset
    /// leaves none.
    pub committed_offset: Option<i64>,
    /// High watermark.
    pub end_offset: i64,
    /// End minus the new committed offset.
    pub lag: i64,
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
    /// The key's schema id, for a key in the wire format.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key_schema_id: Option<u32>,
    /// A subject the key's schema is registered under.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key_subject: Option<String>,
    /// The value's schema id, for a value in the wire format (the value is then shown
    /// decoded through that schema).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value_schema_id: Option<u32>,
    /// A subject the value's schema is registered under.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value_subject: Option<String>,
    /// Why a wire-format key or value is shown as base64 instead (its schema id is unknown
    /// to the registry, or its bytes do not fit the schema).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub schema_error: Option<String>,
}
