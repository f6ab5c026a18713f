//! The `wasi:http` hooks of a sandbox: every request a guest makes lands here and goes to the
//! tenant's gateway; nothing else can reach the network.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::HeaderName;
use http_body_util::{BodyExt, Full};
use wasmtime_wasi_http::{
    DEFAULT_FORBIDDEN_HEADERS, Error as HttpError, ForbiddenHeaderFilter, RequestOptions, WasiBody, WasiHttpHooks,
};

use super::call_stats::GatewayWait;
use super::guest::OUTGOING_BODY_CHUNK;
use crate::memory_budget::{BudgetExceeded, CallBudget, Charge, CollectError, collect_charged};
use crate::outbound::gateway::{GatewayError, TenantGateway};
use crate::outbound::transport::{BufferedRequest, TransportError};

pub struct GuestHttpHooks {
    gateway: Arc<TenantGateway>,
    budget: Arc<CallBudget>,
    waited: GatewayWait,
}

impl GuestHttpHooks {
    pub fn new(gateway: Arc<TenantGateway>, budget: Arc<CallBudget>) -> Self {
        GuestHttpHooks { gateway, budget, waited: GatewayWait::default() }
    }

    /// How long this call's requests have waited on the gateway so far.
    pub fn waited(&self) -> Duration {
        self.waited.total()
    }
}

/// Headers a guest may not set: wasmtime's defaults plus every header that carries
/// credentials, because the host alone authenticates requests.
fn is_forbidden_for_guest(name: &HeaderName) -> bool {
    DEFAULT_FORBIDDEN_HEADERS.contains(name)
        || name == http::header::AUTHORIZATION
        || name == http::header::COOKIE
        || name.as_str() == "x-ms-authorization-auxiliary"
}

impl WasiHttpHooks for GuestHttpHooks {
    fn forbidden_header_filter(&mut self) -> ForbiddenHeaderFilter {
        Arc::new(is_forbidden_for_guest)
    }

    fn p2_outgoing_body_buffer_chunks(&mut self) -> usize {
        1
    }

    fn p2_outgoing_body_chunk_size(&mut self) -> usize {
        OUTGOING_BODY_CHUNK
    }

    fn send_request(
        &mut self,
        request: http::Request<WasiBody>,
        _options: Option<RequestOptions>,
        _fut: Box<dyn Future<Output = Result<(), HttpError>> + Send>,
    ) -> Box<
        dyn Future<
                Output = Result<
                    (http::Response<WasiBody>, Box<dyn Future<Output = Result<(), HttpError>> + Send>),
                    HttpError,
                >,
            > + Send,
    > {
        let gateway = self.gateway.clone();
        let budget = self.budget.clone();
        let waited = self.waited.clone();
        Box::new(async move {
            let started = Instant::now();
            // The slot comes first: without it, every request the guest opens could have the
            // host buffer its body at once.
            let slot = gateway.request_slot().await.map_err(error_for_guest)?;
            let (parts, body) = request.into_parts();
            let (body, _body_charge) = buffer_request_body(body, gateway.max_request_bytes(), &budget).await?;
            let buffered = BufferedRequest {
                method: parts.method,
                uri: parts.uri,
                headers: parts.headers,
                body,
                answer_budget: Some(budget.clone()),
            };
            let response = gateway.send_in_slot(buffered, slot).await;
            waited.add(started.elapsed());
            let response = response.map_err(error_for_guest)?;
            let body = charged_answer(response.body, &response.headers, &budget).map_err(budget_error)?;
            let mut answer = http::Response::new(
                Full::new(body).map_err(|never: std::convert::Infallible| match never {}).boxed_unsync(),
            );
            *answer.status_mut() = response.status;
            *answer.headers_mut() = response.headers;
            let done: Box<dyn Future<Output = Result<(), HttpError>> + Send> = Box::new(async { Ok(()) });
            Ok((answer, done))
        })
    }
}

/// Reads a guest's request body, charging each chunk to the call before keeping it. The charge
/// is held until the request is answered.
async fn buffer_request_body(
    body: WasiBody,
    max: usize,
    budget: &Arc<CallBudget>,
) -> Result<(Bytes, Charge), HttpError> {
    let mut charge = budget.empty_charge();
    let body =
        collect_charged(body, max, Some(&mut charge), "a request body being buffered").await.map_err(|error| {
            match error {
                CollectError::TooLarge => HttpError::HttpRequestBodySize(Some(max as u64)),
                CollectError::Refused(refusal) => budget_error(refusal),
                CollectError::Body(error) => error,
            }
        })?;
    Ok((body, charge))
}

/// An answer's bytes with its headers charged too, until the last of them is gone: the guest
/// may read them slowly, or never, while holding the response. The body was charged by the
/// transport as it arrived (`BufferedRequest::answer_budget`) and stays so.
fn charged_answer(body: Bytes, headers: &http::HeaderMap, budget: &Arc<CallBudget>) -> Result<Bytes, BudgetExceeded> {
    let header_bytes: usize = headers.iter().map(|(name, value)| name.as_str().len() + value.len()).sum();
    Ok(budget.charge(header_bytes, "an answer's headers held until the connector reads them")?.hold(body))
}

/// The guest is told its request failed; the call itself fails with the refusal afterwards
/// (`ConnectorCall` checks the budget), whatever the guest does with this error.
fn budget_error(refusal: BudgetExceeded) -> HttpError {
    HttpError::InternalError(Some(refusal.to_string()))
}

fn error_for_guest(error: GatewayError) -> HttpError {
    match error {
        GatewayError::OriginNotAllowed(_) | GatewayError::MethodNotAllowed { .. } => HttpError::HttpRequestDenied,
        GatewayError::RequestTooLarge(max) => HttpError::HttpRequestBodySize(Some(max as u64)),
        GatewayError::Credentials(_) => {
            HttpError::InternalError(Some("the host could not obtain a token for this origin".into()))
        }
        GatewayError::Transport(TransportError::ProhibitedAddress(_)) => HttpError::DestinationIpProhibited,
        GatewayError::Transport(TransportError::Timeout(_)) => HttpError::HttpResponseTimeout,
        GatewayError::Transport(TransportError::ResponseTooLarge(max)) => {
            HttpError::HttpResponseBodySize(Some(max as u64))
        }
        GatewayError::Transport(TransportError::Connect(_)) => HttpError::ConnectionRefused,
        GatewayError::Transport(TransportError::Protocol(_)) => HttpError::HttpProtocolError,
        GatewayError::Transport(
            TransportError::UntrustedCertificate(_) | TransportError::CertificateRejected { .. },
        ) => HttpError::TlsCertificateError,
        GatewayError::Transport(TransportError::Proxy(_)) => HttpError::ConnectionRefused,
        GatewayError::Transport(TransportError::Budget(refusal)) => budget_error(refusal),
    }
}
