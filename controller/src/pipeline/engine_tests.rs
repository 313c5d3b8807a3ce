//! Engine unit tests on pipelines compiled by kfp 2.17.3 (testdata/, from
//! examples/pipelines/*.py): the test plays the runner, completing launches with chosen
//! outputs, so conditions, loops, exit handlers, retries, cancellation and restoring from
//! records are checked without processes.

use super::engine::{Completion, Engine, Launch, Options, Record, RunInfo, TaskState};
use super::executor::TaskOutputs;
use super::spec;
use super::time::rfc3339;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

const CONTROL_FLOW: &str = include_str!("testdata/control_flow.yaml");
const EXIT_RETRY: &str = include_str!("testdata/exit_retry.yaml");

fn engine(text: &str, inputs: &[(&str, Value)], parallelism: usize) -> Engine {
    let spec = spec::parse(text).expect("parses");
    let inputs = inputs
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect();
    Engine::new(spec, inputs, info(), options(parallelism)).expect("checks")
}

fn info() -> RunInfo {
    RunInfo {
        job_name: "p".into(),
        run_id: "p-1".into(),
        run_dir: "/runs/p-1".into(),
        pipeline_root: "/runs".into(),
    }
}

fn options(parallelism: usize) -> Options {
    Options {
        parallelism,
        caching: true,
    }
}

fn out(key: &str, v: Value) -> Completion {
    Completion::Succeeded(TaskOutputs {
        parameters: BTreeMap::from([(key.to_string(), v)]),
        artifacts: BTreeMap::new(),
    })
}

fn paths(launches: &[Launch]) -> Vec<String> {
    launches.iter().map(|l| l.path.clone()).collect()
}

fn param(l: &Launch, name: &str) -> Value {
    l.executor_input["inputs"]["parameterValues"][name].clone()
}

fn state(e: &Engine, path: &str) -> TaskState {
    e.records
        .get(path)
        .map_or_else(|| panic!("no record {path}"), |r| r.state)
}

/// Plays the runner: completes every launch with `f`'s result until nothing is launched.
fn drive(e: &mut Engine, mut f: impl FnMut(&Launch) -> Completion) -> Vec<String> {
    let mut launched = Vec::new();
    let mut now = SystemTime::now();
    for _ in 0..200 {
        let step = e.step(now);
        if step.launches.is_empty() {
            match step.wake_at {
                Some(at) => {
                    now = at;
                    continue;
                }
                None => break,
            }
        }
        for l in step.launches {
            launched.push(l.path.clone());
            let c = f(&l);
            e.complete(&l.path, c, now);
        }
    }
    launched
}

/// Squares, sums and the rest of control_flow.yaml, computed as the components would.
fn control_flow_task(l: &Launch) -> Completion {
    let name = l.path.rsplit('/').next().unwrap_or_default();
    match name {
        "number" => out("Output", param(l, "x")),
        "say" | "say-2" | "say-3" | "say-4" => out("Output", param(l, "msg")),
        "square" => {
            let x = param(l, "x").as_i64().expect("x");
            out("Output", json!(x * x))
        }
        "total" => {
            let xs = param(l, "xs");
            let sum: i64 = xs
                .as_array()
                .expect("list")
                .iter()
                .filter_map(|v| v.as_i64())
                .sum();
            out("Output", json!(sum))
        }
        "shapes" => out(
            "Output",
            json!([{"label": "a", "side": 2}, {"label": "b", "side": 3}]),
        ),
        "area" => {
            let label = param(l, "label");
            let side = param(l, "side").as_i64().expect("side");
            out(
                "Output",
                json!(format!(
                    "{}={}",
                    label.as_str().expect("label"),
                    side * side
                )),
            )
        }
        "join" => {
            let parts: Vec<String> = param(l, "parts")
                .as_array()
                .expect("list")
                .iter()
                .filter_map(|v| v.as_str().map(String::from))
                .collect();
            out("Output", json!(parts.join(",")))
        }
        other => panic!("unexpected task {other}"),
    }
}

#[test]
fn conditions_pick_one_branch_and_one_of_takes_its_output() {
    for (n, branch, word) in [
        (7, "condition-2", "big"),
        (3, "condition-3", "three"),
        (1, "condition-4", "small"),
    ] {
        let mut e = engine(CONTROL_FLOW, &[("n", json!(n))], 8);
        let launched = drive(&mut e, control_flow_task);
        assert_eq!(e.state(), TaskState::Succeeded, "n={n}");
        for c in ["condition-2", "condition-3", "condition-4"] {
            let path = format!("condition-branches-1/{c}");
            let want = if c == branch {
                TaskState::Succeeded
            } else {
                TaskState::Skipped
            };
            assert_eq!(state(&e, &path), want, "n={n} {c}");
        }
        let verdict = e.records.get("say-4").expect("verdict");
        assert_eq!(verdict.outputs.parameters.get("Output"), Some(&json!(word)));
        // Nothing of a false branch ran.
        let branch_tasks = launched
            .iter()
            .filter(|p| p.starts_with("condition-branches-1/"))
            .count();
        assert_eq!(branch_tasks, 1, "n={n}: {launched:?}");
        assert_eq!(
            e.records
                .get("double-it")
                .and_then(|r| r.outputs.parameters.get("Output")),
            Some(&json!(n * n)),
            "nested pipeline's output"
        );
    }
}

#[test]
fn loops_respect_their_limit_and_collect_in_item_order() {
    let mut e = engine(CONTROL_FLOW, &[("n", json!(3))], 100);
    let now = SystemTime::now();
    let mut pending: Vec<Launch> = Vec::new();
    let mut most_squares = 0;
    let mut completed_order = Vec::new();
    for _ in 0..100 {
        pending.extend(e.step(now).launches);
        let squares = pending
            .iter()
            .filter(|l| l.path.starts_with("for-loop-6/"))
            .count();
        most_squares = most_squares.max(squares);
        // Complete the newest launch first, so iterations finish out of order.
        let Some(l) = pending.pop() else { break };
        if l.path.starts_with("for-loop-6/") {
            completed_order.push(l.path.clone());
        }
        let c = control_flow_task(&l);
        e.complete(&l.path, c, now);
    }
    assert_eq!(e.state(), TaskState::Succeeded);
    assert_eq!(most_squares, 2, "parallelismLimit 2");
    assert_ne!(
        completed_order,
        {
            let mut sorted = completed_order.clone();
            sorted.sort();
            sorted
        },
        "completions were out of order"
    );
    let lp = e.records.get("for-loop-6").expect("loop");
    assert_eq!(
        lp.outputs.parameters.get("pipelinechannel--square-Output"),
        Some(&json!([1, 4, 9, 16, 25]))
    );
    assert_eq!(
        e.records
            .get("total")
            .and_then(|r| r.outputs.parameters.get("Output")),
        Some(&json!(55))
    );
    // Items from an upstream list of dicts, fields picked by the selector.
    assert_eq!(e.outputs().get("Output"), Some(&json!("a=4,b=9")));
}

#[test]
fn run_wide_parallelism_caps_running_tasks() {
    let mut e = engine(CONTROL_FLOW, &[("n", json!(3))], 1);
    let now = SystemTime::now();
    for _ in 0..100 {
        let step = e.step(now);
        assert!(step.launches.len() <= 1, "{:?}", paths(&step.launches));
        assert!(e.running().len() <= 1);
        let Some(l) = step.launches.into_iter().next() else {
            break;
        };
        let c = control_flow_task(&l);
        e.complete(&l.path, c, now);
    }
    assert_eq!(e.state(), TaskState::Succeeded);
}

#[test]
fn a_failed_task_skips_its_dependents_and_fails_the_run() {
    let mut e = engine(CONTROL_FLOW, &[("n", json!(3))], 8);
    drive(&mut e, |l| {
        if l.path == "shapes" {
            Completion::Failed("exit code 1".into())
        } else {
            control_flow_task(l)
        }
    });
    assert_eq!(e.state(), TaskState::Failed);
    assert_eq!(state(&e, "for-loop-7"), TaskState::Skipped);
    assert_eq!(state(&e, "join"), TaskState::Skipped);
    assert_eq!(
        e.records.get("join").and_then(|r| r.message.clone()),
        Some("not run: upstream task 'for-loop-7' SKIPPED".into())
    );
    assert_eq!(
        state(&e, "total"),
        TaskState::Succeeded,
        "independent tasks finish"
    );
}

#[test]
fn retries_wait_their_back_off_then_succeed() {
    let mut e = engine(
        EXIT_RETRY,
        &[("state_dir", json!("/x")), ("fail_times", json!(2))],
        4,
    );
    let t0 = SystemTime::now();
    let first = e.step(t0);
    assert_eq!(paths(&first.launches), vec!["exit-handler-1/flaky"]);
    e.complete(
        "exit-handler-1/flaky",
        Completion::Failed("exit code 1".into()),
        t0,
    );
    let waiting = e.step(t0);
    assert!(waiting.launches.is_empty(), "back-off not over");
    let at = waiting.wake_at.expect("wake for the retry");
    let waited = at.duration_since(t0).unwrap_or_default();
    assert!(
        waited > Duration::from_millis(998) && waited <= Duration::from_secs(1),
        "{waited:?}"
    );
    assert_eq!(state(&e, "exit-handler-1/flaky"), TaskState::Pending);
    let retry = e.step(at);
    assert_eq!(retry.launches.first().map(|l| l.attempt), Some(2));
    e.complete(
        "exit-handler-1/flaky",
        Completion::Failed("exit code 1".into()),
        at,
    );
    let at = e.step(at).wake_at.expect("second back-off");
    let third = e.step(at);
    assert_eq!(third.launches.first().map(|l| l.attempt), Some(3));
    e.complete("exit-handler-1/flaky", out("Output", json!(3)), at);
    let exit = e.step(at);
    assert_eq!(paths(&exit.launches), vec!["report"]);
    let status = exit
        .launches
        .first()
        .map(|l| param(l, "status"))
        .expect("status");
    assert_eq!(status["state"], json!("SUCCEEDED"));
    e.complete("report", out("Output", json!("SUCCEEDED")), at);
    assert_eq!(e.state(), TaskState::Succeeded);
    assert_eq!(
        e.records.get("exit-handler-1/flaky").map(|r| r.attempts),
        Some(3)
    );
}

#[test]
fn exit_handler_runs_after_a_group_that_failed() {
    let mut e = engine(
        EXIT_RETRY,
        &[("state_dir", json!("/x")), ("fail_times", json!(9))],
        4,
    );
    let mut statuses = Vec::new();
    let launched = drive(&mut e, |l| {
        if l.path == "report" {
            statuses.push(param(l, "status"));
            out("Output", json!("FAILED"))
        } else {
            Completion::Failed("attempt failed".into())
        }
    });
    assert_eq!(
        launched
            .iter()
            .filter(|p| *p == "exit-handler-1/flaky")
            .count(),
        4,
        "1 run + 3 retries"
    );
    assert_eq!(state(&e, "exit-handler-1"), TaskState::Failed);
    assert_eq!(state(&e, "report"), TaskState::Succeeded);
    assert_eq!(e.state(), TaskState::Failed, "the run fails all the same");
    let status = statuses.first().expect("report ran");
    assert_eq!(status["state"], json!("FAILED"));
    assert_eq!(status["pipelineTaskName"], json!("exit-handler-1"));
    assert!(
        status["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("flaky")),
        "{status}"
    );
}

#[test]
fn cancel_stops_what_has_not_started() {
    let mut e = engine(CONTROL_FLOW, &[("n", json!(3))], 2);
    let now = SystemTime::now();
    let first = e.step(now).launches;
    assert_eq!(first.len(), 2);
    e.cancel();
    for l in &first {
        e.complete(&l.path, Completion::Canceled("killed".into()), now);
    }
    let step = e.step(now);
    assert!(step.launches.is_empty());
    assert_eq!(e.state(), TaskState::Canceled);
    assert!(e
        .records
        .values()
        .all(|r| r.state == TaskState::Canceled || r.state == TaskState::Skipped));
}

#[test]
fn an_engine_restored_from_its_records_carries_on() {
    let mut a = engine(CONTROL_FLOW, &[("n", json!(7))], 3);
    let now = SystemTime::now();
    let mut pending = a.step(now).launches;
    // Finish some work, then save the records as a status would.
    for _ in 0..4 {
        let Some(l) = pending.pop() else { break };
        let c = control_flow_task(&l);
        a.complete(&l.path, c, now);
        pending.extend(a.step(now).launches);
    }
    let saved = serde_json::to_string(&a.records).expect("records serialise");
    let records: BTreeMap<String, Record> = serde_json::from_str(&saved).expect("and back");
    assert_eq!(records, a.records);
    let spec = spec::parse(CONTROL_FLOW).expect("parses");
    let mut b =
        Engine::restore(spec, a.inputs.clone(), info(), options(3), records).expect("restores");
    // What was running is still running (the runner re-attaches); nothing is launched twice.
    let again = b.step(now).launches;
    for l in &again {
        assert!(
            !pending.iter().any(|p| p.path == l.path),
            "{} launched twice",
            l.path
        );
    }
    for l in pending.into_iter().chain(again) {
        let c = control_flow_task(&l);
        b.complete(&l.path, c, now);
    }
    drive(&mut b, control_flow_task);
    assert_eq!(b.state(), TaskState::Succeeded);
    assert_eq!(b.outputs().get("Output"), Some(&json!("a=4,b=9")));
    assert!(b
        .records
        .values()
        .all(|r| r.end_time.as_deref() >= r.start_time.as_deref()));
    let _ = rfc3339(now);
}

#[test]
fn cache_keys_follow_inputs_and_container() {
    let mut a = engine(CONTROL_FLOW, &[("n", json!(3))], 8);
    let mut b = engine(CONTROL_FLOW, &[("n", json!(3))], 8);
    let mut c = engine(CONTROL_FLOW, &[("n", json!(4))], 8);
    let key = |e: &mut Engine| {
        e.step(SystemTime::now())
            .launches
            .into_iter()
            .find(|l| l.path == "number")
            .and_then(|l| l.cache_key)
            .expect("number has a key")
    };
    let (ka, kb, kc) = (key(&mut a), key(&mut b), key(&mut c));
    assert_eq!(ka, kb);
    assert_ne!(ka, kc);
    assert_eq!(ka.len(), 64);
    let mut off = engine(CONTROL_FLOW, &[("n", json!(3))], 8);
    off.options.caching = false;
    assert!(off
        .step(SystemTime::now())
        .launches
        .iter()
        .all(|l| l.cache_key.is_none()));
}
