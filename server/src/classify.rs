//! The classification extension: an output requested with `"parameters": {"classification": N}`
//! comes back as BYTES `"<value>:<index>[:<label>]"`, the N largest values of each row (the
//! last dimension) in descending order, labels from the output's `label_filename`.

use crate::error::ServerError;
use bytes::Bytes;
use osprey_protocol::{match_tensor_data, ParamValue, RequestedOutput, Tensor, TensorData};

/// The `classification` count asked for on a requested output, if any.
pub fn requested_count(o: &RequestedOutput) -> Result<Option<usize>, ServerError> {
    match o.parameters.get("classification") {
        None => Ok(None),
        Some(v) => match v.as_u64() {
            Some(n) if n > 0 => Ok(Some(n as usize)),
            _ => Err(ServerError::BadRequest(format!(
                "output '{}': parameter 'classification' must be a positive integer, got {}",
                o.name,
                match v {
                    ParamValue::String(s) => format!("'{s}'"),
                    other => format!("{other:?}"),
                }
            ))),
        },
    }
}

/// Triton's spelling of a value (C++ `std::to_string`: six decimals for floats).
trait ClassValue: Copy {
    fn score(self) -> f64;
    fn text(self) -> String;
}

macro_rules! int_value {
    ($($t:ty),*) => {$(
        impl ClassValue for $t {
            fn score(self) -> f64 { self as f64 }
            fn text(self) -> String { self.to_string() }
        }
    )*};
}
int_value!(u8, u16, u32, u64, i8, i16, i32, i64);

macro_rules! float_value {
    ($($t:ty),*) => {$(
        impl ClassValue for $t {
            fn score(self) -> f64 { f64::from(self) }
            fn text(self) -> String { format!("{:.6}", f64::from(self)) }
        }
    )*};
}
float_value!(f32, f64, half::f16, half::bf16);

impl ClassValue for bool {
    fn score(self) -> f64 {
        f64::from(u8::from(self))
    }
    fn text(self) -> String {
        u8::from(self).to_string()
    }
}

fn top<T: ClassValue>(v: &[T], classes: usize, n: usize, labels: Option<&[String]>) -> Vec<Bytes> {
    let mut out = Vec::with_capacity(v.len() / classes.max(1) * n);
    for row in v.chunks(classes.max(1)) {
        let mut idx: Vec<usize> = (0..row.len()).collect();
        // Stable: equal values keep index order. NaN sorts last.
        idx.sort_by(|&a, &b| {
            row[b]
                .score()
                .partial_cmp(&row[a].score())
                .unwrap_or_else(|| row[a].score().is_nan().cmp(&row[b].score().is_nan()))
        });
        for &i in idx.iter().take(n) {
            let mut s = format!("{}:{i}", row[i].text());
            if let Some(l) = labels.and_then(|l| l.get(i)) {
                s.push(':');
                s.push_str(l);
            }
            out.push(Bytes::from(s));
        }
    }
    out
}

/// Replaces `t` by its top `n` classes along the last dimension.
pub fn classify(t: Tensor, n: usize, labels: Option<&[String]>) -> Result<Tensor, ServerError> {
    let classes = t.shape.last().map_or(1, |&d| d.max(0) as usize);
    let n = n.min(classes);
    let data = match_tensor_data!(&t.data, v => top(v, classes, n, labels), _b => {
        return Err(ServerError::BadRequest(format!(
            "output '{}': classification needs a numeric output, not BYTES",
            t.name
        )))
    });
    let mut shape = t.shape.clone();
    match shape.last_mut() {
        Some(last) => *last = n as i64,
        None => shape.push(n as i64),
    }
    Ok(Tensor {
        name: t.name,
        shape,
        data: TensorData::Bytes(data),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(t: &Tensor) -> Vec<String> {
        match &t.data {
            TensorData::Bytes(b) => b
                .iter()
                .map(|x| String::from_utf8_lossy(x).into_owned())
                .collect(),
            _ => panic!("not bytes"),
        }
    }

    #[test]
    fn top_n_per_row_with_labels() {
        let t = Tensor::new(
            "p",
            vec![2, 3],
            TensorData::Fp32(vec![0.1, 0.7, 0.2, 0.5, 0.3, 0.2]),
        )
        .expect("t");
        let labels = vec!["a".to_string(), "b".to_string(), "c".to_string()];
        let c = classify(t, 2, Some(&labels)).expect("classifies");
        assert_eq!(c.shape, vec![2, 2]);
        assert_eq!(
            strings(&c),
            vec![
                "0.700000:1:b",
                "0.200000:2:c",
                "0.500000:0:a",
                "0.300000:1:b"
            ]
        );
    }

    #[test]
    fn count_is_clamped_and_integers_print_plainly() {
        let t = Tensor::new("y", vec![1, 2], TensorData::Int64(vec![3, 9])).expect("t");
        let c = classify(t, 5, None).expect("classifies");
        assert_eq!(c.shape, vec![1, 2]);
        assert_eq!(strings(&c), vec!["9:1", "3:0"]);
    }

    #[test]
    fn bad_counts_name_the_parameter() {
        let mut o = RequestedOutput {
            name: "p".into(),
            parameters: Default::default(),
        };
        assert_eq!(requested_count(&o).expect("none"), None);
        o.parameters
            .insert("classification".into(), ParamValue::Int(0));
        let e = requested_count(&o).unwrap_err().to_string();
        assert!(e.contains("'classification'") && e.contains("'p'"), "{e}");
        o.parameters
            .insert("classification".into(), ParamValue::String("x".into()));
        assert!(requested_count(&o).is_err());
    }

    #[test]
    fn bytes_outputs_are_refused() {
        let t = Tensor::new("s", vec![1], TensorData::Bytes(vec!["x".into()])).expect("t");
        assert!(classify(t, 1, None).is_err());
    }
}
