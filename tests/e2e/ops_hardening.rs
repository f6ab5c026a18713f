//! Issue 10, findings 7 to 9 against a real `serve` process: hostile numbers from upstream fail
//! only their tenant; the read token reads and cannot change anything; slow and excess
//! connections to the ops API are cut off; snapshots and data directories are private.

use std::os::unix::fs::PermissionsExt as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::http::{HeaderMap, HeaderValue, StatusCode};
use fake_azure::{FakeAzure, Tenant};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

use crate::serve::{PendingMembership, assert_snapshot_is_exact, secrets};
use crate::serve_support::{OPS_TOKEN, ServeProcess, TenantEntry, tenants_file};

const READ_TOKEN: &str = "test-read-token-0123456789abcdef";

/// A server that answers like a broken or hostile Graph: first an honest answer, then a 429
/// that starts pacing, then an answer claiming an absurd cost, then only 429s asking to wait
/// 10^300 seconds. Before the fix, the pacer turned that cost into a wait too large for a
/// `Duration` and panicked, killing the tenant's schedule with it.
async fn start_hostile_upstream() -> (String, Arc<AtomicUsize>) {
    let answered = Arc::new(AtomicUsize::new(0));
    let counter = answered.clone();
    let app = axum::Router::new().fallback(move || {
        let counter = counter.clone();
        async move {
            let mut headers = HeaderMap::new();
            let status = match counter.fetch_add(1, Ordering::SeqCst) {
                0 => {
                    headers.insert("x-ms-resource-unit", HeaderValue::from_static("1"));
                    StatusCode::OK
                }
                1 => {
                    headers.insert("retry-after", HeaderValue::from_static("0"));
                    StatusCode::TOO_MANY_REQUESTS
                }
                2 => {
                    headers.insert("x-ms-resource-unit", HeaderValue::from_static("1e308"));
                    headers.insert("x-ms-throttle-limit-percentage", HeaderValue::from_static("1e308"));
                    StatusCode::OK
                }
                _ => {
                    headers.insert("retry-after", HeaderValue::from_static("1e300"));
                    StatusCode::TOO_MANY_REQUESTS
                }
            };
            (status, headers, "{}")
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("a loopback port");
    let address = listener.local_addr().expect("its address");
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{address}"), answered)
}

#[tokio::test(flavor = "multi_thread")]
async fn hostile_throttling_numbers_fail_their_tenant_with_a_clear_error_while_serve_and_the_others_go_on() {
    let (hostile_url, answered) = start_hostile_upstream().await;
    let mut fakes = Vec::new();
    let mut entries = Vec::new();
    for n in 0..2 {
        let fake = FakeAzure::start(Tenant::sample()).await.expect("a fake Azure");
        entries.push(TenantEntry::for_fake(&format!("honest-{n}"), &fake));
        fakes.push(fake);
    }
    let login_fake = FakeAzure::start(Tenant::sample()).await.expect("a fake Azure for the hostile tenant's login");
    let target = format!("{hostile_url}/v1.0/users");
    let mut hostile = TenantEntry::probe("hostile-upstream", &login_fake, "upstream", &[("target", &target)]);
    hostile.graph_url = hostile_url.clone();
    entries.push(hostile);

    let serve = ServeProcess::start(&tenants_file(&entries), &secrets(&entries), &["--workers", "2"]).await;
    let ids: Vec<String> = entries.iter().map(|entry| entry.id.clone()).collect();
    let statuses = serve.wait_for_syncs(&ids, 1).await;

    let status = &statuses["hostile-upstream"];
    assert_eq!(status["last_result"]["outcome"], "failure", "{status}");
    assert_ne!(status["state"], "running", "the tenant's schedule is alive: {status}");
    let error = status["last_result"]["error"].as_str().unwrap_or_default();
    assert!(error.contains("still throttled"), "the tenant says why: {error}");
    assert!(!serve.log().contains("panicked"), "nothing panicked:\n{}", serve.log());
    // Every 429 asked for 10^300 s: none was waited for, and none retried more than once.
    let requests = answered.load(Ordering::SeqCst);
    assert!((4..=60).contains(&requests), "the hostile upstream saw {requests} requests");

    for (entry, fake) in entries.iter().zip(&fakes) {
        assert_eq!(statuses[&entry.id]["last_result"]["outcome"], "success", "{}", statuses[&entry.id]);
        assert_snapshot_is_exact(&serve, &entry.id, fake).await;
    }
    assert_eq!(serve.call("GET", "/healthz", None, None).await.0, 200, "the process still serves");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_read_token_reads_metrics_and_status_and_only_the_operator_token_changes_anything() {
    let pending = PendingMembership::start().await;
    let entries = [pending.entry.clone()];
    let mut env = secrets(&entries);
    env.push(("CONNECTOR_HOST_OPS_READ_TOKEN".into(), READ_TOKEN.into()));
    let serve = ServeProcess::start(&tenants_file(&entries), &env, &[]).await;
    serve.wait_for_syncs(&["contoso".into()], 1).await;

    for path in ["/metrics", "/tenants", "/tenants/contoso"] {
        let (code, body) = serve.call("GET", path, Some(READ_TOKEN), None).await;
        assert_eq!(code, 200, "the read token reads {path}: {body}");
    }
    let change = pending.change.clone();
    for (path, body) in [
        ("/tenants/contoso/grant", Some(change.clone())),
        ("/tenants/contoso/revoke", Some(change.clone())),
        ("/tenants/contoso/sync", None),
    ] {
        let (code, answer) = serve.call("POST", path, Some(READ_TOKEN), body).await;
        assert_eq!(code, 403, "the read token cannot POST {path}: {answer}");
        assert!(answer["error"].as_str().unwrap_or_default().contains("--ops-token-file"), "{answer}");
    }
    assert!(!pending.is_member(), "nothing changed in Azure");
    assert_eq!(serve.call("GET", "/metrics", Some("not-a-token-0123456789"), None).await.0, 401);

    let (code, body) = serve.call("POST", "/tenants/contoso/grant", Some(OPS_TOKEN), Some(change)).await;
    assert_eq!(code, 200, "{body}");
    assert_eq!(body["outcome"], "granted", "{body}");

    // Finding 9: what the sync wrote is for the service's user alone.
    let snapshot = serve.snapshot("contoso");
    let mode = |path: &std::path::Path| std::fs::metadata(path).expect("it exists").permissions().mode() & 0o777;
    assert_eq!(mode(&snapshot), 0o600, "the finished snapshot");
    assert_eq!(mode(snapshot.parent().expect("its directory")), 0o700, "the tenant's directory");
    assert_eq!(mode(&serve.data_dir), 0o700, "the data directory");
}

/// Sends `request` on a new connection and reads until the server closes it. The bound only
/// keeps a broken build from hanging the suite.
async fn exchange(address: &str, request: &str) -> String {
    let mut stream = TcpStream::connect(address).await.expect("the ops API accepts");
    stream.write_all(request.as_bytes()).await.expect("the request is sent");
    read_until_closed(&mut stream).await
}

/// One answer on a connection kept open: its head, and a body of its `content-length`. Empty
/// when the server closed the connection without answering.
async fn read_one_answer(stream: &mut TcpStream) -> String {
    let mut answer = Vec::new();
    let mut buffer = [0u8; 1024];
    let read = tokio::time::timeout(Duration::from_secs(120), async {
        loop {
            let text = String::from_utf8_lossy(&answer).into_owned();
            if let Some(head_end) = text.find("\r\n\r\n") {
                let length = text[..head_end]
                    .lines()
                    .find_map(|line| line.to_ascii_lowercase().strip_prefix("content-length:").map(str::to_owned))
                    .and_then(|value| value.trim().parse::<usize>().ok())
                    .unwrap_or(0);
                if answer.len() >= head_end + 4 + length {
                    return;
                }
            }
            match stream.read(&mut buffer).await {
                Ok(0) | Err(_) => return,
                Ok(count) => answer.extend_from_slice(&buffer[..count]),
            }
        }
    })
    .await;
    assert!(read.is_ok(), "no whole answer in time; read so far: {}", String::from_utf8_lossy(&answer));
    String::from_utf8_lossy(&answer).into_owned()
}

async fn read_until_closed(stream: &mut TcpStream) -> String {
    let mut answer = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(120), stream.read_to_end(&mut answer)).await;
    assert!(read.is_ok(), "the connection was never closed; read so far: {}", String::from_utf8_lossy(&answer));
    String::from_utf8_lossy(&answer).into_owned()
}

const HEALTH_REQUEST: &str = "GET /healthz HTTP/1.1\r\nhost: ops\r\nconnection: close\r\n\r\n";
/// The same request on a connection that stays open for the next one.
const KEPT_ALIVE_HEALTH_REQUEST: &str = "GET /healthz HTTP/1.1\r\nhost: ops\r\n\r\n";
/// The start of a request whose headers never end, as a slowloris client sends.
const UNFINISHED_REQUEST: &str = "GET /healthz HTTP/1.1\r\nhost: ops\r\n";

#[tokio::test(flavor = "multi_thread")]
async fn a_client_that_never_finishes_its_headers_is_cut_off() {
    let fake = FakeAzure::start(Tenant::sample()).await.expect("a fake Azure");
    let entries = [TenantEntry::for_fake("contoso", &fake)];
    let serve = ServeProcess::start(&tenants_file(&entries), &secrets(&entries), &["--ops-header-timeout", "1s"]).await;
    let address = serve.ops_url.trim_start_matches("http://").to_owned();

    let mut slow = TcpStream::connect(&address).await.expect("the ops API accepts");
    slow.write_all(UNFINISHED_REQUEST.as_bytes()).await.expect("half a request is sent");
    let answer = read_until_closed(&mut slow).await;
    assert!(answer.is_empty(), "the server closed the connection without answering: {answer}");

    let mut idle = TcpStream::connect(&address).await.expect("the ops API accepts");
    assert!(read_until_closed(&mut idle).await.is_empty(), "a connection that sends nothing is closed too");
    assert!(exchange(&address, HEALTH_REQUEST).await.starts_with("HTTP/1.1 200"), "others are still served");
}

#[tokio::test(flavor = "multi_thread")]
async fn connections_past_the_cap_are_refused_until_one_closes() {
    const CAP: usize = 3;
    let fake = FakeAzure::start(Tenant::sample()).await.expect("a fake Azure");
    let entries = [TenantEntry::for_fake("contoso", &fake)];
    let serve = ServeProcess::start(
        &tenants_file(&entries),
        &secrets(&entries),
        &["--ops-max-connections", &CAP.to_string(), "--ops-header-timeout", "10m"],
    )
    .await;
    let address = serve.ops_url.trim_start_matches("http://").to_owned();

    // Hold CAP connections, each shown to have a slot by an answered request on it: kept alive,
    // it keeps its slot while the server waits for its next request. A connection the harness
    // closed a moment ago may still hold a slot, so a refused attempt is made again.
    let mut held = Vec::new();
    let bound = tokio::time::Instant::now() + Duration::from_secs(60);
    while held.len() < CAP {
        assert!(tokio::time::Instant::now() < bound, "{} connections never got a slot", CAP - held.len());
        let mut stream = TcpStream::connect(&address).await.expect("the ops API accepts");
        stream.write_all(KEPT_ALIVE_HEALTH_REQUEST.as_bytes()).await.expect("the request is sent");
        let answer = read_one_answer(&mut stream).await;
        if answer.starts_with("HTTP/1.1 200") {
            held.push(stream);
        } else {
            assert!(answer.is_empty() || answer.starts_with("HTTP/1.1 503"), "{answer}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    // Every slot is held by this test now: nothing can free one, so each new connection is refused.
    for _ in 0..3 {
        let refused = exchange(&address, HEALTH_REQUEST).await;
        assert!(refused.starts_with("HTTP/1.1 503") && refused.contains("too many connections"), "{refused}");
    }
    // Closing one gives its slot back.
    drop(held.pop());
    while !exchange(&address, HEALTH_REQUEST).await.starts_with("HTTP/1.1 200") {
        assert!(tokio::time::Instant::now() < bound, "the freed slot was never used again");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // The connections still held were never dropped: their next requests are served.
    for mut stream in held {
        stream.write_all(HEALTH_REQUEST.as_bytes()).await.expect("the request is sent");
        let answer = read_until_closed(&mut stream).await;
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    }
}
