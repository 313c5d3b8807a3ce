//! The `multivariate-tpe` algorithm (optuna's TPE with `multivariate=True`, as Katib offers
//! it): after `n_startup_trials` random trials, the finished ones are split into the best
//! `gamma` share and the rest, and each side becomes one joint Parzen density over all
//! parameters: a mixture with one component per observation (plus a prior one), each a product
//! of per-parameter kernels: a normal truncated to [0, 1] on the unit cube ([`super::cube`]:
//! log parameters in log space, discrete lists by rank) with Scott-like bandwidth
//! `0.2 · n^(-1/(d+4))`, and for a categorical half the mass on the observed value, half spread
//! evenly. Of `n_ei_candidates` joint draws from the good density, the one maximising
//! good/bad that is not tried, pending or already suggested is suggested. Settings and their
//! defaults as `tpe` ([`super::tpe::TpeSettings`]).

use super::cube::{fresh, is_categorical, is_new, unit_of, value_at, value_of};
use super::numeric::norm_cdf;
use super::rng::Rng;
use super::space::{Assignment, Domain, Param};
use super::suggest::{assignments, history, rng_for, Algorithm, Seen};
use super::tpe::TpeSettings;

/// Multivariate TPE over a checked space.
#[derive(Debug, Clone)]
pub struct MultivariateTpe {
    params: Vec<Param>,
    settings: TpeSettings,
}

/// One coordinate of a point: a unit-cube position, or a categorical's value index.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Coord {
    Unit(f64),
    Choice(usize),
}

/// A component's kernel centre per parameter (None: the prior, flat for choices, centred and
/// wide for numbers).
type Centre = Vec<Option<Coord>>;

/// A joint Parzen density.
struct Density {
    comps: Vec<Centre>,
    /// The numeric bandwidth (the prior component uses 1).
    sigma: f64,
    /// The number of values of each parameter (0 for numeric ones).
    choices: Vec<usize>,
}

fn trunc_log_pdf(x: f64, mu: f64, sigma: f64) -> f64 {
    let z = (x - mu) / sigma;
    let mass = (norm_cdf((1.0 - mu) / sigma) - norm_cdf(-mu / sigma)).max(1e-12);
    -0.5 * z * z - sigma.ln() - 0.5 * (2.0 * std::f64::consts::PI).ln() - mass.ln()
}

impl Density {
    fn fit(points: &[Vec<Coord>], choices: Vec<usize>) -> Density {
        let d = choices.iter().filter(|c| **c == 0).count().max(1) as f64;
        let n = points.len().max(1) as f64;
        let sigma = (0.2 * n.powf(-1.0 / (d + 4.0))).max(0.02);
        let mut comps: Vec<Centre> = points
            .iter()
            .map(|p| p.iter().map(|c| Some(*c)).collect())
            .collect();
        comps.push(vec![None; choices.len()]);
        Density {
            comps,
            sigma,
            choices,
        }
    }

    fn comp_log_pdf(&self, centre: &Centre, x: &[Coord]) -> f64 {
        let mut s = 0.0;
        for ((c, xi), k) in centre.iter().zip(x).zip(&self.choices) {
            s += match (c, xi) {
                (Some(Coord::Unit(mu)), Coord::Unit(v)) => trunc_log_pdf(*v, *mu, self.sigma),
                (None, Coord::Unit(v)) => trunc_log_pdf(*v, 0.5, 1.0),
                (Some(Coord::Choice(j)), Coord::Choice(i)) => {
                    let flat = 0.5 / (*k).max(1) as f64;
                    (if i == j { 0.5 + flat } else { flat }).ln()
                }
                (None, Coord::Choice(_)) => (1.0 / (*k).max(1) as f64).ln(),
                _ => 0.0,
            };
        }
        s
    }

    fn log_pdf(&self, x: &[Coord]) -> f64 {
        let logs: Vec<f64> = self.comps.iter().map(|c| self.comp_log_pdf(c, x)).collect();
        let top = logs.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        if !top.is_finite() {
            return top;
        }
        let sum: f64 = logs.iter().map(|l| (l - top).exp()).sum();
        top + (sum / logs.len() as f64).ln()
    }

    fn sample(&self, rng: &mut Rng) -> Vec<Coord> {
        let comp = self.comps.get(rng.below(self.comps.len()));
        self.choices
            .iter()
            .enumerate()
            .map(|(i, k)| {
                let centre = comp.and_then(|c| c.get(i)).copied().flatten();
                if *k > 0 {
                    return match centre {
                        Some(Coord::Choice(j)) if rng.unit() < 0.5 => Coord::Choice(j),
                        _ => Coord::Choice(rng.below(*k)),
                    };
                }
                let (mu, sigma) = match centre {
                    Some(Coord::Unit(mu)) => (mu, self.sigma),
                    _ => (0.5, 1.0),
                };
                for _ in 0..32 {
                    let x = mu + sigma * rng.normal();
                    if (0.0..=1.0).contains(&x) {
                        return Coord::Unit(x);
                    }
                }
                Coord::Unit(mu.clamp(0.0, 1.0))
            })
            .collect()
    }
}

impl MultivariateTpe {
    pub fn new(params: Vec<Param>, settings: TpeSettings) -> MultivariateTpe {
        MultivariateTpe { params, settings }
    }

    fn choices(&self) -> Vec<usize> {
        self.params
            .iter()
            .map(|p| match &p.domain {
                Domain::List(v) if is_categorical(p) => v.len(),
                _ => 0,
            })
            .collect()
    }

    fn coords(&self, a: &Assignment) -> Option<Vec<Coord>> {
        self.params
            .iter()
            .map(|p| {
                let v = value_of(a, &p.name)?;
                match &p.domain {
                    Domain::List(values) if is_categorical(p) => {
                        values.iter().position(|s| s == v).map(Coord::Choice)
                    }
                    _ => unit_of(p, v).map(Coord::Unit),
                }
            })
            .collect()
    }

    fn assignment(&self, x: &[Coord]) -> Assignment {
        self.params
            .iter()
            .zip(x)
            .map(|(p, c)| {
                let v = match (c, &p.domain) {
                    (Coord::Choice(i), Domain::List(values)) => {
                        values.get(*i).cloned().unwrap_or_default()
                    }
                    (Coord::Unit(u), _) => value_at(p, *u),
                    _ => value_at(p, 0.5),
                };
                (p.name.clone(), v)
            })
            .collect()
    }
}

impl Algorithm for MultivariateTpe {
    fn suggest(&self, trials: &[Seen], n: usize, maximize: bool) -> Vec<Assignment> {
        let seen = assignments(trials);
        let mut h: Vec<(Vec<Coord>, f64)> = history(trials)
            .iter()
            .filter_map(|(a, v)| Some((self.coords(a)?, *v)))
            .collect();
        h.sort_by(|a, b| {
            if maximize {
                b.1.total_cmp(&a.1)
            } else {
                a.1.total_cmp(&b.1)
            }
        });
        let n_good =
            ((self.settings.gamma * h.len() as f64).ceil() as usize).clamp(1, h.len().max(1));
        let (good, bad) = h.split_at(n_good.min(h.len()));
        let pts =
            |side: &[(Vec<Coord>, f64)]| side.iter().map(|(x, _)| x.clone()).collect::<Vec<_>>();
        let lg = Density::fit(&pts(good), self.choices());
        let lb = Density::fit(&pts(bad), self.choices());
        let mut out: Vec<Assignment> = Vec::with_capacity(n);
        for i in 0..n {
            let mut rng = rng_for(self.settings.seed, trials.len() + i);
            if h.len() < self.settings.n_startup_trials.max(1) {
                let a = fresh(&self.params, &mut rng, &seen, &out);
                out.push(a);
                continue;
            }
            let mut cands: Vec<(f64, Assignment)> = (0..self.settings.n_ei_candidates.max(1))
                .map(|_| {
                    let x = lg.sample(&mut rng);
                    (lg.log_pdf(&x) - lb.log_pdf(&x), self.assignment(&x))
                })
                .collect();
            cands.sort_by(|a, b| b.0.total_cmp(&a.0));
            let a = cands
                .into_iter()
                .map(|(_, a)| a)
                .find(|a| is_new(a, &seen, &out))
                .unwrap_or_else(|| fresh(&self.params, &mut rng, &seen, &out));
            out.push(a);
        }
        out
    }
}
