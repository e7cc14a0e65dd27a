//! The `struct` library as Redis ships it (Roberto Ierusalimschy's lua-struct API):
//! `pack(fmt, ...)`, `unpack(fmt, s [, pos])` and `size(fmt)`.
//!
//! Format options: `<` `>` `=` endianness, `!n` alignment, `x` a zero byte, `b B h H l L T`
//! integers of 1, 1, 2, 2, 8, 8, 8 bytes, `i In`/`I In` integers of n bytes (default 4, at
//! most 32), `f` `d` floats, `cn` n characters (`c0`: the whole string when packing, a
//! length taken from the previous value when unpacking), `s` a zero-terminated string.
//! Integers travel as 64-bit values as in the C library (`long`).

use mlua::{Lua, MultiValue, Table, Value};

const MAXINTSIZE: usize = 32;
const MAXALIGN: usize = 8;

fn rt(msg: String) -> mlua::Error {
    mlua::Error::RuntimeError(msg)
}

fn argerr(n: usize, fname: &str, msg: &str) -> mlua::Error {
    rt(format!("bad argument #{n} to '{fname}' ({msg})"))
}

struct Header {
    little: bool,
    align: usize,
}

struct Fmt<'a> {
    b: &'a [u8],
    pos: usize,
}

impl Fmt<'_> {
    fn next(&mut self) -> Option<u8> {
        let c = *self.b.get(self.pos)?;
        self.pos += 1;
        Some(c)
    }
    fn num(&mut self, default: usize) -> mlua::Result<usize> {
        if !self.b.get(self.pos).is_some_and(|c| c.is_ascii_digit()) {
            return Ok(default);
        }
        let mut a: usize = 0;
        while let Some(&c) = self.b.get(self.pos).filter(|c| c.is_ascii_digit()) {
            a = a
                .checked_mul(10)
                .and_then(|a| a.checked_add((c - b'0') as usize))
                .filter(|&a| a <= i32::MAX as usize)
                .ok_or_else(|| rt("integral size overflow".into()))?;
            self.pos += 1;
        }
        Ok(a)
    }
}

fn optsize(opt: u8, f: &mut Fmt) -> mlua::Result<usize> {
    Ok(match opt {
        b'B' | b'b' | b'x' => 1,
        b'H' | b'h' => 2,
        b'L' | b'l' | b'T' | b'd' => 8,
        b'f' => 4,
        b'c' => f.num(1)?,
        b'i' | b'I' => {
            let sz = f.num(4)?;
            if sz > MAXINTSIZE {
                return Err(rt(format!(
                    "integral size {sz} is larger than limit of {MAXINTSIZE}"
                )));
            }
            sz
        }
        _ => 0,
    })
}

fn toalign(len: usize, h: &Header, opt: u8, size: usize) -> usize {
    if size == 0 || opt == b'c' {
        return 0;
    }
    let size = size.min(h.align);
    (size - (len & (size - 1))) & (size - 1)
}

fn control(opt: u8, f: &mut Fmt, h: &mut Header, fname: &str) -> mlua::Result<()> {
    match opt {
        b' ' => {}
        b'>' => h.little = false,
        b'<' | b'=' => h.little = true,
        b'!' => {
            let a = f.num(MAXALIGN)?;
            if a == 0 || a & (a - 1) != 0 {
                return Err(rt(format!("alignment {a} is not a power of 2")));
            }
            h.align = a;
        }
        _ => {
            return Err(argerr(
                1,
                fname,
                &format!("invalid format option '{}'", opt as char),
            ))
        }
    }
    Ok(())
}

fn number(args: &MultiValue, i: usize, fname: &str) -> mlua::Result<f64> {
    match args.get(i) {
        Some(Value::Number(n)) => Ok(*n),
        Some(Value::Integer(n)) => Ok(*n as f64),
        Some(Value::String(s)) => s
            .to_str()
            .ok()
            .and_then(|s| s.trim().parse::<f64>().ok())
            .ok_or_else(|| argerr(i + 1, fname, "number expected, got string")),
        other => Err(argerr(
            i + 1,
            fname,
            &format!(
                "number expected, got {}",
                other.map_or("no value", |v| v.type_name())
            ),
        )),
    }
}

fn string(args: &MultiValue, i: usize, fname: &str) -> mlua::Result<Vec<u8>> {
    match args.get(i) {
        Some(Value::String(s)) => Ok(s.as_bytes().to_vec()),
        Some(Value::Number(n)) => Ok(crate::scripting::cjson::fmt_g(*n, 14).into_bytes()),
        Some(Value::Integer(n)) => Ok(n.to_string().into_bytes()),
        other => Err(argerr(
            i + 1,
            fname,
            &format!(
                "string expected, got {}",
                other.map_or("no value", |v| v.type_name())
            ),
        )),
    }
}

fn pack(args: MultiValue) -> mlua::Result<mlua::BString> {
    let fmt = string(&args, 0, "pack")?;
    let mut f = Fmt { b: &fmt, pos: 0 };
    let mut h = Header {
        little: true,
        align: 1,
    };
    let mut out = Vec::new();
    let mut arg = 1;
    while let Some(opt) = f.next() {
        let mut size = optsize(opt, &mut f)?;
        let pad = toalign(out.len(), &h, opt, size);
        out.resize(out.len() + pad, 0);
        match opt {
            b'b' | b'B' | b'h' | b'H' | b'l' | b'L' | b'T' | b'i' | b'I' => {
                let n = number(&args, arg, "pack")?;
                arg += 1;
                let v: u64 = if n < 0.0 { n as i64 as u64 } else { n as u64 };
                let mut bytes: Vec<u8> = (0..size)
                    .map(|i| if i < 8 { (v >> (8 * i)) as u8 } else { 0 })
                    .collect();
                if !h.little {
                    bytes.reverse();
                }
                out.extend_from_slice(&bytes);
            }
            b'x' => out.push(0),
            b'f' => {
                let v = number(&args, arg, "pack")? as f32;
                arg += 1;
                out.extend_from_slice(&if h.little {
                    v.to_le_bytes()
                } else {
                    v.to_be_bytes()
                });
            }
            b'd' => {
                let v = number(&args, arg, "pack")?;
                arg += 1;
                out.extend_from_slice(&if h.little {
                    v.to_le_bytes()
                } else {
                    v.to_be_bytes()
                });
            }
            b'c' | b's' => {
                let s = string(&args, arg, "pack")?;
                arg += 1;
                if size == 0 {
                    size = s.len();
                }
                if s.len() < size {
                    return Err(argerr(arg, "pack", "string too short"));
                }
                out.extend_from_slice(&s[..size]);
                if opt == b's' {
                    out.push(0);
                }
            }
            _ => control(opt, &mut f, &mut h, "pack")?,
        }
    }
    Ok(mlua::BString::from(out))
}

fn getinteger(b: &[u8], little: bool, signed: bool) -> f64 {
    let mut l: u64 = 0;
    let iter: Box<dyn Iterator<Item = &u8>> = if little {
        Box::new(b.iter().rev())
    } else {
        Box::new(b.iter())
    };
    for &x in iter {
        l = (l << 8) | x as u64;
    }
    if !signed {
        return l as f64;
    }
    let bits = (b.len() * 8).min(64);
    let mask = if bits == 0 { 0 } else { u64::MAX << (bits - 1) };
    if l & mask != 0 {
        l |= mask;
    }
    l as i64 as f64
}

fn unpack(lua: &Lua, args: MultiValue) -> mlua::Result<MultiValue> {
    let fmt = string(&args, 0, "unpack")?;
    let data = string(&args, 1, "unpack")?;
    let pos = match args.get(2) {
        None | Some(Value::Nil) => 1.0,
        _ => number(&args, 2, "unpack")?,
    };
    if pos <= 0.0 {
        return Err(argerr(3, "unpack", "offset must be 1 or greater"));
    }
    let mut pos = pos as usize - 1;
    let ld = data.len();
    let mut f = Fmt { b: &fmt, pos: 0 };
    let mut h = Header {
        little: true,
        align: 1,
    };
    let mut vals: Vec<Value> = Vec::new();
    let short = || argerr(2, "unpack", "data string too short");
    while let Some(opt) = f.next() {
        let mut size = optsize(opt, &mut f)?;
        pos += toalign(pos, &h, opt, size);
        if size > ld || pos > ld - size {
            return Err(short());
        }
        match opt {
            b'b' | b'B' | b'h' | b'H' | b'l' | b'L' | b'T' | b'i' | b'I' => {
                let v = getinteger(&data[pos..pos + size], h.little, opt.is_ascii_lowercase());
                vals.push(Value::Number(v));
            }
            b'x' => {}
            b'f' => {
                let mut a = [0u8; 4];
                a.copy_from_slice(&data[pos..pos + 4]);
                let v = if h.little {
                    f32::from_le_bytes(a)
                } else {
                    f32::from_be_bytes(a)
                };
                vals.push(Value::Number(v as f64));
            }
            b'd' => {
                let mut a = [0u8; 8];
                a.copy_from_slice(&data[pos..pos + 8]);
                let v = if h.little {
                    f64::from_le_bytes(a)
                } else {
                    f64::from_be_bytes(a)
                };
                vals.push(Value::Number(v));
            }
            b'c' => {
                if size == 0 {
                    let n = match vals.pop() {
                        Some(Value::Number(n)) => n,
                        Some(Value::Integer(n)) => n as f64,
                        _ => return Err(rt("format 'c0' needs a previous size".into())),
                    };
                    size = n as usize;
                    if size > ld || pos > ld - size {
                        return Err(short());
                    }
                }
                vals.push(Value::String(lua.create_string(&data[pos..pos + size])?));
            }
            b's' => {
                let Some(e) = memchr::memchr(0, &data[pos..]) else {
                    return Err(rt("unfinished string in data".into()));
                };
                vals.push(Value::String(lua.create_string(&data[pos..pos + e])?));
                size = e + 1;
            }
            _ => control(opt, &mut f, &mut h, "unpack")?,
        }
        pos += size;
    }
    vals.push(Value::Number((pos + 1) as f64));
    Ok(MultiValue::from_vec(vals))
}

fn size(fmt: mlua::String) -> mlua::Result<usize> {
    let fmt = fmt.as_bytes().to_vec();
    let mut f = Fmt { b: &fmt, pos: 0 };
    let mut h = Header {
        little: true,
        align: 1,
    };
    let mut pos = 0;
    while let Some(opt) = f.next() {
        let size = optsize(opt, &mut f)?;
        pos += toalign(pos, &h, opt, size);
        if opt == b's' {
            return Err(argerr(1, "size", "option 's' has no fixed size"));
        } else if opt == b'c' && size == 0 {
            return Err(argerr(1, "size", "option 'c0' has no fixed size"));
        }
        if !opt.is_ascii_alphanumeric() {
            control(opt, &mut f, &mut h, "size")?;
        }
        pos += size;
    }
    Ok(pos)
}

pub fn open(lua: &Lua) -> mlua::Result<Table> {
    let t = lua.create_table()?;
    t.raw_set("pack", lua.create_function(|_, a: MultiValue| pack(a))?)?;
    t.raw_set("unpack", lua.create_function(unpack)?)?;
    t.raw_set("size", lua.create_function(|_, f: mlua::String| size(f))?)?;
    Ok(t)
}
