//! Connection commands: PING, ECHO, QUIT, RESET, AUTH, HELLO, SELECT, CLIENT.

use super::{err, flag, parse, Cmd};
use crate::protocol::Out;
use crate::server::{ClientShared, ConnCtx};
use bytes::Bytes;
use std::sync::atomic::Ordering;

const CONN: u32 = flag::NO_AUTH | flag::ALLOW_BUSY | flag::LOADING | flag::STALE | flag::FAST;

pub static COMMANDS: [Cmd; 10] = [
    Cmd::conn(
        "monitor",
        1,
        flag::ADMIN | flag::NOSCRIPT | flag::LOADING | flag::STALE,
        monitor,
    )
    .with_acl(&["admin", "slow", "dangerous"]),
    Cmd::conn("ping", -1, flag::FAST, ping).with_acl(&["fast", "connection"]),
    Cmd::conn("echo", 2, flag::FAST | flag::STALE, echo).with_acl(&["fast", "connection"]),
    Cmd::conn("quit", -1, CONN, quit).with_acl(&["fast", "connection"]),
    Cmd::conn("reset", 1, CONN, reset).with_acl(&["fast", "connection"]),
    Cmd::conn("auth", -2, CONN & !flag::FAST, crate::acl::command::auth)
        .with_acl(&["fast", "connection"]),
    Cmd::conn("hello", -1, CONN & !flag::FAST, hello).with_acl(&["fast", "connection"]),
    Cmd::conn(
        "select",
        2,
        flag::LOADING | flag::STALE | flag::FAST,
        select,
    )
    .with_acl(&["fast", "connection"]),
    Cmd::container("client", 0, &CLIENT_SUBS),
    Cmd::conn(
        "readonly",
        1,
        flag::LOADING | flag::STALE | flag::FAST,
        ok_cmd,
    )
    .with_acl(&["fast", "connection"]),
];

const CS: u32 = flag::NOSCRIPT | flag::LOADING | flag::STALE;

pub static CLIENT_SUBS: [Cmd; 18] = [
    Cmd::conn("unblock", -3, CS | flag::ADMIN, client_unblock),
    Cmd::conn("id", 2, CS, client_id),
    Cmd::conn("setname", 3, CS, client_setname),
    Cmd::conn("getname", 2, CS, client_getname),
    Cmd::conn("list", -2, CS | flag::ADMIN, client_list),
    Cmd::conn("info", 2, CS, client_info),
    Cmd::conn("kill", -3, CS | flag::ADMIN, client_kill),
    Cmd::conn("no-evict", 3, CS | flag::ADMIN, client_no_evict),
    Cmd::conn("no-touch", 3, CS, client_no_touch),
    Cmd::conn("reply", 3, CS, client_reply),
    Cmd::conn("pause", -3, CS | flag::ADMIN, client_pause),
    Cmd::conn("unpause", 2, CS | flag::ADMIN, client_unpause),
    Cmd::conn("help", 2, CS, client_help),
    Cmd::conn("setinfo", 4, CS, client_setinfo),
    Cmd::conn(
        "tracking",
        -3,
        CS,
        crate::tracking::command::client_tracking,
    ),
    Cmd::conn("caching", 3, CS, crate::tracking::command::client_caching),
    Cmd::conn("getredir", 2, CS, crate::tracking::command::client_getredir),
    Cmd::conn(
        "trackinginfo",
        2,
        CS,
        crate::tracking::command::client_trackinginfo,
    ),
];

fn ping(ctx: &mut ConnCtx, args: &[Bytes], out: &mut Out) {
    if ctx.client.proto == 2 && ctx.client.subscriptions() > 0 {
        if args.len() > 2 {
            return out.error(&err::wrong_args("ping"));
        }
        out.array(2);
        out.bulk(b"pong");
        out.bulk(args.get(1).map_or(&b""[..], |a| &a[..]));
        return;
    }
    match args.len() {
        1 => out.simple("PONG"),
        2 => out.bulk(&args[1]),
        _ => out.error(&err::wrong_args("ping")),
    }
}

fn echo(_ctx: &mut ConnCtx, args: &[Bytes], out: &mut Out) {
    out.bulk(&args[1]);
}

/// One MONITOR line: `+<secs>.<micros> [<db> <addr>] "arg" ...`, with `addr` the client's
/// address, or `lua` for a command a script ran.
pub fn monitor_line(db: usize, addr: &str, args: &[Bytes], hidden: &[usize]) -> Bytes {
    let us = crate::util::now_us();
    let mut line = format!(
        "+{}.{:06} [{} {}]",
        us / 1_000_000,
        us % 1_000_000,
        db,
        addr
    );
    for (j, a) in args.iter().enumerate() {
        line.push(' ');
        if hidden.contains(&j) {
            line.push_str("\"(redacted)\"");
        } else {
            line.push_str(&crate::util::repr(a));
        }
    }
    line.push_str("\r\n");
    Bytes::from(line)
}

fn monitor(ctx: &mut ConnCtx, _args: &[Bytes], out: &mut Out) {
    if ctx.client.monitor {
        return;
    }
    ctx.client.monitor = true;
    if let Ok(mut f) = ctx.client.shared.flags.lock() {
        *f = "O".to_string();
    }
    let me = crate::shard::mesh::ConnRef {
        shard: ctx.shard,
        token: ctx.client.token,
        gen: ctx.client.gen,
    };
    if let Ok(mut m) = ctx.server.monitors.lock() {
        m.push(me);
        ctx.server.monitor_count.store(m.len(), Ordering::SeqCst);
    }
    out.ok();
}

fn ok_cmd(_ctx: &mut ConnCtx, _args: &[Bytes], out: &mut Out) {
    out.ok();
}

fn quit(ctx: &mut ConnCtx, _args: &[Bytes], out: &mut Out) {
    out.ok();
    ctx.client.close_after_reply = true;
}

fn reset(ctx: &mut ConnCtx, _args: &[Bytes], out: &mut Out) {
    ctx.client.multi = None;
    ctx.client.multi_error = false;
    super::multi::unwatch_all(ctx.server, ctx.client);
    super::pubsub::unsubscribe_all(ctx.server, ctx.shard, ctx.client);
    crate::tracking::disable(&ctx.client.shared);
    let c = &mut *ctx.client;
    c.set_db(0);
    c.proto = 2;
    c.shared.proto.store(2, Ordering::Relaxed);
    c.no_touch = false;
    c.no_evict = false;
    c.reply_off = false;
    c.reply_skip_next = false;
    if let Ok(mut n) = c.shared.name.lock() {
        n.clear();
    }
    crate::acl::command::reset_client(ctx);
    out.simple("RESET");
}

fn hello(ctx: &mut ConnCtx, args: &[Bytes], out: &mut Out) {
    let mut proto = ctx.client.proto;
    let mut i = 1;
    if args.len() >= 2 {
        match parse::i64_arg(&args[1]) {
            Ok(v) => {
                if !(2..=3).contains(&v) {
                    out.error("NOPROTO unsupported protocol version");
                    return;
                }
                proto = v as u8;
            }
            Err(_) => {
                out.error("ERR Protocol version is not an integer or out of range");
                return;
            }
        }
        i = 2;
    }
    let mut setname: Option<&Bytes> = None;
    while i < args.len() {
        let more = args.len() - i - 1;
        if parse::eq(&args[i], "auth") && more >= 2 {
            let (u, p) = (args[i + 1].clone(), args[i + 2].clone());
            if let Err(e) = crate::acl::command::authenticate(ctx, Some(&u), &p, &args[0]) {
                out.error(e);
                return;
            }
            i += 3;
        } else if parse::eq(&args[i], "setname") && more >= 1 {
            setname = Some(&args[i + 1]);
            i += 2;
        } else {
            out.error(&format!(
                "ERR Syntax error in HELLO option '{}'",
                String::from_utf8_lossy(&args[i])
            ));
            return;
        }
    }
    if !ctx.client.authenticated {
        out.error("NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO <proto> AUTH <user> <pass> option can be used to authenticate the client and select the RESP protocol version at the same time");
        return;
    }
    if let Some(name) = setname {
        if let Err(e) = set_name(&ctx.client.shared, name) {
            out.error(e);
            return;
        }
    }
    ctx.client.proto = proto;
    ctx.client
        .shared
        .proto
        .store(proto as usize, Ordering::Relaxed);
    out.proto = proto;
    out.map(7);
    out.bulk_str("server");
    out.bulk_str("redis");
    out.bulk_str("version");
    out.bulk_str(crate::server::run::REDIS_VERSION);
    out.bulk_str("proto");
    out.int(proto as i64);
    out.bulk_str("id");
    out.int(ctx.client.id() as i64);
    out.bulk_str("mode");
    out.bulk_str("standalone");
    out.bulk_str("role");
    out.bulk_str("master");
    out.bulk_str("modules");
    out.array(0);
}

fn select(ctx: &mut ConnCtx, args: &[Bytes], out: &mut Out) {
    let db = match parse::i32_arg(&args[1]) {
        Ok(db) => db,
        Err(e) => {
            out.error(e);
            return;
        }
    };
    if db < 0 || db as usize >= ctx.config().databases {
        out.error(err::DB_INDEX);
        return;
    }
    ctx.client.set_db(db as usize);
    out.ok();
}

fn client_id(ctx: &mut ConnCtx, _args: &[Bytes], out: &mut Out) {
    out.int(ctx.client.id() as i64);
}

fn set_name(shared: &ClientShared, name: &[u8]) -> Result<(), &'static str> {
    if name.iter().any(|&b| !(b'!'..=b'~').contains(&b)) {
        return Err("ERR Client names cannot contain spaces, newlines or special characters.");
    }
    if let Ok(mut n) = shared.name.lock() {
        *n = name.to_vec();
    }
    Ok(())
}

fn client_unblock(ctx: &mut ConnCtx, args: &[Bytes], out: &mut Out) {
    let Ok(id) = parse::i64_arg(&args[2]) else {
        out.error(err::NOT_INT);
        return;
    };
    let mut as_error = false;
    if args.len() == 4 {
        if parse::eq(&args[3], "error") {
            as_error = true;
        } else if !parse::eq(&args[3], "timeout") {
            out.error("ERR CLIENT UNBLOCK reason should be TIMEOUT or ERROR");
            return;
        }
    } else if args.len() > 4 {
        out.error(err::SYNTAX);
        return;
    }
    let target = ctx
        .server
        .client_list()
        .into_iter()
        .find(|c| c.id as i64 == id);
    let Some(target) = target else {
        out.int(0);
        return;
    };
    let waiter = target.waiter.lock().ok().and_then(|g| g.clone());
    let Some(w) = waiter.filter(|w| w.claim()) else {
        out.int(0);
        return;
    };
    let mut bytes = Vec::new();
    let mut o = Out::new(&mut bytes, w.proto);
    if as_error {
        o.error("UNBLOCKED client unblocked via CLIENT UNBLOCK");
        // The blocked command failed: errorstats and its failed_calls count it, as Redis's
        // updateStatsOnUnblock does.
        if let Some(h) = ctx.server.shards.get(ctx.shard) {
            let mut data = h.lock_data();
            data.cmd_stats.record_error("UNBLOCKED");
            if let Some(cmd) = w.args.first().and_then(|n| crate::commands::lookup(n)) {
                data.cmd_stats.record_failed(cmd.name);
            }
        }
    } else {
        match w.req.null {
            crate::storage::blocking::NullReply::Array => o.null_array(),
            crate::storage::blocking::NullReply::Bulk => o.null(),
        }
    }
    let msg = crate::shard::mesh::Msg::Unblocked {
        token: w.conn.token,
        gen: w.conn.gen,
        bytes,
        close: false,
    };
    if let Some(h) = ctx.server.shards.get(w.conn.shard) {
        h.mailbox.post(ctx.shard, &mut vec![msg]);
    }
    out.int(1);
}

fn client_setname(ctx: &mut ConnCtx, args: &[Bytes], out: &mut Out) {
    match set_name(&ctx.client.shared, &args[2]) {
        Ok(()) => out.ok(),
        Err(e) => out.error(e),
    }
}

fn client_setinfo(ctx: &mut ConnCtx, args: &[Bytes], out: &mut Out) {
    let target = if parse::eq(&args[2], "lib-name") {
        &ctx.client.shared.lib_name
    } else if parse::eq(&args[2], "lib-ver") {
        &ctx.client.shared.lib_ver
    } else {
        out.error(&format!(
            "ERR Unrecognized option '{}'",
            String::from_utf8_lossy(&args[2])
        ));
        return;
    };
    if let Ok(mut v) = target.lock() {
        *v = args[3].to_vec();
    }
    out.ok();
}

fn client_getname(ctx: &mut ConnCtx, _args: &[Bytes], out: &mut Out) {
    let name = ctx.client.shared.name();
    if name.is_empty() {
        out.null();
    } else {
        out.bulk(&name);
    }
}

/// One CLIENT LIST line, in Redis 7.0's field order, from what the client's home shard last
/// published.
pub fn client_line(c: &ClientShared, now_ms: u64, cmd_override: Option<&str>) -> String {
    let snap = crate::server::buffers::Snapshot::published(&c.bufs);
    format_line(c, &snap, now_ms, cmd_override)
}

/// The calling client's own line, measured now (its query buffer still holds the command).
fn own_line(ctx: &ConnCtx, args: &[Bytes], cmd: &str) -> String {
    let snap = crate::server::buffers::Snapshot::live(ctx.client, args);
    format_line(&ctx.client.shared, &snap, ctx.now_ms, Some(cmd))
}

fn format_line(
    c: &ClientShared,
    snap: &crate::server::buffers::Snapshot,
    now_ms: u64,
    cmd_override: Option<&str>,
) -> String {
    let last = c.last_interaction_ms.load(Ordering::Relaxed);
    let cmd = match cmd_override {
        Some(s) => s.to_string(),
        None => c.last_cmd_name().to_string(),
    };
    let role = c
        .flags
        .lock()
        .map(|g| g.clone())
        .unwrap_or_else(|_| "N".to_string());
    let [qbuf, qbuf_free, argv_mem, multi_mem, rbs, rbp, obl, oll, omem, tot_mem] = snap.figures;
    let [sub, psub, ssub] = snap.subs;
    format!(
        "id={} addr={} laddr={} fd={} name={} age={} idle={} flags={} db={} sub={} psub={} ssub={} multi={} qbuf={} qbuf-free={} argv-mem={} multi-mem={} rbs={} rbp={} obl={} oll={} omem={} tot-mem={} events=r cmd={} user={} redir={} resp={}",
        c.id,
        c.addr,
        c.laddr,
        c.fd,
        String::from_utf8_lossy(&c.name()),
        now_ms.saturating_sub(c.created_ms) / 1000,
        now_ms.saturating_sub(last) / 1000,
        snap.flags_text(&role, crate::tracking::list_flags(c), c.unix),
        c.db.load(Ordering::Relaxed),
        sub,
        psub,
        ssub,
        snap.multi,
        qbuf,
        qbuf_free,
        argv_mem,
        multi_mem,
        rbs,
        rbp,
        obl,
        oll,
        omem,
        tot_mem,
        cmd,
        crate::acl::client_user(c.id),
        crate::tracking::list_redir(c),
        c.proto.load(Ordering::Relaxed),
    )
}

fn client_list(ctx: &mut ConnCtx, args: &[Bytes], out: &mut Out) {
    let mut ids: Option<Vec<u64>> = None;
    let mut ty: Option<String> = None;
    let mut i = 2;
    while i < args.len() {
        if parse::eq(&args[i], "type") && i + 1 < args.len() {
            let t = String::from_utf8_lossy(&args[i + 1]).to_ascii_lowercase();
            if !["normal", "master", "replica", "slave", "pubsub"].contains(&t.as_str()) {
                out.error(&format!(
                    "ERR Unknown client type '{}'",
                    String::from_utf8_lossy(&args[i + 1])
                ));
                return;
            }
            ty = Some(t);
            i += 2;
        } else if parse::eq(&args[i], "id") && i + 1 < args.len() {
            let mut v = Vec::new();
            for a in &args[i + 1..] {
                match parse::i64_arg(a) {
                    Ok(n) if n > 0 => v.push(n as u64),
                    _ => {
                        out.error("ERR Invalid client ID");
                        return;
                    }
                }
            }
            ids = Some(v);
            i = args.len();
        } else {
            out.error(err::SYNTAX);
            return;
        }
    }
    let me = ctx.client.id();
    let mut text = String::new();
    crate::server::buffers::catch_up(ctx.server, ctx.shard);
    for c in ctx.server.client_list() {
        if ids.as_ref().is_some_and(|v| !v.contains(&c.id)) {
            continue;
        }
        if ty.as_deref().is_some_and(|t| !type_matches(&c, t)) {
            continue;
        }
        if c.id == me {
            text.push_str(&own_line(ctx, args, "client|list"));
        } else if c.kill.load(Ordering::Relaxed) {
            // Being closed (CLIENT KILL, client eviction): Redis frees such clients before
            // serving the next command, so they are not listed.
            continue;
        } else {
            text.push_str(&client_line(&c, ctx.now_ms, None));
        }
        text.push('\n');
    }
    out.verbatim(text.as_bytes(), "txt");
}

fn client_info(ctx: &mut ConnCtx, args: &[Bytes], out: &mut Out) {
    let mut line = own_line(ctx, args, "client|info");
    line.push('\n');
    out.verbatim(line.as_bytes(), "txt");
}

fn client_kill(ctx: &mut ConnCtx, args: &[Bytes], out: &mut Out) {
    let clients = ctx.server.client_list();
    let me = ctx.client.id();
    if args.len() == 3 {
        // Old form: CLIENT KILL addr:port.
        let addr = String::from_utf8_lossy(&args[2]).to_string();
        match clients.iter().find(|c| c.addr == addr) {
            Some(c) => {
                kill(ctx, c, me);
                out.ok();
            }
            None => out.error("ERR No such client"),
        }
        return;
    }
    if !(args.len() - 2).is_multiple_of(2) {
        out.error(err::SYNTAX);
        return;
    }
    let mut id: Option<u64> = None;
    let mut addr: Option<String> = None;
    let mut laddr: Option<String> = None;
    let mut skipme = true;
    let mut ty: Option<String> = None;
    let mut user: Option<String> = None;
    for pair in args[2..].chunks(2) {
        let v = String::from_utf8_lossy(&pair[1]).to_string();
        if parse::eq(&pair[0], "id") {
            match parse::i64_arg(&pair[1]) {
                Ok(n) if n > 0 => id = Some(n as u64),
                _ => {
                    out.error("ERR client-id should be greater than 0");
                    return;
                }
            }
        } else if parse::eq(&pair[0], "addr") {
            addr = Some(v);
        } else if parse::eq(&pair[0], "laddr") {
            laddr = Some(v);
        } else if parse::eq(&pair[0], "type") {
            let t = v.to_ascii_lowercase();
            if !["normal", "master", "replica", "slave", "pubsub"].contains(&t.as_str()) {
                out.error(&format!("ERR Unknown client type '{}'", v));
                return;
            }
            ty = Some(t);
        } else if parse::eq(&pair[0], "user") {
            if !crate::acl::table().read().users.contains_key(&v) {
                out.error(&format!("ERR No such user '{}'", v));
                return;
            }
            user = Some(v);
        } else if parse::eq(&pair[0], "skipme") {
            match v.to_ascii_lowercase().as_str() {
                "yes" => skipme = true,
                "no" => skipme = false,
                _ => {
                    out.error(err::SYNTAX);
                    return;
                }
            }
        } else {
            out.error(err::SYNTAX);
            return;
        }
    }
    let mut killed = 0;
    for c in &clients {
        if id.is_some_and(|i| i != c.id)
            || addr.as_ref().is_some_and(|a| *a != c.addr)
            || laddr.as_ref().is_some_and(|a| *a != c.laddr)
            || ty.as_deref().is_some_and(|t| !type_matches(c, t))
            || user
                .as_deref()
                .is_some_and(|u| crate::acl::client_user(c.id) != u)
            || (skipme && c.id == me)
        {
            continue;
        }
        kill(ctx, c, me);
        killed += 1;
    }
    out.int(killed);
}

/// Whether a client is of a CLIENT LIST/KILL `TYPE`: the replication link to our master has
/// flag M, a replica attached to us flag S, a subscriber P.
fn type_matches(c: &ClientShared, ty: &str) -> bool {
    let flags = c.flags.lock().map(|f| f.clone()).unwrap_or_default();
    let actual = if flags.contains('M') {
        "master"
    } else if flags.contains('S') {
        "replica"
    } else if flags.contains('P') {
        "pubsub"
    } else {
        "normal"
    };
    actual == ty || (ty == "slave" && actual == "replica")
}

pub(crate) fn kill(ctx: &mut ConnCtx, c: &ClientShared, me: u64) {
    if c.id == me {
        ctx.client.close_after_reply = true;
        return;
    }
    c.kill.store(true, Ordering::SeqCst);
    let master_link = c.flags.lock().is_ok_and(|f| f.contains('M'));
    if !master_link {
        ctx.server.drop_and_shut_down(c);
    }
    if let Some(h) = ctx.server.shards.get(c.shard) {
        h.wake();
    }
}

fn on_off(arg: &[u8]) -> Option<bool> {
    if parse::eq(arg, "on") {
        Some(true)
    } else if parse::eq(arg, "off") {
        Some(false)
    } else {
        None
    }
}

fn client_no_evict(ctx: &mut ConnCtx, args: &[Bytes], out: &mut Out) {
    match on_off(&args[2]) {
        Some(b) => {
            ctx.client.no_evict = b;
            out.ok();
        }
        None => out.error(err::SYNTAX),
    }
}

fn client_no_touch(ctx: &mut ConnCtx, args: &[Bytes], out: &mut Out) {
    match on_off(&args[2]) {
        Some(b) => {
            ctx.client.no_touch = b;
            out.ok();
        }
        None => out.error(err::SYNTAX),
    }
}

fn client_reply(ctx: &mut ConnCtx, args: &[Bytes], out: &mut Out) {
    if parse::eq(&args[2], "on") {
        ctx.client.reply_off = false;
        ctx.client.reply_skip_next = false;
        // A SKIP just before applies to this very command, and ON cancels it (Redis clears
        // CLIENT_REPLY_SKIP in the handler), so the OK is sent.
        ctx.client.reply_skip_this = false;
        out.ok();
    } else if parse::eq(&args[2], "off") {
        ctx.client.reply_off = true;
    } else if parse::eq(&args[2], "skip") {
        if !ctx.client.reply_off {
            ctx.client.reply_skip_next = true;
        }
    } else {
        out.error(err::SYNTAX);
    }
}

fn client_pause(ctx: &mut ConnCtx, args: &[Bytes], out: &mut Out) {
    let Ok(ms) = parse::i64_arg(&args[2]) else {
        out.error("ERR timeout is not an integer or out of range");
        return;
    };
    if ms < 0 {
        out.error("ERR timeout is negative");
        return;
    }
    let mut writes_only = false;
    if args.len() == 4 {
        if parse::eq(&args[3], "write") {
            writes_only = true;
        } else if !parse::eq(&args[3], "all") {
            out.error("ERR CLIENT PAUSE mode must be WRITE or ALL");
            return;
        }
    } else if args.len() > 4 {
        out.error(err::SYNTAX);
        return;
    }
    ctx.server
        .pause_writes_only
        .store(writes_only, Ordering::SeqCst);
    ctx.server
        .pause_until_ms
        .store(ctx.now_ms + ms as u64, Ordering::SeqCst);
    out.ok();
}

fn client_unpause(ctx: &mut ConnCtx, _args: &[Bytes], out: &mut Out) {
    ctx.server.pause_until_ms.store(0, Ordering::SeqCst);
    out.ok();
}

fn client_help(_ctx: &mut ConnCtx, _args: &[Bytes], out: &mut Out) {
    let lines = [
        "CLIENT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
        "CACHING (YES|NO)",
        "    Enable/disable tracking of the keys for next command in OPTIN/OPTOUT modes.",
        "GETREDIR",
        "    Return the client ID we are redirecting to when tracking is enabled.",
        "GETNAME",
        "    Return the name of the current connection.",
        "ID",
        "    Return the ID of the current connection.",
        "INFO",
        "    Return information about the current client connection.",
        "KILL <ip:port>",
        "    Kill connection made from <ip:port>.",
        "KILL <option> <value> [<option> <value> [...]]",
        "    Kill connections. Options are:",
        "    * ADDR (<ip:port>|<unixsocket>:0)",
        "      Kill connections made from the specified address",
        "    * LADDR (<ip:port>|<unixsocket>:0)",
        "      Kill connections made to specified local address",
        "    * TYPE (NORMAL|MASTER|REPLICA|PUBSUB)",
        "      Kill connections by type.",
        "    * USER <username>",
        "      Kill connections authenticated by <username>.",
        "    * SKIPME (YES|NO)",
        "      Skip killing current connection (default: yes).",
        "LIST [options ...]",
        "    Return information about client connections. Options:",
        "    * TYPE (NORMAL|MASTER|REPLICA|PUBSUB)",
        "      Return clients of specified type.",
        "UNPAUSE",
        "    Stop the current client pause, resuming traffic.",
        "PAUSE <timeout> [WRITE|ALL]",
        "    Suspend all, or just write, clients for <timeout> milliseconds.",
        "REPLY (ON|OFF|SKIP)",
        "    Control the replies sent to the current connection.",
        "SETNAME <name>",
        "    Assign the name <name> to the current connection.",
        "UNBLOCK <clientid> [TIMEOUT|ERROR]",
        "    Unblock the specified blocked client.",
        "TRACKING (ON|OFF) [REDIRECT <id>] [BCAST] [PREFIX <prefix> [...]]",
        "         [OPTIN] [OPTOUT] [NOLOOP]",
        "    Control server assisted client side caching.",
        "TRACKINGINFO",
        "    Report tracking status for the current connection.",
        "NO-EVICT (ON|OFF)",
        "    Protect current client connection from eviction.",
        "NO-TOUCH (ON|OFF)",
        "    Will not touch LRU/LFU stats when this mode is on.",
        "HELP",
        "    Print this help.",
    ];
    out.array(lines.len());
    for l in lines {
        out.simple(l);
    }
}
