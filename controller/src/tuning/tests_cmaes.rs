//! Unit tests of `cmaes`: progress on a quadratic, generations rebuilt from the trials, IPOP
//! restarts, valid values, determinism, settings errors naming the field.

use super::cmaes::{self, Cmaes, CmaesSettings, Restart};
use super::space::{check, Assignment, Param};
use super::suggest::{Algorithm, Outcome, Seen};
use super::tests::{median, p, pending};
use super::tests_algos::{drive, mixed_space, setting};

fn quad_space() -> Vec<Param> {
    check(&[
        p("a", "double", "-5", "5", None, None),
        p("b", "double", "0.001", "10", None, Some("logUniform")),
        p("c", "int", "-50", "50", None, None),
    ])
    .expect("valid")
}

/// Minimised: 0 at a = 1.5, b = 0.1, c = 20.
fn quad(a: &Assignment) -> f64 {
    let v = |k: &str| {
        a.iter()
            .find(|(n, _)| n == k)
            .and_then(|(_, v)| v.parse::<f64>().ok())
            .expect(k)
    };
    (v("a") - 1.5).powi(2) + (v("b").log10() + 1.0).powi(2) + ((v("c") - 20.0) / 10.0).powi(2)
}

fn run(algo: &Cmaes, generations: usize) -> Vec<Vec<f64>> {
    let mut trials: Vec<Seen> = Vec::new();
    let mut values = Vec::new();
    for _ in 0..generations {
        let got = algo.suggest(&trials, 1000, false);
        assert!(!got.is_empty());
        let mut gen = Vec::new();
        for a in got {
            let f = quad(&a);
            gen.push(f);
            trials.push(Seen {
                assignment: a,
                outcome: Outcome::Value(f),
            });
        }
        values.push(gen);
    }
    values
}

#[test]
fn cmaes_improves_over_its_first_generation_on_a_quadratic() {
    for seed in 0..3 {
        let algo = Cmaes::new(
            quad_space(),
            CmaesSettings {
                seed,
                ..CmaesSettings::default()
            },
        );
        assert_eq!(algo.lambda(), 7, "4 + ⌊3 ln 3⌋");
        let gens = run(&algo, 15);
        assert!(gens.iter().all(|g| g.len() == 7), "one generation per call");
        let first = median(gens[0].clone());
        let last = median(gens[14].clone());
        eprintln!("seed {seed}: median of generation 0 {first:.4}, of generation 14 {last:.4}");
        assert!(last < first / 10.0, "seed {seed}: {first} -> {last}");
    }
}

#[test]
fn cmaes_waits_for_its_generation_and_repeats_per_seed() {
    let algo = Cmaes::new(quad_space(), CmaesSettings::default());
    let first = algo.suggest(&[], 3, false);
    assert_eq!(first.len(), 3);
    let mut trials = pending(&first);
    let rest = algo.suggest(&trials, 10, false);
    assert_eq!(rest.len(), 4, "the rest of generation 0");
    trials.extend(pending(&rest));
    assert!(
        algo.suggest(&trials, 1, false).is_empty(),
        "waits for generation 0"
    );
    for t in &mut trials {
        t.outcome = Outcome::Value(quad(&t.assignment));
    }
    trials[2].outcome = Outcome::Failed;
    assert_eq!(algo.suggest(&trials, 10, false).len(), 7);
    // The same history gives the same suggestions; the whole generation at once or one by one.
    let again = Cmaes::new(quad_space(), CmaesSettings::default());
    let mut one_by_one: Vec<Assignment> = Vec::new();
    for _ in 0..7 {
        let mut t = trials.clone();
        t.extend(pending(&one_by_one));
        one_by_one.extend(again.suggest(&t, 1, false));
    }
    assert_eq!(algo.suggest(&trials, 7, false), one_by_one);
    let a = drive(&Cmaes::new(mixed_space(), CmaesSettings::default()), 10, 4);
    assert_eq!(
        a,
        drive(&Cmaes::new(mixed_space(), CmaesSettings::default()), 10, 4)
    );
    let other = CmaesSettings {
        seed: 1,
        ..CmaesSettings::default()
    };
    assert_ne!(a, drive(&Cmaes::new(mixed_space(), other), 10, 4));
}

#[test]
fn cmaes_ipop_restarts_with_twice_the_population() {
    let flat = |restart| {
        let algo = Cmaes::new(
            quad_space(),
            CmaesSettings {
                restart,
                ..CmaesSettings::default()
            },
        );
        let first = algo.suggest(&[], 100, false);
        let done: Vec<Seen> = first
            .into_iter()
            .map(|a| Seen {
                assignment: a,
                outcome: Outcome::Value(1.0),
            })
            .collect();
        algo.suggest(&done, 100, false).len()
    };
    assert_eq!(flat(Restart::None), 7);
    assert_eq!(
        flat(Restart::Ipop),
        14,
        "a flat generation restarts, λ doubled"
    );
}

#[test]
fn cmaes_settings_errors_name_the_field() {
    let ok = cmaes::parse(&[
        setting("random_state", "4"),
        setting("sigma", "0.3"),
        setting("restart_strategy", "ipop"),
    ])
    .expect("valid");
    assert_eq!((ok.seed, ok.sigma, ok.restart), (4, 0.3, Restart::Ipop));
    let cases = [
        (setting("sigma", "0"), "[0].value: sigma must be in (0, 1]"),
        (
            setting("restart_strategy", "bipop"),
            "[0].value: restart_strategy bipop is not supported",
        ),
        (
            setting("restart_strategy", "x"),
            "[0].value: restart_strategy must be none or ipop",
        ),
        (
            setting("popsize", "10"),
            "[0].name: unknown setting \"popsize\" for cmaes",
        ),
    ];
    for (st, want) in cases {
        let e = cmaes::parse(&[st]).expect_err(want).to_string();
        let want = format!("spec.algorithm.algorithmSettings{want}");
        assert!(e.starts_with(&want), "{e} (want {want})");
    }
}
