//! The `directoryAudit` events that one service principal's change produces, shaped like Entra's.
//!
//! Events are derived from the service principal as it was and as it is, not from the route that
//! changed it, so a Graph write and [`crate::FakeAzure::mutate`] log the same events.
//!
//! Like Entra, `modifiedProperties` values are JSON text inside the string (`"\"<id>\""`), and an
//! app role granted to a user or group names the resource service principal only in its
//! `ServicePrincipal.ObjectID` modified property: a reader that looks only at the targets misses it.

use std::collections::HashMap;

use serde_json::{Value, json};

use super::super::entities::GraphEntity;
use crate::directory::{Directory, DirectoryObject};
use crate::ids::random_guid;
use crate::model::{AppRoleAssignment, ServicePrincipal};

/// The profile properties whose change Entra logs as "Update service principal" (its links,
/// owners and app-role assignments, have their own activities).
const PROFILE_PROPERTIES: &[&str] = &[
    "accountEnabled",
    "alternativeNames",
    "appId",
    "appOwnerOrganizationId",
    "appRoles",
    "displayName",
    "servicePrincipalType",
    "tags",
];

/// One audit event before it gets its id, time and correlation id.
pub struct Activity {
    display_name: &'static str,
    category: &'static str,
    operation_type: &'static str,
    targets: Vec<Value>,
}

impl Activity {
    /// The `directoryAudit` resource (v1.0). Every write reaches the fake with the tenant's
    /// only app registration's token, so the initiator is always that app.
    pub fn into_event(self, activity_date_time: &str, correlation_id: &str, client_id: &str) -> Value {
        json!({
            "id": format!("Directory_{}", random_guid()),
            "category": self.category,
            "correlationId": correlation_id,
            "result": "success",
            "resultReason": "",
            "activityDisplayName": self.display_name,
            "activityDateTime": activity_date_time,
            "loggedByService": "Core Directory",
            "operationType": self.operation_type,
            "initiatedBy": {
                "app": { "appId": client_id, "displayName": null, "servicePrincipalId": null, "servicePrincipalName": null },
                "user": null,
            },
            "targetResources": self.targets,
            "additionalDetails": [],
        })
    }
}

/// The activities that take a service principal from `before` to `after` (`None` = it did not
/// exist). A created one also logs its initial owners and assignments; a deleted one logs only
/// its deletion, as Entra drops its links silently.
pub fn service_principal_changes(
    before: Option<&ServicePrincipal>,
    after: Option<&ServicePrincipal>,
    directory: &Directory,
) -> Vec<Activity> {
    let Some(after) = after else {
        return before
            .map(|deleted| lifecycle("Delete service principal", "Delete", deleted, Vec::new()))
            .into_iter()
            .collect();
    };
    let mut activities = Vec::new();
    match before {
        None => activities.push(lifecycle("Add service principal", "Add", after, Vec::new())),
        Some(before) => {
            let changed = profile_changes(before, after);
            if !changed.is_empty() {
                activities.push(lifecycle("Update service principal", "Update", after, changed));
            }
        }
    }
    let no_owners = Vec::new();
    let owners_before = before.map_or(&no_owners, |sp| &sp.owners);
    for owner in after.owners.iter().filter(|owner| !owners_before.contains(owner)) {
        activities.push(owner_activity(after, owner, Change::Added, directory));
    }
    let removed_owners = owners_before.iter().filter(|owner| !after.owners.contains(owner));
    for owner in removed_owners {
        activities.push(owner_activity(after, owner, Change::Removed, directory));
    }
    let no_assignments = Vec::new();
    let assignments_before = before.map_or(&no_assignments, |sp| &sp.app_role_assigned_to);
    if *assignments_before != after.app_role_assigned_to {
        let (added, removed) = assignment_changes(assignments_before, &after.app_role_assigned_to);
        for assignment in added {
            activities.push(assignment_activity(assignment, after, Change::Added, directory));
        }
        // A removed assignment is described with the resource as it was, whose app roles it names.
        let resource_before = before.unwrap_or(after);
        for assignment in removed {
            activities.push(assignment_activity(assignment, resource_before, Change::Removed, directory));
        }
    }
    activities
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Change {
    Added,
    Removed,
}

impl Change {
    /// A modified property whose value appeared (`Added`) or went away (`Removed`).
    fn property(self, name: &str, value: Value) -> Value {
        match self {
            Change::Added => modified_property(name, Value::Null, value),
            Change::Removed => modified_property(name, value, Value::Null),
        }
    }
}

fn lifecycle(
    display_name: &'static str,
    operation_type: &'static str,
    sp: &ServicePrincipal,
    modified: Vec<Value>,
) -> Activity {
    Activity {
        display_name,
        category: "ApplicationManagement",
        operation_type,
        targets: vec![service_principal_target(sp, modified)],
    }
}

/// `AccountEnabled: [true] -> [false]` for each profile property that differs, then the list of
/// them, as Entra's "Update service principal" carries.
fn profile_changes(before: &ServicePrincipal, after: &ServicePrincipal) -> Vec<Value> {
    let mut names = Vec::new();
    let mut modified = Vec::new();
    for property in PROFILE_PROPERTIES {
        let (old, new) = (before.property(property), after.property(property));
        if old != new {
            let name = pascal_case(property);
            modified.push(modified_property(&name, json!([old]).to_string().into(), json!([new]).to_string().into()));
            names.push(name);
        }
    }
    if !names.is_empty() {
        modified.push(modified_property("Included Updated Properties", Value::Null, quoted(&names.join(", "))));
    }
    modified
}

/// Owners are listed with the service principal first, then the owner, which names the
/// service principal again in its modified properties as Entra's owner events do.
fn owner_activity(sp: &ServicePrincipal, owner_id: &str, change: Change, directory: &Directory) -> Activity {
    let modified = vec![
        change.property("ServicePrincipal.ObjectID", quoted(&sp.id)),
        change.property("ServicePrincipal.AppId", quoted(&sp.app_id)),
        change.property("ServicePrincipal.DisplayName", quoted(&sp.display_name)),
    ];
    Activity {
        display_name: match change {
            Change::Added => "Add owner to service principal",
            Change::Removed => "Remove owner from service principal",
        },
        category: "ApplicationManagement",
        operation_type: operation_type(change),
        targets: vec![service_principal_target(sp, Vec::new()), object_target(directory, owner_id, modified)],
    }
}

/// Assignments added and removed, matched by id; one whose content changed counts as both.
fn assignment_changes<'a>(
    before: &'a [AppRoleAssignment],
    after: &'a [AppRoleAssignment],
) -> (Vec<&'a AppRoleAssignment>, Vec<&'a AppRoleAssignment>) {
    let by_id = |assignments: &'a [AppRoleAssignment]| -> HashMap<&'a str, &'a AppRoleAssignment> {
        assignments.iter().map(|assignment| (assignment.id.as_str(), assignment)).collect()
    };
    let (before_by_id, after_by_id) = (by_id(before), by_id(after));
    let missing_from = |others: &HashMap<&str, &AppRoleAssignment>, assignment: &&AppRoleAssignment| {
        others.get(assignment.id.as_str()).is_none_or(|other| *other != *assignment)
    };
    let added = after.iter().filter(|assignment| missing_from(&before_by_id, assignment)).collect();
    let removed = before.iter().filter(|assignment| missing_from(&after_by_id, assignment)).collect();
    (added, removed)
}

/// The principal is the target; the resource appears only as `ServicePrincipal.*` properties.
fn assignment_activity(
    assignment: &AppRoleAssignment,
    resource: &ServicePrincipal,
    change: Change,
    directory: &Directory,
) -> Activity {
    let added = change == Change::Added;
    let role = resource.app_roles.iter().find(|role| role.id.eq_ignore_ascii_case(&assignment.app_role_id));
    let mut modified = vec![
        change.property("AppRole.Id", quoted(&assignment.app_role_id)),
        change.property("AppRole.Value", role.map_or(Value::Null, |role| quoted(&role.value))),
        change.property("AppRole.DisplayName", role.map_or(Value::Null, |role| quoted(&role.display_name))),
    ];
    let principal = quoted(&assignment.principal_id);
    let (display_name, category) = match assignment.principal_type.as_str() {
        "User" => {
            let upn = directory.user(&assignment.principal_id).map(|user| user.user_principal_name.as_str());
            modified.push(change.property("User.ObjectID", principal));
            modified.push(change.property("User.UPN", upn.map_or(Value::Null, quoted)));
            let name =
                if added { "Add app role assignment grant to user" } else { "Remove app role assignment from user" };
            (name, "UserManagement")
        }
        "Group" => {
            modified.push(change.property("Group.ObjectID", principal));
            modified.push(change.property("Group.DisplayName", quoted(&assignment.principal_display_name)));
            let name = if added { "Add app role assignment to group" } else { "Remove app role assignment from group" };
            (name, "GroupManagement")
        }
        _ => {
            let name = if added {
                "Add app role assignment to service principal"
            } else {
                "Remove app role assignment from service principal"
            };
            (name, "ApplicationManagement")
        }
    };
    modified.push(change.property("ServicePrincipal.ObjectID", quoted(&resource.id)));
    modified.push(change.property("ServicePrincipal.AppId", quoted(&resource.app_id)));
    modified.push(change.property("ServicePrincipal.DisplayName", quoted(&resource.display_name)));
    let mut target = object_target(directory, &assignment.principal_id, modified);
    // The principal may be gone (a deleted user's assignments go with it): the assignment still knows it.
    target["displayName"] = Value::from(assignment.principal_display_name.as_str());
    target["type"] = Value::from(assignment.principal_type.as_str());
    Activity { display_name, category, operation_type: operation_type(change), targets: vec![target] }
}

fn operation_type(change: Change) -> &'static str {
    match change {
        Change::Added => "Assign",
        Change::Removed => "Unassign",
    }
}

fn service_principal_target(sp: &ServicePrincipal, modified: Vec<Value>) -> Value {
    target(&sp.id, Value::from(sp.display_name.as_str()), "ServicePrincipal", Value::Null, Value::Null, modified)
}

/// A target for any directory object; one that no longer exists keeps its id, type "Other".
fn object_target(directory: &Directory, id: &str, modified: Vec<Value>) -> Value {
    let Some(object) = directory.object(id) else {
        return target(id, Value::Null, "Other", Value::Null, Value::Null, modified);
    };
    let display_name = Value::from(object.display_name());
    match object {
        DirectoryObject::User(user) => {
            let upn = Value::from(user.user_principal_name.as_str());
            target(&user.id, display_name, "User", upn, Value::Null, modified)
        }
        DirectoryObject::Group(group) => {
            let group_type =
                if group.group_types.iter().any(|kind| kind == "Unified") { "unifiedGroups" } else { "azureAD" };
            target(&group.id, display_name, "Group", Value::Null, Value::from(group_type), modified)
        }
        DirectoryObject::ServicePrincipal(sp) => {
            target(&sp.id, display_name, "ServicePrincipal", Value::Null, Value::Null, modified)
        }
        DirectoryObject::Stub(stub) => target(&stub.id, display_name, "Other", Value::Null, Value::Null, modified),
    }
}

fn target(
    id: &str,
    display_name: Value,
    kind: &str,
    user_principal_name: Value,
    group_type: Value,
    modified: Vec<Value>,
) -> Value {
    json!({
        "id": id,
        "displayName": display_name,
        "type": kind,
        "userPrincipalName": user_principal_name,
        "groupType": group_type,
        "modifiedProperties": modified,
    })
}

fn modified_property(name: &str, old_value: Value, new_value: Value) -> Value {
    json!({ "displayName": name, "oldValue": old_value, "newValue": new_value })
}

/// A string value as Entra writes it inside `oldValue`/`newValue`: JSON text, quotes included.
fn quoted(text: &str) -> Value {
    Value::String(Value::from(text).to_string())
}

fn pascal_case(name: &str) -> String {
    let mut chars = name.chars();
    chars.next().map(|first| first.to_ascii_uppercase().to_string() + chars.as_str()).unwrap_or_default()
}
