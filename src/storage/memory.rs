//! What keys and values cost in memory: MEMORY USAGE, and INFO's dataset/overhead split.
//!
//! Sizes are what the allocator really hands out (`alloc::good_size` rounds a request up to
//! mimalloc's size class), so MEMORY USAGE is comparable with Redis's, which reports jemalloc's
//! usable sizes. Collections report their own heap bytes (`heap_bytes`), which walk the
//! collection: MEMORY USAGE of a big collection costs time proportional to it, where Redis
//! samples `SAMPLES` elements and extrapolates.

use super::db::{Db, Entry};
use super::slot_table::SlotTable;
use super::value::{RStr, Value};
use crate::alloc::good_size;
use std::mem::size_of;

/// Bytes of one bucket of a slot table: a thin pointer and a control byte.
const BUCKET_BYTES: usize = size_of::<usize>() + 1;

/// The heap bytes of a value (not counting the entry it sits in).
pub fn value_bytes(v: &Value) -> usize {
    match v {
        Value::Str(RStr::Int(_)) => 0,
        Value::Str(RStr::Emb(b)) => good_size(b.alloc_len()),
        Value::Str(RStr::Raw(r)) => good_size(size_of::<Vec<u8>>()) + good_size(r.capacity()),
        // Lists, hashes and sorted sets sit in the `Value` word itself (`storage::compact`).
        Value::List(l) => l.heap_bytes(),
        Value::Hash(h) => h.heap_bytes(),
        Value::Set(s) => good_size(size_of::<super::set::Set>()) + s.heap_bytes(),
        Value::ZSet(z) => z.heap_bytes(),
        Value::Stream(st) => good_size(size_of::<super::stream::Stream>()) + st.heap_bytes(),
    }
}

/// The bytes of the allocation holding an entry and its key.
pub fn entry_box_bytes(key_len: usize) -> usize {
    let header =
        size_of::<Entry>() + size_of::<u32>() + if key_len >= u32::MAX as usize { 8 } else { 0 };
    good_size(header + key_len)
}

/// MEMORY USAGE of one key: its entry and key, its value, and its share of the table.
pub fn key_usage(key: &[u8], e: &Entry) -> usize {
    entry_box_bytes(key.len()) + value_bytes(&e.value) + BUCKET_BYTES
}

/// The keyspace's own structures in one db: slot tables' buckets and the fixed part of each
/// entry (Redis counts its dict tables and entries as overhead, the keys and values as data).
pub fn db_overhead(db: &Db) -> usize {
    // The per-db slot vector is allocated at start-up and counted in used_memory_startup.
    let tables: usize = db
        .used_slots_from(0)
        .map(|(_, t)| good_size(size_of::<SlotTable>()) + table_bucket_bytes(t))
        .sum();
    tables + db.keys * (size_of::<Entry>() + size_of::<u32>())
}

fn table_bucket_bytes(t: &SlotTable) -> usize {
    let cap = t.capacity();
    if cap == 0 {
        0
    } else {
        (cap * 8 / 7).next_power_of_two() * BUCKET_BYTES + 16
    }
}

/// Bytes of the hash tables of a db: (main table, expires). Keys with a deadline keep it
/// inside their entry, so the second is always 0 here (MEMORY STATS shows both, as Redis).
pub fn db_table_bytes(db: &Db) -> (usize, usize) {
    let tables: usize = db
        .used_slots_from(0)
        .map(|(_, t)| table_bucket_bytes(t))
        .sum();
    (tables, 0)
}
