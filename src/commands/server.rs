//! Connection and server commands (minimal set; the full family is being written).

use super::{flag, Cmd};
use crate::protocol::Out;
use crate::server::ConnCtx;
use bytes::Bytes;

pub static COMMANDS: [Cmd; 3] = [
    Cmd::conn("ping", -1, flag::FAST | flag::STALE, ping).with_acl(&["fast", "connection"]),
    Cmd::conn("echo", 2, flag::FAST | flag::STALE, echo).with_acl(&["fast", "connection"]),
    Cmd::conn(
        "quit",
        -1,
        flag::NO_AUTH | flag::ALLOW_BUSY | flag::LOADING | flag::STALE | flag::FAST,
        quit,
    )
    .with_acl(&["fast", "connection"]),
];

fn ping(_ctx: &mut ConnCtx, args: &[Bytes], out: &mut Out) {
    match args.len() {
        1 => out.simple("PONG"),
        2 => out.bulk(&args[1]),
        _ => out.error("ERR wrong number of arguments for 'ping' command"),
    }
}

fn echo(_ctx: &mut ConnCtx, args: &[Bytes], out: &mut Out) {
    out.bulk(&args[1]);
}

fn quit(ctx: &mut ConnCtx, _args: &[Bytes], out: &mut Out) {
    out.ok();
    ctx.client.close_after_reply = true;
}
