//! The tokenizer stage on hostile text: the bundled MiniLM tokenizer
//! (`models/minilm/1/tokenizer.json`, installed by `scripts/setup.sh`) with the stage's settings
//! (special tokens added, no padding, truncation to the config's `max_length: 256`) encodes any
//! UTF-8 string or answers an error, and what it encodes stays inside the vocabulary and the
//! length limit.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;
use tokenizers::{Tokenizer, TruncationParams};

const MAX_LENGTH: usize = 256;

fn tokenizer() -> &'static Tokenizer {
    static TOKENIZER: OnceLock<Tokenizer> = OnceLock::new();
    TOKENIZER.get_or_init(|| {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../models/minilm/1/tokenizer.json");
        let mut t = Tokenizer::from_file(path)
            .unwrap_or_else(|e| panic!("{path}: {e} (scripts/setup.sh installs it)"));
        t.with_padding(None);
        t.with_truncation(Some(TruncationParams {
            max_length: MAX_LENGTH,
            ..Default::default()
        }))
        .expect("truncation");
        t
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let t = tokenizer();
    if let Ok(e) = t.encode(text, true) {
        assert!(e.len() <= MAX_LENGTH, "{} tokens", e.len());
        assert_eq!(e.get_attention_mask().len(), e.len());
        assert_eq!(e.get_type_ids().len(), e.len());
        let vocab = t.get_vocab_size(true) as u32;
        assert!(e.get_ids().iter().all(|&id| id < vocab));
    }
});
