//! The epoll backend: the fallback when an io_uring cannot be set up (container seccomp
//! profiles often forbid it). It turns readiness into the completion-style `Event`s of `Io`
//! with nonblocking syscalls, the way Redis's `ae_epoll` loop does.
//!
//! What it owns: the epoll fd, the connection fds handed over by `add_conn` (closed by `close`
//! or on drop), one 16 KiB read buffer reused for every `Data`, and the output buffer of each
//! connection's send in progress. Listeners and the wake eventfd stay the engine's.
//!
//! How it works:
//! - Level-triggered. A connection is in the epoll set with EPOLLIN while it is being read and
//!   EPOLLOUT while a send waits for room, and is removed when it wants neither. Level
//!   triggering lets a turn read a bounded amount per connection (fairness) and stop; what is
//!   left is reported again by the next `epoll_wait`.
//! - Reads stop early at a short read: on a stream socket it means the receive queue was just
//!   emptied, so the read that would return EAGAIN is skipped (one syscall per message).
//! - `send` writes at once; only what does not fit waits for EPOLLOUT. A send finished inside
//!   `send` cannot call the handler, so its `SendDone` waits in `pending` for the next `poll`,
//!   which then delivers it without calling `epoll_wait` (one wait per loop turn, like Redis).
//! - Every connection is removed from the epoll set before its fd is closed: after a fork (BGSAVE)
//!   the child still holds the socket, and a registration whose fd number is gone could never be
//!   removed, reporting forever.
//! - The tag of each registration holds (kind, generation, token) so that nothing is delivered
//!   for a connection after `close`, even to a new connection under the same token.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::time::{Duration, Instant};

use super::sys::{self, Deferred, Pending, GEN_MASK, TOKENS_MAX};
use super::{Event, Io, Token};

/// Size of the read buffer lent to the handler as `Data` (Redis reads 16 KiB at a time).
const READ_BUF_BYTES: usize = 16 * 1024;
/// Reads per connection per readiness report before moving on to the next one.
const READS_PER_REPORT_MAX: usize = 4;
/// Connections accepted per readiness report of a listener.
const ACCEPTS_PER_REPORT_MAX: usize = 64;
/// Readiness reports fetched by one `epoll_wait`.
const REPORTS_PER_WAIT_MAX: usize = 256;
/// Polls in a row that may deliver only pending events without looking at the sockets.
const PENDING_ONLY_POLLS_MAX: u32 = 16;

const KIND_LISTENER: u8 = 1;
const KIND_WAKE: u8 = 2;
const KIND_CONN: u8 = 3;

const EV_IN: u32 = libc::EPOLLIN as u32;
const EV_OUT: u32 = libc::EPOLLOUT as u32;
const EV_ERR_HUP: u32 = (libc::EPOLLERR | libc::EPOLLHUP) as u32;

struct Conn {
    fd: OwnedFd,
    /// Until `Closed` was delivered (EOF or a receive error).
    reading: bool,
    /// The buffer of the send in progress and how much of it is written.
    out: Option<Vec<u8>>,
    out_written_bytes: usize,
    /// The events the fd is registered for; 0 when it is not in the epoll set.
    interest: u32,
}

#[derive(Default)]
struct Slot {
    /// The current generation of this token; bumped by `close`.
    gen: u32,
    conn: Option<Conn>,
}

struct Listener {
    fd: RawFd,
    /// Set while accepting is paused after descriptor or memory exhaustion.
    paused_until: Option<Instant>,
}

enum WriteOutcome {
    Done,
    Blocked,
    Failed,
}

/// The epoll implementation of `Io`. See the module comment.
pub struct Epoll {
    epfd: OwnedFd,
    listeners: Vec<Listener>,
    wake_fd: Option<RawFd>,
    slots: Vec<Slot>,
    pending: Pending,
    pending_only_polls: u32,
    reports: Vec<libc::epoll_event>,
    read_buf: Box<[u8]>,
}

impl Epoll {
    pub fn new() -> io::Result<Epoll> {
        // SAFETY: plain syscall without pointers.
        let fd = sys::cvt(unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) })?;
        Ok(Epoll {
            // SAFETY: `fd` was just created and is owned by nothing else.
            epfd: unsafe { OwnedFd::from_raw_fd(fd) },
            listeners: Vec::new(),
            wake_fd: None,
            slots: Vec::new(),
            pending: Pending::default(),
            pending_only_polls: 0,
            reports: vec![libc::epoll_event { events: 0, u64: 0 }; REPORTS_PER_WAIT_MAX],
            read_buf: vec![0; READ_BUF_BYTES].into_boxed_slice(),
        })
    }

    fn ctl(&self, op: libc::c_int, fd: RawFd, events: u32, tag: u64) -> io::Result<()> {
        let mut ev = libc::epoll_event { events, u64: tag };
        // SAFETY: `ev` is valid for the duration of the call (ignored by EPOLL_CTL_DEL).
        sys::cvt(unsafe { libc::epoll_ctl(self.epfd.as_raw_fd(), op, fd, &mut ev) }).map(drop)
    }

    fn is_live(slots: &[Slot], token: Token, gen: u32) -> bool {
        slots
            .get(token as usize)
            .is_some_and(|slot| slot.gen == gen && slot.conn.is_some())
    }

    /// Brings the connection's epoll registration in line with what it waits for.
    fn update_interest(&mut self, token: Token) -> io::Result<()> {
        let Some(slot) = self.slots.get(token as usize) else {
            return Ok(());
        };
        let Some(conn) = slot.conn.as_ref() else {
            return Ok(());
        };
        let want =
            if conn.reading { EV_IN } else { 0 } | if conn.out.is_some() { EV_OUT } else { 0 };
        if want == conn.interest {
            return Ok(());
        }
        let op = match (conn.interest, want) {
            (_, 0) => libc::EPOLL_CTL_DEL,
            (0, _) => libc::EPOLL_CTL_ADD,
            _ => libc::EPOLL_CTL_MOD,
        };
        let tag = sys::pack(KIND_CONN, slot.gen, token);
        self.ctl(op, conn.fd.as_raw_fd(), want, tag)?;
        if let Some(conn) = self
            .slots
            .get_mut(token as usize)
            .and_then(|s| s.conn.as_mut())
        {
            conn.interest = want;
        }
        Ok(())
    }

    /// `update_interest`, turning a failure (ENOMEM, in practice) into the end of the
    /// connection: its pending send fails and it reads no more.
    fn update_interest_or_fail(&mut self, token: Token) {
        if self.update_interest(token).is_ok() {
            return;
        }
        let Some(slot) = self.slots.get_mut(token as usize) else {
            return;
        };
        let gen = slot.gen;
        let Some(conn) = slot.conn.as_mut() else {
            return;
        };
        if conn.out.take().is_some() {
            self.pending.push(token, gen, Deferred::SendFailed);
        }
        if conn.reading {
            conn.reading = false;
            self.pending.push(token, gen, Deferred::Closed);
        }
        let fd = conn.fd.as_raw_fd();
        conn.interest = 0;
        let _ = self.ctl(libc::EPOLL_CTL_DEL, fd, 0, 0);
    }

    /// Writes as much of the connection's output as the socket takes.
    fn write_out(conn: &mut Conn) -> WriteOutcome {
        loop {
            let Some(rest) = conn
                .out
                .as_deref()
                .and_then(|o| o.get(conn.out_written_bytes..))
            else {
                return WriteOutcome::Done;
            };
            if rest.is_empty() {
                return WriteOutcome::Done;
            }
            // SAFETY: `rest` is valid for reads of `rest.len()` bytes for the call.
            // MSG_NOSIGNAL: a peer that went away is an EPIPE here, not a SIGPIPE.
            let n = unsafe {
                libc::send(
                    conn.fd.as_raw_fd(),
                    rest.as_ptr().cast(),
                    rest.len(),
                    libc::MSG_NOSIGNAL,
                )
            };
            if n > 0 {
                let n = n as usize;
                conn.out_written_bytes += n;
                if n < rest.len() {
                    // A short write on a nonblocking stream socket means its buffer is full.
                    return WriteOutcome::Blocked;
                }
                continue;
            }
            match sys::errno() {
                libc::EINTR => continue,
                libc::EAGAIN => return WriteOutcome::Blocked,
                _ => return WriteOutcome::Failed,
            }
        }
    }

    /// Takes the connection's finished (or failed) output as an event to deliver.
    fn finish_send(conn: &mut Conn, outcome: &WriteOutcome) -> Option<Deferred> {
        match outcome {
            WriteOutcome::Blocked => None,
            WriteOutcome::Done => conn.out.take().map(|mut buf| {
                buf.clear();
                Deferred::SendDone(buf)
            }),
            WriteOutcome::Failed => {
                conn.out = None;
                Some(Deferred::SendFailed)
            }
        }
    }

    /// Reads a ready connection; returns the events delivered.
    fn read_ready(
        conn: &mut Conn,
        token: Token,
        buf: &mut [u8],
        handler: &mut dyn FnMut(Event<'_>),
    ) -> usize {
        let mut delivered = 0;
        let mut reads = 0;
        while reads < READS_PER_REPORT_MAX {
            // SAFETY: `buf` is valid for writes of `buf.len()` bytes for the call.
            let n = unsafe { libc::read(conn.fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
            reads += 1;
            if n > 0 {
                let n = n as usize;
                // read(2) never returns more than asked for.
                let data = buf.get(..n).unwrap_or_default();
                handler(Event::Data(token, data));
                delivered += 1;
                if n < buf.len() {
                    break;
                }
                continue;
            }
            let errno = if n == 0 { 0 } else { sys::errno() };
            match errno {
                libc::EINTR => continue,
                libc::EAGAIN => break,
                _ => {
                    // EOF (0) or a receive error: the connection reads no more.
                    conn.reading = false;
                    handler(Event::Closed(token));
                    delivered += 1;
                    break;
                }
            }
        }
        delivered
    }

    /// Handles a readiness report for a connection; returns the events delivered.
    fn conn_ready(
        &mut self,
        token: Token,
        gen: u32,
        events: u32,
        handler: &mut dyn FnMut(Event<'_>),
    ) -> usize {
        if !Self::is_live(&self.slots, token, gen) {
            return 0;
        }
        let Some(conn) = self
            .slots
            .get_mut(token as usize)
            .and_then(|s| s.conn.as_mut())
        else {
            return 0;
        };
        let mut delivered = 0;
        if conn.reading && events & (EV_IN | EV_ERR_HUP) != 0 {
            delivered += Self::read_ready(conn, token, &mut self.read_buf, handler);
        }
        if conn.out.is_some() && events & (EV_OUT | EV_ERR_HUP) != 0 {
            let outcome = Self::write_out(conn);
            match Self::finish_send(conn, &outcome) {
                Some(Deferred::SendDone(buf)) => handler(Event::SendDone(token, buf)),
                Some(_) => handler(Event::SendFailed(token)),
                None => {}
            }
            if !matches!(outcome, WriteOutcome::Blocked) {
                delivered += 1;
            }
        }
        self.update_interest_or_fail(token);
        delivered
    }

    /// Accepts what a ready listener has queued; returns the events delivered.
    fn accept_ready(&mut self, index: u32, handler: &mut dyn FnMut(Event<'_>)) -> usize {
        let Some(listener) = self.listeners.get(index as usize) else {
            return 0;
        };
        let fd = listener.fd;
        if fd < 0 {
            return 0; // closed by `close_listener`
        }
        let mut delivered = 0;
        while delivered < ACCEPTS_PER_REPORT_MAX {
            let flags = libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC;
            // SAFETY: null address and length pointers are allowed: the peer address is unused.
            let conn_fd =
                unsafe { libc::accept4(fd, std::ptr::null_mut(), std::ptr::null_mut(), flags) };
            if conn_fd >= 0 {
                handler(Event::Accepted(conn_fd));
                delivered += 1;
                continue;
            }
            let errno = sys::errno();
            match errno {
                libc::EINTR | libc::ECONNABORTED | libc::EPROTO => continue,
                _ if sys::is_accept_exhaustion(errno) => {
                    self.pause_listener(index);
                    break;
                }
                // EAGAIN: drained. Anything else: the next report will tell again.
                _ => break,
            }
        }
        delivered
    }

    fn pause_listener(&mut self, index: u32) {
        let Some(listener) = self.listeners.get_mut(index as usize) else {
            return;
        };
        listener.paused_until = Some(Instant::now() + sys::ACCEPT_BACKOFF);
        let fd = listener.fd;
        let _ = self.ctl(
            libc::EPOLL_CTL_MOD,
            fd,
            0,
            sys::pack(KIND_LISTENER, 0, index),
        );
    }

    /// Resumes listeners whose pause is over; returns how long until the next one ends.
    fn resume_listeners(&mut self, now: Instant) -> Option<Duration> {
        let mut next: Option<Duration> = None;
        for index in 0..self.listeners.len() {
            let Some(until) = self.listeners.get(index).and_then(|l| l.paused_until) else {
                continue;
            };
            if until > now {
                let left = until - now;
                next = Some(next.map_or(left, |n| n.min(left)));
                continue;
            }
            let fd = self.listeners.get(index).map_or(-1, |l| l.fd);
            let tag = sys::pack(KIND_LISTENER, 0, index as u32);
            if self.ctl(libc::EPOLL_CTL_MOD, fd, EV_IN, tag).is_ok() {
                if let Some(l) = self.listeners.get_mut(index) {
                    l.paused_until = None;
                }
            }
        }
        next
    }

    fn wake_ready(&mut self, handler: &mut dyn FnMut(Event<'_>)) -> usize {
        let Some(fd) = self.wake_fd else {
            return 0;
        };
        let mut count = [0u8; 8];
        // Reading an eventfd resets its counter. Level-triggered readiness means the counter is
        // nonzero, so this read does not block even on a blocking eventfd.
        loop {
            // SAFETY: `count` is valid for writes of 8 bytes for the call.
            let n = unsafe { libc::read(fd, count.as_mut_ptr().cast(), count.len()) };
            if n >= 0 || sys::errno() != libc::EINTR {
                break;
            }
        }
        handler(Event::Wake);
        1
    }

    /// One `epoll_wait` and the dispatch of what it reports; returns the events delivered.
    fn wait_and_dispatch(
        &mut self,
        timeout: Option<Duration>,
        handler: &mut dyn FnMut(Event<'_>),
    ) -> io::Result<usize> {
        let max = self.reports.len() as libc::c_int;
        // SAFETY: `reports` is valid for writes of `max` entries for the call.
        let n = unsafe {
            libc::epoll_wait(
                self.epfd.as_raw_fd(),
                self.reports.as_mut_ptr(),
                max,
                sys::timeout_ms(timeout),
            )
        };
        let n = sys::cvt(n)? as usize;
        let mut delivered = 0;
        for i in 0..n {
            let Some(&report) = self.reports.get(i) else {
                break;
            };
            let (events, tag) = (report.events, report.u64);
            let (kind, gen, index) = sys::unpack(tag);
            delivered += match kind {
                KIND_CONN => self.conn_ready(index, gen, events, handler),
                KIND_LISTENER => self.accept_ready(index, handler),
                KIND_WAKE => self.wake_ready(handler),
                _ => 0,
            };
        }
        Ok(delivered)
    }

    fn deliver_pending(&mut self, handler: &mut dyn FnMut(Event<'_>)) -> usize {
        let slots = &self.slots;
        self.pending
            .deliver(|token, gen| Self::is_live(slots, token, gen), handler)
    }
}

impl Io for Epoll {
    fn describe(&self) -> String {
        "epoll".to_string()
    }

    fn add_listener(&mut self, fd: RawFd) -> io::Result<()> {
        if !sys::is_listening(fd)? {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "not a listening socket",
            ));
        }
        sys::set_nonblocking(fd, true)?;
        let index = self.listeners.len() as u32;
        self.ctl(
            libc::EPOLL_CTL_ADD,
            fd,
            EV_IN,
            sys::pack(KIND_LISTENER, 0, index),
        )?;
        self.listeners.push(Listener {
            fd,
            paused_until: None,
        });
        Ok(())
    }

    fn close_listener(&mut self, fd: RawFd) {
        let Some(listener) = self.listeners.iter_mut().find(|l| l.fd == fd) else {
            return;
        };
        // The index stays taken (events name listeners by index); -1 marks it closed.
        listener.fd = -1;
        listener.paused_until = None;
        let _ = self.ctl(libc::EPOLL_CTL_DEL, fd, 0, 0);
        // SAFETY: the listener's fd was given to us by `add_listener` and is closed only here.
        unsafe { libc::close(fd) };
    }

    /// Takes ownership of `fd` on success; on error it stays the caller's.
    fn add_conn(&mut self, token: Token, fd: RawFd) -> io::Result<()> {
        if token >= TOKENS_MAX {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "token out of range",
            ));
        }
        if self
            .slots
            .get(token as usize)
            .is_some_and(|s| s.conn.is_some())
        {
            return Err(io::Error::new(io::ErrorKind::AlreadyExists, "token in use"));
        }
        sys::set_nonblocking(fd, true)?;
        sys::set_nodelay(fd)?;
        if self.slots.len() <= token as usize {
            self.slots.resize_with(token as usize + 1, Slot::default);
        }
        let gen = self.slots.get(token as usize).map_or(0, |s| s.gen);
        self.ctl(
            libc::EPOLL_CTL_ADD,
            fd,
            EV_IN,
            sys::pack(KIND_CONN, gen, token),
        )?;
        let Some(slot) = self.slots.get_mut(token as usize) else {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "token out of range",
            ));
        };
        slot.conn = Some(Conn {
            // SAFETY: the engine hands the fd over; from here on only this slot closes it.
            fd: unsafe { OwnedFd::from_raw_fd(fd) },
            reading: true,
            out: None,
            out_written_bytes: 0,
            interest: EV_IN,
        });
        Ok(())
    }

    fn send(&mut self, token: Token, data: Vec<u8>) {
        let Some(slot) = self.slots.get_mut(token as usize) else {
            debug_assert!(false, "send on unknown token {token}");
            return;
        };
        let gen = slot.gen;
        let Some(conn) = slot.conn.as_mut() else {
            debug_assert!(false, "send on closed token {token}");
            return;
        };
        if conn.out.is_some() {
            // The contract allows one send in flight; the engine is wrong, the connection fails.
            debug_assert!(false, "second send in flight on token {token}");
            self.pending.push(token, gen, Deferred::SendFailed);
            return;
        }
        conn.out = Some(data);
        conn.out_written_bytes = 0;
        let outcome = Self::write_out(conn);
        match Self::finish_send(conn, &outcome) {
            Some(deferred) => self.pending.push(token, gen, deferred),
            None => self.update_interest_or_fail(token),
        }
    }

    fn close(&mut self, token: Token) {
        let Some(slot) = self.slots.get_mut(token as usize) else {
            return;
        };
        let Some(conn) = slot.conn.take() else {
            return;
        };
        slot.gen = slot.gen.wrapping_add(1) & GEN_MASK;
        if conn.interest != 0 {
            let _ = self.ctl(libc::EPOLL_CTL_DEL, conn.fd.as_raw_fd(), 0, 0);
        }
        drop(conn);
    }

    fn set_wake_fd(&mut self, fd: RawFd) -> io::Result<()> {
        if self.wake_fd.is_some() {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                "wake fd already set",
            ));
        }
        self.ctl(libc::EPOLL_CTL_ADD, fd, EV_IN, sys::pack(KIND_WAKE, 0, 0))?;
        self.wake_fd = Some(fd);
        Ok(())
    }

    fn poll(
        &mut self,
        timeout: Option<Duration>,
        handler: &mut dyn FnMut(Event<'_>),
    ) -> io::Result<()> {
        let start = Instant::now();
        let deadline = timeout.and_then(|t| start.checked_add(t));
        // Events finished by `send` since the last poll go first and alone: waiting on the
        // sockets now would delay the engine's reaction to them.
        if !self.pending.is_empty()
            && self.pending_only_polls < PENDING_ONLY_POLLS_MAX
            && self.deliver_pending(handler) > 0
        {
            self.pending_only_polls += 1;
            return Ok(());
        }
        self.pending_only_polls = 0;
        let mut now = start;
        loop {
            let mut delivered = self.deliver_pending(handler);
            let resume = self.resume_listeners(now);
            let left = deadline.map(|d| d.saturating_duration_since(now));
            let wait = match (delivered, left, resume) {
                (1.., _, _) => Some(Duration::ZERO),
                (0, Some(l), Some(r)) => Some(l.min(r)),
                (0, l, r) => l.or(r),
            };
            match self.wait_and_dispatch(wait, handler) {
                Ok(n) => delivered += n,
                // A signal: return so that the engine can look at what its handler set.
                Err(e) if e.kind() == io::ErrorKind::Interrupted => return Ok(()),
                Err(e) => return Err(e),
            }
            now = Instant::now();
            if delivered > 0 || deadline.is_some_and(|d| now >= d) {
                return Ok(());
            }
        }
    }
}
