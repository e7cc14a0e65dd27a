//! Background children: fork at a safe point, let the child work on a copy-on-write image of
//! the dataset, reap it later. BGSAVE uses it today (`ChildKind::Rdb`); the AOF rewrite will
//! use the same machinery (`ChildKind::AofRewrite`).
//!
//! # The safe point
//! The caller takes every shard's data lock, in shard order (`Server::lock_all`), and passes
//! the guards to `fork_child`. Holding all of them means no shard thread is in the middle of a
//! command: every table is consistent, and a multi-shard transaction is either wholly in the
//! image or wholly absent. One thread forks; the parent drops the guards right after `fork`
//! returns, so the shards are stopped only for the lock acquisition and the fork itself (the
//! fork time is `latest_fork_usec`, as in Redis).
//!
//! # What the child may do
//! The child is a copy of a multi-threaded process in which only the forking thread survives.
//! Any lock another thread held at the instant of the fork stays held forever in the child,
//! so the child takes no lock at all: it reads the shard data through the guards the forking
//! thread already held (their memory is the snapshot), it writes its log lines with plain
//! `write(2)` on a file it opens itself (never through the logger's mutex or stdout's lock),
//! and it allocates only from the forking thread's mimalloc heap, which is safe because that
//! heap belonged to the surviving thread. It closes every inherited descriptor except the
//! standard ones and its report pipe (so an orphan never holds the listening sockets), asks the
//! kernel to kill it when the parent dies (a snapshot finishing after a crash and restart
//! must not replace the file the new server loaded), and leaves with `libc::_exit`, never
//! running destructors or atexit handlers that belong to the parent.
//!
//! # Reports and reaping
//! The child writes fixed-size reports (keys processed, private dirty bytes = copy-on-write
//! cost) to a non-blocking pipe at most once a second and once at the end. The parent's
//! persistence cron (`poll`) drains the pipe and reaps the child with `waitpid(WNOHANG)`; the
//! caller then interprets the exit (status 0 = success). Only one child exists at a time; the
//! `Running` value is owned by the persistence state under its mutex.

use crate::shard::DataGuard;
use crate::storage::ShardData;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::time::Instant;

/// What a background child does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChildKind {
    /// BGSAVE: writes an RDB snapshot.
    Rdb,
    /// BGREWRITEAOF: writes a new AOF base.
    AofRewrite,
    /// A diskless full synchronization: writes an RDB into a pipe the parent sends to
    /// replicas (`replication::fullsync`).
    RdbSocket,
}

impl ChildKind {
    /// The name Redis's log lines use (`Fork CoW for RDB`).
    pub fn log_name(self) -> &'static str {
        match self {
            ChildKind::Rdb | ChildKind::RdbSocket => "RDB",
            ChildKind::AofRewrite => "AOF rewrite",
        }
    }
}

/// One progress report from a child.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Report {
    pub keys_processed: u64,
    pub cow_bytes: u64,
}

/// A report on the wire: two little-endian u64 (well under PIPE_BUF, so writes are atomic).
const REPORT_BYTES: usize = 16;
/// A child reports at most this often (Redis: once a second).
const REPORT_INTERVAL_MS: u64 = 1000;
/// The child looks at the clock once per this many keys.
const REPORT_CHECK_KEYS: u64 = 128;
/// The report pipe's descriptor in the child (moved there before the others are closed).
const CHILD_PIPE_FD: RawFd = 3;
/// Where the child finds the data descriptor `fork_child_with_fd` hands it (a diskless
/// replication child writes its RDB there).
pub const CHILD_DATA_FD: RawFd = 4;

/// The child's side of the report pipe.
pub struct Reporter {
    fd: RawFd,
    keys: u64,
    next_ms: u64,
    cow_peak: u64,
}

impl Reporter {
    /// Counts a key and, at most once a second, reports progress.
    pub fn key_done(&mut self) {
        self.keys += 1;
        if self.keys.is_multiple_of(REPORT_CHECK_KEYS) {
            let now = crate::util::now_ms();
            if now >= self.next_ms {
                self.next_ms = now + REPORT_INTERVAL_MS;
                self.send();
            }
        }
    }

    /// Sends a report now (the final one at the end of the child's work). The final
    /// copy-on-write figure (`rdb_last_cow_size`) is the peak seen: buffers the child frees
    /// at the end lower the current one.
    pub fn send(&mut self) {
        let cow = private_dirty_bytes();
        self.cow_peak = self.cow_peak.max(cow);
        let mut buf = [0u8; REPORT_BYTES];
        buf[..8].copy_from_slice(&self.keys.to_le_bytes());
        buf[8..].copy_from_slice(&self.cow_peak.to_le_bytes());
        // SAFETY: writing a local buffer to our own pipe; a full pipe just drops the report.
        unsafe {
            libc::write(self.fd, buf.as_ptr().cast(), buf.len());
        }
    }

    pub fn keys(&self) -> u64 {
        self.keys
    }
}

/// Sum of `Private_Dirty` over our mappings: the memory the child had to copy.
pub fn private_dirty_bytes() -> u64 {
    let Ok(text) = std::fs::read_to_string("/proc/self/smaps_rollup") else {
        return 0;
    };
    text.lines()
        .filter_map(|l| l.strip_prefix("Private_Dirty:"))
        .filter_map(|rest| {
            rest.trim()
                .trim_end_matches("kB")
                .trim()
                .parse::<u64>()
                .ok()
        })
        .sum::<u64>()
        * 1024
}

/// The running child, as the parent tracks it.
pub struct Running {
    pub pid: i32,
    pub kind: ChildKind,
    pub start_ms: u64,
    /// Keys in the dataset when the child started (`current_save_keys_total`).
    pub keys_total: u64,
    /// The latest report, and when it arrived.
    pub last: Report,
    pub last_at_ms: u64,
    pub cow_peak_bytes: u64,
    pipe: OwnedFd,
}

/// How a child ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exit {
    Code(i32),
    Signal(i32),
}

/// A reaped child.
pub struct Finished {
    pub pid: i32,
    pub kind: ChildKind,
    pub exit: Exit,
    pub elapsed_ms: u64,
    pub last: Report,
    pub cow_peak_bytes: u64,
}

/// Forks a child that runs `body` over the shards' data (as the guards, all held by the
/// caller, show it) and exits with the status `body` returns. Returns the child and the
/// fork's duration in microseconds. The caller drops the guards as soon as this returns.
pub fn fork_child<F>(
    guards: &[DataGuard<'_>],
    kind: ChildKind,
    keys_total: u64,
    body: F,
) -> std::io::Result<(Running, u64)>
where
    F: FnOnce(&[&ShardData], &mut Reporter) -> i32,
{
    fork_child_with_fd(guards, kind, keys_total, None, body)
}

/// `fork_child`, handing the child one more descriptor of the parent's, which it finds as
/// `CHILD_DATA_FD` (the parent keeps its own copy and closes it when it likes).
pub fn fork_child_with_fd<F>(
    guards: &[DataGuard<'_>],
    kind: ChildKind,
    keys_total: u64,
    data_fd: Option<RawFd>,
    body: F,
) -> std::io::Result<(Running, u64)>
where
    F: FnOnce(&[&ShardData], &mut Reporter) -> i32,
{
    let (read_fd, write_fd) = pipe_nonblocking()?;
    let parent = std::process::id() as i32;
    let start = Instant::now();
    // SAFETY: the child only runs `child_main`, which takes no lock and ends in `_exit` (see
    // the module essay); the parent continues normally.
    let pid = unsafe { libc::fork() };
    let fork_usec = start.elapsed().as_micros() as u64;
    if pid < 0 {
        let e = std::io::Error::last_os_error();
        drop(read_fd);
        drop(write_fd);
        return Err(e);
    }
    if pid == 0 {
        child_main(guards, parent, write_fd.as_raw_fd(), data_fd, body);
    }
    drop(write_fd);
    Ok((
        Running {
            pid,
            kind,
            start_ms: crate::util::now_ms(),
            keys_total,
            last: Report::default(),
            last_at_ms: 0,
            cow_peak_bytes: 0,
            pipe: read_fd,
        },
        fork_usec,
    ))
}

/// The child: detach from everything the parent owns, do the work, `_exit`.
fn child_main<F>(
    guards: &[DataGuard<'_>],
    parent: i32,
    pipe_fd: RawFd,
    data_fd: Option<RawFd>,
    body: F,
) -> !
where
    F: FnOnce(&[&ShardData], &mut Reporter) -> i32,
{
    // SAFETY: plain system calls on our own process; none takes a user-space lock.
    unsafe {
        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
        if libc::getppid() != parent {
            libc::_exit(1);
        }
        let mut none: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut none);
        libc::pthread_sigmask(libc::SIG_SETMASK, &none, std::ptr::null_mut());
        libc::signal(libc::SIGTERM, libc::SIG_DFL);
        libc::signal(libc::SIGINT, libc::SIG_IGN);
        libc::signal(libc::SIGUSR1, libc::SIG_DFL);
        // The data descriptor first moves out of the way of the report pipe's slot (it may
        // sit on 3), then both move to their fixed places (dup2 clears close-on-exec).
        let data = data_fd.map(|fd| libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, CHILD_DATA_FD + 1));
        if pipe_fd != CHILD_PIPE_FD {
            libc::dup2(pipe_fd, CHILD_PIPE_FD);
        }
        let last = match data {
            Some(fd) if fd >= 0 => {
                libc::dup2(fd, CHILD_DATA_FD);
                CHILD_DATA_FD
            }
            _ => CHILD_PIPE_FD,
        };
        close_from(last + 1);
    }
    let shards: Vec<&ShardData> = guards.iter().map(|g| &**g).collect();
    let mut reporter = Reporter {
        fd: CHILD_PIPE_FD,
        keys: 0,
        next_ms: crate::util::now_ms() + REPORT_INTERVAL_MS,
        cow_peak: 0,
    };
    let code = body(&shards, &mut reporter);
    reporter.send();
    // SAFETY: leaving without running the parent's destructors or atexit handlers.
    unsafe { libc::_exit(code) }
}

/// Closes every descriptor from `first` up.
///
/// # Safety
/// Only for a freshly forked child that owns nothing it still needs above `first`.
pub(crate) unsafe fn close_from(first: RawFd) {
    if libc::syscall(
        libc::SYS_close_range,
        first as libc::c_uint,
        libc::c_uint::MAX,
        0,
    ) == 0
    {
        return;
    }
    let mut lim: libc::rlimit = std::mem::zeroed();
    let max = if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) == 0 {
        lim.rlim_cur.min(1 << 20) as RawFd
    } else {
        1024
    };
    for fd in first..max {
        libc::close(fd);
    }
}

fn pipe_nonblocking() -> std::io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0 as RawFd; 2];
    // SAFETY: `fds` has room for the two descriptors pipe2 writes.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_NONBLOCK | libc::O_CLOEXEC) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: pipe2 just created these descriptors and nobody else owns them.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

impl Running {
    /// Drains the report pipe, keeping the latest report.
    pub fn read_reports(&mut self) {
        let mut buf = [0u8; REPORT_BYTES * 16];
        loop {
            // SAFETY: reading into a local buffer from our own non-blocking pipe.
            let n =
                unsafe { libc::read(self.pipe.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
            if n <= 0 {
                return;
            }
            let n = n as usize - n as usize % REPORT_BYTES;
            if let Some(last) = buf[..n].chunks_exact(REPORT_BYTES).last() {
                let mut k = [0u8; 8];
                let mut c = [0u8; 8];
                k.copy_from_slice(&last[..8]);
                c.copy_from_slice(&last[8..]);
                self.last = Report {
                    keys_processed: u64::from_le_bytes(k),
                    cow_bytes: u64::from_le_bytes(c),
                };
                self.last_at_ms = crate::util::now_ms();
                self.cow_peak_bytes = self.cow_peak_bytes.max(self.last.cow_bytes);
            }
        }
    }

    /// Reaps the child if it has exited (`block`: wait for it).
    pub fn try_reap(&mut self, block: bool) -> Option<Finished> {
        let flags = if block { 0 } else { libc::WNOHANG };
        let mut status = 0;
        // SAFETY: waiting for our own child.
        let r = unsafe { libc::waitpid(self.pid, &mut status, flags) };
        let exit = if r == self.pid {
            if libc::WIFSIGNALED(status) {
                Exit::Signal(libc::WTERMSIG(status))
            } else {
                Exit::Code(libc::WEXITSTATUS(status))
            }
        } else if r < 0 && std::io::Error::last_os_error().raw_os_error() == Some(libc::ECHILD) {
            // Somebody else reaped it: treat as a failure.
            Exit::Code(255)
        } else {
            return None;
        };
        self.read_reports();
        Some(Finished {
            pid: self.pid,
            kind: self.kind,
            exit,
            elapsed_ms: crate::util::now_ms().saturating_sub(self.start_ms),
            last: self.last,
            cow_peak_bytes: self.cow_peak_bytes,
        })
    }

    /// Asks the child to stop (SIGUSR1, as Redis: the exit is then not an error).
    pub fn kill(&self) {
        // SAFETY: signalling our own child.
        unsafe {
            libc::kill(self.pid, libc::SIGUSR1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_dirty_reads_something() {
        // Our own process has dirty private pages (the heap, the stack).
        assert!(private_dirty_bytes() > 0);
    }
}
