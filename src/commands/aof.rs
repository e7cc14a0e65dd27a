//! AOF commands: BGREWRITEAOF, and DEBUG LOADAOF's reply. The work lives in
//! `persistence::aof`.

use super::{flag, Cmd};
use crate::persistence::aof::rewrite::{self, RewriteReply};
use crate::protocol::Out;
use crate::server::ConnCtx;
use bytes::Bytes;

pub static COMMANDS: [Cmd; 1] = [Cmd::conn(
    "bgrewriteaof",
    1,
    flag::ADMIN | flag::NOSCRIPT,
    bgrewriteaof,
)
.with_acl(&["admin", "slow", "dangerous"])];

fn bgrewriteaof(ctx: &mut ConnCtx, _args: &[Bytes], out: &mut Out) {
    if crate::persistence::snapshot::in_exec() {
        // Inside EXEC: Redis schedules it (`server.in_exec`).
        ctx.server.aof.state.lock().rewrite_scheduled = true;
        return out.simple("Background append only file rewriting scheduled");
    }
    match rewrite::bgrewriteaof(ctx.server) {
        RewriteReply::Started => out.simple("Background append only file rewriting started"),
        RewriteReply::Scheduled => out.simple("Background append only file rewriting scheduled"),
        RewriteReply::InProgress => {
            out.error("ERR Background append only file rewriting already in progress")
        }
        RewriteReply::Failed => out.error(
            "ERR Can't execute an AOF background rewriting. Please check the server logs for more information.",
        ),
    }
}

/// DEBUG LOADAOF.
pub fn debug_loadaof(ctx: &mut ConnCtx, _args: &[Bytes], out: &mut Out) {
    match crate::persistence::aof::load::debug_loadaof(ctx.server) {
        Ok(()) => out.ok(),
        Err(e) => out.error(&e),
    }
}

/// DEBUG AOF-FLUSH-SLEEP <microseconds>: the AOF writer sleeps that long before each write.
pub fn debug_flush_sleep(ctx: &mut ConnCtx, args: &[Bytes], out: &mut Out) {
    match super::parse::i64_arg(&args[2]) {
        Ok(us) => {
            ctx.server
                .aof
                .flush_sleep_us
                .store(us.max(0) as u64, std::sync::atomic::Ordering::Relaxed);
            out.ok()
        }
        Err(e) => out.error(e),
    }
}
