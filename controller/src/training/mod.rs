//! Training jobs: the Kubeflow training operator's PyTorchJob and TFJob, run by the controller
//! on Kubernetes and by `osprey train run` on one machine with the same semantics.
//!
//! - [`crd`]: the resources (`kubeflow.org/v1`), the operator's field names.
//! - [`job`]: the checked job both runners act on; framework conventions, restart policies.
//! - [`validate`]: specs checked field by field into a [`job::Job`].
//! - [`env`]: each replica's environment (PyTorch's `MASTER_ADDR`... and `PET_*`, `TF_CONFIG`).
//! - [`status`]: the state machine (conditions, restarts, backoff, deadline, suspend, TTL).
//! - [`labels`]: the operator's pod labels.
//! - [`desired`]: a replica's pod and headless Service.
//! - [`reconcile`]: the Kubernetes reconciler.
//! - [`run`]: the controllers for both kinds.
//! - [`local`]: `osprey train run`, replicas as local processes.

pub mod crd;
pub mod desired;
pub mod env;
pub mod job;
pub mod labels;
pub mod local;
pub mod reconcile;
pub mod run;
pub mod status;
pub mod validate;

#[cfg(test)]
mod tests;
