//! The command table: every command declared once, as data.
//!
//! A `Cmd` names the command, its arity (negative = at least), flags, where its keys are and
//! its handler. The dispatcher (`server::dispatch`) does every generic check from this table
//! — lookup, arity, authentication, routing to shards — before a handler runs, so handlers
//! only parse their own options and do their work.
//!
//! Two kinds of handler:
//! - `Kind::Data`: a pure function over a `Keyspace` (the shards the command's keys live on,
//!   locked for it). No I/O, no waiting, no connection state. Runs on whichever thread the
//!   router picked.
//! - `Kind::Conn`: runs on the connection's home thread with the connection and the server's
//!   shared state (CONFIG, CLIENT, HELLO, INFO, SELECT...).

pub mod aof;
pub mod bits;
pub mod blocking;
pub mod cluster;
pub mod connection;
pub mod digest;
pub mod dump;
pub mod expire;
pub mod geo;
pub mod hash;
pub mod hll;
pub mod info;
pub mod keys;
pub mod latency;
pub mod list;
pub mod long_double;
pub mod memory;
pub mod migrate;
pub mod multi;
pub mod object;
pub mod persistence;
pub mod pubsub;
pub mod replication;
pub mod scan;
pub mod server;
pub mod set;
pub mod sort;
pub mod specs;
#[rustfmt::skip]
#[allow(clippy::all)]
mod specs_data;
pub mod stream;
pub mod string;
pub mod zset;

use crate::protocol::Out;
use crate::server::ConnCtx;
use crate::storage::Keyspace;
use bytes::Bytes;
use hashbrown::HashMap;
use std::sync::OnceLock;

pub type Args = [Bytes];
pub type DataFn = fn(&mut Keyspace, &Args, &mut Out);
pub type ConnFn = fn(&mut ConnCtx, &Args, &mut Out);

#[derive(Clone, Copy)]
pub enum Kind {
    Data(DataFn),
    Conn(ConnFn),
    /// A container whose subcommands are looked up by the second argument.
    Container,
}

/// Where a command's keys are.
#[derive(Clone, Copy)]
pub enum Keys {
    None,
    /// Redis's (first, last, step); last < 0 counts from the end.
    Range(i32, i32, i32),
    /// A function returning the indices of the key arguments (numkeys-style commands).
    Custom(fn(&Args) -> Vec<usize>),
}

/// Command flags (a subset of Redis's, as bits).
pub mod flag {
    pub const WRITE: u32 = 1 << 0;
    pub const READONLY: u32 = 1 << 1;
    pub const DENYOOM: u32 = 1 << 2;
    pub const ADMIN: u32 = 1 << 3;
    pub const PUBSUB: u32 = 1 << 4;
    pub const NOSCRIPT: u32 = 1 << 5;
    pub const BLOCKING: u32 = 1 << 6;
    pub const LOADING: u32 = 1 << 7;
    pub const STALE: u32 = 1 << 8;
    pub const SKIP_MONITOR: u32 = 1 << 9;
    pub const SKIP_SLOWLOG: u32 = 1 << 10;
    pub const FAST: u32 = 1 << 11;
    pub const NO_AUTH: u32 = 1 << 12;
    pub const MAY_REPLICATE: u32 = 1 << 13;
    pub const NO_MULTI: u32 = 1 << 14;
    pub const ALLOW_BUSY: u32 = 1 << 15;
    /// shardis: a Data command that needs every shard (KEYS, SCAN, DBSIZE, FLUSHDB...).
    pub const ALL_SHARDS: u32 = 1 << 16;
    pub const RANDOM: u32 = 1 << 17;
    pub const SORT_FOR_SCRIPT: u32 = 1 << 18;
    /// Redis's `touches_arbitrary_keys` (SCAN, RANDOMKEY): the lazy-expiry deletions such a
    /// command makes when called directly are propagated without MULTI/EXEC around them.
    /// Redis does not list it in COMMAND INFO, so it is not in `NAMES`.
    pub const TOUCHES_ARBITRARY_KEYS: u32 = 1 << 19;

    /// Redis's names, in COMMAND INFO order.
    pub const NAMES: &[(u32, &str)] = &[
        (WRITE, "write"),
        (READONLY, "readonly"),
        (DENYOOM, "denyoom"),
        (ADMIN, "admin"),
        (PUBSUB, "pubsub"),
        (NOSCRIPT, "noscript"),
        (BLOCKING, "blocking"),
        (LOADING, "loading"),
        (STALE, "stale"),
        (SKIP_MONITOR, "skip_monitor"),
        (SKIP_SLOWLOG, "skip_slowlog"),
        (FAST, "fast"),
        (NO_AUTH, "no_auth"),
        (NO_MULTI, "no_multi"),
        (ALLOW_BUSY, "allow_busy"),
    ];
}

pub struct Cmd {
    /// Lower-case name (`get`, or `get` for the subcommand `object|encoding`'s second part).
    pub name: &'static str,
    pub arity: i32,
    pub flags: u32,
    pub keys: Keys,
    pub kind: Kind,
    /// ACL categories without '@' (for COMMAND INFO).
    pub acl: &'static [&'static str],
    pub subcommands: &'static [Cmd],
}

impl Cmd {
    pub const fn data(name: &'static str, arity: i32, flags: u32, keys: Keys, f: DataFn) -> Cmd {
        Cmd {
            name,
            arity,
            flags,
            keys,
            kind: Kind::Data(f),
            acl: &[],
            subcommands: &[],
        }
    }

    pub const fn conn(name: &'static str, arity: i32, flags: u32, f: ConnFn) -> Cmd {
        Cmd {
            name,
            arity,
            flags,
            keys: Keys::None,
            kind: Kind::Conn(f),
            acl: &[],
            subcommands: &[],
        }
    }

    pub const fn container(name: &'static str, flags: u32, subs: &'static [Cmd]) -> Cmd {
        Cmd {
            name,
            arity: -2,
            flags,
            keys: Keys::None,
            kind: Kind::Container,
            acl: &[],
            subcommands: subs,
        }
    }

    pub const fn with_acl(mut self, acl: &'static [&'static str]) -> Cmd {
        self.acl = acl;
        self
    }

    pub fn is_write(&self) -> bool {
        self.flags & flag::WRITE != 0
    }

    /// Indices of the key arguments in `args` (args[0] is the command name).
    pub fn key_indices(&self, args: &Args) -> Vec<usize> {
        match self.keys {
            Keys::None => Vec::new(),
            Keys::Range(first, last, step) => {
                let n = args.len() as i32;
                let last = if last < 0 { n + last } else { last.min(n - 1) };
                let step = step.max(1);
                let mut v = Vec::new();
                let mut i = first;
                while i <= last && i > 0 {
                    v.push(i as usize);
                    i += step;
                }
                v
            }
            Keys::Custom(f) => f(args),
        }
    }

    pub fn find_sub(&self, name: &[u8]) -> Option<&'static Cmd> {
        self.subcommands
            .iter()
            .find(|c| c.name.as_bytes().eq_ignore_ascii_case(name))
    }
}

/// Every top-level command.
pub fn all() -> impl Iterator<Item = &'static Cmd> {
    string::COMMANDS
        .iter()
        .chain(bits::COMMANDS.iter())
        .chain(keys::COMMANDS.iter())
        .chain(hash::COMMANDS.iter())
        .chain(multi::COMMANDS.iter())
        .chain(dump::COMMANDS.iter())
        .chain(migrate::COMMANDS.iter())
        .chain(pubsub::COMMANDS.iter())
        .chain(connection::COMMANDS.iter())
        .chain(expire::COMMANDS.iter())
        .chain(scan::COMMANDS.iter())
        .chain(object::COMMANDS.iter())
        .chain(memory::COMMANDS.iter())
        .chain(server::COMMANDS.iter())
        .chain(persistence::COMMANDS.iter())
        .chain(aof::COMMANDS.iter())
        .chain(list::COMMANDS.iter())
        .chain(blocking::COMMANDS.iter())
        .chain(set::COMMANDS.iter())
        .chain(hll::COMMANDS.iter())
        .chain(zset::COMMANDS.iter())
        .chain(geo::COMMANDS.iter())
        .chain(sort::COMMANDS.iter())
        .chain(crate::scripting::eval::COMMANDS.iter())
        .chain(latency::COMMANDS.iter())
        .chain(replication::COMMANDS.iter())
        .chain(stream::COMMANDS.iter())
        .chain(cluster::COMMANDS.iter())
        .chain(crate::acl::command::COMMANDS.iter())
}

static TABLE: OnceLock<HashMap<&'static str, &'static Cmd>> = OnceLock::new();

fn table() -> &'static HashMap<&'static str, &'static Cmd> {
    TABLE.get_or_init(|| all().map(|c| (c.name, c)).collect())
}

/// `rename-command OLD NEW` lines of the config: the command answers to NEW only (to nothing
/// with an empty NEW); replies, statistics and ACL keep its real name, as in Redis. Applied
/// once at start-up, before any lookup. Errors are Redis's start-up reports.
pub fn apply_renames(lines: &[crate::config::FileDirective]) -> Result<(), String> {
    if lines.is_empty() {
        return Ok(());
    }
    let mut map: HashMap<&'static str, &'static Cmd> = all().map(|c| (c.name, c)).collect();
    for d in lines {
        let (Some(old), Some(new)) = (d.args.get(1), d.args.get(2)) else {
            continue;
        };
        let Some(cmd) = map.remove(old.to_ascii_lowercase().as_str()) else {
            return Err(d.fatal_error("No such command in rename-command"));
        };
        if !new.is_empty() {
            let new = new.to_ascii_lowercase();
            if map.contains_key(new.as_str()) {
                return Err(d.fatal_error("Target command name already exists"));
            }
            map.insert(Box::leak(new.into_boxed_str()), cmd);
        }
    }
    TABLE
        .set(map)
        .map_err(|_| "rename-command: the command table was already in use".to_string())
}

/// Looks a command up by name, case-insensitively, without allocating for names up to 32
/// bytes.
pub fn lookup(name: &[u8]) -> Option<&'static Cmd> {
    // Clients send the same few names over and over, spelled the same way: a per-thread memo
    // of the last name seen (exact bytes) skips lower-casing and hashing for them.
    thread_local! {
        static LAST: std::cell::Cell<([u8; 16], usize, Option<&'static Cmd>)> =
            const { std::cell::Cell::new(([0; 16], usize::MAX, None)) };
    }
    let memo = LAST.with(|l| l.get());
    // A byte loop, not a slice compare: names are a few bytes and a `memcmp` call for them
    // showed in profiles.
    if memo.1 == name.len() && name.iter().zip(&memo.0).all(|(a, b)| a == b) {
        return memo.2;
    }
    let found = lookup_uncached(name);
    if name.len() <= 16 && found.is_some() {
        let mut key = [0u8; 16];
        key[..name.len()].copy_from_slice(name);
        LAST.with(|l| l.set((key, name.len(), found)));
    }
    found
}

fn lookup_uncached(name: &[u8]) -> Option<&'static Cmd> {
    let mut lower = [0u8; 32];
    if name.len() > lower.len() {
        return None;
    }
    for (d, s) in lower.iter_mut().zip(name) {
        *d = s.to_ascii_lowercase();
    }
    let s = std::str::from_utf8(&lower[..name.len()]).ok()?;
    table().get(s).copied()
}

pub fn count() -> usize {
    table().len()
}

/// The standard error texts, kept in one place so every command uses the same bytes.
pub mod err {
    pub const SYNTAX: &str = "ERR syntax error";
    pub const WRONGTYPE: &str = "WRONGTYPE Operation against a key holding the wrong kind of value";
    pub const NOT_INT: &str = "ERR value is not an integer or out of range";
    pub const NOT_FLOAT: &str = "ERR value is not a valid float";
    pub const NO_KEY: &str = "ERR no such key";
    pub const OVERFLOW: &str = "ERR increment or decrement would overflow";
    pub const DB_INDEX: &str = "ERR DB index is out of range";
    pub const NOT_POSITIVE_EXPIRE: &str = "ERR invalid expire time in '%s' command";
    /// `getIntFromObjectOrReply` without a custom message, for a value outside the C `int`.
    pub const INT_RANGE: &str =
        "ERR value is out of range, value must between -2147483648 and 2147483647";
    pub const SAME_OBJECT: &str = "ERR source and destination objects are the same";
    pub const NOT_POSITIVE: &str = "ERR value is out of range, must be positive";
    pub const INVALID_CURSOR: &str = "ERR invalid cursor";
    pub const NUMKEYS_NOT_POSITIVE: &str = "ERR numkeys should be greater than 0";
    pub const NUMKEYS_OVER_ARGS: &str = "ERR Number of keys can't be greater than number of args";
    pub const LIMIT_NEGATIVE: &str = "ERR LIMIT can't be negative";
    /// shardis: a set at its member bound (`storage::set::MEMBERS_MAX`).
    pub const SET_FULL: &str = "ERR set is full";

    /// shardis: a reply would hold more members than one command may build in memory.
    pub fn reply_members_over(max: u64) -> String {
        format!(
            "ERR value is out of range, a reply holds at most {} members",
            max
        )
    }

    /// `getRangeLongFromObjectOrReply`'s text when no message is given.
    pub fn out_of_range(min: i64, max: i64) -> String {
        format!(
            "ERR value is out of range, value must between {} and {}",
            min, max
        )
    }

    pub fn wrong_args(cmd: &str) -> String {
        format!("ERR wrong number of arguments for '{}' command", cmd)
    }

    pub fn invalid_expire(cmd: &str) -> String {
        format!("ERR invalid expire time in '{}' command", cmd)
    }

    pub const INDEX_OUT_OF_RANGE: &str = "ERR index out of range";
    pub const COUNT_NOT_POSITIVE: &str = "ERR count should be greater than 0";
    pub const LPOS_RANK_ZERO: &str = "ERR RANK can't be zero: use 1 to start from the first \
        match, 2 from the second ... or use negative to start from the end of the list";
    pub const LPOS_COUNT_NEGATIVE: &str = "ERR COUNT can't be negative";
    pub const LPOS_MAXLEN_NEGATIVE: &str = "ERR MAXLEN can't be negative";
}

/// Argument parsing helpers with Redis's rules and errors.
/// Building blocks for what handlers propagate instead of their own arguments
/// (`Keyspace::rewrite_as`, `Keyspace::also_propagate`).
pub mod prop {
    use bytes::Bytes;

    /// A command name or keyword.
    pub fn lit(s: &'static str) -> Bytes {
        Bytes::from_static(s.as_bytes())
    }

    pub fn num(n: i64) -> Bytes {
        Bytes::from(n.to_string())
    }

    /// DEL key, or UNLINK key when that deletion frees lazily.
    pub fn deletion(key: &[u8], lazy: bool) -> Vec<Bytes> {
        vec![
            crate::storage::keyspace::del_or_unlink(lazy),
            Bytes::copy_from_slice(key),
        ]
    }

    pub fn lazy_expire() -> bool {
        crate::storage::limits::lazy(&crate::storage::limits::LAZY.expire)
    }

    pub fn lazy_user_del() -> bool {
        crate::storage::limits::lazy(&crate::storage::limits::LAZY.user_del)
    }

    pub fn lazy_server_del() -> bool {
        crate::storage::limits::lazy(&crate::storage::limits::LAZY.server_del)
    }
}

pub mod parse {
    use super::err;

    /// Redis's `string2ll` (strict decimal i64).
    pub fn i64_arg(b: &[u8]) -> Result<i64, &'static str> {
        crate::storage::value::parse_canonical_i64(b).ok_or(err::NOT_INT)
    }

    /// Redis's `getLongDoubleFromObject`-like float parsing (`strtold` accepting inf, no
    /// spaces, no nan).
    pub fn f64_arg(b: &[u8]) -> Result<f64, &'static str> {
        parse_f64(b).ok_or(err::NOT_FLOAT)
    }

    pub fn parse_f64(b: &[u8]) -> Option<f64> {
        if b.is_empty() || b.len() > 5000 {
            return None;
        }
        let s = std::str::from_utf8(b).ok()?;
        if s.starts_with(|c: char| c.is_whitespace()) || s.ends_with(|c: char| c.is_whitespace()) {
            return None;
        }
        let lower = s.to_ascii_lowercase();
        let v = match lower.as_str() {
            "inf" | "+inf" | "infinity" | "+infinity" => f64::INFINITY,
            "-inf" | "-infinity" => f64::NEG_INFINITY,
            _ => {
                if lower.contains("nan") || lower.contains("inf") {
                    return None;
                }
                if lower.starts_with("0x") || lower.starts_with("-0x") || lower.starts_with("+0x") {
                    return None;
                }
                s.parse::<f64>().ok()?
            }
        };
        if v.is_nan() {
            None
        } else {
            Some(v)
        }
    }

    /// Redis's `getIntFromObjectOrReply` with no custom message: a strict decimal that must
    /// fit a C `int` (DB indices).
    pub fn i32_arg(b: &[u8]) -> Result<i32, &'static str> {
        i32::try_from(i64_arg(b)?).map_err(|_| err::INT_RANGE)
    }

    /// A SCAN-family cursor, parsed as Redis does with `strtoul`: an unsigned 64-bit decimal
    /// with an optional sign (`-1` wraps to 2^64-1), no leading space, nothing after the
    /// digits; the empty string is cursor 0.
    pub fn scan_cursor(b: &[u8]) -> Result<u64, &'static str> {
        let (negative, digits) = match b.first() {
            None => return Ok(0),
            Some(b' ' | b'\t'..=b'\r') => return Err(err::INVALID_CURSOR),
            Some(b'-') => (true, &b[1..]),
            Some(b'+') => (false, &b[1..]),
            Some(_) => (false, b),
        };
        if digits.is_empty() {
            return Err(err::INVALID_CURSOR);
        }
        let mut v: u64 = 0;
        for &c in digits {
            if !c.is_ascii_digit() {
                return Err(err::INVALID_CURSOR);
            }
            v = v
                .checked_mul(10)
                .and_then(|v| v.checked_add(u64::from(c - b'0')))
                .ok_or(err::INVALID_CURSOR)?;
        }
        Ok(if negative { v.wrapping_neg() } else { v })
    }

    /// Redis's `getRangeLongFromObjectOrReply` with a message: an integer within
    /// `min..=max`, else `msg` (non-integers included).
    pub fn i64_in(b: &[u8], min: i64, max: i64, msg: &'static str) -> Result<i64, &'static str> {
        i64_arg(b)
            .ok()
            .filter(|n| (min..=max).contains(n))
            .ok_or(msg)
    }

    pub fn eq(a: &[u8], lit: &str) -> bool {
        a.eq_ignore_ascii_case(lit.as_bytes())
    }

    /// An option keyword as Redis matches it: `strcasecmp` on the argument as a C string, so
    /// it ends at the first NUL byte (`"NX\0junk"` is `NX`).
    pub fn kw(a: &[u8], lit: &str) -> bool {
        let c_str = a.split(|&b| b == 0).next().unwrap_or(a);
        c_str.eq_ignore_ascii_case(lit.as_bytes())
    }
}
