//! `osprey pull` against real servers on loopback: an S3-compatible server (moto in server
//! mode, from the project's .venv) and a plain HTTP file server.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use osprey_controller::pull::pull;
use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
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
