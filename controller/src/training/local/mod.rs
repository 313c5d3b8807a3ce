//! `osprey train run`: a PyTorchJob or TFJob manifest run on this machine, each replica a local
//! process, driven by the same state machine as the controller ([`crate::training::status`]):
//! the same environment contract on loopback, restart policies, backoffLimit,
//! activeDeadlineSeconds and success rules. Replicas still running when the job ends are
//! stopped (nothing outlives the command); Ctrl-C stops them all.
//!
//! - [`manifest`]: reading the manifest.
//! - [`process`]: starting, logging and stopping a replica.

pub mod manifest;
pub mod process;

use crate::error::SpecError;
use crate::training::crd::JobStatus;
use crate::training::job::{CleanPodPolicy, Job};
use crate::training::status::{self, Action, Observed, ReplicaState};
use nix::sys::signal::Signal;
use process::{Exit, LocalAddresses};
use std::collections::BTreeMap;
use std::future::Future;
use std::path::PathBuf;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

/// What can stop `osprey train run` before the job does.
#[derive(Debug, thiserror::Error)]
pub enum LocalError {
    #[error("invalid job: {0}")]
    Spec(#[from] SpecError),
    #[error("manifest: {0}")]
    Manifest(String),
    #[error("{0}")]
    Io(String),
}

/// `osprey train run` flags.
#[derive(Debug, Clone, clap::Args)]
pub struct TrainRunArgs {
    /// The job manifest: a PyTorchJob or TFJob (kubeflow.org/v1), as for `kubectl apply`.
    pub manifest: PathBuf,
    /// Directory for each replica's log (`<type>-<index>.log`; default `<job name>-logs`).
    #[arg(long)]
    pub logs: Option<PathBuf>,
    /// Replace a path prefix in the containers' command, args and workingDir (repeatable), for
    /// files an image would have: `--path-map /opt/pytorch-mnist=./examples/training`.
    #[arg(long = "path-map", value_name = "FROM=TO")]
    pub path_map: Vec<String>,
    /// Seconds between two status lines while nothing changes.
    #[arg(long, default_value_t = 10)]
    pub status_every: u64,
    /// Do not echo the replicas' output (it is still kept in --logs).
    #[arg(long, default_value_t = false)]
    pub quiet: bool,
}

/// How the job ended.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    pub succeeded: bool,
    pub status: JobStatus,
    /// Set when Ctrl-C stopped the job.
    pub interrupted: bool,
}

struct Replica {
    role: &'static str,
    index: i32,
    pid: Option<u32>,
    generation: u32,
    state: ReplicaState,
    restarts: i32,
    /// A restart waits until then (back-off).
    start_at: Option<Instant>,
}

fn restart_delay(restarts: i32) -> Duration {
    let secs = 1u64 << restarts.clamp(0, 5);
    Duration::from_secs(secs.min(30))
}

fn status_line(job: &Job, st: &JobStatus, started: Instant, restarts: i32) -> String {
    let state = st
        .conditions
        .iter()
        .rev()
        .find(|c| c.status == "True" && c.type_ != status::CREATED)
        .or_else(|| st.conditions.last())
        .map(|c| c.type_.as_str())
        .unwrap_or("Created");
    let roles: Vec<String> = st
        .replica_statuses
        .iter()
        .map(|(role, r)| {
            format!(
                "{role} {}/{}/{} active/succeeded/failed",
                r.active.unwrap_or(0),
                r.succeeded.unwrap_or(0),
                r.failed.unwrap_or(0)
            )
        })
        .collect();
    format!(
        "[osprey] {} {}: {state}; {}; restarts {restarts}; {} s",
        job.framework.kind(),
        job.name,
        roles.join(", "),
        started.elapsed().as_secs()
    )
}

fn parse_path_map(items: &[String]) -> Result<Vec<(String, String)>, LocalError> {
    items
        .iter()
        .map(|m| {
            m.split_once('=')
                .filter(|(f, _)| !f.is_empty())
                .map(|(f, t)| (f.to_string(), t.to_string()))
                .ok_or_else(|| LocalError::Manifest(format!("--path-map {m:?}: expected FROM=TO")))
        })
        .collect()
}

/// Stops every replica still running: after `wait` for them to end by themselves, SIGTERM to
/// their process groups, then SIGKILL 5 s later.
async fn stop_all(reps: &mut [Replica], wait: Duration, exits: &mut mpsc::UnboundedReceiver<Exit>) {
    let running = |reps: &[Replica]| reps.iter().filter(|r| r.pid.is_some()).count();
    let mut left = running(reps);
    let mut deadline = tokio::time::Instant::now() + wait;
    let mut termed = wait.is_zero();
    if termed {
        deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        for pid in reps.iter().filter_map(|r| r.pid) {
            process::signal(pid, Signal::SIGTERM);
        }
    }
    while left > 0 {
        match tokio::time::timeout_at(deadline, exits.recv()).await {
            Ok(Some(e)) => {
                if let Some(r) = reps.iter_mut().find(|r| {
                    r.role == e.role && r.index == e.index && r.generation == e.generation
                }) {
                    if r.pid.is_some() {
                        r.pid = None;
                        r.state = ReplicaState::Exited(e.code);
                        println!(
                            "[osprey] {}-{} exited with code {}",
                            r.role.to_lowercase(),
                            r.index,
                            e.code
                        );
                        left -= 1;
                    }
                }
            }
            Ok(None) => break,
            Err(_) if !termed => {
                termed = true;
                deadline = tokio::time::Instant::now() + Duration::from_secs(5);
                println!("[osprey] stopping {left} replica(s) still running");
                for pid in reps.iter().filter_map(|r| r.pid) {
                    process::signal(pid, Signal::SIGTERM);
                }
            }
            Err(_) => {
                for r in reps.iter_mut().filter(|r| r.pid.is_some()) {
                    if let Some(pid) = r.pid.take() {
                        process::signal(pid, Signal::SIGKILL);
                    }
                    r.state = ReplicaState::Exited(137);
                }
                break;
            }
        }
    }
    for r in reps.iter_mut() {
        r.start_at = None;
        if r.pid.is_none() && r.state == ReplicaState::Pending {
            r.state = ReplicaState::Missing;
        }
    }
}

/// Starts (or starts again) a replica's process.
async fn start(
    r: &mut Replica,
    launch: &process::Launch,
    logs: &std::path::Path,
    echo: bool,
    exits: &mpsc::UnboundedSender<Exit>,
) -> Result<(), LocalError> {
    r.generation += 1;
    let pid = process::spawn(
        launch,
        r.role,
        r.index,
        r.generation,
        logs,
        echo,
        exits.clone(),
    )
    .await?;
    r.pid = (pid > 0).then_some(pid);
    r.state = ReplicaState::Running;
    Ok(())
}

/// Runs `job` until it finishes or `interrupt` completes.
pub async fn run_job(
    job: &Job,
    args: &TrainRunArgs,
    interrupt: impl Future<Output = ()>,
) -> Result<Outcome, LocalError> {
    let path_map = parse_path_map(&args.path_map)?;
    let logs = args
        .logs
        .clone()
        .unwrap_or_else(|| PathBuf::from(format!("{}-logs", job.name)));
    std::fs::create_dir_all(&logs)
        .map_err(|e| LocalError::Io(format!("{}: {e}", logs.display())))?;
    let addrs = LocalAddresses::pick(job)?;
    // Every launch is checked before anything starts.
    let mut launches = BTreeMap::new();
    for (role, index) in job.pods() {
        launches.insert(
            (role, index),
            process::launch(job, role, index, &addrs, &path_map)?,
        );
    }
    let (tx, mut exits) = mpsc::unbounded_channel::<Exit>();
    let mut reps: Vec<Replica> = job
        .pods()
        .into_iter()
        .map(|(role, index)| Replica {
            role,
            index,
            pid: None,
            generation: 0,
            state: ReplicaState::Missing,
            restarts: 0,
            start_at: None,
        })
        .collect();
    let started = Instant::now();
    let mut st = JobStatus::default();
    let mut last_line = String::new();
    let mut last_print = Instant::now();
    tokio::pin!(interrupt);
    loop {
        // Restarts whose back-off has passed.
        for r in reps.iter_mut() {
            if r.pid.is_none() && r.state == ReplicaState::Pending {
                if let Some(at) = r.start_at {
                    if Instant::now() >= at {
                        r.start_at = None;
                        if let Some(l) = launches.get(&(r.role, r.index)) {
                            start(r, l, &logs, !args.quiet, &tx).await?;
                        }
                    }
                }
            }
        }
        let observed: Vec<Observed> = reps
            .iter()
            .map(|r| Observed {
                role: r.role,
                index: r.index,
                state: r.state,
                restarts: r.restarts,
                restarting: r.start_at.is_some(),
            })
            .collect();
        let step = status::step(job, &observed, &st, k8s_openapi::jiff::Timestamp::now());
        st = step.status;
        for n in &step.notes {
            println!("[osprey] {}: {}", n.reason, n.message);
        }
        for a in &step.actions {
            match a {
                Action::Create { role, index } => {
                    if let (Some(r), Some(l)) = (
                        reps.iter_mut()
                            .find(|r| r.role == *role && r.index == *index),
                        launches.get(&(*role, *index)),
                    ) {
                        start(r, l, &logs, !args.quiet, &tx).await?;
                    }
                }
                Action::Restart { role, index } => {
                    if let Some(r) = reps
                        .iter_mut()
                        .find(|r| r.role == *role && r.index == *index)
                    {
                        r.start_at = Some(Instant::now() + restart_delay(r.restarts));
                        r.restarts += 1;
                        r.state = ReplicaState::Pending;
                    }
                }
                // Locally every replica is stopped: an exited one has nothing left to delete.
                Action::DeletePods(_) => stop_all(&mut reps, Duration::ZERO, &mut exits).await,
                Action::DeleteJob => {}
            }
        }
        let total_restarts: i32 = reps.iter().map(|r| r.restarts).sum();
        let finished = status::has(&st, status::SUCCEEDED) || status::has(&st, status::FAILED);
        let line = status_line(job, &st, started, total_restarts);
        let body = line
            .rsplit_once(';')
            .map(|(a, _)| a.to_string())
            .unwrap_or_default();
        if body != last_line
            || last_print.elapsed() >= Duration::from_secs(args.status_every.max(1))
        {
            println!("{line}");
            last_line = body;
            last_print = Instant::now();
        }
        if finished {
            // Nothing outlives the command: with cleanPodPolicy None (the pods would be left
            // alone) replicas get 10 s to end by themselves first.
            let wait = if job.clean_pod_policy == CleanPodPolicy::None {
                Duration::from_secs(10)
            } else {
                Duration::ZERO
            };
            stop_all(&mut reps, wait, &mut exits).await;
            return Ok(Outcome {
                succeeded: status::has(&st, status::SUCCEEDED),
                status: st,
                interrupted: false,
            });
        }
        let wake = step
            .requeue
            .unwrap_or(Duration::from_secs(1))
            .min(Duration::from_secs(1));
        tokio::select! {
            e = exits.recv() => {
                if let Some(e) = e {
                    if let Some(r) = reps.iter_mut().find(|r| r.role == e.role && r.index == e.index && r.generation == e.generation) {
                        r.pid = None;
                        r.state = ReplicaState::Exited(e.code);
                        println!("[osprey] {}-{} exited with code {}", r.role.to_lowercase(), r.index, e.code);
                    }
                }
            }
            _ = tokio::time::sleep(wake) => {}
            _ = &mut interrupt => {
                println!("[osprey] interrupted: stopping every replica");
                stop_all(&mut reps, Duration::ZERO, &mut exits).await;
                return Ok(Outcome { succeeded: false, status: st, interrupted: true });
            }
        }
    }
}

/// `osprey train run`: reads the manifest, runs the job, returns whether it succeeded.
pub async fn run(
    args: TrainRunArgs,
    interrupt: impl Future<Output = ()>,
) -> Result<Outcome, LocalError> {
    let text = std::fs::read_to_string(&args.manifest)
        .map_err(|e| LocalError::Io(format!("{}: {e}", args.manifest.display())))?;
    let job = manifest::parse(&text)?;
    if job.suspend {
        return Err(LocalError::Manifest(
            "spec.runPolicy.suspend: the job is suspended, so nothing would run (set it to false)"
                .into(),
        ));
    }
    println!(
        "[osprey] {} {}: {} replicas ({})",
        job.framework.kind(),
        job.name,
        job.total_replicas(),
        job.replicas
            .iter()
            .map(|r| format!("{} x{}", r.role, r.count))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let out = run_job(&job, &args, interrupt).await?;
    if let Some(c) = out.status.conditions.last() {
        println!(
            "[osprey] {}: {} ({})",
            c.type_,
            c.message.as_deref().unwrap_or(""),
            c.reason.as_deref().unwrap_or("")
        );
    }
    Ok(out)
}
