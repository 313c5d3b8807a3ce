//! The search space as Katib writes it: `parameters[{name, parameterType int|double|categorical|
//! discrete, feasibleSpace{min, max, step, list, distribution}}]`, values as strings. [`check`]
//! turns it into typed [`Param`]s or an error naming the field (`spec.parameters[1].feasibleSpace.min`).

use super::rng::Rng;
use serde::{Deserialize, Serialize};

/// One parameter as written in an Experiment.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ParameterSpec {
    pub name: String,
    #[serde(default)]
    pub parameter_type: String,
    #[serde(default)]
    pub feasible_space: FeasibleSpace,
}

/// Katib's `feasibleSpace` (numbers as strings).
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct FeasibleSpace {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub list: Vec<String>,
    /// `uniform` (default), `logUniform`, `normal`, `logNormal`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub distribution: Option<String>,
}

/// How a numeric parameter is drawn.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Distribution {
    Uniform,
    LogUniform,
    /// Mean at the middle of [min, max], standard deviation a sixth of the range, kept inside.
    Normal,
    /// Normal in log space, likewise.
    LogNormal,
}

/// A checked parameter.
#[derive(Clone, Debug, PartialEq)]
pub enum Domain {
    Int {
        min: i64,
        max: i64,
        step: i64,
        dist: Distribution,
    },
    Double {
        min: f64,
        max: f64,
        step: Option<f64>,
        dist: Distribution,
    },
    /// `categorical` and `discrete`: one of the listed values.
    List(Vec<String>),
}

#[derive(Clone, Debug, PartialEq)]
pub struct Param {
    pub name: String,
    pub domain: Domain,
}

/// A value per parameter, in the parameters' order, as Katib's assignments carry them.
pub type Assignment = Vec<(String, String)>;

/// A search space that cannot be used; the message names the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct SpaceError {
    pub field: String,
    pub message: String,
}

fn err(field: String, message: impl Into<String>) -> SpaceError {
    SpaceError {
        field,
        message: message.into(),
    }
}

fn number<T: std::str::FromStr>(
    v: Option<&String>,
    field: String,
    what: &str,
) -> Result<T, SpaceError> {
    let text = v.ok_or_else(|| err(field.clone(), format!("required for {what} parameters")))?;
    text.trim()
        .parse::<T>()
        .map_err(|_| err(field, format!("not a valid {what}: {text:?}")))
}

fn distribution(fs: &FeasibleSpace, field: &str) -> Result<Distribution, SpaceError> {
    match fs.distribution.as_deref() {
        None | Some("") | Some("uniform") => Ok(Distribution::Uniform),
        Some("logUniform") => Ok(Distribution::LogUniform),
        Some("normal") => Ok(Distribution::Normal),
        Some("logNormal") => Ok(Distribution::LogNormal),
        Some(other) => Err(err(
            format!("{field}.distribution"),
            format!("unknown distribution {other:?} (uniform, logUniform, normal, logNormal)"),
        )),
    }
}

/// Checks `spec.parameters`.
pub fn check(params: &[ParameterSpec]) -> Result<Vec<Param>, SpaceError> {
    if params.is_empty() {
        return Err(err(
            "spec.parameters".into(),
            "the search space is empty: give at least one parameter",
        ));
    }
    let mut out: Vec<Param> = Vec::with_capacity(params.len());
    for (i, p) in params.iter().enumerate() {
        let at = format!("spec.parameters[{i}]");
        if p.name.trim().is_empty() {
            return Err(err(format!("{at}.name"), "must not be empty"));
        }
        if out.iter().any(|q| q.name == p.name) {
            return Err(err(
                format!("{at}.name"),
                format!("parameter {:?} is given twice", p.name),
            ));
        }
        let fs = &p.feasible_space;
        let space = format!("{at}.feasibleSpace");
        let domain = match p.parameter_type.as_str() {
            "int" => {
                let min: i64 = number(fs.min.as_ref(), format!("{space}.min"), "int")?;
                let max: i64 = number(fs.max.as_ref(), format!("{space}.max"), "int")?;
                let step: i64 = match &fs.step {
                    None => 1,
                    Some(_) => number(fs.step.as_ref(), format!("{space}.step"), "int")?,
                };
                if min > max {
                    return Err(err(
                        format!("{space}.min"),
                        format!("min {min} is greater than max {max}"),
                    ));
                }
                if step <= 0 {
                    return Err(err(format!("{space}.step"), "must be positive"));
                }
                let dist = distribution(fs, &space)?;
                if matches!(dist, Distribution::LogUniform | Distribution::LogNormal) && min <= 0 {
                    return Err(err(
                        format!("{space}.min"),
                        "must be positive for a log distribution",
                    ));
                }
                Domain::Int {
                    min,
                    max,
                    step,
                    dist,
                }
            }
            "double" => {
                let min: f64 = number(fs.min.as_ref(), format!("{space}.min"), "double")?;
                let max: f64 = number(fs.max.as_ref(), format!("{space}.max"), "double")?;
                if !min.is_finite() || !max.is_finite() {
                    return Err(err(space, "min and max must be finite"));
                }
                if min > max {
                    return Err(err(
                        format!("{space}.min"),
                        format!("min {min} is greater than max {max}"),
                    ));
                }
                let step = match &fs.step {
                    None => None,
                    Some(_) => {
                        let s: f64 = number(fs.step.as_ref(), format!("{space}.step"), "double")?;
                        if !(s.is_finite() && s > 0.0) {
                            return Err(err(format!("{space}.step"), "must be positive"));
                        }
                        Some(s)
                    }
                };
                let dist = distribution(fs, &space)?;
                if matches!(dist, Distribution::LogUniform | Distribution::LogNormal) && min <= 0.0
                {
                    return Err(err(
                        format!("{space}.min"),
                        "must be positive for a log distribution",
                    ));
                }
                Domain::Double {
                    min,
                    max,
                    step,
                    dist,
                }
            }
            "categorical" | "discrete" => {
                if fs.list.is_empty() {
                    return Err(err(
                        format!("{space}.list"),
                        format!("a {} parameter needs a non-empty list", p.parameter_type),
                    ));
                }
                if p.parameter_type == "discrete" {
                    for (j, v) in fs.list.iter().enumerate() {
                        if v.trim().parse::<f64>().is_err() {
                            return Err(err(
                                format!("{space}.list[{j}]"),
                                format!("a discrete value must be a number, got {v:?}"),
                            ));
                        }
                    }
                }
                Domain::List(fs.list.clone())
            }
            other => {
                return Err(err(
                    format!("{at}.parameterType"),
                    format!("unknown type {other:?} (int, double, categorical, discrete)"),
                ))
            }
        };
        out.push(Param {
            name: p.name.clone(),
            domain,
        });
    }
    Ok(out)
}

/// A draw in [lo, hi] per distribution (`x` in log space for the log ones).
fn draw(rng: &mut Rng, lo: f64, hi: f64, dist: Distribution) -> f64 {
    let (a, b, log) = match dist {
        Distribution::LogUniform | Distribution::LogNormal => (lo.ln(), hi.ln(), true),
        _ => (lo, hi, false),
    };
    let x = match dist {
        Distribution::Uniform | Distribution::LogUniform => a + (b - a) * rng.unit(),
        Distribution::Normal | Distribution::LogNormal => {
            let mean = (a + b) / 2.0;
            let sd = (b - a) / 6.0;
            (mean + sd * rng.normal()).clamp(a, b)
        }
    };
    if log {
        x.exp().clamp(lo, hi)
    } else {
        x
    }
}

/// `v` without the binary noise of `min + k × step` (`0.30000000000000004` → `0.3`): rounded
/// to 13 significant digits.
pub fn tidy(v: f64) -> f64 {
    format!("{v:.12e}").parse().unwrap_or(v)
}

/// A double as its shortest text that reads back the same (`0.3`, `1.0`, `1e-5`).
pub fn format_double(v: f64) -> String {
    let s = format!("{v}");
    if s.contains('.') || s.contains('e') || s.contains("inf") || s.contains("NaN") {
        s
    } else {
        format!("{s}.0")
    }
}

impl Param {
    /// One value drawn from the domain.
    pub fn sample(&self, rng: &mut Rng) -> String {
        match &self.domain {
            Domain::Int {
                min,
                max,
                step,
                dist,
            } => {
                let steps = (max - min) / step;
                let k = match dist {
                    Distribution::Uniform => {
                        rng.below(usize::try_from(steps + 1).unwrap_or(1)) as i64
                    }
                    d => {
                        let x = draw(rng, *min as f64, *max as f64, *d);
                        (((x - *min as f64) / *step as f64).round() as i64).clamp(0, steps)
                    }
                };
                (min + k * step).to_string()
            }
            Domain::Double {
                min,
                max,
                step,
                dist,
            } => {
                let x = draw(rng, *min, *max, *dist);
                let x = match step {
                    Some(s) => {
                        let k = ((x - min) / s).round();
                        tidy(min + k * s).min(*max)
                    }
                    None => x,
                };
                format_double(x)
            }
            Domain::List(values) => values
                .get(rng.below(values.len()))
                .cloned()
                .unwrap_or_default(),
        }
    }

    /// Every value of the domain in order, for grid search; a double needs a step.
    pub fn grid_values(&self) -> Result<Vec<String>, String> {
        match &self.domain {
            Domain::Int { min, max, step, .. } => {
                let mut v = Vec::new();
                let mut x = *min;
                while x <= *max {
                    v.push(x.to_string());
                    x = match x.checked_add(*step) {
                        Some(n) => n,
                        None => break,
                    };
                }
                Ok(v)
            }
            Domain::Double { min, max, step, .. } => {
                let s = step.ok_or_else(|| {
                    format!(
                        "parameter {:?}: grid search needs feasibleSpace.step for a double",
                        self.name
                    )
                })?;
                let n = ((max - min) / s + 1e-9).floor() as i64;
                Ok((0..=n)
                    .map(|k| format_double(tidy(min + k as f64 * s)))
                    .collect())
            }
            Domain::List(values) => Ok(values.clone()),
        }
    }
}
