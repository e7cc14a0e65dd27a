//! LZF, the compression of RDB strings (`rdbcompression yes`).
//!
//! The format (liblzf's, which Redis embeds) is a sequence of instructions, each starting with
//! a control byte `c`:
//! - `c < 32`: a literal run of `c + 1` bytes follows;
//! - otherwise a back reference: `len = c >> 5` (7 means "add the next byte"), then one byte
//!   completing the 13-bit distance `((c & 0x1f) << 8 | byte) + 1` back from the output end;
//!   `len + 2` bytes are copied from there (the copy may overlap its own output).
//!
//! The compressor is our own: a greedy matcher over a hash table of 3-byte prefixes, emitting
//! the format above. Its output need not be byte-identical to liblzf's — any valid stream
//! decompresses to the same string in Redis — it only has to be valid and small. The
//! decompressor checks every read and write against its bounds and fails instead of guessing.

/// Longest literal run one control byte describes.
const LITERAL_RUN_MAX: usize = 32;
/// Farthest a back reference reaches (13 bits of distance, plus one).
const DISTANCE_MAX: usize = 1 << 13;
/// Longest back reference: 7 + 255 in the length fields, plus the implicit 2.
const MATCH_LEN_MAX: usize = 7 + 255 + 2;
/// Shortest match worth a back reference (it costs 2 or 3 bytes).
const MATCH_LEN_MIN: usize = 3;
/// The hash table of 3-byte prefixes has at most 2^14 slots, fewer for short inputs so a
/// short string does not pay for clearing a large table.
const HASH_BITS_MAX: u32 = 14;
const HASH_BITS_MIN: u32 = 6;

/// Most output bytes one input byte can produce: a 3-byte back reference yields 264 bytes.
pub const EXPANSION_MAX: usize = MATCH_LEN_MAX.div_ceil(3);

fn hash3(b: &[u8], bits: u32) -> usize {
    let v = (b[0] as u32) << 16 | (b[1] as u32) << 8 | b[2] as u32;
    (v.wrapping_mul(2_654_435_761) >> (32 - bits)) as usize
}

/// Bytes that `n` pending literals will take once written.
fn literal_cost(n: usize) -> usize {
    n + n.div_ceil(LITERAL_RUN_MAX)
}

/// Compresses `input`; `None` when the result would exceed `out_max` bytes (the caller then
/// stores the string verbatim, as Redis does when compression does not pay). Gives up as
/// soon as the budget is exceeded, so incompressible data costs one pass at most.
pub fn compress(input: &[u8], out_max: usize) -> Option<Vec<u8>> {
    let bits = (usize::BITS - input.len().leading_zeros()).clamp(HASH_BITS_MIN, HASH_BITS_MAX);
    let mut table = vec![u32::MAX; 1 << bits];
    let mut out = Vec::with_capacity(out_max.min(input.len()));
    let mut lit_start = 0;
    let mut ip = 0;
    while ip + MATCH_LEN_MIN <= input.len() {
        if out.len() + literal_cost(ip - lit_start) > out_max {
            return None;
        }
        let h = hash3(&input[ip..], bits);
        let candidate = table[h] as usize;
        table[h] = ip as u32;
        let found = candidate < ip
            && ip - candidate <= DISTANCE_MAX
            && input[candidate..candidate + MATCH_LEN_MIN] == input[ip..ip + MATCH_LEN_MIN];
        if !found {
            ip += 1;
            continue;
        }
        let limit = (input.len() - ip).min(MATCH_LEN_MAX);
        let mut len = MATCH_LEN_MIN;
        while len < limit && input[candidate + len] == input[ip + len] {
            len += 1;
        }
        push_literals(&mut out, &input[lit_start..ip]);
        push_reference(&mut out, ip - candidate - 1, len);
        // Index the match's last two positions only, as liblzf's default (VERY_FAST) mode
        // does: indexing every position inside long matches cost more than it saved.
        for p in (ip + len).saturating_sub(2).max(ip + 1)..ip + len {
            if p + MATCH_LEN_MIN <= input.len() {
                table[hash3(&input[p..], bits)] = p as u32;
            }
        }
        ip += len;
        lit_start = ip;
    }
    if out.len() + literal_cost(input.len() - lit_start) > out_max {
        return None;
    }
    push_literals(&mut out, &input[lit_start..]);
    Some(out)
}

fn push_literals(out: &mut Vec<u8>, mut lit: &[u8]) {
    while !lit.is_empty() {
        let n = lit.len().min(LITERAL_RUN_MAX);
        out.push((n - 1) as u8);
        out.extend_from_slice(&lit[..n]);
        lit = &lit[n..];
    }
}

/// A back reference to `distance + 1` bytes back, `len` bytes long.
fn push_reference(out: &mut Vec<u8>, distance: usize, len: usize) {
    debug_assert!(distance < DISTANCE_MAX && (MATCH_LEN_MIN..=MATCH_LEN_MAX).contains(&len));
    let l = len - 2;
    let high = (distance >> 8) as u8;
    if l < 7 {
        out.push(((l as u8) << 5) | high);
    } else {
        out.push((7 << 5) | high);
        out.push((l - 7) as u8);
    }
    out.push(distance as u8);
}

/// Why a compressed stream was rejected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LzfError {
    /// An instruction needs more input than there is.
    Truncated,
    /// A back reference points before the start of the output.
    BadReference,
    /// The output would exceed, or falls short of, the announced length.
    LengthMismatch,
}

impl std::fmt::Display for LzfError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            LzfError::Truncated => "truncated LZF stream",
            LzfError::BadReference => "LZF back reference before the start of the output",
            LzfError::LengthMismatch => "LZF stream does not produce the announced length",
        })
    }
}

/// Decompresses `input` into exactly `out_len` bytes.
#[deny(clippy::indexing_slicing)]
pub fn decompress(input: &[u8], out_len: usize) -> Result<Vec<u8>, LzfError> {
    if out_len > input.len().saturating_mul(EXPANSION_MAX) {
        return Err(LzfError::LengthMismatch);
    }
    let mut out = Vec::with_capacity(out_len);
    let mut ip = 0;
    while let Some(&ctrl) = input.get(ip) {
        let ctrl = ctrl as usize;
        ip += 1;
        if ctrl < LITERAL_RUN_MAX {
            let n = ctrl + 1;
            let lit = input.get(ip..ip + n).ok_or(LzfError::Truncated)?;
            if out.len() + n > out_len {
                return Err(LzfError::LengthMismatch);
            }
            out.extend_from_slice(lit);
            ip += n;
            continue;
        }
        let mut len = ctrl >> 5;
        if len == 7 {
            len += *input.get(ip).ok_or(LzfError::Truncated)? as usize;
            ip += 1;
        }
        let low = *input.get(ip).ok_or(LzfError::Truncated)? as usize;
        ip += 1;
        let distance = ((ctrl & 0x1f) << 8 | low) + 1;
        let len = len + 2;
        let from = out
            .len()
            .checked_sub(distance)
            .ok_or(LzfError::BadReference)?;
        if out.len() + len > out_len {
            return Err(LzfError::LengthMismatch);
        }
        // The source may overlap what this copy writes (run-length style): the bytes from
        // `from` repeat with period `distance`, so each pass copies everything written since
        // `from` so far, doubling the window until `len` bytes are there.
        let mut left = len;
        while left > 0 {
            let n = left.min(out.len() - from);
            out.extend_from_within(from..from + n);
            left -= n;
        }
    }
    if out.len() != out_len {
        return Err(LzfError::LengthMismatch);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn compresses_repetitive_data() {
        let input = vec![b'a'; 1000];
        let c = compress(&input, input.len() - 4).expect("compressible");
        assert!(c.len() < 30, "{} bytes", c.len());
        assert_eq!(decompress(&c, input.len()).as_deref(), Ok(&input[..]));
    }

    #[test]
    fn incompressible_data_is_refused() {
        let input: Vec<u8> = (0..200u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
            .collect();
        assert_eq!(compress(&input, input.len() - 4), None);
    }

    #[test]
    fn overlapping_reference_repeats_a_run() {
        // One literal 'a', then a reference one byte back of 7 + 41 + 2 = 50 bytes.
        let stream = [0x00, b'a', 0xe0, 41, 0x00];
        assert_eq!(decompress(&stream, 51), Ok(vec![b'a'; 51]));
    }

    #[test]
    fn corrupt_streams_are_errors() {
        assert_eq!(decompress(&[0x05, b'a'], 6), Err(LzfError::Truncated));
        assert_eq!(decompress(&[0x20, 0x00], 3), Err(LzfError::BadReference));
        assert_eq!(decompress(&[0x00, b'a'], 2), Err(LzfError::LengthMismatch));
        assert_eq!(
            decompress(&[0x00, b'a', 0x20, 0x00], 2),
            Err(LzfError::LengthMismatch)
        );
        assert_eq!(decompress(&[0x00], 10), Err(LzfError::Truncated));
    }

    /// Inputs mixing runs and noise, built from a few generated parts (generating every byte
    /// separately makes the test slow in debug builds).
    fn mixed_input() -> impl Strategy<Value = Vec<u8>> {
        proptest::collection::vec(
            prop_oneof![
                (any::<u8>(), 1usize..300).prop_map(|(b, n)| vec![b; n]),
                proptest::collection::vec(any::<u8>(), 0..40),
                Just(b"abcabcabd".to_vec()),
            ],
            0..24,
        )
        .prop_map(|parts| parts.concat())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(128))]

        #[test]
        fn round_trip(input in mixed_input()) {
            if let Some(c) = compress(&input, input.len() + input.len() / 16 + 8) {
                prop_assert_eq!(decompress(&c, input.len()).ok(), Some(input.clone()));
            }
        }

        #[test]
        fn decompress_never_panics(input in proptest::collection::vec(any::<u8>(), 0..64),
                                   len in 0usize..512) {
            let _ = decompress(&input, len);
        }
    }
}
