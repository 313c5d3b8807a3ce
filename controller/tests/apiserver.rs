//! The controller against a real kube-apiserver (v1.20, no kubelet: the tests play the cluster's
//! part by patching Deployment status): InferenceService → Deployment, Service, autoscaler;
//! status follows the Deployments; canary and promotion; invalid specs reported in conditions;
//! deletion cleans up; one lease holder at a time; manifests from KServe's documentation work
//! with only their apiVersion changed.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{client, eventually, prepare};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::Service;
use kube::api::{DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::core::{ApiResource, DynamicObject, GroupVersionKind};
use kube::{Api, Client, Resource};
use osprey_controller::crd::InferenceService;
use osprey_controller::desired::labels::{ISVC_LABEL, REVISION_LABEL};
use osprey_controller::desired::Settings;
use osprey_controller::leader::{try_acquire, LeaseSettings};
use osprey_controller::reconcile::{hpa_api_version, FINALIZER};
use serde_json::json;
use std::time::Duration;

async fn start_controller(client: &Client, ns: &str) -> tokio::sync::oneshot::Sender<()> {
    let settings = Settings {
        image: "osprey:test".into(),
        hpa_api_version: hpa_api_version(client).await.expect("discovery"),
    };
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let c = client.clone();
    let ns = ns.to_string();
    tokio::spawn(async move {
        osprey_controller::run::run(c, Some(&ns), settings, async {
            let _ = rx.await;
        })
        .await;
    });
    tx
}

fn isvc(name: &str, extra: &str, storage: &str) -> InferenceService {
    serde_yaml::from_str(&format!(
        r#"
apiVersion: serving.osprey.dev/v1beta1
kind: InferenceService
metadata: {{ name: {name} }}
spec:
  predictor:
{extra}    model:
      modelFormat: {{ name: onnx }}
      storageUri: {storage}
"#
    ))
    .expect("manifest")
}

async fn set_ready(deployments: &Api<Deployment>, name: &str, n: i32) {
    let status = json!({"status": {"replicas": n, "readyReplicas": n, "availableReplicas": n, "updatedReplicas": n}});
    deployments
        .patch_status(name, &PatchParams::default(), &Patch::Merge(&status))
        .await
        .expect("status patch");
}

fn condition(i: &InferenceService, t: &str) -> Option<String> {
    i.status
        .as_ref()?
        .conditions
        .iter()
        .find(|c| c.type_ == t)
        .map(|c| c.status.clone())
}

fn revision(d: &Deployment) -> String {
    d.spec
        .as_ref()
        .unwrap()
        .template
        .metadata
        .as_ref()
        .unwrap()
        .labels
        .as_ref()
        .unwrap()[REVISION_LABEL]
        .clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inference_service_lifecycle() {
    let client = client().await;
    let ns = "lifecycle";
    prepare(&client, ns).await;
    let stop = start_controller(&client, ns).await;
    let isvcs: Api<InferenceService> = Api::namespaced(client.clone(), ns);
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), ns);
    let services: Api<Service> = Api::namespaced(client.clone(), ns);
    let hpa_version = hpa_api_version(&client).await.unwrap();
    let (group, version) = hpa_version.split_once('/').unwrap();
    let hpas: Api<DynamicObject> = Api::namespaced_with(
        client.clone(),
        ns,
        &ApiResource::from_gvk(&GroupVersionKind::gvk(
            group,
            version,
            "HorizontalPodAutoscaler",
        )),
    );

    // Create: Deployment, Service and autoscaler, owned by the InferenceService.
    let i = isvc(
        "iris",
        "    minReplicas: 2\n    maxReplicas: 4\n",
        "s3://models/iris",
    );
    isvcs
        .create(&PostParams::default(), &i)
        .await
        .expect("created");
    let d = eventually("the predictor Deployment exists", || async {
        deployments.get_opt("iris-predictor").await.ok().flatten()
    })
    .await;
    assert_eq!(d.spec.as_ref().unwrap().replicas, Some(2));
    let owner = &d.metadata.owner_references.as_ref().unwrap()[0];
    assert_eq!(
        (owner.kind.as_str(), owner.name.as_str()),
        ("InferenceService", "iris")
    );
    let pod = d.spec.as_ref().unwrap().template.spec.as_ref().unwrap();
    assert_eq!(pod.containers[0].image.as_deref(), Some("osprey:test"));
    assert_eq!(
        pod.init_containers.as_ref().unwrap()[0]
            .args
            .as_ref()
            .unwrap()[..2],
        ["pull".to_string(), "s3://models/iris".to_string()]
    );
    let svc = eventually("the Service exists", || async {
        services.get_opt("iris-predictor").await.ok().flatten()
    })
    .await;
    assert_eq!(svc.spec.unwrap().ports.unwrap()[0].port, 8000);
    let hpa = eventually("the autoscaler exists", || async {
        hpas.get_opt("iris-predictor").await.ok().flatten()
    })
    .await;
    assert_eq!(hpa.data["spec"]["maxReplicas"], 4);
    let created = isvcs.get("iris").await.unwrap();
    assert!(created
        .metadata
        .finalizers
        .unwrap_or_default()
        .contains(&FINALIZER.to_string()));

    // Not ready until the Deployment says so; then the status follows.
    let st = eventually("a status is written", || async {
        let i = isvcs.get("iris").await.ok()?;
        condition(&i, "PredictorReady").map(|_| i)
    })
    .await;
    assert_eq!(condition(&st, "Ready").as_deref(), Some("False"));
    set_ready(&deployments, "iris-predictor", 2).await;
    let st = eventually("Ready turns True", || async {
        let i = isvcs.get("iris").await.ok()?;
        (condition(&i, "Ready").as_deref() == Some("True")).then_some(i)
    })
    .await;
    let status = st.status.unwrap();
    assert_eq!(condition_of(&status, "PredictorReady"), "True");
    assert_eq!(
        status.url.as_deref(),
        Some("http://iris-predictor.lifecycle.svc.cluster.local")
    );
    assert_eq!(status.components["predictor"].ready_replicas, 2);

    // Idempotent: a reconcile that changes nothing of the Deployment (only the autoscaler's
    // maxReplicas) leaves the Deployment's generation alone. The autoscaler showing the new
    // maximum says the reconcile has run.
    let generation = deployments
        .get("iris-predictor")
        .await
        .unwrap()
        .metadata
        .generation;
    let touch = json!({"spec": {"predictor": {"maxReplicas": 5}}});
    isvcs
        .patch("iris", &PatchParams::default(), &Patch::Merge(&touch))
        .await
        .unwrap();
    eventually("the autoscaler follows maxReplicas", || async {
        let h = hpas.get_opt("iris-predictor").await.ok().flatten()?;
        (h.data["spec"]["maxReplicas"] == 5).then_some(())
    })
    .await;
    assert_eq!(
        deployments
            .get("iris-predictor")
            .await
            .unwrap()
            .metadata
            .generation,
        generation
    );

    // Canary: a new storageUri with canaryTrafficPercent gets its own Deployment; the stable one
    // keeps the old revision.
    let old_rev = revision(&deployments.get("iris-predictor").await.unwrap());
    let canary = json!({"spec": {"predictor": {"canaryTrafficPercent": 50, "model": {"storageUri": "s3://models/iris-v2"}}}});
    isvcs
        .patch("iris", &PatchParams::default(), &Patch::Merge(&canary))
        .await
        .unwrap();
    let c = eventually("the canary Deployment exists", || async {
        deployments
            .get_opt("iris-predictor-canary")
            .await
            .ok()
            .flatten()
    })
    .await;
    assert_ne!(revision(&c), old_rev);
    assert_eq!(
        revision(&deployments.get("iris-predictor").await.unwrap()),
        old_rev
    );
    set_ready(&deployments, "iris-predictor-canary", 1).await;
    let st = eventually("the status shows the traffic split", || async {
        let i = isvcs.get("iris").await.ok()?;
        let t = i.status?.components.get("predictor")?.traffic.clone();
        (t.len() == 2).then_some(t)
    })
    .await;
    assert_eq!(st.iter().map(|t| t.percent).sum::<i64>(), 100);

    // Promotion: removing canaryTrafficPercent moves the stable Deployment to the new revision.
    let promote = json!({"spec": {"predictor": {"canaryTrafficPercent": null}}});
    isvcs
        .patch("iris", &PatchParams::default(), &Patch::Merge(&promote))
        .await
        .unwrap();
    eventually(
        "the canary is gone and stable runs the new revision",
        || async {
            let gone = deployments
                .get_opt("iris-predictor-canary")
                .await
                .ok()?
                .is_none();
            let d = deployments.get("iris-predictor").await.ok()?;
            (gone && revision(&d) == revision(&c)).then_some(())
        },
    )
    .await;

    // Deletion: the finalizer removes everything the InferenceService owned.
    isvcs
        .delete("iris", &DeleteParams::default())
        .await
        .unwrap();
    eventually("everything is cleaned up", || async {
        let lp = ListParams::default();
        let left = deployments.list(&lp).await.ok()?.items.len()
            + services.list(&lp).await.ok()?.items.len()
            + hpas.list(&lp).await.ok()?.items.len();
        let isvc_gone = isvcs.get_opt("iris").await.ok()?.is_none();
        (left == 0 && isvc_gone).then_some(())
    })
    .await;
    let _ = stop.send(());
}

fn condition_of(s: &osprey_controller::crd::InferenceServiceStatus, t: &str) -> String {
    s.conditions
        .iter()
        .find(|c| c.type_ == t)
        .map(|c| c.status.clone())
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_specs_surface_in_conditions() {
    let client = client().await;
    let ns = "invalid";
    prepare(&client, ns).await;
    let stop = start_controller(&client, ns).await;
    let isvcs: Api<InferenceService> = Api::namespaced(client.clone(), ns);
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), ns);
    isvcs
        .create(
            &PostParams::default(),
            &isvc("bad", "", "ftp://bucket/model"),
        )
        .await
        .expect("the API server accepts it; the controller refuses it");
    let msg = eventually("the condition explains", || async {
        let i = isvcs.get("bad").await.ok()?;
        let c = i
            .status?
            .conditions
            .into_iter()
            .find(|c| c.type_ == "Ready")?;
        (c.reason.as_deref() == Some("InvalidSpec")).then_some(c.message.unwrap_or_default())
    })
    .await;
    assert!(msg.contains("storageUri") && msg.contains("ftp"), "{msg}");
    assert!(deployments
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .is_empty());
    // Fixing the spec proceeds.
    let fix = json!({"spec": {"predictor": {"model": {"storageUri": "pvc://models/iris"}}}});
    isvcs
        .patch("bad", &PatchParams::default(), &Patch::Merge(&fix))
        .await
        .unwrap();
    eventually("the fixed spec gets its Deployment", || async {
        deployments.get_opt("bad-predictor").await.ok().flatten()
    })
    .await;
    isvcs.delete("bad", &DeleteParams::default()).await.unwrap();
    let _ = stop.send(());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_lease_holder_at_a_time() {
    let client = client().await;
    prepare(&client, "leases").await;
    let api: Api<Lease> = Api::namespaced(client.clone(), "leases");
    let lease = |id: &str| LeaseSettings {
        namespace: "leases".into(),
        name: "osprey-controller".into(),
        identity: id.into(),
        duration: Duration::from_secs(15),
        renew_every: Duration::from_secs(5),
    };
    assert!(try_acquire(&api, &lease("a")).await.unwrap());
    assert!(!try_acquire(&api, &lease("b")).await.unwrap());
    assert!(
        try_acquire(&api, &lease("a")).await.unwrap(),
        "the holder renews"
    );
    let l = api.get("osprey-controller").await.unwrap();
    assert_eq!(l.spec.unwrap().holder_identity.as_deref(), Some("a"));
}

/// The kubectl that scripts/k8s/build-apiserver.sh provides.
fn kubectl() -> std::path::PathBuf {
    let repo = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let out = std::process::Command::new("bash")
        .arg(repo.join("scripts/k8s/build-apiserver.sh"))
        .output()
        .expect("build-apiserver.sh");
    let text = String::from_utf8_lossy(&out.stdout);
    let path = text
        .lines()
        .find_map(|l| l.strip_prefix("KUBECTL="))
        .expect("build-apiserver.sh names kubectl");
    path.into()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deploy_manifests_pass_server_side_dry_run() {
    let repo = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    // The CRDs in deploy/ are the ones generated from the Rust types.
    for (name, yaml) in osprey_controller::cmd::crds().unwrap() {
        let committed = std::fs::read_to_string(repo.join("deploy/crds").join(&name))
            .unwrap_or_else(|e| panic!("deploy/crds/{name}: {e}"));
        assert!(
            committed == yaml,
            "deploy/crds/{name} is stale: regenerate deploy/crds with `osprey crd --out-dir deploy/crds`"
        );
    }
    let client = client().await;
    prepare(&client, "osprey-system").await;
    for file in [
        "deploy/crds/inferenceservices.serving.osprey.dev.yaml",
        "deploy/crds/pytorchjobs.kubeflow.org.yaml",
        "deploy/crds/tfjobs.kubeflow.org.yaml",
        "deploy/crds/pipelineruns.pipelines.osprey.dev.yaml",
        "deploy/rbac.yaml",
        "deploy/controller.yaml",
        "deploy/example-inferenceservice.yaml",
    ] {
        let out = std::process::Command::new(kubectl())
            .args(["apply", "--dry-run=server", "-f"])
            .arg(repo.join(file))
            .env("KUBECONFIG", common::kubeconfig())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{file}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(String::from_utf8_lossy(&out.stdout).contains("(server dry run)"));
    }
}

/// A manifest from KServe's documentation (controller/tests/manifests/) with only its apiVersion
/// changed to Osprey's.
fn kserve_manifest(file: &str) -> serde_json::Value {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/manifests")
        .join(file);
    let text = std::fs::read_to_string(&path).unwrap();
    let mut m: serde_json::Value = serde_yaml::from_str(&text).unwrap();
    assert_eq!(m["apiVersion"], "serving.kserve.io/v1beta1", "{file}");
    m["apiVersion"] = json!(InferenceService::api_version(&()));
    m
}

/// Applies `manifest` as `kubectl apply --server-side` would: the object as written, not
/// round-tripped through Osprey's types.
async fn apply_manifest(client: &Client, ns: &str, manifest: &serde_json::Value) {
    let gvk = GroupVersionKind::gvk(
        osprey_controller::crd::GROUP,
        &InferenceService::version(&()),
        &InferenceService::kind(&()),
    );
    let api: Api<DynamicObject> =
        Api::namespaced_with(client.clone(), ns, &ApiResource::from_gvk(&gvk));
    let name = manifest["metadata"]["name"].as_str().unwrap();
    api.patch(
        name,
        &PatchParams::apply("kserve-docs-test"),
        &Patch::Apply(manifest),
    )
    .await
    .unwrap_or_else(|e| panic!("{name}: the API server refuses the manifest: {e}"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kserve_doc_manifests_carry_over() {
    let client = client().await;
    let ns = "kserve-docs";
    prepare(&client, ns).await;
    let stop = start_controller(&client, ns).await;
    let isvcs: Api<InferenceService> = Api::namespaced(client.clone(), ns);
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), ns);
    let services: Api<Service> = Api::namespaced(client.clone(), ns);

    // KServe's ONNX example: gs:// storage, protocolVersion v2.
    let onnx = kserve_manifest("kserve-onnx-style-sample.yaml");
    assert_eq!(
        onnx["spec"]["predictor"]["model"]["storageUri"],
        "gs://kfserving-examples/models/onnx"
    );
    apply_manifest(&client, ns, &onnx).await;
    let d = eventually("the predictor Deployment exists", || async {
        deployments
            .get_opt("style-sample-predictor")
            .await
            .ok()
            .flatten()
    })
    .await;
    let pod = d.spec.as_ref().unwrap().template.spec.as_ref().unwrap();
    let init = &pod.init_containers.as_ref().expect("an init container")[0];
    assert_eq!(init.name, "storage-initializer");
    assert_eq!(init.image.as_deref(), Some("osprey:test"));
    assert_eq!(
        init.args.as_deref().unwrap(),
        ["pull", "gs://kfserving-examples/models/onnx", "/mnt/models"]
    );
    let server = &pod.containers[0];
    let args = server.args.as_deref().unwrap();
    let after = |flag: &str| {
        let at = args.iter().position(|a| a == flag);
        at.and_then(|i| args.get(i + 1)).map(String::as_str)
    };
    assert_eq!(after("--model-name"), Some("style-sample"), "{args:?}");
    assert_eq!(after("--model-repository"), Some("/mnt/models"), "{args:?}");
    // The repository the init container fills is the one the server reads.
    let mount =
        |c: &k8s_openapi::api::core::v1::Container| c.volume_mounts.as_ref().unwrap()[0].clone();
    assert_eq!(mount(server).mount_path, "/mnt/models");
    assert_eq!(mount(server).name, mount(init).name);
    assert!(pod.volumes.as_ref().unwrap()[0].empty_dir.is_some());
    let svc = eventually("the Service exists", || async {
        services
            .get_opt("style-sample-predictor")
            .await
            .ok()
            .flatten()
    })
    .await;
    assert_eq!(
        svc.spec.unwrap().selector.unwrap()[ISVC_LABEL],
        "style-sample"
    );
    // Accepted: the status reports the predictor (not ready: there is no kubelet), never
    // InvalidSpec.
    let st = eventually("a status is written", || async {
        let i = isvcs.get("style-sample").await.ok()?;
        condition(&i, "PredictorReady").map(|_| i)
    })
    .await;
    let conditions = st.status.unwrap().conditions;
    assert!(
        conditions
            .iter()
            .all(|c| c.reason.as_deref() != Some("InvalidSpec")),
        "{conditions:?}"
    );

    // KServe's first InferenceService is a scikit-learn model, which Osprey does not serve: it is
    // refused naming the field, and nothing is deployed.
    apply_manifest(&client, ns, &kserve_manifest("kserve-sklearn-iris.yaml")).await;
    let msg = eventually("sklearn-iris is refused", || async {
        let i = isvcs.get("sklearn-iris").await.ok()?;
        let c = i
            .status?
            .conditions
            .into_iter()
            .find(|c| c.type_ == "Ready")?;
        (c.reason.as_deref() == Some("InvalidSpec")).then_some(c.message.unwrap_or_default())
    })
    .await;
    assert!(
        msg.contains("spec.predictor.model.modelFormat") && msg.contains("sklearn"),
        "{msg}"
    );
    assert!(deployments
        .get_opt("sklearn-iris-predictor")
        .await
        .unwrap()
        .is_none());

    for name in ["style-sample", "sklearn-iris"] {
        isvcs.delete(name, &DeleteParams::default()).await.unwrap();
    }
    let _ = stop.send(());
}
