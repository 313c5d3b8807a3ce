//! The bounded LRU behind the response cache: entries are answers' output tensors under a
//! [`Key`]; the bytes held (each key plus its tensors, see [`entry_bytes`]) never exceed the
//! capacity. The least recently used entries are evicted to make room; an answer larger than
//! the whole cache is not stored. One mutex guards it, held only for map operations (the
//! tensors are shared by `Arc`, copied by the caller outside the lock).

use super::Key;
use osprey_protocol::{Tensor, TensorData};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

/// The bytes one entry counts against the capacity: its key, and for every tensor its name,
/// its shape and its data in the binary wire form (BYTES elements with their 4-byte length).
pub fn entry_bytes(outputs: &[Tensor]) -> usize {
    let tensors: usize = outputs
        .iter()
        .map(|t| {
            let data = match &t.data {
                TensorData::Bytes(b) => b.iter().map(|e| e.len().saturating_add(4)).sum(),
                d => d
                    .len()
                    .saturating_mul(d.datatype().element_size().unwrap_or(1)),
            };
            t.name
                .len()
                .saturating_add(t.shape.len().saturating_mul(8))
                .saturating_add(data)
        })
        .fold(0usize, usize::saturating_add);
    tensors.saturating_add(std::mem::size_of::<Key>())
}

struct Entry {
    outputs: Arc<[Tensor]>,
    bytes: usize,
    /// Position in the use order: larger is more recent.
    tick: u64,
}

#[derive(Default)]
struct Lru {
    entries: HashMap<Key, Entry>,
    /// Use order: tick → key; the first is the least recently used.
    order: BTreeMap<u64, Key>,
    used: usize,
    next_tick: u64,
}

impl Lru {
    fn tick(&mut self) -> u64 {
        self.next_tick += 1;
        self.next_tick
    }

    fn remove(&mut self, key: &Key) {
        if let Some(e) = self.entries.remove(key) {
            self.order.remove(&e.tick);
            self.used -= e.bytes;
        }
    }
}

/// A thread-safe LRU of answers holding at most `capacity` bytes.
pub struct ResponseCache {
    capacity: usize,
    inner: Mutex<Lru>,
}

impl std::fmt::Debug for ResponseCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResponseCache")
            .field("capacity", &self.capacity)
            .field("used", &self.used())
            .finish()
    }
}

impl ResponseCache {
    pub fn new(capacity: usize) -> ResponseCache {
        ResponseCache {
            capacity,
            inner: Mutex::new(Lru::default()),
        }
    }

    /// Nothing here panics while holding the lock, so a poisoned lock still holds a
    /// consistent cache.
    fn lock(&self) -> MutexGuard<'_, Lru> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Most bytes held.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Bytes held now.
    pub fn used(&self) -> usize {
        self.lock().used
    }

    /// Entries held now.
    pub fn len(&self) -> usize {
        self.lock().entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The outputs stored under `key`, which becomes the most recently used.
    pub fn get(&self, key: &Key) -> Option<Arc<[Tensor]>> {
        let mut lru = self.lock();
        let tick = lru.tick();
        let entry = lru.entries.get_mut(key)?;
        let old = std::mem::replace(&mut entry.tick, tick);
        let outputs = entry.outputs.clone();
        lru.order.remove(&old);
        lru.order.insert(tick, *key);
        Some(outputs)
    }

    /// Stores `outputs` under `key` (replacing what was there), evicting the least recently
    /// used entries until it fits. Returns false, storing nothing, when the entry alone is
    /// larger than the cache.
    pub fn insert(&self, key: Key, outputs: &[Tensor]) -> bool {
        let bytes = entry_bytes(outputs);
        if bytes > self.capacity {
            return false;
        }
        // Copied before taking the lock.
        let outputs: Arc<[Tensor]> = outputs.into();
        let mut lru = self.lock();
        lru.remove(&key);
        while lru.used + bytes > self.capacity {
            let Some((_, oldest)) = lru.order.pop_first() else {
                break;
            };
            if let Some(e) = lru.entries.remove(&oldest) {
                lru.used -= e.bytes;
            }
        }
        let tick = lru.tick();
        lru.order.insert(tick, key);
        lru.entries.insert(
            key,
            Entry {
                outputs,
                bytes,
                tick,
            },
        );
        lru.used += bytes;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(n: u8) -> Key {
        [n; 32]
    }

    /// One FP32 tensor of `floats` elements: 32 (key) + 1 (name) + 8 (shape) + 4 × floats bytes.
    fn answer(floats: usize, value: f32) -> Vec<Tensor> {
        vec![Tensor::new(
            "y",
            vec![floats as i64],
            TensorData::Fp32(vec![value; floats]),
        )
        .expect("tensor")]
    }

    #[test]
    fn an_entry_counts_its_key_and_tensors() {
        assert_eq!(entry_bytes(&answer(10, 0.0)), 32 + 1 + 8 + 40);
        let bytes = vec![Tensor::new(
            "label",
            vec![2],
            TensorData::Bytes(vec!["ab".into(), "c".into()]),
        )
        .expect("tensor")];
        assert_eq!(entry_bytes(&bytes), 32 + 5 + 8 + (2 + 4) + (1 + 4));
    }

    #[test]
    fn the_least_recently_used_entry_goes_first() {
        let one = entry_bytes(&answer(10, 0.0));
        let cache = ResponseCache::new(3 * one);
        for n in 1..=3 {
            assert!(cache.insert(key(n), &answer(10, f32::from(n))));
        }
        // 1 is used, so 2 is now the least recently used.
        assert!(cache.get(&key(1)).is_some());
        assert!(cache.insert(key(4), &answer(10, 4.0)));
        assert!(cache.get(&key(2)).is_none(), "2 was evicted");
        for n in [1, 3, 4] {
            let got = cache.get(&key(n)).unwrap_or_else(|| panic!("{n} kept"));
            assert_eq!(got[0].data, TensorData::Fp32(vec![f32::from(n); 10]));
        }
        assert_eq!((cache.len(), cache.used()), (3, 3 * one));
        // A larger entry evicts as many as it needs, oldest first (1, then 3).
        assert!(cache.insert(key(5), &answer(25, 5.0)));
        assert!(cache.get(&key(1)).is_none() && cache.get(&key(3)).is_none());
        assert!(cache.get(&key(4)).is_some() && cache.get(&key(5)).is_some());
    }

    #[test]
    fn replacing_an_entry_keeps_the_count_right() {
        let cache = ResponseCache::new(1000);
        assert!(cache.insert(key(1), &answer(10, 1.0)));
        assert!(cache.insert(key(1), &answer(20, 2.0)));
        assert_eq!(cache.len(), 1);
        assert_eq!(cache.used(), entry_bytes(&answer(20, 2.0)));
        let got = cache.get(&key(1)).expect("kept");
        assert_eq!(got[0].shape, vec![20]);
    }

    #[test]
    fn an_entry_larger_than_the_cache_is_not_stored() {
        let cache = ResponseCache::new(100);
        assert!(cache.insert(key(1), &answer(10, 1.0)), "81 bytes fit");
        assert!(!cache.insert(key(2), &answer(100, 1.0)));
        assert!(cache.get(&key(2)).is_none());
        assert!(cache.get(&key(1)).is_some(), "nothing was evicted for it");
        let exact = ResponseCache::new(entry_bytes(&answer(10, 0.0)));
        assert!(
            exact.insert(key(1), &answer(10, 1.0)),
            "exactly the capacity fits"
        );
    }

    #[test]
    fn the_byte_bound_is_never_exceeded() {
        let cache = ResponseCache::new(1000);
        for i in 0..500u32 {
            let floats = (i as usize * 7) % 60;
            cache.insert(key((i % 251) as u8), &answer(floats, i as f32));
            assert!(cache.used() <= 1000, "after insert {i}: {}", cache.used());
            let _ = cache.get(&key((i * 3 % 251) as u8));
        }
        assert!(!cache.is_empty());
    }

    #[test]
    fn concurrent_use_keeps_the_bound_and_the_entries_whole() {
        let cache = Arc::new(ResponseCache::new(4000));
        let threads: Vec<_> = (0..8u8)
            .map(|t| {
                let cache = cache.clone();
                std::thread::spawn(move || {
                    for i in 0..300u32 {
                        let n = ((i + u32::from(t) * 31) % 64) as u8;
                        if i % 2 == 0 {
                            cache.insert(key(n), &answer(usize::from(n % 16) + 1, f32::from(n)));
                        } else if let Some(got) = cache.get(&key(n)) {
                            // Whatever a thread finds is the whole answer stored under its key.
                            assert_eq!(
                                got[0].data,
                                TensorData::Fp32(vec![f32::from(n); usize::from(n % 16) + 1])
                            );
                        }
                        assert!(cache.used() <= 4000);
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().expect("no thread panicked");
        }
        let lru = cache.lock();
        assert_eq!(lru.entries.len(), lru.order.len());
        assert_eq!(
            lru.used,
            lru.entries.values().map(|e| e.bytes).sum::<usize>()
        );
        assert!(lru.used <= 4000);
    }
}
