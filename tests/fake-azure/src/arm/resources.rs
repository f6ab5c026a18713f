//! ARM reads that are not role assignments: tenants, subscriptions, resource groups,
//! role definitions and user-assigned managed identities.

use axum::http::StatusCode;
use serde_json::{Value, json};

use super::error::{ArmError, check_api_version};
use super::scope::Scope;
use super::{ArmReply, check_scope_exists, page_of};
use crate::model::{ArmRoleDefinition, Subscription};
use crate::request::ApiRequest;
use crate::server::{Shared, lock};

/// api-versions of Microsoft.Resources (tenants, subscriptions, resource groups).
const RESOURCES_API_VERSIONS: &[&str] =
    &["2016-06-01", "2019-11-01", "2020-01-01", "2021-01-01", "2021-04-01", "2022-12-01", "2024-03-01"];
/// api-versions of Microsoft.Authorization role definitions and assignments.
pub const AUTHORIZATION_API_VERSIONS: &[&str] =
    &["2015-07-01", "2018-01-01-preview", "2020-04-01-preview", "2022-04-01"];
const MANAGED_IDENTITY_API_VERSIONS: &[&str] = &["2018-11-30", "2023-01-31", "2024-11-30"];

pub fn tenants(shared: &Shared, request: &ApiRequest) -> Result<ArmReply, ArmError> {
    check_api_version(request, RESOURCES_API_VERSIONS)?;
    let directory = lock(&shared.directory);
    let tenant = &directory.tenant;
    let item = json!({
        "id": format!("/tenants/{}", tenant.tenant_id),
        "tenantId": tenant.tenant_id,
        "countryCode": "US",
        "displayName": tenant.display_name,
        "domains": [tenant.default_domain],
        "tenantCategory": "Home",
        "defaultDomain": tenant.default_domain,
        "tenantType": "AAD",
    });
    page_of(shared, request, vec![item])
}

fn subscription_json(subscription: &Subscription) -> Value {
    json!({
        "id": format!("/subscriptions/{}", subscription.subscription_id),
        "subscriptionId": subscription.subscription_id,
        "tenantId": subscription.tenant_id,
        "displayName": subscription.display_name,
        "state": subscription.state,
        "subscriptionPolicies": {
            "locationPlacementId": "Public_2014-09-01",
            "quotaId": "PayAsYouGo_2014-09-01",
            "spendingLimit": "Off"
        },
        "authorizationSource": "RoleBased",
        "managedByTenants": [],
        "tags": {},
    })
}

pub fn subscriptions(shared: &Shared, request: &ApiRequest) -> Result<ArmReply, ArmError> {
    check_api_version(request, RESOURCES_API_VERSIONS)?;
    let items = lock(&shared.directory).tenant.subscriptions.iter().map(subscription_json).collect();
    page_of(shared, request, items)
}

pub fn subscription(shared: &Shared, request: &ApiRequest, id: &str) -> Result<ArmReply, ArmError> {
    check_api_version(request, RESOURCES_API_VERSIONS)?;
    let directory = lock(&shared.directory);
    let subscription = directory
        .tenant
        .subscriptions
        .iter()
        .find(|subscription| subscription.subscription_id.eq_ignore_ascii_case(id))
        .ok_or_else(|| ArmError::subscription_not_found(id))?;
    Ok(ArmReply::Json(StatusCode::OK, subscription_json(subscription)))
}

pub fn resource_groups(shared: &Shared, request: &ApiRequest, subscription_id: &str) -> Result<ArmReply, ArmError> {
    check_api_version(request, RESOURCES_API_VERSIONS)?;
    check_scope_exists(shared, &Scope::Subscription(subscription_id.to_owned()))?;
    let items = lock(&shared.directory)
        .tenant
        .resource_groups
        .iter()
        .filter(|group| group.subscription_id.eq_ignore_ascii_case(subscription_id))
        .map(|group| {
            json!({
                "id": format!("/subscriptions/{}/resourceGroups/{}", group.subscription_id, group.name),
                "name": group.name,
                "type": "Microsoft.Resources/resourceGroups",
                "location": group.location,
                "properties": { "provisioningState": "Succeeded" },
            })
        })
        .collect();
    page_of(shared, request, items)
}

/// Built-in roles are assignable everywhere; custom ones where one of their assignable scopes contains `scope`.
pub fn assignable_at(role: &ArmRoleDefinition, scope: &Scope) -> bool {
    role.assignable_scopes
        .iter()
        .filter_map(|assignable| Scope::parse(assignable))
        .any(|assignable| assignable.contains(scope))
}

/// Role definition ids are qualified by the subscription they are read through, as ARM does.
pub fn role_definition_id(scope: &Scope, guid: &str) -> String {
    let prefix = scope.subscription().map(|id| format!("/subscriptions/{id}")).unwrap_or_default();
    format!("{prefix}/providers/Microsoft.Authorization/roleDefinitions/{guid}")
}

fn role_definition_json(role: &ArmRoleDefinition, scope: &Scope) -> Value {
    json!({
        "properties": {
            "roleName": role.role_name,
            "type": role.role_type,
            "description": role.description,
            "assignableScopes": role.assignable_scopes,
            "permissions": [{ "actions": [], "notActions": [], "dataActions": [], "notDataActions": [] }],
        },
        "id": role_definition_id(scope, &role.id),
        "type": "Microsoft.Authorization/roleDefinitions",
        "name": role.id,
    })
}

pub fn role_definitions(shared: &Shared, request: &ApiRequest, scope: &Scope) -> Result<ArmReply, ArmError> {
    check_api_version(request, AUTHORIZATION_API_VERSIONS)?;
    check_scope_exists(shared, scope)?;
    if let Some(filter) = request.query.get("$filter") {
        return Err(ArmError::bad_request(
            "UnsupportedQuery",
            format!("The filter '{filter}' is not supported by the fake."),
        ));
    }
    let items = lock(&shared.directory)
        .tenant
        .arm_role_definitions
        .iter()
        .filter(|role| assignable_at(role, scope))
        .map(|role| role_definition_json(role, scope))
        .collect();
    page_of(shared, request, items)
}

pub fn role_definition(shared: &Shared, request: &ApiRequest, scope: &Scope, id: &str) -> Result<ArmReply, ArmError> {
    check_api_version(request, AUTHORIZATION_API_VERSIONS)?;
    check_scope_exists(shared, scope)?;
    let directory = lock(&shared.directory);
    let role = directory.tenant.arm_role_definitions.iter().find(|role| role.id.eq_ignore_ascii_case(id)).ok_or_else(
        || {
            ArmError::new(
                StatusCode::NOT_FOUND,
                "RoleDefinitionDoesNotExist",
                format!("The specified role definition with ID '{id}' does not exist."),
            )
        },
    )?;
    Ok(ArmReply::Json(StatusCode::OK, role_definition_json(role, scope)))
}

/// User-assigned identities are the managed-identity service principals whose alternative names
/// carry a `.../Microsoft.ManagedIdentity/userAssignedIdentities/{name}` resource id in this subscription.
pub fn user_assigned_identities(
    shared: &Shared,
    request: &ApiRequest,
    subscription_id: &str,
) -> Result<ArmReply, ArmError> {
    check_api_version(request, MANAGED_IDENTITY_API_VERSIONS)?;
    check_scope_exists(shared, &Scope::Subscription(subscription_id.to_owned()))?;
    let prefix = format!("/subscriptions/{subscription_id}/").to_ascii_lowercase();
    let directory = lock(&shared.directory);
    let tenant = &directory.tenant;
    let items = tenant
        .service_principals
        .iter()
        .filter(|sp| sp.service_principal_type == "ManagedIdentity")
        .filter_map(|sp| {
            let resource_id = sp.alternative_names.iter().find(|name| {
                let lowered = name.to_ascii_lowercase();
                lowered.starts_with(&prefix)
                    && lowered.contains("/providers/microsoft.managedidentity/userassignedidentities/")
            })?;
            Some(json!({
                "id": resource_id,
                "name": resource_id.rsplit('/').next().unwrap_or_default(),
                "type": "Microsoft.ManagedIdentity/userAssignedIdentities",
                "location": "eastus",
                "tags": {},
                "properties": { "tenantId": tenant.tenant_id, "principalId": sp.id, "clientId": sp.app_id },
            }))
        })
        .collect();
    page_of(shared, request, items)
}
