//! Set commands: SADD, SREM, SCARD, SISMEMBER, SMISMEMBER, SMEMBERS, SRANDMEMBER, SPOP, SMOVE,
//! SINTER, SINTERCARD, SINTERSTORE, SUNION, SUNIONSTORE, SDIFF, SDIFFSTORE, SSCAN.
//!
//! Each handler follows Redis 7.0's `t_set.c` step by step, because clients and Redis's test
//! suite observe the details: which argument is validated before the key is looked up, which
//! error wins when several apply, the reply type (RESP3 sets `~` for SMEMBERS, SINTER, SUNION,
//! SDIFF and SPOP with a count; arrays for SRANDMEMBER with a count), the keyspace events and
//! their order, the `dirty` increments, and when a key is deleted (a set never stays empty).
//!
//! Multi-key commands (SMOVE, SINTER*, SUNION*, SDIFF*) run on a `Keyspace` holding every shard
//! their keys live on, locked, so they are atomic however the keys are spread. They first look
//! every source key up in argument order (lazy expiry, hit/miss statistics, the first key of
//! another type answers WRONGTYPE, as Redis's lookup loop does), then borrow all the sets at
//! once through `sets_of` to compute the result, and only then write the destination.
//!
//! The set type and its algorithms live in `storage::set`; this file parses, looks up,
//! replies and notifies. Randomness comes from the thread's generator (`storage::set::rng`).
//!
//! Deliberate differences from Redis:
//! - SPOP and SRANDMEMBER are not rewritten into SREM/DEL for replication and the AOF: the
//!   `Keyspace` has no propagation hook yet; whoever adds one must turn SPOP into the SREMs
//!   (or DEL) of the members it removed, as Redis does.
//! - SRANDMEMBER with a negative count asks for up to 2^63 replies; Redis streams them until
//!   the client's output limit closes it. A handler here builds its reply in memory, so counts
//!   above `RANDOM_REPLY_MEMBERS_MAX` are refused with an error instead.
//! - A hashtable set holds at most `MEMBERS_MAX` (2^32 − 2) members (its slot indices are
//!   32-bit to keep it small); writes past that answer `ERR set is full`.

use super::{err, flag, parse, prop, Cmd, Keys};
use crate::protocol::Out;
use crate::storage::set::{intset_entries_max, ops, rng, MemberRef, Set, SetFull, MEMBERS_MAX};
use crate::storage::value::parse_canonical_i64;
use crate::storage::{key_slot, slot_owner, Keyspace, Value};
use bytes::Bytes;

const R: u32 = flag::READONLY;
const RF: u32 = flag::READONLY | flag::FAST;
const WF: u32 = flag::WRITE | flag::FAST;
const WD: u32 = flag::WRITE | flag::DENYOOM;

const READ_FAST: &[&str] = &["read", "set", "fast"];
const READ_SLOW: &[&str] = &["read", "set", "slow"];
const WRITE_FAST: &[&str] = &["write", "set", "fast"];
const WRITE_SLOW: &[&str] = &["write", "set", "slow"];

/// The most members one SRANDMEMBER reply with a negative count may hold (see the module
/// comment): 64 Mi members is already hundreds of megabytes of reply.
pub const RANDOM_REPLY_MEMBERS_MAX: u64 = 1 << 26;

/// SRANDMEMBER's count is a `long` in `-LONG_MAX..=LONG_MAX`.
const SRANDMEMBER_COUNT_MIN: i64 = -i64::MAX;

/// Redis's `SPOP_MOVE_STRATEGY_MUL` and `SRANDMEMBER_SUB_STRATEGY_MUL`.
const SPOP_MOVE_STRATEGY_MUL: u64 = 5;
const SRANDMEMBER_SUB_STRATEGY_MUL: u64 = 3;

pub static COMMANDS: [Cmd; 17] = [
    Cmd::data("sadd", -3, WD | flag::FAST, Keys::Range(1, 1, 1), sadd).with_acl(WRITE_FAST),
    Cmd::data("srem", -3, WF, Keys::Range(1, 1, 1), srem).with_acl(WRITE_FAST),
    Cmd::data("scard", 2, RF, Keys::Range(1, 1, 1), scard).with_acl(READ_FAST),
    Cmd::data("sismember", 3, RF, Keys::Range(1, 1, 1), sismember).with_acl(READ_FAST),
    Cmd::data("smismember", -3, RF, Keys::Range(1, 1, 1), smismember).with_acl(READ_FAST),
    Cmd::data("smembers", 2, R, Keys::Range(1, 1, 1), smembers).with_acl(READ_SLOW),
    Cmd::data("srandmember", -2, R, Keys::Range(1, 1, 1), srandmember).with_acl(READ_SLOW),
    Cmd::data("spop", -2, WF, Keys::Range(1, 1, 1), spop).with_acl(WRITE_FAST),
    Cmd::data("smove", 4, WF, Keys::Range(1, 2, 1), smove).with_acl(WRITE_FAST),
    Cmd::data("sinter", -2, R, Keys::Range(1, -1, 1), sinter).with_acl(READ_SLOW),
    Cmd::data("sintercard", -3, R, Keys::Custom(numkeys_keys), sintercard).with_acl(READ_SLOW),
    Cmd::data("sinterstore", -3, WD, Keys::Range(1, -1, 1), sinterstore).with_acl(WRITE_SLOW),
    Cmd::data("sunion", -2, R, Keys::Range(1, -1, 1), sunion).with_acl(READ_SLOW),
    Cmd::data("sunionstore", -3, WD, Keys::Range(1, -1, 1), sunionstore).with_acl(WRITE_SLOW),
    Cmd::data("sdiff", -2, R, Keys::Range(1, -1, 1), sdiff).with_acl(READ_SLOW),
    Cmd::data("sdiffstore", -3, WD, Keys::Range(1, -1, 1), sdiffstore).with_acl(WRITE_SLOW),
    Cmd::data("sscan", -3, R, Keys::Range(1, 1, 1), sscan).with_acl(READ_SLOW),
];

/// Key positions of `CMD numkeys key...` (SINTERCARD): none when numkeys is not a positive
/// integer, and never past the arguments (the handler reports both errors).
pub fn numkeys_keys(args: &[Bytes]) -> Vec<usize> {
    let n = args
        .get(1)
        .and_then(|a| parse_canonical_i64(a))
        .unwrap_or(0);
    if n < 1 {
        return Vec::new();
    }
    let end = args.len().min(2usize.saturating_add(n as usize));
    (2..end).collect()
}

/// A key holds a value of another type.
struct WrongType;

/// Looks a set up for reading (Redis's `lookupKeyRead` + `checkType`).
fn read_set<'a>(ks: &'a mut Keyspace, key: &[u8]) -> Result<Option<&'a Set>, WrongType> {
    match ks.lookup_read(key) {
        None => Ok(None),
        Some(e) => match &e.value {
            Value::Set(s) => Ok(Some(s)),
            _ => Err(WrongType),
        },
    }
}

/// Looks a set up for writing (Redis's `lookupKeyWrite` + `checkType`).
fn write_set<'a>(ks: &'a mut Keyspace, key: &[u8]) -> Result<Option<&'a mut Set>, WrongType> {
    match ks.lookup_write(key) {
        None => Ok(None),
        Some(e) => match &mut e.value {
            Value::Set(s) => Ok(Some(s)),
            _ => Err(WrongType),
        },
    }
}

/// Looks every key up for reading, in order, stopping at the first key of another type.
fn check_sets(ks: &mut Keyspace, keys: &[Bytes]) -> Result<(), WrongType> {
    for k in keys {
        read_set(ks, k)?;
    }
    Ok(())
}

/// The sets under `keys`, borrowed together (`None` for a missing key or another type; call
/// `check_sets` first so expired keys are gone and types are checked). Reads the locked
/// shards directly: `Keyspace`'s lookups take `&mut self` and so lend one value at a time.
fn sets_of<'a>(ks: &'a Keyspace, keys: &[Bytes]) -> Vec<Option<&'a Set>> {
    let shards = ks.shards();
    let (db, nshards) = (ks.db, ks.nshards());
    keys.iter()
        .map(|k| {
            let slot = key_slot(k);
            let owner = slot_owner(slot, nshards);
            let shard = shards.iter().find(|s| s.id == owner)?;
            match &shard.dbs.get(db)?.get(slot, k)?.value {
                Value::Set(s) => Some(&**s),
                _ => None,
            }
        })
        .collect()
}

fn bulk_member(out: &mut Out, m: MemberRef) {
    match m {
        MemberRef::Int(n) => out.bulk_int(n),
        MemberRef::Bytes(b) => out.bulk(b),
    }
}

/// A member as propagated bytes.
fn member_bytes(m: MemberRef) -> Bytes {
    match m {
        MemberRef::Int(n) => prop::num(n),
        MemberRef::Bytes(b) => Bytes::copy_from_slice(b),
    }
}

/// Replies with every member of `s` as a set.
fn reply_members(out: &mut Out, s: &Set) {
    out.set(s.len());
    for m in s.iter() {
        bulk_member(out, m);
    }
}

/// Deletes `key` because a command emptied it: Redis's `dbDelete` + the "del" event.
fn delete_emptied(ks: &mut Keyspace, key: &[u8]) {
    ks.remove(key);
    ks.notify('g', "del", key);
}

fn sadd(ks: &mut Keyspace, args: &[Bytes], out: &mut Out) {
    let key = &args[1];
    let members = &args[2..];
    let add_all = |s: &mut Set| -> (u64, Result<(), SetFull>) {
        let mut added = 0;
        for m in members {
            match s.add(m) {
                Ok(true) => added += 1,
                Ok(false) => {}
                Err(e) => return (added, Err(e)),
            }
        }
        (added, Ok(()))
    };
    let (added, res) = match write_set(ks, key) {
        Err(WrongType) => return out.error(err::WRONGTYPE),
        Ok(Some(s)) => add_all(s),
        Ok(None) => {
            let mut s = Set::new_for(members.first().map_or(&b""[..], |m| m));
            let r = add_all(&mut s);
            if !s.is_empty() {
                ks.set(key, Value::Set(Box::new(s)));
            }
            r
        }
    };
    if added > 0 {
        ks.signal_modified(key);
        ks.notify('s', "sadd", key);
    }
    ks.dirty(added);
    match res {
        Ok(()) => out.int(added as i64),
        Err(SetFull) => out.error(err::SET_FULL),
    }
}

fn srem(ks: &mut Keyspace, args: &[Bytes], out: &mut Out) {
    let key = &args[1];
    let (deleted, emptied) = match write_set(ks, key) {
        Err(WrongType) => return out.error(err::WRONGTYPE),
        Ok(None) => return out.int(0),
        Ok(Some(s)) => {
            let mut deleted = 0u64;
            for m in &args[2..] {
                if s.remove(m) {
                    deleted += 1;
                    if s.is_empty() {
                        break;
                    }
                }
            }
            (deleted, s.is_empty())
        }
    };
    if deleted > 0 {
        if emptied {
            ks.remove(key);
        }
        ks.signal_modified(key);
        ks.notify('s', "srem", key);
        if emptied {
            ks.notify('g', "del", key);
        }
        ks.dirty(deleted);
    }
    out.int(deleted as i64);
}

fn scard(ks: &mut Keyspace, args: &[Bytes], out: &mut Out) {
    match read_set(ks, &args[1]) {
        Err(WrongType) => out.error(err::WRONGTYPE),
        Ok(s) => out.int(s.map_or(0, |s| s.len() as i64)),
    }
}

fn sismember(ks: &mut Keyspace, args: &[Bytes], out: &mut Out) {
    match read_set(ks, &args[1]) {
        Err(WrongType) => out.error(err::WRONGTYPE),
        Ok(s) => out.int(s.is_some_and(|s| s.contains(&args[2])) as i64),
    }
}

fn smismember(ks: &mut Keyspace, args: &[Bytes], out: &mut Out) {
    match read_set(ks, &args[1]) {
        Err(WrongType) => out.error(err::WRONGTYPE),
        Ok(s) => {
            out.array(args.len() - 2);
            for m in &args[2..] {
                out.int(s.is_some_and(|s| s.contains(m)) as i64);
            }
        }
    }
}

/// SMEMBERS is SINTER of one key in Redis; one set needs no intersecting.
fn smembers(ks: &mut Keyspace, args: &[Bytes], out: &mut Out) {
    match read_set(ks, &args[1]) {
        Err(WrongType) => out.error(err::WRONGTYPE),
        Ok(None) => out.set(0),
        Ok(Some(s)) => reply_members(out, s),
    }
}

fn srandmember(ks: &mut Keyspace, args: &[Bytes], out: &mut Out) {
    match args.len() {
        3 => return srandmember_count(ks, args, out),
        n if n > 3 => return out.error(err::SYNTAX),
        _ => {}
    }
    match read_set(ks, &args[1]) {
        Err(WrongType) => out.error(err::WRONGTYPE),
        Ok(None) => out.null(),
        Ok(Some(s)) => {
            let i = rng::with_thread(|r| s.random_index(r));
            match s.get(i) {
                Some(m) => bulk_member(out, m),
                None => out.null(),
            }
        }
    }
}

/// SRANDMEMBER key count: Redis's four cases. A negative count samples with repetition; a
/// positive one returns distinct members: the whole set when the count reaches its size;
/// when the count is close to the size, all members minus random ones; otherwise random
/// draws until enough distinct members were found.
fn srandmember_count(ks: &mut Keyspace, args: &[Bytes], out: &mut Out) {
    let l = match parse::i64_arg(&args[2]) {
        Err(e) => return out.error(e),
        Ok(l) if l < SRANDMEMBER_COUNT_MIN => {
            return out.error(&err::out_of_range(SRANDMEMBER_COUNT_MIN, i64::MAX))
        }
        Ok(l) => l,
    };
    let (count, unique) = (l.unsigned_abs(), l >= 0);
    let s = match read_set(ks, &args[1]) {
        Err(WrongType) => return out.error(err::WRONGTYPE),
        Ok(None) => return out.array(0),
        Ok(Some(s)) => s,
    };
    let size = s.len() as u64;
    if count == 0 {
        return out.array(0);
    }
    if !unique || count == 1 {
        if count > RANDOM_REPLY_MEMBERS_MAX {
            return out.error(&err::reply_members_over(RANDOM_REPLY_MEMBERS_MAX));
        }
        out.array(count as usize);
        return rng::with_thread(|r| {
            for _ in 0..count {
                if let Some(m) = s.get(s.random_index(r)) {
                    bulk_member(out, m);
                }
            }
        });
    }
    if count >= size {
        out.array(s.len());
        return s.iter().for_each(|m| bulk_member(out, m));
    }
    let picked = rng::with_thread(|r| distinct_indices(s.len(), count as usize, r));
    out.array(picked.len());
    for i in picked {
        if let Some(m) = s.get(i) {
            bulk_member(out, m);
        }
    }
}

/// `count` distinct random indices below `size` (`count < size`), by Redis's cases 3 and 4.
fn distinct_indices(size: usize, count: usize, r: &mut rng::Rng) -> Vec<usize> {
    if count as u64 * SRANDMEMBER_SUB_STRATEGY_MUL > size as u64 {
        // Case 3: start from everything and drop random members down to `count`.
        let mut all: Vec<usize> = (0..size).collect();
        while all.len() > count {
            let i = r.index(all.len());
            all.swap_remove(i);
        }
        all
    } else {
        // Case 4: draw until `count` distinct indices were seen.
        let mut seen = hashbrown::HashSet::with_capacity(count);
        let mut picked = Vec::with_capacity(count);
        while picked.len() < count {
            let i = r.index(size);
            if seen.insert(i) {
                picked.push(i);
            }
        }
        picked
    }
}

fn spop(ks: &mut Keyspace, args: &[Bytes], out: &mut Out) {
    match args.len() {
        3 => return spop_count(ks, args, out),
        n if n > 3 => return out.error(err::SYNTAX),
        _ => {}
    }
    let key = &args[1];
    let mut popped = None;
    let emptied = match write_set(ks, key) {
        Err(WrongType) => return out.error(err::WRONGTYPE),
        Ok(None) => return out.null(),
        Ok(Some(s)) => {
            let i = rng::with_thread(|r| s.random_index(r));
            if let Some(m) = s.get(i) {
                bulk_member(out, m);
                popped = Some(member_bytes(m));
            }
            s.remove_at(i);
            s.is_empty()
        }
    };
    // Propagated as SREM of the member drawn.
    if let Some(m) = popped {
        ks.rewrite_as(|| vec![prop::lit("SREM"), key.clone(), m]);
    }
    ks.notify('s', "spop", key);
    if emptied {
        delete_emptied(ks, key);
    }
    ks.signal_modified(key);
    ks.dirty(1);
}

/// SPOP key count: Redis's three cases. The whole set when the count reaches its size;
/// random removals when few members are taken; otherwise the members that stay are drawn
/// into a new set (which starts as an intset, as Redis's does) and the rest is returned.
fn spop_count(ks: &mut Keyspace, args: &[Bytes], out: &mut Out) {
    let count = match parse::i64_arg(&args[2]) {
        Ok(n) if n >= 0 => n as u64,
        _ => return out.error(err::NOT_POSITIVE),
    };
    let key = &args[1];
    let propagating = ks.propagating();
    let s = match write_set(ks, key) {
        Err(WrongType) => return out.error(err::WRONGTYPE),
        Ok(None) => return out.set(0),
        Ok(Some(s)) => s,
    };
    if count == 0 {
        return out.set(0);
    }
    let size = s.len() as u64;
    if count >= size {
        reply_members(out, s);
        // The whole set: propagated as DEL.
        ks.rewrite_as(|| prop::deletion(key, false));
        ks.notify('s', "spop", key);
        ks.dirty(size);
        delete_emptied(ks, key);
        ks.signal_modified(key);
        return;
    }
    let remaining = size - count;
    out.set(count as usize);
    // Propagated as one SREM per member popped, never as SPOP.
    let mut popped = Vec::new();
    rng::with_thread(|r| {
        if remaining * SPOP_MOVE_STRATEGY_MUL > count {
            for _ in 0..count {
                let i = s.random_index(r);
                if let Some(m) = s.get(i) {
                    bulk_member(out, m);
                    if propagating {
                        popped.push(member_bytes(m));
                    }
                }
                s.remove_at(i);
            }
        } else {
            let kept = take_random(s, remaining as usize, r);
            s.iter().for_each(|m| {
                bulk_member(out, m);
                if propagating {
                    popped.push(member_bytes(m));
                }
            });
            *s = kept;
        }
    });
    for m in popped {
        ks.also_propagate(|| vec![prop::lit("SREM"), key.clone(), m]);
    }
    ks.suppress_propagation();
    ks.notify('s', "spop", key);
    ks.dirty(count);
    ks.signal_modified(key);
}

/// Moves `n` random members of `s` (fewer than its size) into a new set.
fn take_random(s: &mut Set, n: usize, r: &mut rng::Rng) -> Set {
    let max = intset_entries_max();
    // Redis creates the new set for the first member drawn and adds the rest; starting from
    // an empty intset ends in the same encoding whatever that member is.
    let mut kept = Set::new_intset();
    for _ in 0..n {
        let i = s.random_index(r);
        if let Some(m) = s.get(i) {
            // `kept` holds fewer members than `s` had, so it cannot be full.
            let _ = kept.add_ref(m, max);
        }
        s.remove_at(i);
    }
    kept
}

/// What a key holds, for commands that check several keys before changing any.
#[derive(PartialEq)]
enum Holds {
    Nothing,
    Set,
    Other,
}

fn holds(ks: &mut Keyspace, key: &[u8]) -> Holds {
    match write_set(ks, key) {
        Ok(None) => Holds::Nothing,
        Ok(Some(_)) => Holds::Set,
        Err(WrongType) => Holds::Other,
    }
}

fn smove(ks: &mut Keyspace, args: &[Bytes], out: &mut Out) {
    let (src, dst, member) = (&args[1], &args[2], &args[3]);
    let (src_holds, dst_holds) = (holds(ks, src), holds(ks, dst));
    if src_holds == Holds::Nothing {
        return out.int(0);
    }
    if src_holds == Holds::Other || dst_holds == Holds::Other {
        return out.error(err::WRONGTYPE);
    }
    if src == dst {
        let is_member = matches!(write_set(ks, src), Ok(Some(s)) if s.contains(member));
        return out.int(is_member as i64);
    }
    if let Ok(Some(d)) = write_set(ks, dst) {
        if d.len() >= MEMBERS_MAX && !d.contains(member) {
            return out.error(err::SET_FULL);
        }
    }
    let src_emptied = match write_set(ks, src) {
        Ok(Some(s)) if s.contains(member) => {
            s.remove(member);
            s.is_empty()
        }
        _ => return out.int(0),
    };
    ks.notify('s', "srem", src);
    if src_emptied {
        delete_emptied(ks, src);
    }
    let added = match write_set(ks, dst) {
        Ok(Some(d)) => d.add(member).unwrap_or(false),
        _ => {
            let mut d = Set::new_for(member);
            let added = d.add(member).unwrap_or(false);
            ks.set(dst, Value::Set(Box::new(d)));
            added
        }
    };
    ks.signal_modified(src);
    ks.dirty(1);
    if added {
        ks.dirty(1);
        ks.signal_modified(dst);
        ks.notify('s', "sadd", dst);
    }
    out.int(1);
}

/// SINTER: the members of the intersection, in the smallest set's order.
fn inter_reply(ks: &mut Keyspace, keys: &[Bytes], out: &mut Out) {
    if check_sets(ks, keys).is_err() {
        return out.error(err::WRONGTYPE);
    }
    let sets = sets_of(ks, keys);
    let Some(present) = sets.into_iter().collect::<Option<Vec<&Set>>>() else {
        return out.set(0);
    };
    let mut members = Vec::new();
    ops::intersect_each(&present, |m| {
        members.push(m);
        true
    });
    out.set(members.len());
    for m in members {
        bulk_member(out, m);
    }
}

fn sinter(ks: &mut Keyspace, args: &[Bytes], out: &mut Out) {
    inter_reply(ks, &args[1..], out);
}

fn sintercard(ks: &mut Keyspace, args: &[Bytes], out: &mut Out) {
    let numkeys = match parse::i64_arg(&args[1]) {
        Ok(n) if n >= 1 => n as u64,
        _ => return out.error(err::NUMKEYS_NOT_POSITIVE),
    };
    if numkeys > (args.len() - 2) as u64 {
        return out.error(err::NUMKEYS_OVER_ARGS);
    }
    let keys_end = 2 + numkeys as usize;
    let mut limit = 0u64;
    let mut i = keys_end;
    while i < args.len() {
        if parse::eq(&args[i], "limit") && i + 1 < args.len() {
            limit = match parse::i64_arg(&args[i + 1]) {
                Ok(n) if n >= 0 => n as u64,
                _ => return out.error(err::LIMIT_NEGATIVE),
            };
            i += 2;
        } else {
            return out.error(err::SYNTAX);
        }
    }
    let keys = &args[2..keys_end];
    if check_sets(ks, keys).is_err() {
        return out.error(err::WRONGTYPE);
    }
    let sets = sets_of(ks, keys);
    let n = match sets.into_iter().collect::<Option<Vec<&Set>>>() {
        Some(present) => ops::inter_card(&present, limit.min(usize::MAX as u64) as usize),
        None => 0,
    };
    out.int(n as i64);
}

#[derive(Clone, Copy, PartialEq)]
enum Algebra {
    Inter,
    Union,
    Diff,
}

/// The result of an operation over the sets under `keys` (type-checked already).
fn compute(ks: &Keyspace, keys: &[Bytes], op: Algebra) -> Result<Set, SetFull> {
    let sets = sets_of(ks, keys);
    match op {
        Algebra::Inter => match sets.into_iter().collect::<Option<Vec<&Set>>>() {
            Some(present) => ops::inter(&present),
            None => Ok(Set::new_intset()),
        },
        Algebra::Union => ops::union(&sets),
        Algebra::Diff => ops::diff(&sets),
    }
}

/// SUNION and SDIFF.
fn algebra_reply(ks: &mut Keyspace, keys: &[Bytes], op: Algebra, out: &mut Out) {
    if check_sets(ks, keys).is_err() {
        return out.error(err::WRONGTYPE);
    }
    match compute(ks, keys, op) {
        Ok(s) => reply_members(out, &s),
        Err(SetFull) => out.error(err::SET_FULL),
    }
}

/// SINTERSTORE, SUNIONSTORE and SDIFFSTORE: the result replaces `dst` whatever it held (and
/// its expiry); an empty result deletes `dst`.
fn algebra_store(ks: &mut Keyspace, args: &[Bytes], op: Algebra, out: &mut Out) {
    let (dst, keys) = (&args[1], &args[2..]);
    if check_sets(ks, keys).is_err() {
        return out.error(err::WRONGTYPE);
    }
    let result = match compute(ks, keys, op) {
        Ok(s) => s,
        Err(SetFull) => return out.error(err::SET_FULL),
    };
    let n = result.len();
    if n > 0 {
        ks.set(dst, Value::Set(Box::new(result)));
        ks.signal_modified(dst);
        let event = match op {
            Algebra::Inter => "sinterstore",
            Algebra::Union => "sunionstore",
            Algebra::Diff => "sdiffstore",
        };
        ks.notify('s', event, dst);
        ks.dirty(1);
    } else if ks.remove(dst).is_some() {
        ks.signal_modified(dst);
        ks.notify('g', "del", dst);
        ks.dirty(1);
    }
    out.int(n as i64);
}

fn sinterstore(ks: &mut Keyspace, args: &[Bytes], out: &mut Out) {
    algebra_store(ks, args, Algebra::Inter, out);
}

fn sunion(ks: &mut Keyspace, args: &[Bytes], out: &mut Out) {
    algebra_reply(ks, &args[1..], Algebra::Union, out);
}

fn sunionstore(ks: &mut Keyspace, args: &[Bytes], out: &mut Out) {
    algebra_store(ks, args, Algebra::Union, out);
}

fn sdiff(ks: &mut Keyspace, args: &[Bytes], out: &mut Out) {
    algebra_reply(ks, &args[1..], Algebra::Diff, out);
}

fn sdiffstore(ks: &mut Keyspace, args: &[Bytes], out: &mut Out) {
    algebra_store(ks, args, Algebra::Diff, out);
}

/// A SCAN-family cursor as Redis's `parseScanCursorOrReply` reads it: `strtoul` in base 10
/// (an optional sign, a negative value wrapping around, the empty string meaning 0), with no
/// leading space and nothing after the digits.
pub fn parse_scan_cursor(b: &[u8]) -> Option<u64> {
    let Some(&first) = b.first() else {
        return Some(0);
    };
    if matches!(first, b' ' | b'\t' | b'\n' | b'\x0b' | b'\x0c' | b'\r') {
        return None;
    }
    let (neg, digits) = match first {
        b'-' => (true, &b[1..]),
        b'+' => (false, &b[1..]),
        _ => (false, b),
    };
    if digits.is_empty() {
        return None;
    }
    let mut v: u64 = 0;
    for &c in digits {
        if !c.is_ascii_digit() {
            return None;
        }
        v = v.checked_mul(10)?.checked_add(u64::from(c - b'0'))?;
    }
    Some(if neg { v.wrapping_neg() } else { v })
}

fn sscan(ks: &mut Keyspace, args: &[Bytes], out: &mut Out) {
    let Some(cursor) = parse_scan_cursor(&args[2]) else {
        return out.error(err::INVALID_CURSOR);
    };
    let s = match read_set(ks, &args[1]) {
        Err(WrongType) => return out.error(err::WRONGTYPE),
        Ok(None) => {
            out.array(2);
            out.bulk(b"0");
            return out.array(0);
        }
        Ok(Some(s)) => s,
    };
    let mut count: i64 = 10;
    let mut pattern: Option<&[u8]> = None;
    let mut i = 3;
    while i < args.len() {
        let has_value = i + 1 < args.len();
        if parse::eq(&args[i], "count") && has_value {
            count = match parse::i64_arg(&args[i + 1]) {
                Ok(n) if n >= 1 => n,
                Ok(_) => return out.error(err::SYNTAX),
                Err(e) => return out.error(e),
            };
        } else if parse::eq(&args[i], "match") && has_value {
            let p = &args[i + 1][..];
            pattern = if p == b"*" { None } else { Some(p) };
        } else {
            return out.error(err::SYNTAX);
        }
        i += 2;
    }
    let mut found = Vec::new();
    let next = s.scan(cursor, count as usize, |m| {
        let keep = pattern.is_none_or(|p| m.with_bytes(|b| crate::util::glob_match(p, b, false)));
        if keep {
            found.push(m);
        }
    });
    out.array(2);
    out.bulk_int(next as i64);
    out.array(found.len());
    for m in found {
        bulk_member(out, m);
    }
}

#[cfg(test)]
mod tests;
