//! Test harness: a real server on loopback port 0, in this process, with real ONNX Runtime;
//! [`process`]: the built binary serving as its own process; [`pipeline`]: `osprey pipeline run`
//! on the compiled examples.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

pub mod pipeline;
pub mod process;

use osprey_protocol::grpc::inference::grpc_inference_service_client::GrpcInferenceServiceClient;
use osprey_server::cli::ServeArgs;
use osprey_server::server::{build_state, run, Listeners};
use serde_json::Value;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use tokio::sync::oneshot;
use tonic::transport::Channel;

/// The repository's bundled models.
pub fn models_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../models")
}

/// A running server; dropping it shuts it down.
pub struct TestServer {
    pub http: SocketAddr,
    pub grpc: SocketAddr,
    pub metrics: SocketAddr,
    /// The admin REST listener, when `admin_port` was set.
    pub admin: Option<SocketAddr>,
    stop: Option<oneshot::Sender<()>>,
    done: Option<tokio::task::JoinHandle<()>>,
    pub client: reqwest::Client,
}

impl TestServer {
    pub async fn start(repo: &Path) -> TestServer {
        Self::start_with(repo, |_| {}).await
    }

    pub async fn start_with(repo: &Path, adjust: impl FnOnce(&mut ServeArgs)) -> TestServer {
        let mut args = ServeArgs::for_tests(repo.to_path_buf());
        args.log_level = "warn".into();
        args.shutdown_grace_secs = 5;
        adjust(&mut args);
        let listeners = Listeners::bind(&args).await.expect("bind");
        let (http, grpc, metrics) = (
            listeners.http.local_addr().unwrap(),
            listeners.grpc.local_addr().unwrap(),
            listeners.metrics.local_addr().unwrap(),
        );
        let admin = listeners.admin.as_ref().map(|l| l.local_addr().unwrap());
        let state = build_state(&args).await.expect("server state");
        let (tx, rx) = oneshot::channel::<()>();
        let done = tokio::spawn(async move {
            run(state, listeners, &args, async {
                let _ = rx.await;
            })
            .await
            .expect("server ran");
        });
        TestServer {
            http,
            grpc,
            metrics,
            admin,
            stop: Some(tx),
            done: Some(done),
            client: reqwest::Client::new(),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.http, path)
    }

    pub async fn get(&self, path: &str) -> (u16, Value) {
        let r = self.client.get(self.url(path)).send().await.expect("GET");
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    pub async fn post_json(&self, path: &str, body: &Value) -> (u16, Value) {
        // No Content-Type, as tritonclient sends it.
        let r = self
            .client
            .post(self.url(path))
            .body(body.to_string())
            .send()
            .await
            .expect("POST");
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    pub async fn post_raw(
        &self,
        path: &str,
        body: Vec<u8>,
        header_len: Option<&str>,
    ) -> (u16, reqwest::header::HeaderMap, Vec<u8>) {
        let mut req = self.client.post(self.url(path)).body(body);
        if let Some(h) = header_len {
            req = req.header("Inference-Header-Content-Length", h);
        }
        let r = req.send().await.expect("POST");
        let status = r.status().as_u16();
        let headers = r.headers().clone();
        (status, headers, r.bytes().await.expect("body").to_vec())
    }

    /// The Prometheus text from the metrics port.
    pub async fn metrics_text(&self) -> String {
        let r = self
            .client
            .get(format!("http://{}/metrics", self.metrics))
            .send()
            .await
            .expect("GET /metrics");
        r.text().await.expect("metrics body")
    }

    pub async fn grpc_client(&self) -> GrpcInferenceServiceClient<Channel> {
        GrpcInferenceServiceClient::connect(format!("http://{}", self.grpc))
            .await
            .expect("gRPC connect")
            .max_decoding_message_size(64 << 20)
    }

    /// Asserts the server still answers: live, and a known-good inference on the MLP works.
    pub async fn assert_still_serving(&self) {
        let (s, v) = self.get("/v2/health/live").await;
        assert_eq!((s, v["live"].as_bool()), (200, Some(true)));
        let body = serde_json::json!({"inputs":[{"name":"input","shape":[1,64],"datatype":"FP32","data":vec![0.0f32;64]}]});
        let (s, v) = self.post_json("/v2/models/mlp/infer", &body).await;
        assert_eq!(s, 200, "{v}");
    }

    pub async fn shutdown(mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(done) = self.done.take() {
            done.await.expect("server task");
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
    }
}

/// One reference case: inputs and the outputs onnxruntime in Python gave for them.
pub struct Case {
    pub inputs: Vec<Value>,
    pub outputs: Vec<Value>,
}

pub fn reference(model: &str) -> Vec<Case> {
    let text = std::fs::read_to_string(models_dir().join(model).join("reference.json"))
        .expect("reference.json");
    let v: Value = serde_json::from_str(&text).expect("reference JSON");
    v["cases"]
        .as_array()
        .expect("cases")
        .iter()
        .map(|c| Case {
            inputs: c["inputs"].as_array().unwrap().clone(),
            outputs: c["outputs"].as_array().unwrap().clone(),
        })
        .collect()
}

/// Compares JSON output data with a reference: floats within tolerance, everything else exact.
pub fn assert_data_close(name: &str, got: &Value, want: &Value) {
    let (g, w) = (
        got.as_array().expect("array"),
        want.as_array().expect("array"),
    );
    assert_eq!(g.len(), w.len(), "output '{name}': element count");
    for (i, (a, b)) in g.iter().zip(w).enumerate() {
        match (a.as_f64(), b.as_f64()) {
            (Some(x), Some(y)) => assert!(
                (x - y).abs() <= 1e-5 + 1e-5 * y.abs(),
                "output '{name}'[{i}]: {x} vs {y}"
            ),
            _ => assert_eq!(a, b, "output '{name}'[{i}]"),
        }
    }
}

/// A copy of one bundled model in a fresh temporary repository.
pub fn temp_repo_with(models: &[&str]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tmp");
    for m in models {
        copy_dir(&models_dir().join(m), &dir.path().join(m));
    }
    dir
}

pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let target = to.join(e.file_name());
        if e.path().is_dir() {
            copy_dir(&e.path(), &target);
        } else {
            std::fs::copy(e.path(), target).unwrap();
        }
    }
}

/// How many models the bundled repository holds (one directory each).
pub fn bundled_model_count() -> usize {
    std::fs::read_dir(models_dir())
        .unwrap()
        .filter(|e| e.as_ref().unwrap().path().join("config.pbtxt").is_file())
        .count()
}

/// The model's row of the repository index.
pub async fn index_row(s: &TestServer, model: &str) -> Value {
    let (_, index) = s
        .post_json("/v2/repository/index", &serde_json::json!({}))
        .await;
    index
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == model)
        .cloned()
        .unwrap_or_else(|| panic!("{model} in {index}"))
}
