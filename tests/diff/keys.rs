//! Keyspace commands (`db.c` and `expire.c` in Redis): existence, types, expiry, renames,
//! copies and moves between databases, iteration.
//!
//! Expiry arguments come from `Gen`'s deterministic helpers; replies that read the clock are
//! compared with `Check::Near`, KEYS sorted, SCAN as sets, RANDOMKEY as null or not.

use super::{Args, Check, Cmd, Gen, GenFn};

/// TTL and EXPIRETIME may differ by this much between two servers (seconds).
const SECS_TOLERANCE: i64 = 5;
/// PTTL and PEXPIRETIME may differ by this much between two servers (milliseconds).
const MS_TOLERANCE: i64 = 5000;

/// One weighted generator per command.
const COMMANDS: &[(u32, GenFn)] = &[
    (3, del),
    (2, unlink),
    (3, exists),
    (2, type_),
    (3, expire),
    (2, pexpire),
    (2, expireat),
    (2, pexpireat),
    (3, ttl),
    (2, pttl),
    (1, expiretime),
    (1, pexpiretime),
    (2, persist),
    (2, rename),
    (2, renamenx),
    (2, copy),
    (2, move_),
    (1, touch),
    (2, object),
    (2, dbsize),
    (2, select),
    (2, keys),
    (2, scan),
    (1, randomkey),
];

pub fn generate(g: &mut Gen) -> Cmd {
    let command = *g.rng.weighted(COMMANDS);
    command(g)
}

fn del(g: &mut Gen) -> Cmd {
    let n = g.count(4);
    let keys = g.keys(n);
    g.c("DEL").args(keys).exact()
}

fn unlink(g: &mut Gen) -> Cmd {
    let n = g.count(4);
    let keys = g.keys(n);
    g.c("UNLINK").args(keys).exact()
}

/// EXISTS counts a key once per time it is named, duplicates included.
fn exists(g: &mut Gen) -> Cmd {
    let n = g.count(5);
    let keys = g.keys(n);
    g.c("EXISTS").args(keys).exact()
}

fn type_(g: &mut Gen) -> Cmd {
    let key = g.key();
    g.c("TYPE").arg(key).exact()
}

/// The NX|XX|GT|LT flags of the EXPIRE family: usually none or one, sometimes a conflicting
/// pair or an unknown word.
fn expire_flags(g: &mut Gen, mut args: Args) -> Args {
    let n = match g.rng.below(10) {
        0..=3 => 0,
        4..=8 => 1,
        _ => 2,
    };
    for _ in 0..n {
        args = args.arg(*g.rng.pick(&["NX", "XX", "GT", "LT", "gt", "xx", "FOO"]));
    }
    args
}

fn expire(g: &mut Gen) -> Cmd {
    let (key, secs) = (g.key(), g.secs_arg());
    let args = g.c("EXPIRE").arg(key).arg(secs);
    expire_flags(g, args).exact()
}

fn pexpire(g: &mut Gen) -> Cmd {
    let (key, ms) = (g.key(), g.ms_arg());
    let args = g.c("PEXPIRE").arg(key).arg(ms);
    expire_flags(g, args).exact()
}

fn expireat(g: &mut Gen) -> Cmd {
    let (key, at) = (g.key(), g.abs_secs_arg());
    let args = g.c("EXPIREAT").arg(key).arg(at);
    expire_flags(g, args).exact()
}

fn pexpireat(g: &mut Gen) -> Cmd {
    let (key, at) = (g.key(), g.abs_ms_arg());
    let args = g.c("PEXPIREAT").arg(key).arg(at);
    expire_flags(g, args).exact()
}

fn ttl(g: &mut Gen) -> Cmd {
    let key = g.key();
    g.c("TTL").arg(key).check(Check::Near {
        tolerance: SECS_TOLERANCE,
    })
}

fn pttl(g: &mut Gen) -> Cmd {
    let key = g.key();
    g.c("PTTL").arg(key).check(Check::Near {
        tolerance: MS_TOLERANCE,
    })
}

fn expiretime(g: &mut Gen) -> Cmd {
    let key = g.key();
    g.c("EXPIRETIME").arg(key).check(Check::Near {
        tolerance: SECS_TOLERANCE,
    })
}

fn pexpiretime(g: &mut Gen) -> Cmd {
    let key = g.key();
    g.c("PEXPIRETIME").arg(key).check(Check::Near {
        tolerance: MS_TOLERANCE,
    })
}

fn persist(g: &mut Gen) -> Cmd {
    let key = g.key();
    g.c("PERSIST").arg(key).exact()
}

/// RENAME between two names, sometimes the same one (allowed when it exists).
fn rename(g: &mut Gen) -> Cmd {
    let keys = g.keys(2);
    g.c("RENAME").args(keys).exact()
}

fn renamenx(g: &mut Gen) -> Cmd {
    let keys = g.keys(2);
    g.c("RENAMENX").args(keys).exact()
}

/// COPY source destination [DB index] [REPLACE].
fn copy(g: &mut Gen) -> Cmd {
    let keys = g.keys(2);
    let mut args = g.c("COPY").args(keys);
    for _ in 0..g.rng.below(3) {
        args = match g.rng.below(5) {
            0 | 1 => args.arg("DB").arg(g.db_arg()),
            2 | 3 => args.arg("REPLACE"),
            _ => args.arg(*g.rng.pick(&["DB", "FOO"])),
        };
    }
    args.exact()
}

fn move_(g: &mut Gen) -> Cmd {
    let (key, db) = (g.key(), g.db_arg());
    g.c("MOVE").arg(key).arg(db).exact()
}

fn touch(g: &mut Gen) -> Cmd {
    let n = g.count(4);
    let keys = g.keys(n);
    g.c("TOUCH").args(keys).exact()
}

/// OBJECT ENCODING key: Redis's encoding names (int, embstr, raw) are part of the contract.
fn object(g: &mut Gen) -> Cmd {
    let key = g.key();
    let sub = if g.rng.chance(1, 10) {
        "encoding"
    } else {
        "ENCODING"
    };
    g.c("OBJECT").arg(sub).arg(key).exact()
}

fn dbsize(g: &mut Gen) -> Cmd {
    g.c("DBSIZE").exact()
}

fn select(g: &mut Gen) -> Cmd {
    let db = g.db_arg();
    g.c("SELECT").arg(db).exact()
}

/// A glob pattern for KEYS and SCAN MATCH.
fn pattern(g: &mut Gen) -> Vec<u8> {
    g.rng
        .pick(&[
            &b"*"[..],
            b"k*",
            b"{user1}*",
            b"\\{user2\\}*",
            b"?",
            b"k[1-3]",
            b"k[^1-3]",
            b"*a*",
            b"",
            b"*\\*\\?*",
            b"[",
            b"bin*",
            b"other:*",
            b"{t}?",
            b"list:*",
            b"{z}*",
            b"*:[0-9]",
        ])
        .to_vec()
}

fn keys(g: &mut Gen) -> Cmd {
    let pattern = pattern(g);
    g.c("KEYS").arg(pattern).check(Check::SortedArray)
}

/// SCAN 0 [MATCH pattern] [COUNT count] [TYPE type]: iterated to the end by the comparison.
fn scan(g: &mut Gen) -> Cmd {
    let mut args = g.c("SCAN").arg("0");
    for _ in 0..g.rng.below(3) {
        args = match g.rng.below(7) {
            0 | 1 => args.arg("MATCH").arg(pattern(g)),
            2 | 3 => args.arg("COUNT").arg(g.int_or_junk(1, 20, 10)),
            4 => args.arg("TYPE").arg(*g.rng.pick(&[
                "string", "list", "STRING", "none", "foo", "hash", "set", "zset", "ZSET",
            ])),
            5 => args.arg("COUNT").arg("0"),
            _ => args.arg(*g.rng.pick(&["MATCH", "BOGUS"])),
        };
    }
    args.check(Check::ScanAll)
}

fn randomkey(g: &mut Gen) -> Cmd {
    g.c("RANDOMKEY").check(Check::NullOrNot)
}
