//! `osprey loadtest` against the real server, over every transport.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use clap::Parser;
use common::{models_dir, TestServer};
use osprey_loadtest::LoadtestArgs;

#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    args: LoadtestArgs,
}

#[tokio::test]
async fn an_unknown_model_is_named_with_the_servers_answer() {
    let s = TestServer::start(&models_dir()).await;
    for (transport, url) in [("rest-binary", s.http), ("grpc", s.grpc)] {
        let url = url.to_string();
        let args = Cli::parse_from([
            "loadtest",
            "--quiet",
            "--url",
            &url,
            "--transport",
            transport,
            "-m",
            "no_such_model",
            "--requests",
            "5",
        ])
        .args;
        let e = osprey_loadtest::run(args).await.expect_err("no such model");
        let e = format!("{e:#}");
        assert!(e.contains("cannot start: model 'no_such_model'"), "{e}");
        assert!(
            e.contains("unknown model 'no_such_model'"),
            "{transport}: {e}"
        );
    }
}

#[tokio::test]
async fn loadtest_drives_osprey_over_rest_and_grpc() {
    let s = TestServer::start(&models_dir()).await;
    let http = s.http.to_string();
    let grpc = s.grpc.to_string();
    for (transport, url) in [
        ("rest-json", &http),
        ("rest-binary", &http),
        ("grpc", &grpc),
    ] {
        let args = Cli::parse_from([
            "loadtest",
            "--quiet",
            "--url",
            url,
            "--stats-url",
            &http,
            "--transport",
            transport,
            "-m",
            "mlp",
            "--concurrency",
            "8",
            "--requests",
            "200",
            "--warmup",
            "0",
            "--duration",
            "60",
            "--batch-size",
            "2",
        ])
        .args;
        let r = osprey_loadtest::run(args).await.unwrap();
        assert_eq!(r[0].ok, 200, "{transport}: {:?}", r[0].errors);
        let server = r[0].server.as_ref().expect("statistics");
        assert!(
            server.inferences >= 400,
            "{transport}: two rows per request: {server:?}"
        );
        assert!(server.executions >= 1);
    }
    s.shutdown().await;
}
