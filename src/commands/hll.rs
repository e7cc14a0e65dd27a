//! The HyperLogLog family: PFADD, PFCOUNT, PFMERGE, PFDEBUG and PFSELFTEST.
//!
//! An HLL is a string holding Redis's exact byte layout (see `storage::hll`, which owns the
//! representation and its algorithms); these handlers look keys up, check that a string is
//! an HLL, run the operation in place and reply, following Redis 7.0's `hyperloglog.c` step
//! by step because clients observe more than results:
//!
//! - A string that is not an HLL (wrong magic, unknown encoding, a dense one of the wrong
//!   length, an int-encoded string) is `WRONGTYPE Key is not a valid HyperLogLog string
//!   value.`; a sparse HLL whose opcodes are broken is found only when walked and is
//!   `INVALIDOBJ Corrupted HLL object detected`, after whatever changes came before it.
//! - PFCOUNT on one key is declared read-only, yet it writes the recomputed cardinality
//!   into the string's header (and so counts toward `dirty`), exactly as Redis does; with
//!   several keys it merges them into a scratch register array and writes nothing.
//! - Every command that may change the string first makes it raw (Redis's
//!   `dbUnshareStringValue`), which `OBJECT ENCODING` shows.
//! - PFMERGE reads the destination as a source too, then writes the merged registers into it
//!   one by one, so a sparse destination grows (and may turn dense) exactly as Redis's does.
//!
//! Multi-key PFCOUNT and PFMERGE run over a `Keyspace` holding every involved shard, locked,
//! so they see one consistent state without knowing where keys live.

use super::{flag, parse, Cmd, Keys};
use crate::protocol::Out;
use crate::storage::hll::{self, Corrupt, Encoding, REGISTERS};
use crate::storage::limits::{self, LIMITS};
use crate::storage::value::RStr;
use crate::storage::{Keyspace, Value};
use bytes::Bytes;
use std::cell::Cell;

const ERR_NOT_HLL: &str = "WRONGTYPE Key is not a valid HyperLogLog string value.";
const ERR_CORRUPT: &str = "INVALIDOBJ Corrupted HLL object detected";
const ERR_NO_KEY: &str = "ERR The specified key does not exist";
const ERR_NOT_SPARSE: &str = "ERR HLL encoding is not sparse";

const RW_FAST: u32 = flag::WRITE | flag::DENYOOM | flag::FAST;
const RW: u32 = flag::WRITE | flag::DENYOOM;

pub static COMMANDS: [Cmd; 5] = [
    Cmd::data("pfadd", -2, RW_FAST, Keys::Range(1, 1, 1), pfadd).with_acl(&[
        "write",
        "hyperloglog",
        "fast",
    ]),
    Cmd::data(
        "pfcount",
        -2,
        flag::READONLY | flag::MAY_REPLICATE,
        Keys::Range(1, -1, 1),
        pfcount,
    )
    .with_acl(&["read", "hyperloglog", "slow"]),
    Cmd::data("pfmerge", -2, RW, Keys::Range(1, -1, 1), pfmerge).with_acl(&[
        "write",
        "hyperloglog",
        "slow",
    ]),
    Cmd::data(
        "pfdebug",
        3,
        RW | flag::ADMIN,
        Keys::Range(2, 2, 1),
        pfdebug,
    )
    .with_acl(&["write", "hyperloglog", "admin", "slow", "dangerous"]),
    Cmd::data("pfselftest", 1, flag::ADMIN, Keys::None, pfselftest).with_acl(&[
        "hyperloglog",
        "admin",
        "slow",
        "dangerous",
    ]),
];

/// Why a value is not usable as an HLL.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum NotHll {
    /// Not a string at all: the standard WRONGTYPE error.
    WrongType,
    /// A string without the HLL layout.
    Invalid,
}

impl NotHll {
    fn reply(self, out: &mut Out) {
        out.error(match self {
            NotHll::WrongType => super::err::WRONGTYPE,
            NotHll::Invalid => ERR_NOT_HLL,
        });
    }
}

/// The HLL bytes of a value (Redis's `isHLLObjectOrReply`).
fn hll_bytes(value: &Value) -> Result<&[u8], NotHll> {
    let bytes: &[u8] = match value {
        Value::Str(RStr::Raw(v)) => v,
        Value::Str(RStr::Emb(b)) => b,
        // Redis requires an sds-encoded string; an int-encoded one is never an HLL.
        Value::Str(RStr::Int(_)) => return Err(NotHll::Invalid),
        _ => return Err(NotHll::WrongType),
    };
    match hll::encoding_of(bytes) {
        Some(_) => Ok(bytes),
        None => Err(NotHll::Invalid),
    }
}

/// The HLL bytes of a value, made raw for changing in place (Redis's check followed by
/// `dbUnshareStringValue`).
fn hll_bytes_mut(value: &mut Value) -> Result<&mut Vec<u8>, NotHll> {
    hll_bytes(value)?;
    match value {
        Value::Str(s) => Ok(s.make_raw()),
        // hll_bytes accepted only strings.
        _ => Err(NotHll::WrongType),
    }
}

/// `hll-sparse-max-bytes`, as set by config.
fn sparse_bytes_max() -> usize {
    usize::try_from(limits::get(&LIMITS.hll_sparse_max_bytes)).unwrap_or(0)
}

/// Adds `elements` to an HLL; the count of registers changed, or `Corrupt` (changes made
/// before the corruption was found stay, as in Redis).
fn add_all(s: &mut Vec<u8>, elements: &[Bytes]) -> Result<u64, Corrupt> {
    let sparse_max = sparse_bytes_max();
    let mut changed = 0;
    for element in elements {
        if hll::add(s, element, sparse_max)? {
            changed += 1;
        }
    }
    Ok(changed)
}

/// PFADD key [element ...]: 1 when the key was created or a register changed, else 0.
/// `dirty` grows by the number of registers changed, plus one for a new key.
fn pfadd(ks: &mut Keyspace, args: &[Bytes], out: &mut Out) {
    let key = &args[1];
    let elements = &args[2..];
    let updated = match ks.lookup_write(key) {
        None => {
            let mut s = hll::new_sparse();
            // A fresh HLL is never corrupt.
            let changed = add_all(&mut s, elements).unwrap_or(0);
            hll::invalidate_cache(&mut s);
            ks.set(key, Value::Str(RStr::raw(s)));
            changed + 1
        }
        Some(entry) => {
            let s = match hll_bytes_mut(&mut entry.value) {
                Ok(s) => s,
                Err(e) => return e.reply(out),
            };
            let Ok(changed) = add_all(s, elements) else {
                return out.error(ERR_CORRUPT);
            };
            if changed > 0 {
                hll::invalidate_cache(s);
            }
            changed
        }
    };
    if updated > 0 {
        ks.signal_modified(key);
        ks.notify('$', "pfadd", key);
        ks.dirty(updated);
    }
    out.int(i64::from(updated > 0));
}

/// PFCOUNT key [key ...]: the estimated cardinality of one HLL, or of the union of several.
fn pfcount(ks: &mut Keyspace, args: &[Bytes], out: &mut Out) {
    if args.len() > 2 {
        return pfcount_union(ks, &args[1..], out);
    }
    let key = &args[1];
    let Some(entry) = ks.lookup_read(key) else {
        return out.int(0);
    };
    let s = match hll_bytes_mut(&mut entry.value) {
        Ok(s) => s,
        Err(e) => return e.reply(out),
    };
    let card = match hll::cached_card(s) {
        Some(card) => card,
        None => {
            let Ok(card) = hll::count(s) else {
                return out.error(ERR_CORRUPT);
            };
            hll::set_cached_card(s, card);
            // The cache is part of the string, so this read changes it (and replicates).
            ks.signal_modified(key);
            ks.dirty(1);
            card
        }
    };
    // Redis replies the u64 as a long long: 2^63 (a crafted HLL's overflow) is negative.
    out.int(card as i64);
}

/// PFCOUNT over several keys: the registers' maxima, estimated without storing anything.
/// Missing keys count as empty HLLs.
fn pfcount_union(ks: &mut Keyspace, keys: &[Bytes], out: &mut Out) {
    let mut max = Box::new([0u8; REGISTERS]);
    for key in keys {
        let Some(entry) = ks.lookup_read(key) else {
            continue;
        };
        let s = match hll_bytes(&entry.value) {
            Ok(s) => s,
            Err(e) => return e.reply(out),
        };
        if hll::merge_into(&mut max, s).is_err() {
            return out.error(ERR_CORRUPT);
        }
    }
    out.int(hll::estimate(&hll::histogram_unpacked(&max)) as i64);
}

/// PFMERGE destkey [sourcekey ...]: stores the union of the sources and the destination
/// itself into the destination. The destination turns dense when any input is dense.
fn pfmerge(ks: &mut Keyspace, args: &[Bytes], out: &mut Out) {
    let mut max = Box::new([0u8; REGISTERS]);
    let mut use_dense = false;
    for key in &args[1..] {
        let Some(entry) = ks.lookup_read(key) else {
            continue;
        };
        let s = match hll_bytes(&entry.value) {
            Ok(s) => s,
            Err(e) => return e.reply(out),
        };
        use_dense |= hll::encoding_of(s) == Some(Encoding::Dense);
        if hll::merge_into(&mut max, s).is_err() {
            return out.error(ERR_CORRUPT);
        }
    }
    let dest = &args[1];
    let stored = match ks.lookup_write(dest) {
        None => {
            let mut s = hll::new_sparse();
            let stored = store_registers(&mut s, &max, use_dense);
            ks.set(dest, Value::Str(RStr::raw(s)));
            stored
        }
        // The loop above accepted the destination, as a source, so it is an HLL.
        Some(entry) => match hll_bytes_mut(&mut entry.value) {
            Ok(s) => store_registers(s, &max, use_dense),
            Err(e) => return e.reply(out),
        },
    };
    if stored.is_err() {
        return out.error(ERR_CORRUPT);
    }
    ks.signal_modified(dest);
    // Redis reports a merge as a PFADD: in effect it adds many elements.
    ks.notify('$', "pfadd", dest);
    ks.dirty(1);
    out.ok();
}

/// Raises an HLL's registers to `max` (made dense first when `use_dense`), invalidating the
/// cache. Sparse updates that meet corruption are skipped, as Redis ignores them here.
fn store_registers(s: &mut Vec<u8>, max: &[u8; REGISTERS], use_dense: bool) -> Result<(), Corrupt> {
    if use_dense {
        hll::to_dense(s)?;
    }
    let sparse_max = sparse_bytes_max();
    for (index, &count) in max.iter().enumerate() {
        if count != 0 {
            let _ = hll::raise(s, index, count, sparse_max);
        }
    }
    hll::invalidate_cache(s);
    Ok(())
}

/// PFDEBUG GETREG|DECODE|ENCODING|TODENSE key. The key must exist and be an HLL before the
/// subcommand is even looked at.
fn pfdebug(ks: &mut Keyspace, args: &[Bytes], out: &mut Out) {
    let sub = &args[1];
    let Some(entry) = ks.lookup_write(&args[2]) else {
        return out.error(ERR_NO_KEY);
    };
    let s = match hll_bytes_mut(&mut entry.value) {
        Ok(s) => s,
        Err(e) => return e.reply(out),
    };
    let sparse = hll::encoding_of(s) == Some(Encoding::Sparse);
    if parse::kw(sub, "getreg") {
        if sparse && hll::to_dense(s).is_err() {
            return out.error(ERR_CORRUPT);
        }
        let registers = hll::dense_registers(s);
        if sparse {
            // The encoding changed: propagate it.
            ks.dirty(1);
        }
        out.array(REGISTERS);
        for register in registers {
            out.int(i64::from(register));
        }
    } else if parse::kw(sub, "decode") {
        if !sparse {
            return out.error(ERR_NOT_SPARSE);
        }
        out.bulk(hll::decode_sparse(s).as_bytes());
    } else if parse::kw(sub, "encoding") {
        let encoding = if sparse {
            Encoding::Sparse
        } else {
            Encoding::Dense
        };
        out.simple(encoding.name());
    } else if parse::kw(sub, "todense") {
        if sparse {
            if hll::to_dense(s).is_err() {
                return out.error(ERR_CORRUPT);
            }
            ks.dirty(1);
        }
        out.int(i64::from(sparse));
    } else {
        // Redis prints the subcommand as a C string: up to its first NUL.
        let name = sub.split(|&b| b == 0).next().unwrap_or_default();
        let mut text = b"ERR Unknown PFDEBUG subcommand '".to_vec();
        text.extend_from_slice(name);
        text.push(b'\'');
        out.error_bytes(&text);
    }
}

thread_local! {
    /// PFSELFTEST's generator state (xorshift64*), seeded per thread from the clock.
    static RANDOM_STATE: Cell<u64> = Cell::new(crate::util::now_us() | 1);
}

fn random_u64() -> u64 {
    RANDOM_STATE.with(|state| {
        let mut x = state.get();
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        state.set(x);
        x.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 33
    })
}

/// PFSELFTEST: Redis's self test of the register code and the estimator.
fn pfselftest(_ks: &mut Keyspace, _args: &[Bytes], out: &mut Out) {
    match hll::self_test(&hll::SELF_TEST_FULL, &mut random_u64, sparse_bytes_max()) {
        Ok(()) => out.ok(),
        Err(text) => out.error(&format!("ERR {text}")),
    }
}

#[cfg(test)]
mod tests;
