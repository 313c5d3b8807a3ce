//! `osprey pipeline run`: a pipeline run on this machine by the [`super::engine`], each
//! container task a local process (its command and args, placeholders substituted; the image is
//! not used), up to `--parallelism` at once, with a live view of every task's state, one log per
//! task, the cache under the pipeline root, and a run.json at the end.

use super::cache::LocalCache;
use super::engine::{Completion, Engine, Launch, Options, Record, RunInfo, TaskState};
use super::error::PipelineError;
use super::executor::{
    expand_arg, pipeline_inputs, read_outputs, split_assignment, PlaceholderContext, TaskOutputs,
};
use super::spec::{self, PipelineSpec};
use super::time::rfc3339;
use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::future::Future;
use std::path::PathBuf;
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
    /// Run every task even when the cache (`<DIR>/.cache/`, filled by earlier runs with the
    /// same pipeline root) holds its outputs; results are still stored for later runs.
    #[arg(long, default_value_t = false)]
    pub no_cache: bool,
}

pub fn run_id(name: &str) -> String {
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

/// How the run ended.
#[derive(Debug, Clone)]
pub struct RunReport {
    pub run_id: String,
    pub run_dir: PathBuf,
    pub state: TaskState,
    pub succeeded: bool,
    pub interrupted: bool,
    /// Every task instance's record, by path.
    pub tasks: BTreeMap<String, Record>,
    /// The pipeline's outputs (root `dag.outputs`).
    pub outputs: BTreeMap<String, Value>,
}

/// Reads, checks and parameterises a pipeline without running it.
pub fn prepare(
    args: &PipelineRunArgs,
) -> Result<(PipelineSpec, BTreeMap<String, Value>), PipelineError> {
    let text = std::fs::read_to_string(&args.pipeline)
        .map_err(|e| PipelineError::Read(format!("{}: {e}", args.pipeline.display())))?;
    let spec = spec::parse(&text)?;
    super::dag::check(&spec)?;
    let given = args
        .params
        .iter()
        .map(|p| split_assignment(p))
        .collect::<Result<Vec<_>, _>>()?;
    let inputs = pipeline_inputs(&spec.root.input_definitions.parameters, &given)?;
    Ok((spec, inputs))
}

struct Finished {
    path: String,
    launch: Launch,
    result: Result<i32, String>,
}

/// Runs a task's process; its output goes to `<task dir>/log.txt` (appended per attempt) and
/// to stdout unless quiet.
async fn run_process(
    launch: &Launch,
    argv: Vec<String>,
    env: Vec<(String, String)>,
    quiet: bool,
    pids: Arc<Mutex<BTreeMap<String, u32>>>,
) -> Result<i32, String> {
    let name = launch.path.clone();
    let log_path = launch.task_dir.join("log.txt");
    let mut log = tokio::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log_path)
        .await
        .map_err(|e| format!("{}: {e}", log_path.display()))?;
    if launch.attempt > 1 {
        let _ = log
            .write_all(format!("--- attempt {} ---\n", launch.attempt).as_bytes())
            .await;
    }
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

/// Prints every record whose state changed since the last call.
fn show_changes(engine: &Engine, shown: &mut BTreeMap<String, TaskState>) {
    for (path, r) in &engine.records {
        if shown.get(path) == Some(&r.state) {
            continue;
        }
        shown.insert(path.clone(), r.state);
        let mut line = format!("{path}: {}", r.state.name());
        if r.state == TaskState::Running && r.attempts > 1 {
            line.push_str(&format!(" (attempt {})", r.attempts));
        }
        if r.state == TaskState::Succeeded {
            if r.cached {
                line.push_str(" (cached)");
            }
            if !r.outputs.parameters.is_empty() || !r.outputs.artifacts.is_empty() {
                line.push_str(&format!(" outputs {}", outputs_json(&r.outputs)));
            }
        }
        if r.state == TaskState::Pending {
            if let Some(m) = &r.message {
                line.push_str(&format!(" ({m})"));
            }
        }
        if matches!(
            r.state,
            TaskState::Failed | TaskState::Skipped | TaskState::Canceled
        ) {
            if let Some(m) = &r.message {
                line.push_str(&format!(" ({m})"));
            }
        }
        say(&line);
    }
}

/// Runs the pipeline until it ends or `interrupt` completes. Errors: the pipeline could not be
/// read, checked or parameterised (nothing ran), or its files could not be written.
pub async fn run(
    args: PipelineRunArgs,
    interrupt: impl Future<Output = ()>,
) -> Result<RunReport, PipelineError> {
    let (spec, inputs) = prepare(&args)?;
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
    let name = spec.pipeline_info.name.clone();
    let info = RunInfo {
        job_name: name.clone(),
        run_id: id.clone(),
        run_dir: run_dir.clone(),
        pipeline_root: root.display().to_string(),
    };
    let mut engine = Engine::new(
        spec,
        inputs.clone(),
        info,
        Options {
            parallelism,
            caching: true,
        },
    )?;
    let cache = LocalCache::new(&root);
    say(&format!(
        "pipeline '{name}' run {id}: parallelism {parallelism}, cache {}, files in {}",
        if args.no_cache { "off" } else { "on" },
        run_dir.display()
    ));
    if !inputs.is_empty() {
        say(&format!(
            "parameters: {}",
            serde_json::to_string(&inputs).unwrap_or_default()
        ));
    }
    let pids: Arc<Mutex<BTreeMap<String, u32>>> = Arc::default();
    let mut running: JoinSet<Finished> = JoinSet::new();
    let mut shown = BTreeMap::new();
    let mut interrupted = false;
    tokio::pin!(interrupt);
    loop {
        let step = engine.step(SystemTime::now());
        let mut completed_now = false;
        for launch in step.launches {
            if let (false, Some(key)) = (args.no_cache, &launch.cache_key) {
                if let Some(outputs) = cache.get(key) {
                    engine.complete(&launch.path, Completion::Cached(outputs), SystemTime::now());
                    completed_now = true;
                    continue;
                }
            }
            match start(&engine, &launch, &path_env) {
                Err(e) => {
                    engine.complete(&launch.path, Completion::Failed(e), SystemTime::now());
                    completed_now = true;
                }
                Ok((argv, env)) => {
                    let (q, p) = (args.quiet, pids.clone());
                    running.spawn(async move {
                        let result = run_process(&launch, argv, env, q, p).await;
                        Finished {
                            path: launch.path.clone(),
                            launch,
                            result,
                        }
                    });
                }
            }
        }
        show_changes(&engine, &mut shown);
        if completed_now {
            continue;
        }
        if running.is_empty() && step.wake_at.is_none() {
            break;
        }
        let wait = step
            .wake_at
            .map(|at| at.duration_since(SystemTime::now()).unwrap_or_default());
        let done = tokio::select! {
            d = running.join_next(), if !running.is_empty() => d,
            _ = tokio::time::sleep(wait.unwrap_or_default()), if wait.is_some() => continue,
            _ = &mut interrupt, if !interrupted => {
                interrupted = true;
                engine.cancel();
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
        let Some(done) = done else { continue };
        let finished = done.map_err(|e| PipelineError::Io(format!("task join: {e}")))?;
        let completion = outcome(&finished, interrupted);
        if let (Completion::Succeeded(outputs), Some(key)) =
            (&completion, &finished.launch.cache_key)
        {
            cache.put(key, &id, &finished.path, outputs);
        }
        engine.complete(&finished.path, completion, SystemTime::now());
    }
    let state = engine.state();
    let report = RunReport {
        run_id: id,
        run_dir,
        state,
        succeeded: state == TaskState::Succeeded,
        interrupted,
        outputs: engine.outputs(),
        tasks: engine.records.clone(),
    };
    write_report(engine.spec(), &report)?;
    print_summary(&report);
    Ok(report)
}

/// A process's environment variables.
type Env = Vec<(String, String)>;

/// The argv and environment of a launch; its directory made and its executor input saved.
fn start(engine: &Engine, launch: &Launch, path_env: &str) -> Result<(Vec<String>, Env), String> {
    std::fs::create_dir_all(&launch.task_dir)
        .map_err(|e| format!("{}: {e}", launch.task_dir.display()))?;
    let _ = std::fs::write(
        launch.task_dir.join("executor_input.json"),
        serde_json::to_vec_pretty(&launch.executor_input).unwrap_or_default(),
    );
    let ctx = PlaceholderContext {
        task: &launch.path,
        executor_input: &launch.executor_input,
        job_name: &engine.info.job_name,
        job_resource_name: &engine.info.run_id,
        pipeline_root: &engine.info.pipeline_root,
    };
    let argv = launch
        .container
        .command
        .iter()
        .chain(launch.container.args.iter())
        .map(|s| expand_arg(s, &ctx))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| e.to_string())?
        .concat();
    let mut env: Vec<(String, String)> = launch
        .container
        .env
        .iter()
        .map(|e| (e.name.clone(), e.value.clone()))
        .collect();
    env.push(("PATH".into(), path_env.to_string()));
    Ok((argv, env))
}

fn outcome(f: &Finished, interrupted: bool) -> Completion {
    let log = f.launch.task_dir.join("log.txt");
    let failure = match &f.result {
        Ok(0) => {
            return match read_outputs(
                &f.path,
                &f.launch.outputs,
                &f.launch.executor_input,
                &f.launch.task_dir,
            ) {
                Ok(outputs) => Completion::Succeeded(outputs),
                Err(e) => Completion::Failed(e.to_string()),
            }
        }
        Ok(code) => format!("exit code {code} (log {})", log.display()),
        Err(e) => e.clone(),
    };
    if interrupted {
        Completion::Canceled(format!("interrupted: {failure}"))
    } else {
        Completion::Failed(failure)
    }
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
        let uri = match a {
            Value::Array(list) => Value::Array(
                list.iter()
                    .map(|x| x.get("uri").cloned().unwrap_or(Value::Null))
                    .collect(),
            ),
            one => one.get("uri").cloned().unwrap_or(Value::Null),
        };
        m.insert(k.clone(), uri);
    }
    Value::Object(m)
}

fn write_report(spec: &PipelineSpec, report: &RunReport) -> Result<(), PipelineError> {
    let doc = json!({
        "pipeline": spec.pipeline_info.name,
        "runId": report.run_id,
        "state": report.state.name(),
        "interrupted": report.interrupted,
        "tasks": report.tasks,
        "outputs": report.outputs,
    });
    let path = report.run_dir.join("run.json");
    std::fs::write(&path, serde_json::to_vec_pretty(&doc).unwrap_or_default())
        .map_err(|e| PipelineError::Io(format!("{}: {e}", path.display())))
}

fn print_summary(report: &RunReport) {
    println!();
    println!("Run {}: {}", report.run_id, report.state.name());
    for (name, r) in &report.tasks {
        let secs = match (
            r.start_time.as_deref().and_then(super::time::parse_rfc3339),
            r.end_time.as_deref().and_then(super::time::parse_rfc3339),
        ) {
            (Some(s), Some(e)) => e
                .duration_since(s)
                .map(|d| format!("{:.1} s", d.as_secs_f64()))
                .unwrap_or_default(),
            _ => "-".into(),
        };
        let mut extra = String::new();
        if r.cached {
            extra.push_str(" cached");
        }
        if r.attempts > 1 {
            extra.push_str(&format!(" attempts {}", r.attempts));
        }
        println!("  {name}: {} {secs}{extra}", r.state.name());
        if r.state == TaskState::Succeeded
            && (!r.outputs.parameters.is_empty() || !r.outputs.artifacts.is_empty())
        {
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
