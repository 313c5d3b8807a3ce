//! The queue and batch formation as plain code: no tasks, no clocks; `now` is passed in.
//! The scheduler task ([`super::Scheduler`]) drives it.

use super::policy::{BatchPolicy, OnTimeout};
use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// Non-batch dimensions of every input, by input name: requests merge only when equal.
pub type ShapeKey = Vec<i64>;

/// The batching key of a request: for each of the model's inputs it carries, in the model's
/// order, the input's position, its rank and its non-batch dimensions (inputs padded per batch
/// keep only their rank). One allocation, no names copied: requests share a batch exactly when
/// their keys are equal.
pub fn shape_key(inputs: &[osprey_protocol::Tensor], policy: &super::BatchPolicy) -> ShapeKey {
    let mut k = Vec::with_capacity(inputs.iter().map(|t| t.shape.len() + 1).sum());
    for (i, name) in policy.inputs.iter().enumerate() {
        let Some(t) = inputs.iter().find(|t| t.name == *name) else {
            continue;
        };
        let dims = t.shape.get(1..).unwrap_or_default();
        k.push(i as i64);
        k.push(dims.len() as i64);
        if policy.pads.iter().any(|(n, _)| n == name) {
            k.extend(std::iter::repeat_n(-1, dims.len()));
        } else {
            k.extend_from_slice(dims);
        }
    }
    k
}

/// A queued request.
#[derive(Debug)]
pub struct Entry<T> {
    /// Arrival order, from 0.
    pub seq: u64,
    pub rows: usize,
    pub key: ShapeKey,
    pub enqueued: Instant,
    pub deadline: Option<Instant>,
    pub level: usize,
    pub item: T,
}

/// Why a request was refused at the door.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueFull {
    pub level: usize,
    pub max: usize,
}

/// What the scheduler should do next.
#[derive(Debug)]
pub enum Next<T> {
    /// Run these requests together.
    Batch(Vec<Entry<T>>),
    /// Nothing to run before this instant (unless a request arrives).
    WaitUntil(Instant),
    /// The queue is empty.
    Empty,
}

/// Per-priority FIFO queues plus the queue of delayed (timed-out, DELAY) requests.
pub struct Queue<T> {
    policy: BatchPolicy,
    levels: Vec<VecDeque<Entry<T>>>,
    delayed: VecDeque<Entry<T>>,
    per_level: Vec<usize>,
    with_deadline: usize,
    next_seq: u64,
}

impl<T> Queue<T> {
    pub fn new(policy: BatchPolicy) -> Queue<T> {
        let n = policy.levels.len().max(1);
        Queue {
            policy,
            levels: (0..n).map(|_| VecDeque::new()).collect(),
            delayed: VecDeque::new(),
            per_level: vec![0; n],
            with_deadline: 0,
            next_seq: 0,
        }
    }

    pub fn policy(&self) -> &BatchPolicy {
        &self.policy
    }

    /// Requests waiting.
    pub fn len(&self) -> usize {
        self.per_level.iter().sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether a request at `level` would be refused.
    pub fn is_full(&self, level: usize) -> bool {
        let level = level.min(self.levels.len() - 1);
        self.per_level[level]
            >= self
                .policy
                .levels
                .get(level)
                .map_or(usize::MAX, |p| p.max_queue_size)
    }

    /// Queues a request, or refuses it when its level is full.
    pub fn push(
        &mut self,
        item: T,
        rows: usize,
        key: ShapeKey,
        level: usize,
        timeout: Option<Duration>,
        now: Instant,
    ) -> Result<u64, (T, QueueFull)> {
        let level = level.min(self.levels.len() - 1);
        if self.is_full(level) {
            let max = self
                .policy
                .levels
                .get(level)
                .map_or(usize::MAX, |p| p.max_queue_size);
            return Err((item, QueueFull { level, max }));
        }
        let seq = self.next_seq;
        self.next_seq += 1;
        let deadline = timeout.map(|t| now + t);
        self.with_deadline += usize::from(deadline.is_some());
        self.per_level[level] += 1;
        self.levels[level].push_back(Entry {
            seq,
            rows,
            key,
            enqueued: now,
            deadline,
            level,
            item,
        });
        Ok(seq)
    }

    fn ordered(&self) -> impl Iterator<Item = &Entry<T>> {
        self.levels.iter().flatten().chain(self.delayed.iter())
    }

    fn pop_front(&mut self) -> Option<Entry<T>> {
        let e = match self.levels.iter_mut().find(|q| !q.is_empty()) {
            Some(q) => q.pop_front(),
            None => self.delayed.pop_front(),
        }?;
        self.forget(&e);
        Some(e)
    }

    fn forget(&mut self, e: &Entry<T>) {
        self.per_level[e.level] -= 1;
        self.with_deadline -= usize::from(e.deadline.is_some());
    }

    /// Takes out requests whose queue timeout has passed: those whose level rejects are
    /// returned; those whose level delays move behind every other request.
    pub fn expire(&mut self, now: Instant) -> Vec<Entry<T>> {
        if self.with_deadline == 0 {
            return Vec::new();
        }
        let mut rejected = Vec::new();
        for level in 0..self.levels.len() {
            let q = std::mem::take(&mut self.levels[level]);
            for mut e in q {
                if e.deadline.is_some_and(|d| d <= now) {
                    self.with_deadline -= 1;
                    e.deadline = None;
                    match self.policy.levels[level].on_timeout {
                        OnTimeout::Reject => {
                            self.per_level[level] -= 1;
                            rejected.push(e);
                        }
                        OnTimeout::Delay => self.delayed.push_back(e),
                    }
                } else {
                    self.levels[level].push_back(e);
                }
            }
        }
        rejected
    }

    /// Takes out the requests `gone` says are no longer wanted (their callers went away).
    pub fn remove_gone(&mut self, gone: impl Fn(&T) -> bool) -> Vec<Entry<T>> {
        let mut removed = Vec::new();
        let mut queues: Vec<VecDeque<Entry<T>>> = std::mem::take(&mut self.levels);
        queues.push(std::mem::take(&mut self.delayed));
        for q in queues.iter_mut() {
            let (keep, drop): (VecDeque<_>, VecDeque<_>) =
                std::mem::take(q).into_iter().partition(|e| !gone(&e.item));
            *q = keep;
            removed.extend(drop);
        }
        self.delayed = queues.pop().unwrap_or_default();
        self.levels = queues;
        for e in &removed {
            self.per_level[e.level] -= 1;
            self.with_deadline -= usize::from(e.deadline.is_some());
        }
        removed
    }

    /// The earliest queue deadline, if any request has one.
    pub fn next_deadline(&self) -> Option<Instant> {
        if self.with_deadline == 0 {
            return None;
        }
        self.ordered().filter_map(|e| e.deadline).min()
    }

    /// Forms the next batch by Triton's rules: merge requests in priority then arrival order
    /// while their shapes agree and the rows fit `max_batch_size`; send at once when the batch
    /// is full, when a preferred size can be formed (the largest one), or when it cannot grow;
    /// otherwise wait until the first request has waited `max_queue_delay`.
    pub fn next_batch(&mut self, now: Instant) -> Next<T> {
        let Some(first) = self.ordered().next() else {
            return Next::Empty;
        };
        if !self.policy.dynamic {
            return self
                .pop_front()
                .map_or(Next::Empty, |e| Next::Batch(vec![e]));
        }
        let max = self.policy.max_batch_size;
        let mut total = 0usize;
        let mut count = 0usize;
        let mut prefix_sums = Vec::new();
        let mut blocked = false;
        for e in self.ordered() {
            if e.key != first.key || total + e.rows > max {
                blocked = true;
                break;
            }
            total += e.rows;
            count += 1;
            prefix_sums.push(total);
        }
        let take = if total >= max || blocked {
            Some(count)
        } else if let Some(n) = self
            .policy
            .preferred
            .iter()
            .rev()
            .find_map(|p| prefix_sums.iter().position(|s| s == p).map(|i| i + 1))
        {
            Some(n)
        } else if now >= first.enqueued + self.policy.max_queue_delay {
            Some(count)
        } else {
            None
        };
        match take {
            Some(n) => Next::Batch((0..n.max(1)).filter_map(|_| self.pop_front()).collect()),
            None => Next::WaitUntil(first.enqueued + self.policy.max_queue_delay),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::policy::QueuePolicy;
    use super::*;

    fn policy(max: usize, preferred: Vec<usize>, delay_us: u64) -> BatchPolicy {
        BatchPolicy {
            max_batch_size: max,
            dynamic: true,
            preferred,
            max_queue_delay: Duration::from_micros(delay_us),
            preserve_ordering: false,
            levels: vec![QueuePolicy {
                max_queue_size: 100,
                default_timeout: None,
                on_timeout: OnTimeout::Reject,
                allow_timeout_override: false,
            }],
            default_level: 0,
            pads: vec![],
            inputs: vec!["x".into()],
            inline_max: Duration::ZERO,
        }
    }

    fn key(d: i64) -> ShapeKey {
        vec![0, 1, d]
    }

    fn batch_rows(n: Next<u32>) -> Vec<u32> {
        match n {
            Next::Batch(b) => b.into_iter().map(|e| e.item).collect(),
            other => panic!("expected a batch, got {other:?}"),
        }
    }

    #[test]
    fn waits_for_the_delay_then_sends_what_it_has() {
        let t0 = Instant::now();
        let mut q = Queue::new(policy(8, vec![], 100));
        q.push(1u32, 1, key(4), 0, None, t0).expect("queued");
        q.push(2u32, 2, key(4), 0, None, t0 + Duration::from_micros(10))
            .expect("queued");
        assert!(
            matches!(q.next_batch(t0 + Duration::from_micros(50)), Next::WaitUntil(w) if w == t0 + Duration::from_micros(100))
        );
        assert_eq!(
            batch_rows(q.next_batch(t0 + Duration::from_micros(100))),
            vec![1, 2]
        );
        assert!(matches!(q.next_batch(t0), Next::Empty));
    }

    #[test]
    fn full_batch_goes_at_once_and_never_exceeds_max() {
        let t0 = Instant::now();
        let mut q = Queue::new(policy(4, vec![], 1_000_000));
        for (i, rows) in [2, 1, 1, 3].into_iter().enumerate() {
            q.push(i as u32, rows, key(4), 0, None, t0).expect("queued");
        }
        assert_eq!(batch_rows(q.next_batch(t0)), vec![0, 1, 2]);
        // The 3-row request alone cannot reach 4 and nothing else is queued: wait.
        assert!(matches!(q.next_batch(t0), Next::WaitUntil(_)));
    }

    #[test]
    fn largest_preferred_size_is_sent_without_waiting() {
        let t0 = Instant::now();
        let mut q = Queue::new(policy(16, vec![2, 4], 1_000_000));
        for i in 0..5u32 {
            q.push(i, 1, key(4), 0, None, t0).expect("queued");
        }
        assert_eq!(batch_rows(q.next_batch(t0)), vec![0, 1, 2, 3]);
        assert!(matches!(q.next_batch(t0), Next::WaitUntil(_)));
    }

    #[test]
    fn different_shapes_never_share_a_batch() {
        let t0 = Instant::now();
        let mut q = Queue::new(policy(8, vec![], 0));
        q.push(0u32, 1, key(4), 0, None, t0).expect("queued");
        q.push(1u32, 1, key(5), 0, None, t0).expect("queued");
        q.push(2u32, 1, key(4), 0, None, t0).expect("queued");
        assert_eq!(batch_rows(q.next_batch(t0)), vec![0]);
        assert_eq!(batch_rows(q.next_batch(t0)), vec![1]);
        assert_eq!(batch_rows(q.next_batch(t0)), vec![2]);
    }

    #[test]
    fn shape_keys_follow_the_models_inputs_not_the_senders_order() {
        use osprey_protocol::{Tensor, TensorData};
        let t = |name: &str, shape: Vec<i64>| {
            let n = shape.iter().product::<i64>() as usize;
            Tensor::new(name, shape, TensorData::Fp32(vec![0.0; n])).expect("tensor")
        };
        let mut p = policy(8, vec![], 0);
        p.inputs = vec!["ids".into(), "mask".into(), "extra".into()];
        p.pads = vec![("ids".into(), 0.0)];
        let a = shape_key(&[t("ids", vec![1, 5]), t("mask", vec![1, 5])], &p);
        let b = shape_key(&[t("mask", vec![2, 5]), t("ids", vec![2, 9])], &p);
        assert_eq!(
            a, b,
            "padded input keeps only its rank; order as sent does not matter"
        );
        let c = shape_key(&[t("ids", vec![1, 5]), t("mask", vec![1, 6])], &p);
        assert_ne!(a, c, "an unpadded dimension differs");
        let d = shape_key(&[t("ids", vec![1, 5]), t("extra", vec![1, 5])], &p);
        assert_ne!(a, d, "a different optional input is a different key");
    }

    #[test]
    fn queue_full_and_timeouts() {
        let t0 = Instant::now();
        let mut p = policy(8, vec![], 1_000_000);
        p.levels[0].max_queue_size = 2;
        let mut q = Queue::new(p);
        q.push(0u32, 1, key(4), 0, Some(Duration::from_micros(10)), t0)
            .expect("queued");
        q.push(1u32, 1, key(4), 0, None, t0).expect("queued");
        let (item, full) = q.push(2u32, 1, key(4), 0, None, t0).unwrap_err();
        assert_eq!((item, full), (2, QueueFull { level: 0, max: 2 }));
        assert_eq!(q.next_deadline(), Some(t0 + Duration::from_micros(10)));
        assert!(q.expire(t0 + Duration::from_micros(9)).is_empty());
        let gone = q.expire(t0 + Duration::from_micros(10));
        assert_eq!(gone.iter().map(|e| e.item).collect::<Vec<_>>(), vec![0]);
        assert_eq!(q.len(), 1);
        assert_eq!(q.next_deadline(), None);
    }

    #[test]
    fn delayed_requests_go_behind_the_others() {
        let t0 = Instant::now();
        let mut p = policy(1, vec![], 0);
        p.levels[0].on_timeout = OnTimeout::Delay;
        let mut q = Queue::new(p);
        q.push(0u32, 1, key(4), 0, Some(Duration::from_micros(5)), t0)
            .expect("queued");
        q.push(1u32, 1, key(4), 0, None, t0).expect("queued");
        assert!(q.expire(t0 + Duration::from_micros(5)).is_empty());
        assert_eq!(batch_rows(q.next_batch(t0)), vec![1]);
        assert_eq!(batch_rows(q.next_batch(t0)), vec![0]);
    }

    #[test]
    fn higher_priority_first_and_gone_requests_removed() {
        let t0 = Instant::now();
        let mut p = policy(1, vec![], 0);
        p.levels.push(p.levels[0].clone());
        let mut q = Queue::new(p);
        q.push(0u32, 1, key(4), 1, None, t0).expect("queued");
        q.push(1u32, 1, key(4), 0, None, t0).expect("queued");
        q.push(2u32, 1, key(4), 0, None, t0).expect("queued");
        assert_eq!(q.remove_gone(|i| *i == 2).len(), 1);
        assert_eq!(batch_rows(q.next_batch(t0)), vec![1]);
        assert_eq!(batch_rows(q.next_batch(t0)), vec![0]);
        assert!(q.is_empty());
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        #[derive(Debug, Clone)]
        enum Op {
            Push {
                rows: usize,
                shape: i64,
                level: usize,
                timeout_us: Option<u64>,
            },
            Advance(u64),
            Batch,
            Expire,
        }

        fn op() -> impl Strategy<Value = Op> {
            prop_oneof![
                4 => (1usize..=4, 3i64..=4, 0usize..2, proptest::option::of(1u64..500))
                    .prop_map(|(rows, shape, level, timeout_us)| Op::Push { rows, shape, level, timeout_us }),
                2 => (0u64..300).prop_map(Op::Advance),
                3 => Just(Op::Batch),
                1 => Just(Op::Expire),
            ]
        }

        proptest! {
            /// Whatever the arrivals, every request leaves exactly once (in a batch or rejected),
            /// batches hold one shape and at most max_batch_size rows.
            #[test]
            fn requests_leave_exactly_once(ops in proptest::collection::vec(op(), 1..200), max in 4usize..=8, delay in 0u64..400) {
                let mut p = policy(max, vec![2], delay);
                p.levels.push(p.levels[0].clone());
                p.levels[1].on_timeout = OnTimeout::Delay;
                let mut q: Queue<u64> = Queue::new(p);
                let t0 = Instant::now();
                let mut now = t0;
                let mut pushed = 0u64;
                let mut seen = std::collections::BTreeSet::new();
                let check = |b: Vec<Entry<u64>>, seen: &mut std::collections::BTreeSet<u64>| -> Result<(), TestCaseError> {
                    prop_assert!(b.iter().map(|e| e.rows).sum::<usize>() <= max);
                    prop_assert!(b.iter().all(|e| e.key == b[0].key));
                    for e in b { prop_assert!(seen.insert(e.item), "request {} left twice", e.item); }
                    Ok(())
                };
                for o in ops {
                    match o {
                        Op::Push { rows, shape, level, timeout_us } => {
                            if q.push(pushed, rows, key(shape), level, timeout_us.map(Duration::from_micros), now).is_ok() {
                                pushed += 1;
                            }
                        }
                        Op::Advance(us) => now += Duration::from_micros(us),
                        Op::Batch => if let Next::Batch(b) = q.next_batch(now) { check(b, &mut seen)?; },
                        Op::Expire => { let gone = q.expire(now); check_rejected(gone, &mut seen)?; }
                    }
                }
                // Drain: far in the future everything is sent or rejected.
                now += Duration::from_secs(10);
                let gone = q.expire(now);
                check_rejected(gone, &mut seen)?;
                loop {
                    match q.next_batch(now) {
                        Next::Batch(b) => check(b, &mut seen)?,
                        Next::Empty => break,
                        Next::WaitUntil(_) => prop_assert!(false, "nothing should wait after the delay"),
                    }
                }
                prop_assert_eq!(seen.len() as u64, pushed);
                prop_assert!(q.is_empty());
            }
        }

        proptest! {
            /// Batch timing on a virtual clock, with one instance that is idle whenever the
            /// queue asks it to wait: the first request of a batch waits at most
            /// max_queue_delay; a batch that leaves earlier is full, of a preferred size, or
            /// cannot grow; a full batch leaves the instant its last request arrives.
            #[test]
            fn batches_leave_by_the_delay_or_when_full(
                gaps in proptest::collection::vec(0u64..400, 1..60),
                sizes in proptest::collection::vec(1usize..=3, 60),
                max in 2usize..=8,
                delay in 0u64..500,
                preferred in proptest::option::of(2usize..=8),
            ) {
                let p = policy(max, preferred.into_iter().filter(|&n| n <= max).collect(), delay);
                let preferred = p.preferred.clone();
                let mut q: Queue<u64> = Queue::new(p);
                let t0 = Instant::now();
                let delay = Duration::from_micros(delay);
                let arrivals: Vec<Instant> = gaps.iter().scan(t0, |t, g| { *t += Duration::from_micros(*g); Some(*t) }).collect();
                let mut next_arrival = 0usize;
                let mut wake: Option<Instant> = None;
                let mut sent = 0usize;
                loop {
                    // The next event: an arrival or the instant the queue asked to be woken.
                    let now = match (arrivals.get(next_arrival), wake) {
                        (Some(&a), Some(w)) => a.min(w),
                        (Some(&a), None) => a,
                        (None, Some(w)) => w,
                        (None, None) => break,
                    };
                    while arrivals.get(next_arrival).is_some_and(|&a| a <= now) {
                        let i = next_arrival;
                        prop_assert!(q.push(i as u64, sizes[i].min(max), key(4), 0, None, arrivals[i]).is_ok());
                        next_arrival += 1;
                    }
                    wake = None;
                    loop {
                        match q.next_batch(now) {
                            Next::Batch(b) => {
                                let first = b[0].enqueued;
                                let last = b.iter().map(|e| e.enqueued).max().unwrap_or(first);
                                let rows: usize = b.iter().map(|e| e.rows).sum();
                                prop_assert!(now <= first + delay, "first request waited {:?} > {:?}", now.duration_since(first), delay);
                                if now < first + delay {
                                    // Still queued after it: the next request did not fit.
                                    let blocked = !q.is_empty();
                                    prop_assert!(rows == max || preferred.contains(&rows) || blocked,
                                        "left early with {} rows (max {}, preferred {:?})", rows, max, preferred);
                                }
                                if rows == max {
                                    prop_assert_eq!(now, last);
                                }
                                sent += b.len();
                            }
                            Next::WaitUntil(t) => { prop_assert!(t > now); wake = Some(t); break; }
                            Next::Empty => break,
                        }
                    }
                }
                prop_assert_eq!(sent, arrivals.len());
            }
        }

        fn check_rejected(
            gone: Vec<Entry<u64>>,
            seen: &mut std::collections::BTreeSet<u64>,
        ) -> Result<(), TestCaseError> {
            for e in gone {
                prop_assert!(seen.insert(e.item), "request {} left twice", e.item);
            }
            Ok(())
        }
    }
}
