//! The identifiers of the resource model (reference §1): resource types, principal types,
//! entitlement ids `<resource_type>:<resource_id>:<slug>` and grant ids
//! `<entitlement_id>:<principal_type>:<principal_id>`.
//!
//! Ids that come back from the host are parsed strictly: every part that ends up in a request
//! path or body must be a GUID (or a resource group name, which is percent-encoded), so a
//! crafted id cannot steer a request elsewhere.

use crate::contract::{ConnectorError, ResourceRef};

/// The all-zero app role id: "default access" to an application without a specific role.
pub const DEFAULT_ACCESS_APP_ROLE: &str = "00000000-0000-0000-0000-000000000000";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ResourceType {
    User,
    Group,
    Role,
    EnterpriseApplication,
    ManagedIdentity,
    Tenant,
    Subscription,
    ResourceGroup,
}

impl ResourceType {
    pub const ALL: [ResourceType; 8] = [
        ResourceType::User,
        ResourceType::Group,
        ResourceType::Role,
        ResourceType::EnterpriseApplication,
        ResourceType::ManagedIdentity,
        ResourceType::Tenant,
        ResourceType::Subscription,
        ResourceType::ResourceGroup,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ResourceType::User => "user",
            ResourceType::Group => "group",
            ResourceType::Role => "role",
            ResourceType::EnterpriseApplication => "enterprise_application",
            ResourceType::ManagedIdentity => "managed_identity",
            ResourceType::Tenant => "tenant",
            ResourceType::Subscription => "subscription",
            ResourceType::ResourceGroup => "resource_group",
        }
    }

    pub fn parse(value: &str) -> Result<Self, ConnectorError> {
        Self::ALL.into_iter().find(|candidate| candidate.as_str() == value).ok_or_else(|| {
            ConnectorError::InvalidConfig(format!(
                "unknown resource type '{value}': use one of the types listed in metadata()"
            ))
        })
    }
}

/// The resource types that can hold grants.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PrincipalType {
    User,
    Group,
    EnterpriseApplication,
    ManagedIdentity,
}

impl PrincipalType {
    pub fn as_str(self) -> &'static str {
        match self {
            PrincipalType::User => "user",
            PrincipalType::Group => "group",
            PrincipalType::EnterpriseApplication => "enterprise_application",
            PrincipalType::ManagedIdentity => "managed_identity",
        }
    }

    fn parse(value: &str) -> Option<Self> {
        [
            PrincipalType::User,
            PrincipalType::Group,
            PrincipalType::EnterpriseApplication,
            PrincipalType::ManagedIdentity,
        ]
        .into_iter()
        .find(|candidate| candidate.as_str() == value)
    }
}

const EVERY_PRINCIPAL: &[PrincipalType] =
    &[PrincipalType::User, PrincipalType::Group, PrincipalType::EnterpriseApplication, PrincipalType::ManagedIdentity];
/// Groups cannot own groups or applications.
const OWNER_PRINCIPALS: &[PrincipalType] =
    &[PrincipalType::User, PrincipalType::EnterpriseApplication, PrincipalType::ManagedIdentity];
const USERS_AND_GROUPS: &[PrincipalType] = &[PrincipalType::User, PrincipalType::Group];

/// What an entitlement is, within its resource.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Slug {
    Members,
    Owners,
    Assigned,
    Eligible,
    /// `assignment:<appRoleId>` on an enterprise application.
    AppRole(String),
    /// `role:<roleDefinitionGuid>` on a subscription or resource group.
    RbacRole(String),
}

impl Slug {
    pub fn render(&self) -> String {
        match self {
            Slug::Members => "members".to_owned(),
            Slug::Owners => "owners".to_owned(),
            Slug::Assigned => "assigned".to_owned(),
            Slug::Eligible => "eligible".to_owned(),
            Slug::AppRole(app_role_id) => format!("assignment:{app_role_id}"),
            Slug::RbacRole(role_guid) => format!("role:{role_guid}"),
        }
    }

    /// The principal types an entitlement with this slug can be granted to. App roles that
    /// allow "User" members take users and groups; PIM eligibility is offered to users and
    /// groups only.
    pub fn grantable_to(&self) -> &'static [PrincipalType] {
        match self {
            Slug::Members | Slug::Assigned | Slug::RbacRole(_) => EVERY_PRINCIPAL,
            Slug::Owners => OWNER_PRINCIPALS,
            Slug::AppRole(role) if role == DEFAULT_ACCESS_APP_ROLE => USERS_AND_GROUPS,
            // Which of them a role takes is in its allowedMemberTypes: `applications::grant` checks.
            Slug::AppRole(_) => EVERY_PRINCIPAL,
            Slug::Eligible => USERS_AND_GROUPS,
        }
    }

    pub fn grantable_to_names(&self) -> Vec<String> {
        self.grantable_to().iter().map(|principal_type| principal_type.as_str().to_owned()).collect()
    }

    fn parse(resource_type: ResourceType, value: &str) -> Option<Slug> {
        match (resource_type, value) {
            (ResourceType::Group, "members") => Some(Slug::Members),
            (ResourceType::Group | ResourceType::EnterpriseApplication, "owners") => Some(Slug::Owners),
            (ResourceType::Role, "assigned") => Some(Slug::Assigned),
            (ResourceType::Role, "eligible") => Some(Slug::Eligible),
            (ResourceType::EnterpriseApplication, _) => value
                .strip_prefix("assignment:")
                .filter(|app_role_id| is_guid(app_role_id))
                .map(|app_role_id| Slug::AppRole(app_role_id.to_ascii_lowercase())),
            (ResourceType::Subscription | ResourceType::ResourceGroup, _) => value
                .strip_prefix("role:")
                .filter(|role_guid| is_guid(role_guid))
                .map(|role_guid| Slug::RbacRole(role_guid.to_ascii_lowercase())),
            _ => None,
        }
    }
}

/// A parsed entitlement id.
#[derive(Clone, Debug)]
pub struct EntitlementId {
    pub resource_type: ResourceType,
    pub resource_id: String,
    pub slug: Slug,
}

/// A principal a grant or revoke is about, already checked against the entitlement.
#[derive(Clone, Debug)]
pub struct Principal {
    pub principal_type: PrincipalType,
    pub id: String,
}

impl EntitlementId {
    pub fn new(resource_type: ResourceType, resource_id: &str, slug: Slug) -> Self {
        Self { resource_type, resource_id: resource_id.to_owned(), slug }
    }

    pub fn render(&self) -> String {
        format!("{}:{}:{}", self.resource_type.as_str(), self.resource_id, self.slug.render())
    }

    pub fn parse(value: &str) -> Result<Self, ConnectorError> {
        let invalid = || {
            ConnectorError::InvalidConfig(format!(
                "entitlement id '{value}' is not one this connector lists: expected \
                 <resource_type>:<resource_id>:<slug>, e.g. group:<group-guid>:members"
            ))
        };
        let (type_name, rest) = value.split_once(':').ok_or_else(invalid)?;
        let resource_type = ResourceType::parse(type_name)?;
        let (resource_id, slug) = match resource_type {
            // `<subscriptionId>:<resourceGroupName>`: the id itself holds one colon.
            ResourceType::ResourceGroup => {
                let (subscription_id, rest) = rest.split_once(':').ok_or_else(invalid)?;
                let (group_name, slug) = rest.split_once(':').ok_or_else(invalid)?;
                (format!("{subscription_id}:{group_name}"), slug)
            }
            _ => {
                let (resource_id, slug) = rest.split_once(':').ok_or_else(invalid)?;
                (resource_id.to_owned(), slug)
            }
        };
        let valid_resource_id = match resource_type {
            ResourceType::ResourceGroup => ResourceGroupId::parse(&resource_id).is_ok(),
            _ => is_guid(&resource_id),
        };
        if !valid_resource_id {
            return Err(invalid());
        }
        let slug = Slug::parse(resource_type, slug).ok_or_else(invalid)?;
        Ok(Self { resource_type, resource_id, slug })
    }

    /// Refuses, before any request, a principal the entitlement cannot take.
    pub fn check_grantable(&self, principal: &ResourceRef) -> Result<Principal, ConnectorError> {
        let allowed = self.slug.grantable_to();
        let principal_type = PrincipalType::parse(&principal.resource_type)
            .filter(|principal_type| allowed.contains(principal_type))
            .ok_or_else(|| {
                ConnectorError::InvalidConfig(format!(
                    "entitlement {} cannot be granted to a '{}': it takes {}",
                    self.render(),
                    principal.resource_type,
                    self.slug.grantable_to_names().join(", ")
                ))
            })?;
        if !is_guid(&principal.id) {
            return Err(ConnectorError::InvalidConfig(format!(
                "principal id '{}' is not a directory object id (GUID)",
                principal.id
            )));
        }
        Ok(Principal { principal_type, id: principal.id.to_ascii_lowercase() })
    }
}

pub fn grant_id(entitlement_id: &str, principal_type: PrincipalType, principal_id: &str) -> String {
    format!("{entitlement_id}:{}:{principal_id}", principal_type.as_str())
}

/// `<subscriptionId>:<resourceGroupName>`.
pub struct ResourceGroupId<'a> {
    pub subscription_id: &'a str,
    pub name: &'a str,
}

impl<'a> ResourceGroupId<'a> {
    pub fn parse(value: &'a str) -> Result<Self, ConnectorError> {
        value
            .split_once(':')
            .filter(|(subscription_id, name)| is_guid(subscription_id) && !name.is_empty())
            .map(|(subscription_id, name)| ResourceGroupId { subscription_id, name })
            .ok_or_else(|| {
                ConnectorError::InvalidConfig(format!(
                    "resource group id '{value}' must be <subscriptionId>:<resourceGroupName>"
                ))
            })
    }
}

pub fn is_guid(value: &str) -> bool {
    value.len() == 36
        && value.char_indices().all(|(index, character)| match index {
            8 | 13 | 18 | 23 => character == '-',
            _ => character.is_ascii_hexdigit(),
        })
}

pub fn not_provisionable(resource_type: ResourceType) -> ConnectorError {
    ConnectorError::Unsupported(format!(
        "resources of type {} have no entitlements to grant or revoke",
        resource_type.as_str()
    ))
}

/// Checks that a resource handed back by the host has a directory/subscription object id
/// before the id goes into a request path.
pub fn require_guid(resource_type: ResourceType, id: &str) -> Result<(), ConnectorError> {
    if is_guid(id) {
        Ok(())
    } else {
        Err(ConnectorError::InvalidConfig(format!(
            "{} id '{id}' is not a GUID: pass the resource as list-resources returned it",
            resource_type.as_str()
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GROUP: &str = "02bd9fd6-8f93-4758-87c3-1fb73740a315";
    const SUBSCRIPTION: &str = "a1b2c3d4-0000-4000-8000-000000000001";
    const ROLE: &str = "8e3af657-a8ff-443c-a75c-2fe8c4bcb635";

    #[test]
    fn resource_group_entitlement_id_keeps_the_subscription_in_the_resource_id() {
        let id = format!("resource_group:{SUBSCRIPTION}:rg-prod:role:{ROLE}");
        let parsed = EntitlementId::parse(&id).expect("valid id");
        assert_eq!(parsed.resource_type, ResourceType::ResourceGroup);
        assert_eq!(parsed.resource_id, format!("{SUBSCRIPTION}:rg-prod"));
        assert_eq!(parsed.slug, Slug::RbacRole(ROLE.to_owned()));
        assert_eq!(parsed.render(), id);
    }

    #[test]
    fn app_role_slug_must_be_a_guid() {
        assert!(EntitlementId::parse(&format!("enterprise_application:{GROUP}:assignment:../x")).is_err());
        assert!(EntitlementId::parse(&format!("enterprise_application:{GROUP}:assignment:{ROLE}")).is_ok());
    }

    #[test]
    fn slug_of_another_type_is_refused() {
        assert!(EntitlementId::parse(&format!("group:{GROUP}:assigned")).is_err());
        assert!(EntitlementId::parse(&format!("user:{GROUP}:members")).is_err());
    }

    #[test]
    fn group_cannot_own_a_group() {
        let owners = EntitlementId::parse(&format!("group:{GROUP}:owners")).expect("valid id");
        let principal = ResourceRef { resource_type: "group".to_owned(), id: GROUP.to_owned() };
        assert!(matches!(owners.check_grantable(&principal), Err(ConnectorError::InvalidConfig(_))));
    }

    #[test]
    fn grant_id_appends_principal_type_and_id() {
        assert_eq!(
            grant_id(&format!("group:{GROUP}:members"), PrincipalType::ManagedIdentity, "p"),
            format!("group:{GROUP}:members:managed_identity:p")
        );
    }
}
