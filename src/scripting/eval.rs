//! EVAL, EVALSHA, EVAL_RO, EVALSHA_RO and SCRIPT LOAD|EXISTS|FLUSH|KILL|HELP.

use super::vm::{sflag, RunCtx, Script, Vm};
use super::{convert, RUN};
use crate::commands::{flag, parse, Cmd, Keys, Kind};
use crate::protocol::Out;
use crate::server::ConnCtx;
use bytes::Bytes;
use std::sync::atomic::Ordering;

/// Key positions of numkeys-style scripting commands: `CMD script numkeys key... arg...`.
pub fn numkeys_keys(args: &[Bytes]) -> Vec<usize> {
    let n = args
        .get(2)
        .and_then(|a| std::str::from_utf8(a).ok())
        .and_then(|s| s.parse::<i64>().ok())
        .unwrap_or(0);
    if n <= 0 {
        return Vec::new();
    }
    (3..(3 + n as usize).min(args.len())).collect()
}

const SCRIPT_FLAGS: u32 = flag::NOSCRIPT | flag::SKIP_MONITOR | flag::STALE;

const fn script_cmd(name: &'static str, flags: u32, f: crate::commands::ConnFn) -> Cmd {
    Cmd {
        name,
        arity: -3,
        flags,
        keys: Keys::Custom(numkeys_keys),
        kind: Kind::Conn(f),
        acl: &["slow", "scripting"],
        subcommands: &[],
    }
}

pub static COMMANDS: [Cmd; 8] = [
    script_cmd("eval", SCRIPT_FLAGS | flag::MAY_REPLICATE, eval),
    script_cmd("evalsha", SCRIPT_FLAGS | flag::MAY_REPLICATE, evalsha),
    script_cmd("eval_ro", SCRIPT_FLAGS | flag::READONLY, eval_ro),
    script_cmd("evalsha_ro", SCRIPT_FLAGS | flag::READONLY, evalsha_ro),
    script_cmd(
        "fcall",
        SCRIPT_FLAGS | flag::MAY_REPLICATE,
        super::functions::fcall,
    ),
    script_cmd(
        "fcall_ro",
        SCRIPT_FLAGS | flag::READONLY,
        super::functions::fcall_ro,
    ),
    Cmd::container("script", 0, &SCRIPT_SUBS).with_acl(&["slow"]),
    Cmd::container("function", 0, &super::functions::FUNCTION_SUBS).with_acl(&["slow"]),
];

pub static SCRIPT_SUBS: [Cmd; 6] = [
    Cmd::conn("exists", -3, flag::NOSCRIPT, script_exists).with_acl(&["slow", "scripting"]),
    Cmd::conn("flush", -2, flag::NOSCRIPT, script_flush).with_acl(&["slow", "scripting"]),
    Cmd::conn("kill", 2, flag::NOSCRIPT | flag::ALLOW_BUSY, script_kill)
        .with_acl(&["slow", "scripting"]),
    Cmd::conn("load", 3, flag::NOSCRIPT | flag::STALE, script_load)
        .with_acl(&["slow", "scripting"]),
    Cmd::conn("help", 2, flag::LOADING | flag::STALE, script_help).with_acl(&["slow", "scripting"]),
    Cmd::conn("debug", 3, flag::NOSCRIPT, super::ldb::script_debug)
        .with_acl(&["slow", "scripting"]),
];

fn eval(ctx: &mut ConnCtx, args: &[Bytes], out: &mut Out) {
    eval_generic(ctx, args, out, false, false)
}
fn evalsha(ctx: &mut ConnCtx, args: &[Bytes], out: &mut Out) {
    eval_generic(ctx, args, out, true, false)
}
fn eval_ro(ctx: &mut ConnCtx, args: &[Bytes], out: &mut Out) {
    eval_generic(ctx, args, out, false, true)
}
fn evalsha_ro(ctx: &mut ConnCtx, args: &[Bytes], out: &mut Out) {
    eval_generic(ctx, args, out, true, true)
}

/// Parses numkeys; writes Redis's error and returns None when invalid.
pub fn parse_numkeys(args: &[Bytes], out: &mut Out) -> Option<usize> {
    let n = match parse::i64_arg(&args[2]) {
        Ok(n) => n,
        Err(e) => {
            out.error(e);
            return None;
        }
    };
    if n > (args.len() - 3) as i64 {
        out.error("ERR Number of keys can't be greater than number of args");
        return None;
    }
    if n < 0 {
        out.error("ERR Number of keys can't be negative");
        return None;
    }
    Some(n as usize)
}

/// Parses a `#!lua flags=...` shebang. Returns (flags, shebang length).
pub fn shebang(body: &[u8]) -> Result<(u32, usize), String> {
    if !body.starts_with(b"#!") {
        return Ok((sflag::EVAL_COMPAT, 0));
    }
    let Some(end) = memchr::memchr(b'\n', body) else {
        return Err("Invalid script shebang".into());
    };
    let line = String::from_utf8_lossy(&body[..end]);
    let parts = super::split_args(&line).unwrap_or_default();
    let Some(first) = parts.first() else {
        return Err("Invalid engine in script shebang".into());
    };
    if *first != "#!lua" {
        return Err(format!("Unexpected engine in script shebang: {first}"));
    }
    let mut flags = 0;
    for p in &parts[1..] {
        let Some(list) = p.strip_prefix("flags=") else {
            return Err(format!("Unknown lua shebang option: {p}"));
        };
        for f in list.split(',') {
            if f.is_empty() && list.is_empty() {
                continue;
            }
            match sflag::NAMES.iter().find(|(_, n)| *n == f) {
                Some((bit, _)) => flags |= bit,
                None => return Err(format!("Unexpected flag in script shebang: {f}")),
            }
        }
    }
    Ok((flags, end))
}

/// The command flags of a script command as Redis's `getCommandFlags` sees them before the
/// script runs: a script that declared flags (a shebang, or a function's registration) is a
/// write unless `no-writes`, deny-oom unless `allow-oom` or `no-writes`, stale-allowed only
/// with `allow-stale` (`scriptFlagsToCmdFlags`). Commands that run no script, scripts in
/// compatibility mode, unknown shas and functions keep the command's own flags. Used where a
/// command is queued in MULTI, so that EXEC is refused as the queued scripts imply.
pub fn command_flags(cmd: &Cmd, args: &[Bytes]) -> u32 {
    let declared = match (cmd.name, args.get(1)) {
        ("eval" | "eval_ro", Some(body)) => shebang(body).ok().map(|(f, _)| f),
        ("evalsha" | "evalsha_ro", Some(sha)) if sha.len() == 40 => {
            let sha = String::from_utf8_lossy(sha).to_ascii_lowercase();
            with_vm(|vm| vm.scripts.get(&sha).map(|s| s.flags))
        }
        ("fcall" | "fcall_ro", Some(name)) => {
            let name = String::from_utf8_lossy(name);
            with_vm(|vm| vm.libs.function(&name).map(|f| f.flags))
        }
        _ => None,
    };
    match declared {
        Some(f) if f & sflag::EVAL_COMPAT == 0 => {
            let mut flags = cmd.flags & !(flag::STALE | flag::DENYOOM | flag::WRITE);
            if f & (sflag::ALLOW_OOM | sflag::NO_WRITES) == 0 {
                flags |= flag::DENYOOM;
            }
            if f & sflag::NO_WRITES == 0 {
                flags |= flag::WRITE;
            }
            if f & sflag::ALLOW_STALE != 0 {
                flags |= flag::STALE;
            }
            flags & !flag::MAY_REPLICATE
        }
        _ => cmd.flags,
    }
}

/// Runs `f` on the VM if it can be had without waiting on a busy script (which holds it for
/// as long as it runs) or a debugging session: None then, as for a script the cache does
/// not hold.
fn with_vm<R>(f: impl FnOnce(&Vm) -> Option<R>) -> Option<R> {
    let give_up = std::time::Instant::now() + std::time::Duration::from_secs(1);
    loop {
        if let Some(g) = super::vm::vm().try_lock_for(std::time::Duration::from_millis(10)) {
            return f(&g);
        }
        if super::busy() || std::time::Instant::now() > give_up {
            return None;
        }
    }
}

/// Compiles and caches `body`; returns its sha.
pub fn create_script(vm: &mut Vm, body: &Bytes) -> Result<String, String> {
    let sha = super::sha1_hex(body);
    if vm.scripts.contains_key(&sha) {
        return Ok(sha);
    }
    let (flags, sb_len) = shebang(body)?;
    let code = &body[sb_len..];
    let func = vm
        .compile(code, "@user_script", &vm.env.clone())
        .map_err(|e| format!("Error compiling script (new function): {e}"))?;
    vm.scripts.insert(
        sha.clone(),
        Script {
            body: body.clone(),
            flags,
            func,
        },
    );
    Ok(sha)
}

/// The checks Redis runs before a script with declared flags may start
/// (`scriptPrepareForRun`, and `processCommand` on the command flags those script flags
/// imply: no `no-writes` makes it a write, no `allow-oom` a deny-oom one, `allow-stale` lets
/// it run on a stale replica). Writes the error and returns false when it may not run.
/// Scripts without a shebang (compatibility mode) are checked command by command instead,
/// except that none starts on a stale replica (MASTERDOWN, as `scriptPrepareForRun`).
pub fn prepare_run(ctx: &ConnCtx, flags: u32, ro: bool, out: &mut Out) -> bool {
    if flags & sflag::EVAL_COMPAT != 0 {
        // No flags: only the stale check can refuse.
        if let Some(e) = crate::replication::replica::reject_flags(&ctx.config(), ctx.server, 0) {
            out.error(e);
            return false;
        }
        return true;
    }
    let writes = flags & sflag::NO_WRITES == 0;
    let mut implied = 0;
    if writes {
        implied |= flag::WRITE;
    }
    if flags & sflag::ALLOW_STALE != 0 {
        implied |= flag::STALE;
    }
    let from_master = ctx
        .client
        .shared
        .flags
        .lock()
        .is_ok_and(|f| f.contains('M'));
    if !from_master {
        let as_cmd = Cmd::conn("eval", -3, implied, eval);
        let cfg = ctx.config();
        if let Some(e) = crate::replication::replica::reject(&cfg, ctx.server, &as_cmd) {
            out.error(e);
            return false;
        }
    }
    if writes && ro {
        out.error("ERR Can not execute a script with write flag using *_ro command.");
        return false;
    }
    if writes && flags & sflag::ALLOW_OOM == 0 {
        // Evicts what the policy allows first, as for any deny-oom command.
        let db = ctx.client.db;
        return ctx.server.with_all(db, |ks| {
            crate::storage::evict::admit(ks, flag::DENYOOM, out)
        });
    }
    true
}

fn eval_generic(ctx: &mut ConnCtx, args: &[Bytes], out: &mut Out, by_sha: bool, ro: bool) {
    if ctx.client.script_debug != super::ldb::MODE_OFF {
        if by_sha {
            return out.error(if args[1].len() != 40 {
                "NOSCRIPT No matching script. Please use EVAL."
            } else {
                "ERR Please use EVAL instead of EVALSHA for debugging"
            });
        }
        if parse_numkeys(args, out).is_none() {
            return;
        }
        return super::ldb::eval_debug(ctx, args, out, ro);
    }
    if parse_numkeys(args, out).is_none() {
        return;
    }
    let mut session = match super::acquire(ctx.server, ctx.shard, true) {
        Ok(s) => s,
        Err(e) => return out.error(e),
    };
    eval_loaded(&mut session.vm, ctx, args, out, ro, by_sha);
}

/// Finds (EVALSHA) or compiles (EVAL) the script and runs it, with the VM and every shard
/// held by the caller.
pub(crate) fn eval_loaded(
    vm: &mut Vm,
    ctx: &mut ConnCtx,
    args: &[Bytes],
    out: &mut Out,
    ro: bool,
    by_sha: bool,
) {
    let Some(nkeys) = parse_numkeys(args, out) else {
        return;
    };
    // The sha as a lower-case key, without allocating: EVALSHA is the hot path.
    let mut key = [0u8; 40];
    if by_sha {
        if args[1].len() != key.len() {
            return out.error("NOSCRIPT No matching script. Please use EVAL.");
        }
        for (k, b) in key.iter_mut().zip(args[1].iter()) {
            *k = b.to_ascii_lowercase();
        }
    } else {
        match create_script(vm, &args[1]) {
            Ok(s) => key.copy_from_slice(s.as_bytes()),
            Err(e) => return out.error(&format!("ERR {e}")),
        }
    }
    let Some((sha, script)) = std::str::from_utf8(&key)
        .ok()
        .and_then(|k| vm.scripts.get_key_value(k))
    else {
        return out.error("NOSCRIPT No matching script. Please use EVAL.");
    };
    let flags = script.flags;
    if !prepare_run(ctx, flags, ro, out) {
        return;
    }
    let read_only = ro || flags & sflag::NO_WRITES != 0;
    {
        // Reused buffers: the name is read by SCRIPT KILL and FUNCTION STATS.
        let mut name = RUN.name.lock();
        name.0.clear();
        name.0.push_str(sha);
        name.1.clear();
        name.1.extend(args[1..].iter().cloned());
    }
    let run = Invocation::Eval {
        keys: &args[3..3 + nkeys],
        argv: &args[3 + nkeys..],
    };
    call_and_reply(vm, ctx, out, &script.func, run, read_only, flags, sha);
    super::feed_effects(ctx);
}

/// What a run is given: an EVAL script's KEYS and ARGV globals, or a function's two
/// argument tables.
pub enum Invocation<'a> {
    Eval {
        keys: &'a [Bytes],
        argv: &'a [Bytes],
    },
    Function {
        keys: &'a [Bytes],
        args: &'a [Bytes],
    },
}

/// Runs `func` and writes its reply or error.
#[allow(clippy::too_many_arguments)]
pub fn call_and_reply(
    vm: &Vm,
    ctx: &mut ConnCtx,
    out: &mut Out,
    func: &mlua::Function,
    run: Invocation<'_>,
    read_only: bool,
    flags: u32,
    name: &str,
) {
    let saved_db = ctx.client.db;
    let mut rc = RunCtx {
        ctx,
        resp: 2,
        read_only,
        has_flags: flags & sflag::EVAL_COMPAT == 0,
        allow_oom: flags & sflag::ALLOW_OOM != 0,
    };
    // The hook only reads atomics (kill request, busy threshold) every 10,000 instructions,
    // so it stays installed between runs.
    if super::ldb::active() {
        super::ldb::install_hook(vm);
    } else if !vm.script_hook.get() {
        super::vm::set_hook(&vm.lua);
        vm.script_hook.set(true);
    }
    let result = super::vm::with_run(&mut rc, || match run {
        Invocation::Eval { keys, argv } => vm.invoke(func, keys, argv, false),
        Invocation::Function { keys, args } => vm.invoke(func, keys, args, true),
    });
    let resp = rc.resp;
    rc.ctx.client.db = saved_db;
    match result {
        Ok((true, v)) => convert::lua_to_resp(&v, resp, out, 0),
        Ok((false, v)) => {
            let e = convert::err_info(&v);
            let mut msg = e.msg;
            if let (Some(src), Some(line)) = (e.source, e.line) {
                msg.push_str(&format!(" script: {name}, on {src}:{line}."));
            }
            let counted = out.last_error_code.take();
            out.error(&msg);
            if e.ignore_stats {
                // Counted where the call failed; the script still failed.
                out.last_error_code = counted;
            }
        }
        Err(Some(e)) => out.error(&format!("ERR Error running script {name}, {e}")),
        Err(None) => out.error("ERR reached lua stack limit"),
    }
    vm.after_run();
}

fn script_load(ctx: &mut ConnCtx, args: &[Bytes], out: &mut Out) {
    let _ = ctx;
    let mut vm = match super::vm_only() {
        Ok(v) => v,
        Err(e) => return out.error(e),
    };
    match create_script(&mut vm, &args[2]) {
        Ok(sha) => out.bulk(sha.as_bytes()),
        Err(e) => out.error(&format!("ERR {e}")),
    }
}

fn script_exists(_ctx: &mut ConnCtx, args: &[Bytes], out: &mut Out) {
    let vm = match super::vm_only() {
        Ok(v) => v,
        Err(e) => return out.error(e),
    };
    out.array(args.len() - 2);
    for a in &args[2..] {
        let sha = String::from_utf8_lossy(a).to_ascii_lowercase();
        out.int(vm.scripts.contains_key(&sha) as i64);
    }
}

fn script_flush(_ctx: &mut ConnCtx, args: &[Bytes], out: &mut Out) {
    if args.len() > 3
        || args
            .get(2)
            .is_some_and(|a| !parse::eq(a, "sync") && !parse::eq(a, "async"))
    {
        return out.error("ERR SCRIPT FLUSH only support SYNC|ASYNC option");
    }
    let mut vm = match super::vm_only() {
        Ok(v) => v,
        Err(e) => return out.error(e),
    };
    vm.scripts.clear();
    vm.collect_fully();
    out.ok();
}

/// SCRIPT KILL / FUNCTION KILL.
pub fn kill(out: &mut Out, is_eval: bool) {
    if !super::running() {
        return out.error("NOTBUSY No scripts in execution right now.");
    }
    if RUN.wrote.load(Ordering::Relaxed) {
        return out.error(
            "UNKILLABLE Sorry the script already executed write commands against the dataset. You can either wait the script termination or kill the server in a hard way using the SHUTDOWN NOSAVE command.",
        );
    }
    let running_eval = RUN.is_eval.load(Ordering::Relaxed);
    if is_eval && !running_eval {
        return out.error(
            "BUSY Redis is busy running a script. You can only call FUNCTION KILL or SHUTDOWN NOSAVE.",
        );
    }
    if !is_eval && running_eval {
        return out.error(
            "BUSY Redis is busy running a script. You can only call SCRIPT KILL or SHUTDOWN NOSAVE.",
        );
    }
    RUN.kill.store(true, Ordering::Relaxed);
    out.ok();
}

fn script_kill(_ctx: &mut ConnCtx, _args: &[Bytes], out: &mut Out) {
    kill(out, true)
}

fn script_help(_ctx: &mut ConnCtx, _args: &[Bytes], out: &mut Out) {
    let lines = [
        "SCRIPT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
        "DEBUG (YES|SYNC|NO)",
        "    Set the debug mode for subsequent scripts executed.",
        "EXISTS <sha1> [<sha1> ...]",
        "    Return information about the existence of the scripts in the script cache.",
        "FLUSH [ASYNC|SYNC]",
        "    Flush the Lua scripts cache. Very dangerous on replicas.",
        "    When called without the optional mode argument, the behavior is determined by the",
        "    lazyfree-lazy-user-flush configuration directive. Valid modes are:",
        "    * ASYNC: Asynchronously flush the scripts cache.",
        "    * SYNC: Synchronously flush the scripts cache.",
        "KILL",
        "    Kill the currently executing Lua script.",
        "LOAD <script>",
        "    Load a script into the scripts cache without executing it.",
        "HELP",
        "    Prints this help.",
    ];
    out.array(lines.len());
    for l in lines {
        out.simple(l);
    }
}
