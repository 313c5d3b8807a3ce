//! Reconciling Trials: the run resource (any kind, found through discovery) created from the
//! trial's runSpec with the metrics collector, its success and failure conditions watched, and
//! once it finishes the observation read from the primary container's termination message:
//! Succeeded with the objective reported, MetricsUnavailable without it, EarlyStopped when a
//! rule stopped it, Failed when the run failed. A finished trial's run is deleted unless
//! `retainRun`.

use super::gjson;
use super::runspec::{default_conditions, prepare};
use crate::error::Error;
use crate::pipeline::time::rfc3339;
use crate::tuning::collect::Collected;
use crate::tuning::collector::Collector;
use crate::tuning::space::format_double;
use crate::tuning::status::{
    is_true, set_condition, Observation, ObservedMetric, CREATED, EARLY_STOPPED, FAILED, KILLED,
    METRICS_UNAVAILABLE, RUNNING, SUCCEEDED,
};
use crate::tuning::trial::{Trial, TrialStatus, TRIAL_LABEL};
use k8s_openapi::api::core::v1::Pod;
use kube::api::{
    ApiResource, DeleteParams, DynamicObject, GroupVersionKind, ListParams, Patch, PatchParams,
    PostParams, PropagationPolicy,
};
use kube::runtime::controller::Action;
use kube::runtime::events::Recorder;
use kube::{Api, Client, Resource, ResourceExt};
use serde_json::Value;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

/// What the Trial reconciler needs.
pub struct Context {
    pub client: Client,
    pub recorder: Recorder,
    /// The image holding the `osprey` binary (the metrics collector).
    pub image: String,
}

/// Whether a trial has finished (any terminal condition True).
pub fn finished(st: &TrialStatus) -> bool {
    [
        SUCCEEDED,
        FAILED,
        KILLED,
        METRICS_UNAVAILABLE,
        EARLY_STOPPED,
    ]
    .iter()
    .any(|t| is_true(&st.conditions, t))
}

/// The run resource's API, from its apiVersion and kind.
async fn run_api(client: &Client, ns: &str, run: &Value) -> Result<Api<DynamicObject>, String> {
    let api_version = run.get("apiVersion").and_then(Value::as_str).unwrap_or("");
    let kind = run.get("kind").and_then(Value::as_str).unwrap_or("");
    let (group, version) = match api_version.split_once('/') {
        Some((g, v)) => (g, v),
        None => ("", api_version),
    };
    let gvk = GroupVersionKind::gvk(group, version, kind);
    let (ar, _): (ApiResource, _) = kube::discovery::pinned_kind(client, &gvk)
        .await
        .map_err(|e| format!("spec.runSpec: {api_version} {kind} is not served: {e}"))?;
    Ok(Api::namespaced_with(client.clone(), ns, &ar))
}

async fn write_status(api: &Api<Trial>, name: &str, st: &TrialStatus) -> Result<(), Error> {
    let patch = serde_json::json!({ "status": st });
    api.patch_status(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await?;
    Ok(())
}

/// Fails the trial with `message` and writes its status.
async fn fail(
    api: &Api<Trial>,
    name: &str,
    st: &mut TrialStatus,
    message: &str,
    now: String,
) -> Result<Action, Error> {
    set_condition(
        &mut st.conditions,
        FAILED,
        true,
        "TrialFailed",
        message,
        &now,
    );
    st.completion_time = Some(now);
    write_status(api, name, st).await?;
    Ok(Action::await_change())
}

/// The observation from the primary container's termination message of the trial's pods:
/// the pod's that matches primaryPodLabels, a succeeded one first.
fn collected_from(pods: &[Pod], trial: &Trial) -> Option<Collected> {
    let primary = &trial.spec.primary_container_name;
    let wanted = &trial.spec.primary_pod_labels;
    let mut best: Option<(bool, Collected)> = None;
    for pod in pods {
        let labels = pod.metadata.labels.clone().unwrap_or_default();
        if !wanted.iter().all(|(k, v)| labels.get(k) == Some(v)) {
            continue;
        }
        let statuses = pod
            .status
            .as_ref()
            .and_then(|s| s.container_statuses.clone())
            .unwrap_or_default();
        for cs in statuses.iter().filter(|c| c.name == *primary) {
            let Some(t) = cs
                .state
                .as_ref()
                .and_then(|s| s.terminated.as_ref())
                .or_else(|| cs.last_state.as_ref().and_then(|s| s.terminated.as_ref()))
            else {
                continue;
            };
            let Some(c) = t
                .message
                .as_deref()
                .and_then(|m| serde_json::from_str::<Collected>(m.trim()).ok())
            else {
                continue;
            };
            let ok = t.exit_code == 0;
            if best.as_ref().is_none_or(|(b, _)| ok && !b) {
                best = Some((ok, c));
            }
        }
    }
    best.map(|(_, c)| c)
}

/// The Trial's observation: each metric as min/max/latest strings.
pub fn observation(c: &Collected) -> Observation {
    Observation {
        metrics: c
            .metrics
            .iter()
            .map(|m| ObservedMetric {
                name: m.name.clone(),
                min: format_double(m.min),
                max: format_double(m.max),
                latest: format_double(m.latest),
            })
            .collect(),
    }
}

/// Annotation carrying the average of the objective's first reports (for medianstop).
pub const FIRST_AVERAGE_ANNOTATION: &str = "tuning.osprey.dev/first-average";

fn pod_phase_done(run: &Value) -> (bool, bool) {
    match run.pointer("/status/phase").and_then(Value::as_str) {
        Some("Succeeded") => (true, false),
        Some("Failed") => (false, true),
        _ => (false, false),
    }
}

/// Reconciles one Trial.
pub async fn reconcile(trial: Arc<Trial>, ctx: Arc<Context>) -> Result<Action, Error> {
    let ns = trial.namespace().unwrap_or_default();
    let name = trial.name_any();
    let api: Api<Trial> = Api::namespaced(ctx.client.clone(), &ns);
    let mut st = trial.status.clone().unwrap_or_default();
    let now = rfc3339(SystemTime::now());
    let run_spec = trial.spec.run_spec.clone().unwrap_or(Value::Null);
    let runs = match run_api(&ctx.client, &ns, &run_spec).await {
        Ok(a) => a,
        Err(e) => {
            if !finished(&st) {
                return fail(&api, &name, &mut st, &e, now).await;
            }
            return Ok(Action::await_change());
        }
    };
    if finished(&st) {
        if !trial.spec.retain_run {
            let dp = DeleteParams {
                propagation_policy: Some(PropagationPolicy::Background),
                ..DeleteParams::default()
            };
            match runs.delete(&name, &dp).await {
                Ok(_) => {}
                Err(kube::Error::Api(e)) if e.code == 404 => {}
                Err(e) => return Err(e.into()),
            }
        }
        return Ok(Action::await_change());
    }
    let existing = runs.get_opt(&name).await?;
    let uid = trial.uid().unwrap_or_default();
    let Some(run) = existing else {
        if is_true(&st.conditions, RUNNING) {
            let m = "the trial's run resource was deleted";
            set_condition(&mut st.conditions, RUNNING, false, "TrialFailed", m, &now);
            return fail(&api, &name, &mut st, m, now).await;
        }
        let collector =
            Collector::from_spec(trial.spec.metrics_collector.as_ref()).map_err(|e| e.to_string());
        let metrics: Vec<String> = trial
            .spec
            .objective
            .as_ref()
            .map(|o| {
                std::iter::once(o.objective_metric_name.clone())
                    .chain(o.additional_metric_names.iter().cloned())
                    .collect()
            })
            .unwrap_or_default();
        let average_steps = trial
            .annotations()
            .get("tuning.osprey.dev/average-steps")
            .and_then(|v| v.parse().ok());
        let prepared = collector.and_then(|c| {
            prepare(&trial, &c, &metrics, average_steps, &ctx.image).map_err(|e| e.to_string())
        });
        let obj = match prepared
            .and_then(|v| serde_json::from_value::<DynamicObject>(v).map_err(|e| e.to_string()))
        {
            Ok(o) => o,
            Err(e) => {
                let action = fail(&api, &name, &mut st, &e, now).await?;
                crate::events::publish(
                    &ctx.recorder,
                    &trial.object_ref(&()),
                    true,
                    "TrialFailed",
                    &e,
                )
                .await;
                return Ok(action);
            }
        };
        match runs.create(&PostParams::default(), &obj).await {
            Ok(_) => {}
            Err(kube::Error::Api(e)) if e.code == 409 => {}
            Err(kube::Error::Api(e)) if e.code == 422 || e.code == 400 => {
                let m = format!("spec.runSpec: refused by the API server: {}", e.message);
                return fail(&api, &name, &mut st, &m, now).await;
            }
            Err(e) => return Err(e.into()),
        }
        set_condition(
            &mut st.conditions,
            CREATED,
            true,
            "TrialCreated",
            "Trial is created",
            &now,
        );
        set_condition(
            &mut st.conditions,
            RUNNING,
            true,
            "TrialRunning",
            "Trial is running",
            &now,
        );
        st.start_time.get_or_insert(now);
        write_status(&api, &name, &st).await?;
        return Ok(Action::requeue(Duration::from_secs(60)));
    };
    let owned = run
        .metadata
        .owner_references
        .as_ref()
        .is_some_and(|o| o.iter().any(|r| r.uid == uid));
    if !owned {
        let m = format!("a resource named {name} exists and is not this trial's");
        return fail(&api, &name, &mut st, &m, now).await;
    }
    let doc = serde_json::to_value(&run).unwrap_or(Value::Null);
    let kind = run_spec.get("kind").and_then(Value::as_str).unwrap_or("");
    let api_version = run_spec
        .get("apiVersion")
        .and_then(Value::as_str)
        .unwrap_or("");
    let (ok, failed) = match (
        trial.spec.success_condition.as_str(),
        trial.spec.failure_condition.as_str(),
        default_conditions(api_version, kind),
    ) {
        ("", "", None) => pod_phase_done(&doc),
        (s, f, d) => {
            let (ds, df) = d.unwrap_or_default();
            let s = if s.is_empty() { ds.as_str() } else { s };
            let f = if f.is_empty() { df.as_str() } else { f };
            let check = |p: &str| -> Result<bool, String> {
                if p.is_empty() {
                    Ok(false)
                } else {
                    gjson::holds(&doc, p)
                }
            };
            match (check(s), check(f)) {
                (Ok(a), Ok(b)) => (a, b),
                (Err(e), _) | (_, Err(e)) => {
                    let m = format!("success/failure condition: {e}");
                    return fail(&api, &name, &mut st, &m, now).await;
                }
            }
        }
    };
    if !ok && !failed {
        if !is_true(&st.conditions, RUNNING) {
            set_condition(
                &mut st.conditions,
                RUNNING,
                true,
                "TrialRunning",
                "Trial is running",
                &now,
            );
            st.start_time.get_or_insert(now);
            write_status(&api, &name, &st).await?;
        }
        // Jobs and pods are watched; other kinds are polled.
        return Ok(Action::requeue(Duration::from_secs(if kind == "Job" {
            60
        } else {
            10
        })));
    }
    let pods: Api<Pod> = Api::namespaced(ctx.client.clone(), &ns);
    let list = pods
        .list(&ListParams::default().labels(&format!("{TRIAL_LABEL}={name}")))
        .await?;
    let collected = collected_from(&list.items, &trial);
    let objective = trial
        .spec
        .objective
        .as_ref()
        .map(|o| o.objective_metric_name.clone())
        .unwrap_or_default();
    if let Some(c) = &collected {
        st.observation = Some(observation(c));
        if let Some(avg) = c.metrics.first().and_then(|m| m.first_average) {
            let patch = serde_json::json!({"metadata": {"annotations": {
                FIRST_AVERAGE_ANNOTATION: format_double(avg)}}});
            api.patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
                .await?;
        }
    }
    let has_objective = collected
        .as_ref()
        .is_some_and(|c| c.metrics.iter().any(|m| m.name == objective));
    set_condition(
        &mut st.conditions,
        RUNNING,
        false,
        "TrialCompleted",
        "Trial has finished",
        &now,
    );
    if failed {
        set_condition(
            &mut st.conditions,
            FAILED,
            true,
            "TrialFailed",
            "Trial's run has failed",
            &now,
        );
    } else if collected.as_ref().is_some_and(|c| c.early_stopped) {
        set_condition(
            &mut st.conditions,
            EARLY_STOPPED,
            true,
            "TrialEarlyStopped",
            "Trial was stopped early by an early-stopping rule",
            &now,
        );
    } else if has_objective {
        set_condition(
            &mut st.conditions,
            SUCCEEDED,
            true,
            "TrialSucceeded",
            "Trial has succeeded",
            &now,
        );
    } else {
        let m = format!("Metrics are not available: no {objective} was reported");
        set_condition(
            &mut st.conditions,
            METRICS_UNAVAILABLE,
            true,
            "MetricsUnavailable",
            &m,
            &now,
        );
    }
    st.completion_time = Some(now);
    write_status(&api, &name, &st).await?;
    Ok(Action::await_change())
}
