//! The AOF end to end: the real binary over TCP, next to Debian's redis-server 7.0.
//!
//! - Interop: our appendonlydir (base + incr, after a BGREWRITEAOF, several databases, a
//!   multi-shard transaction) is accepted by `redis-check-aof` and loaded by redis-server with
//!   the same DEBUG DIGEST; redis-server's appendonlydir is loaded by us with the same digest.
//! - Crash: 4 shards, `appendfsync always`, writers on several connections (counters and
//!   multi-shard MSETs), `kill -9` at a random moment: every acknowledged write is present
//!   after the restart. `AOF_CRASH_TRIALS` sets the number of trials (default 3).
//! - `everysec`: after `kill -9`, every write acknowledged more than 2 s before the kill is
//!   present.
//! - A truncated tail is cut and loaded with `aof-load-truncated yes`, refused without it;
//!   a corrupt file stops the start-up naming the file, and the file is left untouched.
//! - `--check-aof` accepts a good directory (exit 0) and rejects a corrupt file (exit 1).
//!
//! Everything waits on conditions with deadlines; nothing asserts on timings.

mod common;

use common::{wait_until, Reply, RespConn, ServerKind, TestServer};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const TIMEOUT: Duration = Duration::from_secs(30);

fn data_dir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("aof-data-")
        .tempdir()
        .expect("temp dir")
}

fn start(kind: ServerKind, dir: &Path, extra: &[&str]) -> TestServer {
    let d = dir.display().to_string();
    let mut args = vec![
        "--dir",
        &d,
        "--enable-debug-command",
        "yes",
        "--appendonly",
        "yes",
    ];
    if kind == ServerKind::Shardis {
        args.extend_from_slice(&["--shards", "4"]);
    }
    args.extend_from_slice(extra);
    TestServer::start(kind, &args)
}

fn text(r: &Reply) -> String {
    String::from_utf8_lossy(r.as_bytes().unwrap_or_default()).into_owned()
}

fn ok(c: &mut RespConn, args: &[&str]) {
    let r = c.call(args);
    assert!(!r.is_error(), "{args:?} failed: {r:?}");
}

fn info(c: &mut RespConn, field: &str) -> String {
    let all = text(&c.call(&["INFO", "persistence"]));
    let prefix = format!("{field}:");
    all.lines()
        .find_map(|l| l.strip_prefix(&prefix).map(|v| v.trim().to_string()))
        .unwrap_or_else(|| panic!("INFO has no {field}"))
}

fn digest(c: &mut RespConn) -> String {
    text(&c.call(&["DEBUG", "DIGEST"]))
}

fn kill9(s: &TestServer) {
    // SAFETY: signalling the child this test started, by its PID.
    unsafe {
        libc::kill(s.pid() as i32, libc::SIGKILL);
    }
    wait_until("the killed server to exit", TIMEOUT, || !s.is_alive());
}

fn populate(c: &mut RespConn, tag: &str) {
    for i in 0..200 {
        let k = format!("{tag}:s:{i}");
        ok(c, &["SET", &k, &format!("v{i}")]);
    }
    ok(
        c,
        &["RPUSH", &format!("{tag}:list"), "a", "b", "c", "1", "2"],
    );
    ok(c, &["HSET", &format!("{tag}:hash"), "f1", "v1", "f2", "2"]);
    ok(c, &["SADD", &format!("{tag}:set"), "x", "y", "3"]);
    ok(c, &["ZADD", &format!("{tag}:zset"), "1.5", "a", "-2", "b"]);
    ok(c, &["INCRBY", &format!("{tag}:counter"), "41"]);
    ok(c, &["SET", &format!("{tag}:ttl"), "v", "EX", "3600"]);
    ok(c, &["MULTI"]);
    ok(c, &["SET", &format!("{{a}}{tag}:tx"), "1"]);
    ok(c, &["SET", &format!("{{b}}{tag}:tx"), "2"]);
    ok(c, &["INCR", &format!("{{c}}{tag}:tx")]);
    let r = c.call(&["EXEC"]);
    assert!(r.as_array().is_some(), "EXEC: {r:?}");
    ok(c, &["SELECT", "5"]);
    ok(c, &["SET", &format!("{tag}:db5"), "five"]);
    ok(c, &["LPUSH", &format!("{tag}:db5:list"), "x"]);
    ok(c, &["SELECT", "0"]);
    ok(c, &["DEL", &format!("{tag}:s:7")]);
}

fn wait_rewrite_done(c: &mut RespConn) {
    wait_until("the AOF rewrite to finish", TIMEOUT, || {
        info(c, "aof_rewrite_in_progress") == "0" && info(c, "aof_rewrite_scheduled") == "0"
    });
}

fn check_aof(dir: &Path) -> std::process::ExitStatus {
    let manifest = dir.join("appendonlydir").join("appendonly.aof.manifest");
    std::process::Command::new(common::tool_path("redis-check-aof"))
        .arg(&manifest)
        .stdout(std::process::Stdio::null())
        .status()
        .expect("redis-check-aof runs")
}

#[test]
fn our_aof_loads_in_redis_with_the_same_digest() {
    let dir = data_dir();
    let ours = start(
        ServerKind::Shardis,
        dir.path(),
        &["--appendfsync", "always"],
    );
    let mut c = ours.conn();
    populate(&mut c, "before");
    let r = c.call(&["BGREWRITEAOF"]);
    assert!(!r.is_error(), "{r:?}");
    wait_rewrite_done(&mut c);
    populate(&mut c, "after");
    let want = digest(&mut c);
    kill9(&ours);
    assert!(
        check_aof(dir.path()).success(),
        "redis-check-aof rejects our AOF"
    );
    let theirs = start(ServerKind::Redis, dir.path(), &[]);
    let mut r = theirs.conn();
    wait_until("redis to load", TIMEOUT, || info(&mut r, "loading") == "0");
    assert_eq!(digest(&mut r), want, "redis-server loaded another dataset");
}

#[test]
fn redis_aof_loads_in_shardis_with_the_same_digest() {
    let dir = data_dir();
    let theirs = start(ServerKind::Redis, dir.path(), &["--appendfsync", "always"]);
    let mut r = theirs.conn();
    populate(&mut r, "before");
    ok(&mut r, &["BGREWRITEAOF"]);
    wait_rewrite_done(&mut r);
    populate(&mut r, "after");
    let want = digest(&mut r);
    kill9(&theirs);
    let ours = start(ServerKind::Shardis, dir.path(), &[]);
    let mut c = ours.conn();
    wait_until("shardis to load", TIMEOUT, || {
        info(&mut c, "loading") == "0"
    });
    assert_eq!(digest(&mut c), want, "shardis loaded another dataset");
    assert_eq!(info(&mut c, "aof_enabled"), "1");
}

/// One crash trial under `appendfsync always`; returns the acknowledged writes checked.
fn always_crash_trial(seed: u64) -> usize {
    let dir = data_dir();
    let server = start(
        ServerKind::Shardis,
        dir.path(),
        &["--appendfsync", "always"],
    );
    let port = server.port();
    let stop = Arc::new(AtomicBool::new(false));
    let writers: Vec<_> = (0..8)
        .map(|w| {
            let stop = stop.clone();
            std::thread::spawn(move || {
                // (counter acknowledged, last MSET round acknowledged)
                let mut acked = (0u64, 0u64);
                let Ok(mut c) = RespConn::connect(port) else {
                    return acked;
                };
                while !stop.load(Ordering::Relaxed) {
                    let Ok(()) = c.try_send_raw(&common::resp::encode_command(&[
                        b"INCR",
                        format!("ctr:{w}").as_bytes(),
                    ])) else {
                        break;
                    };
                    match c.try_read_reply() {
                        Ok(r) if r.starts_with(b":") => acked.0 += 1,
                        _ => break,
                    }
                    let round = (acked.1 + 1).to_string();
                    let (k1, k2) = (format!("{{x}}m:{w}"), format!("{{y}}m:{w}"));
                    let cmd = common::resp::encode_command(&[
                        b"MSET",
                        k1.as_bytes(),
                        round.as_bytes(),
                        k2.as_bytes(),
                        round.as_bytes(),
                    ]);
                    if c.try_send_raw(&cmd).is_err() {
                        break;
                    }
                    match c.try_read_reply() {
                        Ok(r) if r.starts_with(b"+OK") => acked.1 += 1,
                        _ => break,
                    }
                }
                acked
            })
        })
        .collect();
    let delay_ms = 200 + seed * 7919 % 800;
    std::thread::sleep(Duration::from_millis(delay_ms));
    kill9(&server);
    stop.store(true, Ordering::Relaxed);
    let acked: Vec<(u64, u64)> = writers
        .into_iter()
        .map(|h| h.join().expect("writer"))
        .collect();
    drop(server);
    let again = start(
        ServerKind::Shardis,
        dir.path(),
        &["--appendfsync", "always"],
    );
    let mut c = again.conn();
    let mut checked = 0;
    for (w, (ctr, round)) in acked.iter().enumerate() {
        let got: u64 = text(&c.call(&["GET", &format!("ctr:{w}")]))
            .parse()
            .unwrap_or(0);
        assert!(
            got >= *ctr && got <= ctr + 1,
            "seed {seed}: writer {w} had {ctr} INCRs acknowledged, {got} survived"
        );
        let m1: u64 = text(&c.call(&["GET", &format!("{{x}}m:{w}")]))
            .parse()
            .unwrap_or(0);
        let m2: u64 = text(&c.call(&["GET", &format!("{{y}}m:{w}")]))
            .parse()
            .unwrap_or(0);
        assert!(
            m1 >= *round && m1 <= round + 1,
            "seed {seed}: writer {w} had MSET round {round} acknowledged, {m1} survived"
        );
        assert_eq!(m1, m2, "seed {seed}: half of an MSET survived");
        checked += (ctr + round) as usize;
    }
    checked
}

#[test]
fn always_loses_no_acknowledged_write_to_kill_9() {
    let trials = common::env_usize("AOF_CRASH_TRIALS", 3);
    let mut total = 0;
    for t in 0..trials {
        total += always_crash_trial(t as u64 + 1);
    }
    assert!(total > 0, "no write was acknowledged in any trial");
    eprintln!("{trials} trials, {total} acknowledged writes, none lost");
}

#[test]
fn everysec_loses_at_most_two_seconds_to_kill_9() {
    let dir = data_dir();
    let server = start(
        ServerKind::Shardis,
        dir.path(),
        &["--appendfsync", "everysec"],
    );
    let mut c = server.conn();
    let start_at = Instant::now();
    let mut acked: Vec<Instant> = Vec::new();
    while start_at.elapsed() < Duration::from_millis(1500) {
        let r = c.call(&["SET", &format!("k:{}", acked.len()), "v"]);
        assert!(!r.is_error(), "{r:?}");
        acked.push(Instant::now());
    }
    kill9(&server);
    let killed_at = Instant::now();
    drop(server);
    let again = start(ServerKind::Shardis, dir.path(), &[]);
    let mut c = again.conn();
    for (i, at) in acked.iter().enumerate() {
        if killed_at.duration_since(*at) > Duration::from_secs(2) {
            let r = c.call(&["EXISTS", &format!("k:{i}")]);
            assert_eq!(
                r.as_int(),
                Some(1),
                "write {i} acknowledged > 2 s before the kill lost"
            );
        }
    }
    let n = text(&c.call(&["DBSIZE"]));
    let survived = c.call(&["DBSIZE"]).as_int().unwrap_or(0);
    assert!(survived > 0, "nothing survived ({n})");
}

fn incr_file(dir: &Path) -> std::path::PathBuf {
    dir.join("appendonlydir").join("appendonly.aof.1.incr.aof")
}

/// A directory with a few commands in the incr file, the server stopped.
fn prepared_dir() -> tempfile::TempDir {
    let dir = data_dir();
    let s = start(
        ServerKind::Shardis,
        dir.path(),
        &["--appendfsync", "always"],
    );
    let mut c = s.conn();
    for i in 0..10 {
        ok(&mut c, &["SET", &format!("k{i}"), "value"]);
    }
    kill9(&s);
    dir
}

#[test]
fn truncated_tail_is_cut_with_aof_load_truncated() {
    let dir = prepared_dir();
    let f = incr_file(dir.path());
    let len = std::fs::metadata(&f).expect("incr").len();
    let file = std::fs::OpenOptions::new()
        .write(true)
        .open(&f)
        .expect("open");
    file.set_len(len - 5).expect("truncate");
    drop(file);
    let s = start(
        ServerKind::Shardis,
        dir.path(),
        &["--aof-load-truncated", "yes"],
    );
    let mut c = s.conn();
    assert_eq!(c.call(&["DBSIZE"]).as_int(), Some(9));
    let log = std::fs::read_to_string(s.log_path()).unwrap_or_default();
    assert!(
        log.contains("!!! Truncating the AOF"),
        "no truncation message:\n{log}"
    );
    assert!(std::fs::metadata(&f).expect("incr").len() < len - 5);
    assert!(check_aof(dir.path()).success());
}

#[test]
fn truncated_tail_refused_without_aof_load_truncated() {
    let dir = prepared_dir();
    let f = incr_file(dir.path());
    let bytes = std::fs::read(&f).expect("incr");
    std::fs::write(&f, &bytes[..bytes.len() - 5]).expect("write");
    let d = dir.path().display().to_string();
    let r = TestServer::try_start(
        ServerKind::Shardis,
        common::Startup::Standard,
        &[
            "--dir",
            &d,
            "--appendonly",
            "yes",
            "--aof-load-truncated",
            "no",
        ],
    );
    assert!(r.is_err(), "the server started on a truncated AOF");
    assert_eq!(std::fs::read(&f).expect("incr"), &bytes[..bytes.len() - 5]);
}

#[test]
fn corrupt_aof_refuses_to_start_and_check_aof_rejects_it() {
    let dir = prepared_dir();
    let f = incr_file(dir.path());
    let mut bytes = std::fs::read(&f).expect("incr");
    let at = bytes.len() / 2;
    bytes[at] = b'!';
    bytes.insert(at, b'?');
    std::fs::write(&f, &bytes).expect("write");
    let d = dir.path().display().to_string();
    let r = TestServer::try_start(
        ServerKind::Shardis,
        common::Startup::Standard,
        &["--dir", &d, "--appendonly", "yes"],
    );
    let err = r.err().expect("the server started on a corrupt AOF");
    assert!(err.contains("appendonly.aof.1.incr.aof"), "{err}");
    assert!(err.contains("at offset"), "the log names no offset: {err}");
    assert_eq!(
        std::fs::read(&f).expect("incr"),
        bytes,
        "the file was changed"
    );
    let status = std::process::Command::new(ServerKind::Shardis.binary())
        .args(["--check-aof"])
        .arg(&f)
        .stdout(std::process::Stdio::null())
        .status()
        .expect("runs");
    assert_eq!(status.code(), Some(1));
    let good = prepared_dir();
    let manifest = good.path().join("appendonlydir/appendonly.aof.manifest");
    let status = std::process::Command::new(ServerKind::Shardis.binary())
        .arg("--check-aof")
        .arg(&manifest)
        .stdout(std::process::Stdio::null())
        .status()
        .expect("runs");
    assert_eq!(status.code(), Some(0));
}

#[test]
fn config_set_appendonly_at_run_time_and_debug_loadaof() {
    let dir = data_dir();
    let d = dir.path().display().to_string();
    let s = TestServer::start(
        ServerKind::Shardis,
        &[
            "--dir",
            &d,
            "--shards",
            "4",
            "--enable-debug-command",
            "yes",
        ],
    );
    let mut c = s.conn();
    populate(&mut c, "pre");
    ok(&mut c, &["CONFIG", "SET", "appendonly", "yes"]);
    wait_rewrite_done(&mut c);
    assert_eq!(info(&mut c, "aof_enabled"), "1");
    populate(&mut c, "post");
    let want = digest(&mut c);
    ok(&mut c, &["DEBUG", "LOADAOF"]);
    assert_eq!(digest(&mut c), want, "DEBUG LOADAOF changed the dataset");
    ok(&mut c, &["CONFIG", "SET", "appendonly", "no"]);
    assert_eq!(info(&mut c, "aof_enabled"), "0");
    assert!(check_aof(dir.path()).success());
}

/// The commands of an AOF file, lower-cased names (annotations skipped).
fn aof_commands(path: &Path) -> Vec<Vec<String>> {
    let bytes = std::fs::read(path).expect("AOF file");
    let mut cmds = Vec::new();
    let mut rest: &[u8] = &bytes;
    while !rest.is_empty() {
        if rest[0] == b'#' {
            let end = rest
                .iter()
                .position(|&b| b == b'\n')
                .expect("annotation end");
            rest = &rest[end + 1..];
            continue;
        }
        let len = common::resp::frame_len(rest)
            .expect("RESP")
            .expect("whole command");
        let r = common::decode(&rest[..len]).expect("decodes");
        let argv: Vec<String> = r.as_array().expect("array").iter().map(text).collect();
        cmds.push(argv);
        rest = &rest[len..];
    }
    cmds
}

/// The file of type `kind` (`b` base, `i` incr) the manifest names: the last one of that type.
fn manifest_file(dir: &Path, kind: &str) -> std::path::PathBuf {
    let m = std::fs::read_to_string(dir.join("appendonlydir/appendonly.aof.manifest"))
        .expect("manifest");
    let suffix = format!("type {kind}");
    let name = m
        .lines()
        .rfind(|l| l.ends_with(&suffix))
        .and_then(|l| l.split(' ').nth(1))
        .expect("a file of that type")
        .to_string();
    dir.join("appendonlydir").join(name)
}

fn latest_incr(dir: &Path) -> std::path::PathBuf {
    manifest_file(dir, "i")
}

fn base_file(dir: &Path) -> std::path::PathBuf {
    manifest_file(dir, "b")
}

/// FLUSHDB and FLUSHALL reach the AOF even when there was nothing to flush (Redis forces
/// their propagation), so a replay empties what a lost write might have left.
#[test]
fn flushes_of_empty_databases_are_logged() {
    let dir = data_dir();
    let s = start(
        ServerKind::Shardis,
        dir.path(),
        &["--appendfsync", "always"],
    );
    let mut c = s.conn();
    ok(&mut c, &["SET", "k", "v"]);
    for cmd in ["FLUSHDB", "FLUSHDB", "FLUSHALL", "FLUSHALL"] {
        ok(&mut c, &[cmd]);
    }
    let cmds = aof_commands(&latest_incr(dir.path()));
    let names: Vec<String> = cmds.iter().map(|a| a[0].to_lowercase()).collect();
    assert_eq!(
        names.iter().filter(|n| *n == "flushdb").count(),
        2,
        "{names:?}"
    );
    assert_eq!(
        names.iter().filter(|n| *n == "flushall").count(),
        2,
        "{names:?}"
    );
}

/// While the AOF replays, no key expires: a PEXPIREAT in the past followed by more writes
/// to the key builds the key the file describes, which is expired only once loaded.
#[test]
fn keys_do_not_expire_while_the_aof_loads() {
    let dir = data_dir();
    let aof_dir = dir.path().join("appendonlydir");
    std::fs::create_dir_all(&aof_dir).expect("mkdir");
    std::fs::write(
        aof_dir.join("appendonly.aof.manifest"),
        "file appendonly.aof.1.incr.aof seq 1 type i\n",
    )
    .expect("manifest");
    let mut body = Vec::new();
    for argv in [
        &["RPUSH", "list", "foo"][..],
        &["PEXPIREAT", "list", "1000"],
        &["RPUSH", "list", "bar"],
        &["SET", "other", "1"],
        &["PEXPIREAT", "other", "1000"],
        &["PEXPIREAT", "other", "99999999999999"],
    ] {
        let args: Vec<&[u8]> = argv.iter().map(|a| a.as_bytes()).collect();
        body.extend_from_slice(&common::resp::encode_command(&args));
    }
    std::fs::write(aof_dir.join("appendonly.aof.1.incr.aof"), &body).expect("incr");
    let s = start(ServerKind::Shardis, dir.path(), &[]);
    let mut c = s.conn();
    // `list` was created once, then expired after the load: not recreated by the second RPUSH.
    assert_eq!(c.call(&["LLEN", "list"]).as_int(), Some(0));
    assert_eq!(c.call(&["EXISTS", "list"]).as_int(), Some(0));
    // `other`'s past deadline was replaced by a future one before the load ended.
    assert_eq!(text(&c.call(&["GET", "other"])), "1");
}

/// `aof-timestamp-enabled`: the incr file gets `#TS:` annotations before the commands, an
/// AOF-format base opens with one, and both still load.
#[test]
fn timestamp_annotations_are_written_and_loaded() {
    let dir = data_dir();
    let s = start(ServerKind::Shardis, dir.path(), &[]);
    let mut c = s.conn();
    ok(&mut c, &["CONFIG", "SET", "aof-timestamp-enabled", "yes"]);
    ok(&mut c, &["CONFIG", "SET", "aof-use-rdb-preamble", "no"]);
    ok(&mut c, &["SET", "foo", "bar"]);
    let incr = std::fs::read(latest_incr(dir.path())).expect("incr");
    assert!(
        incr.starts_with(b"#TS:"),
        "incr starts with {:?}",
        &incr[..8]
    );
    ok(&mut c, &["BGREWRITEAOF"]);
    wait_rewrite_done(&mut c);
    let base = std::fs::read(base_file(dir.path())).expect("base");
    assert!(
        base.starts_with(b"#TS:"),
        "base starts with {:?}",
        &base[..8]
    );
    ok(&mut c, &["SET", "after", "rewrite"]);
    ok(&mut c, &["DEBUG", "LOADAOF"]);
    assert_eq!(text(&c.call(&["GET", "foo"])), "bar");
    assert_eq!(text(&c.call(&["GET", "after"])), "rewrite");
    assert!(check_aof(dir.path()).success());
}

/// Function libraries live in the AOF: an AOF-format base loads them with FUNCTION LOAD,
/// and DEBUG LOADAOF brings back what FUNCTION FLUSH removed.
#[test]
fn function_libraries_survive_a_rewrite_and_debug_loadaof() {
    let dir = data_dir();
    let s = start(
        ServerKind::Shardis,
        dir.path(),
        &["--aof-use-rdb-preamble", "no"],
    );
    let mut c = s.conn();
    let lib = "#!lua name=lib1\nredis.register_function('f1', function() return 1 end)";
    assert_eq!(text(&c.call(&["FUNCTION", "LOAD", lib])), "lib1");
    ok(&mut c, &["BGREWRITEAOF"]);
    wait_rewrite_done(&mut c);
    let lib2 = "#!lua name=lib2\nredis.register_function('f2', function() return 2 end)";
    assert_eq!(text(&c.call(&["FUNCTION", "LOAD", lib2])), "lib2");
    ok(&mut c, &["FUNCTION", "FLUSH"]);
    assert!(c.call(&["FCALL", "f1", "0"]).is_error());
    ok(&mut c, &["DEBUG", "LOADAOF"]);
    // The base has lib1, the incr file LOAD lib2 then FLUSH: nothing is left.
    assert!(c.call(&["FCALL", "f1", "0"]).is_error());
    assert_eq!(text(&c.call(&["FUNCTION", "LOAD", lib])), "lib1");
    ok(&mut c, &["BGREWRITEAOF"]);
    wait_rewrite_done(&mut c);
    ok(&mut c, &["DEBUG", "LOADAOF"]);
    assert_eq!(c.call(&["FCALL", "f1", "0"]).as_int(), Some(1));
    // With the AOF off, a rewrite still writes the base, and a FLUSH is not logged.
    ok(&mut c, &["CONFIG", "SET", "appendonly", "no"]);
    ok(&mut c, &["BGREWRITEAOF"]);
    wait_rewrite_done(&mut c);
    ok(&mut c, &["FUNCTION", "FLUSH"]);
    ok(&mut c, &["DEBUG", "LOADAOF"]);
    assert_eq!(c.call(&["FCALL", "f1", "0"]).as_int(), Some(1));
}

/// `CONFIG SET appendonly no` kills a running rewrite child and reaps it at once, so the next
/// BGREWRITEAOF starts instead of reporting a rewrite in progress.
#[test]
fn turning_the_aof_off_kills_the_rewrite_child_at_once() {
    let dir = data_dir();
    let s = start(
        ServerKind::Shardis,
        dir.path(),
        &["--aof-use-rdb-preamble", "no"],
    );
    let mut c = s.conn();
    ok(&mut c, &["SET", "k", "v"]);
    ok(&mut c, &["CONFIG", "SET", "rdb-key-save-delay", "10000000"]);
    ok(&mut c, &["BGREWRITEAOF"]);
    assert_eq!(info(&mut c, "aof_rewrite_in_progress"), "1");
    ok(&mut c, &["CONFIG", "SET", "appendonly", "no"]);
    assert_eq!(info(&mut c, "aof_rewrite_in_progress"), "0");
    ok(&mut c, &["CONFIG", "SET", "rdb-key-save-delay", "0"]);
    let r = c.call(&["BGREWRITEAOF"]);
    assert!(!r.is_error(), "{r:?}");
    wait_rewrite_done(&mut c);
    let log = std::fs::read_to_string(s.log_path()).unwrap_or_default();
    assert!(
        log.contains("Killing running AOF rewrite child"),
        "no kill logged"
    );
}

/// DEBUG LOADAOF replays a script written verbatim to the AOF (as Redis before 7.0 and a
/// hand-written file have them) through the interpreter, with the keys that precede it.
#[test]
fn debug_loadaof_replays_verbatim_scripts() {
    let dir = data_dir();
    let s = start(
        ServerKind::Shardis,
        dir.path(),
        &["--aof-use-rdb-preamble", "no"],
    );
    let mut c = s.conn();
    ok(&mut c, &["SET", "before", "1"]);
    ok(&mut c, &["SET", "before", "2"]);
    let script = "for i = 1, 200 do redis.call('incr', KEYS[1]) end \
                  redis.call('set', KEYS[2], ARGV[1]) return 'ok'";
    let mut body = common::resp::encode_command(&[b"SELECT", b"9"]);
    body.extend_from_slice(&common::resp::encode_command(&[
        b"EVAL",
        script.as_bytes(),
        b"2",
        b"counter",
        b"{counter}other",
        b"done",
    ]));
    let incr = latest_incr(dir.path());
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .open(&incr)
        .expect("incr file");
    std::io::Write::write_all(&mut file, &body).expect("append");
    drop(file);
    ok(&mut c, &["DEBUG", "LOADAOF"]);
    assert_eq!(text(&c.call(&["GET", "before"])), "2");
    ok(&mut c, &["SELECT", "9"]);
    assert_eq!(text(&c.call(&["GET", "counter"])), "200");
    assert_eq!(text(&c.call(&["GET", "{counter}other"])), "done");
}

/// CONFIG SET appendonly yes inside MULTI schedules the rewrite that turns the AOF on (Redis
/// forks no child inside EXEC and logs so); the cron starts it after EXEC and the AOF comes
/// on.
#[test]
fn appendonly_enabled_inside_multi_is_scheduled() {
    let s = TestServer::start(ServerKind::Shardis, &[]);
    let mut c = s.conn();
    assert!(matches!(c.call(&["MULTI"]), Reply::Status(_)));
    c.call(&["SET", "foo", "bar"]);
    c.call(&["CONFIG", "SET", "appendonly", "yes"]);
    let r = c.cmd(&[b"EXEC"]);
    assert_eq!(r, b"*2\r\n+OK\r\n+OK\r\n".to_vec(), "{}", common::show(&r));
    let log = std::fs::read_to_string(s.log_path()).unwrap_or_default();
    assert!(
        log.contains("AOF was enabled during a transaction. An AOF background was scheduled to start when possible."),
        "{log}"
    );
    wait_until("the AOF to come on", Duration::from_secs(20), || {
        let info = c.call(&["INFO", "persistence"]);
        let text = String::from_utf8_lossy(info.as_bytes().unwrap_or_default()).into_owned();
        text.contains("aof_enabled:1")
            && text.contains("aof_rewrite_in_progress:0")
            && !text.contains("aof_rewrite_scheduled:1")
    });
}
