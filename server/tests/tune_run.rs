//! `osprey tune run` end to end: Katib Experiments whose trials run examples/tuning/quadratic.py
//! (Katib's StdOut metric format) as local processes, with the built binary.

mod common;

use common::pipeline::{repo, text};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// The example experiment with `edit` applied to its YAML text.
fn experiment(dir: &Path, edit: impl Fn(String) -> String) -> PathBuf {
    let text =
        std::fs::read_to_string(repo().join("examples/tuning/random.yaml")).expect("example");
    let path = dir.join("experiment.yaml");
    std::fs::write(&path, edit(text)).expect("write");
    path
}

fn tune(manifest: &Path, out: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_osprey"))
        .args(["tune", "run", "--quiet", "--output"])
        .arg(out)
        .arg(manifest)
        .current_dir(repo())
        .stdin(Stdio::null())
        .output()
        .expect("osprey runs")
}

fn report(out: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(out).expect("trials file")).expect("JSON")
}

fn score(t: &Value) -> f64 {
    t["metrics"]
        .as_array()
        .and_then(|m| m.iter().find(|m| m["name"] == "score"))
        .and_then(|m| m["value"].as_f64())
        .unwrap_or(f64::NAN)
}

const GRID: &str = r#"algorithm:
    algorithmName: grid
  parallelTrialCount: 1
  maxTrialCount: 100
  maxFailedTrialCount: 3
  parameters:
    - name: x
      parameterType: int
      feasibleSpace: {min: "0", max: "4"}
    - name: y
      parameterType: discrete
      feasibleSpace: {list: ["0", "-1"]}"#;

fn grid(text: String) -> String {
    let start = text.find("algorithm:").expect("algorithm");
    let end = text.find("  trialTemplate:").expect("template");
    format!("{}{GRID}\n{}", &text[..start], &text[end..])
}

#[test]
fn random_search_runs_every_trial_and_finds_the_best() {
    let dir = tempfile::tempdir().expect("tempdir");
    let manifest = experiment(dir.path(), |t| t);
    let (a, b) = (dir.path().join("a.json"), dir.path().join("b.json"));
    let out = tune(&manifest, &a);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let r = report(&a);
    assert_eq!(r["reason"], "ExperimentMaxTrialsReached");
    let trials = r["trials"].as_array().expect("trials");
    assert_eq!(trials.len(), 12);
    let mut best = f64::MIN;
    for t in trials {
        assert_eq!(t["state"], "Succeeded", "{t}");
        for p in t["parameterAssignments"].as_array().expect("assignments") {
            let v: f64 = p["value"]
                .as_str()
                .and_then(|v| v.parse().ok())
                .expect("number");
            assert!((-5.0..=5.0).contains(&v), "{p}");
        }
        // The objective is the best of the reported values (the last step's), the additional
        // metric the latest.
        let x: f64 = t["parameterAssignments"][0]["value"]
            .as_str()
            .and_then(|v| v.parse().ok())
            .expect("x");
        let y: f64 = t["parameterAssignments"][1]["value"]
            .as_str()
            .and_then(|v| v.parse().ok())
            .expect("y");
        let want = 10.0 - (x - 2.0).powi(2) - (y + 1.0).powi(2);
        assert!((score(t) - want).abs() < 1e-9, "{t}");
        best = best.max(score(t));
    }
    assert_eq!(score(&r["currentOptimalTrial"]), best);
    // The same seed gives the same trials.
    let out = tune(&manifest, &b);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let assignments = |r: &Value| -> Vec<Value> {
        r["trials"]
            .as_array()
            .expect("trials")
            .iter()
            .map(|t| t["parameterAssignments"].clone())
            .collect()
    };
    assert_eq!(assignments(&report(&b)), assignments(&r));
}

#[test]
fn grid_search_stops_at_the_goal() {
    let dir = tempfile::tempdir().expect("tempdir");
    let manifest = experiment(dir.path(), grid);
    let out_file = dir.path().join("t.json");
    let out = tune(&manifest, &out_file);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let r = report(&out_file);
    assert_eq!(r["reason"], "ExperimentGoalReached", "{}", text(&out));
    let trials = r["trials"].as_array().expect("trials");
    // Grid order (x slowest): (0,0) (0,-1) (1,0) (1,-1) (2,0) (2,-1): the goal at the 6th.
    assert_eq!(trials.len(), 6, "{}", text(&out));
    assert_eq!(score(&r["currentOptimalTrial"]), 10.0);
    assert_eq!(
        r["currentOptimalTrial"]["parameterAssignments"][0]["value"],
        "2"
    );
    assert_eq!(
        r["currentOptimalTrial"]["parameterAssignments"][1]["value"],
        "-1"
    );
}

#[test]
fn failing_trials_fail_the_experiment_and_missing_metrics_are_not_successes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let manifest = experiment(dir.path(), |t| {
        grid(t)
            .replace("maxFailedTrialCount: 3", "maxFailedTrialCount: 1")
            .replace("goal: 9.99", "goal: 100")
            .replace(
                "- --y=${trialParameters.y}",
                "- --y=${trialParameters.y}\n                  - --fail-above=0",
            )
    });
    let out_file = dir.path().join("t.json");
    let out = tune(&manifest, &out_file);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let r = report(&out_file);
    assert_eq!(r["reason"], "ExperimentMaxFailedTrialsReached");
    let failed = r["trials"]
        .as_array()
        .expect("trials")
        .iter()
        .filter(|t| t["state"] == "Failed")
        .count();
    assert_eq!(failed, 2, "{}", text(&out));

    let manifest = experiment(dir.path(), |t| {
        t.replace("maxTrialCount: 12", "maxTrialCount: 2").replace(
            "- --y=${trialParameters.y}",
            "- --y=${trialParameters.y}\n                  - --no-metrics",
        )
    });
    let out = tune(&manifest, &out_file);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let r = report(&out_file);
    for t in r["trials"].as_array().expect("trials") {
        assert_eq!(t["state"], "MetricsUnavailable", "{t}");
    }
    assert!(r["currentOptimalTrial"].is_null());
}

#[test]
fn bad_experiments_are_refused_naming_the_field() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cases: [(&str, &str, &str); 4] = [
        (
            "algorithmName: random",
            "algorithmName: hyperopt",
            "spec.algorithm.algorithmName",
        ),
        (
            "{min: \"-5\", max: \"5\"}",
            "{min: \"5\", max: \"-5\"}",
            "spec.parameters[0].feasibleSpace.min",
        ),
        (
            "--x=${trialParameters.x}",
            "--x=${trialParameters.z}",
            "${trialParameters.z} is not in",
        ),
        (
            "reference: y",
            "reference: w",
            "spec.trialTemplate.trialParameters[1].reference",
        ),
    ];
    for (from, to, want) in cases {
        let manifest = experiment(dir.path(), |t| t.replacen(from, to, 1));
        let out = tune(&manifest, &dir.path().join("t.json"));
        assert_eq!(out.status.code(), Some(2), "{from}: {}", text(&out));
        assert!(text(&out).contains(want), "{from}: {}", text(&out));
    }
}

#[test]
fn tpe_gets_closer_to_the_optimum_than_random_with_the_same_budget() {
    let dir = tempfile::tempdir().expect("tempdir");
    let best = |algorithm: &str, file: &str| {
        let manifest = experiment(dir.path(), |t| {
            t.replace(
                "algorithmName: random",
                &format!("algorithmName: {algorithm}"),
            )
            .replace("parallelTrialCount: 3", "parallelTrialCount: 1")
            .replace("maxTrialCount: 12", "maxTrialCount: 20")
            .replace("goal: 9.99", "goal: 100")
        });
        let out_file = dir.path().join(file);
        let out = tune(&manifest, &out_file);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out));
        score(&report(&out_file)["currentOptimalTrial"])
    };
    let (tpe, random) = (best("tpe", "tpe.json"), best("random", "random.json"));
    eprintln!("best score after 20 trials (optimum 10): tpe {tpe}, random {random}");
    assert!(tpe > random, "tpe {tpe} vs random {random}");
    assert!(tpe > 9.0, "tpe {tpe}");
}

#[test]
fn the_file_collector_reads_json_lines_the_trial_writes() {
    let dir = tempfile::tempdir().expect("tmp");
    let metrics = dir.path().join("metrics.log");
    let collector = format!(
        "  metricsCollectorSpec:\n    collector: {{kind: File}}\n    source:\n      \
         fileSystemPath: {{path: {}, kind: File, format: JSON}}\n  trialTemplate:",
        metrics.display()
    );
    // The trial prints nothing useful on stdout; it writes JSON lines with the score.
    let script = format!(
        "command: [sh, -c, 'echo score=-100; echo {{\\\"score\\\": \\\"${{trialParameters.x}}\\\"}} >> {m}; echo {{\\\"score\\\": 1, \\\"loss\\\": 2}} >> {m}']",
        m = metrics.display()
    );
    let manifest = experiment(dir.path(), |t| {
        let t = grid(t).replace("  trialTemplate:", &collector);
        let start = t.find("command:").expect("command");
        let end = t.find("restartPolicy").expect("restart");
        format!("{}{script}\n            {}", &t[..start], &t[end..])
    });
    let out = dir.path().join("trials.json");
    let o = tune(&manifest, &out);
    assert!(o.status.success(), "{}", text(&o));
    let r = report(&out);
    let trials = r["trials"].as_array().expect("trials");
    assert_eq!(trials.len(), 10, "the whole grid");
    for t in trials {
        let x: f64 = t["parameterAssignments"][0]["value"]
            .as_str()
            .and_then(|v| v.parse().ok())
            .expect("x");
        // max of the file's values (x and 1), never stdout's -100.
        assert_eq!(score(t), x.max(1.0), "{t}");
    }
    // Shared by parallel trials on one machine: refused by field.
    let manifest = experiment(dir.path(), |t| t.replace("  trialTemplate:", &collector));
    let o = tune(&manifest, &out);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        text(&o).contains("spec.metricsCollectorSpec"),
        "{}",
        text(&o)
    );
}
