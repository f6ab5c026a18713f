//! Graph's error envelope: `{"error":{"code","message","innerError":{"date","request-id","client-request-id"}}}`.

use axum::http::StatusCode;
use serde_json::{Value, json};

use crate::ids::graph_date_now;

#[derive(Debug)]
pub struct GraphError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
}

impl GraphError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        GraphError { status, code, message: message.into() }
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        GraphError::new(StatusCode::BAD_REQUEST, "Request_BadRequest", message)
    }

    pub fn unsupported_query() -> Self {
        GraphError::new(StatusCode::BAD_REQUEST, "Request_UnsupportedQuery", "Unsupported Query.")
    }

    pub fn not_found(id: &str) -> Self {
        GraphError::new(
            StatusCode::NOT_FOUND,
            "Request_ResourceNotFound",
            format!("Resource '{id}' does not exist or one of its queried reference-property objects are not present."),
        )
    }

    /// A path the fake does not serve; Graph words unknown segments this way.
    pub fn unknown_segment(segment: &str) -> Self {
        GraphError::bad_request(format!("Resource not found for the segment '{segment}'."))
    }

    pub fn body(&self, request_id: &str, client_request_id: &str) -> Value {
        json!({
            "error": {
                "code": self.code,
                "message": self.message,
                "innerError": {
                    "date": graph_date_now(),
                    "request-id": request_id,
                    "client-request-id": client_request_id,
                }
            }
        })
    }
}

/// The body of a Graph 429, shaped like the published sample (string `code` and `status` inside).
pub fn throttled_body(request_id: &str, client_request_id: &str) -> Value {
    json!({
        "error": {
            "code": "TooManyRequests",
            "message": "Please retry again later.",
            "innerError": {
                "code": "429",
                "date": graph_date_now(),
                "message": "Please retry after",
                "request-id": request_id,
                "client-request-id": client_request_id,
                "status": "429",
            }
        }
    })
}
