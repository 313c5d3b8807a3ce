//! A gRPC ModelInferRequest as protobuf bytes, converted to a typed request and validated.
#![no_main]

#[path = "common.rs"]
mod common;

use libfuzzer_sys::fuzz_target;
use osprey_protocol::grpc::inference::ModelInferRequest;
use osprey_protocol::grpc::request_from_grpc;
use prost::Message;

fuzz_target!(|data: &[u8]| {
    if let Ok(msg) = ModelInferRequest::decode(data) {
        if let Ok(req) = request_from_grpc(msg) {
            common::validate(&req);
        }
    }
});
