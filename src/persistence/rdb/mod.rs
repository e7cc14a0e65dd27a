//! The RDB file format, version 10 (what Redis 7.0 reads and writes): a pure encoder and
//! decoder. No files, no fork, no scheduling — the callers (SAVE/BGSAVE, start-up loading,
//! replication, DUMP/RESTORE, the AOF's RDB preamble) own those and hand us a `Write` or a
//! `Read`.
//!
//! # The file
//! `REDIS0010`, then opcodes: AUX fields (`redis-ver`, `redis-bits`, `ctime`, `used-mem`,
//! replication fields, `aof-base`), function libraries (FUNCTION2), and per non-empty
//! database SELECTDB, RESIZEDB and its keys. A key is an optional EXPIRETIME_MS (and IDLE or
//! FREQ for the eviction policies), a type byte, the key as an RDB string and the value.
//! EOF (0xFF) ends the data, then 8 bytes of CRC-64/Jones over everything before them,
//! little endian, or 8 zero bytes when `rdbchecksum no`.
//!
//! Primitives: lengths take 1, 2, 5 or 9 bytes (6-bit, 14-bit big endian, then 0x80 + u32 BE
//! or 0x81 + u64 BE); a length whose top two bits are `11` instead announces a special string
//! encoding: an 8/16/32-bit little-endian integer, or LZF (compressed length, original
//! length, data).
//!
//! # What we write, and why exactly this
//! The encodings Redis 7.0.15 itself writes, so `redis-check-rdb` accepts our files and a real
//! Redis that loads them ends with the same keys, values, expiries and `OBJECT ENCODING`s:
//! strings as STRING (integer-encoded when the text is a canonical integer that fits 32 bits,
//! LZF when compression is on, the string is longer than 20 bytes and compression saves at
//! least 4 bytes), lists as QUICKLIST_2 (one listpack per quicklist node, our node boundaries
//! kept), sets as SET_INTSET or SET, hashes as HASH_LISTPACK or HASH, sorted sets as
//! ZSET_LISTPACK or ZSET_2 (binary doubles, greatest first, as Redis writes them). The packed
//! blobs are Redis's byte formats (`listpack`, `intset`), not our in-memory packings.
//!
//! Not written: FREQ (entries keep no LFU counter), module AUX data, streams.
//!
//! # What we read
//! Every encoding Redis 7.0 loads: the above plus the old ones (LIST, SET, ZSET with text
//! doubles, HASH, HASH_ZIPMAP, LIST_ZIPLIST, ZSET_ZIPLIST, HASH_ZIPLIST, LIST_QUICKLIST with
//! ziplist nodes, PLAIN quicklist nodes), the opcodes AUX, SELECTDB, RESIZEDB (a hint,
//! ignored), EXPIRETIME_MS, EXPIRETIME, IDLE, FREQ, FUNCTION2 and the 7.0-rc FUNCTION, and
//! RDB versions 1 to 10 (no checksum footer before version 5). Values come back in the
//! encoding Redis's `rdbLoadObject` would give them under the current thresholds: a SET of
//! few integers becomes an intset, an intset blob keeps its width, a HASH or ZSET_2 within
//! the `*-max-listpack-*` bounds becomes a listpack. One deliberate difference: a packed hash
//! or zset blob holding an element longer than `*-max-listpack-value` (possible only when
//! the writer had larger thresholds) is converted, where Redis keeps the blob; our types
//! hold that bound as an invariant. Empty collections are skipped and counted, as Redis
//! skips them. Duplicate members or fields and NaN scores are corrupt, as in Redis.
//! Streams (types 15 and 19), module values (6, 7) and module AUX data are refused with an
//! `Unsupported` error naming the key or opcode: shardis has no stream type yet and no
//! modules. Function libraries are returned in `RdbStats::functions` for the scripting
//! layer; AUX fields go to a callback (the replication fields `repl-id`, `repl-offset`,
//! `repl-stream-db` included). Expired keys are handed over like any other: a master drops
//! them on load, a replica keeps them, so the caller decides.
//!
//! # Decoder discipline
//! Input is untrusted (a file from anywhere, a RESTORE payload from any client). Every read
//! is bounds-checked and every failure is an `RdbError` carrying the byte offset where it was
//! found; nothing panics. No allocation is sized by a length read from the input: strings
//! are read in chunks as their bytes actually arrive, collection preallocation is capped,
//! and an LZF string may not claim more than the format's maximum expansion. The reader
//! consumes exactly the RDB's bytes (through the checksum) and nothing after, so a caller
//! can continue with what follows (the AOF after an RDB preamble, the replication stream);
//! pass it a buffered reader.
//!
//! Who calls it: persistence (SAVE, BGSAVE child, start-up), replication (full sync), and
//! the DUMP/RESTORE commands (`dump_payload`, `restore_payload`).

mod crc64;
mod decode;
mod encode;
mod intset;
mod listpack;
mod lzf;
mod stream;
mod ziplist;
mod zipmap;

#[cfg(test)]
mod interop_tests;
#[cfg(test)]
mod tests;

pub use crc64::crc64;
pub use decode::{
    functions_restore_payload, read_rdb, restore_payload, restore_payload_deep, LoadedEntry,
    RdbStats,
};
pub use encode::{
    dump_payload, dump_payload_with, encode_entry, functions_dump_payload, write_rdb, DbView,
    RdbWriter,
};

/// `N` bytes of `b` starting at `at`, when they are all there (the decoders' only way of
/// reading fixed-size fields).
pub(crate) fn array_at<const N: usize>(b: &[u8], at: usize) -> Option<[u8; N]> {
    b.get(at..at.checked_add(N)?)?.try_into().ok()
}

/// DEBUG SET-SKIP-CHECKSUM-VALIDATION: when set, RDB files and DUMP payloads are accepted
/// whatever their CRC-64 (Redis's `skip_checksum_validation`, a testing aid).
static SKIP_CHECKSUM: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

pub fn set_skip_checksum(on: bool) {
    SKIP_CHECKSUM.store(on, std::sync::atomic::Ordering::Relaxed);
}

pub(crate) fn skip_checksum() -> bool {
    SKIP_CHECKSUM.load(std::sync::atomic::Ordering::Relaxed)
}

/// `sanitize-dump-payload`: 0 `no`, 1 `yes`, 2 `clients` (mirrored from the config by
/// `storage::limits::apply`). Decoding always checks everything memory safety and our own
/// structures depend on; the deep checks Redis runs only when sanitizing (a stream record's
/// item count) are skipped otherwise, as Redis accepts such payloads then.
static SANITIZE_DUMP: std::sync::atomic::AtomicU8 = std::sync::atomic::AtomicU8::new(0);

pub fn set_sanitize_dump(mode: &str) {
    let code = match mode {
        "yes" => 1,
        "clients" => 2,
        _ => 0,
    };
    SANITIZE_DUMP.store(code, std::sync::atomic::Ordering::Relaxed);
}

/// Whether a RESTORE payload gets deep sanitization (`from_master`: the master's stream, which
/// `clients` trusts).
pub fn deep_sanitize_restore(from_master: bool) -> bool {
    match SANITIZE_DUMP.load(std::sync::atomic::Ordering::Relaxed) {
        1 => true,
        2 => !from_master,
        _ => false,
    }
}

/// Whether an RDB file gets deep sanitization (only with `yes`, as Redis's `rdbLoad`).
pub fn deep_sanitize_file() -> bool {
    SANITIZE_DUMP.load(std::sync::atomic::Ordering::Relaxed) == 1
}

/// The RDB format version Redis 7.0 writes (and the newest it reads).
pub const RDB_VERSION: u32 = 10;

/// The value Redis reports as `redis-ver` in the files it writes.
pub const REDIS_VERSION: &str = "7.0.15";

/// Object type bytes (`RDB_TYPE_*`).
pub(crate) mod types {
    pub const STRING: u8 = 0;
    pub const LIST: u8 = 1;
    pub const SET: u8 = 2;
    pub const ZSET: u8 = 3;
    pub const HASH: u8 = 4;
    pub const ZSET_2: u8 = 5;
    pub const MODULE: u8 = 6;
    pub const MODULE_2: u8 = 7;
    pub const HASH_ZIPMAP: u8 = 9;
    pub const LIST_ZIPLIST: u8 = 10;
    pub const SET_INTSET: u8 = 11;
    pub const ZSET_ZIPLIST: u8 = 12;
    pub const HASH_ZIPLIST: u8 = 13;
    pub const LIST_QUICKLIST: u8 = 14;
    pub const STREAM_LISTPACKS: u8 = 15;
    pub const HASH_LISTPACK: u8 = 16;
    pub const ZSET_LISTPACK: u8 = 17;
    pub const LIST_QUICKLIST_2: u8 = 18;
    pub const STREAM_LISTPACKS_2: u8 = 19;
}

/// Opcodes (`RDB_OPCODE_*`), which share the type byte's position.
pub(crate) mod opcodes {
    pub const FUNCTION2: u8 = 245;
    pub const FUNCTION_PRE_GA: u8 = 246;
    pub const MODULE_AUX: u8 = 247;
    pub const IDLE: u8 = 248;
    pub const FREQ: u8 = 249;
    pub const AUX: u8 = 250;
    pub const RESIZEDB: u8 = 251;
    pub const EXPIRETIME_MS: u8 = 252;
    pub const EXPIRETIME: u8 = 253;
    pub const SELECTDB: u8 = 254;
    pub const EOF: u8 = 255;
}

/// Quicklist node containers in QUICKLIST_2.
pub(crate) mod containers {
    pub const PLAIN: u64 = 1;
    pub const PACKED: u64 = 2;
}

/// How to write (Redis's `rdbcompression`, `rdbchecksum`, and what the eviction policy asks).
#[derive(Clone, Debug)]
pub struct RdbOptions {
    /// LZF-compress strings and packed blobs longer than 20 bytes when that saves space.
    pub compression: bool,
    /// Write the CRC-64 footer; when false the footer is 8 zero bytes (loaders skip the check).
    pub checksum: bool,
    /// The LRU clock now (seconds, as `Entry::lru_secs`). When set — an LRU
    /// `maxmemory-policy` is in force — each key gets an IDLE opcode with its idle seconds.
    pub lru_clock_secs: Option<u32>,
    /// `used-mem` AUX field: the writer's memory use in bytes.
    pub used_mem_bytes: u64,
    /// `ctime` AUX field, Unix seconds; `None` = now.
    pub ctime_secs: Option<u64>,
    /// `aof-base` AUX field: the file is the base of a multi-part AOF.
    pub aof_base: bool,
}

impl Default for RdbOptions {
    /// Redis's defaults: compression and checksum on, no LRU information.
    fn default() -> Self {
        RdbOptions {
            compression: true,
            checksum: true,
            lru_clock_secs: None,
            used_mem_bytes: 0,
            ctime_secs: None,
            aof_base: false,
        }
    }
}

/// Why an RDB could not be read.
#[derive(Debug)]
pub enum RdbError {
    /// The underlying reader or writer failed (other than by ending early).
    Io(std::io::Error),
    /// The bytes are not a valid RDB (including a file cut short). `offset` is the byte
    /// position in the file (or payload) where the problem was found.
    Corrupt { offset: u64, reason: String },
    /// A valid RDB holding something shardis cannot load (streams, modules, a newer
    /// format version).
    Unsupported { offset: u64, reason: String },
    /// The CRC-64 footer does not match the contents.
    Checksum {
        offset: u64,
        stored: u64,
        computed: u64,
    },
    /// The caller's sink refused an entry (for example a database index out of range).
    Rejected(String),
}

impl std::fmt::Display for RdbError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RdbError::Io(e) => write!(f, "I/O error: {e}"),
            RdbError::Corrupt { offset, reason } => {
                write!(f, "corrupt RDB at byte offset {offset}: {reason}")
            }
            RdbError::Unsupported { offset, reason } => {
                write!(
                    f,
                    "unsupported RDB content at byte offset {offset}: {reason}"
                )
            }
            RdbError::Checksum {
                offset,
                stored,
                computed,
            } => write!(
                f,
                "wrong RDB checksum at byte offset {offset}: stored {stored:016x}, \
                 contents give {computed:016x}"
            ),
            RdbError::Rejected(reason) => write!(f, "RDB entry rejected: {reason}"),
        }
    }
}

impl std::error::Error for RdbError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            RdbError::Io(e) => Some(e),
            _ => None,
        }
    }
}

impl From<std::io::Error> for RdbError {
    fn from(e: std::io::Error) -> Self {
        RdbError::Io(e)
    }
}
