//! Padding tensors to a larger shape, for batching requests whose variable dimensions differ
//! (text: token sequences of different lengths share a batch padded to the longest).

use crate::batch::{concat_inputs, BatchError};
use crate::tensor::{Tensor, TensorData};
use bytes::Bytes;
use half::{bf16, f16};

/// Copies row-major `src` of shape `from` into a buffer of shape `to` (every dimension at least
/// as large), filling the rest with `fill`.
fn pad_vec<T: Clone>(src: &[T], from: &[usize], to: &[usize], fill: T) -> Vec<T> {
    let total: usize = to.iter().product();
    let mut out = vec![fill; total];
    let rank = from.len();
    let Some(&last) = from.last() else {
        return out;
    };
    if last == 0 || src.is_empty() {
        return out;
    }
    let mut strides = vec![1usize; rank];
    for d in (0..rank - 1).rev() {
        strides[d] = strides[d + 1] * to[d + 1];
    }
    let mut idx = vec![0usize; rank - 1];
    for run in src.chunks_exact(last) {
        let dst: usize = idx.iter().zip(&strides).map(|(i, s)| i * s).sum();
        out[dst..dst + last].clone_from_slice(run);
        for d in (0..rank - 1).rev() {
            idx[d] += 1;
            if idx[d] < from[d] {
                break;
            }
            idx[d] = 0;
        }
    }
    out
}

/// Pads `t` to `target` (same rank, no dimension smaller) with `value` converted to the
/// tensor's element type (BYTES pads with empty strings).
pub fn pad_tensor(t: &Tensor, target: &[i64], value: f64) -> Result<Tensor, BatchError> {
    let bad = || BatchError::ShapeMismatch {
        tensor: t.name.clone(),
        a: t.shape.clone(),
        b: target.to_vec(),
    };
    if t.shape.len() != target.len() || t.shape.iter().zip(target).any(|(a, b)| a > b) {
        return Err(bad());
    }
    let dims = |s: &[i64]| -> Result<Vec<usize>, BatchError> {
        s.iter()
            .map(|&d| usize::try_from(d).map_err(|_| bad()))
            .collect()
    };
    let (from, to) = (dims(&t.shape)?, dims(target)?);
    macro_rules! arm {
        ($($v:ident => $fill:expr),* ; bytes) => {
            match &t.data {
                $(TensorData::$v(a) => TensorData::$v(pad_vec(a, &from, &to, $fill)),)*
                TensorData::Bytes(a) => TensorData::Bytes(pad_vec(a, &from, &to, Bytes::new())),
            }
        };
    }
    let data = arm!(
        Bool => value != 0.0,
        Uint8 => value as u8,
        Uint16 => value as u16,
        Uint32 => value as u32,
        Uint64 => value as u64,
        Int8 => value as i8,
        Int16 => value as i16,
        Int32 => value as i32,
        Int64 => value as i64,
        Fp16 => f16::from_f64(value),
        Bf16 => bf16::from_f64(value),
        Fp32 => value as f32,
        Fp64 => value;
        bytes
    );
    Ok(Tensor {
        name: t.name.clone(),
        shape: target.to_vec(),
        data,
    })
}

/// Like [`concat_inputs`], but the inputs named in `pads` may differ in their non-batch
/// dimensions: each is padded with its value to the largest size of each dimension in the batch.
pub fn concat_padded(
    mut requests: Vec<Vec<Tensor>>,
    pads: &[(String, f64)],
) -> Result<Vec<Tensor>, BatchError> {
    if requests.len() > 1 {
        for (name, value) in pads {
            let mut target: Option<Vec<i64>> = None;
            for t in requests.iter().flatten().filter(|t| &t.name == name) {
                match &mut target {
                    None => target = Some(t.shape.clone()),
                    Some(m) if m.len() == t.shape.len() => {
                        for (a, b) in m.iter_mut().zip(&t.shape).skip(1) {
                            *a = (*a).max(*b);
                        }
                    }
                    Some(m) => {
                        return Err(BatchError::ShapeMismatch {
                            tensor: name.clone(),
                            a: m.clone(),
                            b: t.shape.clone(),
                        })
                    }
                }
            }
            let Some(target) = target else { continue };
            for t in requests.iter_mut().flatten().filter(|t| &t.name == name) {
                if t.shape.get(1..) != target.get(1..) {
                    let mut shape = target.clone();
                    shape[0] = t.shape.first().copied().unwrap_or(0);
                    *t = pad_tensor(t, &shape, *value)?;
                }
            }
        }
    }
    concat_inputs(requests)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(shape: Vec<i64>, v: Vec<i64>) -> Tensor {
        Tensor::new("ids", shape, TensorData::Int64(v)).expect("tensor")
    }

    #[test]
    fn pads_the_last_dimension() {
        let t = ids(vec![2, 2], vec![1, 2, 3, 4]);
        let p = pad_tensor(&t, &[2, 4], 0.0).expect("pads");
        assert_eq!(p.data, TensorData::Int64(vec![1, 2, 0, 0, 3, 4, 0, 0]));
    }

    #[test]
    fn pads_inner_dimensions() {
        let t = Tensor::new("x", vec![1, 2, 2], TensorData::Fp32(vec![1., 2., 3., 4.]))
            .expect("tensor");
        let p = pad_tensor(&t, &[1, 3, 3], -1.0).expect("pads");
        assert_eq!(
            p.data,
            TensorData::Fp32(vec![1., 2., -1., 3., 4., -1., -1., -1., -1.])
        );
    }

    #[test]
    fn refuses_shrinking() {
        let t = ids(vec![1, 3], vec![1, 2, 3]);
        assert!(pad_tensor(&t, &[1, 2], 0.0).is_err());
    }

    #[test]
    fn batches_different_lengths_padded_to_the_longest() {
        let a = vec![ids(vec![1, 2], vec![5, 6])];
        let b = vec![ids(vec![2, 3], vec![1, 2, 3, 4, 5, 6])];
        let merged = concat_padded(vec![a, b], &[("ids".into(), 0.0)]).expect("merges");
        assert_eq!(merged[0].shape, vec![3, 3]);
        assert_eq!(
            merged[0].data,
            TensorData::Int64(vec![5, 6, 0, 1, 2, 3, 4, 5, 6])
        );
    }

    #[test]
    fn unpadded_inputs_must_still_agree() {
        let a = vec![ids(vec![1, 2], vec![5, 6])];
        let b = vec![ids(vec![1, 3], vec![1, 2, 3])];
        assert!(concat_padded(vec![a, b], &[]).is_err());
    }
}
