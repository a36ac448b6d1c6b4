//! Logging and tracing: `tracing` to stdout, human-readable or JSON per configuration,
//! filtered by `RUST_LOG` when set and by `telemetry.log_filter` otherwise; and, when
//! configured, the spans of [`crate::trace::spans`] exported over OTLP
//! ([`crate::trace::export`]).

use std::io::IsTerminal;
use std::time::Instant;

use opentelemetry::trace::TracerProvider;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

use crate::config::{LogFormat, TelemetrySettings};
use crate::trace::export::{self, Exporting, SamplerChoice};
use crate::trace::spans;

/// What [`init`] started; [`Telemetry::shutdown`] flushes the spans still queued.
pub struct Telemetry {
    exporting: Option<Exporting>,
}

impl Telemetry {
    /// Exports the queued spans, until `deadline` at most.
    pub async fn shutdown(self, deadline: Instant) {
        if let Some(exporting) = self.exporting {
            exporting.shutdown(deadline).await;
        }
    }
}

/// Installs the global subscriber, and starts the span export when `[telemetry.otlp]` or
/// the `OTEL_*` variables ask for it. Calling it again (as tests do) installs nothing more.
/// Must run inside the Tokio runtime. An error names the setting that is wrong.
pub fn init(settings: &TelemetrySettings) -> Result<Telemetry, String> {
    let resolved = export::resolve(&settings.otlp, |name| std::env::var(name).ok())?;
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(&settings.log_filter));
    let registry = tracing_subscriber::registry().with(filter);
    let installed = match settings.log_format {
        LogFormat::Json => registry
            .with(
                tracing_subscriber::fmt::layer()
                    .json()
                    .flatten_event(true)
                    .with_current_span(false)
                    .with_span_list(true),
            )
            .try_init(),
        // Colours only on a terminal: a file or a collector would get the escape codes (and
        // writing them is a part of every request's span).
        LogFormat::Pretty => registry
            .with(tracing_subscriber::fmt::layer().with_ansi(std::io::stdout().is_terminal()))
            .try_init(),
    }
    .is_ok();
    if !installed {
        tracing::debug!("tracing subscriber already installed");
        return Ok(Telemetry { exporting: None });
    }
    let Some(resolved) = resolved else {
        return Ok(Telemetry { exporting: None });
    };
    let exporting = export::start(&resolved)?;
    spans::install(
        exporting.provider().tracer("orderflow"),
        matches!(resolved.sampler, SamplerChoice::ParentBased(_)),
    );
    tracing::info!(endpoint = %resolved.endpoint, sampler = ?resolved.sampler, "exporting spans over OTLP");
    Ok(Telemetry {
        exporting: Some(exporting),
    })
}
