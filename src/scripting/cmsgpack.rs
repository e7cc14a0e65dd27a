//! The `cmsgpack` library as Redis ships it (lua-cmsgpack's API): `pack(...)`, `unpack(s)`,
//! `unpack_one(s [, offset])`, `unpack_limit(s, limit [, offset])`.
//!
//! Encoding rules follow lua-cmsgpack: integral numbers as the smallest MessagePack integer,
//! other numbers as float32 when exact, else float64; strings as str8/16/32 (fixstr under
//! 32 bytes); a table whose keys are exactly 1..n is an array, anything else a map; tables
//! nested deeper than 16 levels become nil; other types nil.

use mlua::{Lua, MultiValue, Table, Value};

/// Table nesting encoded before tables turn into nil (LUACMSGPACK_MAX_NESTING).
const NESTING_MAX: usize = 16;
/// Decoding nesting bound (a guard against hostile input blowing the stack).
const DECODE_DEPTH_MAX: usize = 1000;

fn rt(msg: &str) -> mlua::Error {
    mlua::Error::RuntimeError(msg.to_string())
}

pub fn open(lua: &Lua) -> mlua::Result<Table> {
    let t = lua.create_table()?;
    t.raw_set(
        "pack",
        lua.create_function(|_, args: MultiValue| {
            if args.is_empty() {
                return Err(rt(
                    "bad argument #0 to 'pack' (MessagePack pack needs input.)",
                ));
            }
            let mut out = Vec::new();
            for a in args.iter() {
                encode(a, &mut out, 0)?;
            }
            Ok(mlua::BString::from(out))
        })?,
    )?;
    t.raw_set(
        "unpack",
        lua.create_function(|lua, s: mlua::String| unpack_full(lua, &s.as_bytes(), 0, 0))?,
    )?;
    t.raw_set(
        "unpack_one",
        lua.create_function(|lua, (s, off): (mlua::String, Option<i64>)| {
            unpack_full(lua, &s.as_bytes(), 1, off.unwrap_or(0))
        })?,
    )?;
    t.raw_set(
        "unpack_limit",
        lua.create_function(|lua, (s, lim, off): (mlua::String, i64, Option<i64>)| {
            unpack_full(lua, &s.as_bytes(), lim, off.unwrap_or(0))
        })?,
    )?;
    t.raw_set("_NAME", "cmsgpack")?;
    t.raw_set("_VERSION", "lua-cmsgpack 0.4.0")?;
    Ok(t)
}

fn encode_int(n: i64, out: &mut Vec<u8>) {
    if n >= 0 {
        if n <= 127 {
            out.push(n as u8);
        } else if n <= 0xff {
            out.extend_from_slice(&[0xcc, n as u8]);
        } else if n <= 0xffff {
            out.push(0xcd);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        } else if n <= 0xffff_ffff {
            out.push(0xce);
            out.extend_from_slice(&(n as u32).to_be_bytes());
        } else {
            out.push(0xcf);
            out.extend_from_slice(&(n as u64).to_be_bytes());
        }
    } else if n >= -32 {
        out.push(n as i8 as u8);
    } else if n >= -128 {
        out.extend_from_slice(&[0xd0, n as i8 as u8]);
    } else if n >= -32768 {
        out.push(0xd1);
        out.extend_from_slice(&(n as i16).to_be_bytes());
    } else if n >= -2_147_483_648 {
        out.push(0xd2);
        out.extend_from_slice(&(n as i32).to_be_bytes());
    } else {
        out.push(0xd3);
        out.extend_from_slice(&n.to_be_bytes());
    }
}

fn encode_number(d: f64, out: &mut Vec<u8>) {
    // IS_INT64_EQUIVALENT: the value survives a round trip through int64.
    if d.is_finite()
        && d == d.trunc()
        && (-9.223_372_036_854_776e18..9.223_372_036_854_776e18).contains(&d)
    {
        encode_int(d as i64, out);
    } else if (d as f32) as f64 == d {
        out.push(0xca);
        out.extend_from_slice(&(d as f32).to_be_bytes());
    } else {
        out.push(0xcb);
        out.extend_from_slice(&d.to_be_bytes());
    }
}

fn encode_len(out: &mut Vec<u8>, n: usize, fix: u8, fix_max: usize, c16: u8, c32: u8) {
    if n <= fix_max {
        out.push(fix | n as u8);
    } else if n <= 0xffff {
        out.push(c16);
        out.extend_from_slice(&(n as u16).to_be_bytes());
    } else {
        out.push(c32);
        out.extend_from_slice(&(n as u32).to_be_bytes());
    }
}

fn encode_bytes(s: &[u8], out: &mut Vec<u8>) {
    let n = s.len();
    if n < 32 {
        out.push(0xa0 | n as u8);
    } else if n <= 0xff {
        out.extend_from_slice(&[0xd9, n as u8]);
    } else if n <= 0xffff {
        out.push(0xda);
        out.extend_from_slice(&(n as u16).to_be_bytes());
    } else {
        out.push(0xdb);
        out.extend_from_slice(&(n as u32).to_be_bytes());
    }
    out.extend_from_slice(s);
}

/// Whether the table's keys are exactly the integers 1..n.
fn is_array(t: &Table) -> mlua::Result<bool> {
    let (mut count, mut max) = (0i64, 0i64);
    for pair in t.pairs::<Value, Value>() {
        let (k, _) = pair?;
        let n = match k {
            Value::Integer(n) if n > 0 && n <= i32::MAX as i64 => n,
            Value::Number(n) if n > 0.0 && n == n.trunc() && n <= i32::MAX as f64 => n as i64,
            _ => return Ok(false),
        };
        max = max.max(n);
        count += 1;
    }
    Ok(max == count)
}

fn encode(v: &Value, out: &mut Vec<u8>, level: usize) -> mlua::Result<()> {
    match v {
        Value::String(s) => encode_bytes(&s.as_bytes(), out),
        Value::Boolean(b) => out.push(if *b { 0xc3 } else { 0xc2 }),
        Value::Integer(n) => encode_int(*n, out),
        Value::Number(n) => encode_number(*n, out),
        Value::Table(t) if level < NESTING_MAX => {
            if is_array(t)? {
                let n = t.raw_len();
                encode_len(out, n, 0x90, 15, 0xdc, 0xdd);
                for i in 1..=n {
                    encode(&t.get::<Value>(i)?, out, level + 1)?;
                }
            } else {
                // Two passes: holding every pair at once would exhaust Lua's C stack.
                encode_len(out, t.pairs::<Value, Value>().count(), 0x80, 15, 0xde, 0xdf);
                for pair in t.pairs::<Value, Value>() {
                    let (k, val) = pair?;
                    encode(&k, out, level + 1)?;
                    encode(&val, out, level + 1)?;
                }
            }
        }
        _ => out.push(0xc0),
    }
    Ok(())
}

enum DecodeError {
    Eof,
    BadFormat,
    Lua(mlua::Error),
}

impl From<mlua::Error> for DecodeError {
    fn from(e: mlua::Error) -> Self {
        DecodeError::Lua(e)
    }
}

struct Cur<'a> {
    b: &'a [u8],
    pos: usize,
}

impl Cur<'_> {
    fn take(&mut self, n: usize) -> Result<&[u8], DecodeError> {
        let end = self.pos.checked_add(n).ok_or(DecodeError::Eof)?;
        let s = self.b.get(self.pos..end).ok_or(DecodeError::Eof)?;
        self.pos = end;
        Ok(s)
    }
    fn be(&mut self, n: usize) -> Result<u64, DecodeError> {
        Ok(self
            .take(n)?
            .iter()
            .fold(0u64, |acc, &b| (acc << 8) | b as u64))
    }
}

fn decode(lua: &Lua, c: &mut Cur, depth: usize) -> Result<Value, DecodeError> {
    if depth > DECODE_DEPTH_MAX {
        return Err(DecodeError::BadFormat);
    }
    let t = c.take(1)?[0];
    let num = |n: f64| Value::Number(n);
    Ok(match t {
        0x00..=0x7f => num(t as f64),
        0xe0..=0xff => num(t as i8 as f64),
        0xa0..=0xbf => {
            let n = (t & 0x1f) as usize;
            Value::String(lua.create_string(c.take(n)?)?)
        }
        0x90..=0x9f => array(lua, c, (t & 0xf) as usize, depth)?,
        0x80..=0x8f => map(lua, c, (t & 0xf) as usize, depth)?,
        0xc0 => Value::Nil,
        0xc2 => Value::Boolean(false),
        0xc3 => Value::Boolean(true),
        0xca => num(f32::from_bits(c.be(4)? as u32) as f64),
        0xcb => num(f64::from_bits(c.be(8)?)),
        0xcc => num(c.be(1)? as f64),
        0xcd => num(c.be(2)? as f64),
        0xce => num(c.be(4)? as f64),
        0xcf => num(c.be(8)? as f64),
        0xd0 => num(c.be(1)? as u8 as i8 as f64),
        0xd1 => num(c.be(2)? as u16 as i16 as f64),
        0xd2 => num(c.be(4)? as u32 as i32 as f64),
        0xd3 => num(c.be(8)? as i64 as f64),
        0xc4 | 0xd9 => {
            let n = c.be(1)? as usize;
            Value::String(lua.create_string(c.take(n)?)?)
        }
        0xc5 | 0xda => {
            let n = c.be(2)? as usize;
            Value::String(lua.create_string(c.take(n)?)?)
        }
        0xc6 | 0xdb => {
            let n = c.be(4)? as usize;
            Value::String(lua.create_string(c.take(n)?)?)
        }
        0xdc => {
            let n = c.be(2)? as usize;
            array(lua, c, n, depth)?
        }
        0xdd => {
            let n = c.be(4)? as usize;
            array(lua, c, n, depth)?
        }
        0xde => {
            let n = c.be(2)? as usize;
            map(lua, c, n, depth)?
        }
        0xdf => {
            let n = c.be(4)? as usize;
            map(lua, c, n, depth)?
        }
        _ => return Err(DecodeError::BadFormat),
    })
}

fn array(lua: &Lua, c: &mut Cur, n: usize, depth: usize) -> Result<Value, DecodeError> {
    // Each element takes at least one byte: a length beyond the input is truncated data.
    if n > c.b.len().saturating_sub(c.pos) {
        return Err(DecodeError::Eof);
    }
    let t = lua.create_table()?;
    for i in 1..=n {
        let v = decode(lua, c, depth + 1)?;
        t.raw_set(i, v)?;
    }
    Ok(Value::Table(t))
}

fn map(lua: &Lua, c: &mut Cur, n: usize, depth: usize) -> Result<Value, DecodeError> {
    if n > c.b.len().saturating_sub(c.pos) {
        return Err(DecodeError::Eof);
    }
    let t = lua.create_table()?;
    for _ in 0..n {
        let k = decode(lua, c, depth + 1)?;
        let v = decode(lua, c, depth + 1)?;
        if !k.is_nil() {
            t.raw_set(k, v)?;
        }
    }
    Ok(Value::Table(t))
}

fn unpack_full(lua: &Lua, s: &[u8], limit: i64, offset: i64) -> mlua::Result<MultiValue> {
    let decode_all = limit == 0 && offset == 0;
    if offset < 0 || limit < 0 {
        return Err(rt(&format!(
            "Invalid request to unpack with offset of {} and limit of {}.",
            offset,
            s.len()
        )));
    }
    if offset as u64 > s.len() as u64 {
        return Err(rt(&format!(
            "Start offset {} greater than input length {}.",
            offset,
            s.len()
        )));
    }
    let limit = if decode_all { i64::MAX } else { limit };
    let mut c = Cur {
        b: s,
        pos: offset as usize,
    };
    let mut vals = Vec::new();
    let mut cnt = 0;
    while c.pos < s.len() && cnt < limit {
        match decode(lua, &mut c, 0) {
            Ok(v) => vals.push(v),
            Err(DecodeError::Eof) => return Err(rt("Missing bytes in input.")),
            Err(DecodeError::BadFormat) => return Err(rt("Bad data format in input.")),
            Err(DecodeError::Lua(e)) => return Err(e),
        }
        cnt += 1;
    }
    if !decode_all {
        let next = if c.pos >= s.len() { -1 } else { c.pos as i64 };
        vals.insert(0, Value::Number(next as f64));
    }
    Ok(MultiValue::from_vec(vals))
}
