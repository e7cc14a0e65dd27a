//! The AOF writer: one thread that owns the open incr file and turns the feed's AOF bytes into
//! durable bytes on disk.
//!
//! Shards never touch the file. They append encoded commands to the feed's AOF buffer (under
//! the feed's lock, while their shard locks are still held) and, once per loop turn, ring the
//! writer's bell if the stream grew. The writer takes everything the buffer holds in one swap,
//! writes it at the file's end with an explicit offset, and (for `appendfsync always`) fsyncs
//! it: through its own io_uring as one linked write→fdatasync pair, or with plain
//! `pwrite`/`fdatasync` when io_uring is unavailable. Whatever accumulated meanwhile goes in
//! the next round, so under load one fsync covers many clients' writes (group commit).
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
const RING_ENTRIES: u32 = 8;

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
    fn write_at(&mut self, f: &File, off: u64, data: &[u8], sync: bool) -> std::io::Result<()> {
        match self {
            Disk::Uring(ring) => uring_write(ring, f, off, data, sync),
            Disk::Plain => plain_write(f, off, data, sync),
        }
    }

    fn sync(&mut self, f: &File) -> std::io::Result<()> {
        match self {
            Disk::Uring(ring) => uring_write(ring, f, 0, &[], true),
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
) -> std::io::Result<()> {
    use io_uring::{opcode, squeue, types};
    const UD_WRITE: u64 = 1;
    const UD_SYNC: u64 = 2;
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
            seen += 1;
            match cqe.user_data() {
                UD_WRITE => wres = Some(cqe.result()),
                _ => sres = Some(cqe.result()),
            }
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
    file: File,
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
                file,
                file_off,
                pending_at: start,
                pending: Vec::new(),
                spare: Vec::new(),
                unsynced: false,
                last_fsync: Instant::now(),
                failing_since: None,
            };
            w.run();
        })
}

impl Writer {
    fn aof(&self) -> &Aof {
        &self.server.aof
    }

    fn run(&mut self) {
        loop {
            let (ctls, fresh) = self.take();
            for ctl in ctls {
                match ctl {
                    Ctl::Switch { tail, file } => {
                        self.pending.extend_from_slice(&tail);
                        self.flush_until_ok();
                        let size = file.metadata().map(|m| m.len()).unwrap_or(0);
                        self.file = file;
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
                let aof = &self.server.aof;
                let feed = &self.server.feed;
                let taken = self.pending_at;
                aof.bell.wait(wait, || {
                    feed.aof_end() != taken || aof.ctl_pending.load(Ordering::SeqCst)
                });
            }
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
        let n = self.pending.len();
        let sleep_us = aof.flush_sleep_us.load(Ordering::Relaxed);
        if sleep_us > 0 {
            std::thread::sleep(Duration::from_micros(sleep_us));
        }
        let res = self
            .disk
            .write_at(&self.file, self.file_off, &self.pending, sync);
        match res {
            Ok(()) => {
                self.file_off += n as u64;
                self.pending_at += n as u64;
                self.pending.clear();
                if sync {
                    self.unsynced = false;
                    self.last_fsync = Instant::now();
                } else if n > 0 {
                    self.unsynced = true;
                }
                aof.incr_size.fetch_add(n as u64, Ordering::Relaxed);
                aof.written_total.fetch_add(n as u64, Ordering::Relaxed);
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
        self.last_fsync = Instant::now();
        match self.disk.sync(&self.file) {
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
