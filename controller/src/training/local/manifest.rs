//! Reading a job manifest for `osprey train run`: the first PyTorchJob or TFJob document of a
//! YAML file, checked as the controller checks it.

use super::LocalError;
use crate::training::crd::{PyTorchJob, TFJob};
use crate::training::job::Job;
use crate::training::validate;

/// The job of the manifest's first `kubeflow.org/v1` PyTorchJob or TFJob document.
pub fn parse(text: &str) -> Result<Job, LocalError> {
    for doc in serde_yaml::Deserializer::from_str(text) {
        let value: serde_json::Value = serde::Deserialize::deserialize(doc)
            .map_err(|e| LocalError::Manifest(format!("YAML: {e}")))?;
        let kind = value
            .get("kind")
            .and_then(|k| k.as_str())
            .unwrap_or("")
            .to_string();
        if !matches!(kind.as_str(), "PyTorchJob" | "TFJob") {
            continue;
        }
        let api = value
            .get("apiVersion")
            .and_then(|k| k.as_str())
            .unwrap_or("")
            .to_string();
        if api != "kubeflow.org/v1" {
            return Err(LocalError::Manifest(format!(
                "apiVersion: {kind} is kubeflow.org/v1, not {api:?}"
            )));
        }
        let job = if kind == "PyTorchJob" {
            let j: PyTorchJob = serde_json::from_value(value)
                .map_err(|e| LocalError::Manifest(format!("{kind}: {e}")))?;
            validate::pytorch(&j)?
        } else {
            let j: TFJob = serde_json::from_value(value)
                .map_err(|e| LocalError::Manifest(format!("{kind}: {e}")))?;
            validate::tf(&j)?
        };
        return Ok(job);
    }
    Err(LocalError::Manifest(
        "no PyTorchJob or TFJob (apiVersion kubeflow.org/v1) in the manifest".into(),
    ))
}
