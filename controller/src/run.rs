//! Running the controller: watches InferenceServices and the Deployments they own, reconciles
//! each change, until `shutdown` completes.

use crate::crd::InferenceService;
use crate::desired::Settings;
use crate::reconcile::{on_error, reconcile, Context};
use futures::StreamExt;
use k8s_openapi::api::apps::v1::Deployment;
use kube::runtime::{watcher, Controller};
use kube::{Api, Client};
use std::future::Future;
use std::sync::Arc;

/// Reconciles every InferenceService in `namespace` (all namespaces when None).
pub async fn run(
    client: Client,
    namespace: Option<&str>,
    settings: Settings,
    shutdown: impl Future<Output = ()> + Send + Sync + 'static,
) {
    let (isvcs, deployments): (Api<InferenceService>, Api<Deployment>) = match namespace {
        Some(ns) => (
            Api::namespaced(client.clone(), ns),
            Api::namespaced(client.clone(), ns),
        ),
        None => (Api::all(client.clone()), Api::all(client.clone())),
    };
    let ctx = Arc::new(Context::new(client, settings));
    Controller::new(isvcs, watcher::Config::default())
        .owns(deployments, watcher::Config::default())
        .graceful_shutdown_on(shutdown)
        .run(reconcile, on_error, ctx)
        .for_each(|r| async move {
            match r {
                Ok((obj, _)) => {
                    metrics::counter!("osprey_controller_reconcile_total", "result" => "ok")
                        .increment(1);
                    tracing::debug!(isvc = %obj.name, "reconciled");
                }
                Err(e) => {
                    metrics::counter!("osprey_controller_reconcile_total", "result" => "error")
                        .increment(1);
                    tracing::debug!(error = %e, "reconcile error");
                }
            }
        })
        .await;
}
