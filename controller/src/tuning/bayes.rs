//! The `bayesianoptimization` algorithm (as Katib's scikit-optimize service offers it, with a
//! Gaussian process): after `n_initial_points` random trials, a GP with a Matérn 5/2 kernel is
//! fitted on the unit cube ([`super::cube`]: numbers linear or in log space, discrete lists by
//! rank, categoricals one-hot, one length scale per parameter), the objective standardised.
//! The length scales and the noise are chosen by maximising the log marginal likelihood over a
//! small grid, then per parameter by halving/doubling. The acquisition (`EI`, `PI` or `LCB`)
//! is maximised over random candidates and local refinements of the best of them. Trials
//! pending (and those suggested earlier in the same call) enter the GP with a constant lie,
//! the mean of the observed values, so that parallel suggestions spread.

use super::cube::{features, fresh, groups, is_new, perturb, random};
use super::experiment::Setting;
use super::numeric::{cholesky, norm_cdf, norm_pdf, solve_lower, solve_upper_t};
use super::rng::Rng;
use super::settings;
use super::space::{Assignment, Param, SpaceError};
use super::suggest::{assignments, rng_for, Algorithm, Outcome, Seen};

/// The acquisition function.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Acquisition {
    /// Expected improvement (ξ = 0.01, as scikit-optimize).
    Ei,
    /// Probability of improvement (ξ = 0.01).
    Pi,
    /// Lower confidence bound (κ = 1.96).
    Lcb,
}

/// Settings (Katib's names): `base_estimator` (only `GP`), `n_initial_points` (10),
/// `acq_func` (`EI`), `acq_optimizer` (`auto` or `sampling`), `random_state` (0).
#[derive(Debug, Clone, PartialEq)]
pub struct BayesSettings {
    pub n_initial_points: usize,
    pub acq_func: Acquisition,
    pub seed: u64,
}

impl Default for BayesSettings {
    fn default() -> Self {
        BayesSettings {
            n_initial_points: 10,
            acq_func: Acquisition::Ei,
            seed: 0,
        }
    }
}

const KNOWN: &str = "base_estimator, n_initial_points, acq_func, acq_optimizer, random_state";

/// Checks the settings; errors name the setting's field.
pub fn parse(list: &[Setting]) -> Result<BayesSettings, SpaceError> {
    let mut s = BayesSettings::default();
    for (i, st) in list.iter().enumerate() {
        match st.name.as_str() {
            "base_estimator" => {
                settings::choice(i, st, &["GP"]).map_err(|_| {
                    settings::bad_value(
                        i,
                        format!(
                            "base_estimator {:?} is not supported: only GP (RF, ET, GBRT are not)",
                            st.value
                        ),
                    )
                })?;
            }
            "n_initial_points" => s.n_initial_points = settings::count(i, st, 1)?,
            "acq_func" => {
                s.acq_func = match st.value.trim() {
                    "EI" => Acquisition::Ei,
                    "PI" => Acquisition::Pi,
                    "LCB" => Acquisition::Lcb,
                    "gp_hedge" => {
                        return Err(settings::bad_value(
                            i,
                            "acq_func gp_hedge is not supported: it weighs EI, PI and LCB by \
                             gains kept across every past suggestion, which a stateless \
                             suggestion would refit the GP for at each; use EI, PI or LCB",
                        ))
                    }
                    other => {
                        return Err(settings::bad_value(
                            i,
                            format!("acq_func must be one of EI, PI, LCB, got {other:?}"),
                        ))
                    }
                }
            }
            "acq_optimizer" => {
                settings::choice(i, st, &["auto", "sampling"])?;
            }
            "random_state" => s.seed = settings::int(i, st)?,
            _ => return Err(settings::unknown(i, st, "bayesianoptimization", KNOWN)),
        }
    }
    Ok(s)
}

/// Bayesian optimisation over a checked space.
#[derive(Debug, Clone)]
pub struct Bayes {
    params: Vec<Param>,
    groups: Vec<usize>,
    settings: BayesSettings,
}

/// Kernel hyperparameters: a length scale per parameter, the noise variance (signal variance 1,
/// the outputs being standardised).
#[derive(Debug, Clone, PartialEq)]
struct Hyper {
    scales: Vec<f64>,
    noise: f64,
}

/// The squared distance of two feature vectors per parameter.
fn sq_by_group(a: &[f64], b: &[f64], groups: &[usize], n_groups: usize) -> Vec<f64> {
    let mut d = vec![0.0; n_groups];
    for ((x, y), g) in a.iter().zip(b).zip(groups) {
        if let Some(slot) = d.get_mut(*g) {
            *slot += (x - y) * (x - y);
        }
    }
    d
}

fn matern52(sq: &[f64], scales: &[f64]) -> f64 {
    let r2: f64 = sq.iter().zip(scales).map(|(d, l)| d / (l * l)).sum();
    let r = (5.0 * r2).sqrt();
    (1.0 + r + r * r / 3.0) * (-r).exp()
}

/// A fitted GP: training inputs, factor and weights.
struct Gp<'a> {
    xs: Vec<Vec<f64>>,
    l: Vec<f64>,
    alpha: Vec<f64>,
    hyper: &'a Hyper,
    groups: &'a [usize],
}

impl<'a> Gp<'a> {
    fn new(xs: Vec<Vec<f64>>, ys: &[f64], hyper: &'a Hyper, groups: &'a [usize]) -> Option<Gp<'a>> {
        let n = xs.len();
        let g = hyper.scales.len();
        let mut k = vec![0.0; n * n];
        for i in 0..n {
            for j in 0..=i {
                let v = matern52(&sq_by_group(&xs[i], &xs[j], groups, g), &hyper.scales);
                k[i * n + j] = v;
                k[j * n + i] = v;
            }
            k[i * n + i] += hyper.noise + 1e-8;
        }
        let l = cholesky(&k, n)?;
        let alpha = solve_upper_t(&l, n, &solve_lower(&l, n, ys));
        Some(Gp {
            xs,
            l,
            alpha,
            hyper,
            groups,
        })
    }

    /// Posterior mean and standard deviation at `x`.
    fn predict(&self, x: &[f64]) -> (f64, f64) {
        let n = self.xs.len();
        let g = self.hyper.scales.len();
        let ks: Vec<f64> = self
            .xs
            .iter()
            .map(|xi| matern52(&sq_by_group(x, xi, self.groups, g), &self.hyper.scales))
            .collect();
        let mean: f64 = ks.iter().zip(&self.alpha).map(|(k, a)| k * a).sum();
        let v = solve_lower(&self.l, n, &ks);
        let var = (1.0 - v.iter().map(|x| x * x).sum::<f64>()).max(1e-12);
        (mean, var.sqrt())
    }
}

impl Bayes {
    pub fn new(params: Vec<Param>, settings: BayesSettings) -> Bayes {
        Bayes {
            groups: groups(&params),
            params,
            settings,
        }
    }

    /// Hyperparameters maximising the log marginal likelihood: a shared length scale and noise
    /// over a grid, then each parameter's scale halved or doubled while that helps.
    fn fit(&self, xs: &[Vec<f64>], ys: &[f64]) -> Option<Hyper> {
        let g = self.params.len();
        let n = xs.len();
        // Squared distances per parameter of every pair, computed once for all the trials.
        let mut sq = Vec::with_capacity(n * n);
        for a in xs {
            for b in xs {
                sq.push(sq_by_group(a, b, &self.groups, g));
            }
        }
        let score = |h: &Hyper| {
            let mut k: Vec<f64> = sq.iter().map(|d| matern52(d, &h.scales)).collect();
            for i in 0..n {
                k[i * n + i] += h.noise + 1e-8;
            }
            let l = cholesky(&k, n)?;
            let alpha = solve_upper_t(&l, n, &solve_lower(&l, n, ys));
            let fit: f64 = ys.iter().zip(&alpha).map(|(y, a)| y * a).sum();
            let logdet: f64 = (0..n).map(|i| l[i * n + i].ln()).sum();
            Some(-0.5 * fit - logdet - 0.5 * n as f64 * (2.0 * std::f64::consts::PI).ln())
                .filter(|v| v.is_finite())
        };
        let mut best: Option<(f64, Hyper)> = None;
        for l in [0.05, 0.1, 0.2, 0.35, 0.6, 1.0, 2.0] {
            for noise in [1e-6, 1e-4, 1e-2, 1e-1] {
                let h = Hyper {
                    scales: vec![l; g],
                    noise,
                };
                if let Some(v) = score(&h) {
                    if best.as_ref().is_none_or(|(b, _)| v > *b) {
                        best = Some((v, h));
                    }
                }
            }
        }
        let (mut best_v, mut h) = best?;
        for _ in 0..2 {
            for p in 0..g {
                for f in [0.5, 2.0] {
                    let mut t = h.clone();
                    if let Some(s) = t.scales.get_mut(p) {
                        *s = (*s * f).clamp(0.01, 20.0);
                    }
                    if let Some(v) = score(&t) {
                        if v > best_v {
                            best_v = v;
                            h = t;
                        }
                    }
                }
            }
        }
        Some(h)
    }

    /// The acquisition at `x` (larger is better) for a minimised, standardised objective whose
    /// best observation is `best`.
    fn acquire(&self, gp: &Gp, x: &[f64], best: f64) -> f64 {
        let (mu, sd) = gp.predict(x);
        let xi = 0.01;
        match self.settings.acq_func {
            Acquisition::Ei => {
                let z = (best - mu - xi) / sd;
                (best - mu - xi) * norm_cdf(z) + sd * norm_pdf(z)
            }
            Acquisition::Pi => norm_cdf((best - mu - xi) / sd),
            Acquisition::Lcb => -(mu - 1.96 * sd),
        }
    }

    /// The candidate maximising the acquisition among random draws and local refinements of
    /// the best ones (and of the best observations), not tried, pending or already suggested.
    fn propose(
        &self,
        gp: &Gp,
        best: f64,
        incumbents: &[Assignment],
        rng: &mut Rng,
        seen: &[Assignment],
        out: &[Assignment],
    ) -> Assignment {
        let score = |a: &Assignment| {
            features(&self.params, a)
                .map(|x| self.acquire(gp, &x, best))
                .filter(|v| v.is_finite())
                .unwrap_or(f64::NEG_INFINITY)
        };
        let mut scored: Vec<(f64, Assignment)> = Vec::new();
        for _ in 0..256 {
            let a = random(&self.params, rng);
            scored.push((score(&a), a));
        }
        for inc in incumbents {
            for _ in 0..16 {
                let a = perturb(&self.params, inc, 0.05, rng);
                scored.push((score(&a), a));
            }
        }
        scored.sort_by(|a, b| b.0.total_cmp(&a.0));
        scored.truncate(5);
        let mut refined = Vec::new();
        for (v, a) in scored {
            let (mut bv, mut ba) = (v, a);
            for scale in [0.1, 0.03, 0.01] {
                for _ in 0..12 {
                    let c = perturb(&self.params, &ba, scale, rng);
                    let cv = score(&c);
                    if cv > bv && is_new(&c, seen, out) {
                        bv = cv;
                        ba = c;
                    }
                }
            }
            refined.push((bv, ba));
        }
        refined.sort_by(|a, b| b.0.total_cmp(&a.0));
        refined
            .into_iter()
            .map(|(_, a)| a)
            .find(|a| is_new(a, seen, out))
            .unwrap_or_else(|| fresh(&self.params, rng, seen, out))
    }
}

impl Algorithm for Bayes {
    fn suggest(&self, trials: &[Seen], n: usize, maximize: bool) -> Vec<Assignment> {
        let seen = assignments(trials);
        // Observations as a minimisation, standardised.
        let mut xs = Vec::new();
        let mut raw = Vec::new();
        let mut pending = Vec::new();
        for t in trials {
            match (&t.outcome, features(&self.params, &t.assignment)) {
                (Outcome::Value(v), Some(x)) if v.is_finite() => {
                    xs.push(x);
                    raw.push(if maximize { -v } else { *v });
                }
                (Outcome::Pending, Some(x)) => pending.push(x),
                _ => {}
            }
        }
        let m = raw.iter().sum::<f64>() / raw.len().max(1) as f64;
        let sd =
            (raw.iter().map(|y| (y - m) * (y - m)).sum::<f64>() / raw.len().max(1) as f64).sqrt();
        let sd = if sd > 1e-12 { sd } else { 1.0 };
        let ys: Vec<f64> = raw.iter().map(|y| (y - m) / sd).collect();
        let best = ys.iter().copied().fold(f64::INFINITY, f64::min);
        // The best observations, for local refinement.
        let mut order: Vec<usize> = (0..ys.len()).collect();
        order.sort_by(|a, b| ys[*a].total_cmp(&ys[*b]));
        let values: Vec<&Seen> = trials
            .iter()
            .filter(|t| matches!(t.outcome, Outcome::Value(v) if v.is_finite()))
            .filter(|t| features(&self.params, &t.assignment).is_some())
            .collect();
        let incumbents: Vec<Assignment> = order
            .iter()
            .take(3)
            .filter_map(|i| values.get(*i).map(|t| t.assignment.clone()))
            .collect();
        let model_due = trials.len() + n > self.settings.n_initial_points;
        let hyper = if ys.len() >= 2 && model_due {
            self.fit(&xs, &ys)
        } else {
            None
        };
        let mut out: Vec<Assignment> = Vec::with_capacity(n);
        for i in 0..n {
            let k = trials.len() + i;
            let mut rng = rng_for(self.settings.seed, k);
            let model_based = k >= self.settings.n_initial_points;
            let a = match (&hyper, model_based) {
                (Some(h), true) => {
                    // Pending trials and this call's earlier suggestions lie at the mean (0).
                    let mut all = xs.clone();
                    let mut ally = ys.clone();
                    for x in pending
                        .iter()
                        .cloned()
                        .chain(out.iter().filter_map(|a| features(&self.params, a)))
                    {
                        all.push(x);
                        ally.push(0.0);
                    }
                    match Gp::new(all, &ally, h, &self.groups) {
                        Some(gp) => self.propose(&gp, best, &incumbents, &mut rng, &seen, &out),
                        None => fresh(&self.params, &mut rng, &seen, &out),
                    }
                }
                _ => fresh(&self.params, &mut rng, &seen, &out),
            };
            out.push(a);
        }
        out
    }
}
