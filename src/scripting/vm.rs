//! The interpreter: one Lua 5.1 state with Redis's libraries, the `redis` API and the sandbox.
//!
//! The sandbox is built from plain Lua 5.1 (no patched interpreter): scripts run with an
//! environment table that is an empty proxy. Reading a name looks it up in the visible
//! globals and raises "Script attempted to access nonexistent global variable" when absent;
//! writing raises "Attempt to modify a readonly table". Library tables (`redis`, `string`,
//! `cjson`...) are seen through read-only proxies too, and `setmetatable`/`rawset` refuse
//! them. `loadfile`, `dofile`, `io`, `os` and `package` are absent, as in Redis 7.0.
//!
//! Rust callbacks never raise Lua errors with `Err` when the text matters (mlua would wrap it
//! in a traceback): the `redis` API returns `(value, is_error)` to thin Lua wrappers in the
//! internal chunk `=shardis`, which raise Redis's error tables. Errors that do come back as
//! mlua userdata (from the count hook, the libraries) are unwrapped to their message by
//! `errtext` in the error handler and in `pcall`.

use super::convert;
use crate::commands::{self, flag, Kind};
use crate::protocol::Out;
use crate::server::ConnCtx;
use crate::storage::{Keyspace, ShardData};
use bytes::Bytes;
use mlua::{Function, HookTriggers, Lua, LuaOptions, StdLib, Table, Value, VmState};
use parking_lot::Mutex;
use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::OnceLock;

/// A cached EVAL script.
pub struct Script {
    pub body: Bytes,
    pub flags: u32,
    pub func: Function,
}

pub struct Vm {
    pub lua: Lua,
    /// sha1 (lower-case hex) → script.
    pub scripts: HashMap<String, Script>,
    /// The real globals that scripts read through the proxy environment.
    pub visible: Table,
    /// The environment of EVAL scripts.
    pub env: Table,
    /// `run(f, ...)`: calls `f` under the error handler; returns ok, value.
    pub run: Function,
    pub libs: super::functions::Libraries,
    /// `lua-enable-deprecated-api` (immutable) was read: it is applied on the first run.
    pub deprecated_api_checked: bool,
    /// What the heap held when the last collection cycle ended (`after_run`).
    pub gc_base: std::cell::Cell<usize>,
    /// A cycle started by `after_run` is under way.
    pub gc_collecting: std::cell::Cell<bool>,
    /// Sizes of the KEYS and ARGV tables the last EVAL run was given (`set_strings_global`).
    pub globals_len: std::cell::Cell<(usize, usize)>,
    /// The script count hook is installed (it stays between runs: installing it boxes a
    /// closure; FUNCTION LOAD replaces it with its own and clears this).
    pub script_hook: std::cell::Cell<bool>,
}

pub fn vm() -> &'static Mutex<Vm> {
    static VM: OnceLock<Mutex<Vm>> = OnceLock::new();
    VM.get_or_init(|| match Vm::new() {
        Ok(v) => Mutex::new(v),
        // The bootstrap is our own fixed code: failing here is a build defect.
        Err(e) => panic!("Lua bootstrap failed: {e}"),
    })
}

/// Script flags (shebang `flags=`), Redis's names.
pub mod sflag {
    pub const NO_WRITES: u32 = 1 << 0;
    pub const ALLOW_OOM: u32 = 1 << 1;
    pub const ALLOW_STALE: u32 = 1 << 2;
    pub const NO_CLUSTER: u32 = 1 << 3;
    pub const EVAL_COMPAT: u32 = 1 << 4;
    pub const ALLOW_CROSS_SLOT: u32 = 1 << 5;
    pub const NAMES: &[(u32, &str)] = &[
        (NO_WRITES, "no-writes"),
        (ALLOW_OOM, "allow-oom"),
        (ALLOW_STALE, "allow-stale"),
        (NO_CLUSTER, "no-cluster"),
        (ALLOW_CROSS_SLOT, "allow-cross-slot-keys"),
    ];
}

const BOOTSTRAP: &str = include_str!("bootstrap.lua");

/// Garbage allowed to pile up between runs before a collection cycle starts (`Vm::after_run`).
const GC_SLACK_BYTES: usize = 12 * 1024;
/// Kilobytes of collector work done after each run while a cycle is under way.
const GC_STEP_KB: i32 = 4;

/// Bound on `Vm::collect_fully`'s cycles (each halves grown stacks: 2^32 is beyond any).
const COLLECT_FULLY_CYCLES_MAX: usize = 32;

impl Vm {
    fn new() -> mlua::Result<Vm> {
        // SAFETY: the debug library is needed by the error handler; the bootstrap removes it
        // from what scripts can see.
        let lua = unsafe {
            Lua::unsafe_new_with(
                StdLib::TABLE | StdLib::STRING | StdLib::MATH | StdLib::DEBUG,
                LuaOptions::new(),
            )
        };
        let prims = lua.create_table()?;
        lua.set_named_registry_value("shardis_call_argv", lua.create_function(call_argv)?)?;
        // SAFETY: raw C functions following the Lua C API (see `raw_call`).
        unsafe {
            prims.raw_set("rawcall", lua.create_c_function(raw_call)?)?;
            prims.raw_set("rawpcall", lua.create_c_function(raw_pcall)?)?;
        }
        prims.raw_set(
            "raiser",
            lua.create_function(|lua, target: Function| make_raiser(lua, target))?,
        )?;
        prims.raw_set("errtext", lua.create_function(errtext)?)?;
        prims.raw_set(
            "sha1hex",
            lua.create_function(|lua, s: mlua::String| {
                lua.create_string(super::sha1_hex(&s.as_bytes()))
            })?,
        )?;
        prims.raw_set(
            "log",
            lua.create_function(|_, (level, msg): (i64, mlua::String)| {
                let lv = match level {
                    0 => crate::log::Level::Debug,
                    1 => crate::log::Level::Verbose,
                    2 => crate::log::Level::Notice,
                    _ => crate::log::Level::Warning,
                };
                crate::log::log(lv, &String::from_utf8_lossy(&msg.as_bytes()));
                Ok(())
            })?,
        )?;
        prims.raw_set(
            "setresp",
            lua.create_function(|_, v: i64| {
                with_ctx(|c| c.resp = v as u8);
                Ok(())
            })?,
        )?;
        prims.raw_set(
            "setrepl",
            lua.create_function(|_, v: i64| {
                super::RUN.repl.store(v as u8 & 3, Ordering::Relaxed);
                Ok(())
            })?,
        )?;
        prims.raw_set(
            "killed",
            lua.create_function(|_, ()| Ok(super::RUN.kill.load(Ordering::Relaxed)))?,
        )?;
        prims.raw_set(
            "incontext",
            lua.create_function(|_, ()| Ok(with_ctx(|_| ()).is_some()))?,
        )?;
        prims.raw_set(
            "cmdexists",
            lua.create_function(|_, name: mlua::String| {
                Ok(commands::lookup(&name.as_bytes()).is_some())
            })?,
        )?;
        prims.raw_set(
            "aclcheck",
            lua.create_function(|_, args: mlua::Variadic<mlua::Value>| {
                let argv: Vec<Bytes> = args
                    .iter()
                    .map(|v| match v {
                        mlua::Value::String(s) => Bytes::copy_from_slice(&s.as_bytes()),
                        mlua::Value::Integer(i) => Bytes::from(i.to_string()),
                        mlua::Value::Number(n) => Bytes::from(n.to_string()),
                        _ => Bytes::new(),
                    })
                    .collect();
                Ok(with_ctx(|rc| crate::acl::allowed(rc.ctx.client, &argv)).unwrap_or(false))
            })?,
        )?;
        prims.raw_set("random", lua.create_function(|_, ()| Ok(rand48_next()))?)?;
        prims.raw_set(
            "randomseed",
            lua.create_function(|_, seed: i64| {
                rand48_seed(seed as i32);
                Ok(())
            })?,
        )?;
        prims.raw_set(
            "ldbdebug",
            lua.create_function(|_, args: mlua::Variadic<Value>| {
                super::ldb::debug_values(&args);
                Ok(())
            })?,
        )?;
        prims.raw_set(
            "ldbbreakpoint",
            lua.create_function(|_, ()| Ok(super::ldb::breakpoint()))?,
        )?;
        prims.raw_set("version", crate::server::run::REDIS_VERSION)?;
        prims.raw_set("version_num", version_num())?;
        prims.raw_set("cjson", super::cjson::open(&lua)?)?;
        prims.raw_set("bit", super::bit::open(&lua)?)?;
        prims.raw_set("struct", super::structlib::open(&lua)?)?;
        prims.raw_set("cmsgpack", super::cmsgpack::open(&lua)?)?;
        prims.raw_set("register_function", super::functions::register_prim(&lua)?)?;
        let boot: Table = lua
            .load(BOOTSTRAP)
            .set_name("=shardis")
            .call::<Table>(prims)?;
        lua.set_named_registry_value("shardis_ldb", boot.get::<Table>("ldb")?)?;
        Ok(Vm {
            visible: boot.get("visible")?,
            env: boot.get("env")?,
            run: boot.get("run")?,
            scripts: HashMap::new(),
            libs: super::functions::Libraries::new(&lua, &boot)?,
            deprecated_api_checked: false,
            script_hook: std::cell::Cell::new(false),
            globals_len: std::cell::Cell::new((0, 0)),
            gc_base: std::cell::Cell::new(0),
            gc_collecting: std::cell::Cell::new(false),
            lua,
        })
    }

    /// Runs `func` through the bootstrap's `run` (under the error handler) with `keys` and
    /// `args`: as the KEYS and ARGV globals for an EVAL script, as its two arguments for a
    /// function. Returns `run`'s (ok, value); `Err(None)` when the argument tables could not be
    /// built (memory), `Err(Some(e))` for an error outside the script's own protected call.
    ///
    /// Everything happens in one protected C call on the raw stack: building the tables
    /// through mlua costs a registry reference per key and argument, which showed in EVALSHA
    /// profiles.
    pub fn invoke(
        &self,
        func: &Function,
        keys: &[Bytes],
        args: &[Bytes],
        as_function: bool,
    ) -> Result<(bool, Value), Option<mlua::Error>> {
        let built = std::cell::Cell::new(false);
        // SAFETY: plain Lua C API calls on the three values exec_raw placed at 1..=3; a Lua
        // error raised by them (memory) is caught by exec_raw's protected call, and no Rust
        // value with a destructor lives in this closure's frame.
        let r = unsafe {
            self.lua
                .exec_raw::<(bool, Value)>((&self.visible, &self.run, func), |state| {
                    use mlua::ffi;
                    if as_function {
                        push_strings(state, keys);
                        push_strings(state, args);
                        // run(func, keys, args)
                        ffi::lua_call(state, 3, 2);
                    } else {
                        let (n_keys, n_argv) = self.globals_len.get();
                        set_strings_global(state, c"KEYS", n_keys, keys);
                        set_strings_global(state, c"ARGV", n_argv, args);
                        self.globals_len.set((keys.len(), args.len()));
                        built.set(true);
                        // run(func)
                        ffi::lua_call(state, 1, 2);
                    }
                    ffi::lua_remove(state, 1);
                })
        };
        r.map_err(|e| {
            if built.get() || as_function {
                Some(e)
            } else {
                None
            }
        })
    }

    /// Collection between runs. Redis forces a collection step every 50 runs, which makes
    /// every run pay for marking the whole interpreter (larger here: the sandbox and the API
    /// are Lua code) whether or not it left garbage. Here a cycle starts once the runs have
    /// left `GC_SLACK_BYTES` of garbage since the last one ended, and is stepped after each
    /// run until it ends: collection costs in proportion to the garbage made, and the heap
    /// stays within a few kilobytes of its live size (Redis's test of 10,000 runs ends under
    /// 100 kB). Within a run Lua's own collector works as usual (default pause), so a script
    /// building a large table is not made to mark it over and over.
    pub fn after_run(&self) {
        let used = self.lua.used_memory();
        if !self.gc_collecting.get() {
            if used < self.gc_base.get() + GC_SLACK_BYTES {
                return;
            }
            self.gc_collecting.set(true);
        }
        if self.lua.gc_step_kbytes(GC_STEP_KB).unwrap_or(true) {
            self.gc_collecting.set(false);
            self.gc_base.set(self.lua.used_memory());
        }
    }

    /// `lua-enable-deprecated-api yes`: scripts see getfenv, setfenv and newproxy again.
    pub fn enable_deprecated_api(&self) {
        let g = self.lua.globals();
        for name in ["getfenv", "setfenv", "newproxy"] {
            if let Ok(f) = g.raw_get::<Value>(name) {
                let _ = self.visible.raw_set(name, f);
            }
        }
    }

    /// Collects until the heap stops shrinking (SCRIPT FLUSH, FUNCTION FLUSH: Redis starts a
    /// new interpreter there). One full cycle frees every dead object, but the interpreter's
    /// stacks and call-info arrays, grown by a deep or wide script (a nested cmsgpack value, a
    /// huge unpack), only halve once per cycle, so a single collection leaves hundreds of
    /// kilobytes that later cycles give back a half at a time.
    pub fn collect_fully(&self) {
        let mut last = self.lua.used_memory();
        for _ in 0..COLLECT_FULLY_CYCLES_MAX {
            let _ = self.lua.gc_collect();
            let now = self.lua.used_memory();
            if now >= last {
                break;
            }
            last = now;
        }
        self.gc_collecting.set(false);
        self.gc_base.set(self.lua.used_memory());
    }

    /// Compiles `code` (shebang already blanked) as a chunk named `@user_script`.
    pub fn compile(&self, code: &[u8], name: &str, env: &Table) -> Result<Function, String> {
        self.lua
            .load(code)
            .set_name(name)
            .set_environment(env.clone())
            .into_function()
            .map_err(|e| match e {
                mlua::Error::SyntaxError { message, .. } => message,
                other => other.to_string(),
            })
    }
}

fn version_num() -> i64 {
    let mut n = 0i64;
    for p in crate::server::run::REDIS_VERSION.split('.') {
        n = (n << 8) | p.parse::<i64>().unwrap_or(0);
    }
    n
}

/// Redis's own PRNG for `math.random` (rand48: same sequence on every platform).
static RAND48: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0x1234_ABCD_330E);

fn rand48_seed(seed: i32) {
    RAND48.store(((seed as u32 as u64) << 16) | 0x330E, Ordering::Relaxed);
}

fn rand48_next() -> i64 {
    let x = RAND48.load(Ordering::Relaxed);
    let next = (x.wrapping_mul(0x5DEECE66D).wrapping_add(0xB)) & ((1u64 << 48) - 1);
    RAND48.store(next, Ordering::Relaxed);
    (next >> 17) as i64
}

/// The message of an error that reached Lua as an mlua userdata.
fn errtext(_: &Lua, v: Value) -> mlua::Result<String> {
    let mut e = match v {
        Value::Error(e) => *e,
        Value::String(s) => return Ok(s.to_string_lossy()),
        other => return Ok(format!("{other:?}")),
    };
    loop {
        e = match e {
            mlua::Error::CallbackError { cause, .. } => (*cause).clone(),
            mlua::Error::WithContext { cause, .. } => (*cause).clone(),
            mlua::Error::RuntimeError(m) => return Ok(m),
            mlua::Error::SyntaxError { message, .. } => return Ok(message),
            other => return Ok(other.to_string()),
        }
    }
}

/// What `redis.call` needs about the invocation, reachable from the callbacks.
pub struct RunCtx<'a, 'b> {
    pub ctx: &'a mut ConnCtx<'b>,
    /// RESP version replies are converted from (`redis.setresp`).
    pub resp: u8,
    /// Read-only invocation (EVAL_RO, FCALL_RO, `no-writes`).
    pub read_only: bool,
    /// Whether the script/function declared flags (not the compatibility mode).
    pub has_flags: bool,
    pub allow_oom: bool,
}

thread_local! {
    static CTX: std::cell::Cell<*mut RunCtx<'static, 'static>> =
        const { std::cell::Cell::new(std::ptr::null_mut()) };
}

/// Runs `f` with `rc` as the current invocation.
pub fn with_run<R>(rc: &mut RunCtx<'_, '_>, f: impl FnOnce() -> R) -> R {
    let p = (rc as *mut RunCtx<'_, '_>).cast::<RunCtx<'static, 'static>>();
    let prev = CTX.with(|c| c.replace(p));
    let r = f();
    CTX.with(|c| c.set(prev));
    r
}

fn with_ctx<R>(f: impl FnOnce(&mut RunCtx<'_, '_>) -> R) -> Option<R> {
    let p = CTX.with(|c| c.replace(std::ptr::null_mut()));
    if p.is_null() {
        return None;
    }
    // SAFETY: set by `with_run` on this thread, whose frame (and the RunCtx) is alive while
    // Lua runs inside it; nulled during the call so no second &mut exists.
    let r = f(unsafe { &mut *p });
    CTX.with(|c| c.set(p));
    Some(r)
}

/// Installs the count hook: kill requests, busy threshold, busy pump.
pub fn set_hook(lua: &Lua) {
    lua.set_hook(HookTriggers::new().every_nth_instruction(10_000), |_, _| {
        if super::RUN.kill.load(Ordering::Relaxed) {
            return Err(mlua::Error::RuntimeError(
                "Script killed by user with SCRIPT KILL...".into(),
            ));
        }
        if super::busy() {
            super::log_slow_once();
            super::pump_now();
            if super::RUN.kill.load(Ordering::Relaxed) {
                crate::log_warning!("Lua script killed by user with SCRIPT KILL.");
                return Err(mlua::Error::RuntimeError(
                    "Script killed by user with SCRIPT KILL...".into(),
                ));
            }
        }
        Ok(VmState::Continue)
    });
}

/// An error for `redis.call`'s wrapper to raise: `{err = text}`, plus the flag Redis sets
/// when the error was counted already.
fn err_table(lua: &Lua, text: &str, ignore_stats: bool) -> mlua::Result<(Value, bool)> {
    let t = lua.create_table()?;
    t.raw_set("err", format!("ERR {text}"))?;
    if ignore_stats {
        t.raw_set("ignore_error_stats_update", true)?;
    }
    Ok((Value::Table(t), true))
}

/// `redis.set_repl`: the ops of a command the script ran go only where the script asked.
fn apply_set_repl(ops: &mut Vec<crate::replication::Op>) {
    match super::RUN.repl.load(Ordering::Relaxed) {
        3 => {}
        0 => ops.clear(),
        1 => ops.iter_mut().for_each(|o| o.aof_only = true),
        _ => ops.iter_mut().for_each(|o| o.repl_only = true),
    }
}

/// Looks the command up, applies the scripting checks, runs it; returns its reply bytes.
fn run_command(rc: &mut RunCtx<'_, '_>, argv: &[Bytes]) -> Result<(Vec<u8>, u8), &'static str> {
    let unknown = "Unknown Redis command called from script";
    let Some(mut cmd) = commands::lookup(&argv[0]) else {
        return rejected(rc, None, Err(unknown));
    };
    let mut full = cmd.name;
    if matches!(cmd.kind, Kind::Container) || (!cmd.subcommands.is_empty() && argv.len() >= 2) {
        let Some(sub) = argv.get(1).and_then(|s| cmd.find_sub(s)) else {
            return rejected(rc, None, Err(unknown));
        };
        full = crate::server::dispatch::full_name(cmd, sub);
        cmd = sub;
    }
    let argc = argv.len() as i32;
    if (cmd.arity > 0 && cmd.arity != argc) || argc < -cmd.arity {
        let e = Err("Wrong number of args calling Redis command from script");
        return rejected(rc, full, e);
    }
    if cmd.flags & flag::NOSCRIPT != 0 && !super::DISABLE_DENY_SCRIPTS.load(Ordering::Relaxed) {
        return rejected(
            rc,
            full,
            Err("This Redis command is not allowed from script"),
        );
    }
    // A script allowed to run on a stale replica (`allow-stale`) still may not reach data
    // (`scriptVerifyAllowStale`).
    if cmd.flags & flag::STALE == 0
        && crate::replication::replica::is_replica()
        && !crate::replication::replica::link_up()
        && !rc.ctx.server.config.load().replica_serve_stale_data
    {
        return rejected(
            rc,
            full,
            Err("Can not execute the command on a stale replica"),
        );
    }
    if let Err(e) = crate::acl::script_check(rc.ctx.client, cmd, full, argv) {
        return rejected(rc, full, Err(e));
    }
    if rc.read_only && cmd.flags & (flag::WRITE | flag::MAY_REPLICATE) != 0 {
        return rejected(
            rc,
            full,
            Err("Write commands are not allowed from read-only scripts."),
        );
    }
    let server = rc.ctx.server;
    if cmd.flags & flag::WRITE != 0 && !super::RUN.wrote.load(Ordering::Relaxed) {
        // Until the script has written, a write is refused while the disk is failing
        // (`scriptVerifyWriteCommandAllow`); once it has, it must run to the end.
        if let Some(e) = crate::persistence::snapshot::disk_error(server) {
            let reply = Ok((format!("-{e}\r\n").into_bytes(), rc.resp));
            return rejected(rc, full, reply);
        }
        // A read-only replica, or a master short of good replicas (`min-replicas-to-write`).
        if let Some(e) = crate::replication::replica::script_write_error(server, rc.ctx.client) {
            let reply = Ok((format!("-{e}\r\n").into_bytes(), rc.resp));
            return rejected(rc, full, reply);
        }
    }
    // Over maxmemory (eviction already ran when the script was admitted), a command that may
    // grow memory is refused until the script has written (`scriptVerifyOOM`); the master's
    // and the AOF's scripts must run.
    if !rc.allow_oom
        && cmd.flags & flag::DENYOOM != 0
        && !super::RUN.wrote.load(Ordering::Relaxed)
        && crate::storage::evict::over_budget()
        && !server.persistence.loading.load(Ordering::Relaxed)
        && !rc
            .ctx
            .client
            .shared
            .flags
            .lock()
            .is_ok_and(|f| f.contains('M'))
    {
        let e = "-OOM command not allowed when used memory > 'maxmemory'.\r\n";
        return rejected(rc, full, Ok((e.as_bytes().to_vec(), rc.resp)));
    }
    if cmd.flags & flag::WRITE != 0 {
        super::RUN.wrote.store(true, Ordering::Relaxed);
    }
    if cmd.flags & (flag::SKIP_MONITOR | flag::ADMIN) == 0 {
        super::monitor_script_command(server, rc.ctx.client.db, argv);
    }
    let nshards = server.nshards();
    let now_ms = rc.ctx.now_ms;
    let start = crate::util::cycles::now();
    let mut bytes = Vec::new();
    let mut out = Out::new(&mut bytes, rc.resp);
    if stream_block_option(cmd.name, argv) {
        // Redis keeps this error for scripts (rather than just not blocking, as in MULTI).
        let name = String::from_utf8_lossy(&argv[0]);
        out.error(&format!(
            "ERR {name} command is not allowed with BLOCK option from scripts"
        ));
        return Ok((bytes, rc.resp));
    }
    match cmd.kind {
        Kind::Data(f) => {
            let db = rc.ctx.client.db;
            let (mut guards, mut single);
            let mut ks = if nshards == 1 {
                // One shard (the common deployment): no lists of guards to build and sort.
                single = server.shards[0].lock_data();
                Keyspace::one(&mut single, nshards, db, now_ms)
            } else {
                guards = server.lock_all();
                let parts: Vec<&mut ShardData> = guards.iter_mut().map(|g| &mut **g).collect();
                Keyspace::many(parts, nshards, db, now_ms)
            };
            ks.no_block = true;
            ks.in_script = true;
            ks.no_touch = rc.ctx.client.no_touch;
            ks.prop.on = server.feed.active();
            ks.exec(f, argv, &mut out);
            if cmd.flags & flag::READONLY != 0 {
                crate::tracking::note_script_read();
            }
            apply_set_repl(&mut ks.prop.ops);
            rc.ctx.propagate.append(&mut ks.prop.ops);
            rc.ctx.ready_keys.extend(ks.take_ready());
            rc.ctx.notes.append(&mut ks.notifications);
        }
        Kind::Conn(f) => {
            let mut cc = ConnCtx {
                client: &mut *rc.ctx.client,
                server,
                shard: rc.ctx.shard,
                now_ms,
                deliveries: Vec::new(),
                notes: Vec::new(),
                ready_keys: Vec::new(),
                propagate: Vec::new(),
            };
            f(&mut cc, argv, &mut out);
            let (d, n, r, p) = (cc.deliveries, cc.notes, cc.ready_keys, cc.propagate);
            let mut p = p;
            apply_set_repl(&mut p);
            rc.ctx.propagate.extend(p);
            rc.ctx.deliveries.extend(d);
            rc.ctx.notes.extend(n);
            rc.ctx.ready_keys.extend(r);
        }
        Kind::Container => {}
    }
    let failed = out.errors > 0;
    let code = out.last_error_code.take();
    if let Some(h) = server.shards.get(rc.ctx.shard) {
        let us = crate::util::cycles::us_between(start, crate::util::cycles::now());
        let mut d = h.lock_data();
        d.cmd_stats.record(full, us, failed);
        if let Some(code) = code {
            d.cmd_stats.record_error(&code);
        }
    }
    Ok((bytes, rc.resp))
}

/// A call the script checks refused (Redis's `scriptCall` error path): its error is
/// counted now, whether the script raises it or catches it with `pcall` (a raised one is
/// not counted again: `call_argv` flags it), and a known command gets a rejected call in
/// COMMANDSTATS.
fn rejected(
    rc: &RunCtx<'_, '_>,
    full: impl Into<Option<&'static str>>,
    reply: Result<(Vec<u8>, u8), &'static str>,
) -> Result<(Vec<u8>, u8), &'static str> {
    let code = match &reply {
        Err(_) => "ERR".to_string(),
        Ok((bytes, _)) => {
            let text = bytes.strip_prefix(b"-").unwrap_or(bytes);
            let end = text
                .iter()
                .position(|&b| b == b' ' || b == b'\r')
                .unwrap_or(text.len());
            String::from_utf8_lossy(&text[..end]).into_owned()
        }
    };
    if let Some(h) = rc.ctx.server.shards.get(rc.ctx.shard) {
        let mut d = h.lock_data();
        d.cmd_stats.record_rejected(full.into());
        d.cmd_stats.record_error(&code);
    }
    reply
}

/// Whether an XREAD / XREADGROUP call has a BLOCK option (before STREAMS).
fn stream_block_option(name: &str, argv: &[Bytes]) -> bool {
    if name != "xread" && name != "xreadgroup" {
        return false;
    }
    for (i, a) in argv.iter().enumerate().skip(1) {
        if a.eq_ignore_ascii_case(b"streams") {
            return false;
        }
        if a.eq_ignore_ascii_case(b"block") && i + 1 < argv.len() {
            return true;
        }
    }
    false
}

/// Wraps `target` (returning `value, raise`) in a C function that raises `value` as a Lua
/// error when `raise` is true. Being a C function, it keeps the caller's frame on tail calls
/// (`return redis.call(...)`), so the error handler still finds the script's line.
fn make_raiser(lua: &Lua, target: Function) -> mlua::Result<Function> {
    // SAFETY: pushes a C closure over the one argument exec_raw placed on the stack.
    unsafe {
        lua.exec_raw::<Function>(target, |state| {
            mlua::ffi::lua_pushcclosure(state, raiser_trampoline, 1);
        })
    }
}

unsafe extern "C-unwind" fn raiser_trampoline(state: *mut mlua::ffi::lua_State) -> std::ffi::c_int {
    use mlua::ffi;
    // SAFETY (whole body): plain Lua C API calls on the running state; no Rust value with a
    // destructor is alive when lua_error unwinds (longjmps) out of this frame.
    let n = ffi::lua_gettop(state);
    ffi::lua_pushvalue(state, ffi::lua_upvalueindex(1));
    ffi::lua_insert(state, 1);
    ffi::lua_call(state, n, 2);
    if ffi::lua_toboolean(state, -1) != 0 {
        ffi::lua_pop(state, 1);
        // lua_error does not return (it longjmps to the protected call).
        ffi::lua_error(state);
    }
    ffi::lua_pop(state, 1);
    1
}

/// Sets the global `name` (KEYS or ARGV, in the visible globals at stack index 1) to an array
/// of `items`. The previous run's table is refilled when the script left it as it was given
/// (`prev` entries, no others, no metatable): a new pair of tables per run was most of the
/// garbage a short script makes, and collecting it most of what such a script costs.
/// Scripts cannot keep a reference to the table past their run (their globals are read-only),
/// so reuse is not observable; a table the script changed is left to the collector.
///
/// # Safety
/// As `push_strings`, with the visible globals at index 1.
unsafe fn set_strings_global(
    state: *mut mlua::ffi::lua_State,
    name: &std::ffi::CStr,
    prev: usize,
    items: &[Bytes],
) {
    use mlua::ffi;
    ffi::lua_getfield(state, 1, name.as_ptr());
    let reusable = ffi::lua_type(state, -1) == ffi::LUA_TTABLE
        && prev <= REUSE_LEN_MAX
        && items.len() <= REUSE_LEN_MAX
        && !has_metatable(state)
        && holds_exactly_1_to(state, prev);
    if !reusable {
        ffi::lua_pop(state, 1);
        push_strings(state, items);
        ffi::lua_setfield(state, 1, name.as_ptr());
        return;
    }
    for (i, it) in items.iter().enumerate() {
        ffi::lua_pushlstring(state, it.as_ptr().cast(), it.len());
        ffi::lua_rawseti(state, -2, (i + 1) as ffi::lua_Integer);
    }
    for i in items.len()..prev {
        ffi::lua_pushnil(state);
        ffi::lua_rawseti(state, -2, (i + 1) as ffi::lua_Integer);
    }
    ffi::lua_pop(state, 1);
}

/// Whether the value on top of the stack has a metatable.
///
/// # Safety
/// A value is on top of `state`'s stack, with room for one more.
unsafe fn has_metatable(state: *mut mlua::ffi::lua_State) -> bool {
    if mlua::ffi::lua_getmetatable(state, -1) == 0 {
        return false;
    }
    mlua::ffi::lua_pop(state, 1);
    true
}

/// Whether the table on top of the stack has exactly the keys 1..=n (any values).
///
/// # Safety
/// A table is on top of `state`'s stack, with room for two more values.
unsafe fn holds_exactly_1_to(state: *mut mlua::ffi::lua_State, n: usize) -> bool {
    use mlua::ffi;
    let mut count = 0;
    ffi::lua_pushnil(state);
    while ffi::lua_next(state, -2) != 0 {
        ffi::lua_pop(state, 1);
        let ok = ffi::lua_type(state, -1) == ffi::LUA_TNUMBER && {
            let k = ffi::lua_tonumber(state, -1);
            k >= 1.0 && k <= n as f64 && k.fract() == 0.0
        };
        count += 1;
        if !ok || count > n {
            ffi::lua_pop(state, 1);
            return false;
        }
    }
    count == n
}

/// Largest KEYS or ARGV table refilled rather than replaced (a big one is rare, and would
/// keep its size).
const REUSE_LEN_MAX: usize = 64;

/// Pushes a new array of `items` as Lua strings.
///
/// # Safety
/// `state` is the running Lua state with room for two more values; a memory error raises a
/// Lua error, so the caller's frame holds nothing with a destructor.
unsafe fn push_strings(state: *mut mlua::ffi::lua_State, items: &[Bytes]) {
    use mlua::ffi;
    ffi::lua_createtable(state, items.len().min(i32::MAX as usize) as i32, 0);
    for (i, it) in items.iter().enumerate() {
        ffi::lua_pushlstring(state, it.as_ptr().cast(), it.len());
        ffi::lua_rawseti(state, -2, (i + 1) as ffi::lua_Integer);
    }
}

/// What `raw_call` hands to `call_argv` (the mlua half of `redis.call`).
enum Handoff {
    /// Arguments to run.
    Args(Vec<Bytes>),
    /// Arguments that could not be read.
    BadArgs(&'static str),
    /// A command already run by `raw_call` whose reply needs the full conversion.
    Ran(Result<(Vec<u8>, u8), &'static str>),
}

thread_local! {
    /// Set by `raw_call`, taken by `call_argv`.
    static HANDOFF: std::cell::RefCell<Option<Handoff>> = const { std::cell::RefCell::new(None) };
    /// The fast path's reply while it is pushed, kept where a Lua memory error (a longjmp)
    /// cannot leak it.
    static FAST_REPLY: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Reads `redis.call`'s arguments straight from the Lua stack (no mlua value per argument,
/// so thousands of arguments fit), then runs the command through `call_argv`.
unsafe fn raw_call_common(state: *mut mlua::ffi::lua_State) -> bool {
    use mlua::ffi;
    let n = ffi::lua_gettop(state);
    let argv = if n == 0 {
        Err("Please specify at least one argument for this redis lib call")
    } else {
        let mut v = Vec::with_capacity(n as usize);
        let mut bad = false;
        for i in 1..=n {
            match ffi::lua_type(state, i) {
                ffi::LUA_TNUMBER => {
                    let d = ffi::lua_tonumber(state, i);
                    v.push(Bytes::from(crate::protocol::write::fmt_g17(d)));
                }
                ffi::LUA_TSTRING => {
                    let mut len = 0usize;
                    let p = ffi::lua_tolstring(state, i, &mut len);
                    v.push(Bytes::copy_from_slice(std::slice::from_raw_parts(
                        p as *const u8,
                        len,
                    )));
                }
                _ => {
                    bad = true;
                    break;
                }
            }
        }
        if bad {
            Err("Lua redis lib command arguments must be strings or integers")
        } else {
            Ok(v)
        }
    };
    ffi::lua_settop(state, 0);
    let handoff = match argv {
        Err(e) => Handoff::BadArgs(e),
        Ok(v) if super::ldb::active() => Handoff::Args(v),
        Ok(v) => {
            // The common case runs here, without the mlua callback (a panic never unwinds
            // through Lua's frames: the server's panic hook aborts).
            match with_ctx(|rc| run_command(rc, &v)) {
                None => Handoff::Args(v),
                Some(Ok((bytes, resp))) => {
                    drop(v);
                    FAST_REPLY.with(|r| *r.borrow_mut() = bytes);
                    let (p, len) = FAST_REPLY.with(|r| {
                        let b = r.borrow();
                        (b.as_ptr(), b.len())
                    });
                    // SAFETY: FAST_REPLY is not touched until the next call on this thread.
                    let reply = std::slice::from_raw_parts(p, len);
                    if push_simple_reply(state, reply) {
                        FAST_REPLY.with(|r| *r.borrow_mut() = Vec::new());
                        ffi::lua_pushboolean(state, 0);
                        return false;
                    }
                    ffi::lua_settop(state, 0);
                    let bytes = FAST_REPLY.with(|r| std::mem::take(&mut *r.borrow_mut()));
                    Handoff::Ran(Ok((bytes, resp)))
                }
                Some(Err(e)) => Handoff::Ran(Err(e)),
            }
        }
    };
    HANDOFF.with(|a| *a.borrow_mut() = Some(handoff));
    ffi::lua_getfield(state, ffi::LUA_REGISTRYINDEX, c"shardis_call_argv".as_ptr());
    ffi::lua_call(state, 0, 2);
    ffi::lua_toboolean(state, -1) != 0
}

/// Pushes a reply made only of integers, bulk strings, nulls, status lines and arrays of
/// those, converted as `convert::resp_to_lua` does; false (with the stack as it was) for
/// anything else, left to the full conversion.
///
/// # Safety
/// `state` is the running state; a memory error raises a Lua error.
unsafe fn push_simple_reply(state: *mut mlua::ffi::lua_State, reply: &[u8]) -> bool {
    use mlua::ffi;
    let top = ffi::lua_gettop(state);
    let mut pos = 0;
    if push_simple(state, reply, &mut pos, 0) && pos == reply.len() {
        return true;
    }
    ffi::lua_settop(state, top);
    false
}

/// Reads one RESP line's content at `*pos` (to its CRLF), moving past it.
fn simple_line<'a>(reply: &'a [u8], pos: &mut usize) -> Option<&'a [u8]> {
    let rest = reply.get(*pos..)?;
    let end = memchr::memchr(b'\r', rest)?;
    if rest.get(end + 1) != Some(&b'\n') {
        return None;
    }
    *pos += end + 2;
    Some(&rest[..end])
}

/// The number on a RESP line, only when it is canonical (what our replies hold).
fn simple_int(line: &[u8]) -> Option<i64> {
    std::str::from_utf8(line).ok()?.parse().ok()
}

/// Array nesting the fast path follows (deeper replies take the full conversion).
const SIMPLE_DEPTH_MAX: usize = 8;

unsafe fn push_simple(
    state: *mut mlua::ffi::lua_State,
    reply: &[u8],
    pos: &mut usize,
    depth: usize,
) -> bool {
    use mlua::ffi;
    let Some(&t) = reply.get(*pos) else {
        return false;
    };
    *pos += 1;
    let Some(line) = simple_line(reply, pos) else {
        return false;
    };
    match t {
        b':' => {
            let Some(n) = simple_int(line) else {
                return false;
            };
            ffi::lua_pushnumber(state, n as f64);
        }
        b'$' => {
            let Some(n) = simple_int(line) else {
                return false;
            };
            if n < 0 {
                ffi::lua_pushboolean(state, 0);
                return true;
            }
            let n = n as usize;
            let Some(body) = reply.get(*pos..*pos + n) else {
                return false;
            };
            if reply.get(*pos + n..*pos + n + 2) != Some(b"\r\n") {
                return false;
            }
            *pos += n + 2;
            ffi::lua_pushlstring(state, body.as_ptr().cast(), body.len());
        }
        b'+' => {
            ffi::lua_createtable(state, 0, 1);
            ffi::lua_pushlstring(state, line.as_ptr().cast(), line.len());
            ffi::lua_setfield(state, -2, c"ok".as_ptr());
        }
        b'*' => {
            let Some(n) = simple_int(line) else {
                return false;
            };
            if n < 0 {
                ffi::lua_pushboolean(state, 0);
                return true;
            }
            if depth >= SIMPLE_DEPTH_MAX || ffi::lua_checkstack(state, 2) == 0 {
                return false;
            }
            ffi::lua_createtable(state, n.min(1 << 16) as i32, 0);
            for i in 0..n {
                if !push_simple(state, reply, pos, depth + 1) {
                    return false;
                }
                ffi::lua_rawseti(state, -2, i + 1);
            }
        }
        _ => return false,
    }
    true
}

/// `redis.call`: raises the error table when the command failed.
unsafe extern "C-unwind" fn raw_call(state: *mut mlua::ffi::lua_State) -> std::ffi::c_int {
    // SAFETY: Lua C API on the running state; nothing with a destructor is alive here when
    // lua_error longjmps out (the arguments live in the ARGV thread-local meanwhile).
    let raise = raw_call_common(state);
    mlua::ffi::lua_pop(state, 1);
    if raise {
        mlua::ffi::lua_error(state);
    }
    1
}

/// `redis.pcall`: returns the error table instead of raising it.
unsafe extern "C-unwind" fn raw_pcall(state: *mut mlua::ffi::lua_State) -> std::ffi::c_int {
    // SAFETY: as `raw_call`.
    raw_call_common(state);
    mlua::ffi::lua_pop(state, 1);
    1
}

/// The second half of `redis.call`: runs the command whose arguments `raw_call` stored.
fn call_argv(lua: &Lua, _: ()) -> mlua::Result<(Value, bool)> {
    let handoff = HANDOFF.with(|a| a.borrow_mut().take());
    let r = match handoff {
        Some(Handoff::Args(argv)) => {
            super::ldb::log_command(&argv);
            with_ctx(|rc| run_command(rc, &argv))
        }
        Some(Handoff::Ran(r)) => Some(r),
        Some(Handoff::BadArgs(e)) => {
            super::ldb::log_error(e);
            return err_table(lua, e, false);
        }
        None => return err_table(lua, "Unknown Redis command called from script", false),
    };
    match &r {
        Some(Err(text)) => super::ldb::log_error(text),
        Some(Ok((bytes, _))) => super::ldb::log_reply(bytes),
        None => {}
    }
    let Some(r) = r else {
        return err_table(
            lua,
            "redis.call/pcall can only be called inside a script invocation",
            false,
        );
    };
    match r {
        Err(text) => err_table(lua, text, true),
        Ok((bytes, resp)) => {
            let is_err = bytes.first() == Some(&b'-');
            let v = convert::resp_to_lua(lua, &bytes, resp)?;
            if let (true, Value::Table(t)) = (is_err, &v) {
                // Counted where the call failed (`run_command`): not again by the reply.
                t.raw_set("ignore_error_stats_update", true)?;
            }
            Ok((v, is_err))
        }
    }
}
