//! Handler-level tests: exact RESP bytes recorded from real Redis (`cases.rs`), replayed over
//! two shards; cross-shard SMOVE and *STORE; encodings; random distributions; SSCAN coverage.

#[path = "cases.rs"]
mod cases;

use super::*;
use crate::commands::{lookup, Kind};
use crate::storage::ShardData;
use std::collections::BTreeSet;

/// Runs one command as the dispatcher would after its generic checks.
fn run(ks: &mut Keyspace, proto: u8, args: &[&str]) -> Vec<u8> {
    let args: Vec<Bytes> = args
        .iter()
        .map(|a| Bytes::copy_from_slice(a.as_bytes()))
        .collect();
    let cmd = lookup(&args[0]).unwrap_or_else(|| panic!("no command {:?}", args[0]));
    let n = args.len() as i32;
    let mut buf = Vec::new();
    let mut out = Out::new(&mut buf, proto);
    if (cmd.arity > 0 && n != cmd.arity) || n < -cmd.arity {
        out.error(&err::wrong_args(cmd.name));
    } else if let Kind::Data(f) = cmd.kind {
        f(ks, &args, &mut out);
    } else {
        panic!("{} is not a data command", cmd.name);
    }
    buf
}

fn shards() -> (ShardData, ShardData) {
    (ShardData::new(0, 16), ShardData::new(1, 16))
}

fn now() -> u64 {
    crate::util::now_ms()
}

/// The shard (of two) a key lives on.
fn shard_of(key: &str) -> usize {
    slot_owner(key_slot(key.as_bytes()), 2)
}

fn show(b: &[u8]) -> String {
    String::from_utf8_lossy(b).replace("\r\n", "\\r\\n")
}

#[test]
fn replies_match_redis_byte_for_byte() {
    for (proto, cases) in [(2, cases::RESP2_CASES), (3, cases::RESP3_CASES)] {
        let (mut s0, mut s1) = shards();
        let mut ks = Keyspace::many(vec![&mut s0, &mut s1], 2, 0, now());
        for (args, want) in cases {
            let got = run(&mut ks, proto, args);
            assert_eq!(
                show(&got),
                show(want),
                "RESP{proto} {args:?}: got {} want {}",
                show(&got),
                show(want)
            );
        }
    }
    // The sequence's multi-key commands do span both shards.
    assert_ne!(shard_of("foo"), shard_of("bar"));
    assert_ne!(shard_of("a"), shard_of("b"));
}

/// Members of an array or set reply of bulk strings, sorted.
fn members(reply: &[u8]) -> BTreeSet<Vec<u8>> {
    let mut lines = reply
        .split(|&b| b == b'\n')
        .map(|l| l.strip_suffix(b"\r").unwrap_or(l));
    let head = lines.next().unwrap_or_default();
    assert!(
        head.starts_with(b"*") || head.starts_with(b"~"),
        "{}",
        show(reply)
    );
    let mut set = BTreeSet::new();
    while let Some(l) = lines.next() {
        if l.starts_with(b"$") {
            set.insert(lines.next().unwrap_or_default().to_vec());
        }
    }
    set
}

fn words(s: &str) -> BTreeSet<Vec<u8>> {
    s.split_whitespace()
        .map(|w| w.as_bytes().to_vec())
        .collect()
}

fn encoding(ks: &mut Keyspace, key: &str) -> Option<&'static str> {
    ks.peek(key.as_bytes()).map(|e| e.value.encoding())
}

#[test]
fn cross_shard_smove_and_stores() {
    let (mut s0, mut s1) = shards();
    let (src, dst) = ("foo", "bar");
    assert_ne!(shard_of(src), shard_of(dst));
    {
        let mut ks = Keyspace::many(vec![&mut s0, &mut s1], 2, 0, now());
        assert_eq!(run(&mut ks, 2, &["sadd", src, "a", "b", "1"]), b":3\r\n");
        assert_eq!(run(&mut ks, 2, &["smove", src, dst, "a"]), b":1\r\n");
        assert_eq!(run(&mut ks, 2, &["smove", src, dst, "a"]), b":0\r\n");
        assert_eq!(members(&run(&mut ks, 2, &["smembers", dst])), words("a"));
        assert_eq!(encoding(&mut ks, dst), Some("hashtable"));
        assert_eq!(run(&mut ks, 2, &["smove", src, dst, "1"]), b":1\r\n");
        assert_eq!(run(&mut ks, 2, &["smove", src, dst, "b"]), b":1\r\n");
        assert!(!ks.exists(src.as_bytes()), "emptied source deleted");
        assert_eq!(run(&mut ks, 2, &["sunionstore", src, dst]), b":3\r\n");
        assert_eq!(run(&mut ks, 2, &["sinterstore", dst, src, dst]), b":3\r\n");
        assert_eq!(run(&mut ks, 2, &["sdiffstore", dst, src, dst]), b":0\r\n");
        assert!(
            !ks.exists(dst.as_bytes()),
            "empty result deletes the destination"
        );
    }
    // Each key sits on its own shard: `foo` holds {a, b, 1}, `bar` is gone.
    let (on_src, on_dst) = if shard_of(src) == 0 {
        (&s0, &s1)
    } else {
        (&s1, &s0)
    };
    assert_eq!(on_src.dbs[0].keys, 1);
    assert_eq!(on_dst.dbs[0].keys, 0);
    let dirty = s0.stats.dirty + s1.stats.dirty;
    // sadd 3 + smove 2 + 2 + 2 + sunionstore 1 + sinterstore 1 + sdiffstore's delete 1.
    assert_eq!(dirty, 12);
}

#[test]
fn hashtable_replies_hold_the_right_members() {
    let (mut s0, mut s1) = shards();
    let mut ks = Keyspace::many(vec![&mut s0, &mut s1], 2, 0, now());
    run(&mut ks, 3, &["sadd", "a", "x", "y", "z", "1", "2"]);
    run(&mut ks, 3, &["sadd", "b", "y", "z", "w", "2"]);
    run(&mut ks, 3, &["sadd", "c", "z", "2", "3"]);
    let cases = [
        (vec!["smembers", "a"], "x y z 1 2"),
        (vec!["sinter", "a", "b"], "y z 2"),
        (vec!["sinter", "a", "b", "c"], "z 2"),
        (vec!["sunion", "a", "b", "c"], "x y z 1 2 w 3"),
        (vec!["sdiff", "a", "b"], "x 1"),
        (vec!["sdiff", "a", "b", "c"], "x 1"),
        (vec!["srandmember", "a", "100"], "x y z 1 2"),
    ];
    for (args, want) in cases {
        let reply = run(&mut ks, 3, &args);
        assert_eq!(members(&reply), words(want), "{args:?}");
    }
    let reply = run(&mut ks, 3, &["sinter", "a", "b"]);
    assert!(reply.starts_with(b"~3\r\n"), "{}", show(&reply));
    assert_eq!(
        run(&mut ks, 3, &["sintercard", "3", "a", "b", "c"]),
        b":2\r\n"
    );
    let popped = run(&mut ks, 3, &["spop", "c", "5"]);
    assert_eq!(members(&popped), words("z 2 3"));
    assert!(!ks.exists(b"c"));
}

#[test]
fn encodings_follow_redis() {
    let (mut s0, mut s1) = shards();
    let mut ks = Keyspace::many(vec![&mut s0, &mut s1], 2, 0, now());
    let max = intset_entries_max();
    for i in 0..max {
        run(&mut ks, 2, &["sadd", "i", &i.to_string()]);
    }
    assert_eq!(encoding(&mut ks, "i"), Some("intset"));
    run(&mut ks, 2, &["sadd", "i", &max.to_string()]);
    assert_eq!(encoding(&mut ks, "i"), Some("hashtable"));
    // A big SPOP keeps a freshly built remainder: back to an intset, as in Redis.
    let keep = 10;
    let pop = (max + 1 - keep).to_string();
    run(&mut ks, 2, &["spop", "i", &pop]);
    assert_eq!(encoding(&mut ks, "i"), Some("intset"));
    assert_eq!(
        run(&mut ks, 2, &["scard", "i"]),
        format!(":{keep}\r\n").as_bytes()
    );
    // A small SPOP removes in place: the encoding stays.
    run(&mut ks, 2, &["sadd", "h", "1", "2", "3", "a"]);
    run(&mut ks, 2, &["spop", "h", "3"]);
    assert_eq!(encoding(&mut ks, "h"), Some("hashtable"));
    // Stored results start as intsets.
    run(&mut ks, 2, &["sadd", "m", "1", "2", "x"]);
    run(&mut ks, 2, &["sdiffstore", "d", "m", "h"]);
    let ints = run(&mut ks, 2, &["sinterstore", "e", "m", "i"]);
    assert_eq!(encoding(&mut ks, "e").is_some(), ints != b":0\r\n");
    run(&mut ks, 2, &["srem", "m", "x"]);
    run(&mut ks, 2, &["sunionstore", "u", "m"]);
    assert_eq!(encoding(&mut ks, "m"), Some("hashtable"));
    assert_eq!(encoding(&mut ks, "u"), Some("intset"));
    run(&mut ks, 2, &["sadd", "s", "01"]);
    assert_eq!(encoding(&mut ks, "s"), Some("hashtable"));
    run(&mut ks, 2, &["smove", "m", "new", "1"]);
    assert_eq!(encoding(&mut ks, "new"), Some("intset"));
}

/// Redis's `chi_square_value`: sum over distinct values of (observed - expected)^2 / expected.
fn chi_square(samples: &[Vec<u8>]) -> f64 {
    let mut counts = std::collections::BTreeMap::new();
    for s in samples {
        *counts.entry(s).or_insert(0u32) += 1;
    }
    let expected = samples.len() as f64 / counts.len() as f64;
    counts
        .values()
        .map(|&c| (c as f64 - expected).powi(2) / expected)
        .sum()
}

/// Every bulk string of a reply, in order (repeats kept).
fn bulks(reply: &[u8]) -> Vec<Vec<u8>> {
    let mut lines = reply
        .split(|&b| b == b'\n')
        .map(|l| l.strip_suffix(b"\r").unwrap_or(l));
    let mut v = Vec::new();
    while let Some(l) = lines.next() {
        if l.starts_with(b"$") {
            v.push(lines.next().unwrap_or_default().to_vec());
        }
    }
    v
}

#[test]
fn srandmember_distribution_passes_redis_chi_square() {
    let seed = rng::Rng::from_os().next_u64();
    rng::seed_thread(seed);
    let mut s = ShardData::new(0, 1);
    let mut ks = Keyspace::one(&mut s, 1, 0, now());
    let sets = [
        ("h", "1 5 10 50 125 MARY PATRICIA LINDA BARBARA ELIZABETH"),
        ("i", "0 1 2 3 4 5 6 7 8 9"),
    ];
    for (key, contents) in sets {
        let mut args = vec!["sadd", key];
        args.extend(contents.split_whitespace());
        run(&mut ks, 2, &args);
        let res = bulks(&run(&mut ks, 2, &["srandmember", key, "-1000"]));
        assert_eq!(res.len(), 1000);
        // df = 9: 40 means 0.00001 probability, the bound Redis's suite uses.
        assert!(chi_square(&res) < 40.0, "seed {seed}: {key} negative count");
        for size in [8usize, 2] {
            let mut all = Vec::new();
            for _ in 0..1000 / size {
                let res = bulks(&run(&mut ks, 2, &["srandmember", key, &size.to_string()]));
                assert_eq!(res.len(), size);
                assert_eq!(res.iter().collect::<BTreeSet<_>>().len(), size, "distinct");
                all.extend(res);
            }
            assert!(chi_square(&all) < 40.0, "seed {seed}: {key} count {size}");
        }
    }
}

#[test]
fn spop_paths_return_every_member_once() {
    let seed = rng::Rng::from_os().next_u64();
    rng::seed_thread(seed);
    let mut s = ShardData::new(0, 1);
    let mut ks = Keyspace::one(&mut s, 1, 0, now());
    let content: Vec<String> = (1..=20).map(|i| i.to_string()).collect();
    let all: BTreeSet<Vec<u8>> = content.iter().map(|c| c.as_bytes().to_vec()).collect();
    for (key, count, left) in [("p1", 30, 0), ("p2", 2, 18), ("p3", 18, 2)] {
        let mut args = vec!["sadd", key];
        args.extend(content.iter().map(String::as_str));
        run(&mut ks, 2, &args);
        let popped = bulks(&run(&mut ks, 2, &["spop", key, &count.to_string()]));
        assert_eq!(popped.len(), 20 - left, "seed {seed}");
        let rest = bulks(&run(&mut ks, 2, &["smembers", key]));
        assert_eq!(rest.len(), left);
        let union: BTreeSet<Vec<u8>> = popped.into_iter().chain(rest).collect();
        assert_eq!(union, all, "seed {seed}: {key}");
    }
    let single = bulks(&run(&mut ks, 2, &["spop", "p2"]));
    assert_eq!(single.len(), 1);
    assert_eq!(run(&mut ks, 2, &["scard", "p2"]), b":17\r\n");
}

/// Parses an SSCAN reply into (cursor, members).
fn scan_reply(reply: &[u8]) -> (String, Vec<Vec<u8>>) {
    let all = bulks(reply);
    let cursor = String::from_utf8(all[0].clone()).unwrap_or_default();
    (cursor, all[1..].to_vec())
}

#[test]
fn sscan_returns_every_member_present_throughout() {
    let mut s = ShardData::new(0, 1);
    let mut ks = Keyspace::one(&mut s, 1, 0, now());
    let stable: Vec<String> = (0..1000).map(|i| format!("m:{i}")).collect();
    for m in &stable {
        run(&mut ks, 2, &["sadd", "big", m]);
    }
    let mut seen = BTreeSet::new();
    let mut cursor = "0".to_string();
    let mut calls = 0u32;
    loop {
        let (next, found) = scan_reply(&run(&mut ks, 2, &["sscan", "big", &cursor, "count", "7"]));
        seen.extend(found);
        calls += 1;
        // Churn between calls: grow the table past two resizes, then shrink it again.
        if calls < 40 {
            for j in 0..100 {
                run(&mut ks, 2, &["sadd", "big", &format!("t:{calls}:{j}")]);
            }
        } else if calls == 60 {
            let churn = bulks(&run(&mut ks, 2, &["smembers", "big"]));
            for m in churn.iter().filter(|m| m.starts_with(b"t:")) {
                let m = String::from_utf8_lossy(m).into_owned();
                run(&mut ks, 2, &["srem", "big", &m]);
            }
        }
        cursor = next;
        if cursor == "0" {
            break;
        }
        assert!(calls < 100_000);
    }
    for m in &stable {
        assert!(seen.contains(m.as_bytes()), "missed {m}");
    }
    // MATCH filters after visiting, as Redis does.
    let (_, found) = scan_reply(&run(
        &mut ks,
        2,
        &["sscan", "big", "0", "match", "m:99?", "count", "100000"],
    ));
    assert_eq!(found.len(), 10);
}

#[test]
fn expired_keys_behave_as_missing_and_stores_drop_the_ttl() {
    let t = now();
    let mut s = ShardData::new(0, 1);
    let mut ks = Keyspace::one(&mut s, 1, 0, t);
    run(&mut ks, 2, &["sadd", "gone", "a"]);
    ks.set_expire(b"gone", t - 1);
    assert_eq!(run(&mut ks, 2, &["scard", "gone"]), b":0\r\n");
    assert_eq!(run(&mut ks, 2, &["sadd", "gone", "b"]), b":1\r\n");
    assert_eq!(ks.peek(b"gone").map(|e| e.expire_ms), Some(0));
    run(&mut ks, 2, &["sadd", "dst", "z"]);
    ks.set_expire(b"dst", t + 100_000);
    assert_eq!(run(&mut ks, 2, &["sunionstore", "dst", "gone"]), b":1\r\n");
    assert_eq!(ks.peek(b"dst").map(|e| e.expire_ms), Some(0));
    // SPOP's rebuild keeps the key and its TTL (Redis's dbOverwrite).
    for i in 0..20 {
        run(&mut ks, 2, &["sadd", "ttl", &i.to_string()]);
    }
    ks.set_expire(b"ttl", t + 100_000);
    run(&mut ks, 2, &["spop", "ttl", "19"]);
    assert_eq!(ks.peek(b"ttl").map(|e| e.expire_ms), Some(t + 100_000));
}

#[test]
fn srandmember_refuses_unbounded_replies() {
    let mut s = ShardData::new(0, 1);
    let mut ks = Keyspace::one(&mut s, 1, 0, now());
    run(&mut ks, 2, &["sadd", "k", "a"]);
    let reply = run(&mut ks, 2, &["srandmember", "k", "-9223372036854775807"]);
    assert!(
        reply.starts_with(b"-ERR value is out of range"),
        "{}",
        show(&reply)
    );
    let reply = run(&mut ks, 2, &["srandmember", "k", "-3"]);
    assert_eq!(reply, b"*3\r\n$1\r\na\r\n$1\r\na\r\n$1\r\na\r\n");
}

#[test]
fn key_positions_and_cursors() {
    let args = |v: &[&str]| -> Vec<Bytes> {
        v.iter()
            .map(|a| Bytes::copy_from_slice(a.as_bytes()))
            .collect()
    };
    assert_eq!(
        numkeys_keys(&args(&["sintercard", "2", "a", "b", "limit", "1"])),
        [2, 3]
    );
    assert_eq!(numkeys_keys(&args(&["sintercard", "5", "a", "b"])), [2, 3]);
    assert!(numkeys_keys(&args(&["sintercard", "0", "a"])).is_empty());
    assert!(numkeys_keys(&args(&["sintercard", "x", "a"])).is_empty());
    let huge = numkeys_keys(&args(&["sintercard", "9223372036854775807", "a"]));
    assert_eq!(huge, [2]);
    assert_eq!(parse_scan_cursor(b""), Some(0));
    assert_eq!(parse_scan_cursor(b"+7"), Some(7));
    assert_eq!(parse_scan_cursor(b"-1"), Some(u64::MAX));
    assert_eq!(parse_scan_cursor(b"18446744073709551615"), Some(u64::MAX));
    assert_eq!(parse_scan_cursor(b"18446744073709551616"), None);
    assert_eq!(parse_scan_cursor(b" 1"), None);
    assert_eq!(parse_scan_cursor(b"1 "), None);
    assert_eq!(parse_scan_cursor(b"-"), None);
}
