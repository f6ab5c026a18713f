//! Provisioning writes on groups and service principals: member/owner references and app-role assignments.

use axum::http::StatusCode;
use serde_json::{Value, json};

use super::error::GraphError;
use super::{GraphCall, GraphReply};
use crate::directory::{Directory, ObjectKind};
use crate::ids::{app_role_assignment_id, iso_instant_now};
use crate::model::AppRoleAssignment;
use crate::server::lock;

/// The app role id that means "default access" (no specific role).
const DEFAULT_ACCESS_ROLE: &str = "00000000-0000-0000-0000-000000000000";

/// The object id in `{"@odata.id": "https://graph.microsoft.com/v1.0/directoryObjects/{id}"}`.
fn referenced_object_id(call: &GraphCall) -> Result<String, GraphError> {
    let body = call.json_body()?;
    body.get("@odata.id")
        .and_then(Value::as_str)
        .and_then(|reference| reference.trim_end_matches('/').rsplit('/').next())
        .filter(|id| !id.is_empty())
        .map(str::to_owned)
        .ok_or_else(|| GraphError::bad_request("Invalid request body: an '@odata.id' reference is required."))
}

fn already_exists(link: &str) -> GraphError {
    GraphError::bad_request(format!(
        "One or more added object references already exist for the following modified properties: '{link}'."
    ))
}

/// Owners of groups and service principals can only be users and service principals.
fn check_owner_kind(directory: &Directory, id: &str) -> Result<(), GraphError> {
    match directory.kind_of(id) {
        Some(ObjectKind::User | ObjectKind::ServicePrincipal) => Ok(()),
        Some(_) => Err(GraphError::bad_request(
            "Unsupported referenced-object resource identifier for link property 'owners'.",
        )),
        None => Err(GraphError::not_found(id)),
    }
}

/// `POST /groups/{id}/members/$ref` and `/owners/$ref`.
pub fn add_group_link(call: &GraphCall, group_id: &str, link: &str) -> Result<GraphReply, GraphError> {
    let object_id = referenced_object_id(call)?;
    let mut directory = lock(&call.shared.directory);
    let index = directory.group_index(group_id).ok_or_else(|| GraphError::not_found(group_id))?;
    if link == "owners" {
        check_owner_kind(&directory, &object_id)?;
    }
    let Some(object) = directory.object(&object_id) else {
        return Err(GraphError::not_found(&object_id));
    };
    let canonical_id = object.entity_id().to_owned();
    let group = &mut directory.tenant.groups[index];
    let ids = if link == "owners" { &mut group.owners } else { &mut group.members };
    add_id(ids, canonical_id, link)
}

/// `DELETE /groups/{id}/members/{memberId}/$ref` and `/owners/{ownerId}/$ref`.
pub fn remove_group_link(
    call: &GraphCall,
    group_id: &str,
    link: &str,
    object_id: &str,
) -> Result<GraphReply, GraphError> {
    let mut directory = lock(&call.shared.directory);
    let index = directory.group_index(group_id).ok_or_else(|| GraphError::not_found(group_id))?;
    let group = &mut directory.tenant.groups[index];
    let ids = if link == "owners" { &mut group.owners } else { &mut group.members };
    remove_id(ids, object_id)
}

/// Adds an object to the `link` (members or owners) of another; Graph refuses one that is there.
fn add_id(ids: &mut Vec<String>, canonical_id: String, link: &str) -> Result<GraphReply, GraphError> {
    if ids.iter().any(|id| id.eq_ignore_ascii_case(&canonical_id)) {
        return Err(already_exists(link));
    }
    ids.push(canonical_id);
    Ok(GraphReply::NoContent)
}

fn remove_id(ids: &mut Vec<String>, object_id: &str) -> Result<GraphReply, GraphError> {
    let position =
        ids.iter().position(|id| id.eq_ignore_ascii_case(object_id)).ok_or_else(|| GraphError::not_found(object_id))?;
    ids.remove(position);
    Ok(GraphReply::NoContent)
}

pub fn add_service_principal_owner(call: &GraphCall, sp_id: &str) -> Result<GraphReply, GraphError> {
    let object_id = referenced_object_id(call)?;
    let mut directory = lock(&call.shared.directory);
    let index = directory.service_principal_index(sp_id).ok_or_else(|| GraphError::not_found(sp_id))?;
    check_owner_kind(&directory, &object_id)?;
    let canonical_id = directory.object(&object_id).map_or(object_id, |object| object.entity_id().to_owned());
    add_id(&mut directory.tenant.service_principals[index].owners, canonical_id, "owners")
}

pub fn remove_service_principal_owner(call: &GraphCall, sp_id: &str, owner_id: &str) -> Result<GraphReply, GraphError> {
    let mut directory = lock(&call.shared.directory);
    let index = directory.service_principal_index(sp_id).ok_or_else(|| GraphError::not_found(sp_id))?;
    remove_id(&mut directory.tenant.service_principals[index].owners, owner_id)
}

fn required_string(body: &Value, name: &str) -> Result<String, GraphError> {
    body.get(name)
        .and_then(Value::as_str)
        .map(str::to_owned)
        .ok_or_else(|| GraphError::bad_request(format!("Invalid request body: property '{name}' is required.")))
}

/// `POST /servicePrincipals/{id}/appRoleAssignedTo` with `{principalId, resourceId, appRoleId}`.
pub fn assign_app_role(call: &GraphCall, sp_id: &str) -> Result<GraphReply, GraphError> {
    let body = call.json_body()?;
    let principal_id = required_string(&body, "principalId")?;
    let resource_id = required_string(&body, "resourceId")?;
    let app_role_id = required_string(&body, "appRoleId")?;
    let mut directory = lock(&call.shared.directory);
    let index = directory.service_principal_index(sp_id).ok_or_else(|| GraphError::not_found(sp_id))?;
    if !resource_id.eq_ignore_ascii_case(&directory.tenant.service_principals[index].id) {
        return Err(GraphError::bad_request(
            "The resourceId in the request body must be the service principal in the request URL.",
        ));
    }
    let principal = directory.object(&principal_id).ok_or_else(|| GraphError::not_found(&principal_id))?;
    let kind = directory.kind_of(&principal_id);
    let principal_type = kind
        .and_then(ObjectKind::principal_type)
        .ok_or_else(|| GraphError::bad_request("Principal type is not supported for app role assignments."))?;
    let principal_display_name = principal.display_name().to_owned();
    let principal_id = principal.entity_id().to_owned();
    let sp = &directory.tenant.service_principals[index];
    if app_role_id != DEFAULT_ACCESS_ROLE {
        let role =
            sp.app_roles.iter().find(|role| role.id.eq_ignore_ascii_case(&app_role_id) && role.is_enabled).ok_or_else(
                || {
                    GraphError::bad_request(format!(
                        "Permission being assigned was not found on application '{}'.",
                        sp.app_id
                    ))
                },
            )?;
        let needed = if kind == Some(ObjectKind::ServicePrincipal) { "Application" } else { "User" };
        if !role.allowed_member_types.iter().any(|allowed| allowed == needed) {
            return Err(GraphError::bad_request(format!(
                "Permission being assigned is not allowed for principals of type '{principal_type}'."
            )));
        }
    }
    if sp.app_role_assigned_to.iter().any(|existing| {
        existing.principal_id.eq_ignore_ascii_case(&principal_id)
            && existing.app_role_id.eq_ignore_ascii_case(&app_role_id)
    }) {
        return Err(GraphError::bad_request("Permission being assigned already exists on the object"));
    }
    let assignment = AppRoleAssignment {
        id: app_role_assignment_id(&principal_id, &sp.id, &app_role_id),
        app_role_id,
        principal_id,
        principal_type: principal_type.to_owned(),
        principal_display_name,
        resource_id: sp.id.clone(),
    };
    let reply = json!({
        "@odata.context": format!("{}#servicePrincipals('{}')/appRoleAssignedTo/$entity", call.metadata_url(), sp.id),
        "id": assignment.id,
        "deletedDateTime": null,
        "appRoleId": assignment.app_role_id,
        "createdDateTime": iso_instant_now(),
        "principalDisplayName": assignment.principal_display_name,
        "principalId": assignment.principal_id,
        "principalType": assignment.principal_type,
        "resourceDisplayName": sp.display_name,
        "resourceId": assignment.resource_id,
    });
    directory.tenant.service_principals[index].app_role_assigned_to.push(assignment);
    Ok(GraphReply::Json(StatusCode::CREATED, reply))
}

/// `DELETE /servicePrincipals/{id}/appRoleAssignedTo/{assignmentId}`.
pub fn remove_app_role_assignment(
    call: &GraphCall,
    sp_id: &str,
    assignment_id: &str,
) -> Result<GraphReply, GraphError> {
    let mut directory = lock(&call.shared.directory);
    let index = directory.service_principal_index(sp_id).ok_or_else(|| GraphError::not_found(sp_id))?;
    let assignments = &mut directory.tenant.service_principals[index].app_role_assigned_to;
    // Assignment ids are base64url: case matters.
    let position = assignments
        .iter()
        .position(|assignment| assignment.id == assignment_id)
        .ok_or_else(|| GraphError::not_found(assignment_id))?;
    assignments.remove(position);
    Ok(GraphReply::NoContent)
}
