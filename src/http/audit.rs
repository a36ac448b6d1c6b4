//! The audit trail: one JSON record per admin mutation and per refused key (401, 403), on
//! the audit topic (`orderflow.audit` by default) and in the log under target `audit`. A
//! record names the key by its name (never the key), the client address, the route and the
//! resource, the parameters with secret-looking values redacted, the outcome, and the
//! request and trace ids. Auditing never blocks or fails the request it records: the record
//! is sent in the background, and one that cannot be written is counted and logged.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{MatchedPath, RawPathParams, Request};
use axum::http::request::Parts;
use axum::response::Response;
use chrono::{DateTime, Utc};
use prometheus::IntCounterVec;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::http::error::ProblemCode;
use crate::kafka::{BaseProducer, OutgoingRecord, is_secret_option};

/// What a redacted value is replaced with.
pub const REDACTED: &str = "[redacted]";

/// One audited request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditRecord {
    /// When the answer was sent.
    pub at: DateTime<Utc>,
    /// The name of the key used, if a known key was presented.
    pub key: Option<String>,
    /// The client's address (the TCP peer).
    pub client: String,
    /// HTTP method.
    pub method: String,
    /// The route template (`/api/admin/topics/{name}`).
    pub route: String,
    /// The path requested (`/api/admin/topics/payments`).
    pub resource: String,
    /// Path and query parameters, and what the handler reports it did (`details`), with
    /// secret-looking values redacted.
    pub parameters: Value,
    /// HTTP status answered.
    pub status: u16,
    /// The problem code, when the answer was a problem.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    /// The request's id (`x-request-id`).
    pub request_id: String,
    /// The W3C trace id.
    pub trace_id: String,
    /// On a refusal's record: how many more refusals of the same client (key, or address
    /// without one) with the same code followed it in its window; the details are the
    /// first's. Absent on a record of one request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repeated: Option<u64>,
}

/// What a handler did, for the audit record of its request (put in the response's
/// extensions; never sent to the client).
#[derive(Debug, Clone)]
pub struct AuditDetails(pub Value);

/// Starts a record from the request: who, where, what.
pub async fn begin(parts: &mut Parts, client: IpAddr, key: Option<&str>) -> AuditRecord {
    let mut parameters = Map::new();
    if let Ok(path) =
        <RawPathParams as axum::extract::FromRequestParts<()>>::from_request_parts(parts, &()).await
    {
        let path: Map<String, Value> = path
            .iter()
            .map(|(name, value)| (name.to_string(), Value::from(value)))
            .collect();
        if !path.is_empty() {
            parameters.insert("path".into(), Value::Object(path));
        }
    }
    // Inside a nested router the URI lost its prefix; the original one has it.
    let uri = parts
        .extensions
        .get::<axum::extract::OriginalUri>()
        .map_or_else(|| parts.uri.clone(), |o| o.0.clone());
    let query = axum::extract::Query::<BTreeMap<String, String>>::try_from_uri(&uri)
        .map(|q| q.0)
        .unwrap_or_default();
    if !query.is_empty() {
        parameters.insert(
            "query".into(),
            Value::Object(
                query
                    .into_iter()
                    .map(|(k, v)| (k, Value::from(v)))
                    .collect(),
            ),
        );
    }
    AuditRecord {
        at: Utc::now(),
        key: key.map(str::to_string),
        client: client.to_string(),
        method: parts.method.to_string(),
        route: parts
            .extensions
            .get::<MatchedPath>()
            .map_or_else(|| uri.path().to_string(), |m| m.as_str().to_string()),
        resource: uri.path().to_string(),
        parameters: Value::Object(parameters),
        status: 0,
        code: None,
        request_id: parts
            .headers
            .get("x-request-id")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string(),
        trace_id: crate::trace::TraceContext::current().trace_id(),
        repeated: None,
    }
}

/// [`begin`] for a request whose parts are not taken apart yet.
pub async fn begin_request(
    request: Request,
    client: IpAddr,
    key: Option<&str>,
) -> (AuditRecord, Request) {
    let (mut parts, body) = request.into_parts();
    let record = begin(&mut parts, client, key).await;
    (record, Request::from_parts(parts, body))
}

impl AuditRecord {
    /// Completes the record with the answer: status, problem code, the handler's details.
    pub fn finish(mut self, response: &Response) -> Self {
        self.at = Utc::now();
        self.status = response.status().as_u16();
        self.code = response
            .extensions()
            .get::<ProblemCode>()
            .map(|c| c.0.clone());
        if let Some(AuditDetails(details)) = response.extensions().get::<AuditDetails>()
            && let Value::Object(parameters) = &mut self.parameters
        {
            parameters.insert("details".into(), details.clone());
        }
        redact(&mut self.parameters);
        self
    }
}

/// Replaces, at any depth, the value of every field whose name looks secret (`password`,
/// `secret`, `token`, `credential`, `key` as a word, and librdkafka's secret options); a
/// `configs` map of `name → value` is redacted by config name the same way.
pub fn redact(value: &mut Value) {
    match value {
        Value::Object(map) => {
            for (name, field) in map.iter_mut() {
                if looks_secret(name) {
                    *field = Value::from(REDACTED);
                } else {
                    redact(field);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(redact),
        _ => {}
    }
}

fn looks_secret(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    is_secret_option(&lower)
        || lower
            .split(|c: char| !c.is_ascii_alphanumeric())
            .any(|word| word == "key" || word == "apikey" || word == "authorization")
}

/// Writes audit records to the audit topic and the log.
#[derive(Clone)]
pub struct AuditLog {
    producer: BaseProducer<AuditRecord>,
    topic: String,
    /// `orderflow_audit_records_total{outcome}`: written, failed.
    records: IntCounterVec,
    refusals: Arc<RefusalWindow>,
}

/// Refusals of the current window, by client and code: the first of each is written at
/// once, the rest counted and written as one record when the window ends. Clients beyond
/// [`MAX_CLIENTS_PER_WINDOW`] share one count.
struct RefusalWindow {
    length: Duration,
    seen: Mutex<HashMap<(String, String), (AuditRecord, u64)>>,
}

/// Most clients whose refusals are counted apart in one window.
const MAX_CLIENTS_PER_WINDOW: usize = 1000;
/// The client under which refusals beyond [`MAX_CLIENTS_PER_WINDOW`] are counted.
const OTHER_CLIENTS: &str = "*";

impl AuditLog {
    /// An audit log writing through `producer` to `topic`; refusals are aggregated per
    /// `refusal_window`.
    pub fn new(
        producer: BaseProducer<AuditRecord>,
        topic: String,
        records: IntCounterVec,
        refusal_window: Duration,
    ) -> Self {
        AuditLog {
            producer,
            topic,
            records,
            refusals: Arc::new(RefusalWindow {
                length: refusal_window,
                seen: Mutex::new(HashMap::new()),
            }),
        }
    }

    /// Records a refused request (401, 403): the first of its client and code in the window
    /// at once, the others as one count at the window's end, so that a flood of refusals
    /// cannot flood the audit topic.
    pub fn record_refusal(&self, record: AuditRecord) {
        let client = record.key.clone().unwrap_or_else(|| record.client.clone());
        let code = record.code.clone().unwrap_or_default();
        let mut seen = self.refusals.seen.lock().unwrap_or_else(|e| e.into_inner());
        let slot = if seen.len() < MAX_CLIENTS_PER_WINDOW
            || seen.contains_key(&(client.clone(), code.clone()))
        {
            (client, code)
        } else {
            (OTHER_CLIENTS.to_string(), code)
        };
        match seen.get_mut(&slot) {
            Some((_, repeated)) => *repeated += 1,
            None if slot.0 == OTHER_CLIENTS => {
                let mut first = record;
                first.client = OTHER_CLIENTS.into();
                first.key = None;
                seen.insert(slot, (first, 1));
            }
            None => {
                seen.insert(slot, (record.clone(), 0));
                drop(seen);
                self.record(record);
            }
        }
    }

    /// Writes the counts of each window's repeated refusals when it ends, until shutdown
    /// (then once more).
    pub async fn write_refusal_counts(self, shutdown: tokio_util::sync::CancellationToken) {
        loop {
            let stopping = tokio::select! {
                () = shutdown.cancelled() => true,
                () = tokio::time::sleep(self.refusals.length) => false,
            };
            let ended =
                std::mem::take(&mut *self.refusals.seen.lock().unwrap_or_else(|e| e.into_inner()));
            for (_, (mut first, repeated)) in ended {
                if repeated > 0 {
                    first.repeated = Some(repeated);
                    self.record(first);
                }
            }
            if stopping {
                return;
            }
        }
    }

    /// Logs the record and sends it in the background; never waits for Kafka.
    pub fn record(&self, record: AuditRecord) {
        let json = serde_json::to_string(&record).unwrap_or_default();
        tracing::info!(target: "audit", record = %json, "audit");
        let log = self.clone();
        tokio::spawn(async move {
            let sent = log
                .producer
                .send(OutgoingRecord {
                    topic: &log.topic,
                    key: &record.resource,
                    value: &record,
                    headers: vec![],
                    schema_id: None,
                })
                .await;
            match sent {
                Ok(_) => log.records.with_label_values(&["written"]).inc(),
                Err(error) => {
                    log.records.with_label_values(&["failed"]).inc();
                    tracing::warn!(
                        target: "audit",
                        %error,
                        request_id = record.request_id,
                        "audit record not written to Kafka (it is in this log)"
                    );
                }
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn secret_looking_values_are_redacted_at_any_depth() {
        let mut value = json!({
            "path": {"name": "payments"},
            "details": {
                "configs": {"retention.ms": "1000", "sasl.password": "hunter2"},
                "api_key": "ofk_abc",
                "nested": [{"client_secret": "s"}, {"keyword": "kept"}]
            }
        });
        redact(&mut value);
        assert_eq!(value["path"]["name"], "payments");
        assert_eq!(value["details"]["configs"]["retention.ms"], "1000");
        assert_eq!(value["details"]["configs"]["sasl.password"], REDACTED);
        assert_eq!(value["details"]["api_key"], REDACTED);
        assert_eq!(value["details"]["nested"][0]["client_secret"], REDACTED);
        assert_eq!(value["details"]["nested"][1]["keyword"], "kept");
    }
}
