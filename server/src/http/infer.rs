//! `POST /v2/models/{m}[/versions/{v}]/infer`: JSON, binary tensors, and raw binary requests.

use super::{read_body, ModelPath};
use crate::error::ServerError;
use crate::infer::{infer as run_inference, Prepared};
use crate::model::LoadedModel;
use crate::state::AppState;
use crate::trace::RequestTrace;
use axum::body::Body;
use axum::extract::{Path, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use osprey_protocol::rest::{self, HEADER_LENGTH};
use osprey_protocol::ProtocolError;
use std::sync::Arc;

pub(super) fn header_length(headers: &HeaderMap) -> Result<Option<usize>, ServerError> {
    let Some(v) = headers.get(HEADER_LENGTH) else {
        return Ok(None);
    };
    let text = v.to_str().unwrap_or("");
    text.trim().parse::<usize>().map(Some).map_err(|_| {
        ServerError::BadRequest(format!(
            "header Inference-Header-Content-Length: '{text}' is not a non-negative integer"
        ))
    })
}

/// Decodes a JSON or binary-extension body, refusing JSON tensor data of more strings than the
/// server takes (`--max-bytes-elements`) before they are all in memory.
pub(super) fn decode(
    model: &LoadedModel,
    bytes: bytes::Bytes,
    header_len: Option<usize>,
) -> Result<osprey_protocol::InferRequest, ProtocolError> {
    let max = match model.limits.max_bytes_elements {
        0 => usize::MAX,
        n => n,
    };
    osprey_protocol::json::with_string_limit(max, || rest::decode_request(bytes, header_len))
}

pub async fn infer(
    State(s): State<Arc<AppState>>,
    Path(p): Path<ModelPath>,
    req: Request,
) -> Response {
    // The request is taken whole: its headers are read in place, not copied out.
    let (parts, body) = req.into_parts();
    let http = crate::metrics::Protocol::Http;
    let traceparent = || parts.headers.get(TRACEPARENT).and_then(|v| v.to_str().ok());
    let mut trace = s.tracer.sample(&p.model, http, traceparent());
    let result = handle(&s, p, &parts.headers, body, &mut trace).await;
    trace.finish(
        result
            .as_ref()
            .err()
            .map(|e| (e.kind().label(), e.to_string())),
    );
    match result {
        Ok(r) => r,
        Err(e) => e.into_response(),
    }
}

/// W3C trace context: the caller's span, which a traced request's root joins.
const TRACEPARENT: &str = "traceparent";

async fn handle(
    s: &AppState,
    p: ModelPath,
    headers: &HeaderMap,
    body: Body,
    trace: &mut RequestTrace,
) -> Result<Response, ServerError> {
    let decoding = trace.now();
    let model = s.registry.get(&p.model, p.version.as_deref())?;
    trace.request(model.version, None);
    let header_len = header_length(headers)?;
    let bytes = read_body(body, s.http_max_body).await?;
    let http = crate::metrics::Protocol::Http;
    let prepared = (|| {
        let req = if header_len == Some(0) {
            let input = match model.signature.inputs.as_slice() {
                [only] => only,
                other => {
                    return Err(ProtocolError::RawRequestInputs {
                        model: model.name.clone(),
                        inputs: other.len(),
                    }
                    .into())
                }
            };
            rest::decode_raw_request(bytes, input, model.signature.max_batch_size > 0)?
        } else {
            decode(&model, bytes, header_len)?
        };
        Prepared::new(&model, req)
    })();
    let req = prepared.map_err(|e| crate::infer::refused(&model, http, e))?;
    trace.request(model.version, req.id.as_deref());
    trace.decoded(decoding);
    let (resp, outputs) = run_inference(&model, req, http, trace).await?;
    let encoding = trace.now();
    let encoded = rest::encode_response(&resp, |name| outputs.binary(name))?;
    let mut out = (StatusCode::OK, encoded.body).into_response();
    let h = out.headers_mut();
    match encoded.header_length {
        Some(len) => {
            h.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/octet-stream"),
            );
            h.insert(HEADER_LENGTH, HeaderValue::from(len));
        }
        None => {
            h.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
        }
    }
    trace.encoded(encoding);
    Ok(out)
}
