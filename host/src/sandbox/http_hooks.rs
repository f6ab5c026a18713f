//! The `wasi:http` hooks of a sandbox: every request a guest makes lands here and goes to the
//! tenant's gateway; nothing else can reach the network.

use std::sync::Arc;
use std::time::{Duration, Instant};

use http::HeaderName;
use http_body_util::{BodyExt, Full, Limited};
use wasmtime_wasi_http::{
    DEFAULT_FORBIDDEN_HEADERS, Error as HttpError, ForbiddenHeaderFilter, RequestOptions, WasiBody, WasiHttpHooks,
};

use super::call_stats::GatewayWait;
use crate::outbound::gateway::{GatewayError, TenantGateway};
use crate::outbound::transport::{BufferedRequest, TransportError};

pub struct GuestHttpHooks {
    gateway: Arc<TenantGateway>,
    waited: GatewayWait,
}

impl GuestHttpHooks {
    pub fn new(gateway: Arc<TenantGateway>) -> Self {
        GuestHttpHooks { gateway, waited: GatewayWait::default() }
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
        let waited = self.waited.clone();
        Box::new(async move {
            let started = Instant::now();
            let (parts, body) = request.into_parts();
            let max = gateway.max_request_bytes();
            let body = Limited::new(body, max)
                .collect()
                .await
                .map_err(|_| HttpError::HttpRequestBodySize(Some(max as u64)))?
                .to_bytes();
            let buffered = BufferedRequest { method: parts.method, uri: parts.uri, headers: parts.headers, body };
            let response = gateway.send(buffered).await;
            waited.add(started.elapsed());
            let response = response.map_err(error_for_guest)?;
            let mut answer = http::Response::new(
                Full::new(response.body).map_err(|never: std::convert::Infallible| match never {}).boxed_unsync(),
            );
            *answer.status_mut() = response.status;
            *answer.headers_mut() = response.headers;
            let done: Box<dyn Future<Output = Result<(), HttpError>> + Send> = Box::new(async { Ok(()) });
            Ok((answer, done))
        })
    }
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
    }
}
