//! Parameters as coordinates of the unit cube, for the model-based algorithms: an int or double
//! maps linearly onto [0, 1] (log ones in log space), a discrete list (all values numbers) by
//! the rank of its values, and a categorical list stays a choice (one-hot for the GP). Going
//! back, a coordinate becomes a valid value of the domain: clamped into its bounds, on its step,
//! rendered like the random algorithm renders it.

use super::rng::Rng;
use super::space::{format_double, tidy, Assignment, Distribution, Domain, Param};

fn is_log(d: &Distribution) -> bool {
    matches!(d, Distribution::LogUniform | Distribution::LogNormal)
}

/// The values of a list sorted by number, when all of them are numbers (a discrete parameter).
fn ordered(values: &[String]) -> Option<Vec<String>> {
    let mut v: Vec<(f64, String)> = values
        .iter()
        .map(|s| s.trim().parse::<f64>().ok().map(|x| (x, s.clone())))
        .collect::<Option<_>>()?;
    v.sort_by(|a, b| a.0.total_cmp(&b.0));
    Some(v.into_iter().map(|(_, s)| s).collect())
}

/// Whether the parameter is a choice without order (a list with a non-number in it).
pub fn is_categorical(p: &Param) -> bool {
    matches!(&p.domain, Domain::List(v) if ordered(v).is_none())
}

/// The bounds of a numeric domain in model space (log for log distributions).
fn bounds(d: &Domain) -> Option<(f64, f64, bool)> {
    match d {
        Domain::Int { min, max, dist, .. } => Some((*min as f64, *max as f64, is_log(dist))),
        Domain::Double { min, max, dist, .. } => Some((*min, *max, is_log(dist))),
        Domain::List(_) => None,
    }
}

/// `v` (a value of `p`) as a coordinate in [0, 1]; None for a categorical or an unreadable value.
pub fn unit_of(p: &Param, v: &str) -> Option<f64> {
    if let Domain::List(values) = &p.domain {
        let o = ordered(values)?;
        let i = o.iter().position(|s| s == v)?;
        return Some(if o.len() <= 1 {
            0.5
        } else {
            i as f64 / (o.len() - 1) as f64
        });
    }
    let (lo, hi, log) = bounds(&p.domain)?;
    let x: f64 = v.trim().parse().ok()?;
    let (lo, hi, x) = if log {
        (lo.ln(), hi.ln(), x.max(f64::MIN_POSITIVE).ln())
    } else {
        (lo, hi, x)
    };
    if hi <= lo {
        return Some(0.5);
    }
    Some(((x - lo) / (hi - lo)).clamp(0.0, 1.0))
}

/// The value of `p` at coordinate `u` (clamped into [0, 1]): on the domain's step, inside its
/// bounds; for a categorical the `floor(u × n)`-th value.
pub fn value_at(p: &Param, u: f64) -> String {
    let u = if u.is_finite() {
        u.clamp(0.0, 1.0)
    } else {
        0.5
    };
    match &p.domain {
        Domain::List(values) => {
            let (list, i) = match ordered(values) {
                Some(o) => {
                    let i = (u * o.len().saturating_sub(1) as f64).round() as usize;
                    (o, i)
                }
                None => (values.clone(), (u * values.len() as f64) as usize),
            };
            let i = i.min(list.len().saturating_sub(1));
            list.get(i).cloned().unwrap_or_default()
        }
        d => {
            let Some((lo, hi, log)) = bounds(d) else {
                return String::new();
            };
            let x = if log {
                (lo.ln() + u * (hi.ln() - lo.ln())).exp()
            } else {
                lo + u * (hi - lo)
            };
            value_near(p, x)
        }
    }
}

/// The valid value of a numeric `p` nearest to `x` (its bounds, its step); for a list, the
/// value at coordinate 0.5.
pub fn value_near(p: &Param, x: f64) -> String {
    match &p.domain {
        Domain::Int { min, max, step, .. } => {
            let steps = max.saturating_sub(*min) / step;
            let k = ((x - *min as f64) / *step as f64).round();
            let k = if k.is_finite() { k as i64 } else { 0 };
            min.saturating_add(k.clamp(0, steps).saturating_mul(*step))
                .to_string()
        }
        Domain::Double { min, max, step, .. } => {
            let x = if x.is_finite() { x } else { *min };
            match step {
                Some(s) => {
                    let steps = ((max - min) / s + 1e-9).floor().max(0.0);
                    let k = ((x - min) / s).round().clamp(0.0, steps);
                    format_double(tidy(min + k * s).clamp(*min, *max))
                }
                None => format_double(x.clamp(*min, *max)),
            }
        }
        Domain::List(_) => value_at(p, 0.5),
    }
}

/// The value `a` gives parameter `name`.
pub fn value_of<'a>(a: &'a Assignment, name: &str) -> Option<&'a str> {
    a.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
}

/// One value per parameter drawn from its domain and distribution.
pub fn random(params: &[Param], rng: &mut Rng) -> Assignment {
    params
        .iter()
        .map(|p| (p.name.clone(), p.sample(rng)))
        .collect()
}

/// Whether `a` is neither tried/pending (`seen`) nor already suggested in this call (`out`).
pub fn is_new(a: &Assignment, seen: &[Assignment], out: &[Assignment]) -> bool {
    !seen.contains(a) && !out.contains(a)
}

/// A random assignment not in `seen` nor `out`, while 64 draws find one (else the last draw).
pub fn fresh(
    params: &[Param],
    rng: &mut Rng,
    seen: &[Assignment],
    out: &[Assignment],
) -> Assignment {
    let mut a = random(params, rng);
    for _ in 0..64 {
        if is_new(&a, seen, out) {
            break;
        }
        a = random(params, rng);
    }
    a
}

/// `a` moved a little: each ordered coordinate by a normal step of `scale`, each categorical
/// redrawn with probability `scale` (at least 0.1).
pub fn perturb(params: &[Param], a: &Assignment, scale: f64, rng: &mut Rng) -> Assignment {
    params
        .iter()
        .map(|p| {
            let v = value_of(a, &p.name).unwrap_or_default();
            let new = if is_categorical(p) {
                if rng.unit() < scale.max(0.1) {
                    p.sample(rng)
                } else {
                    v.to_string()
                }
            } else {
                match unit_of(p, v) {
                    Some(u) => value_at(p, u + scale * rng.normal()),
                    None => p.sample(rng),
                }
            };
            (p.name.clone(), new)
        })
        .collect()
}

/// The GP's features of `a`: one coordinate per ordered parameter, a one-hot block per
/// categorical; with the parameter index of each feature (see [`groups`]).
pub fn features(params: &[Param], a: &Assignment) -> Option<Vec<f64>> {
    let mut out = Vec::new();
    for p in params {
        let v = value_of(a, &p.name)?;
        match &p.domain {
            Domain::List(values) if is_categorical(p) => {
                let i = values.iter().position(|s| s == v)?;
                out.extend((0..values.len()).map(|j| if j == i { 1.0 } else { 0.0 }));
            }
            _ => out.push(unit_of(p, v)?),
        }
    }
    Some(out)
}

/// For each feature of [`features`], the index of its parameter.
pub fn groups(params: &[Param]) -> Vec<usize> {
    let mut out = Vec::new();
    for (g, p) in params.iter().enumerate() {
        match &p.domain {
            Domain::List(values) if is_categorical(p) => {
                out.extend(std::iter::repeat_n(g, values.len()))
            }
            _ => out.push(g),
        }
    }
    out
}
