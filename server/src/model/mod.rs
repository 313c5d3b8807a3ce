//! Models: loading from the repository, per-version state, instances and statistics.
//!
//! Modules: [`backend`] picks the runtime; [`control`] is Triton's model control modes and the
//! repository poller; [`files`] keeps model files inside the repository; [`layout`] tells a
//! repository from one model's own directory (KServe's `storageUri`); [`load`] loads one
//! model's versions; [`registry`] holds every model's state; `reshape` is Triton's `reshape`
//! (the wire's shape around the model's own); [`stats`] the statistics extension;
//! [`warmup`] runs `model_warmup` samples before a model is READY.

mod backend;
pub mod control;
pub mod files;
pub mod layout;
mod load;
mod registry;
mod reshape;
pub mod stats;
mod warmup;

pub use load::{BatcherDefaults, LoadSettings};
pub use registry::{IndexEntry, Registry, VersionState};

use crate::config::ModelConfig;
use crate::stages::{Predictor, Stages};
use osprey_protocol::ModelSignature;
use stats::Stats;
use std::collections::HashMap;
use std::sync::Arc;

pub use backend::Backend;

/// One ready model version: its completed configuration, what requests must look like, the
/// stages around its predictor, and the predictor.
pub struct LoadedModel {
    pub name: String,
    pub version: u64,
    pub config: ModelConfig,
    /// What clients send and get back (after the stages).
    pub signature: ModelSignature,
    /// What the predictor takes and gives (the configuration's `input`/`output`).
    pub predictor_signature: ModelSignature,
    pub stages: Stages,
    pub predictor: Predictor,
    /// Labels per output, from `label_filename` (the classification extension).
    pub labels: HashMap<String, Vec<String>>,
    pub stats: Arc<Stats>,
    /// What one request may ask of it.
    pub limits: RequestLimits,
    /// The server's response cache, when the model's `response_cache` is enabled and the
    /// server has one (`--cache-config`).
    pub cache: Option<crate::cache::ModelCache>,
}

/// What one inference request may cost, server-wide.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RequestLimits {
    /// Most BYTES elements in one input (`--max-bytes-elements`); 0: no limit.
    pub max_bytes_elements: usize,
    /// How long one request may take, queue included (`--request-timeout-secs`).
    pub timeout: Option<std::time::Duration>,
}
