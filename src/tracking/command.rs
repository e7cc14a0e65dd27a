//! CLIENT TRACKING, CLIENT CACHING, CLIENT GETREDIR and CLIENT TRACKINGINFO, with Redis 7.0's
//! replies and error texts (networking.c's `clientCommand`).

use super::flags;
use crate::commands::{err, parse};
use crate::protocol::Out;
use crate::server::ConnCtx;
use bytes::Bytes;

const SWITCH_BCAST: &str = "ERR You can't switch BCAST mode on/off before disabling tracking \
                            for this client, and then re-enabling it with a different mode.";
const SWITCH_OPT: &str = "ERR You can't switch OPTIN/OPTOUT mode before disabling tracking for \
                          this client, and then re-enabling it with a different mode.";

/// The options of CLIENT TRACKING after the on/off argument.
struct Options {
    redirect: u64,
    flags: u32,
    prefixes: Vec<Vec<u8>>,
}

/// Parses the options as Redis does, in order, checking the redirect target exists.
fn parse_options(ctx: &ConnCtx, args: &[Bytes]) -> Result<Options, String> {
    let mut o = Options {
        redirect: 0,
        flags: 0,
        prefixes: Vec::new(),
    };
    let mut j = 3;
    while j < args.len() {
        let a = &args[j];
        let more = j + 1 < args.len();
        if parse::eq(a, "redirect") && more {
            j += 1;
            if o.redirect != 0 {
                return Err("ERR A client can only redirect to a single other client".into());
            }
            let id = parse::i64_arg(&args[j]).map_err(|_| err::NOT_INT.to_string())?;
            let exists = id > 0
                && ctx
                    .server
                    .clients
                    .lock()
                    .map(|m| m.contains_key(&(id as u64)))
                    .unwrap_or(false);
            if !exists {
                return Err("ERR The client ID you want redirect to does not exist".into());
            }
            o.redirect = id as u64;
        } else if parse::eq(a, "bcast") {
            o.flags |= flags::BCAST;
        } else if parse::eq(a, "optin") {
            o.flags |= flags::OPTIN;
        } else if parse::eq(a, "optout") {
            o.flags |= flags::OPTOUT;
        } else if parse::eq(a, "noloop") {
            o.flags |= flags::NOLOOP;
        } else if parse::eq(a, "prefix") && more {
            j += 1;
            o.prefixes.push(args[j].to_vec());
        } else {
            return Err(err::SYNTAX.into());
        }
        j += 1;
    }
    Ok(o)
}

/// Whether one prefix is a prefix of the other (they would both match some key).
fn overlap(a: &[u8], b: &[u8]) -> bool {
    let n = a.len().min(b.len());
    a[..n] == b[..n]
}

/// Redis's `checkPrefixCollisionsOrReply`. (Redis 7.0 replies with the error and then still
/// enables tracking and replies OK when the overlap is between two new prefixes after the
/// first; shardis stops at the error, keeping one reply per command.)
fn check_prefixes(existing: &[Vec<u8>], new: &[Vec<u8>]) -> Result<(), String> {
    let show = |p: &[u8]| String::from_utf8_lossy(p).into_owned();
    for (i, p) in new.iter().enumerate() {
        if let Some(old) = existing.iter().find(|old| overlap(old, p)) {
            return Err(format!(
                "ERR Prefix '{}' overlaps with an existing prefix '{}'. Prefixes for a single \
                 client must not overlap.",
                show(p),
                show(old)
            ));
        }
        if let Some(other) = new[i + 1..].iter().find(|q| overlap(p, q)) {
            return Err(format!(
                "ERR Prefix '{}' overlaps with another provided prefix '{}'. Prefixes for a \
                 single client must not overlap.",
                show(p),
                show(other)
            ));
        }
    }
    Ok(())
}

/// The checks of `CLIENT TRACKING ON` against the options and the client's current mode.
fn check_on(current: u32, o: &Options, existing: &[Vec<u8>]) -> Result<(), String> {
    let bcast = o.flags & flags::BCAST != 0;
    if !bcast && !o.prefixes.is_empty() {
        return Err("ERR PREFIX option requires BCAST mode to be enabled".into());
    }
    if current & flags::ON != 0 && (current & flags::BCAST != 0) != bcast {
        return Err(SWITCH_BCAST.into());
    }
    let (optin, optout) = (o.flags & flags::OPTIN != 0, o.flags & flags::OPTOUT != 0);
    if bcast && (optin || optout) {
        return Err("ERR OPTIN and OPTOUT are not compatible with BCAST".into());
    }
    if optin && optout {
        return Err("ERR You can't specify both OPTIN mode and OPTOUT mode".into());
    }
    if (optin && current & flags::OPTOUT != 0) || (optout && current & flags::OPTIN != 0) {
        return Err(SWITCH_OPT.into());
    }
    if bcast {
        check_prefixes(existing, &o.prefixes)?;
    }
    Ok(())
}

/// CLIENT TRACKING ON|OFF [REDIRECT id] [PREFIX p ...] [BCAST] [OPTIN] [OPTOUT] [NOLOOP]
pub fn client_tracking(ctx: &mut ConnCtx, args: &[Bytes], out: &mut Out) {
    let o = match parse_options(ctx, args) {
        Ok(o) => o,
        Err(e) => return out.error(&e),
    };
    let shared = ctx.client.shared.clone();
    if parse::eq(&args[2], "on") {
        let current = shared.tracking.flags();
        if let Err(e) = check_on(current, &o, &shared.tracking.prefixes()) {
            return out.error(&e);
        }
        if o.redirect != 0 {
            let target = ctx
                .server
                .clients
                .lock()
                .ok()
                .and_then(|m| m.get(&o.redirect).cloned());
            if let Some(t) = target {
                super::list_target(&t);
            }
        }
        super::enable(&shared, o.redirect, o.flags, &o.prefixes);
    } else if parse::eq(&args[2], "off") {
        super::disable(&shared);
    } else {
        return out.error(err::SYNTAX);
    }
    out.ok();
}

/// CLIENT CACHING YES|NO
pub fn client_caching(ctx: &mut ConnCtx, args: &[Bytes], out: &mut Out) {
    let shared = &ctx.client.shared;
    let f = shared.tracking.flags();
    if f & flags::ON == 0 {
        return out.error(
            "ERR CLIENT CACHING can be called only when the client is in tracking mode with \
             OPTIN or OPTOUT mode enabled",
        );
    }
    if parse::eq(&args[2], "yes") {
        if f & flags::OPTIN == 0 {
            return out.error(
                "ERR CLIENT CACHING YES is only valid when tracking is enabled in OPTIN mode.",
            );
        }
    } else if parse::eq(&args[2], "no") {
        if f & flags::OPTOUT == 0 {
            return out.error(
                "ERR CLIENT CACHING NO is only valid when tracking is enabled in OPTOUT mode.",
            );
        }
    } else {
        return out.error(err::SYNTAX);
    }
    super::set_caching(shared, true);
    out.ok();
}

/// CLIENT GETREDIR: the redirect id while tracking (0: none), -1 when tracking is off.
pub fn client_getredir(ctx: &mut ConnCtx, _args: &[Bytes], out: &mut Out) {
    out.int(super::list_redir(&ctx.client.shared));
}

/// CLIENT TRACKINGINFO: flags (a set), redirect, prefixes.
pub fn client_trackinginfo(ctx: &mut ConnCtx, _args: &[Bytes], out: &mut Out) {
    let h = &ctx.client.shared.tracking;
    let f = h.flags();
    let on = f & flags::ON != 0;
    let mut names = vec![if on { "on" } else { "off" }];
    if f & flags::BCAST != 0 {
        names.push("bcast");
    }
    if f & flags::OPTIN != 0 {
        names.push("optin");
        if f & flags::CACHING != 0 {
            names.push("caching-yes");
        }
    }
    if f & flags::OPTOUT != 0 {
        names.push("optout");
        if f & flags::CACHING != 0 {
            names.push("caching-no");
        }
    }
    if f & flags::NOLOOP != 0 {
        names.push("noloop");
    }
    if f & flags::BROKEN_REDIR != 0 {
        names.push("broken_redirect");
    }
    out.map(3);
    out.bulk_str("flags");
    out.set(names.len());
    for n in names {
        out.bulk_str(n);
    }
    out.bulk_str("redirect");
    out.int(super::list_redir(&ctx.client.shared));
    out.bulk_str("prefixes");
    let prefixes = h.prefixes();
    out.array(prefixes.len());
    for p in prefixes {
        out.bulk(&p);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_collisions_name_both_prefixes() {
        let new = vec![b"FOOBAR".to_vec(), b"FOO".to_vec()];
        let e = check_prefixes(&[], &new).unwrap_err();
        assert!(e.starts_with("ERR Prefix 'FOOBAR' overlaps with another provided prefix 'FOO'"));
        let e = check_prefixes(&[b"BAR".to_vec()], &[b"BARB".to_vec()]).unwrap_err();
        assert!(e.starts_with("ERR Prefix 'BARB' overlaps with an existing prefix 'BAR'"));
        assert!(check_prefixes(&[b"FOO".to_vec()], &[b"BAR".to_vec()]).is_ok());
    }
}
