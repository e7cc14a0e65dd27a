//! A shard's tracking table: the clients that read each key of the shard, and the keys
//! modified since the last broadcast to BCAST clients.
//!
//! Every function here runs under the shard's lock (the table is a field of `ShardData`), so
//! an invalidation is queued for its client before any later command can read the key's new
//! value (see the module above for how the queue reaches the wire in order).

use super::{
    current, flags, key_payload, null_payload, send, BCAST_PENDING, BCAST_TOUCHED, CLIENTS,
    DEFERRED, DIRECTORY, PREFIXES, PREFIX_COUNT, TOTAL_ITEMS, TOTAL_KEYS,
};
use bytes::Bytes;
use hashbrown::HashMap;
use std::collections::BTreeMap;
use std::sync::atomic::Ordering;

#[derive(Default)]
pub struct Table {
    /// Key → ids of the clients that may cache it.
    keys: HashMap<Box<[u8]>, Vec<u64>>,
    /// Keys modified since the last broadcast → the id of the client that modified each last
    /// (0: the server itself, expiry or eviction), for NOLOOP.
    bcast: BTreeMap<Box<[u8]>, u64>,
}

impl Table {
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Remembers that client `id` read `key` (Redis's `trackingRememberKeys`).
    pub fn remember(&mut self, key: &[u8], id: u64) {
        let ids = match self.keys.get_mut(key) {
            Some(ids) => ids,
            None => {
                TOTAL_KEYS.fetch_add(1, Ordering::Relaxed);
                self.keys.entry(key.into()).or_default()
            }
        };
        if !ids.contains(&id) {
            ids.push(id);
            TOTAL_ITEMS.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// `key` of shard `shard` changed: queue it for BCAST clients and invalidate it for the
    /// clients that read it. `writer` is the client that changed it (0: expiry, eviction).
    pub fn key_modified(&mut self, shard: usize, key: &[u8], writer: u64) {
        if PREFIX_COUNT.load(Ordering::Relaxed) > 0 {
            if self.bcast.is_empty() {
                BCAST_PENDING.fetch_add(1, Ordering::Relaxed);
            }
            self.bcast.insert(key.into(), writer);
            BCAST_TOUCHED.with(|t| t.set(t.get() | 1u64 << (shard % 64)));
        }
        self.invalidate(key);
    }

    /// A command changed `key`: the writer is the current client.
    pub fn key_written(&mut self, shard: usize, key: &[u8]) {
        let (writer, _) = current();
        self.key_modified(shard, key, writer);
    }

    /// Sends invalidations for `key` to the clients that read it and forgets them (Redis's
    /// `trackingInvalidateKey`).
    fn invalidate(&mut self, key: &[u8]) {
        let Some(ids) = self.keys.remove(key) else {
            return;
        };
        TOTAL_KEYS.fetch_sub(1, Ordering::Relaxed);
        Self::notify(key, ids);
    }

    /// Sends the invalidation of `key` to the clients in `ids` that still want it.
    fn notify(key: &[u8], ids: Vec<u64>) {
        TOTAL_ITEMS.fetch_sub(ids.len(), Ordering::Relaxed);
        let (cur, in_call) = current();
        let dir = DIRECTORY.read();
        let mut payload: Option<Bytes> = None;
        for id in ids {
            let Some(c) = dir.get(&id) else { continue };
            let f = c.tracking.flags();
            // A client that switched to BCAST gets nothing for keys read before.
            if f & flags::ON == 0 || f & flags::BCAST != 0 {
                continue;
            }
            if id == cur {
                if f & flags::NOLOOP != 0 {
                    continue;
                }
                if in_call {
                    DEFERRED.with(|d| d.borrow_mut().push(Some(Bytes::copy_from_slice(key))));
                    continue;
                }
            }
            let p = payload.get_or_insert_with(|| key_payload(key)).clone();
            send(&dir, c, p);
        }
    }

    /// Evicts keys while the tracking table as a whole holds more than `max_keys`
    /// (`tracking-table-max-keys`), invalidating them as if modified (Redis's
    /// `trackingLimitUsedSlots`). Each eviction first claims one unit of the global count, so
    /// shards evicting at once never go below the limit together.
    pub fn limit(&mut self, max_keys: usize) {
        if max_keys == 0 || self.keys.is_empty() {
            return;
        }
        let over = TOTAL_KEYS.load(Ordering::Relaxed).saturating_sub(max_keys);
        if over == 0 {
            return;
        }
        let victims: Vec<Box<[u8]>> = self.keys.keys().take(over).cloned().collect();
        for k in victims {
            let claimed = TOTAL_KEYS
                .fetch_update(Ordering::AcqRel, Ordering::Relaxed, |n| {
                    (n > max_keys).then_some(n - 1)
                })
                .is_ok();
            if !claimed {
                break;
            }
            match self.keys.remove(&k) {
                Some(ids) => Self::notify(&k, ids),
                None => {
                    TOTAL_KEYS.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
    }

    /// Drops every key (FLUSHALL, FLUSHDB, SWAPDB: clients got a null invalidation).
    pub fn clear(&mut self) {
        let items: usize = self.keys.values().map(|v| v.len()).sum();
        TOTAL_KEYS.fetch_sub(self.keys.len(), Ordering::Relaxed);
        TOTAL_ITEMS.fetch_sub(items, Ordering::Relaxed);
        self.keys = HashMap::new();
    }

    /// Sends the keys modified since the last call to the BCAST clients of the prefixes they
    /// match: one array per prefix, without the client's own writes under NOLOOP (Redis's
    /// `trackingBroadcastInvalidationMessages`).
    pub fn broadcast(&mut self) {
        if self.bcast.is_empty() {
            return;
        }
        BCAST_PENDING.fetch_sub(1, Ordering::Relaxed);
        let keys = std::mem::take(&mut self.bcast);
        if CLIENTS.load(Ordering::Relaxed) == 0 {
            return;
        }
        let prefixes = PREFIXES.read();
        let dir = DIRECTORY.read();
        for (prefix, ids) in prefixes.iter() {
            let matching: Vec<(&[u8], u64)> = keys
                .range::<[u8], _>((
                    std::ops::Bound::Included(&prefix[..]),
                    std::ops::Bound::Unbounded,
                ))
                .take_while(|(k, _)| k.starts_with(prefix))
                .map(|(k, w)| (&k[..], *w))
                .collect();
            if matching.is_empty() {
                continue;
            }
            let common = keys_payload(&matching, 0);
            for id in ids {
                let Some(c) = dir.get(id) else { continue };
                if c.tracking.flags() & flags::NOLOOP != 0 {
                    if let Some(p) = keys_payload(&matching, *id) {
                        send(&dir, c, p);
                    }
                } else if let Some(p) = &common {
                    send(&dir, c, p.clone());
                }
            }
        }
    }
}

/// The RESP array of `keys`, leaving out those last written by `except` (0: none). None when
/// nothing is left.
fn keys_payload(keys: &[(&[u8], u64)], except: u64) -> Option<Bytes> {
    let kept: Vec<&[u8]> = keys
        .iter()
        .filter(|(_, w)| except == 0 || *w != except)
        .map(|(k, _)| *k)
        .collect();
    if kept.is_empty() {
        return None;
    }
    let mut v = Vec::with_capacity(kept.iter().map(|k| k.len() + 16).sum::<usize>() + 16);
    v.extend_from_slice(format!("*{}\r\n", kept.len()).as_bytes());
    for k in kept {
        v.extend_from_slice(format!("${}\r\n", k.len()).as_bytes());
        v.extend_from_slice(k);
        v.extend_from_slice(b"\r\n");
    }
    Some(Bytes::from(v))
}

/// Whether any shard holds keys waiting for a broadcast.
pub fn broadcast_pending() -> bool {
    BCAST_PENDING.load(Ordering::Relaxed) > 0
}

/// The shards (bit i % 64) this thread queued broadcast keys on since the last call.
pub fn take_bcast_touched() -> u64 {
    BCAST_TOUCHED.with(|t| t.replace(0))
}

/// Every database was flushed or swapped (tables of the locked shards — all of them —
/// cleared by the caller): every tracking client is told all its keys are invalid with a
/// null, the current client after its reply (Redis's `trackingInvalidateKeysOnFlush`).
pub fn flushed() {
    if CLIENTS.load(Ordering::Relaxed) == 0 {
        return;
    }
    let (cur, in_call) = current();
    let dir = DIRECTORY.read();
    for (id, c) in dir.iter() {
        if c.tracking.flags() & flags::ON == 0 {
            continue;
        }
        if *id == cur && in_call {
            DEFERRED.with(|d| d.borrow_mut().push(None));
            continue;
        }
        send(&dir, c, null_payload(c.proto.load(Ordering::Relaxed)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn broadcast_payload_skips_own_writes() {
        let keys: Vec<(&[u8], u64)> = vec![(b"a", 1), (b"b", 2)];
        assert_eq!(
            &keys_payload(&keys, 0).unwrap()[..],
            b"*2\r\n$1\r\na\r\n$1\r\nb\r\n"
        );
        assert_eq!(&keys_payload(&keys, 1).unwrap()[..], b"*1\r\n$1\r\nb\r\n");
        assert!(keys_payload(&[(b"a", 1)], 1).is_none());
    }
}
