//! Pipelines on Kubernetes: the PipelineRun resource, its task pods and the controller that
//! runs them with the same engine as `osprey pipeline run`.
//!
//! - [`crd`]: the PipelineRun resource (`pipelines.osprey.dev/v1alpha1`): spec, validation,
//!   status.
//! - [`pod`]: a task's pod (init container bringing in the launcher, the component's image
//!   running `osprey pipeline launch`), and the task's outcome read back from a finished pod.
//! - [`cache`]: the namespace's task cache (ConfigMaps by fingerprint).
//! - [`status`]: the engine's task records in the run's status and back.
//! - [`reconcile`]: one reconcile of a run (pods observed, the engine stepped, pods created,
//!   the status written).
//! - [`run`]: the controller loop, when the cluster serves the PipelineRun CRD.
//!
//! Inside each task pod, [`super::launch`] (`osprey pipeline launch`) runs the component.

pub mod cache;
pub mod crd;
pub mod pod;
pub mod reconcile;
pub mod run;
pub mod status;

#[cfg(test)]
mod tests;
