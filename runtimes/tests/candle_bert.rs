//! The candle BERT encoder on all-MiniLM-L6-v2 (`models/minilm/1`, linked by scripts/setup.sh):
//! shapes, unit norms, agreement with sentence-transformers, padding invariance, input errors and
//! the CUDA fallback.

use osprey_protocol::{Tensor, TensorData};
use osprey_runtimes::candle::{
    Accelerator, BertEncoder, ATTENTION_MASK, EMBEDDING, INPUT_IDS, TOKEN_TYPE_IDS,
};
use osprey_runtimes::{Runtime, RuntimeError};
use serde::Deserialize;
use std::path::PathBuf;
use std::sync::{Mutex, MutexGuard, OnceLock};
use tokenizers::{Tokenizer, TruncationParams};

const FOX: &str = "The quick brown fox jumps over the lazy dog.";

fn model_dir() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../models/minilm/1");
    assert!(
        dir.join("model.safetensors").exists() && dir.join("tokenizer.json").exists(),
        "all-MiniLM-L6-v2 is missing from {}: run scripts/setup.sh",
        dir.display()
    );
    dir
}

/// One CPU encoder shared by the tests (loading reads 90 MB).
fn encoder() -> MutexGuard<'static, BertEncoder> {
    static ENCODER: OnceLock<Mutex<BertEncoder>> = OnceLock::new();
    ENCODER
        .get_or_init(|| {
            let enc = BertEncoder::load(&model_dir(), &Accelerator::Cpu).expect("MiniLM loads");
            Mutex::new(enc)
        })
        .lock()
        .unwrap_or_else(|p| p.into_inner())
}

fn tokenizer() -> Tokenizer {
    let mut tok = Tokenizer::from_file(model_dir().join("tokenizer.json")).expect("tokenizer");
    // tokenizer.json pads every sequence to 128 tokens; pad per batch instead. It also truncates
    // at 128, where sentence-transformers truncates at max_seq_length 256
    // (sentence_bert_config.json).
    tok.with_padding(None);
    tok.with_truncation(Some(TruncationParams {
        max_length: 256,
        ..Default::default()
    }))
    .expect("truncation");
    tok
}

/// Tokenises `texts` into the three inputs, right-padded with id 0 / mask 0 to the longest.
fn batch(tok: &Tokenizer, texts: &[&str]) -> Vec<Tensor> {
    let encodings: Vec<_> = texts
        .iter()
        .map(|t| tok.encode(*t, true).expect("encodes"))
        .collect();
    let len = encodings.iter().map(|e| e.len()).max().unwrap_or(0);
    let padded = |f: &dyn Fn(&tokenizers::Encoding) -> &[u32]| -> Vec<i64> {
        encodings
            .iter()
            .flat_map(|e| {
                let v = f(e);
                v.iter()
                    .map(|&x| i64::from(x))
                    .chain(std::iter::repeat_n(0, len - v.len()))
                    .collect::<Vec<_>>()
            })
            .collect()
    };
    let shape = vec![texts.len() as i64, len as i64];
    [
        (INPUT_IDS, padded(&|e| e.get_ids())),
        (ATTENTION_MASK, padded(&|e| e.get_attention_mask())),
        (TOKEN_TYPE_IDS, padded(&|e| e.get_type_ids())),
    ]
    .into_iter()
    .map(|(name, v)| Tensor::new(name, shape.clone(), TensorData::Int64(v)).expect("tensor"))
    .collect()
}

/// Runs `inputs` and splits the embedding into rows.
fn embed(enc: &mut BertEncoder, inputs: Vec<Tensor>) -> Vec<Vec<f32>> {
    let out = enc.run(inputs).expect("runs");
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].name, EMBEDDING);
    let width = enc.hidden_size();
    let TensorData::Fp32(values) = &out[0].data else {
        panic!("embedding is {}, not FP32", out[0].datatype());
    };
    assert_eq!(out[0].shape[1], width as i64);
    values.chunks(width).map(<[f32]>::to_vec).collect()
}

fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

#[test]
fn embeddings_have_the_right_shape_and_unit_norm() {
    let tok = tokenizer();
    let mut enc = encoder();
    assert_eq!(enc.hidden_size(), 384);
    assert_eq!(enc.outputs()[0].shape, vec![-1, 384]);
    let texts = [
        FOX,
        "Hello!",
        "Sentence embeddings map text to vectors of numbers.",
    ];
    let out = enc.run(batch(&tok, &texts)).expect("runs");
    assert_eq!(out[0].shape, vec![3, 384]);
    for (i, row) in embed(&mut enc, batch(&tok, &texts)).iter().enumerate() {
        let norm = row.iter().map(|x| x * x).sum::<f32>().sqrt();
        assert!((norm - 1.0).abs() < 1e-5, "row {i} has norm {norm}");
    }
}

#[test]
fn matches_sentence_transformers() {
    let tok = tokenizer();
    let mut enc = encoder();
    let rows = embed(&mut enc, batch(&tok, &[FOX]));
    let expected = [0.04393359, 0.05893442, 0.04817835, 0.07754812, 0.02674443];
    let diff = max_abs_diff(&rows[0][..5], &expected);
    assert!(
        diff < 1e-4,
        "first values {:?}, expected {expected:?}",
        &rows[0][..5]
    );
}

#[test]
fn padding_does_not_change_an_embedding() {
    let tok = tokenizer();
    let mut enc = encoder();
    let short = "A short one.";
    let long = "A considerably longer sentence, which forces the short one to be padded a lot.";
    let alone = embed(&mut enc, batch(&tok, &[short])).remove(0);
    let padded = embed(&mut enc, batch(&tok, &[long, short]));
    let diff = max_abs_diff(&alone, &padded[1]);
    assert!(diff < 1e-5, "padded embedding differs by {diff}");
    let long_alone = embed(&mut enc, batch(&tok, &[long])).remove(0);
    assert!(max_abs_diff(&long_alone, &padded[0]) < 1e-5);
}

#[test]
fn mismatched_shapes_name_the_input() {
    let tok = tokenizer();
    let mut enc = encoder();
    let mut inputs = batch(&tok, &[FOX]);
    let mask = inputs
        .iter_mut()
        .find(|t| t.name == ATTENTION_MASK)
        .expect("mask");
    let len = mask.shape[1];
    *mask = Tensor::new(
        ATTENTION_MASK,
        vec![1, len - 1],
        TensorData::Int64(vec![1; (len - 1) as usize]),
    )
    .expect("tensor");
    match enc.run(inputs) {
        Err(RuntimeError::BadInput { name, reason }) => {
            assert_eq!(name, ATTENTION_MASK, "{reason}");
            assert!(reason.contains(INPUT_IDS), "{reason}");
        }
        other => panic!("expected BadInput, got {other:?}"),
    }
}

#[test]
fn cuda_loads_or_says_why_not() {
    match BertEncoder::load(&model_dir(), &Accelerator::Cuda(0)) {
        Ok(mut gpu) => {
            let tok = tokenizer();
            let texts = [
                FOX,
                "Hello!",
                "Sentence embeddings map text to vectors of numbers.",
            ];
            let texts: Vec<&str> = texts.iter().cycle().take(32).copied().collect();
            let on_gpu = embed(&mut gpu, batch(&tok, &texts));
            let on_cpu = embed(&mut encoder(), batch(&tok, &texts));
            for (g, c) in on_gpu.iter().zip(&on_cpu) {
                let diff = max_abs_diff(g, c);
                assert!(diff < 1e-4, "GPU and CPU differ by {diff}");
            }
        }
        Err(e @ RuntimeError::DeviceUnavailable { .. }) => {
            let text = e.to_string();
            if !cfg!(feature = "cuda") {
                assert!(text.contains("`cuda` feature"), "{text}");
            } else if osprey_runtimes::gpu::devices().is_err() {
                assert!(text.contains("no GPU"), "{text}");
            }
            eprintln!("skipping the CUDA check: {text}");
        }
        Err(e) => panic!("CUDA load failed with an unexpected error: {e}"),
    }
}

#[derive(Deserialize)]
struct Reference {
    sentences: Vec<ReferenceSentence>,
}

#[derive(Deserialize)]
struct ReferenceSentence {
    text: String,
    input_ids: Vec<i64>,
    embedding: Vec<f32>,
}

fn cosine(a: &[f32], b: &[f32]) -> f32 {
    let dot = |x: &[f32], y: &[f32]| x.iter().zip(y).map(|(p, q)| p * q).sum::<f32>();
    dot(a, b) / (dot(a, a).sqrt() * dot(b, b).sqrt())
}

/// Every sentence of `tests/data/minilm_reference.json` (sentence-transformers on torch) in one
/// padded batch: same token ids, cosine >= 0.9999.
#[test]
fn matches_the_reference_embeddings() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/minilm_reference.json");
    let text = std::fs::read_to_string(&path).expect("reference file");
    let reference: Reference = serde_json::from_str(&text).expect("reference JSON");
    assert!(!reference.sentences.is_empty());
    let tok = tokenizer();
    let texts: Vec<&str> = reference
        .sentences
        .iter()
        .map(|s| s.text.as_str())
        .collect();
    let inputs = batch(&tok, &texts);
    let TensorData::Int64(ids) = &inputs[0].data else {
        panic!("input_ids are INT64");
    };
    let len = inputs[0].shape[1] as usize;
    for (s, row) in reference.sentences.iter().zip(ids.chunks(len)) {
        assert_eq!(&row[..s.input_ids.len()], &s.input_ids[..], "{:?}", s.text);
        assert!(
            row[s.input_ids.len()..].iter().all(|&id| id == 0),
            "{:?}",
            s.text
        );
    }
    let rows = embed(&mut encoder(), inputs);
    for (s, row) in reference.sentences.iter().zip(&rows) {
        let c = cosine(row, &s.embedding);
        assert!(c >= 0.9999, "{:?}: cosine {c}", s.text);
    }
}
