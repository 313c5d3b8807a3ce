//! What the targets share: the MLP's signature (FP32 [-1,64] in, [-1,10] out) and a text model's
//! (BYTES [-1,1]), so decoded requests also go through validation.

use osprey_protocol::{DataType, ModelSignature, TensorSpec};

pub fn signatures() -> [ModelSignature; 2] {
    let spec = |name: &str, datatype, shape: Vec<i64>| TensorSpec {
        name: name.into(),
        datatype,
        shape,
        optional: false,
    };
    [
        ModelSignature {
            name: "mlp".into(),
            inputs: vec![spec("input", DataType::Fp32, vec![-1, 64])],
            outputs: vec![spec("output", DataType::Fp32, vec![-1, 10])],
            max_batch_size: 64,
        },
        ModelSignature {
            name: "text".into(),
            inputs: vec![spec("text", DataType::Bytes, vec![-1, 1])],
            outputs: vec![spec("label", DataType::Bytes, vec![-1])],
            max_batch_size: 0,
        },
    ]
}

pub fn validate(req: &osprey_protocol::InferRequest) {
    for s in signatures() {
        let _ = s.validate(req);
    }
}
