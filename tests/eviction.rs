//! maxmemory eviction across shards: the budget is global, so a write on a shard that holds
//! few (or no evictable) keys must evict from the others, and noeviction must refuse with
//! Redis's exact error whatever shard a command lands on.

mod common;

use common::{wait_until, RespConn, ServerKind, TestServer};
use std::time::Duration;

const OOM: &[u8] = b"-OOM command not allowed when used memory > 'maxmemory'.\r\n";

/// Redis Cluster's key → slot: CRC16-XMODEM of the key (or its {hashtag}) mod 16384.
fn key_slot(key: &[u8]) -> usize {
    let hashed = match key.iter().position(|&b| b == b'{') {
        Some(open) => match key[open + 1..].iter().position(|&b| b == b'}') {
            Some(len) if len > 0 => &key[open + 1..open + 1 + len],
            _ => key,
        },
        None => key,
    };
    let mut crc: u16 = 0;
    for &b in hashed {
        crc ^= u16::from(b) << 8;
        for _ in 0..8 {
            crc = if crc & 0x8000 != 0 {
                (crc << 1) ^ 0x1021
            } else {
                crc << 1
            };
        }
    }
    usize::from(crc) % 16384
}

/// `count` keys named `prefix:i` whose owner (slot mod `shards`) is one of `on`.
fn keys_on(prefix: &str, on: &[usize], shards: usize, count: usize) -> Vec<String> {
    (0..)
        .map(|i| format!("{prefix}:{i}"))
        .filter(|k| on.contains(&(key_slot(k.as_bytes()) % shards)))
        .take(count)
        .collect()
}

fn info_u64(s: &TestServer, section: &str, field: &str) -> u64 {
    s.info_field(section, field)
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}

/// Sends one command per key in one pipeline (`SET key value`, plus `EX ttl` when given) and
/// returns the replies.
fn set_all(c: &mut RespConn, keys: &[String], value: &[u8], ttl: Option<&str>) -> Vec<Vec<u8>> {
    let mut replies = Vec::new();
    // Pipelines of about 16 KB, what Redis reads at a time: shardis reads a whole pipeline
    // into the query buffer, which counts toward maxmemory until the batch is drained, so
    // bigger batches would be refused before the keys themselves fill the budget.
    for batch in keys.chunks(16) {
        for k in batch {
            match ttl {
                Some(t) => c.send(&[b"SET", k.as_bytes(), value, b"EX", t.as_bytes()]),
                None => c.send(&[b"SET", k.as_bytes(), value]),
            }
        }
        for _ in batch {
            replies.push(c.read_reply());
        }
    }
    replies
}

fn existing(c: &mut RespConn, keys: &[String]) -> usize {
    keys.iter()
        .filter(|k| c.cmd(&[b"EXISTS", k.as_bytes()]) == b":1\r\n")
        .count()
}

/// Starts shardis with `shards` shards and a budget of `room` bytes over its idle usage.
fn start(shards: usize, policy: &str, room: u64) -> (TestServer, RespConn, u64) {
    let n = shards.to_string();
    let s = TestServer::start(ServerKind::Shardis, &["--shards", &n]);
    let mut c = s.conn();
    let budget = info_u64(&s, "memory", "used_memory") + room;
    c.cmd(&[
        b"CONFIG",
        b"SET",
        b"maxmemory",
        budget.to_string().as_bytes(),
    ]);
    c.cmd(&[b"CONFIG", b"SET", b"maxmemory-policy", policy.as_bytes()]);
    (s, c, budget)
}

/// allkeys-lru: keys filling the budget live on every shard but the last; writes to the last
/// shard (which has nothing to evict) all succeed, the older keys of the other shards are
/// evicted, memory stays at the budget, and the newly written keys survive.
#[test]
fn lru_write_on_an_empty_shard_evicts_from_the_others() {
    for shards in [2usize, 4] {
        let (s, mut c, budget) = start(shards, "allkeys-lru", 2_000_000);
        let value = vec![b'v'; 1000];
        let others: Vec<usize> = (0..shards - 1).collect();
        let old = keys_on("old", &others, shards, 2500);
        let replies = set_all(&mut c, &old, &value, None);
        assert!(
            replies.iter().all(|r| r == b"+OK\r\n"),
            "{shards} shards: fill"
        );
        let before = info_u64(&s, "stats", "evicted_keys");
        assert!(before > 0, "{shards} shards: the fill went past the budget");
        // Older by at least a second of the LRU clock than anything written next.
        std::thread::sleep(Duration::from_millis(2100));
        let new = keys_on("new", &[shards - 1], shards, 1000);
        let replies = set_all(&mut c, &new, &value, None);
        let refused = replies.iter().filter(|r| *r != b"+OK\r\n").count();
        assert_eq!(
            refused, 0,
            "{shards} shards: writes on the empty shard were refused"
        );
        let evicted = info_u64(&s, "stats", "evicted_keys") - before;
        // About one per write; fewer when buffers freed since the fill left room.
        assert!(
            evicted >= 500,
            "{shards} shards: evicted {evicted} for 1000 writes"
        );
        let kept_new = existing(&mut c, &new);
        assert!(
            kept_new >= 950,
            "{shards} shards: {kept_new} of 1000 new keys left"
        );
        let used = info_u64(&s, "memory", "used_memory");
        assert!(
            used <= budget + 200_000,
            "{shards} shards: used {used} budget {budget}"
        );
    }
}

/// volatile-lru: only the other shards hold keys with an expiry; writes on the shard holding
/// only persistent keys evict those volatile keys, never its own persistent ones.
#[test]
fn volatile_write_evicts_volatile_keys_of_other_shards() {
    for shards in [2usize, 4] {
        let (s, mut c, _) = start(shards, "volatile-lru", 3_000_000);
        let value = vec![b'v'; 1000];
        let mine = keys_on("persistent", &[0], shards, 400);
        let others: Vec<usize> = (1..shards).collect();
        let volatile = keys_on("volatile", &others, shards, 3000);
        assert!(set_all(&mut c, &mine, &value, None)
            .iter()
            .all(|r| r == b"+OK\r\n"));
        assert!(set_all(&mut c, &volatile, &value, Some("100000"))
            .iter()
            .all(|r| r == b"+OK\r\n"));
        let more = keys_on("more", &[0], shards, 600);
        let replies = set_all(&mut c, &more, &value, None);
        let refused = replies.iter().filter(|r| *r != b"+OK\r\n").count();
        assert_eq!(
            refused, 0,
            "{shards} shards: writes on shard 0 were refused"
        );
        assert!(
            info_u64(&s, "stats", "evicted_keys") >= 500,
            "{shards} shards: the volatile keys of other shards paid for the writes"
        );
        assert_eq!(
            existing(&mut c, &mine),
            400,
            "{shards} shards: persistent keys kept"
        );
        assert_eq!(existing(&mut c, &more), 600, "{shards} shards");
    }
}

/// Once the volatile keys are gone, volatile-* has nothing left to evict anywhere: a write
/// gets the OOM error on every shard, a read still works.
#[test]
fn volatile_without_volatile_keys_anywhere_refuses() {
    let (_s, mut c, _) = start(2, "volatile-ttl", 300_000);
    let value = vec![b'v'; 1000];
    let keys = keys_on("k", &[0, 1], 2, 1000);
    let replies = set_all(&mut c, &keys, &value, None);
    let oom = replies.iter().filter(|r| r.as_slice() == OOM).count();
    assert!(oom > 0, "writes past the budget were refused");
    assert!(
        replies
            .iter()
            .all(|r| r == b"+OK\r\n" || r.as_slice() == OOM),
        "only OK or OOM"
    );
    for shard in [0usize, 1] {
        let k = &keys_on("probe", &[shard], 2, 1)[0];
        assert_eq!(c.cmd(&[b"SET", k.as_bytes(), b"x"]), OOM, "shard {shard}");
    }
    assert_eq!(c.cmd(&[b"GET", keys[0].as_bytes()]).first(), Some(&b'$'));
}

/// noeviction over the limit: the same replies as Redis 7.0 for a write, a read, a DEL, and a
/// transaction that queues a command (any command queued under OOM is refused, and EXEC then
/// aborts), on a server with several shards.
#[test]
fn noeviction_replies_match_redis() {
    let script: Vec<Vec<&[u8]>> = vec![
        vec![b"SET", b"a", b"1"],
        vec![b"GET", b"k:1"],
        vec![b"SETEX", b"b", b"100", b"x"],
        vec![b"DEL", b"k:2"],
        vec![b"MULTI"],
        vec![b"GET", b"k:3"],
        vec![b"EXEC"],
        vec![b"MULTI"],
        vec![b"DISCARD"],
        vec![b"CONFIG", b"SET", b"maxmemory", b"0"],
        vec![b"SET", b"a", b"1"],
    ];
    let mut transcripts = Vec::new();
    for (kind, args) in [
        (ServerKind::Redis, vec![]),
        (ServerKind::Shardis, vec!["--shards", "2"]),
        (ServerKind::Shardis, vec!["--shards", "4"]),
    ] {
        let s = TestServer::start(kind, &args);
        let mut c = s.conn();
        for i in 0..50 {
            let k = format!("k:{i}");
            c.cmd(&[b"SET", k.as_bytes(), b"value"]);
        }
        c.cmd(&[b"CONFIG", b"SET", b"maxmemory", b"1"]);
        let replies: Vec<String> = script
            .iter()
            .map(|cmd| String::from_utf8_lossy(&c.cmd(cmd)).into_owned())
            .collect();
        transcripts.push((kind.name(), args.join(" "), replies));
    }
    let (_, _, redis) = &transcripts[0];
    assert!(redis[0].starts_with("-OOM"), "redis refused: {redis:?}");
    for (name, args, replies) in &transcripts[1..] {
        assert_eq!(replies, redis, "{name} {args}");
    }
}

/// A maxmemory lowered far below the usage (more than one pass's time budget to evict) is
/// reached: passes that run out of time continue in the cron and before later commands.
#[test]
fn lowering_maxmemory_evicts_down_to_the_new_limit() {
    let (s, mut c, _) = start(2, "allkeys-random", 50_000_000);
    let value = vec![b'v'; 1000];
    let keys = keys_on("k", &[0, 1], 2, 20_000);
    assert!(set_all(&mut c, &keys, &value, None)
        .iter()
        .all(|r| r == b"+OK\r\n"));
    let used = info_u64(&s, "memory", "used_memory");
    let target = used - 15_000_000;
    c.cmd(&[
        b"CONFIG",
        b"SET",
        b"maxmemory",
        target.to_string().as_bytes(),
    ]);
    wait_until(
        "eviction below the new limit",
        Duration::from_secs(20),
        || info_u64(&s, "memory", "used_memory") <= target,
    );
    assert!(info_u64(&s, "stats", "evicted_keys") >= 10_000);
}
