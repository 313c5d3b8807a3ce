//! `storageUri`: where a component's model repository comes from.

use crate::error::SpecError;

/// A parsed storage URI.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Storage {
    /// `file:///path`: a path inside the pod (an image or a host mount).
    File(String),
    /// `pvc://<claim>/<path>`: a PersistentVolumeClaim mounted read-only.
    Pvc { claim: String, path: String },
    /// `http(s)://...`, `s3://bucket/prefix` or `gs://bucket/path`: fetched by `osprey pull` in
    /// an init container.
    Remote(String),
}

impl Storage {
    /// Parses `uri`, naming the field on error.
    pub fn parse(field: &str, uri: &str) -> Result<Storage, SpecError> {
        let bad = |why: &str| SpecError::Invalid {
            field: field.to_string(),
            message: format!("'{uri}': {why}"),
        };
        let (scheme, rest) = uri
            .split_once("://")
            .ok_or_else(|| bad("not a URI (expected scheme://...)"))?;
        match scheme {
            "file" if rest.starts_with('/') => Ok(Storage::File(rest.to_string())),
            "file" => Err(bad("file:// needs an absolute path")),
            "pvc" => {
                let (claim, path) = rest.split_once('/').unwrap_or((rest, ""));
                if claim.is_empty() {
                    return Err(bad("pvc:// needs a claim name"));
                }
                Ok(Storage::Pvc {
                    claim: claim.to_string(),
                    path: path.trim_matches('/').to_string(),
                })
            }
            "gs" if rest.split('/').next().is_some_and(|b| !b.is_empty()) => {
                Ok(Storage::Remote(uri.to_string()))
            }
            "gs" => Err(bad("gs:// needs a bucket name")),
            "http" | "https" | "s3" if !rest.is_empty() => Ok(Storage::Remote(uri.to_string())),
            "http" | "https" | "s3" => Err(bad("nothing after the scheme")),
            other => Err(bad(&format!(
                "scheme '{other}' is not supported (file, pvc, http, https, s3, gs)"
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_supported_schemes() {
        assert_eq!(
            Storage::parse("f", "pvc://models/iris/v1"),
            Ok(Storage::Pvc {
                claim: "models".into(),
                path: "iris/v1".into()
            })
        );
        assert_eq!(
            Storage::parse("f", "file:///srv/models"),
            Ok(Storage::File("/srv/models".into()))
        );
        assert_eq!(
            Storage::parse("f", "s3://bucket/iris"),
            Ok(Storage::Remote("s3://bucket/iris".into()))
        );
        assert_eq!(
            Storage::parse("f", "gs://kfserving-examples/models/onnx"),
            Ok(Storage::Remote(
                "gs://kfserving-examples/models/onnx".into()
            ))
        );
        assert_eq!(
            Storage::parse("f", "gs://bucket"),
            Ok(Storage::Remote("gs://bucket".into()))
        );
    }

    #[test]
    fn refuses_others_naming_the_field() {
        for uri in [
            "gs:///x",
            "gs://",
            "ftp://b/x",
            "nonsense",
            "pvc:///x",
            "file://relative",
            "s3://",
        ] {
            let e = Storage::parse("spec.predictor.model.storageUri", uri).unwrap_err();
            assert!(
                e.to_string().contains("spec.predictor.model.storageUri"),
                "{e}"
            );
        }
    }
}
