//! ZRANGE in all its forms (ZRANGESTORE, ZREVRANGE, ZRANGEBYSCORE, ZREVRANGEBYSCORE,
//! ZRANGEBYLEX, ZREVRANGEBYLEX), the counting commands (ZCOUNT, ZLEXCOUNT) and the range
//! removals (ZREMRANGEBYRANK, ZREMRANGEBYSCORE, ZREMRANGEBYLEX).
//!
//! Every ZRANGE form goes through `zrange_generic`, as every one goes through Redis's
//! `zrangeGenericCommand`: the same option loop (an option the form fixes already, like REV
//! for ZREVRANGE, is a syntax error), the same conflicts, the same range parsing, then one
//! lookup. LIMIT follows Redis's loops to the letter: a negative offset skips past the end (an
//! empty reply), a negative count means no limit.

use super::{
    err, number, pair, pairs_header, parse, read_zset, write_zset, Args, Keyspace, Out, Value,
    WrongType,
};
use crate::storage::listpack::Item;
use crate::storage::zset::{LexRange, ScoreRange, ZSet};

const ERR_NOT_FLOAT_RANGE: &str = "ERR min or max is not a float";
const ERR_NOT_LEX_RANGE: &str = "ERR min or max not valid string range item";
const ERR_LIMIT_WITH_RANK: &str =
    "ERR syntax error, LIMIT is only supported in combination with either BYSCORE or BYLEX";
const ERR_WITHSCORES_WITH_LEX: &str =
    "ERR syntax error, WITHSCORES not supported in combination with BYLEX";

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Kind {
    Rank,
    Score,
    Lex,
}

/// A parsed range of any kind.
enum Range {
    Rank(i64, i64),
    Score(ScoreRange),
    Lex(LexRange),
}

/// ZRANGE's parsed arguments.
struct ZrangeArgs {
    range: Range,
    rev: bool,
    withscores: bool,
    offset: i64,
    /// -1: no limit (also when given explicitly, as in Redis).
    limit: i64,
}

/// Redis's `zrangeGenericCommand` steps 1 and 2: options from `start + 3`, conflicts, then
/// the range. `kind` and `rev` are fixed by the legacy forms, `None` for ZRANGE/ZRANGESTORE.
fn parse_zrange(
    args: &Args,
    start: usize,
    store: bool,
    kind: Option<Kind>,
    rev: Option<bool>,
) -> Result<ZrangeArgs, &'static str> {
    let (mut kind_opt, mut rev_opt) = (kind, rev);
    let mut withscores = false;
    let (mut offset, mut limit) = (0i64, -1i64);
    let mut j = start + 3;
    while j < args.len() {
        let left = args.len() - j - 1;
        let a = &args[j];
        if !store && parse::kw(a, "withscores") {
            withscores = true;
        } else if parse::kw(a, "limit") && left >= 2 {
            offset = parse::i64_arg(&args[j + 1])?;
            limit = parse::i64_arg(&args[j + 2])?;
            j += 2;
        } else if rev_opt.is_none() && parse::kw(a, "rev") {
            rev_opt = Some(true);
        } else if kind_opt.is_none() && parse::kw(a, "bylex") {
            kind_opt = Some(Kind::Lex);
        } else if kind_opt.is_none() && parse::kw(a, "byscore") {
            kind_opt = Some(Kind::Score);
        } else {
            return Err(err::SYNTAX);
        }
        j += 1;
    }
    let kind = kind_opt.unwrap_or(Kind::Rank);
    let rev = rev_opt.unwrap_or(false);
    if limit != -1 && kind == Kind::Rank {
        return Err(ERR_LIMIT_WITH_RANK);
    }
    if withscores && kind == Kind::Lex {
        return Err(ERR_WITHSCORES_WITH_LEX);
    }
    // Score and lex ranges are given as max, min when reversed.
    let (mut lo, mut hi) = (&args[start + 1], &args[start + 2]);
    if rev && kind != Kind::Rank {
        std::mem::swap(&mut lo, &mut hi);
    }
    let range = match kind {
        Kind::Rank => Range::Rank(parse::i64_arg(lo)?, parse::i64_arg(hi)?),
        Kind::Score => Range::Score(number::score_range(lo, hi).ok_or(ERR_NOT_FLOAT_RANGE)?),
        Kind::Lex => Range::Lex(number::lex_range(lo, hi).ok_or(ERR_NOT_LEX_RANGE)?),
    };
    Ok(ZrangeArgs {
        range,
        rev,
        withscores,
        offset,
        limit,
    })
}

/// Redis's rank sanitizing: `(first rank, count)` of `start..=end` over `len` elements,
/// negative indices counting from the end; `None` when the range is empty.
fn rank_span(start: i64, end: i64, len: usize) -> Option<(usize, usize)> {
    let llen = len as i64;
    let start = if start < 0 { llen + start } else { start }.max(0);
    let end = if end < 0 { llen + end } else { end };
    if start > end || start >= llen {
        return None;
    }
    let end = end.min(llen - 1);
    Some((start as usize, (end - start + 1) as usize))
}

/// The elements a ZRANGE selects, in reply order.
fn select<'z>(z: &'z ZSet, p: &ZrangeArgs) -> Vec<(Item<'z>, f64)> {
    match &p.range {
        Range::Rank(start, end) => {
            let Some((first, n)) = rank_span(*start, *end, z.len()) else {
                return Vec::new();
            };
            let from = if p.rev { z.len() - 1 - first } else { first };
            z.iter_from(from, p.rev).take(n).collect()
        }
        Range::Score(r) => {
            if p.offset > 0 && p.offset as u64 >= z.len() as u64 {
                return Vec::new();
            }
            let first = if p.rev {
                z.last_in_range(r)
            } else {
                z.first_in_range(r)
            };
            let inside = |_: &Item, s: f64| if p.rev { r.gte_min(s) } else { r.lte_max(s) };
            walk(z, first, p, inside)
        }
        Range::Lex(r) => {
            let first = if p.rev {
                z.last_in_lex(r)
            } else {
                z.first_in_lex(r)
            };
            let inside = |m: &Item, _: f64| {
                m.with_bytes(|b| if p.rev { r.gte_min(b) } else { r.lte_max(b) })
            };
            walk(z, first, p, inside)
        }
    }
}

/// From `first`, skips `offset` elements, then takes up to `limit` while `inside` holds.
fn walk<'z>(
    z: &'z ZSet,
    first: Option<usize>,
    p: &ZrangeArgs,
    inside: impl Fn(&Item, f64) -> bool,
) -> Vec<(Item<'z>, f64)> {
    let Some(first) = first else {
        return Vec::new();
    };
    // Redis's `while (eptr && offset--)`: a negative offset walks off the end.
    let Ok(skip) = usize::try_from(p.offset) else {
        return Vec::new();
    };
    let take = usize::try_from(p.limit).unwrap_or(usize::MAX);
    z.iter_from(first, p.rev)
        .skip(skip)
        .take(take)
        .take_while(|(m, s)| inside(m, *s))
        .collect()
}

/// Stores a ZRANGESTORE result at `dst` (or deletes `dst` for an empty one) and replies with
/// its size.
fn store_result(
    ks: &mut Keyspace,
    dst: &[u8],
    mut pairs: Vec<(Vec<u8>, f64)>,
    rev: bool,
    out: &mut Out,
) {
    if pairs.is_empty() {
        if ks.remove(dst).is_some() {
            ks.signal_modified(dst);
            ks.notify('g', "del", dst);
            ks.dirty(1);
        }
        return out.int(0);
    }
    // Redis inserts the range, in the order it emits it, into a destination that starts as
    // a listpack when the range fits its entry count (`zsetTypeCreate(length, 0)`) and turns
    // into a skiplist at the first member too long for it. A listpack keeps a -0 score as the
    // integer 0, so the members inserted before that point lose the sign; later ones keep it.
    let limits = crate::storage::zset::Limits::current();
    if pairs.len() <= limits.entries {
        if let Some(cut) = pairs.iter().position(|(m, _)| m.len() > limits.value) {
            for (_, score) in &mut pairs[..cut] {
                if *score == 0.0 {
                    *score = 0.0;
                }
            }
        }
    }
    if rev {
        pairs.reverse();
    }
    let n = pairs.len();
    ks.set(dst, Value::ZSet(ZSet::from_sorted(&pairs)));
    ks.signal_modified(dst);
    ks.notify('z', "zrangestore", dst);
    ks.dirty(1);
    out.int(n as i64);
}

/// `zrangeGenericCommand`: the source key is `args[start]`; `dst` for ZRANGESTORE.
fn zrange_generic(
    ks: &mut Keyspace,
    args: &Args,
    out: &mut Out,
    start: usize,
    dst: Option<&[u8]>,
    kind: Option<Kind>,
    rev: Option<bool>,
) {
    let p = match parse_zrange(args, start, dst.is_some(), kind, rev) {
        Ok(p) => p,
        Err(e) => return out.error(e),
    };
    let z = match read_zset(ks, &args[start]) {
        Err(WrongType) => return out.error(err::WRONGTYPE),
        Ok(z) => z,
    };
    let Some(dst) = dst else {
        let Some(z) = z else {
            return out.array(0);
        };
        let selected = select(z, &p);
        pairs_header(out, selected.len(), p.withscores);
        for (m, s) in selected {
            pair(out, m, s, p.withscores);
        }
        return;
    };
    let pairs: Vec<(Vec<u8>, f64)> = z.map_or_else(Vec::new, |z| {
        select(z, &p)
            .into_iter()
            .map(|(m, s)| (m.to_vec(), s))
            .collect()
    });
    store_result(ks, dst, pairs, p.rev, out);
}

pub(super) fn zrange(ks: &mut Keyspace, args: &Args, out: &mut Out) {
    zrange_generic(ks, args, out, 1, None, None, None);
}

pub(super) fn zrangestore(ks: &mut Keyspace, args: &Args, out: &mut Out) {
    let dst = args[1].clone();
    zrange_generic(ks, args, out, 2, Some(&dst), None, None);
}

pub(super) fn zrevrange(ks: &mut Keyspace, args: &Args, out: &mut Out) {
    zrange_generic(ks, args, out, 1, None, Some(Kind::Rank), Some(true));
}

pub(super) fn zrangebyscore(ks: &mut Keyspace, args: &Args, out: &mut Out) {
    zrange_generic(ks, args, out, 1, None, Some(Kind::Score), Some(false));
}

pub(super) fn zrevrangebyscore(ks: &mut Keyspace, args: &Args, out: &mut Out) {
    zrange_generic(ks, args, out, 1, None, Some(Kind::Score), Some(true));
}

pub(super) fn zrangebylex(ks: &mut Keyspace, args: &Args, out: &mut Out) {
    zrange_generic(ks, args, out, 1, None, Some(Kind::Lex), Some(false));
}

pub(super) fn zrevrangebylex(ks: &mut Keyspace, args: &Args, out: &mut Out) {
    zrange_generic(ks, args, out, 1, None, Some(Kind::Lex), Some(true));
}

/// ZCOUNT key min max: the range is parsed before the lookup.
pub(super) fn zcount(ks: &mut Keyspace, args: &Args, out: &mut Out) {
    let Some(range) = number::score_range(&args[2], &args[3]) else {
        return out.error(ERR_NOT_FLOAT_RANGE);
    };
    match read_zset(ks, &args[1]) {
        Err(WrongType) => out.error(err::WRONGTYPE),
        Ok(z) => out.int(z.map_or(0, |z| z.count_in_range(&range)) as i64),
    }
}

/// ZLEXCOUNT key min max: the range is parsed before the lookup.
pub(super) fn zlexcount(ks: &mut Keyspace, args: &Args, out: &mut Out) {
    let Some(range) = number::lex_range(&args[2], &args[3]) else {
        return out.error(ERR_NOT_LEX_RANGE);
    };
    match read_zset(ks, &args[1]) {
        Err(WrongType) => out.error(err::WRONGTYPE),
        Ok(z) => out.int(z.map_or(0, |z| z.count_in_lex(&range)) as i64),
    }
}

/// `zremrangeGenericCommand`: parse, look up for writing, remove, delete an emptied key.
fn zremrange_generic(ks: &mut Keyspace, args: &Args, out: &mut Out, kind: Kind) {
    let range = match kind {
        Kind::Rank => match (parse::i64_arg(&args[2]), parse::i64_arg(&args[3])) {
            (Ok(a), Ok(b)) => Range::Rank(a, b),
            (Err(e), _) | (_, Err(e)) => return out.error(e),
        },
        Kind::Score => match number::score_range(&args[2], &args[3]) {
            Some(r) => Range::Score(r),
            None => return out.error(ERR_NOT_FLOAT_RANGE),
        },
        Kind::Lex => match number::lex_range(&args[2], &args[3]) {
            Some(r) => Range::Lex(r),
            None => return out.error(ERR_NOT_LEX_RANGE),
        },
    };
    let key = &args[1];
    let z = match write_zset(ks, key) {
        Err(WrongType) => return out.error(err::WRONGTYPE),
        Ok(None) => return out.int(0),
        Ok(Some(z)) => z,
    };
    let deleted = match &range {
        Range::Rank(start, end) => match rank_span(*start, *end, z.len()) {
            None => return out.int(0),
            Some((first, n)) => {
                z.remove_ranks(first, n);
                n
            }
        },
        Range::Score(r) => z.remove_score_range(r),
        Range::Lex(r) => z.remove_lex_range(r),
    };
    let emptied = z.is_empty();
    if deleted > 0 {
        if emptied {
            ks.remove(key);
        }
        ks.signal_modified(key);
        let event = match kind {
            Kind::Rank => "zremrangebyrank",
            Kind::Score => "zremrangebyscore",
            Kind::Lex => "zremrangebylex",
        };
        ks.notify('z', event, key);
        if emptied {
            ks.notify('g', "del", key);
        }
    }
    ks.dirty(deleted as u64);
    out.int(deleted as i64);
}

pub(super) fn zremrangebyrank(ks: &mut Keyspace, args: &Args, out: &mut Out) {
    zremrange_generic(ks, args, out, Kind::Rank);
}

pub(super) fn zremrangebyscore(ks: &mut Keyspace, args: &Args, out: &mut Out) {
    zremrange_generic(ks, args, out, Kind::Score);
}

pub(super) fn zremrangebylex(ks: &mut Keyspace, args: &Args, out: &mut Out) {
    zremrange_generic(ks, args, out, Kind::Lex);
}
