//! The sampling settings a request reads (atomics: an untraced request costs a load or two and
//! one counter increment), and their changes through Triton's trace setting API: server-wide,
//! and per model (a model's setting not given follows the server's).

use super::config::{parse_count, parse_level, parse_log_frequency, parse_rate};
use crate::error::ServerError;
use serde_json::{json, Value};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering::Relaxed};

/// One set of settings, as Triton's API shows them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Settings {
    pub enabled: bool,
    pub rate: u64,
    /// Traces left; -1: no limit.
    pub count: i64,
    pub log_frequency: u64,
}

impl Settings {
    /// Triton's JSON: `trace_level` an array of strings, the others strings.
    pub fn to_json(self) -> Value {
        json!({
            "trace_mode": "opentelemetry",
            "trace_level": [if self.enabled { "TIMESTAMPS" } else { "OFF" }],
            "trace_rate": self.rate.to_string(),
            "trace_count": self.count.to_string(),
            "log_frequency": self.log_frequency.to_string(),
        })
    }
}

/// Settings read by every request.
#[derive(Debug)]
pub struct Live {
    enabled: AtomicBool,
    rate: AtomicU64,
    count: AtomicI64,
    log_frequency: AtomicU64,
    /// Requests seen while enabled.
    seen: AtomicU64,
}

impl Live {
    pub fn new(s: Settings) -> Live {
        Live {
            enabled: AtomicBool::new(s.enabled),
            rate: AtomicU64::new(s.rate),
            count: AtomicI64::new(s.count),
            log_frequency: AtomicU64::new(s.log_frequency),
            seen: AtomicU64::new(0),
        }
    }

    /// Whether this request is traced: one in `rate` while enabled and traces are left.
    pub fn sample(&self) -> bool {
        if !self.enabled.load(Relaxed) {
            return false;
        }
        let n = self.seen.fetch_add(1, Relaxed);
        if !n.is_multiple_of(self.rate.load(Relaxed).max(1)) {
            return false;
        }
        self.count
            .fetch_update(Relaxed, Relaxed, |c| match c {
                0 => None,
                c if c < 0 => Some(c),
                c => Some(c - 1),
            })
            .is_ok()
    }

    pub fn get(&self) -> Settings {
        Settings {
            enabled: self.enabled.load(Relaxed),
            rate: self.rate.load(Relaxed),
            count: self.count.load(Relaxed),
            log_frequency: self.log_frequency.load(Relaxed),
        }
    }

    pub fn set(&self, s: Settings) {
        self.rate.store(s.rate, Relaxed);
        self.count.store(s.count, Relaxed);
        self.log_frequency.store(s.log_frequency, Relaxed);
        self.enabled.store(s.enabled, Relaxed);
    }
}

/// What a POST asks of one setting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Change<T> {
    #[default]
    Keep,
    /// `null`: back to the default (the start-up value, or for a model the server's).
    Clear,
    Set(T),
}

impl<T: Copy> Change<T> {
    /// The setting after the change, `default` for a cleared one.
    pub fn apply(self, current: Option<T>, default: Option<T>) -> Option<T> {
        match self {
            Change::Keep => current,
            Change::Clear => default,
            Change::Set(v) => Some(v),
        }
    }

    /// The setting after the change, where there always is one.
    pub fn resolve(self, current: T, default: T) -> T {
        self.apply(Some(current), Some(default)).unwrap_or(default)
    }
}

/// A POSTed trace setting body, parsed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Update {
    pub enabled: Change<bool>,
    pub rate: Change<u64>,
    pub count: Change<i64>,
    pub log_frequency: Change<u64>,
}

/// Settings given for one model; those not given follow the server's.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Overrides {
    pub enabled: Option<bool>,
    pub rate: Option<u64>,
    pub count: Option<i64>,
    pub log_frequency: Option<u64>,
}

impl Overrides {
    pub fn apply(self, u: Update) -> Overrides {
        Overrides {
            enabled: u.enabled.apply(self.enabled, None),
            rate: u.rate.apply(self.rate, None),
            count: u.count.apply(self.count, None),
            log_frequency: u.log_frequency.apply(self.log_frequency, None),
        }
    }

    pub fn over(self, s: Settings) -> Settings {
        Settings {
            enabled: self.enabled.unwrap_or(s.enabled),
            rate: self.rate.unwrap_or(s.rate),
            count: self.count.unwrap_or(s.count),
            log_frequency: self.log_frequency.unwrap_or(s.log_frequency),
        }
    }

    pub fn is_empty(self) -> bool {
        self == Overrides::default()
    }
}

/// Applies `u` to the server's settings, `initial` being the start-up ones.
pub fn update_global(s: Settings, initial: Settings, u: Update) -> Settings {
    Settings {
        enabled: u.enabled.resolve(s.enabled, initial.enabled),
        rate: u.rate.resolve(s.rate, initial.rate),
        count: u.count.resolve(s.count, initial.count),
        log_frequency: u
            .log_frequency
            .resolve(s.log_frequency, initial.log_frequency),
    }
}

/// Parses a POSTed body: any of `trace_level` (array of strings, or one string),
/// `trace_rate`, `trace_count`, `log_frequency` (strings or numbers), each possibly `null`.
pub fn parse_update(body: &Value) -> Result<Update, ServerError> {
    let bad = |m: String| ServerError::BadRequest(m);
    let object = body
        .as_object()
        .ok_or_else(|| bad("the trace setting body must be a JSON object".into()))?;
    let mut u = Update::default();
    for (key, value) in object {
        match key.as_str() {
            "trace_level" => u.enabled = change(value, key, level)?,
            "trace_rate" => u.rate = change(value, key, |t| parse_rate(t).map_err(refused))?,
            "trace_count" => u.count = change(value, key, |t| parse_count(t).map_err(refused))?,
            "log_frequency" => {
                u.log_frequency = change(value, key, |t| parse_log_frequency(t).map_err(refused))?
            }
            "trace_mode" if value.as_str() == Some("opentelemetry") => {}
            other => {
                return Err(bad(format!(
                    "unknown trace setting '{other}' (settings: trace_level, trace_rate, \
                     trace_count, log_frequency)"
                )))
            }
        }
    }
    Ok(u)
}

/// TIMESTAMPS (on) or OFF.
fn level(text: &str) -> Result<bool, ServerError> {
    parse_level(text).map_err(refused)
}

fn refused(e: super::config::TraceConfigError) -> ServerError {
    ServerError::BadRequest(format!("trace setting: {e}"))
}

fn change<T>(
    value: &Value,
    key: &str,
    parse: impl Fn(&str) -> Result<T, ServerError>,
) -> Result<Change<T>, ServerError> {
    let text = match value {
        Value::Null => return Ok(Change::Clear),
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        // trace_level: ["TIMESTAMPS"]; several levels: on if any is on.
        Value::Array(items) if !items.is_empty() => {
            let mut on = None;
            for item in items {
                let Some(t) = item.as_str() else {
                    return Err(wrong(key, value));
                };
                // Several levels: the last one counts.
                on = Some(parse(t)?);
            }
            return on.map(Change::Set).ok_or_else(|| wrong(key, value));
        }
        _ => return Err(wrong(key, value)),
    };
    parse(&text).map(Change::Set)
}

fn wrong(key: &str, value: &Value) -> ServerError {
    ServerError::BadRequest(format!(
        "trace setting '{key}': {value} is not a valid value"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    const START: Settings = Settings {
        enabled: false,
        rate: 1000,
        count: -1,
        log_frequency: 0,
    };

    #[test]
    fn one_in_rate_is_sampled_while_count_lasts() {
        let l = Live::new(Settings {
            enabled: true,
            rate: 2,
            count: 2,
            ..START
        });
        let picks: Vec<bool> = (0..8).map(|_| l.sample()).collect();
        assert_eq!(
            picks,
            [true, false, true, false, false, false, false, false]
        );
        assert_eq!(l.get().count, 0);
        let off = Live::new(START);
        assert!(!(0..2000).any(|_| off.sample()));
    }

    #[test]
    fn updates_parse_tritons_json_and_null_restores() {
        let u = parse_update(
            &json!({"trace_level": ["TIMESTAMPS"], "trace_rate": "1", "trace_count": 5}),
        )
        .expect("valid");
        let s = update_global(START, START, u);
        assert_eq!(
            s,
            Settings {
                enabled: true,
                rate: 1,
                count: 5,
                log_frequency: 0
            }
        );
        let back = update_global(
            s,
            START,
            parse_update(&json!({"trace_rate": null})).expect("null"),
        );
        assert_eq!(back.rate, 1000);
        assert!(back.enabled);
        for bad in [
            json!({"trace_rate": "0"}),
            json!({"trace_level": ["TENSORS"]}),
            json!({"trace_level": []}),
            json!({"trace_file": "x"}),
            json!([1]),
        ] {
            assert!(parse_update(&bad).is_err(), "{bad}");
        }
        let model = Overrides::default().apply(u);
        assert_eq!(model.over(START).rate, 1);
        let cleared = model.apply(
            parse_update(&json!({"trace_level": null, "trace_rate": null, "trace_count": null}))
                .expect("nulls"),
        );
        assert!(cleared.is_empty());
    }
}
