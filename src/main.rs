//! The orderflow binary: load configuration, start logging, run until SIGTERM or ctrl-c;
//! or a subcommand ([`orderflow::cli`]).

use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Parser;
use orderflow::app::Application;
use orderflow::cli::{self, Cli, Command, KeysCommand};
use orderflow::config::Settings;
use tokio_util::sync::CancellationToken;

/// mimalloc instead of glibc's allocator: the intake and the processors allocate and free
/// small objects on many threads, and glibc's arenas measured a fifth of the intake's CPU
/// (docs/benchmarks.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> anyhow::Result<()> {
    // Help, version and usage errors (exit code 2) are clap's.
    match Cli::parse().command {
        None => {}
        Some(Command::Keys {
            command: KeysCommand::New(key),
        }) => {
            let (key, entry) = cli::make_key(key.into()).map_err(anyhow::Error::msg)?;
            eprintln!("API key (shown once; store it in your secret manager now):\n{key}\n");
            eprintln!("Its entry for auth.keys_file (in a config file, write [[auth.keys]]):");
            print!("{entry}");
            return Ok(());
        }
    }
    let settings = Settings::load().context("Failed to load configuration")?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("Failed to start the async runtime")?;
    let result = runtime.block_on(run(settings));
    // The grace period already bounded the drain; do not wait again for a librdkafka call
    // stuck on an unreachable broker.
    runtime.shutdown_timeout(Duration::from_millis(500));
    result
}

async fn run(settings: Settings) -> anyhow::Result<()> {
    let telemetry = orderflow::telemetry::init(&settings.telemetry)
        .map_err(anyhow::Error::msg)
        .context("Failed to start telemetry")?;
    let grace = settings.shutdown.grace_period;
    let shutdown = CancellationToken::new();
    let app = Application::build(settings, shutdown.clone())
        .await
        .context("Failed to start orderflow")?;
    let stop_signal = shutdown.clone();
    tokio::spawn(async move {
        orderflow::shutdown::signal().await;
        stop_signal.cancel();
    });
    let stopping = {
        let shutdown = shutdown.clone();
        tokio::spawn(async move {
            shutdown.cancelled().await;
            Instant::now()
        })
    };
    let result = app.run().await;
    // The spans of the last work go out within what is left of the grace period.
    let stopped_at = if stopping.is_finished() {
        stopping.await.unwrap_or_else(|_| Instant::now())
    } else {
        Instant::now()
    };
    telemetry.shutdown(stopped_at + grace).await;
    result
}
