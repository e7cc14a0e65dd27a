//! Hash commands: HSET, HSETNX, HMSET, HGET, HMGET, HDEL, HLEN, HSTRLEN, HEXISTS, HKEYS,
//! HVALS, HGETALL, HINCRBY, HINCRBYFLOAT, HRANDFIELD and HSCAN.
//!
//! Each handler follows Redis's `t_hash.c` order of checks, because the order decides which
//! error a client sees when several apply: arguments that need no key are parsed first (the
//! increment of HINCRBY, HSCAN's cursor, HRANDFIELD's count), then the key is looked up and
//! type-checked, then the rest. Replies, errors, keyspace events and `dirty` counts are
//! Redis 7.0's byte for byte; the handler tests replay replies recorded from redis-server.
//!
//! Two rules hold for every write: a hash that would be created empty is never stored
//! (`update_or_create` only inserts the new hash if the closure left fields in it), and a
//! hash emptied by HDEL is deleted with a `del` event, as Redis does.
//!
//! Encodings and their thresholds belong to `storage::hash`; handlers pass it
//! `Limits::current()`, and `set_all` / `convert_for_inputs` run where Redis calls
//! `hashTypeTryConversion`.
//!
//! `scan_cursor` and `scan_options` repeat what the keyspace SCAN family defines
//! (`parse::scan_cursor`, `scan::parse_scan_options`); folding them together is pending.
//!
//! HINCRBYFLOAT computes in x86-64 `long double` (see `long_double`): with f64, `1.23` would
//! come back as `1.22999999999999998`.
//!
//! Deliberate differences from Redis:
//! - HRANDFIELD with a negative count (repeats allowed) refuses counts beyond
//!   `RANDOM_REPEATS_MAX` with Redis's "value is out of range" error. Redis would try to build
//!   the reply (up to 4.6e18 elements) and exhaust memory; a shard must not. When the client
//!   has an output buffer hard limit the reply is built as in Redis, and stops where the limit
//!   closes the connection.
//! - HSCAN cursors on a `hashtable` hash are positions in the hash's 64-bit hash space (see
//!   `storage::hash::table`): a stable field is returned exactly once, never twice.
//! - HINCRBYFLOAT is not yet rewritten as HSET for replication and the AOF: the keyspace has
//!   no propagation hook to rewrite through.

use super::long_double;
#[cfg(test)]
mod tests;

use super::long_double::{LongDouble, Parsed};
use super::{err, flag, parse, prop, Cmd, Keys};
use crate::protocol::write::itoa_buf;
use crate::protocol::Out;
use crate::storage::hash::{Hash, Limits, Rng, Sampler};
use crate::storage::listpack::Item;
use crate::storage::{Keyspace, Value};
use crate::util::glob_match;
use bytes::Bytes;
use std::cell::RefCell;

const READ_FAST: u32 = flag::READONLY | flag::FAST;
const WRITE_FAST: u32 = flag::WRITE | flag::DENYOOM | flag::FAST;
const KEY: Keys = Keys::Range(1, 1, 1);
const ACL_READ_FAST: &[&str] = &["read", "hash", "fast"];
const ACL_READ_SLOW: &[&str] = &["read", "hash", "slow"];
const ACL_WRITE_FAST: &[&str] = &["write", "hash", "fast"];

pub static COMMANDS: [Cmd; 16] = [
    Cmd::data("hset", -4, WRITE_FAST, KEY, hset).with_acl(ACL_WRITE_FAST),
    Cmd::data("hsetnx", 4, WRITE_FAST, KEY, hsetnx).with_acl(ACL_WRITE_FAST),
    Cmd::data("hmset", -4, WRITE_FAST, KEY, hmset).with_acl(ACL_WRITE_FAST),
    Cmd::data("hget", 3, READ_FAST, KEY, hget).with_acl(ACL_READ_FAST),
    Cmd::data("hmget", -3, READ_FAST, KEY, hmget).with_acl(ACL_READ_FAST),
    Cmd::data("hdel", -3, flag::WRITE | flag::FAST, KEY, hdel).with_acl(ACL_WRITE_FAST),
    Cmd::data("hlen", 2, READ_FAST, KEY, hlen).with_acl(ACL_READ_FAST),
    Cmd::data("hstrlen", 3, READ_FAST, KEY, hstrlen).with_acl(ACL_READ_FAST),
    Cmd::data("hexists", 3, READ_FAST, KEY, hexists).with_acl(ACL_READ_FAST),
    Cmd::data("hkeys", 2, flag::READONLY, KEY, hkeys).with_acl(ACL_READ_SLOW),
    Cmd::data("hvals", 2, flag::READONLY, KEY, hvals).with_acl(ACL_READ_SLOW),
    Cmd::data("hgetall", 2, flag::READONLY, KEY, hgetall).with_acl(ACL_READ_SLOW),
    Cmd::data("hincrby", 4, WRITE_FAST, KEY, hincrby).with_acl(ACL_WRITE_FAST),
    Cmd::data("hincrbyfloat", 4, WRITE_FAST, KEY, hincrbyfloat).with_acl(ACL_WRITE_FAST),
    Cmd::data("hrandfield", -2, flag::READONLY, KEY, hrandfield).with_acl(ACL_READ_SLOW),
    Cmd::data("hscan", -3, flag::READONLY, KEY, hscan).with_acl(ACL_READ_SLOW),
];

const ERR_HASH_NOT_INT: &str = "ERR hash value is not an integer";
const ERR_HASH_NOT_FLOAT: &str = "ERR hash value is not a float";
const ERR_NAN_OR_INFINITY: &str = "ERR value is NaN or Infinity";
const ERR_WOULD_BE_NAN_OR_INFINITY: &str = "ERR increment would produce NaN or Infinity";
const ERR_OUT_OF_RANGE: &str = "ERR value is out of range";
/// `getRangeLongFromObjectOrReply(-LONG_MAX, LONG_MAX)` rejecting LONG_MIN.
const ERR_COUNT_RANGE: &str =
    "ERR value is out of range, value must between -9223372036854775807 and 9223372036854775807";
const ERR_INVALID_CURSOR: &str = "ERR invalid cursor";

/// The most elements HRANDFIELD returns for a negative count (see the module comment).
pub const RANDOM_REPEATS_MAX: u64 = 1 << 24;
/// HSCAN's default COUNT, as Redis.
const SCAN_COUNT_DEFAULT: usize = 10;
/// HRANDFIELD's "remove random elements" strategy threshold (Redis's
/// `HRANDFIELD_SUB_STRATEGY_MUL`).
const SUB_STRATEGY_MUL: u64 = 3;

struct WrongType;

/// The hash at `key` for reading (hit/miss statistics, access time), None when absent.
fn read<'k>(ks: &'k mut Keyspace, key: &[u8]) -> Result<Option<&'k Hash>, WrongType> {
    match ks.lookup_read(key) {
        None => Ok(None),
        Some(entry) => match &entry.value {
            Value::Hash(h) => Ok(Some(h)),
            _ => Err(WrongType),
        },
    }
}

/// What a write did: the closure's result and whether the key was deleted for being empty.
struct Updated<R> {
    result: R,
    key_removed: bool,
}

/// Runs `f` on the hash at `key` if there is one. A hash `f` leaves empty is deleted.
fn update_existing<R>(
    ks: &mut Keyspace,
    key: &[u8],
    f: impl FnOnce(&mut Hash) -> R,
) -> Result<Option<Updated<R>>, WrongType> {
    let Some(entry) = ks.lookup_write(key) else {
        return Ok(None);
    };
    let Value::Hash(h) = &mut entry.value else {
        return Err(WrongType);
    };
    let result = f(h);
    let key_removed = h.is_empty();
    if key_removed {
        ks.remove(key);
    }
    Ok(Some(Updated {
        result,
        key_removed,
    }))
}

/// Runs `f` on the hash at `key`, or on a new empty one that is stored only if `f` put
/// fields in it (`hashTypeLookupWriteOrCreate` without ever keeping an empty hash).
fn update_or_create<R>(
    ks: &mut Keyspace,
    key: &[u8],
    f: impl FnOnce(&mut Hash) -> R,
) -> Result<R, WrongType> {
    match ks.lookup_write(key) {
        Some(entry) => match &mut entry.value {
            Value::Hash(h) => Ok(f(h)),
            _ => Err(WrongType),
        },
        None => {
            let mut h = Hash::new();
            let result = f(&mut h);
            if !h.is_empty() {
                ks.set(key, Value::Hash(h));
            }
            Ok(result)
        }
    }
}

fn bulk_item(out: &mut Out, item: Item<'_>) {
    match item {
        Item::Int(n) => out.bulk_int(n),
        Item::Str(s) => out.bulk(s),
    }
}

/// The signal, event and change count every successful hash write ends with.
fn written(ks: &mut Keyspace, key: &[u8], event: &'static str, changes: u64) {
    ks.signal_modified(key);
    ks.notify('h', event, key);
    ks.dirty(changes);
}

// ---------------------------------------------------------------------------------------
// Writes.

fn hset(ks: &mut Keyspace, args: &[Bytes], out: &mut Out) {
    set_pairs(ks, args, out, "hset");
}

fn hmset(ks: &mut Keyspace, args: &[Bytes], out: &mut Out) {
    set_pairs(ks, args, out, "hmset");
}

/// HSET key field value [field value ...] (replies with the fields created) and HMSET
/// (replies OK).
fn set_pairs(ks: &mut Keyspace, args: &[Bytes], out: &mut Out, name: &str) {
    if args.len() % 2 == 1 {
        return out.error(&err::wrong_args(name));
    }
    let key = &args[1];
    let limits = Limits::current();
    let pairs = args[2..].chunks_exact(2).map(|p| (&p[0][..], &p[1][..]));
    let created = update_or_create(ks, key, |h| h.set_all(pairs, &limits));
    let Ok(created) = created else {
        return out.error(err::WRONGTYPE);
    };
    if name == "hset" {
        out.int(created as i64);
    } else {
        out.ok();
    }
    written(ks, key, "hset", (args.len() as u64 - 2) / 2);
}

/// HSETNX key field value: 1 when the field was set, 0 when it already existed.
fn hsetnx(ks: &mut Keyspace, args: &[Bytes], out: &mut Out) {
    let (key, field, value) = (&args[1], &args[2], &args[3]);
    let limits = Limits::current();
    let set = update_or_create(ks, key, |h| {
        if h.contains(field) {
            return false;
        }
        h.convert_for_inputs([&field[..], &value[..]], &limits);
        h.set(field, value, &limits);
        true
    });
    match set {
        Err(WrongType) => out.error(err::WRONGTYPE),
        Ok(false) => out.int(0),
        Ok(true) => {
            out.int(1);
            written(ks, key, "hset", 1);
        }
    }
}

/// HDEL key field [field ...]: the number of fields removed. Stops as soon as the hash is
/// empty (the key is gone then), as Redis does.
fn hdel(ks: &mut Keyspace, args: &[Bytes], out: &mut Out) {
    let key = &args[1];
    let updated = update_existing(ks, key, |h| {
        let mut deleted = 0;
        for field in &args[2..] {
            if h.remove(field) {
                deleted += 1;
                if h.is_empty() {
                    break;
                }
            }
        }
        deleted
    });
    let updated = match updated {
        Err(WrongType) => return out.error(err::WRONGTYPE),
        Ok(None) => return out.int(0),
        Ok(Some(u)) => u,
    };
    let deleted = updated.result;
    if deleted > 0 {
        written(ks, key, "hdel", deleted as u64);
        if updated.key_removed {
            ks.notify('g', "del", key);
        }
    }
    out.int(deleted as i64);
}

/// HINCRBY key field increment.
fn hincrby(ks: &mut Keyspace, args: &[Bytes], out: &mut Out) {
    let (key, field) = (&args[1], &args[2]);
    let incr = match parse::i64_arg(&args[3]) {
        Ok(n) => n,
        Err(e) => return out.error(e),
    };
    let limits = Limits::current();
    let result = update_or_create(ks, key, |h| {
        let old = match h.get(field) {
            None => 0,
            Some(Item::Int(n)) => n,
            Some(Item::Str(s)) => {
                crate::storage::value::parse_canonical_i64(s).ok_or(ERR_HASH_NOT_INT)?
            }
        };
        let new = old.checked_add(incr).ok_or(err::OVERFLOW)?;
        h.set(field, itoa_buf(new).as_bytes_mut(), &limits);
        Ok(new)
    });
    match result {
        Err(WrongType) => out.error(err::WRONGTYPE),
        Ok(Err(e)) => out.error(e),
        Ok(Ok(new)) => {
            out.int(new);
            written(ks, key, "hincrby", 1);
        }
    }
}

/// HINCRBYFLOAT key field increment, in `long double` (see the module comment).
fn hincrbyfloat(ks: &mut Keyspace, args: &[Bytes], out: &mut Out) {
    let (key, field) = (&args[1], &args[2]);
    let incr = match long_double::parse(&args[3]) {
        None => return out.error(err::NOT_FLOAT),
        Some(Parsed::Infinite) => return out.error(ERR_NAN_OR_INFINITY),
        Some(Parsed::Finite(v)) => v,
    };
    let limits = Limits::current();
    let result = update_or_create(ks, key, |h| {
        let old = match h.get(field) {
            None => LongDouble::ZERO,
            Some(Item::Int(n)) => LongDouble::from_i64(n),
            Some(Item::Str(s)) => match long_double::parse(s) {
                None => return Err(ERR_HASH_NOT_FLOAT),
                Some(Parsed::Infinite) => return Err(ERR_WOULD_BE_NAN_OR_INFINITY),
                Some(Parsed::Finite(v)) => v,
            },
        };
        let sum = old.add(incr).map_err(|_| ERR_WOULD_BE_NAN_OR_INFINITY)?;
        let text = long_double::format_human(sum);
        h.set(field, text.as_bytes(), &limits);
        Ok(text)
    });
    match result {
        Err(WrongType) => out.error(err::WRONGTYPE),
        Ok(Err(e)) => out.error(e),
        Ok(Ok(text)) => {
            out.bulk(text.as_bytes());
            // Propagated as HSET of the result, as Redis does.
            ks.rewrite_as(|| {
                vec![
                    prop::lit("HSET"),
                    key.clone(),
                    field.clone(),
                    Bytes::from(text),
                ]
            });
            written(ks, key, "hincrbyfloat", 1);
        }
    }
}

/// Redis's `ld2string(.., LD_STR_HUMAN)` of `v` widened to `long double` (exact): `%.17Lf`
/// with trailing zeros and point trimmed, `-0` as `0`, `inf`/`-inf`. Shared later with
/// INCRBYFLOAT; HINCRBYFLOAT itself adds in `long double` before formatting.
pub fn format_long_double(v: f64) -> String {
    if v.is_nan() {
        return "nan".to_string();
    }
    if v.is_infinite() {
        return if v > 0.0 { "inf" } else { "-inf" }.to_string();
    }
    // The exact binary value as a hex float, which `long_double::parse` reads without
    // rounding (every f64 is a long double).
    let bits = v.to_bits();
    let exponent_bits = ((bits >> 52) & 0x7ff) as i64;
    let fraction = bits & ((1u64 << 52) - 1);
    let (mantissa, exp2) = if exponent_bits == 0 {
        (fraction, -1074)
    } else {
        (fraction | (1u64 << 52), exponent_bits - 1075)
    };
    let sign = if v.is_sign_negative() { "-" } else { "" };
    let hex = format!("{sign}0x{mantissa:x}p{exp2}");
    match long_double::parse(hex.as_bytes()) {
        Some(Parsed::Finite(ld)) => long_double::format_human(ld),
        // Unreachable for finite f64s; fall back to the shortest representation.
        _ => v.to_string(),
    }
}

// ---------------------------------------------------------------------------------------
// Reads.

fn hget(ks: &mut Keyspace, args: &[Bytes], out: &mut Out) {
    match read(ks, &args[1]) {
        Err(WrongType) => out.error(err::WRONGTYPE),
        Ok(None) => out.null(),
        Ok(Some(h)) => match h.get(&args[2]) {
            Some(v) => bulk_item(out, v),
            None => out.null(),
        },
    }
}

/// HMGET key field [field ...]: a missing key reads as an empty hash.
fn hmget(ks: &mut Keyspace, args: &[Bytes], out: &mut Out) {
    let h = match read(ks, &args[1]) {
        Err(WrongType) => return out.error(err::WRONGTYPE),
        Ok(h) => h,
    };
    out.array(args.len() - 2);
    for field in &args[2..] {
        match h.and_then(|h| h.get(field)) {
            Some(v) => bulk_item(out, v),
            None => out.null(),
        }
    }
}

/// Replies with `f(hash)` as an integer, 0 for a missing key.
fn int_reply(ks: &mut Keyspace, key: &[u8], out: &mut Out, f: impl FnOnce(&Hash) -> usize) {
    match read(ks, key) {
        Err(WrongType) => out.error(err::WRONGTYPE),
        Ok(None) => out.int(0),
        Ok(Some(h)) => out.int(f(h) as i64),
    }
}

fn hlen(ks: &mut Keyspace, args: &[Bytes], out: &mut Out) {
    int_reply(ks, &args[1], out, Hash::len);
}

fn hstrlen(ks: &mut Keyspace, args: &[Bytes], out: &mut Out) {
    let field = &args[2];
    int_reply(ks, &args[1], out, |h| h.get(field).map_or(0, |v| v.len()));
}

fn hexists(ks: &mut Keyspace, args: &[Bytes], out: &mut Out) {
    let field = &args[2];
    int_reply(ks, &args[1], out, |h| h.contains(field) as usize);
}

#[derive(Clone, Copy, PartialEq)]
enum Parts {
    Fields,
    Values,
    Both,
}

/// HKEYS, HVALS and HGETALL (`genericHgetallCommand`): HGETALL is a map in RESP3.
fn get_all(ks: &mut Keyspace, key: &[u8], out: &mut Out, parts: Parts) {
    let h = match read(ks, key) {
        Err(WrongType) => return out.error(err::WRONGTYPE),
        Ok(h) => h,
    };
    let len = h.map_or(0, Hash::len);
    if parts == Parts::Both {
        out.map(len);
    } else {
        out.array(len);
    }
    for (field, value) in h.into_iter().flat_map(Hash::iter) {
        if parts != Parts::Values {
            bulk_item(out, field);
        }
        if parts != Parts::Fields {
            bulk_item(out, value);
        }
    }
}

fn hkeys(ks: &mut Keyspace, args: &[Bytes], out: &mut Out) {
    get_all(ks, &args[1], out, Parts::Fields);
}

fn hvals(ks: &mut Keyspace, args: &[Bytes], out: &mut Out) {
    get_all(ks, &args[1], out, Parts::Values);
}

fn hgetall(ks: &mut Keyspace, args: &[Bytes], out: &mut Out) {
    get_all(ks, &args[1], out, Parts::Both);
}

// ---------------------------------------------------------------------------------------
// HRANDFIELD.

thread_local! {
    /// The generator HRANDFIELD draws from on this thread, seeded from the OS-seeded keys
    /// std's `RandomState` uses. Tests reseed it with `seed_random`.
    static RNG: RefCell<Rng> = RefCell::new(Rng::new(os_seed()));
}

fn os_seed() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    std::collections::hash_map::RandomState::new()
        .build_hasher()
        .finish()
}

fn with_rng<R>(f: impl FnOnce(&mut Rng) -> R) -> R {
    RNG.with(|rng| f(&mut rng.borrow_mut()))
}

/// Makes this thread's HRANDFIELD draws reproducible.
pub fn seed_random(seed: u64) {
    RNG.with(|rng| *rng.borrow_mut() = Rng::new(seed));
}

/// HRANDFIELD key [count [WITHVALUES]].
fn hrandfield(ks: &mut Keyspace, args: &[Bytes], out: &mut Out) {
    if args.len() >= 3 {
        let count = match parse::i64_arg(&args[2]) {
            Err(e) => return out.error(e),
            Ok(i64::MIN) => return out.error(ERR_COUNT_RANGE),
            Ok(n) => n,
        };
        if args.len() > 4 || (args.len() == 4 && !keyword(&args[3], "withvalues")) {
            return out.error(err::SYNTAX);
        }
        let with_values = args.len() == 4;
        if with_values && !(-(i64::MAX / 2)..=i64::MAX / 2).contains(&count) {
            return out.error(ERR_OUT_OF_RANGE);
        }
        return random_fields(ks, &args[1], count, with_values, out);
    }
    match read(ks, &args[1]) {
        Err(WrongType) => out.error(err::WRONGTYPE),
        Ok(None) => out.null(),
        Ok(Some(h)) => match with_rng(|rng| h.random(rng)) {
            Some((field, _)) => bulk_item(out, field),
            None => out.null(),
        },
    }
}

/// An option word as Redis compares it (`strcasecmp` on a C string: it ends at a NUL).
fn keyword(arg: &[u8], word: &str) -> bool {
    let c_str = arg.split(|&b| b == 0).next().unwrap_or(arg);
    c_str.eq_ignore_ascii_case(word.as_bytes())
}

/// One HRANDFIELD element: the field, or with values the pair (a 2-element array in RESP3,
/// two flat elements in RESP2).
fn random_element(out: &mut Out, (field, value): (Item<'_>, Item<'_>), with_values: bool) {
    if with_values && out.resp3() {
        out.array(2);
    }
    bulk_item(out, field);
    if with_values {
        bulk_item(out, value);
    }
}

/// The array header for `n` HRANDFIELD elements.
fn random_header(out: &mut Out, n: usize, with_values: bool) {
    let flat = with_values && !out.resp3();
    out.array(if flat { 2 * n } else { n });
}

/// `hrandfieldWithCountCommand`: the four cases of Redis's algorithm, chosen the same way.
fn random_fields(ks: &mut Keyspace, key: &[u8], count: i64, with_values: bool, out: &mut Out) {
    let h = match read(ks, key) {
        Err(WrongType) => return out.error(err::WRONGTYPE),
        Ok(None) => return out.array(0),
        Ok(Some(h)) => h,
    };
    if count == 0 {
        return out.array(0);
    }
    let n = count.unsigned_abs();
    let size = h.len() as u64;
    with_rng(|rng| {
        if count < 0 || n == 1 {
            // Case 1: independent draws, repeats allowed, in random order.
            if n > RANDOM_REPEATS_MAX && out.limit_bytes == usize::MAX {
                return out.error(ERR_OUT_OF_RANGE);
            }
            let n = usize::try_from(n).unwrap_or(usize::MAX);
            random_header(out, n, with_values);
            return draw_repeated(h, n, rng, |pair| {
                random_element(out, pair, with_values);
                !out.over_limit()
            });
        }
        random_header(out, n.min(size) as usize, with_values);
        if n >= size {
            // Case 2: the whole hash.
            h.iter()
                .for_each(|pair| random_element(out, pair, with_values));
        } else if n * SUB_STRATEGY_MUL > size {
            // Case 3: copy everything, then drop random pairs until `n` are left.
            let mut all: Vec<_> = h.iter().collect();
            while all.len() as u64 > n {
                all.swap_remove(rng.below(all.len() as u64) as usize);
            }
            all.into_iter()
                .for_each(|pair| random_element(out, pair, with_values));
        } else {
            // Case 4: few out of many.
            draw_unique(h, n as usize, rng, |pair| {
                random_element(out, pair, with_values)
            });
        }
    })
}

/// `n` independent uniform draws. Draws from a table's segments cost a segment walk each,
/// so when they would add up to more than listing the hash once, the pairs are listed once
/// and drawn by index; packed hashes are always listed (their draws walk the listpack).
/// `emit` returns whether to go on (false: the client's output limit was reached).
fn draw_repeated<'a>(
    h: &'a Hash,
    n: usize,
    rng: &mut Rng,
    mut emit: impl FnMut((Item<'a>, Item<'a>)) -> bool,
) {
    if h.is_packed() || n.saturating_mul(16) >= h.len() {
        let all: Vec<_> = h.iter().collect();
        for _ in 0..n {
            if let Some(&pair) = all.get(rng.below(all.len() as u64) as usize) {
                if !emit(pair) {
                    return;
                }
            }
        }
        return;
    }
    let sampler = Sampler::new(h);
    for _ in 0..n {
        if let Some(pair) = sampler.draw(h, rng) {
            if !emit(pair) {
                return;
            }
        }
    }
}

/// `n` distinct pairs, `n * 3 <= len`. Packed: one pass of selection sampling, keeping the
/// listpack's order (Redis's `lpRandomPairsUnique`). Table: draws until `n` distinct fields
/// came up (at most a third of the fields are wanted, so few draws repeat).
fn draw_unique<'a>(
    h: &'a Hash,
    n: usize,
    rng: &mut Rng,
    mut emit: impl FnMut((Item<'a>, Item<'a>)),
) {
    if h.is_packed() {
        let mut needed = n as u64;
        let mut left = h.len() as u64;
        for pair in h.iter() {
            if rng.below(left) < needed {
                emit(pair);
                needed -= 1;
            }
            left -= 1;
        }
        return;
    }
    let sampler = Sampler::new(h);
    let mut seen: hashbrown::HashSet<Vec<u8>> = hashbrown::HashSet::with_capacity(n);
    while seen.len() < n {
        let Some((field, value)) = sampler.draw(h, rng) else {
            return;
        };
        if seen.insert(field.to_vec()) {
            emit((field, value));
        }
    }
}

// ---------------------------------------------------------------------------------------
// HSCAN.

/// A SCAN-family cursor as Redis's `strtoul` reads it: an optional sign (`-1` wraps to
/// 2^64-1), decimal digits up to 2^64-1, nothing else; the empty string is 0. Like any C
/// string it ends at a NUL byte.
fn scan_cursor(b: &[u8]) -> Result<u64, &'static str> {
    let b = b.split(|&c| c == 0).next().unwrap_or(b);
    let (negative, digits) = match b.first() {
        None => return Ok(0),
        Some(b'-') => (true, &b[1..]),
        Some(b'+') => (false, &b[1..]),
        Some(_) => (false, b),
    };
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return Err(ERR_INVALID_CURSOR);
    }
    let v = digits.iter().try_fold(0u64, |v, &c| {
        v.checked_mul(10)?.checked_add(u64::from(c - b'0'))
    });
    let v = v.ok_or(ERR_INVALID_CURSOR)?;
    Ok(if negative { v.wrapping_neg() } else { v })
}

/// HSCAN's options: `MATCH pattern` and `COUNT n` in any order, repeated or not.
struct ScanOptions<'a> {
    /// None when absent or exactly `*`.
    pattern: Option<&'a [u8]>,
    count: usize,
}

fn scan_options(args: &[Bytes]) -> Result<ScanOptions<'_>, &'static str> {
    let mut opts = ScanOptions {
        pattern: None,
        count: SCAN_COUNT_DEFAULT,
    };
    let mut rest = args;
    while let [name, value, tail @ ..] = rest {
        if keyword(name, "count") {
            let n = parse::i64_arg(value)?;
            opts.count = usize::try_from(n)
                .ok()
                .filter(|&n| n >= 1)
                .ok_or(err::SYNTAX)?;
        } else if keyword(name, "match") {
            opts.pattern = (value.as_ref() != b"*").then_some(&value[..]);
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

/// HSCAN key cursor [MATCH pattern] [COUNT count].
fn hscan(ks: &mut Keyspace, args: &[Bytes], out: &mut Out) {
    let cursor = match scan_cursor(&args[2]) {
        Ok(c) => c,
        Err(e) => return out.error(e),
    };
    let h = match read(ks, &args[1]) {
        Err(WrongType) => return out.error(err::WRONGTYPE),
        Ok(None) => {
            out.array(2);
            out.bulk(b"0");
            return out.array(0);
        }
        Ok(Some(h)) => h,
    };
    let opts = match scan_options(&args[3..]) {
        Ok(o) => o,
        Err(e) => return out.error(e),
    };
    let mut found = Vec::new();
    let next = h.scan(cursor, opts.count, |field, value| {
        let keep = opts
            .pattern
            .is_none_or(|p| field.with_bytes(|f| glob_match(p, f, false)));
        if keep {
            found.push((field, value));
        }
    });
    out.array(2);
    out.bulk(next.to_string().as_bytes());
    out.array(2 * found.len());
    for (field, value) in found {
        bulk_item(out, field);
        bulk_item(out, value);
    }
}
