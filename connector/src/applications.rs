//! `enterprise_application` resources: service principals of type `Application`, with an
//! `owners` entitlement, one `assignment:<appRoleId>` per enabled app role, and the all-zero
//! "default access".
//!
//! App roles that allow only applications are included: they are application permissions
//! ("Directory.ReadWrite.All on Microsoft Graph" held by another app), exactly what an access
//! review must see. They are granted to enterprise applications and managed identities; roles
//! for users are granted to users and groups.
//!
//! The listed resource carries its app roles in `profile-json.app_roles`, so `list-entitlements`
//! makes no request, and its owners when the listing's `$expand` holds them all (see
//! `principals::carry_complete_owners`), so they need no request either. Assignments are paged from
//! `appRoleAssignedTo`, never read through `$expand` (which truncates). An assignment of a role
//! the application no longer defines (or has disabled) has no entitlement to belong to: it is
//! reported as a gap, never dropped.

use std::collections::HashSet;

use serde::Deserialize;
use serde_json::json;

use crate::config::Config;
use crate::contract::{
    ConnectorError, EntitlementPage, EntitlementPurpose, GrantPage, Notice, ProvisionResult, Resource, ResourcePage,
};
use crate::graph::{Graph, segment};
use crate::http::{ApiRequest, Verb, call_label};
use crate::ids::{DEFAULT_ACCESS_APP_ROLE, EntitlementId, Principal, ResourceType, Slug, require_guid};
use crate::notices::{gap, gap_if_forbidden};
use crate::paging::{PageToken, Phase};
use crate::principals::{
    DirectoryObject, EXPAND_OWNERS, GrantSink, PrincipalResolver, carry_complete_owners, finish_grant_page,
    holders_page, holders_url,
};
use crate::provisioning::{Revocation, add_reference, creation_outcome, remove_reference};
use crate::records::{directory_resource, entitlement, entitlement_page};

pub(crate) const SELECT: &str =
    "id,appId,displayName,servicePrincipalType,accountEnabled,appRoles,appOwnerOrganizationId,tags";
const READ_APPLICATIONS: &str = "Application.Read.All";
const WRITE_OWNERS: &str = "Application.ReadWrite.All";
const WRITE_ASSIGNMENTS: &str = "AppRoleAssignment.ReadWrite.All";
const GRANT_PHASES: &[Phase] = &[Phase::AppRoleAssignments, Phase::Owners];

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ServicePrincipal {
    id: String,
    app_id: Option<String>,
    display_name: Option<String>,
    account_enabled: Option<bool>,
    service_principal_type: Option<String>,
    #[serde(default)]
    app_roles: Vec<AppRole>,
    app_owner_organization_id: Option<String>,
    #[serde(default)]
    tags: Vec<String>,
    /// With `$expand=owners`: the first owners (Graph cuts them at 20).
    owners: Option<Vec<DirectoryObject>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct AppRole {
    id: String,
    display_name: Option<String>,
    value: Option<String>,
    description: Option<String>,
    is_enabled: Option<bool>,
    #[serde(default)]
    allowed_member_types: Vec<String>,
}

/// An enabled app role as `profile-json.app_roles` carries it.
#[derive(Deserialize)]
struct ProfileAppRole {
    id: String,
    display_name: Option<String>,
    description: Option<String>,
    #[serde(default)]
    allowed_member_types: Vec<String>,
}

impl ProfileAppRole {
    fn grantable_to(&self) -> Vec<String> {
        principals_taking(&self.allowed_member_types)
    }
}

/// The principal types an app role with these `allowedMemberTypes` takes: users and groups
/// hold roles for users; applications and managed identities hold roles for applications
/// (application permissions).
fn principals_taking(allowed_member_types: &[String]) -> Vec<String> {
    let mut principals = Vec::new();
    if allowed_member_types.iter().any(|kind| kind == "User") {
        principals.extend(["user", "group"].map(String::from));
    }
    if allowed_member_types.iter().any(|kind| kind == "Application") {
        principals.extend(["enterprise_application", "managed_identity"].map(String::from));
    }
    principals
}

#[derive(Deserialize)]
struct ApplicationProfile {
    app_roles: Option<Vec<ProfileAppRole>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct AppRoleAssignment {
    id: String,
    app_role_id: String,
    principal_id: String,
    principal_type: Option<String>,
}

#[derive(Deserialize)]
struct Organization {
    id: String,
}

/// `GET /v1.0/servicePrincipals?$filter=servicePrincipalType eq 'Application'&$select=...&$expand=owners(...)&$top=N`.
/// The first page also reads `GET /v1.0/organization?$select=id` for the tenant id behind
/// `owned_by_this_tenant`; the page token carries it to the following pages.
pub fn list(config: &Config, page_token: Option<&str>) -> Result<ResourcePage, ConnectorError> {
    let graph = Graph::new(config);
    let token = PageToken::decode(page_token, &[Phase::Resources], graph.base_url())?;
    let mut notices = Vec::new();
    let tenant_id = match (token.next_link.is_some(), token.tenant_id) {
        (true, known) => known,
        (false, _) => own_tenant_id(&graph, &mut notices)?,
    };
    let url = token.next_link.unwrap_or_else(|| {
        graph.url(
            "/servicePrincipals",
            &[
                ("$filter", "servicePrincipalType eq 'Application'"),
                ("$select", SELECT),
                ("$expand", EXPAND_OWNERS),
                ("$top", graph.page_size()),
            ],
        )
    });
    let page = graph.collection::<ServicePrincipal>(url, false, READ_APPLICATIONS)?;
    let items = page
        .value
        .into_iter()
        .map(|application| application_resource(application, tenant_id.as_deref(), config.page_size))
        .collect();
    let next_page_token = page
        .next_link
        .map(|next_link| PageToken { phase: Phase::Resources, next_link: Some(next_link), tenant_id }.encode());
    Ok(ResourcePage { items, next_page_token, notices })
}

/// What `GET /v1.0/servicePrincipals/{id}` found.
pub(crate) enum ReadApplication {
    /// The application as the listing shows it (same `$select` and `$expand`).
    Found(Resource),
    /// It no longer exists (404).
    Gone,
    /// A service principal of another type (a managed identity, a legacy one, ...).
    NotAnApplication,
}

/// One enterprise application, read as [`list`] reads each.
pub(crate) fn read_application(
    graph: &Graph,
    id: &str,
    tenant_id: Option<&str>,
    page_size: u16,
) -> Result<ReadApplication, ConnectorError> {
    let url = graph.url(&service_principal_path(id), &[("$select", SELECT), ("$expand", EXPAND_OWNERS)]);
    let response = graph.send(ApiRequest::get(url))?;
    if response.status == 404 {
        return Ok(ReadApplication::Gone);
    }
    if !response.is_success() {
        return Err(response.into_error(Some(READ_APPLICATIONS.to_owned())));
    }
    let application: ServicePrincipal = response.json()?;
    if application.service_principal_type.as_deref() != Some("Application") {
        return Ok(ReadApplication::NotAnApplication);
    }
    Ok(ReadApplication::Found(application_resource(application, tenant_id, page_size)))
}

pub(crate) fn own_tenant_id(graph: &Graph, notices: &mut Vec<Notice>) -> Result<Option<String>, ConnectorError> {
    let url = graph.url("/organization", &[("$select", "id")]);
    let call = call_label(Verb::Get, &url);
    match graph.collection::<Organization>(url, false, "Organization.Read.All") {
        Ok(page) => Ok(page.value.into_iter().next().map(|organization| organization.id)),
        Err(error) => {
            let notice = gap_if_forbidden(error, call)?;
            notices.push(gap(
                notice.subject,
                format!("{}: owned_by_this_tenant is unknown (null)", notice.message),
                notice.missing_permission,
            ));
            Ok(None)
        }
    }
}

pub(crate) fn application_resource(application: ServicePrincipal, tenant_id: Option<&str>, page_size: u16) -> Resource {
    let assignable_roles: Vec<_> = application
        .app_roles
        .iter()
        .filter(|role| role.is_enabled.unwrap_or(true))
        .map(|role| {
            json!({
                "id": role.id.to_ascii_lowercase(),
                "display_name": role.display_name,
                "value": role.value,
                "description": role.description,
                "allowed_member_types": role.allowed_member_types,
            })
        })
        .collect();
    let owned_by_this_tenant = tenant_id.map(|tenant| {
        application.app_owner_organization_id.as_deref().is_some_and(|owner| owner.eq_ignore_ascii_case(tenant))
    });
    let mut profile = json!({
        "app_id": application.app_id,
        "enabled": application.account_enabled,
        "owned_by_this_tenant": owned_by_this_tenant,
        "owner_organization_id": application.app_owner_organization_id,
        "tags": application.tags,
        "app_roles": assignable_roles,
    });
    carry_complete_owners(&mut profile, application.owners, page_size);
    directory_resource(ResourceType::EnterpriseApplication, application.id, application.display_name, profile)
}

fn profile_app_roles(application: &Resource) -> Result<Option<Vec<ProfileAppRole>>, ConnectorError> {
    serde_json::from_str::<ApplicationProfile>(&application.profile_json)
        .map(|profile| profile.app_roles)
        .map_err(|error| {
            ConnectorError::InvalidConfig(format!(
                "profile-json of enterprise application {} is unreadable ({error}): pass the resource as list-resources returned it",
                application.id
            ))
        })
}

/// `owners`, default access, and one `assignment:<appRoleId>` per assignable app role.
pub fn entitlements(application: &Resource) -> Result<EntitlementPage, ConnectorError> {
    let name = &application.display_name;
    let application_entitlement = |slug, display_name, description, purpose| {
        entitlement(ResourceType::EnterpriseApplication, application, slug, display_name, description, purpose)
    };
    let mut items = vec![
        application_entitlement(
            Slug::Owners,
            format!("{name} owners"),
            format!("Owners of the enterprise application {name}"),
            EntitlementPurpose::Ownership,
        ),
        application_entitlement(
            Slug::AppRole(DEFAULT_ACCESS_APP_ROLE.to_owned()),
            format!("{name}: default access"),
            format!("Assignment to {name} without a specific app role"),
            EntitlementPurpose::Assignment,
        ),
    ];
    for role in profile_app_roles(application)?.unwrap_or_default() {
        let grantable_to = role.grantable_to();
        let role_name = role.display_name.clone().unwrap_or_else(|| role.id.clone());
        let mut item = application_entitlement(
            Slug::AppRole(role.id.to_ascii_lowercase()),
            format!("{name}: {role_name}"),
            role.description.clone().unwrap_or_else(|| format!("App role {role_name} of {name}")),
            EntitlementPurpose::Assignment,
        );
        item.grantable_to = grantable_to;
        items.push(item);
    }
    Ok(entitlement_page(items))
}

/// App role assignments (`GET /v1.0/servicePrincipals/{id}/appRoleAssignedTo?$top=N`), then
/// owners (`GET /v1.0/servicePrincipals/{id}/owners?$select=id,servicePrincipalType&$top=N`),
/// each through all its nextLinks. Owners the profile carries come with the last page of
/// assignments instead.
pub fn grants(config: &Config, application: &Resource, page_token: Option<&str>) -> Result<GrantPage, ConnectorError> {
    require_guid(ResourceType::EnterpriseApplication, &application.id)?;
    let graph = Graph::new(config);
    let token = PageToken::decode(page_token, GRANT_PHASES, graph.base_url())?;
    let application_path = service_principal_path(&application.id);
    let mut resolver = PrincipalResolver::new(&graph);
    let mut sink = GrantSink::default();
    let next_link = if token.phase == Phase::Owners {
        let url = token.next_link.unwrap_or_else(|| holders_url(&graph, &format!("{application_path}/owners")));
        let entitlement_id =
            EntitlementId::new(ResourceType::EnterpriseApplication, &application.id, Slug::Owners).render();
        holders_page(&graph, &mut resolver, url, &entitlement_id, READ_APPLICATIONS, &mut sink)?
    } else {
        let url = token.next_link.unwrap_or_else(|| {
            graph.url(&format!("{application_path}/appRoleAssignedTo"), &[("$top", graph.page_size())])
        });
        let known_roles: Option<HashSet<String>> = profile_app_roles(application)?.map(|roles| {
            roles
                .into_iter()
                .map(|role| role.id.to_ascii_lowercase())
                .chain([DEFAULT_ACCESS_APP_ROLE.to_owned()])
                .collect()
        });
        let call = call_label(Verb::Get, &url);
        match graph.collection::<AppRoleAssignment>(url, false, READ_APPLICATIONS) {
            Ok(page) => {
                for assignment in page.value {
                    let app_role_id = assignment.app_role_id.to_ascii_lowercase();
                    if known_roles.as_ref().is_some_and(|known| !known.contains(&app_role_id)) {
                        sink.notices.push(gap(
                            format!("app role assignment {} on {}", assignment.id, application.id),
                            format!(
                                "{} {} holds app role {app_role_id}, which the application no longer defines or has disabled: not represented as a grant",
                                assignment.principal_type.as_deref().unwrap_or("principal"),
                                assignment.principal_id
                            ),
                            None,
                        ));
                        continue;
                    }
                    let entitlement_id = EntitlementId::new(
                        ResourceType::EnterpriseApplication,
                        &application.id,
                        Slug::AppRole(app_role_id),
                    )
                    .render();
                    let holder =
                        resolver.by_principal_type(&assignment.principal_id, assignment.principal_type.as_deref())?;
                    sink.add(&entitlement_id, holder);
                }
                page.next_link
            }
            Err(error) => {
                sink.notices.push(gap_if_forbidden(error, call)?);
                None
            }
        }
    };
    let resource_type = ResourceType::EnterpriseApplication;
    finish_grant_page(sink, &mut resolver, resource_type, application, GRANT_PHASES, token.phase, next_link)
}

pub fn grant(
    config: &Config,
    entitlement: &EntitlementId,
    principal: &Principal,
) -> Result<ProvisionResult, ConnectorError> {
    let graph = Graph::new(config);
    let application_path = service_principal_path(&entitlement.resource_id);
    match &entitlement.slug {
        Slug::Owners => {
            add_reference(&graph, &format!("{application_path}/owners"), entitlement, principal, WRITE_OWNERS)
        }
        Slug::AppRole(app_role_id) => {
            check_role_takes(&graph, entitlement, app_role_id, principal)?;
            let body = json!({
                "principalId": principal.id,
                "resourceId": entitlement.resource_id,
                "appRoleId": app_role_id,
            });
            let url = graph.url(&format!("{application_path}/appRoleAssignedTo"), &[]);
            let response = graph.send(ApiRequest::with_json(Verb::Post, url, &body))?;
            creation_outcome(response, entitlement, principal, WRITE_ASSIGNMENTS)
        }
        _ => Err(not_an_application_entitlement(entitlement)),
    }
}

/// Refuses, before the write, a principal the app role does not take: roles for users (and
/// groups) and roles for applications (application permissions, held by enterprise
/// applications and managed identities) are told apart by `allowedMemberTypes`
/// (`GET /v1.0/servicePrincipals/{id}?$select=appRoles`). Default access takes users and groups,
/// which `EntitlementId::check_grantable` has checked already.
fn check_role_takes(
    graph: &Graph,
    entitlement: &EntitlementId,
    app_role_id: &str,
    principal: &Principal,
) -> Result<(), ConnectorError> {
    if app_role_id == DEFAULT_ACCESS_APP_ROLE {
        return Ok(());
    }
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct AppRoles {
        #[serde(default)]
        app_roles: Vec<AppRole>,
    }
    let url = graph.url(&service_principal_path(&entitlement.resource_id), &[("$select", "appRoles")]);
    let roles: AppRoles = graph.object(url, READ_APPLICATIONS)?;
    let role = roles
        .app_roles
        .into_iter()
        .find(|role| role.id.eq_ignore_ascii_case(app_role_id) && role.is_enabled.unwrap_or(true))
        .ok_or_else(|| {
            ConnectorError::InvalidConfig(format!(
                "entitlement {}: the application has no enabled app role {app_role_id}: sync again and pick one it lists",
                entitlement.render()
            ))
        })?;
    let takes = principals_taking(&role.allowed_member_types);
    if takes.iter().any(|name| name == principal.principal_type.as_str()) {
        return Ok(());
    }
    Err(ConnectorError::InvalidConfig(format!(
        "entitlement {} cannot be granted to a '{}': this app role takes {}",
        entitlement.render(),
        principal.principal_type.as_str(),
        if takes.is_empty() { "no principal".to_owned() } else { takes.join(", ") }
    )))
}

/// Owners: `DELETE .../owners/{id}/$ref`. App roles: every page of `appRoleAssignedTo` is read
/// and only the assignments of THAT app role to THAT principal are deleted.
pub fn revoke(
    config: &Config,
    entitlement: &EntitlementId,
    principal: &Principal,
) -> Result<ProvisionResult, ConnectorError> {
    let graph = Graph::new(config);
    let application_path = service_principal_path(&entitlement.resource_id);
    match &entitlement.slug {
        Slug::Owners => {
            remove_reference(&graph, &format!("{application_path}/owners"), entitlement, principal, WRITE_OWNERS)
        }
        Slug::AppRole(app_role_id) => {
            let url = graph.url(&format!("{application_path}/appRoleAssignedTo"), &[("$top", graph.page_size())]);
            let assignments: Vec<AppRoleAssignment> = graph.collection_all(url, WRITE_ASSIGNMENTS)?;
            let mut revocation = Revocation::default();
            for assignment in assignments.iter().filter(|assignment| {
                assignment.app_role_id.eq_ignore_ascii_case(app_role_id)
                    && assignment.principal_id.eq_ignore_ascii_case(&principal.id)
            }) {
                let url = graph.url(&format!("{application_path}/appRoleAssignedTo/{}", segment(&assignment.id)), &[]);
                let response = graph.send(ApiRequest::delete(url))?;
                let already_gone = response.status == 404;
                revocation.record(response, already_gone, WRITE_ASSIGNMENTS)?;
            }
            Ok(revocation.outcome(entitlement, principal))
        }
        _ => Err(not_an_application_entitlement(entitlement)),
    }
}

/// `/servicePrincipals/{id}`: an enterprise application in Graph paths.
fn service_principal_path(id: &str) -> String {
    format!("/servicePrincipals/{}", segment(id))
}

fn not_an_application_entitlement(entitlement: &EntitlementId) -> ConnectorError {
    ConnectorError::Unsupported(format!("{} is not an enterprise application entitlement", entitlement.render()))
}
