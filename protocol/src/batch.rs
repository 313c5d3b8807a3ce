//! Merging requests along the batch dimension and splitting the outputs back.

use crate::match_tensor_data;
use crate::tensor::{Tensor, TensorData};

/// Why a batch could not be merged or split.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum BatchError {
    #[error("input '{0}' is missing from one of the batched requests")]
    MissingInput(String),
    #[error("input '{tensor}': requests with shapes {a:?} and {b:?} cannot share a batch")]
    ShapeMismatch {
        tensor: String,
        a: Vec<i64>,
        b: Vec<i64>,
    },
    #[error("input '{0}': requests disagree on the datatype")]
    DatatypeMismatch(String),
    #[error("output '{tensor}' has first dimension {got} but the batch has {rows} rows")]
    OutputRows {
        tensor: String,
        got: i64,
        rows: usize,
    },
}

fn append(into: &mut TensorData, from: TensorData) -> bool {
    macro_rules! arm {
        ($($v:ident),*) => {
            match (into, from) {
                $((TensorData::$v(a), TensorData::$v(b)) => { a.extend(b); true })*
                _ => false,
            }
        };
    }
    arm!(
        Bool, Uint8, Uint16, Uint32, Uint64, Int8, Int16, Int32, Int64, Fp16, Bf16, Fp32, Fp64,
        Bytes
    )
}

/// Concatenates the requests' inputs along the first dimension, in the first request's input
/// order. Every request must carry the same inputs with the same non-batch dimensions.
pub fn concat_inputs(mut requests: Vec<Vec<Tensor>>) -> Result<Vec<Tensor>, BatchError> {
    if requests.len() == 1 {
        return Ok(requests.pop().unwrap_or_default());
    }
    let mut iter = requests.into_iter();
    let mut merged = iter.next().unwrap_or_default();
    for mut req in iter {
        for m in merged.iter_mut() {
            let pos = req
                .iter()
                .position(|t| t.name == m.name)
                .ok_or_else(|| BatchError::MissingInput(m.name.clone()))?;
            let t = req.swap_remove(pos);
            if t.shape.get(1..) != m.shape.get(1..) || t.shape.is_empty() {
                return Err(BatchError::ShapeMismatch {
                    tensor: m.name.clone(),
                    a: m.shape.clone(),
                    b: t.shape,
                });
            }
            if !append(&mut m.data, t.data) {
                return Err(BatchError::DatatypeMismatch(m.name.clone()));
            }
            m.shape[0] += t.shape[0];
        }
    }
    Ok(merged)
}

fn slice(data: &TensorData, start: usize, end: usize) -> TensorData {
    macro_rules! cut {
        ($($v:ident),*) => {
            match data {
                $(TensorData::$v(a) => TensorData::$v(a[start..end].to_vec()),)*
            }
        };
    }
    cut!(
        Bool, Uint8, Uint16, Uint32, Uint64, Int8, Int16, Int32, Int64, Fp16, Bf16, Fp32, Fp64,
        Bytes
    )
}

/// Splits batched outputs into one set per request, `rows[i]` rows for request `i`.
pub fn split_outputs(outputs: Vec<Tensor>, rows: &[usize]) -> Result<Vec<Vec<Tensor>>, BatchError> {
    if rows.len() == 1 {
        return Ok(vec![outputs]);
    }
    let total: usize = rows.iter().sum();
    let mut per_request: Vec<Vec<Tensor>> = rows
        .iter()
        .map(|_| Vec::with_capacity(outputs.len()))
        .collect();
    for out in outputs {
        let first = out.shape.first().copied().unwrap_or(-1);
        if usize::try_from(first).ok() != Some(total) {
            return Err(BatchError::OutputRows {
                tensor: out.name,
                got: first,
                rows: total,
            });
        }
        let per_row = match_tensor_data!(&out.data, v => v.len(), b => b.len())
            .checked_div(total)
            .unwrap_or(0);
        let mut start = 0;
        for (r, dest) in rows.iter().zip(per_request.iter_mut()) {
            let end = start + r * per_row;
            let mut shape = out.shape.clone();
            shape[0] = *r as i64;
            dest.push(Tensor {
                name: out.name.clone(),
                shape,
                data: slice(&out.data, start, end),
            });
            start = end;
        }
    }
    Ok(per_request)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(name: &str, shape: Vec<i64>, v: Vec<f32>) -> Tensor {
        Tensor::new(name, shape, TensorData::Fp32(v)).expect("tensor")
    }

    #[test]
    fn concat_then_split_round_trips() {
        let a = vec![t("x", vec![1, 2], vec![1.0, 2.0])];
        let b = vec![t("x", vec![2, 2], vec![3.0, 4.0, 5.0, 6.0])];
        let merged = concat_inputs(vec![a.clone(), b.clone()]).expect("merges");
        assert_eq!(merged[0].shape, vec![3, 2]);
        assert_eq!(
            merged[0].data,
            TensorData::Fp32(vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0])
        );
        let back = split_outputs(merged, &[1, 2]).expect("splits");
        assert_eq!(back, vec![a, b]);
    }

    #[test]
    fn mismatches_are_errors() {
        let a = vec![t("x", vec![1, 2], vec![1.0, 2.0])];
        let b = vec![t("x", vec![1, 3], vec![3.0, 4.0, 5.0])];
        assert!(matches!(
            concat_inputs(vec![a.clone(), b]),
            Err(BatchError::ShapeMismatch { .. })
        ));
        let c = vec![t("y", vec![1, 2], vec![3.0, 4.0])];
        assert_eq!(
            concat_inputs(vec![a.clone(), c]),
            Err(BatchError::MissingInput("x".into()))
        );
        let out = vec![t("o", vec![2], vec![1.0, 2.0])];
        assert!(matches!(
            split_outputs(out, &[1, 2]),
            Err(BatchError::OutputRows {
                got: 2,
                rows: 3,
                ..
            })
        ));
    }
}
