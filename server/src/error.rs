//! The server's error type and its one mapping to HTTP and gRPC status codes.

use osprey_protocol::ProtocolError;
use osprey_runtimes::RuntimeError;

/// Everything a request can fail with.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error(transparent)]
    Protocol(#[from] ProtocolError),
    #[error("unknown model '{0}'")]
    ModelNotFound(String),
    #[error("unknown version '{version}' of model '{model}' (available: {available})")]
    VersionNotFound {
        model: String,
        version: String,
        available: String,
    },
    #[error("model '{model}' is not ready: {reason}")]
    ModelNotReady { model: String, reason: String },
    #[error("{0}")]
    BadRequest(String),
    #[error("no such endpoint: {0}")]
    NoEndpoint(String),
    #[error("request body exceeds the limit of {limit} bytes (--http-max-body-bytes)")]
    BodyTooLarge { limit: usize },
    #[error("model '{model}' is overloaded: {reason}")]
    Overloaded { model: String, reason: String },
    #[error("{0}")]
    Runtime(#[from] RuntimeError),
    #[error("failed to load model '{model}': {reason}")]
    LoadFailed { model: String, reason: String },
    #[error("internal error: {0}")]
    Internal(String),
    /// A restricted API called without its header (Triton answers REST 403, gRPC UNAVAILABLE).
    #[error("{0}")]
    Restricted(String),
    #[error("{0}")]
    Unauthenticated(String),
    /// A request that ran past its deadline (`--request-timeout-secs`, the explainer's).
    #[error("{0}")]
    Timeout(String),
    /// An operation this server's configuration does not allow (Triton's UNSUPPORTED).
    #[error("{0}")]
    Unsupported(String),
    /// A step of an ensemble failed; the step's own error decides the status.
    #[error("ensemble {step}: {source}")]
    Step {
        step: String,
        source: Box<ServerError>,
    },
    #[error("remote predictor at {url} unavailable after {attempts} attempts: {reason}")]
    PredictorUnavailable {
        url: String,
        attempts: u32,
        reason: String,
    },
}

/// The coarse class of an error: one classifier for HTTP, gRPC and metric labels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    InvalidArgument,
    NotFound,
    Unavailable,
    TooLarge,
    Forbidden,
    Unauthenticated,
    DeadlineExceeded,
    Unsupported,
    Internal,
}

impl ErrorKind {
    /// A short label for metrics.
    pub fn label(self) -> &'static str {
        match self {
            ErrorKind::InvalidArgument => "invalid_argument",
            ErrorKind::NotFound => "not_found",
            ErrorKind::Unavailable => "unavailable",
            ErrorKind::TooLarge => "too_large",
            ErrorKind::Forbidden => "forbidden",
            ErrorKind::Unauthenticated => "unauthenticated",
            ErrorKind::DeadlineExceeded => "deadline_exceeded",
            ErrorKind::Unsupported => "unsupported",
            ErrorKind::Internal => "internal",
        }
    }
}

impl ServerError {
    /// Classifies the error.
    pub fn kind(&self) -> ErrorKind {
        match self {
            ServerError::Step { source, .. } => source.kind(),
            ServerError::Protocol(_)
            | ServerError::BadRequest(_)
            | ServerError::LoadFailed { .. } => ErrorKind::InvalidArgument,
            ServerError::Runtime(RuntimeError::BadInput { .. }) => ErrorKind::InvalidArgument,
            ServerError::ModelNotFound(_)
            | ServerError::VersionNotFound { .. }
            | ServerError::NoEndpoint(_) => ErrorKind::NotFound,
            ServerError::ModelNotReady { .. }
            | ServerError::Overloaded { .. }
            | ServerError::PredictorUnavailable { .. } => ErrorKind::Unavailable,
            ServerError::BodyTooLarge { .. } => ErrorKind::TooLarge,
            ServerError::Restricted(_) => ErrorKind::Forbidden,
            ServerError::Unauthenticated(_) => ErrorKind::Unauthenticated,
            ServerError::Timeout(_) => ErrorKind::DeadlineExceeded,
            ServerError::Unsupported(_) => ErrorKind::Unsupported,
            ServerError::Runtime(_) | ServerError::Internal(_) => ErrorKind::Internal,
        }
    }

    /// The HTTP status for the error.
    pub fn http_status(&self) -> http::StatusCode {
        match self.kind() {
            ErrorKind::InvalidArgument => http::StatusCode::BAD_REQUEST,
            ErrorKind::NotFound => http::StatusCode::NOT_FOUND,
            ErrorKind::Unavailable => http::StatusCode::SERVICE_UNAVAILABLE,
            ErrorKind::TooLarge => http::StatusCode::PAYLOAD_TOO_LARGE,
            ErrorKind::Forbidden => http::StatusCode::FORBIDDEN,
            ErrorKind::Unauthenticated => http::StatusCode::UNAUTHORIZED,
            ErrorKind::DeadlineExceeded => http::StatusCode::GATEWAY_TIMEOUT,
            ErrorKind::Unsupported => http::StatusCode::BAD_REQUEST,
            ErrorKind::Internal => http::StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl ServerError {
    /// The gRPC code for the error (a restricted API is UNAVAILABLE, as Triton answers).
    pub fn grpc_code(&self) -> tonic::Code {
        match self.kind() {
            ErrorKind::InvalidArgument => tonic::Code::InvalidArgument,
            ErrorKind::NotFound => tonic::Code::NotFound,
            ErrorKind::Unavailable | ErrorKind::Forbidden => tonic::Code::Unavailable,
            ErrorKind::TooLarge => tonic::Code::ResourceExhausted,
            ErrorKind::Unauthenticated => tonic::Code::Unauthenticated,
            ErrorKind::DeadlineExceeded => tonic::Code::DeadlineExceeded,
            ErrorKind::Unsupported => tonic::Code::Unimplemented,
            ErrorKind::Internal => tonic::Code::Internal,
        }
    }
}

impl From<ServerError> for tonic::Status {
    fn from(e: ServerError) -> tonic::Status {
        tonic::Status::new(e.grpc_code(), e.to_string())
    }
}
