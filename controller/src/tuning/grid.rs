//! The `grid` algorithm: every combination of every parameter's values (int by step, double by
//! its required step, the lists as given), in order, the first parameter varying slowest; an
//! assignment already tried is not suggested again, and the grid ends when all are.

use super::space::{Assignment, Param};
use super::suggest::{assignments, Algorithm, Seen};

/// Grid search over a checked space.
#[derive(Debug, Clone)]
pub struct GridSearch {
    params: Vec<Param>,
    values: Vec<Vec<String>>,
}

/// Grids larger than this are refused (a typo in a step would otherwise allocate forever).
pub const MAX_GRID: usize = 1_000_000;

impl GridSearch {
    /// Errors: a double without a step, or a grid above [`MAX_GRID`] points.
    pub fn new(params: Vec<Param>) -> Result<GridSearch, String> {
        let values = params
            .iter()
            .map(|p| p.grid_values())
            .collect::<Result<Vec<_>, _>>()?;
        let size = values
            .iter()
            .try_fold(1usize, |acc, v| acc.checked_mul(v.len()))
            .filter(|n| *n <= MAX_GRID)
            .ok_or_else(|| format!("the grid has more than {MAX_GRID} points"))?;
        if size == 0 {
            return Err("the grid is empty".into());
        }
        Ok(GridSearch { params, values })
    }

    /// How many points the grid has.
    pub fn len(&self) -> usize {
        self.values.iter().map(Vec::len).product()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Point `i` of the grid (None past the end).
    pub fn point(&self, mut i: usize) -> Option<Assignment> {
        if i >= self.len() {
            return None;
        }
        let mut picks = vec![String::new(); self.values.len()];
        for (slot, vals) in picks.iter_mut().zip(self.values.iter()).rev() {
            let n = vals.len();
            *slot = vals.get(i % n)?.clone();
            i /= n;
        }
        Some(
            self.params
                .iter()
                .map(|p| p.name.clone())
                .zip(picks)
                .collect(),
        )
    }

    /// Up to `n` points not in `seen`, in grid order.
    pub fn suggest(&self, n: usize, seen: &[Assignment]) -> Vec<Assignment> {
        (0..self.len())
            .filter_map(|i| self.point(i))
            .filter(|a| !seen.contains(a))
            .take(n)
            .collect()
    }
}

impl Algorithm for GridSearch {
    fn suggest(&self, trials: &[Seen], n: usize, _maximize: bool) -> Vec<Assignment> {
        GridSearch::suggest(self, n, &assignments(trials))
    }
}
