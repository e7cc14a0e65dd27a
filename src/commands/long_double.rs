//! INCRBYFLOAT's arithmetic: x86-64 `long double` (80-bit extended precision), in software.
//!
//! Redis computes INCRBYFLOAT as `strtold(value) + strtold(increment)` in `long double` and
//! stores `snprintf("%.17Lf")` with the trailing zeros trimmed. On x86-64 Linux that type has a
//! 64-bit significand, so the replies differ from anything f64 can produce: `SET k 1` then
//! `INCRBYFLOAT k -1.1` gives `-0.1` in Redis but `-0.10000000000000009` in f64. Clients and
//! test suites compare these strings, so we reproduce the three steps exactly:
//!
//! - `parse`: glibc's `strtold` as Redis's `string2ld` uses it (decimal, hex floats, `inf`;
//!   NaN, partial parses and out-of-range results are rejected), correctly rounded.
//! - `add`: one correctly rounded addition.
//! - `format_human`: `%.17Lf` (exact decimal expansion, round half to even), then Redis's
//!   `ld2string` trimming (`3.50000000000000000` → `3.5`, `-0` → `0`).
//!
//! Every step works on exact integers (u128 where they fit, else the small `Big`), rounding
//! once at the end with a sticky bit for whatever was shifted or divided away, so there is no
//! double rounding anywhere. Inputs are bounded by `DIGITS_MAX` (Redis's
//! `MAX_LONG_DOUBLE_CHARS`), which bounds every integer here to about 34,000 bits. A typical
//! INCRBYFLOAT (two parses, one addition, one format) costs about 0.4 µs in a release build.

use std::cmp::Ordering;

/// Redis's `MAX_LONG_DOUBLE_CHARS`: longer strings are not numbers.
pub const DIGITS_MAX: usize = 5 * 1024;

/// The exponent of the last significand bit of the smallest subnormal (and of every normal
/// number at the smallest exponent): 2^-16445.
const LSB_EXP_MIN: i64 = -16445;
/// The exponent of the last significand bit of the largest finite value, (2^64-1)·2^16320.
const LSB_EXP_MAX: i64 = 16320;
const MANT_BITS: i64 = 64;
/// Digits after the point in `%.17Lf`.
const FRACTION_DIGITS: u32 = 17;
/// Where a decimal exponent saturates while parsing; far past any finite or non-zero value.
const EXP10_SATURATE: i64 = 100_000_000;
/// The largest power of five a u64 holds: 5^27 < 2^63.
const FIVE_POW_STEP: u64 = 27;

/// A finite extended-precision value: `(-1)^neg · mant · 2^exp`. Zero has `mant == 0`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LongDouble {
    neg: bool,
    mant: u64,
    exp: i64,
}

/// What `strtold` may produce.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Parsed {
    Finite(LongDouble),
    /// `inf` or `infinity`, either sign: a valid number that no addition keeps finite.
    Infinite,
}

/// A result that does not fit: overflow to infinity or a non-zero value rounded to zero.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OutOfRange;

impl LongDouble {
    pub const ZERO: LongDouble = LongDouble {
        neg: false,
        mant: 0,
        exp: 0,
    };

    /// The exact value of an i64 (a 64-bit significand holds every one).
    pub fn from_i64(n: i64) -> LongDouble {
        LongDouble {
            neg: n < 0,
            mant: n.unsigned_abs(),
            exp: 0,
        }
    }

    /// The correctly rounded sum; `OutOfRange` when it overflows. (Not `std::ops::Add`: the
    /// addition can fail.)
    #[allow(clippy::should_implement_trait)]
    pub fn add(self, other: LongDouble) -> Result<LongDouble, OutOfRange> {
        if self.mant == 0 {
            return Ok(other);
        }
        if other.mant == 0 {
            return Ok(self);
        }
        let exp = self.exp.min(other.exp);
        let mut a = Big::from_u64(self.mant);
        a.shl((self.exp - exp) as u64);
        let mut b = Big::from_u64(other.mant);
        b.shl((other.exp - exp) as u64);
        if self.neg == other.neg {
            a.add_assign(&b);
            return round(self.neg, &a, exp, false);
        }
        match a.cmp(&b) {
            Ordering::Equal => Ok(LongDouble::ZERO),
            Ordering::Greater => {
                a.sub_assign(&b);
                round(self.neg, &a, exp, false)
            }
            Ordering::Less => {
                b.sub_assign(&a);
                round(other.neg, &b, exp, false)
            }
        }
    }
}

/// Rounds `(-1)^neg · (m + ε) · 2^exp` to 64 significant bits, nearest with ties to even, where
/// `sticky` says whether ε (some value in (0, 1)) is non-zero.
fn round(neg: bool, m: &Big, exp: i64, sticky: bool) -> Result<LongDouble, OutOfRange> {
    if m.is_zero() {
        return Ok(LongDouble {
            neg,
            mant: 0,
            exp: 0,
        });
    }
    let bits = m.bits() as i64;
    let mut lsb = (exp + bits - MANT_BITS).max(LSB_EXP_MIN);
    let shift = lsb - exp;
    let mant = if shift <= 0 {
        // Exact: the value has fewer significant bits than the format; ε < 1 of a unit that
        // is itself below the last kept bit rounds away under round-to-nearest.
        m.extract_u64(0) << (-shift) as u32
    } else {
        let shift = shift as u64;
        let mut mant = m.extract_u64(shift);
        let half = m.bit(shift - 1);
        let rest = sticky || m.any_below(shift - 1);
        if half && (rest || mant & 1 == 1) {
            mant = match mant.checked_add(1) {
                Some(v) => v,
                None => {
                    lsb += 1;
                    1 << 63
                }
            };
        }
        mant
    };
    if mant == 0 || lsb > LSB_EXP_MAX {
        return Err(OutOfRange);
    }
    Ok(LongDouble {
        neg,
        mant,
        exp: lsb,
    })
}

/// Parses `s` as Redis's `string2ld` does: the whole string must be one `strtold` number
/// (no spaces, no NaN); a result that overflows or underflows to zero is rejected.
pub fn parse(s: &[u8]) -> Option<Parsed> {
    if s.is_empty() || s.len() >= DIGITS_MAX {
        return None;
    }
    let (neg, body) = match s.first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    if body.eq_ignore_ascii_case(b"inf") || body.eq_ignore_ascii_case(b"infinity") {
        return Some(Parsed::Infinite);
    }
    let hex = body.len() > 1 && body[0] == b'0' && (body[1] | 0x20) == b'x';
    let value = if hex {
        parse_hex(neg, &body[2..])?
    } else {
        parse_decimal(neg, body)?
    };
    Some(Parsed::Finite(value))
}

/// Splits `digits [. digits]` (at least one digit overall) into the digit bytes before and
/// after the point, and the rest of the input.
fn split_mantissa(s: &[u8], is_digit: fn(&u8) -> bool) -> Option<(&[u8], &[u8], &[u8])> {
    let int_len = s.iter().take_while(|c| is_digit(c)).count();
    let (int, rest) = s.split_at(int_len);
    let (frac, rest) = match rest.split_first() {
        Some((b'.', after)) => {
            let n = after.iter().take_while(|c| is_digit(c)).count();
            after.split_at(n)
        }
        _ => (&rest[..0], rest),
    };
    if int.is_empty() && frac.is_empty() {
        return None;
    }
    Some((int, frac, rest))
}

/// An exponent suffix `<marker> [sign] digits` that must end the input; absent = 0.
fn parse_exponent(s: &[u8], marker: u8) -> Option<i64> {
    let Some((&m, rest)) = s.split_first() else {
        return Some(0);
    };
    if m | 0x20 != marker {
        return None;
    }
    let (neg, digits) = match rest.split_first() {
        Some((b'-', d)) => (true, d),
        Some((b'+', d)) => (false, d),
        _ => (false, rest),
    };
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let v = digits.iter().fold(0i64, |acc, &c| {
        (acc * 10 + (c - b'0') as i64).min(EXP10_SATURATE)
    });
    Some(if neg { -v } else { v })
}

fn parse_decimal(neg: bool, s: &[u8]) -> Option<LongDouble> {
    let (int, frac, rest) = split_mantissa(s, u8::is_ascii_digit)?;
    let exp10 = parse_exponent(rest, b'e')? - frac.len() as i64;
    let mut digits: Vec<u8> = int.iter().chain(frac).copied().collect();
    let lead = digits.iter().take_while(|&&c| c == b'0').count();
    digits.drain(..lead);
    let trail = digits.iter().rev().take_while(|&&c| c == b'0').count();
    digits.truncate(digits.len() - trail);
    let exp10 = exp10 + trail as i64;
    if digits.is_empty() {
        return Some(LongDouble {
            neg,
            ..LongDouble::ZERO
        });
    }
    // The value lies in [10^(top-1), 10^top): past 10^4933 it overflows, below 10^-4952 (a
    // fraction of the smallest subnormal, ~3.6e-4951) it rounds to zero.
    let top = digits.len() as i64 + exp10;
    if !(-4952..=4933).contains(&top) {
        return None;
    }
    let mut m = Big::from_u64(0);
    for chunk in digits.chunks(9) {
        let v = chunk
            .iter()
            .fold(0u32, |acc, &c| acc * 10 + (c - b'0') as u32);
        m.mul_small(10u32.pow(chunk.len() as u32));
        m.add_small(v);
    }
    if exp10 >= 0 {
        m.mul_pow10(exp10 as u32);
        return round(neg, &m, 0, false).ok();
    }
    // m / 10^k = (m / 5^k) · 2^-k. Shift m first so the quotient keeps at least 67 bits
    // (log2 5 < 3), then divide by 5^k in steps that fit a u64: floor(floor(n/a)/b) equals
    // floor(n/(ab)), and the division is exact only if every step is.
    let k = exp10.unsigned_abs();
    let scale = (67 + 3 * k).saturating_sub(m.bits());
    m.shl(scale);
    let mut inexact = false;
    let mut left = k;
    while left > 0 {
        let step = left.min(FIVE_POW_STEP);
        inexact |= m.div_rem_u64(5u64.pow(step as u32)) != 0;
        left -= step;
    }
    round(neg, &m, -(scale as i64) - k as i64, inexact).ok()
}

fn parse_hex(neg: bool, s: &[u8]) -> Option<LongDouble> {
    let (int, frac, rest) = split_mantissa(s, u8::is_ascii_hexdigit)?;
    let exp2 = parse_exponent(rest, b'p')? - 4 * frac.len() as i64;
    let mut m = Big::from_u64(0);
    for &c in int.iter().chain(frac) {
        m.mul_small(16);
        m.add_small((c as char).to_digit(16).unwrap_or(0));
    }
    if m.is_zero() {
        return Some(LongDouble {
            neg,
            ..LongDouble::ZERO
        });
    }
    // The value lies in [2^(top-1), 2^top); see `parse_decimal`.
    let top = m.bits() as i64 + exp2;
    if !(-16446..=16385).contains(&top) {
        return None;
    }
    round(neg, &m, exp2, false).ok()
}

/// `%.17Lf` with Redis's `LD_STR_HUMAN` trimming: trailing zeros after the point go, then the
/// point itself, and `-0` becomes `0`.
pub fn format_human(v: LongDouble) -> String {
    let (int_part, frac) = fixed_17(v);
    let mut s = String::new();
    if v.neg {
        s.push('-');
    }
    s.push_str(&int_part);
    let frac = format!("{:0width$}", frac, width = FRACTION_DIGITS as usize);
    let frac = frac.trim_end_matches('0');
    if !frac.is_empty() {
        s.push('.');
        s.push_str(frac);
    }
    if s == "-0" {
        s.remove(0);
    }
    s
}

/// The magnitude rounded to 17 decimals: integer digits and the 17-digit fraction as a number.
fn fixed_17(v: LongDouble) -> (String, u64) {
    let scale = 10u64.pow(FRACTION_DIGITS);
    if v.exp >= 0 {
        if v.exp < 64 {
            return (((v.mant as u128) << v.exp).to_string(), 0);
        }
        let mut m = Big::from_u64(v.mant);
        m.shl(v.exp as u64);
        return (m.to_decimal(), 0);
    }
    let f = v.exp.unsigned_abs();
    let (int_part, frac) = if f < 64 {
        (v.mant >> f, v.mant & ((1u64 << f) - 1))
    } else {
        (0, v.mant)
    };
    // frac·10^17 < 2^64·2^57 fits a u128. Divided by 2^f and rounded to nearest, ties to
    // even (glibc under FE_TONEAREST); from f = 122 on it is below half a unit.
    let t = frac as u128 * scale as u128;
    let mut q = 0u64;
    if f < 122 {
        q = (t >> f) as u64;
        let half = (t >> (f - 1)) & 1 == 1;
        let rest = t & ((1u128 << (f - 1)) - 1) != 0;
        if half && (rest || q & 1 == 1) {
            q += 1;
        }
    }
    let mut int_part = int_part as u128;
    if q == scale {
        q = 0;
        int_part += 1;
    }
    (int_part.to_string(), q)
}

/// A minimal unsigned big integer (little-endian 32-bit limbs, no trailing zero limbs): just
/// what exact decimal/binary conversion and aligned addition need.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Big(Vec<u32>);

impl Big {
    fn from_u64(v: u64) -> Big {
        let mut b = Big(vec![v as u32, (v >> 32) as u32]);
        b.trim();
        b
    }

    fn trim(&mut self) {
        while self.0.last() == Some(&0) {
            self.0.pop();
        }
    }

    fn is_zero(&self) -> bool {
        self.0.is_empty()
    }

    fn bits(&self) -> u64 {
        match self.0.last() {
            None => 0,
            Some(&top) => 32 * (self.0.len() as u64 - 1) + (32 - top.leading_zeros()) as u64,
        }
    }

    fn bit(&self, i: u64) -> bool {
        let limb = (i / 32) as usize;
        self.0.get(limb).is_some_and(|&l| (l >> (i % 32)) & 1 == 1)
    }

    /// Whether any bit below position `i` is set.
    fn any_below(&self, i: u64) -> bool {
        let full = ((i / 32) as usize).min(self.0.len());
        if self.0[..full].iter().any(|&l| l != 0) {
            return true;
        }
        let rem = i % 32;
        rem != 0
            && self
                .0
                .get(full)
                .is_some_and(|&l| l & ((1u32 << rem) - 1) != 0)
    }

    /// Bits `[lo, lo + 64)` as a u64.
    fn extract_u64(&self, lo: u64) -> u64 {
        let limb = (lo / 32) as usize;
        let get = |i: usize| self.0.get(i).map_or(0, |&l| l as u128);
        let window = get(limb) | get(limb + 1) << 32 | get(limb + 2) << 64;
        (window >> (lo % 32)) as u64
    }

    fn mul_small(&mut self, m: u32) {
        let mut carry = 0u64;
        for limb in &mut self.0 {
            let v = *limb as u64 * m as u64 + carry;
            *limb = v as u32;
            carry = v >> 32;
        }
        if carry != 0 {
            self.0.push(carry as u32);
        }
        self.trim();
    }

    fn mul_pow10(&mut self, mut n: u32) {
        while n > 0 {
            let step = n.min(9);
            self.mul_small(10u32.pow(step));
            n -= step;
        }
    }

    fn add_small(&mut self, a: u32) {
        let mut carry = a as u64;
        for limb in &mut self.0 {
            if carry == 0 {
                return;
            }
            let v = *limb as u64 + carry;
            *limb = v as u32;
            carry = v >> 32;
        }
        if carry != 0 {
            self.0.push(carry as u32);
        }
    }

    fn shl(&mut self, n: u64) {
        if self.is_zero() {
            return;
        }
        let limbs = (n / 32) as usize;
        let bits = (n % 32) as u32;
        if bits != 0 {
            let mut carry = 0u32;
            for limb in &mut self.0 {
                let v = *limb;
                *limb = (v << bits) | carry;
                carry = v >> (32 - bits);
            }
            if carry != 0 {
                self.0.push(carry);
            }
        }
        self.0.splice(0..0, std::iter::repeat_n(0, limbs));
    }

    fn cmp(&self, other: &Big) -> Ordering {
        self.0
            .len()
            .cmp(&other.0.len())
            .then_with(|| self.0.iter().rev().cmp(other.0.iter().rev()))
    }

    fn add_assign(&mut self, other: &Big) {
        if self.0.len() < other.0.len() {
            self.0.resize(other.0.len(), 0);
        }
        let mut carry = 0u64;
        for (i, limb) in self.0.iter_mut().enumerate() {
            let v = *limb as u64 + other.0.get(i).copied().unwrap_or(0) as u64 + carry;
            *limb = v as u32;
            carry = v >> 32;
        }
        if carry != 0 {
            self.0.push(carry as u32);
        }
    }

    /// `self -= other`; the caller guarantees `self >= other`.
    fn sub_assign(&mut self, other: &Big) {
        debug_assert!(self.cmp(other) != Ordering::Less);
        let mut borrow = 0i64;
        for (i, limb) in self.0.iter_mut().enumerate() {
            let v = *limb as i64 - other.0.get(i).copied().unwrap_or(0) as i64 - borrow;
            borrow = (v < 0) as i64;
            *limb = v.rem_euclid(1 << 32) as u32;
        }
        debug_assert_eq!(borrow, 0);
        self.trim();
    }

    /// `self /= d`, returning the remainder.
    fn div_rem_u64(&mut self, d: u64) -> u64 {
        let mut rem: u128 = 0;
        for limb in self.0.iter_mut().rev() {
            let v = (rem << 32) | *limb as u128;
            *limb = (v / d as u128) as u32;
            rem = v % d as u128;
        }
        self.trim();
        rem as u64
    }

    fn to_decimal(&self) -> String {
        let mut n = self.clone();
        let mut chunks = Vec::new();
        while !n.is_zero() {
            chunks.push(n.div_rem_u64(10u64.pow(19)));
        }
        let mut s = chunks
            .pop()
            .map_or_else(|| "0".to_string(), |top| top.to_string());
        for c in chunks.iter().rev() {
            s.push_str(&format!("{:019}", c));
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn finite(s: &str) -> LongDouble {
        match parse(s.as_bytes()) {
            Some(Parsed::Finite(v)) => v,
            other => panic!("{s}: {other:?}"),
        }
    }

    fn sum(a: &str, b: &str) -> String {
        format_human(finite(a).add(finite(b)).expect("finite sum"))
    }

    // Every expected string below is what redis-server 7.0.15 (x86-64, glibc) replied to
    // `SET k <a>` + `INCRBYFLOAT k <b>`.
    #[test]
    fn sums_match_redis() {
        assert_eq!(sum("1", "-1.1"), "-0.1");
        assert_eq!(sum("1", "2"), "3");
        assert_eq!(sum("0", "-1e-20"), "0");
        assert_eq!(sum("0", "10.5"), "10.5");
        assert_eq!(sum("10.5", "3.0e3"), "3010.5");
        assert_eq!(sum("-3", "0.1"), "-2.9");
        assert_eq!(sum("-2.9", "1e17"), "99999999999999997.1015625");
        assert_eq!(sum("0", "0x10"), "16");
        assert_eq!(sum("0", "0x.8"), "0.5");
        assert_eq!(sum("0.5", "0x8."), "8.5");
        assert_eq!(sum("8.5", "0e99999999999999999"), "8.5");
        assert_eq!(sum("0", "0.000003814697265625"), "0.00000381469726562");
        assert_eq!(sum("0", "0.000011444091796875"), "0.00001144409179688");
        assert_eq!(sum("3000", "1."), "3001");
        assert_eq!(sum("3001", ".5"), "3001.5");
        assert_eq!(sum("3001.5", "+.5e+1"), "3006.5");
        assert_eq!(
            sum("0", "123456789012345678901234567890"),
            "123456789012345678899921813504"
        );
        assert_eq!(
            sum("123456789012345678899921813504", "1.5"),
            "123456789012345678899921813504"
        );
        assert_eq!(sum("0", "1e-4940"), "0");
        assert_eq!(sum("0", "3.6451995318824746025e-4951"), "0");
        assert_eq!(sum("0", "1e-17"), "0.00000000000000001");
        assert_eq!(sum("0", "0.000000000000000005"), "0");
        assert_eq!(sum("0", "0.000000000000000015"), "0.00000000000000002");
        assert_eq!(sum("0", "0.99999999999999999999"), "1");
        assert_eq!(sum("0", "-0.0"), "0");
        assert_eq!(sum("0", "1.0000000000000000000000000000001"), "1");
        assert_eq!(sum("0", "18446744073709551615"), "18446744073709551615");
        assert_eq!(sum("18446744073709551615", "0.5"), "18446744073709551616");
        assert_eq!(sum("0", "18446744073709551617"), "18446744073709551616");
        // Many digits on either side of the point, and a long mantissa scaled down.
        assert_eq!(
            sum("0", "123456789012345678901234567890.5"),
            "123456789012345678899921813504"
        );
        let mut tenth = b"0.".to_vec();
        tenth.resize(DIGITS_MAX - 1, b'1');
        let tenth = std::str::from_utf8(&tenth).expect("ascii");
        assert_eq!(sum("0", tenth), "0.11111111111111111");
        let nines = format!("{}e-3990", "9".repeat(4000));
        assert_eq!(sum("0", &nines), "10000000000");
        assert_eq!(sum("0", "0x1.8p-16446"), "0");
    }

    #[test]
    fn huge_values_print_every_digit() {
        let s = sum("0", "1e4000");
        assert_eq!(s.len(), 4000);
        assert!(s.starts_with("99999999999999999999654638730996237849324925835069576313"));
        assert!(s.ends_with("6648276349901340672"));
        let max = sum("0", "0xffffffffffffffffp16320");
        assert_eq!(max.len(), 4933);
        assert!(max.starts_with("1189731495357231765021263853030970205169063322294624200"));
        let f = sum("0", "1.7976931348623157e308");
        assert!(f.starts_with("179769313486231569995921046774104434048386446944329178"));
        assert_eq!(f.len(), 309);
    }

    #[test]
    fn rejects_what_string2ld_rejects() {
        for bad in [
            "",
            " 1",
            "1 ",
            "nan",
            "-nan",
            "1_0",
            "0x",
            "0x.",
            "1e",
            "1e+",
            ".",
            "+",
            "-",
            "e5",
            "1e-5000",
            "1e-99999999999999999999",
            "1e4933",
            "0x1p16384",
            "0x1p-16446",
            "0x1ffffffffffffffffp16319",
            "1\x002",
            "infinit",
            "0x1p",
            "1.2.3",
        ] {
            assert_eq!(parse(bad.as_bytes()), None, "{bad:?}");
        }
        for inf in ["inf", "-INF", "+Infinity", "infinity"] {
            assert_eq!(parse(inf.as_bytes()), Some(Parsed::Infinite), "{inf}");
        }
        let mut longest = b"0.".to_vec();
        longest.resize(DIGITS_MAX - 1, b'1');
        assert!(parse(&longest).is_some());
        longest.push(b'1');
        assert_eq!(parse(&longest), None);
    }

    #[test]
    fn overflowing_sum_is_out_of_range() {
        let max = finite("0xffffffffffffffffp16320");
        assert_eq!(max.add(max), Err(OutOfRange));
        assert_eq!(
            max.add(finite("-0xffffffffffffffffp16320")),
            Ok(LongDouble::ZERO)
        );
    }

    #[test]
    fn ints_are_exact() {
        let v = LongDouble::from_i64(i64::MIN);
        assert_eq!(format_human(v), "-9223372036854775808");
        let v = LongDouble::from_i64(i64::MAX).add(LongDouble::from_i64(1));
        assert_eq!(v.map(format_human), Ok("9223372036854775808".to_string()));
    }
}
