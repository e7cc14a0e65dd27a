//! The string family: GET, SET and its variants, MGET/MSET, the INCR family, APPEND,
//! STRLEN, GETRANGE/SETRANGE and LCS (the bit commands live in `bits`).
//!
//! Every handler follows Redis 7.0's `t_string.c` step by step, because clients observe more
//! than results: which error wins when several apply (SET parses all options, then the
//! expiry, then runs GET's type check, then NX/XX), which lookups count as hits and misses,
//! which keyspace events fire and how much `dirty` grows. Each handler states the order it
//! follows where it is not obvious.
//!
//! Encodings follow Redis too, since `OBJECT ENCODING` and RDB files expose them: values
//! stored by SET-like commands go through `RStr::from_bytes` (int, embstr or raw); APPEND,
//! SETRANGE and the bit commands modify in place and so leave the value raw; the INCR family
//! stores ints; INCRBYFLOAT stores the formatted text as embstr or raw, never int.
//!
//! Expiry deadlines are computed from `Keyspace::now_ms`, the command's one clock reading. A
//! SET with an absolute deadline already in the past stores the key with that deadline, as
//! Redis 7.0 does; lazy expiry removes it on the next access. GETEX deletes at once instead.
//!
//! INCRBYFLOAT's `long double` arithmetic is reproduced bit for bit in `long_double`.

use super::long_double;
#[cfg(test)]
pub(crate) mod tests;

use super::long_double::{LongDouble, Parsed};
use super::{err, flag, parse, prop, Cmd, Keys};
use crate::protocol::Out;
use crate::storage::value::{RStr, EMBSTR_LEN_MAX};
use crate::storage::{Keyspace, Value};
use bytes::Bytes;

/// Redis's default `proto-max-bulk-len`: no command may build a longer string.
pub(crate) const PROTO_MAX_BULK_LEN: u64 = 512 * 1024 * 1024;

const ERR_STRING_TOO_LONG: &str = "ERR string exceeds maximum allowed size (proto-max-bulk-len)";
const ERR_OFFSET_RANGE: &str = "ERR offset is out of range";
const ERR_DECREMENT_OVERFLOW: &str = "ERR decrement would overflow";
const ERR_NAN_OR_INFINITY: &str = "ERR increment would produce NaN or Infinity";
const ERR_LCS_TYPES: &str = "ERR The specified keys must contain string values";
const ERR_LCS_LEN_AND_IDX: &str =
    "ERR If you want both the length and indexes, please just use IDX.";
const ERR_LCS_TOO_LONG: &str = "ERR String too long for LCS";
const ERR_LCS_TABLE_LIMIT: &str =
    "ERR Insufficient memory, transient memory for LCS exceeds proto-max-bulk-len";
const ERR_LCS_ALLOC: &str = "ERR Insufficient memory, failed allocating transient memory for LCS";

const RO: u32 = flag::READONLY;
const RO_FAST: u32 = flag::READONLY | flag::FAST;
const RW: u32 = flag::WRITE | flag::DENYOOM;
const RW_FAST: u32 = flag::WRITE | flag::DENYOOM | flag::FAST;
const W_FAST: u32 = flag::WRITE | flag::FAST;
const KEY: Keys = Keys::Range(1, 1, 1);
const READ_FAST: &[&str] = &["read", "string", "fast"];
const READ_SLOW: &[&str] = &["read", "string", "slow"];
const WRITE_FAST: &[&str] = &["write", "string", "fast"];
const WRITE_SLOW: &[&str] = &["write", "string", "slow"];

pub static COMMANDS: [Cmd; 22] = [
    Cmd::data("get", 2, RO_FAST, KEY, get).with_acl(READ_FAST),
    Cmd::data("set", -3, RW, KEY, set).with_acl(WRITE_SLOW),
    Cmd::data("getex", -2, W_FAST, KEY, getex).with_acl(WRITE_FAST),
    Cmd::data("getdel", 2, W_FAST, KEY, getdel).with_acl(WRITE_FAST),
    Cmd::data("getset", 3, RW_FAST, KEY, getset).with_acl(WRITE_FAST),
    Cmd::data("setnx", 3, RW_FAST, KEY, setnx).with_acl(WRITE_FAST),
    Cmd::data("setex", 4, RW, KEY, setex).with_acl(WRITE_SLOW),
    Cmd::data("psetex", 4, RW, KEY, psetex).with_acl(WRITE_SLOW),
    Cmd::data("mget", -2, RO_FAST, Keys::Range(1, -1, 1), mget).with_acl(READ_FAST),
    Cmd::data("mset", -3, RW, Keys::Range(1, -1, 2), mset).with_acl(WRITE_SLOW),
    Cmd::data("msetnx", -3, RW, Keys::Range(1, -1, 2), msetnx).with_acl(WRITE_SLOW),
    Cmd::data("incr", 2, RW_FAST, KEY, incr).with_acl(WRITE_FAST),
    Cmd::data("decr", 2, RW_FAST, KEY, decr).with_acl(WRITE_FAST),
    Cmd::data("incrby", 3, RW_FAST, KEY, incrby).with_acl(WRITE_FAST),
    Cmd::data("decrby", 3, RW_FAST, KEY, decrby).with_acl(WRITE_FAST),
    Cmd::data("incrbyfloat", 3, RW_FAST, KEY, incrbyfloat).with_acl(WRITE_FAST),
    Cmd::data("append", 3, RW_FAST, KEY, append).with_acl(WRITE_FAST),
    Cmd::data("strlen", 2, RO_FAST, KEY, strlen).with_acl(READ_FAST),
    Cmd::data("getrange", 4, RO, KEY, getrange).with_acl(READ_SLOW),
    Cmd::data("substr", 4, RO, KEY, getrange).with_acl(READ_SLOW),
    Cmd::data("setrange", 4, RW, KEY, setrange).with_acl(WRITE_SLOW),
    Cmd::data("lcs", -3, RO, Keys::Range(1, 2, 1), lcs).with_acl(READ_SLOW),
];

/// A key holding a value of another type (the WRONGTYPE error).
pub(crate) struct WrongType;

/// The string at `key`, looked up for reading (lazy expiry, hit/miss statistics).
pub(crate) fn read_str<'k>(
    ks: &'k mut Keyspace<'_>,
    key: &[u8],
) -> Result<Option<&'k RStr>, WrongType> {
    match ks.lookup_read(key).map(|e| &e.value) {
        None => Ok(None),
        Some(Value::Str(s)) => Ok(Some(s)),
        #[allow(unreachable_patterns)]
        Some(_) => Err(WrongType),
    }
}

/// The string at `key`, looked up for writing (lazy expiry, no statistics). Changing it in
/// place keeps the key's expiry, like Redis's `dbOverwrite` and in-place edits.
pub(crate) fn write_str<'k>(
    ks: &'k mut Keyspace<'_>,
    key: &[u8],
) -> Result<Option<&'k mut RStr>, WrongType> {
    match ks.lookup_write(key).map(|e| &mut e.value) {
        None => Ok(None),
        Some(Value::Str(s)) => Ok(Some(s)),
        #[allow(unreachable_patterns)]
        Some(_) => Err(WrongType),
    }
}

fn reply_str(out: &mut Out, s: &RStr) {
    let mut scratch = [0u8; 24];
    out.bulk(s.as_bytes(&mut scratch));
}

/// A string built by a command rather than given by the client (Redis's `createStringObject`):
/// embstr when short, else raw; never int.
fn text_value(bytes: Vec<u8>) -> RStr {
    if bytes.len() <= EMBSTR_LEN_MAX {
        RStr::emb(&bytes)
    } else {
        RStr::raw(bytes)
    }
}

/// Redis's `checkStringLength`: whether a string of `len + extra` bytes may be built.
fn length_ok(len: u64, extra: u64) -> bool {
    len.checked_add(extra)
        .is_some_and(|total| total <= PROTO_MAX_BULK_LEN)
}

/// Redis's `getGenericCommand`: replies with the string or null. False (after replying
/// WRONGTYPE) when the key holds another type.
fn get_generic(ks: &mut Keyspace, key: &[u8], out: &mut Out) -> bool {
    match read_str(ks, key) {
        Ok(Some(s)) => reply_str(out, s),
        Ok(None) => out.null(),
        Err(WrongType) => {
            out.error(err::WRONGTYPE);
            return false;
        }
    }
    true
}

fn get(ks: &mut Keyspace, args: &[Bytes], out: &mut Out) {
    get_generic(ks, &args[1], out);
}

// ---------------------------------------------------------------------------------------
// SET and its variants.

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum ExpireKind {
    /// Relative seconds.
    Ex,
    /// Relative milliseconds.
    Px,
    /// Absolute Unix seconds.
    ExAt,
    /// Absolute Unix milliseconds.
    PxAt,
}

/// SET's and GETEX's options (Redis's `parseExtendedStringArgumentsOrReply`).
#[derive(Default, Debug)]
struct ExtOpts<'a> {
    nx: bool,
    xx: bool,
    get: bool,
    keepttl: bool,
    persist: bool,
    expire: Option<(ExpireKind, &'a [u8])>,
}

/// Parses SET's options (`for_set`, from argument 3) or GETEX's (from argument 2). An option
/// that contradicts an earlier one is a syntax error; repeating one is not (the last expiry
/// wins), exactly as Redis accepts them.
fn parse_ext_opts(args: &[Bytes], for_set: bool) -> Result<ExtOpts<'_>, &'static str> {
    let mut o = ExtOpts::default();
    let mut j = if for_set { 3 } else { 2 };
    while let Some(opt) = args.get(j) {
        let next = args.get(j + 1);
        let expire_kind = [
            ("ex", ExpireKind::Ex),
            ("px", ExpireKind::Px),
            ("exat", ExpireKind::ExAt),
            ("pxat", ExpireKind::PxAt),
        ]
        .into_iter()
        .find(|(name, _)| parse::kw(opt, name))
        .map(|(_, kind)| kind);
        if parse::kw(opt, "nx") && !o.xx && for_set {
            o.nx = true;
        } else if parse::kw(opt, "xx") && !o.nx && for_set {
            o.xx = true;
        } else if parse::kw(opt, "get") && for_set {
            o.get = true;
        } else if parse::kw(opt, "keepttl") && !o.persist && o.expire.is_none() && for_set {
            o.keepttl = true;
        } else if parse::kw(opt, "persist") && !for_set && o.expire.is_none() && !o.keepttl {
            o.persist = true;
        } else if let (Some(kind), Some(next)) = (expire_kind, next) {
            let compatible = o.expire.is_none_or(|(k, _)| k == kind);
            if o.keepttl || o.persist || !compatible {
                return Err(err::SYNTAX);
            }
            o.expire = Some((kind, &next[..]));
            j += 1;
        } else {
            return Err(err::SYNTAX);
        }
        j += 1;
    }
    Ok(o)
}

/// Redis's `getExpireMillisecondsOrReply`: the absolute deadline in Unix ms. The value must
/// be a positive integer whose deadline fits in an i64.
fn expire_deadline_ms(now_ms: u64, kind: ExpireKind, arg: &[u8], cmd: &str) -> Result<u64, String> {
    let v = parse::i64_arg(arg).map_err(str::to_string)?;
    let seconds = matches!(kind, ExpireKind::Ex | ExpireKind::ExAt);
    let ms = if seconds {
        v.checked_mul(1000)
    } else {
        Some(v)
    };
    let ms = match ms {
        Some(ms) if v > 0 => ms,
        _ => return Err(err::invalid_expire(cmd)),
    };
    let ms = match kind {
        ExpireKind::Ex | ExpireKind::Px => ms.checked_add(now_ms as i64),
        ExpireKind::ExAt | ExpireKind::PxAt => Some(ms),
    };
    match ms {
        Some(ms) if ms > 0 => Ok(ms as u64),
        _ => Err(err::invalid_expire(cmd)),
    }
}

/// What SET-like commands do once their arguments are parsed.
#[derive(Default)]
struct SetHow {
    nx: bool,
    xx: bool,
    get: bool,
    keepttl: bool,
    /// Absolute deadline in Unix ms.
    expire_ms: Option<u64>,
}

/// Redis's `setGenericCommand` after the expiry is computed. With `get`, replies with the old
/// value first. Returns whether the value was stored, or None after a WRONGTYPE reply.
fn set_generic(
    ks: &mut Keyspace,
    key: &[u8],
    value: &[u8],
    how: &SetHow,
    out: &mut Out,
) -> Option<bool> {
    if how.get && !get_generic(ks, key, out) {
        return None;
    }
    // Only NX and XX need to know whether the key exists; a plain SET skips the lookup.
    if how.nx || how.xx {
        let found = ks.lookup_write(key).is_some();
        if (how.nx && found) || (how.xx && !found) {
            return Some(false);
        }
    }
    let raw = value;
    let value = Value::Str(RStr::from_bytes(value));
    if how.keepttl {
        ks.set_keep_ttl(key, value);
    } else {
        ks.set(key, value);
    }
    ks.signal_modified(key);
    ks.dirty(1);
    ks.notify('$', "set", key);
    if let Some(ms) = how.expire_ms {
        ks.set_expire(key, ms);
        ks.notify('g', "expire", key);
        // Replicas and the AOF get the absolute deadline.
        ks.rewrite_as(|| {
            vec![
                prop::lit("SET"),
                Bytes::copy_from_slice(key),
                Bytes::copy_from_slice(raw),
                prop::lit("PXAT"),
                prop::num(ms as i64),
            ]
        });
    }
    Some(true)
}

/// SET key value [NX|XX] [GET] [EX s|PX ms|EXAT ts|PXAT ms-ts|KEEPTTL]
fn set(ks: &mut Keyspace, args: &[Bytes], out: &mut Out) {
    let opts = match parse_ext_opts(args, true) {
        Ok(o) => o,
        Err(e) => return out.error(e),
    };
    let mut how = SetHow {
        nx: opts.nx,
        xx: opts.xx,
        get: opts.get,
        keepttl: opts.keepttl,
        expire_ms: None,
    };
    if let Some((kind, arg)) = opts.expire {
        match expire_deadline_ms(ks.now_ms, kind, arg, "set") {
            Ok(ms) => how.expire_ms = Some(ms),
            Err(e) => return out.error(&e),
        }
    }
    if how.get && how.expire_ms.is_none() {
        // Propagated without GET (with an expiry, set_generic rewrites the whole command).
        ks.rewrite_as(|| {
            let mut v = args[..3].to_vec();
            v.extend(args[3..].iter().filter(|a| !parse::kw(a, "get")).cloned());
            v
        });
    }
    match set_generic(ks, &args[1], &args[2], &how, out) {
        Some(true) if !how.get => out.ok(),
        Some(false) if !how.get => out.null(),
        _ => {}
    }
}

fn setnx(ks: &mut Keyspace, args: &[Bytes], out: &mut Out) {
    let how = SetHow {
        nx: true,
        ..SetHow::default()
    };
    if let Some(stored) = set_generic(ks, &args[1], &args[2], &how, out) {
        out.int(stored as i64);
    }
}

fn setex_generic(ks: &mut Keyspace, args: &[Bytes], out: &mut Out, kind: ExpireKind, cmd: &str) {
    let expire_ms = match expire_deadline_ms(ks.now_ms, kind, &args[2], cmd) {
        Ok(ms) => ms,
        Err(e) => return out.error(&e),
    };
    let how = SetHow {
        expire_ms: Some(expire_ms),
        ..SetHow::default()
    };
    set_generic(ks, &args[1], &args[3], &how, out);
    out.ok();
}

/// SETEX key seconds value
fn setex(ks: &mut Keyspace, args: &[Bytes], out: &mut Out) {
    setex_generic(ks, args, out, ExpireKind::Ex, "setex");
}

/// PSETEX key milliseconds value
fn psetex(ks: &mut Keyspace, args: &[Bytes], out: &mut Out) {
    setex_generic(ks, args, out, ExpireKind::Px, "psetex");
}

/// GETEX key [EX s|PX ms|EXAT ts|PXAT ms-ts|PERSIST]. Order: options, lookup (a missing key
/// is null even with a bad expiry), type, expiry value, reply, then the TTL change. An
/// absolute deadline already past deletes the key.
fn getex(ks: &mut Keyspace, args: &[Bytes], out: &mut Out) {
    let opts = match parse_ext_opts(args, false) {
        Ok(o) => o,
        Err(e) => return out.error(e),
    };
    let key = &args[1];
    let now_ms = ks.now_ms;
    let expire_ms = match read_str(ks, key) {
        Ok(None) => return out.null(),
        Err(WrongType) => return out.error(err::WRONGTYPE),
        Ok(Some(s)) => {
            let expire_ms = match opts.expire {
                Some((kind, arg)) => match expire_deadline_ms(now_ms, kind, arg, "getex") {
                    Ok(ms) => Some((kind, ms)),
                    Err(e) => return out.error(&e),
                },
                None => None,
            };
            reply_str(out, s);
            expire_ms
        }
    };
    match expire_ms {
        Some((ExpireKind::ExAt | ExpireKind::PxAt, ms)) if ms <= now_ms => {
            ks.remove(key);
            ks.signal_modified(key);
            ks.notify('g', "del", key);
            ks.dirty(1);
            ks.rewrite_as(|| prop::deletion(key, prop::lazy_expire()));
        }
        Some((_, ms)) => {
            ks.set_expire(key, ms);
            ks.signal_modified(key);
            ks.notify('g', "expire", key);
            ks.dirty(1);
            ks.rewrite_as(|| vec![prop::lit("PEXPIREAT"), key.clone(), prop::num(ms as i64)]);
        }
        None if opts.persist => {
            let has_ttl = ks.peek(key).is_some_and(|e| e.expire_ms != 0);
            if has_ttl {
                ks.set_expire(key, 0);
                ks.signal_modified(key);
                ks.notify('g', "persist", key);
                ks.dirty(1);
                ks.rewrite_as(|| vec![prop::lit("PERSIST"), key.clone()]);
            }
        }
        None => {}
    }
}

fn getdel(ks: &mut Keyspace, args: &[Bytes], out: &mut Out) {
    let key = &args[1];
    if !get_generic(ks, key, out) {
        return;
    }
    if ks.remove(key).is_some() {
        ks.signal_modified(key);
        ks.notify('g', "del", key);
        ks.dirty(1);
        ks.rewrite_as(|| prop::deletion(key, prop::lazy_user_del()));
    }
}

/// GETSET key value: GET then a plain SET (which drops the TTL).
fn getset(ks: &mut Keyspace, args: &[Bytes], out: &mut Out) {
    let key = &args[1];
    if !get_generic(ks, key, out) {
        return;
    }
    ks.set(key, Value::from_bytes(&args[2]));
    ks.signal_modified(key);
    ks.notify('$', "set", key);
    ks.dirty(1);
    ks.rewrite_as(|| vec![prop::lit("SET"), key.clone(), args[2].clone()]);
}

// ---------------------------------------------------------------------------------------
// Multi-key commands: the dispatcher locks every shard their keys live on, so they are
// atomic as they stand.

/// MGET key...: a key of another type reads as null, not as an error.
fn mget(ks: &mut Keyspace, args: &[Bytes], out: &mut Out) {
    out.array(args.len() - 1);
    for key in &args[1..] {
        match read_str(ks, key) {
            Ok(Some(s)) => reply_str(out, s),
            Ok(None) | Err(WrongType) => out.null(),
        }
    }
}

fn mset_generic(ks: &mut Keyspace, args: &[Bytes], out: &mut Out, nx: bool) {
    if args.len().is_multiple_of(2) {
        let name = if nx { "msetnx" } else { "mset" };
        return out.error(&err::wrong_args(name));
    }
    if nx
        && args[1..]
            .chunks(2)
            .any(|kv| ks.lookup_write(&kv[0]).is_some())
    {
        return out.int(0);
    }
    for kv in args[1..].chunks_exact(2) {
        ks.set(&kv[0], Value::from_bytes(&kv[1]));
        ks.signal_modified(&kv[0]);
        ks.notify('$', "set", &kv[0]);
    }
    ks.dirty((args.len() as u64 - 1) / 2);
    if nx {
        out.int(1);
    } else {
        out.ok();
    }
}

fn mset(ks: &mut Keyspace, args: &[Bytes], out: &mut Out) {
    mset_generic(ks, args, out, false);
}

fn msetnx(ks: &mut Keyspace, args: &[Bytes], out: &mut Out) {
    mset_generic(ks, args, out, true);
}

// ---------------------------------------------------------------------------------------
// Counters.

/// A string's value as Redis's `getLongLongFromObject` reads it.
fn str_to_i64(s: &RStr) -> Option<i64> {
    match s {
        RStr::Int(n) => Some(*n),
        RStr::Emb(b) => crate::storage::value::parse_canonical_i64(b),
        RStr::Raw(b) => crate::storage::value::parse_canonical_i64(b),
    }
}

/// Redis's `incrDecrCommand`: a missing key counts as 0; the result is int-encoded and the
/// key keeps its TTL.
fn incr_by(ks: &mut Keyspace, key: &[u8], delta: i64, out: &mut Out) {
    let current = match write_str(ks, key) {
        Err(WrongType) => return out.error(err::WRONGTYPE),
        Ok(None) => None,
        Ok(Some(s)) => match str_to_i64(s) {
            Some(n) => Some((s, n)),
            None => return out.error(err::NOT_INT),
        },
    };
    let old = current.as_ref().map_or(0, |(_, n)| *n);
    let Some(new) = old.checked_add(delta) else {
        return out.error(err::OVERFLOW);
    };
    match current {
        Some((s, _)) => *s = RStr::Int(new),
        None => {
            ks.set(key, Value::Str(RStr::Int(new)));
        }
    }
    ks.signal_modified(key);
    ks.notify('$', "incrby", key);
    ks.dirty(1);
    out.int(new);
}

fn incr(ks: &mut Keyspace, args: &[Bytes], out: &mut Out) {
    incr_by(ks, &args[1], 1, out);
}

fn decr(ks: &mut Keyspace, args: &[Bytes], out: &mut Out) {
    incr_by(ks, &args[1], -1, out);
}

fn incrby(ks: &mut Keyspace, args: &[Bytes], out: &mut Out) {
    match parse::i64_arg(&args[2]) {
        Ok(delta) => incr_by(ks, &args[1], delta, out),
        Err(e) => out.error(e),
    }
}

fn decrby(ks: &mut Keyspace, args: &[Bytes], out: &mut Out) {
    match parse::i64_arg(&args[2]) {
        Ok(i64::MIN) => out.error(ERR_DECREMENT_OVERFLOW),
        Ok(delta) => incr_by(ks, &args[1], -delta, out),
        Err(e) => out.error(e),
    }
}

/// A string's value as Redis's `getLongDoubleFromObject` reads it.
fn str_to_long_double(s: &RStr) -> Option<Parsed> {
    match s {
        RStr::Int(n) => Some(Parsed::Finite(LongDouble::from_i64(*n))),
        RStr::Emb(b) => long_double::parse(b),
        RStr::Raw(b) => long_double::parse(b),
    }
}

/// INCRBYFLOAT key increment: the stored value is parsed first, then the increment; the sum
/// is stored as text (see `long_double`) and the key keeps its TTL.
fn incrbyfloat(ks: &mut Keyspace, args: &[Bytes], out: &mut Out) {
    let key = &args[1];
    let current = match write_str(ks, key) {
        Err(WrongType) => return out.error(err::WRONGTYPE),
        Ok(None) => None,
        Ok(Some(s)) => match str_to_long_double(s) {
            Some(v) => Some((s, v)),
            None => return out.error(err::NOT_FLOAT),
        },
    };
    let Some(incr) = long_double::parse(&args[2]) else {
        return out.error(err::NOT_FLOAT);
    };
    let old = current
        .as_ref()
        .map_or(Parsed::Finite(LongDouble::ZERO), |(_, v)| *v);
    let sum = match (old, incr) {
        (Parsed::Finite(a), Parsed::Finite(b)) => a.add(b).ok(),
        _ => None,
    };
    let Some(sum) = sum else {
        return out.error(ERR_NAN_OR_INFINITY);
    };
    let text = long_double::format_human(sum).into_bytes();
    out.bulk(&text);
    let propagated = Bytes::copy_from_slice(&text);
    match current {
        Some((s, _)) => *s = text_value(text),
        None => {
            ks.set(key, Value::Str(text_value(text)));
        }
    }
    // Propagated as SET KEEPTTL so float formatting cannot make replicas diverge.
    ks.rewrite_as(|| {
        vec![
            prop::lit("SET"),
            key.clone(),
            propagated,
            prop::lit("KEEPTTL"),
        ]
    });
    ks.signal_modified(key);
    ks.notify('$', "incrbyfloat", key);
    ks.dirty(1);
}

// ---------------------------------------------------------------------------------------
// Partial reads and writes.

fn append(ks: &mut Keyspace, args: &[Bytes], out: &mut Out) {
    let (key, tail) = (&args[1], &args[2]);
    let len = match write_str(ks, key) {
        Err(WrongType) => return out.error(err::WRONGTYPE),
        Ok(None) => {
            ks.set(key, Value::from_bytes(tail));
            tail.len()
        }
        Ok(Some(s)) => {
            if !length_ok(s.len() as u64, tail.len() as u64) {
                return out.error(ERR_STRING_TOO_LONG);
            }
            let buf = s.make_raw();
            buf.extend_from_slice(tail);
            buf.len()
        }
    };
    ks.signal_modified(key);
    ks.notify('$', "append", key);
    ks.dirty(1);
    out.int(len as i64);
}

fn strlen(ks: &mut Keyspace, args: &[Bytes], out: &mut Out) {
    match read_str(ks, &args[1]) {
        Ok(Some(s)) => out.int(s.len() as i64),
        Ok(None) => out.int(0),
        Err(WrongType) => out.error(err::WRONGTYPE),
    }
}

/// The inclusive byte range GETRANGE returns for `start..=end` over `len` bytes (negative
/// indexes count from the end), or None when it is empty.
fn clamp_range(start: i64, end: i64, len: usize) -> Option<(usize, usize)> {
    let len = len as i64;
    if start < 0 && end < 0 && start > end {
        return None;
    }
    let start = if start < 0 { start + len } else { start }.max(0);
    let end = if end < 0 { end + len } else { end }.max(0).min(len - 1);
    if start > end || len == 0 {
        return None;
    }
    Some((start as usize, end as usize))
}

/// GETRANGE (and SUBSTR) key start end: both indexes are parsed before the lookup.
fn getrange(ks: &mut Keyspace, args: &[Bytes], out: &mut Out) {
    let (start, end) = match (parse::i64_arg(&args[2]), parse::i64_arg(&args[3])) {
        (Ok(s), Ok(e)) => (s, e),
        (Err(e), _) | (_, Err(e)) => return out.error(e),
    };
    let s = match read_str(ks, &args[1]) {
        Ok(Some(s)) => s,
        Ok(None) => return out.bulk(b""),
        Err(WrongType) => return out.error(err::WRONGTYPE),
    };
    let mut scratch = [0u8; 24];
    let bytes = s.as_bytes(&mut scratch);
    match clamp_range(start, end, bytes.len()) {
        Some((from, to)) => out.bulk(&bytes[from..=to]),
        None => out.bulk(b""),
    }
}

/// SETRANGE key offset value: zero-pads as needed. An empty value changes nothing (not even
/// creating the key) and skips the length check.
fn setrange(ks: &mut Keyspace, args: &[Bytes], out: &mut Out) {
    let (key, value) = (&args[1], &args[3]);
    let offset = match parse::i64_arg(&args[2]) {
        Ok(n) if n < 0 => return out.error(ERR_OFFSET_RANGE),
        Ok(n) => n as u64,
        Err(e) => return out.error(e),
    };
    let fits = length_ok(offset, value.len() as u64);
    let len = match write_str(ks, key) {
        Err(WrongType) => return out.error(err::WRONGTYPE),
        Ok(None) if value.is_empty() => return out.int(0),
        Ok(Some(s)) if value.is_empty() => return out.int(s.len() as i64),
        _ if !fits => return out.error(ERR_STRING_TOO_LONG),
        Ok(None) => {
            // Exactly sized, as Redis creates a new key's string (no growth slack).
            let mut buf = Vec::with_capacity(offset as usize + value.len());
            buf.resize(offset as usize, 0);
            buf.extend_from_slice(value);
            let len = buf.len();
            ks.set(key, Value::Str(RStr::raw(buf)));
            len
        }
        Ok(Some(s)) => {
            let buf = s.make_raw();
            let end = offset as usize + value.len();
            if buf.len() < end {
                buf.resize(end, 0);
            }
            buf[offset as usize..end].copy_from_slice(value);
            buf.len()
        }
    };
    ks.signal_modified(key);
    ks.notify('$', "setrange", key);
    ks.dirty(1);
    out.int(len as i64);
}

// ---------------------------------------------------------------------------------------
// LCS

/// LCS's options.
#[derive(Default, Debug)]
struct LcsOpts {
    len: bool,
    idx: bool,
    with_match_len: bool,
    min_match_len: u64,
}

fn parse_lcs_opts(args: &[Bytes]) -> Result<LcsOpts, &'static str> {
    let mut o = LcsOpts::default();
    let mut j = 3;
    while let Some(opt) = args.get(j) {
        if parse::kw(opt, "idx") {
            o.idx = true;
        } else if parse::kw(opt, "len") {
            o.len = true;
        } else if parse::kw(opt, "withmatchlen") {
            o.with_match_len = true;
        } else if let (true, Some(next)) = (parse::kw(opt, "minmatchlen"), args.get(j + 1)) {
            o.min_match_len = parse::i64_arg(next)?.max(0) as u64;
            j += 1;
        } else {
            return Err(err::SYNTAX);
        }
        j += 1;
    }
    if o.len && o.idx {
        return Err(ERR_LCS_LEN_AND_IDX);
    }
    Ok(o)
}

/// One matching run: inclusive ranges in each string and its length.
#[derive(Debug, PartialEq, Eq)]
struct LcsMatch {
    a: (u32, u32),
    b: (u32, u32),
    len: u32,
}

/// The classic dynamic-programming table: `t[i*(blen+1)+j]` is the LCS length of `a[..i]`
/// and `b[..j]`. Its size is bounded the way Redis bounds it.
fn lcs_table(a: &[u8], b: &[u8]) -> Result<Vec<u32>, &'static str> {
    if a.len() as u64 >= u32::MAX as u64 - 1 || b.len() as u64 >= u32::MAX as u64 - 1 {
        return Err(ERR_LCS_TOO_LONG);
    }
    let cells = (a.len() as u64 + 1) * (b.len() as u64 + 1);
    if cells * 4 > PROTO_MAX_BULK_LEN {
        return Err(ERR_LCS_TABLE_LIMIT);
    }
    let mut t: Vec<u32> = Vec::new();
    t.try_reserve_exact(cells as usize)
        .map_err(|_| ERR_LCS_ALLOC)?;
    t.resize(cells as usize, 0);
    let w = b.len() + 1;
    for (i, &ca) in a.iter().enumerate() {
        for (j, &cb) in b.iter().enumerate() {
            let here = (i + 1) * w + j + 1;
            t[here] = if ca == cb {
                t[i * w + j] + 1
            } else {
                t[i * w + j + 1].max(t[(i + 1) * w + j])
            };
        }
    }
    Ok(t)
}

/// Walks the table back from the end as Redis does, collecting the common subsequence and
/// the matching runs (last run first) of at least `min_len` bytes.
fn lcs_walk(a: &[u8], b: &[u8], t: &[u32], min_len: u64) -> (Vec<u8>, Vec<LcsMatch>) {
    let w = b.len() + 1;
    let total = t[a.len() * w + b.len()] as usize;
    let mut common = vec![0u8; total];
    let mut matches = Vec::new();
    let (mut i, mut j, mut idx) = (a.len(), b.len(), total);
    // The current run, as Redis tracks it: `a_start == a.len()` means no run is open.
    let unset = a.len();
    let (mut a_start, mut a_end, mut b_start, mut b_end) = (unset, 0, 0, 0);
    while i > 0 && j > 0 {
        let mut emit = false;
        if a[i - 1] == b[j - 1] {
            common[idx - 1] = a[i - 1];
            if a_start == unset {
                (a_start, a_end, b_start, b_end) = (i - 1, i - 1, j - 1, j - 1);
            } else if a_start == i && b_start == j {
                a_start -= 1;
                b_start -= 1;
            } else {
                emit = true;
            }
            if a_start == 0 || b_start == 0 {
                emit = true;
            }
            idx -= 1;
            i -= 1;
            j -= 1;
        } else {
            if t[(i - 1) * w + j] > t[i * w + j - 1] {
                i -= 1;
            } else {
                j -= 1;
            }
            emit = a_start != unset;
        }
        if emit {
            let len = a_end - a_start + 1;
            if min_len == 0 || len as u64 >= min_len {
                matches.push(LcsMatch {
                    a: (a_start as u32, a_end as u32),
                    b: (b_start as u32, b_end as u32),
                    len: len as u32,
                });
            }
            a_start = unset;
        }
    }
    (common, matches)
}

/// LCS key1 key2 [LEN] [IDX] [MINMATCHLEN n] [WITHMATCHLEN]. Order: both lookups, the type
/// check, options, then the computation.
fn lcs(ks: &mut Keyspace, args: &[Bytes], out: &mut Out) {
    let a = read_str(ks, &args[1]).map(|s| s.map_or_else(Vec::new, RStr::to_vec));
    let b = read_str(ks, &args[2]).map(|s| s.map_or_else(Vec::new, RStr::to_vec));
    let (Ok(a), Ok(b)) = (a, b) else {
        return out.error(ERR_LCS_TYPES);
    };
    let opts = match parse_lcs_opts(args) {
        Ok(o) => o,
        Err(e) => return out.error(e),
    };
    let table = match lcs_table(&a, &b) {
        Ok(t) => t,
        Err(e) => return out.error(e),
    };
    let total = table[a.len() * (b.len() + 1) + b.len()];
    if opts.len {
        return out.int(total as i64);
    }
    let (common, matches) = lcs_walk(&a, &b, &table, opts.min_match_len);
    if !opts.idx {
        return out.bulk(&common);
    }
    out.map(2);
    out.bulk(b"matches");
    out.array(matches.len());
    for m in &matches {
        out.array(2 + opts.with_match_len as usize);
        for (from, to) in [m.a, m.b] {
            out.array(2);
            out.int(from as i64);
            out.int(to as i64);
        }
        if opts.with_match_len {
            out.int(m.len as i64);
        }
    }
    out.bulk(b"len");
    out.int(total as i64);
}
