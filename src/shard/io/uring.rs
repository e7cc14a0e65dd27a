//! The io_uring backend: one ring per shard, the primary way shardis does I/O.
//!
//! What it owns: the ring, the provided-buffer ring that receives go into (`buf_ring`), the
//! connection fds handed over by `add_conn` (closed through the ring by `close`), and the output
//! buffer of each connection's send until the kernel is done with it. Listeners and the wake
//! eventfd stay the engine's.
//!
//! How it works:
//! - Ring set-up tries SINGLE_ISSUER|DEFER_TASKRUN first (about half the CPU per request of the
//!   default flags here, DESIGN §6), then SINGLE_ISSUER|COOP_TASKRUN, then COOP_TASKRUN, then
//!   plain. DEFER_TASKRUN runs completions only when the creating thread enters the kernel, so
//!   the ring must be created, driven and dropped by the shard's thread (`Uring` is not `Send`).
//! - Each listener has one multishot accept; each connection one multishot recv that picks a
//!   16 KiB buffer from the buffer ring per completion. The buffer goes back to the ring as soon
//!   as the `Data` handler returns. A multishot that ends (no `IORING_CQE_F_MORE`) without EOF or
//!   a hard error (out of buffers, overflowing completion queue) is armed again.
//! - `send` submits one Send of the whole buffer (MSG_WAITALL, so that the kernel itself keeps
//!   going after a partial write) and resubmits the rest after a short completion.
//! - Nothing is submitted outside `poll` unless the submission queue is full: everything queued
//!   since the last turn goes with the one `io_uring_enter` that also waits.
//! - Every operation's user_data holds (kind, generation, token). `close` bumps the token's
//!   generation, cancels the connection's operations and closes the fd with a Close op;
//!   completions that still arrive carry the old generation and are dropped (their buffers
//!   recycled, a send's buffer freed only then: the kernel may read it until its completion).
//! - Every submitted operation is counted until its last completion, so that dropping the ring
//!   can cancel everything and wait until the kernel no longer touches our memory. If that does
//!   not happen in time, the memory is leaked rather than freed under the kernel.

use std::collections::VecDeque;
use std::io;
use std::os::fd::RawFd;
use std::time::{Duration, Instant};

use io_uring::types::{CancelBuilder, Fd, SubmitArgs, Timespec};
use io_uring::{cqueue, opcode, squeue, IoUring};

use super::buf_ring::BufRing;
use super::sys::{self, Deferred, Pending, GEN_MASK, TOKENS_MAX};
use super::{Event, Io, Token};

/// Receive buffers: Redis reads 16 KiB at a time; 512 of them (8 MiB per shard) cover a turn's
/// completions at thousands of busy connections, and running out only costs a re-arm.
const RECV_BUF_BYTES: u32 = 16 * 1024;
const RECV_BUFS: u16 = 512;
const RECV_BUF_GROUP: u16 = 0;
/// Completion queue entries per submission queue entry: each connection has a recv and often a
/// send in flight, and a multishot recv can complete several times per turn.
const CQ_PER_SQ: u32 = 4;
/// Completions copied out of the queue at a time, and batches handled per enter.
const CQES_PER_BATCH: usize = 256;
const CQE_BATCHES_PER_ENTER_MAX: usize = 64;
/// How long dropping the ring waits for the kernel to finish cancelled operations.
const TEARDOWN_WAIT: Duration = Duration::from_secs(1);
/// Multishot recv with provided buffers appeared in Linux 6.0.
const KERNEL_MIN: (u32, u32) = (6, 0);

const OP_ACCEPT: u8 = 1;
const OP_RECV: u8 = 2;
const OP_SEND: u8 = 3;
const OP_WAKE_READ: u8 = 4;
const OP_WAKE_POLL: u8 = 5;
const OP_CANCEL: u8 = 6;
const OP_CLOSE: u8 = 7;
const OP_ACCEPT_BACKOFF: u8 = 8;

struct Conn {
    fd: RawFd,
    /// Until `Closed` was delivered (EOF or a receive error).
    reading: bool,
    /// A multishot recv was submitted and its last completion has not been seen.
    recv_armed: bool,
    /// The buffer of the send in progress (the kernel reads it while `send_armed`).
    send: Option<Vec<u8>>,
    send_written_bytes: usize,
    send_armed: bool,
}

#[derive(Default)]
struct Slot {
    /// The current generation of this token; bumped by `close`.
    gen: u32,
    conn: Option<Conn>,
}

/// The io_uring implementation of `Io`. See the module comment.
pub struct Uring {
    // Declared first: dropped (the ring fd closed) before the memory below is unmapped.
    ring: IoUring,
    setup: &'static str,
    bufs: BufRing,
    listeners: Vec<RawFd>,
    slots: Vec<Slot>,
    wake_fd: Option<RawFd>,
    /// Where the wake Read writes the eventfd counter; a raw allocation because the kernel
    /// writes it behind our back. Freed by drop (or leaked with the rest).
    wake_buf: *mut u64,
    /// The timeout of the accept backoff, read by the kernel when the Timeout is submitted.
    backoff: Box<Timespec>,
    pending: Pending,
    /// Send buffers of closed connections, kept until their operation's last completion.
    orphan_sends: Vec<(u64, Vec<u8>)>,
    /// Entries that did not fit in a full submission queue, in order.
    backlog: VecDeque<squeue::Entry>,
    cqes: Vec<cqueue::Entry>,
    ops_in_flight: u32,
}

/// Linux version from uname, e.g. (6, 18); `None` if it cannot be read.
fn kernel_version() -> Option<(u32, u32)> {
    // SAFETY: `utsname` is plain old data; all-zero bytes are a valid value.
    let mut uts: libc::utsname = unsafe { std::mem::zeroed() };
    // SAFETY: `uts` is valid for writes for the duration of the call.
    if unsafe { libc::uname(&mut uts) } != 0 {
        return None;
    }
    // SAFETY: uname NUL-terminates `release` inside the array.
    let release = unsafe { std::ffi::CStr::from_ptr(uts.release.as_ptr()) };
    let release = release.to_str().ok()?;
    let mut parts = release.split(|c: char| !c.is_ascii_digit());
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next()?.parse().ok()?;
    Some((major, minor))
}

type Configure = fn(&mut io_uring::Builder);

/// Builds the ring with the best flags this kernel accepts.
fn build_ring(entries: u32) -> io::Result<(IoUring, &'static str)> {
    let attempts: [(&'static str, Configure); 4] = [
        ("SINGLE_ISSUER|DEFER_TASKRUN", |b| {
            b.setup_single_issuer().setup_defer_taskrun();
        }),
        ("SINGLE_ISSUER|COOP_TASKRUN|TASKRUN_FLAG", |b| {
            b.setup_single_issuer()
                .setup_coop_taskrun()
                .setup_taskrun_flag();
        }),
        ("COOP_TASKRUN|TASKRUN_FLAG", |b| {
            b.setup_coop_taskrun().setup_taskrun_flag();
        }),
        ("default flags", |_| {}),
    ];
    let mut last = io::Error::from(io::ErrorKind::Unsupported);
    for (name, configure) in attempts {
        let mut builder = IoUring::builder();
        builder
            .setup_cqsize(entries.saturating_mul(CQ_PER_SQ))
            // One bad entry must not hold back the rest of the turn's submissions.
            .setup_submit_all()
            .setup_clamp();
        configure(&mut builder);
        match builder.build(entries) {
            Ok(ring) => return Ok((ring, name)),
            // Forbidden (sysctl io_uring_disabled, seccomp): other flags will not help.
            Err(e) if matches!(e.raw_os_error(), Some(libc::EPERM | libc::ENOSYS)) => {
                return Err(e)
            }
            Err(e) => last = e,
        }
    }
    Err(last)
}

impl Uring {
    /// Sets up a ring of `entries` submission entries and its receive buffers. Fails (so that
    /// the engine falls back to epoll) where io_uring is forbidden or too old.
    pub fn new(entries: u32) -> io::Result<Uring> {
        Uring::with_recv_buffers(entries, RECV_BUFS, RECV_BUF_BYTES)
    }

    /// `new` with `count` receive buffers (a power of two, at most 32768) of `buf_bytes` each.
    pub fn with_recv_buffers(entries: u32, count: u16, buf_bytes: u32) -> io::Result<Uring> {
        if !count.is_power_of_two() || count > 1 << 15 || buf_bytes == 0 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "receive buffer shape",
            ));
        }
        if kernel_version().is_some_and(|v| v < KERNEL_MIN) {
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "io_uring needs Linux 6.0",
            ));
        }
        let (ring, setup) = build_ring(entries)?;
        let bufs = BufRing::new(count, buf_bytes)?;
        // SAFETY: the ring memory is mapped, page aligned and holds `count` entries. It
        // stays mapped until the ring is torn down: `bufs` is dropped after `ring` (field
        // order), after drop has waited for the kernel, or it is leaked.
        unsafe {
            ring.submitter().register_buf_ring_with_flags(
                bufs.ring_addr(),
                bufs.count(),
                RECV_BUF_GROUP,
                0,
            )?;
        }
        Ok(Uring {
            ring,
            setup,
            bufs,
            listeners: Vec::new(),
            slots: Vec::new(),
            wake_fd: None,
            wake_buf: Box::into_raw(Box::new(0u64)),
            backoff: Box::new(Timespec::from(sys::ACCEPT_BACKOFF)),
            pending: Pending::default(),
            orphan_sends: Vec::new(),
            backlog: VecDeque::new(),
            cqes: Vec::with_capacity(CQES_PER_BATCH),
            ops_in_flight: 0,
        })
    }

    /// Queues an entry for the next submit; submits early only if the queue is full.
    fn push(&mut self, entry: squeue::Entry) {
        self.ops_in_flight += 1;
        if self.backlog.is_empty() {
            if self.try_push(&entry) {
                return;
            }
            if self.ring.submit().is_ok() && self.try_push(&entry) {
                return;
            }
        }
        self.backlog.push_back(entry);
    }

    fn try_push(&mut self, entry: &squeue::Entry) -> bool {
        // SAFETY: what an entry points to outlives its operation: send buffers stay in their
        // slot or in `orphan_sends` until the last completion, `wake_buf` and `backoff` and the
        // buffer ring until teardown has seen every completion (or forever).
        unsafe { self.ring.submission().push(entry).is_ok() }
    }

    /// Moves the backlog into the submission queue, submitting as it fills up.
    fn flush_backlog(&mut self) {
        while let Some(entry) = self.backlog.front().cloned() {
            if !self.try_push(&entry) && (self.ring.submit().is_err() || !self.try_push(&entry)) {
                return;
            }
            self.backlog.pop_front();
        }
    }

    fn conn_mut(&mut self, token: Token, gen: u32) -> Option<&mut Conn> {
        let slot = self.slots.get_mut(token as usize)?;
        if slot.gen != gen {
            return None;
        }
        slot.conn.as_mut()
    }

    fn arm_accept(&mut self, index: u32) {
        let Some(&fd) = self.listeners.get(index as usize) else {
            return;
        };
        if fd < 0 {
            return; // closed by `close_listener`
        }
        let entry = opcode::AcceptMulti::new(Fd(fd))
            .flags(libc::SOCK_CLOEXEC)
            .build()
            .user_data(sys::pack(OP_ACCEPT, 0, index));
        self.push(entry);
    }

    fn arm_accept_backoff(&mut self, index: u32) {
        let entry = opcode::Timeout::new(&*self.backoff)
            .build()
            .user_data(sys::pack(OP_ACCEPT_BACKOFF, 0, index));
        self.push(entry);
    }

    fn arm_recv(&mut self, token: Token) {
        let Some(slot) = self.slots.get_mut(token as usize) else {
            return;
        };
        let gen = slot.gen;
        let Some(conn) = slot.conn.as_mut() else {
            return;
        };
        conn.recv_armed = true;
        let entry = opcode::RecvMulti::new(Fd(conn.fd), RECV_BUF_GROUP)
            .build()
            .user_data(sys::pack(OP_RECV, gen, token));
        self.push(entry);
    }

    /// Submits a Send of what is left of the connection's output.
    fn arm_send(&mut self, token: Token) {
        let Some(slot) = self.slots.get_mut(token as usize) else {
            return;
        };
        let gen = slot.gen;
        let Some(conn) = slot.conn.as_mut() else {
            return;
        };
        let Some(rest) = conn
            .send
            .as_deref()
            .and_then(|b| b.get(conn.send_written_bytes..))
        else {
            return;
        };
        let len = u32::try_from(rest.len()).unwrap_or(u32::MAX);
        conn.send_armed = true;
        // MSG_NOSIGNAL: a vanished peer is an EPIPE completion, not a SIGPIPE.
        let entry = opcode::Send::new(Fd(conn.fd), rest.as_ptr(), len)
            .flags(libc::MSG_NOSIGNAL | libc::MSG_WAITALL)
            .build()
            .user_data(sys::pack(OP_SEND, gen, token));
        self.push(entry);
    }

    fn arm_wake_read(&mut self) {
        let Some(fd) = self.wake_fd else {
            return;
        };
        let entry = opcode::Read::new(Fd(fd), self.wake_buf.cast(), 8)
            .build()
            .user_data(sys::pack(OP_WAKE_READ, 0, 0));
        self.push(entry);
    }

    /// Waits for the eventfd to become readable: for kernels that fail a Read of a nonblocking
    /// eventfd with EAGAIN instead of waiting.
    fn arm_wake_poll(&mut self) {
        let Some(fd) = self.wake_fd else {
            return;
        };
        let entry = opcode::PollAdd::new(Fd(fd), libc::POLLIN as u32)
            .build()
            .user_data(sys::pack(OP_WAKE_POLL, 0, 0));
        self.push(entry);
    }

    fn on_accept(&mut self, index: u32, res: i32, more: bool, handler: &mut dyn FnMut(Event<'_>)) {
        if res >= 0 {
            handler(Event::Accepted(res));
            if !more {
                self.arm_accept(index);
            }
            return;
        }
        if more || self.listeners.get(index as usize).is_none_or(|&fd| fd < 0) {
            return;
        }
        match -res {
            libc::EINTR | libc::EAGAIN | libc::ECONNABORTED | libc::EPROTO => {
                self.arm_accept(index)
            }
            // Out of descriptors or memory, or unexpected: try again a little later rather
            // than fail again at once.
            _ => self.arm_accept_backoff(index),
        }
    }

    /// Returns the events delivered.
    fn on_recv(
        &mut self,
        token: Token,
        gen: u32,
        cqe: &cqueue::Entry,
        handler: &mut dyn FnMut(Event<'_>),
    ) -> usize {
        let (res, flags) = (cqe.result(), cqe.flags());
        let more = cqueue::more(flags);
        let reading = match self.conn_mut(token, gen) {
            Some(conn) => {
                conn.recv_armed &= more;
                conn.reading
            }
            None => false,
        };
        let mut delivered = 0;
        if let Some(bid) = cqueue::buffer_select(flags) {
            if reading && res > 0 {
                handler(Event::Data(token, self.bufs.data(bid, res as usize)));
                delivered = 1;
            }
            self.bufs.recycle(bid);
        }
        if !reading || more {
            return delivered;
        }
        match res {
            1.. => self.arm_recv(token),
            _ if matches!(-res, libc::ENOBUFS | libc::EINTR | libc::EAGAIN) => self.arm_recv(token),
            _ => {
                // EOF (0) or a receive error.
                if let Some(conn) = self.conn_mut(token, gen) {
                    conn.reading = false;
                }
                handler(Event::Closed(token));
                delivered += 1;
            }
        }
        delivered
    }

    /// Returns the events delivered.
    fn on_send(
        &mut self,
        token: Token,
        gen: u32,
        res: i32,
        handler: &mut dyn FnMut(Event<'_>),
    ) -> usize {
        let Some(conn) = self.conn_mut(token, gen) else {
            // The connection closed while the kernel was reading this buffer: free it now.
            let tag = sys::pack(OP_SEND, gen, token);
            if let Some(i) = self.orphan_sends.iter().position(|(t, _)| *t == tag) {
                let (_, buf) = self.orphan_sends.swap_remove(i);
                super::orphaned(buf.capacity(), false);
            }
            return 0;
        };
        conn.send_armed = false;
        let len = conn.send.as_ref().map_or(0, Vec::len);
        debug_assert!(conn.send.is_some(), "send completion without a buffer");
        if res > 0 {
            conn.send_written_bytes += res as usize;
            if conn.send_written_bytes < len {
                self.arm_send(token);
                return 0;
            }
            let mut buf = conn.send.take().unwrap_or_default();
            buf.clear();
            handler(Event::SendDone(token, buf));
            return 1;
        }
        if matches!(-res, libc::EINTR | libc::EAGAIN) {
            self.arm_send(token);
            return 0;
        }
        // An error (EPIPE, ECONNRESET...), or 0 bytes for a nonempty buffer.
        conn.send = None;
        handler(Event::SendFailed(token));
        1
    }

    /// Returns the events delivered.
    fn on_wake(&mut self, kind: u8, res: i32, handler: &mut dyn FnMut(Event<'_>)) -> usize {
        match (kind, res) {
            (OP_WAKE_READ, 0..) => {
                handler(Event::Wake);
                self.arm_wake_read();
                1
            }
            (OP_WAKE_READ, _) if -res == libc::EAGAIN => {
                self.arm_wake_poll();
                0
            }
            (OP_WAKE_READ, _) if -res == libc::EINTR => {
                self.arm_wake_read();
                0
            }
            (OP_WAKE_POLL, 0..) => {
                self.arm_wake_read();
                0
            }
            (OP_WAKE_POLL, _) if -res == libc::EINTR => {
                self.arm_wake_poll();
                0
            }
            // The eventfd is broken (closed under us): nothing sensible to re-arm.
            _ => 0,
        }
    }

    /// Handles one completion; returns the events delivered.
    fn complete(&mut self, cqe: &cqueue::Entry, handler: &mut dyn FnMut(Event<'_>)) -> usize {
        let more = cqueue::more(cqe.flags());
        if !more {
            debug_assert!(self.ops_in_flight > 0, "more completions than operations");
            self.ops_in_flight = self.ops_in_flight.saturating_sub(1);
        }
        let (kind, gen, index) = sys::unpack(cqe.user_data());
        let res = cqe.result();
        match kind {
            OP_RECV => self.on_recv(index, gen, cqe, handler),
            OP_SEND => self.on_send(index, gen, res, handler),
            OP_ACCEPT => {
                self.on_accept(index, res, more, handler);
                usize::from(res >= 0)
            }
            OP_ACCEPT_BACKOFF => {
                self.arm_accept(index);
                0
            }
            OP_WAKE_READ | OP_WAKE_POLL => self.on_wake(kind, res, handler),
            _ => 0, // OP_CANCEL, OP_CLOSE: nothing to report.
        }
    }

    /// Handles what the completion queue holds; returns the events delivered.
    fn drain(&mut self, handler: &mut dyn FnMut(Event<'_>)) -> usize {
        let mut delivered = 0;
        let mut batch = std::mem::take(&mut self.cqes);
        for _ in 0..CQE_BATCHES_PER_ENTER_MAX {
            batch.clear();
            batch.extend(self.ring.completion().take(CQES_PER_BATCH));
            if batch.is_empty() {
                break;
            }
            for cqe in &batch {
                delivered += self.complete(cqe, handler);
            }
        }
        self.cqes = batch;
        delivered
    }

    /// Submits everything queued and waits for one completion or `wait`. ETIME, EBUSY (the
    /// completion queue needs draining first) are not errors; EINTR comes back as `Interrupted`.
    fn enter(&mut self, wait: Option<Duration>) -> io::Result<()> {
        let result = match wait {
            None => self.ring.submit_and_wait(1),
            Some(wait) => {
                let timespec = Timespec::from(wait);
                let args = SubmitArgs::new().timespec(&timespec);
                self.ring.submitter().submit_with_args(1, &args)
            }
        };
        match result {
            Ok(_) => Ok(()),
            Err(e) if matches!(e.raw_os_error(), Some(libc::ETIME | libc::EBUSY)) => Ok(()),
            Err(e) => Err(e),
        }
    }

    fn deliver_pending(&mut self, handler: &mut dyn FnMut(Event<'_>)) -> usize {
        let slots = &self.slots;
        let is_live = |token: Token, gen: u32| {
            slots
                .get(token as usize)
                .is_some_and(|s| s.gen == gen && s.conn.is_some())
        };
        self.pending.deliver(is_live, handler)
    }

    /// Cancels every operation and waits until the kernel has completed them all. Returns
    /// whether it did: only then is the memory they use safe to free.
    fn teardown(&mut self) -> bool {
        let cancel_all = opcode::AsyncCancel2::new(CancelBuilder::any())
            .build()
            .user_data(sys::pack(OP_CANCEL, 0, 0));
        self.push(cancel_all);
        let deadline = Instant::now() + TEARDOWN_WAIT;
        while self.ops_in_flight > 0 {
            if Instant::now() >= deadline {
                return false;
            }
            self.flush_backlog();
            if self.enter(Some(Duration::from_millis(50))).is_err() {
                return false;
            }
            for cqe in self.ring.completion() {
                if !cqueue::more(cqe.flags()) {
                    self.ops_in_flight = self.ops_in_flight.saturating_sub(1);
                }
            }
        }
        let _ = self.ring.submitter().unregister_buf_ring(RECV_BUF_GROUP);
        true
    }
}

impl Io for Uring {
    fn describe(&self) -> String {
        format!(
            "io_uring ({}; sq {}, cq {}; {} x {} KiB receive buffers)",
            self.setup,
            self.ring.params().sq_entries(),
            self.ring.params().cq_entries(),
            self.bufs.count(),
            self.bufs.buf_bytes() / 1024
        )
    }

    fn add_listener(&mut self, fd: RawFd) -> io::Result<()> {
        if !sys::is_listening(fd)? {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "not a listening socket",
            ));
        }
        let index = self.listeners.len() as u32;
        self.listeners.push(fd);
        self.arm_accept(index);
        Ok(())
    }

    fn close_listener(&mut self, fd: RawFd) {
        let Some(index) = self.listeners.iter().position(|&l| l == fd) else {
            return;
        };
        // The index stays taken (completions name listeners by index); -1 marks it closed.
        self.listeners[index] = -1;
        let index = index as u32;
        let cancel = opcode::AsyncCancel::new(sys::pack(OP_ACCEPT, 0, index))
            .build()
            .user_data(sys::pack(OP_CANCEL, 0, index));
        self.push(cancel);
        // Queued after the cancel: the socket goes away once the accept has released it.
        let close = opcode::Close::new(Fd(fd))
            .build()
            .user_data(sys::pack(OP_CLOSE, 0, index));
        self.push(close);
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
        sys::set_nodelay(fd)?;
        if self.slots.len() <= token as usize {
            self.slots.resize_with(token as usize + 1, Slot::default);
        }
        let Some(slot) = self.slots.get_mut(token as usize) else {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "token out of range",
            ));
        };
        slot.conn = Some(Conn {
            fd,
            reading: true,
            recv_armed: false,
            send: None,
            send_written_bytes: 0,
            send_armed: false,
        });
        self.arm_recv(token);
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
        if conn.send.is_some() {
            // The contract allows one send in flight; the engine is wrong, the connection fails.
            // The buffer in flight must not be touched: the kernel is reading it.
            debug_assert!(false, "second send in flight on token {token}");
            self.pending.push(token, gen, Deferred::SendFailed);
            return;
        }
        if data.is_empty() {
            self.pending.push(token, gen, Deferred::SendDone(data));
            return;
        }
        conn.send = Some(data);
        conn.send_written_bytes = 0;
        self.arm_send(token);
    }

    fn close(&mut self, token: Token) {
        let Some(slot) = self.slots.get_mut(token as usize) else {
            return;
        };
        let Some(conn) = slot.conn.take() else {
            return;
        };
        let gen = slot.gen;
        slot.gen = slot.gen.wrapping_add(1) & GEN_MASK;
        let cancel = |op: u8| {
            opcode::AsyncCancel::new(sys::pack(op, gen, token))
                .build()
                .user_data(sys::pack(OP_CANCEL, gen, token))
        };
        if conn.recv_armed {
            self.push(cancel(OP_RECV));
        }
        if let Some(buf) = conn.send {
            if conn.send_armed {
                super::orphaned(buf.capacity(), true);
                self.orphan_sends
                    .push((sys::pack(OP_SEND, gen, token), buf));
                self.push(cancel(OP_SEND));
            }
        }
        // Queued after the cancels: the socket itself goes away when they have released it.
        let close = opcode::Close::new(Fd(conn.fd))
            .build()
            .user_data(sys::pack(OP_CLOSE, gen, token));
        self.push(close);
    }

    fn set_wake_fd(&mut self, fd: RawFd) -> io::Result<()> {
        if self.wake_fd.is_some() {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                "wake fd already set",
            ));
        }
        self.wake_fd = Some(fd);
        self.arm_wake_read();
        Ok(())
    }

    fn poll(
        &mut self,
        timeout: Option<Duration>,
        handler: &mut dyn FnMut(Event<'_>),
    ) -> io::Result<()> {
        let deadline = timeout.and_then(|t| Instant::now().checked_add(t));
        loop {
            let mut delivered = self.deliver_pending(handler);
            self.flush_backlog();
            let wait = match (delivered, deadline) {
                (1.., _) => Some(Duration::ZERO),
                (0, Some(d)) => Some(d.saturating_duration_since(Instant::now())),
                (0, None) => None,
            };
            let interrupted = match self.enter(wait) {
                Ok(()) => false,
                // A signal: return so that the engine can look at what its handler set.
                Err(e) if e.kind() == io::ErrorKind::Interrupted => true,
                Err(e) => return Err(e),
            };
            delivered += self.drain(handler);
            if delivered > 0 || interrupted || deadline.is_some_and(|d| Instant::now() >= d) {
                return Ok(());
            }
        }
    }
}

impl Drop for Uring {
    fn drop(&mut self) {
        let quiet = self.teardown();
        let mut leaked_bufs = std::mem::take(&mut self.orphan_sends);
        for (_, b) in &leaked_bufs {
            super::orphaned(b.capacity(), false);
        }
        for slot in &mut self.slots {
            if let Some(conn) = slot.conn.take() {
                // SAFETY: the connection's fd is ours (handed over by `add_conn`) and is not
                // used after this.
                unsafe { libc::close(conn.fd) };
                leaked_bufs.extend(conn.send.map(|b| (0, b)));
            }
        }
        if quiet {
            // SAFETY: `wake_buf` came from `Box::into_raw` in `new`, and no operation uses it
            // any more (teardown saw every completion).
            drop(unsafe { Box::from_raw(self.wake_buf) });
        } else {
            // The kernel may still read or write these: never free them.
            self.bufs.leak();
            std::mem::forget(leaked_bufs);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernel_version_parses() {
        let (major, _) = kernel_version().expect("uname");
        assert!(major >= 2);
    }

    /// Every operation is accounted for: a send the kernel still reads when its connection
    /// closes is freed at its completion, and nothing stays in flight.
    #[test]
    fn closed_connection_releases_everything() {
        use std::os::fd::IntoRawFd;
        use std::os::unix::net::UnixStream;
        let Ok(mut ring) = Uring::new(64) else {
            println!("skipping: io_uring cannot be set up here");
            return;
        };
        let (ours, _peer) = UnixStream::pair().expect("socketpair");
        ring.add_conn(0, ours.into_raw_fd()).expect("add_conn");
        // Far more than a unix socket buffers: the send stays in flight.
        ring.send(0, vec![7; 8 << 20]);
        ring.poll(Some(Duration::ZERO), &mut |_| {
            panic!("nothing to report yet")
        })
        .expect("poll");
        assert_eq!(ring.ops_in_flight, 2, "recv and send");
        ring.close(0);
        let deadline = Instant::now() + Duration::from_secs(5);
        while ring.ops_in_flight > 0 {
            assert!(Instant::now() < deadline, "operations still in flight");
            ring.poll(Some(Duration::from_millis(10)), &mut |_| {
                panic!("event after close")
            })
            .expect("poll");
        }
        assert!(ring.orphan_sends.is_empty());
        assert!(ring.backlog.is_empty());
    }

    /// Installs, on the calling thread only, a seccomp filter failing io_uring_setup with
    /// `errno`, as container profiles do. Returns false if seccomp is unavailable.
    fn deny_io_uring_setup(errno: i32) -> bool {
        let op = |code: u32, jt: u8, jf: u8, k: u32| libc::sock_filter {
            code: code as u16,
            jt,
            jf,
            k,
        };
        let mut filter = [
            // Load seccomp_data.nr (offset 0).
            op(libc::BPF_LD | libc::BPF_W | libc::BPF_ABS, 0, 0, 0),
            op(
                libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K,
                0,
                1,
                libc::SYS_io_uring_setup as u32,
            ),
            op(
                libc::BPF_RET | libc::BPF_K,
                0,
                0,
                libc::SECCOMP_RET_ERRNO | errno as u32,
            ),
            op(libc::BPF_RET | libc::BPF_K, 0, 0, libc::SECCOMP_RET_ALLOW),
        ];
        let prog = libc::sock_fprog {
            len: filter.len() as u16,
            filter: filter.as_mut_ptr(),
        };
        // SAFETY: PR_SET_NO_NEW_PRIVS takes integers only; PR_SET_SECCOMP reads `prog` and the
        // filter it points to during the call. Without TSYNC the filter binds this thread only.
        unsafe {
            libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0
                && libc::prctl(libc::PR_SET_SECCOMP, libc::SECCOMP_MODE_FILTER, &prog) == 0
        }
    }

    /// Where io_uring is forbidden, `new` returns the error (the engine then uses epoll).
    #[test]
    fn forbidden_io_uring_is_an_error() {
        for errno in [libc::EPERM, libc::ENOSYS] {
            let outcome = std::thread::spawn(move || {
                if !deny_io_uring_setup(errno) {
                    return None;
                }
                Some(Uring::new(64).err().and_then(|e| e.raw_os_error()))
            })
            .join()
            .expect("thread");
            match outcome {
                None => println!("skipping: seccomp unavailable here"),
                Some(got) => assert_eq!(got, Some(errno)),
            }
        }
    }

    /// Prints which ring flags this machine grants (the engine logs the same line).
    #[test]
    fn describe_reports_flags() {
        match Uring::new(256) {
            Ok(ring) => println!("{}", ring.describe()),
            Err(e) => println!("io_uring unavailable here ({e}): the engine would use epoll"),
        }
    }
}
