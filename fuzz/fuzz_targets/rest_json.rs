//! A REST inference body that is all JSON: decoding answers Ok or a ProtocolError, and a decoded
//! request validates or is refused; nothing panics.
#![no_main]

#[path = "common.rs"]
mod common;

use libfuzzer_sys::fuzz_target;
use osprey_protocol::rest::decode_request;

fuzz_target!(|data: &[u8]| {
    if let Ok(req) = decode_request(bytes::Bytes::copy_from_slice(data), None) {
        common::validate(&req);
    }
});
