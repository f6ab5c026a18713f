//! Access tokens the login endpoint issued, and which API (audience) each one is for.

use std::collections::HashMap;
use std::sync::Mutex;

use crate::ids::random_u64;
use crate::server::lock;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Audience {
    Graph,
    Arm,
}

impl Audience {
    /// The resource URI a token for this audience is issued for (public cloud spelling).
    pub fn resource(self) -> &'static str {
        match self {
            Audience::Graph => "https://graph.microsoft.com",
            Audience::Arm => "https://management.azure.com",
        }
    }

    /// The audience of a `.default` scope, across the public and national clouds.
    pub fn of_scope(scope: &str) -> Option<Audience> {
        let resource = scope.strip_suffix("/.default")?;
        match resource.trim_end_matches('/') {
            "https://graph.microsoft.com"
            | "https://graph.microsoft.us"
            | "https://microsoftgraph.chinacloudapi.cn" => Some(Audience::Graph),
            "https://management.azure.com"
            | "https://management.usgovcloudapi.net"
            | "https://management.chinacloudapi.cn"
            | "https://management.core.windows.net" => Some(Audience::Arm),
            _ => None,
        }
    }
}

/// Why a bearer token was refused.
pub enum TokenProblem {
    Missing,
    Unknown,
    WrongAudience(Audience),
}

#[derive(Default)]
pub struct AccessTokens {
    issued: Mutex<HashMap<String, Audience>>,
}

impl AccessTokens {
    /// A new opaque token for `audience`.
    pub fn issue(&self, audience: Audience) -> String {
        let token = format!("fake.{:016x}{:016x}{:016x}", random_u64(), random_u64(), random_u64());
        lock(&self.issued).insert(token.clone(), audience);
        token
    }

    /// Checks an `Authorization` header value against the audience of the API that received it.
    pub fn check(&self, authorization: Option<&str>, expected: Audience) -> Result<(), TokenProblem> {
        let header = authorization.ok_or(TokenProblem::Missing)?;
        let token = match header.split_once(' ') {
            Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty() => token.trim(),
            _ => return Err(TokenProblem::Missing),
        };
        match lock(&self.issued).get(token) {
            None => Err(TokenProblem::Unknown),
            Some(audience) if *audience == expected => Ok(()),
            Some(audience) => Err(TokenProblem::WrongAudience(*audience)),
        }
    }
}
