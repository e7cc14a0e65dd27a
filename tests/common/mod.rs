//! The integration-test harness: real servers, real sockets.
//!
//! Tests drive real binaries over TCP. `TestServer::start` runs either shardis or Debian's
//! `redis-server` with the same command line (`--port P --dir TMP --save "" --appendonly no
//! --daemonize no` plus the test's own arguments; `start_with_defaults` gives shardis only
//! `--port` and `--dir`, to test its defaults), on a free port, in a fresh temporary
//! directory, with stdout and stderr going to `server.log` in that directory. It returns once
//! the server answers PING with PONG, polling every 20 ms for up to 20 s; a server that exits
//! or never answers fails the test with its log. Ports are found by binding 127.0.0.1:0 and
//! releasing the port; a server that then loses the race for it is started again on another.
//!
//! A server is stopped by its PID only: `Drop` kills the child this harness spawned and waits
//! for it, also when the test panics (then the log's tail is printed, and the directory kept
//! when `SHARDIS_KEEP_TMP` is set).
//! Nothing here looks processes up by name.
//!
//! Each test binary uses a different part of this module, hence the `allow`.
#![allow(dead_code, unused_imports)]

pub mod resp;
pub mod rng;

use std::fs::File;
use std::io::Read;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

pub use resp::{decode, show, show_command, show_short, Reply, RespConn};
use std::sync::Mutex;

/// How long a server may take to answer its first PING.
pub const START_TIMEOUT: Duration = Duration::from_secs(20);
/// How often readiness and other conditions are polled.
pub const POLL_INTERVAL: Duration = Duration::from_millis(20);
/// How many ports a start tries before giving up (each loss is a lost race for a port).
const START_ATTEMPTS_MAX: usize = 5;
/// Lines of a server's log shown when a test fails.
const LOG_TAIL_LINES: usize = 60;

/// Which server binary a test runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServerKind {
    /// `$SHARDIS_BIN`, else the `shardis-server` Cargo built for this test.
    Shardis,
    /// Debian's `redis-server` (`$REDIS_SERVER_BIN`, else the one on `PATH`).
    Redis,
}

impl ServerKind {
    pub fn name(self) -> &'static str {
        match self {
            ServerKind::Shardis => "shardis",
            ServerKind::Redis => "redis",
        }
    }

    pub fn binary(self) -> PathBuf {
        match self {
            ServerKind::Shardis => match std::env::var_os("SHARDIS_BIN") {
                Some(path) => PathBuf::from(path),
                None => PathBuf::from(env!("CARGO_BIN_EXE_shardis-server")),
            },
            ServerKind::Redis => tool_path("redis-server"),
        }
    }
}

/// Where a Redis tool (`redis-server`, `redis-cli`, `redis-benchmark`...) is: the environment
/// variable named after it (`REDIS_CLI_BIN` for `redis-cli`), else the first match on `PATH`,
/// else `/usr/bin`. Panics with how to install it when it is nowhere.
pub fn tool_path(name: &str) -> PathBuf {
    let var = format!("{}_BIN", name.to_uppercase().replace('-', "_"));
    if let Some(path) = std::env::var_os(&var) {
        return PathBuf::from(path);
    }
    let path_dirs = std::env::var_os("PATH").unwrap_or_default();
    let found = std::env::split_paths(&path_dirs)
        .chain([PathBuf::from("/usr/bin"), PathBuf::from("/usr/local/bin")])
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file());
    found.unwrap_or_else(|| {
        panic!("{name} not found (set {var}, or run scripts/test, which installs redis-tools)")
    })
}

/// A port that was free a moment ago: bound on 127.0.0.1:0, then released.
pub fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    listener.local_addr().expect("local_addr").port()
}

/// A running server that this test owns.
pub struct TestServer {
    kind: ServerKind,
    /// Behind a lock so that a server shared by several threads can still be checked.
    child: Mutex<Child>,
    pid: u32,
    port: u16,
    dir: Option<tempfile::TempDir>,
    log_path: PathBuf,
}

/// Why one attempt to start a server failed.
enum StartFailure {
    /// The server exited before answering, maybe because another process took its port.
    Exited(ExitStatus),
    /// It kept running but never answered PING with PONG.
    NotReady(String),
}

impl TestServer {
    /// Starts a server of `kind` with the standard arguments plus `extra_args` and waits until
    /// it answers PING. Panics with the server's log when it cannot be started.
    pub fn start(kind: ServerKind, extra_args: &[&str]) -> TestServer {
        TestServer::try_start(kind, Startup::Standard, extra_args)
            .unwrap_or_else(|message| panic!("{message}"))
    }

    /// Like `start`, but shardis gets only `--port` and `--dir` (plus `extra_args`), so that
    /// its defaults are what is tested. redis-server still gets the standard arguments.
    pub fn start_with_defaults(kind: ServerKind, extra_args: &[&str]) -> TestServer {
        TestServer::try_start(kind, Startup::Defaults, extra_args)
            .unwrap_or_else(|message| panic!("{message}"))
    }

    /// `start`, with the failure handed back as a message that includes the server's log.
    pub fn try_start(
        kind: ServerKind,
        startup: Startup,
        extra_args: &[&str],
    ) -> Result<TestServer, String> {
        let startup = if kind == ServerKind::Redis {
            Startup::Standard
        } else {
            startup
        };
        let dir = tempfile::Builder::new()
            .prefix(&format!("{}-test-", kind.name()))
            .tempdir()
            .map_err(|e| format!("creating a temp dir: {e}"))?;
        let binary = kind.binary();
        if !binary.is_file() {
            return Err(format!(
                "{} binary {} does not exist",
                kind.name(),
                binary.display()
            ));
        }
        let mut last_failure = String::new();
        for attempt in 1..=START_ATTEMPTS_MAX {
            let port = free_port();
            let log_path = dir.path().join("server.log");
            let mut child = spawn(&binary, startup, port, dir.path(), extra_args, &log_path)?;
            match wait_ready(&mut child, port) {
                Ok(()) => {
                    let pid = child.id();
                    let child = Mutex::new(child);
                    return Ok(TestServer {
                        kind,
                        child,
                        pid,
                        port,
                        dir: Some(dir),
                        log_path,
                    });
                }
                Err(failure) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    let log = log_tail(&log_path, LOG_TAIL_LINES);
                    let (why, retry) = match failure {
                        StartFailure::Exited(status) => (
                            format!("exited before it was ready ({status})"),
                            looks_like_port_taken(&log),
                        ),
                        StartFailure::NotReady(why) => (why, false),
                    };
                    last_failure = format!(
                        "{} ({}) on port {port}, attempt {attempt}: {why}\n\
                         command line: {} {}\n--- server log (last {LOG_TAIL_LINES} lines) ---\n\
                         {log}--- end of server log ---",
                        kind.name(),
                        binary.display(),
                        binary.display(),
                        shell_words(&server_args(startup, port, dir.path(), extra_args)),
                    );
                    if !retry {
                        break;
                    }
                }
            }
        }
        Err(format!("could not start {}: {last_failure}", kind.name()))
    }

    pub fn kind(&self) -> ServerKind {
        self.kind
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn pid(&self) -> u32 {
        self.pid
    }

    pub fn dir(&self) -> &Path {
        self.dir
            .as_ref()
            .map_or(Path::new("/nonexistent"), |d| d.path())
    }

    pub fn log_path(&self) -> &Path {
        &self.log_path
    }

    /// A new connection, panicking with the server's state when it cannot be made.
    pub fn conn(&self) -> RespConn {
        RespConn::connect(self.port).unwrap_or_else(|e| {
            panic!(
                "cannot connect to {} on port {}: {e}; alive: {}",
                self.kind.name(),
                self.port,
                self.is_alive()
            )
        })
    }

    /// Whether the process is still running (it has not exited or crashed).
    pub fn is_alive(&self) -> bool {
        matches!(self.try_wait(), Ok(None))
    }

    fn try_wait(&self) -> std::io::Result<Option<ExitStatus>> {
        match self.child.lock() {
            Ok(mut child) => child.try_wait(),
            Err(poisoned) => poisoned.into_inner().try_wait(),
        }
    }

    /// Panics with the log when the server has exited.
    pub fn assert_alive(&self) {
        if let Ok(Some(status)) = self.try_wait() {
            panic!(
                "{} on port {} died ({status}); log tail:\n{}",
                self.kind.name(),
                self.port,
                log_tail(&self.log_path, LOG_TAIL_LINES)
            );
        }
    }

    /// The server's resident set size in bytes, from `/proc/PID/status`.
    pub fn rss_bytes(&self) -> Option<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).ok()?;
        let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
        let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
        Some(kib * 1024)
    }

    /// A field of `INFO section` (`used_memory`, `connected_clients`...), or `None` when the
    /// server has no INFO or no such field.
    pub fn info_field(&self, section: &str, field: &str) -> Option<String> {
        let mut conn = RespConn::connect(self.port).ok()?;
        let reply = conn.call(&["INFO", section]);
        let text = String::from_utf8_lossy(reply.as_bytes()?).into_owned();
        let prefix = format!("{field}:");
        text.lines()
            .find_map(|l| l.strip_prefix(&prefix).map(|v| v.trim().to_string()))
    }

    pub fn log_tail(&self) -> String {
        log_tail(&self.log_path, LOG_TAIL_LINES)
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        let child = match self.child.get_mut() {
            Ok(child) => child,
            Err(poisoned) => poisoned.into_inner(),
        };
        let exited_early = matches!(child.try_wait(), Ok(Some(_)));
        let _ = child.kill();
        let _ = child.wait();
        if std::thread::panicking() || exited_early {
            eprintln!(
                "--- {} (pid {}, port {}) log tail{} ---\n{}--- end ---",
                self.kind.name(),
                self.pid,
                self.port,
                if exited_early {
                    ", it had exited by itself"
                } else {
                    ""
                },
                log_tail(&self.log_path, LOG_TAIL_LINES)
            );
        }
        if std::thread::panicking() && std::env::var_os("SHARDIS_KEEP_TMP").is_some() {
            if let Some(dir) = self.dir.take() {
                eprintln!(
                    "keeping {}'s directory {}",
                    self.kind.name(),
                    dir.keep().display()
                );
            }
        }
    }
}

/// Which arguments a server is started with, besides the test's own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Startup {
    /// `--port P --dir D --save "" --appendonly no --daemonize no`.
    Standard,
    /// `--port P --dir D` only (shardis only: redis-server always gets the standard ones).
    Defaults,
}

fn server_args(startup: Startup, port: u16, dir: &Path, extra_args: &[&str]) -> Vec<String> {
    let mut args: Vec<String> = vec![
        "--port".into(),
        port.to_string(),
        "--dir".into(),
        dir.display().to_string(),
    ];
    if startup == Startup::Standard {
        args.extend(["--save", "", "--appendonly", "no", "--daemonize", "no"].map(String::from));
    }
    args.extend(extra_args.iter().map(|a| a.to_string()));
    args
}

fn spawn(
    binary: &Path,
    startup: Startup,
    port: u16,
    dir: &Path,
    extra_args: &[&str],
    log_path: &Path,
) -> Result<Child, String> {
    let log =
        File::create(log_path).map_err(|e| format!("creating {}: {e}", log_path.display()))?;
    let log_err = log
        .try_clone()
        .map_err(|e| format!("dup of the log file: {e}"))?;
    Command::new(binary)
        .args(server_args(startup, port, dir, extra_args))
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(log_err)
        .spawn()
        .map_err(|e| format!("spawning {}: {e}", binary.display()))
}

/// Polls until the server on `port` answers PING with PONG, the child exits, or the deadline.
fn wait_ready(child: &mut Child, port: u16) -> Result<(), StartFailure> {
    let deadline = Instant::now() + START_TIMEOUT;
    let mut last_seen: String;
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return Err(StartFailure::Exited(status));
        }
        match ping_once(port) {
            Ok(()) => {
                // The answer could come from a process that took the port before ours bound
                // it; ours would then have failed to listen and be exiting.
                std::thread::sleep(POLL_INTERVAL);
                return match child.try_wait() {
                    Ok(Some(status)) => Err(StartFailure::Exited(status)),
                    _ => Ok(()),
                };
            }
            Err(seen) => last_seen = seen,
        }
        if Instant::now() >= deadline {
            return Err(StartFailure::NotReady(format!(
                "no PONG within {START_TIMEOUT:?}; last attempt: {last_seen}"
            )));
        }
        std::thread::sleep(POLL_INTERVAL);
    }
}

fn ping_once(port: u16) -> Result<(), String> {
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let stream = std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(500))
        .map_err(|e| format!("connect: {e}"))?;
    let mut conn = RespConn::from_stream(stream).map_err(|e| format!("socket setup: {e}"))?;
    let _ = conn.stream().set_read_timeout(Some(Duration::from_secs(2)));
    conn.try_send_raw(b"*1\r\n$4\r\nPING\r\n")
        .map_err(|e| format!("send PING: {e}"))?;
    match conn.try_read_reply() {
        Ok(reply) if reply == b"+PONG\r\n" => Ok(()),
        Ok(reply) => Err(format!("PING answered {}", show(&reply))),
        Err(e) => Err(format!("reading PING's reply: {e}")),
    }
}

/// Arguments as a shell would need them typed (empty ones as `""`), for messages.
fn shell_words(args: &[String]) -> String {
    let quote = |a: &String| {
        if a.is_empty() || a.contains(|c: char| c.is_whitespace() || c == '"' || c == '\'') {
            format!("{a:?}")
        } else {
            a.clone()
        }
    };
    args.iter().map(quote).collect::<Vec<_>>().join(" ")
}

fn looks_like_port_taken(log: &str) -> bool {
    let log = log.to_lowercase();
    log.contains("address already in use") || log.contains("eaddrinuse")
}

/// The last `lines` lines of a log file (lossy UTF-8), or a note when it cannot be read.
pub fn log_tail(path: &Path, lines: usize) -> String {
    let mut bytes = Vec::new();
    match File::open(path).and_then(|mut f| f.read_to_end(&mut bytes)) {
        Ok(_) => {
            let text = String::from_utf8_lossy(&bytes);
            let all: Vec<&str> = text.lines().collect();
            let start = all.len().saturating_sub(lines);
            let mut out = all[start..].join("\n");
            if !out.is_empty() {
                out.push('\n');
            }
            out
        }
        Err(e) => format!("(cannot read {}: {e})\n", path.display()),
    }
}

/// Polls `check` every 20 ms until it returns `Some`, panicking after `timeout` with `what`.
pub fn wait_for<T>(what: &str, timeout: Duration, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = check() {
            return value;
        }
        if Instant::now() >= deadline {
            panic!("timed out after {timeout:?} waiting for {what}");
        }
        std::thread::sleep(POLL_INTERVAL);
    }
}

/// Polls `check` every 20 ms until it holds, panicking after `timeout` with `what`.
pub fn wait_until(what: &str, timeout: Duration, mut check: impl FnMut() -> bool) {
    wait_for(what, timeout, || check().then_some(()))
}

/// A number from the environment, or `default` when unset.
pub fn env_usize(name: &str, default: usize) -> usize {
    match std::env::var(name) {
        Ok(text) => text
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("{name}={text:?} is not a count")),
        Err(_) => default,
    }
}
