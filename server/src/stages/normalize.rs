//! Per-feature numeric normalisation of one FP32 input: `y = x * scale + shift` along the last
//! dimension.

use crate::error::ServerError;
use osprey_protocol::grpc::inference::NormalizeStep;
use osprey_protocol::{DataType, ModelSignature, Tensor, TensorData};

#[derive(Debug, Clone)]
pub struct Normalize {
    pub input: String,
    scale: Vec<f32>,
    shift: Vec<f32>,
}

/// One value per feature, or one for all; empty means `default`.
fn per_feature(v: &[f32], features: Option<usize>, field: &str) -> Result<(), String> {
    match (v.len(), features) {
        (0 | 1, _) => Ok(()),
        (n, Some(f)) if n == f => Ok(()),
        (n, Some(f)) => Err(format!(
            "normalize.{field} has {n} values but the input has {f} features"
        )),
        (_, None) => Err(format!(
            "normalize.{field}: per-feature values need a fixed last dimension"
        )),
    }
}

fn at(v: &[f32], i: usize, default: f32) -> f32 {
    match v {
        [] => default,
        [one] => *one,
        many => many.get(i).copied().unwrap_or(default),
    }
}

impl Normalize {
    /// Checks the step against the predictor's inputs.
    pub fn new(step: &NormalizeStep, predictor: &ModelSignature) -> Result<Normalize, String> {
        let spec = predictor
            .inputs
            .iter()
            .find(|s| s.name == step.input)
            .ok_or_else(|| format!("normalize.input '{}' is not an input", step.input))?;
        if spec.datatype != DataType::Fp32 {
            return Err(format!(
                "normalize.input '{}' is {}, not FP32",
                step.input,
                spec.datatype.as_str()
            ));
        }
        let features = spec.shape.last().and_then(|&d| usize::try_from(d).ok());
        per_feature(&step.scale, features, "scale")?;
        per_feature(&step.shift, features, "shift")?;
        Ok(Normalize {
            input: step.input.clone(),
            scale: step.scale.clone(),
            shift: step.shift.clone(),
        })
    }

    /// Normalises the input in place.
    pub fn apply(&self, inputs: &mut [Tensor]) -> Result<(), ServerError> {
        let Some(t) = inputs.iter_mut().find(|t| t.name == self.input) else {
            return Ok(());
        };
        let features = t.shape.last().map_or(1, |&d| d.max(1) as usize);
        if let TensorData::Fp32(v) = &mut t.data {
            for (i, x) in v.iter_mut().enumerate() {
                let f = i % features;
                *x = *x * at(&self.scale, f, 1.0) + at(&self.shift, f, 0.0);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use osprey_protocol::TensorSpec;

    fn sig() -> ModelSignature {
        ModelSignature {
            name: "m".into(),
            inputs: vec![TensorSpec {
                name: "x".into(),
                datatype: DataType::Fp32,
                shape: vec![-1, 2],
                optional: false,
            }],
            outputs: vec![],
            max_batch_size: 8,
        }
    }

    #[test]
    fn scales_and_shifts_per_feature() {
        let n = Normalize::new(
            &NormalizeStep {
                input: "x".into(),
                scale: vec![2.0, 10.0],
                shift: vec![1.0],
            },
            &sig(),
        )
        .expect("valid");
        let mut t =
            vec![Tensor::new("x", vec![2, 2], TensorData::Fp32(vec![1., 2., 3., 4.])).expect("t")];
        n.apply(&mut t).expect("applies");
        assert_eq!(t[0].data, TensorData::Fp32(vec![3., 21., 7., 41.]));
    }

    #[test]
    fn wrong_lengths_name_the_field() {
        let e = Normalize::new(
            &NormalizeStep {
                input: "x".into(),
                scale: vec![1.0, 2.0, 3.0],
                shift: vec![],
            },
            &sig(),
        )
        .unwrap_err();
        assert!(e.contains("normalize.scale"), "{e}");
        let e = Normalize::new(
            &NormalizeStep {
                input: "y".into(),
                ..Default::default()
            },
            &sig(),
        )
        .unwrap_err();
        assert!(e.contains("normalize.input 'y'"), "{e}");
    }
}
