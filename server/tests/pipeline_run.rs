//! `osprey pipeline run` end to end: pipelines from examples/pipelines/*.py compiled with the
//! official KFP SDK (kfp 2.17.3) at test time and run with the built binary, their lightweight
//! Python components executed by kfp's own executor (`python3 -m kfp.dsl.executor_main`).
//!
//! Needs .venv-kfp (scripts/setup.sh makes it); without it each test says so and returns.

mod common;

use common::pipeline::{compile, kfp_bin, report, run, secs, text};
use serde_json::Value;
use std::process::{Command, Stdio};

#[test]
fn chain_with_every_parameter_type() {
    let Some(bin) = kfp_bin() else { return };
    let dir = tempfile::tempdir().expect("tempdir");
    let yaml = compile(&bin, "types_chain", dir.path());
    let root = dir.path().join("runs");
    let out = run(
        &bin,
        &yaml,
        &root,
        &[
            "-p",
            "n=4",
            "-p",
            "scale=0.25",
            "-p",
            "label=total",
            "-p",
            "double=false",
            "-p",
            "extra=[5, 6]",
            "-p",
            r#"opts={"tag": "x"}"#,
        ],
    );
    let log = text(&out);
    assert_eq!(out.status.code(), Some(0), "{log}");
    let r = report(&root);
    assert_eq!(r["state"], "SUCCEEDED", "{log}");
    // add(4, 4) = 8; scale_by(8, 0.25) = 2.0; items [1..4] + [5, 6]; 2.0 + 21 + 1.5 = 24.5.
    let want = r#"total=24.5 label=total-x4 doubled=false items=[1, 2, 3, 4, 5, 6] meta={"n": 4, "tag": "x"}"#;
    assert_eq!(r["outputs"]["Output"], want, "{log}");
    assert!(
        log.contains("Pipeline outputs: {\"Output\":\"total=24.5 label=total-x4"),
        "{log}"
    );
    let tasks = &r["tasks"];
    assert_eq!(tasks["add"]["outputs"]["parameters"]["Output"], 8);
    assert!(tasks["add"]["outputs"]["parameters"]["Output"].is_i64());
    assert_eq!(tasks["scale-by"]["outputs"]["parameters"]["Output"], 2.0);
    assert_eq!(
        tasks["make-items"]["outputs"]["parameters"]["items"],
        serde_json::json!([1, 2, 3, 4, 5, 6])
    );
    for t in ["add", "scale-by", "make-items", "summary"] {
        assert_eq!(tasks[t]["state"], "SUCCEEDED", "{t}: {log}");
        assert!(tasks[t]["startTime"].is_string() && tasks[t]["endTime"].is_string());
    }
    let run_dir = root.join(r["runId"].as_str().expect("runId"));
    assert!(run_dir.join("summary/log.txt").exists());
    assert!(
        log.contains("summary: RUNNING") && log.contains("summary: SUCCEEDED"),
        "{log}"
    );

    // A bad value for a declared type is refused before anything runs, naming the parameter.
    let out = run(&bin, &yaml, &dir.path().join("bad"), &["-p", "n=four"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("parameter 'n'"), "{}", text(&out));
    let out = run(&bin, &yaml, &dir.path().join("bad"), &["-p", "extra={}"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("parameter 'extra'"), "{}", text(&out));
}

/// The join's output: each side's start and end (epoch seconds) as recorded in the tasks.
fn fan_out(parallelism: &str) -> Option<(Value, String)> {
    let bin = kfp_bin()?;
    let dir = tempfile::tempdir().expect("tempdir");
    let yaml = compile(&bin, "fan_out_in", dir.path());
    let root = dir.path().join("runs");
    let out = run(
        &bin,
        &yaml,
        &root,
        &["-p", "seconds=3", "--parallelism", parallelism],
    );
    let log = text(&out);
    assert_eq!(out.status.code(), Some(0), "{log}");
    let r = report(&root);
    Some((r["outputs"]["Output"].clone(), log))
}

#[test]
fn fan_out_tasks_overlap_in_time() {
    let Some((joined, log)) = fan_out("4") else {
        return;
    };
    let (l, rt) = (&joined["left"], &joined["right"]);
    let overlap = secs(&l["end"]).min(secs(&rt["end"])) - secs(&l["start"]).max(secs(&rt["start"]));
    assert!(overlap > 0.5, "no overlap ({overlap} s): {joined}\n{log}");
    assert!((secs(&joined["overlap_seconds"]) - overlap).abs() < 1e-6);
}

#[test]
fn parallelism_one_runs_them_one_after_the_other() {
    let Some((joined, log)) = fan_out("1") else {
        return;
    };
    let (l, rt) = (&joined["left"], &joined["right"]);
    let overlap = secs(&l["end"]).min(secs(&rt["end"])) - secs(&l["start"]).max(secs(&rt["start"]));
    assert!(
        overlap < 0.0,
        "overlap {overlap} s with --parallelism 1: {joined}\n{log}"
    );
}

#[test]
fn failing_task_fails_the_run_and_skips_its_dependents() {
    let Some(bin) = kfp_bin() else { return };
    let dir = tempfile::tempdir().expect("tempdir");
    let yaml = compile(&bin, "failing", dir.path());
    let root = dir.path().join("runs");
    let out = run(&bin, &yaml, &root, &[]);
    let log = text(&out);
    assert_eq!(out.status.code(), Some(1), "{log}");
    assert!(log.contains("explode: FAILED (exit code 1"), "{log}");
    let r = report(&root);
    assert_eq!(r["state"], "FAILED");
    let tasks = &r["tasks"];
    assert_eq!(tasks["explode"]["state"], "FAILED", "{log}");
    assert_eq!(tasks["after-explode"]["state"], "SKIPPED", "{log}");
    assert!(
        tasks["after-explode"]["startTime"].is_null(),
        "never started"
    );
    assert!(
        tasks["after-explode"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("'explode'")),
        "{log}"
    );
    assert_eq!(tasks["independent"]["state"], "SUCCEEDED", "{log}");
    assert_eq!(
        tasks["independent"]["outputs"]["parameters"]["Output"],
        "still runs"
    );
    let run_dir = root.join(r["runId"].as_str().expect("runId"));
    let task_log = std::fs::read_to_string(run_dir.join("explode/log.txt")).expect("log");
    assert!(task_log.contains("boom on purpose"), "{task_log}");
}

#[test]
fn unsupported_features_are_refused_naming_the_task() {
    let Some(bin) = kfp_bin() else { return };
    let dir = tempfile::tempdir().expect("tempdir");
    let yaml = compile(&bin, "input_artifact", dir.path());
    let root = dir.path().join("runs");
    let out = run(&bin, &yaml, &root, &[]);
    let log = text(&out);
    assert_eq!(out.status.code(), Some(2), "{log}");
    assert!(
        log.contains("pipeline: not supported yet: pipeline input artifact 'data'"),
        "{log}"
    );
    assert!(!root.exists(), "nothing ran");
}

#[test]
fn artifacts_flow_between_tasks_with_metadata() {
    let Some(bin) = kfp_bin() else { return };
    let dir = tempfile::tempdir().expect("tempdir");
    let yaml = compile(&bin, "artifacts", dir.path());
    let root = dir.path().join("runs");
    let out = run(&bin, &yaml, &root, &["-p", "rows=5"]);
    let log = text(&out);
    assert_eq!(out.status.code(), Some(0), "{log}");
    let r = report(&root);
    let run_dir = root.join(r["runId"].as_str().expect("runId"));
    assert_eq!(r["outputs"]["report"], "weights=15 rows_seen=5", "{log}");
    let model = &r["outputs"]["model"];
    assert_eq!(model["type"]["schemaTitle"], "system.Model");
    assert_eq!(model["metadata"]["rows_seen"], 5);
    let uri = run_dir.join("train/model");
    assert_eq!(model["uri"], uri.to_string_lossy().as_ref());
    assert_eq!(
        std::fs::read_to_string(&uri).expect("model file"),
        "weights=15"
    );
    assert_eq!(
        std::fs::read_to_string(run_dir.join("make-data/data")).expect("dataset file"),
        "1\n2\n3\n4\n5"
    );
    assert_eq!(r["tasks"]["train"]["outputs"]["parameters"]["Output"], 15);
}

#[test]
fn container_components_get_their_placeholders() {
    let Some(bin) = kfp_bin() else { return };
    let dir = tempfile::tempdir().expect("tempdir");
    let yaml = compile(&bin, "container_components", dir.path());
    let root = dir.path().join("runs");
    let out = run(&bin, &yaml, &root, &["-p", "word=hello", "-p", "times=3"]);
    let log = text(&out);
    assert_eq!(out.status.code(), Some(0), "{log}");
    let r = report(&root);
    assert_eq!(r["outputs"]["Output"], "HELLO HELLO HELLO  x3", "{log}");
    // An OutputPath(int) file read back as an integer.
    assert_eq!(r["tasks"]["repeat"]["outputs"]["parameters"]["count"], 3);
    // IfPresent (without and with the optional input) and Concat.
    assert_eq!(
        r["tasks"]["tag"]["outputs"]["parameters"]["out"],
        "none: <hello>"
    );
    assert_eq!(
        r["tasks"]["tag-2"]["outputs"]["parameters"]["out"],
        "P: <hello>"
    );
}

#[test]
fn ctrl_c_stops_the_running_tasks() {
    let Some(bin) = kfp_bin() else { return };
    let dir = tempfile::tempdir().expect("tempdir");
    let yaml = compile(&bin, "fan_out_in", dir.path());
    let root = dir.path().join("runs");
    let child = Command::new(env!("CARGO_BIN_EXE_osprey"))
        .args(["pipeline", "run"])
        .arg(&yaml)
        .arg("--pipeline-root")
        .arg(&root)
        .arg("--python-path")
        .arg(&bin)
        .args(["-p", "seconds=600"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("osprey starts");
    // Until both sleeping tasks run.
    let started = std::time::Instant::now();
    loop {
        let running = std::fs::read_dir(&root)
            .ok()
            .and_then(|mut d| d.next())
            .and_then(|e| e.ok())
            .map(|run| {
                ["work", "work-2"]
                    .iter()
                    .filter(|t| {
                        std::fs::read_to_string(run.path().join(t).join("log.txt"))
                            .is_ok_and(|l| l.contains("Looking for component"))
                    })
                    .count()
            })
            .unwrap_or(0);
        if running == 2 {
            break;
        }
        assert!(started.elapsed().as_secs() < 60, "tasks did not start");
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    let pid = nix::unistd::Pid::from_raw(i32::try_from(child.id()).expect("pid"));
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGINT).expect("SIGINT");
    let out = child.wait_with_output().expect("osprey ends");
    let log = text(&out);
    assert_eq!(out.status.code(), Some(130), "{log}");
    let r = report(&root);
    assert_eq!(r["state"], "CANCELED");
    assert_eq!(r["interrupted"], true);
    assert_eq!(r["tasks"]["work"]["state"], "CANCELED", "{log}");
    assert_eq!(r["tasks"]["join"]["state"], "SKIPPED", "{log}");
}
