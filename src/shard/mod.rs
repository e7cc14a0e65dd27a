//! Shards: one pinned thread per core, each a single-threaded event loop on its own ring, each
//! owning the keys of its hash slots.
//!
//! ## Ownership
//! A shard's `ShardData` (its databases, per-slot tables) sits behind its lock. Its own thread
//! uses it for commands of its own connections and for commands of other shards' connections
//! that arrive through the mesh (`mesh`); other threads use it only under its lock (the direct
//! path and the transaction mechanism below). Connections live on the shard that accepted
//! them (each shard has its own SO_REUSEPORT listener).
//!
//! ## The cross-shard path
//! A command whose keys all live on one other shard runs **directly** when it can: the home
//! thread takes the owner's lock with `try_lock_data` (one atomic operation when it is free,
//! at most `TRY_SPIN_US` of spinning when it is not, never a sleep), runs the command on the
//! owner's data exactly as a multi-shard command would (`run_data`), and writes the reply
//! itself. It can when the lock is free within that spin and none of the
//! connection's commands is queued for that shard (a queued one must not be overtaken).
//!
//! Otherwise it **hops**: it travels to the owner in a `Msg::Exec`. Every command a connection
//! pipelines to the same shard in one loop turn rides in the same message, and the owner
//! answers with all their replies in one `Msg::Replies`. A connection with commands in flight
//! keeps sending to that same shard (the queue is FIFO, so order holds) but parks any other
//! command until the replies are back: its replies therefore always leave in request order,
//! and a command never overtakes an earlier one of the same client. A hop is what happens
//! when the owner is busy with its lock: a script or transaction holding it, its own command
//! at that instant, or a batch of hops it is running.
//!
//! Why both. A hop costs two thread wake-ups when the threads sleep between turns, and on a
//! virtual machine a wake-up of an idle CPU is an inter-processor interrupt through the
//! hypervisor. Measured on this project's 2-CPU VM (`redis-benchmark -c 50 -r 100000 -t set`,
//! 2 shards, client unpinned), hops only: 21–28 µs of server CPU per request at `-P 1` and
//! 4.3–5.4 µs at `-P 16`; direct when possible: 10.8–14 µs and 2.1–2.3 µs (1 shard: 9–10.5
//! and 1.4). DESIGN §1 describes the hop alone; the direct path is our measured deviation.
//! Everything else of a shard (its connections, ring, timers, blocked clients' bookkeeping)
//! stays its own thread's.
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
use parking_lot::{ReentrantMutex, ReentrantMutexGuard};
use std::cell::UnsafeCell;
use std::sync::atomic::{AtomicBool, Ordering};

/// How long the direct cross-shard path spins for a taken lock before it hops instead.
const TRY_SPIN_US: u64 = 2;

/// A shard's data behind a re-entrant lock.
///
/// Two levels: `hold()` takes the lock only (a transaction holds every shard it needs for its
/// whole duration), `lock_data()` takes the lock and borrows the data for one command. Because
/// the lock is re-entrant, a thread that holds a shard — EXEC, a script — can run any command,
/// including ones that lock shards themselves (INFO, DEBUG), without deadlocking; the borrow
/// flag guarantees it never holds two mutable borrows of the same data at once.
pub struct ShardCell {
    lock: ReentrantMutex<()>,
    borrowed: AtomicBool,
    data: UnsafeCell<ShardData>,
}

// SAFETY: the data is only reached through `DataGuard`, which exists only while the lock is held
// by the current thread and the borrow flag is set, so at most one `&mut ShardData` exists.
unsafe impl Sync for ShardCell {}
// SAFETY: ShardData is Send; moving the cell moves it.
unsafe impl Send for ShardCell {}

/// The lock of a shard, held without borrowing its data.
pub struct LockHold<'a> {
    _guard: ReentrantMutexGuard<'a, ()>,
}

/// The lock of a shard plus a mutable borrow of its data.
pub struct DataGuard<'a> {
    _guard: ReentrantMutexGuard<'a, ()>,
    cell: &'a ShardCell,
}

impl ShardCell {
    fn new(data: ShardData) -> Self {
        ShardCell {
            lock: ReentrantMutex::new(()),
            borrowed: AtomicBool::new(false),
            data: UnsafeCell::new(data),
        }
    }

    /// The lock and the data if the lock is free now and the data not in use by this thread
    /// (a transaction or script of this thread holding the shard): never waits.
    fn try_borrow(&self) -> Option<DataGuard<'_>> {
        let guard = match self.lock.try_lock() {
            Some(g) => g,
            None => self.spin_for_lock()?,
        };
        if self.borrowed.load(Ordering::Relaxed) {
            return None;
        }
        self.borrowed.store(true, Ordering::Relaxed);
        Some(DataGuard {
            _guard: guard,
            cell: self,
        })
    }

    /// Waits up to `TRY_SPIN_US` for the lock, spinning: its holder is usually in the middle
    /// of one command, which ends sooner than a hop would cost (the owner's thread woken,
    /// then ours). Past that, the holder is doing something long or is not running.
    #[cold]
    fn spin_for_lock(&self) -> Option<parking_lot::ReentrantMutexGuard<'_, ()>> {
        let start = crate::util::cycles::now();
        loop {
            std::hint::spin_loop();
            // Read before trying: a failed attempt would take the line from the holder.
            if !self.lock.is_locked() {
                if let Some(g) = self.lock.try_lock() {
                    return Some(g);
                }
            }
            if crate::util::cycles::us_between(start, crate::util::cycles::now()) >= TRY_SPIN_US {
                return None;
            }
        }
    }

    fn hold(&self) -> LockHold<'_> {
        LockHold {
            _guard: self.lock.lock(),
        }
    }

    fn try_hold_for(&self, timeout: std::time::Duration) -> Option<LockHold<'_>> {
        self.lock
            .try_lock_for(timeout)
            .map(|g| LockHold { _guard: g })
    }

    fn borrow(&self) -> DataGuard<'_> {
        let guard = self.lock.lock();
        // Only the lock's holder reads or writes the flag (the lock orders it between
        // threads), so plain loads and stores do: no second atomic read-modify-write per
        // command.
        let was = self.borrowed.load(Ordering::Relaxed);
        // An invariant of the engine, not of input: a thread never asks for a shard's data
        // while it is already using it (transactions borrow per command).
        assert!(!was, "shard data borrowed twice by one thread");
        self.borrowed.store(true, Ordering::Relaxed);
        DataGuard {
            _guard: guard,
            cell: self,
        }
    }
}

impl std::ops::Deref for DataGuard<'_> {
    type Target = ShardData;
    fn deref(&self) -> &ShardData {
        // SAFETY: this guard holds the lock and the borrow flag (see `ShardCell`).
        unsafe { &*self.cell.data.get() }
    }
}

impl std::ops::DerefMut for DataGuard<'_> {
    fn deref_mut(&mut self) -> &mut ShardData {
        // SAFETY: this guard holds the lock and the borrow flag (see `ShardCell`).
        unsafe { &mut *self.cell.data.get() }
    }
}

impl Drop for DataGuard<'_> {
    fn drop(&mut self) {
        self.cell.borrowed.store(false, Ordering::Relaxed);
    }
}

/// What other threads may reach of a shard.
pub struct ShardHandle {
    pub id: usize,
    data: ShardCell,
    pub mailbox: Mailbox,
    /// Connections on this shard (INFO shards).
    pub connections: std::sync::atomic::AtomicUsize,
    /// Loop turns completed (written by the shard's thread only): lets another thread wait
    /// until this shard has run a whole turn (`server::buffers::catch_up`).
    pub turns: std::sync::atomic::AtomicU64,
    /// The TCP listening sockets this shard accepts on (replaced by CONFIG SET `port`/`bind`,
    /// see `server::run::rebind`).
    pub tcp_listeners: std::sync::Mutex<Vec<std::os::fd::RawFd>>,
    /// The shard sleeps with a timer that moves its replicas' pending stream bytes: feeding
    /// shards need not wake it (`engine::repl_pump`).
    pub repl_timer: std::sync::atomic::AtomicBool,
}

impl ShardHandle {
    pub fn new(id: usize, nshards: usize, databases: usize) -> std::io::Result<ShardHandle> {
        Ok(ShardHandle {
            id,
            data: ShardCell::new(ShardData::new(id, databases)),
            // One queue per shard plus one for non-shard threads.
            mailbox: Mailbox::new(nshards + 1)?,
            connections: Default::default(),
            turns: Default::default(),
            tcp_listeners: Default::default(),
            repl_timer: Default::default(),
        })
    }

    /// Locks the shard and borrows its data for one operation.
    pub fn lock_data(&self) -> DataGuard<'_> {
        self.data.borrow()
    }

    /// Borrows the shard's data if its lock is free or frees within `TRY_SPIN_US` (the direct cross-shard
    /// path: see the module comment); `None` rather than waiting.
    pub fn try_lock_data(&self) -> Option<DataGuard<'_>> {
        self.data.try_borrow()
    }

    /// Takes the shard's lock without borrowing the data (transactions).
    pub fn hold(&self) -> LockHold<'_> {
        self.data.hold()
    }

    /// Takes the shard's lock without borrowing, giving up after `timeout` (scripts, which
    /// must not wait forever for a thread that waits for them).
    pub fn try_hold_for(&self, timeout: std::time::Duration) -> Option<LockHold<'_>> {
        self.data.try_hold_for(timeout)
    }

    pub fn wake(&self) {
        self.mailbox.wake();
    }
}
