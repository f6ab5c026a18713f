//! Azure RBAC on a subscription or a resource group: `role:<roleDefinitionGuid>` entitlements,
//! the role assignments made at exactly that scope, and role assignment writes.
//!
//! ARM lists inherited assignments too (`atScope()` returns the scope and its parents): an
//! assignment belongs to the scope named in its `properties.scope` only, so anything else is
//! left to the parent. Every (role, principal) pair is kept: nothing is keyed by role alone.
//!
//! Role catalogue. Offering every role at every scope explodes (about 500 built-ins times
//! thousands of resource groups), so by default (`rbac-role-catalogue=bounded`) a scope offers
//! the roles assigned at that exact scope plus Owner, Contributor, Reader and User Access
//! Administrator; `all` offers every role definition listed for the subscription.
//!
//! Resource groups carry their RBAC in their profile. Listing a subscription's assignments
//! once (without `atScope()`, which includes its resource groups') when its resource groups are
//! listed replaces, per resource group, a role definition read and two `atScope()` listings
//! (each of which repeats every assignment inherited from the subscription). A resource group
//! whose profile carries nothing (the subscription-wide read failed, or `all` is configured) is
//! read at its own scope as before, so a refusal still becomes that resource group's gap.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::arm::{AUTHORIZATION_API_VERSION, Arm};
use crate::config::{Config, RoleCatalogue};
use crate::contract::{
    ConnectorError, Entitlement, EntitlementPage, EntitlementPurpose, GrantPage, Notice, ProvisionOutcome,
    ProvisionResult, Resource,
};
use crate::graph::Graph;
use crate::http::{ApiRequest, Verb, call_label, encode_path_segment};
use crate::ids::{EntitlementId, Principal, PrincipalType, ResourceGroupId, ResourceType, Slug, require_guid};
use crate::notices::gap_if_forbidden;
use crate::paging::{PageToken, Phase, following};
use crate::principals::{GrantSink, PrincipalResolver};
use crate::provisioning::{Revocation, outcome};
use crate::records::{entitlement, entitlement_page};
use crate::wasi_support::new_guid;

/// Owner, Contributor, Reader, User Access Administrator: always offered.
const STANDARD_ROLES: [&str; 4] = [
    "8e3af657-a8ff-443c-a75c-2fe8c4bcb635",
    "b24988ac-6180-42a0-ab88-20f7382dd24c",
    "acdd72a7-3385-48ef-bd42-f606fba81ae7",
    "18d7d88d-d35e-4fb5-a5c3-7773c20a72d9",
];
const GRANT_PHASES: &[Phase] = &[Phase::RoleAssignments];

#[derive(Deserialize)]
struct RoleDefinition {
    name: String,
    properties: RoleDefinitionProperties,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RoleDefinitionProperties {
    role_name: Option<String>,
    description: Option<String>,
}

#[derive(Deserialize)]
struct RoleAssignment {
    id: String,
    properties: RoleAssignmentProperties,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RoleAssignmentProperties {
    role_definition_id: String,
    principal_id: String,
    principal_type: Option<String>,
    scope: String,
}

impl RoleAssignment {
    /// The role's GUID: the last segment of `roleDefinitionId`, which ARM gives either
    /// subscription-qualified or tenant-relative.
    fn role_guid(&self) -> String {
        self.properties.role_definition_id.rsplit('/').next().unwrap_or_default().to_ascii_lowercase()
    }
}

/// The ARM scope of a subscription or resource group.
struct Scope {
    subscription_id: String,
    /// `/subscriptions/{sub}[/resourceGroups/{name}]` as ARM writes it in `properties.scope`.
    path: String,
    /// The same, percent-encoded for a URL.
    url_path: String,
}

impl Scope {
    fn of(resource_type: ResourceType, resource_id: &str) -> Result<Self, ConnectorError> {
        match resource_type {
            ResourceType::Subscription => {
                require_guid(resource_type, resource_id)?;
                let path = format!("/subscriptions/{resource_id}");
                Ok(Self { subscription_id: resource_id.to_owned(), url_path: path.clone(), path })
            }
            ResourceType::ResourceGroup => {
                let group = ResourceGroupId::parse(resource_id)?;
                Ok(Self {
                    subscription_id: group.subscription_id.to_owned(),
                    path: format!("/subscriptions/{}/resourceGroups/{}", group.subscription_id, group.name),
                    url_path: format!(
                        "/subscriptions/{}/resourceGroups/{}",
                        group.subscription_id,
                        encode_path_segment(group.name)
                    ),
                })
            }
            other => Err(ConnectorError::Unsupported(format!("{} has no Azure RBAC scope", other.as_str()))),
        }
    }

    fn holds(&self, assignment: &RoleAssignment) -> bool {
        assignment.properties.scope.trim_end_matches('/').eq_ignore_ascii_case(&self.path)
    }

    fn assignments_url(&self, arm: &Arm) -> String {
        arm.url(
            &format!("{}/providers/Microsoft.Authorization/roleAssignments", self.url_path),
            AUTHORIZATION_API_VERSION,
            &[("$filter", "atScope()")],
        )
    }

    fn reader(&self) -> String {
        format!("Reader on {}", self.path)
    }
}

/// A resource group's RBAC, as its profile carries it (`rbac`).
#[derive(Serialize, Deserialize)]
struct CarriedRbac {
    /// The roles offered (the standard ones, then those assigned here), with their names.
    roles: Vec<CarriedRole>,
    /// The assignments made at exactly this resource group.
    assignments: Vec<CarriedAssignment>,
}

#[derive(Serialize, Deserialize)]
struct CarriedRole {
    id: String,
    name: Option<String>,
    description: Option<String>,
}

#[derive(Serialize, Deserialize)]
struct CarriedAssignment {
    role: String,
    principal_id: String,
    principal_type: Option<String>,
}

#[derive(Deserialize)]
struct CarryingProfile {
    rbac: Option<CarriedRbac>,
}

/// The RBAC of the resource groups `names` of a subscription, by lowercase name, for their
/// profiles: one read of the subscription's role definitions and one of all its assignments.
/// Empty when either read fails (each resource group then reads its own scope) or when the
/// catalogue is `all` (every role definition would be copied into every resource group).
pub fn resource_group_rbac(config: &Config, subscription_id: &str, names: &[&str]) -> BTreeMap<String, Value> {
    if config.role_catalogue != RoleCatalogue::Bounded || names.is_empty() {
        return BTreeMap::new();
    }
    let arm = Arm::new(config);
    let subscription = format!("/subscriptions/{}", encode_path_segment(subscription_id));
    let reader = format!("Reader on /subscriptions/{subscription_id}");
    let read = || -> Result<(Vec<RoleDefinition>, Vec<RoleAssignment>), ConnectorError> {
        let definitions = arm.collection_all(
            arm.url(
                &format!("{subscription}/providers/Microsoft.Authorization/roleDefinitions"),
                AUTHORIZATION_API_VERSION,
                &[],
            ),
            &reader,
        )?;
        let assignments = arm.collection_all(
            arm.url(
                &format!("{subscription}/providers/Microsoft.Authorization/roleAssignments"),
                AUTHORIZATION_API_VERSION,
                &[],
            ),
            &reader,
        )?;
        Ok((definitions, assignments))
    };
    let Ok((definitions, assignments)) = read() else { return BTreeMap::new() };
    let definitions: BTreeMap<String, RoleDefinitionProperties> = definitions
        .into_iter()
        .map(|definition| (definition.name.to_ascii_lowercase(), definition.properties))
        .collect();
    let mut carried: BTreeMap<String, CarriedRbac> = names
        .iter()
        .map(|name| (name.to_ascii_lowercase(), CarriedRbac { roles: Vec::new(), assignments: Vec::new() }))
        .collect();
    let prefix = format!("/subscriptions/{subscription_id}/resourcegroups/").to_ascii_lowercase();
    for assignment in &assignments {
        let scope = assignment.properties.scope.trim_end_matches('/').to_ascii_lowercase();
        let Some(group) = scope.strip_prefix(&prefix).and_then(|name| carried.get_mut(name)) else { continue };
        group.assignments.push(CarriedAssignment {
            role: assignment.role_guid(),
            principal_id: assignment.properties.principal_id.clone(),
            principal_type: assignment.properties.principal_type.clone(),
        });
    }
    carried
        .into_iter()
        .map(|(name, mut rbac)| {
            let assigned = rbac.assignments.iter().map(|assignment| assignment.role.clone());
            for role in STANDARD_ROLES.iter().map(|role| (*role).to_owned()).chain(assigned) {
                if !rbac.roles.iter().any(|known| known.id == role) {
                    let definition = definitions.get(&role);
                    rbac.roles.push(CarriedRole {
                        name: definition.and_then(|properties| properties.role_name.clone()),
                        description: definition.and_then(|properties| properties.description.clone()),
                        id: role,
                    });
                }
            }
            (name, json!(rbac))
        })
        .collect()
}

/// The RBAC a resource group's profile carries, if any.
fn carried(resource_type: ResourceType, resource: &Resource) -> Option<CarriedRbac> {
    if resource_type != ResourceType::ResourceGroup {
        return None;
    }
    serde_json::from_str::<CarryingProfile>(&resource.profile_json).ok()?.rbac
}

/// `role:<guid>` on a subscription or resource group, named after its definition when known.
fn role_entitlement(
    resource_type: ResourceType,
    resource: &Resource,
    role_guid: String,
    name: Option<String>,
    description: Option<String>,
) -> Entitlement {
    let role_name = name.unwrap_or_else(|| format!("Azure role {role_guid}"));
    let display_name = format!("{role_name} on {}", resource.display_name);
    let description = description.unwrap_or_else(|| format!("Azure role {role_name}"));
    let slug = Slug::RbacRole(role_guid);
    entitlement(resource_type, resource, slug, display_name, description, EntitlementPurpose::Permission)
}

/// Reads `GET /subscriptions/{sub}/providers/Microsoft.Authorization/roleDefinitions` for the
/// role names and, for the bounded catalogue, the assignments at the scope (`atScope()`).
/// A 403 on either is a gap notice; the standard roles are still offered. A resource group
/// that carries its RBAC needs neither.
pub fn entitlements(config: &Config, resource: &Resource) -> Result<EntitlementPage, ConnectorError> {
    let resource_type = ResourceType::parse(&resource.resource_type)?;
    let scope = Scope::of(resource_type, &resource.id)?;
    if let Some(rbac) = carried(resource_type, resource) {
        let items = rbac
            .roles
            .into_iter()
            .map(|role| role_entitlement(resource_type, resource, role.id, role.name, role.description))
            .collect();
        return Ok(entitlement_page(items));
    }
    let arm = Arm::new(config);
    let mut notices = Vec::new();
    let definitions_url = arm.url(
        &format!("/subscriptions/{}/providers/Microsoft.Authorization/roleDefinitions", scope.subscription_id),
        AUTHORIZATION_API_VERSION,
        &[],
    );
    let definitions: BTreeMap<String, RoleDefinition> =
        read_or_gap(&arm, definitions_url, &scope.reader(), &mut notices)?
            .into_iter()
            .map(|definition: RoleDefinition| (definition.name.to_ascii_lowercase(), definition))
            .collect();
    let offered: Vec<String> = match config.role_catalogue {
        RoleCatalogue::All => definitions.keys().cloned().collect(),
        RoleCatalogue::Bounded => {
            let assignments: Vec<RoleAssignment> =
                read_or_gap(&arm, scope.assignments_url(&arm), &scope.reader(), &mut notices)?;
            let mut roles: Vec<String> = STANDARD_ROLES.iter().map(|role| (*role).to_owned()).collect();
            for assignment in assignments.iter().filter(|assignment| scope.holds(assignment)) {
                let role = assignment.role_guid();
                if !roles.contains(&role) {
                    roles.push(role);
                }
            }
            roles
        }
    };
    let items = offered
        .into_iter()
        .map(|role_guid| {
            let definition = definitions.get(&role_guid).map(|definition| &definition.properties);
            let name = definition.and_then(|properties| properties.role_name.clone());
            let description = definition.and_then(|properties| properties.description.clone());
            role_entitlement(resource_type, resource, role_guid, name, description)
        })
        .collect();
    Ok(EntitlementPage { items, next_page_token: None, notices })
}

/// Every page of an ARM listing, or nothing plus a gap notice when it is refused.
fn read_or_gap<T: serde::de::DeserializeOwned>(
    arm: &Arm,
    url: String,
    missing_role: &str,
    notices: &mut Vec<Notice>,
) -> Result<Vec<T>, ConnectorError> {
    let call = call_label(Verb::Get, &url);
    match arm.collection_all(url, missing_role) {
        Ok(items) => Ok(items),
        Err(error) => {
            notices.push(gap_if_forbidden(error, call)?);
            Ok(Vec::new())
        }
    }
}

/// `GET {scope}/providers/Microsoft.Authorization/roleAssignments?api-version=2022-04-01&$filter=atScope()`,
/// one page per call, keeping the assignments made at exactly this scope; from the profile,
/// in one page, for a resource group that carries its RBAC.
pub fn grants(config: &Config, resource: &Resource, page_token: Option<&str>) -> Result<GrantPage, ConnectorError> {
    let resource_type = ResourceType::parse(&resource.resource_type)?;
    let scope = Scope::of(resource_type, &resource.id)?;
    let graph = Graph::new(config);
    if page_token.is_none()
        && let Some(rbac) = carried(resource_type, resource)
    {
        let mut resolver = PrincipalResolver::new(&graph);
        let mut sink = GrantSink::default();
        for assignment in rbac.assignments {
            let entitlement_id =
                EntitlementId::new(resource_type, &resource.id, Slug::RbacRole(assignment.role)).render();
            let holder = resolver.by_principal_type(&assignment.principal_id, assignment.principal_type.as_deref())?;
            sink.add(&entitlement_id, holder);
        }
        return Ok(GrantPage { items: sink.items, next_page_token: None, notices: sink.notices });
    }
    let arm = Arm::new(config);
    let token = PageToken::decode(page_token, GRANT_PHASES, arm.base_url())?;
    let url = token.next_link.unwrap_or_else(|| scope.assignments_url(&arm));
    let call = call_label(Verb::Get, &url);
    let mut sink = GrantSink::default();
    let next_link = match arm.collection::<RoleAssignment>(url, &scope.reader()) {
        Ok(page) => {
            let mut resolver = PrincipalResolver::new(&graph);
            for assignment in page.value.iter().filter(|assignment| scope.holds(assignment)) {
                let entitlement_id =
                    EntitlementId::new(resource_type, &resource.id, Slug::RbacRole(assignment.role_guid())).render();
                let holder = resolver.by_principal_type(
                    &assignment.properties.principal_id,
                    assignment.properties.principal_type.as_deref(),
                )?;
                sink.add(&entitlement_id, holder);
            }
            page.next_link
        }
        Err(error) => {
            sink.notices.push(gap_if_forbidden(error, call)?);
            None
        }
    };
    Ok(GrantPage {
        items: sink.items,
        next_page_token: following(GRANT_PHASES, Phase::RoleAssignments, next_link),
        notices: sink.notices,
    })
}

/// `PUT {scope}/providers/Microsoft.Authorization/roleAssignments/{new GUID}`; 409
/// `RoleAssignmentExists` means already granted.
pub fn grant(
    config: &Config,
    entitlement: &EntitlementId,
    principal: &Principal,
) -> Result<ProvisionResult, ConnectorError> {
    let (scope, role_guid) = scope_and_role(entitlement)?;
    let arm = Arm::new(config);
    let principal_type = match principal.principal_type {
        PrincipalType::User => "User",
        PrincipalType::Group => "Group",
        PrincipalType::EnterpriseApplication | PrincipalType::ManagedIdentity => "ServicePrincipal",
    };
    let body = json!({
        "properties": {
            "roleDefinitionId": format!(
                "/subscriptions/{}/providers/Microsoft.Authorization/roleDefinitions/{role_guid}",
                scope.subscription_id
            ),
            "principalId": principal.id,
            "principalType": principal_type,
        }
    });
    let url = arm.url(
        &format!("{}/providers/Microsoft.Authorization/roleAssignments/{}", scope.url_path, new_guid()),
        AUTHORIZATION_API_VERSION,
        &[],
    );
    let response = arm.send(ApiRequest::with_json(Verb::Put, url, &body))?;
    if response.is_success() {
        Ok(outcome(ProvisionOutcome::Granted, entitlement, principal, response.request_id()))
    } else if response.status == 409 && response.upstream_error().code.eq_ignore_ascii_case("RoleAssignmentExists") {
        Ok(outcome(ProvisionOutcome::AlreadyGranted, entitlement, principal, response.request_id()))
    } else {
        Err(response.into_error(Some(writer(&scope))))
    }
}

/// Lists `atScope()`, and deletes the assignments at exactly this scope of THAT role to THAT
/// principal; none means already revoked.
pub fn revoke(
    config: &Config,
    entitlement: &EntitlementId,
    principal: &Principal,
) -> Result<ProvisionResult, ConnectorError> {
    let (scope, role_guid) = scope_and_role(entitlement)?;
    let arm = Arm::new(config);
    let permission = writer(&scope);
    let assignments: Vec<RoleAssignment> = arm.collection_all(scope.assignments_url(&arm), &permission)?;
    let mut revocation = Revocation::default();
    for assignment in assignments.iter().filter(|assignment| {
        scope.holds(assignment)
            && assignment.role_guid() == role_guid
            && assignment.properties.principal_id.eq_ignore_ascii_case(&principal.id)
    }) {
        let encoded_id: Vec<String> = assignment.id.split('/').map(encode_path_segment).collect();
        let url = arm.url(&encoded_id.join("/"), AUTHORIZATION_API_VERSION, &[]);
        let response = arm.send(ApiRequest::delete(url))?;
        // 204: it was gone already.
        let already_gone = matches!(response.status, 204 | 404);
        revocation.record(response, already_gone, &permission)?;
    }
    Ok(revocation.outcome(entitlement, principal))
}

fn scope_and_role(entitlement: &EntitlementId) -> Result<(Scope, String), ConnectorError> {
    let scope = Scope::of(entitlement.resource_type, &entitlement.resource_id)?;
    match &entitlement.slug {
        Slug::RbacRole(role_guid) => Ok((scope, role_guid.clone())),
        _ => Err(ConnectorError::Unsupported(format!("{} is not an Azure RBAC entitlement", entitlement.render()))),
    }
}

fn writer(scope: &Scope) -> String {
    format!("Owner or User Access Administrator on {}", scope.path)
}
