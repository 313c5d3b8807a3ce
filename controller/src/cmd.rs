//! `osprey controller` and `osprey crd`: the command-line entry points.

use crate::crd::InferenceService;
use crate::desired::Settings;
use crate::error::Error;
use crate::leader::{self, LeaseSettings};
use crate::reconcile::hpa_api_version;
use axum::routing::get;
use axum::Router;
use kube::{Client, CustomResourceExt};
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// `osprey controller` flags.
#[derive(Debug, Clone, clap::Args)]
pub struct ControllerArgs {
    /// Image the InferenceService pods run (the same `osprey` binary serves and pulls models).
    #[arg(
        long,
        env = "OSPREY_IMAGE",
        default_value = "ghcr.io/osprey/osprey:latest"
    )]
    pub image: String,
    /// Watch only this namespace (default: every namespace).
    #[arg(long)]
    pub namespace: Option<String>,
    /// Elect a leader through a Lease so that several replicas never reconcile at once.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    pub leader_election: bool,
    /// Namespace of the Lease.
    #[arg(long, env = "POD_NAMESPACE", default_value = "osprey-system")]
    pub lease_namespace: String,
    /// Name of the Lease.
    #[arg(long, default_value = "osprey-controller")]
    pub lease_name: String,
    /// This replica's identity in the Lease (default: the host name).
    #[arg(long, env = "POD_NAME")]
    pub identity: Option<String>,
    /// Port of /healthz, /readyz (ready while leading) and /metrics.
    #[arg(long, default_value_t = 8080)]
    pub health_port: u16,
}

/// Each CustomResourceDefinition the controller serves, as (file name under deploy/crds, YAML),
/// generated from the Rust types.
pub fn crds() -> Result<Vec<(String, String)>, Error> {
    use crate::pipeline::kube::crd::PipelineRun;
    use crate::training::crd::{PyTorchJob, TFJob};
    let mut all = vec![serde_json::to_value(InferenceService::crd())?];
    for (crd, path) in [
        (
            PyTorchJob::crd(),
            "pytorchReplicaSpecs/additionalProperties/properties/template",
        ),
        (
            TFJob::crd(),
            "tfReplicaSpecs/additionalProperties/properties/template",
        ),
        (PipelineRun::crd(), "pipelineRootVolume"),
        (crate::tuning::experiment::Experiment::crd(), "-"),
        (crate::tuning::trial::Trial::crd(), "-"),
    ] {
        let mut v = serde_json::to_value(crd)?;
        if path == "-" {
            // Katib's kinds: the controller checks their fields itself (reporting InvalidSpec
            // by field); schema defaults generated from Rust's Default (empty strings rendered
            // as null) would be refused by the API server.
            strip_key(&mut v, "default");
        }
        // The pod template's (and volume source's) schema is Kubernetes' own: without its
        // descriptions the CRD stays small enough for `kubectl apply` (whose annotation holds
        // at most 256 KiB).
        if let Some(versions) = v
            .pointer_mut("/spec/versions")
            .and_then(|x| x.as_array_mut())
        {
            for version in versions {
                let path = format!("/schema/openAPIV3Schema/properties/spec/properties/{path}");
                if let Some(t) = version.pointer_mut(&path) {
                    strip_descriptions(t);
                }
            }
        }
        all.push(v);
    }
    all.iter()
        .map(|c| {
            let name = c
                .pointer("/metadata/name")
                .and_then(|n| n.as_str())
                .unwrap_or_default()
                .to_string();
            serde_yaml::to_string(c)
                .map(|y| (format!("{name}.yaml"), y))
                .map_err(|e| Error::Other(e.to_string()))
        })
        .collect()
}

fn strip_key(v: &mut serde_json::Value, key: &str) {
    match v {
        serde_json::Value::Object(m) => {
            m.remove(key);
            m.values_mut().for_each(|x| strip_key(x, key));
        }
        serde_json::Value::Array(a) => a.iter_mut().for_each(|x| strip_key(x, key)),
        _ => {}
    }
}

fn strip_descriptions(v: &mut serde_json::Value) {
    match v {
        serde_json::Value::Object(m) => {
            m.remove("description");
            m.values_mut().for_each(strip_descriptions);
        }
        serde_json::Value::Array(a) => a.iter_mut().for_each(strip_descriptions),
        _ => {}
    }
}

/// Every CustomResourceDefinition as one multi-document YAML stream (`osprey crd`).
pub fn crd_yaml() -> Result<String, Error> {
    Ok(crds()?
        .into_iter()
        .map(|(_, y)| y)
        .collect::<Vec<_>>()
        .join("---\n"))
}

fn identity(args: &ControllerArgs) -> String {
    args.identity.clone().unwrap_or_else(|| {
        std::fs::read_to_string("/etc/hostname")
            .map(|h| h.trim().to_string())
            .unwrap_or_else(|_| format!("osprey-{}", std::process::id()))
    })
}

async fn health(port: u16, leading: Arc<AtomicBool>) -> Result<(), Error> {
    let recorder = metrics_exporter_prometheus::PrometheusBuilder::new()
        .install_recorder()
        .map_err(|e| Error::Other(format!("metrics recorder: {e}")))?;
    let app = Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route(
            "/readyz",
            get(move || {
                let leading = leading.clone();
                async move {
                    if leading.load(Ordering::Relaxed) {
                        (axum::http::StatusCode::OK, "leader")
                    } else {
                        (axum::http::StatusCode::SERVICE_UNAVAILABLE, "standby")
                    }
                }
            }),
        )
        .route("/metrics", get(move || async move { recorder.render() }));
    let listener = tokio::net::TcpListener::bind(("0.0.0.0", port))
        .await
        .map_err(|e| Error::Other(format!("health port {port}: {e}")))?;
    tracing::info!(port, "controller health and metrics listening");
    axum::serve(listener, app)
        .await
        .map_err(|e| Error::Other(e.to_string()))
}

/// Runs the controller until `shutdown` or until leadership is lost.
pub async fn run_controller(
    args: ControllerArgs,
    shutdown: impl Future<Output = ()> + Send + Sync + 'static,
) -> Result<(), Error> {
    let client = Client::try_default().await?;
    let settings = Settings {
        image: args.image.clone(),
        hpa_api_version: hpa_api_version(&client).await?,
    };
    tracing::info!(hpa = %settings.hpa_api_version, image = %settings.image, "controller starting");
    let leading = Arc::new(AtomicBool::new(!args.leader_election));
    let health_task = tokio::spawn(health(args.health_port, leading.clone()));
    let lease_task = if args.leader_election {
        let lease = LeaseSettings {
            namespace: args.lease_namespace.clone(),
            name: args.lease_name.clone(),
            identity: identity(&args),
            duration: Duration::from_secs(15),
            renew_every: Duration::from_secs(5),
        };
        leader::acquire(&client, &lease).await?;
        leading.store(true, Ordering::Relaxed);
        Some(tokio::spawn(leader::hold(client.clone(), lease)))
    } else {
        None
    };
    // Why the controller stops: the shutdown signal, or the lease lost.
    let (tx, rx) = tokio::sync::oneshot::channel::<&'static str>();
    tokio::spawn(async move {
        let lost = async {
            match lease_task {
                Some(t) => {
                    let _ = t.await;
                }
                None => std::future::pending::<()>().await,
            }
        };
        let why = tokio::select! {
            _ = shutdown => "shutdown",
            _ = lost => "leadership lost",
        };
        let _ = tx.send(why);
    });
    let (why_tx, why_rx) = tokio::sync::oneshot::channel::<&'static str>();
    let stop = futures::FutureExt::shared(async move {
        let why = rx.await.unwrap_or("shutdown");
        let _ = why_tx.send(why);
    });
    let training = crate::training::run::run(client.clone(), args.namespace.clone(), stop.clone());
    let pipelines = crate::pipeline::kube::run::run(
        client.clone(),
        args.namespace.clone(),
        settings.image.clone(),
        stop.clone(),
    );
    let tuning = crate::tuning::kube::run::run(
        client.clone(),
        args.namespace.clone(),
        settings.image.clone(),
        stop.clone(),
    );
    let serving = crate::run::run(client, args.namespace.as_deref(), settings, stop);
    futures::join!(serving, training, pipelines, tuning);
    health_task.abort();
    match why_rx.await.unwrap_or("shutdown") {
        "leadership lost" => Err(Error::Other(
            "leadership lost; exiting so that the pod restarts".into(),
        )),
        _ => Ok(()),
    }
}
