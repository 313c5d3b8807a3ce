//! Katib's `metricsCollectorSpec`, checked: where a trial's metrics come from (`StdOut`, the
//! default: the primary container's output; `File`: a file it writes, TEXT lines or JSON
//! lines) and how they are read (`source.filter.metricsFormat`: regular expressions with two
//! groups, name and value; Katib's `name=value` format by default).

use super::metrics::parse_line;
use super::space::SpaceError;
use regex::Regex;
use serde_json::Value;
use std::path::PathBuf;

/// Katib's default file of the File collector.
pub const DEFAULT_FILE: &str = "/var/log/katib/metrics.log";

/// Where the metrics are read.
#[derive(Debug, Clone, PartialEq)]
pub enum Source {
    StdOut,
    /// A file the trial writes; `json`: one JSON object per line (`{"accuracy": 0.9}`).
    File {
        path: PathBuf,
        json: bool,
    },
}

/// A checked metrics collector.
#[derive(Debug, Clone)]
pub struct Collector {
    pub source: Source,
    /// Custom `metricsFormat` patterns (empty: Katib's `name=value`).
    pub filters: Vec<Regex>,
}

impl Default for Collector {
    fn default() -> Self {
        Collector {
            source: Source::StdOut,
            filters: Vec::new(),
        }
    }
}

fn bad(field: &str, message: impl Into<String>) -> SpaceError {
    SpaceError {
        field: field.to_string(),
        message: message.into(),
    }
}

impl Collector {
    /// From `spec.metricsCollectorSpec` (None: StdOut).
    pub fn from_spec(spec: Option<&Value>) -> Result<Collector, SpaceError> {
        let at = "spec.metricsCollectorSpec";
        let Some(spec) = spec.filter(|v| !v.is_null()) else {
            return Ok(Collector::default());
        };
        let kind = spec
            .pointer("/collector/kind")
            .and_then(Value::as_str)
            .unwrap_or("StdOut");
        let mut filters = Vec::new();
        if let Some(list) = spec.pointer("/source/filter/metricsFormat") {
            let list = list.as_array().ok_or_else(|| {
                bad(
                    &format!("{at}.source.filter.metricsFormat"),
                    "must be a list of regular expressions",
                )
            })?;
            for (i, f) in list.iter().enumerate() {
                let field = format!("{at}.source.filter.metricsFormat[{i}]");
                let text = f.as_str().ok_or_else(|| bad(&field, "must be a string"))?;
                let re = Regex::new(text).map_err(|e| bad(&field, e.to_string()))?;
                if re.captures_len() < 3 {
                    return Err(bad(
                        &field,
                        "needs two groups: the metric's name and its value",
                    ));
                }
                filters.push(re);
            }
        }
        let source = match kind {
            "StdOut" => Source::StdOut,
            "File" => {
                let fs = spec.pointer("/source/fileSystemPath");
                let path = fs
                    .and_then(|f| f.get("path"))
                    .and_then(Value::as_str)
                    .unwrap_or(DEFAULT_FILE);
                if !path.starts_with('/') {
                    return Err(bad(
                        &format!("{at}.source.fileSystemPath.path"),
                        format!("must be absolute (got {path:?})"),
                    ));
                }
                if let Some(k) = fs.and_then(|f| f.get("kind")).and_then(Value::as_str) {
                    if k != "File" {
                        return Err(bad(
                            &format!("{at}.source.fileSystemPath.kind"),
                            format!("only File is supported for the File collector (got {k:?})"),
                        ));
                    }
                }
                let json = match fs.and_then(|f| f.get("format")).and_then(Value::as_str) {
                    None | Some("TEXT") => false,
                    Some("JSON") => true,
                    Some(other) => {
                        return Err(bad(
                            &format!("{at}.source.fileSystemPath.format"),
                            format!("must be TEXT or JSON (got {other:?})"),
                        ))
                    }
                };
                if json && !filters.is_empty() {
                    return Err(bad(
                        &format!("{at}.source.filter.metricsFormat"),
                        "filters apply to TEXT, not JSON",
                    ));
                }
                Source::File {
                    path: PathBuf::from(path),
                    json,
                }
            }
            other => {
                return Err(bad(
                    &format!("{at}.collector.kind"),
                    format!("{other:?} is not supported (StdOut, File)"),
                ))
            }
        };
        Ok(Collector { source, filters })
    }

    /// The metrics one line of the source reports, in order.
    pub fn parse(&self, line: &str) -> Vec<(String, f64)> {
        if let Source::File { json: true, .. } = self.source {
            return parse_json_line(line);
        }
        if self.filters.is_empty() {
            return parse_line(line);
        }
        let mut out = Vec::new();
        for re in &self.filters {
            for c in re.captures_iter(line) {
                let (Some(name), Some(value)) = (c.get(1), c.get(2)) else {
                    continue;
                };
                if let Ok(v) = value.as_str().trim().parse::<f64>() {
                    if v.is_finite() {
                        out.push((name.as_str().trim().to_string(), v));
                    }
                }
            }
        }
        out
    }

    /// The flags `osprey tune collect` takes for this collector.
    pub fn args(&self) -> Vec<String> {
        let mut out = Vec::new();
        if let Source::File { path, json } = &self.source {
            out.push(format!("--file={}", path.display()));
            out.push(format!("--format={}", if *json { "JSON" } else { "TEXT" }));
        }
        for f in &self.filters {
            out.push(format!("--filter={}", f.as_str()));
        }
        out
    }
}

/// A JSON line's numeric members (numbers, or strings holding numbers), `timestamp` aside.
pub fn parse_json_line(line: &str) -> Vec<(String, f64)> {
    let Ok(Value::Object(m)) = serde_json::from_str::<Value>(line.trim()) else {
        return Vec::new();
    };
    m.iter()
        .filter(|(k, _)| k.as_str() != "timestamp")
        .filter_map(|(k, v)| {
            let x = match v {
                Value::Number(n) => n.as_f64(),
                Value::String(s) => s.trim().parse::<f64>().ok(),
                _ => None,
            }?;
            x.is_finite().then(|| (k.clone(), x))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stdout_by_default_and_file_formats() {
        let c = Collector::from_spec(None).expect("default");
        assert_eq!(c.source, Source::StdOut);
        assert_eq!(
            c.parse("epoch 3 accuracy=0.5"),
            vec![("accuracy".into(), 0.5)]
        );
        let spec = serde_json::json!({"collector": {"kind": "File"},
            "source": {"fileSystemPath": {"path": "/tmp/m.json", "kind": "File", "format": "JSON"}}});
        let c = Collector::from_spec(Some(&spec)).expect("file json");
        assert_eq!(
            c.source,
            Source::File {
                path: "/tmp/m.json".into(),
                json: true
            }
        );
        assert_eq!(
            c.parse(r#"{"accuracy": "0.75", "loss": 0.25, "timestamp": "2026"}"#),
            vec![("accuracy".into(), 0.75), ("loss".into(), 0.25)]
        );
        assert!(c.parse("accuracy=0.5").is_empty(), "not JSON");
        let spec = serde_json::json!({"collector": {"kind": "StdOut"},
            "source": {"filter": {"metricsFormat": [r"\{(\w+): (-?\d+(?:\.\d+)?)\}"]}}});
        let c = Collector::from_spec(Some(&spec)).expect("filter");
        assert_eq!(
            c.parse("{accuracy: 0.5} {loss: -2}"),
            vec![("accuracy".into(), 0.5), ("loss".into(), -2.0)]
        );
        assert!(
            c.parse("accuracy=0.5").is_empty(),
            "the filter replaces name=value"
        );
        assert_eq!(c.args().len(), 1);
    }

    #[test]
    fn bad_collectors_name_the_field() {
        for (spec, field) in [
            (
                serde_json::json!({"collector": {"kind": "PrometheusMetric"}}),
                "spec.metricsCollectorSpec.collector.kind",
            ),
            (
                serde_json::json!({"collector": {"kind": "File"},
                    "source": {"fileSystemPath": {"path": "rel/m.log"}}}),
                "spec.metricsCollectorSpec.source.fileSystemPath.path",
            ),
            (
                serde_json::json!({"collector": {"kind": "File"},
                    "source": {"fileSystemPath": {"path": "/m", "format": "XML"}}}),
                "spec.metricsCollectorSpec.source.fileSystemPath.format",
            ),
            (
                serde_json::json!({"source": {"filter": {"metricsFormat": ["(unclosed"]}}}),
                "spec.metricsCollectorSpec.source.filter.metricsFormat[0]",
            ),
            (
                serde_json::json!({"source": {"filter": {"metricsFormat": ["(\\w+)=.*"]}}}),
                "spec.metricsCollectorSpec.source.filter.metricsFormat[0]",
            ),
        ] {
            let e = Collector::from_spec(Some(&spec)).expect_err(field);
            assert_eq!(e.field, field, "{e}");
        }
    }
}
