//! `--trace-config`, in Triton's spelling: `KEY=VALUE` for the global settings
//! (`mode`, `level`, `rate`, `count`, `log_frequency`) and `opentelemetry,KEY=VALUE` for the
//! exporter's (`url`, `resource`, `bsp_max_export_batch_size`, `bsp_schedule_delay`,
//! `bsp_max_queue_size`). Each flag is parsed on its own by clap; [`TraceConfig::from_options`]
//! folds them.

use std::time::Duration;

/// Why a `--trace-config` value was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TraceConfigError {
    #[error("'{0}' is not KEY=VALUE or opentelemetry,KEY=VALUE")]
    Shape(String),
    #[error("Triton's trace file mode is not supported; use mode=opentelemetry")]
    TritonMode,
    #[error("unknown mode '{0}'; the only mode is opentelemetry")]
    Mode(String),
    #[error("level '{0}': the levels are TIMESTAMPS and OFF")]
    Level(String),
    #[error("{key}: '{value}' is not {what}")]
    Number {
        key: &'static str,
        value: String,
        what: &'static str,
    },
    #[error("opentelemetry,url: '{0}' is not an http:// or host:port/path address")]
    Url(String),
    #[error("opentelemetry,resource: '{0}' is not key=value")]
    Resource(String),
    #[error("unknown key '{0}' (global keys: mode, level, rate, count, log_frequency)")]
    UnknownKey(String),
    #[error("unknown key 'opentelemetry,{0}' (keys: url, resource, bsp_max_export_batch_size, bsp_schedule_delay, bsp_max_queue_size)")]
    UnknownExporterKey(String),
}

/// One `--trace-config` flag, typed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TraceOption {
    /// `mode=opentelemetry` (nothing else is accepted).
    Mode,
    /// `level=TIMESTAMPS` (true) or `level=OFF`.
    Level(bool),
    Rate(u64),
    Count(i64),
    LogFrequency(u64),
    Url(String),
    Resource(String, String),
    BatchSize(usize),
    Delay(Duration),
    QueueSize(usize),
}

/// The folded configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceConfig {
    /// Whether requests are traced at all (`level`); off unless `level=TIMESTAMPS`.
    pub enabled: bool,
    /// One request in `rate` is traced.
    pub rate: u64,
    /// Traces left to take; -1: no limit.
    pub count: i64,
    /// Kept and reported for Triton's API; the OTLP exporter has no use for it.
    pub log_frequency: u64,
    /// The OTLP/HTTP traces endpoint.
    pub url: String,
    /// Resource attributes (`service.name` is `osprey` unless given).
    pub resource: Vec<(String, String)>,
    /// Most spans in one export.
    pub batch_size: usize,
    /// Longest a span waits before its batch is sent.
    pub delay: Duration,
    /// Traces (requests) buffered before new ones are dropped.
    pub queue_size: usize,
}

impl Default for TraceConfig {
    fn default() -> TraceConfig {
        TraceConfig {
            enabled: false,
            rate: 1000,
            count: -1,
            log_frequency: 0,
            url: "http://localhost:4318/v1/traces".into(),
            resource: vec![("service.name".into(), "osprey".into())],
            batch_size: 512,
            delay: Duration::from_secs(1),
            queue_size: 2048,
        }
    }
}

impl TraceConfig {
    /// The configuration the flags give, in order (a later flag wins).
    pub fn from_options(options: &[TraceOption]) -> TraceConfig {
        let mut c = TraceConfig::default();
        for o in options {
            match o.clone() {
                TraceOption::Mode => {}
                TraceOption::Level(on) => c.enabled = on,
                TraceOption::Rate(n) => c.rate = n,
                TraceOption::Count(n) => c.count = n,
                TraceOption::LogFrequency(n) => c.log_frequency = n,
                TraceOption::Url(u) => c.url = u,
                TraceOption::Resource(k, v) => {
                    c.resource.retain(|(key, _)| *key != k);
                    c.resource.push((k, v));
                }
                TraceOption::BatchSize(n) => c.batch_size = n,
                TraceOption::Delay(d) => c.delay = d,
                TraceOption::QueueSize(n) => c.queue_size = n,
            }
        }
        c
    }
}

/// The trace level a word names: TIMESTAMPS (on) or OFF.
pub fn parse_level(word: &str) -> Result<bool, TraceConfigError> {
    match word.trim().to_ascii_uppercase().as_str() {
        "TIMESTAMPS" => Ok(true),
        "OFF" => Ok(false),
        _ => Err(TraceConfigError::Level(word.to_string())),
    }
}

/// A rate: a whole number of at least 1.
pub fn parse_rate(value: &str) -> Result<u64, TraceConfigError> {
    match value.trim().parse::<u64>() {
        Ok(n) if n >= 1 => Ok(n),
        _ => Err(number("rate", value, "a whole number of at least 1")),
    }
}

/// A count: -1 (no limit) or a whole number.
pub fn parse_count(value: &str) -> Result<i64, TraceConfigError> {
    match value.trim().parse::<i64>() {
        Ok(n) if n >= -1 => Ok(n),
        _ => Err(number("count", value, "-1 or a whole number")),
    }
}

/// Triton's log frequency: a whole number.
pub fn parse_log_frequency(value: &str) -> Result<u64, TraceConfigError> {
    value
        .trim()
        .parse::<u64>()
        .map_err(|_| number("log_frequency", value, "a whole number"))
}

fn number(key: &'static str, value: &str, what: &'static str) -> TraceConfigError {
    TraceConfigError::Number {
        key,
        value: value.to_string(),
        what,
    }
}

fn positive(key: &'static str, value: &str) -> Result<u64, TraceConfigError> {
    match value.trim().parse::<u64>() {
        Ok(n) if n >= 1 => Ok(n),
        _ => Err(number(key, value, "a whole number of at least 1")),
    }
}

/// The endpoint, with `http://` added to Triton's `host:port/path`.
fn url(value: &str) -> Result<String, TraceConfigError> {
    let v = value.trim();
    let full = if v.starts_with("http://") || v.starts_with("https://") {
        v.to_string()
    } else {
        format!("http://{v}")
    };
    match reqwest::Url::parse(&full) {
        Ok(u) if u.host_str().is_some_and(|h| !h.is_empty()) => Ok(full),
        _ => Err(TraceConfigError::Url(value.to_string())),
    }
}

impl std::str::FromStr for TraceOption {
    type Err = TraceConfigError;

    fn from_str(s: &str) -> Result<TraceOption, TraceConfigError> {
        let shape = || TraceConfigError::Shape(s.to_string());
        if let Some(rest) = s.strip_prefix("opentelemetry,") {
            let (key, value) = rest.split_once('=').ok_or_else(shape)?;
            return match key.trim() {
                "url" => Ok(TraceOption::Url(url(value)?)),
                "resource" => match value.split_once('=') {
                    Some((k, v)) if !k.trim().is_empty() => Ok(TraceOption::Resource(
                        k.trim().to_string(),
                        v.trim().to_string(),
                    )),
                    _ => Err(TraceConfigError::Resource(value.to_string())),
                },
                "bsp_max_export_batch_size" => {
                    let n = positive("opentelemetry,bsp_max_export_batch_size", value)?;
                    Ok(TraceOption::BatchSize(
                        usize::try_from(n).unwrap_or(usize::MAX),
                    ))
                }
                "bsp_schedule_delay" => Ok(TraceOption::Delay(Duration::from_millis(positive(
                    "opentelemetry,bsp_schedule_delay",
                    value,
                )?))),
                "bsp_max_queue_size" => {
                    let n = positive("opentelemetry,bsp_max_queue_size", value)?;
                    Ok(TraceOption::QueueSize(
                        usize::try_from(n).unwrap_or(usize::MAX),
                    ))
                }
                other => Err(TraceConfigError::UnknownExporterKey(other.to_string())),
            };
        }
        if s.starts_with("triton,") {
            return Err(TraceConfigError::TritonMode);
        }
        let (key, value) = s.split_once('=').ok_or_else(shape)?;
        match key.trim() {
            "mode" => match value.trim() {
                "opentelemetry" => Ok(TraceOption::Mode),
                "triton" => Err(TraceConfigError::TritonMode),
                other => Err(TraceConfigError::Mode(other.to_string())),
            },
            "level" => Ok(TraceOption::Level(parse_level(value)?)),
            "rate" => Ok(TraceOption::Rate(parse_rate(value)?)),
            "count" => Ok(TraceOption::Count(parse_count(value)?)),
            "log_frequency" => Ok(TraceOption::LogFrequency(parse_log_frequency(value)?)),
            other => Err(TraceConfigError::UnknownKey(other.to_string())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(flags: &[&str]) -> Result<TraceConfig, TraceConfigError> {
        let options = flags
            .iter()
            .map(|f| f.parse())
            .collect::<Result<Vec<TraceOption>, _>>()?;
        Ok(TraceConfig::from_options(&options))
    }

    #[test]
    fn tritons_spelling_is_read() {
        let c = parse(&[
            "mode=opentelemetry",
            "opentelemetry,url=collector:4318/v1/traces",
            "opentelemetry,resource=service.name=edge",
            "opentelemetry,resource=zone=a",
            "rate=5",
            "count=-1",
            "level=TIMESTAMPS",
        ])
        .expect("valid");
        assert!(c.enabled);
        assert_eq!((c.rate, c.count), (5, -1));
        assert_eq!(c.url, "http://collector:4318/v1/traces");
        assert_eq!(
            c.resource,
            vec![
                ("service.name".to_string(), "edge".to_string()),
                ("zone".to_string(), "a".to_string())
            ]
        );
    }

    #[test]
    fn tracing_is_off_by_default_as_in_triton() {
        let c = parse(&["rate=1"]).expect("valid");
        assert!(!c.enabled);
        assert_eq!(c.url, "http://localhost:4318/v1/traces");
        assert_eq!(c.resource[0], ("service.name".into(), "osprey".into()));
        assert_eq!(TraceConfig::default().rate, 1000);
    }

    #[test]
    fn bad_values_name_the_key() {
        for (flag, words) in [
            ("mode=triton", "use mode=opentelemetry"),
            ("triton,file=/tmp/t.json", "use mode=opentelemetry"),
            ("rate=0", "rate"),
            ("rate=x", "rate"),
            ("count=-2", "count"),
            ("level=TENSORS", "level"),
            ("opentelemetry,url=", "url"),
            ("opentelemetry,resource=novalue", "resource"),
            ("opentelemetry,colour=red", "colour"),
            ("colour=red", "colour"),
            ("rate", "KEY=VALUE"),
        ] {
            let e = parse(&[flag]).expect_err(flag).to_string();
            assert!(e.contains(words), "{flag}: {e}");
        }
    }
}
