//! `RankedSet`: the large sorted set encoding (Redis's `skiplist`, a dict plus a skiplist).
//!
//! Three parts, each element stored once:
//! - `slots`: the members and their scores, addressed by a `u32` id. A freed slot joins a free
//!   list threaded through the slots (its score is a NaN carrying the next free id — real
//!   scores are never NaN), so ids are recycled and the vector only grows to the peak size.
//! - `index`: a hash table of ids, hashed and compared by their slot's member bytes: member to
//!   score in O(1), as Redis's dict.
//! - `tree`: the order-statistic B+tree of `(score, id)` in (score, member) order: ranks, range
//!   starts and ordered walks in O(log n), as Redis's skiplist.
//!
//! Per element that is a 24-byte slot, the member's own allocation, 5 bytes of hash table
//! (at its load factor) and 12 bytes of tree leaf (at its fill): roughly 60 bytes for a short
//! member, where Redis spends about 100 (dict entry, bucket, sds, skiplist node).
//!
//! ZSCAN walks the slots in id order. An id does not change while its member stays in the
//! set, so every member present for a whole scan is returned exactly once (Redis's guarantee,
//! without its duplicates). The price: slots are never compacted, so a set that shrinks keeps
//! its peak slot vector until it is deleted or rewritten.

use super::tree::{self, Key, Tree};
use hashbrown::{DefaultHashBuilder, HashTable};
use std::cmp::Ordering;
use std::hash::BuildHasher;
use std::sync::OnceLock;

/// "No slot": the end of the free list.
const NO_SLOT: u32 = u32::MAX;
/// A quiet NaN; a free slot's score is this with the next free id in the low 32 bits.
const FREE_TAG: u64 = 0x7ff8_0000_0000_0000;

#[derive(Clone, Debug)]
struct Slot {
    member: Box<[u8]>,
    score: f64,
}

impl Slot {
    fn is_free(&self) -> bool {
        self.score.is_nan()
    }

    fn next_free(&self) -> u32 {
        self.score.to_bits() as u32
    }
}

/// One hasher for every set of the process, randomly keyed at start-up.
fn hash(member: &[u8]) -> u64 {
    static HASHER: OnceLock<DefaultHashBuilder> = OnceLock::new();
    HASHER
        .get_or_init(DefaultHashBuilder::default)
        .hash_one(member)
}

/// The (score, member) order of two live slots.
fn compare(slots: &[Slot], a: Key, b: Key) -> Ordering {
    if a.id == b.id {
        return Ordering::Equal;
    }
    a.score
        .partial_cmp(&b.score)
        .unwrap_or(Ordering::Equal)
        .then_with(|| {
            slots[a.id as usize]
                .member
                .cmp(&slots[b.id as usize].member)
        })
}

#[derive(Clone, Debug, Default)]
pub struct RankedSet {
    slots: Vec<Slot>,
    free_head: Option<u32>,
    index: HashTable<u32>,
    tree: Tree,
}

impl PartialEq for RankedSet {
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len() && self.iter_from(0, false).eq(other.iter_from(0, false))
    }
}

impl RankedSet {
    pub fn new() -> RankedSet {
        RankedSet {
            slots: Vec::new(),
            free_head: None,
            index: HashTable::new(),
            tree: Tree::new(),
        }
    }

    /// A set sized for `n` elements.
    pub fn with_capacity(n: usize) -> RankedSet {
        RankedSet {
            slots: Vec::with_capacity(n),
            free_head: None,
            index: HashTable::with_capacity(n),
            tree: Tree::new(),
        }
    }

    pub fn len(&self) -> usize {
        self.tree.len()
    }

    /// The member index's shape (DEBUG HTSTATS-KEY).
    pub fn index_stats(&self) -> crate::storage::htstats::HtStats {
        let mut stats = crate::storage::htstats::HtStats::default();
        let buckets = crate::storage::htstats::hashbrown_buckets(self.index.capacity());
        stats.open(buckets, self.index.len() as u64);
        stats
    }

    pub fn is_empty(&self) -> bool {
        self.tree.is_empty()
    }

    fn find(&self, member: &[u8]) -> Option<u32> {
        let slots = &self.slots;
        self.index
            .find(hash(member), |&id| &*slots[id as usize].member == member)
            .copied()
    }

    pub fn score(&self, member: &[u8]) -> Option<f64> {
        self.find(member).map(|id| self.slots[id as usize].score)
    }

    /// Takes a slot for a new element (a recycled one when any is free).
    fn alloc(&mut self, member: &[u8], score: f64) -> u32 {
        let slot = Slot {
            member: member.into(),
            score,
        };
        match self.free_head {
            Some(id) => {
                let next = self.slots[id as usize].next_free();
                self.free_head = (next != NO_SLOT).then_some(next);
                self.slots[id as usize] = slot;
                id
            }
            None => {
                // Grow by an eighth rather than doubling: the slot vector is the largest
                // part of the set, and amortized O(1) holds for any constant factor.
                if self.slots.len() == self.slots.capacity() {
                    self.slots.reserve_exact((self.slots.len() / 8).max(4));
                }
                // Ids are u32: a set would need hundreds of gigabytes to run out.
                let id = u32::try_from(self.slots.len()).unwrap_or(NO_SLOT - 1);
                self.slots.push(slot);
                id
            }
        }
    }

    fn release(&mut self, id: u32) {
        let next = self.free_head.unwrap_or(NO_SLOT);
        self.slots[id as usize] = Slot {
            member: Box::default(),
            score: f64::from_bits(FREE_TAG | u64::from(next)),
        };
        self.free_head = Some(id);
    }

    /// Adds a member that is not in the set.
    pub fn insert(&mut self, member: &[u8], score: f64) {
        debug_assert!(!score.is_nan());
        debug_assert!(self.find(member).is_none());
        let id = self.alloc(member, score);
        let slots = &self.slots;
        self.index
            .insert_unique(hash(member), id, |&id| hash(&slots[id as usize].member));
        self.tree
            .insert(Key { score, id }, &|a, b| compare(slots, a, b));
    }

    /// Appends a member that sorts after every element present (bulk building from sorted
    /// input).
    pub fn push_back(&mut self, member: &[u8], score: f64) {
        let id = self.alloc(member, score);
        let slots = &self.slots;
        self.index
            .insert_unique(hash(member), id, |&id| hash(&slots[id as usize].member));
        self.tree.push_back(Key { score, id });
    }

    /// Moves a present member to a new score.
    pub fn set_score(&mut self, member: &[u8], score: f64) {
        let Some(id) = self.find(member) else {
            return;
        };
        let old = Key {
            score: self.slots[id as usize].score,
            id,
        };
        let slots = &self.slots;
        let removed = self.tree.remove(old, &|a, b| compare(slots, a, b));
        debug_assert!(removed);
        self.slots[id as usize].score = score;
        let slots = &self.slots;
        self.tree
            .insert(Key { score, id }, &|a, b| compare(slots, a, b));
    }

    /// Removes a member; returns its score.
    pub fn remove(&mut self, member: &[u8]) -> Option<f64> {
        let slots = &self.slots;
        let entry = self
            .index
            .find_entry(hash(member), |&id| &*slots[id as usize].member == member)
            .ok()?;
        let (id, _) = entry.remove();
        let score = self.slots[id as usize].score;
        let slots = &self.slots;
        let removed = self
            .tree
            .remove(Key { score, id }, &|a, b| compare(slots, a, b));
        debug_assert!(removed);
        self.release(id);
        Some(score)
    }

    /// Removes the element at `rank`; returns it.
    pub fn remove_at(&mut self, rank: usize) -> Option<(Box<[u8]>, f64)> {
        let key = self.tree.get(rank)?;
        let id = key.id;
        let h = hash(&self.slots[id as usize].member);
        if let Ok(entry) = self.index.find_entry(h, |&x| x == id) {
            entry.remove();
        }
        let slots = &self.slots;
        let removed = self.tree.remove(key, &|a, b| compare(slots, a, b));
        debug_assert!(removed);
        let member = std::mem::take(&mut self.slots[id as usize].member);
        self.release(id);
        Some((member, key.score))
    }

    /// The 0-based rank of a member.
    pub fn rank(&self, member: &[u8]) -> Option<usize> {
        let id = self.find(member)?;
        let key = Key {
            score: self.slots[id as usize].score,
            id,
        };
        let slots = &self.slots;
        self.tree.rank(key, &|a, b| compare(slots, a, b))
    }

    /// The element at `rank`.
    pub fn get(&self, rank: usize) -> Option<(&[u8], f64)> {
        let key = self.tree.get(rank)?;
        Some((&self.slots[key.id as usize].member, key.score))
    }

    /// Walks from `rank` toward the end (toward the start when `rev`).
    pub fn iter_from(&self, rank: usize, rev: bool) -> Iter<'_> {
        Iter {
            slots: &self.slots,
            keys: self.tree.iter_from(rank, rev),
        }
    }

    /// The number of leading elements for which `pred(member, score)` holds (a monotone
    /// predicate: a score or lex bound).
    pub fn partition_point(&self, pred: impl Fn(&[u8], f64) -> bool) -> usize {
        let slots = &self.slots;
        self.tree
            .partition_point(|k| pred(&slots[k.id as usize].member, k.score))
    }

    /// One step of ZSCAN: the live elements of slots `cursor..`, at least `count` of them
    /// unless the slots run out. Returns the cursor to continue from (0 when done).
    pub fn scan(&self, cursor: u64, count: usize, mut f: impl FnMut(&[u8], f64)) -> u64 {
        let Ok(mut i) = usize::try_from(cursor) else {
            return 0;
        };
        let mut found = 0;
        while i < self.slots.len() {
            if found >= count {
                return i as u64;
            }
            let slot = &self.slots[i];
            if !slot.is_free() {
                f(&slot.member, slot.score);
                found += 1;
            }
            i += 1;
        }
        0
    }

    /// Heap bytes held (for memory accounting): slots, members, hash table and tree.
    pub fn heap_bytes(&self) -> usize {
        self.slots.capacity() * std::mem::size_of::<Slot>()
            + self.slots.iter().map(|s| s.member.len()).sum::<usize>()
            + self.index.allocation_size()
            + self.tree.heap_bytes()
    }

    /// Verifies the three parts agree (tests).
    #[cfg(test)]
    pub fn check(&self) {
        let slots = &self.slots;
        self.tree.check(&|a, b| compare(slots, a, b));
        let live = self.slots.iter().filter(|s| !s.is_free()).count();
        assert_eq!(live, self.len());
        assert_eq!(self.index.len(), self.len());
        for (rank, (member, score)) in self.iter_from(0, false).enumerate() {
            assert_eq!(self.score(member), Some(score));
            assert_eq!(self.rank(member), Some(rank));
        }
        let mut free = 0;
        let mut next = self.free_head;
        while let Some(id) = next {
            assert!(self.slots[id as usize].is_free());
            free += 1;
            let n = self.slots[id as usize].next_free();
            next = (n != NO_SLOT).then_some(n);
        }
        assert_eq!(free + live, self.slots.len());
    }
}

/// Elements in rank order (either direction) with their scores.
pub struct Iter<'a> {
    slots: &'a [Slot],
    keys: tree::Iter<'a>,
}

impl<'a> Iterator for Iter<'a> {
    type Item = (&'a [u8], f64);

    fn next(&mut self) -> Option<(&'a [u8], f64)> {
        let key = self.keys.next()?;
        Some((&self.slots[key.id as usize].member, key.score))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.keys.size_hint()
    }
}
