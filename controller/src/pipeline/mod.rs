//! Kubeflow Pipelines (KFP v2): pipelines compiled by the official SDK run on this machine by
//! `osprey pipeline run`, each task a local process under the executor contract KFP's launcher
//! keeps.
//!
//! - [`spec`]: the compiled pipeline (PipelineSpec IR) as serde types.
//! - [`dag`]: the root DAG checked into a plan (components, executors, dependencies, order);
//!   unsupported features refused by task name.
//! - [`executor`]: input values, the ExecutorInput JSON, placeholders, outputs read back.
//! - [`local`]: the runner (states, parallelism, logs, the run's report).
//! - [`launch`]: `osprey pipeline launch`, the launcher inside a task's pod on Kubernetes.
//! - [`kube`]: the PipelineRun resource and task pods (Kubernetes).
//! - [`error`]: what stops a run before it starts.

pub mod dag;
pub mod error;
pub mod executor;
pub mod kube;
pub mod launch;
pub mod local;
pub mod spec;

pub use error::PipelineError;

#[cfg(test)]
mod tests;
