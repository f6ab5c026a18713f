//! `role` resources: Entra ID directory role definitions (built-in and custom), with an
//! `assigned` (active) and an `eligible` (PIM) entitlement each. Eligible assignments are
//! entitlements of their own, never merged into active ones.
//!
//! Grants are read with `$filter=roleDefinitionId eq '{id}'&$expand=principal`: expanding a
//! single-valued navigation does not truncate (only collection expansions do), and the
//! expanded principal carries `@odata.type` (and `servicePrincipalType`), so one request per
//! page types every holder; a look-up is made only when Graph leaves the principal out.

use serde::Deserialize;
use serde_json::json;

use crate::config::Config;
use crate::contract::{ConnectorError, EntitlementPage, EntitlementPurpose, GrantPage, Notice, Resource, ResourcePage};
use crate::graph::Graph;
use crate::http::{ApiRequest, ApiResponse};
use crate::ids::{EntitlementId, ResourceType, Slug, require_guid};
use crate::notices::{gap, gap_if_forbidden};
use crate::paging::{Collection, PageToken, Phase, checked_next_link, following};
use crate::principals::{DirectoryObject, GrantSink, PrincipalResolver};
use crate::records::{directory_resource, entitlement, entitlement_page, resource_page};

pub const READ_ROLES: &str = "RoleManagement.Read.Directory";
pub const READ_ELIGIBILITY: &str = "RoleEligibilitySchedule.Read.Directory";
pub const ASSIGNMENTS_PATH: &str = "/roleManagement/directory/roleAssignments";
pub const ELIGIBILITY_PATH: &str = "/roleManagement/directory/roleEligibilitySchedules";
const GRANT_PHASES: &[Phase] = &[Phase::Assigned, Phase::Eligible];

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RoleDefinition {
    id: String,
    display_name: Option<String>,
    description: Option<String>,
    is_built_in: Option<bool>,
    is_enabled: Option<bool>,
    template_id: Option<String>,
}

/// An active assignment or an eligibility schedule: both name the principal the same way.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RoleHolding {
    pub id: String,
    pub principal_id: String,
    pub directory_scope_id: Option<String>,
    principal: Option<DirectoryObject>,
}

/// `GET /v1.0/roleManagement/directory/roleDefinitions` (nextLinks followed if Graph pages it).
pub fn list(config: &Config, page_token: Option<&str>) -> Result<ResourcePage, ConnectorError> {
    let graph = Graph::new(config);
    let token = PageToken::decode(page_token, &[Phase::Resources], graph.base_url())?;
    let url = token.next_link.unwrap_or_else(|| graph.url("/roleManagement/directory/roleDefinitions", &[]));
    let page = graph.collection::<RoleDefinition>(url, false, READ_ROLES)?;
    let items = page
        .value
        .into_iter()
        .map(|role| {
            let profile = json!({
                "built_in": role.is_built_in,
                "enabled": role.is_enabled,
                "template_id": role.template_id,
                "description": role.description,
            });
            directory_resource(ResourceType::Role, role.id, role.display_name, profile)
        })
        .collect();
    Ok(resource_page(items, page.next_link))
}

/// `assigned` and `eligible`; no request.
pub fn entitlements(role: &Resource) -> EntitlementPage {
    let role_entitlement = |slug: Slug, label: &str, description: String| {
        let display_name = format!("{} ({label})", role.display_name);
        entitlement(ResourceType::Role, role, slug, display_name, description, EntitlementPurpose::Assignment)
    };
    entitlement_page(vec![
        role_entitlement(
            Slug::Assigned,
            "active",
            format!("Active assignment of the directory role {}", role.display_name),
        ),
        role_entitlement(
            Slug::Eligible,
            "eligible",
            format!("PIM eligibility for the directory role {} (activated on demand)", role.display_name),
        ),
    ])
}

/// Active assignments, then eligibility schedules, of one role. Every scope counts: a holder
/// of the role at an administrative-unit scope holds the role.
pub fn grants(config: &Config, role: &Resource, page_token: Option<&str>) -> Result<GrantPage, ConnectorError> {
    require_guid(ResourceType::Role, &role.id)?;
    let graph = Graph::new(config);
    let token = PageToken::decode(page_token, GRANT_PHASES, graph.base_url())?;
    let filter = format!("roleDefinitionId eq '{}'", role.id);
    let (path, slug) = match token.phase {
        Phase::Eligible => (ELIGIBILITY_PATH, Slug::Eligible),
        _ => (ASSIGNMENTS_PATH, Slug::Assigned),
    };
    let url = token.next_link.unwrap_or_else(|| graph.url(path, &[("$filter", &filter), ("$expand", "principal")]));
    let request = ApiRequest::get(url);
    let call = request.call();
    let response = graph.send(request)?;
    if !response.is_success() {
        let notice = match token.phase {
            Phase::Eligible => eligibility_gap(response, &call)?,
            _ => gap_if_forbidden(response.into_error(Some(READ_ROLES.to_owned())), call)?,
        };
        return Ok(GrantPage {
            items: Vec::new(),
            next_page_token: following(GRANT_PHASES, token.phase, None),
            notices: vec![notice],
        });
    }
    let page: Collection<RoleHolding> = response.json()?;
    let next_link = checked_next_link(page.next_link, graph.base_url(), &response.call)?;
    let entitlement_id = EntitlementId::new(ResourceType::Role, &role.id, slug).render();
    let mut resolver = PrincipalResolver::new(&graph);
    let mut sink = GrantSink::default();
    for holding in page.value {
        let principal = holding.principal.unwrap_or(DirectoryObject {
            id: holding.principal_id,
            odata_type: None,
            service_principal_type: None,
        });
        let holder = resolver.directory_object(&principal)?;
        sink.add(&entitlement_id, holder);
    }
    Ok(GrantPage {
        items: sink.items,
        next_page_token: following(GRANT_PHASES, token.phase, next_link),
        notices: sink.notices,
    })
}

/// PIM needs Entra ID P2: a tenant without it answers 400/403 naming the licence. That, or a
/// plain 403, is a visible gap, never "no eligible assignments".
fn eligibility_gap(response: ApiResponse, call: &str) -> Result<Notice, ConnectorError> {
    let error = response.upstream_error();
    let text = format!("{} {}", error.code, error.message).to_ascii_lowercase();
    let unlicensed = matches!(response.status, 400 | 403)
        && (text.contains("p2") || text.contains("licen") || text.contains("aadpremiumlicenserequired"));
    if unlicensed {
        Ok(gap(
            call.to_owned(),
            format!("eligible assignments not available: not licensed ({} {})", error.code, error.message),
            Some("Microsoft Entra ID P2 licence".to_owned()),
        ))
    } else if response.status == 403 {
        Ok(gap(
            call.to_owned(),
            format!("eligible assignments not available: forbidden ({} {})", error.code, error.message),
            Some(READ_ELIGIBILITY.to_owned()),
        ))
    } else {
        Err(response.into_error(Some(READ_ELIGIBILITY.to_owned())))
    }
}
