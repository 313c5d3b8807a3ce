//! Turning per-token hidden states into one sentence embedding: pooling, then optional L2
//! normalisation, configured the way sentence-transformers lays a model directory out
//! (`1_Pooling/config.json`, `modules.json`).

use crate::error::RuntimeError;
use candle_core::{Tensor, D};
use serde::Deserialize;
use std::path::Path;

/// How token vectors are reduced to one vector per sentence.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Pooling {
    /// The average of the tokens whose attention mask is 1 (padding is not counted).
    #[default]
    Mean,
    /// The first token's vector (`[CLS]`).
    Cls,
}

/// What [`super::BertEncoder::load_with`] reads from the model directory unless set here.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct EncoderOptions {
    /// `None`: `1_Pooling/config.json` when present, else [`Pooling::Mean`].
    pub pooling: Option<Pooling>,
    /// `None`: on, unless `modules.json` is present and lists no `Normalize` module.
    pub normalize: Option<bool>,
}

/// sentence-transformers' `1_Pooling/config.json`; modes we do not implement are read so they can
/// be refused rather than silently ignored.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct PoolingConfig {
    pooling_mode_cls_token: bool,
    pooling_mode_mean_tokens: bool,
    pooling_mode_max_tokens: bool,
    pooling_mode_mean_sqrt_len_tokens: bool,
    pooling_mode_weightedmean_tokens: bool,
    pooling_mode_lasttoken: bool,
}

/// One entry of sentence-transformers' `modules.json`.
#[derive(Debug, Deserialize)]
struct Module {
    #[serde(rename = "type")]
    kind: String,
}

fn load_error(path: &Path, message: impl Into<String>) -> RuntimeError {
    RuntimeError::ModelLoad {
        path: path.to_path_buf(),
        message: message.into(),
    }
}

fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<Option<T>, RuntimeError> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(load_error(path, e.to_string())),
    };
    serde_json::from_str(&text)
        .map(Some)
        .map_err(|e| load_error(path, e.to_string()))
}

/// The pooling `dir/1_Pooling/config.json` asks for; [`Pooling::Mean`] when the file is absent.
pub fn pooling_in(dir: &Path) -> Result<Pooling, RuntimeError> {
    let path = dir.join("1_Pooling/config.json");
    let Some(c) = read_json::<PoolingConfig>(&path)? else {
        return Ok(Pooling::default());
    };
    let unsupported = [
        (c.pooling_mode_max_tokens, "max"),
        (c.pooling_mode_mean_sqrt_len_tokens, "mean_sqrt_len"),
        (c.pooling_mode_weightedmean_tokens, "weightedmean"),
        (c.pooling_mode_lasttoken, "lasttoken"),
    ];
    if let Some((_, mode)) = unsupported.iter().find(|(on, _)| *on) {
        return Err(load_error(
            &path,
            format!("pooling mode '{mode}' is not supported (only mean or cls)"),
        ));
    }
    match (c.pooling_mode_mean_tokens, c.pooling_mode_cls_token) {
        (true, false) => Ok(Pooling::Mean),
        (false, true) => Ok(Pooling::Cls),
        (true, true) => Err(load_error(
            &path,
            "mean and cls pooling together (concatenated) is not supported",
        )),
        (false, false) => Err(load_error(&path, "no pooling mode is enabled")),
    }
}

/// Whether the model ends in L2 normalisation: true unless `dir/modules.json` is present and
/// lists no `sentence_transformers.models.Normalize` module.
pub fn normalize_in(dir: &Path) -> Result<bool, RuntimeError> {
    let modules = read_json::<Vec<Module>>(&dir.join("modules.json"))?;
    Ok(modules.is_none_or(|m| m.iter().any(|m| m.kind.ends_with("Normalize"))))
}

/// Pools `hidden` `[B, L, H]` to `[B, H]`. `mask` is `[B, L]` of 0/1 in `hidden`'s dtype, with
/// at least one 1 per row.
pub fn pool(hidden: &Tensor, mask: &Tensor, pooling: Pooling) -> candle_core::Result<Tensor> {
    match pooling {
        Pooling::Cls => hidden.narrow(1, 0, 1)?.squeeze(1),
        Pooling::Mean => {
            let summed = hidden.broadcast_mul(&mask.unsqueeze(D::Minus1)?)?.sum(1)?;
            let counts = mask.sum_keepdim(1)?;
            summed.broadcast_div(&counts)
        }
    }
}

/// Divides each row of `x` `[B, H]` by its L2 norm (an all-zero row stays zero).
pub fn l2_normalize(x: &Tensor) -> candle_core::Result<Tensor> {
    let norms = x
        .sqr()?
        .sum_keepdim(D::Minus1)?
        .sqrt()?
        .clamp(1e-12, f64::INFINITY)?;
    x.broadcast_div(&norms)
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    fn temp_dir(tag: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("osprey-pool-{tag}-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("1_Pooling")).expect("tmp dir");
        dir
    }

    #[test]
    fn reads_pooling_and_normalize_from_the_directory() {
        let dir = temp_dir("cfg");
        assert_eq!(pooling_in(&dir).ok(), Some(Pooling::Mean));
        assert_eq!(normalize_in(&dir).ok(), Some(true));
        let write = |p: &str, s: &str| std::fs::write(dir.join(p), s).expect("write");
        write(
            "1_Pooling/config.json",
            r#"{"pooling_mode_cls_token": true}"#,
        );
        assert_eq!(pooling_in(&dir).ok(), Some(Pooling::Cls));
        write(
            "1_Pooling/config.json",
            r#"{"pooling_mode_mean_tokens": true, "pooling_mode_max_tokens": true}"#,
        );
        let e = pooling_in(&dir).expect_err("max refused");
        assert!(e.to_string().contains("'max'"), "{e}");
        write(
            "modules.json",
            r#"[{"type": "sentence_transformers.models.Transformer"}]"#,
        );
        assert_eq!(normalize_in(&dir).ok(), Some(false));
        write(
            "modules.json",
            r#"[{"type": "sentence_transformers.models.Normalize"}]"#,
        );
        assert_eq!(normalize_in(&dir).ok(), Some(true));
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn mean_pooling_skips_masked_tokens() -> candle_core::Result<()> {
        let dev = Device::Cpu;
        // One row, three tokens of width 2; the last token is padding.
        let hidden = Tensor::new(&[[[1f32, 2.], [3., 4.], [100., 100.]]], &dev)?;
        let mask = Tensor::new(&[[1f32, 1., 0.]], &dev)?;
        let mean = pool(&hidden, &mask, Pooling::Mean)?.to_vec2::<f32>()?;
        assert_eq!(mean, vec![vec![2., 3.]]);
        let cls = pool(&hidden, &mask, Pooling::Cls)?.to_vec2::<f32>()?;
        assert_eq!(cls, vec![vec![1., 2.]]);
        let unit = l2_normalize(&Tensor::new(&[[3f32, 4.], [0., 0.]], &dev)?)?;
        assert_eq!(unit.to_vec2::<f32>()?, vec![vec![0.6, 0.8], vec![0., 0.]]);
        Ok(())
    }
}
