//! What a Triton user meets in the first week: configuration fields Osprey does not implement
//! are refused by name (never loaded while doing something else), unloading a start-up model
//! keeps the server ready, and `GET /v2` lists every extension served.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{index_row, temp_repo_with, TestServer};
use serde_json::json;

/// The MLP's configuration with `extra` appended.
fn with_config(repo: &std::path::Path, extra: &str) {
    let path = repo.join("mlp/config.pbtxt");
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::write(&path, format!("{text}\n{extra}\n")).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unimplemented_config_fields_are_refused_by_name() {
    for (extra, field) in [
        (
            "instance_group [ { count: 1 kind: KIND_MODEL } ]",
            "KIND_MODEL",
        ),
        (
            "optimization { execution_accelerators { gpu_execution_accelerator [ { name: \"tensorrt\" } ] } }",
            "optimization.execution_accelerators",
        ),
    ] {
        let repo = temp_repo_with(&["mlp", "iris"]);
        with_config(repo.path(), extra);
        let s = TestServer::start_with(repo.path(), |a| a.strict_readiness = false).await;
        let row = index_row(&s, "mlp").await;
        assert_eq!(row["state"], "UNAVAILABLE", "{extra}: {row}");
        assert!(
            row["reason"].as_str().unwrap().contains(field),
            "{extra}: {row}"
        );
        let (status, v) = s.get("/v2/models/mlp/ready").await;
        assert_ne!(status, 200, "{extra}: {v}");
        let (status, v) = s
            .post_json("/v2/repository/models/mlp/load", &json!({}))
            .await;
        assert_eq!(status, 400, "{extra}: {v}");
        assert!(v["error"].as_str().unwrap().contains(field), "{v}");
        // The rest of the repository serves.
        assert_eq!(s.get("/v2/models/iris/ready").await.0, 200);
        s.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unloading_a_start_up_model_keeps_the_server_ready() {
    let repo = temp_repo_with(&["mlp", "iris"]);
    let s = TestServer::start(repo.path()).await;
    assert_eq!(s.get("/v2/health/ready").await.0, 200);
    let (status, _) = s
        .post_json("/v2/repository/models/iris/unload", &json!({}))
        .await;
    assert_eq!(status, 200);
    assert_eq!(s.get("/v2/models/iris/ready").await.0, 503);
    assert_eq!(
        s.get("/v2/health/ready").await.0,
        200,
        "an unloaded model is no longer a loaded one"
    );
    let (status, _) = s
        .post_json("/v2/repository/models/iris/load", &json!({}))
        .await;
    assert_eq!(status, 200);
    assert_eq!(s.get("/v2/health/ready").await.0, 200);
    s.shutdown().await;
}

#[tokio::test]
async fn server_metadata_lists_every_extension_served() {
    let repo = temp_repo_with(&["iris"]);
    let s = TestServer::start(repo.path()).await;
    let (status, v) = s.get("/v2").await;
    assert_eq!(status, 200);
    let ext: Vec<&str> = v["extensions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e.as_str().unwrap())
        .collect();
    for e in [
        "binary_tensor_data",
        "classification",
        "model_repository",
        "model_configuration",
        "schedule_policy",
        "statistics",
    ] {
        assert!(ext.contains(&e), "{e} in {ext:?}");
    }
    // Classification is really served.
    let body = json!({"inputs": [{"name": "float_input", "shape": [1, 4], "datatype": "FP32",
        "data": [5.1, 3.5, 1.4, 0.2]}],
        "outputs": [{"name": "probabilities", "parameters": {"classification": 1}}]});
    let (status, v) = s.post_json("/v2/models/iris/infer", &body).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["outputs"][0]["datatype"], "BYTES", "{v}");
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn model_control_none_refuses_the_repository_api() {
    use osprey_protocol::grpc::inference::RepositoryModelLoadRequest;
    let repo = temp_repo_with(&["iris"]);
    let s = TestServer::start_with(repo.path(), |a| {
        a.model_control_mode = osprey_server::model::control::ModelControl::None;
    })
    .await;
    let (status, v) = s
        .post_json("/v2/repository/models/iris/load", &json!({}))
        .await;
    assert_eq!(status, 400, "{v}");
    assert!(
        v["error"]
            .as_str()
            .unwrap()
            .contains("--model-control-mode none"),
        "{v}"
    );
    let (status, _) = s
        .post_json("/v2/repository/models/iris/unload", &json!({}))
        .await;
    assert_eq!(status, 400);
    assert_eq!(s.get("/v2/models/iris/ready").await.0, 200);
    let mut g = s.grpc_client().await;
    let e = g
        .repository_model_load(RepositoryModelLoadRequest {
            model_name: "iris".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), tonic::Code::Unimplemented, "{e}");
    s.shutdown().await;
}

/// Waits (bounded) until `check` holds.
async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !check().await {
        assert!(std::time::Instant::now() < deadline, "never: {what}");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn poll_mode_follows_the_repository() {
    let repo = temp_repo_with(&["iris"]);
    let s = TestServer::start_with(repo.path(), |a| {
        a.model_control_mode = osprey_server::model::control::ModelControl::Poll;
        a.repository_poll_secs = 1;
    })
    .await;
    assert_eq!(s.get("/v2/models/iris/ready").await.0, 200);
    let (status, _) = s
        .post_json("/v2/repository/models/iris/unload", &json!({}))
        .await;
    assert_eq!(status, 400, "the API is closed in poll mode");

    // A new model directory is loaded.
    common::copy_dir(&common::models_dir().join("mlp"), &repo.path().join("mlp"));
    eventually("the new model is ready", || async {
        s.get("/v2/models/mlp/ready").await.0 == 200
    })
    .await;
    // A changed configuration is picked up.
    let path = repo.path().join("mlp/config.pbtxt");
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.contains("max_batch_size: 64"), "{text}");
    std::fs::write(
        &path,
        text.replace("max_batch_size: 64", "max_batch_size: 16"),
    )
    .unwrap();
    eventually("the changed configuration is served", || async {
        let (_, c) = s.get("/v2/models/mlp/config").await;
        c["max_batch_size"] == 16
    })
    .await;
    assert_eq!(s.get("/v2/models/mlp/ready").await.0, 200);
    // A removed model is unloaded.
    std::fs::remove_dir_all(repo.path().join("mlp")).unwrap();
    eventually("the removed model is unloaded", || async {
        s.get("/v2/models/mlp/ready").await.0 != 200
    })
    .await;
    assert_eq!(s.get("/v2/models/iris/ready").await.0, 200);
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_reload_keeps_the_loaded_model_serving() {
    let repo = temp_repo_with(&["mlp"]);
    let s = TestServer::start(repo.path()).await;
    with_config(repo.path(), "this is not protobuf text");
    let (status, v) = s
        .post_json("/v2/repository/models/mlp/load", &json!({}))
        .await;
    assert_eq!(status, 400, "{v}");
    assert_eq!(s.get("/v2/models/mlp/ready").await.0, 200);
    s.assert_still_serving().await;
    assert_eq!(index_row(&s, "mlp").await["state"], "READY");
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_load_request_can_carry_the_configuration() {
    let repo = temp_repo_with(&["mlp"]);
    let s = TestServer::start(repo.path()).await;
    let config = json!({"name": "mlp", "platform": "onnxruntime_onnx", "max_batch_size": 8,
        "dynamic_batching": {"max_queue_delay_microseconds": 100}})
    .to_string();
    let (status, v) = s
        .post_json(
            "/v2/repository/models/mlp/load",
            &json!({"parameters": {"config": config}}),
        )
        .await;
    assert_eq!(status, 200, "{v}");
    let (_, c) = s.get("/v2/models/mlp/config").await;
    assert_eq!(c["max_batch_size"], 8, "{c}");
    assert_eq!(
        c["dynamic_batching"]["max_queue_delay_microseconds"], 100,
        "{c}"
    );
    s.assert_still_serving().await;

    for (params, says) in [
        (json!({"config": "{not json"}), "config parameter"),
        (json!({"config": 3}), "must be a string"),
        (json!({"file:1/model.onnx": "AAAA"}), "file:1/model.onnx"),
        (
            json!({"config": json!({"name": "mlp", "model_warmup": [{"name": "w"}]}).to_string()}),
            "model_warmup",
        ),
    ] {
        let (status, v) = s
            .post_json(
                "/v2/repository/models/mlp/load",
                &json!({"parameters": params}),
            )
            .await;
        assert_eq!(status, 400, "{params}: {v}");
        assert!(v["error"].as_str().unwrap().contains(says), "{params}: {v}");
        assert_eq!(s.get("/v2/models/mlp/ready").await.0, 200, "{params}");
    }
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exit_on_error_refuses_to_start_with_a_broken_model() {
    let repo = temp_repo_with(&["mlp", "iris"]);
    with_config(repo.path(), "this is not protobuf text");
    let mut args = osprey_server::cli::ServeArgs::for_tests(repo.path().to_path_buf());
    args.exit_on_error = true;
    let e = osprey_server::server::build_state(&args)
        .await
        .err()
        .expect("the server does not start");
    let e = e.to_string();
    assert!(e.contains("mlp") && e.contains("--exit-on-error"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_under_load_fails_no_request() {
    let repo = temp_repo_with(&["mlp"]);
    let s = std::sync::Arc::new(TestServer::start(repo.path()).await);
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let body = json!({"inputs": [{"name": "input", "shape": [1, 64], "datatype": "FP32",
        "data": vec![0.5f32; 64]}]});
    let clients: Vec<_> = (0..8)
        .map(|_| {
            let (s, stop, body) = (s.clone(), stop.clone(), body.clone());
            tokio::spawn(async move {
                let (mut ok, mut failed) = (0u64, Vec::new());
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let (status, v) = s.post_json("/v2/models/mlp/infer", &body).await;
                    if status == 200 {
                        ok += 1;
                    } else {
                        failed.push(format!("{status} {v}"));
                    }
                }
                (ok, failed)
            })
        })
        .collect();
    for _ in 0..5 {
        let (status, v) = s
            .post_json("/v2/repository/models/mlp/load", &json!({}))
            .await;
        assert_eq!(status, 200, "{v}");
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut total = 0;
    for c in clients {
        let (ok, failed) = c.await.unwrap();
        assert!(
            failed.is_empty(),
            "{} failed, e.g. {:?}",
            failed.len(),
            failed.first()
        );
        total += ok;
    }
    assert!(total > 0, "the clients ran");
}

/// The value of the sample `series` (name and labels, exactly as rendered).
fn sample(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .unwrap_or_else(|| panic!("{series} in\n{text}"))
        .parse()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tritons_metric_names_units_help_and_types() {
    let repo = temp_repo_with(&["mlp"]);
    let s = TestServer::start(repo.path()).await;
    s.assert_still_serving().await;
    let bad = json!({"inputs": [{"name": "input", "shape": [1, 3], "datatype": "FP32",
        "data": [1, 2, 3]}]});
    assert_eq!(s.post_json("/v2/models/mlp/infer", &bad).await.0, 400);
    let text = s.metrics_text().await;
    let mv = "{model=\"mlp\",version=\"1\"}";
    assert!(sample(&text, &format!("nv_inference_request_success{mv}")) >= 1.0);
    assert!(sample(&text, &format!("nv_inference_count{mv}")) >= 1.0);
    assert!(sample(&text, &format!("nv_inference_exec_count{mv}")) >= 1.0);
    assert!(sample(&text, &format!("nv_inference_request_duration_us{mv}")) >= 1.0);
    assert!(
        sample(
            &text,
            &format!("nv_inference_compute_infer_duration_us{mv}")
        ) >= 1.0
    );
    sample(&text, &format!("nv_inference_queue_duration_us{mv}"));
    sample(&text, &format!("nv_inference_pending_request_count{mv}"));
    assert_eq!(
        sample(
            &text,
            "nv_inference_request_failure{model=\"mlp\",version=\"1\",reason=\"OTHER\"}"
        ),
        1.0
    );
    assert!(
        text.contains("# TYPE nv_inference_request_success counter"),
        "{text}"
    );
    assert!(
        text.contains("# TYPE nv_inference_pending_request_count gauge"),
        "{text}"
    );
    assert!(
        text.contains("# TYPE process_cpu_seconds_total counter"),
        "{text}"
    );
    assert!(text.contains("nv_cpu_memory_used_bytes"), "{text}");
    // Osprey's own series stay beside them.
    assert!(text.contains("osprey_inference_request_duration_seconds_bucket"));
    // Every series has its # HELP and # TYPE.
    for line in text
        .lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
    {
        let name = line.split([' ', '{']).next().unwrap();
        let family = ["_bucket", "_sum", "_count"]
            .iter()
            .filter_map(|s| name.strip_suffix(s))
            .find(|f| text.contains(&format!("# TYPE {f} histogram")))
            .unwrap_or(name);
        assert!(
            text.contains(&format!("# HELP {family} ")),
            "no HELP for {family}"
        );
        assert!(
            text.contains(&format!("# TYPE {family} ")),
            "no TYPE for {family}"
        );
    }
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kserve_v1_predict() {
    let repo = temp_repo_with(&["iris", "linear", "text_sentiment"]);
    let s = TestServer::start(repo.path()).await;
    // Two rows of the linear model (y = x . [1, -2, 3, 0.5] + 0.25).
    let (status, v) = s
        .post_json(
            "/v1/models/linear:predict",
            &json!({"instances": [[1.0, 0.0, 0.0, 0.0], [0.0, 1.0, 1.0, 2.0]]}),
        )
        .await;
    assert_eq!(status, 200, "{v}");
    let p = v["predictions"].as_array().unwrap();
    assert_eq!(p.len(), 2, "{v}");
    assert!((p[0][0].as_f64().unwrap() - 1.25).abs() < 1e-5, "{v}");
    assert!((p[1][0].as_f64().unwrap() - 2.25).abs() < 1e-5, "{v}");
    // The `inputs` key, and a model whose first output is a class index.
    let (status, v) = s
        .post_json(
            "/v1/models/iris:predict",
            &json!({"inputs": [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]]}),
        )
        .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["predictions"], json!([0, 2]), "{v}");
    // Strings for a text model.
    let (status, v) = s
        .post_json(
            "/v1/models/text_sentiment:predict",
            &json!({"instances": ["a wonderful film", "awful, boring and too long"]}),
        )
        .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["predictions"].as_array().unwrap().len(), 2, "{v}");

    for (body, says) in [
        (json!({"instances": [[1, 2, 3, 4], [1, 2]]}), "instances[1]"),
        (json!({"instances": [[1, 2, 3]]}), "x"),
        (json!({"rows": [[1, 2, 3, 4]]}), "'instances'"),
        (
            json!({"instances": [[1, 2, 3, 4]], "inputs": [[1, 2, 3, 4]]}),
            "not both",
        ),
        (json!({"instances": [["a", "b", "c", "d"]]}), "x"),
    ] {
        let (status, v) = s.post_json("/v1/models/linear:predict", &body).await;
        assert_eq!(status, 400, "{body}: {v}");
        assert!(v["error"].as_str().unwrap().contains(says), "{body}: {v}");
    }
    assert_eq!(
        s.post_json("/v1/models/nope:predict", &json!({"instances": [1]}))
            .await
            .0,
        404
    );
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn model_warmup_runs_on_every_instance_before_ready() {
    let warmup = |name: &str, dims: &str, data: &str| {
        format!(
            "model_warmup [ {{ name: \"{name}\" batch_size: 2 count: 3 inputs {{ key: \"input\" \
             value: {{ data_type: TYPE_FP32 dims: [ {dims} ] {data} }} }} }} ]"
        )
    };
    // Zero data, random data and a file of raw little-endian values load and serve.
    for data in [
        "zero_data: true",
        "random_data: true",
        "input_data_file: \"row\"",
    ] {
        let repo = temp_repo_with(&["mlp"]);
        std::fs::create_dir_all(repo.path().join("mlp/warmup")).unwrap();
        std::fs::write(repo.path().join("mlp/warmup/row"), vec![0u8; 2 * 64 * 4]).unwrap();
        with_config(
            repo.path(),
            &format!(
                "{}\ninstance_group [ {{ count: 2 kind: KIND_CPU }} ]",
                warmup("w", "64", data)
            ),
        );
        let s = TestServer::start(repo.path()).await;
        assert_eq!(index_row(&s, "mlp").await["state"], "READY", "{data}");
        s.assert_still_serving().await;
        s.shutdown().await;
    }
    // A sample the model refuses, and a missing file: the model is not READY, and says which.
    for (dims, data, says) in [
        ("63", "zero_data: true", "model_warmup 'bad_dims' failed"),
        (
            "64",
            "input_data_file: \"nope\"",
            "input_data_file 'nope' not found",
        ),
    ] {
        let repo = temp_repo_with(&["mlp", "iris"]);
        let name = if dims == "63" { "bad_dims" } else { "no_file" };
        with_config(repo.path(), &warmup(name, dims, data));
        let s = TestServer::start_with(repo.path(), |a| a.strict_readiness = false).await;
        let row = index_row(&s, "mlp").await;
        assert_eq!(row["state"], "UNAVAILABLE", "{row}");
        assert!(row["reason"].as_str().unwrap().contains(says), "{row}");
        assert_eq!(s.get("/v2/models/iris/ready").await.0, 200);
        s.shutdown().await;
    }
}

/// KServe's `storageUri` names the model itself: a directory holding `model.onnx` (no
/// config.pbtxt, no version directory) is served as a one-model repository under
/// `--model-name`, and a Triton-layout model directory under that name too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_model_directory_is_served_as_one_model() {
    let linear = common::models_dir().join("linear/1/model.onnx");
    // KServe's layout: the model file at the root.
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(&linear, dir.path().join("model.onnx")).unwrap();
    let s =
        TestServer::start_with(dir.path(), |a| a.model_name = Some("style-sample".into())).await;
    let (status, v) = s.get("/v2/models/style-sample").await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["versions"], json!(["1"]), "{v}");
    let (status, v) = s
        .post_json(
            "/v1/models/style-sample:predict",
            &json!({"instances": [[1.0, 0.0, 0.0, 0.0]]}),
        )
        .await;
    assert_eq!(status, 200, "{v}");
    assert!(
        (v["predictions"][0][0].as_f64().unwrap() - 1.25).abs() < 1e-5,
        "{v}"
    );
    let (_, index) = s.post_json("/v2/repository/index", &json!({})).await;
    assert_eq!(index.as_array().unwrap().len(), 1, "{index}");
    assert_eq!(index[0]["name"], "style-sample", "{index}");
    // Only that model: a load of another name is unknown, a reload of it works.
    let (status, _) = s
        .post_json("/v2/repository/models/linear/load", &json!({}))
        .await;
    assert_eq!(status, 404);
    let (status, v) = s
        .post_json("/v2/repository/models/style-sample/load", &json!({}))
        .await;
    assert_eq!(status, 200, "{v}");
    s.shutdown().await;

    // A Triton model directory (config.pbtxt naming it "linear", version 1) under another name.
    let dir = tempfile::tempdir().unwrap();
    common::copy_dir(&common::models_dir().join("linear"), dir.path());
    let s = TestServer::start_with(dir.path(), |a| a.model_name = Some("renamed".into())).await;
    let (status, v) = s.get("/v2/models/renamed/ready").await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(s.get("/v2/models/linear/ready").await.0, 404);
    s.shutdown().await;
}

/// Triton's `reshape`: clients send and receive the configured `dims`; the model sees its own
/// shapes. A reshape that does not fit the model, or changes the element count, is refused by
/// name.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reshape_gives_clients_the_configured_dims() {
    let repo = temp_repo_with(&["linear"]);
    let path = repo.path().join("linear/config.pbtxt");
    let text = std::fs::read_to_string(&path).unwrap();
    let text = text
        .replace("dims: [ 4 ] }", "dims: [ 2, 2 ] reshape { shape: [ 4 ] } }")
        .replace("dims: [ 1 ] }", "dims: [ 1, 1 ] reshape { shape: [ 1 ] } }");
    std::fs::write(&path, &text).unwrap();
    let s = TestServer::start(repo.path()).await;
    let (status, v) = s.get("/v2/models/linear").await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["inputs"][0]["shape"], json!([-1, 2, 2]), "{v}");
    assert_eq!(v["outputs"][0]["shape"], json!([-1, 1, 1]), "{v}");
    // Two rows of [[1, 0], [0, 0]] and [[0, 1], [1, 2]]: y = 1.25 and 2.25.
    let body = json!({"inputs": [{"name": "x", "datatype": "FP32", "shape": [2, 2, 2],
        "data": [1, 0, 0, 0, 0, 1, 1, 2]}]});
    let (status, v) = s.post_json("/v2/models/linear/infer", &body).await;
    assert_eq!(status, 200, "{v}");
    let y = &v["outputs"][0];
    assert_eq!(y["shape"], json!([2, 1, 1]), "{v}");
    let data: Vec<f64> = y["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d.as_f64().unwrap())
        .collect();
    assert!(
        (data[0] - 1.25).abs() < 1e-5 && (data[1] - 2.25).abs() < 1e-5,
        "{v}"
    );
    // The old shape is now the wrong one.
    let body = json!({"inputs": [{"name": "x", "datatype": "FP32", "shape": [1, 4],
        "data": [1, 0, 0, 0]}]});
    assert_eq!(s.post_json("/v2/models/linear/infer", &body).await.0, 400);
    s.shutdown().await;

    for (from, to, says) in [
        (
            "dims: [ 4 ] }",
            "dims: [ 2, 2 ] reshape { shape: [ 2, 2 ] } }",
            "the model's shape",
        ),
        (
            "dims: [ 4 ] }",
            "dims: [ 3 ] reshape { shape: [ 4 ] } }",
            "4 elements",
        ),
    ] {
        let repo = temp_repo_with(&["linear"]);
        let path = repo.path().join("linear/config.pbtxt");
        let text = std::fs::read_to_string(&path).unwrap().replace(from, to);
        std::fs::write(&path, text).unwrap();
        let s = TestServer::start_with(repo.path(), |a| a.strict_readiness = false).await;
        let row = index_row(&s, "linear").await;
        assert_eq!(row["state"], "UNAVAILABLE", "{to}: {row}");
        let reason = row["reason"].as_str().unwrap();
        assert!(
            reason.contains("input 'x' reshape") && reason.contains(says),
            "{row}"
        );
        s.shutdown().await;
    }
}
