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

#[derive(Default)]
pub struct Registry {
    keys: HashMap<(usize, Box<[u8]>), Vec<WatchFlag>>,
}

impl Registry {
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    pub fn add(&mut self, db: usize, key: &[u8], flag: &WatchFlag) {
        let v = self.keys.entry((db, key.into())).or_default();
        if !v.iter().any(|f| Arc::ptr_eq(f, flag)) {
            v.push(flag.clone());
        }
    }

    pub fn remove(&mut self, db: usize, key: &[u8], flag: &WatchFlag) {
        let k = (db, Box::<[u8]>::from(key));
        if let Some(v) = self.keys.get_mut(&k) {
            v.retain(|f| !Arc::ptr_eq(f, flag));
            if v.is_empty() {
                self.keys.remove(&k);
            }
        }
    }

    /// A key changed: raise its watchers' flags.
    pub fn touch(&mut self, db: usize, key: &[u8]) {
        if self.keys.is_empty() {
            return;
        }
        if let Some(v) = self.keys.get(&(db, Box::<[u8]>::from(key))) {
            for f in v {
                f.store(true, Ordering::SeqCst);
            }
        }
    }

    /// Raises the watchers of every watched key for which `hit(db, key)` holds.
    pub fn touch_where(&mut self, hit: impl Fn(usize, &[u8]) -> bool) {
        for ((d, k), v) in self.keys.iter() {
            if hit(*d, k) {
                for f in v {
                    f.store(true, Ordering::SeqCst);
                }
            }
        }
    }
}
