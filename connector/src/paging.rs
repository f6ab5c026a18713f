//! Paging: Azure's collection pages and the opaque page token handed to the host.
//!
//! The token is JSON: `{"phase":"members","next_link":"https://graph.microsoft.com/v1.0/..."}`
//! (`next_link` absent = the first page of that phase; `tenant_id` carries the tenant id of the
//! enterprise application listing between pages). Azure's nextLinks are followed verbatim, but
//! only within the configured base URL: a forged token cannot send a request elsewhere.

use serde::{Deserialize, Serialize};

use crate::contract::ConnectorError;

/// One page of a Graph (`@odata.nextLink`) or ARM (`nextLink`) collection.
#[derive(Deserialize)]
pub struct Collection<T> {
    pub value: Vec<T>,
    #[serde(rename = "@odata.nextLink", alias = "nextLink", default)]
    pub next_link: Option<String>,
}

/// Which listing a multi-part grant listing is in (e.g. a group's members, then its owners).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    Resources,
    Members,
    Owners,
    AppRoleAssignments,
    Assigned,
    Eligible,
    RoleAssignments,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PageToken {
    pub phase: Phase,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_link: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant_id: Option<String>,
}

impl PageToken {
    pub fn start(phase: Phase) -> Self {
        Self { phase, next_link: None, tenant_id: None }
    }

    /// Reads a token this connector issued. `phases` are the phases of the listing at hand;
    /// a nextLink must lie under `base_url`.
    pub fn decode(token: Option<&str>, phases: &[Phase], base_url: &str) -> Result<Self, ConnectorError> {
        let Some(token) = token else {
            return Ok(Self::start(phases.first().copied().unwrap_or(Phase::Resources)));
        };
        let decoded: PageToken = serde_json::from_str(token).map_err(|_| {
            ConnectorError::InvalidConfig(
                "page-token was not issued by this connector: pass next-page-token back verbatim, or none to start over"
                    .to_owned(),
            )
        })?;
        if !phases.contains(&decoded.phase) {
            return Err(ConnectorError::InvalidConfig(format!(
                "page-token belongs to another listing (phase {:?}): pass the token of this listing, or none to start over",
                decoded.phase
            )));
        }
        if let Some(link) = &decoded.next_link
            && !is_under(link, base_url)
        {
            return Err(ConnectorError::InvalidConfig(format!(
                "page-token points outside the configured base URL {base_url}: refusing to follow it"
            )));
        }
        Ok(decoded)
    }

    pub fn encode(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }
}

/// The nextLink of a page, refused when Azure points outside the configured base URL (the
/// host would refuse the origin anyway; failing here names the cause).
pub fn checked_next_link(
    next_link: Option<String>,
    base_url: &str,
    call: &str,
) -> Result<Option<String>, ConnectorError> {
    match next_link {
        Some(link) if !is_under(&link, base_url) => {
            Err(ConnectorError::InvalidResponse(format!("{call} returned a nextLink outside {base_url}: '{link}'")))
        }
        other => Ok(other),
    }
}

/// The token for what follows a page of `phase`: the same phase while Azure has a nextLink,
/// then the first page of the next phase, then nothing.
pub fn following(phases: &[Phase], phase: Phase, next_link: Option<String>) -> Option<String> {
    if next_link.is_some() {
        return Some(PageToken { phase, next_link, tenant_id: None }.encode());
    }
    let position = phases.iter().position(|candidate| *candidate == phase)?;
    phases.get(position + 1).map(|next_phase| PageToken::start(*next_phase).encode())
}

pub(crate) fn is_under(link: &str, base_url: &str) -> bool {
    link.strip_prefix(base_url).is_some_and(|rest| rest.starts_with('/') || rest.starts_with('?'))
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: &str = "https://graph.microsoft.com";

    #[test]
    fn forged_next_link_to_another_origin_is_refused() {
        let forged = r#"{"phase":"members","next_link":"https://graph.microsoft.com.evil.example/v1.0/x"}"#;
        assert!(PageToken::decode(Some(forged), &[Phase::Members, Phase::Owners], BASE).is_err());
    }

    #[test]
    fn token_of_another_listing_is_refused() {
        let token = PageToken::start(Phase::Eligible).encode();
        assert!(PageToken::decode(Some(&token), &[Phase::Members, Phase::Owners], BASE).is_err());
    }

    #[test]
    fn members_are_followed_by_owners_then_nothing() {
        let phases = [Phase::Members, Phase::Owners];
        let link = format!("{BASE}/v1.0/groups/g/members?$skiptoken=X%27ab%27");
        let same_phase = following(&phases, Phase::Members, Some(link.clone())).expect("more members");
        let decoded = PageToken::decode(Some(&same_phase), &phases, BASE).expect("own token");
        assert_eq!((decoded.phase, decoded.next_link), (Phase::Members, Some(link)));
        let owners = following(&phases, Phase::Members, None).expect("owners next");
        assert_eq!(PageToken::decode(Some(&owners), &phases, BASE).expect("own token").phase, Phase::Owners);
        assert!(following(&phases, Phase::Owners, None).is_none());
    }
}
