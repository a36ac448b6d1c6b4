//! Messages read: search every partition (or one) from a position or a time, through a
//! filter, with bounded work and a cursor; answered as one JSON page, streamed as SSE, or
//! exported as NDJSON (by `Accept`); and the live tail.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use chrono::{DateTime, Utc};
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

use super::{Target, TopicPath};
use crate::clusters::ClustersState;
use crate::clusters::filter::{MAX_FILTER_LEN, RecordFilter};
use crate::clusters::masking::mask;
use crate::http::auth::{Principal, Scope};
use crate::http::error::{ApiError, Problem};
use crate::http::extract::QueryParams;
use crate::kafka::admin::{
    BrowsedRecord, Direction, ScanEvent, ScanProgress, ScanRequest, ScanStart, StopReason,
};
use crate::kafka::wire::Decoder;

/// Most results one JSON page holds.
pub const MAX_PAGE: u64 = 1_000;

/// Query of `GET …/topics/{name}/messages`.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct SearchQuery {
    /// One partition; without it, every partition, merged by timestamp.
    #[param(minimum = 0)]
    pub partition: Option<i32>,
    /// `beginning` (oldest first) or `end` (newest first, the default).
    #[param(value_type = Option<SearchFrom>, inline)]
    pub from: Option<String>,
    /// Start at this offset of `partition` (oldest first, unless `direction=backward`).
    #[param(minimum = 0)]
    pub from_offset: Option<i64>,
    /// The same as `from_offset`.
    #[param(minimum = 0)]
    pub offset: Option<i64>,
    /// RFC 3339: records at or after it (a search starts there, by Kafka's offsets for
    /// times).
    pub from_time: Option<String>,
    /// RFC 3339: records at or before it (a newest-first search starts there).
    pub until_time: Option<String>,
    /// `forward` (oldest first) or `backward` (newest first). Default: forward when the
    /// search starts at `beginning`, an offset or `from_time`; backward otherwise.
    #[param(value_type = Option<SearchDirection>, inline)]
    pub direction: Option<String>,
    /// A CEL expression over `key`, `value` (JSON when it parses, else a string), `headers`
    /// (a map), `partition`, `offset` and `timestamp`, e.g.
    /// `value.customer_id == "cust-42" && value.total > 100.0`.
    #[param(max_length = 2000)]
    pub filter: Option<String>,
    /// Text that the key, the value or a header value must contain (case-sensitive).
    #[param(max_length = 2000)]
    pub contains: Option<String>,
    /// Most results: 1 to 1,000 for a JSON page (default 20); a stream or an export has
    /// no default bound but `max_scan`.
    #[param(minimum = 1)]
    pub limit: Option<u64>,
    /// Most records read (default and ceiling: `admin.max_scan`).
    #[param(minimum = 1)]
    pub max_scan: Option<u64>,
    /// Continue a search where it stopped: the `next` of its answer (send the same query
    /// with it).
    pub cursor: Option<String>,
}

/// Where a search starts without an offset or a time.
#[derive(utoipa::ToSchema)]
#[schema(rename_all = "lowercase")]
#[allow(dead_code)]
enum SearchFrom {
    /// The oldest records, oldest first.
    Beginning,
    /// The newest records, newest first.
    End,
}

/// Which way a search reads.
#[derive(utoipa::ToSchema)]
#[schema(rename_all = "lowercase")]
#[allow(dead_code)]
enum SearchDirection {
    /// Oldest first.
    Forward,
    /// Newest first.
    Backward,
}

/// One page of a search.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SearchPage {
    /// The records that matched, in the search's order.
    pub records: Vec<BrowsedRecord>,
    /// How the search ended.
    #[serde(flatten)]
    pub summary: SearchSummary,
}

/// How a search ended: the last event of a stream, and part of every page.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct SearchSummary {
    /// Records read.
    pub scanned: u64,
    /// Records that matched.
    pub matched: u64,
    /// Why it stopped: `end` (every partition read to its end or the time window's),
    /// `limit`, `max_scan`, `time_budget` or `cancelled`.
    pub stopped: StopReason,
    /// Send as `cursor` (with the same query) to continue exactly where this stopped.
    pub next: String,
}

/// How a search is answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Shape {
    Page,
    Events,
    Export,
}

/// Search a topic's records.
///
/// Every partition (or one), merged by timestamp — oldest first from `from=beginning`, an
/// offset or `from_time`; newest first from the end (the default) or `until_time` — through
/// `filter` (CEL) and `contains`. Bounded by `limit` results, `max_scan` records and a
/// time budget; the answer says what it read and why it stopped, and its `next` cursor
/// continues exactly there. Nothing is committed, no group is joined. With
/// `Accept: text/event-stream` the search streams: a `record` event per match, `progress`
/// at least once a second, and a last `done` event (the summary). With
/// `Accept: application/x-ndjson` it is an export: one record per line, then a last line
/// `{"done": summary}`.
#[utoipa::path(get, path = "/topics/{name}/messages", tag = "messages", params(("name" = String, Path, description = "Topic name"), SearchQuery),
    responses(
        (status = 200, description = "The records that matched and how the search ended; or, by `Accept`, the same as an SSE stream or an NDJSON export",
            content((SearchPage = "application/json"), (String = "text/event-stream"), (String = "application/x-ndjson"))),
        (status = 400, description = "Bad query (`invalid_query`)", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "A filter that does not parse (`validation_failed`; the error names its line and column)", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such topic or partition (`not_found`)", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "Kafka unavailable (`kafka_unavailable`), or too many message streams open (`overloaded`)", body = Problem, content_type = "application/problem+json", headers(("Retry-After" = u64, description = "Seconds to wait")))))]
pub(super) async fn search(
    State(state): State<ClustersState>,
    target: Target,
    Path(TopicPath { name }): Path<TopicPath>,
    headers: HeaderMap,
    caller: Option<Extension<Principal>>,
    QueryParams(query): QueryParams<SearchQuery>,
) -> Result<Response, ApiError> {
    let shape = shape(&headers);
    let masked = masked_paths(&state, caller.as_deref(), &name);
    let (mut request, filter) = plan(&state, name, &query, shape)?;
    request.decoder = decoder(&state, &target)?;
    if shape == Shape::Page {
        // A page's scan holds a read-ahead too: it counts with the streams.
        let _permit = state.messages.open()?;
        return page(&target, request, filter, masked).await;
    }
    exists(&target, &request).await?;
    let permit = state.messages.open()?;
    let (sender, receiver) = mpsc::channel::<Item>(256);
    let admin = target.admin().clone();
    let direction = request.direction;
    tokio::spawn(async move {
        let _permit = permit;
        let events = sender.clone();
        let sink = move |event: ScanEvent<'_>| match event {
            ScanEvent::Started(_) | ScanEvent::Raw(_) => true,
            ScanEvent::Match(mut record) => {
                mask(&mut record.value, &masked);
                events.blocking_send(Item::Record(record)).is_ok()
            }
            ScanEvent::Progress(progress) => events
                .blocking_send(Item::Progress(progress.clone()))
                .is_ok(),
        };
        let last = match admin.scan(request, move || filter.matcher(), sink).await {
            Ok(outcome) => Item::Done(SearchSummary {
                scanned: outcome.scanned,
                matched: outcome.matched,
                stopped: outcome.stopped,
                next: encode_cursor(direction, &outcome.next),
            }),
            Err(error) => Item::Failed(ApiError::from(error).problem()),
        };
        let _ = sender.send(last).await;
    });
    let items = received(receiver);
    Ok(match shape {
        Shape::Events => Sse::new(items.map(|item| Ok::<_, Infallible>(item.event())))
            .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
            .into_response(),
        _ => {
            let lines = items.filter_map(|item| async move { item.line() });
            let mut response =
                axum::body::Body::from_stream(lines.map(Ok::<_, Infallible>)).into_response();
            response.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/x-ndjson"),
            );
            response
        }
    })
}

/// A search answered as one JSON page.
async fn page(
    target: &Target,
    request: ScanRequest,
    filter: RecordFilter,
    masked: Vec<Vec<String>>,
) -> Result<Response, ApiError> {
    let direction = request.direction;
    let keep = move |event: ScanEvent<'_>| match event {
        ScanEvent::Match(mut record) => {
            mask(&mut record.value, &masked);
            Some(record)
        }
        _ => None,
    };
    let (records, outcome) = target
        .admin()
        .scan_into(request, move || filter.matcher(), keep)
        .await?;
    Ok(Json(SearchPage {
        records,
        summary: SearchSummary {
            scanned: outcome.scanned,
            matched: outcome.matched,
            stopped: outcome.stopped,
            next: encode_cursor(direction, &outcome.next),
        },
    })
    .into_response())
}

/// A stream answers `200` before it reads anything: a topic or partition that does not
/// exist is `404` first, not an `error` event after.
async fn exists(target: &Target, request: &ScanRequest) -> Result<(), ApiError> {
    let topic = target.admin().describe_topic(&request.topic).await?;
    match request.partition {
        Some(p) if !topic.partitions.iter().any(|q| q.partition == p) => Err(
            ApiError::KafkaNotFound(format!("partition {p} of {}", request.topic)),
        ),
        _ => Ok(()),
    }
}

/// What a streamed search sends, in order.
enum Item {
    Record(BrowsedRecord),
    Progress(ScanProgress),
    Done(SearchSummary),
    Failed(Problem),
}

impl Item {
    fn event(self) -> Event {
        let (name, data) = match self {
            Item::Record(record) => ("record", serde_json::to_string(&record)),
            Item::Progress(progress) => ("progress", serde_json::to_string(&progress)),
            Item::Done(summary) => ("done", serde_json::to_string(&summary)),
            Item::Failed(problem) => ("error", serde_json::to_string(&problem)),
        };
        Event::default().event(name).data(data.unwrap_or_default())
    }

    fn line(self) -> Option<String> {
        let line = match self {
            Item::Record(record) => serde_json::to_string(&record),
            Item::Progress(_) => return None,
            Item::Done(summary) => serde_json::to_string(&serde_json::json!({ "done": summary })),
            Item::Failed(problem) => {
                serde_json::to_string(&serde_json::json!({ "error": problem }))
            }
        };
        line.ok().map(|l| l + "\n")
    }
}

/// What a channel receives, as a stream.
fn received<T: Send + 'static>(
    mut receiver: mpsc::Receiver<T>,
) -> impl futures::Stream<Item = T> + Send + 'static {
    futures::stream::poll_fn(move |cx| receiver.poll_recv(cx))
}

/// The field paths hidden from this caller on `topic`: none for a key with
/// `admin:read-unmasked`.
fn masked_paths(
    state: &ClustersState,
    caller: Option<&Principal>,
    topic: &str,
) -> Vec<Vec<String>> {
    let unmasked = caller
        .and_then(|c| c.key.as_ref())
        .is_some_and(|key| key.allows(Scope::AdminReadUnmasked));
    if unmasked {
        Vec::new()
    } else {
        state.messages.masking.paths(topic)
    }
}

fn shape(headers: &HeaderMap) -> Shape {
    let accept = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if accept.contains("text/event-stream") {
        Shape::Events
    } else if accept.contains("application/x-ndjson") {
        Shape::Export
    } else {
        Shape::Page
    }
}

/// A filter that does not parse: 422, naming where.
fn filter_refused(error: crate::clusters::filter::FilterError) -> ApiError {
    ApiError::Validation(vec![crate::http::error::FieldError::new(
        "filter",
        error.to_string(),
    )])
}

fn bad(reason: impl Into<String>) -> ApiError {
    ApiError::InvalidQuery(reason.into())
}

fn time(name: &str, text: &Option<String>) -> Result<Option<i64>, ApiError> {
    text.as_deref()
        .map(|t| {
            DateTime::parse_from_rfc3339(t)
                .map(|t| t.with_timezone(&Utc).timestamp_millis())
                .map_err(|_| bad(format!("{name} {t:?} is not an RFC 3339 time")))
        })
        .transpose()
}

/// Decodes the cluster's wire-format records through its schema registry, when it has one.
fn decoder(state: &ClustersState, target: &Target) -> Result<Option<Decoder>, ApiError> {
    let registry = state.schema_registry(&target.cluster, target.is_home())?;
    Ok(registry.map(|r| Decoder(r.decoder(tokio::runtime::Handle::current()))))
}

/// The scan a query asks for, and its filter; every refusal names the parameter.
fn plan(
    state: &ClustersState,
    topic: String,
    query: &SearchQuery,
    shape: Shape,
) -> Result<(ScanRequest, RecordFilter), ApiError> {
    let limits = &state.messages;
    for (name, text) in [("filter", &query.filter), ("contains", &query.contains)] {
        if text.as_ref().is_some_and(|t| t.len() > MAX_FILTER_LEN) {
            return Err(bad(format!(
                "{name} is longer than {MAX_FILTER_LEN} characters"
            )));
        }
    }
    let filter = RecordFilter::new(query.filter.as_deref(), query.contains.as_deref())
        .map_err(filter_refused)?;
    if query.partition.is_some_and(|p| p < 0) {
        return Err(bad("partition must not be negative"));
    }
    let from_offset = match (query.from_offset, query.offset) {
        (Some(_), Some(_)) => return Err(bad("give from_offset or offset, not both")),
        (a, b) => a.or(b),
    };
    if from_offset.is_some_and(|o| o < 0) {
        return Err(bad("from_offset must not be negative"));
    }
    if from_offset.is_some() && query.partition.is_none() {
        return Err(bad("from_offset needs a partition"));
    }
    let from_ms = time("from_time", &query.from_time)?;
    let until_ms = time("until_time", &query.until_time)?;
    if let (Some(from), Some(until)) = (from_ms, until_ms)
        && from > until
    {
        return Err(bad("from_time must not be after until_time"));
    }
    let from = match query.from.as_deref() {
        None => None,
        Some(f @ ("beginning" | "end")) => Some(f),
        Some(other) => return Err(bad(format!("from={other:?}: beginning or end"))),
    };
    let positioned = [
        from.is_some(),
        from_offset.is_some(),
        query.cursor.is_some(),
    ];
    if positioned.iter().filter(|p| **p).count() > 1 {
        return Err(bad("give one of from, from_offset and cursor"));
    }
    let cursor = query.cursor.as_deref().map(decode_cursor).transpose()?;
    let direction = match (query.direction.as_deref(), &cursor) {
        (Some("forward"), None) => Direction::Forward,
        (Some("backward"), None) => Direction::Backward,
        (Some(other), None) => {
            return Err(bad(format!("direction={other:?}: forward or backward")));
        }
        (_, Some((direction, _))) => *direction,
        (None, None) => {
            if from == Some("beginning") || from_offset.is_some() || from_ms.is_some() {
                Direction::Forward
            } else {
                Direction::Backward
            }
        }
    };
    let start = match (cursor, from_offset, from, direction) {
        (Some((_, positions)), ..) => ScanStart::Positions(positions),
        (None, Some(offset), ..) => ScanStart::Offset(offset),
        (None, None, Some("beginning"), Direction::Backward) => {
            return Err(bad("from=beginning reads forward"));
        }
        (None, None, Some("end"), Direction::Forward) => {
            return Err(bad(
                "from=end reads backward; to follow new records, use …/messages/live",
            ));
        }
        (None, None, Some("beginning"), _) => ScanStart::Beginning,
        (None, None, _, Direction::Forward) => {
            from_ms.map_or(ScanStart::Beginning, ScanStart::Time)
        }
        (None, None, _, Direction::Backward) => until_ms.map_or(ScanStart::End, ScanStart::Time),
    };
    let limit = match (query.limit, shape) {
        (Some(0), _) => return Err(bad("limit must be at least 1")),
        (Some(n), Shape::Page) if n > MAX_PAGE => {
            return Err(bad(format!(
                "limit must be 1 to {MAX_PAGE}; stream or export for more"
            )));
        }
        (Some(n), _) => n,
        (None, Shape::Page) => 20,
        (None, _) => u64::MAX,
    };
    let max_scan = match query.max_scan {
        Some(0) => return Err(bad("max_scan must be at least 1")),
        Some(n) if n > limits.max_scan => {
            return Err(bad(format!("max_scan must be at most {}", limits.max_scan)));
        }
        Some(n) => n,
        None => limits.max_scan,
    };
    let request = ScanRequest {
        topic,
        partition: query.partition,
        direction,
        start,
        from_ms,
        until_ms,
        limit,
        max_scan,
        budget: if shape == Shape::Page {
            limits.scan_budget
        } else {
            limits.stream_budget
        },
        needs_headers: filter.needs_headers(),
        follow: false,
        raw: false,
        decoder: None,
    };
    Ok((request, filter))
}

/// A cursor: the direction, then each partition's position (`f.0-120.1-98`).
fn encode_cursor(direction: Direction, positions: &BTreeMap<i32, i64>) -> String {
    let mut text = String::from(match direction {
        Direction::Forward => "f",
        Direction::Backward => "b",
    });
    for (p, o) in positions {
        text.push_str(&format!(".{p}-{o}"));
    }
    text
}

fn decode_cursor(text: &str) -> Result<(Direction, BTreeMap<i32, i64>), ApiError> {
    let refused = || bad("cursor is not one this service gave out");
    let mut parts = text.split('.');
    let direction = match parts.next() {
        Some("f") => Direction::Forward,
        Some("b") => Direction::Backward,
        _ => return Err(refused()),
    };
    let positions = positions(parts).ok_or_else(refused)?;
    Ok((direction, positions))
}

/// `partition-offset` pairs.
fn positions<'a>(pairs: impl Iterator<Item = &'a str>) -> Option<BTreeMap<i32, i64>> {
    pairs
        .map(|pair| {
            let (p, o) = pair.split_once('-')?;
            let (p, o) = (p.parse::<i32>().ok()?, o.parse::<i64>().ok()?);
            (p >= 0 && o >= 0).then_some((p, o))
        })
        .collect()
}

/// Query of `GET …/topics/{name}/messages/live`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct TailQuery {
    /// One partition; without it, every partition.
    #[param(minimum = 0)]
    pub partition: Option<i32>,
    /// A CEL expression, as for a search.
    #[param(max_length = 2000)]
    pub filter: Option<String>,
    /// Text the key, the value or a header value must contain.
    #[param(max_length = 2000)]
    pub contains: Option<String>,
}

/// Follow a topic's new records.
///
/// An SSE stream of the records written from now on (or, with `Last-Event-ID`, from the
/// position an earlier event of this stream gave), each as a `record` event whose id is the
/// position after it, so a reconnect continues without a gap; keep-alives while idle. A
/// client that does not keep up is sent a last `dropped` event and closed rather than
/// buffered without bound; at most `admin.max_message_streams` streams are open per
/// instance.
#[utoipa::path(get, path = "/topics/{name}/messages/live", tag = "messages", params(("name" = String, Path, description = "Topic name"), TailQuery,
        ("Last-Event-ID" = Option<String>, Header, description = "Continue after this event")),
    responses(
        (status = 200, description = "The stream", content_type = "text/event-stream", body = String),
        (status = 400, description = "Bad query or Last-Event-ID (`invalid_query`)", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "A filter that does not parse (`validation_failed`)", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such topic or partition (`not_found`)", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "Too many message streams open (`overloaded`) or Kafka unavailable (`kafka_unavailable`)", body = Problem, content_type = "application/problem+json", headers(("Retry-After" = u64, description = "Seconds to wait")))))]
pub(super) async fn tail(
    State(state): State<ClustersState>,
    target: Target,
    Path(TopicPath { name }): Path<TopicPath>,
    headers: HeaderMap,
    caller: Option<Extension<Principal>>,
    QueryParams(query): QueryParams<TailQuery>,
) -> Result<Response, ApiError> {
    let masked = masked_paths(&state, caller.as_deref(), &name);
    let filter = RecordFilter::new(query.filter.as_deref(), query.contains.as_deref())
        .map_err(filter_refused)?;
    if query.partition.is_some_and(|p| p < 0) {
        return Err(bad("partition must not be negative"));
    }
    let start = match headers.get("last-event-id").map(|v| v.to_str()) {
        None => ScanStart::End,
        Some(Ok(id)) => ScanStart::Positions(
            positions(id.split('.'))
                .ok_or_else(|| bad("Last-Event-ID is not one this stream gave"))?,
        ),
        Some(Err(_)) => return Err(bad("Last-Event-ID is not one this stream gave")),
    };
    let request = ScanRequest {
        topic: name,
        partition: query.partition,
        direction: Direction::Forward,
        start,
        from_ms: None,
        until_ms: None,
        limit: u64::MAX,
        max_scan: u64::MAX,
        budget: Duration::MAX,
        needs_headers: filter.needs_headers(),
        follow: true,
        raw: false,
        decoder: decoder(&state, &target)?,
    };
    exists(&target, &request).await?;
    let permit = state.messages.open()?;
    let (sender, receiver) = mpsc::channel::<Event>(256);
    let admin = target.admin().clone();
    let shutdown = state.shutdown.clone();
    tokio::spawn(async move {
        let _permit = permit;
        let events = sender.clone();
        let mut at: BTreeMap<i32, i64> = BTreeMap::new();
        let dropped = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let lagging = dropped.clone();
        let stopping = shutdown.clone();
        let sink = move |event: ScanEvent<'_>| match event {
            ScanEvent::Raw(_) => true,
            ScanEvent::Started(positions) => {
                at = positions.clone();
                true
            }
            ScanEvent::Match(mut record) => {
                mask(&mut record.value, &masked);
                at.insert(record.partition, record.offset + 1);
                let id = at
                    .iter()
                    .map(|(p, o)| format!("{p}-{o}"))
                    .collect::<Vec<_>>()
                    .join(".");
                let data = serde_json::to_string(&record).unwrap_or_default();
                let event = Event::default().event("record").id(id).data(data);
                match events.try_send(event) {
                    Ok(()) => true,
                    Err(mpsc::error::TrySendError::Full(_)) => {
                        lagging.store(true, std::sync::atomic::Ordering::Release);
                        false
                    }
                    Err(mpsc::error::TrySendError::Closed(_)) => false,
                }
            }
            // Once a second: the client may have gone, or the service be stopping.
            ScanEvent::Progress(_) => !events.is_closed() && !stopping.is_cancelled(),
        };
        let ended = admin.scan(request, move || filter.matcher(), sink).await;
        let last =
            match ended {
                Err(error) => Some(Event::default().event("error").data(
                    serde_json::to_string(&ApiError::from(error).problem()).unwrap_or_default(),
                )),
                Ok(_) if dropped.load(std::sync::atomic::Ordering::Acquire) => {
                    Some(Event::default().event("dropped").data(
                        "this client did not keep up; reconnect with Last-Event-ID to continue",
                    ))
                }
                Ok(_) => None,
            };
        if let Some(last) = last {
            let _ = tokio::time::timeout(Duration::from_secs(10), sender.send(last)).await;
        }
    });
    Ok(Sse::new(received(receiver).map(Ok::<_, Infallible>))
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
        .into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cursor_round_trips_and_a_forged_one_is_refused() {
        let positions = BTreeMap::from([(0, 120), (1, 98), (5, 0)]);
        let text = encode_cursor(Direction::Backward, &positions);
        assert_eq!(text, "b.0-120.1-98.5-0");
        let (direction, back) = decode_cursor(&text).unwrap();
        assert_eq!((direction, back), (Direction::Backward, positions));
        for forged in ["", "x.0-1", "f.0-", "f.-1-3", "f.0-1.a-2", "f.0_1"] {
            assert!(decode_cursor(forged).is_err(), "{forged}");
        }
    }
}
