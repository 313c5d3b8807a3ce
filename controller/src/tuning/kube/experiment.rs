//! Reconciling Experiments: the spec checked (an invalid one fails with reason InvalidSpec and
//! a message naming the field, and no trial is created), the Trials it owns read back in
//! creation order as the algorithm's history, the end decided as Katib decides it (goal,
//! maxTrialCount, maxFailedTrialCount, the end of the search), new Trials created for the
//! algorithm's suggestions up to parallelTrialCount (names fixed by their index, so a stale
//! read cannot create a trial twice), and the status written (conditions, counts and lists,
//! currentOptimalTrial).

use super::trial::{finished, FIRST_AVERAGE_ANNOTATION};
use crate::error::Error;
use crate::pipeline::time::rfc3339;
use crate::tuning::experiment::{primary_container_of, trial_spec, Experiment, Plan};
use crate::tuning::space::{Assignment, SpaceError};
use crate::tuning::status::{
    is_true, set_condition, ExperimentStatus, OptimalTrial, ParameterAssignment, CREATED,
    EARLY_STOPPED, FAILED, KILLED, METRICS_UNAVAILABLE, RUNNING, SUCCEEDED,
};
use crate::tuning::suggest::{build, Outcome, Seen};
use crate::tuning::trial::{Trial, TrialSpec, TrialStatus, EXPERIMENT_LABEL};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{ListParams, Patch, PatchParams, PostParams};
use kube::runtime::controller::Action;
use kube::runtime::events::Recorder;
use kube::{Api, Client, Resource, ResourceExt};
use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::SystemTime;

/// Reason of a Failed condition for an Experiment that cannot run.
pub const INVALID_SPEC: &str = "InvalidSpec";
/// Annotation with a trial's index in its experiment (1, 2, ...).
pub const INDEX_ANNOTATION: &str = "tuning.osprey.dev/index";

/// What the Experiment reconciler needs.
pub struct Context {
    pub client: Client,
    pub recorder: Recorder,
}

/// A trial's state for counting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrialState {
    Pending,
    Running,
    Succeeded,
    Failed,
    Killed,
    EarlyStopped,
    MetricsUnavailable,
}

/// The state a Trial's conditions say.
pub fn state_of(st: &TrialStatus) -> TrialState {
    let c = &st.conditions;
    if is_true(c, SUCCEEDED) {
        TrialState::Succeeded
    } else if is_true(c, EARLY_STOPPED) {
        TrialState::EarlyStopped
    } else if is_true(c, METRICS_UNAVAILABLE) {
        TrialState::MetricsUnavailable
    } else if is_true(c, KILLED) {
        TrialState::Killed
    } else if is_true(c, FAILED) {
        TrialState::Failed
    } else if is_true(c, RUNNING) {
        TrialState::Running
    } else {
        TrialState::Pending
    }
}

/// The objective's value in a trial's observation, per the metric's strategy (`min`, `max`,
/// `latest`; default by the objective's type).
pub fn objective_value(
    plan: &Plan,
    strategies: &BTreeMap<String, String>,
    st: &TrialStatus,
) -> Option<f64> {
    let m = st
        .observation
        .as_ref()?
        .metrics
        .iter()
        .find(|m| m.name == plan.metric)?;
    let default = if plan.maximize { "max" } else { "min" };
    let text = match strategies
        .get(&plan.metric)
        .map(String::as_str)
        .unwrap_or(default)
    {
        "min" => &m.min,
        "latest" => &m.latest,
        _ => &m.max,
    };
    text.parse().ok()
}

fn invalid(field: &str, message: impl Into<String>) -> SpaceError {
    SpaceError {
        field: field.into(),
        message: message.into(),
    }
}

/// The plan of an Experiment, a ConfigMap template read in, everything checked.
async fn checked_plan(client: &Client, exp: &Experiment) -> Result<Plan, SpaceError> {
    let mut spec = exp.spec.clone();
    if spec.trial_template.trial_spec.is_none() {
        if let Some(cm) = &spec.trial_template.config_map {
            let ns = cm
                .config_map_namespace
                .clone()
                .or_else(|| exp.namespace())
                .unwrap_or_default();
            let field = "spec.trialTemplate.configMap";
            let api: Api<ConfigMap> = Api::namespaced(client.clone(), &ns);
            let map = api
                .get_opt(&cm.config_map_name)
                .await
                .map_err(|e| invalid(field, e.to_string()))?
                .ok_or_else(|| {
                    invalid(
                        &format!("{field}.configMapName"),
                        format!("ConfigMap {ns}/{} not found", cm.config_map_name),
                    )
                })?;
            let text = map
                .data
                .unwrap_or_default()
                .get(&cm.template_path)
                .cloned()
                .ok_or_else(|| {
                    invalid(
                        &format!("{field}.templatePath"),
                        format!("no key {:?} in the ConfigMap", cm.template_path),
                    )
                })?;
            let v: Value = serde_yaml::from_str(&text)
                .map_err(|e| invalid(&format!("{field}.templatePath"), e.to_string()))?;
            spec.trial_template.trial_spec = Some(v);
        }
    }
    let plan = spec.plan(&exp.name_any())?;
    let probe: Assignment = plan
        .space
        .iter()
        .map(|p| (p.name.clone(), String::new()))
        .collect();
    let t = trial_spec(&plan, &probe).map_err(|e| invalid("spec.trialTemplate.trialSpec", e))?;
    primary_container_of(&t, &plan.primary)
        .map_err(|e| invalid("spec.trialTemplate.primaryContainerName", e))?;
    build(&plan.algorithm, &plan.space).map_err(|e| invalid("spec.parameters", e))?;
    Ok(plan)
}

async fn write_status(
    api: &Api<Experiment>,
    name: &str,
    st: &ExperimentStatus,
) -> Result<(), Error> {
    let patch = serde_json::json!({ "status": st });
    api.patch_status(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await?;
    Ok(())
}

fn index_of(t: &Trial) -> u64 {
    t.annotations()
        .get(INDEX_ANNOTATION)
        .and_then(|v| v.parse().ok())
        .unwrap_or(u64::MAX)
}

/// Reconciles one Experiment.
pub async fn reconcile(exp: Arc<Experiment>, ctx: Arc<Context>) -> Result<Action, Error> {
    let ns = exp.namespace().unwrap_or_default();
    let name = exp.name_any();
    let api: Api<Experiment> = Api::namespaced(ctx.client.clone(), &ns);
    let mut st = exp.status.clone().unwrap_or_default();
    let now = rfc3339(SystemTime::now());
    if is_true(&st.conditions, SUCCEEDED) || is_true(&st.conditions, FAILED) {
        return Ok(Action::await_change());
    }
    let plan = match checked_plan(&ctx.client, &exp).await {
        Ok(p) => p,
        Err(e) => {
            let m = e.to_string();
            set_condition(&mut st.conditions, FAILED, true, INVALID_SPEC, &m, &now);
            st.completion_time = Some(now);
            write_status(&api, &name, &st).await?;
            crate::events::publish(&ctx.recorder, &exp.object_ref(&()), true, INVALID_SPEC, &m)
                .await;
            return Ok(Action::await_change());
        }
    };
    let strategies: BTreeMap<String, String> = exp
        .spec
        .objective
        .metric_strategies
        .iter()
        .map(|m| (m.name.clone(), m.value.clone()))
        .collect();
    let trials_api: Api<Trial> = Api::namespaced(ctx.client.clone(), &ns);
    let uid = exp.uid().unwrap_or_default();
    let mut trials: Vec<Trial> = trials_api
        .list(&ListParams::default().labels(&format!("{EXPERIMENT_LABEL}={name}")))
        .await?
        .items
        .into_iter()
        .filter(|t| t.owner_references().iter().any(|o| o.uid == uid))
        .collect();
    trials.sort_by_key(|t| (index_of(t), t.name_any()));
    // The history and the counts.
    let mut seen: Vec<Seen> = Vec::with_capacity(trials.len());
    let mut lists: BTreeMap<&'static str, Vec<String>> = BTreeMap::new();
    let mut best: Option<(f64, &Trial)> = None;
    let mut goal_reached = false;
    let mut averages = Vec::new();
    for t in &trials {
        let tst = t.status.clone().unwrap_or_default();
        let state = state_of(&tst);
        let value = objective_value(&plan, &strategies, &tst);
        let outcome = match (state, value) {
            (TrialState::Pending | TrialState::Running, _) => Outcome::Pending,
            (TrialState::Succeeded | TrialState::EarlyStopped, Some(v)) => Outcome::Value(v),
            _ => Outcome::Failed,
        };
        if state == TrialState::Succeeded {
            if let Some(a) = t
                .annotations()
                .get(FIRST_AVERAGE_ANNOTATION)
                .and_then(|v| v.parse::<f64>().ok())
            {
                averages.push(a);
            }
        }
        if let (Outcome::Value(v), true) = (
            &outcome,
            state == TrialState::Succeeded || state == TrialState::EarlyStopped,
        ) {
            let better = best
                .as_ref()
                .is_none_or(|(b, _)| if plan.maximize { v > b } else { v < b });
            if better {
                best = Some((*v, t));
            }
            if state == TrialState::Succeeded {
                if let Some(g) = plan.goal {
                    goal_reached |= if plan.maximize { *v >= g } else { *v <= g };
                }
            }
        }
        let list = match state {
            TrialState::Pending => "pending",
            TrialState::Running => "running",
            TrialState::Succeeded => "succeeded",
            TrialState::Failed => "failed",
            TrialState::Killed => "killed",
            TrialState::EarlyStopped => "earlyStopped",
            TrialState::MetricsUnavailable => "metricsUnavailable",
        };
        lists.entry(list).or_default().push(t.name_any());
        seen.push(Seen {
            assignment: t
                .spec
                .parameter_assignments
                .iter()
                .map(|p| (p.name.clone(), p.value.clone()))
                .collect(),
            outcome,
        });
    }
    let count = |k: &str| lists.get(k).map_or(0, Vec::len);
    let active = count("pending") + count("running");
    let failed = count("failed");
    let done = trials.len() - active;
    // The end, as Katib decides it.
    let algorithm = build(&plan.algorithm, &plan.space).map_err(Error::Other)?;
    let mut end: Option<(bool, &str, String)> = if goal_reached {
        Some((
            true,
            "ExperimentGoalReached",
            "Experiment has succeeded because Objective goal has reached".into(),
        ))
    } else if plan.max_failed.is_some_and(|m| failed > m) {
        Some((false, "ExperimentMaxFailedTrialsReached", format!("Experiment has failed because max failed count has reached ({failed} failed trials)")))
    } else if done >= plan.max_trials {
        Some((
            true,
            "ExperimentMaxTrialsReached",
            "Experiment has succeeded because max trial count has reached".into(),
        ))
    } else {
        None
    };
    let mut created = Vec::new();
    if end.is_none() {
        let room = plan
            .parallel
            .saturating_sub(active)
            .min(plan.max_trials.saturating_sub(trials.len()));
        let suggestions = if room > 0 {
            algorithm.suggest(&seen, room, plan.maximize)
        } else {
            Vec::new()
        };
        if suggestions.is_empty() && active == 0 {
            end = Some((
                true,
                "ExperimentSuggestionEndReached",
                "Experiment has succeeded because the search space has been explored".into(),
            ));
        }
        let rules = crate::tuning::kube::run::early_stopping_rules(&exp, &plan, &averages);
        let next_index = trials
            .iter()
            .map(index_of)
            .filter(|i| *i != u64::MAX)
            .max()
            .unwrap_or(0);
        for (i, a) in suggestions.into_iter().enumerate() {
            let index = next_index + 1 + i as u64;
            let tname = format!("{name}-{index:04}");
            let t = new_trial(&exp, &plan, &tname, index, &a, rules.clone())?;
            match trials_api.create(&PostParams::default(), &t).await {
                Ok(_) => created.push(tname),
                Err(kube::Error::Api(e)) if e.code == 409 => created.push(tname),
                Err(e) => return Err(e.into()),
            }
        }
    }
    // Status.
    set_condition(
        &mut st.conditions,
        CREATED,
        true,
        "ExperimentCreated",
        "Experiment is created",
        &now,
    );
    st.start_time.get_or_insert_with(|| now.clone());
    if let Some((ok, reason, message)) = &end {
        set_condition(&mut st.conditions, RUNNING, false, reason, message, &now);
        set_condition(
            &mut st.conditions,
            if *ok { SUCCEEDED } else { FAILED },
            true,
            reason,
            message,
            &now,
        );
        st.completion_time = Some(now.clone());
        // Trials still running are killed (their runs deleted by the trial reconciler).
        for t in trials
            .iter()
            .filter(|t| !finished(&t.status.clone().unwrap_or_default()))
        {
            let mut tst = t.status.clone().unwrap_or_default();
            set_condition(
                &mut tst.conditions,
                RUNNING,
                false,
                "TrialKilled",
                "The experiment has finished",
                &now,
            );
            set_condition(
                &mut tst.conditions,
                KILLED,
                true,
                "TrialKilled",
                "The experiment has finished",
                &now,
            );
            tst.completion_time = Some(now.clone());
            let patch = serde_json::json!({ "status": tst });
            trials_api
                .patch_status(
                    &t.name_any(),
                    &PatchParams::default(),
                    &Patch::Merge(&patch),
                )
                .await?;
            let killed = lists.entry("killed").or_default();
            killed.push(t.name_any());
            for k in ["pending", "running"] {
                if let Some(l) = lists.get_mut(k) {
                    l.retain(|n| *n != t.name_any());
                }
            }
        }
    } else {
        set_condition(
            &mut st.conditions,
            RUNNING,
            true,
            "ExperimentRunning",
            "Experiment is running",
            &now,
        );
    }
    let take =
        |lists: &BTreeMap<&str, Vec<String>>, k: &str| lists.get(k).cloned().unwrap_or_default();
    let mut pending = take(&lists, "pending");
    pending.extend(
        created
            .iter()
            .filter(|n| !pending.contains(n))
            .cloned()
            .collect::<Vec<_>>(),
    );
    st.pending_trial_list = pending;
    st.running_trial_list = take(&lists, "running");
    st.succeeded_trial_list = take(&lists, "succeeded");
    st.failed_trial_list = take(&lists, "failed");
    st.killed_trial_list = take(&lists, "killed");
    st.early_stopped_trial_list = take(&lists, "earlyStopped");
    st.metrics_unavailable_trial_list = take(&lists, "metricsUnavailable");
    let n = |v: &Vec<String>| i32::try_from(v.len()).unwrap_or(i32::MAX);
    st.trials_pending = n(&st.pending_trial_list);
    st.trials_running = n(&st.running_trial_list);
    st.trials_succeeded = n(&st.succeeded_trial_list);
    st.trials_failed = n(&st.failed_trial_list);
    st.trials_killed = n(&st.killed_trial_list);
    st.trials_early_stopped = n(&st.early_stopped_trial_list);
    st.trial_metrics_unavailable = n(&st.metrics_unavailable_trial_list);
    st.trials = st.trials_pending
        + st.trials_running
        + st.trials_succeeded
        + st.trials_failed
        + st.trials_killed
        + st.trials_early_stopped
        + st.trial_metrics_unavailable;
    if let Some((_, t)) = best {
        st.current_optimal_trial = OptimalTrial {
            best_trial_name: t.name_any(),
            parameter_assignments: t.spec.parameter_assignments.clone(),
            observation: t
                .status
                .clone()
                .unwrap_or_default()
                .observation
                .unwrap_or_default(),
        };
    }
    st.last_reconcile_time = Some(now);
    write_status(&api, &name, &st).await?;
    Ok(Action::await_change())
}

/// The Trial for assignment `a`.
fn new_trial(
    exp: &Experiment,
    plan: &Plan,
    name: &str,
    index: u64,
    a: &Assignment,
    rules: (Vec<crate::tuning::trial::EarlyStoppingRule>, Option<usize>),
) -> Result<Trial, Error> {
    let mut run = trial_spec(plan, a).map_err(Error::Other)?;
    if let Some(m) = run.get_mut("metadata").and_then(Value::as_object_mut) {
        m.remove("name");
    }
    let t = &exp.spec.trial_template;
    let mut trial = Trial::new(
        name,
        TrialSpec {
            objective: Some(exp.spec.objective.clone()),
            parameter_assignments: a
                .iter()
                .map(|(n, v)| ParameterAssignment {
                    name: n.clone(),
                    value: v.clone(),
                })
                .collect(),
            early_stopping_rules: rules.0,
            run_spec: Some(run),
            retain_run: t.retain,
            metrics_collector: exp.spec.metrics_collector_spec.clone(),
            primary_pod_labels: t.primary_pod_labels.clone(),
            primary_container_name: plan.primary.clone(),
            success_condition: t.success_condition.clone().unwrap_or_default(),
            failure_condition: t.failure_condition.clone().unwrap_or_default(),
            labels: BTreeMap::new(),
        },
    );
    trial.metadata.namespace = exp.namespace();
    trial.metadata.labels = Some([(EXPERIMENT_LABEL.to_string(), exp.name_any())].into());
    let mut annotations = BTreeMap::from([(INDEX_ANNOTATION.to_string(), index.to_string())]);
    if let Some(n) = rules.1 {
        annotations.insert("tuning.osprey.dev/average-steps".into(), n.to_string());
    }
    trial.metadata.annotations = Some(annotations);
    trial.metadata.owner_references = exp.controller_owner_ref(&()).map(|o| vec![o]);
    Ok(trial)
}
