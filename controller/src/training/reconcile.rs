//! Reconciling PyTorchJobs and TFJobs on Kubernetes: the job's pods observed, one step of
//! [`super::status::step`] taken, its actions carried out (pods and headless Services created,
//! exited replicas recreated, pods cleaned up, the job deleted after its TTL), events recorded
//! and the status written. Pods are owned by the job, so their changes trigger a reconcile.

use super::crd::{JobStatus, PyTorchJob, TFJob};
use super::desired;
use super::job::Job;
use super::labels::RECREATIONS;
use super::status::{self, Action, Observed, ReplicaState, Which};
use crate::error::{Error, SpecError};
use k8s_openapi::api::core::v1::{Pod, Service};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::NamespaceResourceScope;
use kube::api::{DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::runtime::controller::Action as Requeue;
use kube::runtime::events::Recorder;
use kube::{Api, Client, Resource, ResourceExt};
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::fmt::Debug;
use std::sync::Arc;
use std::time::Duration;

/// A training job kind the controller runs.
pub trait TrainingJob:
    Resource<DynamicType = (), Scope = NamespaceResourceScope>
    + Clone
    + Debug
    + DeserializeOwned
    + Serialize
    + Send
    + Sync
    + 'static
{
    fn job(&self) -> Result<Job, SpecError>;
    fn job_status(&self) -> Option<&JobStatus>;
}

impl TrainingJob for PyTorchJob {
    fn job(&self) -> Result<Job, SpecError> {
        super::validate::pytorch(self)
    }
    fn job_status(&self) -> Option<&JobStatus> {
        self.status.as_ref()
    }
}

impl TrainingJob for TFJob {
    fn job(&self) -> Result<Job, SpecError> {
        super::validate::tf(self)
    }
    fn job_status(&self) -> Option<&JobStatus> {
        self.status.as_ref()
    }
}

/// What the training reconcilers share.
pub struct Context {
    pub client: Client,
    pub recorder: Recorder,
}

impl Context {
    pub fn new(client: Client) -> Context {
        let recorder = crate::events::recorder(&client);
        Context { client, recorder }
    }
}

/// What a pod says about its replica.
pub fn observe(pod: &Pod, main_container: &str) -> (ReplicaState, i32, bool) {
    let recreations = pod
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(RECREATIONS))
        .and_then(|v| v.parse::<i32>().ok())
        .unwrap_or(0);
    let st = pod.status.as_ref();
    let containers = st
        .and_then(|s| s.container_statuses.as_deref())
        .unwrap_or_default();
    let in_place: i32 = containers.iter().map(|c| c.restart_count).sum();
    let restarting = containers.iter().any(|c| {
        c.restart_count > 0 && c.state.as_ref().and_then(|s| s.waiting.as_ref()).is_some()
    });
    if pod.metadata.deletion_timestamp.is_some() {
        return (ReplicaState::Pending, recreations + in_place, restarting);
    }
    let exit_code = || {
        let code_of = |c: &k8s_openapi::api::core::v1::ContainerStatus| {
            c.state
                .as_ref()
                .and_then(|s| s.terminated.as_ref())
                .map(|t| t.exit_code)
        };
        containers
            .iter()
            .find(|c| c.name == main_container)
            .and_then(code_of)
            .or_else(|| containers.iter().filter_map(code_of).find(|c| *c != 0))
            // A pod failed without a container exit code (evicted, lost node): retryable.
            .unwrap_or(137)
    };
    let state = match st.and_then(|s| s.phase.as_deref()) {
        Some("Running") => ReplicaState::Running,
        Some("Succeeded") => ReplicaState::Exited(0),
        Some("Failed") => ReplicaState::Exited(exit_code()),
        _ => ReplicaState::Pending,
    };
    (state, recreations + in_place, restarting)
}

/// Whether the job (its uid) is the object's controller. A job deleted and created again under
/// the same name finds its predecessor's pods and Services (same names and labels) until the
/// garbage collector removes them: those are not its own.
fn controlled_by(meta: &ObjectMeta, uid: Option<&str>) -> bool {
    meta.owner_references
        .iter()
        .flatten()
        .any(|o| o.controller == Some(true) && Some(o.uid.as_str()) == uid)
}

fn is_active(pod: &Pod) -> bool {
    !matches!(
        pod.status.as_ref().and_then(|s| s.phase.as_deref()),
        Some("Succeeded") | Some("Failed")
    )
}

async fn delete_pod(api: &Api<Pod>, name: &str, now: bool) -> Result<(), Error> {
    let dp = if now {
        // The replica has exited: nothing is left to stop, and its name is needed again.
        DeleteParams {
            grace_period_seconds: Some(0),
            ..DeleteParams::background()
        }
    } else {
        DeleteParams::background()
    };
    match api.delete(name, &dp).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(e)) if e.code == 404 => Ok(()),
        Err(e) => Err(e.into()),
    }
}

async fn create_if_absent<K>(api: &Api<K>, obj: &K) -> Result<bool, Error>
where
    K: Resource + Clone + Serialize + DeserializeOwned + Debug,
{
    match api.create(&PostParams::default(), obj).await {
        Ok(_) => Ok(true),
        Err(kube::Error::Api(e)) if e.code == 409 => Ok(false),
        Err(e) => Err(e.into()),
    }
}

async fn publish<K: TrainingJob>(ctx: &Context, obj: &K, warning: bool, reason: &str, note: &str) {
    crate::events::publish(&ctx.recorder, &obj.object_ref(&()), warning, reason, note).await;
}

async fn write_status<K: TrainingJob>(
    api: &Api<K>,
    name: &str,
    st: &JobStatus,
) -> Result<(), Error> {
    let patch = serde_json::json!({ "status": st });
    api.patch_status(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await?;
    Ok(())
}

fn now() -> k8s_openapi::jiff::Timestamp {
    k8s_openapi::jiff::Timestamp::now()
}

/// Reconciles one training job.
pub async fn reconcile<K: TrainingJob>(obj: Arc<K>, ctx: Arc<Context>) -> Result<Requeue, Error> {
    let ns = obj.namespace().unwrap_or_else(|| "default".into());
    let name = obj.name_any();
    let api: Api<K> = Api::namespaced(ctx.client.clone(), &ns);
    if obj.meta().deletion_timestamp.is_some() {
        return Ok(Requeue::await_change());
    }
    let prev = obj.job_status().cloned().unwrap_or_default();
    let job = match obj.job() {
        Ok(j) => j,
        Err(e) => {
            let message = e.to_string();
            let already = prev.conditions.iter().any(|c| {
                c.type_ == status::FAILED
                    && c.reason.as_deref() == Some(status::INVALID_SPEC)
                    && c.message.as_deref() == Some(message.as_str())
            });
            if !already {
                tracing::warn!(job = %name, namespace = %ns, error = %message, "invalid training job");
                publish(
                    ctx.as_ref(),
                    obj.as_ref(),
                    true,
                    status::INVALID_SPEC,
                    &message,
                )
                .await;
                write_status(&api, &name, &status::invalid(&prev, &message, now())).await?;
            }
            return Ok(Requeue::await_change());
        }
    };
    let owner = obj
        .controller_owner_ref(&())
        .ok_or_else(|| Error::Other("the job has no uid yet".into()))?;
    let pods_api: Api<Pod> = Api::namespaced(ctx.client.clone(), &ns);
    let services: Api<Service> = Api::namespaced(ctx.client.clone(), &ns);
    let uid = obj.meta().uid.as_deref();
    let selector = ListParams::default().labels(&desired::job_selector(&job));
    let pods: Vec<Pod> = pods_api
        .list(&selector)
        .await?
        .items
        .into_iter()
        .filter(|p| controlled_by(&p.metadata, uid))
        .collect();
    let main = job.framework.container();
    let observed: Vec<Observed> = job
        .pods()
        .into_iter()
        .map(|(role, index)| {
            let pod_name = job.pod_name(role, index);
            match pods
                .iter()
                .find(|p| p.metadata.name.as_deref() == Some(pod_name.as_str()))
            {
                Some(p) => {
                    let (state, restarts, restarting) = observe(p, main);
                    Observed {
                        role,
                        index,
                        state,
                        restarts,
                        restarting,
                    }
                }
                None => Observed {
                    role,
                    index,
                    state: ReplicaState::Missing,
                    restarts: 0,
                    restarting: false,
                },
            }
        })
        .collect();
    let step = status::step(&job, &observed, &prev, now());
    let mut busy = false;
    // Every replica of a job that runs has its Service, created before its pod. Checked on each
    // reconcile: a predecessor's Service of the same name (a job deleted and created again)
    // blocks the name until the garbage collector removes it, which no watch reports.
    let finished =
        status::has(&step.status, status::SUCCEEDED) || status::has(&step.status, status::FAILED);
    if !job.suspend && !finished {
        let existing: Vec<String> = services
            .list(&selector)
            .await?
            .items
            .into_iter()
            .filter(|s| controlled_by(&s.metadata, uid))
            .map(|s| s.name_any())
            .collect();
        for (role, index) in job.pods() {
            if existing.contains(&job.pod_name(role, index)) {
                continue;
            }
            if let Some(svc) = desired::service(&job, role, index, &owner) {
                if !create_if_absent(&services, &svc).await? {
                    busy = true;
                }
            }
        }
    }
    for action in &step.actions {
        match action {
            Action::Create { role, index } => {
                if let Some(pod) = desired::pod(&job, role, *index, &owner, 0) {
                    create_if_absent(&pods_api, &pod).await?;
                }
                busy = true;
            }
            Action::Restart { role, index } => {
                let pod_name = job.pod_name(role, *index);
                let before = observed
                    .iter()
                    .find(|o| o.role == *role && o.index == *index)
                    .map(|o| o.restarts)
                    .unwrap_or(0);
                delete_pod(&pods_api, &pod_name, true).await?;
                if let Some(pod) = desired::pod(&job, role, *index, &owner, before + 1) {
                    create_if_absent(&pods_api, &pod).await?;
                }
                busy = true;
            }
            Action::DeletePods(which) => {
                for p in &pods {
                    if *which == Which::All || is_active(p) {
                        delete_pod(&pods_api, &p.name_any(), !is_active(p)).await?;
                    }
                }
                if *which == Which::All {
                    let svcs = services.list(&selector).await?;
                    for s in svcs.into_iter().filter(|s| controlled_by(&s.metadata, uid)) {
                        match services
                            .delete(&s.name_any(), &DeleteParams::background())
                            .await
                        {
                            Ok(_) => {}
                            Err(kube::Error::Api(e)) if e.code == 404 => {}
                            Err(e) => return Err(e.into()),
                        }
                    }
                }
            }
            Action::DeleteJob => {
                tracing::info!(job = %name, namespace = %ns, "deleting the job: ttlSecondsAfterFinished has passed");
                match api.delete(&name, &DeleteParams::background()).await {
                    Ok(_) => {}
                    Err(kube::Error::Api(e)) if e.code == 404 => {}
                    Err(e) => return Err(e.into()),
                }
                return Ok(Requeue::await_change());
            }
        }
    }
    for n in &step.notes {
        publish(ctx.as_ref(), obj.as_ref(), n.warning, &n.reason, &n.message).await;
    }
    if step.status != prev {
        let mut st = step.status.clone();
        st.last_reconcile_time = Some(status::format_time(now()));
        write_status(&api, &name, &st).await?;
    }
    let wait = if busy {
        Duration::from_secs(2)
    } else {
        step.requeue
            .map(|d| d + Duration::from_millis(500))
            .unwrap_or(Duration::from_secs(300))
            .min(Duration::from_secs(300))
    };
    Ok(Requeue::requeue(wait))
}

/// Requeue after a failure, with the reason logged.
pub fn on_error<K: TrainingJob>(obj: Arc<K>, err: &Error, _ctx: Arc<Context>) -> Requeue {
    tracing::warn!(job = %obj.name_any(), error = %err, "training job reconcile failed; retrying");
    Requeue::requeue(Duration::from_secs(5))
}
