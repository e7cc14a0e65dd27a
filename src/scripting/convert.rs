//! Redis's conversion rules between RESP replies and Lua values, both ways.
//!
//! RESP → Lua (a `redis.call` reply): integer → number, bulk → string, null bulk/array →
//! false (RESP2) or nil (RESP3 null), array → table, status → `{ok=}`, error → `{err=}`,
//! and in RESP3: double → `{double=}`, boolean → boolean, map → `{map={k=v}}`, set →
//! `{set={m=true}}`, big number → `{big_number=}`, verbatim → `{verbatim_string={format=,
//! string=}}`; attributes are skipped.
//!
//! Lua → RESP (a script's return value): string → bulk, boolean → 1/null (RESP2 script) or
//! boolean (RESP3 script), number → integer (truncated), table → error / status / double /
//! big number / verbatim / map / set / array (up to the first nil), anything else → null.

use crate::protocol::Out;
use mlua::{Lua, Table, Value};

/// Nesting bound for replies (a reply is produced by our own commands, so this is a guard).
const DEPTH_MAX: usize = 1000;

struct Reader<'a> {
    b: &'a [u8],
    pos: usize,
}

impl Reader<'_> {
    fn line(&mut self) -> &[u8] {
        let start = self.pos;
        let end =
            memchr::memmem::find(&self.b[start..], b"\r\n").map_or(self.b.len(), |i| start + i);
        self.pos = (end + 2).min(self.b.len());
        &self.b[start..end]
    }
    fn int_line(&mut self) -> i64 {
        let l = self.line();
        std::str::from_utf8(l)
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(0)
    }
    fn bytes(&mut self, n: usize) -> &[u8] {
        let start = self.pos.min(self.b.len());
        let end = (start + n).min(self.b.len());
        self.pos = (end + 2).min(self.b.len());
        &self.b[start..end]
    }
}

/// Converts one RESP reply (as produced for protocol `resp`) to a Lua value.
pub fn resp_to_lua(lua: &Lua, bytes: &[u8], _resp: u8) -> mlua::Result<Value> {
    let mut r = Reader { b: bytes, pos: 0 };
    read(lua, &mut r, 0)
}

fn read(lua: &Lua, r: &mut Reader, depth: usize) -> mlua::Result<Value> {
    if r.pos >= r.b.len() || depth > DEPTH_MAX {
        return Ok(Value::Nil);
    }
    let t = r.b[r.pos];
    r.pos += 1;
    Ok(match t {
        b':' => Value::Number(r.int_line() as f64),
        b'$' => {
            let n = r.int_line();
            if n < 0 {
                Value::Boolean(false)
            } else {
                Value::String(lua.create_string(r.bytes(n as usize))?)
            }
        }
        b'+' => {
            let t = lua.create_table()?;
            t.raw_set("ok", lua.create_string(r.line())?)?;
            Value::Table(t)
        }
        b'-' => {
            let t = lua.create_table()?;
            t.raw_set("err", lua.create_string(r.line())?)?;
            Value::Table(t)
        }
        b'*' | b'>' => {
            let n = r.int_line();
            if n < 0 {
                return Ok(Value::Boolean(false));
            }
            let t = lua.create_table()?;
            for i in 0..n as usize {
                let v = read(lua, r, depth + 1)?;
                t.raw_set(i + 1, v)?;
            }
            Value::Table(t)
        }
        b'_' => {
            r.line();
            Value::Nil
        }
        b'#' => Value::Boolean(r.line() == b"t"),
        b',' => {
            let l = r.line();
            let d = std::str::from_utf8(l)
                .ok()
                .and_then(|s| match s {
                    "inf" => Some(f64::INFINITY),
                    "-inf" => Some(f64::NEG_INFINITY),
                    _ => s.parse().ok(),
                })
                .unwrap_or(0.0);
            let t = lua.create_table()?;
            t.raw_set("double", d)?;
            Value::Table(t)
        }
        b'(' => {
            let t = lua.create_table()?;
            t.raw_set("big_number", lua.create_string(r.line())?)?;
            Value::Table(t)
        }
        b'=' => {
            let n = r.int_line().max(0) as usize;
            let body = r.bytes(n);
            let (fmt, text) = if body.len() >= 4 {
                (&body[..3], &body[4..])
            } else {
                (&b"txt"[..], body)
            };
            let inner = lua.create_table()?;
            inner.raw_set("format", lua.create_string(fmt)?)?;
            inner.raw_set("string", lua.create_string(text)?)?;
            let t = lua.create_table()?;
            t.raw_set("verbatim_string", inner)?;
            Value::Table(t)
        }
        b'%' => {
            let n = r.int_line().max(0) as usize;
            let m = lua.create_table()?;
            for _ in 0..n {
                let k = read(lua, r, depth + 1)?;
                let v = read(lua, r, depth + 1)?;
                if !k.is_nil() {
                    m.raw_set(k, v)?;
                }
            }
            let t = lua.create_table()?;
            t.raw_set("map", m)?;
            Value::Table(t)
        }
        b'~' => {
            let n = r.int_line().max(0) as usize;
            let s = lua.create_table()?;
            for _ in 0..n {
                let k = read(lua, r, depth + 1)?;
                if !k.is_nil() {
                    s.raw_set(k, true)?;
                }
            }
            let t = lua.create_table()?;
            t.raw_set("set", s)?;
            Value::Table(t)
        }
        b'|' => {
            // Attributes are skipped: read and drop the map, then the real reply.
            let n = r.int_line().max(0) as usize;
            for _ in 0..2 * n {
                read(lua, r, depth + 1)?;
            }
            return read(lua, r, depth);
        }
        _ => Value::Nil,
    })
}

/// The parts of an error table: message, source, line.
pub struct ErrInfo {
    pub msg: String,
    pub source: Option<String>,
    pub line: Option<String>,
    pub ignore_stats: bool,
}

fn field_str(t: &Table, k: &str) -> Option<String> {
    match t.get::<Value>(k).ok()? {
        Value::String(s) => Some(s.to_string_lossy()),
        Value::Number(n) => Some(crate::protocol::write::fmt_g17(n)),
        Value::Integer(n) => Some(n.to_string()),
        _ => None,
    }
}

pub fn err_info(v: &Value) -> ErrInfo {
    match v {
        Value::Table(t) => ErrInfo {
            msg: field_str(t, "err").unwrap_or_default(),
            source: field_str(t, "source"),
            line: field_str(t, "line"),
            ignore_stats: matches!(
                t.get::<Value>("ignore_error_stats_update"),
                Ok(Value::Boolean(true))
            ),
        },
        Value::String(s) => ErrInfo {
            msg: format!("ERR {}", s.to_string_lossy()),
            source: None,
            line: None,
            ignore_stats: false,
        },
        _ => ErrInfo {
            msg: "ERR execution failure".into(),
            source: None,
            line: None,
            ignore_stats: false,
        },
    }
}

/// Writes a script's return value as a reply. `script_resp` is the RESP version the script
/// selected (it decides how booleans are returned).
pub fn lua_to_resp(v: &Value, script_resp: u8, out: &mut Out, depth: usize) {
    if depth > DEPTH_MAX {
        out.error("ERR reached lua stack limit");
        return;
    }
    match v {
        Value::String(s) => out.bulk(&s.as_bytes()),
        Value::Boolean(b) => {
            if script_resp == 2 {
                if *b {
                    out.int(1)
                } else {
                    out.null()
                }
            } else {
                out.boolean(*b)
            }
        }
        Value::Number(n) => out.int(c_double_to_i64(*n)),
        Value::Integer(n) => out.int(*n),
        Value::Table(t) => table_to_resp(t, script_resp, out, depth),
        _ => out.null(),
    }
}

fn table_to_resp(t: &Table, script_resp: u8, out: &mut Out, depth: usize) {
    if let Ok(Value::String(_)) = t.raw_get::<Value>("err") {
        let e = err_info(&Value::Table(t.clone()));
        let counted = out.last_error_code.take();
        out.error(&e.msg);
        if e.ignore_stats {
            // A call's error the script returned: counted where the call failed.
            out.last_error_code = counted;
        }
        return;
    }
    if let Ok(Value::String(s)) = t.raw_get::<Value>("ok") {
        let text: Vec<u8> = s
            .as_bytes()
            .iter()
            .map(|&b| if b == b'\r' || b == b'\n' { b' ' } else { b })
            .collect();
        out.raw(b"+");
        out.raw(&text);
        out.raw(b"\r\n");
        return;
    }
    if let Ok(Value::Number(d)) = t.raw_get::<Value>("double") {
        out.double(d);
        return;
    }
    if let Ok(Value::Integer(d)) = t.raw_get::<Value>("double") {
        out.double(d as f64);
        return;
    }
    if let Ok(Value::String(s)) = t.raw_get::<Value>("big_number") {
        let text: Vec<u8> = s
            .as_bytes()
            .iter()
            .map(|&b| if b == b'\r' || b == b'\n' { b' ' } else { b })
            .collect();
        if out.resp3() {
            out.raw(b"(");
            out.raw(&text);
            out.raw(b"\r\n");
        } else {
            out.bulk(&text);
        }
        return;
    }
    if let Ok(Value::Table(vt)) = t.raw_get::<Value>("verbatim_string") {
        if let (Ok(Value::String(f)), Ok(Value::String(s))) =
            (vt.raw_get::<Value>("format"), vt.raw_get::<Value>("string"))
        {
            let f = f.to_string_lossy();
            out.verbatim(&s.as_bytes(), &f);
            return;
        }
    }
    // Elements are counted first and converted in a second pass: holding every element as
    // an mlua value at once would exhaust Lua's C stack on large tables.
    if let Ok(Value::Table(m)) = t.raw_get::<Value>("map") {
        out.map(m.pairs::<Value, Value>().count());
        for (k, v) in m.pairs::<Value, Value>().filter_map(Result::ok) {
            lua_to_resp(&k, script_resp, out, depth + 1);
            lua_to_resp(&v, script_resp, out, depth + 1);
        }
        return;
    }
    if let Ok(Value::Table(s)) = t.raw_get::<Value>("set") {
        out.set(s.pairs::<Value, Value>().count());
        for (k, _) in s.pairs::<Value, Value>().filter_map(Result::ok) {
            lua_to_resp(&k, script_resp, out, depth + 1);
        }
        return;
    }
    let mut n = 0;
    while !matches!(t.raw_get::<Value>(n + 1), Ok(Value::Nil) | Err(_)) {
        n += 1;
    }
    out.array(n);
    for i in 1..=n {
        let v = t.raw_get::<Value>(i).unwrap_or(Value::Nil);
        lua_to_resp(&v, script_resp, out, depth + 1);
    }
}

/// C's `(long long)` of a double as Redis's reply conversion does it on x86-64: truncation, and
/// for NaN or a value out of range the "integer indefinite" value, i64::MIN (Rust's `as`
/// saturates instead).
fn c_double_to_i64(n: f64) -> i64 {
    const TWO_POW_63: f64 = 9_223_372_036_854_775_808.0;
    if n.is_nan() || !(-TWO_POW_63..TWO_POW_63).contains(&n) {
        i64::MIN
    } else {
        n as i64
    }
}
