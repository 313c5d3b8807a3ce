//! The REST front end (KServe v2 with Triton's extensions) on axum.

mod error;
mod explain;
mod health;
pub use health::EXTENSIONS;
mod infer;
mod models;
mod repository;
pub mod serve;
mod trace;
mod v1;

use crate::access::{Access, Category, Denied};
use crate::error::ServerError;
use crate::state::AppState;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderValue};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use bytes::Bytes;
use http_body_util::{BodyExt, LengthLimitError, Limited};
use serde::Deserialize;
use std::sync::Arc;

/// `{model}` and, on the `/versions/{version}` routes, `{version}`.
#[derive(Debug, Deserialize)]
pub struct ModelPath {
    pub model: String,
    #[serde(default)]
    pub version: Option<String>,
}

/// The REST routes, under `access`'s rules (the public listener's or the admin listener's).
pub fn router(state: Arc<AppState>, access: Arc<Access>) -> Router {
    Router::new()
        .route("/v2", get(health::server_metadata))
        .route("/v2/health/live", get(health::live))
        .route("/v2/health/ready", get(health::ready))
        .route("/v2/models/stats", get(models::all_stats))
        .route("/v2/models/{model}", get(models::metadata))
        .route(
            "/v2/models/{model}/versions/{version}",
            get(models::metadata),
        )
        .route("/v2/models/{model}/ready", get(models::ready))
        .route(
            "/v2/models/{model}/versions/{version}/ready",
            get(models::ready),
        )
        .route("/v2/models/{model}/config", get(models::config))
        .route(
            "/v2/models/{model}/versions/{version}/config",
            get(models::config),
        )
        .route("/v2/models/{model}/stats", get(models::stats))
        .route(
            "/v2/models/{model}/versions/{version}/stats",
            get(models::stats),
        )
        .route("/v2/models/{model}/infer", post(infer::infer))
        .route(
            "/v2/models/{model}/versions/{version}/infer",
            post(infer::infer),
        )
        .route("/v2/models/{model}/explain", post(explain::explain_v2))
        .route(
            "/v2/models/{model}/versions/{version}/explain",
            post(explain::explain_v2),
        )
        .route("/v1/models/{spec}", post(v1::v1))
        .route(
            "/v2/trace/setting",
            get(trace::get_global).post(trace::post_global),
        )
        .route(
            "/v2/models/{model}/trace/setting",
            get(trace::get_model).post(trace::post_model),
        )
        .route("/v2/repository/index", post(repository::index))
        .route("/v2/repository/models/{model}/load", post(repository::load))
        .route(
            "/v2/repository/models/{model}/unload",
            post(repository::unload),
        )
        .fallback(not_found)
        .layer(axum::middleware::from_fn_with_state(
            (state.clone(), access),
            guard,
        ))
        .with_state(state)
}

/// Before any handler: the endpoint's restrictions and bearer token are checked (a refused
/// request's body is drained, not kept), then the whole body is read (bounded by
/// `--http-max-body-bytes`), so that an answer given early — 404, 503, 403 — leaves the
/// connection at the next request.
async fn guard(
    State((s, access)): State<(Arc<AppState>, Arc<Access>)>,
    req: Request,
    next: Next,
) -> Response {
    let (parts, body) = req.into_parts();
    if !access.is_open() {
        if let Some(category) = Category::of_rest_path(parts.uri.path()) {
            let header = |n: &str| parts.headers.get(n).and_then(|v| v.to_str().ok());
            if let Err(denied) = access.check(category, header) {
                // Refused before its body is kept: the body is only drained (bounded).
                let drained = drain(body, s.http_max_body).await;
                let unauthenticated = denied == Denied::Unauthenticated;
                let mut r = ServerError::from(denied).into_response();
                if unauthenticated {
                    r.headers_mut()
                        .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
                }
                if !drained {
                    r.headers_mut()
                        .insert(header::CONNECTION, HeaderValue::from_static("close"));
                }
                return r;
            }
        }
    }
    let started = std::time::Instant::now();
    let request_id = parts.headers.get(X_REQUEST_ID).cloned();
    let access = s
        .log_requests
        .then(|| (parts.method.clone(), parts.uri.path().to_string()));
    let bytes = match read_body(body, s.http_max_body).await {
        Ok(b) => b,
        Err(e) => {
            // The rest of the body is still on the wire: this connection cannot go on.
            let mut r = e.into_response();
            r.headers_mut()
                .insert(header::CONNECTION, HeaderValue::from_static("close"));
            return r;
        }
    };
    let mut response = next
        .run(Request::from_parts(parts, Body::from(bytes)))
        .await;
    if let Some((method, path)) = access {
        let id = request_id
            .as_ref()
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        tracing::info!(
            target: "osprey::access",
            protocol = "http",
            %method,
            path,
            status = response.status().as_u16(),
            duration_us = started.elapsed().as_micros() as u64,
            request_id = id,
            "request"
        );
    }
    // The caller's request id comes back on the answer.
    if let Some(id) = request_id {
        response.headers_mut().insert(X_REQUEST_ID, id);
    }
    response
}

/// The request id header a client or proxy sets; echoed on the answer and logged.
const X_REQUEST_ID: &str = "x-request-id";

async fn not_found(uri: axum::http::Uri) -> ServerError {
    ServerError::NoEndpoint(uri.path().to_string())
}

/// Reads and discards a body; false when it is longer than `limit` or broken (the connection
/// then cannot carry another request).
async fn drain(mut body: Body, limit: usize) -> bool {
    let mut seen = 0usize;
    while let Some(frame) = body.frame().await {
        match frame {
            Ok(f) => {
                seen = seen.saturating_add(f.data_ref().map_or(0, |d| d.len()));
                if seen > limit {
                    return false;
                }
            }
            Err(_) => return false,
        }
    }
    true
}

/// Reads a whole body, refusing more than `limit` bytes.
pub async fn read_body(body: Body, limit: usize) -> Result<Bytes, ServerError> {
    match Limited::new(body, limit).collect().await {
        Ok(c) => Ok(c.to_bytes()),
        Err(e) if e.downcast_ref::<LengthLimitError>().is_some() => {
            Err(ServerError::BodyTooLarge { limit })
        }
        Err(e) => Err(ServerError::BadRequest(format!(
            "could not read the request body: {e}"
        ))),
    }
}

/// Parses an optional JSON body (empty means the default).
pub fn optional_json<T: serde::de::DeserializeOwned + Default>(
    body: &[u8],
) -> Result<T, ServerError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    serde_json::from_slice(body)
        .map_err(|e| ServerError::BadRequest(format!("malformed JSON body: {e}")))
}
