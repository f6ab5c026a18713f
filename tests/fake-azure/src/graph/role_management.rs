//! `/roleManagement/directory`: role definitions, active assignments, and PIM eligibility (P2 only).

use axum::http::{Method, StatusCode};
use serde_json::{Value, json};

use super::collection::{CollectionSpec, entity, list};
use super::entities::{
    EntityType, GraphEntity, ROLE_ASSIGNMENT_TYPE, ROLE_DEFINITION_TYPE, ROLE_ELIGIBILITY_TYPE, WithPrincipal, to_json,
};
use super::error::GraphError;
use super::{GraphCall, GraphReply};
use crate::directory::{Directory, ObjectKind};
use crate::ids::{directory_role_assignment_id, iso_instant_now, random_guid};
use crate::model::{DirectoryRoleAssignment, DirectoryRoleEligibility};
use crate::server::lock;

const DEFINITION_FILTERS: &[&str] = &["id", "displayName", "isBuiltIn", "templateId"];
const ASSIGNMENT_FILTERS: &[&str] = &["id", "principalId", "roleDefinitionId", "directoryScopeId"];

pub fn route(call: &GraphCall, lowered: &[&str], original: &[String]) -> Result<GraphReply, GraphError> {
    let method = &call.request.method;
    match (method, lowered) {
        (&Method::GET, ["roledefinitions"]) => role_definitions(call),
        (&Method::GET, ["roledefinitions", _]) => role_definition(call, &original[1]),
        (&Method::GET, ["roleassignments"]) => role_assignments(call),
        (&Method::POST, ["roleassignments"]) => create_role_assignment(call),
        (&Method::DELETE, ["roleassignments", _]) => delete_role_assignment(call, &original[1]),
        (&Method::GET, ["roleeligibilityschedules"]) => role_eligibility_schedules(call),
        (&Method::POST, ["roleeligibilityschedulerequests"]) => role_eligibility_request(call),
        _ => Err(GraphError::unknown_segment(original.last().map_or("", String::as_str))),
    }
}

fn definitions_spec() -> CollectionSpec {
    CollectionSpec::new("roleManagement/directory/roleDefinitions", &ROLE_DEFINITION_TYPE)
        .filterable(DEFINITION_FILTERS)
}

fn role_definitions(call: &GraphCall) -> Result<GraphReply, GraphError> {
    let directory = lock(&call.shared.directory);
    let items = directory.tenant.role_definitions.iter().map(|role| role as &dyn GraphEntity).collect();
    list(call, &definitions_spec(), items, false)
}

fn role_definition(call: &GraphCall, id: &str) -> Result<GraphReply, GraphError> {
    let directory = lock(&call.shared.directory);
    let role = find_definition(&directory, id).ok_or_else(|| GraphError::not_found(id))?;
    entity(call, &definitions_spec(), role)
}

/// Built-in roles are addressed by id or template id (they are equal for built-ins).
fn find_definition<'a>(directory: &'a Directory, id: &str) -> Option<&'a crate::model::DirectoryRoleDefinition> {
    directory
        .tenant
        .role_definitions
        .iter()
        .find(|role| role.id.eq_ignore_ascii_case(id) || role.template_id.eq_ignore_ascii_case(id))
}

/// Whether the request asks for `$expand=principal`.
fn expands_principal(call: &GraphCall) -> bool {
    call.request.query.get("$expand").is_some_and(|expand| expand.trim().eq_ignore_ascii_case("principal"))
}

/// Serves role holdings (active assignments or eligibility schedules), each paired with its
/// principal when `$expand=principal` asks for it.
fn list_holdings<'a, E: GraphEntity + 'a>(
    call: &GraphCall,
    directory: &Directory,
    context: &str,
    entity_type: &'static EntityType,
    holdings: impl Iterator<Item = (&'a E, &'a str)>,
) -> Result<GraphReply, GraphError> {
    let expand = expands_principal(call);
    let views: Vec<WithPrincipal<'a, E>> = holdings
        .map(|(entity, principal_id)| WithPrincipal {
            entity,
            principal: expand
                .then(|| directory.object(principal_id))
                .flatten()
                .map(|principal| Value::Object(to_json(principal.entity(), None, true))),
        })
        .collect();
    let items = views.iter().map(|view| view as &dyn GraphEntity).collect();
    let spec = CollectionSpec::new(context, entity_type).filterable(ASSIGNMENT_FILTERS).expandable(&["principal"]);
    list(call, &spec, items, false)
}

fn role_assignments(call: &GraphCall) -> Result<GraphReply, GraphError> {
    let directory = lock(&call.shared.directory);
    let assignments = directory.tenant.role_assignments.iter().map(|a| (a, a.principal_id.as_str()));
    list_holdings(call, &directory, "roleManagement/directory/roleAssignments", &ROLE_ASSIGNMENT_TYPE, assignments)
}

fn required(body: &Value, name: &str) -> Result<String, GraphError> {
    body.get(name)
        .and_then(Value::as_str)
        .map(str::to_owned)
        .ok_or_else(|| GraphError::bad_request(format!("Invalid request body: property '{name}' is required.")))
}

/// Checks the principal and role of a new (eligible or active) assignment; returns the role's id.
fn validate_assignment(
    directory: &Directory,
    principal_id: &str,
    role_definition_id: &str,
) -> Result<String, GraphError> {
    let role =
        find_definition(directory, role_definition_id).ok_or_else(|| GraphError::not_found(role_definition_id))?;
    match directory.kind_of(principal_id) {
        Some(ObjectKind::User | ObjectKind::ServicePrincipal) => Ok(role.id.clone()),
        Some(ObjectKind::Group) => {
            let assignable = directory
                .group_index(principal_id)
                .is_some_and(|index| directory.tenant.groups[index].is_assignable_to_role);
            if assignable {
                Ok(role.id.clone())
            } else {
                Err(GraphError::bad_request(
                    "Only groups that can be assigned to roles (isAssignableToRole=true) can be role principals.",
                ))
            }
        }
        Some(_) | None => Err(GraphError::not_found(principal_id)),
    }
}

fn create_role_assignment(call: &GraphCall) -> Result<GraphReply, GraphError> {
    let body = call.json_body()?;
    let principal_id = required(&body, "principalId")?;
    let requested_role = required(&body, "roleDefinitionId")?;
    let scope = required(&body, "directoryScopeId")?;
    let mut directory = lock(&call.shared.directory);
    let role_definition_id = validate_assignment(&directory, &principal_id, &requested_role)?;
    let assignments = &mut directory.tenant.role_assignments;
    if assignments.iter().any(|existing| {
        existing.principal_id.eq_ignore_ascii_case(&principal_id)
            && existing.role_definition_id.eq_ignore_ascii_case(&role_definition_id)
            && existing.directory_scope_id == scope
    }) {
        return Err(GraphError::bad_request(
            "A conflicting object with one or more of the specified property values is present in the directory.",
        ));
    }
    let assignment = DirectoryRoleAssignment {
        id: directory_role_assignment_id(&role_definition_id, &principal_id, &scope),
        principal_id,
        role_definition_id,
        directory_scope_id: scope,
    };
    let reply = json!({
        "@odata.context": format!("{}#roleManagement/directory/roleAssignments/$entity", call.metadata_url()),
        "id": assignment.id,
        "roleDefinitionId": assignment.role_definition_id,
        "principalId": assignment.principal_id,
        "directoryScopeId": assignment.directory_scope_id,
    });
    assignments.push(assignment);
    Ok(GraphReply::Json(StatusCode::CREATED, reply))
}

fn delete_role_assignment(call: &GraphCall, id: &str) -> Result<GraphReply, GraphError> {
    let mut directory = lock(&call.shared.directory);
    let assignments = &mut directory.tenant.role_assignments;
    let position =
        assignments.iter().position(|assignment| assignment.id == id).ok_or_else(|| GraphError::not_found(id))?;
    assignments.remove(position);
    Ok(GraphReply::NoContent)
}

fn premium_license_required() -> GraphError {
    GraphError::new(
        StatusCode::BAD_REQUEST,
        "AadPremiumLicenseRequired",
        "The tenant needs to have Microsoft Entra ID P2 or Microsoft Entra ID Governance license.",
    )
}

fn role_eligibility_schedules(call: &GraphCall) -> Result<GraphReply, GraphError> {
    let directory = lock(&call.shared.directory);
    let eligibilities = directory.tenant.role_eligibilities.as_ref().ok_or_else(premium_license_required)?;
    let eligibilities = eligibilities.iter().map(|e| (e, e.principal_id.as_str()));
    let context = "roleManagement/directory/roleEligibilitySchedules";
    list_holdings(call, &directory, context, &ROLE_ELIGIBILITY_TYPE, eligibilities)
}

/// `POST roleEligibilityScheduleRequests` with `action` `adminAssign` or `adminRemove`.
fn role_eligibility_request(call: &GraphCall) -> Result<GraphReply, GraphError> {
    let body = call.json_body()?;
    let action = required(&body, "action")?;
    let principal_id = required(&body, "principalId")?;
    let requested_role = required(&body, "roleDefinitionId")?;
    let scope = required(&body, "directoryScopeId")?;
    let mut directory = lock(&call.shared.directory);
    let role_definition_id = validate_assignment(&directory, &principal_id, &requested_role)?;
    let eligibilities = directory.tenant.role_eligibilities.as_mut().ok_or_else(premium_license_required)?;
    let existing = eligibilities.iter().position(|eligibility| {
        eligibility.principal_id.eq_ignore_ascii_case(&principal_id)
            && eligibility.role_definition_id.eq_ignore_ascii_case(&role_definition_id)
            && eligibility.directory_scope_id == scope
    });
    let (status, target_schedule_id) = match (action.as_str(), existing) {
        ("adminAssign", Some(_)) => {
            return Err(GraphError::new(
                StatusCode::BAD_REQUEST,
                "RoleAssignmentExists",
                "The Role assignment already exists.",
            ));
        }
        ("adminAssign", None) => {
            let id = random_guid();
            eligibilities.push(DirectoryRoleEligibility {
                id: id.clone(),
                principal_id: principal_id.clone(),
                role_definition_id: role_definition_id.clone(),
                directory_scope_id: scope.clone(),
            });
            ("Provisioned", id)
        }
        ("adminRemove", Some(position)) => ("Revoked", eligibilities.remove(position).id),
        ("adminRemove", None) => {
            return Err(GraphError::new(
                StatusCode::BAD_REQUEST,
                "RoleAssignmentDoesNotExist",
                "The Role assignment does not exist.",
            ));
        }
        _ => return Err(GraphError::bad_request(format!("The action '{action}' is not supported by the fake."))),
    };
    let now = iso_instant_now();
    let reply = json!({
        "@odata.context": format!("{}#roleManagement/directory/roleEligibilityScheduleRequests/$entity", call.metadata_url()),
        "id": random_guid(),
        "status": status,
        "createdDateTime": now,
        "completedDateTime": now,
        "approvalId": null,
        "customData": null,
        "action": action,
        "principalId": principal_id,
        "roleDefinitionId": role_definition_id,
        "directoryScopeId": scope,
        "appScopeId": null,
        "isValidationOnly": false,
        "targetScheduleId": target_schedule_id,
        "justification": body.get("justification").cloned().unwrap_or(Value::Null),
        "scheduleInfo": body.get("scheduleInfo").cloned().unwrap_or(Value::Null),
        "ticketInfo": { "ticketNumber": null, "ticketSystem": null },
    });
    Ok(GraphReply::Json(StatusCode::CREATED, reply))
}
