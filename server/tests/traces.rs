//! OpenTelemetry traces over OTLP/HTTP (JSON): a receiver in the test collects what the server
//! exports; the spans of REST and gRPC requests, the caller's `traceparent`, sampling by rate,
//! tracing off by default and turned on by Triton's trace setting API; bad `--trace-config` values are in cli.rs.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use axum::body::Bytes;
use axum::http::{header, HeaderMap, StatusCode};
use common::{temp_repo_with, TestServer};
use osprey_protocol::grpc::inference::model_infer_request::InferInputTensor;
use osprey_protocol::grpc::inference::ModelInferRequest;
use serde_json::{json, Value};
use std::time::Duration;
use tokio::sync::mpsc;

/// An OTLP/HTTP receiver on loopback: every POSTed body, with its Content-Type.
struct Receiver {
    url: String,
    rx: mpsc::UnboundedReceiver<(String, Value)>,
}

async fn receiver() -> Receiver {
    let (tx, rx) = mpsc::unbounded_channel();
    let app = axum::Router::new().route(
        "/v1/traces",
        axum::routing::post(move |headers: HeaderMap, body: Bytes| {
            let tx = tx.clone();
            async move {
                let kind = headers
                    .get(header::CONTENT_TYPE)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("")
                    .to_string();
                let _ = tx.send((kind, serde_json::from_slice(&body).unwrap_or(Value::Null)));
                StatusCode::OK
            }
        }),
    );
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(l, app).await });
    // Triton's spelling: host:port/path, no scheme.
    Receiver {
        url: format!("{addr}/v1/traces"),
        rx,
    }
}

impl Receiver {
    /// Spans received until `done` holds for all of them (10 s at most).
    async fn until(&mut self, done: impl Fn(&[Value]) -> bool) -> Vec<Value> {
        let mut spans = Vec::new();
        while !done(&spans) {
            let (kind, body) = tokio::time::timeout(Duration::from_secs(10), self.rx.recv())
                .await
                .unwrap_or_else(|_| panic!("no more spans; so far {spans:#?}"))
                .expect("receiver open");
            assert_eq!(kind, "application/json");
            spans.extend(spans_of(&body));
        }
        spans
    }

    /// Whatever has arrived already.
    fn drain(&mut self) -> Vec<Value> {
        let mut spans = Vec::new();
        while let Ok((_, body)) = self.rx.try_recv() {
            spans.extend(spans_of(&body));
        }
        spans
    }
}

fn spans_of(body: &Value) -> Vec<Value> {
    let mut out = Vec::new();
    for rs in body["resourceSpans"].as_array().expect("resourceSpans") {
        assert_eq!(
            rs["resource"]["attributes"][0],
            json!({"key": "service.name", "value": {"stringValue": "osprey"}})
        );
        for ss in rs["scopeSpans"].as_array().expect("scopeSpans") {
            out.extend(ss["spans"].as_array().expect("spans").iter().cloned());
        }
    }
    out
}

fn attr<'a>(span: &'a Value, key: &str) -> Option<&'a str> {
    span["attributes"]
        .as_array()?
        .iter()
        .find(|a| a["key"] == key)?["value"]["stringValue"]
        .as_str()
}

fn roots(spans: &[Value]) -> Vec<&Value> {
    spans.iter().filter(|s| s["kind"] == 2).collect()
}

fn root_of<'a>(spans: &'a [Value], id: &str) -> Option<&'a Value> {
    roots(spans)
        .into_iter()
        .find(|s| attr(s, "request_id") == Some(id))
}

fn nanos(span: &Value, key: &str) -> u128 {
    span[key].as_str().expect(key).parse().expect(key)
}

/// The root's children are decode, queue, compute and encode, each in the root's time range.
fn check_children(spans: &[Value], root: &Value) {
    let children: Vec<&Value> = spans
        .iter()
        .filter(|s| s["parentSpanId"] == root["spanId"])
        .collect();
    let mut names: Vec<&str> = children
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    names.sort_unstable();
    assert_eq!(names, ["compute", "decode", "encode", "queue"], "{root}");
    let (start, end) = (
        nanos(root, "startTimeUnixNano"),
        nanos(root, "endTimeUnixNano"),
    );
    assert!(start <= end, "{root}");
    for c in children {
        assert_eq!(c["traceId"], root["traceId"]);
        assert_eq!(c["kind"], 1);
        let (s, e) = (nanos(c, "startTimeUnixNano"), nanos(c, "endTimeUnixNano"));
        assert!(s <= e && start <= s && e <= end, "{c} not within {root}");
    }
}

fn trace_args(url: &str, extra: &[&str]) -> Vec<osprey_server::trace::config::TraceOption> {
    let mut flags = vec![
        "mode=opentelemetry".to_string(),
        format!("opentelemetry,url={url}"),
        "opentelemetry,bsp_schedule_delay=50".into(),
    ];
    flags.extend(extra.iter().map(|s| s.to_string()));
    flags.iter().map(|f| f.parse().expect(f)).collect()
}

fn mlp_body(id: &str) -> Value {
    json!({"id": id, "inputs": [{"name": "input", "shape": [1, 64], "datatype": "FP32", "data": vec![0.0f32; 64]}]})
}

async fn rest_infer(s: &TestServer, id: &str, traceparent: Option<&str>) {
    let mut req = s
        .client
        .post(s.url("/v2/models/mlp/infer"))
        .body(mlp_body(id).to_string());
    if let Some(tp) = traceparent {
        req = req.header("traceparent", tp);
    }
    let r = req.send().await.expect("POST");
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap_or_default());
}

const TRACE_ID: &str = "0af7651916cd43dd8448eb211c80319c";
const PARENT_ID: &str = "b7ad6b7169203331";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rest_and_grpc_requests_export_their_stages() {
    let mut recv = receiver().await;
    let repo = temp_repo_with(&["mlp"]);
    let args = trace_args(&recv.url, &["rate=1", "level=TIMESTAMPS"]);
    let s = TestServer::start_with(repo.path(), |a| a.trace_config = args).await;

    rest_infer(&s, "rest-1", Some(&format!("00-{TRACE_ID}-{PARENT_ID}-01"))).await;
    let mut client = s.grpc_client().await;
    let mut req = tonic::Request::new(ModelInferRequest {
        model_name: "mlp".into(),
        id: "grpc-1".into(),
        inputs: vec![InferInputTensor {
            name: "input".into(),
            datatype: "FP32".into(),
            shape: vec![1, 64],
            ..Default::default()
        }],
        raw_input_contents: vec![vec![0u8; 256].into()],
        ..Default::default()
    });
    // A malformed traceparent is ignored: the request is traced in a trace of its own.
    req.metadata_mut()
        .insert("traceparent", "00-not-a-trace-01".parse().unwrap());
    client.model_infer(req).await.expect("gRPC infer");

    let spans = recv
        .until(|spans| {
            ["rest-1", "grpc-1"].iter().all(|id| {
                root_of(spans, id).is_some_and(|r| {
                    spans
                        .iter()
                        .filter(|s| s["parentSpanId"] == r["spanId"])
                        .count()
                        == 4
                })
            })
        })
        .await;
    assert_eq!(roots(&spans).len(), 2, "{spans:#?}");
    for (id, protocol) in [("rest-1", "http"), ("grpc-1", "grpc")] {
        let root = root_of(&spans, id).unwrap();
        assert_eq!(root["name"], "mlp infer");
        assert_eq!(attr(root, "model_name"), Some("mlp"));
        assert_eq!(attr(root, "model_version"), Some("1"));
        assert_eq!(attr(root, "protocol"), Some(protocol));
        assert_eq!(attr(root, "status"), Some("OK"));
        assert_eq!(root["status"]["code"], 1);
        assert_eq!(root["spanId"].as_str().unwrap().len(), 16);
        check_children(&spans, root);
    }
    let rest = root_of(&spans, "rest-1").unwrap();
    assert_eq!(rest["traceId"], TRACE_ID);
    assert_eq!(rest["parentSpanId"], PARENT_ID);
    let grpc = root_of(&spans, "grpc-1").unwrap();
    assert_ne!(grpc["traceId"], TRACE_ID);
    assert_eq!(grpc["traceId"].as_str().unwrap().len(), 32);
    assert!(grpc.get("parentSpanId").is_none(), "{grpc}");
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_two_traces_every_other_request() {
    let mut recv = receiver().await;
    let repo = temp_repo_with(&["mlp"]);
    let args = trace_args(&recv.url, &["rate=2", "level=TIMESTAMPS"]);
    let s = TestServer::start_with(repo.path(), |a| a.trace_config = args).await;
    for i in 0..4 {
        rest_infer(&s, &format!("r{i}"), None).await;
    }
    // Shutdown sends whatever is buffered before it returns.
    s.shutdown().await;
    let spans = recv.drain();
    let mut traced: Vec<&str> = roots(&spans)
        .iter()
        .map(|r| attr(r, "request_id").unwrap())
        .collect();
    traced.sort_unstable();
    assert_eq!(traced, ["r0", "r2"], "{spans:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tracing_is_off_until_the_setting_api_turns_it_on() {
    let mut recv = receiver().await;
    let repo = temp_repo_with(&["mlp"]);
    // No level: off, as in Triton.
    let args = trace_args(&recv.url, &["rate=1"]);
    let s = TestServer::start_with(repo.path(), |a| a.trace_config = args).await;
    let (status, v) = s.get("/v2/trace/setting").await;
    assert_eq!(status, 200);
    assert_eq!(v["trace_level"], json!(["OFF"]));
    assert_eq!(
        (v["trace_rate"].as_str(), v["trace_count"].as_str()),
        (Some("1"), Some("-1"))
    );
    rest_infer(&s, "while-off", None).await;

    let (status, v) = s
        .post_json("/v2/trace/setting", &json!({"trace_level": ["TIMESTAMPS"]}))
        .await;
    assert_eq!(
        (status, &v["trace_level"]),
        (200, &json!(["TIMESTAMPS"])),
        "{v}"
    );
    // One model turned off on its own, then back to the server's setting.
    let (status, v) = s
        .post_json(
            "/v2/models/mlp/trace/setting",
            &json!({"trace_level": ["OFF"]}),
        )
        .await;
    assert_eq!((status, &v["trace_level"]), (200, &json!(["OFF"])), "{v}");
    assert_eq!(
        s.get("/v2/trace/setting").await.1["trace_level"],
        json!(["TIMESTAMPS"])
    );
    rest_infer(&s, "model-off", None).await;
    let (status, v) = s
        .post_json(
            "/v2/models/mlp/trace/setting",
            &json!({"trace_level": null}),
        )
        .await;
    assert_eq!(
        (status, &v["trace_level"]),
        (200, &json!(["TIMESTAMPS"])),
        "{v}"
    );
    rest_infer(&s, "on", None).await;

    // Spans leave in order: had the earlier requests been traced, their spans came first.
    let spans = recv.until(|spans| root_of(spans, "on").is_some()).await;
    assert_eq!(roots(&spans).len(), 1, "{spans:#?}");

    let (status, v) = s
        .post_json("/v2/trace/setting", &json!({"trace_rate": "0"}))
        .await;
    assert_eq!(status, 400, "{v}");
    assert!(v["error"].as_str().unwrap().contains("rate"), "{v}");
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trace_settings_are_an_admin_api() {
    let repo = temp_repo_with(&["mlp"]);
    let s = TestServer::start_with(repo.path(), |a| a.admin_port = Some(0)).await;
    let admin = s.admin.expect("an admin listener");
    for path in ["/v2/trace/setting", "/v2/models/mlp/trace/setting"] {
        let (status, v) = s.get(path).await;
        assert_eq!(status, 403, "{path}: {v}");
        let r = s
            .client
            .get(format!("http://{admin}{path}"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{path}");
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["trace_level"], json!(["OFF"]), "{path}: {v}");
        assert_eq!(v["trace_rate"], "1000", "{path}: {v}");
    }
    s.shutdown().await;
}
