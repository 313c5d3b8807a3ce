//! The Osprey controller: InferenceService resources (see [`crd`]) reconciled into Deployments,
//! Services and autoscalers of Osprey servers; Kubeflow's training jobs and KFP pipelines, on
//! Kubernetes and on one machine.
//!
//! - [`cmd`]: `osprey controller` and `osprey crd` (flags, leader election, the controllers run).
//! - [`crd`]: the InferenceService resource and its status.
//! - [`desired`]: what should exist for an InferenceService, computed without the cluster.
//! - [`reconcile`], [`run`]: the InferenceService reconciler and its controller loop.
//! - [`leader`]: leader election through a Lease.
//! - [`pull`]: `osprey pull` (model repositories from file, PVC, HTTP, S3, GCS).
//! - [`training`]: PyTorchJob / TFJob (`kubeflow.org/v1`) and `osprey train run`.
//! - [`pipeline`]: KFP v2 pipelines: the engine, `osprey pipeline run`, the PipelineRun
//!   controller and the in-pod launcher.
//! - [`tuning`]: Katib-style hyperparameter tuning (search space, random and grid so far).
//! - [`events`]: Kubernetes Events (the recorder, publishing).
//! - [`error`]: the crate's errors.

pub mod cmd;
pub mod crd;
pub mod desired;
pub mod error;
pub mod events;
pub mod leader;
pub mod pipeline;
pub mod pull;
pub mod reconcile;
pub mod run;
pub mod training;
pub mod tuning;

pub use error::{Error, SpecError};
