//! One traced request: the stamps taken while it runs ([`RequestTrace`]) and the spans they
//! become ([`Span`]). An untraced request's [`RequestTrace`] is `None` inside: every method is
//! then a branch and nothing else.

use super::context::{Parent, SpanId, TraceId};
use super::Tracer;
use crate::scheduler::Times;
use std::sync::Arc;
use std::time::Instant;

/// OTLP's span kinds used here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Internal = 1,
    Server = 2,
}

/// An attribute's value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Str(String),
    Int(i64),
}

/// A finished span, ready for export.
#[derive(Debug, Clone)]
pub struct Span {
    pub trace_id: TraceId,
    pub span_id: SpanId,
    pub parent: Option<SpanId>,
    pub name: String,
    pub kind: Kind,
    pub start_ns: u64,
    pub end_ns: u64,
    pub attributes: Vec<(&'static str, Value)>,
    /// None: OK; Some(message): ERROR.
    pub error: Option<String>,
}

/// What a sampled request has gathered so far.
pub struct Active {
    tracer: Arc<Tracer>,
    parent: Option<Parent>,
    start: Instant,
    protocol: &'static str,
    model: String,
    version: String,
    request_id: Option<String>,
    decode: Option<(Instant, Instant)>,
    queue: Option<(Instant, Instant)>,
    compute: Option<(Instant, Instant)>,
    encode: Option<(Instant, Instant)>,
}

/// A request's trace, or nothing when the request is not sampled.
#[derive(Default)]
pub struct RequestTrace(Option<Box<Active>>);

impl RequestTrace {
    /// No trace.
    pub fn off() -> RequestTrace {
        RequestTrace(None)
    }

    pub(super) fn sampled(
        tracer: Arc<Tracer>,
        model: &str,
        protocol: &'static str,
        parent: Option<Parent>,
    ) -> RequestTrace {
        RequestTrace(Some(Box::new(Active {
            tracer,
            parent,
            start: Instant::now(),
            protocol,
            model: model.to_string(),
            version: String::new(),
            request_id: None,
            decode: None,
            queue: None,
            compute: None,
            encode: None,
        })))
    }

    pub fn is_on(&self) -> bool {
        self.0.is_some()
    }

    /// The time now when traced (the start of a stage), else nothing.
    pub fn now(&self) -> Option<Instant> {
        self.0.as_ref().map(|_| Instant::now())
    }

    /// The model version and request id, once the request is decoded.
    pub fn request(&mut self, version: u64, id: Option<&str>) {
        if let Some(a) = &mut self.0 {
            a.version = version.to_string();
            a.request_id = id.map(str::to_string);
        }
    }

    /// Decoding ran from `since` (see [`RequestTrace::now`]) until now.
    pub fn decoded(&mut self, since: Option<Instant>) {
        if let (Some(a), Some(s)) = (&mut self.0, since) {
            a.decode = Some((s, Instant::now()));
        }
    }

    /// Encoding ran from `since` until now.
    pub fn encoded(&mut self, since: Option<Instant>) {
        if let (Some(a), Some(s)) = (&mut self.0, since) {
            a.encode = Some((s, Instant::now()));
        }
    }

    /// The scheduler's times of the request: queued until its batch started, then computed.
    pub fn executed(&mut self, times: &Times) {
        if let Some(a) = &mut self.0 {
            let queued = times
                .started
                .checked_sub(times.queue)
                .unwrap_or(times.started);
            a.queue = Some((queued, times.started));
            a.compute = Some((times.started, times.started + times.compute));
        }
    }

    /// Ends the trace (`error`: why the request failed) and hands its spans to the exporter.
    pub fn finish(self, error: Option<(&'static str, String)>) {
        let Some(a) = self.0 else { return };
        let end = Instant::now();
        let tracer = a.tracer.clone();
        tracer.export(a.spans(end, error));
    }
}

impl Active {
    fn spans(self, end: Instant, error: Option<(&'static str, String)>) -> Vec<Span> {
        let ids = &self.tracer.ids;
        let clock = &self.tracer.clock;
        let trace_id = self.parent.map_or_else(|| ids.trace(), |p| p.trace_id);
        let root = ids.span();
        let mut attributes = vec![
            ("model_name", Value::Str(self.model.clone())),
            ("model_version", Value::Str(self.version.clone())),
            ("protocol", Value::Str(self.protocol.to_string())),
            (
                "status",
                Value::Str(error.as_ref().map_or("OK", |e| e.0).to_string()),
            ),
        ];
        if let Some(id) = &self.request_id {
            attributes.push(("request_id", Value::Str(id.clone())));
        }
        let mut spans = Vec::with_capacity(5);
        spans.push(Span {
            trace_id,
            span_id: root,
            parent: self.parent.map(|p| p.span_id),
            name: format!("{} infer", self.model),
            kind: Kind::Server,
            start_ns: clock.unix_ns(self.start),
            end_ns: clock.unix_ns(end),
            attributes,
            error: error.map(|e| e.1),
        });
        for (name, stage) in [
            ("decode", self.decode),
            ("queue", self.queue),
            ("compute", self.compute),
            ("encode", self.encode),
        ] {
            let Some((s, e)) = stage else { continue };
            // A stage never reaches outside its request (the batch's compute may end after
            // this request's root started, never before).
            let (s, e) = (s.max(self.start), e.min(end));
            spans.push(Span {
                trace_id,
                span_id: ids.span(),
                parent: Some(root),
                name: name.to_string(),
                kind: Kind::Internal,
                start_ns: clock.unix_ns(s),
                end_ns: clock.unix_ns(e.max(s)),
                attributes: Vec::new(),
                error: None,
            });
        }
        spans
    }
}
