//! Number parsing exactly as the sorted set and geo commands see numbers: through C's
//! `strtod`, which Redis calls in two different ways.
//!
//! - `string2d` (scores, weights, coordinates, radii; Redis's `getDoubleFromObject`): the whole
//!   argument must be a number with no leading space, not NaN, and not overflowing to ±inf nor
//!   underflowing to 0 (`ERANGE`). Hex floats (`0x1p3`) and `inf`/`infinity` are accepted.
//! - `range_bound` (ZRANGEBYSCORE and friends; Redis's `zslParseRange`): `strtod` up to the
//!   argument's first NUL byte, which must end the number. Leading space is skipped, overflow
//!   is not an error (`1e400` is +inf) and the empty string is 0.
//!
//! `strtod` itself is reproduced here (glibc's grammar: optional space and sign, decimal with
//! optional exponent, hex with optional binary exponent, `inf`, `infinity`, `nan`, `nan(...)`),
//! with correctly rounded results as glibc gives them.

use crate::storage::zset::{LexBound, LexRange, ScoreRange};

/// C's `isspace` in the C locale.
fn is_c_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r')
}

/// The result of `strtod`: the value, how many bytes it used (0: no number), and whether it
/// set `ERANGE` the way Redis tests it (overflow to ±inf or underflow to 0).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Strtod {
    pub value: f64,
    pub used: usize,
    pub range_error: bool,
}

/// Counts a run of bytes satisfying `f` from `at`.
fn run(s: &[u8], at: usize, f: impl Fn(u8) -> bool) -> usize {
    s.get(at..)
        .map_or(0, |t| t.iter().take_while(|&&b| f(b)).count())
}

fn starts_with_ci(s: &[u8], at: usize, word: &[u8]) -> bool {
    s.get(at..at + word.len())
        .is_some_and(|t| t.eq_ignore_ascii_case(word))
}

/// glibc's `strtod` over `s` (which holds no NUL: callers cut at the first one).
pub fn strtod(s: &[u8]) -> Strtod {
    let none = Strtod {
        value: 0.0,
        used: 0,
        range_error: false,
    };
    let mut i = run(s, 0, is_c_space);
    let negative = s.get(i) == Some(&b'-');
    if matches!(s.get(i), Some(b'-' | b'+')) {
        i += 1;
    }
    let sign = if negative { -1.0 } else { 1.0 };
    if starts_with_ci(s, i, b"inf") {
        let used = if starts_with_ci(s, i, b"infinity") {
            i + 8
        } else {
            i + 3
        };
        return Strtod {
            value: sign * f64::INFINITY,
            used,
            range_error: false,
        };
    }
    if starts_with_ci(s, i, b"nan") {
        let mut used = i + 3;
        if s.get(used) == Some(&b'(') {
            let inner = run(s, used + 1, |b| b.is_ascii_alphanumeric() || b == b'_');
            if s.get(used + 1 + inner) == Some(&b')') {
                used += inner + 2;
            }
        }
        return Strtod {
            value: f64::NAN,
            used,
            range_error: false,
        };
    }
    let hex_digits_follow = s.get(i) == Some(&b'0')
        && matches!(s.get(i + 1), Some(b'x' | b'X'))
        && (s.get(i + 2).is_some_and(u8::is_ascii_hexdigit)
            || (s.get(i + 2) == Some(&b'.') && s.get(i + 3).is_some_and(u8::is_ascii_hexdigit)));
    let parsed = if hex_digits_follow {
        parse_hex(s, i + 2)
    } else {
        parse_decimal(s, i)
    };
    match parsed {
        Some((magnitude, used, nonzero)) => {
            let value = sign * magnitude;
            Strtod {
                value,
                used,
                range_error: value.is_infinite() || (value == 0.0 && nonzero),
            }
        }
        None => none,
    }
}

/// A decimal number from `at`: (magnitude, end, whether any digit is non-zero).
fn parse_decimal(s: &[u8], at: usize) -> Option<(f64, usize, bool)> {
    let int = run(s, at, |b| b.is_ascii_digit());
    let mut end = at + int;
    let mut frac = 0;
    if s.get(end) == Some(&b'.') {
        frac = run(s, end + 1, |b| b.is_ascii_digit());
        if int + frac > 0 {
            end += 1 + frac;
        }
    }
    if int + frac == 0 {
        return None;
    }
    let mantissa_end = end;
    if matches!(s.get(end), Some(b'e' | b'E')) {
        let sign = usize::from(matches!(s.get(end + 1), Some(b'-' | b'+')));
        let digits = run(s, end + 1 + sign, |b| b.is_ascii_digit());
        if digits > 0 {
            end += 1 + sign + digits;
        }
    }
    let nonzero = s[at..mantissa_end]
        .iter()
        .any(|&b| b.is_ascii_digit() && b != b'0');
    // Rust's parser is correctly rounded like glibc's and accepts this same grammar ("1.",
    // ".5", huge exponents).
    let text = std::str::from_utf8(&s[at..end]).ok()?;
    let value = text.parse::<f64>().ok()?;
    Some((value, end, nonzero))
}

/// A hex number whose digits start at `at` (after `0x`): (magnitude, end, non-zero).
fn parse_hex(s: &[u8], at: usize) -> Option<(f64, usize, bool)> {
    // The significant bits, most significant first, in a u64 with a sticky bit for the rest.
    let mut mantissa: u64 = 0;
    let mut exp2: i64 = 0;
    let mut sticky = false;
    let mut end = at;
    let mut seen_point = false;
    let mut digits = 0;
    while let Some(&b) = s.get(end) {
        let d = match b {
            b'.' if !seen_point => {
                seen_point = true;
                end += 1;
                continue;
            }
            _ => match (b as char).to_digit(16) {
                Some(d) => u64::from(d),
                None => break,
            },
        };
        digits += 1;
        if mantissa >> 60 == 0 {
            mantissa = mantissa << 4 | d;
            if seen_point {
                exp2 -= 4;
            }
        } else {
            sticky |= d != 0;
            if !seen_point {
                exp2 += 4;
            }
        }
        end += 1;
    }
    if digits == 0 {
        return None;
    }
    if matches!(s.get(end), Some(b'p' | b'P')) {
        let neg = s.get(end + 1) == Some(&b'-');
        let sign = usize::from(matches!(s.get(end + 1), Some(b'-' | b'+')));
        let n = run(s, end + 1 + sign, |b| b.is_ascii_digit());
        if n > 0 {
            let mut e: i64 = 0;
            for &b in &s[end + 1 + sign..end + 1 + sign + n] {
                e = (e * 10 + i64::from(b - b'0')).min(1 << 40);
            }
            exp2 += if neg { -e } else { e };
            end += 1 + sign + n;
        }
    }
    let nonzero = mantissa != 0 || sticky;
    Some((compose(mantissa, sticky, exp2), end, nonzero))
}

/// `mantissa * 2^exp2` (plus a sticky fraction below the mantissa) rounded to nearest even,
/// including subnormal results.
fn compose(mantissa: u64, sticky: bool, exp2: i64) -> f64 {
    if mantissa == 0 {
        return 0.0;
    }
    let lz = i64::from(mantissa.leading_zeros());
    let m = mantissa << lz; // leading 1 at bit 63
                            // Value = m * 2^(exp2 - lz); the leading bit's weight is 2^e.
    let e = exp2 - lz + 63;
    if e > 1023 {
        return f64::INFINITY;
    }
    // Bits kept: 53 for normal results, fewer for subnormal ones (down to 2^-1074).
    let keep = if e >= -1022 { 53 } else { 53 - (-1022 - e) };
    if keep <= 0 {
        // Below half the smallest subnormal, or exactly representable as rounding to it.
        let half_min = keep == 0 && (m > 1 << 63 || sticky);
        return if half_min { f64::from_bits(1) } else { 0.0 };
    }
    let drop = 64 - keep as u32;
    let mut q = m >> drop;
    let rest = m & ((1u64 << drop) - 1);
    let half = 1u64 << (drop - 1);
    if rest > half || (rest == half && (sticky || q & 1 == 1)) {
        q += 1;
    }
    // q holds `keep` bits (one more after rounding up to a power of two): exact as a double,
    // and so is the scaling, short of overflow to infinity.
    (q as f64) * pow2(e - (keep - 1))
}

/// 2^k exactly, for k in -1074..=1023.
fn pow2(k: i64) -> f64 {
    if k >= -1022 {
        f64::from_bits(((k + 1023) as u64) << 52)
    } else {
        f64::from_bits(1u64 << (k + 1074))
    }
}

/// Redis's `string2d` / `getDoubleFromObject`.
pub fn string2d(b: &[u8]) -> Option<f64> {
    if b.is_empty() || is_c_space(b[0]) {
        return None;
    }
    let r = strtod(b);
    let bad = r.used != b.len()
        || (r.range_error && (r.value.is_infinite() || r.value == 0.0))
        || r.value.is_nan();
    (!bad).then_some(r.value)
}

/// The bytes C sees of an argument: up to its first NUL.
fn c_str(b: &[u8]) -> &[u8] {
    b.split(|&c| c == 0).next().unwrap_or(b)
}

/// One bound of a score range: `(` makes it exclusive; the rest goes through `strtod`.
fn range_bound(b: &[u8]) -> Option<(f64, bool)> {
    let s = c_str(b);
    let (text, ex) = match s.first() {
        Some(b'(') => (&s[1..], true),
        _ => (s, false),
    };
    let r = strtod(text);
    (r.used == text.len() && !r.value.is_nan()).then_some((r.value, ex))
}

/// Redis's `zslParseRange`.
pub fn score_range(min: &[u8], max: &[u8]) -> Option<ScoreRange> {
    let (min, minex) = range_bound(min)?;
    let (max, maxex) = range_bound(max)?;
    Some(ScoreRange {
        min,
        max,
        minex,
        maxex,
    })
}

/// One item of a lex range (`zslParseLexRangeItem`): `+`, `-`, `(value` or `[value`.
fn lex_item(b: &[u8]) -> Option<(LexBound, bool)> {
    match b.first()? {
        b'+' if b.get(1).is_none_or(|&c| c == 0) => Some((LexBound::PosInf, true)),
        b'-' if b.get(1).is_none_or(|&c| c == 0) => Some((LexBound::NegInf, true)),
        b'(' => Some((LexBound::Value(b[1..].to_vec()), true)),
        b'[' => Some((LexBound::Value(b[1..].to_vec()), false)),
        _ => None,
    }
}

/// Redis's `zslParseLexRange`.
pub fn lex_range(min: &[u8], max: &[u8]) -> Option<LexRange> {
    let (min, minex) = lex_item(min)?;
    let (max, maxex) = lex_item(max)?;
    Some(LexRange {
        min,
        max,
        minex,
        maxex,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strtod_grammar() {
        let v = |s: &str| {
            let r = strtod(s.as_bytes());
            (r.value, r.used)
        };
        assert_eq!(v("1.5"), (1.5, 3));
        assert_eq!(v("  -2e3x"), (-2000.0, 6));
        assert_eq!(v("1e"), (1.0, 1));
        assert_eq!(v("1e+"), (1.0, 1));
        assert_eq!(v(".5"), (0.5, 2));
        assert_eq!(v("5."), (5.0, 2));
        assert_eq!(v("."), (0.0, 0));
        assert_eq!(v(""), (0.0, 0));
        assert_eq!(v("+inf"), (f64::INFINITY, 4));
        assert_eq!(v("-Infinity"), (f64::NEG_INFINITY, 9));
        assert_eq!(v("infinit"), (f64::INFINITY, 3));
        assert_eq!(v("0x10"), (16.0, 4));
        assert_eq!(v("0x1p3"), (8.0, 5));
        assert_eq!(v("0x.8"), (0.5, 4));
        assert_eq!(v("0x1P-1"), (0.5, 6));
        assert_eq!(v("0xg"), (0.0, 1));
        assert_eq!(v("0x1p"), (1.0, 3));
        assert_eq!(v("0x1fffffffffffff"), (9007199254740991.0, 16));
        // 2^53 + 1 rounds to even.
        assert_eq!(v("0x20000000000001"), (9007199254740992.0, 16));
        assert_eq!(v("0x20000000000003"), (9007199254740996.0, 16));
        assert_eq!(v("0x1p-1074"), (f64::from_bits(1), 9));
        assert_eq!(v("0x1p-1075"), (0.0, 9));
        assert_eq!(v("0x1.8p-1075"), (f64::from_bits(1), 11));
        assert_eq!(v("0x1p1024"), (f64::INFINITY, 8));
        assert!(strtod(b"nan").value.is_nan());
        assert_eq!(strtod(b"nan(12ab)").used, 9);
        assert_eq!(strtod(b"nan(12").used, 3);
        assert!(strtod(b"1e400").range_error);
        assert!(strtod(b"1e-400").range_error);
        assert!(!strtod(b"0e-400").range_error);
    }

    #[test]
    fn string2d_like_redis() {
        // Checked against redis-server 7.0.15's ZADD.
        assert_eq!(string2d(b"0x10"), Some(16.0));
        assert_eq!(string2d(b" 1"), None);
        assert_eq!(string2d(b"1 "), None);
        assert_eq!(string2d(b"1e400"), None);
        assert_eq!(string2d(b"1e-400"), None);
        assert_eq!(string2d(b"4.9e-324"), Some(4.9e-324));
        assert_eq!(string2d(b"nan"), None);
        assert_eq!(string2d(b"inf"), Some(f64::INFINITY));
        assert_eq!(string2d(b"-INFINITY"), Some(f64::NEG_INFINITY));
        assert_eq!(string2d(b""), None);
        assert_eq!(string2d(b"1\0"), None);
    }

    #[test]
    fn range_bounds_like_zsl_parse_range() {
        let r = score_range(b"", b"(0x11").expect("valid");
        assert_eq!((r.min, r.minex, r.max, r.maxex), (0.0, false, 17.0, true));
        let r = score_range(b" 0", b"1e400").expect("valid");
        assert_eq!((r.min, r.max), (0.0, f64::INFINITY));
        assert!(score_range(b"(", b"1\0junk").is_some());
        assert!(score_range(b"1 ", b"2").is_none());
        assert!(score_range(b"nan", b"2").is_none());
        assert!(score_range(b"((1", b"2").is_none());
        assert!(lex_range(b"-", b"+").is_some());
        assert!(lex_range(b"-x", b"+").is_none());
        assert!(lex_range(b"", b"+").is_none());
        assert!(lex_range(b"a", b"+").is_none());
        assert_eq!(
            lex_range(b"(a\0b", b"+\0z"),
            Some(LexRange {
                min: LexBound::Value(b"a\0b".to_vec()),
                max: LexBound::PosInf,
                minex: true,
                maxex: true
            })
        );
    }
}
