//! The append-only file, in Redis 7.0's multi-part layout.
//!
//! # Files
//! `dir/appenddirname/` holds a base file (`<appendfilename>.<seq>.base.rdb`, or `.base.aof`
//! with `aof-use-rdb-preamble no`), incr files (`<appendfilename>.<seq>.incr.aof`, RESP
//! commands) and the manifest (`<appendfilename>.manifest`, see `manifest`) that names them.
//! The directory is interchangeable with real Redis 7.0's: it loads ours, we load its.
//!
//! # Writing (`writer`)
//! The propagation layer (`replication::feed`) encodes every write into the feed's AOF buffer,
//! with its own SELECT state and MULTI/EXEC around multi-op units. One writer thread owns the
//! incr file: it swaps the buffer out, writes it at the file's end and fsyncs per
//! `appendfsync`, through its own io_uring or plain system calls.
//! Shards never block on the disk.
//!
//! `appendfsync always` is group commit. The engine records, per client, the AOF stream offset
//! when its commands of the turn ended (`hold_point`); `flush_sends` keeps the client's
//! replies until the writer's `durable` offset reaches it, and the writer pokes the waiting
//! shards after each fsync. With io_uring the writer starts the next fdatasync when the
//! previous one completes, covering everything written by then, and runs several at once only
//! on a slow disk (see `writer::Writer::run`). The loop keeps serving other connections meanwhile. Replies of
//! hops and of woken blocked clients are held the same way (conservatively: the stream's end
//! when they arrive). Every reply is held while it could depend on a non-durable write, so
//! no acknowledged write is lost to a crash.
//!
//! `everysec` writes as data arrives and fdatasyncs at most once a second in the writer; `no`
//! only writes. Under both, while the writer sleeps, each shard writes its own turn's bytes at
//! the end of its loop turn, as Redis writes its AOF buffer before replying (`writer::Tail`). `no-appendfsync-on-rewrite` skips fsyncs while a rewrite child runs.
//!
//! # Rewrites (`rewrite`)
//! BGREWRITEAOF, the auto-rewrite rule and `CONFIG SET appendonly yes` work as Redis 7.0's:
//! with every shard held, a new incr file is created and named in the manifest (atomically
//! persisted), the writer is told to switch to it exactly at the current stream position, and
//! a child is forked (`persistence::child`) that writes the new base from the copy-on-write
//! image. When the child succeeds, the manifest swaps to the new base plus the incr files
//! opened since, and the old files are deleted; when it fails, its files go. Turning the AOF
//! on at run time writes to a temporary incr file that is named in the manifest only when the
//! first base exists (Redis's `AOF_WAIT_REWRITE`).
//!
//! # Loading (`load`)
//! At start-up with `appendonly yes`: the manifest, then the base (RDB through
//! `persistence::load`, or commands), then each incr file, replaying every command through
//! the command table on a keyspace over all shards (SELECT tracked, MULTI…EXEC applied as a
//! unit, `#` annotations skipped). A truncated last file is cut per `aof-load-truncated`; an
//! incomplete MULTI at the end is reverted; anything else is an error naming the file and
//! offset, and the server refuses to start without touching any file. With no AOF yet, the
//! dataset starts empty and an empty base is created, as Redis 7.0 does.
//!
//! # Failure
//! A failed write or fsync sets `write_errno`: write commands get Redis's
//! `MISCONF Errors writing to the AOF file: <reason>` until the writer succeeds again, and
//! held replies stay held. Nothing is acknowledged that is not on disk.

pub mod check;
pub mod load;
pub mod manifest;
pub mod rewrite;
pub mod writer;

use crate::config::AppendFsync;
use crate::server::Server;
use parking_lot::{Condvar, Mutex};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU64, AtomicU8, Ordering};
use std::time::Duration;

pub use manifest::Manifest;

/// A failure that was already logged the way Redis logs it; the caller only stops.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Logged;

/// Whether the AOF is on (Redis's `aof_state`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum AofState {
    #[default]
    Off,
    On,
    /// Turned on at run time: writes go to a temporary incr file until the first rewrite.
    WaitRewrite,
}

/// The writer's wake-up: shards ring it when the stream grew. The writer sleeps either on the
/// condvar (plain system calls) or in its io_uring, watching an eventfd (`eventfd`), so that
/// it also wakes for fsync completions.
pub struct Bell {
    rung: Mutex<bool>,
    cv: Condvar,
    sleeping: AtomicBool,
    /// The eventfd rung alongside the condvar; -1 until the writer asks for one.
    efd: AtomicI32,
}

impl Default for Bell {
    fn default() -> Self {
        Bell {
            rung: Mutex::new(false),
            cv: Condvar::new(),
            sleeping: AtomicBool::new(false),
            efd: AtomicI32::new(-1),
        }
    }
}

impl Bell {
    pub fn ring(&self) {
        if self.sleeping.load(Ordering::SeqCst) {
            let fd = self.efd.load(Ordering::Acquire);
            if fd >= 0 {
                let one: u64 = 1;
                // SAFETY: an 8-byte write from a local to our own eventfd, which is never
                // closed once created. A full counter (EAGAIN) already means "rung".
                unsafe { libc::write(fd, (&one as *const u64).cast(), 8) };
            }
            let mut g = self.rung.lock();
            *g = true;
            self.cv.notify_one();
        }
    }

    /// The bell's eventfd (non-blocking), created at the first call; None if the system
    /// refuses one.
    fn eventfd(&self) -> Option<i32> {
        let fd = self.efd.load(Ordering::Acquire);
        if fd >= 0 {
            return Some(fd);
        }
        // SAFETY: eventfd(2) with constant flags; the fd is kept for the process's life.
        let new = unsafe { libc::eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC) };
        if new < 0 {
            return None;
        }
        match self
            .efd
            .compare_exchange(-1, new, Ordering::AcqRel, Ordering::Acquire)
        {
            Ok(_) => Some(new),
            Err(existing) => {
                // SAFETY: `new` is ours and unpublished.
                unsafe { libc::close(new) };
                Some(existing)
            }
        }
    }

    /// Empties the eventfd's counter after it was seen readable.
    fn drain_eventfd(&self) {
        let fd = self.efd.load(Ordering::Acquire);
        if fd >= 0 {
            let mut v: u64 = 0;
            // SAFETY: an 8-byte read into a local from our non-blocking eventfd.
            unsafe { libc::read(fd, (&mut v as *mut u64).cast(), 8) };
        }
    }

    /// Marks the writer asleep (before it re-checks for work and sleeps elsewhere).
    fn set_sleeping(&self, on: bool) {
        self.sleeping.store(on, Ordering::SeqCst);
    }

    /// Sleeps up to `timeout` unless rung or `work()` says there is something to do.
    fn wait(&self, timeout: Duration, work: impl Fn() -> bool) {
        let mut g = self.rung.lock();
        if *g {
            *g = false;
            return;
        }
        self.sleeping.store(true, Ordering::SeqCst);
        if !work() {
            self.cv.wait_for(&mut g, timeout);
        }
        *g = false;
        self.sleeping.store(false, Ordering::SeqCst);
    }
}

/// Bookkeeping behind `Aof::state`.
#[derive(Default)]
pub struct State {
    pub aof_state: AofState,
    pub dir: PathBuf,
    pub filename: String,
    pub manifest: Manifest,
    pub writer: Option<std::thread::JoinHandle<()>>,
    /// The running rewrite: the new base's name, the temp incr (WaitRewrite) if any.
    pub rewrite: Option<rewrite::Rewriting>,
    pub rewrite_scheduled: bool,
    pub last_rewrite_time_secs: i64,
    pub last_bgrewrite_ok: bool,
    pub rewrites: u64,
    pub rewrites_consecutive_failures: u64,
    pub last_cow_bytes: u64,
    /// Size of the AOF (base + incr files) after the last rewrite or load: the reference of
    /// `auto-aof-rewrite-percentage`.
    pub rewrite_base_size: u64,
    /// Size of the base and the incr files before the current one (aof_current_size is this
    /// plus `incr_size`).
    pub other_files_size: u64,
    /// The rewrite limiter after repeated failures (`aofRewriteLimited`): the current delay
    /// and the unix second before which automatic rewrites wait (0: not waiting).
    pub limit_delay_minutes: u64,
    pub limit_until_secs: u64,
}

/// The AOF state shared by all threads (a field of `Server`).
pub struct Aof {
    pub state: Mutex<State>,
    pub bell: Bell,
    /// Control messages for the writer, taken with the feed's bytes under this lock.
    pub take_lock: Mutex<Vec<writer::Ctl>>,
    pub ctl_pending: AtomicBool,
    /// Every AOF stream byte before this offset is durable per the fsync policy.
    pub durable: AtomicU64,
    /// Shards (bit i) with replies held for `durable`.
    pub waiting_shards: AtomicU64,
    /// errno of the failing write or fsync; 0 when the last one worked.
    pub write_errno: AtomicI32,
    pub writer_running: AtomicBool,
    /// A rewrite child runs (for `no-appendfsync-on-rewrite`).
    pub child_running: AtomicBool,
    pub no_fsync_on_rewrite: AtomicBool,
    policy: AtomicU8,
    /// Collecting (state On or WaitRewrite).
    on: AtomicBool,
    /// Bytes in the current incr file.
    pub incr_size: AtomicU64,
    pub written_total: AtomicU64,
    /// DEBUG AOF-FLUSH-SLEEP: microseconds the writer sleeps before each write (tests).
    pub flush_sleep_us: AtomicU64,
    /// The file's end while the writer lends it to the shards (`writer::Tail`).
    pub tail: Mutex<Option<writer::Tail>>,
}

impl Default for Aof {
    fn default() -> Self {
        Aof {
            state: Mutex::new(State {
                last_rewrite_time_secs: -1,
                last_bgrewrite_ok: true,
                ..Default::default()
            }),
            bell: Bell::default(),
            take_lock: Mutex::new(Vec::new()),
            ctl_pending: AtomicBool::new(false),
            durable: AtomicU64::new(0),
            waiting_shards: AtomicU64::new(0),
            write_errno: AtomicI32::new(0),
            writer_running: AtomicBool::new(false),
            child_running: AtomicBool::new(false),
            no_fsync_on_rewrite: AtomicBool::new(false),
            policy: AtomicU8::new(1),
            on: AtomicBool::new(false),
            incr_size: AtomicU64::new(0),
            written_total: AtomicU64::new(0),
            flush_sleep_us: AtomicU64::new(0),
            tail: Mutex::new(None),
        }
    }
}

fn policy_code(p: AppendFsync) -> u8 {
    match p {
        AppendFsync::Always => 0,
        AppendFsync::Everysec => 1,
        AppendFsync::No => 2,
    }
}

impl Aof {
    pub fn policy(&self) -> AppendFsync {
        match self.policy.load(Ordering::Relaxed) {
            0 => AppendFsync::Always,
            2 => AppendFsync::No,
            _ => AppendFsync::Everysec,
        }
    }

    /// Mirrors the config's fsync settings into the atomics the writer and shards read.
    pub fn apply_config(&self, cfg: &crate::config::Config) {
        self.policy
            .store(policy_code(cfg.appendfsync), Ordering::Relaxed);
        self.no_fsync_on_rewrite
            .store(cfg.no_appendfsync_on_rewrite, Ordering::Relaxed);
        crate::replication::feed::set_aof_timestamps(cfg.aof_timestamp_enabled);
    }

    pub fn is_on(&self) -> bool {
        self.on.load(Ordering::Relaxed)
    }

    fn set_on(&self, on: bool) {
        self.on.store(on, Ordering::SeqCst);
    }

    /// Publishes a new durable offset and pokes the shards holding replies for it.
    fn publish_durable(&self, server: &Server, off: u64) {
        self.durable.store(off, Ordering::SeqCst);
        let waiting = self.waiting_shards.swap(0, Ordering::SeqCst);
        if waiting != 0 {
            for (i, h) in server.shards.iter().enumerate() {
                if waiting & (1u64 << (i % 64)) != 0 {
                    h.mailbox.poke();
                }
            }
        }
    }

    pub fn durable(&self) -> u64 {
        self.durable.load(Ordering::SeqCst)
    }

    /// The MISCONF error for writes while the AOF cannot be written (`DISK_ERROR_TYPE_AOF`).
    pub fn misconf(&self) -> Option<String> {
        let e = self.write_errno.load(Ordering::Relaxed);
        if e == 0 || !self.is_on() {
            return None;
        }
        Some(format!(
            "MISCONF Errors writing to the AOF file: {}",
            strerror(e)
        ))
    }
}

/// The AOF stream offset a client's replies must wait for (0 = nothing to wait for). One
/// relaxed load when the AOF is off. Under `always` the writer publishes offsets once
/// fsynced; under `everysec` and `no` once written, so, as in Redis (which writes the AOF
/// before sending replies), a process crash never loses an acknowledged write.
#[inline]
pub fn hold_point(server: &Server) -> u64 {
    if !server.aof.is_on() {
        return 0;
    }
    server.feed.aof_end()
}

/// Whether replies held until `off` may leave.
#[inline]
pub fn released(server: &Server, off: u64) -> bool {
    off == 0 || server.aof.durable() >= off
}

/// A shard that holds replies announces it; the writer pokes it after the next advance.
/// Returns whether the durable offset moved past `off` meanwhile (re-check at once).
pub fn wait_for(server: &Server, shard: usize, off: u64) -> bool {
    server
        .aof
        .waiting_shards
        .fetch_or(1u64 << (shard % 64), Ordering::SeqCst);
    server.aof.durable() >= off
}

/// Once per shard loop turn: rings the writer if the stream grew since `last`.
#[inline]
pub fn kick(server: &Server, last: &mut u64) {
    if !server.aof.is_on() {
        return;
    }
    let end = server.feed.aof_end();
    if end != *last {
        *last = end;
        if !writer::fast_write(server) {
            server.aof.bell.ring();
        }
    }
}

/// `strerror(3)` text, without Rust's " (os error N)" suffix.
pub fn strerror(code: i32) -> String {
    let s = std::io::Error::from_raw_os_error(code).to_string();
    match s.find(" (os error") {
        Some(i) => s[..i].to_string(),
        None => s,
    }
}

/// The `aof_*` lines of INFO persistence (from `aof_enabled` to `module_fork_last_cow_size`,
/// plus the lines Redis adds when the AOF is on).
pub fn info_fields(server: &Server) -> String {
    let aof = &server.aof;
    let st = aof.state.lock();
    let now_secs = crate::util::now_ms() / 1000;
    let (in_progress, current) = match &st.rewrite {
        Some(r) => (1, now_secs.saturating_sub(r.start_ms / 1000) as i64),
        None => (0, -1),
    };
    let write_ok = aof.write_errno.load(Ordering::Relaxed) == 0;
    let mut s = format!(
        "aof_enabled:{}\r\naof_rewrite_in_progress:{in_progress}\r\naof_rewrite_scheduled:{}\r\n\
         aof_last_rewrite_time_sec:{}\r\naof_current_rewrite_time_sec:{current}\r\n\
         aof_last_bgrewrite_status:{}\r\naof_rewrites:{}\r\naof_rewrites_consecutive_failures:{}\r\n\
         aof_last_write_status:{}\r\naof_last_cow_size:{}\r\nmodule_fork_in_progress:0\r\n\
         module_fork_last_cow_size:0\r\n",
        (st.aof_state != AofState::Off) as u8,
        st.rewrite_scheduled as u8,
        st.last_rewrite_time_secs,
        if st.last_bgrewrite_ok { "ok" } else { "err" },
        st.rewrites,
        st.rewrites_consecutive_failures,
        if write_ok { "ok" } else { "err" },
        st.last_cow_bytes,
    );
    if st.aof_state != AofState::Off {
        let current_size = st.other_files_size + aof.incr_size.load(Ordering::Relaxed);
        let buffered = server.feed.aof_end().saturating_sub(aof.durable());
        s.push_str(&format!(
            "aof_current_size:{current_size}\r\naof_base_size:{}\r\naof_pending_rewrite:{}\r\n\
             aof_buffer_length:{buffered}\r\naof_pending_bio_fsync:0\r\naof_delayed_fsync:0\r\n",
            st.rewrite_base_size, st.rewrite_scheduled as u8,
        ));
    }
    s
}
