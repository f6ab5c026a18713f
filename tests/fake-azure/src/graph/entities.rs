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

/// A type of Graph entity: what `@odata.type` calls it and which properties it has.
pub struct EntityType {
    /// E.g. `#microsoft.graph.user`.
    pub odata_type: &'static str,
    /// Every property, spelled canonically.
    pub properties: &'static [&'static str],
    /// What Graph returns without `$select`.
    pub default_properties: &'static [&'static str],
}

impl EntityType {
    /// A type whose every property is returned without `$select`.
    const fn returning_all(odata_type: &'static str, properties: &'static [&'static str]) -> Self {
        EntityType { odata_type, properties, default_properties: properties }
    }

    /// The name Graph's error messages use, e.g. `microsoft.graph.user`.
    pub fn name(&self) -> &'static str {
        self.odata_type.trim_start_matches('#')
    }
}

pub trait GraphEntity {
    fn entity_type(&self) -> &'static EntityType;
    /// The value of a property by its canonical name; `None` when this type has no such property.
    fn property(&self, name: &str) -> Option<Value>;
}

/// A reference is the entity it points at (so borrowed items can be served as entities).
impl<E: GraphEntity + ?Sized> GraphEntity for &E {
    fn entity_type(&self) -> &'static EntityType {
        (**self).entity_type()
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
    let entity_type = entity.entity_type();
    if with_odata_type {
        object.insert("@odata.type".into(), Value::from(entity_type.odata_type));
    }
    let names = entity_type.properties;
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
        None => entity_type.default_properties.iter().copied().for_each(insert),
    }
    object
}

pub static USER_TYPE: EntityType = EntityType {
    odata_type: "#microsoft.graph.user",
    properties: &[
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
    ],
    default_properties: &[
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
    ],
};

fn optional(value: &Option<String>) -> Value {
    value.as_deref().map_or(Value::Null, Value::from)
}

impl GraphEntity for User {
    fn entity_type(&self) -> &'static EntityType {
        &USER_TYPE
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

pub static GROUP_TYPE: EntityType = EntityType::returning_all(
    "#microsoft.graph.group",
    &[
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
    ],
);

impl GraphEntity for Group {
    fn entity_type(&self) -> &'static EntityType {
        &GROUP_TYPE
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

pub static SERVICE_PRINCIPAL_TYPE: EntityType = EntityType::returning_all(
    "#microsoft.graph.servicePrincipal",
    &[
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
    ],
);

impl GraphEntity for ServicePrincipal {
    fn entity_type(&self) -> &'static EntityType {
        &SERVICE_PRINCIPAL_TYPE
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

static DEVICE_TYPE: EntityType = EntityType::returning_all(
    StubKind::Device.odata_type(),
    &["id", "deletedDateTime", "accountEnabled", "displayName", "operatingSystem"],
);
static ORG_CONTACT_TYPE: EntityType =
    EntityType::returning_all(StubKind::OrgContact.odata_type(), &["id", "deletedDateTime", "displayName", "mail"]);

impl GraphEntity for DirectoryObjectStub {
    fn entity_type(&self) -> &'static EntityType {
        match self.kind {
            StubKind::Device => &DEVICE_TYPE,
            StubKind::OrgContact => &ORG_CONTACT_TYPE,
        }
    }
    fn property(&self, name: &str) -> Option<Value> {
        if !self.entity_type().properties.contains(&name) {
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

pub static APP_ROLE_ASSIGNMENT_TYPE: EntityType = EntityType::returning_all(
    "#microsoft.graph.appRoleAssignment",
    &[
        "id",
        "deletedDateTime",
        "appRoleId",
        "createdDateTime",
        "principalDisplayName",
        "principalId",
        "principalType",
        "resourceDisplayName",
        "resourceId",
    ],
);

impl GraphEntity for AppRoleAssignmentView<'_> {
    fn entity_type(&self) -> &'static EntityType {
        &APP_ROLE_ASSIGNMENT_TYPE
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

pub static ROLE_DEFINITION_TYPE: EntityType = EntityType::returning_all(
    "#microsoft.graph.unifiedRoleDefinition",
    &[
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
    ],
);

impl GraphEntity for DirectoryRoleDefinition {
    fn entity_type(&self) -> &'static EntityType {
        &ROLE_DEFINITION_TYPE
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
    fn entity_type(&self) -> &'static EntityType {
        self.entity.entity_type()
    }
    fn property(&self, name: &str) -> Option<Value> {
        match name {
            "principal" => self.principal.clone(),
            other => self.entity.property(other),
        }
    }
}

pub static ROLE_ASSIGNMENT_TYPE: EntityType = EntityType::returning_all(
    "#microsoft.graph.unifiedRoleAssignment",
    &["id", "principalId", "resourceScope", "directoryScopeId", "roleDefinitionId"],
);

impl GraphEntity for DirectoryRoleAssignment {
    fn entity_type(&self) -> &'static EntityType {
        &ROLE_ASSIGNMENT_TYPE
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

pub static ROLE_ELIGIBILITY_TYPE: EntityType = EntityType::returning_all(
    "#microsoft.graph.unifiedRoleEligibilitySchedule",
    &[
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
    ],
);

impl GraphEntity for DirectoryRoleEligibility {
    fn entity_type(&self) -> &'static EntityType {
        &ROLE_ELIGIBILITY_TYPE
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
