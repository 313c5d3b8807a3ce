//! Shared server state: the registry plus what readiness and the front ends need.

use crate::access::Access;
use crate::explain::ExplainLimits;
use crate::model::Registry;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// What every front end shares.
pub struct AppState {
    pub registry: Arc<Registry>,
    /// Models loaded at start; readiness waits for all of them (Triton's strict readiness).
    pub startup_models: Vec<String>,
    pub strict_readiness: bool,
    /// Largest REST body accepted, in bytes.
    pub http_max_body: usize,
    /// Who may call what over REST and over gRPC.
    pub http_access: Access,
    pub grpc_access: Access,
    /// What one explanation may cost.
    pub explain_limits: ExplainLimits,
    /// Who may load and unload models (`--model-control-mode`).
    pub model_control: crate::model::control::ModelControl,
    /// One access log line per inference request (`--log-requests`).
    pub log_requests: bool,
    /// Which requests are traced, and where their spans go (`--trace-config`).
    pub tracer: Arc<crate::trace::Tracer>,
    shutting_down: AtomicBool,
}

impl AppState {
    pub fn new(
        registry: Arc<Registry>,
        startup_models: Vec<String>,
        strict_readiness: bool,
        http_max_body: usize,
        access: (Access, Access),
        explain_limits: ExplainLimits,
    ) -> AppState {
        AppState {
            registry,
            startup_models,
            strict_readiness,
            http_max_body,
            http_access: access.0,
            grpc_access: access.1,
            explain_limits,
            model_control: crate::model::control::ModelControl::Explicit,
            log_requests: false,
            tracer: crate::trace::Tracer::disabled(),
            shutting_down: AtomicBool::new(false),
        }
    }

    /// The server is live while it runs.
    pub fn live(&self) -> bool {
        true
    }

    /// Ready: not shutting down and, with strict readiness, every startup model ready.
    pub fn ready(&self) -> bool {
        !self.shutting_down.load(Ordering::Relaxed)
            && (!self.strict_readiness || self.registry.all_ready(&self.startup_models))
    }

    /// Marks the server as draining: readiness turns false at once.
    pub fn begin_shutdown(&self) {
        self.shutting_down.store(true, Ordering::Relaxed);
    }
}
