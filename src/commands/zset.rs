//! The sorted set family: every non-blocking Z command (the geo commands, built on sorted
//! sets, live in `geo`). The value type and its encodings are `storage::zset`.
//!
//! Each handler follows Redis 7.0's `t_zset.c` step by step, because clients see the order of
//! checks (ZADD parses every option and every score before it looks at the key; ZRANGE parses
//! its range before the lookup, ZSCAN its cursor before and its options after), which lookups
//! count as hits and misses, the keyspace events, how `dirty` grows, and which encoding a
//! stored result gets. Replies take Redis's shapes in both protocols: member/score lists are
//! flat in RESP2 and pairs in RESP3 (except ZPOPMIN/ZPOPMAX without a count, which stay flat),
//! scores are doubles (`%.17g` text in RESP2).
//!
//! Split: this file holds the table, the shared helpers and the point commands; `range` holds
//! ZRANGE and every range-based command; `algebra` the ZUNION/ZINTER/ZDIFF family; `number`
//! the `strtod`-exact parsing of scores and ranges.
//!
//! Blocking pops (BZPOPMIN, BZPOPMAX, BZMPOP) belong to the engine, which calls `zpop` and
//! the `reply_*` helpers here once a key is ready, so that both paths pop and reply alike.

pub mod algebra;
pub mod number;
pub mod range;
#[cfg(test)]
pub(crate) mod tests;

use super::scan::parse_scan_options;
use super::{err, flag, parse, Args, Cmd, Keys};
use crate::protocol::Out;
use crate::storage::listpack::Item;
use crate::storage::zset::{AddFlags, Added, ZSet};
use crate::storage::{Keyspace, Value};
use std::cell::Cell;

const RO: u32 = flag::READONLY;
const RO_FAST: u32 = flag::READONLY | flag::FAST;
const W: u32 = flag::WRITE;
const W_FAST: u32 = flag::WRITE | flag::FAST;
const RW: u32 = flag::WRITE | flag::DENYOOM;
const RW_FAST: u32 = flag::WRITE | flag::DENYOOM | flag::FAST;
const KEY: Keys = Keys::Range(1, 1, 1);
const READ_FAST: &[&str] = &["read", "sortedset", "fast"];
const READ_SLOW: &[&str] = &["read", "sortedset", "slow"];
const WRITE_FAST: &[&str] = &["write", "sortedset", "fast"];
const WRITE_SLOW: &[&str] = &["write", "sortedset", "slow"];

pub static COMMANDS: [Cmd; 32] = [
    Cmd::data("zadd", -4, RW_FAST, KEY, zadd_command).with_acl(WRITE_FAST),
    Cmd::data("zincrby", 4, RW_FAST, KEY, zincrby).with_acl(WRITE_FAST),
    Cmd::data("zrem", -3, W_FAST, KEY, zrem).with_acl(WRITE_FAST),
    Cmd::data("zcard", 2, RO_FAST, KEY, zcard).with_acl(READ_FAST),
    Cmd::data("zscore", 3, RO_FAST, KEY, zscore).with_acl(READ_FAST),
    Cmd::data("zmscore", -3, RO_FAST, KEY, zmscore).with_acl(READ_FAST),
    Cmd::data("zrank", 3, RO_FAST, KEY, zrank).with_acl(READ_FAST),
    Cmd::data("zrevrank", 3, RO_FAST, KEY, zrevrank).with_acl(READ_FAST),
    Cmd::data("zcount", 4, RO_FAST, KEY, range::zcount).with_acl(READ_FAST),
    Cmd::data("zlexcount", 4, RO_FAST, KEY, range::zlexcount).with_acl(READ_FAST),
    Cmd::data("zrange", -4, RO, KEY, range::zrange).with_acl(READ_SLOW),
    Cmd::data(
        "zrangestore",
        -5,
        RW,
        Keys::Range(1, 2, 1),
        range::zrangestore,
    )
    .with_acl(WRITE_SLOW),
    Cmd::data("zrangebyscore", -4, RO, KEY, range::zrangebyscore).with_acl(READ_SLOW),
    Cmd::data("zrevrangebyscore", -4, RO, KEY, range::zrevrangebyscore).with_acl(READ_SLOW),
    Cmd::data("zrangebylex", -4, RO, KEY, range::zrangebylex).with_acl(READ_SLOW),
    Cmd::data("zrevrangebylex", -4, RO, KEY, range::zrevrangebylex).with_acl(READ_SLOW),
    Cmd::data("zrevrange", -4, RO, KEY, range::zrevrange).with_acl(READ_SLOW),
    Cmd::data("zremrangebyrank", 4, W, KEY, range::zremrangebyrank).with_acl(WRITE_SLOW),
    Cmd::data("zremrangebyscore", 4, W, KEY, range::zremrangebyscore).with_acl(WRITE_SLOW),
    Cmd::data("zremrangebylex", 4, W, KEY, range::zremrangebylex).with_acl(WRITE_SLOW),
    Cmd::data("zpopmin", -2, W_FAST, KEY, zpopmin).with_acl(WRITE_FAST),
    Cmd::data("zpopmax", -2, W_FAST, KEY, zpopmax).with_acl(WRITE_FAST),
    Cmd::data("zmpop", -4, W, Keys::Custom(zmpop_keys), zmpop).with_acl(WRITE_SLOW),
    Cmd::data("zrandmember", -2, RO, KEY, zrandmember).with_acl(READ_SLOW),
    Cmd::data("zscan", -3, RO, KEY, zscan).with_acl(READ_SLOW),
    Cmd::data(
        "zunion",
        -3,
        RO,
        Keys::Custom(numkeys_keys),
        algebra::zunion,
    )
    .with_acl(READ_SLOW),
    Cmd::data(
        "zinter",
        -3,
        RO,
        Keys::Custom(numkeys_keys),
        algebra::zinter,
    )
    .with_acl(READ_SLOW),
    Cmd::data(
        "zintercard",
        -3,
        RO,
        Keys::Custom(numkeys_keys),
        algebra::zintercard,
    )
    .with_acl(READ_SLOW),
    Cmd::data("zdiff", -3, RO, Keys::Custom(numkeys_keys), algebra::zdiff).with_acl(READ_SLOW),
    Cmd::data(
        "zunionstore",
        -4,
        RW,
        Keys::Custom(store_keys),
        algebra::zunionstore,
    )
    .with_acl(WRITE_SLOW),
    Cmd::data(
        "zinterstore",
        -4,
        RW,
        Keys::Custom(store_keys),
        algebra::zinterstore,
    )
    .with_acl(WRITE_SLOW),
    Cmd::data(
        "zdiffstore",
        -4,
        RW,
        Keys::Custom(store_keys),
        algebra::zdiffstore,
    )
    .with_acl(WRITE_SLOW),
];

const ERR_NAN: &str = "ERR resulting score is not a number (NaN)";
const ERR_XX_NX: &str = "ERR XX and NX options at the same time are not compatible";
const ERR_GT_LT_NX: &str = "ERR GT, LT, and/or NX options at the same time are not compatible";
const ERR_INCR_PAIRS: &str = "ERR INCR option supports a single increment-element pair";
const ERR_MUST_BE_POSITIVE: &str = "ERR value is out of range, must be positive";
const ERR_NUMKEYS: &str = "ERR numkeys should be greater than 0";
const ERR_COUNT: &str = "ERR count should be greater than 0";
const ERR_RANDMEMBER_RANGE: &str =
    "ERR value is out of range, value must between -9223372036854775807 and 9223372036854775807";
const ERR_OUT_OF_RANGE: &str = "ERR value is out of range";
/// The most members a ZRANDMEMBER reply with a negative count may hold. Redis has no bound
/// and would try to build any reply asked for (a count of -10^18 exhausts its memory); here
/// such a count is refused, with the same limit and text as SRANDMEMBER's.
const RANDOM_REPLY_MEMBERS_MAX: u64 = 1 << 26;
const ERR_REPLY_TOO_BIG: &str = "ERR value is out of range, a reply holds at most 67108864 members";

// ---------------------------------------------------------------------------------------
// Shared helpers.

/// A key holding a value of another type (the WRONGTYPE error).
pub struct WrongType;

/// The sorted set at `key`, looked up for reading (`lookupKeyRead` + `checkType`).
pub(crate) fn read_zset<'k>(
    ks: &'k mut Keyspace<'_>,
    key: &[u8],
) -> Result<Option<&'k ZSet>, WrongType> {
    match ks.lookup_read(key).map(|e| &e.value) {
        None => Ok(None),
        Some(Value::ZSet(z)) => Ok(Some(z)),
        Some(_) => Err(WrongType),
    }
}

/// The sorted set at `key`, looked up for writing (`lookupKeyWrite` + `checkType`).
pub(crate) fn write_zset<'k>(
    ks: &'k mut Keyspace<'_>,
    key: &[u8],
) -> Result<Option<&'k mut ZSet>, WrongType> {
    match ks.lookup_write(key).map(|e| &mut e.value) {
        None => Ok(None),
        Some(Value::ZSet(z)) => Ok(Some(z)),
        Some(_) => Err(WrongType),
    }
}

/// A sorted set already looked up (and type-checked) in this command, seen again without
/// statistics: for commands that go back to one of several inputs.
pub(crate) fn peek_zset<'k>(ks: &'k mut Keyspace<'_>, key: &[u8]) -> Option<&'k ZSet> {
    match ks.peek(key).map(|e| &e.value) {
        Some(Value::ZSet(z)) => Some(z),
        _ => None,
    }
}

/// The members of a plain set, which ZUNION/ZINTER/ZDIFF (and their STORE forms) accept as
/// inputs with every score 1. `None` for any other value.
pub(crate) fn set_members(value: &Value) -> Option<Vec<Vec<u8>>> {
    match value {
        Value::Set(set) => Some(set.iter().map(|m| m.to_vec()).collect()),
        _ => None,
    }
}

/// Deletes `key` when its sorted set has become empty (Redis never keeps empty sets).
/// Returns whether it did.
fn delete_if_empty(ks: &mut Keyspace, key: &[u8]) -> bool {
    let empty = matches!(ks.peek(key).map(|e| &e.value), Some(Value::ZSet(z)) if z.is_empty());
    if empty {
        ks.remove(key);
    }
    empty
}

/// Writes a member: its bytes, or the digits of an integer-encoded member.
pub(crate) fn bulk_member(out: &mut Out, m: Item) {
    match m {
        Item::Str(s) => out.bulk(s),
        Item::Int(n) => out.bulk_int(n),
    }
}

/// The header of a member list: `n` entries, doubled and flat in RESP2 when scores follow.
pub(crate) fn pairs_header(out: &mut Out, n: usize, withscores: bool) {
    if withscores && !out.resp3() {
        out.array(2 * n);
    } else {
        out.array(n);
    }
}

/// One entry of a member list: the member, then its score when asked, as a pair in RESP3.
pub(crate) fn pair(out: &mut Out, m: Item, score: f64, withscores: bool) {
    if withscores && out.resp3() {
        out.array(2);
    }
    bulk_member(out, m);
    if withscores {
        out.double(score);
    }
}

/// Key positions of `CMD numkeys key... [options]`: none when numkeys is not a positive
/// integer, and never past the arguments (the handler reports both errors before it touches a
/// key).
pub fn numkeys_keys_at(args: &Args, numkeys_idx: usize) -> Vec<usize> {
    let n = args
        .get(numkeys_idx)
        .and_then(|a| parse::i64_arg(a).ok())
        .and_then(|n| usize::try_from(n).ok())
        .unwrap_or(0);
    let first = numkeys_idx + 1;
    let end = args.len().min(first.saturating_add(n));
    (first..end).collect()
}

fn numkeys_keys(args: &Args) -> Vec<usize> {
    numkeys_keys_at(args, 1)
}

/// ZUNIONSTORE-like: the destination, then the numkeys inputs.
fn store_keys(args: &Args) -> Vec<usize> {
    let inputs = numkeys_keys_at(args, 2);
    if inputs.is_empty() {
        return Vec::new();
    }
    std::iter::once(1).chain(inputs).collect()
}

/// ZMPOP's keys (numkeys at 1); BZMPOP's are `numkeys_keys_at(args, 2)`.
fn zmpop_keys(args: &Args) -> Vec<usize> {
    numkeys_keys_at(args, 1)
}

thread_local! {
    /// This thread's generator for ZRANDMEMBER (xorshift64*), seeded from the clock.
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

/// Reseeds this thread's generator (tests print and reuse seeds).
#[cfg(test)]
pub(crate) fn seed_random(seed: u64) {
    RANDOM_STATE.with(|state| state.set(seed | 1));
}

/// A uniform index below `n` (n > 0).
fn random_below(n: usize) -> usize {
    (random_u64() % n as u64) as usize
}

// ---------------------------------------------------------------------------------------
// ZADD, ZINCRBY.

/// ZADD's parsed arguments.
struct ZaddArgs {
    flags: AddFlags,
    ch: bool,
    /// Index of the first score.
    first: usize,
    scores: Vec<f64>,
}

/// Parses ZADD's options, checks their combinations and parses every score, in Redis's
/// order, before anything is looked up.
fn parse_zadd(args: &Args, incr: bool) -> Result<ZaddArgs, &'static str> {
    let mut flags = AddFlags {
        incr,
        ..AddFlags::default()
    };
    let mut ch = false;
    let mut i = 2;
    while let Some(opt) = args.get(i) {
        if parse::kw(opt, "nx") {
            flags.nx = true;
        } else if parse::kw(opt, "xx") {
            flags.xx = true;
        } else if parse::kw(opt, "ch") {
            ch = true;
        } else if parse::kw(opt, "incr") {
            flags.incr = true;
        } else if parse::kw(opt, "gt") {
            flags.gt = true;
        } else if parse::kw(opt, "lt") {
            flags.lt = true;
        } else {
            break;
        }
        i += 1;
    }
    let elements = args.len() - i;
    if !elements.is_multiple_of(2) || elements == 0 {
        return Err(err::SYNTAX);
    }
    if flags.nx && flags.xx {
        return Err(ERR_XX_NX);
    }
    if (flags.nx && (flags.gt || flags.lt)) || (flags.gt && flags.lt) {
        return Err(ERR_GT_LT_NX);
    }
    if flags.incr && elements > 2 {
        return Err(ERR_INCR_PAIRS);
    }
    let scores = (i..args.len())
        .step_by(2)
        .map(|j| number::string2d(&args[j]).ok_or(err::NOT_FLOAT))
        .collect::<Result<Vec<f64>, _>>()?;
    Ok(ZaddArgs {
        flags,
        ch,
        first: i,
        scores,
    })
}

/// What a ZADD did to one set.
#[derive(Default)]
struct ZaddTally {
    added: i64,
    updated: i64,
    processed: i64,
    /// The last processed element's score (ZINCRBY's reply).
    score: f64,
    nan: bool,
}

fn apply_zadd(z: &mut ZSet, args: &Args, p: &ZaddArgs) -> ZaddTally {
    let mut t = ZaddTally::default();
    for (k, &score) in p.scores.iter().enumerate() {
        let member = &args[p.first + 2 * k + 1];
        match z.add(score, member, p.flags) {
            Err(_) => {
                t.nan = true;
                return t;
            }
            Ok(Added::Nop) => {}
            Ok(Added::New(s)) => {
                t.added += 1;
                t.processed += 1;
                t.score = s;
            }
            Ok(Added::Updated(s)) => {
                t.updated += 1;
                t.processed += 1;
                t.score = s;
            }
            Ok(Added::Same(s)) => {
                t.processed += 1;
                t.score = s;
            }
        }
    }
    t
}

/// ZADD and ZINCRBY (`zaddGenericCommand`).
fn zadd_generic(ks: &mut Keyspace, args: &Args, out: &mut Out, incr: bool) {
    let p = match parse_zadd(args, incr) {
        Ok(p) => p,
        Err(e) => return out.error(e),
    };
    let key = &args[1];
    let tally = match write_zset(ks, key) {
        Err(WrongType) => return out.error(err::WRONGTYPE),
        Ok(Some(z)) => apply_zadd(z, args, &p),
        Ok(None) if p.flags.xx => ZaddTally::default(),
        Ok(None) => {
            let mut z = ZSet::new();
            let t = apply_zadd(&mut z, args, &p);
            if !z.is_empty() {
                ks.set(key, Value::ZSet(z));
            }
            t
        }
    };
    if tally.nan {
        out.error(ERR_NAN);
    } else if p.flags.incr {
        if tally.processed > 0 {
            out.double(tally.score);
        } else {
            out.null();
        }
    } else {
        out.int(if p.ch {
            tally.added + tally.updated
        } else {
            tally.added
        });
    }
    let changed = tally.added + tally.updated;
    ks.dirty(changed as u64);
    if changed > 0 {
        ks.signal_modified(key);
        ks.notify('z', if p.flags.incr { "zincr" } else { "zadd" }, key);
    }
}

/// ZADD (also what GEOADD runs once it has turned coordinates into scores).
pub(crate) fn zadd_command(ks: &mut Keyspace, args: &Args, out: &mut Out) {
    zadd_generic(ks, args, out, false);
}

fn zincrby(ks: &mut Keyspace, args: &Args, out: &mut Out) {
    zadd_generic(ks, args, out, true);
}

// ---------------------------------------------------------------------------------------
// Point commands.

fn zrem(ks: &mut Keyspace, args: &Args, out: &mut Out) {
    let key = &args[1];
    let z = match write_zset(ks, key) {
        Err(WrongType) => return out.error(err::WRONGTYPE),
        Ok(None) => return out.int(0),
        Ok(Some(z)) => z,
    };
    let mut deleted = 0;
    for member in &args[2..] {
        if z.remove(member) {
            deleted += 1;
        }
        if z.is_empty() {
            break;
        }
    }
    if deleted > 0 {
        ks.notify('z', "zrem", key);
        if delete_if_empty(ks, key) {
            ks.notify('g', "del", key);
        }
        ks.signal_modified(key);
        ks.dirty(deleted);
    }
    out.int(deleted as i64);
}

fn zcard(ks: &mut Keyspace, args: &Args, out: &mut Out) {
    match read_zset(ks, &args[1]) {
        Err(WrongType) => out.error(err::WRONGTYPE),
        Ok(z) => out.int(z.map_or(0, ZSet::len) as i64),
    }
}

fn zscore(ks: &mut Keyspace, args: &Args, out: &mut Out) {
    match read_zset(ks, &args[1]) {
        Err(WrongType) => out.error(err::WRONGTYPE),
        Ok(z) => match z.and_then(|z| z.score(&args[2])) {
            Some(s) => out.double(s),
            None => out.null(),
        },
    }
}

fn zmscore(ks: &mut Keyspace, args: &Args, out: &mut Out) {
    let z = match read_zset(ks, &args[1]) {
        Err(WrongType) => return out.error(err::WRONGTYPE),
        Ok(z) => z,
    };
    out.array(args.len() - 2);
    for member in &args[2..] {
        match z.and_then(|z| z.score(member)) {
            Some(s) => out.double(s),
            None => out.null(),
        }
    }
}

fn zrank_generic(ks: &mut Keyspace, args: &Args, out: &mut Out, rev: bool) {
    match read_zset(ks, &args[1]) {
        Err(WrongType) => out.error(err::WRONGTYPE),
        Ok(z) => match z.and_then(|z| z.rank(&args[2], rev)) {
            Some(r) => out.int(r as i64),
            None => out.null(),
        },
    }
}

fn zrank(ks: &mut Keyspace, args: &Args, out: &mut Out) {
    zrank_generic(ks, args, out, false);
}

fn zrevrank(ks: &mut Keyspace, args: &Args, out: &mut Out) {
    zrank_generic(ks, args, out, true);
}

/// ZSCAN key cursor [MATCH pattern] [COUNT count]: the cursor is checked before the lookup,
/// the options after it (a missing key answers an empty scan whatever they are).
fn zscan(ks: &mut Keyspace, args: &Args, out: &mut Out) {
    let cursor = match parse::scan_cursor(&args[2]) {
        Ok(c) => c,
        Err(e) => return out.error(e),
    };
    let z = match read_zset(ks, &args[1]) {
        Err(WrongType) => return out.error(err::WRONGTYPE),
        Ok(None) => {
            out.array(2);
            out.bulk(b"0");
            return out.array(0);
        }
        Ok(Some(z)) => z,
    };
    let opts = match parse_scan_options(&args[3..], false) {
        Ok(o) => o,
        Err(e) => return out.error(e),
    };
    let mut found: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
    let next = z.scan(cursor, opts.count, |m, score| {
        m.with_bytes(|b| {
            if opts.matches(b) {
                found.push((b.to_vec(), score.to_vec()));
            }
        })
    });
    out.array(2);
    out.bulk(next.to_string().as_bytes());
    out.array(found.len() * 2);
    for (m, s) in &found {
        out.bulk(m);
        out.bulk(s);
    }
}

// ---------------------------------------------------------------------------------------
// ZRANDMEMBER.

/// ZRANDMEMBER key [count [WITHSCORES]].
fn zrandmember(ks: &mut Keyspace, args: &Args, out: &mut Out) {
    if args.len() == 2 {
        return match read_zset(ks, &args[1]) {
            Err(WrongType) => out.error(err::WRONGTYPE),
            Ok(None) => out.null(),
            Ok(Some(z)) => match z.get(random_below(z.len().max(1))) {
                Some((m, _)) => bulk_member(out, m),
                None => out.null(),
            },
        };
    }
    let count = match parse::i64_arg(&args[2]) {
        Err(e) => return out.error(e),
        Ok(i64::MIN) => return out.error(ERR_RANDMEMBER_RANGE),
        Ok(n) => n,
    };
    let withscores = match args.get(3) {
        _ if args.len() > 4 => return out.error(err::SYNTAX),
        None => false,
        Some(a) if parse::kw(a, "withscores") => true,
        Some(_) => return out.error(err::SYNTAX),
    };
    if withscores && !(-(i64::MAX / 2)..=i64::MAX / 2).contains(&count) {
        return out.error(ERR_OUT_OF_RANGE);
    }
    match read_zset(ks, &args[1]) {
        Err(WrongType) => out.error(err::WRONGTYPE),
        Ok(None) => out.array(0),
        Ok(Some(z)) => randmember_count(z, count, withscores, out),
    }
}

/// `zrandmemberWithCountCommand`: a negative count draws with repetition; a positive one
/// draws distinct members (the whole set when the count reaches its size).
fn randmember_count(z: &ZSet, count: i64, withscores: bool, out: &mut Out) {
    let size = z.len();
    if count == 0 {
        return out.array(0);
    }
    if count < 0 || count == 1 {
        if count.unsigned_abs() > RANDOM_REPLY_MEMBERS_MAX {
            return out.error(ERR_REPLY_TOO_BIG);
        }
        let n = count.unsigned_abs() as usize;
        pairs_header(out, n, withscores);
        if z.is_listpack() {
            // One walk of the (small) listpack, then draws by index.
            let all: Vec<(Item, f64)> = z.iter().collect();
            for _ in 0..n {
                let (m, s) = all[random_below(all.len())];
                pair(out, m, s, withscores);
            }
        } else {
            for _ in 0..n {
                if let Some((m, s)) = z.get(random_below(size)) {
                    pair(out, m, s, withscores);
                }
            }
        }
        return;
    }
    let count = count as usize;
    if count >= size {
        // The whole set, highest score first: Redis walks sorted sets backwards here (its
        // `zuiInitIterator` does, for the benefit of ZUNION and friends).
        pairs_header(out, size, withscores);
        for (m, s) in z.iter_from(size - 1, true) {
            pair(out, m, s, withscores);
        }
        return;
    }
    pairs_header(out, count, withscores);
    for rank in distinct_ranks(size, count) {
        if let Some((m, s)) = z.get(rank) {
            pair(out, m, s, withscores);
        }
    }
}

/// `count` distinct ranks below `size` (count < size), uniformly: drops random ranks from
/// the full list when most are wanted (Redis's "CASE 3"), draws until enough distinct ones
/// otherwise ("CASE 4").
fn distinct_ranks(size: usize, count: usize) -> Vec<usize> {
    if count * 3 > size {
        let mut ranks: Vec<usize> = (0..size).collect();
        while ranks.len() > count {
            let i = random_below(ranks.len());
            ranks.swap_remove(i);
        }
        ranks
    } else {
        let mut seen = hashbrown::HashSet::with_capacity(count);
        let mut ranks = Vec::with_capacity(count);
        while ranks.len() < count {
            let r = random_below(size);
            if seen.insert(r) {
                ranks.push(r);
            }
        }
        ranks
    }
}

// ---------------------------------------------------------------------------------------
// Pops: ZPOPMIN, ZPOPMAX, ZMPOP, and the helpers the engine's blocking pops share.

/// Elements popped from one key.
pub struct Popped {
    pub elements: Vec<(Vec<u8>, f64)>,
}

/// Pops up to `count` (>= 1) elements from the lowest scores (highest when `max`) of the
/// sorted set at `key`, which the caller has found to exist (`lookupKeyWrite`): `Ok(None)`
/// when it does not after all, `Err` when it holds another type. Counts one change per
/// element, fires `zpopmin`/`zpopmax` and deletes the key when it empties (firing `del`), as
/// Redis's `genericZpopCommand`.
pub fn zpop(
    ks: &mut Keyspace,
    key: &[u8],
    max: bool,
    count: usize,
) -> Result<Option<Popped>, WrongType> {
    let Some(z) = write_zset(ks, key)? else {
        return Ok(None);
    };
    let n = count.min(z.len());
    let mut elements = Vec::with_capacity(n);
    for _ in 0..n {
        match z.pop(max) {
            Some(e) => elements.push(e),
            None => break,
        }
    }
    if elements.is_empty() {
        return Ok(Some(Popped { elements }));
    }
    ks.dirty(elements.len() as u64);
    ks.notify('z', if max { "zpopmax" } else { "zpopmin" }, key);
    ks.signal_modified(key);
    if delete_if_empty(ks, key) {
        ks.notify('g', "del", key);
    }
    Ok(Some(Popped { elements }))
}

/// ZPOPMIN/ZPOPMAX's reply: flat `[member, score, ...]`, or pairs in RESP3 when a count was
/// given (`nested`).
pub fn reply_zpop(out: &mut Out, popped: &Popped, nested: bool) {
    if nested {
        out.array(popped.elements.len());
    } else {
        out.array(popped.elements.len() * 2);
    }
    for (m, s) in &popped.elements {
        if nested {
            out.array(2);
        }
        out.bulk(m);
        out.double(*s);
    }
}

/// BZPOPMIN/BZPOPMAX's reply: `[key, member, score]` in both protocols.
pub fn reply_bzpop(out: &mut Out, key: &[u8], popped: &Popped) {
    out.array(popped.elements.len() * 2 + 1);
    out.bulk(key);
    for (m, s) in &popped.elements {
        out.bulk(m);
        out.double(*s);
    }
}

/// ZMPOP/BZMPOP's reply: `[key, [[member, score], ...]]` in both protocols.
pub fn reply_mpop(out: &mut Out, key: &[u8], popped: &Popped) {
    out.array(2);
    out.bulk(key);
    out.array(popped.elements.len());
    for (m, s) in &popped.elements {
        out.array(2);
        out.bulk(m);
        out.double(*s);
    }
}

fn zpop_minmax(ks: &mut Keyspace, args: &Args, out: &mut Out, max: bool) {
    if args.len() > 3 {
        return out.error(err::SYNTAX);
    }
    let count = match args.get(2) {
        None => None,
        Some(a) => match parse::i64_arg(a) {
            Ok(n) if n >= 0 => Some(n as usize),
            _ => return out.error(ERR_MUST_BE_POSITIVE),
        },
    };
    let nested = out.resp3() && count.is_some();
    let key = &args[1];
    match write_zset(ks, key) {
        Err(WrongType) => return out.error(err::WRONGTYPE),
        Ok(None) => return out.array(0),
        Ok(Some(_)) if count == Some(0) => return out.array(0),
        Ok(Some(_)) => {}
    }
    match zpop(ks, key, max, count.unwrap_or(1)) {
        Err(WrongType) => out.error(err::WRONGTYPE),
        Ok(None) => out.array(0),
        Ok(Some(p)) => reply_zpop(out, &p, nested),
    }
}

fn zpopmin(ks: &mut Keyspace, args: &Args, out: &mut Out) {
    zpop_minmax(ks, args, out, false);
}

fn zpopmax(ks: &mut Keyspace, args: &Args, out: &mut Out) {
    zpop_minmax(ks, args, out, true);
}

/// ZMPOP's and BZMPOP's arguments after numkeys.
pub struct MpopArgs {
    /// Index of the first key and the number of keys.
    pub first_key: usize,
    pub numkeys: usize,
    pub max: bool,
    pub count: usize,
}

/// Parses `numkeys key... MIN|MAX [COUNT count]` with numkeys at `numkeys_idx`, with Redis's
/// errors (`zmpopGenericCommand`).
pub fn parse_mpop(args: &Args, numkeys_idx: usize) -> Result<MpopArgs, &'static str> {
    let numkeys = parse::i64_arg(&args[numkeys_idx])
        .ok()
        .filter(|&n| n >= 1)
        .ok_or(ERR_NUMKEYS)? as u64;
    let where_idx = (numkeys_idx as u64 + 1)
        .checked_add(numkeys)
        .filter(|&i| i < args.len() as u64)
        .ok_or(err::SYNTAX)? as usize;
    let max = if parse::kw(&args[where_idx], "min") {
        false
    } else if parse::kw(&args[where_idx], "max") {
        true
    } else {
        return Err(err::SYNTAX);
    };
    let mut count = None;
    let mut j = where_idx + 1;
    while j < args.len() {
        let more = args.len() - 1 - j;
        if count.is_none() && parse::kw(&args[j], "count") && more > 0 {
            j += 1;
            let n = parse::i64_arg(&args[j])
                .ok()
                .filter(|&n| n >= 1)
                .ok_or(ERR_COUNT)?;
            count = Some(n as usize);
        } else {
            return Err(err::SYNTAX);
        }
        j += 1;
    }
    Ok(MpopArgs {
        first_key: numkeys_idx + 1,
        numkeys: numkeys as usize,
        max,
        count: count.unwrap_or(1),
    })
}

/// ZMPOP numkeys key... MIN|MAX [COUNT count]: pops from the first key holding a sorted set.
fn zmpop(ks: &mut Keyspace, args: &Args, out: &mut Out) {
    let p = match parse_mpop(args, 1) {
        Ok(p) => p,
        Err(e) => return out.error(e),
    };
    for key in &args[p.first_key..p.first_key + p.numkeys] {
        match write_zset(ks, key) {
            Err(WrongType) => return out.error(err::WRONGTYPE),
            Ok(None) => continue,
            Ok(Some(_)) => {}
        }
        return match zpop(ks, key, p.max, p.count) {
            Err(WrongType) => out.error(err::WRONGTYPE),
            Ok(None) => out.null_array(),
            Ok(Some(popped)) => {
                // Propagated as ZPOPMIN/ZPOPMAX key count.
                let n = popped.elements.len() as i64;
                let name = if p.max { "ZPOPMAX" } else { "ZPOPMIN" };
                ks.rewrite_as(|| vec![super::prop::lit(name), key.clone(), super::prop::num(n)]);
                reply_mpop(out, key, &popped)
            }
        };
    }
    out.null_array();
}
