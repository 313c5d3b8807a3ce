//! The per-model scheduler: a bounded priority queue, a batcher that merges requests by
//! Triton's `dynamic_batching` rules, and one OS thread per model instance.
//!
//! [`queue`] is the pure state (batch formation, timeouts, priorities); [`policy`] reads it from
//! the model's configuration; [`source`] puts the queue behind `osprey_dispatch`'s monitor, whose
//! protocol decides who waits and who wakes whom: a submitter pushes and wakes an idle instance
//! directly (no scheduling task in between), an instance waits for a batch's delay on a condition
//! variable (microsecond precision), and a timekeeper thread, only for models whose queue policy
//! has timeouts, answers requests that time out while every instance is busy. [`instance`] runs
//! batches; [`order`] keeps answers in arrival order when `preserve_ordering` is set.
//!
//! A quick model skips the hand-off when it would only cost: a request that is alone in the
//! scheduler (no other submitted and unanswered) and finds an instance idle runs on the
//! submitting thread with that instance's runtime (each runtime sits behind its own lock, held
//! only while it runs), when batching could not have merged it with anything and the model's
//! last execution took at most [`BatchPolicy::inline_max`].

mod instance;
pub mod order;
pub mod policy;
pub mod queue;
mod source;

use crate::error::ServerError;
use crate::metrics::ModelMetrics;
use crate::model::stats::Stats;
use order::Orderer;
use osprey_dispatch::{Dispatcher, Source};
use osprey_protocol::{Parameters, ProtocolError, Tensor};
use osprey_runtimes::Runtime;
pub use policy::{BatchPolicy, Placement};
use queue::ShapeKey;
use source::JobQueue;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::oneshot;

/// What a request gets back from its execution.
pub struct Executed {
    pub outputs: Vec<Tensor>,
    pub times: Times,
}

impl Executed {
    /// Outputs computed elsewhere (a remote predictor, an ensemble's steps) from `started`
    /// until now, without queueing here.
    pub fn unqueued(outputs: Vec<Tensor>, started: Instant) -> Executed {
        Executed {
            outputs,
            times: Times {
                started,
                queue: Duration::ZERO,
                compute: started.elapsed(),
            },
        }
    }
}

/// When a request's batch started and how long it queued and computed: the times the
/// statistics take, given back for traces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Times {
    /// When an instance took the batch (or a remote call began).
    pub started: Instant,
    /// Time spent in the queue, before `started`.
    pub queue: Duration,
    /// The batch's compute time (input, inference, output), from `started`.
    pub compute: Duration,
}

/// A request waiting to run.
pub struct Job {
    pub inputs: Vec<Tensor>,
    pub reply: oneshot::Sender<Result<Executed, ServerError>>,
    pub span: tracing::Span,
}

/// An answer on its way to its caller.
pub struct Delivery {
    seq: u64,
    reply: oneshot::Sender<Result<Executed, ServerError>>,
    result: Result<Executed, ServerError>,
}

/// What the instance threads use outside the queue's lock.
pub struct Shared {
    model: String,
    orderer: Orderer<Delivery>,
    stats: Arc<Stats>,
    metrics: ModelMetrics,
    /// Inputs padded per batch, with their pad values.
    pads: Vec<(String, f64)>,
    /// The last execution's compute time in nanoseconds (`u64::MAX` before the first).
    last_compute_ns: AtomicU64,
    /// Sequence numbers in the order their answers were sent (tests check `preserve_ordering`
    /// here, where the answer leaves, not where a task happens to be polled).
    #[cfg(test)]
    sent: std::sync::Mutex<Vec<u64>>,
}

impl Shared {
    /// Completes request `seq` (see [`Orderer::complete`]) and sends what may now be sent.
    fn deliver(&self, seq: u64, answer: Option<Delivery>) {
        self.orderer.complete(seq, answer, |d| {
            #[cfg(test)]
            self.sent
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(d.seq);
            // A caller that went away no longer needs the answer.
            if d.reply.send(d.result).is_err() {
                tracing::debug!(seq = d.seq, "caller went away before its answer");
            }
        });
    }
}

/// The scheduler of one model version. Dropping it closes the queue: the instance threads run
/// what is queued, then exit.
pub struct Scheduler {
    dispatcher: Arc<Dispatcher<JobQueue>>,
    shared: Arc<Shared>,
    policy: BatchPolicy,
    /// One runtime per instance; instance thread `i` runs batches with `runtimes[i]`.
    runtimes: Arc<[Mutex<Box<dyn Runtime>>]>,
    /// Requests submitted and not yet answered.
    active: AtomicUsize,
}

/// Counts a request as active for as long as it lives.
struct Active<'a>(&'a AtomicUsize);

impl Drop for Active<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Scheduler {
    /// Starts one thread per runtime, and the timekeeper when the policy has queue timeouts.
    pub fn start(
        model: &str,
        metrics: ModelMetrics,
        runtimes: Vec<Box<dyn Runtime>>,
        policy: BatchPolicy,
        stats: Arc<Stats>,
    ) -> Scheduler {
        let shared = Arc::new(Shared {
            model: model.to_string(),
            orderer: Orderer::new(policy.preserve_ordering),
            stats,
            metrics,
            pads: policy.pads.clone(),
            last_compute_ns: AtomicU64::new(u64::MAX),
            #[cfg(test)]
            sent: Default::default(),
        });
        let dispatcher = Arc::new(Dispatcher::new(JobQueue::new(
            policy.clone(),
            shared.clone(),
        )));
        let spawn = |name: String, f: Box<dyn FnOnce() + Send>| {
            if let Err(e) = std::thread::Builder::new().name(name).spawn(f) {
                tracing::error!(model, error = %e, "could not start a scheduler thread");
            }
        };
        let runtimes: Arc<[Mutex<Box<dyn Runtime>>]> =
            runtimes.into_iter().map(Mutex::new).collect();
        for i in 0..runtimes.len() {
            let (d, shared, runtimes) = (dispatcher.clone(), shared.clone(), runtimes.clone());
            spawn(
                format!("osprey-{model}-{i}"),
                Box::new(move || {
                    while let Some(batch) = d.next() {
                        let run = |inputs: Vec<Tensor>| {
                            let mut runtime = runtimes[i].lock().unwrap_or_else(|p| p.into_inner());
                            runtime.run(inputs)
                        };
                        instance::run_batch(run, batch, &shared);
                    }
                }),
            );
        }
        if policy.has_timeouts() {
            let d = dispatcher.clone();
            spawn(
                format!("osprey-{model}-timer"),
                Box::new(move || d.run_timer(JobQueue::expire)),
            );
        }
        Scheduler {
            dispatcher,
            shared,
            policy,
            runtimes,
            active: AtomicUsize::new(0),
        }
    }

    /// The model version's metric handles.
    pub fn metrics(&self) -> &ModelMetrics {
        &self.shared.metrics
    }

    /// Requests waiting in the queue.
    pub fn pending(&self) -> usize {
        self.dispatcher.with(JobQueue::len)
    }

    /// Where a request with these parameters queues (see [`BatchPolicy::placement`]).
    pub fn placement(&self, params: &Parameters) -> Result<Placement, ProtocolError> {
        self.policy.placement(params)
    }

    /// Queues a validated request of `rows` rows and waits for its answer.
    pub async fn submit(
        &self,
        inputs: Vec<Tensor>,
        rows: usize,
        placement: Placement,
    ) -> Result<Executed, ServerError> {
        let alone = self.active.fetch_add(1, Ordering::Relaxed) == 0;
        let _active = Active(&self.active);
        let inputs = match self.run_inline(inputs, rows, alone) {
            Ok(answer) => {
                // An answer made here never waited, so a caller submitting in a loop (an
                // explanation) would never give its task's other work a turn: noticing that the
                // client left, its deadline. Spending the task's cooperative budget yields every
                // so often.
                tokio::task::consume_budget().await;
                return answer;
            }
            Err(inputs) => inputs,
        };
        let Placement { level, timeout } = placement;
        let key: ShapeKey = if self.policy.dynamic {
            queue::shape_key(&inputs, &self.policy)
        } else {
            ShapeKey::default()
        };
        let (reply, rx) = oneshot::channel();
        let job = Job {
            inputs,
            reply,
            span: tracing::Span::current(),
        };
        let now = Instant::now();
        self.dispatcher.submit(|q| {
            let waiting = q.push(job, rows, key, level, timeout, now)?;
            self.shared.metrics.queued(waiting);
            Ok::<_, ServerError>(((), timeout.map(|t| now + t)))
        })?;
        rx.await.map_err(|_| {
            ServerError::Internal(format!(
                "model '{}' stopped before answering",
                self.shared.model
            ))
        })?
    }
}

impl Scheduler {
    /// Runs the request here and now when the model is quick, the queue empty and an instance
    /// idle (see the module's documentation); hands the inputs back otherwise.
    fn run_inline(
        &self,
        inputs: Vec<Tensor>,
        rows: usize,
        alone: bool,
    ) -> Result<Result<Executed, ServerError>, Vec<Tensor>> {
        let limit = u64::try_from(self.policy.inline_max.as_nanos()).unwrap_or(u64::MAX);
        // Only a request with no other in the scheduler: under concurrency an instance thread
        // would soon want the runtime this request holds, and the hand-off is worth its cost.
        if !alone || limit == 0 || self.shared.last_compute_ns.load(Ordering::Relaxed) > limit {
            return Err(inputs);
        }
        // An instance whose runtime is free is idle or about to take a batch; with the queue
        // empty it has nothing to take, so nothing queued earlier is overtaken.
        let Some(runtime) = self.runtimes.iter().find_map(|r| r.try_lock().ok()) else {
            return Err(inputs);
        };
        if !self.dispatcher.with(JobQueue::is_empty) {
            return Err(inputs);
        }
        let (reply, mut rx) = oneshot::channel();
        let entry = queue::Entry {
            // Sequence numbers only order answers under `preserve_ordering`, never inline.
            seq: 0,
            rows,
            key: ShapeKey::default(),
            enqueued: Instant::now(),
            deadline: None,
            level: 0,
            item: Job {
                inputs,
                reply,
                span: tracing::Span::current(),
            },
        };
        let run = move |inputs: Vec<Tensor>| {
            let mut runtime = runtime;
            runtime.run(inputs)
        };
        instance::run_batch(run, vec![entry], &self.shared);
        Ok(rx.try_recv().unwrap_or_else(|_| {
            Err(ServerError::Internal(format!(
                "model '{}' ran a request without answering it",
                self.shared.model
            )))
        }))
    }
}

impl Drop for Scheduler {
    fn drop(&mut self) {
        self.dispatcher.close();
    }
}

#[cfg(test)]
mod tests;
