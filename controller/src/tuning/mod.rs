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
//! - [`mtpe`]: the `multivariate-tpe` algorithm (joint Parzen estimators).
//! - [`bayes`]: the `bayesianoptimization` algorithm (Gaussian process, EI/PI/LCB).
//! - [`cmaes`]: the `cmaes` algorithm (CMA-ES, generations replayed from the trials).
//! - [`hyperband`]: the `hyperband` algorithm (successive halving over a budget parameter).
//! - [`cube`]: parameters as unit-cube coordinates and back to valid values, for the
//!   model-based algorithms; [`numeric`]: the normal distribution, Cholesky, eigenvectors.
//! - [`settings`]: reading `algorithmSettings` with errors naming the field.
//! - [`early`]: `spec.earlyStopping` (Katib's `medianstop` rule).
//! - [`experiment`]: the Experiment manifest (Katib's field names) checked into a plan; trial
//!   specs with `${trialParameters.x}` substituted.
//! - [`status`]: what Katib reports (conditions, counts, optimal trial, observations).
//! - [`trial`]: the Trial resource.
//! - [`metrics`]: Katib's StdOut metrics format.
//! - [`collector`]: `metricsCollectorSpec` checked (StdOut, File TEXT/JSON, custom filters).
//! - [`local`]: `osprey tune run` (trials as local processes).
//! - [`collect`]: `osprey tune collect`, the metrics collector wrapping a trial's command in
//!   its pod (observation and early stopping through the termination message).
//! - [`kube`]: the Experiment and Trial controllers (Kubernetes).
//! - [`ask`]: `osprey tune suggest` (the next assignments for given trials).
//! - [`report`]: `osprey tune run`'s progress lines, and its CSV and HTML reports (`--csv`,
//!   `--plot`).

pub mod ask;
pub mod bayes;
pub mod cmaes;
pub mod collect;
pub mod collector;
pub mod cube;
pub mod early;
pub mod experiment;
pub mod grid;
pub mod hyperband;
pub mod kube;
pub mod local;
pub mod metrics;
pub mod mtpe;
pub mod numeric;
pub mod random;
pub mod report;
pub mod rng;
pub mod settings;
pub mod space;
pub mod status;
pub mod suggest;
pub mod tpe;
pub mod trial;

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_algos;
#[cfg(test)]
mod tests_cmaes;
#[cfg(test)]
mod tests_early;
#[cfg(test)]
mod tests_hyperband;
