//! Redis's intset blob, the RDB form of an integer set (`RDB_TYPE_SET_INTSET`).
//!
//! Layout: `encoding` (u32 LE: 2, 4 or 8 bytes per member), `length` (u32 LE), then the
//! members, ascending, each as a little-endian signed integer of that width. Validation is
//! Redis's deep `intsetValidateIntegrity`: known width, exact size, not empty, strictly
//! ascending (no duplicates).

#![deny(clippy::indexing_slicing)]

use super::array_at;

const HEADER_BYTES: usize = 8;

/// The blob for `members` (ascending, distinct) stored at `width` bytes each.
pub fn encode(width: usize, members: impl ExactSizeIterator<Item = i64>) -> Vec<u8> {
    debug_assert!(matches!(width, 2 | 4 | 8));
    let mut out = Vec::with_capacity(HEADER_BYTES + width * members.len());
    out.extend_from_slice(&(width as u32).to_le_bytes());
    out.extend_from_slice(&(members.len() as u32).to_le_bytes());
    for m in members {
        out.extend(m.to_le_bytes().into_iter().take(width));
    }
    out
}

/// Validates an intset blob and returns its members, ascending.
pub fn decode(blob: &[u8]) -> Result<Vec<i64>, &'static str> {
    const SHORT: &str = "intset shorter than its header";
    let width = u32::from_le_bytes(array_at(blob, 0).ok_or(SHORT)?) as usize;
    if !matches!(width, 2 | 4 | 8) {
        return Err("intset with an unknown encoding");
    }
    let count = u32::from_le_bytes(array_at(blob, 4).ok_or(SHORT)?) as usize;
    let size = count
        .checked_mul(width)
        .and_then(|n| n.checked_add(HEADER_BYTES));
    if size != Some(blob.len()) {
        return Err("intset length does not match its size");
    }
    if count == 0 {
        return Err("empty intset");
    }
    let mut out: Vec<i64> = Vec::with_capacity(count);
    for i in 0..count {
        let at = HEADER_BYTES + i * width;
        let v = match width {
            2 => array_at(blob, at).map(|b| i16::from_le_bytes(b) as i64),
            4 => array_at(blob, at).map(|b| i32::from_le_bytes(b) as i64),
            _ => array_at(blob, at).map(i64::from_le_bytes),
        }
        .ok_or("intset member past the end")?;
        if out.last().is_some_and(|&prev| prev >= v) {
            return Err("intset members out of order or duplicated");
        }
        out.push(v);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn round_trips_each_width() {
        for (width, members) in [
            (2usize, vec![-32768i64, -1, 0, 5, 32767]),
            (4, vec![-70000, 1, 70000]),
            (8, vec![i64::MIN, 0, i64::MAX]),
        ] {
            let blob = encode(width, members.iter().copied());
            assert_eq!(blob.len(), 8 + width * members.len());
            assert_eq!(decode(&blob), Ok(members));
        }
    }

    #[test]
    fn matches_redis_bytes() {
        // SADD s 1 2 3 as Redis packs it: encoding 2, length 3, members LE.
        let blob = encode(2, [1i64, 2, 3].into_iter());
        assert_eq!(blob, [2, 0, 0, 0, 3, 0, 0, 0, 1, 0, 2, 0, 3, 0]);
    }

    #[test]
    fn corrupt_blobs_are_rejected() {
        assert!(decode(&[2, 0, 0, 0, 0, 0, 0, 0]).is_err());
        assert!(decode(&[3, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0]).is_err());
        assert!(decode(&[2, 0, 0, 0, 2, 0, 0, 0, 1, 0]).is_err());
        assert!(decode(&[2, 0, 0, 0, 2, 0, 0, 0, 2, 0, 1, 0]).is_err());
        assert!(decode(&[2, 0, 0, 0, 255, 255, 255, 255, 1, 0]).is_err());
    }

    proptest! {
        #[test]
        fn parse_never_panics(blob in proptest::collection::vec(any::<u8>(), 0..40)) {
            let _ = decode(&blob);
        }
    }
}
