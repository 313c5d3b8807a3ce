//! Triton's `reshape`: an input or output whose shape on the wire (`dims`) differs from the
//! model's own (`reshape { shape }`), with the same elements in the same order.
//!
//! The model's runtimes are wrapped: the wrapper declares the configured `dims` (so requests are
//! validated against what clients send) and changes each batch's shapes on the way in and out.
//! A batched model keeps its batch dimension in front of both shapes. Shapes with a variable
//! (`-1`) dimension are refused: the element counts could not be checked at load.

use crate::config::ModelConfig;
use osprey_protocol::{Tensor, TensorSpec};
use osprey_runtimes::{Runtime, RuntimeError};

/// One reshaped tensor: its name, the shape clients use and the model's.
#[derive(Debug, Clone)]
struct Rule {
    name: String,
    wire: Vec<i64>,
    model: Vec<i64>,
}

/// The reshapes of a configuration, checked; empty when it has none.
#[derive(Debug, Clone, Default)]
pub struct Reshapes {
    inputs: Vec<Rule>,
    outputs: Vec<Rule>,
    batching: bool,
}

fn rule(kind: &str, name: &str, wire: &[i64], model: &[i64]) -> Result<Rule, String> {
    if wire.iter().chain(model).any(|d| *d < 0) {
        return Err(format!(
            "{kind} '{name}' reshape: variable-size (-1) dimensions are not supported in \
             dims {wire:?} or reshape {model:?}"
        ));
    }
    let (a, b): (i64, i64) = (wire.iter().product(), model.iter().product());
    if a != b {
        return Err(format!(
            "{kind} '{name}' reshape: shape {model:?} holds {b} elements, dims {wire:?} hold {a}"
        ));
    }
    Ok(Rule {
        name: name.to_string(),
        wire: wire.to_vec(),
        model: model.to_vec(),
    })
}

impl Reshapes {
    /// The reshapes `cfg` asks for, each checked (fixed sizes, equal element counts).
    pub fn of(cfg: &ModelConfig) -> Result<Reshapes, String> {
        let mut out = Reshapes {
            batching: cfg.max_batch_size > 0,
            ..Default::default()
        };
        for i in &cfg.input {
            if let Some(r) = &i.reshape {
                out.inputs.push(rule("input", &i.name, &i.dims, &r.shape)?);
            }
        }
        for o in &cfg.output {
            if let Some(r) = &o.reshape {
                out.outputs
                    .push(rule("output", &o.name, &o.dims, &r.shape)?);
            }
        }
        Ok(out)
    }

    /// Whether there is nothing to reshape.
    pub fn is_empty(&self) -> bool {
        self.inputs.is_empty() && self.outputs.is_empty()
    }

    /// Wraps `runtime` so that it speaks the configured `dims`. The model's own shapes must
    /// match the reshapes.
    pub fn wrap(&self, runtime: Box<dyn Runtime>) -> Result<Box<dyn Runtime>, String> {
        if self.is_empty() {
            return Ok(runtime);
        }
        let inputs = self.declare("input", runtime.inputs(), &self.inputs)?;
        let outputs = self.declare("output", runtime.outputs(), &self.outputs)?;
        Ok(Box::new(Reshaped {
            inner: runtime,
            rules: self.clone(),
            inputs,
            outputs,
        }))
    }

    /// The batch dimension in front of `dims` when the model batches.
    fn full(&self, dims: &[i64]) -> Vec<i64> {
        let batch = self.batching.then_some(-1);
        batch.into_iter().chain(dims.iter().copied()).collect()
    }

    /// The model's specs with each reshaped tensor's shape as clients send it.
    fn declare(
        &self,
        kind: &str,
        specs: &[TensorSpec],
        rules: &[Rule],
    ) -> Result<Vec<TensorSpec>, String> {
        let mut out = specs.to_vec();
        for r in rules {
            let Some(spec) = out.iter_mut().find(|s| s.name == r.name) else {
                // The configuration check names a tensor the model lacks.
                continue;
            };
            let expected = self.full(&r.model);
            let fits = spec.shape.is_empty()
                || (spec.shape.len() == expected.len()
                    && spec
                        .shape
                        .iter()
                        .zip(&expected)
                        .all(|(m, e)| *m == -1 || *e == -1 || m == e));
            if !fits {
                return Err(format!(
                    "{kind} '{}' reshape: the model's shape is {:?}, not {:?}",
                    r.name, spec.shape, expected
                ));
            }
            spec.shape = self.full(&r.wire);
        }
        Ok(out)
    }

    /// `t` with shape `to` (the batch dimension kept), if the element count allows it.
    fn apply(&self, mut t: Tensor, to: &[i64]) -> Result<Tensor, RuntimeError> {
        let rows = if self.batching {
            t.shape.first().copied()
        } else {
            None
        };
        let shape: Vec<i64> = rows.into_iter().chain(to.iter().copied()).collect();
        let count = |s: &[i64]| s.iter().try_fold(1i64, |a, d| a.checked_mul(*d));
        if count(&shape) != count(&t.shape) {
            return Err(RuntimeError::BadInput {
                name: t.name.clone(),
                reason: format!("shape {:?} cannot be reshaped to {shape:?}", t.shape),
            });
        }
        t.shape = shape;
        Ok(t)
    }
}

/// A runtime behind `reshape` rules.
struct Reshaped {
    inner: Box<dyn Runtime>,
    rules: Reshapes,
    inputs: Vec<TensorSpec>,
    outputs: Vec<TensorSpec>,
}

impl Runtime for Reshaped {
    fn inputs(&self) -> &[TensorSpec] {
        &self.inputs
    }

    fn outputs(&self) -> &[TensorSpec] {
        &self.outputs
    }

    fn run(&mut self, inputs: Vec<Tensor>) -> Result<Vec<Tensor>, RuntimeError> {
        let mut shaped = Vec::with_capacity(inputs.len());
        for t in inputs {
            shaped.push(match self.rules.inputs.iter().find(|r| r.name == t.name) {
                Some(r) => self.rules.apply(t, &r.model)?,
                None => t,
            });
        }
        let mut out = Vec::new();
        for t in self.inner.run(shaped)? {
            out.push(match self.rules.outputs.iter().find(|r| r.name == t.name) {
                Some(r) => self.rules.apply(t, &r.wire)?,
                None => t,
            });
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use osprey_protocol::{DataType, TensorData};

    /// Echoes its input as its output; refuses inputs of another shape than its spec's rank.
    struct Echo {
        specs: Vec<TensorSpec>,
        out: Vec<TensorSpec>,
    }

    impl Runtime for Echo {
        fn inputs(&self) -> &[TensorSpec] {
            &self.specs
        }
        fn outputs(&self) -> &[TensorSpec] {
            &self.out
        }
        fn run(&mut self, inputs: Vec<Tensor>) -> Result<Vec<Tensor>, RuntimeError> {
            if let Some(t) = inputs
                .iter()
                .find(|t| t.shape.len() != self.specs[0].shape.len())
            {
                return Err(RuntimeError::Inference(format!("got shape {:?}", t.shape)));
            }
            Ok(inputs
                .into_iter()
                .map(|mut t| {
                    t.name = "y".into();
                    t
                })
                .collect())
        }
    }

    fn spec(name: &str, shape: &[i64]) -> TensorSpec {
        TensorSpec {
            name: name.into(),
            datatype: DataType::Fp32,
            shape: shape.to_vec(),
            optional: false,
        }
    }

    fn config(text: &str) -> ModelConfig {
        crate::config::parse_pbtxt(text).expect("config")
    }

    const CFG: &str = r#"
        max_batch_size: 8
        input [ { name: "x" data_type: TYPE_FP32 dims: [ 1 ] reshape { shape: [ ] } } ]
        output [ { name: "y" data_type: TYPE_FP32 dims: [ 1 ] reshape { shape: [ ] } } ]"#;

    #[test]
    fn shapes_change_on_the_way_in_and_out_keeping_the_batch() {
        let echo = Echo {
            specs: vec![spec("x", &[-1])],
            out: vec![spec("y", &[-1])],
        };
        let r = Reshapes::of(&config(CFG)).expect("rules");
        let mut rt = r.wrap(Box::new(echo)).expect("wrap");
        assert_eq!(rt.inputs()[0].shape, [-1, 1]);
        assert_eq!(rt.outputs()[0].shape, [-1, 1]);
        let x = Tensor::new("x", vec![3, 1], TensorData::Fp32(vec![1.0, 2.0, 3.0])).expect("x");
        let out = rt.run(vec![x]).expect("run");
        assert_eq!(out[0].shape, [3, 1]);
        assert_eq!(out[0].data, TensorData::Fp32(vec![1.0, 2.0, 3.0]));
    }

    #[test]
    fn a_model_of_another_shape_or_unequal_counts_are_refused() {
        let echo = Echo {
            specs: vec![spec("x", &[-1, 4])],
            out: vec![spec("y", &[-1])],
        };
        let e = Reshapes::of(&config(CFG))
            .expect("rules")
            .wrap(Box::new(echo))
            .err()
            .expect("refused");
        assert!(
            e.contains("input 'x' reshape") && e.contains("[-1, 4]"),
            "{e}"
        );
        let e = Reshapes::of(&config(
            r#"input [ { name: "x" data_type: TYPE_FP32 dims: [ 6 ] reshape { shape: [ 4, 2 ] } } ]"#,
        ))
        .expect_err("refused");
        assert!(e.contains("8 elements") && e.contains("hold 6"), "{e}");
        let e = Reshapes::of(&config(
            r#"input [ { name: "x" data_type: TYPE_FP32 dims: [ -1 ] reshape { shape: [ 2, -1 ] } } ]"#,
        ))
        .expect_err("refused");
        assert!(e.contains("variable-size"), "{e}");
    }
}
