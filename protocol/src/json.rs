//! JSON tensor data: flat or nested arrays flattened row-major while parsing. Arrays of numbers
//! (the common case: FP32 inputs) are collected as plain `f64`s, 8 bytes an element with no
//! per-element tag; anything else (strings, booleans, integers beyond 2^53, which `f64` cannot
//! hold exactly) switches the array to tagged scalars.

use serde::de::{DeserializeSeed, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer};
use std::cell::Cell;
use std::fmt;

thread_local! {
    /// Most strings one tensor's JSON data may hold while [`with_string_limit`] runs.
    static MAX_STRINGS: Cell<usize> = const { Cell::new(usize::MAX) };
}

/// Runs `parse` (a synchronous JSON parse on this thread) refusing tensor data of more than
/// `max` strings, before they are all in memory: each string costs far more than its bytes.
pub fn with_string_limit<T>(max: usize, parse: impl FnOnce() -> T) -> T {
    let previous = MAX_STRINGS.with(|m| m.replace(max));
    let out = parse();
    MAX_STRINGS.with(|m| m.set(previous));
    out
}

/// One JSON scalar of tensor data.
#[derive(Debug, Clone, PartialEq)]
pub enum JsonScalar {
    Bool(bool),
    I64(i64),
    U64(u64),
    F64(f64),
    Str(String),
}

impl JsonScalar {
    /// A short description for error messages.
    pub fn describe(&self) -> String {
        match self {
            JsonScalar::Bool(b) => format!("boolean {b}"),
            JsonScalar::I64(v) => format!("number {v}"),
            JsonScalar::U64(v) => format!("number {v}"),
            JsonScalar::F64(v) => format!("number {v}"),
            JsonScalar::Str(_) => "a string".to_string(),
        }
    }
}

/// Tensor `data` as sent in JSON, already flattened in row-major order.
#[derive(Debug, Clone, PartialEq)]
pub enum JsonData {
    /// Every element a number that `f64` holds exactly.
    Numbers(Vec<f64>),
    /// Anything else.
    Scalars(Vec<JsonScalar>),
}

impl Default for JsonData {
    fn default() -> JsonData {
        JsonData::Numbers(Vec::new())
    }
}

impl JsonData {
    pub fn len(&self) -> usize {
        match self {
            JsonData::Numbers(v) => v.len(),
            JsonData::Scalars(v) => v.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Every element as a tagged scalar.
    pub fn into_scalars(self) -> Vec<JsonScalar> {
        match self {
            JsonData::Numbers(v) => v.into_iter().map(JsonScalar::F64).collect(),
            JsonData::Scalars(v) => v,
        }
    }

    fn push(&mut self, v: JsonScalar) {
        match (&mut *self, v) {
            (JsonData::Numbers(n), JsonScalar::F64(f)) => n.push(f),
            (JsonData::Numbers(n), JsonScalar::I64(i)) if i.unsigned_abs() <= EXACT => {
                n.push(i as f64)
            }
            (JsonData::Numbers(n), JsonScalar::U64(u)) if u <= EXACT => n.push(u as f64),
            (JsonData::Scalars(s), v) => s.push(v),
            (JsonData::Numbers(n), v) => {
                let mut s: Vec<JsonScalar> =
                    std::mem::take(n).into_iter().map(JsonScalar::F64).collect();
                s.push(v);
                *self = JsonData::Scalars(s);
            }
        }
    }

    fn reserve(&mut self, n: usize) {
        match self {
            JsonData::Numbers(v) => v.reserve(n),
            JsonData::Scalars(v) => v.reserve(n),
        }
    }
}

/// The largest integer magnitude every `f64` integer up to holds exactly (2^53).
const EXACT: u64 = 1 << 53;

impl<'de> Deserialize<'de> for JsonData {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(JsonTensorData::deserialize(d)?.data)
    }
}

/// How nested arrays were grouped: the length of the arrays at each depth, and whether they
/// disagreed (ragged arrays, or values beside arrays).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Grouping {
    /// Length of the first array seen at each depth (depth 0: the outer array). Inner arrays
    /// end before outer ones, so a depth can be filled in before the ones above it.
    dims: Vec<Option<usize>>,
    /// Depth of the first value seen, once one is.
    leaf_depth: Option<usize>,
    ragged: bool,
}

impl Grouping {
    fn array(&mut self, depth: usize, len: usize) {
        if self.dims.len() <= depth {
            self.dims.resize(depth + 1, None);
        }
        match self.dims.get_mut(depth) {
            Some(slot @ None) => *slot = Some(len),
            Some(Some(d)) if *d == len => {}
            _ => self.ragged = true,
        }
    }

    fn leaf(&mut self, depth: usize) {
        match self.leaf_depth {
            None => self.leaf_depth = Some(depth),
            Some(d) if d == depth => {}
            Some(_) => self.ragged = true,
        }
    }

    /// Checks nested data against the tensor's shape: flat data (one array of values) fits any
    /// shape whose element count matches (checked elsewhere); nested data must nest exactly as
    /// the shape says.
    pub fn check(&self, tensor: &str, shape: &[i64]) -> Result<(), crate::ProtocolError> {
        if self.dims.len() <= 1 && !self.ragged {
            return Ok(());
        }
        let fits = !self.ragged
            && self.dims.len() == shape.len()
            && self
                .dims
                .iter()
                .zip(shape)
                .all(|(d, &s)| d.and_then(|d| i64::try_from(d).ok()) == Some(s));
        if fits {
            Ok(())
        } else {
            Err(crate::ProtocolError::Grouping {
                tensor: tensor.to_string(),
                shape: shape.to_vec(),
            })
        }
    }
}

/// Tensor `data` with how it was grouped.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct JsonTensorData {
    pub data: JsonData,
    pub grouping: Grouping,
}

impl<'de> Deserialize<'de> for JsonTensorData {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let mut out = JsonTensorData::default();
        let mut strings = Budget {
            left: MAX_STRINGS.with(Cell::get),
        };
        Flatten {
            data: &mut out.data,
            grouping: &mut out.grouping,
            strings: &mut strings,
            depth: 0,
        }
        .deserialize(d)?;
        Ok(out)
    }
}

/// Strings one tensor's data may still hold.
struct Budget {
    left: usize,
}

struct Flatten<'a> {
    data: &'a mut JsonData,
    grouping: &'a mut Grouping,
    strings: &'a mut Budget,
    depth: usize,
}

impl<'de> DeserializeSeed<'de> for Flatten<'_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl Flatten<'_> {
    fn push(self, v: JsonScalar) {
        self.grouping.leaf(self.depth);
        self.data.push(v);
    }

    fn string<E: serde::de::Error>(self, v: String) -> Result<(), E> {
        if self.strings.left == 0 {
            return Err(E::custom(format!(
                "tensor data holds more than {} strings, the most this server takes per input \
                 (--max-bytes-elements)",
                MAX_STRINGS.with(Cell::get)
            )));
        }
        self.strings.left -= 1;
        self.push(JsonScalar::Str(v));
        Ok(())
    }
}

impl<'de> Visitor<'de> for Flatten<'_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a flat or nested array of numbers, booleans or strings")
    }
    fn visit_bool<E>(self, v: bool) -> Result<(), E> {
        self.push(JsonScalar::Bool(v));
        Ok(())
    }
    fn visit_i64<E>(self, v: i64) -> Result<(), E> {
        self.push(JsonScalar::I64(v));
        Ok(())
    }
    fn visit_u64<E>(self, v: u64) -> Result<(), E> {
        self.push(JsonScalar::U64(v));
        Ok(())
    }
    fn visit_f64<E>(self, v: f64) -> Result<(), E> {
        self.push(JsonScalar::F64(v));
        Ok(())
    }
    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<(), E> {
        self.string(v.to_string())
    }
    fn visit_string<E: serde::de::Error>(self, v: String) -> Result<(), E> {
        self.string(v)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        if let Some(n) = seq.size_hint() {
            self.data.reserve(n.min(4096));
        }
        let mut len = 0usize;
        while seq
            .next_element_seed(Flatten {
                data: &mut *self.data,
                grouping: &mut *self.grouping,
                strings: &mut *self.strings,
                depth: self.depth + 1,
            })?
            .is_some()
        {
            len += 1;
        }
        self.grouping.array(self.depth, len);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flattens_nested_arrays() {
        let d: JsonData = serde_json::from_str("[[1, 2], [3.5, -4]]").expect("valid");
        assert_eq!(d, JsonData::Numbers(vec![1.0, 2.0, 3.5, -4.0]));
        let s: JsonData = serde_json::from_str(r#"["a", ["b"]]"#).expect("valid");
        assert_eq!(s.len(), 2);
        assert!(matches!(s, JsonData::Scalars(_)));
    }

    #[test]
    fn integers_beyond_f64_stay_exact() {
        let big = (1u64 << 53) + 1;
        let d: JsonData = serde_json::from_str(&format!("[1.5, {big}, true]")).expect("valid");
        assert_eq!(
            d,
            JsonData::Scalars(vec![
                JsonScalar::F64(1.5),
                JsonScalar::U64(big),
                JsonScalar::Bool(true)
            ])
        );
        let neg: JsonData = serde_json::from_str("[-9007199254740993]").expect("valid");
        assert_eq!(
            neg,
            JsonData::Scalars(vec![JsonScalar::I64(-9007199254740993)])
        );
    }

    #[test]
    fn nested_data_must_nest_as_the_shape_says() {
        let g = |text: &str| {
            serde_json::from_str::<JsonTensorData>(text)
                .expect("valid")
                .grouping
        };
        assert!(
            g("[1, 2, 3, 4]").check("x", &[2, 2]).is_ok(),
            "flat fits any shape"
        );
        assert!(g("[[1, 2], [3, 4]]").check("x", &[2, 2]).is_ok());
        assert!(g("[[[1, 2]], [[3, 4]]]").check("x", &[2, 1, 2]).is_ok());
        for (text, shape) in [
            ("[[1, 2, 3], [4]]", vec![2, 2]),
            ("[[1, 2], [3, 4]]", vec![1, 4]),
            ("[[1, 2], 3, 4]", vec![2, 2]),
            ("[[1, 2], [3, 4]]", vec![2, 1, 2]),
        ] {
            let e = g(text).check("x", &shape).expect_err(text).to_string();
            assert!(e.contains("input 'x'") && e.contains("nest"), "{text}: {e}");
        }
    }

    #[test]
    fn strings_past_the_limit_stop_the_parse() {
        let text = r#"[["a", "b"], ["c", "d"]]"#;
        let ok = with_string_limit(4, || serde_json::from_str::<JsonTensorData>(text));
        assert_eq!(ok.expect("4 fit").data.len(), 4);
        let e = with_string_limit(3, || serde_json::from_str::<JsonTensorData>(text))
            .expect_err("5th string")
            .to_string();
        assert!(
            e.contains("more than 3 strings") && e.contains("--max-bytes-elements"),
            "{e}"
        );
        // The limit applies only inside the call.
        assert!(serde_json::from_str::<JsonTensorData>(text).is_ok());
    }

    #[test]
    fn rejects_objects() {
        assert!(serde_json::from_str::<JsonData>(r#"[{"a": 1}]"#).is_err());
    }
}
