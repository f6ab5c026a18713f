//! The Microsoft identity platform's v2 token endpoint, client-credentials grant only.

use axum::http::{Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::access_tokens::Audience;
use crate::ids::{login_timestamp_now, random_guid};
use crate::request::ApiRequest;
use crate::server::{Shared, lock};

/// Lifetime the endpoint announces; the fake never expires tokens.
const EXPIRES_IN_SECS: u64 = 3599;

pub fn handle(shared: &Shared, request: &ApiRequest) -> Response {
    let segments: Vec<&str> = request.segments.iter().map(String::as_str).collect();
    match (&request.method, segments.as_slice()) {
        (&Method::POST, [tenant, "oauth2", "v2.0", "token"]) => token(shared, tenant, request),
        _ => login_error(
            shared,
            StatusCode::NOT_FOUND,
            "invalid_request",
            90010,
            "The request is not supported by this fake token service: only POST /{tenant}/oauth2/v2.0/token.",
        ),
    }
}

fn token(shared: &Shared, tenant_in_path: &str, request: &ApiRequest) -> Response {
    let form: Vec<(String, String)> = form_urlencoded::parse(&request.body).into_owned().collect();
    let field = |name: &str| {
        form.iter().find(|(key, _)| key == name).map(|(_, value)| value.trim()).filter(|value| !value.is_empty())
    };
    let (tenant_id, tenant_name, domain, client_id, client_secret) = {
        let directory = lock(&shared.directory);
        let tenant = &directory.tenant;
        (
            tenant.tenant_id.clone(),
            tenant.display_name.clone(),
            tenant.default_domain.clone(),
            tenant.client_id.clone(),
            tenant.client_secret.clone(),
        )
    };
    let refuse = |status, error, code, description: String| login_error(shared, status, error, code, &description);

    if !tenant_in_path.eq_ignore_ascii_case(&tenant_id) && !tenant_in_path.eq_ignore_ascii_case(&domain) {
        return refuse(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            90002,
            format!(
                "AADSTS90002: Tenant '{tenant_in_path}' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud. Check with your subscription administrator, this may happen if there are no active subscriptions for the tenant."
            ),
        );
    }
    match field("grant_type") {
        Some("client_credentials") => {}
        Some(other) => {
            return refuse(
                StatusCode::BAD_REQUEST,
                "unsupported_grant_type",
                70003,
                format!("AADSTS70003: The app requested an unsupported grant type '{other}'."),
            );
        }
        None => return missing_parameter(shared, "grant_type"),
    }
    let Some(requested_client) = field("client_id") else {
        return missing_parameter(shared, "client_id");
    };
    if !requested_client.eq_ignore_ascii_case(&client_id) {
        return refuse(
            StatusCode::BAD_REQUEST,
            "unauthorized_client",
            700016,
            format!(
                "AADSTS700016: Application with identifier '{requested_client}' was not found in the directory '{tenant_name}'. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant. You may have sent your authentication request to the wrong tenant."
            ),
        );
    }
    let Some(scope) = field("scope") else {
        return missing_parameter(shared, "scope");
    };
    let Some(audience) = Audience::of_scope(scope) else {
        return refuse(
            StatusCode::BAD_REQUEST,
            "invalid_scope",
            70011,
            format!(
                "AADSTS70011: The provided request must include a 'scope' input parameter. The provided value for the input parameter 'scope' is not valid. The scope {scope} is not valid."
            ),
        );
    };
    match field("client_secret") {
        Some(secret) if secret == client_secret => {}
        Some(_) => {
            return refuse(
                StatusCode::UNAUTHORIZED,
                "invalid_client",
                7000215,
                format!(
                    "AADSTS7000215: Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '{client_id}'."
                ),
            );
        }
        None => {
            return refuse(
                StatusCode::UNAUTHORIZED,
                "invalid_client",
                7000218,
                "AADSTS7000218: The request body must contain the following parameter: 'client_assertion' or 'client_secret'.".to_owned(),
            );
        }
    }
    let body = json!({
        "token_type": "Bearer",
        "expires_in": EXPIRES_IN_SECS,
        "ext_expires_in": EXPIRES_IN_SECS,
        "access_token": shared.tokens.issue(audience),
    });
    json_response(StatusCode::OK, &body)
}

fn missing_parameter(shared: &Shared, name: &str) -> Response {
    login_error(
        shared,
        StatusCode::BAD_REQUEST,
        "invalid_request",
        900144,
        &format!("AADSTS900144: The request body must contain the following parameter: '{name}'."),
    )
}

/// The token endpoint's error body: the description repeats the trace id, correlation id and time.
fn login_error(shared: &Shared, status: StatusCode, error: &str, code: u32, description: &str) -> Response {
    let trace_id = random_guid();
    let correlation_id = random_guid();
    let timestamp = login_timestamp_now();
    let body = json!({
        "error": error,
        "error_description": format!(
            "{description}\r\nTrace ID: {trace_id}\r\nCorrelation ID: {correlation_id}\r\nTimestamp: {timestamp}"
        ),
        "error_codes": [code],
        "timestamp": timestamp,
        "trace_id": trace_id,
        "correlation_id": correlation_id,
        "error_uri": format!("{}/error?code={code}", shared.login_url),
    });
    json_response(status, &body)
}

fn json_response(status: StatusCode, body: &serde_json::Value) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/json; charset=utf-8"), (header::CACHE_CONTROL, "no-store, no-cache")],
        body.to_string(),
    )
        .into_response()
}
