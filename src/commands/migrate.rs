//! MIGRATE host port key|"" destination-db timeout [COPY] [REPLACE] [AUTH password]
//! [AUTH2 username password] [KEYS key ...]: moves keys to another server as Redis 7.0's
//! `migrateCommand` does — each key's DUMP payload sent as `RESTORE key ttl payload
//! [REPLACE]` (after `AUTH` and, when the cached connection's database differs, `SELECT`),
//! then every key the target acknowledged is deleted here (unless COPY) and the command is
//! propagated to replicas and the AOF as `DEL` of those keys.
//!
//! # Design: a bounded blocking exchange under the keys' shard locks
//! MIGRATE is a `Data` command: the router locks the shards owning its keys, exactly as for
//! any multi-key command (`Keys::Custom(migrate_keys)` finds them in both forms), and the
//! handler does the network exchange synchronously while holding them, each connect, write
//! and read bounded by the command's timeout — what Redis does with its only thread. The
//! alternative (park the client like a blocked one while a helper thread talks to the
//! target, then delete the keys on their shards) would let the keys change between the
//! DUMP and the DEL, so a concurrent write could be lost or a stale value survive; keeping
//! the locks makes the read, the transfer and the delete one atomic step, which is the
//! command's contract. The cost is bounded: only the shards holding the migrated keys stop,
//! for at most about the timeout per I/O step (Redis stops entirely for the same time), and
//! the exchange is one pipelined write and one reply line per command. A MIGRATE's target
//! must not be this server itself (Redis then times out too: it cannot answer itself).
//!
//! # The connection cache
//! One connection per `host:port`, shared by every shard, as Redis's
//! `server.migrate_cached_sockets`: at most 64 (a random one is dropped for a 65th), each
//! remembering the database it last selected, closed after 10 seconds unused (shard 0's cron
//! calls `cron`). A connection is taken out of the cache while in use, so two shards never
//! interleave on one socket; a concurrent MIGRATE to the same target opens its own, and the
//! last one put back is kept. A failed exchange closes its connection; a failure that is
//! not a timeout is retried once on a fresh connection (a cached socket the target closed is
//! the common case), as Redis does.

use super::{err, flag, parse, Cmd, Keys};
use crate::persistence::rdb;
use crate::protocol::Out;
use crate::storage::Keyspace;
use bytes::Bytes;
use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Duration;

pub static COMMANDS: [Cmd; 1] = [Cmd::data(
    "migrate",
    -6,
    flag::WRITE,
    Keys::Custom(migrate_keys),
    migrate,
)
.with_acl(&["keyspace", "write", "slow", "dangerous"])];

/// Redis's `MIGRATE_SOCKET_CACHE_ITEMS`.
const CACHE_ITEMS: usize = 64;
/// Redis's `MIGRATE_SOCKET_CACHE_TTL`, in seconds: a connection unused for longer is closed.
const CACHE_TTL_SECS: u64 = 10;
/// Redis's reply line buffer: longer lines are cut (`connSyncReadLine` into 1024 bytes).
const LINE_MAX: usize = 1023;

struct Cached {
    conn: BufReader<TcpStream>,
    /// The database the target last selected on this connection (-1: unknown).
    last_dbid: i64,
    last_use_secs: u64,
}

fn cache() -> &'static Mutex<HashMap<String, Cached>> {
    static CACHE: std::sync::OnceLock<Mutex<HashMap<String, Cached>>> = std::sync::OnceLock::new();
    CACHE.get_or_init(|| Mutex::new(HashMap::new()))
}

/// Connections in the cache (INFO `migrate_cached_sockets`).
static CACHED: AtomicUsize = AtomicUsize::new(0);

pub fn cached_sockets() -> usize {
    CACHED.load(Ordering::Relaxed)
}

fn now_secs() -> u64 {
    crate::util::now_ms() / 1000
}

/// Closes connections unused for more than 10 seconds (Redis's
/// `migrateCloseTimedoutSockets`, from its cron).
pub fn cron() {
    if cached_sockets() == 0 {
        return;
    }
    let now = now_secs();
    let mut c = cache().lock().unwrap_or_else(|e| e.into_inner());
    c.retain(|_, cs| now.saturating_sub(cs.last_use_secs) <= CACHE_TTL_SECS);
    CACHED.store(c.len(), Ordering::Relaxed);
}

/// The cached connection to `name`, taken out of the cache, or a new one.
fn take_socket(host: &str, port: &str, name: &str, timeout: Duration) -> Option<Cached> {
    if let Some(mut cs) = {
        let mut c = cache().lock().unwrap_or_else(|e| e.into_inner());
        let cs = c.remove(name);
        CACHED.store(c.len(), Ordering::Relaxed);
        cs
    } {
        cs.last_use_secs = now_secs();
        return Some(cs);
    }
    let port: u16 = port.parse().ok()?;
    let addrs = (host, port).to_socket_addrs().ok()?;
    let mut stream = None;
    for addr in addrs {
        if let Ok(s) = TcpStream::connect_timeout(&addr, timeout) {
            stream = Some(s);
            break;
        }
    }
    let stream = stream?;
    let _ = stream.set_nodelay(true);
    Some(Cached {
        conn: BufReader::new(stream),
        last_dbid: -1,
        last_use_secs: now_secs(),
    })
}

/// Puts a connection back in the cache (dropping one at random when it is full).
fn put_socket(name: String, cs: Cached) {
    let mut c = cache().lock().unwrap_or_else(|e| e.into_inner());
    if !c.contains_key(&name) && c.len() >= CACHE_ITEMS {
        // HashMap iteration order is randomized per map: the first key is an arbitrary one.
        if let Some(k) = c.keys().next().cloned() {
            c.remove(&k);
        }
    }
    c.insert(name, cs);
    CACHED.store(c.len(), Ordering::Relaxed);
}

/// The key arguments: `key` (index 3), or everything after `KEYS` when `key` is empty
/// (Redis's `migrateGetKeys`; a non-empty `key` with KEYS is the handler's syntax error).
fn migrate_keys(args: &[Bytes]) -> Vec<usize> {
    let mut i = 6;
    while i < args.len() {
        let a = &args[i];
        if parse::eq(a, "keys") {
            if !args[3].is_empty() {
                return Vec::new();
            }
            return (i + 1..args.len()).collect();
        }
        if parse::eq(a, "auth") {
            i += 1;
        } else if parse::eq(a, "auth2") {
            i += 2;
        }
        i += 1;
    }
    vec![3]
}

/// How an exchange with the target failed.
enum IoFail {
    Write { timed_out: bool },
    Read { timed_out: bool },
}

fn timed_out(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
    )
}

/// One reply line without its CRLF, cut at Redis's 1023 bytes; `Err` on EOF or error.
fn read_line(conn: &mut BufReader<TcpStream>) -> Result<Vec<u8>, IoFail> {
    let mut line = Vec::new();
    match conn.read_until(b'\n', &mut line) {
        Ok(0) => Err(IoFail::Read { timed_out: false }),
        Ok(_) if line.last() != Some(&b'\n') => Err(IoFail::Read { timed_out: false }),
        Ok(_) => {
            line.pop();
            if line.last() == Some(&b'\r') {
                line.pop();
            }
            line.truncate(LINE_MAX);
            Ok(line)
        }
        Err(e) => Err(IoFail::Read {
            timed_out: timed_out(&e),
        }),
    }
}

fn migrate(ks: &mut Keyspace, args: &[Bytes], out: &mut Out) {
    let mut copy = false;
    let mut replace = false;
    let mut username: Option<&Bytes> = None;
    let mut password: Option<&Bytes> = None;
    let mut first_key = 3;
    let mut num_keys = 1;
    let mut j = 6;
    while j < args.len() {
        let more = args.len() - 1 - j;
        let a = &args[j];
        if parse::eq(a, "copy") {
            copy = true;
        } else if parse::eq(a, "replace") {
            replace = true;
        } else if parse::eq(a, "auth") {
            if more == 0 {
                return out.error(err::SYNTAX);
            }
            j += 1;
            password = Some(&args[j]);
        } else if parse::eq(a, "auth2") {
            if more < 2 {
                return out.error(err::SYNTAX);
            }
            username = Some(&args[j + 1]);
            password = Some(&args[j + 2]);
            j += 2;
        } else if parse::eq(a, "keys") {
            if !args[3].is_empty() {
                return out.error(
                    "ERR When using MIGRATE KEYS option, the key argument must be set to the empty string",
                );
            }
            first_key = j + 1;
            num_keys = args.len() - j - 1;
            break;
        } else {
            return out.error(err::SYNTAX);
        }
        j += 1;
    }
    let timeout = match parse::i64_arg(&args[5]) {
        Ok(t) => t,
        Err(e) => return out.error(e),
    };
    let dbid = match parse::i64_arg(&args[4]) {
        Ok(d) => d,
        Err(e) => return out.error(e),
    };
    let timeout = if timeout <= 0 { 1000 } else { timeout };
    let timeout = Duration::from_millis(timeout as u64);

    let keys: Vec<&Bytes> = args[first_key..first_key + num_keys]
        .iter()
        .filter(|k| ks.lookup_read(k).is_some())
        .collect();
    if keys.is_empty() {
        return out.simple("NOKEY");
    }

    let host = String::from_utf8_lossy(&args[1]).into_owned();
    let port = String::from_utf8_lossy(&args[2]).into_owned();
    let name = format!("{host}:{port}");
    let mut may_retry = true;
    loop {
        let Some(mut cs) = take_socket(&host, &port, &name, timeout) else {
            return out.error("IOERR error or timeout connecting to the client");
        };
        let _ = cs.conn.get_ref().set_read_timeout(Some(timeout));
        let _ = cs.conn.get_ref().set_write_timeout(Some(timeout));

        // The pipelined request: AUTH, SELECT, then one RESTORE per live key.
        let mut cmd = Vec::new();
        if let Some(pass) = password {
            let mut argv = vec![Bytes::from_static(b"AUTH")];
            argv.extend(username.cloned());
            argv.push(pass.clone());
            crate::replication::feed::encode_command(&mut cmd, &argv);
        }
        let select = cs.last_dbid != dbid;
        if select {
            let argv = [Bytes::from_static(b"SELECT"), Bytes::from(dbid.to_string())];
            crate::replication::feed::encode_command(&mut cmd, &argv);
        }
        let now = crate::util::now_ms() as i64;
        let mut sent: Vec<&Bytes> = Vec::with_capacity(keys.len());
        for key in &keys {
            let Some(e) = ks.peek(key) else { continue };
            let mut ttl = 0;
            if e.expire_ms != 0 {
                ttl = e.expire_ms as i64 - now;
                if ttl < 0 {
                    continue;
                }
                ttl = ttl.max(1);
            }
            let mut argv = vec![
                Bytes::from_static(b"RESTORE"),
                (*key).clone(),
                Bytes::from(ttl.to_string()),
                Bytes::from(rdb::dump_payload(&e.value)),
            ];
            if replace {
                argv.push(Bytes::from_static(b"REPLACE"));
            }
            crate::replication::feed::encode_command(&mut cmd, &argv);
            sent.push(key);
        }

        let outcome = exchange(&mut cs, &cmd, password.is_some(), select, sent.len());
        let (auth_reply, select_reply, replies, fail) = match outcome {
            Ok(r) => r,
            Err(fail) => {
                // Nothing was acknowledged: the connection is dropped; retry once unless
                // the target timed out.
                let (timed_out, writing) = match fail {
                    IoFail::Write { timed_out } => (timed_out, true),
                    IoFail::Read { timed_out } => (timed_out, false),
                };
                if !timed_out && may_retry {
                    may_retry = false;
                    continue;
                }
                return out.error(&format!(
                    "IOERR error or timeout {} to target instance",
                    if writing { "writing" } else { "reading" }
                ));
            }
        };

        let mut error_from_target = false;
        let mut deleted: Vec<Bytes> = Vec::new();
        for (key, reply) in sent.iter().zip(&replies) {
            let auth_err = auth_reply.as_ref().filter(|l| l.first() == Some(&b'-'));
            let select_err = select_reply.as_ref().filter(|l| l.first() == Some(&b'-'));
            if auth_err.is_some() || select_err.is_some() || reply.first() == Some(&b'-') {
                if !error_from_target {
                    cs.last_dbid = -1;
                    let line = auth_err.or(select_err).unwrap_or(reply);
                    error_from_target = true;
                    out.error(&format!(
                        "ERR Target instance replied with error: {}",
                        String::from_utf8_lossy(&line[1..])
                    ));
                }
            } else if !copy && ks.remove(key).is_some() {
                ks.signal_modified(key);
                ks.notify('g', "del", key);
                deleted.push((*key).clone());
            }
        }
        if !deleted.is_empty() {
            ks.dirty(deleted.len() as u64);
            ks.rewrite_as(|| {
                let mut argv = Vec::with_capacity(deleted.len() + 1);
                argv.push(Bytes::from_static(b"DEL"));
                argv.extend(deleted.iter().cloned());
                argv
            });
        }
        if let Some(fail) = fail {
            // The connection broke after some replies: it is closed (dropped here). Redis
            // retries only when nothing at all was read.
            let timed_out = matches!(fail, IoFail::Read { timed_out: true });
            if !error_from_target && replies.is_empty() && !timed_out && may_retry {
                may_retry = false;
                continue;
            }
            if !error_from_target {
                return out.error("IOERR error or timeout reading to target instance");
            }
            return;
        }
        if !error_from_target {
            cs.last_dbid = dbid;
            out.ok();
        }
        cs.last_use_secs = now_secs();
        put_socket(name, cs);
        return;
    }
}

/// The AUTH and SELECT reply lines and the RESTORE reply lines read, with the failure that
/// stopped reading RESTORE replies early, if any. `Err`: the request could not be written,
/// or the AUTH or SELECT reply could not be read.
type Replies = (
    Option<Vec<u8>>,
    Option<Vec<u8>>,
    Vec<Vec<u8>>,
    Option<IoFail>,
);

fn exchange(
    cs: &mut Cached,
    cmd: &[u8],
    auth: bool,
    select: bool,
    restores: usize,
) -> Result<Replies, IoFail> {
    // Redis writes in 64 KiB chunks, each bounded by the timeout; `write_all` with a write
    // timeout bounds each underlying write the same way.
    for chunk in cmd.chunks(64 * 1024) {
        if let Err(e) = cs.conn.get_mut().write_all(chunk) {
            return Err(IoFail::Write {
                timed_out: timed_out(&e),
            });
        }
    }
    let auth_reply = if auth {
        Some(read_line(&mut cs.conn)?)
    } else {
        None
    };
    let select_reply = if select {
        Some(read_line(&mut cs.conn)?)
    } else {
        None
    };
    let mut replies = Vec::with_capacity(restores);
    for _ in 0..restores {
        match read_line(&mut cs.conn) {
            Ok(l) => replies.push(l),
            Err(f) => return Ok((auth_reply, select_reply, replies, Some(f))),
        }
    }
    Ok((auth_reply, select_reply, replies, None))
}
