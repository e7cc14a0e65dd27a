//! RDB persistence, end to end: the real binary over TCP, next to Debian's redis-server 7.0.
//!
//! - Round trips both ways: a dataset of every type and encoding saved by shardis is loaded by
//!   redis-server (and the reverse), and the two servers agree on DEBUG DIGEST and on a
//!   key-by-key dump (type, encoding, absolute expiry, value); `redis-check-rdb` accepts our
//!   file; `--check-rdb` and the `redis-check-rdb` name work.
//! - Crash: with 4 shards under a writer of multi-shard MSETs, BGSAVE, then `kill -9` in the
//!   middle of a second (slowed) BGSAVE: the file is byte for byte the first snapshot, the
//!   restarted server holds exactly it, and the snapshot is one atomic point in the writes.
//! - Corruption (flipped byte, truncation, checksum, version): the server refuses to start
//!   with exit status 1, names the file and the byte offset, and leaves the file untouched.
//! - SAVE/BGSAVE/LASTSAVE, save rules, SHUTDOWN [NOSAVE|SAVE], SIGTERM, MISCONF after a failed
//!   BGSAVE, DEBUG RELOAD, "already in progress".
//!
//! Everything waits on conditions with deadlines; nothing asserts on timings.

mod common;

use common::{wait_until, Reply, RespConn, ServerKind, TestServer};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Deadline for background saves and restarts.
const SAVE_TIMEOUT: Duration = Duration::from_secs(30);

fn shardis_in(dir: &Path, extra: &[&str]) -> TestServer {
    let d = dir.display().to_string();
    let mut args = vec![
        "--dir",
        &d,
        "--shards",
        "4",
        "--enable-debug-command",
        "yes",
    ];
    args.extend_from_slice(extra);
    TestServer::start(ServerKind::Shardis, &args)
}

fn redis_in(dir: &Path) -> TestServer {
    let d = dir.display().to_string();
    TestServer::start(
        ServerKind::Redis,
        &["--dir", &d, "--enable-debug-command", "yes"],
    )
}

fn data_dir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("persistence-data-")
        .tempdir()
        .expect("temp dir")
}

fn ok(c: &mut RespConn, args: &[&str]) {
    let r = c.call(args);
    assert!(!r.is_error(), "{args:?} failed: {r:?}");
}

fn text(r: &Reply) -> String {
    String::from_utf8_lossy(r.as_bytes().unwrap_or_default()).into_owned()
}

fn info(c: &mut RespConn, field: &str) -> String {
    let all = text(&c.call(&["INFO", "all"]));
    let prefix = format!("{field}:");
    all.lines()
        .find_map(|l| l.strip_prefix(&prefix).map(|v| v.trim().to_string()))
        .unwrap_or_else(|| panic!("INFO has no {field}"))
}

fn wait_bgsave_done(c: &mut RespConn) {
    wait_until("the background save to finish", SAVE_TIMEOUT, || {
        info(c, "rdb_bgsave_in_progress") == "0"
    });
}

fn digest(c: &mut RespConn) -> String {
    text(&c.call(&["DEBUG", "DIGEST"]))
}

/// Every type and the encodings Redis 7.0 uses for them, in two databases, with expiries.
fn populate(c: &mut RespConn) {
    let far_ms = (std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_millis()
        + 3_600_000)
        .to_string();
    ok(c, &["SELECT", "0"]);
    for (k, v) in [
        ("s:int", "12345"),
        ("s:neg", "-7"),
        ("s:i64", "9223372036854775807"),
        ("s:raw", "hello"),
        ("s:empty", ""),
        ("s:float", "3.14"),
    ] {
        ok(c, &["SET", k, v]);
    }
    ok(c, &["SET", "s:long", &"abc".repeat(200)]);
    let bin: Vec<u8> = (0..=255u8).collect();
    c.cmd(&[b"SET", b"s:bin", &bin]);
    ok(c, &["SET", "s:ttl", "expiring"]);
    ok(c, &["PEXPIREAT", "s:ttl", &far_ms]);
    ok(c, &["RPUSH", "l:small", "a", "b", "1", "2", "-3"]);
    let big: Vec<String> = (0..2000)
        .map(|i| {
            if i % 3 == 0 {
                format!("x{i}")
            } else {
                i.to_string()
            }
        })
        .collect();
    let mut args = vec!["RPUSH", "l:big"];
    args.extend(big.iter().map(String::as_str));
    ok(c, &args);
    ok(c, &["RPUSH", "l:plain", &"p".repeat(10_000), "small"]);
    ok(c, &["SADD", "set:int", "1", "2", "3", "-5"]);
    ok(c, &["SADD", "set:int64", "1", "5000000000"]);
    ok(c, &["SADD", "set:str", "a", "b", "c"]);
    let members: Vec<String> = (0..600).map(|i| i.to_string()).collect();
    let mut args = vec!["SADD", "set:big"];
    args.extend(members.iter().map(String::as_str));
    ok(c, &args);
    ok(c, &["HSET", "h:small", "f1", "v1", "f2", "2"]);
    let fields: Vec<String> = (0..200).map(|i| format!("f{i}")).collect();
    let mut args = vec!["HSET", "h:big"];
    for f in &fields {
        args.push(f);
        args.push(f);
    }
    ok(c, &args);
    ok(c, &["HSET", "h:long", "f", &"v".repeat(100)]);
    ok(c, &["ZADD", "z:small", "1", "a", "2.5", "b", "-1", "c"]);
    let scores: Vec<(String, String)> = (0..200)
        .map(|i| (format!("{}", i as f64 * 1.5), format!("m{i}")))
        .collect();
    let mut args = vec!["ZADD", "z:big"];
    for (s, m) in &scores {
        args.push(s);
        args.push(m);
    }
    ok(c, &args);
    ok(c, &["ZADD", "z:inf", "+inf", "x", "-inf", "y", "0", "z"]);
    ok(c, &["PEXPIREAT", "z:inf", &far_ms]);
    ok(c, &["PFADD", "hll", "a", "b", "c", "d"]);
    ok(c, &["SELECT", "5"]);
    ok(c, &["SET", "other", "db5"]);
    ok(c, &["RPUSH", "l5", "x"]);
    ok(c, &["SELECT", "0"]);
}

fn show(r: &Reply) -> String {
    match r.as_array() {
        Some(items) => {
            let parts: Vec<String> = items.iter().map(show).collect();
            format!("[{}]", parts.join(","))
        }
        None => match r {
            Reply::Int(n) => n.to_string(),
            Reply::Null => "nil".into(),
            other => format!(
                "{:?}",
                String::from_utf8_lossy(other.as_bytes().unwrap_or_default())
            ),
        },
    }
}

/// One key as both servers must agree on it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct KeyDump {
    kind: String,
    encoding: String,
    expire_at_ms: String,
    value: String,
}

/// The dataset without encodings (a live value and its reloaded self may differ there, in
/// Redis too: a PFADDed string is `raw` until reloaded as `embstr`).
fn without_encodings(d: &BTreeMap<String, KeyDump>) -> BTreeMap<String, KeyDump> {
    d.iter()
        .map(|(k, v)| {
            let mut v = v.clone();
            v.encoding.clear();
            (k.clone(), v)
        })
        .collect()
}

fn assert_same(a: &BTreeMap<String, KeyDump>, b: &BTreeMap<String, KeyDump>, what: &str) {
    assert!(!a.is_empty(), "{what}: empty dataset");
    for (k, v) in a {
        let other = b.get(k);
        if other != Some(v) {
            let short = |d: Option<&KeyDump>| {
                d.map(|d| {
                    format!(
                        "{} {} {} {:.200}",
                        d.kind, d.encoding, d.expire_at_ms, d.value
                    )
                })
            };
            panic!(
                "{what}: key {k} differs:\n  {:?}\n  {:?}",
                short(Some(v)),
                short(other)
            );
        }
    }
    assert_eq!(a.len(), b.len(), "{what}: key sets differ");
}

/// Every key of every database: type, encoding, absolute expiry and value.
fn dump_dataset(c: &mut RespConn) -> BTreeMap<String, KeyDump> {
    let mut all = BTreeMap::new();
    for db in 0..16 {
        ok(c, &["SELECT", &db.to_string()]);
        let keys = c.call(&["KEYS", "*"]);
        for k in keys.as_array().unwrap_or_default() {
            let key = k.as_bytes().expect("key").to_vec();
            let ks = String::from_utf8_lossy(&key).into_owned();
            let kind = text(&c.call(&["TYPE", &ks]));
            let enc = text(&c.call(&["OBJECT", "ENCODING", &ks]));
            let exp = show(&c.call(&["PEXPIRETIME", &ks]));
            let value = match kind.as_str() {
                "string" => show(&decode(c.cmd(&[b"GET", &key]))),
                "list" => show(&c.call(&["LRANGE", &ks, "0", "-1"])),
                "set" => {
                    let mut m: Vec<String> = c
                        .call(&["SMEMBERS", &ks])
                        .as_array()
                        .unwrap_or_default()
                        .iter()
                        .map(show)
                        .collect();
                    m.sort();
                    m.join(",")
                }
                "hash" => {
                    let r = c.call(&["HGETALL", &ks]);
                    let flat = r.as_array().unwrap_or_default();
                    let mut pairs: Vec<String> = flat
                        .chunks(2)
                        .map(|p| p.iter().map(show).collect::<Vec<_>>().join("="))
                        .collect();
                    pairs.sort();
                    pairs.join(",")
                }
                "zset" => show(&c.call(&["ZRANGE", &ks, "0", "-1", "WITHSCORES"])),
                other => panic!("unexpected type {other} for {ks}"),
            };
            all.insert(
                format!("{db}/{ks}"),
                KeyDump {
                    kind,
                    encoding: enc,
                    expire_at_ms: exp,
                    value,
                },
            );
        }
    }
    ok(c, &["SELECT", "0"]);
    all
}

fn decode(bytes: Vec<u8>) -> Reply {
    common::decode(&bytes).expect("reply")
}

fn assert_same_dataset(ours: &mut RespConn, theirs: &mut RespConn) {
    assert_same(
        &dump_dataset(ours),
        &dump_dataset(theirs),
        "shardis vs redis",
    );
    assert_eq!(digest(ours), digest(theirs), "DEBUG DIGEST differs");
}

#[test]
fn our_rdb_loads_in_redis_and_back() {
    let dir = data_dir();
    let ours = shardis_in(dir.path(), &[]);
    let mut c = ours.conn();
    populate(&mut c);
    let before = dump_dataset(&mut c);
    let before_digest = digest(&mut c);
    ok(&mut c, &["SAVE"]);
    let file = dir.path().join("dump.rdb");
    assert!(file.is_file());

    // redis-check-rdb accepts it.
    let check = std::process::Command::new(common::tool_path("redis-check-rdb"))
        .arg(&file)
        .output()
        .expect("redis-check-rdb");
    let out = String::from_utf8_lossy(&check.stdout);
    assert!(
        check.status.success() && out.contains("RDB looks OK"),
        "{out}"
    );

    // After a restart we hold the same dataset; redis-server loading the same file agrees
    // with us key by key, encodings included.
    drop(c);
    drop(ours);
    let again = shardis_in(dir.path(), &[]);
    let mut c = again.conn();
    let reloaded = dump_dataset(&mut c);
    assert_same(
        &without_encodings(&before),
        &without_encodings(&reloaded),
        "restart",
    );
    assert_eq!(digest(&mut c), before_digest);
    assert!(again
        .log_tail()
        .contains("Done loading RDB, keys loaded: 25, keys expired: 0."));
    assert!(again.log_tail().contains("DB loaded from disk: "));
    let theirs = redis_in(dir.path());
    assert_same_dataset(&mut c, &mut theirs.conn());
}

#[test]
fn redis_rdb_loads_in_shardis() {
    let dir = data_dir();
    let theirs = redis_in(dir.path());
    let mut r = theirs.conn();
    populate(&mut r);
    // Reloading makes Redis's live encodings its loaded ones (what ours are compared with).
    ok(&mut r, &["DEBUG", "RELOAD"]);
    let ours = shardis_in(dir.path(), &[]);
    let mut c = ours.conn();
    assert_same_dataset(&mut c, &mut r);
    assert_eq!(info(&mut c, "rdb_last_load_keys_loaded"), "25");
}

fn valid_rdb() -> Vec<u8> {
    let dir = data_dir();
    let s = shardis_in(dir.path(), &[]);
    let mut c = s.conn();
    populate(&mut c);
    ok(&mut c, &["SAVE"]);
    std::fs::read(dir.path().join("dump.rdb")).expect("dump.rdb")
}

fn check_rdb(binary: &Path, file: &Path, as_flag: bool) -> (bool, String) {
    let mut cmd = std::process::Command::new(binary);
    if as_flag {
        cmd.arg("--check-rdb");
    }
    let out = cmd.arg(file).output().expect("check");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

/// The four kinds of damage, each applied to a copy of a valid file.
fn corruptions(good: &[u8]) -> Vec<(&'static str, Vec<u8>)> {
    let mut flipped = good.to_vec();
    let mid = flipped.len() / 2;
    flipped[mid] ^= 0x5a;
    let truncated = good[..good.len() / 2].to_vec();
    let mut checksum = good.to_vec();
    let n = checksum.len();
    checksum[n - 3] ^= 0xff;
    let mut version = good.to_vec();
    version[5..9].copy_from_slice(b"0011");
    vec![
        ("flipped byte", flipped),
        ("truncated", truncated),
        ("wrong checksum", checksum),
        ("wrong version", version),
    ]
}

#[test]
fn corrupt_files_refuse_to_start_and_stay_untouched() {
    let good = valid_rdb();
    let bin = ServerKind::Shardis.binary();
    let file_dir = data_dir();
    let good_path = file_dir.path().join("good.rdb");
    std::fs::write(&good_path, &good).expect("write");
    assert!(
        check_rdb(&bin, &good_path, true).0,
        "--check-rdb rejects a valid file"
    );
    for (what, bytes) in corruptions(&good) {
        let dir = data_dir();
        let path = dir.path().join("dump.rdb");
        std::fs::write(&path, &bytes).expect("write");
        let d = dir.path().display().to_string();
        let started = TestServer::try_start(
            ServerKind::Shardis,
            common::Startup::Standard,
            &["--dir", &d, "--shards", "4", "--save", "1 1"],
        );
        let err = match started {
            Ok(_) => panic!("{what}: the server started on a corrupt file"),
            Err(e) => e,
        };
        assert!(err.contains("exit status: 1"), "{what}: {err}");
        assert!(
            err.contains("dump.rdb") && err.contains("offset"),
            "{what}: the log does not name the file and offset: {err}"
        );
        if what == "wrong checksum" {
            assert!(err.contains("CRC error"), "{err}");
        }
        assert_eq!(
            std::fs::read(&path).expect("read"),
            bytes,
            "{what}: file changed"
        );
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .expect("dir")
            .map(|e| e.expect("entry").file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("dump.rdb")], "{what}");
        let (valid, out) = check_rdb(&bin, &path, true);
        assert!(!valid, "{what}: --check-rdb accepted it: {out}");
        assert!(out.contains("RDB ERROR DETECTED"), "{what}: {out}");
    }
}

#[test]
fn binary_named_redis_check_rdb_checks() {
    let good = valid_rdb();
    let dir = data_dir();
    let link = dir.path().join("redis-check-rdb");
    std::os::unix::fs::symlink(ServerKind::Shardis.binary(), &link).expect("symlink");
    let file = dir.path().join("x.rdb");
    std::fs::write(&file, &good).expect("write");
    let (valid, out) = check_rdb(&link, &file, false);
    assert!(
        valid && out.contains("RDB looks OK") && out.contains("25 keys read"),
        "{out}"
    );
    std::fs::write(&file, &good[..good.len() - 1]).expect("write");
    assert!(!check_rdb(&link, &file, false).0);
}

/// Keys that land on different shards (with 4 shards), all written by one MSET.
const ATOMIC_KEYS: [&str; 8] = ["k0", "k1", "k2", "k3", "k4", "k5", "k6", "k7"];

/// A writer of MSETs of one counter over `ATOMIC_KEYS`; `acked` is the last acknowledged.
fn start_writer(
    port: u16,
    stop: Arc<AtomicBool>,
    acked: Arc<AtomicU64>,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let Ok(mut c) = RespConn::connect(port) else {
            return;
        };
        let mut i = acked.load(Ordering::SeqCst);
        while !stop.load(Ordering::SeqCst) {
            i += 1;
            let v = i.to_string();
            let mut args: Vec<&[u8]> = vec![b"MSET"];
            for k in ATOMIC_KEYS {
                args.push(k.as_bytes());
                args.push(v.as_bytes());
            }
            c.send(&args);
            match c.try_read_reply() {
                Ok(r) if r == b"+OK\r\n" => acked.store(i, Ordering::SeqCst),
                _ => return,
            }
        }
    })
}

/// The counter all `ATOMIC_KEYS` hold (they must agree).
fn atomic_value(c: &mut RespConn) -> u64 {
    let mut args = vec!["MGET"];
    args.extend(ATOMIC_KEYS);
    let r = c.call(&args);
    let vals: Vec<String> = r.as_array().expect("mget").iter().map(text).collect();
    assert!(
        vals.windows(2).all(|w| w[0] == w[1]),
        "a multi-shard MSET was cut by the snapshot: {vals:?}"
    );
    vals[0].parse().expect("counter")
}

fn child_pid_from_log(log: &Path) -> u32 {
    let text = std::fs::read_to_string(log).expect("log");
    text.lines()
        .rev()
        .find_map(|l| l.split("Background saving started by pid ").nth(1))
        .and_then(|p| p.trim().parse().ok())
        .expect("no child pid in the log")
}

fn process_exists(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
        && !std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .map(|s| s.contains(") Z "))
            .unwrap_or(true)
}

#[test]
fn kill_9_during_bgsave_restores_the_last_snapshot() {
    let trials = common::env_usize("SHARDIS_CRASH_TRIALS", 3);
    let dir = data_dir();
    for trial in 0..trials {
        let server = shardis_in(dir.path(), &["--save", ""]);
        let mut c = server.conn();
        if trial == 0 {
            ok(&mut c, &["DEBUG", "POPULATE", "2000", "bulk", "64"]);
        }
        let stop = Arc::new(AtomicBool::new(false));
        let acked = Arc::new(AtomicU64::new(0));
        let writer = start_writer(server.port(), stop.clone(), acked.clone());
        wait_until("writes", SAVE_TIMEOUT, || acked.load(Ordering::SeqCst) > 50);
        let low = acked.load(Ordering::SeqCst);
        assert_eq!(text(&c.call(&["BGSAVE"])), "Background saving started");
        let high = acked.load(Ordering::SeqCst) + 1;
        wait_bgsave_done(&mut c);
        assert_eq!(info(&mut c, "rdb_last_bgsave_status"), "ok");
        let snapshot = std::fs::read(dir.path().join("dump.rdb")).expect("dump.rdb");

        // A second, slow save is in progress when the server dies.
        ok(&mut c, &["CONFIG", "SET", "rdb-key-save-delay", "2000"]);
        assert_eq!(text(&c.call(&["BGSAVE"])), "Background saving started");
        let child = child_pid_from_log(server.log_path());
        wait_until("the temp file", SAVE_TIMEOUT, || {
            dir.path().join(format!("temp-{child}.rdb")).exists()
        });
        // SAFETY: killing the server this test started, by its PID.
        unsafe {
            libc::kill(server.pid() as i32, libc::SIGKILL);
        }
        wait_until("the server to die", SAVE_TIMEOUT, || !server.is_alive());
        stop.store(true, Ordering::SeqCst);
        let _ = writer.join();
        wait_until("the orphan child to die", SAVE_TIMEOUT, || {
            !process_exists(child)
        });
        drop(server);
        let _ = std::fs::remove_file(dir.path().join(format!("temp-{child}.rdb")));
        assert_eq!(
            std::fs::read(dir.path().join("dump.rdb")).expect("dump.rdb"),
            snapshot,
            "trial {trial}: the file is not the last completed snapshot"
        );

        let restarted = shardis_in(dir.path(), &["--save", ""]);
        let mut c = restarted.conn();
        let v = atomic_value(&mut c);
        assert!(
            (low..=high).contains(&v),
            "trial {trial}: snapshot holds {v}, outside [{low}, {high}]"
        );
        assert_eq!(info(&mut c, "db0").split(',').next(), Some("keys=2008"));
        // An independent loader agrees on the whole dataset.
        let redis_dir = data_dir();
        std::fs::write(redis_dir.path().join("dump.rdb"), &snapshot).expect("copy");
        let theirs = redis_in(redis_dir.path());
        assert_eq!(digest(&mut c), digest(&mut theirs.conn()), "trial {trial}");
    }
}

#[test]
fn save_rules_fire() {
    let dir = data_dir();
    let s = shardis_in(dir.path(), &["--save", "1 5"]);
    let mut c = s.conn();
    assert_eq!(info(&mut c, "rdb_saves"), "0");
    for i in 0..10 {
        ok(&mut c, &["SET", &format!("key{i}"), "v"]);
    }
    wait_until("the save rule to fire", SAVE_TIMEOUT, || {
        info(&mut c, "rdb_saves") != "0" && info(&mut c, "rdb_bgsave_in_progress") == "0"
    });
    assert_eq!(info(&mut c, "rdb_changes_since_last_save"), "0");
    assert_eq!(info(&mut c, "rdb_last_bgsave_status"), "ok");
    assert!(s.log_tail().contains("5 changes in 1 seconds. Saving..."));
    assert!(s
        .log_tail()
        .contains("Background saving terminated with success"));
    assert!(dir.path().join("dump.rdb").is_file());
    assert_ne!(info(&mut c, "latest_fork_usec"), "0");
}

fn wait_exit(s: &TestServer) {
    wait_until("the server to exit", SAVE_TIMEOUT, || !s.is_alive());
}

#[test]
fn shutdown_saves_as_asked() {
    // Save rules configured: SHUTDOWN saves; SHUTDOWN NOSAVE does not.
    for (rules, args, saves) in [
        ("3600 1", vec!["SHUTDOWN"], true),
        ("3600 1", vec!["SHUTDOWN", "NOSAVE"], false),
        ("", vec!["SHUTDOWN"], false),
        ("", vec!["SHUTDOWN", "SAVE"], true),
    ] {
        let dir = data_dir();
        let s = shardis_in(dir.path(), &["--save", rules]);
        let mut c = s.conn();
        ok(&mut c, &["SET", "foo", "bar"]);
        assert!(c.call(&["SHUTDOWN", "ABORT"]).is_error());
        assert!(c.call(&["SHUTDOWN", "SAVE", "NOSAVE"]).is_error());
        let cmd: Vec<&[u8]> = args.iter().map(|a| a.as_bytes()).collect();
        c.send(&cmd);
        wait_exit(&s);
        assert_eq!(
            dir.path().join("dump.rdb").is_file(),
            saves,
            "{rules:?} {args:?}"
        );
        if saves {
            let again = shardis_in(dir.path(), &[]);
            assert_eq!(text(&again.conn().call(&["GET", "foo"])), "bar");
        }
    }
}

#[test]
fn shutdown_fails_when_the_save_fails() {
    let dir = data_dir();
    let s = shardis_in(dir.path(), &["--save", "3600 1"]);
    let mut c = s.conn();
    ok(&mut c, &["SET", "foo", "bar"]);
    // A directory where the file should go makes the rename fail.
    std::fs::create_dir(dir.path().join("dump.rdb")).expect("mkdir");
    let r = c.call(&["SHUTDOWN"]);
    assert_eq!(text(&r), "ERR Errors trying to SHUTDOWN. Check logs.");
    assert!(s.is_alive());
    c.send(&[b"SHUTDOWN", b"FORCE"]);
    wait_exit(&s);
}

#[test]
fn sigterm_saves() {
    let dir = data_dir();
    let s = shardis_in(dir.path(), &["--save", "3600 1"]);
    let mut c = s.conn();
    populate(&mut c);
    let before = dump_dataset(&mut c);
    // SAFETY: signalling the server this test started, by its PID.
    unsafe {
        libc::kill(s.pid() as i32, libc::SIGTERM);
    }
    wait_exit(&s);
    assert!(s
        .log_tail()
        .contains("Saving the final RDB snapshot before exiting."));
    let again = shardis_in(dir.path(), &[]);
    assert_same(
        &without_encodings(&before),
        &without_encodings(&dump_dataset(&mut again.conn())),
        "after SIGTERM",
    );
}

#[test]
fn failed_bgsave_refuses_writes_until_a_save_succeeds() {
    let dir = data_dir();
    let s = shardis_in(dir.path(), &["--save", "3600 1"]);
    let mut c = s.conn();
    ok(&mut c, &["DEBUG", "POPULATE", "1000"]);
    ok(&mut c, &["SET", "x", "x"]);
    ok(&mut c, &["CONFIG", "SET", "rdb-key-save-delay", "10000000"]);
    assert_eq!(text(&c.call(&["BGSAVE"])), "Background saving started");
    assert_eq!(info(&mut c, "rdb_bgsave_in_progress"), "1");
    assert_eq!(
        text(&c.call(&["BGSAVE"])),
        "ERR Background save already in progress"
    );
    assert_eq!(
        text(&c.call(&["BGSAVE", "SCHEDULE"])),
        "ERR Background save already in progress"
    );
    assert_eq!(
        text(&c.call(&["SAVE"])),
        "ERR Background save already in progress"
    );
    let child = child_pid_from_log(s.log_path());
    // SAFETY: killing the save child of the server this test started, by its PID.
    unsafe {
        libc::kill(child as i32, libc::SIGKILL);
    }
    wait_bgsave_done(&mut c);
    assert_eq!(info(&mut c, "rdb_last_bgsave_status"), "err");
    assert_eq!(text(&c.call(&["GET", "x"])), "x");
    let misconf = "MISCONF Redis is configured to save RDB snapshots, but it's currently unable to persist to disk. Commands that may modify the data set are disabled, because this instance is configured to report errors during writes if RDB snapshotting fails (stop-writes-on-bgsave-error option). Please check the Redis logs for details about the RDB error.";
    assert_eq!(text(&c.call(&["SET", "x", "y"])), misconf);
    // A script's first write is refused the same way; its reads still work.
    let r = c.call(&["EVAL", "return redis.call('set','x',1)", "1", "x"]);
    assert!(text(&r).starts_with("MISCONF "), "EVAL write: {r:?}");
    let r = c.call(&["EVAL", "return redis.call('get','x')", "1", "x"]);
    assert_eq!(text(&r), "x");
    ok(&mut c, &["MULTI"]);
    assert_eq!(text(&c.call(&["SET", "x", "y"])), misconf);
    assert!(text(&c.call(&["EXEC"])).starts_with("EXECABORT"));
    // Not refused when the option is off.
    ok(
        &mut c,
        &["CONFIG", "SET", "stop-writes-on-bgsave-error", "no"],
    );
    ok(&mut c, &["SET", "y", "1"]);
    ok(
        &mut c,
        &["CONFIG", "SET", "stop-writes-on-bgsave-error", "yes"],
    );
    assert!(c.call(&["SET", "x", "y"]).is_error());
    ok(&mut c, &["CONFIG", "SET", "rdb-key-save-delay", "0"]);
    assert_eq!(text(&c.call(&["BGSAVE"])), "Background saving started");
    wait_bgsave_done(&mut c);
    assert_eq!(info(&mut c, "rdb_last_bgsave_status"), "ok");
    ok(&mut c, &["SET", "x", "y"]);
}

#[test]
fn lastsave_save_and_debug_reload() {
    let dir = data_dir();
    let s = shardis_in(dir.path(), &[]);
    let mut c = s.conn();
    populate(&mut c);
    let before = dump_dataset(&mut c);
    let d = digest(&mut c);
    assert_ne!(info(&mut c, "rdb_changes_since_last_save"), "0");
    let first = c.call(&["LASTSAVE"]).as_int().expect("int");
    std::thread::sleep(Duration::from_millis(1100));
    ok(&mut c, &["SAVE"]);
    assert!(c.call(&["LASTSAVE"]).as_int().expect("int") > first);
    assert_eq!(info(&mut c, "rdb_changes_since_last_save"), "0");
    ok(&mut c, &["DEBUG", "RELOAD"]);
    assert_eq!(digest(&mut c), d);
    assert_same(
        &without_encodings(&before),
        &without_encodings(&dump_dataset(&mut c)),
        "DEBUG RELOAD",
    );
    // NOSAVE loads the file as it is: later writes vanish; NOFLUSH MERGE keeps them.
    ok(&mut c, &["SET", "later", "1"]);
    ok(&mut c, &["DEBUG", "RELOAD", "NOSAVE"]);
    assert_eq!(c.call(&["EXISTS", "later"]).as_int(), Some(0));
    ok(&mut c, &["SET", "later", "1"]);
    ok(&mut c, &["DEBUG", "RELOAD", "NOSAVE", "NOFLUSH", "MERGE"]);
    assert_eq!(c.call(&["EXISTS", "later"]).as_int(), Some(1));
    assert!(c.call(&["DEBUG", "RELOAD", "NOSAVE", "NOFLUSH"]).is_error());
}

#[test]
fn bgsave_snapshot_while_writing_matches_redis_loading_it() {
    let dir = data_dir();
    let s = shardis_in(dir.path(), &[]);
    let mut c = s.conn();
    populate(&mut c);
    let stop = Arc::new(AtomicBool::new(false));
    let acked = Arc::new(AtomicU64::new(0));
    let writer = start_writer(s.port(), stop.clone(), acked.clone());
    for _ in 0..3 {
        wait_until("writes", SAVE_TIMEOUT, || acked.load(Ordering::SeqCst) > 20);
        assert_eq!(text(&c.call(&["BGSAVE"])), "Background saving started");
        wait_bgsave_done(&mut c);
        assert_eq!(info(&mut c, "rdb_last_bgsave_status"), "ok");
        let theirs = redis_in(dir.path());
        let mut r = theirs.conn();
        atomic_value(&mut r);
        assert_eq!(
            r.call(&["DBSIZE"]).as_int(),
            Some(23 + ATOMIC_KEYS.len() as i64)
        );
    }
    stop.store(true, Ordering::SeqCst);
    let _ = writer.join();
}

#[test]
fn clients_get_loading_while_the_rdb_loads() {
    let dir = data_dir();
    {
        let s = shardis_in(dir.path(), &[]);
        let mut c = s.conn();
        ok(&mut c, &["DEBUG", "POPULATE", "20000"]);
        ok(&mut c, &["SAVE"]);
    }
    // 20000 keys at 200 us each: about 4 s of loading, with the shards already listening.
    let port = common::free_port();
    let child = std::process::Command::new(ServerKind::Shardis.binary())
        .args(["--port", &port.to_string(), "--dir"])
        .arg(dir.path())
        .args(["--shards", "4", "--key-load-delay", "200"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn");
    let _server = KillOnDrop(child);
    let mut c = wait_for_connection(port);
    let r = c.call(&["GET", "key:1"]);
    assert_eq!(text(&r), "LOADING Redis is loading the dataset in memory");
    let persistence = text(&c.call(&["INFO", "persistence"]));
    assert!(persistence.contains("loading:1"), "{persistence}");
    assert!(
        persistence.contains("loading_loaded_perc:"),
        "{persistence}"
    );
    wait_until("the load to end", SAVE_TIMEOUT, || {
        c.call(&["PING"]).as_str() == Some("PONG")
    });
    assert_eq!(text(&c.call(&["GET", "key:1"])), "value:1");
    assert_eq!(info(&mut c, "rdb_last_load_keys_loaded"), "20000");
}

/// A server spawned by hand, killed by its PID when the test ends (also on panic).
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn wait_for_connection(port: u16) -> RespConn {
    let mut conn = None;
    wait_until("a connection", SAVE_TIMEOUT, || {
        conn = RespConn::connect(port).ok();
        conn.is_some()
    });
    conn.expect("connected")
}

#[test]
fn function_libraries_survive_a_round_trip_through_shardis() {
    let dir = data_dir();
    {
        let theirs = redis_in(dir.path());
        let mut r = theirs.conn();
        let code = "#!lua name=mylib\nredis.register_function('answer', function() return 42 end)";
        assert_eq!(text(&r.call(&["FUNCTION", "LOAD", code])), "mylib");
        ok(&mut r, &["SET", "k", "v"]);
        ok(&mut r, &["SAVE"]);
    }
    {
        // We load the library record, keep it, and write it back into our own snapshot.
        let ours = shardis_in(dir.path(), &[]);
        let mut c = ours.conn();
        ok(&mut c, &["SET", "k2", "v2"]);
        ok(&mut c, &["SAVE"]);
    }
    let theirs = redis_in(dir.path());
    let mut r = theirs.conn();
    assert_eq!(r.call(&["FCALL", "answer", "0"]).as_int(), Some(42));
    assert_eq!(text(&r.call(&["GET", "k2"])), "v2");
}

#[test]
fn bgsave_inside_multi_is_scheduled_and_runs() {
    let dir = data_dir();
    let s = shardis_in(dir.path(), &[]);
    let mut c = s.conn();
    ok(&mut c, &["SET", "k", "v"]);
    let saves = info(&mut c, "rdb_saves").parse::<u64>().expect("rdb_saves");
    ok(&mut c, &["MULTI"]);
    assert_eq!(text(&c.call(&["BGSAVE"])), "QUEUED");
    let r = c.call(&["EXEC"]);
    let replies = r.as_array().expect("EXEC replies");
    assert_eq!(text(&replies[0]), "Background saving scheduled");
    // The cron starts the scheduled save.
    wait_until("the scheduled BGSAVE to run", SAVE_TIMEOUT, || {
        info(&mut c, "rdb_saves").parse::<u64>().unwrap_or(0) > saves
            && info(&mut c, "rdb_bgsave_in_progress") == "0"
    });
    assert!(dir.path().join("dump.rdb").exists());
}

/// FLUSHALL, alone or in EXEC, aborts a running BGSAVE, and with save rules saves the empty
/// dataset at once (the change counter restarts at 0, and the file holds no key).
#[test]
fn flushall_aborts_a_running_bgsave_and_saves_the_empty_dataset() {
    for in_exec in [false, true] {
        let dir = data_dir();
        let s = shardis_in(dir.path(), &["--save", "3600 1"]);
        let mut c = s.conn();
        ok(&mut c, &["DEBUG", "POPULATE", "1000"]);
        ok(&mut c, &["CONFIG", "SET", "rdb-key-save-delay", "1000"]);
        assert_eq!(text(&c.call(&["BGSAVE"])), "Background saving started");
        assert_eq!(info(&mut c, "rdb_bgsave_in_progress"), "1");
        if in_exec {
            ok(&mut c, &["MULTI"]);
            ok(&mut c, &["FLUSHALL"]);
            assert!(c.call(&["EXEC"]).as_array().is_some());
        } else {
            ok(&mut c, &["FLUSHALL"]);
        }
        wait_until("the BGSAVE to be aborted", SAVE_TIMEOUT, || {
            info(&mut c, "rdb_bgsave_in_progress") == "0"
        });
        assert_eq!(info(&mut c, "rdb_changes_since_last_save"), "0");
        assert_eq!(info(&mut c, "rdb_last_bgsave_status"), "ok");
        ok(&mut c, &["CONFIG", "SET", "rdb-key-save-delay", "0"]);
        ok(&mut c, &["DEBUG", "RELOAD", "NOSAVE"]);
        assert_eq!(c.call(&["DBSIZE"]).as_int(), Some(0), "in_exec {in_exec}");
        ok(&mut c, &["SET", "still", "writable"]);
    }
}

/// A stream DUMP whose last record's item count (`lp-count`) is wrong: rejected with
/// `sanitize-dump-payload yes` (logged as a stream listpack integrity failure), accepted
/// without deep sanitization (the default), as Redis does; the server serves it either way.
#[test]
fn restore_of_a_stream_with_a_bad_record_count_follows_sanitize_dump_payload() {
    let dir = data_dir();
    let s = shardis_in(dir.path(), &["--loglevel", "verbose"]);
    let mut c = s.conn();
    ok(&mut c, &["CONFIG", "SET", "rdbcompression", "no"]);
    ok(&mut c, &["XADD", "s", "1-1", "a", "1"]);
    let dump = c.call(&["DUMP", "s"]);
    let mut payload = dump.as_bytes().expect("DUMP payload").to_vec();
    // The record's lp-count (1 field + 3 = 4, a 7-bit integer with back-length 1) is the
    // listpack's last entry, before its end byte.
    let at = payload
        .windows(3)
        .position(|w| w == [0x04, 0x01, 0xff])
        .expect("the record's lp-count in the payload");
    payload[at] = 0x05;
    ok(&mut c, &["DEBUG", "SET-SKIP-CHECKSUM-VALIDATION", "1"]);
    ok(&mut c, &["CONFIG", "SET", "sanitize-dump-payload", "yes"]);
    let mut args: Vec<&[u8]> = vec![b"RESTORE", b"t", b"0", &payload];
    let r = decode(c.cmd(&args));
    assert_eq!(text(&r), "ERR Bad data format", "sanitized: {r:?}");
    let log = std::fs::read_to_string(s.log_path()).unwrap_or_default();
    assert!(
        log.contains("Stream listpack integrity check failed"),
        "no integrity message in the log"
    );
    ok(&mut c, &["CONFIG", "SET", "sanitize-dump-payload", "no"]);
    args[1] = b"u";
    let r = decode(c.cmd(&args));
    assert!(!r.is_error(), "unsanitized: {r:?}");
    let r = c.call(&["XRANGE", "u", "-", "+"]);
    assert_eq!(r.as_array().map(|a| a.len()), Some(1), "{r:?}");
    assert_eq!(c.call(&["XLEN", "u"]).as_int(), Some(1));
}

/// Keys of every type and encoding for the DUMP tests: `populate`'s, plus a stream with a
/// consumer group and a dense HyperLogLog. Returns (key, OBJECT ENCODING) of each, in db 0.
fn populate_for_dump(c: &mut RespConn) -> Vec<(String, String)> {
    populate(c);
    ok(c, &["XADD", "st", "1-1", "a", "1", "b", "two"]);
    ok(c, &["XADD", "st", "2-0", "a", "3"]);
    ok(c, &["XADD", "st", "3-0", "c", "x"]);
    ok(c, &["XDEL", "st", "2-0"]);
    ok(c, &["XGROUP", "CREATE", "st", "g", "0"]);
    let r = c.call(&[
        "XREADGROUP",
        "GROUP",
        "g",
        "alice",
        "COUNT",
        "1",
        "STREAMS",
        "st",
        ">",
    ]);
    assert!(!r.is_error(), "{r:?}");
    let elements: Vec<String> = (0..5000).map(|i| format!("e{i}")).collect();
    let mut args = vec!["PFADD", "hll:dense"];
    args.extend(elements.iter().map(String::as_str));
    ok(c, &args);
    let keys = c.call(&["KEYS", "*"]);
    let mut out: Vec<(String, String)> = keys
        .as_array()
        .unwrap_or_default()
        .iter()
        .map(|k| {
            let k = text(k);
            let enc = text(&c.call(&["OBJECT", "ENCODING", &k]));
            (k, enc)
        })
        .collect();
    out.sort();
    out
}

/// DUMP from one server, RESTORE into the other under a new name; both must then report the
/// same DEBUG DIGEST-VALUE and OBJECT ENCODING for the key, and the same contents.
fn cross_restore(from: &mut RespConn, to: &mut RespConn, keys: &[(String, String)], tag: &str) {
    for (key, enc) in keys {
        let payload = from.cmd(&[b"DUMP", key.as_bytes()]);
        let payload = decode(payload);
        let payload = payload
            .as_bytes()
            .unwrap_or_else(|| panic!("DUMP {key}: {payload:?}"));
        let copy = format!("{tag}:{key}");
        let r = decode(to.cmd(&[b"RESTORE", copy.as_bytes(), b"0", payload, b"REPLACE"]));
        assert!(
            !r.is_error(),
            "{tag}: RESTORE of {key} ({enc}) failed: {r:?}"
        );
        let (d1, d2) = (
            text(&from.call(&["DEBUG", "DIGEST-VALUE", key])),
            text(&to.call(&["DEBUG", "DIGEST-VALUE", &copy])),
        );
        assert_eq!(d1, d2, "{tag}: DIGEST-VALUE of {key} ({enc})");
        // The encoding is the one the source gives its own restored DUMP (a PFADDed string is
        // `raw` until restored as `embstr`, in Redis too).
        let own = format!("own:{key}");
        let r = decode(from.cmd(&[b"RESTORE", own.as_bytes(), b"0", payload, b"REPLACE"]));
        assert!(
            !r.is_error(),
            "{tag}: RESTORE of its own DUMP of {key}: {r:?}"
        );
        assert_eq!(
            text(&to.call(&["OBJECT", "ENCODING", &copy])),
            text(&from.call(&["OBJECT", "ENCODING", &own])),
            "{tag}: encoding of {key} ({enc})"
        );
        ok(from, &["DEL", &own]);
        // The restored value DUMPs back to a payload the source restores to the same value.
        let back = decode(to.cmd(&[b"DUMP", copy.as_bytes()]));
        let back = back.as_bytes().expect("DUMP payload").to_vec();
        let again = format!("back:{key}");
        let r = decode(from.cmd(&[b"RESTORE", again.as_bytes(), b"0", &back, b"REPLACE"]));
        assert!(!r.is_error(), "{tag}: RESTORE back of {key} failed: {r:?}");
        assert_eq!(
            text(&from.call(&["DEBUG", "DIGEST-VALUE", &again])),
            d1,
            "{tag}: {key} after the round trip"
        );
        ok(from, &["DEL", &again]);
    }
}

/// DUMP payloads cross both ways with redis-server 7.0 for every type and encoding: string
/// int/embstr/raw, list quicklist (one node and many, a "plain"-sized element), hash
/// listpack/hashtable, set intset/hashtable, zset listpack/skiplist, stream with a consumer
/// group, HyperLogLog sparse and dense.
#[test]
fn dump_payloads_round_trip_with_redis_for_every_encoding() {
    let (dir_a, dir_b) = (data_dir(), data_dir());
    let ours = shardis_in(dir_a.path(), &[]);
    let theirs = redis_in(dir_b.path());
    let (mut o, mut t) = (ours.conn(), theirs.conn());
    let keys = populate_for_dump(&mut t);
    let encodings: std::collections::BTreeSet<&str> =
        keys.iter().map(|(_, e)| e.as_str()).collect();
    for enc in [
        "int",
        "embstr",
        "raw",
        "quicklist",
        "listpack",
        "hashtable",
        "intset",
        "skiplist",
        "stream",
    ] {
        assert!(
            encodings.contains(enc),
            "no {enc} key in the dataset: {keys:?}"
        );
    }
    assert_eq!(
        populate_for_dump(&mut o),
        keys,
        "both servers build the same encodings"
    );
    cross_restore(&mut t, &mut o, &keys, "from-redis");
    cross_restore(&mut o, &mut t, &keys, "from-shardis");
}
