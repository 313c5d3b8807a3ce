//! Hyperparameter tuning, Katib's way (`kubeflow.org/v1beta1` Experiments): the first pieces.
//!
//! - [`space`]: the search space as Katib writes it (`parameters[].feasibleSpace`, values as
//!   strings), checked into typed parameters with errors naming the field, sampled per
//!   distribution and enumerated as a grid.
//! - [`rng`]: a small deterministic random generator (the same seed gives the same trials).
//! - [`suggest`]: the interface of every algorithm (next assignments from the trials so far,
//!   no state kept between calls) and the algorithm of a plan.
//! - [`random`], [`grid`]: the `random` and `grid` algorithms.
//! - [`tpe`]: the `tpe` algorithm (univariate Tree-structured Parzen Estimator).
//! - [`experiment`]: the Experiment manifest (Katib's field names) checked into a plan; trial
//!   specs with `${trialParameters.x}` substituted.
//! - [`metrics`]: Katib's StdOut metrics format.
//! - [`local`]: `osprey tune run` (trials as local processes).
//! - [`ask`]: `osprey tune suggest` (the next assignments for given trials).
//! - [`report`]: `osprey tune run`'s progress lines, and its CSV and HTML reports (`--csv`,
//!   `--plot`).

pub mod ask;
pub mod experiment;
pub mod grid;
pub mod local;
pub mod metrics;
pub mod random;
pub mod report;
pub mod rng;
pub mod space;
pub mod suggest;
pub mod tpe;

#[cfg(test)]
mod tests;
