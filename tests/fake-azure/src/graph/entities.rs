//! How each object the fake stores looks as a Graph entity: its property names and values.
//!
//! Every collection is served through [`GraphEntity`], so `$select`, `$filter` and `$orderby`
//! work the same everywhere and only this file knows the JSON property names.

use serde_json::{Map, Value, json};

use crate::directory::DirectoryObject;
use crate::model::{
    AppRoleAssignment, DirectoryObjectStub, DirectoryRoleAssignment, DirectoryRoleDefinition, DirectoryRoleEligibility,
    Group, ServicePrincipal, StubKind, User,
};

/// A fixed creation time for seeded objects: the model does not track history.
const SEEDED_CREATED: &str = "2023-05-02T09:14:21Z";

pub trait GraphEntity {
    fn odata_type(&self) -> &'static str;
    fn property_names(&self) -> &'static [&'static str];
    /// What Graph returns without `$select`.
    fn default_property_names(&self) -> &'static [&'static str] {
        self.property_names()
    }
    /// The value of a property by its canonical name; `None` when this type has no such property.
    fn property(&self, name: &str) -> Option<Value>;
}

/// A reference is the entity it points at (so borrowed items can be served as entities).
impl<E: GraphEntity + ?Sized> GraphEntity for &E {
    fn odata_type(&self) -> &'static str {
        (**self).odata_type()
    }
    fn property_names(&self) -> &'static [&'static str] {
        (**self).property_names()
    }
    fn default_property_names(&self) -> &'static [&'static str] {
        (**self).default_property_names()
    }
    fn property(&self, name: &str) -> Option<Value> {
        (**self).property(name)
    }
}

/// The canonical spelling of a property name (Graph matches names case-insensitively).
pub fn canonical_name(names: &'static [&'static str], requested: &str) -> Option<&'static str> {
    names.iter().copied().find(|name| name.eq_ignore_ascii_case(requested.trim()))
}

/// The JSON of one item: the selected properties this type has (or its default set), with
/// `@odata.type` first for polymorphic (directoryObject) collections.
pub fn to_json(entity: &dyn GraphEntity, select: Option<&[String]>, with_odata_type: bool) -> Map<String, Value> {
    let mut object = Map::new();
    if with_odata_type {
        object.insert("@odata.type".into(), Value::from(entity.odata_type()));
    }
    let names = entity.property_names();
    let mut insert = |name: &'static str| {
        if let Some(value) = entity.property(name) {
            object.insert(name.into(), value);
        }
    };
    match select {
        Some(selected) => {
            selected.iter().filter_map(|requested| canonical_name(names, requested)).for_each(&mut insert)
        }
        // directoryObject collections return each member's full property set (see the owners sample).
        None if with_odata_type => names.iter().copied().for_each(insert),
        None => entity.default_property_names().iter().copied().for_each(insert),
    }
    object
}

pub const USER_PROPERTIES: &[&str] = &[
    "id",
    "businessPhones",
    "displayName",
    "givenName",
    "jobTitle",
    "mail",
    "mobilePhone",
    "officeLocation",
    "preferredLanguage",
    "surname",
    "userPrincipalName",
    "userType",
    "accountEnabled",
    "department",
    "employeeId",
    "mailNickname",
    "onPremisesSyncEnabled",
    "createdDateTime",
];

const USER_DEFAULT_PROPERTIES: &[&str] = &[
    "businessPhones",
    "displayName",
    "givenName",
    "jobTitle",
    "mail",
    "mobilePhone",
    "officeLocation",
    "preferredLanguage",
    "surname",
    "userPrincipalName",
    "id",
];

fn optional(value: &Option<String>) -> Value {
    value.as_deref().map_or(Value::Null, Value::from)
}

impl GraphEntity for User {
    fn odata_type(&self) -> &'static str {
        "#microsoft.graph.user"
    }
    fn property_names(&self) -> &'static [&'static str] {
        USER_PROPERTIES
    }
    fn default_property_names(&self) -> &'static [&'static str] {
        USER_DEFAULT_PROPERTIES
    }
    fn property(&self, name: &str) -> Option<Value> {
        let (given, surname) = match self.display_name.split_once(' ') {
            Some((given, surname)) => (Value::from(given), Value::from(surname)),
            None => (Value::Null, Value::Null),
        };
        Some(match name {
            "id" => json!(self.id),
            "businessPhones" => json!([]),
            "displayName" => json!(self.display_name),
            "givenName" => given,
            "surname" => surname,
            "jobTitle" => optional(&self.job_title),
            "mail" => optional(&self.mail),
            "mobilePhone" | "officeLocation" | "preferredLanguage" => Value::Null,
            "userPrincipalName" => json!(self.user_principal_name),
            "userType" => json!(self.user_type),
            "accountEnabled" => json!(self.account_enabled),
            "department" => optional(&self.department),
            "employeeId" => optional(&self.employee_id),
            "mailNickname" => json!(self.user_principal_name.split('@').next().unwrap_or_default()),
            "onPremisesSyncEnabled" => json!(self.on_premises_sync_enabled),
            "createdDateTime" => json!(SEEDED_CREATED),
            _ => return None,
        })
    }
}

pub const GROUP_PROPERTIES: &[&str] = &[
    "id",
    "deletedDateTime",
    "classification",
    "createdDateTime",
    "description",
    "displayName",
    "groupTypes",
    "isAssignableToRole",
    "mail",
    "mailEnabled",
    "mailNickname",
    "membershipRule",
    "onPremisesSyncEnabled",
    "securityEnabled",
    "visibility",
];

impl GraphEntity for Group {
    fn odata_type(&self) -> &'static str {
        "#microsoft.graph.group"
    }
    fn property_names(&self) -> &'static [&'static str] {
        GROUP_PROPERTIES
    }
    fn property(&self, name: &str) -> Option<Value> {
        let is_unified = self.group_types.iter().any(|kind| kind == "Unified");
        Some(match name {
            "id" => json!(self.id),
            "deletedDateTime" | "classification" | "membershipRule" => Value::Null,
            "createdDateTime" => json!(SEEDED_CREATED),
            "description" => optional(&self.description),
            "displayName" => json!(self.display_name),
            "groupTypes" => json!(self.group_types),
            "isAssignableToRole" => json!(self.is_assignable_to_role),
            "mail" => optional(&self.mail),
            "mailEnabled" => json!(self.mail_enabled),
            "mailNickname" => json!(self.display_name.replace(' ', "")),
            "onPremisesSyncEnabled" => json!(self.on_premises_sync_enabled),
            "securityEnabled" => json!(self.security_enabled),
            "visibility" => {
                if is_unified {
                    json!("Private")
                } else {
                    Value::Null
                }
            }
            _ => return None,
        })
    }
}

pub const SERVICE_PRINCIPAL_PROPERTIES: &[&str] = &[
    "id",
    "deletedDateTime",
    "accountEnabled",
    "alternativeNames",
    "appDisplayName",
    "appId",
    "appOwnerOrganizationId",
    "appRoles",
    "displayName",
    "servicePrincipalNames",
    "servicePrincipalType",
    "signInAudience",
    "tags",
];

impl GraphEntity for ServicePrincipal {
    fn odata_type(&self) -> &'static str {
        "#microsoft.graph.servicePrincipal"
    }
    fn property_names(&self) -> &'static [&'static str] {
        SERVICE_PRINCIPAL_PROPERTIES
    }
    fn property(&self, name: &str) -> Option<Value> {
        Some(match name {
            "id" => json!(self.id),
            "deletedDateTime" => Value::Null,
            "accountEnabled" => json!(self.account_enabled),
            "alternativeNames" => json!(self.alternative_names),
            "appDisplayName" => json!(self.display_name),
            "appId" => json!(self.app_id),
            "appOwnerOrganizationId" => optional(&self.app_owner_organization_id),
            "appRoles" => Value::Array(
                self.app_roles
                    .iter()
                    .map(|role| {
                        json!({
                            "allowedMemberTypes": role.allowed_member_types,
                            "description": role.description,
                            "displayName": role.display_name,
                            "id": role.id,
                            "isEnabled": role.is_enabled,
                            "origin": "Application",
                            "value": role.value,
                        })
                    })
                    .collect(),
            ),
            "displayName" => json!(self.display_name),
            "servicePrincipalNames" => json!([self.app_id]),
            "servicePrincipalType" => json!(self.service_principal_type),
            "signInAudience" => match self.service_principal_type.as_str() {
                "Application" => json!("AzureADMultipleOrgs"),
                _ => Value::Null,
            },
            "tags" => json!(self.tags),
            _ => return None,
        })
    }
}

const DEVICE_PROPERTIES: &[&str] = &["id", "deletedDateTime", "accountEnabled", "displayName", "operatingSystem"];
const ORG_CONTACT_PROPERTIES: &[&str] = &["id", "deletedDateTime", "displayName", "mail"];

impl GraphEntity for DirectoryObjectStub {
    fn odata_type(&self) -> &'static str {
        self.kind.odata_type()
    }
    fn property_names(&self) -> &'static [&'static str] {
        match self.kind {
            StubKind::Device => DEVICE_PROPERTIES,
            StubKind::OrgContact => ORG_CONTACT_PROPERTIES,
        }
    }
    fn property(&self, name: &str) -> Option<Value> {
        if !self.property_names().contains(&name) {
            return None;
        }
        Some(match name {
            "id" => json!(self.id),
            "displayName" => json!(self.display_name),
            "accountEnabled" => json!(true),
            "operatingSystem" => json!("Windows"),
            _ => Value::Null,
        })
    }
}

impl<'a> DirectoryObject<'a> {
    pub fn entity(self) -> &'a dyn GraphEntity {
        match self {
            DirectoryObject::User(user) => user,
            DirectoryObject::Group(group) => group,
            DirectoryObject::ServicePrincipal(sp) => sp,
            DirectoryObject::Stub(stub) => stub,
        }
    }
}

/// An appRoleAssignment as listed under its resource service principal.
pub struct AppRoleAssignmentView<'a> {
    pub assignment: &'a AppRoleAssignment,
    pub resource_display_name: &'a str,
}

pub const APP_ROLE_ASSIGNMENT_PROPERTIES: &[&str] = &[
    "id",
    "deletedDateTime",
    "appRoleId",
    "createdDateTime",
    "principalDisplayName",
    "principalId",
    "principalType",
    "resourceDisplayName",
    "resourceId",
];

impl GraphEntity for AppRoleAssignmentView<'_> {
    fn odata_type(&self) -> &'static str {
        "#microsoft.graph.appRoleAssignment"
    }
    fn property_names(&self) -> &'static [&'static str] {
        APP_ROLE_ASSIGNMENT_PROPERTIES
    }
    fn property(&self, name: &str) -> Option<Value> {
        let assignment = self.assignment;
        Some(match name {
            "id" => json!(assignment.id),
            "deletedDateTime" => Value::Null,
            "appRoleId" => json!(assignment.app_role_id),
            "createdDateTime" => json!(SEEDED_CREATED),
            "principalDisplayName" => json!(assignment.principal_display_name),
            "principalId" => json!(assignment.principal_id),
            "principalType" => json!(assignment.principal_type),
            "resourceDisplayName" => json!(self.resource_display_name),
            "resourceId" => json!(assignment.resource_id),
            _ => return None,
        })
    }
}

pub const ROLE_DEFINITION_PROPERTIES: &[&str] = &[
    "id",
    "description",
    "displayName",
    "isBuiltIn",
    "isEnabled",
    "resourceScopes",
    "templateId",
    "version",
    "rolePermissions",
    "inheritsPermissionsFrom",
];

impl GraphEntity for DirectoryRoleDefinition {
    fn odata_type(&self) -> &'static str {
        "#microsoft.graph.unifiedRoleDefinition"
    }
    fn property_names(&self) -> &'static [&'static str] {
        ROLE_DEFINITION_PROPERTIES
    }
    fn property(&self, name: &str) -> Option<Value> {
        Some(match name {
            "id" => json!(self.id),
            "description" => json!(self.description),
            "displayName" => json!(self.display_name),
            "isBuiltIn" => json!(self.is_built_in),
            "isEnabled" => json!(self.is_enabled),
            "resourceScopes" => json!(["/"]),
            "templateId" => json!(self.template_id),
            "version" => {
                if self.is_built_in {
                    json!("1")
                } else {
                    Value::Null
                }
            }
            "rolePermissions" => json!([{ "allowedResourceActions": [], "condition": null }]),
            "inheritsPermissionsFrom" => json!([]),
            _ => return None,
        })
    }
}

/// An entity with its `principal` navigation property expanded (`$expand=principal`), as Graph
/// allows on role assignments and eligibility schedules.
pub struct WithPrincipal<'a, E: GraphEntity> {
    pub entity: &'a E,
    pub principal: Option<Value>,
}

impl<E: GraphEntity> GraphEntity for WithPrincipal<'_, E> {
    fn odata_type(&self) -> &'static str {
        self.entity.odata_type()
    }
    fn property_names(&self) -> &'static [&'static str] {
        self.entity.property_names()
    }
    fn property(&self, name: &str) -> Option<Value> {
        match name {
            "principal" => self.principal.clone(),
            other => self.entity.property(other),
        }
    }
}

pub const ROLE_ASSIGNMENT_PROPERTIES: &[&str] =
    &["id", "principalId", "resourceScope", "directoryScopeId", "roleDefinitionId"];

impl GraphEntity for DirectoryRoleAssignment {
    fn odata_type(&self) -> &'static str {
        "#microsoft.graph.unifiedRoleAssignment"
    }
    fn property_names(&self) -> &'static [&'static str] {
        ROLE_ASSIGNMENT_PROPERTIES
    }
    fn property(&self, name: &str) -> Option<Value> {
        Some(match name {
            "id" => json!(self.id),
            "principalId" => json!(self.principal_id),
            "resourceScope" | "directoryScopeId" => json!(self.directory_scope_id),
            "roleDefinitionId" => json!(self.role_definition_id),
            _ => return None,
        })
    }
}

pub const ELIGIBILITY_PROPERTIES: &[&str] = &[
    "id",
    "principalId",
    "roleDefinitionId",
    "directoryScopeId",
    "appScopeId",
    "createdUsing",
    "createdDateTime",
    "modifiedDateTime",
    "status",
    "memberType",
    "scheduleInfo",
];

impl GraphEntity for DirectoryRoleEligibility {
    fn odata_type(&self) -> &'static str {
        "#microsoft.graph.unifiedRoleEligibilitySchedule"
    }
    fn property_names(&self) -> &'static [&'static str] {
        ELIGIBILITY_PROPERTIES
    }
    fn property(&self, name: &str) -> Option<Value> {
        Some(match name {
            "id" | "createdUsing" => json!(self.id),
            "principalId" => json!(self.principal_id),
            "roleDefinitionId" => json!(self.role_definition_id),
            "directoryScopeId" => json!(self.directory_scope_id),
            "appScopeId" => Value::Null,
            "createdDateTime" => json!(SEEDED_CREATED),
            // Graph's own sentinel for "never modified".
            "modifiedDateTime" => json!("0001-01-01T08:00:00Z"),
            "status" => json!("Provisioned"),
            "memberType" => json!("Direct"),
            "scheduleInfo" => json!({
                "startDateTime": SEEDED_CREATED,
                "recurrence": null,
                "expiration": { "type": "noExpiration", "endDateTime": null, "duration": null }
            }),
            _ => return None,
        })
    }
}
