//! Unit tests of `medianstop`: settings checked by field, the first-steps average, the rule
//! and what it stops, and `osprey tune run` stopping a trial process that falls below it.

use super::early::{self, first_steps_average, Comparison, MedianStop, Rule};
use super::experiment::Experiment;
use super::local::{run, TuneRunArgs};
use serde_json::json;

#[test]
fn medianstop_settings_are_checked_by_field() {
    assert_eq!(early::parse(None).expect("none"), None);
    assert_eq!(early::parse(Some(&json!(null))).expect("null"), None);
    let m = early::parse(Some(&json!({"algorithmName": "medianstop"})))
        .expect("valid")
        .expect("some");
    assert_eq!(m, MedianStop::default());
    assert_eq!((m.min_trials_required, m.start_step), (3, 4));
    let m = early::parse(Some(
        &json!({"algorithmName": "medianstop", "algorithmSettings": [
        {"name": "min_trials_required", "value": "5"}, {"name": "start_step", "value": "2"}]}),
    ))
    .expect("valid")
    .expect("some");
    assert_eq!((m.min_trials_required, m.start_step), (5, 2));
    let cases = [
        (
            json!({"algorithmName": "hyperband"}),
            "spec.earlyStopping.algorithmName: unknown early stopping algorithm \"hyperband\"",
        ),
        (json!({}), "spec.earlyStopping.algorithmName: must not be empty"),
        (
            json!({"algorithmName": "medianstop", "algorithmSettings": [
                {"name": "start_step", "value": "2"}, {"name": "start_step", "value": "0"}]}),
            "spec.earlyStopping.algorithmSettings[1].value: start_step must be at least 1",
        ),
        (
            json!({"algorithmName": "medianstop", "algorithmSettings": [
                {"name": "min_trials_required", "value": "many"}]}),
            "spec.earlyStopping.algorithmSettings[0].value: min_trials_required must be a non-negative integer",
        ),
        (
            json!({"algorithmName": "medianstop", "algorithmSettings": [
                {"name": "patience", "value": "3"}]}),
            "spec.earlyStopping.algorithmSettings[0].name: unknown setting \"patience\"",
        ),
        (json!("medianstop"), "spec.earlyStopping: "),
    ];
    for (v, want) in cases {
        let e = early::parse(Some(&v)).expect_err(want).to_string();
        assert!(e.starts_with(want), "{e} (want {want})");
    }
}

#[test]
fn medianstop_rule_is_the_median_of_first_steps_averages() {
    assert_eq!(
        first_steps_average(&[1.0, 2.0, 3.0, 10.0, 100.0], 4),
        Some(4.0)
    );
    assert_eq!(
        first_steps_average(&[1.0, 3.0], 4),
        Some(2.0),
        "fewer reports: all"
    );
    assert_eq!(first_steps_average(&[], 4), None);
    let m = MedianStop {
        min_trials_required: 3,
        start_step: 2,
    };
    let runs = vec![
        vec![0.5, 0.7, 0.99],
        vec![0.1, 0.3],
        vec![0.8, 0.8, 0.1],
        vec![],
    ];
    assert_eq!(
        m.rule("acc", &runs[..2], true),
        None,
        "two trials are not enough"
    );
    let with_empty = vec![runs[0].clone(), runs[1].clone(), runs[3].clone()];
    assert_eq!(
        m.rule("acc", &with_empty, true),
        None,
        "a trial without reports does not count"
    );
    let r = m
        .rule("acc", &runs, true)
        .expect("three averages: 0.6, 0.2, 0.8");
    assert_eq!(r.metric, "acc");
    assert!((r.value - 0.6).abs() < 1e-12, "{}", r.value);
    assert_eq!((r.comparison, r.start_step), (Comparison::Less, 2));
    let four = vec![vec![1.0], vec![2.0], vec![3.0], vec![10.0]];
    let r = m.rule("loss", &four, false).expect("four");
    assert!(
        (r.value - 2.5).abs() < 1e-12,
        "even count: the middle two's mean"
    );
    assert_eq!(r.comparison, Comparison::Greater);
}

#[test]
fn medianstop_stops_below_the_median_only_from_start_step() {
    let max = Rule {
        metric: "acc".into(),
        value: 0.6,
        comparison: Comparison::Less,
        start_step: 4,
    };
    assert!(!max.stops(3, 0.1), "before start_step nothing stops");
    assert!(max.stops(4, 0.59));
    assert!(max.stops(9, 0.1));
    assert!(!max.stops(4, 0.6), "equal to the median goes on");
    assert!(!max.stops(5, 0.9));
    let min = Rule {
        comparison: Comparison::Greater,
        ..max
    };
    assert!(min.stops(4, 0.61) && !min.stops(4, 0.5) && !min.stops(2, 0.9));
}

/// `osprey tune run` with medianstop: three trials succeed (averages 0.9, 0.8, 0.7; median
/// 0.8), then one reporting 0.1 is killed at its 4th report (it would sleep a minute after its
/// reports otherwise), and one reporting 0.85 runs to the end.
#[tokio::test]
async fn tune_run_stops_a_trial_below_the_median() {
    let dir = tempfile::tempdir().expect("tempdir");
    let script = "for i in 1 2 3 4 5; do echo acc=${trialParameters.v}; done; \
                  if [ ${trialParameters.v} = 0.1 ]; then exec sleep 60; fi";
    let exp: Experiment = serde_json::from_value(json!({
        "apiVersion": "kubeflow.org/v1beta1",
        "kind": "Experiment",
        "metadata": {"name": "es"},
        "spec": {
            "objective": {"type": "maximize", "objectiveMetricName": "acc"},
            "algorithm": {"algorithmName": "grid"},
            "earlyStopping": {"algorithmName": "medianstop"},
            "parallelTrialCount": 1,
            "maxTrialCount": 5,
            "parameters": [{"name": "v", "parameterType": "categorical",
                            "feasibleSpace": {"list": ["0.9", "0.8", "0.7", "0.1", "0.85"]}}],
            "trialTemplate": {
                "primaryContainerName": "main",
                "trialParameters": [{"name": "v", "reference": "v"}],
                "trialSpec": {"kind": "Job", "spec": {"template": {"spec": {"containers": [
                    {"name": "main", "command": ["sh", "-c", script]}]}}}}
            }
        }
    }))
    .expect("experiment");
    assert!(exp.plan().expect("plan").early_stopping.is_some());
    let path = dir.path().join("es.yaml");
    std::fs::write(&path, serde_yaml::to_string(&exp).expect("yaml")).expect("write");
    // Through the command line, as `osprey tune run` gets them (other flags keep defaults).
    #[derive(clap::Parser)]
    struct Cli {
        #[command(flatten)]
        args: TuneRunArgs,
    }
    let out = dir.path().join("trials.json");
    let cli = <Cli as clap::Parser>::try_parse_from([
        "tune".as_ref(),
        path.as_os_str(),
        "--output".as_ref(),
        out.as_os_str(),
        "--quiet".as_ref(),
    ])
    .expect("flags");
    let report = run(cli.args, std::future::pending::<()>())
        .await
        .expect("run");
    let states: Vec<(&str, &str)> = report
        .trials
        .iter()
        .map(|t| {
            (
                t.parameter_assignments
                    .first()
                    .map_or("", |a| a.value.as_str()),
                t.state.as_str(),
            )
        })
        .collect();
    assert_eq!(
        states,
        vec![
            ("0.9", "Succeeded"),
            ("0.8", "Succeeded"),
            ("0.7", "Succeeded"),
            ("0.1", "EarlyStopped"),
            ("0.85", "Succeeded"),
        ]
    );
    let stopped = &report.trials[3];
    assert_eq!(stopped.metrics.first().map(|m| m.value), Some(0.1));
    let best = report.current_optimal_trial.as_ref().expect("best");
    assert_eq!(best.name, report.trials[0].name);
}

#[test]
fn kubernetes_trials_get_the_medianstop_rule() {
    use super::kube::run::early_stopping_rules;
    let exp = |early: serde_json::Value| -> Experiment {
        serde_json::from_value(json!({
            "apiVersion": "kubeflow.org/v1beta1",
            "kind": "Experiment",
            "metadata": {"name": "k"},
            "spec": {
                "objective": {"type": "minimize", "objectiveMetricName": "loss"},
                "algorithm": {"algorithmName": "random"},
                "earlyStopping": early,
                "parameters": [{"name": "v", "parameterType": "double",
                                "feasibleSpace": {"min": "0", "max": "1"}}],
                "trialTemplate": {
                    "primaryContainerName": "main",
                    "trialSpec": {"kind": "Job", "spec": {"template": {"spec": {"containers": [
                        {"name": "main", "command": ["true"]}]}}}}
                }
            }
        }))
        .expect("experiment")
    };
    let none = exp(serde_json::Value::Null);
    let plan = none.plan().expect("plan");
    assert_eq!(
        early_stopping_rules(&none, &plan, &[1.0, 2.0, 3.0]),
        (vec![], None)
    );
    let ms = exp(json!({"algorithmName": "medianstop", "algorithmSettings": [
        {"name": "start_step", "value": "2"}]}));
    let plan = ms.plan().expect("plan");
    assert_eq!(
        early_stopping_rules(&ms, &plan, &[1.0, 2.0]),
        (vec![], Some(2))
    );
    let (rules, n) = early_stopping_rules(&ms, &plan, &[1.0, 2.0, 4.0]);
    assert_eq!(n, Some(2));
    assert_eq!(rules.len(), 1);
    let r = &rules[0];
    assert_eq!(
        (
            r.name.as_str(),
            r.value.as_str(),
            r.comparison.as_str(),
            r.start_step
        ),
        ("loss", "2.0", "greater", 2)
    );
}
