//! Model instances: one OS thread per instance, each owning its runtime, fed by a shared
//! bounded channel. Async callers await a oneshot reply and never block on a runtime.

use super::stats::{ExecutionTimes, Stats};
use crate::error::ServerError;
use osprey_protocol::Tensor;
use osprey_runtimes::{Runtime, RuntimeError};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::oneshot;

/// What an execution gives back to its caller.
pub struct Executed {
    pub outputs: Vec<Tensor>,
    pub queue: Duration,
}

struct Job {
    inputs: Vec<Tensor>,
    rows: u64,
    enqueued: Instant,
    reply: oneshot::Sender<Result<Executed, RuntimeError>>,
    span: tracing::Span,
}

/// The instances of one model version. Dropping it lets the threads finish their work and exit.
pub struct Executor {
    model: String,
    tx: crossbeam_channel::Sender<Job>,
}

impl Executor {
    /// Starts one thread per runtime.
    pub fn start(
        model: &str,
        runtimes: Vec<Box<dyn Runtime>>,
        queue_capacity: usize,
        stats: Arc<Stats>,
    ) -> Executor {
        let (tx, rx) = crossbeam_channel::bounded::<Job>(queue_capacity.max(1));
        for (i, mut runtime) in runtimes.into_iter().enumerate() {
            let rx = rx.clone();
            let stats = stats.clone();
            let spawned = std::thread::Builder::new()
                .name(format!("osprey-{model}-{i}"))
                .spawn(move || {
                    for job in rx.iter() {
                        run_job(&mut *runtime, job, &stats);
                    }
                });
            if let Err(e) = spawned {
                tracing::error!(model, error = %e, "could not start an instance thread");
            }
        }
        Executor {
            model: model.to_string(),
            tx,
        }
    }

    /// Runs one batch on the next free instance.
    pub async fn run(&self, inputs: Vec<Tensor>, rows: u64) -> Result<Executed, ServerError> {
        let (reply, rx) = oneshot::channel();
        let job = Job {
            inputs,
            rows,
            enqueued: Instant::now(),
            reply,
            span: tracing::Span::current(),
        };
        self.tx.try_send(job).map_err(|e| ServerError::Overloaded {
            model: self.model.clone(),
            reason: match e {
                crossbeam_channel::TrySendError::Full(_) => "the instance queue is full".into(),
                crossbeam_channel::TrySendError::Disconnected(_) => "the model is unloading".into(),
            },
        })?;
        let result = rx.await.map_err(|_| {
            ServerError::Internal(format!("model '{}' instance stopped", self.model))
        })?;
        Ok(result?)
    }
}

fn run_job(runtime: &mut dyn Runtime, job: Job, stats: &Stats) {
    let _enter = job.span.enter();
    if job.reply.is_closed() {
        tracing::debug!("caller went away before the run; dropped");
        return;
    }
    let queue = job.enqueued.elapsed();
    let start = Instant::now();
    let result = runtime.run(job.inputs);
    let compute = start.elapsed();
    if result.is_ok() {
        stats.executed(ExecutionTimes {
            batch_size: job.rows,
            compute_input: Duration::ZERO,
            compute_infer: compute,
            compute_output: Duration::ZERO,
        });
    }
    // A caller that went away while we ran no longer needs the answer.
    let _ = job
        .reply
        .send(result.map(|outputs| Executed { outputs, queue }));
}
