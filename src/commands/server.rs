//! Server commands: INFO, CONFIG, COMMAND, TIME, LASTSAVE, DEBUG, SHUTDOWN.

use super::{err, flag, parse, specs, Cmd, Keys, Kind};
use crate::protocol::Out;
use crate::server::ConnCtx;
use crate::storage::Value;
use bytes::Bytes;
use std::sync::atomic::Ordering;

const ADMIN: u32 = flag::ADMIN | flag::NOSCRIPT | flag::LOADING | flag::STALE;

pub static COMMANDS: [Cmd; 7] = [
    Cmd::conn("info", -1, flag::LOADING | flag::STALE, super::info::info)
        .with_acl(&["slow", "dangerous"]),
    Cmd::container("config", 0, &CONFIG_SUBS),
    Cmd {
        name: "command",
        arity: -1,
        flags: flag::LOADING | flag::STALE,
        keys: Keys::None,
        kind: Kind::Conn(command_all),
        acl: &["slow", "connection"],
        subcommands: &COMMAND_SUBS,
    },
    Cmd::conn("time", 1, flag::LOADING | flag::STALE | flag::FAST, time).with_acl(&["fast"]),
    Cmd::conn(
        "lastsave",
        1,
        flag::LOADING | flag::STALE | flag::FAST,
        lastsave,
    )
    .with_acl(&["fast", "admin", "dangerous"]),
    Cmd::conn("debug", -2, ADMIN, debug).with_acl(&["admin", "slow", "dangerous"]),
    Cmd::conn(
        "shutdown",
        -1,
        ADMIN | flag::NO_MULTI | flag::ALLOW_BUSY,
        super::persistence::shutdown,
    )
    .with_acl(&["admin", "slow", "dangerous"]),
];

pub static CONFIG_SUBS: [Cmd; 5] = [
    Cmd::conn("get", -3, ADMIN, config_get),
    Cmd::conn("set", -4, ADMIN, config_set),
    Cmd::conn("resetstat", 2, ADMIN, config_resetstat),
    Cmd::conn("rewrite", 2, ADMIN, config_rewrite),
    Cmd::conn("help", 2, flag::LOADING | flag::STALE, config_help),
];

pub static COMMAND_SUBS: [Cmd; 7] = [
    Cmd::conn("count", 2, flag::LOADING | flag::STALE, command_count),
    Cmd::conn("info", -2, flag::LOADING | flag::STALE, command_info),
    Cmd::conn("docs", -2, flag::LOADING | flag::STALE, command_docs),
    Cmd::conn("list", -2, flag::LOADING | flag::STALE, command_list),
    Cmd::conn("getkeys", -4, flag::LOADING | flag::STALE, command_getkeys),
    Cmd::conn(
        "getkeysandflags",
        -4,
        flag::LOADING | flag::STALE,
        command_getkeysandflags,
    ),
    Cmd::conn("help", 2, flag::LOADING | flag::STALE, command_help),
];

fn time(_ctx: &mut ConnCtx, _args: &[Bytes], out: &mut Out) {
    let us = crate::util::now_us();
    out.array(2);
    out.bulk_str(&(us / 1_000_000).to_string());
    out.bulk_str(&(us % 1_000_000).to_string());
}

fn lastsave(ctx: &mut ConnCtx, _args: &[Bytes], out: &mut Out) {
    out.int(ctx.server.lastsave_secs.load(Ordering::Relaxed) as i64);
}

fn config_get(ctx: &mut ConnCtx, args: &[Bytes], out: &mut Out) {
    let cfg = ctx.config();
    let patterns: Vec<&[u8]> = args[2..].iter().map(|a| &a[..]).collect();
    let pairs = cfg.get(&patterns);
    out.map(pairs.len());
    for (k, v) in pairs {
        out.bulk_str(&k);
        out.bulk_str(&v);
    }
}

fn config_set(ctx: &mut ConnCtx, args: &[Bytes], out: &mut Out) {
    if !(args.len() - 2).is_multiple_of(2) {
        out.error(&err::wrong_args("config|set"));
        return;
    }
    let pairs: Vec<(&[u8], &[u8])> = args[2..]
        .chunks(2)
        .map(|p| (&p[0][..], &p[1][..]))
        .collect();
    let cfg = ctx.config();
    let set_ctx = crate::config::SetContext {
        loading: ctx.server.persistence.loading.load(Ordering::Relaxed),
        client_is_local: is_local_client(ctx),
    };
    match cfg.set_with(&pairs, &set_ctx) {
        Ok(new) => {
            let relisten = new.port != cfg.port || new.bind != cfg.bind;
            if relisten {
                if let Err(why) = crate::server::run::rebind(ctx.server, &cfg, &new) {
                    let name = if new.port != cfg.port { "port" } else { "bind" };
                    return out.error(&format!(
                        "ERR CONFIG SET failed (possibly related to argument '{name}') - {why}"
                    ));
                }
            }
            crate::log::init(&new.logfile, &new.loglevel);
            crate::storage::limits::apply(&new);
            ctx.server.config.store(new);
            crate::replication::master::config_changed(ctx.server);
            if let Err(e) = crate::persistence::aof::rewrite::config_changed(ctx.server) {
                if relisten {
                    // Back where it listened (it was listening there a moment ago).
                    let _ = crate::server::run::rebind(ctx.server, &ctx.server.config.load(), &cfg);
                }
                ctx.server.config.store((*cfg).clone());
                return out.error(&e);
            }
            out.ok();
        }
        Err(e) => out.error(&e),
    }
}

fn config_resetstat(ctx: &mut ConnCtx, _args: &[Bytes], out: &mut Out) {
    for s in &ctx.server.shards {
        let mut d = s.lock_data();
        d.cmd_stats.reset();
        d.stats.hits = 0;
        d.stats.misses = 0;
        d.stats.expired_keys = 0;
        d.stats.evicted_keys = 0;
    }
    ctx.server
        .client_mem
        .evicted_clients
        .store(0, Ordering::Relaxed);
    crate::latency::reset_histograms();
    crate::storage::lazyfree::reset_stats();
    let st = &ctx.server.stats;
    st.connections_received.store(0, Ordering::Relaxed);
    st.rejected_connections.store(0, Ordering::Relaxed);
    st.net_input_bytes.store(0, Ordering::Relaxed);
    st.net_output_bytes.store(0, Ordering::Relaxed);
    crate::replication::info::reset_stats();
    out.ok();
}

fn config_rewrite(ctx: &mut ConnCtx, _args: &[Bytes], out: &mut Out) {
    match ctx.config().rewrite() {
        Ok(()) => out.ok(),
        Err(e) => out.error(&e),
    }
}

fn help(out: &mut Out, lines: &[&str]) {
    out.array(lines.len());
    for l in lines {
        out.simple(l);
    }
}

fn config_help(_ctx: &mut ConnCtx, _args: &[Bytes], out: &mut Out) {
    help(
        out,
        &[
            "CONFIG <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
            "GET <pattern>",
            "    Return parameters matching the glob-like <pattern> and their values.",
            "SET <directive> <value>",
            "    Set the configuration <directive> to <value>.",
            "RESETSTAT",
            "    Reset statistics reported by the INFO command.",
            "REWRITE",
            "    Rewrite the configuration file.",
            "HELP",
            "    Print this help.",
        ],
    );
}

fn command_help(_ctx: &mut ConnCtx, _args: &[Bytes], out: &mut Out) {
    help(
        out,
        &[
            "COMMAND <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
            "(no subcommand)",
            "    Return details about all Redis commands.",
            "COUNT",
            "    Return the total number of commands in this Redis server.",
            "LIST",
            "    Return a list of all commands in this Redis server.",
            "INFO [<command-name> ...]",
            "    Return details about multiple Redis commands.",
            "    If no command names are given, documentation details for all",
            "    commands are returned.",
            "DOCS [<command-name> ...]",
            "    Return documentation details about multiple Redis commands.",
            "    If no command names are given, documentation details for all",
            "    commands are returned.",
            "GETKEYS <full-command>",
            "    Return the keys from a full Redis command.",
            "GETKEYSANDFLAGS <full-command>",
            "    Return the keys and the access flags from a full Redis command.",
            "HELP",
            "    Print this help.",
        ],
    );
}

fn command_count(_ctx: &mut ConnCtx, _args: &[Bytes], out: &mut Out) {
    out.int(super::count() as i64);
}

/// A command by its full name (`get`, `config|get`), as COMMAND INFO and DOCS take them.
fn by_full_name(name: &[u8]) -> Option<(&'static Cmd, String)> {
    let mut parts = name.split(|&b| b == b'|');
    let base = super::lookup(parts.next()?)?;
    match (parts.next(), parts.next()) {
        (None, _) => Some((base, base.name.to_string())),
        (Some(sub), None) => {
            let s = base.find_sub(sub)?;
            Some((s, format!("{}|{}", base.name, s.name)))
        }
        _ => None,
    }
}

fn command_info(_ctx: &mut ConnCtx, args: &[Bytes], out: &mut Out) {
    if args.len() == 2 {
        let all: Vec<&Cmd> = super::all().collect();
        out.array(all.len());
        for c in all {
            specs::write_info(out, c, c.name);
        }
        return;
    }
    out.array(args.len() - 2);
    for a in &args[2..] {
        match by_full_name(a) {
            Some((c, full)) => specs::write_info(out, c, &full),
            None => out.null(),
        }
    }
}

/// The whole table as COMMAND with no subcommand would list it.
pub fn command_all(ctx: &mut ConnCtx, args: &[Bytes], out: &mut Out) {
    command_info(ctx, &[args[0].clone(), Bytes::from_static(b"info")], out);
}

fn command_docs(_ctx: &mut ConnCtx, args: &[Bytes], out: &mut Out) {
    let cmds: Vec<(&Cmd, String)> = if args.len() == 2 {
        super::all().map(|c| (c, c.name.to_string())).collect()
    } else {
        args[2..].iter().filter_map(|a| by_full_name(a)).collect()
    };
    out.map(cmds.len());
    for (c, full) in cmds {
        out.bulk_str(&full);
        specs::write_docs(out, c, &full);
    }
}

/// COMMAND LIST [FILTERBY MODULE name | ACLCAT category | PATTERN pattern].
fn command_list(_ctx: &mut ConnCtx, args: &[Bytes], out: &mut Out) {
    enum Filter<'a> {
        None,
        Module,
        AclCat(&'a [u8]),
        Pattern(&'a [u8]),
    }
    let filter = match &args[2..] {
        [] => Filter::None,
        [f, kind, arg] if parse::eq(f, "filterby") => {
            if parse::eq(kind, "module") {
                Filter::Module
            } else if parse::eq(kind, "aclcat") {
                Filter::AclCat(arg)
            } else if parse::eq(kind, "pattern") {
                Filter::Pattern(arg)
            } else {
                return out.error(err::SYNTAX);
            }
        }
        _ => return out.error(err::SYNTAX),
    };
    let mut names: Vec<String> = Vec::new();
    for c in super::all() {
        let subs = c
            .subcommands
            .iter()
            .map(|s| (s, format!("{}|{}", c.name, s.name)));
        for (cmd, full) in std::iter::once((c, c.name.to_string())).chain(subs) {
            let keep = match filter {
                Filter::None => true,
                // No modules here: no command belongs to one.
                Filter::Module => false,
                Filter::AclCat(cat) => specs::categories(cmd, &full)
                    .iter()
                    .any(|k| k.as_bytes().eq_ignore_ascii_case(cat)),
                Filter::Pattern(p) => crate::util::glob_match(p, full.as_bytes(), true),
            };
            if keep {
                names.push(full);
            }
        }
    }
    out.array(names.len());
    for n in names {
        out.bulk_str(&n);
    }
}

fn command_getkeys(_ctx: &mut ConnCtx, args: &[Bytes], out: &mut Out) {
    getkeys(args, out, false)
}

fn command_getkeysandflags(_ctx: &mut ConnCtx, args: &[Bytes], out: &mut Out) {
    getkeys(args, out, true)
}

/// COMMAND GETKEYS / GETKEYSANDFLAGS (`getKeysSubcommandImpl`).
fn getkeys(args: &[Bytes], out: &mut Out, with_flags: bool) {
    let sub = &args[2..];
    let Some(base) = super::lookup(&sub[0]) else {
        return out.error("ERR Invalid command specified");
    };
    let (c, full) = if base.subcommands.is_empty() {
        (base, base.name.to_string())
    } else {
        match sub.get(1).and_then(|s| base.find_sub(s)) {
            Some(s) => (s, format!("{}|{}", base.name, s.name)),
            None => return out.error("ERR Invalid command specified"),
        }
    };
    if !specs::has_keys(c, &full) {
        return out.error("ERR The command has no key arguments");
    }
    let argc = sub.len() as i32;
    if (c.arity > 0 && argc != c.arity) || argc < -c.arity {
        return out.error("ERR Invalid number of arguments specified for command");
    }
    let keys = specs::keys_and_flags(c, &full, sub);
    if keys.is_empty() {
        let optional = specs::spec(&full).is_some_and(|s| s.flags.contains(&"no_mandatory_keys"));
        if optional {
            return out.array(0);
        }
        return out.error("ERR Invalid arguments specified for command");
    }
    out.array(keys.len());
    for (i, flags) in keys {
        if with_flags {
            out.array(2);
            out.bulk(&sub[i]);
            out.set(flags.len());
            for f in flags {
                out.simple(f);
            }
        } else {
            out.bulk(&sub[i]);
        }
    }
}

/// `enable-debug-command`: DEBUG is refused unless enabled (or, with `local`, unless the
/// client connected over loopback), with Redis's text.
fn debug_allowed(ctx: &ConnCtx) -> bool {
    use crate::config::ProtectedAction;
    match ctx.config().enable_debug_command {
        ProtectedAction::Yes => true,
        ProtectedAction::No => false,
        ProtectedAction::Local => is_local_client(ctx),
    }
}

/// A loopback or unix-socket connection (Redis's `islocalClient`), for the `local` setting of
/// `enable-debug-command` and `enable-protected-configs`.
fn is_local_client(ctx: &ConnCtx) -> bool {
    let a = &ctx.client.shared.addr;
    ctx.client.shared.unix
        || a.starts_with("127.")
        || a.starts_with("::1")
        || a.starts_with("[::1]")
}

/// DEBUG REPLYBUFFER RESIZING <0|1> | PEAK-RESET-TIME <never|reset|ms>: whether idle
/// connections give back large reply buffers (`server::buffers`). The peak reset time is
/// accepted; the peak here restarts with each query buffer resize pass.
fn debug_replybuffer(ctx: &mut ConnCtx, args: &[Bytes], out: &mut Out) {
    if parse::eq(&args[2], "resizing") {
        let on = parse::i64_arg(&args[3]).unwrap_or(1) != 0;
        ctx.server
            .client_mem
            .reply_buffer_resizing
            .store(on, Ordering::Relaxed);
        out.ok();
    } else if parse::eq(&args[2], "peak-reset-time") {
        out.ok();
    } else {
        out.error("ERR Syntax error, try DEBUG HELP");
    }
}

/// DEBUG PAUSE-CRON: the shards skip their periodic work (expiry, eviction, client and
/// tracking upkeep) while set.
static CRON_PAUSED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

pub fn cron_paused() -> bool {
    CRON_PAUSED.load(Ordering::Relaxed)
}

fn debug(ctx: &mut ConnCtx, args: &[Bytes], out: &mut Out) {
    if !debug_allowed(ctx) {
        out.error("ERR DEBUG command not allowed. If the enable-debug-command option is set to \"local\", you can run it from a local connection, otherwise you need to set this option in the configuration file, and then restart the server.");
        return;
    }
    let sub = String::from_utf8_lossy(&args[1]).to_ascii_lowercase();
    match sub.as_str() {
        "sleep" if args.len() == 3 => {
            let secs = parse::parse_f64(&args[2]).unwrap_or(0.0).max(0.0);
            // The whole server sleeps, as Redis's single thread does: every shard lock is
            // held, so the other shards stop at their next command or cron step.
            let db = ctx.client.db;
            ctx.server.with_all(db, |_| {
                std::thread::sleep(std::time::Duration::from_secs_f64(secs))
            });
            out.ok();
        }
        "set-disable-deny-scripts" if args.len() == 3 => {
            let on = parse::i64_arg(&args[2]).unwrap_or(0) != 0;
            crate::scripting::DISABLE_DENY_SCRIPTS.store(on, Ordering::Relaxed);
            out.ok();
        }
        "pause-cron" if args.len() == 3 => {
            let on = parse::i64_arg(&args[2]).unwrap_or(0) != 0;
            CRON_PAUSED.store(on, Ordering::SeqCst);
            out.ok();
        }
        "set-active-expire" if args.len() == 3 => {
            let on = parse::i64_arg(&args[2]).unwrap_or(1) != 0;
            ctx.server.active_expire.store(on, Ordering::SeqCst);
            out.ok();
        }
        "object" if args.len() == 3 => {
            let key = args[2].clone();
            let line = ctx.server.with_all(ctx.client.db, |ks| {
                ks.no_touch = true;
                // The raw lookup: a logically expired key still shows (Redis's dictFind).
                ks.peek_raw(&key).map(|e| {
                    let ser = match &e.value {
                        Value::Str(s) => s.len(),
                        _ => 0,
                    };
                    format!(
                        "Value at:0x7f0000000000 refcount:1 encoding:{} serializedlength:{} lru:{} lru_seconds_idle:{}",
                        e.value.encoding(),
                        ser,
                        e.lru_secs & ((1 << 24) - 1),
                        (crate::util::now_ms() / 1000).saturating_sub(e.lru_secs as u64)
                    )
                })
            });
            match line {
                Some(l) => out.simple(&l),
                None => out.error(err::NO_KEY),
            }
        }
        "protocol" if args.len() == 3 => debug_protocol(&args[2], out),
        "htstats" if args.len() == 3 => debug_htstats(ctx, &args[2], out),
        "htstats-key" if args.len() == 3 => debug_htstats_key(ctx, &args[2], out),
        "replicate" if args.len() >= 3 => {
            crate::replication::master::debug_replicate(ctx.server, &args[2..]);
            out.ok();
        }
        "set-skip-checksum-validation" if args.len() == 3 => {
            let on = parse::i64_arg(&args[2]).unwrap_or(0) != 0;
            crate::persistence::rdb::set_skip_checksum(on);
            out.ok();
        }
        "reload" => super::persistence::debug_reload(ctx, args, out),
        "loadaof" => super::aof::debug_loadaof(ctx, args, out),
        "aof-flush-sleep" if args.len() == 3 => super::aof::debug_flush_sleep(ctx, args, out),
        "config-rewrite-force-all" => match ctx.config().rewrite_with(true) {
            Ok(()) => out.ok(),
            Err(e) => {
                let why = e
                    .strip_prefix("ERR Rewriting config file: ")
                    .or_else(|| e.strip_prefix("ERR "))
                    .unwrap_or(&e);
                out.error(&format!("ERR CONFIG-REWRITE-FORCE-ALL failed: {why}"));
            }
        },
        "populate" if args.len() >= 3 => super::persistence::debug_populate(ctx, args, out),
        "digest" if args.len() == 2 => {
            let d = dataset_digest(ctx);
            out.simple(&super::digest::hex(&d));
        }
        "digest-value" => {
            let keys: Vec<Bytes> = args[2..].to_vec();
            let digests = ctx.server.with_all(ctx.client.db, |ks| {
                keys.iter()
                    .map(|k| {
                        let mut d = [0u8; 20];
                        if let Some(e) = ks.peek_raw(k) {
                            super::digest::value_digest(&mut d, e);
                        }
                        d
                    })
                    .collect::<Vec<_>>()
            });
            out.array(digests.len());
            for d in digests {
                out.simple(&super::digest::hex(&d));
            }
        }
        "change-repl-id" if args.len() == 2 => {
            crate::log_warning!("Changing replication IDs after receiving DEBUG change-repl-id");
            ctx.server.feed.with(|st| st.new_history());
            out.ok();
        }
        "jmap" | "quicklist-packed-threshold" | "stringmatch-len" => out.ok(),
        "replybuffer" if args.len() == 4 => debug_replybuffer(ctx, args, out),
        "log" if args.len() == 3 => {
            crate::log_warning!("DEBUG LOG: {}", String::from_utf8_lossy(&args[2]));
            out.ok();
        }
        "help" => help(
            out,
            &[
                "DEBUG <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
                "OBJECT <key>",
                "    Show low level info about the key and associated value.",
                "PROTOCOL <type>",
                "    Reply with a test value of the specified type.",
                "PAUSE-CRON <0|1>",
                "    Stop periodic cron job processing.",
                "SET-ACTIVE-EXPIRE <0|1>",
                "    Setting it to 0 disables expiring keys in background when they are not accessed.",
                "SLEEP <seconds>",
                "    Stop the server for <seconds>. Decimals allowed.",
                "HELP",
                "    Print this help.",
            ],
        ),
        _ => out.error(&format!(
            "ERR unknown subcommand '{}'. Try DEBUG HELP.",
            String::from_utf8_lossy(&args[1])
        )),
    }
}

/// DEBUG HTSTATS dbid: the keyspace's tables over every shard, then its keys with a deadline
/// (we keep deadlines in the keys' own entries, not in a second table: the "expires" figures
/// are those entries within the same tables). See `storage::htstats`.
fn debug_htstats(ctx: &mut ConnCtx, arg: &[u8], out: &mut Out) {
    let Ok(dbid) = parse::i64_arg(arg) else {
        out.error(err::NOT_INT);
        return;
    };
    if dbid < 0 || dbid as usize >= ctx.config().databases {
        out.error("ERR Out of range database");
        return;
    }
    let mut keys = crate::storage::htstats::HtStats::default();
    let mut expires = crate::storage::htstats::HtStats::default();
    for g in ctx.server.lock_all() {
        let Some(db) = g.dbs.get(dbid as usize) else {
            continue;
        };
        for (_, table) in db.used_slots_from(0) {
            table.add_stats(&mut keys, false);
            if db.volatile > 0 {
                table.add_stats(&mut expires, true);
            }
        }
    }
    let mut text = String::from("[Dictionary HT]\n");
    keys.write(&mut text);
    text.push_str("[Expires HT]\n");
    expires.write(&mut text);
    out.verbatim(text.as_bytes(), "txt");
}

/// DEBUG HTSTATS-KEY key: the shape of the hash table behind a set, hash or sorted set.
fn debug_htstats_key(ctx: &mut ConnCtx, key: &Bytes, out: &mut Out) {
    enum Found {
        Missing,
        Compact,
        Table(Box<crate::storage::htstats::HtStats>),
    }
    let found = ctx.server.with_all(ctx.client.db, |ks| {
        let now = crate::util::now_ms();
        match ks.peek_raw(key) {
            None => Found::Missing,
            Some(e) if e.expire_ms != 0 && e.expire_ms <= now => Found::Missing,
            Some(e) => {
                let stats = match &e.value {
                    Value::Set(s) => s.table_stats(),
                    Value::Hash(h) => h.table_stats(),
                    Value::ZSet(z) => z.table_stats(),
                    _ => None,
                };
                stats.map_or(Found::Compact, |s| Found::Table(Box::new(s)))
            }
        }
    });
    match found {
        Found::Missing => out.error(err::NO_KEY),
        Found::Compact => out.error(
            "ERR The value stored at the specified key is not represented using an hash table",
        ),
        Found::Table(stats) => {
            let mut text = String::new();
            stats.write(&mut text);
            out.verbatim(text.as_bytes(), "txt");
        }
    }
}

/// DEBUG DIGEST over every database of every shard.
fn dataset_digest(ctx: &mut ConnCtx) -> super::digest::Digest {
    let ndb = ctx.config().databases;
    let mut fin = [0u8; 20];
    let guards = ctx.server.lock_all();
    for j in 0..ndb {
        let nonempty = guards
            .iter()
            .any(|g| g.dbs.get(j).is_some_and(|d| d.keys > 0));
        if !nonempty {
            continue;
        }
        super::digest::mix_digest(&mut fin, &(j as u32).to_be_bytes());
        for g in &guards {
            let Some(db) = g.dbs.get(j) else { continue };
            for (_, table) in db.used_slots_from(0) {
                for (k, e) in table.iter() {
                    let d = super::digest::key_digest(k, e);
                    super::digest::xor_digest(&mut fin, &d);
                }
            }
        }
    }
    fin
}

fn debug_protocol(kind: &[u8], out: &mut Out) {
    let k = String::from_utf8_lossy(kind).to_ascii_lowercase();
    match k.as_str() {
        "string" => out.bulk_str("Hello World"),
        "integer" => out.int(12345),
        // Redis's DEBUG PROTOCOL double is the literal 3.141, not pi.
        #[allow(clippy::approx_constant)]
        "double" => out.double(3.141),
        "bignum" => {
            if out.resp3() {
                out.raw(b"(1234567999999999999999999999999999999\r\n");
            } else {
                out.bulk_str("1234567999999999999999999999999999999");
            }
        }
        "null" => out.null(),
        "array" => {
            out.array(3);
            for i in 0..3 {
                out.int(i);
            }
        }
        "set" => {
            out.set(3);
            for i in 0..3 {
                out.int(i);
            }
        }
        "map" => {
            out.map(3);
            for i in 0..3 {
                out.int(i);
                out.boolean(i == 1);
            }
        }
        "attrib" => {
            if out.resp3() {
                out.raw(b"|1\r\n");
                out.bulk_str("key-popularity");
                out.array(2);
                out.bulk_str("key:123");
                out.int(90);
            }
            out.bulk_str("Some real reply following the attribute");
        }
        "push" => {
            if !out.resp3() {
                out.error("ERR RESP2 is not supported by this command");
                return;
            }
            out.push(2);
            out.bulk_str("server-cpu-usage");
            out.int(42);
            out.bulk_str("Some real reply following the push reply");
        }
        "true" => out.boolean(true),
        "false" => out.boolean(false),
        "verbatim" => out.verbatim(b"This is a verbatim\nstring", "txt"),
        _ => out.error(
            "ERR Wrong protocol type name. Please use one of the following: string|integer|double|bignum|null|array|set|map|attrib|push|verbatim|true|false",
        ),
    }
}
