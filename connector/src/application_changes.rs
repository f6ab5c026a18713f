//! Incremental sync of enterprise applications: which ones changed since the previous sync,
//! read again whole so the host re-lists their entitlements and grants
//! (`grant-changes::relisted-for-upserted`).
//!
//! No delta query reports an application's app-role assignments or owners, and re-reading
//! `appRoleAssignedTo` of every application is most of an unchanged tenant's incremental sync.
//! So a round of changes has two steps:
//! 1. the service-principal delta query (`/servicePrincipals/delta`): applications created,
//!    changed or deleted;
//! 2. the directory audit log (`/auditLogs/directoryAudits`, permission AuditLog.Read.All) since
//!    the previous round began: every service principal an event names (as a target, or as
//!    `ServicePrincipal.ObjectID` in its modified properties, as app-role grants to users and
//!    groups do) may have new assignments or owners.
//!
//! Each application either step names is read again (`GET /servicePrincipals/{id}` with the
//! listing's `$select` and `$expand`), so it is upserted exactly as a full listing shows it.
//! Audit events reach the log minutes after the change, so each round reads the log from an
//! hour before the previous round began (`change_feed::LOG_LOOKBACK`): an application changed in
//! that hour is read again once more, nothing is missed. "Began" is Graph's clock (its `Date`
//! header), not ours. When the log cannot be read (403: no AuditLog.Read.All, or no licence),
//! the round lists every application instead: slower, never wrong.

use std::collections::BTreeSet;
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::applications::{self, ReadApplication, own_tenant_id, read_application};
use crate::change_feed::{
    began_at, beyond_retention, decode_delta_token, decode_page_token, encode, log_refused, parse_time, read_since,
};
use crate::config::Config;
use crate::contract::{ConnectorError, Notice, Resource};
use crate::delta::DeltaPage;
use crate::exports::idgov::connector::incremental::ChangePage;
use crate::graph::Graph;
use crate::http::ApiRequest;
use crate::ids::is_guid;
use crate::paging::{Collection, checked_next_link, is_under};
use crate::wasi_support::rfc3339;

/// How long the audit log keeps events, at the least (Entra ID Free keeps 7 days, P1 and P2
/// keep 30): a previous round older than this may have lost events, so every application is
/// read again instead.
const AUDIT_LOG_RETENTION: Duration = Duration::from_secs(7 * 24 * 60 * 60);
/// Audit events per page: each may name an application to read, within one call.
const AUDIT_LOG_PAGE: u16 = 100;
const READ_AUDIT_LOG: &str = "AuditLog.Read.All";
const READ_APPLICATIONS: &str = "Application.Read.All";

/// The delta token handed to the host: where the next round starts.
#[derive(Serialize, Deserialize)]
struct ApplicationDeltaToken {
    /// Graph's `@odata.deltaLink` of the service-principal delta query.
    delta_link: String,
    /// When the round that issued this token began (RFC 3339, Graph's clock).
    began: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Step {
    Delta,
    AuditLog,
    /// The audit log was refused: every application is listed instead.
    Listing,
}

/// The page token within one round.
#[derive(Serialize, Deserialize)]
struct RoundToken {
    step: Step,
    /// Graph's nextLink within the step (for `Listing`, the listing's own page token).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    next: Option<String>,
    /// When this round began (RFC 3339, Graph's clock).
    began: String,
    /// The delta link that ended step 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    delta_link: Option<String>,
    /// The tenant id behind `owned_by_this_tenant`, once read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    tenant_id: Option<Option<String>>,
}

/// One page of changes of enterprise applications (see the module documentation).
pub fn list_changes(
    config: &Config,
    delta_token: Option<&str>,
    page_token: Option<&str>,
) -> Result<ChangePage, ConnectorError> {
    let graph = Graph::new(config);
    let previous = delta_token.map(|token| decode_application_token(token, graph.base_url())).transpose()?;
    let round = page_token.map(|token| decode_round_token(token, graph.base_url())).transpose()?;
    let mut page = RoundPage { graph: &graph, config, upserted: Vec::new(), removed: Vec::new(), notices: Vec::new() };
    let next = match round {
        None => page.delta_step(previous.as_ref(), None)?,
        Some(round) => match round.step {
            Step::Delta => page.delta_step(previous.as_ref(), Some(round))?,
            Step::AuditLog => page.audit_log_step(round)?,
            Step::Listing => page.listing_step(round)?,
        },
    };
    let (next_page_token, delta_token) = match next {
        Next::Page(round) => (Some(encode(&round)), None),
        Next::Done { delta_link, began } => (None, Some(encode(&ApplicationDeltaToken { delta_link, began }))),
    };
    Ok(ChangePage {
        upserted: page.upserted,
        removed: page.removed,
        grants_added: Vec::new(),
        grants_removed: Vec::new(),
        notices: page.notices,
        next_page_token,
        delta_token,
    })
}

/// What follows a page: another page of this round, or the end with the next delta token.
enum Next {
    Page(RoundToken),
    Done { delta_link: String, began: String },
}

struct RoundPage<'a> {
    graph: &'a Graph,
    config: &'a Config,
    upserted: Vec<Resource>,
    removed: Vec<String>,
    notices: Vec<Notice>,
}

impl RoundPage<'_> {
    /// Step 1: a page of the service-principal delta query. Without a previous token this
    /// only asks for a link for "now" (`$deltaToken=latest`) and ends the round there.
    fn delta_step(
        &mut self,
        previous: Option<&ApplicationDeltaToken>,
        round: Option<RoundToken>,
    ) -> Result<Next, ConnectorError> {
        let url = match (&round, previous) {
            (Some(RoundToken { next: Some(next_link), .. }), _) => next_link.clone(),
            (_, Some(previous)) => previous.delta_link.clone(),
            (_, None) => self
                .graph
                .url("/servicePrincipals/delta", &[("$select", applications::SELECT), ("$deltaToken", "latest")]),
        };
        let response = self.graph.succeed(ApiRequest::get(url), READ_APPLICATIONS)?;
        let mut round = round.unwrap_or_else(|| RoundToken {
            step: Step::Delta,
            next: None,
            began: began_at(&response),
            delta_link: None,
            tenant_id: None,
        });
        let page: DeltaPage = response.json()?;
        let next_link = checked_next_link(page.next_link, self.graph.base_url(), &response.call)?;
        let delta_link = checked_next_link(page.delta_link, self.graph.base_url(), &response.call)?;
        let mut changed = BTreeSet::new();
        for object in page.value {
            let id = object.get("id").and_then(Value::as_str).ok_or_else(|| {
                ConnectorError::InvalidResponse(format!("{} returned an object without id", response.call))
            })?;
            if object.contains_key("@removed") {
                self.removed.push(id.to_owned());
            } else if object.get("servicePrincipalType").and_then(Value::as_str) == Some("Application") {
                changed.insert(id.to_owned());
            }
        }
        self.read_again(&changed, &mut round)?;
        if let Some(next_link) = next_link {
            round.next = Some(next_link);
            return Ok(Next::Page(round));
        }
        let Some(delta_link) = delta_link else {
            return Err(ConnectorError::InvalidResponse(format!(
                "{} ended without @odata.deltaLink or @odata.nextLink",
                response.call
            )));
        };
        let Some(previous) = previous else {
            // Starting to track: nothing happened before "now".
            return Ok(Next::Done { delta_link, began: round.began });
        };
        let round = RoundToken { delta_link: Some(delta_link), ..round };
        if beyond_retention(&previous.began, &round.began, AUDIT_LOG_RETENTION)? {
            eprintln!(
                "azure-connector: the previous sync began at {} and the audit log may have dropped events since: every enterprise application is read again",
                previous.began
            );
            return Ok(Next::Page(RoundToken { step: Step::Listing, next: None, ..round }));
        }
        let next = Some(self.audit_log_url(parse_time(&previous.began)?));
        Ok(Next::Page(RoundToken { step: Step::AuditLog, next, ..round }))
    }

    /// `GET /auditLogs/directoryAudits?$filter=activityDateTime ge {previous round's start − lookback}`.
    fn audit_log_url(&self, previous_began: SystemTime) -> String {
        let since = rfc3339(read_since(previous_began));
        let top = AUDIT_LOG_PAGE.min(self.config.page_size).to_string();
        self.graph
            .url("/auditLogs/directoryAudits", &[("$filter", &format!("activityDateTime ge {since}")), ("$top", &top)])
    }

    /// Step 2: a page of the audit log; every application it names is read again.
    fn audit_log_step(&mut self, mut round: RoundToken) -> Result<Next, ConnectorError> {
        let url = round.next.take().ok_or_else(|| {
            ConnectorError::InvalidConfig(
                "page-token of the audit-log step has no link: pass next-page-token back verbatim".to_owned(),
            )
        })?;
        let response = self.graph.send(ApiRequest::get(url))?;
        if log_refused(
            &response,
            "every enterprise application is read again",
            &format!("grant {READ_AUDIT_LOG} to read only the changed ones"),
        ) {
            return Ok(Next::Page(RoundToken { step: Step::Listing, next: None, ..round }));
        }
        if !response.is_success() {
            return Err(response.into_error(Some(READ_AUDIT_LOG.to_owned())));
        }
        let page: Collection<DirectoryAudit> = response.json()?;
        let named: BTreeSet<String> = page.value.iter().flat_map(DirectoryAudit::service_principal_ids).collect();
        self.read_again(&named, &mut round)?;
        match checked_next_link(page.next_link, self.graph.base_url(), &response.call)? {
            Some(next_link) => Ok(Next::Page(RoundToken { next: Some(next_link), ..round })),
            None => round.finish(),
        }
    }

    /// The fallback for an unreadable audit log: a page of the full application listing.
    fn listing_step(&mut self, round: RoundToken) -> Result<Next, ConnectorError> {
        let listed = applications::list(self.config, round.next.as_deref())?;
        self.upserted.extend(listed.items);
        self.notices.extend(listed.notices);
        match listed.next_page_token {
            Some(next) => Ok(Next::Page(RoundToken { next: Some(next), ..round })),
            None => round.finish(),
        }
    }

    /// Reads each application again: upserted when it still is one, removed when it is gone.
    fn read_again(&mut self, ids: &BTreeSet<String>, round: &mut RoundToken) -> Result<(), ConnectorError> {
        for id in ids {
            let tenant_id = match &round.tenant_id {
                Some(known) => known.clone(),
                None => {
                    let read = own_tenant_id(self.graph, &mut self.notices)?;
                    round.tenant_id = Some(read.clone());
                    read
                }
            };
            match read_application(self.graph, id, tenant_id.as_deref(), self.config.page_size)? {
                ReadApplication::Found(application) => self.upserted.push(application),
                ReadApplication::Gone => self.removed.push(id.clone()),
                ReadApplication::NotAnApplication => {}
            }
        }
        Ok(())
    }
}

impl RoundToken {
    fn finish(self) -> Result<Next, ConnectorError> {
        let delta_link = self.delta_link.ok_or_else(|| {
            ConnectorError::InvalidConfig("page-token has no delta link: pass next-page-token back verbatim".to_owned())
        })?;
        Ok(Next::Done { delta_link, began: self.began })
    }
}

/// One event of the directory audit log; only which objects it names matters here.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct DirectoryAudit {
    #[serde(default)]
    target_resources: Vec<TargetResource>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct TargetResource {
    id: Option<String>,
    #[serde(rename = "type")]
    kind: Option<String>,
    #[serde(default)]
    modified_properties: Vec<ModifiedProperty>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ModifiedProperty {
    display_name: Option<String>,
    old_value: Option<String>,
    new_value: Option<String>,
}

impl DirectoryAudit {
    /// Service principals the event names: targets of type ServicePrincipal, and the
    /// `ServicePrincipal.ObjectID` property (app-role grants to users and groups name the
    /// application only there). Only GUIDs count: anything else names no object.
    fn service_principal_ids(&self) -> impl Iterator<Item = String> + '_ {
        self.target_resources.iter().flat_map(|target| {
            let as_target = target
                .kind
                .as_deref()
                .filter(|kind| kind.eq_ignore_ascii_case("ServicePrincipal"))
                .and(target.id.clone());
            let in_properties = target
                .modified_properties
                .iter()
                .filter(|property| {
                    property
                        .display_name
                        .as_deref()
                        .is_some_and(|name| name.eq_ignore_ascii_case("ServicePrincipal.ObjectID"))
                })
                .flat_map(|property| [&property.old_value, &property.new_value])
                .flatten()
                .flat_map(|value| property_strings(value));
            as_target.into_iter().chain(in_properties).filter(|id| is_guid(id)).map(|id| id.to_ascii_lowercase())
        })
    }
}

/// The strings in an audit property value, which Graph writes as JSON text: `"\"id\""`,
/// `"[\"id\"]"`, or the bare value.
fn property_strings(value: &str) -> Vec<String> {
    match serde_json::from_str::<Value>(value) {
        Ok(Value::String(text)) => vec![text],
        Ok(Value::Array(items)) => items.into_iter().filter_map(|item| item.as_str().map(str::to_owned)).collect(),
        _ => vec![value.trim().to_owned()],
    }
}

fn decode_application_token(token: &str, base_url: &str) -> Result<ApplicationDeltaToken, ConnectorError> {
    let decoded: ApplicationDeltaToken = decode_delta_token(token, "enterprise applications")?;
    if !is_under(&decoded.delta_link, base_url) {
        return Err(ConnectorError::InvalidConfig(format!(
            "delta-token points outside the configured base URL {base_url}: pass the token of the previous sync, or none to start over"
        )));
    }
    Ok(decoded)
}

fn decode_round_token(token: &str, base_url: &str) -> Result<RoundToken, ConnectorError> {
    let decoded: RoundToken = decode_page_token(token)?;
    // The listing step's token is the listing's own, checked when the listing decodes it.
    let links =
        [decoded.delta_link.as_deref(), if decoded.step == Step::Listing { None } else { decoded.next.as_deref() }];
    if links.into_iter().flatten().any(|link| !is_under(link, base_url)) {
        return Err(ConnectorError::InvalidConfig(format!(
            "page-token points outside the configured base URL {base_url}: refusing to follow it"
        )));
    }
    Ok(decoded)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SP: &str = "6c9e3f35-1b8e-4b53-8e0c-4c1d8f2f9a01";
    const USER: &str = "0b7a2c11-5d3e-4f7a-9c2b-1e6d4a8b3c02";

    fn audit(json: Value) -> DirectoryAudit {
        serde_json::from_value(json).expect("a directoryAudit")
    }

    #[test]
    fn a_grant_to_a_user_names_the_application_in_its_properties() {
        let event = audit(serde_json::json!({"targetResources": [{
        "id": USER, "type": "User",
        "modifiedProperties": [
            {"displayName": "AppRole.Id", "oldValue": null, "newValue": "\"00000000-0000-0000-0000-000000000000\""},
            {"displayName": "ServicePrincipal.ObjectID", "oldValue": null, "newValue": format!("\"{}\"", SP.to_uppercase())}
        ]}]}));
        assert_eq!(event.service_principal_ids().collect::<Vec<_>>(), vec![SP.to_owned()]);
    }

    #[test]
    fn an_owner_change_names_the_application_as_target_and_not_the_user() {
        let event = audit(serde_json::json!({"targetResources": [
            {"id": SP, "type": "ServicePrincipal", "modifiedProperties": []},
            {"id": USER, "type": "User", "modifiedProperties": []}
        ]}));
        assert_eq!(event.service_principal_ids().collect::<Vec<_>>(), vec![SP.to_owned()]);
    }

    #[test]
    fn values_that_are_not_object_ids_are_ignored() {
        let event = audit(serde_json::json!({"targetResources": [
            {"id": "../../users", "type": "ServicePrincipal"},
            {"id": USER, "type": "User", "modifiedProperties": [
                {"displayName": "ServicePrincipal.ObjectID", "newValue": "[\"not-a-guid\", \"" .to_owned() + SP + "\"]"}
            ]}
        ]}));
        assert_eq!(event.service_principal_ids().collect::<Vec<_>>(), vec![SP.to_owned()]);
    }

    #[test]
    fn a_token_pointing_elsewhere_is_refused() {
        let token = encode(&ApplicationDeltaToken {
            delta_link: "https://graph.microsoft.com.evil.example/v1.0/servicePrincipals/delta".to_owned(),
            began: "2026-11-27T03:00:00Z".to_owned(),
        });
        assert!(matches!(
            decode_application_token(&token, "https://graph.microsoft.com"),
            Err(ConnectorError::InvalidConfig(_))
        ));
    }
}
