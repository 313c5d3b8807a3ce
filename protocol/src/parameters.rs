//! Request, tensor and response parameters (`"parameters": {...}` / `map<string, InferParameter>`).

use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;

/// One parameter value as the protocol allows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum ParamValue {
    Bool(bool),
    Int(i64),
    Uint(u64),
    Double(f64),
    String(String),
}

impl ParamValue {
    /// The value as a boolean, if it is one.
    pub fn as_bool(&self) -> Option<bool> {
        match self {
            ParamValue::Bool(b) => Some(*b),
            _ => None,
        }
    }

    /// The value as a non-negative integer, if it is one.
    pub fn as_u64(&self) -> Option<u64> {
        match *self {
            ParamValue::Int(v) => u64::try_from(v).ok(),
            ParamValue::Uint(v) => Some(v),
            _ => None,
        }
    }

    /// The value as a signed integer, if it is one.
    pub fn as_i64(&self) -> Option<i64> {
        match *self {
            ParamValue::Int(v) => Some(v),
            ParamValue::Uint(v) => i64::try_from(v).ok(),
            _ => None,
        }
    }
}

/// Read straight from the JSON token (an untagged derive would buffer every value and try each
/// variant in turn): integers that fit `i64` are `Int`, larger ones `Uint`.
impl<'de> Deserialize<'de> for ParamValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = ParamValue;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a boolean, a number or a string")
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<ParamValue, E> {
                Ok(ParamValue::Bool(v))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<ParamValue, E> {
                Ok(ParamValue::Int(v))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<ParamValue, E> {
                Ok(i64::try_from(v).map_or(ParamValue::Uint(v), ParamValue::Int))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<ParamValue, E> {
                Ok(ParamValue::Double(v))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<ParamValue, E> {
                Ok(ParamValue::String(v.to_owned()))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<ParamValue, E> {
                Ok(ParamValue::String(v))
            }
        }
        d.deserialize_any(V)
    }
}

/// A parameter map, ordered so that responses are stable.
pub type Parameters = BTreeMap<String, ParamValue>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_values_map_to_the_narrowest_variant() {
        let p: Parameters = serde_json::from_str(
            r#"{"b": true, "i": -3, "u": 18446744073709551615, "s": 7, "d": 0.5, "t": "x"}"#,
        )
        .expect("parses");
        assert_eq!(p["b"], ParamValue::Bool(true));
        assert_eq!(p["i"], ParamValue::Int(-3));
        assert_eq!(p["u"], ParamValue::Uint(u64::MAX));
        assert_eq!(p["s"], ParamValue::Int(7));
        assert_eq!(p["d"], ParamValue::Double(0.5));
        assert_eq!(p["t"], ParamValue::String("x".into()));
        let back: Parameters =
            serde_json::from_str(&serde_json::to_string(&p).expect("writes")).expect("parses");
        assert_eq!(back, p);
        for bad in [r#"{"n": null}"#, r#"{"a": [1]}"#, r#"{"o": {}}"#] {
            let e = serde_json::from_str::<Parameters>(bad).expect_err(bad);
            assert!(
                e.to_string().contains("a boolean, a number or a string"),
                "{e}"
            );
        }
    }
}
