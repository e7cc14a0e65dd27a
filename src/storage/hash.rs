//! The hash value type: a map of fields to values, with Redis 7.0's two encodings.
//!
//! - `listpack`: field/value pairs alternating in one packed `Listpack`, in insertion order.
//!   Lookups are linear, which is faster than hashing for the few, short entries it holds:
//!   a hash stays packed while it has at most `hash-max-listpack-entries` fields and every
//!   field and value is at most `hash-max-listpack-value` bytes.
//! - `hashtable`: the segmented hash table of `table`, once either bound is crossed.
//!
//! Conversion is one way, as in Redis: deleting fields never packs a hash again, so
//! `OBJECT ENCODING` answers what Redis would after the same commands. The decision points
//! are Redis's too: `convert_for_inputs` looks at every argument of a write before it
//! runs (`hashTypeTryConversion`), `set` converts before storing an over-long field or value
//! (HINCRBYFLOAT's path) and after an insert that passes the entry bound.
//!
//! The thresholds come in as `Limits` rather than being read inside, so the model tests can
//! drive conversions with tiny bounds; commands pass `Limits::current()`.
//!
//! Values are read back as listpack `Item`s: packed integers stay integers until a reply
//! formats them, exactly as Redis replies with `addReplyBulkLongLong` for them.

mod table;

use super::compact::{Enc, PackedOr};
use super::limits::{self, LIMITS};
use super::listpack::{self, Item, Listpack};
use std::fmt;

use table::Table;
pub use table::SEGMENT_LEN_MAX;

/// Redis's `LISTPACK_SAFETY_SIZE`: a listpack never grows past 1 GiB.
const LISTPACK_BYTES_MAX: usize = 1 << 30;

/// The `hash-max-listpack-*` thresholds in effect for one command.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    pub entries_max: usize,
    pub value_bytes_max: usize,
}

impl Limits {
    /// The configured thresholds (negative settings count as 0).
    pub fn current() -> Limits {
        let read = |v| usize::try_from(limits::get(v)).unwrap_or(0);
        Limits {
            entries_max: read(&LIMITS.hash_max_listpack_entries),
            value_bytes_max: read(&LIMITS.hash_max_listpack_value),
        }
    }
}

/// A hash value.
#[derive(Clone)]
pub struct Hash {
    /// One word: the listpack, or the boxed table (see `storage::compact`).
    enc: PackedOr<Table>,
}

impl Default for Hash {
    fn default() -> Self {
        Hash::new()
    }
}

impl Hash {
    /// An empty hash, packed (Redis's `createHashObject`).
    pub fn new() -> Hash {
        Hash {
            enc: PackedOr::packed(Listpack::new_forward()),
        }
    }

    /// The name OBJECT ENCODING reports.
    pub fn encoding(&self) -> &'static str {
        match self.enc.get() {
            Enc::Packed(_) => "listpack",
            Enc::Big(_) => "hashtable",
        }
    }

    pub fn is_packed(&self) -> bool {
        self.enc.is_packed()
    }

    /// Number of fields.
    pub fn len(&self) -> usize {
        match self.enc.get() {
            Enc::Packed(lp) => lp.len() / 2,
            Enc::Big(t) => t.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn get(&self, field: &[u8]) -> Option<Item<'_>> {
        match self.enc.get() {
            Enc::Packed(lp) => {
                let at = lp.find(0, field, 2)?;
                let value_at = lp.next(at)?;
                Some(lp.get_at(value_at).0)
            }
            Enc::Big(t) => t.get(field).map(Item::Str),
        }
    }

    pub fn contains(&self, field: &[u8]) -> bool {
        self.get(field).is_some()
    }

    /// Converts to a table before a write whose arguments include a string longer than the
    /// value bound, or whose bytes could take the listpack past its size limit
    /// (`hashTypeTryConversion`).
    pub fn convert_for_inputs<'a>(
        &mut self,
        inputs: impl IntoIterator<Item = &'a [u8]>,
        limits: &Limits,
    ) {
        let Enc::Packed(lp) = self.enc.get() else {
            return;
        };
        let packed_bytes = lp.bytes();
        let mut sum = 0usize;
        for input in inputs {
            if input.len() > limits.value_bytes_max {
                return self.convert();
            }
            sum = sum.saturating_add(input.len());
        }
        if packed_bytes.saturating_add(sum) > LISTPACK_BYTES_MAX {
            self.convert();
        }
    }

    /// Sets `field` to `value`; true when the field is new (`hashTypeSet`).
    pub fn set(&mut self, field: &[u8], value: &[u8], limits: &Limits) -> bool {
        if self.enc.is_packed()
            && (field.len() > limits.value_bytes_max || value.len() > limits.value_bytes_max)
        {
            self.convert();
        }
        match self.enc.get_mut() {
            Enc::Packed(lp) => {
                if let Some(at) = lp.find(0, field, 2) {
                    if let Some(value_at) = lp.next(at) {
                        lp.replace_at(value_at, value);
                        return false;
                    }
                }
                lp.push_back(field);
                lp.push_back(value);
                if lp.len() / 2 > limits.entries_max {
                    self.convert();
                }
                true
            }
            Enc::Big(t) => t.insert(field, value),
        }
    }

    /// Sets the pairs of one HSET-like write in order: `convert_for_inputs` on all of them
    /// first, then `set` for each. Returns how many fields were new. A packed hash that is
    /// still empty (a new key) takes its final size in one allocation instead of growing
    /// entry by entry, which also leaves less allocator fragmentation behind.
    pub fn set_all<'a, I>(&mut self, pairs: I, limits: &Limits) -> usize
    where
        I: Iterator<Item = (&'a [u8], &'a [u8])> + Clone,
    {
        self.convert_for_inputs(pairs.clone().flat_map(|(f, v)| [f, v]), limits);
        if let Enc::Packed(lp) = self.enc.get_mut() {
            if lp.is_empty() && pairs.clone().count() <= limits.entries_max {
                let bytes = pairs
                    .clone()
                    .map(|(f, v)| Listpack::entry_len(f) + Listpack::entry_len(v))
                    .sum();
                lp.reserve_exact(bytes);
            }
        }
        let created = pairs.filter(|(f, v)| self.set(f, v, limits)).count();
        if let Enc::Packed(lp) = self.enc.get_mut() {
            // Repeated fields in one command reserved more than they took.
            if lp.capacity() > lp.bytes() + lp.bytes() / 4 + 16 {
                lp.shrink_to_fit();
            }
        }
        created
    }

    /// Removes `field`; false when it was absent.
    pub fn remove(&mut self, field: &[u8]) -> bool {
        match self.enc.get_mut() {
            Enc::Packed(lp) => {
                let Some(at) = lp.find(0, field, 2) else {
                    return false;
                };
                lp.remove_range(at, 2);
                // Give memory back as Redis's listpack does (it reallocates on every delete),
                // without reallocating for every small change.
                if lp.capacity() > lp.bytes() + lp.bytes() / 4 + 16 {
                    lp.shrink_to_fit();
                }
                true
            }
            Enc::Big(t) => t.remove(field),
        }
    }

    /// Listpack → hashtable (`hashTypeConvertListpack`). A no-op for tables.
    pub fn convert(&mut self) {
        let Enc::Packed(lp) = self.enc.get() else {
            return;
        };
        let mut t = Table::with_capacity(lp.len() / 2);
        for (field, value) in PackedPairs(lp.iter()) {
            field.with_bytes(|f| value.with_bytes(|v| t.insert(f, v)));
        }
        debug_assert_eq!(t.len(), lp.len() / 2, "listpack with duplicate fields");
        self.enc = PackedOr::big(Box::new(t));
    }

    /// Every field and value: insertion order when packed, no particular order otherwise.
    pub fn iter(&self) -> Iter<'_> {
        match self.enc.get() {
            Enc::Packed(lp) => Iter::Packed(PackedPairs(lp.iter())),
            Enc::Big(t) => Iter::Table(t.iter()),
        }
    }

    /// One HSCAN step: calls `emit` for the fields returned from `cursor` and returns the
    /// next cursor. A packed hash is small, so it returns everything with cursor 0, whatever
    /// cursor was asked (as Redis does); a table follows `table::Table::scan`.
    pub fn scan<'a>(
        &'a self,
        cursor: u64,
        count: usize,
        mut emit: impl FnMut(Item<'a>, Item<'a>),
    ) -> u64 {
        match self.enc.get() {
            Enc::Packed(lp) => {
                for (f, v) in PackedPairs(lp.iter()) {
                    emit(f, v);
                }
                0
            }
            Enc::Big(t) => t.scan(cursor, count, &mut |f, v| emit(Item::Str(f), Item::Str(v))),
        }
    }

    /// A uniformly random field and its value (None when empty). For many draws from a
    /// table, `Sampler` avoids recomputing the bound each time.
    pub fn random(&self, rng: &mut Rng) -> Option<(Item<'_>, Item<'_>)> {
        Sampler::new(self).draw(self, rng)
    }

    /// Heap bytes held (requested sizes; the allocator rounds up).
    pub fn heap_bytes(&self) -> usize {
        match self.enc.get() {
            Enc::Packed(lp) => lp.capacity(),
            Enc::Big(t) => std::mem::size_of::<Table>() + t.heap_bytes(),
        }
    }

    /// The hash table's shape, or `None` for a listpack (DEBUG HTSTATS-KEY).
    pub fn table_stats(&self) -> Option<crate::storage::htstats::HtStats> {
        match self.enc.get() {
            Enc::Packed(_) => None,
            Enc::Big(t) => Some(t.stats()),
        }
    }

    /// Segment count and directory depth of a table, for tests.
    #[cfg(test)]
    fn table_shape(&self) -> Option<(usize, u32)> {
        match self.enc.get() {
            Enc::Packed(_) => None,
            Enc::Big(t) => Some(t.shape()),
        }
    }

    /// A table with tiny segments, so tests reach splits and merges with few fields.
    #[cfg(test)]
    fn with_small_segments(segment_len_max: usize) -> Hash {
        Hash::with_table_shape(segment_len_max, 20)
    }

    /// A table with tiny segments and a directory depth bound, past which segments grow.
    #[cfg(test)]
    fn with_table_shape(segment_len_max: usize, depth_max: u32) -> Hash {
        Hash {
            enc: PackedOr::big(Box::new(Table::with_shape(0, segment_len_max, depth_max))),
        }
    }
}

/// Draws uniformly random pairs from one hash that does not change meanwhile.
pub struct Sampler {
    /// A bound on a table's segment lengths (the rejection bound); unused for listpacks.
    len_max: usize,
}

impl Sampler {
    pub fn new(hash: &Hash) -> Sampler {
        let len_max = match hash.enc.get() {
            Enc::Packed(_) => 0,
            Enc::Big(t) => t.segment_len_bound(),
        };
        Sampler { len_max }
    }

    pub fn draw<'a>(&self, hash: &'a Hash, rng: &mut Rng) -> Option<(Item<'a>, Item<'a>)> {
        match hash.enc.get() {
            Enc::Packed(lp) => {
                let n = lp.len() / 2;
                if n == 0 {
                    return None;
                }
                let at = lp.offset_of(2 * rng.below(n as u64) as i64)?;
                let value_at = lp.next(at)?;
                Some((lp.get_at(at).0, lp.get_at(value_at).0))
            }
            Enc::Big(t) => t
                .random(rng, self.len_max)
                .map(|(f, v)| (Item::Str(f), Item::Str(v))),
        }
    }
}

/// Field/value pairs of a listpack holding them alternately.
pub struct PackedPairs<'a>(listpack::Iter<'a>);

impl<'a> Iterator for PackedPairs<'a> {
    type Item = (Item<'a>, Item<'a>);

    fn next(&mut self) -> Option<Self::Item> {
        let field = self.0.next()?;
        let value = self.0.next()?;
        Some((field, value))
    }
}

pub enum Iter<'a> {
    Packed(PackedPairs<'a>),
    Table(table::Iter<'a>),
}

impl<'a> Iterator for Iter<'a> {
    type Item = (Item<'a>, Item<'a>);

    fn next(&mut self) -> Option<Self::Item> {
        match self {
            Iter::Packed(it) => it.next(),
            Iter::Table(it) => it.next().map(|(f, v)| (Item::Str(f), Item::Str(v))),
        }
    }
}

/// Two hashes are equal when they map the same fields to the same values, whatever their
/// encodings.
impl PartialEq for Hash {
    fn eq(&self, other: &Hash) -> bool {
        self.len() == other.len()
            && self.iter().all(|(f, v)| {
                f.with_bytes(|f| other.get(f))
                    .is_some_and(|ov| v.with_bytes(|v| ov.eq_bytes(v)))
            })
    }
}

impl fmt::Debug for Hash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = |i: Item<'_>| String::from_utf8_lossy(&i.to_vec()).into_owned();
        write!(f, "Hash({}) ", self.encoding())?;
        f.debug_map()
            .entries(self.iter().map(|(k, v)| (text(k), text(v))))
            .finish()
    }
}

/// A small, fast pseudo-random generator (SplitMix64) for HRANDFIELD: statistically sound,
/// not for secrets. Seeded by the caller so tests are deterministic.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (0 when n is 0), without modulo bias (Lemire's method).
    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            return 0;
        }
        let threshold = n.wrapping_neg() % n;
        loop {
            let m = (self.next_u64() as u128) * (n as u128);
            if (m as u64) >= threshold {
                return (m >> 64) as u64;
            }
        }
    }
}

#[cfg(test)]
mod tests;
