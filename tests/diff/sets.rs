//! Set commands (`t_set.c` in Redis).
//!
//! Members are mostly small integers (so sets start as intsets) and a few words (which make
//! them hash tables); now and then one SADD adds 520 integers, past `set-max-intset-entries`.
//!
//! Member order is each server's own once a set is a hash table, so SMEMBERS, SINTER, SUNION
//! and SDIFF are compared sorted; SRANDMEMBER only by shape, with its picks checked against
//! each server's copy of the set (`Check::Random`); SPOP likewise, after which the second
//! server is made to have popped the same members (`Check::Spop`). SSCAN is iterated to the
//! end and the sets of members compared.

use super::{Args, Check, Cmd, Collection, Gen, GenFn, KeySet};

/// The set family's own names: `{s}` keys share a shard, `set:*` spread.
pub const KEYS: KeySet = KeySet {
    names: &[b"{s}a", b"{s}b", b"{s}c", b"set:1", b"set:2", b"set:3"],
    tagged: 3,
};

/// Integers one big SADD adds: past `set-max-intset-entries` (512).
const BIG_SADD_MEMBERS: i64 = 520;

/// One weighted generator per command.
const COMMANDS: &[(u32, GenFn)] = &[
    (2, del),
    (2, encoding),
    (12, sadd),
    (4, srem),
    (2, scard),
    (3, sismember),
    (2, smismember),
    (3, smembers),
    (3, srandmember),
    (3, spop),
    (3, smove),
    (4, combine),
    (3, combine_store),
    (2, sintercard),
    (2, sscan),
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

fn member(g: &mut Gen) -> Vec<u8> {
    match g.rng.below(12) {
        0..=6 => g.rng.range(-3, 25).to_string().into_bytes(),
        7..=9 => g.rng.pick(&[&b"a"[..], b"b", b"c", b"", b"007"]).to_vec(),
        10 => g
            .rng
            .pick(&[&b"9223372036854775807"[..], b"-9223372036854775808", b"1e3"])
            .to_vec(),
        _ => g.value(),
    }
}

fn members(g: &mut Gen) -> Vec<Vec<u8>> {
    let n = g.count(5);
    (0..n).map(|_| member(g)).collect()
}

fn sadd(g: &mut Gen) -> Cmd {
    let key = g.key_in(&KEYS);
    if g.rng.chance(1, 150) {
        let many = (0..BIG_SADD_MEMBERS).map(|i| (i * 3).to_string());
        return g.c("SADD").arg(key).args(many).exact();
    }
    let ms = members(g);
    g.c("SADD").arg(key).args(ms).exact()
}

fn srem(g: &mut Gen) -> Cmd {
    let (key, ms) = (g.key_in(&KEYS), members(g));
    g.c("SREM").arg(key).args(ms).exact()
}

fn scard(g: &mut Gen) -> Cmd {
    let key = g.key_in(&KEYS);
    g.c("SCARD").arg(key).exact()
}

fn sismember(g: &mut Gen) -> Cmd {
    let (key, m) = (g.key_in(&KEYS), member(g));
    g.c("SISMEMBER").arg(key).arg(m).exact()
}

fn smismember(g: &mut Gen) -> Cmd {
    let (key, ms) = (g.key_in(&KEYS), members(g));
    g.c("SMISMEMBER").arg(key).args(ms).exact()
}

fn smembers(g: &mut Gen) -> Cmd {
    let key = g.key_in(&KEYS);
    g.c("SMEMBERS").arg(key).check(Check::SortedArray)
}

/// A count for SRANDMEMBER and SPOP: either side of a set's size, from `lowest` up, or junk.
fn pick_count(g: &mut Gen, args: Args, lowest: i64) -> Args {
    match g.rng.below(10) {
        0..=3 => args,
        4 => args.arg(g.junk_int()),
        _ => args.arg(g.rng.range(lowest, 8).to_string()),
    }
}

/// SRANDMEMBER key [count].
fn srandmember(g: &mut Gen) -> Cmd {
    let key = g.key_in(&KEYS);
    let args = g.c("SRANDMEMBER").arg(key);
    pick_count(g, args, -8).check(Check::Random(Collection::Set))
}

/// SPOP key [count]: negative counts are refused (rarely asked for).
fn spop(g: &mut Gen) -> Cmd {
    let key = g.key_in(&KEYS);
    let args = g.c("SPOP").arg(key);
    let lowest = if g.rng.chance(1, 10) { -2 } else { 0 };
    pick_count(g, args, lowest).check(Check::Spop)
}

/// SMOVE source destination member: same key, same shard, or across shards.
fn smove(g: &mut Gen) -> Cmd {
    let (keys, m) = (g.keys_in(&KEYS, 2), member(g));
    g.c("SMOVE").args(keys).arg(m).exact()
}

/// SINTER, SUNION or SDIFF over 1 to 4 keys, compared sorted.
fn combine(g: &mut Gen) -> Cmd {
    let name = *g.rng.pick(&["SINTER", "SUNION", "SDIFF"]);
    let n = g.count(4);
    let keys = g.keys_in(&KEYS, n);
    g.c(name).args(keys).check(Check::SortedArray)
}

/// SINTERSTORE, SUNIONSTORE or SDIFFSTORE: the destination may be a source, or hold another
/// type (it is overwritten).
fn combine_store(g: &mut Gen) -> Cmd {
    let name = *g.rng.pick(&["SINTERSTORE", "SUNIONSTORE", "SDIFFSTORE"]);
    let n = g.count(4);
    let keys = g.keys_in(&KEYS, n + 1);
    g.c(name).args(keys).exact()
}

/// SINTERCARD numkeys key [key ...] [LIMIT limit].
fn sintercard(g: &mut Gen) -> Cmd {
    let n = g.count(3);
    let keys = g.keys_in(&KEYS, n);
    let args = g.c("SINTERCARD").arg(g.numkeys(n)).args(keys);
    match g.rng.below(10) {
        0..=4 => args.exact(),
        5 => args.arg("LIMIT").arg(g.int_or_junk(-1, 0, 3)).exact(),
        6 => args.arg(*g.rng.pick(&["LIMIT", "FOO"])).exact(),
        _ => args.arg("LIMIT").arg(g.rng.range(1, 5).to_string()).exact(),
    }
}

/// A MATCH pattern for member scans.
fn member_pattern(g: &mut Gen) -> &'static str {
    g.rng
        .pick::<&str>(&["*", "1*", "[a-c]", "?", "*0*", "-*", ""])
}

/// SSCAN key 0 [MATCH pattern] [COUNT count], iterated to the end; or a cursor Redis refuses
/// (not the empty one: strtoul reads it as 0).
fn sscan(g: &mut Gen) -> Cmd {
    let key = g.key_in(&KEYS);
    if g.rng.chance(1, 15) {
        let cursor = *g.rng.pick(&["abc", " 1", "1.5", "-"]);
        return g.c("SSCAN").arg(key).arg(cursor).exact();
    }
    let mut args = g.c("SSCAN").arg(key).arg("0");
    for _ in 0..g.rng.below(3) {
        args = match g.rng.below(6) {
            0 | 1 => args.arg("MATCH").arg(member_pattern(g)),
            2 | 3 => args.arg("COUNT").arg(g.int_or_junk(1, 20, 10)),
            4 => args.arg("COUNT").arg("0"),
            _ => args.arg(*g.rng.pick(&["MATCH", "TYPE"])),
        };
    }
    args.check(Check::ScanKey { pairs: false })
}
