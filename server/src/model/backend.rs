//! Which runtime serves a model, from its configuration's `platform`, `backend` and `stages`.

use crate::config::ModelConfig;

/// The runtimes Osprey serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// ONNX Runtime: `<version>/model.onnx`.
    Onnx,
    /// candle BERT-family encoders: `<version>/config.json` + `<version>/model.safetensors`.
    Candle,
    /// A remote v2 server (`stages.remote`): no files; `input`/`output` must be configured.
    Remote,
    /// Triton's ensemble (`platform: "ensemble"`): steps through other models; no files.
    Ensemble,
}

const ONNX_PLATFORM: &str = "onnxruntime_onnx";
const ONNX_BACKEND: &str = "onnxruntime";
const CANDLE_BACKEND: &str = "candle";
const REMOTE_BACKEND: &str = "remote";
const ENSEMBLE_PLATFORM: &str = "ensemble";

impl Backend {
    /// Decides the backend, refusing ones Osprey does not serve.
    pub fn of(cfg: &ModelConfig) -> Result<Backend, String> {
        let remote = cfg.stages.as_ref().is_some_and(|s| s.remote.is_some());
        let platform = cfg.platform.as_str();
        match (cfg.backend.as_str(), remote) {
            ("", false) if platform == ENSEMBLE_PLATFORM => Ok(Backend::Ensemble),
            (REMOTE_BACKEND, _) | ("", true) if platform.is_empty() => Ok(Backend::Remote),
            (CANDLE_BACKEND, false) if platform.is_empty() => Ok(Backend::Candle),
            (ONNX_BACKEND | "", false) if matches!(platform, "" | ONNX_PLATFORM) => Ok(Backend::Onnx),
            (b, true) => Err(format!(
                "backend '{b}' / platform '{platform}' cannot be combined with stages.remote (leave both empty)"
            )),
            (b, false) => Err(format!(
                "platform '{platform}' / backend '{b}' is not served; Osprey serves backend \"{ONNX_BACKEND}\" (platform \"{ONNX_PLATFORM}\"), \"{CANDLE_BACKEND}\", platform \"{ENSEMBLE_PLATFORM}\" and remote predictors"
            )),
        }
    }

    /// The file each version directory must hold; None for remote models.
    pub fn model_file(self, cfg: &ModelConfig) -> Option<String> {
        let default = match self {
            Backend::Onnx => "model.onnx",
            Backend::Candle => "model.safetensors",
            Backend::Remote | Backend::Ensemble => return None,
        };
        Some(if cfg.default_model_filename.is_empty() {
            default.to_string()
        } else {
            cfg.default_model_filename.clone()
        })
    }

    /// The `platform` and `backend` a completed configuration reports.
    pub fn names(self) -> (&'static str, &'static str) {
        match self {
            Backend::Onnx => (ONNX_PLATFORM, ONNX_BACKEND),
            Backend::Candle => ("", CANDLE_BACKEND),
            Backend::Remote => ("", REMOTE_BACKEND),
            Backend::Ensemble => (ENSEMBLE_PLATFORM, ""),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::parse_pbtxt;

    fn of(text: &str) -> Result<Backend, String> {
        Backend::of(&parse_pbtxt(text).expect("parses"))
    }

    #[test]
    fn picks_the_backend() {
        assert_eq!(of(""), Ok(Backend::Onnx));
        assert_eq!(of("platform: \"onnxruntime_onnx\""), Ok(Backend::Onnx));
        assert_eq!(of("backend: \"candle\""), Ok(Backend::Candle));
        assert_eq!(of("platform: \"ensemble\""), Ok(Backend::Ensemble));
        assert_eq!(
            of("stages { remote { url: \"http://x:1\" } }"),
            Ok(Backend::Remote)
        );
    }

    #[test]
    fn refuses_others() {
        assert!(of("backend: \"pytorch\"").unwrap_err().contains("pytorch"));
        assert!(of("backend: \"candle\" stages { remote { url: \"http://x:1\" } }").is_err());
    }
}
