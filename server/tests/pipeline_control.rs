//! `osprey pipeline run` with control flow, retries and the cache, end to end: pipelines from
//! examples/pipelines/*.py compiled by kfp 2.17.3 at test time, run by the built binary.
//!
//! Needs .venv-kfp (scripts/setup.sh makes it); without it each test says so and returns.

mod common;

use common::pipeline::{compile, kfp_bin, report, reports, run, text};
use serde_json::{json, Value};

/// Seconds since the epoch of an RFC 3339 time in run.json.
fn at(v: &Value) -> f64 {
    let t = v.as_str().unwrap_or_else(|| panic!("not a time: {v}"));
    let (date, time) = t.trim_end_matches('Z').split_once('T').expect("T");
    let d: Vec<i64> = date.split('-').map(|p| p.parse().expect("date")).collect();
    let h: Vec<f64> = time.split(':').map(|p| p.parse().expect("time")).collect();
    // Days from civil (the tests only compare times of one run).
    let (y, m) = if d[1] <= 2 {
        (d[0] - 1, d[1] + 9)
    } else {
        (d[0], d[1] - 3)
    };
    let days = 365 * y + y / 4 - y / 100 + y / 400 + (153 * m + 2) / 5 + d[2];
    days as f64 * 86_400.0 + h[0] * 3600.0 + h[1] * 60.0 + h[2]
}

/// The most intervals open at once.
fn most_at_once(intervals: &[(f64, f64)]) -> usize {
    intervals
        .iter()
        .map(|(s, _)| {
            intervals
                .iter()
                .filter(|(s2, e2)| s2 <= s && s < e2)
                .count()
        })
        .max()
        .unwrap_or(0)
}

#[test]
fn conditions_loops_and_nested_pipelines() {
    let Some(bin) = kfp_bin() else { return };
    let dir = tempfile::tempdir().expect("tempdir");
    let yaml = compile(&bin, "control_flow", dir.path());
    let root = dir.path().join("runs");
    // A wide run-wide limit, so that the loop's own limit (2) is what holds it back.
    let out = run(
        &bin,
        &yaml,
        &root,
        &["-p", "n=7", "-p", "seconds=1.5", "--parallelism", "8"],
    );
    let log = text(&out);
    assert_eq!(out.status.code(), Some(0), "{log}");
    let r = report(&root);
    let tasks = &r["tasks"];
    assert_eq!(r["state"], "SUCCEEDED", "{log}");
    // dsl.If / Elif / Else on number's output (7): only the first branch ran.
    assert_eq!(
        tasks["condition-branches-1/condition-2"]["state"],
        "SUCCEEDED"
    );
    for other in ["condition-3", "condition-4"] {
        let t = &tasks[format!("condition-branches-1/{other}")];
        assert_eq!(t["state"], "SKIPPED", "{other}");
        assert_eq!(t["conditionFalse"], true, "{other}");
    }
    assert!(tasks
        .get("condition-branches-1/condition-3/say-2")
        .is_none());
    assert_eq!(tasks["say-4"]["outputs"]["parameters"]["Output"], "big");
    // ParallelFor over [1..5] with parallelism 2, collected in item order.
    let squares: Vec<(f64, f64)> = (0..5)
        .map(|i| {
            let t = &tasks[format!("for-loop-6/{i}/square")];
            assert_eq!(t["state"], "SUCCEEDED", "{i}: {log}");
            (at(&t["startTime"]), at(&t["endTime"]))
        })
        .collect();
    assert_eq!(most_at_once(&squares), 2, "{squares:?}");
    assert_eq!(
        tasks["for-loop-6"]["outputs"]["parameters"]["pipelinechannel--square-Output"],
        json!([1, 4, 9, 16, 25])
    );
    assert_eq!(tasks["total"]["outputs"]["parameters"]["Output"], 55);
    // ParallelFor over an upstream list of dicts, fields picked per item.
    assert_eq!(r["outputs"]["Output"], "a=4,b=9");
    // A pipeline used as a component.
    assert_eq!(tasks["double-it"]["outputs"]["parameters"]["Output"], 49);
    assert_eq!(tasks["double-it/square"]["state"], "SUCCEEDED");
}

#[test]
fn a_flaky_task_succeeds_on_its_third_attempt() {
    let Some(bin) = kfp_bin() else { return };
    let dir = tempfile::tempdir().expect("tempdir");
    let yaml = compile(&bin, "exit_retry", dir.path());
    let root = dir.path().join("runs");
    let state = dir.path().join("state");
    let state_arg = format!("state_dir={}", state.display());
    let out = run(
        &bin,
        &yaml,
        &root,
        &["-p", &state_arg, "-p", "fail_times=2"],
    );
    let log = text(&out);
    assert_eq!(out.status.code(), Some(0), "{log}");
    let r = report(&root);
    let flaky = &r["tasks"]["exit-handler-1/flaky"];
    assert_eq!(flaky["state"], "SUCCEEDED", "{log}");
    assert_eq!(flaky["attempts"], 3);
    assert_eq!(flaky["outputs"]["parameters"]["Output"], 3);
    assert_eq!(
        r["tasks"]["report"]["outputs"]["parameters"]["Output"],
        "SUCCEEDED"
    );
    let run_dir = root.join(r["runId"].as_str().expect("runId"));
    let task_log =
        std::fs::read_to_string(run_dir.join("exit-handler-1/flaky/log.txt")).expect("log");
    assert!(task_log.contains("--- attempt 3 ---"), "{task_log}");
    assert!(
        task_log.contains("attempt 2: failing on purpose"),
        "{task_log}"
    );
}

#[test]
fn the_exit_handler_runs_after_a_task_that_keeps_failing() {
    let Some(bin) = kfp_bin() else { return };
    let dir = tempfile::tempdir().expect("tempdir");
    let yaml = compile(&bin, "exit_retry", dir.path());
    let root = dir.path().join("runs");
    let state = dir.path().join("state");
    let state_arg = format!("state_dir={}", state.display());
    let out = run(
        &bin,
        &yaml,
        &root,
        &["-p", &state_arg, "-p", "fail_times=9"],
    );
    let log = text(&out);
    assert_eq!(out.status.code(), Some(1), "{log}");
    let r = report(&root);
    assert_eq!(r["state"], "FAILED");
    assert_eq!(r["tasks"]["exit-handler-1/flaky"]["attempts"], 4, "{log}");
    assert_eq!(r["tasks"]["exit-handler-1"]["state"], "FAILED");
    let report_task = &r["tasks"]["report"];
    assert_eq!(report_task["state"], "SUCCEEDED", "{log}");
    assert_eq!(report_task["outputs"]["parameters"]["Output"], "FAILED");
    assert!(
        log.contains("group exit-handler-1 ended FAILED"),
        "the exit task saw the status: {log}"
    );
}

#[test]
fn a_second_run_reuses_the_cache_and_a_changed_input_reruns_its_dependents() {
    let Some(bin) = kfp_bin() else { return };
    let dir = tempfile::tempdir().expect("tempdir");
    let yaml = compile(&bin, "types_chain", dir.path());
    let root = dir.path().join("runs");
    let tasks = ["add", "scale-by", "make-items", "summary"];
    for _ in 0..2 {
        let out = run(&bin, &yaml, &root, &[]);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    }
    let out = run(&bin, &yaml, &root, &["-p", "scale=0.75"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let out = run(&bin, &yaml, &root, &["-p", "scale=0.75", "--no-cache"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let runs = reports(&root);
    assert_eq!(runs.len(), 4);
    let cached = |r: &Value| -> Vec<&str> {
        tasks
            .iter()
            .copied()
            .filter(|t| r["tasks"][*t]["cached"] == true)
            .collect()
    };
    assert!(cached(&runs[0]).is_empty());
    assert_eq!(
        cached(&runs[1]),
        tasks.to_vec(),
        "nothing ran the second time"
    );
    assert_eq!(runs[1]["outputs"], runs[0]["outputs"]);
    // scale feeds scale-by, and scale-by feeds summary.
    assert_eq!(cached(&runs[2]), vec!["add", "make-items"]);
    assert_ne!(runs[2]["outputs"], runs[0]["outputs"]);
    assert!(cached(&runs[3]).is_empty(), "--no-cache runs everything");
    assert_eq!(runs[3]["outputs"], runs[2]["outputs"]);
    // A cached task wrote nothing in its own run's directory.
    let second = root.join(runs[1]["runId"].as_str().expect("runId"));
    assert!(!second.join("add/log.txt").exists());
}
