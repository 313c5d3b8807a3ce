//! `osprey pipeline run`: the root DAG run on this machine, each task a local process (its
//! container's command and args, placeholders substituted; the image is not used), ready tasks
//! in parallel up to `--parallelism`. A failing task fails the run; tasks downstream of it are
//! not run (SKIPPED), independent ones finish.

use super::dag::{plan, Plan, PlannedTask};
use super::error::PipelineError;
use super::executor::{
    executor_input, pipeline_inputs, read_outputs, split_assignment, substitute, task_inputs,
    PlaceholderContext, TaskOutputs,
};
use super::spec::{self, PipelineSpec};
use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::task::JoinSet;

/// `osprey pipeline run` flags.
#[derive(Debug, Clone, clap::Args)]
pub struct PipelineRunArgs {
    /// The pipeline compiled by the KFP v2 SDK (`kfp.compiler.Compiler().compile(...)`: YAML).
    pub pipeline: PathBuf,
    /// A pipeline parameter, `NAME=VALUE` (repeatable), read per its declared type: integers,
    /// numbers, `true`/`false`, strings as given, lists and dicts as JSON.
    #[arg(short = 'p', long = "param", value_name = "NAME=VALUE")]
    pub params: Vec<String>,
    /// Where runs keep their files: `<DIR>/<run id>/<task>/` holds the task's log (log.txt),
    /// output parameter files, artifacts and executor_output.json; `<DIR>/<run id>/run.json`
    /// the run's states and outputs.
    #[arg(long, value_name = "DIR", default_value = "local_outputs")]
    pub pipeline_root: PathBuf,
    /// Most tasks running at once (default: the number of CPUs).
    #[arg(long, value_name = "N")]
    pub parallelism: Option<usize>,
    /// Directory put first on the tasks' PATH: where their `python3` (with kfp installed) is.
    /// Default: `.venv-kfp/bin` when it exists in the current directory (scripts/setup.sh
    /// makes it).
    #[arg(long, env = "OSPREY_PIPELINE_PYTHON_PATH", value_name = "DIR")]
    pub python_path: Option<PathBuf>,
    /// Do not echo the tasks' output (it is still kept in each task's log.txt).
    #[arg(long, default_value_t = false)]
    pub quiet: bool,
}

/// A task's state, as KFP names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TaskState {
    Pending,
    Running,
    Succeeded,
    Skipped,
    Failed,
}

impl TaskState {
    pub fn name(self) -> &'static str {
        match self {
            TaskState::Pending => "PENDING",
            TaskState::Running => "RUNNING",
            TaskState::Succeeded => "SUCCEEDED",
            TaskState::Skipped => "SKIPPED",
            TaskState::Failed => "FAILED",
        }
    }
    fn finished(self) -> bool {
        matches!(
            self,
            TaskState::Succeeded | TaskState::Skipped | TaskState::Failed
        )
    }
}

/// One task's record.
#[derive(Debug, Clone)]
pub struct TaskRecord {
    pub state: TaskState,
    pub start: Option<SystemTime>,
    pub end: Option<SystemTime>,
    pub outputs: TaskOutputs,
    /// Why it failed or was skipped.
    pub message: Option<String>,
}

/// How the run ended.
#[derive(Debug, Clone)]
pub struct RunReport {
    pub run_id: String,
    pub run_dir: PathBuf,
    pub succeeded: bool,
    pub interrupted: bool,
    pub tasks: BTreeMap<String, TaskRecord>,
    /// The pipeline's outputs (root `dag.outputs`) when it succeeded.
    pub outputs: BTreeMap<String, Value>,
}

/// RFC 3339 UTC with milliseconds.
pub fn rfc3339(t: SystemTime) -> String {
    let d = t.duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs() as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        (rem / 60) % 60,
        rem % 60,
        d.subsec_millis()
    )
}

fn run_id(name: &str) -> String {
    let stamp = rfc3339(SystemTime::now())
        .replace([':', '.'], "-")
        .replace(['T'], "-")
        .trim_end_matches('Z')
        .to_string();
    let clean: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '-'
            }
        })
        .collect();
    format!(
        "{}-{stamp}",
        if clean.is_empty() { "pipeline" } else { &clean }
    )
}

fn say(line: &str) {
    println!("[osprey] {} {line}", rfc3339(SystemTime::now()));
}

/// Reads, checks and parameterises a pipeline without running it.
pub fn prepare(
    args: &PipelineRunArgs,
) -> Result<(PipelineSpec, Plan, BTreeMap<String, Value>), PipelineError> {
    let text = std::fs::read_to_string(&args.pipeline)
        .map_err(|e| PipelineError::Read(format!("{}: {e}", args.pipeline.display())))?;
    let spec = spec::parse(&text)?;
    let plan = plan(&spec)?;
    let given = args
        .params
        .iter()
        .map(|p| split_assignment(p))
        .collect::<Result<Vec<_>, _>>()?;
    let inputs = pipeline_inputs(&spec.root.input_definitions.parameters, &given)?;
    Ok((spec, plan, inputs))
}

struct Launched {
    name: String,
    result: Result<i32, String>,
    executor_input: Value,
}

/// Starts a task's process; its output goes to `<task dir>/log.txt` (and stdout unless quiet).
async fn run_process(
    name: String,
    argv: Vec<String>,
    env: Vec<(String, String)>,
    task_dir: PathBuf,
    quiet: bool,
    pids: Arc<Mutex<BTreeMap<String, u32>>>,
) -> Result<i32, String> {
    let log_path = task_dir.join("log.txt");
    let log = tokio::fs::File::create(&log_path)
        .await
        .map_err(|e| format!("{}: {e}", log_path.display()))?;
    let log = Arc::new(tokio::sync::Mutex::new(log));
    let (program, rest) = argv
        .split_first()
        .ok_or_else(|| "empty command".to_string())?;
    let mut cmd = tokio::process::Command::new(program);
    cmd.args(rest)
        .envs(env)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true);
    let mut child = cmd
        .spawn()
        .map_err(|e| format!("starting {program}: {e}"))?;
    if let (Some(pid), Ok(mut p)) = (child.id(), pids.lock()) {
        p.insert(name.clone(), pid);
    }
    let mut copies = Vec::new();
    let out: Option<Box<dyn tokio::io::AsyncRead + Unpin + Send>> = child
        .stdout
        .take()
        .map(|s| Box::new(s) as Box<dyn tokio::io::AsyncRead + Unpin + Send>);
    let err: Option<Box<dyn tokio::io::AsyncRead + Unpin + Send>> = child
        .stderr
        .take()
        .map(|s| Box::new(s) as Box<dyn tokio::io::AsyncRead + Unpin + Send>);
    for stream in [out, err].into_iter().flatten() {
        let log = log.clone();
        let name = name.clone();
        copies.push(tokio::spawn(async move {
            let mut lines = BufReader::new(stream).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                if !quiet {
                    println!("[{name}] {line}");
                }
                let mut f = log.lock().await;
                let _ = f.write_all(line.as_bytes()).await;
                let _ = f.write_all(b"\n").await;
            }
        }));
    }
    let status = child.wait().await.map_err(|e| e.to_string());
    for c in copies {
        let _ = c.await;
    }
    let _ = log.lock().await.flush().await;
    if let Ok(mut p) = pids.lock() {
        p.remove(&name);
    }
    let status = status?;
    Ok(status.code().unwrap_or_else(|| {
        use std::os::unix::process::ExitStatusExt;
        128 + status.signal().unwrap_or(0)
    }))
}

fn prepare_launch(
    t: &PlannedTask,
    ctx_inputs: (&BTreeMap<String, Value>, &BTreeMap<String, TaskRecord>),
    task_dir: &Path,
    names: (&str, &str, &str),
) -> Result<(Vec<String>, Value), PipelineError> {
    let (pipeline, records) = ctx_inputs;
    let upstream: BTreeMap<String, TaskOutputs> = records
        .iter()
        .filter(|(_, r)| r.state == TaskState::Succeeded)
        .map(|(n, r)| (n.clone(), r.outputs.clone()))
        .collect();
    let inputs = task_inputs(t, pipeline, &upstream)?;
    let ei = executor_input(&t.component.output_definitions, &inputs, task_dir);
    let ctx = PlaceholderContext {
        task: &t.name,
        executor_input: &ei,
        job_name: names.0,
        job_resource_name: names.1,
        pipeline_root: names.2,
    };
    let argv = t
        .container
        .command
        .iter()
        .chain(t.container.args.iter())
        .map(|s| substitute(s, &ctx))
        .collect::<Result<Vec<_>, _>>()?;
    Ok((argv, ei))
}

/// Runs the pipeline until it ends or `interrupt` completes. Errors: the pipeline could not be
/// read, checked or parameterised (nothing ran), or its files could not be written.
pub async fn run(
    args: PipelineRunArgs,
    interrupt: impl Future<Output = ()>,
) -> Result<RunReport, PipelineError> {
    let (spec, plan, inputs) = prepare(&args)?;
    let parallelism = args
        .parallelism
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
        .max(1);
    std::fs::create_dir_all(&args.pipeline_root)
        .map_err(|e| PipelineError::Io(format!("{}: {e}", args.pipeline_root.display())))?;
    let root = std::fs::canonicalize(&args.pipeline_root)
        .map_err(|e| PipelineError::Io(format!("{}: {e}", args.pipeline_root.display())))?;
    let id = run_id(&spec.pipeline_info.name);
    let run_dir = root.join(&id);
    std::fs::create_dir_all(&run_dir)
        .map_err(|e| PipelineError::Io(format!("{}: {e}", run_dir.display())))?;
    let python_path = args.python_path.clone().or_else(|| {
        let p = PathBuf::from(".venv-kfp/bin");
        p.join("python3").exists().then_some(p)
    });
    let path_env = match &python_path {
        Some(p) => {
            let abs = std::fs::canonicalize(p)
                .map_err(|e| PipelineError::Io(format!("--python-path {}: {e}", p.display())))?;
            format!(
                "{}:{}",
                abs.display(),
                std::env::var("PATH").unwrap_or_default()
            )
        }
        None => std::env::var("PATH").unwrap_or_default(),
    };
    say(&format!(
        "pipeline '{}' run {id}: {} task(s), parallelism {parallelism}, files in {}",
        spec.pipeline_info.name,
        plan.tasks.len(),
        run_dir.display()
    ));
    if !inputs.is_empty() {
        say(&format!(
            "parameters: {}",
            serde_json::to_string(&inputs).unwrap_or_default()
        ));
    }
    let mut records: BTreeMap<String, TaskRecord> = plan
        .tasks
        .keys()
        .map(|n| {
            (
                n.clone(),
                TaskRecord {
                    state: TaskState::Pending,
                    start: None,
                    end: None,
                    outputs: TaskOutputs::default(),
                    message: None,
                },
            )
        })
        .collect();
    for n in &plan.order {
        say(&format!("{n}: PENDING"));
    }
    let pids: Arc<Mutex<BTreeMap<String, u32>>> = Arc::default();
    let mut running: JoinSet<Launched> = JoinSet::new();
    let mut interrupted = false;
    let root_text = root.display().to_string();
    tokio::pin!(interrupt);
    loop {
        // Skip what can no longer run; start what is ready.
        let mut changed = true;
        while changed {
            changed = false;
            for name in &plan.order {
                let Some(t) = plan.tasks.get(name) else {
                    continue;
                };
                if records.get(name).map(|r| r.state) != Some(TaskState::Pending) {
                    continue;
                }
                let blocked = t.deps.iter().find(|d| {
                    matches!(
                        records.get(*d).map(|r| r.state),
                        Some(TaskState::Failed | TaskState::Skipped)
                    )
                });
                if let Some(d) = blocked {
                    let why = format!(
                        "not run: upstream task '{d}' {}",
                        records.get(d).map_or("FAILED", |r| r.state.name())
                    );
                    say(&format!("{name}: SKIPPED ({why})"));
                    if let Some(r) = records.get_mut(name) {
                        r.state = TaskState::Skipped;
                        r.message = Some(why);
                    }
                    changed = true;
                    continue;
                }
                let ready = t
                    .deps
                    .iter()
                    .all(|d| records.get(d).map(|r| r.state) == Some(TaskState::Succeeded));
                if !ready || interrupted || running.len() >= parallelism {
                    continue;
                }
                let task_dir = run_dir.join(name);
                std::fs::create_dir_all(&task_dir)
                    .map_err(|e| PipelineError::Io(format!("{}: {e}", task_dir.display())))?;
                let now = SystemTime::now();
                match prepare_launch(
                    t,
                    (&inputs, &records),
                    &task_dir,
                    (&spec.pipeline_info.name, &id, &root_text),
                ) {
                    Err(e) => {
                        say(&format!("{name}: FAILED ({e})"));
                        if let Some(r) = records.get_mut(name) {
                            r.state = TaskState::Failed;
                            r.start = Some(now);
                            r.end = Some(now);
                            r.message = Some(e.to_string());
                        }
                        changed = true;
                    }
                    Ok((argv, ei)) => {
                        let _ = std::fs::write(
                            task_dir.join("executor_input.json"),
                            serde_json::to_vec_pretty(&ei).unwrap_or_default(),
                        );
                        let mut env: Vec<(String, String)> = t
                            .container
                            .env
                            .iter()
                            .map(|e| (e.name.clone(), e.value.clone()))
                            .collect();
                        env.push(("PATH".into(), path_env.clone()));
                        say(&format!(
                            "{name}: RUNNING (log {})",
                            task_dir.join("log.txt").display()
                        ));
                        if let Some(r) = records.get_mut(name) {
                            r.state = TaskState::Running;
                            r.start = Some(now);
                        }
                        let (n, q, p) = (name.clone(), args.quiet, pids.clone());
                        running.spawn(async move {
                            let result = run_process(n.clone(), argv, env, task_dir, q, p).await;
                            Launched {
                                name: n,
                                result,
                                executor_input: ei,
                            }
                        });
                    }
                }
            }
        }
        if running.is_empty() {
            break;
        }
        let done = tokio::select! {
            d = running.join_next() => d,
            _ = &mut interrupt, if !interrupted => {
                interrupted = true;
                say("interrupted: stopping the running tasks (SIGTERM, SIGKILL 10 s later)");
                signal_all(&pids, Signal::SIGTERM);
                let pids = pids.clone();
                tokio::spawn(async move {
                    tokio::time::sleep(std::time::Duration::from_secs(10)).await;
                    signal_all(&pids, Signal::SIGKILL);
                });
                continue;
            }
        };
        let Some(done) = done else { break };
        let launched = done.map_err(|e| PipelineError::Io(format!("task join: {e}")))?;
        let name = launched.name;
        let task_dir = run_dir.join(&name);
        let end = SystemTime::now();
        let outcome = match launched.result {
            Err(e) => Err(e),
            Ok(0) => match plan.tasks.get(&name) {
                Some(t) => read_outputs(
                    &name,
                    &t.component.output_definitions,
                    &launched.executor_input,
                    &task_dir,
                )
                .map_err(|e| e.to_string()),
                None => Err("unknown task".into()),
            },
            Ok(code) => Err(format!(
                "exit code {code} (log {})",
                task_dir.join("log.txt").display()
            )),
        };
        if let Some(r) = records.get_mut(&name) {
            r.end = Some(end);
            match outcome {
                Ok(outs) => {
                    r.state = TaskState::Succeeded;
                    say(&format!(
                        "{name}: SUCCEEDED outputs {}",
                        outputs_json(&outs)
                    ));
                    r.outputs = outs;
                }
                Err(e) => {
                    let e = if interrupted {
                        format!("interrupted: {e}")
                    } else {
                        e
                    };
                    say(&format!("{name}: FAILED ({e})"));
                    r.state = TaskState::Failed;
                    r.message = Some(format!("task '{name}' failed: {e}"));
                }
            }
        }
    }
    // Interrupted before starting: what never ran is skipped.
    for (name, r) in records.iter_mut() {
        if !r.state.finished() {
            r.state = TaskState::Skipped;
            r.message = Some("not run: the run was interrupted".into());
            say(&format!("{name}: SKIPPED (the run was interrupted)"));
        }
    }
    let succeeded = !interrupted && records.values().all(|r| r.state == TaskState::Succeeded);
    let outputs = if succeeded {
        pipeline_outputs(&spec, &records)
    } else {
        BTreeMap::new()
    };
    let report = RunReport {
        run_id: id,
        run_dir,
        succeeded,
        interrupted,
        tasks: records,
        outputs,
    };
    write_report(&spec, &report)?;
    print_summary(&report);
    Ok(report)
}

/// Signals the process group of every task still running.
fn signal_all(pids: &Mutex<BTreeMap<String, u32>>, signal: Signal) {
    if let Ok(p) = pids.lock() {
        for pid in p.values() {
            if let Ok(pid) = i32::try_from(*pid) {
                let _ = killpg(Pid::from_raw(pid), signal);
            }
        }
    }
}

fn outputs_json(o: &TaskOutputs) -> Value {
    let mut m = serde_json::Map::new();
    for (k, v) in &o.parameters {
        m.insert(k.clone(), v.clone());
    }
    for (k, a) in &o.artifacts {
        m.insert(k.clone(), a.get("uri").cloned().unwrap_or(Value::Null));
    }
    Value::Object(m)
}

fn pipeline_outputs(
    spec: &PipelineSpec,
    records: &BTreeMap<String, TaskRecord>,
) -> BTreeMap<String, Value> {
    let mut out = BTreeMap::new();
    let Some(dag) = &spec.root.dag else {
        return out;
    };
    for (name, p) in &dag.outputs.parameters {
        if let Some(v) = &p.value_from_parameter {
            if let Some(value) = records
                .get(&v.producer_subtask)
                .and_then(|r| r.outputs.parameters.get(&v.output_parameter_key))
            {
                out.insert(name.clone(), value.clone());
            }
        }
    }
    for (name, a) in &dag.outputs.artifacts {
        let sel = a
            .get("artifactSelectors")
            .and_then(|s| s.get(0))
            .cloned()
            .unwrap_or(Value::Null);
        let producer = sel.get("producerSubtask").and_then(|v| v.as_str());
        let key = sel.get("outputArtifactKey").and_then(|v| v.as_str());
        if let (Some(p), Some(k)) = (producer, key) {
            if let Some(art) = records.get(p).and_then(|r| r.outputs.artifacts.get(k)) {
                out.insert(name.clone(), art.clone());
            }
        }
    }
    out
}

fn write_report(spec: &PipelineSpec, report: &RunReport) -> Result<(), PipelineError> {
    let tasks: serde_json::Map<String, Value> = report
        .tasks
        .iter()
        .map(|(n, r)| {
            (
                n.clone(),
                json!({
                    "state": r.state.name(),
                    "startTime": r.start.map(rfc3339),
                    "endTime": r.end.map(rfc3339),
                    "outputs": { "parameters": r.outputs.parameters, "artifacts": r.outputs.artifacts },
                    "message": r.message,
                }),
            )
        })
        .collect();
    let doc = json!({
        "pipeline": spec.pipeline_info.name,
        "runId": report.run_id,
        "state": if report.succeeded { "SUCCEEDED" } else { "FAILED" },
        "interrupted": report.interrupted,
        "tasks": tasks,
        "outputs": report.outputs,
    });
    let path = report.run_dir.join("run.json");
    std::fs::write(&path, serde_json::to_vec_pretty(&doc).unwrap_or_default())
        .map_err(|e| PipelineError::Io(format!("{}: {e}", path.display())))
}

fn print_summary(report: &RunReport) {
    println!();
    println!(
        "Run {}: {}",
        report.run_id,
        if report.succeeded {
            "SUCCEEDED"
        } else {
            "FAILED"
        }
    );
    for (name, r) in &report.tasks {
        let secs = match (r.start, r.end) {
            (Some(s), Some(e)) => e
                .duration_since(s)
                .map(|d| format!("{:.1} s", d.as_secs_f64()))
                .unwrap_or_default(),
            _ => "-".into(),
        };
        println!(
            "  {name}: {} [{} .. {}] {secs}",
            r.state.name(),
            r.start.map(rfc3339).unwrap_or_else(|| "-".into()),
            r.end.map(rfc3339).unwrap_or_else(|| "-".into()),
        );
        if r.state == TaskState::Succeeded {
            println!("    outputs: {}", outputs_json(&r.outputs));
        }
        if let Some(m) = &r.message {
            println!("    {m}");
        }
    }
    if !report.outputs.is_empty() {
        println!(
            "Pipeline outputs: {}",
            serde_json::to_string(&report.outputs).unwrap_or_default()
        );
    }
    println!("Files: {}", report.run_dir.display());
}
