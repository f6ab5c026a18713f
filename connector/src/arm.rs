//! Azure Resource Manager requests: URLs built from the configured `arm-url`, collection
//! pages, and the role each failed call would have needed.

use serde::de::DeserializeOwned;

use crate::config::Config;
use crate::contract::ConnectorError;
use crate::http::{ApiRequest, ApiResponse, encode_query};
use crate::paging::{Collection, checked_next_link};

pub const RESOURCES_API_VERSION: &str = "2022-12-01";
pub const RESOURCE_GROUPS_API_VERSION: &str = "2021-04-01";
pub const AUTHORIZATION_API_VERSION: &str = "2022-04-01";

pub struct Arm {
    base_url: String,
}

impl Arm {
    pub fn new(config: &Config) -> Self {
        Self { base_url: config.arm_url.clone() }
    }

    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// `{arm-url}{path}?api-version=..&{extra}`; `path` starts with `/`.
    pub fn url(&self, path: &str, api_version: &str, extra: &[(&str, &str)]) -> String {
        let mut query = vec![("api-version", api_version)];
        query.extend_from_slice(extra);
        format!("{}{path}{}", self.base_url, encode_query(&query))
    }

    pub fn collection<T: DeserializeOwned>(
        &self,
        url: String,
        missing_role: &str,
    ) -> Result<Collection<T>, ConnectorError> {
        let response = self.succeed(ApiRequest::get(url), missing_role)?;
        let page: Collection<T> = response.json()?;
        Ok(Collection {
            next_link: checked_next_link(page.next_link, &self.base_url, &response.call)?,
            value: page.value,
        })
    }

    /// Every page of a collection (role definitions and assignments of one scope).
    pub fn collection_all<T: DeserializeOwned>(
        &self,
        url: String,
        missing_role: &str,
    ) -> Result<Vec<T>, ConnectorError> {
        let mut items = Vec::new();
        let mut next = Some(url);
        while let Some(url) = next {
            let page = self.collection(url, missing_role)?;
            items.extend(page.value);
            next = page.next_link;
        }
        Ok(items)
    }

    pub fn send(&self, request: ApiRequest) -> Result<ApiResponse, ConnectorError> {
        request.send()
    }

    /// Sends a request; an unsuccessful answer becomes the error, naming `missing_role` on 403.
    pub fn succeed(&self, request: ApiRequest, missing_role: &str) -> Result<ApiResponse, ConnectorError> {
        let response = request.send()?;
        if response.is_success() { Ok(response) } else { Err(response.into_error(Some(missing_role.to_owned()))) }
    }
}
