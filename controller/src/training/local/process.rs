//! One replica as a local process: the framework container's command, args, env and
//! workingDir with the job's environment on loopback; output prefixed `[<type>-<index>]` and
//! kept in `<logs>/<type>-<index>.log`; its own process group, so stopping it stops its children.

use super::LocalError;
use crate::training::env::{replica_env, Addresses};
use crate::training::job::Job;
use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::sync::mpsc;

/// Loopback addresses: a free port for each replica.
pub struct LocalAddresses {
    pub ports: BTreeMap<(String, i32), i32>,
}

impl LocalAddresses {
    /// Picks a free loopback port for every replica of `job`.
    pub fn pick(job: &Job) -> Result<LocalAddresses, LocalError> {
        let mut ports = BTreeMap::new();
        // Hold every listener until all are picked, so that no two replicas get one port.
        let mut held = Vec::new();
        for (role, index) in job.pods() {
            let l = std::net::TcpListener::bind(("127.0.0.1", 0))
                .map_err(|e| LocalError::Io(format!("picking a port: {e}")))?;
            let port = l
                .local_addr()
                .map_err(|e| LocalError::Io(format!("picking a port: {e}")))?
                .port();
            ports.insert((role.to_string(), index), i32::from(port));
            held.push(l);
        }
        Ok(LocalAddresses { ports })
    }
}

impl Addresses for LocalAddresses {
    fn host(&self, _job: &Job, _role: &str, _index: i32) -> String {
        "127.0.0.1".into()
    }
    fn port(&self, job: &Job, role: &str, index: i32) -> i32 {
        self.ports
            .get(&(role.to_string(), index))
            .copied()
            .unwrap_or(job.framework.default_port())
    }
}

/// What to start for a replica.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Launch {
    pub argv: Vec<String>,
    pub env: Vec<(String, String)>,
    pub cwd: Option<PathBuf>,
}

fn map_path(s: &str, map: &[(String, String)]) -> String {
    for (from, to) in map {
        if s == from {
            return to.clone();
        }
        if let Some(rest) = s.strip_prefix(from.as_str()) {
            if rest.starts_with('/') || from.ends_with('/') {
                return format!("{to}{rest}");
            }
        }
        // `--flag=/path` arguments.
        if let Some((flag, value)) = s.split_once('=') {
            let mapped = map_path(value, std::slice::from_ref(&(from.clone(), to.clone())));
            if mapped != value {
                return format!("{flag}={mapped}");
            }
        }
    }
    s.to_string()
}

/// Kubernetes' `$(VAR)` references in command and args (`$$` escapes).
pub fn expand(s: &str, env: &[(String, String)]) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(pos) = rest.find('$') {
        out.push_str(&rest[..pos]);
        let after = &rest[pos + 1..];
        if let Some(stripped) = after.strip_prefix('$') {
            out.push('$');
            rest = stripped;
        } else if let Some(inner) = after.strip_prefix('(') {
            match inner.find(')') {
                Some(end) => {
                    let name = &inner[..end];
                    match env.iter().rev().find(|(k, _)| k == name) {
                        Some((_, v)) => out.push_str(v),
                        None => {
                            out.push_str("$(");
                            out.push_str(name);
                            out.push(')');
                        }
                    }
                    rest = &inner[end + 1..];
                }
                None => {
                    out.push('$');
                    rest = after;
                }
            }
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    out
}

/// The launch of `role`/`index`: its framework container (the one named `pytorch` or
/// `tensorflow`), with the job's variables after the container's own (a variable the container
/// sets itself is kept).
pub fn launch(
    job: &Job,
    role: &str,
    index: i32,
    addrs: &LocalAddresses,
    path_map: &[(String, String)],
) -> Result<Launch, LocalError> {
    let field = format!(
        "spec.{}.{role}.template.spec.containers",
        job.framework.specs_field()
    );
    let replica = job
        .replica(role)
        .ok_or_else(|| LocalError::Manifest(format!("no replica type {role}")))?;
    let container = replica
        .template
        .spec
        .as_ref()
        .and_then(|s| {
            s.containers
                .iter()
                .find(|c| c.name == job.framework.container())
        })
        .ok_or_else(|| {
            LocalError::Manifest(format!(
                "{field}: no container named {:?}",
                job.framework.container()
            ))
        })?;
    let mut env: Vec<(String, String)> = Vec::new();
    for (i, e) in container.env.iter().flatten().enumerate() {
        match (&e.value, &e.value_from) {
            (_, Some(_)) => {
                return Err(LocalError::Manifest(format!(
                    "{field}[{}].env[{i}] ({}): valueFrom needs a cluster; give a value",
                    container.name, e.name
                )))
            }
            (v, None) => env.push((e.name.clone(), v.clone().unwrap_or_default())),
        }
    }
    for (k, v) in replica_env(job, role, index, addrs) {
        if !env.iter().any(|(name, _)| name == &k) {
            env.push((k, v));
        }
    }
    let mut argv: Vec<String> = container
        .command
        .iter()
        .flatten()
        .chain(container.args.iter().flatten())
        .map(|a| map_path(&expand(a, &env), path_map))
        .collect();
    if container
        .command
        .as_ref()
        .map(|c| c.is_empty())
        .unwrap_or(true)
    {
        return Err(LocalError::Manifest(format!(
            "{field}[{}].command: needed to run locally (the image {:?} and its entrypoint are not used)",
            container.name,
            container.image.as_deref().unwrap_or("")
        )));
    }
    if argv.is_empty() {
        argv.push(String::new());
    }
    Ok(Launch {
        argv,
        env,
        cwd: container
            .working_dir
            .as_deref()
            .map(|d| PathBuf::from(map_path(d, path_map))),
    })
}

/// A replica's process ended: who, which start of it, and its exit code (128 + signal when
/// killed by one).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Exit {
    pub role: &'static str,
    pub index: i32,
    pub generation: u32,
    pub code: i32,
}

async fn pump<R: tokio::io::AsyncRead + Unpin>(
    reader: R,
    prefix: String,
    log: Option<std::sync::Arc<tokio::sync::Mutex<tokio::fs::File>>>,
    echo: bool,
) {
    let mut lines = BufReader::new(reader).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        if echo {
            println!("{prefix} {line}");
        }
        if let Some(f) = &log {
            let mut f = f.lock().await;
            let _ = f.write_all(line.as_bytes()).await;
            let _ = f.write_all(b"\n").await;
        }
    }
}

/// Starts a replica's process; its exit is sent on `exits`. Returns its process id.
#[allow(clippy::too_many_arguments)]
pub async fn spawn(
    l: &Launch,
    role: &'static str,
    index: i32,
    generation: u32,
    logs: &Path,
    echo: bool,
    exits: mpsc::UnboundedSender<Exit>,
) -> Result<u32, LocalError> {
    let name = format!("{}-{index}", role.to_lowercase());
    let log_path = logs.join(format!("{name}.log"));
    let mut file = tokio::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log_path)
        .await
        .map_err(|e| LocalError::Io(format!("{}: {e}", log_path.display())))?;
    let _ = file
        .write_all(format!("--- start {generation}: {}\n", l.argv.join(" ")).as_bytes())
        .await;
    let program = l.argv.first().cloned().unwrap_or_default();
    let mut cmd = tokio::process::Command::new(&program);
    cmd.args(l.argv.iter().skip(1))
        .envs(l.env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true);
    if let Some(d) = &l.cwd {
        cmd.current_dir(d);
    }
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => {
            // As the kubelet reports a command that cannot start: exit code 128.
            let msg = format!("cannot start {program:?}: {e}");
            let _ = file.write_all(format!("{msg}\n").as_bytes()).await;
            if echo {
                println!("[{name}] {msg}");
            }
            let _ = exits.send(Exit {
                role,
                index,
                generation,
                code: 128,
            });
            return Ok(0);
        }
    };
    let pid = child.id().unwrap_or(0);
    let log = std::sync::Arc::new(tokio::sync::Mutex::new(file));
    let prefix = format!("[{name}]");
    let out = child
        .stdout
        .take()
        .map(|o| tokio::spawn(pump(o, prefix.clone(), Some(log.clone()), echo)));
    let err = child
        .stderr
        .take()
        .map(|e| tokio::spawn(pump(e, prefix, Some(log), echo)));
    tokio::spawn(async move {
        let status = child.wait().await;
        for t in [out, err].into_iter().flatten() {
            let _ = t.await;
        }
        let code = match status {
            Ok(s) => {
                use std::os::unix::process::ExitStatusExt;
                s.code()
                    .or_else(|| s.signal().map(|n| 128 + n))
                    .unwrap_or(1)
            }
            Err(_) => 1,
        };
        let _ = exits.send(Exit {
            role,
            index,
            generation,
            code,
        });
    });
    Ok(pid)
}

/// Sends `sig` to the process group of `pid`.
pub fn signal(pid: u32, sig: Signal) {
    if let Ok(p) = i32::try_from(pid) {
        if p > 0 {
            let _ = killpg(Pid::from_raw(p), sig);
        }
    }
}
