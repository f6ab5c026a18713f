//! Incremental sync of Azure RBAC: the subscriptions and resource groups whose role
//! assignments, role definitions or resource groups changed, found in the Azure Activity Log
//! and read again whole (`grant-changes::relisted-for-upserted`).
//!
//! No delta query covers ARM, and re-listing every subscription's role assignments was most of
//! an unchanged tenant's incremental sync (1,100 of 1,116 requests for the L shape). A round of
//! `list-changes` for `subscription` or for `resource_group`:
//! 1. lists the subscriptions. One that is new since the previous round is changed; one that
//!    is gone is removed (for `resource_group`: every resource group the previous round knew
//!    under it);
//! 2. reads each other subscription's Activity Log from an hour before the previous round
//!    began (`change_feed`). An event of its role assignments, role definitions or resource
//!    groups makes it changed (for `subscription`, only those at the subscription's own scope
//!    or of role definitions: a resource group's assignments are not the subscription's);
//! 3. reads a changed subscription again (`subscription`), or lists its resource groups again
//!    with their RBAC (`resource_group`, see `rbac`): upserted; the resource groups the
//!    previous round knew under it and the listing no longer has are removed.
//!
//! The `resource_group` token carries the resource group ids of every subscription, so a
//! removal names the id exactly as the listing wrote it (Activity Log entries spell resource
//! group names in whatever case the caller used). A full sync takes that token first, with one
//! listing of resource group names per subscription.
//!
//! Assignments at a management group or the root are in no subscription's log; they are not
//! attributed to subscriptions or resource groups anyway (`rbac`), but a custom role defined
//! there and renamed keeps its old name here until the next full sync (`--full-sync-interval`).
//! A log that cannot be read (403) makes its subscription changed, and a previous round older
//! than the log's 90 days makes every subscription changed: slower, never wrong.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::arm::{Arm, RESOURCE_GROUPS_API_VERSION, RESOURCES_API_VERSION};
use crate::azure_resources::{
    READ_SUBSCRIPTIONS, Subscription, list_resource_groups, read_subscription, resource_group_id, subscription_resource,
};
use crate::change_feed::{
    began_at, beyond_retention, decode_delta_token, decode_page_token, encode, log_refused, parse_time, read_since,
};
use crate::config::Config;
use crate::contract::{ConnectorError, Resource, ResourceRef};
use crate::exports::idgov::connector::incremental::ChangePage;
use crate::http::{ApiRequest, encode_path_segment};
use crate::ids::{ResourceType, require_guid};
use crate::paging::{Collection, checked_next_link, is_under};
use crate::wasi_support::rfc3339;

const ACTIVITY_LOG_API_VERSION: &str = "2015-04-01";
/// The Activity Log keeps 90 days; a little less leaves room for clocks.
const ACTIVITY_LOG_RETENTION: Duration = Duration::from_secs(89 * 24 * 60 * 60);

/// The delta token: when the round began, and the subscriptions it saw with, for
/// `resource_group`, their resource group ids (empty sets for `subscription`).
#[derive(Serialize, Deserialize)]
struct ArmDeltaToken {
    began: String,
    subscriptions: BTreeMap<String, BTreeSet<String>>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Step {
    /// Listing the subscriptions.
    Subscriptions,
    /// Reading the current subscription's Activity Log.
    ActivityLog,
    /// Listing the current subscription's resource groups (names only when starting to track,
    /// with their RBAC when it changed).
    ResourceGroups,
}

/// The page token within one round.
#[derive(Serialize, Deserialize)]
struct RoundToken {
    step: Step,
    began: String,
    /// ARM's nextLink within the step (for `ResourceGroups` with RBAC, the listing's own page token).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    next: Option<String>,
    /// Subscriptions still to look at; the first is the current one.
    pending: Vec<String>,
    /// What this round found so far: the token it will end with.
    seen: BTreeMap<String, BTreeSet<String>>,
    /// The current subscription's log has named a change.
    #[serde(default)]
    changed: bool,
}

/// One page of changes of `kind` (`subscription` or `resource_group`).
pub fn list_changes(
    config: &Config,
    kind: ResourceType,
    delta_token: Option<&str>,
    page_token: Option<&str>,
) -> Result<ChangePage, ConnectorError> {
    let arm = Arm::new(config);
    let previous: Option<ArmDeltaToken> =
        delta_token.map(|token| decode_delta_token(token, "Azure subscriptions")).transpose()?;
    let round: Option<RoundToken> = page_token.map(decode_page_token).transpose()?;
    if let Some(link) = round.as_ref().and_then(|round| round.next.as_deref())
        && link.starts_with("http")
        && !is_under(link, arm.base_url())
    {
        return Err(ConnectorError::InvalidConfig(format!(
            "page-token points outside the configured base URL {}: refusing to follow it",
            arm.base_url()
        )));
    }
    let mut page =
        RoundPage { arm: &arm, config, kind, previous: previous.as_ref(), upserted: Vec::new(), removed: Vec::new() };
    let next = match round {
        None => page.subscriptions_step(None)?,
        Some(round) => match round.step {
            Step::Subscriptions => page.subscriptions_step(Some(round))?,
            Step::ActivityLog => page.activity_log_step(round)?,
            Step::ResourceGroups => page.resource_groups_step(round)?,
        },
    };
    let (next_page_token, delta_token) = match next {
        Next::Page(round) => (Some(encode(&round)), None),
        Next::Done(token) => (None, Some(encode(&token))),
    };
    Ok(ChangePage {
        upserted: page.upserted,
        removed: page.removed,
        grants_added: Vec::new(),
        grants_removed: Vec::new(),
        notices: Vec::new(),
        next_page_token,
        delta_token,
    })
}

enum Next {
    Page(RoundToken),
    Done(ArmDeltaToken),
}

struct RoundPage<'a> {
    arm: &'a Arm,
    config: &'a Config,
    kind: ResourceType,
    previous: Option<&'a ArmDeltaToken>,
    upserted: Vec<Resource>,
    removed: Vec<String>,
}

impl RoundPage<'_> {
    /// Step 1: a page of `GET /subscriptions`. New subscriptions of a `subscription` round are
    /// upserted from the listing at once.
    fn subscriptions_step(&mut self, round: Option<RoundToken>) -> Result<Next, ConnectorError> {
        let url = match round.as_ref().and_then(|round| round.next.clone()) {
            Some(next_link) => next_link,
            None => self.arm.url("/subscriptions", RESOURCES_API_VERSION, &[]),
        };
        let response = self.arm.succeed(ApiRequest::get(url), READ_SUBSCRIPTIONS)?;
        let mut round = round.unwrap_or_else(|| RoundToken {
            step: Step::Subscriptions,
            began: began_at(&response),
            next: None,
            pending: Vec::new(),
            seen: BTreeMap::new(),
            changed: false,
        });
        let listed: Collection<Subscription> = response.json()?;
        let next_link = checked_next_link(listed.next_link, self.arm.base_url(), &response.call)?;
        for subscription in listed.value {
            require_guid(ResourceType::Subscription, &subscription.subscription_id)?;
            let id = subscription.subscription_id.clone();
            let is_new = self.previous.is_some_and(|previous| !previous.subscriptions.contains_key(&id));
            if is_new && self.kind == ResourceType::Subscription {
                self.upserted.push(subscription_resource(subscription));
                round.seen.insert(id, BTreeSet::new());
            } else if self.kind == ResourceType::Subscription && self.previous.is_none() {
                round.seen.insert(id, BTreeSet::new());
            } else {
                round.pending.push(id);
            }
        }
        if let Some(next_link) = next_link {
            return Ok(Next::Page(RoundToken { next: Some(next_link), ..round }));
        }
        if let Some(previous) = self.previous {
            let listed: BTreeSet<&String> = round.seen.keys().chain(round.pending.iter()).collect();
            for (gone, resource_groups) in previous.subscriptions.iter().filter(|(id, _)| !listed.contains(id)) {
                match self.kind {
                    ResourceType::Subscription => self.removed.push(gone.clone()),
                    _ => self.removed.extend(resource_groups.iter().cloned()),
                }
            }
        }
        self.advance(RoundToken { next: None, ..round })
    }

    /// Moves on to the first pending subscription, or ends the round.
    fn advance(&mut self, round: RoundToken) -> Result<Next, ConnectorError> {
        let Some(current) = round.pending.first().cloned() else {
            return Ok(Next::Done(ArmDeltaToken { began: round.began, subscriptions: round.seen }));
        };
        let Some(previous) = self.previous else {
            // Starting to track: only the resource group names are needed.
            return Ok(Next::Page(RoundToken { step: Step::ResourceGroups, next: None, changed: true, ..round }));
        };
        let is_new = !previous.subscriptions.contains_key(&current);
        if is_new || beyond_retention(&previous.began, &round.began, ACTIVITY_LOG_RETENTION)? {
            return self.finish_subscription(RoundToken { changed: true, next: None, ..round });
        }
        Ok(Next::Page(RoundToken { step: Step::ActivityLog, next: None, changed: false, ..round }))
    }

    /// Step 2: a page of the current subscription's Activity Log.
    fn activity_log_step(&mut self, mut round: RoundToken) -> Result<Next, ConnectorError> {
        let previous = self.previous.ok_or_else(|| {
            ConnectorError::InvalidConfig(
                "page-token of the activity-log step needs the delta-token it began with".to_owned(),
            )
        })?;
        let subscription = round.pending.first().cloned().ok_or_else(|| {
            ConnectorError::InvalidConfig("page-token of the activity-log step names no subscription".to_owned())
        })?;
        let url = match round.next.take() {
            Some(next_link) => next_link,
            None => self.activity_log_url(&subscription, &previous.began, &round.began)?,
        };
        let response = self.arm.send(ApiRequest::get(url))?;
        if log_refused(
            &response,
            &format!("the RBAC of subscription {subscription} is read again"),
            "grant Reader (Microsoft.Insights/eventtypes/*) to read only what changed",
        ) {
            return self.finish_subscription(RoundToken { changed: true, ..round });
        }
        if !response.is_success() {
            return Err(response.into_error(Some(format!("Reader on /subscriptions/{subscription}"))));
        }
        let events: Collection<ActivityEvent> = response.json()?;
        round.changed |= events.value.iter().any(|event| event.concerns(self.kind));
        match checked_next_link(events.next_link, self.arm.base_url(), &response.call)? {
            Some(next_link) => Ok(Next::Page(RoundToken { next: Some(next_link), ..round })),
            None => self.finish_subscription(round),
        }
    }

    /// `GET /subscriptions/{id}/providers/Microsoft.Insights/eventtypes/management/values`
    /// from an hour before the previous round began until this one began. `Date` has whole
    /// seconds: the bound is a second later, so a change made in the second the round began is
    /// read now, not only by the next round.
    fn activity_log_url(
        &self,
        subscription: &str,
        previous_began: &str,
        began: &str,
    ) -> Result<String, ConnectorError> {
        let since = rfc3339(read_since(parse_time(previous_began)?));
        let until = rfc3339(parse_time(began)? + Duration::from_secs(1));
        let filter = format!("eventTimestamp ge '{since}' and eventTimestamp le '{until}'");
        Ok(self.arm.url(
            &format!(
                "/subscriptions/{}/providers/Microsoft.Insights/eventtypes/management/values",
                encode_path_segment(subscription)
            ),
            ACTIVITY_LOG_API_VERSION,
            &[("$filter", &filter), ("$select", "operationName,resourceId")],
        ))
    }

    /// The current subscription's log is read: an unchanged one keeps what the previous round
    /// knew; a changed one is read again (`subscription`) or has its resource groups listed.
    fn finish_subscription(&mut self, mut round: RoundToken) -> Result<Next, ConnectorError> {
        let subscription = round.pending.first().cloned().unwrap_or_default();
        if !round.changed {
            let known = self.known_resource_groups(&subscription);
            round.seen.insert(subscription, known);
            round.pending.remove(0);
            return self.advance(round);
        }
        match self.kind {
            ResourceType::Subscription => {
                match read_subscription(self.arm, &subscription)? {
                    Some(resource) => self.upserted.push(resource),
                    None => self.removed.push(subscription.clone()),
                }
                round.seen.insert(subscription, BTreeSet::new());
                round.pending.remove(0);
                self.advance(round)
            }
            _ => Ok(Next::Page(RoundToken { step: Step::ResourceGroups, next: None, ..round })),
        }
    }

    fn known_resource_groups(&self, subscription: &str) -> BTreeSet<String> {
        self.previous.and_then(|previous| previous.subscriptions.get(subscription)).cloned().unwrap_or_default()
    }

    /// Step 3 (`resource_group`): a page of the current subscription's resource groups, upserted
    /// with their RBAC; or, when starting to track, only their names.
    fn resource_groups_step(&mut self, mut round: RoundToken) -> Result<Next, ConnectorError> {
        let subscription = round.pending.first().cloned().ok_or_else(|| {
            ConnectorError::InvalidConfig("page-token of the resource-group step names no subscription".to_owned())
        })?;
        let (ids, next) = if self.previous.is_none() {
            self.resource_group_names(&subscription, round.next.take())?
        } else {
            let parent =
                ResourceRef { resource_type: ResourceType::Subscription.as_str().to_owned(), id: subscription.clone() };
            let listed = list_resource_groups(self.config, Some(&parent), round.next.as_deref())?;
            let ids: Vec<String> = listed.items.iter().map(|group| group.id.clone()).collect();
            self.upserted.extend(listed.items);
            (ids, listed.next_page_token)
        };
        round.seen.entry(subscription.clone()).or_default().extend(ids);
        if next.is_some() {
            return Ok(Next::Page(RoundToken { next, ..round }));
        }
        let now = round.seen.get(&subscription).cloned().unwrap_or_default();
        self.removed.extend(self.known_resource_groups(&subscription).difference(&now).cloned());
        round.pending.remove(0);
        self.advance(RoundToken { next: None, ..round })
    }

    /// A page of `GET /subscriptions/{id}/resourcegroups`, names only: the ids a full sync's
    /// listing will write.
    fn resource_group_names(
        &self,
        subscription: &str,
        next_link: Option<String>,
    ) -> Result<(Vec<String>, Option<String>), ConnectorError> {
        #[derive(Deserialize)]
        struct Named {
            name: String,
        }
        let url = next_link.unwrap_or_else(|| {
            self.arm.url(
                &format!("/subscriptions/{}/resourcegroups", encode_path_segment(subscription)),
                RESOURCE_GROUPS_API_VERSION,
                &[],
            )
        });
        let page: Collection<Named> = self.arm.collection(url, &format!("Reader on /subscriptions/{subscription}"))?;
        Ok((page.value.iter().map(|group| resource_group_id(subscription, &group.name)).collect(), page.next_link))
    }
}

/// One Activity Log event; only what it changed matters here.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ActivityEvent {
    operation_name: Option<Localized>,
    resource_id: Option<String>,
}

#[derive(Deserialize)]
struct Localized {
    value: Option<String>,
}

impl ActivityEvent {
    /// True when the event changes what `kind` holds: for a resource group, any role
    /// assignment, role definition or resource group of the subscription; for the
    /// subscription itself, role definitions and the assignments at its own scope.
    fn concerns(&self, kind: ResourceType) -> bool {
        let operation = self.operation_name.as_ref().and_then(|name| name.value.as_deref()).unwrap_or_default();
        let operation = operation.to_ascii_lowercase();
        let resource_id = self.resource_id.as_deref().unwrap_or_default().to_ascii_lowercase();
        let role_definitions = operation.starts_with("microsoft.authorization/roledefinitions/");
        let role_assignments = operation.starts_with("microsoft.authorization/roleassignments/");
        let resource_groups = operation.starts_with("microsoft.resources/subscriptions/resourcegroups/");
        match kind {
            ResourceType::Subscription => {
                role_definitions || (role_assignments && !resource_id.contains("/resourcegroups/"))
            }
            _ => role_definitions || role_assignments || resource_groups,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(operation: &str, resource_id: &str) -> ActivityEvent {
        ActivityEvent {
            operation_name: Some(Localized { value: Some(operation.to_owned()) }),
            resource_id: Some(resource_id.to_owned()),
        }
    }

    const SUB: &str = "/subscriptions/0b1f6471-1bf0-4dda-aec3-cb9272f09590";

    #[test]
    fn a_resource_groups_assignment_concerns_its_resource_groups_not_the_subscription() {
        let assigned = event(
            "Microsoft.Authorization/roleAssignments/write",
            &format!("{SUB}/resourceGroups/Payments/providers/Microsoft.Authorization/roleAssignments/x"),
        );
        assert!(assigned.concerns(ResourceType::ResourceGroup));
        assert!(!assigned.concerns(ResourceType::Subscription));
    }

    #[test]
    fn a_subscription_assignment_and_a_role_definition_concern_both() {
        let assigned = event(
            "MICROSOFT.AUTHORIZATION/ROLEASSIGNMENTS/DELETE",
            &format!("{SUB}/providers/Microsoft.Authorization/roleAssignments/x"),
        );
        let defined = event(
            "Microsoft.Authorization/roleDefinitions/write",
            &format!("{SUB}/providers/Microsoft.Authorization/roleDefinitions/y"),
        );
        for kind in [ResourceType::Subscription, ResourceType::ResourceGroup] {
            assert!(assigned.concerns(kind) && defined.concerns(kind));
        }
    }

    #[test]
    fn other_operations_concern_neither() {
        let vm = event(
            "Microsoft.Compute/virtualMachines/write",
            &format!("{SUB}/resourceGroups/a/providers/Microsoft.Compute/virtualMachines/v"),
        );
        let group =
            event("Microsoft.Resources/subscriptions/resourceGroups/delete", &format!("{SUB}/resourceGroups/a"));
        assert!(!vm.concerns(ResourceType::ResourceGroup) && !vm.concerns(ResourceType::Subscription));
        assert!(group.concerns(ResourceType::ResourceGroup) && !group.concerns(ResourceType::Subscription));
    }
}
