//! `unixsocket` / `unixsocketperm`: the server also listens on a Unix domain socket and serves
//! its clients exactly like TCP ones. Each check runs against Debian's redis-server and against
//! shardis (io_uring and `io-backend epoll`, several shards), through real `redis-cli -s` and a
//! raw `UnixStream`: the file's mode, replies, CLIENT LIST/INFO's `addr`, `laddr` and `flags=U`,
//! CLIENT KILL ADDR, MONITOR's `[0 unix:PATH]`, and the file's removal at SHUTDOWN.

mod common;

use common::{resp, tool_path, wait_until, ServerKind, TestServer};
use std::io::{Read, Write};
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

const DEADLINE: Duration = Duration::from_secs(10);

/// `redis-cli -s PATH args...`, its stdout without the trailing newline.
fn cli(path: &Path, args: &[&str]) -> String {
    let out = Command::new(tool_path("redis-cli"))
        .arg("-s")
        .arg(path)
        .args(args)
        .output()
        .expect("run redis-cli");
    assert!(
        out.status.success(),
        "redis-cli -s {} {args:?} failed: {}",
        path.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .trim_end_matches('\n')
        .to_string()
}

/// A RESP connection over the Unix socket.
struct UnixConn {
    s: UnixStream,
    buf: Vec<u8>,
}

impl UnixConn {
    fn connect(path: &Path) -> UnixConn {
        let s = UnixStream::connect(path).expect("connect to the unix socket");
        s.set_read_timeout(Some(DEADLINE)).expect("timeout");
        UnixConn { s, buf: Vec::new() }
    }

    /// Writes a command; a write to a closed connection shows as an empty reply.
    fn send(&mut self, args: &[&str]) {
        let args: Vec<&[u8]> = args.iter().map(|a| a.as_bytes()).collect();
        let _ = self.s.write_all(&resp::encode_command(&args));
    }

    /// The next reply's raw bytes; empty when the server closed the connection.
    fn read_reply(&mut self) -> Vec<u8> {
        loop {
            if let Ok(Some(n)) = resp::frame_len(&self.buf) {
                return self.buf.drain(..n).collect();
            }
            let mut chunk = [0u8; 4096];
            match self.s.read(&mut chunk) {
                Ok(0) | Err(_) => return Vec::new(),
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
            }
        }
    }

    fn cmd(&mut self, args: &[&str]) -> String {
        self.send(args);
        String::from_utf8_lossy(&self.read_reply()).into_owned()
    }
}

/// The `key=value` field of a CLIENT LIST/INFO line.
fn field<'a>(line: &'a str, key: &str) -> &'a str {
    line.split(' ')
        .find_map(|kv| kv.strip_prefix(key).and_then(|v| v.strip_prefix('=')))
        .unwrap_or_else(|| panic!("no {key}= in {line}"))
}

/// What one server shows for its unix clients; compared between Redis and shardis.
#[derive(Debug, PartialEq)]
struct Observed {
    mode: u32,
    get_over_tcp: String,
    addr: String,
    laddr: String,
    flags: String,
    info_flags: String,
    monitor_prefix: String,
    killed: String,
    killed_client_saw_eof: bool,
    file_gone_after_shutdown: bool,
}

fn observe(kind: ServerKind, extra: &[&str]) -> Observed {
    let sockdir = tempfile::tempdir().expect("temp dir");
    let path = sockdir.path().join("s.sock");
    let path_str = path.to_str().expect("utf-8 path").to_string();
    let mut args = vec!["--unixsocket", &path_str, "--unixsocketperm", "700"];
    args.extend_from_slice(extra);
    let server = TestServer::start(kind, &args);
    let meta = std::fs::metadata(&path).expect("the socket file exists");
    assert!(meta.file_type().is_socket(), "{path_str} is not a socket");
    let mode = meta.permissions().mode() & 0o777;

    assert_eq!(cli(&path, &["SET", "k", "over-unix"]), "OK");
    let get_over_tcp = server
        .conn()
        .call(&["GET", "k"])
        .as_str()
        .unwrap_or_default()
        .to_string();

    let mut held = UnixConn::connect(&path);
    assert_eq!(held.cmd(&["CLIENT", "SETNAME", "held"]), "+OK\r\n");
    let list = cli(&path, &["CLIENT", "LIST"]);
    let line = list
        .lines()
        .find(|l| l.contains(" name=held "))
        .unwrap_or_else(|| panic!("no held client in {list}"));
    let (addr, laddr, flags) = (
        field(line, "addr"),
        field(line, "laddr"),
        field(line, "flags"),
    );
    let info = held.cmd(&["CLIENT", "INFO"]);
    let info_flags = field(&info, "flags").to_string();

    let killed = cli(&path, &["CLIENT", "KILL", "ADDR", addr]);
    held.send(&["PING"]);
    let killed_client_saw_eof = held.read_reply().is_empty();

    let mut monitor = UnixConn::connect(&path);
    assert_eq!(monitor.cmd(&["MONITOR"]), "+OK\r\n");
    assert_eq!(UnixConn::connect(&path).cmd(&["PING"]), "+PONG\r\n");
    let line = String::from_utf8_lossy(&monitor.read_reply()).into_owned();
    // `+1700000000.123456 [0 unix:/path] "PING"`: keep what follows the timestamp.
    let monitor_prefix = line
        .split_once(' ')
        .map(|(_, rest)| rest.trim_end().to_string())
        .unwrap_or(line);
    drop(monitor);

    let _ = Command::new(tool_path("redis-cli"))
        .arg("-s")
        .arg(&path)
        .args(["SHUTDOWN", "NOSAVE"])
        .output();
    wait_until("the server removes its unix socket file", DEADLINE, || {
        !path.exists()
    });
    Observed {
        mode,
        get_over_tcp,
        addr: addr.replace(&path_str, "PATH"),
        laddr: laddr.replace(&path_str, "PATH"),
        flags: flags.to_string(),
        info_flags,
        monitor_prefix: monitor_prefix.replace(&path_str, "PATH"),
        killed,
        killed_client_saw_eof,
        file_gone_after_shutdown: !path.exists(),
    }
}

#[test]
fn unix_socket_clients_look_like_redis() {
    let redis = observe(ServerKind::Redis, &[]);
    assert_eq!(
        redis,
        Observed {
            mode: 0o700,
            get_over_tcp: "over-unix".into(),
            addr: "PATH:0".into(),
            laddr: "PATH:0".into(),
            flags: "U".into(),
            info_flags: "U".into(),
            monitor_prefix: "[0 unix:PATH] \"PING\"".into(),
            killed: "1".into(),
            killed_client_saw_eof: true,
            file_gone_after_shutdown: true,
        }
    );
    for extra in [
        &["--shards", "2"][..],
        &["--shards", "2", "--io-backend", "epoll"][..],
    ] {
        let ours = observe(ServerKind::Shardis, extra);
        assert_eq!(ours, redis, "shardis {extra:?} vs redis");
    }
}

/// `port 0` with a unix socket: no TCP listener at all, and every client comes over the socket.
#[test]
fn port_zero_serves_only_the_unix_socket() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("only.sock");
    let mut child = Command::new(ServerKind::Shardis.binary())
        .args(["--port", "0", "--save", "", "--shards", "2", "--unixsocket"])
        .arg(&path)
        .arg("--dir")
        .arg(dir.path())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start shardis");
    wait_until("the unix socket answers PING", DEADLINE, || {
        UnixStream::connect(&path).is_ok_and(|s| {
            s.set_read_timeout(Some(DEADLINE)).is_ok()
                && UnixConn { s, buf: Vec::new() }.cmd(&["PING"]) == "+PONG\r\n"
        })
    });
    for i in 0..20 {
        let key = format!("k{i}");
        assert_eq!(cli(&path, &["SET", &key, "v"]), "OK");
    }
    assert_eq!(cli(&path, &["DBSIZE"]), "20");
    let _ = Command::new(tool_path("redis-cli"))
        .arg("-s")
        .arg(&path)
        .args(["SHUTDOWN", "NOSAVE"])
        .output();
    let status = child.wait().expect("wait for shardis");
    assert!(status.success(), "shardis exited with {status}");
    assert!(!path.exists(), "the socket file is left behind");
}
