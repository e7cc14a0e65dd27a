//! Redis's text primitives that config behaviour depends on, reimplemented byte for byte where
//! the difference is visible: `sdssplitargs` (config lines), `sdscatrepr` (quoting in rewritten
//! files and command-line options), `memtoull` (memory units), `string2ll` (strict integers),
//! C's `strtoll` (the lenient integers of `save`, `replicaof`...), Redis's memory formatting for
//! rewritten files and `trimDoubleString`.
//!
//! Everything works on bytes: config lines may carry any byte through `"\xNN"` escapes. Nothing
//! here indexes unchecked or panics on input.

/// C's `isspace()` in the C locale.
pub(crate) fn is_c_space(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | b'\n' | b'\x0b' | b'\x0c' | b'\r')
}

/// Trims the given bytes from both ends (`sdstrim`).
pub(crate) fn trim<'a>(s: &'a [u8], set: &[u8]) -> &'a [u8] {
    let start = s.iter().position(|c| !set.contains(c)).unwrap_or(s.len());
    let end = s
        .iter()
        .rposition(|c| !set.contains(c))
        .map_or(start, |i| i + 1);
    s.get(start..end).unwrap_or_default()
}

fn hex_value(c: Option<&u8>) -> Option<u8> {
    match c {
        Some(&c) if c.is_ascii_digit() => Some(c - b'0'),
        Some(&c) if (b'a'..=b'f').contains(&c.to_ascii_lowercase()) => {
            Some(c.to_ascii_lowercase() - b'a' + 10)
        }
        _ => None,
    }
}

/// Splits a line into arguments like Redis's `sdssplitargs`: blanks separate words, `"..."`
/// supports `\n \r \t \b \a \xNN` and `\<any>`, `'...'` supports `\'`, and a closing quote must
/// be followed by a blank or the end. `None` on unbalanced quotes. A NUL byte ends the line,
/// as it does for the C string Redis parses.
pub(crate) fn split_args(line: &[u8]) -> Option<Vec<Vec<u8>>> {
    let line = match line.iter().position(|&c| c == 0) {
        Some(nul) => line.get(..nul).unwrap_or_default(),
        None => line,
    };
    let mut args = Vec::new();
    let mut i = 0;
    loop {
        while line.get(i).is_some_and(|&c| is_c_space(c)) {
            i += 1;
        }
        if i >= line.len() {
            return Some(args);
        }
        let (word, next) = split_one(line, i)?;
        args.push(word);
        i = next;
    }
}

/// Reads one word starting at `i` (not a blank); returns it and where scanning resumes.
fn split_one(line: &[u8], mut i: usize) -> Option<(Vec<u8>, usize)> {
    let mut word = Vec::new();
    let (mut in_double, mut in_single) = (false, false);
    loop {
        let c = line.get(i).copied();
        let next = line.get(i + 1).copied();
        if in_double {
            match c {
                None => return None,
                Some(b'\\') if next == Some(b'x') => {
                    match (hex_value(line.get(i + 2)), hex_value(line.get(i + 3))) {
                        (Some(hi), Some(lo)) => {
                            word.push(hi * 16 + lo);
                            i += 3;
                        }
                        _ => {
                            word.push(b'x');
                            i += 1;
                        }
                    }
                }
                Some(b'\\') if next.is_some() => {
                    word.push(match next.unwrap_or_default() {
                        b'n' => b'\n',
                        b'r' => b'\r',
                        b't' => b'\t',
                        b'b' => 0x08,
                        b'a' => 0x07,
                        other => other,
                    });
                    i += 1;
                }
                Some(b'"') => {
                    if next.is_some_and(|n| !is_c_space(n)) {
                        return None;
                    }
                    return Some((word, i + 1));
                }
                Some(other) => word.push(other),
            }
        } else if in_single {
            match c {
                None => return None,
                Some(b'\\') if next == Some(b'\'') => {
                    word.push(b'\'');
                    i += 1;
                }
                Some(b'\'') => {
                    if next.is_some_and(|n| !is_c_space(n)) {
                        return None;
                    }
                    return Some((word, i + 1));
                }
                Some(other) => word.push(other),
            }
        } else {
            match c {
                None => return Some((word, i)),
                Some(b' ' | b'\n' | b'\r' | b'\t') => return Some((word, i + 1)),
                Some(b'"') => in_double = true,
                Some(b'\'') => in_single = true,
                Some(other) => word.push(other),
            }
        }
        i += 1;
    }
}

/// Quotes bytes like `sdscatrepr`: `"..."` with `\\ \" \n \r \t \a \b` and `\xNN` for other
/// non-printable bytes. The result always parses back with `split_args`.
pub(crate) fn repr(s: &[u8]) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for &c in s {
        match c {
            b'\\' => out.push_str("\\\\"),
            b'"' => out.push_str("\\\""),
            b'\n' => out.push_str("\\n"),
            b'\r' => out.push_str("\\r"),
            b'\t' => out.push_str("\\t"),
            0x07 => out.push_str("\\a"),
            0x08 => out.push_str("\\b"),
            0x20..=0x7e => out.push(c as char),
            _ => out.push_str(&format!("\\x{c:02x}")),
        }
    }
    out.push('"');
    out
}

/// Redis's `memtoull`: digits with an optional unit `b k kb m mb g gb` (any case; `k` is 1000,
/// `kb` 1024). Like Redis, an empty number is 0, an overflowing number saturates and the unit
/// multiplication wraps. `None` = "argument must be a memory value".
pub(crate) fn memtoull(s: &[u8]) -> Option<u64> {
    /// Redis copies the digits into a 128-byte buffer.
    const DIGITS_MAX: usize = 127;
    if s.first() == Some(&b'-') {
        return None;
    }
    let digits_end = s
        .iter()
        .position(|c| !c.is_ascii_digit())
        .unwrap_or(s.len());
    let (digits, unit) = s.split_at(digits_end);
    let mul: u64 = match unit.to_ascii_lowercase().as_slice() {
        b"" | b"b" => 1,
        b"k" => 1000,
        b"kb" => 1024,
        b"m" => 1000 * 1000,
        b"mb" => 1024 * 1024,
        b"g" => 1000 * 1000 * 1000,
        b"gb" => 1024 * 1024 * 1024,
        _ => return None,
    };
    if digits.len() > DIGITS_MAX {
        return None;
    }
    let value = digits.iter().fold(0u64, |acc, &d| {
        acc.checked_mul(10)
            .and_then(|a| a.checked_add(u64::from(d - b'0')))
            .unwrap_or(u64::MAX)
    });
    Some(value.wrapping_mul(mul))
}

/// Redis's `string2ll`: an optional `-`, no leading zeros, no blanks, no `+`, at most 20 bytes,
/// in range.
pub(crate) fn string2ll(s: &[u8]) -> Option<i64> {
    /// `LONG_STR_SIZE` in Redis.
    const LEN_MAX: usize = 20;
    if s.is_empty() || s.len() > LEN_MAX {
        return None;
    }
    if s == b"0" {
        return Some(0);
    }
    let (negative, digits) = match s.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, s),
    };
    match digits.first() {
        Some(b'1'..=b'9') => {}
        _ => return None,
    }
    let mut v: u64 = 0;
    for &d in digits {
        if !d.is_ascii_digit() {
            return None;
        }
        v = v.checked_mul(10)?.checked_add(u64::from(d - b'0'))?;
    }
    if negative {
        0i64.checked_sub_unsigned(v)
    } else {
        i64::try_from(v).ok()
    }
}

/// C's `strtoll(s, &end, base)`: leading blanks, an optional sign, digits; saturates on
/// overflow. Returns the value, whether the whole input was used (`*end == '\0'`) and whether it
/// overflowed (`errno == ERANGE`). With no digits at all `end` is the start of `s`, so only the
/// empty string counts as fully used.
pub(crate) fn strtoll(s: &[u8], base: u32) -> (i64, bool, bool) {
    let mut i = 0;
    while s.get(i).is_some_and(|&c| is_c_space(c)) {
        i += 1;
    }
    let negative = match s.get(i) {
        Some(b'-') => {
            i += 1;
            true
        }
        Some(b'+') => {
            i += 1;
            false
        }
        _ => false,
    };
    let start = i;
    let mut magnitude: u64 = 0;
    let mut overflow = false;
    while let Some(d) = s.get(i).and_then(|&c| (c as char).to_digit(base)) {
        match magnitude
            .checked_mul(u64::from(base))
            .and_then(|m| m.checked_add(u64::from(d)))
        {
            Some(m) => magnitude = m,
            None => overflow = true,
        }
        i += 1;
    }
    if i == start {
        return (0, s.is_empty(), false);
    }
    let value = if negative {
        match 0i64.checked_sub_unsigned(magnitude) {
            Some(v) if !overflow => v,
            _ => {
                overflow = true;
                i64::MIN
            }
        }
    } else {
        match i64::try_from(magnitude) {
            Ok(v) if !overflow => v,
            _ => {
                overflow = true;
                i64::MAX
            }
        }
    };
    (value, i == s.len(), overflow)
}

/// `yes`/`no` in any case (`yesnotoi`).
pub(crate) fn yes_no(s: &[u8]) -> Option<bool> {
    if s.eq_ignore_ascii_case(b"yes") {
        Some(true)
    } else if s.eq_ignore_ascii_case(b"no") {
        Some(false)
    } else {
        None
    }
}

/// Bytes as written in rewritten files: `gb`, `mb` or `kb` when exact, else plain.
pub(crate) fn format_memory(bytes: i128) -> String {
    const KB: i128 = 1024;
    const MB: i128 = 1024 * KB;
    const GB: i128 = 1024 * MB;
    if bytes != 0 && bytes % GB == 0 {
        format!("{}gb", bytes / GB)
    } else if bytes != 0 && bytes % MB == 0 {
        format!("{}mb", bytes / MB)
    } else if bytes != 0 && bytes % KB == 0 {
        format!("{}kb", bytes / KB)
    } else {
        bytes.to_string()
    }
}

/// `printf("%f")` followed by Redis's `trimDoubleString`: `99.9`, `50`.
pub(crate) fn format_percentile(v: f64) -> String {
    let mut s = format!("{v:.6}");
    if s.contains('.') {
        while s.ends_with('0') {
            s.pop();
        }
        if s.ends_with('.') {
            s.pop();
        }
    }
    s
}

/// The text of an I/O error as C's `strerror()` prints it (without Rust's "(os error N)").
pub(crate) fn strerror(e: &std::io::Error) -> String {
    let text = e.to_string();
    match text.rfind(" (os error ") {
        Some(cut) => text.get(..cut).unwrap_or_default().to_string(),
        None => text,
    }
}

/// Lossy UTF-8 for texts we echo (errors, CONFIG GET).
pub(crate) fn lossy(s: &[u8]) -> String {
    String::from_utf8_lossy(s).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(line: &str) -> Option<Vec<String>> {
        split_args(line.as_bytes()).map(|v| v.iter().map(|w| lossy(w)).collect())
    }

    #[test]
    fn split_args_like_sdssplitargs() {
        assert_eq!(words("save 900 1").expect("ok"), ["save", "900", "1"]);
        assert_eq!(words("  a\t b  ").expect("ok"), ["a", "b"]);
        assert_eq!(words(r#"logfile "" x"#).expect("ok"), ["logfile", "", "x"]);
        assert_eq!(words(r#"a "b c" 'd e'"#).expect("ok"), ["a", "b c", "d e"]);
        assert_eq!(words(r#""\x41\n\"\\""#).expect("ok"), ["A\n\"\\"]);
        assert_eq!(words(r#"'it\'s'"#).expect("ok"), ["it's"]);
        assert_eq!(words(r#"ab"cd""#).expect("ok"), ["abcd"]);
        assert_eq!(words(r#""\xZZ""#).expect("ok"), ["xZZ"]);
        assert!(words(r#"a "b"#).is_none());
        assert!(words(r#"a "b"c"#).is_none());
        assert!(words("a 'b").is_none());
        assert_eq!(words("").expect("ok"), Vec::<String>::new());
        assert_eq!(split_args(b"a\0b c").expect("ok"), vec![b"a".to_vec()]);
    }

    #[test]
    fn repr_round_trips() {
        let nasty = b"a \"b\" \\ \n\r\t\x07\x08\x01\xff";
        let quoted = repr(nasty);
        assert_eq!(quoted, r#""a \"b\" \\ \n\r\t\a\b\x01\xff""#);
        assert_eq!(
            split_args(quoted.as_bytes()).expect("ok"),
            vec![nasty.to_vec()]
        );
    }

    #[test]
    fn memory_units() {
        assert_eq!(memtoull(b"1gb"), Some(1 << 30));
        assert_eq!(memtoull(b"1GB"), Some(1 << 30));
        assert_eq!(memtoull(b"1g"), Some(1_000_000_000));
        assert_eq!(memtoull(b"5k"), Some(5000));
        assert_eq!(memtoull(b"5Kb"), Some(5120));
        assert_eq!(memtoull(b"7mb"), Some(7 << 20));
        assert_eq!(memtoull(b"10b"), Some(10));
        assert_eq!(memtoull(b"123"), Some(123));
        assert_eq!(memtoull(b""), Some(0));
        assert_eq!(memtoull(b"-1"), None);
        assert_eq!(memtoull(b"10xb"), None);
        assert_eq!(memtoull(b"1.5gb"), None);
        assert_eq!(memtoull(b" 1"), None);
        assert_eq!(memtoull(b"99999999999999999999"), Some(u64::MAX));
    }

    #[test]
    fn strict_integers() {
        assert_eq!(string2ll(b"0"), Some(0));
        assert_eq!(string2ll(b"-2"), Some(-2));
        assert_eq!(string2ll(b"9223372036854775807"), Some(i64::MAX));
        assert_eq!(string2ll(b"-9223372036854775808"), Some(i64::MIN));
        assert_eq!(string2ll(b"9223372036854775808"), None);
        for bad in [
            &b"06379"[..],
            b"+1",
            b" 1",
            b"1 ",
            b"-0",
            b"-",
            b"",
            b"1e3",
            b"abc",
        ] {
            assert_eq!(string2ll(bad), None, "{}", lossy(bad));
        }
    }

    #[test]
    fn c_strtoll() {
        assert_eq!(strtoll(b"900", 10), (900, true, false));
        assert_eq!(strtoll(b" -5", 10), (-5, true, false));
        assert_eq!(strtoll(b"12x", 10), (12, false, false));
        assert_eq!(strtoll(b"", 10), (0, true, false));
        assert_eq!(strtoll(b"x", 10), (0, false, false));
        assert_eq!(strtoll(b"777", 8), (511, true, false));
        assert_eq!(strtoll(b"8", 8), (0, false, false));
        assert_eq!(strtoll(b"99999999999999999999", 10), (i64::MAX, true, true));
    }

    #[test]
    fn formats() {
        assert_eq!(format_memory(0), "0");
        assert_eq!(format_memory(1 << 30), "1gb");
        assert_eq!(format_memory(3 << 20), "3mb");
        assert_eq!(format_memory(2048), "2kb");
        assert_eq!(format_memory(3_000_000), "3000000");
        assert_eq!(format_percentile(99.9), "99.9");
        assert_eq!(format_percentile(50.0), "50");
        assert_eq!(format_percentile(99.999), "99.999");
        assert_eq!(trim(b" \tab c\r\n", b" \t\r\n"), b"ab c");
        assert_eq!(trim(b"   ", b" "), b"");
        let e = std::io::Error::from_raw_os_error(2);
        assert_eq!(strerror(&e), "No such file or directory");
    }
}
