//! Triton's response cache: one server-wide, byte-bounded LRU of answers (`--cache-config
//! local,size=N`), used by the models whose configuration says `response_cache { enable: true }`.
//! A hit is answered without the scheduler or the runtime; a miss runs and its answer is stored.
//!
//! Modules: [`lru`] the bounded LRU itself; [`key`] what identifies an answer (a SHA-256
//! digest of the model, its version, the inputs and the requested outputs).

pub mod key;
pub mod lru;

pub use key::{request_key, Key};
pub use lru::ResponseCache;

use crate::metrics::triton::TritonCacheMetrics;
use osprey_protocol::Tensor;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// Why a `--cache-config` value is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CacheConfigError {
    #[error("--cache-config {0}: expected local,size=N (N in bytes)")]
    Malformed(String),
    #[error("--cache-config {0}: unknown cache '{1}'; the only cache is 'local'")]
    UnknownKind(String, String),
    #[error("--cache-config {0}: unknown setting '{1}'; the local cache takes only size")]
    UnknownSetting(String, String),
    #[error("--cache-config {0}: size '{1}' is not a number of bytes")]
    BadSize(String, String),
    #[error("--cache-config {0}: size must be > 0")]
    ZeroSize(String),
    #[error("--cache-config {0}: size is missing (local,size=N)")]
    NoSize(String),
}

/// The server's cache, as `--cache-config` gives it (Triton's spelling: `local,size=1048576`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CacheConfig {
    /// Most bytes the cache holds: keys and the cached output tensors.
    pub size: usize,
}

impl std::str::FromStr for CacheConfig {
    type Err = CacheConfigError;

    fn from_str(spec: &str) -> Result<CacheConfig, CacheConfigError> {
        let mut parts = spec.split(',');
        let kind = parts.next().unwrap_or_default().trim();
        if kind != "local" {
            return Err(match kind {
                "" => CacheConfigError::Malformed(spec.into()),
                k => CacheConfigError::UnknownKind(spec.into(), k.into()),
            });
        }
        let mut size = None;
        for part in parts {
            let Some((k, v)) = part.split_once('=') else {
                return Err(CacheConfigError::Malformed(spec.into()));
            };
            match k.trim() {
                "size" => {
                    let n: usize = v
                        .trim()
                        .parse()
                        .map_err(|_| CacheConfigError::BadSize(spec.into(), v.into()))?;
                    if n == 0 {
                        return Err(CacheConfigError::ZeroSize(spec.into()));
                    }
                    size = Some(n);
                }
                other => return Err(CacheConfigError::UnknownSetting(spec.into(), other.into())),
            }
        }
        size.map(|size| CacheConfig { size })
            .ok_or_else(|| CacheConfigError::NoSize(spec.into()))
    }
}

/// Loads of a model version so far, server-wide: each load's keys differ.
static LOADS: AtomicU64 = AtomicU64::new(0);

/// One loaded model version's use of the server's cache, with its Triton counters.
pub struct ModelCache {
    cache: Arc<ResponseCache>,
    metrics: TritonCacheMetrics,
    /// This load of the version: a reload (new files under the same version, a new
    /// configuration) never finds the answers of the previous load, which age out.
    load: u64,
}

impl ModelCache {
    pub fn new(cache: Arc<ResponseCache>, model: &str, version: &str) -> ModelCache {
        ModelCache {
            cache,
            metrics: TritonCacheMetrics::new(model, version),
            load: LOADS.fetch_add(1, Ordering::Relaxed),
        }
    }

    /// The key of `req` to this load of version `version` of `model`; None when the request
    /// must not be cached.
    pub fn key(&self, model: &str, version: u64, req: &crate::infer::Prepared) -> Option<Key> {
        request_key(model, version, self.load, req)
    }

    /// The cached outputs under `key`, if any (counts nothing: see [`ModelCache::hit`]).
    pub fn get(&self, key: &Key) -> Option<Vec<Tensor>> {
        // The lock is held only to clone the Arc; the tensors are copied outside it.
        self.cache.get(key).map(|outputs| outputs.to_vec())
    }

    /// Stores a computed answer (not stored when larger than the whole cache).
    pub fn put(&self, key: Key, outputs: &[Tensor]) {
        self.cache.insert(key, outputs);
    }

    /// Counts a hit that took `d` (lookup and copy) in the metrics.
    pub fn hit(&self, d: std::time::Duration) {
        self.metrics.hit(d);
    }

    /// Counts a miss that took `d` (lookup and insertion) in the metrics.
    pub fn miss(&self, d: std::time::Duration) {
        self.metrics.miss(d);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tritons_spelling_parses() {
        assert_eq!(
            "local,size=1048576".parse::<CacheConfig>(),
            Ok(CacheConfig { size: 1_048_576 })
        );
    }

    #[test]
    fn bad_specs_are_refused_naming_the_flag() {
        for (spec, why) in [
            ("local,size=0", "size must be > 0"),
            ("redis,size=10", "unknown cache 'redis'"),
            ("local", "size is missing"),
            ("local,size=ten", "size 'ten' is not a number"),
            ("local,size=-1", "is not a number"),
            ("local,ttl=5", "unknown setting 'ttl'"),
            ("local,size", "expected local,size=N"),
            ("", "expected local,size=N"),
        ] {
            let e = spec.parse::<CacheConfig>().expect_err(spec).to_string();
            assert!(e.starts_with(&format!("--cache-config {spec}:")), "{e}");
            assert!(e.contains(why), "{spec}: {e}");
        }
        assert_eq!(
            "local,size=0"
                .parse::<CacheConfig>()
                .expect_err("zero")
                .to_string(),
            "--cache-config local,size=0: size must be > 0"
        );
    }
}
