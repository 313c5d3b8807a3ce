//! `POST /v2/models/{m}[/versions/{v}]/explain`: a v2 inference request in, attributions out
//! (KServe v1's `:explain` is in [`super::v1`]).

use super::{read_body, ModelPath};
use crate::explain::explain as run_explain;
use crate::state::AppState;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::Json;
use std::sync::Arc;

pub async fn explain_v2(
    State(s): State<Arc<AppState>>,
    Path(p): Path<ModelPath>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let run = async {
        let model = s.registry.get(&p.model, p.version.as_deref())?;
        let header_len = super::infer::header_length(&headers)?;
        let bytes = read_body(body, s.http_max_body).await?;
        let req = super::infer::decode(&model, bytes, header_len)?;
        run_explain(&model, req, s.explain_limits).await
    };
    match run.await {
        Ok(r) => Json(r).into_response(),
        Err(e) => e.into_response(),
    }
}
