//! `osprey pipeline run` from the tests: kfp's environment (.venv-kfp), the examples in
//! examples/pipelines/ compiled by kfp 2.17.3 at test time, the built binary run on them, and
//! the run's report (run.json).

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// The repository's root.
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// .venv-kfp/bin, or None (and why) when it is missing.
pub fn kfp_bin() -> Option<PathBuf> {
    let bin = repo().join(".venv-kfp/bin");
    if !bin.join("python3").exists() {
        eprintln!(
            "skipping: no {} with kfp 2.17.3 (run scripts/setup.sh)",
            bin.display()
        );
        return None;
    }
    Some(bin)
}

/// Compiles examples/pipelines/<name>.py into `dir`.
pub fn compile(bin: &Path, name: &str, dir: &Path) -> PathBuf {
    let out = dir.join(format!("{name}.yaml"));
    let st = Command::new(bin.join("python3"))
        .arg(repo().join(format!("examples/pipelines/{name}.py")))
        .arg(&out)
        .status()
        .expect("python runs");
    assert!(st.success(), "compiling {name}.py");
    out
}

/// `osprey pipeline run PIPELINE --pipeline-root ROOT --python-path BIN EXTRA...`, to the end.
pub fn run(bin: &Path, pipeline: &Path, root: &Path, extra: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_osprey"))
        .args(["pipeline", "run"])
        .arg(pipeline)
        .arg("--pipeline-root")
        .arg(root)
        .arg("--python-path")
        .arg(bin)
        .args(extra)
        .stdin(Stdio::null())
        .output()
        .expect("osprey runs")
}

/// A finished process's stdout then stderr.
pub fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// The run.json of every run under `root`, oldest first (`.cache` is not a run).
pub fn reports(root: &Path) -> Vec<Value> {
    let mut runs: Vec<PathBuf> = std::fs::read_dir(root)
        .expect("pipeline root")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            !p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with('.'))
        })
        .collect();
    runs.sort();
    runs.iter()
        .map(|r| {
            let text = std::fs::read_to_string(r.join("run.json")).expect("run.json");
            serde_json::from_str(&text).expect("run.json is JSON")
        })
        .collect()
}

/// The run.json of the only run under `root`.
pub fn report(root: &Path) -> Value {
    let mut all = reports(root);
    assert_eq!(all.len(), 1, "runs under {}", root.display());
    all.remove(0)
}

/// A JSON number as f64.
pub fn secs(v: &Value) -> f64 {
    v.as_f64().unwrap_or_else(|| panic!("not a number: {v}"))
}
