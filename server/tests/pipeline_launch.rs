//! `osprey pipeline launch` (the launcher inside a PipelineRun task's pod) as a process: compiled
//! lightweight KFP components (examples/pipelines, compiled with kfp 2.17.3 at test time) run
//! through it with the executor input a controller would give, their outputs kept in the
//! outputs file (the pod's termination message); a failing component's exit code passed on;
//! SIGTERM forwarded to the command; `--copy-to` (the init container).
//!
//! The component tests need .venv-kfp (scripts/setup.sh makes it); without it they say so and
//! return.

mod common;

use common::pipeline::{kfp_bin, repo};
use serde_json::{json, Value};
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// The container (`image`, `command`, `args`) of executor `exec` of examples/pipelines/<name>.py,
/// compiled with kfp.
fn component(bin: &Path, name: &str, exec: &str, dir: &Path) -> Value {
    let yaml = dir.join(format!("{name}.yaml"));
    let st = Command::new(bin.join("python3"))
        .arg(repo().join(format!("examples/pipelines/{name}.py")))
        .arg(&yaml)
        .status()
        .expect("python runs");
    assert!(st.success(), "compiling {name}.py");
    let out = Command::new(bin.join("python3"))
        .args([
            "-c",
            "import json, sys, yaml; d = yaml.safe_load(open(sys.argv[1])); \
             print(json.dumps(d['deploymentSpec']['executors'][sys.argv[2]]['container']))",
        ])
        .arg(&yaml)
        .arg(exec)
        .output()
        .expect("python runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("container JSON")
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

/// `osprey pipeline launch` with the component's command and args after `--`, .venv-kfp first
/// on PATH (as the test node agent gives pipeline pods).
fn launch(
    bin: &Path,
    task: &str,
    container: &Value,
    ei: &Value,
    defs: &Value,
    outputs_file: &Path,
) -> Output {
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    Command::new(env!("CARGO_BIN_EXE_osprey"))
        .args(["pipeline", "launch", "--task", task, "--run-name", "r"])
        .arg("--executor-input")
        .arg(ei.to_string())
        .arg("--output-definitions")
        .arg(defs.to_string())
        .arg("--outputs-file")
        .arg(outputs_file)
        .arg("--")
        .args(strings(&container["command"]))
        .args(strings(&container["args"]))
        .env("PATH", path)
        .stdin(Stdio::null())
        .output()
        .expect("osprey runs")
}

fn executor_input(task_dir: &Path, params: Value) -> Value {
    json!({
        "inputs": {"parameterValues": params},
        "outputs": {
            "parameters": {"Output": {"outputFile": task_dir.join("Output")}},
            "outputFile": task_dir.join("executor_output.json"),
        }
    })
}

#[test]
fn a_lightweight_component_runs_and_its_output_is_kept() {
    let Some(bin) = kfp_bin() else { return };
    let dir = tempfile::tempdir().expect("tempdir");
    let add = component(&bin, "types_chain", "exec-add", dir.path());
    let task_dir = dir.path().join("root/run-1/add");
    let outputs_file = dir.path().join("termination-log");
    let out = launch(
        &bin,
        "add",
        &add,
        &executor_input(&task_dir, json!({"a": 2, "b": 3})),
        &json!({"parameters": {"Output": {"parameterType": "NUMBER_INTEGER"}}}),
        &outputs_file,
    );
    let log = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{log}");
    let written: Value =
        serde_json::from_str(&std::fs::read_to_string(&outputs_file).expect("outputs file"))
            .expect("JSON");
    assert_eq!(
        written,
        json!({"parameters": {"Output": 5}, "artifacts": {}})
    );
    assert!(log.contains("task 'add' succeeded"), "{log}");
}

#[test]
fn a_failing_component_exits_with_its_code_and_writes_nothing() {
    let Some(bin) = kfp_bin() else { return };
    let dir = tempfile::tempdir().expect("tempdir");
    let explode = component(&bin, "failing", "exec-explode", dir.path());
    let outputs_file = dir.path().join("termination-log");
    let out = launch(
        &bin,
        "explode",
        &explode,
        &executor_input(&dir.path().join("t"), json!({"message": "boom on purpose"})),
        &json!({"parameters": {"Output": {"parameterType": "STRING"}}}),
        &outputs_file,
    );
    let log = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{log}");
    assert!(log.contains("RuntimeError: boom on purpose"), "{log}");
    assert!(
        log.contains("task 'explode': the command exited with code 1"),
        "{log}"
    );
    assert!(!outputs_file.exists());
}

fn wait_until(what: &str, timeout: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Kills the launcher when the test fails before it exited.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn sigterm_is_forwarded_to_the_command() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ready = dir.path().join("ready");
    let got = dir.path().join("got");
    let ei = json!({"outputs": {"outputFile": dir.path().join("t/executor_output.json")}});
    let script = format!(
        "trap 'echo term > {got}; exit 7' TERM; echo up > {ready}; while :; do sleep 0.05; done",
        got = got.display(),
        ready = ready.display()
    );
    let mut child = KillOnDrop(
        Command::new(env!("CARGO_BIN_EXE_osprey"))
            .args(["pipeline", "launch", "--executor-input"])
            .arg(ei.to_string())
            .args(["--", "sh", "-c", &script])
            .stdin(Stdio::null())
            .spawn()
            .expect("osprey runs"),
    );
    wait_until("the command to start", Duration::from_secs(20), || {
        ready.exists()
    });
    let pid = nix::unistd::Pid::from_raw(i32::try_from(child.0.id()).expect("pid"));
    // To the launcher only: the command gets it because the launcher passes it on.
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).expect("signal");
    let mut status = None;
    wait_until("the launcher to exit", Duration::from_secs(20), || {
        status = child.0.try_wait().expect("wait");
        status.is_some()
    });
    assert_eq!(status.and_then(|s| s.code()), Some(7));
    assert_eq!(std::fs::read_to_string(&got).expect("trap ran"), "term\n");
}

#[test]
fn copy_to_installs_a_working_binary() {
    let dir = tempfile::tempdir().expect("tempdir");
    let dest = dir.path().join("osprey-dir/osprey");
    let st = Command::new(env!("CARGO_BIN_EXE_osprey"))
        .args(["pipeline", "launch", "--copy-to"])
        .arg(&dest)
        .status()
        .expect("osprey runs");
    assert!(st.success());
    let out = Command::new(&dest)
        .args(["pipeline", "launch", "--help"])
        .output()
        .expect("the copy runs");
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("--executor-input"));
}
