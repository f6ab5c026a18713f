//! Pieces shared by every grant and revoke: directory `$ref` writes and the result record.

use serde_json::json;

use crate::contract::{ConnectorError, ProvisionOutcome, ProvisionResult};
use crate::graph::{Graph, is_already_exists, segment};
use crate::http::{ApiRequest, ApiResponse, Verb};
use crate::ids::{EntitlementId, Principal, grant_id};

pub fn outcome(
    outcome: ProvisionOutcome,
    entitlement: &EntitlementId,
    principal: &Principal,
    request_id: Option<String>,
) -> ProvisionResult {
    ProvisionResult {
        outcome,
        grant_id: grant_id(&entitlement.render(), principal.principal_type, &principal.id),
        request_id,
    }
}

/// The outcome of a write that creates an assignment: success is `granted`; Azure's
/// "already exists" (400/409) is `already-granted`; anything else is an error naming the
/// permission the app registration needs.
pub fn creation_outcome(
    response: ApiResponse,
    entitlement: &EntitlementId,
    principal: &Principal,
    permission: &str,
) -> Result<ProvisionResult, ConnectorError> {
    if response.is_success() {
        Ok(outcome(ProvisionOutcome::Granted, entitlement, principal, response.request_id()))
    } else if is_already_exists(&response) {
        Ok(outcome(ProvisionOutcome::AlreadyGranted, entitlement, principal, response.request_id()))
    } else {
        Err(response.into_error(Some(permission.to_owned())))
    }
}

/// `POST {collection}/$ref` with `{"@odata.id": "{graph-url}/v1.0/directoryObjects/{id}"}`,
/// e.g. `/groups/{id}/members`. Graph's 400 "already exist" means already granted.
pub fn add_reference(
    graph: &Graph,
    collection: &str,
    entitlement: &EntitlementId,
    principal: &Principal,
    permission: &str,
) -> Result<ProvisionResult, ConnectorError> {
    let body = json!({ "@odata.id": graph.directory_object_ref(&principal.id) });
    let url = graph.url(&format!("{collection}/$ref"), &[]);
    let response = graph.send(ApiRequest::with_json(Verb::Post, url, &body))?;
    creation_outcome(response, entitlement, principal, permission)
}

/// `DELETE {collection}/{id}/$ref`. A 404 (not a member/owner) means already revoked.
pub fn remove_reference(
    graph: &Graph,
    collection: &str,
    entitlement: &EntitlementId,
    principal: &Principal,
    permission: &str,
) -> Result<ProvisionResult, ConnectorError> {
    let url = graph.url(&format!("{collection}/{}/$ref", segment(&principal.id)), &[]);
    let response = graph.send(ApiRequest::delete(url))?;
    if response.is_success() {
        Ok(outcome(ProvisionOutcome::Revoked, entitlement, principal, response.request_id()))
    } else if response.status == 404 {
        Ok(outcome(ProvisionOutcome::AlreadyRevoked, entitlement, principal, response.request_id()))
    } else {
        Err(response.into_error(Some(permission.to_owned())))
    }
}
