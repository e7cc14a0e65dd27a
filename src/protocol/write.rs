//! The reply writer: handlers encode replies straight into a connection's output buffer.
//!
//! One `Out` wraps the buffer and the connection's protocol version (2 or 3). Every reply
//! shape that differs between RESP2 and RESP3 (null, map, set, double, boolean, verbatim,
//! push) is decided here and nowhere else, so a handler never asks which protocol it speaks.
//! Redis's exact formatting rules for doubles (`%.17g`, `inf`, `-inf`) live here too.

/// Protocol version of a connection: RESP2 (`2`) or RESP3 (`3`).
pub type Proto = u8;

/// Encodes replies into `buf`.
pub struct Out<'a> {
    pub buf: &'a mut Vec<u8>,
    pub proto: Proto,
    /// Errors written so far (for `total_error_replies` and rejected-call stats).
    pub errors: u32,
    /// The first word of the last error written ("ERR", "WRONGTYPE", ...) for errorstats.
    pub last_error_code: Option<String>,
    /// Past this many bytes in `buf` the connection's output limit closes it, so a command
    /// building a huge reply may stop early (`over_limit`). `usize::MAX`: no limit.
    pub limit_bytes: usize,
}

impl<'a> Out<'a> {
    pub fn new(buf: &'a mut Vec<u8>, proto: Proto) -> Self {
        Out {
            buf,
            proto,
            errors: 0,
            last_error_code: None,
            limit_bytes: usize::MAX,
        }
    }

    /// Whether the reply outgrew the connection's output limit: the connection will be closed
    /// without it, so the rest need not be built.
    #[inline]
    pub fn over_limit(&self) -> bool {
        self.buf.len() > self.limit_bytes
    }

    pub fn resp3(&self) -> bool {
        self.proto >= 3
    }

    fn line(&mut self, prefix: u8, n: i64) {
        self.buf.push(prefix);
        let mut tmp = itoa_buf(n);
        self.buf.extend_from_slice(tmp.as_bytes_mut());
        self.buf.extend_from_slice(b"\r\n");
    }

    pub fn ok(&mut self) {
        self.buf.extend_from_slice(b"+OK\r\n");
    }

    /// `+text\r\n`; the text must not contain CR or LF.
    pub fn simple(&mut self, text: &str) {
        self.buf.push(b'+');
        self.buf.extend_from_slice(text.as_bytes());
        self.buf.extend_from_slice(b"\r\n");
    }

    /// `-text\r\n`. `text` starts with the error code (`ERR ...`, `WRONGTYPE ...`).
    /// CR and LF inside the text are replaced by spaces, as Redis does.
    pub fn error(&mut self, text: &str) {
        self.errors += 1;
        let code = text.split(' ').next().unwrap_or("ERR");
        self.last_error_code = Some(code.to_string());
        self.buf.push(b'-');
        for &b in text.as_bytes() {
            self.buf
                .push(if b == b'\r' || b == b'\n' { b' ' } else { b });
        }
        self.buf.extend_from_slice(b"\r\n");
    }

    /// An error whose text is arbitrary bytes (client-supplied names echoed back).
    pub fn error_bytes(&mut self, text: &[u8]) {
        self.errors += 1;
        let code_len = text.iter().position(|&b| b == b' ').unwrap_or(text.len());
        self.last_error_code = Some(String::from_utf8_lossy(&text[..code_len]).into_owned());
        self.buf.push(b'-');
        for &b in text {
            self.buf
                .push(if b == b'\r' || b == b'\n' { b' ' } else { b });
        }
        self.buf.extend_from_slice(b"\r\n");
    }

    pub fn int(&mut self, n: i64) {
        self.line(b':', n);
    }

    pub fn bulk(&mut self, data: &[u8]) {
        self.line(b'$', data.len() as i64);
        self.buf.extend_from_slice(data);
        self.buf.extend_from_slice(b"\r\n");
    }

    pub fn bulk_str(&mut self, s: &str) {
        self.bulk(s.as_bytes());
    }

    /// A bulk string holding the decimal form of `n` (e.g. INCRBYFLOAT-like replies of ints).
    pub fn bulk_int(&mut self, n: i64) {
        let mut tmp = itoa_buf(n);
        self.bulk(tmp.as_bytes_mut());
    }

    /// The null bulk string: `$-1` in RESP2, `_` in RESP3.
    pub fn null(&mut self) {
        if self.resp3() {
            self.buf.extend_from_slice(b"_\r\n");
        } else {
            self.buf.extend_from_slice(b"$-1\r\n");
        }
    }

    /// The null array: `*-1` in RESP2, `_` in RESP3.
    pub fn null_array(&mut self) {
        if self.resp3() {
            self.buf.extend_from_slice(b"_\r\n");
        } else {
            self.buf.extend_from_slice(b"*-1\r\n");
        }
    }

    pub fn array(&mut self, len: usize) {
        self.line(b'*', len as i64);
    }

    /// A map of `len` pairs: `%len` in RESP3, a flat array of `2*len` in RESP2.
    pub fn map(&mut self, len: usize) {
        if self.resp3() {
            self.line(b'%', len as i64);
        } else {
            self.line(b'*', 2 * len as i64);
        }
    }

    /// A set: `~len` in RESP3, an array in RESP2.
    pub fn set(&mut self, len: usize) {
        if self.resp3() {
            self.line(b'~', len as i64);
        } else {
            self.line(b'*', len as i64);
        }
    }

    /// A push message header: `>len` in RESP3, an array in RESP2.
    pub fn push(&mut self, len: usize) {
        if self.resp3() {
            self.line(b'>', len as i64);
        } else {
            self.line(b'*', len as i64);
        }
    }

    /// A boolean: `#t`/`#f` in RESP3, `:1`/`:0` in RESP2.
    pub fn boolean(&mut self, b: bool) {
        if self.resp3() {
            self.buf
                .extend_from_slice(if b { b"#t\r\n" } else { b"#f\r\n" });
        } else {
            self.int(b as i64);
        }
    }

    /// A double: `,repr` in RESP3, a bulk string in RESP2, formatted as Redis's `%.17g`.
    pub fn double(&mut self, d: f64) {
        let s = fmt_double(d);
        if self.resp3() {
            self.buf.push(b',');
            self.buf.extend_from_slice(s.as_bytes());
            self.buf.extend_from_slice(b"\r\n");
        } else {
            self.bulk(s.as_bytes());
        }
    }

    /// Verbatim text (`=len\r\ntxt:...` in RESP3, a bulk string in RESP2).
    pub fn verbatim(&mut self, text: &[u8], format: &str) {
        if self.resp3() {
            self.line(b'=', (text.len() + 4) as i64);
            self.buf.extend_from_slice(format.as_bytes());
            self.buf.push(b':');
            self.buf.extend_from_slice(text);
            self.buf.extend_from_slice(b"\r\n");
        } else {
            self.bulk(text);
        }
    }

    /// Bytes already encoded as RESP (e.g. a reply computed on another shard).
    pub fn raw(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    pub fn bulks<I, B>(&mut self, items: I)
    where
        I: ExactSizeIterator<Item = B>,
        B: AsRef<[u8]>,
    {
        self.array(items.len());
        for it in items {
            self.bulk(it.as_ref());
        }
    }
}

/// Formats a double the way Redis's `%.17g` does, with `inf`, `-inf` and `nan`.
pub fn fmt_double(d: f64) -> String {
    if d.is_nan() {
        return "nan".to_string();
    }
    if d.is_infinite() {
        return if d > 0.0 {
            "inf".to_string()
        } else {
            "-inf".to_string()
        };
    }
    fmt_g17(d)
}

/// C's `%.17g`: 17 significant digits, exponent form when exp < -4 or exp >= 17, trailing
/// zeros removed.
pub fn fmt_g17(d: f64) -> String {
    if d == 0.0 {
        return if d.is_sign_negative() {
            "-0".to_string()
        } else {
            "0".to_string()
        };
    }
    // Integral values below 1e17 print every digit and no exponent: the integer's own
    // decimal form, without the slow exact-digits float formatting (scripts pass loop
    // counters as arguments all the time).
    if d.fract() == 0.0 && d.abs() < 1e17 {
        return (d as i64).to_string();
    }
    let precision = 17usize;
    let sci = format!("{:.*e}", precision - 1, d);
    let (mantissa, exp) = match sci.split_once('e') {
        Some((m, e)) => (m, e.parse::<i32>().unwrap_or(0)),
        None => return sci,
    };
    if exp < -4 || exp >= precision as i32 {
        let m = trim_zeros(mantissa);
        let sign = if exp < 0 { '-' } else { '+' };
        format!("{}e{}{:02}", m, sign, exp.abs())
    } else {
        let decimals = (precision as i32 - 1 - exp).max(0) as usize;
        let fixed = format!("{:.*}", decimals, d);
        trim_zeros(&fixed).to_string()
    }
}

fn trim_zeros(s: &str) -> &str {
    if s.contains('.') {
        let t = s.trim_end_matches('0');
        t.trim_end_matches('.')
    } else {
        s
    }
}

/// A small stack buffer holding the decimal form of an i64.
pub struct ItoaBuf {
    bytes: [u8; 20],
    start: usize,
}

impl ItoaBuf {
    pub fn as_bytes_mut(&mut self) -> &[u8] {
        &self.bytes[self.start..]
    }
}

pub fn itoa_buf(n: i64) -> ItoaBuf {
    let mut bytes = [0u8; 20];
    let mut pos = bytes.len();
    let neg = n < 0;
    let mut v = n.unsigned_abs();
    loop {
        pos -= 1;
        bytes[pos] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    if neg {
        pos -= 1;
        bytes[pos] = b'-';
    }
    ItoaBuf { bytes, start: pos }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_format_like_printf_g17() {
        assert_eq!(fmt_double(1.5), "1.5");
        assert_eq!(fmt_double(10.0), "10");
        assert_eq!(fmt_double(0.1), "0.10000000000000001");
        assert_eq!(fmt_double(1e20), "1e+20");
        assert_eq!(fmt_double(1.0e-5), "1.0000000000000001e-05");
        assert_eq!(fmt_double(f64::INFINITY), "inf");
        assert_eq!(fmt_double(f64::NEG_INFINITY), "-inf");
        assert_eq!(fmt_double(-3.0), "-3");
        // Around the integral fast path's bound.
        assert_eq!(fmt_g17(1e16), "10000000000000000");
        assert_eq!(fmt_g17(99999999999999984.0), "99999999999999984");
        assert_eq!(fmt_g17(1e17), "1e+17");
        assert_eq!(fmt_g17(-123456.0), "-123456");
        assert_eq!(fmt_g17(f64::NAN), format!("{:.16e}", f64::NAN));
    }

    #[test]
    fn ints_and_nulls_by_protocol() {
        let mut buf = Vec::new();
        let mut out = Out::new(&mut buf, 2);
        out.int(-42);
        out.null();
        out.map(1);
        assert_eq!(buf, b":-42\r\n$-1\r\n*2\r\n");
        let mut buf = Vec::new();
        let mut out = Out::new(&mut buf, 3);
        out.null();
        out.map(1);
        out.double(2.5);
        assert_eq!(buf, b"_\r\n%1\r\n,2.5\r\n");
        assert_eq!(itoa_buf(i64::MIN).as_bytes_mut(), b"-9223372036854775808");
    }
}
