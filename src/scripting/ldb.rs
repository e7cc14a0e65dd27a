//! LDB, the Lua debugger (`SCRIPT DEBUG YES|SYNC|NO`, `redis-cli --ldb`), as Redis 7.0 has it.
//!
//! ## The session
//! A client that ran `SCRIPT DEBUG SYNC` (or `YES`) has its next EVAL run under the debugger:
//! the script's source is split into lines, a line hook (plus a count hook every 100,000
//! instructions, to stop runaway loops once the busy threshold passed) is installed on the
//! interpreter, and every time the script is about to run a line where it must stop (a step,
//! a breakpoint, `redis.breakpoint()`), the hook sends the accumulated log lines to the
//! client and reads debugger commands from it until one resumes the script (`step`, `next`,
//! `continue`) or ends it (`abort`). Log lines go out as Redis does: one array of status
//! replies per batch (`<debugger>`, `<reply>`, `<error>`, `<value>`... are just prefixes of
//! the text). When the script returns, `<endsession>` is sent, then the EVAL's own reply,
//! and the connection is closed.
//!
//! ## Where the I/O goes (sync mode)
//! The script runs on its connection's home shard thread with every shard locked (see the
//! module essay of `scripting`); its connection is out of the shard's table meanwhile. The
//! connection's socket belongs to the shard's ring (multishot recv into provided buffers),
//! so the debugger never reads the fd itself: a blocking `read` would race the ring's recv,
//! which may already hold the bytes in a completion. Instead the engine installs a
//! `ScriptHost` around the run, and the debugger's reads and writes go through it: a read
//! polls the ring (at most `READ_POLL`), keeping the script connection's bytes for the
//! debugger and queuing everything else for later turns (other connections of the shard are
//! answered `-BUSY` once the script passed the busy threshold, as for any busy script; other
//! shards do the same on their own); a write is an ordinary backend send, one in flight at
//! a time. A client that disconnects ends the stepping: the script runs to its end without
//! stopping (Redis does the same), and a session waiting on a client that never answers can
//! still be ended by SCRIPT KILL (before the script wrote), SHUTDOWN NOSAVE or a signal.
//!
//! ## Forked mode (`SCRIPT DEBUG YES`)
//! Redis forks a child that runs the session on a copy of the dataset (so every change is
//! rolled back) while the parent drops the client. We fork the same way, from the thread that
//! holds every shard's lock: the child is a copy in which only that thread lives, so the
//! dataset is consistent and held. The child talks to the client over the inherited socket
//! with plain blocking `read`/`write` (the parent's ring is not the child's), takes no lock
//! another thread could have held at the fork (it never propagates, and it logs with
//! `write(2)`), and leaves with `_exit`. The parent forgets the client at once (its recv is
//! cancelled and its fd closed; the child's copy keeps the socket open) and reaps the child
//! from a small thread of its own; SHUTDOWN kills the children still debugging.
//!
//! The debugger state is per thread (`LDB`), since only the thread running the script uses it.

use super::vm::Vm;
use super::{DebugRead, RUN};
use crate::protocol::Out;
use crate::server::ConnCtx;
use bytes::Bytes;
use mlua::{DebugEvent, HookTriggers, Lua, Value, VmState};
use std::cell::RefCell;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// `Client::script_debug` values.
pub const MODE_OFF: u8 = 0;
pub const MODE_FORKED: u8 = 1;
pub const MODE_SYNC: u8 = 2;

const BREAKPOINTS_MAX: usize = 64;
const MAXLEN_DEFAULT: usize = 256;
/// Pending debugger input beyond this aborts the script ("max client buffer reached").
const CBUF_BYTES_MAX: usize = 1 << 20;
/// Longest wait of one read before the debugger checks for kill and shutdown requests.
const READ_POLL: Duration = Duration::from_millis(100);
/// Tables nested deeper than this print a marker (Redis: LUA_MINSTACK / 2).
const VALUES_DEPTH_MAX: usize = 10;
/// The line hook's instruction count, for runaway loops between stops.
const COUNT_HOOK_INSTRUCTIONS: u32 = 100_000;
/// Marks errors the debugger raises, which reach the client as `ERR <text>` without a
/// `user_script:N:` position (the error handler strips it).
const LDB_ERROR_MARK: char = '\u{1}';

/// Set while the server shuts down: a session stops waiting for its client.
static SHUTDOWN: AtomicBool = AtomicBool::new(false);

struct Ldb {
    step: bool,
    luabp: bool,
    bp: Vec<i32>,
    src: Vec<Vec<u8>>,
    currentline: i32,
    logs: Vec<Vec<u8>>,
    maxlen: usize,
    maxlen_hint_sent: bool,
    cbuf: Vec<u8>,
    /// When the script last resumed (the runaway-loop check counts from there).
    resumed: Instant,
    threshold_ms: u64,
    /// The client is gone: no more output, no more stops.
    gone: bool,
    /// Forked session: blocking I/O on this fd instead of the engine's host.
    fd: Option<i32>,
}

thread_local! {
    static LDB: RefCell<Option<Ldb>> = const { RefCell::new(None) };
}

fn with<R>(f: impl FnOnce(&mut Ldb) -> R) -> Option<R> {
    LDB.with(|l| l.borrow_mut().as_mut().map(f))
}

/// Whether a debugging session runs on this thread.
pub fn active() -> bool {
    LDB.with(|l| l.borrow().is_some())
}

/// Redis's `ldbIsEnabled`: a session runs and is stepping (redis.call logs its commands).
pub fn logging() -> bool {
    with(|l| l.step).unwrap_or(false)
}

/// A shutdown begins (`true`; sessions stop waiting for their clients and forked ones are
/// killed, as Redis's `prepareForShutdown` does) or was given up (`false`).
pub fn on_shutdown(starting: bool) {
    SHUTDOWN.store(starting, Ordering::Relaxed);
    if starting {
        kill_forked_sessions();
    }
}

fn log(line: impl Into<Vec<u8>>) {
    let line = line.into();
    with(|l| l.logs.push(line));
}

/// Logs `line`, trimmed to `maxlen` bytes (with a hint the first time).
fn log_maxlen(mut line: Vec<u8>) {
    with(|l| {
        let mut trimmed = false;
        if l.maxlen > 0 && line.len() > l.maxlen {
            line.truncate(l.maxlen);
            line.extend_from_slice(b" ...");
            trimmed = true;
        }
        l.logs.push(line);
        if trimmed && !l.maxlen_hint_sent {
            l.maxlen_hint_sent = true;
            l.logs.push(
                b"<hint> The above reply was trimmed. Use 'maxlen 0' to disable trimming.".to_vec(),
            );
        }
    });
}

/// Sends the pending log lines as one array of status replies (CR and LF become spaces).
fn send_logs() {
    let Some((logs, gone, fd)) = with(|l| (std::mem::take(&mut l.logs), l.gone, l.fd)) else {
        return;
    };
    if gone {
        return;
    }
    let mut proto = format!("*{}\r\n", logs.len()).into_bytes();
    for mut line in logs {
        for b in line.iter_mut() {
            if *b == b'\r' || *b == b'\n' {
                *b = b' ';
            }
        }
        proto.push(b'+');
        proto.extend_from_slice(&line);
        proto.extend_from_slice(b"\r\n");
    }
    let ok = match fd {
        Some(fd) => fd_write_all(fd, &proto),
        None => super::with_installed_host(|h| h.debug_write(proto)).unwrap_or(false),
    };
    if !ok {
        with(|l| l.gone = true);
    }
}

/// Redis's `sdscatrepr`: a quoted, escaped rendering of bytes.
fn repr(out: &mut Vec<u8>, s: &[u8]) {
    out.extend_from_slice(crate::util::repr(s).as_bytes());
}

/// C's `%g` of a double, as Redis prints Lua numbers.
fn fmt_g(n: f64) -> String {
    let mut buf = [0u8; 64];
    // SAFETY: snprintf writes at most buf.len() bytes including the terminator, and "%g"
    // takes exactly one double.
    let len = unsafe {
        libc::snprintf(
            buf.as_mut_ptr().cast(),
            buf.len(),
            c"%g".as_ptr(),
            n as libc::c_double,
        )
    };
    let len = (len.max(0) as usize).min(buf.len() - 1);
    String::from_utf8_lossy(&buf[..len]).into_owned()
}

/// Redis's `ldbCatStackValue`: a human rendering of a Lua value.
fn cat_value(out: &mut Vec<u8>, v: &Value, level: usize) {
    if level == VALUES_DEPTH_MAX {
        out.extend_from_slice(b"<max recursion level reached! Nested table?>");
        return;
    }
    match v {
        Value::String(s) => repr(out, &s.as_bytes()),
        Value::Boolean(b) => out.extend_from_slice(if *b { b"true" } else { b"false" }),
        Value::Number(n) => out.extend_from_slice(fmt_g(*n).as_bytes()),
        Value::Integer(n) => out.extend_from_slice(fmt_g(*n as f64).as_bytes()),
        Value::Nil => out.extend_from_slice(b"nil"),
        Value::Table(t) => {
            let mut expected = 1.0;
            let mut is_array = true;
            let (mut arr, mut full) = (Vec::new(), Vec::new());
            for (k, val) in t.clone().pairs::<Value, Value>().flatten() {
                let idx = match &k {
                    Value::Number(n) => Some(*n),
                    Value::Integer(n) => Some(*n as f64),
                    _ => None,
                };
                if is_array && idx != Some(expected) {
                    is_array = false;
                }
                cat_value(&mut arr, &val, level + 1);
                arr.extend_from_slice(b"; ");
                full.push(b'[');
                cat_value(&mut full, &k, level + 1);
                full.extend_from_slice(b"]=");
                cat_value(&mut full, &val, level + 1);
                full.extend_from_slice(b"; ");
                expected += 1.0;
            }
            let mut chosen = if is_array { arr } else { full };
            chosen.truncate(chosen.len().saturating_sub(2));
            out.push(b'{');
            out.extend_from_slice(&chosen);
            out.push(b'}');
        }
        other => {
            let name = match other {
                Value::Function(_) => "function",
                Value::Thread(_) => "thread",
                Value::LightUserData(_) => "light-userdata",
                _ => "userdata",
            };
            out.extend_from_slice(format!("\"{name}@{:p}\"", other.to_pointer()).as_bytes());
        }
    }
}

fn log_value(prefix: &str, v: &Value) {
    let mut line = prefix.as_bytes().to_vec();
    cat_value(&mut line, v, 0);
    log_maxlen(line);
}

/// Redis's `ldbRedisProtocolToHuman`: a RESP reply as one readable line. Returns the rest.
fn resp_to_human<'a>(out: &mut Vec<u8>, reply: &'a [u8]) -> &'a [u8] {
    let Some(&kind) = reply.first() else {
        return reply;
    };
    let eol = memchr::memmem::find(reply, b"\r\n").unwrap_or(reply.len());
    let head = &reply[1..eol];
    let rest = reply.get(eol + 2..).unwrap_or(&[]);
    let num = || {
        std::str::from_utf8(head)
            .ok()
            .and_then(|s| s.parse::<i64>().ok())
            .unwrap_or(0)
    };
    match kind {
        b':' => {
            out.extend_from_slice(head);
            rest
        }
        b'$' => {
            let n = num();
            if n < 0 {
                out.extend_from_slice(b"NULL");
                return rest;
            }
            let n = (n as usize).min(rest.len());
            repr(out, &rest[..n]);
            rest.get(n + 2..).unwrap_or(&[])
        }
        b'+' | b'-' => {
            repr(out, &reply[..eol]);
            rest
        }
        b'*' | b'~' | b'%' => {
            let n = num();
            if kind == b'*' && n < 0 {
                out.extend_from_slice(b"NULL");
                return rest;
            }
            let (open, close) = match kind {
                b'*' => (&b"["[..], b"]"),
                b'~' => (&b"~("[..], b")"),
                _ => (&b"{"[..], b"}"),
            };
            out.extend_from_slice(open);
            let mut p = rest;
            for j in 0..n.max(0) {
                p = resp_to_human(out, p);
                if kind == b'%' {
                    out.extend_from_slice(b" => ");
                    p = resp_to_human(out, p);
                }
                if j != n - 1 {
                    out.push(b',');
                }
            }
            out.extend_from_slice(close);
            p
        }
        b'_' => {
            out.extend_from_slice(b"(null)");
            rest
        }
        b'#' => {
            out.extend_from_slice(if head.first() == Some(&b't') {
                b"#true"
            } else {
                b"#false"
            });
            rest
        }
        b',' => {
            out.extend_from_slice(b"(double) ");
            out.extend_from_slice(head);
            rest
        }
        _ => rest,
    }
}

/// `redis.call` logs the command it runs while the debugger steps.
pub fn log_command(argv: &[Bytes]) {
    if !logging() {
        return;
    }
    let mut line = b"<redis>".to_vec();
    for (j, a) in argv.iter().enumerate() {
        if j == 10 {
            line.extend_from_slice(format!(" ... ({} more)", argv.len() - j - 1).as_bytes());
            break;
        }
        line.push(b' ');
        line.extend_from_slice(a);
    }
    log(line);
}

/// `redis.call` logs a command's reply (and an error's text) while the debugger steps.
pub fn log_reply(reply: &[u8]) {
    if !logging() {
        return;
    }
    if reply.first() == Some(&b'-') {
        let eol = memchr::memmem::find(reply, b"\r\n").unwrap_or(reply.len());
        let mut line = b"<error> ".to_vec();
        line.extend_from_slice(&reply[..eol]);
        log(line);
    }
    let mut line = b"<reply> ".to_vec();
    resp_to_human(&mut line, reply);
    log_maxlen(line);
}

/// `redis.call` logs an error it raises itself (unknown command, wrong arity...).
pub fn log_error(text: &str) {
    if logging() {
        log(format!("<error> {text}"));
    }
}

/// `redis.debug(...)`: a `<debug>` line with the values, when a session runs.
pub fn debug_values(values: &[Value]) {
    if !active() {
        return;
    }
    let line_no = with(|l| l.currentline).unwrap_or(0);
    let mut line = format!("<debug> line {line_no}: ").into_bytes();
    for (i, v) in values.iter().enumerate() {
        cat_value(&mut line, v, 0);
        if i + 1 != values.len() {
            line.extend_from_slice(b", ");
        }
    }
    log(line);
}

/// `redis.breakpoint()`: stop at the next line; true when a session runs.
pub fn breakpoint() -> bool {
    with(|l| l.luabp = true).is_some()
}

fn source_line(l: &Ldb, line: i32) -> Vec<u8> {
    let text = usize::try_from(line - 1)
        .ok()
        .and_then(|i| l.src.get(i))
        .map(|s| s.as_slice())
        .unwrap_or(b"<out of range source code line>");
    let bp = l.bp.contains(&line);
    let prefix = match (l.currentline == line, bp) {
        (true, true) => "->#",
        (true, false) => "-> ",
        (false, true) => "  #",
        (false, false) => "   ",
    };
    let mut out = format!("{prefix}{line:<3} ").into_bytes();
    out.extend_from_slice(text);
    out
}

fn log_source_line(line: i32) {
    with(|l| {
        let s = source_line(l, line);
        l.logs.push(s);
    });
}

fn list(around: i32, context: i32) {
    with(|l| {
        for j in 1..=l.src.len() as i32 {
            if around != 0 && (around - j).abs() > context {
                continue;
            }
            let s = source_line(l, j);
            l.logs.push(s);
        }
    });
}

/// C's `atoi`: leading blanks, an optional sign, digits; 0 when none.
fn atoi(s: &[u8]) -> i64 {
    let s = std::str::from_utf8(s).unwrap_or("").trim_start();
    let (neg, digits) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    let mut n: i64 = 0;
    for c in digits.bytes().take_while(|c| c.is_ascii_digit()) {
        n = n.saturating_mul(10).saturating_add((c - b'0') as i64);
    }
    if neg {
        -n
    } else {
        n
    }
}

enum Parsed {
    Command(Vec<Vec<u8>>),
    More,
    ProtocolError,
}

/// Redis's forgiving parser of one multi-bulk command at the start of the debugger's buffer.
fn parse_command(buf: &[u8]) -> Parsed {
    if buf.is_empty() {
        return Parsed::More;
    }
    let Some(star) = memchr::memchr(b'*', buf) else {
        return Parsed::ProtocolError;
    };
    let Some(eol) = memchr::memmem::find(&buf[star..], b"\r\n").map(|e| e + star) else {
        return Parsed::More;
    };
    let argc = atoi(&buf[star + 1..eol]);
    if argc <= 0 || argc > 1024 {
        return Parsed::ProtocolError;
    }
    let mut p = eol + 2;
    let mut argv = Vec::with_capacity(argc as usize);
    while (argv.len() as i64) < argc {
        let Some(&c) = buf.get(p) else {
            return Parsed::More;
        };
        if c != b'$' {
            return Parsed::ProtocolError;
        }
        let Some(eol) = memchr::memmem::find(&buf[p..], b"\r\n").map(|e| e + p) else {
            return Parsed::More;
        };
        let len = atoi(&buf[p + 1..eol]);
        if len <= 0 || len > 1024 {
            return Parsed::ProtocolError;
        }
        let start = eol + 2;
        let end = start + len as usize;
        if end + 2 > buf.len() {
            return Parsed::More;
        }
        argv.push(buf[start..end].to_vec());
        if &buf[end..end + 2] != b"\r\n" {
            return Parsed::ProtocolError;
        }
        p = end + 2;
    }
    Parsed::Command(argv)
}

fn ldb_error(text: &str) -> mlua::Error {
    mlua::Error::RuntimeError(format!("{LDB_ERROR_MARK}{text}"))
}

/// Reads more debugger input. False when the client is gone (or the server shuts down).
fn read_more() -> mlua::Result<bool> {
    let fd = with(|l| l.fd).flatten();
    loop {
        if RUN.kill.load(Ordering::Relaxed) {
            return Err(mlua::Error::RuntimeError(
                "Script killed by user with SCRIPT KILL...".into(),
            ));
        }
        if SHUTDOWN.load(Ordering::Relaxed) {
            return Ok(false);
        }
        let got = match fd {
            Some(fd) => fd_read(fd),
            None => {
                super::with_installed_host(|h| h.debug_read(READ_POLL)).unwrap_or(DebugRead::Gone)
            }
        };
        match got {
            DebugRead::Data(bytes) => {
                let over = with(|l| {
                    l.cbuf.extend_from_slice(&bytes);
                    if l.cbuf.len() > CBUF_BYTES_MAX {
                        l.cbuf.clear();
                        true
                    } else {
                        false
                    }
                })
                .unwrap_or(false);
                if over {
                    return Err(ldb_error("max client buffer reached"));
                }
                return Ok(true);
            }
            DebugRead::Idle => continue,
            DebugRead::Gone => return Ok(false),
        }
    }
}

/// What the debugger prompt decided.
enum Resume {
    Continue,
    /// The client is gone: run to the end without stopping.
    Gone,
}

/// Redis's `ldbRepl`: runs debugger commands until one resumes the script.
fn repl(lua: &Lua) -> mlua::Result<Resume> {
    loop {
        let parsed = with(|l| parse_command(&l.cbuf)).unwrap_or(Parsed::More);
        let argv = match parsed {
            Parsed::Command(argv) => argv,
            Parsed::ProtocolError => return Err(ldb_error("protocol error")),
            Parsed::More => {
                if !read_more()? {
                    with(|l| {
                        l.step = false;
                        l.bp.clear();
                        l.gone = true;
                    });
                    return Ok(Resume::Gone);
                }
                continue;
            }
        };
        with(|l| l.cbuf.clear());
        let name = String::from_utf8_lossy(&argv[0]).to_ascii_lowercase();
        match name.as_str() {
            "h" | "help" => help(),
            "s" | "step" | "n" | "next" => {
                with(|l| l.step = true);
                return Ok(Resume::Continue);
            }
            "c" | "continue" => return Ok(Resume::Continue),
            "t" | "trace" => trace(lua),
            "m" | "maxlen" => maxlen(&argv),
            "b" | "break" => breakpoints(&argv),
            "e" | "eval" => eval(lua, &argv),
            "a" | "abort" => return Err(ldb_error("script aborted for user request")),
            "r" | "redis" if argv.len() > 1 => redis(lua, &argv),
            "p" | "print" => {
                if argv.len() == 2 {
                    print_var(lua, &argv[1]);
                } else {
                    print_all(lua);
                }
            }
            "l" | "list" => {
                let mut around = with(|l| l.currentline).unwrap_or(0);
                let mut ctx = 5;
                if let Some(a) = argv.get(1) {
                    let n = atoi(a) as i32;
                    if n > 0 {
                        around = n;
                    }
                }
                if let Some(c) = argv.get(2) {
                    ctx = atoi(c) as i32;
                }
                list(around, ctx);
            }
            "w" | "whole" => list(1, 1_000_000),
            _ => log("<error> Unknown Redis Lua debugger command or wrong number of arguments."),
        }
        send_logs();
    }
}

fn help() {
    for line in [
        "Redis Lua debugger help:",
        "[h]elp               Show this help.",
        "[s]tep               Run current line and stop again.",
        "[n]ext               Alias for step.",
        "[c]ontinue           Run till next breakpoint.",
        "[l]ist               List source code around current line.",
        "[l]ist [line]        List source code around [line].",
        "                     line = 0 means: current position.",
        "[l]ist [line] [ctx]  In this form [ctx] specifies how many lines",
        "                     to show before/after [line].",
        "[w]hole              List all source code. Alias for 'list 1 1000000'.",
        "[p]rint              Show all the local variables.",
        "[p]rint <var>        Show the value of the specified variable.",
        "                     Can also show global vars KEYS and ARGV.",
        "[b]reak              Show all breakpoints.",
        "[b]reak <line>       Add a breakpoint to the specified line.",
        "[b]reak -<line>      Remove breakpoint from the specified line.",
        "[b]reak 0            Remove all breakpoints.",
        "[t]race              Show a backtrace.",
        "[e]val <code>        Execute some Lua code (in a different callframe).",
        "[r]edis <cmd>        Execute a Redis command.",
        "[m]axlen [len]       Trim logged Redis replies and Lua var dumps to len.",
        "                     Specifying zero as <len> means unlimited.",
        "[a]bort              Stop the execution of the script. In sync",
        "                     mode dataset changes will be retained.",
        "",
        "Debugger functions you can call from Lua scripts:",
        "redis.debug()        Produce logs in the debugger console.",
        "redis.breakpoint()   Stop execution like if there was a breakpoint in the",
        "                     next line of code.",
    ] {
        log(line);
    }
}

fn maxlen(argv: &[Vec<u8>]) {
    with(|l| {
        if argv.len() == 2 {
            let mut n = atoi(&argv[1]);
            l.maxlen_hint_sent = true;
            if n != 0 && n <= 60 {
                n = 60;
            }
            // Redis keeps it in a size_t: a negative value wraps to "unlimited in practice".
            l.maxlen = if n < 0 { usize::MAX } else { n as usize };
        }
        let line = if l.maxlen == usize::MAX {
            // Redis prints the size_t through an int.
            "<value> replies are truncated at -1 bytes.".to_string()
        } else if l.maxlen > 0 {
            format!(
                "<value> replies are truncated at {} bytes.",
                l.maxlen as i32
            )
        } else {
            "<value> replies are unlimited.".to_string()
        };
        l.logs.push(line.into_bytes());
    });
}

fn breakpoints(argv: &[Vec<u8>]) {
    if argv.len() == 1 {
        let bps = with(|l| l.bp.clone()).unwrap_or_default();
        if bps.is_empty() {
            log("No breakpoints set. Use 'b <line>' to add one.");
        } else {
            log(format!("{} breakpoints set:", bps.len()));
            for b in bps {
                log_source_line(b);
            }
        }
        return;
    }
    for arg in &argv[1..] {
        let parsed = crate::storage::value::parse_canonical_i64(arg);
        let Some(line) = parsed else {
            let mut m = b"Invalid argument:'".to_vec();
            m.extend_from_slice(arg);
            m.push(b'\'');
            log(m);
            continue;
        };
        if line == 0 {
            with(|l| l.bp.clear());
            log("All breakpoints removed.");
        } else if line > 0 {
            let (full, lines, has) = with(|l| {
                (
                    l.bp.len() == BREAKPOINTS_MAX,
                    l.src.len() as i64,
                    l.bp.contains(&(line as i32)),
                )
            })
            .unwrap_or((true, 0, false));
            if full {
                log("Too many breakpoints set.");
            } else if line <= lines && !has {
                with(|l| l.bp.push(line as i32));
                list(line as i32, 1);
            } else {
                log("Wrong line number.");
            }
        } else {
            let removed = with(|l| {
                let target = (-line) as i32;
                match l.bp.iter().position(|&b| b == target) {
                    Some(i) => {
                        l.bp.remove(i);
                        true
                    }
                    None => false,
                }
            })
            .unwrap_or(false);
            log(if removed {
                "Breakpoint removed."
            } else {
                "No breakpoint in the specified line."
            });
        }
    }
}

/// The bootstrap's debugger helpers (`ldb` in the interpreter's registry).
fn helper(lua: &Lua, name: &str) -> Option<mlua::Function> {
    let t: mlua::Table = lua.named_registry_value("shardis_ldb").ok()?;
    t.get(name).ok()
}

fn eval(lua: &Lua, argv: &[Vec<u8>]) {
    let code = argv[1..].join(&b' ');
    let Some(f) = helper(lua, "eval") else {
        return;
    };
    let code = match lua.create_string(&code) {
        Ok(s) => s,
        Err(_) => return,
    };
    match f.call::<(bool, Value)>(code) {
        Ok((true, v)) => log_value("<retval> ", &v),
        Ok((false, v)) => {
            let text = match &v {
                Value::String(s) => s.to_string_lossy(),
                Value::Table(t) => t.get::<String>("err").unwrap_or_default(),
                other => format!("{other:?}"),
            };
            log(format!("<error> {text}"));
        }
        Err(e) => log(format!("<error> {e}")),
    }
}

fn redis(lua: &Lua, argv: &[Vec<u8>]) {
    let Some(f) = helper(lua, "redis") else {
        return;
    };
    let mut args = Vec::with_capacity(argv.len() - 1);
    for a in &argv[1..] {
        match lua.create_string(a) {
            Ok(s) => args.push(Value::String(s)),
            Err(_) => return log("<reply> \"max lua stack reached\""),
        }
    }
    with(|l| l.step = true);
    let _ = f.call::<()>(mlua::MultiValue::from_iter(args));
    with(|l| l.step = false);
}

fn print_var(lua: &Lua, name: &[u8]) {
    let Some(f) = helper(lua, "getvar") else {
        return;
    };
    let Ok(name) = lua.create_string(name) else {
        return;
    };
    match f.call::<(bool, Value)>(name) {
        Ok((true, v)) => log_value("<value> ", &v),
        _ => log("No such variable."),
    }
}

fn print_all(lua: &Lua) {
    let Some(f) = helper(lua, "locals") else {
        return;
    };
    let Ok(pairs) = f.call::<mlua::Table>(()) else {
        return;
    };
    let mut vars = 0;
    for pair in pairs.sequence_values::<mlua::Table>().flatten() {
        let name: String = pair.get(1).unwrap_or_default();
        let v: Value = pair.get(2).unwrap_or(Value::Nil);
        log_value(&format!("<value> {name} = "), &v);
        vars += 1;
    }
    if vars == 0 {
        log("No local variables in the current context.");
    }
}

fn trace(lua: &Lua) {
    let Some(f) = helper(lua, "trace") else {
        return;
    };
    let Ok(frames) = f.call::<mlua::Table>(()) else {
        return log("<error> Can't retrieve Lua stack.");
    };
    let mut any = false;
    for fr in frames.sequence_values::<mlua::Table>().flatten() {
        any = true;
        let first: bool = fr.get(1).unwrap_or(false);
        let name: String = fr.get(2).unwrap_or_else(|_| "top level".into());
        let line: i32 = fr.get(3).unwrap_or(0);
        log(format!("{} {}:", if first { "In" } else { "From" }, name));
        log_source_line(line);
    }
    if !any {
        log("<error> Can't retrieve Lua stack.");
    }
}

/// Redis's `luaLdbLineHook`.
fn line_hook(lua: &Lua, ar: mlua::Debug) -> mlua::Result<VmState> {
    let line = ar.curr_line();
    let in_script = ar
        .source()
        .short_src
        .is_some_and(|s| s.contains("user_script"));
    let is_count = matches!(ar.event(), DebugEvent::Count);
    // Lines of our own Lua (the sandbox's lookups, the redis API wrappers) are not the
    // script's: Redis has no such code, so they neither stop nor move the current line.
    if !in_script {
        return Ok(VmState::Continue);
    }
    let Some((bp, step, luabp)) = with(|l| {
        l.currentline = line;
        (l.bp.contains(&line) || l.luabp, l.step, l.luabp)
    }) else {
        return Ok(VmState::Continue);
    };
    let mut timeout = false;
    if is_count && !step && !bp {
        let (resumed, threshold) =
            with(|l| (l.resumed, l.threshold_ms)).unwrap_or((Instant::now(), 0));
        let limit = if threshold > 0 { threshold } else { 5000 };
        if resumed.elapsed() >= Duration::from_millis(limit) {
            timeout = true;
            with(|l| l.step = true);
        } else {
            return Ok(VmState::Continue);
        }
    }
    if !(step || bp || timeout) {
        return Ok(VmState::Continue);
    }
    let reason = if bp {
        if luabp {
            "redis.breakpoint() called"
        } else {
            "break point"
        }
    } else if timeout {
        "timeout reached, infinite loop?"
    } else {
        "step over"
    };
    with(|l| {
        l.step = false;
        l.luabp = false;
    });
    log(format!("* Stopped at {line}, stop reason = {reason}"));
    log_source_line(line);
    send_logs();
    if with(|l| l.gone).unwrap_or(true) {
        with(|l| {
            l.step = false;
            l.bp.clear();
        });
        if timeout {
            return Err(ldb_error(
                "timeout during Lua debugging with client closing connection",
            ));
        }
        return Ok(VmState::Continue);
    }
    let r = repl(lua)?;
    if matches!(r, Resume::Gone) && timeout {
        return Err(ldb_error(
            "timeout during Lua debugging with client closing connection",
        ));
    }
    with(|l| l.resumed = Instant::now());
    Ok(VmState::Continue)
}

/// SCRIPT DEBUG YES|SYNC|NO.
pub fn script_debug(ctx: &mut ConnCtx, args: &[Bytes], out: &mut Out) {
    let mode = &args[2];
    let eq = |s: &str| mode.eq_ignore_ascii_case(s.as_bytes());
    if !(eq("no") || eq("yes") || eq("sync")) {
        return out.error("ERR Use SCRIPT DEBUG YES/SYNC/NO");
    }
    if !out.buf.is_empty() {
        // Replies of earlier pipelined commands not yet written.
        return out.error("ERR SCRIPT DEBUG must be called outside a pipeline");
    }
    ctx.client.script_debug = if eq("no") {
        MODE_OFF
    } else if eq("yes") {
        MODE_FORKED
    } else {
        MODE_SYNC
    };
    out.ok();
}

/// EVAL / EVAL_RO for a client in debug mode (`Client::script_debug` set).
pub fn eval_debug(ctx: &mut ConnCtx, args: &[Bytes], out: &mut Out, ro: bool) {
    let forked = ctx.client.script_debug == MODE_FORKED;
    ctx.client.script_debug = MODE_OFF;
    let mut session = match super::acquire(ctx.server, ctx.shard, true) {
        Ok(s) => s,
        Err(e) => return out.error(e),
    };
    let mut child_fd = None;
    let mut child_log = None;
    if forked {
        match fork_session(ctx) {
            Fork::Parent => {
                // The child answers; this side just lets the connection go.
                ctx.client.close_after_reply = true;
                return;
            }
            Fork::Failed(e) => {
                return out.error(&format!(
                    "ERR Fork() failed: can't run EVAL in debugging mode: {e}"
                ))
            }
            Fork::Child(fd, clog) => {
                child_fd = Some(fd);
                child_log = Some(clog);
            }
        }
    } else {
        crate::log_warning!("Redis synchronous debugging eval session started");
    }
    // Replies of commands before the EVAL go out first, ahead of the debugger's output.
    let earlier = std::mem::take(out.buf);
    start_session(
        &args[1],
        child_fd,
        ctx.server.config.load().busy_reply_threshold_ms,
    );
    if !earlier.is_empty() {
        let ok = match child_fd {
            Some(fd) => fd_write_all(fd, &earlier),
            None => super::with_installed_host(|h| h.debug_write(earlier)).unwrap_or(false),
        };
        if !ok {
            with(|l| l.gone = true);
        }
    }
    let vm = &mut *session.vm;
    super::eval::eval_loaded(vm, ctx, args, out, ro, false);
    // The normal count hook is installed again by the next run.
    vm.lua.remove_hook();
    vm.script_hook.set(false);
    log("<endsession>");
    send_logs();
    LDB.with(|l| *l.borrow_mut() = None);
    match (child_fd, child_log) {
        (Some(fd), Some(clog)) => finish_child(fd, out, &clog),
        _ => {
            crate::log_warning!("Redis synchronous debugging eval session ended");
            ctx.client.close_after_reply = true;
        }
    }
}

fn start_session(body: &[u8], fd: Option<i32>, threshold_ms: u64) {
    let mut end = body.len();
    while end > 0 && (body[end - 1] == b'\n' || body[end - 1] == b'\r') {
        end -= 1;
    }
    let src: Vec<Vec<u8>> = if end == 0 {
        Vec::new()
    } else {
        body[..end]
            .split(|&b| b == b'\n')
            .map(|l| l.to_vec())
            .collect()
    };
    LDB.with(|l| {
        *l.borrow_mut() = Some(Ldb {
            step: true,
            luabp: false,
            bp: Vec::new(),
            src,
            currentline: 0,
            logs: Vec::new(),
            maxlen: MAXLEN_DEFAULT,
            maxlen_hint_sent: false,
            cbuf: Vec::new(),
            resumed: Instant::now(),
            threshold_ms,
            gone: false,
            fd,
        })
    });
}

/// Installs the debugger's hooks for a run (replacing the count hook).
pub fn install_hook(vm: &Vm) {
    vm.lua.set_hook(
        HookTriggers::new()
            .every_line()
            .every_nth_instruction(COUNT_HOOK_INSTRUCTIONS),
        line_hook,
    );
    vm.script_hook.set(false);
}

// ---- forked sessions ----

enum Fork {
    Parent,
    Child(i32, crate::log::ChildLog),
    Failed(String),
}

/// Where a forked session's child keeps the client's socket.
const CHILD_CONN_FD: i32 = 3;

/// Set in a forked session's child: nothing is propagated from there.
static IN_CHILD: AtomicBool = AtomicBool::new(false);

/// Whether this process is a forked debugging session's child.
pub fn in_child() -> bool {
    IN_CHILD.load(Ordering::Relaxed)
}

/// Pids of the children running forked sessions (killed on shutdown).
static CHILDREN: parking_lot::Mutex<Vec<i32>> = parking_lot::Mutex::new(Vec::new());

fn kill_forked_sessions() {
    let pids = std::mem::take(&mut *CHILDREN.lock());
    for pid in pids {
        crate::log_warning!("Killing debugging session {}", pid);
        // SAFETY: plain kill(2) on a child we forked and have not reaped yet.
        unsafe {
            libc::kill(pid, libc::SIGKILL);
        }
    }
}

fn fork_session(ctx: &mut ConnCtx) -> Fork {
    let fd = ctx.client.fd;
    // Taken before the fork: the logger's lock may not be taken in the child.
    let clog = crate::log::child_log();
    // SAFETY: fork from the thread holding the VM and every shard lock; the child only uses
    // what this thread held (see the module essay) and leaves with _exit.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Fork::Failed(std::io::Error::last_os_error().to_string());
    }
    if pid == 0 {
        IN_CHILD.store(true, Ordering::Relaxed);
        // SAFETY: plain system calls on our own process and descriptors, in the child.
        unsafe {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            libc::signal(libc::SIGTERM, libc::SIG_IGN);
            libc::signal(libc::SIGINT, libc::SIG_IGN);
            // Keep only the client's socket (on CHILD_CONN_FD) and the standard descriptors:
            // no listener or ring of the parent stays open in the child.
            if fd != CHILD_CONN_FD {
                libc::dup2(fd, CHILD_CONN_FD);
            }
            crate::persistence::child::close_from(CHILD_CONN_FD + 1);
            let fd = CHILD_CONN_FD;
            let flags = libc::fcntl(fd, libc::F_GETFL);
            libc::fcntl(fd, libc::F_SETFL, flags & !libc::O_NONBLOCK);
            let tv = libc::timeval {
                tv_sec: 5,
                tv_usec: 0,
            };
            libc::setsockopt(
                fd,
                libc::SOL_SOCKET,
                libc::SO_SNDTIMEO,
                (&tv as *const libc::timeval).cast(),
                std::mem::size_of::<libc::timeval>() as libc::socklen_t,
            );
        }
        clog.log(
            crate::log::Level::Warning,
            "Redis forked for debugging eval",
        );
        return Fork::Child(CHILD_CONN_FD, clog);
    }
    CHILDREN.lock().push(pid);
    std::thread::Builder::new()
        .name("ldb-reaper".into())
        .spawn(move || {
            let mut status = 0;
            // SAFETY: waiting for our own child.
            unsafe { libc::waitpid(pid, &mut status, 0) };
            CHILDREN.lock().retain(|&p| p != pid);
        })
        .ok();
    Fork::Parent
}

/// The child's end: the EVAL reply, then exit without running the parent's destructors.
fn finish_child(fd: i32, out: &mut Out, clog: &crate::log::ChildLog) -> ! {
    let reply = std::mem::take(out.buf);
    fd_write_all(fd, &reply);
    clog.log(
        crate::log::Level::Warning,
        "Lua debugging session child exiting",
    );
    // SAFETY: leaving the forked child without touching state shared with the parent.
    unsafe { libc::_exit(0) }
}

fn fd_write_all(fd: i32, mut data: &[u8]) -> bool {
    while !data.is_empty() {
        // SAFETY: writing from a live slice to a descriptor we own.
        let n = unsafe { libc::write(fd, data.as_ptr().cast(), data.len()) };
        if n < 0 {
            if std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            return false;
        }
        if n == 0 {
            return false;
        }
        data = &data[n as usize..];
    }
    true
}

fn fd_read(fd: i32) -> DebugRead {
    let mut buf = [0u8; 1024];
    // SAFETY: reading into a live stack buffer.
    let n = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) };
    if n > 0 {
        DebugRead::Data(buf[..n as usize].to_vec())
    } else if n < 0 && std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted {
        DebugRead::Idle
    } else {
        DebugRead::Gone
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_commands_like_redis() {
        match parse_command(b"*2\r\n$1\r\nb\r\n$2\r\n10\r\n") {
            Parsed::Command(a) => assert_eq!(a, vec![b"b".to_vec(), b"10".to_vec()]),
            _ => panic!("expected a command"),
        }
        assert!(matches!(parse_command(b"*2\r\n$1\r\nb\r\n"), Parsed::More));
        assert!(matches!(parse_command(b"hello"), Parsed::ProtocolError));
        assert!(matches!(parse_command(b"*0\r\n"), Parsed::ProtocolError));
        assert!(matches!(
            parse_command(b"*1\r\n$0\r\n\r\n"),
            Parsed::ProtocolError
        ));
        match parse_command(b"*1\r\n$11\r\nhello\0world\r\n") {
            Parsed::Command(a) => assert_eq!(a, vec![b"hello\0world".to_vec()]),
            _ => panic!("expected a command"),
        }
    }

    #[test]
    fn renders_replies_like_redis() {
        let mut o = Vec::new();
        resp_to_human(&mut o, b"*3\r\n:1\r\n$-1\r\n$2\r\nab\r\n");
        assert_eq!(o, b"[1,NULL,\"ab\"]");
        let mut o = Vec::new();
        resp_to_human(&mut o, b"-ERR x\r\n");
        assert_eq!(o, b"\"-ERR x\"");
        let mut o = Vec::new();
        resp_to_human(&mut o, b"%1\r\n+a\r\n,1.5\r\n");
        assert_eq!(o, b"{\"+a\" => (double) 1.5}");
    }

    #[test]
    fn formats_numbers_like_c() {
        assert_eq!(fmt_g(1.0), "1");
        assert_eq!(fmt_g(0.5), "0.5");
        assert_eq!(fmt_g(1e20), "1e+20");
    }
}
