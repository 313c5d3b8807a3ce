//! The input tensors a run sends: generated from the model's metadata (`--shape`, `--data`,
//! `--batch-size`) or read from `--input-file`.

use crate::args::{InputData, LoadtestArgs};
use anyhow::{anyhow, Context};
use bytes::Bytes;
use osprey_protocol::rest::decode_request;
use osprey_protocol::tensor::element_count;
use osprey_protocol::{DataType, Tensor, TensorData};

/// A deterministic xorshift generator: the same inputs and the same Poisson gaps every run.
pub struct Xorshift(u64);

impl Xorshift {
    pub fn new(seed: u64) -> Xorshift {
        Xorshift(seed.max(1))
    }

    /// A uniform value in (0, 1).
    pub fn next_unit(&mut self) -> f64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        ((self.0 >> 11) as f64 + 0.5) / (1u64 << 53) as f64
    }
}

/// An input as the model's metadata describes it.
#[derive(Debug, Clone)]
pub struct InputMeta {
    pub name: String,
    pub datatype: DataType,
    pub shape: Vec<i64>,
}

/// The concrete shape to send: a leading -1 becomes the batch size, `--shape name:d1,d2` gives
/// the other dimensions (perf_analyzer's spelling), remaining -1 become 1.
pub fn resolve_shape(
    meta: &InputMeta,
    batch: usize,
    overrides: &[String],
) -> anyhow::Result<Vec<i64>> {
    let batching = meta.shape.first() == Some(&-1);
    if let Some(spec) = overrides
        .iter()
        .find_map(|s| s.strip_prefix(&format!("{}:", meta.name)))
    {
        let dims: Vec<i64> = spec
            .split(',')
            .map(|d| {
                d.trim()
                    .parse::<i64>()
                    .map_err(|_| anyhow!("--shape {}: '{d}' is not a dimension", meta.name))
            })
            .collect::<anyhow::Result<_>>()?;
        if batching && dims.len() + 1 == meta.shape.len() {
            return Ok(std::iter::once(batch as i64).chain(dims).collect());
        }
        return Ok(dims);
    }
    Ok(meta
        .shape
        .iter()
        .enumerate()
        .map(|(i, &d)| {
            if d >= 0 {
                d
            } else if i == 0 {
                batch as i64
            } else {
                1
            }
        })
        .collect())
}

/// Input values: zeros, or a fixed pseudo-random sequence (the same every run).
pub fn make_data(datatype: DataType, count: usize, kind: InputData) -> anyhow::Result<TensorData> {
    let mut rng = Xorshift::new(0x2545_f491_4f6c_dd1d);
    let values: Vec<f64> = (0..count)
        .map(|_| {
            if kind == InputData::Zeros {
                0.0
            } else {
                rng.next_unit()
            }
        })
        .collect();
    let scalars = values
        .iter()
        .map(|v| match datatype {
            DataType::Bool => osprey_protocol::json::JsonScalar::Bool(*v >= 0.5),
            DataType::Bytes => {
                osprey_protocol::json::JsonScalar::Str(format!("osprey {}", (v * 1000.0) as u32))
            }
            DataType::Fp16 | DataType::Bf16 | DataType::Fp32 | DataType::Fp64 => {
                osprey_protocol::json::JsonScalar::F64(*v)
            }
            _ => osprey_protocol::json::JsonScalar::U64((v * 100.0) as u64),
        })
        .collect();
    Ok(TensorData::from_json(
        datatype,
        osprey_protocol::json::JsonData::Scalars(scalars),
        "input",
    )?)
}

/// The input tensors to send: the requests of `--input-file` (a v2 JSON request or an array of
/// them), or one request generated from the metadata.
pub fn input_sets(args: &LoadtestArgs, metadata: &[InputMeta]) -> anyhow::Result<Vec<Vec<Tensor>>> {
    if let Some(path) = &args.input_file {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        let value: serde_json::Value =
            serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
        let requests = match value {
            serde_json::Value::Array(items) => items,
            one => vec![one],
        };
        return requests
            .into_iter()
            .enumerate()
            .map(|(i, r)| {
                decode_request(Bytes::from(r.to_string()), None)
                    .map(|req| req.inputs)
                    .map_err(|e| anyhow!("{} request {i}: {e}", path.display()))
            })
            .collect();
    }
    if metadata.is_empty() {
        return Err(anyhow!(
            "the model's metadata lists no inputs, so no request can be built from it; give --input-file"
        ));
    }
    let tensors = metadata
        .iter()
        .map(|meta| {
            let shape = resolve_shape(meta, args.batch_size, &args.shape)?;
            let count = element_count(&shape).ok_or_else(|| anyhow!("bad shape {shape:?}"))?;
            Ok(Tensor::new(
                meta.name.clone(),
                shape,
                make_data(meta.datatype, count, args.data)?,
            )?)
        })
        .collect::<anyhow::Result<Vec<Tensor>>>()?;
    Ok(vec![tensors])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::args::InputData;

    #[test]
    fn shapes_follow_perf_analyzer_spelling() {
        let m = InputMeta {
            name: "input".into(),
            datatype: DataType::Fp32,
            shape: vec![-1, 64],
        };
        assert_eq!(resolve_shape(&m, 4, &[]).unwrap(), vec![4, 64]);
        let v = InputMeta {
            name: "text".into(),
            datatype: DataType::Bytes,
            shape: vec![-1, -1],
        };
        assert_eq!(
            resolve_shape(&v, 2, &["text:3".into()]).unwrap(),
            vec![2, 3]
        );
        assert_eq!(
            resolve_shape(&v, 2, &["text:5,1".into()]).unwrap(),
            vec![5, 1]
        );
        assert!(resolve_shape(&v, 2, &["text:x".into()]).is_err());
    }

    #[test]
    fn data_is_deterministic() {
        let a = make_data(DataType::Fp32, 8, InputData::Random).unwrap();
        assert_eq!(a, make_data(DataType::Fp32, 8, InputData::Random).unwrap());
        assert_eq!(
            make_data(DataType::Int32, 2, InputData::Zeros).unwrap(),
            TensorData::Int32(vec![0, 0])
        );
        assert_eq!(
            make_data(DataType::Bytes, 3, InputData::Random)
                .unwrap()
                .len(),
            3
        );
    }
}
