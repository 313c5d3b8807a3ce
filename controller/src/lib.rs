//! The Osprey controller: InferenceService resources (see [`crd`]) reconciled into Deployments,
//! Services and autoscalers of Osprey servers. [`desired`] computes what should exist without
//! talking to the cluster.

pub mod cmd;
pub mod crd;
pub mod desired;
pub mod error;
pub mod leader;
pub mod pipeline;
pub mod pull;
pub mod reconcile;
pub mod run;
pub mod training;

pub use error::{Error, SpecError};
