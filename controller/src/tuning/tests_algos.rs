//! Unit tests shared by the model-based algorithms: every suggested value valid for its
//! domain, the same suggestions for the same seed, no repeats, better than random on a fixed
//! function; settings errors naming the field; the numerical helpers.

use super::bayes::{self, Bayes, BayesSettings};
use super::cube::{unit_of, value_at};
use super::experiment::Setting;
use super::mtpe::MultivariateTpe;
use super::numeric::{cholesky, norm_cdf, sym_eigen};
use super::random::RandomSearch;
use super::space::{check, Assignment, Domain, Param};
use super::suggest::{Algorithm, Outcome, Seen};
use super::tests::{list, median, objective, p, pending};
use super::tpe::{self, TpeSettings};

/// A space with every kind of parameter.
pub(super) fn mixed_space() -> Vec<Param> {
    check(&[
        p("n", "int", "2", "20", Some("3"), None),
        p("lr", "double", "0.0001", "0.1", None, Some("logUniform")),
        p("drop", "double", "0", "0.55", Some("0.1"), None),
        p("units", "int", "8", "512", None, Some("logUniform")),
        p("w", "double", "-1", "1", None, Some("normal")),
        list("opt", "categorical", &["sgd", "adam", "rmsprop"]),
        list("bs", "discrete", &["64", "16", "32"]),
    ])
    .expect("valid")
}

/// Whether `v` is a value of `p`'s domain, rendered as the random algorithm renders it.
pub(super) fn valid(p: &Param, v: &str) -> bool {
    match &p.domain {
        Domain::Int { min, max, step, .. } => v
            .parse::<i64>()
            .is_ok_and(|x| (*min..=*max).contains(&x) && (x - min) % step == 0),
        Domain::Double { min, max, step, .. } => {
            let Ok(x) = v.parse::<f64>() else {
                return false;
            };
            let on_step = match step {
                Some(s) => {
                    let k = (x - min) / s;
                    (k - k.round()).abs() < 1e-9
                }
                None => true,
            };
            (*min..=*max).contains(&x) && on_step && (v.contains('.') || v.contains('e'))
        }
        Domain::List(values) => values.iter().any(|s| s == v),
    }
}

/// Runs `algo` for `rounds` batches of `batch` on a function of the mixed space (maximised),
/// checking every suggestion is valid and new; returns the trials.
pub(super) fn drive(algo: &dyn Algorithm, rounds: usize, batch: usize) -> Vec<Seen> {
    let space = mixed_space();
    let mut trials: Vec<Seen> = Vec::new();
    for _ in 0..rounds {
        let got = algo.suggest(&trials, batch, true);
        for a in &got {
            assert_eq!(a.len(), space.len(), "{a:?}");
            for (prm, (name, v)) in space.iter().zip(a) {
                assert_eq!(&prm.name, name);
                assert!(
                    valid(prm, v),
                    "{name}={v:?} is not a value of {:?}",
                    prm.domain
                );
            }
            assert!(
                !trials.iter().any(|t| &t.assignment == a),
                "{a:?} suggested again"
            );
        }
        for (i, a) in got.iter().enumerate() {
            assert!(!got[..i].contains(a), "{a:?} twice in one batch");
        }
        for a in got {
            let f = mixed_objective(&a);
            trials.push(Seen {
                assignment: a,
                outcome: Outcome::Value(f),
            });
        }
    }
    trials
}

fn mixed_objective(a: &Assignment) -> f64 {
    let num = |k: &str| {
        a.iter()
            .find(|(n, _)| n == k)
            .and_then(|(_, v)| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    -(num("n") - 11.0).abs() - (num("lr").log10() + 2.0).powi(2) - num("w").powi(2)
        + if a.iter().any(|(_, v)| v == "adam") {
            1.0
        } else {
            0.0
        }
}

/// The best value of finished trials.
pub(super) fn best(trials: &[Seen]) -> f64 {
    trials
        .iter()
        .filter_map(|t| match t.outcome {
            Outcome::Value(v) => Some(v),
            _ => None,
        })
        .fold(f64::MIN, f64::max)
}

/// The simple function of the existing TPE test (x in [-5, 5], y int, opt), maximised, run
/// sequentially for `budget` trials with `make(seed)`, against random with the same seeds:
/// the median best over 9 seeds.
pub(super) fn versus_random(make: &dyn Fn(u64) -> Box<dyn Algorithm>, budget: usize) -> (f64, f64) {
    let space = check(&[
        p("x", "double", "-5", "5", None, None),
        p("y", "int", "-5", "5", None, None),
        list("opt", "categorical", &["sgd", "adam", "rmsprop"]),
    ])
    .expect("valid");
    let (mut ours, mut theirs) = (Vec::new(), Vec::new());
    for seed in 0..9u64 {
        let algo = make(seed);
        let mut trials: Vec<Seen> = Vec::new();
        for _ in 0..budget {
            let Some(a) = algo.suggest(&trials, 1, true).into_iter().next() else {
                break;
            };
            let f = objective(&a);
            trials.push(Seen {
                assignment: a,
                outcome: Outcome::Value(f),
            });
        }
        ours.push(best(&trials));
        let r = RandomSearch::new(space.clone(), seed);
        theirs.push(
            r.suggest(&[], budget, true)
                .iter()
                .map(objective)
                .fold(f64::MIN, f64::max),
        );
    }
    (median(ours), median(theirs))
}

pub(super) fn simple_space() -> Vec<Param> {
    check(&[
        p("x", "double", "-5", "5", None, None),
        p("y", "int", "-5", "5", None, None),
        list("opt", "categorical", &["sgd", "adam", "rmsprop"]),
    ])
    .expect("valid")
}

pub(super) fn setting(name: &str, value: &str) -> Setting {
    Setting {
        name: name.into(),
        value: value.into(),
    }
}

#[test]
fn unit_cube_round_trips_and_snaps_to_the_domain() {
    let space = mixed_space();
    for prm in &space {
        for k in 0..=40 {
            let u = k as f64 / 40.0;
            let v = value_at(prm, u);
            assert!(valid(prm, &v), "{} at {u}: {v:?}", prm.name);
            if let Some(back) = unit_of(prm, &v) {
                assert!((0.0..=1.0).contains(&back));
                assert_eq!(value_at(prm, back), v, "{} round trip", prm.name);
            }
        }
        assert!(valid(prm, &value_at(prm, -3.0)) && valid(prm, &value_at(prm, f64::NAN)));
    }
    let bs = space.iter().find(|q| q.name == "bs").expect("bs");
    assert_eq!(value_at(bs, 0.0), "16", "discrete lists by rank");
    assert_eq!(value_at(bs, 1.0), "64");
    let lr = space.iter().find(|q| q.name == "lr").expect("lr");
    let mid: f64 = value_at(lr, 0.5).parse().expect("lr");
    assert!(
        (mid - 0.0001f64.sqrt() * 0.1f64.sqrt()).abs() < 1e-9,
        "log space: {mid}"
    );
    let drop = space.iter().find(|q| q.name == "drop").expect("drop");
    assert_eq!(value_at(drop, 1.0), "0.5", "the last step inside max");
}

#[test]
fn numeric_helpers_are_right() {
    assert!((norm_cdf(0.0) - 0.5).abs() < 1e-7);
    assert!((norm_cdf(1.96) - 0.975).abs() < 1e-3);
    let a = [4.0, 2.0, 2.0, 3.0];
    let l = cholesky(&a, 2).expect("spd");
    assert!((l[0] - 2.0).abs() < 1e-12 && (l[2] - 1.0).abs() < 1e-12);
    assert!(
        cholesky(&[1.0, 2.0, 2.0, 1.0], 2).is_none(),
        "not positive definite"
    );
    let m = [2.0, 1.0, 0.0, 1.0, 2.0, 0.5, 0.0, 0.5, 1.0];
    let (vals, vecs) = sym_eigen(&m, 3);
    for i in 0..3 {
        for j in 0..3 {
            let r: f64 = (0..3)
                .map(|k| vecs[i * 3 + k] * vals[k] * vecs[j * 3 + k])
                .sum();
            assert!((r - m[i * 3 + j]).abs() < 1e-9, "V D Vᵀ = M at {i},{j}");
        }
    }
}

#[test]
fn bayes_emits_valid_new_values_and_repeats_per_seed() {
    let make = |seed| {
        Bayes::new(
            mixed_space(),
            BayesSettings {
                seed,
                n_initial_points: 4,
                ..BayesSettings::default()
            },
        )
    };
    let a = drive(&make(3), 4, 3);
    assert_eq!(a, drive(&make(3), 4, 3), "same seed, same trials");
    assert_ne!(a, drive(&make(4), 4, 3));
    // Parallel suggestions with pending trials spread.
    let more = make(3).suggest(&a, 3, true);
    let with_pending: Vec<Seen> = a.iter().cloned().chain(pending(&more)).collect();
    let next = make(3).suggest(&with_pending, 2, true);
    for x in &next {
        assert!(!more.contains(x) && !a.iter().any(|t| &t.assignment == x));
    }
}

#[test]
fn bayes_beats_random_on_a_fixed_function_over_fixed_seeds() {
    let (ours, random) = versus_random(
        &|seed| {
            Box::new(Bayes::new(
                simple_space(),
                BayesSettings {
                    seed,
                    n_initial_points: 6,
                    ..BayesSettings::default()
                },
            ))
        },
        25,
    );
    eprintln!("median best after 25: bayes {ours:.3}, random {random:.3}");
    assert!(ours > random, "bayes {ours} vs random {random}");
}

#[test]
fn bayes_settings_errors_name_the_field() {
    let ok = bayes::parse(&[
        setting("base_estimator", "GP"),
        setting("n_initial_points", "3"),
        setting("acq_func", "LCB"),
        setting("acq_optimizer", "sampling"),
        setting("random_state", "9"),
    ])
    .expect("valid");
    assert_eq!(ok.n_initial_points, 3);
    assert_eq!(ok.seed, 9);
    assert_eq!(ok.acq_func, bayes::Acquisition::Lcb);
    let cases = [
        (setting("base_estimator", "RF"), "[0].value", "only GP"),
        (
            setting("acq_func", "gp_hedge"),
            "[0].value",
            "gp_hedge is not supported",
        ),
        (setting("acq_func", "UCB"), "[0].value", "EI, PI, LCB"),
        (
            setting("acq_optimizer", "lbfgs"),
            "[0].value",
            "auto, sampling",
        ),
        (
            setting("n_initial_points", "-1"),
            "[0].value",
            "non-negative integer",
        ),
        (
            setting("kappa", "2"),
            "[0].name",
            "unknown setting \"kappa\"",
        ),
    ];
    for (st, field, msg) in cases {
        let e = bayes::parse(&[st]).expect_err(msg).to_string();
        assert!(
            e.starts_with(&format!("spec.algorithm.algorithmSettings{field}")) && e.contains(msg),
            "{e}"
        );
    }
    // Each LCB/PI runs too.
    for acq in [bayes::Acquisition::Pi, bayes::Acquisition::Lcb] {
        let b = Bayes::new(
            mixed_space(),
            BayesSettings {
                acq_func: acq,
                n_initial_points: 3,
                seed: 1,
            },
        );
        assert_eq!(drive(&b, 3, 2).len(), 6);
    }
}

#[test]
fn multivariate_tpe_emits_valid_new_values_and_repeats_per_seed() {
    let make = |seed| {
        MultivariateTpe::new(
            mixed_space(),
            TpeSettings {
                seed,
                n_startup_trials: 4,
                ..TpeSettings::default()
            },
        )
    };
    let a = drive(&make(5), 6, 3);
    assert_eq!(a, drive(&make(5), 6, 3), "same seed, same trials");
    assert_ne!(a, drive(&make(6), 6, 3));
}

#[test]
fn multivariate_tpe_beats_random_on_a_fixed_function_over_fixed_seeds() {
    let (ours, random) = versus_random(
        &|seed| {
            Box::new(MultivariateTpe::new(
                simple_space(),
                TpeSettings {
                    seed,
                    ..TpeSettings::default()
                },
            ))
        },
        30,
    );
    eprintln!("median best after 30: multivariate-tpe {ours:.3}, random {random:.3}");
    assert!(ours > random, "multivariate-tpe {ours} vs random {random}");
}

#[test]
fn multivariate_tpe_settings_errors_name_the_field() {
    let ok = tpe::parse(
        &[
            setting("n_startup_trials", "7"),
            setting("n_ei_candidates", "50"),
            setting("gamma", "0.3"),
            setting("random_state", "2"),
        ],
        "multivariate-tpe",
    )
    .expect("valid");
    assert_eq!(
        (ok.n_startup_trials, ok.n_ei_candidates, ok.seed),
        (7, 50, 2)
    );
    let e = tpe::parse(
        &[setting("random_state", "1"), setting("gamma", "1.5")],
        "multivariate-tpe",
    )
    .expect_err("gamma")
    .to_string();
    assert!(
        e.starts_with("spec.algorithm.algorithmSettings[1].value: gamma must be in (0, 1)"),
        "{e}"
    );
    let e = tpe::parse(&[setting("sigma", "1")], "multivariate-tpe")
        .expect_err("unknown")
        .to_string();
    assert!(
        e.starts_with("spec.algorithm.algorithmSettings[0].name: unknown setting \"sigma\" for multivariate-tpe"),
        "{e}"
    );
}

/// An Experiment with the simple space and `algorithm`, as `osprey tune run` reads it.
fn experiment(algorithm: serde_json::Value) -> super::experiment::Experiment {
    serde_json::from_value(serde_json::json!({
        "apiVersion": "kubeflow.org/v1beta1",
        "kind": "Experiment",
        "metadata": {"name": "e"},
        "spec": {
            "objective": {"type": "minimize", "objectiveMetricName": "loss"},
            "algorithm": algorithm,
            "parameters": [
                {"name": "epochs", "parameterType": "int", "feasibleSpace": {"min": "1", "max": "9"}},
                {"name": "lr", "parameterType": "double",
                 "feasibleSpace": {"min": "0.001", "max": "0.1", "distribution": "logUniform"}},
                {"name": "opt", "parameterType": "categorical", "feasibleSpace": {"list": ["a", "b"]}}
            ],
            "trialTemplate": {
                "primaryContainerName": "main",
                "trialSpec": {"kind": "Job", "spec": {"template": {"spec": {"containers": [
                    {"name": "main", "command": ["true"]}]}}}}
            }
        }
    }))
    .expect("experiment")
}

#[test]
fn every_algorithm_is_planned_built_and_suggests() {
    use super::experiment::AlgorithmKind;
    let cases = [
        (
            serde_json::json!({"algorithmName": "bayesianoptimization", "algorithmSettings": [
            {"name": "n_initial_points", "value": "2"}]}),
            "bayes",
        ),
        (
            serde_json::json!({"algorithmName": "multivariate-tpe"}),
            "mtpe",
        ),
        (
            serde_json::json!({"algorithmName": "cmaes", "algorithmSettings": [
            {"name": "restart_strategy", "value": "ipop"}]}),
            "cmaes",
        ),
        (
            serde_json::json!({"algorithmName": "hyperband", "algorithmSettings": [
            {"name": "resource_name", "value": "epochs"}]}),
            "hyperband",
        ),
    ];
    for (algorithm, what) in cases {
        let plan = experiment(algorithm).plan().expect(what);
        let ok = match (&plan.algorithm, what) {
            (AlgorithmKind::Bayes(s), "bayes") => s.n_initial_points == 2,
            (AlgorithmKind::MultivariateTpe(_), "mtpe") => true,
            (AlgorithmKind::Cmaes(s), "cmaes") => s.restart == super::cmaes::Restart::Ipop,
            (AlgorithmKind::Hyperband(s), "hyperband") => s.r_l == 9.0 && s.eta == 3.0,
            _ => false,
        };
        assert!(ok, "{what}: {:?}", plan.algorithm);
        let algo = super::suggest::build(&plan.algorithm, &plan.space).expect(what);
        let mut trials: Vec<Seen> = Vec::new();
        for _ in 0..4 {
            for a in algo.suggest(&trials, 2, false) {
                for (prm, (_, v)) in plan.space.iter().zip(&a) {
                    assert!(valid(prm, v), "{what}: {v}");
                }
                trials.push(Seen {
                    assignment: a,
                    outcome: Outcome::Value(trials.len() as f64),
                });
            }
        }
        assert!(trials.len() >= 4, "{what}: {}", trials.len());
    }
    // Errors name the field; the unknown algorithm lists the supported ones.
    let e = experiment(serde_json::json!({"algorithmName": "sobol"}))
        .plan()
        .expect_err("sobol")
        .to_string();
    assert!(
        e.contains("spec.algorithm.algorithmName")
            && e.contains(
                "random, grid, tpe, multivariate-tpe, bayesianoptimization, cmaes, hyperband"
            ),
        "{e}"
    );
    let e = experiment(
        serde_json::json!({"algorithmName": "hyperband", "algorithmSettings": [
        {"name": "eta", "value": "3"}, {"name": "resource_name", "value": "lr2"}]}),
    )
    .plan()
    .expect_err("lr2")
    .to_string();
    assert!(
        e.starts_with("spec.algorithm.algorithmSettings[1].value: resource_name \"lr2\""),
        "{e}"
    );
    let e = experiment(
        serde_json::json!({"algorithmName": "bayesianoptimization", "algorithmSettings": [
        {"name": "base_estimator", "value": "GBRT"}]}),
    )
    .plan()
    .expect_err("GBRT")
    .to_string();
    assert!(
        e.starts_with("spec.algorithm.algorithmSettings[0].value: base_estimator \"GBRT\""),
        "{e}"
    );
}
