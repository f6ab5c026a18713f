//! The connector's configuration: the keys declared in `metadata().config-fields`, parsed and
//! checked on every call (the component keeps no state, so every export receives it again).

use crate::contract::{ConfigKind, ConfigValue, ConnectorError};

pub const GRAPH_URL: &str = "graph-url";
pub const ARM_URL: &str = "arm-url";
pub const MAILBOX_SETTINGS: &str = "mailbox-settings";
pub const SKIP_AD_GROUPS: &str = "skip-ad-groups";
pub const PAGE_SIZE: &str = "page-size";
pub const RBAC_ROLE_CATALOGUE: &str = "rbac-role-catalogue";

pub const DEFAULT_GRAPH_URL: &str = "https://graph.microsoft.com";
pub const DEFAULT_ARM_URL: &str = "https://management.azure.com";
/// Graph's largest `$top` for directory collections.
const MAX_PAGE_SIZE: u16 = 999;

/// One configuration key: its kind and default, as metadata declares it.
pub struct FieldSpec {
    pub key: &'static str,
    pub kind: ConfigKind,
    pub default_value: &'static str,
    pub description: &'static str,
}

pub const FIELDS: [FieldSpec; 6] = [
    FieldSpec {
        key: GRAPH_URL,
        kind: ConfigKind::Url,
        default_value: DEFAULT_GRAPH_URL,
        description: "Microsoft Graph base URL, set by the host to where it binds the \"graph\" endpoint.",
    },
    FieldSpec {
        key: ARM_URL,
        kind: ConfigKind::Url,
        default_value: DEFAULT_ARM_URL,
        description: "Azure Resource Manager base URL, set by the host to where it binds the \"arm\" endpoint.",
    },
    FieldSpec {
        key: MAILBOX_SETTINGS,
        kind: ConfigKind::Boolean,
        default_value: "false",
        description: "Read each user's mailbox purpose (one request per user) to tell human from shared/room/equipment accounts.",
    },
    FieldSpec {
        key: SKIP_AD_GROUPS,
        kind: ConfigKind::Boolean,
        default_value: "false",
        description: "Leave out groups synchronised from on-premises Active Directory (group listing only; memberships are unaffected).",
    },
    FieldSpec {
        key: PAGE_SIZE,
        kind: ConfigKind::String,
        default_value: "999",
        description: "Items per Graph page ($top), an integer from 1 to 999.",
    },
    FieldSpec {
        key: RBAC_ROLE_CATALOGUE,
        kind: ConfigKind::String,
        default_value: "bounded",
        description: "Azure RBAC roles offered per subscription/resource group: 'bounded' (roles assigned at that scope plus Owner, Contributor, Reader, User Access Administrator) or 'all' (every role definition).",
    },
];

/// Which Azure RBAC roles become entitlements of a subscription or resource group.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RoleCatalogue {
    Bounded,
    All,
}

#[derive(Clone, Debug)]
pub struct Config {
    /// Without a trailing slash.
    pub graph_url: String,
    /// Without a trailing slash.
    pub arm_url: String,
    pub mailbox_settings: bool,
    pub skip_ad_groups: bool,
    pub page_size: u16,
    pub role_catalogue: RoleCatalogue,
}

impl Config {
    pub fn parse(values: &[ConfigValue]) -> Result<Self, ConnectorError> {
        for (index, value) in values.iter().enumerate() {
            if !FIELDS.iter().any(|field| field.key == value.key) {
                let known: Vec<&str> = FIELDS.iter().map(|field| field.key).collect();
                return Err(invalid(format!(
                    "unknown configuration key '{}': remove it (known keys: {})",
                    value.key,
                    known.join(", ")
                )));
            }
            if values[..index].iter().any(|earlier| earlier.key == value.key) {
                return Err(invalid(format!("configuration key '{}' is given twice: keep one value", value.key)));
            }
        }
        let lookup = |key: &str| -> &str {
            values
                .iter()
                .find(|value| value.key == key)
                .map(|value| value.value.as_str())
                .or_else(|| FIELDS.iter().find(|field| field.key == key).map(|field| field.default_value))
                .unwrap_or_default()
        };
        Ok(Self {
            graph_url: parse_base_url(GRAPH_URL, lookup(GRAPH_URL))?,
            arm_url: parse_base_url(ARM_URL, lookup(ARM_URL))?,
            mailbox_settings: parse_bool(MAILBOX_SETTINGS, lookup(MAILBOX_SETTINGS))?,
            skip_ad_groups: parse_bool(SKIP_AD_GROUPS, lookup(SKIP_AD_GROUPS))?,
            page_size: parse_page_size(lookup(PAGE_SIZE))?,
            role_catalogue: parse_role_catalogue(lookup(RBAC_ROLE_CATALOGUE))?,
        })
    }

    pub fn page_size_text(&self) -> String {
        self.page_size.to_string()
    }
}

fn invalid(message: String) -> ConnectorError {
    ConnectorError::InvalidConfig(message)
}

fn parse_bool(key: &str, value: &str) -> Result<bool, ConnectorError> {
    match value {
        "true" => Ok(true),
        "false" => Ok(false),
        other => Err(invalid(format!("'{key}' must be \"true\" or \"false\", not '{other}'"))),
    }
}

fn parse_page_size(value: &str) -> Result<u16, ConnectorError> {
    value.trim().parse::<u16>().ok().filter(|size| (1..=MAX_PAGE_SIZE).contains(size)).ok_or_else(|| {
        invalid(format!(
            "'{PAGE_SIZE}' must be an integer from 1 to {MAX_PAGE_SIZE} (Graph's $top range), not '{value}'"
        ))
    })
}

fn parse_role_catalogue(value: &str) -> Result<RoleCatalogue, ConnectorError> {
    match value {
        "bounded" => Ok(RoleCatalogue::Bounded),
        "all" => Ok(RoleCatalogue::All),
        other => Err(invalid(format!("'{RBAC_ROLE_CATALOGUE}' must be \"bounded\" or \"all\", not '{other}'"))),
    }
}

/// Accepts `http(s)://host[:port][/path]`, without user info, query or fragment, and returns
/// it without a trailing slash so paths can be appended.
fn parse_base_url(key: &str, value: &str) -> Result<String, ConnectorError> {
    let reject = |why: &str| {
        invalid(format!(
            "'{key}' = '{value}' is not a usable base URL ({why}): use http(s)://host[:port], e.g. {}",
            if key == GRAPH_URL { DEFAULT_GRAPH_URL } else { DEFAULT_ARM_URL }
        ))
    };
    let rest = value
        .strip_prefix("https://")
        .or_else(|| value.strip_prefix("http://"))
        .ok_or_else(|| reject("the scheme must be http or https"))?;
    if value.contains(['?', '#']) {
        return Err(reject("no query or fragment allowed"));
    }
    if value.chars().any(|character| character.is_whitespace() || character.is_control()) {
        return Err(reject("it contains whitespace"));
    }
    let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
    if authority.contains('@') {
        return Err(reject("no user info allowed"));
    }
    let (host, port) = split_host_port(authority).ok_or_else(|| reject("malformed host or port"))?;
    let host_is_valid = if let Some(ip6) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        !ip6.is_empty() && ip6.chars().all(|c| c.is_ascii_hexdigit() || c == ':' || c == '.')
    } else {
        !host.is_empty() && host.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.')
    };
    if !host_is_valid {
        return Err(reject("malformed host"));
    }
    if let Some(port) = port
        && !port.parse::<u16>().is_ok_and(|port| port > 0)
    {
        return Err(reject("the port must be a number from 1 to 65535"));
    }
    let path = path.trim_end_matches('/');
    let base = value.trim_end_matches('/');
    if path.split('/').any(|segment| segment == "..") {
        return Err(reject("no '..' in the path"));
    }
    Ok(base.to_owned())
}

fn split_host_port(authority: &str) -> Option<(&str, Option<&str>)> {
    if authority.starts_with('[') {
        let end = authority.find(']')?;
        let (host, after) = authority.split_at(end + 1);
        match after {
            "" => Some((host, None)),
            _ => after.strip_prefix(':').map(|port| (host, Some(port))),
        }
    } else {
        match authority.split_once(':') {
            Some((host, port)) => Some((host, Some(port))),
            None => Some((authority, None)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(pairs: &[(&str, &str)]) -> Result<Config, ConnectorError> {
        let values: Vec<ConfigValue> = pairs
            .iter()
            .map(|(key, value)| ConfigValue { key: (*key).to_owned(), value: (*value).to_owned() })
            .collect();
        Config::parse(&values)
    }

    fn rejected_naming(pairs: &[(&str, &str)], key: &str) -> bool {
        matches!(config(pairs), Err(ConnectorError::InvalidConfig(message)) if message.contains(key))
    }

    #[test]
    fn defaults_apply_when_nothing_is_set() {
        let parsed = config(&[]).expect("defaults are valid");
        assert_eq!(parsed.graph_url, DEFAULT_GRAPH_URL);
        assert_eq!(parsed.page_size, 999);
        assert_eq!(parsed.role_catalogue, RoleCatalogue::Bounded);
        assert!(!parsed.mailbox_settings);
    }

    #[test]
    fn base_url_loses_its_trailing_slash_and_keeps_its_port() {
        let parsed = config(&[(GRAPH_URL, "http://127.0.0.1:8080/")]).expect("valid");
        assert_eq!(parsed.graph_url, "http://127.0.0.1:8080");
    }

    #[test]
    fn invalid_values_are_refused_naming_the_key() {
        assert!(rejected_naming(&[("graph-domain", "x")], "graph-domain"));
        assert!(rejected_naming(&[(MAILBOX_SETTINGS, "yes")], MAILBOX_SETTINGS));
        assert!(rejected_naming(&[(PAGE_SIZE, "1000")], PAGE_SIZE));
        assert!(rejected_naming(&[(PAGE_SIZE, "0")], PAGE_SIZE));
        assert!(rejected_naming(&[(ARM_URL, "ftp://management.azure.com")], ARM_URL));
        assert!(rejected_naming(&[(ARM_URL, "https://management.azure.com?x=1")], ARM_URL));
        assert!(rejected_naming(&[(GRAPH_URL, "https://user@graph.microsoft.com")], GRAPH_URL));
        assert!(rejected_naming(&[(GRAPH_URL, "https://graph.microsoft.com:99999")], GRAPH_URL));
        assert!(rejected_naming(&[(RBAC_ROLE_CATALOGUE, "some")], RBAC_ROLE_CATALOGUE));
    }
}
