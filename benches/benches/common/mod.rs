//! What the in-process benches share: a tokio runtime and one bundled model loaded through the
//! server's registry (ONNX Runtime from scripts/setup.sh's .venv).
#![allow(clippy::unwrap_used, clippy::expect_used, dead_code)]

use osprey_runtimes::onnx::{locate_library, OnnxEnvironment};
use osprey_server::model::layout::Repository;
use osprey_server::model::{LoadSettings, LoadedModel, Registry};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The bundled model repository.
pub fn models() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../models")
}

/// A multi-threaded runtime and `model` loaded from the bundled repository.
pub fn load(model: &str) -> (tokio::runtime::Runtime, Arc<LoadedModel>) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let env =
        OnnxEnvironment::init(&locate_library(None).expect("ONNX Runtime: run scripts/setup.sh"))
            .unwrap();
    let settings = LoadSettings {
        default_max_batch_size: 4,
        queue_per_instance: 1024,
        ..Default::default()
    };
    let registry = Arc::new(Registry::new(Repository::triton(models()), env, settings));
    rt.block_on(registry.load(model))
        .unwrap_or_else(|e| panic!("{model}: {e} (run scripts/setup.sh)"));
    let loaded = registry.get(model, None).unwrap();
    (rt, loaded)
}

/// One inference as a front end runs it: prepared at the edge, then run.
pub async fn infer(
    model: &LoadedModel,
    req: osprey_protocol::InferRequest,
) -> Result<osprey_protocol::InferResponse, osprey_server::ServerError> {
    let req = osprey_server::infer::Prepared::new(model, req)?;
    let (resp, _) = osprey_server::infer::infer(
        model,
        req,
        osprey_server::metrics::Protocol::Grpc,
        &mut osprey_server::trace::RequestTrace::off(),
    )
    .await?;
    Ok(resp)
}
