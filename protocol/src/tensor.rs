//! Typed tensors: one buffer variant per datatype.

use crate::datatype::DataType;
use crate::element::{decode_le, encode_le, Element};
use crate::error::ProtocolError;
use crate::json::{JsonData, JsonScalar};
use bytes::Bytes;
use half::{bf16, f16};
use serde::ser::{Serialize, SerializeSeq, Serializer};

/// A tensor's elements, row-major, in their own type.
#[derive(Debug, Clone, PartialEq)]
pub enum TensorData {
    Bool(Vec<bool>),
    Uint8(Vec<u8>),
    Uint16(Vec<u16>),
    Uint32(Vec<u32>),
    Uint64(Vec<u64>),
    Int8(Vec<i8>),
    Int16(Vec<i16>),
    Int32(Vec<i32>),
    Int64(Vec<i64>),
    Fp16(Vec<f16>),
    Bf16(Vec<bf16>),
    Fp32(Vec<f32>),
    Fp64(Vec<f64>),
    Bytes(Vec<Bytes>),
}

/// Runs `$fixed` with `$v` bound to the typed vector of a fixed-size variant, or `$bytes` for BYTES.
#[macro_export]
macro_rules! match_tensor_data {
    ($data:expr, $v:ident => $fixed:expr, $b:ident => $bytes:expr) => {
        match $data {
            $crate::TensorData::Bool($v) => $fixed,
            $crate::TensorData::Uint8($v) => $fixed,
            $crate::TensorData::Uint16($v) => $fixed,
            $crate::TensorData::Uint32($v) => $fixed,
            $crate::TensorData::Uint64($v) => $fixed,
            $crate::TensorData::Int8($v) => $fixed,
            $crate::TensorData::Int16($v) => $fixed,
            $crate::TensorData::Int32($v) => $fixed,
            $crate::TensorData::Int64($v) => $fixed,
            $crate::TensorData::Fp16($v) => $fixed,
            $crate::TensorData::Bf16($v) => $fixed,
            $crate::TensorData::Fp32($v) => $fixed,
            $crate::TensorData::Fp64($v) => $fixed,
            $crate::TensorData::Bytes($b) => $bytes,
        }
    };
}

/// Builds a `TensorData` for a datatype: `$fixed` is evaluated with the type alias `$t` set to the
/// element type and must give a `Result<Vec<$t>, E>`; `$bytes` gives `Result<Vec<Bytes>, E>`.
macro_rules! build_tensor_data {
    ($dt:expr, $t:ident => $fixed:expr, bytes => $bytes:expr) => {
        match $dt {
            DataType::Bool => {
                type $t = bool;
                TensorData::Bool($fixed?)
            }
            DataType::Uint8 => {
                type $t = u8;
                TensorData::Uint8($fixed?)
            }
            DataType::Uint16 => {
                type $t = u16;
                TensorData::Uint16($fixed?)
            }
            DataType::Uint32 => {
                type $t = u32;
                TensorData::Uint32($fixed?)
            }
            DataType::Uint64 => {
                type $t = u64;
                TensorData::Uint64($fixed?)
            }
            DataType::Int8 => {
                type $t = i8;
                TensorData::Int8($fixed?)
            }
            DataType::Int16 => {
                type $t = i16;
                TensorData::Int16($fixed?)
            }
            DataType::Int32 => {
                type $t = i32;
                TensorData::Int32($fixed?)
            }
            DataType::Int64 => {
                type $t = i64;
                TensorData::Int64($fixed?)
            }
            DataType::Fp16 => {
                type $t = f16;
                TensorData::Fp16($fixed?)
            }
            DataType::Bf16 => {
                type $t = bf16;
                TensorData::Bf16($fixed?)
            }
            DataType::Fp32 => {
                type $t = f32;
                TensorData::Fp32($fixed?)
            }
            DataType::Fp64 => {
                type $t = f64;
                TensorData::Fp64($fixed?)
            }
            DataType::Bytes => TensorData::Bytes($bytes?),
        }
    };
}

impl TensorData {
    /// The datatype of the elements.
    pub fn datatype(&self) -> DataType {
        fn dt<T: Element>(_: &[T]) -> DataType {
            T::DATATYPE
        }
        match_tensor_data!(self, v => dt(v), _b => DataType::Bytes)
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        match_tensor_data!(self, v => v.len(), b => b.len())
    }

    /// True when there are no elements.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Decodes the binary wire form: little-endian elements, or for BYTES each element as a
    /// 4-byte little-endian length followed by its bytes. `what` names the tensor in errors.
    pub fn from_wire(
        datatype: DataType,
        raw: &Bytes,
        what: &str,
    ) -> Result<TensorData, ProtocolError> {
        let size_err = || ProtocolError::RawSize {
            tensor: what.to_string(),
            datatype,
            len: raw.len(),
        };
        Ok(
            build_tensor_data!(datatype, T => decode_le::<T>(raw).ok_or_else(size_err),
            bytes => decode_bytes_elements(raw).ok_or_else(|| ProtocolError::BadBytesEncoding(what.to_string()))),
        )
    }

    /// Appends the binary wire form (see [`TensorData::from_wire`]).
    pub fn write_wire(&self, out: &mut Vec<u8>) {
        match_tensor_data!(self, v => encode_le(v, out), b => {
            for e in b {
                out.extend_from_slice(&(e.len() as u32).to_le_bytes());
                out.extend_from_slice(e);
            }
        })
    }

    /// The binary wire form as a new buffer.
    pub fn to_wire(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.wire_size_hint());
        self.write_wire(&mut out);
        out
    }

    fn wire_size_hint(&self) -> usize {
        match self {
            TensorData::Bytes(b) => b.iter().map(|e| e.len() + 4).sum(),
            other => other.len() * other.datatype().element_size().unwrap_or(1),
        }
    }

    /// Converts JSON scalars to the datatype, naming `what` and the element index on failure.
    pub fn from_json(
        datatype: DataType,
        values: JsonData,
        what: &str,
    ) -> Result<TensorData, ProtocolError> {
        let bad = |i: usize, v: &JsonScalar| ProtocolError::JsonElement {
            tensor: what.to_string(),
            index: i,
            datatype,
            got: v.describe(),
        };
        let values = match values {
            JsonData::Numbers(numbers) => {
                // The fast path: plain numbers straight into the element type.
                return Ok(build_tensor_data!(datatype, T => numbers
                .iter()
                .enumerate()
                .map(|(i, &v)| T::from_json(&JsonScalar::F64(v)).ok_or_else(|| bad(i, &JsonScalar::F64(v))))
                .collect::<Result<Vec<T>, ProtocolError>>(),
                bytes => match numbers.first() {
                    Some(&v) => Err(bad(0, &JsonScalar::F64(v))),
                    None => Ok(Vec::new()),
                }));
            }
            JsonData::Scalars(scalars) => scalars,
        };
        Ok(build_tensor_data!(datatype, T => values
                .iter()
                .enumerate()
                .map(|(i, v)| T::from_json(v).ok_or_else(|| bad(i, v)))
                .collect::<Result<Vec<T>, ProtocolError>>(),
            bytes => values
                .into_iter()
                .enumerate()
                .map(|(i, v)| match v {
                    JsonScalar::Str(s) => Ok(Bytes::from(s.into_bytes())),
                    other => Err(bad(i, &other)),
                })
                .collect::<Result<Vec<Bytes>, ProtocolError>>()))
    }
}

/// Splits a BYTES wire buffer into its elements.
fn decode_bytes_elements(raw: &Bytes) -> Option<Vec<Bytes>> {
    let mut out = Vec::new();
    let mut pos = 0usize;
    while pos < raw.len() {
        let len_bytes: [u8; 4] = raw.get(pos..pos + 4)?.try_into().ok()?;
        let len = u32::from_le_bytes(len_bytes) as usize;
        let start = pos + 4;
        let end = start.checked_add(len)?;
        if end > raw.len() {
            return None;
        }
        out.push(raw.slice(start..end));
        pos = end;
    }
    Some(out)
}

impl Serialize for TensorData {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            TensorData::Bool(v) => v.serialize(s),
            TensorData::Uint8(v) => v.serialize(s),
            TensorData::Uint16(v) => v.serialize(s),
            TensorData::Uint32(v) => v.serialize(s),
            TensorData::Uint64(v) => v.serialize(s),
            TensorData::Int8(v) => v.serialize(s),
            TensorData::Int16(v) => v.serialize(s),
            TensorData::Int32(v) => v.serialize(s),
            TensorData::Int64(v) => v.serialize(s),
            TensorData::Fp16(v) => s.collect_seq(v.iter().map(|x| x.to_f32())),
            TensorData::Bf16(v) => s.collect_seq(v.iter().map(|x| x.to_f32())),
            TensorData::Fp32(v) => v.serialize(s),
            TensorData::Fp64(v) => v.serialize(s),
            TensorData::Bytes(v) => {
                let mut seq = s.serialize_seq(Some(v.len()))?;
                for e in v {
                    seq.serialize_element(&String::from_utf8_lossy(e))?;
                }
                seq.end()
            }
        }
    }
}

/// A named tensor with its shape. The element count always equals the product of the shape.
#[derive(Debug, Clone, PartialEq)]
pub struct Tensor {
    pub name: String,
    pub shape: Vec<i64>,
    pub data: TensorData,
}

impl Tensor {
    /// Builds a tensor, checking that the shape has no negative dimension and that its element
    /// count matches the data.
    pub fn new(
        name: impl Into<String>,
        shape: Vec<i64>,
        data: TensorData,
    ) -> Result<Tensor, ProtocolError> {
        let name = name.into();
        let expected = element_count(&shape).ok_or_else(|| ProtocolError::BadShape {
            tensor: name.clone(),
            shape: shape.clone(),
        })?;
        if expected != data.len() {
            return Err(ProtocolError::ElementCount {
                tensor: name,
                shape,
                expected,
                got: data.len(),
            });
        }
        Ok(Tensor { name, shape, data })
    }

    /// The element datatype.
    pub fn datatype(&self) -> DataType {
        self.data.datatype()
    }
}

/// Product of the dimensions; `None` for a negative dimension or on overflow.
pub fn element_count(shape: &[i64]) -> Option<usize> {
    shape.iter().try_fold(1usize, |acc, &d| {
        let d = usize::try_from(d).ok()?;
        acc.checked_mul(d)
    })
}

/// Formats a shape as `[1,64]`, the way error messages show it.
pub fn fmt_shape(shape: &[i64]) -> String {
    let parts: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
    format!("[{}]", parts.join(","))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_round_trip_every_type() {
        let cases = vec![
            TensorData::Bool(vec![true, false]),
            TensorData::Uint8(vec![1, 255]),
            TensorData::Uint16(vec![1, 65535]),
            TensorData::Uint32(vec![7]),
            TensorData::Uint64(vec![u64::MAX]),
            TensorData::Int8(vec![-128]),
            TensorData::Int16(vec![-3]),
            TensorData::Int32(vec![i32::MIN]),
            TensorData::Int64(vec![-1, 2]),
            TensorData::Fp16(vec![f16::from_f32(1.5)]),
            TensorData::Bf16(vec![bf16::from_f32(-2.0)]),
            TensorData::Fp32(vec![0.25, -1.0]),
            TensorData::Fp64(vec![1e300]),
            TensorData::Bytes(vec![Bytes::from_static(b"abc"), Bytes::new()]),
        ];
        for data in cases {
            let wire = Bytes::from(data.to_wire());
            let back = TensorData::from_wire(data.datatype(), &wire, "t").expect("decodes");
            assert_eq!(back, data);
        }
    }

    #[test]
    fn truncated_wire_is_an_error() {
        let err = TensorData::from_wire(DataType::Fp32, &Bytes::from_static(&[0, 0, 0]), "x")
            .unwrap_err();
        assert!(err.to_string().contains("'x'"), "{err}");
        let bad_bytes = Bytes::from_static(&[5, 0, 0, 0, b'a']);
        assert!(TensorData::from_wire(DataType::Bytes, &bad_bytes, "s").is_err());
    }

    #[test]
    fn element_count_must_match_shape() {
        let err = Tensor::new("input", vec![1, 3], TensorData::Fp32(vec![1.0, 2.0])).unwrap_err();
        assert_eq!(
            err.to_string(),
            "input 'input': shape [1,3] needs 3 elements, got 2"
        );
        assert!(Tensor::new("input", vec![-1, 3], TensorData::Fp32(vec![])).is_err());
    }

    #[test]
    fn json_errors_name_the_element() {
        let err = TensorData::from_json(DataType::Int8, JsonData::Numbers(vec![1.0, 999.0]), "x")
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "input 'x': element 1: expected an INT8 value, got number 999"
        );
    }
}
