//! The binary itself: start-up failures are one clean line, never a panic.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;

fn osprey() -> Command {
    Command::new(env!("CARGO_BIN_EXE_osprey"))
}

#[test]
fn missing_onnxruntime_is_one_line_with_the_fix() {
    let out = osprey()
        .args([
            "serve",
            "--model-repository",
            concat!(env!("CARGO_MANIFEST_DIR"), "/../models"),
        ])
        .args([
            "--address",
            "127.0.0.1",
            "--http-port",
            "0",
            "--grpc-port",
            "0",
            "--metrics-port",
            "0",
        ])
        .args(["--onnxruntime-library", "/nonexistent/libonnxruntime.so"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let last = stderr.lines().last().unwrap_or_default();
    assert!(
        last.starts_with("osprey: ONNX Runtime library not found"),
        "{stderr}"
    );
    assert!(last.contains("pip install onnxruntime==1.31.1"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn missing_repository_is_reported() {
    let out = osprey()
        .args(["serve", "--model-repository", "/nonexistent-repo"])
        .args([
            "--address",
            "127.0.0.1",
            "--http-port",
            "0",
            "--grpc-port",
            "0",
            "--metrics-port",
            "0",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("model repository /nonexistent-repo is not a directory"),
        "{stderr}"
    );
}

#[test]
fn help_lists_the_triton_flags() {
    let out = osprey().args(["serve", "--help"]).output().unwrap();
    let help = String::from_utf8_lossy(&out.stdout);
    for flag in [
        "--model-repository",
        "--http-port",
        "--grpc-port",
        "--metrics-port",
        "--log-format",
        "--model",
    ] {
        assert!(help.contains(flag), "missing {flag} in help");
    }
}
