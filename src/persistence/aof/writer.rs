//! The AOF writer: one thread that owns the open incr file and turns the feed's AOF bytes into
//! durable bytes on disk.
//!
//! Shards never touch the file. They append encoded commands to the feed's AOF buffer (under
//! the feed's lock, while their shard locks are still held) and, once per loop turn, ring the
//! writer's bell if the stream grew. The writer takes everything the buffer holds in one swap,
//! writes it at the file's end with an explicit offset, and (for `appendfsync always`) fsyncs
//! it: through its own io_uring, with several fdatasyncs in flight (`Writer::run`), or with
//! plain `pwrite`/`fdatasync` when io_uring is unavailable. Whatever accumulated meanwhile
//! goes in the next round, so under load one fsync covers many clients' writes (group commit).
//!
//! Offsets. Every byte ever appended to the AOF stream has a position (`Feed::aof_end` counts
//! them). The writer publishes `durable`: every byte before it is on disk (fsynced under
//! `always`, written under `everysec`/`no`). A client whose command ended when the stream was
//! at offset `o` gets its reply only when `durable >= o` (see `Aof::hold_offset`); the writer
//! pokes the shards that wait after each advance.
//!
//! Failures. A write or fsync error keeps the bytes that are not yet durable and retries them
//! at the same file offset (so a torn partial write is overwritten), at most every
//! `RETRY_MS`; meanwhile `write_errno` is set and writes are refused with MISCONF, and held
//! replies stay held. Nothing is acknowledged that is not on disk.
//!
//! Control. The rewrite machinery switches files and stops the writer through a queue read
//! under the same `take` lock as the data, with the bytes that belong before the switch taken
//! from the feed at the cut, so a switch lands exactly at a stream position.

use super::Aof;
use crate::config::AppendFsync;
use crate::server::Server;
use crate::{log_notice, log_warning};
use std::fs::File;
use std::os::fd::AsRawFd;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Retry a failed write or fsync at most this often.
const RETRY_MS: u64 = 1000;
/// The writer wakes at least this often even without a bell (safety net for stream bytes
/// appended by threads that do not ring).
const IDLE_WAKE_MS: u64 = 100;
/// The largest single write submitted.
const WRITE_CHUNK_BYTES: usize = 1 << 30;
/// io_uring entries of the writer's ring.
const RING_ENTRIES: u32 = 16;
/// Under `always`, at most this many fdatasyncs in flight at once (see `Writer::run`).
const SYNCS_IN_FLIGHT_MAX: usize = 4;

/// Completion tags on the writer's ring.
const UD_WRITE: u64 = 1;
const UD_SYNC: u64 = 2;
const UD_BELL: u64 = 3;
/// An unlinked fdatasync; the low bits are the stream offset it makes durable.
const UD_FSYNC_TO: u64 = 1 << 63;

/// A control message for the writer.
pub enum Ctl {
    /// Finish the current file with `tail` (the stream up to the cut), fsync it, continue in
    /// `file`.
    Switch { tail: Vec<u8>, file: File },
    /// Write `tail`, fsync, close the file and exit the thread.
    Stop { tail: Vec<u8> },
}

/// The disk interface: io_uring when it can be set up, plain system calls otherwise.
enum Disk {
    Uring(Box<io_uring::IoUring>),
    Plain,
}

impl Disk {
    fn new() -> Disk {
        match io_uring::IoUring::new(RING_ENTRIES) {
            Ok(r) => Disk::Uring(Box::new(r)),
            Err(e) => {
                log_notice!(
                    "AOF writer: io_uring unavailable ({}), using write/fdatasync",
                    e
                );
                Disk::Plain
            }
        }
    }

    fn describe(&self) -> &'static str {
        match self {
            Disk::Uring(_) => "io_uring",
            Disk::Plain => "write/fdatasync",
        }
    }

    /// Writes `data` at `off`, then (with `sync`) fdatasyncs, as one linked pair on the ring.
    /// Completions of other operations seen meanwhile go to `foreign`.
    fn write_at(
        &mut self,
        f: &File,
        off: u64,
        data: &[u8],
        sync: bool,
        foreign: &mut Vec<(u64, i32)>,
    ) -> std::io::Result<()> {
        match self {
            Disk::Uring(ring) => uring_write(ring, f, off, data, sync, foreign),
            Disk::Plain => plain_write(f, off, data, sync),
        }
    }

    fn sync(&mut self, f: &File, foreign: &mut Vec<(u64, i32)>) -> std::io::Result<()> {
        match self {
            Disk::Uring(ring) => uring_write(ring, f, 0, &[], true, foreign),
            Disk::Plain => f.sync_data(),
        }
    }
}

fn plain_write(f: &File, mut off: u64, mut data: &[u8], sync: bool) -> std::io::Result<()> {
    use std::os::unix::fs::FileExt;
    while !data.is_empty() {
        let n = f.write_at(data, off)?;
        if n == 0 {
            return Err(std::io::Error::from_raw_os_error(libc::ENOSPC));
        }
        off += n as u64;
        data = &data[n..];
    }
    if sync {
        f.sync_data()?;
    }
    Ok(())
}

fn uring_write(
    ring: &mut io_uring::IoUring,
    f: &File,
    mut off: u64,
    mut data: &[u8],
    sync: bool,
    foreign: &mut Vec<(u64, i32)>,
) -> std::io::Result<()> {
    use io_uring::{opcode, squeue, types};
    let fd = types::Fd(f.as_raw_fd());
    loop {
        let piece = &data[..data.len().min(WRITE_CHUNK_BYTES)];
        let last = piece.len() == data.len();
        let mut want = 0;
        {
            let mut sq = ring.submission();
            if !piece.is_empty() {
                let mut w = opcode::Write::new(fd, piece.as_ptr(), piece.len() as u32)
                    .offset(off)
                    .build()
                    .user_data(UD_WRITE);
                if sync && last {
                    w = w.flags(squeue::Flags::IO_LINK);
                }
                // SAFETY: `piece` outlives the operation: we wait for its completion below.
                unsafe { sq.push(&w) }.map_err(|_| std::io::Error::other("AOF ring full"))?;
                want += 1;
            }
            if sync && last {
                let s = opcode::Fsync::new(fd)
                    .flags(types::FsyncFlags::DATASYNC)
                    .build()
                    .user_data(UD_SYNC);
                // SAFETY: the fsync references no memory of ours.
                unsafe { sq.push(&s) }.map_err(|_| std::io::Error::other("AOF ring full"))?;
                want += 1;
            }
        }
        ring.submit_and_wait(want)?;
        let (mut wres, mut sres) = (None, None);
        let mut seen = 0;
        while seen < want {
            let cqe = ring.completion().next();
            let Some(cqe) = cqe else {
                ring.submit_and_wait(1)?;
                continue;
            };
            match cqe.user_data() {
                UD_WRITE => wres = Some(cqe.result()),
                UD_SYNC => sres = Some(cqe.result()),
                other => {
                    foreign.push((other, cqe.result()));
                    continue;
                }
            }
            seen += 1;
        }
        if let Some(r) = wres {
            if r < 0 {
                return Err(std::io::Error::from_raw_os_error(-r));
            }
            if r == 0 && !piece.is_empty() {
                return Err(std::io::Error::from_raw_os_error(libc::ENOSPC));
            }
            off += r as u64;
            data = &data[r as usize..];
        }
        if data.is_empty() {
            if let Some(r) = sres {
                if r < 0 {
                    return Err(std::io::Error::from_raw_os_error(-r));
                }
            }
            return Ok(());
        }
        // A short write: the linked fsync was cancelled; continue with the rest.
    }
}

/// The writer's state.
struct Writer {
    server: Arc<Server>,
    disk: Disk,
    file: Arc<File>,
    /// Where the next byte goes in `file`.
    file_off: u64,
    /// Stream offset of the first byte of `pending`.
    pending_at: u64,
    /// Bytes taken from the feed, not yet durable.
    pending: Vec<u8>,
    spare: Vec<u8>,
    /// Written but not fsynced (everysec, no).
    unsynced: bool,
    last_fsync: Instant,
    failing_since: Option<Instant>,
    /// Ring completions that belong to the writer's own bookkeeping, seen while waiting for
    /// something else.
    foreign: Vec<(u64, i32)>,
    /// Pipelined `always` (see `run`): fdatasyncs in flight, the stream offset the newest of
    /// them covers, the offset known durable, when a failed one may be retried, and whether
    /// the bell's eventfd is watched on the ring.
    syncs_in_flight: usize,
    sync_submitted_to: u64,
    synced_to: u64,
    sync_retry_at: Option<Instant>,
    bell_armed: bool,
}

/// The file's end, lent by the sleeping writer to the shards (`everysec` and `no`): a shard
/// at the end of its loop turn writes the stream's new bytes itself, as Redis writes its AOF
/// buffer before replying, instead of waking the writer and waiting to be woken back. The
/// lock orders the writes; the writer takes the tail back whenever it wakes (a control
/// message, an fsync due, a shard's ring), so rewrites, fsyncs and failures stay its own.
pub struct Tail {
    file: Arc<File>,
    /// Where the next byte goes in `file`, and its stream offset.
    off: u64,
    at: u64,
    /// A shard wrote (the writer owes an everysec fsync).
    wrote: bool,
    /// A shard's write failed: the bytes went back to the feed; the writer retries.
    broken: bool,
    spare: Vec<u8>,
}

/// A shard's write of the AOF stream's new bytes through the lent tail. Returns whether they
/// are written (the durable offset moved past them); otherwise the caller rings the writer.
pub fn fast_write(server: &Server) -> bool {
    let aof = &server.aof;
    if aof.policy() == AppendFsync::Always
        || aof.write_errno.load(Ordering::Relaxed) != 0
        || aof.flush_sleep_us.load(Ordering::Relaxed) != 0
    {
        return false;
    }
    let mut g = aof.tail.lock();
    let Some(t) = g.as_mut() else {
        return false;
    };
    if t.broken {
        return false;
    }
    let mut buf = std::mem::take(&mut t.spare);
    buf.clear();
    {
        let q = aof.take_lock.lock();
        if !q.is_empty() || aof.ctl_pending.load(Ordering::SeqCst) {
            // A control message cuts the stream: what follows belongs to the writer.
            t.spare = buf;
            return false;
        }
        server.feed.with(|st| {
            if let Some(b) = st.aof.as_mut() {
                std::mem::swap(b, &mut buf);
            }
        });
    }
    if buf.is_empty() {
        t.spare = buf;
        return true;
    }
    match plain_write(&t.file, t.off, &buf, false) {
        Ok(()) => {
            let n = buf.len() as u64;
            t.off += n;
            t.at += n;
            t.wrote = true;
            aof.incr_size.fetch_add(n, Ordering::Relaxed);
            aof.written_total.fetch_add(n, Ordering::Relaxed);
            aof.publish_durable(server, t.at);
            buf.clear();
            t.spare = buf;
            true
        }
        Err(_) => {
            // Back in front of the feed's bytes, for the writer to write at the same offset
            // (a torn partial write is overwritten), log and retry.
            let _q = aof.take_lock.lock();
            server.feed.with(|st| {
                if let Some(b) = st.aof.as_mut() {
                    buf.extend_from_slice(b);
                    std::mem::swap(b, &mut buf);
                }
            });
            t.broken = true;
            false
        }
    }
}

/// Starts the writer thread on `file` (already positioned at its end, `file_off`). Stream
/// bytes from `start` on go to it.
pub fn spawn(
    server: Arc<Server>,
    file: File,
    file_off: u64,
    start: u64,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    std::thread::Builder::new()
        .name("aof-writer".into())
        .spawn(move || {
            let disk = Disk::new();
            log_notice!("AOF writer started ({})", disk.describe());
            let mut w = Writer {
                server,
                disk,
                file: Arc::new(file),
                file_off,
                pending_at: start,
                pending: Vec::new(),
                spare: Vec::new(),
                unsynced: false,
                last_fsync: Instant::now(),
                failing_since: None,
                foreign: Vec::new(),
                syncs_in_flight: 0,
                sync_submitted_to: start,
                synced_to: start,
                sync_retry_at: None,
                bell_armed: false,
            };
            w.run();
        })
}

impl Writer {
    fn aof(&self) -> &Aof {
        &self.server.aof
    }

    /// The writer's loop.
    ///
    /// Under `always` with io_uring the fsyncs are pipelined: the writer writes what the
    /// shards appended, submits an fdatasync for everything written so far without waiting
    /// for it, and goes on taking and writing new bytes, with up to `SYNCS_IN_FLIGHT_MAX`
    /// fdatasyncs in flight. Each completion makes durable what was written before it was
    /// submitted. The disk gets concurrent flushes, which it completes several at a time,
    /// instead of one after another, and the shards' writes never wait for a flush to start.
    /// It sleeps in the ring, on fsync completions and on the bell's eventfd together.
    /// Otherwise (other policies, or no io_uring) each round is one write, then, under
    /// `always`, one linked fdatasync waited for.
    fn run(&mut self) {
        loop {
            self.retract_tail();
            let (ctls, fresh) = self.take();
            for ctl in ctls {
                self.settle_syncs();
                match ctl {
                    Ctl::Switch { tail, file } => {
                        self.pending.extend_from_slice(&tail);
                        self.flush_until_ok();
                        let size = file.metadata().map(|m| m.len()).unwrap_or(0);
                        self.file = Arc::new(file);
                        self.file_off = size;
                        self.aof().incr_size.store(size, Ordering::Relaxed);
                    }
                    Ctl::Stop { tail } => {
                        self.pending.extend_from_slice(&tail);
                        self.flush_until_ok();
                        self.aof().writer_running.store(false, Ordering::SeqCst);
                        return;
                    }
                }
            }
            self.pending.extend_from_slice(&fresh);
            self.spare = fresh;
            if self.pipelined() {
                self.round_pipelined();
                continue;
            }
            if self.policy() == AppendFsync::Always {
                self.settle_syncs();
            } else if self.syncs_in_flight > 0 {
                // An everysec fdatasync runs on the ring while writes go on.
                self.reap(false);
            }
            if !self.pending.is_empty() {
                self.flush(false);
            }
            self.maybe_fsync_everysec();
            if self.failing_since.is_some() {
                std::thread::sleep(Duration::from_millis(RETRY_MS / 10));
                continue;
            }
            if self.pending.is_empty() {
                let wait = self.idle_wait();
                self.publish_tail();
                let aof = &self.server.aof;
                let feed = &self.server.feed;
                let taken = self.pending_at;
                aof.bell.wait(wait, || {
                    feed.aof_end() != taken || aof.ctl_pending.load(Ordering::SeqCst)
                });
            }
        }
    }

    /// Whether this round runs pipelined fsyncs (see `run`).
    fn pipelined(&self) -> bool {
        let aof = self.aof();
        let skip = aof.child_running.load(Ordering::Relaxed)
            && aof.no_fsync_on_rewrite.load(Ordering::Relaxed);
        matches!(self.disk, Disk::Uring(_))
            && self.policy() == AppendFsync::Always
            && !skip
            && aof.bell.eventfd().is_some()
    }

    fn round_pipelined(&mut self) {
        if !self.pending.is_empty() {
            if let Err(e) = self.write_pending(false) {
                self.failed(&e, "write");
                std::thread::sleep(Duration::from_millis(RETRY_MS / 10));
                return;
            }
        }
        self.submit_sync();
        self.reap(false);
        self.sleep_in_ring();
    }

    /// Writes the pending bytes at the file's end (then, with `sync`, fdatasyncs them as a
    /// linked pair) and moves the offsets past them. Returns how many bytes went.
    fn write_pending(&mut self, sync: bool) -> std::io::Result<u64> {
        let n = self.pending.len() as u64;
        let sleep_us = self.aof().flush_sleep_us.load(Ordering::Relaxed);
        if sleep_us > 0 {
            std::thread::sleep(Duration::from_micros(sleep_us));
        }
        if sync {
            let res = self.disk.write_at(
                &self.file,
                self.file_off,
                &self.pending,
                sync,
                &mut self.foreign,
            );
            self.handle_foreign();
            res?;
        } else {
            // A buffered write to the page cache: io_uring would hand it to a worker thread
            // (the file system may block), a second thread switch for nothing.
            plain_write(&self.file, self.file_off, &self.pending, false)?;
        }
        self.file_off += n;
        self.pending_at += n;
        self.pending.clear();
        let aof = self.aof();
        aof.incr_size.fetch_add(n, Ordering::Relaxed);
        aof.written_total.fetch_add(n, Ordering::Relaxed);
        Ok(n)
    }

    /// Submits an fdatasync covering everything written, unless one already covers it, too
    /// many are in flight, or a failed one is waiting for its retry time.
    fn submit_sync(&mut self) {
        if self.syncs_in_flight >= SYNCS_IN_FLIGHT_MAX || self.pending_at <= self.sync_submitted_to
        {
            return;
        }
        if let Some(at) = self.sync_retry_at {
            if Instant::now() < at {
                return;
            }
            self.sync_retry_at = None;
        }
        let Disk::Uring(ring) = &mut self.disk else {
            return;
        };
        use io_uring::{opcode, types};
        let to = self.pending_at;
        let sqe = opcode::Fsync::new(types::Fd(self.file.as_raw_fd()))
            .flags(types::FsyncFlags::DATASYNC)
            .build()
            .user_data(UD_FSYNC_TO | to);
        // SAFETY: an fsync references no memory of ours.
        if unsafe { ring.submission().push(&sqe) }.is_err() {
            // Full: submit what is queued and try again next round.
            let _ = ring.submit();
            return;
        }
        if ring.submit().is_ok() {
            self.syncs_in_flight += 1;
            self.sync_submitted_to = to;
        }
    }

    /// Collects the ring's completions (waiting for one with `block`) and acts on them.
    fn reap(&mut self, block: bool) {
        let Disk::Uring(ring) = &mut self.disk else {
            return;
        };
        if block {
            if let Err(e) = ring.submit_and_wait(1) {
                if e.raw_os_error() != Some(libc::EINTR) {
                    log_warning!("AOF writer: waiting for the ring failed: {}", e);
                    std::thread::sleep(Duration::from_millis(1));
                }
            }
        }
        self.foreign
            .extend(ring.completion().map(|c| (c.user_data(), c.result())));
        self.handle_foreign();
    }

    fn handle_foreign(&mut self) {
        if self.foreign.is_empty() {
            return;
        }
        let server = self.server.clone();
        let aof = &server.aof;
        for (ud, res) in std::mem::take(&mut self.foreign) {
            if ud == UD_BELL {
                self.bell_armed = false;
                aof.bell.drain_eventfd();
                continue;
            }
            if ud & UD_FSYNC_TO == 0 {
                continue;
            }
            self.syncs_in_flight = self.syncs_in_flight.saturating_sub(1);
            let to = ud & !UD_FSYNC_TO;
            if res < 0 {
                self.unsynced = true;
                self.failed(&std::io::Error::from_raw_os_error(-res), "fsync");
                // Everything not yet known durable is synced again after the retry delay.
                self.sync_submitted_to = self.synced_to;
                self.sync_retry_at = Some(Instant::now() + Duration::from_millis(RETRY_MS));
                continue;
            }
            if to > self.synced_to {
                self.synced_to = to;
                self.last_fsync = Instant::now();
                self.recovered();
                if to > aof.durable() {
                    aof.publish_durable(&server, to);
                }
            }
        }
    }

    /// Sleeps in the ring until the bell rings, an fsync completes or the idle period ends,
    /// unless there is work already.
    fn sleep_in_ring(&mut self) {
        let server = self.server.clone();
        let aof = &server.aof;
        let Some(efd) = aof.bell.eventfd() else {
            return;
        };
        let Disk::Uring(ring) = &mut self.disk else {
            return;
        };
        use io_uring::{opcode, types};
        if !self.bell_armed {
            let poll = opcode::PollAdd::new(types::Fd(efd), libc::POLLIN as u32)
                .build()
                .user_data(UD_BELL);
            // SAFETY: a poll references no memory of ours.
            if unsafe { ring.submission().push(&poll) }.is_ok() {
                self.bell_armed = true;
            }
        }
        aof.bell.set_sleeping(true);
        let work = server.feed.aof_end() != self.pending_at
            || aof.ctl_pending.load(Ordering::SeqCst)
            || (self.pending_at > self.sync_submitted_to
                && self.syncs_in_flight < SYNCS_IN_FLIGHT_MAX
                && self.sync_retry_at.is_none());
        if work {
            let _ = ring.submit();
        } else {
            let mut wait = Duration::from_millis(IDLE_WAKE_MS);
            if let Some(at) = self.sync_retry_at {
                wait = wait.min(at.saturating_duration_since(Instant::now()));
            }
            let ts = types::Timespec::from(wait);
            let args = types::SubmitArgs::new().timespec(&ts);
            // ETIME (the idle period ended), EINTR and EBUSY only mean "look again".
            let _ = ring.submitter().submit_with_args(1, &args);
        }
        aof.bell.set_sleeping(false);
        self.reap(false);
    }

    /// Waits until no fdatasync is in flight (before a file switch, a stop, or leaving the
    /// pipelined mode).
    fn settle_syncs(&mut self) {
        while self.syncs_in_flight > 0 {
            self.reap(true);
        }
    }

    fn idle_wait(&self) -> Duration {
        let mut ms = IDLE_WAKE_MS;
        if self.unsynced && self.policy() == AppendFsync::Everysec {
            let since = self.last_fsync.elapsed().as_millis() as u64;
            ms = ms.min(1000u64.saturating_sub(since).max(1));
        }
        Duration::from_millis(ms)
    }

    fn policy(&self) -> AppendFsync {
        self.aof().policy()
    }

    /// Before sleeping with nothing pending under `everysec`/`no`: lends the file's end to
    /// the shards (`Aof::tail`), so they write their own bytes (`fast_write`).
    fn publish_tail(&mut self) {
        let aof = &self.server.aof;
        if self.policy() == AppendFsync::Always
            || self.failing_since.is_some()
            || aof.write_errno.load(Ordering::Relaxed) != 0
            || aof.flush_sleep_us.load(Ordering::Relaxed) != 0
        {
            return;
        }
        *aof.tail.lock() = Some(Tail {
            file: self.file.clone(),
            off: self.file_off,
            at: self.pending_at,
            wrote: false,
            broken: false,
            spare: std::mem::take(&mut self.spare),
        });
    }

    /// On waking: takes the file's end back from the shards, with what they wrote.
    fn retract_tail(&mut self) {
        let Some(t) = self.server.aof.tail.lock().take() else {
            return;
        };
        self.file_off = t.off;
        self.pending_at = t.at;
        self.unsynced |= t.wrote;
        self.spare = t.spare;
    }

    /// Takes the control messages and the feed's AOF bytes, under the take lock. The bytes
    /// come after every message's tail in the stream (a tail is taken from the feed before its
    /// message is queued, under the same lock).
    fn take(&mut self) -> (Vec<Ctl>, Vec<u8>) {
        let aof = &self.server.aof;
        let mut fresh = std::mem::take(&mut self.spare);
        fresh.clear();
        let mut q = aof.take_lock.lock();
        let ctls: Vec<Ctl> = q.drain(..).collect();
        aof.ctl_pending.store(false, Ordering::SeqCst);
        self.server.feed.with(|st| {
            if let Some(buf) = st.aof.as_mut() {
                std::mem::swap(buf, &mut fresh);
            }
        });
        drop(q);
        (ctls, fresh)
    }

    /// Writes the pending bytes (and fsyncs them under `always`, or when `force_sync`).
    /// Returns whether they are now durable.
    fn flush(&mut self, force_sync: bool) -> bool {
        let server = self.server.clone();
        let aof = &server.aof;
        let rewriting = aof.child_running.load(Ordering::Relaxed);
        let skip = rewriting && aof.no_fsync_on_rewrite.load(Ordering::Relaxed);
        let sync = force_sync || (self.policy() == AppendFsync::Always && !skip);
        match self.write_pending(sync) {
            Ok(n) => {
                if sync {
                    self.unsynced = false;
                    self.last_fsync = Instant::now();
                    self.synced_to = self.pending_at;
                    self.sync_submitted_to = self.sync_submitted_to.max(self.pending_at);
                } else if n > 0 {
                    self.unsynced = true;
                }
                self.recovered();
                aof.publish_durable(&server, self.pending_at);
                true
            }
            Err(e) => {
                self.failed(&e, "write");
                false
            }
        }
    }

    /// Flushes with fsync, retrying until it succeeds (file switches and stops).
    fn flush_until_ok(&mut self) {
        while !self.flush(true) {
            std::thread::sleep(Duration::from_millis(RETRY_MS));
        }
    }

    fn maybe_fsync_everysec(&mut self) {
        if !self.unsynced || self.policy() != AppendFsync::Everysec {
            return;
        }
        if self.last_fsync.elapsed() < Duration::from_secs(1) {
            return;
        }
        let aof = &self.server.aof;
        if aof.child_running.load(Ordering::Relaxed)
            && aof.no_fsync_on_rewrite.load(Ordering::Relaxed)
        {
            return;
        }
        if matches!(self.disk, Disk::Uring(_)) {
            // In the background, as Redis's bio thread does: writes (and the replies held
            // for them) do not wait for the flush. `handle_foreign` sees it complete.
            if self.syncs_in_flight == 0 {
                self.submit_sync();
                if self.syncs_in_flight > 0 {
                    self.unsynced = false;
                    self.last_fsync = Instant::now();
                }
            }
            return;
        }
        self.last_fsync = Instant::now();
        let res = self.disk.sync(&self.file, &mut self.foreign);
        self.handle_foreign();
        match res {
            Ok(()) => {
                self.unsynced = false;
                self.recovered();
            }
            Err(e) => self.failed(&e, "fsync"),
        }
    }

    fn failed(&mut self, e: &std::io::Error, what: &str) {
        let aof = &self.server.aof;
        let code = e.raw_os_error().unwrap_or(libc::EIO);
        let first = aof.write_errno.swap(code, Ordering::SeqCst) == 0;
        if first
            || self
                .failing_since
                .is_none_or(|t| t.elapsed() >= Duration::from_secs(30))
        {
            if what == "fsync" {
                log_warning!(
                    "Error trying to fsync the AOF file: {}. Writes are refused until it works again.",
                    e
                );
            } else {
                log_warning!(
                    "Error writing to the AOF file: {}. Writes are refused until it works again.",
                    e
                );
            }
            self.failing_since = Some(Instant::now());
        }
    }

    fn recovered(&mut self) {
        if self.failing_since.take().is_some()
            || self.server.aof.write_errno.load(Ordering::Relaxed) != 0
        {
            self.server.aof.write_errno.store(0, Ordering::SeqCst);
            log_warning!("AOF write error looks solved, Redis can write again.");
        }
    }
}
