//! The engine's task records in a PipelineRun's status and back: the status is the run's only
//! saved state, so a restarted controller (or the next reconcile) carries on from it.

use super::crd::{PipelineRunStatus, TaskState as StatusState, TaskStatus};
use crate::pipeline::engine::{NodeKind, Record, TaskState};
use crate::pipeline::executor::{TaskInputs, TaskOutputs};
use std::collections::BTreeMap;

fn to_status_state(s: TaskState) -> StatusState {
    match s {
        TaskState::Pending => StatusState::Pending,
        TaskState::Running => StatusState::Running,
        TaskState::Succeeded => StatusState::Succeeded,
        TaskState::Skipped => StatusState::Skipped,
        TaskState::Failed => StatusState::Failed,
        TaskState::Canceled => StatusState::Canceled,
    }
}

fn to_engine_state(s: StatusState) -> TaskState {
    match s {
        StatusState::Pending => TaskState::Pending,
        StatusState::Running => TaskState::Running,
        StatusState::Succeeded => TaskState::Succeeded,
        StatusState::Skipped => TaskState::Skipped,
        StatusState::Failed => TaskState::Failed,
        StatusState::Canceled => TaskState::Canceled,
    }
}

fn kind_name(k: NodeKind) -> &'static str {
    match k {
        NodeKind::Task => "task",
        NodeKind::Dag => "dag",
        NodeKind::Loop => "loop",
        NodeKind::Iteration => "iteration",
    }
}

fn kind_of(s: Option<&str>) -> NodeKind {
    match s {
        Some("dag") => NodeKind::Dag,
        Some("loop") => NodeKind::Loop,
        Some("iteration") => NodeKind::Iteration,
        _ => NodeKind::Task,
    }
}

/// The status entry of each record; `pod` names a container task's pod from its path and
/// attempt.
pub fn tasks_of(
    records: &BTreeMap<String, Record>,
    pod: impl Fn(&str, u32) -> String,
) -> BTreeMap<String, TaskStatus> {
    records
        .iter()
        .map(|(path, r)| {
            let inputs = r.inputs.as_ref().and_then(|i| serde_json::to_value(i).ok());
            let status = TaskStatus {
                state: to_status_state(r.state),
                kind: Some(kind_name(r.kind).to_string()),
                start_time: r.start_time.clone(),
                end_time: r.end_time.clone(),
                attempts: i32::try_from(r.attempts).unwrap_or(i32::MAX),
                retry_at: r.retry_at.clone(),
                pod_name: (r.kind == NodeKind::Task && r.attempts > 0)
                    .then(|| pod(path, r.attempts)),
                outputs: (&r.outputs).into(),
                inputs,
                iterations: r.iterations.and_then(|n| i64::try_from(n).ok()),
                message: r.message.clone(),
                cached: r.cached,
                cache_key: r.cache_key.clone(),
                condition_false: r.condition_false,
            };
            (path.clone(), status)
        })
        .collect()
}

/// The engine's records from a status (none for a run not started yet).
pub fn records_of(status: Option<&PipelineRunStatus>) -> BTreeMap<String, Record> {
    let Some(status) = status else {
        return BTreeMap::new();
    };
    status
        .tasks
        .iter()
        .map(|(path, t)| {
            let record = Record {
                state: to_engine_state(t.state),
                kind: kind_of(t.kind.as_deref()),
                start_time: t.start_time.clone(),
                end_time: t.end_time.clone(),
                attempts: u32::try_from(t.attempts).unwrap_or(0),
                retry_at: t.retry_at.clone(),
                inputs: t
                    .inputs
                    .clone()
                    .and_then(|v| serde_json::from_value::<TaskInputs>(v).ok()),
                iterations: t.iterations.and_then(|n| usize::try_from(n).ok()),
                outputs: TaskOutputs::from(&t.outputs),
                cached: t.cached,
                cache_key: t.cache_key.clone(),
                condition_false: t.condition_false,
                message: t.message.clone(),
            };
            (path.clone(), record)
        })
        .collect()
}
