//! `osprey pull` against real servers on loopback: an S3-compatible server (moto in server
//! mode, from the project's .venv), a plain HTTP file server, and an in-test server speaking the
//! subset of Google Cloud Storage's JSON API that `gs://` uses (list with pagination, download).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use axum::extract::{Path as UrlPath, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use osprey_controller::pull::gcs::{pull_gcs, Gcs, GcsError};
use osprey_controller::pull::pull;
use serde_json::json;
use std::collections::{BTreeMap, HashMap};
use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

struct Killed(Child);
impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

async fn wait_listening(port: u16) {
    for _ in 0..200 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("nothing listens on {port}");
}

fn venv_bin(name: &str) -> std::path::PathBuf {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../.venv/bin")
        .join(name);
    assert!(
        p.exists(),
        "{} is missing: run scripts/setup.sh",
        p.display()
    );
    p
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pulls_a_repository_from_s3() {
    let port = free_port();
    let _moto = Killed(
        Command::new(venv_bin("moto_server"))
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("moto_server"),
    );
    wait_listening(port).await;
    let base = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();
    // moto accepts unsigned requests: make a bucket with a small repository in it.
    assert!(http
        .put(format!("{base}/models"))
        .send()
        .await
        .unwrap()
        .status()
        .is_success());
    for (key, body) in [
        ("iris/config.pbtxt", "name: \"iris\""),
        ("iris/1/model.onnx", "not really onnx"),
        ("other/ignored.txt", "x"),
    ] {
        let r = http
            .put(format!("{base}/models/{key}"))
            .body(body)
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success(), "{key}: {}", r.status());
    }
    // What the init container's environment would carry.
    std::env::set_var("AWS_ENDPOINT_URL", &base);
    std::env::set_var("AWS_ACCESS_KEY_ID", "test");
    std::env::set_var("AWS_SECRET_ACCESS_KEY", "test");
    std::env::set_var("AWS_REGION", "us-east-1");
    let dir = tempfile::tempdir().unwrap();
    let got = pull("s3://models/iris", dir.path()).await.expect("pulls");
    assert_eq!(got.files, 2);
    assert_eq!(
        std::fs::read_to_string(dir.path().join("1/model.onnx")).unwrap(),
        "not really onnx"
    );
    assert!(dir.path().join("config.pbtxt").is_file());
    assert!(!dir.path().join("ignored.txt").exists());
    // An empty prefix is an error naming the URI, not an empty repository.
    let e = pull("s3://models/nothing-here", dir.path())
        .await
        .unwrap_err();
    assert!(e.to_string().contains("s3://models/nothing-here"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pulls_a_file_over_http() {
    let src = tempfile::tempdir().unwrap();
    std::fs::write(src.path().join("model.onnx"), b"weights").unwrap();
    let port = free_port();
    let _server = Killed(
        Command::new("python3")
            .args([
                "-m",
                "http.server",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--directory",
            ])
            .arg(src.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("python3 -m http.server"),
    );
    wait_listening(port).await;
    let dir = tempfile::tempdir().unwrap();
    let got = pull(&format!("http://127.0.0.1:{port}/model.onnx"), dir.path())
        .await
        .expect("pulls");
    assert_eq!(got.bytes, 7);
    assert_eq!(
        std::fs::read(dir.path().join("model.onnx")).unwrap(),
        b"weights"
    );
    let e = pull(&format!("http://127.0.0.1:{port}/missing.onnx"), dir.path())
        .await
        .unwrap_err();
    assert!(e.to_string().contains("404"), "{e}");
}

/// Buckets of objects behind a GCS JSON API subset; two objects a listing page. Records every
/// request as (what, Authorization header).
#[derive(Default)]
struct FakeGcs {
    buckets: BTreeMap<String, BTreeMap<String, Vec<u8>>>,
    seen: Mutex<Vec<(String, Option<String>)>>,
}

const PAGE: usize = 2;

fn gcs_error(status: StatusCode, message: &str) -> Response {
    let body = json!({"error": {"code": status.as_u16(), "message": message}});
    (status, Json(body)).into_response()
}

impl FakeGcs {
    fn record(&self, what: String, headers: &HeaderMap) {
        let auth = headers
            .get("authorization")
            .map(|v| v.to_str().unwrap().to_string());
        self.seen.lock().unwrap().push((what, auth));
    }

    fn seen(&self) -> Vec<(String, Option<String>)> {
        self.seen.lock().unwrap().clone()
    }
}

async fn list_objects(
    State(g): State<Arc<FakeGcs>>,
    UrlPath(bucket): UrlPath<String>,
    Query(q): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    let token = q.get("pageToken").cloned();
    g.record(
        format!("list {bucket} page={}", token.as_deref().unwrap_or("-")),
        &headers,
    );
    let Some(objects) = g.buckets.get(&bucket) else {
        return gcs_error(
            StatusCode::NOT_FOUND,
            "The specified bucket does not exist.",
        );
    };
    let prefix = q.get("prefix").map(String::as_str).unwrap_or("");
    let names: Vec<&String> = objects.keys().filter(|n| n.starts_with(prefix)).collect();
    let start: usize = match token.as_deref().map(str::parse) {
        None => 0,
        Some(Ok(i)) => i,
        Some(Err(_)) => return gcs_error(StatusCode::BAD_REQUEST, "Invalid pageToken"),
    };
    let page: Vec<_> = names
        .iter()
        .skip(start)
        .take(PAGE)
        .map(|n| json!({"kind": "storage#object", "bucket": bucket, "name": n}))
        .collect();
    let mut body = json!({"kind": "storage#objects"});
    if !page.is_empty() {
        body["items"] = json!(page);
    }
    if start + PAGE < names.len() {
        body["nextPageToken"] = json!((start + PAGE).to_string());
    }
    Json(body).into_response()
}

async fn get_object(
    State(g): State<Arc<FakeGcs>>,
    UrlPath((bucket, object)): UrlPath<(String, String)>,
    Query(q): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    g.record(format!("get {bucket} {object}"), &headers);
    if q.get("alt").map(String::as_str) != Some("media") {
        return gcs_error(
            StatusCode::BAD_REQUEST,
            "this fixture only serves alt=media",
        );
    }
    match g.buckets.get(&bucket) {
        None => gcs_error(
            StatusCode::NOT_FOUND,
            "The specified bucket does not exist.",
        ),
        Some(objects) => match objects.get(&object) {
            Some(body) => body.clone().into_response(),
            None => gcs_error(StatusCode::NOT_FOUND, "No such object."),
        },
    }
}

/// Serves `g` on a loopback port (bound before this returns); the endpoint as `host:port`.
async fn serve_gcs(g: Arc<FakeGcs>) -> String {
    let app = Router::new()
        .route("/storage/v1/b/{bucket}/o", get(list_objects))
        // One segment: an object name's slashes must arrive percent-encoded.
        .route("/storage/v1/b/{bucket}/o/{object}", get(get_object))
        .with_state(g);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("127.0.0.1:{}", addr.port())
}

fn bucket(objects: &[(&str, &str)]) -> BTreeMap<String, Vec<u8>> {
    objects
        .iter()
        .map(|(k, v)| (k.to_string(), v.as_bytes().to_vec()))
        .collect()
}

fn examples_bucket() -> FakeGcs {
    let mut g = FakeGcs::default();
    g.buckets.insert(
        "kfserving-examples".into(),
        bucket(&[
            // A "folder" placeholder, skipped.
            ("models/onnx/", ""),
            ("models/onnx/model.onnx", "onnx weights"),
            ("models/onnx/1/extra.bin", "extra"),
            ("models/onnx/sub dir/notes.txt", "spaces survive"),
            // Shares the string prefix but is not under models/onnx/.
            ("models/onnx-other/ignored.onnx", "x"),
            ("other/ignored.txt", "x"),
        ]),
    );
    g
}

/// Through `pull` as the init container runs it: endpoint and token from the environment.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pulls_a_model_directory_from_gcs() {
    let g = Arc::new(examples_bucket());
    let host = serve_gcs(g.clone()).await;
    // The only test in this binary reading these variables.
    std::env::set_var("STORAGE_EMULATOR_HOST", &host);
    std::env::set_var("GOOGLE_OAUTH_ACCESS_TOKEN", "ya29.test-token");
    let dir = tempfile::tempdir().unwrap();
    let got = pull("gs://kfserving-examples/models/onnx", dir.path())
        .await
        .expect("pulls");
    assert_eq!(got.files, 3);
    assert_eq!(got.bytes, ("onnx weights".len() + 5 + 14) as u64);
    let read = |p: &str| std::fs::read_to_string(dir.path().join(p)).unwrap();
    assert_eq!(read("model.onnx"), "onnx weights");
    assert_eq!(read("1/extra.bin"), "extra");
    assert_eq!(read("sub dir/notes.txt"), "spaces survive");
    assert!(!dir.path().join("ignored.onnx").exists());
    assert!(!dir.path().join("onnx-other").exists());
    let seen = g.seen();
    // Four names under the prefix, two a page: the second page was asked for by its token.
    let lists: Vec<&str> = seen
        .iter()
        .map(|(w, _)| w.as_str())
        .filter(|w| w.starts_with("list"))
        .collect();
    assert_eq!(
        lists,
        [
            "list kfserving-examples page=-",
            "list kfserving-examples page=2"
        ]
    );
    assert!(seen
        .iter()
        .any(|(w, _)| w == "get kfserving-examples models/onnx/sub dir/notes.txt"));
    assert!(
        seen.iter()
            .all(|(_, a)| a.as_deref() == Some("Bearer ya29.test-token")),
        "{seen:?}"
    );

    // A path that is one object, not a prefix: that file alone, under its name.
    let one = tempfile::tempdir().unwrap();
    let got = pull("gs://kfserving-examples/models/onnx/model.onnx", one.path())
        .await
        .expect("pulls one object");
    assert_eq!((got.files, got.bytes), (1, 12));
    assert_eq!(
        std::fs::read_to_string(one.path().join("model.onnx")).unwrap(),
        "onnx weights"
    );
}

/// Failures, with the endpoint given explicitly (anonymous access).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gcs_failures_name_the_uri() {
    // Every escape would land inside `root`, where the test looks for it, should a regression
    // ever write it.
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("x/models");
    let absolute = root.path().join("abs-escape.txt");
    let absolute_name = format!("abs/{}", absolute.display());
    let mut g = examples_bucket();
    g.buckets.insert(
        "evil".into(),
        bucket(&[
            ("m/model.onnx", "fine"),
            ("m/../../escape.txt", "out"),
            ("abs/fine.onnx", "fine"),
            (&absolute_name, "out"),
        ]),
    );
    let g = Arc::new(g);
    let gcs = Gcs {
        endpoint: format!("http://{}", serve_gcs(g.clone()).await),
        token: None,
    };

    // Traversal: refused before anything is written.
    for (uri, name) in [
        ("gs://evil/m", "m/../../escape.txt"),
        ("gs://evil/abs", absolute_name.as_str()),
    ] {
        let e = pull_gcs(uri, &dir, &gcs).await.unwrap_err();
        assert!(matches!(e, GcsError::Traversal { .. }), "{e}");
        let msg = e.to_string();
        assert!(
            msg.contains(uri) && msg.contains(name) && msg.contains("leaves the target directory"),
            "{msg}"
        );
    }
    assert!(!dir.exists(), "nothing written");
    assert!(!root.path().join("escape.txt").exists());
    assert!(!absolute.exists());

    // A bucket that does not exist: the URI, the status and the service's message.
    let e = pull_gcs("gs://no-such-bucket/models/onnx", &dir, &gcs)
        .await
        .unwrap_err();
    let msg = e.to_string();
    assert!(
        msg.contains("gs://no-such-bucket/models/onnx")
            && msg.contains("404")
            && msg.contains("bucket does not exist"),
        "{msg}"
    );

    // Neither a prefix nor an object.
    let e = pull_gcs("gs://kfserving-examples/models/nothing", &dir, &gcs)
        .await
        .unwrap_err();
    assert!(matches!(e, GcsError::NotFound { .. }), "{e}");
    assert!(
        e.to_string()
            .contains("gs://kfserving-examples/models/nothing"),
        "{e}"
    );

    // Anonymous: no Authorization header at all.
    let seen = g.seen();
    assert!(!seen.is_empty());
    assert!(seen.iter().all(|(_, a)| a.is_none()), "{seen:?}");
}
