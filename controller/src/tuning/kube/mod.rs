//! Katib's Experiments and Trials on Kubernetes (`kubeflow.org/v1beta1`), Osprey's controller
//! in Katib's place, with the search algorithms built in.
//!
//! - [`experiment`]: the Experiment reconciler (checks, suggestions as Trials, the end, status).
//! - [`trial`]: the Trial reconciler (its run resource, success/failure, the observation).
//! - [`runspec`]: a trial's run resource made ready (owner, labels, the metrics collector).
//! - [`gjson`]: the success/failure conditions' GJSON paths.
//! - [`run`]: the controllers.

pub mod experiment;
pub mod gjson;
pub mod run;
pub mod runspec;
pub mod trial;
