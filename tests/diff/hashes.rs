//! Hash commands (`t_hash.c` in Redis).
//!
//! Fields come from a small pool so that commands meet the fields earlier ones set; `n` and
//! `cnt` mostly hold numbers for HINCRBY and HINCRBYFLOAT. Now and then a write crosses a
//! listpack bound (a value over 64 bytes, or more than 128 fields) so that hashes become hash
//! tables, as in Redis.
//!
//! HKEYS, HVALS and HGETALL are compared byte for byte while the first server holds the hash
//! as a listpack, whose insertion order shardis keeps too, and as sorted multisets once it is
//! a hash table, whose order is each server's own (`Check::HashOrder`). HRANDFIELD is random:
//! only its shape is compared and its picks checked (`Check::Random`). HSCAN is iterated to
//! the end and the sets of field/value pairs compared.

use super::{Check, Cmd, Collection, Gen, GenFn, KeySet, FLOATS};

/// The hash family's own names: `{h}` keys share a shard, `hash:*` spread.
pub const KEYS: KeySet = KeySet {
    names: &[b"{h}a", b"{h}b", b"{h}c", b"hash:1", b"hash:2", b"hash:3"],
    tagged: 3,
};

/// Fields that mostly hold integers.
const NUMERIC_FIELDS: &[&[u8]] = &[b"n", b"cnt"];

/// Fields past `hash-max-listpack-entries` (128) that one big HSET writes.
const BIG_HSET_FIELDS: usize = 130;

/// One weighted generator per command.
const COMMANDS: &[(u32, GenFn)] = &[
    (2, del),
    (2, encoding),
    (12, hset),
    (2, hsetnx),
    (6, hget),
    (2, hmset),
    (3, hmget),
    (4, hdel),
    (2, hlen),
    (2, hstrlen),
    (2, hexists),
    (2, hkeys),
    (2, hvals),
    (3, hgetall),
    (4, hincrby),
    (3, hincrbyfloat),
    (3, hrandfield),
    (2, hscan),
];

pub fn generate(g: &mut Gen) -> Cmd {
    let command = *g.rng.weighted(COMMANDS);
    command(g)
}

fn del(g: &mut Gen) -> Cmd {
    g.del_in(&KEYS)
}

fn encoding(g: &mut Gen) -> Cmd {
    g.encoding_in(&KEYS)
}

fn field(g: &mut Gen) -> Vec<u8> {
    if g.rng.chance(1, 4) {
        return g.rng.pick(NUMERIC_FIELDS).to_vec();
    }
    g.rng
        .pick(&[
            &b"f1"[..],
            b"f2",
            b"f3",
            b"f4",
            b"f5",
            b"x",
            b"",
            b"\xff\x00",
        ])
        .to_vec()
}

/// A value for `field`: an integer for the numeric fields, else any value, and now and then
/// one past `hash-max-listpack-value` (64 bytes).
fn value_for(g: &mut Gen, field: &[u8]) -> Vec<u8> {
    if NUMERIC_FIELDS.contains(&field) && g.rng.chance(3, 4) {
        return g.rng.range(-100, 100).to_string().into_bytes();
    }
    if g.rng.chance(1, 60) {
        let len = 60 + g.rng.index(20);
        return g.rng.bytes_from(len, b"abcdef");
    }
    g.value()
}

/// Field/value pairs for HSET and HMSET: a few, now and then 130 (a hash table at once), and
/// now and then one argument short.
fn pairs(g: &mut Gen) -> Vec<Vec<u8>> {
    let mut args = Vec::new();
    if g.rng.chance(1, 150) {
        for i in 0..BIG_HSET_FIELDS {
            args.push(format!("big{i}").into_bytes());
            args.push(i.to_string().into_bytes());
        }
        return args;
    }
    for _ in 0..g.count(4) {
        let f = field(g);
        let v = value_for(g, &f);
        args.extend([f, v]);
    }
    if g.rng.chance(1, 20) {
        args.pop();
    }
    args
}

fn hset(g: &mut Gen) -> Cmd {
    let key = g.key_in(&KEYS);
    let args = pairs(g);
    g.c("HSET").arg(key).args(args).exact()
}

fn hsetnx(g: &mut Gen) -> Cmd {
    let (key, f) = (g.key_in(&KEYS), field(g));
    let v = value_for(g, &f);
    g.c("HSETNX").arg(key).arg(f).arg(v).exact()
}

fn hget(g: &mut Gen) -> Cmd {
    let (key, f) = (g.key_in(&KEYS), field(g));
    g.c("HGET").arg(key).arg(f).exact()
}

fn hmset(g: &mut Gen) -> Cmd {
    let key = g.key_in(&KEYS);
    let args = pairs(g);
    g.c("HMSET").arg(key).args(args).exact()
}

fn fields(g: &mut Gen) -> Vec<Vec<u8>> {
    let n = g.count(4);
    (0..n).map(|_| field(g)).collect()
}

fn hmget(g: &mut Gen) -> Cmd {
    let (key, fs) = (g.key_in(&KEYS), fields(g));
    g.c("HMGET").arg(key).args(fs).exact()
}

fn hdel(g: &mut Gen) -> Cmd {
    let (key, fs) = (g.key_in(&KEYS), fields(g));
    g.c("HDEL").arg(key).args(fs).exact()
}

fn hlen(g: &mut Gen) -> Cmd {
    let key = g.key_in(&KEYS);
    g.c("HLEN").arg(key).exact()
}

fn hstrlen(g: &mut Gen) -> Cmd {
    let (key, f) = (g.key_in(&KEYS), field(g));
    g.c("HSTRLEN").arg(key).arg(f).exact()
}

fn hexists(g: &mut Gen) -> Cmd {
    let (key, f) = (g.key_in(&KEYS), field(g));
    g.c("HEXISTS").arg(key).arg(f).exact()
}

fn hkeys(g: &mut Gen) -> Cmd {
    let key = g.key_in(&KEYS);
    g.c("HKEYS")
        .arg(key)
        .check(Check::HashOrder { pairs: false })
}

fn hvals(g: &mut Gen) -> Cmd {
    let key = g.key_in(&KEYS);
    g.c("HVALS")
        .arg(key)
        .check(Check::HashOrder { pairs: false })
}

fn hgetall(g: &mut Gen) -> Cmd {
    let key = g.key_in(&KEYS);
    g.c("HGETALL")
        .arg(key)
        .check(Check::HashOrder { pairs: true })
}

/// HINCRBY: mostly on the numeric fields, with increments that sometimes overflow.
fn hincrby(g: &mut Gen) -> Cmd {
    let key = g.key_in(&KEYS);
    let f = if g.rng.chance(3, 4) {
        g.rng.pick(NUMERIC_FIELDS).to_vec()
    } else {
        field(g)
    };
    let by = g.int_or_junk(-1000, 1000, 8);
    g.c("HINCRBY").arg(key).arg(f).arg(by).exact()
}

/// HINCRBYFLOAT: increments from `FLOATS` (inf and nan are refused), sometimes huge ones
/// whose sums show how a long double is printed.
fn hincrbyfloat(g: &mut Gen) -> Cmd {
    let key = g.key_in(&KEYS);
    let f = if g.rng.chance(3, 4) {
        g.rng.pick(NUMERIC_FIELDS).to_vec()
    } else {
        field(g)
    };
    let by = match g.rng.below(12) {
        0 => g
            .rng
            .pick(&[&b"1e308"[..], b"-1e308", b"1e-300", b"0.1"])
            .to_vec(),
        1..=3 => g.rng.range(-50, 50).to_string().into_bytes(),
        _ => g.rng.pick(FLOATS).to_vec(),
    };
    g.c("HINCRBYFLOAT").arg(key).arg(f).arg(by).exact()
}

/// HRANDFIELD key [count [WITHVALUES]]: counts either side of the hash's size, both signs.
fn hrandfield(g: &mut Gen) -> Cmd {
    let key = g.key_in(&KEYS);
    let args = g.c("HRANDFIELD").arg(key);
    let args = match g.rng.below(8) {
        0 | 1 => args,
        2 => args.arg(g.int_or_junk(-6, 6, 4)),
        3 => args
            .arg(g.rng.range(-6, 6).to_string())
            .arg(*g.rng.pick(&["WITHSCORES", "BOGUS"])),
        _ => args
            .arg(g.rng.range(-8, 8).to_string())
            .arg(*g.rng.pick(&["WITHVALUES", "withvalues"])),
    };
    args.check(Check::Random(Collection::Hash))
}

/// A MATCH pattern for field scans.
fn field_pattern(g: &mut Gen) -> &'static str {
    g.rng
        .pick::<&str>(&["*", "f*", "f[1-3]", "?", "*n*", "big1*", "x", ""])
}

/// HSCAN key 0 [MATCH pattern] [COUNT count], iterated to the end; or a cursor Redis refuses
/// (not the empty one: strtoul reads it as 0).
fn hscan(g: &mut Gen) -> Cmd {
    let key = g.key_in(&KEYS);
    if g.rng.chance(1, 15) {
        let cursor = *g.rng.pick(&["abc", " 1", "1.5", "-"]);
        return g.c("HSCAN").arg(key).arg(cursor).exact();
    }
    let mut args = g.c("HSCAN").arg(key).arg("0");
    for _ in 0..g.rng.below(3) {
        args = match g.rng.below(6) {
            0 | 1 => args.arg("MATCH").arg(field_pattern(g)),
            2 | 3 => args.arg("COUNT").arg(g.int_or_junk(1, 20, 10)),
            4 => args.arg("COUNT").arg("0"),
            _ => args.arg(*g.rng.pick(&["MATCH", "NOVALUES", "TYPE"])),
        };
    }
    args.check(Check::ScanKey { pairs: true })
}
