//! Streams in RDB: `RDB_TYPE_STREAM_LISTPACKS_2` (what Redis 7.0 writes) and the older
//! `RDB_TYPE_STREAM_LISTPACKS` (Redis 5 and 6), read and written.
//!
//! The body is the node count, then per node its master ID (16 bytes big endian, as a
//! string) and its listpack; then length, last ID, (v2:) first ID, max deleted ID, entries
//! added; then the consumer groups: name, last ID, (v2:) entries read, the PEL (raw 16-byte
//! IDs with delivery time as 8 bytes little endian and delivery count), and the consumers
//! (name, seen time, their PEL as raw IDs whose NACKs are the group's).
//!
//! A node's listpack holds a master entry (`count`, `deleted`, the master field count, the
//! fields, `0`) and then each entry: flags (1 = deleted, 2 = same fields as the master), the
//! ID as differences from the master ID, the field count and fields unless same-fields, the
//! values, and the entry's element count (`lp-count`). We write only live entries, so
//! `deleted` is 0; Redis loads such nodes as it loads its own.

#![deny(clippy::indexing_slicing)]

use super::encode::{put_len, put_string};
use super::listpack::{self, ListpackWriter};
use crate::storage::listpack::Item;
use crate::storage::stream::{same_fields, Consumer, Group, Nack, Node, Stream, StreamId};
use bytes::Bytes;
use std::collections::{BTreeMap, BTreeSet};

const FLAG_DELETED: i64 = 1;
const FLAG_SAMEFIELDS: i64 = 2;

/// The body of a stream value (after the type byte).
pub(crate) fn put_stream(out: &mut Vec<u8>, s: &Stream, compress: bool) {
    let masters: Vec<(StreamId, &Node)> = s.nodes().map(|(m, n)| (*m, n)).collect();
    let mut blobs = Vec::with_capacity(masters.len());
    for (i, (master, node)) in masters.iter().enumerate() {
        let end = masters
            .get(i + 1)
            .and_then(|(next, _)| next.decr())
            .unwrap_or(StreamId::MAX);
        let entries: Vec<_> = s.range(*master, end).collect();
        if entries.is_empty() {
            continue;
        }
        blobs.push((*master, node_listpack(*master, node, &entries)));
    }
    put_len(out, blobs.len() as u64);
    for (master, blob) in &blobs {
        put_string(out, &master.to_be_bytes(), compress);
        put_string(out, blob, compress);
    }
    put_len(out, s.len() as u64);
    put_len(out, s.last_id.ms);
    put_len(out, s.last_id.seq);
    let first = s.first_id();
    put_len(out, first.ms);
    put_len(out, first.seq);
    put_len(out, s.max_deleted_id.ms);
    put_len(out, s.max_deleted_id.seq);
    put_len(out, s.entries_added);
    put_len(out, s.groups.len() as u64);
    for (name, g) in &s.groups {
        put_string(out, name, compress);
        put_len(out, g.last_id.ms);
        put_len(out, g.last_id.seq);
        put_len(out, g.entries_read as u64);
        put_len(out, g.pel.len() as u64);
        for (id, nack) in &g.pel {
            out.extend_from_slice(&id.to_be_bytes());
            out.extend_from_slice(&nack.delivery_time.to_le_bytes());
            put_len(out, nack.delivery_count);
        }
        put_len(out, g.consumers.len() as u64);
        for (cname, c) in &g.consumers {
            put_string(out, cname, compress);
            out.extend_from_slice(&c.seen_time.to_le_bytes());
            put_len(out, c.pel.len() as u64);
            for id in &c.pel {
                out.extend_from_slice(&id.to_be_bytes());
            }
        }
    }
}

fn node_listpack(master: StreamId, node: &Node, entries: &[(&StreamId, &Vec<Bytes>)]) -> Vec<u8> {
    let mut lp = ListpackWriter::new();
    lp.push_int(entries.len() as i64);
    lp.push_int(0);
    lp.push_int(node.master_fields.len() as i64);
    for f in &node.master_fields {
        lp.push_bytes(f);
    }
    lp.push_int(0);
    for (id, fields) in entries {
        let same = same_fields(node, fields);
        let numfields = fields.len() / 2;
        lp.push_int(if same { FLAG_SAMEFIELDS } else { 0 });
        lp.push_int(id.ms.wrapping_sub(master.ms) as i64);
        lp.push_int(id.seq.wrapping_sub(master.seq) as i64);
        if same {
            for v in fields.iter().skip(1).step_by(2) {
                lp.push_bytes(v);
            }
            lp.push_int(numfields as i64 + 3);
        } else {
            lp.push_int(numfields as i64);
            for f in fields.iter() {
                lp.push_bytes(f);
            }
            lp.push_int(numfields as i64 * 2 + 4);
        }
    }
    lp.finish()
}

fn int_of(item: Option<&Item<'_>>) -> Result<i64, &'static str> {
    match item {
        Some(Item::Int(n)) => Ok(*n),
        Some(Item::Str(s)) => {
            crate::storage::value::parse_canonical_i64(s).ok_or("stream listpack: not an integer")
        }
        None => Err("stream listpack: truncated"),
    }
}

fn bytes_of(item: Option<&Item<'_>>) -> Result<Bytes, &'static str> {
    item.map(|i| Bytes::from(i.to_vec()))
        .ok_or("stream listpack: truncated")
}

/// A node's live entries, in ID order.
pub(crate) type NodeEntries = Vec<(StreamId, Vec<Bytes>)>;

/// Parses one node: its bookkeeping and its live entries.
pub(crate) fn parse_node(
    master: StreamId,
    blob: &[u8],
    deep: bool,
) -> Result<(Node, NodeEntries), &'static str> {
    let items = listpack::entries_checked(blob, deep)?;
    if items.is_empty() {
        return Err("Empty listpack inside stream");
    }
    let mut it = items.iter();
    let count = int_of(it.next())?;
    let deleted = int_of(it.next())?;
    let nmaster = int_of(it.next())?;
    if !(0..=items.len() as i64).contains(&nmaster) || count < 0 || deleted < 0 {
        return Err("stream listpack: bad master entry");
    }
    let mut master_fields = Vec::with_capacity(nmaster as usize);
    for _ in 0..nmaster {
        master_fields.push(bytes_of(it.next())?);
    }
    if int_of(it.next())? != 0 {
        return Err("stream listpack: bad master terminator");
    }
    let mut entries = Vec::new();
    let (mut live, mut dead) = (0i64, 0i64);
    while let Some(flags) = it.next() {
        let record = match parse_record(&mut it, flags, master, &master_fields, items.len(), deep) {
            Ok(r) => r,
            // Shallow mode (`sanitize-dump-payload no`): Redis accepts the node unchecked;
            // we keep the records that parse whole and drop a broken tail.
            Err(_) if !deep => break,
            Err(e) => return Err(e),
        };
        match record {
            None => dead += 1,
            Some(entry) => {
                // IDs grow within a node; a shallow load stops where they do not, so the
                // node's count always matches the entries kept.
                if !deep && entries.last().is_some_and(|(last, _)| *last >= entry.0) {
                    break;
                }
                live += 1;
                entries.push(entry);
            }
        }
    }
    if deep && (live != count || dead != deleted) {
        return Err("stream listpack: entry counts do not match the master entry");
    }
    let (count, deleted) = (live, dead);
    let node = Node {
        master_fields,
        live: count as u64,
        deleted: deleted as u64,
        bytes_rest: blob
            .len()
            .saturating_sub(crate::storage::stream::lp_int_size(count))
            .saturating_sub(crate::storage::stream::lp_int_size(deleted)),
    };
    Ok((node, entries))
}

/// One record after the master entry: `None` for a deleted one, else its ID and fields.
fn parse_record<'i>(
    it: &mut impl Iterator<Item = &'i Item<'i>>,
    flags: &Item<'_>,
    master: StreamId,
    master_fields: &[Bytes],
    items_len: usize,
    deep: bool,
) -> Result<Option<(StreamId, Vec<Bytes>)>, &'static str> {
    let flags = int_of(Some(flags))?;
    let ms = master.ms.wrapping_add(int_of(it.next())? as u64);
    let seq = master.seq.wrapping_add(int_of(it.next())? as u64);
    let mut fields = Vec::new();
    if flags & FLAG_SAMEFIELDS != 0 {
        for f in master_fields {
            fields.push(f.clone());
            fields.push(bytes_of(it.next())?);
        }
    } else {
        let n = int_of(it.next())?;
        if !(0..=items_len as i64).contains(&n) {
            return Err("stream listpack: bad field count");
        }
        for _ in 0..n * 2 {
            fields.push(bytes_of(it.next())?);
        }
    }
    // The record's item count (`lp-count`), as `streamValidateListpackIntegrity` checks in
    // deep mode (we rebuild it when saving, so an unchecked wrong count is harmless).
    let lp_count = int_of(it.next())?;
    let expected = if flags & FLAG_SAMEFIELDS != 0 {
        master_fields.len() as i64 + 3
    } else {
        fields.len() as i64 + 4
    };
    if deep && lp_count != expected {
        return Err("stream listpack: bad record item count");
    }
    if flags & FLAG_DELETED != 0 {
        return Ok(None);
    }
    Ok(Some((StreamId::new(ms, seq), fields)))
}

/// Builds a group from its loaded parts; fails on a consumer PEL entry the group lacks.
pub(crate) fn build_group(
    last_id: StreamId,
    entries_read: i64,
    pel: BTreeMap<StreamId, (u64, u64)>,
    consumers: Vec<(Bytes, u64, Vec<StreamId>)>,
) -> Result<Group, &'static str> {
    let mut g = Group::new(last_id, entries_read);
    let mut owned: BTreeMap<StreamId, Bytes> = BTreeMap::new();
    for (name, seen, ids) in consumers {
        if g.consumers.contains_key(&name) {
            return Err("Duplicate stream consumer detected.");
        }
        let mut set = BTreeSet::new();
        for id in ids {
            if !pel.contains_key(&id) {
                return Err("Consumer PEL entry not found in group global PEL");
            }
            if owned.insert(id, name.clone()).is_some() || !set.insert(id) {
                return Err("Duplicated consumer PEL entry loading a stream consumer group");
            }
        }
        g.consumers.insert(
            name,
            Consumer {
                seen_time: seen,
                pel: set,
            },
        );
    }
    for (id, (time, count)) in pel {
        // A NACK no consumer owns is invalid in Redis too (it fails the deep check).
        let Some(consumer) = owned.get(&id).cloned() else {
            return Err("Stream PEL entry without a consumer");
        };
        g.pel.insert(
            id,
            Nack {
                consumer,
                delivery_time: time,
                delivery_count: count,
            },
        );
    }
    Ok(g)
}
