//! Request, tensor and response parameters (`"parameters": {...}` / `map<string, InferParameter>`).

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// One parameter value as the protocol allows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
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

/// A parameter map, ordered so that responses are stable.
pub type Parameters = BTreeMap<String, ParamValue>;
