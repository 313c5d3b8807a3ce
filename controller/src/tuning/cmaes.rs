//! The `cmaes` algorithm (CMA-ES, Hansen's standard updates, as optuna's sampler behind Katib
//! runs it): a normal search distribution over the numeric parameters on the unit cube
//! ([`super::cube`]: log parameters in log space, discrete lists by rank), starting at the
//! centre with step `sigma`; a generation is λ = 4 + ⌊3 ln n⌋ trials, and after each the mean,
//! step and covariance move towards its best half. Samples are clipped into the cube and
//! snapped onto the domains; the update uses the values actually tried. Categorical parameters
//! are not modelled: each trial draws them at random.
//!
//! Stateless: generation g is trials g·λ..(g+1)·λ in creation order; each call replays the
//! updates from the start (failed trials rank last), and the k-th trial's sample comes from
//! `rng_for(seed, k)`. Nothing is suggested past the current generation while it has pending
//! trials. `restart_strategy: ipop` restarts from a random mean with twice the population when
//! the search has converged (step below 1e-6, condition number above 1e14, or a generation
//! whose values are all equal).

use super::cube::{fresh, is_categorical, is_new, unit_of, value_at, value_of};
use super::experiment::Setting;
use super::numeric::sym_eigen;
use super::rng::Rng;
use super::settings;
use super::space::{Assignment, Param, SpaceError};
use super::suggest::{assignments, rng_for, Algorithm, Outcome, Seen};

/// What happens when the search converges.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Restart {
    /// Keep going.
    None,
    /// Restart with twice the population (IPOP-CMA-ES).
    Ipop,
}

/// Settings (Katib's names): `random_state` (0), `sigma` (1/6 of the unit cube),
/// `restart_strategy` (`none`, or `ipop`).
#[derive(Debug, Clone, PartialEq)]
pub struct CmaesSettings {
    pub seed: u64,
    pub sigma: f64,
    pub restart: Restart,
}

impl Default for CmaesSettings {
    fn default() -> Self {
        CmaesSettings {
            seed: 0,
            sigma: 1.0 / 6.0,
            restart: Restart::None,
        }
    }
}

/// Checks the settings; errors name the setting's field.
pub fn parse(list: &[Setting]) -> Result<CmaesSettings, SpaceError> {
    let mut s = CmaesSettings::default();
    for (i, st) in list.iter().enumerate() {
        match st.name.as_str() {
            "random_state" => s.seed = settings::int(i, st)?,
            "sigma" => {
                s.sigma = settings::number(
                    i,
                    st,
                    |x| x > 0.0 && x <= 1.0,
                    "in (0, 1] (a step on the unit cube)",
                )?
            }
            "restart_strategy" => {
                s.restart = match st.value.trim() {
                    "" | "none" => Restart::None,
                    "ipop" => Restart::Ipop,
                    "bipop" => {
                        return Err(settings::bad_value(
                            i,
                            "restart_strategy bipop is not supported yet: use none or ipop",
                        ))
                    }
                    other => {
                        return Err(settings::bad_value(
                            i,
                            format!("restart_strategy must be none or ipop, got {other:?}"),
                        ))
                    }
                }
            }
            _ => {
                return Err(settings::unknown(
                    i,
                    st,
                    "cmaes",
                    "random_state, sigma, restart_strategy",
                ))
            }
        }
    }
    Ok(s)
}

/// The search distribution and its evolution paths.
#[derive(Debug, Clone)]
struct State {
    n: usize,
    weights: Vec<f64>,
    mueff: f64,
    cc: f64,
    cs: f64,
    c1: f64,
    cmu: f64,
    damps: f64,
    chi_n: f64,
    mean: Vec<f64>,
    sigma: f64,
    /// Covariance, row-major.
    c: Vec<f64>,
    pc: Vec<f64>,
    ps: Vec<f64>,
    /// Eigenvectors of `c` (columns) and the square roots of its eigenvalues.
    b: Vec<f64>,
    d: Vec<f64>,
    generation: usize,
}

impl State {
    fn new(n: usize, lambda: usize, mean: Vec<f64>, sigma: f64) -> State {
        let mu = (lambda / 2).max(1);
        let raw: Vec<f64> = (1..=mu)
            .map(|i| ((lambda as f64 + 1.0) / 2.0).ln() - (i as f64).ln())
            .collect();
        let sum: f64 = raw.iter().sum();
        let weights: Vec<f64> = raw.iter().map(|w| w / sum).collect();
        let mueff = 1.0 / weights.iter().map(|w| w * w).sum::<f64>();
        let nf = n as f64;
        let c1 = 2.0 / ((nf + 1.3).powi(2) + mueff);
        let mut c = vec![0.0; n * n];
        for i in 0..n {
            c[i * n + i] = 1.0;
        }
        let cs = (mueff + 2.0) / (nf + mueff + 5.0);
        State {
            n,
            mueff,
            cc: (4.0 + mueff / nf) / (nf + 4.0 + 2.0 * mueff / nf),
            cs,
            c1,
            cmu: (1.0 - c1).min(2.0 * (mueff - 2.0 + 1.0 / mueff) / ((nf + 2.0).powi(2) + mueff)),
            damps: 1.0 + 2.0 * (((mueff - 1.0) / (nf + 1.0)).sqrt() - 1.0).max(0.0) + cs,
            chi_n: nf.sqrt() * (1.0 - 1.0 / (4.0 * nf) + 1.0 / (21.0 * nf * nf)),
            weights,
            mean,
            sigma,
            b: c.clone(),
            c,
            pc: vec![0.0; n],
            ps: vec![0.0; n],
            d: vec![1.0; n],
            generation: 0,
        }
    }

    /// One update from a generation's points, best first.
    fn update(&mut self, xs: &[Vec<f64>]) {
        let n = self.n;
        let k = xs.len().min(self.weights.len());
        if k == 0 {
            return;
        }
        let wsum: f64 = self.weights.iter().take(k).sum();
        let w: Vec<f64> = self.weights.iter().take(k).map(|x| x / wsum).collect();
        let old = self.mean.clone();
        let mut mean = vec![0.0; n];
        for (wi, x) in w.iter().zip(xs) {
            for (m, xi) in mean.iter_mut().zip(x) {
                *m += wi * xi;
            }
        }
        let yw: Vec<f64> = mean
            .iter()
            .zip(&old)
            .map(|(m, o)| (m - o) / self.sigma)
            .collect();
        // C^(-1/2) yw = B D^-1 Bᵀ yw.
        let bty: Vec<f64> = (0..n)
            .map(|j| (0..n).map(|i| self.b[i * n + j] * yw[i]).sum::<f64>() / self.d[j])
            .collect();
        let cinv_y: Vec<f64> = (0..n)
            .map(|i| (0..n).map(|j| self.b[i * n + j] * bty[j]).sum())
            .collect();
        let a = (self.cs * (2.0 - self.cs) * self.mueff).sqrt();
        for (p, z) in self.ps.iter_mut().zip(&cinv_y) {
            *p = (1.0 - self.cs) * *p + a * z;
        }
        self.generation += 1;
        let ps_norm = self.ps.iter().map(|x| x * x).sum::<f64>().sqrt();
        let denom = (1.0 - (1.0 - self.cs).powi(2 * self.generation as i32))
            .sqrt()
            .max(1e-12);
        let hsig = ps_norm / denom / self.chi_n < 1.4 + 2.0 / (n as f64 + 1.0);
        let hs = if hsig { 1.0 } else { 0.0 };
        let ac = (self.cc * (2.0 - self.cc) * self.mueff).sqrt();
        for (p, y) in self.pc.iter_mut().zip(&yw) {
            *p = (1.0 - self.cc) * *p + hs * ac * y;
        }
        let ys: Vec<Vec<f64>> = xs
            .iter()
            .take(k)
            .map(|x| {
                x.iter()
                    .zip(&old)
                    .map(|(xi, o)| (xi - o) / self.sigma)
                    .collect()
            })
            .collect();
        let keep = 1.0 - self.c1 - self.cmu + (1.0 - hs) * self.c1 * self.cc * (2.0 - self.cc);
        for i in 0..n {
            for j in 0..n {
                let rank_mu: f64 = w.iter().zip(&ys).map(|(wi, y)| wi * y[i] * y[j]).sum();
                self.c[i * n + j] = keep * self.c[i * n + j]
                    + self.c1 * self.pc[i] * self.pc[j]
                    + self.cmu * rank_mu;
            }
        }
        for i in 0..n {
            for j in 0..i {
                let s = 0.5 * (self.c[i * n + j] + self.c[j * n + i]);
                self.c[i * n + j] = s;
                self.c[j * n + i] = s;
            }
        }
        self.sigma = (self.sigma * ((self.cs / self.damps) * (ps_norm / self.chi_n - 1.0)).exp())
            .clamp(1e-12, 2.0);
        let (vals, vecs) = sym_eigen(&self.c, n);
        self.d = vals.iter().map(|v| v.max(1e-20).sqrt()).collect();
        self.b = vecs;
        self.mean = mean;
    }

    /// A draw from the distribution (not clipped).
    fn sample(&self, rng: &mut Rng) -> Vec<f64> {
        let n = self.n;
        let z: Vec<f64> = (0..n).map(|j| self.d[j] * rng.normal()).collect();
        (0..n)
            .map(|i| {
                self.mean[i] + self.sigma * (0..n).map(|j| self.b[i * n + j] * z[j]).sum::<f64>()
            })
            .collect()
    }

    /// Whether the search has converged (for a restart).
    fn converged(&self) -> bool {
        let dmax = self.d.iter().copied().fold(0.0, f64::max);
        let dmin = self.d.iter().copied().fold(f64::INFINITY, f64::min);
        self.sigma * dmax < 1e-6 || dmax / dmin.max(1e-300) > 1e7
    }
}

/// CMA-ES over a checked space.
#[derive(Debug, Clone)]
pub struct Cmaes {
    params: Vec<Param>,
    settings: CmaesSettings,
    /// The modelled (not categorical) parameters.
    axes: Vec<usize>,
}

impl Cmaes {
    pub fn new(params: Vec<Param>, settings: CmaesSettings) -> Cmaes {
        let axes = params
            .iter()
            .enumerate()
            .filter(|(_, p)| !is_categorical(p))
            .map(|(i, _)| i)
            .collect();
        Cmaes {
            params,
            settings,
            axes,
        }
    }

    /// The first generation's population.
    pub fn lambda(&self) -> usize {
        4 + (3.0 * (self.axes.len().max(1) as f64).ln()).floor() as usize
    }

    fn coords(&self, a: &Assignment) -> Option<Vec<f64>> {
        self.axes
            .iter()
            .map(|i| {
                let p = self.params.get(*i)?;
                unit_of(p, value_of(a, &p.name)?)
            })
            .collect()
    }

    /// The state after the finished generations, the index of the current generation's first
    /// trial and its population; None while a finished-size generation has pending trials.
    fn replay(&self, trials: &[Seen], maximize: bool) -> Option<(State, usize, usize)> {
        let n = self.axes.len();
        let sigma = self.settings.sigma;
        let mut lambda = self.lambda();
        let mut state = State::new(n, lambda, vec![0.5; n], sigma);
        let mut pos = 0;
        let mut restarts: u64 = 0;
        while let Some(gen) = trials.get(pos..pos + lambda) {
            if gen.iter().any(|t| t.outcome == Outcome::Pending) {
                return None;
            }
            let mut ranked: Vec<(f64, Vec<f64>)> = gen
                .iter()
                .filter_map(|t| {
                    let key = match t.outcome {
                        Outcome::Value(v) if v.is_finite() => {
                            if maximize {
                                -v
                            } else {
                                v
                            }
                        }
                        _ => f64::INFINITY,
                    };
                    Some((key, self.coords(&t.assignment)?))
                })
                .collect();
            ranked.sort_by(|a, b| a.0.total_cmp(&b.0));
            let finite: Vec<f64> = ranked
                .iter()
                .map(|r| r.0)
                .filter(|v| v.is_finite())
                .collect();
            let flat = finite.len() == ranked.len()
                && finite.len() > 1
                && finite.iter().copied().fold(f64::MIN, f64::max)
                    - finite.iter().copied().fold(f64::MAX, f64::min)
                    < 1e-12;
            let xs: Vec<Vec<f64>> = ranked.into_iter().map(|r| r.1).collect();
            state.update(&xs);
            pos += lambda;
            if self.settings.restart == Restart::Ipop && (flat || state.converged()) {
                restarts += 1;
                lambda = (lambda * 2).min(4096);
                let mut rng =
                    Rng::new(self.settings.seed ^ restarts.wrapping_mul(0x9e37_79b9_7f4a_7c15));
                let mean = (0..n).map(|_| rng.unit()).collect();
                state = State::new(n, lambda, mean, sigma);
            }
        }
        Some((state, pos, lambda))
    }

    fn draw(&self, state: &State, rng: &mut Rng) -> Assignment {
        let x = state.sample(rng);
        self.params
            .iter()
            .enumerate()
            .map(|(i, p)| {
                let v = match self.axes.iter().position(|a| *a == i) {
                    Some(j) => value_at(p, x.get(j).copied().unwrap_or(0.5)),
                    None => p.sample(rng),
                };
                (p.name.clone(), v)
            })
            .collect()
    }
}

impl Algorithm for Cmaes {
    fn suggest(&self, trials: &[Seen], n: usize, maximize: bool) -> Vec<Assignment> {
        let seen = assignments(trials);
        let mut out: Vec<Assignment> = Vec::with_capacity(n);
        if self.axes.is_empty() {
            for i in 0..n {
                let mut rng = rng_for(self.settings.seed, trials.len() + i);
                let a = fresh(&self.params, &mut rng, &seen, &out);
                out.push(a);
            }
            return out;
        }
        let Some((state, pos, lambda)) = self.replay(trials, maximize) else {
            return out;
        };
        for i in 0..n {
            let k = trials.len() + i;
            if k >= pos + lambda {
                break;
            }
            let mut rng = rng_for(self.settings.seed, k);
            let mut a = self.draw(&state, &mut rng);
            for _ in 0..64 {
                if is_new(&a, &seen, &out) {
                    break;
                }
                a = self.draw(&state, &mut rng);
            }
            if !is_new(&a, &seen, &out) {
                a = fresh(&self.params, &mut rng, &seen, &out);
            }
            out.push(a);
        }
        out
    }
}
