//! Numbers as SORT reads them (Redis's `sortCommandGeneric` score loading).
//!
//! SORT calls C's `strtod` on the value's C string (so it ends at the first NUL byte) and
//! rejects it when the number does not reach that end, when it is NaN, or when `strtod` set
//! `errno` to `ERANGE`. Unlike `string2d`, which forgives an `ERANGE` unless the result is
//! ±inf or 0, SORT refuses every `ERANGE`, and glibc also raises it for a result that is tiny
//! and inexact: `1e-310` (a subnormal that is not exactly any double) is refused while
//! `0x1p-1074` (exactly the smallest subnormal) is accepted. Leading spaces are skipped and
//! the empty string is 0, as `strtod` does.
//!
//! The value itself comes from `commands::zset::number::strtod`, which reproduces glibc's
//! grammar and its correctly rounded results. This module adds glibc's underflow rule: on
//! x86-64 tininess is detected after rounding, so a result counts as tiny when the exact
//! input, rounded to 53 bits with an unbounded exponent, is below `DBL_MIN`. Deciding that
//! needs the exact input compared with a few dyadic numbers (the result itself, and the two
//! bounds of the band just below `DBL_MIN` that rounds up to it): decimal inputs compare in
//! base 10 against the exact decimal expansions of those numbers, hexadecimal inputs in base
//! 2. Only results of magnitude at most `DBL_MIN` ever reach that code.

use crate::commands::zset::number;
use std::cmp::Ordering;

/// The score of one value, or `None` where Redis answers "One or more scores can't be
/// converted into double".
pub fn sort_score(value: &[u8]) -> Option<f64> {
    let s = value.split(|&b| b == 0).next().unwrap_or(value);
    let r = number::strtod(s);
    if r.used != s.len() || r.value.is_nan() || r.range_error {
        return None;
    }
    let magnitude = r.value.abs();
    if magnitude != 0.0 && magnitude <= f64::MIN_POSITIVE && tiny_and_inexact(s, magnitude) {
        return None;
    }
    Some(r.value)
}

/// A positive number as a digit string: `0.d1 d2 d3... × base^exp`, `d1` non-zero and no
/// trailing zero digit, so that equal numbers have equal forms.
#[derive(Debug, PartialEq, Eq)]
struct Exact {
    digits: Vec<u8>,
    exp: i64,
}

impl Exact {
    /// Normalizes `digits` (most significant first) whose value is `0.digits × base^exp`.
    fn new(mut digits: Vec<u8>, mut exp: i64) -> Exact {
        let lead = digits.iter().take_while(|&&d| d == 0).count();
        digits.drain(..lead);
        exp = exp.saturating_sub(lead as i64);
        while digits.last() == Some(&0) {
            digits.pop();
        }
        Exact { digits, exp }
    }

    fn cmp(&self, other: &Exact) -> Ordering {
        self.exp
            .cmp(&other.exp)
            .then_with(|| self.digits.cmp(&other.digits))
    }
}

/// Whether glibc's `strtod` sets `ERANGE` for `s`, whose correctly rounded magnitude
/// `magnitude` is a subnormal or `DBL_MIN`.
fn tiny_and_inexact(s: &[u8], magnitude: f64) -> bool {
    let Some((input, base)) = exact_input(s) else {
        return false;
    };
    if magnitude < f64::MIN_POSITIVE {
        // Below DBL_MIN after rounding to the subnormal grid, so below it at 53 bits too:
        // tiny, and an error unless the input is exactly this subnormal.
        let quanta = magnitude.to_bits();
        return input.cmp(&dyadic(quanta, 1074, base)) != Ordering::Equal;
    }
    // Rounded to DBL_MIN: tiny only for inputs in [DBL_MIN - 2^-1075, DBL_MIN - 2^-1076), which
    // a 53-bit rounding keeps below DBL_MIN; all of them are inexact.
    let low = dyadic((1 << 53) - 1, 1075, base);
    let high = dyadic((1 << 54) - 1, 1076, base);
    input.cmp(&low) != Ordering::Less && input.cmp(&high) == Ordering::Less
}

/// `k × 2^-n` in `base` (2 or 10). In base 10 that is `k × 5^n × 10^-n`.
fn dyadic(k: u64, n: u32, base: u32) -> Exact {
    if base == 2 {
        let bits: Vec<u8> = (0..64).rev().map(|i| ((k >> i) & 1) as u8).collect();
        return Exact::new(bits, 64 - i64::from(n));
    }
    // Limbs of 10^9, least significant first.
    const LIMB: u64 = 1_000_000_000;
    let mut limbs = vec![k % LIMB, k / LIMB % LIMB, k / LIMB / LIMB];
    let mut left = n;
    while left > 0 {
        let step = left.min(13); // 5^13 < 2^31 keeps every product within u64
        let factor = 5u64.pow(step);
        let mut carry = 0;
        for limb in limbs.iter_mut() {
            let v = *limb * factor + carry;
            *limb = v % LIMB;
            carry = v / LIMB;
        }
        while carry > 0 {
            limbs.push(carry % LIMB);
            carry /= LIMB;
        }
        left -= step;
    }
    let mut digits = Vec::with_capacity(limbs.len() * 9);
    for limb in limbs.iter().rev() {
        digits.extend((0..9).rev().map(|i| (limb / 10u64.pow(i) % 10) as u8));
    }
    let len = digits.len() as i64;
    Exact::new(digits, len - i64::from(n))
}

/// The exact value of the number `strtod` read from `s` (all of `s`), with its base; `None`
/// for `inf`, `nan` or zero, which never reach the underflow rule.
fn exact_input(s: &[u8]) -> Option<(Exact, u32)> {
    let start = s
        .iter()
        .position(|&b| !matches!(b, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r'))?;
    let mut t = &s[start..];
    if let Some((b'+' | b'-', rest)) = t.split_first() {
        t = rest;
    }
    let hex = t.len() > 2 && t[0] == b'0' && matches!(t[1], b'x' | b'X');
    let (body, base, exp_marks, digit_bits) = if hex {
        (&t[2..], 2, [b'p', b'P'], 4)
    } else {
        (t, 10, [b'e', b'E'], 1)
    };
    let mark = body.iter().position(|b| exp_marks.contains(b));
    let (mantissa, exponent) = match mark {
        Some(i) => (&body[..i], parse_exponent(&body[i + 1..])),
        None => (body, 0),
    };
    let point = mantissa
        .iter()
        .position(|&b| b == b'.')
        .unwrap_or(mantissa.len());
    let mut digits = Vec::with_capacity(mantissa.len() * digit_bits);
    for &b in mantissa.iter().filter(|&&b| b != b'.') {
        let d = (b as char).to_digit(if hex { 16 } else { 10 })? as u8;
        if hex {
            digits.extend((0..4).rev().map(|i| (d >> i) & 1));
        } else {
            digits.push(d);
        }
    }
    let int_digits = (point * digit_bits) as i64;
    let exact = Exact::new(digits, int_digits.saturating_add(exponent));
    (!exact.digits.is_empty()).then_some((exact, base))
}

/// A signed decimal exponent, saturating far beyond any exponent that can matter here.
fn parse_exponent(b: &[u8]) -> i64 {
    let (negative, digits) = match b.split_first() {
        Some((b'-', rest)) => (true, rest),
        Some((b'+', rest)) => (false, rest),
        _ => (false, b),
    };
    let mut e: i64 = 0;
    for &d in digits {
        e = (e * 10 + i64::from(d - b'0')).min(1 << 40);
    }
    if negative {
        -e
    } else {
        e
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Results of glibc 2.36's `strtod` (value, and whether errno was ERANGE), checked with a
    /// small C program on the machine redis-server 7.0.15 runs on.
    #[test]
    fn like_glibc() {
        let cases: &[(&str, Option<f64>)] = &[
            ("", Some(0.0)),
            ("  ", None),
            (" 1", Some(1.0)),
            ("1 ", None),
            ("1\0junk", Some(1.0)),
            ("inf", Some(f64::INFINITY)),
            ("-infinity", Some(f64::NEG_INFINITY)),
            ("nan", None),
            ("-0", Some(-0.0)),
            ("0x", None),
            ("1e", None),
            ("1.e5", Some(1e5)),
            (".5", Some(0.5)),
            ("1e400", None),
            ("1e-400", None),
            ("1e-310", None),
            ("4.9e-324", None),
            ("0x1p-1074", Some(f64::from_bits(1))),
            ("0x1.8p-1074", None),
            (
                "0x1.0000000000001p-1022",
                Some(f64::from_bits((1 << 52) + 1)),
            ),
            ("0x0.fffffffffffff8p-1022", None),
            ("0x0.fffffffffffffcp-1022", Some(f64::MIN_POSITIVE)),
            ("2.2250738585072014e-308", Some(f64::MIN_POSITIVE)),
            ("2.2250738585072011e-308", None),
            ("2.2250738585072012e-308", None),
            ("2.225073858507201074299204066553e-308", None),
            ("2.225073858507201197815615526865e-308", None),
            (
                "2.225073858507201259573821257021e-308",
                Some(f64::MIN_POSITIVE),
            ),
            ("2.2250738585072012595738212570205e-308", None),
            ("2.2250738585072012595738212570206e-308", None),
            (
                "2.225073858507201321332026987177e-308",
                Some(f64::MIN_POSITIVE),
            ),
        ];
        for (text, want) in cases {
            let got = sort_score(text.as_bytes());
            assert_eq!(
                got.map(f64::to_bits),
                want.map(f64::to_bits),
                "{text:?}: got {got:?}"
            );
        }
    }

    #[test]
    fn exact_subnormals_are_accepted() {
        // 2^-1074 and 3 × 2^-1074, written out exactly in decimal.
        for k in [1u64, 3, (1 << 52) - 1] {
            let e = dyadic(k, 1074, 10);
            let digits: String = e.digits.iter().map(|d| char::from(b'0' + d)).collect();
            let exact = format!("0.{digits}e{}", e.exp);
            assert_eq!(sort_score(exact.as_bytes()), Some(f64::from_bits(k)), "{k}");
            let more = format!("0.{digits}1e{}", e.exp);
            assert_eq!(sort_score(more.as_bytes()), None, "{k} plus a little");
        }
    }

    #[test]
    fn dyadic_expansions() {
        assert_eq!(dyadic(1, 1, 10), Exact::new(vec![5], 0));
        assert_eq!(dyadic(3, 2, 10), Exact::new(vec![7, 5], 0));
        assert_eq!(dyadic(5, 0, 2), Exact::new(vec![1, 0, 1], 3));
        assert_eq!(dyadic(1, 1074, 10).digits.len(), 751);
    }
}
