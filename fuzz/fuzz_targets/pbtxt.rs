//! config.pbtxt text: the list-colon rewrite and the text-format parser answer Ok or an error.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = osprey_protocol::pbtxt::parse_model_config(text);
    }
});
