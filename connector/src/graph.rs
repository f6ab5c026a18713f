//! Microsoft Graph (v1.0) requests: URLs built from the configured `graph-url`, collection
//! pages, and the permission each failed read or write would have needed.

use serde::de::DeserializeOwned;

use crate::config::Config;
use crate::contract::ConnectorError;
use crate::http::{ApiRequest, ApiResponse, encode_path_segment, encode_query};
use crate::paging::{Collection, checked_next_link};

pub struct Graph {
    base_url: String,
    page_size: String,
}

impl Graph {
    pub fn new(config: &Config) -> Self {
        Self { base_url: config.graph_url.clone(), page_size: config.page_size_text() }
    }

    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// The configured `$top`.
    pub fn page_size(&self) -> &str {
        &self.page_size
    }

    /// `{graph-url}/v1.0{path}?{query}`; `path` starts with `/` and its ids are already
    /// checked or encoded (see [`segment`]).
    pub fn url(&self, path: &str, query: &[(&str, &str)]) -> String {
        format!("{}/v1.0{path}{}", self.base_url, encode_query(query))
    }

    /// The `@odata.id` that references a directory object in `$ref` bodies.
    pub fn directory_object_ref(&self, object_id: &str) -> String {
        format!("{}/v1.0/directoryObjects/{}", self.base_url, segment(object_id))
    }

    /// One page of a collection; `url` is either built by [`Graph::url`] or a nextLink.
    pub fn collection<T: DeserializeOwned>(
        &self,
        url: String,
        advanced_query: bool,
        permission: &str,
    ) -> Result<Collection<T>, ConnectorError> {
        let mut request = ApiRequest::get(url);
        if advanced_query {
            request = request.with_eventual_consistency();
        }
        let response = self.succeed(request, permission)?;
        let page: Collection<T> = response.json()?;
        Ok(Collection {
            next_link: checked_next_link(page.next_link, &self.base_url, &response.call)?,
            value: page.value,
        })
    }

    /// Every page of a collection, for provisioning look-ups that must see all of it.
    pub fn collection_all<T: DeserializeOwned>(&self, url: String, permission: &str) -> Result<Vec<T>, ConnectorError> {
        let mut items = Vec::new();
        let mut next = Some(url);
        while let Some(url) = next {
            let page = self.collection(url, false, permission)?;
            items.extend(page.value);
            next = page.next_link;
        }
        Ok(items)
    }

    pub fn object<T: DeserializeOwned>(&self, url: String, permission: &str) -> Result<T, ConnectorError> {
        self.succeed(ApiRequest::get(url), permission)?.json()
    }

    /// Sends a request and returns the response whatever its status, for callers that treat
    /// some errors as outcomes (404 on remove = already revoked).
    pub fn send(&self, request: ApiRequest) -> Result<ApiResponse, ConnectorError> {
        request.send()
    }

    /// Sends a request; an unsuccessful answer becomes the error, naming `permission` on 403.
    pub fn succeed(&self, request: ApiRequest, permission: &str) -> Result<ApiResponse, ConnectorError> {
        let response = request.send()?;
        if response.is_success() { Ok(response) } else { Err(response.into_error(Some(permission.to_owned()))) }
    }
}

/// An id as a path segment.
pub fn segment(id: &str) -> String {
    encode_path_segment(id)
}

/// Graph's answer to adding a reference or assignment that exists: 400 "One or more added
/// object references already exist", "Permission being assigned already exists",
/// or PIM's `RoleAssignmentExists`.
pub fn is_already_exists(response: &ApiResponse) -> bool {
    if response.status != 400 && response.status != 409 {
        return false;
    }
    let error = response.upstream_error();
    let message = error.message.to_ascii_lowercase();
    error.code.eq_ignore_ascii_case("RoleAssignmentExists")
        || message.contains("already exist")
        || message.contains("conflicting object")
}
