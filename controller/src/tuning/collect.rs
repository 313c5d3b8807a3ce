//! `osprey tune collect`: the metrics collector inside a trial's pod (Katib runs a sidecar; here
//! the `osprey` binary wraps the primary container's command). It runs the command with its
//! output passed through, reads the metrics from that output (StdOut) or from the file the
//! command writes (File, TEXT or JSON lines), stops the command early when an early-stopping
//! rule is met, and writes what it observed as JSON to the termination message file, where the
//! controller reads it back into the Trial's observation.

use super::collector::{Collector, Source};
use super::early::{Comparison, Rule};
use super::trial::EarlyStoppingRule;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use std::process::Stdio;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncSeekExt, BufReader};

/// `osprey tune collect` flags.
#[derive(Debug, Clone, clap::Args)]
pub struct CollectArgs {
    /// A metric to report (repeat; the objective first). Others are ignored.
    #[arg(long = "metric", required = true)]
    pub metrics: Vec<String>,
    /// Read the metrics from this file (Katib's File collector) instead of the output.
    #[arg(long)]
    pub file: Option<PathBuf>,
    /// The file's format: TEXT (`name=value`, or --filter) or JSON (one object per line).
    #[arg(long, default_value = "TEXT")]
    pub format: String,
    /// A regular expression with two groups (name, value) replacing Katib's `name=value`
    /// (repeat).
    #[arg(long = "filter")]
    pub filters: Vec<String>,
    /// An early-stopping rule `NAME:COMPARISON:VALUE:START_STEP` (COMPARISON less, greater or
    /// equal): the command is stopped once NAME's report number START_STEP or later meets it.
    #[arg(long = "rule")]
    pub rules: Vec<String>,
    /// Also report the average of the first N values of the first metric (medianstop's
    /// start_step).
    #[arg(long)]
    pub average_steps: Option<usize>,
    /// Where the observation JSON goes (the container's terminationMessagePath).
    #[arg(long, default_value = "/dev/termination-log")]
    pub termination_file: PathBuf,
    /// The trial's command and its arguments.
    #[arg(last = true, required = true)]
    pub command: Vec<String>,
}

/// Why the collector could not run.
#[derive(Debug, thiserror::Error)]
pub enum CollectError {
    #[error("osprey tune collect: {0}")]
    Usage(String),
    #[error("osprey tune collect: starting {program}: {message}")]
    Start { program: String, message: String },
    #[error("osprey tune collect: {0}")]
    Io(String),
}

/// One metric as observed: every value in report order summarised.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MetricSummary {
    pub name: String,
    pub min: f64,
    pub max: f64,
    pub latest: f64,
    pub count: usize,
    /// The average of the first `--average-steps` values (the first metric only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_average: Option<f64>,
}

/// What the collector writes to the termination message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct Collected {
    pub metrics: Vec<MetricSummary>,
    /// Stopped by an early-stopping rule.
    #[serde(default)]
    pub early_stopped: bool,
    pub exit_code: i32,
}

/// A parsed `--rule`.
pub fn parse_rule(text: &str) -> Result<Rule, String> {
    let parts: Vec<&str> = text.splitn(4, ':').collect();
    let [name, comparison, value, start] = parts.as_slice() else {
        return Err(format!(
            "--rule {text:?}: expected NAME:COMPARISON:VALUE:START_STEP"
        ));
    };
    let comparison = Comparison::parse(comparison)
        .ok_or_else(|| format!("--rule {text:?}: comparison must be less, greater or equal"))?;
    let value = value
        .parse::<f64>()
        .map_err(|_| format!("--rule {text:?}: value is not a number"))?;
    let start_step = start
        .parse::<usize>()
        .map_err(|_| format!("--rule {text:?}: START_STEP is not a non-negative integer"))?;
    Ok(Rule {
        metric: name.to_string(),
        value,
        comparison,
        start_step,
    })
}

/// A Trial's rule as a `--rule` flag value.
pub fn rule_arg(rule: &EarlyStoppingRule) -> String {
    format!(
        "{}:{}:{}:{}",
        rule.name, rule.comparison, rule.value, rule.start_step
    )
}

/// Accumulates reports.
struct Tally<'a> {
    names: &'a [String],
    values: Vec<Vec<f64>>,
}

impl Tally<'_> {
    /// Records the reports of one line; true when a rule is met.
    fn add(&mut self, found: Vec<(String, f64)>, rules: &[Rule]) -> bool {
        let mut stop = false;
        for (name, v) in found {
            let Some(i) = self.names.iter().position(|n| *n == name) else {
                continue;
            };
            let Some(vals) = self.values.get_mut(i) else {
                continue;
            };
            vals.push(v);
            let count = vals.len();
            stop |= rules.iter().any(|r| r.metric == name && r.stops(count, v));
        }
        stop
    }

    fn summaries(&self, average_steps: Option<usize>) -> Vec<MetricSummary> {
        self.names
            .iter()
            .zip(&self.values)
            .enumerate()
            .filter_map(|(i, (name, vals))| {
                let latest = *vals.last()?;
                let first_average = match (i, average_steps) {
                    (0, Some(n)) if n > 0 => {
                        let head = &vals[..vals.len().min(n)];
                        Some(head.iter().sum::<f64>() / head.len() as f64)
                    }
                    _ => None,
                };
                Some(MetricSummary {
                    name: name.clone(),
                    min: vals.iter().copied().fold(f64::INFINITY, f64::min),
                    max: vals.iter().copied().fold(f64::NEG_INFINITY, f64::max),
                    latest,
                    count: vals.len(),
                    first_average,
                })
            })
            .collect()
    }
}

fn collector_of(args: &CollectArgs) -> Result<Collector, CollectError> {
    let filters = args
        .filters
        .iter()
        .map(|f| regex::Regex::new(f).map_err(|e| CollectError::Usage(format!("--filter: {e}"))))
        .collect::<Result<Vec<_>, _>>()?;
    let source = match &args.file {
        None => Source::StdOut,
        Some(path) => Source::File {
            path: path.clone(),
            json: match args.format.as_str() {
                "TEXT" => false,
                "JSON" => true,
                other => {
                    return Err(CollectError::Usage(format!(
                        "--format must be TEXT or JSON (got {other:?})"
                    )))
                }
            },
        },
    };
    Ok(Collector { source, filters })
}

/// New complete lines of `path` from `offset` on (a partial last line waits for more).
async fn read_new_lines(path: &std::path::Path, offset: &mut u64) -> Vec<String> {
    let Ok(mut f) = tokio::fs::File::open(path).await else {
        return Vec::new();
    };
    if f.seek(std::io::SeekFrom::Start(*offset)).await.is_err() {
        return Vec::new();
    }
    let mut buf = String::new();
    if f.read_to_string(&mut buf).await.is_err() {
        return Vec::new();
    }
    let Some(end) = buf.rfind('\n') else {
        return Vec::new();
    };
    *offset += end as u64 + 1;
    buf[..end].lines().map(String::from).collect()
}

fn kill_group(pid: Option<u32>, signal: nix::sys::signal::Signal) {
    if let Some(pid) = pid.and_then(|p| i32::try_from(p).ok()) {
        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(-pid), signal);
    }
}

/// Runs the command and writes the observation; returns the exit code to end with (the
/// command's, 0 when stopped early).
pub async fn run(args: &CollectArgs) -> Result<i32, CollectError> {
    use tokio::signal::unix::{signal, SignalKind};
    let collector = collector_of(args)?;
    let rules = args
        .rules
        .iter()
        .map(|r| parse_rule(r))
        .collect::<Result<Vec<_>, _>>()
        .map_err(CollectError::Usage)?;
    let (program, rest) = args
        .command
        .split_first()
        .ok_or_else(|| CollectError::Usage("no command after --".into()))?;
    let start_error = |e: std::io::Error| CollectError::Start {
        program: program.clone(),
        message: e.to_string(),
    };
    if let Source::File { path, .. } = &collector.source {
        // A file left from before would report stale values.
        match std::fs::remove_file(path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(CollectError::Io(format!("{}: {e}", path.display())))
            }
            _ => {}
        }
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)
                .map_err(|e| CollectError::Io(format!("{}: {e}", dir.display())))?;
        }
    }
    let mut term = signal(SignalKind::terminate()).map_err(start_error)?;
    let mut int = signal(SignalKind::interrupt()).map_err(start_error)?;
    let mut child = tokio::process::Command::new(program)
        .args(rest)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
        .map_err(start_error)?;
    let pid = child.id();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(bool, String)>();
    for (is_err, stream) in [
        (
            false,
            child
                .stdout
                .take()
                .map(|s| Box::new(s) as Box<dyn tokio::io::AsyncRead + Unpin + Send>),
        ),
        (
            true,
            child
                .stderr
                .take()
                .map(|s| Box::new(s) as Box<dyn tokio::io::AsyncRead + Unpin + Send>),
        ),
    ] {
        let Some(stream) = stream else { continue };
        let tx = tx.clone();
        tokio::spawn(async move {
            let mut lines = BufReader::new(stream).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                if tx.send((is_err, line)).is_err() {
                    break;
                }
            }
        });
    }
    drop(tx);
    let mut tally = Tally {
        names: &args.metrics,
        values: vec![Vec::new(); args.metrics.len()],
    };
    let mut stopped = false;
    let mut offset = 0u64;
    let mut poll = tokio::time::interval(std::time::Duration::from_millis(500));
    let mut output_open = true;
    let status = loop {
        tokio::select! {
            line = rx.recv(), if output_open => match line {
                Some((is_err, line)) => {
                    if is_err { eprintln!("{line}") } else { println!("{line}") }
                    if collector.source == Source::StdOut && !stopped {
                        let found = collector.parse(&line);
                        if tally.add(found, &rules) {
                            stopped = true;
                            eprintln!("osprey tune collect: an early-stopping rule was met: stopping the trial");
                            kill_group(pid, nix::sys::signal::Signal::SIGKILL);
                        }
                    }
                }
                None => output_open = false,
            },
            _ = poll.tick(), if matches!(collector.source, Source::File { .. }) && !stopped => {
                if let Source::File { path, .. } = &collector.source {
                    for line in read_new_lines(path, &mut offset).await {
                        if tally.add(collector.parse(&line), &rules) {
                            stopped = true;
                            kill_group(pid, nix::sys::signal::Signal::SIGKILL);
                        }
                    }
                }
            }
            status = child.wait(), if !output_open => break status.map_err(start_error)?,
            _ = term.recv() => kill_group(pid, nix::sys::signal::Signal::SIGTERM),
            _ = int.recv() => kill_group(pid, nix::sys::signal::Signal::SIGINT),
        }
    };
    if let Source::File { path, .. } = &collector.source {
        if !stopped {
            for line in read_new_lines(path, &mut offset).await {
                tally.add(collector.parse(&line), &[]);
            }
            // A last line without its newline.
            if let Ok(text) = std::fs::read_to_string(path) {
                if let Some(last) = text.get(offset as usize..).filter(|t| !t.trim().is_empty()) {
                    tally.add(collector.parse(last), &[]);
                }
            }
        }
    }
    use std::os::unix::process::ExitStatusExt;
    let code = status
        .code()
        .unwrap_or_else(|| 128 + status.signal().unwrap_or(0));
    let exit_code = if stopped { 0 } else { code };
    let collected = Collected {
        metrics: tally.summaries(args.average_steps),
        early_stopped: stopped,
        exit_code: code,
    };
    let text = serde_json::to_string(&collected).map_err(|e| CollectError::Io(e.to_string()))?;
    std::fs::write(&args.termination_file, text)
        .map_err(|e| CollectError::Io(format!("{}: {e}", args.termination_file.display())))?;
    Ok(exit_code)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(dir: &std::path::Path, extra: &[&str], script: &str) -> CollectArgs {
        use clap::Parser;
        #[derive(clap::Parser)]
        struct Cli {
            #[command(flatten)]
            a: CollectArgs,
        }
        let term = dir.join("termination-log");
        let mut argv = vec![
            "collect".to_string(),
            "--metric=accuracy".into(),
            "--metric=loss".into(),
            format!("--termination-file={}", term.display()),
        ];
        argv.extend(extra.iter().map(|s| s.to_string()));
        argv.extend(["--".into(), "sh".into(), "-c".into(), script.into()]);
        Cli::parse_from(argv).a
    }

    fn collected(dir: &std::path::Path) -> Collected {
        let text = std::fs::read_to_string(dir.join("termination-log")).expect("written");
        serde_json::from_str(&text).expect("json")
    }

    #[tokio::test]
    async fn stdout_metrics_are_summarised_with_the_exit_code() {
        let dir = tempfile::tempdir().expect("tmp");
        let a = args(
            dir.path(),
            &["--average-steps=2", "--metric=epochs"],
            "echo accuracy=0.5 loss=2; echo noise; echo accuracy=0.9; echo epochs=4 >&2; echo accuracy=0.7 loss=1; exit 3",
        );
        assert_eq!(run(&a).await.expect("runs"), 3);
        let c = collected(dir.path());
        assert_eq!(c.exit_code, 3);
        assert!(!c.early_stopped);
        let acc = &c.metrics[0];
        assert_eq!(
            (acc.min, acc.max, acc.latest, acc.count),
            (0.5, 0.9, 0.7, 3)
        );
        assert_eq!(acc.first_average, Some(0.7));
        assert_eq!(
            (c.metrics[1].name.as_str(), c.metrics[1].latest),
            ("loss", 1.0)
        );
    }

    #[tokio::test]
    async fn a_met_rule_stops_the_command_and_says_so() {
        let dir = tempfile::tempdir().expect("tmp");
        // Reports 0.1 from the first line on; the rule applies from the 3rd report.
        let a = args(
            dir.path(),
            &["--rule=accuracy:less:0.5:3"],
            "i=0; while [ $i -lt 1000 ]; do echo accuracy=0.1; i=$((i+1)); done; echo accuracy=0.99",
        );
        assert_eq!(run(&a).await.expect("runs"), 0);
        let c = collected(dir.path());
        assert!(c.early_stopped);
        assert_eq!(c.metrics[0].count, 3, "stopped at the rule's start step");
        assert_eq!(c.metrics[0].max, 0.1);
        // Not met: runs to the end.
        let a = args(
            dir.path(),
            &["--rule=accuracy:less:0.05:1"],
            "echo accuracy=0.1; echo accuracy=0.2",
        );
        assert_eq!(run(&a).await.expect("runs"), 0);
        let c = collected(dir.path());
        assert!(!c.early_stopped);
        assert_eq!(c.metrics[0].latest, 0.2);
    }

    #[tokio::test]
    async fn file_metrics_in_json_and_text() {
        let dir = tempfile::tempdir().expect("tmp");
        let file = dir.path().join("logs/metrics.json");
        let a = args(
            dir.path(),
            &[&format!("--file={}", file.display()), "--format=JSON"],
            &format!(
                "echo accuracy=0.01; mkdir -p {d}; echo '{{\"accuracy\": \"0.6\"}}' >> {f}; printf '{{\"accuracy\": 0.8, \"loss\": 0.3}}' >> {f}",
                d = file.parent().expect("dir").display(),
                f = file.display()
            ),
        );
        assert_eq!(run(&a).await.expect("runs"), 0);
        let c = collected(dir.path());
        assert_eq!((c.metrics[0].count, c.metrics[0].latest), (2, 0.8), "{c:?}");
        assert_eq!(c.metrics[1].latest, 0.3);
        let text = dir.path().join("m.log");
        let a = args(
            dir.path(),
            &[&format!("--file={}", text.display())],
            &format!(
                "echo accuracy=0.01; echo 'accuracy=0.4' > {}",
                text.display()
            ),
        );
        assert_eq!(run(&a).await.expect("runs"), 0);
        assert_eq!(
            collected(dir.path()).metrics[0].latest,
            0.4,
            "the file, not stdout"
        );
    }

    #[test]
    fn rules_parse_and_apply() {
        let spec = EarlyStoppingRule {
            name: "accuracy".into(),
            value: "0.5".into(),
            comparison: "less".into(),
            start_step: 4,
        };
        assert_eq!(rule_arg(&spec), "accuracy:less:0.5:4");
        let r = parse_rule(&rule_arg(&spec)).expect("valid");
        assert_eq!(
            (r.metric.as_str(), r.value, r.start_step),
            ("accuracy", 0.5, 4)
        );
        assert!(!r.stops(3, 0.1));
        assert!(r.stops(4, 0.1));
        assert!(!r.stops(5, 0.6));
        let g = parse_rule("loss:greater:2:1").expect("valid");
        assert!(g.stops(1, 3.0) && !g.stops(1, 1.0));
        let e = parse_rule("loss:equal:2:1").expect("valid");
        assert!(e.stops(1, 2.0) && !e.stops(1, 2.5));
        for bad in [
            "accuracy:less:0.5",
            "a:more:1:1",
            "a:less:x:1",
            "a:less:1:y",
            "a:less:1:-1",
        ] {
            assert!(parse_rule(bad).is_err(), "{bad}");
        }
    }
}
