//! Stream commands: XADD, XLEN, XRANGE, XREVRANGE, XDEL, XTRIM, XSETID, XREAD, XREADGROUP,
//! XGROUP, XACK, XPENDING, XCLAIM, XAUTOCLAIM and XINFO.
//!
//! Each handler follows Redis 7.0's `t_stream.c` order of checks (which decides the error a
//! client sees when several apply), its replies, keyspace events and `dirty` counts.
//!
//! Propagation follows Redis: XADD goes out with the generated ID in place of `*` / `ms-*`,
//! and an approximate trim (`~`) as the exact bound it reached; XTRIM `~` likewise.
//! XREADGROUP, XCLAIM and XAUTOCLAIM propagate their effects instead of themselves: one
//! idempotent `XCLAIM ... FORCE JUSTID LASTID` per pending entry they create or change,
//! `XGROUP SETID ... ENTRIESREAD` for a NOACK read, `XGROUP CREATECONSUMER` for a consumer
//! a NOACK read creates.
//!
//! Blocking XREAD / XREADGROUP register as `WaitFor::Stream` waiters with their IDs resolved
//! (`$` becomes the stream's last ID); `waiter_ready` tells the engine whether a written key
//! can serve one, and `serve_blocked` answers it as Redis's `serveClientsBlockedOnStreamKey`.

use super::{err, flag, parse, prop, Cmd, Keys};
use crate::protocol::Out;
use crate::storage::blocking::{BlockRequest, NullReply, WaitFor};
use crate::storage::stream::{
    AppendError, Group, NodeLimits, Stream, StreamId, Trim, ENTRIES_READ_INVALID,
};
use crate::storage::{Keyspace, Value};
use bytes::Bytes;

const KEY: Keys = Keys::Range(1, 1, 1);
const KEY2: Keys = Keys::Range(2, 2, 1);
const W: u32 = flag::WRITE;
const WF: u32 = flag::WRITE | flag::FAST;
const WDF: u32 = flag::WRITE | flag::DENYOOM | flag::FAST;
const R: u32 = flag::READONLY;
const ACL_WF: &[&str] = &["write", "stream", "fast"];
const ACL_WS: &[&str] = &["write", "stream", "slow"];
const ACL_RF: &[&str] = &["read", "stream", "fast"];
const ACL_RS: &[&str] = &["read", "stream", "slow"];

pub static COMMANDS: [Cmd; 15] = [
    Cmd::data("xadd", -5, WDF, KEY, xadd).with_acl(ACL_WF),
    Cmd::data("xlen", 2, R | flag::FAST, KEY, xlen).with_acl(ACL_RF),
    Cmd::data("xrange", -4, R, KEY, xrange).with_acl(ACL_RS),
    Cmd::data("xrevrange", -4, R, KEY, xrevrange).with_acl(ACL_RS),
    Cmd::data("xdel", -3, WF, KEY, xdel).with_acl(ACL_WF),
    Cmd::data("xtrim", -4, W, KEY, xtrim).with_acl(ACL_WS),
    Cmd::data("xsetid", -3, WDF, KEY, xsetid).with_acl(ACL_WF),
    Cmd::data(
        "xread",
        -4,
        R | flag::BLOCKING,
        Keys::Custom(xread_keys),
        xread,
    )
    .with_acl(&["read", "stream", "slow", "blocking"]),
    Cmd::data(
        "xreadgroup",
        -7,
        W | flag::BLOCKING,
        Keys::Custom(xread_keys),
        xread,
    )
    .with_acl(&["write", "stream", "slow", "blocking"]),
    Cmd::data("xack", -4, WF, KEY, xack).with_acl(ACL_WF),
    Cmd::data("xpending", -3, R, KEY, xpending).with_acl(ACL_RS),
    Cmd::data("xclaim", -6, WF, KEY, xclaim).with_acl(ACL_WF),
    Cmd::data("xautoclaim", -6, WF, KEY, xautoclaim).with_acl(ACL_WF),
    Cmd::container("xgroup", 0, &XGROUP).with_acl(&["slow"]),
    Cmd::container("xinfo", 0, &XINFO).with_acl(&["slow"]),
];

static XGROUP: [Cmd; 6] = [
    Cmd::data("create", -5, W | flag::DENYOOM, KEY2, xgroup).with_acl(ACL_WS),
    Cmd::data("setid", -5, W, KEY2, xgroup).with_acl(ACL_WS),
    Cmd::data("destroy", 4, W, KEY2, xgroup).with_acl(ACL_WS),
    Cmd::data("createconsumer", 5, W | flag::DENYOOM, KEY2, xgroup).with_acl(ACL_WS),
    Cmd::data("delconsumer", 5, W, KEY2, xgroup).with_acl(ACL_WS),
    Cmd::data(
        "help",
        2,
        flag::LOADING | flag::STALE,
        Keys::None,
        xgroup_help,
    )
    .with_acl(&["stream", "slow"]),
];

static XINFO: [Cmd; 4] = [
    Cmd::data("stream", -3, R, KEY2, xinfo_stream).with_acl(ACL_RS),
    Cmd::data("groups", 3, R, KEY2, xinfo_groups).with_acl(ACL_RS),
    Cmd::data("consumers", 4, R, KEY2, xinfo_consumers).with_acl(ACL_RS),
    Cmd::data(
        "help",
        2,
        flag::LOADING | flag::STALE,
        Keys::None,
        xinfo_help,
    )
    .with_acl(&["stream", "slow"]),
];

const ERR_INVALID_ID: &str = "ERR Invalid stream ID specified as stream command argument";
const ERR_START_INTERVAL: &str = "ERR invalid start ID for the interval";
const ERR_END_INTERVAL: &str = "ERR invalid end ID for the interval";
/// XREAD's default COUNT for a blocked client (`XREAD_BLOCKED_DEFAULT_COUNT`).
const BLOCKED_COUNT_DEFAULT: i64 = 1000;

struct WrongType;

// ----- Parsing -----

/// Redis's `string2ull`: a canonical i64 that is not negative, else `strtoull` rules
/// (leading spaces, a sign, digits to the end, no overflow).
fn string2ull(b: &[u8]) -> Option<u64> {
    if let Some(v) = crate::storage::value::parse_canonical_i64(b) {
        return (v >= 0).then_some(v as u64);
    }
    let mut i = 0;
    while i < b.len() && matches!(b[i], b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c) {
        i += 1;
    }
    let neg = match b.get(i) {
        Some(b'-') => {
            i += 1;
            true
        }
        Some(b'+') => {
            i += 1;
            false
        }
        _ => false,
    };
    let digits = b.get(i..)?;
    if digits.is_empty() || !digits.iter().all(|c| c.is_ascii_digit()) {
        return None;
    }
    let mut v: u64 = 0;
    for &c in digits {
        v = v.checked_mul(10)?.checked_add(u64::from(c - b'0'))?;
    }
    Some(if neg { v.wrapping_neg() } else { v })
}

/// `streamGenericParseIDOrReply`. Returns the ID and whether the sequence was given
/// (`ms-*` gives false, only when `allow_star`).
fn parse_id_full(
    b: &[u8],
    missing_seq: u64,
    strict: bool,
    allow_star: bool,
) -> Result<(StreamId, bool), &'static str> {
    // The C string ends at the first NUL.
    let b = b.split(|&c| c == 0).next().unwrap_or(b);
    if b.len() > 127 {
        return Err(ERR_INVALID_ID);
    }
    if strict && (b == b"-" || b == b"+") {
        return Err(ERR_INVALID_ID);
    }
    if b == b"-" {
        return Ok((StreamId::MIN, true));
    }
    if b == b"+" {
        return Ok((StreamId::MAX, true));
    }
    let (ms_part, seq_part) = match b.iter().position(|&c| c == b'-') {
        Some(p) => (&b[..p], Some(&b[p + 1..])),
        None => (b, None),
    };
    let ms = string2ull(ms_part).ok_or(ERR_INVALID_ID)?;
    match seq_part {
        Some(b"*") if allow_star => Ok((StreamId::new(ms, 0), false)),
        Some(s) => Ok((
            StreamId::new(ms, string2ull(s).ok_or(ERR_INVALID_ID)?),
            true,
        )),
        None => Ok((StreamId::new(ms, missing_seq), true)),
    }
}

fn parse_id(b: &[u8], missing_seq: u64) -> Result<StreamId, &'static str> {
    parse_id_full(b, missing_seq, false, false).map(|(id, _)| id)
}

fn parse_strict_id(b: &[u8], missing_seq: u64) -> Result<StreamId, &'static str> {
    parse_id_full(b, missing_seq, true, false).map(|(id, _)| id)
}

/// `streamParseIntervalIDOrReply` with the `(` exclusive prefix, then the increment or
/// decrement it implies.
fn parse_interval(b: &[u8], missing_seq: u64, start: bool) -> Result<StreamId, &'static str> {
    if b.len() > 1 && b[0] == b'(' {
        let id = parse_strict_id(&b[1..], missing_seq)?;
        if start {
            id.incr().ok_or(ERR_START_INTERVAL)
        } else {
            id.decr().ok_or(ERR_END_INTERVAL)
        }
    } else {
        parse_id(b, missing_seq)
    }
}

fn id_bytes(id: StreamId) -> Bytes {
    Bytes::from(id.to_string())
}

fn subcommand_error(args: &[Bytes]) -> String {
    format!(
        "ERR unknown subcommand or wrong number of arguments for '{}'. Try {} HELP.",
        String::from_utf8_lossy(&args[1][..args[1].len().min(128)]),
        String::from_utf8_lossy(&args[0]).to_ascii_uppercase()
    )
}

// ----- Lookups -----

fn read<'k>(ks: &'k mut Keyspace, key: &[u8]) -> Result<Option<&'k mut Stream>, WrongType> {
    match ks.lookup_read(key) {
        None => Ok(None),
        Some(e) => match &mut e.value {
            Value::Stream(s) => Ok(Some(s)),
            _ => Err(WrongType),
        },
    }
}

fn write<'k>(ks: &'k mut Keyspace, key: &[u8]) -> Result<Option<&'k mut Stream>, WrongType> {
    match ks.lookup_write(key) {
        None => Ok(None),
        Some(e) => match &mut e.value {
            Value::Stream(s) => Ok(Some(s)),
            _ => Err(WrongType),
        },
    }
}

// ----- Replies -----

fn reply_entry(out: &mut Out, id: StreamId, fields: &[Bytes]) {
    out.array(2);
    out.bulk(id.to_string().as_bytes());
    out.array(fields.len());
    for f in fields {
        out.bulk(f);
    }
}

/// One entry or, for a pending ID whose entry is gone, the ID and a null array.
fn reply_maybe_entry(out: &mut Out, id: StreamId, fields: Option<&Vec<Bytes>>) {
    match fields {
        Some(f) => reply_entry(out, id, f),
        None => {
            out.array(2);
            out.bulk(id.to_string().as_bytes());
            out.null_array();
        }
    }
}

fn reply_id(out: &mut Out, id: StreamId) {
    out.bulk(id.to_string().as_bytes());
}

// ----- XADD / XTRIM -----

#[derive(Default)]
struct TrimArgs {
    trim: Option<Trim>,
    approx: bool,
    limit: u64,
    /// Index of the trim bound argument.
    bound_idx: usize,
    no_mkstream: bool,
    id: Option<StreamId>,
    seq_given: bool,
}

/// `streamParseAddOrTrimArgsOrReply`: returns the parsed options and, for XADD, the index
/// of the ID argument.
fn parse_add_trim(args: &[Bytes], xadd: bool) -> Result<(TrimArgs, usize), String> {
    let mut a = TrimArgs {
        seq_given: true,
        ..TrimArgs::default()
    };
    let mut limit_given = false;
    let mut limit: i64 = 0;
    let mut i = 2;
    let argc = args.len();
    while i < argc {
        let more = argc - 1 - i;
        let opt = &args[i];
        if xadd && opt.as_ref() == b"*" {
            break;
        } else if (parse::kw(opt, "maxlen") || parse::kw(opt, "minid")) && more > 0 {
            let maxlen = parse::kw(opt, "maxlen");
            if a.trim.is_some() {
                return Err(
                    "ERR syntax error, MAXLEN and MINID options at the same time are \
                    not compatible"
                        .into(),
                );
            }
            a.approx = false;
            let next = &args[i + 1];
            if more >= 2 && next.as_ref() == b"~" {
                a.approx = true;
                i += 1;
            } else if more >= 2 && next.as_ref() == b"=" {
                i += 1;
            }
            if maxlen {
                let n = parse::i64_arg(&args[i + 1]).map_err(String::from)?;
                if n < 0 {
                    return Err("ERR The MAXLEN argument must be >= 0.".into());
                }
                a.trim = Some(Trim::MaxLen(n as u64));
            } else {
                a.trim = Some(Trim::MinId(
                    parse_strict_id(&args[i + 1], 0).map_err(String::from)?,
                ));
            }
            i += 1;
            a.bound_idx = i;
        } else if parse::kw(opt, "limit") && more > 0 {
            limit = parse::i64_arg(&args[i + 1]).map_err(String::from)?;
            if limit < 0 {
                return Err("ERR The LIMIT argument must be >= 0.".into());
            }
            limit_given = true;
            i += 1;
        } else if xadd && parse::kw(opt, "nomkstream") {
            a.no_mkstream = true;
        } else if xadd {
            let (id, seq_given) = parse_id_full(opt, 0, true, true).map_err(String::from)?;
            a.id = Some(id);
            a.seq_given = seq_given;
            break;
        } else {
            return Err(err::SYNTAX.into());
        }
        i += 1;
    }
    if limit != 0 && a.trim.is_none() {
        return Err(
            "ERR syntax error, LIMIT cannot be used without specifying a trimming strategy".into(),
        );
    }
    if !xadd && a.trim.is_none() {
        return Err("ERR syntax error, XTRIM must be called with a trimming strategy".into());
    }
    if limit_given {
        if !a.approx {
            return Err(
                "ERR syntax error, LIMIT cannot be used without the special ~ option".into(),
            );
        }
        a.limit = limit as u64;
    } else if a.approx {
        let max_entries = NodeLimits::current().max_entries as i64;
        let mut l = max_entries.saturating_mul(100);
        if l <= 0 {
            l = 10_000;
        }
        a.limit = l.min(1_000_000) as u64;
    }
    Ok((a, i))
}

/// The bound an approximate trim reached, as propagated (`streamRewriteTrimArgument`).
fn trim_bound(s: &Stream, trim: Trim) -> Bytes {
    match trim {
        Trim::MaxLen(_) => prop::num(s.len() as i64),
        // Redis reads the first entry of the first node, deleted or not: the node's first
        // entry, whose ID is the node's master ID (entries are only flagged when deleted).
        Trim::MinId(_) => id_bytes(s.nodes().next().map_or(StreamId::MAX, |(m, _)| *m)),
    }
}

fn xadd(ks: &mut Keyspace, args: &[Bytes], out: &mut Out) {
    let (a, idpos) = match parse_add_trim(args, true) {
        Ok(x) => x,
        Err(e) => return out.error(&e),
    };
    let field_pos = idpos + 1;
    if args.len() < field_pos + 2 || (args.len() - field_pos) % 2 == 1 {
        return out.error(&err::wrong_args("xadd"));
    }
    if a.id.is_some_and(|id| id.is_zero()) && a.seq_given {
        return out.error("ERR The ID specified in XADD must be greater than 0-0");
    }
    let key = &args[1];
    let now = ks.now_ms;
    let exists = match write(ks, key) {
        Err(WrongType) => return out.error(err::WRONGTYPE),
        Ok(s) => s.is_some(),
    };
    if !exists {
        if a.no_mkstream {
            return out.null();
        }
        ks.set(key, Value::Stream(Box::default()));
    }
    let Ok(Some(s)) = write(ks, key) else {
        return out.error(err::WRONGTYPE);
    };
    if s.last_id == StreamId::MAX {
        return out
            .error("ERR The stream has exhausted the last possible ID, unable to add more items");
    }
    let appended = s.next_id(a.id, a.seq_given, now).and_then(|id| {
        s.append(id, args[field_pos..].to_vec(), NodeLimits::current())
            .map(|_| id)
    });
    let id = match appended {
        Ok(id) => id,
        Err(AppendError::NotGreater) => {
            return out.error(
                "ERR The ID specified in XADD is equal or smaller than the target stream top item",
            )
        }
        Err(AppendError::TooLarge) => return out.error("ERR Elements are too large to be stored"),
    };
    let mut trimmed = 0;
    let mut bound = None;
    if let Some(t) = a.trim {
        trimmed = s.trim(t, a.approx, a.limit);
        if a.approx {
            bound = Some(trim_bound(s, t));
        }
    }
    reply_id(out, id);
    ks.signal_modified(key);
    ks.notify('t', "xadd", key);
    ks.dirty(1);
    if trimmed > 0 {
        ks.notify('t', "xtrim", key);
    }
    let rewrite_id = a.id.is_none() || !a.seq_given;
    if bound.is_some() || rewrite_id {
        ks.rewrite_as(|| {
            let mut v = args.to_vec();
            if let Some(b) = bound {
                v[a.bound_idx - 1] = prop::lit("=");
                v[a.bound_idx] = b;
            }
            if rewrite_id {
                v[idpos] = id_bytes(id);
            }
            v
        });
    }
}

fn xtrim(ks: &mut Keyspace, args: &[Bytes], out: &mut Out) {
    let (a, _) = match parse_add_trim(args, false) {
        Ok(x) => x,
        Err(e) => return out.error(&e),
    };
    let key = &args[1];
    let s = match write(ks, key) {
        Err(WrongType) => return out.error(err::WRONGTYPE),
        Ok(None) => return out.int(0),
        Ok(Some(s)) => s,
    };
    let Some(t) = a.trim else {
        return out.int(0);
    };
    let deleted = s.trim(t, a.approx, a.limit);
    let bound = (deleted > 0 && a.approx).then(|| trim_bound(s, t));
    if deleted > 0 {
        ks.notify('t', "xtrim", key);
        if let Some(b) = bound {
            ks.rewrite_as(|| {
                let mut v = args.to_vec();
                v[a.bound_idx - 1] = prop::lit("=");
                v[a.bound_idx] = b;
                v
            });
        }
        ks.signal_modified(key);
        ks.dirty(deleted);
    }
    out.int(deleted as i64);
}

// ----- XLEN / XRANGE / XDEL / XSETID -----

fn xlen(ks: &mut Keyspace, args: &[Bytes], out: &mut Out) {
    match read(ks, &args[1]) {
        Err(WrongType) => out.error(err::WRONGTYPE),
        Ok(None) => out.int(0),
        Ok(Some(s)) => out.int(s.len() as i64),
    }
}

fn xrange(ks: &mut Keyspace, args: &[Bytes], out: &mut Out) {
    range_generic(ks, args, out, false)
}

fn xrevrange(ks: &mut Keyspace, args: &[Bytes], out: &mut Out) {
    range_generic(ks, args, out, true)
}

fn range_generic(ks: &mut Keyspace, args: &[Bytes], out: &mut Out, rev: bool) {
    let (start_arg, end_arg) = if rev {
        (&args[3], &args[2])
    } else {
        (&args[2], &args[3])
    };
    let start = match parse_interval(start_arg, 0, true) {
        Ok(id) => id,
        Err(e) => return out.error(e),
    };
    let end = match parse_interval(end_arg, u64::MAX, false) {
        Ok(id) => id,
        Err(e) => return out.error(e),
    };
    let mut count: i64 = -1;
    let mut j = 4;
    while j < args.len() {
        if parse::kw(&args[j], "count") && j + 1 < args.len() {
            count = match parse::i64_arg(&args[j + 1]) {
                Ok(n) => n.max(0),
                Err(e) => return out.error(e),
            };
            j += 2;
        } else {
            return out.error(err::SYNTAX);
        }
    }
    let s = match read(ks, &args[1]) {
        Err(WrongType) => return out.error(err::WRONGTYPE),
        Ok(None) => return out.array(0),
        Ok(Some(s)) => s,
    };
    if count == 0 {
        return out.null_array();
    }
    let limit = if count < 0 {
        usize::MAX
    } else {
        count as usize
    };
    let items: Vec<(&StreamId, &Vec<Bytes>)> = if rev {
        s.range(start, end).rev().take(limit).collect()
    } else {
        s.range(start, end).take(limit).collect()
    };
    out.array(items.len());
    for (id, f) in items {
        reply_entry(out, *id, f);
    }
}

fn xdel(ks: &mut Keyspace, args: &[Bytes], out: &mut Out) {
    let key = &args[1];
    let s = match write(ks, key) {
        Err(WrongType) => return out.error(err::WRONGTYPE),
        Ok(None) => return out.int(0),
        Ok(Some(s)) => s,
    };
    let mut ids = Vec::with_capacity(args.len() - 2);
    for a in &args[2..] {
        match parse_strict_id(a, 0) {
            Ok(id) => ids.push(id),
            Err(e) => return out.error(e),
        }
    }
    let mut deleted = 0;
    for id in ids {
        if s.delete(id) {
            if id > s.max_deleted_id {
                s.max_deleted_id = id;
            }
            deleted += 1;
        }
    }
    if deleted > 0 {
        ks.signal_modified(key);
        ks.notify('t', "xdel", key);
        ks.dirty(deleted);
    }
    out.int(deleted as i64);
}

fn xsetid(ks: &mut Keyspace, args: &[Bytes], out: &mut Out) {
    let id = match parse_strict_id(&args[2], 0) {
        Ok(id) => id,
        Err(e) => return out.error(e),
    };
    let mut entries_added: i64 = -1;
    let mut max_xdel = StreamId::MIN;
    let mut i = 3;
    while i < args.len() {
        let more = args.len() - 1 - i;
        if parse::kw(&args[i], "entriesadded") && more > 0 {
            entries_added = match parse::i64_arg(&args[i + 1]) {
                Ok(n) if n < 0 => return out.error("ERR entries_added must be positive"),
                Ok(n) => n,
                Err(e) => return out.error(e),
            };
            i += 2;
        } else if parse::kw(&args[i], "maxdeletedid") && more > 0 {
            max_xdel = match parse_strict_id(&args[i + 1], 0) {
                Ok(m) if id < m => {
                    return out.error(
                        "ERR The ID specified in XSETID is smaller than the provided \
                         max_deleted_entry_id",
                    )
                }
                Ok(m) => m,
                Err(e) => return out.error(e),
            };
            i += 2;
        } else {
            return out.error(err::SYNTAX);
        }
    }
    let key = &args[1];
    let s = match write(ks, key) {
        Err(WrongType) => return out.error(err::WRONGTYPE),
        Ok(None) => return out.error(err::NO_KEY),
        Ok(Some(s)) => s,
    };
    if !s.is_empty() {
        if id < s.last_entry_id() {
            return out.error(
                "ERR The ID specified in XSETID is smaller than the target stream top item",
            );
        }
        if entries_added != -1 && s.len() as i64 > entries_added {
            return out.error(
                "ERR The entries_added specified in XSETID is smaller than the target stream \
                 length",
            );
        }
    }
    s.last_id = id;
    if entries_added != -1 {
        s.entries_added = entries_added as u64;
    }
    if !max_xdel.is_zero() {
        s.max_deleted_id = max_xdel;
    }
    out.ok();
    ks.dirty(1);
    ks.notify('t', "xsetid", key);
}

// ----- XREAD / XREADGROUP -----

/// The keys of XREAD / XREADGROUP: the first half of what follows STREAMS.
fn xread_keys(args: &[Bytes]) -> Vec<usize> {
    let Some(pos) = args.iter().skip(1).position(|a| parse::kw(a, "streams")) else {
        return Vec::new();
    };
    let first = pos + 2;
    let n = (args.len() - first) / 2;
    (first..first + n).collect()
}

struct ReadArgs {
    group: Option<(Bytes, Bytes)>,
    noack: bool,
    count: i64,
    /// Absolute deadline in ms (0 = forever) when BLOCK was given.
    block: Option<u64>,
    streams_arg: usize,
    streams_count: usize,
}

fn parse_read_args(args: &[Bytes], now_ms: u64) -> Result<ReadArgs, String> {
    let xreadgroup = args[0].len() == 10;
    let mut r = ReadArgs {
        group: None,
        noack: false,
        count: 0,
        block: None,
        streams_arg: 0,
        streams_count: 0,
    };
    let mut i = 1;
    while i < args.len() {
        let more = args.len() - i - 1;
        let o = &args[i];
        if parse::kw(o, "block") && more > 0 {
            i += 1;
            let ms = parse::i64_arg(&args[i])
                .map_err(|_| "ERR timeout is not an integer or out of range".to_string())?;
            if ms < 0 {
                return Err("ERR timeout is negative".into());
            }
            let deadline = if ms == 0 {
                0
            } else {
                if ms as u64 > i64::MAX as u64 - now_ms {
                    return Err("ERR timeout is out of range".into());
                }
                now_ms + ms as u64
            };
            r.block = Some(deadline);
        } else if parse::kw(o, "count") && more > 0 {
            i += 1;
            r.count = parse::i64_arg(&args[i]).map_err(String::from)?.max(0);
        } else if parse::kw(o, "streams") && more > 0 {
            r.streams_arg = i + 1;
            let n = args.len() - r.streams_arg;
            if !n.is_multiple_of(2) {
                return Err(
                    "ERR Unbalanced XREAD list of streams: for each stream key an ID or \
                    '$' must be specified."
                        .into(),
                );
            }
            r.streams_count = n / 2;
            break;
        } else if parse::kw(o, "group") && more >= 2 {
            if !xreadgroup {
                return Err(
                    "ERR The GROUP option is only supported by XREADGROUP. You called \
                    XREAD instead."
                        .into(),
                );
            }
            r.group = Some((args[i + 1].clone(), args[i + 2].clone()));
            i += 2;
        } else if parse::kw(o, "noack") {
            if !xreadgroup {
                return Err(
                    "ERR The NOACK option is only supported by XREADGROUP. You called \
                    XREAD instead."
                        .into(),
                );
            }
            r.noack = true;
        } else {
            return Err(err::SYNTAX.into());
        }
        i += 1;
    }
    if r.streams_arg == 0 {
        return Err(err::SYNTAX.into());
    }
    if xreadgroup && r.group.is_none() {
        return Err("ERR Missing GROUP option for XREADGROUP".into());
    }
    Ok(r)
}

/// A client-supplied name as Redis's `%s` prints it: up to its first NUL byte.
fn cstr(b: &[u8]) -> &[u8] {
    b.split(|&c| c == 0).next().unwrap_or(b)
}

fn nogroup_read(key: &[u8], group: &[u8]) -> Vec<u8> {
    let (key, group) = (cstr(key), cstr(group));
    let mut e = b"NOGROUP No such key '".to_vec();
    e.extend_from_slice(key);
    e.extend_from_slice(b"' or consumer group '");
    e.extend_from_slice(group);
    e.extend_from_slice(b"' in XREADGROUP with GROUP option");
    e
}

/// The IDs each stream is read after (`>` is `StreamId::MAX` for a group).
fn resolve_ids(ks: &mut Keyspace, args: &[Bytes], r: &ReadArgs) -> Result<Vec<StreamId>, Out2> {
    let mut ids = Vec::with_capacity(r.streams_count);
    let xreadgroup = r.group.is_some();
    for i in 0..r.streams_count {
        let key = &args[r.streams_arg + i];
        let id_arg = &args[r.streams_arg + r.streams_count + i];
        let s = match read(ks, key) {
            Err(WrongType) => return Err(Out2::Str(err::WRONGTYPE.into())),
            Ok(s) => s,
        };
        if let Some((g, _)) = &r.group {
            if s.as_ref().is_none_or(|s| !s.groups.contains_key(g)) {
                return Err(Out2::Bytes(nogroup_read(key, g)));
            }
        }
        if id_arg.as_ref() == b"$" {
            if xreadgroup {
                return Err(Out2::Str(
                    "ERR The $ ID is meaningless in the context of XREADGROUP: you want to read \
                     the history of this consumer by specifying a proper ID, or use the > ID to \
                     get new messages. The $ ID would just return an empty result set."
                        .into(),
                ));
            }
            ids.push(s.map_or(StreamId::MIN, |s| s.last_id));
            continue;
        }
        if id_arg.as_ref() == b">" {
            if !xreadgroup {
                return Err(Out2::Str(
                    "ERR The > ID can be specified only when calling XREADGROUP using the GROUP \
                     <group> <consumer> option."
                        .into(),
                ));
            }
            ids.push(StreamId::MAX);
            continue;
        }
        ids.push(parse_strict_id(id_arg, 0).map_err(|e| Out2::Str(e.into()))?);
    }
    Ok(ids)
}

/// An error text that may hold client bytes.
enum Out2 {
    Str(String),
    Bytes(Vec<u8>),
}

/// What a group read delivered: the entries (None fields for a pending ID whose entry is
/// gone) and the commands it propagates.
struct Delivered {
    entries: Vec<(StreamId, Option<Vec<Bytes>>)>,
    props: Vec<Vec<Bytes>>,
}

fn xclaim_prop(key: &[u8], group: &[u8], g: &Group, id: StreamId) -> Option<Vec<Bytes>> {
    let nack = g.pel.get(&id)?;
    Some(vec![
        prop::lit("XCLAIM"),
        Bytes::copy_from_slice(key),
        Bytes::copy_from_slice(group),
        nack.consumer.clone(),
        prop::lit("0"),
        id_bytes(id),
        prop::lit("TIME"),
        prop::num(nack.delivery_time as i64),
        prop::lit("RETRYCOUNT"),
        prop::num(nack.delivery_count as i64),
        prop::lit("FORCE"),
        prop::lit("JUSTID"),
        prop::lit("LASTID"),
        id_bytes(g.last_id),
    ])
}

fn setid_prop(key: &[u8], group: &[u8], g: &Group) -> Vec<Bytes> {
    vec![
        prop::lit("XGROUP"),
        prop::lit("SETID"),
        Bytes::copy_from_slice(key),
        Bytes::copy_from_slice(group),
        id_bytes(g.last_id),
        prop::lit("ENTRIESREAD"),
        prop::num(g.entries_read),
    ]
}

/// `streamReplyWithRange` for a group read of new entries after `start - 1`, or
/// `streamReplyWithRangeFromConsumerPEL` for history.
#[allow(clippy::too_many_arguments)]
fn group_read(
    s: &mut Stream,
    key: &[u8],
    group: &[u8],
    consumer: &Bytes,
    start: StreamId,
    count: usize,
    noack: bool,
    history: bool,
    now: u64,
) -> Delivered {
    let mut d = Delivered {
        entries: Vec::new(),
        props: Vec::new(),
    };
    let limit = if count == 0 { usize::MAX } else { count };
    if history {
        let Some(g) = s.groups.get(group) else {
            return d;
        };
        let ids: Vec<StreamId> = g
            .consumers
            .get(consumer)
            .map(|c| c.pel.range(start..).take(limit).copied().collect())
            .unwrap_or_default();
        for id in ids {
            let fields = s.get(&id).cloned();
            if fields.is_some() {
                if let Some(n) = s.groups.get_mut(group).and_then(|g| g.pel.get_mut(&id)) {
                    n.delivery_time = now;
                    n.delivery_count += 1;
                }
            }
            d.entries.push((id, fields));
        }
        return d;
    }
    let items: Vec<(StreamId, Vec<Bytes>)> = s
        .range(start, StreamId::MAX)
        .take(limit)
        .map(|(id, f)| (*id, f.clone()))
        .collect();
    let mut propagate_last_id = false;
    for (id, fields) in items {
        let has_tomb = s.range_has_tombstones(id, StreamId::MAX);
        let estimate = s.estimate_distance(id);
        let added = s.entries_added;
        let Some(g) = s.groups.get_mut(group) else {
            break;
        };
        if id > g.last_id {
            if g.entries_read != ENTRIES_READ_INVALID && !has_tomb {
                g.entries_read += 1;
            } else if added != 0 {
                g.entries_read = estimate;
            }
            g.last_id = id;
            if noack {
                propagate_last_id = true;
            }
        }
        if !noack {
            g.assign(id, consumer, now, 1);
            if let Some(p) = xclaim_prop(key, group, g, id) {
                d.props.push(p);
            }
        }
        d.entries.push((id, Some(fields)));
    }
    if propagate_last_id {
        if let Some(g) = s.groups.get(group) {
            d.props.push(setid_prop(key, group, g));
        }
    }
    d
}

fn write_out2(out: &mut Out, e: Out2) {
    match e {
        Out2::Str(s) => out.error(&s),
        Out2::Bytes(b) => out.error_bytes(&b),
    }
}

fn xread(ks: &mut Keyspace, args: &[Bytes], out: &mut Out) {
    let r = match parse_read_args(args, ks.now_ms) {
        Ok(r) => r,
        Err(e) => return out.error(&e),
    };
    if r.group.is_some() {
        ks.suppress_propagation();
    }
    let ids = match resolve_ids(ks, args, &r) {
        Ok(ids) => ids,
        Err(e) => return write_out2(out, e),
    };
    // Streams are served in order, each checked after the previous one was served (the
    // same key twice reads once with `>`); the replies are built aside to count them.
    let proto = out.proto;
    let mut served = 0;
    let mut body = Vec::new();
    for (i, gt) in ids.iter().enumerate() {
        let key = &args[r.streams_arg + i];
        let Ok(Some(s)) = read(ks, key) else {
            continue;
        };
        let now = match &r.group {
            Some(_) if *gt != StreamId::MAX => true,
            Some((g, _)) => {
                !s.is_empty()
                    && s.groups
                        .get(g)
                        .is_some_and(|g| s.last_entry_id() > g.last_id)
            }
            None => !s.is_empty() && s.last_entry_id() > *gt,
        };
        if !now {
            continue;
        }
        served += 1;
        let mut part = Out::new(&mut body, proto);
        if proto != 3 {
            part.array(2);
        }
        part.bulk(key);
        serve_stream(ks, key, *gt, &r, r.count as usize, &mut part);
    }
    if served > 0 {
        if out.resp3() {
            out.map(served);
        } else {
            out.array(served);
        }
        out.raw(&body);
        return;
    }
    match r.block {
        Some(deadline) if !ks.no_block => {
            let mut stored = args.to_vec();
            for (i, id) in ids.iter().enumerate() {
                if r.group.is_none() {
                    stored[r.streams_arg + r.streams_count + i] = id_bytes(*id);
                }
            }
            ks.block = Some(BlockRequest {
                keys: args[r.streams_arg..r.streams_arg + r.streams_count].to_vec(),
                deadline_ms: deadline,
                wait_for: WaitFor::Stream,
                null: NullReply::Array,
                serve: serve_blocked,
                extra_key: None,
                args: Some(stored),
            });
        }
        _ => out.null_array(),
    }
}

/// Replies with one stream's entries after `gt` (for a group: new entries or history).
fn serve_stream(
    ks: &mut Keyspace,
    key: &Bytes,
    gt: StreamId,
    r: &ReadArgs,
    count: usize,
    out: &mut Out,
) {
    let now = ks.now_ms;
    let Ok(Some(s)) = write(ks, key) else {
        return out.array(0);
    };
    let Some((gname, cname)) = &r.group else {
        let start = gt.incr().unwrap_or(StreamId::MAX);
        let limit = if count == 0 { usize::MAX } else { count };
        let items: Vec<_> = s.range(start, StreamId::MAX).take(limit).collect();
        out.array(items.len());
        for (id, f) in items {
            reply_entry(out, *id, f);
        }
        return;
    };
    let history = gt != StreamId::MAX;
    let mut created = false;
    let start = match s.groups.get_mut(gname) {
        Some(g) => {
            match g.consumers.get_mut(cname) {
                Some(c) => c.seen_time = now,
                None => created = g.create_consumer(cname, now),
            }
            if history {
                gt.incr().unwrap_or(StreamId::MAX)
            } else {
                g.last_id.incr().unwrap_or(StreamId::MAX)
            }
        }
        None => return out.array(0),
    };
    let d = group_read(s, key, gname, cname, start, count, r.noack, history, now);
    out.array(d.entries.len());
    for (id, f) in &d.entries {
        reply_maybe_entry(out, *id, f.as_ref());
    }
    if created {
        ks.dirty(1);
        ks.notify('t', "xgroup-createconsumer", key);
        if r.noack {
            ks.also_propagate(|| {
                vec![
                    prop::lit("XGROUP"),
                    prop::lit("CREATECONSUMER"),
                    key.clone(),
                    gname.clone(),
                    cname.clone(),
                ]
            });
        }
    }
    for p in d.props {
        ks.also_propagate(|| p);
    }
    ks.dirty(1);
}

/// Whether a blocked XREAD / XREADGROUP (its stored arguments) can be answered now that
/// `key` was written: new entries past its ID, or, for a group read, the stream or the group
/// gone (answered with an error).
pub fn waiter_ready(ks: &mut Keyspace, key: &[u8], args: &[Bytes]) -> bool {
    let Ok(r) = parse_read_args(args, 0) else {
        return false;
    };
    let Some(i) = (0..r.streams_count).find(|&i| args[r.streams_arg + i] == key) else {
        return false;
    };
    let gt_arg = &args[r.streams_arg + r.streams_count + i];
    match (ks.peek(key).map(|e| &e.value), &r.group) {
        (Some(Value::Stream(s)), Some((g, _))) => match s.groups.get(g) {
            Some(g) => s.last_id > g.last_id,
            None => true,
        },
        (_, Some(_)) => true,
        (Some(Value::Stream(s)), None) => parse_strict_id(gt_arg, 0).is_ok_and(|gt| s.last_id > gt),
        _ => false,
    }
}

/// Answers a blocked XREAD / XREADGROUP from `key` (`serveClientsBlockedOnStreamKey`).
fn serve_blocked(ks: &mut Keyspace, key: &[u8], args: &[Bytes], out: &mut Out) {
    let Ok(r) = parse_read_args(args, 0) else {
        return out.null_array();
    };
    let Some(i) = (0..r.streams_count).find(|&i| args[r.streams_arg + i] == key) else {
        return out.null_array();
    };
    let key_b = args[r.streams_arg + i].clone();
    let count = if r.count == 0 {
        BLOCKED_COUNT_DEFAULT
    } else {
        r.count
    } as usize;
    let gt = match (&r.group, ks.peek(key).map(|e| &e.value)) {
        (Some((g, _)), Some(Value::Stream(s))) => match s.groups.get(g) {
            Some(g) => g.last_id,
            None => {
                return out.error(
                    "NOGROUP the consumer group this client was blocked on no longer exists",
                )
            }
        },
        (Some(_), _) => return out.error("UNBLOCKED the stream key no longer exists"),
        (None, _) => match parse_strict_id(&args[r.streams_arg + r.streams_count + i], 0) {
            Ok(id) => id,
            Err(_) => return out.null_array(),
        },
    };
    if out.resp3() {
        out.map(1);
    } else {
        out.array(1);
        out.array(2);
    }
    out.bulk(&key_b);
    // A group read after blocking always reads new entries (`>`), from the group's last ID.
    let gt = if r.group.is_some() { StreamId::MAX } else { gt };
    serve_stream(ks, &key_b, gt, &r, count, out);
}

// ----- Consumer groups -----

fn nogroup_key(group: &[u8], key: &[u8]) -> Vec<u8> {
    let (key, group) = (cstr(key), cstr(group));
    let mut e = b"NOGROUP No such consumer group '".to_vec();
    e.extend_from_slice(group);
    e.extend_from_slice(b"' for key name '");
    e.extend_from_slice(key);
    e.push(b'\'');
    e
}

fn nogroup_or_key(key: &[u8], group: &[u8]) -> Vec<u8> {
    let (key, group) = (cstr(key), cstr(group));
    let mut e = b"NOGROUP No such key '".to_vec();
    e.extend_from_slice(key);
    e.extend_from_slice(b"' or consumer group '");
    e.extend_from_slice(group);
    e.push(b'\'');
    e
}

fn xgroup(ks: &mut Keyspace, args: &[Bytes], out: &mut Out) {
    let sub = String::from_utf8_lossy(&args[1]).to_ascii_lowercase();
    let create = sub == "create";
    let setid = sub == "setid";
    let mut mkstream = false;
    let mut entries_read = ENTRIES_READ_INVALID;
    let mut i = 5;
    while i < args.len() {
        if create && parse::kw(&args[i], "mkstream") {
            mkstream = true;
            i += 1;
        } else if (create || setid) && parse::kw(&args[i], "entriesread") && i + 1 < args.len() {
            entries_read = match parse::i64_arg(&args[i + 1]) {
                Ok(n) if n < 0 && n != ENTRIES_READ_INVALID => {
                    return out.error("ERR value for ENTRIESREAD must be positive or -1")
                }
                Ok(n) => n,
                Err(e) => return out.error(e),
            };
            i += 2;
        } else {
            return out.error(&subcommand_error(args));
        }
    }
    let key = &args[2];
    let gname = &args[3];
    let exists = match write(ks, key) {
        Err(WrongType) => return out.error(err::WRONGTYPE),
        Ok(s) => s.map(|s| s.groups.contains_key(gname)),
    };
    if !mkstream {
        match exists {
            None => {
                return out.error(
                    "ERR The XGROUP subcommand requires the key to exist. Note that for CREATE \
                     you may want to use the MKSTREAM option to create an empty stream \
                     automatically.",
                )
            }
            Some(false) if matches!(sub.as_str(), "setid" | "createconsumer" | "delconsumer") => {
                return out.error_bytes(&nogroup_key(gname, key))
            }
            _ => {}
        }
    }
    let now = ks.now_ms;
    match sub.as_str() {
        "create" if (5..=8).contains(&args.len()) => {
            let id = if args[4].as_ref() == b"$" {
                match write(ks, key) {
                    Ok(Some(s)) => s.last_id,
                    _ => StreamId::MIN,
                }
            } else {
                match parse_strict_id(&args[4], 0) {
                    Ok(id) => id,
                    Err(e) => return out.error(e),
                }
            };
            if exists.is_none() {
                ks.set(key, Value::Stream(Box::default()));
                ks.signal_modified(key);
            }
            let Ok(Some(s)) = write(ks, key) else {
                return out.error(err::WRONGTYPE);
            };
            if s.groups.contains_key(gname) {
                return out.error("BUSYGROUP Consumer Group name already exists");
            }
            s.groups.insert(gname.clone(), Group::new(id, entries_read));
            out.ok();
            ks.dirty(1);
            ks.notify('t', "xgroup-create", key);
        }
        "setid" if args.len() == 5 || args.len() == 7 => {
            let Ok(Some(s)) = write(ks, key) else {
                return out.error(err::WRONGTYPE);
            };
            let id = if args[4].as_ref() == b"$" {
                s.last_id
            } else {
                match parse_id(&args[4], 0) {
                    Ok(id) => id,
                    Err(e) => return out.error(e),
                }
            };
            if let Some(g) = s.groups.get_mut(gname) {
                g.last_id = id;
                g.entries_read = entries_read;
            }
            out.ok();
            ks.dirty(1);
            ks.notify('t', "xgroup-setid", key);
        }
        "destroy" if args.len() == 4 => {
            let Ok(Some(s)) = write(ks, key) else {
                return out.error(err::WRONGTYPE);
            };
            if s.groups.remove(gname).is_some() {
                out.int(1);
                ks.dirty(1);
                ks.notify('t', "xgroup-destroy", key);
                ks.signal_modified(key);
            } else {
                out.int(0);
            }
        }
        "createconsumer" if args.len() == 5 => {
            let Ok(Some(s)) = write(ks, key) else {
                return out.error(err::WRONGTYPE);
            };
            let created = s
                .groups
                .get_mut(gname)
                .is_some_and(|g| g.create_consumer(&args[4], now));
            out.int(created as i64);
            if created {
                ks.dirty(1);
                ks.notify('t', "xgroup-createconsumer", key);
            }
        }
        "delconsumer" if args.len() == 5 => {
            let Ok(Some(s)) = write(ks, key) else {
                return out.error(err::WRONGTYPE);
            };
            let pending = s
                .groups
                .get_mut(gname)
                .and_then(|g| g.delete_consumer(&args[4]));
            out.int(pending.unwrap_or(0) as i64);
            if pending.is_some() {
                ks.dirty(1);
                ks.notify('t', "xgroup-delconsumer", key);
            }
        }
        _ => out.error(&subcommand_error(args)),
    }
}

fn xgroup_help(_ks: &mut Keyspace, _args: &[Bytes], out: &mut Out) {
    super::object::help_reply(
        out,
        "XGROUP",
        &[
            "CREATE <key> <groupname> <id|$> [option]",
            "    Create a new consumer group. Options are:",
            "    * MKSTREAM",
            "      Create the empty stream if it does not exist.",
            "    * ENTRIESREAD entries_read",
            "      Set the group's entries_read counter (internal use).",
            "CREATECONSUMER <key> <groupname> <consumer>",
            "    Create a new consumer in the specified group.",
            "DELCONSUMER <key> <groupname> <consumer>",
            "    Remove the specified consumer.",
            "DESTROY <key> <groupname>",
            "    Remove the specified group.",
            "SETID <key> <groupname> <id|$> [ENTRIESREAD entries_read]",
            "    Set the current group ID and entries_read counter.",
        ],
    );
}

fn xack(ks: &mut Keyspace, args: &[Bytes], out: &mut Out) {
    let key = &args[1];
    let s = match read(ks, key) {
        Err(WrongType) => return out.error(err::WRONGTYPE),
        Ok(s) => s,
    };
    let Some(g) = s.and_then(|s| s.groups.get_mut(&args[2])) else {
        return out.int(0);
    };
    let mut ids = Vec::with_capacity(args.len() - 3);
    for a in &args[3..] {
        match parse_strict_id(a, 0) {
            Ok(id) => ids.push(id),
            Err(e) => return out.error(e),
        }
    }
    let acked = ids.into_iter().filter(|id| g.ack(*id)).count();
    out.int(acked as i64);
    ks.dirty(acked as u64);
}

fn xpending(ks: &mut Keyspace, args: &[Bytes], out: &mut Out) {
    let argc = args.len();
    if argc != 3 && !(6..=9).contains(&argc) {
        return out.error(err::SYNTAX);
    }
    let mut range = None;
    let mut consumer = None;
    let mut minidle: i64 = 0;
    if argc >= 6 {
        let mut start_idx = 3;
        if parse::kw(&args[3], "idle") {
            minidle = match parse::i64_arg(&args[4]) {
                Ok(n) => n,
                Err(e) => return out.error(e),
            };
            if argc < 8 {
                return out.error(err::SYNTAX);
            }
            start_idx += 2;
        }
        let count = match parse::i64_arg(&args[start_idx + 2]) {
            Ok(n) => n.max(0),
            Err(e) => return out.error(e),
        };
        let start = match parse_interval(&args[start_idx], 0, true) {
            Ok(id) => id,
            Err(e) => return out.error(e),
        };
        let end = match parse_interval(&args[start_idx + 1], u64::MAX, false) {
            Ok(id) => id,
            Err(e) => return out.error(e),
        };
        if start_idx + 3 < argc {
            consumer = Some(args[start_idx + 3].clone());
        }
        range = Some((start, end, count));
    }
    let key = &args[1];
    let now = ks.now_ms;
    let s = match read(ks, key) {
        Err(WrongType) => return out.error(err::WRONGTYPE),
        Ok(s) => s,
    };
    let Some(g) = s.and_then(|s| s.groups.get(&args[2])) else {
        return out.error_bytes(&nogroup_or_key(key, &args[2]));
    };
    let Some((start, end, count)) = range else {
        out.array(4);
        out.int(g.pel.len() as i64);
        match (g.pel.keys().next(), g.pel.keys().next_back()) {
            (Some(first), Some(last)) => {
                reply_id(out, *first);
                reply_id(out, *last);
                let busy: Vec<_> = g
                    .consumers
                    .iter()
                    .filter(|(_, c)| !c.pel.is_empty())
                    .collect();
                out.array(busy.len());
                for (name, c) in busy {
                    out.array(2);
                    out.bulk(name);
                    out.bulk_int(c.pel.len() as i64);
                }
            }
            _ => {
                out.null();
                out.null();
                out.null_array();
            }
        }
        return;
    };
    let ids: Vec<StreamId> = match &consumer {
        Some(c) => match g.consumers.get(c) {
            Some(c) => c.pel.iter().copied().collect(),
            None => return out.array(0),
        },
        None => g.pel.keys().copied().collect(),
    };
    let mut rows = Vec::new();
    if start <= end {
        for id in ids.into_iter().filter(|id| *id >= start && *id <= end) {
            if rows.len() as i64 >= count {
                break;
            }
            let Some(n) = g.pel.get(&id) else { continue };
            let idle = now as i64 - n.delivery_time as i64;
            if minidle != 0 && idle < minidle {
                continue;
            }
            rows.push((id, n.consumer.clone(), idle.max(0), n.delivery_count));
        }
    }
    out.array(rows.len());
    for (id, c, idle, count) in rows {
        out.array(4);
        reply_id(out, id);
        out.bulk(&c);
        out.int(idle);
        out.int(count as i64);
    }
}

fn xclaim(ks: &mut Keyspace, args: &[Bytes], out: &mut Out) {
    let key = &args[1];
    let gname = &args[2];
    let now = ks.now_ms as i64;
    match read(ks, key) {
        Err(WrongType) => return out.error(err::WRONGTYPE),
        Ok(s) if s.as_ref().is_none_or(|s| !s.groups.contains_key(gname)) => {
            return out.error_bytes(&nogroup_or_key(key, gname))
        }
        Ok(_) => {}
    }
    let minidle = match parse::i64_arg(&args[4]) {
        Ok(n) => n.max(0),
        Err(_) => return out.error("ERR Invalid min-idle-time argument for XCLAIM"),
    };
    let mut ids = Vec::new();
    let mut j = 5;
    while j < args.len() {
        match parse_strict_id(&args[j], 0) {
            Ok(id) => ids.push((id, args[j].clone())),
            Err(_) => break,
        }
        j += 1;
    }
    let (mut force, mut justid) = (false, false);
    let mut retrycount: i64 = -1;
    let mut deliverytime: i64 = -1;
    let mut last_id = StreamId::MIN;
    while j < args.len() {
        let more = args.len() - 1 - j;
        let opt = &args[j];
        let num = |b: &[u8], what: &str| {
            parse::i64_arg(b)
                .map_err(|_| format!("ERR Invalid {} option argument for XCLAIM", what))
        };
        if parse::kw(opt, "force") {
            force = true;
        } else if parse::kw(opt, "justid") {
            justid = true;
        } else if parse::kw(opt, "idle") && more > 0 {
            j += 1;
            match num(&args[j], "IDLE") {
                Ok(n) => deliverytime = now - n,
                Err(e) => return out.error(&e),
            }
        } else if parse::kw(opt, "time") && more > 0 {
            j += 1;
            match num(&args[j], "TIME") {
                Ok(n) => deliverytime = n,
                Err(e) => return out.error(&e),
            }
        } else if parse::kw(opt, "retrycount") && more > 0 {
            j += 1;
            match num(&args[j], "RETRYCOUNT") {
                Ok(n) => retrycount = n,
                Err(e) => return out.error(&e),
            }
        } else if parse::kw(opt, "lastid") && more > 0 {
            j += 1;
            match parse_strict_id(&args[j], 0) {
                Ok(id) => last_id = id,
                Err(e) => return out.error(e),
            }
        } else {
            let mut e = b"ERR Unrecognized XCLAIM option '".to_vec();
            e.extend_from_slice(cstr(opt));
            e.push(b'\'');
            return out.error_bytes(&e);
        }
        j += 1;
    }
    ks.suppress_propagation();
    let Ok(Some(s)) = write(ks, key) else {
        return out.error(err::WRONGTYPE);
    };
    let Some(g) = s.groups.get_mut(gname) else {
        return out.error_bytes(&nogroup_or_key(key, gname));
    };
    let mut propagate_last_id = false;
    if last_id > g.last_id {
        g.last_id = last_id;
        propagate_last_id = true;
    }
    if deliverytime == -1 || deliverytime < 0 || deliverytime > now {
        deliverytime = now;
    }
    let cname = args[3].clone();
    let mut consumer_ready = false;
    let mut created = false;
    let mut dirty = 0u64;
    let mut props = Vec::new();
    let mut replies: Vec<(StreamId, Option<Vec<Bytes>>)> = Vec::new();
    for (id, _) in ids {
        let exists = s.contains(&id);
        let Some(g) = s.groups.get_mut(gname) else {
            break;
        };
        if !exists {
            if g.pel.contains_key(&id) {
                if let Some(p) = xclaim_prop(key, gname, g, id) {
                    props.push(p);
                }
                propagate_last_id = false;
                dirty += 1;
                g.ack(id);
            }
            continue;
        }
        let mut nack = g.pel.get(&id).cloned();
        if force && nack.is_none() {
            nack = Some(crate::storage::stream::Nack {
                consumer: Bytes::new(),
                delivery_time: 0,
                delivery_count: 0,
            });
        }
        let Some(n) = nack else { continue };
        if !n.consumer.is_empty() && minidle != 0 {
            let idle = now - n.delivery_time as i64;
            if idle < minidle {
                continue;
            }
        }
        if !consumer_ready {
            match g.consumers.get_mut(&cname) {
                Some(c) => c.seen_time = now as u64,
                None => created = g.create_consumer(&cname, now as u64),
            }
            consumer_ready = true;
        }
        let count = if retrycount >= 0 {
            retrycount as u64
        } else if !justid {
            n.delivery_count + 1
        } else {
            n.delivery_count
        };
        g.assign(id, &cname, deliverytime as u64, count);
        if let Some(p) = xclaim_prop(key, gname, g, id) {
            props.push(p);
        }
        propagate_last_id = false;
        dirty += 1;
        replies.push((id, if justid { None } else { s.get(&id).cloned() }));
    }
    if propagate_last_id {
        if let Some(g) = s.groups.get(gname) {
            props.push(setid_prop(key, gname, g));
        }
        dirty += 1;
    }
    out.array(replies.len());
    for (id, f) in replies {
        match f {
            Some(f) => reply_entry(out, id, &f),
            None => reply_id(out, id),
        }
    }
    if created {
        ks.dirty(1);
        ks.notify('t', "xgroup-createconsumer", key);
    }
    for p in props {
        ks.also_propagate(|| p);
    }
    ks.dirty(dirty);
}

fn xautoclaim(ks: &mut Keyspace, args: &[Bytes], out: &mut Out) {
    let key = &args[1];
    let gname = &args[2];
    let now = ks.now_ms;
    let minidle = match parse::i64_arg(&args[4]) {
        Ok(n) => n.max(0),
        Err(_) => return out.error("ERR Invalid min-idle-time argument for XAUTOCLAIM"),
    };
    let start = match parse_interval(&args[5], 0, true) {
        Ok(id) => id,
        Err(e) => return out.error(e),
    };
    let mut count: i64 = 100;
    let mut justid = false;
    let mut j = 6;
    while j < args.len() {
        let more = args.len() - 1 - j;
        if parse::kw(&args[j], "count") && more > 0 {
            let max = i64::MAX / 16;
            count = match parse::i64_arg(&args[j + 1]) {
                Ok(n) if (1..=max).contains(&n) => n,
                _ => return out.error("ERR COUNT must be > 0"),
            };
            j += 1;
        } else if parse::kw(&args[j], "justid") {
            justid = true;
        } else {
            return out.error(err::SYNTAX);
        }
        j += 1;
    }
    match read(ks, key) {
        Err(WrongType) => return out.error(err::WRONGTYPE),
        Ok(s) if s.as_ref().is_none_or(|s| !s.groups.contains_key(gname)) => {
            return out.error_bytes(&nogroup_or_key(key, gname))
        }
        Ok(_) => {}
    }
    ks.suppress_propagation();
    let Ok(Some(s)) = write(ks, key) else {
        return out.error(err::WRONGTYPE);
    };
    let cname = args[3].clone();
    let mut attempts = count.saturating_mul(10);
    let mut claimed: Vec<(StreamId, Option<Vec<Bytes>>)> = Vec::new();
    let mut deleted = Vec::new();
    let mut props = Vec::new();
    let mut created = false;
    let mut consumer_ready = false;
    let mut cursor = start;
    let mut end_id = StreamId::MIN;
    loop {
        let next = s
            .groups
            .get(gname)
            .and_then(|g| g.pel.range(cursor..).next().map(|(id, n)| (*id, n.clone())));
        let Some((id, nack)) = next else {
            break;
        };
        if attempts == 0 || count == 0 {
            end_id = id;
            break;
        }
        attempts -= 1;
        cursor = match id.incr() {
            Some(c) => c,
            None => StreamId::MAX,
        };
        let exists = s.contains(&id);
        let Some(g) = s.groups.get_mut(gname) else {
            break;
        };
        if !exists {
            if let Some(p) = xclaim_prop(key, gname, g, id) {
                props.push(p);
            }
            g.ack(id);
            deleted.push(id);
            count -= 1;
        } else {
            if minidle != 0 && (now as i64 - nack.delivery_time as i64) < minidle {
                if id == StreamId::MAX {
                    break;
                }
                continue;
            }
            if !consumer_ready {
                match g.consumers.get_mut(&cname) {
                    Some(c) => c.seen_time = now,
                    None => created = g.create_consumer(&cname, now),
                }
                consumer_ready = true;
            }
            let dc = if justid {
                nack.delivery_count
            } else {
                nack.delivery_count + 1
            };
            g.assign(id, &cname, now, dc);
            if let Some(p) = xclaim_prop(key, gname, g, id) {
                props.push(p);
            }
            count -= 1;
            claimed.push((id, if justid { None } else { s.get(&id).cloned() }));
        }
        if id == StreamId::MAX {
            break;
        }
    }
    out.array(3);
    reply_id(out, end_id);
    out.array(claimed.len());
    for (id, f) in &claimed {
        match f {
            Some(f) => reply_entry(out, *id, f),
            None => reply_id(out, *id),
        }
    }
    out.array(deleted.len());
    for id in &deleted {
        reply_id(out, *id);
    }
    if created {
        ks.dirty(1);
        ks.notify('t', "xgroup-createconsumer", key);
    }
    let n = props.len() as u64;
    for p in props {
        ks.also_propagate(|| p);
    }
    ks.dirty(n);
}

// ----- XINFO -----

fn lookup_info<'k>(ks: &'k mut Keyspace, key: &[u8], out: &mut Out) -> Option<&'k mut Stream> {
    match read(ks, key) {
        Err(WrongType) => {
            out.error(err::WRONGTYPE);
            None
        }
        Ok(None) => {
            out.error(err::NO_KEY);
            None
        }
        Ok(Some(s)) => Some(s),
    }
}

fn reply_lag(out: &mut Out, s: &Stream, g: &Group) {
    match s.lag(g) {
        Some(l) => out.int(l),
        None => out.null(),
    }
}

fn reply_entries_read(out: &mut Out, g: &Group) {
    if g.entries_read != ENTRIES_READ_INVALID {
        out.int(g.entries_read);
    } else {
        out.null();
    }
}

fn xinfo_stream(ks: &mut Keyspace, args: &[Bytes], out: &mut Out) {
    let opts = &args[3..];
    let mut full = false;
    let mut count: i64 = 10;
    if !opts.is_empty() {
        if (opts.len() != 1 && opts.len() != 3) || !parse::kw(&opts[0], "full") {
            return out.error(&subcommand_error(args));
        }
        full = true;
        if opts.len() == 3 {
            if !parse::kw(&opts[1], "count") {
                return out.error(&subcommand_error(args));
            }
            count = match parse::i64_arg(&opts[2]) {
                Ok(n) if n < 0 => 10,
                Ok(n) => n,
                Err(e) => return out.error(e),
            };
        }
    }
    let Some(s) = lookup_info(ks, &args[2], out) else {
        return;
    };
    let s: &Stream = s;
    out.map(if full { 9 } else { 10 });
    out.bulk_str("length");
    out.int(s.len() as i64);
    out.bulk_str("radix-tree-keys");
    out.int(s.node_count() as i64);
    out.bulk_str("radix-tree-nodes");
    out.int(rax_nodes_estimate(s.node_count()));
    out.bulk_str("last-generated-id");
    reply_id(out, s.last_id);
    out.bulk_str("max-deleted-entry-id");
    reply_id(out, s.max_deleted_id);
    out.bulk_str("entries-added");
    out.int(s.entries_added as i64);
    out.bulk_str("recorded-first-entry-id");
    reply_id(out, s.first_id());
    if !full {
        out.bulk_str("groups");
        out.int(s.groups.len() as i64);
        out.bulk_str("first-entry");
        match s.first_entry() {
            Some((id, f)) => reply_entry(out, *id, f),
            None => out.null(),
        }
        out.bulk_str("last-entry");
        match s.last_entry() {
            Some((id, f)) => reply_entry(out, *id, f),
            None => out.null(),
        }
        return;
    }
    let limit = if count == 0 {
        usize::MAX
    } else {
        count as usize
    };
    out.bulk_str("entries");
    let items: Vec<_> = s.iter().take(limit).collect();
    out.array(items.len());
    for (id, f) in items {
        reply_entry(out, *id, f);
    }
    out.bulk_str("groups");
    out.array(s.groups.len());
    for (name, g) in &s.groups {
        out.map(7);
        out.bulk_str("name");
        out.bulk(name);
        out.bulk_str("last-delivered-id");
        reply_id(out, g.last_id);
        out.bulk_str("entries-read");
        reply_entries_read(out, g);
        out.bulk_str("lag");
        reply_lag(out, s, g);
        out.bulk_str("pel-count");
        out.int(g.pel.len() as i64);
        out.bulk_str("pending");
        let pel: Vec<_> = g.pel.iter().take(limit).collect();
        out.array(pel.len());
        for (id, n) in pel {
            out.array(4);
            reply_id(out, *id);
            out.bulk(&n.consumer);
            out.int(n.delivery_time as i64);
            out.int(n.delivery_count as i64);
        }
        out.bulk_str("consumers");
        out.array(g.consumers.len());
        for (cname, c) in &g.consumers {
            out.map(4);
            out.bulk_str("name");
            out.bulk(cname);
            out.bulk_str("seen-time");
            out.int(c.seen_time as i64);
            out.bulk_str("pel-count");
            out.int(c.pel.len() as i64);
            out.bulk_str("pending");
            let ids: Vec<_> = c.pel.iter().take(limit).collect();
            out.array(ids.len());
            for id in ids {
                let n = g.pel.get(id);
                out.array(3);
                reply_id(out, *id);
                out.int(n.map_or(0, |n| n.delivery_time as i64));
                out.int(n.map_or(0, |n| n.delivery_count as i64));
            }
        }
    }
}

/// Redis reports its radix tree's internal node count; ours has no radix tree. A tree of
/// `keys` 16-byte big-endian keys sharing prefixes needs about one inner node per key plus
/// the root, which is what Redis shows for small streams.
fn rax_nodes_estimate(keys: usize) -> i64 {
    if keys == 0 {
        1
    } else {
        keys as i64 + 1
    }
}

fn xinfo_groups(ks: &mut Keyspace, args: &[Bytes], out: &mut Out) {
    let Some(s) = lookup_info(ks, &args[2], out) else {
        return;
    };
    let s: &Stream = s;
    out.array(s.groups.len());
    for (name, g) in &s.groups {
        out.map(6);
        out.bulk_str("name");
        out.bulk(name);
        out.bulk_str("consumers");
        out.int(g.consumers.len() as i64);
        out.bulk_str("pending");
        out.int(g.pel.len() as i64);
        out.bulk_str("last-delivered-id");
        reply_id(out, g.last_id);
        out.bulk_str("entries-read");
        reply_entries_read(out, g);
        out.bulk_str("lag");
        reply_lag(out, s, g);
    }
}

fn xinfo_consumers(ks: &mut Keyspace, args: &[Bytes], out: &mut Out) {
    let now = ks.now_ms as i64;
    let key = args[2].clone();
    let Some(s) = lookup_info(ks, &key, out) else {
        return;
    };
    let Some(g) = s.groups.get(&args[3]) else {
        return out.error_bytes(&nogroup_key(&args[3], &key));
    };
    out.array(g.consumers.len());
    for (name, c) in &g.consumers {
        out.map(3);
        out.bulk_str("name");
        out.bulk(name);
        out.bulk_str("pending");
        out.int(c.pel.len() as i64);
        out.bulk_str("idle");
        out.int((now - c.seen_time as i64).max(0));
    }
}

fn xinfo_help(_ks: &mut Keyspace, _args: &[Bytes], out: &mut Out) {
    super::object::help_reply(
        out,
        "XINFO",
        &[
            "CONSUMERS <key> <groupname>",
            "    Show consumers of <groupname>.",
            "GROUPS <key>",
            "    Show the stream consumer groups.",
            "STREAM <key> [FULL [COUNT <count>]",
            "    Show information about the stream.",
        ],
    );
}
