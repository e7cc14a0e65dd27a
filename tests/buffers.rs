//! Client buffers over TCP: `client-output-buffer-limit` for pub/sub, normal and replica
//! clients, `maxmemory-clients` client eviction, and the CLIENT LIST buffer fields. Every
//! wait has a deadline; nothing asserts on timings.

mod common;

use common::{wait_until, RespConn, ServerKind, TestServer};
use std::time::Duration;

const DEADLINE: Duration = Duration::from_secs(30);

fn client_list(c: &mut RespConn) -> String {
    let r = c.cmd(&[b"CLIENT", b"LIST"]);
    String::from_utf8_lossy(&r).into_owned()
}

/// A CLIENT LIST field of the client named `name`.
fn field(c: &mut RespConn, name: &str, f: &str) -> Option<u64> {
    let list = client_list(c);
    let line = list
        .lines()
        .find(|l| l.contains(&format!(" name={name} ")))?;
    let key = format!(" {f}=");
    let at = line.find(&key)? + key.len();
    line[at..].split(' ').next()?.parse().ok()
}

fn info_u64(s: &TestServer, section: &str, name: &str) -> u64 {
    s.info_field(section, name)
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("INFO {section} has no {name}"))
}

fn log_has(s: &TestServer, text: &str) -> bool {
    std::fs::read_to_string(s.log_path()).is_ok_and(|l| l.contains(text))
}

/// A subscriber that never reads is dropped once its pending output passes the pub/sub hard
/// limit, with Redis's log line, while other clients keep being served.
#[test]
fn slow_subscriber_dropped_past_hard_limit() {
    let s = TestServer::start(ServerKind::Shardis, &["--shards", "2"]);
    let mut c = s.conn();
    assert_eq!(
        c.cmd(&[
            b"CONFIG",
            b"SET",
            b"client-output-buffer-limit",
            b"pubsub 262144 0 0"
        ]),
        b"+OK\r\n"
    );
    let mut sub = s.conn();
    sub.cmd(&[b"CLIENT", b"SETNAME", b"slowsub"]);
    sub.send(&[b"SUBSCRIBE", b"ch"]);
    let confirm = sub.read_reply();
    assert!(confirm.starts_with(b"*3\r\n$9\r\nsubscribe"), "{confirm:?}");
    let mut other = s.conn();
    let payload = vec![b'x'; 16 * 1024];
    // The socket buffers take megabytes first; then the pending output grows to the limit.
    wait_until("the subscriber to be dropped", DEADLINE, || {
        let receivers = c.cmd(&[b"PUBLISH", b"ch", &payload]);
        assert_eq!(other.cmd(&[b"PING"]), b"+PONG\r\n", "others are served");
        receivers == b":0\r\n"
    });
    assert!(
        field(&mut c, "slowsub", "omem").is_none(),
        "no longer listed"
    );
    assert!(log_has(
        &s,
        "scheduled to be closed ASAP for overcoming of output buffer limits."
    ));
    let (_, closed) = sub.read_until_close(DEADLINE);
    assert!(closed, "the server closed the subscriber's connection");
    assert_eq!(other.cmd(&[b"PING"]), b"+PONG\r\n");
}

/// A normal client whose single reply passes its hard limit is closed without a byte of it;
/// a reply within the limit is served.
#[test]
fn normal_client_hard_limit_sends_nothing() {
    let s = TestServer::start(ServerKind::Shardis, &["--shards", "2"]);
    let mut c = s.conn();
    c.cmd(&[
        b"CONFIG",
        b"SET",
        b"client-output-buffer-limit",
        b"normal 100000 0 0",
    ]);
    let item = vec![b'x'; 1000];
    for _ in 0..150 {
        c.cmd(&[b"RPUSH", b"biglist", &item]);
    }
    let small = c.cmd(&[b"LRANGE", b"biglist", b"0", b"9"]);
    assert!(small.starts_with(b"*10\r\n"), "a small reply is served");
    let mut big = s.conn();
    big.send(&[b"LRANGE", b"biglist", b"0", b"-1"]);
    let (bytes, closed) = big.read_until_close(DEADLINE);
    assert!(closed, "closed for its output");
    assert!(bytes.is_empty(), "got {} bytes of the reply", bytes.len());
    // A pipeline whose replies add up past the limit gets none of them either.
    let mut piped = s.conn();
    let mut raw = Vec::new();
    for _ in 0..20 {
        raw.extend_from_slice(b"LRANGE biglist 0 9\r\n");
    }
    piped.send_raw(&raw);
    let (bytes, closed) = piped.read_until_close(DEADLINE);
    assert!(closed && bytes.is_empty(), "{} bytes", bytes.len());
    assert_eq!(c.cmd(&[b"PING"]), b"+PONG\r\n");
}

/// The soft limit closes a client that stays above it for the configured seconds, even when
/// no more output comes.
#[test]
fn soft_limit_closes_after_its_seconds() {
    let s = TestServer::start(ServerKind::Shardis, &["--shards", "1"]);
    let mut c = s.conn();
    c.cmd(&[
        b"CONFIG",
        b"SET",
        b"client-output-buffer-limit",
        b"pubsub 0 65536 1",
    ]);
    let mut sub = s.conn();
    sub.cmd(&[b"CLIENT", b"SETNAME", b"softsub"]);
    sub.send(&[b"SUBSCRIBE", b"ch"]);
    sub.read_reply();
    let payload = vec![b'y'; 16 * 1024];
    // Publish until the pending output is above the soft limit, then stop.
    wait_until("the output to pass the soft limit", DEADLINE, || {
        c.cmd(&[b"PUBLISH", b"ch", &payload]);
        field(&mut c, "softsub", "omem").is_none_or(|m| m >= 65536)
    });
    wait_until("the soft limit to close the subscriber", DEADLINE, || {
        field(&mut c, "softsub", "omem").is_none()
    });
    assert!(log_has(&s, "for overcoming of output buffer limits."));
}

/// maxmemory-clients evicts the client holding the most memory (a big unfinished argument),
/// counts it, and spares a client with CLIENT NO-EVICT ON.
#[test]
fn maxmemory_clients_evicts_largest() {
    let s = TestServer::start(ServerKind::Shardis, &["--shards", "2"]);
    let mut c = s.conn();
    assert_eq!(c.cmd(&[b"CLIENT", b"NO-EVICT", b"ON"]), b"+OK\r\n");
    c.cmd(&[b"CONFIG", b"SET", b"maxmemory-clients", b"2mb"]);
    let mut small = s.conn();
    small.cmd(&[b"CLIENT", b"SETNAME", b"small"]);
    let mut keeper = s.conn();
    keeper.cmd(&[b"CLIENT", b"SETNAME", b"keeper"]);
    keeper.cmd(&[b"CLIENT", b"NO-EVICT", b"ON"]);
    // Half the limit: tolerated, and visible as qbuf (only the argument's bytes).
    let half = 1024 * 1024;
    keeper.send_raw(format!("*2\r\n${half}\r\n").as_bytes());
    keeper.send_raw(&vec![b'k'; half]);
    wait_until("keeper's qbuf", DEADLINE, || {
        field(&mut c, "keeper", "qbuf") == Some(half as u64)
    });
    let tot = field(&mut c, "keeper", "tot-mem").unwrap_or(0);
    assert!(tot >= half as u64, "tot-mem {tot}");
    let mut big = s.conn();
    big.cmd(&[b"CLIENT", b"SETNAME", b"big"]);
    let n = 3 * 1024 * 1024;
    big.send_raw(format!("*1\r\n${n}\r\n").as_bytes());
    let _ = big.try_send_raw(&vec![b'v'; n]);
    let (_, closed) = big.read_until_close(DEADLINE);
    assert!(closed, "the big client was evicted");
    assert!(info_u64(&s, "stats", "evicted_clients") >= 1);
    assert!(log_has(&s, "Evicting client: "));
    assert!(field(&mut c, "keeper", "qbuf").is_some(), "no-evict spared");
    assert_eq!(small.cmd(&[b"PING"]), b"+PONG\r\n");
}

/// CLIENT LIST's buffer fields: the caller's own query buffer holds its command; a
/// pub/sub client shows its subscriptions and the P flag; a transaction its queue.
#[test]
fn client_list_buffer_fields() {
    let s = TestServer::start(ServerKind::Shardis, &["--shards", "2"]);
    let mut c = s.conn();
    let own = String::from_utf8_lossy(&c.cmd(&[b"CLIENT", b"INFO"])).into_owned();
    assert!(own.contains(" qbuf=26 "), "{own}");
    assert!(own.contains(" argv-mem=10 "), "{own}");
    assert!(own.contains(" obl=0 oll=0 omem=0 "), "{own}");
    let mut sub = s.conn();
    sub.cmd(&[b"CLIENT", b"SETNAME", b"sub"]);
    sub.send(&[b"SUBSCRIBE", b"a", b"b"]);
    sub.read_reply();
    sub.read_reply();
    sub.send(&[b"PSUBSCRIBE", b"p*"]);
    sub.read_reply();
    wait_until("sub's counts", DEADLINE, || {
        field(&mut c, "sub", "sub") == Some(2) && field(&mut c, "sub", "psub") == Some(1)
    });
    assert!(client_list(&mut c).contains("name=sub age="));
    let line = client_list(&mut c);
    assert!(line.contains("flags=P "), "{line}");
    let mut tx = s.conn();
    tx.cmd(&[b"CLIENT", b"SETNAME", b"tx"]);
    tx.cmd(&[b"MULTI"]);
    tx.cmd(&[b"SET", b"k", b"12345"]);
    wait_until("tx's queue", DEADLINE, || {
        field(&mut c, "tx", "multi") == Some(1) && field(&mut c, "tx", "multi-mem") == Some(9)
    });
    let tot = field(&mut c, "tx", "tot-mem").unwrap_or(0);
    assert!(tot > 0);
}

/// A replica that stops reading is dropped by the replica class limit (never below the
/// backlog size), as Redis drops it.
#[test]
fn stalled_replica_dropped_by_replica_limit() {
    let s = TestServer::start(
        ServerKind::Shardis,
        &["--shards", "2", "--repl-backlog-size", "16kb"],
    );
    let mut c = s.conn();
    c.cmd(&[
        b"CONFIG",
        b"SET",
        b"client-output-buffer-limit",
        b"replica 262144 0 0",
    ]);
    let mut replica = s.conn();
    replica.cmd(&[b"REPLCONF", b"listening-port", b"1"]);
    replica.send(&[b"SYNC"]);
    wait_until("the replica to attach", DEADLINE, || {
        info_u64(&s, "replication", "connected_slaves") == 1
    });
    let value = vec![b'z'; 16 * 1024];
    let mut i = 0u64;
    wait_until("the replica to be dropped", DEADLINE, || {
        for _ in 0..16 {
            i += 1;
            let key = format!("key:{i}");
            c.cmd(&[b"SET", key.as_bytes(), &value]);
        }
        info_u64(&s, "replication", "connected_slaves") == 0
    });
    assert!(log_has(
        &s,
        "scheduled to be closed ASAP for overcoming of output buffer limits."
    ));
    assert_eq!(c.cmd(&[b"PING"]), b"+PONG\r\n");
}

/// With `maxmemory-clients` set, clients that pile up replies are evicted before any key
/// (Redis runs client eviction ahead of key eviction): 20 clients that never read ask for a
/// 100 KB value over and over, with 2 shards so that most replies come from the other shard
/// in batches. Before client memory was published per command and replies in transit and
/// allocator slack were accounted, key eviction often won the race and emptied the dataset.
#[test]
fn client_eviction_comes_before_key_eviction() {
    let s = TestServer::start(ServerKind::Shardis, &["--shards", "2"]);
    let mut c = s.conn();
    assert_eq!(c.cmd(&[b"CLIENT", b"NO-EVICT", b"ON"]), b"+OK\r\n");
    for round in 0..5 {
        c.cmd(&[b"CONFIG", b"SET", b"maxmemory", b"0"]);
        c.cmd(&[b"FLUSHALL"]);
        for j in 0..50 {
            let k = j.to_string();
            c.cmd(&[b"SETRANGE", k.as_bytes(), b"100000", b"x"]);
        }
        // 5 MB above the dataset: more than the clients' 3 MB allowance.
        let used = info_u64(&s, "memory", "used_memory");
        let max = (used + 5 * 1024 * 1024).to_string();
        c.cmd(&[b"CONFIG", b"SET", b"maxmemory-policy", b"allkeys-lru"]);
        c.cmd(&[b"CONFIG", b"SET", b"maxmemory", max.as_bytes()]);
        c.cmd(&[b"CONFIG", b"SET", b"maxmemory-clients", b"3mb"]);
        c.cmd(&[b"CONFIG", b"RESETSTAT"]);
        let mut readers: Vec<RespConn> = (0..20).map(|_| s.conn()).collect();
        // As Redis's suite does it: one request per client, then the figures, no pause.
        let deadline = std::time::Instant::now() + DEADLINE;
        let (keys, dbsize) = loop {
            readers.retain_mut(|r| r.try_send_raw(b"*2\r\n$4\r\nMGET\r\n$1\r\n1\r\n").is_ok());
            let keys = info_u64(&s, "stats", "evicted_keys");
            let dbsize = c.call(&["DBSIZE"]).as_int();
            if info_u64(&s, "stats", "evicted_clients") > 0 || keys > 0 {
                break (keys, dbsize);
            }
            assert!(std::time::Instant::now() < deadline, "nothing evicted");
        };
        assert_eq!((keys, dbsize), (0, Some(50)), "round {round}: keys evicted");
        drop(readers);
        c.cmd(&[b"CONFIG", b"SET", b"maxmemory-clients", b"0"]);
    }
}
