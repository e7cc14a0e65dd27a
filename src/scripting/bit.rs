//! The `bit` library (LuaBitOp's API): 32-bit operations on Lua numbers.
//!
//! Numbers are normalized to signed 32-bit integers the way LuaBitOp does, by adding 2^52 +
//! 2^51 and keeping the low 32 bits of the double's representation (round to nearest, then
//! wrap modulo 2^32); results are returned as numbers in the signed range.

use mlua::{Lua, MultiValue, Table, Value};

fn tobit(x: f64) -> i32 {
    let t = x + 6_755_399_441_055_744.0;
    t.to_bits() as u32 as i32
}

fn arg(args: &MultiValue, i: usize, fname: &str) -> mlua::Result<i32> {
    match args.get(i) {
        Some(Value::Number(n)) => Ok(tobit(*n)),
        Some(Value::Integer(n)) => Ok(tobit(*n as f64)),
        Some(Value::String(s)) => {
            match s.to_str().ok().and_then(|s| s.trim().parse::<f64>().ok()) {
                Some(n) => Ok(tobit(n)),
                None => Err(bad(i, fname, "string")),
            }
        }
        other => Err(bad(i, fname, other.map_or("no value", |v| v.type_name()))),
    }
}

fn bad(i: usize, fname: &str, got: &str) -> mlua::Error {
    mlua::Error::RuntimeError(format!(
        "bad argument #{} to '{}' (number expected, got {})",
        i + 1,
        fname,
        got
    ))
}

type BitFn = fn(&MultiValue) -> mlua::Result<f64>;

fn fold(args: &MultiValue, name: &str, f: fn(i32, i32) -> i32) -> mlua::Result<f64> {
    let mut acc = arg(args, 0, name)?;
    for i in 1..args.len() {
        acc = f(acc, arg(args, i, name)?);
    }
    Ok(acc as f64)
}

fn shift(args: &MultiValue, name: &str, f: fn(i32, u32) -> i32) -> mlua::Result<f64> {
    let x = arg(args, 0, name)?;
    let n = arg(args, 1, name)? as u32 & 31;
    Ok(f(x, n) as f64)
}

fn tohex(args: &MultiValue) -> mlua::Result<String> {
    let x = arg(args, 0, "tohex")? as u32;
    let mut n = if args.len() > 1 && !matches!(args.get(1), Some(Value::Nil)) {
        arg(args, 1, "tohex")?
    } else {
        8
    };
    let upper = n < 0;
    if upper {
        n = n.wrapping_neg();
    }
    let n = (n as u32).min(8) as usize;
    let s = if upper {
        format!("{:08X}", x)
    } else {
        format!("{:08x}", x)
    };
    Ok(s[8 - n..].to_string())
}

pub fn open(lua: &Lua) -> mlua::Result<Table> {
    let t = lua.create_table()?;
    let fns: [(&str, BitFn); 11] = [
        ("tobit", |a| Ok(arg(a, 0, "tobit")? as f64)),
        ("bnot", |a| Ok(!arg(a, 0, "bnot")? as f64)),
        ("band", |a| fold(a, "band", |x, y| x & y)),
        ("bor", |a| fold(a, "bor", |x, y| x | y)),
        ("bxor", |a| fold(a, "bxor", |x, y| x ^ y)),
        ("lshift", |a| {
            shift(a, "lshift", |x, n| ((x as u32) << n) as i32)
        }),
        ("rshift", |a| {
            shift(a, "rshift", |x, n| ((x as u32) >> n) as i32)
        }),
        ("arshift", |a| shift(a, "arshift", |x, n| x >> n)),
        ("rol", |a| {
            shift(a, "rol", |x, n| (x as u32).rotate_left(n) as i32)
        }),
        ("ror", |a| {
            shift(a, "ror", |x, n| (x as u32).rotate_right(n) as i32)
        }),
        ("bswap", |a| {
            Ok((arg(a, 0, "bswap")? as u32).swap_bytes() as i32 as f64)
        }),
    ];
    for (name, f) in fns {
        t.raw_set(name, lua.create_function(move |_, a: MultiValue| f(&a))?)?;
    }
    t.raw_set("tohex", lua.create_function(|_, a: MultiValue| tohex(&a))?)?;
    Ok(t)
}

#[cfg(test)]
mod tests {
    use super::tobit;

    #[test]
    fn normalizes_like_luabitop() {
        assert_eq!(tobit(0xffffffffu32 as f64), -1);
        assert_eq!(tobit(4294967296.0 + 5.0), 5);
        assert_eq!(tobit(-1.0), -1);
        assert_eq!(tobit(2147483648.0), i32::MIN);
    }
}
