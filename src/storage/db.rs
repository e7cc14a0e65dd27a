//! A shard's databases, organized by slot.
//!
//! Each slot's keys live in a `SlotTable` (see `slot_table`: one thin pointer per bucket, the
//! key and its `Entry` in one allocation).

pub use super::slot_table::SlotTable;
use super::{Value, SLOTS};

/// A key's value and metadata: 32 bytes, paid by every key (checked by a test in
/// `slot_table`).
#[derive(Clone, Debug)]
pub struct Entry {
    pub value: Value,
    /// Absolute expiry deadline in Unix milliseconds; 0 = no expiry.
    pub expire_ms: u64,
    /// Last access, in seconds of the server's LRU clock (OBJECT IDLETIME, LRU eviction).
    pub lru_secs: u32,
    /// Redis's LFU word: the minutes clock of the last decrement in the high 16 bits, the
    /// logarithmic access counter in the low 8 (OBJECT FREQ, LFU eviction).
    pub lfu: u32,
}

impl Entry {
    pub fn new(value: Value) -> Self {
        use super::evict::{shares_integers, SHARED_INTEGERS, UNSHARED_INT};
        let unshared = match &value {
            Value::Str(super::value::RStr::Int(n)) if (0..SHARED_INTEGERS).contains(n) => {
                !shares_integers()
            }
            _ => false,
        };
        Entry {
            value,
            expire_ms: 0,
            lru_secs: lru_clock(),
            lfu: super::evict::lfu_new() | if unshared { UNSHARED_INT } else { 0 },
        }
    }

    pub fn is_expired(&self, now_ms: u64) -> bool {
        self.expire_ms != 0 && self.expire_ms <= now_ms
    }
}

/// Seconds since the epoch, truncated: the clock OBJECT IDLETIME is measured on.
pub fn lru_clock() -> u32 {
    crate::util::lru_secs()
}

/// A key deleted by active expiry: its database and name.
pub type DeadKey = (usize, Box<[u8]>);

/// Slots per directory chunk (see `SlotDir`).
const CHUNK_SLOTS: usize = 16;
const CHUNKS: usize = SLOTS.div_ceil(CHUNK_SLOTS);
/// The tables of `CHUNK_SLOTS` consecutive slots.
type Chunk = [Option<Box<SlotTable>>; CHUNK_SLOTS];

/// A database's slot → table directory, in two levels: 1024 chunks of 16 slots, each chunk
/// allocated at the first key of one of its slots and freed with the last.
///
/// Why not one flat array: 16384 pointers are 128 KB per database per shard, paid at the
/// first key. That counts in `used_memory` and so against `maxmemory` (Redis's own suite sets
/// `maxmemory` 100 KB above the empty server's usage and expects more than ten keys to fit).
/// Two levels cost 8 KB at the first key plus 128 bytes per chunk holding keys, and a lookup
/// one more pointer hop in memory that is hot anyway. A chunk whose last table goes is freed
/// (`clear`), so eviction that empties slots gives their directory memory back too; FLUSHDB
/// drops the whole directory.
#[derive(Default)]
pub struct SlotDir {
    /// Empty until the first key; then `CHUNKS` cells.
    chunks: Vec<Option<Box<Chunk>>>,
}

impl SlotDir {
    pub fn get(&self, slot: usize) -> Option<&SlotTable> {
        let chunk = self.chunks.get(slot / CHUNK_SLOTS)?.as_deref()?;
        chunk.get(slot % CHUNK_SLOTS)?.as_deref()
    }

    pub fn get_mut(&mut self, slot: usize) -> Option<&mut SlotTable> {
        self.cell_mut(slot)?.as_deref_mut()
    }

    /// The cell of `slot` when its chunk exists. To drop its table, use `clear`, which frees
    /// the chunk when it was the last.
    fn cell_mut(&mut self, slot: usize) -> Option<&mut Option<Box<SlotTable>>> {
        let chunk = self.chunks.get_mut(slot / CHUNK_SLOTS)?.as_deref_mut()?;
        chunk.get_mut(slot % CHUNK_SLOTS)
    }

    /// The cell of `slot`, allocating the directory and the chunk as needed. None only for a
    /// slot out of range.
    pub fn cell_or_insert(&mut self, slot: usize) -> Option<&mut Option<Box<SlotTable>>> {
        if self.chunks.is_empty() {
            self.chunks = (0..CHUNKS).map(|_| None).collect();
        }
        let chunk = self
            .chunks
            .get_mut(slot / CHUNK_SLOTS)?
            .get_or_insert_with(|| Box::new([const { None }; CHUNK_SLOTS]));
        chunk.get_mut(slot % CHUNK_SLOTS)
    }

    /// Drops the table of `slot`, and its chunk when no other slot of it holds one.
    pub fn clear(&mut self, slot: usize) {
        let Some(cell) = self.chunks.get_mut(slot / CHUNK_SLOTS) else {
            return;
        };
        if let Some(chunk) = cell.as_deref_mut() {
            if let Some(t) = chunk.get_mut(slot % CHUNK_SLOTS) {
                *t = None;
            }
            if chunk.iter().all(Option::is_none) {
                *cell = None;
            }
        }
    }

    /// Drops the tables of the last chunk (16 slots) that still has any; false when none is
    /// left. Lets the lazyfree thread free a detached database in steps (see `lazyfree`).
    pub fn drop_last_chunk(&mut self) -> bool {
        while let Some(chunk) = self.chunks.pop() {
            if chunk.is_some() {
                drop(chunk);
                return true;
            }
        }
        false
    }

    /// Slots that hold tables, in order, starting at `from` (chunks without keys are skipped
    /// whole).
    pub fn used_from(&self, from: usize) -> impl Iterator<Item = (usize, &SlotTable)> {
        self.chunks
            .iter()
            .enumerate()
            .skip(from / CHUNK_SLOTS)
            .filter_map(|(c, chunk)| chunk.as_deref().map(|ch| (c, ch)))
            .flat_map(move |(c, chunk)| {
                chunk
                    .iter()
                    .enumerate()
                    .filter_map(move |(i, t)| t.as_deref().map(|t| (c * CHUNK_SLOTS + i, t)))
            })
            .filter(move |(slot, _)| *slot >= from)
    }
}

/// One logical database of one shard.
#[derive(Default)]
pub struct Db {
    /// Slot → table (see `SlotDir`).
    pub slots: SlotDir,
    pub keys: usize,
    pub volatile: usize,
    /// Where the active expire cycle continues (a slot index).
    pub expire_cursor: usize,
}

impl Db {
    pub fn table(&self, slot: u16) -> Option<&SlotTable> {
        self.slots.get(slot as usize)
    }

    pub fn table_mut(&mut self, slot: u16) -> Option<&mut SlotTable> {
        self.slots.get_mut(slot as usize)
    }

    pub fn get(&self, slot: u16, key: &[u8]) -> Option<&Entry> {
        self.table(slot).and_then(|t| t.get(key))
    }

    pub fn get_mut(&mut self, slot: u16, key: &[u8]) -> Option<&mut Entry> {
        self.table_mut(slot).and_then(|t| t.get_mut(key))
    }

    /// Inserts or replaces with one hash lookup; returns the previous entry.
    pub fn insert(&mut self, slot: u16, key: &[u8], entry: Entry) -> Option<Entry> {
        let volatile = entry.expire_ms != 0;
        let cell = self.slots.cell_or_insert(slot as usize)?;
        let table = cell.get_or_insert_with(Default::default);
        let old = table.insert(key, entry);
        let was_volatile = old.as_ref().is_some_and(|e| e.expire_ms != 0);
        if old.is_none() {
            self.keys += 1;
        }
        match (was_volatile, volatile) {
            (false, true) => {
                table.volatile += 1;
                self.volatile += 1;
            }
            (true, false) => {
                table.volatile -= 1;
                self.volatile -= 1;
            }
            _ => {}
        }
        old
    }

    /// The live entry of `key` with one hash lookup: an entry whose deadline passed is
    /// deleted first (lazy expiry). The flag tells whether that happened.
    pub fn get_live_mut(
        &mut self,
        slot: u16,
        key: &[u8],
        now_ms: u64,
    ) -> (Option<&mut Entry>, bool) {
        let Some(table) = self.slots.get_mut(slot as usize) else {
            return (None, false);
        };
        let found = match table.get_or_take(key, |e| !e.is_expired(now_ms)) {
            Ok(None) => return (None, false),
            // SAFETY: the pointer comes from the table this function borrows mutably for the
            // returned lifetime, and nothing touches the table after it was taken (a raw
            // pointer only because the borrow checker cannot end a conditionally returned
            // borrow).
            Ok(Some(e)) => Ok(e as *mut Entry),
            Err(old) => Err(old),
        };
        match found {
            Ok(p) => (Some(unsafe { &mut *p }), false),
            Err(old) => {
                self.keys -= 1;
                if old.expire_ms != 0 {
                    table.volatile -= 1;
                    self.volatile -= 1;
                }
                let empty = table.is_empty();
                if empty {
                    self.slots.clear(slot as usize);
                }
                (None, true)
            }
        }
    }

    pub fn remove(&mut self, slot: u16, key: &[u8]) -> Option<Entry> {
        let table = self.slots.get_mut(slot as usize)?;
        let old = table.remove(key)?;
        self.keys -= 1;
        if old.expire_ms != 0 {
            table.volatile -= 1;
            self.volatile -= 1;
        }
        let empty = table.is_empty();
        if empty {
            self.slots.clear(slot as usize);
        }
        Some(old)
    }

    /// Sets or clears (0) a key's expiry, keeping the volatile counts right. Returns false when
    /// the key is absent.
    pub fn set_expire(&mut self, slot: u16, key: &[u8], expire_ms: u64) -> bool {
        let Some(table) = self.table_mut(slot) else {
            return false;
        };
        let Some(e) = table.get_mut(key) else {
            return false;
        };
        let was = e.expire_ms != 0;
        e.expire_ms = expire_ms;
        match (was, expire_ms != 0) {
            (false, true) => {
                table.volatile += 1;
                self.volatile += 1;
            }
            (true, false) => {
                table.volatile -= 1;
                self.volatile -= 1;
            }
            _ => {}
        }
        true
    }

    pub fn clear(&mut self) -> usize {
        let n = self.keys;
        *self = Db::default();
        n
    }

    /// Slots that hold keys, in order, starting at `from`.
    pub fn used_slots_from(&self, from: usize) -> impl Iterator<Item = (usize, &SlotTable)> {
        self.slots.used_from(from)
    }
}

/// Counters a shard keeps about its keyspace (summed over shards for INFO stats).
#[derive(Default, Debug, Clone)]
pub struct KeyspaceStats {
    pub hits: u64,
    pub misses: u64,
    pub expired_keys: u64,
    /// Keys deleted by maxmemory eviction.
    pub evicted_keys: u64,
    /// Changes since the last save (Redis's `dirty`).
    pub dirty: u64,
    pub expire_cycle_cpu_ms: u64,
}

/// Everything one shard owns.
pub struct ShardData {
    pub id: usize,
    pub dbs: Vec<Db>,
    pub stats: KeyspaceStats,
    /// Statistics of the commands this shard ran (kept here, under the lock a command holds
    /// anyway, so counting costs no extra synchronization).
    pub cmd_stats: crate::server::stats::CommandStats,
    /// Clients blocked on keys of this shard.
    pub blocking: super::blocking::Registry,
    /// Clients watching keys of this shard.
    pub watch: super::watch::Registry,
    /// maxmemory's eviction pool (see `evict`).
    pub evict_pool: super::evict::Pool,
    /// Client-side caching: who read which key of this shard (see `tracking`).
    pub tracking: crate::tracking::Table,
    /// Keys a writable replica's own clients gave a deadline: the replica expires them itself
    /// (`replication::replica::expire_written_keys`), as Redis's `slaveKeysWithExpire`.
    pub replica_volatile: std::collections::HashSet<DeadKey>,
}

impl ShardData {
    pub fn new(id: usize, databases: usize) -> Self {
        ShardData {
            id,
            dbs: (0..databases.max(1)).map(|_| Db::default()).collect(),
            stats: KeyspaceStats::default(),
            cmd_stats: Default::default(),
            blocking: Default::default(),
            watch: Default::default(),
            evict_pool: Default::default(),
            tracking: Default::default(),
            replica_volatile: Default::default(),
        }
    }

    /// One step of the active expire cycle: visits slots with volatile keys from each db's
    /// cursor, deleting expired keys, until `budget_keys` keys were examined. Returns the
    /// number of keys deleted; their names go to `dead` when given (for the `expired` event
    /// and the propagated deletions).
    pub fn active_expire(
        &mut self,
        now_ms: u64,
        budget_keys: usize,
        mut dead: Option<&mut Vec<DeadKey>>,
    ) -> usize {
        let mut examined = 0;
        let mut deleted = 0;
        for (db_index, db) in self.dbs.iter_mut().enumerate() {
            if db.volatile == 0 {
                continue;
            }
            let mut visited = 0;
            while visited < SLOTS && examined < budget_keys {
                let slot = db.expire_cursor;
                db.expire_cursor = (db.expire_cursor + 1) % SLOTS;
                visited += 1;
                let Some(table) = db.slots.get_mut(slot) else {
                    continue;
                };
                if table.volatile == 0 {
                    continue;
                }
                examined += table.len();
                let tracking = crate::tracking::active();
                let watched = !self.watch.is_empty() || dead.is_some() || tracking;
                let mut dead_keys: Vec<Box<[u8]>> = Vec::new();
                let n = table.retain(|k, e| {
                    let dead = e.is_expired(now_ms);
                    if dead && watched {
                        dead_keys.push(k.into());
                    }
                    !dead
                });
                for k in &dead_keys {
                    self.watch.touch(db_index, k, false);
                    if tracking {
                        self.tracking.key_modified(self.id, k, 0);
                    }
                }
                if let Some(d) = dead.as_deref_mut() {
                    d.extend(dead_keys.into_iter().map(|k| (db_index, k)));
                }
                // Only volatile keys can expire.
                table.volatile -= n;
                db.volatile -= n;
                db.keys -= n;
                deleted += n;
                if table.is_empty() {
                    db.slots.clear(slot);
                }
            }
        }
        self.stats.expired_keys += deleted as u64;
        deleted
    }
}
