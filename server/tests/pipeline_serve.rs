//! Train → ONNX → serve: examples/pipelines/train_serve.py (scikit-learn's iris, a logistic
//! regression, skl2onnx into a Triton-layout repository) compiled by kfp 2.17.3 and run with
//! `osprey pipeline run`, then `osprey serve` (the built binary, as its own process) on the
//! repository artifact answers a KServe v2 request for the sample `train` predicted in Python
//! with the same label and probabilities.
//!
//! Needs .venv-kfp with scikit-learn and skl2onnx (scripts/setup.sh makes it); without it the
//! test says so and returns.

mod common;

use common::pipeline::{compile, kfp_bin, report, run, text};
use common::process::ServeProcess;
use serde_json::{json, Value};
use std::path::PathBuf;

/// Not one of the training rows' exact values, and close to the versicolor/virginica boundary
/// (scikit-learn: versicolor 0.53, virginica 0.47), so that a wrong conversion would show.
const SAMPLE: [f64; 4] = [6.0, 2.8, 4.9, 1.6];
const MODEL: &str = "iris-from-pipeline";

fn floats(v: &Value) -> Vec<f64> {
    v.as_array()
        .unwrap_or_else(|| panic!("not an array: {v}"))
        .iter()
        .map(|x| x.as_f64().unwrap_or_else(|| panic!("not a number: {x}")))
        .collect()
}

#[tokio::test]
async fn trained_model_served_from_its_repository_artifact_answers_as_in_python() {
    let Some(bin) = kfp_bin() else { return };
    let dir = tempfile::tempdir().expect("tempdir");
    let yaml = compile(&bin, "train_serve", dir.path());
    let root = dir.path().join("runs");
    let sample = serde_json::to_string(&SAMPLE).expect("JSON");
    let out = run(
        &bin,
        &yaml,
        &root,
        &[
            "-p",
            &format!("sample={sample}"),
            "-p",
            &format!("model_name={MODEL}"),
            "--quiet",
        ],
    );
    let log = text(&out);
    assert_eq!(out.status.code(), Some(0), "{log}");
    let r = report(&root);
    assert_eq!(r["state"], "SUCCEEDED", "{log}");
    for t in ["load-data", "train", "to-onnx"] {
        assert_eq!(r["tasks"][t]["state"], "SUCCEEDED", "{t}: {log}");
    }

    // What `train` computed with scikit-learn, also the pipeline's `prediction` output.
    let predicted = &r["tasks"]["train"]["outputs"]["parameters"]["Output"];
    assert_eq!(&r["outputs"]["prediction"], predicted);
    assert_eq!(floats(&predicted["sample"]), SAMPLE);
    let probabilities = floats(&predicted["probabilities"]);
    assert_eq!(probabilities.len(), 3, "{predicted}");
    assert!((probabilities.iter().sum::<f64>() - 1.0).abs() < 1e-9);
    let class_index = predicted["class_index"].as_i64().expect("class_index");
    let label = predicted["label"].as_str().expect("label");
    assert_eq!(
        label,
        ["setosa", "versicolor", "virginica"][usize::try_from(class_index).expect("index")]
    );

    // The artifacts' metadata as the tasks wrote it.
    let arts = |task: &str| r["tasks"][task]["outputs"]["artifacts"].clone();
    let data = arts("load-data");
    assert_eq!(data["train_set"]["metadata"]["rows"], 105);
    assert_eq!(data["test_set"]["metadata"]["rows"], 45);
    assert_eq!(data["train_set"]["type"]["schemaTitle"], "system.Dataset");
    let metrics = &r["outputs"]["metrics"];
    assert_eq!(metrics["type"]["schemaTitle"], "system.Metrics");
    let accuracy = metrics["metadata"]["accuracy"].as_f64().expect("accuracy");
    assert!(accuracy >= 0.9, "{metrics}");
    assert_eq!(metrics["metadata"]["test_rows"], 45);
    let trained = &arts("train")["model"];
    assert_eq!(
        trained["metadata"]["classes"],
        json!(["setosa", "versicolor", "virginica"])
    );

    // The repository artifact: a directory in Triton's layout.
    let repository = &r["outputs"]["repository"];
    assert_eq!(repository["type"]["schemaTitle"], "system.Model");
    assert_eq!(repository["metadata"]["model_name"], MODEL);
    assert_eq!(repository, &arts("to-onnx")["repository"]);
    let repo_dir = PathBuf::from(repository["uri"].as_str().expect("uri"));
    assert!(repo_dir.join(MODEL).join("config.pbtxt").is_file());
    assert!(repo_dir.join(MODEL).join("1/model.onnx").is_file());

    // Served as it is by the built binary.
    let server = ServeProcess::start(&repo_dir, &[]).await;
    let meta: Value = server
        .client
        .get(server.url(&format!("/v2/models/{MODEL}")))
        .send()
        .await
        .expect("GET model")
        .json()
        .await
        .expect("metadata JSON");
    assert_eq!(meta["inputs"][0]["name"], "float_input", "{meta}");
    assert_eq!(meta["inputs"][0]["shape"], json!([-1, 4]), "{meta}");

    let request = json!({
        "inputs": [{"name": "float_input", "shape": [1, 4], "datatype": "FP32", "data": SAMPLE}],
        "outputs": [{"name": "label"}, {"name": "probabilities"}],
    });
    let resp = server
        .client
        .post(server.url(&format!("/v2/models/{MODEL}/infer")))
        .json(&request)
        .send()
        .await
        .expect("POST infer");
    assert_eq!(resp.status(), 200);
    let answer: Value = resp.json().await.expect("answer JSON");
    let output = |name: &str| {
        answer["outputs"]
            .as_array()
            .and_then(|o| o.iter().find(|o| o["name"] == name))
            .unwrap_or_else(|| panic!("no output '{name}': {answer}"))
            .clone()
    };
    let served_label = output("label");
    assert_eq!(served_label["datatype"], "INT64", "{answer}");
    assert_eq!(served_label["data"], json!([class_index]), "{answer}");
    let served = output("probabilities");
    assert_eq!(served["datatype"], "FP32", "{answer}");
    assert_eq!(served["shape"], json!([1, 3]), "{answer}");
    for (i, (got, want)) in floats(&served["data"])
        .iter()
        .zip(&probabilities)
        .enumerate()
    {
        assert!(
            (got - want).abs() <= 1e-5,
            "probabilities[{i}]: served {got}, scikit-learn {want}\n{answer}"
        );
    }

    // The classification extension names the class from labels.txt, as `train` did.
    let request = json!({
        "inputs": [{"name": "float_input", "shape": [1, 4], "datatype": "FP32", "data": SAMPLE}],
        "outputs": [{"name": "probabilities", "parameters": {"classification": 1}}],
    });
    let answer: Value = server
        .client
        .post(server.url(&format!("/v2/models/{MODEL}/infer")))
        .json(&request)
        .send()
        .await
        .expect("POST infer")
        .json()
        .await
        .expect("answer JSON");
    let top = answer["outputs"][0]["data"][0].as_str().unwrap_or_default();
    assert!(
        top.ends_with(&format!(":{class_index}:{label}")),
        "{answer}"
    );

    let status = server.stop().await;
    assert_eq!(status.code(), Some(0), "osprey serve after SIGTERM");
}
