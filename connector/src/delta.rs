//! Incremental sync (`idgov:connector/incremental`): Graph delta queries for users, groups
//! (with `members@delta` and `owners@delta`) and service principals.
//!
//! The delta token handed to the host is Graph's `@odata.deltaLink`, followed verbatim on the
//! next sync (only under the configured Graph base URL, like every nextLink). Starting without
//! a token asks Graph for `$deltaToken=latest`: no objects, just a link for "now", so a full
//! sync pays one request per tracked type to make the next sync incremental.
//!
//! Graph reports an object whose properties changed with its selected properties; a group
//! whose only change is its membership comes with `id` and `members@delta` alone, and must not
//! be upserted from that. Enterprise applications (`application_changes`) and Azure RBAC
//! (`arm_changes`) have rounds of their own: no delta query reports app-role assignments,
//! owners of applications or role assignments. Directory roles are not tracked: the host lists
//! them again.

use serde::Deserialize;
use serde_json::{Map, Value};

use crate::config::Config;
use crate::contract::{ConnectorError, Notice, Resource};
use crate::exports::idgov::connector::incremental::{ChangePage, GrantChanges, GrantRemoval, TrackedType};
use crate::graph::Graph;
use crate::groups::{self, GraphGroup, group_resource};
use crate::ids::{EntitlementId, ResourceType, Slug};
use crate::managed_identities::{self, ManagedIdentity, identity_resource};
use crate::paging::{PageToken, Phase, checked_next_link, is_under};
use crate::principals::{DirectoryObject, GrantSink, PrincipalResolver};
use crate::users::{self, GraphUser, MailboxPurposes, user_resource};

/// One page of a delta query.
#[derive(Deserialize)]
pub(crate) struct DeltaPage {
    pub value: Vec<Map<String, Value>>,
    #[serde(rename = "@odata.nextLink", default)]
    pub next_link: Option<String>,
    #[serde(rename = "@odata.deltaLink", default)]
    pub delta_link: Option<String>,
}

/// Users, groups and managed identities are tracked by delta queries, and the grants of
/// groups (members, owners) come with them. Enterprise applications are tracked by the
/// service-principal delta query and the directory audit log (`application_changes`),
/// subscriptions and resource groups by the Azure Activity Log (`arm_changes`): the host
/// re-lists the access of those reported changed. Directory roles are not tracked.
pub fn tracked_types() -> Vec<TrackedType> {
    [
        (ResourceType::User, GrantChanges::Reported),
        (ResourceType::Group, GrantChanges::Reported),
        (ResourceType::ManagedIdentity, GrantChanges::Reported),
        (ResourceType::EnterpriseApplication, GrantChanges::RelistedForUpserted),
        (ResourceType::Subscription, GrantChanges::RelistedForUpserted),
        (ResourceType::ResourceGroup, GrantChanges::RelistedForUpserted),
    ]
    .into_iter()
    .map(|(kind, grants)| TrackedType { resource_type: kind.as_str().to_owned(), grants })
    .collect()
}

pub fn list_changes(
    config: &Config,
    resource_type: &str,
    delta_token: Option<&str>,
    page_token: Option<&str>,
) -> Result<ChangePage, ConnectorError> {
    let kind = ResourceType::parse(resource_type)?;
    let (path, select, permission) = match kind {
        ResourceType::User => ("/users/delta", users::SELECT.to_owned(), "User.Read.All"),
        ResourceType::Group => ("/groups/delta", format!("{},members,owners", groups::SELECT), "GroupMember.Read.All"),
        ResourceType::ManagedIdentity => {
            ("/servicePrincipals/delta", managed_identities::SELECT.to_owned(), "Application.Read.All")
        }
        ResourceType::EnterpriseApplication => {
            return crate::application_changes::list_changes(config, delta_token, page_token);
        }
        ResourceType::Subscription | ResourceType::ResourceGroup => {
            return crate::arm_changes::list_changes(config, kind, delta_token, page_token);
        }
        other => {
            return Err(ConnectorError::Unsupported(format!(
                "{} has no delta query: list it with list-resources",
                other.as_str()
            )));
        }
    };
    let graph = Graph::new(config);
    let token = PageToken::decode(page_token, &[Phase::Resources], graph.base_url())?;
    let mut changes = Changes::default();
    let url = match (token.next_link, delta_token) {
        (Some(next_link), _) => next_link,
        (None, Some(delta_link)) if is_under(delta_link, graph.base_url()) => delta_link.to_owned(),
        (None, Some(_)) => {
            return Err(ConnectorError::InvalidConfig(format!(
                "delta-token points outside the configured base URL {}: pass the token of the previous sync, or none to start over",
                graph.base_url()
            )));
        }
        (None, None) => graph.url(path, &[("$select", &select), ("$deltaToken", "latest")]),
    };
    let response = graph.succeed(crate::http::ApiRequest::get(url), permission)?;
    let page: DeltaPage = response.json()?;
    let next_link = checked_next_link(page.next_link, graph.base_url(), &response.call)?;
    let delta_link = checked_next_link(page.delta_link, graph.base_url(), &response.call)?;

    let mut resolver = PrincipalResolver::new(&graph);
    let mut mailbox = MailboxPurposes::new(&graph, config);
    for object in page.value {
        let Some(id) = object.get("id").and_then(Value::as_str).map(str::to_owned) else {
            return Err(ConnectorError::InvalidResponse(format!("{} returned an object without id", response.call)));
        };
        if object.contains_key("@removed") {
            changes.removed.push(id);
            continue;
        }
        match kind {
            ResourceType::User => changes.upserted.push(user_resource(parse::<GraphUser>(object)?, &mut mailbox)?),
            ResourceType::Group => changes.group(config, &graph, &mut resolver, id, object)?,
            ResourceType::ManagedIdentity if is_service_principal_of_type(&object, "ManagedIdentity") => {
                changes.upserted.push(identity_resource(parse::<ManagedIdentity>(object)?))
            }
            _ => {}
        }
    }
    changes.notices.extend(mailbox.notices);
    changes.notices.append(&mut changes.sink.notices);
    Ok(ChangePage {
        upserted: changes.upserted,
        removed: changes.removed,
        grants_added: changes.sink.items,
        grants_removed: changes.grants_removed,
        notices: changes.notices,
        next_page_token: next_link
            .map(|link| PageToken { phase: Phase::Resources, next_link: Some(link), tenant_id: None }.encode()),
        delta_token: delta_link,
    })
}

fn is_service_principal_of_type(object: &Map<String, Value>, wanted: &str) -> bool {
    object.get("servicePrincipalType").and_then(Value::as_str) == Some(wanted)
}

fn parse<T: serde::de::DeserializeOwned>(object: Map<String, Value>) -> Result<T, ConnectorError> {
    serde_json::from_value(Value::Object(object)).map_err(|error| {
        ConnectorError::InvalidResponse(format!("a delta query returned an unreadable object: {error}"))
    })
}

#[derive(Default)]
struct Changes {
    upserted: Vec<Resource>,
    removed: Vec<String>,
    sink: GrantSink,
    grants_removed: Vec<GrantRemoval>,
    notices: Vec<Notice>,
}

impl Changes {
    /// A group entry: its properties when they changed, and its member and owner changes.
    fn group(
        &mut self,
        config: &Config,
        graph: &Graph,
        resolver: &mut PrincipalResolver<'_>,
        id: String,
        mut object: Map<String, Value>,
    ) -> Result<(), ConnectorError> {
        let members = object.remove("members@delta");
        let owners = object.remove("owners@delta");
        let properties_changed = object.keys().any(|key| key != "id" && !key.starts_with('@'));
        if properties_changed {
            let group: GraphGroup = parse(object.clone())?;
            // skip-ad-groups: delta has no $filter, so synced groups are left out here.
            if config.skip_ad_groups && object.get("onPremisesSyncEnabled").and_then(Value::as_bool) == Some(true) {
                self.removed.push(id);
                return Ok(());
            }
            self.upserted.push(group_resource(groups::with_owners_read(graph, config, group)?, config.page_size));
        }
        for (changes, slug) in [(members, Slug::Members), (owners, Slug::Owners)] {
            let Some(changes) = changes else { continue };
            let entitlement_id = EntitlementId::new(ResourceType::Group, &id, slug).render();
            let changes: Vec<DeltaLink> = serde_json::from_value(changes).map_err(|error| {
                ConnectorError::InvalidResponse(format!("group {id} has unreadable member changes: {error}"))
            })?;
            for change in changes {
                if change.removed.is_some() {
                    self.grants_removed
                        .push(GrantRemoval { entitlement_id: entitlement_id.clone(), principal_id: change.object.id });
                } else {
                    let holder = resolver.directory_object(&change.object)?;
                    self.sink.add(&entitlement_id, holder);
                }
            }
        }
        Ok(())
    }
}

/// One entry of `members@delta` / `owners@delta`.
#[derive(Deserialize)]
struct DeltaLink {
    #[serde(flatten)]
    object: DirectoryObject,
    #[serde(rename = "@removed", default)]
    removed: Option<Value>,
}
