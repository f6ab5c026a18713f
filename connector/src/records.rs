//! The contract's records built the same way for every resource type: a directory object as a
//! resource, an entitlement of a listed resource, and the pages of listings that need one phase.

use serde_json::Value;

use crate::contract::{
    Entitlement, EntitlementPage, EntitlementPurpose, GrantPage, Resource, ResourcePage, ResourceRef,
};
use crate::ids::{EntitlementId, ResourceType, Slug};
use crate::paging::{Phase, following};

/// A directory object (group, application, managed identity, role definition) as a resource:
/// top-level, named after its display name, or after its id when it has none.
pub fn directory_resource(
    resource_type: ResourceType,
    id: String,
    display_name: Option<String>,
    profile: Value,
) -> Resource {
    Resource {
        resource_type: resource_type.as_str().to_owned(),
        display_name: display_name.unwrap_or_else(|| id.clone()),
        id,
        parent: None,
        profile_json: profile.to_string(),
    }
}

/// The entitlement `slug` of `resource` (whose type is `resource_type`), grantable to what the
/// slug allows.
pub fn entitlement(
    resource_type: ResourceType,
    resource: &Resource,
    slug: Slug,
    display_name: String,
    description: String,
    purpose: EntitlementPurpose,
) -> Entitlement {
    Entitlement {
        id: EntitlementId::new(resource_type, &resource.id, slug.clone()).render(),
        resource: ResourceRef { resource_type: resource.resource_type.clone(), id: resource.id.clone() },
        slug: slug.render(),
        display_name,
        description,
        purpose,
        grantable_to: slug.grantable_to_names(),
    }
}

/// Every entitlement list fits one page: it is derived from the resource itself or bounded by
/// a role catalogue.
pub fn entitlement_page(items: Vec<Entitlement>) -> EntitlementPage {
    EntitlementPage { items, next_page_token: None, notices: Vec::new() }
}

/// The grants of a resource type that offers no entitlements.
pub fn empty_grant_page() -> GrantPage {
    GrantPage { items: Vec::new(), next_page_token: None, notices: Vec::new() }
}

/// A page of a resource listing that has one phase: the next page token carries Azure's nextLink.
pub fn resource_page(items: Vec<Resource>, next_link: Option<String>) -> ResourcePage {
    ResourcePage {
        items,
        next_page_token: following(&[Phase::Resources], Phase::Resources, next_link),
        notices: Vec::new(),
    }
}
