//! `group` resources: Entra ID groups, their `members` and `owners` entitlements, the direct
//! holders of each, and membership/ownership writes.
//!
//! Members are read from v1.0: current v1.0 lists service principals as group members (the
//! Go peer's reason for /beta no longer holds), so /beta is not needed.
//!
//! Owners come with the groups listing (`$expand=owners`, see `principals::carry_complete_owners`):
//! a group listed with all its owners carries them in its profile; any other group's owners
//! are paged like its members.

use serde::Deserialize;
use serde_json::json;

use crate::config::Config;
use crate::contract::{
    ConnectorError, EntitlementPage, EntitlementPurpose, GrantPage, ProvisionResult, Resource, ResourcePage,
};
use crate::graph::{Graph, segment};
use crate::ids::{EntitlementId, Principal, ResourceType, Slug, require_guid};
use crate::paging::{PageToken, Phase};
use crate::principals::{
    DirectoryObject, EXPAND_OWNERS, GrantSink, PrincipalResolver, carry_complete_owners, finish_grant_page,
    holders_page, holders_url,
};
use crate::provisioning::{add_reference, remove_reference};
use crate::records::{directory_resource, entitlement, entitlement_page, resource_page};

pub(crate) const SELECT: &str =
    "id,displayName,description,groupTypes,mail,mailEnabled,securityEnabled,onPremisesSyncEnabled,isAssignableToRole";
const READ_GROUPS: &str = "Group.Read.All";
const READ_MEMBERS: &str = "GroupMember.Read.All";
const WRITE_MEMBERS: &str = "GroupMember.ReadWrite.All";
const WRITE_OWNERS: &str = "Group.ReadWrite.All";
const GRANT_PHASES: &[Phase] = &[Phase::Members, Phase::Owners];

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct GraphGroup {
    id: String,
    display_name: Option<String>,
    description: Option<String>,
    #[serde(default)]
    group_types: Vec<String>,
    mail: Option<String>,
    mail_enabled: Option<bool>,
    security_enabled: Option<bool>,
    on_premises_sync_enabled: Option<bool>,
    is_assignable_to_role: Option<bool>,
    /// With `$expand=owners`: the first owners (Graph cuts them at 20).
    owners: Option<Vec<DirectoryObject>>,
}

/// `GET /v1.0/groups?$select=...&$expand=owners(...)&$top=N`; with `skip-ad-groups`, instead
/// `$filter=onPremisesSyncEnabled ne true&$count=true` and `ConsistencyLevel: eventual` on every
/// page (an advanced query, which is not combined with `$expand`; Graph does not carry the
/// header to nextLinks).
pub fn list(config: &Config, page_token: Option<&str>) -> Result<ResourcePage, ConnectorError> {
    let graph = Graph::new(config);
    let token = PageToken::decode(page_token, &[Phase::Resources], graph.base_url())?;
    let url = token.next_link.unwrap_or_else(|| {
        let mut query = vec![("$select", SELECT), ("$top", graph.page_size())];
        if config.skip_ad_groups {
            query.push(("$filter", "onPremisesSyncEnabled ne true"));
            query.push(("$count", "true"));
        } else {
            query.push(("$expand", EXPAND_OWNERS));
        }
        graph.url("/groups", &query)
    });
    let page = graph.collection::<GraphGroup>(url, config.skip_ad_groups, READ_GROUPS)?;
    let items = page.value.into_iter().map(|group| group_resource(group, config.page_size)).collect();
    Ok(resource_page(items, page.next_link))
}

/// A group reported by a delta query comes without `$expand=owners` (delta does not take it):
/// reads its first page of owners so its profile carries them exactly as a listing would
/// (complete only without a next page; `carry_complete_owners` applies the same limits). Not with
/// `skip-ad-groups`, whose listing does not expand owners either.
pub(crate) fn with_owners_read(
    graph: &Graph,
    config: &Config,
    mut group: GraphGroup,
) -> Result<GraphGroup, ConnectorError> {
    if config.skip_ad_groups {
        return Ok(group);
    }
    let url = holders_url(graph, &format!("/groups/{}/owners", segment(&group.id)));
    match graph.collection::<DirectoryObject>(url, false, READ_MEMBERS) {
        Ok(page) if page.next_link.is_none() => group.owners = Some(page.value),
        Ok(_) | Err(ConnectorError::Forbidden(_)) | Err(ConnectorError::NotFound(_)) => group.owners = None,
        Err(error) => return Err(error),
    }
    Ok(group)
}

pub(crate) fn group_resource(group: GraphGroup, page_size: u16) -> Resource {
    let has_type = |name: &str| group.group_types.iter().any(|kind| kind.eq_ignore_ascii_case(name));
    let mail_enabled = group.mail_enabled.unwrap_or(false);
    let security_enabled = group.security_enabled.unwrap_or(false);
    let kind = if has_type("Unified") {
        "microsoft365"
    } else {
        match (mail_enabled, security_enabled) {
            (true, true) => "mail_enabled_security",
            (true, false) => "distribution",
            _ => "security",
        }
    };
    let mut profile = json!({
        "description": group.description,
        "email": group.mail,
        "kind": kind,
        "dynamic": has_type("DynamicMembership"),
        "on_premises_synced": group.on_premises_sync_enabled.unwrap_or(false),
        "role_assignable": group.is_assignable_to_role.unwrap_or(false),
    });
    carry_complete_owners(&mut profile, group.owners, page_size);
    directory_resource(ResourceType::Group, group.id, group.display_name, profile)
}

/// `members` (assignment) and `owners` (ownership); no request.
pub fn entitlements(group: &Resource) -> EntitlementPage {
    let group_entitlement = |slug: Slug, label: &str, purpose: EntitlementPurpose| {
        let display_name = format!("{} {label}", group.display_name);
        let description = format!("Direct {label} of the group {}", group.display_name);
        entitlement(ResourceType::Group, group, slug, display_name, description, purpose)
    };
    entitlement_page(vec![
        group_entitlement(Slug::Members, "members", EntitlementPurpose::Assignment),
        group_entitlement(Slug::Owners, "owners", EntitlementPurpose::Ownership),
    ])
}

/// Members, then owners: `GET /v1.0/groups/{id}/{members|owners}?$select=id,servicePrincipalType&$top=N`,
/// each followed through its nextLinks until Azure gives none (never a page-size guess). Owners
/// the group's profile carries come with the last page of members instead.
pub fn grants(config: &Config, group: &Resource, page_token: Option<&str>) -> Result<GrantPage, ConnectorError> {
    require_guid(ResourceType::Group, &group.id)?;
    let graph = Graph::new(config);
    let token = PageToken::decode(page_token, GRANT_PHASES, graph.base_url())?;
    let (relation, slug) = match token.phase {
        Phase::Owners => ("owners", Slug::Owners),
        _ => ("members", Slug::Members),
    };
    let url =
        token.next_link.unwrap_or_else(|| holders_url(&graph, &format!("/groups/{}/{relation}", segment(&group.id))));
    let entitlement_id = EntitlementId::new(ResourceType::Group, &group.id, slug).render();
    let mut resolver = PrincipalResolver::new(&graph);
    let mut sink = GrantSink::default();
    let next_link = holders_page(&graph, &mut resolver, url, &entitlement_id, READ_MEMBERS, &mut sink)?;
    finish_grant_page(sink, &mut resolver, ResourceType::Group, group, GRANT_PHASES, token.phase, next_link)
}

/// `POST /v1.0/groups/{id}/{members|owners}/$ref`.
pub fn grant(
    config: &Config,
    entitlement: &EntitlementId,
    principal: &Principal,
) -> Result<ProvisionResult, ConnectorError> {
    let graph = Graph::new(config);
    let (collection, permission) = relation(entitlement)?;
    add_reference(&graph, &collection, entitlement, principal, permission)
}

/// `DELETE /v1.0/groups/{id}/{members|owners}/{principal}/$ref`.
pub fn revoke(
    config: &Config,
    entitlement: &EntitlementId,
    principal: &Principal,
) -> Result<ProvisionResult, ConnectorError> {
    let graph = Graph::new(config);
    let (collection, permission) = relation(entitlement)?;
    remove_reference(&graph, &collection, entitlement, principal, permission)
}

fn relation(entitlement: &EntitlementId) -> Result<(String, &'static str), ConnectorError> {
    let group = segment(&entitlement.resource_id);
    match entitlement.slug {
        Slug::Members => Ok((format!("/groups/{group}/members"), WRITE_MEMBERS)),
        Slug::Owners => Ok((format!("/groups/{group}/owners"), WRITE_OWNERS)),
        _ => Err(ConnectorError::Unsupported(format!("{} is not a group entitlement", entitlement.render()))),
    }
}
