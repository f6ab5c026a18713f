//! `user` resources: Entra ID users, with their mailbox purpose when `mailbox-settings` is on.

use serde::Deserialize;
use serde_json::{Value, json};

use crate::config::Config;
use crate::contract::{ConnectorError, Notice, Resource, ResourcePage};
use crate::graph::{Graph, segment};
use crate::http::ApiRequest;
use crate::ids::ResourceType;
use crate::notices::gap;
use crate::paging::{PageToken, Phase, following};

pub(crate) const SELECT: &str = "id,displayName,mail,userPrincipalName,userType,accountEnabled,jobTitle,department,employeeId,onPremisesSyncEnabled";
const PHASES: &[Phase] = &[Phase::Resources];

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct GraphUser {
    id: String,
    display_name: Option<String>,
    mail: Option<String>,
    user_principal_name: Option<String>,
    user_type: Option<String>,
    account_enabled: Option<bool>,
    job_title: Option<String>,
    department: Option<String>,
    employee_id: Option<String>,
    on_premises_sync_enabled: Option<bool>,
}

/// `GET /v1.0/users?$select=...&$top=N`, then (option) one mailboxSettings read per user.
pub fn list(config: &Config, page_token: Option<&str>) -> Result<ResourcePage, ConnectorError> {
    let graph = Graph::new(config);
    let token = PageToken::decode(page_token, PHASES, graph.base_url())?;
    let url =
        token.next_link.unwrap_or_else(|| graph.url("/users", &[("$select", SELECT), ("$top", graph.page_size())]));
    let page = graph.collection::<GraphUser>(url, false, "User.Read.All")?;
    let mut mailbox = MailboxPurposes::new(&graph, config);
    let mut items = Vec::with_capacity(page.value.len());
    for user in page.value {
        items.push(user_resource(user, &mut mailbox)?);
    }
    Ok(ResourcePage {
        items,
        next_page_token: following(PHASES, Phase::Resources, page.next_link),
        notices: mailbox.notices,
    })
}

/// A user as `list-resources` gives it (also used for the users a delta query reports).
pub(crate) fn user_resource(user: GraphUser, mailbox: &mut MailboxPurposes<'_>) -> Result<Resource, ConnectorError> {
    let mut profile = json!({
        "email": user.mail,
        "login": user.user_principal_name,
        "status": user.account_enabled.map(|enabled| if enabled { "enabled" } else { "disabled" }),
        "user_type": user.user_type.map(|kind| kind.to_ascii_lowercase()),
        "job_title": user.job_title,
        "department": user.department,
        "employee_id": user.employee_id,
        "on_premises_synced": user.on_premises_sync_enabled.unwrap_or(false),
    });
    if mailbox.requested {
        let purpose = mailbox.purpose(&user.id)?;
        profile["account_kind"] = json!(account_kind(purpose.as_deref()));
        profile["user_purpose"] = json!(purpose);
    }
    Ok(Resource {
        resource_type: ResourceType::User.as_str().to_owned(),
        display_name: user.display_name.or_else(|| user.user_principal_name.clone()).unwrap_or_else(|| user.id.clone()),
        id: user.id,
        parent: None,
        profile_json: profile.to_string(),
    })
}

/// `room`, `equipment` and `shared` mailboxes are not people.
fn account_kind(purpose: Option<&str>) -> &'static str {
    match purpose {
        Some("user" | "linked") => "human",
        Some("shared" | "room" | "equipment") => "non_human",
        _ => "unknown",
    }
}

pub(crate) struct MailboxPurposes<'g> {
    graph: &'g Graph,
    /// `mailbox-settings` is on: the profile carries the purpose (unknown after a 403).
    requested: bool,
    /// Cleared after a 403: the permission is missing for every user, one notice says so.
    enabled: bool,
    pub notices: Vec<Notice>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct MailboxSettings {
    user_purpose: Option<Value>,
}

impl<'g> MailboxPurposes<'g> {
    pub fn new(graph: &'g Graph, config: &Config) -> Self {
        Self { graph, requested: config.mailbox_settings, enabled: config.mailbox_settings, notices: Vec::new() }
    }

    /// `GET /v1.0/users/{id}/mailboxSettings?$select=userPurpose`. A user without a mailbox
    /// (404, or 400 MailboxNotEnabledForRESTAPI) has an unknown purpose and is still listed.
    fn purpose(&mut self, user_id: &str) -> Result<Option<String>, ConnectorError> {
        if !self.enabled {
            return Ok(None);
        }
        let url =
            self.graph.url(&format!("/users/{}/mailboxSettings", segment(user_id)), &[("$select", "userPurpose")]);
        let request = ApiRequest::get(url);
        let call = request.call();
        let response = self.graph.send(request)?;
        match response.status {
            200..=299 => {
                let settings: MailboxSettings = response.json()?;
                // v1.0 answers the enum as a string; beta wraps it as {"value": ...}.
                Ok(settings.user_purpose.and_then(|purpose| match purpose {
                    Value::String(text) => Some(text),
                    Value::Object(fields) => fields.get("value").and_then(Value::as_str).map(str::to_owned),
                    _ => None,
                }))
            }
            403 => {
                self.enabled = false;
                let error = response.upstream_error();
                self.notices.push(gap(
                    call,
                    format!(
                        "mailbox settings refused ({} {}): the remaining users of this page have an unknown account kind",
                        error.code, error.message
                    ),
                    Some("MailboxSettings.Read".to_owned()),
                ));
                Ok(None)
            }
            400 | 404 => Ok(None),
            _ => Err(response.into_error(Some("MailboxSettings.Read".to_owned()))),
        }
    }
}
