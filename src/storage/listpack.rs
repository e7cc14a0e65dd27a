//! Listpack: a packed sequence of small strings and integers in one allocation — the compact
//! encoding behind small lists, hashes and sorted sets (Redis's `listpack`).
//!
//! A `Listpack` is one thin pointer. Its allocation holds a header (the entries' total bytes
//! and their count, two u32s) followed by the entries, and is always exactly that size: every
//! change reallocates to the new size, as Redis's `lpInsert`/`lpDelete` do (the allocator
//! resizes in place while the block's size class still fits). Small collections are most
//! keys, so what each one pays beyond its entries matters: 8 header bytes here against
//! Redis's 16-byte `robj` plus 7 listpack frame bytes. A listpack whose entries pass 4 GiB
//! (possible only for a list node holding one huge element) uses a 16-byte header instead,
//! its u32 byte count set to `u32::MAX` and the real one following as a u64.
//!
//! Entries use Redis's listpack entry format, so sizes (and the list fill decisions built on
//! them) match Redis's byte for byte:
//! - a first byte `0xxxxxxx` is an integer 0..=127; `110xxxxx` + 1 byte a 13-bit signed
//!   integer; `0xF1`/`0xF2`/`0xF3`/`0xF4` + 2/3/4/8 little-endian bytes a 16/24/32/64-bit one;
//! - `10xxxxxx` is a string of up to 63 bytes, `1110xxxx` + 1 byte one of up to 4095 bytes,
//!   `0xF0` + a u32 length a longer one (and, beyond Redis, `0xF5` + a u64 length for strings
//!   of 4 GiB or more);
//! - after the header and payload, a back-length: the entry's size so far, 7 bits per byte,
//!   readable from the entry's end backwards (low group last, 0x80 = "more bytes before").
//!
//! Forward-only listpacks (`new_forward`) leave the back-lengths out: hashes and sorted sets
//! walk their listpacks from the front (a reverse walk collects the offsets first), and one
//! byte per entry is two bytes per field/value or member/score pair, a tenth of a small
//! hash. The mode is the top bit of the header's count word. Lists keep the back-lengths:
//! they pop and index from the tail, and their node sizes must match Redis's.
//!
//! Strings that are canonical decimal i64s are stored as integers, as Redis does, and read
//! back as the same bytes. Access by position is O(n), as in Redis; collections convert to a
//! general encoding past the `*-max-listpack-*` thresholds.
//!
//! Offsets handed out by this module always point at an entry's first byte, counted from the
//! first entry; the invariant every mutation keeps is that walking forward from 0 by entry
//! sizes lands exactly on `bytes()` after `len()` entries.
//!
//! The unsafe code (the allocation and its header) is confined to the `raw` section below;
//! everything else works on the entry bytes as a slice.

use super::value::parse_canonical_i64;
use crate::protocol::write::itoa_buf;
use std::alloc::{alloc, dealloc, handle_alloc_error, realloc, Layout};
use std::ptr::NonNull;

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
    /// canonical i64, else the string itself.
    pub fn packed(v: &'a [u8]) -> Item<'a> {
        match parse_canonical_i64(v) {
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

// ---- Entry encoding ----------------------------------------------------------------------

const STR32: u8 = 0xF0;
const INT16: u8 = 0xF1;
const INT24: u8 = 0xF2;
const INT32: u8 = 0xF3;
const INT64: u8 = 0xF4;
/// Not in Redis's format: a string of 4 GiB or more (a u64 length follows).
const STR64: u8 = 0xF5;

/// Bytes of an integer entry's header (which is the whole entry but its back-length).
fn int_header_len(n: i64) -> usize {
    match n {
        0..=127 => 1,
        -4096..=4095 => 2,
        -32768..=32767 => 3,
        -8_388_608..=8_388_607 => 4,
        -2_147_483_648..=2_147_483_647 => 5,
        _ => 9,
    }
}

/// Bytes of a string entry's header (before the payload).
fn str_header_len(len: usize) -> usize {
    match len {
        0..=63 => 1,
        64..=4095 => 2,
        _ if len <= u32::MAX as usize => 5,
        _ => 9,
    }
}

/// Bytes of a back-length for an entry of `entry_len` bytes.
fn backlen_len(entry_len: usize) -> usize {
    let mut v = entry_len;
    let mut n = 1;
    while v >= 0x80 {
        v >>= 7;
        n += 1;
    }
    n
}

/// Bytes an item takes as an entry (header, payload, and back-length when `backlen`).
fn encoded_item_len(item: &Item, backlen: bool) -> usize {
    let e = match *item {
        Item::Int(n) => int_header_len(n),
        Item::Str(s) => str_header_len(s.len()) + s.len(),
    };
    if backlen {
        e + backlen_len(e)
    } else {
        e
    }
}

/// Writes `item` as one entry into `dst`, which is exactly `encoded_item_len(item, backlen)`
/// long.
fn encode_item(dst: &mut [u8], item: &Item, backlen: bool) {
    let e = match *item {
        Item::Int(n) => {
            let h = int_header_len(n);
            let le = n.to_le_bytes();
            match h {
                1 => dst[0] = n as u8,
                2 => {
                    let uv = (n as u64) & 0x1FFF;
                    dst[0] = 0xC0 | (uv >> 8) as u8;
                    dst[1] = uv as u8;
                }
                _ => {
                    dst[0] = match h {
                        3 => INT16,
                        4 => INT24,
                        5 => INT32,
                        _ => INT64,
                    };
                    dst[1..h].copy_from_slice(&le[..h - 1]);
                }
            }
            h
        }
        Item::Str(s) => {
            let len = s.len();
            let h = str_header_len(len);
            match h {
                1 => dst[0] = 0x80 | len as u8,
                2 => {
                    dst[0] = 0xE0 | (len >> 8) as u8;
                    dst[1] = len as u8;
                }
                5 => {
                    dst[0] = STR32;
                    dst[1..5].copy_from_slice(&(len as u32).to_le_bytes());
                }
                _ => {
                    dst[0] = STR64;
                    dst[1..9].copy_from_slice(&(len as u64).to_le_bytes());
                }
            }
            dst[h..h + len].copy_from_slice(s);
            h + len
        }
    };
    if !backlen {
        return;
    }
    // The back-length: highest 7-bit group first without the flag, every later byte flagged
    // "more before me", so a reader going backwards stops at the unflagged byte.
    let n = backlen_len(e);
    for (i, b) in dst[e..e + n].iter_mut().enumerate() {
        let shift = 7 * (n - 1 - i);
        let flag = if i == 0 { 0 } else { 0x80 };
        *b = ((e >> shift) & 0x7f) as u8 | flag;
    }
}

/// Reads the entry at `off`: the item and the size of its header plus payload.
fn decode(buf: &[u8], off: usize) -> (Item<'_>, usize) {
    let b = buf[off];
    let le = |n: usize| {
        let mut raw = [0u8; 8];
        raw[..n].copy_from_slice(&buf[off + 1..off + 1 + n]);
        u64::from_le_bytes(raw)
    };
    let sext = |v: u64, bits: u32| ((v << (64 - bits)) as i64) >> (64 - bits);
    let string = |h: usize, len: usize| {
        let s = off + h;
        (Item::Str(&buf[s..s + len]), h + len)
    };
    match b {
        0x00..=0x7F => (Item::Int(b as i64), 1),
        0x80..=0xBF => string(1, (b & 0x3F) as usize),
        0xC0..=0xDF => {
            let uv = (((b & 0x1F) as u64) << 8) | buf[off + 1] as u64;
            (Item::Int(sext(uv, 13)), 2)
        }
        0xE0..=0xEF => string(2, (((b & 0x0F) as usize) << 8) | buf[off + 1] as usize),
        STR32 => string(5, le(4) as usize),
        INT16 => (Item::Int(sext(le(2), 16)), 3),
        INT24 => (Item::Int(sext(le(3), 24)), 4),
        INT32 => (Item::Int(sext(le(4), 32)), 5),
        INT64 => (Item::Int(le(8) as i64), 9),
        STR64 => string(9, le(8) as usize),
        // Only this module writes entries; any other first byte is a bug.
        _ => unreachable!("listpack entry with first byte {b:#x}"),
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

// ---- The allocation ----------------------------------------------------------------------

/// A packed sequence of entries behind one pointer (see the module comment for the layout).
#[repr(transparent)]
pub struct Listpack {
    ptr: NonNull<u8>,
}

// SAFETY: a `Listpack` owns its allocation uniquely (like `Box<[u8]>`); nothing is shared.
unsafe impl Send for Listpack {}
// SAFETY: shared access only reads.
unsafe impl Sync for Listpack {}

/// Header bytes of a listpack whose entries take `len` bytes.
fn header_len(len: usize) -> usize {
    if len < u32::MAX as usize {
        8
    } else {
        16
    }
}

/// The allocation's alignment: the header's u64, and one spare low pointer bit for the
/// containers that tag a listpack pointer (`storage::compact`).
const ALIGN: usize = 8;

/// The count word's top bit: entries carry no back-lengths.
const FORWARD_FLAG: u32 = 1 << 31;

fn layout(len: usize) -> Layout {
    match Layout::from_size_align(header_len(len) + len, ALIGN) {
        Ok(l) => l,
        Err(_) => unreachable!("a listpack larger than the address space"),
    }
}

impl Listpack {
    pub fn new() -> Self {
        let l = layout(0);
        // SAFETY: the layout has non-zero size (the header).
        let raw = unsafe { alloc(l) };
        let Some(ptr) = NonNull::new(raw) else {
            handle_alloc_error(l)
        };
        // SAFETY: the allocation holds the 8-byte header, aligned for u32.
        unsafe {
            raw.cast::<u32>().write(0);
            raw.cast::<u32>().add(1).write(0);
        }
        Listpack { ptr }
    }

    /// An empty forward-only listpack: entries without back-lengths (see the module comment).
    /// Walking backwards (`prev`, `iter_rev`, `last`) costs a walk from the front.
    pub fn new_forward() -> Self {
        let lp = Listpack::new();
        // SAFETY: the count word is the header's second u32 (see `count_word`).
        unsafe { lp.ptr.as_ptr().cast::<u32>().add(1).write(FORWARD_FLAG) }
        lp
    }

    /// A listpack in the mode of `self` holding `count` entries whose bytes are `entries`.
    fn sibling_of(&self, entries: &[u8], count: u32) -> Self {
        let mut lp = if self.has_backlen() {
            Listpack::new()
        } else {
            Listpack::new_forward()
        };
        lp.resize(entries.len());
        lp.buf_mut().copy_from_slice(entries);
        lp.set_count(count);
        lp
    }

    /// Whether entries end with back-lengths (false for `new_forward` listpacks).
    pub fn has_backlen(&self) -> bool {
        self.count_word() & FORWARD_FLAG == 0
    }

    /// Bytes of the packed data (for memory accounting and thresholds).
    pub fn bytes(&self) -> usize {
        // SAFETY: the allocation starts with the header written by `new`/`resize`: a u32 byte
        // count, and when that is u32::MAX the real count as a u64 at offset 8.
        unsafe {
            let small = self.ptr.as_ptr().cast::<u32>().read();
            if small != u32::MAX {
                small as usize
            } else {
                self.ptr.as_ptr().add(8).cast::<u64>().read() as usize
            }
        }
    }

    /// The header's second u32: the entry count, and `FORWARD_FLAG`.
    fn count_word(&self) -> u32 {
        // SAFETY: the header's second u32, written by `new` (see `layout`).
        unsafe { self.ptr.as_ptr().cast::<u32>().add(1).read() }
    }

    fn count(&self) -> u32 {
        self.count_word() & !FORWARD_FLAG
    }

    fn set_count(&mut self, count: u32) {
        debug_assert!(count < FORWARD_FLAG, "listpack count overflow");
        let word = (self.count_word() & FORWARD_FLAG) | count;
        // SAFETY: as in `count_word`; `&mut self` makes the write exclusive.
        unsafe { self.ptr.as_ptr().cast::<u32>().add(1).write(word) }
    }

    /// The entries' bytes.
    fn buf(&self) -> &[u8] {
        let len = self.bytes();
        // SAFETY: `len` initialized bytes follow the header (`resize` zero-fills growth);
        // the borrow of `self` keeps the allocation alive and unchanged.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr().add(header_len(len)), len) }
    }

    fn buf_mut(&mut self) -> &mut [u8] {
        let len = self.bytes();
        // SAFETY: as in `buf`, and `&mut self` makes the access exclusive.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr().add(header_len(len)), len) }
    }

    /// Resizes the entries' bytes to `new_len`, keeping the first `min(old, new)` bytes and
    /// zero-filling any growth; the allocation is exactly the new size.
    fn resize(&mut self, new_len: usize) {
        let old_len = self.bytes();
        if new_len == old_len {
            return;
        }
        let (old_h, new_h) = (header_len(old_len), header_len(new_len));
        let (old_l, new_l) = (layout(old_len), layout(new_len));
        let raw = if old_h == new_h {
            // SAFETY: `ptr` was allocated with `old_l` (the header records `old_len`), and
            // the new size is non-zero and fits isize (`layout` checked it).
            unsafe { realloc(self.ptr.as_ptr(), old_l, new_l.size()) }
        } else {
            // The header changes size: move the entries into a fresh allocation.
            // SAFETY: non-zero size; the copy reads `min` initialized entry bytes from the
            // old allocation and writes inside the new one, which cannot overlap it.
            unsafe {
                let fresh = alloc(new_l);
                if !fresh.is_null() {
                    std::ptr::copy_nonoverlapping(
                        self.ptr.as_ptr().add(old_h),
                        fresh.add(new_h),
                        old_len.min(new_len),
                    );
                    fresh.cast::<u32>().add(1).write(self.count_word());
                    dealloc(self.ptr.as_ptr(), old_l);
                }
                fresh
            }
        };
        let Some(ptr) = NonNull::new(raw) else {
            handle_alloc_error(new_l)
        };
        self.ptr = ptr;
        // SAFETY: the allocation now holds `new_h + new_len` bytes, aligned to 8; the header
        // writes and the zero fill stay inside it.
        unsafe {
            if new_h == 8 {
                raw.cast::<u32>().write(new_len as u32);
            } else {
                raw.cast::<u32>().write(u32::MAX);
                raw.add(8).cast::<u64>().write(new_len as u64);
            }
            if new_len > old_len {
                std::ptr::write_bytes(raw.add(new_h + old_len), 0, new_len - old_len);
            }
        }
    }

    /// Opens a gap of `n` bytes at `off` (entries from `off` on move right by `n`).
    fn open_gap(&mut self, off: usize, n: usize) {
        let old = self.bytes();
        self.resize(old + n);
        self.buf_mut().copy_within(off..old, off + n);
    }

    /// Closes the bytes `off..end` (entries after `end` move left).
    fn close_gap(&mut self, off: usize, end: usize) {
        let old = self.bytes();
        self.buf_mut().copy_within(end..old, off);
        self.resize(old - (end - off));
    }
}

impl Drop for Listpack {
    fn drop(&mut self) {
        // SAFETY: allocated with the layout of the byte count its header records.
        unsafe { dealloc(self.ptr.as_ptr(), layout(self.bytes())) }
    }
}

impl Clone for Listpack {
    fn clone(&self) -> Self {
        self.sibling_of(self.buf(), self.count())
    }
}

impl Default for Listpack {
    fn default() -> Self {
        Listpack::new()
    }
}

impl PartialEq for Listpack {
    fn eq(&self, other: &Self) -> bool {
        self.count_word() == other.count_word() && self.buf() == other.buf()
    }
}

impl Eq for Listpack {}

impl std::fmt::Debug for Listpack {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let text = |i: Item<'_>| String::from_utf8_lossy(&i.to_vec()).into_owned();
        f.debug_list().entries(self.iter().map(text)).finish()
    }
}

// ---- Operations --------------------------------------------------------------------------

impl Listpack {
    pub fn len(&self) -> usize {
        self.count() as usize
    }

    pub fn is_empty(&self) -> bool {
        self.count() == 0
    }

    /// Heap bytes held (the allocation is always exactly sized).
    pub fn capacity(&self) -> usize {
        let len = self.bytes();
        header_len(len) + len
    }

    /// Bytes `v` takes as an entry with a back-length (a list's entry).
    pub fn entry_len(v: &[u8]) -> usize {
        encoded_item_len(&Item::packed(v), true)
    }

    /// Kept for callers that size a listpack before filling it: allocations are always
    /// exact here (each change reallocates, in place while the size class allows), so there
    /// is nothing to reserve.
    pub fn reserve_exact(&mut self, _additional: usize) {}

    /// The entry at `off` and the offset of the next one.
    pub fn get_at(&self, off: usize) -> (Item<'_>, usize) {
        let (item, elen) = decode(self.buf(), off);
        let backlen = if self.has_backlen() {
            backlen_len(elen)
        } else {
            0
        };
        (item, off + elen + backlen)
    }

    /// Offset of the first entry, if any.
    pub fn first(&self) -> Option<usize> {
        if self.is_empty() {
            None
        } else {
            Some(0)
        }
    }

    /// Offset of the last entry, if any.
    pub fn last(&self) -> Option<usize> {
        if self.is_empty() {
            None
        } else {
            self.prev(self.bytes())
        }
    }

    /// Offset of the entry after the one at `off`.
    pub fn next(&self, off: usize) -> Option<usize> {
        let (_, n) = self.get_at(off);
        if n >= self.bytes() {
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
        if !self.has_backlen() {
            // No back-lengths: the entry whose successor starts at `off`, from the front.
            let mut at = 0;
            loop {
                let next = self.get_at(at).1;
                if next >= off {
                    return Some(at);
                }
                at = next;
            }
        }
        let (elen, bl) = get_backlen(self.buf(), off);
        Some(off - bl - elen)
    }

    /// Offset of the entry at `index` (negative counts from the end).
    pub fn offset_of(&self, index: i64) -> Option<usize> {
        let n = self.len() as i64;
        let idx = if index < 0 { n + index } else { index };
        if idx < 0 || idx >= n {
            return None;
        }
        if idx <= n / 2 || !self.has_backlen() {
            let mut off = 0;
            for _ in 0..idx {
                off = self.next(off)?;
            }
            Some(off)
        } else {
            let mut off = self.bytes();
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
            left: self.len(),
        }
    }

    /// Iterates from the end.
    pub fn iter_rev(&self) -> RevIter<'_> {
        // Without back-lengths the entries' offsets are collected from the front first.
        let offsets = if self.has_backlen() {
            Vec::new()
        } else {
            let mut v = Vec::with_capacity(self.len());
            let mut off = 0;
            for _ in 0..self.len() {
                v.push(off);
                off = self.get_at(off).1;
            }
            v
        };
        RevIter {
            lp: self,
            end: self.bytes(),
            left: self.len(),
            offsets,
        }
    }

    pub fn push_back(&mut self, v: &[u8]) {
        self.insert_at(self.bytes(), v);
    }

    pub fn push_front(&mut self, v: &[u8]) {
        self.insert_at(0, v);
    }

    /// Inserts before the entry at `off` (or appends when `off == bytes()`).
    pub fn insert_at(&mut self, off: usize, v: &[u8]) {
        self.insert_items_at(off, &[Item::packed(v)]);
    }

    /// Replaces the entry at `off`.
    pub fn replace_at(&mut self, off: usize, v: &[u8]) {
        let (_, end) = self.get_at(off);
        let item = Item::packed(v);
        let backlen = self.has_backlen();
        let n = encoded_item_len(&item, backlen);
        let old = end - off;
        if n > old {
            self.open_gap(end, n - old);
        } else if n < old {
            self.close_gap(off + n, end);
        }
        encode_item(&mut self.buf_mut()[off..off + n], &item, backlen);
    }

    /// Removes the entry at `off`; returns the offset of what followed it.
    pub fn remove_at(&mut self, off: usize) -> usize {
        let (_, end) = self.get_at(off);
        self.close_gap(off, end);
        self.set_count(self.count() - 1);
        off
    }

    /// Removes `n` entries starting at `off`.
    pub fn remove_range(&mut self, off: usize, n: usize) {
        let mut end = off;
        let mut removed = 0u32;
        let len = self.bytes();
        while (removed as usize) < n && end < len {
            end = self.get_at(end).1;
            removed += 1;
        }
        self.close_gap(off, end);
        self.set_count(self.count() - removed);
    }

    /// Inserts `items` before the entry at `off` (or appends when `off == bytes()`), each
    /// encoded exactly as given: an `Int` as an integer entry, a `Str` as a string entry even
    /// when its bytes read as an integer. Sorted sets store raw score bytes this way (see
    /// `storage::zset`).
    pub fn insert_items_at(&mut self, off: usize, items: &[Item]) {
        let backlen = self.has_backlen();
        let n: usize = items.iter().map(|i| encoded_item_len(i, backlen)).sum();
        self.open_gap(off, n);
        let buf = self.buf_mut();
        let mut at = off;
        for item in items {
            let len = encoded_item_len(item, backlen);
            encode_item(&mut buf[at..at + len], item, backlen);
            at += len;
        }
        self.set_count(self.count() + items.len() as u32);
    }

    /// Offset of the first entry equal to `v`, searching from `from` and skipping `skip`
    /// entries after each comparison (1 for lists, 2 for field/value pairs).
    pub fn find(&self, from: usize, v: &[u8], skip: usize) -> Option<usize> {
        let as_int = parse_canonical_i64(v);
        let mut off = from;
        let len = self.bytes();
        while off < len {
            let (item, mut next) = self.get_at(off);
            let hit = match item {
                Item::Int(n) => as_int == Some(n),
                Item::Str(s) => s == v,
            };
            if hit {
                return Some(off);
            }
            for _ in 1..skip {
                if next >= len {
                    return None;
                }
                next = self.get_at(next).1;
            }
            off = next;
        }
        None
    }

    /// Allocations are always exact; kept for callers written for a growable buffer.
    pub fn shrink_to_fit(&mut self) {}

    /// Allocations are always exact; kept for callers written for a growable buffer.
    pub fn shrink_if_sparse(&mut self) {}

    /// Splits at the entry starting at `off` (or at `bytes()`): `self` keeps the entries
    /// before it, the returned listpack holds that entry and the ones after it.
    pub fn split_off_at(&mut self, off: usize) -> Listpack {
        let mut moved = 0u32;
        let mut pos = off;
        let len = self.bytes();
        while pos < len {
            pos = self.get_at(pos).1;
            moved += 1;
        }
        let tail = self.sibling_of(&self.buf()[off..], moved);
        self.resize(off);
        self.set_count(self.count() - moved);
        tail
    }

    /// Appends every entry of `other` after this listpack's last one.
    pub fn append(&mut self, other: &Listpack) {
        debug_assert_eq!(
            self.has_backlen(),
            other.has_backlen(),
            "appending another mode"
        );
        let old = self.bytes();
        self.resize(old + other.bytes());
        self.buf_mut()[old..].copy_from_slice(other.buf());
        self.set_count(self.count() + other.count());
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
    /// Entry offsets, for a listpack without back-lengths (popped from the end).
    offsets: Vec<usize>,
}

impl<'a> Iterator for RevIter<'a> {
    type Item = Item<'a>;

    fn next(&mut self) -> Option<Item<'a>> {
        if self.left == 0 {
            return None;
        }
        let off = if self.lp.has_backlen() {
            self.lp.prev(self.end)?
        } else {
            self.offsets.pop()?
        };
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

    /// Entry sizes are Redis's listpack entry sizes (`lpEncodeGetType` + back-length).
    #[test]
    fn entry_sizes_match_redis() {
        let cases: [(&[u8], usize); 14] = [
            (b"0", 2),
            (b"127", 2),
            (b"128", 3),
            (b"-1", 3),
            (b"-4096", 3),
            (b"4096", 4),
            (b"-32768", 4),
            (b"32768", 5),
            (b"8388608", 6),
            (b"2147483648", 10),
            (b"-9223372036854775808", 10),
            (b"", 2),
            (&[b'x'; 63], 65),
            (&[b'x'; 64], 67),
        ];
        for (v, size) in cases {
            assert_eq!(
                Listpack::entry_len(v),
                size,
                "{:?}",
                String::from_utf8_lossy(v)
            );
            let mut lp = Listpack::new();
            lp.push_back(v);
            assert_eq!(lp.bytes(), size);
            assert_eq!(lp.capacity(), size + 8);
            assert!(lp.get(0).is_some_and(|i| i.eq_bytes(v)));
        }
        // 4095 bytes: 2-byte header, 2-byte back-length; 4096: 5-byte header.
        assert_eq!(Listpack::entry_len(&[b'y'; 4095]), 4095 + 2 + 2);
        assert_eq!(Listpack::entry_len(&[b'y'; 4096]), 4096 + 5 + 2);
        assert_eq!(Listpack::entry_len(&[b'y'; 20_000]), 20_000 + 5 + 3);
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
        fn behaves_like_a_vec(ops in proptest::collection::vec(op(), 1..60), forward: bool) {
            let mut lp = if forward { Listpack::new_forward() } else { Listpack::new() };
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
            ops in proptest::collection::vec((any::<usize>(), any::<i64>(), value(), any::<bool>()), 1..40),
            forward: bool,
        ) {
            let mut lp = if forward { Listpack::new_forward() } else { Listpack::new() };
            let mut model: Vec<(bool, Vec<u8>)> = Vec::new();
            for (pos, n, v, as_int) in ops {
                let i = pos % (model.len() + 1);
                let off = if i == model.len() { lp.bytes() } else { lp.offset_of(i as i64).expect("in range") };
                let item = if as_int { Item::Int(n) } else { Item::Str(&v) };
                lp.insert_items_at(off, &[item, Item::packed(&v)]);
                let first = if as_int { (true, n.to_string().into_bytes()) } else { (false, v.clone()) };
                model.insert(i, first);
                model.insert(i + 1, (parse_canonical_i64(&v).is_some(), v));
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
