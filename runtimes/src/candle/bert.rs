//! [`BertEncoder`]: a BERT-family sentence encoder (e.g. all-MiniLM-L6-v2) as a [`Runtime`].

use super::inputs::{input_specs, prepare, Limits};
use super::pooling::{l2_normalize, normalize_in, pool, pooling_in, EncoderOptions, Pooling};
use crate::device::Accelerator;
use crate::error::RuntimeError;
use crate::Runtime;
use candle_core::{DType, Device};
use candle_nn::VarBuilder;
use candle_transformers::models::bert::{BertModel, Config};
use osprey_protocol::{DataType, Tensor, TensorData, TensorSpec};
use std::path::Path;

/// The output's name: one FP32 vector of `hidden_size` per input row.
pub const EMBEDDING: &str = "embedding";

/// A BERT encoder with pooling and optional L2 normalisation, loaded from a sentence-transformers
/// style directory. Takes token ids (tokenisation happens before the runtime) and returns
/// `embedding` `FP32 [B, hidden_size]`.
pub struct BertEncoder {
    model: BertModel,
    device: Device,
    accelerator: Accelerator,
    limits: Limits,
    hidden_size: usize,
    pooling: Pooling,
    normalize: bool,
    inputs: Vec<TensorSpec>,
    outputs: Vec<TensorSpec>,
}

impl std::fmt::Debug for BertEncoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BertEncoder")
            .field("accelerator", &self.accelerator)
            .field("hidden_size", &self.hidden_size)
            .field("pooling", &self.pooling)
            .field("normalize", &self.normalize)
            .finish()
    }
}

impl BertEncoder {
    /// Loads `dir/config.json` and `dir/model.safetensors` onto `accelerator`, with pooling and
    /// normalisation as the directory describes them (see [`EncoderOptions`]).
    pub fn load(dir: &Path, accelerator: &Accelerator) -> Result<Self, RuntimeError> {
        Self::load_with(dir, accelerator, EncoderOptions::default())
    }

    /// [`BertEncoder::load`], with pooling or normalisation set explicitly where `options` says.
    pub fn load_with(
        dir: &Path,
        accelerator: &Accelerator,
        options: EncoderOptions,
    ) -> Result<Self, RuntimeError> {
        let device = accelerator.device()?;
        let config_path = dir.join("config.json");
        let fail = |path: &Path, message: String| RuntimeError::ModelLoad {
            path: path.to_path_buf(),
            message,
        };
        let config_text =
            std::fs::read_to_string(&config_path).map_err(|e| fail(&config_path, e.to_string()))?;
        let config: Config = serde_json::from_str(&config_text)
            .map_err(|e| fail(&config_path, format!("not a BERT config: {e}")))?;
        let pooling = match options.pooling {
            Some(p) => p,
            None => pooling_in(dir)?,
        };
        let normalize = match options.normalize {
            Some(n) => n,
            None => normalize_in(dir)?,
        };

        let weights_path = dir.join("model.safetensors");
        let weights = candle_core::safetensors::load(&weights_path, &device)
            .map_err(|e| fail(&weights_path, e.to_string()))?;
        let vb = VarBuilder::from_tensors(weights, DType::F32, &device);
        let model = BertModel::load(vb, &config).map_err(|e| fail(&weights_path, e.to_string()))?;

        let hidden_size = config.hidden_size;
        let outputs = vec![TensorSpec {
            name: EMBEDDING.to_string(),
            datatype: DataType::Fp32,
            shape: vec![-1, to_dim(hidden_size)],
            optional: false,
        }];
        Ok(BertEncoder {
            model,
            device,
            accelerator: *accelerator,
            limits: Limits {
                vocab_size: config.vocab_size,
                type_vocab_size: config.type_vocab_size,
                max_positions: config.max_position_embeddings,
            },
            hidden_size,
            pooling,
            normalize,
            inputs: input_specs(),
            outputs,
        })
    }

    /// The width of each embedding.
    pub fn hidden_size(&self) -> usize {
        self.hidden_size
    }

    /// How token vectors are pooled.
    pub fn pooling(&self) -> Pooling {
        self.pooling
    }

    /// Whether embeddings are scaled to unit L2 norm.
    pub fn normalizes(&self) -> bool {
        self.normalize
    }

    /// The device the model runs on.
    pub fn accelerator(&self) -> Accelerator {
        self.accelerator
    }

    /// The longest sequence the model takes (`max_position_embeddings`).
    pub fn max_length(&self) -> usize {
        self.limits.max_positions
    }

    fn embed(&self, inputs: Vec<Tensor>) -> Result<(usize, Vec<f32>), RuntimeError> {
        let batch = prepare(inputs, self.limits, &self.device)?;
        if batch.rows == 0 {
            return Ok((0, Vec::new()));
        }
        let fail = |e: candle_core::Error| RuntimeError::Inference(e.to_string());
        let hidden = self
            .model
            .forward(
                &batch.input_ids,
                &batch.token_type_ids,
                Some(&batch.attention_mask),
            )
            .map_err(fail)?;
        let mut pooled = pool(&hidden, &batch.attention_mask, self.pooling).map_err(fail)?;
        if self.normalize {
            pooled = l2_normalize(&pooled).map_err(fail)?;
        }
        let values = pooled
            .to_dtype(DType::F32)
            .and_then(|t| t.flatten_all())
            .and_then(|t| t.to_vec1::<f32>())
            .map_err(fail)?;
        Ok((batch.rows, values))
    }
}

fn to_dim(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

impl Runtime for BertEncoder {
    fn inputs(&self) -> &[TensorSpec] {
        &self.inputs
    }

    fn outputs(&self) -> &[TensorSpec] {
        &self.outputs
    }

    fn run(&mut self, inputs: Vec<Tensor>) -> Result<Vec<Tensor>, RuntimeError> {
        let (rows, values) = self.embed(inputs)?;
        let shape = vec![to_dim(rows), to_dim(self.hidden_size)];
        let embedding = Tensor::new(EMBEDDING, shape, TensorData::Fp32(values))
            .map_err(|e| RuntimeError::Inference(e.to_string()))?;
        Ok(vec![embedding])
    }
}
