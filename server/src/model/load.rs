//! Loading one model's versions from the repository (blocking: call from a blocking thread).

use super::stats::Stats;
use super::LoadedModel;
use crate::config::{self, ModelConfig};
use crate::scheduler::{BatchPolicy, Scheduler};
use osprey_runtimes::onnx::OnnxEnvironment;
use osprey_runtimes::{LoadOptions, Runtime};
use std::path::Path;
use std::sync::Arc;

/// Server-wide settings that shape how models load.
#[derive(Debug, Clone)]
pub struct LoadSettings {
    /// Intra-op threads per instance unless the model's `intra_op_thread_count` parameter says
    /// otherwise; 0 lets ONNX Runtime choose.
    pub intra_op_threads: usize,
    /// `max_batch_size` given to models without a configuration that can batch.
    pub default_max_batch_size: i32,
    /// Requests that may wait per instance when the model's queue policy sets no
    /// `max_queue_size`.
    pub queue_per_instance: usize,
}

/// Reads a model's configuration (or starts from an empty one) and decides its versions.
pub fn plan(model_dir: &Path, name: &str) -> Result<(ModelConfig, Vec<u64>), String> {
    let pbtxt = model_dir.join("config.pbtxt");
    let mut cfg = if pbtxt.is_file() {
        let text = std::fs::read_to_string(&pbtxt)
            .map_err(|e| format!("cannot read {}: {e}", pbtxt.display()))?;
        config::parse_pbtxt(&text).map_err(|e| e.to_string())?
    } else {
        config::default_config(name)
    };
    if cfg.name.is_empty() {
        cfg.name = name.to_string();
    } else if cfg.name != name {
        return Err(format!(
            "config.pbtxt names the model '{}' but its directory is '{name}'",
            cfg.name
        ));
    }
    let file = model_file(&cfg);
    let available = config::versions_on_disk(model_dir, &file);
    if available.is_empty() {
        return Err(format!(
            "no version directory in {} holds {file}",
            model_dir.display()
        ));
    }
    let versions = config::select_versions(&cfg, &available);
    if versions.is_empty() {
        return Err(format!(
            "the version policy selects none of the versions on disk {available:?}"
        ));
    }
    Ok((cfg, versions))
}

fn model_file(cfg: &ModelConfig) -> String {
    if cfg.default_model_filename.is_empty() {
        "model.onnx".to_string()
    } else {
        cfg.default_model_filename.clone()
    }
}

fn intra_threads(cfg: &ModelConfig, settings: &LoadSettings) -> Result<usize, String> {
    match cfg.parameters.get("intra_op_thread_count") {
        Some(p) => p.string_value.parse().map_err(|_| {
            format!(
                "parameter intra_op_thread_count '{}' is not a number",
                p.string_value
            )
        }),
        None => Ok(settings.intra_op_threads),
    }
}

/// Loads one version: every instance, then completes and checks the configuration.
pub fn load_version(
    env: &OnnxEnvironment,
    model_dir: &Path,
    base: &ModelConfig,
    version: u64,
    settings: &LoadSettings,
    handle: &tokio::runtime::Handle,
) -> Result<LoadedModel, String> {
    let mut cfg = base.clone();
    let path = model_dir.join(version.to_string()).join(model_file(&cfg));
    let opts = LoadOptions {
        intra_op_threads: intra_threads(&cfg, settings)?,
    };
    let count: i32 = cfg
        .instance_group
        .iter()
        .map(|g| g.count.max(1))
        .sum::<i32>()
        .max(1);
    let mut runtimes: Vec<Box<dyn Runtime>> = Vec::with_capacity(count as usize);
    for _ in 0..count {
        runtimes.push(Box::new(env.load(&path, &opts).map_err(|e| e.to_string())?));
    }
    let first = runtimes.first().ok_or("no instance")?;
    config::complete(
        &mut cfg,
        first.inputs(),
        first.outputs(),
        settings.default_max_batch_size,
    )
    .map_err(|e| e.to_string())?;
    let signature = config::signature(&cfg);
    let stats = Arc::new(Stats::default());
    let policy = BatchPolicy::from_config(&cfg, settings.queue_per_instance * count as usize);
    let scheduler = Scheduler::start(
        &cfg.name,
        &version.to_string(),
        runtimes,
        policy,
        stats.clone(),
        handle,
    );
    Ok(LoadedModel {
        name: cfg.name.clone(),
        version,
        config: cfg,
        signature,
        scheduler,
        stats,
    })
}
