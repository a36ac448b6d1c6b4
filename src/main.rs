//! The orderflow binary: load configuration, start logging, run until SIGTERM or ctrl-c.

use anyhow::Context;
use orderflow::app::Application;
use orderflow::config::Settings;
use tokio_util::sync::CancellationToken;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let settings = Settings::load().context("Failed to load configuration")?;
    orderflow::telemetry::init(&settings.telemetry);
    let shutdown = CancellationToken::new();
    let app = Application::build(settings, shutdown.clone())
        .await
        .context("Failed to start orderflow")?;
    tokio::spawn(async move {
        orderflow::shutdown::signal().await;
        shutdown.cancel();
    });
    app.run().await
}
