//! `Keyspace`: the view a command handler runs against.
//!
//! It spans the shards the dispatcher locked for the command (one for single-shard commands,
//! several for atomic multi-shard ones, all of them for whole-keyspace commands) and routes
//! every key to its owner by slot. The same handler therefore runs unchanged inline on the
//! home shard, on another shard after a hop, or under the multi-shard transaction.
//!
//! Lookups apply lazy expiry: an expired key is deleted on access and reported absent.

use super::db::{lru_clock, Db, Entry, ShardData};
use super::{key_slot, slot_owner, Value};
use crate::replication::Op;
use bytes::Bytes;

/// What a command propagates to replicas and the AOF (see `crate::replication::feed`).
///
/// Collected only when `on` (the engine sets it when the stream has consumers). `ops` holds,
/// in order, what the execution propagated: deletions of keys found expired, extra ops a
/// handler adds (`also_propagate`), and after each command run through `Keyspace::exec` that
/// changed the dataset, its own argv or the handler's `rewrite_as` replacement.
#[derive(Default)]
pub struct Propagation {
    pub on: bool,
    pub ops: Vec<Op>,
    rewrite: Option<Vec<Bytes>>,
    suppress: bool,
    /// Propagated even without a change (`forceCommandPropagation`: FLUSHDB, FLUSHALL).
    force: bool,
}

enum Parts<'a> {
    One(&'a mut ShardData),
    /// Sorted by shard id.
    Many(Vec<&'a mut ShardData>),
}

pub struct Keyspace<'a> {
    parts: Parts<'a>,
    nshards: usize,
    /// The selected database.
    pub db: usize,
    /// The command's clock: one reading for the whole command, as Redis does.
    pub now_ms: u64,
    /// Do not update access times (CLIENT NO-TOUCH, OBJECT, TYPE...).
    pub no_touch: bool,
    /// Set by a blocking command that found nothing: the engine registers the client as a
    /// waiter on these keys while their shards are still locked.
    pub block: Option<super::blocking::BlockRequest>,
    /// The command runs inside MULTI/EXEC or a script: blocking commands must not block.
    pub no_block: bool,
    /// The command runs from a script (SORT of a set then sorts, as under STORE).
    pub in_script: bool,
    /// Keyspace events fired by the command, published by the engine after it runs.
    pub notifications: Vec<crate::pubsub::Notification>,
    /// The last short key whose slot was computed: (bytes, length, slot). Length 255 = none.
    slot_memo: ([u8; 32], u8, u16),
    /// What the execution propagates (replication and AOF).
    pub prop: Propagation,
    /// The command comes from this replica's master: on a replica (see `replica_expiry`)
    /// it sees keys whose deadline passed as live, since only the master's DEL removes them.
    pub from_master: bool,
    /// Replaying a dataset (AOF load): no key expires, and a deadline already past is set
    /// rather than deleting the key, since a later command of the file may still use it
    /// (Redis's `keyIsExpired` and `checkAlreadyExpired` while `server.loading`).
    pub loading: bool,
}

/// Set while this server is a replica: keys are never expired here, only the master's
/// DEL/UNLINK removes them. Normal clients read a key whose deadline passed as absent (without
/// deleting it); the master's commands see it as live, as Redis's `expireIfNeeded` does.
static REPLICA_EXPIRY: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

pub fn set_replica_expiry(on: bool) {
    REPLICA_EXPIRY.store(on, std::sync::atomic::Ordering::Relaxed);
}

#[inline]
pub fn replica_expiry() -> bool {
    REPLICA_EXPIRY.load(std::sync::atomic::Ordering::Relaxed)
}

impl<'a> Keyspace<'a> {
    pub fn one(shard: &'a mut ShardData, nshards: usize, db: usize, now_ms: u64) -> Self {
        Keyspace {
            parts: Parts::One(shard),
            nshards,
            db,
            now_ms,
            no_touch: false,
            block: None,
            no_block: false,
            in_script: false,
            slot_memo: ([0; 32], u8::MAX, 0),
            notifications: Vec::new(),
            prop: Propagation::default(),
            from_master: false,
            loading: false,
        }
    }

    /// A view over several locked shards (any order; they get sorted).
    pub fn many(
        mut shards: Vec<&'a mut ShardData>,
        nshards: usize,
        db: usize,
        now_ms: u64,
    ) -> Self {
        shards.sort_by_key(|s| s.id);
        Keyspace {
            parts: Parts::Many(shards),
            nshards,
            db,
            now_ms,
            no_touch: false,
            block: None,
            no_block: false,
            in_script: false,
            slot_memo: ([0; 32], u8::MAX, 0),
            notifications: Vec::new(),
            prop: Propagation::default(),
            from_master: false,
            loading: false,
        }
    }

    pub fn nshards(&self) -> usize {
        self.nshards
    }

    pub fn databases(&self) -> usize {
        match &self.parts {
            Parts::One(s) => s.dbs.len(),
            Parts::Many(v) => v.first().map_or(0, |s| s.dbs.len()),
        }
    }

    /// The locked shards, for whole-keyspace commands.
    pub fn shards_mut(&mut self) -> Vec<&mut ShardData> {
        match &mut self.parts {
            Parts::One(s) => vec![&mut **s],
            Parts::Many(v) => v.iter_mut().map(|s| &mut **s).collect(),
        }
    }

    /// Keys written since the last serve that blocked clients wait on, with their shard.
    pub fn take_ready(&mut self) -> Vec<(usize, usize, Box<[u8]>)> {
        let mut v = Vec::new();
        for s in self.shards_mut() {
            let id = s.id;
            v.extend(s.blocking.ready.drain(..).map(|(db, k)| (id, db, k)));
        }
        v
    }

    pub fn shards(&self) -> Vec<&ShardData> {
        match &self.parts {
            Parts::One(s) => vec![&**s],
            Parts::Many(v) => v.iter().map(|s| &**s).collect(),
        }
    }

    /// The shard owning `slot`. The dispatcher locked every shard a command's keys live on, so
    /// a miss here means a handler touched a key it did not declare; that is a bug in the
    /// command table, so it is reported loudly in debug builds and served by the first shard.
    fn shard_mut(&mut self, slot: u16) -> &mut ShardData {
        shard_in(&mut self.parts, self.nshards, slot)
    }

    /// Whether the view holds the shard owning `key` (false for keys of unlocked shards).
    pub fn covers(&self, key: &[u8]) -> bool {
        let owner = slot_owner(key_slot(key), self.nshards);
        match &self.parts {
            Parts::One(s) => s.id == owner,
            Parts::Many(v) => v.iter().any(|s| s.id == owner),
        }
    }

    fn db_of(&mut self, key: &[u8]) -> (&mut ShardData, u16, usize) {
        let slot = self.slot_of(key);
        let db = self.db;
        (self.shard_mut(slot), slot, db)
    }

    /// The slot of `key`, remembering the last short key: a command usually touches the same
    /// key several times (look up, then store), and comparing up to 32 bytes is much cheaper
    /// than hashing them again.
    fn slot_of(&mut self, key: &[u8]) -> u16 {
        let (buf, len, slot) = &mut self.slot_memo;
        if key.len() == *len as usize && key.len() <= buf.len() && &buf[..key.len()] == key {
            return *slot;
        }
        let s = key_slot(key);
        if key.len() <= buf.len() {
            buf[..key.len()].copy_from_slice(key);
            *len = key.len() as u8;
            *slot = s;
        }
        s
    }

    /// Deletes `key` if it has expired. Returns true when it was deleted.
    fn expire_if_needed(&mut self, key: &[u8]) -> bool {
        // On a replica only the master deletes what expired (its commands see such keys).
        if self.loading || (self.from_master && replica_expiry()) {
            return false;
        }
        let now = self.now_ms;
        let (shard, slot, db) = self.db_of(key);
        let Some(d) = shard.dbs.get_mut(db) else {
            return false;
        };
        let (_, expired) = d.get_live_mut(slot, key, now);
        if expired {
            shard.stats.expired_keys += 1;
            shard.watch.touch(db, key, false);
            if crate::tracking::active() {
                shard.tracking.key_modified(shard.id, key, 0);
            }
            self.expired(db, key);
        }
        expired
    }

    /// A key found expired and deleted: its `expired` event and its propagated deletion.
    fn expired(&mut self, db: usize, key: &[u8]) {
        if crate::pubsub::notify_enabled('x') {
            self.notifications.push(crate::pubsub::Notification {
                db,
                class: 'x',
                event: "expired",
                key: bytes::Bytes::copy_from_slice(key),
            });
        }
        if self.prop.on {
            let lazy = super::limits::lazy(&super::limits::LAZY.expire);
            self.prop.ops.push(Op::new(
                db,
                vec![del_or_unlink(lazy), Bytes::copy_from_slice(key)],
            ));
        }
    }

    /// Runs a data command's handler, recording what it propagates: its own arguments (or the
    /// handler's rewrite) when it changed the dataset, after whatever it recorded meanwhile.
    pub fn exec(
        &mut self,
        f: fn(&mut Keyspace, &[Bytes], &mut crate::protocol::Out),
        args: &[Bytes],
        out: &mut crate::protocol::Out,
    ) {
        if !self.prop.on {
            f(self, args, out);
            return;
        }
        self.prop.rewrite = None;
        self.prop.suppress = false;
        let before = self.dirty_total();
        f(self, args, out);
        let suppress = std::mem::take(&mut self.prop.suppress);
        let force = std::mem::take(&mut self.prop.force);
        let rewrite = self.prop.rewrite.take();
        if (self.dirty_total() > before || force) && !suppress {
            let argv = rewrite.unwrap_or_else(|| args.to_vec());
            self.prop.ops.push(Op::new(self.db, argv));
        }
    }

    /// Whether the execution's effects are being recorded: handlers may skip building
    /// rewrites otherwise.
    pub fn propagating(&self) -> bool {
        self.prop.on
    }

    /// Propagates the running command as `argv` instead of its own arguments (SET EX as SET
    /// PXAT, EXPIRE as PEXPIREAT, INCRBYFLOAT as SET KEEPTTL...). Has effect only when the
    /// command changes the dataset; `argv` is built only when propagating.
    pub fn rewrite_as(&mut self, argv: impl FnOnce() -> Vec<Bytes>) {
        if self.prop.on {
            self.prop.rewrite = Some(argv());
        }
    }

    /// Propagates `argv` in the selected db now, before the running command's own entry
    /// (SPOP's SREMs, a served blocked client's pop).
    pub fn also_propagate(&mut self, argv: impl FnOnce() -> Vec<Bytes>) {
        if self.prop.on {
            let db = self.db;
            self.prop.ops.push(Op::new(db, argv()));
        }
    }

    /// The running command is not propagated itself (what it did was propagated with
    /// `also_propagate`).
    pub fn suppress_propagation(&mut self) {
        self.prop.suppress = true;
    }

    /// The running command is propagated even if it changed nothing (FLUSHDB and FLUSHALL
    /// on empty databases still reach replicas and the AOF, as in Redis).
    pub fn force_propagation(&mut self) {
        self.prop.force = true;
    }

    /// Takes what was recorded.
    pub fn take_ops(&mut self) -> Vec<Op> {
        std::mem::take(&mut self.prop.ops)
    }

    /// Changes counted on the locked shards.
    pub fn dirty_total(&self) -> u64 {
        match &self.parts {
            Parts::One(s) => s.stats.dirty,
            Parts::Many(v) => v.iter().map(|s| s.stats.dirty).sum(),
        }
    }

    /// The live entry of `key` (lazy expiry applied), with one slot computation and one hash
    /// lookup; updates hit/miss statistics when `stats`, the access time when touching.
    fn live(&mut self, key: &[u8], stats: bool, touch: bool) -> Option<&mut Entry> {
        let mut now = self.now_ms;
        let slot = self.slot_of(key);
        let db = self.db;
        let from_master = self.from_master;
        let shard = shard_in(&mut self.parts, self.nshards, slot);
        let stats_ref = &mut shard.stats;
        let d = shard.dbs.get_mut(db)?;
        if self.loading {
            now = 0;
        } else if replica_expiry() {
            if !from_master && d.get(slot, key).is_some_and(|e| e.is_expired(now)) {
                if stats {
                    stats_ref.misses += 1;
                }
                return None;
            }
            // Nothing expires here: the master deletes.
            now = 0;
        }
        let (e, expired) = d.get_live_mut(slot, key, now);
        if expired {
            stats_ref.expired_keys += 1;
            shard.watch.touch(db, key, false);
            if crate::tracking::active() {
                shard.tracking.key_modified(shard.id, key, 0);
            }
            if crate::pubsub::notify_enabled('x') {
                self.notifications.push(crate::pubsub::Notification {
                    db,
                    class: 'x',
                    event: "expired",
                    key: bytes::Bytes::copy_from_slice(key),
                });
            }
            if self.prop.on {
                let lazy = super::limits::lazy(&super::limits::LAZY.expire);
                self.prop.ops.push(Op::new(
                    db,
                    vec![del_or_unlink(lazy), Bytes::copy_from_slice(key)],
                ));
            }
        }
        if stats {
            if e.is_some() {
                stats_ref.hits += 1;
            } else {
                stats_ref.misses += 1;
            }
        }
        let e = e?;
        if touch {
            e.lru_secs = lru_clock();
            if super::evict::policy().is_lfu() {
                e.lfu = super::evict::lfu_touch(e.lfu);
            }
        }
        Some(e)
    }

    /// Looks a key up for reading: lazy expiry, hit/miss statistics, access time.
    pub fn lookup_read(&mut self, key: &[u8]) -> Option<&mut Entry> {
        let touch = !self.no_touch;
        self.live(key, true, touch)
    }

    /// Looks a key up for writing: lazy expiry, no statistics.
    pub fn lookup_write(&mut self, key: &[u8]) -> Option<&mut Entry> {
        if replica_expiry() && !self.from_master {
            // A write on a writable replica deletes the logically expired key it replaces
            // (Redis's `expireIfNeeded` with `LOOKUP_WRITE`).
            self.expire_if_needed(key);
        }
        let touch = !self.no_touch;
        self.live(key, false, touch)
    }

    /// Looks a key up without touching access time or statistics (still expires it lazily).
    pub fn peek(&mut self, key: &[u8]) -> Option<&Entry> {
        self.live(key, false, false).map(|e| &*e)
    }

    /// Looks a key up with no side effect at all: no expiry, no statistics (DEBUG commands,
    /// which see logically expired keys as Redis's do).
    pub fn peek_raw(&mut self, key: &[u8]) -> Option<&Entry> {
        let (shard, slot, db) = self.db_of(key);
        shard.dbs.get(db)?.get(slot, key)
    }

    pub fn exists(&mut self, key: &[u8]) -> bool {
        self.peek(key).is_some()
    }

    /// Stores `value` under `key`, replacing any previous value and its expiry (Redis's
    /// `setKey`). Returns the previous entry.
    pub fn set(&mut self, key: &[u8], value: Value) -> Option<Entry> {
        self.insert_entry(key, Entry::new(value))
    }

    /// Stores `value` keeping the key's current expiry (KEEPTTL semantics).
    pub fn set_keep_ttl(&mut self, key: &[u8], value: Value) -> Option<Entry> {
        let expire = self.peek(key).map_or(0, |e| e.expire_ms);
        let mut entry = Entry::new(value);
        entry.expire_ms = expire;
        self.insert_entry(key, entry)
    }

    pub fn insert_entry(&mut self, key: &[u8], entry: Entry) -> Option<Entry> {
        if entry.expire_ms != 0 {
            self.remember_replica_volatile(key);
        }
        let now = self.now_ms;
        let (shard, slot, db) = self.db_of(key);
        let old = shard.dbs.get_mut(db)?.insert(slot, key, entry);
        let old = match old {
            // Replacing a key whose deadline passed: it had logically expired already.
            Some(o) if o.is_expired(now) => {
                shard.stats.expired_keys += 1;
                None
            }
            other => other,
        };
        if old.is_none() {
            // Redis's dbAdd: a key that did not exist was created.
            self.notify('n', "new", key);
        }
        old
    }

    /// A writable replica's own client gives `key` a deadline: the replica must expire it
    /// itself, its master knows nothing of it.
    fn remember_replica_volatile(&mut self, key: &[u8]) {
        if replica_expiry() && !self.from_master && !self.loading {
            let (shard, _, db) = self.db_of(key);
            shard.replica_volatile.insert((db, key.into()));
        }
    }

    /// Deletes a key (after lazy expiry). Returns the removed entry.
    pub fn remove(&mut self, key: &[u8]) -> Option<Entry> {
        self.expire_if_needed(key);
        let (shard, slot, db) = self.db_of(key);
        shard.dbs.get_mut(db)?.remove(slot, key)
    }

    /// Sets (or with 0 clears) a key's absolute expiry in ms. False when the key is absent.
    pub fn set_expire(&mut self, key: &[u8], expire_ms: u64) -> bool {
        self.expire_if_needed(key);
        if expire_ms != 0 {
            self.remember_replica_volatile(key);
        }
        let (shard, slot, db) = self.db_of(key);
        shard
            .dbs
            .get_mut(db)
            .is_some_and(|d| d.set_expire(slot, key, expire_ms))
    }

    /// Counts a change toward `dirty` (changes since the last save).
    pub fn dirty(&mut self, n: u64) {
        match &mut self.parts {
            Parts::One(s) => s.stats.dirty += n,
            Parts::Many(v) => {
                if let Some(s) = v.first_mut() {
                    s.stats.dirty += n;
                }
            }
        }
    }

    /// Records that `key` changed (WATCH invalidation hooks in here).
    pub fn signal_modified(&mut self, key: &[u8]) {
        let (shard, slot, db) = self.db_of(key);
        shard.blocking.signal(db, key);
        if crate::tracking::active() {
            shard.tracking.key_written(shard.id, key);
        }
        if !shard.watch.is_empty() {
            let exists = shard
                .dbs
                .get(db)
                .is_some_and(|d| d.get(slot, key).is_some());
            shard.watch.touch(db, key, exists);
        }
    }

    /// Records that every key of database `db` (all databases with `None`) may have changed
    /// at once: FLUSHDB, FLUSHALL, SWAPDB (WATCH invalidation hooks in here).
    ///
    /// Called before the flush: as in Redis, only watched keys that exist are touched.
    pub fn signal_flushed(&mut self, db: Option<usize>) {
        for s in self.shards_mut() {
            let ShardData {
                watch,
                dbs,
                blocking,
                ..
            } = s;
            watch.touch_replaced(|d, k| {
                db.is_none_or(|x| x == d).then(|| super::watch::Replaced {
                    existed: dbs
                        .get(d)
                        .is_some_and(|t| t.get(super::key_slot(k), k).is_some()),
                    replacement: None,
                })
            });
            blocking.signal_db(db);
        }
        self.tracking_flushed();
    }

    /// SWAPDB of `a` and `b`, called before the swap: watched keys of either database are
    /// touched by Redis's rules for a database replaced by another, and waiters on both are
    /// woken to check their keys.
    pub fn signal_swapped(&mut self, a: usize, b: usize) {
        let now = self.now_ms;
        for s in self.shards_mut() {
            let ShardData {
                watch,
                dbs,
                blocking,
                ..
            } = s;
            watch.touch_replaced(|d, k| {
                let other = if d == a {
                    b
                } else if d == b {
                    a
                } else {
                    return None;
                };
                let slot = super::key_slot(k);
                let here = dbs.get(d).and_then(|t| t.get(slot, k));
                let there = dbs.get(other).and_then(|t| t.get(slot, k));
                Some(super::watch::Replaced {
                    existed: here.is_some(),
                    replacement: Some((there.is_some(), there.is_some_and(|e| e.is_expired(now)))),
                })
            });
            blocking.signal_db(Some(a));
            blocking.signal_db(Some(b));
        }
        self.tracking_flushed();
    }

    /// A flush or swap: every tracking client is told all keys are invalid, and the locked
    /// shards' tracking tables (all shards: these commands lock them all) are emptied.
    fn tracking_flushed(&mut self) {
        if !crate::tracking::active() && crate::tracking::total_keys() == 0 {
            return;
        }
        for s in self.shards_mut() {
            s.tracking.clear();
        }
        crate::tracking::table::flushed();
    }

    /// Fires a keyspace notification (class letter, event name).
    pub fn notify(&mut self, class: char, event: &'static str, key: &[u8]) {
        if crate::pubsub::notify_enabled(class) {
            self.notifications.push(crate::pubsub::Notification {
                db: self.db,
                class,
                event,
                key: bytes::Bytes::copy_from_slice(key),
            });
        }
    }

    /// The db `index` of every locked shard.
    pub fn dbs_mut(&mut self, index: usize) -> Vec<&mut Db> {
        self.shards_mut()
            .into_iter()
            .filter_map(|s| s.dbs.get_mut(index))
            .collect()
    }

    /// Keys in the selected db across the locked shards.
    pub fn dbsize(&self) -> usize {
        let db = self.db;
        self.shards()
            .iter()
            .filter_map(|s| s.dbs.get(db))
            .map(|d| d.keys)
            .sum()
    }
}

/// `DEL` or, for lazily freed deletions, `UNLINK`: how Redis propagates a deletion.
pub fn del_or_unlink(lazy: bool) -> Bytes {
    Bytes::from_static(if lazy { b"UNLINK" } else { b"DEL" })
}

/// The locked shard owning `slot` (see `Keyspace::shard_mut`), reachable without borrowing the
/// rest of the view.
fn shard_in<'p>(parts: &'p mut Parts<'_>, nshards: usize, slot: u16) -> &'p mut ShardData {
    let owner = slot_owner(slot, nshards);
    match parts {
        Parts::One(s) => {
            debug_assert_eq!(s.id, owner, "key routed to the wrong shard");
            s
        }
        Parts::Many(v) => {
            let idx = v.iter().position(|s| s.id == owner);
            debug_assert!(idx.is_some(), "key on a shard the command did not lock");
            let idx = idx.unwrap_or(0);
            &mut *v[idx]
        }
    }
}
