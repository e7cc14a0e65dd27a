//! Generic key commands: DEL, UNLINK, EXISTS, TYPE, TOUCH, RENAME, RENAMENX, COPY, MOVE,
//! DBSIZE, SWAPDB, FLUSHDB and FLUSHALL. The expiry commands live in `expire`, the keyspace
//! walks (KEYS, SCAN, RANDOMKEY) in `scan`, OBJECT in `object`.
//!
//! Every handler here is a plain function over the `Keyspace` the dispatcher locked for it.
//! Commands naming several keys (DEL, EXISTS, TOUCH, RENAME, COPY) declare all of them in the
//! table, so when the keys live on different shards the handler runs over all of those shards
//! at once and no client can observe half of it. Whole-keyspace commands (DBSIZE, SWAPDB,
//! FLUSHDB, FLUSHALL) carry `flag::ALL_SHARDS` and work on every shard's `Db` directly.
//!
//! Lookups follow Redis's flags: commands Redis runs with `LOOKUP_NOTOUCH` (EXISTS, TYPE,
//! OBJECT, the TTL family) count hits and misses but never update a key's access time, see
//! `lookup_notouch`; TOUCH always updates it, even for a client in no-touch mode.
//!
//! Deliberate differences from Redis 7.0:
//! - The cluster-mode refusals of MOVE, COPY ... DB and SWAPDB are not here yet: handlers do
//!   not see the cluster configuration.
//! - FLUSHALL does not save an RDB afterwards.

use super::{err, flag, parse, Cmd, Keys};
use crate::protocol::Out;
use crate::storage::{lazyfree, Db, Entry, Keyspace};
use bytes::Bytes;

const RO_FAST: u32 = flag::READONLY | flag::FAST;
const W_FAST: u32 = flag::WRITE | flag::FAST;
const ALL_KEYS: Keys = Keys::Range(1, -1, 1);
const KEY1: Keys = Keys::Range(1, 1, 1);
const KEY12: Keys = Keys::Range(1, 2, 1);

const ACL_READ_FAST: &[&str] = &["keyspace", "read", "fast"];
const ACL_WRITE_FAST: &[&str] = &["keyspace", "write", "fast"];
const ACL_WRITE_SLOW: &[&str] = &["keyspace", "write", "slow"];
const ACL_WRITE_SLOW_DANGEROUS: &[&str] = &["keyspace", "write", "slow", "dangerous"];

pub static COMMANDS: [Cmd; 13] = [
    Cmd::data("del", -2, flag::WRITE, ALL_KEYS, del).with_acl(ACL_WRITE_SLOW),
    Cmd::data("unlink", -2, W_FAST, ALL_KEYS, unlink).with_acl(ACL_WRITE_FAST),
    Cmd::data("exists", -2, RO_FAST, ALL_KEYS, exists).with_acl(ACL_READ_FAST),
    Cmd::data("type", 2, RO_FAST, KEY1, type_).with_acl(ACL_READ_FAST),
    Cmd::data("touch", -2, RO_FAST, ALL_KEYS, touch).with_acl(ACL_READ_FAST),
    Cmd::data("rename", 3, flag::WRITE, KEY12, rename).with_acl(ACL_WRITE_SLOW),
    Cmd::data("renamenx", 3, W_FAST, KEY12, renamenx).with_acl(ACL_WRITE_FAST),
    Cmd::data("copy", -3, flag::WRITE | flag::DENYOOM, KEY12, copy).with_acl(ACL_WRITE_SLOW),
    Cmd::data("move", 3, W_FAST, KEY1, move_).with_acl(ACL_WRITE_FAST),
    Cmd::data("dbsize", 1, RO_FAST | flag::ALL_SHARDS, Keys::None, dbsize).with_acl(ACL_READ_FAST),
    Cmd::data("swapdb", 3, W_FAST | flag::ALL_SHARDS, Keys::None, swapdb).with_acl(&[
        "keyspace",
        "write",
        "fast",
        "dangerous",
    ]),
    Cmd::data(
        "flushdb",
        -1,
        flag::WRITE | flag::ALL_SHARDS,
        Keys::None,
        flushdb,
    )
    .with_acl(ACL_WRITE_SLOW_DANGEROUS),
    Cmd::data(
        "flushall",
        -1,
        flag::WRITE | flag::ALL_SHARDS,
        Keys::None,
        flushall,
    )
    .with_acl(ACL_WRITE_SLOW_DANGEROUS),
];

/// Redis's `lookupKeyReadWithFlags(LOOKUP_NOTOUCH)`: lazy expiry and hit/miss statistics, but
/// the key's access time is left alone. `f` sees the entry (None when absent).
pub(crate) fn lookup_notouch<R>(
    ks: &mut Keyspace,
    key: &[u8],
    f: impl FnOnce(Option<&Entry>) -> R,
) -> R {
    let saved = ks.no_touch;
    ks.no_touch = true;
    let r = f(ks.lookup_read(key).map(|e| &*e));
    ks.no_touch = saved;
    r
}

/// DEL and UNLINK (values are freed synchronously either way).
fn del(ks: &mut Keyspace, args: &[Bytes], out: &mut Out) {
    let lazy = crate::storage::limits::lazy(&crate::storage::limits::LAZY.user_del);
    delete_keys(ks, args, out, lazy)
}

/// UNLINK: DEL whose big values are freed on the lazyfree thread.
fn unlink(ks: &mut Keyspace, args: &[Bytes], out: &mut Out) {
    delete_keys(ks, args, out, true)
}

fn delete_keys(ks: &mut Keyspace, args: &[Bytes], out: &mut Out, lazy: bool) {
    let mut deleted: u64 = 0;
    for key in &args[1..] {
        if let Some(e) = ks.remove(key) {
            if lazy {
                lazyfree::free_value(e.value);
            }
            ks.signal_modified(key);
            ks.notify('g', "del", key);
            deleted += 1;
        }
    }
    ks.dirty(deleted);
    out.int(deleted as i64);
}

/// EXISTS counts a key once per time it is named.
fn exists(ks: &mut Keyspace, args: &[Bytes], out: &mut Out) {
    let mut n = 0;
    for key in &args[1..] {
        if lookup_notouch(ks, key, |e| e.is_some()) {
            n += 1;
        }
    }
    out.int(n);
}

fn type_(ks: &mut Keyspace, args: &[Bytes], out: &mut Out) {
    let name = lookup_notouch(ks, &args[1], |e| e.map_or("none", |e| e.value.type_name()));
    out.simple(name);
}

/// TOUCH updates access times even for a client in no-touch mode (its whole point).
fn touch(ks: &mut Keyspace, args: &[Bytes], out: &mut Out) {
    let saved = ks.no_touch;
    ks.no_touch = false;
    let mut n = 0;
    for key in &args[1..] {
        if ks.lookup_read(key).is_some() {
            n += 1;
        }
    }
    ks.no_touch = saved;
    out.int(n);
}

fn rename(ks: &mut Keyspace, args: &[Bytes], out: &mut Out) {
    rename_generic(ks, args, out, false);
}

fn renamenx(ks: &mut Keyspace, args: &[Bytes], out: &mut Out) {
    rename_generic(ks, args, out, true);
}

/// RENAME and RENAMENX. The entry moves whole, so the TTL and access time go with it; the
/// destination's own TTL is dropped with its value. Both keys are declared, so a rename across
/// shards runs with both shards locked.
fn rename_generic(ks: &mut Keyspace, args: &[Bytes], out: &mut Out, nx: bool) {
    let (src, dst) = (&args[1], &args[2]);
    if ks.lookup_write(src).is_none() {
        out.error(err::NO_KEY);
        return;
    }
    let reply_ok = |out: &mut Out| if nx { out.int(1) } else { out.ok() };
    if src == dst {
        if nx {
            out.int(0);
        } else {
            out.ok();
        }
        return;
    }
    if nx && ks.lookup_write(dst).is_some() {
        out.int(0);
        return;
    }
    let Some(entry) = ks.remove(src) else {
        // Looked up a moment ago under the same lock and clock.
        out.error(err::NO_KEY);
        return;
    };
    ks.insert_entry(dst, entry);
    ks.signal_modified(src);
    ks.signal_modified(dst);
    ks.notify('g', "rename_from", src);
    ks.notify('g', "rename_to", dst);
    ks.dirty(1);
    reply_ok(out);
}

/// A DB index argument of COPY and MOVE: a C `int`, then within `databases`.
fn db_index_arg(ks: &Keyspace, arg: &[u8]) -> Result<usize, &'static str> {
    let id = parse::i32_arg(arg)?;
    usize::try_from(id)
        .ok()
        .filter(|&i| i < ks.databases())
        .ok_or(err::DB_INDEX)
}

/// Runs `f` with the keyspace switched to database `db`, then switches back.
fn in_db<R>(ks: &mut Keyspace, db: usize, f: impl FnOnce(&mut Keyspace) -> R) -> R {
    let saved = ks.db;
    ks.db = db;
    let r = f(ks);
    ks.db = saved;
    r
}

/// COPY source destination [DB n] [REPLACE]. The copy is a new value with the source's TTL
/// and a fresh access time, as Redis's `dupStringObject` and friends make.
fn copy(ks: &mut Keyspace, args: &[Bytes], out: &mut Out) {
    let (src, dst) = (&args[1], &args[2]);
    let mut replace = false;
    let mut dst_db = ks.db;
    let mut i = 3;
    while let Some(opt) = args.get(i) {
        if parse::eq(opt, "replace") {
            replace = true;
        } else if parse::eq(opt, "db") && i + 1 < args.len() {
            match db_index_arg(ks, &args[i + 1]) {
                Ok(db) => dst_db = db,
                Err(e) => return out.error(e),
            }
            i += 1;
        } else {
            return out.error(err::SYNTAX);
        }
        i += 1;
    }
    if dst_db == ks.db && src == dst {
        return out.error(err::SAME_OBJECT);
    }
    let Some(source) = ks.lookup_read(src) else {
        return out.int(0);
    };
    let mut entry = Entry::new(source.value.clone());
    entry.expire_ms = source.expire_ms;
    let copied = in_db(ks, dst_db, |ks| {
        if ks.lookup_write(dst).is_some() && !replace {
            return false;
        }
        ks.insert_entry(dst, entry);
        ks.signal_modified(dst);
        ks.notify('g', "copy_to", dst);
        true
    });
    if copied {
        ks.dirty(1);
    }
    out.int(i64::from(copied));
}

/// MOVE key db. The key keeps its slot, so source and destination are on the same shard.
fn move_(ks: &mut Keyspace, args: &[Bytes], out: &mut Out) {
    let key = &args[1];
    let dst_db = match db_index_arg(ks, &args[2]) {
        Ok(db) => db,
        Err(e) => return out.error(e),
    };
    if dst_db == ks.db {
        return out.error(err::SAME_OBJECT);
    }
    if ks.lookup_write(key).is_none() {
        return out.int(0);
    }
    if in_db(ks, dst_db, |ks| ks.lookup_write(key).is_some()) {
        return out.int(0);
    }
    let Some(entry) = ks.remove(key) else {
        return out.int(0);
    };
    ks.signal_modified(key);
    ks.notify('g', "move_from", key);
    in_db(ks, dst_db, |ks| {
        ks.insert_entry(key, entry);
        ks.signal_modified(key);
        ks.notify('g', "move_to", key);
    });
    ks.dirty(1);
    out.int(1);
}

/// Keys in the selected db, expired-but-not-yet-reclaimed ones included, as Redis counts.
fn dbsize(ks: &mut Keyspace, _args: &[Bytes], out: &mut Out) {
    out.int(ks.dbsize() as i64);
}

/// SWAPDB swaps each shard's two `Db`s: clients keep their db number and see the other data.
fn swapdb(ks: &mut Keyspace, args: &[Bytes], out: &mut Out) {
    let Ok(first) = parse::i32_arg(&args[1]) else {
        return out.error("ERR invalid first DB index");
    };
    let Ok(second) = parse::i32_arg(&args[2]) else {
        return out.error("ERR invalid second DB index");
    };
    let databases = ks.databases();
    let index = |id: i32| usize::try_from(id).ok().filter(|&i| i < databases);
    let (Some(a), Some(b)) = (index(first), index(second)) else {
        return out.error(err::DB_INDEX);
    };
    if a != b {
        ks.signal_swapped(a, b);
        for shard in ks.shards_mut() {
            shard.dbs.swap(a, b);
        }
    }
    ks.dirty(1);
    out.ok();
}

/// FLUSHDB/FLUSHALL's only argument: nothing, SYNC or ASYNC. Some(lazy) when valid: ASYNC,
/// or no argument with `lazyfree-lazy-user-flush`, frees on the lazyfree thread.
fn flush_mode(args: &[Bytes]) -> Option<bool> {
    match args.len() {
        1 => Some(crate::storage::limits::lazy(
            &crate::storage::limits::LAZY.user_flush,
        )),
        2 if parse::eq(&args[1], "sync") => Some(false),
        2 if parse::eq(&args[1], "async") => Some(true),
        _ => None,
    }
}

/// Empties a db, freeing its keys here or on the lazyfree thread. Returns the keys removed.
fn clear_db(db: &mut Db, lazy: bool) -> usize {
    if lazy {
        let old = std::mem::take(db);
        let n = old.keys;
        lazyfree::free_db(old);
        n
    } else {
        db.clear()
    }
}

fn flushdb(ks: &mut Keyspace, args: &[Bytes], out: &mut Out) {
    let Some(lazy) = flush_mode(args) else {
        return out.error(err::SYNTAX);
    };
    let index = ks.db;
    ks.signal_flushed(Some(index));
    let removed: usize = ks
        .dbs_mut(index)
        .into_iter()
        .map(|db| clear_db(db, lazy))
        .sum();
    ks.dirty(removed as u64);
    ks.force_propagation();
    out.ok();
}

fn flushall(ks: &mut Keyspace, args: &[Bytes], out: &mut Out) {
    let Some(lazy) = flush_mode(args) else {
        return out.error(err::SYNTAX);
    };
    ks.signal_flushed(None);
    let mut removed = 0;
    for shard in ks.shards_mut() {
        removed += shard
            .dbs
            .iter_mut()
            .map(|db| clear_db(db, lazy))
            .sum::<usize>();
    }
    ks.dirty(removed as u64);
    ks.force_propagation();
    out.ok();
}

/// A handler-level test bench shared by the key-family tests: a set of shards, a clock and
/// a runner that locks exactly the shards the dispatcher would.
#[cfg(test)]
pub(crate) mod harness {
    use crate::commands::{self, flag, Kind};
    use crate::protocol::Out;
    use crate::storage::{key_slot, slot_owner, Entry, Keyspace, ShardData, Value};
    use bytes::Bytes;

    /// The tests' wall clock at the start.
    pub const T0_MS: u64 = 1_700_000_000_000;

    pub struct World {
        pub shards: Vec<ShardData>,
        pub now_ms: u64,
        pub db: usize,
        pub proto: u8,
        pub no_touch: bool,
    }

    impl World {
        pub fn new(nshards: usize) -> World {
            World {
                shards: (0..nshards).map(|i| ShardData::new(i, 16)).collect(),
                now_ms: T0_MS,
                db: 0,
                proto: 2,
                no_touch: false,
            }
        }

        /// Runs a command given as space-separated words; returns the RESP reply.
        pub fn run(&mut self, line: &str) -> String {
            let args: Vec<&[u8]> = line.split_whitespace().map(str::as_bytes).collect();
            self.run_args(&args)
        }

        /// Looks the command up, checks arity as the dispatcher does, locks the shards its
        /// declared keys live on (all of them for ALL_SHARDS) and runs the handler. A handler
        /// touching an undeclared key trips the `Keyspace` debug assertion.
        pub fn run_args(&mut self, args: &[&[u8]]) -> String {
            let args: Vec<Bytes> = args.iter().map(|a| Bytes::copy_from_slice(a)).collect();
            let mut cmd = commands::lookup(&args[0]).expect("command not in the table");
            let mut full = cmd.name.to_string();
            if matches!(cmd.kind, Kind::Container) {
                let Some(name) = args.get(1) else {
                    return format!("-ERR wrong number of arguments for '{}' command\r\n", full);
                };
                let Some(sub) = cmd.find_sub(name) else {
                    return format!(
                        "-ERR unknown subcommand '{}'. Try {} HELP.\r\n",
                        String::from_utf8_lossy(name),
                        cmd.name.to_ascii_uppercase()
                    );
                };
                full = format!("{}|{}", cmd.name, sub.name);
                cmd = sub;
            }
            let argc = args.len() as i32;
            if !((cmd.arity > 0 && argc == cmd.arity) || (cmd.arity < 0 && argc >= -cmd.arity)) {
                return format!("-ERR wrong number of arguments for '{}' command\r\n", full);
            }
            let Kind::Data(handler) = cmd.kind else {
                panic!("{} is not a data command", full);
            };
            let n = self.shards.len();
            let mut ids: Vec<usize> = if cmd.flags & flag::ALL_SHARDS != 0 {
                (0..n).collect()
            } else {
                let keys = cmd.key_indices(&args);
                keys.iter()
                    .map(|&i| slot_owner(key_slot(&args[i]), n))
                    .collect()
            };
            if ids.is_empty() {
                ids.push(0);
            }
            ids.sort_unstable();
            ids.dedup();
            let mut buf = Vec::new();
            let mut parts: Vec<&mut ShardData> = self
                .shards
                .iter_mut()
                .filter(|s| ids.contains(&s.id))
                .collect();
            let mut ks = if parts.len() == 1 {
                Keyspace::one(parts.remove(0), n, self.db, self.now_ms)
            } else {
                Keyspace::many(parts, n, self.db, self.now_ms)
            };
            ks.no_touch = self.no_touch;
            handler(&mut ks, &args, &mut Out::new(&mut buf, self.proto));
            String::from_utf8(buf).expect("reply is not UTF-8")
        }

        /// Stores a string in `db` directly, with an absolute expiry (0 = none).
        pub fn put(&mut self, db: usize, key: &str, value: &str, expire_ms: u64) {
            let slot = key_slot(key.as_bytes());
            let owner = slot_owner(slot, self.shards.len());
            let mut e = Entry::new(Value::from_bytes(value.as_bytes()));
            e.expire_ms = expire_ms;
            self.shards[owner].dbs[db].insert(slot, key.as_bytes(), e);
        }

        pub fn set(&mut self, key: &str, value: &str) {
            self.put(self.db, key, value, 0);
        }

        /// The stored entry, without lazy expiry or statistics.
        pub fn entry(&mut self, db: usize, key: &str) -> Option<&mut Entry> {
            let slot = key_slot(key.as_bytes());
            let owner = slot_owner(slot, self.shards.len());
            self.shards[owner].dbs[db].get_mut(slot, key.as_bytes())
        }

        /// Keys stored in `db` over all shards (expired ones included).
        pub fn stored(&self, db: usize) -> usize {
            self.shards.iter().map(|s| s.dbs[db].keys).sum()
        }

        pub fn dirty(&self) -> u64 {
            self.shards.iter().map(|s| s.stats.dirty).sum()
        }

        pub fn hits_misses(&self) -> (u64, u64) {
            let hits = self.shards.iter().map(|s| s.stats.hits).sum();
            let misses = self.shards.iter().map(|s| s.stats.misses).sum();
            (hits, misses)
        }
    }

    /// Splits a flat array-of-bulks reply (KEYS) into its strings.
    pub fn bulks(reply: &str) -> Vec<String> {
        let mut lines = reply.split("\r\n");
        let header = lines.next().expect("empty reply");
        let n: usize = header[1..].parse().expect("not an array");
        (0..n)
            .map(|_| {
                lines.next().expect("missing bulk length");
                lines.next().expect("missing bulk").to_string()
            })
            .collect()
    }

    /// Parses a SCAN reply into its cursor and keys.
    pub fn scan_reply(reply: &str) -> (u64, Vec<String>) {
        let rest = reply.strip_prefix("*2\r\n$").expect("not a SCAN reply");
        let mut lines = rest.splitn(3, "\r\n");
        lines.next().expect("cursor length");
        let cursor = lines
            .next()
            .expect("cursor")
            .parse()
            .expect("numeric cursor");
        (cursor, bulks(lines.next().expect("keys")))
    }
}

#[cfg(test)]
mod tests {
    use super::harness::{World, T0_MS};
    use crate::storage::{key_slot, slot_owner};

    /// Keys `{prefix}0..` until one lives on each of the world's shards.
    fn keys_on_every_shard(w: &World, prefix: &str) -> Vec<String> {
        let n = w.shards.len();
        let mut found: Vec<Option<String>> = vec![None; n];
        for i in 0.. {
            let k = format!("{}{}", prefix, i);
            let owner = slot_owner(key_slot(k.as_bytes()), n);
            found[owner].get_or_insert(k);
            if found.iter().all(Option::is_some) {
                break;
            }
        }
        found.into_iter().flatten().collect()
    }

    /// Two keys on different shards of a multi-shard world.
    fn two_shard_keys(w: &World) -> (String, String) {
        let keys = keys_on_every_shard(w, "k");
        (keys[0].clone(), keys[1].clone())
    }

    #[test]
    fn del_exists_and_unlink_across_shards() {
        let mut w = World::new(2);
        let (a, b) = two_shard_keys(&w);
        w.set(&a, "1");
        w.set(&b, "2");
        let line = format!("exists {a} {b} {a} nokey");
        assert_eq!(w.run(&line), ":3\r\n");
        assert_eq!(w.run(&format!("del {a} {b} {a} nokey")), ":2\r\n");
        assert_eq!(w.run(&line), ":0\r\n");
        assert_eq!(w.stored(0), 0);
        assert_eq!(w.dirty(), 2);
        w.set(&a, "1");
        assert_eq!(w.run(&format!("unlink {a} {a}")), ":1\r\n");
        assert_eq!(
            w.run("del"),
            "-ERR wrong number of arguments for 'del' command\r\n"
        );
    }

    #[test]
    fn del_and_exists_skip_expired_keys() {
        let mut w = World::new(2);
        w.put(0, "gone", "v", T0_MS - 1);
        w.put(0, "soon", "v", T0_MS + 1);
        assert_eq!(w.run("exists gone soon"), ":1\r\n");
        assert_eq!(w.run("del gone"), ":0\r\n");
        w.now_ms += 1;
        assert_eq!(w.run("del soon"), ":0\r\n");
        assert_eq!(w.stored(0), 0);
        assert_eq!(w.dirty(), 0);
    }

    #[test]
    fn exists_type_and_object_leave_access_time_alone() {
        let mut w = World::new(1);
        w.set("k", "v");
        w.entry(0, "k").expect("stored").lru_secs = 7;
        for line in [
            "exists k",
            "type k",
            "object encoding k",
            "object idletime k",
        ] {
            w.run(line);
            assert_eq!(w.entry(0, "k").expect("stored").lru_secs, 7, "{}", line);
        }
        assert_eq!(w.hits_misses(), (4, 0));
        assert_eq!(w.run("exists nokey"), ":0\r\n");
        assert_eq!(w.hits_misses(), (4, 1));
        // TOUCH updates it, also for a client in no-touch mode.
        w.no_touch = true;
        assert_eq!(w.run("touch k k nokey"), ":2\r\n");
        assert_ne!(w.entry(0, "k").expect("stored").lru_secs, 7);
    }

    #[test]
    fn type_replies() {
        let mut w = World::new(2);
        w.set("s", "hello");
        assert_eq!(w.run("type s"), "+string\r\n");
        assert_eq!(w.run("type nokey"), "+none\r\n");
        w.put(0, "old", "v", T0_MS);
        assert_eq!(w.run("type old"), "+none\r\n");
        w.proto = 3;
        assert_eq!(w.run("type s"), "+string\r\n");
    }

    #[test]
    fn rename_across_shards_carries_the_ttl() {
        let mut w = World::new(2);
        let (a, b) = two_shard_keys(&w);
        w.put(0, &a, "v", T0_MS + 100_000);
        w.put(0, &b, "old", T0_MS + 5_000);
        assert_eq!(w.run(&format!("rename {a} {b}")), "+OK\r\n");
        assert_eq!(w.run(&format!("exists {a}")), ":0\r\n");
        assert_eq!(w.run(&format!("pttl {b}")), ":100000\r\n");
        assert_eq!(w.run(&format!("type {b}")), "+string\r\n");
        // Back again, to a key without TTL: the destination's TTL does not leak.
        w.set(&a, "x");
        assert_eq!(w.run(&format!("rename {a} {b}")), "+OK\r\n");
        assert_eq!(w.run(&format!("pttl {b}")), ":-1\r\n");
        assert_eq!(w.stored(0), 1);
        assert_eq!(w.shards.iter().map(|s| s.dbs[0].volatile).sum::<usize>(), 0);
    }

    #[test]
    fn rename_errors_and_same_key() {
        let mut w = World::new(2);
        assert_eq!(w.run("rename nokey x"), "-ERR no such key\r\n");
        assert_eq!(w.run("rename nokey nokey"), "-ERR no such key\r\n");
        assert_eq!(w.run("renamenx nokey x"), "-ERR no such key\r\n");
        w.set("a", "1");
        assert_eq!(w.run("rename a a"), "+OK\r\n");
        assert_eq!(w.run("renamenx a a"), ":0\r\n");
        w.put(0, "gone", "v", T0_MS);
        assert_eq!(w.run("rename gone x"), "-ERR no such key\r\n");
        assert_eq!(w.dirty(), 0);
    }

    #[test]
    fn renamenx_across_shards() {
        let mut w = World::new(4);
        let keys = keys_on_every_shard(&w, "r");
        let (a, b, c) = (&keys[0], &keys[1], &keys[3]);
        w.set(a, "1");
        w.set(b, "2");
        assert_eq!(w.run(&format!("renamenx {a} {b}")), ":0\r\n");
        assert_eq!(w.run(&format!("renamenx {a} {c}")), ":1\r\n");
        assert_eq!(w.run(&format!("exists {a} {b} {c}")), ":2\r\n");
        // An expired destination counts as absent.
        w.put(0, a, "3", 0);
        w.put(0, b, "old", T0_MS);
        assert_eq!(w.run(&format!("renamenx {a} {b}")), ":1\r\n");
    }

    #[test]
    fn copy_across_shards_and_dbs() {
        let mut w = World::new(2);
        let (a, b) = two_shard_keys(&w);
        w.put(0, &a, "hello", T0_MS + 100_000);
        assert_eq!(
            w.run(&format!("copy {a} {a}")),
            "-ERR source and destination objects are the same\r\n"
        );
        assert_eq!(w.run(&format!("copy nokey {b}")), ":0\r\n");
        assert_eq!(w.run(&format!("copy {a} {b}")), ":1\r\n");
        assert_eq!(w.run(&format!("copy {a} {b}")), ":0\r\n");
        assert_eq!(w.run(&format!("pttl {b}")), ":100000\r\n");
        w.set(&a, "other");
        assert_eq!(w.run(&format!("copy {a} {b} replace")), ":1\r\n");
        assert_eq!(w.run(&format!("pttl {b}")), ":-1\r\n");
        assert_eq!(w.run(&format!("copy {a} {a} db 1")), ":1\r\n");
        assert_eq!(
            w.run(&format!("copy {a} {b} DB 1 REPLACE replace")),
            ":1\r\n"
        );
        assert_eq!(w.stored(1), 2);
        assert_eq!(
            w.run(&format!("copy {a} {a} db 0")),
            "-ERR source and destination objects are the same\r\n"
        );
        // The copy is independent of the original.
        w.set(&a, "changed");
        w.db = 1;
        assert_eq!(w.run(&format!("object encoding {a}")), "$6\r\nembstr\r\n");
        assert_eq!(w.dirty(), 4);
    }

    #[test]
    fn copy_option_errors() {
        let mut w = World::new(2);
        w.set("d", "1");
        let cases = [
            ("copy d e db", "-ERR syntax error\r\n"),
            ("copy d e foo", "-ERR syntax error\r\n"),
            ("copy nokey e foo", "-ERR syntax error\r\n"),
            (
                "copy d e db x",
                "-ERR value is not an integer or out of range\r\n",
            ),
            (
                "copy d e db 99999999999",
                "-ERR value is out of range, value must between -2147483648 and 2147483647\r\n",
            ),
            ("copy d e db 16", "-ERR DB index is out of range\r\n"),
            ("copy d e db -1", "-ERR DB index is out of range\r\n"),
            (
                "copy nokey nokey",
                "-ERR source and destination objects are the same\r\n",
            ),
            ("copy d e db 0 db 16", "-ERR DB index is out of range\r\n"),
        ];
        for (line, reply) in cases {
            assert_eq!(w.run(line), reply, "{}", line);
        }
        assert_eq!(w.stored(0), 1);
    }

    #[test]
    fn move_between_dbs() {
        let mut w = World::new(2);
        w.put(0, "k", "v", T0_MS + 100_000);
        assert_eq!(
            w.run("move k 0"),
            "-ERR source and destination objects are the same\r\n"
        );
        assert_eq!(w.run("move k 16"), "-ERR DB index is out of range\r\n");
        assert_eq!(
            w.run("move k x"),
            "-ERR value is not an integer or out of range\r\n"
        );
        assert_eq!(
            w.run("move k 99999999999"),
            "-ERR value is out of range, value must between -2147483648 and 2147483647\r\n"
        );
        assert_eq!(w.run("move nokey 1"), ":0\r\n");
        assert_eq!(w.run("move k 1"), ":1\r\n");
        assert_eq!(w.run("exists k"), ":0\r\n");
        w.db = 1;
        assert_eq!(w.run("pttl k"), ":100000\r\n");
        w.db = 0;
        w.set("k", "again");
        assert_eq!(w.run("move k 1"), ":0\r\n");
        assert_eq!(w.run("exists k"), ":1\r\n");
        // An expired key in the target counts as absent.
        w.now_ms += 100_000;
        assert_eq!(w.run("move k 1"), ":1\r\n");
        assert_eq!((w.stored(0), w.stored(1)), (0, 1));
        w.db = 1;
        assert_eq!(w.run("pttl k"), ":-1\r\n");
    }

    #[test]
    fn dbsize_sums_shards() {
        let mut w = World::new(4);
        for i in 0..100 {
            w.set(&format!("key:{i}"), "v");
        }
        w.put(1, "other", "v", 0);
        assert_eq!(w.run("dbsize"), ":100\r\n");
        w.db = 1;
        assert_eq!(w.run("dbsize"), ":1\r\n");
    }

    #[test]
    fn swapdb_swaps_every_shard() {
        let mut w = World::new(2);
        let (a, b) = two_shard_keys(&w);
        w.set(&a, "1");
        w.set(&b, "2");
        w.put(1, "x", "3", T0_MS + 50_000);
        assert_eq!(w.run("swapdb 0 1"), "+OK\r\n");
        assert_eq!(w.run("dbsize"), ":1\r\n");
        assert_eq!(w.run("pttl x"), ":50000\r\n");
        w.db = 1;
        assert_eq!(w.run(&format!("exists {a} {b}")), ":2\r\n");
        assert_eq!(w.run("swapdb 1 1"), "+OK\r\n");
        assert_eq!(w.run("dbsize"), ":2\r\n");
        assert_eq!(w.dirty(), 2);
        let cases = [
            ("swapdb a 1", "-ERR invalid first DB index\r\n"),
            ("swapdb 1 a", "-ERR invalid second DB index\r\n"),
            ("swapdb 99999999999 1", "-ERR invalid first DB index\r\n"),
            ("swapdb 0 16", "-ERR DB index is out of range\r\n"),
            ("swapdb -1 0", "-ERR DB index is out of range\r\n"),
        ];
        for (line, reply) in cases {
            assert_eq!(w.run(line), reply, "{}", line);
        }
    }

    #[test]
    fn flushdb_and_flushall() {
        let mut w = World::new(2);
        for i in 0..20 {
            w.set(&format!("k{i}"), "v");
            w.put(1, &format!("k{i}"), "v", T0_MS + 10);
        }
        assert_eq!(w.run("flushdb x"), "-ERR syntax error\r\n");
        assert_eq!(w.run("flushdb sync x"), "-ERR syntax error\r\n");
        assert_eq!(w.run("flushall foo"), "-ERR syntax error\r\n");
        assert_eq!(w.run("flushdb ASYNC"), "+OK\r\n");
        assert_eq!((w.stored(0), w.stored(1)), (0, 20));
        assert_eq!(w.run("flushdb"), "+OK\r\n");
        assert_eq!(w.dirty(), 20);
        assert_eq!(w.run("flushall sync"), "+OK\r\n");
        assert_eq!(w.stored(1), 0);
        assert_eq!(w.shards.iter().map(|s| s.dbs[1].volatile).sum::<usize>(), 0);
        assert_eq!(w.dirty(), 40);
        assert_eq!(w.run("flushall"), "+OK\r\n");
    }
}
