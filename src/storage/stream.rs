//! Streams: an append-only log of entries ordered by ID, plus consumer groups.
//!
//! Entries live in one ordered map (ID → field/value pairs). Redis keeps them in listpack
//! "nodes" keyed by the node's first ("master") ID in a radix tree, and that layout is
//! observable: approximate trimming (`MAXLEN ~`, `MINID ~`) removes whole nodes only, and
//! the RDB file stores the nodes. So beside the entries we keep the node layout as Redis
//! would have built it (`nodes`: master ID → counts and the listpack's byte size, computed
//! with Redis's listpack encoding rules), which decides node boundaries exactly as
//! `streamAppendItem` does (`stream-node-max-bytes`, `stream-node-max-entries`).
//!
//! Consumer groups keep Redis's structures: a group's pending entries list (PEL, ID →
//! NACK) and each consumer's own PEL (a set of IDs whose NACKs live in the group's PEL).
//! Invariant: an ID is in a consumer's PEL iff the group's NACK for it names that consumer.

use bytes::Bytes;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

/// A stream entry ID: milliseconds and sequence, ordered as a 128-bit number.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct StreamId {
    pub ms: u64,
    pub seq: u64,
}

impl StreamId {
    pub const MIN: StreamId = StreamId { ms: 0, seq: 0 };
    pub const MAX: StreamId = StreamId {
        ms: u64::MAX,
        seq: u64::MAX,
    };

    pub fn new(ms: u64, seq: u64) -> StreamId {
        StreamId { ms, seq }
    }

    pub fn is_zero(&self) -> bool {
        self.ms == 0 && self.seq == 0
    }

    /// The successor (`streamIncrID`); None past the maximum.
    pub fn incr(self) -> Option<StreamId> {
        if self.seq == u64::MAX {
            if self.ms == u64::MAX {
                None
            } else {
                Some(StreamId::new(self.ms + 1, 0))
            }
        } else {
            Some(StreamId::new(self.ms, self.seq + 1))
        }
    }

    /// The predecessor (`streamDecrID`); None before 0-0.
    pub fn decr(self) -> Option<StreamId> {
        if self.seq == 0 {
            if self.ms == 0 {
                None
            } else {
                Some(StreamId::new(self.ms - 1, u64::MAX))
            }
        } else {
            Some(StreamId::new(self.ms, self.seq - 1))
        }
    }

    /// The 16-byte big-endian form Redis uses as radix tree key (and in RDB PELs).
    pub fn to_be_bytes(self) -> [u8; 16] {
        let mut b = [0u8; 16];
        b[..8].copy_from_slice(&self.ms.to_be_bytes());
        b[8..].copy_from_slice(&self.seq.to_be_bytes());
        b
    }

    pub fn from_be_bytes(b: &[u8]) -> Option<StreamId> {
        let ms = u64::from_be_bytes(b.get(..8)?.try_into().ok()?);
        let seq = u64::from_be_bytes(b.get(8..16)?.try_into().ok()?);
        Some(StreamId::new(ms, seq))
    }
}

impl fmt::Display for StreamId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.ms, self.seq)
    }
}

/// A listpack node's bookkeeping, as Redis's node for the same appends would hold it.
#[derive(Clone, Debug, PartialEq)]
pub struct Node {
    /// The master entry's fields (those of the node's first entry).
    pub master_fields: Vec<Bytes>,
    /// Live entries (the master entry's `count`).
    pub live: u64,
    /// Entries flagged deleted (the master entry's `deleted`).
    pub deleted: u64,
    /// Listpack bytes other than the `count` and `deleted` elements.
    pub bytes_rest: usize,
}

impl Node {
    /// `lpBytes` of the node's listpack.
    pub fn bytes(&self) -> usize {
        self.bytes_rest + lp_int_size(self.live as i64) + lp_int_size(self.deleted as i64)
    }
}

/// The NACK of a delivered, not yet acknowledged entry.
#[derive(Clone, Debug, PartialEq)]
pub struct Nack {
    pub consumer: Bytes,
    /// Unix ms of the last delivery.
    pub delivery_time: u64,
    pub delivery_count: u64,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Consumer {
    /// Unix ms of the last interaction (Redis 7.0's `seen-time`).
    pub seen_time: u64,
    pub pel: BTreeSet<StreamId>,
}

/// `SCG_INVALID_ENTRIES_READ`: the group's read counter is unknown.
pub const ENTRIES_READ_INVALID: i64 = -1;

#[derive(Clone, Debug, PartialEq)]
pub struct Group {
    pub last_id: StreamId,
    pub entries_read: i64,
    pub pel: BTreeMap<StreamId, Nack>,
    pub consumers: BTreeMap<Bytes, Consumer>,
}

impl Group {
    pub fn new(last_id: StreamId, entries_read: i64) -> Group {
        Group {
            last_id,
            entries_read,
            pel: BTreeMap::new(),
            consumers: BTreeMap::new(),
        }
    }

    /// Removes a pending entry from the group and from its consumer's PEL.
    pub fn ack(&mut self, id: StreamId) -> bool {
        let Some(nack) = self.pel.remove(&id) else {
            return false;
        };
        if let Some(c) = self.consumers.get_mut(&nack.consumer) {
            c.pel.remove(&id);
        }
        true
    }

    /// Creates the consumer if it does not exist. True when created.
    pub fn create_consumer(&mut self, name: &[u8], now_ms: u64) -> bool {
        if self.consumers.contains_key(name) {
            return false;
        }
        self.consumers.insert(
            Bytes::copy_from_slice(name),
            Consumer {
                seen_time: now_ms,
                pel: BTreeSet::new(),
            },
        );
        true
    }

    /// Deletes a consumer and its pending entries; returns how many were pending.
    pub fn delete_consumer(&mut self, name: &[u8]) -> Option<usize> {
        let c = self.consumers.remove(name)?;
        for id in &c.pel {
            self.pel.remove(id);
        }
        Some(c.pel.len())
    }

    /// Gives pending entry `id` to `consumer` (creating the NACK when absent).
    pub fn assign(&mut self, id: StreamId, consumer: &Bytes, time: u64, count: u64) {
        if let Some(old) = self.pel.get(&id) {
            if let Some(c) = self.consumers.get_mut(&old.consumer) {
                c.pel.remove(&id);
            }
        }
        self.pel.insert(
            id,
            Nack {
                consumer: consumer.clone(),
                delivery_time: time,
                delivery_count: count,
            },
        );
        if let Some(c) = self.consumers.get_mut(consumer) {
            c.pel.insert(id);
        }
    }
}

#[derive(Clone, Debug, PartialEq, Default)]
pub struct Stream {
    entries: BTreeMap<StreamId, Vec<Bytes>>,
    nodes: BTreeMap<StreamId, Node>,
    pub last_id: StreamId,
    pub max_deleted_id: StreamId,
    pub entries_added: u64,
    pub groups: BTreeMap<Bytes, Group>,
}

/// Why an append failed.
#[derive(Debug, PartialEq, Eq)]
pub enum AppendError {
    /// The ID is not greater than the last one (EDOM).
    NotGreater,
    /// The fields exceed a listpack's capacity (ERANGE).
    TooLarge,
}

/// `STREAM_LISTPACK_MAX_SIZE`.
pub const LISTPACK_MAX_SIZE: usize = (1 << 30) - 1;

/// How trimming is bounded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Trim {
    MaxLen(u64),
    MinId(StreamId),
}

/// Node layout settings (`stream-node-max-bytes`, `stream-node-max-entries`).
#[derive(Clone, Copy, Debug)]
pub struct NodeLimits {
    pub max_bytes: u64,
    pub max_entries: u64,
}

impl NodeLimits {
    pub fn current() -> NodeLimits {
        use super::limits::{get, LIMITS};
        NodeLimits {
            max_bytes: get(&LIMITS.stream_node_max_bytes).max(0) as u64,
            max_entries: get(&LIMITS.stream_node_max_entries).max(0) as u64,
        }
    }
}

impl Stream {
    pub fn new() -> Stream {
        Stream::default()
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn first_id(&self) -> StreamId {
        self.entries.keys().next().copied().unwrap_or_default()
    }

    /// The last live entry's ID (0-0 when empty), not `last_id`.
    pub fn last_entry_id(&self) -> StreamId {
        self.entries.keys().next_back().copied().unwrap_or_default()
    }

    pub fn get(&self, id: &StreamId) -> Option<&Vec<Bytes>> {
        self.entries.get(id)
    }

    pub fn contains(&self, id: &StreamId) -> bool {
        self.entries.contains_key(id)
    }

    pub fn first_entry(&self) -> Option<(&StreamId, &Vec<Bytes>)> {
        self.entries.iter().next()
    }

    pub fn last_entry(&self) -> Option<(&StreamId, &Vec<Bytes>)> {
        self.entries.iter().next_back()
    }

    /// Entries in `start..=end`, ascending (none when start > end).
    pub fn range(
        &self,
        start: StreamId,
        end: StreamId,
    ) -> impl DoubleEndedIterator<Item = (&StreamId, &Vec<Bytes>)> {
        use std::ops::Bound::{Excluded, Included};
        let bounds = if start > end {
            (Included(StreamId::MAX), Excluded(StreamId::MAX))
        } else {
            (Included(start), Included(end))
        };
        self.entries.range(bounds)
    }

    pub fn iter(&self) -> impl DoubleEndedIterator<Item = (&StreamId, &Vec<Bytes>)> {
        self.entries.iter()
    }

    pub fn nodes(&self) -> impl Iterator<Item = (&StreamId, &Node)> {
        self.nodes.iter()
    }

    pub fn node_count(&self) -> usize {
        self.nodes.len()
    }

    /// The ID `XADD` would give: explicit (`Some(id)`, with `seq_given` false for `ms-*`) or
    /// automatic from `now_ms`.
    pub fn next_id(
        &self,
        explicit: Option<StreamId>,
        seq_given: bool,
        now_ms: u64,
    ) -> Result<StreamId, AppendError> {
        let id = match explicit {
            Some(id) if seq_given => id,
            Some(id) if id.ms == self.last_id.ms => {
                if self.last_id.seq == u64::MAX {
                    return Err(AppendError::NotGreater);
                }
                StreamId::new(id.ms, self.last_id.seq + 1)
            }
            Some(id) => id,
            None if now_ms > self.last_id.ms => StreamId::new(now_ms, 0),
            None => self.last_id.incr().unwrap_or_default(),
        };
        if id <= self.last_id {
            return Err(AppendError::NotGreater);
        }
        Ok(id)
    }

    /// Appends an entry (`streamAppendItem`) with an ID from `next_id`.
    pub fn append(
        &mut self,
        id: StreamId,
        fields: Vec<Bytes>,
        limits: NodeLimits,
    ) -> Result<(), AppendError> {
        if id <= self.last_id {
            return Err(AppendError::NotGreater);
        }
        let total_len: usize = fields.iter().map(|f| f.len()).sum();
        if total_len > LISTPACK_MAX_SIZE {
            return Err(AppendError::TooLarge);
        }
        let node_max = if limits.max_bytes == 0 || limits.max_bytes > LISTPACK_MAX_SIZE as u64 {
            LISTPACK_MAX_SIZE as u64
        } else {
            limits.max_bytes
        };
        let new_node = match self.nodes.iter().next_back() {
            None => true,
            Some((_, n)) => {
                (n.bytes() + total_len) as u64 >= node_max
                    || (limits.max_entries != 0 && n.live + n.deleted >= limits.max_entries)
            }
        };
        if new_node {
            let master_fields: Vec<Bytes> = fields.iter().step_by(2).cloned().collect();
            // Header and end byte, then the master entry without count and deleted.
            let mut rest = 7 + lp_int_size(master_fields.len() as i64) + lp_int_size(0);
            rest += master_fields.iter().map(|f| lp_str_size(f)).sum::<usize>();
            self.nodes.insert(
                id,
                Node {
                    master_fields,
                    live: 0,
                    deleted: 0,
                    bytes_rest: rest,
                },
            );
        }
        if let Some((master, node)) = self.nodes.iter_mut().next_back() {
            node.bytes_rest += entry_size(master, node, id, &fields);
            node.live += 1;
        }
        self.entries.insert(id, fields);
        self.last_id = id;
        self.entries_added += 1;
        Ok(())
    }

    /// Deletes one entry (`streamDeleteItem`): flags it deleted in its node, dropping the
    /// node when no live entry remains.
    pub fn delete(&mut self, id: StreamId) -> bool {
        if self.entries.remove(&id).is_none() {
            return false;
        }
        let master = self.nodes.range(..=id).next_back().map(|(m, _)| *m);
        if let Some(m) = master {
            let emptied = self.nodes.get_mut(&m).is_some_and(|n| {
                n.live -= 1;
                n.deleted += 1;
                n.live == 0
            });
            if emptied {
                self.nodes.remove(&m);
            }
        }
        true
    }

    /// Trims as `streamTrim` does: whole nodes while that keeps the bound, then (unless
    /// `approx`) entries inside the next node. `limit` 0 = no limit. Returns the number of
    /// entries removed.
    pub fn trim(&mut self, how: Trim, approx: bool, limit: u64) -> u64 {
        let mut deleted = 0u64;
        while let Some((&master, node)) = self.nodes.iter().next() {
            if let Trim::MaxLen(max) = how {
                if self.entries.len() as u64 <= max {
                    break;
                }
            }
            let live = node.live;
            if limit != 0 && deleted + live > limit {
                break;
            }
            let next_master = self.nodes.range(master..).nth(1).map(|(m, _)| *m);
            let remove_node = match how {
                Trim::MaxLen(max) => self.entries.len() as u64 - live >= max,
                Trim::MinId(min) => {
                    // The node's last ID (deleted entries included, as Redis reads it from
                    // the listpack's tail); live entries are what we have, and a deleted tail
                    // never raises it above the next node's master.
                    let last = match next_master {
                        Some(n) => self.entries.range(master..n).next_back(),
                        None => self.entries.range(master..).next_back(),
                    };
                    last.is_none_or(|(id, _)| *id < min)
                }
            };
            let ids: Vec<StreamId> = match next_master {
                Some(n) => self.entries.range(master..n).map(|(id, _)| *id).collect(),
                None => self.entries.range(master..).map(|(id, _)| *id).collect(),
            };
            if remove_node {
                for id in &ids {
                    self.entries.remove(id);
                }
                self.nodes.remove(&master);
                deleted += live;
                continue;
            }
            if approx {
                break;
            }
            let mut from_node = 0;
            for id in ids {
                let stop = match how {
                    Trim::MaxLen(max) => self.entries.len() as u64 <= max,
                    Trim::MinId(min) => id >= min,
                };
                if stop {
                    break;
                }
                self.entries.remove(&id);
                from_node += 1;
            }
            if let Some(n) = self.nodes.get_mut(&master) {
                n.live -= from_node;
                n.deleted += from_node;
            }
            deleted += from_node;
            break;
        }
        deleted
    }

    /// Whether a deleted entry may lie in `start..=end` (`streamRangeHasTombstones`).
    pub fn range_has_tombstones(&self, start: StreamId, end: StreamId) -> bool {
        if self.is_empty() || self.max_deleted_id.is_zero() {
            return false;
        }
        if self.first_id() > self.max_deleted_id {
            return false;
        }
        start <= self.max_deleted_id && self.max_deleted_id <= end
    }

    /// `streamEstimateDistanceFromFirstEverEntry`: the logical read counter of `id`, or
    /// `ENTRIES_READ_INVALID` when it cannot be known.
    pub fn estimate_distance(&self, id: StreamId) -> i64 {
        if self.entries_added == 0 {
            return 0;
        }
        let added = self.entries_added as i64;
        if self.is_empty() && id <= self.last_id {
            return added;
        }
        if id == self.last_id {
            return added;
        } else if id > self.last_id {
            return ENTRIES_READ_INVALID;
        }
        let first = self.first_id();
        if self.max_deleted_id.is_zero() || self.max_deleted_id < first {
            if id < first {
                return added - self.len() as i64;
            } else if id == first {
                return added - self.len() as i64 + 1;
            }
        }
        ENTRIES_READ_INVALID
    }

    /// A group's lag (`streamReplyWithCGLag`), None when unknown.
    pub fn lag(&self, g: &Group) -> Option<i64> {
        if self.entries_added == 0 {
            return Some(0);
        }
        let added = self.entries_added as i64;
        if g.entries_read != ENTRIES_READ_INVALID
            && !self.range_has_tombstones(g.last_id, StreamId::MAX)
        {
            return Some(added - g.entries_read);
        }
        let read = self.estimate_distance(g.last_id);
        (read != ENTRIES_READ_INVALID).then(|| added - read)
    }

    /// Approximate heap bytes: each entry's map slot, field vector and field bytes (shared
    /// `Bytes` counted once per entry), the node bookkeeping, and the groups' PELs.
    pub fn heap_bytes(&self) -> usize {
        use std::mem::size_of;
        let entries: usize = self
            .entries
            .values()
            .map(|f| {
                size_of::<(StreamId, Vec<Bytes>)>()
                    + f.capacity() * size_of::<Bytes>()
                    + f.iter().map(|b| b.len()).sum::<usize>()
            })
            .sum();
        let nodes = self.nodes.len() * size_of::<(StreamId, Node)>();
        let groups: usize = self
            .groups
            .values()
            .map(|g| {
                size_of::<Group>()
                    + g.pel.len() * (size_of::<(StreamId, Nack)>() + size_of::<StreamId>())
                    + g.consumers.len() * size_of::<(Bytes, Consumer)>()
            })
            .sum();
        entries + nodes + groups
    }

    /// Rebuilds a node from a loaded file: its master ID, master fields, live and deleted
    /// counts and its listpack's size.
    pub fn load_node(
        &mut self,
        master: StreamId,
        node: Node,
        entries: Vec<(StreamId, Vec<Bytes>)>,
    ) {
        for (id, f) in entries {
            self.entries.insert(id, f);
        }
        self.nodes.insert(master, node);
    }
}

// ----- Redis listpack element sizes (header + data + backlen) -----

fn backlen_size(l: usize) -> usize {
    match l {
        0..=127 => 1,
        128..=16382 => 2,
        16383..=2097150 => 3,
        2097151..=268435454 => 4,
        _ => 5,
    }
}

/// Bytes an integer element takes in a Redis listpack.
pub fn lp_int_size(v: i64) -> usize {
    let enc = if (0..=127).contains(&v) {
        1
    } else if (-4096..=4095).contains(&v) {
        2
    } else if (-32768..=32767).contains(&v) {
        3
    } else if (-8388608..=8388607).contains(&v) {
        4
    } else if (-2147483648..=2147483647).contains(&v) {
        5
    } else {
        9
    };
    enc + backlen_size(enc)
}

/// Bytes a string element takes (canonical integers are stored as integers).
pub fn lp_str_size(s: &[u8]) -> usize {
    if let Some(v) = super::value::parse_canonical_i64(s) {
        return lp_int_size(v);
    }
    let l = s.len();
    let enc = if l <= 63 {
        1 + l
    } else if l <= 4095 {
        2 + l
    } else {
        5 + l
    };
    enc + backlen_size(enc)
}

/// Whether an entry's fields equal the node's master fields (`STREAM_ITEM_FLAG_SAMEFIELDS`).
pub fn same_fields(node: &Node, fields: &[Bytes]) -> bool {
    fields.len() / 2 == node.master_fields.len()
        && fields
            .iter()
            .step_by(2)
            .zip(&node.master_fields)
            .all(|(a, b)| a == b)
}

/// The listpack bytes of one appended entry.
fn entry_size(master: &StreamId, node: &Node, id: StreamId, fields: &[Bytes]) -> usize {
    let same = same_fields(node, fields);
    let numfields = fields.len() / 2;
    let flags = if same { 2 } else { 0 };
    let mut size = lp_int_size(flags)
        + lp_int_size(id.ms.wrapping_sub(master.ms) as i64)
        + lp_int_size(id.seq.wrapping_sub(master.seq) as i64);
    let lp_count = if same {
        size += fields
            .iter()
            .skip(1)
            .step_by(2)
            .map(|v| lp_str_size(v))
            .sum::<usize>();
        numfields + 3
    } else {
        size += lp_int_size(numfields as i64);
        size += fields.iter().map(|f| lp_str_size(f)).sum::<usize>();
        numfields * 2 + 4
    };
    size + lp_int_size(lp_count as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fv(n: usize) -> Vec<Bytes> {
        vec![Bytes::from("item"), Bytes::from(n.to_string())]
    }

    #[test]
    fn nodes_split_by_entries_and_trim_whole_nodes() {
        let limits = NodeLimits {
            max_bytes: 4096,
            max_entries: 10,
        };
        let mut s = Stream::new();
        for i in 1..=25u64 {
            s.append(StreamId::new(i, 0), fv(i as usize), limits)
                .unwrap();
        }
        assert_eq!(s.node_count(), 3);
        assert_eq!(s.trim(Trim::MaxLen(12), true, 0), 10);
        assert_eq!(s.len(), 15);
        assert_eq!(s.trim(Trim::MaxLen(12), false, 0), 3);
        assert_eq!(s.len(), 12);
        assert_eq!(s.first_id(), StreamId::new(14, 0));
        assert!(s.delete(StreamId::new(14, 0)));
        assert!(!s.delete(StreamId::new(14, 0)));
        assert_eq!(s.trim(Trim::MinId(StreamId::new(21, 0)), false, 0), 6);
        assert_eq!(s.len(), 5);
    }

    #[test]
    fn listpack_sizes() {
        assert_eq!(lp_int_size(1), 2);
        assert_eq!(lp_int_size(200), 3);
        assert_eq!(lp_str_size(b"item"), 6);
        assert_eq!(lp_str_size(b"12"), 2);
    }
}
