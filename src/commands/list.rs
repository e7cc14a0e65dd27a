//! List commands: LPUSH, RPUSH, LPUSHX, RPUSHX, LPOP, RPOP, LLEN, LRANGE, LINDEX, LSET,
//! LINSERT, LREM, LTRIM, LPOS, LMOVE, RPOPLPUSH and LMPOP.
//!
//! Each handler parses its own options in Redis's order (so the first error a client sees is
//! Redis's first error), looks its key up, and does its work on `storage::list::List`. The
//! replies, error texts, keyspace events (`lpush`, `rpop`, `linsert`, `lset`, `lrem`,
//! `ltrim`, `del` when a list empties...), `dirty` counts and the deletion of emptied lists
//! follow `t_list.c` of Redis 7.0.
//!
//! The blocking variants (BLPOP, BRPOP, BLMOVE, BRPOPLPUSH, BLMPOP) live in the engine,
//! which knows about waiting clients; they reuse the shard-local operations here: `pop`,
//! `lmove`, `mpop`, plus `parse_end`, `parse_mpop` and `mpop_keys_at` for their arguments.
//! All of them run on a `Keyspace` that covers every key they touch, so LMOVE and RPOPLPUSH
//! between keys of two shards are atomic like any other multi-shard command.

use super::{err, flag, parse, Args, Cmd, Keys};
use crate::protocol::Out;
use crate::storage::list::{End, Fill, List, Needle};
use crate::storage::listpack::Item;
use crate::storage::{Keyspace, Value};
use bytes::Bytes;

const READ: u32 = flag::READONLY;
const READ_FAST: u32 = flag::READONLY | flag::FAST;
const WRITE: u32 = flag::WRITE;
const WRITE_FAST: u32 = flag::WRITE | flag::FAST;
const GROW: u32 = flag::WRITE | flag::DENYOOM;
const GROW_FAST: u32 = flag::WRITE | flag::DENYOOM | flag::FAST;
const KEY: Keys = Keys::Range(1, 1, 1);
const SOURCE_DESTINATION: Keys = Keys::Range(1, 2, 1);
const ACL_WRITE_FAST: &[&str] = &["write", "list", "fast"];
const ACL_WRITE_SLOW: &[&str] = &["write", "list", "slow"];
const ACL_READ_FAST: &[&str] = &["read", "list", "fast"];
const ACL_READ_SLOW: &[&str] = &["read", "list", "slow"];

pub static COMMANDS: [Cmd; 17] = [
    Cmd::data("lpush", -3, GROW_FAST, KEY, lpush).with_acl(ACL_WRITE_FAST),
    Cmd::data("rpush", -3, GROW_FAST, KEY, rpush).with_acl(ACL_WRITE_FAST),
    Cmd::data("lpushx", -3, GROW_FAST, KEY, lpushx).with_acl(ACL_WRITE_FAST),
    Cmd::data("rpushx", -3, GROW_FAST, KEY, rpushx).with_acl(ACL_WRITE_FAST),
    Cmd::data("lpop", -2, WRITE_FAST, KEY, lpop).with_acl(ACL_WRITE_FAST),
    Cmd::data("rpop", -2, WRITE_FAST, KEY, rpop).with_acl(ACL_WRITE_FAST),
    Cmd::data("llen", 2, READ_FAST, KEY, llen).with_acl(ACL_READ_FAST),
    Cmd::data("lrange", 4, READ, KEY, lrange).with_acl(ACL_READ_SLOW),
    Cmd::data("lindex", 3, READ, KEY, lindex).with_acl(ACL_READ_SLOW),
    Cmd::data("lset", 4, GROW, KEY, lset).with_acl(ACL_WRITE_SLOW),
    Cmd::data("linsert", 5, GROW, KEY, linsert).with_acl(ACL_WRITE_SLOW),
    Cmd::data("lrem", 4, WRITE, KEY, lrem).with_acl(ACL_WRITE_SLOW),
    Cmd::data("ltrim", 4, WRITE, KEY, ltrim).with_acl(ACL_WRITE_SLOW),
    Cmd::data("lpos", -3, READ, KEY, lpos).with_acl(ACL_READ_SLOW),
    Cmd::data("lmove", 5, GROW, SOURCE_DESTINATION, lmove_command).with_acl(ACL_WRITE_SLOW),
    Cmd::data("rpoplpush", 3, GROW, SOURCE_DESTINATION, rpoplpush).with_acl(ACL_WRITE_SLOW),
    Cmd::data("lmpop", -4, WRITE, Keys::Custom(lmpop_keys), lmpop).with_acl(ACL_WRITE_SLOW),
];

// ----- Lookups and reply helpers. -----

/// The list at `key` for writing: `Ok(None)` when absent, WRONGTYPE for other values.
fn list_mut<'a>(ks: &'a mut Keyspace, key: &[u8]) -> Result<Option<&'a mut List>, &'static str> {
    match ks.lookup_write(key) {
        None => Ok(None),
        Some(e) => match &mut e.value {
            Value::List(l) => Ok(Some(l)),
            _ => Err(err::WRONGTYPE),
        },
    }
}

/// The list at `key` for reading (counts a hit or a miss).
fn list_ref<'a>(ks: &'a mut Keyspace, key: &[u8]) -> Result<Option<&'a List>, &'static str> {
    match ks.lookup_read(key) {
        None => Ok(None),
        Some(e) => match &e.value {
            Value::List(l) => Ok(Some(l)),
            _ => Err(err::WRONGTYPE),
        },
    }
}

fn bulk_item(out: &mut Out, item: Item<'_>) {
    match item {
        Item::Int(n) => out.bulk_int(n),
        Item::Str(s) => out.bulk(s),
    }
}

fn event(end: End, pop: bool) -> &'static str {
    match (end, pop) {
        (End::Head, false) => "lpush",
        (End::Tail, false) => "rpush",
        (End::Head, true) => "lpop",
        (End::Tail, true) => "rpop",
    }
}

/// Redis's `listElementsRemoved`: the pop event, deletion of an emptied list, dirty.
fn after_pop(ks: &mut Keyspace, key: &[u8], end: End, popped: usize, emptied: bool) {
    ks.notify('l', event(end, true), key);
    if emptied {
        delete(ks, key);
    }
    ks.signal_modified(key);
    ks.dirty(popped as u64);
}

/// Deletes an emptied list (Redis never keeps empty lists).
fn delete(ks: &mut Keyspace, key: &[u8]) {
    ks.remove(key);
    ks.notify('g', "del", key);
}

/// Deletes the list at `key` when it has no elements left.
fn delete_if_empty(ks: &mut Keyspace, key: &[u8]) {
    if matches!(list_mut(ks, key), Ok(Some(l)) if l.is_empty()) {
        delete(ks, key);
    }
}

/// `LEFT` or `RIGHT` (LMOVE, LMPOP and their blocking forms).
pub fn parse_end(arg: &[u8]) -> Result<End, &'static str> {
    if parse::eq(arg, "left") {
        Ok(End::Head)
    } else if parse::eq(arg, "right") {
        Ok(End::Tail)
    } else {
        Err(err::SYNTAX)
    }
}

// ----- Shard-local operations shared with the blocking commands. -----

/// Pops up to `count` elements from `end` of the list at `key`, head-most (or tail-most)
/// first, with the events, deletion and dirty count of LPOP/RPOP. Empty when the key is
/// absent.
pub fn pop(
    ks: &mut Keyspace,
    key: &[u8],
    end: End,
    count: usize,
) -> Result<Vec<Vec<u8>>, &'static str> {
    let Some(l) = list_mut(ks, key)? else {
        return Ok(Vec::new());
    };
    let values: Vec<Vec<u8>> = ends_iter(l, end).take(count).map(|i| i.to_vec()).collect();
    if values.is_empty() {
        return Ok(values);
    }
    l.remove_ends(end, values.len());
    let emptied = l.is_empty();
    after_pop(ks, key, end, values.len(), emptied);
    Ok(values)
}

/// The elements of `l` starting at `end`, moving inward.
fn ends_iter(l: &List, end: End) -> crate::storage::list::Iter<'_> {
    match end {
        End::Head => l.iter_from(0, true),
        End::Tail => l.iter_from(l.len().wrapping_sub(1), false),
    }
}

/// LMOVE's work: pops from `from` of `source` and pushes onto `to` of `destination`,
/// returning the element (`None` when the source is absent). A destination of another type
/// fails before anything changes. Source and destination may be the same list.
pub fn lmove(
    ks: &mut Keyspace,
    source: &[u8],
    destination: &[u8],
    from: End,
    to: End,
) -> Result<Option<Vec<u8>>, &'static str> {
    match list_mut(ks, source)? {
        Some(l) if !l.is_empty() => {}
        _ => return Ok(None),
    }
    list_mut(ks, destination)?;
    let Some(value) = list_mut(ks, source)?.and_then(|l| l.pop(from)) else {
        return Ok(None);
    };
    push_values(ks, destination, to, std::slice::from_ref(&value), false)?;
    ks.signal_modified(destination);
    ks.notify('l', event(to, false), destination);
    // The source may only be emptied now: when it is also the destination it is not.
    ks.notify('l', event(from, true), source);
    delete_if_empty(ks, source);
    ks.signal_modified(source);
    ks.dirty(1);
    Ok(Some(value))
}

/// What LMPOP popped: from which of its keys, and the elements.
pub struct Popped {
    pub key_index: usize,
    pub values: Vec<Vec<u8>>,
}

/// LMPOP's work: pops up to `count` elements from the first non-empty list of `keys`.
/// `None` when every key is absent; a key of another type met before a list fails the call.
pub fn mpop(
    ks: &mut Keyspace,
    keys: &[Bytes],
    end: End,
    count: usize,
) -> Result<Option<Popped>, &'static str> {
    for (key_index, key) in keys.iter().enumerate() {
        let values = pop(ks, key, end, count)?;
        if !values.is_empty() {
            return Ok(Some(Popped { key_index, values }));
        }
    }
    Ok(None)
}

/// Pushes `values` in order onto `end` of the list at `key`, creating it when absent (unless
/// `existing_only`). Returns the new length, `None` when nothing was pushed for want of a
/// list.
fn push_values<B: AsRef<[u8]>>(
    ks: &mut Keyspace,
    key: &[u8],
    end: End,
    values: &[B],
    existing_only: bool,
) -> Result<Option<usize>, &'static str> {
    let fill = Fill::current();
    if let Some(l) = list_mut(ks, key)? {
        values.iter().for_each(|v| l.push(end, v.as_ref(), fill));
        return Ok(Some(l.len()));
    }
    if existing_only {
        return Ok(None);
    }
    let mut l = List::new();
    values.iter().for_each(|v| l.push(end, v.as_ref(), fill));
    let len = l.len();
    ks.set(key, Value::List(l));
    Ok(Some(len))
}

// ----- Push and pop. -----

fn lpush(ks: &mut Keyspace, args: &Args, out: &mut Out) {
    push_command(ks, args, out, End::Head, false);
}

fn rpush(ks: &mut Keyspace, args: &Args, out: &mut Out) {
    push_command(ks, args, out, End::Tail, false);
}

fn lpushx(ks: &mut Keyspace, args: &Args, out: &mut Out) {
    push_command(ks, args, out, End::Head, true);
}

fn rpushx(ks: &mut Keyspace, args: &Args, out: &mut Out) {
    push_command(ks, args, out, End::Tail, true);
}

/// LPUSH/RPUSH/LPUSHX/RPUSHX (`existing_only` for the X forms).
fn push_command(ks: &mut Keyspace, args: &Args, out: &mut Out, end: End, existing_only: bool) {
    let key = &args[1];
    let values = &args[2..];
    let len = match push_values(ks, key, end, values, existing_only) {
        Err(e) => return out.error(e),
        Ok(None) => return out.int(0),
        Ok(Some(len)) => len,
    };
    ks.dirty(values.len() as u64);
    out.int(len as i64);
    ks.signal_modified(key);
    ks.notify('l', event(end, false), key);
}

fn lpop(ks: &mut Keyspace, args: &Args, out: &mut Out) {
    pop_command(ks, args, out, End::Head, "lpop");
}

fn rpop(ks: &mut Keyspace, args: &Args, out: &mut Out) {
    pop_command(ks, args, out, End::Tail, "rpop");
}

/// LPOP/RPOP `key [count]`: a bulk string without a count, an array with one. Replies are
/// written straight from the list, without copying the elements.
fn pop_command(ks: &mut Keyspace, args: &Args, out: &mut Out, end: End, name: &str) {
    if args.len() > 3 {
        return out.error(&err::wrong_args(name));
    }
    let count = match args
        .get(2)
        .map(|a| parse::i64_in(a, 0, i64::MAX, err::NOT_POSITIVE))
    {
        None => None,
        Some(Ok(n)) => Some(usize::try_from(n).unwrap_or(usize::MAX)),
        Some(Err(e)) => return out.error(e),
    };
    let key = &args[1];
    let l = match list_mut(ks, key) {
        Err(e) => return out.error(e),
        Ok(None) if count.is_some() => return out.null_array(),
        Ok(None) => return out.null(),
        Ok(Some(l)) => l,
    };
    let popped = match count {
        Some(0) => return out.array(0),
        Some(n) => {
            let n = n.min(l.len());
            out.array(n);
            ends_iter(l, end).take(n).for_each(|i| bulk_item(out, i));
            n
        }
        None => match l.peek(end) {
            Some(i) => {
                bulk_item(out, i);
                1
            }
            None => return out.null(),
        },
    };
    l.remove_ends(end, popped);
    let emptied = l.is_empty();
    after_pop(ks, key, end, popped, emptied);
}

/// `LMPOP numkeys key [key ...] LEFT|RIGHT [COUNT count]`, parsed.
pub struct MpopArgs {
    /// The index of the first key in the arguments and how many keys there are.
    pub first_key: usize,
    pub numkeys: usize,
    pub end: End,
    pub count: usize,
}

/// Parses LMPOP's arguments from `numkeys_idx` on (1 for LMPOP, 2 for BLMPOP), with Redis's
/// errors in Redis's order.
pub fn parse_mpop(args: &Args, numkeys_idx: usize) -> Result<MpopArgs, &'static str> {
    let numkeys_arg = args.get(numkeys_idx).ok_or(err::SYNTAX)?;
    let numkeys = parse::i64_in(numkeys_arg, 1, i64::MAX, err::NUMKEYS_NOT_POSITIVE)?;
    let numkeys = usize::try_from(numkeys).unwrap_or(usize::MAX);
    let end_idx = numkeys_idx.saturating_add(numkeys).saturating_add(1);
    let end = parse_end(args.get(end_idx).ok_or(err::SYNTAX)?)?;
    let mut count = None;
    let mut j = end_idx + 1;
    while j < args.len() {
        let more = j + 1 < args.len();
        if count.is_none() && more && parse::eq(&args[j], "count") {
            let n = parse::i64_in(&args[j + 1], 1, i64::MAX, err::COUNT_NOT_POSITIVE)?;
            count = Some(usize::try_from(n).unwrap_or(usize::MAX));
            j += 2;
        } else {
            return Err(err::SYNTAX);
        }
    }
    Ok(MpopArgs {
        first_key: numkeys_idx + 1,
        numkeys,
        end,
        count: count.unwrap_or(1),
    })
}

/// Key positions of an LMPOP-shaped command whose numkeys is at `numkeys_idx`; none when
/// numkeys is invalid or leaves no room for LEFT|RIGHT (the handler then fails before
/// touching any key).
pub fn mpop_keys_at(args: &Args, numkeys_idx: usize) -> Vec<usize> {
    let numkeys = args
        .get(numkeys_idx)
        .and_then(|a| parse::i64_arg(a).ok())
        .and_then(|n| usize::try_from(n).ok())
        .unwrap_or(0);
    let first = numkeys_idx + 1;
    if numkeys == 0 || first.saturating_add(numkeys) >= args.len() {
        return Vec::new();
    }
    (first..first + numkeys).collect()
}

fn lmpop_keys(args: &Args) -> Vec<usize> {
    mpop_keys_at(args, 1)
}

fn lmpop(ks: &mut Keyspace, args: &Args, out: &mut Out) {
    let parsed = match parse_mpop(args, 1) {
        Ok(p) => p,
        Err(e) => return out.error(e),
    };
    let keys = &args[parsed.first_key..parsed.first_key + parsed.numkeys];
    match mpop(ks, keys, parsed.end, parsed.count) {
        Err(e) => out.error(e),
        Ok(None) => out.null_array(),
        Ok(Some(p)) => {
            out.array(2);
            out.bulk(&keys[p.key_index]);
            out.bulks(p.values.iter());
            // Propagated as [LR]POP key count.
            let n = p.values.len() as i64;
            let k = keys[p.key_index].clone();
            ks.rewrite_as(|| {
                vec![
                    super::blocking::pop_name(parsed.end),
                    k,
                    super::prop::num(n),
                ]
            });
        }
    }
}

fn lmove_command(ks: &mut Keyspace, args: &Args, out: &mut Out) {
    let ends = parse_end(&args[3]).and_then(|from| Ok((from, parse_end(&args[4])?)));
    match ends {
        Ok((from, to)) => move_reply(ks, args, out, from, to),
        Err(e) => out.error(e),
    }
}

fn rpoplpush(ks: &mut Keyspace, args: &Args, out: &mut Out) {
    move_reply(ks, args, out, End::Tail, End::Head);
}

fn move_reply(ks: &mut Keyspace, args: &Args, out: &mut Out, from: End, to: End) {
    match lmove(ks, &args[1], &args[2], from, to) {
        Err(e) => out.error(e),
        Ok(None) => out.null(),
        Ok(Some(v)) => out.bulk(&v),
    }
}

// ----- Reads. -----

fn llen(ks: &mut Keyspace, args: &Args, out: &mut Out) {
    match list_ref(ks, &args[1]) {
        Err(e) => out.error(e),
        Ok(l) => out.int(l.map_or(0, |l| l.len() as i64)),
    }
}

/// Clamps Redis's inclusive `start..=stop` (negative from the end) to positions in a list of
/// `len`: `None` when the range is empty.
fn clamp_range(start: i64, stop: i64, len: usize) -> Option<(usize, usize)> {
    let len = len as i64;
    let start = if start < 0 {
        (len + start).max(0)
    } else {
        start
    };
    let stop = if stop < 0 { len + stop } else { stop };
    if start > stop || start >= len {
        return None;
    }
    let stop = stop.min(len - 1);
    Some((start as usize, (stop - start + 1) as usize))
}

fn lrange(ks: &mut Keyspace, args: &Args, out: &mut Out) {
    let range = parse::i64_arg(&args[2]).and_then(|s| Ok((s, parse::i64_arg(&args[3])?)));
    let (start, stop) = match range {
        Ok(r) => r,
        Err(e) => return out.error(e),
    };
    match list_ref(ks, &args[1]) {
        Err(e) => out.error(e),
        Ok(None) => out.array(0),
        Ok(Some(l)) => match clamp_range(start, stop, l.len()) {
            None => out.array(0),
            Some((first, n)) => {
                out.array(n);
                l.iter_from(first, true)
                    .take(n)
                    .for_each(|i| bulk_item(out, i));
            }
        },
    }
}

fn lindex(ks: &mut Keyspace, args: &Args, out: &mut Out) {
    let l = match list_ref(ks, &args[1]) {
        Err(e) => return out.error(e),
        Ok(None) => return out.null(),
        Ok(Some(l)) => l,
    };
    match parse::i64_arg(&args[2]) {
        Err(e) => out.error(e),
        Ok(index) => match l.get(index) {
            Some(i) => bulk_item(out, i),
            None => out.null(),
        },
    }
}

/// The options of LPOS, as Redis reads them.
struct LposOptions {
    rank: i64,
    /// `None`: no COUNT option (reply with one index, not an array); `Some(0)`: all.
    count: Option<i64>,
    /// 0: scan the whole list.
    maxlen: i64,
}

fn parse_lpos(args: &Args) -> Result<LposOptions, &'static str> {
    let mut o = LposOptions {
        rank: 1,
        count: None,
        maxlen: 0,
    };
    let mut j = 3;
    while j < args.len() {
        let opt = &args[j];
        let Some(value) = args.get(j + 1) else {
            return Err(err::SYNTAX);
        };
        if parse::eq(opt, "rank") {
            o.rank = parse::i64_arg(value)?;
            if o.rank == 0 {
                return Err(err::LPOS_RANK_ZERO);
            }
        } else if parse::eq(opt, "count") {
            o.count = Some(parse::i64_in(value, 0, i64::MAX, err::LPOS_COUNT_NEGATIVE)?);
        } else if parse::eq(opt, "maxlen") {
            o.maxlen = parse::i64_in(value, 0, i64::MAX, err::LPOS_MAXLEN_NEGATIVE)?;
        } else {
            return Err(err::SYNTAX);
        }
        j += 2;
    }
    Ok(o)
}

/// `LPOS key element [RANK rank] [COUNT num-matches] [MAXLEN len]`.
fn lpos(ks: &mut Keyspace, args: &Args, out: &mut Out) {
    let o = match parse_lpos(args) {
        Ok(o) => o,
        Err(e) => return out.error(e),
    };
    let l = match list_ref(ks, &args[1]) {
        Err(e) => return out.error(e),
        Ok(None) if o.count.is_some() => return out.array(0),
        Ok(None) => return out.null(),
        Ok(Some(l)) => l,
    };
    // A negative rank searches from the tail. Like Redis, the most negative rank stays
    // negative when flipped, and then every match qualifies.
    let forward = o.rank > 0;
    let rank = if forward {
        o.rank
    } else {
        o.rank.wrapping_neg()
    };
    let needle = Needle::new(&args[2]);
    let len = l.len();
    let scan = if o.maxlen == 0 {
        len
    } else {
        len.min(o.maxlen as usize)
    };
    let mut found = Vec::new();
    let mut matches: i64 = 0;
    let start = if forward { 0 } else { len.wrapping_sub(1) };
    for (i, item) in l.iter_from(start, forward).take(scan).enumerate() {
        if needle.matches(item) {
            matches += 1;
            if matches >= rank {
                found.push(if forward { i } else { len - 1 - i });
                // Redis's `matches - rank + 1 >= count`, overflow included: with the most
                // negative rank it never holds, and every match is returned.
                let enough = match o.count {
                    None => true,
                    Some(0) => false,
                    Some(c) => matches.wrapping_sub(rank).wrapping_add(1) >= c,
                };
                if enough {
                    break;
                }
            }
        }
    }
    match o.count {
        Some(_) => {
            out.array(found.len());
            found.iter().for_each(|&i| out.int(i as i64));
        }
        None => match found.first() {
            Some(&i) => out.int(i as i64),
            None => out.null(),
        },
    }
}

// ----- Changes in place. -----

fn lset(ks: &mut Keyspace, args: &Args, out: &mut Out) {
    let key = &args[1];
    let l = match list_mut(ks, key) {
        Err(e) => return out.error(e),
        Ok(None) => return out.error(err::NO_KEY),
        Ok(Some(l)) => l,
    };
    let index = match parse::i64_arg(&args[2]) {
        Ok(i) => i,
        Err(e) => return out.error(e),
    };
    if !l.set(index, &args[3], Fill::current()) {
        return out.error(err::INDEX_OUT_OF_RANGE);
    }
    out.ok();
    ks.signal_modified(key);
    ks.notify('l', "lset", key);
    ks.dirty(1);
}

/// `LINSERT key BEFORE|AFTER pivot element`: the new length, -1 without the pivot, 0 without
/// the key.
fn linsert(ks: &mut Keyspace, args: &Args, out: &mut Out) {
    let after = if parse::eq(&args[2], "after") {
        true
    } else if parse::eq(&args[2], "before") {
        false
    } else {
        return out.error(err::SYNTAX);
    };
    let key = &args[1];
    let l = match list_mut(ks, key) {
        Err(e) => return out.error(e),
        Ok(None) => return out.int(0),
        Ok(Some(l)) => l,
    };
    if !l.insert_by_pivot(&args[3], &args[4], after, Fill::current()) {
        return out.int(-1);
    }
    let len = l.len();
    ks.signal_modified(key);
    ks.notify('l', "linsert", key);
    ks.dirty(1);
    out.int(len as i64);
}

/// `LREM key count element`.
fn lrem(ks: &mut Keyspace, args: &Args, out: &mut Out) {
    let count = match parse::i64_arg(&args[2]) {
        Ok(c) => c,
        Err(e) => return out.error(e),
    };
    let key = &args[1];
    let (removed, emptied) = match list_mut(ks, key) {
        Err(e) => return out.error(e),
        Ok(None) => return out.int(0),
        Ok(Some(l)) => (l.remove_matching(&args[3], count), l.is_empty()),
    };
    ks.dirty(removed as u64);
    if removed > 0 {
        ks.signal_modified(key);
        ks.notify('l', "lrem", key);
    }
    if emptied {
        delete(ks, key);
    }
    out.int(removed as i64);
}

/// `LTRIM key start stop`: keeps the range, removes the rest; always OK.
fn ltrim(ks: &mut Keyspace, args: &Args, out: &mut Out) {
    let range = parse::i64_arg(&args[2]).and_then(|s| Ok((s, parse::i64_arg(&args[3])?)));
    let (start, stop) = match range {
        Ok(r) => r,
        Err(e) => return out.error(e),
    };
    let key = &args[1];
    let l = match list_mut(ks, key) {
        Err(e) => return out.error(e),
        Ok(None) => return out.ok(),
        Ok(Some(l)) => l,
    };
    let len = l.len();
    let (head, tail) = match clamp_range(start, stop, len) {
        None => (len, 0),
        Some((first, n)) => (first, len - first - n),
    };
    l.remove_ends(End::Head, head);
    l.remove_ends(End::Tail, tail);
    let emptied = l.is_empty();
    ks.notify('l', "ltrim", key);
    if emptied {
        delete(ks, key);
    }
    ks.signal_modified(key);
    ks.dirty((head + tail) as u64);
    out.ok();
}

#[cfg(test)]
#[path = "list_tests.rs"]
mod tests;
