//! The explainer over REST (v2 `/explain` and v1 `:explain`): KernelSHAP on a linear model
//! equals coefficient x (x - baseline) and sums to f(x) - f(baseline); occlusion on text.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{models_dir, TestServer};
use serde_json::{json, Value};

const W: [f64; 4] = [1.0, -2.0, 3.0, 0.5];
const B: f64 = 0.25;

fn f(x: &[f64]) -> f64 {
    B + x.iter().zip(W).map(|(a, w)| a * w).sum::<f64>()
}

fn nums(v: &Value) -> Vec<f64> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap())
        .collect()
}

#[tokio::test]
async fn kernel_shap_on_a_linear_model() {
    let s = TestServer::start(&models_dir()).await;
    let x = [[1.5, -0.5, 2.0, 4.0], [0.1, 0.2, 0.3, 0.4]];
    let baseline = [0.5, 1.0, -1.0, 4.0];
    let body = json!({
        "inputs": [{"name": "x", "datatype": "FP32", "shape": [2, 4], "data": x.concat()}],
        "parameters": {"baseline": "0.5, 1, -1, 4", "seed": 3}
    });
    let (st, v) = s.post_json("/v2/models/linear/explain", &body).await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["method"], "kernel_shap");
    assert_eq!(v["output"], "y");
    let ex = v["explanations"].as_array().unwrap();
    assert_eq!(ex.len(), 2);
    for (row, e) in x.iter().zip(ex) {
        let phi = nums(&e["attributions"]);
        assert_eq!(nums(&e["baseline"]), baseline.to_vec());
        for j in 0..4 {
            let want = W[j] * (row[j] - baseline[j]);
            assert!(
                (phi[j] - want).abs() < 1e-4,
                "feature {j}: {} vs {want}",
                phi[j]
            );
        }
        let sum: f64 = phi.iter().sum();
        let fx = e["prediction"].as_f64().unwrap();
        let fb = e["base_value"].as_f64().unwrap();
        assert!((fx - f(row)).abs() < 1e-4 && (fb - f(&baseline)).abs() < 1e-4);
        assert!((sum - (fx - fb)).abs() < 1e-6, "{sum} vs {}", fx - fb);
    }

    // KServe v1 `:explain` with the default baseline 0.
    let (st, v) = s
        .post_json(
            "/v1/models/linear:explain",
            &json!({"instances": [[1.0, 1.0, 1.0, 1.0]]}),
        )
        .await;
    assert_eq!(st, 200, "{v}");
    let phi = nums(&v["explanations"][0]["attributions"]);
    for j in 0..4 {
        assert!((phi[j] - W[j]).abs() < 1e-4, "{phi:?}");
    }
    s.shutdown().await;
}

#[tokio::test]
async fn sampled_kernel_shap_sums_to_the_difference() {
    let s = TestServer::start(&models_dir()).await;
    // 64 features: 2^64 coalitions, so KernelSHAP samples (through the MLP's batcher).
    let x: Vec<f32> = (0..64).map(|i| (i as f32 * 0.37).sin()).collect();
    let body = json!({
        "inputs": [{"name": "input", "datatype": "FP32", "shape": [1, 64], "data": x}],
        "parameters": {"samples": 256, "target": 3}
    });
    let (st, v) = s.post_json("/v2/models/mlp/explain", &body).await;
    assert_eq!(st, 200, "{v}");
    let e = &v["explanations"][0];
    assert_eq!(e["target"], "element 3");
    let phi = nums(&e["attributions"]);
    assert_eq!(phi.len(), 64);
    let sum: f64 = phi.iter().sum();
    let diff = e["prediction"].as_f64().unwrap() - e["base_value"].as_f64().unwrap();
    assert!((sum - diff).abs() < 1e-4, "{sum} vs {diff}");
    assert_eq!(v["parameters"]["evaluated_rows"], 258);
    // The perturbed rows went through the batcher in batches.
    let (_, stats) = s.get("/v2/models/mlp/stats").await;
    let st = &stats["model_stats"][0];
    let rows_run: u64 = st["batch_stats"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["batch_size"].as_u64().unwrap() * b["compute_infer"]["count"].as_u64().unwrap())
        .sum();
    assert_eq!(rows_run, 258, "{st}");
    assert!(
        st["execution_count"].as_u64().unwrap() <= 258 / 64 + 2,
        "{st}"
    );

    // Iris (probabilities of the predicted class): efficiency holds for a non-linear model.
    let body = json!({"inputs": [{"name": "float_input", "datatype": "FP32", "shape": [1, 4], "data": [5.9, 3.0, 5.1, 1.8]}]});
    let (st, v) = s.post_json("/v2/models/iris/explain", &body).await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["output"], "probabilities");
    let e = &v["explanations"][0];
    assert_eq!(e["target"], "element 2");
    let sum: f64 = nums(&e["attributions"]).iter().sum();
    let diff = e["prediction"].as_f64().unwrap() - e["base_value"].as_f64().unwrap();
    assert!((sum - diff).abs() < 1e-6);
    s.shutdown().await;
}

#[tokio::test]
async fn occlusion_on_text() {
    let s = TestServer::start(&models_dir()).await;
    let body = json!({"inputs": [{"name": "text", "datatype": "BYTES", "shape": [1, 1], "data": ["this movie was great fun"]}]});
    let (st, v) = s
        .post_json("/v2/models/text_sentiment/explain", &body)
        .await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["method"], "occlusion");
    let e = &v["explanations"][0];
    assert_eq!(
        e["features"],
        json!(["this", "movie", "was", "great", "fun"])
    );
    assert_eq!(e["baseline"], "word removed");
    let phi = nums(&e["attributions"]);
    // "great" carries the positive class more than any other word.
    let best = (0..phi.len())
        .max_by(|&a, &b| phi[a].total_cmp(&phi[b]))
        .unwrap();
    assert_eq!(best, 3, "{phi:?}");

    // The encoder: word pieces, masked through the attention mask; cosine target by config.
    let body = json!({"inputs": [{"name": "text", "datatype": "BYTES", "shape": [1, 1], "data": ["Osprey serves embeddings"]}]});
    let (st, v) = s.post_json("/v2/models/minilm/explain", &body).await;
    assert_eq!(st, 200, "{v}");
    let e = &v["explanations"][0];
    let features = e["features"].as_array().unwrap();
    assert!(
        features.len() >= 3 && !features.contains(&json!("[CLS]")),
        "{e}"
    );
    assert!((e["prediction"].as_f64().unwrap() - 1.0).abs() < 1e-5);
    assert!(nums(&e["attributions"]).iter().all(|a| *a > 0.0), "{e}");
    s.shutdown().await;
}

#[tokio::test]
async fn bad_explain_parameters_name_the_field() {
    let s = TestServer::start(&models_dir()).await;
    let x = json!([{"name": "x", "datatype": "FP32", "shape": [1, 4], "data": [1, 2, 3, 4]}]);
    for (params, field) in [
        (json!({"method": "lime"}), "method"),
        (json!({"samples": 0}), "samples"),
        (json!({"baseline": "1,2"}), "baseline"),
        (json!({"target": 9}), "target"),
        (json!({"output": "nope"}), "output"),
    ] {
        let (st, v) = s
            .post_json(
                "/v2/models/linear/explain",
                &json!({"inputs": x, "parameters": params}),
            )
            .await;
        assert_eq!(st, 400, "{params}: {v}");
        assert!(
            v["error"].as_str().unwrap().contains(field),
            "{params}: {v}"
        );
    }
    let (st, _) = s
        .post_json("/v1/models/linear:predictx", &json!({"instances": []}))
        .await;
    assert_eq!(st, 404);
    let (st, v) = s
        .post_json("/v1/models/linear:explain", &json!({"instances": ["a"]}))
        .await;
    assert_eq!(st, 400, "{v}");
    s.assert_still_serving().await;
    s.shutdown().await;
}
