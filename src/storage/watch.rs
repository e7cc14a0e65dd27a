//! WATCH: which clients watch which keys of this shard.
//!
//! A watching client owns one `WatchFlag`; registering a key adds the flag under that key.
//! Any change to the key (`Keyspace::signal_modified`, flushes, swaps) raises every flag
//! registered under it, and EXEC aborts when its client's flag is up. Registrations are removed
//! when the client unwatches (EXEC, DISCARD, UNWATCH, RESET, disconnect).

use hashbrown::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// Raised when a watched key changes.
pub type WatchFlag = Arc<AtomicBool>;

/// Whether a watched key had logically expired (existing, deadline passed) when it was
/// watched, shared by the client's list and the registry. Redis's rules: deleting such a key
/// (lazily, actively, by a flush) is no logical change and clears the mark; EXEC aborts when a
/// key that was not expired at WATCH time is expired now.
pub type ExpiredMark = Arc<AtomicBool>;

struct Watcher {
    flag: WatchFlag,
    expired: ExpiredMark,
}

/// A watched key's state around a flush or swap of its database (Redis's
/// `touchAllWatchedKeysInDb`): whether it existed in the emptied database, and in the database
/// that replaces it (SWAPDB) whether it exists there and has expired.
pub struct Replaced {
    pub existed: bool,
    pub replacement: Option<(bool, bool)>,
}

#[derive(Default)]
pub struct Registry {
    keys: HashMap<(usize, Box<[u8]>), Vec<Watcher>>,
}

impl Registry {
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    pub fn add(&mut self, db: usize, key: &[u8], flag: &WatchFlag, expired: &ExpiredMark) {
        let v = self.keys.entry((db, key.into())).or_default();
        if !v.iter().any(|w| Arc::ptr_eq(&w.flag, flag)) {
            v.push(Watcher {
                flag: flag.clone(),
                expired: expired.clone(),
            });
        }
    }

    pub fn remove(&mut self, db: usize, key: &[u8], flag: &WatchFlag) {
        let k = (db, Box::<[u8]>::from(key));
        if let Some(v) = self.keys.get_mut(&k) {
            v.retain(|w| !Arc::ptr_eq(&w.flag, flag));
            if v.is_empty() {
                self.keys.remove(&k);
            }
        }
    }

    /// A key changed (`exists` tells whether it exists after the change): raise its
    /// watchers' flags, except where an already-expired key was merely deleted.
    pub fn touch(&mut self, db: usize, key: &[u8], exists: bool) {
        if self.keys.is_empty() {
            return;
        }
        if let Some(v) = self.keys.get(&(db, Box::<[u8]>::from(key))) {
            for w in v {
                if w.expired.load(Ordering::SeqCst) && !exists {
                    w.expired.store(false, Ordering::SeqCst);
                    continue;
                }
                w.flag.store(true, Ordering::SeqCst);
            }
        }
    }

    /// A flush or swap: `state(db, key)` describes each watched key of an affected database
    /// (None: not affected), and watchers are raised or spared by Redis's rules.
    pub fn touch_replaced(&mut self, state: impl Fn(usize, &[u8]) -> Option<Replaced>) {
        for ((d, k), v) in self.keys.iter() {
            let Some(st) = state(*d, k) else { continue };
            let replaced_exists = st.replacement.is_some_and(|(e, _)| e);
            if !st.existed && !replaced_exists {
                continue;
            }
            for w in v {
                let expired = w.expired.load(Ordering::SeqCst);
                if expired {
                    if !replaced_exists {
                        // An expired key deleted: no logical change.
                        w.expired.store(false, Ordering::SeqCst);
                        continue;
                    }
                    if st.replacement.is_some_and(|(_, exp)| exp) {
                        // Expired before, expired after.
                        continue;
                    }
                } else if !st.existed && st.replacement.is_some_and(|(_, exp)| exp) {
                    // A missing key replaced by an expired one.
                    w.expired.store(true, Ordering::SeqCst);
                    continue;
                }
                w.flag.store(true, Ordering::SeqCst);
            }
        }
    }
}
