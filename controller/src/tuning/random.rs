//! The `random` algorithm: each parameter drawn independently from its domain and
//! distribution; seeded (`random_state` in Katib's settings), and never suggesting an assignment
//! already tried or pending while fresh ones remain (small discrete spaces).

use super::space::{Assignment, Param};
use super::suggest::{assignments, rng_for, Algorithm, Seen};

/// Random search over a checked space.
#[derive(Debug, Clone)]
pub struct RandomSearch {
    params: Vec<Param>,
    seed: u64,
}

impl RandomSearch {
    pub fn new(params: Vec<Param>, seed: u64) -> RandomSearch {
        RandomSearch { params, seed }
    }
}

impl Algorithm for RandomSearch {
    fn suggest(&self, trials: &[Seen], n: usize, _maximize: bool) -> Vec<Assignment> {
        let seen = assignments(trials);
        let mut out: Vec<Assignment> = Vec::with_capacity(n);
        for i in 0..n {
            let mut rng = rng_for(self.seed, trials.len() + i);
            let mut draw = || -> Assignment {
                self.params
                    .iter()
                    .map(|p| (p.name.clone(), p.sample(&mut rng)))
                    .collect()
            };
            let mut candidate = draw();
            for _ in 0..64 {
                if !seen.contains(&candidate) && !out.contains(&candidate) {
                    break;
                }
                candidate = draw();
            }
            out.push(candidate);
        }
        out
    }
}
