//! Keyspace walks: KEYS, SCAN and RANDOMKEY. All three carry `flag::ALL_SHARDS`, so they run
//! with every shard locked and read the shards' slot tables directly.
//!
//! ## The SCAN cursor is a slot number
//!
//! Every shard keeps its keys per hash slot, and a slot lives on exactly one shard, so the 16384
//! slots in order are a stable, global sequence over the whole keyspace. The cursor is the
//! next slot to visit: 0 starts a scan and a reply's cursor 0 says it is finished. One call
//! visits non-empty slots in slot order, whichever shard holds them, and returns *every* key
//! of each slot it visits, stopping once at least COUNT keys were collected (before MATCH and
//! TYPE filter them, as Redis counts) or the slots run out. The cursor it returns is the next
//! non-empty slot, or 0 when there is none.
//!
//! What that buys:
//! - Redis's guarantee, simply: a key present from the start to the end of a full scan is
//!   returned, because the slot it lives in is visited exactly once. A key may come back at
//!   most once per full scan (Redis allows duplicates; here there are none while the slot
//!   layout stays put).
//! - A slot is never torn: keys sharing a hash tag come back in the same reply.
//! - The cursor stays valid across resharding within this process, because it names a slot,
//!   not a position in some shard's table.
//!
//! The cost: a reply holds whole slots, so COUNT is a lower bound and a slot holding a huge
//! number of keys (one hot hash tag) comes back in one piece. A call reads at most the 16384
//! slot entries of each shard's table plus the keys it returns.

use super::keys::lookup_notouch;
use super::{err, flag, parse, Cmd, Keys};
use crate::protocol::Out;
use crate::storage::{Db, Keyspace, ShardData};
use crate::util::glob_match;
use bytes::Bytes;
use std::cell::Cell;

const WALK: u32 = flag::READONLY | flag::ALL_SHARDS;
const ACL_READ_SLOW: &[&str] = &["keyspace", "read", "slow"];

pub static COMMANDS: [Cmd; 3] = [
    Cmd::data("keys", 2, WALK, Keys::None, keys).with_acl(&[
        "keyspace",
        "read",
        "slow",
        "dangerous",
    ]),
    Cmd::data(
        "scan",
        -2,
        WALK | flag::TOUCHES_ARBITRARY_KEYS,
        Keys::None,
        scan,
    )
    .with_acl(ACL_READ_SLOW),
    Cmd::data(
        "randomkey",
        1,
        WALK | flag::TOUCHES_ARBITRARY_KEYS,
        Keys::None,
        randomkey,
    )
    .with_acl(ACL_READ_SLOW),
];

/// SCAN's default COUNT, as Redis.
const SCAN_COUNT_DEFAULT: usize = 10;

/// The options of the SCAN family: `MATCH pattern`, `COUNT n` and, for SCAN only, `TYPE t`.
/// Shared with HSCAN, SSCAN and ZSCAN.
pub struct ScanOptions {
    /// None when absent or exactly `*` (which matches everything).
    pub pattern: Option<Bytes>,
    pub count: usize,
    pub type_name: Option<Bytes>,
}

impl ScanOptions {
    pub fn matches(&self, key: &[u8]) -> bool {
        self.pattern
            .as_ref()
            .is_none_or(|p| glob_match(p, key, false))
    }
}

/// Parses the options from `args` (everything after the cursor) with Redis's errors: an
/// unknown word or a missing value is a syntax error, COUNT must be a positive integer.
pub fn parse_scan_options(args: &[Bytes], allow_type: bool) -> Result<ScanOptions, &'static str> {
    let mut opts = ScanOptions {
        pattern: None,
        count: SCAN_COUNT_DEFAULT,
        type_name: None,
    };
    let mut rest = args;
    while let [name, value, tail @ ..] = rest {
        if parse::eq(name, "count") {
            let n = parse::i64_arg(value)?;
            opts.count = usize::try_from(n)
                .ok()
                .filter(|&n| n >= 1)
                .ok_or(err::SYNTAX)?;
        } else if parse::eq(name, "match") {
            opts.pattern = (value.as_ref() != b"*").then(|| value.clone());
        } else if parse::eq(name, "type") && allow_type {
            opts.type_name = Some(value.clone());
        } else {
            return Err(err::SYNTAX);
        }
        rest = tail;
    }
    if rest.is_empty() {
        Ok(opts)
    } else {
        Err(err::SYNTAX)
    }
}

/// The selected db of every locked shard.
fn dbs<'a>(shards: &[&'a ShardData], db: usize) -> Vec<&'a Db> {
    shards.iter().filter_map(|s| s.dbs.get(db)).collect()
}

/// The first slot at or after `from` that holds keys on any shard.
fn next_used_slot(dbs: &[&Db], from: usize) -> Option<usize> {
    dbs.iter()
        .filter_map(|d| d.slots.used_from(from).next().map(|(slot, _)| slot))
        .min()
}

/// Visits whole slots from `cursor` until at least `count` keys were collected; returns the
/// keys and the cursor to continue from (0 = done). See the module comment.
fn scan_slots(ks: &Keyspace, cursor: u64, count: usize) -> (Vec<Box<[u8]>>, u64) {
    let shards = ks.shards();
    let dbs = dbs(&shards, ks.db);
    let mut keys: Vec<Box<[u8]>> = Vec::new();
    let Ok(mut from) = usize::try_from(cursor) else {
        return (keys, 0);
    };
    while let Some(slot) = next_used_slot(&dbs, from) {
        if keys.len() >= count {
            return (keys, slot as u64);
        }
        for db in &dbs {
            if let Some(table) = db.slots.get(slot) {
                keys.extend(table.keys().map(Box::<[u8]>::from));
            }
        }
        from = slot + 1;
    }
    (keys, 0)
}

/// SCAN cursor [MATCH pattern] [COUNT count] [TYPE type].
fn scan(ks: &mut Keyspace, args: &[Bytes], out: &mut Out) {
    let cursor = match parse::scan_cursor(&args[1]) {
        Ok(c) => c,
        Err(e) => return out.error(e),
    };
    let opts = match parse_scan_options(&args[2..], true) {
        Ok(o) => o,
        Err(e) => return out.error(e),
    };
    let (candidates, next) = scan_slots(ks, cursor, opts.count);
    let mut keys = Vec::with_capacity(candidates.len());
    for key in candidates {
        if !opts.matches(&key) {
            continue;
        }
        if let Some(wanted) = &opts.type_name {
            let name = lookup_notouch(ks, &key, |e| e.map_or("none", |e| e.value.type_name()));
            if !wanted.eq_ignore_ascii_case(name.as_bytes()) {
                continue;
            }
        }
        // Lazily expires the key, as Redis's final filter does.
        if ks.exists(&key) {
            keys.push(key);
        }
    }
    out.array(2);
    out.bulk(next.to_string().as_bytes());
    out.bulks(keys.iter());
}

/// KEYS pattern: every live key matching, in slot order. Expired keys are skipped, not
/// deleted, as Redis does.
fn keys(ks: &mut Keyspace, args: &[Bytes], out: &mut Out) {
    let pattern = &args[1];
    let all = pattern.as_ref() == b"*";
    let now_ms = ks.now_ms;
    let shards = ks.shards();
    let dbs = dbs(&shards, ks.db);
    let mut found: Vec<&[u8]> = Vec::new();
    let mut slot = 0;
    while let Some(used) = next_used_slot(&dbs, slot) {
        for db in &dbs {
            let Some(table) = db.slots.get(used) else {
                continue;
            };
            let live = table.iter().filter(|(_, e)| !e.is_expired(now_ms));
            let matching = live.filter(|(k, _)| all || glob_match(pattern, k, false));
            found.extend(matching.map(|(k, _)| k));
        }
        slot = used + 1;
    }
    out.bulks(found.iter());
}

thread_local! {
    /// RANDOMKEY's generator state (xorshift64*), seeded per thread from the clock.
    static RANDOM_STATE: Cell<u64> = Cell::new(crate::util::now_us() | 1);
}

/// The next number of this thread's generator.
fn random_u64() -> u64 {
    RANDOM_STATE.with(|state| {
        let mut x = state.get();
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        state.set(x);
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    })
}

/// The `index`th key of the selected db in slot order over all shards (index < stored keys).
fn nth_key(ks: &Keyspace, mut index: usize) -> Option<Box<[u8]>> {
    let shards = ks.shards();
    for db in dbs(&shards, ks.db) {
        if index >= db.keys {
            index -= db.keys;
            continue;
        }
        for (_, table) in db.used_slots_from(0) {
            if index < table.len() {
                return table.keys().nth(index).map(Box::from);
            }
            index -= table.len();
        }
        return None;
    }
    None
}

/// A uniformly random live key, drawing from `random`. An expired key drawn is deleted and
/// another drawn, so every draw but the last shrinks the keyspace: the loop is bounded by the
/// number of keys stored when it starts.
fn random_key(ks: &mut Keyspace, random: &mut dyn FnMut() -> u64) -> Option<Box<[u8]>> {
    let draws_max = ks.dbsize() + 1;
    for _ in 0..draws_max {
        let stored = ks.dbsize();
        if stored == 0 {
            return None;
        }
        let index = (random() % stored as u64) as usize;
        let key = nth_key(ks, index)?;
        if ks.exists(&key) {
            return Some(key);
        }
    }
    None
}

fn randomkey(ks: &mut Keyspace, _args: &[Bytes], out: &mut Out) {
    match random_key(ks, &mut random_u64) {
        Some(key) => out.bulk(&key),
        None => out.null(),
    }
}

#[cfg(test)]
mod tests {
    use super::super::keys::harness::{bulks, scan_reply, World, T0_MS};
    use super::*;
    use crate::storage::{key_slot, SLOTS};
    use std::collections::BTreeSet;

    fn populate(w: &mut World, n: usize) -> BTreeSet<String> {
        (0..n)
            .map(|i| {
                let k = format!("key:{i}");
                w.set(&k, "v");
                k
            })
            .collect()
    }

    /// Runs a full scan; returns every reply's keys.
    fn full_scan(w: &mut World, options: &str) -> Vec<Vec<String>> {
        let mut cursor = 0;
        let mut replies = Vec::new();
        loop {
            let (next, keys) = scan_reply(&w.run(&format!("scan {cursor} {options}")));
            replies.push(keys);
            if next == 0 {
                return replies;
            }
            assert!(
                next > cursor && next < SLOTS as u64,
                "cursor {next} after {cursor}"
            );
            cursor = next;
        }
    }

    #[test]
    fn scan_returns_every_key_once() {
        for nshards in [1, 2, 4] {
            for count in [1, 3, 10, 1000] {
                let mut w = World::new(nshards);
                let all = populate(&mut w, 1000);
                let replies = full_scan(&mut w, &format!("count {count}"));
                let returned: Vec<String> = replies.iter().flatten().cloned().collect();
                assert_eq!(returned.len(), 1000, "{nshards} shards, count {count}");
                assert_eq!(returned.into_iter().collect::<BTreeSet<_>>(), all);
                for keys in &replies[..replies.len() - 1] {
                    assert!(keys.len() >= count, "a reply short of COUNT before the end");
                }
            }
        }
    }

    #[test]
    fn scan_keeps_keys_present_throughout_under_writes() {
        let mut w = World::new(4);
        let stable = populate(&mut w, 500);
        let mut cursor = 0;
        let mut seen = BTreeSet::new();
        let mut round = 0;
        loop {
            let (next, keys) = scan_reply(&w.run(&format!("scan {cursor} count 7")));
            seen.extend(keys);
            // Churn between calls: new keys appear, others come and go.
            w.set(&format!("new:{round}"), "v");
            w.set(&format!("tmp:{round}"), "v");
            w.run(&format!("del tmp:{}", round.max(1) - 1));
            round += 1;
            if next == 0 {
                break;
            }
            cursor = next;
        }
        assert!(stable.is_subset(&seen));
    }

    #[test]
    fn scan_never_tears_a_slot() {
        let mut w = World::new(2);
        populate(&mut w, 200);
        for i in 0..50 {
            w.set(&format!("{{tag}}:{i}"), "v");
        }
        let replies = full_scan(&mut w, "count 1");
        let tagged: Vec<usize> = replies
            .iter()
            .map(|keys| keys.iter().filter(|k| k.starts_with("{tag}")).count())
            .collect();
        assert_eq!(
            tagged.iter().filter(|&&n| n > 0).collect::<Vec<_>>(),
            vec![&50]
        );
        // Every reply is exactly one slot at COUNT 1.
        for keys in &replies {
            let slots: BTreeSet<u16> = keys.iter().map(|k| key_slot(k.as_bytes())).collect();
            assert!(slots.len() <= 1);
        }
    }

    #[test]
    fn scan_match_and_type() {
        let mut w = World::new(2);
        populate(&mut w, 1000);
        let keys = |replies: Vec<Vec<String>>| replies.into_iter().flatten().count();
        assert_eq!(keys(full_scan(&mut w, "match key:1??")), 100);
        assert_eq!(keys(full_scan(&mut w, "type list")), 0);
        assert_eq!(keys(full_scan(&mut w, "type STRING")), 1000);
        assert_eq!(
            keys(full_scan(&mut w, "type string match key:* count 10")),
            1000
        );
        assert_eq!(keys(full_scan(&mut w, "match * count 5")), 1000);
    }

    #[test]
    fn scan_skips_and_reclaims_expired_keys() {
        let mut w = World::new(2);
        populate(&mut w, 20);
        for i in 0..20 {
            w.put(0, &format!("old:{i}"), "v", T0_MS);
        }
        let all: usize = full_scan(&mut w, "count 1000").iter().map(Vec::len).sum();
        assert_eq!(all, 20);
        assert_eq!(w.stored(0), 20);
        for i in 0..20 {
            w.put(0, &format!("old:{i}"), "v", T0_MS);
        }
        let typed: usize = full_scan(&mut w, "type string").iter().map(Vec::len).sum();
        assert_eq!(typed, 20);
        assert_eq!(w.stored(0), 20);
    }

    #[test]
    fn scan_arguments() {
        let mut w = World::new(2);
        w.set("a", "1");
        let one = "*2\r\n$1\r\n0\r\n*1\r\n$1\r\na\r\n";
        let none = "*2\r\n$1\r\n0\r\n*0\r\n";
        let cases = [
            ("scan 0", one),
            ("scan +0", one),
            ("scan -0", one),
            ("scan -1", none),
            ("scan 16384", none),
            ("scan 18446744073709551615", none),
            ("scan 18446744073709551616", "-ERR invalid cursor\r\n"),
            ("scan 0x", "-ERR invalid cursor\r\n"),
            ("scan -", "-ERR invalid cursor\r\n"),
            ("scan 1.5", "-ERR invalid cursor\r\n"),
            ("scan 0 count 0", "-ERR syntax error\r\n"),
            ("scan 0 count -1", "-ERR syntax error\r\n"),
            (
                "scan 0 count x",
                "-ERR value is not an integer or out of range\r\n",
            ),
            ("scan 0 match", "-ERR syntax error\r\n"),
            ("scan 0 count 10 foo", "-ERR syntax error\r\n"),
            ("scan 0 TYPE", "-ERR syntax error\r\n"),
            ("scan 0 foo bar", "-ERR syntax error\r\n"),
            ("scan x count 0", "-ERR invalid cursor\r\n"),
            ("scan 0 match x* count 1", none),
            ("scan 0 match a MATCH b", none),
            ("scan 0 type list", none),
            (
                "scan",
                "-ERR wrong number of arguments for 'scan' command\r\n",
            ),
        ];
        for (line, reply) in cases {
            assert_eq!(w.run(line), reply, "{}", line);
        }
        assert_eq!(w.run_args(&[b"scan", b""]), one);
        assert_eq!(w.run_args(&[b"scan", b" 0"]), "-ERR invalid cursor\r\n");
    }

    #[test]
    fn scan_cursor_points_at_the_next_used_slot() {
        let mut w = World::new(2);
        w.set("a", "1"); // slot 15495
        w.set("b", "1"); // slot 3300
        let (next, keys) = scan_reply(&w.run("scan 0 count 1"));
        assert_eq!(
            (next, keys),
            (u64::from(key_slot(b"a")), vec!["b".to_string()])
        );
        let (next, keys) = scan_reply(&w.run(&format!("scan {} count 1", key_slot(b"b") + 1)));
        assert_eq!((next, keys), (0, vec!["a".to_string()]));
    }

    #[test]
    fn keys_matches_live_keys_in_slot_order() {
        let mut w = World::new(4);
        populate(&mut w, 100);
        w.put(0, "key:old", "v", T0_MS);
        let all = bulks(&w.run("keys *"));
        assert_eq!(all.len(), 100);
        let slots: Vec<u16> = all.iter().map(|k| key_slot(k.as_bytes())).collect();
        assert!(slots.windows(2).all(|p| p[0] <= p[1]));
        assert_eq!(bulks(&w.run("keys key:1?")).len(), 10);
        assert_eq!(bulks(&w.run("keys key:old")).len(), 0);
        // KEYS skips expired keys without reclaiming them.
        assert_eq!(w.stored(0), 101);
        assert_eq!(w.run("keys nomatch*"), "*0\r\n");
        w.db = 1;
        assert_eq!(w.run("keys *"), "*0\r\n");
    }

    #[test]
    fn keys_exact_reply() {
        let mut w = World::new(2);
        w.set("foo", "1");
        w.set("bar", "1");
        // bar is slot 5061, foo slot 12182.
        assert_eq!(w.run("keys *"), "*2\r\n$3\r\nbar\r\n$3\r\nfoo\r\n");
        assert_eq!(w.run("keys f*"), "*1\r\n$3\r\nfoo\r\n");
    }

    #[test]
    fn randomkey_replies() {
        let mut w = World::new(2);
        assert_eq!(w.run("randomkey"), "$-1\r\n");
        w.proto = 3;
        assert_eq!(w.run("randomkey"), "_\r\n");
        w.proto = 2;
        let all = populate(&mut w, 50);
        for _ in 0..100 {
            let reply = w.run("randomkey");
            let key = reply.split("\r\n").nth(1).expect("a bulk");
            assert!(all.contains(key), "{}", reply);
        }
    }

    #[test]
    fn random_key_draws_everything_and_skips_expired() {
        let mut w = World::new(4);
        let all = populate(&mut w, 40);
        for i in 0..40 {
            w.put(0, &format!("old:{i}"), "v", T0_MS);
        }
        let mut seen = BTreeSet::new();
        let mut n = 0u64;
        let mut parts: Vec<&mut ShardData> = w.shards.iter_mut().collect();
        let mut ks = Keyspace::many(std::mem::take(&mut parts), 4, 0, T0_MS);
        for _ in 0..400 {
            let mut counter = || {
                n += 1;
                n
            };
            let key = random_key(&mut ks, &mut counter).expect("keys are stored");
            seen.insert(String::from_utf8(key.into_vec()).expect("utf-8"));
        }
        let all_keys: BTreeSet<String> = all.into_iter().collect();
        assert_eq!(seen, all_keys);
        assert_eq!(ks.dbsize(), 40);
    }

    #[test]
    fn random_key_of_only_expired_keys_is_none() {
        let mut w = World::new(2);
        for i in 0..10 {
            w.put(0, &format!("old:{i}"), "v", T0_MS);
        }
        assert_eq!(w.run("randomkey"), "$-1\r\n");
        assert_eq!(w.stored(0), 0);
    }
}
