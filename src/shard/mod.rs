//! Shards: one pinned thread per core, each a single-threaded event loop on its own ring, each
//! owning the keys of its hash slots.
//!
//! ## Ownership
//! A shard's `ShardData` (its databases, per-slot tables) is used by its own thread for every
//! command whose keys it owns: commands of its own connections inline, commands of other
//! shards' connections that arrive through the mesh (`mesh`). Connections live on the shard
//! that accepted them (each shard has its own SO_REUSEPORT listener).
//!
//! ## The cross-shard path
//! A command whose keys all live on one other shard travels there in a `Msg::Exec`. Every
//! command a connection pipelines to the same shard in one loop turn rides in the same message,
//! and the owner answers with all their replies in one `Msg::Replies`. A connection with
//! commands in flight keeps sending to that same shard (the queue is FIFO, so order holds) but
//! parks any other command until the replies are back: its replies therefore always leave in
//! request order, and a command never overtakes an earlier one of the same client.
//!
//! ## The transaction mechanism: shard locks in shard order
//! Atomic multi-shard operations (MSET over several shards, multi-key DEL/EXISTS, RENAME across
//! shards, and later MULTI/EXEC, EVAL, WATCH) take the locks of every shard involved, always
//! in ascending shard id, run the whole operation over a `Keyspace` spanning them, and release
//! them. Each `ShardData` sits in a mutex that its owner thread takes around every batch of
//! commands it runs; uncontended, that costs two atomic operations, so single-shard commands
//! never pay for the mechanism. Because every thread acquires locks in the same global order,
//! and nobody waits for anything else while holding one, there is no deadlock; because all
//! the locks are held for the whole operation, no client can observe half of it. A connection
//! runs a multi-shard command only after its in-flight hops have returned, so its own earlier
//! writes are visible to it.
//!
//! Shared state is rare and explicit (`server::Server`): config, the client registry,
//! counters.

pub mod engine;
pub mod io;
pub mod mesh;

use crate::storage::ShardData;
use mesh::Mailbox;
use std::sync::{Mutex, MutexGuard};

/// What other threads may reach of a shard.
pub struct ShardHandle {
    pub id: usize,
    data: Mutex<ShardData>,
    pub mailbox: Mailbox,
    /// Connections on this shard (INFO shards).
    pub connections: std::sync::atomic::AtomicUsize,
}

impl ShardHandle {
    pub fn new(id: usize, nshards: usize, databases: usize) -> std::io::Result<ShardHandle> {
        Ok(ShardHandle {
            id,
            data: Mutex::new(ShardData::new(id, databases)),
            // One queue per shard plus one for non-shard threads.
            mailbox: Mailbox::new(nshards + 1)?,
            connections: Default::default(),
        })
    }

    /// Locks the shard's data. A poisoned lock (a thread panicked while holding it) is taken
    /// over: the data is plain values, always consistent between commands.
    pub fn lock_data(&self) -> MutexGuard<'_, ShardData> {
        match self.data.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        }
    }

    pub fn wake(&self) {
        self.mailbox.wake();
    }
}
