//! The `cjson` library as Redis ships it (lua-cjson 2.1's API and error texts), written
//! against mlua: `encode`, `decode`, `null`, and the configuration functions.
//!
//! Encoding follows lua-cjson: a table whose keys are all positive integers is an array
//! (holes become `null`; an "excessively sparse" one is refused), any other non-empty or
//! empty table an object; numbers use `%.14g`; `/` is escaped. Decoding gives arrays and
//! objects as tables and `null` as the `cjson.null` light userdata.

use mlua::{LightUserData, Lua, MultiValue, Table, Value};
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};

static ENCODE_MAX_DEPTH: AtomicI64 = AtomicI64::new(1000);
static DECODE_MAX_DEPTH: AtomicI64 = AtomicI64::new(1000);
static PRECISION: AtomicI64 = AtomicI64::new(14);
static INVALID_NUMBERS: AtomicBool = AtomicBool::new(false);
static SPARSE_CONVERT: AtomicBool = AtomicBool::new(false);
static SPARSE_RATIO: AtomicI64 = AtomicI64::new(2);
static SPARSE_SAFE: AtomicI64 = AtomicI64::new(10);

fn rt(msg: String) -> mlua::Error {
    mlua::Error::RuntimeError(msg)
}

/// C's `%.<prec>g`.
pub fn fmt_g(d: f64, prec: usize) -> String {
    if d.is_nan() {
        return if d.is_sign_negative() { "-nan" } else { "nan" }.into();
    }
    if d.is_infinite() {
        return if d > 0.0 { "inf" } else { "-inf" }.into();
    }
    if d == 0.0 {
        return if d.is_sign_negative() { "-0" } else { "0" }.into();
    }
    let prec = prec.max(1);
    let sci = format!("{:.*e}", prec - 1, d);
    let (mantissa, exp) = match sci.split_once('e') {
        Some((m, e)) => (m.to_string(), e.parse::<i32>().unwrap_or(0)),
        None => return sci,
    };
    let trim = |s: &str| -> String {
        if s.contains('.') {
            s.trim_end_matches('0').trim_end_matches('.').to_string()
        } else {
            s.to_string()
        }
    };
    if exp < -4 || exp >= prec as i32 {
        let sign = if exp < 0 { '-' } else { '+' };
        format!("{}e{}{:02}", trim(&mantissa), sign, exp.abs())
    } else {
        let decimals = (prec as i32 - 1 - exp).max(0) as usize;
        trim(&format!("{:.*}", decimals, d))
    }
}

pub fn open(lua: &Lua) -> mlua::Result<Table> {
    let t = lua.create_table()?;
    t.raw_set(
        "encode",
        lua.create_function(|_, v: MultiValue| {
            if v.len() != 1 {
                return Err(rt(
                    "bad argument #1 to 'encode' (expected 1 argument)".into()
                ));
            }
            let mut out = Vec::new();
            encode(v.front().unwrap_or(&Value::Nil), &mut out, 0)?;
            Ok(mlua::BString::from(out))
        })?,
    )?;
    t.raw_set(
        "decode",
        lua.create_function(|lua, v: MultiValue| {
            let s = match v.front() {
                Some(Value::String(s)) if v.len() == 1 => s.as_bytes().to_vec(),
                _ => {
                    return Err(rt(
                        "bad argument #1 to 'decode' (expected 1 argument)".into()
                    ))
                }
            };
            decode(lua, &s)
        })?,
    )?;
    t.raw_set(
        "null",
        Value::LightUserData(LightUserData(std::ptr::null_mut())),
    )?;
    t.raw_set("_NAME", "cjson")?;
    t.raw_set("_VERSION", "2.1.0")?;
    let int_cfg = |lua: &Lua, cell: &'static AtomicI64, lo: i64, hi: i64| {
        lua.create_function(move |_, v: Option<f64>| {
            if let Some(n) = v {
                let n = n as i64;
                if n < lo || n > hi {
                    return Err(rt(format!(
                        "bad argument #1 to '?' (expected integer between {lo} and {hi})"
                    )));
                }
                cell.store(n, Ordering::Relaxed);
            }
            Ok(cell.load(Ordering::Relaxed))
        })
    };
    t.raw_set(
        "encode_max_depth",
        int_cfg(lua, &ENCODE_MAX_DEPTH, 1, i32::MAX as i64)?,
    )?;
    t.raw_set(
        "decode_max_depth",
        int_cfg(lua, &DECODE_MAX_DEPTH, 1, i32::MAX as i64)?,
    )?;
    t.raw_set("encode_number_precision", int_cfg(lua, &PRECISION, 1, 14)?)?;
    t.raw_set(
        "encode_invalid_numbers",
        lua.create_function(|_, v: Option<Value>| {
            if let Some(Value::Boolean(b)) = v {
                INVALID_NUMBERS.store(b, Ordering::Relaxed);
            }
            Ok(INVALID_NUMBERS.load(Ordering::Relaxed))
        })?,
    )?;
    t.raw_set(
        "decode_invalid_numbers",
        lua.create_function(|_, _v: Option<Value>| Ok(true))?,
    )?;
    t.raw_set(
        "encode_keep_buffer",
        lua.create_function(|_, _v: Option<Value>| Ok(true))?,
    )?;
    t.raw_set(
        "encode_sparse_array",
        lua.create_function(|_, (c, r, s): (Option<bool>, Option<i64>, Option<i64>)| {
            if let Some(c) = c {
                SPARSE_CONVERT.store(c, Ordering::Relaxed);
            }
            if let Some(r) = r {
                SPARSE_RATIO.store(r, Ordering::Relaxed);
            }
            if let Some(s) = s {
                SPARSE_SAFE.store(s, Ordering::Relaxed);
            }
            Ok((
                SPARSE_CONVERT.load(Ordering::Relaxed),
                SPARSE_RATIO.load(Ordering::Relaxed),
                SPARSE_SAFE.load(Ordering::Relaxed),
            ))
        })?,
    )?;
    Ok(t)
}

fn encode_string(s: &[u8], out: &mut Vec<u8>) {
    out.push(b'"');
    for &c in s {
        match c {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'/' => out.extend_from_slice(b"\\/"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            0x08 => out.extend_from_slice(b"\\b"),
            0x0c => out.extend_from_slice(b"\\f"),
            c if c < 0x20 || c == 0x7f => {
                out.extend_from_slice(format!("\\u{:04x}", c).as_bytes());
            }
            c => out.push(c),
        }
    }
    out.push(b'"');
}

fn encode_number(n: f64, out: &mut Vec<u8>) -> mlua::Result<()> {
    if n.is_nan() || n.is_infinite() {
        if !INVALID_NUMBERS.load(Ordering::Relaxed) {
            return Err(rt(
                "Cannot serialise number: must not be NaN or Inf".to_string()
            ));
        }
        let s = if n.is_nan() {
            "nan"
        } else if n > 0.0 {
            "inf"
        } else {
            "-inf"
        };
        out.extend_from_slice(s.as_bytes());
        return Ok(());
    }
    let p = PRECISION.load(Ordering::Relaxed) as usize;
    out.extend_from_slice(fmt_g(n, p).as_bytes());
    Ok(())
}

/// The array length when every key is a positive integer, -1 otherwise.
fn array_length(t: &Table) -> mlua::Result<i64> {
    let (mut max, mut items) = (0i64, 0i64);
    for pair in t.pairs::<Value, Value>() {
        let (k, _) = pair?;
        let n = match k {
            Value::Number(n) if n >= 1.0 && n.floor() == n => n as i64,
            Value::Integer(n) if n >= 1 => n,
            _ => return Ok(-1),
        };
        max = max.max(n);
        items += 1;
    }
    let ratio = SPARSE_RATIO.load(Ordering::Relaxed);
    let safe = SPARSE_SAFE.load(Ordering::Relaxed);
    if ratio > 0 && max > items * ratio && max > safe {
        if SPARSE_CONVERT.load(Ordering::Relaxed) {
            return Ok(-1);
        }
        return Err(rt("Cannot serialise table: excessively sparse array".into()));
    }
    Ok(max)
}

fn encode(v: &Value, out: &mut Vec<u8>, depth: i64) -> mlua::Result<()> {
    match v {
        Value::Nil => out.extend_from_slice(b"null"),
        Value::Boolean(b) => out.extend_from_slice(if *b { b"true" } else { b"false" }),
        Value::Number(n) => encode_number(*n, out)?,
        Value::Integer(n) => encode_number(*n as f64, out)?,
        Value::String(s) => encode_string(&s.as_bytes(), out),
        Value::LightUserData(p) if p.0.is_null() => out.extend_from_slice(b"null"),
        Value::Table(t) => {
            let depth = depth + 1;
            if depth > ENCODE_MAX_DEPTH.load(Ordering::Relaxed) {
                return Err(rt(format!("Cannot serialise, excessive nesting ({depth})")));
            }
            let len = array_length(t)?;
            if len > 0 {
                out.push(b'[');
                for i in 1..=len {
                    if i > 1 {
                        out.push(b',');
                    }
                    encode(&t.raw_get::<Value>(i)?, out, depth)?;
                }
                out.push(b']');
            } else {
                out.push(b'{');
                let mut first = true;
                for pair in t.pairs::<Value, Value>() {
                    let (k, val) = pair?;
                    if !first {
                        out.push(b',');
                    }
                    first = false;
                    match &k {
                        Value::Number(n) => {
                            out.push(b'"');
                            encode_number(*n, out)?;
                            out.extend_from_slice(b"\":");
                        }
                        Value::Integer(n) => {
                            out.push(b'"');
                            encode_number(*n as f64, out)?;
                            out.extend_from_slice(b"\":");
                        }
                        Value::String(s) => {
                            encode_string(&s.as_bytes(), out);
                            out.push(b':');
                        }
                        _ => {
                            return Err(rt(
                                "Cannot serialise table: table key must be a number or string"
                                    .into(),
                            ))
                        }
                    }
                    encode(&val, out, depth)?;
                }
                out.push(b'}');
            }
        }
        other => {
            return Err(rt(format!(
                "Cannot serialise {}: type not supported",
                other.type_name()
            )))
        }
    }
    Ok(())
}

#[derive(Clone, Copy, PartialEq, Debug)]
enum Tok {
    ObjBegin,
    ObjEnd,
    ArrBegin,
    ArrEnd,
    Str,
    Num,
    Bool,
    Null,
    Colon,
    Comma,
    End,
    Error,
}

fn tok_name(t: Tok) -> &'static str {
    match t {
        Tok::ObjBegin => "T_OBJ_BEGIN",
        Tok::ObjEnd => "T_OBJ_END",
        Tok::ArrBegin => "T_ARR_BEGIN",
        Tok::ArrEnd => "T_ARR_END",
        Tok::Str => "T_STRING",
        Tok::Num => "T_NUMBER",
        Tok::Bool => "T_BOOLEAN",
        Tok::Null => "T_NULL",
        Tok::Colon => "T_COLON",
        Tok::Comma => "T_COMMA",
        Tok::End => "T_END",
        Tok::Error => "T_ERROR",
    }
}

struct Token {
    t: Tok,
    index: usize,
    s: Vec<u8>,
    n: f64,
    b: bool,
    err: &'static str,
}

struct Parser<'a> {
    b: &'a [u8],
    pos: usize,
    depth: i64,
}

impl Parser<'_> {
    fn next(&mut self) -> Token {
        while self.pos < self.b.len() && matches!(self.b[self.pos], b' ' | b'\t' | b'\n' | b'\r') {
            self.pos += 1;
        }
        let index = self.pos;
        let mut tk = Token {
            t: Tok::Error,
            index,
            s: Vec::new(),
            n: 0.0,
            b: false,
            err: "invalid token",
        };
        let Some(&c) = self.b.get(self.pos) else {
            tk.t = Tok::End;
            return tk;
        };
        let single = match c {
            b'{' => Some(Tok::ObjBegin),
            b'}' => Some(Tok::ObjEnd),
            b'[' => Some(Tok::ArrBegin),
            b']' => Some(Tok::ArrEnd),
            b':' => Some(Tok::Colon),
            b',' => Some(Tok::Comma),
            _ => None,
        };
        if let Some(t) = single {
            self.pos += 1;
            tk.t = t;
            return tk;
        }
        if c == b'"' {
            return self.string(tk);
        }
        if c == b'-' || c.is_ascii_digit() {
            return self.number(tk);
        }
        let rest = &self.b[self.pos..];
        for (lit, t, b) in [
            (&b"true"[..], Tok::Bool, true),
            (b"false", Tok::Bool, false),
            (b"null", Tok::Null, false),
        ] {
            if rest.starts_with(lit) {
                self.pos += lit.len();
                tk.t = t;
                tk.b = b;
                return tk;
            }
        }
        for (lit, v) in [(&b"nan"[..], f64::NAN), (b"inf", f64::INFINITY)] {
            if rest.len() >= 3 && rest[..3].eq_ignore_ascii_case(lit) {
                self.pos += 3;
                tk.t = Tok::Num;
                tk.n = v;
                return tk;
            }
        }
        tk
    }

    fn number(&mut self, mut tk: Token) -> Token {
        let start = self.pos;
        let mut end = start;
        let b = self.b;
        let hex = b
            .get(start..start + 2)
            .is_some_and(|p| p.eq_ignore_ascii_case(b"0x"))
            || b.get(start..start + 3)
                .is_some_and(|p| p.eq_ignore_ascii_case(b"-0x"));
        while end < b.len()
            && (b[end].is_ascii_digit()
                || matches!(b[end], b'-' | b'+' | b'.' | b'e' | b'E')
                || (hex && (b[end].is_ascii_hexdigit() || b[end] == b'x' || b[end] == b'X')))
        {
            end += 1;
        }
        let text = std::str::from_utf8(&b[start..end]).unwrap_or("");
        let parsed = if hex {
            let (neg, digits) = match text.strip_prefix('-') {
                Some(r) => (true, r),
                None => (false, text),
            };
            i64::from_str_radix(&digits[2..], 16)
                .ok()
                .map(|v| if neg { -(v as f64) } else { v as f64 })
        } else {
            text.parse::<f64>().ok()
        };
        match parsed {
            Some(n) => {
                self.pos = end;
                tk.t = Tok::Num;
                tk.n = n;
            }
            None => {
                tk.t = Tok::Error;
                tk.err = "invalid number";
            }
        }
        tk
    }

    fn string(&mut self, mut tk: Token) -> Token {
        self.pos += 1;
        let mut s = Vec::new();
        loop {
            let Some(&c) = self.b.get(self.pos) else {
                tk.err = "unexpected end of string";
                return tk;
            };
            self.pos += 1;
            match c {
                b'"' => break,
                b'\\' => {
                    let Some(&e) = self.b.get(self.pos) else {
                        tk.err = "unexpected end of string";
                        return tk;
                    };
                    self.pos += 1;
                    match e {
                        b'"' | b'\\' | b'/' => s.push(e),
                        b'b' => s.push(8),
                        b'f' => s.push(12),
                        b'n' => s.push(b'\n'),
                        b'r' => s.push(b'\r'),
                        b't' => s.push(b'\t'),
                        b'u' => match self.unicode() {
                            Some(cp) => {
                                let mut buf = [0u8; 4];
                                s.extend_from_slice(cp.encode_utf8(&mut buf).as_bytes());
                            }
                            None => {
                                tk.err = "invalid unicode escape code";
                                return tk;
                            }
                        },
                        _ => {
                            tk.err = "invalid escape code";
                            return tk;
                        }
                    }
                }
                c => s.push(c),
            }
        }
        tk.t = Tok::Str;
        tk.s = s;
        tk
    }

    fn hex4(&mut self) -> Option<u32> {
        let h = self.b.get(self.pos..self.pos + 4)?;
        let v = u32::from_str_radix(std::str::from_utf8(h).ok()?, 16).ok()?;
        self.pos += 4;
        Some(v)
    }

    fn unicode(&mut self) -> Option<char> {
        let hi = self.hex4()?;
        if (0xD800..0xDC00).contains(&hi) {
            if self.b.get(self.pos..self.pos + 2)? != b"\\u" {
                return None;
            }
            self.pos += 2;
            let lo = self.hex4()?;
            if !(0xDC00..0xE000).contains(&lo) {
                return None;
            }
            return char::from_u32(0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00));
        }
        if (0xDC00..0xE000).contains(&hi) {
            return None;
        }
        char::from_u32(hi)
    }
}

fn parse_error(expected: &str, tk: &Token) -> mlua::Error {
    let found = if tk.t == Tok::Error {
        tk.err
    } else {
        tok_name(tk.t)
    };
    rt(format!(
        "Expected {} but found {} at character {}",
        expected,
        found,
        tk.index + 1
    ))
}

fn decode(lua: &Lua, s: &[u8]) -> mlua::Result<Value> {
    let mut p = Parser {
        b: s,
        pos: 0,
        depth: 0,
    };
    let tk = p.next();
    let v = value(lua, &mut p, tk)?;
    let end = p.next();
    if end.t != Tok::End {
        return Err(parse_error("the end", &end));
    }
    Ok(v)
}

fn descend(p: &mut Parser, tk: &Token) -> mlua::Result<()> {
    p.depth += 1;
    if p.depth > DECODE_MAX_DEPTH.load(Ordering::Relaxed) {
        return Err(rt(format!(
            "Found too many nested data structures ({}) at character {}",
            p.depth,
            tk.index + 1
        )));
    }
    Ok(())
}

fn value(lua: &Lua, p: &mut Parser, tk: Token) -> mlua::Result<Value> {
    Ok(match tk.t {
        Tok::Str => Value::String(lua.create_string(&tk.s)?),
        Tok::Num => Value::Number(tk.n),
        Tok::Bool => Value::Boolean(tk.b),
        Tok::Null => Value::LightUserData(LightUserData(std::ptr::null_mut())),
        Tok::ObjBegin => {
            descend(p, &tk)?;
            let t = lua.create_table()?;
            let mut k = p.next();
            if k.t != Tok::ObjEnd {
                loop {
                    if k.t != Tok::Str {
                        return Err(parse_error("object key string", &k));
                    }
                    let colon = p.next();
                    if colon.t != Tok::Colon {
                        return Err(parse_error("colon", &colon));
                    }
                    let vt = p.next();
                    let v = value(lua, p, vt)?;
                    t.raw_set(lua.create_string(&k.s)?, v)?;
                    let sep = p.next();
                    match sep.t {
                        Tok::ObjEnd => break,
                        Tok::Comma => k = p.next(),
                        _ => return Err(parse_error("comma or object end", &sep)),
                    }
                }
            }
            p.depth -= 1;
            Value::Table(t)
        }
        Tok::ArrBegin => {
            descend(p, &tk)?;
            let t = lua.create_table()?;
            let mut vt = p.next();
            if vt.t != Tok::ArrEnd {
                let mut i = 1;
                loop {
                    let v = value(lua, p, vt)?;
                    t.raw_set(i, v)?;
                    i += 1;
                    let sep = p.next();
                    match sep.t {
                        Tok::ArrEnd => break,
                        Tok::Comma => vt = p.next(),
                        _ => return Err(parse_error("comma or array end", &sep)),
                    }
                }
            }
            p.depth -= 1;
            Value::Table(t)
        }
        _ => return Err(parse_error("value", &tk)),
    })
}

#[cfg(test)]
mod tests {
    use super::fmt_g;

    #[test]
    fn formats_like_printf_g14() {
        assert_eq!(fmt_g(0.1, 14), "0.1");
        assert_eq!(fmt_g(100.0, 14), "100");
        assert_eq!(fmt_g(1e20, 14), "1e+20");
        assert_eq!(fmt_g(0.0003, 14), "0.0003");
        assert_eq!(fmt_g(1.0 / 3.0, 14), "0.33333333333333");
    }
}
