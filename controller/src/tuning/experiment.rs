//! A Katib Experiment (`kubeflow.org/v1beta1`) as its manifest says it, with Katib's field
//! names, and what `osprey tune run` reads of it, checked with errors naming the field.

use super::space::{check, Param, ParameterSpec, SpaceError};
use super::status::ExperimentStatus;
use crate::crd::free_form_object;
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// A Katib Experiment: an objective, a search algorithm, a search space and a trial template.
/// `osprey tune run` reads its manifest; Osprey's controller runs it on Kubernetes.
#[derive(CustomResource, Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    group = "kubeflow.org",
    version = "v1beta1",
    kind = "Experiment",
    namespaced,
    status = "ExperimentStatus",
    doc = "A Katib hyperparameter tuning Experiment, run by Osprey's controller.",
    printcolumn = r#"{"name":"Type","type":"string","jsonPath":".status.conditions[-1:].type"}"#,
    printcolumn = r#"{"name":"Status","type":"string","jsonPath":".status.conditions[-1:].status"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct ExperimentSpec {
    #[serde(default)]
    pub objective: Objective,
    #[serde(default)]
    pub algorithm: Algorithm,
    #[serde(default)]
    pub parallel_trial_count: Option<i64>,
    #[serde(default)]
    pub max_trial_count: Option<i64>,
    #[serde(default)]
    pub max_failed_trial_count: Option<i64>,
    #[serde(default)]
    pub parameters: Vec<ParameterSpec>,
    #[serde(default)]
    pub trial_template: TrialTemplate,
    /// Katib's `metricsCollectorSpec`: `collector.kind` StdOut (default) or File, `source`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "free_form_object")]
    pub metrics_collector_spec: Option<Value>,
    /// `{algorithmName: medianstop, algorithmSettings: [{name, value}]}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "free_form_object")]
    pub early_stopping: Option<Value>,
    /// `Never` (default), `LongRunning`, `FromVolume`: accepted; a finished Experiment is not
    /// restarted (raise maxTrialCount on a running one instead).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resume_policy: Option<String>,
}

#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Objective {
    /// `maximize` or `minimize`.
    #[serde(default, rename = "type")]
    pub type_: String,
    #[serde(default)]
    pub goal: Option<f64>,
    #[serde(default)]
    pub objective_metric_name: String,
    #[serde(default)]
    pub additional_metric_names: Vec<String>,
    /// Per metric, which value of a trial counts: `min`, `max` or `latest` (default: the
    /// objective's best by its type, the others latest).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub metric_strategies: Vec<MetricStrategy>,
}

#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
pub struct MetricStrategy {
    pub name: String,
    #[serde(default)]
    pub value: String,
}

#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Algorithm {
    #[serde(default)]
    pub algorithm_name: String,
    #[serde(default)]
    pub algorithm_settings: Vec<Setting>,
}

#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
pub struct Setting {
    pub name: String,
    #[serde(default)]
    pub value: String,
}

#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TrialTemplate {
    #[serde(default)]
    pub primary_container_name: Option<String>,
    #[serde(default)]
    pub trial_parameters: Vec<TrialParameter>,
    /// The resource each trial runs, with `${trialParameters.x}` where values go.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "free_form_object")]
    pub trial_spec: Option<Value>,
    /// Or the template from a ConfigMap key (Kubernetes only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config_map: Option<ConfigMapSource>,
    /// Keep each trial's resource once it finishes (default: deleted).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub retain: bool,
    /// Labels of the pod whose metrics count (e.g. `training.kubeflow.org/job-role: master`).
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub primary_pod_labels: std::collections::BTreeMap<String, String>,
    /// GJSON path over the trial's resource that means success (default per kind).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub success_condition: Option<String>,
    /// GJSON path that means failure (default per kind).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure_condition: Option<String>,
}

/// Where a trial template is kept in a ConfigMap.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ConfigMapSource {
    #[serde(default)]
    pub config_map_name: String,
    #[serde(default)]
    pub config_map_namespace: Option<String>,
    #[serde(default)]
    pub template_path: String,
}

#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
pub struct TrialParameter {
    pub name: String,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub reference: String,
}

/// The search algorithm to use.
#[derive(Debug, Clone, PartialEq)]
pub enum AlgorithmKind {
    Random {
        seed: u64,
    },
    Grid,
    Tpe(super::tpe::TpeSettings),
    /// `bayesianoptimization`: a Gaussian process ([`super::bayes`]).
    Bayes(super::bayes::BayesSettings),
    /// `multivariate-tpe`: joint Parzen estimators ([`super::mtpe`]), TPE's settings.
    MultivariateTpe(super::tpe::TpeSettings),
    /// `hyperband`: successive halving over a budget parameter ([`super::hyperband`]).
    Hyperband(super::hyperband::HyperbandSettings),
    /// `cmaes`: CMA-ES over the numeric parameters ([`super::cmaes`]).
    Cmaes(super::cmaes::CmaesSettings),
}

/// What the runner needs, checked.
#[derive(Debug, Clone)]
pub struct Plan {
    pub name: String,
    pub maximize: bool,
    pub goal: Option<f64>,
    pub metric: String,
    pub additional: Vec<String>,
    pub algorithm: AlgorithmKind,
    pub parallel: usize,
    pub max_trials: usize,
    pub max_failed: Option<usize>,
    pub space: Vec<Param>,
    pub template: TrialTemplate,
    /// The trial spec as JSON text, `${trialParameters.x}` still in it.
    pub trial_spec: String,
    pub primary: String,
    /// `spec.earlyStopping`, checked ([`super::early`]).
    pub early_stopping: Option<super::early::MedianStop>,
    /// Where the trials' metrics are read (`spec.metricsCollectorSpec`).
    pub collector: super::collector::Collector,
}

/// The algorithms `algorithmName` may name.
pub const SUPPORTED: &str =
    "random, grid, tpe, multivariate-tpe, bayesianoptimization, cmaes, hyperband";

fn bad(field: &str, message: impl Into<String>) -> SpaceError {
    SpaceError {
        field: field.to_string(),
        message: message.into(),
    }
}

fn count(v: Option<i64>, field: &str, default: Option<usize>) -> Result<Option<usize>, SpaceError> {
    match v {
        None => Ok(default),
        Some(n) if n >= 1 => Ok(usize::try_from(n).ok()),
        Some(n) => Err(bad(field, format!("must be at least 1 (got {n})"))),
    }
}

impl Experiment {
    /// Checks the experiment; every error names its field.
    pub fn plan(&self) -> Result<Plan, SpaceError> {
        let name = self.metadata.name.as_deref().unwrap_or("experiment");
        self.spec.plan(name)
    }
}

impl ExperimentSpec {
    /// Checks the experiment named `name`; every error names its field.
    pub fn plan(&self, name: &str) -> Result<Plan, SpaceError> {
        let s = self;
        let maximize = match s.objective.type_.as_str() {
            "maximize" => true,
            "minimize" => false,
            other => {
                return Err(bad(
                    "spec.objective.type",
                    format!("must be maximize or minimize (got {other:?})"),
                ))
            }
        };
        if s.objective.objective_metric_name.trim().is_empty() {
            return Err(bad(
                "spec.objective.objectiveMetricName",
                "must not be empty",
            ));
        }
        let space = check(&s.parameters)?;
        let algorithm = match s.algorithm.algorithm_name.as_str() {
            "random" => {
                let mut seed = 0;
                for (i, st) in s.algorithm.algorithm_settings.iter().enumerate() {
                    match st.name.as_str() {
                        "random_state" => {
                            seed = st.value.trim().parse().map_err(|_| {
                                bad(
                                    &format!("spec.algorithm.algorithmSettings[{i}].value"),
                                    format!("random_state must be an integer, got {:?}", st.value),
                                )
                            })?
                        }
                        other => {
                            return Err(bad(
                                &format!("spec.algorithm.algorithmSettings[{i}].name"),
                                format!("unknown setting {other:?} for random (random_state)"),
                            ))
                        }
                    }
                }
                AlgorithmKind::Random { seed }
            }
            "grid" => {
                if let Some(st) = s.algorithm.algorithm_settings.first() {
                    return Err(bad(
                        "spec.algorithm.algorithmSettings[0].name",
                        format!("grid takes no settings (got {:?})", st.name),
                    ));
                }
                AlgorithmKind::Grid
            }
            "tpe" => AlgorithmKind::Tpe(super::tpe::parse(&s.algorithm.algorithm_settings, "tpe")?),
            "multivariate-tpe" => AlgorithmKind::MultivariateTpe(super::tpe::parse(
                &s.algorithm.algorithm_settings,
                "multivariate-tpe",
            )?),
            "bayesianoptimization" => {
                AlgorithmKind::Bayes(super::bayes::parse(&s.algorithm.algorithm_settings)?)
            }
            "cmaes" => AlgorithmKind::Cmaes(super::cmaes::parse(&s.algorithm.algorithm_settings)?),
            "hyperband" => AlgorithmKind::Hyperband(super::hyperband::parse(
                &s.algorithm.algorithm_settings,
                &space,
            )?),
            "" => return Err(bad("spec.algorithm.algorithmName", "must not be empty")),
            other => {
                return Err(bad(
                    "spec.algorithm.algorithmName",
                    format!("unknown or not yet supported algorithm {other:?} ({SUPPORTED})"),
                ))
            }
        };
        let parallel =
            count(s.parallel_trial_count, "spec.parallelTrialCount", Some(3))?.unwrap_or(3);
        let max_trials = count(s.max_trial_count, "spec.maxTrialCount", Some(10))?.unwrap_or(10);
        let max_failed = match s.max_failed_trial_count {
            Some(n) if n < 0 => {
                return Err(bad(
                    "spec.maxFailedTrialCount",
                    format!("must not be negative (got {n})"),
                ))
            }
            Some(n) => usize::try_from(n).ok(),
            None => None,
        };
        let t = &s.trial_template;
        for (i, tp) in t.trial_parameters.iter().enumerate() {
            if !space.iter().any(|p| p.name == tp.reference) {
                return Err(bad(
                    &format!("spec.trialTemplate.trialParameters[{i}].reference"),
                    format!("{:?} is not a parameter of spec.parameters", tp.reference),
                ));
            }
        }
        let spec_value = t
            .trial_spec
            .as_ref()
            .ok_or_else(|| bad("spec.trialTemplate.trialSpec", "required"))?;
        let trial_spec = spec_value.to_string();
        // Every ${trialParameters.x} in the template must be declared.
        let mut rest = trial_spec.as_str();
        while let Some(i) = rest.find("${trialParameters.") {
            let after = &rest[i + "${trialParameters.".len()..];
            let end = after.find('}').unwrap_or(after.len());
            let name = &after[..end];
            if !t.trial_parameters.iter().any(|tp| tp.name == name) {
                return Err(bad(
                    "spec.trialTemplate.trialSpec",
                    format!(
                        "${{trialParameters.{name}}} is not in spec.trialTemplate.trialParameters"
                    ),
                ));
            }
            rest = &after[end..];
        }
        let primary = t
            .primary_container_name
            .clone()
            .ok_or_else(|| bad("spec.trialTemplate.primaryContainerName", "required"))?;
        let early_stopping = super::early::parse(s.early_stopping.as_ref())?;
        Ok(Plan {
            name: name.to_string(),
            maximize,
            goal: s.objective.goal,
            metric: s.objective.objective_metric_name.clone(),
            additional: s.objective.additional_metric_names.clone(),
            algorithm,
            parallel,
            max_trials,
            max_failed,
            space,
            template: t.clone(),
            trial_spec,
            primary,
            early_stopping,
            collector: super::collector::Collector::from_spec(s.metrics_collector_spec.as_ref())?,
        })
    }
}

/// A trial's spec: the template with each `${trialParameters.x}` replaced by its value.
pub fn trial_spec(plan: &Plan, assignment: &[(String, String)]) -> Result<Value, String> {
    let mut text = plan.trial_spec.clone();
    for tp in &plan.template.trial_parameters {
        let value = assignment
            .iter()
            .find(|(n, _)| *n == tp.reference)
            .map(|(_, v)| v.clone())
            .unwrap_or_default();
        // The template is JSON text: the value goes in as a JSON string's content.
        let escaped = serde_json::to_string(&value).unwrap_or_default();
        let inner = escaped.trim_matches('"');
        text = text.replace(&format!("${{trialParameters.{}}}", tp.name), inner);
    }
    serde_json::from_str(&text).map_err(|e| format!("trial spec after substitution: {e}"))
}

/// The primary container of a trial spec: a batch Job's or a Pod's.
pub fn primary_container<'v>(spec: &'v Value, name: &str) -> Result<&'v Value, String> {
    let kind = spec.get("kind").and_then(Value::as_str).unwrap_or_default();
    let containers = match kind {
        "Job" => spec.pointer("/spec/template/spec/containers"),
        "Pod" => spec.pointer("/spec/containers"),
        other => {
            return Err(format!(
                "spec.trialTemplate.trialSpec: kind {other:?} cannot run locally yet (Job, Pod)"
            ))
        }
    };
    containers
        .and_then(Value::as_array)
        .and_then(|cs| {
            cs.iter()
                .find(|c| c.get("name").and_then(Value::as_str) == Some(name))
        })
        .ok_or_else(|| {
            format!(
                "spec.trialTemplate.primaryContainerName: no container {name:?} in the trial spec"
            )
        })
}

/// The container named `name` in any pod template of a trial spec (a Job's, a Pod's, each
/// replica's of a PyTorchJob...).
pub fn primary_container_of<'v>(spec: &'v Value, name: &str) -> Result<&'v Value, String> {
    fn find<'v>(v: &'v Value, name: &str) -> Option<&'v Value> {
        match v {
            Value::Object(o) => {
                if let Some(c) = o
                    .get("containers")
                    .and_then(Value::as_array)
                    .and_then(|cs| {
                        cs.iter()
                            .find(|c| c.get("name").and_then(Value::as_str) == Some(name))
                    })
                {
                    return Some(c);
                }
                o.values().find_map(|x| find(x, name))
            }
            Value::Array(a) => a.iter().find_map(|x| find(x, name)),
            _ => None,
        }
    }
    find(spec, name).ok_or_else(|| format!("no container {name:?} in the trial spec"))
}
