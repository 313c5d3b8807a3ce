//! `osprey pipeline launch`: the launcher inside a pipeline task's pod. The controller gives it
//! the task's ExecutorInput (whose output files and artifact URIs are absolute paths under the
//! pipeline root, chosen by the controller) and the component's command; it substitutes the
//! placeholders, creates the output directories, runs the command (stdio inherited, so the pod's
//! log is the component's; SIGTERM and SIGINT forwarded to it), reads the outputs back as
//! `osprey pipeline run` does and writes them, as `{"parameters": {...}, "artifacts": {...}}`,
//! to the termination message file where the controller reads them from the pod's status.
//!
//! `--copy-to PATH` copies the running `osprey` binary to PATH instead: what the task pod's
//! init container runs, so that a component image without Osprey can run the launcher.

use super::error::PipelineError;
use super::executor::{expand_arg, read_outputs, PlaceholderContext, TaskOutputs};
use super::spec::Definitions;
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitStatus;

/// Most bytes Kubernetes keeps of a container's termination message.
pub const TERMINATION_MESSAGE_LIMIT: usize = 4096;

/// Where Kubernetes reads a container's termination message by default.
pub const DEFAULT_TERMINATION_LOG: &str = "/dev/termination-log";

/// `osprey pipeline launch` flags.
#[derive(Debug, Clone, clap::Args)]
pub struct LaunchArgs {
    /// The task's ExecutorInput as JSON (`inputs.parameterValues`, `inputs.artifacts`,
    /// `outputs.parameters.<name>.outputFile`, `outputs.artifacts`, `outputs.outputFile`).
    #[arg(
        long,
        value_name = "JSON",
        required_unless_present = "copy_to",
        conflicts_with = "copy_to"
    )]
    pub executor_input: Option<String>,
    /// The component's output definitions as in the compiled pipeline
    /// (`{"parameters": {"Output": {"parameterType": "NUMBER_INTEGER"}}, "artifacts": {...}}`):
    /// each output is read back and checked per its declared type. Default: no outputs.
    #[arg(long, value_name = "JSON")]
    pub output_definitions: Option<String>,
    /// The task's name or path (`train`, `for-loop-2[1]/square`), for messages and
    /// `{{$.pipeline_task_name}}`.
    #[arg(long, value_name = "NAME", default_value = "task")]
    pub task: String,
    /// `{{$.pipeline_root}}`.
    #[arg(long, value_name = "DIR", default_value = "")]
    pub pipeline_root: String,
    /// `{{$.pipeline_job_name}}`: the run's name.
    #[arg(long, value_name = "NAME", default_value = "")]
    pub run_name: String,
    /// `{{$.pipeline_job_resource_name}}` and `{{$.pipeline_job_uuid}}`: the run's id.
    #[arg(long, value_name = "ID", default_value = "")]
    pub run_id: String,
    /// Where the outputs JSON goes (Kubernetes' termination message file).
    #[arg(long, value_name = "PATH", default_value = DEFAULT_TERMINATION_LOG)]
    pub outputs_file: PathBuf,
    /// Copy this `osprey` binary to PATH (mode 0755) and exit: the task pod's init container.
    #[arg(long, value_name = "PATH")]
    pub copy_to: Option<PathBuf>,
    /// The component's command and args, placeholders unsubstituted (after `--`).
    #[arg(last = true, value_name = "COMMAND")]
    pub command: Vec<String>,
}

/// Why the launcher itself failed (the command's own failure is its exit code, not an error).
#[derive(Debug, thiserror::Error)]
pub enum LaunchError {
    /// Bad flags or a malformed executor input / output definitions.
    #[error("task '{task}': {message}")]
    Usage { task: String, message: String },
    /// A placeholder that cannot be resolved, or outputs missing or of the wrong type.
    #[error(transparent)]
    Pipeline(#[from] PipelineError),
    /// The outputs do not fit in a termination message.
    #[error(
        "task '{task}': its outputs are {size} bytes of JSON, more than the {limit} bytes \
         Kubernetes keeps of a termination message; return large values as artifacts instead \
         of parameters",
        limit = TERMINATION_MESSAGE_LIMIT
    )]
    TooLarge { task: String, size: usize },
    /// The command could not be started.
    #[error("task '{task}': starting {program}: {message}")]
    Start {
        task: String,
        program: String,
        message: String,
    },
    /// Files and directories.
    #[error("task '{task}': {message}")]
    Io { task: String, message: String },
}

fn usage(task: &str, message: impl Into<String>) -> LaunchError {
    LaunchError::Usage {
        task: task.to_string(),
        message: message.into(),
    }
}

fn io_error(task: &str, path: &Path, e: std::io::Error) -> LaunchError {
    LaunchError::Io {
        task: task.to_string(),
        message: format!("{}: {e}", path.display()),
    }
}

/// The outputs as the launcher writes them: `{"parameters": {...}, "artifacts": {...}}`,
/// compact.
pub fn encode_outputs(outputs: &TaskOutputs) -> String {
    json!({ "parameters": outputs.parameters, "artifacts": outputs.artifacts }).to_string()
}

/// Reads what [`encode_outputs`] wrote (a termination message).
pub fn decode_outputs(text: &str) -> Result<TaskOutputs, String> {
    let v: Value =
        serde_json::from_str(text).map_err(|e| format!("not the launcher's outputs JSON: {e}"))?;
    let obj = v
        .as_object()
        .ok_or_else(|| "not the launcher's outputs JSON: not an object".to_string())?;
    let mut out = TaskOutputs::default();
    for (key, value) in obj {
        let map: BTreeMap<String, Value> = match value {
            Value::Object(m) => m.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
            _ => return Err(format!("outputs JSON: '{key}' is not an object")),
        };
        match key.as_str() {
            "parameters" => out.parameters = map,
            "artifacts" => out.artifacts = map,
            other => return Err(format!("outputs JSON: unexpected key '{other}'")),
        }
    }
    Ok(out)
}

/// A component's output definitions in the compiled pipeline's JSON form, as
/// `--output-definitions` takes them (only what reading outputs back needs: names and types).
pub fn definitions_json(defs: &Definitions) -> Value {
    let parameters: Map<String, Value> = defs
        .parameters
        .iter()
        .map(|(k, p)| {
            (
                k.clone(),
                json!({ "parameterType": p.parameter_type.name() }),
            )
        })
        .collect();
    let artifacts: Map<String, Value> = defs
        .artifacts
        .iter()
        .map(|(k, a)| {
            let mut ty = Map::new();
            if let Some(t) = &a.artifact_type.schema_title {
                ty.insert("schemaTitle".into(), json!(t));
            }
            if let Some(v) = &a.artifact_type.schema_version {
                ty.insert("schemaVersion".into(), json!(v));
            }
            (k.clone(), json!({ "artifactType": ty }))
        })
        .collect();
    json!({ "parameters": parameters, "artifacts": artifacts })
}

/// What the launcher derived from its flags before running anything.
#[derive(Debug, Clone)]
pub struct Prepared {
    pub executor_input: Value,
    pub definitions: Definitions,
    /// The directory of the executor output file: where [`read_outputs`] looks.
    pub task_dir: PathBuf,
    /// Directories to create before the command runs.
    pub dirs: Vec<PathBuf>,
    /// Output files a previous attempt may have left (removed before the command runs).
    pub stale: Vec<PathBuf>,
    /// The command with its placeholders substituted.
    pub argv: Vec<String>,
}

fn str_at<'v>(v: &'v Value, path: &[&str]) -> Option<&'v str> {
    let mut cur = v;
    for p in path {
        cur = cur.get(*p)?;
    }
    cur.as_str()
}

/// Checks the flags and the executor input and substitutes the command's placeholders.
pub fn prepare(args: &LaunchArgs) -> Result<Prepared, LaunchError> {
    let task = args.task.as_str();
    let text = args
        .executor_input
        .as_deref()
        .ok_or_else(|| usage(task, "--executor-input is required"))?;
    let ei: Value = serde_json::from_str(text)
        .map_err(|e| usage(task, format!("--executor-input is not JSON: {e}")))?;
    if !ei.is_object() {
        return Err(usage(task, "--executor-input must be a JSON object"));
    }
    let definitions: Definitions = match &args.output_definitions {
        None => Definitions::default(),
        Some(t) => serde_json::from_str(t)
            .map_err(|e| usage(task, format!("--output-definitions: {e}")))?,
    };
    if args.command.is_empty() {
        return Err(usage(
            task,
            "no command: give the component's command after `--`",
        ));
    }
    let output_file = str_at(&ei, &["outputs", "outputFile"]).ok_or_else(|| {
        usage(
            task,
            "the executor input has no outputs.outputFile (where the executor output goes)",
        )
    })?;
    let output_file = PathBuf::from(output_file);
    let task_dir = output_file
        .parent()
        .filter(|d| d.is_absolute())
        .map(Path::to_path_buf)
        .ok_or_else(|| {
            usage(
                task,
                format!(
                    "outputs.outputFile {} is not an absolute file path",
                    output_file.display()
                ),
            )
        })?;
    let mut dirs = vec![task_dir.clone()];
    let mut stale = vec![output_file.clone()];
    let declared_params = ei
        .get("outputs")
        .and_then(|o| o.get("parameters"))
        .and_then(Value::as_object);
    for (name, p) in declared_params.into_iter().flatten() {
        if !definitions.parameters.contains_key(name) {
            return Err(usage(
                task,
                format!(
                    "output parameter '{name}' has no declared type: give it in \
                     --output-definitions"
                ),
            ));
        }
        let file = p
            .get("outputFile")
            .and_then(Value::as_str)
            .map(PathBuf::from)
            .ok_or_else(|| usage(task, format!("output parameter '{name}' has no outputFile")))?;
        let expected = super::executor::output_parameter_file(&task_dir, name);
        if file != expected {
            return Err(usage(
                task,
                format!(
                    "output parameter '{name}': outputFile {} is not {} (output files must be \
                     in the executor output file's directory)",
                    file.display(),
                    expected.display()
                ),
            ));
        }
        stale.push(file);
    }
    for name in definitions.parameters.keys() {
        if declared_params.is_none_or(|m| !m.contains_key(name)) {
            return Err(usage(
                task,
                format!("output parameter '{name}' is not in the executor input's outputs"),
            ));
        }
    }
    let declared_artifacts = ei
        .get("outputs")
        .and_then(|o| o.get("artifacts"))
        .and_then(Value::as_object);
    for (name, a) in declared_artifacts.into_iter().flatten() {
        let list = a
            .get("artifacts")
            .and_then(Value::as_array)
            .ok_or_else(|| usage(task, format!("output artifact '{name}' has no artifacts")))?;
        for artifact in list {
            let uri = artifact
                .get("uri")
                .and_then(Value::as_str)
                .ok_or_else(|| usage(task, format!("output artifact '{name}' has no uri")))?;
            // Local paths only; a remote URI (gs://, s3://) is the component's business.
            if let Some(parent) = Path::new(uri).parent().filter(|_| uri.starts_with('/')) {
                dirs.push(parent.to_path_buf());
            }
        }
    }
    for name in definitions.artifacts.keys() {
        if declared_artifacts.is_none_or(|m| !m.contains_key(name)) {
            return Err(usage(
                task,
                format!("output artifact '{name}' is not in the executor input's outputs"),
            ));
        }
    }
    let ctx = PlaceholderContext {
        task,
        executor_input: &ei,
        job_name: &args.run_name,
        job_resource_name: &args.run_id,
        pipeline_root: &args.pipeline_root,
    };
    let argv = args
        .command
        .iter()
        .map(|s| expand_arg(s, &ctx))
        .collect::<Result<Vec<_>, _>>()?
        .concat();
    dirs.sort();
    dirs.dedup();
    Ok(Prepared {
        executor_input: ei,
        definitions,
        task_dir,
        dirs,
        stale,
        argv,
    })
}

/// The outputs JSON, refused when Kubernetes would cut it.
pub fn checked_outputs(task: &str, outputs: &TaskOutputs) -> Result<String, LaunchError> {
    let text = encode_outputs(outputs);
    if text.len() > TERMINATION_MESSAGE_LIMIT {
        return Err(LaunchError::TooLarge {
            task: task.to_string(),
            size: text.len(),
        });
    }
    Ok(text)
}

fn exit_code(status: ExitStatus) -> i32 {
    use std::os::unix::process::ExitStatusExt;
    status
        .code()
        .unwrap_or_else(|| 128 + status.signal().unwrap_or(0))
}

fn forward(pid: Option<u32>, signal: nix::sys::signal::Signal) {
    if let Some(pid) = pid.and_then(|p| i32::try_from(p).ok()) {
        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), signal);
    }
}

/// Runs `argv` with inherited stdio until it exits, forwarding SIGTERM and SIGINT to it.
async fn run_command(task: &str, argv: &[String]) -> Result<ExitStatus, LaunchError> {
    use tokio::signal::unix::{signal, SignalKind};
    let (program, rest) = argv
        .split_first()
        .ok_or_else(|| usage(task, "empty command"))?;
    let start_error = |e: std::io::Error| LaunchError::Start {
        task: task.to_string(),
        program: program.clone(),
        message: e.to_string(),
    };
    // Handlers first: a SIGTERM between the spawn and their installation would otherwise end
    // the launcher and leave the command running.
    let mut term = signal(SignalKind::terminate()).map_err(start_error)?;
    let mut int = signal(SignalKind::interrupt()).map_err(start_error)?;
    let mut child = tokio::process::Command::new(program)
        .args(rest)
        .spawn()
        .map_err(start_error)?;
    let pid = child.id();
    loop {
        tokio::select! {
            status = child.wait() => {
                return status.map_err(|e| LaunchError::Start {
                    task: task.to_string(),
                    program: program.clone(),
                    message: format!("waiting for it: {e}"),
                });
            }
            _ = term.recv() => forward(pid, nix::sys::signal::Signal::SIGTERM),
            _ = int.recv() => forward(pid, nix::sys::signal::Signal::SIGINT),
        }
    }
}

/// Prepares, runs the command and keeps its outputs. Returns the exit code the launcher ends
/// with: the command's when it failed (128 + N when killed by signal N), 0 once the outputs
/// are written. Errors: the launcher's own failures (exit 1).
pub async fn run(args: &LaunchArgs) -> Result<i32, LaunchError> {
    let task = args.task.as_str();
    let p = prepare(args)?;
    for d in &p.dirs {
        std::fs::create_dir_all(d).map_err(|e| io_error(task, d, e))?;
    }
    for f in &p.stale {
        match std::fs::remove_file(f) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(io_error(task, f, e));
            }
            _ => {}
        }
    }
    let status = run_command(task, &p.argv).await?;
    let code = exit_code(status);
    if code != 0 {
        eprintln!("osprey pipeline launch: task '{task}': the command exited with code {code}");
        return Ok(code);
    }
    let outputs = read_outputs(task, &p.definitions, &p.executor_input, &p.task_dir)?;
    let text = checked_outputs(task, &outputs)?;
    std::fs::write(&args.outputs_file, &text).map_err(|e| io_error(task, &args.outputs_file, e))?;
    eprintln!(
        "osprey pipeline launch: task '{task}' succeeded: {} output parameter(s), {} artifact(s)",
        outputs.parameters.len(),
        outputs.artifacts.len()
    );
    Ok(0)
}

/// `--copy-to`: this binary copied to `dest` (through a temporary file in the same directory,
/// renamed into place), mode 0755. Returns the bytes copied.
pub fn copy_self(dest: &Path) -> Result<u64, LaunchError> {
    use std::os::unix::fs::PermissionsExt;
    let task = "copy";
    let exe = std::env::current_exe().map_err(|e| LaunchError::Io {
        task: task.into(),
        message: format!("finding this binary: {e}"),
    })?;
    let dir = dest
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(|e| io_error(task, dir, e))?;
    let name = dest
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .ok_or_else(|| {
            usage(
                task,
                format!("--copy-to {}: not a file path", dest.display()),
            )
        })?;
    let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let bytes = std::fs::copy(&exe, &tmp).map_err(|e| io_error(task, &tmp, e))?;
    std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o755))
        .map_err(|e| io_error(task, &tmp, e))?;
    std::fs::rename(&tmp, dest).map_err(|e| io_error(task, dest, e))?;
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: LaunchArgs,
    }

    fn args(argv: &[&str]) -> LaunchArgs {
        Cli::try_parse_from(std::iter::once("launch").chain(argv.iter().copied()))
            .expect("flags parse")
            .args
    }

    fn executor_input(dir: &Path) -> Value {
        json!({
            "inputs": {"parameterValues": {"a": 2, "b": 3}},
            "outputs": {
                "parameters": {"sum": {"outputFile": dir.join("sum").to_string_lossy()}},
                "artifacts": {"data": {"artifacts": [{
                    "name": "data",
                    "type": {"schemaTitle": "system.Dataset"},
                    "uri": dir.join("data").to_string_lossy(),
                    "metadata": {}
                }]}},
                "outputFile": dir.join("executor_output.json").to_string_lossy()
            }
        })
    }

    const DEFS: &str = r#"{"parameters": {"sum": {"parameterType": "NUMBER_INTEGER"}},
                           "artifacts": {"data": {"artifactType": {"schemaTitle": "system.Dataset"}}}}"#;

    #[test]
    fn outputs_round_trip_and_strict_decoding() {
        let mut o = TaskOutputs::default();
        o.parameters.insert("n".into(), json!(3));
        o.artifacts
            .insert("m".into(), json!({"uri": "/r/m", "metadata": {"k": 1}}));
        let text = encode_outputs(&o);
        assert_eq!(decode_outputs(&text), Ok(o));
        assert_eq!(decode_outputs("{}"), Ok(TaskOutputs::default()));
        assert!(decode_outputs("[1]").is_err());
        assert!(decode_outputs("not json").is_err());
        let e = decode_outputs(r#"{"parameters": 3}"#).expect_err("refused");
        assert!(e.contains("'parameters' is not an object"), "{e}");
        let e = decode_outputs(r#"{"params": {}}"#).expect_err("refused");
        assert!(e.contains("unexpected key 'params'"), "{e}");
    }

    #[test]
    fn definitions_survive_the_json_round_trip() {
        let defs: Definitions = serde_json::from_str(DEFS).expect("parses");
        let back: Definitions =
            serde_json::from_value(definitions_json(&defs)).expect("parses back");
        assert_eq!(
            back.parameters.get("sum").map(|p| p.parameter_type),
            Some(crate::pipeline::spec::ParameterType::NumberInteger)
        );
        assert_eq!(
            back.artifacts
                .get("data")
                .and_then(|a| a.artifact_type.schema_title.as_deref()),
            Some("system.Dataset")
        );
    }

    #[test]
    fn prepare_substitutes_and_lists_directories() {
        let ei = executor_input(Path::new("/root/run/t"));
        let a = args(&[
            "--executor-input",
            &ei.to_string(),
            "--output-definitions",
            DEFS,
            "--task",
            "t",
            "--run-name",
            "my-run",
            "--",
            "echo",
            "{{$.inputs.parameters['a']}}",
            "{{$.outputs.parameters['sum'].output_file}}",
            "{{$.outputs.artifacts['data'].path}}",
            "{{$.pipeline_job_name}}",
        ]);
        let p = prepare(&a).expect("prepares");
        assert_eq!(
            p.argv,
            ["echo", "2", "/root/run/t/sum", "/root/run/t/data", "my-run"]
        );
        assert_eq!(p.task_dir, Path::new("/root/run/t"));
        assert_eq!(p.dirs, [PathBuf::from("/root/run/t")]);
        assert!(p
            .stale
            .contains(&PathBuf::from("/root/run/t/executor_output.json")));
        assert!(p.stale.contains(&PathBuf::from("/root/run/t/sum")));
    }

    #[test]
    fn prepare_refuses_what_it_cannot_read_back() {
        let ei = executor_input(Path::new("/r/t"));
        let cmd = ["--", "true"];
        let cases: Vec<(Vec<String>, &str)> = vec![
            (
                vec!["--executor-input".into(), "{".into()],
                "--executor-input is not JSON",
            ),
            (
                vec!["--executor-input".into(), ei.to_string()],
                "output parameter 'sum' has no declared type",
            ),
            (
                vec![
                    "--executor-input".into(),
                    json!({"outputs": {}}).to_string(),
                ],
                "no outputs.outputFile",
            ),
            (
                vec![
                    "--executor-input".into(),
                    json!({"outputs": {"outputFile": "relative/x.json"}}).to_string(),
                ],
                "not an absolute file path",
            ),
            (
                vec![
                    "--executor-input".into(),
                    json!({"outputs": {
                        "parameters": {"sum": {"outputFile": "/elsewhere/sum"}},
                        "outputFile": "/r/t/executor_output.json"}})
                    .to_string(),
                    "--output-definitions".into(),
                    DEFS.into(),
                ],
                "is not /r/t/sum",
            ),
            (
                vec![
                    "--executor-input".into(),
                    json!({"outputs": {"outputFile": "/r/t/executor_output.json"}}).to_string(),
                    "--output-definitions".into(),
                    DEFS.into(),
                ],
                "output parameter 'sum' is not in the executor input",
            ),
        ];
        for (flags, want) in cases {
            let mut all: Vec<&str> = flags.iter().map(String::as_str).collect();
            all.extend(cmd);
            let e = prepare(&args(&all)).expect_err(want);
            assert!(e.to_string().contains(want), "{e} should say {want}");
            assert!(e.to_string().starts_with("task 'task': "), "{e}");
        }
        let e = prepare(&args(&[
            "--executor-input",
            &ei.to_string(),
            "--output-definitions",
            DEFS,
        ]))
        .expect_err("no command");
        assert!(e.to_string().contains("no command"), "{e}");
        let e = prepare(&args(&[
            "--executor-input",
            &ei.to_string(),
            "--output-definitions",
            DEFS,
            "--",
            "{{$.inputs.parameters['missing']}}",
        ]))
        .expect_err("unknown input");
        assert!(
            e.to_string().contains("no input parameter 'missing'"),
            "{e}"
        );
    }

    #[test]
    fn outputs_over_the_termination_message_limit_are_refused_by_task() {
        let mut o = TaskOutputs::default();
        o.parameters.insert("big".into(), json!("x".repeat(5000)));
        match checked_outputs("train", &o) {
            Err(e @ LaunchError::TooLarge { size, .. }) => {
                assert!(size > 5000);
                let m = e.to_string();
                assert!(m.contains("task 'train'") && m.contains("4096"), "{m}");
            }
            other => panic!("expected TooLarge, got {other:?}"),
        }
        o.parameters.insert("big".into(), json!("x".repeat(100)));
        assert!(checked_outputs("train", &o).is_ok());
    }

    #[test]
    fn copy_to_and_executor_input_exclude_each_other() {
        assert!(Cli::try_parse_from(["launch", "--copy-to", "/x"]).is_ok());
        assert!(Cli::try_parse_from(["launch"]).is_err());
        assert!(
            Cli::try_parse_from(["launch", "--copy-to", "/x", "--executor-input", "{}"]).is_err()
        );
    }

    /// A real shell as the component: outputs written through the placeholders, read back and
    /// kept in the outputs file.
    #[tokio::test]
    async fn a_shell_component_succeeds_and_its_outputs_are_kept() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let task_dir = tmp.path().join("root/run-1/add");
        let ei = executor_input(&task_dir);
        let outputs_file = tmp.path().join("termination-log");
        // A stale output from an earlier attempt must not be read back.
        std::fs::create_dir_all(&task_dir).expect("dir");
        std::fs::write(
            task_dir.join("executor_output.json"),
            r#"{"parameterValues": {"sum": 99}}"#,
        )
        .expect("stale file");
        let a = args(&[
            "--executor-input",
            &ei.to_string(),
            "--output-definitions",
            DEFS,
            "--task",
            "add",
            "--outputs-file",
            &outputs_file.to_string_lossy(),
            "--",
            "sh",
            "-c",
            "echo $(($1 + $2)) > \"$3\" && echo rows > \"$4\"",
            "sh",
            "{{$.inputs.parameters['a']}}",
            "{{$.inputs.parameters['b']}}",
            "{{$.outputs.parameters['sum'].output_file}}",
            "{{$.outputs.artifacts['data'].path}}",
        ]);
        assert_eq!(run(&a).await.expect("launches"), 0);
        let written = std::fs::read_to_string(&outputs_file).expect("outputs file");
        let outs = decode_outputs(&written).expect("decodes");
        assert_eq!(outs.parameters.get("sum"), Some(&json!(5)));
        let data = outs.artifacts.get("data").expect("artifact");
        assert_eq!(
            data.get("uri").and_then(Value::as_str),
            Some(task_dir.join("data").to_string_lossy().as_ref())
        );
        assert_eq!(
            std::fs::read_to_string(task_dir.join("data")).expect("artifact file"),
            "rows\n"
        );
    }

    #[tokio::test]
    async fn a_failing_command_gives_its_exit_code_and_no_outputs() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let ei = executor_input(&tmp.path().join("t"));
        let outputs_file = tmp.path().join("termination-log");
        let a = args(&[
            "--executor-input",
            &ei.to_string(),
            "--output-definitions",
            DEFS,
            "--outputs-file",
            &outputs_file.to_string_lossy(),
            "--",
            "sh",
            "-c",
            "exit 7",
        ]);
        assert_eq!(run(&a).await.expect("launches"), 7);
        assert!(!outputs_file.exists());
        let a = args(&[
            "--executor-input",
            &ei.to_string(),
            "--output-definitions",
            DEFS,
            "--outputs-file",
            &outputs_file.to_string_lossy(),
            "--",
            "sh",
            "-c",
            "kill -TERM $$",
        ]);
        assert_eq!(run(&a).await.expect("launches"), 128 + 15);
    }

    #[tokio::test]
    async fn missing_or_mistyped_outputs_fail_naming_them() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let task_dir = tmp.path().join("t");
        let ei = executor_input(&task_dir);
        let outputs_file = tmp.path().join("termination-log");
        let launch = |script: &str| {
            args(&[
                "--executor-input",
                &ei.to_string(),
                "--output-definitions",
                DEFS,
                "--task",
                "sum-up",
                "--outputs-file",
                &outputs_file.to_string_lossy(),
                "--",
                "sh",
                "-c",
                script,
                "sh",
                "{{$.outputs.parameters['sum'].output_file}}",
            ])
        };
        let e = run(&launch("true")).await.expect_err("no output written");
        assert!(
            e.to_string()
                .contains("task 'sum-up': output parameter 'sum' was not written"),
            "{e}"
        );
        let e = run(&launch("echo five > \"$1\""))
            .await
            .expect_err("not an integer");
        assert!(e.to_string().contains("output parameter 'sum'"), "{e}");
        assert!(e.to_string().contains("expected an integer"), "{e}");
        assert!(!outputs_file.exists());
        let e = run(&args(&[
            "--executor-input",
            &ei.to_string(),
            "--output-definitions",
            DEFS,
            "--",
            "/no/such/program",
        ]))
        .await
        .expect_err("cannot start");
        assert!(e.to_string().contains("starting /no/such/program"), "{e}");
    }

    #[test]
    fn copy_self_copies_an_executable() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dest = tmp.path().join("bin/osprey");
        let bytes = copy_self(&dest).expect("copies");
        let meta = std::fs::metadata(&dest).expect("copied");
        assert_eq!(meta.len(), bytes);
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(meta.permissions().mode() & 0o777, 0o755);
        let exe = std::env::current_exe().expect("exe");
        assert_eq!(std::fs::metadata(exe).expect("exe").len(), bytes);
    }
}
