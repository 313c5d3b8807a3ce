//! TLS for the REST and gRPC listeners (rustls, ring): a certificate chain and key from PEM
//! files, and optionally a CA whose client certificates are required (mutual TLS).

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Why TLS could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("{what} {path}: {reason}")]
    File {
        what: &'static str,
        path: String,
        reason: String,
    },
    #[error("{0}")]
    Config(String),
}

/// The PEM files TLS is made of (`--tls-cert`, `--tls-key`, `--tls-client-ca`).
#[derive(Debug, Clone)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
    /// CA certificates that sign the client certificates required (mutual TLS).
    pub client_ca: Option<PathBuf>,
}

/// What each listener needs: the PEM texts (tonic takes these) and a rustls configuration
/// (the REST listener).
#[derive(Clone)]
pub struct Tls {
    pub cert_pem: Vec<u8>,
    pub key_pem: Vec<u8>,
    pub client_ca_pem: Option<Vec<u8>>,
    pub rest: Arc<ServerConfig>,
}

fn read(what: &'static str, path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|e| TlsError::File {
        what,
        path: path.display().to_string(),
        reason: e.to_string(),
    })
}

fn certs(
    what: &'static str,
    path: &Path,
    pem: &[u8],
) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsError::File {
            what,
            path: path.display().to_string(),
            reason: e.to_string(),
        })?;
    if certs.is_empty() {
        return Err(TlsError::File {
            what,
            path: path.display().to_string(),
            reason: "no PEM certificate in it".into(),
        });
    }
    Ok(certs)
}

impl Tls {
    /// Reads and checks the files; any problem names the flag's file.
    pub fn load(files: &TlsFiles) -> Result<Tls, TlsError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let cert_pem = read("--tls-cert", &files.cert)?;
        let key_pem = read("--tls-key", &files.key)?;
        let chain = certs("--tls-cert", &files.cert, &cert_pem)?;
        let key = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|e| TlsError::File {
            what: "--tls-key",
            path: files.key.display().to_string(),
            reason: e.to_string(),
        })?;
        let builder = ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| TlsError::Config(e.to_string()))?;
        let (builder, client_ca_pem) = match &files.client_ca {
            None => (builder.with_no_client_auth(), None),
            Some(path) => {
                let pem = read("--tls-client-ca", path)?;
                let mut roots = RootCertStore::empty();
                for c in certs("--tls-client-ca", path, &pem)? {
                    roots.add(c).map_err(|e| TlsError::File {
                        what: "--tls-client-ca",
                        path: path.display().to_string(),
                        reason: e.to_string(),
                    })?;
                }
                let verifier =
                    WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                        .build()
                        .map_err(|e| TlsError::Config(format!("--tls-client-ca: {e}")))?;
                (builder.with_client_cert_verifier(verifier), Some(pem))
            }
        };
        let mut rest = builder
            .with_single_cert(chain, key)
            .map_err(|e| TlsError::Config(format!("--tls-cert/--tls-key: {e}")))?;
        rest.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(Tls {
            cert_pem,
            key_pem,
            client_ca_pem,
            rest: Arc::new(rest),
        })
    }
}
