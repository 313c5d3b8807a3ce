//! A Trial's run resource made ready to create: named after the Trial and owned by it, every
//! pod template holding the primary container labelled with the trial, and that container's
//! command wrapped by `osprey tune collect` (the binary copied in by an init container from
//! the controller's image, as for pipeline task pods), which reports the observation through
//! the termination message. Works for any kind whose pod templates are found in the object: a
//! batch Job, a Pod, a PyTorchJob or TFJob (each replica's template), ...

use crate::pipeline::kube::pod::{LAUNCHER_DIR, LAUNCHER_PATH};
use crate::tuning::collect::rule_arg;
use crate::tuning::collector::Collector;
use crate::tuning::trial::EXPERIMENT_LABEL;
use crate::tuning::trial::{Trial, TRIAL_LABEL};
use serde_json::{json, Map, Value};

/// The init container and volume that bring the collector in.
pub const COLLECTOR_INIT: &str = "osprey-metrics-collector";
pub const COLLECTOR_VOLUME: &str = "osprey-metrics-collector";

/// Katib's default conditions per kind: (success, failure). A Pod has none (its phase decides).
pub fn default_conditions(api_version: &str, kind: &str) -> Option<(String, String)> {
    let cond = |t: &str| format!(r#"status.conditions.#(type=="{t}")#|#(status=="True")#"#);
    match (api_version, kind) {
        ("batch/v1", "Job") => Some((cond("Complete"), cond("Failed"))),
        (v, _) if v.starts_with("kubeflow.org/") || v.starts_with("trainer.kubeflow.org/") => {
            Some((cond("Succeeded"), cond("Failed")))
        }
        _ => None,
    }
}

/// The pod specs (objects with `containers`) in `v` that hold a container named `primary`,
/// with the object holding each (whose `metadata` labels the pods).
fn visit<'v>(v: &'v mut Value, primary: &str, found: &mut Vec<&'v mut Value>) {
    let holds_primary = |o: &Map<String, Value>| {
        let spec = o.get("spec");
        spec.and_then(|s| s.get("containers"))
            .and_then(Value::as_array)
            .is_some_and(|cs| {
                cs.iter()
                    .any(|c| c.get("name").and_then(Value::as_str) == Some(primary))
            })
    };
    match v {
        Value::Object(o) if holds_primary(o) => found.push(v),
        Value::Object(o) => {
            for (_, x) in o.iter_mut() {
                visit(x, primary, found);
            }
        }
        Value::Array(a) => {
            for x in a.iter_mut() {
                visit(x, primary, found);
            }
        }
        _ => {}
    }
}

/// Why a run cannot be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RunSpecError {
    #[error("spec.runSpec: {0}")]
    Invalid(String),
}

/// The run object for `trial` (its runSpec with name, namespace, owner, labels and the
/// collector).
pub fn prepare(
    trial: &Trial,
    collector: &Collector,
    metrics: &[String],
    average_steps: Option<usize>,
    image: &str,
) -> Result<Value, RunSpecError> {
    let bad = |m: String| RunSpecError::Invalid(m);
    let mut run = trial
        .spec
        .run_spec
        .clone()
        .ok_or_else(|| bad("required".into()))?;
    let name = trial.metadata.name.clone().unwrap_or_default();
    let uid = trial.metadata.uid.clone().unwrap_or_default();
    let experiment = trial
        .metadata
        .labels
        .as_ref()
        .and_then(|l| l.get(EXPERIMENT_LABEL))
        .cloned()
        .unwrap_or_default();
    let primary = trial.spec.primary_container_name.clone();
    {
        let obj = run
            .as_object_mut()
            .ok_or_else(|| bad("must be an object".into()))?;
        let meta = obj
            .entry("metadata")
            .or_insert_with(|| json!({}))
            .as_object_mut()
            .ok_or_else(|| bad("metadata must be an object".into()))?;
        meta.insert("name".into(), json!(name));
        if let Some(ns) = &trial.metadata.namespace {
            meta.insert("namespace".into(), json!(ns));
        }
        meta.remove("generateName");
        meta.insert(
            "ownerReferences".into(),
            json!([{"apiVersion": "kubeflow.org/v1beta1", "kind": "Trial", "name": name,
                    "uid": uid, "controller": true, "blockOwnerDeletion": true}]),
        );
        let labels = meta
            .entry("labels")
            .or_insert_with(|| json!({}))
            .as_object_mut()
            .ok_or_else(|| bad("metadata.labels must be an object".into()))?;
        labels.insert(TRIAL_LABEL.into(), json!(name));
        labels.insert(EXPERIMENT_LABEL.into(), json!(experiment));
    }
    let mut wrap: Vec<String> = vec![LAUNCHER_PATH.into(), "tune".into(), "collect".into()];
    wrap.extend(metrics.iter().map(|m| format!("--metric={m}")));
    wrap.extend(collector.args());
    wrap.extend(
        trial
            .spec
            .early_stopping_rules
            .iter()
            .map(|r| format!("--rule={}", rule_arg(r))),
    );
    if let Some(n) = average_steps {
        wrap.push(format!("--average-steps={n}"));
    }
    wrap.push("--".into());
    let mut templates = Vec::new();
    visit(&mut run, &primary, &mut templates);
    if templates.is_empty() {
        return Err(bad(format!(
            "no pod template with a container named {primary:?} (primaryContainerName)"
        )));
    }
    for holder in templates {
        let Some(h) = holder.as_object_mut() else {
            continue;
        };
        // The pods carry the trial's labels (a Job's template, a Pod itself).
        if let Some(labels) = h
            .entry("metadata")
            .or_insert_with(|| json!({}))
            .as_object_mut()
            .map(|m| m.entry("labels").or_insert_with(|| json!({})))
            .and_then(Value::as_object_mut)
        {
            labels.insert(TRIAL_LABEL.into(), json!(name));
            labels.insert(EXPERIMENT_LABEL.into(), json!(experiment));
        }
        let Some(spec) = h.get_mut("spec").and_then(Value::as_object_mut) else {
            continue;
        };
        let Some(c) = spec
            .get_mut("containers")
            .and_then(Value::as_array_mut)
            .and_then(|cs| {
                cs.iter_mut()
                    .find(|c| c.get("name").and_then(Value::as_str) == Some(primary.as_str()))
            })
            .and_then(Value::as_object_mut)
        else {
            continue;
        };
        let strings = |v: Option<&Value>| -> Vec<String> {
            v.and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .filter_map(|x| x.as_str().map(String::from))
                        .collect()
                })
                .unwrap_or_default()
        };
        let command = strings(c.get("command"));
        if command.is_empty() {
            return Err(bad(format!(
                "the primary container {primary:?} has no command: the metrics collector wraps \
                 command + args (an image's entrypoint cannot be known here)"
            )));
        }
        let mut argv = wrap.clone();
        argv.extend(command);
        argv.extend(strings(c.get("args")));
        c.insert("command".into(), json!(argv));
        c.remove("args");
        c.insert(
            "terminationMessagePath".into(),
            json!("/dev/termination-log"),
        );
        c.insert(
            "terminationMessagePolicy".into(),
            json!("FallbackToLogsOnError"),
        );
        let mounts = c
            .entry("volumeMounts")
            .or_insert_with(|| json!([]))
            .as_array_mut()
            .ok_or_else(|| bad("volumeMounts must be a list".into()))?;
        mounts.push(json!({"name": COLLECTOR_VOLUME, "mountPath": LAUNCHER_DIR, "readOnly": true}));
        let init = json!({
            "name": COLLECTOR_INIT,
            "image": image,
            "command": ["osprey", "pipeline", "launch", "--copy-to", LAUNCHER_PATH],
            "volumeMounts": [{"name": COLLECTOR_VOLUME, "mountPath": LAUNCHER_DIR}],
            "terminationMessagePolicy": "FallbackToLogsOnError",
        });
        spec.entry("initContainers")
            .or_insert_with(|| json!([]))
            .as_array_mut()
            .ok_or_else(|| bad("initContainers must be a list".into()))?
            .push(init);
        spec.entry("volumes")
            .or_insert_with(|| json!([]))
            .as_array_mut()
            .ok_or_else(|| bad("volumes must be a list".into()))?
            .push(json!({"name": COLLECTOR_VOLUME, "emptyDir": {}}));
    }
    Ok(run)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tuning::trial::{EarlyStoppingRule, TrialSpec};

    fn trial(run: Value) -> Trial {
        let mut t = Trial::new(
            "exp-0001",
            TrialSpec {
                run_spec: Some(run),
                primary_container_name: "training-container".into(),
                early_stopping_rules: vec![EarlyStoppingRule {
                    name: "accuracy".into(),
                    value: "0.5".into(),
                    comparison: "less".into(),
                    start_step: 4,
                }],
                ..TrialSpec::default()
            },
        );
        t.metadata.namespace = Some("ns".into());
        t.metadata.uid = Some("uid-1".into());
        t.metadata.labels = Some([(EXPERIMENT_LABEL.to_string(), "exp".to_string())].into());
        t
    }

    #[test]
    fn a_jobs_primary_container_is_wrapped_and_labelled() {
        let job = json!({"apiVersion": "batch/v1", "kind": "Job", "spec": {"template": {"spec": {
            "containers": [{"name": "training-container", "image": "python:3.11",
                            "command": ["python3", "train.py"], "args": ["--lr=0.1"]},
                           {"name": "sidecar", "image": "busybox", "command": ["sleep"]}],
            "restartPolicy": "Never"}}}});
        let run = prepare(
            &trial(job),
            &Collector::default(),
            &["accuracy".into(), "loss".into()],
            Some(4),
            "osprey:test",
        )
        .expect("prepared");
        assert_eq!(run.pointer("/metadata/name"), Some(&json!("exp-0001")));
        assert_eq!(
            run.pointer("/metadata/ownerReferences/0/uid"),
            Some(&json!("uid-1"))
        );
        assert_eq!(
            run.pointer("/spec/template/metadata/labels/katib.kubeflow.org~1trial"),
            Some(&json!("exp-0001"))
        );
        let c = run
            .pointer("/spec/template/spec/containers/0")
            .expect("primary");
        let cmd: Vec<&str> = c["command"]
            .as_array()
            .expect("list")
            .iter()
            .filter_map(Value::as_str)
            .collect();
        assert_eq!(
            cmd,
            [
                LAUNCHER_PATH,
                "tune",
                "collect",
                "--metric=accuracy",
                "--metric=loss",
                "--rule=accuracy:less:0.5:4",
                "--average-steps=4",
                "--",
                "python3",
                "train.py",
                "--lr=0.1"
            ]
        );
        assert!(c.get("args").is_none());
        let other = run.pointer("/spec/template/spec/containers/1/command/0");
        assert_eq!(other, Some(&json!("sleep")), "other containers untouched");
        assert_eq!(
            run.pointer("/spec/template/spec/initContainers/0/image"),
            Some(&json!("osprey:test"))
        );
    }

    #[test]
    fn every_replica_template_and_plain_pods_and_errors() {
        let pj = json!({"apiVersion": "kubeflow.org/v1", "kind": "PyTorchJob", "spec": {"pytorchReplicaSpecs": {
            "Master": {"template": {"spec": {"containers": [{"name": "training-container", "command": ["a"]}]}}},
            "Worker": {"template": {"spec": {"containers": [{"name": "training-container", "command": ["a"]}]}}}}}});
        let run =
            prepare(&trial(pj), &Collector::default(), &["a".into()], None, "i").expect("prepared");
        for r in ["Master", "Worker"] {
            let p = format!("/spec/pytorchReplicaSpecs/{r}/template/spec/containers/0/command/0");
            assert_eq!(run.pointer(&p), Some(&json!(LAUNCHER_PATH)), "{r}");
        }
        let pod = json!({"apiVersion": "v1", "kind": "Pod", "spec": {"containers": [
            {"name": "training-container", "command": ["x"]}]}});
        let run = prepare(&trial(pod), &Collector::default(), &["a".into()], None, "i")
            .expect("prepared");
        assert_eq!(
            run.pointer("/metadata/labels/katib.kubeflow.org~1trial"),
            Some(&json!("exp-0001"))
        );
        let none =
            json!({"apiVersion": "v1", "kind": "Pod", "spec": {"containers": [{"name": "other"}]}});
        let e = prepare(&trial(none), &Collector::default(), &[], None, "i").expect_err("missing");
        assert!(e.to_string().contains("primaryContainerName"), "{e}");
        let no_cmd = json!({"apiVersion": "v1", "kind": "Pod", "spec": {"containers": [{"name": "training-container"}]}});
        let e =
            prepare(&trial(no_cmd), &Collector::default(), &[], None, "i").expect_err("no command");
        assert!(e.to_string().contains("no command"), "{e}");
        assert_eq!(
            default_conditions("batch/v1", "Job").map(|c| c.0),
            Some(r#"status.conditions.#(type=="Complete")#|#(status=="True")#"#.to_string())
        );
        assert!(default_conditions("v1", "Pod").is_none());
    }
}
