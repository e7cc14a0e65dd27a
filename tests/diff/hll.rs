//! HyperLogLog commands (`hyperloglog.c` in Redis): PFADD, PFCOUNT over one or several keys,
//! PFMERGE, and GET of the HLL string itself, so that the sparse and dense representations
//! (and the cached cardinality PFCOUNT writes into the header) must match byte for byte.
//!
//! Elements are drawn from a few thousand names; now and then one PFADD adds hundreds of
//! them, which takes a sparse HLL past `hll-sparse-max-bytes` (3000) to the dense encoding.
//! Now and then a key is SET to a string that looks like an HLL but that Redis refuses at once
//! (see `set_corrupt`).

use super::{Cmd, Gen, GenFn, KeySet};

/// The HLL family's own names: `{p}` keys share a shard, `hll:*` spread.
pub const KEYS: KeySet = KeySet {
    names: &[b"{p}a", b"{p}b", b"{p}c", b"hll:1", b"hll:2"],
    tagged: 3,
};

/// Distinct elements the family draws from.
const ELEMENTS_MAX: u64 = 5000;

/// Elements one big PFADD adds.
const BIG_PFADD_ELEMENTS: usize = 600;

/// One weighted generator per command.
const COMMANDS: &[(u32, GenFn)] = &[
    (2, del),
    (2, encoding),
    (10, pfadd),
    (6, pfcount),
    (3, pfmerge),
    (3, get),
    (1, set_corrupt),
];

pub fn generate(g: &mut Gen) -> Cmd {
    let command = *g.rng.weighted(COMMANDS);
    command(g)
}

fn del(g: &mut Gen) -> Cmd {
    g.del_in(&KEYS)
}

fn encoding(g: &mut Gen) -> Cmd {
    g.encoding_in(&KEYS)
}

fn element(g: &mut Gen) -> Vec<u8> {
    if g.rng.chance(1, 20) {
        return g.value();
    }
    format!("e{}", g.rng.below(ELEMENTS_MAX)).into_bytes()
}

/// PFADD key [element ...]: none (creates an empty HLL), a few, or hundreds.
fn pfadd(g: &mut Gen) -> Cmd {
    let key = g.key_in(&KEYS);
    let n = match g.rng.below(40) {
        0 => 0,
        1 => BIG_PFADD_ELEMENTS,
        _ => g.count(8),
    };
    let items: Vec<Vec<u8>> = (0..n).map(|_| element(g)).collect();
    g.c("PFADD").arg(key).args(items).exact()
}

/// PFCOUNT key [key ...]: several keys are merged in a temporary HLL (and across shards).
fn pfcount(g: &mut Gen) -> Cmd {
    let n = if g.rng.chance(1, 2) { 1 } else { g.count(3) };
    let keys = g.keys_in(&KEYS, n);
    g.c("PFCOUNT").args(keys).exact()
}

/// PFMERGE destkey [sourcekey ...]: the destination may be a source or not exist.
fn pfmerge(g: &mut Gen) -> Cmd {
    let n = g.rng.below(4) as usize;
    let keys = g.keys_in(&KEYS, n + 1);
    g.c("PFMERGE").args(keys).exact()
}

/// GET of an HLL key: its exact bytes.
fn get(g: &mut Gen) -> Cmd {
    let key = g.key_in(&KEYS);
    g.c("GET").arg(key).exact()
}

/// SET key to a string that starts like an HLL but that Redis refuses before reading its
/// body: shorter than the header, an unknown encoding byte, or a dense body of the wrong
/// length. (Not a sparse body of random opcodes: Redis walks those only as far as the
/// register it needs, reading past the end on a truncated opcode, so what it answers for a
/// corrupt sparse HLL is an accident of layout rather than a contract.)
fn set_corrupt(g: &mut Gen) -> Cmd {
    let key = g.key_in(&KEYS);
    let mut value = b"HYLL".to_vec();
    match g.rng.below(3) {
        0 => {
            let len = g.rng.index(12);
            value.extend(g.rng.bytes(len));
        }
        kind => {
            let encoding = if kind == 1 {
                2 + g.rng.below(250) as u8
            } else {
                0
            };
            value.push(encoding);
            value.extend([0u8; 3]);
            // The cached cardinality, marked stale (its top bit set) or not.
            value.extend(g.rng.bytes(7));
            value.push(if g.rng.chance(1, 2) { 0x80 } else { 0 });
            let len = g.rng.index(64);
            value.extend(g.rng.bytes(len));
        }
    }
    g.c("SET").arg(key).arg(value).exact()
}
