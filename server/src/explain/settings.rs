//! The explainer's settings: the model's `stages.explainer` configuration, overridden by the
//! request's parameters (`method`, `output`, `target`, `samples`, `seed`, `baseline`).

use super::values::Target;
use crate::error::ServerError;
use crate::model::LoadedModel;
use osprey_protocol::grpc::inference::explainer_config::Method as ConfigMethod;
use osprey_protocol::{DataType, ParamValue, Parameters};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    KernelShap,
    Occlusion,
}

impl Method {
    pub fn label(self) -> &'static str {
        match self {
            Method::KernelShap => "kernel_shap",
            Method::Occlusion => "occlusion",
        }
    }
}

/// What one explanation may cost (`--explain-max-*`, `--explain-timeout-secs`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExplainLimits {
    /// Most features of one row: numeric features, words or tokens.
    pub max_features: usize,
    /// Most rows the model may evaluate for one request (perturbations of every row).
    pub max_rows: usize,
    /// How long one explanation may run before it is stopped.
    pub timeout: std::time::Duration,
}

impl Default for ExplainLimits {
    fn default() -> Self {
        ExplainLimits {
            max_features: 512,
            max_rows: 262_144,
            timeout: std::time::Duration::from_secs(60),
        }
    }
}

impl ExplainLimits {
    /// Refuses a row of `n` features.
    pub fn features(&self, input: &str, n: usize, what: &str) -> Result<(), ServerError> {
        if n > self.max_features {
            return Err(ServerError::BadRequest(format!(
                "explain: input '{input}' has {n} {what} in one row; the server explains at most \
                 {} (--explain-max-features)",
                self.max_features
            )));
        }
        Ok(())
    }

    /// Refuses a request that would have the model evaluate `n` rows.
    pub fn rows(&self, n: usize) -> Result<(), ServerError> {
        if n > self.max_rows {
            return Err(ServerError::BadRequest(format!(
                "explain: this request needs {n} model evaluations; the server allows at most {} \
                 (--explain-max-rows): lower 'samples' or send fewer rows",
                self.max_rows
            )));
        }
        Ok(())
    }
}

#[derive(Debug, Clone)]
pub struct Settings {
    pub method: Method,
    pub output: String,
    pub target: Target,
    pub samples: usize,
    pub seed: u64,
    /// Per feature, or one value for all.
    pub baseline: Vec<f64>,
    pub limits: ExplainLimits,
}

/// Default KernelSHAP coalitions.
pub const DEFAULT_SAMPLES: usize = 512;
/// Most coalitions a request may ask for.
pub const MAX_SAMPLES: usize = 65_536;

fn bad(name: &str, why: &str) -> ServerError {
    ServerError::BadRequest(format!("parameter '{name}': {why}"))
}

fn string(p: &Parameters, name: &str) -> Result<Option<String>, ServerError> {
    match p.get(name) {
        None => Ok(None),
        Some(ParamValue::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(bad(name, "must be a string")),
    }
}

fn baseline(p: &Parameters) -> Result<Option<Vec<f64>>, ServerError> {
    match p.get("baseline") {
        None => Ok(None),
        Some(ParamValue::Double(d)) => Ok(Some(vec![*d])),
        Some(ParamValue::Int(i)) => Ok(Some(vec![*i as f64])),
        Some(ParamValue::Uint(u)) => Ok(Some(vec![*u as f64])),
        Some(ParamValue::String(s)) => s
            .split(',')
            .map(|x| x.trim().parse::<f64>())
            .collect::<Result<Vec<_>, _>>()
            .map(Some)
            .map_err(|_| bad("baseline", "must be a number or comma-separated numbers")),
        Some(ParamValue::Bool(_)) => Err(bad("baseline", "must be a number")),
    }
}

impl Settings {
    /// Resolves the settings for a request on `model`.
    pub fn resolve(
        model: &LoadedModel,
        params: &Parameters,
        limits: ExplainLimits,
    ) -> Result<Settings, ServerError> {
        let cfg = model
            .config
            .stages
            .as_ref()
            .and_then(|s| s.explainer.clone())
            .unwrap_or_default();
        let text = model.stages.tokenizer().is_some()
            || model
                .signature
                .inputs
                .iter()
                .any(|i| i.datatype == DataType::Bytes);
        let method = match string(params, "method")?.as_deref() {
            Some("kernel_shap") => Method::KernelShap,
            Some("occlusion") => Method::Occlusion,
            Some(other) => {
                return Err(bad(
                    "method",
                    &format!("'{other}' is not \"kernel_shap\" or \"occlusion\""),
                ))
            }
            None => match ConfigMethod::try_from(cfg.method).unwrap_or(ConfigMethod::Auto) {
                ConfigMethod::KernelShap => Method::KernelShap,
                ConfigMethod::Occlusion => Method::Occlusion,
                ConfigMethod::Auto if text => Method::Occlusion,
                ConfigMethod::Auto => Method::KernelShap,
            },
        };
        let output = match string(params, "output")? {
            Some(o) => o,
            None if !cfg.output.is_empty() => cfg.output.clone(),
            // Scores (floating point) before class indices.
            None => model
                .predictor_signature
                .outputs
                .iter()
                .find(|o| {
                    matches!(
                        o.datatype,
                        DataType::Fp32 | DataType::Fp64 | DataType::Fp16 | DataType::Bf16
                    )
                })
                .or_else(|| {
                    model
                        .predictor_signature
                        .outputs
                        .iter()
                        .find(|o| o.datatype != DataType::Bytes)
                })
                .map(|o| o.name.clone())
                .ok_or_else(|| bad("output", "the model has no numeric output to explain"))?,
        };
        if !model
            .predictor_signature
            .outputs
            .iter()
            .any(|o| o.name == output)
        {
            return Err(bad(
                "output",
                &format!("'{output}' is not an output of the model"),
            ));
        }
        let target = match params.get("target") {
            None => Target::parse(&cfg.target)?,
            Some(ParamValue::String(t)) => Target::parse(t)?,
            Some(v) => Target::Index(v.as_u64().ok_or_else(|| {
                bad(
                    "target",
                    "must be \"argmax\", \"cosine\" or an element index",
                )
            })? as usize),
        };
        let samples = match params.get("samples") {
            None if cfg.samples > 0 => cfg.samples as usize,
            None => DEFAULT_SAMPLES,
            Some(v) => match v.as_u64() {
                Some(n) if (2..=MAX_SAMPLES as u64).contains(&n) => n as usize,
                _ => {
                    return Err(bad(
                        "samples",
                        &format!("must be an integer from 2 to {MAX_SAMPLES}"),
                    ))
                }
            },
        };
        let seed = match params.get("seed") {
            None => cfg.seed,
            Some(v) => v
                .as_u64()
                .ok_or_else(|| bad("seed", "must be a non-negative integer"))?,
        };
        let baseline = match baseline(params)? {
            Some(b) => b,
            None if !cfg.baseline.is_empty() => {
                cfg.baseline.iter().map(|&x| f64::from(x)).collect()
            }
            None => vec![0.0],
        };
        Ok(Settings {
            method,
            output,
            target,
            samples,
            seed,
            baseline,
            limits,
        })
    }
}
