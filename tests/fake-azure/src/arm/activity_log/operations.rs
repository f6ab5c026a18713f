//! The ARM operations that take the tenant's RBAC state from one snapshot to the next.
//!
//! Operations are derived from the state before and after, not from the route that changed it,
//! so an ARM write and [`crate::FakeAzure::mutate`] log the same operations. Comparing must stay
//! cheap on the largest tenant (50,000 role assignments, 2,000 resource groups): each item is
//! looked up by its key in the snapshot without allocating, and only changed items are cloned.

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};

use crate::model::{ArmRoleAssignment, ArmRoleDefinition, ResourceGroup, Tenant};

const AUTHORIZATION: &str = "Microsoft.Authorization";
const RESOURCES: &str = "Microsoft.Resources";

/// What one ARM operation did, as the two events that log it describe it.
#[derive(Clone, Debug)]
pub struct Operation {
    pub kind: OperationKind,
    pub outcome: Outcome,
    pub resource_id: String,
    /// As spelled in the tenant; `None` above every subscription (management groups, root).
    pub subscription_id: Option<String>,
    pub resource_group: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OperationKind {
    RoleAssignmentWrite,
    RoleAssignmentDelete,
    RoleDefinitionWrite,
    RoleDefinitionDelete,
    ResourceGroupWrite,
    ResourceGroupDelete,
}

impl OperationKind {
    /// `operationName.value` and `authorization.action`.
    pub fn action(self) -> &'static str {
        match self {
            OperationKind::RoleAssignmentWrite => "Microsoft.Authorization/roleAssignments/write",
            OperationKind::RoleAssignmentDelete => "Microsoft.Authorization/roleAssignments/delete",
            OperationKind::RoleDefinitionWrite => "Microsoft.Authorization/roleDefinitions/write",
            OperationKind::RoleDefinitionDelete => "Microsoft.Authorization/roleDefinitions/delete",
            OperationKind::ResourceGroupWrite => "Microsoft.Resources/subscriptions/resourceGroups/write",
            OperationKind::ResourceGroupDelete => "Microsoft.Resources/subscriptions/resourceGroups/delete",
        }
    }

    /// `operationName.localizedValue`, as the portal shows it.
    pub fn display_name(self) -> &'static str {
        match self {
            OperationKind::RoleAssignmentWrite => "Create role assignment",
            OperationKind::RoleAssignmentDelete => "Delete role assignment",
            OperationKind::RoleDefinitionWrite => "Create or update custom role definition",
            OperationKind::RoleDefinitionDelete => "Delete custom role definition",
            OperationKind::ResourceGroupWrite => "Update resource group",
            OperationKind::ResourceGroupDelete => "Delete resource group",
        }
    }

    pub fn resource_type(self) -> &'static str {
        match self {
            OperationKind::RoleAssignmentWrite | OperationKind::RoleAssignmentDelete => {
                "Microsoft.Authorization/roleAssignments"
            }
            OperationKind::RoleDefinitionWrite | OperationKind::RoleDefinitionDelete => {
                "Microsoft.Authorization/roleDefinitions"
            }
            OperationKind::ResourceGroupWrite | OperationKind::ResourceGroupDelete => {
                "Microsoft.Resources/subscriptions/resourceGroups"
            }
        }
    }

    pub fn provider(self) -> &'static str {
        match self {
            OperationKind::ResourceGroupWrite | OperationKind::ResourceGroupDelete => RESOURCES,
            _ => AUTHORIZATION,
        }
    }

    pub fn http_method(self) -> &'static str {
        match self {
            OperationKind::RoleAssignmentWrite
            | OperationKind::RoleDefinitionWrite
            | OperationKind::ResourceGroupWrite => "PUT",
            _ => "DELETE",
        }
    }
}

/// How the request ended, which sets the `EndRequest` event's `subStatus`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// 201: the resource is new.
    Created,
    /// 200: an update, or a synchronous delete.
    Ok,
    /// A long-running operation (deleting a resource group) ends without a status code.
    Finished,
}

/// The ARM state the log last saw, keyed for lookups that do not allocate.
pub struct ArmSnapshot {
    /// By `name`: ARM role assignment names are GUIDs unique in the tenant (the PUT route enforces it).
    assignments: HashMap<String, ArmRoleAssignment>,
    /// Custom roles only, by id: built-in roles never change in a tenant.
    custom_roles: HashMap<String, ArmRoleDefinition>,
    /// By lowercase `subscription/name`: only 2,000 at most, so the key may allocate.
    resource_groups: HashMap<String, ResourceGroup>,
}

impl ArmSnapshot {
    pub fn of(tenant: &Tenant) -> Self {
        ArmSnapshot {
            assignments: tenant.arm_role_assignments.iter().map(|a| (a.name.clone(), a.clone())).collect(),
            custom_roles: tenant
                .arm_role_definitions
                .iter()
                .filter(|role| is_custom(role))
                .map(|role| (role.id.clone(), role.clone()))
                .collect(),
            resource_groups: tenant
                .resource_groups
                .iter()
                .map(|group| (group_key(group).into_owned(), group.clone()))
                .collect(),
        }
    }

    /// The operations that take this snapshot to `tenant`; the snapshot becomes `tenant`'s.
    pub fn advance(&mut self, tenant: &Tenant) -> Vec<Operation> {
        let mut operations = Vec::new();
        let assignments = changes(&mut self.assignments, &tenant.arm_role_assignments, |_| true, assignment_key);
        operations.extend(assignments.into_iter().flat_map(assignment_operations));
        let roles = changes(&mut self.custom_roles, &tenant.arm_role_definitions, is_custom, role_key);
        operations.extend(roles.into_iter().flat_map(role_definition_operations));
        let groups = changes(&mut self.resource_groups, &tenant.resource_groups, |_| true, group_key);
        operations.extend(groups.into_iter().flat_map(resource_group_operations));
        operations
    }
}

fn is_custom(role: &ArmRoleDefinition) -> bool {
    role.role_type.eq_ignore_ascii_case("CustomRole")
}

fn assignment_key(assignment: &ArmRoleAssignment) -> Cow<'_, str> {
    Cow::Borrowed(&assignment.name)
}

fn role_key(role: &ArmRoleDefinition) -> Cow<'_, str> {
    Cow::Borrowed(&role.id)
}

fn group_key(group: &ResourceGroup) -> Cow<'_, str> {
    Cow::Owned(format!("{}/{}", group.subscription_id, group.name).to_ascii_lowercase())
}

/// One item's change between two snapshots.
enum Change<T> {
    Created(T),
    Updated { before: T, after: T },
    Deleted(T),
}

/// The changes of the items of `current` that pass `tracked`, compared by `key` with `seen`,
/// which is brought up to date. An unchanged state costs one lookup and one comparison per item;
/// the deleted ones are searched for only when the counts say some are missing.
fn changes<T: Clone + PartialEq>(
    seen: &mut HashMap<String, T>,
    current: &[T],
    tracked: impl Fn(&T) -> bool,
    key: impl Fn(&T) -> Cow<'_, str>,
) -> Vec<Change<T>> {
    let mut found = Vec::new();
    let mut still_present = 0;
    for item in current.iter().filter(|item| tracked(item)) {
        match seen.get(key(item).as_ref()) {
            Some(before) if before == item => still_present += 1,
            Some(before) => {
                still_present += 1;
                found.push(Change::Updated { before: before.clone(), after: item.clone() });
            }
            None => found.push(Change::Created(item.clone())),
        }
    }
    if still_present != seen.len() {
        let current_keys: HashSet<Cow<str>> = current.iter().filter(|item| tracked(item)).map(&key).collect();
        found.extend(
            seen.iter()
                .filter(|(id, _)| !current_keys.contains(id.as_str()))
                .map(|(_, item)| Change::Deleted(item.clone())),
        );
    }
    for change in &found {
        match change {
            Change::Created(after) | Change::Updated { after, .. } => {
                seen.insert(key(after).into_owned(), after.clone());
            }
            Change::Deleted(before) => {
                seen.remove(key(before).as_ref());
            }
        }
    }
    found
}

/// A role assignment is logged at its own scope. One whose scope changed (only a mutate can do
/// that; ARM refuses to move an assignment) is deleted where it was and created where it is.
fn assignment_operations(change: Change<ArmRoleAssignment>) -> Vec<Operation> {
    let operation = |kind, outcome, assignment: &ArmRoleAssignment| {
        let resource_id = format!(
            "{}/providers/Microsoft.Authorization/roleAssignments/{}",
            assignment.scope.trim_end_matches('/'),
            assignment.name
        );
        at_scope(kind, outcome, resource_id, &assignment.scope)
    };
    match change {
        Change::Created(after) => vec![operation(OperationKind::RoleAssignmentWrite, Outcome::Created, &after)],
        Change::Deleted(before) => vec![operation(OperationKind::RoleAssignmentDelete, Outcome::Ok, &before)],
        Change::Updated { before, after } if before.scope.eq_ignore_ascii_case(&after.scope) => {
            vec![operation(OperationKind::RoleAssignmentWrite, Outcome::Ok, &after)]
        }
        Change::Updated { before, after } => vec![
            operation(OperationKind::RoleAssignmentDelete, Outcome::Ok, &before),
            operation(OperationKind::RoleAssignmentWrite, Outcome::Created, &after),
        ],
    }
}

/// A role definition is logged once in each subscription its assignable scopes reach (before
/// or after the change, so a subscription that loses it hears of it), and once at each scope
/// above the subscriptions, which belongs to no subscription's log.
fn role_definition_operations(change: Change<ArmRoleDefinition>) -> Vec<Operation> {
    let (kind, outcome, scopes, id) = match &change {
        Change::Created(after) => {
            (OperationKind::RoleDefinitionWrite, Outcome::Created, after.assignable_scopes.clone(), &after.id)
        }
        Change::Updated { before, after } => {
            let scopes = before.assignable_scopes.iter().chain(&after.assignable_scopes).cloned().collect();
            (OperationKind::RoleDefinitionWrite, Outcome::Ok, scopes, &after.id)
        }
        Change::Deleted(before) => {
            (OperationKind::RoleDefinitionDelete, Outcome::Ok, before.assignable_scopes.clone(), &before.id)
        }
    };
    let mut logged_at = HashSet::new();
    let mut operations = Vec::new();
    for scope in &scopes {
        let location = ScopeLocation::of(scope);
        let logged_scope = match &location.subscription_id {
            Some(subscription_id) => format!("/subscriptions/{subscription_id}"),
            None => scope.trim_end_matches('/').to_owned(),
        };
        if !logged_at.insert(logged_scope.to_ascii_lowercase()) {
            continue;
        }
        let resource_id = format!("{logged_scope}/providers/Microsoft.Authorization/roleDefinitions/{id}");
        operations.push(Operation {
            kind,
            outcome,
            resource_id,
            subscription_id: location.subscription_id,
            resource_group: None,
        });
    }
    operations
}

fn resource_group_operations(change: Change<ResourceGroup>) -> Vec<Operation> {
    let operation = |kind, outcome, group: &ResourceGroup| Operation {
        kind,
        outcome,
        resource_id: format!("/subscriptions/{}/resourceGroups/{}", group.subscription_id, group.name),
        subscription_id: Some(group.subscription_id.clone()),
        resource_group: Some(group.name.clone()),
    };
    match change {
        Change::Created(after) => vec![operation(OperationKind::ResourceGroupWrite, Outcome::Created, &after)],
        Change::Updated { after, .. } => vec![operation(OperationKind::ResourceGroupWrite, Outcome::Ok, &after)],
        Change::Deleted(before) => vec![operation(OperationKind::ResourceGroupDelete, Outcome::Finished, &before)],
    }
}

fn at_scope(kind: OperationKind, outcome: Outcome, resource_id: String, scope: &str) -> Operation {
    let ScopeLocation { subscription_id, resource_group } = ScopeLocation::of(scope);
    Operation { kind, outcome, resource_id, subscription_id, resource_group }
}

/// The subscription and resource group a scope lies in, at any depth (a scope below a resource
/// group, such as a virtual machine, still belongs to both).
struct ScopeLocation {
    subscription_id: Option<String>,
    resource_group: Option<String>,
}

impl ScopeLocation {
    fn of(scope: &str) -> Self {
        let segments: Vec<&str> = scope.split('/').filter(|segment| !segment.is_empty()).collect();
        match segments.as_slice() {
            [subscriptions, subscription_id, rest @ ..] if subscriptions.eq_ignore_ascii_case("subscriptions") => {
                let resource_group = match rest {
                    [groups, name, ..] if groups.eq_ignore_ascii_case("resourceGroups") => Some((*name).to_owned()),
                    _ => None,
                };
                ScopeLocation { subscription_id: Some((*subscription_id).to_owned()), resource_group }
            }
            _ => ScopeLocation { subscription_id: None, resource_group: None },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn actions(operations: &[Operation]) -> Vec<(&'static str, &str)> {
        operations.iter().map(|operation| (operation.kind.action(), operation.resource_id.as_str())).collect()
    }

    #[test]
    fn an_unchanged_tenant_has_no_operations() {
        let tenant = Tenant::sample();
        let mut snapshot = ArmSnapshot::of(&tenant);
        assert!(snapshot.advance(&tenant).is_empty());
    }

    #[test]
    fn a_moved_assignment_is_deleted_at_its_old_scope_and_created_at_its_new_one() {
        let mut tenant = Tenant::sample();
        let mut snapshot = ArmSnapshot::of(&tenant);
        let assignment = &mut tenant.arm_role_assignments[0];
        let old_scope = assignment.scope.clone();
        assignment.scope = format!("{old_scope}/resourceGroups/rg-shared");
        let name = assignment.name.clone();
        let operations = snapshot.advance(&tenant);
        assert_eq!(
            actions(&operations),
            vec![
                (
                    "Microsoft.Authorization/roleAssignments/delete",
                    format!("{old_scope}/providers/Microsoft.Authorization/roleAssignments/{name}").as_str()
                ),
                (
                    "Microsoft.Authorization/roleAssignments/write",
                    format!(
                        "{old_scope}/resourceGroups/rg-shared/providers/Microsoft.Authorization/roleAssignments/{name}"
                    )
                    .as_str()
                ),
            ]
        );
        assert_eq!(operations[1].resource_group.as_deref(), Some("rg-shared"));
        assert!(snapshot.advance(&tenant).is_empty(), "the snapshot took the change");
    }

    #[test]
    fn a_custom_role_is_logged_in_each_subscription_it_is_or_was_assignable_in() {
        let mut tenant = Tenant::sample();
        let mut snapshot = ArmSnapshot::of(&tenant);
        let subscriptions: Vec<String> = tenant.subscriptions.iter().map(|s| s.subscription_id.clone()).collect();
        let role = tenant.arm_role_definitions.iter_mut().find(|role| is_custom(role)).expect("a custom role");
        role.assignable_scopes = vec![
            format!("/subscriptions/{}/resourceGroups/rg-shared", subscriptions[1]),
            "/providers/Microsoft.Management/managementGroups/contoso-root".into(),
        ];
        let operations = snapshot.advance(&tenant);
        let logged_in: Vec<Option<&str>> =
            operations.iter().map(|operation| operation.subscription_id.as_deref()).collect();
        assert_eq!(logged_in, vec![Some(subscriptions[0].as_str()), Some(subscriptions[1].as_str()), None]);
        assert!(operations.iter().all(|operation| operation.kind == OperationKind::RoleDefinitionWrite));
        assert!(
            operations[2].resource_id.starts_with("/providers/Microsoft.Management/managementGroups/contoso-root/")
        );
    }

    #[test]
    fn built_in_roles_are_not_tracked() {
        let mut tenant = Tenant::sample();
        let mut snapshot = ArmSnapshot::of(&tenant);
        tenant.arm_role_definitions.retain(is_custom);
        assert!(snapshot.advance(&tenant).is_empty());
    }
}
