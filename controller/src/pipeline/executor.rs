//! The executor contract, as KFP's launcher keeps it: a task's input values resolved, the
//! `ExecutorInput` JSON built, placeholders in its command and args substituted, and its
//! outputs read back from the executor output file or the per-parameter output files.

use super::error::PipelineError;
use super::spec::{ArtifactSpec, Definitions, ParameterSpec, ParameterType};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The executor output file's name in a task's directory (as kfp's local runner names it).
pub const EXECUTOR_OUTPUT_FILE: &str = "executor_output.json";

/// What a task produced.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TaskOutputs {
    pub parameters: BTreeMap<String, Value>,
    /// Each output artifact as a RuntimeArtifact (`name`, `type`, `uri`, `metadata`); a
    /// list of them for a DAG's collected (`dsl.Collected`) output.
    pub artifacts: BTreeMap<String, Value>,
}

/// The artifacts an artifact value stands for: itself, or each of a list's (a DAG's collected
/// output).
pub fn artifact_list(a: &Value) -> &[Value] {
    match a {
        Value::Array(items) => items,
        one => std::slice::from_ref(one),
    }
}

/// A task's resolved inputs (artifacts as in [`TaskOutputs`]).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TaskInputs {
    pub parameters: BTreeMap<String, Value>,
    pub artifacts: BTreeMap<String, Value>,
}

/// `value` checked (and normalised) as a `ty` value: integers given as whole doubles (the
/// compiler writes `3.0` for an int default) become integers.
pub fn coerce(value: &Value, ty: ParameterType) -> Result<Value, String> {
    let bad = || format!("expected {}, got {value}", ty.name());
    match ty {
        ParameterType::NumberInteger => {
            if let Some(i) = value.as_i64() {
                return Ok(json!(i));
            }
            match value.as_f64() {
                Some(f) if f.fract() == 0.0 && f.abs() < 9.0e15 => Ok(json!(f as i64)),
                _ => Err(bad()),
            }
        }
        ParameterType::NumberDouble => value.as_f64().map(|f| json!(f)).ok_or_else(bad),
        ParameterType::String => value.as_str().map(|s| json!(s)).ok_or_else(bad),
        ParameterType::Boolean => value.as_bool().map(|b| json!(b)).ok_or_else(bad),
        ParameterType::List if value.is_array() => Ok(value.clone()),
        ParameterType::Struct if value.is_object() => Ok(value.clone()),
        ParameterType::TaskFinalStatus if value.is_object() => Ok(value.clone()),
        ParameterType::List | ParameterType::Struct | ParameterType::TaskFinalStatus => Err(bad()),
        ParameterType::Unspecified => Err(format!(
            "parameters of type {} are not supported",
            ty.name()
        )),
    }
}

/// A value given as text (`-p name=value`, a dsl.OutputPath file) read as a `ty` value:
/// numbers and booleans parsed, LIST and STRUCT as JSON, STRING as it is.
pub fn parse_text(text: &str, ty: ParameterType) -> Result<Value, String> {
    let v = match ty {
        ParameterType::String => return Ok(Value::String(text.to_string())),
        ParameterType::NumberInteger => text
            .trim()
            .parse::<i64>()
            .map(|i| json!(i))
            .map_err(|_| format!("expected an integer, got {text:?}"))?,
        ParameterType::NumberDouble => text
            .trim()
            .parse::<f64>()
            .ok()
            .filter(|f| f.is_finite())
            .map(|f| json!(f))
            .ok_or_else(|| format!("expected a number, got {text:?}"))?,
        ParameterType::Boolean => match text.trim().to_ascii_lowercase().as_str() {
            "true" => json!(true),
            "false" => json!(false),
            _ => return Err(format!("expected true or false, got {text:?}")),
        },
        ParameterType::List | ParameterType::Struct => serde_json::from_str(text)
            .map_err(|e| format!("expected {} as JSON: {e}", ty.name()))?,
        ParameterType::TaskFinalStatus | ParameterType::Unspecified => {
            return Err(format!(
                "parameters of type {} are not supported",
                ty.name()
            ))
        }
    };
    coerce(&v, ty)
}

/// Splits `name=value`.
pub fn split_assignment(item: &str) -> Result<(String, String), PipelineError> {
    match item.split_once('=') {
        Some((n, v)) if !n.trim().is_empty() => Ok((n.trim().to_string(), v.to_string())),
        _ => Err(PipelineError::Parameter {
            name: item.to_string(),
            message: "expected -p name=value".into(),
        }),
    }
}

/// The pipeline's input parameters: the given ones parsed per declared type, the others from
/// their defaults; a required one missing or an unknown name is an error.
pub fn pipeline_inputs(
    defs: &BTreeMap<String, ParameterSpec>,
    given: &[(String, String)],
) -> Result<BTreeMap<String, Value>, PipelineError> {
    let mut values = BTreeMap::new();
    for (name, text) in given {
        let spec = defs.get(name).ok_or_else(|| PipelineError::Parameter {
            name: name.clone(),
            message: format!(
                "the pipeline has no such parameter (it has: {})",
                if defs.is_empty() {
                    "none".to_string()
                } else {
                    defs.keys().cloned().collect::<Vec<_>>().join(", ")
                }
            ),
        })?;
        let v =
            parse_text(text, spec.parameter_type).map_err(|message| PipelineError::Parameter {
                name: name.clone(),
                message,
            })?;
        values.insert(name.clone(), v);
    }
    for (name, spec) in defs {
        if values.contains_key(name) {
            continue;
        }
        match &spec.default_value {
            Some(d) => {
                let v =
                    coerce(d, spec.parameter_type).map_err(|message| PipelineError::Parameter {
                        name: name.clone(),
                        message: format!("default value: {message}"),
                    })?;
                values.insert(name.clone(), v);
            }
            None if spec.is_optional => {}
            None => {
                return Err(PipelineError::Parameter {
                    name: name.clone(),
                    message: format!(
                        "required ({}), give it with -p {name}=VALUE",
                        spec.parameter_type.name()
                    ),
                })
            }
        }
    }
    Ok(values)
}

fn runtime_artifact(name: &str, spec: &ArtifactSpec, uri: &Path) -> Value {
    let mut ty = Map::new();
    if let Some(t) = &spec.artifact_type.schema_title {
        ty.insert("schemaTitle".into(), json!(t));
    }
    if let Some(v) = &spec.artifact_type.schema_version {
        ty.insert("schemaVersion".into(), json!(v));
    }
    json!({
        "name": name,
        "type": ty,
        "uri": uri.to_string_lossy(),
        "metadata": {},
    })
}

/// Where a task's output parameter `name` is written (`<task dir>/<name>`).
pub fn output_parameter_file(task_dir: &Path, name: &str) -> PathBuf {
    task_dir.join(name)
}

/// Where a task's output artifact `name` lives (`<task dir>/<name>`, a local path that is also
/// its URI: the SDK's `Artifact.path` is the URI when it has no remote prefix).
pub fn output_artifact_uri(task_dir: &Path, name: &str) -> PathBuf {
    task_dir.join(name)
}

/// The ExecutorInput message, in its JSON form, for a task whose directory is `task_dir`.
pub fn executor_input(outputs: &Definitions, inputs: &TaskInputs, task_dir: &Path) -> Value {
    let params: Map<String, Value> = inputs
        .parameters
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let in_artifacts: Map<String, Value> = inputs
        .artifacts
        .iter()
        .map(|(k, a)| (k.clone(), json!({ "artifacts": artifact_list(a) })))
        .collect();
    let out_params: Map<String, Value> = outputs
        .parameters
        .keys()
        .map(|k| {
            (
                k.clone(),
                json!({ "outputFile": output_parameter_file(task_dir, k).to_string_lossy() }),
            )
        })
        .collect();
    let out_artifacts: Map<String, Value> = outputs
        .artifacts
        .iter()
        .map(|(k, spec)| {
            (
                k.clone(),
                json!({ "artifacts": [runtime_artifact(k, spec, &output_artifact_uri(task_dir, k))] }),
            )
        })
        .collect();
    let mut inputs_obj = Map::new();
    if !params.is_empty() {
        inputs_obj.insert("parameterValues".into(), Value::Object(params));
    }
    if !in_artifacts.is_empty() {
        inputs_obj.insert("artifacts".into(), Value::Object(in_artifacts));
    }
    let mut outputs_obj = Map::new();
    if !out_params.is_empty() {
        outputs_obj.insert("parameters".into(), Value::Object(out_params));
    }
    if !out_artifacts.is_empty() {
        outputs_obj.insert("artifacts".into(), Value::Object(out_artifacts));
    }
    outputs_obj.insert(
        "outputFile".into(),
        json!(task_dir.join(EXECUTOR_OUTPUT_FILE).to_string_lossy()),
    );
    json!({ "inputs": inputs_obj, "outputs": outputs_obj })
}

/// A parameter value as a placeholder puts it in a command line: strings as they are, other
/// values as JSON (`3`, `0.5`, `true`, `[1,2]`).
pub fn value_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// What placeholders resolve against.
pub struct PlaceholderContext<'a> {
    pub task: &'a str,
    pub executor_input: &'a Value,
    pub job_name: &'a str,
    pub job_resource_name: &'a str,
    pub pipeline_root: &'a str,
}

fn quoted_key<'s>(rest: &'s str, prefix: &str) -> Option<(&'s str, &'s str)> {
    let rest = rest.strip_prefix(prefix)?;
    let rest = rest.strip_prefix("['")?;
    let end = rest.find("']")?;
    Some((&rest[..end], &rest[end + 2..]))
}

fn resolve_one(expr: &str, ctx: &PlaceholderContext<'_>) -> Result<String, String> {
    let ei = ctx.executor_input;
    if expr == "$" {
        return Ok(ei.to_string());
    }
    match expr {
        "$.pipeline_job_name" => return Ok(ctx.job_name.to_string()),
        "$.pipeline_job_resource_name" | "$.pipeline_job_uuid" => {
            return Ok(ctx.job_resource_name.to_string())
        }
        "$.pipeline_task_name" | "$.pipeline_task_uuid" => return Ok(ctx.task.to_string()),
        "$.pipeline_root" => return Ok(ctx.pipeline_root.to_string()),
        "$.outputs.output_file" => return value_at(ei, &["outputs", "outputFile"]).map(value_text),
        _ => {}
    }
    if let Some((key, rest)) = quoted_key(expr, "$.inputs.parameters") {
        return match rest {
            "" => value_at(ei, &["inputs", "parameterValues", key])
                .map(value_text)
                .map_err(|_| format!("no input parameter '{key}' (not given and no default)")),
            _ => Err(format!("unknown field {rest:?}")),
        };
    }
    if let Some((key, rest)) = quoted_key(expr, "$.outputs.parameters") {
        return match rest {
            ".output_file" => value_at(ei, &["outputs", "parameters", key, "outputFile"])
                .map(value_text)
                .map_err(|_| format!("no output parameter '{key}'")),
            _ => Err(format!("unknown field {rest:?}")),
        };
    }
    for (side, prefix) in [
        ("inputs", "$.inputs.artifacts"),
        ("outputs", "$.outputs.artifacts"),
    ] {
        if let Some((key, rest)) = quoted_key(expr, prefix) {
            let artifact = ei
                .get(side)
                .and_then(|s| s.get("artifacts"))
                .and_then(|a| a.get(key))
                .and_then(|a| a.get("artifacts"))
                .and_then(|a| a.get(0))
                .ok_or_else(|| format!("no {} artifact '{key}'", &side[..side.len() - 1]))?;
            return match rest {
                ".path" | ".uri" => artifact
                    .get("uri")
                    .map(value_text)
                    .ok_or_else(|| format!("artifact '{key}' has no uri")),
                ".metadata" => Ok(artifact.get("metadata").map(value_text).unwrap_or_default()),
                _ => Err(format!("unknown field {rest:?}")),
            };
        }
    }
    Err("unknown placeholder".into())
}

fn value_at<'v>(v: &'v Value, path: &[&str]) -> Result<&'v Value, String> {
    let mut cur = v;
    for p in path {
        cur = cur.get(*p).ok_or_else(|| format!("no {p}"))?;
    }
    Ok(cur)
}

fn is_structured(s: &str) -> bool {
    let t = s.trim_start();
    t.starts_with("{\"IfPresent\"") || t.starts_with("{\"Concat\"")
}

/// One command-line item of a container as the arguments it becomes: `{{$...}}` placeholders
/// substituted, and container components' structured placeholders expanded —
/// `{"IfPresent": {"InputName": x, "Then": [...], "Else": [...]}}` (zero or more arguments,
/// by whether input `x` has a value) and `{"Concat": [...]}` (one argument), nested as the SDK
/// writes them.
pub fn expand_arg(s: &str, ctx: &PlaceholderContext<'_>) -> Result<Vec<String>, PipelineError> {
    if !is_structured(s) {
        return Ok(vec![substitute(s, ctx)?]);
    }
    let v: Value = serde_json::from_str(s).map_err(|e| PipelineError::Placeholder {
        task: ctx.task.to_string(),
        placeholder: s.to_string(),
        message: format!("not JSON: {e}"),
    })?;
    expand_value(&v, ctx, s)
}

fn expand_value(
    v: &Value,
    ctx: &PlaceholderContext<'_>,
    whole: &str,
) -> Result<Vec<String>, PipelineError> {
    let bad = |message: String| PipelineError::Placeholder {
        task: ctx.task.to_string(),
        placeholder: whole.to_string(),
        message,
    };
    match v {
        Value::String(s) => expand_arg(s, ctx),
        Value::Array(items) => {
            let mut out = Vec::new();
            for i in items {
                out.extend(expand_value(i, ctx, whole)?);
            }
            Ok(out)
        }
        Value::Object(m) => {
            if let Some(p) = m.get("IfPresent") {
                let input = p
                    .get("InputName")
                    .and_then(|n| n.as_str())
                    .ok_or_else(|| bad("IfPresent without InputName".into()))?;
                let inputs = ctx.executor_input.get("inputs");
                let present = inputs
                    .and_then(|i| i.get("parameterValues"))
                    .and_then(|p| p.get(input))
                    .is_some()
                    || inputs
                        .and_then(|i| i.get("artifacts"))
                        .and_then(|a| a.get(input))
                        .is_some();
                match p.get(if present { "Then" } else { "Else" }) {
                    Some(branch) => expand_value(branch, ctx, whole),
                    None => Ok(Vec::new()),
                }
            } else if let Some(items) = m.get("Concat") {
                let parts = expand_value(items, ctx, whole)?;
                Ok(vec![parts.concat()])
            } else {
                Err(bad("unknown structured placeholder".into()))
            }
        }
        other => Ok(vec![value_text(other)]),
    }
}

/// `s` with every `{{$...}}` placeholder replaced. Structured placeholders
/// (`{"IfPresent": ...}`, `{"Concat": ...}`) need [`expand_arg`], which may yield several
/// arguments or none.
pub fn substitute(s: &str, ctx: &PlaceholderContext<'_>) -> Result<String, PipelineError> {
    if is_structured(s) {
        return Err(PipelineError::Placeholder {
            task: ctx.task.to_string(),
            placeholder: s.to_string(),
            message: "a structured placeholder expands to any number of arguments: expand_arg"
                .into(),
        });
    }
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(start) = rest.find("{{$") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after.find("}}").ok_or_else(|| PipelineError::Placeholder {
            task: ctx.task.to_string(),
            placeholder: rest[start..].to_string(),
            message: "unterminated".into(),
        })?;
        let expr = &after[..end];
        let value = resolve_one(expr, ctx).map_err(|message| PipelineError::Placeholder {
            task: ctx.task.to_string(),
            placeholder: format!("{{{{{expr}}}}}"),
            message,
        })?;
        out.push_str(&value);
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    Ok(out)
}

/// The task's outputs: `parameterValues` and `artifacts` of the executor output file when
/// there is one, else (and for parameters it lacks) the per-parameter output files; each value
/// checked against its declared type. A declared output that was not written is an error.
pub fn read_outputs(
    task: &str,
    outputs: &Definitions,
    executor_input: &Value,
    task_dir: &Path,
) -> Result<TaskOutputs, PipelineError> {
    let path = task_dir.join(EXECUTOR_OUTPUT_FILE);
    let exec_out: Value = match std::fs::read_to_string(&path) {
        Ok(text) => serde_json::from_str(&text)
            .map_err(|e| PipelineError::task(task, format!("{}: not JSON: {e}", path.display())))?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => json!({}),
        Err(e) => return Err(PipelineError::Io(format!("{}: {e}", path.display()))),
    };
    let mut result = TaskOutputs::default();
    for (name, spec) in &outputs.parameters {
        let ty = spec.parameter_type;
        let value = match exec_out.get("parameterValues").and_then(|p| p.get(name)) {
            Some(v) => coerce(v, ty),
            None => {
                let file = output_parameter_file(task_dir, name);
                match std::fs::read_to_string(&file) {
                    Ok(text) => parse_text(&text, ty),
                    Err(_) => {
                        return Err(PipelineError::task(
                            task,
                            format!(
                                "output parameter '{name}' was not written (neither in {} nor \
                                 in {})",
                                path.display(),
                                file.display()
                            ),
                        ))
                    }
                }
            }
        }
        .map_err(|m| PipelineError::task(task, format!("output parameter '{name}': {m}")))?;
        result.parameters.insert(name.clone(), value);
    }
    for name in outputs.artifacts.keys() {
        let declared = executor_input
            .get("outputs")
            .and_then(|o| o.get("artifacts"))
            .and_then(|a| a.get(name))
            .and_then(|a| a.get("artifacts"))
            .and_then(|a| a.get(0))
            .cloned()
            .unwrap_or(Value::Null);
        let mut artifact = declared;
        // The executor output may update the artifact (metadata, or a new uri).
        if let Some(written) = exec_out
            .get("artifacts")
            .and_then(|a| a.get(name))
            .and_then(|a| a.get("artifacts"))
            .and_then(|a| a.get(0))
        {
            if let (Some(obj), Some(w)) = (artifact.as_object_mut(), written.as_object()) {
                for (k, v) in w {
                    if k == "uri" || k == "metadata" {
                        obj.insert(k.clone(), v.clone());
                    }
                }
            }
        }
        result.artifacts.insert(name.clone(), artifact);
    }
    Ok(result)
}
