//! ONNX Runtime environment and sessions.

use super::convert::{datatype_of, from_ort, to_ort};
use crate::error::RuntimeError;
use crate::{Accelerator, LoadOptions, Runtime};
use ort::session::builder::GraphOptimizationLevel;
use ort::session::Session;
use ort::value::Outlet;
use osprey_protocol::{Tensor, TensorSpec};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

/// The loaded ONNX Runtime library; cheap to clone, shared by every session.
#[derive(Clone)]
pub struct OnnxEnvironment {
    env: ort::environment::Environment,
    library: PathBuf,
}

impl std::fmt::Debug for OnnxEnvironment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OnnxEnvironment")
            .field("library", &self.library)
            .finish()
    }
}

impl OnnxEnvironment {
    /// Loads the shared library at `library` (see [`super::locate_library`]). ONNX Runtime allows
    /// one environment per process: later calls return the first environment, whatever path
    /// they name.
    pub fn init(library: &Path) -> Result<OnnxEnvironment, RuntimeError> {
        static SHARED: OnceLock<OnnxEnvironment> = OnceLock::new();
        static INIT: Mutex<()> = Mutex::new(());
        let _guard = INIT.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(env) = SHARED.get() {
            return Ok(env.clone());
        }
        let load_err = |message: String| RuntimeError::LibraryLoad {
            path: library.to_path_buf(),
            message,
        };
        let env = ort::init_from(library)
            .map_err(|e| load_err(e.to_string()))?
            .with_name("osprey")
            .build()
            .map_err(|e| load_err(e.to_string()))?;
        let env = OnnxEnvironment {
            env,
            library: library.to_path_buf(),
        };
        Ok(SHARED.get_or_init(|| env).clone())
    }

    /// The library this environment was loaded from.
    pub fn library(&self) -> &Path {
        &self.library
    }

    /// Loads one instance of the model at `path`.
    pub fn load(&self, path: &Path, opts: &LoadOptions) -> Result<OnnxModel, RuntimeError> {
        let fail = |message: String| RuntimeError::ModelLoad {
            path: path.to_path_buf(),
            message,
        };
        let mut builder = Session::builder(&self.env)
            .map_err(|e| fail(e.to_string()))?
            .with_optimization_level(GraphOptimizationLevel::Level3)
            .map_err(|e| fail(e.to_string()))?;
        if opts.intra_op_threads > 0 {
            builder = builder
                .with_intra_threads(opts.intra_op_threads)
                .map_err(|e| fail(e.to_string()))?;
        }
        builder = builder
            .with_intra_op_spinning(opts.intra_op_spinning)
            .map_err(|e| fail(e.to_string()))?
            .with_inter_op_spinning(false)
            .map_err(|e| fail(e.to_string()))?;
        if let Accelerator::Cuda(ordinal) = opts.device {
            opts.device.check()?;
            super::cuda::register(&mut builder, ordinal, &self.library).map_err(|message| {
                RuntimeError::DeviceUnavailable {
                    device: opts.device.to_string(),
                    message,
                }
            })?;
        }
        let session = builder
            .commit_from_file(path)
            .map_err(|e| fail(e.to_string()))?;
        let inputs = specs("input", session.inputs())?;
        let outputs = specs("output", session.outputs())?;
        let output_names = outputs.iter().map(|o| o.name.clone()).collect();
        Ok(OnnxModel {
            session,
            inputs,
            outputs,
            output_names,
        })
    }
}

fn specs(kind: &'static str, outlets: &[Outlet]) -> Result<Vec<TensorSpec>, RuntimeError> {
    outlets
        .iter()
        .map(|o| {
            let unsupported = || RuntimeError::UnsupportedType {
                tensor: kind,
                name: o.name().to_string(),
                ty: format!("{:?}", o.dtype()),
            };
            let ty = o.dtype().tensor_type().ok_or_else(unsupported)?;
            let datatype = datatype_of(ty).ok_or_else(unsupported)?;
            let shape = o
                .dtype()
                .tensor_shape()
                .map(|s| s.to_vec())
                .unwrap_or_default();
            Ok(TensorSpec {
                name: o.name().to_string(),
                datatype,
                shape,
                optional: false,
            })
        })
        .collect()
}

/// One ONNX Runtime session serving one model instance.
pub struct OnnxModel {
    session: Session,
    inputs: Vec<TensorSpec>,
    outputs: Vec<TensorSpec>,
    output_names: Vec<String>,
}

impl Runtime for OnnxModel {
    fn inputs(&self) -> &[TensorSpec] {
        &self.inputs
    }

    fn outputs(&self) -> &[TensorSpec] {
        &self.outputs
    }

    fn run(&mut self, inputs: Vec<Tensor>) -> Result<Vec<Tensor>, RuntimeError> {
        let values = inputs
            .into_iter()
            .map(|t| Ok((t.name.clone(), to_ort(t)?)))
            .collect::<Result<Vec<_>, RuntimeError>>()?;
        let outputs = self
            .session
            .run(values)
            .map_err(|e| RuntimeError::Inference(e.to_string()))?;
        self.output_names
            .iter()
            .map(|name| {
                let v = outputs.get(name).ok_or_else(|| {
                    RuntimeError::Inference(format!("output '{name}' missing from the run"))
                })?;
                from_ort(name, v)
            })
            .collect()
    }
}
