//! What the connector declares before anything is called: resource types, configuration
//! fields and the two services (Graph and ARM) it asks the host for, by name.

use crate::config::FIELDS;
use crate::contract::{Capabilities, ConfigField, ConnectorMetadata, Endpoint, ResourceType};
use crate::ids::ResourceType as Kind;

pub fn connector_metadata() -> ConnectorMetadata {
    ConnectorMetadata {
        name: "azure".to_owned(),
        version: env!("CARGO_PKG_VERSION").to_owned(),
        description: "Microsoft Entra ID (users, groups, directory roles, enterprise applications, \
                      managed identities) through Microsoft Graph, and Azure RBAC on tenants, \
                      subscriptions and resource groups through Azure Resource Manager."
            .to_owned(),
        resource_types: Kind::ALL.into_iter().map(resource_type).collect(),
        config_fields: FIELDS
            .iter()
            .map(|field| ConfigField {
                key: field.key.to_owned(),
                kind: field.kind,
                description: field.description.to_owned(),
                default_value: Some(field.default_value.to_owned()),
                required: false,
            })
            .collect(),
        // Names only: where Graph and ARM are, and which tokens they take, is the host's to
        // say (it passes the base URLs as `graph-url` and `arm-url`).
        endpoints: vec![
            Endpoint {
                name: "graph".to_owned(),
                description: "Microsoft Graph: users, groups, applications, directory roles, audit log".to_owned(),
            },
            Endpoint {
                name: "arm".to_owned(),
                description: "Azure Resource Manager: subscriptions, resource groups, RBAC, Activity Log".to_owned(),
            },
        ],
    }
}

fn resource_type(kind: Kind) -> ResourceType {
    let (display_name, provisionable, is_principal, listed_under) = match kind {
        Kind::User => ("User", false, true, None),
        Kind::Group => ("Group", true, true, None),
        Kind::Role => ("Directory role", true, false, None),
        Kind::EnterpriseApplication => ("Enterprise application", true, true, None),
        Kind::ManagedIdentity => ("Managed identity", false, true, None),
        Kind::Tenant => ("Tenant", false, false, None),
        Kind::Subscription => ("Subscription", true, false, None),
        Kind::ResourceGroup => ("Resource group", true, false, Some(Kind::Subscription)),
    };
    let capabilities = if provisionable {
        Capabilities::SYNC | Capabilities::GRANT | Capabilities::REVOKE
    } else {
        Capabilities::SYNC
    };
    ResourceType {
        id: kind.as_str().to_owned(),
        display_name: display_name.to_owned(),
        capabilities,
        is_principal,
        listed_under: listed_under.map(|parent| parent.as_str().to_owned()),
    }
}
