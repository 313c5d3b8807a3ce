//! Triton's `model_warmup`: sample requests run on every instance, `count` times each, before
//! the model is READY; a warm-up that fails makes the load fail with the sample's name.

use super::files::ModelFiles;
use crate::config::ModelConfig;
use bytes::Bytes;
use osprey_protocol::grpc::inference::model_warmup::input::InputDataType;
use osprey_protocol::grpc::inference::{self, ModelWarmup};
use osprey_protocol::json::JsonData;
use osprey_protocol::tensor::element_count;
use osprey_protocol::{DataType, Tensor, TensorData};
use osprey_runtimes::Runtime;

/// The most elements one warm-up input may have (a typo in `dims` should not allocate GBs).
const MAX_ELEMENTS: usize = 1 << 24;

/// Runs every warm-up sample of `cfg` on every runtime.
pub fn warm_up(
    cfg: &ModelConfig,
    files: &ModelFiles,
    runtimes: &mut [Box<dyn Runtime>],
) -> Result<(), String> {
    for w in &cfg.model_warmup {
        let field = format!("model_warmup '{}'", w.name);
        let inputs = sample(cfg, files, w).map_err(|e| format!("{field}: {e}"))?;
        for runtime in runtimes.iter_mut() {
            for _ in 0..w.count.max(1) {
                runtime
                    .run(inputs.clone())
                    .map_err(|e| format!("{field} failed: {e}"))?;
            }
        }
        tracing::debug!(model = %cfg.name, warmup = %w.name, "warm-up done");
    }
    Ok(())
}

/// The inputs of one warm-up sample.
fn sample(cfg: &ModelConfig, files: &ModelFiles, w: &ModelWarmup) -> Result<Vec<Tensor>, String> {
    let mut names: Vec<&String> = w.inputs.keys().collect();
    names.sort();
    let mut out = Vec::new();
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    for name in names {
        let Some(input) = w.inputs.get(name) else {
            continue;
        };
        let dt = inference::DataType::try_from(input.data_type)
            .ok()
            .and_then(|t| DataType::from_config_name(t.as_str_name()))
            .ok_or_else(|| format!("input '{name}': data_type is not a tensor type"))?;
        let mut shape = Vec::new();
        if cfg.max_batch_size > 0 {
            shape.push(i64::from(w.batch_size.max(1)));
        }
        shape.extend(&input.dims);
        let n = element_count(&shape)
            .filter(|&n| n <= MAX_ELEMENTS)
            .ok_or_else(|| {
                format!("input '{name}': dims {shape:?} are negative or hold over {MAX_ELEMENTS} elements")
            })?;
        let data = match &input.input_data_type {
            None | Some(InputDataType::ZeroData(_)) => zeros(dt, n, name)?,
            Some(InputDataType::RandomData(_)) => random(dt, n, name, &mut seed)?,
            Some(InputDataType::InputDataFile(file)) => {
                let path = files.find(
                    &format!("input '{name}' input_data_file"),
                    file,
                    &["warmup"],
                )?;
                let raw = std::fs::read(&path)
                    .map_err(|e| format!("input '{name}' input_data_file '{file}': {e}"))?;
                TensorData::from_wire(dt, &Bytes::from(raw), name).map_err(|e| e.to_string())?
            }
        };
        out.push(Tensor::new(name, shape, data).map_err(|e| e.to_string())?);
    }
    Ok(out)
}

fn zeros(dt: DataType, n: usize, name: &str) -> Result<TensorData, String> {
    match dt.element_size() {
        Some(size) => TensorData::from_wire(dt, &Bytes::from(vec![0u8; n * size]), name),
        None => Ok(TensorData::Bytes(vec![Bytes::new(); n])),
    }
    .map_err(|e| e.to_string())
}

/// Small random values every numeric type holds (0 to 9), or strings of random digits.
fn random(dt: DataType, n: usize, name: &str, seed: &mut u64) -> Result<TensorData, String> {
    let mut next = || {
        *seed ^= *seed << 13;
        *seed ^= *seed >> 7;
        *seed ^= *seed << 17;
        *seed % 10
    };
    if dt == DataType::Bytes {
        return Ok(TensorData::Bytes(
            (0..n).map(|_| Bytes::from(next().to_string())).collect(),
        ));
    }
    if dt == DataType::Bool {
        return Ok(TensorData::Bool((0..n).map(|_| next() % 2 == 1).collect()));
    }
    let values = (0..n).map(|_| next() as f64).collect();
    TensorData::from_json(dt, JsonData::Numbers(values), name).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_and_random_data_fill_every_type() {
        for dt in [
            DataType::Fp32,
            DataType::Int64,
            DataType::Uint8,
            DataType::Bytes,
        ] {
            assert_eq!(zeros(dt, 6, "x").expect("zeros").len(), 6, "{dt:?}");
            let mut seed = 7;
            assert_eq!(
                random(dt, 6, "x", &mut seed).expect("random").len(),
                6,
                "{dt:?}"
            );
        }
        let mut seed = 7;
        assert_eq!(
            random(DataType::Bool, 3, "x", &mut seed)
                .expect("bool")
                .len(),
            3
        );
    }
}
