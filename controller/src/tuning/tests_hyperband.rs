//! Unit tests of `hyperband`: the brackets' sizes and budgets, promotions of the best, waiting
//! for a rung, the end, settings errors naming the field.

use super::hyperband::{self, Hyperband, HyperbandSettings};
use super::space::{check, Param};
use super::suggest::{Algorithm, Outcome, Seen};
use super::tests::{p, pending};
use super::tests_algos::{drive, mixed_space, setting};

fn space() -> Vec<Param> {
    check(&[
        p("epochs", "int", "1", "27", None, None),
        p("x", "double", "-1", "1", None, None),
    ])
    .expect("valid")
}

fn value(a: &[(String, String)], k: &str) -> f64 {
    a.iter()
        .find(|(n, _)| n == k)
        .and_then(|(_, v)| v.parse().ok())
        .expect(k)
}

fn settings(list: &[(&str, &str)]) -> HyperbandSettings {
    let list: Vec<_> = list.iter().map(|(n, v)| setting(n, v)).collect();
    hyperband::parse(&list, &space()).expect("valid")
}

#[test]
fn hyperband_brackets_have_katib_sizes_and_budgets() {
    let h = Hyperband::new(space(), settings(&[("resource_name", "epochs")]));
    let shape: Vec<Vec<(usize, f64)>> = h
        .brackets()
        .iter()
        .map(|b| b.iter().map(|r| (r.n, r.budget)).collect())
        .collect();
    let want = vec![
        vec![(27, 1.0), (9, 3.0), (3, 9.0), (1, 27.0)],
        vec![(12, 3.0), (4, 9.0), (2, 27.0)],
        vec![(6, 9.0), (2, 27.0)],
        vec![(4, 27.0)],
    ];
    assert_eq!(shape.len(), want.len());
    for (got, want) in shape.iter().zip(&want) {
        assert_eq!(got.len(), want.len());
        for ((n, r), (wn, wr)) in got.iter().zip(want) {
            assert_eq!(n, wn);
            assert!((r - wr).abs() < 1e-9, "{r} vs {wr}");
        }
    }
    // eta 2 and r_l 8: s_max 3, brackets of 8, 6, 4 and 4 configurations.
    let h = Hyperband::new(
        space(),
        settings(&[("resource_name", "epochs"), ("eta", "2"), ("r_l", "8")]),
    );
    let firsts: Vec<(usize, f64)> = h
        .brackets()
        .iter()
        .filter_map(|b| b.first().map(|r| (r.n, r.budget)))
        .collect();
    assert_eq!(firsts, vec![(8, 1.0), (6, 2.0), (4, 4.0), (4, 8.0)]);
}

#[test]
fn hyperband_promotes_the_best_waits_for_rungs_and_ends() {
    for maximize in [true, false] {
        let h = Hyperband::new(space(), settings(&[("resource_name", "epochs")]));
        // Rung 0 of the first bracket: 27 configurations at 1 epoch; then it waits.
        let first = h.suggest(&[], 40, maximize);
        assert_eq!(first.len(), 27);
        assert!(first.iter().all(|a| value(a, "epochs") == 1.0));
        let mut trials = pending(&first);
        assert!(
            h.suggest(&trials, 1, maximize).is_empty(),
            "waits for rung 0"
        );
        // Objective -x² (maximised) or x² (minimised): the best are the smallest |x|; trial 0
        // fails, whatever its x.
        for (i, t) in trials.iter_mut().enumerate() {
            let x = value(&t.assignment, "x");
            t.outcome = if i == 0 {
                Outcome::Failed
            } else if maximize {
                Outcome::Value(-x * x)
            } else {
                Outcome::Value(x * x)
            };
        }
        let mut by_x: Vec<f64> = first.iter().skip(1).map(|a| value(a, "x").abs()).collect();
        by_x.sort_by(f64::total_cmp);
        let promoted = h.suggest(&trials, 40, maximize);
        assert_eq!(promoted.len(), 9, "rung 1 keeps 27/3");
        for (a, want) in promoted.iter().zip(&by_x) {
            assert_eq!(value(a, "epochs"), 3.0);
            assert_eq!(
                value(a, "x").abs(),
                *want,
                "promotions in order of the objective"
            );
        }
        // Promoted ones partly pending: rung 2 waits; the next bracket does not start early.
        trials.extend(pending(&promoted));
        assert!(h.suggest(&trials, 3, maximize).is_empty());
        // Run everything to the end: 27+9+3+1 + 12+4+2 + 6+2 + 4 = 70 trials.
        let mut all: Vec<Seen> = Vec::new();
        loop {
            let got = h.suggest(&all, 5, maximize);
            if got.is_empty() {
                break;
            }
            for a in got {
                let x = value(&a, "x");
                all.push(Seen {
                    assignment: a,
                    outcome: Outcome::Value(if maximize { -x * x } else { x * x }),
                });
            }
        }
        assert_eq!(all.len(), 70);
        assert_eq!(value(&all[39].assignment, "epochs"), 27.0);
        assert_eq!(
            value(&all[40].assignment, "epochs"),
            3.0,
            "bracket 2 starts at 3"
        );
        assert_eq!(value(&all[69].assignment, "epochs"), 27.0);
        // The single survivor of bracket 1 is its best configuration.
        let best_x = all[..27]
            .iter()
            .map(|t| value(&t.assignment, "x").abs())
            .fold(f64::MAX, f64::min);
        assert_eq!(value(&all[39].assignment, "x").abs(), best_x);
    }
}

#[test]
fn hyperband_emits_valid_new_values_and_repeats_per_seed() {
    let make = |seed: &str| {
        let list = [setting("resource_name", "n"), setting("random_state", seed)];
        Hyperband::new(
            mixed_space(),
            hyperband::parse(&list, &mixed_space()).expect("valid"),
        )
    };
    let a = drive(&make("1"), 12, 3);
    assert_eq!(a.len(), 23, "s_max 2 over n in [2, 20]: 9+3+1 + 5+2 + 3");
    assert_eq!(a, drive(&make("1"), 12, 3));
    assert_ne!(a, drive(&make("2"), 12, 3));
}

#[test]
fn hyperband_settings_errors_name_the_field() {
    let cases: [(&[(&str, &str)], &str); 6] = [
        (&[("eta", "3")], "spec.algorithm.algorithmSettings: hyperband needs resource_name"),
        (
            &[("eta", "3"), ("resource_name", "steps")],
            "spec.algorithm.algorithmSettings[1].value: resource_name \"steps\" is not a parameter",
        ),
        (
            &[("resource_name", "opt")],
            "spec.algorithm.algorithmSettings[0].value: resource_name \"opt\" must be an int or double",
        ),
        (
            &[("resource_name", "epochs"), ("eta", "1")],
            "spec.algorithm.algorithmSettings[1].value: eta must be a number above 1",
        ),
        (
            &[("resource_name", "epochs"), ("r_l", "-3")],
            "spec.algorithm.algorithmSettings[1].value: r_l must be a positive number",
        ),
        (
            &[("resource_name", "epochs"), ("min_resource", "1")],
            "spec.algorithm.algorithmSettings[1].name: unknown setting \"min_resource\"",
        ),
    ];
    let mut with_opt = space();
    with_opt
        .extend(check(&[super::tests::list("opt", "categorical", &["a", "b"])]).expect("valid"));
    for (list, want) in cases {
        let list: Vec<_> = list.iter().map(|(n, v)| setting(n, v)).collect();
        let e = hyperband::parse(&list, &with_opt)
            .expect_err(want)
            .to_string();
        assert!(e.starts_with(want), "{e} (want {want})");
    }
}
