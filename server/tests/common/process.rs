//! The built binary as its own process: `osprey serve` on loopback with every port 0, its HTTP
//! address read from its log, killed (and reaped) when dropped, so that a failing test never
//! leaves a server behind.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

/// Every listener on loopback, on a port the system picks; plain-text logs (the HTTP address is
/// read from them).
const LOOPBACK_ANY_PORT: &str = "--address 127.0.0.1 --http-port 0 --grpc-port 0 \
                                 --metrics-port 0 --log-format text --log-level info";
const READY_TIMEOUT: Duration = Duration::from_secs(60);
const EXIT_TIMEOUT: Duration = Duration::from_secs(30);

/// Kills and reaps the child on drop unless it has already been waited for.
struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

/// A running `osprey serve` process.
pub struct ServeProcess {
    child: KillOnDrop,
    pub http: SocketAddr,
    log: Arc<Mutex<Vec<String>>>,
    pub client: reqwest::Client,
}

impl ServeProcess {
    /// Starts `osprey serve --model-repository REPO EXTRA...` and waits until it is ready
    /// (`/v2/health/ready` answers 200); panics with its log otherwise.
    pub async fn start(repo: &Path, extra: &[&str]) -> ServeProcess {
        let mut child = Command::new(env!("CARGO_BIN_EXE_osprey"))
            .arg("serve")
            .arg("--model-repository")
            .arg(repo)
            .args(LOOPBACK_ANY_PORT.split_whitespace())
            .args(extra)
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("osprey serve starts");
        let stderr = child.stderr.take().expect("stderr piped");
        let child = KillOnDrop(child);
        let log = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = mpsc::channel();
        let lines = Arc::clone(&log);
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if let Some(addr) = line
                    .split("HTTP service listening on ")
                    .nth(1)
                    .and_then(|rest| rest.split_whitespace().next())
                    .and_then(|a| a.parse::<SocketAddr>().ok())
                {
                    let _ = tx.send(addr);
                }
                lines.lock().expect("log").push(line);
            }
        });
        let mut server = ServeProcess {
            child,
            http: SocketAddr::from(([127, 0, 0, 1], 0)),
            log,
            client: reqwest::Client::new(),
        };
        let deadline = Instant::now() + READY_TIMEOUT;
        server.http = loop {
            match rx.recv_timeout(Duration::from_millis(200)) {
                Ok(addr) => break addr,
                Err(mpsc::RecvTimeoutError::Timeout) if Instant::now() < deadline => {}
                Err(e) => panic!("osprey serve gave no HTTP address ({e}):\n{}", server.log()),
            }
        };
        loop {
            if let Ok(Some(st)) = server.child.0.try_wait() {
                panic!("osprey serve exited ({st}) before ready:\n{}", server.log());
            }
            let ready = server
                .client
                .get(server.url("/v2/health/ready"))
                .send()
                .await
                .is_ok_and(|r| r.status() == 200);
            if ready {
                return server;
            }
            assert!(
                Instant::now() < deadline,
                "osprey serve not ready in {READY_TIMEOUT:?}:\n{}",
                server.log()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.http, path)
    }

    /// What the server has logged so far.
    pub fn log(&self) -> String {
        self.log.lock().expect("log").join("\n")
    }

    /// SIGTERM, then its exit status (killed, and a panic, if it has not exited in 30 s).
    pub async fn stop(mut self) -> ExitStatus {
        let pid = nix::unistd::Pid::from_raw(i32::try_from(self.child.0.id()).expect("pid"));
        nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).expect("SIGTERM");
        let deadline = Instant::now() + EXIT_TIMEOUT;
        loop {
            if let Some(st) = self.child.0.try_wait().expect("wait") {
                return st;
            }
            assert!(
                Instant::now() < deadline,
                "osprey serve still running {EXIT_TIMEOUT:?} after SIGTERM:\n{}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}
