//! Transactions (`multi.c` in Redis): MULTI ... EXEC and DISCARD over keys of every type and
//! shard, errors while queueing (EXEC then answers EXECABORT), errors at run time (EXEC's
//! array holds them), nested MULTI and WATCH inside MULTI (refused, the transaction goes on),
//! EXEC and DISCARD without MULTI, and WATCH/UNWATCH with another client writing between WATCH
//! and EXEC (EXEC then answers null on both servers).
//!
//! A transaction is a planned sequence (`Gen::plan`): `generate` returns its first command and
//! each later one is generated when its turn comes, with its own index (so the expiry rules of
//! `mod.rs` hold inside transactions too). Queued commands come from the other enabled data
//! families, keeping only those compared byte for byte: a queued command's real reply is part
//! of EXEC's, and the looser checks would need to send more commands, which MULTI would queue.
//! The other client is each server's second connection; it first SELECTs a database at random
//! (the generator does not track which one the first connection uses), then writes to a
//! watched key, so some of its writes hit the watched key and some do not, alike on both
//! servers.

use super::{Check, Cmd, Conn, Gen, Step};

/// Commands queued in one transaction at most.
const QUEUED_MAX: u64 = 6;
/// Keys one WATCH names at most.
const WATCHED_MAX: u64 = 3;
/// Draws from the families before `queued` settles for a plain GET.
const QUEUED_DRAWS_MAX: usize = 20;

pub fn generate(g: &mut Gen) -> Cmd {
    match g.rng.below(24) {
        0 => g.c("EXEC").exact(),
        1 => g.c("DISCARD").exact(),
        2 => g.c("UNWATCH").exact(),
        3..=11 => watched(g),
        _ => transaction(g),
    }
}

fn step(f: fn(&mut Gen) -> Cmd) -> Step {
    Box::new(f)
}

/// The body and end of a transaction after its MULTI: queued commands, now and then a nested
/// MULTI, a WATCH or a command refused while queueing, then EXEC or (one time in seven)
/// DISCARD.
fn body(g: &mut Gen) -> Vec<Step> {
    let mut steps: Vec<Step> = (0..g.rng.below(QUEUED_MAX + 1))
        .map(|_| step(queued))
        .collect();
    if g.rng.chance(1, 12) {
        let at = g.rng.index(steps.len() + 1);
        steps.insert(at, step(|g| g.c("MULTI").exact()));
    }
    if g.rng.chance(1, 15) {
        let at = g.rng.index(steps.len() + 1);
        steps.insert(
            at,
            step(|g| {
                let key = g.key();
                g.c("WATCH").arg(key).exact()
            }),
        );
    }
    if g.rng.chance(1, 10) {
        let at = g.rng.index(steps.len() + 1);
        steps.insert(at, step(super::misc::errors));
    }
    steps.push(if g.rng.chance(1, 7) {
        step(|g| g.c("DISCARD").exact())
    } else {
        step(|g| g.c("EXEC").exact())
    });
    steps
}

/// MULTI, then `body`.
fn transaction(g: &mut Gen) -> Cmd {
    let steps = body(g);
    g.plan(steps);
    g.c("MULTI").exact()
}

/// A command to queue: from the queueable families, compared byte for byte, on the first
/// connection, and planning nothing after itself (a blocking command planned after its push
/// would land after EXEC); or now and then a blocking command alone.
fn queued(g: &mut Gen) -> Cmd {
    // Blocking commands do not block inside MULTI: they answer at once, null for empty keys.
    if g.rng.chance(1, 25) {
        return if g.rng.chance(1, 2) {
            super::lists::blocking_cmd(g)
        } else {
            super::zsets::blocking_cmd(g)
        };
    }
    for _ in 0..QUEUED_DRAWS_MAX {
        let planned = g.plan_len();
        let family = *g.rng.weighted(&g.queueable);
        let cmd = family(g);
        if g.plan_len() != planned {
            g.truncate_plan(planned);
            continue;
        }
        if cmd.check == Check::Exact && cmd.conn == Conn::Main {
            return cmd;
        }
    }
    let key = g.key();
    g.c("GET").arg(key).exact()
}

/// SELECT on the first connection, WATCH key [key ...], then some of: commands on the first
/// connection, another client's write (to a watched key in the same database, each five
/// times in six), UNWATCH;
/// then MULTI, a body, EXEC or DISCARD.
fn watched(g: &mut Gen) -> Cmd {
    let db = g.rng.below(super::DBS);
    let n = g.count(WATCHED_MAX);
    let keys: Vec<Vec<u8>> = (0..n).map(|_| g.key()).collect();
    let mut steps: Vec<Step> = Vec::new();
    let watch = g.c("WATCH").args(&keys).exact();
    steps.push(Box::new(move |_: &mut Gen| watch));
    for _ in 0..g.rng.below(3) {
        if g.rng.chance(1, 4) {
            steps.push(step(|g| {
                let family = *g.rng.weighted(&g.queueable);
                family(g)
            }));
            continue;
        }
        let other_db = if g.rng.chance(5, 6) {
            db
        } else {
            g.rng.below(super::DBS)
        };
        let key = if g.rng.chance(5, 6) {
            g.rng.pick(&keys).clone()
        } else {
            g.key()
        };
        steps.push(Box::new(move |g: &mut Gen| {
            g.c("SELECT").arg(other_db.to_string()).exact().on_second()
        }));
        steps.push(Box::new(move |g: &mut Gen| other_client_write(g, key)));
    }
    if g.rng.chance(1, 8) {
        steps.push(step(|g| g.c("UNWATCH").exact()));
    }
    steps.push(step(|g| g.c("MULTI").exact()));
    steps.extend(body(g));
    g.plan(steps);
    g.c("SELECT").arg(db.to_string()).exact()
}

/// A command of another client on `key`: usually a write of some type (which touches the key
/// only when it succeeds and changes something), sometimes one that changes nothing (and so
/// must not touch it: SREM of a member that is not there, LPUSHX on no list...), a read, a
/// rename or move away, a deletion by a past expiry, or a flush of the database.
fn other_client_write(g: &mut Gen, key: Vec<u8>) -> Cmd {
    let v = g.value();
    let args = match g.rng.below(24) {
        0..=3 => g.c("SET").arg(&key).arg(v),
        4 | 5 => g.c("DEL").arg(&key),
        6 => g.c("LPUSH").arg(&key).arg(v),
        7 => g.c("HSET").arg(&key).arg("f1").arg(v),
        8 => g.c("SADD").arg(&key).arg(v),
        9 => g.c("PFADD").arg(&key).arg(v),
        10 => g.c("ZADD").arg(&key).arg("1").arg(v),
        11 => g.c("EXPIRE").arg(&key).arg(g.rel_secs().to_string()),
        12 => g.c("PERSIST").arg(&key),
        13 => g.c("INCR").arg(&key),
        14 => g.c("SREM").arg(&key).arg("no such member"),
        15 => g.c("HDEL").arg(&key).arg("no such field"),
        16 => g.c("LPUSHX").arg(&key).arg(v),
        17 => g
            .c("ZADD")
            .arg(&key)
            .arg("XX")
            .arg("1")
            .arg("no such member"),
        18 => g.c("EXPIREAT").arg(&key).arg("1"),
        19 => g.c("RENAME").arg(&key).arg(g.key()),
        20 => g
            .c("MOVE")
            .arg(&key)
            .arg(g.rng.below(super::DBS).to_string()),
        21 => g.c("FLUSHDB"),
        22 => g.c("GETDEL").arg(&key),
        _ => g.c("EXISTS").arg(&key),
    };
    args.exact().on_second()
}
