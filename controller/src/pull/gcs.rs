//! `gs://bucket/path` over Google Cloud Storage's JSON API with plain HTTPS: the objects under
//! `path/` are listed (`GET {endpoint}/storage/v1/b/{bucket}/o?prefix=path/`, following
//! `nextPageToken`) and each is downloaded (`GET .../o/{url-encoded name}?alt=media`) to its
//! place relative to `path/`. When nothing lies under the prefix, `path` is fetched as one object
//! (KServe's storage initializer does the same). Anonymous for public buckets; with
//! `GOOGLE_OAUTH_ACCESS_TOKEN` set, requests carry `Authorization: Bearer <token>`. The endpoint
//! is `https://storage.googleapis.com` unless `STORAGE_EMULATOR_HOST` names another (the variable
//! Google's own clients read; `host:port` without a scheme means plain HTTP).

use super::{safe_relative, Pulled};
use reqwest::{StatusCode, Url};
use serde::Deserialize;
use std::io::Write;
use std::path::{Path, PathBuf};

/// Where Google Cloud Storage is and how to authenticate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Gcs {
    /// Scheme, host and port (a path prefix is kept), e.g. `https://storage.googleapis.com`.
    pub endpoint: String,
    /// An OAuth 2 access token sent as `Authorization: Bearer`; `None` for anonymous access.
    pub token: Option<String>,
}

pub const DEFAULT_ENDPOINT: &str = "https://storage.googleapis.com";

impl Gcs {
    /// From `STORAGE_EMULATOR_HOST` and `GOOGLE_OAUTH_ACCESS_TOKEN` (empty values are unset).
    pub fn from_env() -> Gcs {
        let var = |k: &str| std::env::var(k).ok().filter(|v| !v.trim().is_empty());
        let endpoint = match var("STORAGE_EMULATOR_HOST") {
            Some(h) if h.contains("://") => h,
            Some(h) => format!("http://{h}"),
            None => DEFAULT_ENDPOINT.to_string(),
        };
        Gcs {
            endpoint,
            token: var("GOOGLE_OAUTH_ACCESS_TOKEN").map(|t| t.trim().to_string()),
        }
    }
}

/// What fetching from Google Cloud Storage fails with; every message names the URI.
#[derive(Debug, thiserror::Error)]
pub enum GcsError {
    #[error("{uri}: expected gs://<bucket>/<path>")]
    BadUri { uri: String },
    #[error("{uri}: endpoint '{endpoint}' is not a base URL")]
    BadEndpoint { uri: String, endpoint: String },
    #[error("{uri}: {what}: HTTP {status}{detail}")]
    Status {
        uri: String,
        what: String,
        status: StatusCode,
        /// The service's own message, when it sent one (`: ...`).
        detail: String,
    },
    #[error("{uri}: {what}: {source}")]
    Request {
        uri: String,
        what: String,
        #[source]
        source: reqwest::Error,
    },
    #[error("{uri}: listing objects: not a JSON object list: {source}")]
    Listing {
        uri: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("{uri}: refusing object name '{name}': it leaves the target directory")]
    Traversal { uri: String, name: String },
    #[error("{uri}: the listing returned '{name}', which is not under the requested prefix")]
    OutsidePrefix { uri: String, name: String },
    #[error("{uri}: no objects under this prefix and no object of this name")]
    NotFound { uri: String },
    #[error("{uri}: cannot write {}: {source}", path.display())]
    Io {
        uri: String,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ObjectList {
    #[serde(default)]
    items: Vec<ObjectItem>,
    #[serde(default)]
    next_page_token: Option<String>,
}

#[derive(Deserialize)]
struct ObjectItem {
    name: String,
}

/// The `error.message` of a JSON API error body, if there is one.
fn service_message(body: &[u8]) -> String {
    #[derive(Deserialize)]
    struct Body {
        error: Inner,
    }
    #[derive(Deserialize)]
    struct Inner {
        message: String,
    }
    match serde_json::from_slice::<Body>(body) {
        Ok(b) => format!(
            ": {}",
            b.error.message.chars().take(300).collect::<String>()
        ),
        Err(_) => String::new(),
    }
}

struct Client<'a> {
    uri: &'a str,
    bucket: &'a str,
    base: Url,
    token: Option<&'a str>,
    http: reqwest::Client,
}

impl Client<'_> {
    /// `{endpoint}/storage/v1/b/{bucket}/o`, plus `name` as one percent-encoded segment.
    fn objects_url(&self, name: Option<&str>) -> Result<Url, GcsError> {
        let mut url = self.base.clone();
        {
            let mut segments = url
                .path_segments_mut()
                .map_err(|()| GcsError::BadEndpoint {
                    uri: self.uri.to_string(),
                    endpoint: self.base.to_string(),
                })?;
            segments
                .pop_if_empty()
                .extend(["storage", "v1", "b", self.bucket, "o"]);
            if let Some(n) = name {
                segments.push(n);
            }
        }
        Ok(url)
    }

    /// Sends a GET, turning a non-success status into an error naming `what`.
    async fn get(&self, url: Url, what: &str) -> Result<reqwest::Response, GcsError> {
        let mut req = self.http.get(url);
        if let Some(t) = self.token {
            req = req.bearer_auth(t);
        }
        let request_error = |source| GcsError::Request {
            uri: self.uri.to_string(),
            what: what.to_string(),
            source,
        };
        let resp = req.send().await.map_err(request_error)?;
        let status = resp.status();
        if status.is_success() {
            return Ok(resp);
        }
        let body = resp.bytes().await.unwrap_or_default();
        Err(GcsError::Status {
            uri: self.uri.to_string(),
            what: what.to_string(),
            status,
            detail: service_message(&body),
        })
    }

    /// Every object name under `prefix` (all pages).
    async fn list(&self, prefix: &str) -> Result<Vec<String>, GcsError> {
        let mut names = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let mut url = self.objects_url(None)?;
            {
                let mut q = url.query_pairs_mut();
                if !prefix.is_empty() {
                    q.append_pair("prefix", prefix);
                }
                if let Some(t) = &token {
                    q.append_pair("pageToken", t);
                }
            }
            let body = self
                .get(url, "listing objects")
                .await?
                .bytes()
                .await
                .map_err(|source| GcsError::Request {
                    uri: self.uri.to_string(),
                    what: "listing objects".into(),
                    source,
                })?;
            let page: ObjectList =
                serde_json::from_slice(&body).map_err(|source| GcsError::Listing {
                    uri: self.uri.to_string(),
                    source,
                })?;
            names.extend(page.items.into_iter().map(|i| i.name));
            match page.next_page_token.filter(|t| !t.is_empty()) {
                // A server repeating its token would loop forever: stop instead.
                Some(t) if token.as_deref() != Some(t.as_str()) => token = Some(t),
                _ => return Ok(names),
            }
        }
    }

    /// Downloads object `name` to `target`, streaming; the number of bytes written.
    async fn download(&self, name: &str, target: &Path) -> Result<u64, GcsError> {
        let mut url = self.objects_url(Some(name))?;
        url.query_pairs_mut().append_pair("alt", "media");
        let what = format!("GET object '{name}'");
        let mut resp = self.get(url, &what).await?;
        let io = |source| GcsError::Io {
            uri: self.uri.to_string(),
            path: target.to_path_buf(),
            source,
        };
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent).map_err(io)?;
        }
        let mut file = std::fs::File::create(target).map_err(io)?;
        let mut written = 0u64;
        while let Some(chunk) = resp.chunk().await.map_err(|source| GcsError::Request {
            uri: self.uri.to_string(),
            what: what.clone(),
            source,
        })? {
            file.write_all(&chunk).map_err(io)?;
            written += chunk.len() as u64;
        }
        file.flush().map_err(io)?;
        Ok(written)
    }
}

/// `name` relative to the listed prefix, as a path that stays under the destination.
fn relative_target(uri: &str, prefix: &str, name: &str) -> Result<PathBuf, GcsError> {
    let relative = name
        .strip_prefix(prefix)
        .ok_or_else(|| GcsError::OutsidePrefix {
            uri: uri.to_string(),
            name: name.to_string(),
        })?;
    safe_relative(relative).map_err(|_| GcsError::Traversal {
        uri: uri.to_string(),
        name: name.to_string(),
    })
}

/// Fetches `gs://bucket/path` into `dir` from `gcs`.
pub async fn pull_gcs(uri: &str, dir: &Path, gcs: &Gcs) -> Result<Pulled, GcsError> {
    let bad_uri = || GcsError::BadUri {
        uri: uri.to_string(),
    };
    let rest = uri.strip_prefix("gs://").ok_or_else(bad_uri)?;
    let (bucket, path) = rest.split_once('/').unwrap_or((rest, ""));
    if bucket.is_empty() {
        return Err(bad_uri());
    }
    let path = path.trim_end_matches('/');
    let base = Url::parse(&gcs.endpoint).map_err(|_| GcsError::BadEndpoint {
        uri: uri.to_string(),
        endpoint: gcs.endpoint.clone(),
    })?;
    let client = Client {
        uri,
        bucket,
        base,
        token: gcs.token.as_deref(),
        http: reqwest::Client::new(),
    };
    let prefix = if path.is_empty() {
        String::new()
    } else {
        format!("{path}/")
    };
    let names = client.list(&prefix).await?;
    // Check every name before writing anything: a refused listing leaves DIR untouched.
    let mut objects = Vec::with_capacity(names.len());
    for name in names {
        // Zero-byte "folder" placeholders some tools create.
        if name.ends_with('/') {
            continue;
        }
        let target = dir.join(relative_target(uri, &prefix, &name)?);
        objects.push((name, target));
    }
    let mut out = Pulled::default();
    if objects.is_empty() {
        // Not a prefix: `path` is one object, saved under its base name.
        let base_name = path.rsplit('/').next().unwrap_or_default();
        if base_name.is_empty() {
            return Err(GcsError::NotFound {
                uri: uri.to_string(),
            });
        }
        let target = dir.join(safe_relative(base_name).map_err(|_| GcsError::Traversal {
            uri: uri.to_string(),
            name: path.to_string(),
        })?);
        out.bytes = match client.download(path, &target).await {
            Err(GcsError::Status { status, .. }) if status == StatusCode::NOT_FOUND => {
                return Err(GcsError::NotFound {
                    uri: uri.to_string(),
                })
            }
            r => r?,
        };
        out.files = 1;
        return Ok(out);
    }
    for (name, target) in objects {
        out.bytes += client.download(&name, &target).await?;
        out.files += 1;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_stay_under_the_prefix() {
        let ok = relative_target("gs://b/m", "m/", "m/1/model.onnx");
        assert_eq!(ok.ok(), Some(PathBuf::from("1/model.onnx")));
        for bad in [
            "m/../../etc/passwd",
            "m//etc/passwd",
            "m/./x",
            "m/a/../../b",
        ] {
            let e = relative_target("gs://b/m", "m/", bad).unwrap_err();
            assert!(
                matches!(e, GcsError::Traversal { .. }) && e.to_string().contains("gs://b/m"),
                "{bad}: {e}"
            );
        }
        assert!(matches!(
            relative_target("gs://b/m", "m/", "other/x"),
            Err(GcsError::OutsidePrefix { .. })
        ));
    }

    #[test]
    fn object_urls_encode_the_name_as_one_segment() {
        let c = Client {
            uri: "gs://b/m",
            bucket: "my-bucket",
            base: Url::parse("http://127.0.0.1:9/").expect("url"),
            token: None,
            http: reqwest::Client::new(),
        };
        let u = c.objects_url(Some("m/1/model onnx")).expect("url");
        assert_eq!(
            u.as_str(),
            "http://127.0.0.1:9/storage/v1/b/my-bucket/o/m%2F1%2Fmodel%20onnx"
        );
    }

    #[test]
    fn bad_uris_are_refused() {
        let gcs = Gcs {
            endpoint: "http://127.0.0.1:9".into(),
            token: None,
        };
        let dir = std::env::temp_dir();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        for uri in ["gs:///x", "s3://b/x"] {
            let e = rt.block_on(pull_gcs(uri, &dir, &gcs)).unwrap_err();
            assert!(matches!(e, GcsError::BadUri { .. }), "{uri}: {e}");
        }
    }
}
