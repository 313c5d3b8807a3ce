//! The `hyperband` algorithm (Li et al., as Katib's service sets it): one parameter is the
//! budget (`resource_name`, an int or double such as epochs). With `eta` and the largest budget
//! `r_l`, brackets s = s_max..0 (s_max = ⌊log_eta(r_l / r_min)⌋, r_min the parameter's min
//! when above 1, else 1 as in Katib) each run successive halving: rung 0 has
//! n = ⌈(s_max + 1) · eta^s / (s + 1)⌉ random configurations at budget r_l · eta^-s; rung i
//! keeps the best ⌈n_(i-1) / eta⌉ of rung i - 1 (by objective, failed ones last, ties in
//! creation order; Katib's rounding) at eta^i times that budget. Budgets are rendered as values
//! of the parameter (rounded, where Katib truncates, onto its step and inside its bounds).
//! Unlike Katib, `r_l` defaults to the parameter's max and `eta` may be fractional.
//!
//! Stateless: trial k's bracket, rung and place follow from k (the trials fill the rungs in
//! creation order), and a promotion is read from the previous rung's trials. Nothing is
//! suggested while the previous rung still has pending trials, and nothing after the last
//! bracket (the end of the search).

use super::cube::{fresh, is_new, value_near};
use super::experiment::Setting;
use super::settings;
use super::space::{Assignment, Domain, Param, SpaceError};
use super::suggest::{assignments, rng_for, Algorithm, Outcome, Seen};

/// Settings (Katib's names): `resource_name` (required), `eta` (3), `r_l` (the parameter's
/// max), and `random_state` (0) for the configurations drawn.
#[derive(Debug, Clone, PartialEq)]
pub struct HyperbandSettings {
    pub resource: String,
    pub eta: f64,
    pub r_l: f64,
    pub seed: u64,
}

/// Checks the settings against the space; errors name the setting's field.
pub fn parse(list: &[Setting], space: &[Param]) -> Result<HyperbandSettings, SpaceError> {
    let mut resource: Option<(usize, String)> = None;
    let mut eta = 3.0;
    let mut r_l: Option<(usize, f64)> = None;
    let mut seed = 0;
    for (i, st) in list.iter().enumerate() {
        match st.name.as_str() {
            "resource_name" => resource = Some((i, st.value.trim().to_string())),
            "eta" => eta = settings::number(i, st, |e| e > 1.0, "a number above 1")?,
            "r_l" => {
                r_l = Some((
                    i,
                    settings::number(i, st, |r| r > 0.0, "a positive number")?,
                ))
            }
            "random_state" => seed = settings::int(i, st)?,
            _ => {
                return Err(settings::unknown(
                    i,
                    st,
                    "hyperband",
                    "resource_name, eta, r_l, random_state",
                ))
            }
        }
    }
    let Some((ri, name)) = resource else {
        return Err(SpaceError {
            field: "spec.algorithm.algorithmSettings".into(),
            message: "hyperband needs resource_name: the int or double parameter that is the \
                      budget (epochs, steps)"
                .into(),
        });
    };
    let max = match space.iter().find(|p| p.name == name).map(|p| &p.domain) {
        Some(Domain::Int { max, .. }) => *max as f64,
        Some(Domain::Double { max, .. }) => *max,
        Some(Domain::List(_)) => {
            return Err(settings::bad_value(
                ri,
                format!("resource_name {name:?} must be an int or double parameter"),
            ))
        }
        None => {
            return Err(settings::bad_value(
                ri,
                format!("resource_name {name:?} is not a parameter of spec.parameters"),
            ))
        }
    };
    let r_l = match r_l {
        Some((_, r)) => r,
        None if max > 0.0 => max,
        None => {
            return Err(settings::bad_value(
                ri,
                format!("the max of {name:?} must be positive to be the default r_l"),
            ))
        }
    };
    Ok(HyperbandSettings {
        resource: name,
        eta,
        r_l,
        seed,
    })
}

/// One rung: how many configurations, at which budget.
#[derive(Debug, Clone, PartialEq)]
pub struct Rung {
    pub n: usize,
    pub budget: f64,
}

/// A trial's place: its rung, the previous rung's (first trial index, size) unless it is
/// rung 0, and its place in the rung.
struct Slot<'a> {
    rung: &'a Rung,
    prev: Option<(usize, usize)>,
    place: usize,
}

/// Hyperband over a checked space.
#[derive(Debug, Clone)]
pub struct Hyperband {
    params: Vec<Param>,
    settings: HyperbandSettings,
    brackets: Vec<Vec<Rung>>,
}

impl Hyperband {
    pub fn new(params: Vec<Param>, settings: HyperbandSettings) -> Hyperband {
        let r_min = match params
            .iter()
            .find(|p| p.name == settings.resource)
            .map(|p| &p.domain)
        {
            Some(Domain::Int { min, .. }) => (*min as f64).max(1.0),
            Some(Domain::Double { min, .. }) => min.max(1.0),
            _ => 1.0,
        };
        let (eta, r_l) = (settings.eta, settings.r_l);
        let ratio = (r_l / r_min).max(1.0);
        let s_max = ((ratio.ln() / eta.ln()) + 1e-9).floor().clamp(0.0, 30.0) as i32;
        let brackets = (0..=s_max)
            .rev()
            .map(|s| {
                let n = ((f64::from(s_max + 1) * eta.powi(s)) / f64::from(s + 1) - 1e-9).ceil();
                let r = r_l * eta.powi(-s);
                // Each rung keeps the best ⌈previous / eta⌉ (Katib's rounding).
                let mut size = n.max(1.0);
                (0..=s)
                    .map(|i| {
                        if i > 0 {
                            size = (size / eta - 1e-9).ceil().max(1.0);
                        }
                        Rung {
                            n: size as usize,
                            budget: r * eta.powi(i),
                        }
                    })
                    .collect()
            })
            .collect();
        Hyperband {
            params,
            settings,
            brackets,
        }
    }

    /// The brackets, s_max first, each its rungs.
    pub fn brackets(&self) -> &[Vec<Rung>] {
        &self.brackets
    }

    /// Where trial `k` goes. None past the last bracket.
    fn locate(&self, k: usize) -> Option<Slot<'_>> {
        let mut start = 0;
        for rungs in &self.brackets {
            let mut prev: Option<(usize, usize)> = None;
            for rung in rungs {
                if k < start + rung.n {
                    return Some(Slot {
                        rung,
                        prev,
                        place: k - start,
                    });
                }
                prev = Some((start, rung.n));
                start += rung.n;
            }
        }
        None
    }

    /// The budget as the resource parameter's value.
    fn budget(&self, r: f64) -> String {
        self.params
            .iter()
            .find(|p| p.name == self.settings.resource)
            .map(|p| value_near(p, r))
            .unwrap_or_default()
    }

    fn with_budget(&self, a: &Assignment, budget: &str) -> Assignment {
        a.iter()
            .map(|(n, v)| {
                if *n == self.settings.resource {
                    (n.clone(), budget.to_string())
                } else {
                    (n.clone(), v.clone())
                }
            })
            .collect()
    }
}

impl Algorithm for Hyperband {
    fn suggest(&self, trials: &[Seen], n: usize, maximize: bool) -> Vec<Assignment> {
        let seen = assignments(trials);
        let mut out: Vec<Assignment> = Vec::with_capacity(n);
        for i in 0..n {
            let k = trials.len() + i;
            let Some(Slot { rung, prev, place }) = self.locate(k) else {
                break;
            };
            let budget = self.budget(rung.budget);
            let a = match prev {
                None => {
                    let mut rng = rng_for(self.settings.seed, k);
                    let mut a =
                        self.with_budget(&fresh(&self.params, &mut rng, &seen, &out), &budget);
                    for _ in 0..64 {
                        if is_new(&a, &seen, &out) {
                            break;
                        }
                        a = self.with_budget(&fresh(&self.params, &mut rng, &seen, &out), &budget);
                    }
                    a
                }
                Some((start, size)) => {
                    let Some(previous) = trials.get(start..start + size) else {
                        break;
                    };
                    if previous.iter().any(|t| t.outcome == Outcome::Pending) {
                        break;
                    }
                    let mut ranked: Vec<(usize, &Seen)> = previous.iter().enumerate().collect();
                    ranked.sort_by(|(i, a), (j, b)| {
                        let key = |t: &Seen| match t.outcome {
                            Outcome::Value(v) if v.is_finite() => {
                                Some(if maximize { -v } else { v })
                            }
                            _ => None,
                        };
                        match (key(a), key(b)) {
                            (Some(x), Some(y)) => x.total_cmp(&y).then(i.cmp(j)),
                            (Some(_), None) => std::cmp::Ordering::Less,
                            (None, Some(_)) => std::cmp::Ordering::Greater,
                            (None, None) => i.cmp(j),
                        }
                    });
                    let Some((_, t)) = ranked.get(place) else {
                        break;
                    };
                    self.with_budget(&t.assignment, &budget)
                }
            };
            out.push(a);
        }
        out
    }
}
