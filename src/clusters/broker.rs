//! The lifecycle of a local development broker (the Tansu binary the project installs), for
//! `POST /api/admin/cluster/start`, `POST /api/admin/cluster/stop` and
//! `GET /api/admin/cluster/status`. Only active when `[local_broker]` names a command; a
//! production deployment leaves it empty and those endpoints answer 409.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use serde::Serialize;
use tokio::process::{Child, Command};
use tokio::sync::Mutex;

use crate::config::LocalBrokerSettings;

/// What `status` reports.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct BrokerStatus {
    /// `running` or `stopped`.
    pub state: String,
    /// Process id while running.
    pub pid: Option<u32>,
    /// Port it listens on.
    pub port: u16,
    /// Storage engine URL.
    pub storage: String,
    /// When it was started, while running.
    pub started_at: Option<DateTime<Utc>>,
    /// Seconds since start, while running.
    pub uptime_secs: Option<u64>,
}

/// Why a lifecycle request was refused.
#[derive(Debug, thiserror::Error)]
pub enum BrokerError {
    /// `[local_broker].command` is empty.
    #[error("no local broker is configured ([local_broker].command is empty)")]
    NotConfigured,
    /// The template of a new local cluster has no `broker` settings.
    #[error("template {0} has no broker settings for a local cluster")]
    NoBrokerTemplate(String),
    /// Every port of `cluster_port_min..=cluster_port_max` is taken.
    #[error("no free port left in [local_broker] cluster_port_min..=cluster_port_max")]
    NoFreePort,
    /// Start while running, or stop while stopped.
    #[error("{0}")]
    WrongState(String),
    /// The process could not be started or did not come up.
    #[error("{0}")]
    Failed(String),
}

struct Running {
    child: Child,
    started_at: DateTime<Utc>,
    started: Instant,
}

/// Starts and stops the configured broker process.
pub struct LocalBroker {
    settings: LocalBrokerSettings,
    running: Mutex<Option<Running>>,
}

impl LocalBroker {
    /// A manager for the configured broker; nothing starts until [`LocalBroker::start`].
    pub fn new(settings: LocalBrokerSettings) -> Self {
        LocalBroker {
            settings,
            running: Mutex::new(None),
        }
    }

    fn configured(&self) -> Result<(), BrokerError> {
        if self.settings.command.trim().is_empty() {
            Err(BrokerError::NotConfigured)
        } else {
            Ok(())
        }
    }

    /// Running or stopped, with pid, port, storage and uptime.
    pub async fn status(&self) -> Result<BrokerStatus, BrokerError> {
        self.configured()?;
        let mut running = self.running.lock().await;
        // A broker that exited by itself counts as stopped.
        if let Some(r) = running.as_mut()
            && !matches!(r.child.try_wait(), Ok(None))
        {
            *running = None;
        }
        Ok(self.describe(running.as_ref()))
    }

    fn describe(&self, running: Option<&Running>) -> BrokerStatus {
        BrokerStatus {
            state: if running.is_some() {
                "running"
            } else {
                "stopped"
            }
            .into(),
            pid: running.and_then(|r| r.child.id()),
            port: self.settings.port,
            storage: self.settings.storage.clone(),
            started_at: running.map(|r| r.started_at),
            uptime_secs: running.map(|r| r.started.elapsed().as_secs()),
        }
    }

    /// Starts the broker and waits until its port accepts connections.
    pub async fn start(&self) -> Result<BrokerStatus, BrokerError> {
        self.configured()?;
        let mut running = self.running.lock().await;
        if let Some(r) = running.as_mut()
            && matches!(r.child.try_wait(), Ok(None))
        {
            return Err(BrokerError::WrongState(
                "the local broker is already running".into(),
            ));
        }
        let url = format!("tcp://127.0.0.1:{}", self.settings.port);
        let dir = PathBuf::from(&self.settings.data_dir);
        std::fs::create_dir_all(&dir)
            .map_err(|e| BrokerError::Failed(format!("cannot create {}: {e}", dir.display())))?;
        let mut child = Command::new(&self.settings.command)
            .args([
                "broker",
                "--listener-url",
                &url,
                "--advertised-listener-url",
                &url,
            ])
            .args(["--storage-engine", &self.settings.storage])
            .args(
                Some(&self.settings.kafka_cluster_id)
                    .filter(|id| !id.is_empty())
                    .map(|id| ["--kafka-cluster-id", id.as_str()])
                    .into_iter()
                    .flatten(),
            )
            .current_dir(&dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| {
                BrokerError::Failed(format!("cannot start {}: {e}", self.settings.command))
            })?;
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if tokio::net::TcpStream::connect(("127.0.0.1", self.settings.port))
                .await
                .is_ok()
            {
                break;
            }
            if !matches!(child.try_wait(), Ok(None)) || Instant::now() > deadline {
                let _ = child.kill().await;
                return Err(BrokerError::Failed(
                    "the local broker did not start listening".into(),
                ));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        tracing::info!(
            port = self.settings.port,
            pid = child.id(),
            "local broker started"
        );
        *running = Some(Running {
            child,
            started_at: Utc::now(),
            started: Instant::now(),
        });
        Ok(self.describe(running.as_ref()))
    }

    /// Stops the broker: SIGTERM, then SIGKILL after five seconds.
    pub async fn stop(&self) -> Result<BrokerStatus, BrokerError> {
        self.configured()?;
        let mut running = self.running.lock().await;
        let Some(mut r) = running.take() else {
            return Err(BrokerError::WrongState(
                "the local broker is not running".into(),
            ));
        };
        if let Some(pid) = r.child.id() {
            // SAFETY: kill(2) on our own child's pid, which has not been reaped yet.
            unsafe { libc::kill(pid as i32, libc::SIGTERM) };
        }
        if tokio::time::timeout(Duration::from_secs(5), r.child.wait())
            .await
            .is_err()
        {
            let _ = r.child.kill().await;
        }
        tracing::info!(port = self.settings.port, "local broker stopped");
        Ok(self.describe(None))
    }
}
