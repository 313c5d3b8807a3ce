//! Completing a configuration from the model's own metadata, as Triton's auto-complete does, and
//! checking what the user wrote against the model.

use super::{ConfigError, ModelConfig};
use osprey_protocol::grpc::inference::{
    self, model_instance_group::Kind, ModelInput, ModelInstanceGroup, ModelOutput,
};
use osprey_protocol::{DataType, ModelSignature, TensorSpec};

/// The configuration of a model that has no `config.pbtxt`.
pub fn default_config(name: &str) -> ModelConfig {
    ModelConfig {
        name: name.to_string(),
        ..Default::default()
    }
}

fn proto_type(dt: DataType) -> i32 {
    inference::DataType::from_str_name(dt.config_name()).map_or(0, |t| t as i32)
}

fn our_type(proto: i32) -> Option<DataType> {
    let t = inference::DataType::try_from(proto).ok()?;
    DataType::from_config_name(t.as_str_name())
}

fn batchable(specs: &[TensorSpec]) -> bool {
    specs.iter().all(|s| s.shape.first() == Some(&-1))
}

/// Checks a configured tensor against the model's, returning the config-relative dims.
fn check_tensor(
    kind: &str,
    name: &str,
    data_type: i32,
    dims: &[i64],
    batching: bool,
    model: &[TensorSpec],
) -> Result<(), ConfigError> {
    let names: Vec<&str> = model.iter().map(|s| s.name.as_str()).collect();
    let spec = model.iter().find(|s| s.name == name).ok_or_else(|| {
        ConfigError::Invalid(format!(
            "{kind} '{name}' is not an {kind} of the model (it has {names:?})"
        ))
    })?;
    let dt = our_type(data_type)
        .ok_or_else(|| ConfigError::Invalid(format!("{kind} '{name}': data_type is not set")))?;
    if dt != spec.datatype {
        return Err(ConfigError::Invalid(format!(
            "{kind} '{name}': data_type {} does not match the model's {}",
            dt.config_name(),
            spec.datatype.config_name()
        )));
    }
    let model_dims: &[i64] = if batching {
        match spec.shape.split_first() {
            Some((-1, rest)) => rest,
            _ => {
                return Err(ConfigError::Invalid(format!(
                    "{kind} '{name}': max_batch_size > 0 but the model's first dimension is not variable (shape {:?})",
                    spec.shape
                )))
            }
        }
    } else {
        &spec.shape
    };
    // A model may report no shape at all for some tensors; trust the configuration then.
    if !spec.shape.is_empty() {
        let fits = dims.len() == model_dims.len()
            && dims
                .iter()
                .zip(model_dims)
                .all(|(&c, &m)| m < 0 || c < 0 || c == m);
        if !fits {
            return Err(ConfigError::Invalid(format!(
                "{kind} '{name}': dims {dims:?} do not match the model's {model_dims:?}"
            )));
        }
    }
    Ok(())
}

fn config_dims(spec: &TensorSpec, batching: bool) -> Vec<i64> {
    if batching {
        spec.shape.get(1..).unwrap_or_default().to_vec()
    } else {
        spec.shape.clone()
    }
}

/// Fills in what the configuration leaves out (platform, max_batch_size, inputs, outputs,
/// instance groups) from the model, and checks what it states.
pub fn complete(
    config: &mut ModelConfig,
    (platform, backend): (&str, &str),
    inputs: &[TensorSpec],
    outputs: &[TensorSpec],
    default_max_batch_size: i32,
) -> Result<(), ConfigError> {
    config.platform = platform.into();
    config.backend = backend.into();
    if config.max_batch_size < 0 {
        return Err(ConfigError::Invalid(format!(
            "max_batch_size {} is negative",
            config.max_batch_size
        )));
    }
    if config.input.is_empty()
        && config.output.is_empty()
        && config.max_batch_size == 0
        && batchable(inputs)
        && batchable(outputs)
    {
        config.max_batch_size = default_max_batch_size;
    }
    let batching = config.max_batch_size > 0;
    for i in &config.input {
        check_tensor("input", &i.name, i.data_type, &i.dims, batching, inputs)?;
    }
    for o in &config.output {
        check_tensor("output", &o.name, o.data_type, &o.dims, batching, outputs)?;
    }
    for spec in inputs {
        if !config.input.iter().any(|i| i.name == spec.name) {
            if batching && spec.shape.first() != Some(&-1) {
                return Err(ConfigError::Invalid(format!(
                    "input '{}': max_batch_size > 0 but the model's first dimension is not variable",
                    spec.name
                )));
            }
            config.input.push(ModelInput {
                name: spec.name.clone(),
                data_type: proto_type(spec.datatype),
                dims: config_dims(spec, batching),
                ..Default::default()
            });
        }
    }
    for spec in outputs {
        if !config.output.iter().any(|o| o.name == spec.name) {
            config.output.push(ModelOutput {
                name: spec.name.clone(),
                data_type: proto_type(spec.datatype),
                dims: config_dims(spec, batching),
                ..Default::default()
            });
        }
    }
    if config.instance_group.is_empty() {
        config.instance_group.push(ModelInstanceGroup {
            name: config.name.clone(),
            kind: Kind::Cpu as i32,
            count: 1,
            ..Default::default()
        });
    }
    for g in &mut config.instance_group {
        if g.count < 1 {
            g.count = 1;
        }
    }
    Ok(())
}

/// Completes the configuration of a remote predictor, which has no model to read: `input` and
/// `output` must describe what the remote model takes and gives.
pub fn complete_remote(
    config: &mut ModelConfig,
    (platform, backend): (&str, &str),
) -> Result<(), ConfigError> {
    if config.input.is_empty() || config.output.is_empty() {
        return Err(ConfigError::Invalid(
            "a remote predictor (stages.remote) needs `input` and `output` in config.pbtxt".into(),
        ));
    }
    for (kind, name, dt) in config
        .input
        .iter()
        .map(|i| ("input", &i.name, i.data_type))
        .chain(
            config
                .output
                .iter()
                .map(|o| ("output", &o.name, o.data_type)),
        )
    {
        if our_type(dt).is_none() {
            return Err(ConfigError::Invalid(format!(
                "{kind} '{name}': data_type is not set"
            )));
        }
    }
    if config.max_batch_size < 0 {
        return Err(ConfigError::Invalid(format!(
            "max_batch_size {} is negative",
            config.max_batch_size
        )));
    }
    config.platform = platform.into();
    config.backend = backend.into();
    Ok(())
}

/// The request signature a completed configuration describes.
pub fn signature(config: &ModelConfig) -> ModelSignature {
    let batch: &[i64] = if config.max_batch_size > 0 {
        &[-1]
    } else {
        &[]
    };
    let full = |dims: &[i64]| batch.iter().chain(dims).copied().collect::<Vec<i64>>();
    ModelSignature {
        name: config.name.clone(),
        inputs: config
            .input
            .iter()
            .map(|i| TensorSpec {
                name: i.name.clone(),
                datatype: our_type(i.data_type).unwrap_or(DataType::Bytes),
                shape: full(&i.dims),
                optional: i.optional,
            })
            .collect(),
        outputs: config
            .output
            .iter()
            .map(|o| TensorSpec {
                name: o.name.clone(),
                datatype: our_type(o.data_type).unwrap_or(DataType::Bytes),
                shape: full(&o.dims),
                optional: false,
            })
            .collect(),
        max_batch_size: i64::from(config.max_batch_size),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::parse_pbtxt;

    const ONNX: (&str, &str) = ("onnxruntime_onnx", "onnxruntime");

    fn spec(name: &str, dt: DataType, shape: &[i64]) -> TensorSpec {
        TensorSpec {
            name: name.into(),
            datatype: dt,
            shape: shape.to_vec(),
            optional: false,
        }
    }

    #[test]
    fn autocompletes_batching_model() {
        let mut c = default_config("mlp");
        let ins = [spec("input", DataType::Fp32, &[-1, 64])];
        let outs = [spec("output", DataType::Fp32, &[-1, 10])];
        complete(&mut c, ONNX, &ins, &outs, 4).expect("completes");
        assert_eq!(c.max_batch_size, 4);
        assert_eq!(c.input[0].dims, vec![64]);
        assert_eq!(c.input[0].data_type, inference::DataType::TypeFp32 as i32);
        assert_eq!(c.instance_group[0].count, 1);
        let sig = signature(&c);
        assert_eq!(sig.inputs[0].shape, vec![-1, 64]);
    }

    #[test]
    fn non_batching_model_keeps_full_shapes() {
        let mut c = default_config("iris");
        let ins = [spec("x", DataType::Fp32, &[3, 4])];
        complete(&mut c, ONNX, &ins, &[spec("y", DataType::Int64, &[3])], 4).expect("completes");
        assert_eq!(c.max_batch_size, 0);
        assert_eq!(c.input[0].dims, vec![3, 4]);
    }

    #[test]
    fn rejects_config_that_contradicts_the_model() {
        let ins = [spec("input", DataType::Fp32, &[-1, 64])];
        let outs = [spec("output", DataType::Fp32, &[-1, 10])];
        let mut c = parse_pbtxt(
            "max_batch_size: 8 input [{ name: \"input\" data_type: TYPE_INT32 dims: [64] }]",
        )
        .expect("p");
        let e = complete(&mut c, ONNX, &ins, &outs, 4).unwrap_err();
        assert!(e.to_string().contains("TYPE_INT32"), "{e}");
        let mut c = parse_pbtxt(
            "max_batch_size: 8 input [{ name: \"input\" data_type: TYPE_FP32 dims: [63] }]",
        )
        .expect("p");
        assert!(complete(&mut c, ONNX, &ins, &outs, 4)
            .unwrap_err()
            .to_string()
            .contains("dims [63]"));
        let mut c = parse_pbtxt(
            "max_batch_size: 8 input [{ name: \"nope\" data_type: TYPE_FP32 dims: [64] }]",
        )
        .expect("p");
        assert!(complete(&mut c, ONNX, &ins, &outs, 4)
            .unwrap_err()
            .to_string()
            .contains("'nope'"));
    }
}
