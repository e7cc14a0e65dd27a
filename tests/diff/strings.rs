//! String commands (`t_string.c` and `bitops.c` in Redis), valid and invalid.
//!
//! Offsets that make a server allocate are bounded (a few KiB at most) so that a run stays
//! cheap; offsets past the limits appear only where Redis rejects them before allocating.

use super::{Args, Cmd, Gen, GenFn, FLOATS};

/// One weighted generator per command.
const COMMANDS: &[(u32, GenFn)] = &[
    (8, get),
    (12, set),
    (4, getex),
    (2, getdel),
    (2, getset),
    (2, setnx),
    (2, setex),
    (2, psetex),
    (3, mget),
    (3, mset),
    (2, msetnx),
    (3, incr_decr),
    (3, incrby_decrby),
    (3, incrbyfloat),
    (2, append),
    (2, strlen),
    (3, getrange),
    (2, setrange),
    (1, lcs),
    (3, setbit),
    (2, getbit),
    (2, bitcount),
    (2, bitpos),
    (2, bitop),
    (3, bitfield),
    (1, bitfield_ro),
];

pub fn generate(g: &mut Gen) -> Cmd {
    let command = *g.rng.weighted(COMMANDS);
    command(g)
}

fn get(g: &mut Gen) -> Cmd {
    let key = g.key();
    g.c("GET").arg(key).exact()
}

/// One expiry option of SET (with its argument), valid or not.
fn set_expiry(g: &mut Gen) -> Vec<Vec<u8>> {
    match g.rng.below(6) {
        0 => vec![b"EX".to_vec(), g.secs_arg()],
        1 => vec![b"PX".to_vec(), g.ms_arg()],
        2 => vec![b"EXAT".to_vec(), g.future_arg(false)],
        3 => vec![b"PXAT".to_vec(), g.future_arg(true)],
        4 => vec![b"KEEPTTL".to_vec()],
        // The option without its argument.
        _ => vec![g.rng.pick(&[&b"EX"[..], b"PX", b"EXAT", b"PXAT"]).to_vec()],
    }
}

/// SET key value [NX|XX] [GET] [EX|PX|EXAT|PXAT|KEEPTTL]: usually a valid combination in a
/// random order, sometimes a random soup of options (conflicts, repeats, unknown words).
fn set(g: &mut Gen) -> Cmd {
    let key = g.key();
    let value = g.value_for(&key);
    let mut options: Vec<Vec<Vec<u8>>> = Vec::new();
    if g.rng.chance(3, 4) {
        if g.rng.chance(1, 3) {
            options.push(vec![g.rng.pick(&[&b"NX"[..], b"XX"]).to_vec()]);
        }
        if g.rng.chance(1, 4) {
            options.push(vec![b"GET".to_vec()]);
        }
        if g.rng.chance(1, 2) {
            options.push(set_expiry(g));
        }
        // Redis accepts the options in any order.
        for i in (1..options.len()).rev() {
            let j = g.rng.index(i + 1);
            options.swap(i, j);
        }
    } else {
        for _ in 0..g.count(3) {
            let option = match g.rng.below(5) {
                0 => vec![g.rng.pick(&[&b"NX"[..], b"XX", b"nx", b"xx"]).to_vec()],
                1 => vec![b"GET".to_vec()],
                2 => vec![g.rng.pick(&[&b"FOO"[..], b"", b"EXX", b"KEEP"]).to_vec()],
                _ => set_expiry(g),
            };
            options.push(option);
        }
    }
    g.c("SET")
        .arg(key)
        .arg(value)
        .args(options.into_iter().flatten())
        .exact()
}

/// GETEX key [EX|PX|EXAT|PXAT seconds|PERSIST], sometimes with conflicting options.
fn getex(g: &mut Gen) -> Cmd {
    let key = g.key();
    let mut args = g.c("GETEX").arg(key);
    let n = if g.rng.chance(3, 4) {
        g.rng.below(2)
    } else {
        2 + g.rng.below(2)
    };
    for _ in 0..n {
        args = match g.rng.below(7) {
            0 => args.arg("EX").arg(g.secs_arg()),
            1 => args.arg("PX").arg(g.ms_arg()),
            2 => args.arg("EXAT").arg(g.abs_secs_arg()),
            3 => args.arg("PXAT").arg(g.abs_ms_arg()),
            4 => args.arg("PERSIST"),
            // KEEPTTL is SET's, not GETEX's; EX without its argument.
            5 => args.arg(*g.rng.pick(&["KEEPTTL", "EX"])),
            _ => args.arg("PERSIST"),
        };
    }
    args.exact()
}

fn getdel(g: &mut Gen) -> Cmd {
    let key = g.key();
    g.c("GETDEL").arg(key).exact()
}

fn getset(g: &mut Gen) -> Cmd {
    let key = g.key();
    let value = g.value_for(&key);
    g.c("GETSET").arg(key).arg(value).exact()
}

fn setnx(g: &mut Gen) -> Cmd {
    let key = g.key();
    let value = g.value_for(&key);
    g.c("SETNX").arg(key).arg(value).exact()
}

fn setex(g: &mut Gen) -> Cmd {
    let (key, secs) = (g.key(), g.secs_arg());
    let value = g.value_for(&key);
    g.c("SETEX").arg(key).arg(secs).arg(value).exact()
}

fn psetex(g: &mut Gen) -> Cmd {
    let (key, ms) = (g.key(), g.ms_arg());
    let value = g.value_for(&key);
    g.c("PSETEX").arg(key).arg(ms).arg(value).exact()
}

fn mget(g: &mut Gen) -> Cmd {
    let n = g.count(5);
    let keys = g.keys(n);
    g.c("MGET").args(keys).exact()
}

/// Key/value pairs for MSET and MSETNX; sometimes one argument short.
fn pairs(g: &mut Gen) -> Vec<Vec<u8>> {
    let n = g.count(4);
    let keys = g.keys(n);
    let mut args: Vec<Vec<u8>> = Vec::with_capacity(n * 2);
    for key in keys {
        let value = g.value_for(&key);
        args.extend([key, value]);
    }
    if g.rng.chance(1, 15) {
        args.pop();
    }
    args
}

fn mset(g: &mut Gen) -> Cmd {
    let args = pairs(g);
    g.c("MSET").args(args).exact()
}

fn msetnx(g: &mut Gen) -> Cmd {
    let args = pairs(g);
    g.c("MSETNX").args(args).exact()
}

fn incr_decr(g: &mut Gen) -> Cmd {
    let name = if g.rng.chance(1, 2) { "INCR" } else { "DECR" };
    let key = g.counter_key();
    g.c(name).arg(key).exact()
}

fn incrby_decrby(g: &mut Gen) -> Cmd {
    let name = if g.rng.chance(1, 2) {
        "INCRBY"
    } else {
        "DECRBY"
    };
    let key = g.counter_key();
    let by = g.int_or_junk(-1000, 1000, 8);
    g.c(name).arg(key).arg(by).exact()
}

fn incrbyfloat(g: &mut Gen) -> Cmd {
    let key = g.counter_key();
    let by = if g.rng.chance(1, 3) {
        g.rng.range(-50, 50).to_string().into_bytes()
    } else {
        g.rng.pick(FLOATS).to_vec()
    };
    g.c("INCRBYFLOAT").arg(key).arg(by).exact()
}

fn append(g: &mut Gen) -> Cmd {
    let key = g.key();
    let len = g.rng.below(9) as usize;
    let value = g.rng.bytes_from(len, b"abc\x00\xff");
    g.c("APPEND").arg(key).arg(value).exact()
}

fn strlen(g: &mut Gen) -> Cmd {
    let key = g.key();
    g.c("STRLEN").arg(key).exact()
}

/// A start or end index for ranges: small, negative, or extreme.
fn range_index(g: &mut Gen) -> Vec<u8> {
    match g.rng.below(12) {
        0 => g.junk_int(),
        1 => g
            .rng
            .pick(&[&b"9223372036854775807"[..], b"-9223372036854775808"])
            .to_vec(),
        _ => g.rng.range(-70, 70).to_string().into_bytes(),
    }
}

fn getrange(g: &mut Gen) -> Cmd {
    let name = if g.rng.chance(1, 4) {
        "SUBSTR"
    } else {
        "GETRANGE"
    };
    let (key, start, end) = (g.key(), range_index(g), range_index(g));
    g.c(name).arg(key).arg(start).arg(end).exact()
}

fn setrange(g: &mut Gen) -> Cmd {
    let key = g.key();
    let offset = match g.rng.below(15) {
        0 => g.junk_int(),
        1 => b"-1".to_vec(),
        // Past proto-max-bulk-len: refused before anything is allocated, unless the value is
        // empty, which only reports the length.
        2 => b"536870912".to_vec(),
        _ => g.rng.range(0, 512).to_string().into_bytes(),
    };
    let len = g.rng.below(10) as usize;
    let value = g.rng.bytes_from(len, b"xyz\x00");
    g.c("SETRANGE").arg(key).arg(offset).arg(value).exact()
}

/// LCS key1 key2 [LEN] [IDX] [MINMATCHLEN n] [WITHMATCHLEN].
fn lcs(g: &mut Gen) -> Cmd {
    let keys = g.keys(2);
    let mut args = g.c("LCS").args(keys);
    for _ in 0..g.rng.below(4) {
        args = match g.rng.below(5) {
            0 => args.arg("LEN"),
            1 => args.arg("IDX"),
            2 => args.arg("MINMATCHLEN").arg(g.int_or_junk(-1, 4, 6)),
            3 => args.arg("WITHMATCHLEN"),
            _ => args.arg("BOGUS"),
        };
    }
    args.exact()
}

/// A bit offset: within the first 4 KiB of bits, or invalid.
fn bit_offset(g: &mut Gen) -> Vec<u8> {
    match g.rng.below(15) {
        0 => g.junk_int(),
        1 => g
            .rng
            .pick(&[&b"-1"[..], b"4294967296", b"99999999999"])
            .to_vec(),
        _ => g.rng.range(0, 4095).to_string().into_bytes(),
    }
}

fn setbit(g: &mut Gen) -> Cmd {
    let (key, offset) = (g.key(), bit_offset(g));
    let bit = if g.rng.chance(1, 12) {
        g.rng.pick(&[&b"2"[..], b"-1", b"abc", b""]).to_vec()
    } else {
        g.rng.below(2).to_string().into_bytes()
    };
    g.c("SETBIT").arg(key).arg(offset).arg(bit).exact()
}

fn getbit(g: &mut Gen) -> Cmd {
    let (key, offset) = (g.key(), bit_offset(g));
    g.c("GETBIT").arg(key).arg(offset).exact()
}

/// The unit option of BITCOUNT and BITPOS ranges.
fn bit_unit(g: &mut Gen, args: Args) -> Args {
    match g.rng.below(6) {
        0 => args.arg("BYTE"),
        1 => args.arg("BIT"),
        2 => args.arg(*g.rng.pick(&["bit", "byte", "bits"])),
        _ => args,
    }
}

/// BITCOUNT key [start end [BYTE|BIT]].
fn bitcount(g: &mut Gen) -> Cmd {
    let key = g.key();
    let mut args = g.c("BITCOUNT").arg(key);
    match g.rng.below(5) {
        0 => {}
        1 => args = args.arg(range_index(g)),
        _ => {
            args = args.arg(range_index(g)).arg(range_index(g));
            args = bit_unit(g, args);
        }
    }
    args.exact()
}

/// BITPOS key bit [start [end [BYTE|BIT]]].
fn bitpos(g: &mut Gen) -> Cmd {
    let key = g.key();
    let bit = if g.rng.chance(1, 12) {
        b"2".to_vec()
    } else {
        g.rng.below(2).to_string().into_bytes()
    };
    let mut args = g.c("BITPOS").arg(key).arg(bit);
    match g.rng.below(4) {
        0 => {}
        1 => args = args.arg(range_index(g)),
        _ => {
            args = args.arg(range_index(g)).arg(range_index(g));
            args = bit_unit(g, args);
        }
    }
    args.exact()
}

/// BITOP AND|OR|XOR|NOT destkey key [key ...].
fn bitop(g: &mut Gen) -> Cmd {
    let op = *g.rng.pick(&["AND", "OR", "XOR", "NOT", "not", "NAND"]);
    let n = if op.eq_ignore_ascii_case("NOT") && g.rng.chance(3, 4) {
        1
    } else {
        g.count(3)
    };
    let keys = g.keys(n + 1);
    g.c("BITOP").arg(op).args(keys).exact()
}

/// A BITFIELD type: valid (`i1`..`i64`, `u1`..`u63`) or not.
fn bitfield_type(g: &mut Gen) -> Vec<u8> {
    match g.rng.below(30) {
        0 => g
            .rng
            .pick(&[&b"u64"[..], b"i65", b"i0", b"x8", b"", b"8"])
            .to_vec(),
        1..=14 => format!("i{}", g.rng.range(1, 64)).into_bytes(),
        _ => format!("u{}", g.rng.range(1, 63)).into_bytes(),
    }
}

/// A BITFIELD offset: a bit number, `#n` (n times the type's width), or invalid.
fn bitfield_offset(g: &mut Gen) -> Vec<u8> {
    match g.rng.below(30) {
        0 => g
            .rng
            .pick(&[&b"-1"[..], b"abc", b"#-1", b"4294967296", b"#"])
            .to_vec(),
        1..=8 => format!("#{}", g.rng.range(0, 31)).into_bytes(),
        _ => g.rng.range(0, 256).to_string().into_bytes(),
    }
}

/// A BITFIELD value or increment: small, extreme, or not a number.
fn bitfield_value(g: &mut Gen) -> Vec<u8> {
    match g.rng.below(30) {
        0 => g.junk_int(),
        1 | 2 => g
            .rng
            .pick(&[&b"9223372036854775807"[..], b"-9223372036854775808"])
            .to_vec(),
        _ => g.rng.range(-300, 300).to_string().into_bytes(),
    }
}

/// BITFIELD key [GET type offset] [SET type offset value] [INCRBY type offset increment]
/// [OVERFLOW WRAP|SAT|FAIL] ... (only GET for BITFIELD_RO, except to test its error).
fn bitfield_ops(g: &mut Gen, mut args: Args, read_only: bool) -> Args {
    for _ in 0..g.count(4) {
        let op = if read_only && g.rng.chance(9, 10) {
            0
        } else {
            *g.rng.weighted(&[(8, 0), (8, 1), (8, 2), (3, 3), (1, 4)])
        };
        args = match op {
            0 => args
                .arg("GET")
                .arg(bitfield_type(g))
                .arg(bitfield_offset(g)),
            1 => args
                .arg("SET")
                .arg(bitfield_type(g))
                .arg(bitfield_offset(g))
                .arg(bitfield_value(g)),
            2 => args
                .arg("INCRBY")
                .arg(bitfield_type(g))
                .arg(bitfield_offset(g))
                .arg(bitfield_value(g)),
            3 => args
                .arg("OVERFLOW")
                .arg(*g.rng.pick(&["WRAP", "SAT", "FAIL", "sat", "NONE"])),
            // A subcommand missing its arguments, or an unknown one.
            _ => args.arg(*g.rng.pick(&["GET", "FOO"])),
        };
    }
    args
}

fn bitfield(g: &mut Gen) -> Cmd {
    let key = g.key();
    let args = g.c("BITFIELD").arg(key);
    bitfield_ops(g, args, false).exact()
}

fn bitfield_ro(g: &mut Gen) -> Cmd {
    let key = g.key();
    let args = g.c("BITFIELD_RO").arg(key);
    bitfield_ops(g, args, true).exact()
}
