//! TLS (and mutual TLS) on REST and gRPC with a CA made here, Triton's restricted APIs, and
//! bearer tokens, through real clients: rustls for REST, tonic for gRPC.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{temp_repo_with, TestServer};
use osprey_protocol::grpc::inference::grpc_inference_service_client::GrpcInferenceServiceClient;
use osprey_protocol::grpc::inference::{RepositoryIndexRequest, ServerLiveRequest};
use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use serde_json::json;
use std::path::Path;
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Identity};

/// A CA, a server certificate for localhost/127.0.0.1 and a client certificate, as PEM files.
struct Pki {
    ca: String,
    client_cert: String,
    client_key: String,
}

fn make_pki(dir: &Path) -> Pki {
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let leaf = |names: Vec<String>| {
        let key = KeyPair::generate().unwrap();
        let cert = CertificateParams::new(names)
            .unwrap()
            .signed_by(&key, &ca, &ca_key)
            .unwrap();
        (cert.pem(), key.serialize_pem())
    };
    let (server_cert, server_key) = leaf(vec!["localhost".into(), "127.0.0.1".into()]);
    let (client_cert, client_key) = leaf(vec!["client".into()]);
    for (name, text) in [
        ("ca.pem", ca.pem()),
        ("server.pem", server_cert),
        ("server.key", server_key),
    ] {
        std::fs::write(dir.join(name), text).unwrap();
    }
    Pki {
        ca: ca.pem(),
        client_cert,
        client_key,
    }
}

/// A server on the MLP with TLS (and, if `mutual`, client certificates from the CA), its PKI,
/// and the directories that must outlive it.
async fn start_tls(mutual: bool) -> (TestServer, Pki, [tempfile::TempDir; 2]) {
    let repo = temp_repo_with(&["mlp"]);
    let pki_dir = tempfile::tempdir().unwrap();
    let pki = make_pki(pki_dir.path());
    let d = pki_dir.path().to_path_buf();
    let s = TestServer::start_with(repo.path(), |a| {
        a.tls_cert = Some(d.join("server.pem"));
        a.tls_key = Some(d.join("server.key"));
        a.tls_client_ca = mutual.then(|| d.join("ca.pem"));
    })
    .await;
    (s, pki, [repo, pki_dir])
}

/// Whether a gRPC client reports the server live.
async fn live(g: &mut GrpcInferenceServiceClient<Channel>) -> bool {
    g.server_live(ServerLiveRequest {})
        .await
        .unwrap()
        .into_inner()
        .live
}

/// GET `path` over TLS with rustls; the status line and body, or the handshake's error.
async fn https_get(
    addr: std::net::SocketAddr,
    ca: &str,
    client: Option<(&str, &str)>,
    path: &str,
) -> Result<String, String> {
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_slice(ca.as_bytes()).unwrap())
        .unwrap();
    let builder = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots);
    let config = match client {
        None => builder.with_no_client_auth(),
        Some((cert, key)) => builder
            .with_client_auth_cert(
                vec![CertificateDer::from_pem_slice(cert.as_bytes()).unwrap()],
                PrivateKeyDer::from_pem_slice(key.as_bytes()).unwrap(),
            )
            .unwrap(),
    };
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let mut tls = connector
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
        .map_err(|e| e.to_string())?;
    let req = format!("GET {path} HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n\r\n");
    tls.write_all(req.as_bytes())
        .await
        .map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    tls.read_to_end(&mut out).await.map_err(|e| e.to_string())?;
    Ok(String::from_utf8_lossy(&out).into_owned())
}

async fn grpc_tls(
    addr: std::net::SocketAddr,
    ca: &str,
    client: Option<(&str, &str)>,
) -> Result<GrpcInferenceServiceClient<Channel>, tonic::transport::Error> {
    let mut tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(ca))
        .domain_name("localhost");
    if let Some((cert, key)) = client {
        tls = tls.identity(Identity::from_pem(cert, key));
    }
    let channel = Channel::from_shared(format!("https://{addr}"))
        .unwrap()
        .tls_config(tls)?
        .connect()
        .await?;
    Ok(GrpcInferenceServiceClient::new(channel))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rest_and_grpc_over_tls() {
    let (s, pki, _dirs) = start_tls(false).await;
    let text = https_get(s.http, &pki.ca, None, "/v2/health/ready")
        .await
        .expect("TLS request");
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    // Plain HTTP on the TLS port gets nothing useful.
    assert!(s
        .client
        .get(s.url("/v2/health/ready"))
        .send()
        .await
        .is_err());
    let mut g = grpc_tls(s.grpc, &pki.ca, None).await.expect("gRPC TLS");
    assert!(live(&mut g).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mutual_tls_needs_a_client_certificate_from_the_ca() {
    let (s, pki, _dirs) = start_tls(true).await;
    let anonymous = https_get(s.http, &pki.ca, None, "/v2/health/ready").await;
    assert!(
        anonymous.is_err() || anonymous.as_deref().is_ok_and(|t| !t.contains("200")),
        "served without a client certificate: {anonymous:?}"
    );
    let client = Some((pki.client_cert.as_str(), pki.client_key.as_str()));
    let text = https_get(s.http, &pki.ca, client, "/v2/health/ready")
        .await
        .expect("mTLS request");
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    let anonymous = match grpc_tls(s.grpc, &pki.ca, None).await {
        Err(_) => None,
        Ok(mut g) => Some(g.server_live(ServerLiveRequest {}).await),
    };
    assert!(
        anonymous.as_ref().is_none_or(|r| r.is_err()),
        "gRPC served without a client certificate"
    );
    let mut g = grpc_tls(s.grpc, &pki.ca, client).await.expect("gRPC mTLS");
    assert!(live(&mut g).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restricted_apis_need_their_header() {
    let repo = temp_repo_with(&["mlp"]);
    let s = TestServer::start_with(repo.path(), |a| {
        a.http_restricted_api = vec!["model-repository,statistics:admin-key=s3cret".into()];
        a.grpc_restricted_protocol = vec!["model-repository:admin-key=s3cret".into()];
    })
    .await;
    let (status, v) = s.post_json("/v2/repository/index", &json!({})).await;
    assert_eq!(status, 403, "{v}");
    assert!(v["error"].as_str().unwrap().contains("admin-key"), "{v}");
    let (status, _) = s.get("/v2/models/mlp/stats").await;
    assert_eq!(status, 403);
    let r = s
        .client
        .post(s.url("/v2/repository/index"))
        .header("admin-key", "s3cret")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    // Inference is not restricted.
    s.assert_still_serving().await;

    let mut g = s.grpc_client().await;
    let e = g
        .repository_index(RepositoryIndexRequest::default())
        .await
        .unwrap_err();
    assert_eq!(e.code(), tonic::Code::Unavailable, "{e}");
    assert!(e.message().contains("admin-key"), "{e}");
    let mut req = tonic::Request::new(RepositoryIndexRequest::default());
    req.metadata_mut()
        .insert("admin-key", "s3cret".parse().unwrap());
    assert!(g.repository_index(req).await.is_ok());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_admin_listener_alone_serves_repository_control() {
    let repo = temp_repo_with(&["mlp"]);
    // The public listeners on every address; the admin one keeps its loopback default.
    let s = TestServer::start_with(repo.path(), |a| {
        a.address = "0.0.0.0".parse().unwrap();
        a.admin_port = Some(0);
    })
    .await;
    let admin = s.admin.expect("an admin listener");
    assert!(admin.ip().is_loopback(), "{admin}");
    assert!(s.http.ip().is_unspecified(), "{}", s.http);
    let public = |path: &str| format!("http://127.0.0.1:{}{path}", s.http.port());

    let r = s
        .client
        .post(public("/v2/repository/index"))
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 403);
    let v: serde_json::Value = r.json().await.unwrap();
    assert!(v["error"].as_str().unwrap().contains("--admin-port"), "{v}");
    let r = s
        .client
        .post(public("/v2/repository/models/mlp/unload"))
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 403, "an unload is repository control");

    // The admin listener serves it, and everything else too.
    let r = s
        .client
        .post(format!("http://{admin}/v2/repository/index"))
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let index: serde_json::Value = r.json().await.unwrap();
    assert_eq!(index[0]["name"], "mlp", "{index}");
    let r = s
        .client
        .get(format!("http://{admin}/v2/models/mlp/config"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);

    // Inference and statistics stay public.
    let r = s
        .client
        .get(public("/v2/models/mlp/stats"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let mut g = GrpcInferenceServiceClient::connect(format!("http://127.0.0.1:{}", s.grpc.port()))
        .await
        .unwrap();
    let e = g
        .repository_index(RepositoryIndexRequest::default())
        .await
        .unwrap_err();
    assert_eq!(e.code(), tonic::Code::Unavailable, "{e}");
    assert!(e.message().contains("--admin-port"), "{e}");
    assert!(live(&mut g).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bearer_tokens_guard_everything_but_health() {
    let repo = temp_repo_with(&["mlp"]);
    let dir = tempfile::tempdir().unwrap();
    let tokens = dir.path().join("tokens");
    std::fs::write(&tokens, "tok-1\n").unwrap();
    let s = TestServer::start_with(repo.path(), |a| a.auth_token_file = Some(tokens)).await;
    let (status, _) = s.get("/v2/health/ready").await;
    assert_eq!(status, 200, "health stays open for probes");
    let body = json!({"inputs":[{"name":"input","shape":[1,64],"datatype":"FP32","data":vec![0.0f32;64]}]});
    let r = s
        .client
        .post(s.url("/v2/models/mlp/infer"))
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 401);
    assert_eq!(r.headers()["www-authenticate"], "Bearer");
    let r = s
        .client
        .post(s.url("/v2/models/mlp/infer"))
        .bearer_auth("tok-1")
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);

    let mut g = s.grpc_client().await;
    let e = g
        .repository_index(RepositoryIndexRequest::default())
        .await
        .unwrap_err();
    assert_eq!(e.code(), tonic::Code::Unauthenticated, "{e}");
    let mut req = tonic::Request::new(RepositoryIndexRequest::default());
    req.metadata_mut()
        .insert("authorization", "Bearer tok-1".parse().unwrap());
    assert!(g.repository_index(req).await.is_ok());
}
