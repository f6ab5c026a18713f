//! The tenant the fake serves: directory objects, directory roles and Azure RBAC, as plain data.
//!
//! Field names follow Graph/ARM property names (snake_cased) so the mapping to JSON stays obvious.

/// Everything one Entra tenant (and the Azure subscriptions it owns) contains.
#[derive(Clone, Debug)]
pub struct Tenant {
    pub tenant_id: String,
    pub display_name: String,
    pub default_domain: String,
    /// The only app registration the token endpoint accepts.
    pub client_id: String,
    pub client_secret: String,
    pub users: Vec<User>,
    pub groups: Vec<Group>,
    pub service_principals: Vec<ServicePrincipal>,
    /// Devices and organisational contacts: members that are not principals.
    pub other_objects: Vec<DirectoryObjectStub>,
    pub role_definitions: Vec<DirectoryRoleDefinition>,
    pub role_assignments: Vec<DirectoryRoleAssignment>,
    /// `None` = a tenant without Entra ID P2: PIM listings answer with a licence error.
    pub role_eligibilities: Option<Vec<DirectoryRoleEligibility>>,
    pub subscriptions: Vec<Subscription>,
    pub resource_groups: Vec<ResourceGroup>,
    pub arm_role_definitions: Vec<ArmRoleDefinition>,
    pub arm_role_assignments: Vec<ArmRoleAssignment>,
}

#[derive(Clone, Debug)]
pub struct User {
    pub id: String,
    pub display_name: String,
    pub user_principal_name: String,
    pub mail: Option<String>,
    /// "Member" or "Guest".
    pub user_type: String,
    pub account_enabled: bool,
    pub job_title: Option<String>,
    pub department: Option<String>,
    pub employee_id: Option<String>,
    pub on_premises_sync_enabled: Option<bool>,
    /// `None` = no mailbox: `mailboxSettings` answers 404. Otherwise "user", "shared", "room", "equipment", ...
    pub mailbox_purpose: Option<String>,
}

#[derive(Clone, Debug)]
pub struct Group {
    pub id: String,
    pub display_name: String,
    pub description: Option<String>,
    /// `["Unified"]` for Microsoft 365 groups, `["DynamicMembership"]` for dynamic ones, empty otherwise.
    pub group_types: Vec<String>,
    pub mail: Option<String>,
    pub mail_enabled: bool,
    pub security_enabled: bool,
    pub on_premises_sync_enabled: Option<bool>,
    pub is_assignable_to_role: bool,
    /// Object ids of any kind (users, groups, service principals, devices, contacts).
    pub members: Vec<String>,
    pub owners: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServicePrincipal {
    pub id: String,
    pub app_id: String,
    pub display_name: String,
    /// "Application", "ManagedIdentity", "Legacy" or "SocialIdp".
    pub service_principal_type: String,
    pub account_enabled: bool,
    pub app_owner_organization_id: Option<String>,
    pub app_roles: Vec<AppRole>,
    pub tags: Vec<String>,
    /// For managed identities: "isExplicit=True|False" and the Azure resource id of the identity.
    pub alternative_names: Vec<String>,
    pub owners: Vec<String>,
    pub app_role_assigned_to: Vec<AppRoleAssignment>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AppRole {
    pub id: String,
    pub display_name: String,
    pub value: String,
    pub description: String,
    /// "User" (users and groups) and/or "Application".
    pub allowed_member_types: Vec<String>,
    pub is_enabled: bool,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AppRoleAssignment {
    /// Opaque base64url string, not a GUID (as Graph issues them).
    pub id: String,
    /// `00000000-0000-0000-0000-000000000000` = default access.
    pub app_role_id: String,
    pub principal_id: String,
    /// "User", "Group" or "ServicePrincipal".
    pub principal_type: String,
    pub principal_display_name: String,
    pub resource_id: String,
}

#[derive(Clone, Debug)]
pub struct DirectoryObjectStub {
    pub id: String,
    pub display_name: String,
    pub kind: StubKind,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StubKind {
    Device,
    OrgContact,
}

#[derive(Clone, Debug)]
pub struct DirectoryRoleDefinition {
    pub id: String,
    pub template_id: String,
    pub display_name: String,
    pub description: String,
    pub is_built_in: bool,
    pub is_enabled: bool,
}

#[derive(Clone, Debug)]
pub struct DirectoryRoleAssignment {
    /// Opaque, like `lAPpYvVpN0KRkAEhdxReEMmO4KwRqtpKkUWt3wOYIz4-1`.
    pub id: String,
    pub principal_id: String,
    pub role_definition_id: String,
    /// "/" for the whole directory.
    pub directory_scope_id: String,
}

#[derive(Clone, Debug)]
pub struct DirectoryRoleEligibility {
    pub id: String,
    pub principal_id: String,
    pub role_definition_id: String,
    pub directory_scope_id: String,
}

#[derive(Clone, Debug)]
pub struct Subscription {
    pub subscription_id: String,
    pub display_name: String,
    pub tenant_id: String,
    /// "Enabled", "Disabled", "Warned", ...
    pub state: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResourceGroup {
    pub subscription_id: String,
    pub name: String,
    pub location: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ArmRoleDefinition {
    /// A GUID; the ARM id is built from the scope it is listed at.
    pub id: String,
    pub role_name: String,
    pub description: String,
    /// "BuiltInRole" or "CustomRole".
    pub role_type: String,
    pub assignable_scopes: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ArmRoleAssignment {
    /// A GUID chosen by the client that created it.
    pub name: String,
    /// "/subscriptions/x", "/subscriptions/x/resourceGroups/y",
    /// "/providers/Microsoft.Management/managementGroups/m" or "/".
    pub scope: String,
    /// The role definition GUID.
    pub role_definition_id: String,
    pub principal_id: String,
    /// "User", "Group" or "ServicePrincipal".
    pub principal_type: String,
}

/// How big a generated tenant is (see [`Tenant::generate`]).
#[derive(Clone, Debug)]
pub struct TenantShape {
    pub users: usize,
    pub groups: usize,
    pub members_per_group: usize,
    pub service_principals: usize,
    pub app_role_assignments_per_app: usize,
    pub subscriptions: usize,
    pub resource_groups_per_subscription: usize,
    pub rbac_assignments_per_subscription: usize,
}

impl TenantShape {
    /// A mid-size tenant: 2,500 users, 300 groups of 20 members, the rest small.
    pub fn small() -> Self {
        TenantShape {
            users: 2_500,
            groups: 300,
            members_per_group: 20,
            service_principals: 40,
            app_role_assignments_per_app: 5,
            subscriptions: 2,
            resource_groups_per_subscription: 5,
            rbac_assignments_per_subscription: 20,
        }
    }
}

impl Tenant {
    /// The `@odata.type` of a directory object, or `None` when no object has that id.
    /// A linear scan: the server keeps its own index for request handling.
    pub fn directory_object_kind(&self, id: &str) -> Option<&'static str> {
        if self.users.iter().any(|user| user.id == id) {
            return Some("#microsoft.graph.user");
        }
        if self.groups.iter().any(|group| group.id == id) {
            return Some("#microsoft.graph.group");
        }
        if self.service_principals.iter().any(|sp| sp.id == id) {
            return Some("#microsoft.graph.servicePrincipal");
        }
        self.other_objects.iter().find(|stub| stub.id == id).map(|stub| stub.kind.odata_type())
    }
}

impl StubKind {
    pub const fn odata_type(self) -> &'static str {
        match self {
            StubKind::Device => "#microsoft.graph.device",
            StubKind::OrgContact => "#microsoft.graph.orgContact",
        }
    }
}
