//! A real kube-apiserver (with etcd) for the integration tests, started once per test binary by
//! scripts/k8s/start-apiserver.sh on loopback and stopped when the test process exits.
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

/// The kubeconfig of this test process's API server, starting it on first use.
pub fn kubeconfig() -> PathBuf {
    let r = SERVER.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("osprey-k8s-{}", std::process::id()));
        let out = std::process::Command::new("bash")
            .arg(repo().join("scripts/k8s/start-apiserver.sh"))
            .arg(&dir)
            .env("OSPREY_K8S_OWNER_PID", std::process::id().to_string())
            .output()
            .map_err(|e| e.to_string())?;
        if !out.status.success() {
            return Err(format!(
                "could not start the test API server (scripts/k8s/build-apiserver.sh builds it; \
                 scripts/test.sh runs that):\n{}",
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        Ok(dir.join("kubeconfig"))
    });
    match r {
        Ok(p) => p.clone(),
        Err(e) => panic!("{e}"),
    }
}

/// A client of the test API server.
pub async fn client() -> Client {
    let kc = Kubeconfig::read_from(kubeconfig()).expect("kubeconfig");
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
pub async fn eventually<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
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
