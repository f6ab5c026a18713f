//! The three loopback listeners (login, Graph, ARM; plain HTTP or HTTPS), their shared state, and
//! the test controls.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use anyhow::Context;
use axum::Router;
use axum::body::{Body, to_bytes};
use axum::extract::{ConnectInfo, Request, State};
use axum::http::header::{HOST, IntoHeaderName};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls_pki_types::pem::PemObject as _;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;

use crate::access_tokens::{AccessTokens, Audience, TokenProblem};
use crate::arm::activity_log::ActivityLog;
use crate::directory::Directory;
use crate::faults::Faults;
use crate::graph::audit_log::AuditLog;
use crate::ids::{random_guid, random_u64};
use crate::model::Tenant;
use crate::paging::PageTokens;
use crate::request::ApiRequest;
use crate::request_log::{Arrival, LoggedRequest, RequestLog, Service};
use crate::throttle::Throttle;
use crate::{arm, graph, login};

/// Request bodies are small JSON or form documents; anything bigger is a client bug.
const MAX_BODY_BYTES: usize = 1 << 20;
const DEFAULT_ARM_PAGE_SIZE: usize = 100;

/// A poisoned lock only means another handler panicked; the data is still the best we have.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Adds `headers` to a response. A value that cannot be a header value (one echoed from a
/// malformed request) is left out rather than failing the response.
pub(crate) fn add_headers<N: IntoHeaderName>(response: &mut Response, headers: impl IntoIterator<Item = (N, String)>) {
    let target = response.headers_mut();
    for (name, value) in headers {
        if let Ok(value) = HeaderValue::from_str(&value) {
            target.insert(name, value);
        }
    }
}

/// State shared by the three services.
pub(crate) struct Shared {
    pub directory: Mutex<Directory>,
    pub tokens: AccessTokens,
    pub throttle: Throttle,
    pub faults: Faults,
    pub log: RequestLog,
    pub page_tokens: PageTokens,
    pub delta: crate::graph::delta::DeltaStore,
    pub audit_log: AuditLog,
    pub activity_log: ActivityLog,
    pub arm_page_size: AtomicUsize,
    pub login_url: String,
    pub graph_url: String,
    pub arm_url: String,
}

/// Why a Graph or ARM request is answered before reaching its route; each service words it its own way.
pub(crate) enum Refusal {
    ScriptedFailure(u16),
    Unauthenticated(TokenProblem),
    Throttled { retry_after: String },
    Forbidden,
}

impl Shared {
    /// The checks Azure applies before routing, in the order a sync would meet them.
    pub fn admit(&self, request: &ApiRequest, audience: Audience) -> Result<(), Refusal> {
        if let Some(status) = self.faults.scripted_failure() {
            return Err(Refusal::ScriptedFailure(status));
        }
        self.tokens.check(request.header("authorization"), audience).map_err(Refusal::Unauthenticated)?;
        let graph_units = (audience == Audience::Graph).then(|| crate::throttle::request_units(request));
        if let Some(retry_after) = self.throttle.should_throttle(graph_units) {
            return Err(Refusal::Throttled { retry_after });
        }
        if self.faults.is_forbidden(&request.path()) {
            return Err(Refusal::Forbidden);
        }
        Ok(())
    }

    pub fn arm_page_size(&self) -> usize {
        self.arm_page_size.load(Ordering::Relaxed).max(1)
    }
}

#[derive(Clone)]
struct Listener {
    service: Service,
    shared: Arc<Shared>,
}

/// A running fake Azure. Dropping it stops the listeners.
pub struct FakeAzure {
    shared: Arc<Shared>,
    tasks: Vec<JoinHandle<()>>,
}

/// The certificate chain and private key (PEM) the fake serves HTTPS with, e.g. signed by a
/// test CA for the real Azure host names.
#[derive(Clone)]
pub struct TlsIdentity {
    pub certificate_chain_pem: String,
    pub private_key_pem: String,
}

impl FakeAzure {
    /// Binds three `127.0.0.1:0` listeners and serves plain HTTP on the current tokio runtime.
    pub async fn start(tenant: Tenant) -> anyhow::Result<FakeAzure> {
        FakeAzure::start_serving(tenant, None).await
    }

    /// Like [`FakeAzure::start`], but every listener speaks HTTPS with `identity` and offers
    /// HTTP/2 and HTTP/1.1 by ALPN; the URLs are `https://127.0.0.1:PORT`.
    pub async fn start_tls(tenant: Tenant, identity: &TlsIdentity) -> anyhow::Result<FakeAzure> {
        FakeAzure::start_serving(tenant, Some(tls_acceptor(identity)?)).await
    }

    async fn start_serving(tenant: Tenant, tls: Option<TlsAcceptor>) -> anyhow::Result<FakeAzure> {
        let login = bind("login").await?;
        let graph = bind("Graph").await?;
        let arm = bind("ARM").await?;
        let scheme = if tls.is_some() { "https" } else { "http" };
        let url = |(_, address): &(TcpListener, SocketAddr)| format!("{scheme}://{address}");
        let directory = Directory::new(tenant);
        let audit_log = AuditLog::new(&directory);
        let activity_log = ActivityLog::new(&directory.tenant);
        let shared = Arc::new(Shared {
            directory: Mutex::new(directory),
            tokens: AccessTokens::default(),
            throttle: Throttle::default(),
            faults: Faults::default(),
            log: RequestLog::default(),
            page_tokens: PageTokens::new(random_u64()),
            delta: Default::default(),
            audit_log,
            activity_log,
            arm_page_size: AtomicUsize::new(DEFAULT_ARM_PAGE_SIZE),
            login_url: url(&login),
            graph_url: url(&graph),
            arm_url: url(&arm),
        });
        let tasks = [(login, Service::Login), (graph, Service::Graph), (arm, Service::Arm)]
            .into_iter()
            .map(|((listener, _), service)| {
                let router =
                    Router::new().fallback(serve).with_state(Listener { service, shared: Arc::clone(&shared) });
                let tls = tls.clone();
                tokio::spawn(async move {
                    let result = match tls {
                        Some(acceptor) => serve_tls(listener, router, acceptor).await,
                        None => axum::serve(listener, router.into_make_service_with_connect_info::<SocketAddr>()).await,
                    };
                    if let Err(error) = result {
                        tracing::error!(?service, %error, "fake Azure listener stopped");
                    }
                })
            })
            .collect();
        Ok(FakeAzure { shared, tasks })
    }

    /// The `connector-host` flags that point a sync at this fake: its tenant's app registration
    /// (the credentials its token endpoint accepts) and its three loopback URLs.
    pub fn host_args(&self) -> Vec<String> {
        let mut args = self.credential_args();
        args.extend([
            "--login-url".into(),
            self.login_url(),
            "--graph-url".into(),
            self.graph_url(),
            "--arm-url".into(),
            self.arm_url(),
        ]);
        args
    }

    /// The `connector-host` flags of this fake's app registration alone, for a sync that
    /// reaches the fake under the cloud's own host names.
    pub fn credential_args(&self) -> Vec<String> {
        let directory = lock(&self.shared.directory);
        let tenant = &directory.tenant;
        vec![
            "--azure-client-id".into(),
            tenant.client_id.clone(),
            "--azure-client-secret".into(),
            tenant.client_secret.clone(),
            "--azure-tenant-id".into(),
            tenant.tenant_id.clone(),
        ]
    }

    /// `http://127.0.0.1:PORT` (`https://` with TLS) of the token endpoint's host.
    pub fn login_url(&self) -> String {
        self.shared.login_url.clone()
    }

    pub fn graph_url(&self) -> String {
        self.shared.graph_url.clone()
    }

    pub fn arm_url(&self) -> String {
        self.shared.arm_url.clone()
    }

    /// Every request received so far, in order.
    pub fn requests(&self) -> Vec<LoggedRequest> {
        self.shared.log.snapshot()
    }

    /// 0 = off; otherwise every `n`th authenticated Graph/ARM request answers 429.
    pub fn throttle_every(&self, n: u32) {
        self.shared.throttle.set_every(n);
    }

    /// The `Retry-After` of scripted 429s, in (possibly fractional) seconds; 0.05 by default.
    pub fn throttle_retry_after(&self, secs: f64) {
        self.shared.throttle.set_retry_after(secs);
    }

    /// Enforces Graph's resource-unit budget: `units` per `window` per app and tenant (a token
    /// bucket that starts full), answering 429 with the `Retry-After` the bucket needs. 0 = off.
    pub fn resource_unit_budget(&self, units: u32, window: std::time::Duration) {
        self.shared.throttle.set_resource_unit_budget(units, window);
    }

    /// Resource units charged to the Graph requests admitted so far (throttled ones cost nothing).
    pub fn resource_units_spent(&self) -> u64 {
        self.shared.throttle.resource_units_spent()
    }

    /// Graph/ARM requests whose path contains `path_fragment` (in any case, as both APIs read
    /// paths) answer 403 the way each API does: `forbid("auditLogs")` denies the audit log.
    pub fn forbid(&self, path_fragment: &str) {
        self.shared.faults.forbid(path_fragment);
    }

    /// After `requests` more Graph/ARM requests, every further one answers `status`.
    pub fn fail_after(&self, requests: usize, status: u16) {
        self.shared.faults.fail_after(requests, status);
    }

    /// Items per ARM page (100 by default).
    pub fn arm_page_size(&self, size: usize) {
        self.shared.arm_page_size.store(size, Ordering::Relaxed);
    }

    /// The tenant as it is now, including any writes received.
    pub fn tenant(&self) -> Tenant {
        lock(&self.shared.directory).tenant.clone()
    }

    /// Forgets every delta token issued so far: the next delta request with one answers
    /// 410 `syncStateNotFound`, as Graph does when a token is too old.
    pub fn expire_delta_tokens(&self) {
        self.shared.delta.expire_all();
    }

    /// Changes the tenant between syncs. Delta queries see the changes, the directory audit
    /// log records an event for each change to a service principal (its profile, owners and
    /// app-role assignments, its creation or deletion), as Graph writes do, and the Activity Log
    /// records each ARM role assignment, custom role definition and resource group created,
    /// changed or deleted, as ARM writes do.
    pub fn mutate(&self, change: impl FnOnce(&mut Tenant)) {
        let mut directory = lock(&self.shared.directory);
        change(&mut directory.tenant);
        directory.reindex();
        self.shared.audit_log.record_changes(&directory);
        self.shared.activity_log.record_changes(&directory.tenant, &random_guid());
    }

    /// Directory audit events are served only `latency` after they happened, keeping their
    /// original `activityDateTime`, as Entra's audit log arrives minutes late. Zero by default.
    pub fn audit_latency(&self, latency: std::time::Duration) {
        self.shared.audit_log.set_latency(latency);
    }

    /// Activity Log events are served only `latency` after they happened, keeping their
    /// original `eventTimestamp`, as Azure's Activity Log arrives minutes late. Zero by default.
    pub fn activity_log_latency(&self, latency: std::time::Duration) {
        self.shared.activity_log.set_latency(latency);
    }
}

impl Drop for FakeAzure {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

async fn bind(service: &str) -> anyhow::Result<(TcpListener, SocketAddr)> {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .with_context(|| format!("binding the fake {service} listener on 127.0.0.1"))?;
    let address = listener.local_addr().context("reading the bound address")?;
    Ok((listener, address))
}

/// Serves HTTPS on `listener`: a TLS handshake per connection, then HTTP/1.1 or HTTP/2 as the
/// client chose by ALPN. A failed handshake (a client that does not trust the certificate)
/// only ends that connection.
async fn serve_tls(listener: TcpListener, router: Router, acceptor: TlsAcceptor) -> std::io::Result<()> {
    loop {
        let (stream, peer) = listener.accept().await?;
        let acceptor = acceptor.clone();
        let router = router.clone();
        tokio::spawn(async move {
            let Ok(tls) = acceptor.accept(stream).await else { return };
            let service = hyper::service::service_fn(move |mut request: hyper::Request<hyper::body::Incoming>| {
                request.extensions_mut().insert(ConnectInfo(peer));
                tower_service::Service::call(&mut router.clone(), request)
            });
            let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(tls), service)
                .await;
        });
    }
}

fn tls_acceptor(identity: &TlsIdentity) -> anyhow::Result<TlsAcceptor> {
    let chain = CertificateDer::pem_slice_iter(identity.certificate_chain_pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .context("reading the fake's certificate chain (PEM)")?;
    let key = PrivateKeyDer::from_pem_slice(identity.private_key_pem.as_bytes())
        .context("reading the fake's private key (PEM)")?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .context("TLS protocol versions")?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .context("the fake's certificate and key do not fit together")?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}

async fn serve(State(listener): State<Listener>, request: Request) -> Response {
    let arrival = Arrival {
        version: request.version(),
        peer: request.extensions().get::<ConnectInfo<SocketAddr>>().map(|info| info.0),
    };
    let (parts, body) = request.into_parts();
    let path_and_query =
        parts.uri.path_and_query().map_or_else(|| parts.uri.path().to_owned(), |pq| pq.as_str().to_owned());
    // HTTP/2 carries the host in `:authority`, which hyper puts in the URI: seen as `Host`,
    // the way HTTP/1.1 sends it, so links and logs read the same in both.
    let mut headers = parts.headers.clone();
    if !headers.contains_key(HOST)
        && let Some(authority) = parts.uri.authority()
        && let Ok(host) = HeaderValue::from_str(authority.as_str())
    {
        headers.insert(HOST, host);
    }
    let response = match to_bytes(body, MAX_BODY_BYTES).await {
        Ok(body) => {
            let request =
                ApiRequest::new(parts.method.clone(), parts.uri.path(), parts.uri.query(), headers.clone(), body);
            let shared = &listener.shared;
            match listener.service {
                Service::Login => login::handle(shared, &request),
                Service::Graph => graph::handle(shared, &request),
                Service::Arm => arm::handle(shared, &request),
            }
        }
        Err(_) => (StatusCode::PAYLOAD_TOO_LARGE, Body::empty()).into_response(),
    };
    listener.shared.log.record(LoggedRequest::new(
        listener.service,
        parts.method.as_str(),
        &path_and_query,
        &headers,
        response.status().as_u16(),
        arrival,
    ));
    response
}
