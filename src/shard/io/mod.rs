//! The I/O layer of a shard: one narrow, completion-style interface with two backends.
//!
//! The engine above never sees io_uring or epoll. It registers listeners and connections under
//! tokens it chooses, hands over whole output buffers with `send`, and reacts to `Event`s
//! delivered by `poll`. `uring` is the primary backend (a ring per shard, SINGLE_ISSUER |
//! DEFER_TASKRUN, multishot accept, multishot recv with a provided-buffer ring, one submit per
//! loop turn). `epoll` is the fallback chosen at start-up when a ring cannot be set up (many
//! container seccomp profiles forbid io_uring); it emulates completions with nonblocking
//! read/write calls.
//!
//! Contract, for both backends:
//! - At most one `send` is in flight per token; the engine waits for `SendDone` before the next.
//!   The backend writes the whole buffer (resubmitting after short writes) before reporting.
//! - After `close(token)` no event for that token is delivered, even if a completion for an
//!   operation submitted earlier arrives later; the token may then be reused by `add_conn`.
//! - `Data` slices are valid only during the handler call.
//! - `poll` returns after handling at least one event, or when `timeout` expires, or when
//!   the wake fd is written.

use std::io;
use std::os::fd::RawFd;
use std::sync::atomic::{AtomicU64, Ordering};

/// Bytes of output buffers that closed connections left with the kernel (a Send cancelled at
/// close keeps its buffer until the cancel completes). Key eviction leaves them out: they
/// are on their way back, and were counted as the closed client's memory until its close.
static ORPHAN_SEND_BYTES: AtomicU64 = AtomicU64::new(0);

pub fn orphan_send_bytes() -> u64 {
    ORPHAN_SEND_BYTES.load(Ordering::Relaxed)
}

fn orphaned(capacity: usize, added: bool) {
    let bytes = crate::alloc::good_size(capacity);
    if added {
        ORPHAN_SEND_BYTES.fetch_add(bytes as u64, Ordering::Relaxed);
    } else {
        let _ = ORPHAN_SEND_BYTES.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |v| {
            Some(v.saturating_sub(bytes as u64))
        });
    }
}
use std::time::Duration;

mod buf_ring;
pub mod epoll;
mod sys;
#[cfg(test)]
mod tests;
pub mod uring;

/// A connection's identity inside one shard, chosen by the engine (a slab index).
pub type Token = u32;

/// What `poll` reports.
pub enum Event<'a> {
    /// A connection accepted on one of the listeners; the fd is blocking-agnostic and owned by
    /// the engine until it calls `add_conn` (or closes it).
    Accepted(RawFd),
    /// Bytes received on a connection.
    Data(Token, &'a [u8]),
    /// The peer closed the connection, or receiving failed. No more `Data` will come.
    Closed(Token),
    /// The buffer given to `send` is fully written; it comes back (cleared) for reuse.
    SendDone(Token, Vec<u8>),
    /// Writing failed (peer gone). The engine should close the token.
    SendFailed(Token),
    /// Another thread wrote the wake fd.
    Wake,
}

pub trait Io {
    /// A human-readable name for the log ("io_uring (SINGLE_ISSUER|DEFER_TASKRUN)", "epoll").
    fn describe(&self) -> String;
    /// Starts accepting on a listening socket (nonblocking, already bound and listening).
    fn add_listener(&mut self, fd: RawFd) -> io::Result<()>;
    /// Stops accepting on a listener given to `add_listener` and closes its fd (CONFIG SET
    /// `port`/`bind`). Connections it accepted stay.
    fn close_listener(&mut self, fd: RawFd);
    /// Starts receiving on a connection.
    fn add_conn(&mut self, token: Token, fd: RawFd) -> io::Result<()>;
    /// Writes `data` to the connection (see the contract above).
    fn send(&mut self, token: Token, data: Vec<u8>);
    /// Stops all operations on the connection and closes its fd.
    fn close(&mut self, token: Token);
    /// Registers the eventfd other threads write to wake this shard.
    fn set_wake_fd(&mut self, fd: RawFd) -> io::Result<()>;
    /// Submits what was queued, waits for events (or `timeout`), and hands each to `handler`.
    fn poll(
        &mut self,
        timeout: Option<Duration>,
        handler: &mut dyn FnMut(Event<'_>),
    ) -> io::Result<()>;
}
