//! Running one generated command on two servers and judging the replies by its `Check`.
//!
//! The command is sent to both servers before either reply is read, so the two servers work at
//! the same time. The scans are the exception: each server is iterated to completion on its
//! own (cursors are the servers' own business) and the sets of what they found compared.
//!
//! Some checks ask the servers more than the command itself: `OBJECT ENCODING` for hash
//! order, and for random picks and SPOP what `sampled.rs` needs. Those extra commands never
//! run inside MULTI: the transaction generator queues only `Check::Exact` commands.

use super::sampled;
use super::{Check, Cmd};
use crate::common::resp::{decode, encode_command, Reply, RespConn};
use crate::common::show;
use std::collections::BTreeSet;

/// SCAN calls allowed before a scan is declared endless.
const SCAN_CALLS_MAX: usize = 100_000;

/// What the two servers answered; `same` says whether the check accepted the pair, and `note`
/// why not when the replies alone do not show it.
pub struct Verdict {
    pub a: Vec<u8>,
    pub b: Vec<u8>,
    pub same: bool,
    pub note: String,
}

impl Verdict {
    fn new(a: Vec<u8>, b: Vec<u8>, same: bool) -> Verdict {
        Verdict {
            a,
            b,
            same,
            note: String::new(),
        }
    }

    /// A verdict from a judgement that returns why the pair is rejected.
    pub fn judged(a: Vec<u8>, b: Vec<u8>, judgement: Result<(), String>) -> Verdict {
        let (same, note) = match judgement {
            Ok(()) => (true, String::new()),
            Err(note) => (false, note),
        };
        Verdict { a, b, same, note }
    }
}

/// Runs `cmd` on both connections. `Err` is an I/O or protocol failure, naming the side.
pub fn run(cmd: &Cmd, a: &mut RespConn, b: &mut RespConn) -> Result<Verdict, String> {
    match cmd.check {
        Check::ScanAll => return scan_both(cmd, 1, false, a, b),
        Check::ScanKey { pairs } => return scan_both(cmd, 2, pairs, a, b),
        Check::Spop => return sampled::spop(cmd, a, b),
        _ => {}
    }
    let request = encode_command(&arg_slices(&cmd.args));
    a.try_send_raw(&request)
        .map_err(|e| format!("sending to the first server: {e}"))?;
    b.try_send_raw(&request)
        .map_err(|e| format!("sending to the second server: {e}"))?;
    let ra = a
        .try_read_reply()
        .map_err(|e| format!("reading from the first server: {e}"))?;
    let rb = b
        .try_read_reply()
        .map_err(|e| format!("reading from the second server: {e}"))?;
    let any_error = ra.first() == Some(&b'-') || rb.first() == Some(&b'-');
    if ra == rb && (any_error || !matches!(cmd.check, Check::Random(_))) {
        return Ok(Verdict::new(ra, rb, true));
    }
    if any_error {
        return Ok(Verdict::new(ra, rb, false));
    }
    match cmd.check {
        Check::HashOrder { pairs } => {
            let judgement = hash_order(&cmd.args[1], pairs, &ra, &rb, a);
            Ok(Verdict::judged(ra, rb, judgement?))
        }
        Check::Random(collection) => {
            let judgement = sampled::random_picks(cmd, collection, &ra, &rb, a, b)?;
            Ok(Verdict::judged(ra, rb, judgement))
        }
        check => {
            let same = replies_match(check, &ra, &rb);
            Ok(Verdict::new(ra, rb, same))
        }
    }
}

pub fn arg_slices(args: &[Vec<u8>]) -> Vec<&[u8]> {
    args.iter().map(|a| a.as_slice()).collect()
}

/// One command on one connection, decoded; errors name `what`.
pub fn call(conn: &mut RespConn, args: &[&[u8]], what: &str) -> Result<Reply, String> {
    conn.try_send_raw(&encode_command(args))
        .map_err(|e| format!("{what}: sending: {e}"))?;
    let raw = conn
        .try_read_reply()
        .map_err(|e| format!("{what}: reading: {e}"))?;
    decode(&raw).map_err(|e| format!("{what}: undecodable reply {}: {e}", show(&raw)))
}

/// Whether two replies are the same under `check` (for the checks that need nothing but the
/// two replies).
pub fn replies_match(check: Check, a: &[u8], b: &[u8]) -> bool {
    if a == b {
        return true;
    }
    let (Ok(da), Ok(db)) = (decode(a), decode(b)) else {
        return false;
    };
    if da.is_error() || db.is_error() {
        return false;
    }
    match check {
        Check::Near { tolerance } => match (da, db) {
            (Reply::Int(x), Reply::Int(y)) => {
                x >= 0 && y >= 0 && (i128::from(x) - i128::from(y)).abs() <= i128::from(tolerance)
            }
            _ => false,
        },
        Check::SortedArray => {
            a.first() == b.first()
                && matches!(
                    (sorted_elements(&da), sorted_elements(&db)),
                    (Some(x), Some(y)) if x == y
                )
        }
        Check::NullOrNot => {
            matches!(
                (&da, &db),
                (Reply::Null, Reply::Null) | (Reply::Bulk(_), Reply::Bulk(_))
            )
        }
        Check::SameShape => a.first() == b.first(),
        _ => false,
    }
}

fn sorted_elements(reply: &Reply) -> Option<Vec<String>> {
    let mut items: Vec<String> = reply.as_array()?.iter().map(|x| format!("{x:?}")).collect();
    items.sort();
    Some(items)
}

/// The field/value (member/score) pairs of a reply: a RESP3 map, an array of two-element
/// arrays (RESP3 WITHSCORES and WITHVALUES), or a flat array of alternating items.
pub fn pairs_of(reply: &Reply) -> Option<Vec<(Reply, Reply)>> {
    if let Reply::Map(pairs) = reply {
        return Some(pairs.clone());
    }
    let items = reply.as_array()?;
    let nested = !items.is_empty()
        && items
            .iter()
            .all(|item| matches!(item.as_array(), Some(pair) if pair.len() == 2));
    if nested {
        return Some(
            items
                .iter()
                .filter_map(|item| match item.as_array() {
                    Some([k, v]) => Some((k.clone(), v.clone())),
                    _ => None,
                })
                .collect(),
        );
    }
    if items.len() % 2 != 0 {
        return None;
    }
    Some(
        items
            .chunks(2)
            .map(|pair| (pair[0].clone(), pair[1].clone()))
            .collect(),
    )
}

/// HKEYS/HVALS/HGETALL: exact for a listpack on the first server, else as sorted multisets.
fn hash_order(
    key: &[u8],
    pairs: bool,
    ra: &[u8],
    rb: &[u8],
    a: &mut RespConn,
) -> Result<Result<(), String>, String> {
    let encoding = call(a, &[b"OBJECT", b"ENCODING", key], "OBJECT ENCODING")?;
    if encoding.as_bytes() == Some(b"listpack") {
        return Ok(Err(
            "the hash is a listpack: insertion order must match".into()
        ));
    }
    if ra.first() != rb.first() {
        return Ok(Err("different reply types".into()));
    }
    let (da, db) = (decode(ra)?, decode(rb)?);
    let same = if pairs {
        let sorted = |r: &Reply| {
            pairs_of(r).map(|p| {
                let mut p: Vec<String> = p.iter().map(|x| format!("{x:?}")).collect();
                p.sort();
                p
            })
        };
        matches!((sorted(&da), sorted(&db)), (Some(x), Some(y)) if x == y)
    } else {
        matches!((sorted_elements(&da), sorted_elements(&db)), (Some(x), Some(y)) if x == y)
    };
    Ok(if same {
        Ok(())
    } else {
        Err("different contents (compared unordered: the hash is not a listpack)".into())
    })
}

/// Scans both servers to completion; see `scan_all`.
fn scan_both(
    cmd: &Cmd,
    cursor_at: usize,
    pairs: bool,
    a: &mut RespConn,
    b: &mut RespConn,
) -> Result<Verdict, String> {
    let a = scan_all(cmd, cursor_at, pairs, a).map_err(|e| format!("first server: {e}"))?;
    let b = scan_all(cmd, cursor_at, pairs, b).map_err(|e| format!("second server: {e}"))?;
    let same = a == b;
    Ok(Verdict::new(a, b, same))
}

/// Iterates a scan (`SCAN cursor ...` with the cursor at `cursor_at` = 1, or `SSCAN key
/// cursor ...` at 2) from cursor 0 to the end. Returns the first reply when it is an error,
/// else a description of the sorted, de-duplicated elements (pairs of them when `pairs`).
fn scan_all(
    cmd: &Cmd,
    cursor_at: usize,
    pairs: bool,
    conn: &mut RespConn,
) -> Result<Vec<u8>, String> {
    let mut cursor = b"0".to_vec();
    let mut found = BTreeSet::new();
    for call in 0..SCAN_CALLS_MAX {
        let mut args = arg_slices(&cmd.args);
        args[cursor_at] = &cursor;
        conn.try_send_raw(&encode_command(&args))
            .map_err(|e| format!("sending a scan: {e}"))?;
        let raw = conn
            .try_read_reply()
            .map_err(|e| format!("reading a scan's reply: {e}"))?;
        let reply = decode(&raw).map_err(|e| format!("undecodable scan reply: {e}"))?;
        if reply.is_error() && call == 0 {
            return Ok(raw);
        }
        let (next, batch) = match reply.as_array() {
            Some([Reply::Bulk(next), batch]) => (next.clone(), batch),
            _ => return Err(format!("unexpected scan reply {reply:?} at call {call}")),
        };
        let batch = batch
            .as_array()
            .ok_or_else(|| format!("scan batch {batch:?}"))?;
        let items: Result<Vec<&[u8]>, String> = batch
            .iter()
            .map(|x| x.as_bytes().ok_or_else(|| format!("scan returned {x:?}")))
            .collect();
        let items = items?;
        if pairs && items.len() % 2 != 0 {
            return Err(format!(
                "odd number of items in a pair scan: {}",
                items.len()
            ));
        }
        let step = if pairs { 2 } else { 1 };
        for chunk in items.chunks(step) {
            found.insert(
                chunk
                    .iter()
                    .map(|x| show(x))
                    .collect::<Vec<_>>()
                    .join(" => "),
            );
        }
        if next == b"0" {
            let mut out = format!("scan to the end found {} items:", found.len()).into_bytes();
            for item in found {
                out.push(b' ');
                out.extend_from_slice(item.as_bytes());
            }
            return Ok(out);
        }
        cursor = next;
    }
    Err(format!("the scan did not finish in {SCAN_CALLS_MAX} calls"))
}
