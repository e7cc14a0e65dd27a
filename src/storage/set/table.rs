//! `MemberTable`: the hashtable encoding of a set, a chained hash table over a dense array.
//!
//! Layout. Members live in one dense `Vec<Slot>` (member bytes, a 32-bit hash, and the index
//! of the next slot in the same bucket's chain). `buckets` is a power-of-two array of slot
//! indices heading each chain (`NIL` when empty). A slot is 24 bytes and a bucket 4, so with
//! the load factor kept between 1/2 and 1 a member costs about 28–32 bytes of table plus its
//! own heap allocation; Redis spends a 24-byte `dictEntry` (32 after jemalloc's rounding), an
//! 8-byte bucket pointer per bucket and an sds header for the same member.
//!
//! Why not `hashbrown`: SSCAN needs a cursor with Redis's guarantee (every member present from
//! the first call to the last is returned at least once, even when the table grows or shrinks
//! in between), and SRANDMEMBER/SPOP need uniformly random members. Both fall out of this
//! layout: the cursor is Redis's reverse-binary bucket cursor (`dictScan`) over `buckets`,
//! which is a plain single table rehashed at once, never incrementally; a random member is
//! `slots[uniform index]`, exactly uniform (Redis's own `dictGetFairRandomKey` is only
//! approximately so).
//!
//! Removal unlinks the slot from its chain and moves the last slot into the hole (fixing the
//! one link that pointed at it), so slots stay dense. The stored hash makes chain walks cheap
//! (bytes are compared only on a hash match) and lets a resize rebuild chains without
//! rehashing members.
//!
//! Bounds: slot indices are `u32`, so a table holds at most `MEMBERS_MAX` members; `insert`
//! reports `Full` beyond that instead of corrupting anything.

use std::hash::BuildHasher;
use std::sync::OnceLock;

/// The largest number of members one table holds (`u32::MAX` is the chain terminator).
pub const MEMBERS_MAX: usize = (u32::MAX - 1) as usize;

/// Buckets of the smallest non-empty table (Redis's `DICT_HT_INITIAL_SIZE`).
const BUCKETS_MIN: usize = 4;

/// Shrink the bucket array when fewer than one bucket in `FILL_MIN_DIV` is used (Redis's
/// `HASHTABLE_MIN_FILL` of 10 %).
const FILL_MIN_DIV: usize = 10;

const NIL: u32 = u32::MAX;

/// The set is at `MEMBERS_MAX` members.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Full;

#[derive(Clone, Debug)]
struct Slot {
    member: Box<[u8]>,
    hash: u32,
    next: u32,
}

#[derive(Clone, Debug, Default)]
pub struct MemberTable {
    slots: Vec<Slot>,
    /// Empty, or a power of two at least `slots.len()`.
    buckets: Box<[u32]>,
}

/// One process-wide seeded hasher: a seed unknown to clients keeps chains short against
/// chosen members, as Redis's siphash seed does.
fn hash32(member: &[u8]) -> u32 {
    static HASHER: OnceLock<hashbrown::DefaultHashBuilder> = OnceLock::new();
    let h = HASHER.get_or_init(Default::default).hash_one(member);
    (h ^ (h >> 32)) as u32
}

impl MemberTable {
    pub fn new() -> Self {
        Self::default()
    }

    /// A table presized for `n` members.
    pub fn with_capacity(n: usize) -> Self {
        let mut t = MemberTable {
            slots: Vec::with_capacity(n.min(MEMBERS_MAX)),
            buckets: Box::default(),
        };
        if n > 0 {
            t.rebuild(n.min(MEMBERS_MAX).next_power_of_two().max(BUCKETS_MIN));
        }
        t
    }

    pub fn len(&self) -> usize {
        self.slots.len()
    }

    /// The bucket array's shape, chain by chain (DEBUG HTSTATS-KEY).
    pub fn chain_stats(&self) -> crate::storage::htstats::HtStats {
        let mut stats = crate::storage::htstats::HtStats::default();
        for &head in self.buckets.iter() {
            let mut len = 0;
            let mut cur = head;
            while cur != NIL {
                len += 1;
                cur = self.slots[cur as usize].next;
            }
            stats.bucket(len);
        }
        stats
    }

    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// Heap bytes held by the table (slots, buckets and member allocations' payload).
    pub fn heap_bytes(&self) -> usize {
        let members: usize = self.slots.iter().map(|s| s.member.len()).sum();
        self.slots.capacity() * std::mem::size_of::<Slot>() + self.buckets.len() * 4 + members
    }

    fn mask(&self) -> usize {
        self.buckets.len().wrapping_sub(1)
    }

    fn bucket_of(&self, hash: u32) -> usize {
        hash as usize & self.mask()
    }

    fn find(&self, member: &[u8], hash: u32) -> Option<usize> {
        if self.buckets.is_empty() {
            return None;
        }
        let mut cur = self.buckets[self.bucket_of(hash)];
        while cur != NIL {
            let s = &self.slots[cur as usize];
            if s.hash == hash && *s.member == *member {
                return Some(cur as usize);
            }
            cur = s.next;
        }
        None
    }

    pub fn contains(&self, member: &[u8]) -> bool {
        self.find(member, hash32(member)).is_some()
    }

    /// Adds a member. `Ok(false)` when it was already present.
    pub fn insert(&mut self, member: &[u8]) -> Result<bool, Full> {
        let hash = hash32(member);
        if self.find(member, hash).is_some() {
            return Ok(false);
        }
        let idx = self.slots.len();
        if idx >= MEMBERS_MAX {
            return Err(Full);
        }
        if idx + 1 > self.buckets.len() {
            self.rebuild((idx + 1).next_power_of_two().max(BUCKETS_MIN));
        }
        if self.slots.len() == self.slots.capacity() {
            // Grow by a quarter rather than doubling: less slack per member, still
            // amortized O(1).
            self.slots.reserve_exact((idx / 4).max(BUCKETS_MIN));
        }
        let b = self.bucket_of(hash);
        self.slots.push(Slot {
            member: member.into(),
            hash,
            next: self.buckets[b],
        });
        self.buckets[b] = idx as u32;
        Ok(true)
    }

    /// Removes a member. False when absent.
    pub fn remove(&mut self, member: &[u8]) -> bool {
        match self.find(member, hash32(member)) {
            Some(idx) => {
                self.remove_at(idx);
                true
            }
            None => false,
        }
    }

    /// The member in slot `i` (slots are dense: `0..len()`).
    pub fn get(&self, i: usize) -> Option<&[u8]> {
        self.slots.get(i).map(|s| &*s.member)
    }

    /// Removes the member in slot `i` and returns it; the last slot moves into `i`.
    pub fn remove_at(&mut self, i: usize) -> Option<Box<[u8]>> {
        if i >= self.slots.len() {
            return None;
        }
        self.relink(i as u32, self.slots[i].next);
        let last = self.slots.len() - 1;
        let removed = self.slots.swap_remove(i);
        if i != last {
            // The slot that was last now lives at `i`: repoint the link that named it.
            self.relink(last as u32, i as u32);
        }
        self.shrink_if_sparse();
        Some(removed.member)
    }

    /// Replaces the link to slot `from` in its bucket's chain by `to`. Slot `from`'s hash
    /// must still be readable: at `from` itself, or at `to` once it moved there.
    fn relink(&mut self, from: u32, to: u32) {
        let at = if (from as usize) < self.slots.len() {
            from
        } else {
            to
        };
        let b = self.bucket_of(self.slots[at as usize].hash);
        if self.buckets[b] == from {
            self.buckets[b] = to;
            return;
        }
        let mut cur = self.buckets[b];
        while cur != NIL {
            let s = &mut self.slots[cur as usize];
            if s.next == from {
                s.next = to;
                return;
            }
            cur = s.next;
        }
        debug_assert!(false, "slot {from} missing from its chain");
    }

    fn shrink_if_sparse(&mut self) {
        let n = self.slots.len();
        if self.buckets.len() > BUCKETS_MIN && n * FILL_MIN_DIV < self.buckets.len() {
            self.rebuild(n.next_power_of_two().max(BUCKETS_MIN));
        }
        if self.slots.capacity() > 2 * n + BUCKETS_MIN {
            self.slots.shrink_to(n + n / 4);
        }
    }

    /// Replaces the bucket array by one of `size` buckets (a power of two) and relinks every
    /// slot from its stored hash.
    fn rebuild(&mut self, size: usize) {
        debug_assert!(size.is_power_of_two() && size >= self.slots.len());
        self.buckets = vec![NIL; size].into_boxed_slice();
        let mask = size - 1;
        for (i, s) in self.slots.iter_mut().enumerate() {
            let b = s.hash as usize & mask;
            s.next = self.buckets[b];
            self.buckets[b] = i as u32;
        }
    }

    /// Members in slot order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = &[u8]> + '_ {
        self.slots.iter().map(|s| &*s.member)
    }

    /// One step of SSCAN: calls `visit` for every member of the bucket `cursor` names and
    /// returns the next cursor (0 when the scan is complete). This is Redis's `dictScan` for
    /// a single table: the cursor's bits under the mask are incremented in reverse order, so
    /// after a resize to any power of two the buckets still to visit cover exactly the
    /// members not yet seen (a shrink may repeat some, never skip one).
    pub fn scan_bucket<'a>(&'a self, cursor: u64, mut visit: impl FnMut(&'a [u8])) -> u64 {
        if self.buckets.is_empty() {
            return 0;
        }
        let mask = self.mask() as u64;
        let mut cur = self.buckets[(cursor & mask) as usize];
        while cur != NIL {
            let s = &self.slots[cur as usize];
            visit(&s.member);
            cur = s.next;
        }
        let mut v = cursor | !mask;
        v = v.reverse_bits().wrapping_add(1).reverse_bits();
        v
    }

    /// Checks the structure: every slot reachable from its own bucket exactly once. For tests.
    #[cfg(test)]
    pub fn check(&self) {
        assert!(self.buckets.is_empty() || self.buckets.len().is_power_of_two());
        assert!(self.buckets.len() >= self.slots.len());
        let mut seen = vec![false; self.slots.len()];
        for (b, &head) in self.buckets.iter().enumerate() {
            let mut cur = head;
            while cur != NIL {
                let s = &self.slots[cur as usize];
                assert_eq!(self.bucket_of(s.hash), b);
                assert_eq!(s.hash, hash32(&s.member));
                assert!(!seen[cur as usize], "slot linked twice");
                seen[cur as usize] = true;
                cur = s.next;
            }
        }
        assert!(seen.iter().all(|&x| x), "unlinked slot");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn insert_remove_keep_chains_consistent() {
        let mut t = MemberTable::new();
        for i in 0..1000u32 {
            assert_eq!(t.insert(format!("m{i}").as_bytes()), Ok(true));
        }
        assert_eq!(t.insert(b"m7"), Ok(false));
        t.check();
        assert_eq!(t.buckets.len(), 1024);
        for i in (0..1000u32).step_by(3) {
            assert!(t.remove(format!("m{i}").as_bytes()));
        }
        t.check();
        while t.len() > 5 {
            t.remove_at(t.len() / 2);
        }
        t.check();
        assert!(t.buckets.len() <= 64, "shrunk to {}", t.buckets.len());
        assert_eq!(t.remove_at(99), None);
    }

    #[test]
    fn scan_visits_every_member_across_resizes() {
        let mut t = MemberTable::new();
        for i in 0..300u32 {
            t.insert(format!("{i}").as_bytes()).ok();
        }
        let (mut cursor, mut seen, mut calls) = (0u64, std::collections::HashSet::new(), 0);
        loop {
            cursor = t.scan_bucket(cursor, |m| {
                seen.insert(m.to_vec());
            });
            calls += 1;
            // Grow in the middle of the scan, then shrink: the first 300 stay present.
            if calls == 50 {
                for i in 300..5000u32 {
                    t.insert(format!("{i}").as_bytes()).ok();
                }
            }
            if calls == 3000 {
                for i in 300..5000u32 {
                    t.remove(format!("{i}").as_bytes());
                }
            }
            if cursor == 0 {
                break;
            }
        }
        for i in 0..300u32 {
            assert!(seen.contains(format!("{i}").as_bytes()), "missed {i}");
        }
    }
}
