//! Early stopping, Katib's `medianstop`: `spec.earlyStopping{algorithmName: medianstop,
//! algorithmSettings[{name, value}]}` with `min_trials_required` (default 3) and `start_step`
//! (default 4). For each Succeeded trial, the average of its first `start_step` reports of the
//! objective (all of them when it made fewer); once at least `min_trials_required` such trials
//! exist, the rule is {objective, the median of those averages, `less` when maximising /
//! `greater` when minimising, start_step}. A running trial whose `start_step`-th or later
//! report of the objective meets the comparison is stopped (`EarlyStopped`).

use super::experiment::Setting;
use super::settings;
use super::space::SpaceError;
use serde::Deserialize;
use serde_json::Value;

/// Checked `medianstop` settings.
#[derive(Debug, Clone, PartialEq)]
pub struct MedianStop {
    pub min_trials_required: usize,
    pub start_step: usize,
}

impl Default for MedianStop {
    fn default() -> Self {
        MedianStop {
            min_trials_required: 3,
            start_step: 4,
        }
    }
}

/// `spec.earlyStopping` as Katib writes it.
#[derive(Deserialize, Debug, Default)]
#[serde(rename_all = "camelCase")]
struct EarlyStoppingSpec {
    #[serde(default)]
    algorithm_name: String,
    #[serde(default)]
    algorithm_settings: Vec<Setting>,
}

fn bad(field: String, message: impl Into<String>) -> SpaceError {
    SpaceError {
        field,
        message: message.into(),
    }
}

/// Checks `spec.earlyStopping` (absent or null: no early stopping); errors name the field.
pub fn parse(spec: Option<&Value>) -> Result<Option<MedianStop>, SpaceError> {
    let Some(v) = spec.filter(|v| !v.is_null()) else {
        return Ok(None);
    };
    let es: EarlyStoppingSpec = serde_json::from_value(v.clone())
        .map_err(|e| bad("spec.earlyStopping".into(), e.to_string()))?;
    match es.algorithm_name.as_str() {
        "medianstop" => {}
        "" => {
            return Err(bad(
                "spec.earlyStopping.algorithmName".into(),
                "must not be empty",
            ))
        }
        other => {
            return Err(bad(
                "spec.earlyStopping.algorithmName".into(),
                format!("unknown early stopping algorithm {other:?} (medianstop)"),
            ))
        }
    }
    let mut m = MedianStop::default();
    for (i, st) in es.algorithm_settings.iter().enumerate() {
        // Katib's errors name the early stopping field, not the algorithm's.
        let rename = |e: SpaceError| SpaceError {
            field: format!("spec.earlyStopping.algorithmSettings[{i}].value"),
            message: e.message,
        };
        match st.name.as_str() {
            "min_trials_required" => {
                m.min_trials_required = settings::count(i, st, 1).map_err(rename)?
            }
            "start_step" => m.start_step = settings::count(i, st, 1).map_err(rename)?,
            other => {
                return Err(bad(
                    format!("spec.earlyStopping.algorithmSettings[{i}].name"),
                    format!(
                        "unknown setting {other:?} for medianstop (min_trials_required, start_step)"
                    ),
                ))
            }
        }
    }
    Ok(Some(m))
}

/// How a report is compared with the rule's value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Comparison {
    /// Stop when the report is below (maximising).
    Less,
    /// Stop when the report is above (minimising).
    Greater,
    /// Stop when the report equals the value (Katib's third comparison).
    Equal,
}

/// Katib's early stopping rule for the running trials.
#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    pub metric: String,
    pub value: f64,
    pub comparison: Comparison,
    pub start_step: usize,
}

impl Rule {
    /// Whether a trial's `report_index`-th report (1 for the first) of the objective, `value`,
    /// stops it.
    pub fn stops(&self, report_index: usize, value: f64) -> bool {
        report_index >= self.start_step
            && match self.comparison {
                Comparison::Less => value < self.value,
                Comparison::Greater => value > self.value,
                Comparison::Equal => value == self.value,
            }
    }
}

/// The average of the first `start_step` reports (of all when fewer); None without reports.
pub fn first_steps_average(reports: &[f64], start_step: usize) -> Option<f64> {
    let first = reports.get(..start_step.min(reports.len()))?;
    if first.is_empty() {
        return None;
    }
    Some(first.iter().sum::<f64>() / first.len() as f64)
}

impl Comparison {
    /// As Katib writes it in a Trial's `earlyStoppingRules` (`less`, `greater`, `equal`).
    pub fn as_str(&self) -> &'static str {
        match self {
            Comparison::Less => "less",
            Comparison::Greater => "greater",
            Comparison::Equal => "equal",
        }
    }

    /// From Katib's name.
    pub fn parse(text: &str) -> Option<Comparison> {
        match text {
            "less" => Some(Comparison::Less),
            "greater" => Some(Comparison::Greater),
            "equal" => Some(Comparison::Equal),
            _ => None,
        }
    }
}

impl MedianStop {
    /// The rule given each Succeeded trial's objective reports in order; None while fewer than
    /// `min_trials_required` of them reported.
    pub fn rule(&self, metric: &str, succeeded: &[Vec<f64>], maximize: bool) -> Option<Rule> {
        let avgs: Vec<f64> = succeeded
            .iter()
            .filter_map(|r| first_steps_average(r, self.start_step))
            .collect();
        self.rule_from_averages(metric, &avgs, maximize)
    }

    /// The rule given the Succeeded trials' first-steps averages (see [`first_steps_average`]);
    /// None while fewer than `min_trials_required`.
    pub fn rule_from_averages(
        &self,
        metric: &str,
        averages: &[f64],
        maximize: bool,
    ) -> Option<Rule> {
        let mut avgs: Vec<f64> = averages.iter().copied().filter(|v| v.is_finite()).collect();
        if avgs.is_empty() || avgs.len() < self.min_trials_required {
            return None;
        }
        avgs.sort_by(f64::total_cmp);
        let mid = avgs.len() / 2;
        let median = if avgs.len() % 2 == 1 {
            *avgs.get(mid)?
        } else {
            (avgs.get(mid - 1)? + avgs.get(mid)?) / 2.0
        };
        Some(Rule {
            metric: metric.to_string(),
            value: median,
            comparison: if maximize {
                Comparison::Less
            } else {
                Comparison::Greater
            },
            start_step: self.start_step,
        })
    }
}
