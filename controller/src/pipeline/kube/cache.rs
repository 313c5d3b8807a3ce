//! The cache of a namespace's PipelineRuns: one ConfigMap per task fingerprint
//! (`osprey-pipeline-cache-<first 40 hex digits>`, labelled `pipelines.osprey.dev/cache`),
//! holding the fingerprint and the task's outputs. A run whose `enableCaching` is on (and whose
//! task allows it) reuses the outputs instead of starting a pod; entries outlive the runs that
//! wrote them (delete the ConfigMaps to empty the cache).

use crate::error::Error;
use crate::pipeline::executor::TaskOutputs;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{ObjectMeta, PostParams};
use kube::Api;
use std::collections::BTreeMap;

/// Label of the cache's ConfigMaps.
pub const CACHE_LABEL: &str = "pipelines.osprey.dev/cache";

fn name_of(key: &str) -> Option<String> {
    (key.len() >= 40 && key.chars().all(|c| c.is_ascii_hexdigit()))
        .then(|| format!("osprey-pipeline-cache-{}", &key[..40]))
}

/// The stored outputs of `key`, if any.
pub async fn lookup(api: &Api<ConfigMap>, key: &str) -> Result<Option<TaskOutputs>, Error> {
    let Some(name) = name_of(key) else {
        return Ok(None);
    };
    let Some(cm) = api.get_opt(&name).await? else {
        return Ok(None);
    };
    let data = cm.data.unwrap_or_default();
    if data.get("key").map(String::as_str) != Some(key) {
        return Ok(None);
    }
    Ok(data
        .get("outputs")
        .and_then(|o| serde_json::from_str::<TaskOutputs>(o).ok()))
}

/// Stores a successful task's outputs under `key` (the first writer wins).
pub async fn store(
    api: &Api<ConfigMap>,
    key: &str,
    run: &str,
    task: &str,
    outputs: &TaskOutputs,
) -> Result<(), Error> {
    let Some(name) = name_of(key) else {
        return Ok(());
    };
    let cm = ConfigMap {
        metadata: ObjectMeta {
            name: Some(name),
            labels: Some(BTreeMap::from([(
                CACHE_LABEL.to_string(),
                "true".to_string(),
            )])),
            ..ObjectMeta::default()
        },
        data: Some(BTreeMap::from([
            ("key".to_string(), key.to_string()),
            ("run".to_string(), run.to_string()),
            ("task".to_string(), task.to_string()),
            ("outputs".to_string(), serde_json::to_string(outputs)?),
        ])),
        ..ConfigMap::default()
    };
    match api.create(&PostParams::default(), &cm).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(e)) if e.code == 409 => Ok(()),
        Err(e) => Err(e.into()),
    }
}
