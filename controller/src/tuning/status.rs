//! What Katib reports (`kubeflow.org/v1beta1`), with its field names, so that the Katib SDK reads
//! Osprey's Experiments and Trials unchanged: conditions, trial counts and lists, the current
//! optimal trial, observations (`min`, `max`, `latest` per metric, as strings).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Experiment condition types.
pub const CREATED: &str = "Created";
pub const RUNNING: &str = "Running";
pub const SUCCEEDED: &str = "Succeeded";
pub const FAILED: &str = "Failed";
/// Trial condition types besides the above.
pub const KILLED: &str = "Killed";
pub const METRICS_UNAVAILABLE: &str = "MetricsUnavailable";
pub const EARLY_STOPPED: &str = "EarlyStopped";

/// A condition as Katib writes it.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct KatibCondition {
    #[serde(rename = "type")]
    pub type_: String,
    /// "True", "False" or "Unknown".
    pub status: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_update_time: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_transition_time: Option<String>,
}

/// One parameter's value in a trial.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
pub struct ParameterAssignment {
    pub name: String,
    #[serde(default)]
    pub value: String,
}

/// A metric as observed over a trial: numbers as strings, as Katib keeps them.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
pub struct ObservedMetric {
    pub name: String,
    #[serde(default)]
    pub min: String,
    #[serde(default)]
    pub max: String,
    #[serde(default)]
    pub latest: String,
}

/// A trial's metrics.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
pub struct Observation {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub metrics: Vec<ObservedMetric>,
}

/// The best trial so far.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct OptimalTrial {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub best_trial_name: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub parameter_assignments: Vec<ParameterAssignment>,
    #[serde(default)]
    pub observation: Observation,
}

/// An Experiment's status, as Katib reports it.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ExperimentStatus {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_time: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completion_time: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_reconcile_time: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<KatibCondition>,
    #[serde(default)]
    pub current_optimal_trial: OptimalTrial,
    #[serde(default)]
    pub running_trial_list: Vec<String>,
    #[serde(default)]
    pub pending_trial_list: Vec<String>,
    #[serde(default)]
    pub failed_trial_list: Vec<String>,
    #[serde(default)]
    pub succeeded_trial_list: Vec<String>,
    #[serde(default)]
    pub killed_trial_list: Vec<String>,
    #[serde(default)]
    pub early_stopped_trial_list: Vec<String>,
    #[serde(default)]
    pub metrics_unavailable_trial_list: Vec<String>,
    #[serde(default)]
    pub trials: i32,
    #[serde(default)]
    pub trials_succeeded: i32,
    #[serde(default)]
    pub trials_failed: i32,
    #[serde(default)]
    pub trials_killed: i32,
    #[serde(default)]
    pub trials_pending: i32,
    #[serde(default)]
    pub trials_running: i32,
    #[serde(default)]
    pub trials_early_stopped: i32,
    #[serde(default)]
    pub trial_metrics_unavailable: i32,
}

/// Whether `conditions` has `type_` with status True.
pub fn is_true(conditions: &[KatibCondition], type_: &str) -> bool {
    conditions
        .iter()
        .any(|c| c.type_ == type_ && c.status == "True")
}

/// Sets condition `type_` (True, with reason and message); a condition that changes status gets
/// `now` as its transition time. Katib keeps one condition per type; the others stay.
pub fn set_condition(
    conditions: &mut Vec<KatibCondition>,
    type_: &str,
    status: bool,
    reason: &str,
    message: &str,
    now: &str,
) {
    let status = if status { "True" } else { "False" };
    match conditions.iter_mut().find(|c| c.type_ == type_) {
        Some(c) => {
            if c.status != status {
                c.last_transition_time = Some(now.to_string());
            }
            if c.status != status
                || c.reason.as_deref() != Some(reason)
                || c.message.as_deref() != Some(message)
            {
                c.last_update_time = Some(now.to_string());
            }
            c.status = status.into();
            c.reason = Some(reason.into());
            c.message = Some(message.into());
        }
        None => conditions.push(KatibCondition {
            type_: type_.into(),
            status: status.into(),
            reason: Some(reason.into()),
            message: Some(message.into()),
            last_update_time: Some(now.to_string()),
            last_transition_time: Some(now.to_string()),
        }),
    }
}
