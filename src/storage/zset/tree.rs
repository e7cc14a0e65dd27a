//! An order-statistic B+tree of `(score, id)` keys: the ordered index of the large sorted set
//! encoding (`ranked::RankedSet`), standing where Redis has its skiplist.
//!
//! Keys are kept in the order a caller-supplied comparison defines (score, then member bytes,
//! which only the caller can reach through the id); the tree never compares on its own. Every
//! operation is O(log n): insert and remove by key, rank of a key, key at a rank, and the
//! partition point of a monotone predicate (the first element of a score or lex range).
//!
//! Layout. Leaves hold up to `LEAF_MAX` keys in two parallel vectors (12 bytes per element,
//! against a skiplist node's 40 or more). Inner nodes hold up to `INNER_MAX` children with the
//! size of each child's subtree (`counts`, for ranks) and, for every child but the first, its
//! smallest key (`seps`). All leaves are at the same depth.
//!
//! Invariants, checked by `check` in the tests:
//! - `seps[i]` is exactly the smallest key of `children[i + 1]`: separators never name a
//!   removed key, because the caller recycles ids (a stale separator would then compare by
//!   another member's bytes). Removing a subtree's smallest key therefore refreshes the
//!   separator above it.
//! - `counts[i]` is the number of keys under `children[i]`.
//! - Nodes other than the root are never empty; removal merges or rebalances a node that
//!   falls below a quarter full with a sibling.
//!
//! Splits normally halve a node, except at the ends of the tree: appending past the last key
//! (ascending timestamps, bulk building) leaves the old leaf full and starts a new one, so such
//! trees end up with full leaves (12 bytes per element) instead of half-full ones.

use std::cmp::Ordering;

/// Keys per leaf, at most.
pub const LEAF_MAX: usize = 64;
/// Children per inner node, at most.
pub const INNER_MAX: usize = 64;
/// Below this many keys a non-root leaf is merged or rebalanced with a sibling.
const LEAF_MIN: usize = LEAF_MAX / 4;
/// Below this many children a non-root inner node is merged or rebalanced with a sibling.
const INNER_MIN: usize = INNER_MAX / 4;

/// One element of the index: its score and the caller's id for its member.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Key {
    pub score: f64,
    pub id: u32,
}

#[derive(Clone, Debug, Default)]
struct Leaf {
    scores: Vec<f64>,
    ids: Vec<u32>,
}

#[derive(Clone, Debug)]
struct Inner {
    /// Keys under each child.
    counts: Vec<usize>,
    /// `seps[i]`: the smallest key under `children[i + 1]`.
    seps: Vec<Key>,
    children: Vec<Node>,
}

#[derive(Clone, Debug)]
enum Node {
    Leaf(Leaf),
    Inner(Inner),
}

/// Where an insertion lands relative to the ends of the whole tree (for the split policy).
#[derive(Clone, Copy)]
struct Edges {
    leftmost: bool,
    rightmost: bool,
}

/// The number of leading positions in `0..n` for which `pred` holds (binary search; `pred`
/// is assumed true on a prefix).
fn partition(n: usize, pred: impl Fn(usize) -> bool) -> usize {
    let (mut lo, mut hi) = (0, n);
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        if pred(mid) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    lo
}

/// Makes room for one more element, doubling the capacity but never past `max` (a node one
/// over its limit just before it splits), so full nodes do not carry a doubled buffer.
fn reserve_capped<T>(v: &mut Vec<T>, max: usize) {
    if v.len() == v.capacity() {
        let grow = v.len().clamp(1, max.saturating_sub(v.len()).max(1));
        v.reserve_exact(grow);
    }
}

impl Leaf {
    fn with_capacity(n: usize) -> Leaf {
        Leaf {
            scores: Vec::with_capacity(n),
            ids: Vec::with_capacity(n),
        }
    }

    fn len(&self) -> usize {
        self.ids.len()
    }

    fn key(&self, i: usize) -> Key {
        Key {
            score: self.scores[i],
            id: self.ids[i],
        }
    }

    fn insert(&mut self, i: usize, key: Key) {
        reserve_capped(&mut self.scores, LEAF_MAX);
        reserve_capped(&mut self.ids, LEAF_MAX);
        self.scores.insert(i, key.score);
        self.ids.insert(i, key.id);
    }

    fn remove(&mut self, i: usize) {
        self.scores.remove(i);
        self.ids.remove(i);
    }

    fn partition(&self, pred: impl Fn(Key) -> bool) -> usize {
        partition(self.len(), |i| pred(self.key(i)))
    }

    /// Moves the keys from `at` on into a new leaf.
    fn split_off(&mut self, at: usize) -> Leaf {
        let mut right = Leaf::with_capacity(LEAF_MAX);
        right.scores.extend_from_slice(&self.scores[at..]);
        right.ids.extend_from_slice(&self.ids[at..]);
        self.scores.truncate(at);
        self.ids.truncate(at);
        right
    }

    fn append(&mut self, other: Leaf) {
        self.scores.extend(other.scores);
        self.ids.extend(other.ids);
    }
}

impl Inner {
    /// The child a search for `pred`'s boundary continues in: the number of separators for
    /// which `pred` holds.
    fn child_for(&self, pred: impl Fn(Key) -> bool) -> usize {
        partition(self.seps.len(), |i| pred(self.seps[i]))
    }

    /// Refreshes the separator of child `i` (i >= 1) from the child's smallest key.
    fn fix_sep(&mut self, i: usize) {
        if i == 0 {
            return;
        }
        if let Some(k) = self.children.get(i).and_then(Node::first_key) {
            self.seps[i - 1] = k;
        }
    }

    /// Inserts `right` (split off `children[at - 1]`) as child `at`.
    fn insert_child(&mut self, at: usize, sep: Key, right: Node) {
        reserve_capped(&mut self.counts, INNER_MAX + 1);
        reserve_capped(&mut self.seps, INNER_MAX);
        reserve_capped(&mut self.children, INNER_MAX + 1);
        let right_size = right.size();
        self.counts[at - 1] -= right_size;
        self.counts.insert(at, right_size);
        self.seps.insert(at - 1, sep);
        self.children.insert(at, right);
    }

    /// Moves the children from `at` on into a new node; returns its smallest key and it.
    fn split_off(&mut self, at: usize) -> (Key, Inner) {
        let children = self.children.split_off(at);
        let counts = self.counts.split_off(at);
        let mut seps = self.seps.split_off(at - 1);
        let up = seps.remove(0);
        (
            up,
            Inner {
                counts,
                seps,
                children,
            },
        )
    }

    /// Appends `other`, whose smallest key is `sep`.
    fn append(&mut self, sep: Key, other: Inner) {
        self.seps.push(sep);
        self.seps.extend(other.seps);
        self.counts.extend(other.counts);
        self.children.extend(other.children);
    }

    /// Restores the fill of child `c` after a removal left it underfull: merges it with a
    /// sibling when both fit in one node, else moves keys over so both are half full.
    fn rebalance(&mut self, c: usize) {
        let (l, r) = if c + 1 < self.children.len() {
            (c, c + 1)
        } else if c > 0 {
            (c - 1, c)
        } else {
            return;
        };
        let right = self.children.remove(r);
        let right_count = self.counts.remove(r);
        self.seps.remove(r - 1);
        self.counts[l] += right_count;
        let merged_fits = self.children[l].width() + right.width()
            <= if right.is_leaf() { LEAF_MAX } else { INNER_MAX };
        self.children[l].append(right);
        if !merged_fits {
            let half = self.children[l].width() / 2;
            let (sep, new_right) = self.children[l].split_off(half);
            self.children[l].shrink();
            self.insert_child(l + 1, sep, new_right);
        }
        self.fix_sep(l);
        self.fix_sep(l + 1);
    }
}

impl Node {
    fn is_leaf(&self) -> bool {
        matches!(self, Node::Leaf(_))
    }

    /// Keys under this node.
    fn size(&self) -> usize {
        match self {
            Node::Leaf(l) => l.len(),
            Node::Inner(n) => n.counts.iter().sum(),
        }
    }

    /// Entries of this node itself: keys of a leaf, children of an inner node.
    fn width(&self) -> usize {
        match self {
            Node::Leaf(l) => l.len(),
            Node::Inner(n) => n.children.len(),
        }
    }

    fn is_underfull(&self) -> bool {
        match self {
            Node::Leaf(l) => l.len() < LEAF_MIN,
            Node::Inner(n) => n.children.len() < INNER_MIN,
        }
    }

    fn first_key(&self) -> Option<Key> {
        let mut node = self;
        loop {
            match node {
                Node::Leaf(l) => return (l.len() > 0).then(|| l.key(0)),
                Node::Inner(n) => node = n.children.first()?,
            }
        }
    }

    /// Splits off everything from entry `at` on; returns the new right node's smallest key
    /// and the node.
    fn split_off(&mut self, at: usize) -> (Key, Node) {
        match self {
            Node::Leaf(l) => {
                let right = l.split_off(at);
                (right.key(0), Node::Leaf(right))
            }
            Node::Inner(n) => {
                let (sep, right) = n.split_off(at);
                (sep, Node::Inner(right))
            }
        }
    }

    /// Gives back capacity beyond a full node's (after a merge-and-split rebalance).
    fn shrink(&mut self) {
        match self {
            Node::Leaf(l) => {
                l.scores.shrink_to(LEAF_MAX);
                l.ids.shrink_to(LEAF_MAX);
            }
            Node::Inner(n) => {
                n.counts.shrink_to(INNER_MAX + 1);
                n.seps.shrink_to(INNER_MAX);
                n.children.shrink_to(INNER_MAX + 1);
            }
        }
    }

    /// Appends a sibling of the same kind (the next node at this depth).
    fn append(&mut self, other: Node) {
        let sep = other.first_key();
        match (self, other) {
            (Node::Leaf(a), Node::Leaf(b)) => a.append(b),
            (Node::Inner(a), Node::Inner(b)) => {
                if let Some(sep) = sep {
                    a.append(sep, b);
                }
            }
            _ => debug_assert!(false, "siblings at different depths"),
        }
    }
}

/// Where a full leaf splits so that an insertion at `pos` of its `width` keys finds room:
/// halves, except that an insertion past the tree's last key (or before its first) leaves the
/// full leaf as it is.
fn split_point(pos: usize, width: usize, edges: Edges) -> usize {
    if edges.rightmost && pos == width {
        width
    } else if edges.leftmost && pos == 0 {
        0
    } else {
        width / 2
    }
}

/// Inserts into the subtree; returns the new right sibling when the node split.
fn insert_rec<F>(node: &mut Node, key: Key, cmp: &F, edges: Edges) -> Option<(Key, Node)>
where
    F: Fn(Key, Key) -> Ordering,
{
    match node {
        Node::Leaf(leaf) => {
            let pos = leaf.partition(|k| cmp(k, key) == Ordering::Less);
            if leaf.len() < LEAF_MAX {
                leaf.insert(pos, key);
                return None;
            }
            let at = split_point(pos, leaf.len(), edges);
            let mut right = leaf.split_off(at);
            if pos < at || at == 0 {
                leaf.insert(pos, key);
            } else {
                right.insert(pos - at, key);
            }
            Some((right.key(0), Node::Leaf(right)))
        }
        Node::Inner(inner) => {
            let c = inner.child_for(|k| cmp(k, key) == Ordering::Less);
            let last = inner.children.len() - 1;
            let child_edges = Edges {
                leftmost: edges.leftmost && c == 0,
                rightmost: edges.rightmost && c == last,
            };
            inner.counts[c] += 1;
            let (sep, right) = insert_rec(&mut inner.children[c], key, cmp, child_edges)?;
            inner.insert_child(c + 1, sep, right);
            if inner.children.len() <= INNER_MAX {
                return None;
            }
            // An edge split below (a new one-key node at either end of the tree) continues
            // here: the new node and its full neighbour start a node of their own and the
            // rest stays whole. Two children, not one, so that a non-root inner node always
            // has a sibling-level partner to merge an emptied child into.
            let n = inner.children.len();
            let at = if edges.rightmost && c + 2 == n && inner.children[n - 1].width() == 1 {
                n - 2
            } else if edges.leftmost && c == 0 && inner.children[0].width() == 1 {
                2
            } else {
                n / 2
            };
            let (sep, right) = inner.split_off(at);
            Some((sep, Node::Inner(right)))
        }
    }
}

/// Removes `key` from the subtree. `None` when it is absent, else whether the subtree's
/// smallest key changed.
fn remove_rec<F>(node: &mut Node, key: Key, cmp: &F) -> Option<bool>
where
    F: Fn(Key, Key) -> Ordering,
{
    match node {
        Node::Leaf(leaf) => {
            let pos = leaf.partition(|k| cmp(k, key) != Ordering::Greater);
            let i = pos.checked_sub(1)?;
            if leaf.ids[i] != key.id {
                return None;
            }
            leaf.remove(i);
            Some(i == 0)
        }
        Node::Inner(inner) => {
            let c = inner.child_for(|k| cmp(k, key) != Ordering::Greater);
            let min_changed = remove_rec(&mut inner.children[c], key, cmp)?;
            inner.counts[c] -= 1;
            if min_changed {
                inner.fix_sep(c);
            }
            if inner.children[c].is_underfull() {
                inner.rebalance(c);
            }
            Some(min_changed && c == 0)
        }
    }
}

/// The order-statistic tree.
#[derive(Clone, Debug)]
pub struct Tree {
    root: Node,
    len: usize,
}

impl Default for Tree {
    fn default() -> Self {
        Tree::new()
    }
}

impl Tree {
    pub fn new() -> Tree {
        Tree {
            root: Node::Leaf(Leaf::default()),
            len: 0,
        }
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Inserts `key`, which must not be present, at its place in `cmp`'s order.
    pub fn insert<F>(&mut self, key: Key, cmp: &F)
    where
        F: Fn(Key, Key) -> Ordering,
    {
        let edges = Edges {
            leftmost: true,
            rightmost: true,
        };
        if let Some((sep, right)) = insert_rec(&mut self.root, key, cmp, edges) {
            self.grow(sep, right);
        }
        self.len += 1;
    }

    /// Appends `key`, which must sort after every key present (bulk building from sorted
    /// input: no comparisons, full leaves).
    pub fn push_back(&mut self, key: Key) {
        let after_all = |a: Key, b: Key| {
            if a.id == b.id {
                Ordering::Equal
            } else {
                Ordering::Less
            }
        };
        self.insert(key, &after_all);
    }

    /// A new root above the old one and its split-off sibling.
    fn grow(&mut self, sep: Key, right: Node) {
        let left = std::mem::replace(&mut self.root, Node::Leaf(Leaf::default()));
        self.root = Node::Inner(Inner {
            counts: vec![left.size(), right.size()],
            seps: vec![sep],
            children: vec![left, right],
        });
    }

    /// Removes `key`; false when it is absent.
    pub fn remove<F>(&mut self, key: Key, cmp: &F) -> bool
    where
        F: Fn(Key, Key) -> Ordering,
    {
        if remove_rec(&mut self.root, key, cmp).is_none() {
            return false;
        }
        self.len -= 1;
        // A root with one child hands the root over to it.
        while let Node::Inner(inner) = &mut self.root {
            if inner.children.len() != 1 {
                break;
            }
            let Some(only) = inner.children.pop() else {
                break;
            };
            self.root = only;
        }
        true
    }

    /// The number of leading keys for which `pred` holds (`pred` must hold on a prefix of
    /// the order; otherwise some boundary between a true and a false key is returned).
    pub fn partition_point(&self, pred: impl Fn(Key) -> bool) -> usize {
        let mut node = &self.root;
        let mut base = 0;
        loop {
            match node {
                Node::Leaf(l) => return base + l.partition(&pred),
                Node::Inner(n) => {
                    let c = n.child_for(&pred);
                    base += n.counts[..c].iter().sum::<usize>();
                    node = &n.children[c];
                }
            }
        }
    }

    /// The 0-based rank of `key`, which must be present.
    pub fn rank<F>(&self, key: Key, cmp: &F) -> Option<usize>
    where
        F: Fn(Key, Key) -> Ordering,
    {
        let le = self.partition_point(|k| cmp(k, key) != Ordering::Greater);
        let rank = le.checked_sub(1)?;
        (self.get(rank)?.id == key.id).then_some(rank)
    }

    /// The key at `rank`.
    pub fn get(&self, mut rank: usize) -> Option<Key> {
        let mut node = &self.root;
        loop {
            match node {
                Node::Leaf(l) => return (rank < l.len()).then(|| l.key(rank)),
                Node::Inner(n) => {
                    let mut c = 0;
                    while c + 1 < n.counts.len() && rank >= n.counts[c] {
                        rank -= n.counts[c];
                        c += 1;
                    }
                    node = &n.children[c];
                }
            }
        }
    }

    /// Iterates from `rank` toward the end (or toward the start when `rev`), inclusive.
    pub fn iter_from(&self, rank: usize, rev: bool) -> Iter<'_> {
        let mut it = Iter {
            stack: Vec::new(),
            leaf: None,
            idx: 0,
            left: 0,
            rev,
        };
        if rank >= self.len {
            return it;
        }
        it.left = if rev { rank + 1 } else { self.len - rank };
        let mut node = &self.root;
        let mut rest = rank;
        loop {
            match node {
                Node::Leaf(l) => {
                    it.leaf = Some(l);
                    it.idx = rest;
                    return it;
                }
                Node::Inner(n) => {
                    let mut c = 0;
                    while c + 1 < n.counts.len() && rest >= n.counts[c] {
                        rest -= n.counts[c];
                        c += 1;
                    }
                    it.stack.push((n, c));
                    node = &n.children[c];
                }
            }
        }
    }

    /// Verifies every structural invariant against `cmp` (tests).
    #[cfg(test)]
    pub fn check<F>(&self, cmp: &F)
    where
        F: Fn(Key, Key) -> Ordering,
    {
        fn walk(
            node: &Node,
            depth: usize,
            leaf_depth: &mut Option<usize>,
            out: &mut Vec<Key>,
            is_root: bool,
        ) -> usize {
            match node {
                Node::Leaf(l) => {
                    assert_eq!(l.scores.len(), l.ids.len());
                    assert!(l.len() <= LEAF_MAX);
                    assert!(is_root || l.len() > 0, "empty non-root leaf");
                    match leaf_depth {
                        Some(d) => assert_eq!(*d, depth, "leaves at different depths"),
                        None => *leaf_depth = Some(depth),
                    }
                    out.extend((0..l.len()).map(|i| l.key(i)));
                    l.len()
                }
                Node::Inner(n) => {
                    assert!(n.children.len() >= 2, "inner node with one child");
                    assert!(n.children.len() <= INNER_MAX);
                    assert_eq!(n.counts.len(), n.children.len());
                    assert_eq!(n.seps.len() + 1, n.children.len());
                    let mut total = 0;
                    for (i, child) in n.children.iter().enumerate() {
                        let size = walk(child, depth + 1, leaf_depth, out, false);
                        assert_eq!(size, n.counts[i], "count of child {i}");
                        if i > 0 {
                            let first = child.first_key().expect("non-empty child");
                            assert_eq!(first, n.seps[i - 1], "separator of child {i}");
                        }
                        total += size;
                    }
                    total
                }
            }
        }
        let mut keys = Vec::new();
        let total = walk(&self.root, 0, &mut None, &mut keys, true);
        assert_eq!(total, self.len);
        for w in keys.windows(2) {
            assert_eq!(cmp(w[0], w[1]), Ordering::Less, "keys out of order");
        }
    }

    /// Heap bytes held by the nodes (for memory accounting).
    pub fn heap_bytes(&self) -> usize {
        fn walk(node: &Node) -> usize {
            match node {
                Node::Leaf(l) => l.scores.capacity() * 8 + l.ids.capacity() * 4,
                Node::Inner(n) => {
                    n.counts.capacity() * std::mem::size_of::<usize>()
                        + n.seps.capacity() * std::mem::size_of::<Key>()
                        + n.children.capacity() * std::mem::size_of::<Node>()
                        + n.children.iter().map(walk).sum::<usize>()
                }
            }
        }
        walk(&self.root)
    }
}

/// A walk over consecutive keys in either direction.
pub struct Iter<'a> {
    /// The inner nodes above the current leaf and the child taken in each.
    stack: Vec<(&'a Inner, usize)>,
    leaf: Option<&'a Leaf>,
    idx: usize,
    /// Keys still to yield.
    left: usize,
    rev: bool,
}

impl Iter<'_> {
    /// Moves to the next leaf in the walk's direction.
    fn next_leaf(&mut self) {
        while let Some((inner, c)) = self.stack.pop() {
            let next = if self.rev {
                c.checked_sub(1)
            } else {
                Some(c + 1).filter(|&n| n < inner.children.len())
            };
            let Some(next) = next else {
                continue;
            };
            self.stack.push((inner, next));
            let mut node = &inner.children[next];
            loop {
                match node {
                    Node::Leaf(l) => {
                        self.leaf = Some(l);
                        self.idx = if self.rev {
                            l.len().saturating_sub(1)
                        } else {
                            0
                        };
                        return;
                    }
                    Node::Inner(n) => {
                        let c = if self.rev { n.children.len() - 1 } else { 0 };
                        self.stack.push((n, c));
                        node = &n.children[c];
                    }
                }
            }
        }
        self.leaf = None;
    }
}

impl Iterator for Iter<'_> {
    type Item = Key;

    fn next(&mut self) -> Option<Key> {
        if self.left == 0 {
            return None;
        }
        let leaf = self.leaf?;
        let key = leaf.key(self.idx);
        self.left -= 1;
        if self.left > 0 {
            if self.rev {
                match self.idx.checked_sub(1) {
                    Some(i) => self.idx = i,
                    None => self.next_leaf(),
                }
            } else if self.idx + 1 < leaf.len() {
                self.idx += 1;
            } else {
                self.next_leaf();
            }
        }
        Some(key)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.left, Some(self.left))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeSet;

    /// Keys ordered by score then id (ids stand in for members here).
    fn cmp(a: Key, b: Key) -> Ordering {
        a.score
            .partial_cmp(&b.score)
            .unwrap_or(Ordering::Equal)
            .then(a.id.cmp(&b.id))
    }

    fn key(score: i32, id: u32) -> Key {
        Key {
            score: f64::from(score),
            id,
        }
    }

    #[derive(Debug, Clone)]
    enum Op {
        Insert(i32, u32),
        Remove(usize),
        PushBack(u32),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            4 => (-50i32..50, 0u32..5000).prop_map(|(s, id)| Op::Insert(s, id)),
            3 => any::<usize>().prop_map(Op::Remove),
            1 => (0u32..5000).prop_map(Op::PushBack),
        ]
    }

    fn check_against(tree: &Tree, model: &BTreeSet<(i32, u32)>) {
        tree.check(&cmp);
        let keys: Vec<Key> = model.iter().map(|&(s, id)| key(s, id)).collect();
        assert_eq!(tree.len(), keys.len());
        let forward: Vec<Key> = tree.iter_from(0, false).collect();
        assert_eq!(forward, keys);
        if let Some(last) = keys.len().checked_sub(1) {
            let mut backward: Vec<Key> = tree.iter_from(last, true).collect();
            backward.reverse();
            assert_eq!(backward, keys);
        }
        for (rank, k) in keys.iter().enumerate().step_by(7) {
            assert_eq!(tree.get(rank), Some(*k));
            assert_eq!(tree.rank(*k, &cmp), Some(rank));
            let below = tree.partition_point(|x| x.score < k.score);
            assert_eq!(below, keys.iter().filter(|x| x.score < k.score).count());
            let mid: Vec<Key> = tree.iter_from(rank, false).take(3).collect();
            assert_eq!(mid[..], keys[rank..(rank + 3).min(keys.len())]);
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]
        #[test]
        fn behaves_like_an_ordered_set(ops in proptest::collection::vec(op(), 1..1500)) {
            let mut tree = Tree::new();
            let mut model: BTreeSet<(i32, u32)> = BTreeSet::new();
            let mut ids: BTreeSet<u32> = BTreeSet::new();
            for (step, op) in ops.into_iter().enumerate() {
                match op {
                    Op::Insert(s, id) => {
                        if ids.insert(id) {
                            tree.insert(key(s, id), &cmp);
                            model.insert((s, id));
                        }
                    }
                    Op::PushBack(id) => {
                        let s = model.iter().next_back().map_or(0, |&(s, _)| s + 1);
                        if ids.insert(id) {
                            tree.push_back(key(s, id));
                            model.insert((s, id));
                        }
                    }
                    Op::Remove(i) => {
                        if let Some(&(s, id)) = model.iter().nth(i % model.len().max(1)) {
                            prop_assert!(tree.remove(key(s, id), &cmp));
                            prop_assert!(!tree.remove(key(s, id), &cmp));
                            model.remove(&(s, id));
                            ids.remove(&id);
                        }
                    }
                }
                if step % 97 == 0 {
                    check_against(&tree, &model);
                }
            }
            check_against(&tree, &model);
        }
    }

    #[test]
    fn appends_fill_leaves_and_removals_shrink_the_tree() {
        let mut tree = Tree::new();
        for i in 0..10_000u32 {
            tree.push_back(key(i as i32, i));
        }
        tree.check(&cmp);
        // Appending leaves every leaf but the last full: 12 bytes per key, plus inner nodes.
        assert!(tree.heap_bytes() < 10_000 * 14, "{}", tree.heap_bytes());
        for i in 0..10_000u32 {
            assert!(tree.remove(key(i as i32, i), &cmp));
            if i % 1000 == 0 {
                tree.check(&cmp);
            }
        }
        assert!(tree.is_empty());
        assert!(matches!(tree.root, Node::Leaf(_)));
        assert_eq!(tree.iter_from(0, false).count(), 0);
        assert_eq!(tree.get(0), None);
    }
}
