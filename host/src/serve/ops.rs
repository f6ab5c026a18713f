//! The operations API, on its own listener (loopback by default): health for Kubernetes probes
//! without authentication; metrics and status behind either bearer token; sync triggers, grants
//! and revokes behind the operator token only.

use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::json;

use super::metrics;
use super::ops_token::{Access, OPERATOR_TOKEN, READ_TOKEN};
use super::service::{Service, TenantSlot};
use super::status::{TenantStatusView, rfc3339};
use crate::provision::{Action, Change};
use crate::sandbox::ResourceRef;

pub fn router(service: Arc<Service>) -> Router {
    let reading = Router::new()
        .route("/metrics", get(metrics_text))
        .route("/tenants", get(tenant_list))
        .route("/tenants/{id}", get(tenant_status))
        .route_layer(middleware::from_fn_with_state(service.clone(), require_read_access));
    let operating = Router::new()
        .route("/tenants/{id}/sync", post(trigger_sync))
        .route("/tenants/{id}/grant", post(grant))
        .route("/tenants/{id}/revoke", post(revoke))
        .route_layer(middleware::from_fn_with_state(service.clone(), require_operator_access));
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readiness))
        .merge(reading)
        .merge(operating)
        .with_state(service)
}

fn problem(status: StatusCode, message: impl Into<String>) -> Response {
    (status, axum::Json(json!({ "error": message.into() }))).into_response()
}

async fn require_read_access(State(service): State<Arc<Service>>, request: Request, next: Next) -> Response {
    require(&service, Access::Read, request, next).await
}

async fn require_operator_access(State(service): State<Arc<Service>>, request: Request, next: Next) -> Response {
    require(&service, Access::Operate, request, next).await
}

/// Lets the request through when its bearer token grants `needed`: 401 without a known token,
/// 403 for the read token on a route that changes something.
async fn require(service: &Service, needed: Access, request: Request, next: Next) -> Response {
    let credentials = &service.ops_credentials;
    if credentials.is_empty() {
        return problem(
            StatusCode::FORBIDDEN,
            format!(
                "no ops token is configured, so only /healthz and /readyz are served: set {} (or {}), and {} for read-only clients",
                OPERATOR_TOKEN.flag, OPERATOR_TOKEN.variable, READ_TOKEN.flag
            ),
        );
    }
    let authorization = request.headers().get(header::AUTHORIZATION).and_then(|value| value.to_str().ok());
    match credentials.access(authorization) {
        Access::None => {
            let mut response =
                problem(StatusCode::UNAUTHORIZED, "send an ops token as `Authorization: Bearer <token>`");
            response.headers_mut().insert(header::WWW_AUTHENTICATE, header::HeaderValue::from_static("Bearer"));
            response
        }
        granted if granted < needed => problem(
            StatusCode::FORBIDDEN,
            format!(
                "this token may only read (metrics and status): syncs, grants and revokes need the operator token ({})",
                OPERATOR_TOKEN.flag
            ),
        ),
        _ => next.run(request).await,
    }
}

async fn readiness(State(service): State<Arc<Service>>) -> Response {
    if service.is_shutting_down() {
        (StatusCode::SERVICE_UNAVAILABLE, "shutting down\n").into_response()
    } else if service.is_ready() {
        (StatusCode::OK, "ready\n").into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "loading the connector\n").into_response()
    }
}

async fn metrics_text(State(service): State<Arc<Service>>) -> Response {
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], metrics::render(&service)).into_response()
}

/// The tenant, or why it is not here (another replica serves it, or no such tenant): a 404.
fn find(service: &Service, id: &str) -> Result<Arc<TenantSlot>, String> {
    if let Some(slot) = service.tenants.get(id) {
        return Ok(slot.clone());
    }
    if service.all_tenant_ids.contains(id) {
        Err(format!(
            "tenant {id} is served by replica {} of {}, not this one ({})",
            service.shard.owner_of(id),
            service.shard.count,
            service.shard.index
        ))
    } else {
        Err(format!("no tenant {id} in the tenants file"))
    }
}

fn status_json(slot: &TenantSlot) -> serde_json::Value {
    let record = slot.record();
    let view = TenantStatusView {
        id: &slot.config.id,
        state: record.state,
        provisioning: slot.config.provisioning,
        sync_interval_seconds: slot.config.sync_interval.as_secs(),
        next_run: record.next_run.map(rfc3339),
        last_success_at: record.counters.last_success.map(rfc3339),
        last_result: record.last_result.as_ref(),
        last_error: record.last_error.as_ref(),
    };
    serde_json::to_value(&view).unwrap_or_else(|error| json!({ "error": error.to_string() }))
}

async fn tenant_list(State(service): State<Arc<Service>>) -> Response {
    let tenants: Vec<serde_json::Value> = service.tenants.values().map(|slot| status_json(slot)).collect();
    axum::Json(json!({ "tenants": tenants })).into_response()
}

async fn tenant_status(State(service): State<Arc<Service>>, Path(id): Path<String>) -> Response {
    match find(&service, &id) {
        Ok(slot) => axum::Json(status_json(&slot)).into_response(),
        Err(message) => problem(StatusCode::NOT_FOUND, message),
    }
}

async fn trigger_sync(State(service): State<Arc<Service>>, Path(id): Path<String>) -> Response {
    let slot = match find(&service, &id) {
        Ok(slot) => slot,
        Err(message) => return problem(StatusCode::NOT_FOUND, message),
    };
    if service.is_shutting_down() {
        return problem(StatusCode::SERVICE_UNAVAILABLE, "the service is shutting down: no new syncs start");
    }
    slot.trigger.notify_one();
    (StatusCode::ACCEPTED, axum::Json(json!({ "tenant": id, "sync": "queued" }))).into_response()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ChangeRequest {
    entitlement: String,
    principal_type: String,
    principal_id: String,
}

async fn grant(
    State(service): State<Arc<Service>>,
    Path(id): Path<String>,
    axum::Json(request): axum::Json<ChangeRequest>,
) -> Response {
    provision(service, id, Action::Grant, request).await
}

async fn revoke(
    State(service): State<Arc<Service>>,
    Path(id): Path<String>,
    axum::Json(request): axum::Json<ChangeRequest>,
) -> Response {
    provision(service, id, Action::Revoke, request).await
}

async fn provision(service: Arc<Service>, id: String, action: Action, request: ChangeRequest) -> Response {
    let slot = match find(&service, &id) {
        Ok(slot) => slot,
        Err(message) => return problem(StatusCode::NOT_FOUND, message),
    };
    if !slot.config.provisioning {
        return problem(
            StatusCode::FORBIDDEN,
            format!(
                "provisioning is off for tenant {id}: set provisioning = true for it in the tenants file once grants and revokes are approved"
            ),
        );
    }
    if service.is_shutting_down() {
        return problem(StatusCode::SERVICE_UNAVAILABLE, "the service is shutting down: no new changes start");
    }
    if !service.is_ready() {
        return problem(
            StatusCode::SERVICE_UNAVAILABLE,
            "the connector is still loading: retry when /readyz answers 200",
        );
    }
    let change = Change {
        action,
        entitlement_id: request.entitlement,
        principal: ResourceRef { resource_type: request.principal_type, id: request.principal_id },
    };
    let action_name = match action {
        Action::Grant => "grant",
        Action::Revoke => "revoke",
    };
    // In a task of its own: a client that hangs up, or the request timeout, must not cancel a
    // change half-way, after Azure made it but before the audit trail has it.
    let change_task = tokio::spawn(async move {
        let outcome = service.provision(&slot, &change).await;
        let (status, body, outcome_name) = match outcome {
            Ok(report) if report.error.is_none() => (StatusCode::OK, serde_json::to_value(&report), "success"),
            // Azure or the connector refused the change: the report says why, and it is audited.
            Ok(report) => (StatusCode::BAD_GATEWAY, serde_json::to_value(&report), "failure"),
            Err(error) => (StatusCode::INTERNAL_SERVER_ERROR, Ok(json!({ "error": format!("{error:#}") })), "failure"),
        };
        *slot.record().counters.provisioning.entry((action_name, outcome_name)).or_default() += 1;
        (status, body.unwrap_or_else(|error| json!({ "error": error.to_string() })))
    });
    match change_task.await {
        Ok((status, body)) => (status, axum::Json(body)).into_response(),
        Err(error) => problem(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!(
                "the {action_name} stopped on an internal error ({error}): read the audit trail before trying again"
            ),
        ),
    }
}
