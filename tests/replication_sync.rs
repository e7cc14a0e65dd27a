//! Full synchronization by fork and FAILOVER, over TCP with real binaries: a diskless child
//! serving a real redis-server 7.0 replica and a shardis replica at once (one fork, EOF
//! framing), a disk BGSAVE a second replica attaches to, a replica without `capa eof` (and
//! old SYNC) getting the `$<len>` framing, a replica with AOF rewriting it after the sync,
//! and FAILOVER handing a shardis master over to a shardis replica and then to a real Redis
//! replica, each time resuming with partial resyncs.

mod common;

use common::{wait_until, Reply, RespConn, ServerKind, TestServer};
use std::io::{Read, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

const SYNC_TIMEOUT: Duration = Duration::from_secs(60);

fn start(kind: ServerKind, extra: &[&str]) -> TestServer {
    let mut args = vec!["--enable-debug-command", "yes"];
    if kind == ServerKind::Shardis {
        args.extend(["--shards", "4"]);
    }
    args.extend_from_slice(extra);
    TestServer::start(kind, &args)
}

fn replica_of(kind: ServerKind, master: &TestServer, extra: &[&str]) -> TestServer {
    let port = master.port().to_string();
    let mut args = vec!["--replicaof", "127.0.0.1", port.as_str()];
    args.extend_from_slice(extra);
    start(kind, &args)
}

fn field(s: &TestServer, section: &str, name: &str) -> String {
    s.info_field(section, name).unwrap_or_default()
}

fn num(s: &TestServer, section: &str, name: &str) -> u64 {
    field(s, section, name).parse().unwrap_or(0)
}

fn digest(s: &TestServer) -> String {
    match s.conn().call(&["DEBUG", "DIGEST"]) {
        Reply::Status(b) | Reply::Bulk(b) => String::from_utf8_lossy(&b).into_owned(),
        other => panic!("DEBUG DIGEST: {other:?}"),
    }
}

/// Waits until the replica's link is up, it applied the master's whole stream and both hold
/// the same dataset.
fn wait_same(master: &TestServer, replica: &TestServer, what: &str) {
    let mut last = (String::new(), String::new());
    let deadline = std::time::Instant::now() + SYNC_TIMEOUT;
    while std::time::Instant::now() < deadline {
        let up = field(replica, "replication", "master_link_status") == "up";
        let off = num(master, "replication", "master_repl_offset");
        if up && off > 0 && num(replica, "replication", "master_repl_offset") == off {
            last = (digest(master), digest(replica));
            if last.0 == last.1 && num(master, "replication", "master_repl_offset") == off {
                return;
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!(
        "{what}: datasets differ or never caught up: {} vs {}",
        last.0, last.1
    );
}

fn count_in_log(s: &TestServer, needle: &str) -> usize {
    std::fs::read_to_string(s.log_path())
        .unwrap_or_default()
        .matches(needle)
        .count()
}

/// Writes until `stop`, over a few types and two databases; returns the rounds done.
fn writer(port: u16, stop: Arc<AtomicBool>) -> std::thread::JoinHandle<u64> {
    std::thread::spawn(move || {
        let mut c = RespConn::connect(port).expect("connect writer");
        let mut i = 0u64;
        while !stop.load(Ordering::Relaxed) {
            let k = format!("w:{}", i % 200);
            let v = i.to_string();
            for cmd in [
                vec!["SELECT", if i.is_multiple_of(2) { "0" } else { "3" }],
                vec!["SET", &k, &v],
                vec!["RPUSH", "list", &v],
                vec!["HSET", "hash", &k, &v],
                vec!["ZADD", "zset", "1", &v],
                vec!["INCR", "counter"],
            ] {
                let r = c.call(&cmd);
                assert!(!r.is_error(), "{cmd:?}: {r:?}");
            }
            i += 1;
        }
        i
    })
}

fn populate(s: &TestServer, keys: u64) {
    let n = keys.to_string();
    assert_eq!(
        s.conn().call(&["DEBUG", "POPULATE", &n]).as_str(),
        Some("OK")
    );
}

#[test]
fn one_diskless_child_serves_a_redis_and_a_shardis_replica() {
    let master = start(
        ServerKind::Shardis,
        &[
            "--repl-diskless-sync",
            "yes",
            "--repl-diskless-sync-delay",
            "5",
            "--repl-diskless-sync-max-replicas",
            "2",
        ],
    );
    populate(&master, 50_000);
    let forks = num(&master, "stats", "total_forks");
    let stop = Arc::new(AtomicBool::new(false));
    let w = writer(master.port(), stop.clone());
    let theirs = replica_of(ServerKind::Redis, &master, &[]);
    let ours = replica_of(ServerKind::Shardis, &master, &[]);
    // max-replicas 2: the fork does not wait out the 5 s delay once both are waiting.
    wait_until("both replicas online", SYNC_TIMEOUT, || {
        let info = master.conn().call(&["INFO", "replication"]);
        let text = info.as_str().unwrap_or_default().to_string();
        text.matches("state=online").count() == 2
    });
    std::thread::sleep(Duration::from_millis(300));
    stop.store(true, Ordering::Relaxed);
    assert!(w.join().expect("writer") > 0, "the writer made no progress");
    wait_same(&master, &theirs, "redis replica after a diskless sync");
    wait_same(&master, &ours, "shardis replica after a diskless sync");
    assert_eq!(
        num(&master, "stats", "total_forks"),
        forks + 1,
        "one child for both"
    );
    assert_eq!(num(&master, "stats", "sync_full"), 2);
    assert_eq!(
        count_in_log(
            &master,
            "Starting BGSAVE for SYNC with target: replicas sockets"
        ),
        1
    );
    assert!(
        count_in_log(&theirs, "receiving streamed RDB from master with EOF") == 1,
        "the Redis replica did not get the EOF framing"
    );
}

#[test]
fn a_disk_save_for_one_replica_serves_a_late_one_too() {
    let master = start(
        ServerKind::Shardis,
        &["--repl-diskless-sync", "no", "--rdb-key-save-delay", "200"],
    );
    populate(&master, 10_000);
    let forks = num(&master, "stats", "total_forks");
    let stop = Arc::new(AtomicBool::new(false));
    let w = writer(master.port(), stop.clone());
    let first = replica_of(ServerKind::Shardis, &master, &[]);
    wait_until("the save for the first replica runs", SYNC_TIMEOUT, || {
        num(&master, "persistence", "rdb_bgsave_in_progress") == 1
    });
    let late = replica_of(ServerKind::Redis, &master, &[]);
    wait_until("the late replica attached", SYNC_TIMEOUT, || {
        count_in_log(&master, "Waiting for end of BGSAVE for SYNC") == 1
    });
    master
        .conn()
        .call(&["CONFIG", "SET", "rdb-key-save-delay", "0"]);
    wait_until("both replicas online", SYNC_TIMEOUT, || {
        let info = master.conn().call(&["INFO", "replication"]);
        info.as_str()
            .unwrap_or_default()
            .matches("state=online")
            .count()
            == 2
    });
    stop.store(true, Ordering::Relaxed);
    assert!(w.join().expect("writer") > 0, "the writer made no progress");
    wait_same(&master, &first, "first replica");
    wait_same(&master, &late, "replica attached to the running save");
    assert_eq!(
        num(&master, "stats", "total_forks"),
        forks + 1,
        "one save for both"
    );
    assert_eq!(
        count_in_log(&master, "Starting BGSAVE for SYNC with target: disk"),
        1
    );
    // The save for replication is a BGSAVE like any other.
    assert!(num(&master, "persistence", "rdb_saves") >= 1);
    assert!(master.dir().join("dump.rdb").is_file());
}

/// Reads from `s` until `pred` holds for what arrived, within the sync timeout.
fn read_until(s: &mut std::net::TcpStream, pred: impl Fn(&[u8]) -> bool) -> Vec<u8> {
    s.set_read_timeout(Some(Duration::from_millis(200)))
        .expect("timeout");
    let deadline = std::time::Instant::now() + SYNC_TIMEOUT;
    let mut got = Vec::new();
    let mut buf = [0u8; 65536];
    while !pred(&got) {
        assert!(std::time::Instant::now() < deadline, "got only {got:?}");
        match s.read(&mut buf) {
            Ok(0) => panic!("connection closed after {got:?}"),
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(_) => {}
        }
    }
    got
}

/// The bytes after the keep-alive newlines, up to and including the first line ending.
fn first_line_after_newlines(data: &[u8]) -> Option<String> {
    let start = data.iter().position(|&b| b != b'\n')?;
    let rest = &data[start..];
    let end = rest.windows(2).position(|w| w == b"\r\n")?;
    Some(String::from_utf8_lossy(&rest[..end]).into_owned())
}

#[test]
fn replicas_without_capa_eof_get_the_rdb_from_disk() {
    let master = start(
        ServerKind::Shardis,
        &[
            "--repl-diskless-sync",
            "yes",
            "--repl-diskless-sync-delay",
            "0",
        ],
    );
    master.conn().call(&["SET", "k", "v"]);
    // PSYNC without `capa eof`: +FULLRESYNC, then `$<len>`.
    let mut s = std::net::TcpStream::connect(("127.0.0.1", master.port())).expect("connect");
    s.write_all(b"REPLCONF listening-port 1\r\nREPLCONF capa psync2\r\nPSYNC ? -1\r\n")
        .expect("send");
    let got = read_until(&mut s, |d| {
        d.windows(11).any(|w| w == b"+FULLRESYNC") && d.ends_with(b"\r\n") && d.contains(&b'$')
    });
    let text = String::from_utf8_lossy(&got).into_owned();
    let after = &got[text.find("+FULLRESYNC").expect("+FULLRESYNC")..];
    let line_end = after.windows(2).position(|w| w == b"\r\n").expect("line");
    let bulk = first_line_after_newlines(&after[line_end + 2..]).expect("bulk header");
    assert!(bulk.starts_with('$'), "{bulk}");
    assert!(
        bulk[1..].parse::<u64>().is_ok(),
        "expected $<len>, got {bulk}"
    );
    // SYNC: no +FULLRESYNC line, the bulk directly.
    let mut s = std::net::TcpStream::connect(("127.0.0.1", master.port())).expect("connect");
    s.write_all(b"SYNC\r\n").expect("send");
    let got = read_until(&mut s, |d| first_line_after_newlines(d).is_some());
    let bulk = first_line_after_newlines(&got).expect("bulk header");
    assert!(
        bulk.starts_with('$') && bulk[1..].parse::<u64>().is_ok(),
        "{bulk}"
    );
    // With `capa eof`, the same master streams with the EOF mark.
    let mut s = std::net::TcpStream::connect(("127.0.0.1", master.port())).expect("connect");
    s.write_all(b"REPLCONF capa eof capa psync2\r\nPSYNC ? -1\r\n")
        .expect("send");
    let got = read_until(&mut s, |d| d.windows(5).any(|w| w == b"$EOF:"));
    let text = String::from_utf8_lossy(&got).into_owned();
    let mark_at = text.find("$EOF:").expect("mark") + 5;
    assert!(got.len() >= mark_at + 40, "short mark");
}

#[test]
fn a_replica_with_aof_rewrites_it_after_the_full_sync() {
    let master = start(ServerKind::Shardis, &["--repl-diskless-sync-delay", "0"]);
    populate(&master, 2_000);
    let replica = replica_of(ServerKind::Shardis, &master, &["--appendonly", "yes"]);
    wait_same(&master, &replica, "replica with AOF");
    wait_until("the replica rewrote its AOF", SYNC_TIMEOUT, || {
        num(&replica, "persistence", "aof_rewrites") >= 1
            && num(&replica, "persistence", "aof_rewrite_in_progress") == 0
    });
    master.conn().call(&["SET", "after-sync", "1"]);
    wait_same(&master, &replica, "after a write");
    // The AOF alone rebuilds the synced dataset plus the stream after it.
    let r = replica.conn().call(&["DEBUG", "LOADAOF"]);
    assert_eq!(r.as_str(), Some("OK"), "{r:?}");
    assert_eq!(digest(&replica), digest(&master));
}

fn role_of(s: &TestServer) -> String {
    let r = s.conn().call(&["ROLE"]);
    r.as_array()
        .and_then(|a| a.first())
        .and_then(|x| x.as_str())
        .unwrap_or_default()
        .to_string()
}

fn wait_failover_done(s: &TestServer) {
    wait_until("failover finished", SYNC_TIMEOUT, || {
        field(s, "replication", "master_failover_state") == "no-failover"
    });
}

#[test]
fn failover_hands_over_with_partial_resyncs() {
    let a = start(ServerKind::Shardis, &["--repl-diskless-sync-delay", "0"]);
    let mut c = a.conn();
    assert_eq!(
        c.call(&["FAILOVER"]).as_str(),
        Some("ERR FAILOVER requires connected replicas.")
    );
    assert_eq!(
        c.call(&["FAILOVER", "ABORT"]).as_str(),
        Some("ERR No failover in progress.")
    );
    // DEBUG POPULATE is not replicated: the data is there before the replicas sync.
    populate(&a, 1_000);
    let b = replica_of(ServerKind::Shardis, &a, &[]);
    let r = replica_of(ServerKind::Redis, &a, &[]);
    wait_same(&a, &b, "b");
    wait_same(&a, &r, "redis replica");
    let b_port = b.port().to_string();
    assert_eq!(
        c.call(&["FAILOVER", "TO", "127.0.0.1", &b_port, "FORCE"])
            .as_str(),
        Some("ERR FAILOVER with force option requires both a timeout and target HOST and IP.")
    );
    assert_eq!(
        c.call(&["FAILOVER", "TO", "127.0.0.1", "1"]).as_str(),
        Some("ERR FAILOVER target HOST and PORT is not a replica.")
    );
    assert!(
        b.conn().call(&["FAILOVER"]).is_error(),
        "FAILOVER on a replica"
    );

    // a → b (shardis to shardis), under a writer that the pause holds back.
    let stop = Arc::new(AtomicBool::new(false));
    let w = writer_tolerant(a.port(), stop.clone());
    std::thread::sleep(Duration::from_millis(200));
    let b_partial = num(&b, "stats", "sync_partial_ok");
    let b_full = num(&b, "stats", "sync_full");
    assert_eq!(
        c.call(&["FAILOVER", "TO", "127.0.0.1", &b_port]).as_str(),
        Some("OK")
    );
    wait_failover_done(&a);
    stop.store(true, Ordering::Relaxed);
    w.join().expect("writer");
    assert_eq!(role_of(&a), "slave");
    assert_eq!(role_of(&b), "master");
    let r_port = r.port().to_string();
    r.conn().call(&["REPLICAOF", "127.0.0.1", &b_port]);
    wait_same(&b, &a, "old master after the failover");
    wait_same(&b, &r, "redis replica re-pointed");
    assert_eq!(num(&b, "stats", "sync_partial_ok"), b_partial + 2);
    assert_eq!(
        num(&b, "stats", "sync_full"),
        b_full,
        "nobody resynced in full"
    );

    // b → the real Redis replica, chosen by FAILOVER without TO once it caught up; a is
    // stopped from catching up by sending it elsewhere first.
    a.conn().call(&["REPLICAOF", "NO", "ONE"]);
    b.conn().call(&["SET", "before-second-failover", "1"]);
    wait_same(&b, &r, "redis replica before the second failover");
    let r_partial = num(&r, "stats", "sync_partial_ok");
    assert_eq!(
        b.conn()
            .call(&["FAILOVER", "TO", "127.0.0.1", &r_port, "TIMEOUT", "20000"])
            .as_str(),
        Some("OK")
    );
    wait_failover_done(&b);
    assert_eq!(role_of(&r), "master");
    assert_eq!(role_of(&b), "slave");
    wait_same(&r, &b, "shardis replica of the promoted Redis");
    assert_eq!(num(&r, "stats", "sync_partial_ok"), r_partial + 1);
    assert_eq!(
        r.conn().call(&["GET", "before-second-failover"]).as_str(),
        Some("1")
    );
}

/// A writer that ignores the errors a failover causes (READONLY once the master turned
/// replica): it only keeps writes flowing while the hand-over runs.
fn writer_tolerant(port: u16, stop: Arc<AtomicBool>) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let mut c = RespConn::connect(port).expect("connect writer");
        let mut i = 0u64;
        while !stop.load(Ordering::Relaxed) {
            let v = i.to_string();
            let _ = c.call(&["SET", "fo", &v]);
            i += 1;
        }
    })
}

#[test]
fn a_swapdb_replica_keeps_its_data_when_the_transfer_breaks() {
    let replica = start(
        ServerKind::Shardis,
        &["--repl-diskless-load", "swapdb", "--key-load-delay", "100"],
    );
    replica.conn().call(&["SET", "old", "1"]);
    let master = start(ServerKind::Shardis, &["--repl-diskless-sync-delay", "0"]);
    // 40 MB: more than the socket buffers and the master's queue hold, so killing the
    // master really cuts the transfer short (what was already sent would still arrive).
    let r = master
        .conn()
        .call(&["DEBUG", "POPULATE", "40000", "key", "1000"]);
    assert_eq!(r.as_str(), Some("OK"));
    let port = master.port().to_string();
    replica.conn().call(&["REPLICAOF", "127.0.0.1", &port]);
    // key-load-delay paces the parse of the socket: the replica is loading for seconds.
    wait_until("the replica loads from the socket", SYNC_TIMEOUT, || {
        field(&replica, "persistence", "loading") == "1"
    });
    drop(master);
    wait_until("the broken load ended", SYNC_TIMEOUT, || {
        field(&replica, "persistence", "loading") == "0"
    });
    let mut r = replica.conn();
    assert_eq!(r.call(&["GET", "old"]).as_str(), Some("1"), "old data lost");
    assert_eq!(r.call(&["DBSIZE"]).as_int(), Some(1));

    // A transfer that completes replaces the dataset.
    let master = start(ServerKind::Shardis, &["--repl-diskless-sync-delay", "0"]);
    populate(&master, 2_000);
    r.call(&["CONFIG", "SET", "key-load-delay", "0"]);
    let port = master.port().to_string();
    r.call(&["REPLICAOF", "127.0.0.1", &port]);
    wait_same(&master, &replica, "swapdb replica");
    assert_eq!(replica.conn().call(&["DBSIZE"]).as_int(), Some(2_000));
}
