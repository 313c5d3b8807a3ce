//! Reconciling PipelineRuns: the run's engine rebuilt from the task records in its status,
//! finished task pods fed to it, the tasks it starts created as pods (idempotently: a pod's
//! name is fixed by the run's uid, the task path and the attempt), cancellation carried out,
//! and the new records written back. Task pods are owned by the run, so their changes trigger
//! a reconcile; deleting the run deletes them.

use super::cache;
use super::crd::{
    PipelineRun, PipelineRunStatus, PipelineSource, RunState, CONDITION_FAILED, CONDITION_RUNNING,
    CONDITION_SUCCEEDED,
};
use super::pod::{pod_name, run_selector, stuck_reason, task_pod, task_result, TaskPod};
use super::status::{records_of, tasks_of};
use crate::error::Error;
use crate::pipeline::engine::{Completion, Engine, Options, RunInfo, TaskState};
use crate::pipeline::executor::pipeline_inputs;
use crate::pipeline::spec::{self, PipelineSpec};
use crate::pipeline::time::rfc3339;
use k8s_openapi::api::core::v1::{ConfigMap, Pod};
use kube::api::{DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::runtime::controller::Action as Requeue;
use kube::runtime::events::Recorder;
use kube::{Api, Client, Resource, ResourceExt};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

/// Reason of a Failed condition for a run that cannot start.
pub const INVALID_SPEC: &str = "InvalidSpec";

/// What the PipelineRun reconciler needs.
pub struct Context {
    pub client: Client,
    pub recorder: Recorder,
    /// The image holding the `osprey` binary, copied into every task pod.
    pub launcher_image: String,
}

impl Context {
    pub fn new(client: Client, launcher_image: String) -> Context {
        let recorder = crate::events::recorder(&client);
        Context {
            client,
            recorder,
            launcher_image,
        }
    }
}

async fn publish(ctx: &Context, run: &PipelineRun, warning: bool, reason: &str, note: &str) {
    crate::events::publish(&ctx.recorder, &run.object_ref(&()), warning, reason, note).await;
}

async fn write_status(
    api: &Api<PipelineRun>,
    name: &str,
    st: &PipelineRunStatus,
) -> Result<(), Error> {
    let patch = serde_json::json!({ "status": st });
    api.patch_status(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await?;
    Ok(())
}

/// The compiled pipeline the run names; `Err(message)` names the field.
async fn load_spec(ctx: &Context, run: &PipelineRun, ns: &str) -> Result<PipelineSpec, String> {
    match run.spec.source().map_err(|e| e.to_string())? {
        PipelineSource::Inline(v) => {
            super::crd::parse_inline(v).map_err(|e| format!("spec.pipelineSpec: {e}"))
        }
        PipelineSource::ConfigMap { name, key } => {
            let cms: Api<ConfigMap> = Api::namespaced(ctx.client.clone(), ns);
            let cm = cms
                .get_opt(name)
                .await
                .map_err(|e| format!("spec.pipelineSpecRef: reading ConfigMap '{name}': {e}"))?;
            let cm = cm.ok_or_else(|| {
                format!("spec.pipelineSpecRef: ConfigMap '{name}' not found in namespace '{ns}'")
            })?;
            let text = cm.data.as_ref().and_then(|d| d.get(key)).ok_or_else(|| {
                format!("spec.pipelineSpecRef: ConfigMap '{name}' has no key '{key}'")
            })?;
            spec::parse(text).map_err(|e| format!("spec.pipelineSpecRef ({name}/{key}): {e}"))
        }
    }
}

fn failed_status(
    prev: &PipelineRunStatus,
    reason: &str,
    message: &str,
    now: &str,
) -> PipelineRunStatus {
    let mut st = prev.clone();
    st.state = RunState::Failed;
    st.completion_time.get_or_insert_with(|| now.to_string());
    st.set_condition(CONDITION_RUNNING, false, reason, message, now);
    st.set_condition(CONDITION_SUCCEEDED, false, reason, message, now);
    st.set_condition(CONDITION_FAILED, true, reason, message, now);
    st
}

/// The engine of this run, rebuilt from its status; `Err(message)` for a spec that cannot run.
async fn engine_of(ctx: &Context, run: &PipelineRun, ns: &str) -> Result<Engine, String> {
    let spec = load_spec(ctx, run, ns).await?;
    let given = run.spec.parameter_texts();
    let inputs = pipeline_inputs(&spec.root.input_definitions.parameters, &given)
        .map_err(|e| format!("spec.parameters: {e}"))?;
    let uid = run.meta().uid.clone().unwrap_or_default();
    let name = run.name_any();
    let short: String = uid.chars().take(8).collect();
    let run_id = format!("{name}-{short}");
    let root = run.spec.pipeline_root().trim_end_matches('/').to_string();
    let info = RunInfo {
        job_name: spec.pipeline_info.name.clone(),
        run_dir: format!("{root}/{ns}/{run_id}").into(),
        run_id,
        pipeline_root: root,
    };
    let parallelism = run
        .spec
        .parallelism
        .and_then(|p| usize::try_from(p).ok())
        .filter(|p| *p > 0)
        .unwrap_or(usize::MAX);
    let records = records_of(run.status.as_ref());
    Engine::restore(
        spec,
        inputs,
        info,
        Options {
            parallelism,
            caching: run.spec.enable_caching,
        },
        records,
    )
    .map_err(|e| e.to_string())
}

async fn delete_pod(api: &Api<Pod>, name: &str) -> Result<(), Error> {
    match api.delete(name, &DeleteParams::background()).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(e)) if e.code == 404 => Ok(()),
        Err(e) => Err(e.into()),
    }
}

fn is_finished(pod: &Pod) -> bool {
    matches!(
        pod.status.as_ref().and_then(|s| s.phase.as_deref()),
        Some("Succeeded" | "Failed")
    )
}

/// Reconciles one PipelineRun.
pub async fn reconcile(run: Arc<PipelineRun>, ctx: Arc<Context>) -> Result<Requeue, Error> {
    let ns = run.namespace().unwrap_or_else(|| "default".into());
    let name = run.name_any();
    let api: Api<PipelineRun> = Api::namespaced(ctx.client.clone(), &ns);
    let pods_api: Api<Pod> = Api::namespaced(ctx.client.clone(), &ns);
    if run.meta().deletion_timestamp.is_some() {
        return Ok(Requeue::await_change());
    }
    let prev = run.status.clone().unwrap_or_default();
    let now = SystemTime::now();
    let now_text = rfc3339(now);
    let uid = run.meta().uid.clone().unwrap_or_default();
    let pods: BTreeMap<String, Pod> = pods_api
        .list(&ListParams::default().labels(&run_selector(&run)))
        .await?
        .items
        .into_iter()
        .filter(|p| {
            p.metadata
                .owner_references
                .iter()
                .flatten()
                .any(|o| o.controller == Some(true) && o.uid == uid)
        })
        .map(|p| (p.name_any(), p))
        .collect();
    if prev.state.finished() {
        // Nothing of a finished run keeps running.
        for (n, p) in &pods {
            if !is_finished(p) {
                delete_pod(&pods_api, n).await?;
            }
        }
        return Ok(Requeue::await_change());
    }
    if let Err(e) = run.spec.validate() {
        let message = e.to_string();
        publish(&ctx, &run, true, INVALID_SPEC, &message).await;
        write_status(
            &api,
            &name,
            &failed_status(&prev, INVALID_SPEC, &message, &now_text),
        )
        .await?;
        return Ok(Requeue::await_change());
    }
    let mut engine = match engine_of(&ctx, &run, &ns).await {
        Ok(e) => e,
        Err(message) => {
            tracing::warn!(run = %name, namespace = %ns, error = %message, "invalid pipeline run");
            publish(&ctx, &run, true, INVALID_SPEC, &message).await;
            write_status(
                &api,
                &name,
                &failed_status(&prev, INVALID_SPEC, &message, &now_text),
            )
            .await?;
            return Ok(Requeue::await_change());
        }
    };
    if run.spec.cancel {
        engine.cancel();
    }
    // Running tasks: their pods' outcomes.
    let attempt_pod =
        |path: &str, attempt: u32| pod_name(&name, &uid, path, attempt.saturating_sub(1));
    let cms: Api<ConfigMap> = Api::namespaced(ctx.client.clone(), &ns);
    for path in engine.running() {
        let attempt = engine.records.get(&path).map_or(1, |r| r.attempts);
        let pname = attempt_pod(&path, attempt);
        let completion = match pods.get(&pname) {
            None => Some(Completion::Failed(format!("its pod {pname} was deleted"))),
            Some(p) => match task_result(p) {
                Some(Ok(outputs)) => Some(Completion::Succeeded(outputs)),
                Some(Err(e)) if engine.canceled => Some(Completion::Canceled(e)),
                Some(Err(e)) => Some(Completion::Failed(e)),
                None if engine.canceled => {
                    delete_pod(&pods_api, &pname).await?;
                    Some(Completion::Canceled(format!(
                        "canceled: pod {pname} deleted"
                    )))
                }
                None => match stuck_reason(p) {
                    Some(why) => {
                        delete_pod(&pods_api, &pname).await?;
                        Some(Completion::Failed(format!(
                            "pod {pname} cannot start: {why}"
                        )))
                    }
                    None => None,
                },
            },
        };
        if let Some(c) = completion {
            if let Completion::Succeeded(outputs) = &c {
                let key = engine.records.get(&path).and_then(|r| r.cache_key.clone());
                if let Some(key) = key {
                    cache::store(&cms, &key, &name, &path, outputs).await?;
                }
            }
            engine.complete(&path, c, now);
        }
    }
    // Start what is ready; a pod that already exists (a status write lost) is adopted.
    let mut wake_at = None;
    for _ in 0..1000 {
        let step = engine.step(now);
        wake_at = step.wake_at;
        let mut completed = false;
        for l in step.launches {
            if let Some(key) = &l.cache_key {
                if let Some(outputs) = cache::lookup(&cms, key).await? {
                    engine.complete(&l.path, Completion::Cached(outputs), now);
                    completed = true;
                    continue;
                }
            }
            let pname = attempt_pod(&l.path, l.attempt);
            if let Some(p) = pods.get(&pname) {
                if let Some(result) = task_result(p) {
                    let c = match result {
                        Ok(o) => Completion::Succeeded(o),
                        Err(e) => Completion::Failed(e),
                    };
                    engine.complete(&l.path, c, now);
                    completed = true;
                }
                continue;
            }
            let pod = task_pod(&TaskPod {
                run: &run,
                task: &l.path,
                attempt: l.attempt.saturating_sub(1),
                container: &l.container,
                outputs: &l.outputs,
                executor_input: &l.executor_input,
                launcher_image: &ctx.launcher_image,
            });
            match pod {
                Err(e) => {
                    engine.complete(&l.path, Completion::Failed(e.to_string()), now);
                    completed = true;
                }
                Ok(pod) => match pods_api.create(&PostParams::default(), &pod).await {
                    Ok(_) => {}
                    Err(kube::Error::Api(e)) if e.code == 409 => {}
                    Err(kube::Error::Api(e)) if e.code == 422 || e.code == 400 => {
                        engine.complete(
                            &l.path,
                            Completion::Failed(format!("its pod was refused: {}", e.message)),
                            now,
                        );
                        completed = true;
                    }
                    Err(e) => return Err(e.into()),
                },
            }
        }
        if !completed {
            break;
        }
    }
    let st = next_status(&prev, &engine, &run, &now_text);
    if st.state != prev.state {
        let warning = st.state == RunState::Failed;
        publish(
            &ctx,
            &run,
            warning,
            &format!("Pipeline{}", title(st.state)),
            &format!("pipeline run {}", state_name(st.state)),
        )
        .await;
    }
    if st != prev {
        write_status(&api, &name, &st).await?;
    }
    let wait = match wake_at {
        Some(at) => at
            .duration_since(SystemTime::now())
            .unwrap_or_default()
            .max(Duration::from_millis(200)),
        None => Duration::from_secs(60),
    };
    Ok(if st.state.finished() {
        Requeue::await_change()
    } else {
        Requeue::requeue(wait)
    })
}

fn state_name(s: RunState) -> &'static str {
    match s {
        RunState::Pending => "PENDING",
        RunState::Running => "RUNNING",
        RunState::Succeeded => "SUCCEEDED",
        RunState::Failed => "FAILED",
        RunState::Canceled => "CANCELED",
    }
}

fn title(s: RunState) -> &'static str {
    match s {
        RunState::Pending => "Pending",
        RunState::Running => "Running",
        RunState::Succeeded => "Succeeded",
        RunState::Failed => "Failed",
        RunState::Canceled => "Canceled",
    }
}

/// The status after this reconcile: the engine's records, the run's state and conditions.
fn next_status(
    prev: &PipelineRunStatus,
    engine: &Engine,
    run: &PipelineRun,
    now: &str,
) -> PipelineRunStatus {
    let mut st = prev.clone();
    let uid = run.meta().uid.clone().unwrap_or_default();
    let name = run.name_any();
    st.tasks = tasks_of(&engine.records, |path, attempt| {
        pod_name(&name, &uid, path, attempt.saturating_sub(1))
    });
    st.observed_generation = run.meta().generation;
    st.start_time.get_or_insert_with(|| now.to_string());
    let state = match engine.state() {
        TaskState::Pending | TaskState::Running if engine.canceled => RunState::Running,
        TaskState::Pending => RunState::Pending,
        TaskState::Running => RunState::Running,
        TaskState::Succeeded | TaskState::Skipped => RunState::Succeeded,
        TaskState::Failed => RunState::Failed,
        TaskState::Canceled => RunState::Canceled,
    };
    st.state = if state == RunState::Pending {
        RunState::Running
    } else {
        state
    };
    match st.state {
        RunState::Succeeded => {
            st.outputs = engine.outputs();
            st.completion_time.get_or_insert_with(|| now.to_string());
            st.set_condition(CONDITION_RUNNING, false, "Finished", "", now);
            st.set_condition(CONDITION_SUCCEEDED, true, "PipelineSucceeded", "", now);
        }
        RunState::Failed | RunState::Canceled => {
            let failed: Vec<String> = engine
                .records
                .iter()
                .filter(|(_, r)| {
                    r.kind == crate::pipeline::engine::NodeKind::Task
                        && matches!(r.state, TaskState::Failed)
                })
                .map(|(p, r)| format!("task '{p}': {}", r.message.clone().unwrap_or_default()))
                .collect();
            let (reason, message) = if st.state == RunState::Canceled {
                ("PipelineCanceled", "canceled (spec.cancel)".to_string())
            } else {
                ("PipelineFailed", failed.join("; "))
            };
            st.completion_time.get_or_insert_with(|| now.to_string());
            st.set_condition(CONDITION_RUNNING, false, reason, &message, now);
            st.set_condition(CONDITION_SUCCEEDED, false, reason, &message, now);
            st.set_condition(CONDITION_FAILED, true, reason, &message, now);
        }
        _ => {
            let running = engine.running().len();
            st.set_condition(
                CONDITION_RUNNING,
                true,
                "PipelineRunning",
                &format!("{running} task pod(s) running"),
                now,
            );
        }
    }
    st
}

/// Requeue after a failure, with the reason logged.
pub fn on_error(run: Arc<PipelineRun>, err: &Error, _ctx: Arc<Context>) -> Requeue {
    tracing::warn!(run = %run.name_any(), error = %err, "pipeline run reconcile failed; retrying");
    Requeue::requeue(Duration::from_secs(5))
}
