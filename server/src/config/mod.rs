//! Triton model configuration: `config.pbtxt` parsing, completion from the model itself, version
//! policies, and the JSON form served at `/v2/models/{m}/config`.
//!
//! Modules: [`complete`] fills in what the model itself says; [`support`] refuses what Osprey
//! does not implement, naming the field; [`version`] reads version policies and directories.

mod complete;
mod support;
mod version;

pub use complete::{complete, complete_remote, default_config, signature};
pub use osprey_protocol::grpc::inference::ModelConfig;
pub use support::refuse_unsupported;
pub use version::{select_versions, versions_on_disk};

use osprey_protocol::pbtxt;
use prost_reflect::{DynamicMessage, MessageDescriptor, SerializeOptions};

/// Errors in a model's configuration; the model becomes UNAVAILABLE with this as its reason.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ConfigError {
    #[error("config.pbtxt: {0}")]
    Parse(String),
    #[error("config.pbtxt: {0}")]
    Invalid(String),
}

fn descriptor(full_name: &str) -> Result<MessageDescriptor, ConfigError> {
    pbtxt::descriptor(full_name).map_err(ConfigError::Parse)
}

/// Parses protobuf text format as Triton writes `config.pbtxt`.
pub fn parse_pbtxt(text: &str) -> Result<ModelConfig, ConfigError> {
    pbtxt::parse_model_config(text).map_err(ConfigError::Parse)
}

/// Triton's JSON form of a protobuf message (`full_name` such as `inference.ModelConfig`):
/// proto field names, every field present, 64-bit integers as numbers.
pub fn proto_to_json<M: prost::Message>(
    message: &M,
    full_name: &str,
) -> Result<serde_json::Value, ConfigError> {
    let mut msg = DynamicMessage::new(descriptor(full_name)?);
    msg.transcode_from(message)
        .map_err(|e| ConfigError::Parse(e.to_string()))?;
    let opts = SerializeOptions::new()
        .use_proto_field_name(true)
        .skip_default_fields(false)
        .stringify_64_bit_integers(false);
    msg.serialize_with_options(serde_json::value::Serializer, &opts)
        .map_err(|e| ConfigError::Parse(e.to_string()))
}

/// The JSON form of a model configuration.
pub fn to_json(config: &ModelConfig) -> Result<serde_json::Value, ConfigError> {
    proto_to_json(config, "inference.ModelConfig")
}

/// Parses a model configuration from its JSON form (what a load request's `config` parameter
/// carries, as Triton takes it): proto or JSON field names, enums by name.
pub fn parse_json(text: &str) -> Result<ModelConfig, ConfigError> {
    let bad = |e: String| ConfigError::Parse(format!("config parameter: {e}"));
    let mut de = serde_json::Deserializer::from_str(text);
    let msg = DynamicMessage::deserialize(descriptor("inference.ModelConfig")?, &mut de)
        .map_err(|e| bad(e.to_string()))?;
    de.end().map_err(|e| bad(e.to_string()))?;
    msg.transcode_to::<ModelConfig>()
        .map_err(|e| bad(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const MLP: &str = r#"
        name: "mlp"
        platform: "onnxruntime_onnx"
        max_batch_size: 64
        input [ { name: "input" data_type: TYPE_FP32 dims: [ 64 ] } ]
        output [ { name: "output" data_type: TYPE_FP32 dims: [ 10 ] } ]
        instance_group [ { count: 2 kind: KIND_CPU } ]
        dynamic_batching { max_queue_delay_microseconds: 100 preferred_batch_size: [ 8, 16 ] }
        version_policy: { specific: { versions: [ 1, 3 ] } }
        parameters { key: "intra_op_thread_count" value: { string_value: "1" } }
    "#;

    #[test]
    fn parses_triton_text_format() {
        let c = parse_pbtxt(MLP).expect("parses");
        assert_eq!(c.name, "mlp");
        assert_eq!(c.max_batch_size, 64);
        assert_eq!(c.input[0].dims, vec![64]);
        assert_eq!(c.instance_group[0].count, 2);
        assert_eq!(c.parameters["intra_op_thread_count"].string_value, "1");
    }

    #[test]
    fn reports_unknown_fields() {
        let e = parse_pbtxt("name: \"x\"\nbogus_field: 3").unwrap_err();
        assert!(e.to_string().contains("bogus_field"), "{e}");
    }

    #[test]
    fn json_uses_triton_spelling() {
        let c = parse_pbtxt(MLP).expect("parses");
        let j = to_json(&c).expect("json");
        assert_eq!(j["max_batch_size"], 64);
        assert_eq!(j["input"][0]["data_type"], "TYPE_FP32");
        assert_eq!(j["input"][0]["dims"], serde_json::json!([64]));
        assert_eq!(
            j["dynamic_batching"]["preferred_batch_size"],
            serde_json::json!([8, 16])
        );
    }

    #[test]
    fn json_round_trips_and_names_what_is_wrong() {
        let c = parse_pbtxt(MLP).expect("parses");
        let text = to_json(&c).expect("json").to_string();
        assert_eq!(parse_json(&text).expect("parses back"), c);
        let e = parse_json("{\"max_batch_size\": \"many\"}").unwrap_err();
        assert!(e.to_string().contains("config parameter"), "{e}");
        let e = parse_json("{\"bogus_field\": 1}").unwrap_err();
        assert!(e.to_string().contains("bogus_field"), "{e}");
        assert!(
            parse_json("name: \"mlp\"").is_err(),
            "text format is not JSON"
        );
    }
}
