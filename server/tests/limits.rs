//! Bounded work and bounded connections: early errors keep the connection usable, connection
//! caps refuse clearly, slow clients are cut off, model files stay inside the repository,
//! BYTES and explanation costs are capped with errors that name the limit.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{temp_repo_with, TestServer};
use serde_json::json;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Everything the server sends until it closes the connection, within `bound`.
async fn read_until_closed(tcp: &mut TcpStream, bound: Duration) -> String {
    let mut out = Vec::new();
    tokio::time::timeout(bound, tcp.read_to_end(&mut out))
        .await
        .expect("the server closed the connection in time")
        .expect("read");
    String::from_utf8_lossy(&out).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_early_error_leaves_the_connection_usable() {
    let repo = temp_repo_with(&["mlp"]);
    let s = TestServer::start(repo.path()).await;
    let mut tcp = TcpStream::connect(s.http).await.unwrap();
    // 404 for an unknown model, which needs nothing of the body; the body (1 MB, more than is
    // ever buffered at once) must still be read, or the second request pipelined on the same
    // connection is lost.
    let body = json!({"inputs": [], "pad": "x".repeat(1 << 20)}).to_string();
    let mut wire = format!(
        "POST /v2/models/nope/infer HTTP/1.1\r\nhost: x\r\ncontent-length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    wire.extend_from_slice(body.as_bytes());
    wire.extend_from_slice(b"GET /v2/health/live HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n");
    let (mut rd, mut wr) = tcp.split();
    let (_, text) = tokio::join!(async { wr.write_all(&wire).await.unwrap() }, async {
        let mut out = Vec::new();
        tokio::time::timeout(Duration::from_secs(20), rd.read_to_end(&mut out))
            .await
            .expect("the server closed the connection in time")
            .expect("read");
        String::from_utf8_lossy(&out).into_owned()
    });
    assert!(text.starts_with("HTTP/1.1 404"), "{text}");
    assert!(text.contains("unknown model 'nope'"), "{text}");
    assert!(
        text.contains("HTTP/1.1 200"),
        "second answer missing: {text}"
    );
    assert!(text.contains("\"live\":true"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_over_the_limit_closes_the_connection_and_says_so() {
    let repo = temp_repo_with(&["mlp"]);
    let s = TestServer::start_with(repo.path(), |a| a.http_max_body_bytes = 16).await;
    let mut tcp = TcpStream::connect(s.http).await.unwrap();
    tcp.write_all(b"POST /v2/models/mlp/infer HTTP/1.1\r\nhost: x\r\ncontent-length: 64\r\n\r\n")
        .await
        .unwrap();
    tcp.write_all(&[b' '; 64]).await.unwrap();
    let text = read_until_closed(&mut tcp, Duration::from_secs(20)).await;
    assert!(text.starts_with("HTTP/1.1 413"), "{text}");
    assert!(
        text.to_ascii_lowercase().contains("connection: close"),
        "{text}"
    );
    assert!(text.contains("--http-max-body-bytes"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_past_the_cap_get_503_and_the_others_go_on() {
    let repo = temp_repo_with(&["mlp"]);
    let s = TestServer::start_with(repo.path(), |a| a.http_max_connections = 1).await;
    let mut first = TcpStream::connect(s.http).await.unwrap();
    first
        .write_all(b"GET /v2/health/live HTTP/1.1\r\nhost: x\r\n\r\n")
        .await
        .unwrap();
    let mut buf = [0u8; 512];
    let n = tokio::time::timeout(Duration::from_secs(20), first.read(&mut buf))
        .await
        .expect("answer in time")
        .unwrap();
    assert!(std::str::from_utf8(&buf[..n])
        .unwrap()
        .starts_with("HTTP/1.1 200"));
    // The first connection stays open (keep-alive): the second is over the cap.
    let mut second = TcpStream::connect(s.http).await.unwrap();
    let text = read_until_closed(&mut second, Duration::from_secs(20)).await;
    assert!(text.starts_with("HTTP/1.1 503"), "{text}");
    assert!(text.contains("too many connections"), "{text}");
    // The connection inside the cap still works.
    first
        .write_all(b"GET /v2/health/live HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
        .await
        .unwrap();
    let text = read_until_closed(&mut first, Duration::from_secs(20)).await;
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_never_finishes_its_request_head_is_cut_off() {
    let repo = temp_repo_with(&["mlp"]);
    let s = TestServer::start_with(repo.path(), |a| a.http_header_timeout_secs = 1).await;
    let mut slow = TcpStream::connect(s.http).await.unwrap();
    slow.write_all(b"GET /v2/health/live HTTP/1.1\r\nhost:")
        .await
        .unwrap();
    // The server gives up on it (the bound only keeps a broken build from hanging the test).
    read_until_closed(&mut slow, Duration::from_secs(30)).await;
    s.assert_still_serving().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_connections_past_the_cap_are_closed() {
    let repo = temp_repo_with(&["mlp"]);
    let s = TestServer::start_with(repo.path(), |a| a.grpc_max_connections = 1).await;
    let mut first = s.grpc_client().await;
    let live = first
        .server_live(osprey_protocol::grpc::inference::ServerLiveRequest {})
        .await
        .expect("first connection works");
    assert!(live.into_inner().live);
    let second = osprey_protocol::grpc::inference::grpc_inference_service_client::GrpcInferenceServiceClient::connect(
        format!("http://{}", s.grpc),
    )
    .await;
    match second {
        Err(_) => {}
        Ok(mut c) => {
            let r = c
                .server_live(osprey_protocol::grpc::inference::ServerLiveRequest {})
                .await;
            assert!(r.is_err(), "a second connection was served past the cap");
        }
    }
    assert!(first
        .server_live(osprey_protocol::grpc::inference::ServerLiveRequest {})
        .await
        .is_ok());
}

/// The MLP with `extra` appended to its configuration.
fn mlp_repo(extra: &str) -> tempfile::TempDir {
    let repo = temp_repo_with(&["mlp"]);
    let path = repo.path().join("mlp/config.pbtxt");
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::write(&path, format!("{text}\n{extra}\n")).unwrap();
    repo
}

async fn load_reason(s: &TestServer) -> String {
    let (status, v) = s.post_json("/v2/repository/index", &json!({})).await;
    assert_eq!(status, 200, "{v}");
    v.as_array()
        .and_then(|a| a.iter().find(|m| m["name"] == "mlp"))
        .and_then(|m| m["reason"].as_str())
        .unwrap_or_default()
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn model_files_outside_the_model_are_refused() {
    // An absolute path in a label_filename.
    let repo = temp_repo_with(&["mlp"]);
    std::fs::write(
        repo.path().join("mlp/config.pbtxt"),
        r#"name: "mlp"
platform: "onnxruntime_onnx"
max_batch_size: 64
input [ { name: "input" data_type: TYPE_FP32 dims: [ 64 ] } ]
output [ { name: "output" data_type: TYPE_FP32 dims: [ 10 ] label_filename: "/etc/passwd" } ]
"#,
    )
    .unwrap();
    let s = TestServer::start(repo.path()).await;
    let reason = load_reason(&s).await;
    assert!(
        reason.contains("label_filename '/etc/passwd' must be a relative path"),
        "{reason}"
    );
    assert!(
        !reason.contains(&repo.path().display().to_string()),
        "{reason}"
    );
    s.shutdown().await;

    // A symlink leading out of the model's directory: refused unless --model-symlinks.
    let repo = temp_repo_with(&["mlp"]);
    std::fs::write(repo.path().join("outside.onnx"), b"not a model").unwrap();
    let model = repo.path().join("mlp/1/model.onnx");
    std::fs::remove_file(&model).unwrap();
    std::fs::copy(
        common::models_dir().join("mlp/1/model.onnx"),
        repo.path().join("real.onnx"),
    )
    .unwrap();
    std::os::unix::fs::symlink(repo.path().join("real.onnx"), &model).unwrap();
    let s = TestServer::start(repo.path()).await;
    let reason = load_reason(&s).await;
    assert!(
        reason.contains("mlp/1/model.onnx") && reason.contains("--model-symlinks"),
        "{reason}"
    );
    s.shutdown().await;
    let s = TestServer::start_with(repo.path(), |a| a.model_symlinks = true).await;
    s.assert_still_serving().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn instance_counts_past_the_cap_make_the_model_unavailable() {
    let repo = mlp_repo("");
    let path = repo.path().join("mlp/config.pbtxt");
    let text = std::fs::read_to_string(&path)
        .unwrap()
        .replace("count: 1", "count: 10000");
    std::fs::write(&path, text).unwrap();
    let s = TestServer::start(repo.path()).await;
    let reason = load_reason(&s).await;
    assert!(
        reason.contains("10000 instances") && reason.contains("--max-instances-per-model"),
        "{reason}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bytes_and_explanations_are_bounded_with_errors_naming_the_limit() {
    let repo = temp_repo_with(&["mlp", "text_sentiment"]);
    let s = TestServer::start_with(repo.path(), |a| {
        a.max_bytes_elements = 3;
        a.explain_max_features = 16;
        a.explain_max_rows = 100;
    })
    .await;
    let texts = json!({"inputs": [{"name": "text", "shape": [4, 1], "datatype": "BYTES",
        "data": ["a", "b", "c", "d"]}]});
    let (status, v) = s.post_json("/v2/models/text_sentiment/infer", &texts).await;
    assert_eq!(status, 400, "{v}");
    assert!(
        v["error"]
            .as_str()
            .unwrap()
            .contains("--max-bytes-elements"),
        "{v}"
    );

    let row = json!({"inputs": [{"name": "input", "shape": [1, 64], "datatype": "FP32",
        "data": vec![0.5f32; 64]}]});
    let (status, v) = s.post_json("/v2/models/mlp/explain", &row).await;
    assert_eq!(status, 400, "{v}");
    assert!(
        v["error"]
            .as_str()
            .unwrap()
            .contains("--explain-max-features"),
        "{v}"
    );

    let long = vec!["word"; 200].join(" ");
    let text = json!({"inputs": [{"name": "text", "shape": [1, 1], "datatype": "BYTES",
        "data": [long]}], "parameters": {"method": "occlusion"}});
    let (status, v) = s
        .post_json("/v2/models/text_sentiment/explain", &text)
        .await;
    assert_eq!(status, 400, "{v}");
    assert!(
        v["error"].as_str().unwrap().contains("--explain-max-rows"),
        "{v}"
    );
    s.assert_still_serving().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unload_stops_a_load_in_progress() {
    let repo = temp_repo_with(&["mlp", "heavy"]);
    let path = repo.path().join("heavy/config.pbtxt");
    let text = std::fs::read_to_string(&path).unwrap();
    // Many instances of the 21 MB model: a load that takes seconds.
    let text = match text.contains("instance_group") {
        true => text.replace("count: 1", "count: 32"),
        false => format!("{text}\ninstance_group [ {{ count: 32 kind: KIND_CPU }} ]\n"),
    };
    std::fs::write(&path, text).unwrap();
    let s = TestServer::start_with(repo.path(), |a| a.models = vec!["mlp".into()]).await;
    let load = {
        let (client, url) = (s.client.clone(), s.url("/v2/repository/models/heavy/load"));
        tokio::spawn(async move {
            let r = client.post(url).body("{}").send().await.unwrap();
            (r.status().as_u16(), r.text().await.unwrap())
        })
    };
    // Wait (bounded) until the index shows the load under way, then unload.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let (_, v) = s.post_json("/v2/repository/index", &json!({})).await;
        let loading = v.as_array().is_some_and(|a| {
            a.iter()
                .any(|m| m["name"] == "heavy" && m["state"] == "LOADING")
        });
        if loading {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the load never showed: {v}"
        );
        tokio::task::yield_now().await;
    }
    let (status, v) = s
        .post_json("/v2/repository/models/heavy/unload", &json!({}))
        .await;
    assert_eq!(status, 200, "{v}");
    let (status, text) = load.await.unwrap();
    assert_eq!(status, 400, "{text}");
    assert!(text.contains("load cancelled by an unload"), "{text}");
    let (_, v) = s.get("/v2/models/heavy/ready").await;
    assert_ne!(v["ready"], true);
    s.assert_still_serving().await;
}

/// Executions of the model so far (explanations' evaluations included), from the statistics
/// extension.
async fn executions(s: &TestServer, model: &str) -> u64 {
    let (status, v) = s.get(&format!("/v2/models/{model}/stats")).await;
    assert_eq!(status, 200, "{v}");
    v["model_stats"][0]["execution_count"].as_u64().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_explanation_stops_when_its_client_goes_away() {
    let repo = temp_repo_with(&["mlp"]);
    let s = TestServer::start(repo.path()).await;
    let body = json!({"inputs": [{"name": "input", "shape": [1, 64], "datatype": "FP32",
        "data": vec![0.5f32; 64]}], "parameters": {"samples": 65536, "seed": 1}})
    .to_string();
    let mut tcp = TcpStream::connect(s.http).await.unwrap();
    tcp.write_all(
        format!(
            "POST /v2/models/mlp/explain HTTP/1.1\r\nhost: t\r\ncontent-length: {}\r\n\r\n{body}",
            body.len()
        )
        .as_bytes(),
    )
    .await
    .unwrap();
    // Once its evaluations are under way, the client leaves.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while executions(&s, "mlp").await == 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "the explanation never started"
        );
        tokio::task::yield_now().await;
    }
    drop(tcp);
    let explain = || async {
        let r = s
            .client
            .post(s.url("/v2/models/mlp/explain"))
            .body(body.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 200);
    };
    // The same explanation from a client that stays. Had the first one gone on, it would have
    // finished first (it started first, and both keep the same number of requests queued), so
    // the model would have run both in full by the time this one answers.
    explain().await;
    let both = executions(&s, "mlp").await;
    // What one explanation alone costs.
    explain().await;
    let one = executions(&s, "mlp").await - both;
    assert!(
        one >= 1024,
        "65,536 samples in batches of at most 64: {one}"
    );
    assert!(
        both < one + one / 2,
        "{both} executions for one explanation of {one} and one abandoned"
    );
}
