//! Pipelines on Kubernetes: the PipelineRun resource and the pieces the PipelineRun controller
//! is built from (the controller itself is still to come).
//!
//! - [`crd`]: the PipelineRun resource (`pipelines.osprey.dev/v1alpha1`): spec, validation,
//!   status.
//! - [`pod`]: a task's pod (init container bringing in the launcher, the component's image
//!   running `osprey pipeline launch`), and the task's outcome read back from a finished pod.
//!
//! Inside each task pod, [`super::launch`] (`osprey pipeline launch`) runs the component.

pub mod crd;
pub mod pod;

#[cfg(test)]
mod tests;
