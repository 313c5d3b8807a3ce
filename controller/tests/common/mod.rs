//! A real kube-apiserver (with etcd) for the integration tests, started once per test binary by
//! scripts/k8s/start-apiserver.sh on loopback and stopped when the test process exits; or, for the
//! tests that need workloads reconciled, the full control plane (plus kube-controller-manager and
//! kube-scheduler) by scripts/k8s/start-cluster.sh.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::PostParams;
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Api, Client, Config, CustomResourceExt};
use osprey_controller::crd::InferenceService;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

static SERVER: OnceLock<Result<PathBuf, String>> = OnceLock::new();
static CLUSTER: OnceLock<Result<PathBuf, String>> = OnceLock::new();

/// Runs `script DIR` (a start script of scripts/k8s) and gives DIR/kubeconfig.
fn start(script: &str, dir_prefix: &str) -> Result<PathBuf, String> {
    let dir = std::env::temp_dir().join(format!("{dir_prefix}-{}", std::process::id()));
    let out = std::process::Command::new("bash")
        .arg(repo().join("scripts/k8s").join(script))
        .arg(&dir)
        .env("OSPREY_K8S_OWNER_PID", std::process::id().to_string())
        .output()
        .map_err(|e| e.to_string())?;
    if !out.status.success() {
        return Err(format!(
            "could not start the test API server with {script} (scripts/k8s/build-apiserver.sh \
             builds it; scripts/test.sh runs that):\n{}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(dir.join("kubeconfig"))
}

/// The kubeconfig of this test process's API server, starting it on first use. Nothing
/// reconciles workloads there: tests write Deployment status themselves.
pub fn kubeconfig() -> PathBuf {
    match SERVER.get_or_init(|| start("start-apiserver.sh", "osprey-k8s")) {
        Ok(p) => p.clone(),
        Err(e) => panic!("{e}"),
    }
}

/// The kubeconfig of this test process's full control plane (API server, controller-manager,
/// scheduler; no kubelet), starting it on first use.
pub fn cluster_kubeconfig() -> PathBuf {
    match CLUSTER.get_or_init(|| start("start-cluster.sh", "osprey-k8s-cluster")) {
        Ok(p) => p.clone(),
        Err(e) => panic!("{e}"),
    }
}

/// A client of the test API server.
pub async fn client() -> Client {
    client_of(kubeconfig()).await
}

/// A client of the test control plane (see [`cluster_kubeconfig`]).
pub async fn cluster_client() -> Client {
    client_of(cluster_kubeconfig()).await
}

async fn client_of(kubeconfig: PathBuf) -> Client {
    let kc = Kubeconfig::read_from(kubeconfig).expect("kubeconfig");
    let cfg = Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default())
        .await
        .expect("config");
    Client::try_from(cfg).expect("client")
}

/// Creates a namespace (if missing) and installs the CRD (server-side apply), waiting until the
/// CRD is established.
pub async fn prepare(client: &Client, namespace: &str) {
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let ns = Namespace {
        metadata: kube::api::ObjectMeta {
            name: Some(namespace.into()),
            ..Default::default()
        },
        ..Default::default()
    };
    match namespaces.create(&PostParams::default(), &ns).await {
        Ok(_) => {}
        Err(kube::Error::Api(e)) if e.code == 409 => {}
        Err(e) => panic!("namespace: {e}"),
    }
    // Created, not server-side applied: the 1.20 API server mangles a CRD that arrives by apply
    // ("per-version schemas may not all be set to identical values").
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    match crds
        .create(&PostParams::default(), &InferenceService::crd())
        .await
    {
        Ok(_) => {}
        Err(kube::Error::Api(e)) if e.code == 409 => {}
        Err(e) => panic!("CRD: {e}"),
    }
    eventually("the CRD is established", || async {
        let c = crds
            .get("inferenceservices.serving.osprey.dev")
            .await
            .ok()?;
        c.status?
            .conditions?
            .iter()
            .any(|c| c.type_ == "Established" && c.status == "True")
            .then_some(())
    })
    .await;
}

/// Polls `check` until it gives Some, for at most 30 s.
pub async fn eventually<T, F, Fut>(what: &str, check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    eventually_within(Duration::from_secs(30), what, check).await
}

/// Polls `check` every 100 ms until it gives Some; panics after `limit`.
pub async fn eventually_within<T, F, Fut>(limit: Duration, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        if tokio::time::Instant::now() > deadline {
            panic!("timed out waiting until {what}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
