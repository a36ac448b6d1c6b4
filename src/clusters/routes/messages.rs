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
        (status = 409, description = "One of the service's order topics without `force`, or one of its control topics (`topic_protected`)", body = Problem, content_type = "application/problem+json"), (status = 422, description = "Invalid request (`validation_failed`, `invalid_body`, `kafka_invalid_request`)", body = Problem, content_type = "application/problem+json"), (status = 503, description = "Kafka unavailable (`kafka_unavailable`)", body = Problem, content_type = "application/problem+json", headers(("Retry-After" = u64, description = "Seconds to wait")))))]
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
    type Prepared = (Option<String>, Vec<u8>, Vec<(String, String)>, Option<i32>);
    let prepared: Vec<Prepared> = body
        .records
        .into_iter()
        .map(|r| {
            let payload = match r.value {
                Value::String(s) => s.into_bytes(),
                other => serde_json::to_vec(&other).unwrap_or_default(),
            };
            (r.key, payload, r.headers.into_iter().collect(), r.partition)
        })
        .collect();
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
            key: key.as_deref().map(str::as_bytes),
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
