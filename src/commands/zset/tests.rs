//! Handler-level tests for the sorted set family.
//!
//! `recorded` holds scripts of commands with the exact reply bytes redis-server 7.0.15
//! returned for them, in RESP2 and RESP3, some over two shards so that multi-key commands run
//! across shards. They were recorded by a small RESP client replaying each script on a fresh
//! server (FLUSHALL, default thresholds; a `!limits E V` line sets `zset-max-listpack-entries`
//! and `-value` there and the thread's test thresholds here). `run_script` replays them through
//! the command table as the dispatcher would: lookup, arity, the shards of the declared keys
//! locked, the handler, byte-for-byte comparison.
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
