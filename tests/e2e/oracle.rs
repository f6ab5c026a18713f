//! What a sync of a fake tenant must produce, computed from the tenant's model alone (never
//! from the connector's code), following §1 of the Azure reference.

use std::collections::{BTreeMap, BTreeSet};

use fake_azure::Tenant;

pub const OWNER: &str = "8e3af657-a8ff-443c-a75c-2fe8c4bcb635";
pub const CONTRIBUTOR: &str = "b24988ac-6180-42a0-ab88-20f7382dd24c";
pub const READER: &str = "acdd72a7-3385-48ef-bd42-f606fba81ae7";
pub const USER_ACCESS_ADMINISTRATOR: &str = "18d7d88d-d35e-4fb5-a5c3-7773c20a72d9";
pub const DEFAULT_ACCESS: &str = "00000000-0000-0000-0000-000000000000";

#[derive(Debug, Default, PartialEq, Eq)]
pub struct Expected {
    /// `(resource_type, id)` → parent `(resource_type, id)`.
    pub resources: BTreeMap<(String, String), Option<(String, String)>>,
    pub entitlements: BTreeSet<String>,
    pub grants: BTreeSet<String>,
    /// Members and assignees that are not principals: counted, never granted.
    pub unsupported_principals: usize,
}

pub struct Options {
    pub skip_ad_groups: bool,
}

/// The principal type of a directory object, `None` for objects that are not principals.
pub fn principal_type(tenant: &Tenant, id: &str) -> Option<&'static str> {
    if tenant.users.iter().any(|user| user.id == id) {
        return Some("user");
    }
    if tenant.groups.iter().any(|group| group.id == id) {
        return Some("group");
    }
    tenant.service_principals.iter().find(|sp| sp.id == id).and_then(|sp| match sp.service_principal_type.as_str() {
        "Application" => Some("enterprise_application"),
        "ManagedIdentity" => Some("managed_identity"),
        _ => None,
    })
}

impl Expected {
    pub fn of(tenant: &Tenant, options: &Options) -> Expected {
        let mut expected = Expected::default();
        expected.directory(tenant, options);
        expected.roles(tenant);
        expected.applications(tenant);
        expected.azure(tenant);
        expected
    }

    fn resource(&mut self, kind: &str, id: &str, parent: Option<(&str, &str)>) {
        self.resources
            .insert((kind.to_owned(), id.to_owned()), parent.map(|(kind, id)| (kind.to_owned(), id.to_owned())));
    }

    fn grant(&mut self, tenant: &Tenant, entitlement: &str, principal_id: &str) {
        match principal_type(tenant, principal_id) {
            Some(kind) => {
                self.grants.insert(format!("{entitlement}:{kind}:{principal_id}"));
            }
            None => self.unsupported_principals += 1,
        }
    }

    fn directory(&mut self, tenant: &Tenant, options: &Options) {
        for user in &tenant.users {
            self.resource("user", &user.id, None);
        }
        for group in &tenant.groups {
            if options.skip_ad_groups && group.on_premises_sync_enabled == Some(true) {
                continue;
            }
            self.resource("group", &group.id, None);
            for slug in ["members", "owners"] {
                let entitlement = format!("group:{}:{slug}", group.id);
                self.entitlements.insert(entitlement.clone());
                let holders = if slug == "members" { &group.members } else { &group.owners };
                for holder in holders {
                    self.grant(tenant, &entitlement, holder);
                }
            }
        }
        for sp in tenant.service_principals.iter().filter(|sp| sp.service_principal_type == "ManagedIdentity") {
            self.resource("managed_identity", &sp.id, None);
        }
    }

    fn roles(&mut self, tenant: &Tenant) {
        for role in &tenant.role_definitions {
            self.resource("role", &role.id, None);
            let assigned = format!("role:{}:assigned", role.id);
            let eligible = format!("role:{}:eligible", role.id);
            self.entitlements.insert(assigned.clone());
            self.entitlements.insert(eligible.clone());
            for assignment in tenant.role_assignments.iter().filter(|a| a.role_definition_id == role.id) {
                self.grant(tenant, &assigned, &assignment.principal_id);
            }
            for eligibility in tenant.role_eligibilities.iter().flatten().filter(|e| e.role_definition_id == role.id) {
                self.grant(tenant, &eligible, &eligibility.principal_id);
            }
        }
    }

    fn applications(&mut self, tenant: &Tenant) {
        for app in tenant.service_principals.iter().filter(|sp| sp.service_principal_type == "Application") {
            self.resource("enterprise_application", &app.id, None);
            let owners = format!("enterprise_application:{}:owners", app.id);
            self.entitlements.insert(owners.clone());
            for owner in &app.owners {
                self.grant(tenant, &owners, owner);
            }
            self.entitlements.insert(format!("enterprise_application:{}:assignment:{DEFAULT_ACCESS}", app.id));
            // Every enabled app role, application permissions included; an assignment of a role
            // the app does not (or no longer) enable is reported, not granted.
            let enabled: Vec<&str> =
                app.app_roles.iter().filter(|role| role.is_enabled).map(|role| role.id.as_str()).collect();
            for role in &enabled {
                self.entitlements.insert(format!("enterprise_application:{}:assignment:{role}", app.id));
            }
            for assignment in &app.app_role_assigned_to {
                let role = assignment.app_role_id.as_str();
                if role == DEFAULT_ACCESS || enabled.contains(&role) {
                    let entitlement = format!("enterprise_application:{}:assignment:{role}", app.id);
                    self.grant(tenant, &entitlement, &assignment.principal_id);
                }
            }
        }
    }

    fn azure(&mut self, tenant: &Tenant) {
        self.resource("tenant", &tenant.tenant_id, None);
        for subscription in &tenant.subscriptions {
            self.resource("subscription", &subscription.subscription_id, Some(("tenant", &subscription.tenant_id)));
            let scope = format!("/subscriptions/{}", subscription.subscription_id);
            self.rbac("subscription", &subscription.subscription_id, &scope, tenant);
        }
        for group in &tenant.resource_groups {
            let id = format!("{}:{}", group.subscription_id, group.name);
            self.resource("resource_group", &id, Some(("subscription", &group.subscription_id)));
            let scope = format!("/subscriptions/{}/resourceGroups/{}", group.subscription_id, group.name);
            self.rbac("resource_group", &id, &scope, tenant);
        }
    }

    /// Bounded catalogue: the four roles anyone may request, plus every role assigned at
    /// exactly this scope; grants only from assignments made at exactly this scope.
    fn rbac(&mut self, kind: &str, id: &str, scope: &str, tenant: &Tenant) {
        for role in [OWNER, CONTRIBUTOR, READER, USER_ACCESS_ADMINISTRATOR] {
            self.entitlements.insert(format!("{kind}:{id}:role:{role}"));
        }
        for assignment in tenant.arm_role_assignments.iter().filter(|a| a.scope.eq_ignore_ascii_case(scope)) {
            let entitlement = format!("{kind}:{id}:role:{}", assignment.role_definition_id);
            self.entitlements.insert(entitlement.clone());
            self.grant(tenant, &entitlement, &assignment.principal_id);
        }
    }
}
