//! `managed_identity` resources: service principals of type `ManagedIdentity`. They hold
//! grants elsewhere but offer no entitlements of their own.

use serde::Deserialize;
use serde_json::json;

use crate::config::Config;
use crate::contract::{ConnectorError, Resource, ResourcePage};
use crate::graph::Graph;
use crate::ids::ResourceType;
use crate::paging::{PageToken, Phase};
use crate::records::{directory_resource, resource_page};

pub(crate) const SELECT: &str = "id,appId,displayName,servicePrincipalType,accountEnabled,alternativeNames";

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ManagedIdentity {
    id: String,
    app_id: Option<String>,
    display_name: Option<String>,
    account_enabled: Option<bool>,
    #[serde(default)]
    alternative_names: Vec<String>,
}

/// `GET /v1.0/servicePrincipals?$filter=servicePrincipalType eq 'ManagedIdentity'&$select=...&$top=N`.
pub fn list(config: &Config, page_token: Option<&str>) -> Result<ResourcePage, ConnectorError> {
    let graph = Graph::new(config);
    let token = PageToken::decode(page_token, &[Phase::Resources], graph.base_url())?;
    let url = token.next_link.unwrap_or_else(|| {
        graph.url(
            "/servicePrincipals",
            &[
                ("$filter", "servicePrincipalType eq 'ManagedIdentity'"),
                ("$select", SELECT),
                ("$top", graph.page_size()),
            ],
        )
    });
    let page = graph.collection::<ManagedIdentity>(url, false, "Application.Read.All")?;
    let items = page.value.into_iter().map(identity_resource).collect();
    Ok(resource_page(items, page.next_link))
}

/// A managed identity as `list-resources` gives it (also used for delta queries).
pub(crate) fn identity_resource(identity: ManagedIdentity) -> Resource {
    // Graph records the kind and the Azure resource in alternativeNames:
    // "isExplicit=True" marks a user-assigned identity, "isExplicit=False" a
    // system-assigned one, and one entry is the ARM id "/subscriptions/...".
    let names = &identity.alternative_names;
    let kind = if names.iter().any(|name| name.eq_ignore_ascii_case("isExplicit=True")) {
        Some("user_assigned")
    } else if names.iter().any(|name| name.eq_ignore_ascii_case("isExplicit=False")) {
        Some("system_assigned")
    } else {
        None
    };
    let azure_resource_id = names.iter().find(|name| name.to_ascii_lowercase().starts_with("/subscriptions/"));
    let profile = json!({
        "kind": kind,
        "azure_resource_id": azure_resource_id,
        "app_id": identity.app_id,
        "enabled": identity.account_enabled,
    });
    directory_resource(ResourceType::ManagedIdentity, identity.id, identity.display_name, profile)
}
