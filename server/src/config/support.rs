//! What of Triton's model configuration Osprey does not implement: such a configuration is
//! refused with a reason naming the field (the model stays UNAVAILABLE), never loaded while
//! doing something other than what it says.

use super::ModelConfig;
use osprey_protocol::grpc::inference::model_config::SchedulingChoice;
use osprey_protocol::grpc::inference::model_instance_group::Kind;

/// The first field of `cfg` that Osprey does not implement, as a reason naming it.
pub fn refuse_unsupported(cfg: &ModelConfig) -> Result<(), String> {
    let refuse = |field: &str, why: &str| Err(format!("{field}: {why}"));
    match &cfg.scheduling_choice {
        Some(SchedulingChoice::SequenceBatching(_)) => {
            return refuse(
                "sequence_batching",
                "stateful (sequence) models are not supported",
            )
        }
        Some(SchedulingChoice::EnsembleScheduling(_)) => {
            return refuse("ensemble_scheduling", "ensembles are not supported yet")
        }
        Some(SchedulingChoice::DynamicBatching(_)) | None => {}
    }
    if cfg.response_cache.as_ref().is_some_and(|c| c.enable) {
        return refuse("response_cache", "the response cache is not supported yet");
    }
    for i in &cfg.input {
        let field = |f: &str| format!("input '{}' {f}", i.name);
        if i.reshape.is_some() {
            return refuse(&field("reshape"), "reshaping inputs is not supported yet");
        }
        if i.is_shape_tensor {
            return refuse(&field("is_shape_tensor"), "shape tensors are not supported");
        }
        if i.allow_ragged_batch {
            return refuse(
                &field("allow_ragged_batch"),
                "ragged batches are not supported",
            );
        }
        if i.is_non_linear_format_io {
            return refuse(
                &field("is_non_linear_format_io"),
                "non-linear formats are not supported",
            );
        }
    }
    for o in &cfg.output {
        let field = |f: &str| format!("output '{}' {f}", o.name);
        if o.reshape.is_some() {
            return refuse(&field("reshape"), "reshaping outputs is not supported yet");
        }
        if o.is_shape_tensor {
            return refuse(&field("is_shape_tensor"), "shape tensors are not supported");
        }
        if o.is_non_linear_format_io {
            return refuse(
                &field("is_non_linear_format_io"),
                "non-linear formats are not supported",
            );
        }
    }
    if !cfg.batch_input.is_empty() || !cfg.batch_output.is_empty() {
        return refuse(
            "batch_input/batch_output",
            "batch inputs and outputs are not supported",
        );
    }
    for g in &cfg.instance_group {
        let field = |f: &str| match g.name.as_str() {
            "" => format!("instance_group {f}"),
            n => format!("instance_group '{n}' {f}"),
        };
        if g.kind == Kind::Model as i32 {
            return refuse(
                &field("kind"),
                "KIND_MODEL is not supported; use KIND_CPU (or KIND_GPU for candle models)",
            );
        }
        if g.rate_limiter.is_some() {
            return refuse(&field("rate_limiter"), "the rate limiter is not supported");
        }
        if g.passive {
            return refuse(&field("passive"), "passive instances are not supported");
        }
        if !g.secondary_devices.is_empty() {
            return refuse(
                &field("secondary_devices"),
                "secondary devices are not supported",
            );
        }
        if !g.profile.is_empty() {
            return refuse(&field("profile"), "TensorRT profiles are not supported");
        }
        if !g.host_policy.is_empty() {
            return refuse(&field("host_policy"), "host policies are not supported");
        }
    }
    if let Some(o) = &cfg.optimization {
        // Pinned memory and the CUDA settings only concern GPU instances, which Triton also
        // leaves alone on CPU; everything else changes what runs.
        if o.graph.as_ref().is_some_and(|g| g.level != 0) {
            return refuse(
                "optimization.graph.level",
                "ONNX Runtime's graph optimisation level is not configurable here",
            );
        }
        if o.priority != 0 {
            return refuse(
                "optimization.priority",
                "model priorities are not supported",
            );
        }
        if o.execution_accelerators.as_ref().is_some_and(|a| {
            !a.gpu_execution_accelerator.is_empty() || !a.cpu_execution_accelerator.is_empty()
        }) {
            return refuse(
                "optimization.execution_accelerators",
                "execution accelerators (TensorRT, OpenVINO) are not supported",
            );
        }
        if o.eager_batching {
            return refuse(
                "optimization.eager_batching",
                "eager batching is not supported",
            );
        }
    }
    if cfg
        .model_transaction_policy
        .as_ref()
        .is_some_and(|p| p.decoupled)
    {
        return refuse(
            "model_transaction_policy.decoupled",
            "decoupled models are not supported",
        );
    }
    if cfg.model_repository_agents.is_some() {
        return refuse(
            "model_repository_agents",
            "repository agents are not supported",
        );
    }
    if cfg.model_operations.is_some() {
        return refuse(
            "model_operations",
            "custom operation libraries are not supported",
        );
    }
    if !cfg.cc_model_filenames.is_empty() {
        return refuse(
            "cc_model_filenames",
            "per-compute-capability model files are not supported",
        );
    }
    if !cfg.metric_tags.is_empty() {
        return refuse("metric_tags", "metric tags are not supported yet");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::parse_pbtxt;

    fn reason(text: &str) -> String {
        refuse_unsupported(&parse_pbtxt(text).expect("parses")).expect_err(text)
    }

    #[test]
    fn what_osprey_implements_passes() {
        let ok = r#"max_batch_size: 8
            input [ { name: "x" data_type: TYPE_FP32 dims: [ 4 ] format: FORMAT_NONE } ]
            output [ { name: "y" data_type: TYPE_FP32 dims: [ 1 ] label_filename: "l.txt" } ]
            instance_group [ { count: 2 kind: KIND_CPU } ]
            dynamic_batching { max_queue_delay_microseconds: 100 }
            response_cache { enable: false }
            optimization { input_pinned_memory { enable: true } }
            parameters { key: "intra_op_thread_count" value: { string_value: "1" } }"#;
        assert_eq!(
            refuse_unsupported(&parse_pbtxt(ok).expect("parses")),
            Ok(())
        );
    }

    #[test]
    fn every_refusal_names_its_field() {
        for (text, field) in [
            ("sequence_batching { }", "sequence_batching"),
            (
                "ensemble_scheduling { step [ { model_name: \"a\" model_version: -1 } ] }",
                "ensemble_scheduling",
            ),
            ("response_cache { enable: true }", "response_cache"),
            (
                "input [ { name: \"x\" data_type: TYPE_FP32 dims: [ 4 ] reshape { shape: [ 2, 2 ] } } ]",
                "input 'x' reshape",
            ),
            (
                "output [ { name: \"y\" data_type: TYPE_FP32 dims: [ 4 ] reshape { shape: [ 4 ] } } ]",
                "output 'y' reshape",
            ),
            (
                "input [ { name: \"x\" data_type: TYPE_FP32 dims: [ 4 ] allow_ragged_batch: true } ]",
                "input 'x' allow_ragged_batch",
            ),
            ("instance_group [ { kind: KIND_MODEL } ]", "instance_group kind"),
            (
                "instance_group [ { name: \"g\" count: 1 kind: KIND_CPU passive: true } ]",
                "instance_group 'g' passive",
            ),
            ("optimization { graph { level: 1 } }", "optimization.graph.level"),
            (
                "optimization { execution_accelerators { cpu_execution_accelerator [ { name: \"openvino\" } ] } }",
                "optimization.execution_accelerators",
            ),
            (
                "model_transaction_policy { decoupled: true }",
                "model_transaction_policy.decoupled",
            ),
            ("metric_tags { key: \"team\" value: \"a\" }", "metric_tags"),
        ] {
            let r = reason(text);
            assert!(r.starts_with(field), "{text}: {r}");
        }
    }
}
