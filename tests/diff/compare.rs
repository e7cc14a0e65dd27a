//! Running one generated command on two servers and judging the replies by its `Check`.
//!
//! The command is sent to both servers before either reply is read, so the two servers work at
//! the same time. SCAN is the exception: each server is iterated to completion on its own
//! (cursors are the servers' own business) and the sets of keys are compared.

use super::{Check, Cmd};
use crate::common::resp::{decode, Reply, RespConn};
use std::collections::BTreeSet;

/// SCAN calls allowed before a scan is declared endless.
const SCAN_CALLS_MAX: usize = 100_000;

/// What the two servers answered; `same` says whether the check accepted the pair.
pub struct Verdict {
    pub a: Vec<u8>,
    pub b: Vec<u8>,
    pub same: bool,
}

/// Runs `cmd` on both connections. `Err` is an I/O or protocol failure, naming the side.
pub fn run(cmd: &Cmd, a: &mut RespConn, b: &mut RespConn) -> Result<Verdict, String> {
    if cmd.check == Check::ScanAll {
        let a = scan_all(cmd, a).map_err(|e| format!("first server: {e}"))?;
        let b = scan_all(cmd, b).map_err(|e| format!("second server: {e}"))?;
        let same = a == b;
        return Ok(Verdict { a, b, same });
    }
    let args: Vec<&[u8]> = cmd.args.iter().map(|a| a.as_slice()).collect();
    let request = crate::common::resp::encode_command(&args);
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
    let same = replies_match(cmd.check, &ra, &rb);
    Ok(Verdict { a: ra, b: rb, same })
}

/// Whether two replies are the same under `check`.
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
        Check::Exact | Check::ScanAll => false,
        Check::Near { tolerance } => match (da, db) {
            (Reply::Int(x), Reply::Int(y)) => {
                x >= 0 && y >= 0 && (i128::from(x) - i128::from(y)).abs() <= i128::from(tolerance)
            }
            _ => false,
        },
        Check::SortedArray => match (sorted_elements(&da), sorted_elements(&db)) {
            (Some(x), Some(y)) => x == y,
            _ => false,
        },
        Check::NullOrNot => {
            matches!(
                (&da, &db),
                (Reply::Null, Reply::Null) | (Reply::Bulk(_), Reply::Bulk(_))
            )
        }
        Check::SameShape => a.first() == b.first(),
    }
}

fn sorted_elements(reply: &Reply) -> Option<Vec<Reply>> {
    let mut items = reply.as_array()?.to_vec();
    items.sort_by(|x, y| format!("{x:?}").cmp(&format!("{y:?}")));
    Some(items)
}

/// Iterates `SCAN cursor <options>` from cursor 0 to the end. Returns the first reply when it
/// is an error, else a description of the sorted, de-duplicated keys as bytes.
fn scan_all(cmd: &Cmd, conn: &mut RespConn) -> Result<Vec<u8>, String> {
    let mut cursor = b"0".to_vec();
    let mut keys = BTreeSet::new();
    for call in 0..SCAN_CALLS_MAX {
        let mut args: Vec<&[u8]> = cmd.args.iter().map(|a| a.as_slice()).collect();
        args[1] = &cursor;
        let request = crate::common::resp::encode_command(&args);
        conn.try_send_raw(&request)
            .map_err(|e| format!("sending SCAN: {e}"))?;
        let raw = conn
            .try_read_reply()
            .map_err(|e| format!("reading SCAN's reply: {e}"))?;
        let reply = decode(&raw).map_err(|e| format!("undecodable SCAN reply: {e}"))?;
        if reply.is_error() && call == 0 {
            return Ok(raw);
        }
        let (next, batch) = match reply.as_array() {
            Some([Reply::Bulk(next), batch]) => (next.clone(), batch),
            _ => return Err(format!("unexpected SCAN reply {reply:?} at call {call}")),
        };
        let batch = batch
            .as_array()
            .ok_or_else(|| format!("SCAN batch {batch:?}"))?;
        for key in batch {
            let key = key
                .as_bytes()
                .ok_or_else(|| format!("SCAN returned {key:?}"))?;
            keys.insert(key.to_vec());
        }
        if next == b"0" {
            let mut out = format!("SCAN to the end found {} keys:", keys.len()).into_bytes();
            for key in keys {
                out.push(b' ');
                out.extend_from_slice(crate::common::show(&key).as_bytes());
            }
            return Ok(out);
        }
        cursor = next;
    }
    Err(format!("SCAN did not finish in {SCAN_CALLS_MAX} calls"))
}
