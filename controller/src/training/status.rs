//! The job's state machine, shared by the controller and `osprey train run`: from what the
//! replicas are doing and the previous status, the next status (conditions, replica counts,
//! times), the actions to take (create, restart, delete pods; delete the job after its TTL) and
//! the events to record. Pure: no clock and no I/O of its own, so the two runners cannot differ.

use super::crd::{JobCondition, JobStatus, ReplicaStatus};
use super::job::{CleanPodPolicy, Framework, Job};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use std::collections::BTreeMap;
use std::time::Duration;

/// What a replica is doing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReplicaState {
    /// No pod (or process) exists for it.
    Missing,
    /// Created, not running yet.
    Pending,
    Running,
    /// Finished with this exit code and not restarted in place.
    Exited(i32),
}

/// One replica as observed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Observed {
    pub role: &'static str,
    pub index: i32,
    pub state: ReplicaState,
    /// Times this replica has been restarted, in place or recreated.
    pub restarts: i32,
    /// Crashed and waiting to be restarted in place (the kubelet's back-off).
    pub restarting: bool,
}

/// Which pods to delete.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Which {
    All,
    /// Pending and running ones.
    Active,
}

/// Something a runner must do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    Create {
        role: &'static str,
        index: i32,
    },
    /// Remove the exited replica and create it again.
    Restart {
        role: &'static str,
        index: i32,
    },
    DeletePods(Which),
    /// The TTL after finishing has passed.
    DeleteJob,
}

/// An event to record about the job.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Note {
    pub warning: bool,
    pub reason: String,
    pub message: String,
}

/// The outcome of one step.
#[derive(Clone, Debug, PartialEq)]
pub struct Step {
    pub status: JobStatus,
    pub actions: Vec<Action>,
    pub notes: Vec<Note>,
    /// Look again after this long even if nothing changes (deadline, TTL).
    pub requeue: Option<Duration>,
}

/// The condition types.
pub const CREATED: &str = "Created";
pub const RUNNING: &str = "Running";
pub const RESTARTING: &str = "Restarting";
pub const SUCCEEDED: &str = "Succeeded";
pub const SUSPENDED: &str = "Suspended";
pub const FAILED: &str = "Failed";

/// Reasons beyond `<Kind><Condition>`.
pub const BACKOFF_LIMIT_EXCEEDED: &str = "BackoffLimitExceeded";
pub const DEADLINE_EXCEEDED: &str = "DeadlineExceeded";
pub const INVALID_SPEC: &str = "InvalidSpec";

/// Kubernetes' time format (seconds).
pub fn format_time(t: Timestamp) -> String {
    t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

fn parse_time(s: &str) -> Option<Timestamp> {
    s.parse().ok()
}

/// Whether the condition is there and True.
pub fn has(status: &JobStatus, type_: &str) -> bool {
    status
        .conditions
        .iter()
        .any(|c| c.type_ == type_ && c.status == "True")
}

/// Sets a condition (moved to the end when it changes, so the newest change is last, as the
/// `State` column reads it), keeping Running, Restarting and the finished conditions
/// consistent: Running and Restarting exclude each other, and a finished job is neither (those
/// turn False where they are).
pub fn set_condition(
    status: &mut JobStatus,
    type_: &str,
    value: bool,
    reason: &str,
    message: &str,
    now: &str,
) {
    if upsert_condition(&mut status.conditions, type_, value, reason, message, now) && value {
        let excluded: &[&str] = match type_ {
            RUNNING => &[RESTARTING],
            RESTARTING => &[RUNNING],
            SUCCEEDED | FAILED => &[RUNNING, RESTARTING],
            _ => &[],
        };
        for c in status.conditions.iter_mut() {
            if excluded.contains(&c.type_.as_str()) && c.status == "True" {
                c.status = "False".into();
                c.last_transition_time = Some(now.to_string());
                c.last_update_time = Some(now.to_string());
            }
        }
    }
}

/// Sets condition `type_` in `conditions` (one per type): unchanged, nothing happens; changed,
/// it moves to the end with `now` as its update time (and transition time when its status
/// changed). Returns whether it changed. Shared with Katib's Experiments and Trials.
pub fn upsert_condition(
    conditions: &mut Vec<JobCondition>,
    type_: &str,
    value: bool,
    reason: &str,
    message: &str,
    now: &str,
) -> bool {
    let v = if value { "True" } else { "False" };
    match conditions.iter().position(|c| c.type_ == type_) {
        Some(pos) => {
            let same = conditions.get(pos).is_some_and(|c| {
                c.status == v
                    && c.reason.as_deref() == Some(reason)
                    && c.message.as_deref() == Some(message)
            });
            if same {
                return false;
            }
            let mut c = conditions.remove(pos);
            if c.status != v {
                c.last_transition_time = Some(now.to_string());
            }
            c.status = v.into();
            c.reason = Some(reason.into());
            c.message = Some(message.into());
            c.last_update_time = Some(now.to_string());
            conditions.push(c);
        }
        None => conditions.push(JobCondition {
            type_: type_.into(),
            status: v.into(),
            reason: Some(reason.into()),
            message: Some(message.into()),
            last_update_time: Some(now.to_string()),
            last_transition_time: Some(now.to_string()),
        }),
    }
    true
}

/// The label selector of a replica type's pods.
pub fn selector(job: &Job, role: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        (super::labels::JOB_NAME.to_string(), job.name.clone()),
        (
            super::labels::OPERATOR_NAME.to_string(),
            job.framework.operator_name().to_string(),
        ),
        (super::labels::REPLICA_TYPE.to_string(), role.to_lowercase()),
    ])
}

fn replica_statuses(job: &Job, observed: &[Observed]) -> BTreeMap<String, ReplicaStatus> {
    job.replicas
        .iter()
        .map(|r| {
            let of_role = observed.iter().filter(|o| o.role == r.role);
            let (mut active, mut succeeded, mut failed) = (0, 0, 0);
            for o in of_role {
                match o.state {
                    ReplicaState::Pending | ReplicaState::Running => active += 1,
                    ReplicaState::Exited(0) => succeeded += 1,
                    ReplicaState::Exited(_) => failed += 1,
                    ReplicaState::Missing => {}
                }
            }
            let labels = selector(job, r.role);
            let text = labels
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(",");
            (
                r.role.to_string(),
                ReplicaStatus {
                    active: Some(active),
                    succeeded: Some(succeeded),
                    failed: Some(failed),
                    label_selector: Some(LabelSelector {
                        match_labels: Some(labels),
                        match_expressions: None,
                    }),
                    selector: Some(text),
                },
            )
        })
        .collect()
}

fn succeeded(job: &Job, observed: &[Observed]) -> bool {
    let done = |role: &str| {
        observed
            .iter()
            .filter(|o| o.role == role && o.state == ReplicaState::Exited(0))
            .count() as i32
    };
    let count = |role: &str| job.replica(role).map(|r| r.count).unwrap_or(0);
    let worker0 = observed
        .iter()
        .any(|o| o.role == "Worker" && o.index == 0 && o.state == ReplicaState::Exited(0));
    match job.framework {
        Framework::PyTorch => {
            if job.replica("Master").is_some() {
                done("Master") >= 1
            } else {
                let w = done("Worker");
                (w >= count("Worker") && count("Worker") > 0) || (job.elastic.is_some() && w > 0)
            }
        }
        Framework::TensorFlow => {
            if let Some(r) = ["Chief", "Master"].into_iter().find(|r| count(r) > 0) {
                done(r) >= count(r)
            } else {
                let w = done("Worker");
                count("Worker") > 0 && (w >= count("Worker") || (worker0 && !job.all_workers))
            }
        }
    }
}

fn reason(job: &Job, what: &str) -> String {
    format!("{}{what}", job.framework.kind())
}

/// How a job ends.
struct Ending<'a> {
    success: bool,
    why: &'a str,
    message: &'a str,
    /// Stop running pods whatever cleanPodPolicy says (deadline, backoff limit).
    forced: bool,
}

/// The step of a job that ends now: the finished condition, its completion time and event; no
/// replica created or restarted; pods cleaned up (see [`cleanup`]).
fn ended(
    job: &Job,
    observed: &[Observed],
    mut st: JobStatus,
    mut actions: Vec<Action>,
    mut notes: Vec<Note>,
    e: Ending<'_>,
    now: &str,
) -> Step {
    let type_ = if e.success { SUCCEEDED } else { FAILED };
    set_condition(&mut st, type_, true, e.why, e.message, now);
    if st.completion_time.is_none() {
        st.completion_time = Some(now.to_string());
    }
    notes.push(Note {
        warning: !e.success,
        reason: e.why.to_string(),
        message: e.message.to_string(),
    });
    actions.retain(|a| !matches!(a, Action::Create { .. } | Action::Restart { .. }));
    actions.extend(cleanup(job, observed, e.forced));
    Step {
        status: st,
        actions,
        notes,
        requeue: None,
    }
}

fn cleanup(job: &Job, observed: &[Observed], forced: bool) -> Option<Action> {
    let exists = observed.iter().any(|o| o.state != ReplicaState::Missing);
    let active = observed
        .iter()
        .any(|o| matches!(o.state, ReplicaState::Pending | ReplicaState::Running));
    match job.clean_pod_policy {
        CleanPodPolicy::All if exists => Some(Action::DeletePods(Which::All)),
        CleanPodPolicy::Running | CleanPodPolicy::None
            if active && (forced || job.clean_pod_policy == CleanPodPolicy::Running) =>
        {
            Some(Action::DeletePods(Which::Active))
        }
        _ => None,
    }
}

/// The job's status as written when its spec is invalid.
pub fn invalid(prev: &JobStatus, message: &str, now: Timestamp) -> JobStatus {
    let now = format_time(now);
    let mut st = prev.clone();
    set_condition(&mut st, FAILED, true, INVALID_SPEC, message, &now);
    if st.completion_time.is_none() {
        st.completion_time = Some(now);
    }
    st
}

/// One step of the state machine.
pub fn step(job: &Job, observed: &[Observed], prev: &JobStatus, now: Timestamp) -> Step {
    let now_s = format_time(now);
    let kind = job.framework.kind();
    let mut st = prev.clone();
    let mut actions = Vec::new();
    let mut notes = Vec::new();
    let mut requeue = None;
    if !st.conditions.iter().any(|c| c.type_ == CREATED) {
        let msg = format!("{kind} {} is created.", job.name);
        set_condition(
            &mut st,
            CREATED,
            true,
            &reason(job, "Created"),
            &msg,
            &now_s,
        );
        notes.push(Note {
            warning: false,
            reason: reason(job, "Created"),
            message: msg,
        });
    }
    st.replica_statuses = replica_statuses(job, observed);

    // A finished job only cleans up, and goes once its TTL has passed.
    if has(&st, SUCCEEDED) || has(&st, FAILED) {
        let forced = st.conditions.iter().any(|c| {
            c.type_ == FAILED
                && c.status == "True"
                && matches!(
                    c.reason.as_deref(),
                    Some(BACKOFF_LIMIT_EXCEEDED) | Some(DEADLINE_EXCEEDED)
                )
        });
        actions.extend(cleanup(job, observed, forced));
        if let (Some(ttl), Some(done)) = (
            job.ttl_seconds_after_finished,
            st.completion_time.as_deref().and_then(parse_time),
        ) {
            let at = done + SignedDuration::from_secs(ttl);
            if now >= at {
                actions.push(Action::DeleteJob);
            } else {
                requeue = Some(Duration::from_secs_f64(
                    at.duration_since(now).as_secs_f64().max(0.0),
                ));
            }
        }
        return Step {
            status: st,
            actions,
            notes,
            requeue,
        };
    }

    if job.suspend {
        if observed.iter().any(|o| o.state != ReplicaState::Missing) {
            actions.push(Action::DeletePods(Which::All));
        }
        if !has(&st, SUSPENDED) {
            let msg = format!("{kind} {} is suspended.", job.name);
            set_condition(
                &mut st,
                RUNNING,
                false,
                &reason(job, "Suspended"),
                &msg,
                &now_s,
            );
            set_condition(
                &mut st,
                SUSPENDED,
                true,
                &reason(job, "Suspended"),
                &msg,
                &now_s,
            );
            st.start_time = None;
            notes.push(Note {
                warning: false,
                reason: reason(job, "Suspended"),
                message: msg,
            });
        }
        return Step {
            status: st,
            actions,
            notes,
            requeue,
        };
    }
    if has(&st, SUSPENDED) {
        let msg = format!("{kind} {} is resumed.", job.name);
        set_condition(
            &mut st,
            SUSPENDED,
            false,
            &reason(job, "Resumed"),
            &msg,
            &now_s,
        );
        notes.push(Note {
            warning: false,
            reason: reason(job, "Resumed"),
            message: msg,
        });
    }
    let start = match st.start_time.as_deref().and_then(parse_time) {
        Some(t) => t,
        None => {
            st.start_time = Some(now_s.clone());
            now
        }
    };

    if let Some(deadline) = job.active_deadline_seconds {
        let at = start + SignedDuration::from_secs(deadline);
        if now >= at {
            let msg = format!(
                "{kind} {} has failed because it was active longer than specified deadline ({deadline} s).",
                job.name
            );
            return ended(
                job,
                observed,
                st,
                actions,
                notes,
                Ending {
                    success: false,
                    why: DEADLINE_EXCEEDED,
                    message: &msg,
                    forced: true,
                },
                &now_s,
            );
        }
        requeue = Some(Duration::from_secs_f64(
            at.duration_since(now).as_secs_f64().max(0.0),
        ));
    }

    if succeeded(job, observed) {
        let msg = format!("{kind} {} is successfully completed.", job.name);
        let why = reason(job, "Succeeded");
        return ended(
            job,
            observed,
            st,
            actions,
            notes,
            Ending {
                success: true,
                why: &why,
                message: &msg,
                forced: false,
            },
            &now_s,
        );
    }

    let mut restarts: i32 = observed.iter().map(|o| o.restarts).sum();
    let over_limit = |n: i32| job.backoff_limit.map(|b| n > b).unwrap_or(false);
    let backoff_message = |n: i32| {
        format!(
            "{kind} {} has failed because it has reached the specified backoff limit ({} restarts, backoffLimit {}).",
            job.name,
            n,
            job.backoff_limit.unwrap_or(0)
        )
    };
    if over_limit(restarts) {
        let msg = backoff_message(restarts);
        return ended(
            job,
            observed,
            st,
            actions,
            notes,
            Ending {
                success: false,
                why: BACKOFF_LIMIT_EXCEEDED,
                message: &msg,
                forced: true,
            },
            &now_s,
        );
    }
    let mut restarting: Vec<String> = Vec::new();
    for o in observed {
        let Some(r) = job.replica(o.role) else {
            continue;
        };
        match o.state {
            ReplicaState::Missing => actions.push(Action::Create {
                role: o.role,
                index: o.index,
            }),
            ReplicaState::Exited(code) if r.restart.restarts(code) => {
                if over_limit(restarts + 1) {
                    let msg = backoff_message(restarts + 1);
                    return ended(
                        job,
                        observed,
                        st,
                        actions,
                        notes,
                        Ending {
                            success: false,
                            why: BACKOFF_LIMIT_EXCEEDED,
                            message: &msg,
                            forced: true,
                        },
                        &now_s,
                    );
                }
                restarts += 1;
                restarting.push(format!("{} {} (exit code {code})", o.role, o.index));
                actions.push(Action::Restart {
                    role: o.role,
                    index: o.index,
                });
            }
            ReplicaState::Exited(0) => {}
            ReplicaState::Exited(code) => {
                let msg = format!(
                    "{kind} {} is failed because {} replica {} exited with code {code} (restartPolicy {:?}).",
                    job.name, o.role, o.index, r.restart
                );
                let why = reason(job, "Failed");
                return ended(
                    job,
                    observed,
                    st,
                    actions,
                    notes,
                    Ending {
                        success: false,
                        why: &why,
                        message: &msg,
                        forced: false,
                    },
                    &now_s,
                );
            }
            ReplicaState::Pending | ReplicaState::Running => {
                if o.restarting {
                    restarting.push(format!("{} {}", o.role, o.index));
                }
            }
        }
    }
    if !restarting.is_empty() {
        let msg = format!(
            "{kind} {} is restarting because {} replica(s) failed: {}.",
            job.name,
            restarting.len(),
            restarting.join(", ")
        );
        let was = has(&st, RESTARTING);
        set_condition(
            &mut st,
            RESTARTING,
            true,
            &reason(job, "Restarting"),
            &msg,
            &now_s,
        );
        if !was || actions.iter().any(|a| matches!(a, Action::Restart { .. })) {
            notes.push(Note {
                warning: true,
                reason: reason(job, "Restarting"),
                message: msg,
            });
        }
    } else if observed.iter().any(|o| o.state == ReplicaState::Running) {
        let msg = format!("{kind} {} is running.", job.name);
        set_condition(
            &mut st,
            RUNNING,
            true,
            &reason(job, "Running"),
            &msg,
            &now_s,
        );
    }
    Step {
        status: st,
        actions,
        notes,
        requeue,
    }
}
