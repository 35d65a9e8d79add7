//! A host as a real process on 127.0.0.1: `stt-host serve` (ports chosen by the OS, read from
//! its stdout) or `spin up` (a free port, its state and logs in a temporary directory). Either
//! is stopped when the [`Server`] is dropped.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use thiserror::Error;

use crate::paths::{spin_binary, temp_dir};

/// Which host runs the function. Both read the same spin.toml and serve the same component;
/// only `stt-host` has slots, a queue, CPU budgets, metrics and probes (503, 504, 408 and the
/// admin listener exist only there).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HostKind {
    SttHost,
    Spin,
}

#[derive(Debug, Error)]
pub enum LaunchError {
    #[error("starting {program}: {source}")]
    Spawn { program: String, source: std::io::Error },
    #[error("{program} exited before listening; its log:\n{log}")]
    Exited { program: String, log: String },
    #[error("{program} did not listen within {seconds} s; its log:\n{log}")]
    Timeout { program: String, seconds: u64, log: String },
}

static SPIN_START: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// How long a host may take to listen: `spin up` compiles the component on its first start.
const START_LIMIT: Duration = Duration::from_secs(600);

/// A host to start: [`Launch::stt_host`] or [`Launch::spin`], then [`Launch::start`].
pub struct Launch {
    kind: HostKind,
    program: PathBuf,
    manifest: PathBuf,
    args: Vec<String>,
    env: Vec<(String, String)>,
    cpus: Option<String>,
}

impl Launch {
    /// `binary serve --manifest manifest` (the binary: `env!("CARGO_BIN_EXE_stt-host")` in the
    /// host's tests, the one beside `stt-bench` in the benchmarks).
    pub fn stt_host(binary: impl Into<PathBuf>, manifest: impl Into<PathBuf>) -> Self {
        Self::new(HostKind::SttHost, binary.into(), manifest.into())
    }

    /// `spin up --from manifest` with [`spin_binary`].
    pub fn spin(manifest: impl Into<PathBuf>) -> Self {
        Self::new(HostKind::Spin, spin_binary(), manifest.into())
    }

    /// The same manifest under either host.
    pub fn on(
        kind: HostKind,
        stt_host_binary: impl Into<PathBuf>,
        manifest: impl Into<PathBuf>,
    ) -> Self {
        match kind {
            HostKind::SttHost => Self::stt_host(stt_host_binary, manifest),
            HostKind::Spin => Self::spin(manifest),
        }
    }

    fn new(kind: HostKind, program: PathBuf, manifest: PathBuf) -> Self {
        Self { kind, program, manifest, args: Vec::new(), env: Vec::new(), cpus: None }
    }

    /// Extra command-line arguments.
    pub fn args<S: Into<String>>(mut self, args: impl IntoIterator<Item = S>) -> Self {
        self.args.extend(args.into_iter().map(Into::into));
        self
    }

    /// An environment variable (`SPIN_VARIABLE_*` works under both hosts).
    pub fn env(mut self, key: &str, value: &str) -> Self {
        self.env.push((key.into(), value.into()));
        self
    }

    pub fn envs(mut self, vars: &[(&str, &str)]) -> Self {
        for (k, v) in vars {
            self = self.env(k, v);
        }
        self
    }

    /// Confines the process to these CPUs (`taskset -c`), e.g. "0" or "0-1".
    pub fn cpus(mut self, list: &str) -> Self {
        self.cpus = Some(list.into());
        self
    }

    pub fn start(self) -> Result<Server, LaunchError> {
        // One Spin start at a time in this process: the first compiles the component into
        // wasmtime's cache, the others then load it instead of compiling it side by side.
        let _one_spin_start = (self.kind == HostKind::Spin)
            .then(|| SPIN_START.lock().unwrap_or_else(|p| p.into_inner()));
        let dir = temp_dir(match self.kind {
            HostKind::SttHost => "host",
            HostKind::Spin => "spin",
        });
        let log = dir.join("host.log");
        let mut cmd = match &self.cpus {
            Some(list) => {
                let mut c = Command::new("taskset");
                c.args(["-c", list]).arg(&self.program);
                c
            }
            None => Command::new(&self.program),
        };
        let ready = match self.kind {
            HostKind::SttHost => {
                // The repository root: its compiled-code cache (`build/cwasm-cache`) is shared.
                cmd.current_dir(crate::paths::workspace());
                cmd.arg("serve").arg("--manifest").arg(&self.manifest);
                cmd.args(["--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0"]);
                Ready::SttHost
            }
            HostKind::Spin => {
                let port = free_port();
                // Spin resolves direct mounts against its working directory: run it where the
                // manifest is, as a developer does.
                let manifest =
                    self.manifest.canonicalize().unwrap_or_else(|_| self.manifest.clone());
                if let Some(dir) = manifest.parent() {
                    cmd.current_dir(dir);
                }
                cmd.arg("up").arg("--from").arg(&manifest);
                cmd.arg("--listen").arg(format!("127.0.0.1:{port}"));
                // The models folder mounted as it is, not copied per start; state and the
                // component's stdout/stderr in this server's own directory.
                cmd.arg("--direct-mounts").arg("--state-dir").arg(dir.join("state"));
                cmd.arg("--log-dir").arg(dir.join("logs"));
                cmd.env("SPIN_HOME", dir.join("home"));
                Ready::Spin(port)
            }
        };
        let program = self.program.display().to_string();
        let stderr = std::fs::File::create(&log)
            .map_err(|source| LaunchError::Spawn { program: program.clone(), source })?;
        // Its own process group, so that dropping the server also stops what it started
        // (`spin up` runs the trigger as a child process).
        let mut child = cmd
            .process_group(0)
            .args(&self.args)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .map_err(|source| LaunchError::Spawn { program: program.clone(), source })?;
        let lines = forward_stdout(&mut child, &log);
        let mut server =
            Server { kind: self.kind, child, base: String::new(), admin: None, log, dir };
        let deadline = Instant::now() + START_LIMIT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = match lines.recv_timeout(left) {
                Ok(line) => line,
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    return Err(LaunchError::Timeout {
                        program,
                        seconds: START_LIMIT.as_secs(),
                        log: server.log_text(),
                    });
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    let _ = server.child.wait();
                    return Err(LaunchError::Exited { program, log: server.log_text() });
                }
            };
            match ready {
                Ready::SttHost => {
                    if let Some(a) = line.strip_prefix("admin on ") {
                        server.admin = Some(a.trim().to_string());
                    } else if let Some(b) = line.strip_prefix("listening on ") {
                        server.base = b.trim().to_string();
                        return Ok(server);
                    }
                }
                Ready::Spin(port) => {
                    if line.contains("Serving http://") {
                        server.base = format!("http://127.0.0.1:{port}");
                        return Ok(server);
                    }
                }
            }
        }
    }
}

/// What a starting host prints once it listens: `stt-host` its admin and API addresses (ports
/// it chose), Spin a `Serving` line for the port it was given.
#[derive(Clone, Copy)]
enum Ready {
    SttHost,
    Spin(u16),
}

/// A port the OS just handed out and released (a small race with other processes, acceptable
/// for tests on one machine).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or(0)
}

/// Copies the child's stdout into `log` for as long as it runs (a host whose stdout is closed
/// fails on its next line) and sends each line to the returned channel until nobody listens.
fn forward_stdout(child: &mut Child, log: &Path) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    let stdout = child.stdout.take();
    let log = std::fs::OpenOptions::new().append(true).open(log).ok();
    std::thread::spawn(move || {
        let (Some(stdout), mut log) = (stdout, log) else { return };
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if let Some(f) = log.as_mut() {
                let _ = writeln!(f, "{line}");
            }
            let _ = tx.send(line);
        }
    });
    rx
}

/// A running host; killed and its directory removed when dropped.
pub struct Server {
    pub kind: HostKind,
    child: Child,
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    /// `stt-host`'s admin listener (metrics, probes); Spin has none.
    pub admin: Option<String>,
    log: PathBuf,
    dir: PathBuf,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.child.id())])
            .stderr(Stdio::null())
            .status();
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Server {
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The admin listener; panics under Spin, which has none.
    pub fn admin(&self) -> &str {
        self.admin.as_deref().unwrap_or_else(|| panic!("{:?} has no admin listener", self.kind))
    }

    /// The admin listener's `/metrics` text.
    pub fn metrics(&self) -> String {
        let mut r = crate::http::agent()
            .get(format!("{}/metrics", self.admin()))
            .call()
            .expect("GET /metrics");
        assert_eq!(r.status(), 200);
        r.body_mut().read_to_string().expect("metrics body")
    }

    /// The host's own output, then (under Spin) the component's stdout and stderr.
    pub fn log_text(&self) -> String {
        let mut text = std::fs::read_to_string(&self.log).unwrap_or_default();
        if let Ok(entries) = std::fs::read_dir(self.dir.join("logs")) {
            let mut files: Vec<PathBuf> = entries.filter_map(|e| Some(e.ok()?.path())).collect();
            files.sort();
            for f in files {
                text.push_str(&std::fs::read_to_string(&f).unwrap_or_default());
            }
        }
        text
    }

    /// Sends SIGTERM, as Kubernetes does when it stops a pod.
    pub fn terminate(&self) {
        let ok = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("kill");
        assert!(ok.success());
    }

    /// Waits for the process to exit, at most `limit`.
    pub fn wait_exit(&mut self, limit: Duration) -> Option<ExitStatus> {
        let t0 = Instant::now();
        while t0.elapsed() < limit {
            if let Some(s) = self.child.try_wait().expect("try_wait") {
                return Some(s);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        None
    }

    /// CPU seconds the process has used (user + system), from /proc.
    pub fn cpu_seconds(&self) -> f64 {
        let stat =
            std::fs::read_to_string(format!("/proc/{}/stat", self.pid())).unwrap_or_default();
        // Fields after the parenthesised command name; utime and stime are the 12th and 13th.
        let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
        let f: Vec<&str> = rest.split_whitespace().collect();
        let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
        (ticks(11) + ticks(12)) / 100.0
    }

    /// Resident memory of the process: (RSS, PSS) in bytes.
    pub fn memory(&self) -> (f64, f64) {
        process_memory(self.pid())
    }
}

/// Resident memory of a process and its descendants (`spin up` serves from a child process):
/// (RSS, PSS) in bytes, summed from each one's smaps_rollup; zeros once they are gone. PSS sums
/// correctly across processes; RSS counts pages they share once per process.
pub fn process_memory(pid: u32) -> (f64, f64) {
    let text = std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup")).unwrap_or_default();
    let field = |name: &str| {
        text.lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<f64>().ok())
            .map_or(0.0, |kb| kb * 1024.0)
    };
    let mut total = (field("Rss:"), field("Pss:"));
    for child in children(pid) {
        let (rss, pss) = process_memory(child);
        total = (total.0 + rss, total.1 + pss);
    }
    total
}

/// The process's children, from every thread's `children` list.
fn children(pid: u32) -> Vec<u32> {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else { return Vec::new() };
    tasks
        .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("children")).ok())
        .flat_map(|c| c.split_whitespace().filter_map(|p| p.parse().ok()).collect::<Vec<u32>>())
        .collect()
}
