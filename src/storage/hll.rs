//! HyperLogLog representations, byte for byte as Redis 7.0 lays them out.
//!
//! An HLL is not a value type of its own: it is a string whose bytes follow Redis's layout, so
//! GET, SET, DUMP, RESTORE, RDB files and replication carry it unchanged, and an HLL written
//! by Redis works here and ours works in Redis. This module owns that layout and the
//! algorithms over it; the commands (`commands::hll`) only look keys up and reply.
//!
//! Layout: a 16-byte header, `"HYLL"`, one encoding byte (0 dense, 1 sparse), three unused
//! bytes, and the cached cardinality as a little-endian u64 whose top bit set means "stale".
//! Then the registers, 16384 of them (P = 14), each holding the length of the run of zeros
//! (plus one) seen in the high 50 bits of a MurmurHash64A hash.
//!
//! - Dense: 16384 six-bit registers packed from the least significant bit up, 12288 bytes.
//! - Sparse: run-length opcodes. `00xxxxxx` ZERO (1..64 zero registers), `01xxxxxx yyyyyyyy`
//!   XZERO (1..16384 zero registers), `1vvvvvxx` VAL (1..4 registers of value 1..32). A sparse
//!   HLL turns dense when a register needs a value above 32 or when growing it would pass
//!   `hll-sparse-max-bytes`.
//!
//! Why the algorithms mirror Redis's step by step instead of, say, decoding, updating and
//! re-encoding: the exact bytes are observable (GET, DUMP, replication, and PFDEBUG), and
//! Redis's in-place sparse update does not always produce the shortest encoding. Every
//! function here reproduces the bytes Redis would produce, including for strings that only
//! look like HLLs: a sparse HLL is never trusted, every walk bounds its run lengths, and a
//! read one byte past the end sees 0, as Redis sees the terminating NUL of its strings.
//!
//! One deliberate difference, reachable only from a crafted string whose last opcode is an
//! XZERO cut short by the end: when Redis splits that opcode, it writes the last byte of the
//! new sequence past the string's new end, and its later reads of the (again cut) opcode see
//! that byte instead of the NUL. Here the byte past the end always reads as 0, which is also
//! what Redis sees once the string has been through an RDB file or a replica's full sync. The
//! stored bytes agree either way; only later walks of such a string may differ.
//!
//! Estimation is Ertl's improved estimator ("New cardinality estimation algorithms for
//! HyperLogLog sketches", arXiv:1702.01284), as in Redis 7.0, in the same floating-point
//! order so the integer results agree.

// The bytes come from clients and files: no indexing that could panic.
#![warn(clippy::indexing_slicing)]

/// Bytes before the registers.
pub const HDR_BYTES: usize = 16;
/// log2 of the register count.
pub const P: u32 = 14;
/// Hash bits used for the run of zeros.
pub const Q: u32 = 64 - P;
pub const REGISTERS: usize = 1 << P;
/// Bits per dense register.
const BITS: usize = 6;
/// The largest value a dense register can hold.
pub const REGISTER_MAX: u8 = (1 << BITS) - 1;
/// Bytes of a dense HLL, header included.
pub const DENSE_BYTES: usize = HDR_BYTES + (REGISTERS * BITS).div_ceil(8);

pub const MAGIC: &[u8; 4] = b"HYLL";
const ENCODING_AT: usize = 4;
const CARD_AT: usize = 8;
const DENSE: u8 = 0;
const SPARSE: u8 = 1;

const XZERO_BIT: u8 = 0x40;
const VAL_BIT: u8 = 0x80;
const SPARSE_VAL_VALUE_MAX: u8 = 32;
const SPARSE_VAL_LEN_MAX: usize = 4;
const SPARSE_ZERO_LEN_MAX: usize = 64;
const SPARSE_XZERO_LEN_MAX: usize = 16384;

/// 0.5 / ln(2), the estimator's alpha for an infinite register count.
const ALPHA_INF: f64 = 0.721_347_520_444_481_7;
/// The seed Redis hashes elements with.
const HASH_SEED: u64 = 0xadc8_3b19;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Encoding {
    Dense,
    Sparse,
}

impl Encoding {
    /// The name PFDEBUG ENCODING reports.
    pub fn name(self) -> &'static str {
        match self {
            Encoding::Dense => "dense",
            Encoding::Sparse => "sparse",
        }
    }
}

/// A sparse HLL whose opcodes do not cover exactly 16384 registers (Redis's INVALIDOBJ).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Corrupt;

/// Redis's `isHLLObjectOrReply` on a string's bytes: the magic, a known encoding, and the
/// exact length for dense. Sparse opcodes are checked only when walked.
pub fn encoding_of(s: &[u8]) -> Option<Encoding> {
    if s.len() < HDR_BYTES || !s.starts_with(MAGIC) {
        return None;
    }
    match s.get(ENCODING_AT) {
        Some(&DENSE) if s.len() == DENSE_BYTES => Some(Encoding::Dense),
        Some(&SPARSE) => Some(Encoding::Sparse),
        _ => None,
    }
}

/// A header: the magic, `encoding`, and a zero (valid) cached cardinality.
fn header(encoding: u8) -> [u8; HDR_BYTES] {
    let mut h = [0u8; HDR_BYTES];
    h[..4].copy_from_slice(MAGIC);
    h[ENCODING_AT] = encoding;
    h
}

/// The registers after the header (empty for a string too short to have any).
fn registers(s: &[u8]) -> &[u8] {
    s.get(HDR_BYTES..).unwrap_or_default()
}

fn registers_mut(s: &mut [u8]) -> &mut [u8] {
    s.get_mut(HDR_BYTES..).unwrap_or_default()
}

/// Counts `n` registers of value `value` (values are at most 63, always in range).
fn bump(histo: &mut Histogram, value: u8, n: u32) {
    if let Some(slot) = histo.get_mut(usize::from(value)) {
        *slot += n;
    }
}

/// An empty HLL as PFADD and PFMERGE create it: sparse, one XZERO covering every register,
/// cached cardinality 0.
pub fn new_sparse() -> Vec<u8> {
    let mut s = header(SPARSE).to_vec();
    let mut left = REGISTERS;
    while left > 0 {
        let run = left.min(SPARSE_XZERO_LEN_MAX);
        s.extend_from_slice(&xzero(run));
        left -= run;
    }
    s
}

// ---------------------------------------------------------------------------------------
// The cached cardinality.

/// The cached cardinality when it is valid (top bit clear).
pub fn cached_card(s: &[u8]) -> Option<u64> {
    let bytes: [u8; 8] = s.get(CARD_AT..CARD_AT + 8)?.try_into().ok()?;
    let card = u64::from_le_bytes(bytes);
    (card >> 63 == 0).then_some(card)
}

/// Stores a freshly computed cardinality (a value with the top bit set stays stale).
pub fn set_cached_card(s: &mut [u8], card: u64) {
    if let Some(slot) = s.get_mut(CARD_AT..CARD_AT + 8) {
        slot.copy_from_slice(&card.to_le_bytes());
    }
}

/// Marks the cached cardinality stale.
pub fn invalidate_cache(s: &mut [u8]) {
    if let Some(top) = s.get_mut(CARD_AT + 7) {
        *top |= 0x80;
    }
}

// ---------------------------------------------------------------------------------------
// Hashing.

/// MurmurHash2, 64-bit version (MurmurHash64A), reading blocks little-endian as Redis does
/// on every architecture.
pub fn murmur64a(data: &[u8], seed: u64) -> u64 {
    const M: u64 = 0xc6a4_a793_5bd1_e995;
    const R: u32 = 47;
    let mut h = seed ^ (data.len() as u64).wrapping_mul(M);
    let mut blocks = data.chunks_exact(8);
    for block in &mut blocks {
        let mut word = [0u8; 8];
        word.copy_from_slice(block);
        let mut k = u64::from_le_bytes(word).wrapping_mul(M);
        k ^= k >> R;
        k = k.wrapping_mul(M);
        h ^= k;
        h = h.wrapping_mul(M);
    }
    let tail = blocks.remainder();
    if !tail.is_empty() {
        for (i, &b) in tail.iter().enumerate() {
            h ^= u64::from(b) << (8 * i);
        }
        h = h.wrapping_mul(M);
    }
    h ^= h >> R;
    h = h.wrapping_mul(M);
    h ^= h >> R;
    h
}

/// The register an element updates and the value it proposes: the position of the first set
/// bit above the index bits (1 when the lowest is set), at most Q + 1.
pub fn pattern(element: &[u8]) -> (usize, u8) {
    let hash = murmur64a(element, HASH_SEED);
    let index = (hash & (REGISTERS as u64 - 1)) as usize;
    let rest = (hash >> P) | (1u64 << Q);
    (index, rest.trailing_zeros() as u8 + 1)
}

// ---------------------------------------------------------------------------------------
// Dense registers.

/// Register `index` of packed dense registers (`regs` is the part after the header). The
/// last register's second byte lies past the end; Redis reads the string's NUL there.
pub fn dense_get(regs: &[u8], index: usize) -> u8 {
    let byte = index * BITS / 8;
    let shift = index * BITS % 8;
    let b0 = u16::from(regs.get(byte).copied().unwrap_or(0));
    let b1 = u16::from(regs.get(byte + 1).copied().unwrap_or(0));
    (((b0 | (b1 << 8)) >> shift) as u8) & REGISTER_MAX
}

/// Sets register `index` to `value` (at most 63).
pub fn dense_put(regs: &mut [u8], index: usize, value: u8) {
    let byte = index * BITS / 8;
    let shift = index * BITS % 8;
    let mask = u16::from(REGISTER_MAX) << shift;
    let bits = u16::from(value & REGISTER_MAX) << shift;
    if let Some(b0) = regs.get_mut(byte) {
        *b0 = (*b0 & !(mask as u8)) | bits as u8;
    }
    // For the last register the high half is empty (shift is 2), so nothing is lost here.
    if let Some(b1) = regs.get_mut(byte + 1) {
        *b1 = (*b1 & !((mask >> 8) as u8)) | (bits >> 8) as u8;
    }
}

/// Raises register `index` to `count` if it is lower. True when it changed.
fn dense_raise(regs: &mut [u8], index: usize, count: u8) -> bool {
    if count > dense_get(regs, index) {
        dense_put(regs, index, count);
        true
    } else {
        false
    }
}

// ---------------------------------------------------------------------------------------
// Sparse opcodes.

/// One decoded sparse opcode.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Op {
    /// A run of zero registers (`xzero` tells which opcode encoded it).
    Zero {
        run: usize,
        xzero: bool,
    },
    Val {
        value: u8,
        run: usize,
    },
}

impl Op {
    fn run(self) -> usize {
        match self {
            Op::Zero { run, .. } | Op::Val { run, .. } => run,
        }
    }

    fn bytes(self) -> usize {
        match self {
            Op::Zero { xzero: true, .. } => 2,
            _ => 1,
        }
    }
}

/// The byte at `i`, or 0 past the end (Redis reads its strings' terminating NUL there).
fn byte_at(s: &[u8], i: usize) -> u8 {
    s.get(i).copied().unwrap_or(0)
}

/// Decodes the opcode at `p` (which must be < s.len()).
fn op_at(s: &[u8], p: usize) -> Op {
    let b = byte_at(s, p);
    if b & VAL_BIT != 0 {
        Op::Val {
            value: ((b >> 2) & 0x1f) + 1,
            run: usize::from(b & 0x3) + 1,
        }
    } else if b & XZERO_BIT != 0 {
        let run = ((usize::from(b & 0x3f) << 8) | usize::from(byte_at(s, p + 1))) + 1;
        Op::Zero { run, xzero: true }
    } else {
        Op::Zero {
            run: usize::from(b & 0x3f) + 1,
            xzero: false,
        }
    }
}

fn val(value: u8, run: usize) -> u8 {
    debug_assert!((1..=SPARSE_VAL_VALUE_MAX).contains(&value));
    debug_assert!((1..=SPARSE_VAL_LEN_MAX).contains(&run));
    VAL_BIT | ((value - 1) << 2) | (run - 1) as u8
}

fn xzero(run: usize) -> [u8; 2] {
    debug_assert!((1..=SPARSE_XZERO_LEN_MAX).contains(&run));
    let l = run - 1;
    [XZERO_BIT | (l >> 8) as u8, (l & 0xff) as u8]
}

/// Appends the shortest opcode for `run` zero registers, as Redis's sparse update does.
fn push_zeros(seq: &mut Vec<u8>, run: usize) {
    if run > SPARSE_ZERO_LEN_MAX {
        seq.extend_from_slice(&xzero(run));
    } else {
        seq.push((run - 1) as u8);
    }
}

/// Walks the sparse opcodes after the header, calling `f(first_register, op)` for each.
/// Fails when the runs overflow the register count or do not end exactly on it; `f` has
/// then seen only in-range runs.
fn walk_sparse(s: &[u8], mut f: impl FnMut(usize, Op)) -> Result<(), Corrupt> {
    let mut p = HDR_BYTES;
    let mut index = 0usize;
    while p < s.len() {
        let op = op_at(s, p);
        if index + op.run() > REGISTERS {
            return Err(Corrupt);
        }
        f(index, op);
        index += op.run();
        p += op.bytes();
    }
    if index == REGISTERS {
        Ok(())
    } else {
        Err(Corrupt)
    }
}

/// Redis's `hllSparseToDense`: rewrites a sparse HLL as dense, keeping its header (and so its
/// cached cardinality). A dense HLL is left alone.
pub fn to_dense(s: &mut Vec<u8>) -> Result<(), Corrupt> {
    if s.get(ENCODING_AT) == Some(&DENSE) {
        return Ok(());
    }
    let mut dense = s.get(..HDR_BYTES).ok_or(Corrupt)?.to_vec();
    dense.resize(DENSE_BYTES, 0);
    if let Some(encoding) = dense.get_mut(ENCODING_AT) {
        *encoding = DENSE;
    }
    let regs = registers_mut(&mut dense);
    walk_sparse(s, |first, op| {
        if let Op::Val { value, run } = op {
            for index in first..first + run {
                dense_put(regs, index, value);
            }
        }
    })?;
    *s = dense;
    Ok(())
}

/// Where the opcode covering a register sits (Redis's step 1 of `hllSparseSet`).
struct Located {
    /// Offset of the covering opcode.
    p: usize,
    op: Op,
    /// The first register it covers.
    first: usize,
    /// Offset of the opcode before it, if any.
    prev: Option<usize>,
}

fn locate(s: &[u8], index: usize) -> Result<Located, Corrupt> {
    let (mut p, mut first, mut prev) = (HDR_BYTES, 0usize, None);
    while p < s.len() {
        let op = op_at(s, p);
        if index < first + op.run() {
            return Ok(Located { p, op, first, prev });
        }
        prev = Some(p);
        p += op.bytes();
        first += op.run();
    }
    Err(Corrupt)
}

/// Redis's `hllSparseSet`: raises register `index` to `count` in a sparse HLL, in place,
/// promoting it to dense when the value does not fit a VAL opcode or the string would grow
/// past `sparse_bytes_max`. True when a register changed (the cache is then stale).
pub fn sparse_raise(
    s: &mut Vec<u8>,
    index: usize,
    count: u8,
    sparse_bytes_max: usize,
) -> Result<bool, Corrupt> {
    if count > SPARSE_VAL_VALUE_MAX {
        return promote(s, index, count);
    }
    let Located { p, op, first, prev } = locate(s, index)?;
    // A: a VAL at least as high already. B and C: a one-register opcode becomes one VAL.
    match op {
        Op::Val { value, .. } if value >= count => return Ok(false),
        Op::Val { run: 1, .. }
        | Op::Zero {
            run: 1,
            xzero: false,
        } => {
            if let Some(b) = s.get_mut(p) {
                *b = val(count, 1);
            }
            merge_vals(s, prev.unwrap_or(HDR_BYTES));
            invalidate_cache(s);
            return Ok(true);
        }
        _ => {}
    }
    // D: split the opcode into up to three.
    let seq = split(op, first, index, count);
    // The covering opcode is at least one byte of the string, so this never underflows.
    let len_new = (s.len() + seq.len()).saturating_sub(op.bytes());
    if len_new > s.len() && len_new > sparse_bytes_max {
        return promote(s, index, count);
    }
    // An XZERO cut short by the end of the string (its second byte read as the NUL) is
    // replaced too; whatever of the new sequence lands past the new length is dropped, as
    // Redis writes it past its string's end.
    let op_end = (p + op.bytes()).min(s.len());
    s.splice(p..op_end, seq);
    s.truncate(len_new);
    merge_vals(s, prev.unwrap_or(HDR_BYTES));
    invalidate_cache(s);
    Ok(true)
}

/// The opcodes replacing `op` (covering registers from `first`) once register `index` holds
/// `count`: the run before it, one VAL, the run after it; at most 5 bytes (XZERO VAL XZERO).
fn split(op: Op, first: usize, index: usize, count: u8) -> Vec<u8> {
    let last = first + op.run() - 1;
    let mut seq = Vec::with_capacity(5);
    match op {
        Op::Zero { .. } => {
            if index != first {
                push_zeros(&mut seq, index - first);
            }
            seq.push(val(count, 1));
            if index != last {
                push_zeros(&mut seq, last - index);
            }
        }
        Op::Val { value, .. } => {
            if index != first {
                seq.push(val(value, index - first));
            }
            seq.push(val(count, 1));
            if index != last {
                seq.push(val(value, last - index));
            }
        }
    }
    seq
}

/// Redis's step 4 of `hllSparseSet`: from `p`, over at most five opcodes, fuses adjacent VAL
/// opcodes of the same value whose runs fit one opcode.
fn merge_vals(s: &mut Vec<u8>, mut p: usize) {
    let mut scans_left = 5;
    while p < s.len() && scans_left > 0 {
        scans_left -= 1;
        match op_at(s, p) {
            Op::Zero { xzero, .. } => {
                p += if xzero { 2 } else { 1 };
                continue;
            }
            Op::Val { value, run } => {
                if let Some(Op::Val {
                    value: value_next,
                    run: run_next,
                }) = (p + 1 < s.len()).then(|| op_at(s, p + 1))
                {
                    if value == value_next && run + run_next <= SPARSE_VAL_LEN_MAX {
                        if let Some(b) = s.get_mut(p + 1) {
                            *b = val(value, run + run_next);
                        }
                        s.remove(p);
                        // Stay on the fused opcode: it may fuse with the next one too.
                        continue;
                    }
                }
            }
        }
        p += 1;
    }
}

/// Promotes a sparse HLL to dense, then raises the register there.
fn promote(s: &mut Vec<u8>, index: usize, count: u8) -> Result<bool, Corrupt> {
    to_dense(s)?;
    // A valid sparse HLL only promotes when the register must grow, so this is true.
    Ok(dense_raise(registers_mut(s), index, count))
}

// ---------------------------------------------------------------------------------------
// Operations on either encoding.

/// Raises register `index` to `count` in an HLL of either encoding. True when it changed.
/// Does not touch the cached cardinality of a dense HLL (callers invalidate it once).
pub fn raise(
    s: &mut Vec<u8>,
    index: usize,
    count: u8,
    sparse_bytes_max: usize,
) -> Result<bool, Corrupt> {
    match s.get(ENCODING_AT) {
        Some(&DENSE) if s.len() == DENSE_BYTES => Ok(dense_raise(registers_mut(s), index, count)),
        Some(&SPARSE) => sparse_raise(s, index, count, sparse_bytes_max),
        _ => Err(Corrupt),
    }
}

/// Redis's `hllAdd`: adds one element. True when a register changed.
pub fn add(s: &mut Vec<u8>, element: &[u8], sparse_bytes_max: usize) -> Result<bool, Corrupt> {
    let (index, count) = pattern(element);
    raise(s, index, count, sparse_bytes_max)
}

/// Register values counted by value (values above 63 cannot occur; 64 slots are enough).
pub type Histogram = [u32; 64];

/// The histogram of an HLL's registers; `Corrupt` for a sparse HLL whose runs are wrong.
pub fn histogram(s: &[u8]) -> Result<Histogram, Corrupt> {
    let mut histo = [0u32; 64];
    match encoding_of(s) {
        Some(Encoding::Dense) => {
            // Three bytes hold four registers.
            for group in registers(s).chunks_exact(3) {
                if let &[b0, b1, b2] = group {
                    bump(&mut histo, b0 & 63, 1);
                    bump(&mut histo, (b0 >> 6 | b1 << 2) & 63, 1);
                    bump(&mut histo, (b1 >> 4 | b2 << 4) & 63, 1);
                    bump(&mut histo, b2 >> 2, 1);
                }
            }
        }
        Some(Encoding::Sparse) => walk_sparse(s, |_, op| match op {
            Op::Zero { run, .. } => histo[0] += run as u32,
            Op::Val { value, run } => bump(&mut histo, value, run as u32),
        })?,
        None => return Err(Corrupt),
    }
    Ok(histo)
}

/// The histogram of unpacked registers (one byte each), for PFCOUNT over several keys.
pub fn histogram_unpacked(regs: &[u8; REGISTERS]) -> Histogram {
    let mut histo = [0u32; 64];
    for &r in regs {
        bump(&mut histo, r & 63, 1);
    }
    histo
}

/// Ertl's sigma, iterated until the sum stops changing.
fn sigma(mut x: f64) -> f64 {
    if x == 1.0 {
        return f64::INFINITY;
    }
    let (mut y, mut z) = (1.0, x);
    loop {
        x *= x;
        let z_prev = z;
        z += x * y;
        y += y;
        if z == z_prev {
            return z;
        }
    }
}

/// Ertl's tau, iterated until the sum stops changing.
fn tau(mut x: f64) -> f64 {
    if x == 0.0 || x == 1.0 {
        return 0.0;
    }
    let (mut y, mut z) = (1.0, 1.0 - x);
    loop {
        x = x.sqrt();
        let z_prev = z;
        y *= 0.5;
        z -= (1.0 - x) * (1.0 - x) * y;
        if z == z_prev {
            return z / 3.0;
        }
    }
}

/// The cardinality estimate of a register histogram (Redis's `hllCount` after the histogram).
///
/// Redis rounds with `llroundl` and converts through a double to u64; an estimate beyond
/// i64 (only crafted registers get there, e.g. all of them above Q + 1) comes out as 2^63 on
/// x86-64, and so it does here.
pub fn estimate(histo: &Histogram) -> u64 {
    let m = REGISTERS as f64;
    let q = Q as usize;
    let at = |value: usize| f64::from(histo.get(value).copied().unwrap_or(0));
    let mut z = m * tau((m - at(q + 1)) / m);
    for j in (1..=q).rev() {
        z += at(j);
        z *= 0.5;
    }
    z += m * sigma(at(0) / m);
    let e = (ALPHA_INF * m * m / z).round();
    if e.is_finite() && e < 9_223_372_036_854_775_808.0 {
        e as u64
    } else {
        1 << 63
    }
}

/// The cardinality of one HLL, computed from its registers (the cache is not consulted).
pub fn count(s: &[u8]) -> Result<u64, Corrupt> {
    Ok(estimate(&histogram(s)?))
}

/// Redis's `hllMerge`: raises each of `max` to the HLL's register.
pub fn merge_into(max: &mut [u8; REGISTERS], s: &[u8]) -> Result<(), Corrupt> {
    match encoding_of(s) {
        Some(Encoding::Dense) => {
            let regs = registers(s);
            for (index, m) in max.iter_mut().enumerate() {
                *m = (*m).max(dense_get(regs, index));
            }
            Ok(())
        }
        Some(Encoding::Sparse) => walk_sparse(s, |first, op| {
            if let Op::Val { value, run } = op {
                for m in max.iter_mut().skip(first).take(run) {
                    *m = (*m).max(value);
                }
            }
        }),
        None => Err(Corrupt),
    }
}

/// PFDEBUG DECODE's text: the opcodes as `z:N`, `Z:N` and `v:V,N`, space-separated. The
/// opcodes are listed as they are, valid or not.
pub fn decode_sparse(s: &[u8]) -> String {
    let mut text = String::new();
    let mut p = HDR_BYTES;
    while p < s.len() {
        let op = op_at(s, p);
        if !text.is_empty() {
            text.push(' ');
        }
        match op {
            Op::Zero { run, xzero: false } => text.push_str(&format!("z:{run}")),
            Op::Zero { run, xzero: true } => text.push_str(&format!("Z:{run}")),
            Op::Val { value, run } => text.push_str(&format!("v:{value},{run}")),
        }
        p += op.bytes();
    }
    text
}

/// All registers, unpacked (PFDEBUG GETREG on a dense HLL).
pub fn dense_registers(s: &[u8]) -> Vec<u8> {
    let regs = registers(s);
    (0..REGISTERS).map(|i| dense_get(regs, i)).collect()
}

// ---------------------------------------------------------------------------------------
// PFSELFTEST.

/// How much of Redis's self test to run: Redis runs 1000 register cycles and 10,000,000
/// additions.
pub struct SelfTestSize {
    pub register_cycles: u32,
    pub elements_max: u64,
}

pub const SELF_TEST_FULL: SelfTestSize = SelfTestSize {
    register_cycles: 1000,
    elements_max: 10_000_000,
};

/// Redis's PFSELFTEST: dense registers keep what is written to them, and the estimate of a
/// growing set stays within six standard errors, with the sparse and dense encodings agreeing
/// at every power of ten. `random` stands in for C's `rand()` (31 random bits are used). The
/// error is the reply text (`TESTFAILED ...`).
pub fn self_test(
    size: &SelfTestSize,
    random: &mut dyn FnMut() -> u64,
    sparse_bytes_max: usize,
) -> Result<(), String> {
    let mut regs = vec![0u8; DENSE_BYTES - HDR_BYTES];
    let mut expected = [0u8; REGISTERS];
    for _ in 0..size.register_cycles {
        for (i, e) in expected.iter_mut().enumerate() {
            *e = (random() as u8) & REGISTER_MAX;
            dense_put(&mut regs, i, *e);
        }
        for (i, &e) in expected.iter().enumerate() {
            let got = dense_get(&regs, i);
            if got != e {
                return Err(format!(
                    "TESTFAILED Register {i} should be {e} but is {got}"
                ));
            }
        }
    }
    let mut dense = header(DENSE).to_vec();
    dense.resize(DENSE_BYTES, 0);
    let mut sparse = new_sparse();
    let relative_error = 1.04 / (REGISTERS as f64).sqrt();
    let seed = (random() & 0x7fff_ffff) | (random() & 0x7fff_ffff) << 32;
    let mut checkpoint = 1u64;
    for j in 1..=size.elements_max {
        let element = (j ^ seed).to_le_bytes();
        let (index, run) = pattern(&element);
        dense_raise(registers_mut(&mut dense), index, run);
        // A fresh sparse HLL is never corrupt.
        let _ = raise(&mut sparse, index, run, sparse_bytes_max);
        if j != checkpoint {
            continue;
        }
        if j < (sparse_bytes_max / 2) as u64 && encoding_of(&sparse) != Some(Encoding::Sparse) {
            return Err("TESTFAILED sparse encoding not used".to_string());
        }
        let card = count(&dense).unwrap_or(0);
        if count(&sparse) != Ok(card) {
            return Err("TESTFAILED dense/sparse disagree".to_string());
        }
        let error_abs = checkpoint.abs_diff(card);
        // Cardinality 10 sometimes collides; Redis allows an error of 1 there.
        let error_max = if j == 10 {
            1
        } else {
            (relative_error * 6.0 * checkpoint as f64).ceil() as u64
        };
        if error_abs > error_max {
            return Err(format!(
                "TESTFAILED Too big error. card:{checkpoint} abserr:{error_abs}"
            ));
        }
        checkpoint *= 10;
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::indexing_slicing)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn constants_are_redis_s() {
        assert_eq!(DENSE_BYTES, 12304);
        let alpha: f64 = "0.721347520444481703680".parse().expect("float");
        assert_eq!(ALPHA_INF, alpha);
        let empty = new_sparse();
        assert_eq!(empty, b"HYLL\x01\0\0\0\0\0\0\0\0\0\0\0\x7f\xff");
        assert_eq!(count(&empty), Ok(0));
        assert_eq!(cached_card(&empty), Some(0));
    }

    #[test]
    fn murmur_matches_the_reference() {
        // MurmurHash64A's published algorithm compiled with gcc, seed 0xadc83b19.
        for (input, hash) in [
            (&b""[..], 0xd8df_ea65_85bc_9732u64),
            (b"a", 0x53d2_470a_9b43_b1a7),
            (b"abc", 0x77ec_90ae_b374_e502),
            (b"hello world", 0xa919_bc30_51f6_24b7),
            (b"0123456789abcdef", 0x9f85_6542_8eaa_573d),
            (b"0123456789abcdefX", 0xc93a_9e0f_768d_ebf9),
        ] {
            assert_eq!(murmur64a(input, HASH_SEED), hash, "{input:?}");
        }
        // Registers of a, b and c as Redis's PFDEBUG DECODE shows them.
        let mut found: Vec<(usize, u8)> = [&b"a"[..], b"b", b"c"].map(pattern).to_vec();
        found.sort_unstable();
        assert_eq!(found, [(8436, 1), (12711, 2), (15780, 1)]);
    }

    #[test]
    fn cache_bits() {
        let mut s = new_sparse();
        set_cached_card(&mut s, 1234);
        assert_eq!(cached_card(&s), Some(1234));
        invalidate_cache(&mut s);
        assert_eq!(cached_card(&s), None);
        set_cached_card(&mut s, 1 << 63);
        assert_eq!(cached_card(&s), None);
    }

    #[test]
    fn decode_lists_opcodes_as_they_are() {
        let mut s = new_sparse();
        s.truncate(HDR_BYTES);
        s.extend_from_slice(&[0x00, 0x3f, 0x80, 0xff, 0x41]);
        assert_eq!(decode_sparse(&s), "z:1 z:64 v:1,1 v:32,4 Z:257");
        assert_eq!(decode_sparse(&new_sparse()), "Z:16384");
        assert_eq!(decode_sparse(&s[..HDR_BYTES]), "");
    }

    /// The registers a sequence of (index, value) raises gives, kept as a plain array.
    fn model(raises: &[(usize, u8)]) -> Vec<u8> {
        let mut regs = vec![0u8; REGISTERS];
        for &(i, v) in raises {
            regs[i] = regs[i].max(v);
        }
        regs
    }

    /// One register of either encoding.
    fn register_at(s: &[u8], index: usize) -> u8 {
        match encoding_of(s) {
            Some(Encoding::Dense) => dense_get(registers(s), index),
            _ => match locate(s, index).expect("valid").op {
                Op::Val { value, .. } => value,
                Op::Zero { .. } => 0,
            },
        }
    }

    fn registers_of(s: &[u8]) -> Vec<u8> {
        let mut dense = s.to_vec();
        to_dense(&mut dense).expect("valid");
        dense_registers(&dense)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        #[test]
        fn dense_registers_keep_their_values(seed in any::<u64>()) {
            let mut x = seed | 1;
            let values: Vec<u8> = (0..REGISTERS)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    (x >> 58) as u8
                })
                .collect();
            let mut regs = vec![0u8; DENSE_BYTES - HDR_BYTES];
            for (i, &v) in values.iter().enumerate() {
                dense_put(&mut regs, i, v);
            }
            for (i, &v) in values.iter().enumerate() {
                prop_assert_eq!(dense_get(&regs, i), v);
            }
        }

        /// In-place sparse updates, with splits, fusions and promotion at any size, always
        /// hold exactly the registers raised, and count as the dense form does.
        #[test]
        fn sparse_updates_match_a_model(
            raises in prop::collection::vec(
                (prop_oneof![0usize..REGISTERS, 8000usize..8040], 1u8..=51),
                0..300,
            ),
            sparse_max in prop_oneof![Just(3000usize), 0usize..400],
        ) {
            let mut s = new_sparse();
            for &(i, v) in &raises {
                let before = register_at(&s, i);
                prop_assert_eq!(raise(&mut s, i, v, sparse_max), Ok(v > before));
                prop_assert_eq!(register_at(&s, i), v.max(before));
                if encoding_of(&s) == Some(Encoding::Sparse) {
                    // It grows only up to the limit (the empty HLL may already be above it).
                    prop_assert!(s.len() <= sparse_max.max(new_sparse().len()));
                }
            }
            prop_assert!(encoding_of(&s) == Some(Encoding::Dense) || walk_sparse(&s, |_, _| ()).is_ok());
            let expected = model(&raises);
            prop_assert_eq!(&registers_of(&s), &expected);
            let mut dense = s.clone();
            to_dense(&mut dense).expect("valid");
            prop_assert_eq!(count(&s), count(&dense));
            let mut max = [0u8; REGISTERS];
            merge_into(&mut max, &s).expect("valid");
            prop_assert_eq!(&max[..], &expected[..]);
            prop_assert_eq!(estimate(&histogram_unpacked(&max)), count(&s).expect("valid"));
        }

        /// No string with an HLL header, however broken, makes any operation panic.
        #[test]
        fn corrupt_strings_never_panic(
            encoding in prop_oneof![Just(0u8), Just(1u8), any::<u8>()],
            body in prop_oneof![
                prop::collection::vec(any::<u8>(), 0..64),
                prop::collection::vec(any::<u8>(), DENSE_BYTES - HDR_BYTES..=DENSE_BYTES - HDR_BYTES),
            ],
            elements in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..12), 0..8),
        ) {
            let mut s = b"HYLL".to_vec();
            s.push(encoding);
            s.extend_from_slice(&[0; 11]);
            s.extend_from_slice(&body);
            let _ = encoding_of(&s);
            let _ = count(&s);
            let _ = decode_sparse(&s);
            let mut max = [0u8; REGISTERS];
            let _ = merge_into(&mut max, &s);
            let mut dense = s.clone();
            let _ = to_dense(&mut dense);
            let _ = dense_registers(&s);
            for e in &elements {
                let _ = add(&mut s, e, 40);
            }
            let _ = count(&s);
        }
    }
}
