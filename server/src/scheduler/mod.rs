//! The per-model scheduler: a bounded priority queue, a batcher that merges requests by
//! Triton's `dynamic_batching` rules, and one OS thread per model instance.
//!
//! [`queue`] is the pure state (batch formation, timeouts, priorities); [`Scheduler`] owns a
//! tokio task that asks it for batches whenever an instance is idle; [`instance`] runs them;
//! [`order`] keeps answers in arrival order when `preserve_ordering` is set.

mod instance;
pub mod order;
pub mod policy;
pub mod queue;

use crate::error::ServerError;
use crate::metrics::ModelMetrics;
use crate::model::stats::Stats;
use order::Orderer;
use osprey_protocol::{Parameters, Tensor};
use osprey_runtimes::Runtime;
pub use policy::BatchPolicy;
use queue::{Next, Queue, ShapeKey};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{oneshot, Notify, OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;

/// What a request gets back from its execution.
pub struct Executed {
    pub outputs: Vec<Tensor>,
    /// Time spent in the queue.
    pub queue: Duration,
}

/// A request waiting to run.
pub struct Job {
    pub inputs: Vec<Tensor>,
    pub reply: oneshot::Sender<Result<Executed, ServerError>>,
    pub span: tracing::Span,
}

/// An answer on its way to its caller.
pub struct Delivery {
    reply: oneshot::Sender<Result<Executed, ServerError>>,
    result: Result<Executed, ServerError>,
}

/// State shared by the submitters, the scheduling task and the instance threads.
pub struct Shared {
    model: String,
    queue: Mutex<Queue<Job>>,
    arrived: Notify,
    closed: AtomicBool,
    orderer: Orderer<Delivery>,
    /// True while the scheduling task holds an idle instance and so wants to hear of arrivals.
    batching: AtomicBool,
    stats: Arc<Stats>,
    metrics: ModelMetrics,
    /// Inputs padded per batch, with their pad values.
    pads: Vec<(String, f64)>,
}

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, Queue<Job>> {
        self.queue.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Answers requests whose queue timeout has passed and, when `can_run`, takes the next
    /// batch. Returns it with the earliest queue deadline and the number still waiting.
    fn poll(&self, can_run: bool) -> (Next<Job>, Option<std::time::Instant>, usize) {
        let now = Instant::now().into_std();
        let (next, expired, deadline, waiting) = {
            let mut q = self.lock();
            let expired = q.expire(now);
            let next = if can_run {
                q.next_batch(now)
            } else {
                Next::Empty
            };
            (next, expired, q.next_deadline(), q.len())
        };
        self.metrics.queued(waiting);
        for e in expired {
            let waited = now.saturating_duration_since(e.enqueued);
            let err = ServerError::Overloaded {
                model: self.model.clone(),
                reason: format!(
                    "request timed out after {} µs in the queue",
                    waited.as_micros()
                ),
            };
            self.deliver(
                e.seq,
                Some(Delivery {
                    reply: e.item.reply,
                    result: Err(err),
                }),
            );
        }
        (next, deadline, waiting)
    }

    /// Completes request `seq` (see [`Orderer::complete`]) and sends what may now be sent.
    fn deliver(&self, seq: u64, answer: Option<Delivery>) {
        for d in self.orderer.complete(seq, answer) {
            // A caller that went away no longer needs the answer.
            let _ = d.reply.send(d.result);
        }
    }
}

/// The scheduler of one model version. Dropping it stops the task once the queue is empty;
/// the instance threads exit after their last batch.
pub struct Scheduler {
    shared: Arc<Shared>,
    policy: BatchPolicy,
}

impl Scheduler {
    /// Starts the scheduling task (on the current tokio runtime) and one thread per runtime.
    pub fn start(
        model: &str,
        version: &str,
        runtimes: Vec<Box<dyn Runtime>>,
        policy: BatchPolicy,
        stats: Arc<Stats>,
        runtime_handle: &tokio::runtime::Handle,
    ) -> Scheduler {
        let idle = Arc::new(Semaphore::new(runtimes.len()));
        let shared = Arc::new(Shared {
            model: model.to_string(),
            queue: Mutex::new(Queue::new(policy.clone())),
            arrived: Notify::new(),
            closed: AtomicBool::new(false),
            orderer: Orderer::new(policy.preserve_ordering),
            batching: AtomicBool::new(false),
            stats,
            metrics: ModelMetrics::new(model, version),
            pads: policy.pads.clone(),
        });
        let (work_tx, work_rx) =
            crossbeam_channel::bounded::<instance::Work>(runtimes.len().max(1));
        for (i, mut runtime) in runtimes.into_iter().enumerate() {
            let rx = work_rx.clone();
            let shared = shared.clone();
            let handle = runtime_handle.clone();
            let spawned = std::thread::Builder::new()
                .name(format!("osprey-{model}-{i}"))
                .spawn(move || {
                    // Inside the runtime's context the thread reads the scheduler's clock.
                    let _context = handle.enter();
                    instance::run_instance(&mut *runtime, rx, shared)
                });
            if let Err(e) = spawned {
                tracing::error!(model, error = %e, "could not start an instance thread");
            }
        }
        runtime_handle.spawn(schedule(shared.clone(), work_tx, idle));
        Scheduler { shared, policy }
    }

    /// The model version's metric handles.
    pub fn metrics(&self) -> &ModelMetrics {
        &self.shared.metrics
    }

    /// Requests waiting in the queue.
    pub fn pending(&self) -> usize {
        self.shared.lock().len()
    }

    /// Queues a validated request of `rows` rows and waits for its answer.
    pub async fn submit(
        &self,
        inputs: Vec<Tensor>,
        params: &Parameters,
        rows: usize,
    ) -> Result<Executed, ServerError> {
        let (level, timeout) = self.policy.placement(params)?;
        let key: ShapeKey = if self.policy.dynamic {
            let mut k: ShapeKey = inputs
                .iter()
                .map(|t| {
                    let dims = t.shape.get(1..).unwrap_or_default();
                    // Padded inputs batch with any length: only their rank must agree.
                    let dims = if self.policy.pads.iter().any(|(n, _)| *n == t.name) {
                        vec![-1; dims.len()]
                    } else {
                        dims.to_vec()
                    };
                    (t.name.clone(), dims)
                })
                .collect();
            k.sort();
            k
        } else {
            Vec::new()
        };
        let (reply, rx) = oneshot::channel();
        let job = Job {
            inputs,
            reply,
            span: tracing::Span::current(),
        };
        let now = Instant::now().into_std();
        let pending = {
            let mut q = self.shared.lock();
            if q.is_full(level) {
                // Make room from callers that already went away before refusing anyone.
                for e in q.remove_gone(|j| j.reply.is_closed()) {
                    self.shared.deliver(e.seq, None);
                }
            }
            let pushed = q
                .push(job, rows, key, level, timeout, now)
                .map_err(|(_, full)| full);
            match pushed {
                Ok(_) => q.len(),
                Err(full) => {
                    return Err(ServerError::Overloaded {
                        model: self.shared.model.clone(),
                        reason: format!(
                        "queue full: priority level {} already holds max_queue_size {} requests",
                        full.level + 1,
                        full.max
                    ),
                    })
                }
            }
        };
        self.shared.metrics.queued(pending);
        // While every instance is busy the scheduler wakes when one frees up; an arrival only
        // matters to it then if it brings a deadline.
        if self.shared.batching.load(Ordering::SeqCst) || timeout.is_some() {
            self.shared.arrived.notify_one();
        }
        rx.await.map_err(|_| {
            ServerError::Internal(format!(
                "model '{}' stopped before answering",
                self.shared.model
            ))
        })?
    }
}

impl Drop for Scheduler {
    fn drop(&mut self) {
        self.shared.closed.store(true, Ordering::Relaxed);
        self.shared.arrived.notify_one();
    }
}

/// The scheduling task: answers requests whose queue timeout passed (even while every
/// instance is busy) and, whenever an instance is idle, hands it the next batch; otherwise it
/// sleeps until a request arrives, an instance frees up, a batch may be formed, or a timeout.
async fn schedule(
    shared: Arc<Shared>,
    work: crossbeam_channel::Sender<instance::Work>,
    idle: Arc<Semaphore>,
) {
    let mut permit: Option<OwnedSemaphorePermit> = None;
    loop {
        if permit.is_none() {
            permit = idle.clone().try_acquire_owned().ok();
        }
        // Set before the queue is read, so that a request pushed after that read notifies us.
        shared.batching.store(permit.is_some(), Ordering::SeqCst);
        let (next, deadline, waiting) = shared.poll(permit.is_some());
        let wake = match next {
            Next::Batch(batch) => {
                let Some(p) = permit.take() else { continue };
                if work.send(instance::Work { batch, permit: p }).is_err() {
                    return;
                }
                continue;
            }
            Next::WaitUntil(t) => Some(deadline.map_or(t, |d| d.min(t))),
            Next::Empty => {
                if waiting == 0 && shared.closed.load(Ordering::Relaxed) {
                    return;
                }
                deadline
            }
        };
        let sleep = async {
            match wake {
                Some(t) => tokio::time::sleep_until(Instant::from_std(t)).await,
                None => std::future::pending().await,
            }
        };
        if permit.is_some() {
            tokio::select! {
                _ = shared.arrived.notified() => {}
                _ = sleep => {}
            }
        } else {
            tokio::select! {
                p = idle.clone().acquire_owned() => match p {
                    Ok(p) => permit = Some(p),
                    Err(_) => return,
                },
                _ = shared.arrived.notified() => {}
                _ = sleep => {}
            }
        }
    }
}

#[cfg(test)]
mod tests;
