//! The Azure identity-governance connector: a WebAssembly component that implements the
//! `idgov:connector` contract (../wit/connector.wit) for Microsoft Entra ID (through Microsoft
//! Graph) and Azure Resource Manager.
//!
//! The component is stateless: every export parses the configuration it is given, makes its
//! requests through `wasi:http/outgoing-handler` and returns. The host attaches the bearer tokens
//! (per origin, for the scopes declared in `metadata`), enforces the allowed origins and retries
//! throttled calls; the component never sees a credential and never retries.

mod application_changes;
mod applications;
mod arm;
mod arm_changes;
mod azure_resources;
mod change_feed;
mod config;
mod delta;
mod directory_role_provisioning;
mod directory_roles;
mod graph;
mod groups;
mod http;
mod ids;
mod managed_identities;
mod metadata;
mod notices;
mod paging;
mod principals;
mod provisioning;
mod rbac;
mod records;
mod users;
mod wasi_support;

wit_bindgen::generate!({ path: "../wit", world: "incremental-connector-component" });

pub(crate) use idgov::connector::types as contract;

use config::Config;
use contract::{
    ConfigValue, ConnectorError, ConnectorMetadata, EntitlementPage, GrantPage, ProvisionResult, Resource,
    ResourcePage, ResourceRef,
};
use exports::idgov::connector::connector::Guest;
use ids::{EntitlementId, Principal, ResourceType};

struct AzureConnector;

impl Guest for AzureConnector {
    fn metadata() -> ConnectorMetadata {
        metadata::connector_metadata()
    }

    fn validate_config(config: Vec<ConfigValue>) -> Result<(), ConnectorError> {
        Config::parse(&config).map(|_| ())
    }

    fn list_resources(
        config: Vec<ConfigValue>,
        resource_type: String,
        parent: Option<ResourceRef>,
        page_token: Option<String>,
    ) -> Result<ResourcePage, ConnectorError> {
        let config = Config::parse(&config)?;
        let page_token = page_token.as_deref();
        match ResourceType::parse(&resource_type)? {
            ResourceType::User => users::list(&config, page_token),
            ResourceType::Group => groups::list(&config, page_token),
            ResourceType::Role => directory_roles::list(&config, page_token),
            ResourceType::EnterpriseApplication => applications::list(&config, page_token),
            ResourceType::ManagedIdentity => managed_identities::list(&config, page_token),
            ResourceType::Tenant => azure_resources::list_tenants(&config, page_token),
            ResourceType::Subscription => azure_resources::list_subscriptions(&config, page_token),
            ResourceType::ResourceGroup => azure_resources::list_resource_groups(&config, parent.as_ref(), page_token),
        }
    }

    fn list_entitlements(
        config: Vec<ConfigValue>,
        resource: Resource,
        page_token: Option<String>,
    ) -> Result<EntitlementPage, ConnectorError> {
        let config = Config::parse(&config)?;
        // Every entitlement list fits one page: they are derived from the resource itself, or
        // (Azure RBAC) bounded by the role catalogue. A token is never issued, so none is read.
        let _ = page_token;
        match ResourceType::parse(&resource.resource_type)? {
            ResourceType::Group => Ok(groups::entitlements(&resource)),
            ResourceType::Role => Ok(directory_roles::entitlements(&resource)),
            ResourceType::EnterpriseApplication => applications::entitlements(&resource),
            ResourceType::Subscription | ResourceType::ResourceGroup => rbac::entitlements(&config, &resource),
            ResourceType::User | ResourceType::ManagedIdentity | ResourceType::Tenant => {
                Ok(records::entitlement_page(Vec::new()))
            }
        }
    }

    fn list_grants(
        config: Vec<ConfigValue>,
        resource: Resource,
        page_token: Option<String>,
    ) -> Result<GrantPage, ConnectorError> {
        let config = Config::parse(&config)?;
        let page_token = page_token.as_deref();
        match ResourceType::parse(&resource.resource_type)? {
            ResourceType::Group => groups::grants(&config, &resource, page_token),
            ResourceType::Role => directory_roles::grants(&config, &resource, page_token),
            ResourceType::EnterpriseApplication => applications::grants(&config, &resource, page_token),
            ResourceType::Subscription | ResourceType::ResourceGroup => rbac::grants(&config, &resource, page_token),
            ResourceType::User | ResourceType::ManagedIdentity | ResourceType::Tenant => {
                Ok(records::empty_grant_page())
            }
        }
    }

    fn grant(
        config: Vec<ConfigValue>,
        entitlement_id: String,
        principal: ResourceRef,
    ) -> Result<ProvisionResult, ConnectorError> {
        provision(config, entitlement_id, principal, Write::Grant)
    }

    fn revoke(
        config: Vec<ConfigValue>,
        entitlement_id: String,
        principal: ResourceRef,
    ) -> Result<ProvisionResult, ConnectorError> {
        provision(config, entitlement_id, principal, Write::Revoke)
    }
}

/// Which of the contract's two provisioning calls is being made.
#[derive(Clone, Copy)]
enum Write {
    Grant,
    Revoke,
}

/// A grant or a revoke in the module that provisions one resource type.
type Provision = fn(&Config, &EntitlementId, &Principal) -> Result<ProvisionResult, ConnectorError>;

/// Grants and revokes check their arguments alike and are routed by one table, so every
/// resource type that can be granted can be revoked through the same module.
fn provision(
    config: Vec<ConfigValue>,
    entitlement_id: String,
    principal: ResourceRef,
    write: Write,
) -> Result<ProvisionResult, ConnectorError> {
    let config = Config::parse(&config)?;
    let entitlement = EntitlementId::parse(&entitlement_id)?;
    let principal = entitlement.check_grantable(&principal)?;
    let (grant, revoke): (Provision, Provision) = match entitlement.resource_type {
        ResourceType::Group => (groups::grant, groups::revoke),
        ResourceType::Role => (directory_role_provisioning::grant, directory_role_provisioning::revoke),
        ResourceType::EnterpriseApplication => (applications::grant, applications::revoke),
        ResourceType::Subscription | ResourceType::ResourceGroup => (rbac::grant, rbac::revoke),
        other => return Err(ids::not_provisionable(other)),
    };
    match write {
        Write::Grant => grant(&config, &entitlement, &principal),
        Write::Revoke => revoke(&config, &entitlement, &principal),
    }
}

impl exports::idgov::connector::incremental::Guest for AzureConnector {
    fn tracked_types(config: Vec<ConfigValue>) -> Vec<exports::idgov::connector::incremental::TrackedType> {
        // An unusable configuration tracks nothing: the host then syncs in full and reports
        // the configuration error from the calls that need it.
        match Config::parse(&config) {
            Ok(_) => delta::tracked_types(),
            Err(_) => Vec::new(),
        }
    }

    fn list_changes(
        config: Vec<ConfigValue>,
        resource_type: String,
        delta_token: Option<String>,
        page_token: Option<String>,
    ) -> Result<exports::idgov::connector::incremental::ChangePage, ConnectorError> {
        let config = Config::parse(&config)?;
        delta::list_changes(&config, &resource_type, delta_token.as_deref(), page_token.as_deref())
    }
}

export!(AzureConnector);
