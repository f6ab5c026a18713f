//! Deterministic tenants of any size for benchmarks: the same shape always yields the same tenant.
//!
//! Relationships are drawn with arithmetic progressions whose step is coprime with the population,
//! so picks are distinct without bookkeeping and generation stays linear in the output size.

use crate::ids::{app_role_assignment_id, deterministic_guid, directory_role_assignment_id, mix64};
use crate::model::{
    AppRole, AppRoleAssignment, ArmRoleAssignment, ArmRoleDefinition, DirectoryRoleAssignment, DirectoryRoleDefinition,
    DirectoryRoleEligibility, Group, ResourceGroup, ServicePrincipal, Subscription, Tenant, TenantShape, User,
};

/// Id namespaces, so ids of different kinds never collide.
mod namespace {
    pub const TENANT: u64 = 1;
    pub const USER: u64 = 2;
    pub const GROUP: u64 = 3;
    pub const SERVICE_PRINCIPAL: u64 = 4;
    pub const APPLICATION: u64 = 5;
    pub const APP_ROLE: u64 = 6;
    pub const SUBSCRIPTION: u64 = 7;
    pub const ARM_ASSIGNMENT: u64 = 8;
    pub const ELIGIBILITY: u64 = 9;
}

const DOMAIN: &str = "generated.onmicrosoft.com";
const MICROSOFT_TENANT_ID: &str = "f8cdef31-a31e-4b4a-93e4-5f571e91255a";
const DEFAULT_ACCESS: &str = "00000000-0000-0000-0000-000000000000";
const GLOBAL_ADMINISTRATOR: &str = "62e90394-69f5-4237-9190-012177145e10";
const USER_ADMINISTRATOR: &str = "fe930be7-5e62-47db-91af-98c3a49a38b1";
const APPLICATION_ADMINISTRATOR: &str = "9b895d92-2cd3-44c7-9d02-a6ac2d5ea5c3";
/// Owner, Contributor, Reader, User Access Administrator, Key Vault Secrets User.
const ARM_BUILT_IN_ROLES: [(&str, &str); 5] = [
    ("8e3af657-a8ff-443c-a75c-2fe8c4bcb635", "Owner"),
    ("b24988ac-6180-42a0-ab88-20f7382dd24c", "Contributor"),
    ("acdd72a7-3385-48ef-bd42-f606fba81ae7", "Reader"),
    ("18d7d88d-d35e-4fb5-a5c3-7773c20a72d9", "User Access Administrator"),
    ("4633458b-17de-408a-b874-0445c86b69e6", "Key Vault Secrets User"),
];
const FIRST_NAMES: [&str; 12] =
    ["Avery", "Blake", "Casey", "Dana", "Emery", "Finley", "Gray", "Harper", "Jordan", "Kai", "Logan", "Morgan"];
const LAST_NAMES: [&str; 10] =
    ["Chen", "Diaz", "Evans", "Fischer", "Garcia", "Haas", "Ivanova", "Jones", "Kim", "Lopez"];
const LOCATIONS: [&str; 4] = ["eastus", "westeurope", "westus2", "northeurope"];

/// A step in `1..n` that visits every index of `0..n` once when added repeatedly (mod n).
fn coprime_step(n: usize, seed: u64) -> usize {
    fn gcd(a: usize, b: usize) -> usize {
        if b == 0 { a } else { gcd(b, a % b) }
    }
    if n <= 1 {
        return 1;
    }
    let mut step = (mix64(seed) as usize % n).max(1);
    while gcd(step, n) != 1 {
        step = step % (n - 1) + 1;
    }
    step
}

/// `count` distinct indexes of `0..n` (fewer when `n < count`), determined by `seed`.
fn distinct_picks(n: usize, count: usize, seed: u64) -> impl Iterator<Item = usize> {
    let start = if n == 0 { 0 } else { mix64(seed ^ 0x5eed) as usize % n };
    let step = coprime_step(n, seed);
    (0..count.min(n)).map(move |k| (start + k * step) % n)
}

impl Tenant {
    /// A deterministic tenant of the given shape (see the module docs).
    pub fn generate(shape: &TenantShape) -> Tenant {
        let tenant_id = deterministic_guid(namespace::TENANT, 0);
        let users = generate_users(shape.users);
        let service_principals = generate_service_principals(shape, &tenant_id, &users);
        let groups = generate_groups(shape, &users, &service_principals);
        let subscriptions: Vec<Subscription> = (0..shape.subscriptions)
            .map(|index| Subscription {
                subscription_id: deterministic_guid(namespace::SUBSCRIPTION, index as u64),
                display_name: format!("Subscription {index:03}"),
                tenant_id: tenant_id.clone(),
                state: "Enabled".into(),
            })
            .collect();
        let resource_groups: Vec<ResourceGroup> = subscriptions
            .iter()
            .flat_map(|subscription| {
                (0..shape.resource_groups_per_subscription).map(|index| ResourceGroup {
                    subscription_id: subscription.subscription_id.clone(),
                    name: format!("rg-{index:03}"),
                    location: LOCATIONS[index % LOCATIONS.len()].into(),
                })
            })
            .collect();
        let arm_role_assignments = generate_arm_assignments(shape, &subscriptions, &users, &groups);
        let (role_assignments, role_eligibilities) = generate_directory_roles(&users, &groups);
        Tenant {
            tenant_id: tenant_id.clone(),
            display_name: format!("Generated tenant ({} users)", shape.users),
            default_domain: DOMAIN.into(),
            client_id: deterministic_guid(namespace::APPLICATION, u64::MAX),
            client_secret: "generated~tenant~secret".into(),
            users,
            groups,
            service_principals,
            other_objects: Vec::new(),
            role_definitions: [
                (GLOBAL_ADMINISTRATOR, "Global Administrator"),
                (USER_ADMINISTRATOR, "User Administrator"),
                (APPLICATION_ADMINISTRATOR, "Application Administrator"),
            ]
            .into_iter()
            .map(|(id, name)| DirectoryRoleDefinition {
                id: id.into(),
                template_id: id.into(),
                display_name: name.into(),
                description: format!("Built-in role {name}."),
                is_built_in: true,
                is_enabled: true,
            })
            .collect(),
            role_assignments,
            role_eligibilities: Some(role_eligibilities),
            subscriptions,
            resource_groups,
            arm_role_definitions: ARM_BUILT_IN_ROLES
                .iter()
                .map(|(id, name)| ArmRoleDefinition {
                    id: (*id).into(),
                    role_name: (*name).into(),
                    description: format!("Built-in role {name}."),
                    role_type: "BuiltInRole".into(),
                    assignable_scopes: vec!["/".into()],
                })
                .collect(),
            arm_role_assignments,
        }
    }
}

fn generate_users(count: usize) -> Vec<User> {
    (0..count)
        .map(|index| {
            let name = format!(
                "{} {} {index}",
                FIRST_NAMES[index % FIRST_NAMES.len()],
                LAST_NAMES[(index / FIRST_NAMES.len()) % LAST_NAMES.len()]
            );
            let is_guest = index % 25 == 24;
            let upn = if is_guest {
                format!("guest{index}_partner.example#EXT#@{DOMAIN}")
            } else {
                format!("user{index:06}@{DOMAIN}")
            };
            let mailbox_purpose = match (is_guest, index % 100) {
                (true, _) | (false, 7) => None,
                (false, 11) => Some("shared"),
                (false, 12) => Some("room"),
                (false, 13) => Some("equipment"),
                _ => Some("user"),
            };
            User {
                id: deterministic_guid(namespace::USER, index as u64),
                display_name: name,
                mail: mailbox_purpose.map(|_| upn.clone()),
                user_principal_name: upn,
                user_type: if is_guest { "Guest" } else { "Member" }.into(),
                account_enabled: index % 40 != 39,
                job_title: Some(["Engineer", "Analyst", "Manager", "Designer"][index % 4].into()),
                department: Some(["Engineering", "Finance", "Sales", "Marketing", "HR"][index % 5].into()),
                employee_id: (!is_guest).then(|| format!("E{index:07}")),
                on_premises_sync_enabled: (index % 3 == 0).then_some(true),
                mailbox_purpose: mailbox_purpose.map(Into::into),
            }
        })
        .collect()
}

fn generate_groups(shape: &TenantShape, users: &[User], service_principals: &[ServicePrincipal]) -> Vec<Group> {
    (0..shape.groups)
        .map(|index| {
            let seed = index as u64;
            let mut members: Vec<String> =
                distinct_picks(users.len(), shape.members_per_group, seed).map(|pick| users[pick].id.clone()).collect();
            // A few nested groups and service-principal members, as real tenants have.
            if index % 10 == 9 {
                members.push(deterministic_guid(namespace::GROUP, seed - 1));
            }
            if index % 15 == 14 && !service_principals.is_empty() {
                members.push(service_principals[index % service_principals.len()].id.clone());
            }
            let owners = distinct_picks(users.len(), if index % 4 == 0 { 2 } else { 1 }, seed ^ 0xabcd)
                .map(|pick| users[pick].id.clone())
                .collect();
            let unified = index % 5 == 1;
            Group {
                id: deterministic_guid(namespace::GROUP, seed),
                display_name: format!("Group {index:05}"),
                description: Some(format!("Generated group {index}")),
                group_types: if unified { vec!["Unified".into()] } else { Vec::new() },
                mail: unified.then(|| format!("group{index:05}@{DOMAIN}")),
                mail_enabled: unified,
                security_enabled: !unified,
                on_premises_sync_enabled: (index % 7 == 3).then_some(true),
                is_assignable_to_role: index % 11 == 5,
                members,
                owners,
            }
        })
        .collect()
}

fn generate_service_principals(shape: &TenantShape, tenant_id: &str, users: &[User]) -> Vec<ServicePrincipal> {
    (0..shape.service_principals)
        .map(|index| {
            let seed = index as u64;
            let id = deterministic_guid(namespace::SERVICE_PRINCIPAL, seed);
            let kind = match index % 20 {
                15..=17 => "ManagedIdentity",
                18 => "Legacy",
                _ => "Application",
            };
            let first_party = index % 20 == 19;
            let mut sp = ServicePrincipal {
                id: id.clone(),
                app_id: deterministic_guid(namespace::APPLICATION, seed),
                display_name: format!("{kind} {index:04}"),
                service_principal_type: kind.into(),
                account_enabled: true,
                app_owner_organization_id: match (kind, first_party) {
                    ("Application", true) => Some(MICROSOFT_TENANT_ID.into()),
                    ("Application", false) => Some(tenant_id.into()),
                    _ => None,
                },
                app_roles: Vec::new(),
                tags: Vec::new(),
                alternative_names: Vec::new(),
                owners: Vec::new(),
                app_role_assigned_to: Vec::new(),
            };
            match kind {
                "Application" if !first_party => {
                    let role_ids: Vec<String> = (0..3).map(|role| deterministic_guid(namespace::APP_ROLE, seed * 3 + role)).collect();
                    sp.app_roles = role_ids
                        .iter()
                        .zip([("Reader", "User"), ("Writer", "User"), ("Sync", "Application")])
                        .map(|(role_id, (name, member_type))| AppRole {
                            id: role_id.clone(),
                            display_name: name.into(),
                            value: format!("App.{name}"),
                            description: format!("{name} of application {index}"),
                            allowed_member_types: vec![member_type.into()],
                            is_enabled: true,
                        })
                        .collect();
                    let choices = [role_ids[0].as_str(), role_ids[1].as_str(), DEFAULT_ACCESS];
                    sp.app_role_assigned_to = distinct_picks(users.len(), shape.app_role_assignments_per_app, seed)
                        .enumerate()
                        .map(|(k, pick)| {
                            let user = &users[pick];
                            let role = choices[k % choices.len()];
                            AppRoleAssignment {
                                id: app_role_assignment_id(&user.id, &id, role),
                                app_role_id: role.into(),
                                principal_id: user.id.clone(),
                                principal_type: "User".into(),
                                principal_display_name: user.display_name.clone(),
                                resource_id: id.clone(),
                            }
                        })
                        .collect();
                    sp.owners = distinct_picks(users.len(), 1, seed ^ 0x0123).map(|pick| users[pick].id.clone()).collect();
                }
                "ManagedIdentity" => {
                    sp.alternative_names = vec![
                        "isExplicit=False".into(),
                        format!("/subscriptions/{}/resourceGroups/rg-000/providers/Microsoft.Compute/virtualMachines/vm-{index}", deterministic_guid(namespace::SUBSCRIPTION, 0)),
                    ];
                }
                _ => {}
            }
            sp
        })
        .collect()
}

fn generate_directory_roles(
    users: &[User],
    groups: &[Group],
) -> (Vec<DirectoryRoleAssignment>, Vec<DirectoryRoleEligibility>) {
    let active = |role: &str, principal: &str| DirectoryRoleAssignment {
        id: directory_role_assignment_id(role, principal, "/"),
        principal_id: principal.into(),
        role_definition_id: role.into(),
        directory_scope_id: "/".into(),
    };
    let mut assignments: Vec<DirectoryRoleAssignment> =
        users.iter().take(1).map(|user| active(GLOBAL_ADMINISTRATOR, &user.id)).collect();
    assignments.extend(users.iter().skip(1).take(3).map(|user| active(USER_ADMINISTRATOR, &user.id)));
    assignments.extend(
        groups
            .iter()
            .filter(|group| group.is_assignable_to_role)
            .take(5)
            .map(|group| active(APPLICATION_ADMINISTRATOR, &group.id)),
    );
    let eligibilities = users
        .iter()
        .skip(4)
        .take(3)
        .enumerate()
        .map(|(index, user)| DirectoryRoleEligibility {
            id: deterministic_guid(namespace::ELIGIBILITY, index as u64),
            principal_id: user.id.clone(),
            role_definition_id: USER_ADMINISTRATOR.into(),
            directory_scope_id: "/".into(),
        })
        .collect();
    (assignments, eligibilities)
}

fn generate_arm_assignments(
    shape: &TenantShape,
    subscriptions: &[Subscription],
    users: &[User],
    groups: &[Group],
) -> Vec<ArmRoleAssignment> {
    let mut counter = 0u64;
    let mut next_name = || {
        counter += 1;
        deterministic_guid(namespace::ARM_ASSIGNMENT, counter)
    };
    let mut assignments = Vec::new();
    for (sub_index, subscription) in subscriptions.iter().enumerate() {
        let subscription_scope = format!("/subscriptions/{}", subscription.subscription_id);
        let user_picks: Vec<usize> =
            distinct_picks(users.len(), shape.rbac_assignments_per_subscription, sub_index as u64).collect();
        for (index, pick) in user_picks.into_iter().enumerate() {
            let scope = match (index % 3, shape.resource_groups_per_subscription) {
                (0, _) | (_, 0) => subscription_scope.clone(),
                _ => format!(
                    "{subscription_scope}/resourceGroups/rg-{:03}",
                    index % shape.resource_groups_per_subscription
                ),
            };
            let (principal_id, principal_type) = match groups.get(index) {
                Some(group) if index % 5 == 4 => (group.id.clone(), "Group"),
                _ => (users[pick].id.clone(), "User"),
            };
            assignments.push(ArmRoleAssignment {
                name: next_name(),
                scope,
                role_definition_id: ARM_BUILT_IN_ROLES[index % ARM_BUILT_IN_ROLES.len()].0.into(),
                principal_id,
                principal_type: principal_type.into(),
            });
        }
    }
    // Inherited from above the subscriptions: one at a management group, one at the root.
    if let Some(user) = users.first() {
        for scope in ["/providers/Microsoft.Management/managementGroups/generated-root", "/"] {
            assignments.push(ArmRoleAssignment {
                name: next_name(),
                scope: scope.into(),
                role_definition_id: ARM_BUILT_IN_ROLES[2].0.into(),
                principal_id: user.id.clone(),
                principal_type: "User".into(),
            });
        }
    }
    assignments
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generation_is_deterministic() {
        let shape = TenantShape { users: 200, groups: 30, ..TenantShape::small() };
        let first = Tenant::generate(&shape);
        let second = Tenant::generate(&shape);
        assert_eq!(first.users[123].id, second.users[123].id);
        assert_eq!(first.groups[7].members, second.groups[7].members);
    }

    #[test]
    fn groups_get_distinct_members_of_the_requested_count() {
        let tenant = Tenant::generate(&TenantShape::small());
        let group = &tenant.groups[0];
        let distinct: std::collections::HashSet<&String> = group.members.iter().collect();
        assert_eq!(group.members.len(), 20);
        assert_eq!(distinct.len(), 20);
        assert_eq!(tenant.users.len(), 2_500);
    }

    #[test]
    fn ids_are_unique_across_kinds() {
        let tenant = Tenant::generate(&TenantShape::small());
        let mut ids: Vec<&String> = tenant.users.iter().map(|u| &u.id).collect();
        ids.extend(tenant.groups.iter().map(|g| &g.id));
        ids.extend(tenant.service_principals.iter().map(|s| &s.id));
        let distinct: std::collections::HashSet<&&String> = ids.iter().collect();
        assert_eq!(distinct.len(), ids.len());
    }
}
