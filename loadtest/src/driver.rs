//! Running one step: closed loop (N workers back to back) or open loop (requests sent at set
//! times; latency counts from the intended send time, so a slow server cannot hide queueing
//! by slowing the generator down — no coordinated omission).

use crate::args::{LoadtestArgs, Step};
use crate::inputs::Xorshift;
use crate::record::{Failure, Recorder, StepResult};
use crate::target::Target;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

/// What a step shares with its progress display.
struct Progress {
    ok: AtomicU64,
    failed: AtomicU64,
}

async fn send_bounded(target: &Target, timeout: Duration) -> Result<(), Failure> {
    match tokio::time::timeout(timeout, target.send(timeout)).await {
        Ok(r) => r,
        Err(_) => Err(Failure::new(
            "timeout",
            format!("no answer within {} ms (--timeout-ms)", timeout.as_millis()),
        )),
    }
}

fn spawn_progress(
    progress: Arc<Progress>,
    label: String,
    start: Instant,
    quiet: bool,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        if quiet {
            return;
        }
        let mut last = 0u64;
        loop {
            tokio::time::sleep(Duration::from_secs(1)).await;
            let ok = progress.ok.load(Ordering::Relaxed);
            let failed = progress.failed.load(Ordering::Relaxed);
            eprint!(
                "\r{label}: {:>5.1} s, {ok} ok, {failed} failed, {} /s      ",
                start.elapsed().as_secs_f64(),
                ok.saturating_sub(last)
            );
            last = ok;
        }
    })
}

/// Runs one step and summarises it.
pub async fn run_step(target: &Target, step: &Step, args: &LoadtestArgs) -> StepResult {
    let progress = Arc::new(Progress {
        ok: AtomicU64::new(0),
        failed: AtomicU64::new(0),
    });
    let start = Instant::now();
    let label = match step {
        Step::Closed { concurrency } => format!("concurrency {concurrency}"),
        Step::Open { rate } => format!("rate {rate}/s"),
    };
    let display = spawn_progress(progress.clone(), label, start, args.quiet);
    let (rec, seconds) = match *step {
        Step::Closed { concurrency } => closed(target, concurrency, args, &progress).await,
        Step::Open { rate } => open(target, rate, args, &progress).await,
    };
    display.abort();
    if !args.quiet {
        eprintln!();
    }
    let (latency, histogram, throughput) = StepResult::from_recorder(&rec, seconds);
    StepResult {
        target: args.label(),
        transport: args.transport_name(),
        model: args.model.clone(),
        mode: match step {
            Step::Closed { .. } => "closed".into(),
            Step::Open { .. } => "open".into(),
        },
        concurrency: match step {
            Step::Closed { concurrency } => Some(*concurrency),
            Step::Open { .. } => None,
        },
        rate: match step {
            Step::Open { rate } => Some(*rate),
            Step::Closed { .. } => None,
        },
        seconds,
        requests: rec.ok + rec.errors.values().sum::<u64>(),
        ok: rec.ok,
        errors: rec.errors.clone(),
        error_samples: rec.samples.clone(),
        throughput,
        latency,
        histogram,
        server: None,
    }
}

fn note(progress: &Progress, outcome: &Result<(), Failure>) {
    match outcome {
        Ok(()) => progress.ok.fetch_add(1, Ordering::Relaxed),
        Err(_) => progress.failed.fetch_add(1, Ordering::Relaxed),
    };
}

async fn closed(
    target: &Target,
    concurrency: usize,
    args: &LoadtestArgs,
    progress: &Arc<Progress>,
) -> (Recorder, f64) {
    let measure_from = Instant::now() + args.warmup();
    let end = measure_from + args.duration();
    let limit = args.requests.unwrap_or(u64::MAX);
    let measured = Arc::new(AtomicU64::new(0));
    let timeout = args.timeout();
    let workers: Vec<_> = (0..concurrency)
        .map(|_| {
            let target = target.clone();
            let measured = measured.clone();
            let progress = progress.clone();
            tokio::spawn(async move {
                let mut rec = Recorder::default();
                loop {
                    let t0 = Instant::now();
                    if t0 >= end || measured.load(Ordering::Relaxed) >= limit {
                        break;
                    }
                    let outcome = send_bounded(&target, timeout).await;
                    if t0 >= measure_from {
                        if measured.fetch_add(1, Ordering::Relaxed) >= limit {
                            break;
                        }
                        note(&progress, &outcome);
                        rec.record(t0.elapsed(), outcome);
                    }
                }
                rec
            })
        })
        .collect();
    let mut all = Recorder::default();
    for w in workers {
        if let Ok(rec) = w.await {
            all.merge(rec);
        }
    }
    let stopped = Instant::now().min(end);
    (
        all,
        stopped
            .saturating_duration_since(measure_from)
            .as_secs_f64(),
    )
}

/// Gaps between intended send times: even, or exponential for a Poisson process.
struct Gaps {
    mean: f64,
    poisson: bool,
    rng: Xorshift,
}

impl Gaps {
    fn next(&mut self) -> Duration {
        if !self.poisson {
            return Duration::from_secs_f64(self.mean);
        }
        let u = self.rng.next_unit();
        Duration::from_secs_f64(-u.ln() * self.mean)
    }
}

async fn open(
    target: &Target,
    rate: f64,
    args: &LoadtestArgs,
    progress: &Arc<Progress>,
) -> (Recorder, f64) {
    let start = Instant::now();
    let measure_from = start + args.warmup();
    let end = measure_from + args.duration();
    let limit = args.requests.unwrap_or(u64::MAX);
    let timeout = args.timeout();
    let mut gaps = Gaps {
        mean: 1.0 / rate.max(1e-9),
        poisson: args.poisson,
        rng: Xorshift::new(0x9e37_79b9_7f4a_7c15),
    };
    let in_flight = Arc::new(AtomicU64::new(0));
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(Duration, Result<(), Failure>)>();
    let mut rec = Recorder::default();
    let mut intended = start;
    let mut scheduled = 0u64;
    while intended < end && scheduled < limit {
        tokio::time::sleep_until(intended).await;
        let measured = intended >= measure_from;
        if in_flight.load(Ordering::Relaxed) >= args.max_in_flight as u64 {
            if measured {
                let outcome = Err(Failure::new(
                    "generator_saturated",
                    "--max-in-flight requests were already in flight: the generator could not send at this rate",
                ));
                note(progress, &outcome);
                rec.record(Instant::now().saturating_duration_since(intended), outcome);
                scheduled += 1;
            }
        } else {
            in_flight.fetch_add(1, Ordering::Relaxed);
            let target = target.clone();
            let tx = tx.clone();
            let in_flight = in_flight.clone();
            let at = intended;
            tokio::spawn(async move {
                let outcome = send_bounded(&target, timeout).await;
                in_flight.fetch_sub(1, Ordering::Relaxed);
                if measured {
                    // Latency from the intended send time, not from when the task got to run.
                    let _ = tx.send((at.elapsed(), outcome));
                }
            });
            if measured {
                scheduled += 1;
            }
        }
        intended += gaps.next();
    }
    drop(tx);
    while let Some((latency, outcome)) = rx.recv().await {
        note(progress, &outcome);
        rec.record(latency, outcome);
    }
    let stopped = Instant::now().min(end);
    (
        rec,
        stopped
            .saturating_duration_since(measure_from)
            .as_secs_f64(),
    )
}
