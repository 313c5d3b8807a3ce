//! The reconciler against a scripted mock of the Kubernetes API (no cluster): every request it
//! makes is recorded and answered by a script, so the sequence and the bodies can be checked.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use http::{Request, Response, StatusCode};
use kube::client::Body;
use kube::Client;
use osprey_controller::crd::InferenceService;
use osprey_controller::desired::Settings;
use osprey_controller::reconcile::{reconcile, Context, FINALIZER};
use serde_json::{json, Value};
use std::sync::{Arc, Mutex};

/// One request the reconciler made.
#[derive(Debug, Clone)]
struct Call {
    method: String,
    path: String,
    body: Value,
}

type Script = dyn Fn(&Call) -> (StatusCode, Value) + Send + Sync;

/// A client whose requests are answered by `script` and recorded.
fn scripted(script: Arc<Script>) -> (Client, Arc<Mutex<Vec<Call>>>) {
    let (svc, mut handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    let calls = Arc::new(Mutex::new(Vec::new()));
    let log = calls.clone();
    tokio::spawn(async move {
        while let Some((req, send)) = handle.next_request().await {
            let (parts, body) = req.into_parts();
            let bytes = body.collect_bytes().await.unwrap_or_default();
            let call = Call {
                method: parts.method.to_string(),
                path: parts.uri.path().to_string(),
                body: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
            };
            let (status, answer) = script(&call);
            log.lock().unwrap().push(call);
            send.send_response(
                Response::builder()
                    .status(status)
                    .header("content-type", "application/json")
                    .body(Body::from(answer.to_string().into_bytes()))
                    .unwrap(),
            );
        }
    });
    (Client::new(svc, "default"), calls)
}

fn not_found() -> (StatusCode, Value) {
    (
        StatusCode::NOT_FOUND,
        json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "NotFound", "code": 404, "message": "not found"}),
    )
}

fn isvc(storage: &str) -> InferenceService {
    let mut i: InferenceService = serde_yaml::from_str(&format!(
        "apiVersion: serving.osprey.dev/v1beta1\nkind: InferenceService\nmetadata: {{ name: iris, namespace: ns, uid: u-1, generation: 1 }}\nspec:\n  predictor:\n    model:\n      modelFormat: {{ name: onnx }}\n      storageUri: {storage}\n"
    ))
    .unwrap();
    i.metadata.finalizers = Some(vec![FINALIZER.to_string()]);
    i
}

/// Answers like an empty cluster that accepts every write.
fn empty_cluster(i: InferenceService) -> Arc<Script> {
    Arc::new(move |c: &Call| match c.method.as_str() {
        // The component's pods, listed for their reasons: none yet.
        "GET" if c.path.ends_with("/pods") => (
            StatusCode::OK,
            json!({"kind": "PodList", "apiVersion": "v1", "metadata": {}, "items": []}),
        ),
        "GET" => not_found(),
        "DELETE" => not_found(),
        "PATCH" if c.path.ends_with("/status") => {
            (StatusCode::OK, serde_json::to_value(&i).unwrap())
        }
        // Server-side apply echoes the object.
        "PATCH" => (StatusCode::OK, c.body.clone()),
        _ => (StatusCode::CREATED, c.body.clone()),
    })
}

#[tokio::test]
async fn a_valid_spec_applies_its_objects_then_writes_status() {
    let i = isvc("s3://models/iris");
    let (client, calls) = scripted(empty_cluster(i.clone()));
    let ctx = Arc::new(Context::new(client, Settings::default()));
    reconcile(Arc::new(i), ctx).await.expect("reconciles");
    let calls = calls.lock().unwrap().clone();
    let summary: Vec<String> = calls
        .iter()
        .map(|c| format!("{} {}", c.method, c.path))
        .collect();
    let applied: Vec<&Call> = calls
        .iter()
        .filter(|c| c.method == "PATCH" && !c.path.ends_with("/status"))
        .collect();
    // Server-side apply of the Deployment and the Service, nothing else.
    assert_eq!(applied.len(), 2, "{summary:#?}");
    assert!(
        applied[0]
            .path
            .ends_with("/namespaces/ns/deployments/iris-predictor"),
        "{summary:#?}"
    );
    assert_eq!(applied[0].body["kind"], "Deployment");
    assert_eq!(
        applied[0].body["metadata"]["ownerReferences"][0]["uid"],
        "u-1"
    );
    assert!(applied[1]
        .path
        .ends_with("/namespaces/ns/services/iris-predictor"));
    // No autoscaler wanted (min = max): a stale one is deleted, as is a stale canary.
    assert!(summary
        .iter()
        .any(|s| s.starts_with("DELETE") && s.contains("horizontalpodautoscalers/iris-predictor")));
    assert!(summary
        .iter()
        .any(|s| s.starts_with("DELETE") && s.ends_with("deployments/iris-predictor-canary")));
    // Last, the status: not ready (the Deployment reports no ready replicas).
    let last = calls.last().unwrap();
    assert!(
        last.path.ends_with("/inferenceservices/iris/status"),
        "{summary:#?}"
    );
    let conditions = last.body["status"]["conditions"].as_array().unwrap();
    assert_eq!(conditions[0]["type"], "Ready");
    assert_eq!(conditions[0]["status"], "False");
}

#[tokio::test]
async fn an_invalid_spec_writes_a_condition_and_an_event_and_applies_nothing() {
    let i = isvc("ftp://bucket/iris");
    let (client, calls) = scripted(empty_cluster(i.clone()));
    let ctx = Arc::new(Context::new(client, Settings::default()));
    reconcile(Arc::new(i), ctx)
        .await
        .expect("an invalid spec is not a reconcile error");
    let calls = calls.lock().unwrap().clone();
    assert!(!calls.iter().any(|c| c.method == "PATCH"
        && (c.path.contains("/deployments/") || c.path.contains("/services/"))));
    let event = calls
        .iter()
        .find(|c| c.path.contains("/events"))
        .expect("a Warning event");
    assert_eq!(event.body["type"], "Warning");
    assert_eq!(event.body["reason"], "InvalidSpec");
    let status = calls
        .iter()
        .find(|c| c.path.ends_with("/status"))
        .expect("a status patch");
    let ready = &status.body["status"]["conditions"][0];
    assert_eq!(ready["reason"], "InvalidSpec");
    assert!(ready["message"]
        .as_str()
        .unwrap()
        .contains("spec.predictor.model.storageUri"));
}
