//! Persistence commands: SAVE, BGSAVE, and the persistence parts of DEBUG (RELOAD, POPULATE)
//! and SHUTDOWN. The work itself lives in `persistence`; these only parse and reply.

use super::{err, flag, parse, Cmd};
use crate::persistence::load::ReloadOptions;
use crate::persistence::snapshot::{self, BgsaveReply};
use crate::protocol::Out;
use crate::server::ConnCtx;
use crate::storage::{key_slot, slot_owner, Entry, Value};
use bytes::Bytes;

pub static COMMANDS: [Cmd; 2] = [
    Cmd::conn(
        "save",
        1,
        flag::ADMIN | flag::NOSCRIPT | flag::NO_MULTI,
        save,
    )
    .with_acl(&["admin", "slow", "dangerous"]),
    Cmd::conn("bgsave", -1, flag::ADMIN | flag::NOSCRIPT, bgsave).with_acl(&[
        "admin",
        "slow",
        "dangerous",
    ]),
];

fn save(ctx: &mut ConnCtx, _args: &[Bytes], out: &mut Out) {
    match snapshot::save(ctx.server) {
        Ok(()) => out.ok(),
        Err(e) => out.error(e),
    }
}

fn bgsave(ctx: &mut ConnCtx, args: &[Bytes], out: &mut Out) {
    let schedule = match args.len() {
        1 => false,
        2 if parse::eq(&args[1], "schedule") => true,
        _ => return out.error(err::SYNTAX),
    };
    match snapshot::bgsave(ctx.server, schedule) {
        BgsaveReply::Started => out.simple("Background saving started"),
        BgsaveReply::Scheduled => out.simple("Background saving scheduled"),
        BgsaveReply::AlreadyInProgress => out.error("ERR Background save already in progress"),
        BgsaveReply::OtherChild => out.error(
            "ERR Another child process is active (AOF?): can't BGSAVE right now. Use BGSAVE SCHEDULE in order to schedule a BGSAVE whenever possible.",
        ),
        BgsaveReply::Failed => out.error("ERR"),
    }
}

/// DEBUG RELOAD [MERGE] [NOFLUSH] [NOSAVE].
pub fn debug_reload(ctx: &mut ConnCtx, args: &[Bytes], out: &mut Out) {
    let mut opts = ReloadOptions::default();
    for a in &args[2..] {
        if parse::eq(a, "merge") {
            opts.merge = true;
        } else if parse::eq(a, "noflush") {
            opts.noflush = true;
        } else if parse::eq(a, "nosave") {
            opts.nosave = true;
        } else {
            return out
                .error("ERR DEBUG RELOAD only supports the MERGE, NOFLUSH and NOSAVE options.");
        }
    }
    match crate::persistence::load::debug_reload(ctx.server, opts) {
        Ok(()) => out.ok(),
        Err(e) => out.error(&e),
    }
}

/// DEBUG POPULATE count [prefix] [size]: `prefix:N` keys (default `key`) holding `value:N`,
/// padded with zero bytes or cut to `size`; existing keys are left alone.
pub fn debug_populate(ctx: &mut ConnCtx, args: &[Bytes], out: &mut Out) {
    if args.len() > 5 {
        return out.error(err::SYNTAX);
    }
    let Some(count) = parse::i64_arg(&args[2]).ok().filter(|n| *n >= 0) else {
        return out.error("ERR value is out of range, must be positive");
    };
    let prefix: &[u8] = args.get(3).map_or(b"key", |p| &p[..]);
    let size = match args.get(4) {
        None => None,
        Some(s) => match parse::i64_arg(s).ok().filter(|n| *n >= 0) {
            Some(n) => Some(n as usize),
            None => return out.error("ERR value is out of range, must be positive"),
        },
    };
    let db = ctx.client.db;
    let mut guards = ctx.server.lock_all();
    let nshards = guards.len();
    for j in 0..count {
        let mut key = prefix.to_vec();
        key.push(b':');
        key.extend_from_slice(j.to_string().as_bytes());
        let slot = key_slot(&key);
        let Some(d) = guards
            .get_mut(slot_owner(slot, nshards))
            .and_then(|g| g.dbs.get_mut(db))
        else {
            continue;
        };
        if d.get(slot, &key).is_some() {
            continue;
        }
        let mut value = format!("value:{j}").into_bytes();
        if let Some(n) = size {
            value.resize(n, 0);
        }
        d.insert(slot, &key, Entry::new(Value::from_bytes(&value)));
    }
    out.ok();
}

/// SHUTDOWN [NOSAVE|SAVE] [NOW] [FORCE] [ABORT] (Redis 7.0). Without replicas there is
/// nothing to wait for, so a shutdown is never "in progress" for ABORT to cancel.
pub fn shutdown(ctx: &mut ConnCtx, args: &[Bytes], out: &mut Out) {
    use crate::config::shutdown::{FORCE, NOSAVE, NOW, SAVE};
    let mut flags = 0;
    let mut abort = false;
    for a in &args[1..] {
        if parse::eq(a, "nosave") {
            flags |= NOSAVE;
        } else if parse::eq(a, "save") {
            flags |= SAVE;
        } else if parse::eq(a, "now") {
            flags |= NOW;
        } else if parse::eq(a, "force") {
            flags |= FORCE;
        } else if parse::eq(a, "abort") {
            abort = true;
        } else {
            return out.error(err::SYNTAX);
        }
    }
    if (abort && flags != 0) || (flags & NOSAVE != 0 && flags & SAVE != 0) {
        return out.error(err::SYNTAX);
    }
    if abort {
        return out.error("ERR No shutdown in progress.");
    }
    if flags & NOSAVE == 0 && crate::scripting::busy() {
        // Past the busy threshold only SHUTDOWN NOSAVE may end the server (Redis's
        // `shutdownCommand`): a save would snapshot the script's half-done writes.
        return out.error(crate::scripting::busy_error());
    }
    crate::log_warning!("User requested shutdown...");
    // On success this does not return: the process exits with every shard held.
    if !snapshot::shutdown(ctx.server, flags) {
        out.error("ERR Errors trying to SHUTDOWN. Check logs.");
    }
}
