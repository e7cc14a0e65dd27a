//! The list value type: a quicklist, Redis's deque of listpack nodes.
//!
//! What it owns: the elements of one list key, in order, as a sequence of `Listpack` nodes.
//! Each node holds as many elements as `list-max-listpack-size` (the "fill") allows: a byte
//! budget of 4/8/16/32/64 KiB when negative (-1..-5), an entry count (and at most 8 KiB)
//! when positive. An element too large for any shared node gets a node of its own.
//!
//! Two representations, one behaviour. A list that fits in one node is just that listpack
//! (`PackedOr` packed: one listpack, no deque, no second allocation); past one node it becomes a deque of
//! nodes with a cached length (boxed). A list converts to nodes when a second node
//! is needed and back when one node is left. `OBJECT ENCODING` says `quicklist` for both,
//! because Redis 7.0 has no other list encoding (the `listpack` list encoding arrived in 7.2).
//!
//! Invariants, checked by `check` (the model test runs it after every operation):
//! - no node is empty; a `Packed` list may be empty (the empty list);
//! - `Nodes` holds at least two nodes and its `len` is the sum of the node counts;
//! - a node holding more than one element is within the fill (`Fill::fits`).
//!
//! Costs: push and pop at either end touch one node (O(node bytes), bounded by the fill);
//! access by index walks node counts from the nearer end, then entries inside one node.
//! Node sizes are estimated as Redis estimates them (its listpack header and end byte
//! included), so a node splits where Redis's would; our entries are never larger than
//! Redis's, so per-element memory is at most Redis's.
//!
//! Who calls it: the list commands (`commands::list`), which read the fill from
//! `storage::limits` once per command and pass it in (`Fill::current()`); tests pass fixed
//! fills, which keeps them independent of the global configuration. Redis fixes a list's fill
//! when the list is created; here a CONFIG SET applies to later changes of existing lists too.
//! Only node boundaries can tell the difference, and no reply shows them.
//!
//! Not implemented: compression of inner nodes (`list-compress-depth`; nodes are always
//! plain) and Redis's "plain" nodes for single elements of 1 GiB or more (a listpack holds
//! any length).

use super::compact::{Enc, PackedOr};
use super::limits::{self, LIMITS};
use super::listpack::{Item, Listpack};
use super::value::parse_canonical_i64;
use std::collections::VecDeque;

#[cfg(test)]
mod tests;

/// One end of a list: `Head` is the left (index 0), `Tail` the right.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum End {
    Head,
    Tail,
}

impl End {
    pub fn opposite(self) -> End {
        match self {
            End::Head => End::Tail,
            End::Tail => End::Head,
        }
    }
}

/// Byte budgets of the negative fills -1..-5 (Redis's `optimization_level`).
const FILL_LEVELS_BYTES: [usize; 5] = [4096, 8192, 16384, 32768, 65536];
/// The largest node a positive (entry count) fill may build.
const NODE_SAFETY_BYTES_MAX: usize = 8192;
/// Redis's over-estimate of what one entry adds to a listpack beyond its data.
const ENTRY_OVERHEAD_BYTES_ESTIMATE: usize = 8;
/// Redis's listpack header (total bytes, count) and end marker, which our listpack does not
/// store; counted so node sizes are compared with the limits exactly as Redis compares them.
const LISTPACK_FRAME_BYTES: usize = 7;
/// The largest positive fill Redis accepts (it clamps larger ones).
const FILL_ENTRIES_MAX: i64 = 32767;

/// `list-max-listpack-size` as a quicklist applies it: negative = byte budget level,
/// positive = entries per node. Clamped to -5..=32767 as Redis clamps it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fill(i32);

impl Fill {
    pub fn new(v: i64) -> Fill {
        Fill(v.clamp(-5, FILL_ENTRIES_MAX) as i32)
    }

    /// The fill configured now (CONFIG SET applies to every later change of any list).
    pub fn current() -> Fill {
        Fill::new(limits::get(&LIMITS.list_max_listpack_size))
    }

    /// Whether a node of `bytes` (Redis's size estimate) holding `count` entries is within
    /// this fill.
    fn fits(self, bytes: usize, count: usize) -> bool {
        if self.0 < 0 {
            let level = (-self.0 - 1) as usize;
            FILL_LEVELS_BYTES
                .get(level)
                .is_some_and(|max| bytes <= *max)
        } else {
            bytes <= NODE_SAFETY_BYTES_MAX && count <= self.0 as usize
        }
    }

    /// Whether `node` may take one more element of `len` bytes (`_quicklistNodeAllowInsert`).
    fn allows_insert(self, node: &Listpack, len: usize) -> bool {
        let bytes = node.bytes() + LISTPACK_FRAME_BYTES + len + ENTRY_OVERHEAD_BYTES_ESTIMATE;
        self.fits(bytes, node.len() + 1)
    }

    /// Whether two nodes may become one (`_quicklistNodeAllowMerge`).
    fn allows_merge(self, a: &Listpack, b: &Listpack) -> bool {
        self.fits(
            a.bytes() + b.bytes() + LISTPACK_FRAME_BYTES,
            a.len() + b.len(),
        )
    }

    /// Whether an existing node respects the fill (single-element nodes always do).
    fn holds(self, node: &Listpack) -> bool {
        node.len() <= 1 || self.fits(node.bytes() + LISTPACK_FRAME_BYTES, node.len())
    }
}

/// A list value.
#[derive(Clone, Debug, Default)]
pub struct List {
    /// `Packed`: the whole list in one listpack (possibly empty); `Big`: two or more
    /// non-empty nodes. One word either way (see `storage::compact`).
    repr: PackedOr<Quicklist>,
}

#[derive(Clone, Debug, Default)]
struct Quicklist {
    nodes: VecDeque<Listpack>,
    /// Elements in all nodes.
    len: usize,
}

/// A value to compare entries with, its integer form parsed once (LREM, LPOS).
pub struct Needle<'a> {
    bytes: &'a [u8],
    int: Option<i64>,
}

impl<'a> Needle<'a> {
    pub fn new(bytes: &'a [u8]) -> Self {
        Needle {
            bytes,
            int: parse_canonical_i64(bytes),
        }
    }

    pub fn matches(&self, item: Item<'_>) -> bool {
        match item {
            Item::Int(n) => self.int == Some(n),
            Item::Str(s) => s == self.bytes,
        }
    }
}

fn single(v: &[u8]) -> Listpack {
    let mut lp = Listpack::new();
    lp.push_back(v);
    lp
}

impl PartialEq for List {
    /// Lists are equal when their elements are, whatever their node layout.
    fn eq(&self, other: &List) -> bool {
        self.len() == other.len() && self.iter().zip(other.iter()).all(|(a, b)| a == b)
    }
}

impl List {
    pub fn new() -> List {
        List::default()
    }

    /// The name OBJECT ENCODING reports: Redis 7.0 reports `quicklist` for every list.
    pub fn encoding(&self) -> &'static str {
        "quicklist"
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        match self.repr.get() {
            Enc::Packed(lp) => lp.len(),
            Enc::Big(q) => q.len,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The listpack nodes, head first (what RDB writes as a quicklist's nodes).
    pub fn nodes(&self) -> impl Iterator<Item = &Listpack> + '_ {
        (0..self.node_count()).map(move |k| self.node(k))
    }

    /// Heap bytes held by the list (for MEMORY USAGE; the `Value` word itself not included).
    pub fn heap_bytes(&self) -> usize {
        match self.repr.get() {
            Enc::Packed(lp) => lp.capacity(),
            Enc::Big(q) => {
                std::mem::size_of::<Quicklist>()
                    + q.nodes.capacity() * std::mem::size_of::<Listpack>()
                    + q.nodes.iter().map(Listpack::capacity).sum::<usize>()
            }
        }
    }

    // ----- Node plumbing: the only code that knows the two representations. -----

    fn node_count(&self) -> usize {
        match self.repr.get() {
            Enc::Packed(lp) => usize::from(!lp.is_empty()),
            Enc::Big(q) => q.nodes.len(),
        }
    }

    /// Node `k` (`k < node_count()`, or 0 for the empty list).
    fn node(&self, k: usize) -> &Listpack {
        match self.repr.get() {
            Enc::Packed(lp) => lp,
            Enc::Big(q) => &q.nodes[k],
        }
    }

    /// Runs `f` on node `k`, keeping the cached length in step with what `f` did.
    fn edit<R>(&mut self, k: usize, f: impl FnOnce(&mut Listpack) -> R) -> R {
        match self.repr.get_mut() {
            Enc::Packed(lp) => f(lp),
            Enc::Big(q) => {
                let node = &mut q.nodes[k];
                let before = node.len();
                let r = f(node);
                q.len = q.len + node.len() - before;
                r
            }
        }
    }

    /// Makes `lp` (non-empty) node `k`, shifting later nodes up.
    fn insert_node(&mut self, k: usize, lp: Listpack) {
        debug_assert!(!lp.is_empty());
        match self.repr.get_mut() {
            Enc::Packed(old) if old.is_empty() => *old = lp,
            Enc::Packed(old) => {
                let old = std::mem::take(old);
                let len = old.len() + lp.len();
                let nodes = if k == 0 { [lp, old] } else { [old, lp] };
                self.repr = PackedOr::big(Box::new(Quicklist {
                    nodes: VecDeque::from(nodes),
                    len,
                }));
            }
            Enc::Big(q) => {
                q.len += lp.len();
                q.nodes.insert(k, lp);
            }
        }
    }

    /// Removes node `k` and returns it; one node left means back to `Packed`.
    fn remove_node(&mut self, k: usize) -> Listpack {
        match self.repr.get_mut() {
            Enc::Packed(lp) => std::mem::take(lp),
            Enc::Big(q) => {
                let lp = q.nodes.remove(k).unwrap_or_default();
                q.len -= lp.len();
                if q.nodes.len() == 1 {
                    let last = q.nodes.pop_front().unwrap_or_default();
                    self.repr = PackedOr::packed(last);
                }
                lp
            }
        }
    }

    /// Drops node `k` when it is empty; true when it did.
    fn drop_if_empty(&mut self, k: usize) -> bool {
        if k < self.node_count() && self.node(k).is_empty() {
            self.remove_node(k);
            true
        } else {
            false
        }
    }

    /// Merges node `k + 1` into node `k` when the fill allows it.
    fn try_merge(&mut self, k: usize, fill: Fill) {
        if k + 1 < self.node_count() && fill.allows_merge(self.node(k), self.node(k + 1)) {
            let next = self.remove_node(k + 1);
            self.edit(k, |lp| lp.append(&next));
        }
    }

    /// The node and the position inside it of element `index` (< len), walking node counts
    /// from the nearer end.
    fn locate(&self, index: usize) -> Option<(usize, usize)> {
        if index >= self.len() {
            return None;
        }
        let n = self.node_count();
        if index < self.len() / 2 {
            let mut rest = index;
            for k in 0..n {
                let count = self.node(k).len();
                if rest < count {
                    return Some((k, rest));
                }
                rest -= count;
            }
        } else {
            let mut rest = self.len() - 1 - index;
            for k in (0..n).rev() {
                let count = self.node(k).len();
                if rest < count {
                    return Some((k, count - 1 - rest));
                }
                rest -= count;
            }
        }
        None
    }

    /// Inserts `v` into node `k` before the entry at byte offset `off` (`bytes()` = after
    /// the last), as `_quicklistInsert` does: into the node when it has room, else into the
    /// neighbour at that edge, else a new node at the edge, else split the node there.
    fn insert_in_node(&mut self, k: usize, off: usize, v: &[u8], fill: Fill) {
        let len = v.len();
        let nodes = self.node_count();
        if nodes == 0 {
            self.insert_node(0, single(v));
            return;
        }
        let node = self.node(k);
        let at_head = off == 0;
        let at_tail = off >= node.bytes();
        if fill.allows_insert(node, len) {
            self.edit(k, |lp| lp.insert_at(off, v));
        } else if at_head && k > 0 && fill.allows_insert(self.node(k - 1), len) {
            self.edit(k - 1, |lp| lp.push_back(v));
        } else if at_tail && k + 1 < nodes && fill.allows_insert(self.node(k + 1), len) {
            self.edit(k + 1, |lp| lp.push_front(v));
        } else if at_head {
            self.insert_node(k, single(v));
        } else if at_tail {
            self.insert_node(k + 1, single(v));
        } else {
            self.split_and_insert(k, off, v, fill);
        }
    }

    /// Splits full node `k` at `off`, puts `v` at the seam, then merges small neighbours.
    fn split_and_insert(&mut self, k: usize, off: usize, v: &[u8], fill: Fill) {
        let right = self.edit(k, |lp| lp.split_off_at(off));
        self.insert_node(k + 1, right);
        let mut right_k = k + 1;
        if fill.allows_insert(self.node(k), v.len()) {
            self.edit(k, |lp| lp.push_back(v));
        } else if fill.allows_insert(self.node(k + 1), v.len()) {
            self.edit(k + 1, |lp| lp.push_front(v));
        } else {
            self.insert_node(k + 1, single(v));
            right_k = k + 2;
        }
        // Right side first, so the left side's indices stay put.
        self.try_merge(right_k, fill);
        if k > 0 {
            self.try_merge(k - 1, fill);
        }
    }

    // ----- The list API. -----

    /// Adds `v` at `end`.
    pub fn push(&mut self, end: End, v: &[u8], fill: Fill) {
        match end {
            End::Head => self.insert_in_node(0, 0, v, fill),
            End::Tail => {
                let k = self.node_count().saturating_sub(1);
                let off = self.node(k).bytes();
                self.insert_in_node(k, off, v, fill);
            }
        }
    }

    /// Removes and returns the element at `end`.
    pub fn pop(&mut self, end: End) -> Option<Vec<u8>> {
        let v = self.peek(end)?.to_vec();
        self.remove_ends(end, 1);
        Some(v)
    }

    /// The element at `end`.
    pub fn peek(&self, end: End) -> Option<Item<'_>> {
        match end {
            End::Head => self.get(0),
            End::Tail => self.get(-1),
        }
    }

    /// The element at `index`; negative counts from the tail (-1 = last).
    pub fn get(&self, index: i64) -> Option<Item<'_>> {
        let i = self.resolve(index)?;
        let (k, j) = self.locate(i)?;
        self.node(k).get(j as i64)
    }

    /// A Redis index (negative from the tail) as a position, when inside the list.
    fn resolve(&self, index: i64) -> Option<usize> {
        let len = self.len() as i64;
        let i = if index < 0 { len + index } else { index };
        (0..len).contains(&i).then_some(i as usize)
    }

    /// Replaces the element at `index` (negative from the tail); false when out of range.
    pub fn set(&mut self, index: i64, v: &[u8], fill: Fill) -> bool {
        let Some((k, j)) = self.resolve(index).and_then(|i| self.locate(i)) else {
            return false;
        };
        let node = self.node(k);
        let Some(off) = node.offset_of(j as i64) else {
            return false;
        };
        let old_bytes = node.get_at(off).1 - off;
        let new_bytes = (node.bytes() - old_bytes) + LISTPACK_FRAME_BYTES;
        let new_bytes = new_bytes + v.len() + ENTRY_OVERHEAD_BYTES_ESTIMATE;
        if node.len() == 1 || fill.fits(new_bytes, node.len()) {
            self.edit(k, |lp| lp.replace_at(off, v));
        } else {
            // Too big for its node: take the old element out and insert as LINSERT would.
            self.edit(k, |lp| lp.remove_at(off));
            self.insert_in_node(k, off, v, fill);
        }
        true
    }

    /// Inserts `v` at position `index` (0..=len; len appends).
    pub fn insert_at(&mut self, index: usize, v: &[u8], fill: Fill) {
        if index >= self.len() {
            self.push(End::Tail, v, fill);
            return;
        }
        let Some((k, j)) = self.locate(index) else {
            return;
        };
        let off = self.node(k).offset_of(j as i64).unwrap_or(0);
        self.insert_in_node(k, off, v, fill);
    }

    /// LINSERT: inserts `v` before (or `after`) the first element equal to `pivot`. False
    /// when there is no such element.
    pub fn insert_by_pivot(&mut self, pivot: &[u8], v: &[u8], after: bool, fill: Fill) -> bool {
        for k in 0..self.node_count() {
            let node = self.node(k);
            if let Some(off) = node.find(0, pivot, 1) {
                let at = if after { node.get_at(off).1 } else { off };
                self.insert_in_node(k, at, v, fill);
                return true;
            }
        }
        false
    }

    /// Removes `n` elements at `end` (all of them when `n >= len`).
    pub fn remove_ends(&mut self, end: End, mut n: usize) {
        while n > 0 && !self.is_empty() {
            let k = match end {
                End::Head => 0,
                End::Tail => self.node_count() - 1,
            };
            let count = self.node(k).len();
            if count <= n {
                self.remove_node(k);
                n -= count;
                continue;
            }
            self.edit(k, |lp| {
                let first = if end == End::Head { 0 } else { count - n };
                let off = lp.offset_of(first as i64).unwrap_or(0);
                lp.remove_range(off, n);
                lp.shrink_if_sparse();
            });
            n = 0;
        }
    }

    /// LREM: removes elements equal to `v` — the first `count` from the head when
    /// `count > 0`, the last `-count` from the tail when negative, all when 0. Returns how
    /// many were removed.
    pub fn remove_matching(&mut self, v: &[u8], count: i64) -> usize {
        let limit = if count == 0 {
            usize::MAX
        } else {
            usize::try_from(count.unsigned_abs()).unwrap_or(usize::MAX)
        };
        let needle = Needle::new(v);
        if count >= 0 {
            self.remove_forward(&needle, limit)
        } else {
            self.remove_backward(&needle, limit)
        }
    }

    fn remove_forward(&mut self, needle: &Needle, limit: usize) -> usize {
        let mut removed = 0;
        let mut k = 0;
        while k < self.node_count() && removed < limit {
            let before = removed;
            removed += self.edit(k, |lp| {
                let mut n = 0;
                let mut off = 0;
                while off < lp.bytes() && before + n < limit {
                    let (item, next) = lp.get_at(off);
                    if needle.matches(item) {
                        off = lp.remove_at(off);
                        n += 1;
                    } else {
                        off = next;
                    }
                }
                if n > 0 {
                    lp.shrink_if_sparse();
                }
                n
            });
            if !self.drop_if_empty(k) {
                k += 1;
            }
        }
        removed
    }

    fn remove_backward(&mut self, needle: &Needle, limit: usize) -> usize {
        let mut removed = 0;
        let mut k = self.node_count();
        while k > 0 && removed < limit {
            k -= 1;
            let before = removed;
            removed += self.edit(k, |lp| {
                let mut n = 0;
                let mut cursor = lp.last();
                while let Some(off) = cursor {
                    if before + n >= limit {
                        break;
                    }
                    // The entries before `off` stay where they are when it is removed.
                    cursor = lp.prev(off);
                    if needle.matches(lp.get_at(off).0) {
                        lp.remove_at(off);
                        n += 1;
                    }
                }
                if n > 0 {
                    lp.shrink_if_sparse();
                }
                n
            });
            self.drop_if_empty(k);
        }
        removed
    }

    /// LTRIM's work: keeps `keep` elements starting at `start`, removing the rest from both
    /// ends.
    pub fn retain_range(&mut self, start: usize, keep: usize) {
        let len = self.len();
        let start = start.min(len);
        let keep = keep.min(len - start);
        self.remove_ends(End::Tail, len - start - keep);
        self.remove_ends(End::Head, start);
    }

    /// Elements from `index` toward the tail (`forward`) or toward the head. An index past
    /// the end gives an empty iterator.
    pub fn iter_from(&self, index: usize, forward: bool) -> Iter<'_> {
        let Some((k, j)) = self.locate(index) else {
            return Iter {
                list: self,
                k: 0,
                off: 0,
                left: 0,
                forward,
            };
        };
        let off = self.node(k).offset_of(j as i64).unwrap_or(0);
        let left = if forward {
            self.len() - index
        } else {
            index + 1
        };
        Iter {
            list: self,
            k,
            off,
            left,
            forward,
        }
    }

    /// Every element, head to tail.
    pub fn iter(&self) -> Iter<'_> {
        self.iter_from(0, true)
    }

    /// Checks the invariants listed at the top of this file (tests and debug checks).
    pub fn check(&self, fill: Fill) -> Result<(), String> {
        match self.repr.get() {
            Enc::Packed(lp) => {
                if !fill.holds(lp) {
                    return Err(format!("packed node over the fill: {} entries", lp.len()));
                }
            }
            Enc::Big(q) => {
                if q.nodes.len() < 2 {
                    return Err(format!("{} node(s) kept as a deque", q.nodes.len()));
                }
                let sum: usize = q.nodes.iter().map(Listpack::len).sum();
                if sum != q.len {
                    return Err(format!("cached len {} but nodes hold {}", q.len, sum));
                }
                if let Some(k) = q.nodes.iter().position(|n| n.is_empty()) {
                    return Err(format!("node {} is empty", k));
                }
                if let Some(k) = q.nodes.iter().position(|n| !fill.holds(n)) {
                    return Err(format!("node {} over the fill", k));
                }
            }
        }
        Ok(())
    }
}

/// Walks a list's elements in either direction, node by node.
pub struct Iter<'a> {
    list: &'a List,
    /// The node and byte offset of the next element to yield.
    k: usize,
    off: usize,
    left: usize,
    forward: bool,
}

impl<'a> Iterator for Iter<'a> {
    type Item = Item<'a>;

    fn next(&mut self) -> Option<Item<'a>> {
        if self.left == 0 {
            return None;
        }
        self.left -= 1;
        let node = self.list.node(self.k);
        let (item, next) = node.get_at(self.off);
        if self.forward {
            if next < node.bytes() {
                self.off = next;
            } else {
                self.k += 1;
                self.off = 0;
            }
        } else if let Some(prev) = node.prev(self.off) {
            self.off = prev;
        } else if self.k > 0 {
            self.k -= 1;
            self.off = self.list.node(self.k).last().unwrap_or(0);
        }
        Some(item)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.left, Some(self.left))
    }
}

impl ExactSizeIterator for Iter<'_> {}
