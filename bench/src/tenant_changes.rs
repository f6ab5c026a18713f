//! The 100 changes the incremental scenario makes to a served tenant, and the grants the next
//! snapshot must gain from them: 97 users added to groups, one directory role, one app role
//! and one owner of an application assigned to users.
//!
//! Picks are deterministic (spread over the tenant by index), so runs compare.

use anyhow::{Context as _, bail};
use fake_azure::{AppRoleAssignment, DirectoryRoleAssignment, FakeAzure, ServicePrincipal, Tenant, User};

use crate::diff::{GrantRow, ResourceKey};

const MEMBERSHIPS: usize = 97;

/// What was changed, for the report and the checks.
pub struct TenantChanges {
    /// One line per kind of change.
    pub description: Vec<String>,
    /// The grants the next snapshot must have and the previous one lacked.
    pub expected_grants: Vec<GrantRow>,
    /// Resources whose row may change: an application's profile carries its owners.
    pub expected_changed_resources: Vec<ResourceKey>,
}

/// Applies the changes through `FakeAzure::mutate`, so delta queries (and any change log the
/// fake keeps) see them as they would see changes made in the portal.
pub fn apply(fake: &FakeAzure) -> anyhow::Result<TenantChanges> {
    let mut changes = None;
    fake.mutate(|tenant| changes = Some(change(tenant)));
    changes.context("the fake did not run the change")?
}

fn change(tenant: &mut Tenant) -> anyhow::Result<TenantChanges> {
    if tenant.groups.len() < MEMBERSHIPS || tenant.users.len() < 2 {
        bail!("the tenant is too small for {MEMBERSHIPS} new memberships: it needs {MEMBERSHIPS} groups");
    }
    let mut expected_grants = Vec::new();
    let mut description = Vec::new();
    let grant = |entitlement_id: String, user: &User| GrantRow {
        entitlement_id,
        principal_type: "user".to_owned(),
        principal_id: user.id.clone(),
    };

    // Memberships: one new member in each of 97 groups spread over the tenant.
    let group_count = tenant.groups.len();
    for k in 0..MEMBERSHIPS {
        let group = &mut tenant.groups[k * group_count / MEMBERSHIPS];
        let start = k.wrapping_mul(7_919) + 1;
        let user = (0..tenant.users.len())
            .map(|offset| &tenant.users[(start + offset) % tenant.users.len()])
            .find(|user| !group.members.contains(&user.id))
            .with_context(|| format!("every user is already a member of group {}", group.id))?;
        group.members.push(user.id.clone());
        expected_grants.push(grant(format!("group:{}:members", group.id), user));
    }
    description.push(format!("{MEMBERSHIPS} users added as members of groups they were not in"));

    // A directory role, to a user who does not hold it.
    let role = tenant.role_definitions.first().context("the tenant has no directory role definitions")?.clone();
    let user = pick_user(&tenant.users, |user| {
        !tenant.role_assignments.iter().any(|a| a.role_definition_id == role.id && a.principal_id == user.id)
    })?;
    tenant.role_assignments.push(DirectoryRoleAssignment {
        id: format!("sync-bench-{}-{}-1", role.id, user.id),
        principal_id: user.id.clone(),
        role_definition_id: role.id.clone(),
        directory_scope_id: "/".to_owned(),
    });
    expected_grants.push(grant(format!("role:{}:assigned", role.id), &user));
    description.push(format!("directory role {} assigned to user {}", role.display_name, user.display_name));

    // An app role of an application, to a user who holds none of its roles.
    let mut applications = tenant.service_principals.iter_mut().filter(|sp| assignable_to_users(sp));
    let application = applications.next().context("the tenant has no application with app roles for users")?;
    let app_role = application
        .app_roles
        .iter()
        .find(|role| role.is_enabled && role.allowed_member_types.iter().any(|kind| kind == "User"))
        .context("an application with user roles has none enabled")?
        .clone();
    let user = pick_user(&tenant.users, |user| {
        !application.app_role_assigned_to.iter().any(|assignment| assignment.principal_id == user.id)
    })?;
    application.app_role_assigned_to.push(AppRoleAssignment {
        id: format!("sync-bench-{}-{}", application.id, user.id),
        app_role_id: app_role.id.clone(),
        principal_id: user.id.clone(),
        principal_type: "User".to_owned(),
        principal_display_name: user.display_name.clone(),
        resource_id: application.id.clone(),
    });
    expected_grants.push(grant(
        format!("enterprise_application:{}:assignment:{}", application.id, app_role.id.to_ascii_lowercase()),
        &user,
    ));
    description.push(format!(
        "app role {} of {} assigned to user {}",
        app_role.display_name, application.display_name, user.display_name
    ));

    // An owner of another application.
    let application = applications.next().context("the tenant has only one application with app roles")?;
    let user = pick_user(&tenant.users, |user| !application.owners.contains(&user.id))?;
    application.owners.push(user.id.clone());
    expected_grants.push(grant(format!("enterprise_application:{}:owners", application.id), &user));
    description.push(format!("user {} added as an owner of {}", user.display_name, application.display_name));
    let expected_changed_resources = vec![("enterprise_application".to_owned(), application.id.clone())];

    expected_grants.sort();
    Ok(TenantChanges { description, expected_grants, expected_changed_resources })
}

/// An application (not a managed identity or a Microsoft one) whose roles users can hold.
fn assignable_to_users(sp: &ServicePrincipal) -> bool {
    sp.service_principal_type == "Application"
        && sp
            .app_roles
            .iter()
            .any(|role| role.is_enabled && role.allowed_member_types.iter().any(|kind| kind == "User"))
}

/// The first user from the middle of the tenant on that `fits`.
fn pick_user(users: &[User], fits: impl Fn(&User) -> bool) -> anyhow::Result<User> {
    let middle = users.len() / 2;
    (0..users.len())
        .map(|offset| &users[(middle + offset) % users.len()])
        .find(|user| fits(user))
        .cloned()
        .context("no user fits the change")
}
