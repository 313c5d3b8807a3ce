//! Kubeflow Pipelines (KFP v2): pipelines compiled by the official SDK run by one engine,
//! on this machine by `osprey pipeline run` (tasks as local processes) under the executor
//! contract KFP's launcher keeps.
//!
//! - [`spec`]: the compiled pipeline (PipelineSpec IR) as serde types.
//! - [`dag`]: every DAG checked (components, executors, bindings, conditions, order);
//!   unsupported features refused by task name.
//! - [`engine`]: the run as a state machine over task records: nested DAGs, conditions, loops,
//!   exit handlers, retries, importers, cache keys; where tasks run is not its business.
//! - [`cel`]: CEL conditions and parameter selectors as the compiler writes them.
//! - [`cache`]: task fingerprints and the local cache store.
//! - [`executor`]: input values, the ExecutorInput JSON, placeholders, outputs read back.
//! - [`local`]: the local runner (processes, parallelism, live states, logs, run.json).
//! - [`time`]: RFC 3339 times of the records.
//! - [`launch`]: `osprey pipeline launch`, the launcher inside a task's pod on Kubernetes.
//! - [`kube`]: the PipelineRun resource, its task pods and its reconciler (Kubernetes).
//! - [`error`]: what stops a run before it starts.

pub mod cache;
pub mod cel;
pub mod dag;
pub mod engine;
pub mod error;
pub mod executor;
pub mod kube;
pub mod launch;
pub mod local;
pub mod spec;
pub mod time;

pub use error::PipelineError;

#[cfg(test)]
mod engine_tests;
#[cfg(test)]
mod tests;
