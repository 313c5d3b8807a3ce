//! `osprey pull URI DIR`: fetches a model repository (or one model's directory) into DIR — what
//! the InferenceService's init container runs. `file:///path` and `pvc://<claim>/<path>` copy a
//! directory tree (a PVC is mounted at `$OSPREY_PVC_ROOT`, default `/mnt/pvc`), `http(s)://`
//! downloads one file, `s3://bucket/prefix` copies every object under the prefix (credentials and
//! endpoint from the usual `AWS_*` variables, e.g. `AWS_ENDPOINT_URL`, `AWS_ACCESS_KEY_ID`,
//! `AWS_REGION`), and `gs://bucket/path` does the same on Google Cloud Storage (see [`gcs`]).

pub mod gcs;

use crate::desired::storage::Storage;
use crate::error::Error;
use futures::TryStreamExt;
use object_store::aws::AmazonS3Builder;
use object_store::ObjectStore;
use std::path::{Component, Path, PathBuf};

/// What a pull fetched.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Pulled {
    pub files: usize,
    pub bytes: u64,
}

fn io(what: &str, p: &Path, e: std::io::Error) -> Error {
    Error::Other(format!("{what} {}: {e}", p.display()))
}

fn copy_tree(from: &Path, to: &Path, out: &mut Pulled) -> Result<(), Error> {
    let meta = std::fs::metadata(from).map_err(|e| io("cannot read", from, e))?;
    if meta.is_file() {
        let name = from.file_name().unwrap_or_default();
        std::fs::create_dir_all(to).map_err(|e| io("cannot create", to, e))?;
        out.bytes += std::fs::copy(from, to.join(name)).map_err(|e| io("cannot copy", from, e))?;
        out.files += 1;
        return Ok(());
    }
    std::fs::create_dir_all(to).map_err(|e| io("cannot create", to, e))?;
    for entry in std::fs::read_dir(from).map_err(|e| io("cannot list", from, e))? {
        let entry = entry.map_err(|e| io("cannot list", from, e))?;
        let path = entry.path();
        let target = to.join(entry.file_name());
        if path.is_dir() {
            copy_tree(&path, &target, out)?;
        } else {
            out.bytes += std::fs::copy(&path, &target).map_err(|e| io("cannot copy", &path, e))?;
            out.files += 1;
        }
    }
    Ok(())
}

/// A relative object key as a safe path under DIR (no `..`, no absolute parts).
fn safe_relative(key: &str) -> Result<PathBuf, Error> {
    let p = Path::new(key);
    if p.components().all(|c| matches!(c, Component::Normal(_))) {
        Ok(p.to_path_buf())
    } else {
        Err(Error::Other(format!(
            "refusing object key '{key}': it leaves the target directory"
        )))
    }
}

async fn pull_http(uri: &str, dir: &Path) -> Result<Pulled, Error> {
    let resp = reqwest::get(uri)
        .await
        .map_err(|e| Error::Other(format!("GET {uri}: {e}")))?;
    if !resp.status().is_success() {
        return Err(Error::Other(format!("GET {uri}: HTTP {}", resp.status())));
    }
    let name = uri
        .rsplit('/')
        .next()
        .filter(|n| !n.is_empty())
        .unwrap_or("model.onnx");
    let body = resp
        .bytes()
        .await
        .map_err(|e| Error::Other(format!("GET {uri}: {e}")))?;
    std::fs::create_dir_all(dir).map_err(|e| io("cannot create", dir, e))?;
    let target = dir.join(safe_relative(name)?);
    std::fs::write(&target, &body).map_err(|e| io("cannot write", &target, e))?;
    Ok(Pulled {
        files: 1,
        bytes: body.len() as u64,
    })
}

async fn pull_s3(uri: &str, dir: &Path) -> Result<Pulled, Error> {
    let rest = uri.trim_start_matches("s3://");
    let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
    let mut builder = AmazonS3Builder::from_env().with_bucket_name(bucket);
    if let Ok(endpoint) = std::env::var("AWS_ENDPOINT_URL") {
        builder = builder
            .with_allow_http(endpoint.starts_with("http://"))
            .with_endpoint(endpoint);
    }
    let store = builder
        .build()
        .map_err(|e| Error::Other(format!("{uri}: {e}")))?;
    let prefix = prefix.trim_end_matches('/');
    let list_prefix = (!prefix.is_empty()).then(|| object_store::path::Path::from(prefix));
    let objects: Vec<_> = store
        .list(list_prefix.as_ref())
        .try_collect()
        .await
        .map_err(|e| Error::Other(format!("listing {uri}: {e}")))?;
    if objects.is_empty() {
        return Err(Error::Other(format!("{uri}: no objects under this prefix")));
    }
    let mut out = Pulled::default();
    for meta in objects {
        let key = meta.location.to_string();
        let relative = key
            .strip_prefix(prefix)
            .unwrap_or(&key)
            .trim_start_matches('/');
        let target = dir.join(safe_relative(relative)?);
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent).map_err(|e| io("cannot create", parent, e))?;
        }
        let bytes = store
            .get(&meta.location)
            .await
            .map_err(|e| Error::Other(format!("GET {key}: {e}")))?
            .bytes()
            .await
            .map_err(|e| Error::Other(format!("GET {key}: {e}")))?;
        std::fs::write(&target, &bytes).map_err(|e| io("cannot write", &target, e))?;
        out.files += 1;
        out.bytes += bytes.len() as u64;
    }
    Ok(out)
}

/// Fetches `uri` into `dir`.
pub async fn pull(uri: &str, dir: &Path) -> Result<Pulled, Error> {
    let mut out = Pulled::default();
    match Storage::parse("URI", uri)? {
        Storage::File(path) => copy_tree(Path::new(&path), dir, &mut out)?,
        Storage::Pvc { path, .. } => {
            let root = std::env::var("OSPREY_PVC_ROOT").unwrap_or_else(|_| "/mnt/pvc".into());
            copy_tree(&Path::new(&root).join(path), dir, &mut out)?
        }
        Storage::Remote(u) if u.starts_with("s3://") => out = pull_s3(&u, dir).await?,
        Storage::Remote(u) if u.starts_with("gs://") => {
            out = gcs::pull_gcs(&u, dir, &gcs::Gcs::from_env()).await?
        }
        Storage::Remote(u) => out = pull_http(&u, dir).await?,
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn file_copies_a_tree() {
        let src = tempfile::tempdir().expect("tmp");
        std::fs::create_dir_all(src.path().join("m/1")).expect("mkdir");
        std::fs::write(src.path().join("m/1/model.onnx"), b"onnx").expect("write");
        std::fs::write(src.path().join("m/config.pbtxt"), b"name: \"m\"").expect("write");
        let dst = tempfile::tempdir().expect("tmp");
        let uri = format!("file://{}", src.path().display());
        let p = pull(&uri, dst.path()).await.expect("pulls");
        assert_eq!(p.files, 2);
        assert_eq!(
            std::fs::read(dst.path().join("m/1/model.onnx")).expect("read"),
            b"onnx"
        );
    }

    #[tokio::test]
    async fn bad_uris_are_errors() {
        let dst = tempfile::tempdir().expect("tmp");
        assert!(pull("ftp://b/x", dst.path()).await.is_err());
        assert!(pull("gs:///x", dst.path()).await.is_err());
        assert!(pull("file:///definitely/not/here", dst.path())
            .await
            .is_err());
        assert!(safe_relative("../etc/passwd").is_err());
        assert!(safe_relative("a/b.onnx").is_ok());
    }
}
