//! Redis's own tools against the server: `redis-cli` (one-shot commands, `--pipe` mass
//! insertion) and `redis-benchmark`.
//!
//! Every check runs against redis-server (the harness's own check) and against shardis with
//! no arguments but port and directory (its defaults: persistence included), with
//! `--shards 1` and with `--shards 4`.
//!
//! redis-benchmark runs its whole default test set (strings, lists, hashes, sets, sorted sets,
//! MSET) against both servers.

mod common;

use common::{show, tool_path, RespConn, ServerKind, TestServer};
use std::fs::File;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// How long one tool run may take. The mass insert is the slowest, at a few seconds.
const TOOL_TIMEOUT: Duration = Duration::from_secs(120);
/// Keys written by the `--pipe` mass insertion.
const PIPE_KEYS: usize = 100_000;

/// One test per server configuration for each check.
macro_rules! on_every_server {
    ($check:ident) => {
        mod $check {
            use super::*;

            #[test]
            fn redis() {
                $check(ServerKind::Redis, &[]);
            }

            #[test]
            fn shardis() {
                $check(ServerKind::Shardis, &[]);
            }

            #[test]
            fn shardis_one_shard() {
                $check(ServerKind::Shardis, &["--shards", "1"]);
            }

            #[test]
            fn shardis_four_shards() {
                $check(ServerKind::Shardis, &["--shards", "4"]);
            }
        }
    };
}

on_every_server!(cli_commands);
on_every_server!(cli_pipe);
on_every_server!(benchmark);

/// Starts the server and checks that it serves SET and GET, so that a server that stops
/// answering fails here within the client's read timeout, not in a tool's longer one.
fn start(kind: ServerKind, args: &[&str]) -> TestServer {
    let server = TestServer::start_with_defaults(kind, args);
    let mut conn = server.conn();
    assert_eq!(
        conn.cmd(&[b"SET", b"smoke", b"1"]),
        b"+OK\r\n",
        "SET before the tools"
    );
    assert_eq!(
        conn.cmd(&[b"DEL", b"smoke"]),
        b":1\r\n",
        "DEL before the tools"
    );
    server
}

/// What a tool run produced.
struct ToolOutput {
    status: std::process::ExitStatus,
    stdout: Vec<u8>,
    stderr: Vec<u8>,
}

/// Runs `tool args...` with `stdin` (or nothing) as input, within `TOOL_TIMEOUT`. A tool that
/// overruns is killed by its PID and fails the test.
fn run_tool(tool: &str, args: &[&str], stdin: Option<&Path>) -> ToolOutput {
    let dir = tempfile::tempdir().expect("temp dir for tool output");
    let (out_path, err_path) = (dir.path().join("stdout"), dir.path().join("stderr"));
    let mut command = Command::new(tool_path(tool));
    command
        .args(args)
        .stdout(File::create(&out_path).expect("stdout file"))
        .stderr(File::create(&err_path).expect("stderr file"))
        .stdin(match stdin {
            Some(path) => Stdio::from(File::open(path).expect("stdin file")),
            None => Stdio::null(),
        });
    let mut child = command
        .spawn()
        .unwrap_or_else(|e| panic!("spawning {tool}: {e}"));
    let deadline = Instant::now() + TOOL_TIMEOUT;
    let status = loop {
        if let Some(status) = child.try_wait().expect("waiting for a tool") {
            break status;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            let stderr = std::fs::read(&err_path).unwrap_or_default();
            panic!(
                "{tool} {} did not finish within {TOOL_TIMEOUT:?}; stderr: {}",
                args.join(" "),
                String::from_utf8_lossy(&stderr)
            );
        }
        std::thread::sleep(common::POLL_INTERVAL);
    };
    let stdout = std::fs::read(&out_path).expect("reading stdout");
    let stderr = std::fs::read(&err_path).expect("reading stderr");
    ToolOutput {
        status,
        stdout,
        stderr,
    }
}

/// `redis-cli -p PORT args...` with optional stdin; returns stdout after checking that the run
/// succeeded and wrote nothing to stderr.
fn cli(server: &TestServer, args: &[&str], stdin: Option<&Path>) -> String {
    let port = server.port().to_string();
    let mut full = vec!["-h", "127.0.0.1", "-p", &port];
    full.extend_from_slice(args);
    let out = run_tool("redis-cli", &full, stdin);
    assert!(
        out.status.success() && out.stderr.is_empty(),
        "redis-cli {} exited with {}; stderr: {}; stdout: {}",
        args.join(" "),
        out.status,
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// One-shot commands in raw mode (stdout is not a terminal), `--no-raw`, `--csv`, `-x`, `-n`,
/// `-r`, `-3` and `--scan`, with the exact output redis-cli 7.0 prints for Redis.
fn cli_commands(kind: ServerKind, args: &[&str]) {
    let server = start(kind, args);
    let cases: &[(&[&str], &str)] = &[
        (&["PING"], "PONG\n"),
        (&["SET", "k", "v"], "OK\n"),
        (&["GET", "k"], "v\n"),
        (&["GET", "missing"], "\n"),
        (&["--no-raw", "GET", "missing"], "(nil)\n"),
        (&["INCR", "n"], "1\n"),
        (&["--no-raw", "INCR", "n"], "(integer) 2\n"),
        (
            &["INCR", "k"],
            "ERR value is not an integer or out of range\n\n",
        ),
        (
            &["--no-raw", "INCR", "k"],
            "(error) ERR value is not an integer or out of range\n",
        ),
        (&["MSET", "a", "1", "b", "2"], "OK\n"),
        (&["MGET", "a", "b", "missing"], "1\n2\n\n"),
        (
            &["--csv", "MGET", "a", "b", "missing"],
            "\"1\",\"2\",NULL\n",
        ),
        (&["-r", "3", "INCR", "repeated"], "1\n2\n3\n"),
        (&["-n", "2", "SET", "in-db-2", "x"], "OK\n"),
        (&["-n", "2", "GET", "in-db-2"], "x\n"),
        (&["GET", "in-db-2"], "\n"),
        (&["-3", "GET", "k"], "v\n"),
        (&["--no-raw", "DBSIZE"], "(integer) 5\n"),
    ];
    for (args, expected) in cases {
        let got = cli(&server, args, None);
        assert_eq!(
            got,
            *expected,
            "redis-cli {} printed {}",
            args.join(" "),
            show(got.as_bytes())
        );
    }
    let input = server.dir().join("cli-stdin");
    std::fs::write(&input, b"from\nstdin").expect("writing stdin");
    assert_eq!(cli(&server, &["-x", "SET", "piped"], Some(&input)), "OK\n");
    assert_eq!(cli(&server, &["GET", "piped"], None), "from\nstdin\n");
    let scanned = cli(&server, &["--scan", "--pattern", "*"], None);
    let mut keys: Vec<&str> = scanned.lines().collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        ["a", "b", "k", "n", "piped", "repeated"],
        "redis-cli --scan"
    );
    server.assert_alive();
}

/// A RESP file of `count` SETs: `SET key:{i} value:i`, each key in its own slot.
fn mass_insert_file(path: &Path, count: usize) {
    let mut bytes = Vec::with_capacity(count * 48);
    for i in 0..count {
        let (key, value) = (format!("key:{{{i}}}"), format!("value:{i}"));
        bytes.extend(common::resp::encode_command(&[
            b"SET",
            key.as_bytes(),
            value.as_bytes(),
        ]));
    }
    std::fs::write(path, bytes).expect("writing the mass-insert file");
}

/// `redis-cli --pipe` with 100,000 SETs: no errors, every reply counted, every key there.
fn cli_pipe(kind: ServerKind, args: &[&str]) {
    let server = start(kind, args);
    let input = server.dir().join("mass-insert.resp");
    mass_insert_file(&input, PIPE_KEYS);
    let summary = cli(&server, &["--pipe"], Some(&input));
    let expected = format!("errors: 0, replies: {PIPE_KEYS}");
    assert!(
        summary.lines().any(|l| l.trim() == expected),
        "redis-cli --pipe summary lacks {expected:?}:\n{summary}"
    );
    let mut conn: RespConn = server.conn();
    let dbsize = conn.cmd(&[b"DBSIZE"]);
    assert_eq!(
        dbsize,
        format!(":{PIPE_KEYS}\r\n").into_bytes(),
        "DBSIZE {}",
        show(&dbsize)
    );
    for i in [0, 1, PIPE_KEYS / 2, PIPE_KEYS - 1] {
        let (key, value) = (format!("key:{{{i}}}"), format!("value:{i}"));
        let reply = conn.cmd(&[b"GET", key.as_bytes()]);
        assert_eq!(
            reply,
            format!("${}\r\n{value}\r\n", value.len()).into_bytes(),
            "GET {key}"
        );
    }
    server.assert_alive();
}

/// The tests of redis-benchmark's default set, as `-q` names them.
const FULL_BENCH_SET: &[&str] = &[
    "PING_INLINE",
    "PING_MBULK",
    "SET",
    "GET",
    "INCR",
    "LPUSH",
    "RPUSH",
    "LPOP",
    "RPOP",
    "SADD",
    "HSET",
    "SPOP",
    "ZADD",
    "ZPOPMIN",
    "LPUSH (needed to benchmark LRANGE)",
    "LRANGE_100 (first 100 elements)",
    "LRANGE_300 (first 300 elements)",
    "LRANGE_500 (first 500 elements)",
    "LRANGE_600 (first 600 elements)",
    "MSET (10 keys)",
];

/// `redis-benchmark -q -n 2000 -c 10`: exits 0, reports every test, prints no error.
fn benchmark(kind: ServerKind, args: &[&str]) {
    let server = start(kind, args);
    let port = server.port().to_string();
    let bench_args = vec![
        "-h",
        "127.0.0.1",
        "-p",
        &port,
        "-q",
        "-n",
        "2000",
        "-c",
        "10",
    ];
    let out = run_tool("redis-benchmark", &bench_args, None);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stderr.trim().is_empty(),
        "redis-benchmark {} exited with {}; stderr: {stderr}",
        bench_args.join(" "),
        out.status
    );
    // -q rewrites a progress line with \r until it prints the result for the test.
    let results: Vec<&str> = stdout
        .split(['\r', '\n'])
        .filter(|l| l.contains("requests per second"))
        .collect();
    let expected = FULL_BENCH_SET;
    for name in expected {
        let prefix = format!("{name}: ");
        assert!(
            results.iter().any(|l| l.starts_with(&prefix)),
            "redis-benchmark printed no result for {name}; results:\n{}",
            results.join("\n")
        );
    }
    assert_eq!(
        results.len(),
        expected.len(),
        "results:\n{}",
        results.join("\n")
    );
    server.assert_alive();
}
