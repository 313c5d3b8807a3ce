use super::*;
use crate::crd::InferenceService;

fn isvc(yaml: &str) -> InferenceService {
    let mut i: InferenceService = serde_yaml::from_str(yaml).expect("parses");
    i.metadata.namespace = Some("ns".into());
    i
}

fn owner() -> OwnerReference {
    OwnerReference {
        api_version: "serving.osprey.dev/v1beta1".into(),
        kind: "InferenceService".into(),
        name: "iris".into(),
        uid: "u-1".into(),
        controller: Some(true),
        block_owner_deletion: Some(true),
    }
}

const BASIC: &str = r#"
apiVersion: serving.osprey.dev/v1beta1
kind: InferenceService
metadata: { name: iris }
spec:
  predictor:
    model:
      modelFormat: { name: onnx }
      storageUri: s3://models/iris
"#;

fn none(_: Component) -> Observed {
    Observed::default()
}

fn args(d: &Deployment) -> Vec<String> {
    d.spec
        .as_ref()
        .unwrap()
        .template
        .spec
        .as_ref()
        .unwrap()
        .containers[0]
        .args
        .clone()
        .unwrap()
}

#[test]
fn a_predictor_becomes_a_deployment_and_a_service() {
    let objs = build(&isvc(BASIC), &owner(), &none, &Settings::default()).expect("builds");
    assert_eq!(objs.len(), 1);
    let p = &objs[0];
    assert_eq!(p.stable.metadata.name.as_deref(), Some("iris-predictor"));
    assert_eq!(p.stable.metadata.namespace.as_deref(), Some("ns"));
    assert_eq!(
        p.stable.metadata.owner_references.as_ref().unwrap()[0].uid,
        "u-1"
    );
    let spec = p.stable.spec.as_ref().unwrap();
    assert_eq!(spec.replicas, Some(1));
    let pod = spec.template.spec.as_ref().unwrap();
    let init = &pod.init_containers.as_ref().unwrap()[0];
    assert_eq!(
        init.args.as_ref().unwrap(),
        &vec![
            "pull".to_string(),
            "s3://models/iris".into(),
            "/mnt/models".into()
        ]
    );
    let a = args(&p.stable);
    assert_eq!(&a[..3], &["serve", "--model-repository", "/mnt/models"]);
    // The server learns the InferenceService's name (a one-model repository is served under it).
    let at = a
        .iter()
        .position(|x| x == "--model-name")
        .expect("--model-name");
    assert_eq!(a[at + 1], "iris");
    assert_eq!(a.iter().filter(|x| *x == "--model-name").count(), 1);
    let c = &pod.containers[0];
    let ready = c
        .readiness_probe
        .as_ref()
        .unwrap()
        .http_get
        .as_ref()
        .unwrap();
    assert_eq!(ready.path.as_deref(), Some("/v2/health/ready"));
    let svc = p.service.spec.as_ref().unwrap();
    assert_eq!(
        svc.selector.as_ref().unwrap()[labels::COMPONENT_LABEL],
        "predictor"
    );
    let ports: Vec<i32> = svc.ports.as_ref().unwrap().iter().map(|p| p.port).collect();
    assert_eq!(ports, vec![8000, 8001, 8002]);
    assert!(p.hpa.is_none() && p.canary.is_none());
}

#[test]
fn gs_storage_is_pulled_by_the_init_container_and_user_args_come_last() {
    let y = BASIC
        .replace("s3://models/iris", "gs://kfserving-examples/models/onnx")
        .replace(
            "      storageUri:",
            "      args: [\"--log-level\", \"debug\"]\n      storageUri:",
        );
    let objs = build(&isvc(&y), &owner(), &none, &Settings::default()).expect("builds");
    let pod = objs[0]
        .stable
        .spec
        .as_ref()
        .unwrap()
        .template
        .spec
        .as_ref()
        .unwrap();
    let init = &pod.init_containers.as_ref().unwrap()[0];
    assert_eq!(init.name, "storage-initializer");
    assert_eq!(
        init.args.as_ref().unwrap(),
        &["pull", "gs://kfserving-examples/models/onnx", "/mnt/models"]
    );
    let a = args(&objs[0].stable).join(" ");
    assert!(a.contains("--model-repository /mnt/models"), "{a}");
    assert!(a.contains("--model-name iris"), "{a}");
    assert!(a.ends_with("--log-level debug"), "{a}");
}

#[test]
fn the_batcher_becomes_server_flags() {
    let y = BASIC.replace("  predictor:\n", "  predictor:\n    batcher: { maxBatchSize: 32, maxLatency: 500 }\n    containerConcurrency: 8\n    timeout: 45\n");
    let objs = build(&isvc(&y), &owner(), &none, &Settings::default()).expect("builds");
    let a = args(&objs[0].stable).join(" ");
    assert!(a.contains("--batcher-max-latency-ms 500"), "{a}");
    assert!(a.contains("--batcher-max-batch-size 32"), "{a}");
    assert!(a.contains("--queue-per-instance 8"), "{a}");
    assert!(a.contains("--request-timeout-secs 45"), "{a}");
}

#[test]
fn an_autoscaler_when_max_exceeds_min() {
    let y = BASIC.replace(
        "  predictor:\n",
        "  predictor:\n    minReplicas: 2\n    maxReplicas: 5\n    scaleTarget: 60\n",
    );
    let s = Settings {
        hpa_api_version: "autoscaling/v2beta2".into(),
        ..Default::default()
    };
    let objs = build(&isvc(&y), &owner(), &none, &s).expect("builds");
    let h = objs[0].hpa.as_ref().expect("hpa");
    assert_eq!(h["apiVersion"], "autoscaling/v2beta2");
    assert_eq!(h["spec"]["minReplicas"], 2);
    assert_eq!(h["spec"]["maxReplicas"], 5);
    assert_eq!(h["spec"]["scaleTargetRef"]["name"], "iris-predictor");
    assert_eq!(
        h["spec"]["metrics"][0]["resource"]["target"]["averageUtilization"],
        60
    );
    assert_eq!(objs[0].stable.spec.as_ref().unwrap().replicas, Some(2));
}

#[test]
fn canary_splits_replicas_and_promotion_replaces_the_stable_track() {
    let old = build(&isvc(BASIC), &owner(), &none, &Settings::default()).expect("builds");
    let old_rev = old[0].revision.clone();
    let old_template = old[0].stable.spec.as_ref().unwrap().template.clone();
    let observed = |_: Component| Observed {
        stable: Some((old_rev.clone(), old_template.clone())),
    };
    let new = BASIC
        .replace("s3://models/iris", "s3://models/iris-v2")
        .replace(
            "  predictor:\n",
            "  predictor:\n    minReplicas: 4\n    canaryTrafficPercent: 25\n",
        );
    let objs = build(&isvc(&new), &owner(), &observed, &Settings::default()).expect("builds");
    let p = &objs[0];
    assert_ne!(p.revision, old_rev);
    assert_eq!(p.canary_percent, 25);
    assert_eq!(p.stable.spec.as_ref().unwrap().replicas, Some(3));
    assert_eq!(p.stable.spec.as_ref().unwrap().template, old_template);
    let canary = p.canary.as_ref().expect("canary");
    assert_eq!(
        canary.metadata.name.as_deref(),
        Some("iris-predictor-canary")
    );
    assert_eq!(canary.spec.as_ref().unwrap().replicas, Some(1));
    assert_eq!(
        revision_of_deployment(canary).as_deref(),
        Some(p.revision.as_str())
    );

    // Removing canaryTrafficPercent promotes: one Deployment on the new revision.
    let promoted = new.replace("    canaryTrafficPercent: 25\n", "");
    let objs = build(&isvc(&promoted), &owner(), &observed, &Settings::default()).expect("builds");
    assert!(objs[0].canary.is_none());
    assert_eq!(
        revision_of_deployment(&objs[0].stable).as_deref(),
        Some(objs[0].revision.as_str())
    );
    assert_eq!(objs[0].stable.spec.as_ref().unwrap().replicas, Some(4));
}

#[test]
fn transformer_and_pvc_storage() {
    let y = format!(
        "{BASIC}  transformer:\n    storageUri: pvc://repo/transformers/bert\n    minReplicas: 2\n"
    );
    let objs = build(&isvc(&y), &owner(), &none, &Settings::default()).expect("builds");
    assert_eq!(objs.len(), 2);
    let t = &objs[1];
    assert_eq!(t.component, Component::Transformer);
    assert_eq!(t.stable.metadata.name.as_deref(), Some("iris-transformer"));
    assert_eq!(
        &args(&t.stable)[..3],
        &["serve", "--model-repository", "/mnt/pvc/transformers/bert"]
    );
    // Only the predictor serves the InferenceService's model under its name.
    assert!(!args(&t.stable).contains(&"--model-name".to_string()));
    assert!(args(&objs[0].stable).contains(&"--model-name".to_string()));
    let pod = t
        .stable
        .spec
        .as_ref()
        .unwrap()
        .template
        .spec
        .as_ref()
        .unwrap();
    let vol = &pod.volumes.as_ref().unwrap()[0];
    assert_eq!(
        vol.persistent_volume_claim.as_ref().unwrap().claim_name,
        "repo"
    );
    assert!(pod.init_containers.is_none());
}

#[test]
fn bad_specs_name_the_field() {
    for (from, to, field) in [
        ("name: onnx", "name: pytorch", "modelFormat.name"),
        ("s3://models/iris", "gs:///iris", "storageUri"),
        ("s3://models/iris", "ftp://models/iris", "storageUri"),
        (
            "  predictor:\n",
            "  predictor:\n    minReplicas: 3\n    maxReplicas: 2\n",
            "maxReplicas",
        ),
        (
            "  predictor:\n",
            "  predictor:\n    canaryTrafficPercent: 120\n",
            "canaryTrafficPercent",
        ),
        (
            "modelFormat: { name: onnx }",
            "modelFormat: { name: onnx }\n      protocolVersion: v3",
            "protocolVersion",
        ),
    ] {
        let y = BASIC.replacen(from, to, 1);
        let e = build(&isvc(&y), &owner(), &none, &Settings::default()).unwrap_err();
        assert!(e.to_string().contains(field), "{to}: {e}");
    }
}
