//! OpenTelemetry export over OTLP/HTTP (protobuf): off unless an endpoint is configured,
//! in `[telemetry.otlp]` or the standard `OTEL_*` variables (which win).
//!
//! Spans go through a bounded queue to an exporting thread of their own: a full queue or a
//! failed export drops spans and counts them (`orderflow_trace_spans_dropped_total`), so an
//! unreachable or slow collector never slows or fails a request. Shutdown exports what is
//! queued within what is left of the grace period.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, LazyLock};
use std::time::{Duration, Instant};

use opentelemetry::trace::{Link, SpanKind, TraceContextExt, TraceId, TraceState};
use opentelemetry::{Context, KeyValue};
use opentelemetry_otlp::{Protocol, WithExportConfig, WithHttpConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{
    Sampler, SamplingDecision, SamplingResult, SdkTracerProvider, ShouldSample, SpanData,
    SpanExporter, SpanProcessor,
};
use prometheus::IntCounter;
use tokio::sync::{Notify, mpsc, oneshot};

use crate::config::OtlpSettings;

/// Spans that were sampled but never reached the collector (queue full, export failed).
pub static SPANS_DROPPED: LazyLock<IntCounter> = LazyLock::new(|| {
    IntCounter::new(
        "trace_spans_dropped_total",
        "Sampled spans not exported: the export queue was full or the collector refused or did not answer",
    )
    .expect("a valid metric")
});

/// Spans the collector accepted.
pub static SPANS_EXPORTED: LazyLock<IntCounter> = LazyLock::new(|| {
    IntCounter::new(
        "trace_spans_exported_total",
        "Spans the OTLP collector accepted",
    )
    .expect("a valid metric")
});

/// Which traces are recorded.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum SamplerChoice {
    /// Every trace.
    AlwaysOn,
    /// None.
    AlwaysOff,
    /// This share of traces, by trace id.
    Ratio(f64),
    /// A caller's (or linked trace's) decision; for new traces, the inner choice.
    ParentBased(RootChoice),
}

/// The decision for a new trace under a parent-based sampler.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum RootChoice {
    /// Every new trace.
    AlwaysOn,
    /// No new trace.
    AlwaysOff,
    /// This share of new traces.
    Ratio(f64),
}

impl SamplerChoice {
    /// Reads OpenTelemetry's sampler names (`OTEL_TRACES_SAMPLER`) with their argument.
    pub fn parse(name: &str, arg: Option<f64>) -> Result<Self, String> {
        let ratio = || match arg {
            Some(r) if (0.0..=1.0).contains(&r) => Ok(r),
            Some(r) => Err(format!("the sampler's ratio must be from 0 to 1, not {r}")),
            None => Ok(1.0),
        };
        Ok(match name.trim() {
            "always_on" => SamplerChoice::AlwaysOn,
            "always_off" => SamplerChoice::AlwaysOff,
            "traceidratio" => SamplerChoice::Ratio(ratio()?),
            "parentbased_always_on" => SamplerChoice::ParentBased(RootChoice::AlwaysOn),
            "parentbased_always_off" => SamplerChoice::ParentBased(RootChoice::AlwaysOff),
            "parentbased_traceidratio" => SamplerChoice::ParentBased(RootChoice::Ratio(ratio()?)),
            other => {
                return Err(format!(
                    "unknown sampler {other:?}; one of always_on, always_off, traceidratio, \
                     parentbased_always_on, parentbased_always_off, parentbased_traceidratio"
                ));
            }
        })
    }
}

/// The export settings in force: the file's, with every `OTEL_*` variable that is set
/// taking its place.
#[derive(Debug, Clone, PartialEq)]
pub struct Resolved {
    /// Where spans are posted (`…/v1/traces`).
    pub endpoint: String,
    /// Extra request headers (credentials of a hosted backend).
    pub headers: BTreeMap<String, String>,
    /// `service.name`.
    pub service_name: String,
    /// Other resource attributes.
    pub resource: BTreeMap<String, String>,
    /// Which traces are recorded.
    pub sampler: SamplerChoice,
    /// How long one export may take.
    pub timeout: Duration,
    /// Spans waiting for export at most; more are dropped and counted.
    pub max_queue_size: usize,
    /// Spans per export request at most.
    pub max_export_batch_size: usize,
    /// How long a span may wait for a fuller batch.
    pub schedule_delay: Duration,
}

/// Resolves the settings against the environment (`env` looks a variable up). `Ok(None)`:
/// export is off (no endpoint, `OTEL_SDK_DISABLED=true` or `OTEL_TRACES_EXPORTER=none`).
pub fn resolve(
    settings: &OtlpSettings,
    env: impl Fn(&str) -> Option<String>,
) -> Result<Option<Resolved>, String> {
    let var = |name: &str| {
        env(name)
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
    };
    if var("OTEL_SDK_DISABLED").is_some_and(|v| v.eq_ignore_ascii_case("true")) {
        return Ok(None);
    }
    match var("OTEL_TRACES_EXPORTER").as_deref() {
        None | Some("otlp") => {}
        Some("none") => return Ok(None),
        Some(other) => {
            return Err(format!(
                "OTEL_TRACES_EXPORTER={other:?}: only otlp and none are supported"
            ));
        }
    }
    if let Some(protocol) =
        var("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL").or_else(|| var("OTEL_EXPORTER_OTLP_PROTOCOL"))
        && protocol != "http/protobuf"
    {
        return Err(format!(
            "OTLP protocol {protocol:?}: only http/protobuf is supported"
        ));
    }
    let (source, endpoint) = match (
        var("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"),
        var("OTEL_EXPORTER_OTLP_ENDPOINT"),
    ) {
        // The signal's own variable is the whole URL; the general one is a base.
        (Some(url), _) => ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", url),
        (None, Some(base)) => ("OTEL_EXPORTER_OTLP_ENDPOINT", traces_url(&base)),
        (None, None) if !settings.endpoint.trim().is_empty() => {
            ("telemetry.otlp.endpoint", traces_url(&settings.endpoint))
        }
        (None, None) => return Ok(None),
    };
    // The value is not repeated in errors: it may hold what should not be printed.
    let parsed =
        reqwest::Url::parse(&endpoint).map_err(|e| format!("{source} is not a URL ({e})"))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(format!("{source}: only http and https are supported"));
    }
    // Logged at start, so credentials belong in the headers, not here.
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(format!(
            "{source} carries credentials; send them as headers (OTEL_EXPORTER_OTLP_HEADERS)"
        ));
    }
    let headers = match var("OTEL_EXPORTER_OTLP_TRACES_HEADERS")
        .or_else(|| var("OTEL_EXPORTER_OTLP_HEADERS"))
    {
        Some(list) => key_value_list(&list)?,
        None => crate::config::resolve_references(&settings.headers)
            .map_err(|e| format!("telemetry.otlp.headers: {e}"))?,
    };
    let mut resource = settings.resource_attributes.clone();
    if let Some(list) = var("OTEL_RESOURCE_ATTRIBUTES") {
        resource.extend(key_value_list(&list)?);
    }
    let service_name = var("OTEL_SERVICE_NAME")
        .or_else(|| resource.remove("service.name"))
        .unwrap_or_else(|| settings.service_name.clone());
    resource.remove("service.name");
    let sampler = match var("OTEL_TRACES_SAMPLER") {
        Some(name) => {
            let arg = match var("OTEL_TRACES_SAMPLER_ARG") {
                Some(arg) => Some(
                    arg.parse::<f64>()
                        .map_err(|_| format!("OTEL_TRACES_SAMPLER_ARG={arg:?} is not a number"))?,
                ),
                None => None,
            };
            SamplerChoice::parse(&name, arg).map_err(|e| format!("OTEL_TRACES_SAMPLER: {e}"))?
        }
        None => SamplerChoice::parse(&settings.sampler, Some(settings.sampler_arg))
            .map_err(|e| format!("telemetry.otlp.sampler: {e}"))?,
    };
    let millis = |name: &str, default: Duration| -> Result<Duration, String> {
        match var(name) {
            Some(v) => v
                .parse::<u64>()
                .map(Duration::from_millis)
                .map_err(|_| format!("{name}={v:?} is not a whole number of milliseconds")),
            None => Ok(default),
        }
    };
    let count = |name: &str, default: usize| -> Result<usize, String> {
        match var(name) {
            Some(v) => v
                .parse::<usize>()
                .ok()
                .filter(|n| *n > 0)
                .ok_or_else(|| format!("{name}={v:?} is not a positive whole number")),
            None => Ok(default),
        }
    };
    let timeout = millis(
        "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT",
        millis("OTEL_EXPORTER_OTLP_TIMEOUT", settings.timeout)?,
    )?;
    let max_queue_size = count("OTEL_BSP_MAX_QUEUE_SIZE", settings.max_queue_size)?;
    Ok(Some(Resolved {
        endpoint,
        headers,
        service_name,
        resource,
        sampler,
        timeout,
        max_queue_size,
        max_export_batch_size: count(
            "OTEL_BSP_MAX_EXPORT_BATCH_SIZE",
            settings.max_export_batch_size,
        )?
        .min(max_queue_size),
        schedule_delay: millis("OTEL_BSP_SCHEDULE_DELAY", settings.schedule_delay)?,
    }))
}

fn traces_url(base: &str) -> String {
    format!("{}/v1/traces", base.trim().trim_end_matches('/'))
}

/// `key1=value1,key2=value2` (W3C Baggage style, values percent-decoded), as the
/// `OTEL_*_HEADERS` and `OTEL_RESOURCE_ATTRIBUTES` variables are written.
fn key_value_list(list: &str) -> Result<BTreeMap<String, String>, String> {
    list.split(',')
        .filter(|entry| !entry.trim().is_empty())
        .map(|entry| {
            let (key, value) = entry
                .split_once('=')
                .ok_or_else(|| "an entry without '=' in a key=value list".to_string())?;
            let value = percent_encoding::percent_decode_str(value.trim())
                .decode_utf8()
                .map_err(|_| "a value that is not UTF-8 once decoded".to_string())?;
            Ok((key.trim().to_string(), value.into_owned()))
        })
        .collect()
}

/// Parent-based sampling that also follows links: a new trace linked to sampled traces
/// (each order of a bulk request, a status view's update) is recorded with them, and one
/// linked only to unsampled traces is not, so a trace and what links to it are kept together.
#[derive(Debug, Clone)]
struct FollowLinks(Sampler);

impl ShouldSample for FollowLinks {
    fn should_sample(
        &self,
        parent: Option<&Context>,
        trace_id: TraceId,
        name: &str,
        kind: &SpanKind,
        attributes: &[KeyValue],
        links: &[Link],
    ) -> SamplingResult {
        let has_parent = parent.is_some_and(|cx| cx.span().span_context().is_valid());
        if !has_parent && !links.is_empty() {
            let sampled = links.iter().any(|l| l.span_context.is_sampled());
            return SamplingResult {
                decision: if sampled {
                    SamplingDecision::RecordAndSample
                } else {
                    SamplingDecision::Drop
                },
                attributes: Vec::new(),
                trace_state: TraceState::default(),
            };
        }
        self.0
            .should_sample(parent, trace_id, name, kind, attributes, links)
    }
}

fn sampler(choice: SamplerChoice) -> Box<dyn ShouldSample> {
    let root = |r: RootChoice| match r {
        RootChoice::AlwaysOn => Sampler::AlwaysOn,
        RootChoice::AlwaysOff => Sampler::AlwaysOff,
        RootChoice::Ratio(ratio) => Sampler::TraceIdRatioBased(ratio),
    };
    match choice {
        SamplerChoice::AlwaysOn => Box::new(Sampler::AlwaysOn),
        SamplerChoice::AlwaysOff => Box::new(Sampler::AlwaysOff),
        SamplerChoice::Ratio(ratio) => Box::new(Sampler::TraceIdRatioBased(ratio)),
        SamplerChoice::ParentBased(r) => {
            Box::new(FollowLinks(Sampler::ParentBased(Box::new(root(r)))))
        }
    }
}

/// Ends of spans, queued for the exporting thread; never waits. The thread is woken only
/// when a batch is full (otherwise it wakes on its schedule): a wake-up per span would cost
/// more than the span.
#[derive(Debug)]
struct Queue {
    spans: mpsc::Sender<SpanData>,
    full: Arc<Notify>,
    batch: usize,
}

impl SpanProcessor for Queue {
    fn on_start(&self, _span: &mut opentelemetry_sdk::trace::Span, _cx: &Context) {}

    fn on_end(&self, span: SpanData) {
        if !span.span_context.is_sampled() {
            return;
        }
        if self.spans.try_send(span).is_err() {
            SPANS_DROPPED.inc();
        } else if self.spans.max_capacity() - self.spans.capacity() >= self.batch {
            self.full.notify_one();
        }
    }

    fn force_flush(&self) -> OTelSdkResult {
        Ok(())
    }

    /// The exporting thread is stopped by [`Exporting::shutdown`], which the service awaits
    /// within its grace period.
    fn shutdown_with_timeout(&self, _timeout: Duration) -> OTelSdkResult {
        Ok(())
    }
}

/// The HTTP client of the export: the service's own reqwest (and its TLS), so no second HTTP
/// stack is built in.
#[derive(Debug)]
struct Client(reqwest::Client);

#[async_trait::async_trait]
impl opentelemetry_http::HttpClient for Client {
    async fn send_bytes(
        &self,
        request: http::Request<bytes::Bytes>,
    ) -> Result<http::Response<bytes::Bytes>, opentelemetry_http::HttpError> {
        let (parts, body) = request.into_parts();
        let response = self
            .0
            .request(parts.method, parts.uri.to_string())
            .headers(parts.headers)
            .body(body)
            .send()
            .await?;
        let mut answer = http::Response::builder().status(response.status());
        if let Some(headers) = answer.headers_mut() {
            *headers = response.headers().clone();
        }
        // A collector's answer is a small protobuf message; a larger one is not read.
        if response.content_length().is_some_and(|n| n > MAX_ANSWER) {
            return Ok(answer.body(bytes::Bytes::new())?);
        }
        Ok(answer.body(response.bytes().await?)?)
    }
}

const MAX_ANSWER: u64 = 1 << 20;

/// The running export: stop it with [`Exporting::shutdown`].
pub struct Exporting {
    stop: Option<oneshot::Sender<Instant>>,
    thread: Option<std::thread::JoinHandle<()>>,
    provider: SdkTracerProvider,
}

/// Starts the exporting thread and returns the tracer provider spans are made with.
pub fn start(settings: &Resolved) -> Result<Exporting, String> {
    let client = reqwest::Client::builder()
        .timeout(settings.timeout)
        .build()
        .map_err(|e| format!("OTLP client: {e}"))?;
    let mut exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_http_client(Client(client))
        .with_protocol(Protocol::HttpBinary)
        .with_endpoint(settings.endpoint.clone())
        .with_timeout(settings.timeout)
        .with_headers(
            settings
                .headers
                .clone()
                .into_iter()
                .collect::<HashMap<_, _>>(),
        )
        .build()
        .map_err(|e| format!("OTLP exporter: {e}"))?;
    let resource = Resource::builder_empty()
        .with_attributes(
            settings
                .resource
                .iter()
                .map(|(k, v)| KeyValue::new(k.clone(), v.clone())),
        )
        .with_attribute(KeyValue::new("service.version", env!("CARGO_PKG_VERSION")))
        .with_service_name(settings.service_name.clone())
        .build();
    exporter.set_resource(&resource);
    let (spans, queue) = mpsc::channel(settings.max_queue_size);
    let full = Arc::new(Notify::new());
    let notified = full.clone();
    let (stop, stopped) = oneshot::channel();
    let batch = Batching {
        max: settings.max_export_batch_size,
        delay: settings.schedule_delay,
        timeout: settings.timeout,
    };
    let thread = std::thread::Builder::new()
        .name("otlp-export".into())
        .spawn(move || {
            let runtime = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(runtime) => runtime,
                Err(error) => {
                    tracing::error!(%error, "the span export cannot start; spans are dropped");
                    return;
                }
            };
            runtime.block_on(batch.run(exporter, queue, notified, stopped));
        })
        .map_err(|e| format!("OTLP export thread: {e}"))?;
    let provider = SdkTracerProvider::builder()
        .with_sampler(sampler(settings.sampler))
        .with_resource(resource)
        .with_span_processor(Queue {
            spans,
            full,
            batch: settings.max_export_batch_size,
        })
        .build();
    Ok(Exporting {
        stop: Some(stop),
        thread: Some(thread),
        provider,
    })
}

impl Exporting {
    /// The provider the tracing layer makes spans with.
    pub fn provider(&self) -> &SdkTracerProvider {
        &self.provider
    }

    /// Exports what is queued, giving up at `deadline`; spans ended after this are dropped.
    pub async fn shutdown(mut self, deadline: Instant) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(deadline);
        }
        if let Some(thread) = self.thread.take() {
            let waited = tokio::task::spawn_blocking(move || thread.join());
            let _ = tokio::time::timeout(
                deadline.saturating_duration_since(Instant::now()) + Duration::from_millis(100),
                waited,
            )
            .await;
        }
    }
}

struct Batching {
    max: usize,
    delay: Duration,
    timeout: Duration,
}

impl Batching {
    /// Collects spans into batches (full, or as old as the schedule delay) and exports each;
    /// on stop, exports what is queued until the deadline.
    async fn run(
        self,
        exporter: impl SpanExporter,
        mut queue: mpsc::Receiver<SpanData>,
        full: Arc<Notify>,
        mut stop: oneshot::Receiver<Instant>,
    ) {
        let mut batch = Vec::with_capacity(self.max);
        let deadline = loop {
            tokio::select! {
                deadline = &mut stop => break deadline.unwrap_or_else(|_| Instant::now()),
                () = tokio::time::sleep(self.delay) => {}
                () = full.notified() => {}
            }
            // Whole batches while there are, then back to waiting.
            loop {
                while batch.len() < self.max {
                    match queue.try_recv() {
                        Ok(span) => batch.push(span),
                        Err(_) => break,
                    }
                }
                let whole = batch.len() == self.max;
                let spans = std::mem::replace(&mut batch, Vec::with_capacity(self.max));
                self.export(&exporter, spans, self.timeout).await;
                if !whole {
                    break;
                }
            }
        };
        // Stopping: what is queued now goes out, within the time left.
        queue.close();
        while let Ok(span) = queue.try_recv() {
            batch.push(span);
            if batch.len() == self.max {
                let left = deadline.saturating_duration_since(Instant::now());
                self.export(
                    &exporter,
                    std::mem::take(&mut batch),
                    left.min(self.timeout),
                )
                .await;
            }
        }
        let left = deadline.saturating_duration_since(Instant::now());
        self.export(&exporter, batch, left.min(self.timeout)).await;
        let _ = exporter.shutdown();
    }

    async fn export(&self, exporter: &impl SpanExporter, spans: Vec<SpanData>, within: Duration) {
        if spans.is_empty() {
            return;
        }
        let count = spans.len() as u64;
        match tokio::time::timeout(within, exporter.export(spans)).await {
            Ok(Ok(())) => SPANS_EXPORTED.inc_by(count),
            Ok(Err(error)) => {
                SPANS_DROPPED.inc_by(count);
                tracing::debug!(%error, count, "span export failed; spans dropped");
            }
            Err(_) => {
                SPANS_DROPPED.inc_by(count);
                tracing::debug!(count, "span export timed out; spans dropped");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> OtlpSettings {
        OtlpSettings {
            endpoint: String::new(),
            headers: BTreeMap::new(),
            service_name: "orderflow".into(),
            sampler: "parentbased_always_on".into(),
            sampler_arg: 1.0,
            timeout: Duration::from_secs(10),
            max_queue_size: 2048,
            max_export_batch_size: 512,
            schedule_delay: Duration::from_secs(1),
            resource_attributes: BTreeMap::new(),
        }
    }

    fn env(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let vars: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |name| vars.get(name).cloned()
    }

    #[test]
    fn off_unless_an_endpoint_is_configured() {
        assert_eq!(resolve(&settings(), env(&[])), Ok(None));
        let mut file = settings();
        file.endpoint = "http://collector:4318/".into();
        let on = resolve(&file, env(&[])).unwrap().expect("on");
        assert_eq!(on.endpoint, "http://collector:4318/v1/traces");
        assert_eq!(
            resolve(&file, env(&[("OTEL_SDK_DISABLED", "true")])),
            Ok(None)
        );
        assert_eq!(
            resolve(&file, env(&[("OTEL_TRACES_EXPORTER", "none")])),
            Ok(None)
        );
        assert!(resolve(&file, env(&[("OTEL_TRACES_EXPORTER", "zipkin")])).is_err());
        assert!(resolve(&file, env(&[("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")])).is_err());
    }

    #[test]
    fn the_standard_variables_win_over_the_file() {
        let mut file = settings();
        file.endpoint = "http://file:4318".into();
        file.headers.insert("x-file".into(), "1".into());
        file.resource_attributes
            .insert("deployment.environment.name".into(), "file".into());
        let vars = env(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "https://env:4318"),
            (
                "OTEL_EXPORTER_OTLP_HEADERS",
                "x-honeycomb-team=abc%3D,x-other = 2",
            ),
            ("OTEL_SERVICE_NAME", "orders-eu"),
            (
                "OTEL_RESOURCE_ATTRIBUTES",
                "deployment.environment.name=prod,service.name=ignored",
            ),
            ("OTEL_TRACES_SAMPLER", "parentbased_traceidratio"),
            ("OTEL_TRACES_SAMPLER_ARG", "0.01"),
            ("OTEL_EXPORTER_OTLP_TIMEOUT", "2500"),
        ]);
        let r = resolve(&file, vars).unwrap().unwrap();
        assert_eq!(r.endpoint, "https://env:4318/v1/traces");
        assert_eq!(
            r.headers.get("x-honeycomb-team").map(String::as_str),
            Some("abc=")
        );
        assert_eq!(r.headers.get("x-other").map(String::as_str), Some("2"));
        assert!(!r.headers.contains_key("x-file"));
        assert_eq!(r.service_name, "orders-eu");
        assert_eq!(
            r.resource
                .get("deployment.environment.name")
                .map(String::as_str),
            Some("prod")
        );
        assert_eq!(
            r.sampler,
            SamplerChoice::ParentBased(RootChoice::Ratio(0.01))
        );
        assert_eq!(r.timeout, Duration::from_millis(2500));
        // The signal's own endpoint is taken whole.
        let r = resolve(
            &file,
            env(&[("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://t:1/custom")]),
        )
        .unwrap()
        .unwrap();
        assert_eq!(r.endpoint, "http://t:1/custom");
    }

    #[test]
    fn bad_values_are_refused_by_name() {
        let mut file = settings();
        file.endpoint = "http://file:4318".into();
        for (vars, named) in [
            (
                vec![("OTEL_TRACES_SAMPLER", "sometimes")],
                "OTEL_TRACES_SAMPLER",
            ),
            (
                vec![
                    ("OTEL_TRACES_SAMPLER", "traceidratio"),
                    ("OTEL_TRACES_SAMPLER_ARG", "lots"),
                ],
                "OTEL_TRACES_SAMPLER_ARG",
            ),
            (
                vec![("OTEL_EXPORTER_OTLP_TIMEOUT", "-1")],
                "OTEL_EXPORTER_OTLP_TIMEOUT",
            ),
            (
                vec![("OTEL_BSP_MAX_QUEUE_SIZE", "0")],
                "OTEL_BSP_MAX_QUEUE_SIZE",
            ),
            (
                vec![("OTEL_EXPORTER_OTLP_ENDPOINT", "ftp://x")],
                "only http and https",
            ),
            (
                vec![(
                    "OTEL_EXPORTER_OTLP_ENDPOINT",
                    "https://user:s3cret@collector",
                )],
                "carries credentials",
            ),
            (
                vec![("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "not a url s3cret")],
                "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT is not a URL",
            ),
            (vec![("OTEL_EXPORTER_OTLP_HEADERS", "novalue")], "key=value"),
        ] {
            let error = resolve(&file, env(&vars)).unwrap_err();
            assert!(error.contains(named), "{vars:?}: {error}");
            assert!(!error.contains("s3cret"), "{error}");
        }
        file.sampler = "traceidratio".into();
        file.sampler_arg = 2.0;
        assert!(
            resolve(&file, env(&[]))
                .unwrap_err()
                .contains("telemetry.otlp.sampler")
        );
    }

    fn link(sampled: bool) -> Link {
        let flags = if sampled {
            opentelemetry::trace::TraceFlags::SAMPLED
        } else {
            opentelemetry::trace::TraceFlags::default()
        };
        let context = opentelemetry::trace::SpanContext::new(
            TraceId::from_bytes([1; 16]),
            opentelemetry::trace::SpanId::from_bytes([2; 8]),
            flags,
            true,
            TraceState::default(),
        );
        Link::with_context(context)
    }

    #[test]
    fn new_traces_follow_what_they_link_to() {
        let s = sampler(SamplerChoice::ParentBased(RootChoice::Ratio(0.0)));
        let decide = |links: &[Link]| {
            s.should_sample(
                None,
                TraceId::from_bytes([3; 16]),
                "x",
                &SpanKind::Producer,
                &[],
                links,
            )
            .decision
        };
        assert_eq!(decide(&[link(true)]), SamplingDecision::RecordAndSample);
        assert_eq!(decide(&[link(false)]), SamplingDecision::Drop);
        // No link: the root rule (ratio 0).
        assert_eq!(decide(&[]), SamplingDecision::Drop);
        let on = sampler(SamplerChoice::ParentBased(RootChoice::AlwaysOn));
        assert_eq!(
            on.should_sample(
                None,
                TraceId::from_bytes([3; 16]),
                "x",
                &SpanKind::Server,
                &[],
                &[]
            )
            .decision,
            SamplingDecision::RecordAndSample
        );
    }
}
