//! The one interface every search algorithm implements: the next assignments from the trials so
//! far, nothing else. Algorithms keep no state between calls (the randomness for the k-th trial
//! comes from the seed and k), so `osprey tune run`, `osprey tune suggest` and the Experiment
//! controller, which rebuilds everything from the Trials it finds, suggest the same trials for
//! the same history.

use super::bayes::Bayes;
use super::cmaes::Cmaes;
use super::experiment::AlgorithmKind;
use super::grid::GridSearch;
use super::hyperband::Hyperband;
use super::mtpe::MultivariateTpe;
use super::random::RandomSearch;
use super::rng::Rng;
use super::space::{Assignment, Param};
use super::tpe::Tpe;

/// What became of a trial, as the algorithms see it.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Created and not finished: its assignment must not be suggested again.
    Pending,
    /// Finished with this objective value (Succeeded, or EarlyStopped with its last value).
    Value(f64),
    /// Finished without a usable objective (Failed, MetricsUnavailable, Killed).
    Failed,
}

/// One trial: its assignment and outcome, in creation order.
#[derive(Debug, Clone, PartialEq)]
pub struct Seen {
    pub assignment: Assignment,
    pub outcome: Outcome,
}

/// A search algorithm.
pub trait Algorithm: Send + Sync {
    /// Up to `n` new assignments after `trials` (all of them so far, in creation order).
    /// Fewer than `n` means nothing more can be suggested now; none while no trial is pending
    /// means the search has ended (Katib's SuggestionEndReached).
    fn suggest(&self, trials: &[Seen], n: usize, maximize: bool) -> Vec<Assignment>;
}

/// The generator for the `k`-th trial of a search seeded with `seed`.
pub fn rng_for(seed: u64, k: usize) -> Rng {
    let mut r = Rng::new(seed ^ (k as u64).wrapping_mul(0xd1b5_4a32_d192_ed03));
    r.next_u64();
    r
}

/// The finished trials with an objective value.
pub fn history(trials: &[Seen]) -> Vec<(Assignment, f64)> {
    trials
        .iter()
        .filter_map(|t| match t.outcome {
            Outcome::Value(v) => Some((t.assignment.clone(), v)),
            _ => None,
        })
        .collect()
}

/// Every assignment tried or pending.
pub fn assignments(trials: &[Seen]) -> Vec<Assignment> {
    trials.iter().map(|t| t.assignment.clone()).collect()
}

/// The algorithm of a checked plan over its space.
pub fn build(kind: &AlgorithmKind, space: &[Param]) -> Result<Box<dyn Algorithm>, String> {
    Ok(match kind {
        AlgorithmKind::Random { seed } => Box::new(RandomSearch::new(space.to_vec(), *seed)),
        AlgorithmKind::Grid => Box::new(GridSearch::new(space.to_vec())?),
        AlgorithmKind::Tpe(s) => Box::new(Tpe::new(space.to_vec(), s.clone())),
        AlgorithmKind::Bayes(s) => Box::new(Bayes::new(space.to_vec(), s.clone())),
        AlgorithmKind::Cmaes(s) => Box::new(Cmaes::new(space.to_vec(), s.clone())),
        AlgorithmKind::Hyperband(s) => Box::new(Hyperband::new(space.to_vec(), s.clone())),
        AlgorithmKind::MultivariateTpe(s) => {
            Box::new(MultivariateTpe::new(space.to_vec(), s.clone()))
        }
    })
}
