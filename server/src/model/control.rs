//! Model control as Triton has it (`--model-control-mode`): who may load and unload models, the
//! load request's parameters, and the repository poller of `poll` mode, which loads new models, reloads changed ones and
//! unloads removed ones.

use super::Registry;
use crate::error::ServerError;
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use tokio::sync::watch;

/// Triton's model control modes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ModelControl {
    /// Load the start-up models; the load/unload API answers an error.
    None,
    /// Load the start-up models; models are loaded and unloaded through the API.
    Explicit,
    /// Load every model; follow the repository's changes; the load/unload API answers an error.
    Poll,
}

impl ModelControl {
    /// Whether the repository API may load and unload models.
    pub fn check_api(self) -> Result<(), ServerError> {
        match self {
            ModelControl::Explicit => Ok(()),
            ModelControl::None => Err(ServerError::Unsupported(
                "explicit model load / unload is not allowed with --model-control-mode none".into(),
            )),
            ModelControl::Poll => Err(ServerError::Unsupported(
                "explicit model load / unload is not allowed with --model-control-mode poll \
                 (the repository is polled)"
                    .into(),
            )),
        }
    }
}

/// A load request's `config` parameter: the model configuration as JSON (Triton's form).
pub fn load_config(text: &str) -> Result<crate::config::ModelConfig, ServerError> {
    crate::config::parse_json(text).map_err(|e| ServerError::BadRequest(e.to_string()))
}

/// A load parameter Osprey does not take (Triton's `file:<path>` overrides among them).
pub fn unknown_load_parameter(key: &str) -> ServerError {
    ServerError::BadRequest(format!(
        "load parameter '{key}' is not supported; the only one is 'config' (the model \
         configuration as JSON)"
    ))
}

/// What a model directory looks like on disk: every file's path, size and modification time,
/// so that any added, removed or rewritten file changes it.
type Fingerprint = Vec<(String, u64, Option<SystemTime>)>;

fn fingerprint(dir: &Path) -> Fingerprint {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let path = e.path();
            let Ok(meta) = std::fs::metadata(&path) else {
                continue;
            };
            if meta.is_dir() {
                stack.push(path);
            } else {
                let rel = path.strip_prefix(dir).unwrap_or(&path);
                out.push((rel.display().to_string(), meta.len(), meta.modified().ok()));
            }
        }
    }
    out.sort();
    out
}

/// Every model directory of the repository and its fingerprint.
fn scan(registry: &Registry) -> BTreeMap<String, Fingerprint> {
    registry
        .repository_models()
        .into_iter()
        .filter_map(|name| {
            let f = fingerprint(&registry.model_dir(&name)?);
            Some((name, f))
        })
        .collect()
}

/// Polls the repository every `every` until `stop`: a new model directory is loaded, a
/// changed one reloaded (its serving versions stay until the new ones are ready), a removed one
/// unloaded. `known` is what the start-up load saw.
pub async fn poll_repository(
    registry: Arc<Registry>,
    every: Duration,
    mut stop: watch::Receiver<bool>,
) {
    let mut known = {
        let r = registry.clone();
        tokio::task::spawn_blocking(move || scan(&r))
            .await
            .unwrap_or_default()
    };
    loop {
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = stop.wait_for(|s| *s) => return,
        }
        let r = registry.clone();
        let Ok(now) = tokio::task::spawn_blocking(move || scan(&r)).await else {
            continue;
        };
        for (name, f) in &now {
            if known.get(name) == Some(f) {
                continue;
            }
            let what = if known.contains_key(name) {
                "changed"
            } else {
                "new"
            };
            tracing::info!(model = %name, "repository poll: {what} model, loading");
            if let Err(e) = registry.load(name).await {
                tracing::warn!(model = %name, error = %e, "repository poll: load failed");
            }
        }
        for name in known.keys().filter(|n| !now.contains_key(*n)) {
            tracing::info!(model = %name, "repository poll: model removed, unloading");
            if let Err(e) = registry.unload(name).await {
                tracing::warn!(model = %name, error = %e, "repository poll: unload failed");
            }
        }
        known = now;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fingerprint_changes_with_any_file() {
        let dir = tempfile::tempdir().expect("tmp");
        std::fs::create_dir_all(dir.path().join("1")).expect("mkdir");
        std::fs::write(dir.path().join("config.pbtxt"), "a").expect("write");
        let before = fingerprint(dir.path());
        assert_eq!(before.len(), 1);
        std::fs::write(dir.path().join("1/model.onnx"), "b").expect("write");
        let added = fingerprint(dir.path());
        assert_ne!(before, added);
        std::fs::write(dir.path().join("config.pbtxt"), "ab").expect("write");
        assert_ne!(added, fingerprint(dir.path()), "a rewritten file");
    }

    #[test]
    fn only_explicit_mode_serves_the_load_api() {
        assert!(ModelControl::Explicit.check_api().is_ok());
        for m in [ModelControl::None, ModelControl::Poll] {
            let e = m.check_api().expect_err("refused");
            assert!(e.to_string().contains("--model-control-mode"), "{e}");
        }
    }
}
