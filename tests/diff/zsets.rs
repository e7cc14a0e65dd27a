//! Sorted-set commands (`t_zset.c` in Redis): ZADD and its options, increments, point reads,
//! counts, the ZRANGE family (by index, score and lex, reversed, limited, with scores) and
//! ZRANGESTORE, ranks, removals, pops (blocking ones too), ZUNION/ZINTER/ZDIFF with WEIGHTS and
//! AGGREGATE (sets count as inputs, with score 1), ZINTERCARD, ZRANDMEMBER and ZSCAN.
//!
//! Scores are where sorted sets go wrong, so they come in every form `strtod` reads: integers,
//! decimals, exponents, hex, `inf` with and without a sign, `-0`, a subnormal, and texts Redis
//! refuses (`nan`, overflow, underflow to zero, a leading space). Sums of them (ZINCRBY, ZADD
//! INCR, AGGREGATE SUM) reach infinities and NaN, whose rules are Redis's. Members come from a
//! small pool, mostly under score ranges that make BYLEX meaningful; now and then a write
//! passes a listpack bound (a member over 64 bytes, more than 128 members), so that sets become
//! skiplists, as in Redis.
//!
//! Blocking pops follow the lists family: usually right after a ZADD onto their first key, so
//! they take the non-blocking path, now and then alone, where they may wait out their timeout.

use super::{Args, Check, Cmd, Collection, Gen, GenFn, KeySet, WakeKind, Waker};

/// The sorted-set family's own names: `{z}` keys share a shard, `zset:*` spread.
pub const KEYS: KeySet = KeySet {
    names: &[b"{z}a", b"{z}b", b"{z}c", b"zset:1", b"zset:2", b"zset:3"],
    tagged: 3,
};

/// Keys only lex commands use, and whose members all have score 0: Redis answers BYLEX
/// ranges over members of different scores by walking its skiplist, whose random levels
/// then decide the answer ("unspecified", its documentation says), so lex ranges are asked
/// only where they are specified. Nothing else writes these names (they are not in
/// `TYPED_KEYS`); `zadd_lex` now and then SETs one to a string, for WRONGTYPE.
pub const LEX_KEYS: KeySet = KeySet {
    names: &[b"{z}lex", b"zlex:1", b"zlex:2"],
    tagged: 1,
};

/// Where stores (ZRANGESTORE, ZUNIONSTORE...) write, mostly: a part of `KEYS`, so that stores
/// of empty results do not keep deleting every set the other commands read.
const STORE_KEYS: KeySet = KeySet {
    names: &[b"{z}c", b"zset:3"],
    tagged: 1,
};

/// Keys only the woken blocking pops use (`woken.rs`): deleted right before, so those pops
/// always block.
const WAKE_KEYS: KeySet = KeySet {
    names: &[b"{z}w1", b"{z}w2", b"wake:z"],
    tagged: 2,
};

/// Members one big ZADD adds: past `zset-max-listpack-entries` (128).
const BIG_ZADD_MEMBERS: usize = 130;

/// One blocking pop in this many stands alone (so it may wait 100 ms on redis-server).
const LONE_BLOCKING_ONE_IN: u64 = 30;

/// One weighted generator per command.
const COMMANDS: &[(u32, GenFn)] = &[
    (1, del),
    (2, encoding),
    (20, zadd),
    (6, zadd_lex),
    (3, zincrby),
    (3, zscore),
    (2, zmscore),
    (2, zcard),
    (3, zcount),
    (2, zlexcount),
    (8, zrange),
    (4, zrange_legacy),
    (2, zrangestore),
    (3, zrank),
    (2, zrem),
    (1, zremrange),
    (2, zpop),
    (1, zmpop),
    (3, blocking),
    (1, woken),
    (4, combine),
    (3, combine_store),
    (2, zintercard),
    (3, zrandmember),
    (2, zscan),
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

/// A score as a client would send it: mostly small integers and decimals, sometimes any form
/// `strtod` reads, and now and then one Redis refuses.
pub fn score(g: &mut Gen) -> Vec<u8> {
    match g.rng.below(20) {
        0..=9 => g.rng.range(-5, 20).to_string().into_bytes(),
        10..=13 => format!("{}.{}", g.rng.range(-5, 5), g.rng.range(0, 99)).into_bytes(),
        14..=17 => g
            .rng
            .pick(&[
                &b"inf"[..],
                b"-inf",
                b"+inf",
                b"1e3",
                b"-2.5e-3",
                b"1E2",
                b"0x10",
                b"-0",
                b"+3",
                b"4.9e-324",
                b"1.7976931348623157e308",
                b"0.1",
                b"3.0000000000000001",
                b"123456789012345678",
            ])
            .to_vec(),
        _ => g
            .rng
            .pick(&[
                &b"nan"[..],
                b"1e400",
                b"1e-400",
                b" 1",
                b"",
                b"abc",
                b"1.5x",
            ])
            .to_vec(),
    }
}

fn member(g: &mut Gen) -> Vec<u8> {
    match g.rng.below(16) {
        0..=13 => g
            .rng
            .pick(&[
                &b"a"[..],
                b"b",
                b"c",
                b"d",
                b"e",
                b"f",
                b"g",
                b"h",
                b"",
                b"1",
            ])
            .to_vec(),
        14 => {
            let len = 60 + g.rng.index(20);
            g.rng.bytes_from(len, b"mn")
        }
        _ => g.value(),
    }
}

/// Score/member pairs: a few, now and then 130 (a skiplist at once), now and then one short.
fn pairs(g: &mut Gen) -> Vec<Vec<u8>> {
    let mut args = Vec::new();
    if g.rng.chance(1, 150) {
        for i in 0..BIG_ZADD_MEMBERS {
            args.push(i.to_string().into_bytes());
            args.push(format!("big{i}").into_bytes());
        }
        return args;
    }
    for _ in 0..g.count(6) {
        let (s, m) = (score(g), member(g));
        args.extend([s, m]);
    }
    if g.rng.chance(1, 20) {
        args.pop();
    }
    args
}

/// ZADD key [NX|XX] [GT|LT] [CH] [INCR] score member [score member ...]: usually a valid mix
/// of options, sometimes a conflicting one (NX with XX, GT or LT; INCR with several pairs).
fn zadd(g: &mut Gen) -> Cmd {
    let key = g.key_in(&KEYS);
    let mut args = g.c("ZADD").arg(key);
    let mut incr = false;
    for option in ["NX", "XX", "GT", "LT", "CH", "INCR"] {
        if g.rng.chance(1, 15) {
            args = args.arg(option);
            incr = option == "INCR";
        }
    }
    // INCR takes a single pair; several are refused, now and then.
    if g.rng.chance(1, 3) || (incr && g.rng.chance(5, 6)) {
        let (s, m) = (score(g), member(g));
        args.arg(s).arg(m).exact()
    } else {
        args.args(pairs(g)).exact()
    }
}

fn lex_key(g: &mut Gen) -> Vec<u8> {
    g.rng.pick(LEX_KEYS.names).to_vec()
}

/// ZADD of members with score 0 (written `0`, `0.0`, `+0`) to a lex key; now and then a
/// SET or DEL of one instead.
fn zadd_lex(g: &mut Gen) -> Cmd {
    let key = lex_key(g);
    match g.rng.below(40) {
        0 => return g.c("SET").arg(key).arg("x").exact(),
        1 | 2 => return g.c("DEL").arg(key).exact(),
        _ => {}
    }
    let mut args = g.c("ZADD").arg(key);
    for option in ["NX", "XX", "CH"] {
        if g.rng.chance(1, 12) {
            args = args.arg(option);
        }
    }
    let n = if g.rng.chance(1, 100) {
        BIG_ZADD_MEMBERS
    } else {
        g.count(4)
    };
    for i in 0..n {
        let zero = *g.rng.pick(&["0", "0", "0", "0.0", "+0"]);
        let m = if n == BIG_ZADD_MEMBERS {
            format!("big{i}").into_bytes()
        } else {
            member(g)
        };
        args = args.arg(zero).arg(m);
    }
    args.exact()
}

/// The destination of a store: mostly one of `STORE_KEYS`.
fn store_key(g: &mut Gen) -> Vec<u8> {
    if g.rng.chance(4, 5) {
        g.key_in(&STORE_KEYS)
    } else {
        g.key_in(&KEYS)
    }
}

fn zincrby(g: &mut Gen) -> Cmd {
    let (key, by, m) = (g.key_in(&KEYS), score(g), member(g));
    g.c("ZINCRBY").arg(key).arg(by).arg(m).exact()
}

fn zscore(g: &mut Gen) -> Cmd {
    let (key, m) = (g.key_in(&KEYS), member(g));
    g.c("ZSCORE").arg(key).arg(m).exact()
}

fn zmscore(g: &mut Gen) -> Cmd {
    let key = g.key_in(&KEYS);
    let n = g.count(4);
    let ms: Vec<Vec<u8>> = (0..n).map(|_| member(g)).collect();
    g.c("ZMSCORE").arg(key).args(ms).exact()
}

fn zcard(g: &mut Gen) -> Cmd {
    let key = g.key_in(&KEYS);
    g.c("ZCARD").arg(key).exact()
}

/// A score bound of a range: a score, exclusive with `(`, or an infinity.
fn score_bound(g: &mut Gen) -> Vec<u8> {
    match g.rng.below(10) {
        0 => g
            .rng
            .pick(&[&b"-inf"[..], b"+inf", b"inf", b"(-inf"])
            .to_vec(),
        1..=3 => {
            let mut bound = b"(".to_vec();
            bound.extend(score(g));
            bound
        }
        _ => score(g),
    }
}

/// A lex bound of a range: `-`, `+`, `[member`, `(member`, or one Redis refuses.
fn lex_bound(g: &mut Gen) -> Vec<u8> {
    match g.rng.below(12) {
        0 => b"-".to_vec(),
        1 => b"+".to_vec(),
        2 => g.rng.pick(&[&b"a"[..], b""]).to_vec(),
        _ => {
            let mut bound = if g.rng.chance(1, 2) {
                b"[".to_vec()
            } else {
                b"(".to_vec()
            };
            bound.extend(member(g));
            bound
        }
    }
}

/// A rank or index: small, negative, or extreme.
fn index(g: &mut Gen) -> Vec<u8> {
    match g.rng.below(15) {
        0 => g.junk_int(),
        _ => g.rng.range(-10, 10).to_string().into_bytes(),
    }
}

fn zcount(g: &mut Gen) -> Cmd {
    let (key, min, max) = (g.key_in(&KEYS), score_bound(g), score_bound(g));
    g.c("ZCOUNT").arg(key).arg(min).arg(max).exact()
}

fn zlexcount(g: &mut Gen) -> Cmd {
    let (key, min, max) = (lex_key(g), lex_bound(g), lex_bound(g));
    g.c("ZLEXCOUNT").arg(key).arg(min).arg(max).exact()
}

/// LIMIT offset count, with negative and junk values now and then.
fn limit(g: &mut Gen, args: Args) -> Args {
    let offset = g.int_or_junk(-1, 5, 10);
    let count = g.int_or_junk(-2, 5, 10);
    args.arg("LIMIT").arg(offset).arg(count)
}

/// How a ZRANGE or ZRANGESTORE reads its range.
#[derive(Clone, Copy, PartialEq, Eq)]
enum RangeKind {
    Index,
    Score,
    Lex,
}

fn range_kind(g: &mut Gen) -> RangeKind {
    *g.rng
        .pick(&[RangeKind::Index, RangeKind::Score, RangeKind::Lex])
}

/// The source of a range of `kind`: a lex key for BYLEX, else a sorted-set key or now and then
/// a lex key.
fn range_source(g: &mut Gen, kind: RangeKind) -> Vec<u8> {
    if kind == RangeKind::Lex || g.rng.chance(1, 8) {
        lex_key(g)
    } else {
        g.key_in(&KEYS)
    }
}

/// The `start stop [BYSCORE|BYLEX] [REV] [LIMIT offset count]` part of ZRANGE and
/// ZRANGESTORE, with bounds that fit the chosen kind.
fn range_spec(g: &mut Gen, kind: RangeKind, mut args: Args) -> Args {
    let (start, stop) = match kind {
        RangeKind::Index => (index(g), index(g)),
        RangeKind::Score => (score_bound(g), score_bound(g)),
        RangeKind::Lex => (lex_bound(g), lex_bound(g)),
    };
    args = args.arg(start).arg(stop);
    args = match kind {
        RangeKind::Score => args.arg(*g.rng.pick(&["BYSCORE", "byscore"])),
        RangeKind::Lex => args.arg("BYLEX"),
        RangeKind::Index => args,
    };
    if g.rng.chance(1, 3) {
        args = args.arg("REV");
    }
    // LIMIT needs BYSCORE or BYLEX; without them it is an error Redis reports.
    let limit_one_in = if kind == RangeKind::Index { 15 } else { 3 };
    if g.rng.chance(1, limit_one_in) {
        args = limit(g, args);
    }
    args
}

/// ZRANGE key start stop [BYSCORE|BYLEX] [REV] [LIMIT offset count] [WITHSCORES].
fn zrange(g: &mut Gen) -> Cmd {
    let kind = range_kind(g);
    let key = range_source(g, kind);
    let args = g.c("ZRANGE").arg(key);
    let mut args = range_spec(g, kind, args);
    // WITHSCORES with BYLEX is refused: asked for now and then only.
    let with_scores_one_in = if kind == RangeKind::Lex { 15 } else { 3 };
    if g.rng.chance(1, with_scores_one_in) {
        args = args.arg("WITHSCORES");
    }
    if g.rng.chance(1, 30) {
        args = args.arg(*g.rng.pick(&["BOGUS", "LIMIT"]));
    }
    args.exact()
}

/// ZREVRANGE, ZRANGEBYSCORE, ZREVRANGEBYSCORE, ZRANGEBYLEX, ZREVRANGEBYLEX.
fn zrange_legacy(g: &mut Gen) -> Cmd {
    let key = g.key_in(&KEYS);
    match g.rng.below(5) {
        0 => {
            let args = g.c("ZREVRANGE").arg(key).arg(index(g)).arg(index(g));
            with_scores(g, args).exact()
        }
        1 | 2 => {
            let name = *g.rng.pick(&["ZRANGEBYSCORE", "ZREVRANGEBYSCORE"]);
            let args = g.c(name).arg(key).arg(score_bound(g)).arg(score_bound(g));
            let args = with_scores(g, args);
            maybe_limit(g, args).exact()
        }
        _ => {
            let name = *g.rng.pick(&["ZRANGEBYLEX", "ZREVRANGEBYLEX"]);
            let key = lex_key(g);
            let args = g.c(name).arg(key).arg(lex_bound(g)).arg(lex_bound(g));
            maybe_limit(g, args).exact()
        }
    }
}

fn with_scores(g: &mut Gen, args: Args) -> Args {
    if g.rng.chance(1, 2) {
        args.arg("WITHSCORES")
    } else {
        args
    }
}

fn maybe_limit(g: &mut Gen, args: Args) -> Args {
    if g.rng.chance(1, 3) {
        limit(g, args)
    } else {
        args
    }
}

/// ZRANGESTORE dst src min max [BYSCORE|BYLEX] [REV] [LIMIT offset count]: into a lex key
/// only from a lex key (the scores stay 0).
fn zrangestore(g: &mut Gen) -> Cmd {
    let kind = range_kind(g);
    let src = range_source(g, kind);
    let dst = if LEX_KEYS.names.contains(&src.as_slice()) && g.rng.chance(1, 2) {
        lex_key(g)
    } else {
        store_key(g)
    };
    let args = g.c("ZRANGESTORE").arg(dst).arg(src);
    range_spec(g, kind, args).exact()
}

fn zrank(g: &mut Gen) -> Cmd {
    let name = *g.rng.pick(&["ZRANK", "ZREVRANK"]);
    let (key, m) = (g.key_in(&KEYS), member(g));
    g.c(name).arg(key).arg(m).exact()
}

fn zrem(g: &mut Gen) -> Cmd {
    let key = g.key_in(&KEYS);
    let n = g.count(4);
    let ms: Vec<Vec<u8>> = (0..n).map(|_| member(g)).collect();
    g.c("ZREM").arg(key).args(ms).exact()
}

/// ZREMRANGEBYRANK, ZREMRANGEBYSCORE, ZREMRANGEBYLEX.
fn zremrange(g: &mut Gen) -> Cmd {
    let key = g.key_in(&KEYS);
    match g.rng.below(3) {
        0 => g
            .c("ZREMRANGEBYRANK")
            .arg(key)
            .arg(index(g))
            .arg(index(g))
            .exact(),
        1 => g
            .c("ZREMRANGEBYSCORE")
            .arg(key)
            .arg(score_bound(g))
            .arg(score_bound(g))
            .exact(),
        _ => {
            let key = lex_key(g);
            g.c("ZREMRANGEBYLEX")
                .arg(key)
                .arg(lex_bound(g))
                .arg(lex_bound(g))
                .exact()
        }
    }
}

/// ZPOPMIN or ZPOPMAX key [count].
fn zpop(g: &mut Gen) -> Cmd {
    let name = *g.rng.pick(&["ZPOPMIN", "ZPOPMAX"]);
    let key = g.key_in(&KEYS);
    let args = g.c(name).arg(key);
    match g.rng.below(6) {
        0..=2 => args.exact(),
        3 => args.arg(g.int_or_junk(-1, 0, 3)).exact(),
        _ => args.arg(g.rng.range(1, 6).to_string()).exact(),
    }
}

/// The `numkeys key... MIN|MAX [COUNT n]` tail of ZMPOP and BZMPOP.
fn mpop_args(g: &mut Gen, mut args: Args) -> Args {
    let n = g.count(3);
    let keys = g.keys_in(&KEYS, n);
    let side = if g.rng.chance(1, 30) {
        g.rng.pick(&["LEFT", "", "MINX"])
    } else {
        g.rng.pick(&["MIN", "MAX", "min", "Max"])
    };
    args = args.arg(g.numkeys(n)).args(keys).arg(*side);
    match g.rng.below(12) {
        0..=3 => args,
        4 => args.arg("COUNT").arg(g.int_or_junk(-1, 0, 3)),
        5 => args.arg(*g.rng.pick(&["COUNT", "FOO"])),
        _ => args.arg("COUNT").arg(g.rng.range(1, 6).to_string()),
    }
}

/// ZMPOP numkeys key [key ...] MIN|MAX [COUNT count].
fn zmpop(g: &mut Gen) -> Cmd {
    let args = g.c("ZMPOP");
    mpop_args(g, args).exact()
}

/// BZPOPMIN, BZPOPMAX or BZMPOP, usually right after a ZADD onto its first key (see the
/// module comment); returns the ZADD and plans the blocking pop after it.
fn blocking(g: &mut Gen) -> Cmd {
    let cmd = blocking_cmd(g);
    if g.rng.chance(1, LONE_BLOCKING_ONE_IN) {
        return cmd;
    }
    let name = cmd.args[0].to_ascii_uppercase();
    let at = if name == b"BZMPOP" { 3 } else { 1 };
    let key = cmd.args.get(at).cloned().unwrap_or_default();
    let items = pairs(g);
    let push = g.c("ZADD").arg(key).args(items).exact();
    g.plan([Box::new(move |_: &mut Gen| cmd) as super::Step]);
    push
}

/// BZPOPMIN, BZPOPMAX or BZMPOP on its own (inside MULTI, which it cannot block in, or after a
/// ZADD).
pub fn blocking_cmd(g: &mut Gen) -> Cmd {
    if g.rng.chance(2, 3) {
        let name = *g.rng.pick(&["BZPOPMIN", "BZPOPMAX"]);
        let n = g.count(3);
        let keys = g.keys_in(&KEYS, n);
        g.c(name).args(keys).arg(g.block_timeout()).exact()
    } else {
        let args = g.c("BZMPOP").arg(g.block_timeout());
        mpop_args(g, args).exact()
    }
}

/// SELECT of a database, DEL of the wake keys there, then (planned) a blocking pop on some of
/// them that the second connection wakes (`Check::Woken`).
fn woken(g: &mut Gen) -> Cmd {
    let n = g.count(2);
    let keys: Vec<Vec<u8>> = (0..n)
        .map(|_| g.rng.pick(WAKE_KEYS.names).to_vec())
        .collect();
    let db = g.rng.below(super::DBS);
    let kind = *g.rng.pick(&[WakeKind::Last, WakeKind::Ordered]);
    let waker = Waker { db, kind };
    let timeout = super::lists::WAKE_TIMEOUT;
    let args = if g.rng.chance(2, 3) {
        let name = *g.rng.pick(&["BZPOPMIN", "BZPOPMAX"]);
        g.c(name).args(keys).arg(timeout)
    } else {
        let side = *g.rng.pick(&["MIN", "MAX"]);
        let args = g
            .c("BZMPOP")
            .arg(timeout)
            .arg(n.to_string())
            .args(keys)
            .arg(side);
        if g.rng.chance(1, 2) {
            args.arg("COUNT").arg(g.rng.range(1, 3).to_string())
        } else {
            args
        }
    };
    let cmd = args.check(Check::Woken(waker));
    let del = g.c("DEL").args(WAKE_KEYS.names).exact();
    g.plan([
        Box::new(move |_: &mut Gen| del) as super::Step,
        Box::new(move |_: &mut Gen| cmd),
    ]);
    g.c("SELECT").arg(db.to_string()).exact()
}

/// Input keys for the algebra commands: mostly sorted sets, sometimes sets (which count with
/// score 1) or anything.
fn inputs(g: &mut Gen, n: usize) -> Vec<Vec<u8>> {
    if g.rng.chance(1, 6) {
        (0..n).map(|_| g.key_in(&super::sets::KEYS)).collect()
    } else {
        g.keys_in(&KEYS, n)
    }
}

/// The `numkeys key... [WEIGHTS w...] [AGGREGATE SUM|MIN|MAX]` part of ZUNION and ZINTER (and
/// their STORE forms), with weights that are infinite, fractional, too few or not numbers.
fn algebra_args(g: &mut Gen, mut args: Args, weights: bool) -> Args {
    let n = g.count(3);
    let keys = inputs(g, n);
    args = args.arg(g.numkeys(n)).args(keys);
    if weights && g.rng.chance(1, 3) {
        args = args.arg("WEIGHTS");
        let count = if g.rng.chance(1, 15) { n + 1 } else { n };
        for _ in 0..count {
            let w = *g
                .rng
                .pick(&["1", "2", "-1", "0", "0.5", "inf", "-inf", "3e2", "nan", "x"]);
            args = args.arg(w);
        }
    }
    if weights && g.rng.chance(1, 3) {
        let how = *g.rng.pick(&["SUM", "MIN", "MAX", "sum", "AVG"]);
        args = args.arg("AGGREGATE").arg(how);
    }
    args
}

/// ZUNION, ZINTER or ZDIFF numkeys key [key ...] [WEIGHTS ...] [AGGREGATE ...] [WITHSCORES].
fn combine(g: &mut Gen) -> Cmd {
    let name = *g.rng.pick(&["ZUNION", "ZINTER", "ZDIFF"]);
    let args = g.c(name);
    let weights = name != "ZDIFF" || g.rng.chance(1, 10);
    let args = algebra_args(g, args, weights);
    with_scores(g, args).exact()
}

/// ZUNIONSTORE, ZINTERSTORE or ZDIFFSTORE destination numkeys key [key ...] ...
fn combine_store(g: &mut Gen) -> Cmd {
    let name = *g.rng.pick(&["ZUNIONSTORE", "ZINTERSTORE", "ZDIFFSTORE"]);
    let dest = store_key(g);
    let args = g.c(name).arg(dest);
    let weights = name != "ZDIFFSTORE" || g.rng.chance(1, 10);
    let args = algebra_args(g, args, weights);
    if g.rng.chance(1, 30) {
        return args.arg("WITHSCORES").exact();
    }
    args.exact()
}

/// ZINTERCARD numkeys key [key ...] [LIMIT limit].
fn zintercard(g: &mut Gen) -> Cmd {
    let n = g.count(3);
    let keys = inputs(g, n);
    let args = g.c("ZINTERCARD").arg(g.numkeys(n)).args(keys);
    match g.rng.below(10) {
        0..=4 => args.exact(),
        5 => args.arg("LIMIT").arg(g.int_or_junk(-1, 0, 3)).exact(),
        6 => args.arg(*g.rng.pick(&["LIMIT", "FOO"])).exact(),
        _ => args.arg("LIMIT").arg(g.rng.range(1, 5).to_string()).exact(),
    }
}

/// ZRANDMEMBER key [count [WITHSCORES]]: counts either side of the set's size, both signs.
fn zrandmember(g: &mut Gen) -> Cmd {
    let key = g.key_in(&KEYS);
    let args = g.c("ZRANDMEMBER").arg(key);
    let args = match g.rng.below(8) {
        0 | 1 => args,
        2 => args.arg(g.int_or_junk(-6, 6, 4)),
        3 => args
            .arg(g.rng.range(-6, 6).to_string())
            .arg(*g.rng.pick(&["WITHVALUES", "BOGUS"])),
        _ => args
            .arg(g.rng.range(-8, 8).to_string())
            .arg(*g.rng.pick(&["WITHSCORES", "withscores"])),
    };
    args.check(Check::Random(Collection::Zset))
}

/// ZSCAN key 0 [MATCH pattern] [COUNT count], iterated to the end; or a cursor Redis refuses
/// (not the empty one: strtoul reads it as 0).
fn zscan(g: &mut Gen) -> Cmd {
    let key = g.key_in(&KEYS);
    if g.rng.chance(1, 15) {
        let cursor = *g.rng.pick(&["abc", " 1", "1.5", "-"]);
        return g.c("ZSCAN").arg(key).arg(cursor).exact();
    }
    let mut args = g.c("ZSCAN").arg(key).arg("0");
    for _ in 0..g.rng.below(3) {
        args = match g.rng.below(6) {
            0 | 1 => args
                .arg("MATCH")
                .arg(*g.rng.pick(&["*", "[a-d]", "big1*", "?", ""])),
            2 | 3 => args.arg("COUNT").arg(g.int_or_junk(1, 20, 10)),
            4 => args.arg("COUNT").arg("0"),
            _ => args.arg(*g.rng.pick(&["MATCH", "TYPE"])),
        };
    }
    args.check(Check::ScanKey { pairs: true })
}
