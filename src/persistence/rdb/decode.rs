//! Reading RDB: a counting, checksumming reader; the primitives; every value encoding Redis
//! 7.0 loads; the opcode loop of a whole file; and RESTORE payloads.
//!
//! Values are rebuilt through the storage types' public constructors, in the encoding
//! Redis's `rdbLoadObject` would choose under the current thresholds (for example a SET
//! whose members are all integers and few enough becomes an intset; a hash read from a
//! listpack blob with more fields than `hash-max-listpack-entries` becomes a hashtable).
//! Empty collections are skipped and counted, as Redis skips them.

#![deny(clippy::indexing_slicing)]

use super::{
    array_at, containers, crc64::crc64, intset, listpack, lzf, opcodes, types, ziplist, zipmap,
    RdbError, RDB_VERSION,
};
use crate::storage::hash::{Hash, Limits as HashLimits};
use crate::storage::list::{End, Fill, List};
use crate::storage::listpack::Item;
use crate::storage::set::{intset_entries_max, IntSet, MemberRef, Set};
use crate::storage::value::RStr;
use crate::storage::zset::ZSet;
use crate::storage::{Entry, Value};
use std::io::{ErrorKind, Read};

/// Strings are read in pieces of at most this size, so a corrupt length costs no more memory
/// than the bytes that really follow it.
const STRING_CHUNK_BYTES: usize = 1 << 20;
/// At most this many skipped empty keys are named in `RdbStats::empty_keys`.
const EMPTY_KEYS_NAMED_MAX: usize = 64;
/// Collections are preallocated for at most this many elements; they grow past it as
/// elements actually arrive.
const PREALLOC_ITEMS_MAX: usize = 4096;

/// One key read from an RDB.
#[derive(Debug)]
pub struct LoadedEntry {
    /// The database (SELECTDB) the key belongs to; the sink checks it against `databases`.
    pub db: usize,
    pub key: Vec<u8>,
    /// The value, its expiry (0 = none; a deadline in the past is kept as it is, the caller
    /// decides whether to drop the key as Redis's master does) and its LRU time (from IDLE
    /// when present, else now).
    pub entry: Entry,
    /// The LFU counter (FREQ opcode), when the file has one.
    pub lfu_freq: Option<u8>,
}

/// What `read_rdb` saw besides the keys.
#[derive(Debug, Default, Clone)]
pub struct RdbStats {
    /// The format version in the signature.
    pub version: u32,
    /// Keys handed to the sink.
    pub keys: u64,
    /// Keys among them with an expiry.
    pub keys_with_expiry: u64,
    /// Keys whose value was an empty collection, skipped as Redis skips them.
    pub empty_keys_skipped: u64,
    /// The first `EMPTY_KEYS_NAMED_MAX` of those keys (the loader logs them, as Redis does).
    pub empty_keys: Vec<Vec<u8>>,
    /// Function library code (FUNCTION2 payloads, and the rc1/rc2 FUNCTION opcode translated
    /// to the same form), in file order, for the scripting layer to load.
    pub functions: Vec<Vec<u8>>,
    /// Bytes read, footer included.
    pub bytes: u64,
    /// The stored checksum, when the file has a nonzero one (it was verified).
    pub checksum: Option<u64>,
}

/// A string as stored: integer-encoded or bytes.
enum RString {
    Int(i64),
    Bytes(Vec<u8>),
}

impl RString {
    fn into_bytes(self) -> Vec<u8> {
        match self {
            RString::Int(n) => crate::protocol::write::itoa_buf(n).as_bytes_mut().to_vec(),
            RString::Bytes(b) => b,
        }
    }
}

/// A length, or the special string encoding announced in its place.
enum Len {
    Len(u64),
    Encoded(u8),
}

/// Counts the offset and keeps the CRC-64 of everything read.
struct Reader<'r, R: Read + ?Sized> {
    r: &'r mut R,
    offset: u64,
    crc: u64,
    /// Deep sanitization (`sanitize-dump-payload`): also the consistency checks Redis runs
    /// only then.
    deep: bool,
}

type Res<T> = Result<T, RdbError>;

impl<'r, R: Read + ?Sized> Reader<'r, R> {
    fn new(r: &'r mut R) -> Self {
        Reader {
            r,
            offset: 0,
            crc: 0,
            deep: super::deep_sanitize_file(),
        }
    }

    fn corrupt(&self, offset: u64, reason: impl Into<String>) -> RdbError {
        RdbError::Corrupt {
            offset,
            reason: reason.into(),
        }
    }

    fn fill(&mut self, buf: &mut [u8]) -> Res<()> {
        match self.r.read_exact(buf) {
            Ok(()) => {
                self.crc = crc64(self.crc, buf);
                self.offset += buf.len() as u64;
                Ok(())
            }
            Err(e) if e.kind() == ErrorKind::UnexpectedEof => {
                Err(self.corrupt(self.offset, "unexpected end of file (truncated RDB)"))
            }
            Err(e) => Err(RdbError::Io(e)),
        }
    }

    fn array<const N: usize>(&mut self) -> Res<[u8; N]> {
        let mut b = [0u8; N];
        self.fill(&mut b)?;
        Ok(b)
    }

    fn u8(&mut self) -> Res<u8> {
        let [b] = self.array::<1>()?;
        Ok(b)
    }

    /// `n` bytes, read in bounded chunks: the vector grows only as bytes really arrive.
    fn raw(&mut self, n: u64) -> Res<Vec<u8>> {
        let at = self.offset;
        let n = usize::try_from(n).map_err(|_| self.corrupt(at, "string length too large"))?;
        let mut out = Vec::with_capacity(n.min(STRING_CHUNK_BYTES));
        let mut chunk = vec![0u8; n.min(STRING_CHUNK_BYTES)];
        while out.len() < n {
            let step = (n - out.len()).min(STRING_CHUNK_BYTES);
            let piece = chunk
                .get_mut(..step)
                .ok_or_else(|| self.corrupt(at, "string chunk"))?;
            self.fill(piece)?;
            out.extend_from_slice(piece);
        }
        Ok(out)
    }

    /// `rdbLoadLenByRef`.
    fn len_or_encoding(&mut self) -> Res<Len> {
        let at = self.offset;
        let first = self.u8()?;
        Ok(match first >> 6 {
            0 => Len::Len((first & 0x3f) as u64),
            1 => Len::Len(((first as u64 & 0x3f) << 8) | self.u8()? as u64),
            3 => Len::Encoded(first & 0x3f),
            _ if first == 0x80 => Len::Len(u32::from_be_bytes(self.array()?) as u64),
            _ if first == 0x81 => Len::Len(u64::from_be_bytes(self.array()?)),
            _ => return Err(self.corrupt(at, format!("unknown length encoding 0x{first:02x}"))),
        })
    }

    fn len(&mut self) -> Res<u64> {
        let at = self.offset;
        match self.len_or_encoding()? {
            Len::Len(n) => Ok(n),
            Len::Encoded(_) => Err(self.corrupt(at, "string encoding where a length belongs")),
        }
    }

    /// A length used as a count of things that follow (bounded by the address space).
    fn count(&mut self) -> Res<usize> {
        let at = self.offset;
        let n = self.len()?;
        usize::try_from(n).map_err(|_| self.corrupt(at, format!("count {n} too large")))
    }

    /// `rdbGenericLoadStringObject`.
    fn string(&mut self) -> Res<RString> {
        let at = self.offset;
        match self.len_or_encoding()? {
            Len::Len(n) => Ok(RString::Bytes(self.raw(n)?)),
            Len::Encoded(0) => Ok(RString::Int(self.u8()? as i8 as i64)),
            Len::Encoded(1) => Ok(RString::Int(i16::from_le_bytes(self.array()?) as i64)),
            Len::Encoded(2) => Ok(RString::Int(i32::from_le_bytes(self.array()?) as i64)),
            Len::Encoded(3) => self.lzf_string(at).map(RString::Bytes),
            Len::Encoded(e) => Err(self.corrupt(at, format!("unknown string encoding {e}"))),
        }
    }

    fn lzf_string(&mut self, at: u64) -> Res<Vec<u8>> {
        let compressed_len = self.len()?;
        let len = self.len()?;
        if len > compressed_len.saturating_mul(lzf::EXPANSION_MAX as u64) {
            return Err(self.corrupt(
                at,
                format!("LZF string of {compressed_len} bytes claims {len} bytes uncompressed"),
            ));
        }
        let packed = self.raw(compressed_len)?;
        lzf::decompress(&packed, len as usize)
            .map_err(|e| self.corrupt(at, format!("invalid LZF compressed string: {e}")))
    }

    fn bytes(&mut self) -> Res<Vec<u8>> {
        Ok(self.string()?.into_bytes())
    }

    /// A packed blob (listpack, ziplist, intset, zipmap) and the offset it started at.
    fn blob(&mut self) -> Res<(u64, Vec<u8>)> {
        let at = self.offset;
        Ok((at, self.bytes()?))
    }

    /// `rdbLoadDoubleValue`: the text form of old ZSETs (253 nan, 254 +inf, 255 -inf).
    fn text_double(&mut self) -> Res<f64> {
        let at = self.offset;
        match self.u8()? {
            253 => Ok(f64::NAN),
            254 => Ok(f64::INFINITY),
            255 => Ok(f64::NEG_INFINITY),
            n => {
                let text = self.raw(n as u64)?;
                parse_double(&text).ok_or_else(|| self.corrupt(at, "invalid double"))
            }
        }
    }

    fn binary_double(&mut self) -> Res<f64> {
        Ok(f64::from_le_bytes(self.array()?))
    }
}

/// A score or double written as text (`%.17g`, integers, `inf`, `-inf`).
fn parse_double(text: &[u8]) -> Option<f64> {
    std::str::from_utf8(text).ok()?.trim().parse::<f64>().ok()
}

// ----- Values -----

/// `rdbLoadObject`: the value of type `t`, `None` for an empty collection.
fn read_value<R: Read + ?Sized>(rd: &mut Reader<R>, t: u8, key: &[u8]) -> Res<Option<Value>> {
    let at = rd.offset;
    match t {
        types::STRING => Ok(Some(Value::Str(match rd.string()? {
            RString::Int(n) => RStr::Int(n),
            RString::Bytes(b) => RStr::from_bytes(&b),
        }))),
        types::LIST => read_linked_list(rd),
        types::LIST_QUICKLIST | types::LIST_QUICKLIST_2 => read_quicklist(rd, t),
        types::LIST_ZIPLIST => {
            let (at, blob) = rd.blob()?;
            let items = ziplist::entries(&blob).map_err(|e| integrity(rd, at, "Ziplist", e))?;
            Ok(list_from_items(items.into_iter()))
        }
        types::SET => read_set(rd),
        types::SET_INTSET => {
            let (at, blob) = rd.blob()?;
            let members = intset::decode(&blob).map_err(|e| integrity(rd, at, "Intset", e))?;
            Ok(Some(set_from_intset(blob_width(&blob), members)))
        }
        types::ZSET | types::ZSET_2 => read_zset(rd, t),
        types::ZSET_ZIPLIST | types::ZSET_LISTPACK => {
            let (at, blob) = rd.blob()?;
            packed_zset(t, &blob).map_err(|e| integrity(rd, at, packed_name(t), e))
        }
        types::HASH => read_hash(rd),
        types::HASH_ZIPMAP | types::HASH_ZIPLIST | types::HASH_LISTPACK => {
            let (at, blob) = rd.blob()?;
            let pairs = packed_pairs(t, &blob).map_err(|e| integrity(rd, at, packed_name(t), e))?;
            hash_from_pairs(pairs.into_iter()).map_err(|e| integrity(rd, at, packed_name(t), e))
        }
        types::STREAM_LISTPACKS | types::STREAM_LISTPACKS_2 => read_stream(rd, t).map(Some),
        types::MODULE | types::MODULE_2 => Err(unsupported(
            at,
            "module values cannot be loaded (shardis has no modules)",
            key,
        )),
        _ => Err(rd.corrupt(at, format!("unknown value type {t}"))),
    }
}

/// `rdbLoadObject` for streams (see `super::stream`).
fn read_stream<R: Read + ?Sized>(rd: &mut Reader<R>, t: u8) -> Res<Value> {
    use crate::storage::stream::{Stream, StreamId};
    let v2 = t == types::STREAM_LISTPACKS_2;
    let mut s = Stream::new();
    let nodes = rd.count()?;
    let mut last_id_loaded: Option<StreamId> = None;
    for _ in 0..nodes {
        let at = rd.offset;
        let key = rd.bytes()?;
        if key.len() != 16 {
            return Err(rd.corrupt(at, "Stream node key entry is not the size of a stream ID"));
        }
        let master =
            StreamId::from_be_bytes(&key).ok_or_else(|| rd.corrupt(at, "stream node key"))?;
        let (at, blob) = rd.blob()?;
        let (mut node, mut entries) =
            super::stream::parse_node(master, &blob, rd.deep).map_err(|e| match e {
                "Empty listpack inside stream" => rd.corrupt(at, e),
                _ => integrity(rd, at, "Stream listpack", e),
            })?;
        if !rd.deep {
            // Shallow load: a node whose IDs do not follow the previous node's keeps only
            // those that do, so no ID is held twice and the counts stay exact.
            if let Some(last) = last_id_loaded {
                let before = entries.len();
                entries.retain(|(id, _)| *id > last);
                node.live -= (before - entries.len()) as u64;
            }
        }
        if let Some((id, _)) = entries.last() {
            last_id_loaded = Some(*id);
        }
        if s.nodes().any(|(m, _)| *m == master) {
            return Err(rd.corrupt(at, "Listpack re-added with existing key"));
        }
        s.load_node(master, node, entries);
    }
    let at = rd.offset;
    let length = rd.len()?;
    s.last_id = StreamId::new(rd.len()?, rd.len()?);
    if !rd.deep {
        // New IDs must follow every loaded one, whatever the payload claims.
        s.last_id = s.last_id.max(last_id_loaded.unwrap_or_default());
    }
    if v2 {
        let _first = StreamId::new(rd.len()?, rd.len()?);
        s.max_deleted_id = StreamId::new(rd.len()?, rd.len()?);
        s.entries_added = rd.len()?;
    } else {
        s.entries_added = length;
    }
    if rd.deep && length != s.len() as u64 {
        return Err(rd.corrupt(at, "Stream length inconsistent with its entries"));
    }
    let groups = rd.count()?;
    for _ in 0..groups {
        let at = rd.offset;
        let name = rd.bytes()?;
        let last_id = StreamId::new(rd.len()?, rd.len()?);
        let entries_read = if v2 {
            rd.len()? as i64
        } else {
            s.estimate_distance(last_id)
        };
        let mut pel = std::collections::BTreeMap::new();
        for _ in 0..rd.count()? {
            let raw: [u8; 16] = rd.array()?;
            let id = StreamId::from_be_bytes(&raw).unwrap_or_default();
            let time = u64::from_le_bytes(rd.array()?);
            let count = rd.len()?;
            if pel.insert(id, (time, count)).is_some() {
                return Err(rd.corrupt(
                    at,
                    "Duplicated global PEL entry loading stream consumer group",
                ));
            }
        }
        let mut consumers = Vec::new();
        for _ in 0..rd.count()? {
            let cname = bytes::Bytes::from(rd.bytes()?);
            let seen = u64::from_le_bytes(rd.array()?);
            let mut ids = Vec::new();
            for _ in 0..rd.count()? {
                let raw: [u8; 16] = rd.array()?;
                ids.push(StreamId::from_be_bytes(&raw).unwrap_or_default());
            }
            consumers.push((cname, seen, ids));
        }
        let g = super::stream::build_group(last_id, entries_read, pel, consumers)
            .map_err(|e| rd.corrupt(at, e))?;
        if s.groups.insert(bytes::Bytes::from(name), g).is_some() {
            return Err(rd.corrupt(at, "Duplicated consumer group name"));
        }
    }
    Ok(Value::Stream(Box::new(s)))
}

/// A packed blob that fails validation, worded as Redis words it ("... integrity check
/// failed"), which tools and Redis's own tests look for in the log.
fn integrity<R: Read + ?Sized>(rd: &Reader<R>, at: u64, what: &str, why: &str) -> RdbError {
    if why.starts_with("duplicate") {
        return rd.corrupt(
            at,
            format!("{what} integrity check failed: {what} with dup elements ({why})"),
        );
    }
    rd.corrupt(at, format!("{what} integrity check failed: {why}"))
}

/// What Redis calls a packed blob of type `t` in its integrity messages.
fn packed_name(t: u8) -> &'static str {
    match t {
        types::HASH_ZIPMAP => "Zipmap",
        types::HASH_ZIPLIST => "Hash ziplist",
        types::HASH_LISTPACK => "Hash listpack",
        types::ZSET_ZIPLIST => "Zset ziplist",
        types::ZSET_LISTPACK => "Zset listpack",
        _ => "Packed value",
    }
}

fn unsupported(offset: u64, what: &str, key: &[u8]) -> RdbError {
    RdbError::Unsupported {
        offset,
        reason: format!("{what} (key {})", crate::util::repr(key)),
    }
}

fn list_from_items<'a>(items: impl Iterator<Item = Item<'a>>) -> Option<Value> {
    let fill = Fill::current();
    let mut list = List::new();
    for it in items {
        it.with_bytes(|b| list.push(End::Tail, b, fill));
    }
    (!list.is_empty()).then(|| Value::List(list))
}

/// LIST: a count, then each element as a string.
fn read_linked_list<R: Read + ?Sized>(rd: &mut Reader<R>) -> Res<Option<Value>> {
    let n = rd.count()?;
    let fill = Fill::current();
    let mut list = List::new();
    for _ in 0..n {
        let b = rd.bytes()?;
        list.push(End::Tail, &b, fill);
    }
    Ok((!list.is_empty()).then(|| Value::List(list)))
}

/// LIST_QUICKLIST (ziplist nodes) and LIST_QUICKLIST_2 (listpack or plain nodes).
fn read_quicklist<R: Read + ?Sized>(rd: &mut Reader<R>, t: u8) -> Res<Option<Value>> {
    let nodes = rd.count()?;
    let fill = Fill::current();
    let mut list = List::new();
    for _ in 0..nodes {
        let mut container = containers::PACKED;
        if t == types::LIST_QUICKLIST_2 {
            let at = rd.offset;
            container = rd.len()?;
            if container != containers::PACKED && container != containers::PLAIN {
                return Err(rd.corrupt(at, format!("unknown quicklist container {container}")));
            }
        }
        let (at, blob) = rd.blob()?;
        if blob.is_empty() {
            return Err(rd.corrupt(at, "empty quicklist node"));
        }
        if container == containers::PLAIN {
            list.push(End::Tail, &blob, fill);
            continue;
        }
        let items = if t == types::LIST_QUICKLIST_2 {
            listpack::entries(&blob)
        } else {
            ziplist::entries(&blob)
        }
        .map_err(|e| integrity(rd, at, "Quicklist", e))?;
        for it in items {
            it.with_bytes(|b| list.push(End::Tail, b, fill));
        }
    }
    Ok((!list.is_empty()).then(|| Value::List(list)))
}

/// SET: a count, then members. An intset while every member is an integer and the count is
/// within `set-max-intset-entries`, as Redis decides.
fn read_set<R: Read + ?Sized>(rd: &mut Reader<R>) -> Res<Option<Value>> {
    let n = rd.count()?;
    let intset_max = intset_entries_max();
    let mut set = if n > intset_max {
        Set::new_table(n.min(PREALLOC_ITEMS_MAX))
    } else {
        Set::new_intset()
    };
    for _ in 0..n {
        let at = rd.offset;
        let member = rd.string()?;
        let added = match &member {
            RString::Int(v) => set.add_ref(MemberRef::Int(*v), intset_max),
            RString::Bytes(b) => set.add_ref(MemberRef::Bytes(b), intset_max),
        };
        match added {
            Ok(true) => {}
            Ok(false) => return Err(rd.corrupt(at, "duplicate set member")),
            Err(_) => return Err(rd.corrupt(at, "set has too many members")),
        }
    }
    Ok((!set.is_empty()).then(|| Value::Set(Box::new(set))))
}

fn blob_width(blob: &[u8]) -> usize {
    blob.first().map_or(8, |&w| w as usize)
}

/// A set from a validated intset blob: kept at the blob's width, converted to a hashtable
/// past `set-max-intset-entries` (as Redis does after loading).
fn set_from_intset(width: usize, members: Vec<i64>) -> Value {
    let intset_max = intset_entries_max();
    if members.len() > intset_max {
        let mut set = Set::new_table(members.len());
        for m in members {
            // Members are distinct (validated) and an intset is far below the table bound.
            let _ = set.add_ref(MemberRef::Int(m), 0);
        }
        return Value::Set(Box::new(set));
    }
    // The blob stored every member at `width`, so each fits it.
    let ints = match width {
        2 => IntSet::W16(members.iter().map(|&m| m as i16).collect()),
        4 => IntSet::W32(members.iter().map(|&m| m as i32).collect()),
        _ => IntSet::W64(members.into_boxed_slice()),
    };
    Value::Set(Box::new(Set::from_intset(ints)))
}

/// HASH: a count, then field and value strings. Packed while within the thresholds, as
/// Redis's loader decides field by field.
fn read_hash<R: Read + ?Sized>(rd: &mut Reader<R>) -> Res<Option<Value>> {
    let n = rd.count()?;
    let limits = HashLimits::current();
    let mut hash = Hash::new();
    if n > limits.entries_max {
        hash.convert();
    }
    for _ in 0..n {
        let at = rd.offset;
        let field = rd.bytes()?;
        let value = rd.bytes()?;
        if !hash.set(&field, &value, &limits) {
            return Err(rd.corrupt(at, "duplicate hash field"));
        }
    }
    Ok((!hash.is_empty()).then(|| Value::Hash(hash)))
}

/// The (field, value) pairs of a packed hash blob of type `t`, validated.
fn packed_pairs(t: u8, blob: &[u8]) -> Result<Vec<(Item<'_>, Item<'_>)>, &'static str> {
    if t == types::HASH_ZIPMAP {
        let pairs = zipmap::pairs(blob)?;
        return Ok(pairs
            .into_iter()
            .map(|(f, v)| (Item::Str(f), Item::Str(v)))
            .collect());
    }
    let items = if t == types::HASH_ZIPLIST {
        ziplist::entries(blob)?
    } else {
        listpack::entries(blob)?
    };
    pairs_of(items)
}

/// Pairs up a flat list of entries; an odd count is corrupt.
fn pairs_of(items: Vec<Item<'_>>) -> Result<Vec<(Item<'_>, Item<'_>)>, &'static str> {
    if !items.len().is_multiple_of(2) {
        return Err("packed pairs with an odd number of entries");
    }
    let mut it = items.into_iter();
    let mut out = Vec::with_capacity(it.len() / 2);
    while let (Some(a), Some(b)) = (it.next(), it.next()) {
        out.push((a, b));
    }
    Ok(out)
}

/// A hash from validated pairs: a hashtable from the start when there are more than
/// `hash-max-listpack-entries`, and converted by `Hash::set` when a field or value exceeds
/// `hash-max-listpack-value` (Redis keeps such a listpack as it was written; converting keeps
/// our type's invariant, and only differs when the writer had larger thresholds).
fn hash_from_pairs<'a>(
    pairs: impl ExactSizeIterator<Item = (Item<'a>, Item<'a>)>,
) -> Result<Option<Value>, &'static str> {
    let limits = HashLimits::current();
    let mut hash = Hash::new();
    if pairs.len() > limits.entries_max {
        hash.convert();
    }
    for (f, v) in pairs {
        let new = f.with_bytes(|f| v.with_bytes(|v| hash.set(f, v, &limits)));
        if !new {
            return Err("duplicate hash field");
        }
    }
    Ok((!hash.is_empty()).then(|| Value::Hash(hash)))
}

/// ZSET (scores as text) and ZSET_2 (binary doubles): a count, then member and score.
fn read_zset<R: Read + ?Sized>(rd: &mut Reader<R>, t: u8) -> Res<Option<Value>> {
    let at = rd.offset;
    let n = rd.count()?;
    let mut pairs = Vec::with_capacity(n.min(PREALLOC_ITEMS_MAX));
    for _ in 0..n {
        let member = rd.bytes()?;
        let score = if t == types::ZSET_2 {
            rd.binary_double()?
        } else {
            rd.text_double()?
        };
        pairs.push((member, score));
    }
    zset_from_pairs(pairs).map_err(|e| rd.corrupt(at, e))
}

/// ZSET_ZIPLIST and ZSET_LISTPACK: member and score entries alternating; a score is an
/// integer entry or its text.
fn packed_zset(t: u8, blob: &[u8]) -> Result<Option<Value>, &'static str> {
    let items = if t == types::ZSET_ZIPLIST {
        ziplist::entries(blob)?
    } else {
        listpack::entries(blob)?
    };
    let pairs = pairs_of(items)?;
    let mut scored = Vec::with_capacity(pairs.len());
    for (member, score) in pairs {
        let score = match score {
            Item::Int(n) => n as f64,
            Item::Str(s) => parse_double(s).ok_or("sorted set score is not a number")?,
        };
        scored.push((member.to_vec(), score));
    }
    zset_from_pairs(scored)
}

/// A sorted set from (member, score) pairs in any order: NaN scores and duplicate members are
/// corrupt. Built in the encoding its size calls for (`from_sorted`, which applies both
/// `zset-max-listpack-*` thresholds as Redis does after loading a ZSET_2).
fn zset_from_pairs(mut pairs: Vec<(Vec<u8>, f64)>) -> Result<Option<Value>, &'static str> {
    if pairs.iter().any(|(_, s)| s.is_nan()) {
        return Err("sorted set with a NaN score");
    }
    pairs.sort_unstable_by(|a, b| a.0.cmp(&b.0));
    if pairs.windows(2).any(|w| matches!(w, [a, b] if a.0 == b.0)) {
        return Err("duplicate sorted set member");
    }
    // Ties by member bytes: the sort above put equal scores in member order already.
    pairs.sort_by(|a, b| a.1.total_cmp(&b.1).then_with(|| a.0.cmp(&b.0)));
    normalize_zero_order(&mut pairs);
    Ok((!pairs.is_empty()).then(|| Value::ZSet(ZSet::from_sorted(&pairs))))
}

/// `total_cmp` orders -0 before 0, but a sorted set treats them as equal scores ordered by
/// member; re-sort the run of zeros by member alone.
fn normalize_zero_order(pairs: &mut [(Vec<u8>, f64)]) {
    let start = pairs.partition_point(|p| p.1 < 0.0);
    let end = pairs.partition_point(|p| p.1 <= 0.0);
    if let Some(zeros) = pairs.get_mut(start..end) {
        zeros.sort_by(|a, b| a.0.cmp(&b.0));
    }
}

// ----- The file -----

/// Reads a whole RDB from `r`, calling `sink` for each key and `aux` for each AUX field,
/// verifying the CRC-64 footer when the file has a nonzero one. Function libraries are
/// returned in the stats. Stops right after the footer. See the module essay for what is
/// supported; module AUX data, module values and streams are `Unsupported` errors.
pub fn read_rdb<R: Read + ?Sized>(
    r: &mut R,
    sink: &mut dyn FnMut(LoadedEntry) -> Result<(), RdbError>,
    aux: &mut dyn FnMut(&[u8], &[u8]),
) -> Result<RdbStats, RdbError> {
    let mut rd = Reader::new(r);
    let mut stats = RdbStats {
        version: read_signature(&mut rd)?,
        ..Default::default()
    };
    let mut db = 0usize;
    let mut pending = KeyAttributes::default();
    loop {
        let at = rd.offset;
        let t = rd.u8()?;
        match t {
            opcodes::EXPIRETIME => {
                pending.expire_ms = Some(i32::from_le_bytes(rd.array()?) as i64 * 1000);
            }
            opcodes::EXPIRETIME_MS => pending.expire_ms = Some(i64::from_le_bytes(rd.array()?)),
            opcodes::FREQ => pending.lfu_freq = Some(rd.u8()?),
            opcodes::IDLE => pending.idle_secs = Some(rd.len()?),
            opcodes::EOF => break,
            opcodes::SELECTDB => {
                let n = rd.len()?;
                db = usize::try_from(n)
                    .map_err(|_| rd.corrupt(at, format!("database index {n} too large")))?;
            }
            opcodes::RESIZEDB => {
                rd.len()?;
                rd.len()?;
            }
            opcodes::AUX => {
                let k = rd.bytes()?;
                let v = rd.bytes()?;
                aux(&k, &v);
            }
            opcodes::MODULE_AUX => {
                return Err(RdbError::Unsupported {
                    offset: at,
                    reason: "module AUX data cannot be loaded (shardis has no modules)".into(),
                })
            }
            opcodes::FUNCTION2 => stats.functions.push(rd.bytes()?),
            opcodes::FUNCTION_PRE_GA => stats.functions.push(read_function_pre_ga(&mut rd)?),
            _ => {
                let attrs = std::mem::take(&mut pending);
                read_key(&mut rd, t, db, attrs, &mut stats, sink)?;
            }
        }
    }
    read_footer(&mut rd, &mut stats)?;
    Ok(stats)
}

/// What the opcodes before a key said about it (reset after each key).
#[derive(Default)]
struct KeyAttributes {
    expire_ms: Option<i64>,
    idle_secs: Option<u64>,
    lfu_freq: Option<u8>,
}

/// A key of type `t` and its value, handed to the sink (or counted as skipped when empty).
fn read_key<R: Read + ?Sized>(
    rd: &mut Reader<R>,
    t: u8,
    db: usize,
    attrs: KeyAttributes,
    stats: &mut RdbStats,
    sink: &mut dyn FnMut(LoadedEntry) -> Result<(), RdbError>,
) -> Res<()> {
    // The type byte was just read; `rdbIsObjectType` before touching the key.
    let type_at = rd.offset.saturating_sub(1);
    if !matches!(t, 0..=7 | 9..=19) {
        return Err(rd.corrupt(type_at, format!("unknown value type {t}")));
    }
    let key = rd.bytes()?;
    let Some(value) = read_value(rd, t, &key)? else {
        stats.empty_keys_skipped += 1;
        if stats.empty_keys.len() < EMPTY_KEYS_NAMED_MAX {
            stats.empty_keys.push(key);
        }
        return Ok(());
    };
    let mut entry = Entry::new(value);
    if let Some(ms) = attrs.expire_ms {
        // 0 means "no expiry" in memory; a deadline at or before the epoch is simply long past.
        entry.expire_ms = ms.max(1) as u64;
        stats.keys_with_expiry += 1;
    }
    if let Some(f) = attrs.lfu_freq {
        entry.lfu = crate::storage::evict::lfu_with_freq(f);
    }
    if let Some(idle) = attrs.idle_secs {
        let idle = u32::try_from(idle).unwrap_or(u32::MAX);
        entry.lru_secs = entry.lru_secs.saturating_sub(idle);
    }
    stats.keys += 1;
    sink(LoadedEntry {
        db,
        key,
        entry,
        lfu_freq: attrs.lfu_freq,
    })
}

/// `REDIS` and four digits; versions 1 to 10 are loadable, as in Redis 7.0.
fn read_signature<R: Read + ?Sized>(rd: &mut Reader<R>) -> Res<u32> {
    let sig: [u8; 9] = rd.array()?;
    let (magic, digits) = sig.split_at(5);
    if magic != b"REDIS" {
        return Err(rd.corrupt(0, "wrong signature (not an RDB file)"));
    }
    let version = std::str::from_utf8(digits)
        .ok()
        .and_then(|s| s.parse::<u32>().ok())
        .ok_or_else(|| rd.corrupt(5, "unreadable RDB version"))?;
    if !(1..=RDB_VERSION).contains(&version) {
        return Err(RdbError::Unsupported {
            offset: 5,
            reason: format!("can't handle RDB format version {version}"),
        });
    }
    Ok(version)
}

/// The CRC-64 footer (versions 5 and later): checked unless it is zero.
fn read_footer<R: Read + ?Sized>(rd: &mut Reader<R>, stats: &mut RdbStats) -> Res<()> {
    if stats.version >= 5 {
        let computed = rd.crc;
        let at = rd.offset;
        let stored = u64::from_le_bytes(rd.array()?);
        if stored != 0 {
            if stored != computed && !super::skip_checksum() {
                return Err(RdbError::Checksum {
                    offset: at,
                    stored,
                    computed,
                });
            }
            stats.checksum = Some(stored);
        }
    }
    stats.bytes = rd.offset;
    Ok(())
}

/// The FUNCTION opcode of 7.0 release candidates: name, engine, optional description and
/// code, translated to the `#!<engine> name=<name>` form FUNCTION2 carries.
fn read_function_pre_ga<R: Read + ?Sized>(rd: &mut Reader<R>) -> Res<Vec<u8>> {
    let name = rd.bytes()?;
    let engine = rd.bytes()?;
    if rd.len()? != 0 {
        rd.bytes()?;
    }
    let code = rd.bytes()?;
    let mut out = Vec::with_capacity(code.len() + name.len() + engine.len() + 10);
    out.extend_from_slice(b"#!");
    out.extend_from_slice(&engine);
    out.extend_from_slice(b" name=");
    out.extend_from_slice(&name);
    out.push(b'\n');
    out.extend_from_slice(&code);
    Ok(out)
}

/// Decodes a DUMP payload (RESTORE): checks the footer's RDB version (at most 10) and its
/// CRC-64, then reads the type and value.
pub fn restore_payload(payload: &[u8]) -> Result<Value, RdbError> {
    restore_payload_deep(payload, true)
}

/// `restore_payload` with the deep checks of `sanitize-dump-payload` on or off.
pub fn restore_payload_deep(payload: &[u8], deep: bool) -> Result<Value, RdbError> {
    let corrupt = |offset: usize, reason: &str| RdbError::Corrupt {
        offset: offset as u64,
        reason: reason.to_string(),
    };
    let body_len = payload
        .len()
        .checked_sub(10)
        .ok_or_else(|| corrupt(0, "DUMP payload shorter than its footer"))?;
    let (body, footer) = payload.split_at(body_len);
    let [v0, v1, stored @ ..]: [u8; 10] =
        array_at(footer, 0).ok_or_else(|| corrupt(0, "DUMP payload shorter than its footer"))?;
    let version = u16::from_le_bytes([v0, v1]) as u32;
    if version > RDB_VERSION {
        return Err(RdbError::Unsupported {
            offset: body_len as u64,
            reason: format!("DUMP payload of RDB version {version}"),
        });
    }
    let stored = u64::from_le_bytes(stored);
    let computed = crc64(crc64(0, body), &[v0, v1]);
    if stored != computed && !super::skip_checksum() {
        return Err(RdbError::Checksum {
            offset: body_len as u64 + 2,
            stored,
            computed,
        });
    }
    let mut input = body;
    let mut rd = Reader::new(&mut input);
    rd.deep = deep;
    let t = rd.u8()?;
    if t >= opcodes::FUNCTION2 {
        return Err(corrupt(0, "DUMP payload does not start with a value type"));
    }
    read_value(&mut rd, t, b"")?.ok_or_else(|| corrupt(1, "DUMP payload holds an empty value"))
}

/// Decodes a FUNCTION DUMP payload (FUNCTION RESTORE): verifies the footer, then reads
/// FUNCTION2 (or pre-GA FUNCTION) records until the footer. Errors carry Redis's texts.
pub fn functions_restore_payload(payload: &[u8]) -> Result<Vec<Vec<u8>>, String> {
    let bad = || "DUMP payload version or checksum are wrong".to_string();
    let body_len = payload.len().checked_sub(10).ok_or_else(bad)?;
    let (body, footer) = payload.split_at(body_len);
    let [v0, v1, stored @ ..]: [u8; 10] = array_at(footer, 0).ok_or_else(bad)?;
    if u16::from_le_bytes([v0, v1]) as u32 > RDB_VERSION {
        return Err(bad());
    }
    if u64::from_le_bytes(stored) != crc64(crc64(0, body), &[v0, v1]) {
        return Err(bad());
    }
    let mut input = body;
    let mut rd = Reader::new(&mut input);
    let mut codes = Vec::new();
    while rd.offset < body_len as u64 {
        let t = rd.u8().map_err(|_| "can not read data type".to_string())?;
        let code = match t {
            opcodes::FUNCTION2 => rd.bytes(),
            opcodes::FUNCTION_PRE_GA => read_function_pre_ga(&mut rd),
            _ => return Err("given type is not a function".into()),
        };
        codes.push(code.map_err(|_| "failed loading the given functions payload".to_string())?);
    }
    Ok(codes)
}
