//! Unit tests of the PipelineRun resource (parsing, validation by field, the generated CRD) and
//! of task pods (names, labels, the launcher's command line, volumes, outcomes read back).

use super::crd::*;
use super::pod::*;
use crate::pipeline::executor::TaskOutputs;
use crate::pipeline::launch::encode_outputs;
use crate::pipeline::spec;
use crate::SpecError;
use k8s_openapi::api::core::v1::Pod;
use kube::CustomResourceExt;
use serde_json::{json, Value};

const RUN: &str = r#"
apiVersion: pipelines.osprey.dev/v1alpha1
kind: PipelineRun
metadata:
  name: types-chain-1
  namespace: team-a
  uid: 7d4c2b8e-0000-4000-8000-000000000001
spec:
  pipelineSpec:
    pipelineInfo: {name: types-chain}
    root: {dag: {tasks: {}}}
  parameters: {n: 4, scale: 0.25, label: sum, extra: [5, 6], opts: {tag: x}, double: true}
  pipelineRoot: /mnt/pipeline
  pipelineRootVolume:
    persistentVolumeClaim: {claimName: pipeline-data}
  parallelism: 2
  serviceAccountName: pipeline-runner
"#;

fn run() -> PipelineRun {
    serde_yaml::from_str(RUN).expect("the example parses")
}

fn field(e: SpecError) -> String {
    match e {
        SpecError::Invalid { field, .. } => field,
    }
}

#[test]
fn a_run_parses_with_defaults() {
    let r = run();
    assert!(r.spec.enable_caching, "caching is on by default");
    assert!(!r.spec.cancel);
    assert_eq!(r.spec.parallelism, Some(2));
    assert_eq!(r.spec.pipeline_root(), "/mnt/pipeline");
    let vol = r.spec.pipeline_root_volume.as_ref().expect("volume");
    assert_eq!(
        vol.0
            .persistent_volume_claim
            .as_ref()
            .map(|c| c.claim_name.as_str()),
        Some("pipeline-data")
    );
    assert!(matches!(r.spec.source(), Ok(PipelineSource::Inline(_))));
    r.spec.validate().expect("valid");
    // Round trip: the volume source has no name in JSON; caching stays explicit.
    let back = serde_json::to_value(&r).expect("json");
    assert_eq!(
        back["spec"]["pipelineRootVolume"],
        json!({"persistentVolumeClaim": {"claimName": "pipeline-data"}})
    );
    assert_eq!(back["spec"]["enableCaching"], json!(true));
    let again: PipelineRun = serde_json::from_value(back).expect("parses back");
    assert_eq!(again.spec, r.spec);
    assert_eq!(again.metadata, r.metadata);
    let minimal: PipelineRun = serde_yaml::from_str(
        "apiVersion: pipelines.osprey.dev/v1alpha1\nkind: PipelineRun\nmetadata: {name: m}\n\
         spec: {pipelineSpecRef: {configMapName: p, key: pipeline.yaml}}\n",
    )
    .expect("parses");
    assert_eq!(minimal.spec.pipeline_root(), DEFAULT_PIPELINE_ROOT);
    assert_eq!(
        minimal.spec.source(),
        Ok(PipelineSource::ConfigMap {
            name: "p",
            key: "pipeline.yaml"
        })
    );
}

#[test]
fn parameters_become_texts_read_per_declared_type() {
    let texts: std::collections::BTreeMap<String, String> =
        run().spec.parameter_texts().into_iter().collect();
    assert_eq!(texts["n"], "4");
    assert_eq!(texts["scale"], "0.25");
    assert_eq!(texts["label"], "sum");
    assert_eq!(texts["extra"], "[5,6]");
    assert_eq!(texts["opts"], r#"{"tag":"x"}"#);
    assert_eq!(texts["double"], "true");
}

#[test]
fn the_inline_spec_parses_as_a_compiled_pipeline() {
    let r = run();
    let Ok(PipelineSource::Inline(v)) = r.spec.source() else {
        panic!("inline");
    };
    let p = parse_inline(v).expect("parses");
    assert_eq!(p.pipeline_info.name, "types-chain");
    let e = parse_inline(&json!({"pipelineInfo": {"name": "x"}})).expect_err("no root");
    assert!(e.to_string().contains("no `root`"), "{e}");
}

/// A change that makes a valid spec invalid.
type Breakage = Box<dyn Fn(&mut PipelineRunSpec)>;

#[test]
fn bad_specs_are_refused_naming_the_field() {
    let cases: Vec<(&str, Breakage)> = vec![
        ("spec.pipelineSpec", Box::new(|s| s.pipeline_spec = None)),
        (
            "spec.pipelineSpecRef",
            Box::new(|s| {
                s.pipeline_spec_ref = Some(PipelineSpecRef {
                    config_map_name: "p".into(),
                    key: "k".into(),
                })
            }),
        ),
        (
            "spec.pipelineSpec",
            Box::new(|s| s.pipeline_spec = Some(json!("text"))),
        ),
        (
            "spec.pipelineSpecRef.configMapName",
            Box::new(|s| {
                s.pipeline_spec = None;
                s.pipeline_spec_ref = Some(PipelineSpecRef {
                    config_map_name: " ".into(),
                    key: "k".into(),
                })
            }),
        ),
        (
            "spec.pipelineSpecRef.key",
            Box::new(|s| {
                s.pipeline_spec = None;
                s.pipeline_spec_ref = Some(PipelineSpecRef {
                    config_map_name: "p".into(),
                    key: "".into(),
                })
            }),
        ),
        (
            "spec.pipelineRoot",
            Box::new(|s| s.pipeline_root = Some("relative/dir".into())),
        ),
        (
            "spec.pipelineRoot",
            Box::new(|s| s.pipeline_root = Some("/a/../b".into())),
        ),
        (
            "spec.pipelineRoot",
            Box::new(|s| s.pipeline_root = Some("/".into())),
        ),
        ("spec.parallelism", Box::new(|s| s.parallelism = Some(0))),
        (
            "spec.serviceAccountName",
            Box::new(|s| s.service_account_name = Some("".into())),
        ),
        (
            "spec.pipelineRootVolume",
            Box::new(|s| s.pipeline_root_volume = Some(VolumeSource::default())),
        ),
    ];
    for (want, change) in cases {
        let mut spec = run().spec;
        change(&mut spec);
        let e = spec.validate().expect_err(want);
        assert!(e.to_string().starts_with(&format!("{want}: ")), "{e}");
        assert_eq!(field(e), want);
    }
}

#[test]
fn the_crd_has_the_schema_the_api_server_needs() {
    let crd = PipelineRun::crd();
    assert_eq!(
        crd.metadata.name.as_deref(),
        Some("pipelineruns.pipelines.osprey.dev")
    );
    assert_eq!(crd.spec.group, GROUP);
    assert_eq!(crd.spec.scope, "Namespaced");
    let v = &crd.spec.versions[0];
    assert_eq!(v.name, "v1alpha1");
    assert!(v
        .subresources
        .as_ref()
        .and_then(|s| s.status.as_ref())
        .is_some());
    let columns: Vec<(&str, &str)> = v
        .additional_printer_columns
        .iter()
        .flatten()
        .map(|c| (c.name.as_str(), c.json_path.as_str()))
        .collect();
    assert_eq!(
        columns,
        [
            ("State", ".status.state"),
            ("Age", ".metadata.creationTimestamp")
        ]
    );
    let schema = serde_json::to_value(v.schema.as_ref().expect("schema")).expect("json");
    let spec = &schema["openAPIV3Schema"]["properties"]["spec"]["properties"];
    assert_eq!(
        spec["pipelineSpec"]["x-kubernetes-preserve-unknown-fields"],
        json!(true)
    );
    assert_eq!(
        spec["parameters"]["x-kubernetes-preserve-unknown-fields"],
        json!(true)
    );
    assert_eq!(spec["parallelism"]["minimum"].as_f64(), Some(1.0));
    assert_eq!(spec["enableCaching"]["default"], json!(true));
    let volume = &spec["pipelineRootVolume"];
    assert!(
        volume["properties"]["persistentVolumeClaim"].is_object(),
        "{volume}"
    );
    assert!(volume["properties"]["hostPath"].is_object(), "{volume}");
    assert!(volume["properties"]["name"].is_null(), "{volume}");
    assert!(volume["required"].is_null(), "{volume}");
    let status = &schema["openAPIV3Schema"]["properties"]["status"]["properties"];
    assert_eq!(status["state"]["enum"][0], json!("PENDING"));
    let task = &status["tasks"]["additionalProperties"]["properties"];
    for f in [
        "state",
        "startTime",
        "endTime",
        "attempts",
        "podName",
        "outputs",
        "message",
        "cached",
    ] {
        assert!(task[f].is_object(), "task status field {f} missing: {task}");
    }
    // Nothing the 1.20 API server or kubectl would refuse: no CEL, no nullable enums.
    let text = schema.to_string();
    assert!(!text.contains("x-kubernetes-validations"));
    assert!(!text.contains("\"nullable\":true,\"enum\""));
}

#[test]
fn status_conditions_keep_their_transition_time() {
    let mut s = PipelineRunStatus::default();
    s.set_condition(CONDITION_RUNNING, true, "Started", "2 tasks", "t1");
    s.set_condition(CONDITION_RUNNING, true, "Progress", "1 task", "t2");
    let c = s.condition(CONDITION_RUNNING).expect("condition");
    assert_eq!(c.last_transition_time.as_deref(), Some("t1"));
    assert_eq!(c.reason.as_deref(), Some("Progress"));
    s.set_condition(CONDITION_RUNNING, false, "Succeeded", "", "t3");
    let c = s.condition(CONDITION_RUNNING).expect("condition");
    assert_eq!(
        (
            c.status.as_str(),
            c.last_transition_time.as_deref(),
            c.message.as_deref()
        ),
        ("False", Some("t3"), None)
    );
    assert!(RunState::Canceled.finished() && !RunState::Running.finished());
    assert!(TaskState::Skipped.finished() && !TaskState::Pending.finished());
    let mut st = PipelineRunStatus {
        state: RunState::Running,
        ..Default::default()
    };
    st.tasks.insert(
        "for-loop-2[1]/square".into(),
        TaskStatus {
            state: TaskState::Succeeded,
            attempts: 2,
            cached: true,
            outputs: TaskOutputsStatus::from(&TaskOutputs {
                parameters: [("Output".to_string(), json!(9))].into(),
                artifacts: Default::default(),
            }),
            ..Default::default()
        },
    );
    let v = serde_json::to_value(&st).expect("json");
    assert_eq!(v["state"], "RUNNING");
    assert_eq!(
        v["tasks"]["for-loop-2[1]/square"],
        json!({"state": "SUCCEEDED", "attempts": 2, "cached": true,
               "outputs": {"parameters": {"Output": 9}}})
    );
}

// --- task pods ---

fn component() -> spec::Container {
    spec::Container {
        image: "python:3.11".into(),
        command: vec!["sh".into(), "-c".into(), "echo $(HOME) \"$0\"".into()],
        args: vec![
            "--executor_input".into(),
            "{{$}}".into(),
            "--function_to_execute".into(),
            "square".into(),
        ],
        env: vec![spec::EnvVar {
            name: "MODE".into(),
            value: "fast".into(),
        }],
    }
}

fn outputs() -> spec::Definitions {
    serde_json::from_value(json!({"parameters": {"Output": {"parameterType": "NUMBER_INTEGER"}}}))
        .expect("definitions")
}

fn executor_input() -> Value {
    json!({
        "inputs": {"parameterValues": {"x": 3, "note": "costs $(PRICE) or $5"}},
        "outputs": {
            "parameters": {"Output": {"outputFile": "/mnt/pipeline/uid/square/Output"}},
            "outputFile": "/mnt/pipeline/uid/square/executor_output.json"
        }
    })
}

fn build(task: &str, attempt: u32) -> Pod {
    let r = run();
    let (c, o, ei) = (component(), outputs(), executor_input());
    task_pod(&TaskPod {
        run: &r,
        task,
        attempt,
        container: &c,
        outputs: &o,
        executor_input: &ei,
        launcher_image: "ghcr.io/osprey/osprey:1.2",
    })
    .expect("pod")
}

fn is_dns_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

/// What Kubernetes does to a command line: `$$` → `$`, `$(VAR)` → VAR's value when defined.
fn k8s_expand(s: &str, vars: &[(&str, &str)]) -> String {
    let mut out = String::new();
    let mut rest = s;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        if let Some(a) = after.strip_prefix('$') {
            out.push('$');
            rest = a;
        } else if let Some(var) = after
            .strip_prefix('(')
            .and_then(|a| a.find(')').map(|end| &a[..end]))
        {
            match vars.iter().find(|(k, _)| *k == var) {
                Some((_, v)) => out.push_str(v),
                None => out.push_str(&format!("$({var})")),
            }
            rest = &after[var.len() + 2..];
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    out
}

#[test]
fn pod_names_are_dns_labels_unique_per_task_and_attempt() {
    let uid = "7d4c2b8e";
    let n = pod_name("types-chain-1", uid, "train", 0);
    assert!(n.starts_with("types-chain-1-train-"), "{n}");
    assert!(is_dns_label(&n), "{n}");
    assert_eq!(n, pod_name("types-chain-1", uid, "train", 0), "stable");
    let mut seen = std::collections::BTreeSet::new();
    for task in [
        "train",
        "for-loop-2[1]/square",
        "for-loop-2[10]/square",
        "for-loop-2[1]/Square",
    ] {
        for attempt in 0..3 {
            let n = pod_name("types-chain-1", uid, task, attempt);
            assert!(is_dns_label(&n), "{n}");
            assert!(seen.insert(n.clone()), "{n} twice");
        }
    }
    // Another incarnation of the run (same name, new uid) gets other names.
    assert_ne!(
        pod_name("r", "uid-1", "train", 0),
        pod_name("r", "uid-2", "train", 0)
    );
    let long = "a".repeat(200);
    for (run, task) in [
        (long.as_str(), "t"),
        ("r", long.as_str()),
        ("my.run.v1", "---[]///"),
        ("", ""),
        ("UPPER", "Ünïcode/ta sk"),
    ] {
        let n = pod_name(run, uid, task, 7);
        assert!(is_dns_label(&n), "{run:?}/{task:?} -> {n}");
    }
}

#[test]
fn label_values_are_kept_when_valid_and_hashed_when_not() {
    assert_eq!(label_value("train"), "train");
    assert_eq!(label_value("Train_1.x"), "Train_1.x");
    let l = label_value("for-loop-2[1]/square");
    assert!(l.starts_with("for-loop-2-1-square-"), "{l}");
    assert_ne!(l, label_value("for-loop-2[2]/square"));
    let long = label_value(&"x".repeat(100));
    assert!(long.len() <= 63 && is_dns_label(&long), "{long}");
    assert_ne!(label_value("[]"), label_value("()"));
    assert!(is_dns_label(&label_value("[]")));
}

#[test]
fn the_task_pod_runs_the_launcher_on_the_component_image() {
    let pod = build("for-loop-2[1]/square", 1);
    let meta = &pod.metadata;
    assert_eq!(
        meta.name.as_deref(),
        Some(
            pod_name(
                "types-chain-1",
                "7d4c2b8e-0000-4000-8000-000000000001",
                "for-loop-2[1]/square",
                1
            )
            .as_str()
        )
    );
    assert_eq!(meta.namespace.as_deref(), Some("team-a"));
    let labels = meta.labels.as_ref().expect("labels");
    assert_eq!(labels[RUN_LABEL], "types-chain-1");
    assert_eq!(
        labels[RUN_UID_LABEL],
        "7d4c2b8e-0000-4000-8000-000000000001"
    );
    assert_eq!(labels[TASK_LABEL], label_value("for-loop-2[1]/square"));
    let ann = meta.annotations.as_ref().expect("annotations");
    assert_eq!(ann[TASK_ANNOTATION], "for-loop-2[1]/square");
    assert_eq!(ann[ATTEMPT_ANNOTATION], "1");
    assert_eq!(pod_task(&pod), Some(("for-loop-2[1]/square".into(), 1)));
    let owner = &meta.owner_references.as_ref().expect("owner")[0];
    assert_eq!(
        (
            owner.kind.as_str(),
            owner.api_version.as_str(),
            owner.name.as_str(),
            owner.controller
        ),
        (
            "PipelineRun",
            "pipelines.osprey.dev/v1alpha1",
            "types-chain-1",
            Some(true)
        )
    );
    assert_eq!(owner.uid, "7d4c2b8e-0000-4000-8000-000000000001");

    let spec = pod.spec.as_ref().expect("spec");
    assert_eq!(spec.restart_policy.as_deref(), Some("Never"));
    assert_eq!(
        spec.service_account_name.as_deref(),
        Some("pipeline-runner")
    );
    let volumes = spec.volumes.as_ref().expect("volumes");
    let launcher_vol = volumes
        .iter()
        .find(|v| v.name == LAUNCHER_VOLUME)
        .expect("launcher volume");
    assert!(launcher_vol.empty_dir.is_some());
    let root_vol = volumes
        .iter()
        .find(|v| v.name == ROOT_VOLUME)
        .expect("root volume");
    assert_eq!(
        root_vol
            .persistent_volume_claim
            .as_ref()
            .map(|c| c.claim_name.as_str()),
        Some("pipeline-data")
    );

    let init = &spec.init_containers.as_ref().expect("init")[0];
    assert_eq!(init.name, LAUNCHER_CONTAINER);
    assert_eq!(init.image.as_deref(), Some("ghcr.io/osprey/osprey:1.2"));
    assert_eq!(
        init.command.as_deref().expect("command"),
        ["osprey", "pipeline", "launch", "--copy-to", LAUNCHER_PATH]
    );
    let init_mount = &init.volume_mounts.as_ref().expect("mounts")[0];
    assert_eq!(
        (init_mount.name.as_str(), init_mount.mount_path.as_str()),
        (LAUNCHER_VOLUME, LAUNCHER_DIR)
    );
    assert_ne!(init_mount.read_only, Some(true));

    assert_eq!(spec.containers.len(), 1);
    let main = &spec.containers[0];
    assert_eq!(main.name, MAIN_CONTAINER);
    assert_eq!(main.image.as_deref(), Some("python:3.11"));
    assert!(main.args.is_none());
    assert_eq!(
        main.termination_message_path.as_deref(),
        Some("/dev/termination-log")
    );
    assert_eq!(
        main.termination_message_policy.as_deref(),
        Some("FallbackToLogsOnError")
    );
    let env = main.env.as_ref().expect("env");
    assert_eq!(
        (env[0].name.as_str(), env[0].value.as_deref()),
        ("MODE", Some("fast"))
    );
    let mounts: Vec<(&str, &str, Option<bool>)> = main
        .volume_mounts
        .iter()
        .flatten()
        .map(|m| (m.name.as_str(), m.mount_path.as_str(), m.read_only))
        .collect();
    assert!(
        mounts.contains(&(LAUNCHER_VOLUME, LAUNCHER_DIR, Some(true))),
        "{mounts:?}"
    );
    assert!(
        mounts
            .iter()
            .any(|m| m.0 == ROOT_VOLUME && m.1 == "/mnt/pipeline"),
        "{mounts:?}"
    );

    // The command line as the launcher will see it once Kubernetes expanded it (HOME defined).
    let cmd = main.command.as_ref().expect("command");
    let seen: Vec<String> = cmd
        .iter()
        .map(|a| k8s_expand(a, &[("HOME", "/root"), ("PRICE", "1")]))
        .collect();
    assert_eq!(seen[..3], [LAUNCHER_PATH, "pipeline", "launch"]);
    let flag = |name: &str| -> String {
        let i = seen
            .iter()
            .position(|a| a == name)
            .unwrap_or_else(|| panic!("{name} missing"));
        seen.get(i + 1).cloned().unwrap_or_default()
    };
    assert_eq!(flag("--task"), "for-loop-2[1]/square");
    assert_eq!(flag("--run-name"), "types-chain-1");
    assert_eq!(flag("--run-id"), "7d4c2b8e-0000-4000-8000-000000000001");
    assert_eq!(flag("--pipeline-root"), "/mnt/pipeline");
    assert_eq!(flag("--outputs-file"), "/dev/termination-log");
    let ei: Value = serde_json::from_str(&flag("--executor-input")).expect("JSON");
    assert_eq!(
        ei,
        executor_input(),
        "the executor input arrives unexpanded"
    );
    let defs: Value = serde_json::from_str(&flag("--output-definitions")).expect("JSON");
    assert_eq!(
        defs["parameters"]["Output"]["parameterType"],
        "NUMBER_INTEGER"
    );
    let dash = seen.iter().position(|a| a == "--").expect("--");
    // The component's command and args follow, as written (Kubernetes expands them as in any
    // container: $(HOME) is defined here).
    assert_eq!(
        seen[dash + 1..],
        [
            "sh",
            "-c",
            "echo /root \"$0\"",
            "--executor_input",
            "{{$}}",
            "--function_to_execute",
            "square"
        ]
    );
}

#[test]
fn without_a_root_volume_each_pod_gets_an_empty_dir_at_the_default_root() {
    let mut r = run();
    r.spec.pipeline_root = None;
    r.spec.pipeline_root_volume = None;
    r.spec.service_account_name = None;
    let (c, o, ei) = (component(), outputs(), executor_input());
    let pod = task_pod(&TaskPod {
        run: &r,
        task: "train",
        attempt: 0,
        container: &c,
        outputs: &o,
        executor_input: &ei,
        launcher_image: "osprey",
    })
    .expect("pod");
    let spec = pod.spec.expect("spec");
    assert!(spec.service_account_name.is_none());
    let root = spec
        .volumes
        .iter()
        .flatten()
        .find(|v| v.name == ROOT_VOLUME)
        .expect("root");
    assert!(root.empty_dir.is_some());
    let main = &spec.containers[0];
    assert!(main
        .volume_mounts
        .iter()
        .flatten()
        .any(|m| m.name == ROOT_VOLUME && m.mount_path == DEFAULT_PIPELINE_ROOT));
}

#[test]
fn pods_that_cannot_be_built_say_why() {
    let r = run();
    let (o, ei) = (outputs(), executor_input());
    let mut c = component();
    c.command.clear();
    let t = TaskPod {
        run: &r,
        task: "train",
        attempt: 0,
        container: &c,
        outputs: &o,
        executor_input: &ei,
        launcher_image: "osprey",
    };
    assert_eq!(task_pod(&t), Err(PodError::NoCommand("train".into())));
    let mut c = component();
    c.image = " ".into();
    assert_eq!(
        task_pod(&TaskPod { container: &c, ..t }),
        Err(PodError::NoImage("train".into()))
    );
    let mut unsaved = run();
    unsaved.metadata.uid = None;
    let c = component();
    let e = task_pod(&TaskPod {
        run: &unsaved,
        container: &c,
        ..t
    })
    .expect_err("no uid");
    assert_eq!(e, PodError::RunMetadata("uid"));
    assert!(e.to_string().contains("metadata.uid"), "{e}");
}

fn finished_pod(phase: &str, main: Value, init: Option<Value>, extra: Value) -> Pod {
    let mut status = json!({
        "phase": phase,
        "containerStatuses": [{"name": "main", "image": "python:3.11", "imageID": "", "ready": false,
                               "restartCount": 0, "state": main}],
    });
    if let Some(i) = init {
        status["initContainerStatuses"] = json!([{"name": "osprey-launcher", "image": "osprey",
            "imageID": "", "ready": false, "restartCount": 0, "state": i}]);
    }
    if let (Some(s), Some(e)) = (status.as_object_mut(), extra.as_object()) {
        s.extend(e.clone());
    }
    serde_json::from_value(json!({
        "metadata": {"name": "run-train-0123456789"},
        "status": status,
    }))
    .expect("pod")
}

fn terminated(code: i32, reason: &str, message: Option<&str>) -> Value {
    let mut t = json!({"exitCode": code, "reason": reason});
    if let Some(m) = message {
        t["message"] = json!(m);
    }
    json!({"terminated": t})
}

#[test]
fn a_succeeded_pod_gives_the_launchers_outputs() {
    let mut outs = TaskOutputs::default();
    outs.parameters.insert("Output".into(), json!(9));
    outs.artifacts.insert(
        "model".into(),
        json!({"uri": "/mnt/pipeline/m", "metadata": {"acc": 0.9}}),
    );
    let pod = finished_pod(
        "Succeeded",
        terminated(0, "Completed", Some(&encode_outputs(&outs))),
        None,
        json!({}),
    );
    assert_eq!(task_result(&pod), Some(Ok(outs)));
    let pod = finished_pod(
        "Succeeded",
        terminated(0, "Completed", None),
        None,
        json!({}),
    );
    let e = task_result(&pod)
        .expect("finished")
        .expect_err("no message");
    assert!(
        e.contains("run-train-0123456789") && e.contains("outputs are missing"),
        "{e}"
    );
    let pod = finished_pod(
        "Succeeded",
        terminated(0, "Completed", Some("hello")),
        None,
        json!({}),
    );
    let e = task_result(&pod).expect("finished").expect_err("not JSON");
    assert!(e.contains("not the launcher's outputs JSON"), "{e}");
}

#[test]
fn a_failed_pod_says_why() {
    let pod = finished_pod(
        "Failed",
        terminated(1, "Error", Some("Traceback ...\nValueError: bad input\n")),
        Some(terminated(0, "Completed", None)),
        json!({}),
    );
    let e = task_result(&pod).expect("finished").expect_err("failed");
    assert_eq!(
        e,
        "pod run-train-0123456789 failed: container main exited with code 1 (Error): \
         Traceback ...\nValueError: bad input"
    );
    let pod = finished_pod(
        "Failed",
        json!({"waiting": {"reason": "PodInitializing"}}),
        Some(terminated(
            128,
            "StartError",
            Some("exec: \"osprey\": executable file not found"),
        )),
        json!({}),
    );
    let e = task_result(&pod).expect("finished").expect_err("failed");
    assert!(
        e.contains("container osprey-launcher (init) exited with code 128 (StartError): exec:"),
        "{e}"
    );
    let pod = finished_pod(
        "Failed",
        terminated(137, "Error", None),
        None,
        json!({"reason": "DeadlineExceeded", "message": "Pod was active on the node longer than the specified deadline"}),
    );
    let e = task_result(&pod).expect("finished").expect_err("failed");
    assert!(
        e.contains("DeadlineExceeded: Pod was active") && e.contains("code 137"),
        "{e}"
    );
    let bare: Pod =
        serde_json::from_value(json!({"metadata": {"name": "p"}, "status": {"phase": "Failed"}}))
            .expect("pod");
    let e = task_result(&bare).expect("finished").expect_err("failed");
    assert!(e.contains("no container status says why"), "{e}");
}

#[test]
fn unfinished_pods_have_no_result_but_may_be_stuck() {
    let running = finished_pod(
        "Running",
        json!({"running": {}}),
        Some(terminated(0, "Completed", None)),
        json!({}),
    );
    assert_eq!(task_result(&running), None);
    assert_eq!(stuck_reason(&running), None);
    let never: Pod = serde_json::from_value(json!({"metadata": {"name": "p"}})).expect("pod");
    assert_eq!(task_result(&never), None);
    let pulling = finished_pod(
        "Pending",
        json!({"waiting": {"reason": "ErrImagePull", "message": "no such image python:3.99"}}),
        None,
        json!({}),
    );
    assert_eq!(task_result(&pulling), None);
    assert_eq!(
        stuck_reason(&pulling).as_deref(),
        Some("container main: ErrImagePull: no such image python:3.99")
    );
    let creating = finished_pod(
        "Pending",
        json!({"waiting": {"reason": "ContainerCreating"}}),
        None,
        json!({}),
    );
    assert_eq!(stuck_reason(&creating), None);
}
