//! Bitmap commands over string values: SETBIT, GETBIT, BITCOUNT, BITPOS, BITOP, BITFIELD and
//! BITFIELD_RO, following Redis 7.0's `bitops.c`.
//!
//! A string is a bit array with bit 0 the most significant bit of byte 0; reads past the end
//! see zeros, writes past the end zero-pad the string first (and a write that only pads still
//! counts as a change, as in Redis). Offsets are limited so the string stays within
//! `proto-max-bulk-len`. Writers leave the value raw-encoded.
//!
//! The bit arithmetic (field get/set, BITFIELD's overflow rules, range counting and search)
//! is a set of pure functions at the bottom of the file, tested on their own; the handlers
//! only parse, look up and reply. BITPOS and BITCOUNT convert their BYTE/BIT ranges to one
//! inclusive bit range and work on that, which gives Redis's results without its per-edge
//! masking code.

use super::string::{read_str, write_str, WrongType, PROTO_MAX_BULK_LEN};
use super::{err, flag, parse, Cmd, Keys};
use crate::protocol::Out;
use crate::storage::value::{parse_canonical_i64, RStr};
use crate::storage::{Keyspace, Value};
use bytes::Bytes;

const ERR_BIT_OFFSET: &str = "ERR bit offset is not an integer or out of range";
const ERR_BIT_VALUE: &str = "ERR bit is not an integer or out of range";
const ERR_BIT_ARGUMENT: &str = "ERR The bit argument must be 1 or 0.";
const ERR_BITOP_NOT: &str = "ERR BITOP NOT must be called with a single source key.";
const ERR_BITFIELD_TYPE: &str =
    "ERR Invalid bitfield type. Use something like i16 u8. Note that u64 is not supported but \
     i64 is.";
const ERR_OVERFLOW_TYPE: &str = "ERR Invalid OVERFLOW type specified";
const ERR_BITFIELD_RO: &str = "ERR BITFIELD_RO only supports the GET subcommand";

const KEY: Keys = Keys::Range(1, 1, 1);
const RW: u32 = flag::WRITE | flag::DENYOOM;

pub static COMMANDS: [Cmd; 7] = [
    Cmd::data("setbit", 4, RW, KEY, setbit).with_acl(&["write", "bitmap", "slow"]),
    Cmd::data("getbit", 3, flag::READONLY | flag::FAST, KEY, getbit)
        .with_acl(&["read", "bitmap", "fast"]),
    Cmd::data("bitcount", -2, flag::READONLY, KEY, bitcount).with_acl(&["read", "bitmap", "slow"]),
    Cmd::data("bitpos", -3, flag::READONLY, KEY, bitpos).with_acl(&["read", "bitmap", "slow"]),
    Cmd::data("bitop", -4, RW, Keys::Range(2, -1, 1), bitop).with_acl(&["write", "bitmap", "slow"]),
    Cmd::data("bitfield", -2, RW, KEY, bitfield).with_acl(&["write", "bitmap", "slow"]),
    Cmd::data(
        "bitfield_ro",
        -2,
        flag::READONLY | flag::FAST,
        KEY,
        bitfield_ro,
    )
    .with_acl(&["read", "bitmap", "fast"]),
];

/// Redis's `getBitOffsetFromArgument`. With `field_bits` (BITFIELD), `#n` means `n` fields
/// of that width; the product wraps as Redis's does before the range check.
fn bit_offset(arg: &[u8], field_bits: Option<u32>) -> Result<u64, &'static str> {
    let (digits, multiplier) = match (arg.split_first(), field_bits) {
        (Some((b'#', rest)), Some(bits)) => (rest, bits as i64),
        _ => (arg, 1),
    };
    let n = parse_canonical_i64(digits)
        .ok_or(ERR_BIT_OFFSET)?
        .wrapping_mul(multiplier);
    if n < 0 || (n >> 3) as u64 >= PROTO_MAX_BULK_LEN {
        return Err(ERR_BIT_OFFSET);
    }
    Ok(n as u64)
}

/// Runs `f` on the raw buffer of the string at `key`, created or zero-padded so that bit
/// `max_bit` exists (Redis's `lookupStringForBitCommand`). `f` learns whether the string was
/// created or grown, which Redis counts as a change by itself.
fn with_bit_buffer<R>(
    ks: &mut Keyspace,
    key: &[u8],
    max_bit: u64,
    f: impl FnOnce(&mut Vec<u8>, bool) -> R,
) -> Result<R, WrongType> {
    let len = (max_bit >> 3) as usize + 1;
    match write_str(ks, key)? {
        Some(s) => {
            let buf = s.make_raw();
            let grown = buf.len() < len;
            if grown {
                buf.resize(len, 0);
            }
            Ok(f(buf, grown))
        }
        None => {
            let mut buf = vec![0u8; len];
            let r = f(&mut buf, true);
            ks.set(key, Value::Str(RStr::raw(buf)));
            Ok(r)
        }
    }
}

/// SETBIT key offset 0|1: replies with the bit's old value.
fn setbit(ks: &mut Keyspace, args: &[Bytes], out: &mut Out) {
    let key = &args[1];
    let offset = match bit_offset(&args[2], None) {
        Ok(o) => o,
        Err(e) => return out.error(e),
    };
    let on = match parse_canonical_i64(&args[3]) {
        Some(v @ (0 | 1)) => v as u8,
        _ => return out.error(ERR_BIT_VALUE),
    };
    let applied = with_bit_buffer(ks, key, offset, |buf, grown| {
        let byte = (offset >> 3) as usize;
        let shift = 7 - (offset & 7) as u32;
        let old = (buf[byte] >> shift) & 1;
        let changed = grown || old != on;
        if changed {
            buf[byte] = (buf[byte] & !(1 << shift)) | (on << shift);
        }
        (old, changed)
    });
    let Ok((old, changed)) = applied else {
        return out.error(err::WRONGTYPE);
    };
    if changed {
        ks.signal_modified(key);
        ks.notify('$', "setbit", key);
        ks.dirty(1);
    }
    out.int(old as i64);
}

/// GETBIT key offset: the offset is checked before the lookup.
fn getbit(ks: &mut Keyspace, args: &[Bytes], out: &mut Out) {
    let offset = match bit_offset(&args[2], None) {
        Ok(o) => o,
        Err(e) => return out.error(e),
    };
    match read_str(ks, &args[1]) {
        Ok(Some(s)) => {
            let mut scratch = [0u8; 24];
            out.int(get_bit(s.as_bytes(&mut scratch), offset) as i64);
        }
        Ok(None) => out.int(0),
        Err(WrongType) => out.error(err::WRONGTYPE),
    }
}

/// Parses an optional `BYTE|BIT` unit: true for BIT.
fn bit_unit(arg: Option<&Bytes>) -> Result<bool, &'static str> {
    match arg {
        None => Ok(false),
        Some(a) if parse::kw(a, "bit") => Ok(true),
        Some(a) if parse::kw(a, "byte") => Ok(false),
        Some(_) => Err(err::SYNTAX),
    }
}

/// Resolves negative indexes and clamps to `[0, total - 1]`, as BITCOUNT and BITPOS do.
fn clamp_index_range(start: i64, end: i64, total: i64) -> (i64, i64) {
    let start = if start < 0 { start + total } else { start }.max(0);
    let end = if end < 0 { end + total } else { end }.max(0);
    (start, end.min(total - 1))
}

/// BITCOUNT key [start end [BYTE|BIT]]. A missing key is 0 before any argument is looked at.
fn bitcount(ks: &mut Keyspace, args: &[Bytes], out: &mut Out) {
    let s = match read_str(ks, &args[1]) {
        Ok(Some(s)) => s,
        Ok(None) => return out.int(0),
        Err(WrongType) => return out.error(err::WRONGTYPE),
    };
    let mut scratch = [0u8; 24];
    let bytes = s.as_bytes(&mut scratch);
    if args.len() == 2 {
        return out.int(popcount(bytes) as i64);
    }
    if args.len() > 5 || args.len() == 3 {
        return out.error(err::SYNTAX);
    }
    let (start, end) = match (parse::i64_arg(&args[2]), parse::i64_arg(&args[3])) {
        (Ok(s), Ok(e)) => (s, e),
        (Err(e), _) | (_, Err(e)) => return out.error(e),
    };
    if start < 0 && end < 0 && start > end {
        return out.int(0);
    }
    let is_bit = match bit_unit(args.get(4)) {
        Ok(b) => b,
        Err(e) => return out.error(e),
    };
    let unit_bits = if is_bit { 1 } else { 8 };
    let (start, end) = clamp_index_range(start, end, bytes.len() as i64 * 8 / unit_bits);
    if start > end {
        return out.int(0);
    }
    let (first, last) = bit_span(start as u64, end as u64, is_bit);
    out.int(count_bits(bytes, first, last) as i64);
}

/// BITPOS key 0|1 [start [end [BYTE|BIT]]]. Order: the bit argument, the lookup (a missing
/// key is all zeros), the range. Without an explicit end, a search for 0 that finds none
/// answers the first bit past the string; with one, it answers -1.
fn bitpos(ks: &mut Keyspace, args: &[Bytes], out: &mut Out) {
    let bit = match parse::i64_arg(&args[2]) {
        Ok(b @ (0 | 1)) => b == 1,
        Ok(_) => return out.error(ERR_BIT_ARGUMENT),
        Err(e) => return out.error(e),
    };
    let s = match read_str(ks, &args[1]) {
        Ok(Some(s)) => s,
        Ok(None) => return out.int(if bit { -1 } else { 0 }),
        Err(WrongType) => return out.error(err::WRONGTYPE),
    };
    let mut scratch = [0u8; 24];
    let bytes = s.as_bytes(&mut scratch);
    let len = bytes.len() as i64;
    let (start, end, is_bit, end_given) = match args.len() {
        3 => (0, len - 1, false, false),
        4..=6 => {
            let start = match parse::i64_arg(&args[3]) {
                Ok(s) => s,
                Err(e) => return out.error(e),
            };
            let is_bit = match bit_unit(args.get(5)) {
                Ok(b) => b,
                Err(e) => return out.error(e),
            };
            let end = match args.get(4).map(|a| parse::i64_arg(a)) {
                Some(Ok(e)) => e,
                Some(Err(e)) => return out.error(e),
                None => len - 1,
            };
            let total = if is_bit { len * 8 } else { len };
            let (start, end) = clamp_index_range(start, end, total);
            (start, end, is_bit, args.len() >= 5)
        }
        _ => return out.error(err::SYNTAX),
    };
    if start > end {
        return out.int(-1);
    }
    let (first, last) = bit_span(start as u64, end as u64, is_bit);
    let pos = match find_bit(bytes, first, last, bit) {
        Some(p) => p as i64,
        None if bit || end_given => -1,
        None => last as i64 + 1,
    };
    out.int(pos);
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum BitOp {
    And,
    Or,
    Xor,
    Not,
}

/// BITOP AND|OR|XOR|NOT destkey key...: missing sources are empty strings, shorter ones are
/// zero-padded; an empty result deletes the destination. Replies with the result's length.
fn bitop(ks: &mut Keyspace, args: &[Bytes], out: &mut Out) {
    let op = match &args[1] {
        a if parse::kw(a, "and") => BitOp::And,
        a if parse::kw(a, "or") => BitOp::Or,
        a if parse::kw(a, "xor") => BitOp::Xor,
        a if parse::kw(a, "not") => BitOp::Not,
        _ => return out.error(err::SYNTAX),
    };
    if op == BitOp::Not && args.len() != 4 {
        return out.error(ERR_BITOP_NOT);
    }
    let mut result: Vec<u8> = Vec::new();
    for (i, key) in args[3..].iter().enumerate() {
        let mut scratch = [0u8; 24];
        let src = match read_str(ks, key) {
            Ok(Some(s)) => s.as_bytes(&mut scratch),
            Ok(None) => &[][..],
            Err(WrongType) => return out.error(err::WRONGTYPE),
        };
        if i == 0 {
            result.extend_from_slice(src);
            if op == BitOp::Not {
                result.iter_mut().for_each(|b| *b = !*b);
            }
        } else {
            combine(&mut result, src, op);
        }
    }
    let target = &args[2];
    if result.is_empty() {
        if ks.remove(target).is_some() {
            ks.signal_modified(target);
            ks.notify('g', "del", target);
            ks.dirty(1);
        }
        return out.int(0);
    }
    let len = result.len();
    ks.set(target, Value::Str(RStr::raw(result)));
    ks.signal_modified(target);
    ks.notify('$', "set", target);
    ks.dirty(1);
    out.int(len as i64);
}

/// `acc = acc <op> src`, both zero-padded to the longer length.
fn combine(acc: &mut Vec<u8>, src: &[u8], op: BitOp) {
    if acc.len() < src.len() {
        acc.resize(src.len(), 0);
    }
    for (j, a) in acc.iter_mut().enumerate() {
        let b = src.get(j).copied().unwrap_or(0);
        match op {
            BitOp::And => *a &= b,
            BitOp::Or => *a |= b,
            BitOp::Xor => *a ^= b,
            BitOp::Not => {}
        }
    }
}

// ---------------------------------------------------------------------------------------
// BITFIELD

/// What BITFIELD does when a SET or INCRBY result does not fit the field.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Overflow {
    Wrap,
    Sat,
    /// Skip the write and reply null.
    Fail,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum FieldOpKind {
    Get,
    Set(i64),
    IncrBy(i64),
}

#[derive(Clone, Copy, Debug)]
struct FieldOp {
    kind: FieldOpKind,
    offset: u64,
    bits: u32,
    signed: bool,
    overflow: Overflow,
}

/// Parses `i<1..64>` or `u<1..63>` (case-sensitive; the width is read up to the first NUL,
/// as Redis reads it with `strlen`).
fn field_type(arg: &[u8]) -> Result<(bool, u32), &'static str> {
    let (signed, width) = match arg.split_first() {
        Some((b'i', w)) => (true, w),
        Some((b'u', w)) => (false, w),
        _ => return Err(ERR_BITFIELD_TYPE),
    };
    let width = width.split(|&b| b == 0).next().unwrap_or(width);
    match parse_canonical_i64(width) {
        Some(n @ 1..=64) if signed => Ok((true, n as u32)),
        Some(n @ 1..=63) => Ok((false, n as u32)),
        _ => Err(ERR_BITFIELD_TYPE),
    }
}

/// Parses every BITFIELD subcommand before anything runs, as Redis does. Returns the ops and
/// the highest bit a write touches (None when all are GETs).
fn parse_field_ops(args: &[Bytes]) -> Result<(Vec<FieldOp>, Option<u64>), &'static str> {
    let mut ops = Vec::new();
    let mut overflow = Overflow::Wrap;
    let mut highest_write: Option<u64> = None;
    let mut j = 2;
    while let Some(sub) = args.get(j) {
        let remaining = args.len() - j - 1;
        let kind_arg = if parse::kw(sub, "get") && remaining >= 2 {
            None
        } else if (parse::kw(sub, "set") || parse::kw(sub, "incrby")) && remaining >= 3 {
            Some(parse::kw(sub, "set"))
        } else if parse::kw(sub, "overflow") && remaining >= 1 {
            overflow = match &args[j + 1] {
                a if parse::kw(a, "wrap") => Overflow::Wrap,
                a if parse::kw(a, "sat") => Overflow::Sat,
                a if parse::kw(a, "fail") => Overflow::Fail,
                _ => return Err(ERR_OVERFLOW_TYPE),
            };
            j += 2;
            continue;
        } else {
            return Err(err::SYNTAX);
        };
        let (signed, bits) = field_type(&args[j + 1])?;
        let offset = bit_offset(&args[j + 2], Some(bits))?;
        let kind = match kind_arg {
            None => FieldOpKind::Get,
            Some(is_set) => {
                let top = offset + bits as u64 - 1;
                highest_write = Some(highest_write.map_or(top, |h| h.max(top)));
                let v = parse::i64_arg(&args[j + 3])?;
                if is_set {
                    FieldOpKind::Set(v)
                } else {
                    FieldOpKind::IncrBy(v)
                }
            }
        };
        ops.push(FieldOp {
            kind,
            offset,
            bits,
            signed,
            overflow,
        });
        j += if kind == FieldOpKind::Get { 3 } else { 4 };
    }
    Ok((ops, highest_write))
}

fn bitfield(ks: &mut Keyspace, args: &[Bytes], out: &mut Out) {
    bitfield_generic(ks, args, out, false);
}

fn bitfield_ro(ks: &mut Keyspace, args: &[Bytes], out: &mut Out) {
    bitfield_generic(ks, args, out, true);
}

/// BITFIELD key [GET type offset] [SET type offset value] [INCRBY type offset incr]
/// [OVERFLOW WRAP|SAT|FAIL]...: all-GET calls only read (a missing key reads as zeros); any
/// write first grows the string to the highest bit written.
fn bitfield_generic(ks: &mut Keyspace, args: &[Bytes], out: &mut Out, read_only_cmd: bool) {
    let key = &args[1];
    let (ops, highest_write) = match parse_field_ops(args) {
        Ok(parsed) => parsed,
        Err(e) => return out.error(e),
    };
    let Some(highest_write) = highest_write else {
        let mut scratch = [0u8; 24];
        let bytes = match read_str(ks, key) {
            Ok(Some(s)) => s.as_bytes(&mut scratch),
            Ok(None) => &[][..],
            Err(WrongType) => return out.error(err::WRONGTYPE),
        };
        out.array(ops.len());
        for op in &ops {
            out.int(read_field(bytes, op));
        }
        return;
    };
    if read_only_cmd {
        return out.error(ERR_BITFIELD_RO);
    }
    let changes = with_bit_buffer(ks, key, highest_write, |buf, grown| {
        out.array(ops.len());
        ops.iter()
            .filter(|op| apply_field_op(buf, op, grown, out))
            .count()
    });
    let Ok(changes) = changes else {
        return out.error(err::WRONGTYPE);
    };
    if changes > 0 {
        ks.signal_modified(key);
        ks.notify('$', "setbit", key);
        ks.dirty(changes as u64);
    }
}

/// A field's value as GET replies it.
fn read_field(bytes: &[u8], op: &FieldOp) -> i64 {
    let raw = get_field(bytes, op.offset, op.bits);
    if op.signed {
        sign_extend(raw, op.bits)
    } else {
        raw as i64
    }
}

/// Runs one op on a buffer already long enough for every write and replies for it. Returns
/// whether it counts as a change (a write when the string grew, or one that altered bits).
fn apply_field_op(buf: &mut [u8], op: &FieldOp, grown: bool, out: &mut Out) -> bool {
    let (value, incr) = match op.kind {
        FieldOpKind::Get => {
            out.int(read_field(buf, op));
            return false;
        }
        FieldOpKind::Set(v) => (v, 0),
        FieldOpKind::IncrBy(d) => (0, d),
    };
    let old_raw = get_field(buf, op.offset, op.bits);
    let is_set = matches!(op.kind, FieldOpKind::Set(_));
    let (old, new) = if op.signed {
        let old = sign_extend(old_raw, op.bits);
        let base = if is_set { value } else { old };
        (old, fit_signed(base, incr, op.bits, op.overflow))
    } else {
        let base = if is_set { value as u64 } else { old_raw };
        let new = fit_unsigned(base, incr, op.bits, op.overflow);
        (old_raw as i64, new.map(|n| n as i64))
    };
    let Some(new) = new else {
        out.null();
        return false;
    };
    out.int(if is_set { old } else { new });
    set_field(buf, op.offset, op.bits, new as u64);
    grown || old != new
}

// ---------------------------------------------------------------------------------------
// Pure bit arithmetic.

/// Bit `offset` of `s` (0 past the end).
fn get_bit(s: &[u8], offset: u64) -> bool {
    let byte = (offset >> 3) as usize;
    s.get(byte)
        .is_some_and(|b| (b >> (7 - (offset & 7))) & 1 == 1)
}

fn popcount(s: &[u8]) -> u64 {
    let mut chunks = s.chunks_exact(8);
    let mut n: u64 = chunks
        .by_ref()
        .map(|c| u64::from_ne_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]))
        .map(|w| w.count_ones() as u64)
        .sum();
    n += chunks
        .remainder()
        .iter()
        .map(|b| b.count_ones() as u64)
        .sum::<u64>();
    n
}

/// The inclusive bit range a clamped BYTE or BIT range covers.
fn bit_span(start: u64, end: u64, is_bit: bool) -> (u64, u64) {
    if is_bit {
        (start, end)
    } else {
        (start * 8, end * 8 + 7)
    }
}

/// Set bits in `[first, last]`; the range lies within `s`.
fn count_bits(s: &[u8], first: u64, last: u64) -> u64 {
    let (fb, lb) = ((first >> 3) as usize, (last >> 3) as usize);
    let Some(span) = s.get(fb..=lb) else {
        return 0;
    };
    // Bits of the edge bytes outside the range: before `first` and after `last`.
    let head_mask = !(0xffu8 >> (first & 7));
    let tail_mask = 0xffu8.checked_shr((last & 7) as u32 + 1).unwrap_or(0);
    let head = span.first().map_or(0, |b| (b & head_mask).count_ones());
    let tail = span.last().map_or(0, |b| (b & tail_mask).count_ones());
    popcount(span) - head as u64 - tail as u64
}

/// The first bit equal to `bit` in `[first, last]`, reading zeros past the end of `s`.
fn find_bit(s: &[u8], first: u64, last: u64, bit: bool) -> Option<u64> {
    let skip = if bit { 0x00 } else { 0xff };
    let mut pos = first;
    while pos <= last {
        // Runs of whole bytes that cannot hold the bit are skipped at once.
        if pos & 7 == 0 {
            let whole_bytes = ((last - pos + 1) / 8) as usize;
            let run = s.get((pos >> 3) as usize..).map_or(0, |rest| {
                rest.iter()
                    .take(whole_bytes)
                    .take_while(|&&b| b == skip)
                    .count()
            });
            if run > 0 {
                pos += run as u64 * 8;
                continue;
            }
        }
        let byte = s.get((pos >> 3) as usize).copied().unwrap_or(0);
        if ((byte >> (7 - (pos & 7))) & 1 == 1) == bit {
            return Some(pos);
        }
        pos += 1;
    }
    None
}

/// The `bits`-wide unsigned field at bit `offset` (zeros past the end of `s`).
fn get_field(s: &[u8], offset: u64, bits: u32) -> u64 {
    (0..bits as u64).fold(0u64, |v, i| (v << 1) | get_bit(s, offset + i) as u64)
}

/// Stores the low `bits` bits of `value` at bit `offset`; `s` must be long enough.
fn set_field(s: &mut [u8], offset: u64, bits: u32, value: u64) {
    for i in 0..bits as u64 {
        let on = (value >> (bits as u64 - 1 - i)) & 1 == 1;
        let at = offset + i;
        if let Some(b) = s.get_mut((at >> 3) as usize) {
            let mask = 1u8 << (7 - (at & 7));
            *b = if on { *b | mask } else { *b & !mask };
        }
    }
}

fn sign_extend(raw: u64, bits: u32) -> i64 {
    if bits < 64 && raw & (1 << (bits - 1)) != 0 {
        (raw | (u64::MAX << bits)) as i64
    } else {
        raw as i64
    }
}

/// `value + incr` stored in an unsigned field of `bits` bits (Redis's
/// `checkUnsignedBitfieldOverflow`): the sum when it fits, else wrapped, saturated, or None
/// for FAIL. `value` may itself be out of range (a SET value), which counts as overflow.
fn fit_unsigned(value: u64, incr: i64, bits: u32, overflow: Overflow) -> Option<u64> {
    let max = u64::MAX.checked_shr(64 - bits).unwrap_or(0);
    let max_incr = max.wrapping_sub(value) as i64;
    let min_incr = value.wrapping_neg() as i64;
    let sum = value.wrapping_add(incr as u64);
    let over = value > max || (incr > 0 && incr > max_incr);
    let under = !over && incr < 0 && incr < min_incr;
    if !over && !under {
        return Some(sum);
    }
    match overflow {
        Overflow::Wrap => Some(sum & max),
        Overflow::Sat => Some(if over { max } else { 0 }),
        Overflow::Fail => None,
    }
}

/// The signed counterpart of `fit_unsigned` (Redis's `checkSignedBitfieldOverflow`): wrapping
/// keeps the low `bits` bits and sign-extends them.
fn fit_signed(value: i64, incr: i64, bits: u32, overflow: Overflow) -> Option<i64> {
    let max = if bits == 64 {
        i64::MAX
    } else {
        (1i64 << (bits - 1)) - 1
    };
    let min = -max - 1;
    let max_incr = (max as u64).wrapping_sub(value as u64) as i64;
    let min_incr = min.wrapping_sub(value);
    let narrow = bits != 64;
    let over =
        value > max || (narrow && incr > max_incr) || (value >= 0 && incr > 0 && incr > max_incr);
    let under = !over
        && (value < min
            || (narrow && incr < min_incr)
            || (value < 0 && incr < 0 && incr < min_incr));
    if !over && !under {
        return Some(value.wrapping_add(incr));
    }
    match overflow {
        Overflow::Wrap => Some(sign_extend(
            (value as u64).wrapping_add(incr as u64) & u64::MAX.checked_shr(64 - bits).unwrap_or(0),
            bits,
        )),
        Overflow::Sat => Some(if over { max } else { min }),
        Overflow::Fail => None,
    }
}

#[cfg(test)]
mod tests;
