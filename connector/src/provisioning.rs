//! Pieces shared by every grant and revoke: directory `$ref` writes, the result record, and the
//! tally of a revoke that removes several assignments.

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

/// A revoke that removes every assignment of the entitlement to the principal, one request
/// each: `revoked` when any request removed one (with the last such request id),
/// `already-revoked` when there was none or each was gone already.
#[derive(Default)]
pub struct Revocation {
    revoked_any: bool,
    request_id: Option<String>,
}

impl Revocation {
    /// Takes one removal's answer. An `already_gone` answer is passed over, whatever its status
    /// (ARM answers 204 for an assignment that was gone); any other failure is the revoke's
    /// error, naming `permission`.
    pub fn record(
        &mut self,
        response: ApiResponse,
        already_gone: bool,
        permission: &str,
    ) -> Result<(), ConnectorError> {
        if already_gone {
            return Ok(());
        }
        if !response.is_success() {
            return Err(response.into_error(Some(permission.to_owned())));
        }
        self.revoked_any = true;
        self.request_id = response.request_id();
        Ok(())
    }

    pub fn outcome(self, entitlement: &EntitlementId, principal: &Principal) -> ProvisionResult {
        let kind = if self.revoked_any { ProvisionOutcome::Revoked } else { ProvisionOutcome::AlreadyRevoked };
        outcome(kind, entitlement, principal, self.request_id)
    }
}
