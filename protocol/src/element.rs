//! Fixed-size element types: little-endian wire encoding and JSON conversion.

use crate::datatype::DataType;
use crate::json::JsonScalar;
use half::{bf16, f16};

/// A fixed-size tensor element: how it is read from and written to the wire.
pub trait Element: Copy + Send + Sync + 'static {
    const DATATYPE: DataType;
    const SIZE: usize;
    /// Reads one element from exactly `SIZE` little-endian bytes.
    fn read_le(bytes: &[u8]) -> Self;
    /// Appends the element's little-endian bytes.
    fn write_le(self, out: &mut Vec<u8>);
    /// Converts a JSON scalar, or `None` when it does not fit this type.
    fn from_json(value: &JsonScalar) -> Option<Self>;
}

macro_rules! int_element {
    ($($t:ty => $dt:ident),* $(,)?) => {$(
        impl Element for $t {
            const DATATYPE: DataType = DataType::$dt;
            const SIZE: usize = std::mem::size_of::<$t>();
            fn read_le(bytes: &[u8]) -> Self {
                let mut a = [0u8; std::mem::size_of::<$t>()];
                a.copy_from_slice(bytes);
                <$t>::from_le_bytes(a)
            }
            fn write_le(self, out: &mut Vec<u8>) {
                out.extend_from_slice(&self.to_le_bytes());
            }
            fn from_json(value: &JsonScalar) -> Option<Self> {
                match *value {
                    JsonScalar::I64(v) => <$t>::try_from(v).ok(),
                    JsonScalar::U64(v) => <$t>::try_from(v).ok(),
                    // Integral floats such as 3.0 are accepted, as Python clients send them.
                    JsonScalar::F64(v) if v.fract() == 0.0 && v >= <$t>::MIN as f64 && v <= <$t>::MAX as f64 => Some(v as $t),
                    _ => None,
                }
            }
        }
    )*};
}
int_element!(u8 => Uint8, u16 => Uint16, u32 => Uint32, u64 => Uint64, i8 => Int8, i16 => Int16, i32 => Int32, i64 => Int64);

macro_rules! float_element {
    ($($t:ty => $dt:ident, $from:expr, $read:expr, $write:expr);* $(;)?) => {$(
        impl Element for $t {
            const DATATYPE: DataType = DataType::$dt;
            const SIZE: usize = std::mem::size_of::<$t>();
            fn read_le(bytes: &[u8]) -> Self {
                let mut a = [0u8; std::mem::size_of::<$t>()];
                a.copy_from_slice(bytes);
                $read(a)
            }
            fn write_le(self, out: &mut Vec<u8>) {
                out.extend_from_slice(&$write(self));
            }
            fn from_json(value: &JsonScalar) -> Option<Self> {
                let v = match *value {
                    JsonScalar::F64(v) => v,
                    JsonScalar::I64(v) => v as f64,
                    JsonScalar::U64(v) => v as f64,
                    _ => return None,
                };
                Some($from(v))
            }
        }
    )*};
}
float_element!(
    f32 => Fp32, |v: f64| v as f32, f32::from_le_bytes, f32::to_le_bytes;
    f64 => Fp64, |v: f64| v, f64::from_le_bytes, f64::to_le_bytes;
    f16 => Fp16, f16::from_f64, f16::from_le_bytes, f16::to_le_bytes;
    bf16 => Bf16, bf16::from_f64, bf16::from_le_bytes, bf16::to_le_bytes;
);

impl Element for bool {
    const DATATYPE: DataType = DataType::Bool;
    const SIZE: usize = 1;
    fn read_le(bytes: &[u8]) -> Self {
        bytes[0] != 0
    }
    fn write_le(self, out: &mut Vec<u8>) {
        out.push(u8::from(self));
    }
    fn from_json(value: &JsonScalar) -> Option<Self> {
        match *value {
            JsonScalar::Bool(b) => Some(b),
            _ => None,
        }
    }
}

/// Decodes a little-endian buffer; `None` when its length is not a multiple of the element size.
pub fn decode_le<T: Element>(bytes: &[u8]) -> Option<Vec<T>> {
    if !bytes.len().is_multiple_of(T::SIZE) {
        return None;
    }
    Some(bytes.chunks_exact(T::SIZE).map(T::read_le).collect())
}

/// Appends every element's little-endian bytes.
pub fn encode_le<T: Element>(values: &[T], out: &mut Vec<u8>) {
    out.reserve(values.len() * T::SIZE);
    for v in values {
        v.write_le(out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn le_round_trip() {
        let v = vec![1.5f32, -2.0, f32::MAX];
        let mut out = Vec::new();
        encode_le(&v, &mut out);
        assert_eq!(out.len(), 12);
        assert_eq!(decode_le::<f32>(&out), Some(v));
        assert_eq!(decode_le::<f32>(&out[..11]), None);
    }

    #[test]
    fn json_ranges_are_checked() {
        assert_eq!(i8::from_json(&JsonScalar::I64(127)), Some(127));
        assert_eq!(i8::from_json(&JsonScalar::I64(128)), None);
        assert_eq!(u32::from_json(&JsonScalar::I64(-1)), None);
        assert_eq!(i64::from_json(&JsonScalar::F64(3.0)), Some(3));
        assert_eq!(i64::from_json(&JsonScalar::F64(3.5)), None);
        assert_eq!(bool::from_json(&JsonScalar::I64(1)), None);
        assert_eq!(
            f16::from_json(&JsonScalar::F64(0.5)),
            Some(f16::from_f32(0.5))
        );
    }
}
