//! Checking a tokenised batch (`input_ids`, `attention_mask`, `token_type_ids`) and moving it
//! onto the device.

use crate::error::RuntimeError;
use candle_core::{Device, Tensor as DeviceTensor};
use osprey_protocol::tensor::fmt_shape;
use osprey_protocol::{DataType, Tensor, TensorData, TensorSpec};

pub const INPUT_IDS: &str = "input_ids";
pub const ATTENTION_MASK: &str = "attention_mask";
pub const TOKEN_TYPE_IDS: &str = "token_type_ids";

/// The inputs a BERT encoder declares: three `INT64 [-1, -1]` tensors; `token_type_ids` may be
/// left out (all zeros).
pub fn input_specs() -> Vec<TensorSpec> {
    [
        (INPUT_IDS, false),
        (ATTENTION_MASK, false),
        (TOKEN_TYPE_IDS, true),
    ]
    .into_iter()
    .map(|(name, optional)| TensorSpec {
        name: name.to_string(),
        datatype: DataType::Int64,
        shape: vec![-1, -1],
        optional,
    })
    .collect()
}

/// What the loaded model can take: ids must index its tables.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub vocab_size: usize,
    pub type_vocab_size: usize,
    pub max_positions: usize,
}

/// A validated batch of `rows` sequences of `len` tokens, on the device.
pub struct Batch {
    pub rows: usize,
    pub input_ids: DeviceTensor,
    pub token_type_ids: DeviceTensor,
    /// 0/1 as f32, `[rows, len]`.
    pub attention_mask: DeviceTensor,
}

fn bad(name: &str, reason: impl Into<String>) -> RuntimeError {
    RuntimeError::BadInput {
        name: name.to_string(),
        reason: reason.into(),
    }
}

/// The elements of an INT64 or INT32 tensor, widened to i64.
fn integers(t: &Tensor) -> Result<Vec<i64>, RuntimeError> {
    match &t.data {
        TensorData::Int64(v) => Ok(v.clone()),
        TensorData::Int32(v) => Ok(v.iter().map(|&x| i64::from(x)).collect()),
        other => Err(bad(
            &t.name,
            format!("expected INT64 (or INT32), got {}", other.datatype()),
        )),
    }
}

/// Ids in `0..bound` as u32, naming the first element that is not.
fn ids(name: &str, values: &[i64], bound: usize, what: &str) -> Result<Vec<u32>, RuntimeError> {
    values
        .iter()
        .enumerate()
        .map(|(i, &v)| {
            usize::try_from(v)
                .ok()
                .filter(|&u| u < bound)
                .and_then(|u| u32::try_from(u).ok())
                .ok_or_else(|| {
                    bad(
                        name,
                        format!("element {i} is {v}, outside {what} 0..{bound}"),
                    )
                })
        })
        .collect()
}

/// The mask as 0.0/1.0, refusing other values and rows without a single 1.
fn mask(name: &str, values: &[i64], len: usize) -> Result<Vec<f32>, RuntimeError> {
    let out = values
        .iter()
        .enumerate()
        .map(|(i, &v)| match v {
            0 => Ok(0.0),
            1 => Ok(1.0),
            _ => Err(bad(
                name,
                format!("element {i} is {v}; a mask holds 0 or 1"),
            )),
        })
        .collect::<Result<Vec<f32>, RuntimeError>>()?;
    if let Some(row) = out.chunks(len).position(|r| r.iter().all(|&m| m == 0.0)) {
        return Err(bad(name, format!("row {row} has no token with mask 1")));
    }
    Ok(out)
}

/// Takes `inputs` apart by name (any order), checks every shape equals `input_ids`' `[B, L]`,
/// datatypes, id ranges and mask values, and uploads the three tensors to `device`.
pub fn prepare(
    inputs: Vec<Tensor>,
    limits: Limits,
    device: &Device,
) -> Result<Batch, RuntimeError> {
    let mut slots: [Option<Tensor>; 3] = [None, None, None];
    for t in inputs {
        let slot = match t.name.as_str() {
            INPUT_IDS => 0,
            ATTENTION_MASK => 1,
            TOKEN_TYPE_IDS => 2,
            _ => {
                return Err(bad(
                    &t.name,
                    format!(
                        "unknown input; expected {INPUT_IDS}, {ATTENTION_MASK}, {TOKEN_TYPE_IDS}"
                    ),
                ))
            }
        };
        if slots[slot].is_some() {
            return Err(bad(&t.name, "given twice"));
        }
        slots[slot] = Some(t);
    }
    let [ids_t, mask_t, types_t] = slots;
    let ids_t = ids_t.ok_or_else(|| bad(INPUT_IDS, "missing"))?;
    let mask_t = mask_t.ok_or_else(|| bad(ATTENTION_MASK, "missing"))?;

    let (rows, len) = match ids_t.shape[..] {
        [b, l] => (
            usize::try_from(b).map_err(|_| bad(INPUT_IDS, "negative batch size"))?,
            usize::try_from(l).map_err(|_| bad(INPUT_IDS, "negative length"))?,
        ),
        _ => {
            return Err(bad(
                INPUT_IDS,
                format!(
                    "expected shape [batch, length], got {}",
                    fmt_shape(&ids_t.shape)
                ),
            ))
        }
    };
    if len == 0 {
        return Err(bad(INPUT_IDS, "sequences must hold at least one token"));
    }
    if len > limits.max_positions {
        return Err(bad(
            INPUT_IDS,
            format!(
                "length {len} exceeds the model's {} positions",
                limits.max_positions
            ),
        ));
    }
    for other in std::iter::once(&mask_t).chain(types_t.as_ref()) {
        if other.shape != ids_t.shape {
            return Err(bad(
                &other.name,
                format!(
                    "shape {} differs from {INPUT_IDS} {}",
                    fmt_shape(&other.shape),
                    fmt_shape(&ids_t.shape)
                ),
            ));
        }
    }

    let token_ids = ids(
        INPUT_IDS,
        &integers(&ids_t)?,
        limits.vocab_size,
        "the vocabulary",
    )?;
    let mask_values = mask(ATTENTION_MASK, &integers(&mask_t)?, len)?;
    let type_ids = match &types_t {
        Some(t) => ids(
            TOKEN_TYPE_IDS,
            &integers(t)?,
            limits.type_vocab_size,
            "token types",
        )?,
        None => vec![0; rows * len],
    };

    let upload = |name: &str, r: candle_core::Result<DeviceTensor>| {
        r.map_err(|e| RuntimeError::Inference(format!("uploading {name}: {e}")))
    };
    Ok(Batch {
        rows,
        input_ids: upload(
            INPUT_IDS,
            DeviceTensor::from_vec(token_ids, (rows, len), device),
        )?,
        token_type_ids: upload(
            TOKEN_TYPE_IDS,
            DeviceTensor::from_vec(type_ids, (rows, len), device),
        )?,
        attention_mask: upload(
            ATTENTION_MASK,
            DeviceTensor::from_vec(mask_values, (rows, len), device),
        )?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: Limits = Limits {
        vocab_size: 10,
        type_vocab_size: 2,
        max_positions: 4,
    };

    fn t(name: &str, shape: Vec<i64>, data: Vec<i64>) -> Tensor {
        Tensor::new(name, shape, TensorData::Int64(data)).expect("valid tensor")
    }

    fn err(inputs: Vec<Tensor>) -> (String, String) {
        match prepare(inputs, LIMITS, &Device::Cpu) {
            Err(RuntimeError::BadInput { name, reason }) => (name, reason),
            Err(e) => panic!("expected BadInput, got {e}"),
            Ok(_) => panic!("expected BadInput, got a batch"),
        }
    }

    #[test]
    fn accepts_any_order_int32_and_missing_token_types() {
        let ids = Tensor::new(INPUT_IDS, vec![1, 2], TensorData::Int32(vec![3, 4])).expect("ids");
        let b = prepare(
            vec![t(ATTENTION_MASK, vec![1, 2], vec![1, 0]), ids],
            LIMITS,
            &Device::Cpu,
        )
        .expect("valid batch");
        assert_eq!(b.rows, 1);
        assert_eq!(b.token_type_ids.dims(), &[1, 2]);
    }

    #[test]
    fn names_the_bad_input() {
        let ids = || t(INPUT_IDS, vec![1, 2], vec![1, 2]);
        let (name, reason) = err(vec![ids(), t(ATTENTION_MASK, vec![1, 3], vec![1, 1, 1])]);
        assert_eq!(name, ATTENTION_MASK);
        assert!(reason.contains("[1,3]"), "{reason}");
        assert_eq!(err(vec![ids()]).0, ATTENTION_MASK);
        let (name, reason) = err(vec![
            t(INPUT_IDS, vec![1, 2], vec![1, 10]),
            t(ATTENTION_MASK, vec![1, 2], vec![1, 1]),
        ]);
        assert_eq!(name, INPUT_IDS);
        assert!(reason.contains("element 1 is 10"), "{reason}");
        let (name, reason) = err(vec![ids(), t(ATTENTION_MASK, vec![1, 2], vec![0, 0])]);
        assert_eq!(name, ATTENTION_MASK);
        assert!(reason.contains("row 0"), "{reason}");
        let (name, _) = err(vec![
            ids(),
            t(ATTENTION_MASK, vec![1, 2], vec![1, 1]),
            t(TOKEN_TYPE_IDS, vec![1, 2], vec![0, 2]),
        ]);
        assert_eq!(name, TOKEN_TYPE_IDS);
        let (name, reason) = err(vec![
            t(INPUT_IDS, vec![1, 5], vec![1; 5]),
            t(ATTENTION_MASK, vec![1, 5], vec![1; 5]),
        ]);
        assert_eq!(name, INPUT_IDS);
        assert!(reason.contains("length 5"), "{reason}");
        let fp =
            Tensor::new(ATTENTION_MASK, vec![1, 2], TensorData::Fp32(vec![1.0, 1.0])).expect("fp");
        let (name, reason) = err(vec![ids(), fp]);
        assert_eq!(name, ATTENTION_MASK);
        assert!(reason.contains("FP32"), "{reason}");
    }
}
