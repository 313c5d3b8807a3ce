//! The hand-off between the threads that submit requests and the OS threads that run a model's
//! instances: who waits, who wakes whom, and when. Kept in its own crate so that the protocol can
//! be model-checked with loom (`tests/loom.rs`, feature `loom`) on its own.
//!
//! Modules:
//! - [`sync`]: the mutex and condition variable in use (std's, or loom's with feature `loom`).
//! - this file: [`Dispatcher`], the monitor around a [`Source`] of batches.
//!
//! The protocol, all under one mutex:
//! - An instance asks the source for a batch. [`Poll::Ready`]: it takes it, and wakes one more
//!   idle instance if work is left. [`Poll::WaitUntil`]: it waits on the `work` condition until
//!   then (the batch's delay; a futex wait, so microsecond precision, not a timer wheel's
//!   millisecond), sleeping until [`SPIN_BEFORE`] before it and polling, yielding the core in
//!   between, for the rest. [`Poll::Empty`]: it waits without a limit, which it only ever does while the
//!   source is empty.
//! - A submitter adds to the source and, if any instance is waiting, wakes one. Because the
//!   waiting count is read under the same lock that the instance held when it started to wait, no
//!   arrival can fall between an instance's last look at the source and its sleep.
//! - An optional timekeeper thread answers queue timeouts while every instance is busy: it sleeps
//!   until the earliest deadline and is woken only when a submitter brings an earlier one.

pub mod sync;

use std::time::{Duration, Instant};

/// How long before a batch's deadline an instance stops sleeping and polls instead: about the
/// kernel's wake-up latency for a timed sleep (timer slack and scheduling), so that the batch
/// leaves at its deadline rather than that much later.
pub const SPIN_BEFORE: Duration = Duration::from_micros(150);
use sync::{Condvar, Mutex, MutexGuard};

/// What a source has for an instance at a given instant.
#[derive(Debug, PartialEq, Eq)]
pub enum Poll<B> {
    /// Run this now.
    Ready(B),
    /// Nothing to run before this instant, unless something arrives.
    WaitUntil(Instant),
    /// Nothing queued at all.
    Empty,
}

/// The queue behind a dispatcher: forms batches from what was submitted. Every method is called
/// with the dispatcher's lock held.
pub trait Source {
    type Batch;
    /// The next batch at `now`.
    fn poll(&mut self, now: Instant) -> Poll<Self::Batch>;
    /// Whether nothing is queued.
    fn is_empty(&self) -> bool;
}

struct State<S> {
    source: S,
    /// Instances waiting on `work`.
    idle: usize,
    closed: bool,
    /// Whether the timekeeper is waiting, and until when (None: until woken).
    timer_waiting: bool,
    timer_until: Option<Instant>,
}

/// The monitor shared by submitters, instance threads and the timekeeper.
pub struct Dispatcher<S> {
    state: Mutex<State<S>>,
    work: Condvar,
    timer: Condvar,
}

impl<S: Source> Dispatcher<S> {
    pub fn new(source: S) -> Dispatcher<S> {
        Dispatcher {
            state: Mutex::new(State {
                source,
                idle: 0,
                closed: false,
                timer_waiting: false,
                timer_until: None,
            }),
            work: Condvar::new(),
            timer: Condvar::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State<S>> {
        sync::lock(&self.state)
    }

    /// Reads the source.
    pub fn with<R>(&self, f: impl FnOnce(&S) -> R) -> R {
        f(&self.lock().source)
    }

    /// Adds work: `f` changes the source and says, on success, the queue deadline it added (if
    /// any). Wakes one idle instance, and the timekeeper when the deadline is earlier than the
    /// one it sleeps towards. An error from `f` wakes nobody.
    pub fn submit<R, E>(
        &self,
        f: impl FnOnce(&mut S) -> Result<(R, Option<Instant>), E>,
    ) -> Result<R, E> {
        let mut st = self.lock();
        let (r, deadline) = f(&mut st.source)?;
        let wake_instance = st.idle > 0;
        let wake_timer = match deadline {
            Some(d) => st.timer_waiting && st.timer_until.is_none_or(|t| d < t),
            None => false,
        };
        drop(st);
        if wake_instance {
            self.work.notify_one();
        }
        if wake_timer {
            self.timer.notify_one();
        }
        Ok(r)
    }

    /// Blocks until a batch is ready and returns it; `None` once the dispatcher is closed and
    /// the source empty. Called in a loop by each instance thread.
    pub fn next(&self) -> Option<S::Batch> {
        let mut st = self.lock();
        loop {
            let now = Instant::now();
            match st.source.poll(now) {
                Poll::Ready(batch) => {
                    let more = st.idle > 0 && !st.source.is_empty();
                    drop(st);
                    if more {
                        self.work.notify_one();
                    }
                    return Some(batch);
                }
                Poll::WaitUntil(t) => {
                    let left = t.saturating_duration_since(now);
                    if left > SPIN_BEFORE {
                        st.idle += 1;
                        st = sync::wait_timeout(&self.work, st, left - SPIN_BEFORE);
                        st.idle -= 1;
                    } else {
                        // The last stretch: a timed sleep would overshoot by the kernel's
                        // wake-up latency (50-150 µs here), so look again after yielding the
                        // core, still taking a batch that fills meanwhile at once.
                        drop(st);
                        std::thread::yield_now();
                        st = self.lock();
                    }
                }
                Poll::Empty => {
                    if st.closed {
                        drop(st);
                        // The others exit too, whether or not they have seen the close.
                        self.work.notify_all();
                        return None;
                    }
                    st.idle += 1;
                    st = sync::wait(&self.work, st);
                    st.idle -= 1;
                }
            }
        }
    }

    /// The timekeeper's loop: `expire` answers what has timed out at the given instant and
    /// returns the next deadline. Returns once the dispatcher is closed.
    pub fn run_timer(&self, mut expire: impl FnMut(&mut S, Instant) -> Option<Instant>) {
        let mut st = self.lock();
        while !st.closed {
            let now = Instant::now();
            let next = expire(&mut st.source, now);
            st.timer_until = next;
            st.timer_waiting = true;
            st = match next {
                Some(t) => sync::wait_timeout(&self.timer, st, t.saturating_duration_since(now)),
                None => sync::wait(&self.timer, st),
            };
            st.timer_waiting = false;
        }
    }

    /// No more work will be submitted: instances finish what is queued, then `next` returns
    /// `None`; the timekeeper returns.
    pub fn close(&self) {
        self.lock().closed = true;
        self.work.notify_all();
        self.timer.notify_all();
    }
}
