//! Microsoft Graph (`/v1.0`, with `/beta` as an alias): directory reads, role management, the
//! provisioning writes and the directory audit log, behind Graph's authentication, throttling
//! and error conventions.

pub(crate) mod audit_log;
mod collection;
pub(crate) mod delta;
mod entities;
mod error;
mod filter;
mod reads;
mod role_management;
mod writes;

use axum::http::{Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::Value;

use crate::access_tokens::{Audience, TokenProblem};
use crate::ids::random_guid;
use crate::request::ApiRequest;
use crate::server::{Refusal, Shared, add_headers, lock};
use crate::throttle::request_units;
use error::{GraphError, throttled_body};

const GRAPH_JSON: &str =
    "application/json;odata.metadata=minimal;odata.streaming=true;IEEE754Compatible=false;charset=utf-8";

/// One Graph request on its way through the routes.
pub struct GraphCall<'a> {
    pub shared: &'a Shared,
    pub request: &'a ApiRequest,
    /// "v1.0" or "beta", echoed in `@odata.context`.
    pub version: &'a str,
}

impl GraphCall<'_> {
    /// The absolute `@odata.nextLink` that continues this request's collection at `cursor`:
    /// the same path and query, with an opaque `$skiptoken`.
    pub fn next_link(&self, cursor: crate::paging::PageCursor) -> String {
        let collection_key = self.request.path();
        let token = self.shared.page_tokens.encode(&collection_key, cursor);
        let original = self.request.query.raw_without("$skiptoken");
        let separator = if original.is_empty() { "" } else { "&" };
        format!(
            "{}{collection_key}?{original}{separator}$skiptoken={}",
            self.request.public_base(&self.shared.graph_url),
            token.replace('\'', "%27")
        )
    }

    pub fn metadata_url(&self) -> String {
        format!("{}/{}/$metadata", self.request.public_base(&self.shared.graph_url), self.version)
    }

    pub fn eventual_consistency(&self) -> bool {
        self.request.header("consistencylevel").is_some_and(|level| level.trim().eq_ignore_ascii_case("eventual"))
    }

    /// The JSON body of a write; Graph answers 400 when it is not JSON.
    pub fn json_body(&self) -> Result<Value, GraphError> {
        serde_json::from_slice(&self.request.body)
            .map_err(|error| GraphError::bad_request(format!("Write requests must have a JSON body: {error}.")))
    }
}

/// A successful Graph answer.
pub enum GraphReply {
    Json(StatusCode, Value),
    NoContent,
    /// `$count` segments answer text/plain.
    Text(String),
}

impl GraphReply {
    pub fn ok(body: Value) -> Self {
        GraphReply::Json(StatusCode::OK, body)
    }
}

pub fn handle(shared: &Shared, request: &ApiRequest) -> Response {
    let request_id = random_guid();
    let client_request_id = request.header("client-request-id").unwrap_or(&request_id).to_owned();
    let error_response = |error: GraphError| {
        let body = error.body(&request_id, &client_request_id);
        (error.status, [(header::CONTENT_TYPE, GRAPH_JSON)], body.to_string()).into_response()
    };

    let mut response = match shared.admit(request, Audience::Graph) {
        Err(refusal) => refusal_response(shared, refusal, &request_id, &client_request_id, &error_response),
        Ok(()) => match audited_route(shared, request) {
            Ok(GraphReply::Json(status, body)) => {
                (status, [(header::CONTENT_TYPE, GRAPH_JSON)], body.to_string()).into_response()
            }
            Ok(GraphReply::NoContent) => StatusCode::NO_CONTENT.into_response(),
            Ok(GraphReply::Text(text)) => {
                (StatusCode::OK, [(header::CONTENT_TYPE, "text/plain")], text).into_response()
            }
            Err(error) => error_response(error),
        },
    };
    let units = request_units(request);
    let headers = [
        ("request-id", request_id.clone()),
        ("client-request-id", client_request_id.clone()),
        ("x-ms-resource-unit", units.to_string()),
    ];
    let throttle_usage = shared.throttle.limit_percentage().map(|used| ("x-ms-throttle-limit-percentage", used));
    add_headers(&mut response, headers.into_iter().chain(throttle_usage));
    response
}

fn refusal_response(
    shared: &Shared,
    refusal: Refusal,
    request_id: &str,
    client_request_id: &str,
    error_response: &dyn Fn(GraphError) -> Response,
) -> Response {
    match refusal {
        Refusal::ScriptedFailure(status) => {
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            let code = match status {
                StatusCode::SERVICE_UNAVAILABLE => "serviceNotAvailable",
                StatusCode::GATEWAY_TIMEOUT => "gatewayTimeout",
                _ => "UnknownError",
            };
            error_response(GraphError::new(status, code, "The service encountered an internal error. Please retry."))
        }
        Refusal::Unauthenticated(problem) => {
            let message = match problem {
                TokenProblem::Missing => "Access token is empty.",
                TokenProblem::Unknown => "Access token validation failure.",
                TokenProblem::WrongAudience(_) => "Access token validation failure. Invalid audience.",
            };
            let mut response =
                error_response(GraphError::new(StatusCode::UNAUTHORIZED, "InvalidAuthenticationToken", message));
            let challenge = format!(
                "Bearer realm=\"\", authorization_uri=\"{}/common/oauth2/authorize\", client_id=\"00000003-0000-0000-c000-000000000000\"",
                shared.login_url
            );
            add_headers(&mut response, [(header::WWW_AUTHENTICATE, challenge)]);
            response
        }
        Refusal::Throttled { retry_after } => {
            let (client_id, tenant_id) = {
                let directory = lock(&shared.directory);
                (directory.tenant.client_id.clone(), directory.tenant.tenant_id.clone())
            };
            let body = throttled_body(request_id, client_request_id);
            let mut response =
                (StatusCode::TOO_MANY_REQUESTS, [(header::CONTENT_TYPE, GRAPH_JSON)], body.to_string()).into_response();
            add_headers(
                &mut response,
                [
                    ("retry-after", retry_after),
                    ("x-ms-throttle-information", "ResourceUnitLimitExceeded".to_owned()),
                    ("x-ms-throttle-scope", format!("Tenant_Application/ReadWrite/{client_id}/{tenant_id}")),
                ],
            );
            response
        }
        Refusal::Forbidden => error_response(GraphError::new(
            StatusCode::FORBIDDEN,
            "Authorization_RequestDenied",
            "Insufficient privileges to complete the operation.",
        )),
    }
}

/// Routes the request; after a write, whichever route took it and whether it succeeded, the
/// audit log records what it changed.
fn audited_route(shared: &Shared, request: &ApiRequest) -> Result<GraphReply, GraphError> {
    let reply = route(shared, request);
    if request.method != Method::GET {
        shared.audit_log.record_changes(&lock(&shared.directory));
    }
    reply
}

fn route(shared: &Shared, request: &ApiRequest) -> Result<GraphReply, GraphError> {
    let Some(version) = request.segments.first().map(String::as_str).filter(|v| *v == "v1.0" || *v == "beta") else {
        return Err(GraphError::new(
            StatusCode::BAD_REQUEST,
            "BadRequest",
            "Invalid version: the first path segment must be 'v1.0' or 'beta'.",
        ));
    };
    let call = GraphCall { shared, request, version };
    let original = &request.segments[1..];
    let lowered: Vec<String> = original.iter().map(|segment| segment.to_ascii_lowercase()).collect();
    let path: Vec<&str> = lowered.iter().map(String::as_str).collect();
    let id = |index: usize| original[index].as_str();
    let method = &request.method;
    let get = method == Method::GET;
    let post = method == Method::POST;
    let delete = method == Method::DELETE;

    match path.as_slice() {
        ["organization"] if get => reads::organization(&call),
        ["users"] if get => reads::users(&call, false),
        ["users", "delta"] if get => delta::serve(&call, delta::DeltaCollection::Users),
        ["groups", "delta"] if get => delta::serve(&call, delta::DeltaCollection::Groups),
        ["serviceprincipals", "delta"] if get => delta::serve(&call, delta::DeltaCollection::ServicePrincipals),
        ["users", "$count"] if get => reads::users(&call, true),
        ["users", _] if get => reads::user(&call, id(1)),
        ["users", _, "mailboxsettings"] if get => reads::mailbox_settings(&call, id(1), false),
        ["users", _, "mailboxsettings", "userpurpose"] if get => reads::mailbox_settings(&call, id(1), true),
        ["groups"] if get => reads::groups(&call, false),
        ["groups", "$count"] if get => reads::groups(&call, true),
        ["groups", _] if get => reads::group(&call, id(1)),
        ["groups", _, "members"] if get => reads::group_links(&call, id(1), reads::Link::Members, false),
        ["groups", _, "members", "$count"] if get => reads::group_links(&call, id(1), reads::Link::Members, true),
        ["groups", _, "owners"] if get => reads::group_links(&call, id(1), reads::Link::Owners, false),
        ["groups", _, link @ ("members" | "owners"), "$ref"] if post => writes::add_group_link(&call, id(1), link),
        ["groups", _, link @ ("members" | "owners"), _, "$ref"] if delete => {
            writes::remove_group_link(&call, id(1), link, id(3))
        }
        ["serviceprincipals"] if get => reads::service_principals(&call, false),
        ["serviceprincipals", "$count"] if get => reads::service_principals(&call, true),
        ["serviceprincipals", _] if get => reads::service_principal(&call, id(1)),
        ["serviceprincipals", _, "owners"] if get => reads::service_principal_owners(&call, id(1)),
        ["serviceprincipals", _, "owners", "$ref"] if post => writes::add_service_principal_owner(&call, id(1)),
        ["serviceprincipals", _, "owners", _, "$ref"] if delete => {
            writes::remove_service_principal_owner(&call, id(1), id(3))
        }
        ["serviceprincipals", _, "approleassignedto"] if get => reads::app_role_assigned_to(&call, id(1)),
        ["serviceprincipals", _, "approleassignedto"] if post => writes::assign_app_role(&call, id(1)),
        ["serviceprincipals", _, "approleassignedto", _] if delete => {
            writes::remove_app_role_assignment(&call, id(1), id(3))
        }
        ["directoryobjects", _] if get => reads::directory_object(&call, id(1)),
        ["auditlogs", "directoryaudits"] if get => audit_log::endpoint::directory_audits(&call),
        ["rolemanagement", "directory", rest @ ..] => role_management::route(&call, rest, &original[2..]),
        _ => Err(GraphError::unknown_segment(original.last().map_or("", String::as_str))),
    }
}
