//! Errors as HTTP responses: `{"error": "..."}` with the status from [`ServerError::http_status`].

use crate::error::ServerError;
use axum::response::{IntoResponse, Response};
use axum::Json;

impl IntoResponse for ServerError {
    fn into_response(self) -> Response {
        let status = self.http_status();
        if status.is_server_error() {
            tracing::warn!(error = %self, "request failed");
        } else {
            tracing::debug!(error = %self, "request rejected");
        }
        (
            status,
            Json(serde_json::json!({ "error": self.to_string() })),
        )
            .into_response()
    }
}
