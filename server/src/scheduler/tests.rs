//! The scheduler end to end with a scripted runtime (a mock is right here: what is under test is
//! the queueing, merging and scattering, not the model).

use super::policy::{BatchPolicy, OnTimeout, QueuePolicy};
use super::Scheduler;
use crate::error::ServerError;
use crate::metrics::{MetricsConfig, ModelMetrics};
use crate::model::stats::Stats;
use osprey_protocol::{Parameters, Tensor, TensorData, TensorSpec};
use osprey_runtimes::{Runtime, RuntimeError};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Doubles input "x" into output "y"; records every batch's row count; fails on negative input;
/// optionally says it started and waits on a gate before running, and sleeps `x[0]`
/// milliseconds when `slow`.
struct Doubler {
    batches: Arc<Mutex<Vec<usize>>>,
    gate: Option<Arc<Mutex<std::sync::mpsc::Receiver<()>>>>,
    started: tokio::sync::mpsc::UnboundedSender<()>,
    slow: bool,
}

impl Runtime for Doubler {
    fn inputs(&self) -> &[TensorSpec] {
        &[]
    }
    fn outputs(&self) -> &[TensorSpec] {
        &[]
    }
    fn run(&mut self, inputs: Vec<Tensor>) -> Result<Vec<Tensor>, RuntimeError> {
        let _ = self.started.send(());
        if let Some(g) = &self.gate {
            let _ = g.lock().expect("gate").recv();
        }
        let x = &inputs[0];
        let TensorData::Fp32(v) = &x.data else {
            panic!("FP32 expected")
        };
        if self.slow {
            std::thread::sleep(Duration::from_millis(v[0] as u64));
        }
        self.batches
            .lock()
            .expect("batches")
            .push(x.shape[0] as usize);
        if v.iter().any(|e| *e < 0.0) {
            return Err(RuntimeError::Inference("negative input".into()));
        }
        let y = v.iter().map(|e| e * 2.0).collect();
        Ok(vec![
            Tensor::new("y", x.shape.clone(), TensorData::Fp32(y)).expect("tensor")
        ])
    }
}

fn policy(max: usize, delay_us: u64) -> BatchPolicy {
    BatchPolicy {
        max_batch_size: max,
        dynamic: true,
        preferred: vec![],
        max_queue_delay: Duration::from_micros(delay_us),
        preserve_ordering: false,
        levels: vec![QueuePolicy {
            max_queue_size: 64,
            default_timeout: None,
            on_timeout: OnTimeout::Reject,
            allow_timeout_override: true,
        }],
        default_level: 0,
        pads: vec![],
        inputs: vec!["x".into()],
        inline_max: Duration::ZERO,
    }
}

struct Setup {
    scheduler: Arc<Scheduler>,
    batches: Arc<Mutex<Vec<usize>>>,
    gate: Option<std::sync::mpsc::Sender<()>>,
    /// One message each time an instance starts a batch (before the gate).
    started: tokio::sync::mpsc::UnboundedReceiver<()>,
}

fn start(policy: BatchPolicy, instances: usize, gated: bool, slow: bool) -> Setup {
    let batches = Arc::new(Mutex::new(Vec::new()));
    let (tx, rx) = std::sync::mpsc::channel();
    let rx = Arc::new(Mutex::new(rx));
    let (started_tx, started) = tokio::sync::mpsc::unbounded_channel();
    let runtimes: Vec<Box<dyn Runtime>> = (0..instances)
        .map(|_| {
            Box::new(Doubler {
                batches: batches.clone(),
                gate: gated.then(|| rx.clone()),
                started: started_tx.clone(),
                slow,
            }) as Box<dyn Runtime>
        })
        .collect();
    let scheduler = Scheduler::start(
        "m",
        test_metrics(),
        runtimes,
        policy,
        Arc::new(Stats::default()),
    );
    Setup {
        scheduler: Arc::new(scheduler),
        batches,
        gate: gated.then_some(tx),
        started,
    }
}

fn rows(values: &[f32]) -> Vec<Tensor> {
    vec![Tensor::new(
        "x",
        vec![values.len() as i64, 1],
        TensorData::Fp32(values.to_vec()),
    )
    .expect("tensor")]
}

async fn submit(
    s: &Scheduler,
    values: Vec<f32>,
    params: Parameters,
) -> Result<Vec<f32>, ServerError> {
    let n = values.len();
    let placement = s.placement(&params)?;
    let out = s.submit(rows(&values), n, placement).await?;
    match &out.outputs[0].data {
        TensorData::Fp32(v) => Ok(v.clone()),
        other => panic!("unexpected {other:?}"),
    }
}

#[tokio::test]
async fn concurrent_requests_merge_after_the_delay() {
    // A delay far longer than five pushes take: they all join the first one's batch.
    let s = start(policy(8, 200_000), 1, false, false);
    let tasks: Vec<_> = (0..5)
        .map(|i| {
            let sch = s.scheduler.clone();
            tokio::spawn(async move { submit(&sch, vec![i as f32], Parameters::new()).await })
        })
        .collect();
    for (i, t) in tasks.into_iter().enumerate() {
        assert_eq!(
            t.await.expect("task").expect("answer"),
            vec![2.0 * i as f32],
            "request {i} got its own row"
        );
    }
    assert_eq!(
        *s.batches.lock().expect("batches"),
        vec![5],
        "one execution of 5 rows"
    );
}

#[tokio::test]
async fn multi_row_requests_are_never_split_and_batches_stay_under_max() {
    let s = start(policy(4, 1000), 1, false, false);
    let tasks: Vec<_> = [vec![1.0, 2.0, 3.0], vec![4.0, 5.0], vec![6.0]]
        .into_iter()
        .map(|v| {
            let sch = s.scheduler.clone();
            tokio::spawn(async move { (v.clone(), submit(&sch, v, Parameters::new()).await) })
        })
        .collect();
    for t in tasks {
        let (v, got) = t.await.expect("task");
        assert_eq!(
            got.expect("answer"),
            v.iter().map(|x| x * 2.0).collect::<Vec<_>>()
        );
    }
    let b = s.batches.lock().expect("batches").clone();
    assert!(b.iter().all(|&n| n <= 4), "{b:?}");
    assert_eq!(b.iter().sum::<usize>(), 6);
}

#[tokio::test]
async fn full_queue_answers_unavailable_at_once() {
    let mut p = policy(1, 0);
    p.levels[0].max_queue_size = 2;
    let mut s = start(p, 1, true, false);
    let first = {
        let sch = s.scheduler.clone();
        tokio::spawn(async move { submit(&sch, vec![1.0], Parameters::new()).await })
    };
    // Once the instance holds the first request, fill the queue.
    s.started.recv().await.expect("instance started");
    assert_eq!(
        s.scheduler.pending(),
        0,
        "the instance holds the first request"
    );
    let queued: Vec<_> = (0..2)
        .map(|i| {
            let sch = s.scheduler.clone();
            tokio::spawn(async move { submit(&sch, vec![i as f32], Parameters::new()).await })
        })
        .collect();
    while s.scheduler.pending() < 2 {
        tokio::task::yield_now().await;
    }
    let err = submit(&s.scheduler, vec![9.0], Parameters::new())
        .await
        .unwrap_err();
    assert!(matches!(err, ServerError::Overloaded { .. }), "{err}");
    assert!(err.to_string().contains("max_queue_size 2"), "{err}");
    let gate = s.gate.as_ref().expect("gate");
    for _ in 0..3 {
        gate.send(()).expect("release");
    }
    assert_eq!(first.await.expect("task").expect("ok"), vec![2.0]);
    for q in queued {
        assert!(q.await.expect("task").is_ok());
    }
}

#[tokio::test]
async fn request_timing_out_in_the_queue_is_rejected() {
    let mut s = start(policy(1, 0), 1, true, false);
    let first = {
        let sch = s.scheduler.clone();
        tokio::spawn(async move { submit(&sch, vec![1.0], Parameters::new()).await })
    };
    s.started.recv().await.expect("instance started");
    let mut params = Parameters::new();
    params.insert("timeout".into(), osprey_protocol::ParamValue::Int(2_000));
    let err = submit(&s.scheduler, vec![2.0], params).await.unwrap_err();
    assert!(err.to_string().contains("timed out"), "{err}");
    assert_eq!(err.kind(), crate::error::ErrorKind::Unavailable);
    s.gate.as_ref().expect("gate").send(()).expect("release");
    assert_eq!(first.await.expect("task").expect("ok"), vec![2.0]);
    assert_eq!(
        *s.batches.lock().expect("b"),
        vec![1],
        "the timed-out request never ran"
    );
}

#[tokio::test]
async fn a_failing_batch_fails_only_its_requests() {
    let mut p = policy(4, 0);
    p.dynamic = false;
    let s = start(p, 1, false, false);
    let err = submit(&s.scheduler, vec![-1.0], Parameters::new())
        .await
        .unwrap_err();
    assert!(err.to_string().contains("negative input"), "{err}");
    assert_eq!(
        submit(&s.scheduler, vec![3.0], Parameters::new())
            .await
            .expect("ok"),
        vec![6.0]
    );
}

#[tokio::test]
async fn a_caller_that_left_is_dropped_before_running() {
    let mut s = start(policy(1, 0), 1, true, false);
    let first = {
        let sch = s.scheduler.clone();
        tokio::spawn(async move { submit(&sch, vec![1.0], Parameters::new()).await })
    };
    s.started.recv().await.expect("instance started");
    let abandoned = {
        let sch = s.scheduler.clone();
        tokio::spawn(async move { submit(&sch, vec![5.0], Parameters::new()).await })
    };
    while s.scheduler.pending() < 1 {
        tokio::task::yield_now().await;
    }
    abandoned.abort();
    let _ = abandoned.await;
    let gate = s.gate.as_ref().expect("gate");
    gate.send(()).expect("release");
    assert!(first.await.expect("task").is_ok());
    // A later request runs; the abandoned one never reached the runtime.
    gate.send(()).expect("release");
    assert_eq!(
        submit(&s.scheduler, vec![7.0], Parameters::new())
            .await
            .expect("ok"),
        vec![14.0]
    );
    assert_eq!(*s.batches.lock().expect("b"), vec![1, 1]);
}

#[tokio::test]
async fn preserve_ordering_holds_back_faster_answers() {
    let mut p = policy(1, 0);
    p.preserve_ordering = true;
    let s = start(p, 2, false, true);
    let done = Arc::new(Mutex::new(Vec::new()));
    let tasks: Vec<_> = [(0usize, 60.0f32), (1, 1.0)]
        .into_iter()
        .map(|(i, ms)| {
            let sch = s.scheduler.clone();
            let done = done.clone();
            let t = tokio::spawn(async move {
                let r = submit(&sch, vec![ms], Parameters::new()).await;
                done.lock().expect("done").push(i);
                r
            });
            t
        })
        .collect();
    // Give the first request a head start so that arrival order is certain.
    for t in tasks {
        assert!(t.await.expect("task").is_ok());
    }
    assert_eq!(*done.lock().expect("done"), vec![0, 1]);
}

mod properties {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

        /// Under random arrivals no request is lost, duplicated or given another's output;
        /// batches never exceed max_batch_size; with preserve_ordering answers arrive in order.
        #[test]
        fn every_request_gets_exactly_its_own_answer(
            sizes in proptest::collection::vec(1usize..=3, 1..40),
            max in 3usize..=8,
            delay_us in 0u64..300,
            instances in 1usize..=3,
            preserve in any::<bool>(),
            gaps in proptest::collection::vec(0u64..200, 40),
        ) {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
            rt.block_on(async {
                let mut p = policy(max, delay_us);
                p.preserve_ordering = preserve;
                let s = start(p, instances, false, false);
                let mut next = 0f32;
                let mut tasks = Vec::new();
                for (i, n) in sizes.iter().enumerate() {
                    let values: Vec<f32> = (0..*n).map(|_| { next += 1.0; next }).collect();
                    let sch = s.scheduler.clone();
                    tasks.push(tokio::spawn(async move {
                        let got = submit(&sch, values.clone(), Parameters::new()).await;
                        (values, got)
                    }));
                    tokio::time::sleep(Duration::from_micros(gaps[i % gaps.len()])).await;
                }
                for t in tasks {
                    let (values, got) = t.await.expect("task");
                    let want: Vec<f32> = values.iter().map(|v| v * 2.0).collect();
                    prop_assert_eq!(got.expect("answer"), want);
                }
                let batches = s.batches.lock().expect("batches").clone();
                prop_assert!(batches.iter().all(|&b| b <= max), "{:?} over {}", batches, max);
                prop_assert_eq!(batches.iter().sum::<usize>(), sizes.iter().sum::<usize>());
                if preserve {
                    // Answers left in arrival order (checked where they are sent: the order in
                    // which the runtime then polls the waiting tasks is its own business).
                    let sent = s.scheduler.shared.sent.lock().expect("sent").clone();
                    prop_assert_eq!(sent, (0..sizes.len() as u64).collect::<Vec<_>>());
                }
                Ok(())
            })?;
        }
    }
}

/// Passes "x" through and records the name of the thread that ran each execution.
struct ThreadRecorder {
    threads: Arc<Mutex<Vec<String>>>,
}

impl Runtime for ThreadRecorder {
    fn inputs(&self) -> &[TensorSpec] {
        &[]
    }
    fn outputs(&self) -> &[TensorSpec] {
        &[]
    }
    fn run(&mut self, inputs: Vec<Tensor>) -> Result<Vec<Tensor>, RuntimeError> {
        let name = std::thread::current().name().unwrap_or("").to_string();
        self.threads.lock().expect("threads").push(name);
        Ok(inputs
            .into_iter()
            .map(|mut t| {
                t.name = "y".into();
                t
            })
            .collect())
    }
}

fn recorder(policy: BatchPolicy) -> (Scheduler, Arc<Mutex<Vec<String>>>) {
    let threads = Arc::new(Mutex::new(Vec::new()));
    let runtime = Box::new(ThreadRecorder {
        threads: threads.clone(),
    }) as Box<dyn Runtime>;
    let s = Scheduler::start(
        "m",
        test_metrics(),
        vec![runtime],
        policy,
        Arc::new(Stats::default()),
    );
    (s, threads)
}

#[tokio::test(flavor = "current_thread")]
async fn a_quick_model_runs_on_the_callers_thread_once_measured() {
    let mut p = policy(4, 0);
    p.inline_max = Duration::from_secs(1);
    let (s, threads) = recorder(p);
    for i in 0..3 {
        let out = submit(&s, vec![i as f32], Parameters::default())
            .await
            .expect("answer");
        assert_eq!(out, vec![i as f32]);
    }
    let threads = threads.lock().expect("threads").clone();
    let caller = std::thread::current().name().unwrap_or("").to_string();
    // The first execution is measured on the instance; the next two find it idle and quick.
    assert_eq!(
        threads,
        vec!["osprey-m-0".to_string(), caller.clone(), caller]
    );
}

#[tokio::test(flavor = "current_thread")]
async fn without_an_inline_limit_every_request_goes_to_the_instance() {
    let (s, threads) = recorder(policy(4, 0));
    for i in 0..3 {
        submit(&s, vec![i as f32], Parameters::default())
            .await
            .expect("answer");
    }
    let threads = threads.lock().expect("threads").clone();
    assert_eq!(threads, vec!["osprey-m-0".to_string(); 3]);
}

fn test_metrics() -> ModelMetrics {
    ModelMetrics::new("m", "1", &MetricsConfig::default(), false)
}
