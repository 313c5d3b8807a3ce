//! Numbers in and out of tensors for the explainer, and the scalar it explains.

use crate::error::ServerError;
use osprey_protocol::{match_tensor_data, DataType, Tensor, TensorData};

/// A tensor's elements as f64 (None for BYTES).
pub fn to_f64(data: &TensorData) -> Option<Vec<f64>> {
    macro_rules! conv {
        ($v:ident) => {
            $v.iter().map(|&x| f64_of(x)).collect()
        };
    }
    match_tensor_data!(data, v => Some(conv!(v)), _b => None)
}

trait AsF64: Copy {
    fn f(self) -> f64;
}
macro_rules! as_f64 {
    ($($t:ty),*) => {$(impl AsF64 for $t { fn f(self) -> f64 { self as f64 } })*};
}
as_f64!(u8, u16, u32, u64, i8, i16, i32, i64, f32, f64);
impl AsF64 for bool {
    fn f(self) -> f64 {
        f64::from(u8::from(self))
    }
}
impl AsF64 for half::f16 {
    fn f(self) -> f64 {
        self.to_f64()
    }
}
impl AsF64 for half::bf16 {
    fn f(self) -> f64 {
        self.to_f64()
    }
}
fn f64_of<T: AsF64>(x: T) -> f64 {
    x.f()
}

/// Rows of values as a tensor of `datatype` (FP32 or FP64) and `shape`.
pub fn from_f64(
    name: &str,
    datatype: DataType,
    shape: Vec<i64>,
    v: Vec<f64>,
) -> Result<Tensor, ServerError> {
    let data = match datatype {
        DataType::Fp32 => TensorData::Fp32(v.into_iter().map(|x| x as f32).collect()),
        DataType::Fp64 => TensorData::Fp64(v),
        other => {
            return Err(ServerError::BadRequest(format!(
                "input '{name}' is {}: KernelSHAP explains FP32 and FP64 inputs",
                other.as_str()
            )))
        }
    };
    Tensor::new(name, shape, data).map_err(ServerError::from)
}

/// What of an output row is explained.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Target {
    /// The element that is largest for the unperturbed input.
    Argmax,
    /// One element of the row.
    Index(usize),
    /// Cosine similarity to the unperturbed row (embeddings).
    Cosine,
}

impl Target {
    pub fn parse(s: &str) -> Result<Target, ServerError> {
        match s {
            "" | "argmax" => Ok(Target::Argmax),
            "cosine" => Ok(Target::Cosine),
            n => n.parse().map(Target::Index).map_err(|_| {
                ServerError::BadRequest(format!(
                    "parameter 'target': '{n}' is not \"argmax\", \"cosine\" or an element index"
                ))
            }),
        }
    }

    /// Fixes the element for `Argmax` from the unperturbed row.
    pub fn resolve(self, reference: &[f64]) -> Result<Target, ServerError> {
        match self {
            Target::Argmax => Ok(Target::Index(
                reference
                    .iter()
                    .enumerate()
                    .max_by(|a, b| a.1.total_cmp(b.1))
                    .map_or(0, |(i, _)| i),
            )),
            Target::Index(i) if i >= reference.len() => Err(ServerError::BadRequest(format!(
                "parameter 'target': element {i} is out of range (the output has {} per row)",
                reference.len()
            ))),
            t => Ok(t),
        }
    }

    /// The explained scalar of one row.
    pub fn score(self, row: &[f64], reference: &[f64]) -> f64 {
        match self {
            Target::Index(i) => row.get(i).copied().unwrap_or(f64::NAN),
            Target::Argmax => row.iter().copied().fold(f64::NEG_INFINITY, f64::max),
            Target::Cosine => {
                let dot: f64 = row.iter().zip(reference).map(|(a, b)| a * b).sum();
                let n = |v: &[f64]| v.iter().map(|x| x * x).sum::<f64>().sqrt();
                dot / (n(row) * n(reference)).max(f64::MIN_POSITIVE)
            }
        }
    }

    pub fn describe(self) -> String {
        match self {
            Target::Index(i) => format!("element {i}"),
            Target::Argmax => "argmax".into(),
            Target::Cosine => "cosine similarity to the unperturbed output".into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets() {
        let r = [0.1, 0.7, 0.2];
        assert_eq!(
            Target::parse("argmax").expect("p").resolve(&r).expect("r"),
            Target::Index(1)
        );
        assert!(Target::parse("5").expect("p").resolve(&r).is_err());
        assert!(Target::parse("bogus").is_err());
        assert!((Target::Cosine.score(&[2.0, 0.0], &[1.0, 0.0]) - 1.0).abs() < 1e-12);
        assert_eq!(Target::Index(2).score(&r, &r), 0.2);
    }

    #[test]
    fn round_trip() {
        let t = from_f64("x", DataType::Fp32, vec![1, 2], vec![1.5, -2.0]).expect("t");
        assert_eq!(to_f64(&t.data), Some(vec![1.5, -2.0]));
        assert!(from_f64("x", DataType::Int8, vec![1], vec![1.0]).is_err());
    }
}
