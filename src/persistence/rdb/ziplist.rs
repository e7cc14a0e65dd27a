//! Redis's ziplist, read-only: the packed encoding RDB files from Redis 2.6 to 6.2 hold for
//! small lists, hashes and sorted sets (types 10, 12, 13, and the nodes of type 14).
//! Redis 7.0 converts them to listpacks on load and never writes them; so do we.
//!
//! Layout: `zlbytes` (u32 LE, the blob size), `zltail` (u32 LE, offset of the last entry),
//! `zllen` (u16 LE, 65535 = "count it"), the entries, and an end byte 0xFF. An entry is
//! `prevlen` (1 byte, or 0xFE + u32 LE), an encoding and the data:
//! - `00pppppp`: string of up to 63 bytes; `01pppppp qqqqqqqq`: up to 16383 (big endian);
//!   `10000000` + u32 big endian: longer;
//! - `11000000` i16, `11010000` i32, `11100000` i64, `11110000` i24, `11111110` i8 (LE);
//! - `1111xxxx` with xxxx in 1..=13: the integer xxxx - 1, no data.
//!
//! Validation follows Redis's deep `ziplistValidateIntegrity`: header size and end byte,
//! entries inside the blob, each `prevlen` equal to the previous entry's size, `zltail` at
//! the last entry, and the count.

#![deny(clippy::indexing_slicing)]

use super::array_at;
use crate::storage::listpack::Item;

const HEADER_BYTES: usize = 10;
const END: u8 = 0xff;
const BIG_PREVLEN: u8 = 0xfe;
const COUNT_UNKNOWN: usize = 65535;

fn le_signed(bytes: &[u8]) -> i64 {
    let mut v = 0u64;
    for (i, &b) in bytes.iter().enumerate() {
        v |= (b as u64) << (8 * i);
    }
    let shift = 64 - 8 * bytes.len() as u32;
    ((v << shift) as i64) >> shift
}

/// Decodes the entry at `p`: (prevlen, item, entry size).
fn entry_at(blob: &[u8], p: usize) -> Result<(usize, Item<'_>, usize), &'static str> {
    const OUT: &str = "ziplist entry reaches past the end";
    let first = *blob.get(p).ok_or(OUT)?;
    let (prevlen, prev_bytes) = if first < BIG_PREVLEN {
        (first as usize, 1)
    } else if first == BIG_PREVLEN {
        let len = u32::from_le_bytes(array_at(blob, p + 1).ok_or(OUT)?);
        (len as usize, 5)
    } else {
        return Err("ziplist entry starts with the end byte");
    };
    let e = p + prev_bytes;
    let enc = *blob.get(e).ok_or(OUT)?;
    let string = |hdr: usize, len: usize| -> Result<(usize, Item<'_>, usize), &'static str> {
        let data = blob.get(e + hdr..e + hdr + len).ok_or(OUT)?;
        Ok((prevlen, Item::Str(data), prev_bytes + hdr + len))
    };
    let int = |n: usize| -> Result<(usize, Item<'_>, usize), &'static str> {
        let data = blob.get(e + 1..e + 1 + n).ok_or(OUT)?;
        Ok((prevlen, Item::Int(le_signed(data)), prev_bytes + 1 + n))
    };
    match enc >> 6 {
        0 => string(1, (enc & 0x3f) as usize),
        1 => {
            let low = *blob.get(e + 1).ok_or(OUT)?;
            string(2, ((enc as usize & 0x3f) << 8) | low as usize)
        }
        2 if enc == 0x80 => {
            let len = u32::from_be_bytes(array_at(blob, e + 1).ok_or(OUT)?);
            string(5, len as usize)
        }
        2 => Err("invalid ziplist string encoding"),
        _ => match enc {
            0xc0 => int(2),
            0xd0 => int(4),
            0xe0 => int(8),
            0xf0 => int(3),
            0xfe => int(1),
            0xf1..=0xfd => Ok((prevlen, Item::Int((enc & 0x0f) as i64 - 1), prev_bytes + 1)),
            _ => Err("invalid ziplist integer encoding"),
        },
    }
}

/// Validates a ziplist blob and returns its entries.
pub fn entries(blob: &[u8]) -> Result<Vec<Item<'_>>, &'static str> {
    const SHORT: &str = "ziplist shorter than its header";
    if blob.len() < HEADER_BYTES + 1 {
        return Err(SHORT);
    }
    let bytes = u32::from_le_bytes(array_at(blob, 0).ok_or(SHORT)?) as usize;
    if bytes != blob.len() {
        return Err("ziplist total bytes do not match its size");
    }
    let end = blob.len() - 1;
    if blob.last() != Some(&END) {
        return Err("ziplist does not end with 0xFF");
    }
    let tail = u32::from_le_bytes(array_at(blob, 4).ok_or(SHORT)?) as usize;
    if tail > end {
        return Err("ziplist tail offset past the end");
    }
    let header_count = u16::from_le_bytes(array_at(blob, 8).ok_or(SHORT)?) as usize;
    // Every entry takes at least two bytes, which bounds this allocation by the blob.
    let mut out = Vec::with_capacity(header_count.min(end / 2));
    let mut p = HEADER_BYTES;
    let mut prev: Option<usize> = None;
    let mut prev_size = 0;
    while p < end {
        let (prevlen, item, size) = entry_at(blob, p)?;
        if prevlen != prev_size {
            return Err("ziplist prevlen does not match the previous entry");
        }
        if p + size > end {
            return Err("ziplist entry reaches past the end");
        }
        out.push(item);
        prev = Some(p);
        prev_size = size;
        p += size;
    }
    if prev.is_some_and(|last| last != tail) {
        return Err("ziplist tail offset does not point at the last entry");
    }
    if header_count != COUNT_UNKNOWN && header_count != out.len() {
        return Err("ziplist count does not match its entries");
    }
    Ok(out)
}

#[cfg(test)]
#[allow(clippy::indexing_slicing)]
pub(crate) mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Builds a ziplist the way Redis's `ziplistPush` does (for tests of the reader).
    pub(crate) fn build(items: &[Item]) -> Vec<u8> {
        let mut body = Vec::new();
        let mut prev_size = 0usize;
        let mut last = HEADER_BYTES;
        for it in items {
            let start = body.len();
            last = HEADER_BYTES + start;
            if prev_size < BIG_PREVLEN as usize {
                body.push(prev_size as u8);
            } else {
                body.push(BIG_PREVLEN);
                body.extend_from_slice(&(prev_size as u32).to_le_bytes());
            }
            match *it {
                Item::Int(n @ 0..=12) => body.push(0xf1 + n as u8),
                Item::Int(n) if i8::try_from(n).is_ok() => {
                    body.push(0xfe);
                    body.push(n as u8);
                }
                Item::Int(n) if i16::try_from(n).is_ok() => {
                    body.push(0xc0);
                    body.extend_from_slice(&(n as i16).to_le_bytes());
                }
                Item::Int(n) if (-(1 << 23)..(1 << 23)).contains(&n) => {
                    body.push(0xf0);
                    body.extend_from_slice(&(n as i32).to_le_bytes()[..3]);
                }
                Item::Int(n) if i32::try_from(n).is_ok() => {
                    body.push(0xd0);
                    body.extend_from_slice(&(n as i32).to_le_bytes());
                }
                Item::Int(n) => {
                    body.push(0xe0);
                    body.extend_from_slice(&n.to_le_bytes());
                }
                Item::Str(s) if s.len() < 64 => {
                    body.push(s.len() as u8);
                    body.extend_from_slice(s);
                }
                Item::Str(s) if s.len() < 16384 => {
                    body.push(0x40 | (s.len() >> 8) as u8);
                    body.push(s.len() as u8);
                    body.extend_from_slice(s);
                }
                Item::Str(s) => {
                    body.push(0x80);
                    body.extend_from_slice(&(s.len() as u32).to_be_bytes());
                    body.extend_from_slice(s);
                }
            }
            prev_size = body.len() - start;
        }
        let total = HEADER_BYTES + body.len() + 1;
        let mut zl = Vec::with_capacity(total);
        zl.extend_from_slice(&(total as u32).to_le_bytes());
        zl.extend_from_slice(&(last as u32).to_le_bytes());
        zl.extend_from_slice(&(items.len().min(COUNT_UNKNOWN) as u16).to_le_bytes());
        zl.extend_from_slice(&body);
        zl.push(END);
        zl
    }

    #[test]
    fn reads_every_encoding() {
        let long = vec![b'q'; 300];
        let huge = vec![b'h'; 20000];
        let items = [
            Item::Int(0),
            Item::Int(12),
            Item::Int(13),
            Item::Int(-128),
            Item::Int(-32768),
            Item::Int(8_388_607),
            Item::Int(-8_388_609),
            Item::Int(i64::MIN),
            Item::Str(b""),
            Item::Str(b"hello"),
            Item::Str(&long),
            Item::Str(&huge),
            Item::Str(b"after a big prevlen"),
        ];
        let zl = build(&items);
        assert_eq!(entries(&zl).expect("valid"), items.to_vec());
        assert_eq!(entries(&build(&[])).expect("valid"), vec![]);
    }

    #[test]
    fn corrupt_ziplists_are_rejected() {
        let zl = build(&[Item::Str(b"ab"), Item::Int(5)]);
        let mut bad = zl.clone();
        bad[8] = 3; // count
        assert!(entries(&bad).is_err());
        let mut bad = zl.clone();
        bad[4] = 10; // tail
        assert!(entries(&bad).is_err());
        let mut bad = zl.clone();
        bad[14] = 7; // prevlen of the second entry
        assert!(entries(&bad).is_err());
        assert!(entries(&zl[..zl.len() - 1]).is_err());
    }

    proptest! {
        #[test]
        fn parse_never_panics(blob in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = entries(&blob);
        }
    }
}
