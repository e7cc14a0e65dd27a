//! Pub/sub commands: (P|S)SUBSCRIBE, (P|S)UNSUBSCRIBE, PUBLISH, SPUBLISH, PUBSUB.
//!
//! Subscriptions are recorded on the client (for its own replies and clean-up) and in the
//! server's registry (for publishers on any shard). PUBLISH computes its receivers at once,
//! replies with their number, and leaves the deliveries to the engine.

use super::{err, flag, Cmd};
use crate::protocol::Out;
use crate::pubsub::Kind;
use crate::server::{Client, ConnCtx, Server};
use crate::shard::mesh::ConnRef;
use bytes::Bytes;

const PS: u32 = flag::PUBSUB | flag::NOSCRIPT | flag::LOADING | flag::STALE;
const ACL: &[&str] = &["pubsub", "slow"];

pub static COMMANDS: [Cmd; 9] = [
    Cmd::conn("subscribe", -2, PS, subscribe).with_acl(ACL),
    Cmd::conn("unsubscribe", -1, PS, unsubscribe).with_acl(ACL),
    Cmd::conn("psubscribe", -2, PS, psubscribe).with_acl(ACL),
    Cmd::conn("punsubscribe", -1, PS, punsubscribe).with_acl(ACL),
    Cmd::conn("ssubscribe", -2, PS, ssubscribe).with_acl(ACL),
    Cmd::conn("sunsubscribe", -1, PS, sunsubscribe).with_acl(ACL),
    Cmd::conn(
        "publish",
        3,
        flag::PUBSUB | flag::LOADING | flag::STALE | flag::FAST | flag::MAY_REPLICATE,
        publish,
    )
    .with_acl(&["pubsub", "fast"]),
    Cmd::conn(
        "spublish",
        3,
        flag::PUBSUB | flag::LOADING | flag::STALE | flag::FAST | flag::MAY_REPLICATE,
        spublish,
    )
    .with_acl(&["pubsub", "fast"]),
    Cmd::container("pubsub", 0, &PUBSUB_SUBS),
];

const INTRO: u32 = flag::PUBSUB | flag::LOADING | flag::STALE;

pub static PUBSUB_SUBS: [Cmd; 6] = [
    Cmd::conn("channels", -2, INTRO, pubsub_channels),
    Cmd::conn("numsub", -2, INTRO, pubsub_numsub),
    Cmd::conn("numpat", 2, INTRO, pubsub_numpat),
    Cmd::conn("shardchannels", -2, INTRO, pubsub_shardchannels),
    Cmd::conn("shardnumsub", -2, INTRO, pubsub_shardnumsub),
    Cmd::conn("help", 2, flag::LOADING | flag::STALE, pubsub_help),
];

fn me(ctx: &ConnCtx) -> ConnRef {
    ConnRef {
        shard: ctx.shard,
        token: ctx.client.token,
        gen: ctx.client.gen,
    }
}

fn list_of(c: &mut Client, kind: Kind) -> &mut Vec<Bytes> {
    match kind {
        Kind::Channel => &mut c.subs,
        Kind::Pattern => &mut c.psubs,
        Kind::Shard => &mut c.ssubs,
    }
}

/// The count a (un)subscribe reply carries: channels plus patterns, or shard channels alone.
fn count_for(c: &Client, kind: Kind) -> usize {
    match kind {
        Kind::Shard => c.ssubs.len(),
        _ => c.subs.len() + c.psubs.len(),
    }
}

fn reply_word(kind: Kind, sub: bool) -> &'static str {
    match (kind, sub) {
        (Kind::Channel, true) => "subscribe",
        (Kind::Channel, false) => "unsubscribe",
        (Kind::Pattern, true) => "psubscribe",
        (Kind::Pattern, false) => "punsubscribe",
        (Kind::Shard, true) => "ssubscribe",
        (Kind::Shard, false) => "sunsubscribe",
    }
}

fn confirm(out: &mut Out, kind: Kind, sub: bool, name: Option<&[u8]>, count: usize) {
    out.push(3);
    out.bulk_str(reply_word(kind, sub));
    match name {
        Some(n) => out.bulk(n),
        None => out.null(),
    }
    out.int(count as i64);
}

fn do_subscribe(ctx: &mut ConnCtx, args: &[Bytes], out: &mut Out, kind: Kind) {
    let me = me(ctx);
    for name in &args[1..] {
        if !list_of(ctx.client, kind).iter().any(|n| n == name) {
            list_of(ctx.client, kind).push(name.clone());
            ctx.server.pubsub.write().subscribe(kind, name, me);
        }
        confirm(out, kind, true, Some(name), count_for(ctx.client, kind));
    }
}

fn do_unsubscribe(ctx: &mut ConnCtx, args: &[Bytes], out: &mut Out, kind: Kind) {
    let me = me(ctx);
    let names: Vec<Bytes> = if args.len() > 1 {
        args[1..].to_vec()
    } else {
        list_of(ctx.client, kind).clone()
    };
    if names.is_empty() {
        confirm(out, kind, false, None, count_for(ctx.client, kind));
        return;
    }
    for name in names {
        let list = list_of(ctx.client, kind);
        if let Some(i) = list.iter().position(|n| *n == name) {
            list.remove(i);
            ctx.server.pubsub.write().unsubscribe(kind, &name, me);
        }
        confirm(out, kind, false, Some(&name), count_for(ctx.client, kind));
    }
}

fn subscribe(ctx: &mut ConnCtx, args: &[Bytes], out: &mut Out) {
    do_subscribe(ctx, args, out, Kind::Channel)
}
fn psubscribe(ctx: &mut ConnCtx, args: &[Bytes], out: &mut Out) {
    do_subscribe(ctx, args, out, Kind::Pattern)
}
fn ssubscribe(ctx: &mut ConnCtx, args: &[Bytes], out: &mut Out) {
    do_subscribe(ctx, args, out, Kind::Shard)
}
fn unsubscribe(ctx: &mut ConnCtx, args: &[Bytes], out: &mut Out) {
    do_unsubscribe(ctx, args, out, Kind::Channel)
}
fn punsubscribe(ctx: &mut ConnCtx, args: &[Bytes], out: &mut Out) {
    do_unsubscribe(ctx, args, out, Kind::Pattern)
}
fn sunsubscribe(ctx: &mut ConnCtx, args: &[Bytes], out: &mut Out) {
    do_unsubscribe(ctx, args, out, Kind::Shard)
}

/// Drops every subscription of a closing (or RESET) client from the registry.
pub fn unsubscribe_all(server: &Server, shard: usize, c: &mut Client) {
    let me = ConnRef {
        shard,
        token: c.token,
        gen: c.gen,
    };
    let mut reg = server.pubsub.write();
    for n in c.subs.drain(..) {
        reg.unsubscribe(Kind::Channel, &n, me);
    }
    for n in c.psubs.drain(..) {
        reg.unsubscribe(Kind::Pattern, &n, me);
    }
    for n in c.ssubs.drain(..) {
        reg.unsubscribe(Kind::Shard, &n, me);
    }
}

fn do_publish(ctx: &mut ConnCtx, args: &[Bytes], out: &mut Out, sharded: bool) {
    let deliveries = ctx
        .server
        .pubsub
        .read()
        .receivers(&args[1], &args[2], sharded);
    out.int(deliveries.len() as i64);
    ctx.deliveries.extend(deliveries);
}

/// SUBSCRIBE and its kin: their confirmations are pushes that CLIENT REPLY OFF does not
/// silence.
pub fn is_subscription_command(name: &str) -> bool {
    matches!(
        name,
        "subscribe" | "psubscribe" | "ssubscribe" | "unsubscribe" | "punsubscribe" | "sunsubscribe"
    )
}

fn publish(ctx: &mut ConnCtx, args: &[Bytes], out: &mut Out) {
    do_publish(ctx, args, out, false);
    propagate_publish(ctx, args);
}

fn spublish(ctx: &mut ConnCtx, args: &[Bytes], out: &mut Out) {
    do_publish(ctx, args, out, true);
    propagate_publish(ctx, args);
}

/// Redis forwards published messages to replicas (not to the AOF), so their subscribers get
/// them too.
fn propagate_publish(ctx: &mut ConnCtx, args: &[Bytes]) {
    if ctx.server.feed.active() {
        ctx.propagate.push(crate::replication::Op {
            db: ctx.client.db,
            argv: args.to_vec(),
            repl_only: true,
            aof_only: false,
        });
    }
}

fn names(ctx: &ConnCtx, args: &[Bytes], out: &mut Out, kind: Kind) {
    if args.len() > 3 {
        out.error(&err::wrong_args(if kind == Kind::Shard {
            "pubsub|shardchannels"
        } else {
            "pubsub|channels"
        }));
        return;
    }
    let v = ctx
        .server
        .pubsub
        .read()
        .names(kind, args.get(2).map(|p| &p[..]));
    out.array(v.len());
    for n in v {
        out.bulk(&n);
    }
}

fn numsub(ctx: &ConnCtx, args: &[Bytes], out: &mut Out, kind: Kind) {
    let reg = ctx.server.pubsub.read();
    out.array((args.len() - 2) * 2);
    for ch in &args[2..] {
        out.bulk(ch);
        out.int(reg.count(kind, ch) as i64);
    }
}

fn pubsub_channels(ctx: &mut ConnCtx, args: &[Bytes], out: &mut Out) {
    names(ctx, args, out, Kind::Channel)
}
fn pubsub_shardchannels(ctx: &mut ConnCtx, args: &[Bytes], out: &mut Out) {
    names(ctx, args, out, Kind::Shard)
}
fn pubsub_numsub(ctx: &mut ConnCtx, args: &[Bytes], out: &mut Out) {
    numsub(ctx, args, out, Kind::Channel)
}
fn pubsub_shardnumsub(ctx: &mut ConnCtx, args: &[Bytes], out: &mut Out) {
    numsub(ctx, args, out, Kind::Shard)
}
fn pubsub_numpat(ctx: &mut ConnCtx, _args: &[Bytes], out: &mut Out) {
    out.int(ctx.server.pubsub.read().numpat() as i64);
}

fn pubsub_help(_ctx: &mut ConnCtx, _args: &[Bytes], out: &mut Out) {
    let lines = [
        "PUBSUB <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
        "CHANNELS [<pattern>]",
        "    Return the currently active channels matching a <pattern> (default: '*').",
        "NUMPAT",
        "    Return number of subscriptions to patterns.",
        "NUMSUB [<channel> ...]",
        "    Return the number of subscribers for the specified channels, excluding",
        "    pattern subscriptions(default: no channels).",
        "SHARDCHANNELS [<pattern>]",
        "    Return the currently active shard level channels matching a <pattern> (default: '*').",
        "SHARDNUMSUB [<shardchannel> ...]",
        "    Return the number of subscribers for the specified shard level channel(s)",
        "HELP",
        "    Print this help.",
    ];
    out.array(lines.len());
    for l in lines {
        out.simple(l);
    }
}

/// Whether `name` may run on a RESP2 connection in subscribed mode.
pub fn allowed_in_subscribed_mode(name: &str) -> bool {
    matches!(
        name,
        "subscribe"
            | "ssubscribe"
            | "unsubscribe"
            | "sunsubscribe"
            | "psubscribe"
            | "punsubscribe"
            | "ping"
            | "quit"
            | "reset"
    )
}
