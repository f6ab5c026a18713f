//! Snapshot rows as the connector-API messages baton reads: which trait each resource type
//! carries, what goes into each trait, and which grants are expandable.

use std::collections::BTreeMap;

use prost_types::{ListValue, Struct, Value, value::Kind};
use serde_json::Value as Json;

use super::proto::{
    AccountType, Annotation as _, AppTrait, ChildResourceType, Entitlement, Grant, GrantExpandable, GroupTrait,
    Purpose, Resource, ResourceId, ResourceStatus, ResourceType, RoleTrait, Status, Trait, UserEmail, UserStatus,
    UserStatusValue, UserTrait,
};

/// A row of the snapshot's `resource_types`.
pub struct ResourceTypeRow {
    pub id: String,
    pub display_name: String,
    pub listed_under: Option<String>,
}

/// A row of the snapshot's `resources`.
pub struct ResourceRow {
    pub resource_type: String,
    pub id: String,
    pub display_name: String,
    pub parent: Option<ResourceId>,
    pub profile: String,
}

/// A row of the snapshot's `entitlements`.
pub struct EntitlementRow {
    pub id: String,
    pub resource_type: String,
    pub resource_id: String,
    pub slug: String,
    pub display_name: String,
    pub description: String,
    pub purpose: String,
    pub grantable_to: String,
}

/// A row of the snapshot's `grants`, with the entitlement it is of.
pub struct GrantRow {
    pub id: String,
    pub entitlement_id: String,
    pub entitlement_resource: ResourceId,
    pub entitlement_slug: String,
    pub principal: ResourceId,
}

/// The trait baton shows for each of our resource types. Managed identities are users of
/// account type service, as the Go connector has them (so C1 lists them as service accounts).
/// They carry no `NonHumanIdentityTrait`: baton-sdk added it in v0.11.0, and the newest `baton`
/// (on v0.7.27) cannot print a resource that has an annotation its SDK does not know
/// (`-o json` fails on the whole listing), see docs/baton.md.
fn trait_of(resource_type: &str) -> Trait {
    match resource_type {
        "user" | "managed_identity" => Trait::User,
        "group" => Trait::Group,
        "role" => Trait::Role,
        "enterprise_application" => Trait::App,
        _ => Trait::Unspecified,
    }
}

pub fn resource_type_message(row: &ResourceTypeRow) -> ResourceType {
    let traits = match trait_of(&row.id) {
        Trait::Unspecified => Vec::new(),
        known => vec![known as i32],
    };
    ResourceType {
        id: row.id.clone(),
        display_name: row.display_name.clone(),
        traits,
        annotations: Vec::new(),
        description: String::new(),
    }
}

/// The resource with its trait, its status, its profile, and one `ChildResourceType`
/// annotation per type listed under it (so baton and C1 walk tenant → subscription →
/// resource group as the Go connector's tree).
pub fn resource_message<'a>(row: &ResourceRow, child_types: impl IntoIterator<Item = &'a String>) -> Resource {
    let profile_json = serde_json::from_str::<Json>(&row.profile).ok().filter(Json::is_object);
    let profile = profile_json.as_ref().map(json_struct);
    let field = |name: &str| profile_json.as_ref().and_then(|profile| profile.get(name)).and_then(Json::as_str);
    let mut annotations = Vec::new();
    let mut status = None;
    match trait_of(&row.resource_type) {
        Trait::User => {
            let is_managed_identity = row.resource_type == "managed_identity";
            // Users say `status: enabled|disabled`; managed identities `enabled: true|false`.
            let enabled = match field("status") {
                Some("enabled") => Some(true),
                Some("disabled") => Some(false),
                _ => profile_json.as_ref().and_then(|profile| profile.get("enabled")).and_then(Json::as_bool),
            };
            status = enabled.map(|enabled| Status {
                status: if enabled { ResourceStatus::Enabled } else { ResourceStatus::Disabled } as i32,
            });
            let user = UserTrait {
                emails: field("email")
                    .map(|address| UserEmail { address: address.to_owned(), is_primary: true })
                    .into_iter()
                    .collect(),
                status: enabled.map(|enabled| UserStatus {
                    status: if enabled { UserStatusValue::Enabled } else { UserStatusValue::Disabled } as i32,
                }),
                profile: profile.clone(),
                account_type: if is_managed_identity {
                    AccountType::Service
                } else {
                    account_type(field("account_kind"))
                } as i32,
                login: field("login").unwrap_or_default().to_owned(),
                employee_ids: field("employee_id").map(str::to_owned).into_iter().collect(),
            };
            annotations.push(user.to_any());
        }
        Trait::Group => annotations.push(GroupTrait { profile: profile.clone() }.to_any()),
        Trait::Role => annotations.push(RoleTrait { profile: profile.clone() }.to_any()),
        Trait::App => annotations.push(AppTrait { profile: profile.clone() }.to_any()),
        Trait::Unspecified => {}
    }
    annotations
        .extend(child_types.into_iter().map(|child| ChildResourceType { resource_type_id: child.clone() }.to_any()));
    Resource {
        id: Some(ResourceId { resource_type: row.resource_type.clone(), resource: row.id.clone() }),
        parent_resource_id: row.parent.clone(),
        display_name: row.display_name.clone(),
        annotations,
        description: String::new(),
        profile,
        status,
    }
}

/// The mailbox purpose read with `--mailboxSettings` (`account_kind` in the profile): rooms,
/// shared and equipment mailboxes are service accounts; without it the type is not known.
fn account_type(account_kind: Option<&str>) -> AccountType {
    match account_kind {
        Some("human") => AccountType::Human,
        Some("non_human") => AccountType::Service,
        _ => AccountType::Unspecified,
    }
}

/// The entitlement with its resource (id, name and parent only: the full resource is in
/// `v1_resources`, and repeating it in every entitlement would multiply the file).
pub fn entitlement_message(row: &EntitlementRow, resource_types: &BTreeMap<String, ResourceType>) -> Entitlement {
    Entitlement {
        resource: Some(Resource {
            id: Some(ResourceId { resource_type: row.resource_type.clone(), resource: row.resource_id.clone() }),
            ..Resource::default()
        }),
        id: row.id.clone(),
        display_name: row.display_name.clone(),
        description: row.description.clone(),
        grantable_to: row
            .grantable_to
            .split(',')
            .filter(|id| !id.is_empty())
            .map(|id| {
                resource_types
                    .get(id)
                    .cloned()
                    .unwrap_or_else(|| ResourceType { id: id.to_owned(), ..Default::default() })
            })
            .collect(),
        annotations: Vec::new(),
        purpose: match row.purpose.as_str() {
            "assignment" => Purpose::Assignment,
            "permission" => Purpose::Permission,
            "ownership" => Purpose::Ownership,
            _ => Purpose::Unspecified,
        } as i32,
        slug: row.slug.clone(),
    }
}

/// The grant, and its `GrantExpandable` when the principal is a group: whoever is a member of
/// that group holds the entitlement too. Azure applies app roles assigned to a group to its
/// direct members only (nested groups do not inherit them), so those are shallow; group
/// membership, directory roles and Azure RBAC reach nested members.
pub fn grant_message(row: &GrantRow) -> (Grant, Option<GrantExpandable>) {
    let expandable = (row.principal.resource_type == "group").then(|| GrantExpandable {
        entitlement_ids: vec![format!("group:{}:members", row.principal.resource)],
        shallow: row.entitlement_resource.resource_type == "enterprise_application"
            && row.entitlement_slug.starts_with("assignment:"),
        resource_type_ids: Vec::new(),
    });
    let grant = Grant {
        entitlement: Some(Entitlement {
            resource: Some(Resource { id: Some(row.entitlement_resource.clone()), ..Resource::default() }),
            id: row.entitlement_id.clone(),
            slug: row.entitlement_slug.clone(),
            ..Entitlement::default()
        }),
        principal: Some(Resource { id: Some(row.principal.clone()), ..Resource::default() }),
        id: row.id.clone(),
        annotations: expandable.iter().map(|expandable| expandable.to_any()).collect(),
    };
    (grant, expandable)
}

/// A JSON object as a `google.protobuf.Struct` (map keys sorted, so the bytes are stable).
fn json_struct(object: &Json) -> Struct {
    let fields = match object {
        Json::Object(map) => map.iter().map(|(key, value)| (key.clone(), json_value(value))).collect(),
        _ => BTreeMap::new(),
    };
    Struct { fields }
}

fn json_value(value: &Json) -> Value {
    let kind = match value {
        Json::Null => Kind::NullValue(0),
        Json::Bool(flag) => Kind::BoolValue(*flag),
        Json::Number(number) => Kind::NumberValue(number.as_f64().unwrap_or_default()),
        Json::String(text) => Kind::StringValue(text.clone()),
        Json::Array(items) => Kind::ListValue(ListValue { values: items.iter().map(json_value).collect() }),
        Json::Object(_) => Kind::StructValue(json_struct(value)),
    };
    Value { kind: Some(kind) }
}
