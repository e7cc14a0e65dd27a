//! Stream commands (`t_stream.c` in Redis): XADD with explicit, partial (`ms-*`) and bad IDs
//! and every trimming form (MAXLEN/MINID, `=`/`~`, LIMIT, NOMKSTREAM), XLEN, XRANGE and
//! XREVRANGE with exclusive bounds and COUNT, XDEL, XTRIM, XSETID, XREAD, the consumer group
//! commands (XGROUP, XREADGROUP with `>` and history, NOACK, XACK, XPENDING, XCLAIM,
//! XAUTOCLAIM), and XINFO GROUPS. (DEBUG DIGEST-VALUE is
//! compared in `tests/streams.rs`: the reference server here refuses DEBUG.)
//!
//! Auto IDs (`*`) and idle times depend on each server's clock, so they are never used: IDs
//! are built from the command's position in the run (`Gen::index`), which grows, so most
//! XADDs succeed, and now and then an ID from the past or a malformed one tests the errors.
//! XPENDING's extended form, XCLAIM and XAUTOCLAIM always use a min-idle-time of 0 and no
//! IDLE/TIME option; XINFO STREAM and CONSUMERS (radix tree internals, idle times) are left
//! to the Tcl suite.

use super::{Cmd, Gen, GenFn, KeySet};

/// The stream family's own names: `{x}` keys share a shard, `xs:*` spread.
pub const KEYS: KeySet = KeySet {
    names: &[b"{x}a", b"{x}b", b"{x}c", b"xs:1", b"xs:2"],
    tagged: 3,
};

const GROUPS: &[&[u8]] = &[b"g1", b"g2", b"g3"];
const CONSUMERS: &[&[u8]] = &[b"alice", b"bob", b"carol"];
const FIELDS: &[&[u8]] = &[b"f", b"item", b"name", b"x", b"1"];

const COMMANDS: &[(u32, GenFn)] = &[
    (1, del),
    (1, encoding),
    (14, xadd),
    (3, xlen),
    (5, xrange),
    (2, xdel),
    (2, xtrim),
    (1, xsetid),
    (3, xread),
    (7, xgroup),
    (6, xreadgroup),
    (3, xack),
    (3, xpending),
    (2, xclaim),
    (2, xautoclaim),
    (2, xinfo_groups),
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

/// The millisecond part of IDs made now: grows with the run.
fn now_ms(g: &Gen) -> i64 {
    1000 + g.index() * 10
}

/// An ID for ranges and deletions: around the IDs made so far, or a special one.
fn id(g: &mut Gen) -> Vec<u8> {
    let top = now_ms(g);
    match g.rng.below(20) {
        0 => b"-".to_vec(),
        1 => b"+".to_vec(),
        2 => b"0".to_vec(),
        3 => g
            .rng
            .pick(&[
                &b"abc"[..],
                b"1-x",
                b"-1",
                b"",
                b"18446744073709551615-18446744073709551615",
            ])
            .to_vec(),
        4..=8 => g.rng.range(1000, top + 1).to_string().into_bytes(),
        _ => format!("{}-{}", g.rng.range(1000, top + 1), g.rng.below(3)).into_bytes(),
    }
}

/// A range bound, sometimes exclusive.
fn bound(g: &mut Gen) -> Vec<u8> {
    let mut b = id(g);
    if g.rng.chance(1, 5) {
        b.insert(0, b'(');
    }
    b
}

fn fields(g: &mut Gen) -> Vec<Vec<u8>> {
    let n = g.count(3);
    let mut v = Vec::new();
    for _ in 0..n {
        v.push(g.rng.pick(FIELDS).to_vec());
        v.push(g.value());
    }
    if g.rng.chance(1, 40) {
        v.pop();
    }
    v
}

/// MAXLEN/MINID [=|~] bound [LIMIT n], as XADD and XTRIM take them.
fn trim_args(g: &mut Gen) -> Vec<Vec<u8>> {
    let mut v = Vec::new();
    let maxlen = g.rng.chance(1, 2);
    v.push(if maxlen {
        b"MAXLEN".to_vec()
    } else {
        b"MINID".to_vec()
    });
    let approx = match g.rng.below(3) {
        0 => {
            v.push(b"~".to_vec());
            true
        }
        1 => {
            v.push(b"=".to_vec());
            false
        }
        _ => false,
    };
    if maxlen {
        v.push(g.int_or_junk(0, 12, 30));
    } else {
        let top = now_ms(g);
        let back = g.rng.range(0, 400);
        v.push((top - back).max(0).to_string().into_bytes());
    }
    if g.rng.chance(1, 4) && (approx || g.rng.chance(1, 5)) {
        v.push(b"LIMIT".to_vec());
        v.push(g.int_or_junk(0, 5, 20));
    }
    v
}

/// XADD key [NOMKSTREAM] [trim] id field value ...
fn xadd(g: &mut Gen) -> Cmd {
    let key = g.key_in(&KEYS);
    let mut a = g.c("XADD").arg(key);
    if g.rng.chance(1, 10) {
        a = a.arg("NOMKSTREAM");
    }
    if g.rng.chance(1, 5) {
        a = a.args(trim_args(g));
    }
    let top = now_ms(g);
    let idarg = match g.rng.below(20) {
        0 => id(g),
        1 => b"0-0".to_vec(),
        2..=5 => format!("{}-*", top).into_bytes(),
        6 => format!("{}-*", top - 10).into_bytes(),
        _ => format!("{}-{}", top, g.rng.below(3)).into_bytes(),
    };
    let f = fields(g);
    a.arg(idarg).args(f).exact()
}

fn xlen(g: &mut Gen) -> Cmd {
    let key = g.key_in(&KEYS);
    g.c("XLEN").arg(key).exact()
}

/// XRANGE / XREVRANGE key a b [COUNT n]
fn xrange(g: &mut Gen) -> Cmd {
    let key = g.key_in(&KEYS);
    let name = if g.rng.chance(1, 2) {
        "XRANGE"
    } else {
        "XREVRANGE"
    };
    let (a, b) = (bound(g), bound(g));
    let mut c = g.c(name).arg(key).arg(a).arg(b);
    if g.rng.chance(1, 3) {
        let n = g.int_or_junk(-1, 5, 20);
        c = c.arg("COUNT").arg(n);
    }
    c.exact()
}

fn xdel(g: &mut Gen) -> Cmd {
    let key = g.key_in(&KEYS);
    let n = g.count(3);
    let ids: Vec<Vec<u8>> = (0..n).map(|_| id(g)).collect();
    g.c("XDEL").arg(key).args(ids).exact()
}

fn xtrim(g: &mut Gen) -> Cmd {
    let key = g.key_in(&KEYS);
    let t = if g.rng.chance(1, 20) {
        vec![b"LIMIT".to_vec(), b"1".to_vec()]
    } else {
        trim_args(g)
    };
    g.c("XTRIM").arg(key).args(t).exact()
}

/// XSETID key id [ENTRIESADDED n] [MAXDELETEDID id]
fn xsetid(g: &mut Gen) -> Cmd {
    let key = g.key_in(&KEYS);
    let top = now_ms(g);
    let idarg = if g.rng.chance(1, 4) {
        id(g)
    } else {
        format!("{}-5", top).into_bytes()
    };
    let mut c = g.c("XSETID").arg(key).arg(idarg);
    if g.rng.chance(1, 3) {
        let n = g.int_or_junk(-1, 100, 10);
        c = c.arg("ENTRIESADDED").arg(n);
    }
    if g.rng.chance(1, 3) {
        let m = id(g);
        c = c.arg("MAXDELETEDID").arg(m);
    }
    c.exact()
}

/// XREAD [COUNT n] STREAMS key... id... (never BLOCK: see `tests/streams.rs`).
fn xread(g: &mut Gen) -> Cmd {
    let n = g.count(2);
    let keys = g.keys_in(&KEYS, n);
    let mut c = g.c("XREAD");
    if g.rng.chance(1, 2) {
        let cnt = g.int_or_junk(0, 4, 20);
        c = c.arg("COUNT").arg(cnt);
    }
    let mut ids = Vec::new();
    for _ in 0..n {
        ids.push(match g.rng.below(6) {
            0 => b"$".to_vec(),
            1 => b">".to_vec(),
            _ => id(g),
        });
    }
    if g.rng.chance(1, 30) {
        ids.pop();
    }
    c.arg("STREAMS").args(keys).args(ids).exact()
}

fn group(g: &mut Gen) -> Vec<u8> {
    g.rng.pick(GROUPS).to_vec()
}

fn consumer(g: &mut Gen) -> Vec<u8> {
    g.rng.pick(CONSUMERS).to_vec()
}

/// XGROUP CREATE/SETID/DESTROY/CREATECONSUMER/DELCONSUMER.
fn xgroup(g: &mut Gen) -> Cmd {
    let key = g.key_in(&KEYS);
    let grp = group(g);
    match g.rng.below(12) {
        0..=5 => {
            let start = if g.rng.chance(1, 2) {
                b"$".to_vec()
            } else {
                id(g)
            };
            let mut c = g.c("XGROUP").arg("CREATE").arg(key).arg(grp).arg(start);
            if g.rng.chance(2, 3) {
                c = c.arg("MKSTREAM");
            }
            if g.rng.chance(1, 4) {
                let n = g.int_or_junk(-2, 20, 10);
                c = c.arg("ENTRIESREAD").arg(n);
            }
            c.exact()
        }
        6 | 7 => {
            let start = if g.rng.chance(1, 3) {
                b"$".to_vec()
            } else {
                id(g)
            };
            let mut c = g.c("XGROUP").arg("SETID").arg(key).arg(grp).arg(start);
            if g.rng.chance(1, 3) {
                let n = g.int_or_junk(-1, 20, 10);
                c = c.arg("ENTRIESREAD").arg(n);
            }
            c.exact()
        }
        8 => g.c("XGROUP").arg("DESTROY").arg(key).arg(grp).exact(),
        9 | 10 => {
            let who = consumer(g);
            g.c("XGROUP")
                .arg("CREATECONSUMER")
                .arg(key)
                .arg(grp)
                .arg(who)
                .exact()
        }
        _ => {
            let who = consumer(g);
            g.c("XGROUP")
                .arg("DELCONSUMER")
                .arg(key)
                .arg(grp)
                .arg(who)
                .exact()
        }
    }
}

/// XREADGROUP GROUP g c [COUNT n] [NOACK] STREAMS key... id... with `>` or history IDs.
fn xreadgroup(g: &mut Gen) -> Cmd {
    let n = if g.rng.chance(4, 5) { 1 } else { 2 };
    let keys = g.keys_in(&KEYS, n);
    let (grp, who) = (group(g), consumer(g));
    let mut c = g.c("XREADGROUP").arg("GROUP").arg(grp).arg(who);
    if g.rng.chance(1, 2) {
        let cnt = g.int_or_junk(0, 4, 20);
        c = c.arg("COUNT").arg(cnt);
    }
    if g.rng.chance(1, 6) {
        c = c.arg("NOACK");
    }
    let mut ids = Vec::new();
    for _ in 0..n {
        ids.push(match g.rng.below(8) {
            0 => id(g),
            1 => b"0".to_vec(),
            2 if g.rng.chance(1, 4) => b"$".to_vec(),
            _ => b">".to_vec(),
        });
    }
    c.arg("STREAMS").args(keys).args(ids).exact()
}

fn xack(g: &mut Gen) -> Cmd {
    let key = g.key_in(&KEYS);
    let grp = group(g);
    let n = g.count(3);
    let ids: Vec<Vec<u8>> = (0..n).map(|_| id(g)).collect();
    g.c("XACK").arg(key).arg(grp).args(ids).exact()
}

/// XPENDING key group (the summary), or the extended form where its reply cannot hold idle
/// times (which depend on each server's clock): COUNT 0 answers an empty array, a missing
/// COUNT a syntax error, and a bad key or group the NOGROUP error.
fn xpending(g: &mut Gen) -> Cmd {
    let key = g.key_in(&KEYS);
    let grp = group(g);
    match g.rng.below(4) {
        0 => {
            let (a, b) = (bound(g), bound(g));
            let n = g.int_or_junk(0, 0, 10);
            g.c("XPENDING")
                .arg(key)
                .arg(grp)
                .arg(a)
                .arg(b)
                .arg(n)
                .exact()
        }
        1 => g.c("XPENDING").arg(key).arg(grp).arg("-").arg("+").exact(),
        _ => g.c("XPENDING").arg(key).arg(grp).exact(),
    }
}

/// XCLAIM key group consumer 0 id... [JUSTID] [FORCE] [RETRYCOUNT n] [LASTID id]
fn xclaim(g: &mut Gen) -> Cmd {
    let key = g.key_in(&KEYS);
    let (grp, who) = (group(g), consumer(g));
    let n = g.count(3);
    let ids: Vec<Vec<u8>> = (0..n).map(|_| id(g)).collect();
    let mut c = g.c("XCLAIM").arg(key).arg(grp).arg(who).arg("0").args(ids);
    if g.rng.chance(1, 2) {
        c = c.arg("JUSTID");
    }
    if g.rng.chance(1, 4) {
        c = c.arg("FORCE");
    }
    if g.rng.chance(1, 4) {
        let r = g.int_or_junk(0, 5, 10);
        c = c.arg("RETRYCOUNT").arg(r);
    }
    if g.rng.chance(1, 5) {
        let l = id(g);
        c = c.arg("LASTID").arg(l);
    }
    if g.rng.chance(1, 30) {
        c = c.arg("BOGUS");
    }
    c.exact()
}

/// XAUTOCLAIM key group consumer 0 start [COUNT n] [JUSTID]
fn xautoclaim(g: &mut Gen) -> Cmd {
    let key = g.key_in(&KEYS);
    let (grp, who) = (group(g), consumer(g));
    let start = bound(g);
    let mut c = g
        .c("XAUTOCLAIM")
        .arg(key)
        .arg(grp)
        .arg(who)
        .arg("0")
        .arg(start);
    if g.rng.chance(1, 2) {
        let n = g.int_or_junk(0, 4, 10);
        c = c.arg("COUNT").arg(n);
    }
    if g.rng.chance(1, 2) {
        c = c.arg("JUSTID");
    }
    c.exact()
}

fn xinfo_groups(g: &mut Gen) -> Cmd {
    let key = g.key_in(&KEYS);
    g.c("XINFO").arg("GROUPS").arg(key).exact()
}
