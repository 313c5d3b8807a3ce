//! A fixed-size log-linear (HDR-style) bucket array of atomic counts, for quantiles of
//! microsecond latencies with bounded relative error.
//!
//! Values below `2^(SUB_BITS + 1)` (64 µs) have a bucket each and are exact. Above, every power
//! of two `[2^k, 2^(k+1))` is cut into `2^SUB_BITS` (32) equal buckets, each at most 1/32 of its
//! lower bound wide; a quantile is reported as the midpoint of the bucket holding the sample of
//! that rank, so it is within **1/64 (≈1.6 %) relative error** of that sample's value. Values
//! from `2^MAX_BITS` µs (about 19 hours) up share the last bucket.
//!
//! Recording is one relaxed `fetch_add`; the array never grows.

use std::sync::atomic::{AtomicU32, Ordering};

const SUB_BITS: u32 = 5;
const SUB: u64 = 1 << SUB_BITS;
/// Values are clamped below `2^MAX_BITS` µs.
const MAX_BITS: u32 = 36;
/// Buckets: the exact ones below `2 * SUB`, then `SUB` per power of two up to `2^MAX_BITS`.
pub const BUCKETS: usize = ((MAX_BITS - SUB_BITS - 1) as usize) * SUB as usize + 2 * SUB as usize;

/// The largest relative error of a reported quantile against the sample of that rank.
#[cfg(test)]
pub const RELATIVE_ERROR: f64 = 1.0 / (2 * SUB) as f64;

/// The bucket of `v`.
pub fn index(v: u64) -> usize {
    let v = v.min((1 << MAX_BITS) - 1);
    if v < 2 * SUB {
        return v as usize;
    }
    let k = 63 - v.leading_zeros(); // floor(log2 v) > SUB_BITS
    let shift = k - SUB_BITS;
    (u64::from(shift) * SUB + (v >> shift)) as usize
}

/// The value a bucket reports: the value itself below `2 * SUB`, else the bucket's midpoint.
pub fn value(i: usize) -> f64 {
    let i = i as u64;
    if i < 2 * SUB {
        return i as f64;
    }
    let shift = i / SUB - 1;
    let low = (i - shift * SUB) << shift;
    let width = 1u64 << shift;
    low as f64 + (width - 1) as f64 / 2.0
}

/// Counts per bucket; each count wraps only past 2^32 samples in one age bucket.
pub struct Buckets(Box<[AtomicU32]>);

impl Default for Buckets {
    fn default() -> Buckets {
        Buckets((0..BUCKETS).map(|_| AtomicU32::new(0)).collect())
    }
}

impl Buckets {
    /// Counts `n` samples of value `v`.
    pub fn add(&self, v: u64, n: u32) {
        if let Some(c) = self.0.get(index(v)) {
            c.fetch_add(n, Ordering::Relaxed);
        }
    }

    pub fn clear(&self) {
        for c in self.0.iter() {
            c.store(0, Ordering::Relaxed);
        }
    }

    /// Adds these counts to `into` (of length [`BUCKETS`]).
    pub fn merge_into(&self, into: &mut [u64]) {
        for (sum, c) in into.iter_mut().zip(self.0.iter()) {
            *sum += u64::from(c.load(Ordering::Relaxed));
        }
    }
}

/// The `q` quantile of merged counts `merged` holding `total` samples: the value of the bucket
/// of the sample of rank `ceil(q * total)`; NaN when there is none (as Prometheus' clients).
pub fn quantile(merged: &[u64], total: u64, q: f64) -> f64 {
    if total == 0 {
        return f64::NAN;
    }
    let rank = ((q * total as f64).ceil() as u64).clamp(1, total);
    let mut seen = 0u64;
    for (i, c) in merged.iter().enumerate() {
        seen += c;
        if seen >= rank {
            return value(i);
        }
    }
    f64::NAN
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_contiguous_and_their_values_within_the_error() {
        for v in 0..5000u64 {
            assert!(index(v + 1) - index(v) <= 1, "{v}: a gap");
        }
        let powers = (0..MAX_BITS).map(|b| 1u64 << b);
        let odd = [(1 << MAX_BITS) - 1, 123_456_789, 7_777_777, 65, 100];
        for v in (0..5000u64).chain(powers).chain(odd) {
            let i = index(v);
            assert!(i < BUCKETS, "{v} -> {i}");
            let got = value(i);
            let err = (got - v as f64).abs() / (v as f64).max(1.0);
            assert!(err <= RELATIVE_ERROR, "{v}: {got} ({err})");
        }
        assert_eq!(
            index(u64::MAX),
            BUCKETS - 1,
            "huge values share the last bucket"
        );
        assert_eq!(index(63), 63, "exact below 64");
        assert_eq!(value(63), 63.0);
    }

    #[test]
    fn quantiles_pick_the_bucket_of_the_rank() {
        let b = Buckets::default();
        for v in 1..=100u64 {
            b.add(v, 1);
        }
        let mut merged = vec![0u64; BUCKETS];
        b.merge_into(&mut merged);
        for (q, want) in [(0.5, 50.0), (0.9, 90.0), (0.99, 99.0), (0.01, 1.0)] {
            let got = quantile(&merged, 100, q);
            assert!((got - want).abs() / want <= RELATIVE_ERROR, "{q}: {got}");
        }
        assert!(quantile(&merged, 0, 0.5).is_nan());
    }
}
