//! The mesh: bounded mailboxes between shards, and wake-ups.
//!
//! Each shard has one inbox per possible sender (every shard, plus one slot for non-shard
//! threads such as the main thread), so each queue has a single producer and a single
//! consumer. A producer appends a whole batch under the queue's lock (one lock per batch, not
//! per message), raises `has_mail`, and writes the receiver's eventfd only if the receiver
//! announced it is about to sleep. The receiver clears `sleeping` after waking, and checks
//! `has_mail` after setting `sleeping` and before blocking, so no wake-up is lost.

use crate::commands::Cmd;
use bytes::Bytes;
use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

/// A connection's address across shards: its home shard, slab token and generation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConnRef {
    pub shard: usize,
    pub token: u32,
    pub gen: u32,
}

/// One command sent to its owner shard.
pub struct RemoteCmd {
    pub cmd: &'static Cmd,
    pub full_name: &'static str,
    pub args: Vec<Bytes>,
    /// A read whose keys the owner remembers for the client (CLIENT TRACKING).
    pub track_reads: bool,
}

pub enum Msg {
    /// Run these commands, in order, for a connection of another shard; reply with `Replies`.
    Exec {
        conn: ConnRef,
        db: usize,
        proto: u8,
        no_touch: bool,
        /// Reply bytes the connection may still take before its output limit closes it.
        reply_room: usize,
        cmds: Vec<RemoteCmd>,
        /// Set while client-side caching is in use (see `tracking`).
        tracking: Option<crate::tracking::RemoteCtx>,
    },
    /// The encoded replies of an `Exec`, concatenated in order.
    Replies {
        conn: ConnRef,
        count: usize,
        bytes: Vec<u8>,
    },
    /// Close a connection (CLIENT KILL from another shard).
    Kill { token: u32, gen: u32 },
    /// Keys (shard, db, key) that the replication link's writes made ready for blocked
    /// clients: the receiving shard serves their waiters, as after one of its own writes.
    Ready(Vec<(usize, usize, Box<[u8]>)>),
    /// The reply that ends a blocked client's wait (served, timed out elsewhere, unblocked);
    /// `close`: the connection closes once it is sent (REPLICAOF's -UNBLOCKED).
    Unblocked {
        token: u32,
        gen: u32,
        bytes: Vec<u8>,
        close: bool,
    },
    /// A pub/sub message for a subscriber of the receiving shard.
    Publish(crate::pubsub::Delivery),
    /// Invalidations wait in the inbox of this connection of the receiving shard.
    TrackingWake { token: u32, id: u64 },
    /// Stop accepting on `close` and start on `add` (CONFIG SET `port`/`bind`).
    Listeners {
        close: Vec<std::os::fd::RawFd>,
        add: Vec<std::os::fd::RawFd>,
    },
    /// A MONITOR line for a monitoring connection of the receiving shard.
    Monitor {
        token: u32,
        gen: u32,
        line: bytes::Bytes,
    },
}

/// Messages a queue may hold before its producer stops adding (and stalls the connections
/// that would add more) until the consumer catches up.
pub const QUEUE_MSGS_MAX: usize = 4096;

pub struct Mailbox {
    queues: Vec<Mutex<Vec<Msg>>>,
    has_mail: AtomicBool,
    sleeping: AtomicBool,
    wake_fd: OwnedFd,
}

impl Mailbox {
    /// A mailbox with `senders` queues.
    pub fn new(senders: usize) -> std::io::Result<Mailbox> {
        // SAFETY: eventfd returns a new descriptor we own (or -1).
        let raw = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) };
        if raw < 0 {
            return Err(std::io::Error::last_os_error());
        }
        // SAFETY: `raw` is a fresh, valid descriptor owned by nobody else.
        let fd = unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(raw) };
        Ok(Mailbox {
            queues: (0..senders).map(|_| Mutex::new(Vec::new())).collect(),
            has_mail: AtomicBool::new(false),
            sleeping: AtomicBool::new(false),
            wake_fd: fd,
        })
    }

    pub fn wake_fd(&self) -> i32 {
        self.wake_fd.as_raw_fd()
    }

    /// Appends a batch from `sender`, as much as the bound allows; what does not fit stays in
    /// `batch`. Returns true when anything was delivered.
    pub fn post(&self, sender: usize, batch: &mut Vec<Msg>) -> bool {
        let Some(q) = self.queues.get(sender) else {
            return false;
        };
        let delivered = {
            let mut q = match q.lock() {
                Ok(g) => g,
                Err(p) => p.into_inner(),
            };
            let room = QUEUE_MSGS_MAX.saturating_sub(q.len());
            let n = room.min(batch.len());
            if n == batch.len() && q.is_empty() {
                std::mem::swap(&mut *q, batch);
            } else {
                q.extend(batch.drain(..n));
            }
            n > 0
        };
        if delivered {
            self.has_mail.store(true, Ordering::SeqCst);
            if self.sleeping.load(Ordering::SeqCst) {
                self.wake();
            }
        }
        delivered
    }

    /// Wakes the receiver to look at its state (replicas with stream data) without a
    /// message: it runs a loop turn.
    pub fn poke(&self) {
        self.has_mail.store(true, Ordering::SeqCst);
        if self.sleeping.load(Ordering::SeqCst) {
            self.wake();
        }
    }

    /// Writes the eventfd.
    pub fn wake(&self) {
        let one: u64 = 1;
        // SAFETY: writing 8 bytes from a valid u64 to an eventfd we own.
        unsafe {
            libc::write(
                self.wake_fd.as_raw_fd(),
                &one as *const u64 as *const libc::c_void,
                8,
            );
        }
    }

    /// Takes everything queued, calling `f` for each message, sender by sender.
    pub fn drain(&self, spare: &mut Vec<Msg>, mut f: impl FnMut(Msg)) {
        if !self.has_mail.swap(false, Ordering::SeqCst) {
            return;
        }
        for q in &self.queues {
            {
                let mut q = match q.lock() {
                    Ok(g) => g,
                    Err(p) => p.into_inner(),
                };
                if q.is_empty() {
                    continue;
                }
                std::mem::swap(&mut *q, spare);
            }
            for m in spare.drain(..) {
                f(m);
            }
        }
    }

    /// Announces the shard is about to block. Returns false (and stays awake) if mail arrived.
    pub fn prepare_sleep(&self) -> bool {
        self.sleeping.store(true, Ordering::SeqCst);
        if self.has_mail.load(Ordering::SeqCst) {
            self.sleeping.store(false, Ordering::SeqCst);
            return false;
        }
        true
    }

    pub fn woke(&self) {
        self.sleeping.store(false, Ordering::SeqCst);
    }

    pub fn has_mail(&self) -> bool {
        self.has_mail.load(Ordering::SeqCst)
    }
}
