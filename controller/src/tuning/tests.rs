//! Unit tests: the search space checked by field, sampling within bounds and per distribution,
//! determinism per seed, grid enumeration.

use super::grid::GridSearch;
use super::random::RandomSearch;
use super::space::{check, Assignment, FeasibleSpace, ParameterSpec};
use super::suggest::{Algorithm, Outcome, Seen};
use super::tpe::{Tpe, TpeSettings};

pub(super) fn p(
    name: &str,
    ty: &str,
    min: &str,
    max: &str,
    step: Option<&str>,
    dist: Option<&str>,
) -> ParameterSpec {
    ParameterSpec {
        name: name.into(),
        parameter_type: ty.into(),
        feasible_space: FeasibleSpace {
            min: Some(min.into()),
            max: Some(max.into()),
            step: step.map(String::from),
            list: Vec::new(),
            distribution: dist.map(String::from),
        },
    }
}

pub(super) fn list(name: &str, ty: &str, values: &[&str]) -> ParameterSpec {
    ParameterSpec {
        name: name.into(),
        parameter_type: ty.into(),
        feasible_space: FeasibleSpace {
            list: values.iter().map(|v| v.to_string()).collect(),
            ..FeasibleSpace::default()
        },
    }
}

#[test]
fn bad_spaces_name_the_field() {
    let cases = [
        (vec![], "spec.parameters: the search space is empty"),
        (
            vec![p("lr", "double", "0.1", "0.01", None, None)],
            "spec.parameters[0].feasibleSpace.min: min 0.1 is greater than max 0.01",
        ),
        (
            vec![p("n", "int", "1", "x", None, None)],
            "spec.parameters[0].feasibleSpace.max: not a valid int: \"x\"",
        ),
        (
            vec![p("n", "float", "1", "2", None, None)],
            "spec.parameters[0].parameterType: unknown type \"float\"",
        ),
        (
            vec![p("lr", "double", "0", "1", None, Some("logUniform"))],
            "spec.parameters[0].feasibleSpace.min: must be positive for a log distribution",
        ),
        (
            vec![p("lr", "double", "0", "1", None, Some("zipf"))],
            "spec.parameters[0].feasibleSpace.distribution: unknown distribution \"zipf\"",
        ),
        (
            vec![list("opt", "categorical", &[])],
            "spec.parameters[0].feasibleSpace.list: a categorical parameter needs a non-empty list",
        ),
        (
            vec![list("bs", "discrete", &["16", "big"])],
            "spec.parameters[0].feasibleSpace.list[1]: a discrete value must be a number",
        ),
        (
            vec![
                list("a", "categorical", &["x"]),
                list("a", "categorical", &["y"]),
            ],
            "spec.parameters[1].name: parameter \"a\" is given twice",
        ),
        (
            vec![p("n", "int", "1", "5", Some("0"), None)],
            "spec.parameters[0].feasibleSpace.step: must be positive",
        ),
    ];
    for (params, want) in cases {
        let e = check(&params).expect_err(want);
        assert!(e.to_string().starts_with(want), "{e} (want {want})");
    }
}

#[test]
fn random_stays_in_bounds_and_repeats_per_seed() {
    let space = check(&[
        p("lr", "double", "0.0001", "0.1", None, Some("logUniform")),
        p("layers", "int", "2", "10", Some("2"), None),
        p("dropout", "double", "0", "0.5", Some("0.1"), None),
        list("opt", "categorical", &["sgd", "adam"]),
    ])
    .expect("valid");
    let a = RandomSearch::new(space.clone(), 7);
    let b = RandomSearch::new(space.clone(), 7);
    let xs = a.suggest(&[], 400, true);
    assert_eq!(xs, b.suggest(&[], 400, true), "same seed, same trials");
    let c = RandomSearch::new(space, 8);
    assert_ne!(xs, c.suggest(&[], 400, true));
    let mut below_geo_mean = 0;
    for x in &xs {
        let get = |k: &str| {
            x.iter()
                .find(|(n, _)| n == k)
                .map(|(_, v)| v.clone())
                .expect(k)
        };
        let lr: f64 = get("lr").parse().expect("lr");
        assert!((0.0001..=0.1).contains(&lr), "{lr}");
        if lr < (0.0001f64 * 0.1).sqrt() {
            below_geo_mean += 1;
        }
        let layers: i64 = get("layers").parse().expect("layers");
        assert!([2, 4, 6, 8, 10].contains(&layers), "{layers}");
        let d: f64 = get("dropout").parse().expect("dropout");
        assert!(
            (0.0..=0.5).contains(&d) && ((d * 10.0).round() - d * 10.0).abs() < 1e-9,
            "{d}"
        );
        assert!(["sgd", "adam"].contains(&get("opt").as_str()));
    }
    // Log-uniform: half the draws below the geometric mean (a uniform draw would put ~1%).
    assert!(
        (150..=250).contains(&below_geo_mean),
        "{below_geo_mean} of 400"
    );
}

#[test]
fn random_does_not_repeat_while_fresh_points_remain() {
    let space = check(&[
        list("a", "categorical", &["x", "y"]),
        p("n", "int", "1", "3", None, None),
    ])
    .expect("valid");
    let r = RandomSearch::new(space, 1);
    let first = r.suggest(&[], 4, true);
    let rest = r.suggest(&pending(&first), 2, true);
    let mut all = first.clone();
    all.extend(rest);
    let mut unique = all.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), 6, "{all:?}");
}

#[test]
fn grid_enumerates_every_point_once_in_order() {
    let space = check(&[
        p("n", "int", "1", "5", Some("2"), None),
        p("lr", "double", "0.1", "0.3", Some("0.1"), None),
        list("opt", "categorical", &["sgd", "adam"]),
    ])
    .expect("valid");
    let g = GridSearch::new(space).expect("grid");
    assert_eq!(g.len(), 3 * 3 * 2);
    let all = g.suggest(100, &[]);
    assert_eq!(all.len(), 18);
    let first: Vec<String> = all[0].iter().map(|(_, v)| v.clone()).collect();
    assert_eq!(first, ["1", "0.1", "sgd"]);
    let second: Vec<String> = all[1].iter().map(|(_, v)| v.clone()).collect();
    assert_eq!(second, ["1", "0.1", "adam"]);
    let last: Vec<String> = all[17].iter().map(|(_, v)| v.clone()).collect();
    assert_eq!(last, ["5", "0.3", "adam"]);
    let mut unique = all.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), 18);
    // What was tried is not suggested again; the grid ends.
    assert_eq!(g.suggest(5, &all[..16]), all[16..].to_vec());
    assert!(g.suggest(5, &all).is_empty());
    // A double without a step cannot be a grid.
    let e = GridSearch::new(check(&[p("lr", "double", "0", "1", None, None)]).expect("valid"))
        .expect_err("no step");
    assert!(e.contains("needs feasibleSpace.step"), "{e}");
}

pub(super) fn objective(a: &Assignment) -> f64 {
    let get = |k: &str| {
        a.iter()
            .find(|(n, _)| n == k)
            .and_then(|(_, v)| v.parse::<f64>().ok())
            .expect(k)
    };
    let bonus = if a.iter().any(|(n, v)| n == "opt" && v == "adam") {
        1.0
    } else {
        0.0
    };
    10.0 - (get("x") - 2.0).powi(2) - (get("y") + 1.0).powi(2) + bonus
}

/// Trials created and not finished.
pub(super) fn pending(assignments: &[Assignment]) -> Vec<Seen> {
    assignments
        .iter()
        .map(|a| Seen {
            assignment: a.clone(),
            outcome: Outcome::Pending,
        })
        .collect()
}

pub(super) fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

#[test]
fn tpe_beats_random_on_a_fixed_function_over_fixed_seeds() {
    let space = check(&[
        p("x", "double", "-5", "5", None, None),
        p("y", "int", "-5", "5", None, None),
        list("opt", "categorical", &["sgd", "adam", "rmsprop"]),
    ])
    .expect("valid");
    let budget = 30;
    let (mut tpe_best, mut random_best) = (Vec::new(), Vec::new());
    for seed in 0..9u64 {
        let tpe = Tpe::new(
            space.clone(),
            TpeSettings {
                seed,
                ..TpeSettings::default()
            },
        );
        let mut history: Vec<Seen> = Vec::new();
        for _ in 0..budget {
            let a = tpe.suggest(&history, 1, true).remove(0);
            for (name, v) in &a {
                assert!(!v.is_empty(), "{name}");
            }
            let f = objective(&a);
            history.push(Seen {
                assignment: a,
                outcome: Outcome::Value(f),
            });
        }
        tpe_best.push(
            history
                .iter()
                .filter_map(|h| match h.outcome {
                    Outcome::Value(v) => Some(v),
                    _ => None,
                })
                .fold(f64::MIN, f64::max),
        );
        let r = RandomSearch::new(space.clone(), seed);
        let best = r
            .suggest(&[], budget, true)
            .iter()
            .map(objective)
            .fold(f64::MIN, f64::max);
        random_best.push(best);
    }
    let (t, r) = (median(tpe_best.clone()), median(random_best.clone()));
    eprintln!("median best after {budget}: tpe {t:.3}, random {r:.3}");
    assert!(
        t > r,
        "median best: tpe {t} vs random {r} ({tpe_best:?} / {random_best:?})"
    );
    // The same seed and history give the same suggestion.
    let a = Tpe::new(space.clone(), TpeSettings::default());
    let b = Tpe::new(space, TpeSettings::default());
    assert_eq!(a.suggest(&[], 2, true), b.suggest(&[], 2, true));
}
