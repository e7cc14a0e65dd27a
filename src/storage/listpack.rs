//! Listpack: a packed sequence of small strings and integers in one allocation — the compact
//! encoding behind small lists, hashes and sorted sets (Redis's `listpack`).
//!
//! Layout of an entry: a header varint, an optional payload, and a back-length.
//! - Header: `(zigzag(n) << 1) | 1` for an integer `n` (no payload), `len << 1` for a string
//!   of `len` bytes (the payload follows). Strings that are canonical decimal i64s are stored
//!   as integers, as Redis does, and read back as the same bytes.
//! - Back-length: the size of header+payload, written so it can be read from the entry's end
//!   backwards (7 bits per byte, low group last, 0x80 = "more bytes before this one").
//!
//! A small string costs two bytes of overhead, a small integer two bytes in all — the same
//! as Redis's listpack. Access by position is O(n), as in Redis; collections convert to a
//! general encoding past the `*-max-listpack-*` thresholds.
//!
//! Offsets handed out by this module always point at an entry's first byte; the invariant
//! every mutation keeps is that walking forward from 0 by entry sizes lands exactly on
//! `buf.len()` after `count` entries.

use super::value::parse_canonical_i64;
use crate::protocol::write::itoa_buf;

/// One entry, borrowed from the listpack.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Item<'a> {
    Int(i64),
    Str(&'a [u8]),
}

impl<'a> Item<'a> {
    pub fn to_vec(&self) -> Vec<u8> {
        match self {
            Item::Int(n) => itoa_buf(*n).as_bytes_mut().to_vec(),
            Item::Str(s) => s.to_vec(),
        }
    }

    /// Compares with the bytes a client sent.
    pub fn eq_bytes(&self, b: &[u8]) -> bool {
        match self {
            Item::Str(s) => *s == b,
            Item::Int(n) => parse_canonical_i64(b) == Some(*n),
        }
    }

    pub fn len(&self) -> usize {
        match self {
            Item::Int(n) => itoa_buf(*n).as_bytes_mut().len(),
            Item::Str(s) => s.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The item a value is stored as by `push_back`/`insert_at`: an integer when it is a
    /// canonical i64 that fits the entry header, else the string itself.
    pub fn packed(v: &'a [u8]) -> Item<'a> {
        match packed_int(v) {
            Some(n) => Item::Int(n),
            None => Item::Str(v),
        }
    }

    /// Calls `f` with the entry's bytes (integers formatted on the stack).
    pub fn with_bytes<R>(&self, f: impl FnOnce(&[u8]) -> R) -> R {
        match self {
            Item::Int(n) => f(itoa_buf(*n).as_bytes_mut()),
            Item::Str(s) => f(s),
        }
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Listpack {
    buf: Vec<u8>,
    count: u32,
}

fn zigzag(n: i64) -> u64 {
    ((n << 1) ^ (n >> 63)) as u64
}

fn unzigzag(v: u64) -> i64 {
    ((v >> 1) as i64) ^ -((v & 1) as i64)
}

fn varint_len(mut v: u64) -> usize {
    let mut n = 1;
    while v >= 0x80 {
        v >>= 7;
        n += 1;
    }
    n
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8 & 0x7f) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Reads a forward varint at `pos`: (value, bytes used).
fn get_varint(buf: &[u8], pos: usize) -> (u64, usize) {
    let mut v = 0u64;
    let mut shift = 0;
    let mut i = pos;
    while i < buf.len() {
        let b = buf[i];
        v |= ((b & 0x7f) as u64) << shift;
        i += 1;
        if b & 0x80 == 0 || shift >= 63 {
            break;
        }
        shift += 7;
    }
    (v, i - pos)
}

fn backlen_len(entry_len: usize) -> usize {
    varint_len(entry_len as u64)
}

fn put_backlen(out: &mut Vec<u8>, entry_len: usize) {
    let mut groups = [0u8; 10];
    let mut n = 0;
    let mut v = entry_len as u64;
    loop {
        groups[n] = (v & 0x7f) as u8;
        n += 1;
        v >>= 7;
        if v == 0 {
            break;
        }
    }
    // Highest group first, without the flag; every later byte says "more before me".
    for i in (0..n).rev() {
        let flag = if i == n - 1 { 0 } else { 0x80 };
        out.push(groups[i] | flag);
    }
}

/// Reads a back-length ending at `end` (exclusive): (entry_len, bytes used).
fn get_backlen(buf: &[u8], end: usize) -> (usize, usize) {
    let mut v = 0usize;
    let mut shift = 0;
    let mut i = end;
    while i > 0 {
        i -= 1;
        let b = buf[i];
        v |= ((b & 0x7f) as usize) << shift;
        if b & 0x80 == 0 {
            break;
        }
        shift += 7;
    }
    (v, end - i)
}

/// The integer form of a value, when it is a canonical i64 small enough for the header
/// (|n| < 2^61); larger integers are kept as strings.
fn packed_int(v: &[u8]) -> Option<i64> {
    parse_canonical_i64(v).filter(|n| zigzag(*n) < (1u64 << 62))
}

/// Encodes one value as a complete entry.
fn encode(out: &mut Vec<u8>, v: &[u8]) {
    let start = out.len();
    match packed_int(v) {
        Some(n) => put_varint(out, (zigzag(n) << 1) | 1),
        None => {
            put_varint(out, (v.len() as u64) << 1);
            out.extend_from_slice(v);
        }
    }
    let entry_len = out.len() - start;
    put_backlen(out, entry_len);
}

fn encoded_len(v: &[u8]) -> usize {
    let e = match packed_int(v) {
        Some(n) => varint_len((zigzag(n) << 1) | 1),
        None => varint_len((v.len() as u64) << 1) + v.len(),
    };
    e + backlen_len(e)
}

/// Whether an integer can be stored in an entry header.
fn int_fits_header(n: i64) -> bool {
    zigzag(n) < (1u64 << 62)
}

/// Encodes one item exactly as given (see `Listpack::insert_items_at`).
fn encode_item(out: &mut Vec<u8>, item: &Item) {
    let start = out.len();
    match *item {
        Item::Int(n) if int_fits_header(n) => put_varint(out, (zigzag(n) << 1) | 1),
        Item::Int(n) => {
            let mut digits = itoa_buf(n);
            let digits = digits.as_bytes_mut();
            put_varint(out, (digits.len() as u64) << 1);
            out.extend_from_slice(digits);
        }
        Item::Str(s) => {
            put_varint(out, (s.len() as u64) << 1);
            out.extend_from_slice(s);
        }
    }
    let entry_len = out.len() - start;
    put_backlen(out, entry_len);
}

fn encoded_item_len(item: &Item) -> usize {
    let e = match *item {
        Item::Int(n) if int_fits_header(n) => varint_len((zigzag(n) << 1) | 1),
        Item::Int(n) => {
            let len = itoa_buf(n).as_bytes_mut().len();
            varint_len((len as u64) << 1) + len
        }
        Item::Str(s) => varint_len((s.len() as u64) << 1) + s.len(),
    };
    e + backlen_len(e)
}

impl Listpack {
    pub fn new() -> Self {
        Listpack::default()
    }

    pub fn len(&self) -> usize {
        self.count as usize
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Bytes of the packed data (for memory accounting and thresholds).
    pub fn bytes(&self) -> usize {
        self.buf.len()
    }

    /// Heap bytes held.
    pub fn capacity(&self) -> usize {
        self.buf.capacity()
    }

    /// Bytes `v` takes as an entry (header, payload and back-length).
    pub fn entry_len(v: &[u8]) -> usize {
        encoded_len(v)
    }

    /// Reserves room for `additional` more bytes of entries in one allocation (a command that
    /// appends many entries would otherwise reallocate once per entry).
    pub fn reserve_exact(&mut self, additional: usize) {
        self.buf.reserve_exact(additional);
    }

    /// The entry at `off` and the offset of the next one.
    pub fn get_at(&self, off: usize) -> (Item<'_>, usize) {
        let (h, hl) = get_varint(&self.buf, off);
        let (item, elen) = if h & 1 == 1 {
            (Item::Int(unzigzag(h >> 1)), hl)
        } else {
            let len = (h >> 1) as usize;
            let s = off + hl;
            let e = (s + len).min(self.buf.len());
            (Item::Str(&self.buf[s..e]), hl + len)
        };
        (item, off + elen + backlen_len(elen))
    }

    /// Offset of the first entry, if any.
    pub fn first(&self) -> Option<usize> {
        if self.count == 0 {
            None
        } else {
            Some(0)
        }
    }

    /// Offset of the last entry, if any.
    pub fn last(&self) -> Option<usize> {
        if self.count == 0 {
            None
        } else {
            self.prev(self.buf.len())
        }
    }

    /// Offset of the entry after the one at `off`.
    pub fn next(&self, off: usize) -> Option<usize> {
        let (_, n) = self.get_at(off);
        if n >= self.buf.len() {
            None
        } else {
            Some(n)
        }
    }

    /// Offset of the entry before position `off` (an entry start or `bytes()`).
    pub fn prev(&self, off: usize) -> Option<usize> {
        if off == 0 {
            return None;
        }
        let (elen, bl) = get_backlen(&self.buf, off);
        Some(off - bl - elen)
    }

    /// Offset of the entry at `index` (negative counts from the end).
    pub fn offset_of(&self, index: i64) -> Option<usize> {
        let n = self.count as i64;
        let idx = if index < 0 { n + index } else { index };
        if idx < 0 || idx >= n {
            return None;
        }
        if idx <= n / 2 {
            let mut off = 0;
            for _ in 0..idx {
                off = self.next(off)?;
            }
            Some(off)
        } else {
            let mut off = self.buf.len();
            for _ in 0..(n - idx) {
                off = self.prev(off)?;
            }
            Some(off)
        }
    }

    pub fn get(&self, index: i64) -> Option<Item<'_>> {
        self.offset_of(index).map(|o| self.get_at(o).0)
    }

    pub fn iter(&self) -> Iter<'_> {
        Iter {
            lp: self,
            off: 0,
            left: self.count as usize,
        }
    }

    /// Iterates from the end.
    pub fn iter_rev(&self) -> RevIter<'_> {
        RevIter {
            lp: self,
            end: self.buf.len(),
            left: self.count as usize,
        }
    }

    pub fn push_back(&mut self, v: &[u8]) {
        self.buf.reserve_exact(encoded_len(v));
        encode(&mut self.buf, v);
        self.count += 1;
    }

    pub fn push_front(&mut self, v: &[u8]) {
        self.insert_at(0, v);
    }

    /// Inserts before the entry at `off` (or appends when `off == bytes()`).
    pub fn insert_at(&mut self, off: usize, v: &[u8]) {
        // Encoded at the end and rotated into place: no temporary allocation per insert.
        let n = encoded_len(v);
        self.buf.reserve_exact(n);
        encode(&mut self.buf, v);
        self.buf[off..].rotate_right(n);
        self.count += 1;
    }

    /// Replaces the entry at `off`.
    pub fn replace_at(&mut self, off: usize, v: &[u8]) {
        let (_, end) = self.get_at(off);
        let mut enc = Vec::with_capacity(encoded_len(v));
        encode(&mut enc, v);
        self.buf.splice(off..end, enc);
    }

    /// Removes the entry at `off`; returns the offset of what followed it.
    pub fn remove_at(&mut self, off: usize) -> usize {
        let (_, end) = self.get_at(off);
        self.buf.drain(off..end);
        self.count -= 1;
        off
    }

    /// Removes `n` entries starting at `off`.
    pub fn remove_range(&mut self, off: usize, n: usize) {
        let mut end = off;
        let mut removed = 0;
        while removed < n && end < self.buf.len() {
            end = self.get_at(end).1;
            removed += 1;
        }
        self.buf.drain(off..end);
        self.count -= removed as u32;
    }

    /// Inserts `items` before the entry at `off` (or appends when `off == bytes()`), each
    /// encoded exactly as given: an `Int` as an integer entry (as its decimal digits when it
    /// is too large for the header), a `Str` as a string entry even when its bytes read as an
    /// integer. Sorted sets store raw score bytes this way (see `storage::zset`).
    pub fn insert_items_at(&mut self, off: usize, items: &[Item]) {
        let n: usize = items.iter().map(encoded_item_len).sum();
        self.buf.reserve_exact(n);
        for item in items {
            encode_item(&mut self.buf, item);
        }
        // Encoded at the end and rotated into place: one move of the tail, no temporary.
        self.buf[off..].rotate_right(n);
        self.count += items.len() as u32;
    }

    /// Offset of the first entry equal to `v`, searching from `from` and skipping `skip`
    /// entries after each comparison (1 for lists, 2 for field/value pairs).
    pub fn find(&self, from: usize, v: &[u8], skip: usize) -> Option<usize> {
        let as_int = parse_canonical_i64(v);
        let mut off = from;
        while off < self.buf.len() {
            let (item, mut next) = self.get_at(off);
            let hit = match item {
                Item::Int(n) => as_int == Some(n),
                Item::Str(s) => s == v,
            };
            if hit {
                return Some(off);
            }
            for _ in 1..skip {
                if next >= self.buf.len() {
                    return None;
                }
                next = self.get_at(next).1;
            }
            off = next;
        }
        None
    }

    pub fn shrink_to_fit(&mut self) {
        self.buf.shrink_to_fit();
    }

    /// Gives back spare capacity once it exceeds the data (after removals), keeping some slack
    /// so that a queue's alternating pushes and pops do not reallocate every time.
    pub fn shrink_if_sparse(&mut self) {
        if self.buf.capacity() > 2 * self.buf.len() + 64 {
            self.buf.shrink_to_fit();
        }
    }

    /// Splits at the entry starting at `off` (or at `bytes()`): `self` keeps the entries
    /// before it, the returned listpack holds that entry and the ones after it.
    pub fn split_off_at(&mut self, off: usize) -> Listpack {
        let mut moved = 0u32;
        let mut pos = off;
        while pos < self.buf.len() {
            pos = self.get_at(pos).1;
            moved += 1;
        }
        let tail = self.buf[off..].to_vec();
        self.buf.truncate(off);
        self.buf.shrink_to_fit();
        self.count -= moved;
        Listpack {
            buf: tail,
            count: moved,
        }
    }

    /// Appends every entry of `other` after this listpack's last one.
    pub fn append(&mut self, other: &Listpack) {
        self.buf.reserve_exact(other.buf.len());
        self.buf.extend_from_slice(&other.buf);
        self.count += other.count;
    }
}

pub struct Iter<'a> {
    lp: &'a Listpack,
    off: usize,
    left: usize,
}

impl<'a> Iterator for Iter<'a> {
    type Item = Item<'a>;

    fn next(&mut self) -> Option<Item<'a>> {
        if self.left == 0 {
            return None;
        }
        let (item, next) = self.lp.get_at(self.off);
        self.off = next;
        self.left -= 1;
        Some(item)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.left, Some(self.left))
    }
}

impl ExactSizeIterator for Iter<'_> {}

pub struct RevIter<'a> {
    lp: &'a Listpack,
    end: usize,
    left: usize,
}

impl<'a> Iterator for RevIter<'a> {
    type Item = Item<'a>;

    fn next(&mut self) -> Option<Item<'a>> {
        if self.left == 0 {
            return None;
        }
        let off = self.lp.prev(self.end)?;
        self.end = off;
        self.left -= 1;
        Some(self.lp.get_at(off).0)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.left, Some(self.left))
    }
}

impl ExactSizeIterator for RevIter<'_> {}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use proptest::prelude::*;

    fn items(lp: &Listpack) -> Vec<Vec<u8>> {
        lp.iter().map(|i| i.to_vec()).collect()
    }

    #[test]
    fn ints_and_strings_round_trip() {
        let mut lp = Listpack::new();
        for v in [
            &b"1"[..],
            b"-5",
            b"hello",
            b"",
            b"01",
            b"9223372036854775807",
            b"x",
        ] {
            lp.push_back(v);
        }
        assert_eq!(
            items(&lp),
            vec![
                b"1".to_vec(),
                b"-5".to_vec(),
                b"hello".to_vec(),
                b"".to_vec(),
                b"01".to_vec(),
                b"9223372036854775807".to_vec(),
                b"x".to_vec()
            ]
        );
        let rev: Vec<Vec<u8>> = lp.iter_rev().map(|i| i.to_vec()).collect();
        assert_eq!(rev.len(), 7);
        assert_eq!(rev[0], b"x");
        assert_eq!(lp.get(-1).map(|i| i.to_vec()), Some(b"x".to_vec()));
        assert_eq!(lp.get(2).map(|i| i.to_vec()), Some(b"hello".to_vec()));
        // Two bytes per small entry, like Redis's listpack.
        let mut small = Listpack::new();
        small.push_back(b"7");
        small.push_back(b"abc");
        assert_eq!(small.bytes(), 2 + 5);
    }

    #[derive(Debug, Clone)]
    enum Op {
        PushBack(Vec<u8>),
        PushFront(Vec<u8>),
        Insert(usize, Vec<u8>),
        Replace(usize, Vec<u8>),
        Remove(usize),
        RemoveRange(usize, usize),
        SplitAppend(usize),
    }

    fn value() -> impl Strategy<Value = Vec<u8>> {
        prop_oneof![
            any::<i64>().prop_map(|n| n.to_string().into_bytes()),
            proptest::collection::vec(any::<u8>(), 0..200),
            proptest::collection::vec(any::<u8>(), 0..3000),
        ]
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            value().prop_map(Op::PushBack),
            value().prop_map(Op::PushFront),
            (any::<usize>(), value()).prop_map(|(i, v)| Op::Insert(i, v)),
            (any::<usize>(), value()).prop_map(|(i, v)| Op::Replace(i, v)),
            any::<usize>().prop_map(Op::Remove),
            (any::<usize>(), 0usize..5).prop_map(|(i, n)| Op::RemoveRange(i, n)),
            any::<usize>().prop_map(Op::SplitAppend),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(200))]
        #[test]
        fn behaves_like_a_vec(ops in proptest::collection::vec(op(), 1..60)) {
            let mut lp = Listpack::new();
            let mut model: Vec<Vec<u8>> = Vec::new();
            for op in ops {
                match op {
                    Op::PushBack(v) => { lp.push_back(&v); model.push(v); }
                    Op::PushFront(v) => { lp.push_front(&v); model.insert(0, v); }
                    Op::Insert(i, v) => {
                        let i = i % (model.len() + 1);
                        let off = if i == model.len() { lp.bytes() } else { lp.offset_of(i as i64).unwrap() };
                        lp.insert_at(off, &v);
                        model.insert(i, v);
                    }
                    Op::Replace(i, v) => {
                        if !model.is_empty() {
                            let i = i % model.len();
                            lp.replace_at(lp.offset_of(i as i64).unwrap(), &v);
                            model[i] = v;
                        }
                    }
                    Op::Remove(i) => {
                        if !model.is_empty() {
                            let i = i % model.len();
                            lp.remove_at(lp.offset_of(i as i64).unwrap());
                            model.remove(i);
                        }
                    }
                    Op::RemoveRange(i, n) => {
                        if !model.is_empty() {
                            let i = i % model.len();
                            let n = n.min(model.len() - i);
                            lp.remove_range(lp.offset_of(i as i64).unwrap(), n);
                            model.drain(i..i + n);
                        }
                    }
                    Op::SplitAppend(i) => {
                        // Split anywhere (the end included), check both halves, join again.
                        let i = i % (model.len() + 1);
                        let off = lp.offset_of(i as i64).unwrap_or(lp.bytes());
                        let tail = lp.split_off_at(off);
                        prop_assert_eq!(items(&lp), model[..i].to_vec());
                        prop_assert_eq!(items(&tail), model[i..].to_vec());
                        lp.append(&tail);
                    }
                }
                prop_assert_eq!(lp.len(), model.len());
                prop_assert_eq!(items(&lp), model.clone());
                let mut rev: Vec<Vec<u8>> = lp.iter_rev().map(|i| i.to_vec()).collect();
                rev.reverse();
                prop_assert_eq!(rev, model.clone());
                for (i, m) in model.iter().enumerate() {
                    prop_assert!(lp.get(i as i64).unwrap().eq_bytes(m));
                    prop_assert_eq!(lp.find(0, m, 1).map(|o| lp.get_at(o).0.to_vec()), Some(m.clone()));
                }
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(100))]
        /// `insert_items_at` keeps each item's kind: strings stay strings even when they read
        /// as integers, integers too large for the header come back as their digits.
        #[test]
        fn exact_items_keep_their_kind(
            ops in proptest::collection::vec((any::<usize>(), any::<i64>(), value(), any::<bool>()), 1..40)
        ) {
            let mut lp = Listpack::new();
            let mut model: Vec<(bool, Vec<u8>)> = Vec::new();
            for (pos, n, v, as_int) in ops {
                let i = pos % (model.len() + 1);
                let off = if i == model.len() { lp.bytes() } else { lp.offset_of(i as i64).expect("in range") };
                let item = if as_int { Item::Int(n) } else { Item::Str(&v) };
                lp.insert_items_at(off, &[item, Item::packed(&v)]);
                let first = if as_int { (int_fits_header(n), n.to_string().into_bytes()) } else { (false, v.clone()) };
                model.insert(i, first);
                model.insert(i + 1, (packed_int(&v).is_some(), v));
                prop_assert_eq!(lp.len(), model.len());
                for (j, (is_int, bytes)) in model.iter().enumerate() {
                    let got = lp.get(j as i64).expect("in range");
                    prop_assert_eq!(matches!(got, Item::Int(_)), *is_int);
                    prop_assert_eq!(got.to_vec(), bytes.clone());
                }
            }
        }
    }
}
