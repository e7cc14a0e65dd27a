//! Memory over TCP: maxmemory's OOM error and eviction, OBJECT FREQ/IDLETIME by policy,
//! MEMORY USAGE close to Redis's for the same values, against both servers where they must
//! agree.

mod common;

use common::{RespConn, ServerKind, TestServer};

const OOM: &[u8] = b"-OOM command not allowed when used memory > 'maxmemory'.\r\n";

fn used_memory(s: &TestServer) -> u64 {
    s.info_field("memory", "used_memory")
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}

fn fill(c: &mut RespConn, from: usize, n: usize) -> (usize, usize) {
    let value = vec![b'x'; 100];
    let (mut ok, mut oom) = (0, 0);
    for i in from..from + n {
        let key = format!("key:{i}");
        let r = c.cmd(&[b"SET", key.as_bytes(), &value]);
        if r == b"+OK\r\n" {
            ok += 1;
        } else if r == OOM {
            oom += 1;
        } else {
            panic!("unexpected reply {:?}", String::from_utf8_lossy(&r));
        }
    }
    (ok, oom)
}

/// Under noeviction a write past the budget gets Redis's exact OOM error, reads still work;
/// under allkeys-lru the same writes succeed, keys are evicted and counted.
#[test]
fn noeviction_refuses_and_lru_evicts() {
    for kind in [ServerKind::Redis, ServerKind::Shardis] {
        for shards in ["1", "2"] {
            let args: Vec<&str> = if kind == ServerKind::Shardis {
                vec!["--shards", shards]
            } else {
                vec![]
            };
            let s = TestServer::start(kind, &args);
            let mut c = s.conn();
            let budget = used_memory(&s) + 3_000_000;
            let budget_s = budget.to_string();
            c.cmd(&[b"CONFIG", b"SET", b"maxmemory", budget_s.as_bytes()]);
            let (ok, oom) = fill(&mut c, 0, 40_000);
            assert!(ok > 1000 && oom > 0, "{}: ok {ok} oom {oom}", kind.name());
            assert_eq!(c.cmd(&[b"GET", b"key:0"]).first(), Some(&b'$'));
            c.cmd(&[b"CONFIG", b"SET", b"maxmemory-policy", b"allkeys-lru"]);
            let (ok, oom) = fill(&mut c, 100_000, 40_000);
            assert_eq!((ok, oom), (40_000, 0), "{}", kind.name());
            let evicted: u64 = s
                .info_field("stats", "evicted_keys")
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(0);
            assert!(evicted > 1000, "{}: evicted {evicted}", kind.name());
            assert!(
                used_memory(&s) <= budget + 200_000,
                "{}: used {} budget {budget}",
                kind.name(),
                used_memory(&s)
            );
            if kind == ServerKind::Redis {
                break;
            }
        }
    }
}

/// OBJECT FREQ answers only under an LFU policy and IDLETIME only under the others, with
/// Redis's texts; the LFU counter starts at 5 and grows with hits.
#[test]
fn object_freq_and_idletime_follow_the_policy() {
    for kind in [ServerKind::Redis, ServerKind::Shardis] {
        let s = TestServer::start(kind, &[]);
        let mut c = s.conn();
        c.cmd(&[b"SET", b"k", b"v"]);
        let freq_err = c.cmd(&[b"OBJECT", b"FREQ", b"k"]);
        assert!(freq_err.starts_with(b"-ERR An LFU maxmemory policy is not selected"));
        assert_eq!(c.cmd(&[b"OBJECT", b"IDLETIME", b"k"]), b":0\r\n");
        c.cmd(&[b"CONFIG", b"SET", b"maxmemory-policy", b"allkeys-lfu"]);
        let idle_err = c.cmd(&[b"OBJECT", b"IDLETIME", b"k"]);
        assert!(idle_err.starts_with(b"-ERR An LFU maxmemory policy is selected"));
        c.cmd(&[b"SET", b"fresh", b"v"]);
        assert_eq!(
            c.cmd(&[b"OBJECT", b"FREQ", b"fresh"]),
            b":5\r\n",
            "{}",
            kind.name()
        );
        for _ in 0..200 {
            c.cmd(&[b"GET", b"fresh"]);
        }
        let r = String::from_utf8_lossy(&c.cmd(&[b"OBJECT", b"FREQ", b"fresh"])).to_string();
        let f: i64 = r.trim_start_matches(':').trim().parse().unwrap_or(-1);
        assert!(f > 5 && f < 40, "{}: freq after 200 hits {f}", kind.name());
    }
}

/// MEMORY USAGE of the same values is within a tolerance of Redis's.
#[test]
fn memory_usage_is_close_to_redis() {
    let big = "x".repeat(300);
    let setup: Vec<Vec<&str>> = vec![
        vec!["SET", "s", "hello"],
        vec!["SET", "n", "123456"],
        vec!["SET", "big", &big],
        vec!["RPUSH", "l", "a", "b", "c", "d"],
        vec!["HSET", "h", "f1", "v1", "f2", "v2"],
        vec!["SADD", "set", "a", "b", "c"],
        vec!["ZADD", "z", "1", "a", "2", "b"],
    ];
    let mut usage = Vec::new();
    for kind in [ServerKind::Redis, ServerKind::Shardis] {
        let s = TestServer::start(kind, &[]);
        let mut c = s.conn();
        for cmd in &setup {
            c.call(cmd);
        }
        let v: Vec<i64> = ["s", "n", "big", "l", "h", "set", "z"]
            .iter()
            .map(|k| c.call(&["MEMORY", "USAGE", k]).as_int().unwrap_or(-1))
            .collect();
        assert_eq!(c.cmd(&[b"MEMORY", b"USAGE", b"missing"]), b"$-1\r\n");
        assert_eq!(
            c.cmd(&[b"MEMORY", b"USAGE", b"s", b"SAMPLES", b"x"]),
            b"-ERR value is not an integer or out of range\r\n"
        );
        assert_eq!(
            c.cmd(&[b"MEMORY", b"USAGE", b"s", b"FOO"]),
            b"-ERR syntax error\r\n"
        );
        usage.push(v);
    }
    for (i, (r, s)) in usage[0].iter().zip(&usage[1]).enumerate() {
        assert!(*s > 0, "key {i}: {s}");
        let ratio = *s as f64 / *r as f64;
        // Below Redis is expected for small collections: a 4-element list is one listpack in
        // the value word here (77 bytes with its key), a quicklist and a node there (160).
        assert!(
            (0.4..=1.6).contains(&ratio),
            "key {i}: redis {r} shardis {s}"
        );
    }
}

fn info_u64(s: &TestServer, section: &str, field: &str) -> u64 {
    s.info_field(section, field)
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}

/// UNLINK of a big set and FLUSHALL ASYNC free on the lazyfree thread: the keys are gone at
/// once and `lazyfreed_objects` counts them when the helper is done (Redis counts the same).
#[test]
fn unlink_and_flushall_async_free_lazily() {
    for kind in [ServerKind::Redis, ServerKind::Shardis] {
        let s = TestServer::start(kind, &[]);
        let mut c = s.conn();
        for chunk in 0..10 {
            let members: Vec<String> = (0..1000)
                .map(|i| format!("m{}", chunk * 1000 + i))
                .collect();
            let mut args: Vec<&str> = vec!["SADD", "big"];
            args.extend(members.iter().map(String::as_str));
            c.call(&args);
        }
        c.call(&["SET", "small", "v"]);
        assert_eq!(c.cmd(&[b"UNLINK", b"big", b"small", b"nokey"]), b":2\r\n");
        assert_eq!(c.cmd(&[b"EXISTS", b"big"]), b":0\r\n");
        common::wait_for(
            "the unlinked set freed",
            std::time::Duration::from_secs(20),
            || (info_u64(&s, "memory", "lazyfreed_objects") >= 1).then_some(()),
        );
        for i in 0..100 {
            c.call(&["SET", &format!("k{i}"), "v"]);
        }
        assert_eq!(c.cmd(&[b"FLUSHALL", b"ASYNC"]), b"+OK\r\n");
        assert_eq!(c.cmd(&[b"DBSIZE"]), b":0\r\n");
        common::wait_for(
            "the flushed keys freed",
            std::time::Duration::from_secs(20),
            || (info_u64(&s, "memory", "lazyfreed_objects") >= 101).then_some(()),
        );
        assert_eq!(
            info_u64(&s, "memory", "lazyfree_pending_objects"),
            0,
            "{}",
            kind.name()
        );
        assert_eq!(c.cmd(&[b"FLUSHALL", b"BOTH"]), b"-ERR syntax error\r\n");
    }
}

/// The lazyfree thread never shares a shard's CPU on equal terms: it runs under `SCHED_IDLE`
/// on every CPU the process may use. A shard starts it, and a new thread inherits its
/// creator's pinning: it used to sit on that shard's CPU at normal priority, the scheduler
/// handing it slices of milliseconds while the shard's clients waited.
#[test]
fn lazyfree_thread_is_unpinned_and_idle_priority() {
    let s = TestServer::start(ServerKind::Shardis, &["--shards", "1"]);
    let mut c = s.conn();
    let members: Vec<String> = (0..1000).map(|i| format!("m{i}")).collect();
    let mut args: Vec<&str> = vec!["SADD", "big"];
    args.extend(members.iter().map(String::as_str));
    c.call(&args);
    assert_eq!(c.cmd(&[b"UNLINK", b"big"]), b":1\r\n");
    let tasks = format!("/proc/{}/task", s.pid());
    let helper = common::wait_for(
        "the lazyfree thread",
        std::time::Duration::from_secs(20),
        || {
            std::fs::read_dir(&tasks).ok()?.flatten().find_map(|t| {
                let comm = std::fs::read_to_string(t.path().join("comm")).ok()?;
                (comm.trim() == "lazyfree").then(|| t.path())
            })
        },
    );
    let cpus = |dir: &std::path::Path| -> String {
        let status = std::fs::read_to_string(dir.join("status")).unwrap_or_default();
        status
            .lines()
            .find_map(|l| l.strip_prefix("Cpus_allowed_list:"))
            .unwrap_or("?")
            .trim()
            .to_string()
    };
    let process = std::path::PathBuf::from(format!("/proc/{}", s.pid()));
    assert_eq!(
        cpus(&helper),
        cpus(&process),
        "the helper may run on every CPU"
    );
    // Field 41 of /proc/PID/task/TID/stat is the policy (SCHED_IDLE = 5); the fields after
    // the parenthesized name start at field 3.
    let stat = std::fs::read_to_string(helper.join("stat")).unwrap();
    let after_name = &stat[stat.rfind(')').unwrap() + 2..];
    let policy = after_name.split(' ').nth(41 - 3).unwrap();
    assert_eq!(policy, "5", "SCHED_IDLE: {stat}");
    s.assert_alive();
}

/// A command of 100,000 arguments leaves nothing behind once its key is unlinked, whichever
/// shard owns the key (Redis's unit/lazyfree "UNLINK can reclaim memory in background"). A
/// shard kept the argument vector of a command it ran itself for the next commands: 3.2 MB
/// (32 bytes per argument) stayed in `used_memory` until a hop took the vector.
#[test]
fn huge_command_leaves_no_memory_behind() {
    let s = TestServer::start(ServerKind::Shardis, &["--shards", "2"]);
    let mut c = s.conn();
    let members: Vec<String> = (0..100_000).map(|i| i.to_string()).collect();
    // Four keys: with two shards, some run on the connection's own shard, some hop.
    for key in ["myset", "a", "b", "c"] {
        let orig = used_memory(&s);
        let mut args: Vec<&str> = vec!["SADD", key];
        args.extend(members.iter().map(String::as_str));
        assert_eq!(c.call(&args).as_int(), Some(100_000));
        let peak = used_memory(&s);
        assert!(peak > orig + 1_000_000, "{key}: {orig} -> {peak}");
        assert_eq!(c.call(&["UNLINK", key]).as_int(), Some(1));
        common::wait_for(
            "the set's memory given back",
            std::time::Duration::from_secs(20),
            || {
                let now = used_memory(&s);
                (now < orig + 500_000).then_some(())
            },
        );
    }
}

/// `tot-mem` of the client named `name` in CLIENT LIST.
fn client_tot_mem(c: &mut RespConn, name: &str) -> Option<u64> {
    let list = c.cmd(&[b"CLIENT", b"LIST"]);
    let text = String::from_utf8_lossy(&list).into_owned();
    let line = text
        .lines()
        .find(|l| l.contains(&format!(" name={name} ")))?;
    let field = line.split(' ').find_map(|f| f.strip_prefix("tot-mem="))?;
    field.parse().ok()
}

/// A pipeline written in one burst, faster than the server runs it, leaves the client's query
/// buffer at its usual size once drained (Redis reads 16 KiB at a time and never holds the
/// burst), and what the client holds is what `tot-mem` says: both servers show a client of
/// tens of kilobytes, not the size of the burst.
#[test]
fn pipelined_burst_leaves_a_small_counted_query_buffer() {
    for kind in [ServerKind::Redis, ServerKind::Shardis] {
        let s = TestServer::start(kind, &[]);
        let mut c = s.conn();
        let mut burst = s.conn();
        burst.cmd(&[b"CLIENT", b"SETNAME", b"burst"]);
        let mut bytes = Vec::new();
        let value = vec![b'v'; 700];
        for i in 0..2_000 {
            let key = format!("key:{i}");
            bytes.extend_from_slice(&common::resp::encode_command(&[
                b"SET",
                key.as_bytes(),
                &value,
            ]));
        }
        burst.send_raw(&bytes);
        for _ in 0..2_000 {
            assert_eq!(burst.read_reply(), b"+OK\r\n");
        }
        let mem = client_tot_mem(&mut c, "burst").expect("the burst client is listed");
        assert!(
            mem < 100_000,
            "{}: tot-mem {mem} after a 1.4 MB burst",
            kind.name()
        );
    }
}

/// Evicting keys that many tracking clients cache sends each of them an invalidation: those
/// messages are not memory the eviction has to make up for (Redis measures what a deletion
/// freed around the deletion alone), so lowering maxmemory 40 KB under the use evicts a few
/// dozen keys of a kilobyte, not the whole keyspace.
#[test]
fn tracking_invalidations_do_not_feed_eviction() {
    for kind in [ServerKind::Redis, ServerKind::Shardis] {
        let s = TestServer::start(kind, &[]);
        let mut c = s.conn();
        c.call(&["CONFIG", "SET", "maxmemory-policy", "allkeys-lru"]);
        c.call(&["CONFIG", "SET", "maxmemory-eviction-tenacity", "100"]);
        let mut trackers: Vec<RespConn> = (0..10).map(|_| s.conn()).collect();
        for t in &mut trackers {
            t.cmd(&[b"HELLO", b"3"]);
            assert_eq!(t.cmd(&[b"CLIENT", b"TRACKING", b"on"]), b"+OK\r\n");
        }
        for j in 0..300 {
            let key = format!("{j}{}", "x".repeat(1000));
            c.cmd(&[b"SET", key.as_bytes(), b"x"]);
            for t in &mut trackers {
                t.cmd(&[b"GET", key.as_bytes()]);
            }
        }
        // Let the cron give back the query buffers' excess before measuring.
        std::thread::sleep(std::time::Duration::from_millis(2100));
        let limit = used_memory(&s) - 40_000;
        c.call(&["CONFIG", "SET", "maxmemory", &limit.to_string()]);
        let evicted = info_u64(&s, "stats", "evicted_keys");
        let dbsize = c.call(&["DBSIZE"]).as_int().unwrap_or(0);
        assert!(
            (10..=100).contains(&evicted) && dbsize >= 200,
            "{}: evicted {evicted}, dbsize {dbsize}",
            kind.name()
        );
    }
}

/// `qbuf + qbuf-free` (the query buffer's allocation) of the client named `name`.
fn client_query_buffer(c: &mut RespConn, name: &str) -> Option<u64> {
    let list = c.cmd(&[b"CLIENT", b"LIST"]);
    let text = String::from_utf8_lossy(&list).into_owned();
    let line = text
        .lines()
        .find(|l| l.contains(&format!(" name={name} ")))?;
    let field = |k: &str| -> Option<u64> {
        line.split(' ')
            .find_map(|f| f.strip_prefix(k))
            .and_then(|v| v.parse().ok())
    };
    Some(field("qbuf=")? + field("qbuf-free=")?)
}

/// A query buffer sized for a 400 KB argument shrinks while the client keeps sending small
/// commands (its recent peak is small), to a size above zero: Redis's clientsCron resizes a
/// few clients' buffers on every pass, not once a second, so it happens within a few passes.
#[test]
fn query_buffer_sized_for_a_big_argument_shrinks_while_busy() {
    for kind in [ServerKind::Redis, ServerKind::Shardis] {
        let s = TestServer::start(kind, &["--hz", "100"]);
        let mut c = s.conn();
        let mut big = s.conn();
        big.cmd(&[b"CLIENT", b"SETNAME", b"big"]);
        assert_eq!(big.cmd(&[b"SET", b"x", &vec![b'A'; 400_000]]), b"+OK\r\n");
        let orig = client_query_buffer(&mut c, "big").expect("listed");
        assert!(orig > 400_000, "{}: qbuf+free {orig}", kind.name());
        let small = vec![b'A'; 100];
        let shrunk = common::wait_for(
            "the query buffer to shrink",
            std::time::Duration::from_secs(5),
            || {
                assert_eq!(big.cmd(&[b"SET", b"x", &small]), b"+OK\r\n");
                client_query_buffer(&mut c, "big").filter(|&n| n < orig)
            },
        );
        assert!(shrunk > 0 && shrunk < 65_536, "{}: {shrunk}", kind.name());
    }
}
