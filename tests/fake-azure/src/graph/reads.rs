//! Directory reads: users, groups and their members/owners, service principals, organization.

use axum::http::StatusCode;
use serde_json::{Value, json};

use super::collection::{CollectionSpec, LazyItems, entity, list, list_lazily, selection};
use super::entities::{
    APP_ROLE_ASSIGNMENT_TYPE, AppRoleAssignmentView, EntityType, GROUP_TYPE, GraphEntity, SERVICE_PRINCIPAL_TYPE,
    USER_TYPE, to_json,
};
use super::error::GraphError;
use super::{GraphCall, GraphReply};
use crate::directory::Directory;
use crate::server::lock;

const USER_FILTERS: &[&str] = &[
    "id",
    "displayName",
    "userPrincipalName",
    "mail",
    "userType",
    "accountEnabled",
    "onPremisesSyncEnabled",
    "department",
    "jobTitle",
    "employeeId",
];
const GROUP_FILTERS: &[&str] =
    &["id", "displayName", "mail", "mailEnabled", "securityEnabled", "onPremisesSyncEnabled", "isAssignableToRole"];
const SERVICE_PRINCIPAL_FILTERS: &[&str] =
    &["id", "appId", "displayName", "servicePrincipalType", "accountEnabled", "appOwnerOrganizationId"];

fn user_spec() -> CollectionSpec {
    CollectionSpec::new("users", &USER_TYPE).filterable(USER_FILTERS)
}

fn group_spec() -> CollectionSpec {
    CollectionSpec::new("groups", &GROUP_TYPE).filterable(GROUP_FILTERS)
}

fn service_principal_spec() -> CollectionSpec {
    CollectionSpec::new("servicePrincipals", &SERVICE_PRINCIPAL_TYPE).filterable(SERVICE_PRINCIPAL_FILTERS)
}

pub fn users(call: &GraphCall, count_only: bool) -> Result<GraphReply, GraphError> {
    let directory = lock(&call.shared.directory);
    list_lazily(call, &user_spec(), LazyItems::of(&directory.tenant.users, |user| user), count_only)
}

pub fn user(call: &GraphCall, id: &str) -> Result<GraphReply, GraphError> {
    let directory = lock(&call.shared.directory);
    let user = directory.user(id).ok_or_else(|| GraphError::not_found(id))?;
    entity(call, &user_spec(), user)
}

/// `mailboxSettings` (or its `userPurpose` property); users without a mailbox answer 404 like Exchange does.
pub fn mailbox_settings(call: &GraphCall, id: &str, purpose_only: bool) -> Result<GraphReply, GraphError> {
    let directory = lock(&call.shared.directory);
    let user = directory.user(id).ok_or_else(|| GraphError::not_found(id))?;
    let Some(purpose) = &user.mailbox_purpose else {
        return Err(GraphError::new(
            StatusCode::NOT_FOUND,
            "MailboxNotEnabledForRESTAPI",
            "The mailbox is either inactive, soft-deleted, or is hosted on-premise.",
        ));
    };
    let context = format!("{}#users('{}')/mailboxSettings", call.metadata_url(), user.id);
    if purpose_only {
        return Ok(GraphReply::ok(json!({ "@odata.context": format!("{context}/userPurpose"), "value": purpose })));
    }
    let settings = json!({
        "archiveFolder": "AAMkAGI2TGuLAAA=",
        "timeZone": "UTC",
        "language": { "locale": "en-US", "displayName": "English (United States)" },
        "workingHours": {
            "daysOfWeek": ["monday", "tuesday", "wednesday", "thursday", "friday"],
            "startTime": "08:00:00.0000000",
            "endTime": "17:00:00.0000000",
            "timeZone": { "name": "UTC" }
        },
        "dateFormat": "MM/dd/yyyy",
        "timeFormat": "hh:mm tt",
        "delegateMeetingMessageDeliveryOptions": "sendToDelegateOnly",
        "userPurpose": purpose,
    });
    let selected: Option<Vec<String>> =
        call.request.query.get("$select").map(|raw| raw.split(',').map(|name| name.trim().to_owned()).collect());
    let mut body = serde_json::Map::new();
    match &selected {
        Some(names) => {
            body.insert("@odata.context".into(), Value::from(format!("{context}({})", names.join(","))));
            for name in names {
                if let Some(value) = settings.get(name.as_str()) {
                    body.insert(name.clone(), value.clone());
                }
            }
        }
        None => {
            body.insert("@odata.context".into(), Value::from(context));
            if let Value::Object(all) = settings {
                body.extend(all);
            }
        }
    }
    Ok(GraphReply::ok(Value::Object(body)))
}

pub fn groups(call: &GraphCall, count_only: bool) -> Result<GraphReply, GraphError> {
    let directory = lock(&call.shared.directory);
    let items = LazyItems::of(&directory.tenant.groups, |group| WithLinks { entity: group, directory: &directory });
    list_lazily(call, &group_spec().expandable(&["owners", "members"]), items, count_only)
}

/// Directory objects that link to others (`owners`, `members`), which `$expand` can inline.
trait Links {
    fn links(&self, name: &str) -> Option<&[String]>;
}

impl Links for crate::model::Group {
    fn links(&self, name: &str) -> Option<&[String]> {
        match name {
            "owners" => Some(&self.owners),
            "members" => Some(&self.members),
            _ => None,
        }
    }
}

impl Links for crate::model::ServicePrincipal {
    fn links(&self, name: &str) -> Option<&[String]> {
        (name == "owners").then_some(self.owners.as_slice())
    }
}

/// An entity whose links can be expanded, resolved only for the items of the page served.
struct WithLinks<'a, E> {
    entity: &'a E,
    directory: &'a Directory,
}

impl<E: GraphEntity + Links> GraphEntity for WithLinks<'_, E> {
    fn entity_type(&self) -> &'static EntityType {
        self.entity.entity_type()
    }
    fn property(&self, name: &str) -> Option<Value> {
        let Some(links) = self.entity.links(name) else { return self.entity.property(name) };
        let objects =
            resolve(self.directory, links).into_iter().map(|object| Value::Object(to_json(object, None, true)));
        Some(Value::Array(objects.collect()))
    }
}

pub fn group(call: &GraphCall, id: &str) -> Result<GraphReply, GraphError> {
    let directory = lock(&call.shared.directory);
    let index = directory.group_index(id).ok_or_else(|| GraphError::not_found(id))?;
    let group = &directory.tenant.groups[index];
    let spec = group_spec().expandable(&["owners", "members"]);
    entity(call, &spec, &WithLinks { entity: group, directory: &directory })
}

#[derive(Clone, Copy)]
pub enum Link {
    Members,
    Owners,
}

pub fn group_links(call: &GraphCall, id: &str, link: Link, count_only: bool) -> Result<GraphReply, GraphError> {
    let directory = lock(&call.shared.directory);
    let index = directory.group_index(id).ok_or_else(|| GraphError::not_found(id))?;
    let group = &directory.tenant.groups[index];
    let ids = match link {
        Link::Members => &group.members,
        Link::Owners => &group.owners,
    };
    list(call, &CollectionSpec::directory_objects(), resolve(&directory, ids), count_only)
}

/// Member and owner ids as entities; ids of objects that no longer exist are skipped, as Graph does.
fn resolve<'a>(directory: &'a Directory, ids: &[String]) -> Vec<&'a dyn GraphEntity> {
    ids.iter().filter_map(|id| directory.object(id)).map(|object| object.entity()).collect()
}

pub fn directory_object(call: &GraphCall, id: &str) -> Result<GraphReply, GraphError> {
    let directory = lock(&call.shared.directory);
    let object = directory.object(id).ok_or_else(|| GraphError::not_found(id))?;
    entity(call, &CollectionSpec::directory_objects(), object.entity())
}

pub fn service_principals(call: &GraphCall, count_only: bool) -> Result<GraphReply, GraphError> {
    let directory = lock(&call.shared.directory);
    let items =
        LazyItems::of(&directory.tenant.service_principals, |sp| WithLinks { entity: sp, directory: &directory });
    list_lazily(call, &service_principal_spec().expandable(&["owners"]), items, count_only)
}

pub fn service_principal(call: &GraphCall, id: &str) -> Result<GraphReply, GraphError> {
    let directory = lock(&call.shared.directory);
    let index = directory.service_principal_index(id).ok_or_else(|| GraphError::not_found(id))?;
    let sp = &directory.tenant.service_principals[index];
    entity(call, &service_principal_spec().expandable(&["owners"]), &WithLinks { entity: sp, directory: &directory })
}

pub fn service_principal_owners(call: &GraphCall, id: &str) -> Result<GraphReply, GraphError> {
    let directory = lock(&call.shared.directory);
    let index = directory.service_principal_index(id).ok_or_else(|| GraphError::not_found(id))?;
    let owners = &directory.tenant.service_principals[index].owners;
    list(call, &CollectionSpec::directory_objects(), resolve(&directory, owners), false)
}

pub fn app_role_assigned_to(call: &GraphCall, id: &str) -> Result<GraphReply, GraphError> {
    let directory = lock(&call.shared.directory);
    let index = directory.service_principal_index(id).ok_or_else(|| GraphError::not_found(id))?;
    let sp = &directory.tenant.service_principals[index];
    let views: Vec<AppRoleAssignmentView> = sp
        .app_role_assigned_to
        .iter()
        .map(|assignment| AppRoleAssignmentView { assignment, resource_display_name: &sp.display_name })
        .collect();
    let items = views.iter().map(|view| view as &dyn GraphEntity).collect();
    let spec =
        CollectionSpec::new(format!("servicePrincipals('{}')/appRoleAssignedTo", sp.id), &APP_ROLE_ASSIGNMENT_TYPE)
            .filterable(&["principalId", "appRoleId", "principalType"]);
    list(call, &spec, items, false)
}

pub fn organization(call: &GraphCall) -> Result<GraphReply, GraphError> {
    let directory = lock(&call.shared.directory);
    let tenant = &directory.tenant;
    let organization = json!({
        "id": tenant.tenant_id,
        "deletedDateTime": null,
        "displayName": tenant.display_name,
        "tenantType": "AAD",
        "countryLetterCode": "US",
        "businessPhones": [],
        "city": null,
        "country": null,
        "assignedPlans": [],
        "verifiedDomains": [{
            "capabilities": "Email, OfficeCommunicationsOnline",
            "isDefault": true,
            "isInitial": true,
            "name": tenant.default_domain,
            "type": "Managed"
        }],
    });
    let select = selection(call, &CollectionSpec::directory_objects())?;
    let organization = match &select {
        Some(names) => Value::Object(
            names
                .iter()
                .filter_map(|name| organization.get(name.as_str()).map(|value| (name.clone(), value.clone())))
                .collect(),
        ),
        None => organization,
    };
    let context = super::collection::context_url(call, "organization", select.as_deref(), None);
    Ok(GraphReply::ok(json!({ "@odata.context": context, "value": [organization] })))
}
