//! `osprey train run` end to end: real training scripts (examples/training/ddp_logreg.py, numpy
//! data-parallel logistic regression over TCP) run as replicas of PyTorchJob and TFJob
//! manifests, with restarts, backoff, deadlines, bad manifests and Ctrl-C.
//!
//! Needs the project's Python environment (.venv with numpy, made by scripts/setup.sh); without
//! it each test says so and returns.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The PATH with the project's Python first, or None (and why) when there is none.
fn python_path() -> Option<String> {
    let venv = repo().join(".venv/bin");
    if !venv.join("python3").exists() {
        eprintln!("skipping: no {} (run scripts/setup.sh)", venv.display());
        return None;
    }
    Some(format!(
        "{}:{}",
        venv.display(),
        std::env::var("PATH").unwrap_or_default()
    ))
}

fn train(manifest: &Path, logs: &Path, extra: &[&str]) -> Option<Output> {
    let path = python_path()?;
    let out = Command::new(env!("CARGO_BIN_EXE_osprey"))
        .args(["train", "run"])
        .arg(manifest)
        .arg("--logs")
        .arg(logs)
        .args(extra)
        .current_dir(repo())
        .env("PATH", path)
        .stdin(Stdio::null())
        .output()
        .expect("osprey runs");
    Some(out)
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// The `weights_sha256=` each replica's log ends with.
fn digests(logs: &Path, names: &[&str]) -> BTreeSet<String> {
    names
        .iter()
        .map(|n| {
            let log = std::fs::read_to_string(logs.join(format!("{n}.log")))
                .unwrap_or_else(|e| panic!("{n}.log: {e}"));
            log.lines()
                .rev()
                .find_map(|l| l.split("weights_sha256=").nth(1))
                .unwrap_or_else(|| panic!("{n}.log has no final line:\n{log}"))
                .trim()
                .to_string()
        })
        .collect()
}

/// A PyTorchJob: one master and `workers` workers running ddp_logreg.py with `args`, the workers
/// with `worker_args` added.
fn pytorch_manifest(dir: &Path, policy: &str, run_policy: &str, worker_args: &[String]) -> PathBuf {
    let worker_args: Vec<String> = worker_args.iter().map(|a| format!("{a:?}")).collect();
    let text = format!(
        r#"apiVersion: kubeflow.org/v1
kind: PyTorchJob
metadata: {{name: t}}
spec:
  runPolicy: {{{run_policy}}}
  pytorchReplicaSpecs:
    Master:
      restartPolicy: {policy}
      template:
        spec:
          containers:
            - name: pytorch
              image: python:3.11
              command: [python3, examples/training/ddp_logreg.py, --steps, "100", --rendezvous-timeout, "60"]
    Worker:
      replicas: 2
      restartPolicy: {policy}
      template:
        spec:
          containers:
            - name: pytorch
              image: python:3.11
              command: [python3, examples/training/ddp_logreg.py, --steps, "100", --rendezvous-timeout, "60"]
              args: [{}]
"#,
        worker_args.join(", ")
    );
    let p = dir.join("job.yaml");
    std::fs::write(&p, text).expect("write");
    p
}

#[test]
fn a_pytorchjob_trains_to_identical_weights() {
    let dir = tempfile::tempdir().expect("tmp");
    let Some(out) = train(
        &repo().join("examples/training/pytorchjob.yaml"),
        dir.path(),
        &[],
    ) else {
        return;
    };
    let t = text(&out);
    assert_eq!(out.status.code(), Some(0), "{t}");
    assert!(t.contains("[master-0] rank=0 world=3"), "{t}");
    assert!(t.contains("[worker-1] rank=2 world=3"), "{t}");
    assert!(t.contains("PyTorchJob logreg-ddp: Succeeded"), "{t}");
    let d = digests(dir.path(), &["master-0", "worker-0", "worker-1"]);
    assert_eq!(d.len(), 1, "weights differ: {d:?}");
}

#[test]
fn a_tfjob_trains_through_tf_config() {
    let dir = tempfile::tempdir().expect("tmp");
    let Some(out) = train(
        &repo().join("examples/training/tfjob.yaml"),
        dir.path(),
        &[],
    ) else {
        return;
    };
    let t = text(&out);
    assert_eq!(out.status.code(), Some(0), "{t}");
    assert!(t.contains("source=TF_CONFIG"), "{t}");
    assert!(t.contains("TFJob logreg-tf: Succeeded"), "{t}");
    assert_eq!(
        digests(dir.path(), &["chief-0", "worker-0", "worker-1"]).len(),
        1
    );
}

#[test]
fn the_operator_docs_manifest_runs_unchanged() {
    let dir = tempfile::tempdir().expect("tmp");
    let Some(out) = train(
        &repo().join("examples/training/pytorch-simple.yaml"),
        dir.path(),
        &[
            "--path-map",
            "/opt/pytorch-mnist=examples/training",
            "--quiet",
        ],
    ) else {
        return;
    };
    let t = text(&out);
    assert_eq!(out.status.code(), Some(0), "{t}");
    assert!(!t.contains("[master-0]"), "--quiet echoes nothing: {t}");
    assert_eq!(digests(dir.path(), &["master-0", "worker-0"]).len(), 1);
}

#[test]
fn exit_code_restarts_a_killed_worker_and_the_job_succeeds() {
    let dir = tempfile::tempdir().expect("tmp");
    let marker = dir.path().join("crashed");
    let args = [
        "--crash-exit".to_string(),
        "137".into(),
        "--crash-rank".into(),
        "2".into(),
        "--crash-marker".into(),
        marker.display().to_string(),
    ];
    let m = pytorch_manifest(dir.path(), "ExitCode", "backoffLimit: 2", &args);
    let Some(out) = train(&m, &dir.path().join("logs"), &[]) else {
        return;
    };
    let t = text(&out);
    assert_eq!(out.status.code(), Some(0), "{t}");
    assert!(t.contains("worker-1 exited with code 137"), "{t}");
    assert!(t.contains("PyTorchJobRestarting"), "{t}");
    let log = std::fs::read_to_string(dir.path().join("logs/worker-1.log")).expect("log");
    assert_eq!(log.matches("--- start").count(), 2, "{log}");
    assert_eq!(
        digests(
            &dir.path().join("logs"),
            &["master-0", "worker-0", "worker-1"]
        )
        .len(),
        1
    );
}

#[test]
fn a_program_error_fails_the_job_under_exit_code() {
    let dir = tempfile::tempdir().expect("tmp");
    let args = [
        "--crash-exit".to_string(),
        "1".into(),
        "--crash-rank".into(),
        "1".into(),
    ];
    let m = pytorch_manifest(dir.path(), "ExitCode", "", &args);
    let Some(out) = train(&m, &dir.path().join("logs"), &[]) else {
        return;
    };
    let t = text(&out);
    assert_eq!(out.status.code(), Some(1), "{t}");
    assert!(t.contains("PyTorchJobFailed"), "{t}");
    assert!(t.contains("Worker replica 0 exited with code 1"), "{t}");
    let log = std::fs::read_to_string(dir.path().join("logs/worker-0.log")).expect("log");
    assert_eq!(log.matches("--- start").count(), 1, "not restarted: {log}");
}

#[test]
fn backoff_limit_ends_a_crash_loop() {
    let dir = tempfile::tempdir().expect("tmp");
    let args = [
        "--crash-exit".to_string(),
        "143".into(),
        "--crash-rank".into(),
        "1".into(),
    ];
    let m = pytorch_manifest(dir.path(), "ExitCode", "backoffLimit: 1", &args);
    let Some(out) = train(&m, &dir.path().join("logs"), &[]) else {
        return;
    };
    let t = text(&out);
    assert_eq!(out.status.code(), Some(1), "{t}");
    assert!(t.contains("BackoffLimitExceeded"), "{t}");
    let log = std::fs::read_to_string(dir.path().join("logs/worker-0.log")).expect("log");
    assert_eq!(
        log.matches("--- start").count(),
        2,
        "one restart allowed: {log}"
    );
}

#[test]
fn the_active_deadline_stops_every_replica() {
    let dir = tempfile::tempdir().expect("tmp");
    let args = ["--sleep".to_string(), "120".into()];
    let m = pytorch_manifest(dir.path(), "OnFailure", "activeDeadlineSeconds: 1", &args);
    let Some(out) = train(&m, &dir.path().join("logs"), &[]) else {
        return;
    };
    let t = text(&out);
    assert_eq!(out.status.code(), Some(1), "{t}");
    assert!(t.contains("DeadlineExceeded"), "{t}");
    // The sleeping workers were stopped by a signal, not left behind.
    assert!(t.contains("worker-0 exited with code 143"), "{t}");
}

#[test]
fn bad_manifests_are_refused_naming_the_field() {
    let dir = tempfile::tempdir().expect("tmp");
    let cases = [
        (
            "Worker:\n      replicas: 2",
            "Worker:\n      replicas: -2",
            "spec.pytorchReplicaSpecs.Worker.replicas: must not be negative",
        ),
        (
            "restartPolicy: OnFailure",
            "restartPolicy: Sometimes",
            "restartPolicy: \"Sometimes\" is not",
        ),
        ("kind: PyTorchJob", "kind: MPIJob", "no PyTorchJob or TFJob"),
        (
            "apiVersion: kubeflow.org/v1",
            "apiVersion: kubeflow.org/v2",
            "apiVersion",
        ),
        (
            "command: [python3",
            "commandx: [python3",
            "command: needed to run locally",
        ),
        (
            "runPolicy: {}",
            "runPolicy: {suspend: true}",
            "spec.runPolicy.suspend",
        ),
    ];
    for (from, to, want) in cases {
        let m = pytorch_manifest(dir.path(), "OnFailure", "", &[]);
        let manifest = std::fs::read_to_string(&m).expect("read").replace(from, to);
        std::fs::write(&m, manifest).expect("write");
        let Some(out) = train(&m, &dir.path().join("logs"), &[]) else {
            return;
        };
        let t = text(&out);
        assert_eq!(out.status.code(), Some(2), "{to}: {t}");
        assert!(t.contains(want), "want {want:?}: {t}");
    }
}

#[test]
fn ctrl_c_stops_every_replica() {
    use nix::sys::signal::{kill, Signal};
    use nix::unistd::Pid;
    use std::io::{BufRead, BufReader};
    let dir = tempfile::tempdir().expect("tmp");
    let Some(path) = python_path() else { return };
    let m = pytorch_manifest(
        dir.path(),
        "OnFailure",
        "",
        &["--sleep".to_string(), "120".into()],
    );
    let mut child = Command::new(env!("CARGO_BIN_EXE_osprey"))
        .args(["train", "run"])
        .arg(&m)
        .arg("--logs")
        .arg(dir.path().join("logs"))
        .current_dir(repo())
        .env("PATH", path)
        .stdout(Stdio::piped())
        .spawn()
        .expect("starts");
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = BufReader::new(stdout).lines();
    // Wait until every replica runs (the status line counts them).
    let mut seen = String::new();
    loop {
        let line = lines.next().expect("output").expect("line");
        seen.push_str(&line);
        seen.push('\n');
        if line.contains("Running; Master 1/0/0 active/succeeded/failed, Worker 2/0/0") {
            break;
        }
    }
    let pid = Pid::from_raw(i32::try_from(child.id()).expect("pid"));
    kill(pid, Signal::SIGINT).expect("signal");
    let rest: Vec<String> = lines.map_while(Result::ok).collect();
    let status = child.wait().expect("exits");
    let all = format!("{seen}{}", rest.join("\n"));
    assert_eq!(status.code(), Some(130), "{all}");
    assert!(all.contains("interrupted"), "{all}");
    for name in ["master-0", "worker-0", "worker-1"] {
        assert!(
            all.contains(&format!("{name} exited with code")),
            "{name}: {all}"
        );
    }
}
