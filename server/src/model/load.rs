//! Loading one model's versions from the repository (blocking: call from a blocking thread).

use super::backend::Backend;
use super::files::{self, ModelFiles};
use super::reshape::Reshapes;
use super::stats::Stats;
use super::LoadedModel;
use super::Registry;
use crate::cache::{ModelCache, ResponseCache};
use crate::config::{self, ModelConfig};
use crate::ensemble::{plan::Plan, Ensemble};
use crate::metrics::{MetricsConfig, ModelMetrics};
use crate::scheduler::{BatchPolicy, Scheduler};
use crate::stages::labels::read_labels;
use crate::stages::{Predictor, RemoteClient, Stages};
use osprey_protocol::grpc::inference::model_instance_group::Kind;
use osprey_runtimes::candle::BertEncoder;
use osprey_runtimes::onnx::OnnxEnvironment;
use osprey_runtimes::Accelerator;
use osprey_runtimes::{LoadOptions, Runtime};
use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};

/// KServe's batcher as server-wide defaults (`--batcher-*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatcherDefaults {
    pub max_latency: std::time::Duration,
    pub max_batch_size: Option<i32>,
}

/// Turns on dynamic batching for a completed configuration that can batch and sets none.
pub fn apply_batcher(cfg: &mut ModelConfig, batcher: Option<BatcherDefaults>) {
    use osprey_protocol::grpc::inference::model_config::SchedulingChoice;
    use osprey_protocol::grpc::inference::ModelDynamicBatching;
    let Some(b) = batcher else { return };
    if cfg.max_batch_size <= 0 || cfg.scheduling_choice.is_some() {
        return;
    }
    if let Some(n) = b.max_batch_size.filter(|&n| n > 0) {
        cfg.max_batch_size = cfg.max_batch_size.min(n);
    }
    cfg.scheduling_choice = Some(SchedulingChoice::DynamicBatching(ModelDynamicBatching {
        max_queue_delay_microseconds: b.max_latency.as_micros() as u64,
        ..Default::default()
    }));
}

/// Server-wide settings that shape how models load.
#[derive(Debug, Clone, Default)]
pub struct LoadSettings {
    /// Intra-op threads per instance unless the model's `intra_op_thread_count` parameter says
    /// otherwise; 0: [`auto_intra_threads`].
    pub intra_op_threads: usize,
    /// Whether ONNX Runtime's idle intra-op threads spin (`--intra-op-spinning`).
    pub intra_op_spinning: bool,
    /// `max_batch_size` given to models without a configuration that can batch.
    pub default_max_batch_size: i32,
    /// Requests that may wait per instance when the model's queue policy sets no
    /// `max_queue_size`.
    pub queue_per_instance: usize,
    /// Dynamic batching for models whose configuration sets none (`--batcher-*`).
    pub batcher: Option<BatcherDefaults>,
    /// Whether model files may be symlinks to outside their model's directory
    /// (`--model-symlinks`).
    pub model_symlinks: bool,
    /// Most instances one model may start (`--max-instances-per-model`); 0: no limit.
    pub max_instances: usize,
    /// What one request may cost.
    pub limits: super::RequestLimits,
    /// The server's response cache (`--cache-config`), for models that enable it.
    pub cache: Option<Arc<ResponseCache>>,
    /// Which latency series the models export (`--metrics-config`).
    pub metrics: MetricsConfig,
}

/// Reads a model's configuration (`given`, as a load request's `config` parameter carries it,
/// else config.pbtxt, else an empty one) and decides its versions.
pub fn plan(
    files: &mut ModelFiles,
    name: &str,
    given: Option<ModelConfig>,
) -> Result<(ModelConfig, Vec<u64>), String> {
    let model_dir = files.dir();
    let pbtxt = model_dir.join("config.pbtxt");
    let mut cfg = if let Some(cfg) = given {
        cfg
    } else if pbtxt.is_file() {
        let path = files.find("configuration", "config.pbtxt", &[""])?;
        let text = std::fs::read_to_string(&path).map_err(|e| {
            format!(
                "cannot read {}: {}",
                files.shown(Path::new("config.pbtxt")),
                e.kind()
            )
        })?;
        config::parse_pbtxt(&text).map_err(|e| e.to_string())?
    } else {
        config::default_config(name)
    };
    config::refuse_unsupported(&cfg)?;
    if cfg.name.is_empty() || files.is_single() {
        // A one-model directory is served under the name it was given (KServe: the
        // InferenceService's), whatever its config.pbtxt calls it.
        cfg.name = name.to_string();
    } else if cfg.name != name {
        return Err(format!(
            "config.pbtxt names the model '{}' but its directory is '{name}'",
            cfg.name
        ));
    }
    let Some(file) = Backend::of(&cfg)?.model_file(&cfg) else {
        // A remote predictor has no files: one version, 1.
        return Ok((cfg, vec![1]));
    };
    files::check_relative("default_model_filename", &file)?;
    let mut available = config::versions_on_disk(model_dir, &file);
    if available.is_empty() && files.is_single() && model_dir.join(&file).is_file() {
        // KServe's layout: the model file at the root of the model's directory is version 1.
        files.set_flat();
        available.push(1);
    }
    if available.is_empty() {
        return Err(format!(
            "no version directory in {} holds {file}",
            files.shown(Path::new(""))
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

/// The default intra-op threads of each of `instances` instances on a machine of `cores` cores:
/// one core is left to the front ends (network, decoding, batching) and the rest is shared
/// among the instances, at least one thread each, so that instances × threads never exceeds the
/// cores (beyond one thread per instance when instances outnumber them).
pub fn auto_intra_threads(cores: usize, instances: usize) -> usize {
    (cores.saturating_sub(1) / instances.max(1)).max(1)
}

fn intra_threads(
    cfg: &ModelConfig,
    settings: &LoadSettings,
    instances: usize,
) -> Result<usize, String> {
    match cfg.parameters.get("intra_op_thread_count") {
        Some(p) => p.string_value.trim().parse().map_err(|_| {
            format!(
                "parameter intra_op_thread_count '{}' is not a number",
                p.string_value
            )
        }),
        None if settings.intra_op_threads > 0 => Ok(settings.intra_op_threads),
        None => {
            let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
            Ok(auto_intra_threads(cores, instances))
        }
    }
}

/// One accelerator per instance, from the instance groups (`KIND_GPU` spreads over `gpus`,
/// GPU 0 when none are listed). More than `max` instances (0: no limit) is refused before any
/// starts.
fn accelerators(cfg: &ModelConfig, max: usize) -> Result<Vec<Accelerator>, String> {
    let total: usize = cfg
        .instance_group
        .iter()
        .map(|g| g.count.max(1) as usize)
        .sum();
    if max > 0 && total > max {
        return Err(format!(
            "instance_group asks for {total} instances; this server starts at most {max} per \
             model (--max-instances-per-model)"
        ));
    }
    let mut out = Vec::new();
    for (n, g) in cfg.instance_group.iter().enumerate() {
        let ordinals = g
            .gpus
            .iter()
            .map(|&o| {
                usize::try_from(o).map_err(|_| {
                    format!("instance_group[{n}].gpus: {o} is not a GPU index (0, 1, ...)")
                })
            })
            .collect::<Result<Vec<usize>, String>>()?;
        if g.kind == Kind::Cpu as i32 && !ordinals.is_empty() {
            return Err(format!(
                "instance_group[{n}].gpus is set on a KIND_CPU group; use KIND_GPU"
            ));
        }
        // KIND_AUTO runs on the CPU unless it names GPUs.
        let gpu = g.kind == Kind::Gpu as i32 || !ordinals.is_empty();
        for i in 0..g.count.max(1) as usize {
            out.push(if gpu {
                let ordinal = match ordinals.as_slice() {
                    [] => 0,
                    list => list.get(i % list.len()).copied().unwrap_or(0),
                };
                Accelerator::Cuda(ordinal)
            } else {
                Accelerator::Cpu
            });
        }
    }
    if out.is_empty() {
        out.push(Accelerator::Cpu);
    }
    Ok(out)
}

/// Stops a load between two instances once an unload asked for it.
fn check_cancel(cancel: &AtomicBool) -> Result<(), String> {
    if cancel.load(Ordering::Relaxed) {
        Err("load cancelled by an unload".into())
    } else {
        Ok(())
    }
}

fn load_runtimes(
    backend: Backend,
    env: &OnnxEnvironment,
    files: &ModelFiles,
    version: u64,
    cfg: &ModelConfig,
    settings: &LoadSettings,
    cancel: &AtomicBool,
) -> Result<Vec<Box<dyn Runtime>>, String> {
    let sub = files.version_dir(version);
    files.check_tree(&sub)?;
    let version_dir = files.dir().join(&sub);
    let reshapes = Reshapes::of(cfg)?;
    let mut runtimes: Vec<Box<dyn Runtime>> = Vec::new();
    match backend {
        Backend::Onnx => {
            let file = backend.model_file(cfg).unwrap_or_default();
            let path = files.find("default_model_filename", &file, &[&sub])?;
            let accels = accelerators(cfg, settings.max_instances)?;
            let cpu_instances = accels.iter().filter(|a| **a == Accelerator::Cpu).count();
            let mut opts = LoadOptions {
                intra_op_threads: intra_threads(cfg, settings, cpu_instances.max(1))?,
                intra_op_spinning: settings.intra_op_spinning,
                device: Accelerator::Cpu,
            };
            for accel in accels {
                check_cancel(cancel)?;
                opts.device = accel;
                let runtime = Box::new(env.load(&path, &opts).map_err(|e| e.to_string())?);
                runtimes.push(reshapes.wrap(runtime)?);
            }
        }
        Backend::Candle => {
            for accel in accelerators(cfg, settings.max_instances)? {
                check_cancel(cancel)?;
                let runtime =
                    Box::new(BertEncoder::load(&version_dir, &accel).map_err(|e| e.to_string())?);
                runtimes.push(reshapes.wrap(runtime)?);
            }
        }
        Backend::Remote | Backend::Ensemble => {}
    }
    Ok(runtimes)
}

/// Checks each ensemble step's maps against its model, when that model is loaded (a step model
/// not loaded yet is checked when a request reaches it).
fn check_steps(plan: &Plan, registry: &Registry) -> Result<(), String> {
    for step in &plan.steps {
        let Ok(model) = registry.get(&step.model, step.version.as_deref()) else {
            continue;
        };
        let names = |specs: &[osprey_protocol::TensorSpec]| -> Vec<String> {
            specs.iter().map(|s| s.name.clone()).collect()
        };
        let (ins, outs) = (
            names(&model.signature.inputs),
            names(&model.signature.outputs),
        );
        if let Some(i) = step.inputs.keys().find(|i| !ins.contains(i)) {
            return Err(format!(
                "ensemble_scheduling: {}: input_map names '{i}', which is not an input of the \
                 model (it has {ins:?})",
                step.label()
            ));
        }
        if let Some(o) = step.outputs.keys().find(|o| !outs.contains(o)) {
            return Err(format!(
                "ensemble_scheduling: {}: output_map names '{o}', which is not an output of the \
                 model (it has {outs:?})",
                step.label()
            ));
        }
    }
    Ok(())
}

/// Version `version`'s share of the server's response cache: when its configuration enables
/// `response_cache` and the server has a cache. Without one the model loads and is not cached,
/// as in Triton, with a warning.
fn response_cache(
    cfg: &ModelConfig,
    version: u64,
    cache: Option<&Arc<ResponseCache>>,
) -> Option<ModelCache> {
    if !cfg.response_cache.as_ref().is_some_and(|c| c.enable) {
        return None;
    }
    match cache {
        Some(c) => Some(ModelCache::new(c.clone(), &cfg.name, &version.to_string())),
        None => {
            tracing::warn!(
                model = %cfg.name,
                version,
                "model '{}' enables response_cache but the server has no cache \
                 (--cache-config local,size=N): its answers are not cached",
                cfg.name
            );
            None
        }
    }
}

/// Loads one version: its predictor (every local instance, or the remote client), then
/// completes and checks the configuration and builds the stages around the predictor.
pub fn load_version(
    env: &OnnxEnvironment,
    files: &ModelFiles,
    base: &ModelConfig,
    version: u64,
    settings: &LoadSettings,
    cancel: &AtomicBool,
    models: &Weak<Registry>,
) -> Result<LoadedModel, String> {
    let mut cfg = base.clone();
    let backend = Backend::of(&cfg)?;
    let stats = Arc::new(Stats::default());
    // Whether [`response_cache`] will give this version a cache (its request summary is
    // then left out, as in Triton).
    let cached = settings.cache.is_some() && base.response_cache.as_ref().is_some_and(|c| c.enable);
    let metrics = ModelMetrics::new(&base.name, &version.to_string(), &settings.metrics, cached);
    let predictor = if backend == Backend::Ensemble {
        let registry = models.upgrade().ok_or("the model registry is gone")?;
        let plan = Plan::of(&cfg, |m| registry.model_dir(m).is_some())?;
        check_steps(&plan, &registry)?;
        config::complete_remote(&mut cfg, backend.names()).map_err(|e| e.to_string())?;
        Predictor::Ensemble {
            ensemble: Box::new(Ensemble::new(plan, models.clone())),
            metrics: Box::new(metrics),
        }
    } else if let Some(remote) = cfg.stages.as_ref().and_then(|s| s.remote.as_ref()) {
        let client = RemoteClient::new(remote, &cfg.name)?;
        config::complete_remote(&mut cfg, backend.names()).map_err(|e| e.to_string())?;
        Predictor::Remote {
            client,
            metrics: Box::new(metrics),
        }
    } else {
        let mut runtimes = load_runtimes(backend, env, files, version, &cfg, settings, cancel)?;
        super::warmup::warm_up(&cfg, files, &mut runtimes)?;
        let first = runtimes.first().ok_or("no instance")?;
        config::complete(
            &mut cfg,
            backend.names(),
            first.inputs(),
            first.outputs(),
            settings.default_max_batch_size,
        )
        .map_err(|e| e.to_string())?;
        apply_batcher(&mut cfg, settings.batcher);
        let policy = BatchPolicy::from_config(&cfg, settings.queue_per_instance * runtimes.len());
        Predictor::Local(Scheduler::start(
            &cfg.name,
            metrics,
            runtimes,
            policy,
            stats.clone(),
        ))
    };
    let predictor_signature = config::signature(&cfg);
    let sub = files.version_dir(version);
    let stages = Stages::build(&cfg, files, &[&sub, ""], &predictor_signature)?;
    let signature = stages.client_signature(&predictor_signature);
    let mut labels = HashMap::new();
    for o in cfg.output.iter().filter(|o| !o.label_filename.is_empty()) {
        labels.insert(
            o.name.clone(),
            read_labels(&files.find(
                &format!("output '{}' label_filename", o.name),
                &o.label_filename,
                &[""],
            )?)?,
        );
    }
    Ok(LoadedModel {
        name: cfg.name.clone(),
        version,
        signature,
        predictor_signature,
        stages,
        predictor,
        labels,
        stats,
        limits: settings.limits,
        cache: response_cache(&cfg, version, settings.cache.as_ref()),
        config: cfg,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instance_counts_are_capped_before_any_starts() {
        let cfg = config::parse_pbtxt(
            "instance_group [ { count: 3 kind: KIND_CPU }, { count: 10000 kind: KIND_CPU } ]",
        )
        .expect("parses");
        let e = accelerators(&cfg, 64).unwrap_err();
        assert!(
            e.contains("10003") && e.contains("--max-instances-per-model"),
            "{e}"
        );
        assert_eq!(accelerators(&cfg, 0).expect("no limit").len(), 10003);
        let one = config::parse_pbtxt("").expect("parses");
        assert_eq!(accelerators(&one, 1).expect("fits").len(), 1);
    }

    #[test]
    fn the_batcher_fills_in_only_where_the_config_is_silent() {
        let b = Some(BatcherDefaults {
            max_latency: std::time::Duration::from_millis(5),
            max_batch_size: Some(16),
        });
        let mut cfg = config::parse_pbtxt("max_batch_size: 64").expect("parses");
        apply_batcher(&mut cfg, b);
        assert_eq!(cfg.max_batch_size, 16);
        let policy = BatchPolicy::from_config(&cfg, 10);
        assert!(policy.dynamic);
        assert_eq!(policy.max_queue_delay, std::time::Duration::from_millis(5));
        // A model's own dynamic_batching, or a model that cannot batch, is left alone.
        let mut own = config::parse_pbtxt("max_batch_size: 64 dynamic_batching { }").expect("p");
        apply_batcher(&mut own, b);
        assert_eq!(own.max_batch_size, 64);
        let mut none = config::parse_pbtxt("max_batch_size: 0").expect("p");
        apply_batcher(&mut none, b);
        assert!(none.scheduling_choice.is_none());
    }

    #[test]
    fn default_intra_op_threads_never_oversubscribe() {
        assert_eq!(
            auto_intra_threads(2, 1),
            1,
            "one core left to the front ends"
        );
        assert_eq!(auto_intra_threads(1, 1), 1);
        assert_eq!(auto_intra_threads(16, 1), 15);
        assert_eq!(auto_intra_threads(16, 4), 3);
        assert_eq!(
            auto_intra_threads(4, 8),
            1,
            "at least one thread per instance"
        );
        for cores in 1..=64 {
            for instances in 1..=cores {
                assert!(auto_intra_threads(cores, instances) * instances <= cores);
            }
        }
        let settings = LoadSettings::default();
        let cfg = config::parse_pbtxt(
            r#"parameters { key: "intra_op_thread_count" value: { string_value: "3" } }"#,
        )
        .expect("parses");
        assert_eq!(
            intra_threads(&cfg, &settings, 1),
            Ok(3),
            "the model's own setting wins"
        );
        let bad = config::parse_pbtxt(
            r#"parameters { key: "intra_op_thread_count" value: { string_value: "many" } }"#,
        )
        .expect("parses");
        let err = intra_threads(&bad, &settings, 1).unwrap_err();
        assert!(err.contains("intra_op_thread_count"), "{err}");
    }
}
