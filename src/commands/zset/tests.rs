//! Handler-level tests for the sorted set family.
//!
//! `recorded` holds scripts of commands with the exact reply bytes redis-server 7.0.15
//! returned for them, in RESP2 and RESP3, some over two shards so that multi-key commands run
//! across shards. `tests/record.py PORT FILE` re-records such a file from a live server: it
//! replays each script on a fresh server (FLUSHALL, default thresholds; a `!limits E V` line
//! sets `zset-max-listpack-entries` and `-value` there and the thread's test thresholds here)
//! and rewrites the expected bytes; new steps are added by writing the line with any reply and
//! re-recording. `run_script` replays the scripts through the command table as the dispatcher
//! would: lookup, arity, the shards of the declared keys locked, the handler, byte-for-byte
//! comparison.
//!
//! The tests below the recordings check what the wire cannot compare byte for byte: random
//! replies, scans of the big encoding (whose order differs from Redis's dict order), `dirty`,
//! and the blocking-pop helpers.

mod recorded;

use crate::commands::keys::harness::World;
use crate::commands::string::tests::tokenize;
use crate::commands::{self, flag, Kind};
use crate::protocol::Out;
use crate::storage::zset::{Limits, TEST_LIMITS};
use crate::storage::{key_slot, slot_owner, Keyspace, ShardData};

/// Runs one command line on `w` as the dispatcher would; returns the reply bytes.
pub(crate) fn run(w: &mut World, line: &str) -> Vec<u8> {
    let args = tokenize(line);
    let mut cmd = commands::lookup(&args[0]).expect("command in the table");
    let mut name = cmd.name.to_string();
    if matches!(cmd.kind, Kind::Container) {
        let sub = args
            .get(1)
            .and_then(|n| cmd.find_sub(n))
            .expect("subcommand");
        name = format!("{}|{}", cmd.name, sub.name);
        cmd = sub;
    }
    let argc = args.len() as i32;
    if !((cmd.arity > 0 && argc == cmd.arity) || (cmd.arity < 0 && argc >= -cmd.arity)) {
        return format!("-ERR wrong number of arguments for '{name}' command\r\n").into_bytes();
    }
    let Kind::Data(handler) = cmd.kind else {
        panic!("{name} is not a data command");
    };
    let n = w.shards.len();
    let mut ids: Vec<usize> = if cmd.flags & flag::ALL_SHARDS != 0 {
        (0..n).collect()
    } else {
        cmd.key_indices(&args)
            .iter()
            .map(|&i| slot_owner(key_slot(&args[i]), n))
            .collect()
    };
    if ids.is_empty() {
        ids.push(0);
    }
    ids.sort_unstable();
    ids.dedup();
    let mut parts: Vec<&mut ShardData> = w
        .shards
        .iter_mut()
        .filter(|s| ids.contains(&s.id))
        .collect();
    let mut ks = if parts.len() == 1 {
        Keyspace::one(parts.remove(0), n, w.db, w.now_ms)
    } else {
        Keyspace::many(parts, n, w.db, w.now_ms)
    };
    let mut buf = Vec::new();
    handler(&mut ks, &args, &mut Out::new(&mut buf, w.proto));
    buf
}

/// Replays a recorded script on a fresh world of `nshards` shards speaking `proto`.
pub(crate) fn run_script(proto: u8, nshards: usize, steps: &[(&str, &[u8])]) {
    let mut w = World::new(nshards);
    w.proto = proto;
    set_limits(128, 64);
    for (i, (line, expected)) in steps.iter().enumerate() {
        if let Some(rest) = line.strip_prefix("!limits ") {
            let v: Vec<usize> = rest
                .split(' ')
                .map(|n| n.parse().expect("a number"))
                .collect();
            set_limits(v[0], v[1]);
            continue;
        }
        let got = run(&mut w, line);
        assert!(
            got == *expected,
            "step {i}: {line}\n  expected {:?}\n       got {:?}",
            String::from_utf8_lossy(expected),
            String::from_utf8_lossy(&got),
        );
    }
    TEST_LIMITS.with(|c| c.set(None));
}

/// Sets this thread's encoding thresholds.
pub(crate) fn set_limits(entries: usize, value: usize) {
    TEST_LIMITS.with(|c| c.set(Some(Limits { entries, value })));
}

/// The members of a flat RESP2 array of bulk strings.
pub(crate) fn bulks(reply: &[u8]) -> Vec<String> {
    let text = String::from_utf8_lossy(reply);
    let mut lines = text.split("\r\n");
    let mut v = Vec::new();
    while let Some(l) = lines.next() {
        if l.starts_with('$') && l != "$-1" {
            v.push(lines.next().unwrap_or_default().to_string());
        }
    }
    v
}

/// `dirty` grows as in Redis (deltas of `rdb_changes_since_last_save` recorded from
/// redis-server 7.0.15).
#[test]
fn dirty_counts_like_redis() {
    let steps = [
        ("zadd z 1 a 2 b 3 c", 3),
        ("zadd z 1 a 5 b", 1),
        ("zadd z nx 1 a 1 d", 1),
        ("zadd z xx 9 zz", 0),
        ("zincrby z 1 a", 1),
        ("zincrby z 0 a", 0),
        ("zrem z a zz", 1),
        ("zremrangebyrank z 0 0", 1),
        ("zremrangebyscore z -inf +inf", 2),
        ("zadd z 1 a 2 b 3 c 4 d", 4),
        ("zpopmin z 2", 2),
        ("zpopmax z 5", 2),
        ("zadd z 1 a 2 b 3 c", 3),
        ("zmpop 1 z min count 2", 2),
        ("zrangestore dst z 0 -1", 1),
        ("zrangestore dst z 5 10", 1),
        ("zrangestore dst z 5 10", 0),
        ("zunionstore dst 1 z", 1),
        ("zinterstore dst 2 z nokey", 1),
        ("zinterstore dst 2 z nokey", 0),
        ("zadd lex 0 a 0 b 0 c", 3),
        ("zremrangebylex lex [a [b", 2),
        ("zremrangebylex lex - +", 1),
        ("zrem z nosuch", 0),
    ];
    let mut w = World::new(2);
    for (line, delta) in steps {
        let before = w.dirty();
        run(&mut w, line);
        assert_eq!(w.dirty() - before, delta, "{line}");
    }
}

/// ZRANDMEMBER's draws, in both encodings and protocols: negative counts repeat members,
/// positive ones never do, scores belong to their members. Prints the seed on failure.
#[test]
fn zrandmember_draws() {
    let seed = crate::util::now_us();
    super::seed_random(seed);
    for entries in [128, 0] {
        let mut w = World::new(1);
        set_limits(entries, 64);
        let pairs: Vec<String> = (0..50).map(|i| format!("{i} m{i}")).collect();
        run(&mut w, &format!("zadd z {}", pairs.join(" ")));
        let encoding = if entries == 0 { "skiplist" } else { "listpack" };
        assert_eq!(
            run(&mut w, "object encoding z"),
            format!("${}\r\n{encoding}\r\n", encoding.len()).into_bytes()
        );
        let member_ok = |m: &str| {
            m.strip_prefix('m')
                .and_then(|n| n.parse::<u32>().ok())
                .is_some_and(|n| n < 50)
        };
        for count in [1usize, 5, 16, 17, 30, 49] {
            let got = bulks(&run(&mut w, &format!("zrandmember z {count}")));
            assert_eq!(got.len(), count, "seed {seed}");
            let distinct: std::collections::BTreeSet<&String> = got.iter().collect();
            assert_eq!(distinct.len(), count, "seed {seed}: repeated member");
            assert!(got.iter().all(|m| member_ok(m)), "seed {seed}");
            let with = bulks(&run(&mut w, &format!("zrandmember z {count} withscores")));
            for p in with.chunks(2) {
                assert_eq!(format!("m{}", p[1]), p[0], "seed {seed}: score of {}", p[0]);
            }
        }
        let got = bulks(&run(&mut w, "zrandmember z -200"));
        assert_eq!(got.len(), 200);
        let distinct: std::collections::BTreeSet<&String> = got.iter().collect();
        assert!(distinct.len() < 200 && distinct.len() > 20, "seed {seed}");
        w.proto = 3;
        let r3 = String::from_utf8(run(&mut w, "zrandmember z -3 withscores")).expect("utf-8");
        assert!(r3.starts_with("*3\r\n*2\r\n$"), "{r3}");
        let r3 = String::from_utf8(run(&mut w, "zrandmember z 2 withscores")).expect("utf-8");
        assert!(
            r3.starts_with("*2\r\n*2\r\n$") && r3.contains("\r\n,"),
            "{r3}"
        );
        w.proto = 2;
        let one = String::from_utf8(run(&mut w, "zrandmember z")).expect("utf-8");
        assert!(member_ok(one.split("\r\n").nth(1).expect("a bulk")));
        assert_eq!(
            run(&mut w, "zrandmember z -67108865"),
            b"-ERR value is out of range, a reply holds at most 67108864 members\r\n"
        );
    }
    TEST_LIMITS.with(|c| c.set(None));
}

/// ZSCAN over the big encoding: every member once with its score as Redis prints it there
/// (`%.17g`), COUNT honoured, cursor 0 at the end, MATCH filtering; members present for a
/// whole scan under churn are all returned.
#[test]
fn zscan_big_sets() {
    let mut w = World::new(2);
    set_limits(16, 64);
    let pairs: Vec<String> = (0..500).map(|i| format!("{}.5 m{i}", i - 250)).collect();
    run(&mut w, &format!("zadd z {}", pairs.join(" ")));
    run(&mut w, "zadd z 1e17 big -0 negzero inf infinite");
    let mut cursor = 0u64;
    let mut seen = std::collections::BTreeMap::new();
    let mut calls = 0;
    loop {
        let reply = run(&mut w, &format!("zscan z {cursor} count 20"));
        let items = bulks(&reply);
        cursor = items[0].parse().expect("a cursor");
        assert!(cursor == 0 || items.len() > 2 * 20);
        for p in items[1..].chunks(2) {
            assert!(
                seen.insert(p[0].clone(), p[1].clone()).is_none(),
                "{} twice",
                p[0]
            );
        }
        calls += 1;
        if cursor == 0 {
            break;
        }
    }
    assert!(calls > 20);
    assert_eq!(seen.len(), 503);
    assert_eq!(seen["m0"], "-250.5");
    assert_eq!(seen["big"], "1e+17");
    assert_eq!(seen["negzero"], "-0");
    assert_eq!(seen["infinite"], "inf");
    let matched = bulks(&run(&mut w, "zscan z 0 match m1?? count 1000"));
    assert_eq!(matched.len(), 1 + 2 * 100);
    // Churn between calls: the 250 stable members all come back.
    let mut cursor = 0u64;
    let mut seen = std::collections::BTreeSet::new();
    let mut round = 0;
    loop {
        let items = bulks(&run(&mut w, &format!("zscan z {cursor} count 7")));
        cursor = items[0].parse().expect("a cursor");
        seen.extend(items[1..].chunks(2).map(|p| p[0].clone()));
        run(&mut w, &format!("zrem z m{}", 250 + round % 250));
        run(&mut w, &format!("zadd z 0 new{round}"));
        round += 1;
        if cursor == 0 {
            break;
        }
    }
    for i in 0..250 {
        assert!(seen.contains(&format!("m{i}")), "m{i} missed");
    }
    TEST_LIMITS.with(|c| c.set(None));
}

/// The helpers the engine's blocking pops use: what they pop, what they change, the reply
/// shapes (recorded from redis-server 7.0.15's BZPOPMIN, BZPOPMAX and BZMPOP).
#[test]
fn blocking_pop_helpers() {
    use super::{reply_bzpop, reply_mpop, zpop};
    let mut w = World::new(1);
    run(&mut w, "zadd k 1 a 2.5 b 3 c");
    run(&mut w, "set str v");
    let mut shard = w.shards.remove(0);
    let mut ks = Keyspace::one(&mut shard, 1, 0, w.now_ms);
    let popped = zpop(&mut ks, b"k", false, 1)
        .ok()
        .flatten()
        .expect("popped");
    let (mut r2, mut r3) = (Vec::new(), Vec::new());
    reply_bzpop(&mut Out::new(&mut r2, 2), b"k", &popped);
    reply_bzpop(&mut Out::new(&mut r3, 3), b"k", &popped);
    assert_eq!(r2, b"*3\r\n$1\r\nk\r\n$1\r\na\r\n$1\r\n1\r\n");
    assert_eq!(r3, b"*3\r\n$1\r\nk\r\n$1\r\na\r\n,1\r\n");
    let popped = zpop(&mut ks, b"k", true, 1).ok().flatten().expect("popped");
    assert_eq!(popped.elements, vec![(b"c".to_vec(), 3.0)]);
    let popped = zpop(&mut ks, b"k", false, 5)
        .ok()
        .flatten()
        .expect("popped");
    let (mut r2, mut r3) = (Vec::new(), Vec::new());
    reply_mpop(&mut Out::new(&mut r2, 2), b"k", &popped);
    reply_mpop(&mut Out::new(&mut r3, 3), b"k", &popped);
    assert_eq!(r2, b"*2\r\n$1\r\nk\r\n*1\r\n*2\r\n$1\r\nb\r\n$3\r\n2.5\r\n");
    assert_eq!(r3, b"*2\r\n$1\r\nk\r\n*1\r\n*2\r\n$1\r\nb\r\n,2.5\r\n");
    // The emptied key is gone; missing keys and other types are reported.
    assert!(!ks.exists(b"k"));
    assert!(matches!(zpop(&mut ks, b"k", false, 1), Ok(None)));
    assert!(zpop(&mut ks, b"str", false, 1).is_err());
    drop(ks);
    assert_eq!(shard.stats.dirty, 3 + 1 + 3);
}

/// Every command of the family is in the table with Redis's arity and flags.
#[test]
fn command_table() {
    let expect = [
        ("zadd", -4, "write denyoom fast"),
        ("zincrby", 4, "write denyoom fast"),
        ("zrem", -3, "write fast"),
        ("zrangestore", -5, "write denyoom"),
        ("zmpop", -4, "write"),
        ("zpopmin", -2, "write fast"),
        ("zremrangebylex", 4, "write"),
        ("zunionstore", -4, "write denyoom"),
        ("zintercard", -3, "readonly"),
        ("zrandmember", -2, "readonly"),
        ("zscan", -3, "readonly"),
        ("zscore", 3, "readonly fast"),
    ];
    for (name, arity, flags) in expect {
        let cmd = commands::lookup(name.as_bytes()).expect("registered");
        assert_eq!(cmd.arity, arity, "{name}");
        let names: Vec<&str> = flag::NAMES
            .iter()
            .filter(|(bit, _)| cmd.flags & bit != 0)
            .map(|(_, n)| *n)
            .collect();
        assert_eq!(names.join(" "), flags, "{name}");
    }
    let args = tokenize("zunionstore dst 2 a b weights 1 2");
    let keys = commands::lookup(b"zunionstore")
        .expect("registered")
        .key_indices(&args);
    assert_eq!(keys, vec![1, 3, 4]);
    let args = tokenize("zmpop 3 a b min");
    assert_eq!(
        commands::lookup(b"zmpop")
            .expect("registered")
            .key_indices(&args),
        vec![2, 3, 4]
    );
    assert!(super::numkeys_keys_at(&tokenize("zunion x a"), 1).is_empty());
    assert!(super::numkeys_keys_at(&tokenize("zunion -1 a"), 1).is_empty());
}
