//! The PipelineRun controller: runs when the cluster serves the PipelineRun CRD, watching the
//! runs and the pods they own.

use super::crd::PipelineRun;
use super::reconcile::{on_error, reconcile, Context};
use crate::training::run::served;
use futures::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use kube::runtime::{watcher, Controller};
use kube::{Api, Client};
use std::future::Future;
use std::sync::Arc;

/// Runs until `shutdown`; returns at once when the PipelineRun CRD is not installed.
pub async fn run(
    client: Client,
    namespace: Option<String>,
    launcher_image: String,
    shutdown: impl Future<Output = ()> + Send + Sync + 'static,
) {
    if !served::<PipelineRun>(&client).await {
        tracing::info!(
            kind = "PipelineRun",
            "its CRD is not installed: not watched (osprey crd installs it)"
        );
        return;
    }
    tracing::info!(kind = "PipelineRun", launcher = %launcher_image, "running pipelines");
    let (runs, pods): (Api<PipelineRun>, Api<Pod>) = match namespace.as_deref() {
        Some(ns) => (
            Api::namespaced(client.clone(), ns),
            Api::namespaced(client.clone(), ns),
        ),
        None => (Api::all(client.clone()), Api::all(client.clone())),
    };
    let ctx = Arc::new(Context::new(client, launcher_image));
    Controller::new(runs, watcher::Config::default())
        .owns(pods, watcher::Config::default())
        .graceful_shutdown_on(shutdown)
        .run(reconcile, on_error, ctx)
        .for_each(|r| async move {
            let result = if r.is_ok() { "ok" } else { "error" };
            metrics::counter!("osprey_controller_reconcile_total", "result" => result, "kind" => "PipelineRun")
                .increment(1);
            if let Err(e) = r {
                tracing::debug!(error = %e, "pipeline reconcile error");
            }
        })
        .await;
}
