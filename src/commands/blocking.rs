//! Blocking pops: BLPOP, BRPOP, BLMOVE, BRPOPLPUSH, BLMPOP, BZPOPMIN, BZPOPMAX, BZMPOP.
//!
//! Each handler first tries the non-blocking operation. When every key is empty it asks to
//! block (`ks.block`), and the engine registers the client on its keys while their shards are
//! still locked (`storage::blocking`). When a key is written, the engine calls the command's
//! serve function with that key, which pops for the client exactly like the non-blocking
//! command would. Inside MULTI or a script (`ks.no_block`) nothing blocks: the reply is the
//! timeout reply.

use super::list::{self, lmove, mpop, parse_end, parse_mpop};
use super::{err, flag, prop, zset, Cmd, Keys};
use crate::protocol::Out;
use crate::storage::blocking::{BlockRequest, NullReply, ServeFn, WaitFor};
use crate::storage::list::End;
use crate::storage::{Keyspace, Value};
use bytes::Bytes;

const BW: u32 = flag::WRITE | flag::BLOCKING;
/// Redis 7.0 refuses these in scripts (`noscript`); BLMPOP and BZMPOP are allowed.
const BWN: u32 = BW | flag::NOSCRIPT;
const ACL: &[&str] = &["write", "list", "slow", "blocking"];

const ZACL: &[&str] = &["write", "sortedset", "fast", "blocking"];

pub static COMMANDS: [Cmd; 8] = [
    Cmd::data(
        "bzpopmin",
        -3,
        BWN | flag::FAST,
        Keys::Range(1, -2, 1),
        bzpop,
    )
    .with_acl(ZACL),
    Cmd::data(
        "bzpopmax",
        -3,
        BWN | flag::FAST,
        Keys::Range(1, -2, 1),
        bzpop,
    )
    .with_acl(ZACL),
    Cmd::data("bzmpop", -5, BW, Keys::Custom(bzmpop_keys), bzmpop).with_acl(&[
        "write",
        "sortedset",
        "slow",
        "blocking",
    ]),
    Cmd::data("blpop", -3, BWN, Keys::Range(1, -2, 1), blpop).with_acl(ACL),
    Cmd::data("brpop", -3, BWN, Keys::Range(1, -2, 1), brpop).with_acl(ACL),
    Cmd::data(
        "blmove",
        6,
        BWN | flag::DENYOOM,
        Keys::Range(1, 2, 1),
        blmove,
    )
    .with_acl(ACL),
    Cmd::data(
        "brpoplpush",
        4,
        BWN | flag::DENYOOM,
        Keys::Range(1, 2, 1),
        brpoplpush,
    )
    .with_acl(ACL),
    Cmd::data("blmpop", -5, BW, Keys::Custom(blmpop_keys), blmpop).with_acl(ACL),
];

/// Redis's `getTimeoutFromObjectOrReply` in seconds: the absolute deadline in ms, 0 = none.
pub fn parse_timeout(arg: &[u8], now_ms: u64) -> Result<u64, &'static str> {
    let secs = super::parse::parse_f64(arg).ok_or("ERR timeout is not a float or out of range")?;
    let ms = (secs * 1000.0).ceil();
    if ms > i64::MAX as f64 {
        return Err("ERR timeout is out of range");
    }
    if ms < 0.0 {
        return Err("ERR timeout is negative");
    }
    let ms = ms as u64;
    if ms == 0 {
        return Ok(0);
    }
    if ms > i64::MAX as u64 - now_ms {
        return Err("ERR timeout is out of range");
    }
    Ok(now_ms + ms)
}

/// Fails with WRONGTYPE if any key holds something other than a list (checked in order, as
/// Redis does before blocking).
fn check_lists(ks: &mut Keyspace, keys: &[Bytes]) -> Result<(), &'static str> {
    for k in keys {
        if let Some(e) = ks.peek(k) {
            if !matches!(e.value, Value::List(_)) {
                return Err(err::WRONGTYPE);
            }
        }
    }
    Ok(())
}

#[allow(clippy::too_many_arguments)]
fn block_for(
    ks: &mut Keyspace,
    keys: &[Bytes],
    deadline: u64,
    wait_for: WaitFor,
    null: NullReply,
    serve: ServeFn,
    extra: Option<Bytes>,
    out: &mut Out,
) {
    if ks.no_block {
        match null {
            NullReply::Array => out.null_array(),
            NullReply::Bulk => out.null(),
        }
        return;
    }
    ks.block = Some(BlockRequest {
        keys: keys.to_vec(),
        deadline_ms: deadline,
        wait_for,
        null,
        serve,
        extra_key: extra,
        args: None,
    });
}

fn block(
    ks: &mut Keyspace,
    keys: &[Bytes],
    deadline: u64,
    null: NullReply,
    serve: ServeFn,
    extra: Option<Bytes>,
    out: &mut Out,
) {
    block_for(ks, keys, deadline, WaitFor::List, null, serve, extra, out)
}

/// LPOP or RPOP: how a pop from `end` propagates.
pub fn pop_name(end: End) -> Bytes {
    prop::lit(if end == End::Tail { "RPOP" } else { "LPOP" })
}

/// ZPOPMIN or ZPOPMAX.
fn zpop_name(max: bool) -> Bytes {
    prop::lit(if max { "ZPOPMAX" } else { "ZPOPMIN" })
}

fn end_of(cmd: &[u8]) -> End {
    if cmd.eq_ignore_ascii_case(b"brpop") {
        End::Tail
    } else {
        End::Head
    }
}

fn bpop(ks: &mut Keyspace, args: &[Bytes], out: &mut Out) {
    let deadline = match parse_timeout(&args[args.len() - 1], ks.now_ms) {
        Ok(d) => d,
        Err(e) => return out.error(e),
    };
    let keys = &args[1..args.len() - 1];
    // Keys are tried in order: a key of another type fails the call only when no list before
    // it had elements (as Redis's blockingPopGenericCommand walks them).
    let end = end_of(&args[0]);
    for k in keys {
        match list::pop(ks, k, end, 1) {
            Err(e) => return out.error(e),
            Ok(v) if !v.is_empty() => {
                out.array(2);
                out.bulk(k);
                out.bulk(&v[0]);
                ks.rewrite_as(|| vec![pop_name(end), k.clone()]);
                return;
            }
            Ok(_) => {}
        }
    }
    block(ks, keys, deadline, NullReply::Array, serve_bpop, None, out);
}

fn blpop(ks: &mut Keyspace, args: &[Bytes], out: &mut Out) {
    bpop(ks, args, out)
}

fn brpop(ks: &mut Keyspace, args: &[Bytes], out: &mut Out) {
    bpop(ks, args, out)
}

fn serve_bpop(ks: &mut Keyspace, key: &[u8], args: &[Bytes], out: &mut Out) {
    let end = end_of(&args[0]);
    match list::pop(ks, key, end, 1) {
        Ok(v) if !v.is_empty() => {
            ks.also_propagate(|| vec![pop_name(end), Bytes::copy_from_slice(key)]);
            out.array(2);
            out.bulk(key);
            out.bulk(&v[0]);
        }
        Ok(_) => out.null_array(),
        Err(e) => out.error(e),
    }
}

/// (from, to) of BLMOVE / BRPOPLPUSH.
fn move_ends(args: &[Bytes]) -> Result<(End, End), &'static str> {
    if args[0].eq_ignore_ascii_case(b"brpoplpush") {
        return Ok((End::Tail, End::Head));
    }
    Ok((parse_end(&args[3])?, parse_end(&args[4])?))
}

fn bmove(ks: &mut Keyspace, args: &[Bytes], out: &mut Out) {
    let (from, to) = match move_ends(args) {
        Ok(e) => e,
        Err(e) => return out.error(e),
    };
    let deadline = match parse_timeout(&args[args.len() - 1], ks.now_ms) {
        Ok(d) => d,
        Err(e) => return out.error(e),
    };
    if let Err(e) = check_lists(ks, &args[1..2]) {
        return out.error(e);
    }
    match lmove(ks, &args[1], &args[2], from, to) {
        Err(e) => out.error(e),
        Ok(Some(v)) => {
            ks.rewrite_as(|| move_op(args, &args[1]));
            out.bulk(&v)
        }
        // Inside MULTI or a script nothing blocks: LMOVE's own nil reply.
        Ok(None) if ks.no_block => out.null(),
        Ok(None) => block(
            ks,
            &args[1..2],
            deadline,
            NullReply::Array,
            serve_bmove,
            Some(args[2].clone()),
            out,
        ),
    }
}

fn blmove(ks: &mut Keyspace, args: &[Bytes], out: &mut Out) {
    bmove(ks, args, out)
}

fn brpoplpush(ks: &mut Keyspace, args: &[Bytes], out: &mut Out) {
    bmove(ks, args, out)
}

/// LMOVE (for BLMOVE) or RPOPLPUSH (for BRPOPLPUSH) from `src`.
fn move_op(args: &[Bytes], src: &[u8]) -> Vec<Bytes> {
    let src = Bytes::copy_from_slice(src);
    if args[0].eq_ignore_ascii_case(b"brpoplpush") {
        vec![prop::lit("RPOPLPUSH"), src, args[2].clone()]
    } else {
        vec![
            prop::lit("LMOVE"),
            src,
            args[2].clone(),
            args[3].clone(),
            args[4].clone(),
        ]
    }
}

fn serve_bmove(ks: &mut Keyspace, key: &[u8], args: &[Bytes], out: &mut Out) {
    let Ok((from, to)) = move_ends(args) else {
        return out.null_array();
    };
    match lmove(ks, key, &args[2], from, to) {
        Ok(Some(v)) => {
            // Served later, Redis names the ends itself, in lower case.
            let name = |e: End| prop::lit(if e == End::Head { "left" } else { "right" });
            ks.also_propagate(|| {
                let mut op = move_op(args, key);
                if op.len() == 5 {
                    op[3] = name(from);
                    op[4] = name(to);
                }
                op
            });
            out.bulk(&v)
        }
        Ok(None) => out.null_array(),
        Err(e) => out.error(e),
    }
}

fn blmpop_keys(args: &[Bytes]) -> Vec<usize> {
    list::mpop_keys_at(args, 2)
}

fn blmpop(ks: &mut Keyspace, args: &[Bytes], out: &mut Out) {
    let parsed = match parse_mpop(args, 2) {
        Ok(p) => p,
        Err(e) => return out.error(e),
    };
    let deadline = match parse_timeout(&args[1], ks.now_ms) {
        Ok(d) => d,
        Err(e) => return out.error(e),
    };
    let keys = &args[parsed.first_key..parsed.first_key + parsed.numkeys];
    match mpop(ks, keys, parsed.end, parsed.count) {
        Err(e) => out.error(e),
        Ok(Some(p)) => {
            out.array(2);
            out.bulk(&keys[p.key_index]);
            out.bulks(p.values.iter());
            let n = p.values.len() as i64;
            let k = keys[p.key_index].clone();
            ks.rewrite_as(|| vec![pop_name(parsed.end), k, prop::num(n)]);
        }
        Ok(None) => block(
            ks,
            keys,
            deadline,
            NullReply::Array,
            serve_blmpop,
            None,
            out,
        ),
    }
}

fn serve_blmpop(ks: &mut Keyspace, key: &[u8], args: &[Bytes], out: &mut Out) {
    let Ok(parsed) = parse_mpop(args, 2) else {
        return out.null_array();
    };
    match list::pop(ks, key, parsed.end, parsed.count) {
        Ok(v) if !v.is_empty() => {
            let n = v.len() as i64;
            ks.also_propagate(|| {
                vec![
                    pop_name(parsed.end),
                    Bytes::copy_from_slice(key),
                    prop::num(n),
                ]
            });
            out.array(2);
            out.bulk(key);
            out.bulks(v.iter());
        }
        Ok(_) => out.null_array(),
        Err(e) => out.error(e),
    }
}

fn is_max(cmd: &[u8]) -> bool {
    cmd.eq_ignore_ascii_case(b"bzpopmax")
}

/// BZPOPMIN / BZPOPMAX: the first non-empty sorted set among the keys, else block.
fn bzpop(ks: &mut Keyspace, args: &[Bytes], out: &mut Out) {
    let deadline = match parse_timeout(&args[args.len() - 1], ks.now_ms) {
        Ok(d) => d,
        Err(e) => return out.error(e),
    };
    let keys = &args[1..args.len() - 1];
    let max = is_max(&args[0]);
    for k in keys {
        match zset::zpop(ks, k, max, 1) {
            Err(_) => return out.error(err::WRONGTYPE),
            Ok(Some(p)) if !p.elements.is_empty() => {
                ks.rewrite_as(|| vec![zpop_name(max), k.clone()]);
                return zset::reply_bzpop(out, k, &p);
            }
            Ok(_) => {}
        }
    }
    block_for(
        ks,
        keys,
        deadline,
        WaitFor::ZSet,
        NullReply::Array,
        serve_bzpop,
        None,
        out,
    );
}

fn serve_bzpop(ks: &mut Keyspace, key: &[u8], args: &[Bytes], out: &mut Out) {
    let max = is_max(&args[0]);
    match zset::zpop(ks, key, max, 1) {
        Ok(Some(p)) if !p.elements.is_empty() => {
            ks.also_propagate(|| vec![zpop_name(max), Bytes::copy_from_slice(key)]);
            zset::reply_bzpop(out, key, &p)
        }
        Ok(_) => out.null_array(),
        Err(_) => out.error(err::WRONGTYPE),
    }
}

fn bzmpop_keys(args: &[Bytes]) -> Vec<usize> {
    zset::numkeys_keys_at(args, 2)
}

fn bzmpop(ks: &mut Keyspace, args: &[Bytes], out: &mut Out) {
    let parsed = match zset::parse_mpop(args, 2) {
        Ok(p) => p,
        Err(e) => return out.error(e),
    };
    let deadline = match parse_timeout(&args[1], ks.now_ms) {
        Ok(d) => d,
        Err(e) => return out.error(e),
    };
    let keys = &args[parsed.first_key..parsed.first_key + parsed.numkeys];
    for k in keys {
        match zset::zpop(ks, k, parsed.max, parsed.count) {
            Err(_) => return out.error(err::WRONGTYPE),
            Ok(Some(p)) if !p.elements.is_empty() => {
                let n = p.elements.len() as i64;
                ks.rewrite_as(|| vec![zpop_name(parsed.max), k.clone(), prop::num(n)]);
                return zset::reply_mpop(out, k, &p);
            }
            Ok(_) => {}
        }
    }
    block_for(
        ks,
        keys,
        deadline,
        WaitFor::ZSet,
        NullReply::Array,
        serve_bzmpop,
        None,
        out,
    );
}

fn serve_bzmpop(ks: &mut Keyspace, key: &[u8], args: &[Bytes], out: &mut Out) {
    let Ok(parsed) = zset::parse_mpop(args, 2) else {
        return out.null_array();
    };
    match zset::zpop(ks, key, parsed.max, parsed.count) {
        Ok(Some(p)) if !p.elements.is_empty() => {
            let n = p.elements.len() as i64;
            ks.also_propagate(|| {
                vec![
                    zpop_name(parsed.max),
                    Bytes::copy_from_slice(key),
                    prop::num(n),
                ]
            });
            zset::reply_mpop(out, key, &p)
        }
        Ok(_) => out.null_array(),
        Err(_) => out.error(err::WRONGTYPE),
    }
}
