//! Conversions between our typed tensors and ONNX Runtime values.

use crate::error::RuntimeError;
use ort::value::TensorElementType;
use ort::value::{DynValue, Tensor as OrtTensor};
use osprey_protocol::{DataType, Tensor, TensorData};

/// Our datatype for an ONNX element type, if we serve it.
pub fn datatype_of(ty: TensorElementType) -> Option<DataType> {
    Some(match ty {
        TensorElementType::Bool => DataType::Bool,
        TensorElementType::Uint8 => DataType::Uint8,
        TensorElementType::Uint16 => DataType::Uint16,
        TensorElementType::Uint32 => DataType::Uint32,
        TensorElementType::Uint64 => DataType::Uint64,
        TensorElementType::Int8 => DataType::Int8,
        TensorElementType::Int16 => DataType::Int16,
        TensorElementType::Int32 => DataType::Int32,
        TensorElementType::Int64 => DataType::Int64,
        TensorElementType::Float16 => DataType::Fp16,
        TensorElementType::Bfloat16 => DataType::Bf16,
        TensorElementType::Float32 => DataType::Fp32,
        TensorElementType::Float64 => DataType::Fp64,
        TensorElementType::String => DataType::Bytes,
        _ => return None,
    })
}

fn ort_err(name: &str) -> impl Fn(ort::Error) -> RuntimeError + '_ {
    move |e| RuntimeError::BadInput {
        name: name.to_string(),
        reason: e.to_string(),
    }
}

/// Moves a tensor into an ONNX Runtime value (no copy for fixed-size types).
pub fn to_ort(t: Tensor) -> Result<DynValue, RuntimeError> {
    let Tensor { name, shape, data } = t;
    let err = ort_err(&name);
    macro_rules! fixed {
        ($v:expr) => {
            OrtTensor::from_array((shape, $v)).map_err(&err)?.into_dyn()
        };
    }
    Ok(match data {
        TensorData::Bool(v) => fixed!(v),
        TensorData::Uint8(v) => fixed!(v),
        TensorData::Uint16(v) => fixed!(v),
        TensorData::Uint32(v) => fixed!(v),
        TensorData::Uint64(v) => fixed!(v),
        TensorData::Int8(v) => fixed!(v),
        TensorData::Int16(v) => fixed!(v),
        TensorData::Int32(v) => fixed!(v),
        TensorData::Int64(v) => fixed!(v),
        TensorData::Fp16(v) => fixed!(v),
        TensorData::Bf16(v) => fixed!(v),
        TensorData::Fp32(v) => fixed!(v),
        TensorData::Fp64(v) => fixed!(v),
        TensorData::Bytes(v) => {
            let strings = v
                .iter()
                .enumerate()
                .map(|(i, b)| match std::str::from_utf8(b) {
                    Ok(s) if !s.contains('\0') => Ok(s.to_string()),
                    _ => Err(RuntimeError::BadInput {
                        name: name.clone(),
                        reason: format!("element {i} is not UTF-8 text without NUL bytes, as an ONNX string must be"),
                    }),
                })
                .collect::<Result<Vec<String>, RuntimeError>>()?;
            OrtTensor::from_string_array((shape, strings.as_slice()))
                .map_err(&err)?
                .into_dyn()
        }
    })
}

/// Copies an ONNX Runtime output value into a named tensor.
pub fn from_ort(name: &str, value: &DynValue) -> Result<Tensor, RuntimeError> {
    let fail = |e: ort::Error| RuntimeError::Inference(format!("output '{name}': {e}"));
    let ty = value
        .dtype()
        .tensor_type()
        .ok_or_else(|| RuntimeError::Inference(format!("output '{name}' is not a tensor")))?;
    macro_rules! fixed {
        ($t:ty, $variant:ident) => {{
            let (shape, data) = value.try_extract_tensor::<$t>().map_err(fail)?;
            (shape.to_vec(), TensorData::$variant(data.to_vec()))
        }};
    }
    let (shape, data) = match ty {
        TensorElementType::Bool => fixed!(bool, Bool),
        TensorElementType::Uint8 => fixed!(u8, Uint8),
        TensorElementType::Uint16 => fixed!(u16, Uint16),
        TensorElementType::Uint32 => fixed!(u32, Uint32),
        TensorElementType::Uint64 => fixed!(u64, Uint64),
        TensorElementType::Int8 => fixed!(i8, Int8),
        TensorElementType::Int16 => fixed!(i16, Int16),
        TensorElementType::Int32 => fixed!(i32, Int32),
        TensorElementType::Int64 => fixed!(i64, Int64),
        TensorElementType::Float16 => fixed!(half::f16, Fp16),
        TensorElementType::Bfloat16 => fixed!(half::bf16, Bf16),
        TensorElementType::Float32 => fixed!(f32, Fp32),
        TensorElementType::Float64 => fixed!(f64, Fp64),
        TensorElementType::String => {
            let (shape, strings) = value.try_extract_strings().map_err(fail)?;
            let data = strings
                .into_iter()
                .map(|s| bytes::Bytes::from(s.into_bytes()))
                .collect();
            (shape.to_vec(), TensorData::Bytes(data))
        }
        other => {
            return Err(RuntimeError::Inference(format!(
                "output '{name}' has unsupported type {other:?}"
            )))
        }
    };
    Tensor::new(name, shape, data).map_err(|e| RuntimeError::Inference(e.to_string()))
}
