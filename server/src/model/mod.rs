//! Models: loading from the repository, per-version state, instances and statistics.

mod load;
mod registry;
pub mod stats;

pub use load::LoadSettings;
pub use registry::{IndexEntry, Registry, VersionState};

use crate::config::ModelConfig;
use crate::scheduler::Scheduler;
use osprey_protocol::ModelSignature;
use stats::Stats;
use std::sync::Arc;

/// One ready model version: its completed configuration, what requests must look like, and the
/// instances that run it.
pub struct LoadedModel {
    pub name: String,
    pub version: u64,
    pub config: ModelConfig,
    pub signature: ModelSignature,
    pub scheduler: Scheduler,
    pub stats: Arc<Stats>,
}
