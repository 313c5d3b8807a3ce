//! What can stop `osprey pipeline run` before any task runs (or the run itself).

/// A pipeline that cannot be run: unreadable, malformed, using a feature this runner does not
/// support yet, or given bad parameters. Every message names the task or parameter concerned.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PipelineError {
    /// The file could not be read or is not a compiled KFP v2 pipeline.
    #[error("{0}")]
    Read(String),
    /// A task uses something the local runner does not do yet.
    #[error("task '{task}': not supported yet: {feature}")]
    Unsupported { task: String, feature: String },
    /// The pipeline itself (not one task) uses something the local runner does not do yet.
    #[error("pipeline: not supported yet: {0}")]
    PipelineUnsupported(String),
    /// A task's definition is inconsistent (unknown component, executor, producer...).
    #[error("task '{task}': {message}")]
    Task { task: String, message: String },
    /// The tasks' dependencies form a cycle.
    #[error("dependency cycle between tasks {}", .0.iter().map(|t| format!("'{t}'")).collect::<Vec<_>>().join(", "))]
    Cycle(Vec<String>),
    /// A `-p name=value` the pipeline cannot take.
    #[error("parameter '{name}': {message}")]
    Parameter { name: String, message: String },
    /// A placeholder in a task's command or args that cannot be resolved.
    #[error("task '{task}': placeholder {placeholder}: {message}")]
    Placeholder {
        task: String,
        placeholder: String,
        message: String,
    },
    /// Files and processes.
    #[error("{0}")]
    Io(String),
}

impl PipelineError {
    pub(crate) fn task(task: &str, message: impl Into<String>) -> PipelineError {
        PipelineError::Task {
            task: task.to_string(),
            message: message.into(),
        }
    }
    pub(crate) fn unsupported(task: &str, feature: impl Into<String>) -> PipelineError {
        PipelineError::Unsupported {
            task: task.to_string(),
            feature: feature.into(),
        }
    }
}
