//! A pipeline task's pod, and what a finished one says. Pure functions: no API calls.
//!
//! The pod ([`task_pod`]): an init container from the launcher image copies its `osprey` binary
//! into an emptyDir mounted at `/osprey`; the main container runs the component's image with
//! `/osprey/osprey pipeline launch --executor-input '<json>' ... -- <command> <args>` (the
//! component's command and args unsubstituted: the launcher substitutes the placeholders), the
//! component's env, the pipeline root volume at `spec.pipelineRoot`, and writes its outputs to
//! `/dev/termination-log`. restartPolicy Never (a retry is a new pod, a new attempt), owned by
//! the PipelineRun (controller reference), named and labelled after the run and the task.
//!
//! The outcome ([`task_result`]): a Succeeded pod's outputs from the main container's
//! termination message, or why a Failed pod failed.

use super::crd::PipelineRun;
use crate::pipeline::executor::TaskOutputs;
use crate::pipeline::launch::{decode_outputs, definitions_json, DEFAULT_TERMINATION_LOG};
use crate::pipeline::spec::{Container as ComponentContainer, Definitions};
use k8s_openapi::api::core::v1::{
    Container, ContainerState, ContainerStatus, EmptyDirVolumeSource, EnvVar, Pod, PodSpec, Volume,
    VolumeMount,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::{Resource, ResourceExt};
use serde_json::Value;
use std::collections::BTreeMap;

/// Label: the PipelineRun's name (label-safe: cut and hashed when longer than 63).
pub const RUN_LABEL: &str = "pipelines.osprey.dev/run";
/// Label: the PipelineRun's uid (a run deleted and created again under the same name differs).
pub const RUN_UID_LABEL: &str = "pipelines.osprey.dev/run-uid";
/// Label: the task path, label-safe (as it is when it can be, else sanitised and hashed).
pub const TASK_LABEL: &str = "pipelines.osprey.dev/task";
/// Annotation: the full task path (`for-loop-2[1]/square`).
pub const TASK_ANNOTATION: &str = "pipelines.osprey.dev/task-path";
/// Annotation: the attempt number (0 for the first pod of a task, 1 for its first retry...).
pub const ATTEMPT_ANNOTATION: &str = "pipelines.osprey.dev/attempt";

/// The component's container in a task pod.
pub const MAIN_CONTAINER: &str = "main";
/// The init container that brings the launcher in.
pub const LAUNCHER_CONTAINER: &str = "osprey-launcher";
/// The emptyDir holding the launcher binary, and where it is mounted.
pub const LAUNCHER_VOLUME: &str = "osprey-launcher";
pub const LAUNCHER_DIR: &str = "/osprey";
/// The launcher binary inside the task pod.
pub const LAUNCHER_PATH: &str = "/osprey/osprey";
/// The volume mounted at the pipeline root.
pub const ROOT_VOLUME: &str = "pipeline-root";

/// Why a task pod cannot be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PodError {
    /// The PipelineRun lacks metadata the API server always sets.
    #[error("the PipelineRun has no metadata.{0} (not read from the API server?)")]
    RunMetadata(&'static str),
    /// The component's container has no command: the launcher wraps command + args, and an
    /// image's own entrypoint cannot be known here.
    #[error(
        "task '{0}': the component's container has no command (the launcher runs command + \
         args; an image's entrypoint cannot be wrapped)"
    )]
    NoCommand(String),
    /// The component's container has no image.
    #[error("task '{0}': the component's container has no image")]
    NoImage(String),
}

/// Everything a task pod is made of.
#[derive(Debug, Clone, Copy)]
pub struct TaskPod<'a> {
    /// The PipelineRun as read from the API server (name, namespace, uid, spec).
    pub run: &'a PipelineRun,
    /// The task's path (`train`, `for-loop-2[1]/square`).
    pub task: &'a str,
    /// 0 for the first pod of the task, then 1, 2... for retries.
    pub attempt: u32,
    /// The component's executor container (image, command, args, env).
    pub container: &'a ComponentContainer,
    /// The component's output definitions (the launcher reads each output per its type).
    pub outputs: &'a Definitions,
    /// The task's ExecutorInput JSON; its output paths must be under the pipeline root.
    pub executor_input: &'a Value,
    /// The image holding the `osprey` binary (the controller's own image).
    pub launcher_image: &'a str,
}

/// 64-bit FNV-1a: stable across Rust releases and processes, so a name computed after a
/// controller restart is the same.
fn fnv1a(parts: &[&str]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in parts.join("\0").bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// 10 hex digits of the hash of `parts`.
fn short_hash(parts: &[&str]) -> String {
    format!("{:010x}", fnv1a(parts) >> 24)
}

/// Lower-case letters and digits kept, every other run of characters one `-`, no `-` at
/// either end.
fn sanitize(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        let c = c.to_ascii_lowercase();
        if c.is_ascii_lowercase() || c.is_ascii_digit() {
            out.push(c);
        } else if !out.is_empty() && !out.ends_with('-') {
            out.push('-');
        }
    }
    while out.ends_with('-') {
        out.pop();
    }
    out
}

/// `s` cut to at most `max` characters (all ASCII here), without a trailing `-`.
fn cut(s: &str, max: usize) -> String {
    let mut t: String = s.chars().take(max).collect();
    while t.ends_with('-') {
        t.pop();
    }
    t
}

/// The task pod's name: `<run>-<task>-<hash>`, a DNS-1123 label of at most 63 characters
/// (run and task sanitised and cut to fit), the hash over the run's uid, the task path and the
/// attempt, so that every attempt of every task of every incarnation of a run differs.
pub fn pod_name(run_name: &str, run_uid: &str, task: &str, attempt: u32) -> String {
    let hash = short_hash(&[run_uid, task, &attempt.to_string()]);
    let readable = [sanitize(run_name), sanitize(task)]
        .into_iter()
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join("-");
    let base = cut(&readable, 63 - 1 - hash.len());
    if base.is_empty() {
        format!("task-{hash}")
    } else {
        format!("{base}-{hash}")
    }
}

fn is_label_value(s: &str) -> bool {
    let alnum = |c: Option<char>| c.is_some_and(|c| c.is_ascii_alphanumeric());
    s.is_empty()
        || (s.len() <= 63
            && alnum(s.chars().next())
            && alnum(s.chars().last())
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')))
}

/// `s` as a label value: as it is when it is one, else sanitised, cut and suffixed with a hash
/// of `s` (so different values stay different).
pub fn label_value(s: &str) -> String {
    if is_label_value(s) {
        return s.to_string();
    }
    let hash = short_hash(&[s]);
    let base = cut(&sanitize(s), 63 - 1 - hash.len());
    if base.is_empty() {
        hash
    } else {
        format!("{base}-{hash}")
    }
}

/// Kubernetes expands `$(VAR)` in a container's command and args (and turns `$$` into `$`):
/// our own values are escaped so that they arrive as written.
fn literal(s: &str) -> String {
    s.replace('$', "$$")
}

/// The labels selecting every pod of a run.
pub fn run_labels(run: &PipelineRun) -> BTreeMap<String, String> {
    let mut l = BTreeMap::from([(RUN_LABEL.to_string(), label_value(&run.name_any()))]);
    if let Some(uid) = run.meta().uid.as_deref() {
        l.insert(RUN_UID_LABEL.to_string(), label_value(uid));
    }
    l
}

/// The label selector (`key=value,...`) of every pod of a run.
pub fn run_selector(run: &PipelineRun) -> String {
    run_labels(run)
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",")
}

/// The pod running one attempt of one task.
pub fn task_pod(t: &TaskPod<'_>) -> Result<Pod, PodError> {
    let meta = t.run.meta();
    let name = meta.name.as_deref().ok_or(PodError::RunMetadata("name"))?;
    let namespace = meta
        .namespace
        .as_deref()
        .ok_or(PodError::RunMetadata("namespace"))?;
    let uid = meta.uid.as_deref().ok_or(PodError::RunMetadata("uid"))?;
    let owner = t
        .run
        .controller_owner_ref(&())
        .ok_or(PodError::RunMetadata("uid"))?;
    if t.container.command.is_empty() {
        return Err(PodError::NoCommand(t.task.to_string()));
    }
    if t.container.image.trim().is_empty() {
        return Err(PodError::NoImage(t.task.to_string()));
    }
    let spec = &t.run.spec;
    let root = spec.pipeline_root();
    let mut labels = run_labels(t.run);
    labels.insert(TASK_LABEL.to_string(), label_value(t.task));
    let annotations = BTreeMap::from([
        (TASK_ANNOTATION.to_string(), t.task.to_string()),
        (ATTEMPT_ANNOTATION.to_string(), t.attempt.to_string()),
    ]);
    let mut command: Vec<String> = vec![
        LAUNCHER_PATH.into(),
        "pipeline".into(),
        "launch".into(),
        "--task".into(),
        literal(t.task),
        "--run-name".into(),
        literal(name),
        "--run-id".into(),
        literal(uid),
        "--pipeline-root".into(),
        literal(root),
        "--outputs-file".into(),
        DEFAULT_TERMINATION_LOG.into(),
        "--output-definitions".into(),
        literal(&definitions_json(t.outputs).to_string()),
        "--executor-input".into(),
        literal(&t.executor_input.to_string()),
        "--".into(),
    ];
    // The component's own command and args go as written: Kubernetes expands `$(VAR)` in them
    // as in any container's.
    command.extend(t.container.command.iter().cloned());
    command.extend(t.container.args.iter().cloned());
    let env: Vec<EnvVar> = t
        .container
        .env
        .iter()
        .map(|e| EnvVar {
            name: e.name.clone(),
            value: Some(e.value.clone()),
            value_from: None,
        })
        .collect();
    let launcher_mount = |read_only: bool| VolumeMount {
        name: LAUNCHER_VOLUME.into(),
        mount_path: LAUNCHER_DIR.into(),
        read_only: Some(read_only),
        ..Default::default()
    };
    let init = Container {
        name: LAUNCHER_CONTAINER.into(),
        image: Some(t.launcher_image.to_string()),
        command: Some(vec![
            "osprey".into(),
            "pipeline".into(),
            "launch".into(),
            "--copy-to".into(),
            LAUNCHER_PATH.into(),
        ]),
        volume_mounts: Some(vec![launcher_mount(false)]),
        termination_message_policy: Some("FallbackToLogsOnError".into()),
        ..Default::default()
    };
    let main = Container {
        name: MAIN_CONTAINER.into(),
        image: Some(t.container.image.clone()),
        command: Some(command),
        env: (!env.is_empty()).then_some(env),
        volume_mounts: Some(vec![
            launcher_mount(true),
            VolumeMount {
                name: ROOT_VOLUME.into(),
                mount_path: root.to_string(),
                ..Default::default()
            },
        ]),
        termination_message_path: Some(DEFAULT_TERMINATION_LOG.into()),
        // A failed task's message is the end of its log (the launcher writes the outputs only
        // when the command succeeded).
        termination_message_policy: Some("FallbackToLogsOnError".into()),
        ..Default::default()
    };
    let root_volume = match &spec.pipeline_root_volume {
        Some(source) => source.volume(ROOT_VOLUME),
        None => Volume {
            name: ROOT_VOLUME.into(),
            empty_dir: Some(EmptyDirVolumeSource::default()),
            ..Default::default()
        },
    };
    Ok(Pod {
        metadata: ObjectMeta {
            name: Some(pod_name(name, uid, t.task, t.attempt)),
            namespace: Some(namespace.to_string()),
            labels: Some(labels),
            annotations: Some(annotations),
            owner_references: Some(vec![owner]),
            ..Default::default()
        },
        spec: Some(PodSpec {
            restart_policy: Some("Never".into()),
            service_account_name: spec.service_account_name.clone(),
            init_containers: Some(vec![init]),
            containers: vec![main],
            volumes: Some(vec![
                Volume {
                    name: LAUNCHER_VOLUME.into(),
                    empty_dir: Some(EmptyDirVolumeSource::default()),
                    ..Default::default()
                },
                root_volume,
            ]),
            ..Default::default()
        }),
        status: None,
    })
}

fn statuses(pod: &Pod, init: bool) -> &[ContainerStatus] {
    pod.status
        .as_ref()
        .and_then(|s| {
            if init {
                s.init_container_statuses.as_deref()
            } else {
                s.container_statuses.as_deref()
            }
        })
        .unwrap_or_default()
}

fn describe_terminated(name: &str, state: Option<&ContainerState>) -> Option<String> {
    let t = state?.terminated.as_ref()?;
    let mut s = format!("container {name} exited with code {}", t.exit_code);
    if let Some(r) = t.reason.as_deref().filter(|r| !r.is_empty()) {
        s.push_str(&format!(" ({r})"));
    }
    if let Some(m) = t
        .message
        .as_deref()
        .map(str::trim)
        .filter(|m| !m.is_empty())
    {
        s.push_str(&format!(": {m}"));
    }
    Some(s)
}

/// What a finished task pod says: `None` while it is not finished (phase other than
/// Succeeded or Failed); the task's outputs when it succeeded (from the main container's
/// termination message, written by the launcher); why it failed otherwise (the pod's reason,
/// the failed init container, the main container's exit code, reason and message — the end
/// of its log, with `FallbackToLogsOnError`).
pub fn task_result(pod: &Pod) -> Option<Result<TaskOutputs, String>> {
    let status = pod.status.as_ref()?;
    let pod_name = pod.name_any();
    let main = statuses(pod, false)
        .iter()
        .find(|c| c.name == MAIN_CONTAINER);
    match status.phase.as_deref() {
        Some("Succeeded") => {
            let message = main
                .and_then(|c| c.state.as_ref())
                .and_then(|s| s.terminated.as_ref())
                .and_then(|t| t.message.as_deref());
            Some(match message {
                None => Err(format!(
                    "pod {pod_name} succeeded without a termination message: the launcher's \
                     outputs are missing"
                )),
                Some(m) => decode_outputs(m).map_err(|e| format!("pod {pod_name}: {e}")),
            })
        }
        Some("Failed") => {
            let mut why = Vec::new();
            if let Some(r) = status.reason.as_deref().filter(|r| !r.is_empty()) {
                let m = status.message.as_deref().unwrap_or_default();
                why.push(format!("{r}{}{m}", if m.is_empty() { "" } else { ": " }));
            }
            for c in statuses(pod, true) {
                let failed = c
                    .state
                    .as_ref()
                    .and_then(|s| s.terminated.as_ref())
                    .is_some_and(|t| t.exit_code != 0);
                if failed {
                    if let Some(d) =
                        describe_terminated(&format!("{} (init)", c.name), c.state.as_ref())
                    {
                        why.push(d);
                    }
                }
            }
            if let Some(d) = main.and_then(|c| describe_terminated(&c.name, c.state.as_ref())) {
                why.push(d);
            }
            if why.is_empty() {
                why.push("no container status says why".into());
            }
            Some(Err(format!("pod {pod_name} failed: {}", why.join("; "))))
        }
        _ => None,
    }
}

/// Waiting reasons that keep a pod from ever starting unless something outside it changes.
const STUCK_REASONS: &[&str] = &[
    "ErrImagePull",
    "ImagePullBackOff",
    "InvalidImageName",
    "CreateContainerConfigError",
    "CreateContainerError",
];

/// Why a pod that has not finished is stuck (an image that cannot be pulled, a missing
/// ConfigMap or Secret...): `container <name>: <reason>: <message>`; `None` when nothing
/// says so. The caller decides how long to wait before failing the task.
pub fn stuck_reason(pod: &Pod) -> Option<String> {
    if matches!(
        pod.status.as_ref().and_then(|s| s.phase.as_deref()),
        Some("Succeeded" | "Failed")
    ) {
        return None;
    }
    statuses(pod, true)
        .iter()
        .chain(statuses(pod, false))
        .find_map(|c| {
            let w = c.state.as_ref()?.waiting.as_ref()?;
            let reason = w.reason.as_deref()?;
            STUCK_REASONS.contains(&reason).then(|| {
                let m = w.message.as_deref().unwrap_or_default();
                format!(
                    "container {}: {reason}{}{m}",
                    c.name,
                    if m.is_empty() { "" } else { ": " }
                )
            })
        })
}

/// The task path and attempt a pod was made for (from its annotations).
pub fn pod_task(pod: &Pod) -> Option<(String, u32)> {
    let a = pod.metadata.annotations.as_ref()?;
    let task = a.get(TASK_ANNOTATION)?.clone();
    let attempt = a.get(ATTEMPT_ANNOTATION)?.parse().ok()?;
    Some((task, attempt))
}
