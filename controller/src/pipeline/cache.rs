//! Caching as KFP does it: a task's fingerprint (sha256 over its input parameter values, its
//! input artifacts, its output definitions and its container: image, command, args, env); a
//! task with a stored entry for its fingerprint reuses the outputs instead of running. The
//! local store keeps one JSON file per fingerprint under `<pipeline root>/.cache/`.

use super::executor::{artifact_list, TaskInputs, TaskOutputs};
use super::spec::{Container, Definitions};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The cache key of a task about to run.
pub fn fingerprint(inputs: &TaskInputs, outputs: &Definitions, container: &Container) -> String {
    // Input artifacts count by identity (their URIs), not by their metadata.
    let artifacts: BTreeMap<&String, Vec<Value>> = inputs
        .artifacts
        .iter()
        .map(|(k, a)| {
            let uris = artifact_list(a)
                .iter()
                .map(|x| x.get("uri").cloned().unwrap_or(Value::Null))
                .collect();
            (k, uris)
        })
        .collect();
    let out_params: BTreeMap<&String, &str> = outputs
        .parameters
        .iter()
        .map(|(k, p)| (k, p.parameter_type.name()))
        .collect();
    let out_artifacts: BTreeMap<&String, Option<&String>> = outputs
        .artifacts
        .iter()
        .map(|(k, a)| (k, a.artifact_type.schema_title.as_ref()))
        .collect();
    let env: Vec<(&String, &String)> = container.env.iter().map(|e| (&e.name, &e.value)).collect();
    let key = json!({
        "inputParameterValues": inputs.parameters,
        "inputArtifacts": artifacts,
        "outputParametersSpec": out_params,
        "outputArtifactsSpec": out_artifacts,
        "container": {
            "image": container.image,
            "cmdArgs": container.command.iter().chain(container.args.iter()).collect::<Vec<_>>(),
            "env": env,
        },
    });
    let digest = Sha256::digest(key.to_string().as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// Cache entries as files: `<root>/.cache/<fingerprint>.json`.
#[derive(Debug, Clone)]
pub struct LocalCache {
    dir: PathBuf,
}

impl LocalCache {
    pub fn new(pipeline_root: &Path) -> LocalCache {
        LocalCache {
            dir: pipeline_root.join(".cache"),
        }
    }

    fn file(&self, key: &str) -> Option<PathBuf> {
        key.chars()
            .all(|c| c.is_ascii_hexdigit())
            .then(|| self.dir.join(format!("{key}.json")))
    }

    /// The stored outputs, when every artifact they name still exists on disk.
    pub fn get(&self, key: &str) -> Option<TaskOutputs> {
        let text = std::fs::read_to_string(self.file(key)?).ok()?;
        let entry: Value = serde_json::from_str(&text).ok()?;
        let outputs: TaskOutputs = serde_json::from_value(entry.get("outputs")?.clone()).ok()?;
        let all_there = outputs.artifacts.values().all(|a| {
            artifact_list(a).iter().all(|x| {
                x.get("uri")
                    .and_then(|u| u.as_str())
                    .is_some_and(|u| Path::new(u).exists())
            })
        });
        all_there.then_some(outputs)
    }

    /// Stores a successful task's outputs (best effort: a cache that cannot be written only
    /// means the next run runs the task again).
    pub fn put(&self, key: &str, run_id: &str, task: &str, outputs: &TaskOutputs) {
        let Some(file) = self.file(key) else { return };
        let entry = json!({ "run": run_id, "task": task, "outputs": outputs });
        if std::fs::create_dir_all(&self.dir).is_ok() {
            let tmp = file.with_extension("tmp");
            if std::fs::write(&tmp, entry.to_string()).is_ok() {
                let _ = std::fs::rename(&tmp, &file);
            }
        }
    }
}
