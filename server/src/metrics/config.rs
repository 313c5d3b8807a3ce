//! `--metrics-config KEY=VALUE`, in Triton's spelling: which latency series are exported.
//!
//! | key | values | default (as Triton) |
//! |---|---|---|
//! | `counter_latencies` | `true`, `false` | `true`: the `nv_inference_*_duration_us` counters |
//! | `summary_latencies` | `true`, `false` | `false`: the `nv_inference_*_summary_us` summaries |
//! | `summary_quantiles` | `q:e,q:e,...` (0 < q < 1, 0 ≤ e < 1) | `0.5:0.05,0.9:0.01,0.95:0.001,0.99:0.001,0.999:0.001` |
//!
//! Unlike Triton, which ignores what it does not understand, an unknown key or a bad value
//! stops the server at start with the flag named.

use std::str::FromStr;
use std::sync::Arc;

/// Triton's default quantiles, as (quantile, error) pairs.
pub const DEFAULT_QUANTILES: &[(f64, f64)] = &[
    (0.5, 0.05),
    (0.9, 0.01),
    (0.95, 0.001),
    (0.99, 0.001),
    (0.999, 0.001),
];

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum MetricsConfigError {
    #[error("--metrics-config '{0}': expected KEY=VALUE")]
    Malformed(String),
    #[error(
        "--metrics-config '{0}': unknown key '{1}' (known: counter_latencies, \
         summary_latencies, summary_quantiles)"
    )]
    UnknownKey(String, String),
    #[error("--metrics-config '{0}': '{1}' is not true or false")]
    NotABool(String, String),
    #[error("--metrics-config '{0}': '{1}' is not a quantile:error pair of numbers")]
    BadQuantile(String, String),
    #[error(
        "--metrics-config '{0}': in '{1}' the quantile must be in (0, 1) and the error in [0, 1)"
    )]
    QuantileOutOfRange(String, String),
    #[error("--metrics-config '{0}': no quantiles given")]
    NoQuantiles(String),
}

/// One `--metrics-config` setting.
#[derive(Debug, Clone, PartialEq)]
pub enum MetricsSetting {
    CounterLatencies(bool),
    SummaryLatencies(bool),
    /// (quantile, error) pairs, in the order given.
    SummaryQuantiles(Vec<(f64, f64)>),
}

impl FromStr for MetricsSetting {
    type Err = MetricsConfigError;

    fn from_str(spec: &str) -> Result<MetricsSetting, MetricsConfigError> {
        let (key, value) = spec
            .split_once('=')
            .ok_or_else(|| MetricsConfigError::Malformed(spec.into()))?;
        let flag = |v: &str| match v {
            "true" => Ok(true),
            "false" => Ok(false),
            _ => Err(MetricsConfigError::NotABool(spec.into(), v.into())),
        };
        match key.trim() {
            "counter_latencies" => flag(value.trim()).map(MetricsSetting::CounterLatencies),
            "summary_latencies" => flag(value.trim()).map(MetricsSetting::SummaryLatencies),
            "summary_quantiles" => quantiles(spec, value).map(MetricsSetting::SummaryQuantiles),
            other => Err(MetricsConfigError::UnknownKey(spec.into(), other.into())),
        }
    }
}

/// `0.5:0.05,0.9:0.01` (Triton's examples quote the list; quotes are dropped).
fn quantiles(spec: &str, value: &str) -> Result<Vec<(f64, f64)>, MetricsConfigError> {
    let value = value.trim().trim_matches('"');
    let mut out = Vec::new();
    for pair in value.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let bad = || MetricsConfigError::BadQuantile(spec.into(), pair.into());
        let (q, e) = pair.split_once(':').ok_or_else(bad)?;
        let q: f64 = q.trim().parse().map_err(|_| bad())?;
        let e: f64 = e.trim().parse().map_err(|_| bad())?;
        if !(q > 0.0 && q < 1.0 && (0.0..1.0).contains(&e)) {
            return Err(MetricsConfigError::QuantileOutOfRange(
                spec.into(),
                pair.into(),
            ));
        }
        out.push((q, e));
    }
    if out.is_empty() {
        return Err(MetricsConfigError::NoQuantiles(spec.into()));
    }
    Ok(out)
}

/// What `--metrics-config` decided, the last setting of a key winning.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricsConfig {
    pub counter_latencies: bool,
    pub summary_latencies: bool,
    /// The quantiles each summary reports, as (quantile, error).
    pub summary_quantiles: Arc<[(f64, f64)]>,
}

impl Default for MetricsConfig {
    fn default() -> MetricsConfig {
        MetricsConfig {
            counter_latencies: true,
            summary_latencies: false,
            summary_quantiles: DEFAULT_QUANTILES.into(),
        }
    }
}

impl MetricsConfig {
    pub fn from_settings(settings: &[MetricsSetting]) -> MetricsConfig {
        let mut config = MetricsConfig::default();
        for s in settings {
            match s {
                MetricsSetting::CounterLatencies(on) => config.counter_latencies = *on,
                MetricsSetting::SummaryLatencies(on) => config.summary_latencies = *on,
                MetricsSetting::SummaryQuantiles(q) => config.summary_quantiles = q.clone().into(),
            }
        }
        config
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(specs: &[&str]) -> Result<MetricsConfig, MetricsConfigError> {
        let settings = specs
            .iter()
            .map(|s| s.parse())
            .collect::<Result<Vec<MetricsSetting>, _>>()?;
        Ok(MetricsConfig::from_settings(&settings))
    }

    #[test]
    fn defaults_are_tritons() {
        let c = parse(&[]).expect("empty");
        assert!(c.counter_latencies);
        assert!(!c.summary_latencies);
        let qs: Vec<f64> = c.summary_quantiles.iter().map(|(q, _)| *q).collect();
        assert_eq!(qs, [0.5, 0.9, 0.95, 0.99, 0.999]);
    }

    #[test]
    fn settings_are_read_and_the_last_wins() {
        let c = parse(&[
            "summary_latencies=true",
            "counter_latencies=false",
            "summary_quantiles=\"0.5:0.05, 0.99:0.001\"",
            "summary_latencies=false",
            "summary_latencies=true",
        ])
        .expect("valid");
        assert!(c.summary_latencies);
        assert!(!c.counter_latencies);
        assert_eq!(&*c.summary_quantiles, &[(0.5, 0.05), (0.99, 0.001)]);
    }

    #[test]
    fn bad_settings_name_the_flag_and_what_is_wrong() {
        for (spec, why) in [
            ("summary_latencies", "expected KEY=VALUE"),
            (
                "histogram_latencies=true",
                "unknown key 'histogram_latencies'",
            ),
            ("summary_latencies=yes", "'yes' is not true or false"),
            (
                "summary_quantiles=0.5",
                "'0.5' is not a quantile:error pair",
            ),
            (
                "summary_quantiles=0.5:x",
                "'0.5:x' is not a quantile:error pair",
            ),
            (
                "summary_quantiles=1.5:0.01",
                "the quantile must be in (0, 1)",
            ),
            ("summary_quantiles=0.5:-1", "the quantile must be in (0, 1)"),
            ("summary_quantiles=", "no quantiles given"),
        ] {
            let e = spec.parse::<MetricsSetting>().expect_err(spec).to_string();
            assert!(e.starts_with("--metrics-config"), "{spec}: {e}");
            assert!(e.contains(why), "{spec}: {e}");
        }
    }
}
