//! `osprey tune run`: a Katib Experiment run on this machine, each trial the template's primary
//! container (a batch Job's or a Pod's command, args and env) as a local process,
//! `parallelTrialCount` at a time, metrics from its output with Katib's StdOut format, until the
//! goal, `maxTrialCount`, `maxFailedTrialCount` or the end of the grid. With
//! `spec.earlyStopping` (medianstop), a running trial whose objective reports meet the rule
//! computed from the trials succeeded so far is killed and marked `EarlyStopped`.

use super::collector::{Collector, Source};
use super::early::Rule;
use super::experiment::{primary_container, trial_spec, Experiment, Plan};
use super::space::Assignment;
use super::suggest::{build, Outcome, Seen};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::future::Future;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::task::JoinSet;

/// `osprey tune run` flags.
#[derive(Debug, Clone, clap::Args)]
pub struct TuneRunArgs {
    /// The Experiment manifest (kubeflow.org/v1beta1), as for `kubectl apply`.
    pub experiment: PathBuf,
    /// Where every trial (parameters, metrics, state) and the best one are written as JSON
    /// (default `<experiment name>-trials.json`).
    #[arg(long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Do not echo the trials' output.
    #[arg(long, default_value_t = false)]
    pub quiet: bool,
    /// Also write the trials as CSV to FILE: one row per trial (name, state, each parameter,
    /// each metric, message).
    #[arg(long, value_name = "FILE")]
    pub csv: Option<PathBuf>,
    /// Also write a self-contained HTML page to FILE: the objective per trial with the best so
    /// far, and the parameters and objective in parallel coordinates.
    #[arg(long, value_name = "FILE")]
    pub plot: Option<PathBuf>,
}

/// What stops `osprey tune run` before any trial runs.
#[derive(Debug, thiserror::Error)]
pub enum TuneError {
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    Io(String),
}

/// One trial's record, with Katib's state names.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Trial {
    pub name: String,
    pub parameter_assignments: Vec<Assignment1>,
    /// Succeeded, Failed, MetricsUnavailable, Killed, EarlyStopped.
    pub state: String,
    /// The objective per the objective's strategy (max for maximize, min for minimize), then
    /// the additional metrics' latest values.
    #[serde(default)]
    pub metrics: Vec<Metric>,
    #[serde(default)]
    pub message: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Assignment1 {
    pub name: String,
    pub value: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Metric {
    pub name: String,
    pub value: f64,
}

/// How the experiment ended.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    pub experiment: String,
    pub succeeded: bool,
    /// Katib's reasons: ExperimentGoalReached, ExperimentMaxTrialsReached,
    /// ExperimentSuggestionEndReached, ExperimentMaxFailedTrialsReached, Interrupted.
    pub reason: String,
    pub trials: Vec<Trial>,
    pub current_optimal_trial: Option<Trial>,
}

fn objective_of(t: &Trial, plan: &Plan) -> Option<f64> {
    t.metrics
        .iter()
        .find(|m| m.name == plan.metric)
        .map(|m| m.value)
}

/// A trial as the algorithms see it.
pub fn seen_of(t: &Trial, plan: &Plan) -> Seen {
    let outcome = match (t.state.as_str(), objective_of(t, plan)) {
        ("Running", _) => Outcome::Pending,
        ("Succeeded" | "EarlyStopped", Some(v)) => Outcome::Value(v),
        _ => Outcome::Failed,
    };
    Seen {
        assignment: t
            .parameter_assignments
            .iter()
            .map(|p| (p.name.clone(), p.value.clone()))
            .collect(),
        outcome,
    }
}

fn better(plan: &Plan, a: f64, b: f64) -> bool {
    if plan.maximize {
        a > b
    } else {
        a < b
    }
}

/// A finished trial process: its name, and its exit code with the metrics it printed and
/// whether the early stopping rule stopped it (or why it could not run).
type Finished = (String, Result<(i32, Vec<(String, f64)>, bool), String>);

/// What a trial's output is checked against: the objective and the current early stopping
/// rule (None until enough trials succeeded).
#[derive(Clone)]
struct Watch {
    metric: String,
    rule: Arc<RwLock<Option<Rule>>>,
}

async fn run_trial(
    name: String,
    argv: Vec<String>,
    env: Vec<(String, String)>,
    quiet: bool,
    watch: Option<Watch>,
    collector: Arc<Collector>,
) -> Finished {
    let Some((program, rest)) = argv.split_first() else {
        return (name, Err("the primary container has no command".into()));
    };
    let mut cmd = tokio::process::Command::new(program);
    cmd.args(rest)
        .envs(env)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => return (name, Err(format!("starting {program}: {e}"))),
    };
    let mut readers = Vec::new();
    let reports = Arc::new(AtomicUsize::new(0));
    let stopped = Arc::new(AtomicBool::new(false));
    let stop = Arc::new(tokio::sync::Notify::new());
    for stream in [
        child
            .stdout
            .take()
            .map(|s| Box::new(s) as Box<dyn tokio::io::AsyncRead + Unpin + Send>),
        child
            .stderr
            .take()
            .map(|s| Box::new(s) as Box<dyn tokio::io::AsyncRead + Unpin + Send>),
    ]
    .into_iter()
    .flatten()
    {
        let name = name.clone();
        let found = Arc::new(Mutex::new(Vec::new()));
        let (into, watch) = (found.clone(), watch.clone());
        let (reports, stopped, stop) = (reports.clone(), stopped.clone(), stop.clone());
        let collector = collector.clone();
        let task = tokio::spawn(async move {
            let mut lines = BufReader::new(stream).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                if !quiet {
                    println!("[{name}] {line}");
                }
                let pairs = match collector.source {
                    Source::StdOut => collector.parse(&line),
                    Source::File { .. } => Vec::new(),
                };
                if let Some(w) = &watch {
                    for (_, v) in pairs.iter().filter(|(n, _)| *n == w.metric) {
                        let index = reports.fetch_add(1, Ordering::SeqCst) + 1;
                        let rule = w.rule.read().map(|r| r.clone()).unwrap_or(None);
                        if rule.is_some_and(|r| r.stops(index, *v)) {
                            stopped.store(true, Ordering::SeqCst);
                            stop.notify_one();
                        }
                    }
                }
                if let Ok(mut f) = into.lock() {
                    f.extend(pairs);
                }
            }
        });
        readers.push((task, found));
    }
    let status = tokio::select! {
        s = child.wait() => s,
        _ = stop.notified() => {
            // Stopped early: killed, and its output read no further (a process it started
            // may still hold the pipes).
            let _ = child.start_kill();
            let s = child.wait().await;
            for (task, _) in &readers {
                task.abort();
            }
            s
        }
    };
    let mut metrics = Vec::new();
    for (task, found) in readers {
        let _ = task.await;
        metrics.extend(found.lock().map(|f| f.clone()).unwrap_or_default());
    }
    if let Source::File { path, .. } = &collector.source {
        // The File collector: the file the trial wrote, once it has finished.
        if let Ok(text) = std::fs::read_to_string(path) {
            metrics.extend(text.lines().flat_map(|l| collector.parse(l)));
        }
    }
    let early = stopped.load(Ordering::SeqCst);
    match status {
        Ok(s) => (name, Ok((s.code().unwrap_or(128), metrics, early))),
        Err(e) => (name, Err(e.to_string())),
    }
}

/// The Experiment manifest at `path`, checked.
pub fn read_plan(path: &std::path::Path) -> Result<Plan, TuneError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| TuneError::Io(format!("{}: {e}", path.display())))?;
    let doc: Value = serde_yaml::from_str(&text)
        .map_err(|e| TuneError::Invalid(format!("{}: {e}", path.display())))?;
    let kind = doc.get("kind").and_then(Value::as_str).unwrap_or_default();
    if kind != "Experiment" {
        return Err(TuneError::Invalid(format!(
            "kind: expected Experiment, got {kind:?}"
        )));
    }
    let exp: Experiment = serde_json::from_value(doc)
        .map_err(|e| TuneError::Invalid(format!("{}: {e}", path.display())))?;
    exp.plan().map_err(|e| TuneError::Invalid(e.to_string()))
}

/// Runs the experiment until it ends or `interrupt` completes.
pub async fn run(
    args: TuneRunArgs,
    interrupt: impl Future<Output = ()>,
) -> Result<Report, TuneError> {
    let plan = read_plan(&args.experiment)?;
    if matches!(plan.collector.source, Source::File { .. }) && plan.parallel > 1 {
        return Err(TuneError::Invalid(
            "spec.metricsCollectorSpec: the File collector's file is shared by trials running \
             on this machine: set parallelTrialCount to 1 to run it here"
                .into(),
        ));
    }
    let algorithm = build(&plan.algorithm, &plan.space)
        .map_err(|e| TuneError::Invalid(format!("spec.parameters: {e}")))?;
    // The primary container must be found before anything runs.
    let probe: Assignment = plan
        .space
        .iter()
        .map(|p| (p.name.clone(), String::new()))
        .collect();
    let spec = trial_spec(&plan, &probe).map_err(TuneError::Invalid)?;
    primary_container(&spec, &plan.primary).map_err(TuneError::Invalid)?;
    println!(
        "[osprey] experiment '{}': {} trials at most, {} at a time, {} {}",
        plan.name,
        plan.max_trials,
        plan.parallel,
        if plan.maximize {
            "maximize"
        } else {
            "minimize"
        },
        plan.metric
    );
    let mut trials: Vec<Trial> = Vec::new();
    let mut running: JoinSet<Finished> = JoinSet::new();
    // Early stopping: the objective reports of the trials succeeded so far, and the rule.
    let mut succeeded_reports: Vec<Vec<f64>> = Vec::new();
    let watch = plan.early_stopping.as_ref().map(|_| Watch {
        metric: plan.metric.clone(),
        rule: Arc::new(RwLock::new(None)),
    });
    let mut reason: Option<(bool, &str)> = None;
    let mut exhausted = false;
    tokio::pin!(interrupt);
    loop {
        while reason.is_none()
            && !exhausted
            && running.len() < plan.parallel
            && trials.len() < plan.max_trials
        {
            let so_far: Vec<Seen> = trials.iter().map(|t| seen_of(t, &plan)).collect();
            let Some(a) = algorithm
                .suggest(&so_far, 1, plan.maximize)
                .into_iter()
                .next()
            else {
                // Nothing now: the end of the search, unless trials still running may give
                // the algorithm more to go on (hyperband's rungs).
                exhausted = running.is_empty();
                break;
            };
            let name = format!("{}-{:04}", plan.name, trials.len() + 1);
            let spec = trial_spec(&plan, &a).map_err(TuneError::Invalid)?;
            let c = primary_container(&spec, &plan.primary).map_err(TuneError::Invalid)?;
            let strings = |k: &str| -> Vec<String> {
                c.get(k)
                    .and_then(Value::as_array)
                    .map(|v| {
                        v.iter()
                            .filter_map(|x| x.as_str().map(String::from))
                            .collect()
                    })
                    .unwrap_or_default()
            };
            let argv: Vec<String> = strings("command")
                .into_iter()
                .chain(strings("args"))
                .collect();
            let env: Vec<(String, String)> = c
                .get("env")
                .and_then(Value::as_array)
                .map(|v| {
                    v.iter()
                        .filter_map(|e| {
                            Some((
                                e.get("name")?.as_str()?.to_string(),
                                e.get("value")
                                    .and_then(Value::as_str)
                                    .unwrap_or("")
                                    .to_string(),
                            ))
                        })
                        .collect()
                })
                .unwrap_or_default();
            let shown: Vec<String> = a.iter().map(|(k, v)| format!("{k}={v}")).collect();
            println!("[osprey] {name}: Running {}", shown.join(" "));
            trials.push(Trial {
                name: name.clone(),
                parameter_assignments: a
                    .iter()
                    .map(|(k, v)| Assignment1 {
                        name: k.clone(),
                        value: v.clone(),
                    })
                    .collect(),
                state: "Running".into(),
                metrics: Vec::new(),
                message: None,
            });
            if let Source::File { path, .. } = &plan.collector.source {
                // A file left by an earlier trial would be read as this one's.
                let _ = std::fs::remove_file(path);
            }
            running.spawn(run_trial(
                name,
                argv,
                env,
                args.quiet,
                watch.clone(),
                Arc::new(plan.collector.clone()),
            ));
        }
        if running.is_empty() {
            break;
        }
        let done = tokio::select! {
            d = running.join_next() => d,
            _ = &mut interrupt, if reason.is_none() => {
                reason = Some((false, "Interrupted"));
                running.abort_all();
                continue;
            }
        };
        let Some(Ok((name, result))) = done else {
            continue;
        };
        let Some(t) = trials.iter_mut().find(|t| t.name == name) else {
            continue;
        };
        match result {
            Err(e) => {
                t.state = "Failed".into();
                t.message = Some(e);
            }
            Ok((_, found, true)) => {
                t.state = "EarlyStopped".into();
                t.message = Some("stopped by the medianstop rule".into());
                t.metrics = summarise(&plan, &found);
            }
            Ok((code, found, false)) if code != 0 => {
                t.state = "Failed".into();
                t.message = Some(format!("exit code {code}"));
                t.metrics = summarise(&plan, &found);
            }
            Ok((_, found, false)) => {
                t.metrics = summarise(&plan, &found);
                if t.metrics.iter().any(|m| m.name == plan.metric) {
                    t.state = "Succeeded".into();
                    if let (Some(ms), Some(w)) = (&plan.early_stopping, &watch) {
                        succeeded_reports.push(
                            found
                                .iter()
                                .filter(|(n, _)| *n == plan.metric)
                                .map(|(_, v)| *v)
                                .collect(),
                        );
                        if let Ok(mut r) = w.rule.write() {
                            *r = ms.rule(&plan.metric, &succeeded_reports, plan.maximize);
                        }
                    }
                } else {
                    t.state = "MetricsUnavailable".into();
                    t.message = Some(format!("no {}=<number> in the output", plan.metric));
                }
            }
        }
        let value = objective_of(t, &plan);
        println!("{}", super::report::progress_line(&plan, &trials, &name));
        if reason.is_none() {
            if let (Some(goal), Some(v)) = (plan.goal, value) {
                if (plan.maximize && v >= goal) || (!plan.maximize && v <= goal) {
                    reason = Some((true, "ExperimentGoalReached"));
                    running.abort_all();
                }
            }
            let failed = trials.iter().filter(|t| t.state == "Failed").count();
            if plan.max_failed.is_some_and(|m| failed > m) {
                reason = Some((false, "ExperimentMaxFailedTrialsReached"));
                running.abort_all();
            }
        }
    }
    for t in trials.iter_mut().filter(|t| t.state == "Running") {
        t.state = "Killed".into();
    }
    let (succeeded, why) = reason.unwrap_or(if exhausted {
        (true, "ExperimentSuggestionEndReached")
    } else {
        (true, "ExperimentMaxTrialsReached")
    });
    let best = trials
        .iter()
        .filter(|t| matches!(t.state.as_str(), "Succeeded" | "EarlyStopped"))
        .filter_map(|t| objective_of(t, &plan).map(|v| (v, t)))
        .fold(None::<(f64, &Trial)>, |acc, (v, t)| match acc {
            Some((bv, _)) if !better(&plan, v, bv) => acc,
            _ => Some((v, t)),
        })
        .map(|(_, t)| t.clone());
    let report = Report {
        experiment: plan.name.clone(),
        succeeded,
        reason: why.to_string(),
        trials,
        current_optimal_trial: best,
    };
    let out = args
        .output
        .clone()
        .unwrap_or_else(|| PathBuf::from(format!("{}-trials.json", plan.name)));
    std::fs::write(&out, serde_json::to_vec_pretty(&report).unwrap_or_default())
        .map_err(|e| TuneError::Io(format!("{}: {e}", out.display())))?;
    println!();
    println!(
        "Experiment {}: {} ({why})",
        plan.name,
        if succeeded { "Succeeded" } else { "Failed" }
    );
    for t in &report.trials {
        let params: Vec<String> = t
            .parameter_assignments
            .iter()
            .map(|a| format!("{}={}", a.name, a.value))
            .collect();
        let metric = objective_of(t, &plan).map_or("-".to_string(), |v| v.to_string());
        println!(
            "  {:<24} {:<18} {}={metric}  {}",
            t.name,
            t.state,
            plan.metric,
            params.join(" ")
        );
    }
    if let Some(b) = &report.current_optimal_trial {
        println!(
            "Best: {} {}={}",
            b.name,
            plan.metric,
            objective_of(b, &plan).unwrap_or(f64::NAN)
        );
    }
    println!("Trials: {}", out.display());
    super::report::write_files(&plan, &report, args.csv.as_deref(), args.plot.as_deref())?;
    Ok(report)
}

/// The objective by its strategy, the additional metrics' latest values.
fn summarise(plan: &Plan, found: &[(String, f64)]) -> Vec<Metric> {
    let mut out = Vec::new();
    let objective = found
        .iter()
        .filter(|(n, _)| *n == plan.metric)
        .map(|(_, v)| *v)
        .fold(None::<f64>, |acc, v| match acc {
            Some(a) if !better(plan, v, a) => Some(a),
            _ => Some(v),
        });
    if let Some(v) = objective {
        out.push(Metric {
            name: plan.metric.clone(),
            value: v,
        });
    }
    for name in &plan.additional {
        if let Some((_, v)) = found.iter().rev().find(|(n, _)| n == name) {
            out.push(Metric {
                name: name.clone(),
                value: *v,
            });
        }
    }
    out
}
