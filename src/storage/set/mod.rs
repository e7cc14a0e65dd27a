//! The set value type, in Redis 7.0's two encodings.
//!
//! - **intset** (`IntSet`): a sorted array of packed integers, 2, 4 or 8 bytes each. A set
//!   is created in it when its first member is a canonical decimal i64 (Redis's `string2ll`
//!   rules: no `+`, no leading zeros, no `-0`) and stays there while every member is one and
//!   the count is at most `set-max-intset-entries` (read from `storage::limits` at each
//!   insert, so CONFIG SET takes effect on the next write, capped at 2^30 as in Redis).
//! - **hashtable** (`MemberTable`): a chained hash table over a dense slot array, members as
//!   byte strings. Its module explains the layout and why it is not `hashbrown`.
//!
//! Conversion goes one way, intset → hashtable, when a non-integer arrives or the count
//! passes the threshold; a set never converts back, as in Redis (only SPOP's "rebuild the
//! remainder" path and the *STORE commands build fresh sets, which start as intsets).
//!
//! Members are exposed as `MemberRef`: an integer straight from the intset, or borrowed
//! bytes from the table. Integers are formatted only when they meet a byte-string context
//! (a reply, a hashtable), never stored twice.
//!
//! Invariants: a stored set is never empty (handlers delete the key with the last member);
//! an intset holds only integers and at most the threshold in force when it last grew.
//! Random selection (`random_index`) is uniform over `0..len()`; both encodings index their
//! members densely. Set algebra (SINTER, SUNION, SDIFF and their *STORE and CARD forms) is in
//! `ops`, as Redis's algorithms, including how they pick the result's encoding.

mod intset;
pub mod ops;
pub mod rng;
mod table;

#[cfg(test)]
mod tests;

pub use intset::IntSet;
pub use table::{Full as SetFull, MemberTable, MEMBERS_MAX};

use super::limits::{self, LIMITS};
use super::value::parse_canonical_i64;
use crate::protocol::write::itoa_buf;

/// Redis caps `set-max-intset-entries` at 2^30 "due to intset internals"; so do we.
const INTSET_ENTRIES_CAP: i64 = 1 << 30;

/// The intset threshold in force (`set-max-intset-entries`, clamped to `0..=2^30`).
pub fn intset_entries_max() -> usize {
    limits::get(&LIMITS.set_max_intset_entries).clamp(0, INTSET_ENTRIES_CAP) as usize
}

/// A member as a set holds it: an integer of an intset or the bytes of a hashtable member.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MemberRef<'a> {
    Int(i64),
    Bytes(&'a [u8]),
}

impl MemberRef<'_> {
    /// The member as an integer, when it is the canonical form of one.
    pub fn as_int(self) -> Option<i64> {
        match self {
            MemberRef::Int(n) => Some(n),
            MemberRef::Bytes(b) => parse_canonical_i64(b),
        }
    }

    /// Runs `f` on the member's bytes (integers are formatted on the stack).
    pub fn with_bytes<R>(self, f: impl FnOnce(&[u8]) -> R) -> R {
        match self {
            MemberRef::Int(n) => f(itoa_buf(n).as_bytes_mut()),
            MemberRef::Bytes(b) => f(b),
        }
    }

    pub fn to_vec(self) -> Vec<u8> {
        self.with_bytes(|b| b.to_vec())
    }
}

/// The table is boxed so that a `Set` is 24 bytes: small intsets are most sets, and each
/// pays for `Box<Set>` in the keyspace.
#[derive(Clone, Debug)]
enum Repr {
    Int(IntSet),
    Table(Box<MemberTable>),
}

/// A set value.
#[derive(Clone, Debug)]
pub struct Set {
    repr: Repr,
}

impl Default for Set {
    fn default() -> Self {
        Set::new_intset()
    }
}

/// Sets are equal when they hold the same members, whatever their encodings.
impl PartialEq for Set {
    fn eq(&self, other: &Set) -> bool {
        self.len() == other.len() && self.iter().all(|m| other.contains_ref(m))
    }
}

impl Set {
    /// An empty intset-encoded set (what every computed result starts as).
    pub fn new_intset() -> Self {
        Set {
            repr: Repr::Int(IntSet::new()),
        }
    }

    /// An empty hashtable-encoded set presized for `n` members.
    pub fn new_table(n: usize) -> Self {
        Set {
            repr: Repr::Table(Box::new(MemberTable::with_capacity(n))),
        }
    }

    /// An intset-encoded set holding `members` as they are, width included (RDB loading
    /// keeps the width the file recorded, as Redis keeps the blob).
    pub fn from_intset(members: IntSet) -> Self {
        Set {
            repr: Repr::Int(members),
        }
    }

    /// An empty set in the encoding able to hold `first` (Redis's `setTypeCreate`).
    pub fn new_for(first: &[u8]) -> Self {
        if parse_canonical_i64(first).is_some() {
            Set::new_intset()
        } else {
            Set::new_table(0)
        }
    }

    /// The name OBJECT ENCODING reports.
    pub fn encoding(&self) -> &'static str {
        match self.repr {
            Repr::Int(_) => "intset",
            Repr::Table(_) => "hashtable",
        }
    }

    /// The hash table's shape, or `None` for an intset (DEBUG HTSTATS-KEY).
    pub fn table_stats(&self) -> Option<crate::storage::htstats::HtStats> {
        match &self.repr {
            Repr::Int(_) => None,
            Repr::Table(t) => Some(t.chain_stats()),
        }
    }

    /// Number of members.
    pub fn len(&self) -> usize {
        match &self.repr {
            Repr::Int(s) => s.len(),
            Repr::Table(t) => t.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The intset's width in bytes (2, 4 or 8), `None` for a hashtable (RDB writes it).
    pub fn intset_width(&self) -> Option<usize> {
        match &self.repr {
            Repr::Int(s) => Some(s.width_bytes()),
            Repr::Table(_) => None,
        }
    }

    /// Heap bytes held, approximately (MEMORY USAGE and tests).
    pub fn heap_bytes(&self) -> usize {
        match &self.repr {
            Repr::Int(s) => s.heap_bytes(),
            Repr::Table(t) => std::mem::size_of::<MemberTable>() + t.heap_bytes(),
        }
    }

    pub fn contains(&self, member: &[u8]) -> bool {
        self.contains_ref(MemberRef::Bytes(member))
    }

    pub fn contains_ref(&self, member: MemberRef) -> bool {
        match &self.repr {
            Repr::Int(s) => member.as_int().is_some_and(|n| s.contains(n)),
            Repr::Table(t) => member.with_bytes(|b| t.contains(b)),
        }
    }

    /// Adds a member under the threshold in force. `Ok(false)` when already present.
    pub fn add(&mut self, member: &[u8]) -> Result<bool, SetFull> {
        self.add_ref(MemberRef::Bytes(member), intset_entries_max())
    }

    /// Adds a member; an intset converts when the member is not an integer or the count
    /// passes `intset_max` (Redis's `setTypeAdd`).
    pub fn add_ref(&mut self, member: MemberRef, intset_max: usize) -> Result<bool, SetFull> {
        match &mut self.repr {
            Repr::Table(t) => member.with_bytes(|b| t.insert(b)),
            Repr::Int(s) => match member.as_int() {
                Some(n) => {
                    if !s.insert(n) {
                        return Ok(false);
                    }
                    if s.len() > intset_max {
                        self.convert(0);
                    }
                    Ok(true)
                }
                None => {
                    // Now a hashtable, so this recursion is one level deep.
                    self.convert(1);
                    self.add_ref(member, intset_max)
                }
            },
        }
    }

    /// Converts an intset to a hashtable with room for `extra` more members.
    fn convert(&mut self, extra: usize) {
        if let Repr::Int(s) = &self.repr {
            let mut t = MemberTable::with_capacity(s.len() + extra);
            for n in s.iter() {
                // An intset holds at most 2^30 members, far below the table's bound.
                let _ = t.insert(itoa_buf(n).as_bytes_mut());
            }
            self.repr = Repr::Table(Box::new(t));
        }
    }

    /// Removes a member. False when absent.
    pub fn remove(&mut self, member: &[u8]) -> bool {
        self.remove_ref(MemberRef::Bytes(member))
    }

    pub fn remove_ref(&mut self, member: MemberRef) -> bool {
        match &mut self.repr {
            Repr::Int(s) => member.as_int().is_some_and(|n| s.remove(n)),
            Repr::Table(t) => member.with_bytes(|b| t.remove(b)),
        }
    }

    /// The member at dense index `i` (`0..len()`): ascending for an intset, slot order for
    /// a hashtable. Indices are stable only until the next change.
    pub fn get(&self, i: usize) -> Option<MemberRef<'_>> {
        match &self.repr {
            Repr::Int(s) => s.get(i).map(MemberRef::Int),
            Repr::Table(t) => t.get(i).map(MemberRef::Bytes),
        }
    }

    /// Removes the member at dense index `i`. False when `i` is out of range.
    pub fn remove_at(&mut self, i: usize) -> bool {
        match &mut self.repr {
            Repr::Int(s) => s.remove_at(i).is_some(),
            Repr::Table(t) => t.remove_at(i).is_some(),
        }
    }

    /// A uniformly random dense index (`len()` must be > 0).
    pub fn random_index(&self, rng: &mut rng::Rng) -> usize {
        rng.index(self.len().max(1))
    }

    /// Every member: ascending for an intset, slot order for a hashtable.
    pub fn iter(&self) -> Iter<'_> {
        match &self.repr {
            Repr::Int(s) => Iter::Int(s.iter()),
            Repr::Table(t) => Iter::Table(t, 0),
        }
    }

    /// SSCAN's iteration (Redis's `scanGenericCommand` step 2). An intset is small by
    /// construction, so it is returned whole with cursor 0. A hashtable visits buckets from
    /// `cursor` until `count` members were seen, the scan completed, or `10 * count` buckets
    /// were tried (bounding the work on a sparse table). Returns the next cursor.
    pub fn scan<'a>(
        &'a self,
        cursor: u64,
        count: usize,
        mut visit: impl FnMut(MemberRef<'a>),
    ) -> u64 {
        match &self.repr {
            Repr::Int(s) => {
                s.iter().for_each(|n| visit(MemberRef::Int(n)));
                0
            }
            Repr::Table(t) => {
                let mut seen = 0usize;
                let mut iterations_left = count.saturating_mul(10);
                let mut cursor = cursor;
                loop {
                    cursor = t.scan_bucket(cursor, |m| {
                        seen += 1;
                        visit(MemberRef::Bytes(m));
                    });
                    if cursor == 0 || iterations_left == 0 || seen >= count {
                        return cursor;
                    }
                    iterations_left -= 1;
                }
            }
        }
    }
}

/// Iterator over a set's members.
pub enum Iter<'a> {
    Int(intset::Iter<'a>),
    Table(&'a MemberTable, usize),
}

impl<'a> Iterator for Iter<'a> {
    type Item = MemberRef<'a>;

    fn next(&mut self) -> Option<MemberRef<'a>> {
        match self {
            Iter::Int(it) => it.next().map(MemberRef::Int),
            Iter::Table(t, pos) => {
                let m = t.get(*pos)?;
                *pos += 1;
                Some(MemberRef::Bytes(m))
            }
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = match self {
            Iter::Int(it) => it.len(),
            Iter::Table(t, pos) => t.len().saturating_sub(*pos),
        };
        (n, Some(n))
    }
}

impl ExactSizeIterator for Iter<'_> {}
