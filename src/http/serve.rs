//! The HTTP listener. `axum::serve` keeps every connection for as long as the client likes
//! and spins on accept errors; this loop bounds what one client can hold:
//!
//! - at most `http.max_connections` connections are open; at the cap the loop stops
//!   accepting, and new clients wait in the kernel's listen backlog;
//! - a request's head must arrive within `http.header_read_timeout_ms` of the server
//!   starting to wait for it, which also closes idle keep-alive connections (hyper starts
//!   that clock as soon as the connection is waiting for a request);
//! - an accept error (out of file descriptors, for one) pauses accepting with a growing
//!   backoff instead of retrying in a tight loop;
//! - on shutdown the listener closes and open connections finish their current request.
//!
//! Body and handler time are bounded inside the router (see `extract` and `app::router`).

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::ConnectInfo;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower::ServiceExt;

use crate::backoff::Backoff;

/// What every connection is served by: a request in, its answer out, never an error.
pub type HttpService = tower::util::BoxCloneSyncService<
    axum::extract::Request,
    axum::response::Response,
    std::convert::Infallible,
>;

/// First pause after an accept error.
const ACCEPT_BACKOFF_MIN: Duration = Duration::from_millis(10);
/// Longest pause after repeated accept errors.
const ACCEPT_BACKOFF_MAX: Duration = Duration::from_secs(1);

/// Limits of the listener.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// Connections open at once (`http.max_connections`).
    pub max_connections: usize,
    /// Time allowed for a request's head, and for an idle keep-alive connection
    /// (`http.header_read_timeout_ms`).
    pub header_read_timeout: Duration,
}

/// Serves `service` on `listener` until `shutdown` is cancelled, then waits for the open
/// connections to finish their requests (the caller bounds that wait).
pub async fn serve(
    listener: TcpListener,
    service: HttpService,
    options: ServeOptions,
    shutdown: CancellationToken,
) {
    let permits = Arc::new(Semaphore::new(options.max_connections));
    let connections = TaskTracker::new();
    // HTTP/1.1 only: hyper-util's protocol detection waits for a client's first bytes with
    // no timer, which would let a silent connection stay open for ever.
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(options.header_read_timeout)
        .keep_alive(true);
    let mut backoff = Backoff::new(ACCEPT_BACKOFF_MIN, ACCEPT_BACKOFF_MAX);
    loop {
        let permit = tokio::select! {
            () = shutdown.cancelled() => break,
            permit = permits.clone().acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => break,
            },
        };
        let accepted = tokio::select! {
            () = shutdown.cancelled() => break,
            accepted = listener.accept() => accepted,
        };
        let (stream, peer) = match accepted {
            Ok(accepted) => {
                backoff.reset();
                accepted
            }
            Err(error) if is_per_connection(&error) => continue,
            Err(error) => {
                tracing::warn!(%error, backoff = ?backoff.delay(), "cannot accept connections; pausing");
                if !backoff.wait(&shutdown).await {
                    break;
                }
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let service = service.clone().map_request(
            move |request: axum::extract::Request<hyper::body::Incoming>| {
                let mut request = request.map(Body::new);
                request.extensions_mut().insert(ConnectInfo(peer));
                request
            },
        );
        let connection = builder
            .serve_connection(TokioIo::new(stream), TowerToHyperService::new(service))
            .with_upgrades();
        let shutdown = shutdown.clone();
        connections.spawn(async move {
            tokio::pin!(connection);
            let result = tokio::select! {
                result = connection.as_mut() => result,
                () = shutdown.cancelled() => {
                    // Finish the request in hand, then close.
                    connection.as_mut().graceful_shutdown();
                    connection.await
                }
            };
            // Errors here are the client's (reset, header timeout, bad bytes): nothing to
            // answer, and not worth more than a debug line.
            if let Err(error) = result {
                tracing::debug!(%error, %peer, "connection ended with an error");
            }
            drop(permit);
        });
    }
    drop(listener);
    connections.close();
    connections.wait().await;
}

/// Accept errors that concern one connection only (it was reset before it was accepted);
/// the listener is fine and the next accept may go on at once.
fn is_per_connection(error: &std::io::Error) -> bool {
    use std::io::ErrorKind;
    matches!(
        error.kind(),
        ErrorKind::ConnectionAborted | ErrorKind::ConnectionReset | ErrorKind::ConnectionRefused
    )
}
