//! A model instance's work: drop requests whose callers left, merge, run, split, answer. Each
//! instance is an OS thread with one runtime that takes batches from the dispatcher; the
//! runtime is borrowed only for the execution itself (`run`), so that it is free again before
//! the answers leave.

use super::queue::Entry;
use super::{Delivery, Job, Shared};
use crate::error::ServerError;
use crate::model::stats::ExecutionTimes;
use osprey_protocol::batch::split_outputs;
use osprey_protocol::pad::concat_padded;
use osprey_protocol::Tensor;
use osprey_runtimes::RuntimeError;
use std::time::Instant;

/// Runs one batch: drops requests whose callers left, merges, executes with `run`, splits,
/// answers.
pub(super) fn run_batch(
    run: impl FnOnce(Vec<Tensor>) -> Result<Vec<Tensor>, RuntimeError>,
    batch: Vec<Entry<Job>>,
    shared: &Shared,
) {
    let start = Instant::now();
    let mut live = Vec::with_capacity(batch.len());
    for e in batch {
        if e.item.reply.is_closed() {
            tracing::debug!(seq = e.seq, "caller went away before the run; dropped");
            shared.deliver(e.seq, None);
        } else {
            live.push(e);
        }
    }
    if live.is_empty() {
        return;
    }
    let rows: Vec<usize> = live.iter().map(|e| e.rows).collect();
    let total: usize = rows.iter().sum();
    let mut replies = Vec::with_capacity(live.len());
    let mut inputs = Vec::with_capacity(live.len());
    for e in live {
        let queue = start.saturating_duration_since(e.enqueued);
        shared.metrics.request_dequeued(queue);
        inputs.push(e.item.inputs);
        replies.push((e.seq, e.item.reply, queue, e.item.span));
    }
    let _span = replies.first().map(|r| r.3.clone().entered());
    let result = concat_padded(inputs, &shared.pads)
        .map_err(|e| ServerError::Internal(e.to_string()))
        .and_then(|merged| {
            let infer_start = Instant::now();
            let compute_input = infer_start - start;
            let outputs = run(merged).map_err(ServerError::from)?;
            let output_start = Instant::now();
            let split =
                split_outputs(outputs, &rows).map_err(|e| ServerError::Internal(e.to_string()))?;
            let times = ExecutionTimes {
                batch_size: total as u64,
                compute_input,
                compute_infer: output_start - infer_start,
                compute_output: output_start.elapsed(),
            };
            Ok((split, times))
        });
    match result {
        Ok((split, times)) => {
            shared.last_compute_ns.store(
                u64::try_from(times.compute_infer.as_nanos()).unwrap_or(u64::MAX),
                std::sync::atomic::Ordering::Relaxed,
            );
            shared.stats.executed(times, replies.len() as u64);
            shared.metrics.executed(
                total as u64,
                replies.len() as u64,
                times.compute_input,
                times.compute_infer,
                times.compute_output,
            );
            let compute = times.compute_input + times.compute_infer + times.compute_output;
            for ((seq, reply, queue, _), outputs) in replies.into_iter().zip(split) {
                shared.deliver(
                    seq,
                    Some(Delivery {
                        seq,
                        reply,
                        result: Ok(super::Executed {
                            outputs,
                            times: super::Times {
                                started: start,
                                queue,
                                compute,
                            },
                        }),
                    }),
                );
            }
        }
        Err(e) => {
            tracing::warn!(model = %shared.model, error = %e, requests = replies.len(), "batch failed");
            let message = e.to_string();
            let kind_is_input = e.kind() == crate::error::ErrorKind::InvalidArgument;
            for (seq, reply, _, _) in replies {
                let err = if kind_is_input {
                    ServerError::BadRequest(message.clone())
                } else {
                    ServerError::Internal(message.clone())
                };
                shared.deliver(
                    seq,
                    Some(Delivery {
                        seq,
                        reply,
                        result: Err(err),
                    }),
                );
            }
        }
    }
}
