//! Functions (Redis 7.0): the library registry, FUNCTION LOAD|DELETE|LIST|FLUSH|DUMP|RESTORE|
//! STATS|KILL|HELP, FCALL and FCALL_RO.
//!
//! A library is Lua code starting with `#!lua name=<lib>`; loading runs it once in an
//! environment that only offers `redis.register_function` (positional `(name, callback)` or
//! the table form with `function_name`, `callback`, `flags`, `description`), `redis.log` and
//! the version fields. The registered callbacks keep that environment, which switches to the
//! normal script globals once loading is over. FUNCTION DUMP writes every library's code as
//! RDB FUNCTION2 records followed by Redis's DUMP footer (RDB version, CRC-64), so payloads
//! travel between real Redis and shardis both ways; the RDB writer stores `library_codes()`
//! and the loader calls `load_library()` for each library it reads.

use super::eval::call_and_reply;
use super::vm::{sflag, Vm};
use super::RUN;
use crate::commands::{flag, parse, Cmd};
use crate::protocol::Out;
use crate::server::ConnCtx;
use bytes::Bytes;
use mlua::{Function, Lua, MultiValue, Table, Value};
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::sync::atomic::Ordering;

pub struct FuncInfo {
    pub name: String,
    pub desc: Option<Bytes>,
    pub flags: u32,
    pub func: Function,
}

pub struct Library {
    pub name: String,
    pub code: Bytes,
    pub functions: BTreeMap<String, FuncInfo>,
}

pub struct Libraries {
    pub libs: BTreeMap<String, Library>,
    /// function name → library name.
    pub index: BTreeMap<String, String>,
    lib_env: Function,
}

impl Libraries {
    pub fn new(_lua: &Lua, boot: &Table) -> mlua::Result<Libraries> {
        Ok(Libraries {
            libs: BTreeMap::new(),
            index: BTreeMap::new(),
            lib_env: boot.get("lib_env")?,
        })
    }

    /// Library and function names are case-insensitive, as Redis's dictionaries are: maps
    /// are keyed by the lower-case name, entries keep the name as given.
    fn remove(&mut self, name: &str) -> Option<Library> {
        let lib = self.libs.remove(&name.to_ascii_lowercase())?;
        for f in lib.functions.keys() {
            self.index.remove(f);
        }
        Some(lib)
    }

    fn insert(&mut self, lib: Library) {
        let key = lib.name.to_ascii_lowercase();
        for f in lib.functions.keys() {
            self.index.insert(f.clone(), key.clone());
        }
        self.libs.insert(key, lib);
    }

    fn contains(&self, name: &str) -> bool {
        self.libs.contains_key(&name.to_ascii_lowercase())
    }

    /// The function named `name` (any case).
    pub fn function(&self, name: &str) -> Option<&FuncInfo> {
        let key = name.to_ascii_lowercase();
        self.libs.get(self.index.get(&key)?)?.functions.get(&key)
    }

    pub fn function_count(&self) -> usize {
        self.index.len()
    }
}

thread_local! {
    /// The functions registered by the library being loaded on this thread.
    static LOADING: RefCell<Option<BTreeMap<String, FuncInfo>>> = const { RefCell::new(None) };
}

fn valid_name(n: &[u8]) -> bool {
    !n.is_empty() && n.iter().all(|&c| c.is_ascii_alphanumeric() || c == b'_')
}

/// How long a library's loading code may run (Redis's LOAD_TIMEOUT_MS).
const LOAD_TIMEOUT: std::time::Duration = std::time::Duration::from_millis(500);

const BAD_NAME: &str = "Library names can only contain letters, numbers, or underscores(_) and must be at least one character long";

/// `redis.register_function`: returns an error text or nothing.
pub fn register_prim(lua: &Lua) -> mlua::Result<Function> {
    lua.create_function(|_, args: MultiValue| Ok(register(args).err()))
}

fn lua_str(v: &Value) -> Option<Vec<u8>> {
    match v {
        Value::String(s) => Some(s.as_bytes().to_vec()),
        Value::Number(n) => Some(crate::protocol::write::fmt_g17(*n).into_bytes()),
        Value::Integer(n) => Some(n.to_string().into_bytes()),
        _ => None,
    }
}

fn register(args: MultiValue) -> Result<(), String> {
    if LOADING.with(|l| l.borrow().is_none()) {
        return Err("redis.register_function can only be called on FUNCTION LOAD command".into());
    }
    let args: Vec<Value> = args.into_iter().collect();
    if args.is_empty() || args.len() > 2 {
        return Err("wrong number of arguments to redis.register_function".into());
    }
    let (name, func, desc, flags) = if args.len() == 2 {
        let name = lua_str(&args[0])
            .ok_or("first argument to redis.register_function must be a string")?;
        let Value::Function(f) = &args[1] else {
            return Err("second argument to redis.register_function must be a function".into());
        };
        (name, f.clone(), None, 0)
    } else {
        named_args(&args[0])?
    };
    if !valid_name(&name) {
        return Err(BAD_NAME.into());
    }
    let name = String::from_utf8_lossy(&name).into_owned();
    LOADING.with(|l| {
        let mut l = l.borrow_mut();
        let map = l.get_or_insert_with(BTreeMap::new);
        let key = name.to_ascii_lowercase();
        if map.contains_key(&key) {
            return Err("Function already exists in the library".to_string());
        }
        map.insert(
            key,
            FuncInfo {
                name,
                desc,
                flags,
                func,
            },
        );
        Ok(())
    })
}

type Named = (Vec<u8>, Function, Option<Bytes>, u32);

fn named_args(v: &Value) -> Result<Named, String> {
    let Value::Table(t) = v else {
        return Err("calling redis.register_function with a single argument is only applicable to Lua table (representing named arguments).".into());
    };
    let (mut name, mut func, mut desc, mut flags) = (None, None, None, 0);
    for pair in t.pairs::<Value, Value>() {
        let (k, v) = pair.map_err(|e| e.to_string())?;
        let Some(key) = lua_str(&k) else {
            return Err(
                "named argument key given to redis.register_function is not a string".into(),
            );
        };
        let key = String::from_utf8_lossy(&key).to_ascii_lowercase();
        match key.as_str() {
            "function_name" => {
                name = Some(lua_str(&v).ok_or(
                    "function_name argument given to redis.register_function must be a string",
                )?)
            }
            "description" => {
                desc = Some(Bytes::from(lua_str(&v).ok_or(
                    "description argument given to redis.register_function must be a string",
                )?))
            }
            "callback" => match v {
                Value::Function(f) => func = Some(f),
                _ => {
                    return Err(
                        "callback argument given to redis.register_function must be a function"
                            .into(),
                    )
                }
            },
            "flags" => {
                let Value::Table(ft) = v else {
                    return Err("flags argument to redis.register_function must be a table representing function flags".into());
                };
                for fv in ft.sequence_values::<Value>() {
                    let fv = fv.map_err(|e| e.to_string())?;
                    let s = lua_str(&fv).ok_or("unknown flag given")?;
                    let s = String::from_utf8_lossy(&s).into_owned();
                    match sflag::NAMES.iter().find(|(_, n)| *n == s) {
                        Some((b, _)) => flags |= b,
                        None => return Err("unknown flag given".into()),
                    }
                }
            }
            _ => return Err("unknown argument given to redis.register_function".into()),
        }
    }
    let name = name.ok_or("redis.register_function must get a function name argument")?;
    let func = func.ok_or("redis.register_function must get a callback argument")?;
    Ok((name, func, desc, flags))
}

/// Parses `#!<engine> name=<lib>`: (engine, name, shebang length).
fn metadata(code: &[u8]) -> Result<(String, String, usize), String> {
    if !code.starts_with(b"#!") {
        return Err("Missing library metadata".into());
    }
    let end = memchr::memchr(b'\n', code).ok_or("Invalid library metadata")?;
    let line = String::from_utf8_lossy(&code[..end]).into_owned();
    let parts = super::split_args(&line).ok_or("Invalid library metadata")?;
    let first = parts.first().ok_or("Invalid library metadata")?;
    let engine = first[2..].to_string();
    let mut name = None;
    for p in &parts[1..] {
        if p.len() >= 5 && p[..5].eq_ignore_ascii_case("name=") {
            if name.is_some() {
                return Err(
                    "Invalid metadata value, name argument was given multiple times".into(),
                );
            }
            name = Some(p[5..].to_string());
            continue;
        }
        return Err(format!("Invalid metadata value given: {p}"));
    }
    let name = name.ok_or("Library name was not given")?;
    Ok((engine, name, end))
}

/// Compiles and runs a library's code, returning the library (not yet registered).
fn create_library(vm: &Vm, code: &Bytes) -> Result<Library, String> {
    let (engine, name, sb_len) = metadata(code)?;
    if !valid_name(name.as_bytes()) {
        return Err(BAD_NAME.into());
    }
    if !engine.eq_ignore_ascii_case("lua") {
        return Err(format!("Engine '{engine}' not found"));
    }
    let (env, done): (Table, Function) = vm
        .libs
        .lib_env
        .call(())
        .map_err(|e| format!("Error compiling function: {e}"))?;
    let chunk = vm
        .compile(&code[sb_len..], "@user_function", &env)
        .map_err(|e| format!("Error compiling function: {e}"))?;
    LOADING.with(|l| *l.borrow_mut() = Some(BTreeMap::new()));
    let start = std::time::Instant::now();
    vm.script_hook.set(false);
    vm.lua.set_hook(
        mlua::HookTriggers::new().every_nth_instruction(100_000),
        move |_, _| {
            if start.elapsed() > LOAD_TIMEOUT {
                return Err(mlua::Error::RuntimeError("FUNCTION LOAD timeout".into()));
            }
            Ok(mlua::VmState::Continue)
        },
    );
    let ran = vm.run.call::<(bool, Value)>(chunk);
    vm.lua.remove_hook();
    let _ = done.call::<()>(());
    let functions = LOADING.with(|l| l.borrow_mut().take()).unwrap_or_default();
    match ran {
        Ok((true, _)) => {}
        Ok((false, v)) => {
            let e = super::convert::err_info(&v);
            return Err(format!("Error registering functions: {}", e.msg));
        }
        Err(e) => return Err(format!("Error registering functions: {e}")),
    }
    if functions.is_empty() {
        return Err("No functions registered".into());
    }
    Ok(Library {
        name,
        code: code.clone(),
        functions,
    })
}

/// Loads a library into the registry (FUNCTION LOAD, RDB loading, RESTORE).
fn load_into(vm: &mut Vm, code: &Bytes, replace: bool) -> Result<String, String> {
    let (engine, name, _) = metadata(code)?;
    if !valid_name(name.as_bytes()) {
        return Err(BAD_NAME.into());
    }
    if !engine.eq_ignore_ascii_case("lua") {
        return Err(format!("Engine '{engine}' not found"));
    }
    if vm.libs.contains(&name) && !replace {
        return Err(format!("Library '{name}' already exists"));
    }
    let lib = create_library(vm, code)?;
    for (key, f) in &lib.functions {
        if let Some(owner) = vm.libs.index.get(key) {
            if *owner != lib.name.to_ascii_lowercase() {
                return Err(format!("Function {} already exists", f.name));
            }
        }
    }
    let replaced = vm.libs.remove(&lib.name).is_some();
    let name = lib.name.clone();
    vm.libs.insert(lib);
    if replaced {
        collect_dropped(vm);
    }
    Ok(name)
}

/// Loads one library's code (the RDB loader calls this for every FUNCTION2 record).
pub fn load_library(code: &[u8]) -> Result<String, String> {
    let mut vm = super::lock_vm();
    load_into(&mut vm, &Bytes::copy_from_slice(code), false)
}

/// Loads one library's code; `replace` lets it replace a library of the same name
/// (DEBUG RELOAD MERGE).
pub fn load_library_replace(code: &[u8], replace: bool) -> Result<String, String> {
    let mut vm = super::lock_vm();
    load_into(&mut vm, &Bytes::copy_from_slice(code), replace)
}

/// The code of every library, for the RDB writer.
pub fn library_codes() -> Vec<Bytes> {
    let vm = super::lock_vm();
    vm.libs.libs.values().map(|l| l.code.clone()).collect()
}

/// `library_codes` as plain vectors (the snapshot writer's form).
pub fn library_codes_vec() -> Vec<Vec<u8>> {
    library_codes().into_iter().map(|b| b.to_vec()).collect()
}

/// Replays a FUNCTION LOAD, DELETE, FLUSH or RESTORE read from the AOF (no client, nothing
/// propagated). Other subcommands change nothing and are ignored.
pub fn replay(args: &[Bytes]) -> Result<(), String> {
    let Some(sub) = args.get(1) else {
        return Ok(());
    };
    let last = args.last().cloned().unwrap_or_default();
    let mut vm = super::vm::vm().lock();
    if parse::eq(sub, "load") {
        let replace = args.len() > 3 && parse::eq(&args[2], "replace");
        load_into(&mut vm, &last, replace).map(|_| ())
    } else if parse::eq(sub, "delete") {
        vm.libs.remove(&String::from_utf8_lossy(&last));
        Ok(())
    } else if parse::eq(sub, "flush") {
        vm.libs.libs.clear();
        vm.libs.index.clear();
        Ok(())
    } else if parse::eq(sub, "restore") && args.len() >= 3 {
        let codes = crate::persistence::rdb::functions_restore_payload(&args[2])?;
        let policy = args.get(3);
        if policy.is_some_and(|p| parse::eq(p, "flush")) {
            vm.libs.libs.clear();
            vm.libs.index.clear();
        }
        let replace = policy.is_some_and(|p| parse::eq(p, "replace"));
        for c in codes {
            load_into(&mut vm, &Bytes::from(c), replace)?;
        }
        Ok(())
    } else {
        Ok(())
    }
}

/// Removes every library (FLUSHALL does not; FUNCTION FLUSH and RDB loading do).
pub fn flush_libraries() {
    let mut vm = super::lock_vm();
    vm.libs.libs.clear();
    vm.libs.index.clear();
    collect_dropped(&vm);
}

/// A full collection right after libraries were dropped (FUNCTION LOAD REPLACE, DELETE,
/// FLUSH). A library is a whole environment of closures, tables and compiled code; left to
/// the incremental collector, whose next cycle starts only when the heap has doubled since
/// the last one, a loop of replaces keeps several dead libraries in the interpreter (scripts
/// and functions share it, so `used_memory_lua` grows with them). These commands are rare
/// and already compile code, so a full cycle there costs little.
fn collect_dropped(vm: &Vm) {
    let _ = vm.lua.gc_collect();
}

pub static FUNCTION_SUBS: [Cmd; 9] = [
    Cmd::conn("delete", 3, flag::NOSCRIPT | flag::WRITE, function_delete).with_acl(&[
        "write",
        "slow",
        "scripting",
    ]),
    Cmd::conn("dump", 2, flag::NOSCRIPT, function_dump).with_acl(&["slow", "scripting"]),
    Cmd::conn("flush", -2, flag::NOSCRIPT | flag::WRITE, function_flush).with_acl(&[
        "write",
        "slow",
        "scripting",
    ]),
    Cmd::conn("help", 2, flag::LOADING | flag::STALE, function_help)
        .with_acl(&["slow", "scripting"]),
    Cmd::conn("kill", 2, flag::NOSCRIPT | flag::ALLOW_BUSY, function_kill)
        .with_acl(&["slow", "scripting"]),
    Cmd::conn("list", -2, flag::NOSCRIPT, function_list).with_acl(&["slow", "scripting"]),
    Cmd::conn(
        "load",
        -3,
        flag::NOSCRIPT | flag::WRITE | flag::DENYOOM,
        function_load,
    )
    .with_acl(&["write", "slow", "scripting"]),
    Cmd::conn(
        "restore",
        -3,
        flag::NOSCRIPT | flag::WRITE | flag::DENYOOM,
        function_restore,
    )
    .with_acl(&["write", "slow", "scripting"]),
    Cmd::conn(
        "stats",
        2,
        flag::NOSCRIPT | flag::ALLOW_BUSY,
        function_stats,
    )
    .with_acl(&["slow", "scripting"]),
];

/// A successful FUNCTION write: counts a change and propagates the command itself.
fn dirty(ctx: &mut ConnCtx, args: &[Bytes]) {
    if let Some(h) = ctx.server.shards.get(ctx.shard) {
        h.lock_data().stats.dirty += 1;
    }
    ctx.propagate
        .push(crate::replication::Op::new(ctx.client.db, args.to_vec()));
}

/// FUNCTION LOAD and RESTORE are deny-oom commands: past `maxmemory`, after what eviction
/// can free, they get Redis's OOM error. Writes it and returns false then.
fn admit_denyoom(ctx: &ConnCtx, out: &mut Out) -> bool {
    if !crate::storage::evict::over_budget() {
        return true;
    }
    let db = ctx.client.db;
    ctx.server.with_all(db, |ks| {
        crate::storage::evict::admit(ks, flag::DENYOOM, out)
    })
}

fn function_load(ctx: &mut ConnCtx, args: &[Bytes], out: &mut Out) {
    if !admit_denyoom(ctx, out) {
        return;
    }
    let mut replace = false;
    let mut i = 2;
    while i < args.len() - 1 {
        if parse::eq(&args[i], "replace") {
            replace = true;
            i += 1;
            continue;
        }
        return out.error(&format!(
            "ERR Unknown option given: {}",
            String::from_utf8_lossy(&args[i])
        ));
    }
    let mut vm = match super::vm_only() {
        Ok(v) => v,
        Err(e) => return out.error(e),
    };
    match load_into(&mut vm, &args[args.len() - 1], replace) {
        Ok(name) => {
            drop(vm);
            dirty(ctx, args);
            out.bulk(name.as_bytes())
        }
        Err(e) => out.error(&format!("ERR {e}")),
    }
}

fn function_delete(ctx: &mut ConnCtx, args: &[Bytes], out: &mut Out) {
    let mut vm = match super::vm_only() {
        Ok(v) => v,
        Err(e) => return out.error(e),
    };
    let name = String::from_utf8_lossy(&args[2]).into_owned();
    if vm.libs.remove(&name).is_none() {
        return out.error("ERR Library not found");
    }
    collect_dropped(&vm);
    drop(vm);
    dirty(ctx, args);
    out.ok();
}

fn function_flush(ctx: &mut ConnCtx, args: &[Bytes], out: &mut Out) {
    match args.len() {
        2 => {}
        3 if parse::eq(&args[2], "async") || parse::eq(&args[2], "sync") => {}
        3 => return out.error("ERR FUNCTION FLUSH only supports SYNC|ASYNC option"),
        _ => return out.error(
            "ERR unknown subcommand or wrong number of arguments for 'flush'. Try FUNCTION HELP.",
        ),
    }
    let mut vm = match super::vm_only() {
        Ok(v) => v,
        Err(e) => return out.error(e),
    };
    vm.libs.libs.clear();
    vm.libs.index.clear();
    vm.collect_fully();
    drop(vm);
    dirty(ctx, args);
    out.ok();
}

fn function_list(_ctx: &mut ConnCtx, args: &[Bytes], out: &mut Out) {
    let mut with_code = false;
    let mut pattern: Option<&[u8]> = None;
    let mut i = 2;
    while i < args.len() {
        if !with_code && parse::eq(&args[i], "withcode") {
            with_code = true;
        } else if pattern.is_none() && parse::eq(&args[i], "libraryname") {
            if i >= args.len() - 1 {
                return out.error("ERR library name argument was not given");
            }
            i += 1;
            pattern = Some(&args[i]);
        } else {
            return out.error(&format!(
                "ERR Unknown argument {}",
                String::from_utf8_lossy(&args[i])
            ));
        }
        i += 1;
    }
    let vm = match super::vm_only() {
        Ok(v) => v,
        Err(e) => return out.error(e),
    };
    let libs: Vec<&Library> = vm
        .libs
        .libs
        .values()
        .filter(|l| pattern.is_none_or(|p| crate::util::glob_match(p, l.name.as_bytes(), true)))
        .collect();
    out.array(libs.len());
    for l in libs {
        out.map(if with_code { 4 } else { 3 });
        out.bulk(b"library_name");
        out.bulk(l.name.as_bytes());
        out.bulk(b"engine");
        out.bulk(b"LUA");
        out.bulk(b"functions");
        out.array(l.functions.len());
        for f in l.functions.values() {
            out.map(3);
            out.bulk(b"name");
            out.bulk(f.name.as_bytes());
            out.bulk(b"description");
            match &f.desc {
                Some(d) => out.bulk(d),
                None => out.null(),
            }
            out.bulk(b"flags");
            let names: Vec<&str> = sflag::NAMES
                .iter()
                .filter(|(b, _)| f.flags & b != 0)
                .map(|(_, n)| *n)
                .collect();
            out.set(names.len());
            for n in names {
                out.simple(n);
            }
        }
        if with_code {
            out.bulk(b"library_code");
            out.bulk(&l.code);
        }
    }
}

fn function_dump(_ctx: &mut ConnCtx, _args: &[Bytes], out: &mut Out) {
    let codes: Vec<Bytes> = match super::vm_only() {
        Ok(vm) => vm.libs.libs.values().map(|l| l.code.clone()).collect(),
        Err(e) => return out.error(e),
    };
    let refs: Vec<&[u8]> = codes.iter().map(|c| &c[..]).collect();
    out.bulk(&crate::persistence::rdb::functions_dump_payload(&refs));
}

fn function_restore(ctx: &mut ConnCtx, args: &[Bytes], out: &mut Out) {
    if !admit_denyoom(ctx, out) {
        return;
    }
    #[derive(PartialEq)]
    enum Policy {
        Append,
        Replace,
        Flush,
    }
    let policy = match args.get(3) {
        None => Policy::Append,
        Some(p) if args.len() == 4 && parse::eq(p, "append") => Policy::Append,
        Some(p) if args.len() == 4 && parse::eq(p, "replace") => Policy::Replace,
        Some(p) if args.len() == 4 && parse::eq(p, "flush") => Policy::Flush,
        Some(_) if args.len() > 4 => return out.error(
            "ERR unknown subcommand or wrong number of arguments for 'restore'. Try FUNCTION HELP.",
        ),
        Some(_) => {
            return out.error(
                "ERR Wrong restore policy given, value should be either FLUSH, APPEND or REPLACE.",
            )
        }
    };
    let codes = match crate::persistence::rdb::functions_restore_payload(&args[2]) {
        Ok(c) => c,
        Err(e) => return out.error(&format!("ERR {e}")),
    };
    let mut vm = match super::vm_only() {
        Ok(v) => v,
        Err(e) => return out.error(e),
    };
    // Build the new libraries first; nothing changes unless all of them load.
    let mut new_libs = Vec::new();
    for c in codes {
        match create_library(&vm, &Bytes::from(c)) {
            Ok(l) => new_libs.push(l),
            Err(e) => return out.error(&format!("ERR {e}")),
        }
    }
    if policy == Policy::Flush {
        vm.libs.libs.clear();
        vm.libs.index.clear();
    }
    if policy == Policy::Append {
        for l in &new_libs {
            if vm.libs.libs.contains_key(&l.name) {
                return out.error(&format!("ERR Library {} already exists", l.name));
            }
        }
    }
    for l in &new_libs {
        for f in l.functions.keys() {
            if let Some(owner) = vm.libs.index.get(f) {
                let replaced =
                    policy == Policy::Replace && new_libs.iter().any(|n| n.name == *owner);
                if !replaced {
                    return out.error(&format!("ERR Function {f} already exists"));
                }
            }
        }
    }
    for l in new_libs {
        vm.libs.remove(&l.name);
        vm.libs.insert(l);
    }
    drop(vm);
    dirty(ctx, args);
    out.ok();
}

fn function_kill(_ctx: &mut ConnCtx, _args: &[Bytes], out: &mut Out) {
    super::eval::kill(out, false)
}

fn function_stats(_ctx: &mut ConnCtx, _args: &[Bytes], out: &mut Out) {
    let since = RUN.since_ms.load(Ordering::Acquire);
    if since != 0 && RUN.is_eval.load(Ordering::Relaxed) {
        return out.error(super::busy_error());
    }
    out.map(2);
    out.bulk(b"running_script");
    if since == 0 {
        out.null();
    } else {
        let (name, cmd) = RUN.name.lock().clone();
        out.map(3);
        out.bulk(b"name");
        out.bulk(name.as_bytes());
        out.bulk(b"command");
        out.array(cmd.len());
        for a in &cmd {
            out.bulk(a);
        }
        out.bulk(b"duration_ms");
        out.int(crate::util::now_ms().saturating_sub(since) as i64);
    }
    out.bulk(b"engines");
    out.map(1);
    out.bulk(b"LUA");
    out.map(2);
    // The counts are read without the VM lock when a function runs (it holds the VM).
    let (libs, funcs) = match super::vm::vm().try_lock() {
        Some(vm) => (vm.libs.libs.len(), vm.libs.function_count()),
        None => {
            let c = COUNTS.lock();
            (c.0, c.1)
        }
    };
    out.bulk(b"libraries_count");
    out.int(libs as i64);
    out.bulk(b"functions_count");
    out.int(funcs as i64);
}

/// Library and function counts as of the last FCALL start (FUNCTION STATS while one runs).
static COUNTS: parking_lot::Mutex<(usize, usize)> = parking_lot::Mutex::new((0, 0));

fn function_help(_ctx: &mut ConnCtx, _args: &[Bytes], out: &mut Out) {
    let lines = [
        "FUNCTION <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
        "LOAD [REPLACE] <FUNCTION CODE>",
        "    Create a new library with the given library name and code.",
        "DELETE <LIBRARY NAME>",
        "    Delete the given library.",
        "LIST [LIBRARYNAME PATTERN] [WITHCODE]",
        "    Return general information on all the libraries:",
        "    * Library name",
        "    * The engine used to run the Library",
        "    * Library description",
        "    * Functions list",
        "    * Library code (if WITHCODE is given)",
        "    It also possible to get only function that matches a pattern using LIBRARYNAME argument.",
        "STATS",
        "    Return information about the current function running:",
        "    * Function name",
        "    * Command used to run the function",
        "    * Duration in MS that the function is running",
        "    If no function is running, return nil",
        "    In addition, returns a list of available engines.",
        "KILL",
        "    Kill the current running function.",
        "FLUSH [ASYNC|SYNC]",
        "    Delete all the libraries.",
        "    When called without the optional mode argument, the behavior is determined by the",
        "    lazyfree-lazy-user-flush configuration directive. Valid modes are:",
        "    * ASYNC: Asynchronously flush the libraries.",
        "    * SYNC: Synchronously flush the libraries.",
        "DUMP",
        "    Return a serialized payload representing the current libraries, can be restored using FUNCTION RESTORE command",
        "RESTORE <PAYLOAD> [FLUSH|APPEND|REPLACE]",
        "    Restore the libraries represented by the given payload, it is possible to give a restore policy to",
        "    control how to handle existing libraries (default APPEND):",
        "    * FLUSH: delete all existing libraries.",
        "    * APPEND: appends the restored libraries to the existing libraries. On collision, abort.",
        "    * REPLACE: appends the restored libraries to the existing libraries, On collision, replace the old",
        "      libraries with the new libraries (notice that even on this option there is a chance of failure",
        "      in case of functions name collision with another library).",
        "HELP",
        "    Prints this help.",
    ];
    out.array(lines.len());
    for l in lines {
        out.simple(l);
    }
}

pub fn fcall(ctx: &mut ConnCtx, args: &[Bytes], out: &mut Out) {
    fcall_generic(ctx, args, out, false)
}

pub fn fcall_ro(ctx: &mut ConnCtx, args: &[Bytes], out: &mut Out) {
    fcall_generic(ctx, args, out, true)
}

fn fcall_generic(ctx: &mut ConnCtx, args: &[Bytes], out: &mut Out, ro: bool) {
    let mut session = match super::acquire(ctx.server, ctx.shard, false) {
        Ok(s) => s,
        Err(e) => return out.error(e),
    };
    let vm = &mut *session.vm;
    let fname = String::from_utf8_lossy(&args[1]).into_owned();
    let Some(f) = vm.libs.function(&fname) else {
        return out.error("ERR Function not found");
    };
    let (func, flags, fname) = (f.func.clone(), f.flags, f.name.clone());
    let nkeys = match std::str::from_utf8(&args[2])
        .ok()
        .and_then(|s| s.parse::<i64>().ok())
    {
        Some(n) if n > (args.len() - 3) as i64 => {
            return out.error("ERR Number of keys can't be greater than number of args")
        }
        Some(n) if n < 0 => return out.error("ERR Number of keys can't be negative"),
        Some(n) => n as usize,
        None => return out.error("ERR Bad number of keys provided"),
    };
    if !super::eval::prepare_run(ctx, flags, ro, out) {
        return;
    }
    *COUNTS.lock() = (vm.libs.libs.len(), vm.libs.function_count());
    *RUN.name.lock() = (fname.clone(), args.to_vec());
    let read_only = ro || flags & sflag::NO_WRITES != 0;
    let run = super::eval::Invocation::Function {
        keys: &args[3..3 + nkeys],
        args: &args[3 + nkeys..],
    };
    call_and_reply(vm, ctx, out, &func, run, read_only, flags, &fname);
    super::feed_effects(ctx);
}
