//! The binary itself: start-up failures are one clean line, never a panic.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;

/// Every listener on loopback, on a free port.
const LOOPBACK_ANY_PORT: [&str; 8] = [
    "--address",
    "127.0.0.1",
    "--http-port",
    "0",
    "--grpc-port",
    "0",
    "--metrics-port",
    "0",
];

fn osprey() -> Command {
    Command::new(env!("CARGO_BIN_EXE_osprey"))
}

/// `osprey serve` on the bundled models, on loopback, with `flags`: its exit and output (for
/// flags that stop the start; it is not waited on otherwise).
fn serve_with(flags: &[&str]) -> std::process::Output {
    osprey()
        .args([
            "serve",
            "--model-repository",
            concat!(env!("CARGO_MANIFEST_DIR"), "/../models"),
        ])
        .args(LOOPBACK_ANY_PORT)
        .args(flags)
        .output()
        .unwrap()
}

#[test]
fn missing_onnxruntime_is_one_line_with_the_fix() {
    let out = osprey()
        .args([
            "serve",
            "--model-repository",
            concat!(env!("CARGO_MANIFEST_DIR"), "/../models"),
        ])
        .args(LOOPBACK_ANY_PORT)
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
        .args(LOOPBACK_ANY_PORT)
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

/// Reads stderr lines until one contains `what`, returning it (bounded by the server's start).
fn line_with(lines: &mut impl Iterator<Item = String>, what: &str) -> String {
    lines
        .find(|l| l.contains(what))
        .unwrap_or_else(|| panic!("no line with {what:?}"))
}

#[test]
fn requests_are_logged_with_their_id_in_plain_text() {
    use std::io::{BufRead, BufReader, Read, Write};
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
    let mut child = osprey()
        .current_dir(root)
        .args(["serve", "--model-repository", "models", "--model", "iris"])
        .args(LOOPBACK_ANY_PORT)
        .arg("--log-requests")
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let mut lines = BufReader::new(stderr).lines().map_while(Result::ok);
    let listening = line_with(&mut lines, "HTTP service listening on");
    let addr = listening.rsplit(' ').next().unwrap().trim().to_string();
    // The listeners are announced after the start-up models are loaded.

    let body = r#"{"inputs":[{"name":"float_input","shape":[1,4],"datatype":"FP32","data":[5.1,3.5,1.4,0.2]}]}"#;
    let mut tcp = std::net::TcpStream::connect(&addr).unwrap();
    write!(
        tcp,
        "POST /v2/models/iris/infer HTTP/1.1\r\nhost: t\r\nx-request-id: req-7f3a\r\n\
         connection: close\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut answer = String::new();
    tcp.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(
        answer.to_lowercase().contains("x-request-id: req-7f3a"),
        "the request id comes back: {answer}"
    );

    let access = line_with(&mut lines, "req-7f3a");
    let _ = child.kill();
    let _ = child.wait();
    assert!(access.contains("osprey::access"), "{access}");
    assert!(access.contains("/v2/models/iris/infer"), "{access}");
    assert!(access.contains("status=200"), "{access}");
    assert!(access.contains("duration_us="), "{access}");
    assert!(
        !listening.contains('\u{1b}') && !access.contains('\u{1b}'),
        "no colour codes when stderr is not a terminal: {access:?}"
    );
}

#[test]
fn a_cache_of_size_zero_or_of_unknown_kind_is_refused_at_start() {
    for (spec, why) in [
        (
            "local,size=0",
            "--cache-config local,size=0: size must be > 0",
        ),
        ("redis,size=1024", "unknown cache 'redis'"),
        ("local,size=lots", "size 'lots' is not a number of bytes"),
    ] {
        let out = serve_with(&["--cache-config", spec]);
        assert!(!out.status.success(), "{spec} started");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(why), "{spec}: {stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
}

#[test]
fn a_bad_metrics_config_is_refused_at_start_naming_the_flag() {
    for (spec, why) in [
        ("summary_latencies=maybe", "'maybe' is not true or false"),
        (
            "summary_quantiles=0.5:0.05,2:0.01",
            "the quantile must be in (0, 1)",
        ),
        ("summary_quantiles=0.5", "is not a quantile:error pair"),
        ("histogram_buckets=1", "unknown key 'histogram_buckets'"),
    ] {
        let out = serve_with(&[
            "--metrics-config",
            "summary_latencies=true",
            "--metrics-config",
            spec,
        ]);
        assert!(!out.status.success(), "{spec} started");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("--metrics-config"), "{spec}: {stderr}");
        assert!(stderr.contains(why), "{spec}: {stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
}

#[test]
fn a_model_enabling_the_cache_without_a_server_cache_loads_with_a_warning() {
    use std::io::{BufRead, BufReader};
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
    let repo = tempfile::tempdir().unwrap();
    let iris = repo.path().join("iris");
    std::fs::create_dir_all(iris.join("1")).unwrap();
    let models = std::path::Path::new(root).join("models/iris");
    for f in ["config.pbtxt", "labels.txt", "1/model.onnx"] {
        std::fs::copy(models.join(f), iris.join(f)).unwrap();
    }
    let config = std::fs::read_to_string(iris.join("config.pbtxt")).unwrap();
    std::fs::write(
        iris.join("config.pbtxt"),
        format!("{config}\nresponse_cache {{ enable: true }}\n"),
    )
    .unwrap();
    let mut child = osprey()
        .current_dir(root)
        .args(["serve", "--model-repository"])
        .arg(repo.path())
        .args(LOOPBACK_ANY_PORT)
        .args(["--log-format", "text"])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    // Start-up models are loaded before the listeners are announced.
    let before: Vec<String> = BufReader::new(stderr)
        .lines()
        .map_while(Result::ok)
        .take_while(|l| !l.contains("HTTP service listening on"))
        .collect();
    let _ = child.kill();
    let _ = child.wait();
    let warning = before
        .iter()
        .find(|l| l.contains("response_cache"))
        .unwrap_or_else(|| panic!("no warning in {before:#?}"));
    assert!(warning.contains("WARN"), "{warning}");
    assert!(warning.contains("'iris'"), "{warning}");
    assert!(warning.contains("--cache-config"), "{warning}");
    assert!(
        !before.iter().any(|l| l.contains("failed to load")),
        "the model loads: {before:#?}"
    );
}

#[test]
fn bad_trace_config_stops_the_start_naming_the_flag() {
    for (value, words) in [
        ("rate=0", "rate"),
        ("level=LOUD", "level"),
        ("mode=triton", "use mode=opentelemetry"),
        ("opentelemetry,url=", "url"),
        ("colour=red", "colour"),
    ] {
        let out = serve_with(&["--trace-config", value]);
        assert!(!out.status.success(), "{value}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains("--trace-config") && stderr.contains(words),
            "{value}: {stderr}"
        );
    }
}
