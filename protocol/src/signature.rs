//! A model's declared inputs and outputs, and validation of requests against them.

use crate::datatype::DataType;
use crate::error::ProtocolError;
use crate::request::InferRequest;

/// One input or output as the model declares it. `shape` is the full shape the client sends,
/// including the batch dimension (`-1`) when the model batches; `-1` marks a variable dimension.
#[derive(Debug, Clone, PartialEq)]
pub struct TensorSpec {
    pub name: String,
    pub datatype: DataType,
    pub shape: Vec<i64>,
    /// An optional input may be left out of a request.
    pub optional: bool,
}

/// What a model accepts and produces.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelSignature {
    pub name: String,
    pub inputs: Vec<TensorSpec>,
    pub outputs: Vec<TensorSpec>,
    /// Triton's `max_batch_size`: 0 when the model does not batch (shapes are then complete).
    pub max_batch_size: i64,
}

fn names(specs: &[TensorSpec]) -> String {
    let n: Vec<&str> = specs.iter().map(|s| s.name.as_str()).collect();
    format!("[{}]", n.join(", "))
}

impl ModelSignature {
    /// Finds an input by name.
    pub fn input(&self, name: &str) -> Option<&TensorSpec> {
        self.inputs.iter().find(|s| s.name == name)
    }

    /// Finds an output by name.
    pub fn output(&self, name: &str) -> Option<&TensorSpec> {
        self.outputs.iter().find(|s| s.name == name)
    }

    /// Checks names, datatypes, shapes, batch sizes and requested outputs before the model runs.
    pub fn validate(&self, req: &InferRequest) -> Result<(), ProtocolError> {
        let mut batch: Option<(&str, i64)> = None;
        for (i, t) in req.inputs.iter().enumerate() {
            if req.inputs[..i].iter().any(|p| p.name == t.name) {
                return Err(ProtocolError::DuplicateInput(t.name.clone()));
            }
            let spec = self
                .input(&t.name)
                .ok_or_else(|| ProtocolError::UnknownInput {
                    tensor: t.name.clone(),
                    model: self.name.clone(),
                    expected: names(&self.inputs),
                })?;
            if t.datatype() != spec.datatype {
                return Err(ProtocolError::WrongDatatype {
                    tensor: t.name.clone(),
                    expected: spec.datatype,
                    got: t.datatype(),
                });
            }
            let shape_ok = t.shape.len() == spec.shape.len()
                && t.shape
                    .iter()
                    .zip(&spec.shape)
                    .all(|(&g, &e)| e < 0 || g == e);
            if !shape_ok {
                return Err(ProtocolError::WrongShape {
                    tensor: t.name.clone(),
                    expected: spec.shape.clone(),
                    got: t.shape.clone(),
                });
            }
            if self.max_batch_size > 0 {
                let b = t.shape.first().copied().unwrap_or(0);
                if b > self.max_batch_size {
                    return Err(ProtocolError::BatchTooLarge {
                        tensor: t.name.clone(),
                        got: b,
                        max: self.max_batch_size,
                    });
                }
                match batch {
                    None => batch = Some((&t.name, b)),
                    Some((first, expected)) if expected != b => {
                        return Err(ProtocolError::BatchMismatch {
                            tensor: t.name.clone(),
                            first: first.to_string(),
                            expected,
                            got: b,
                        })
                    }
                    Some(_) => {}
                }
            }
        }
        if let Some(missing) = self
            .inputs
            .iter()
            .find(|s| !s.optional && !req.inputs.iter().any(|t| t.name == s.name))
        {
            return Err(ProtocolError::MissingInput {
                tensor: missing.name.clone(),
                model: self.name.clone(),
                expected: names(&self.inputs),
            });
        }
        for o in &req.outputs {
            if self.output(&o.name).is_none() {
                return Err(ProtocolError::UnknownOutput {
                    tensor: o.name.clone(),
                    model: self.name.clone(),
                    expected: names(&self.outputs),
                });
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::request::RequestedOutput;
    use crate::tensor::{Tensor, TensorData};

    fn mlp() -> ModelSignature {
        ModelSignature {
            name: "mlp".into(),
            inputs: vec![TensorSpec {
                name: "input".into(),
                datatype: DataType::Fp32,
                shape: vec![-1, 4],
                optional: false,
            }],
            outputs: vec![TensorSpec {
                name: "output".into(),
                datatype: DataType::Fp32,
                shape: vec![-1, 2],
                optional: false,
            }],
            max_batch_size: 2,
        }
    }

    fn req(shape: Vec<i64>, data: TensorData) -> InferRequest {
        let name = "input";
        let n = data.len();
        let t = Tensor::new(name, shape.clone(), data).unwrap_or_else(|_| Tensor {
            name: name.into(),
            shape,
            data: TensorData::Fp32(vec![0.0; n]),
        });
        InferRequest {
            inputs: vec![t],
            ..Default::default()
        }
    }

    #[test]
    fn accepts_a_good_request() {
        assert_eq!(
            mlp().validate(&req(vec![2, 4], TensorData::Fp32(vec![0.0; 8]))),
            Ok(())
        );
    }

    #[test]
    fn names_the_tensor_in_each_rule() {
        let m = mlp();
        let e = m
            .validate(&req(vec![1, 3], TensorData::Fp32(vec![0.0; 3])))
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "input 'input': expected shape [-1,4], got [1,3]"
        );
        let e = m
            .validate(&req(vec![1, 4], TensorData::Int32(vec![0; 4])))
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "input 'input': expected datatype FP32, got INT32"
        );
        let e = m
            .validate(&req(vec![3, 4], TensorData::Fp32(vec![0.0; 12])))
            .unwrap_err();
        assert!(matches!(
            e,
            ProtocolError::BatchTooLarge { got: 3, max: 2, .. }
        ));
        let e = m.validate(&InferRequest::default()).unwrap_err();
        assert!(matches!(e, ProtocolError::MissingInput { .. }), "{e}");
        let mut r = req(vec![1, 4], TensorData::Fp32(vec![0.0; 4]));
        r.outputs.push(RequestedOutput {
            name: "nope".into(),
            parameters: Default::default(),
        });
        assert!(m
            .validate(&r)
            .unwrap_err()
            .to_string()
            .contains("unknown output 'nope'"));
        let mut r = req(vec![1, 4], TensorData::Fp32(vec![0.0; 4]));
        r.inputs.push(r.inputs[0].clone());
        assert_eq!(
            m.validate(&r),
            Err(ProtocolError::DuplicateInput("input".into()))
        );
    }
}
