//! Models: loading from the repository, per-version state, instances and statistics.

mod backend;
mod load;
mod registry;
pub mod stats;

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
}
