//! Grants and revokes of directory roles: active assignments (`roleAssignments`) at the
//! tenant scope "/", and PIM eligibility through `roleEligibilityScheduleRequests`
//! (adminAssign / adminRemove, starting now, without expiration).

use serde_json::json;

use crate::config::Config;
use crate::contract::{ConnectorError, ProvisionOutcome, ProvisionResult};
use crate::directory_roles::{ASSIGNMENTS_PATH, ELIGIBILITY_PATH, RoleHolding};
use crate::graph::{Graph, segment};
use crate::http::{ApiRequest, Verb};
use crate::ids::{EntitlementId, Principal, Slug};
use crate::provisioning::{Revocation, creation_outcome, outcome};
use crate::wasi_support::now_rfc3339;

const WRITE_ROLES: &str = "RoleManagement.ReadWrite.Directory";
const SCHEDULE_REQUESTS_PATH: &str = "/roleManagement/directory/roleEligibilityScheduleRequests";
const TENANT_SCOPE: &str = "/";
const JUSTIFICATION: &str = "Requested through the identity-governance connector";

pub fn grant(
    config: &Config,
    entitlement: &EntitlementId,
    principal: &Principal,
) -> Result<ProvisionResult, ConnectorError> {
    let graph = Graph::new(config);
    match entitlement.slug {
        Slug::Assigned => grant_active(&graph, entitlement, principal),
        Slug::Eligible => {
            let response = graph.send(schedule_request(&graph, "adminAssign", entitlement, principal, TENANT_SCOPE))?;
            creation_outcome(response, entitlement, principal, WRITE_ROLES)
        }
        _ => Err(not_a_role_entitlement(entitlement)),
    }
}

pub fn revoke(
    config: &Config,
    entitlement: &EntitlementId,
    principal: &Principal,
) -> Result<ProvisionResult, ConnectorError> {
    let graph = Graph::new(config);
    let (path, is_eligibility) = match entitlement.slug {
        Slug::Assigned => (ASSIGNMENTS_PATH, false),
        Slug::Eligible => (ELIGIBILITY_PATH, true),
        _ => return Err(not_a_role_entitlement(entitlement)),
    };
    // Only that principal's holdings of that role are touched.
    let holdings = holdings_of(&graph, path, entitlement, principal)?;
    let mut revocation = Revocation::default();
    for holding in &holdings {
        let response = if is_eligibility {
            let scope = holding.directory_scope_id.as_deref().unwrap_or(TENANT_SCOPE);
            graph.send(schedule_request(&graph, "adminRemove", entitlement, principal, scope))?
        } else {
            let url = graph.url(&format!("{ASSIGNMENTS_PATH}/{}", segment(&holding.id)), &[]);
            graph.send(ApiRequest::delete(url))?
        };
        let already_gone = !response.is_success()
            && (response.status == 404
                || response.upstream_error().code.eq_ignore_ascii_case("RoleAssignmentDoesNotExist"));
        revocation.record(response, already_gone, WRITE_ROLES)?;
    }
    Ok(revocation.outcome(entitlement, principal))
}

/// An existing tenant-wide assignment answers already-granted without a write; otherwise
/// `POST roleAssignments {principalId, roleDefinitionId, directoryScopeId: "/"}`.
fn grant_active(
    graph: &Graph,
    entitlement: &EntitlementId,
    principal: &Principal,
) -> Result<ProvisionResult, ConnectorError> {
    let existing = holdings_of(graph, ASSIGNMENTS_PATH, entitlement, principal)?;
    if existing.iter().any(|holding| holding.directory_scope_id.as_deref() == Some(TENANT_SCOPE)) {
        return Ok(outcome(ProvisionOutcome::AlreadyGranted, entitlement, principal, None));
    }
    let body = json!({
        "principalId": principal.id,
        "roleDefinitionId": entitlement.resource_id,
        "directoryScopeId": TENANT_SCOPE,
    });
    let url = graph.url(ASSIGNMENTS_PATH, &[]);
    let response = graph.send(ApiRequest::with_json(Verb::Post, url, &body))?;
    creation_outcome(response, entitlement, principal, WRITE_ROLES)
}

/// `GET {path}?$filter=roleDefinitionId eq '{role}' and principalId eq '{principal}'`, all pages.
fn holdings_of(
    graph: &Graph,
    path: &str,
    entitlement: &EntitlementId,
    principal: &Principal,
) -> Result<Vec<RoleHolding>, ConnectorError> {
    let filter = format!("roleDefinitionId eq '{}' and principalId eq '{}'", entitlement.resource_id, principal.id);
    graph.collection_all(graph.url(path, &[("$filter", &filter)]), WRITE_ROLES)
}

fn schedule_request(
    graph: &Graph,
    action: &str,
    entitlement: &EntitlementId,
    principal: &Principal,
    directory_scope_id: &str,
) -> ApiRequest {
    let mut body = json!({
        "action": action,
        "justification": JUSTIFICATION,
        "roleDefinitionId": entitlement.resource_id,
        "directoryScopeId": directory_scope_id,
        "principalId": principal.id,
    });
    if action == "adminAssign" {
        body["scheduleInfo"] = json!({
            "startDateTime": now_rfc3339(),
            "expiration": { "type": "noExpiration" },
        });
    }
    ApiRequest::with_json(Verb::Post, graph.url(SCHEDULE_REQUESTS_PATH, &[]), &body)
}

fn not_a_role_entitlement(entitlement: &EntitlementId) -> ConnectorError {
    ConnectorError::Unsupported(format!("{} is not a directory role entitlement", entitlement.render()))
}
