//! Blocking commands woken by another client (`Check::Woken`): the first connection sends a
//! blocking pop or move on keys that were just deleted, so it blocks; once each server reports
//! the client blocked (`INFO clients`, `blocked_clients`), the second connection SELECTs the
//! first one's database and pushes onto the keys it waits on, and the replies of both
//! connections must match.
//!
//! Waiting for `blocked_clients` rather than sending at once matters for `Waker::Ordered`: a
//! transaction that pushes onto the client's last key and then its first must serve it from
//! the last (Redis serves keys in the order they became ready), whereas a BLPOP that ran after
//! the transaction would pop from its first key.
//!
//! The waited keys are names no other command uses (see `lists::WAKE_KEYS`), deleted by the
//! command planned just before, and the commands' arguments are always valid, so both servers
//! block every time. The timeout is long (5 s): a server that never wakes the client answers
//! null after it, a difference.

use super::compare::{arg_slices, Verdict};
use super::{Cmd, WakeKind, Waker};
use crate::common::resp::{encode_command, RespConn};
use std::time::{Duration, Instant};

/// How long a server may take to report the client blocked.
const BLOCKED_WAIT_MAX: Duration = Duration::from_secs(2);
/// How often `blocked_clients` is polled.
const BLOCKED_POLL: Duration = Duration::from_millis(1);

/// Runs the blocking `cmd` on `a` and `b`, wakes it from `a2` and `b2`, and compares the
/// wakers' replies followed by the woken command's.
pub fn run(
    cmd: &Cmd,
    waker: Waker,
    [a, b]: [&mut RespConn; 2],
    [a2, b2]: [&mut RespConn; 2],
) -> Result<Verdict, String> {
    let request = encode_command(&arg_slices(&cmd.args));
    a.try_send_raw(&request)
        .map_err(|e| format!("sending to the first server: {e}"))?;
    b.try_send_raw(&request)
        .map_err(|e| format!("sending to the second server: {e}"))?;
    let mut notes = Vec::new();
    for (name, second) in [("redis", &mut *a2), ("other", &mut *b2)] {
        if !wait_blocked(second)? {
            notes.push(format!("{name}: the client did not block"));
        }
    }
    let (mut ra, mut rb) = (Vec::new(), Vec::new());
    for wake in waker_commands(cmd, waker) {
        let args: Vec<&[u8]> = wake.iter().map(Vec::as_slice).collect();
        let request = encode_command(&args);
        for (conn, out) in [(&mut *a2, &mut ra), (&mut *b2, &mut rb)] {
            conn.try_send_raw(&request)
                .map_err(|e| format!("sending a waker: {e}"))?;
            out.extend(conn.try_read_reply().map_err(|e| format!("a waker: {e}"))?);
        }
    }
    ra.extend(
        a.try_read_reply()
            .map_err(|e| format!("first server: {e}"))?,
    );
    rb.extend(
        b.try_read_reply()
            .map_err(|e| format!("second server: {e}"))?,
    );
    let same = ra == rb && notes.is_empty();
    Ok(Verdict {
        a: ra,
        b: rb,
        same,
        note: notes.join("; "),
    })
}

/// Polls `INFO clients` on `conn` until the server reports a blocked client; false after
/// `BLOCKED_WAIT_MAX`.
fn wait_blocked(conn: &mut RespConn) -> Result<bool, String> {
    let started = Instant::now();
    while started.elapsed() < BLOCKED_WAIT_MAX {
        conn.try_send_raw(&encode_command(&[b"INFO", b"clients"]))
            .map_err(|e| format!("sending INFO: {e}"))?;
        let reply = conn
            .try_read_reply()
            .map_err(|e| format!("reading INFO: {e}"))?;
        let text = String::from_utf8_lossy(&reply);
        let blocked = text
            .lines()
            .find_map(|l| l.strip_prefix("blocked_clients:"))
            .and_then(|n| n.trim().parse::<u64>().ok());
        if blocked.is_some_and(|n| n > 0) {
            return Ok(true);
        }
        std::thread::sleep(BLOCKED_POLL);
    }
    Ok(false)
}

/// The keys a blocking command waits on.
fn waited_keys(cmd: &Cmd) -> Vec<Vec<u8>> {
    let name = cmd.args[0].to_ascii_uppercase();
    let args = &cmd.args;
    match name.as_slice() {
        b"BLMOVE" | b"BRPOPLPUSH" => args[1..2].to_vec(),
        b"BLMPOP" | b"BZMPOP" => {
            let n: usize = std::str::from_utf8(&args[2])
                .ok()
                .and_then(|n| n.parse().ok())
                .unwrap_or(0);
            args.iter().skip(3).take(n).cloned().collect()
        }
        _ => args[1..args.len() - 1].to_vec(),
    }
}

/// The second connection's commands that wake `cmd`.
fn waker_commands(cmd: &Cmd, waker: Waker) -> Vec<Vec<Vec<u8>>> {
    let zset = cmd.args[0].to_ascii_uppercase().starts_with(b"BZ");
    let push = |key: &[u8]| -> Vec<Vec<u8>> {
        let parts: &[&[u8]] = if zset {
            &[b"ZADD", key, b"1", b"w1", b"2", b"w2"]
        } else {
            &[b"RPUSH", key, b"w1", b"w2"]
        };
        parts.iter().map(|p| p.to_vec()).collect()
    };
    let keys = waited_keys(cmd);
    let (Some(first), Some(last)) = (keys.first(), keys.last()) else {
        return Vec::new();
    };
    let select = vec![b"SELECT".to_vec(), waker.db.to_string().into_bytes()];
    match waker.kind {
        WakeKind::Last => vec![select, push(last)],
        WakeKind::Ordered => vec![
            select,
            vec![b"MULTI".to_vec()],
            push(last),
            push(first),
            vec![b"EXEC".to_vec()],
        ],
    }
}
