//! Blocked clients (BLPOP, BLMOVE, BZPOPMIN...): who waits on which key, and which keys
//! became ready.
//!
//! A blocking command that finds nothing to pop leaves a `Waiter` in the registry of every
//! shard owning one of its keys, in the same critical section where it found the keys empty
//! (all its shards are locked then), so no push can slip between the check and the
//! registration. A write to a key with waiters (`Keyspace::signal_modified`) queues the key as
//! ready; the thread that ran the write serves the waiters after releasing its locks, in
//! arrival order, each one under the locks of the shards its serving needs.
//!
//! A waiter registered on keys of several shards may become servable on two shards at once,
//! so serving starts by claiming it (`claimed`, compare-and-swap): exactly one thread pops for
//! it; registrations of claimed waiters are dropped lazily. Timeouts, CLIENT UNBLOCK and
//! disconnection claim it the same way, so a client is never served twice or served after
//! it stopped waiting.

use crate::protocol::Out;
use crate::shard::mesh::ConnRef;
use crate::storage::Keyspace;
use bytes::Bytes;
use hashbrown::HashMap;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// Which kind of value a waiter waits for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WaitFor {
    List,
    ZSet,
    /// XREAD / XREADGROUP: the serve function's `commands::stream::waiter_ready` decides.
    Stream,
}

/// What a blocked client gets when it stops waiting without data.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NullReply {
    /// `*-1` (RESP2) / `_` (RESP3): BLPOP, BRPOP, BLMPOP, BZPOP*, BZMPOP.
    Array,
    /// `$-1` / `_`: BLMOVE, BRPOPLPUSH.
    Bulk,
}

/// Serves a waiter from a ready key that holds data of the right kind: pops, writes the reply.
/// `args` are the blocked command's arguments.
pub type ServeFn = fn(&mut Keyspace, key: &[u8], args: &[Bytes], out: &mut Out);

/// What a handler asks for when it must block.
pub struct BlockRequest {
    pub keys: Vec<Bytes>,
    /// Absolute deadline in Unix ms; 0 = wait forever.
    pub deadline_ms: u64,
    pub wait_for: WaitFor,
    pub null: NullReply,
    pub serve: ServeFn,
    /// A key the serving also writes (BLMOVE's destination), whose shard must be locked too.
    pub extra_key: Option<Bytes>,
    /// The arguments serving sees, when not the command's own (XREAD with `$` resolved).
    pub args: Option<Vec<Bytes>>,
}

pub struct Waiter {
    pub conn: ConnRef,
    /// The blocked client's id (it is the current client while it is served).
    pub client_id: u64,
    pub claimed: AtomicBool,
    pub db: usize,
    pub proto: u8,
    pub args: Vec<Bytes>,
    pub req: BlockRequest,
}

impl Waiter {
    /// Takes the right to answer this waiter. True for exactly one caller.
    pub fn claim(&self) -> bool {
        self.claimed
            .compare_exchange(false, true, Ordering::SeqCst, Ordering::SeqCst)
            .is_ok()
    }

    pub fn is_claimed(&self) -> bool {
        self.claimed.load(Ordering::SeqCst)
    }
}

/// A shard's blocked-client registry.
/// Waiters by (db, key), in arrival order.
type Queues = HashMap<(usize, Box<[u8]>), VecDeque<Arc<Waiter>>>;

#[derive(Default)]
pub struct Registry {
    waiters: Queues,
    /// Keys with waiters that were written since the last serve.
    pub ready: Vec<(usize, Box<[u8]>)>,
}

impl Registry {
    pub fn is_empty(&self) -> bool {
        self.waiters.is_empty()
    }

    pub fn add(&mut self, db: usize, key: &[u8], w: Arc<Waiter>) {
        self.waiters
            .entry((db, key.into()))
            .or_default()
            .push_back(w);
    }

    /// Queues `key` as ready if anyone waits on it.
    pub fn signal(&mut self, db: usize, key: &[u8]) {
        if self.waiters.is_empty() {
            return;
        }
        let k = (db, Box::<[u8]>::from(key));
        if self.waiters.contains_key(&k) && !self.ready.contains(&k) {
            self.ready.push(k);
        }
    }

    /// Queues every waited-on key of `db` (all databases with `None`) as ready: after SWAPDB or
    /// FLUSHDB, any of them may now hold data (serving checks).
    pub fn signal_db(&mut self, db: Option<usize>) {
        let keys: Vec<(usize, Box<[u8]>)> = self
            .waiters
            .keys()
            .filter(|(d, _)| db.is_none_or(|x| x == *d))
            .cloned()
            .collect();
        for k in keys {
            if !self.ready.contains(&k) {
                self.ready.push(k);
            }
        }
    }

    /// Every waiter on `key` that nobody claimed yet, in arrival order (claimed ones dropped).
    pub fn unclaimed(&mut self, db: usize, key: &[u8]) -> Vec<Arc<Waiter>> {
        let k = (db, Box::<[u8]>::from(key));
        let Some(q) = self.waiters.get_mut(&k) else {
            return Vec::new();
        };
        q.retain(|w| !w.is_claimed());
        let all: Vec<Arc<Waiter>> = q.iter().cloned().collect();
        if q.is_empty() {
            self.waiters.remove(&k);
        }
        all
    }

    /// Removes a served waiter from the front of `key`'s queue.
    pub fn remove(&mut self, db: usize, key: &[u8], w: &Arc<Waiter>) {
        let k = (db, Box::<[u8]>::from(key));
        if let Some(q) = self.waiters.get_mut(&k) {
            q.retain(|x| !Arc::ptr_eq(x, w));
            if q.is_empty() {
                self.waiters.remove(&k);
            }
        }
    }

    /// Waiting clients registered here (claimed ones not yet dropped included).
    pub fn len(&self) -> usize {
        self.waiters.values().map(|q| q.len()).sum()
    }
}
