//! `IntSet`: Redis's intset, a sorted array of distinct integers packed at one width.
//!
//! The width is the smallest of 16, 32 or 64 bits that holds every member ever added: adding
//! a value that does not fit upgrades the whole array to the wider type, and the width never
//! goes back down (as in Redis, whose RDB encoding of an intset records the width). Members
//! are kept sorted, so lookups are binary searches and iteration is in ascending order, which
//! is the order SMEMBERS, SSCAN and the set-algebra commands show for integer sets.
//!
//! Memory: the array is a boxed slice, sized exactly (one reallocation per insert or removal,
//! as Redis reallocs its blob on every change), so a member costs 2, 4 or 8 bytes plus the
//! allocator's rounding, and the whole `IntSet` is 24 bytes (a slice pointer, its length, the
//! width tag). Insertion and removal move the tail of the array: O(n), which is why the set
//! converts to a hash table past `set-max-intset-entries`.

/// The storage widths. Each variant holds a sorted, duplicate-free slice.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum IntSet {
    W16(Box<[i16]>),
    W32(Box<[i32]>),
    W64(Box<[i64]>),
}

impl Default for IntSet {
    fn default() -> Self {
        IntSet::W16(Box::default())
    }
}

/// The width in bytes a value needs (Redis's `_intsetValueEncoding`).
fn width_of(v: i64) -> usize {
    if i16::try_from(v).is_ok() {
        2
    } else if i32::try_from(v).is_ok() {
        4
    } else {
        8
    }
}

/// Inserts into a sorted slice, keeping the allocation exact. False when already present.
fn insert_sorted<T: Ord + Copy>(b: &mut Box<[T]>, x: T) -> bool {
    match b.binary_search(&x) {
        Ok(_) => false,
        Err(pos) => {
            // `into_vec` has no spare capacity; `reserve_exact(1)` makes the one realloc, and
            // `into_boxed_slice` then has nothing to shrink.
            let mut v = std::mem::take(b).into_vec();
            v.reserve_exact(1);
            v.insert(pos, x);
            *b = v.into_boxed_slice();
            true
        }
    }
}

fn remove_sorted<T: Ord + Copy>(b: &mut Box<[T]>, x: T) -> bool {
    match b.binary_search(&x) {
        Ok(pos) => {
            let mut v = std::mem::take(b).into_vec();
            v.remove(pos);
            *b = v.into_boxed_slice();
            true
        }
        Err(_) => false,
    }
}

/// A copy of `v` at a wider type.
fn widen<T: Copy + Into<i64>, U: TryFrom<i64>>(v: &[T]) -> Box<[U]> {
    // Every value of a narrower signed type fits the wider one, so nothing is dropped.
    v.iter()
        .filter_map(|&x| U::try_from(x.into()).ok())
        .collect()
}

impl IntSet {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn len(&self) -> usize {
        match self {
            IntSet::W16(v) => v.len(),
            IntSet::W32(v) => v.len(),
            IntSet::W64(v) => v.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Bytes per member: 2, 4 or 8 (what Redis's intset header calls the encoding).
    pub fn width_bytes(&self) -> usize {
        match self {
            IntSet::W16(_) => 2,
            IntSet::W32(_) => 4,
            IntSet::W64(_) => 8,
        }
    }

    /// Heap bytes held (length times width: the slice is exact).
    pub fn heap_bytes(&self) -> usize {
        self.len() * self.width_bytes()
    }

    pub fn contains(&self, x: i64) -> bool {
        match self {
            IntSet::W16(v) => i16::try_from(x).is_ok_and(|x| v.binary_search(&x).is_ok()),
            IntSet::W32(v) => i32::try_from(x).is_ok_and(|x| v.binary_search(&x).is_ok()),
            IntSet::W64(v) => v.binary_search(&x).is_ok(),
        }
    }

    /// Adds `x`, upgrading the width first when `x` does not fit. False when already present.
    pub fn insert(&mut self, x: i64) -> bool {
        if width_of(x) > self.width_bytes() {
            self.upgrade(width_of(x));
        }
        match self {
            IntSet::W16(v) => i16::try_from(x).is_ok_and(|x| insert_sorted(v, x)),
            IntSet::W32(v) => i32::try_from(x).is_ok_and(|x| insert_sorted(v, x)),
            IntSet::W64(v) => insert_sorted(v, x),
        }
    }

    fn upgrade(&mut self, width: usize) {
        *self = match (&*self, width) {
            (IntSet::W16(v), 4) => IntSet::W32(widen(v)),
            (IntSet::W16(v), _) => IntSet::W64(widen(v)),
            (IntSet::W32(v), _) => IntSet::W64(widen(v)),
            (IntSet::W64(_), _) => return,
        };
    }

    /// Removes `x`. False when absent. The width stays.
    pub fn remove(&mut self, x: i64) -> bool {
        match self {
            IntSet::W16(v) => i16::try_from(x).is_ok_and(|x| remove_sorted(v, x)),
            IntSet::W32(v) => i32::try_from(x).is_ok_and(|x| remove_sorted(v, x)),
            IntSet::W64(v) => remove_sorted(v, x),
        }
    }

    /// The member at position `i` in ascending order.
    pub fn get(&self, i: usize) -> Option<i64> {
        match self {
            IntSet::W16(v) => v.get(i).map(|&x| x.into()),
            IntSet::W32(v) => v.get(i).map(|&x| x.into()),
            IntSet::W64(v) => v.get(i).copied(),
        }
    }

    /// Removes the member at position `i`; returns it, or `None` when `i` is out of range.
    pub fn remove_at(&mut self, i: usize) -> Option<i64> {
        let x = self.get(i)?;
        self.remove(x);
        Some(x)
    }

    /// Members in ascending order.
    pub fn iter(&self) -> Iter<'_> {
        Iter { set: self, pos: 0 }
    }
}

/// Ascending iterator over an `IntSet`.
pub struct Iter<'a> {
    set: &'a IntSet,
    pos: usize,
}

impl Iterator for Iter<'_> {
    type Item = i64;

    fn next(&mut self) -> Option<i64> {
        let x = self.set.get(self.pos)?;
        self.pos += 1;
        Some(x)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = self.set.len().saturating_sub(self.pos);
        (n, Some(n))
    }
}

impl ExactSizeIterator for Iter<'_> {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upgrades_keep_order_and_never_narrow() {
        let mut s = IntSet::new();
        assert!(s.insert(5));
        assert!(s.insert(-3));
        assert!(!s.insert(5));
        assert_eq!(s.width_bytes(), 2);
        assert!(s.insert(70_000));
        assert_eq!(s.width_bytes(), 4);
        assert!(s.insert(i64::MIN));
        assert_eq!(s.width_bytes(), 8);
        assert!(s.insert(i64::MAX));
        assert_eq!(
            s.iter().collect::<Vec<_>>(),
            vec![i64::MIN, -3, 5, 70_000, i64::MAX]
        );
        assert!(s.remove(i64::MIN));
        assert!(s.remove(i64::MAX));
        assert!(!s.remove(i64::MAX));
        assert_eq!(s.width_bytes(), 8);
        assert!(s.contains(70_000) && !s.contains(70_001));
        assert_eq!(s.remove_at(0), Some(-3));
        assert_eq!(s.remove_at(9), None);
        assert_eq!(s.len(), 2);
    }

    #[test]
    fn narrow_sets_reject_wide_lookups() {
        let mut s = IntSet::new();
        s.insert(1);
        assert!(!s.contains(1 << 40));
        assert!(!s.remove(1 << 40));
        assert_eq!(s.width_bytes(), 2);
        assert_eq!(s.heap_bytes(), 2);
    }
}
