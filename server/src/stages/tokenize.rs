//! The text tokenizer step: one BYTES string per row becomes `input_ids`, `attention_mask` and
//! `token_type_ids` (those the predictor takes), padded to the longest row of the request. The
//! batcher pads further, per batch, when `batch_pad` names those inputs.

use crate::error::ServerError;
use crate::model::files::ModelFiles;
use osprey_protocol::grpc::inference::TokenizeStep;
use osprey_protocol::{DataType, ModelSignature, Tensor, TensorData, TensorSpec};
use tokenizers::{Encoding, Tokenizer, TruncationParams};

/// The tensors a tokenizer can produce, by the predictor input names BERT-family models use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    Ids,
    Mask,
    TypeIds,
}

impl Field {
    pub const ALL: [Field; 3] = [Field::Ids, Field::Mask, Field::TypeIds];

    pub fn input_name(self) -> &'static str {
        match self {
            Field::Ids => "input_ids",
            Field::Mask => "attention_mask",
            Field::TypeIds => "token_type_ids",
        }
    }

    fn values(self, e: &Encoding) -> &[u32] {
        match self {
            Field::Ids => e.get_ids(),
            Field::Mask => e.get_attention_mask(),
            Field::TypeIds => e.get_type_ids(),
        }
    }
}

/// A loaded tokenizer step.
pub struct Tokenize {
    /// The client-facing BYTES input.
    pub input: String,
    tokenizer: Tokenizer,
    /// What the predictor takes, with the datatype it wants (INT64 or INT32).
    produce: Vec<(Field, DataType)>,
    pad_id: u32,
}

impl Tokenize {
    /// Loads the tokenizer and matches what it produces to the predictor's inputs.
    pub fn load(
        step: &TokenizeStep,
        files: &ModelFiles,
        subdirs: &[&str],
        predictor: &ModelSignature,
    ) -> Result<Tokenize, String> {
        if step.input.is_empty() {
            return Err("tokenize.input is empty: name the client's text input".into());
        }
        let file = if step.tokenizer_file.is_empty() {
            "tokenizer.json"
        } else {
            &step.tokenizer_file
        };
        let path = files.find("tokenize.tokenizer_file", file, subdirs)?;
        let mut tokenizer = Tokenizer::from_file(&path)
            .map_err(|e| format!("cannot load tokenizer '{file}': {e}"))?;
        let pad_id = tokenizer.get_padding().map_or(0, |p| p.pad_id);
        // Padding happens per request and per batch, never to a fixed length.
        tokenizer.with_padding(None);
        if step.max_length > 0 {
            tokenizer
                .with_truncation(Some(TruncationParams {
                    max_length: step.max_length as usize,
                    ..Default::default()
                }))
                .map_err(|e| format!("tokenize.max_length: {e}"))?;
        }
        let mut produce = Vec::new();
        for f in Field::ALL {
            if let Some(spec) = predictor.inputs.iter().find(|s| s.name == f.input_name()) {
                if !matches!(spec.datatype, DataType::Int64 | DataType::Int32) {
                    return Err(format!(
                        "tokenize: predictor input '{}' is {}, not INT64 or INT32",
                        spec.name,
                        spec.datatype.as_str()
                    ));
                }
                produce.push((f, spec.datatype));
            }
        }
        if !produce.iter().any(|(f, _)| *f == Field::Ids) {
            return Err("tokenize: the predictor has no 'input_ids' input".into());
        }
        Ok(Tokenize {
            input: step.input.clone(),
            tokenizer,
            produce,
            pad_id,
        })
    }

    /// The inputs this step replaces.
    pub fn produces(&self, name: &str) -> bool {
        self.produce.iter().any(|(f, _)| f.input_name() == name)
    }

    /// The client-facing input: one string per row.
    pub fn client_spec(&self, batching: bool) -> TensorSpec {
        TensorSpec {
            name: self.input.clone(),
            datatype: DataType::Bytes,
            shape: if batching { vec![-1, 1] } else { vec![-1] },
            optional: false,
        }
    }

    /// Tokenizes each string (with the model's special tokens).
    pub fn encode(&self, texts: &[&str]) -> Result<Vec<Encoding>, ServerError> {
        texts
            .iter()
            .map(|t| {
                self.tokenizer.encode(*t, true).map_err(|e| {
                    ServerError::BadRequest(format!("input '{}': cannot tokenize: {e}", self.input))
                })
            })
            .collect()
    }

    /// The predictor's tensors for these encodings, padded to the longest one.
    pub fn tensors(&self, encodings: &[Encoding]) -> Vec<Tensor> {
        let rows = encodings.len();
        let len = encodings.iter().map(Encoding::len).max().unwrap_or(0);
        self.produce
            .iter()
            .map(|&(field, dt)| {
                let pad = if field == Field::Ids { self.pad_id } else { 0 };
                let mut v: Vec<i64> = Vec::with_capacity(rows * len);
                for e in encodings {
                    let vals = field.values(e);
                    v.extend(vals.iter().map(|&x| i64::from(x)));
                    v.extend(std::iter::repeat_n(i64::from(pad), len - vals.len()));
                }
                let data = match dt {
                    DataType::Int32 => TensorData::Int32(v.into_iter().map(|x| x as i32).collect()),
                    _ => TensorData::Int64(v),
                };
                Tensor {
                    name: field.input_name().to_string(),
                    shape: vec![rows as i64, len as i64],
                    data,
                }
            })
            .collect()
    }

    /// The strings of the client's text input, one per row.
    pub fn texts(&self, t: &Tensor) -> Result<Vec<String>, ServerError> {
        let TensorData::Bytes(items) = &t.data else {
            return Err(ServerError::BadRequest(format!(
                "input '{}' must be BYTES",
                self.input
            )));
        };
        items
            .iter()
            .map(|b| {
                String::from_utf8(b.to_vec()).map_err(|_| {
                    ServerError::BadRequest(format!("input '{}' is not valid UTF-8", self.input))
                })
            })
            .collect()
    }

    /// Replaces the text input by the predictor's token tensors.
    pub fn apply(&self, inputs: &mut Vec<Tensor>) -> Result<(), ServerError> {
        let Some(pos) = inputs.iter().position(|t| t.name == self.input) else {
            return Err(ServerError::BadRequest(format!(
                "input '{}' is missing",
                self.input
            )));
        };
        let t = inputs.swap_remove(pos);
        let texts = self.texts(&t)?;
        let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
        let encodings = self.encode(&refs)?;
        inputs.extend(self.tensors(&encodings));
        Ok(())
    }
}
