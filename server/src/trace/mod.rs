//! OpenTelemetry traces of inference requests, exported over OTLP/HTTP as JSON (Triton's
//! `--trace-config mode=opentelemetry`).
//!
//! A sampled request (one in `rate` while the level is TIMESTAMPS) gets a root span
//! `<model> infer` and children `decode`, `queue`, `compute` and `encode`, timed with the
//! `Instant`s the statistics already take. A W3C `traceparent` makes the root a child of the
//! caller's span.
//!
//! - [`config`] reads `--trace-config`.
//! - [`settings`] is what a request reads to decide, and Triton's trace setting API.
//! - [`context`] makes ids, reads `traceparent`, and gives wall-clock times.
//! - [`span`] is one request's trace.
//! - [`export`] is the batching OTLP/HTTP exporter task.

pub mod config;
pub mod context;
pub mod export;
pub mod settings;
pub mod span;

use config::TraceConfig;
use context::{parse_traceparent, Clock, Ids};
use export::{Counts, ExportSettings, Message};
use settings::{Live, Overrides, Settings, Update};
pub use span::RequestTrace;
use span::Span;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;
use tokio::sync::mpsc;

/// A model's own settings and sampling state.
struct ModelTrace {
    overrides: Overrides,
    live: Live,
}

/// Decides which requests are traced and hands their spans to the exporter.
pub struct Tracer {
    global: Live,
    /// The start-up settings (a POSTed `null` restores them).
    initial: Settings,
    /// Models with settings of their own; looked at only while `has_models`.
    models: RwLock<HashMap<String, ModelTrace>>,
    has_models: AtomicBool,
    tx: Option<mpsc::Sender<Message>>,
    counts: Arc<Counts>,
    pub(crate) ids: Ids,
    pub(crate) clock: Clock,
}

impl Tracer {
    /// A tracer that never traces and exports nothing.
    pub fn disabled() -> Arc<Tracer> {
        Tracer::new(&TraceConfig::default(), None)
    }

    /// The tracer of `config`, with its exporter task (started even while the level is OFF:
    /// the trace setting API can turn tracing on).
    pub fn start(config: &TraceConfig) -> Arc<Tracer> {
        let (tx, rx) = mpsc::channel(config.queue_size.max(1));
        let tracer = Tracer::new(config, Some(tx));
        tokio::spawn(export::run(
            rx,
            ExportSettings {
                url: config.url.clone(),
                resource: config.resource.clone(),
                batch_size: config.batch_size,
                delay: config.delay,
            },
            tracer.counts.clone(),
        ));
        tracer
    }

    fn new(config: &TraceConfig, tx: Option<mpsc::Sender<Message>>) -> Arc<Tracer> {
        let initial = Settings {
            enabled: config.enabled,
            rate: config.rate,
            count: config.count,
            log_frequency: config.log_frequency,
        };
        Arc::new(Tracer {
            global: Live::new(initial),
            initial,
            models: RwLock::new(HashMap::new()),
            has_models: AtomicBool::new(false),
            tx,
            counts: Arc::default(),
            ids: Ids::new(),
            clock: Clock::now(),
        })
    }

    /// Whether a request for `model` arriving over `protocol` is traced; its trace starts now.
    /// An untraced request costs an atomic load or two and a counter increment.
    pub fn sample(
        self: &Arc<Self>,
        model: &str,
        protocol: crate::metrics::Protocol,
        traceparent: Option<&str>,
    ) -> RequestTrace {
        if self.tx.is_none() || !self.decide(model) {
            return RequestTrace::off();
        }
        let parent = traceparent.and_then(parse_traceparent);
        RequestTrace::sampled(self.clone(), model, protocol.label(), parent)
    }

    fn decide(&self, model: &str) -> bool {
        if self.has_models.load(Ordering::Relaxed) {
            let models = self.models.read().unwrap_or_else(|p| p.into_inner());
            if let Some(m) = models.get(model) {
                return m.live.sample();
            }
        }
        self.global.sample()
    }

    /// Queues a finished trace's spans; a full queue drops them (counted), never waits.
    pub(crate) fn export(&self, spans: Vec<Span>) {
        let Some(tx) = &self.tx else { return };
        let n = spans.len() as u64;
        if tx.try_send(Message::Spans(spans)).is_err() {
            self.counts.dropped.fetch_add(n, Ordering::Relaxed);
            metrics::counter!(export::DROPPED).increment(n);
        }
    }

    /// The settings in force for `model`, or the server's.
    pub fn settings(&self, model: Option<&str>) -> Settings {
        let global = self.global.get();
        let Some(model) = model else { return global };
        let models = self.models.read().unwrap_or_else(|p| p.into_inner());
        models.get(model).map_or(global, |m| m.live.get())
    }

    /// Applies a POSTed change to `model`'s settings or the server's; returns the new ones.
    pub fn update(&self, model: Option<&str>, u: Update) -> Settings {
        let mut models = self.models.write().unwrap_or_else(|p| p.into_inner());
        match model {
            None => {
                let s = settings::update_global(self.global.get(), self.initial, u);
                self.global.set(s);
                for m in models.values() {
                    m.live.set(m.overrides.over(s));
                }
                s
            }
            Some(name) => {
                let global = self.global.get();
                let overrides = models
                    .get(name)
                    .map_or_else(Overrides::default, |m| m.overrides)
                    .apply(u);
                let s = overrides.over(global);
                if overrides.is_empty() {
                    models.remove(name);
                } else if let Some(m) = models.get_mut(name) {
                    m.overrides = overrides;
                    m.live.set(s);
                } else {
                    models.insert(
                        name.to_string(),
                        ModelTrace {
                            overrides,
                            live: Live::new(s),
                        },
                    );
                }
                self.has_models.store(!models.is_empty(), Ordering::Relaxed);
                s
            }
        }
    }

    /// Spans exported, dropped and failed so far.
    pub fn counts(&self) -> &Counts {
        &self.counts
    }

    /// Sends what is buffered, waiting at most `limit` (at shutdown).
    pub async fn flush(&self, limit: Duration) {
        let Some(tx) = &self.tx else { return };
        let (done, wait) = tokio::sync::oneshot::channel();
        let flushed = tokio::time::timeout(limit, async {
            if tx.send(Message::Flush(done)).await.is_ok() {
                let _ = wait.await;
            }
        })
        .await;
        if flushed.is_err() {
            tracing::warn!(
                limit_ms = limit.as_millis() as u64,
                "trace spans still unsent at shutdown were dropped"
            );
        }
    }
}
