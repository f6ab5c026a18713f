//! The listener of the operations API: HTTP/1.1 with bounds on what a client can hold.
//!
//! A client that opens connections and sends nothing, or a header a byte at a time (slowloris),
//! would otherwise keep a task and a socket each for as long as it likes. So: a request's
//! headers must arrive within the header timeout, and since hyper starts that clock whenever a
//! connection waits for its next request, it also closes idle keep-alive connections; a whole
//! request, body included, must be answered within the request timeout; and at most
//! `max_connections` connections are open at once: one more is answered 503 and closed
//! without its request being read.

use std::pin::pin;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::Request;
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::IntoResponse;
use clap::Args;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, watch};

#[derive(Args, Clone, Copy, Debug)]
pub struct ListenerLimits {
    /// Connections to the operations API open at once; one more is answered 503 and closed.
    #[arg(long = "ops-max-connections", env = "CONNECTOR_HOST_OPS_MAX_CONNECTIONS", default_value_t = 64,
          value_parser = clap::value_parser!(u16).range(1..))]
    pub max_connections: u16,
    /// Time a client has to send a request's headers; a connection idle this long between
    /// requests is closed too.
    #[arg(long = "ops-header-timeout", env = "CONNECTOR_HOST_OPS_HEADER_TIMEOUT", default_value = "10s",
          value_parser = humantime::parse_duration)]
    pub header_timeout: Duration,
    /// Time a request may take, body and answer included (a grant or revoke that takes longer
    /// still completes and is audited).
    #[arg(long = "ops-request-timeout", env = "CONNECTOR_HOST_OPS_REQUEST_TIMEOUT", default_value = "60s",
          value_parser = humantime::parse_duration)]
    pub request_timeout: Duration,
}

/// The answer to a connection past the cap, written without reading its request.
const TOO_MANY_CONNECTIONS: &str = "too many connections to the ops API: retry in a moment\n";

/// How long a refused connection gets to take its 503.
const REFUSAL_TIMEOUT: Duration = Duration::from_secs(1);

/// Serves `router` on `listener` until `stop` turns true, then lets open connections finish
/// their requests for at most `grace`.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: ListenerLimits,
    stop: watch::Receiver<bool>,
    grace: Duration,
) {
    let request_timeout = limits.request_timeout;
    let router = router.layer(middleware::from_fn(move |request: Request, next: Next| async move {
        match tokio::time::timeout(request_timeout, next.run(request)).await {
            Ok(response) => response,
            Err(_) => (
                StatusCode::REQUEST_TIMEOUT,
                format!(
                    "the request took longer than {} (--ops-request-timeout); a grant or revoke still completes and is recorded in the audit trail\n",
                    humantime::format_duration(request_timeout)
                ),
            )
                .into_response(),
        }
    }));
    let slots = Arc::new(Semaphore::new(usize::from(limits.max_connections)));
    let mut http = http1::Builder::new();
    http.timer(TokioTimer::new()).header_read_timeout(limits.header_timeout);
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(error) => {
                    // Out of file descriptors, typically: back off instead of spinning.
                    tracing::warn!(%error, "the ops API cannot accept a connection");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            () = stopped(stop.clone()) => break,
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            tokio::spawn(refuse(stream));
            continue;
        };
        let connection = http.serve_connection(TokioIo::new(stream), TowerToHyperService::new(router.clone()));
        let stop = stop.clone();
        tokio::spawn(async move {
            let mut connection = pin!(connection);
            // A connection's errors (a client gone, a header timeout) concern only that client.
            tokio::select! {
                _ = connection.as_mut() => {}
                () = stopped(stop) => {
                    // Finish the request in progress, take no other.
                    connection.as_mut().graceful_shutdown();
                    let _ = connection.await;
                }
            }
            drop(slot);
        });
    }
    drop(listener);
    // Every slot back means every connection closed.
    let _ = tokio::time::timeout(grace, slots.acquire_many(u32::from(limits.max_connections))).await;
}

async fn stopped(mut stop: watch::Receiver<bool>) {
    let _ = stop.wait_for(|stopped| *stopped).await;
}

async fn refuse(mut stream: TcpStream) {
    let answer = format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: text/plain\r\nconnection: close\r\ncontent-length: {}\r\n\r\n{TOO_MANY_CONNECTIONS}",
        TOO_MANY_CONNECTIONS.len()
    );
    let _ = tokio::time::timeout(REFUSAL_TIMEOUT, async {
        stream.write_all(answer.as_bytes()).await?;
        stream.shutdown().await?;
        let mut discarded = [0u8; 4096];
        while stream.read(&mut discarded).await? > 0 {}
        std::io::Result::Ok(())
    })
    .await;
}
