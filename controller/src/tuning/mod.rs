//! Hyperparameter tuning, Katib's way (`kubeflow.org/v1beta1` Experiments): the first pieces.
//!
//! - [`space`]: the search space as Katib writes it (`parameters[].feasibleSpace`, values as
//!   strings), checked into typed parameters with errors naming the field, sampled per
//!   distribution and enumerated as a grid.
//! - [`rng`]: a small deterministic random generator (the same seed gives the same trials).
//! - [`random`], [`grid`]: the `random` and `grid` algorithms.

pub mod grid;
pub mod random;
pub mod rng;
pub mod space;

#[cfg(test)]
mod tests;
