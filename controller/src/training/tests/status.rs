use super::super::crd::JobStatus;
use super::super::job::Job;
use super::super::status::{self, has, step, Action, Observed, ReplicaState, Which};
use super::{pytorch, tf, tf_role};
use k8s_openapi::jiff::{SignedDuration, Timestamp};

fn t(secs: i64) -> Timestamp {
    Timestamp::from_second(1_800_000_000 + secs).expect("time")
}

fn obs(job: &Job, states: &[ReplicaState]) -> Vec<Observed> {
    job.pods()
        .into_iter()
        .zip(states)
        .map(|((role, index), state)| Observed {
            role,
            index,
            state: *state,
            restarts: 0,
            restarting: false,
        })
        .collect()
}

fn condition<'a>(st: &'a JobStatus, type_: &str) -> &'a super::super::crd::JobCondition {
    st.conditions
        .iter()
        .find(|c| c.type_ == type_)
        .unwrap_or_else(|| panic!("no {type_} condition in {:?}", st.conditions))
}

use ReplicaState::{Exited, Missing, Pending, Running};

#[test]
fn a_new_job_is_created_and_its_pods_are_made() {
    let j = pytorch(1, 2, "OnFailure", "");
    let s = step(
        &j,
        &obs(&j, &[Missing, Missing, Missing]),
        &JobStatus::default(),
        t(0),
    );
    assert!(has(&s.status, status::CREATED));
    assert_eq!(
        condition(&s.status, "Created").reason.as_deref(),
        Some("PyTorchJobCreated")
    );
    assert_eq!(s.status.start_time.as_deref(), Some("2027-01-15T08:00:00Z"));
    assert_eq!(
        s.actions,
        vec![
            Action::Create {
                role: "Master",
                index: 0
            },
            Action::Create {
                role: "Worker",
                index: 0
            },
            Action::Create {
                role: "Worker",
                index: 1
            },
        ]
    );
    assert_eq!(s.notes.len(), 1);
    // Running once a pod runs; the same observation again changes nothing.
    let s2 = step(&j, &obs(&j, &[Running, Running, Pending]), &s.status, t(1));
    assert!(has(&s2.status, status::RUNNING));
    assert_eq!(s2.status.replica_statuses["Worker"].active, Some(2));
    let s3 = step(&j, &obs(&j, &[Running, Running, Pending]), &s2.status, t(2));
    assert_eq!(s3.status, s2.status);
    assert!(s3.actions.is_empty());
}

#[test]
fn pytorch_succeeds_with_its_master() {
    let j = pytorch(1, 2, "OnFailure", "cleanPodPolicy: Running");
    let prev = step(
        &j,
        &obs(&j, &[Running, Running, Running]),
        &JobStatus::default(),
        t(0),
    )
    .status;
    let s = step(&j, &obs(&j, &[Exited(0), Running, Running]), &prev, t(5));
    assert!(has(&s.status, status::SUCCEEDED));
    assert!(!has(&s.status, status::RUNNING));
    assert_eq!(
        s.status.completion_time.as_deref(),
        Some("2027-01-15T08:00:05Z")
    );
    assert_eq!(s.actions, vec![Action::DeletePods(Which::Active)]);
    // The newest change is last (the State column).
    assert_eq!(
        s.status.conditions.last().map(|c| c.type_.as_str()),
        Some("Succeeded")
    );
    // A finished job stays finished.
    let after = step(
        &j,
        &obs(&j, &[Exited(0), Exited(1), Missing]),
        &s.status,
        t(9),
    );
    assert!(has(&after.status, status::SUCCEEDED) && !has(&after.status, status::FAILED));
}

#[test]
fn workers_only_succeed_when_all_workers_do() {
    let j = pytorch(0, 2, "OnFailure", "");
    let prev = step(
        &j,
        &obs(&j, &[Running, Running]),
        &JobStatus::default(),
        t(0),
    )
    .status;
    let s = step(&j, &obs(&j, &[Exited(0), Running]), &prev, t(1));
    assert!(!has(&s.status, status::SUCCEEDED));
    let s = step(&j, &obs(&j, &[Exited(0), Exited(0)]), &s.status, t(2));
    assert!(has(&s.status, status::SUCCEEDED));
}

#[test]
fn tf_success_follows_the_chief_or_the_success_policy() {
    let with_chief = tf(
        &format!("{}{}", tf_role("Chief", 1), tf_role("Worker", 2)),
        "",
    );
    let s = step(
        &with_chief,
        &obs(&with_chief, &[Exited(0), Running, Running]),
        &JobStatus::default(),
        t(0),
    );
    assert!(has(&s.status, status::SUCCEEDED));
    let workers = tf(&tf_role("Worker", 2), "");
    let s = step(
        &workers,
        &obs(&workers, &[Exited(0), Running]),
        &JobStatus::default(),
        t(0),
    );
    assert!(
        has(&s.status, status::SUCCEEDED),
        "worker 0 decides by default"
    );
    let all = tf(&tf_role("Worker", 2), "AllWorkers");
    let s = step(
        &all,
        &obs(&all, &[Exited(0), Running]),
        &JobStatus::default(),
        t(0),
    );
    assert!(!has(&s.status, status::SUCCEEDED));
    let s = step(&all, &obs(&all, &[Exited(0), Exited(0)]), &s.status, t(1));
    assert!(has(&s.status, status::SUCCEEDED));
}

#[test]
fn exit_code_retries_signals_and_fails_on_program_errors() {
    let j = pytorch(1, 2, "ExitCode", "");
    let prev = step(
        &j,
        &obs(&j, &[Running, Running, Running]),
        &JobStatus::default(),
        t(0),
    )
    .status;
    let s = step(&j, &obs(&j, &[Running, Running, Exited(137)]), &prev, t(1));
    assert_eq!(
        s.actions,
        vec![Action::Restart {
            role: "Worker",
            index: 1
        }]
    );
    assert!(has(&s.status, status::RESTARTING));
    assert!(!has(&s.status, status::RUNNING));
    assert_eq!(s.status.replica_statuses["Worker"].failed, Some(1));
    assert!(s
        .notes
        .iter()
        .any(|n| n.warning && n.reason == "PyTorchJobRestarting"));
    // Back to running: Restarting turns False.
    let mut again = obs(&j, &[Running, Running, Running]);
    again[2].restarts = 1;
    let s2 = step(&j, &again, &s.status, t(2));
    assert!(has(&s2.status, status::RUNNING) && !has(&s2.status, status::RESTARTING));
    let f = step(
        &j,
        &obs(&j, &[Running, Exited(1), Running]),
        &s2.status,
        t(3),
    );
    assert!(has(&f.status, status::FAILED));
    let c = condition(&f.status, "Failed");
    assert_eq!(c.reason.as_deref(), Some("PyTorchJobFailed"));
    assert!(
        c.message
            .as_deref()
            .unwrap_or("")
            .contains("Worker replica 0 exited with code 1"),
        "{c:?}"
    );
    assert!(
        f.actions.is_empty(),
        "cleanPodPolicy None leaves the pods: {:?}",
        f.actions
    );
}

#[test]
fn restart_policies_decide_by_exit_code() {
    use super::super::job::RestartPolicy::*;
    assert!(Always.restarts(0) && Always.restarts(1));
    assert!(!OnFailure.restarts(0) && OnFailure.restarts(1));
    assert!(!Never.restarts(137));
    assert!(
        ExitCode.restarts(128)
            && ExitCode.restarts(143)
            && !ExitCode.restarts(127)
            && !ExitCode.restarts(1)
    );
    let j = pytorch(1, 0, "Never", "");
    let s = step(&j, &obs(&j, &[Exited(137)]), &JobStatus::default(), t(0));
    assert!(has(&s.status, status::FAILED));
}

#[test]
fn backoff_limit_counts_restarts() {
    let j = pytorch(1, 1, "ExitCode", "backoffLimit: 1");
    let prev = step(
        &j,
        &obs(&j, &[Running, Running]),
        &JobStatus::default(),
        t(0),
    )
    .status;
    let s = step(&j, &obs(&j, &[Running, Exited(137)]), &prev, t(1));
    assert_eq!(
        s.actions,
        vec![Action::Restart {
            role: "Worker",
            index: 0
        }]
    );
    let mut o = obs(&j, &[Running, Exited(137)]);
    o[1].restarts = 1;
    let s = step(&j, &o, &s.status, t(2));
    let c = condition(&s.status, "Failed");
    assert_eq!(c.reason.as_deref(), Some(status::BACKOFF_LIMIT_EXCEEDED));
    assert!(!s
        .actions
        .iter()
        .any(|a| matches!(a, Action::Restart { .. })));
    // The master still running is stopped.
    assert_eq!(s.actions, vec![Action::DeletePods(Which::Active)]);
    // In-place restarts (OnFailure) count too.
    let j = pytorch(1, 0, "OnFailure", "backoffLimit: 2");
    let mut o = obs(&j, &[Running]);
    o[0].restarts = 3;
    let s = step(&j, &o, &JobStatus::default(), t(0));
    assert_eq!(
        condition(&s.status, "Failed").reason.as_deref(),
        Some(status::BACKOFF_LIMIT_EXCEEDED)
    );
}

#[test]
fn the_deadline_fails_the_job_and_is_waited_for() {
    let j = pytorch(1, 1, "OnFailure", "activeDeadlineSeconds: 30");
    let s = step(
        &j,
        &obs(&j, &[Running, Running]),
        &JobStatus::default(),
        t(0),
    );
    let wait = s.requeue.expect("requeue");
    assert_eq!(wait.as_secs(), 30);
    let s2 = step(
        &j,
        &obs(&j, &[Running, Running]),
        &s.status,
        t(0) + SignedDuration::from_secs(31),
    );
    let c = condition(&s2.status, "Failed");
    assert_eq!(c.reason.as_deref(), Some(status::DEADLINE_EXCEEDED));
    assert_eq!(s2.actions, vec![Action::DeletePods(Which::Active)]);
}

#[test]
fn suspend_deletes_pods_and_resume_creates_them() {
    let j = pytorch(1, 1, "OnFailure", "suspend: true");
    let running = step(
        &pytorch(1, 1, "OnFailure", ""),
        &obs(&j, &[Running, Running]),
        &JobStatus::default(),
        t(0),
    )
    .status;
    let s = step(&j, &obs(&j, &[Running, Running]), &running, t(1));
    assert_eq!(s.actions, vec![Action::DeletePods(Which::All)]);
    assert!(has(&s.status, status::SUSPENDED) && !has(&s.status, status::RUNNING));
    assert_eq!(s.status.start_time, None);
    let s2 = step(&j, &obs(&j, &[Missing, Missing]), &s.status, t(2));
    assert!(s2.actions.is_empty());
    let resumed = pytorch(1, 1, "OnFailure", "suspend: false");
    let s3 = step(&resumed, &obs(&j, &[Missing, Missing]), &s2.status, t(3));
    assert!(!has(&s3.status, status::SUSPENDED));
    assert_eq!(
        condition(&s3.status, "Suspended").reason.as_deref(),
        Some("PyTorchJobResumed")
    );
    assert_eq!(s3.actions.len(), 2);
    assert_eq!(
        s3.status.start_time.as_deref(),
        Some("2027-01-15T08:00:03Z")
    );
}

#[test]
fn cleanup_and_ttl_after_finishing() {
    let j = pytorch(
        1,
        1,
        "OnFailure",
        "cleanPodPolicy: All, ttlSecondsAfterFinished: 60",
    );
    let s = step(
        &j,
        &obs(&j, &[Exited(0), Exited(0)]),
        &JobStatus::default(),
        t(0),
    );
    assert!(has(&s.status, status::SUCCEEDED));
    assert_eq!(s.actions, vec![Action::DeletePods(Which::All)]);
    let s2 = step(&j, &obs(&j, &[Missing, Missing]), &s.status, t(10));
    assert!(s2.actions.is_empty());
    assert_eq!(s2.requeue.map(|d| d.as_secs()), Some(50));
    let s3 = step(&j, &obs(&j, &[Missing, Missing]), &s.status, t(61));
    assert_eq!(s3.actions, vec![Action::DeleteJob]);
}

#[test]
fn an_invalid_spec_is_a_failed_condition() {
    let st = status::invalid(&JobStatus::default(), "spec.x: bad", t(0));
    let c = condition(&st, "Failed");
    assert_eq!(c.reason.as_deref(), Some(status::INVALID_SPEC));
    assert_eq!(c.message.as_deref(), Some("spec.x: bad"));
}
