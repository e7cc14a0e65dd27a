//! Redis's listpack, byte for byte: the blob RDB stores for quicklist nodes, small hashes and
//! small sorted sets.
//!
//! This is Redis's wire format, not `storage::listpack` (our in-memory packing). Layout:
//! a 6-byte header (total bytes as u32 LE, element count as u16 LE, 65535 = "count it"),
//! the entries, and an end byte 0xFF. An entry is an encoding header, its data, and a
//! "backlen" (the size of header + data, 1 to 5 bytes, readable right to left).
//!
//! Encodings by first byte: `0xxxxxxx` 7-bit unsigned int; `10xxxxxx` string of up to 63
//! bytes; `110xxxxx` + 1 byte 13-bit signed int; `1110xxxx` + 1 byte string of up to 4095
//! bytes; `0xF0` + u32 LE string; `0xF1`/`0xF2`/`0xF3`/`0xF4` 16/24/32/64-bit signed int LE.
//! A string that is the canonical decimal form of an i64 is always written as an integer, as
//! Redis's `lpAppend` does, so the blobs we write equal the ones Redis builds.
//!
//! The parser validates as Redis's deep `lpValidateIntegrity` does (header size, end byte,
//! every entry inside the blob, every backlen matching its entry, the count) and returns the
//! entries borrowed from the blob; it never indexes past the slice.

#![deny(clippy::indexing_slicing)]

use super::array_at;
use crate::storage::listpack::Item;
use crate::storage::value::parse_canonical_i64;

const HEADER_BYTES: usize = 6;
const END: u8 = 0xff;
/// The header's count field saturates here ("unknown, walk to count").
const COUNT_UNKNOWN: usize = 65535;

/// Builds one listpack blob.
pub struct ListpackWriter {
    buf: Vec<u8>,
    count: usize,
}

impl Default for ListpackWriter {
    fn default() -> Self {
        Self::new()
    }
}

impl ListpackWriter {
    pub fn new() -> Self {
        let mut buf = Vec::with_capacity(64);
        buf.extend_from_slice(&[0; HEADER_BYTES]);
        ListpackWriter { buf, count: 0 }
    }

    /// Appends an entry given as bytes (integer-encoded when canonical, like `lpAppend`).
    pub fn push_bytes(&mut self, s: &[u8]) {
        match parse_canonical_i64(s) {
            Some(n) => self.push_int(n),
            None => self.push_str(s),
        }
    }

    pub fn push_item(&mut self, item: Item<'_>) {
        match item {
            Item::Int(n) => self.push_int(n),
            Item::Str(s) => self.push_bytes(s),
        }
    }

    pub fn push_int(&mut self, v: i64) {
        let start = self.buf.len();
        if (0..=127).contains(&v) {
            self.buf.push(v as u8);
        } else if (-4096..=4095).contains(&v) {
            let u = (v & 0x1fff) as u16;
            self.buf.push(0xc0 | (u >> 8) as u8);
            self.buf.push(u as u8);
        } else if (-32768..=32767).contains(&v) {
            self.buf.push(0xf1);
            self.buf.extend_from_slice(&(v as i16).to_le_bytes());
        } else if (-8_388_608..=8_388_607).contains(&v) {
            self.buf.push(0xf2);
            let b = (v as i32).to_le_bytes();
            self.buf.extend_from_slice(&[b[0], b[1], b[2]]);
        } else if i32::try_from(v).is_ok() {
            self.buf.push(0xf3);
            self.buf.extend_from_slice(&(v as i32).to_le_bytes());
        } else {
            self.buf.push(0xf4);
            self.buf.extend_from_slice(&v.to_le_bytes());
        }
        self.finish_entry(start);
    }

    /// Appends a string entry verbatim (no integer check).
    fn push_str(&mut self, s: &[u8]) {
        let start = self.buf.len();
        let len = s.len();
        if len < 64 {
            self.buf.push(0x80 | len as u8);
        } else if len < 4096 {
            self.buf.push(0xe0 | (len >> 8) as u8);
            self.buf.push(len as u8);
        } else {
            self.buf.push(0xf0);
            // Strings of 4 GiB or more cannot be listpack entries; callers keep entries far
            // below that (the encoding thresholds, or a plain quicklist node past 1 GiB).
            self.buf.extend_from_slice(&(len as u32).to_le_bytes());
        }
        self.buf.extend_from_slice(s);
        self.finish_entry(start);
    }

    fn finish_entry(&mut self, start: usize) {
        let entry_len = (self.buf.len() - start) as u64;
        put_backlen(&mut self.buf, entry_len);
        self.count += 1;
    }

    /// The finished blob.
    pub fn finish(mut self) -> Vec<u8> {
        self.buf.push(END);
        let total = (self.buf.len() as u32).to_le_bytes();
        let count = (self.count.min(COUNT_UNKNOWN) as u16).to_le_bytes();
        let header = [total[0], total[1], total[2], total[3], count[0], count[1]];
        for (b, h) in self.buf.iter_mut().zip(header) {
            *b = h;
        }
        self.buf
    }
}

/// Redis's `lpEncodeBacklen`, including its boundaries (16383 takes three bytes).
fn put_backlen(out: &mut Vec<u8>, l: u64) {
    if l <= 127 {
        out.push(l as u8);
    } else if l < 16383 {
        out.push((l >> 7) as u8);
        out.push((l & 127) as u8 | 128);
    } else if l < 2_097_151 {
        out.push((l >> 14) as u8);
        out.push(((l >> 7) & 127) as u8 | 128);
        out.push((l & 127) as u8 | 128);
    } else if l < 268_435_455 {
        out.push((l >> 21) as u8);
        out.push(((l >> 14) & 127) as u8 | 128);
        out.push(((l >> 7) & 127) as u8 | 128);
        out.push((l & 127) as u8 | 128);
    } else {
        out.push((l >> 28) as u8);
        out.push(((l >> 21) & 127) as u8 | 128);
        out.push(((l >> 14) & 127) as u8 | 128);
        out.push(((l >> 7) & 127) as u8 | 128);
        out.push((l & 127) as u8 | 128);
    }
}

fn backlen_bytes(l: u64) -> usize {
    match l {
        0..=127 => 1,
        128..=16382 => 2,
        16383..=2_097_150 => 3,
        2_097_151..=268_435_454 => 4,
        _ => 5,
    }
}

/// Reads the backlen whose last byte is `blob[last]`, right to left.
fn read_backlen(blob: &[u8], last: usize) -> Option<u64> {
    let mut val = 0u64;
    let mut shift = 0;
    let mut p = last;
    loop {
        let b = *blob.get(p)?;
        val |= ((b & 127) as u64) << shift;
        if b & 128 == 0 {
            return Some(val);
        }
        shift += 7;
        if shift > 28 {
            return None;
        }
        p = p.checked_sub(1)?;
    }
}

fn le_signed(bytes: &[u8]) -> i64 {
    let mut v = 0u64;
    for (i, &b) in bytes.iter().enumerate() {
        v |= (b as u64) << (8 * i);
    }
    let bits = 8 * bytes.len() as u32;
    let shift = 64 - bits;
    ((v << shift) as i64) >> shift
}

/// Decodes the entry at `p` (not the end byte): (item, bytes of header + data).
fn entry_at(blob: &[u8], p: usize) -> Result<(Item<'_>, usize), &'static str> {
    const OUT: &str = "listpack entry reaches past the end";
    let first = *blob.get(p).ok_or(OUT)?;
    let fixed_int = |n: usize| -> Result<(Item<'_>, usize), &'static str> {
        let data = blob.get(p + 1..p + 1 + n).ok_or(OUT)?;
        Ok((Item::Int(le_signed(data)), 1 + n))
    };
    let string = |hdr: usize, len: usize| -> Result<(Item<'_>, usize), &'static str> {
        let data = blob.get(p + hdr..p + hdr + len).ok_or(OUT)?;
        Ok((Item::Str(data), hdr + len))
    };
    match first {
        0x00..=0x7f => Ok((Item::Int(first as i64), 1)),
        0x80..=0xbf => string(1, (first & 0x3f) as usize),
        0xc0..=0xdf => {
            let low = *blob.get(p + 1).ok_or(OUT)?;
            let u = ((first as i64 & 0x1f) << 8) | low as i64;
            let v = if u >= 1 << 12 { u - (1 << 13) } else { u };
            Ok((Item::Int(v), 2))
        }
        0xe0..=0xef => {
            let low = *blob.get(p + 1).ok_or(OUT)?;
            string(2, ((first as usize & 0x0f) << 8) | low as usize)
        }
        0xf0 => {
            let len = u32::from_le_bytes(array_at(blob, p + 1).ok_or(OUT)?) as usize;
            string(5, len)
        }
        0xf1 => fixed_int(2),
        0xf2 => fixed_int(3),
        0xf3 => fixed_int(4),
        0xf4 => fixed_int(8),
        _ => Err("invalid listpack entry encoding"),
    }
}

/// Validates a listpack blob and returns its entries.
pub fn entries(blob: &[u8]) -> Result<Vec<Item<'_>>, &'static str> {
    entries_checked(blob, true)
}

/// `entries`, with the checks that only guard right-to-left traversal (each backlen) and the
/// header's count left out unless `deep`: Redis's shallow validation checks only the size
/// and the end byte, and a forward parse is safe without them.
pub fn entries_checked(blob: &[u8], deep: bool) -> Result<Vec<Item<'_>>, &'static str> {
    const SHORT: &str = "listpack shorter than its header";
    if blob.len() < HEADER_BYTES + 1 {
        return Err(SHORT);
    }
    let total = u32::from_le_bytes(array_at(blob, 0).ok_or(SHORT)?) as usize;
    if total != blob.len() {
        return Err("listpack total bytes do not match its size");
    }
    if blob.last() != Some(&END) {
        return Err("listpack does not end with 0xFF");
    }
    let header_count = u16::from_le_bytes(array_at(blob, 4).ok_or(SHORT)?) as usize;
    let end = blob.len() - 1;
    // Every entry takes at least two bytes, which bounds this allocation by the blob.
    let mut out = Vec::with_capacity(header_count.min(end / 2));
    let mut p = HEADER_BYTES;
    while p < end {
        let (item, len) = entry_at(blob, p)?;
        let back = backlen_bytes(len as u64);
        let next = p + len + back;
        if next > end {
            return Err("listpack entry reaches past the end");
        }
        if deep && read_backlen(blob, next - 1) != Some(len as u64) {
            return Err("listpack entry backlen does not match its size");
        }
        out.push(item);
        p = next;
    }
    if deep && header_count != COUNT_UNKNOWN && header_count != out.len() {
        return Err("listpack count does not match its entries");
    }
    Ok(out)
}

#[cfg(test)]
#[allow(clippy::indexing_slicing)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn integer_encodings_at_their_boundaries() {
        let values = [
            0,
            127,
            128,
            -1,
            -4096,
            4095,
            4096,
            -4097,
            32767,
            -32768,
            32768,
            8_388_607,
            -8_388_608,
            8_388_608,
            i32::MAX as i64,
            i32::MIN as i64,
            i32::MAX as i64 + 1,
            i64::MAX,
            i64::MIN,
        ];
        let mut w = ListpackWriter::new();
        for v in values {
            w.push_int(v);
        }
        let blob = w.finish();
        let got: Vec<Item> = entries(&blob).expect("valid");
        let want: Vec<Item> = values.iter().map(|&v| Item::Int(v)).collect();
        assert_eq!(got, want);
    }

    #[test]
    fn matches_redis_bytes() {
        // RPUSH l a 1 -1 hello 300 as Redis 7.0.15 packs it (from DEBUG LISTPACK / DUMP).
        let mut w = ListpackWriter::new();
        for s in [&b"a"[..], b"1", b"-1", b"hello", b"300"] {
            w.push_bytes(s);
        }
        let blob = w.finish();
        let want: &[u8] = &[
            0x19, 0, 0, 0, 5, 0, // header: 25 bytes, 5 entries
            0x81, b'a', 2, // "a"
            0x01, 1, // 1
            0xdf, 0xff, 2, // -1 as 13-bit
            0x85, b'h', b'e', b'l', b'l', b'o', 6, // "hello"
            0xc1, 0x2c, 2,    // 300 as 13-bit
            0xff, // end
        ];
        assert_eq!(blob, want);
    }

    #[test]
    fn long_strings_and_backlens() {
        for len in [63, 64, 127, 128, 4095, 4096, 16383, 20000] {
            let s = vec![b'x'; len];
            let mut w = ListpackWriter::new();
            w.push_bytes(&s);
            w.push_bytes(b"tail");
            let blob = w.finish();
            let got = entries(&blob).expect("valid");
            assert_eq!(got, vec![Item::Str(&s), Item::Str(b"tail")], "len {len}");
        }
    }

    #[test]
    fn corrupt_blobs_are_rejected() {
        let mut w = ListpackWriter::new();
        w.push_bytes(b"abc");
        let blob = w.finish();
        assert!(entries(&blob[..blob.len() - 1]).is_err());
        let mut bad = blob.clone();
        bad[4] = 2; // count
        assert!(entries(&bad).is_err());
        let mut bad = blob.clone();
        bad[6] = 0x90; // string length past the end
        assert!(entries(&bad).is_err());
        let mut bad = blob.clone();
        bad[10] = 9; // backlen
        assert!(entries(&bad).is_err());
        let mut bad = blob;
        bad[6] = 0xf7; // unknown encoding
        assert!(entries(&bad).is_err());
    }

    proptest! {
        #[test]
        fn round_trip(items in proptest::collection::vec(prop_oneof![
            any::<i64>().prop_map(|n| n.to_string().into_bytes()),
            proptest::collection::vec(any::<u8>(), 0..100),
            (0usize..5000).prop_map(|n| vec![b'z'; n]),
        ], 0..20)) {
            let mut w = ListpackWriter::new();
            for it in &items {
                w.push_bytes(it);
            }
            let blob = w.finish();
            let got: Vec<Vec<u8>> = entries(&blob).expect("valid").iter().map(|i| i.to_vec()).collect();
            prop_assert_eq!(got, items);
        }

        #[test]
        fn parse_never_panics(blob in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = entries(&blob);
        }
    }
}
