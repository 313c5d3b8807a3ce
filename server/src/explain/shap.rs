//! KernelSHAP (Lundberg & Lee, 2017): Shapley values of a model's output for one row, estimated
//! by weighted least squares over coalitions of features, with the efficiency constraint
//! `sum(phi) = f(x) - f(baseline)` imposed exactly.
//!
//! Pure: [`plan`] picks coalitions, the caller evaluates the model on
//! `where(coalition, x, baseline)`, [`solve`] turns the values into attributions.

/// Coalitions to evaluate and their regression weights.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    /// `true` = the feature takes the row's value, `false` = the baseline's.
    pub coalitions: Vec<Vec<bool>>,
    pub weights: Vec<f64>,
    /// Whether every coalition was enumerated (exact Shapley values).
    pub exact: bool,
}

/// A small deterministic generator (xorshift64*), so that a seed reproduces an explanation.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform in [0, 1).
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

fn binomial(n: usize, k: usize) -> f64 {
    (0..k).fold(1.0, |acc, i| acc * (n - i) as f64 / (i + 1) as f64)
}

/// The Shapley kernel weight of one coalition of size `s` out of `m` features.
fn kernel_weight(m: usize, s: usize) -> f64 {
    (m - 1) as f64 / (binomial(m, s) * s as f64 * (m - s) as f64)
}

/// Coalitions for `m` features: all `2^m - 2` proper non-empty ones when there are at most
/// `samples`, else `samples` drawn (in complementary pairs) with sizes following the kernel, each
/// then weighted equally.
pub fn plan(m: usize, samples: usize, seed: u64) -> Plan {
    if m < 2 {
        return Plan {
            coalitions: Vec::new(),
            weights: Vec::new(),
            exact: true,
        };
    }
    let all = if m < 63 { (1u64 << m) - 2 } else { u64::MAX };
    if all <= samples as u64 {
        let mut coalitions = Vec::with_capacity(all as usize);
        let mut weights = Vec::with_capacity(all as usize);
        for bits in 1..(1u64 << m) - 1 {
            let c: Vec<bool> = (0..m).map(|j| bits >> j & 1 == 1).collect();
            let s = c.iter().filter(|&&b| b).count();
            weights.push(kernel_weight(m, s));
            coalitions.push(c);
        }
        return Plan {
            coalitions,
            weights,
            exact: true,
        };
    }
    let size_p: Vec<f64> = (1..m).map(|s| 1.0 / (s * (m - s)) as f64).collect();
    let total: f64 = size_p.iter().sum();
    let mut rng = Rng::new(seed);
    let mut coalitions = Vec::with_capacity(samples);
    while coalitions.len() < samples.max(2) {
        let mut u = rng.unit() * total;
        let mut s = m - 1;
        for (i, p) in size_p.iter().enumerate() {
            if u < *p {
                s = i + 1;
                break;
            }
            u -= p;
        }
        // A uniformly random subset of size s (partial Fisher-Yates).
        let mut idx: Vec<usize> = (0..m).collect();
        for i in 0..s {
            let j = i + (rng.next_u64() % (m - i) as u64) as usize;
            idx.swap(i, j);
        }
        let mut c = vec![false; m];
        for &i in &idx[..s] {
            c[i] = true;
        }
        let complement: Vec<bool> = c.iter().map(|b| !b).collect();
        coalitions.push(c);
        coalitions.push(complement);
    }
    let n = coalitions.len();
    Plan {
        coalitions,
        weights: vec![1.0 / n as f64; n],
        exact: false,
    }
}

/// Solves `A x = b` (A symmetric positive semi-definite, row-major `n x n`) by Gaussian
/// elimination with partial pivoting; a tiny ridge keeps rank-deficient systems solvable.
fn solve_linear(mut a: Vec<f64>, mut b: Vec<f64>, n: usize) -> Vec<f64> {
    let scale = (0..n)
        .map(|i| a[i * n + i].abs())
        .fold(0.0, f64::max)
        .max(1e-300);
    for i in 0..n {
        a[i * n + i] += scale * 1e-12;
    }
    for col in 0..n {
        let pivot = (col..n)
            .max_by(|&x, &y| a[x * n + col].abs().total_cmp(&a[y * n + col].abs()))
            .unwrap_or(col);
        if pivot != col {
            for k in 0..n {
                a.swap(col * n + k, pivot * n + k);
            }
            b.swap(col, pivot);
        }
        let d = a[col * n + col];
        if d.abs() < 1e-300 {
            continue;
        }
        for row in col + 1..n {
            let f = a[row * n + col] / d;
            if f != 0.0 {
                for k in col..n {
                    a[row * n + k] -= f * a[col * n + k];
                }
                b[row] -= f * b[col];
            }
        }
    }
    let mut x = vec![0.0; n];
    for i in (0..n).rev() {
        let d = a[i * n + i];
        let s: f64 = (i + 1..n).map(|k| a[i * n + k] * x[k]).sum();
        x[i] = if d.abs() < 1e-300 {
            0.0
        } else {
            (b[i] - s) / d
        };
    }
    x
}

/// Attributions from the model's values on the plan's coalitions, `f(x)` and `f(baseline)`.
/// They sum to `fx - fb` exactly.
pub fn solve(plan: &Plan, values: &[f64], fx: f64, fb: f64) -> Vec<f64> {
    let m = plan.coalitions.first().map_or(1, Vec::len);
    let delta = fx - fb;
    if m < 2 || plan.coalitions.is_empty() {
        return vec![delta; m.min(1)];
    }
    // Eliminate the last feature: phi_last = delta - sum(phi_j), j < last.
    let n = m - 1;
    let mut ata = vec![0.0; n * n];
    let mut atb = vec![0.0; n];
    for ((c, &w), &v) in plan.coalitions.iter().zip(&plan.weights).zip(values) {
        let zl = f64::from(u8::from(c[n]));
        let row: Vec<f64> = (0..n).map(|j| f64::from(u8::from(c[j])) - zl).collect();
        let y = v - fb - zl * delta;
        for i in 0..n {
            if row[i] == 0.0 {
                continue;
            }
            atb[i] += w * row[i] * y;
            for j in 0..n {
                ata[i * n + j] += w * row[i] * row[j];
            }
        }
    }
    let mut phi = solve_linear(ata, atb, n);
    let rest: f64 = phi.iter().sum();
    phi.push(delta - rest);
    phi
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn eval(f: &dyn Fn(&[f64]) -> f64, x: &[f64], b: &[f64], plan: &Plan) -> Vec<f64> {
        plan.coalitions
            .iter()
            .map(|c| {
                let z: Vec<f64> = c
                    .iter()
                    .enumerate()
                    .map(|(j, &on)| if on { x[j] } else { b[j] })
                    .collect();
                f(&z)
            })
            .collect()
    }

    #[test]
    fn exact_for_a_linear_model() {
        let w = [1.0, -2.0, 3.0, 0.5];
        let f = |z: &[f64]| 0.25 + z.iter().zip(&w).map(|(a, b)| a * b).sum::<f64>();
        let (x, b) = ([1.0, 2.0, 3.0, 4.0], [0.5, 0.0, -1.0, 4.0]);
        let p = plan(4, 512, 0);
        assert!(p.exact);
        let phi = solve(&p, &eval(&f, &x, &b, &p), f(&x), f(&b));
        for j in 0..4 {
            assert!((phi[j] - w[j] * (x[j] - b[j])).abs() < 1e-9, "{phi:?}");
        }
    }

    #[test]
    fn interaction_is_split_evenly() {
        // f = z0 * z1: Shapley gives half of the product to each.
        let f = |z: &[f64]| z[0] * z[1];
        let (x, b) = ([2.0, 3.0], [0.0, 0.0]);
        let p = plan(2, 100, 0);
        let phi = solve(&p, &eval(&f, &x, &b, &p), f(&x), f(&b));
        assert!(
            (phi[0] - 3.0).abs() < 1e-9 && (phi[1] - 3.0).abs() < 1e-9,
            "{phi:?}"
        );
    }

    #[test]
    fn sampling_is_reproducible() {
        assert_eq!(plan(20, 64, 7), plan(20, 64, 7));
        assert_ne!(plan(20, 64, 7), plan(20, 64, 8));
        assert!(!plan(20, 64, 7).exact);
    }

    proptest! {
        #[test]
        fn sampled_linear_is_exact_and_efficient(
            w in prop::collection::vec(-5.0f64..5.0, 12),
            x in prop::collection::vec(-3.0f64..3.0, 12),
            seed in 0u64..1000,
        ) {
            let f = |z: &[f64]| z.iter().zip(&w).map(|(a, b)| a * b).sum::<f64>();
            let b = vec![0.0; 12];
            let p = plan(12, 400, seed);
            prop_assert!(!p.exact);
            let phi = solve(&p, &eval(&f, &x, &b, &p), f(&x), f(&b));
            let sum: f64 = phi.iter().sum();
            prop_assert!((sum - (f(&x) - f(&b))).abs() < 1e-6);
            for j in 0..12 {
                prop_assert!((phi[j] - w[j] * x[j]).abs() < 1e-5, "{} vs {}", phi[j], w[j] * x[j]);
            }
        }

        #[test]
        fn nonlinear_attributions_sum_to_the_difference(
            x in prop::collection::vec(-2.0f64..2.0, 6),
        ) {
            let f = |z: &[f64]| (z[0] * z[1]).tanh() + z[2].exp() - z[3] * z[4] * z[5];
            let b = vec![0.1; 6];
            let p = plan(6, 512, 1);
            let phi = solve(&p, &eval(&f, &x, &b, &p), f(&x), f(&b));
            let sum: f64 = phi.iter().sum();
            prop_assert!((sum - (f(&x) - f(&b))).abs() < 1e-9);
        }
    }
}
