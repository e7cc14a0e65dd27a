//! Lua scripting and functions (Redis 7.0): EVAL & co., SCRIPT, FUNCTION, FCALL.
//!
//! ## One VM, every shard
//! Redis has one Lua 5.1 interpreter; so do we (`mlua`, vendored Lua 5.1, behind a mutex in
//! `Vm`). A script or function runs on the home thread of the connection that sent it, while
//! that thread holds **every shard's lock** (the ordered re-entrant shard locks of `shard`),
//! so it is atomic across shards and may touch keys it did not declare in KEYS (queue
//! libraries do; it is allowed, never rejected). Each `redis.call` borrows all shards' data
//! for that one call and runs the command's handler from the command table on a `Keyspace`
//! spanning them (connection-level commands run on the caller's `ConnCtx`), with
//! `no_block` set as in MULTI. Keyspace notifications, ready keys for blocked clients and
//! pub/sub deliveries the calls produce are handed back to the engine through the `ConnCtx`,
//! exactly as EXEC does, so WATCH, wake-ups and notifications behave as for plain commands.
//!
//! Lock order: the VM mutex, then the shard locks in ascending order. A thread that already
//! holds shard locks when it asks for the VM (EVAL inside EXEC) cannot deadlock with a script
//! waiting for those shards, because a script takes the shards with a timed attempt and, on
//! timeout, lets go of the VM and starts over.
//!
//! ## Busy scripts without a global event loop
//! Redis serves other clients while a script runs past `busy-reply-threshold` by calling its
//! event loop from the Lua count hook; they get `-BUSY` until SCRIPT KILL / FUNCTION KILL /
//! SHUTDOWN NOSAVE. Here the other shard threads would simply block on the held shard locks.
//! Instead, a script publishes itself in `RUN` (an atomic start time, 0 when idle) *before*
//! it asks for the shard locks, and every shard thread checks that one atomic at the top of
//! each loop turn and before each command (`wait_for_script`): when a script runs elsewhere,
//! the thread waits on a condition variable for the script to end, at most until the
//! threshold; past it the script is "busy" and the thread serves its connections in a busy
//! mode that takes no shard lock: allow-busy commands run (SCRIPT KILL, FUNCTION KILL,
//! FUNCTION STATS, SHUTDOWN...) and everything else gets `-BUSY`. The script's own thread
//! does the same for its other connections from the Lua count hook (`set_busy_pump`). On the
//! hot path, with no script running, all this costs one relaxed atomic load per command.
//! The gap: a thread that read "idle" before a script published itself and later in the
//! same loop turn blocks on a shard lock waits for that script to finish, and its clients
//! with it, even one about to send SCRIPT KILL. The window is the rest of that turn; the
//! cron, which takes locks most, is skipped while a script runs. Closing it for good needs
//! a handshake between the script and the other shards' turns: one was tried (each shard
//! flagging its turn, a starting script waiting for the flags to drop) and cost a hop per
//! script with two shards (throughput 0.12 of Redis for EVALSHA), so it was taken out.
//!
//! ## Files
//! `vm` builds the sandboxed interpreter and the `redis` API, `convert` maps RESP replies to
//! Lua values and back, `eval` holds EVAL/SCRIPT, `functions` the library registry and
//! FUNCTION/FCALL, `cjson`, `cmsgpack`, `structlib` and `bit` the libraries scripts use,
//! `ldb` the Lua debugger (SCRIPT DEBUG), whose I/O goes through the engine's `ScriptHost`.

pub mod bit;
pub mod cjson;
pub mod cmsgpack;
pub mod convert;
pub mod eval;
pub mod functions;
pub mod ldb;
pub mod structlib;
pub mod vm;

use crate::server::Server;
use parking_lot::{Condvar, Mutex};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

pub use functions::{
    flush_libraries, library_codes, library_codes_vec, load_library, load_library_replace,
};

/// DEBUG SET-DISABLE-DENY-SCRIPTS: scripts may call `noscript` commands (a test hook).
pub static DISABLE_DENY_SCRIPTS: AtomicBool = AtomicBool::new(false);

/// The state of the running script, shared by every thread.
pub struct RunState {
    /// Unix ms when the running script started, 0 when none runs.
    pub since_ms: AtomicU64,
    /// The shard thread running it.
    pub shard: AtomicUsize,
    /// SCRIPT KILL / FUNCTION KILL was requested.
    pub kill: AtomicBool,
    /// The script already wrote to the dataset (UNKILLABLE).
    pub wrote: AtomicBool,
    /// `redis.set_repl` targets for the commands it runs from now on: bit 0 the AOF, bit 1
    /// replicas (`REPL_ALL` = 3).
    pub repl: std::sync::atomic::AtomicU8,
    /// An EVAL (true) or a function (false).
    pub is_eval: AtomicBool,
    /// The busy threshold in ms for the running script (0: never busy).
    pub threshold_ms: AtomicU64,
    /// The running script's "Slow script detected" line was logged.
    pub busy_logged: AtomicBool,
    /// The running function's name or script's sha (FUNCTION STATS).
    pub name: Mutex<(String, Vec<bytes::Bytes>)>,
    done_lock: Mutex<()>,
    done: Condvar,
}

pub static RUN: RunState = RunState {
    since_ms: AtomicU64::new(0),
    shard: AtomicUsize::new(usize::MAX),
    kill: AtomicBool::new(false),
    wrote: AtomicBool::new(false),
    repl: std::sync::atomic::AtomicU8::new(3),
    is_eval: AtomicBool::new(true),
    threshold_ms: AtomicU64::new(5000),
    busy_logged: AtomicBool::new(false),
    name: Mutex::new((String::new(), Vec::new())),
    done_lock: Mutex::new(()),
    done: Condvar::new(),
};

/// The BUSY reply for the running script's kind.
pub fn busy_error() -> &'static str {
    if RUN.is_eval.load(Ordering::Relaxed) {
        "BUSY Redis is busy running a script. You can only call SCRIPT KILL or SHUTDOWN NOSAVE."
    } else {
        "BUSY Redis is busy running a script. You can only call FUNCTION KILL or SHUTDOWN NOSAVE."
    }
}

/// Whether a script is running (on any thread).
#[inline]
/// EVAL and its variants, FCALL and FCALL_RO: the commands that feed MONITOR themselves.
pub fn is_script_call(name: &str) -> bool {
    matches!(
        name,
        "eval" | "evalsha" | "eval_ro" | "evalsha_ro" | "fcall" | "fcall_ro"
    )
}

thread_local! {
    /// MONITOR lines of the commands the running script called, sent by the engine after
    /// the script's own line.
    static MONITOR_LINES: std::cell::RefCell<Vec<bytes::Bytes>> =
        const { std::cell::RefCell::new(Vec::new()) };
}

/// Records the MONITOR line of a command a script runs (`[db lua] ...`).
pub fn monitor_script_command(server: &Server, db: usize, args: &[bytes::Bytes]) {
    if server.monitor_count.load(Ordering::Relaxed) == 0 {
        return;
    }
    let line = crate::commands::connection::monitor_line(db, "lua", args, &[]);
    MONITOR_LINES.with(|l| l.borrow_mut().push(line));
}

/// The MONITOR lines recorded on this thread since the last call.
pub fn take_monitor_lines() -> Vec<bytes::Bytes> {
    MONITOR_LINES.with(|l| std::mem::take(&mut *l.borrow_mut()))
}

pub fn running() -> bool {
    RUN.since_ms.load(Ordering::Relaxed) != 0
}

/// Logs, once per run, that the running script passed the busy threshold (Redis's
/// `scriptInterrupt` line, which operators look for).
pub(crate) fn log_slow_once() {
    if RUN.busy_logged.swap(true, Ordering::Relaxed) {
        return;
    }
    let since = RUN.since_ms.load(Ordering::Acquire);
    let elapsed = crate::util::now_ms().saturating_sub(since);
    let (kill, name) = if RUN.is_eval.load(Ordering::Relaxed) {
        ("SCRIPT KILL", format!("f_{}", RUN.name.lock().0))
    } else {
        ("FUNCTION KILL", RUN.name.lock().0.clone())
    };
    crate::log_warning!(
        "Slow script detected: still in execution after {} milliseconds. You can try killing the script using the {} command. Script name is: {}.",
        elapsed,
        kill,
        name
    );
}

/// Whether a script runs and has passed the busy threshold.
pub fn busy() -> bool {
    let since = RUN.since_ms.load(Ordering::Acquire);
    if since == 0 {
        return false;
    }
    let t = RUN.threshold_ms.load(Ordering::Relaxed);
    t > 0 && crate::util::now_ms() >= since + t
}

/// Called by shard threads before taking shard locks: when a script runs on another thread,
/// waits for it to end, at most until it becomes busy. Returns true when the caller must
/// serve its connections in busy mode (the script is still running past the threshold).
#[inline]
pub fn wait_for_script(shard: usize) -> bool {
    if !running() {
        return false;
    }
    wait_slow(shard)
}

#[cold]
fn wait_slow(shard: usize) -> bool {
    loop {
        let since = RUN.since_ms.load(Ordering::Acquire);
        if since == 0 {
            return false;
        }
        if RUN.shard.load(Ordering::Relaxed) == shard {
            // Our own script (we are inside its busy pump).
            return busy();
        }
        let t = RUN.threshold_ms.load(Ordering::Relaxed);
        let now = crate::util::now_ms();
        if t > 0 && now >= since + t {
            return true;
        }
        let wait_ms = if t == 0 {
            100
        } else {
            (since + t - now).min(100)
        };
        let mut g = RUN.done_lock.lock();
        if RUN.since_ms.load(Ordering::Acquire) == since {
            RUN.done
                .wait_for(&mut g, Duration::from_millis(wait_ms.max(1)));
        }
    }
}

/// Marks the start of a script run on `shard`.
fn publish_start(shard: usize, is_eval: bool, threshold_ms: u64) {
    RUN.kill.store(false, Ordering::Relaxed);
    RUN.wrote.store(false, Ordering::Relaxed);
    RUN.repl.store(3, Ordering::Relaxed);
    RUN.is_eval.store(is_eval, Ordering::Relaxed);
    RUN.shard.store(shard, Ordering::Relaxed);
    RUN.threshold_ms.store(threshold_ms, Ordering::Relaxed);
    RUN.busy_logged.store(false, Ordering::Relaxed);
    RUN.since_ms
        .store(crate::util::now_ms().max(1), Ordering::Release);
}

/// Marks the end of a script run and wakes the threads waiting for it.
fn publish_end() {
    let _g = RUN.done_lock.lock();
    RUN.since_ms.store(0, Ordering::Release);
    RUN.shard.store(usize::MAX, Ordering::Relaxed);
    RUN.done.notify_all();
}

/// What a script run needs from the engine of its thread: serving the shard's other
/// connections while the script is busy, and the debugger's I/O on the script's own
/// connection (see `ldb`).
pub trait ScriptHost {
    /// Polls the shard's I/O without waiting and serves its other connections in busy mode.
    fn busy_pump(&mut self);
    /// Hands `bytes` to the script's connection (after any send still in flight). False
    /// when the connection is gone or did not take earlier output within the send timeout.
    fn debug_write(&mut self, bytes: Vec<u8>) -> bool;
    /// Waits at most `timeout` for bytes from the script's connection, serving the shard's
    /// other connections in busy mode meanwhile when the script is busy.
    fn debug_read(&mut self, timeout: Duration) -> DebugRead;
}

/// What `ScriptHost::debug_read` got.
pub enum DebugRead {
    Data(Vec<u8>),
    Idle,
    Gone,
}

thread_local! {
    /// The engine's host for this thread's script run, installed around it.
    static HOST: std::cell::Cell<Option<*mut dyn ScriptHost>> =
        const { std::cell::Cell::new(None) };
}

/// Runs `f` with `host` installed as this thread's script host.
pub fn with_host<R>(host: &mut dyn ScriptHost, f: impl FnOnce() -> R) -> R {
    // SAFETY: the pointer is only dereferenced by `with_installed_host` on this thread while
    // `f` runs, and it is removed before `host` goes out of scope.
    let p: *mut (dyn ScriptHost + '_) = host;
    let p: *mut dyn ScriptHost = unsafe { std::mem::transmute(p) };
    let prev = HOST.with(|c| c.replace(Some(p)));
    let r = f();
    HOST.with(|c| c.set(prev));
    r
}

/// Calls `f` on this thread's host, if one is installed (and not already in use).
pub(crate) fn with_installed_host<R>(f: impl FnOnce(&mut dyn ScriptHost) -> R) -> Option<R> {
    let p = HOST.with(|c| c.take())?;
    // SAFETY: installed by `with_host`, whose frame is alive (we run inside its `f`); taken
    // out of the cell during the call, so it is never re-entered.
    let r = f(unsafe { &mut *p });
    HOST.with(|c| c.set(Some(p)));
    Some(r)
}

/// Called from the Lua hook while busy: lets the engine serve other connections.
pub(crate) fn pump_now() {
    with_installed_host(|h| h.busy_pump());
}

/// Whether `cmd` is one of the scripting commands that run a script (EVAL family, FCALL).
pub fn runs_script(cmd: &crate::commands::Cmd) -> bool {
    matches!(
        cmd.name,
        "eval" | "evalsha" | "eval_ro" | "evalsha_ro" | "fcall" | "fcall_ro"
    )
}

/// The shards' locks plus the VM, held for a script run.
pub(crate) struct Session<'a> {
    pub vm: parking_lot::MutexGuard<'static, vm::Vm>,
    _holds: Vec<crate::shard::LockHold<'a>>,
    published: bool,
}

impl Drop for Session<'_> {
    fn drop(&mut self) {
        publish_stats(&self.vm);
        if self.published {
            publish_end();
        }
    }
}

/// Takes the VM and every shard (see the module essay for the order and the timeout).
/// `Err` carries a BUSY error when another thread's script became busy meanwhile.
pub(crate) fn acquire(
    server: &Server,
    shard: usize,
    is_eval: bool,
) -> Result<Session<'_>, &'static str> {
    let threshold = server.config.load().busy_reply_threshold_ms;
    loop {
        let vm = loop {
            if let Some(g) = vm::vm().try_lock_for(Duration::from_millis(10)) {
                break g;
            }
            if busy() && RUN.shard.load(Ordering::Relaxed) != shard {
                return Err(busy_error());
            }
        };
        publish_start(shard, is_eval, threshold);
        let mut holds = Vec::with_capacity(server.shards.len());
        let mut ok = true;
        for h in server.shards.iter() {
            match h.try_hold_for(Duration::from_millis(50)) {
                Some(g) => holds.push(g),
                None => {
                    ok = false;
                    break;
                }
            }
        }
        if ok {
            let mut vm = vm;
            if !vm.deprecated_api_checked {
                vm.deprecated_api_checked = true;
                let cfg = server.config.load();
                let on = cfg.get(&[b"lua-enable-deprecated-api"]);
                if on.first().is_some_and(|(_, v)| v == "yes") {
                    vm.enable_deprecated_api();
                }
            }
            return Ok(Session {
                vm,
                _holds: holds,
                published: true,
            });
        }
        drop(holds);
        publish_end();
        drop(vm);
        std::thread::yield_now();
    }
}

/// The VM taken alone; republishes the memory statistics when let go.
pub(crate) struct VmGuard(parking_lot::MutexGuard<'static, vm::Vm>);

impl std::ops::Deref for VmGuard {
    type Target = vm::Vm;
    fn deref(&self) -> &vm::Vm {
        &self.0
    }
}

impl std::ops::DerefMut for VmGuard {
    fn deref_mut(&mut self) -> &mut vm::Vm {
        &mut self.0
    }
}

impl Drop for VmGuard {
    fn drop(&mut self) {
        publish_stats(&self.0);
    }
}

/// Takes the VM, waiting as long as it takes (RDB loading).
pub(crate) fn lock_vm() -> VmGuard {
    VmGuard(vm::vm().lock())
}

/// What INFO memory reports about scripting, published whenever the VM is let go so INFO
/// never waits for the VM (a busy script holds it).
pub struct ScriptStats {
    /// Bytes the Lua interpreter has allocated (`used_memory_vm_eval`; functions share it).
    pub vm_bytes: AtomicUsize,
    /// Cached EVAL scripts, and what their bodies and entries take.
    pub cached_scripts: AtomicUsize,
    pub scripts_bytes: AtomicUsize,
    pub functions: AtomicUsize,
    pub libraries: AtomicUsize,
    /// Library code and registry entries.
    pub functions_bytes: AtomicUsize,
}

pub static STATS: ScriptStats = ScriptStats {
    vm_bytes: AtomicUsize::new(0),
    cached_scripts: AtomicUsize::new(0),
    scripts_bytes: AtomicUsize::new(0),
    functions: AtomicUsize::new(0),
    libraries: AtomicUsize::new(0),
    functions_bytes: AtomicUsize::new(0),
};

/// Per-entry bookkeeping counted on top of a script's or library's text (its sha or name,
/// the map entry, the compiled function's handle).
const ENTRY_OVERHEAD_BYTES: usize = 96;

fn publish_stats(vm: &vm::Vm) {
    let scripts: usize = vm
        .scripts
        .values()
        .map(|s| s.body.len() + 40 + ENTRY_OVERHEAD_BYTES)
        .sum();
    let libs: usize = vm
        .libs
        .libs
        .values()
        .map(|l| l.code.len() + l.name.len() + ENTRY_OVERHEAD_BYTES)
        .sum::<usize>()
        + vm.libs.index.len() * ENTRY_OVERHEAD_BYTES;
    let r = Ordering::Relaxed;
    STATS.vm_bytes.store(vm.lua.used_memory(), r);
    STATS.cached_scripts.store(vm.scripts.len(), r);
    STATS.scripts_bytes.store(scripts, r);
    STATS.functions.store(vm.libs.index.len(), r);
    STATS.libraries.store(vm.libs.libs.len(), r);
    STATS.functions_bytes.store(libs, r);
}

/// Takes the VM alone (SCRIPT LOAD, FUNCTION LOAD...), never while a busy script runs.
pub(crate) fn vm_only() -> Result<VmGuard, &'static str> {
    loop {
        if let Some(g) = vm::vm().try_lock_for(Duration::from_millis(10)) {
            return Ok(VmGuard(g));
        }
        if busy() {
            return Err(busy_error());
        }
    }
}

/// Lower-case hex SHA-1 (script ids, `redis.sha1hex`).
pub fn sha1_hex(data: &[u8]) -> String {
    sha1_smol::Sha1::from(data).digest().to_string()
}

/// Splits a shebang line into words the way Redis's `sdssplitargs` does: blanks separate
/// words, and `"..."` (with backslash escapes) or `'...'` sections are taken literally. None
/// when a quote is unbalanced or not followed by a blank.
pub fn split_args(line: &str) -> Option<Vec<String>> {
    let b = line.as_bytes();
    let mut words = Vec::new();
    let mut i = 0;
    loop {
        while i < b.len() && b[i].is_ascii_whitespace() {
            i += 1;
        }
        if i >= b.len() {
            return Some(words);
        }
        let mut w = Vec::new();
        while i < b.len() && !b[i].is_ascii_whitespace() {
            let q = b[i];
            if q == b'"' || q == b'\'' {
                i += 1;
                loop {
                    let c = *b.get(i)?;
                    i += 1;
                    if c == q {
                        break;
                    }
                    if c == b'\\' && q == b'"' {
                        let e = *b.get(i)?;
                        i += 1;
                        w.push(match e {
                            b'n' => b'\n',
                            b'r' => b'\r',
                            b't' => b'\t',
                            b'a' => 7,
                            b'b' => 8,
                            other => other,
                        });
                    } else {
                        w.push(c);
                    }
                }
                if i < b.len() && !b[i].is_ascii_whitespace() {
                    return None;
                }
            } else {
                w.push(q);
                i += 1;
            }
        }
        words.push(String::from_utf8_lossy(&w).into_owned());
    }
}

thread_local! {
    /// Replicas to poke after a script fed its effects (see `feed_effects`).
    static POKE: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
    /// Set while the engine runs a script as a command of its own (not inside EXEC, whose
    /// transaction feeds everything it ran as one unit).
    static TOP_LEVEL: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Runs `f` as a top-level script command (its effects are fed by the script itself).
pub fn top_level<R>(f: impl FnOnce() -> R) -> R {
    let prev = TOP_LEVEL.with(|t| t.replace(true));
    let r = f();
    TOP_LEVEL.with(|t| t.set(prev));
    r
}

/// Feeds what a script or function propagated (its effects, wrapped in MULTI/EXEC when more
/// than one) to the replication stream while its shard locks are still held, so no other
/// shard's write can come between; the engine pokes the replicas afterwards (`take_poke`).
pub(crate) fn feed_effects(ctx: &mut crate::server::ConnCtx) {
    if !TOP_LEVEL.with(|t| t.get()) || ldb::in_child() {
        return;
    }
    let ops = std::mem::take(&mut ctx.propagate);
    let poke = ctx.server.feed.propagate(&ops, true);
    POKE.with(|p| p.set(p.get() | poke));
}

/// The replicas to poke after the last script on this thread.
pub fn take_poke() -> u64 {
    POKE.with(|p| p.replace(0))
}

/// INFO memory's scripting fields, in Redis's order. Scripts and functions share one
/// interpreter here, so its whole size is reported as the eval VM and the functions VM as 0.
pub fn info_memory_fields() -> String {
    let r = Ordering::Relaxed;
    let vm = STATS.vm_bytes.load(r);
    let scripts = STATS.scripts_bytes.load(r);
    let funcs = STATS.functions_bytes.load(r);
    let human = |n: usize| crate::commands::memory::human(n as u64);
    format!(
        "used_memory_lua:{vm}\r\nused_memory_vm_eval:{vm}\r\nused_memory_lua_human:{}\r\nused_memory_scripts_eval:{scripts}\r\nnumber_of_cached_scripts:{}\r\nnumber_of_functions:{}\r\nnumber_of_libraries:{}\r\nused_memory_vm_functions:0\r\nused_memory_vm_total:{vm}\r\nused_memory_vm_total_human:{}\r\nused_memory_functions:{funcs}\r\nused_memory_scripts:{}\r\nused_memory_scripts_human:{}\r\n",
        human(vm),
        STATS.cached_scripts.load(r),
        STATS.functions.load(r),
        STATS.libraries.load(r),
        human(vm),
        scripts + funcs,
        human(scripts + funcs),
    )
}

/// The VM, held, and every library's code: for a snapshot that must not miss a FUNCTION LOAD
/// racing with it (take this before the shard locks).
pub fn hold_library_codes() -> (impl Drop, Vec<Vec<u8>>) {
    let vm = lock_vm();
    let codes = vm.libs.libs.values().map(|l| l.code.to_vec()).collect();
    (vm, codes)
}
