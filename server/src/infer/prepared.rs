//! The typed request: a decoded request parsed and validated once, at the edge. Everything after
//! this (stages, scheduler, output selection, the REST encoder) reads these fields and never
//! goes back to the request's parameter maps.

use crate::classify::requested_count;
use crate::error::ServerError;
use crate::model::LoadedModel;
use crate::scheduler::Placement;
use osprey_protocol::{InferRequest, ParamValue, Parameters, Tensor, TensorData};

/// One output the client asked for, with its choices parsed.
#[derive(Debug, Clone, PartialEq)]
pub struct Wanted {
    pub name: String,
    /// Whether a REST answer carries it as binary (`binary_data`, else the request's
    /// `binary_data_output`).
    pub binary: bool,
    /// `classification`: the top N classes instead of the tensor.
    pub classes: Option<usize>,
}

/// The outputs a request asked for and how each travels over REST.
#[derive(Debug, Clone, PartialEq)]
pub struct Outputs {
    /// Outputs asked for, in the order asked; empty means every output.
    pub wanted: Vec<Wanted>,
    /// How outputs not named in `wanted` travel (`binary_data_output`).
    pub binary_default: bool,
}

impl Outputs {
    /// Whether output `name` travels as binary in a REST answer.
    pub fn binary(&self, name: &str) -> bool {
        self.wanted
            .iter()
            .find(|w| w.name == name)
            .map_or(self.binary_default, |w| w.binary)
    }
}

/// A validated request with everything the path needs, typed.
#[derive(Debug)]
pub struct Prepared {
    pub id: Option<String>,
    pub inputs: Vec<Tensor>,
    /// Rows: the first dimension when the model batches, else 1.
    pub rows: usize,
    /// Outputs asked for and how they travel.
    pub outputs: Outputs,
    /// Priority level and queue timeout (`priority`, `timeout`).
    pub placement: Placement,
    /// The request's parameters as sent, forwarded only to a remote predictor.
    pub params: Parameters,
}

impl Prepared {
    /// Validates `req` against `model`'s client-facing signature and parses its parameters.
    pub fn new(model: &LoadedModel, req: InferRequest) -> Result<Prepared, ServerError> {
        model.signature.validate(&req)?;
        check_bytes(model, &req.inputs)?;
        let outputs = outputs(&req)?;
        let placement = model.predictor.placement(&req.parameters)?;
        let rows = rows(model.signature.max_batch_size, &req.inputs);
        Ok(Prepared {
            id: req.id,
            inputs: req.inputs,
            rows,
            outputs,
            placement,
            params: req.parameters,
        })
    }
}

/// Refuses BYTES inputs of more elements than the server allows: each element costs far more
/// than its bytes once tokenized.
pub fn check_bytes(model: &LoadedModel, inputs: &[Tensor]) -> Result<(), ServerError> {
    let max = model.limits.max_bytes_elements;
    for t in inputs {
        if let TensorData::Bytes(items) = &t.data {
            if max > 0 && items.len() > max {
                return Err(ServerError::BadRequest(format!(
                    "input '{}' has {} BYTES elements; the server takes at most {max} per \
                     input (--max-bytes-elements)",
                    t.name,
                    items.len()
                )));
            }
        }
    }
    Ok(())
}

/// The requested outputs' choices, and the request's default for the others.
fn outputs(req: &InferRequest) -> Result<Outputs, ServerError> {
    let binary_default = req
        .parameters
        .get("binary_data_output")
        .and_then(ParamValue::as_bool)
        .unwrap_or(false);
    let mut wanted = Vec::with_capacity(req.outputs.len());
    for o in &req.outputs {
        wanted.push(Wanted {
            binary: o.binary_data().unwrap_or(binary_default),
            classes: requested_count(o)?,
            name: o.name.clone(),
        });
    }
    Ok(Outputs {
        wanted,
        binary_default,
    })
}

/// Rows in validated inputs: their first dimension when the model batches, else 1.
pub fn rows(max_batch_size: i64, inputs: &[Tensor]) -> usize {
    if max_batch_size > 0 {
        inputs
            .first()
            .and_then(|t| t.shape.first())
            .map_or(1, |&b| usize::try_from(b).unwrap_or(0))
    } else {
        1
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use osprey_protocol::RequestedOutput;

    fn output(name: &str, params: &[(&str, ParamValue)]) -> RequestedOutput {
        RequestedOutput {
            name: name.into(),
            parameters: params
                .iter()
                .map(|(k, v)| (k.to_string(), v.clone()))
                .collect(),
        }
    }

    #[test]
    fn output_choices_are_parsed_once() {
        let mut req = InferRequest::default();
        req.parameters
            .insert("binary_data_output".into(), ParamValue::Bool(true));
        req.outputs = vec![
            output("a", &[("binary_data", ParamValue::Bool(false))]),
            output("b", &[("classification", ParamValue::Int(3))]),
        ];
        let chosen = outputs(&req).expect("valid");
        assert!(chosen.binary_default);
        assert!(!chosen.binary("a") && chosen.binary("b") && chosen.binary("other"));
        assert_eq!(
            chosen.wanted,
            vec![
                Wanted {
                    name: "a".into(),
                    binary: false,
                    classes: None
                },
                Wanted {
                    name: "b".into(),
                    binary: true,
                    classes: Some(3)
                },
            ]
        );
        req.outputs = vec![output("c", &[("classification", ParamValue::Int(0))])];
        let e = outputs(&req).expect_err("0 classes").to_string();
        assert!(
            e.contains("output 'c'") && e.contains("classification"),
            "{e}"
        );
    }

    #[test]
    fn rows_follow_the_batch_dimension_only_when_the_model_batches() {
        let t = Tensor::new("x", vec![3, 4], TensorData::Fp32(vec![0.0; 12])).expect("tensor");
        assert_eq!(rows(8, std::slice::from_ref(&t)), 3);
        assert_eq!(rows(0, std::slice::from_ref(&t)), 1);
        assert_eq!(rows(8, &[]), 1);
    }
}
