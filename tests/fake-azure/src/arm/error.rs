//! ARM's error envelope `{"error":{"code","message"}}` and the api-version check every route makes.

use axum::http::StatusCode;
use serde_json::{Value, json};

use crate::request::ApiRequest;

#[derive(Debug)]
pub struct ArmError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
}

impl ArmError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ArmError { status, code, message: message.into() }
    }

    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        ArmError::new(StatusCode::BAD_REQUEST, code, message)
    }

    pub fn subscription_not_found(id: &str) -> Self {
        ArmError::new(
            StatusCode::NOT_FOUND,
            "SubscriptionNotFound",
            format!("The subscription '{id}' could not be found."),
        )
    }

    pub fn resource_group_not_found(name: &str) -> Self {
        ArmError::new(
            StatusCode::NOT_FOUND,
            "ResourceGroupNotFound",
            format!("Resource group '{name}' could not be found."),
        )
    }

    pub fn body(&self) -> Value {
        json!({ "error": { "code": self.code, "message": self.message } })
    }
}

/// Resource providers reject a missing or unknown `api-version` before doing anything else.
pub fn check_api_version(request: &ApiRequest, supported: &[&str]) -> Result<(), ArmError> {
    match request.query.get("api-version").map(str::trim) {
        None | Some("") => Err(ArmError::bad_request(
            "MissingApiVersionParameter",
            "The api-version query parameter (?api-version=) is required for all requests.",
        )),
        Some(version) if supported.contains(&version) => Ok(()),
        Some(version) => Err(ArmError::bad_request(
            "InvalidApiVersionParameter",
            format!("The api-version '{version}' is invalid. The supported versions are '{}'.", supported.join(",")),
        )),
    }
}
