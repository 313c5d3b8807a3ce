//! OTLP/HTTP with JSON encoding: spans are batched by a background task (at most
//! `batch_size` spans, or `delay` after the first waiting one) and POSTed as an
//! `ExportTraceServiceRequest`. A full queue drops new traces (counted); a failed export is
//! logged at warn at most once a minute.

use super::context::to_hex;
use super::span::{Span, Value};
use serde_json::{json, Value as Json};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot};

/// Spans exported, dropped (queue full) and failed (export refused or unreachable).
pub const EXPORTED: &str = "osprey_trace_spans_exported_total";
pub const DROPPED: &str = "osprey_trace_spans_dropped_total";
pub const FAILED: &str = "osprey_trace_spans_failed_total";

/// What the exporter task is sent.
pub enum Message {
    Spans(Vec<Span>),
    /// Send what is buffered, then answer.
    Flush(oneshot::Sender<()>),
}

/// Where and how spans go.
pub struct ExportSettings {
    pub url: String,
    pub resource: Vec<(String, String)>,
    pub batch_size: usize,
    pub delay: Duration,
}

/// Counts kept by the exporter (also exported as metrics).
#[derive(Default)]
pub struct Counts {
    pub exported: AtomicU64,
    pub dropped: AtomicU64,
    pub failed: AtomicU64,
}

/// The `ExportTraceServiceRequest` JSON of `spans`.
pub fn body(resource: &Json, spans: &[Span]) -> Json {
    json!({
        "resourceSpans": [{
            "resource": resource,
            "scopeSpans": [{
                "scope": { "name": "osprey", "version": env!("CARGO_PKG_VERSION") },
                "spans": spans.iter().map(span).collect::<Vec<_>>(),
            }],
        }],
    })
}

/// The resource's JSON.
pub fn resource(attributes: &[(String, String)]) -> Json {
    json!({
        "attributes": attributes
            .iter()
            .map(|(k, v)| json!({ "key": k, "value": { "stringValue": v } }))
            .collect::<Vec<_>>(),
    })
}

fn span(s: &Span) -> Json {
    let mut out = json!({
        "traceId": to_hex(&s.trace_id),
        "spanId": to_hex(&s.span_id),
        "name": s.name,
        "kind": s.kind as i32,
        "startTimeUnixNano": s.start_ns.to_string(),
        "endTimeUnixNano": s.end_ns.to_string(),
        "attributes": s.attributes.iter().map(|(k, v)| json!({
            "key": k,
            "value": match v {
                Value::Str(t) => json!({ "stringValue": t }),
                // int64 is a string in OTLP's JSON encoding.
                Value::Int(n) => json!({ "intValue": n.to_string() }),
            },
        })).collect::<Vec<_>>(),
        "status": match &s.error {
            None => json!({ "code": 1 }),
            Some(m) => json!({ "code": 2, "message": m }),
        },
    });
    if let (Some(p), Some(o)) = (s.parent, out.as_object_mut()) {
        o.insert("parentSpanId".into(), Json::String(to_hex(&p)));
    }
    out
}

/// The exporter task: owns the receiving end until every sender is gone.
pub async fn run(mut rx: mpsc::Receiver<Message>, settings: ExportSettings, counts: Arc<Counts>) {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap_or_default();
    let mut exporter = Exporter {
        client,
        resource: resource(&settings.resource),
        url: settings.url,
        counts,
        last_warning: None,
    };
    let mut buffer: Vec<Span> = Vec::new();
    let mut due: Option<tokio::time::Instant> = None;
    loop {
        let wait = async {
            match due {
                Some(at) => tokio::time::sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            message = rx.recv() => match message {
                Some(Message::Spans(spans)) => {
                    if buffer.is_empty() {
                        due = Some(tokio::time::Instant::now() + settings.delay);
                    }
                    buffer.extend(spans);
                    if buffer.len() >= settings.batch_size {
                        exporter.send_all(&mut buffer, settings.batch_size).await;
                        due = None;
                    }
                }
                Some(Message::Flush(done)) => {
                    exporter.send_all(&mut buffer, settings.batch_size).await;
                    due = None;
                    let _ = done.send(());
                }
                None => {
                    exporter.send_all(&mut buffer, settings.batch_size).await;
                    return;
                }
            },
            () = wait => {
                exporter.send_all(&mut buffer, settings.batch_size).await;
                due = None;
            }
        }
    }
}

struct Exporter {
    client: reqwest::Client,
    resource: Json,
    url: String,
    counts: Arc<Counts>,
    last_warning: Option<Instant>,
}

impl Exporter {
    /// Sends the buffer in batches of at most `batch_size` spans.
    async fn send_all(&mut self, buffer: &mut Vec<Span>, batch_size: usize) {
        while !buffer.is_empty() {
            let n = buffer.len().min(batch_size.max(1));
            let batch: Vec<Span> = buffer.drain(..n).collect();
            self.send(&batch).await;
        }
    }

    async fn send(&mut self, spans: &[Span]) {
        let n = spans.len() as u64;
        let result = self
            .client
            .post(&self.url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body(&self.resource, spans).to_string())
            .send()
            .await
            .and_then(reqwest::Response::error_for_status);
        match result {
            Ok(_) => {
                self.counts.exported.fetch_add(n, Ordering::Relaxed);
                metrics::counter!(EXPORTED).increment(n);
            }
            Err(e) => {
                self.counts.failed.fetch_add(n, Ordering::Relaxed);
                metrics::counter!(FAILED).increment(n);
                let quiet = self
                    .last_warning
                    .is_some_and(|t| t.elapsed() < Duration::from_secs(60));
                if !quiet {
                    self.last_warning = Some(Instant::now());
                    tracing::warn!(url = %self.url, spans = n, error = %e,
                        "could not export trace spans (OTLP/HTTP); warning again in a minute at the earliest");
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trace::span::Kind;

    #[test]
    fn spans_are_otlp_json() {
        let s = Span {
            trace_id: [1; 16],
            span_id: [2; 8],
            parent: Some([3; 8]),
            name: "m infer".into(),
            kind: Kind::Server,
            start_ns: 10,
            end_ns: 20,
            attributes: vec![("model_name", Value::Str("m".into())), ("n", Value::Int(7))],
            error: Some("bad".into()),
        };
        let b = body(&resource(&[("service.name".into(), "osprey".into())]), &[s]);
        let rs = &b["resourceSpans"][0];
        assert_eq!(
            rs["resource"]["attributes"][0],
            json!({"key": "service.name", "value": {"stringValue": "osprey"}})
        );
        let j = &rs["scopeSpans"][0]["spans"][0];
        assert_eq!(j["traceId"], "01".repeat(16));
        assert_eq!(j["spanId"], "02".repeat(8));
        assert_eq!(j["parentSpanId"], "03".repeat(8));
        assert_eq!(j["kind"], 2);
        assert_eq!(j["startTimeUnixNano"], "10");
        assert_eq!(j["endTimeUnixNano"], "20");
        assert_eq!(j["attributes"][1]["value"]["intValue"], "7");
        assert_eq!(j["status"], json!({"code": 2, "message": "bad"}));
    }
}
