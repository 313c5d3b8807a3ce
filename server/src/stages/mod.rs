//! The stages around a model's predictor (Osprey's `stages` configuration extension):
//! transformer steps before it (tokenize, normalize) and after it (labels), a predictor that may
//! be remote, and what the explainer needs to know.
//!
//! A model's `input`/`output` configuration describes its predictor; the stages decide what
//! clients send and get back ([`Stages::client_signature`]).

pub mod labels;
pub mod normalize;
pub mod predictor;
pub mod remote;
pub mod tokenize;

use crate::config::ModelConfig;
use crate::error::ServerError;
use crate::model::files::ModelFiles;
use labels::LabelMap;
use normalize::Normalize;
use osprey_protocol::grpc::inference::transform_step::Step;
use osprey_protocol::grpc::inference::TransformStep;
use osprey_protocol::{DataType, ModelSignature, Tensor};
pub use predictor::Predictor;
pub use remote::RemoteClient;
use tokenize::Tokenize;

/// A step before the predictor.
pub enum Pre {
    Tokenize(Box<Tokenize>),
    Normalize(Normalize),
}

/// A step after the predictor.
pub enum Post {
    Labels(LabelMap),
}

/// A model's transformer steps.
#[derive(Default)]
pub struct Stages {
    pub pre: Vec<Pre>,
    pub post: Vec<Post>,
}

fn step_name(s: &TransformStep) -> &'static str {
    match s.step {
        Some(Step::Tokenize(_)) => "tokenize",
        Some(Step::Normalize(_)) => "normalize",
        Some(Step::Labels(_)) => "labels",
        None => "empty",
    }
}

impl Stages {
    /// Builds the configured steps against the predictor's signature. Files named by steps are
    /// looked for in `subdirs` of the model's directory (the version directory, then the model
    /// directory itself), and must lie inside it.
    pub fn build(
        cfg: &ModelConfig,
        files: &ModelFiles,
        subdirs: &[&str],
        predictor: &ModelSignature,
    ) -> Result<Stages, String> {
        let Some(stages) = &cfg.stages else {
            return Ok(Stages::default());
        };
        let mut out = Stages::default();
        for (i, s) in stages.preprocess.iter().enumerate() {
            out.pre.push(match &s.step {
                Some(Step::Tokenize(t)) => {
                    Pre::Tokenize(Box::new(Tokenize::load(t, files, subdirs, predictor)?))
                }
                Some(Step::Normalize(n)) => Pre::Normalize(Normalize::new(n, predictor)?),
                _ => {
                    return Err(format!(
                        "stages.preprocess[{i}]: a '{}' step cannot run before the predictor",
                        step_name(s)
                    ))
                }
            });
        }
        for (i, s) in stages.postprocess.iter().enumerate() {
            out.post.push(match &s.step {
                Some(Step::Labels(l)) => {
                    if !predictor.outputs.iter().any(|o| o.name == l.output) {
                        return Err(format!(
                            "stages.postprocess[{i}]: labels.output '{}' is not an output",
                            l.output
                        ));
                    }
                    let file = files.find(
                        &format!("stages.postprocess[{i}]: labels.label_filename"),
                        &l.label_filename,
                        subdirs,
                    )?;
                    Post::Labels(LabelMap {
                        output: l.output.clone(),
                        labels: labels::read_labels(&file)?,
                    })
                }
                _ => {
                    return Err(format!(
                        "stages.postprocess[{i}]: a '{}' step cannot run after the predictor",
                        step_name(s)
                    ))
                }
            });
        }
        Ok(out)
    }

    /// What clients send and get back, given what the predictor takes and gives.
    pub fn client_signature(&self, predictor: &ModelSignature) -> ModelSignature {
        let mut sig = predictor.clone();
        let batching = predictor.max_batch_size > 0;
        for p in &self.pre {
            if let Pre::Tokenize(t) = p {
                sig.inputs.retain(|s| !t.produces(&s.name));
                sig.inputs.push(t.client_spec(batching));
            }
        }
        for p in &self.post {
            let Post::Labels(l) = p;
            if let Some(o) = sig.outputs.iter_mut().find(|o| o.name == l.output) {
                o.datatype = DataType::Bytes;
            }
        }
        sig
    }

    /// The tokenizer step, if the model has one.
    pub fn tokenizer(&self) -> Option<&Tokenize> {
        self.pre.iter().find_map(|p| match p {
            Pre::Tokenize(t) => Some(t.as_ref()),
            Pre::Normalize(_) => None,
        })
    }

    /// Runs the steps before the predictor.
    pub fn preprocess(&self, inputs: &mut Vec<Tensor>) -> Result<(), ServerError> {
        for p in &self.pre {
            match p {
                Pre::Tokenize(t) => t.apply(inputs)?,
                Pre::Normalize(n) => n.apply(inputs)?,
            }
        }
        Ok(())
    }

    /// Runs the steps after the predictor.
    pub fn postprocess(&self, outputs: &mut [Tensor]) -> Result<(), ServerError> {
        for p in &self.post {
            let Post::Labels(l) = p;
            l.apply(outputs)?;
        }
        Ok(())
    }
}
