//! What of Triton's model configuration Osprey does not implement: such a configuration is
//! refused with a reason naming the field (the model stays UNAVAILABLE), never loaded while
//! doing something other than what it says.

use super::ModelConfig;
use osprey_protocol::grpc::inference::model_config::SchedulingChoice;
use osprey_protocol::grpc::inference::model_instance_group::Kind;

/// One refusal: whether it applies, the field, and why.
type Check = (bool, String, &'static str);

/// The first field of `cfg` that Osprey does not implement, as a reason naming it.
pub fn refuse_unsupported(cfg: &ModelConfig) -> Result<(), String> {
    match checks(cfg).into_iter().find(|(applies, _, _)| *applies) {
        Some((_, field, why)) => Err(format!("{field}: {why}")),
        None => Ok(()),
    }
}

/// Every refusal, in the order the configuration lists the fields.
fn checks(cfg: &ModelConfig) -> Vec<Check> {
    let scheduling = match &cfg.scheduling_choice {
        Some(SchedulingChoice::SequenceBatching(_)) => Some((
            "sequence_batching",
            "stateful (sequence) models are not supported",
        )),
        Some(SchedulingChoice::EnsembleScheduling(_)) if cfg.platform != "ensemble" => Some((
            "ensemble_scheduling",
            "only a model with platform \"ensemble\" has steps",
        )),
        Some(SchedulingChoice::EnsembleScheduling(_)) => None,
        Some(SchedulingChoice::DynamicBatching(_)) | None => None,
    };
    let mut out: Vec<Check> = scheduling
        .map(|(f, why)| (true, f.to_string(), why))
        .into_iter()
        .collect();
    for i in &cfg.input {
        let field = |f: &str| format!("input '{}' {f}", i.name);
        out.extend([
            (
                i.is_shape_tensor,
                field("is_shape_tensor"),
                "shape tensors are not supported",
            ),
            (
                i.allow_ragged_batch,
                field("allow_ragged_batch"),
                "ragged batches are not supported",
            ),
            (
                i.is_non_linear_format_io,
                field("is_non_linear_format_io"),
                "non-linear formats are not supported",
            ),
        ]);
    }
    for o in &cfg.output {
        let field = |f: &str| format!("output '{}' {f}", o.name);
        out.extend([
            (
                o.is_shape_tensor,
                field("is_shape_tensor"),
                "shape tensors are not supported",
            ),
            (
                o.is_non_linear_format_io,
                field("is_non_linear_format_io"),
                "non-linear formats are not supported",
            ),
        ]);
    }
    out.push((
        !cfg.batch_input.is_empty() || !cfg.batch_output.is_empty(),
        "batch_input/batch_output".into(),
        "batch inputs and outputs are not supported",
    ));
    for g in &cfg.instance_group {
        let field = |f: &str| match g.name.as_str() {
            "" => format!("instance_group {f}"),
            n => format!("instance_group '{n}' {f}"),
        };
        out.extend([
            (
                g.kind == Kind::Model as i32,
                field("kind"),
                "KIND_MODEL is not supported; use KIND_CPU or KIND_GPU",
            ),
            (
                g.rate_limiter.is_some(),
                field("rate_limiter"),
                "the rate limiter is not supported",
            ),
            (
                g.passive,
                field("passive"),
                "passive instances are not supported",
            ),
            (
                !g.secondary_devices.is_empty(),
                field("secondary_devices"),
                "secondary devices are not supported",
            ),
            (
                !g.profile.is_empty(),
                field("profile"),
                "TensorRT profiles are not supported",
            ),
            (
                !g.host_policy.is_empty(),
                field("host_policy"),
                "host policies are not supported",
            ),
        ]);
    }
    // Pinned memory and the CUDA settings only concern GPU instances, which Triton also leaves
    // alone on CPU; everything else in `optimization` changes what runs.
    if let Some(o) = &cfg.optimization {
        out.extend([
            (
                o.graph.as_ref().is_some_and(|g| g.level != 0),
                "optimization.graph.level".into(),
                "ONNX Runtime's graph optimisation level is not configurable here",
            ),
            (
                o.priority != 0,
                "optimization.priority".into(),
                "model priorities are not supported",
            ),
            (
                o.execution_accelerators.as_ref().is_some_and(|a| {
                    !a.gpu_execution_accelerator.is_empty()
                        || !a.cpu_execution_accelerator.is_empty()
                }),
                "optimization.execution_accelerators".into(),
                "execution accelerators (TensorRT, OpenVINO) are not supported",
            ),
            (
                o.eager_batching,
                "optimization.eager_batching".into(),
                "eager batching is not supported",
            ),
        ]);
    }
    out.extend([
        (
            cfg.model_transaction_policy
                .as_ref()
                .is_some_and(|p| p.decoupled),
            "model_transaction_policy.decoupled".into(),
            "decoupled models are not supported",
        ),
        (
            cfg.model_repository_agents.is_some(),
            "model_repository_agents".into(),
            "repository agents are not supported",
        ),
        (
            cfg.model_operations.is_some(),
            "model_operations".into(),
            "custom operation libraries are not supported",
        ),
        (
            !cfg.cc_model_filenames.is_empty(),
            "cc_model_filenames".into(),
            "per-compute-capability model files are not supported",
        ),
        (
            !cfg.metric_tags.is_empty(),
            "metric_tags".into(),
            "metric tags are not supported yet",
        ),
    ]);
    out
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
            response_cache { enable: true }
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
                "ensemble_scheduling: only a model with platform \"ensemble\"",
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
