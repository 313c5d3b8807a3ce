//! The controller's errors.

/// A spec the controller cannot act on: reported in the resource's conditions and events,
/// never retried until the spec changes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SpecError {
    #[error("{field}: {message}")]
    Invalid { field: String, message: String },
}

/// Everything reconciliation can fail with.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Spec(#[from] SpecError),
    #[error("Kubernetes API: {0}")]
    Kube(#[from] kube::Error),
    #[error(transparent)]
    Gcs(#[from] crate::pull::gcs::GcsError),
    #[error("serialising {0}")]
    Json(#[from] serde_json::Error),
    #[error("{0}")]
    Other(String),
}
