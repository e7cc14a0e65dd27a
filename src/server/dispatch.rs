//! The dispatcher: every generic check a command goes through before its handler runs, in
//! Redis's order (lookup, arity, authentication), then the routing decision.
//!
//! Routing looks at the shards that own the command's keys: none or all on the home shard →
//! `Local`; all on one other shard → `Remote` (a hop); several shards → `Multi` (the
//! multi-shard transaction path); whole-keyspace commands → `Multi` over every shard.

use crate::commands::{self, flag, Cmd, Kind};
use crate::server::Client;
use crate::storage::{key_slot, slot_owner};
use bytes::Bytes;
use std::collections::HashMap;
use std::sync::OnceLock;

#[derive(Debug, PartialEq, Eq)]
pub enum Route {
    /// A connection-level command, on the home thread.
    Conn,
    /// A data command whose keys (if any) all live on the home shard.
    Local,
    /// A data command whose keys all live on this other shard.
    Remote(usize),
    /// A data command over these shards (sorted), run under their locks.
    Multi(Vec<usize>),
}

pub struct Prepared {
    pub cmd: &'static Cmd,
    /// `get`, or `config|get` for a subcommand.
    pub full_name: &'static str,
    pub route: Route,
}

/// A rejection: the error text and, when the command was known, its name for statistics.
pub struct Rejected {
    pub error: Vec<u8>,
    pub full_name: Option<&'static str>,
}

/// `config|get` style names for subcommands, built once.
pub fn full_name(parent: &'static Cmd, sub: &'static Cmd) -> &'static str {
    sub_full_name(sub).unwrap_or(parent.name)
}

/// The full name of a command given only its table entry (`config|get` for a subcommand).
pub fn cmd_full_name(cmd: &'static Cmd) -> &'static str {
    sub_full_name(cmd).unwrap_or(cmd.name)
}

fn sub_full_name(sub: &'static Cmd) -> Option<&'static str> {
    static NAMES: OnceLock<HashMap<usize, &'static str>> = OnceLock::new();
    let map = NAMES.get_or_init(|| {
        let mut m = HashMap::new();
        for p in commands::all() {
            for s in p.subcommands {
                let name: &'static str =
                    Box::leak(format!("{}|{}", p.name, s.name).into_boxed_str());
                m.insert(s as *const Cmd as usize, name);
            }
        }
        m
    });
    map.get(&(sub as *const Cmd as usize)).copied()
}

/// `%.Ns` of C: at most `n` bytes, stopping at a NUL.
fn c_str(b: &[u8], n: usize) -> &[u8] {
    let end = b
        .iter()
        .take(n)
        .position(|&c| c == 0)
        .unwrap_or(b.len().min(n));
    &b[..end]
}

fn unknown_command(args: &[Bytes]) -> Vec<u8> {
    let mut tail: Vec<u8> = Vec::new();
    for a in &args[1..] {
        if tail.len() >= 128 {
            break;
        }
        let room = 128 - tail.len();
        tail.push(b'\'');
        tail.extend_from_slice(c_str(a, room));
        tail.extend_from_slice(b"' ");
    }
    let mut e = b"ERR unknown command '".to_vec();
    e.extend_from_slice(c_str(&args[0], 128));
    e.extend_from_slice(b"', with args beginning with: ");
    e.extend_from_slice(&tail);
    e
}

fn arity_ok(arity: i32, argc: usize) -> bool {
    let argc = argc as i32;
    (arity > 0 && argc == arity) || (arity < 0 && argc >= -arity)
}

/// Looks the command up and runs the generic checks. `home` is the connection's shard.
pub fn prepare(
    client: &Client,
    args: &[Bytes],
    home: usize,
    nshards: usize,
    auth_required: bool,
) -> Result<Prepared, Rejected> {
    let Some(mut cmd) = commands::lookup(&args[0]) else {
        return Err(Rejected {
            error: unknown_command(args),
            full_name: None,
        });
    };
    let mut full = cmd.name;
    let container = matches!(cmd.kind, Kind::Container);
    if container || (!cmd.subcommands.is_empty() && args.len() >= 2) {
        if args.len() < 2 {
            return Err(Rejected {
                error: format!("ERR wrong number of arguments for '{}' command", cmd.name).into(),
                full_name: Some(cmd.name),
            });
        }
        let Some(sub) = cmd.find_sub(&args[1]) else {
            let mut e = b"ERR unknown subcommand '".to_vec();
            e.extend_from_slice(c_str(&args[1], 128));
            e.extend_from_slice(
                format!("'. Try {} HELP.", cmd.name.to_ascii_uppercase()).as_bytes(),
            );
            return Err(Rejected {
                error: e,
                full_name: Some(cmd.name),
            });
        };
        full = full_name(cmd, sub);
        cmd = sub;
    }
    if !arity_ok(cmd.arity, args.len()) {
        return Err(Rejected {
            error: format!("ERR wrong number of arguments for '{}' command", full).into(),
            full_name: Some(full),
        });
    }
    if auth_required && !client.authenticated && cmd.flags & flag::NO_AUTH == 0 {
        return Err(Rejected {
            error: b"NOAUTH Authentication required.".to_vec(),
            full_name: Some(full),
        });
    }
    let route = match cmd.kind {
        Kind::Conn(_) | Kind::Container => Route::Conn,
        Kind::Data(_) => route_keys(cmd, args, home, nshards),
    };
    Ok(Prepared {
        cmd,
        full_name: full,
        route,
    })
}

fn route_keys(cmd: &Cmd, args: &[Bytes], home: usize, nshards: usize) -> Route {
    if cmd.flags & flag::ALL_SHARDS != 0 {
        return if nshards == 1 {
            Route::Local
        } else {
            Route::Multi((0..nshards).collect())
        };
    }
    if nshards == 1 {
        return Route::Local;
    }
    let mut first: Option<usize> = None;
    let mut set: Vec<usize> = Vec::new();
    for i in cmd.key_indices(args) {
        let Some(k) = args.get(i) else { continue };
        let s = slot_owner(key_slot(k), nshards);
        match first {
            None => first = Some(s),
            Some(f) if f == s && set.is_empty() => {}
            Some(f) => {
                if set.is_empty() {
                    set.push(f);
                }
                if !set.contains(&s) {
                    set.push(s);
                }
            }
        }
    }
    if !set.is_empty() {
        set.sort_unstable();
        return Route::Multi(set);
    }
    match first {
        None => Route::Local,
        Some(s) if s == home => Route::Local,
        // A blocking command registers its client where it runs, so it never hops: the home
        // thread takes the owner's lock instead.
        Some(s) if cmd.flags & flag::BLOCKING != 0 => Route::Multi(vec![s]),
        Some(s) => Route::Remote(s),
    }
}
