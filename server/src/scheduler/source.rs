//! The model's queue as the dispatcher's [`Source`]: batches by the policy, and answers for
//! requests that timed out or whose queue is full.

use super::queue::{Entry, Next, Queue, ShapeKey};
use super::{BatchPolicy, Delivery, Job, Shared};
use crate::error::ServerError;
use osprey_dispatch::{Poll, Source};
use std::sync::Arc;
use std::time::{Duration, Instant};

pub struct JobQueue {
    queue: Queue<Job>,
    shared: Arc<Shared>,
}

impl JobQueue {
    pub fn new(policy: BatchPolicy, shared: Arc<Shared>) -> JobQueue {
        JobQueue {
            queue: Queue::new(policy),
            shared,
        }
    }

    pub fn len(&self) -> usize {
        self.queue.len()
    }

    /// Queues a job and returns how many wait now, or refuses it when its level is full (after
    /// making room from callers that already went away).
    pub fn push(
        &mut self,
        job: Job,
        rows: usize,
        key: ShapeKey,
        level: usize,
        timeout: Option<Duration>,
        now: Instant,
    ) -> Result<usize, ServerError> {
        if self.queue.is_full(level) {
            for e in self.queue.remove_gone(|j| j.reply.is_closed()) {
                self.shared.deliver(e.seq, None);
            }
        }
        match self.queue.push(job, rows, key, level, timeout, now) {
            Ok(_) => Ok(self.queue.len()),
            Err((_, full)) => Err(ServerError::Overloaded {
                model: self.shared.model.clone(),
                reason: format!(
                    "queue full: priority level {} already holds max_queue_size {} requests",
                    full.level + 1,
                    full.max
                ),
            }),
        }
    }

    /// Answers the requests whose queue timeout has passed (those their level rejects) and
    /// returns the next deadline. The timekeeper's step; instances run it too before each batch.
    pub fn expire(&mut self, now: Instant) -> Option<Instant> {
        self.reject_expired(now);
        self.queue.next_deadline()
    }

    fn reject_expired(&mut self, now: Instant) {
        for e in self.queue.expire(now) {
            let waited = now.saturating_duration_since(e.enqueued);
            let err = ServerError::Overloaded {
                model: self.shared.model.clone(),
                reason: format!(
                    "request timed out after {} µs in the queue",
                    waited.as_micros()
                ),
            };
            self.shared.deliver(
                e.seq,
                Some(Delivery {
                    seq: e.seq,
                    reply: e.item.reply,
                    result: Err(err),
                }),
            );
        }
    }
}

impl Source for JobQueue {
    type Batch = Vec<Entry<Job>>;

    fn poll(&mut self, now: Instant) -> Poll<Self::Batch> {
        self.reject_expired(now);
        let next = self.queue.next_batch(now);
        self.shared.metrics.queued(self.queue.len());
        match next {
            Next::Batch(b) => Poll::Ready(b),
            Next::WaitUntil(t) => Poll::WaitUntil(t),
            Next::Empty => Poll::Empty,
        }
    }

    fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }
}
