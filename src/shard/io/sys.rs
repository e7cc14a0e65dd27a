//! Pieces both backends share: thin wrappers over the few socket syscalls they make, the packing
//! of (kind, generation, token) into the 64-bit tag the kernel hands back with every readiness
//! report or completion, and the queue of events produced outside `poll`.
//!
//! Why a generation: tokens are slab indexes and are reused right after `close`. An epoll report
//! or an io_uring completion may still be on its way for the old connection; the generation in
//! its tag no longer matches the slot's, so it is dropped instead of being delivered to the new
//! connection under the same token (the contract in `mod.rs`).

use std::collections::VecDeque;
use std::io;
use std::os::fd::RawFd;
use std::time::Duration;

use super::{Event, Token};

/// Generations wrap at 24 bits. A stale report would need 16 M reuses of one token while it is
/// in flight to be mistaken for a current one.
pub(super) const GEN_MASK: u32 = 0x00ff_ffff;

/// Connections (tokens) a backend accepts; a bound on its per-token table.
pub(super) const TOKENS_MAX: u32 = 1 << 22;

/// Packs an operation kind, a generation and a token (or listener index) into a kernel tag.
pub(super) fn pack(kind: u8, gen: u32, token: u32) -> u64 {
    (u64::from(kind) << 56) | (u64::from(gen & GEN_MASK) << 32) | u64::from(token)
}

/// The inverse of `pack`: (kind, generation, token).
pub(super) fn unpack(tag: u64) -> (u8, u32, u32) {
    (
        (tag >> 56) as u8,
        ((tag >> 32) as u32) & GEN_MASK,
        tag as u32,
    )
}

/// The errno of a failed libc call.
pub(super) fn errno() -> i32 {
    io::Error::last_os_error().raw_os_error().unwrap_or(0)
}

/// Turns a libc return value into a `Result`, reading errno on -1.
pub(super) fn cvt(ret: libc::c_int) -> io::Result<libc::c_int> {
    if ret == -1 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

/// Sets or clears O_NONBLOCK with one syscall.
pub(super) fn set_nonblocking(fd: RawFd, on: bool) -> io::Result<()> {
    let mut flag: libc::c_int = on.into();
    // SAFETY: FIONBIO reads one c_int through the pointer, which is valid for the call.
    cvt(unsafe { libc::ioctl(fd, libc::FIONBIO, &mut flag) }).map(drop)
}

/// Disables Nagle's algorithm like Redis does for client sockets. Sockets that are not TCP
/// (a unix socket, say) refuse the option; that is not an error for the caller.
pub(super) fn set_nodelay(fd: RawFd) -> io::Result<()> {
    let on: libc::c_int = 1;
    // SAFETY: the option value is a c_int that lives for the duration of the call, and its
    // size is passed alongside.
    let ret = unsafe {
        libc::setsockopt(
            fd,
            libc::IPPROTO_TCP,
            libc::TCP_NODELAY,
            (&on as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    match cvt(ret) {
        Ok(_) => Ok(()),
        Err(e) if matches!(e.raw_os_error(), Some(libc::EOPNOTSUPP | libc::ENOPROTOOPT)) => Ok(()),
        Err(e) => Err(e),
    }
}

/// Whether `fd` is a socket in the listening state.
pub(super) fn is_listening(fd: RawFd) -> io::Result<bool> {
    let mut on: libc::c_int = 0;
    let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: `on` and `len` are valid for writes for the duration of the call and `len` holds
    // the size of `on`.
    let ret = unsafe {
        libc::getsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_ACCEPTCONN,
            (&mut on as *mut libc::c_int).cast(),
            &mut len,
        )
    };
    cvt(ret).map(|_| on != 0)
}

/// How long to pause accepting after running out of descriptors or memory. Accepting again at
/// once would fail again at once: a busy loop instead of a server.
pub(super) const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// Accept failures that are resource exhaustion and call for `ACCEPT_BACKOFF`.
pub(super) fn is_accept_exhaustion(errno: i32) -> bool {
    matches!(
        errno,
        libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM
    )
}

/// What an event produced outside `poll` (by `send`, typically) will become.
pub(super) enum Deferred {
    SendDone(Vec<u8>),
    SendFailed,
    Closed,
}

/// Events produced outside `poll`, delivered by the next `poll` unless their connection was
/// closed in between (the generation tells).
#[derive(Default)]
pub(super) struct Pending {
    queue: VecDeque<(Token, u32, Deferred)>,
}

impl Pending {
    pub(super) fn push(&mut self, token: Token, gen: u32, what: Deferred) {
        self.queue.push_back((token, gen, what));
    }

    pub(super) fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    /// Delivers every queued event whose (token, generation) `is_live` still accepts; returns
    /// how many were delivered.
    pub(super) fn deliver(
        &mut self,
        is_live: impl Fn(Token, u32) -> bool,
        handler: &mut dyn FnMut(Event<'_>),
    ) -> usize {
        let mut delivered = 0;
        while let Some((token, gen, what)) = self.queue.pop_front() {
            if !is_live(token, gen) {
                continue;
            }
            delivered += 1;
            match what {
                Deferred::SendDone(buf) => handler(Event::SendDone(token, buf)),
                Deferred::SendFailed => handler(Event::SendFailed(token)),
                Deferred::Closed => handler(Event::Closed(token)),
            }
        }
        delivered
    }
}

/// `Duration` to epoll's milliseconds, rounded up so that a sub-millisecond timeout does not
/// become a busy poll; `None` is infinite (-1).
pub(super) fn timeout_ms(timeout: Option<Duration>) -> libc::c_int {
    match timeout {
        None => -1,
        Some(t) => {
            let ms = t.as_nanos().div_ceil(1_000_000);
            libc::c_int::try_from(ms).unwrap_or(libc::c_int::MAX)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pack_round_trips() {
        let tag = pack(7, GEN_MASK + 5, u32::MAX);
        assert_eq!(unpack(tag), (7, 4, u32::MAX));
        assert_eq!(unpack(pack(1, 0, 0)), (1, 0, 0));
    }

    #[test]
    fn timeout_rounds_up() {
        assert_eq!(timeout_ms(None), -1);
        assert_eq!(timeout_ms(Some(Duration::ZERO)), 0);
        assert_eq!(timeout_ms(Some(Duration::from_micros(1))), 1);
        assert_eq!(timeout_ms(Some(Duration::from_millis(20))), 20);
        assert_eq!(
            timeout_ms(Some(Duration::from_secs(u64::MAX))),
            libc::c_int::MAX
        );
    }
}
