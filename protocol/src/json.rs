//! JSON tensor data: flat or nested arrays flattened row-major while parsing.

use serde::de::{DeserializeSeed, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer};
use std::fmt;

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
#[derive(Debug, Clone, Default, PartialEq)]
pub struct JsonData(pub Vec<JsonScalar>);

impl<'de> Deserialize<'de> for JsonData {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let mut out = Vec::new();
        Flatten(&mut out).deserialize(d)?;
        Ok(JsonData(out))
    }
}

struct Flatten<'a>(&'a mut Vec<JsonScalar>);

impl<'de> DeserializeSeed<'de> for Flatten<'_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Flatten<'_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a flat or nested array of numbers, booleans or strings")
    }
    fn visit_bool<E>(self, v: bool) -> Result<(), E> {
        self.0.push(JsonScalar::Bool(v));
        Ok(())
    }
    fn visit_i64<E>(self, v: i64) -> Result<(), E> {
        self.0.push(JsonScalar::I64(v));
        Ok(())
    }
    fn visit_u64<E>(self, v: u64) -> Result<(), E> {
        self.0.push(JsonScalar::U64(v));
        Ok(())
    }
    fn visit_f64<E>(self, v: f64) -> Result<(), E> {
        self.0.push(JsonScalar::F64(v));
        Ok(())
    }
    fn visit_str<E>(self, v: &str) -> Result<(), E> {
        self.0.push(JsonScalar::Str(v.to_string()));
        Ok(())
    }
    fn visit_string<E>(self, v: String) -> Result<(), E> {
        self.0.push(JsonScalar::Str(v));
        Ok(())
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        if let Some(n) = seq.size_hint() {
            self.0.reserve(n);
        }
        while seq.next_element_seed(Flatten(self.0))?.is_some() {}
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flattens_nested_arrays() {
        let d: JsonData = serde_json::from_str("[[1, 2], [3.5, -4]]").expect("valid");
        assert_eq!(
            d.0,
            vec![
                JsonScalar::U64(1),
                JsonScalar::U64(2),
                JsonScalar::F64(3.5),
                JsonScalar::I64(-4)
            ]
        );
        let s: JsonData = serde_json::from_str(r#"["a", ["b"]]"#).expect("valid");
        assert_eq!(s.0.len(), 2);
    }

    #[test]
    fn rejects_objects() {
        assert!(serde_json::from_str::<JsonData>(r#"[{"a": 1}]"#).is_err());
    }
}
