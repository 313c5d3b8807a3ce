//! The `random` algorithm: each parameter drawn independently from its domain and
//! distribution; seeded (`random_state` in Katib's settings), and never suggesting an assignment
//! it already suggested while fresh ones remain (small discrete spaces).

use super::rng::Rng;
use super::space::{Assignment, Param};

/// Random search over a checked space.
#[derive(Debug, Clone)]
pub struct RandomSearch {
    params: Vec<Param>,
    rng: Rng,
}

impl RandomSearch {
    pub fn new(params: Vec<Param>, seed: u64) -> RandomSearch {
        RandomSearch {
            params,
            rng: Rng::new(seed),
        }
    }

    /// `n` new assignments, distinct from `seen` (the trials so far, pending ones included)
    /// and from each other when a few draws allow it.
    pub fn suggest(&mut self, n: usize, seen: &[Assignment]) -> Vec<Assignment> {
        let mut out: Vec<Assignment> = Vec::with_capacity(n);
        for _ in 0..n {
            let mut candidate = self.draw();
            for _ in 0..64 {
                if !seen.contains(&candidate) && !out.contains(&candidate) {
                    break;
                }
                candidate = self.draw();
            }
            out.push(candidate);
        }
        out
    }

    fn draw(&mut self) -> Assignment {
        self.params
            .iter()
            .map(|p| (p.name.clone(), p.sample(&mut self.rng)))
            .collect()
    }
}
