//! The AOF writer: one thread that owns the open incr file and turns the feed's AOF bytes into
//! durable bytes on disk.
//!
//! Shards never touch the file. They append encoded commands to the feed's AOF buffer (under
//! the feed's lock, while their shard locks are still held) and, once per loop turn, ring the
//! writer's bell if the stream grew. The writer takes everything the buffer holds in one swap,
//! writes it at the file's end with an explicit offset, and (for `appendfsync always`) fsyncs
//! it: through its own io_uring, one fdatasync in flight at a time on a fast disk and several
//! on a slow one (`Writer::run`), or with plain `pwrite`/`fdatasync` when io_uring is
//! unavailable. Whatever accumulated meanwhile goes in the next round, so under load one fsync
//! covers many clients' writes (group commit). Once a second the writer logs its group-commit
//! figures at `loglevel verbose` (`Stats`).
//!
//! Under `everysec` and `no`, the sleeping writer lends the file's end to the shards
//! (`Tail`, `fast_write`), which write their turn's bytes themselves.
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
/// Under `always`, another fdatasync starts beside those in flight only once the newest has
/// been running this long (a fast disk completes it first: one in flight at a time).
const SYNC_SPACING_US: u64 = 1000;

/// `SYNCS_IN_FLIGHT_MAX`, or the environment's `SHARDIS_AOF_SYNCS_MAX` (for A/B
/// benchmarks of the policy only).
fn syncs_max() -> usize {
    static V: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *V.get_or_init(|| {
        std::env::var("SHARDIS_AOF_SYNCS_MAX")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(SYNCS_IN_FLIGHT_MAX)
    })
}

/// `SYNC_SPACING_US`, or the environment's `SHARDIS_AOF_SYNC_SPACING_US` (0 gives the
/// former policy, a new fdatasync at every round while fewer than the maximum are in
/// flight; for A/B benchmarks only).
fn sync_spacing() -> Duration {
    static V: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    Duration::from_micros(*V.get_or_init(|| {
        std::env::var("SHARDIS_AOF_SYNC_SPACING_US")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(SYNC_SPACING_US)
    }))
}

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
    /// When the newest fdatasync in flight was submitted.
    newest_sync_at: Instant,
    stats: Stats,
}

/// Group-commit measurements, logged once a second at `loglevel verbose`.
struct Stats {
    since: Instant,
    fsyncs: u64,
    bytes: u64,
    lat_us: u64,
    lat_max_us: u64,
    /// Bytes taken from the feed: (stream end after them, when).
    takes: std::collections::VecDeque<(u64, Instant)>,
    take_wait_us: u64,
    take_count: u64,
    /// fdatasyncs submitted: (offset covered, when).
    submitted: std::collections::VecDeque<(u64, Instant)>,
    inflight_sum: u64,
    rounds: u64,
    durable_at: u64,
}

impl Stats {
    fn new(start: u64) -> Stats {
        Stats {
            since: Instant::now(),
            fsyncs: 0,
            bytes: 0,
            lat_us: 0,
            lat_max_us: 0,
            takes: Default::default(),
            take_wait_us: 0,
            take_count: 0,
            submitted: Default::default(),
            inflight_sum: 0,
            rounds: 0,
            durable_at: start,
        }
    }

    fn took(&mut self, end: u64) {
        if self.takes.len() < 4096 {
            self.takes.push_back((end, Instant::now()));
        }
    }

    fn submitted(&mut self, to: u64) {
        if self.submitted.len() < 64 {
            self.submitted.push_back((to, Instant::now()));
        }
    }

    /// An fsync (or a synchronous write+fsync started at `start`) made `to` durable.
    fn synced(&mut self, to: u64, start: Option<Instant>) {
        let now = Instant::now();
        let mut start = start;
        while let Some(&(o, t)) = self.submitted.front() {
            if o > to {
                break;
            }
            if o == to {
                start = Some(t);
            }
            self.submitted.pop_front();
        }
        self.fsyncs += 1;
        if let Some(t) = start {
            let us = now.duration_since(t).as_micros() as u64;
            self.lat_us += us;
            self.lat_max_us = self.lat_max_us.max(us);
        }
        if to > self.durable_at {
            self.bytes += to - self.durable_at;
            self.durable_at = to;
        }
        while let Some(&(o, t)) = self.takes.front() {
            if o > to {
                break;
            }
            self.take_wait_us += now.duration_since(t).as_micros() as u64;
            self.take_count += 1;
            self.takes.pop_front();
        }
        self.report();
    }

    fn report(&mut self) {
        let el = self.since.elapsed();
        if el < Duration::from_secs(1) {
            return;
        }
        let f = self.fsyncs.max(1);
        crate::log_verbose!(
            "AOF fsync stats: {:.0} fsyncs/s, {} B/fsync, fsync {} us avg {} us max, take->durable {} us avg over {} takes, {:.2} in flight/round",
            self.fsyncs as f64 / el.as_secs_f64(),
            self.bytes / f,
            self.lat_us / f,
            self.lat_max_us,
            self.take_wait_us / self.take_count.max(1),
            self.take_count,
            self.inflight_sum as f64 / self.rounds.max(1) as f64,
        );
        self.since = Instant::now();
        self.fsyncs = 0;
        self.bytes = 0;
        self.lat_us = 0;
        self.lat_max_us = 0;
        self.take_wait_us = 0;
        self.take_count = 0;
        self.inflight_sum = 0;
        self.rounds = 0;
    }
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
                newest_sync_at: Instant::now(),
                stats: Stats::new(start),
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
    /// Under `always` with io_uring the fsyncs run asynchronously on the writer's ring while
    /// it keeps taking and writing. One fdatasync is in flight at a time as long as the disk
    /// is fast: when it completes, the writer publishes what it covered, then takes
    /// everything the shards appended meanwhile, writes it and starts the next, so each
    /// fsync covers a whole fsync period of arrivals (group commit). While one is in flight
    /// the writer does not listen to the bell (the shards' bytes wait in the feed; no
    /// wake-up per shard turn, no fsync started for the first few clients of a wave that the
    /// rest would have to wait behind). Only when the newest fdatasync has been running
    /// `SYNC_SPACING_US` (a slow or busy disk) may another start beside it, up to
    /// `SYNCS_IN_FLIGHT_MAX`: a loaded disk's queue serves concurrent flushes together, so a
    /// client's write need not wait for a slow flush to end before its own starts. Each
    /// completion makes durable what was written before it was submitted. The writer sleeps
    /// in the ring, on fsync completions (and the bell's eventfd when it listens).
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
            if !fresh.is_empty() {
                self.stats
                    .took(self.pending_at + (self.pending.len() + fresh.len()) as u64);
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
        self.stats.inflight_sum += self.syncs_in_flight as u64;
        self.stats.rounds += 1;
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
        if self.pending_at <= self.sync_submitted_to || !self.may_submit(Instant::now()) {
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
            self.newest_sync_at = Instant::now();
            self.stats.submitted(to);
        }
    }

    /// Whether another fdatasync may start now: always when none is in flight; beside
    /// others only once the newest has been running `sync_spacing()` (see `run`).
    fn may_submit(&self, now: Instant) -> bool {
        self.syncs_in_flight == 0
            || (self.syncs_in_flight < syncs_max() && now >= self.newest_sync_at + sync_spacing())
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
            self.stats.synced(to, None);
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
        let now = Instant::now();
        let unsynced = self.pending_at > self.sync_submitted_to;
        // New bytes matter only if an fdatasync could start for them now; otherwise they
        // wait in the feed (no wake-up per shard turn) and the next completion takes them.
        let listen = self.may_submit(now) && self.sync_retry_at.is_none();
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
        aof.bell.set_sleeping(listen);
        let work = aof.ctl_pending.load(Ordering::SeqCst)
            || (listen && (server.feed.aof_end() != self.pending_at || unsynced));
        if work {
            let _ = ring.submit();
        } else {
            let mut wait = Duration::from_millis(IDLE_WAKE_MS);
            if let Some(at) = self.sync_retry_at {
                wait = wait.min(at.saturating_duration_since(now));
            }
            if !listen
                && self.sync_retry_at.is_none()
                && self.syncs_in_flight > 0
                && self.syncs_in_flight < syncs_max()
            {
                wait =
                    wait.min((self.newest_sync_at + sync_spacing()).saturating_duration_since(now));
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
        let started = Instant::now();
        match self.write_pending(sync) {
            Ok(n) => {
                if sync {
                    self.stats.synced(self.pending_at, Some(started));
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
