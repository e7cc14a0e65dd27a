//! Transactions: MULTI, EXEC, DISCARD, WATCH, UNWATCH.
//!
//! Queueing happens in the engine (`shard::engine`): while a client is in MULTI, every
//! command except EXEC, DISCARD, MULTI, WATCH, QUIT and RESET is checked (lookup, arity) and
//! queued. EXEC is run by the engine too (`Shard::run_exec`): it takes the locks of every shard
//! the queued commands and the watched keys live on, in shard order, checks the WATCH flag,
//! and runs the queue while holding them — the same ordered-locks mechanism as any multi-shard
//! command, so no other client observes part of a transaction. The handlers here cover the
//! state changes.

use super::{flag, Cmd};
use crate::protocol::Out;
use crate::server::{Client, ConnCtx, Server};
use crate::storage::{key_slot, slot_owner};
use bytes::Bytes;
use std::sync::atomic::Ordering;

const TX: u32 = flag::NOSCRIPT | flag::LOADING | flag::STALE | flag::FAST | flag::ALLOW_BUSY;

pub static COMMANDS: [Cmd; 5] = [
    Cmd::conn("multi", 1, TX | flag::NO_MULTI, multi).with_acl(&["fast", "transaction"]),
    Cmd::conn(
        "exec",
        1,
        flag::NOSCRIPT | flag::LOADING | flag::STALE | flag::SKIP_SLOWLOG,
        exec_outside,
    )
    .with_acl(&["slow", "transaction"]),
    Cmd::conn("discard", 1, TX, discard).with_acl(&["fast", "transaction"]),
    Cmd::data_conn_watch(),
    Cmd::conn("unwatch", 1, TX, unwatch_cmd).with_acl(&["fast", "transaction"]),
];

impl Cmd {
    const fn data_conn_watch() -> Cmd {
        Cmd {
            name: "watch",
            arity: -2,
            flags: TX | flag::NO_MULTI,
            keys: super::Keys::Range(1, -1, 1),
            kind: super::Kind::Conn(watch),
            acl: &["fast", "transaction"],
            subcommands: &[],
        }
    }
}

fn multi(ctx: &mut ConnCtx, _args: &[Bytes], out: &mut Out) {
    if ctx.client.multi.is_some() {
        out.error("ERR MULTI calls can not be nested");
        return;
    }
    ctx.client.multi = Some(Vec::new());
    ctx.client.multi_error = false;
    out.ok();
}

/// EXEC reaches this handler only outside MULTI (the engine runs it otherwise).
fn exec_outside(_ctx: &mut ConnCtx, _args: &[Bytes], out: &mut Out) {
    out.error("ERR EXEC without MULTI");
}

fn discard(ctx: &mut ConnCtx, _args: &[Bytes], out: &mut Out) {
    if ctx.client.multi.is_none() {
        out.error("ERR DISCARD without MULTI");
        return;
    }
    ctx.client.multi = None;
    ctx.client.multi_error = false;
    unwatch_all(ctx.server, ctx.client);
    out.ok();
}

fn watch(ctx: &mut ConnCtx, args: &[Bytes], out: &mut Out) {
    if ctx.client.multi.is_some() {
        out.error("ERR WATCH inside MULTI is not allowed");
        return;
    }
    let server = ctx.server;
    let n = server.nshards();
    let db = ctx.client.db;
    let now = crate::util::now_ms();
    for key in &args[1..] {
        if ctx
            .client
            .watched
            .iter()
            .any(|(d, k, _)| *d == db && k == key)
        {
            continue;
        }
        let owner = slot_owner(key_slot(key), n);
        let Some(h) = server.shards.get(owner) else {
            continue;
        };
        let mut data = h.lock_data();
        let expired = data
            .dbs
            .get(db)
            .and_then(|d| d.get(key_slot(key), key))
            .is_some_and(|e| e.is_expired(now));
        let mark = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(expired));
        data.watch.add(db, key, &ctx.client.watch_flag, &mark);
        ctx.client.watched.push((db, key.clone(), mark));
    }
    out.ok();
}

fn unwatch_cmd(ctx: &mut ConnCtx, _args: &[Bytes], out: &mut Out) {
    unwatch_all(ctx.server, ctx.client);
    out.ok();
}

/// Removes every WATCH registration of the client and lowers its flag.
pub fn unwatch_all(server: &Server, client: &mut Client) {
    let n = server.nshards();
    for (db, key, _) in client.watched.drain(..) {
        let owner = slot_owner(key_slot(&key), n);
        if let Some(h) = server.shards.get(owner) {
            h.lock_data().watch.remove(db, &key, &client.watch_flag);
        }
    }
    client.watch_flag.store(false, Ordering::SeqCst);
}

/// The flags a command is admitted on (Redis's `getCommandFlags`, and for EXEC the union of
/// its queue's flags, `mstate.cmd_flags`): a queued write makes EXEC a write (READONLY,
/// NOREPLICAS), a queued command that may not run on a stale replica makes EXEC one too
/// (MASTERDOWN). Script commands count their declared flags, but only in a transaction:
/// outside one a script checks them itself before it runs (`scripting::eval::prepare_run`).
pub fn admission_flags(client: &Client, cmd: &Cmd, args: &[Bytes]) -> u32 {
    let Some(queue) = client.multi.as_ref() else {
        return cmd.flags;
    };
    if cmd.name != "exec" {
        return if crate::scripting::runs_script(cmd) {
            crate::scripting::eval::command_flags(cmd, args)
        } else {
            cmd.flags
        };
    }
    let mut flags = cmd.flags;
    for q in queue {
        flags |= q.flags & (flag::WRITE | flag::DENYOOM);
        if q.flags & flag::STALE == 0 {
            flags &= !flag::STALE;
        }
    }
    flags
}

/// Whether EXEC must abort because a watched key changed or expired since WATCH. The caller
/// holds the watched keys' shards.
pub fn watch_broken(server: &Server, client: &Client, now_ms: u64) -> bool {
    if client.watch_flag.load(Ordering::SeqCst) {
        return true;
    }
    let n = server.nshards();
    client.watched.iter().any(|(db, key, expired_at_watch)| {
        if expired_at_watch.load(Ordering::SeqCst) {
            return false;
        }
        let owner = slot_owner(key_slot(key), n);
        server.shards.get(owner).is_some_and(|h| {
            let data = h.lock_data();
            data.dbs
                .get(*db)
                .and_then(|d| d.get(key_slot(key), key))
                .is_some_and(|e| e.is_expired(now_ms))
        })
    })
}
