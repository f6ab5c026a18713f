//! The one path from a sandbox to the network.
//!
//! A guest request is checked against the tenant's allow-list, refused if its method is not one
//! the call needs (a sync only reads; see `policy::Access`), stripped of any credentials and
//! method overrides, given the token for its origin's scope, sent, and retried when throttled.
//! The guest sees only Azure's answer.

use std::sync::{Arc, Mutex};

use http::{HeaderName, HeaderValue, Method};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::OutboundStats;
use super::log_budget::LogBudget;
use super::pacing::Pacer;
use super::policy::{Access, OutboundPolicy};
use super::retry::{RetryPolicy, send_with_retry};
use super::transport::{BufferedRequest, BufferedResponse, HttpTransport, TransportError};
use crate::credentials::{CredentialError, TokenProvider};
use crate::memory_budget::TenantBudget;
use crate::sandbox::TenantCallLimits;

#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    #[error("request to {0} refused: the origin is not in the allow-list")]
    OriginNotAllowed(String),
    #[error("{method} {uri} refused: {access}")]
    MethodNotAllowed { method: Method, uri: String, access: Access },
    #[error("request body larger than {0} bytes")]
    RequestTooLarge(usize),
    #[error(transparent)]
    Credentials(#[from] CredentialError),
    #[error(transparent)]
    Transport(#[from] TransportError),
}

/// One tenant's outbound path: its allow-list, its credentials, its switches.
pub struct TenantGateway {
    policy: OutboundPolicy,
    tokens: Option<Arc<TokenProvider>>,
    transport: HttpTransport,
    retry: RetryPolicy,
    max_request_bytes: usize,
    concurrency: Arc<Semaphore>,
    /// The tenant's throttling budgets (one app in one tenant), learned from Azure's answers.
    pacer: Pacer,
    stats: Arc<OutboundStats>,
    /// The first error a guest cannot explain itself (a refused token, a refused origin), kept
    /// so the host reports the real cause instead of the guest's generic transport error.
    first_failure: Mutex<Option<String>>,
    /// A guest can make failing requests as fast as it likes: their warnings are rationed.
    failure_log: LogBudget,
    /// What the tenant's calls may hold together; every sandbox given this gateway charges it.
    memory_budget: Arc<TenantBudget>,
    /// The tenant's own per-call limits. They live here because the gateway is the one object
    /// of a tenant that every one of its calls is given.
    call_limits: TenantCallLimits,
}

/// One of the tenant's `max_concurrent_requests`, held from before a request body is buffered
/// until its answer is back, so a guest cannot make the host buffer more bodies than that.
pub struct RequestSlot {
    _permit: OwnedSemaphorePermit,
}

pub struct GatewaySettings {
    pub policy: OutboundPolicy,
    pub tokens: Option<Arc<TokenProvider>>,
    pub transport: HttpTransport,
    pub max_concurrent_requests: usize,
    pub stats: Arc<OutboundStats>,
}

/// Per-tenant bounds on what its sandboxes can make the host do on the network.
#[derive(Clone, Copy, Debug)]
pub struct OutboundCaps {
    /// Requests in flight at once, across all of the tenant's sandboxes.
    pub max_concurrent_requests: usize,
    /// The largest answer accepted; a larger one fails the request.
    pub max_response_bytes: usize,
}

impl TenantGateway {
    pub fn new(settings: GatewaySettings) -> Self {
        TenantGateway {
            policy: settings.policy,
            tokens: settings.tokens,
            transport: settings.transport,
            retry: RetryPolicy::default(),
            max_request_bytes: 4 * 1024 * 1024,
            concurrency: Arc::new(Semaphore::new(settings.max_concurrent_requests.max(1))),
            pacer: Pacer::new(settings.stats.clone()),
            stats: settings.stats,
            first_failure: Mutex::new(None),
            memory_budget: Arc::new(TenantBudget::default()),
            call_limits: TenantCallLimits::default(),
            failure_log: LogBudget::default(),
        }
    }

    /// The same gateway with the tenant's own memory budget and per-call limits.
    pub fn with_sandbox_limits(mut self, memory_budget: Arc<TenantBudget>, call_limits: TenantCallLimits) -> Self {
        self.memory_budget = memory_budget;
        self.call_limits = call_limits;
        self
    }

    pub fn memory_budget(&self) -> &Arc<TenantBudget> {
        &self.memory_budget
    }

    pub fn call_limits(&self) -> TenantCallLimits {
        self.call_limits
    }

    /// Waits for one of the tenant's request slots.
    pub async fn request_slot(&self) -> Result<RequestSlot, GatewayError> {
        self.concurrency
            .clone()
            .acquire_owned()
            .await
            .map(|permit| RequestSlot { _permit: permit })
            .map_err(|_| GatewayError::Transport(TransportError::Protocol("outbound gateway closed".into())))
    }

    /// The same gateway with the tenant's own caps instead of the defaults.
    pub fn with_caps(mut self, caps: OutboundCaps) -> Self {
        self.concurrency = Arc::new(Semaphore::new(caps.max_concurrent_requests.max(1)));
        self.transport = self.transport.with_max_response_bytes(caps.max_response_bytes);
        self
    }

    pub fn stats(&self) -> &Arc<OutboundStats> {
        &self.stats
    }

    pub fn max_request_bytes(&self) -> usize {
        self.max_request_bytes
    }

    pub fn policy(&self) -> &OutboundPolicy {
        &self.policy
    }

    /// Fetches a token for every scope of the allow-list, so wrong credentials fail the run
    /// before any work, with Azure's own reason.
    pub async fn preflight(&self) -> Result<(), CredentialError> {
        if let Some(tokens) = &self.tokens {
            for scope in self.policy.token_scopes() {
                tokens.authorization(scope).await?;
            }
        }
        Ok(())
    }

    pub fn take_first_failure(&self) -> Option<String> {
        self.first_failure.lock().ok().and_then(|mut slot| slot.take())
    }

    fn remember_failure(&self, error: &GatewayError) {
        if let Ok(mut slot) = self.first_failure.lock()
            && slot.is_none()
        {
            *slot = Some(error.to_string());
        }
    }

    pub async fn send(&self, request: BufferedRequest) -> Result<BufferedResponse, GatewayError> {
        let slot = self.request_slot().await?;
        self.send_in_slot(request, slot).await
    }

    /// Sends a request whose slot was taken before its body was buffered.
    pub async fn send_in_slot(
        &self,
        mut request: BufferedRequest,
        _slot: RequestSlot,
    ) -> Result<BufferedResponse, GatewayError> {
        let result = self.send_checked(&mut request).await;
        if let Err(error) = &result {
            match error {
                // The guest cannot tell an operator which CA or proxy setting to fix.
                GatewayError::Transport(
                    TransportError::UntrustedCertificate(_)
                    | TransportError::CertificateRejected { .. }
                    | TransportError::Proxy(_),
                ) => self.remember_failure(error),
                GatewayError::Transport(_) => {}
                _ => {
                    self.stats.record_refused();
                    self.remember_failure(error);
                }
            }
            if let Some(suppressed_before) = self.failure_log.admit() {
                tracing::warn!(method = %request.method, uri = %redacted_uri(&request.uri), %error, suppressed_before, "outbound request failed");
            }
        }
        result
    }

    async fn send_checked(&self, request: &mut BufferedRequest) -> Result<BufferedResponse, GatewayError> {
        let Some(allowed) = self.policy.check(&request.uri) else {
            return Err(GatewayError::OriginNotAllowed(redacted_uri(&request.uri)));
        };
        let access = self.policy.access();
        if !access.allows(&request.method) {
            return Err(GatewayError::MethodNotAllowed {
                method: request.method.clone(),
                uri: redacted_uri(&request.uri),
                access,
            });
        }
        if request.body.len() > self.max_request_bytes {
            return Err(GatewayError::RequestTooLarge(self.max_request_bytes));
        }
        // The guest cannot set these (they are forbidden headers in the sandbox); removing them
        // again keeps the rule true for every caller of the gateway.
        request.headers.remove(http::header::AUTHORIZATION);
        request.headers.remove(http::header::COOKIE);
        request.headers.remove(http::header::PROXY_AUTHORIZATION);
        // Servers that honour these would run a GET as the method they name: the method checked
        // above must be the one that is run.
        for name in METHOD_OVERRIDE_HEADERS {
            request.headers.remove(HeaderName::from_static(name));
        }
        if let (Some(scope), Some(tokens)) = (&allowed.token_scope, &self.tokens) {
            let header: HeaderValue = tokens.authorization(scope).await?;
            request.headers.insert(http::header::AUTHORIZATION, header);
        }
        Ok(send_with_retry(&self.transport, request, self.retry, &self.stats, Some(&self.pacer)).await?)
    }
}

/// Headers that ask a server to run another method than the request's (lower case, as
/// `HeaderName::from_static` requires).
const METHOD_OVERRIDE_HEADERS: [&str; 3] = ["x-http-method-override", "x-http-method", "x-method-override"];

/// The URI without its query, for logs: queries can carry ids a log reader need not see, and
/// nothing sensitive lives in Azure paths.
pub fn redacted_uri(uri: &http::Uri) -> String {
    match (uri.scheme_str(), uri.authority()) {
        (Some(scheme), Some(authority)) => format!("{scheme}://{authority}{}", uri.path()),
        _ => uri.path().to_owned(),
    }
}
