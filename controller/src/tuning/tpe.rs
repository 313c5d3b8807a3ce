//! The `tpe` algorithm (Tree-structured Parzen Estimator, univariate, as hyperopt and optuna
//! describe it): after `n_startup_trials` random ones, the finished trials are split into the
//! best `gamma` share and the rest; per parameter a Parzen density is fitted to each side
//! (Gaussian kernels in the parameter's own or log space, smoothed counts for lists), and of
//! `n_ei_candidates` draws from the good density the one maximising good/bad is suggested.
//! Seeded: the same history and seed give the same suggestions.

use super::experiment::Setting;
use super::rng::Rng;
use super::settings;
use super::space::{format_double, Assignment, Distribution, Domain, Param, SpaceError};
use super::suggest::{history, rng_for, Algorithm, Seen};

/// TPE settings (Katib's names).
#[derive(Debug, Clone, PartialEq)]
pub struct TpeSettings {
    pub n_startup_trials: usize,
    pub n_ei_candidates: usize,
    pub gamma: f64,
    pub seed: u64,
}

impl Default for TpeSettings {
    fn default() -> Self {
        TpeSettings {
            n_startup_trials: 5,
            n_ei_candidates: 24,
            gamma: 0.25,
            seed: 0,
        }
    }
}

/// Checks the settings of `tpe` or `multivariate-tpe` (`algorithm`): `random_state`,
/// `n_startup_trials`, `n_EI_candidates` (or `n_ei_candidates`), `gamma`; errors name the field.
pub fn parse(list: &[Setting], algorithm: &str) -> Result<TpeSettings, SpaceError> {
    let mut t = TpeSettings::default();
    for (i, st) in list.iter().enumerate() {
        match st.name.as_str() {
            "random_state" => t.seed = settings::int(i, st)?,
            "n_startup_trials" => t.n_startup_trials = settings::count(i, st, 0)?,
            "n_EI_candidates" | "n_ei_candidates" => {
                t.n_ei_candidates = settings::count(i, st, 0)?.max(1)
            }
            "gamma" => t.gamma = settings::number(i, st, |g| g > 0.0 && g < 1.0, "in (0, 1)")?,
            _ => {
                return Err(settings::unknown(
                    i,
                    st,
                    algorithm,
                    "random_state, n_startup_trials, n_EI_candidates, gamma",
                ))
            }
        }
    }
    Ok(t)
}

/// TPE over a checked space.
#[derive(Debug, Clone)]
pub struct Tpe {
    params: Vec<Param>,
    settings: TpeSettings,
}

/// A numeric domain as TPE models it: bounds in model space, log or not, a grid step.
struct Numeric {
    lo: f64,
    hi: f64,
    log: bool,
    step: Option<f64>,
    int: bool,
}

fn numeric(d: &Domain) -> Option<Numeric> {
    // Integers get half a step of room each side, so that their end values are as likely.
    let (min, max, step, dist, int) = match d {
        Domain::Int {
            min,
            max,
            step,
            dist,
        } => (*min as f64, *max as f64, Some(*step as f64), *dist, true),
        Domain::Double {
            min,
            max,
            step,
            dist,
        } => (*min, *max, *step, *dist, false),
        Domain::List(_) => return None,
    };
    let log = matches!(dist, Distribution::LogUniform | Distribution::LogNormal);
    let pad = if int && !log { 0.5 } else { 0.0 };
    Some(Numeric {
        lo: if log { min.ln() } else { min - pad },
        hi: if log { max.ln() } else { max + pad },
        log,
        step,
        int,
    })
}

/// A Parzen density: kernels at the points (plus a prior at the middle), bandwidths from the
/// neighbours' distances, clipped to the range.
struct Parzen {
    mus: Vec<f64>,
    sigmas: Vec<f64>,
}

impl Parzen {
    fn fit(points: &[f64], lo: f64, hi: f64) -> Parzen {
        let range = (hi - lo).max(f64::MIN_POSITIVE);
        let mut mus: Vec<f64> = points.to_vec();
        mus.push((lo + hi) / 2.0);
        mus.sort_by(f64::total_cmp);
        let n = mus.len();
        let sigmas = (0..n)
            .map(|i| {
                let left = if i == 0 {
                    mus[i] - lo
                } else {
                    mus[i] - mus[i - 1]
                };
                let right = if i + 1 == n {
                    hi - mus[i]
                } else {
                    mus[i + 1] - mus[i]
                };
                left.max(right)
                    .clamp(range / (1.0 + n as f64).min(100.0), range)
            })
            .collect();
        Parzen { mus, sigmas }
    }

    fn sample(&self, rng: &mut Rng, lo: f64, hi: f64) -> f64 {
        let k = rng.below(self.mus.len());
        let (mu, sigma) = (self.mus[k], self.sigmas[k]);
        for _ in 0..32 {
            let x = mu + sigma * rng.normal();
            if (lo..=hi).contains(&x) {
                return x;
            }
        }
        mu.clamp(lo, hi)
    }

    fn log_pdf(&self, x: f64) -> f64 {
        let w = 1.0 / self.mus.len() as f64;
        let p: f64 = self
            .mus
            .iter()
            .zip(&self.sigmas)
            .map(|(mu, s)| {
                let z = (x - mu) / s;
                w * (-0.5 * z * z).exp() / (s * (2.0 * std::f64::consts::PI).sqrt())
            })
            .sum();
        p.max(f64::MIN_POSITIVE).ln()
    }
}

impl Tpe {
    pub fn new(params: Vec<Param>, settings: TpeSettings) -> Tpe {
        Tpe { params, settings }
    }

    /// One suggestion from `history` (finished trials with their objective, larger is better
    /// when `maximize`); random while there are fewer than `n_startup_trials`.
    /// `rng` is the `k`-th trial's generator.
    pub fn suggest_with(
        &self,
        history: &[(Assignment, f64)],
        maximize: bool,
        rng: &mut Rng,
    ) -> Assignment {
        if history.len() < self.settings.n_startup_trials {
            return self
                .params
                .iter()
                .map(|p| (p.name.clone(), p.sample(rng)))
                .collect();
        }
        let mut sorted: Vec<&(Assignment, f64)> = history.iter().collect();
        sorted.sort_by(|a, b| {
            if maximize {
                b.1.total_cmp(&a.1)
            } else {
                a.1.total_cmp(&b.1)
            }
        });
        let n_good =
            ((self.settings.gamma * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
        let (good, bad) = sorted.split_at(n_good);
        self.params
            .iter()
            .map(|p| {
                let value_of =
                    |a: &Assignment| a.iter().find(|(n, _)| *n == p.name).map(|(_, v)| v.clone());
                let good_v: Vec<String> = good.iter().filter_map(|h| value_of(&h.0)).collect();
                let bad_v: Vec<String> = bad.iter().filter_map(|h| value_of(&h.0)).collect();
                (p.name.clone(), self.suggest_one(p, &good_v, &bad_v, rng))
            })
            .collect()
    }

    fn suggest_one(&self, p: &Param, good: &[String], bad: &[String], rng: &mut Rng) -> String {
        match (&p.domain, numeric(&p.domain)) {
            (_, Some(n)) => {
                let to_model = |v: &String| {
                    v.parse::<f64>().ok().map(|x| {
                        if n.log {
                            x.max(f64::MIN_POSITIVE).ln()
                        } else {
                            x
                        }
                    })
                };
                let g: Vec<f64> = good.iter().filter_map(to_model).collect();
                let b: Vec<f64> = bad.iter().filter_map(to_model).collect();
                let lg = Parzen::fit(&g, n.lo, n.hi);
                let lb = Parzen::fit(&b, n.lo, n.hi);
                let mut best = (f64::NEG_INFINITY, (n.lo + n.hi) / 2.0);
                for _ in 0..self.settings.n_ei_candidates.max(1) {
                    let x = lg.sample(rng, n.lo, n.hi);
                    let score = lg.log_pdf(x) - lb.log_pdf(x);
                    if score > best.0 {
                        best = (score, x);
                    }
                }
                let x = if n.log { best.1.exp() } else { best.1 };
                render(&p.domain, x, &n)
            }
            (Domain::List(values), None) => {
                let weight = |side: &[String], v: &String| {
                    (side.iter().filter(|s| *s == v).count() as f64 + 1.0)
                        / (side.len() as f64 + values.len() as f64)
                };
                let mut best = (f64::NEG_INFINITY, String::new());
                for _ in 0..self.settings.n_ei_candidates.max(1) {
                    // Draw from the good side's smoothed counts.
                    let total: f64 = values.iter().map(|v| weight(good, v)).sum();
                    let mut r = rng.unit() * total;
                    let mut pick = values.first().cloned().unwrap_or_default();
                    for v in values {
                        r -= weight(good, v);
                        if r <= 0.0 {
                            pick = v.clone();
                            break;
                        }
                    }
                    let score = weight(good, &pick).ln() - weight(bad, &pick).ln();
                    if score > best.0 {
                        best = (score, pick);
                    }
                }
                best.1
            }
            _ => p.sample(rng),
        }
    }
}

impl Algorithm for Tpe {
    fn suggest(&self, trials: &[Seen], n: usize, maximize: bool) -> Vec<Assignment> {
        let h = history(trials);
        (0..n)
            .map(|i| {
                self.suggest_with(
                    &h,
                    maximize,
                    &mut rng_for(self.settings.seed, trials.len() + i),
                )
            })
            .collect()
    }
}

/// A model-space value back as the parameter's text, on its grid and inside its bounds.
fn render(domain: &Domain, x: f64, n: &Numeric) -> String {
    match domain {
        Domain::Int { min, max, step, .. } => {
            let k = ((x - *min as f64) / *step as f64).round() as i64;
            let steps = (max - min) / step;
            (min + k.clamp(0, steps) * step).to_string()
        }
        Domain::Double { min, max, .. } => {
            let v = match n.step {
                Some(s) if !n.int => min + ((x - min) / s).round() * s,
                _ => x,
            };
            format_double(format!("{:.12e}", v.clamp(*min, *max)).parse().unwrap_or(v))
        }
        Domain::List(_) => String::new(),
    }
}
