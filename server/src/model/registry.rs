//! The model registry: per model and version, a state that readiness, the repository index and
//! inference all read. Nothing answers "ready" without asking it.

use super::layout::Repository;
use super::load::{load_version, plan, LoadSettings};
use super::LoadedModel;
use crate::config::ModelConfig;
use crate::error::ServerError;
use osprey_runtimes::onnx::OnnxEnvironment;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};

/// The state of one model version.
#[derive(Clone)]
pub enum VersionState {
    Loading,
    Ready(Arc<LoadedModel>),
    Unavailable(String),
}

impl VersionState {
    /// Triton's spelling of the state.
    pub fn label(&self) -> &'static str {
        match self {
            VersionState::Loading => "LOADING",
            VersionState::Ready(_) => "READY",
            VersionState::Unavailable(_) => "UNAVAILABLE",
        }
    }
}

#[derive(Clone, Default)]
struct ModelEntry {
    /// A failure that concerns the whole model (bad config, no versions), or "unloaded".
    reason: Option<String>,
    versions: BTreeMap<u64, VersionState>,
    /// Unloaded through the repository API: no longer a loaded model, so, as in Triton, it no
    /// longer counts towards the server's readiness.
    unloaded: bool,
}

/// One row of the repository index.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct IndexEntry {
    pub name: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub version: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub state: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub reason: String,
}

/// All models the server knows, and how to load more from the repository.
pub struct Registry {
    repository: Repository,
    env: OnnxEnvironment,
    settings: LoadSettings,
    models: RwLock<BTreeMap<String, ModelEntry>>,
    /// Serialises load and unload so that two of them never race on one model.
    control: tokio::sync::Mutex<()>,
    /// The load in progress, if any: an unload sets its flag and the load stops before its next
    /// instance (without waiting for `control`, which the load holds).
    loading: std::sync::Mutex<Option<(String, Arc<AtomicBool>)>>,
}

fn poisoned<T>(_: T) -> ServerError {
    ServerError::Internal("model registry lock poisoned".into())
}

impl Registry {
    pub fn new(repository: Repository, env: OnnxEnvironment, settings: LoadSettings) -> Registry {
        Registry {
            repository,
            env,
            settings,
            models: RwLock::new(BTreeMap::new()),
            control: Default::default(),
            loading: Default::default(),
        }
    }

    /// A load failure's reason without the server's own paths: the repository's location is
    /// cut from any path a library put in the message.
    fn scrub(&self, reason: String) -> String {
        let mut out = reason;
        let root = self.repository.root();
        let mut roots = vec![root.to_path_buf()];
        roots.extend(root.canonicalize());
        for root in roots {
            let root = root.display().to_string();
            if !root.is_empty() && root != "." {
                out = out
                    .replace(&format!("{root}/"), "")
                    .replace(&root, "<repository>");
            }
        }
        out
    }

    /// A model's directory in the repository.
    pub fn model_dir(&self, name: &str) -> Option<PathBuf> {
        self.repository.model_dir(name)
    }

    /// The models in the repository, sorted (one, when the repository is one model's
    /// directory).
    pub fn repository_models(&self) -> Vec<String> {
        self.repository.models()
    }

    /// `names` in an order to load them in: ensembles (`platform: "ensemble"` in their
    /// config.pbtxt) after the other models, so that their steps are checked against loaded
    /// models.
    pub fn load_order(&self, names: Vec<String>) -> Vec<String> {
        let ensemble = |name: &String| {
            self.model_dir(name)
                .and_then(|d| std::fs::read_to_string(d.join("config.pbtxt")).ok())
                .and_then(|t| crate::config::parse_pbtxt(&t).ok())
                .is_some_and(|c| c.platform == "ensemble")
        };
        let (mut last, mut first): (Vec<String>, Vec<String>) =
            names.into_iter().partition(ensemble);
        first.append(&mut last);
        first
    }

    fn set(&self, name: &str, entry: ModelEntry) -> Result<(), ServerError> {
        self.models
            .write()
            .map_err(poisoned)?
            .insert(name.to_string(), entry);
        Ok(())
    }

    /// Loads (or reloads) a model from the repository with its own configuration.
    pub async fn load(self: &Arc<Self>, name: &str) -> Result<(), ServerError> {
        self.load_with(name, None).await
    }

    /// Loads (or reloads) a model, with `config` in place of its config.pbtxt when given. A
    /// failure is returned; a model that was not serving becomes UNAVAILABLE with the reason,
    /// while the versions of a serving model that fail to reload keep serving (as in Triton).
    /// Versions that reload replace the old ones at once: no request finds them missing.
    pub async fn load_with(
        self: &Arc<Self>,
        name: &str,
        config: Option<ModelConfig>,
    ) -> Result<(), ServerError> {
        let _guard = self.control.lock().await;
        if self.repository.model_dir(name).is_none() {
            return Err(ServerError::ModelNotFound(name.to_string()));
        }
        let previous = self.models.read().map_err(poisoned)?.get(name).cloned();
        let serving = |v: u64| match previous.as_ref().filter(|e| !e.unloaded) {
            Some(e) => match e.versions.get(&v) {
                Some(VersionState::Ready(m)) => Some(m.clone()),
                _ => None,
            },
            None => None,
        };
        let any_serving = previous
            .as_ref()
            .is_some_and(|e| !e.unloaded && e.versions.keys().any(|v| serving(*v).is_some()));
        let planned = self
            .repository
            .files(name, self.settings.model_symlinks)
            .and_then(|mut files| Ok((plan(&mut files, name, config)?, files)));
        let ((cfg, versions), files) = match planned {
            Ok(p) => p,
            Err(reason) => {
                let reason = self.scrub(reason);
                if any_serving {
                    tracing::warn!(model = name, %reason, "reload failed; the loaded versions keep serving");
                } else {
                    self.set(
                        name,
                        ModelEntry {
                            reason: Some(reason.clone()),
                            versions: BTreeMap::new(),
                            unloaded: false,
                        },
                    )?;
                }
                return Err(ServerError::LoadFailed {
                    model: name.to_string(),
                    reason,
                });
            }
        };
        // Versions being (re)loaded show LOADING while versions already serving keep serving.
        let mut loading = previous.clone().unwrap_or_default();
        loading.reason = None;
        loading.unloaded = false;
        for v in &versions {
            loading.versions.entry(*v).or_insert(VersionState::Loading);
        }
        self.set(name, loading)?;

        let cancel = Arc::new(AtomicBool::new(false));
        *self.loading.lock().map_err(poisoned)? = Some((name.to_string(), cancel.clone()));
        let this = self.clone();
        let models = Arc::downgrade(self);
        let results = tokio::task::spawn_blocking(move || {
            versions
                .into_iter()
                .map(|v| {
                    let r =
                        load_version(&this.env, &files, &cfg, v, &this.settings, &cancel, &models);
                    (v, r)
                })
                .collect::<Vec<_>>()
        })
        .await;
        *self.loading.lock().map_err(poisoned)? = None;
        let results =
            results.map_err(|e| ServerError::Internal(format!("model loader stopped: {e}")))?;

        let mut entry = ModelEntry::default();
        let mut failures = Vec::new();
        for (v, r) in results {
            let state = match r {
                Ok(m) => VersionState::Ready(Arc::new(m)),
                Err(reason) => {
                    let reason = self.scrub(reason);
                    failures.push(format!("version {v}: {reason}"));
                    match serving(v) {
                        Some(old) => {
                            tracing::warn!(model = name, version = v, %reason, "version failed to reload; the loaded one keeps serving");
                            VersionState::Ready(old)
                        }
                        None => {
                            tracing::warn!(model = name, version = v, %reason, "model version failed to load");
                            VersionState::Unavailable(reason)
                        }
                    }
                }
            };
            entry.versions.insert(v, state);
        }
        self.set(name, entry)?;
        if failures.is_empty() {
            tracing::info!(model = name, "model loaded");
            Ok(())
        } else {
            Err(ServerError::LoadFailed {
                model: name.to_string(),
                reason: failures.join("; "),
            })
        }
    }

    /// Unloads every version of a model. Requests already running finish first; the model then
    /// shows as UNAVAILABLE "unloaded".
    pub async fn unload(&self, name: &str) -> Result<(), ServerError> {
        // A load of this model in progress stops before its next instance.
        if let Some((loading, cancel)) = self.loading.lock().map_err(poisoned)?.as_ref() {
            if loading == name {
                cancel.store(true, Ordering::Relaxed);
            }
        }
        let _guard = self.control.lock().await;
        let mut models = self.models.write().map_err(poisoned)?;
        let entry = models
            .get_mut(name)
            .ok_or_else(|| ServerError::ModelNotFound(name.to_string()))?;
        for state in entry.versions.values_mut() {
            *state = VersionState::Unavailable("unloaded".into());
        }
        entry.reason = Some("unloaded".into());
        entry.unloaded = true;
        tracing::info!(model = name, "model unloaded");
        Ok(())
    }

    /// A ready model version: the one named, or the highest ready version.
    pub fn get(&self, name: &str, version: Option<&str>) -> Result<Arc<LoadedModel>, ServerError> {
        let models = self.models.read().map_err(poisoned)?;
        let entry = models
            .get(name)
            .ok_or_else(|| ServerError::ModelNotFound(name.to_string()))?;
        let not_ready = |reason: String| ServerError::ModelNotReady {
            model: name.to_string(),
            reason,
        };
        match version.filter(|v| !v.is_empty()) {
            Some(v) => {
                let state = v
                    .parse::<u64>()
                    .ok()
                    .and_then(|n| entry.versions.get(&n))
                    .ok_or_else(|| ServerError::VersionNotFound {
                        model: name.to_string(),
                        version: v.to_string(),
                        available: format!("{:?}", entry.versions.keys().collect::<Vec<_>>()),
                    })?;
                match state {
                    VersionState::Ready(m) => Ok(m.clone()),
                    VersionState::Loading => Err(not_ready(format!("version {v} is loading"))),
                    VersionState::Unavailable(r) => Err(not_ready(format!("version {v}: {r}"))),
                }
            }
            None => entry
                .versions
                .values()
                .rev()
                .find_map(|s| match s {
                    VersionState::Ready(m) => Some(m.clone()),
                    _ => None,
                })
                .ok_or_else(|| {
                    let reason = entry.reason.clone().or_else(|| {
                        entry.versions.iter().find_map(|(v, s)| match s {
                            VersionState::Unavailable(r) => Some(format!("version {v}: {r}")),
                            VersionState::Loading => Some(format!("version {v} is loading")),
                            VersionState::Ready(_) => None,
                        })
                    });
                    not_ready(reason.unwrap_or_else(|| "no version is ready".into()))
                }),
        }
    }

    /// Every ready model version.
    pub fn ready_models(&self) -> Vec<Arc<LoadedModel>> {
        let Ok(models) = self.models.read() else {
            return Vec::new();
        };
        models
            .values()
            .flat_map(|e| e.versions.values())
            .filter_map(|s| match s {
                VersionState::Ready(m) => Some(m.clone()),
                _ => None,
            })
            .collect()
    }

    /// True when every named model that was not unloaded since has at least one version and
    /// all of them are ready.
    pub fn all_ready(&self, names: &[String]) -> bool {
        let Ok(models) = self.models.read() else {
            return false;
        };
        names.iter().all(|n| {
            models.get(n).is_some_and(|e| {
                e.unloaded
                    || e.reason.is_none()
                        && !e.versions.is_empty()
                        && e.versions
                            .values()
                            .all(|s| matches!(s, VersionState::Ready(_)))
            })
        })
    }

    /// The repository index: every model on disk and every version the server knows.
    pub fn index(&self, ready_only: bool) -> Vec<IndexEntry> {
        let models = self.models.read().map(|m| m.clone()).unwrap_or_default();
        let mut out = Vec::new();
        let mut names = self.repository_models();
        names.extend(models.keys().cloned());
        names.sort();
        names.dedup();
        for name in names {
            let entry = models.get(&name);
            let rows: Vec<IndexEntry> = match entry {
                None => vec![IndexEntry {
                    name: name.clone(),
                    version: String::new(),
                    state: String::new(),
                    reason: String::new(),
                }],
                Some(e) if e.versions.is_empty() => vec![IndexEntry {
                    name: name.clone(),
                    version: String::new(),
                    state: "UNAVAILABLE".into(),
                    reason: e.reason.clone().unwrap_or_default(),
                }],
                Some(e) => e
                    .versions
                    .iter()
                    .map(|(v, s)| IndexEntry {
                        name: name.clone(),
                        version: v.to_string(),
                        state: s.label().into(),
                        reason: match s {
                            VersionState::Unavailable(r) => r.clone(),
                            _ => String::new(),
                        },
                    })
                    .collect(),
            };
            out.extend(
                rows.into_iter()
                    .filter(|r| !ready_only || r.state == "READY"),
            );
        }
        out
    }
}
