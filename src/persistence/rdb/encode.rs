//! Writing RDB: primitives (lengths, strings), values, entries, and the whole file.
//!
//! Everything is first encoded into a byte buffer (`encode_entry` and friends append to a
//! `Vec<u8>`), and `RdbWriter` moves the buffer to its `Write` in large chunks, feeding the
//! checksum and the byte count on the way. The same value encoder serves DUMP payloads.
//!
//! The choices of encoding mirror Redis 7.0.15's `rdbSaveObject` and `rdbSaveRawString`
//! (see the module essay in `mod.rs`); each function names its Redis counterpart.

use super::{
    containers, crc64::crc64, intset, listpack::ListpackWriter, lzf, opcodes, types, RdbOptions,
    RDB_VERSION, REDIS_VERSION,
};
use crate::protocol::write::{fmt_double, itoa_buf};
use crate::storage::hash::Hash;
use crate::storage::list::List;
use crate::storage::listpack::Item;
use crate::storage::set::{MemberRef, Set};
use crate::storage::value::{parse_canonical_i64, RStr};
use crate::storage::zset::ZSet;
use crate::storage::{Db, Entry, ShardData, Value};
use std::io::{self, Write};

/// Strings at most this long are never worth compressing (Redis's threshold).
const COMPRESS_LEN_MIN: usize = 20;
/// Compression must save at least this many bytes to be used (Redis's `len - 4` budget).
const COMPRESS_SAVING_MIN: usize = 4;
/// Strings longer than this cannot be integer-encoded ("-2147483648" is 11 bytes).
const INT_STRING_LEN_MAX: usize = 11;
/// A quicklist element this large gets a PLAIN node (Redis's `packed_threshold` default).
const PLAIN_NODE_BYTES_MIN: usize = 1 << 30;
/// `RdbWriter` hands its buffer to the `Write` once it holds this much.
const WRITE_CHUNK_BYTES: usize = 64 * 1024;

// ----- Primitives -----

/// `rdbSaveLen`: 6-bit, 14-bit, 32-bit or 64-bit length.
pub(crate) fn put_len(out: &mut Vec<u8>, len: u64) {
    if len < 1 << 6 {
        out.push(len as u8);
    } else if len < 1 << 14 {
        out.push(0x40 | (len >> 8) as u8);
        out.push(len as u8);
    } else if let Ok(l) = u32::try_from(len) {
        out.push(0x80);
        out.extend_from_slice(&l.to_be_bytes());
    } else {
        out.push(0x81);
        out.extend_from_slice(&len.to_be_bytes());
    }
}

/// `rdbEncodeInteger`: the 8/16/32-bit special encodings; false when `v` needs more.
fn put_int_encoded(out: &mut Vec<u8>, v: i64) -> bool {
    if let Ok(b) = i8::try_from(v) {
        out.push(0xc0);
        out.push(b as u8);
    } else if let Ok(h) = i16::try_from(v) {
        out.push(0xc1);
        out.extend_from_slice(&h.to_le_bytes());
    } else if let Ok(w) = i32::try_from(v) {
        out.push(0xc2);
        out.extend_from_slice(&w.to_le_bytes());
    } else {
        return false;
    }
    true
}

/// `rdbSaveRawString`: integer-encoded when possible, LZF when allowed and worth it,
/// otherwise length and bytes.
pub(crate) fn put_string(out: &mut Vec<u8>, s: &[u8], compress: bool) {
    if s.len() <= INT_STRING_LEN_MAX {
        if let Some(v) = parse_canonical_i64(s) {
            if put_int_encoded(out, v) {
                return;
            }
        }
    }
    if compress && s.len() > COMPRESS_LEN_MIN {
        if let Some(packed) = lzf::compress(s, s.len() - COMPRESS_SAVING_MIN) {
            out.push(0xc3);
            put_len(out, packed.len() as u64);
            put_len(out, s.len() as u64);
            out.extend_from_slice(&packed);
            return;
        }
    }
    put_len(out, s.len() as u64);
    out.extend_from_slice(s);
}

/// `rdbSaveLongLongAsStringObject`: an integer value as a string.
fn put_int_string(out: &mut Vec<u8>, v: i64) {
    if !put_int_encoded(out, v) {
        let mut buf = itoa_buf(v);
        let digits = buf.as_bytes_mut();
        put_len(out, digits.len() as u64);
        out.extend_from_slice(digits);
    }
}

// ----- Values -----

/// `rdbSaveObjectType`: the type byte a value is written with.
pub(crate) fn type_byte(v: &Value) -> u8 {
    match v {
        Value::Str(_) => types::STRING,
        Value::List(_) => types::LIST_QUICKLIST_2,
        Value::Set(s) if s.intset_width().is_some() => types::SET_INTSET,
        Value::Set(_) => types::SET,
        Value::Hash(h) if h.is_packed() => types::HASH_LISTPACK,
        Value::Hash(_) => types::HASH,
        Value::ZSet(z) if z.is_listpack() => types::ZSET_LISTPACK,
        Value::ZSet(_) => types::ZSET_2,
        Value::Stream(_) => types::STREAM_LISTPACKS_2,
    }
}

/// `rdbSaveObject`: the value's body, after its type byte.
pub(crate) fn put_value(out: &mut Vec<u8>, v: &Value, compress: bool) {
    match v {
        Value::Str(RStr::Int(n)) => put_int_string(out, *n),
        Value::Str(RStr::Emb(b)) => put_string(out, b, compress),
        Value::Str(RStr::Raw(b)) => put_string(out, b, compress),
        Value::List(l) => put_list(out, l, compress),
        Value::Set(s) => put_set(out, s, compress),
        Value::Hash(h) => put_hash(out, h, compress),
        Value::ZSet(z) => put_zset(out, z, compress),
        Value::Stream(s) => super::stream::put_stream(out, s, compress),
    }
}

/// QUICKLIST_2: the node count, then per node its container and its blob.
fn put_list(out: &mut Vec<u8>, list: &List, compress: bool) {
    put_len(out, list.nodes().filter(|n| !n.is_empty()).count() as u64);
    for node in list.nodes().filter(|n| !n.is_empty()) {
        let plain = node.len() == 1 && node.iter().all(|it| it.len() >= PLAIN_NODE_BYTES_MIN);
        if plain {
            put_len(out, containers::PLAIN);
            for it in node.iter() {
                it.with_bytes(|b| put_string(out, b, compress));
            }
            continue;
        }
        put_len(out, containers::PACKED);
        let mut lp = ListpackWriter::new();
        for it in node.iter() {
            lp.push_item(it);
        }
        put_string(out, &lp.finish(), compress);
    }
}

/// SET_INTSET (the intset blob, at the set's own width) or SET (count, then members).
fn put_set(out: &mut Vec<u8>, set: &Set, compress: bool) {
    if let Some(width) = set.intset_width() {
        let members = set.iter().map(|m| match m {
            MemberRef::Int(n) => n,
            // An intset yields integers only.
            MemberRef::Bytes(b) => parse_canonical_i64(b).unwrap_or_default(),
        });
        put_string(out, &intset::encode(width, members), compress);
        return;
    }
    put_len(out, set.len() as u64);
    for m in set.iter() {
        m.with_bytes(|b| put_string(out, b, compress));
    }
}

/// HASH_LISTPACK (fields and values alternating, in the hash's order) or HASH (count, then
/// field and value strings).
fn put_hash(out: &mut Vec<u8>, hash: &Hash, compress: bool) {
    if hash.is_packed() {
        let mut lp = ListpackWriter::new();
        for (field, value) in hash.iter() {
            lp.push_item(field);
            lp.push_item(value);
        }
        put_string(out, &lp.finish(), compress);
        return;
    }
    put_len(out, hash.len() as u64);
    for (field, value) in hash.iter() {
        field.with_bytes(|b| put_string(out, b, compress));
        value.with_bytes(|b| put_string(out, b, compress));
    }
}

/// ZSET_LISTPACK (the pairs in order, in one listpack) or ZSET_2: the count, then members
/// with their scores as binary doubles, greatest first, as Redis walks its skiplist backwards
/// (so its loader inserts each at the head).
fn put_zset(out: &mut Vec<u8>, zset: &ZSet, compress: bool) {
    if zset.is_listpack() {
        put_string(out, &zset_listpack(zset.iter()), compress);
        return;
    }
    put_len(out, zset.len() as u64);
    if zset.is_empty() {
        return;
    }
    for (member, score) in zset.iter_from(zset.len() - 1, true) {
        member.with_bytes(|b| put_string(out, b, compress));
        out.extend_from_slice(&score.to_le_bytes());
    }
}

/// A listpack of (member, score) pairs as `zzlInsertAt` builds it: integral scores Redis's
/// `double2ll` accepts as integer entries, others as their `%.17g` text.
fn zset_listpack<'a>(pairs: impl Iterator<Item = (Item<'a>, f64)>) -> Vec<u8> {
    let mut lp = ListpackWriter::new();
    for (member, score) in pairs {
        lp.push_item(member);
        match double2ll(score) {
            Some(n) => lp.push_int(n),
            None => lp.push_bytes(fmt_double(score).as_bytes()),
        }
    }
    lp.finish()
}

/// Redis's `double2ll`: the integer a double equals exactly, when within ±2^62.
fn double2ll(d: f64) -> Option<i64> {
    const LIMIT: f64 = (i64::MAX / 2) as f64;
    if !(-LIMIT..=LIMIT).contains(&d) {
        return None;
    }
    let n = d as i64;
    (n as f64 == d).then_some(n)
}

// ----- Entries -----

/// Appends one key as it appears in an RDB: EXPIRETIME_MS when the key has a deadline, IDLE
/// when `opts.lru_clock_secs` is set, then type, key and value (`rdbSaveKeyValuePair`).
pub fn encode_entry(out: &mut Vec<u8>, key: &[u8], entry: &Entry, opts: &RdbOptions) {
    if entry.expire_ms != 0 {
        out.push(opcodes::EXPIRETIME_MS);
        out.extend_from_slice(&entry.expire_ms.to_le_bytes());
    }
    if let Some(now) = opts.lru_clock_secs {
        out.push(opcodes::IDLE);
        put_len(out, now.saturating_sub(entry.lru_secs) as u64);
    }
    out.push(type_byte(&entry.value));
    put_string(out, key, opts.compression);
    put_value(out, &entry.value, opts.compression);
}

/// A DUMP payload: type, value, RDB version (u16 LE) and CRC-64 (u64 LE) of all before it,
/// with compression on (Redis's default `rdbcompression yes`).
pub fn dump_payload(value: &Value) -> Vec<u8> {
    dump_payload_with(value, true)
}

/// `dump_payload` with compression chosen by the caller (`rdbcompression`).
pub fn dump_payload_with(value: &Value, compression: bool) -> Vec<u8> {
    let mut out = Vec::new();
    out.push(type_byte(value));
    put_value(&mut out, value, compression);
    out.extend_from_slice(&(RDB_VERSION as u16).to_le_bytes());
    let crc = crc64(0, &out);
    out.extend_from_slice(&crc.to_le_bytes());
    out
}

// ----- Databases -----

/// One logical database across shards, for writing without copying the dataset: the
/// database `index` of each shard that holds keys of it. Build them with `from_shards`
/// while every shard is stopped (or in a forked child, where the memory is a snapshot).
pub struct DbView<'a> {
    pub index: usize,
    pub parts: Vec<&'a Db>,
}

impl<'a> DbView<'a> {
    /// One view per database index that holds keys in any shard, in index order.
    pub fn from_shards(shards: &[&'a ShardData]) -> Vec<DbView<'a>> {
        let databases = shards.iter().map(|s| s.dbs.len()).max().unwrap_or(0);
        (0..databases)
            .map(|index| DbView {
                index,
                parts: shards
                    .iter()
                    .filter_map(|s| s.dbs.get(index))
                    .filter(|db| db.keys > 0)
                    .collect(),
            })
            .filter(|v| !v.parts.is_empty())
            .collect()
    }

    /// Keys in the database (RESIZEDB's first hint).
    pub fn keys(&self) -> u64 {
        self.parts.iter().map(|d| d.keys as u64).sum()
    }

    /// Keys with an expiry (RESIZEDB's second hint).
    pub fn volatile(&self) -> u64 {
        self.parts.iter().map(|d| d.volatile as u64).sum()
    }

    /// Every key and entry, shard by shard, slot by slot.
    pub fn entries(&self) -> impl Iterator<Item = (&'a [u8], &'a Entry)> + '_ {
        self.parts
            .iter()
            .flat_map(|db| db.used_slots_from(0).flat_map(|(_, t)| t.iter()))
    }
}

/// Streams an RDB file to a `Write`: the header on creation, then function libraries and
/// databases in the order the caller gives them, then `finish` for EOF and the checksum.
pub struct RdbWriter<W: Write> {
    w: W,
    buf: Vec<u8>,
    crc: u64,
    bytes: u64,
    opts: RdbOptions,
}

impl<W: Write> RdbWriter<W> {
    /// Writes the signature and the standard AUX fields.
    pub fn new(w: W, opts: &RdbOptions) -> io::Result<Self> {
        Self::with_aux(w, opts, &[])
    }

    /// Like `new`, with extra AUX fields (replication: `repl-stream-db`, `repl-id`,
    /// `repl-offset`) between `used-mem` and `aof-base`, where Redis writes them.
    pub fn with_aux(w: W, opts: &RdbOptions, extra: &[(&[u8], &[u8])]) -> io::Result<Self> {
        let mut rw = RdbWriter {
            w,
            buf: Vec::with_capacity(WRITE_CHUNK_BYTES * 2),
            crc: 0,
            bytes: 0,
            opts: opts.clone(),
        };
        rw.buf
            .extend_from_slice(format!("REDIS{RDB_VERSION:04}").as_bytes());
        let ctime = opts
            .ctime_secs
            .unwrap_or_else(|| crate::util::now_ms() / 1000);
        rw.aux(b"redis-ver", REDIS_VERSION.as_bytes())?;
        rw.aux(b"redis-bits", b"64")?;
        rw.aux(b"ctime", ctime.to_string().as_bytes())?;
        rw.aux(b"used-mem", opts.used_mem_bytes.to_string().as_bytes())?;
        for (k, v) in extra {
            rw.aux(k, v)?;
        }
        rw.aux(b"aof-base", if opts.aof_base { b"1" } else { b"0" })?;
        Ok(rw)
    }

    /// An AUX field (`rdbSaveAuxField`).
    pub fn aux(&mut self, key: &[u8], value: &[u8]) -> io::Result<()> {
        self.buf.push(opcodes::AUX);
        put_string(&mut self.buf, key, self.opts.compression);
        put_string(&mut self.buf, value, self.opts.compression);
        self.maybe_flush()
    }

    /// A function library's code (FUNCTION2); Redis writes them before the databases.
    pub fn function(&mut self, code: &[u8]) -> io::Result<()> {
        self.buf.push(opcodes::FUNCTION2);
        put_string(&mut self.buf, code, self.opts.compression);
        self.maybe_flush()
    }

    /// SELECTDB and RESIZEDB, starting a database (`rdbSaveDb`'s prologue).
    pub fn select_db(&mut self, index: usize, keys: u64, volatile: u64) -> io::Result<()> {
        self.buf.push(opcodes::SELECTDB);
        put_len(&mut self.buf, index as u64);
        self.buf.push(opcodes::RESIZEDB);
        put_len(&mut self.buf, keys);
        put_len(&mut self.buf, volatile);
        self.maybe_flush()
    }

    /// One key of the database last selected.
    pub fn entry(&mut self, key: &[u8], entry: &Entry) -> io::Result<()> {
        encode_entry(&mut self.buf, key, entry, &self.opts);
        self.maybe_flush()
    }

    /// A whole database; nothing when it has no keys.
    pub fn db(&mut self, view: &DbView<'_>) -> io::Result<()> {
        if view.keys() == 0 {
            return Ok(());
        }
        self.select_db(view.index, view.keys(), view.volatile())?;
        for (key, entry) in view.entries() {
            self.entry(key, entry)?;
        }
        Ok(())
    }

    /// EOF and the checksum footer; returns the writer (flushed) and the bytes written.
    pub fn finish(mut self) -> io::Result<(W, u64)> {
        self.buf.push(opcodes::EOF);
        self.flush_buf()?;
        let footer = if self.opts.checksum { self.crc } else { 0 };
        self.w.write_all(&footer.to_le_bytes())?;
        self.w.flush()?;
        Ok((self.w, self.bytes + 8))
    }

    fn maybe_flush(&mut self) -> io::Result<()> {
        if self.buf.len() >= WRITE_CHUNK_BYTES {
            self.flush_buf()?;
        }
        Ok(())
    }

    fn flush_buf(&mut self) -> io::Result<()> {
        if self.opts.checksum {
            self.crc = crc64(self.crc, &self.buf);
        }
        self.w.write_all(&self.buf)?;
        self.bytes += self.buf.len() as u64;
        self.buf.clear();
        if self.buf.capacity() > WRITE_CHUNK_BYTES * 4 {
            // A huge value grew the buffer; give the memory back.
            self.buf.shrink_to(WRITE_CHUNK_BYTES * 2);
        }
        Ok(())
    }
}

/// Writes a whole RDB v10 to `w` (`rdbSaveRio`): signature, AUX fields, each non-empty
/// database of `dbs`, EOF and the CRC-64 footer. Returns the bytes written.
pub fn write_rdb<W: Write>(w: &mut W, dbs: &[DbView<'_>], opts: &RdbOptions) -> io::Result<u64> {
    let mut rw = RdbWriter::new(w, opts)?;
    for view in dbs {
        rw.db(view)?;
    }
    let (_, bytes) = rw.finish()?;
    Ok(bytes)
}

/// A FUNCTION DUMP payload: each library's code as a FUNCTION2 record, then the DUMP footer
/// (RDB version, CRC-64), as Redis's `functionDumpCommand` writes it.
pub fn functions_dump_payload(codes: &[&[u8]]) -> Vec<u8> {
    let mut out = Vec::new();
    for code in codes {
        out.push(opcodes::FUNCTION2);
        // Compressed when worthwhile, as Redis's DUMP writes with rdbcompression on.
        put_string(&mut out, code, true);
    }
    out.extend_from_slice(&(RDB_VERSION as u16).to_le_bytes());
    let crc = crc64(0, &out);
    out.extend_from_slice(&crc.to_le_bytes());
    out
}
