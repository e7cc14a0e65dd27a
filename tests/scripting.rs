//! Scripting against the real binary: distributed locks under contention, cross-shard
//! atomicity of scripts, busy scripts (BUSY replies on every shard, SCRIPT KILL), and
//! FUNCTION DUMP / RESTORE payloads travelling between real Redis 7.0 and shardis.

mod common;

#[path = "../examples/lock.rs"]
mod lock;

use common::{wait_until, Reply as R, RespConn, ServerKind, TestServer};
use lock::{Conn, Reply};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn secs_env(name: &str, default: u64) -> Duration {
    Duration::from_secs(common::env_usize(name, default as usize) as u64)
}

/// 50 clients contend for one lock for 10 seconds (`SHARDIS_LOCK_SECS`) on 4 shards; each
/// critical section appends a start and an end marker to a list while holding the lock, and
/// one in 25 outlives the lock's TTL on watchdog renewals. The list must alternate start/end
/// of the same section: any overlap means mutual exclusion was violated.
///
/// A lease-based lock is lost, legitimately, when its holder stalls for longer than the TTL
/// (an overloaded test machine can stall a thread for a second). Such a loss must be explained
/// by the client's own timing — the watchdog went a whole TTL without renewing, or the section
/// outlived the TTL — and its section's markers are left out of the overlap check (another
/// client may rightly have entered). A loss without a stall fails the test.
#[test]
fn lock_mutual_exclusion_under_contention() {
    let server = TestServer::start(ServerKind::Shardis, &["--shards", "4"]);
    let port = server.port();
    let duration = secs_env("SHARDIS_LOCK_SECS", 10);
    let deadline = Instant::now() + duration;
    let acquired = Arc::new(AtomicU64::new(0));
    let lost = Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let threads: Vec<_> = (0..50)
        .map(|id| {
            let (acquired, lost) = (acquired.clone(), lost.clone());
            std::thread::spawn(move || {
                let mut c = Conn::connect(port).expect("connect");
                let mut n = 0u64;
                while Instant::now() < deadline {
                    let long = n % 25 == 24;
                    let ttl = if long { 1_000 } else { 10_000 };
                    let Some(l) = lock::acquire(&mut c, "res:lock", ttl, Duration::from_secs(2))
                        .expect("acquire")
                    else {
                        continue;
                    };
                    let t0 = Instant::now();
                    let dog = if long {
                        Some(lock::Watchdog::start(port, &l).expect("watchdog"))
                    } else {
                        None
                    };
                    let start = format!("s:{id}:{n}");
                    c.cmd(&[b"RPUSH", b"res:log", start.as_bytes()])
                        .expect("rpush");
                    if long {
                        std::thread::sleep(Duration::from_millis(1_500));
                    }
                    let end = format!("e:{id}:{n}");
                    c.cmd(&[b"RPUSH", b"res:log", end.as_bytes()])
                        .expect("rpush");
                    let gap_ms = dog.map(|d| d.stop()).unwrap_or(0);
                    let held = t0.elapsed();
                    if !lock::release(&mut c, &l).expect("release") {
                        assert!(
                            gap_ms >= ttl || held >= Duration::from_millis(ttl),
                            "lost the lock without a client stall: ttl {ttl} ms, held {held:?}, \
                             longest unrenewed stretch {gap_ms} ms"
                        );
                        lost.lock().expect("lost").push(format!("{id}:{n}"));
                    }
                    acquired.fetch_add(1, Ordering::Relaxed);
                    n += 1;
                }
            })
        })
        .collect();
    for t in threads {
        t.join().expect("client thread");
    }
    let mut c = Conn::connect(port).expect("connect");
    let Reply::Array(Some(items)) = c
        .cmd(&[b"LRANGE", b"res:log", b"0", b"-1"])
        .expect("lrange")
    else {
        panic!("LRANGE did not return an array");
    };
    let total = acquired.load(Ordering::Relaxed);
    assert_eq!(items.len() as u64, 2 * total, "markers missing");
    assert!(
        total >= 50,
        "only {total} critical sections in {duration:?}"
    );
    let lost = lost.lock().expect("lost").clone();
    let markers: Vec<String> = items
        .iter()
        .map(|item| match item {
            Reply::Bulk(Some(b)) => String::from_utf8_lossy(b).into_owned(),
            other => panic!("unexpected list item {other:?}"),
        })
        .filter(|m| !lost.iter().any(|l| m.get(2..) == Some(l.as_str())))
        .collect();
    for pair in markers.chunks(2) {
        let (a, b) = (&pair[0], pair.get(1).expect("an end marker"));
        assert!(
            a.starts_with("s:") && b.starts_with("e:") && a[2..] == b[2..],
            "critical sections overlap: {a} then {b}"
        );
    }
    eprintln!(
        "{total} critical sections, {} leases lost to client stalls",
        lost.len()
    );
    assert!(
        (lost.len() as u64) * 10 <= total,
        "{} of {total} leases lost",
        lost.len()
    );
    assert_eq!(
        c.cmd(&[b"EXISTS", b"res:lock"]).expect("exists"),
        Reply::Int(0),
        "lock left behind"
    );
}

const TRANSFER: &str = "local from, to, amt \
    if #KEYS == 2 then from, to, amt = KEYS[1], KEYS[2], tonumber(ARGV[1]) \
    else from, to, amt = ARGV[1], ARGV[2], tonumber(ARGV[3]) end \
    local v = tonumber(redis.call('get', from)) \
    if v < amt then return 0 end \
    redis.call('decrby', from, amt) \
    redis.call('incrby', to, amt) \
    return 1";

const SUM: &str =
    "local s = 0 for i = 1, #ARGV do s = s + tonumber(redis.call('get', ARGV[i])) end return s";

/// Writers move amounts between keys on different shards with scripts (half declaring the
/// keys, half touching undeclared ones); readers sum every key with a script and with MGET
/// and must always see the same total.
#[test]
fn scripts_are_atomic_across_shards() {
    let server = TestServer::start(ServerKind::Shardis, &["--shards", "4"]);
    let port = server.port();
    let accounts: Vec<String> = (0..16).map(|i| format!("acct:{i}")).collect();
    let mut c = Conn::connect(port).expect("connect");
    for a in &accounts {
        c.cmd(&[b"SET", a.as_bytes(), b"1000"]).expect("set");
    }
    let total = 16 * 1000;
    let duration = secs_env("SHARDIS_ATOMIC_SECS", 5);
    let stop = Arc::new(AtomicBool::new(false));
    let moved = Arc::new(AtomicU64::new(0));
    let reads = Arc::new(AtomicU64::new(0));
    let mut threads = Vec::new();
    for w in 0..6u64 {
        let (stop, moved, accounts) = (stop.clone(), moved.clone(), accounts.clone());
        threads.push(std::thread::spawn(move || {
            let mut c = Conn::connect(port).expect("connect");
            let mut x = w * 7919 + 1;
            while !stop.load(Ordering::Relaxed) {
                x = x
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                let a = &accounts[(x >> 33) as usize % 16];
                let b = &accounts[(x >> 40) as usize % 16];
                let amt = ((x >> 50) % 50 + 1).to_string();
                let r = if x & 1 == 0 {
                    c.script(TRANSFER, &[a.as_bytes(), b.as_bytes()], &[amt.as_bytes()])
                } else {
                    c.script(TRANSFER, &[], &[a.as_bytes(), b.as_bytes(), amt.as_bytes()])
                };
                match r.expect("transfer") {
                    Reply::Int(_) => moved.fetch_add(1, Ordering::Relaxed),
                    other => panic!("transfer failed: {other:?}"),
                };
            }
        }));
    }
    for r in 0..3 {
        let (stop, reads, accounts) = (stop.clone(), reads.clone(), accounts.clone());
        threads.push(std::thread::spawn(move || {
            let mut c = Conn::connect(port).expect("connect");
            let names: Vec<&[u8]> = accounts.iter().map(|a| a.as_bytes()).collect();
            while !stop.load(Ordering::Relaxed) {
                let sum = if r == 0 {
                    mget_sum(&mut c, &names)
                } else {
                    match c.script(SUM, &[], &names).expect("sum") {
                        Reply::Int(n) => n,
                        other => panic!("sum {other:?}"),
                    }
                };
                assert_eq!(sum, total, "a reader saw an intermediate state");
                reads.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    std::thread::sleep(duration);
    stop.store(true, Ordering::Relaxed);
    for t in threads {
        t.join().expect("thread");
    }
    assert!(moved.load(Ordering::Relaxed) > 0 && reads.load(Ordering::Relaxed) > 0);
}

/// The sum of the integers stored at `names`, read with one MGET.
fn mget_sum(c: &mut Conn, names: &[&[u8]]) -> i64 {
    let mut argv: Vec<&[u8]> = vec![b"MGET"];
    argv.extend_from_slice(names);
    match c.cmd(&argv).expect("mget") {
        Reply::Array(Some(v)) => v.iter().map(int_reply).sum(),
        other => panic!("MGET {other:?}"),
    }
}

fn int_reply(r: &Reply) -> i64 {
    match r {
        Reply::Bulk(Some(b)) => String::from_utf8_lossy(b).parse().expect("number"),
        Reply::Int(n) => *n,
        other => panic!("expected a number, got {other:?}"),
    }
}

/// The MULTI/EXEC twin of `scripts_are_atomic_across_shards`: writers move amounts between
/// keys on different shards, half with a plain MULTI (DECRBY, INCRBY, EXEC), half with the
/// optimistic WATCH/GET/MULTI/SET/SET/EXEC recipe (retried when EXEC returns nil); readers sum
/// every key with MGET and with a MULTI of GETs. Every sum must equal the total, and the
/// recipe's aborted EXECs prove WATCH saw the other writers.
#[test]
fn transactions_are_atomic_across_shards() {
    let server = TestServer::start(ServerKind::Shardis, &["--shards", "4"]);
    let port = server.port();
    let accounts: Vec<String> = (0..16).map(|i| format!("acct:{i}")).collect();
    let mut c = Conn::connect(port).expect("connect");
    for a in &accounts {
        c.cmd(&[b"SET", a.as_bytes(), b"1000"]).expect("set");
    }
    let total: i64 = 16 * 1000;
    let duration = secs_env("SHARDIS_ATOMIC_SECS", 5);
    let stop = Arc::new(AtomicBool::new(false));
    let (moved, aborted, reads) = (
        Arc::new(AtomicU64::new(0)),
        Arc::new(AtomicU64::new(0)),
        Arc::new(AtomicU64::new(0)),
    );
    let mut threads = Vec::new();
    for w in 0..6u64 {
        let (stop, moved, aborted, accounts) = (
            stop.clone(),
            moved.clone(),
            aborted.clone(),
            accounts.clone(),
        );
        threads.push(std::thread::spawn(move || {
            let mut c = Conn::connect(port).expect("connect");
            let mut x = w * 104729 + 3;
            while !stop.load(Ordering::Relaxed) {
                x = x
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                let a = accounts[(x >> 33) as usize % 16].as_bytes();
                let b = accounts[(x >> 40) as usize % 16].as_bytes();
                if a == b {
                    continue;
                }
                let amt = ((x >> 50) % 50 + 1) as i64;
                if w % 2 == 0 {
                    c.cmd(&[b"MULTI"]).expect("multi");
                    c.cmd(&[b"DECRBY", a, amt.to_string().as_bytes()])
                        .expect("q");
                    c.cmd(&[b"INCRBY", b, amt.to_string().as_bytes()])
                        .expect("q");
                    match c.cmd(&[b"EXEC"]).expect("exec") {
                        Reply::Array(Some(v)) if v.len() == 2 => {
                            moved.fetch_add(1, Ordering::Relaxed);
                        }
                        other => panic!("EXEC {other:?}"),
                    }
                } else {
                    c.cmd(&[b"WATCH", a, b]).expect("watch");
                    let va = int_reply(&c.cmd(&[b"GET", a]).expect("get"));
                    let vb = int_reply(&c.cmd(&[b"GET", b]).expect("get"));
                    c.cmd(&[b"MULTI"]).expect("multi");
                    c.cmd(&[b"SET", a, (va - amt).to_string().as_bytes()])
                        .expect("q");
                    c.cmd(&[b"SET", b, (vb + amt).to_string().as_bytes()])
                        .expect("q");
                    match c.cmd(&[b"EXEC"]).expect("exec") {
                        Reply::Array(Some(v)) if v.len() == 2 => {
                            moved.fetch_add(1, Ordering::Relaxed);
                        }
                        Reply::Array(None) => {
                            aborted.fetch_add(1, Ordering::Relaxed);
                        }
                        other => panic!("EXEC {other:?}"),
                    }
                }
            }
        }));
    }
    for r in 0..3 {
        let (stop, reads, accounts) = (stop.clone(), reads.clone(), accounts.clone());
        threads.push(std::thread::spawn(move || {
            let mut c = Conn::connect(port).expect("connect");
            let names: Vec<&[u8]> = accounts.iter().map(|a| a.as_bytes()).collect();
            while !stop.load(Ordering::Relaxed) {
                let sum = if r == 0 {
                    mget_sum(&mut c, &names)
                } else {
                    c.cmd(&[b"MULTI"]).expect("multi");
                    for n in &names {
                        c.cmd(&[b"GET", n]).expect("q");
                    }
                    match c.cmd(&[b"EXEC"]).expect("exec") {
                        Reply::Array(Some(v)) => v.iter().map(int_reply).sum(),
                        other => panic!("read {other:?}"),
                    }
                };
                assert_eq!(sum, total, "a reader saw an intermediate state");
                reads.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    std::thread::sleep(duration);
    stop.store(true, Ordering::Relaxed);
    for t in threads {
        t.join().expect("thread");
    }
    let names: Vec<&[u8]> = accounts.iter().map(|a| a.as_bytes()).collect();
    assert_eq!(mget_sum(&mut c, &names), total);
    let (m, a, r) = (
        moved.load(Ordering::Relaxed),
        aborted.load(Ordering::Relaxed),
        reads.load(Ordering::Relaxed),
    );
    eprintln!("transfers {m}, aborted by WATCH {a}, consistent reads {r}");
    assert!(m > 0 && r > 0);
}

fn is_busy(r: &R) -> bool {
    matches!(r, R::Error(e) if e.starts_with(b"BUSY Redis is busy running a script."))
}

/// A script looping past `busy-reply-threshold` makes every other connection (whatever its
/// shard) get BUSY; SCRIPT KILL ends it, after which everyone is served again. A script that
/// wrote cannot be killed (UNKILLABLE), and SCRIPT KILL with nothing running is NOTBUSY.
#[test]
fn busy_script_and_script_kill() {
    let server = TestServer::start(ServerKind::Shardis, &["--shards", "4"]);
    let mut admin = server.conn();
    assert!(matches!(
        admin.call(&["CONFIG", "SET", "busy-reply-threshold", "100"]),
        R::Status(_)
    ));
    assert!(matches!(admin.call(&["SCRIPT", "KILL"]), R::Error(e) if e.starts_with(b"NOTBUSY")));
    let mut runner = server.conn();
    runner.send(&[b"EVAL", b"local i = 0 while true do i = i + 1 end", b"0"]);
    // Connections land on shards by the kernel's choice: several cover them all.
    let mut others: Vec<RespConn> = (0..12).map(|_| server.conn()).collect();
    for c in others.iter_mut() {
        wait_until("BUSY reply", Duration::from_secs(20), || {
            is_busy(&c.call(&["PING"]))
        });
    }
    assert!(matches!(others[0].call(&["SCRIPT", "KILL"]), R::Status(s) if s == b"OK"));
    let reply = common::decode(&runner.read_reply()).expect("reply");
    assert!(
        matches!(&reply, R::Error(e) if String::from_utf8_lossy(e).contains("Script killed by user with SCRIPT KILL")),
        "{reply:?}"
    );
    for c in others.iter_mut() {
        wait_until(
            "PONG after kill",
            Duration::from_secs(20),
            || matches!(c.call(&["PING"]), R::Status(s) if s == b"PONG"),
        );
    }
    // A script that wrote may not be killed.
    runner.send(&[
        b"EVAL",
        b"redis.call('set', 'x', 1) while true do end",
        b"0",
    ]);
    wait_until("BUSY reply", Duration::from_secs(20), || {
        is_busy(&others[1].call(&["PING"]))
    });
    assert!(
        matches!(others[1].call(&["SCRIPT", "KILL"]), R::Error(e) if e.starts_with(b"UNKILLABLE"))
    );
    // As in Redis, the write check comes before the EVAL/function mismatch check.
    assert!(
        matches!(others[2].call(&["FUNCTION", "KILL"]), R::Error(e) if e.starts_with(b"UNKILLABLE"))
    );
}

/// A BUSY rejection is a rejection like any other for a connection in MULTI: MULTI itself
/// is allowed, a rejected command flags the transaction (EXEC then aborts with "previous
/// errors"), and a rejected EXEC discards it, as Redis's `rejectCommand` does.
#[test]
fn busy_rejections_flag_and_abort_transactions() {
    let server = TestServer::start(ServerKind::Shardis, &["--shards", "2"]);
    let mut admin = server.conn();
    admin.call(&["CONFIG", "SET", "busy-reply-threshold", "10"]);
    admin.call(&["SET", "xx", "1"]);
    let mut runner = server.conn();
    let mut c = server.conn();
    let status = |r: R, want: &[u8]| matches!(&r, R::Status(s) if s == want);

    // MULTI during the busy script, a rejected INCR, then EXEC after the kill.
    runner.send(&[b"EVAL", b"while true do end", b"0"]);
    wait_until("BUSY reply", Duration::from_secs(20), || {
        is_busy(&admin.call(&["PING"]))
    });
    assert!(status(c.call(&["MULTI"]), b"OK"));
    assert!(is_busy(&c.call(&["INCR", "xx"])));
    assert!(status(admin.call(&["SCRIPT", "KILL"]), b"OK"));
    runner.read_reply();
    wait_until("PONG after kill", Duration::from_secs(20), || {
        status(c.call(&["PING", "x"]), b"QUEUED")
    });
    let r = c.call(&["EXEC"]);
    assert!(
        matches!(&r, R::Error(e) if e.starts_with(b"EXECABORT Transaction discarded because of previous errors")),
        "{r:?}"
    );
    assert!(matches!(admin.call(&["GET", "xx"]), R::Bulk(v) if v == b"1"));

    // EXEC itself rejected: the transaction is discarded and the connection leaves MULTI.
    assert!(status(c.call(&["MULTI"]), b"OK"));
    assert!(status(c.call(&["INCR", "xx"]), b"QUEUED"));
    runner.send(&[b"EVAL", b"while true do end", b"0"]);
    wait_until("BUSY reply", Duration::from_secs(20), || {
        is_busy(&admin.call(&["PING"]))
    });
    let r = c.call(&["EXEC"]);
    assert!(
        matches!(&r, R::Error(e) if e.starts_with(b"EXECABORT Transaction discarded because of: BUSY")),
        "{r:?}"
    );
    assert!(status(admin.call(&["SCRIPT", "KILL"]), b"OK"));
    runner.read_reply();
    wait_until(
        "PONG after kill",
        Duration::from_secs(20),
        || matches!(c.call(&["PING", "asdf"]), R::Bulk(v) if v == b"asdf"),
    );
    assert!(matches!(admin.call(&["GET", "xx"]), R::Bulk(v) if v == b"1"));
}

/// A command read in the same loop turn as a script that turns busy, but queued behind it,
/// gets its BUSY reply from the busy pump (its input is already in its buffer, so no poll
/// reports it again). It used to wait for the script's end: a PING sent right after the
/// EVAL went unanswered about once in four rounds. Many rounds make the race likely.
#[test]
fn commands_read_with_a_busy_script_get_busy() {
    let server = TestServer::start(ServerKind::Shardis, &["--shards", "2"]);
    let mut admin = server.conn();
    admin.call(&["CONFIG", "SET", "busy-reply-threshold", "10"]);
    for round in 0..40 {
        let mut runner = server.conn();
        runner.send(&[b"EVAL", b"while true do end", b"0"]);
        wait_until(
            &format!("BUSY reply, round {round}"),
            Duration::from_secs(20),
            || is_busy(&admin.call(&["PING"])),
        );
        let r = admin.call(&["SCRIPT", "KILL"]);
        assert!(matches!(&r, R::Status(s) if s == b"OK"), "{r:?}");
        let r = common::decode(&runner.read_reply()).expect("reply");
        assert!(
            matches!(&r, R::Error(e) if String::from_utf8_lossy(e).contains("killed by user")),
            "{r:?}"
        );
    }
}

/// A connection that closes while a script is busy is freed at once, as in Redis: a replica
/// that drops its link shows as gone in INFO, so a script waiting for that (Redis's "not
/// enough good replicas state change during long script") ends. It used to wait forever,
/// the close being put off until the script's end.
#[test]
fn a_replica_dropping_during_a_busy_script_is_seen_by_it() {
    let master = TestServer::start(ServerKind::Shardis, &["--shards", "2"]);
    let port = master.port().to_string();
    let replica = TestServer::start(
        ServerKind::Shardis,
        &["--shards", "2", "--replicaof", "127.0.0.1", port.as_str()],
    );
    wait_until("replica online", Duration::from_secs(30), || {
        master
            .info_field("replication", "connected_slaves")
            .is_some_and(|v| v == "1")
            && replica
                .info_field("replication", "master_link_status")
                .is_some_and(|v| v == "up")
    });
    let mut admin = master.conn();
    admin.call(&["CONFIG", "SET", "busy-reply-threshold", "10"]);
    let mut runner = master.conn();
    runner.send(&[
        b"EVAL",
        b"while true do local info = redis.call('info','replication') \
          if string.match(info, 'connected_slaves:0') then \
          redis.call('set','x',info) break end end return 1",
        b"1",
        b"x",
    ]);
    wait_until("BUSY reply", Duration::from_secs(20), || {
        is_busy(&admin.call(&["PING"]))
    });
    let mut r = replica.conn();
    r.call(&["REPLICAOF", "NO", "ONE"]);
    let reply = common::decode(&runner.read_reply()).expect("reply");
    assert!(matches!(reply, R::Int(1)), "{reply:?}");
    let x = admin.call(&["GET", "x"]);
    assert!(
        matches!(&x, R::Bulk(v) if String::from_utf8_lossy(v).contains("connected_slaves:0")),
        "{x:?}"
    );
}

/// On a stale replica (link down, `replica-serve-stale-data no`) an `allow-stale` function
/// runs, but its calls of data commands fail (`scriptVerifyAllowStale`); commands flagged
/// STALE (INFO) still work, and a function without the flag gets MASTERDOWN.
#[test]
fn allow_stale_functions_on_a_stale_replica() {
    let server = TestServer::start(ServerKind::Shardis, &["--shards", "2"]);
    let mut c = server.conn();
    let lib = "#!lua name=test\n\
        redis.register_function{function_name='f1', callback=function() return 'hello' end, flags={'no-writes'}}\n\
        redis.register_function{function_name='f2', callback=function() return 'hello' end, flags={'allow-stale', 'no-writes'}}\n\
        redis.register_function{function_name='f3', callback=function() return redis.call('get', 'x') end, flags={'allow-stale', 'no-writes'}}\n\
        redis.register_function{function_name='f4', callback=function() return redis.call('info', 'server') end, flags={'allow-stale', 'no-writes'}}";
    assert!(matches!(c.call(&["FUNCTION", "LOAD", lib]), R::Bulk(v) if v == b"test"));
    c.call(&["CONFIG", "SET", "replica-serve-stale-data", "no"]);
    // Nothing listens on port 1: the link stays down.
    c.call(&["REPLICAOF", "127.0.0.1", "1"]);
    let r = c.call(&["FCALL", "f1", "0"]);
    assert!(
        matches!(&r, R::Error(e) if e.starts_with(b"MASTERDOWN")),
        "{r:?}"
    );
    assert!(matches!(c.call(&["FCALL", "f2", "0"]), R::Bulk(v) if v == b"hello"));
    let r = c.call(&["FCALL", "f3", "0"]);
    assert!(
        matches!(&r, R::Error(e) if e.starts_with(b"ERR ") && String::from_utf8_lossy(e).contains("Can not execute the command on a stale replica")),
        "{r:?}"
    );
    assert!(
        matches!(c.call(&["FCALL", "f4", "0"]), R::Bulk(v) if String::from_utf8_lossy(&v).contains("redis_version"))
    );
    c.call(&["REPLICAOF", "NO", "ONE"]);
    assert!(matches!(c.call(&["FCALL", "f3", "0"]), R::Null));
}

/// MONITOR shows EVAL and FCALL (skip-monitor commands Redis feeds itself) before the
/// commands they run, which appear as `[db lua] ...`, whichever shard the monitor is on.
#[test]
fn monitor_shows_scripts_then_their_commands() {
    let server = TestServer::start(ServerKind::Shardis, &["--shards", "2"]);
    let mut c = server.conn();
    let lib = "#!lua name=m\nredis.register_function('mf', function() return redis.call('set', 'foo', 'bar') end)";
    assert!(matches!(c.call(&["FUNCTION", "LOAD", lib]), R::Bulk(_)));
    // Monitors on several connections cover both shards.
    let mut mons: Vec<RespConn> = (0..4).map(|_| server.conn()).collect();
    for m in mons.iter_mut() {
        assert!(matches!(m.call(&["MONITOR"]), R::Status(s) if s == b"OK"));
    }
    c.call(&["EVAL", "redis.call('set', KEYS[1], ARGV[1])", "1", "k", "v"]);
    c.call(&["FCALL", "mf", "0"]);
    for m in mons.iter_mut() {
        let lines: Vec<String> = (0..4)
            .map(|_| match common::decode(&m.read_reply()) {
                Ok(R::Status(s)) => String::from_utf8_lossy(&s).into_owned(),
                other => panic!("{other:?}"),
            })
            .collect();
        assert!(
            lines[0].contains(r#""EVAL" "redis.call('set', KEYS[1], ARGV[1])" "1" "k" "v""#),
            "{lines:?}"
        );
        assert!(lines[1].ends_with(r#"[0 lua] "set" "k" "v""#), "{lines:?}");
        assert!(lines[2].contains(r#""FCALL" "mf" "0""#), "{lines:?}");
        assert!(
            lines[3].ends_with(r#"[0 lua] "set" "foo" "bar""#),
            "{lines:?}"
        );
    }
}

/// SORT of a set with a constant BY returns the set's own order to a client, but a script
/// gets it sorted (ALPHA), as in Redis, so that what it does next does not depend on a hash
/// table's order.
#[test]
fn sort_by_constant_is_ordered_for_scripts() {
    let server = TestServer::start(ServerKind::Shardis, &["--shards", "2"]);
    let mut c = server.conn();
    let members = ["z", "b", "aa", "a", "azz", "c"];
    let mut sadd = vec!["SADD", "myset"];
    sadd.extend(members);
    c.call(&sadd);
    let r = c.call(&[
        "EVAL",
        "return redis.call('sort', KEYS[1], 'by', '_')",
        "1",
        "myset",
    ]);
    let got: Vec<Vec<u8>> = match r {
        R::Array(items) => items
            .into_iter()
            .map(|i| match i {
                R::Bulk(b) => b,
                other => panic!("{other:?}"),
            })
            .collect(),
        other => panic!("{other:?}"),
    };
    let want: Vec<Vec<u8>> = ["a", "aa", "azz", "b", "c", "z"]
        .iter()
        .map(|m| m.as_bytes().to_vec())
        .collect();
    assert_eq!(got, want);
}

/// FUNCTION LIST WITHCODE, decoded, with each library's functions sorted: Redis lists a
/// library's functions in its own hash order.
fn function_list(c: &mut RespConn) -> common::Reply {
    let mut r = c.call(&["FUNCTION", "LIST", "WITHCODE"]);
    if let common::Reply::Array(libs) = &mut r {
        for lib in libs.iter_mut() {
            if let common::Reply::Array(fields) = lib {
                for pair in fields.chunks_mut(2) {
                    if pair[0].as_bytes() == Some(b"functions") {
                        if let common::Reply::Array(fs) = &mut pair[1] {
                            fs.sort_by_key(|f| format!("{f:?}"));
                        }
                    }
                }
            }
        }
    }
    r
}

const LIBRARY: &str = "#!lua name=interop\n\
    redis.register_function('iget', function(keys, args) return redis.call('get', keys[1]) end)\n\
    redis.register_function{function_name='iecho', callback=function(keys, args) return args[1] end, flags={'no-writes'}, description='echoes'}";

/// FUNCTION DUMP payloads are accepted both ways between real Redis 7.0 and shardis, and the
/// restored library lists and runs the same.
#[test]
fn function_dump_restore_interop_with_redis() {
    let redis = TestServer::start(ServerKind::Redis, &[]);
    let shardis = TestServer::start(ServerKind::Shardis, &["--shards", "2"]);
    let (mut r, mut s) = (redis.conn(), shardis.conn());
    for round in 0..2 {
        let (from, to) = if round == 0 {
            (&mut r, &mut s)
        } else {
            (&mut s, &mut r)
        };
        assert!(matches!(to.call(&["FUNCTION", "FLUSH"]), R::Status(_)));
        assert!(matches!(from.call(&["FUNCTION", "FLUSH"]), R::Status(_)));
        assert!(matches!(
            from.call(&["FUNCTION", "LOAD", LIBRARY]),
            R::Bulk(_)
        ));
        let payload = from.cmd(&[b"FUNCTION", b"DUMP"]);
        let R::Bulk(payload) = common::decode(&payload).expect("dump") else {
            panic!("FUNCTION DUMP did not return a payload");
        };
        let restored = to.cmd(&[b"FUNCTION", b"RESTORE", &payload]);
        assert_eq!(restored, b"+OK\r\n", "{}", common::show(&restored));
        assert_eq!(
            function_list(from),
            function_list(to),
            "FUNCTION LIST WITHCODE differs"
        );
        assert_eq!(
            to.cmd(&[b"FCALL", b"iecho", b"0", b"hello"]),
            b"$5\r\nhello\r\n".to_vec()
        );
        let again = to.cmd(&[b"FUNCTION", b"RESTORE", &payload]);
        assert!(
            common::show(&again).contains("already exists"),
            "{}",
            common::show(&again)
        );
        let bad = to.cmd(&[b"FUNCTION", b"RESTORE", b"garbage payload"]);
        assert!(common::show(&bad).contains("payload version or checksum are wrong"));
    }
}

/// DEBUG RELOAD keeps function libraries (NOFLUSH without MERGE refuses the clash, as Redis),
/// a replica's full sync brings them, and CLIENT KILL takes clients out of
/// `connected_clients` at once.
#[test]
fn functions_survive_reload_and_full_sync_and_kill_counts() {
    let master = TestServer::start(ServerKind::Shardis, &["--enable-debug-command", "yes"]);
    let mut c = master.conn();
    // no-writes: a read-only replica refuses functions that may write.
    let lib = "#!lua name=lib\nredis.register_function{function_name='f', \
               callback=function() return 'hi' end, flags={'no-writes'}}";
    assert_eq!(c.call(&["function", "load", lib]).as_str(), Some("lib"));
    assert_eq!(c.call(&["debug", "reload"]).as_str(), Some("OK"));
    assert_eq!(c.call(&["fcall", "f", "0"]).as_str(), Some("hi"));
    let clash = c.call(&["debug", "reload", "noflush"]);
    assert!(clash.is_error(), "{clash:?}");
    assert_eq!(
        c.call(&["debug", "reload", "noflush", "merge"]).as_str(),
        Some("OK")
    );
    assert_eq!(c.call(&["fcall", "f", "0"]).as_str(), Some("hi"));

    let replica = TestServer::start(ServerKind::Shardis, &[]);
    let mut r = replica.conn();
    let port = master.port().to_string();
    assert_eq!(
        r.call(&["replicaof", "127.0.0.1", &port]).as_str(),
        Some("OK")
    );
    wait_until("the replica's full sync", Duration::from_secs(20), || {
        r.call(&["fcall", "f", "0"]).as_str() == Some("hi")
    });

    let extra: Vec<RespConn> = (0..3).map(|_| master.conn()).collect();
    let clients = |c: &mut RespConn| {
        let info = c.call(&["info", "clients"]);
        let text = info.as_str().unwrap_or("").to_string();
        text.lines()
            .find_map(|l| l.strip_prefix("connected_clients:"))
            .and_then(|v| v.trim().parse::<i64>().ok())
            .unwrap_or(-1)
    };
    wait_until(
        "the extra clients registered",
        Duration::from_secs(10),
        || clients(&mut c) >= 4,
    );
    let before = clients(&mut c);
    let killed = c.call(&["client", "kill", "type", "normal", "skipme", "yes"]);
    assert_eq!(
        killed.as_int(),
        Some(before - 1 - 1),
        "the replica's link is not normal"
    );
    assert_eq!(
        clients(&mut c),
        2,
        "killed clients are gone at once (us and the replica)"
    );
    drop(extra);
}

// ---- The Lua debugger (SCRIPT DEBUG) ----

/// A debugging script: locals, a table, redis.debug, a write, a read, redis.breakpoint.
const LDB_SCRIPT: &str = "local a = 1\nlocal t = {1,2,'x'}\nredis.debug('hello', a, t)\nredis.call('set', KEYS[1], ARGV[1])\nlocal v = redis.call('get', KEYS[1])\nredis.breakpoint()\nlocal e = redis.pcall('incr', KEYS[1])\nreturn {a, v}\n";

/// Runs a debugging session on `server`: SCRIPT DEBUG `mode`, EVAL of `LDB_SCRIPT`, then each
/// debugger command (split on blanks); returns every raw reply, the last one being all the
/// bytes until the server closed the connection.
fn ldb_transcript(server: &TestServer, mode: &str, commands: &[&str]) -> Vec<Vec<u8>> {
    let mut c = server.conn();
    let mut out = vec![c.cmd(&[b"SCRIPT", b"DEBUG", mode.as_bytes()])];
    out.push(c.cmd(&[b"EVAL", LDB_SCRIPT.as_bytes(), b"1", b"k1", b"hello"]));
    let Some((last, before)) = commands.split_last() else {
        return out;
    };
    for cmd in before {
        let args: Vec<&[u8]> = cmd.split(' ').map(|a| a.as_bytes()).collect();
        out.push(c.cmd(&args));
    }
    let args: Vec<&[u8]> = last.split(' ').map(|a| a.as_bytes()).collect();
    c.send(&args);
    let (rest, closed) = c.read_until_close(Duration::from_secs(10));
    assert!(
        closed,
        "the session's connection must close after the EVAL reply"
    );
    out.push(rest);
    out
}

fn show_all(t: &[Vec<u8>]) -> String {
    t.iter()
        .map(|r| String::from_utf8_lossy(r).into_owned())
        .collect::<Vec<_>>()
        .join("\n")
}

/// A synchronous session (steps, prints, breakpoints, list, trace, eval, redis, maxlen, the
/// unknown-command error, redis.debug and redis.breakpoint stops) gives byte-identical
/// replies on Redis 7.0 and shardis, and its writes stay (sync mode).
#[test]
fn ldb_sync_session_matches_redis() {
    let commands = [
        "help",
        "s",
        "p",
        "p a",
        "p KEYS",
        "p nosuch",
        "b 5",
        "b",
        "b x 0",
        "b 5",
        "b 99",
        "c",
        "l",
        "l 3 1",
        "w",
        "t",
        "e a+1",
        "e x =",
        "e {1,{2,{3}},k='v'}",
        "r get k1",
        "r",
        "maxlen 70",
        "r set k2 aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
        "r get k2",
        "maxlen",
        "maxlen 0",
        "r hgetall nokey",
        "r incr k1",
        "b -5",
        "b -5",
        "bogus",
        "c",
        "s",
        "c",
    ];
    let mut transcripts = Vec::new();
    for kind in [ServerKind::Redis, ServerKind::Shardis] {
        let server = TestServer::start(kind, &[]);
        let t = ldb_transcript(&server, "sync", &commands);
        let mut c = server.conn();
        assert_eq!(
            c.call(&["GET", "k1"]),
            R::Bulk(b"hello".to_vec()),
            "{kind:?}"
        );
        transcripts.push(t);
    }
    let (redis, ours) = (&transcripts[0], &transcripts[1]);
    assert!(
        show_all(ours).contains("<debug> line 3: \"hello\", 1, {1; 2; \"x\"}"),
        "{}",
        show_all(ours)
    );
    assert!(
        show_all(ours).contains("<endsession>"),
        "{}",
        show_all(ours)
    );
    for (i, (a, b)) in redis.iter().zip(ours.iter()).enumerate() {
        assert_eq!(
            String::from_utf8_lossy(a),
            String::from_utf8_lossy(b),
            "reply {i} differs"
        );
    }
    assert_eq!(redis.len(), ours.len());
}

/// `abort` ends the script with Redis's error (dataset changes made so far are kept in sync
/// mode), and a forked session (SCRIPT DEBUG YES) rolls every change back.
#[test]
fn ldb_abort_and_forked_rollback_match_redis() {
    for kind in [ServerKind::Redis, ServerKind::Shardis] {
        let server = TestServer::start(kind, &[]);
        // Sync: stop after the SET (line 5), abort.
        let t = ldb_transcript(&server, "sync", &["b 5", "c", "abort"]);
        let last = String::from_utf8_lossy(t.last().map_or(&[][..], |v| v)).into_owned();
        assert!(
            last.contains("-ERR script aborted for user request script: ")
                && last.ends_with(", on @user_script:5.\r\n"),
            "{kind:?}: {last}"
        );
        assert!(
            last.starts_with("*1\r\n+<endsession>\r\n"),
            "{kind:?}: {last}"
        );
        let mut c = server.conn();
        assert_eq!(
            c.call(&["GET", "k1"]),
            R::Bulk(b"hello".to_vec()),
            "{kind:?}"
        );
        c.call(&["DEL", "k1"]);
        // Forked: run to the end; the child's writes never reach the dataset.
        let t = ldb_transcript(&server, "yes", &["c", "c"]);
        let all = show_all(&t);
        assert!(all.contains("<endsession>"), "{kind:?}: {all}");
        assert!(all.contains("$5\r\nhello"), "{kind:?}: {all}");
        assert_eq!(
            c.call(&["GET", "k1"]),
            R::Null,
            "{kind:?}: forked session leaked a write"
        );
        assert_eq!(c.call(&["PING"]), R::Status(b"PONG".to_vec()));
    }
}

/// A client that disconnects while the script is stopped ends the stepping: the script
/// runs to its end (its writes land), and the server serves others.
#[test]
fn ldb_client_disconnect_mid_session_finishes_the_script() {
    let server = TestServer::start(ServerKind::Shardis, &["--shards", "2"]);
    let mut c = server.conn();
    assert_eq!(
        c.call(&["SCRIPT", "DEBUG", "SYNC"]),
        R::Status(b"OK".to_vec())
    );
    let first = c.cmd(&[b"EVAL", LDB_SCRIPT.as_bytes(), b"1", b"k1", b"bye"]);
    assert!(String::from_utf8_lossy(&first).contains("Stopped at 1"));
    drop(c);
    let mut other = server.conn();
    wait_until("the script finished", Duration::from_secs(20), || {
        other.call(&["GET", "k1"]) == R::Bulk(b"bye".to_vec())
    });
    assert_eq!(other.call(&["PING"]), R::Status(b"PONG".to_vec()));
    server.assert_alive();
}

/// Redis's protocol safety tests: NUL bytes in debugger commands, a `redis` command with 100
/// arguments, malformed input (protocol error ends the script), and the server lives on.
#[test]
fn ldb_protocol_safety() {
    let server = TestServer::start(ServerKind::Shardis, &[]);
    let mut c = server.conn();
    assert_eq!(
        c.call(&["SCRIPT", "DEBUG", "SYNC"]),
        R::Status(b"OK".to_vec())
    );
    c.cmd(&[b"EVAL", b"return 'hello'", b"0"]);
    for arg in [&b"hello\0world"[..], b"hello\0", b"\0hello", b"\0hello\0"] {
        let r = c.cmd(&[arg]);
        assert!(
            String::from_utf8_lossy(&r).contains("Unknown Redis Lua debugger command"),
            "{}",
            String::from_utf8_lossy(&r)
        );
    }
    let mut big = b"*101\r\n$5\r\nredis\r\n".to_vec();
    for _ in 0..100 {
        big.extend_from_slice(b"$4\r\ntest\r\n");
    }
    c.send_raw(&big);
    let r = String::from_utf8_lossy(&c.read_reply()).into_owned();
    assert!(
        r.contains("Unknown Redis command called from script"),
        "{r}"
    );
    assert!(
        r.contains("<redis> test test test test test test test test test test ... (89 more)"),
        "{r}"
    );
    // Not a multi-bulk command: the debugger gives up with a protocol error.
    c.send_raw(b"garbage\r\n");
    let (rest, closed) = c.read_until_close(Duration::from_secs(10));
    assert!(closed);
    let rest = String::from_utf8_lossy(&rest).into_owned();
    assert!(
        rest.contains("<endsession>") && rest.contains("-ERR protocol error"),
        "{rest}"
    );
    let mut c = server.conn();
    assert_eq!(c.call(&["PING"]), R::Status(b"PONG".to_vec()));
    // EVALSHA cannot be debugged; SCRIPT DEBUG NO turns debugging off again.
    assert_eq!(
        c.call(&["SCRIPT", "DEBUG", "YES"]),
        R::Status(b"OK".to_vec())
    );
    let sha = "a".repeat(40);
    assert_eq!(
        c.call(&["EVALSHA", &sha, "0"]),
        R::Error(b"ERR Please use EVAL instead of EVALSHA for debugging".to_vec())
    );
    assert_eq!(
        c.call(&["SCRIPT", "DEBUG", "NO"]),
        R::Status(b"OK".to_vec())
    );
    assert_eq!(c.call(&["EVAL", "return 1", "0"]), R::Int(1));
    assert_eq!(
        c.call(&["SCRIPT", "DEBUG", "maybe"]),
        R::Error(b"ERR Use SCRIPT DEBUG YES/SYNC/NO".to_vec())
    );
    server.assert_alive();
}

fn used_memory_lua(c: &mut RespConn) -> u64 {
    let R::Bulk(info) = c.call(&["INFO", "memory"]) else {
        panic!("INFO memory");
    };
    let info = String::from_utf8_lossy(&info).into_owned();
    info.lines()
        .find_map(|l| l.strip_prefix("used_memory_lua:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no used_memory_lua in {info}"))
}

/// Pipelines `count` copies of `commands` and reads all their replies.
fn pipeline(c: &mut RespConn, commands: &[Vec<&[u8]>], count: usize) {
    let mut bytes = Vec::new();
    for cmd in commands {
        bytes.extend(common::resp::encode_command(cmd));
    }
    for _ in 0..count {
        c.send_raw(&bytes);
    }
    for _ in 0..count * commands.len() {
        let r = c.read_reply();
        assert!(!r.starts_with(b"-"), "{}", String::from_utf8_lossy(&r));
    }
}

/// Redis's "EVAL does not leak in the Lua stack", in both of its forms: 10,000 EVALs, and
/// FUNCTION LOAD REPLACE + FCALL pairs, leave the interpreter near its size after the first
/// run (a replaced library is collected at once, not left for a doubled heap).
#[test]
fn lua_memory_stays_bounded_over_many_runs() {
    let server = TestServer::start(ServerKind::Shardis, &[]);
    let mut c = server.conn();
    c.call(&["SCRIPT", "FLUSH"]);
    c.call(&["SET", "x", "0"]);
    let eval: Vec<&[u8]> = vec![b"EVAL", b"return redis.call(\"incr\",KEYS[1])", b"1", b"x"];
    pipeline(&mut c, &[eval], 10_000);
    assert_eq!(c.call(&["GET", "x"]), R::Bulk(b"10000".to_vec()));
    let after_evals = used_memory_lua(&mut c);
    assert!(after_evals < 100 * 1024, "used_memory_lua {after_evals}");
    // Each library holds a 3,000-element table (about 48 kB): left to the incremental
    // collector, replaced ones pile up until the heap has doubled.
    let lib = b"#!lua name=test\nlocal t = {}\nfor i = 1, 3000 do t[i] = i end\nredis.register_function('test', function(KEYS, ARGV)\n return redis.call(\"incr\",KEYS[1]) + #t - 3000 \nend)";
    let load: Vec<&[u8]> = vec![b"FUNCTION", b"LOAD", b"REPLACE", lib];
    let call: Vec<&[u8]> = vec![b"FCALL", b"test", b"1", b"x"];
    pipeline(&mut c, &[load.clone(), call.clone()], 1);
    c.call(&["SCRIPT", "FLUSH"]);
    let base = used_memory_lua(&mut c);
    pipeline(&mut c, &[load, call], 1_000);
    let after = used_memory_lua(&mut c);
    assert!(
        after < base + 16 * 1024,
        "used_memory_lua grew from {base} to {after} over 1,000 library replaces"
    );
}

/// A deep script (Redis's cmsgpack circular-references test: nested tables 16 deep, a hex
/// string grown byte by byte) grows the interpreter's internal tables; SCRIPT FLUSH and
/// FUNCTION FLUSH bring it back near its fresh size, as Redis's new interpreter does.
#[test]
fn flush_gives_back_what_deep_scripts_grew() {
    let server = TestServer::start(ServerKind::Shardis, &[]);
    let mut c = server.conn();
    let body = "local a = {x=nil,y=5}\nlocal b = {x=a}\na['x'] = b\nlocal encoded = cmsgpack.pack(a)\nlocal h = ''\nfor i = 1, #encoded do h = h .. string.format('%02x', string.byte(encoded, i)) end\nlocal re = cmsgpack.unpack(encoded)\nreturn {h, re.y}";
    let lib = format!(
        "#!lua name=deep\nredis.register_function('deep', function(KEYS, ARGV)\n{body}\nend)"
    );
    for _ in 0..3 {
        assert!(matches!(c.call(&["EVAL", body, "0"]), R::Array(_)));
        assert!(matches!(
            c.call(&["FUNCTION", "LOAD", "REPLACE", &lib]),
            R::Bulk(_)
        ));
        assert!(matches!(c.call(&["FCALL", "deep", "0"]), R::Array(_)));
    }
    c.call(&["FUNCTION", "FLUSH"]);
    c.call(&["SCRIPT", "FLUSH"]);
    let after = used_memory_lua(&mut c);
    assert!(
        after < 100 * 1024,
        "used_memory_lua {after} after the flushes"
    );
}

/// EXEC is admitted on the flags of what it queued, as Redis's `processCommand` does with
/// `mstate.cmd_flags`: a queued write makes EXEC a write (NOREPLICAS on a master short of
/// replicas, READONLY once the server became a replica), a queued command that may not run
/// stale makes it MASTERDOWN on a stale replica, and a queued script counts its declared
/// flags (a shebang without `no-writes`, a function without flags) while one in
/// compatibility mode runs and fails inside. Every reply is compared with real Redis 7.0.
#[test]
fn exec_is_refused_on_its_queued_flags_like_redis() {
    let transcript = |kind: ServerKind| -> Vec<String> {
        let server = TestServer::start(kind, &[]);
        let mut admin = server.conn();
        let mut log = Vec::new();
        let mut note =
            |what: &str, reply: Vec<u8>| log.push(format!("{what}: {}", common::show(&reply)));
        let lib = "#!lua name=wlib\n\
            redis.register_function('fw', function() return 1 end)\n\
            redis.register_function{function_name='fr', callback=function() return 2 end, flags={'no-writes'}}";
        note("load", admin.cmd(&[b"FUNCTION", b"LOAD", lib.as_bytes()]));
        let sha = admin.cmd(&[b"SCRIPT", b"LOAD", b"#!lua\nreturn 3"]);
        let sha = String::from_utf8_lossy(&sha[5..45]).into_owned();
        note("set", admin.cmd(&[b"SET", b"xx", b"1"]));

        // NOREPLICAS after queueing a write; a transaction of reads still runs.
        let mut c = server.conn();
        note("multi", c.cmd(&[b"MULTI"]));
        note("incr", c.cmd(&[b"INCR", b"xx"]));
        let mut r = server.conn();
        note("multi r", r.cmd(&[b"MULTI"]));
        note("get r", r.cmd(&[b"GET", b"xx"]));
        note(
            "min",
            admin.cmd(&[b"CONFIG", b"SET", b"min-replicas-to-write", b"2"]),
        );
        note("exec write", c.cmd(&[b"EXEC"]));
        note("exec read", r.cmd(&[b"EXEC"]));
        note("get", admin.cmd(&[b"GET", b"xx"]));
        note(
            "min 0",
            admin.cmd(&[b"CONFIG", b"SET", b"min-replicas-to-write", b"0"]),
        );

        // Scripts queued on a master, EXEC after the server became a (non-stale) replica.
        let queued: Vec<Vec<&[u8]>> = vec![
            vec![b"EVAL", b"#!lua\nreturn 1", b"0"],
            vec![b"EVAL", b"redis.call('set','x',1)\nreturn 1", b"1", b"x"],
            vec![
                b"EVAL",
                b"#!lua flags=no-writes\nreturn redis.call('get','xx')",
                b"1",
                b"xx",
            ],
            vec![b"EVALSHA", sha.as_bytes(), b"0"],
            vec![b"FCALL", b"fw", b"0"],
            vec![b"FCALL", b"fr", b"0"],
            vec![b"EVAL_RO", b"#!lua flags=no-writes\nreturn 4", b"0"],
        ];
        let mut conns: Vec<RespConn> = queued.iter().map(|_| server.conn()).collect();
        for (c, q) in conns.iter_mut().zip(&queued) {
            note("multi", c.cmd(&[b"MULTI"]));
            note("queue", c.cmd(q));
        }
        // Nothing listens on port 1: the link stays down (stale data is served by default).
        note("replicaof", admin.cmd(&[b"REPLICAOF", b"127.0.0.1", b"1"]));
        for (c, q) in conns.iter_mut().zip(&queued) {
            let what = format!("exec {}", String::from_utf8_lossy(q[1]).replace('\n', " "));
            note(&what, c.cmd(&[b"EXEC"]));
        }
        // Queued on the replica: a write script is refused while queueing.
        note("multi", c.cmd(&[b"MULTI"]));
        note(
            "queue write script",
            c.cmd(&[b"EVAL", b"#!lua\nreturn 1", b"0"]),
        );
        note(
            "queue ro script",
            c.cmd(&[b"EVAL", b"#!lua flags=no-writes\nreturn 5", b"0"]),
        );
        note("exec", c.cmd(&[b"EXEC"]));

        // MASTERDOWN: reads and PING queued before the replica went stale.
        note("no one", admin.cmd(&[b"REPLICAOF", b"NO", b"ONE"]));
        note(
            "stale",
            admin.cmd(&[b"CONFIG", b"SET", b"replica-serve-stale-data", b"no"]),
        );
        for q in [
            &[b"GET".as_slice(), b"xx"][..],
            &[b"PING"],
            &[b"INFO", b"nosuchsection"],
        ] {
            note("multi", c.cmd(&[b"MULTI"]));
            note("queue", c.cmd(q));
            note("replicaof", admin.cmd(&[b"REPLICAOF", b"127.0.0.1", b"1"]));
            note("exec", c.cmd(&[b"EXEC"]));
            note("no one", admin.cmd(&[b"REPLICAOF", b"NO", b"ONE"]));
        }
        // Outside a transaction on the stale replica: only allow-stale scripts start.
        note("replicaof", admin.cmd(&[b"REPLICAOF", b"127.0.0.1", b"1"]));
        for body in [
            &b"return redis.call('get','xx')"[..],
            b"#!lua flags=no-writes\nreturn 1",
            b"#!lua flags=allow-stale,no-writes\nreturn 1",
        ] {
            note("stale eval", c.cmd(&[b"EVAL", body, b"1", b"xx"]));
        }
        note("no one", admin.cmd(&[b"REPLICAOF", b"NO", b"ONE"]));
        note("get", admin.cmd(&[b"GET", b"xx"]));
        log
    };
    let redis = transcript(ServerKind::Redis);
    let shardis = transcript(ServerKind::Shardis);
    for (r, s) in redis.iter().zip(&shardis) {
        assert_eq!(r, s, "\nredis:   {r}\nshardis: {s}");
    }
    assert_eq!(redis.len(), shardis.len());
    // The transcript does test what it says.
    assert!(redis
        .iter()
        .any(|l| l.contains("EXECABORT Transaction discarded because of: NOREPLICAS")));
    assert!(redis
        .iter()
        .any(|l| l.contains("EXECABORT Transaction discarded because of: READONLY")));
    assert!(redis
        .iter()
        .any(|l| l.contains("EXECABORT Transaction discarded because of: MASTERDOWN")));
}

/// SHUTDOWN during a busy script: without NOSAVE it is BUSY (a save would catch the script's
/// half-done writes); SHUTDOWN NOSAVE ends the server from a connection on any shard (the
/// script holds every shard it touched, so the shutdown may not wait for their locks), and a
/// client connecting right after its connection closed is refused.
#[test]
fn shutdown_nosave_ends_a_busy_script_from_any_shard() {
    let server = TestServer::start(
        ServerKind::Shardis,
        &[
            "--shards",
            "4",
            "--appendonly",
            "yes",
            "--busy-reply-threshold",
            "50",
        ],
    );
    let port = server.port();
    let mut runner = server.conn();
    runner.send(&[
        b"EVAL",
        b"redis.call('set','x','y') while true do end",
        b"0",
    ]);
    // Connections land on shards by the kernel's choice: several cover them all.
    let mut others: Vec<RespConn> = (0..8).map(|_| server.conn()).collect();
    for c in others.iter_mut() {
        wait_until("BUSY reply", Duration::from_secs(20), || {
            is_busy(&c.call(&["PING"]))
        });
    }
    let r = others[0].call(&["SHUTDOWN"]);
    assert!(is_busy(&r), "{r:?}");
    for c in others.iter_mut() {
        c.send(&[b"SHUTDOWN", b"NOSAVE"]);
    }
    for c in others.iter_mut() {
        let (_, closed) = c.read_until_close(Duration::from_secs(20));
        assert!(closed, "SHUTDOWN NOSAVE left a connection open");
    }
    let refused = std::net::TcpStream::connect(("127.0.0.1", port));
    assert!(
        matches!(&refused, Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused),
        "connected after SHUTDOWN NOSAVE: {refused:?}"
    );
    wait_until("the server to exit", Duration::from_secs(20), || {
        !server.is_alive()
    });
}

/// A call a script's checks refuse (OOM here, wrong arity, a command scripts may not call)
/// is a rejected call of that command in COMMANDSTATS, and its error is counted once, as in
/// Redis 7.0 (`scriptCall`'s error path). Compared with real Redis.
#[test]
fn refused_script_calls_count_as_rejected_like_redis() {
    let stats = |kind: ServerKind| -> Vec<String> {
        let server = TestServer::start(kind, &[]);
        let mut c = server.conn();
        let mut log = Vec::new();
        c.call(&["CONFIG", "RESETSTAT"]);
        c.call(&["CONFIG", "SET", "maxmemory", "1"]);
        let scripts = [
            "return redis.call('set','x','y')",
            "return redis.pcall('set','x','y')['err']",
            "return redis.call('get')",
            "return redis.pcall('multi')['err']",
        ];
        for s in scripts {
            log.push(common::show(&c.cmd(&[b"EVAL", s.as_bytes(), b"1", b"x"])));
        }
        c.call(&["CONFIG", "SET", "maxmemory", "0"]);
        let info = c.call(&["INFO", "commandstats"]);
        let info = String::from_utf8_lossy(info.as_bytes().unwrap_or_default()).into_owned();
        for line in info.lines() {
            let Some((name, rest)) = line.split_once(':') else {
                continue;
            };
            if ![
                "cmdstat_set",
                "cmdstat_get",
                "cmdstat_multi",
                "cmdstat_eval",
            ]
            .contains(&name)
            {
                continue;
            }
            // calls, rejected_calls, failed_calls: not the timings.
            let counts: Vec<&str> = rest
                .split(',')
                .filter(|f| f.starts_with("calls=") || f.contains("_calls="))
                .collect();
            log.push(format!("{name}:{}", counts.join(",")));
        }
        let errs = c.call(&["INFO", "errorstats"]);
        log.push(String::from_utf8_lossy(errs.as_bytes().unwrap_or_default()).into_owned());
        log.sort();
        log
    };
    let redis = stats(ServerKind::Redis);
    assert!(
        redis
            .iter()
            .any(|l| l.starts_with("cmdstat_set:calls=0,rejected_calls=2")),
        "{redis:?}"
    );
    assert_eq!(redis, stats(ServerKind::Shardis));
}

/// KEYS and ARGV are the run's own: whatever a script did to them (new fields, entries
/// past the end, removals, a metatable) is gone in the next run, as in Redis, where every
/// run gets new tables (shardis refills the previous ones when they were left untouched).
#[test]
fn keys_and_argv_start_fresh_in_every_run() {
    let transcript = |kind: ServerKind| -> Vec<String> {
        let server = TestServer::start(kind, &[]);
        let mut c = server.conn();
        let read = "return {#KEYS, #ARGV, KEYS[1] or 'nil', KEYS[2] or 'nil', ARGV[1] or 'nil', \
                    tostring(KEYS.x), tostring(KEYS[5]), tostring(ARGV[3]), \
                    tostring(getmetatable(KEYS) == nil), tostring(ARGV[9])}";
        let changes = [
            "KEYS.x = ARGV[1] KEYS[5] = 'k5' ARGV[3] = 'a3' return {#KEYS, KEYS[5], ARGV[3]}",
            "setmetatable(KEYS, {__index = function() return 'meta' end}) return 1",
            "table.remove(KEYS, 1) table.insert(ARGV, 'more') return {#KEYS, #ARGV}",
            "KEYS[2] = nil ARGV[1] = nil return 1",
            "ARGV[9] = 'nine' return 1",
            "return 1",
        ];
        let shapes: [&[&[u8]]; 4] = [
            &[b"2", b"k1", b"k2", b"a1"],
            &[b"1", b"k1", b"a1", b"a2"],
            &[b"0"],
            &[b"2", b"p", b"q"],
        ];
        let mut log = Vec::new();
        for change in changes {
            for shape in shapes {
                for body in [change, read, read] {
                    let mut cmd: Vec<&[u8]> = vec![b"EVAL", body.as_bytes()];
                    cmd.extend_from_slice(shape);
                    log.push(common::show(&c.cmd(&cmd)));
                }
            }
        }
        log
    };
    let redis = transcript(ServerKind::Redis);
    assert!(redis.iter().any(|l| l.contains("k5")), "{redis:?}");
    assert_eq!(redis, transcript(ServerKind::Shardis));
}
