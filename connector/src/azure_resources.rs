//! ARM containers: `tenant` (the tenants the app can see), `subscription` (child of its
//! tenant) and `resource_group` (listed under a subscription; id `<subscriptionId>:<name>`,
//! so resource groups named alike in two subscriptions are two resources).

use std::collections::BTreeMap;

use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use crate::arm::{Arm, RESOURCE_GROUPS_API_VERSION, RESOURCES_API_VERSION};
use crate::config::Config;
use crate::contract::{ConnectorError, Resource, ResourcePage, ResourceRef};
use crate::http::encode_path_segment;
use crate::ids::{ResourceType, require_guid};
use crate::paging::{Collection, PageToken, Phase};
use crate::records::resource_page;

/// The role that lets the app read a subscription and its resource groups.
pub(crate) const READ_SUBSCRIPTIONS: &str = "Reader on the subscriptions to sync";

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Tenant {
    tenant_id: String,
    display_name: Option<String>,
    default_domain: Option<String>,
    tenant_category: Option<String>,
    country: Option<String>,
    country_code: Option<String>,
    tenant_type: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Subscription {
    pub(crate) subscription_id: String,
    tenant_id: Option<String>,
    display_name: Option<String>,
    state: Option<String>,
    authorization_source: Option<String>,
    subscription_policies: Option<SubscriptionPolicies>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SubscriptionPolicies {
    quota_id: Option<String>,
    spending_limit: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ResourceGroup {
    id: Option<String>,
    name: String,
    location: Option<String>,
    managed_by: Option<String>,
    properties: Option<ResourceGroupProperties>,
    #[serde(default)]
    tags: BTreeMap<String, Value>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ResourceGroupProperties {
    provisioning_state: Option<String>,
}

/// `GET /tenants?api-version=2022-12-01`.
pub fn list_tenants(config: &Config, page_token: Option<&str>) -> Result<ResourcePage, ConnectorError> {
    let page: Collection<Tenant> =
        arm_page(config, page_token, "/tenants", RESOURCES_API_VERSION, "Reader on a subscription of the tenant")?;
    let items = page
        .value
        .into_iter()
        .map(|tenant| Resource {
            resource_type: ResourceType::Tenant.as_str().to_owned(),
            display_name: tenant
                .display_name
                .or_else(|| tenant.default_domain.clone())
                .unwrap_or_else(|| tenant.tenant_id.clone()),
            profile_json: json!({
                "default_domain": tenant.default_domain,
                "category": tenant.tenant_category,
                "country": tenant.country_code.or(tenant.country),
                "tenant_type": tenant.tenant_type,
            })
            .to_string(),
            id: tenant.tenant_id,
            parent: None,
        })
        .collect();
    Ok(resource_page(items, page.next_link))
}

/// `GET /subscriptions?api-version=2022-12-01`; each subscription's parent is its tenant.
pub fn list_subscriptions(config: &Config, page_token: Option<&str>) -> Result<ResourcePage, ConnectorError> {
    let page: Collection<Subscription> =
        arm_page(config, page_token, "/subscriptions", RESOURCES_API_VERSION, READ_SUBSCRIPTIONS)?;
    let items = page.value.into_iter().map(subscription_resource).collect();
    Ok(resource_page(items, page.next_link))
}

pub(crate) fn subscription_resource(subscription: Subscription) -> Resource {
    let policies = subscription.subscription_policies.as_ref();
    Resource {
        resource_type: ResourceType::Subscription.as_str().to_owned(),
        display_name: subscription.display_name.clone().unwrap_or_else(|| subscription.subscription_id.clone()),
        parent: subscription
            .tenant_id
            .clone()
            .map(|tenant_id| ResourceRef { resource_type: ResourceType::Tenant.as_str().to_owned(), id: tenant_id }),
        profile_json: json!({
            "state": subscription.state,
            "tenant_id": subscription.tenant_id,
            "authorization_source": subscription.authorization_source,
            "quota_id": policies.and_then(|policies| policies.quota_id.clone()),
            "spending_limit": policies.and_then(|policies| policies.spending_limit.clone()),
        })
        .to_string(),
        id: subscription.subscription_id,
    }
}

/// `GET /subscriptions/{id}?api-version=2022-12-01`: the subscription as the listing shows it,
/// or `None` when it is gone (404).
pub(crate) fn read_subscription(arm: &Arm, subscription_id: &str) -> Result<Option<Resource>, ConnectorError> {
    require_guid(ResourceType::Subscription, subscription_id)?;
    let url = arm.url(&format!("/subscriptions/{}", encode_path_segment(subscription_id)), RESOURCES_API_VERSION, &[]);
    let response = arm.send(crate::http::ApiRequest::get(url))?;
    if response.status == 404 {
        return Ok(None);
    }
    if !response.is_success() {
        return Err(response.into_error(Some(READ_SUBSCRIPTIONS.to_owned())));
    }
    Ok(Some(subscription_resource(response.json()?)))
}

/// The id of a resource group: `<subscriptionId>:<name>`.
pub(crate) fn resource_group_id(subscription_id: &str, name: &str) -> String {
    format!("{subscription_id}:{name}")
}

/// `GET /subscriptions/{sub}/resourcegroups?api-version=2021-04-01`, for the parent subscription,
/// each resource group with the RBAC at its scope (see `rbac`).
pub fn list_resource_groups(
    config: &Config,
    parent: Option<&ResourceRef>,
    page_token: Option<&str>,
) -> Result<ResourcePage, ConnectorError> {
    let subscription_id = parent
        .filter(|parent| parent.resource_type == ResourceType::Subscription.as_str())
        .map(|parent| parent.id.as_str())
        .ok_or_else(|| {
            ConnectorError::InvalidConfig(
                "resource_group is listed under a subscription: pass the subscription as parent".to_owned(),
            )
        })?;
    require_guid(ResourceType::Subscription, subscription_id)?;
    let scope = format!("/subscriptions/{}", encode_path_segment(subscription_id));
    let page: Collection<ResourceGroup> = arm_page(
        config,
        page_token,
        &format!("{scope}/resourcegroups"),
        RESOURCE_GROUPS_API_VERSION,
        &format!("Reader on {scope}"),
    )?;
    let names: Vec<&str> = page.value.iter().map(|group| group.name.as_str()).collect();
    let mut rbac = crate::rbac::resource_group_rbac(config, subscription_id, &names);
    let items = page
        .value
        .into_iter()
        .map(|group| {
            let mut profile = json!({
                "subscription_id": subscription_id,
                "arm_id": group.id,
                "location": group.location,
                "managed_by": group.managed_by,
                "provisioning_state": group.properties.and_then(|properties| properties.provisioning_state),
                "tags": group.tags,
            });
            if let Some(carried) = rbac.remove(&group.name.to_ascii_lowercase()) {
                profile["rbac"] = carried;
            }
            Resource {
                resource_type: ResourceType::ResourceGroup.as_str().to_owned(),
                id: resource_group_id(subscription_id, &group.name),
                display_name: group.name.clone(),
                parent: Some(ResourceRef {
                    resource_type: ResourceType::Subscription.as_str().to_owned(),
                    id: subscription_id.to_owned(),
                }),
                profile_json: profile.to_string(),
            }
        })
        .collect();
    Ok(resource_page(items, page.next_link))
}

/// One page of the ARM collection at `path`: the first, or the one the page token's nextLink names.
fn arm_page<T: DeserializeOwned>(
    config: &Config,
    page_token: Option<&str>,
    path: &str,
    api_version: &str,
    missing_role: &str,
) -> Result<Collection<T>, ConnectorError> {
    let arm = Arm::new(config);
    let token = PageToken::decode(page_token, &[Phase::Resources], arm.base_url())?;
    let url = token.next_link.unwrap_or_else(|| arm.url(path, api_version, &[]));
    arm.collection(url, missing_role)
}
