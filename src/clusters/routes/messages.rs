//! Messages written: produce records (to the service's own topics only with
//! `force=true`). Reading them is `search.rs`.

use std::collections::BTreeMap;

use axum::extract::{Path, State};
use axum::{Extension, Json};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::{MAX_PRODUCE, audit_details};
use super::{Target, TopicPath};
use crate::clusters::ClustersState;
use crate::http::audit::AuditDetails;
use crate::http::error::{ApiError, FieldError, Problem};
use crate::http::extract::{JsonBody, QueryParams};
use crate::kafka::RawRecord;
use crate::schemas::Schema;
use crate::schemas::codec::{self, Misfit};
use crate::schemas::registry::{RegistryError, SchemaChoice};
use std::sync::Arc;

/// One record to produce.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProduceRecord {
    /// Record key.
    pub key: Option<String>,
    /// A JSON value; a JSON string is written as its plain text.
    pub value: Value,
    /// Headers.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// Partition; by default Kafka's partitioner picks one from the key.
    #[serde(
        default,
        deserialize_with = "crate::http::extract::optional_whole_number"
    )]
    #[schema(minimum = 0)]
    pub partition: Option<i32>,
}

/// Body of `POST /api/admin/topics/{name}/messages`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProduceRequest {
    /// 1 to 1000 records, each a JSON object.
    #[serde(deserialize_with = "crate::http::extract::objects")]
    #[schema(min_items = 1, max_items = 1000)]
    pub records: Vec<ProduceRecord>,
    /// Write each value against this registered schema, in Confluent's wire format: Avro
    /// binary for an Avro schema, JSON checked against a JSON Schema. A value that does not
    /// fit is `422`, naming the record and the path.
    #[serde(default)]
    pub value_schema: Option<SchemaChoice>,
    /// The same for keys (a key's text is read as JSON when it is JSON, else as a string).
    #[serde(default)]
    pub key_schema: Option<SchemaChoice>,
}

/// Where one produced record landed.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Produced {
    /// Partition.
    pub partition: i32,
    /// Offset.
    pub offset: i64,
}

/// Query of `POST /api/admin/topics/{name}/messages`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ProduceQuery {
    /// Needed to write to one of the service's own topics (a forged order or status is then
    /// a deliberate act).
    #[serde(default)]
    pub force: bool,
}

/// The schemas a produce request writes its keys and values with: ids and schemas.
#[derive(Default)]
struct WriteSchemas {
    key: Option<(u32, Arc<Schema>)>,
    value: Option<(u32, Arc<Schema>)>,
}

impl WriteSchemas {
    async fn choose(
        state: &ClustersState,
        target: &Target,
        body: &ProduceRequest,
    ) -> Result<WriteSchemas, ApiError> {
        if body.key_schema.is_none() && body.value_schema.is_none() {
            return Ok(WriteSchemas::default());
        }
        let Some(registry) = state.schema_registry(&target.cluster, target.is_home())? else {
            return Err(ApiError::Validation(vec![FieldError::new(
                "value_schema",
                "this cluster has no schema registry (its definition's schema_registry)",
            )]));
        };
        let mut chosen = WriteSchemas::default();
        for (field, choice, slot) in [
            ("key_schema", &body.key_schema, &mut chosen.key),
            ("value_schema", &body.value_schema, &mut chosen.value),
        ] {
            if let Some(choice) = choice {
                *slot = Some(registry.choose(choice).await.map_err(|error| match error {
                    RegistryError::Unreachable(_) | RegistryError::Refused { .. } => {
                        ApiError::SchemaRegistry {
                            status: axum::http::StatusCode::SERVICE_UNAVAILABLE,
                            code: "schema_registry_unavailable",
                            error_code: error.error_code(),
                            message: error.to_string(),
                            retry_after: Some(std::time::Duration::from_secs(1)),
                        }
                    }
                    other => ApiError::Validation(vec![FieldError::new(field, other.to_string())]),
                })?);
            }
        }
        Ok(chosen)
    }
}

/// Record `index`'s key or value does not fit its schema.
fn misfit_error(index: usize, part: &str, misfit: Misfit) -> FieldError {
    let path = misfit.path.trim_start_matches('/').replace('/', ".");
    let field = if path.is_empty() {
        format!("records[{index}].{part}")
    } else {
        format!("records[{index}].{part}.{path}")
    };
    FieldError::new(field, misfit.reason)
}

/// A write that Kafka did not take, as the answer to a management request (not an order's:
/// these records carry no key that makes a retry safe).
fn produce_error(error: crate::kafka::ProduceError) -> ApiError {
    use crate::kafka::ProduceError;
    match error {
        ProduceError::TooLarge => ApiError::RecordTooLarge,
        ProduceError::QueueFull => ApiError::KafkaUnavailable {
            retry_after: std::time::Duration::from_secs(1),
            outcome_unknown: false,
            orders: false,
        },
        error if error.is_retryable() => {
            ApiError::write_outcome_unknown("produce through the admin API", &error.to_string())
        }
        error => ApiError::Internal(error.into()),
    }
}

/// Write records to a topic.
///
/// Each record with its key, headers and optional partition; answered once Kafka has
/// acknowledged every record. The service's order topics are refused (409 `topic_protected`)
/// unless `force=true`; its audit, registry, templates and operations topics always are, on
/// the cluster that holds them whatever id reaches it.
#[utoipa::path(post, path = "/topics/{name}/messages", tag = "messages", params(("name" = String, Path, description = "Topic name"), ProduceQuery),
    request_body(content = ProduceRequest, example = json!({"records": [{"key": "k1", "value": {"hello": "world"}, "headers": {"source": "docs"}}]})),
    responses(
        (status = 200, description = "Where each record landed, in request order", body = Vec<Produced>),
        (status = 404, description = "No such topic (`not_found`)", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "One of the service's order topics without `force`, or one of its control topics (`topic_protected`)", body = Problem, content_type = "application/problem+json"), (status = 422, description = "Invalid request (`validation_failed`, `invalid_body`, `kafka_invalid_request`)", body = Problem, content_type = "application/problem+json")))]
pub(super) async fn produce(
    State(state): State<ClustersState>,
    target: Target,
    Path(TopicPath { name }): Path<TopicPath>,
    QueryParams(query): QueryParams<ProduceQuery>,
    JsonBody(body): JsonBody<ProduceRequest>,
) -> Result<(Extension<AuditDetails>, Json<Vec<Produced>>), ApiError> {
    let protected = target.is_home() && state.topic_names.contains(&name);
    if target.is_home() && state.control_topics.contains(&name) {
        // The audit trail, the registry, the templates and the operations are written only
        // by the service: a forged record would read back as its own.
        return Err(ApiError::Conflict {
            code: "topic_protected",
            detail: format!(
                "{name} holds this service's own records (audit, registry, templates or \
                 operations); it is written only by the service, force or not"
            ),
        });
    }
    if protected && !query.force {
        return Err(ApiError::Conflict {
            code: "topic_protected",
            detail: format!(
                "{name} is one of this service's own topics; add force=true to write to it anyway"
            ),
        });
    }
    if body.records.is_empty() || body.records.len() > MAX_PRODUCE {
        return Err(ApiError::Validation(vec![FieldError::new(
            "records",
            format!("1 to {MAX_PRODUCE} records"),
        )]));
    }
    let details = target.admin().describe_topic(&name).await?;
    let partitions = details.partitions.len() as i32;
    let producer = target.clients.producer.clone();
    let schemas = WriteSchemas::choose(&state, &target, &body).await?;
    type Prepared = (Option<Vec<u8>>, Vec<u8>, Vec<(String, String)>, Option<i32>);
    let mut prepared: Vec<Prepared> = Vec::with_capacity(body.records.len());
    let mut misfits = Vec::new();
    for (i, r) in body.records.into_iter().enumerate() {
        let key = match (&schemas.key, r.key) {
            (Some((id, schema)), Some(key)) => {
                let value = serde_json::from_str(&key).unwrap_or(Value::String(key));
                match codec::encode(*id, schema, &value) {
                    Ok(bytes) => Some(bytes),
                    Err(misfit) => {
                        misfits.push(misfit_error(i, "key", misfit));
                        continue;
                    }
                }
            }
            (_, key) => key.map(String::into_bytes),
        };
        let payload = match (&schemas.value, r.value) {
            (Some((id, schema)), value) => match codec::encode(*id, schema, &value) {
                Ok(bytes) => bytes,
                Err(misfit) => {
                    misfits.push(misfit_error(i, "value", misfit));
                    continue;
                }
            },
            (None, Value::String(s)) => s.into_bytes(),
            (None, other) => serde_json::to_vec(&other).unwrap_or_default(),
        };
        prepared.push((key, payload, r.headers.into_iter().collect(), r.partition));
    }
    if !misfits.is_empty() {
        misfits.truncate(20);
        return Err(ApiError::Validation(misfits));
    }
    if let Some(bad) = prepared
        .iter()
        .filter_map(|r| r.3)
        .find(|p| *p < 0 || *p >= partitions)
    {
        return Err(ApiError::KafkaNotFound(format!(
            "partition {bad} of {name} (the topic has {partitions})"
        )));
    }
    let sends = prepared.iter().map(|(key, payload, headers, partition)| {
        producer.send_raw(RawRecord {
            topic: &name,
            key: key.as_deref(),
            payload: Some(payload),
            headers,
            partition: *partition,
            timestamp: None,
        })
    });
    let mut answers = Vec::with_capacity(prepared.len());
    for result in futures::future::join_all(sends).await {
        let delivery = result.map_err(produce_error)?;
        answers.push(Produced {
            partition: delivery.partition,
            offset: delivery.offset,
        });
    }
    let partitions: std::collections::BTreeSet<i32> = answers.iter().map(|a| a.partition).collect();
    let details = audit_details(json!({
        "records": answers.len(),
        "partitions": partitions,
        "forced_write_to_own_topic": protected,
    }));
    Ok((details, Json(answers)))
}

/// Body of `POST …/topics/{name}/messages/copy`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CopyRequest {
    /// The topic the records go to (it must exist).
    pub target_topic: String,
    /// The cluster it is on; the source's when absent.
    pub target_cluster_id: Option<String>,
    /// Copy only the records this CEL expression keeps (as in message search).
    #[schema(max_length = 2000)]
    pub filter: Option<String>,
    /// Copy only records at or after this time (the copy starts there).
    pub from_time: Option<chrono::DateTime<chrono::Utc>>,
    /// Copy only records at or before this time.
    pub until_time: Option<chrono::DateTime<chrono::Utc>>,
    /// Most records copied, 1 to 1,000 (default 100).
    #[serde(
        default,
        deserialize_with = "crate::http::extract::optional_whole_number"
    )]
    #[schema(minimum = 1, maximum = 1000)]
    pub limit: Option<u64>,
}

/// What a copy did.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CopyAnswer {
    /// Each record copied: where it was read and where it was written, oldest first.
    pub copied: Vec<CopiedTo>,
    /// Records read.
    pub scanned: u64,
    /// Why the read stopped (see message search).
    pub stopped: crate::kafka::admin::StopReason,
}

/// One copied record.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CopiedTo {
    /// Source partition.
    pub from_partition: i32,
    /// Source offset.
    pub from_offset: i64,
    /// Target partition.
    pub partition: i32,
    /// Target offset.
    pub offset: i64,
}

/// Copy a handful of records to another topic.
///
/// Reads the topic oldest first (from `from_time`, or the beginning) through `filter` and
/// writes up to `limit` matching records — key, value, headers and timestamp — to
/// `target_topic`, on this cluster or `target_cluster_id`; answered once the target has
/// acknowledged every one. The service's own topics on the cluster it runs on are never
/// written. For a whole slice, tracked and cancellable, use `POST /api/operations/migrate`.
#[utoipa::path(post, path = "/topics/{name}/messages/copy", tag = "messages", params(("name" = String, Path, description = "Topic name")),
    request_body(content = CopyRequest, example = json!({"target_topic": "orders-replay", "filter": "headers[\"event-type\"] == \"OrderFailed\"", "from_time": "2026-11-30T10:00:00Z", "limit": 20})),
    responses(
        (status = 200, description = "The records copied", body = CopyAnswer),
        (status = 403, description = "The key does not reach the target cluster (`forbidden`)", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such topic, target topic or cluster (`not_found`, `cluster_not_found`)", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The target is one of the service's own topics (`topic_protected`)", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid request (`validation_failed`, `invalid_body`)", body = Problem, content_type = "application/problem+json")))]
pub(super) async fn copy(
    State(state): State<ClustersState>,
    target: Target,
    caller: Option<Extension<crate::http::auth::Principal>>,
    Path(TopicPath { name }): Path<TopicPath>,
    JsonBody(body): JsonBody<CopyRequest>,
) -> Result<(Extension<AuditDetails>, Json<CopyAnswer>), ApiError> {
    use crate::kafka::admin::{Direction, ScanEvent, ScanRequest, ScanStart};
    let mut errors = Vec::new();
    let filter = match crate::clusters::filter::RecordFilter::new(body.filter.as_deref(), None) {
        Ok(filter) => Some(filter),
        Err(error) => {
            errors.push(FieldError::new("filter", error.to_string()));
            None
        }
    };
    if body
        .filter
        .as_ref()
        .is_some_and(|f| f.len() > crate::clusters::filter::MAX_FILTER_LEN)
    {
        errors.push(FieldError::new("filter", "at most 2000 characters"));
    }
    if let Err(why) = crate::kafka::validate_topic_name(&body.target_topic) {
        errors.push(FieldError::new("target_topic", why));
    }
    let limit = body.limit.unwrap_or(100);
    if !(1..=1_000).contains(&limit) {
        errors.push(FieldError::new("limit", "1 to 1000"));
    }
    if let (Some(from), Some(until)) = (body.from_time, body.until_time)
        && from > until
    {
        errors.push(FieldError::new("from_time", "must not be after until_time"));
    }
    let (Some(filter), true) = (filter, errors.is_empty()) else {
        return Err(ApiError::Validation(errors));
    };
    let to_id = body
        .target_cluster_id
        .clone()
        .unwrap_or_else(|| target.cluster.id.clone());
    super::refuse_unreached(&state.clusters, caller.as_deref(), [&to_id]).await?;
    let to = state
        .clusters
        .get(&to_id)
        .ok_or_else(|| ApiError::ClusterNotFound(to_id.clone()))?;
    let registry = &state.clusters;
    let to_home = to.home || registry.identity(&to).await? == registry.home_identity().await?;
    if to_home
        && (state.topic_names.contains(&body.target_topic)
            || state.control_topics.contains(&body.target_topic))
    {
        return Err(ApiError::Conflict {
            code: "topic_protected",
            detail: format!(
                "{} is one of this service's own topics; a copy never writes it",
                body.target_topic
            ),
        });
    }
    let clients = registry.clients(&to)?;
    clients.admin.describe_topic(&body.target_topic).await?;
    // The copy's scan holds a read-ahead: it counts with the message streams.
    let _permit = state.messages.open()?;
    let request = ScanRequest {
        topic: name.clone(),
        partition: None,
        direction: Direction::Forward,
        start: body.from_time.map_or(ScanStart::Beginning, |t| {
            ScanStart::Time(t.timestamp_millis())
        }),
        from_ms: body.from_time.map(|t| t.timestamp_millis()),
        until_ms: body.until_time.map(|t| t.timestamp_millis()),
        limit,
        max_scan: state.messages.max_scan,
        budget: state.messages.scan_budget,
        needs_headers: filter.needs_headers(),
        follow: false,
        raw: true,
        decoder: None,
    };
    let keep = |event: ScanEvent<'_>| match event {
        ScanEvent::Raw(record) => Some(record),
        _ => None,
    };
    let (records, outcome) = target
        .admin()
        .scan_into(request, move || filter.matcher(), keep)
        .await?;
    let sends = records.iter().map(|r| {
        clients.producer.send_raw(RawRecord {
            topic: &body.target_topic,
            key: r.key.as_deref(),
            payload: r.value.as_deref(),
            headers: &r.headers,
            partition: None,
            timestamp: r.timestamp_ms,
        })
    });
    let mut copied = Vec::with_capacity(records.len());
    for (record, result) in records.iter().zip(futures::future::join_all(sends).await) {
        let delivery = result.map_err(produce_error)?;
        copied.push(CopiedTo {
            from_partition: record.partition,
            from_offset: record.offset,
            partition: delivery.partition,
            offset: delivery.offset,
        });
    }
    let details = audit_details(json!({
        "target_cluster": to_id,
        "target_topic": body.target_topic,
        "copied": copied.len(),
        "filter": body.filter,
    }));
    Ok((
        details,
        Json(CopyAnswer {
            copied,
            scanned: outcome.scanned,
            stopped: outcome.stopped,
        }),
    ))
}
