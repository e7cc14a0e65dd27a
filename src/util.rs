//! Small helpers shared by every layer: clocks and glob matching.

use std::time::{SystemTime, UNIX_EPOCH};

/// Wall-clock Unix time in milliseconds.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// Wall-clock Unix time in microseconds.
pub fn now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}

/// A quoted, escaped representation of bytes, as Redis's `sdscatrepr` makes it.
pub fn repr(b: &[u8]) -> String {
    let mut s = String::with_capacity(b.len() + 2);
    s.push('"');
    for &c in b {
        match c {
            b'\\' => s.push_str("\\\\"),
            b'"' => s.push_str("\\\""),
            b'\n' => s.push_str("\\n"),
            b'\r' => s.push_str("\\r"),
            b'\t' => s.push_str("\\t"),
            7 => s.push_str("\\a"),
            8 => s.push_str("\\b"),
            c if c.is_ascii_graphic() || c == b' ' => s.push(c as char),
            c => s.push_str(&format!("\\x{:02x}", c)),
        }
    }
    s.push('"');
    s
}

/// Redis's glob matcher (`stringmatchlen`): `*`, `?`, `[...]` with ranges and `^`, `\` escapes.
pub fn glob_match(pattern: &[u8], s: &[u8], nocase: bool) -> bool {
    let mut give_up = false;
    glob_rec(pattern, s, nocase, 0, &mut give_up)
}

/// `give_up` is set when a `*` failed to match the rest of the pattern at every position of
/// the rest of the string: an enclosing `*` trying longer prefixes cannot succeed either, so
/// the search stops (this keeps patterns like `a*a*a*...b` linear instead of exponential).
fn glob_rec(mut p: &[u8], mut s: &[u8], nocase: bool, depth: u32, give_up: &mut bool) -> bool {
    // Redis bounds recursion against pathological patterns the same way.
    if depth > 1000 {
        return false;
    }
    let eq = |a: u8, b: u8| {
        if nocase {
            a.eq_ignore_ascii_case(&b)
        } else {
            a == b
        }
    };
    while !p.is_empty() && !s.is_empty() {
        match p[0] {
            b'*' => {
                while p.len() > 1 && p[1] == b'*' {
                    p = &p[1..];
                }
                if p.len() == 1 {
                    return true;
                }
                for i in 0..s.len() {
                    if glob_rec(&p[1..], &s[i..], nocase, depth + 1, give_up) {
                        return true;
                    }
                    if *give_up {
                        return false;
                    }
                }
                *give_up = true;
                return false;
            }
            b'?' => {
                s = &s[1..];
            }
            b'[' => {
                p = &p[1..];
                let not = p.first() == Some(&b'^');
                if not {
                    p = &p[1..];
                }
                let mut matched = false;
                loop {
                    if p.is_empty() {
                        break;
                    }
                    if p[0] == b'\\' && p.len() >= 2 {
                        p = &p[1..];
                        if eq(p[0], s[0]) {
                            matched = true;
                        }
                    } else if p[0] == b']' {
                        break;
                    } else if p.len() >= 3 && p[1] == b'-' {
                        let (mut start, mut end) = (p[0], p[2]);
                        let mut c = s[0];
                        if start > end {
                            std::mem::swap(&mut start, &mut end);
                        }
                        if nocase {
                            start = start.to_ascii_lowercase();
                            end = end.to_ascii_lowercase();
                            c = c.to_ascii_lowercase();
                        }
                        p = &p[2..];
                        if c >= start && c <= end {
                            matched = true;
                        }
                    } else if eq(p[0], s[0]) {
                        matched = true;
                    }
                    p = &p[1..];
                }
                if p.is_empty() {
                    // Unterminated class: Redis treats the end as the closing bracket.
                    if not {
                        matched = !matched;
                    }
                    if !matched {
                        return false;
                    }
                    s = &s[1..];
                    // p is empty: stays on the end.
                    continue;
                }
                if not {
                    matched = !matched;
                }
                if !matched {
                    return false;
                }
                s = &s[1..];
            }
            b'\\' if p.len() >= 2 => {
                p = &p[1..];
                if !eq(p[0], s[0]) {
                    return false;
                }
                s = &s[1..];
            }
            c => {
                if !eq(c, s[0]) {
                    return false;
                }
                s = &s[1..];
            }
        }
        p = &p[1..];
        if s.is_empty() {
            while p.first() == Some(&b'*') {
                p = &p[1..];
            }
            break;
        }
    }
    p.is_empty() && s.is_empty()
}

#[cfg(test)]
mod tests {
    use super::glob_match;

    #[test]
    fn globs() {
        assert!(glob_match(b"*", b"anything", false));
        assert!(glob_match(b"h?llo", b"hello", false));
        assert!(glob_match(b"h*llo", b"heeeello", false));
        assert!(glob_match(b"h[ae]llo", b"hallo", false));
        assert!(!glob_match(b"h[^e]llo", b"hello", false));
        assert!(glob_match(b"h[a-b]llo", b"hbllo", false));
        assert!(glob_match(b"foo*", b"foo", false));
        assert!(!glob_match(b"foo", b"foobar", false));
        assert!(glob_match(b"a\\*b", b"a*b", false));
        assert!(glob_match(b"HELLO", b"hello", true));
        assert!(!glob_match(b"", b"a", false));
        let long = b"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
        let start = std::time::Instant::now();
        assert!(!glob_match(
            b"a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*b",
            long,
            false
        ));
        assert!(
            start.elapsed() < std::time::Duration::from_secs(5),
            "pattern matching blew up"
        );
        assert!(glob_match(b"", b"", false));
    }
}

/// A cheap timestamp for measuring command durations: the CPU's time-stamp counter where
/// available (about 20 cycles, no system call), converted to microseconds with a rate
/// calibrated once. Elsewhere it falls back to the monotonic clock.
pub mod cycles {
    use std::sync::OnceLock;
    use std::time::{Duration, Instant};

    #[cfg(target_arch = "x86_64")]
    #[inline]
    pub fn now() -> u64 {
        // SAFETY: RDTSC has no preconditions on x86_64.
        unsafe { core::arch::x86_64::_rdtsc() }
    }

    #[cfg(not(target_arch = "x86_64"))]
    #[inline]
    pub fn now() -> u64 {
        static START: OnceLock<Instant> = OnceLock::new();
        START.get_or_init(Instant::now).elapsed().as_nanos() as u64
    }

    /// Counter ticks per microsecond.
    fn per_us() -> f64 {
        static RATE: OnceLock<f64> = OnceLock::new();
        *RATE.get_or_init(|| {
            let (t0, c0) = (Instant::now(), now());
            std::thread::sleep(Duration::from_millis(20));
            let (us, c) = (t0.elapsed().as_secs_f64() * 1e6, now().wrapping_sub(c0));
            if us > 0.0 && c > 0 {
                c as f64 / us
            } else {
                1000.0
            }
        })
    }

    /// Calibrates the rate (call once at start-up, off the hot path).
    pub fn calibrate() {
        let _ = per_us();
    }

    /// Microseconds between two readings.
    #[inline]
    pub fn us_between(start: u64, end: u64) -> u64 {
        (end.wrapping_sub(start) as f64 / per_us()) as u64
    }
}

/// Unix time in seconds, refreshed by the shards' cron: the clock of LRU access times, which
/// like Redis's needs only one-second resolution and must be cheap to read on every access.
static LRU_SECS: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);

pub fn lru_secs() -> u32 {
    let v = LRU_SECS.load(std::sync::atomic::Ordering::Relaxed);
    if v == 0 {
        refresh_lru_secs();
        return (now_ms() / 1000) as u32;
    }
    v
}

pub fn refresh_lru_secs() {
    LRU_SECS.store(
        (now_ms() / 1000) as u32,
        std::sync::atomic::Ordering::Relaxed,
    );
}

/// CRC16-XMODEM (polynomial 0x1021, initial 0), the checksum Redis Cluster hashes keys with.
///
/// Every command hashes its key, so this is on the hot path: eight bytes at a time with
/// slice-by-8 tables (`TABLES[k][x]` is the CRC of byte `x` followed by `k` zero bytes; the
/// CRC is linear, so the eight lookups combine by XOR), then a byte at a time for the tail.
pub fn crc16(data: &[u8]) -> u16 {
    const fn tables() -> [[u16; 256]; 8] {
        let mut t = [[0u16; 256]; 8];
        let mut i = 0;
        while i < 256 {
            let mut crc = (i as u16) << 8;
            let mut bit = 0;
            while bit < 8 {
                crc = if crc & 0x8000 != 0 {
                    (crc << 1) ^ 0x1021
                } else {
                    crc << 1
                };
                bit += 1;
            }
            t[0][i] = crc;
            i += 1;
        }
        let mut k = 1;
        while k < 8 {
            let mut i = 0;
            while i < 256 {
                let prev = t[k - 1][i];
                t[k][i] = (prev << 8) ^ t[0][(prev >> 8) as usize];
                i += 1;
            }
            k += 1;
        }
        t
    }
    static TABLES: [[u16; 256]; 8] = tables();
    let t = &TABLES;
    let mut crc: u16 = 0;
    let mut chunks = data.chunks_exact(8);
    for c in &mut chunks {
        crc = t[7][(c[0] ^ (crc >> 8) as u8) as usize]
            ^ t[6][(c[1] ^ crc as u8) as usize]
            ^ t[5][c[2] as usize]
            ^ t[4][c[3] as usize]
            ^ t[3][c[4] as usize]
            ^ t[2][c[5] as usize]
            ^ t[1][c[6] as usize]
            ^ t[0][c[7] as usize];
    }
    for &b in chunks.remainder() {
        crc = (crc << 8) ^ t[0][((crc >> 8) as u8 ^ b) as usize];
    }
    crc
}

#[cfg(test)]
mod crc_tests {
    #[test]
    fn crc16_xmodem_matches_the_reference() {
        assert_eq!(super::crc16(b"123456789"), 0x31C3);
        for s in [
            &b""[..],
            b"foo",
            b"a much longer key with {tags} and bytes \xff\x00",
        ] {
            assert_eq!(super::crc16(s), crc16::State::<crc16::XMODEM>::calculate(s));
        }
        // Every length around the 8-byte stride, against the crate's byte-wise reference.
        let data: Vec<u8> = (0..200u32).map(|i| (i * 7919 % 251) as u8).collect();
        for start in 0..9 {
            for end in start..data.len() {
                let s = &data[start..end];
                assert_eq!(super::crc16(s), crc16::State::<crc16::XMODEM>::calculate(s));
            }
        }
    }
}
