//! Redis's zipmap, read-only: how Redis 2.4 and older stored small hashes
//! (`RDB_TYPE_HASH_ZIPMAP`). Redis 7.0 still loads them (converting to a listpack hash), so we
//! do too.
//!
//! Layout: a count byte (254 or more = "count it"), then pairs, then an end byte 0xFF.
//! Each pair is `<len>field<len><free>value` followed by `free` unused bytes; a `<len>` is
//! one byte below 254, or 254 followed by a u32 (little endian on every machine that wrote
//! these files in practice). Validation follows Redis's deep `zipmapValidateIntegrity`,
//! which also refuses an empty zipmap.

#![deny(clippy::indexing_slicing)]

use super::array_at;

/// A zipmap's (field, value) pairs, borrowed from the blob.
pub type Pairs<'a> = Vec<(&'a [u8], &'a [u8])>;

const BIG_LEN: u8 = 254;
const END: u8 = 0xff;

/// Reads a `<len>` at `p`: (length, bytes used).
fn len_at(blob: &[u8], p: usize) -> Result<(usize, usize), &'static str> {
    const OUT: &str = "zipmap entry reaches past the end";
    let first = *blob.get(p).ok_or(OUT)?;
    if first < BIG_LEN {
        return Ok((first as usize, 1));
    }
    if first == END {
        return Err("zipmap pair cut by the end byte");
    }
    let len = u32::from_le_bytes(array_at(blob, p + 1).ok_or(OUT)?) as usize;
    if len < BIG_LEN as usize {
        return Err("zipmap length below 254 in the 5-byte form");
    }
    Ok((len, 5))
}

/// Validates a zipmap blob and returns its (field, value) pairs.
pub fn pairs(blob: &[u8]) -> Result<Pairs<'_>, &'static str> {
    const OUT: &str = "zipmap entry reaches past the end";
    let (Some(&count), Some(&last)) = (blob.first(), blob.last()) else {
        return Err("zipmap shorter than its header");
    };
    if blob.len() < 2 {
        return Err("zipmap shorter than its header");
    }
    if last != END {
        return Err("zipmap does not end with 0xFF");
    }
    let end = blob.len() - 1;
    let mut out = Vec::new();
    let mut p = 1;
    while p < end && blob.get(p) != Some(&END) {
        let (flen, n) = len_at(blob, p)?;
        p += n;
        let field = blob.get(p..p + flen).ok_or(OUT)?;
        p += flen;
        let (vlen, n) = len_at(blob, p)?;
        p += n;
        let free = *blob.get(p).ok_or(OUT)? as usize;
        p += 1;
        let value = blob.get(p..p + vlen).ok_or(OUT)?;
        p += vlen + free;
        if p > end {
            return Err(OUT);
        }
        out.push((field, value));
    }
    if p != end {
        return Err("zipmap end byte before the end of the blob");
    }
    if out.is_empty() {
        return Err("empty zipmap");
    }
    if count < BIG_LEN && count as usize != out.len() {
        return Err("zipmap count does not match its pairs");
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn reads_redis_example() {
        let zm = b"\x02\x03foo\x03\x00bar\x05hello\x05\x02world..\xff";
        assert_eq!(
            pairs(zm),
            Ok(vec![
                (&b"foo"[..], &b"bar"[..]),
                (&b"hello"[..], &b"world"[..])
            ])
        );
    }

    #[test]
    fn corrupt_zipmaps_are_rejected() {
        assert!(pairs(b"\x00\xff").is_err());
        assert!(pairs(b"\x01\x03foo\x03\x00ba\xff").is_err());
        assert!(pairs(b"\x02\x03foo\x03\x00bar\xff").is_err());
        assert!(pairs(b"\x01\x03foo\x03\x00bar").is_err());
    }

    proptest! {
        #[test]
        fn parse_never_panics(blob in proptest::collection::vec(any::<u8>(), 0..40)) {
            let _ = pairs(&blob);
        }
    }
}
