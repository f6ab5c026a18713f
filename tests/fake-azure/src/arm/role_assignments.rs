//! Azure RBAC role assignments: listing with inheritance, create (PUT) and delete.
//!
//! Listing at a scope returns, like ARM: assignments at the scope, inherited ones from its ancestors,
//! and (without `$filter=atScope()`) those at its descendants. `properties.scope` tells which is which.

use axum::http::StatusCode;
use serde_json::{Value, json};

use super::error::{ArmError, check_api_version};
use super::resources::{AUTHORIZATION_API_VERSIONS, assignable_at, role_definition_id};
use super::scope::Scope;
use super::{ArmReply, check_scope_exists, page_with};
use crate::directory::ObjectKind;
use crate::model::ArmRoleAssignment;
use crate::request::ApiRequest;
use crate::server::{Shared, lock};

/// The `$filter`s ARM accepts on role assignment lists that the fake implements.
struct AssignmentFilter {
    at_scope_only: bool,
    principal_id: Option<String>,
}

impl AssignmentFilter {
    fn parse(request: &ApiRequest) -> Result<Self, ArmError> {
        let mut filter = AssignmentFilter { at_scope_only: false, principal_id: None };
        let Some(text) = request.query.get("$filter") else {
            return Ok(filter);
        };
        for clause in text.split(" and ").map(str::trim) {
            if clause.eq_ignore_ascii_case("atScope()") {
                filter.at_scope_only = true;
            } else if let Some(value) = clause
                .strip_prefix("principalId eq '")
                .or_else(|| clause.strip_prefix("assignedTo('"))
                .and_then(|rest| rest.strip_suffix('\'').or_else(|| rest.strip_suffix("')")))
            {
                filter.principal_id = Some(value.to_owned());
            } else {
                return Err(ArmError::bad_request(
                    "InvalidFilterInQueryString",
                    format!(
                        "The filter '{text}' is not supported. Supported filters: atScope(), principalId eq '{{id}}', assignedTo('{{id}}')."
                    ),
                ));
            }
        }
        Ok(filter)
    }
}

fn assignment_json(assignment: &ArmRoleAssignment, assignment_scope: &Scope, listed_at: &Scope) -> Value {
    json!({
        "properties": {
            "roleDefinitionId": role_definition_id(listed_at, &assignment.role_definition_id),
            "principalId": assignment.principal_id,
            "principalType": assignment.principal_type,
            "scope": assignment_scope.path(),
        },
        "id": format!(
            "{}/providers/Microsoft.Authorization/roleAssignments/{}",
            assignment_scope.id_prefix(),
            assignment.name
        ),
        "type": "Microsoft.Authorization/roleAssignments",
        "name": assignment.name,
    })
}

pub fn list(shared: &Shared, request: &ApiRequest, scope: &Scope) -> Result<ArmReply, ArmError> {
    check_api_version(request, AUTHORIZATION_API_VERSIONS)?;
    check_scope_exists(shared, scope)?;
    let filter = AssignmentFilter::parse(request)?;
    let directory = lock(&shared.directory);
    let assignments = &directory.tenant.arm_role_assignments;
    let listed: Vec<(&ArmRoleAssignment, &Scope)> = directory
        .rbac
        .candidates(scope)
        .into_iter()
        .filter(|(_, assignment_scope)| {
            assignment_scope.contains(scope) || (!filter.at_scope_only && scope.contains(assignment_scope))
        })
        .map(|(position, assignment_scope)| (&assignments[position], assignment_scope))
        .filter(|(assignment, _)| {
            filter
                .principal_id
                .as_deref()
                .is_none_or(|principal| assignment.principal_id.eq_ignore_ascii_case(principal))
        })
        .collect();
    page_with(shared, request, listed.len(), |page| {
        listed[page]
            .iter()
            .map(|(assignment, assignment_scope)| assignment_json(assignment, assignment_scope, scope))
            .collect()
    })
}

fn at_scope<'a>(
    assignments: &'a [ArmRoleAssignment],
    scope: &Scope,
    name: &str,
) -> Option<(usize, &'a ArmRoleAssignment)> {
    assignments.iter().enumerate().find(|(_, assignment)| {
        assignment.name.eq_ignore_ascii_case(name)
            && Scope::parse(&assignment.scope).is_some_and(|own| own.same_as(scope))
    })
}

fn not_found(name: &str) -> ArmError {
    ArmError::new(
        StatusCode::NOT_FOUND,
        "RoleAssignmentNotFound",
        format!("The role assignment '{name}' is not found."),
    )
}

pub fn get(shared: &Shared, request: &ApiRequest, scope: &Scope, name: &str) -> Result<ArmReply, ArmError> {
    check_api_version(request, AUTHORIZATION_API_VERSIONS)?;
    check_scope_exists(shared, scope)?;
    let directory = lock(&shared.directory);
    let (_, assignment) =
        at_scope(&directory.tenant.arm_role_assignments, scope, name).ok_or_else(|| not_found(name))?;
    Ok(ArmReply::Json(StatusCode::OK, assignment_json(assignment, scope, scope)))
}

fn is_guid(text: &str) -> bool {
    let groups: Vec<&str> = text.split('-').collect();
    groups.iter().map(|group| group.len()).eq([8, 4, 4, 4, 12])
        && groups.iter().all(|group| group.chars().all(|c| c.is_ascii_hexdigit()))
}

/// `PUT {scope}/providers/Microsoft.Authorization/roleAssignments/{guid}`.
pub fn create(shared: &Shared, request: &ApiRequest, scope: &Scope, name: &str) -> Result<ArmReply, ArmError> {
    check_api_version(request, AUTHORIZATION_API_VERSIONS)?;
    check_scope_exists(shared, scope)?;
    if !is_guid(name) {
        return Err(ArmError::bad_request(
            "InvalidRoleAssignmentId",
            format!("The role assignment ID '{name}' is not valid. The role assignment ID must be a GUID."),
        ));
    }
    let body: Value = serde_json::from_slice(&request.body).map_err(|error| {
        ArmError::bad_request("InvalidRequestContent", format!("The request content was invalid: {error}."))
    })?;
    let properties = &body["properties"];
    let field = |key: &str| {
        properties[key].as_str().map(str::to_owned).ok_or_else(|| {
            ArmError::bad_request(
                "InvalidRequestContent",
                format!("The request content must contain 'properties.{key}'."),
            )
        })
    };
    let role_guid = field("roleDefinitionId")?.rsplit('/').next().unwrap_or_default().to_owned();
    let principal_id = field("principalId")?;

    let mut directory = lock(&shared.directory);
    let role_is_assignable = directory
        .tenant
        .arm_role_definitions
        .iter()
        .any(|role| role.id.eq_ignore_ascii_case(&role_guid) && assignable_at(role, scope));
    if !role_is_assignable {
        return Err(ArmError::bad_request(
            "RoleDefinitionDoesNotExist",
            format!("The specified role definition with ID '{role_guid}' does not exist."),
        ));
    }
    let Some(principal_type) = directory.kind_of(&principal_id).and_then(ObjectKind::principal_type) else {
        return Err(ArmError::bad_request(
            "PrincipalNotFound",
            format!(
                "Principal {} does not exist in the directory {}. Check that you have the correct principal ID. If you are creating this principal and then immediately assigning a role, this error might be related to a replication delay.",
                principal_id.replace('-', ""),
                directory.tenant.tenant_id
            ),
        ));
    };
    let assignments = &mut directory.tenant.arm_role_assignments;
    let same_grant = |assignment: &ArmRoleAssignment| {
        assignment.role_definition_id.eq_ignore_ascii_case(&role_guid)
            && assignment.principal_id.eq_ignore_ascii_case(&principal_id)
            && Scope::parse(&assignment.scope).is_some_and(|own| own.same_as(scope))
    };
    if let Some(existing) = assignments.iter().find(|assignment| assignment.name.eq_ignore_ascii_case(name)) {
        return if same_grant(existing) {
            Ok(ArmReply::Json(StatusCode::OK, assignment_json(existing, scope, scope)))
        } else {
            Err(ArmError::bad_request(
                "RoleAssignmentUpdateNotPermitted",
                "Tenant ID, application ID, principal ID, and scope are not allowed to be updated.",
            ))
        };
    }
    if assignments.iter().any(same_grant) {
        return Err(ArmError::new(StatusCode::CONFLICT, "RoleAssignmentExists", "The role assignment already exists."));
    }
    let assignment = ArmRoleAssignment {
        name: name.to_ascii_lowercase(),
        scope: scope.path(),
        role_definition_id: role_guid,
        principal_id,
        principal_type: principal_type.to_owned(),
    };
    let reply = assignment_json(&assignment, scope, scope);
    assignments.push(assignment);
    directory.reindex_rbac();
    Ok(ArmReply::Json(StatusCode::CREATED, reply))
}

/// `DELETE …/roleAssignments/{guid}`: 200 with the deleted assignment, 204 when there was none.
pub fn delete(shared: &Shared, request: &ApiRequest, scope: &Scope, name: &str) -> Result<ArmReply, ArmError> {
    check_api_version(request, AUTHORIZATION_API_VERSIONS)?;
    check_scope_exists(shared, scope)?;
    let mut directory = lock(&shared.directory);
    let assignments = &mut directory.tenant.arm_role_assignments;
    let Some((index, _)) = at_scope(assignments, scope, name) else {
        return Ok(ArmReply::NoContent);
    };
    let removed = assignments.remove(index);
    directory.reindex_rbac();
    Ok(ArmReply::Json(StatusCode::OK, assignment_json(&removed, scope, scope)))
}
