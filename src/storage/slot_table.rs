//! One slot's keys: a hash table of thin pointers, each to one allocation holding the key's
//! `Entry` and the key bytes.
//!
//! Why this shape: a cache holds millions of small keys, so the per-key overhead decides how
//! much data fits. A `HashMap<Box<[u8]>, Entry>` costs a 16-byte key handle plus the entry in
//! every bucket, and buckets sit at 45-90 % load, so each empty bucket wastes the whole pair;
//! then the key has its own allocation. Here a bucket is one pointer (8 bytes plus hashbrown's
//! control byte), and the key lives in the same allocation as its entry:
//!
//! ```text
//! [ Entry (32 bytes) | key_len: u32 | (u64 length when key_len == u32::MAX) | key bytes ]
//! ```
//!
//! The hash is not stored: growing the table rehashes keys from their bytes, which is what
//! Redis's dict does too. Tables shrink when they fall below an eighth full (Redis resizes its
//! dicts under 10 % fill), so a slot that was emptied by deletions or eviction gives its
//! buckets back.
//!
//! `key_len` sits outside `Entry` on purpose: callers get `&mut Entry` and may replace it
//! wholesale, which must never change how the key bytes are read.

use super::db::Entry;
use hashbrown::hash_table::{Entry as TableEntry, HashTable};
use hashbrown::DefaultHashBuilder;
use std::alloc::{alloc, dealloc, handle_alloc_error, Layout};
use std::hash::BuildHasher;
use std::ptr::NonNull;
use std::sync::OnceLock;

/// `key_len` value meaning "the real length follows in eight bytes".
const LONG_KEY: u32 = u32::MAX;
const ENTRY_SIZE: usize = std::mem::size_of::<Entry>();
const KEY_LEN_SIZE: usize = std::mem::size_of::<u32>();
/// Tables at least this large shrink when an eighth full or less.
const SHRINK_BUCKETS_MIN: usize = 64;

/// The keyspace's hash of a key (one random seed per process).
pub fn key_hash(key: &[u8]) -> u64 {
    static HASHER: OnceLock<DefaultHashBuilder> = OnceLock::new();
    HASHER
        .get_or_init(DefaultHashBuilder::default)
        .hash_one(key)
}

/// A key's entry and bytes in one allocation, owned through one thin pointer.
pub struct EntryBox {
    ptr: NonNull<u8>,
}

// SAFETY: an `EntryBox` uniquely owns its allocation like a `Box`; `Entry` is Send + Sync.
unsafe impl Send for EntryBox {}
// SAFETY: shared access only reads.
unsafe impl Sync for EntryBox {}

impl EntryBox {
    /// Offset of the key bytes for a key of `len` bytes.
    fn key_offset(len: usize) -> usize {
        if len < LONG_KEY as usize {
            ENTRY_SIZE + KEY_LEN_SIZE
        } else {
            ENTRY_SIZE + KEY_LEN_SIZE + 8
        }
    }

    fn layout(key_len: usize) -> Layout {
        // The key exists in memory, so its length plus a few header bytes fits in isize.
        match Layout::from_size_align(
            Self::key_offset(key_len) + key_len,
            std::mem::align_of::<Entry>(),
        ) {
            Ok(l) => l,
            Err(_) => unreachable!("a key longer than the address space"),
        }
    }

    pub fn new(key: &[u8], entry: Entry) -> EntryBox {
        let layout = Self::layout(key.len());
        // SAFETY: the layout's size is at least ENTRY_SIZE + 4, never zero.
        let raw = unsafe { alloc(layout) };
        let Some(ptr) = NonNull::new(raw) else {
            handle_alloc_error(layout)
        };
        // SAFETY: the allocation is aligned for `Entry` and large enough for the entry, the
        // length word(s) and the key (see `layout`); every write stays inside it, and the key
        // cannot overlap a fresh allocation. The u32 at ENTRY_SIZE is 4-aligned because
        // ENTRY_SIZE is a multiple of Entry's alignment (8).
        unsafe {
            raw.cast::<Entry>().write(entry);
            let len_ptr = raw.add(ENTRY_SIZE).cast::<u32>();
            if key.len() < LONG_KEY as usize {
                len_ptr.write(key.len() as u32);
            } else {
                len_ptr.write(LONG_KEY);
                raw.add(ENTRY_SIZE + KEY_LEN_SIZE)
                    .cast::<[u8; 8]>()
                    .write_unaligned((key.len() as u64).to_le_bytes());
            }
            let offset = Self::key_offset(key.len());
            std::ptr::copy_nonoverlapping(key.as_ptr(), raw.add(offset), key.len());
        }
        EntryBox { ptr }
    }

    fn key_len(&self) -> usize {
        // SAFETY: `new` wrote the u32 at ENTRY_SIZE, and the u64 after it for long keys; these
        // bytes are private to this type and never change.
        unsafe {
            let raw = self.ptr.as_ptr();
            let short = raw.add(ENTRY_SIZE).cast::<u32>().read();
            if short != LONG_KEY {
                short as usize
            } else {
                u64::from_le_bytes(
                    raw.add(ENTRY_SIZE + KEY_LEN_SIZE)
                        .cast::<[u8; 8]>()
                        .read_unaligned(),
                ) as usize
            }
        }
    }

    pub fn key(&self) -> &[u8] {
        let len = self.key_len();
        // SAFETY: `new` copied `len` key bytes at this offset; they never change while the
        // box lives, and the borrow of `self` keeps it alive.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr().add(Self::key_offset(len)), len) }
    }

    pub fn entry(&self) -> &Entry {
        // SAFETY: an initialized Entry sits at the start of the allocation (see `new`).
        unsafe { &*self.ptr.as_ptr().cast::<Entry>() }
    }

    pub fn entry_mut(&mut self) -> &mut Entry {
        // SAFETY: as in `entry`; `&mut self` makes the borrow unique.
        unsafe { &mut *self.ptr.as_ptr().cast::<Entry>() }
    }

    /// Frees the allocation and hands the entry back.
    pub fn into_entry(self) -> Entry {
        let layout = Self::layout(self.key_len());
        let raw = self.ptr.as_ptr();
        std::mem::forget(self);
        // SAFETY: the entry is initialized; it is moved out exactly once (`self` is forgotten,
        // so Drop does not run) and the allocation is freed with the layout it was made with.
        unsafe {
            let entry = raw.cast::<Entry>().read();
            dealloc(raw, layout);
            entry
        }
    }

    /// Bytes of this allocation (before the allocator's rounding).
    pub fn alloc_len(&self) -> usize {
        Self::layout(self.key_len()).size()
    }
}

impl Drop for EntryBox {
    fn drop(&mut self) {
        let layout = Self::layout(self.key_len());
        let raw = self.ptr.as_ptr();
        // SAFETY: the entry is initialized and dropped once; the allocation is freed with the
        // layout it was made with.
        unsafe {
            std::ptr::drop_in_place(raw.cast::<Entry>());
            dealloc(raw, layout);
        }
    }
}

/// One slot's keys.
///
/// A slot holding a single key keeps it in `one`, with no hash table at all: with fewer keys
/// than slots (16384), most slots hold one key, and a table's smallest allocation would cost
/// more than the key. Invariant: `one.is_some()` implies `map` is empty.
#[derive(Default)]
pub struct SlotTable {
    one: Option<EntryBox>,
    map: HashTable<EntryBox>,
    /// Keys in the table with an expiry.
    pub volatile: usize,
}

impl std::fmt::Debug for SlotTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SlotTable")
            .field("len", &self.len())
            .field("volatile", &self.volatile)
            .finish()
    }
}

fn rehash(b: &EntryBox) -> u64 {
    key_hash(b.key())
}

impl SlotTable {
    pub fn len(&self) -> usize {
        self.map.len() + usize::from(self.one.is_some())
    }

    pub fn is_empty(&self) -> bool {
        self.one.is_none() && self.map.is_empty()
    }

    /// Adds this table's buckets and keys to `stats` (DEBUG HTSTATS): a lone key is held
    /// inline in one bucket; `volatile_only` counts only keys with a deadline.
    pub fn add_stats(&self, stats: &mut crate::storage::htstats::HtStats, volatile_only: bool) {
        let used = if volatile_only {
            self.iter().filter(|(_, e)| e.expire_ms != 0).count()
        } else {
            self.len()
        };
        let buckets = if self.one.is_some() {
            1
        } else {
            crate::storage::htstats::hashbrown_buckets(self.map.capacity())
        };
        stats.open(buckets, used as u64);
    }

    /// Buckets allocated (for memory accounting).
    pub fn capacity(&self) -> usize {
        self.map.capacity()
    }

    fn find(&self, key: &[u8]) -> Option<&EntryBox> {
        match &self.one {
            Some(b) => (b.key() == key).then_some(b),
            None => self.map.find(key_hash(key), |b| b.key() == key),
        }
    }

    fn find_mut(&mut self, key: &[u8]) -> Option<&mut EntryBox> {
        match &mut self.one {
            Some(b) => (b.key() == key).then_some(b),
            None => self.map.find_mut(key_hash(key), |b| b.key() == key),
        }
    }

    pub fn get(&self, key: &[u8]) -> Option<&Entry> {
        self.find(key).map(EntryBox::entry)
    }

    pub fn get_mut(&mut self, key: &[u8]) -> Option<&mut Entry> {
        self.find_mut(key).map(EntryBox::entry_mut)
    }

    /// The stored key bytes and entry of `key`.
    pub fn get_key_value(&self, key: &[u8]) -> Option<(&[u8], &Entry)> {
        self.find(key).map(|b| (b.key(), b.entry()))
    }

    /// Inserts or replaces with one hash lookup; returns the previous entry.
    pub fn insert(&mut self, key: &[u8], entry: Entry) -> Option<Entry> {
        if self.map.is_empty() {
            match self.one.take() {
                None => {
                    self.one = Some(EntryBox::new(key, entry));
                    return None;
                }
                Some(mut b) if b.key() == key => {
                    let old = std::mem::replace(b.entry_mut(), entry);
                    self.one = Some(b);
                    return Some(old);
                }
                Some(b) => {
                    // A second key: the slot gets a table.
                    self.map.insert_unique(rehash(&b), b, rehash);
                }
            }
        }
        match self.map.entry(key_hash(key), |b| b.key() == key, rehash) {
            TableEntry::Occupied(mut o) => Some(std::mem::replace(o.get_mut().entry_mut(), entry)),
            TableEntry::Vacant(v) => {
                v.insert(EntryBox::new(key, entry));
                None
            }
        }
    }

    pub fn remove(&mut self, key: &[u8]) -> Option<Entry> {
        if let Some(b) = &self.one {
            if b.key() != key {
                return None;
            }
            return self.one.take().map(EntryBox::into_entry);
        }
        let found = self
            .map
            .find_entry(key_hash(key), |b| b.key() == key)
            .ok()?;
        let (b, _) = found.remove();
        self.maybe_shrink();
        Some(b.into_entry())
    }

    /// The entry of `key` when `live` says it is live; otherwise removes it and returns it as
    /// `Err` (lazy expiry with one hash lookup). `Ok(None)`: absent.
    pub fn get_or_take(
        &mut self,
        key: &[u8],
        live: impl FnOnce(&Entry) -> bool,
    ) -> Result<Option<&mut Entry>, Entry> {
        if self.one.is_some() {
            let is_live = match &self.one {
                Some(b) if b.key() == key => live(b.entry()),
                _ => return Ok(None),
            };
            if is_live {
                return Ok(self.one.as_mut().map(EntryBox::entry_mut));
            }
            return match self.one.take() {
                Some(b) => Err(b.into_entry()),
                None => Ok(None),
            };
        }
        let taken = match self.map.find_entry(key_hash(key), |b| b.key() == key) {
            Err(_) => return Ok(None),
            Ok(o) if live(o.get().entry()) => {
                let p: *mut Entry = o.into_mut().entry_mut();
                // SAFETY: `p` points into an entry of this table, which `&mut self` borrows
                // for the returned lifetime; nothing else touches the table before returning
                // (a raw pointer only because the borrow checker cannot end a conditionally
                // returned borrow).
                return Ok(Some(unsafe { &mut *p }));
            }
            Ok(o) => o.remove().0,
        };
        self.maybe_shrink();
        Err(taken.into_entry())
    }

    /// Gives buckets back when the table fell to an eighth full, and the whole table when one
    /// key is left (it moves to `one`).
    fn maybe_shrink(&mut self) {
        if self.map.len() == 1 {
            let last = self.map.drain().next();
            self.map = HashTable::new();
            self.one = last;
            return;
        }
        let cap = self.map.capacity();
        if cap >= SHRINK_BUCKETS_MIN && self.map.len() * 8 <= cap {
            self.map.shrink_to(self.map.len() * 2, rehash);
        }
    }

    fn boxes(&self) -> impl Iterator<Item = &EntryBox> {
        self.one.iter().chain(self.map.iter())
    }

    pub fn iter(&self) -> impl Iterator<Item = (&[u8], &Entry)> {
        self.boxes().map(|b| (b.key(), b.entry()))
    }

    pub fn keys(&self) -> impl Iterator<Item = &[u8]> {
        self.boxes().map(EntryBox::key)
    }

    /// Keeps the entries for which `keep` returns true; the others are dropped after `keep`
    /// saw them. Returns how many were removed.
    pub fn retain(&mut self, mut keep: impl FnMut(&[u8], &mut Entry) -> bool) -> usize {
        let mut removed = 0;
        if let Some(b) = &mut self.one {
            let key: *const [u8] = b.key();
            // SAFETY: `key` points at the key bytes of `b`, disjoint from its Entry and valid
            // while `b` lives (this block).
            if !keep(unsafe { &*key }, b.entry_mut()) {
                self.one = None;
                removed += 1;
            }
        }
        let before = self.map.len();
        self.map.retain(|b| {
            let key: *const [u8] = b.key();
            // SAFETY: as above: the key bytes and the entry of one box do not overlap.
            keep(unsafe { &*key }, b.entry_mut())
        });
        let gone = before - self.map.len();
        if gone > 0 {
            self.maybe_shrink();
        }
        removed + gone
    }

    /// The `index`th entry in the table's bucket order (for sampling). `None` past the end.
    pub fn nth(&self, index: usize) -> Option<(&[u8], &Entry)> {
        self.boxes().nth(index).map(|b| (b.key(), b.entry()))
    }

    /// Bytes this table holds outside its entries' values: buckets, control bytes, and the
    /// entry allocations (key bytes included).
    pub fn overhead_bytes(&self) -> usize {
        let buckets = self.map.capacity();
        let table = if buckets == 0 {
            0
        } else {
            // hashbrown allocates buckets rounded up to a power of two (cap = 7/8 of them),
            // each 8 bytes plus one control byte, plus a group's worth of control bytes.
            let n = (buckets * 8 / 7).next_power_of_two();
            n * 9 + 16
        };
        table + self.boxes().map(EntryBox::alloc_len).sum::<usize>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::Value;

    #[test]
    fn insert_get_remove_and_shrink() {
        let mut t = SlotTable::default();
        let long_key = vec![b'k'; 300];
        assert!(t
            .insert(b"a", Entry::new(Value::from_bytes(b"1")))
            .is_none());
        assert!(t
            .insert(&long_key, Entry::new(Value::from_bytes(b"x")))
            .is_none());
        assert!(t
            .insert(b"", Entry::new(Value::from_bytes(b"empty")))
            .is_none());
        let old = t.insert(b"a", Entry::new(Value::from_bytes(b"2")));
        assert_eq!(old.map(|e| e.value), Some(Value::from_bytes(b"1")));
        assert_eq!(t.len(), 3);
        assert_eq!(
            t.get(b"a").map(|e| &e.value),
            Some(&Value::from_bytes(b"2"))
        );
        assert_eq!(t.get_key_value(&long_key).map(|(k, _)| k.len()), Some(300));
        assert_eq!(
            t.get(b"").map(|e| &e.value),
            Some(&Value::from_bytes(b"empty"))
        );
        for i in 0..1000u32 {
            t.insert(&i.to_be_bytes(), Entry::new(Value::from_bytes(b"v")));
        }
        let big = t.capacity();
        let removed = t.retain(|k, _| k.len() != 4);
        assert_eq!(removed, 1000);
        assert!(t.capacity() < big, "table shrank");
        assert_eq!(
            t.remove(b"a").map(|e| e.value),
            Some(Value::from_bytes(b"2"))
        );
        assert!(t.remove(b"a").is_none());
        let mut keys: Vec<Vec<u8>> = t.keys().map(<[u8]>::to_vec).collect();
        keys.sort();
        assert_eq!(keys, vec![b"".to_vec(), long_key.clone()]);
        let r = t.get_or_take(&long_key, |_| false);
        assert!(matches!(r, Err(e) if e.value == Value::from_bytes(b"x")));
        assert_eq!(t.len(), 1);
    }

    #[test]
    fn replacing_an_entry_keeps_the_key() {
        let mut t = SlotTable::default();
        t.insert(b"short", Entry::new(Value::from_bytes(b"1")));
        t.insert(b"a-much-longer-key", Entry::new(Value::from_bytes(b"2")));
        let a = t
            .get_mut(b"short")
            .map(|e| std::mem::replace(e, Entry::new(Value::from_bytes(b"3"))));
        assert!(a.is_some());
        assert_eq!(
            t.get(b"short").map(|e| &e.value),
            Some(&Value::from_bytes(b"3"))
        );
        assert!(t.get(b"a-much-longer-key").is_some());
    }

    #[test]
    fn a_lonely_key_needs_no_table() {
        let mut t = SlotTable::default();
        t.insert(b"a", Entry::new(Value::from_bytes(b"1")));
        assert_eq!((t.len(), t.capacity()), (1, 0));
        t.insert(b"b", Entry::new(Value::from_bytes(b"2")));
        assert_eq!(t.len(), 2);
        assert!(t.capacity() > 0);
        assert!(t.remove(b"a").is_some());
        assert_eq!(
            (t.len(), t.capacity()),
            (1, 0),
            "the last key left the table"
        );
        assert!(t.get(b"b").is_some() && t.get(b"a").is_none());
        assert!(matches!(t.get_or_take(b"b", |_| true), Ok(Some(_))));
        assert!(matches!(t.get_or_take(b"zz", |_| false), Ok(None)));
        assert!(t.get_or_take(b"b", |_| false).is_err());
        assert!(t.is_empty());
        t.insert(b"c", Entry::new(Value::from_bytes(b"3")));
        assert_eq!(t.retain(|_, _| false), 1);
        assert!(t.is_empty());
    }

    #[test]
    fn sizes() {
        assert_eq!(std::mem::size_of::<EntryBox>(), 8);
        assert_eq!(ENTRY_SIZE, 32, "Entry grew: every key pays for it");
    }
}
