//! A REST body with the binary tensor extension: the first two bytes choose the JSON header's
//! length (Inference-Header-Content-Length), the rest is the body; also the raw-body form
//! (header length 0) for each signature's single input.
#![no_main]

#[path = "common.rs"]
mod common;

use libfuzzer_sys::fuzz_target;
use osprey_protocol::rest::{decode_raw_request, decode_request};

fuzz_target!(|data: &[u8]| {
    let Some((len, body)) = data.split_first_chunk::<2>() else {
        return;
    };
    let header = usize::from(u16::from_le_bytes(*len));
    let body = bytes::Bytes::copy_from_slice(body);
    if let Ok(req) = decode_request(body.clone(), Some(header)) {
        common::validate(&req);
    }
    for s in common::signatures() {
        if let Some(input) = s.inputs.first() {
            if let Ok(req) = decode_raw_request(body.clone(), input, s.max_batch_size > 0) {
                let _ = s.validate(&req);
            }
        }
    }
});
