//! The PyTorchJob and TFJob controllers: each kind whose CRD the cluster serves is watched, with
//! the pods its jobs own.

use super::crd::{PyTorchJob, TFJob};
use super::reconcile::{on_error, reconcile, Context, TrainingJob};
use futures::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use kube::runtime::{watcher, Controller};
use kube::{Api, Client, Resource};
use std::future::Future;
use std::sync::Arc;

/// Whether the API server serves `K` (its CRD is installed).
pub async fn served<K: Resource<DynamicType = ()>>(client: &Client) -> bool {
    let group = K::group(&()).to_string();
    let version = K::version(&()).to_string();
    let plural = K::plural(&()).to_string();
    match kube::discovery::group(client, &group).await {
        Ok(g) => g
            .versioned_resources(&version)
            .iter()
            .any(|(r, _)| r.plural == plural),
        Err(_) => false,
    }
}

async fn run_kind<K: TrainingJob>(
    client: Client,
    namespace: Option<String>,
    shutdown: impl Future<Output = ()> + Send + Sync + 'static,
) where
    K::DynamicType: Default,
{
    let (jobs, pods): (Api<K>, Api<Pod>) = match namespace.as_deref() {
        Some(ns) => (
            Api::namespaced(client.clone(), ns),
            Api::namespaced(client.clone(), ns),
        ),
        None => (Api::all(client.clone()), Api::all(client.clone())),
    };
    let ctx = Arc::new(Context::new(client));
    let kind = K::kind(&()).to_string();
    Controller::new(jobs, watcher::Config::default())
        .owns(pods, watcher::Config::default())
        .graceful_shutdown_on(shutdown)
        .run(reconcile::<K>, on_error::<K>, ctx)
        .for_each(|r| {
            let kind = kind.clone();
            async move {
                let result = if r.is_ok() { "ok" } else { "error" };
                metrics::counter!("osprey_controller_reconcile_total", "result" => result, "kind" => kind)
                    .increment(1);
                if let Err(e) = r {
                    tracing::debug!(error = %e, "training reconcile error");
                }
            }
        })
        .await;
}

/// Runs the controllers of the training kinds the cluster serves until `shutdown`; returns at
/// once when it serves none.
pub async fn run(
    client: Client,
    namespace: Option<String>,
    shutdown: impl Future<Output = ()> + Send + Sync + Clone + 'static,
) {
    let pytorch = served::<PyTorchJob>(&client).await;
    let tf = served::<TFJob>(&client).await;
    for (kind, on) in [("PyTorchJob", pytorch), ("TFJob", tf)] {
        if on {
            tracing::info!(kind, "running training jobs");
        } else {
            tracing::info!(
                kind,
                "its CRD is not installed: not watched (osprey crd installs it)"
            );
        }
    }
    let a = async {
        if pytorch {
            run_kind::<PyTorchJob>(client.clone(), namespace.clone(), shutdown.clone()).await
        }
    };
    let b = async {
        if tf {
            run_kind::<TFJob>(client.clone(), namespace.clone(), shutdown.clone()).await
        }
    };
    futures::join!(a, b);
}
