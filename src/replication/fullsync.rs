//! Full synchronization on the master side: the RDB a replica starts from, produced by a
//! forked child as Redis produces it, never under the shard locks for longer than the fork.
//!
//! ## The two targets
//! - **Disk** (`repl-diskless-sync no`, or a replica that did not announce `capa eof`): a
//!   BGSAVE (`snapshot::fork_save`, an ordinary `ChildKind::Rdb` child that also updates
//!   LASTSAVE) writes `dbfilename`; when it succeeds, one sender thread per replica streams
//!   the file as `$<len>\r\n<bytes>`. A replica arriving while such a save runs attaches to
//!   it: it gets the same +FULLRESYNC offset and a copy of the stream an attached replica has
//!   accumulated since the fork.
//! - **Socket** (`repl-diskless-sync yes` and every waiting replica announced `capa eof`):
//!   after `repl-diskless-sync-delay` seconds (or once `repl-diskless-sync-max-replicas`
//!   wait) a `ChildKind::RdbSocket` child writes `$EOF:<mark>\r\n<rdb><mark>` into a pipe; a
//!   reader thread in the parent copies each chunk to every replica of that child. A replica
//!   arriving meanwhile waits for the next fork.
//!
//! ## The fork point is the offset
//! Every replica of a child is registered with the feed (`ReplState::replicas`) while every
//! shard lock is held, right before the fork, and the +FULLRESYNC offset is the feed's offset
//! at that instant: nothing can be fed between the two, so the stream the replica
//! accumulates meanwhile (`ReplicaSink::pending`) starts exactly after the snapshot. The sink
//! sends its synchronization bytes (`ReplicaSink::rdb`) first and the stream after them
//! (`SyncPhase`); after an EOF-framed transfer the stream waits for the replica's first ACK,
//! as Redis's does, so the replica never reads stream bytes behind the mark.
//!
//! ## Who runs what
//! `request` (PSYNC/SYNC on the replica's shard) queues the replica and, for a disk target,
//! forks at once; `cron` (shard 0, `hz` times a second) starts forks that were waiting (the
//! diskless delay, another child running) and sends the keep-alive newlines Redis sends;
//! `on_child_done` (the persistence cron, after it reaped the child) starts the file senders
//! or drops the replicas of a failed child. Lock order: shard locks, the persistence state,
//! this module's state, the feed.

use super::feed::{ReplicaSink, SyncPhase};
use crate::persistence::child::{self, ChildKind, Exit, CHILD_DATA_FD};
use crate::persistence::snapshot::{self, SaveJob};
use crate::server::Server;
use crate::shard::ShardHandle;
use parking_lot::Mutex;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::Ordering;
use std::sync::Arc;

/// A sender stops feeding a replica whose queued synchronization bytes reach this, until its
/// shard moved them to the socket.
const QUEUE_BYTES_MAX: usize = 4 << 20;
/// Bytes read from the file or the pipe at once.
const CHUNK_BYTES: usize = 256 * 1024;
/// How long a blocked sender sleeps before looking again.
const BACKOFF_MS: u64 = 1;
/// The EOF mark's length (`RDB_EOF_MARK_SIZE`).
const EOF_MARK_BYTES: usize = 40;
/// Keep-alive newlines go to waiting replicas this often.
const NEWLINE_PERIOD_MS: u64 = 1000;

/// A replica waiting for a fork (`SLAVE_STATE_WAIT_BGSAVE_START`).
struct Waiting {
    sink: Arc<ReplicaSink>,
    /// It announced `capa eof`.
    eof: bool,
    /// It asked with PSYNC (gets the +FULLRESYNC line; SYNC does not).
    psync: bool,
    since_ms: u64,
}

/// The child producing the RDB for the replicas in `sinks`.
struct SyncChild {
    pid: i32,
    socket: bool,
    sinks: Vec<Arc<ReplicaSink>>,
    replid: String,
    offset: u64,
    /// The disk target's file, as an absolute path.
    path: std::path::PathBuf,
}

#[derive(Default)]
struct SyncState {
    waiting: Vec<Waiting>,
    child: Option<SyncChild>,
    last_newline_ms: u64,
}

static SYNC: Mutex<SyncState> = Mutex::new(SyncState {
    waiting: Vec::new(),
    child: None,
    last_newline_ms: 0,
});

/// The replication identity a snapshot records (`rdbPopulateSaveInfo`): a master with a
/// backlog, or a replica, saves its replid and offset so that after a restart its replicas
/// (or its master) can continue partially.
pub fn save_info(server: &Server) -> Vec<(&'static str, String)> {
    server.feed.with(|st| {
        if st.backlog.is_none() && !st.upstream {
            return Vec::new();
        }
        let db = if st.upstream { st.stream_db } else { 0 };
        vec![
            ("repl-stream-db", db.to_string()),
            ("repl-id", st.replid.clone()),
            ("repl-offset", st.offset.to_string()),
        ]
    })
}

/// A replica asked for a full synchronization (PSYNC that cannot continue, or SYNC). Its
/// sink is already the connection's; the synchronization bytes will come through it.
pub fn request(server: &Server, sink: Arc<ReplicaSink>, eof: bool, psync: bool) {
    let cfg = server.config.load();
    let diskless = cfg.repl_diskless_sync && eof;
    {
        let mut ss = SYNC.lock();
        if !diskless && attach(server, &mut ss, &sink, psync) {
            crate::log_notice!("Waiting for end of BGSAVE for SYNC");
            return;
        }
        sink.set_phase(SyncPhase::WaitBgsave);
        ss.waiting.push(Waiting {
            sink,
            eof,
            psync,
            since_ms: crate::util::now_ms(),
        });
        if ss.child.is_some() {
            if diskless {
                crate::log_notice!(
                    "Current BGSAVE has socket target. Waiting for next BGSAVE for SYNC"
                );
            } else {
                crate::log_notice!("Can't attach the replica to the current BGSAVE. Waiting for next BGSAVE for SYNC");
            }
        } else if diskless {
            crate::log_notice!("Delay next BGSAVE for diskless SYNC");
        }
    }
    if !diskless {
        start_pending(server);
    }
}

/// Attaches a replica to the disk save running for other replicas: same offset, and the
/// stream they accumulated since the fork.
fn attach(server: &Server, ss: &mut SyncState, sink: &Arc<ReplicaSink>, psync: bool) -> bool {
    let Some(ch) = ss.child.as_mut().filter(|c| !c.socket) else {
        return false;
    };
    let attached = server.feed.with(|st| {
        // The registered sinks still hold everything fed since the fork (none is online).
        let Some(src) = st.replicas.iter().find(|r| {
            !r.closed.load(Ordering::Relaxed) && ch.sinks.iter().any(|s| Arc::ptr_eq(s, r))
        }) else {
            return false;
        };
        let from = src.pos.load(Ordering::Acquire);
        st.attach_replica(sink.clone(), from);
        true
    });
    if !attached {
        return false;
    }
    sink.set_phase(SyncPhase::SendBulk);
    if psync {
        let line = format!("+FULLRESYNC {} {}\r\n", ch.replid, ch.offset);
        sink.rdb.lock().data.extend_from_slice(line.as_bytes());
    }
    ch.sinks.push(sink.clone());
    true
}

/// Shard 0's cron: starts a fork replicas wait for, and keeps waiting links alive.
pub fn cron(server: &Server) {
    let now = crate::util::now_ms();
    let cfg = server.config.load();
    REPL_TIMEOUT_MS.store(
        cfg.repl_timeout_secs.max(1) as u64 * 1000,
        Ordering::Relaxed,
    );
    if cfg.save.is_empty() {
        kill_useless_child(server);
    }
    {
        let mut ss = SYNC.lock();
        ss.waiting
            .retain(|w| !w.sink.closed.load(Ordering::Relaxed));
        if now.saturating_sub(ss.last_newline_ms) >= NEWLINE_PERIOD_MS {
            ss.last_newline_ms = now;
            let disk_child = ss.child.as_ref().filter(|c| !c.socket);
            let waiting = ss.waiting.iter().map(|w| &w.sink);
            for s in waiting.chain(disk_child.iter().flat_map(|c| c.sinks.iter())) {
                newline(server, s);
            }
        }
        if ss.waiting.is_empty() || ss.child.is_some() {
            return;
        }
    }
    start_pending(server);
}

/// `repl-timeout` for the diskless reader thread (refreshed by the cron).
static REPL_TIMEOUT_MS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(60_000);

/// A disk save started for replicas that all went away is killed when no save rule wants
/// the file either (Redis's `freeClient` with `anyOtherSlaveWaitRdb`), so the next full sync
/// or BGSAVE can fork at once.
fn kill_useless_child(server: &Server) {
    let pst = server.persistence.state();
    let ss = SYNC.lock();
    let Some(ch) = ss.child.as_ref().filter(|c| !c.socket) else {
        return;
    };
    if !ch.sinks.iter().all(|s| s.closed.load(Ordering::Relaxed)) {
        return;
    }
    if let Some(c) = pst.child.as_ref().filter(|c| c.pid == ch.pid) {
        c.kill();
    }
}

/// A keep-alive newline for a replica whose RDB has not started yet.
fn newline(server: &Server, sink: &ReplicaSink) {
    let mut r = sink.rdb.lock();
    if r.started || r.done {
        return;
    }
    r.data.push(b'\n');
    drop(r);
    poke(&server.shards, sink);
}

/// Whether the waiting replicas should get their fork now, and with which target
/// (`shouldStartChildReplication`): a disk target at once, a socket target after the delay
/// or when enough replicas wait.
fn due(ss: &SyncState, cfg: &crate::config::Config, now: u64) -> Option<bool> {
    if ss.waiting.is_empty() || ss.child.is_some() {
        return None;
    }
    let socket = cfg.repl_diskless_sync && ss.waiting.iter().all(|w| w.eof);
    if !socket {
        return Some(false);
    }
    let first = ss.waiting.iter().map(|w| w.since_ms).min().unwrap_or(now);
    let idle_ms = now.saturating_sub(first);
    let max = cfg.repl_diskless_sync_max_replicas as usize;
    if idle_ms >= cfg.repl_diskless_sync_delay_secs as u64 * 1000
        || (max > 0 && ss.waiting.len() >= max)
    {
        Some(true)
    } else {
        None
    }
}

/// Forks for the waiting replicas if it is time and no other child runs
/// (`startBgsaveForReplication`).
pub fn start_pending(server: &Server) {
    let cfg = server.config.load();
    if due(&SYNC.lock(), &cfg, crate::util::now_ms()).is_none() {
        return;
    }
    if server.persistence.state().child.is_some() {
        return;
    }
    let functions = crate::scripting::library_codes_vec();
    let mut job = SaveJob::new(server, functions);
    let guards = server.lock_all();
    let mut pst = server.persistence.state();
    if pst.child.is_some() {
        return;
    }
    let mut ss = SYNC.lock();
    let Some(socket) = due(&ss, &cfg, crate::util::now_ms()) else {
        return;
    };
    let waiting = std::mem::take(&mut ss.waiting);
    crate::log_notice!(
        "Starting BGSAVE for SYNC with target: {}",
        if socket { "replicas sockets" } else { "disk" }
    );
    // The identity at the fork point, with every replica registered under the same locks.
    let (replid, offset, stream_db) = server.feed.with(|st| {
        if st.backlog.is_none() {
            // A fresh history for the first replica, as Redis does.
            st.new_history();
            st.ensure_backlog(cfg.repl_backlog_size as usize);
        }
        st.reset_repl_db();
        for w in &waiting {
            let at = st.offset;
            st.attach_replica(w.sink.clone(), at);
        }
        let db = if st.upstream { st.stream_db } else { 0 };
        (st.replid.clone(), st.offset, db)
    });
    job.aux = vec![
        ("repl-stream-db", stream_db.to_string()),
        ("repl-id", replid.clone()),
        ("repl-offset", offset.to_string()),
    ];
    for w in &waiting {
        w.sink.set_phase(SyncPhase::SendBulk);
        w.sink.rdb.lock().eof = socket;
        if w.psync {
            let line = format!("+FULLRESYNC {replid} {offset}\r\n");
            w.sink.rdb.lock().data.extend_from_slice(line.as_bytes());
        }
    }
    let sinks: Vec<Arc<ReplicaSink>> = waiting.into_iter().map(|w| w.sink).collect();
    let path = std::env::current_dir()
        .map(|d| d.join(&job.filename))
        .unwrap_or_else(|_| job.filename.clone().into());
    let forked = if socket {
        fork_socket(server, &guards, &mut pst, job, &sinks)
    } else {
        snapshot::fork_save(server, &guards, &mut pst, job)
    };
    drop(pst);
    drop(guards);
    match forked {
        Ok(pid) => {
            for s in &sinks {
                poke(&server.shards, s);
            }
            ss.child = Some(SyncChild {
                pid,
                socket,
                sinks,
                replid,
                offset,
                path,
            });
        }
        Err(e) => {
            crate::log_warning!("BGSAVE for replication failed: {}", e);
            drop_sinks(server, &sinks);
        }
    }
}

/// Forks the diskless child and starts the thread that copies its pipe to the replicas.
fn fork_socket(
    server: &Server,
    guards: &[crate::shard::DataGuard<'_>],
    pst: &mut crate::persistence::snapshot::State,
    job: SaveJob,
    sinks: &[Arc<ReplicaSink>],
) -> std::io::Result<i32> {
    let (read_fd, write_fd) = pipe()?;
    let mark = crate::server::random_hex(EOF_MARK_BYTES);
    let clog = crate::log::child_log();
    let keys_total = snapshot::keys_of(guards);
    let child_mark = mark.clone();
    let forked = child::fork_child_with_fd(
        guards,
        ChildKind::RdbSocket,
        keys_total,
        Some(write_fd.as_raw_fd()),
        |shards, reporter| {
            // SAFETY: the parent handed this descriptor to the child as CHILD_DATA_FD; the
            // child owns its copy.
            let file = unsafe { std::fs::File::from_raw_fd(CHILD_DATA_FD) };
            let mut w = std::io::BufWriter::with_capacity(CHUNK_BYTES, file);
            let mut on_key = || reporter.key_done();
            let written = w
                .write_all(format!("$EOF:{child_mark}\r\n").as_bytes())
                .and_then(|_| snapshot::write_rdb(w, shards, &job, &mut on_key))
                .and_then(|(mut w, _)| {
                    w.write_all(child_mark.as_bytes())?;
                    w.flush()
                });
            match written {
                Ok(()) => {
                    snapshot::log_cow(&clog, "RDB");
                    0
                }
                Err(e) => {
                    clog.log(
                        crate::log::Level::Warning,
                        &format!("Write error saving DB on socket: {e}"),
                    );
                    1
                }
            }
        },
    );
    drop(write_fd);
    let (running, fork_usec) = forked?;
    let p = &server.persistence;
    p.latest_fork_usec.store(fork_usec, Ordering::Relaxed);
    p.total_forks.fetch_add(1, Ordering::Relaxed);
    let pid = running.pid;
    crate::log_notice!("Background RDB transfer started by pid {}", pid);
    pst.child = Some(running);
    let shards = server.shards.clone();
    let sinks = sinks.to_vec();
    let spawned = std::thread::Builder::new()
        .name("repl-rdb-pipe".into())
        .spawn(move || copy_pipe(read_fd, &sinks, mark.as_bytes(), pid, &shards));
    if let Err(e) = spawned {
        // SAFETY: signalling our own child; the cron reaps it and drops its replicas.
        unsafe {
            libc::kill(pid, libc::SIGUSR1);
        }
        return Err(e);
    }
    Ok(pid)
}

fn pipe() -> std::io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0 as RawFd; 2];
    // SAFETY: `fds` has room for the two descriptors pipe2 writes.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: pipe2 just created these descriptors and nobody else owns them.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// The diskless reader: copies the child's pipe to every live replica of it, at the pace of
/// the slowest (`rdbPipeReadHandler`). When every replica is gone the child is killed. A
/// transfer that does not end with the mark (the child failed) drops the replicas.
fn copy_pipe(
    fd: OwnedFd,
    sinks: &[Arc<ReplicaSink>],
    mark: &[u8],
    pid: i32,
    shards: &[Arc<ShardHandle>],
) {
    let mut file = std::fs::File::from(fd);
    let mut buf = vec![0u8; CHUNK_BYTES];
    let mut tail: Vec<u8> = Vec::with_capacity(EOF_MARK_BYTES * 2);
    // Since when each replica's queue has been full (Redis's `repl_last_partial_write`).
    let mut stalled_since: Vec<Option<u64>> = vec![None; sinks.len()];
    loop {
        let now = crate::util::now_ms();
        let timeout_ms = REPL_TIMEOUT_MS.load(Ordering::Relaxed);
        for (s, since) in sinks.iter().zip(stalled_since.iter_mut()) {
            if s.closed.load(Ordering::Relaxed) {
                continue;
            }
            if s.rdb.lock().data.len() < QUEUE_BYTES_MAX {
                *since = None;
                continue;
            }
            let t = *since.get_or_insert(now);
            if now.saturating_sub(t) > timeout_ms {
                crate::log_warning!(
                    "Disconnecting timedout replica (full sync): {}",
                    super::master::sink_name(s)
                );
                kill_sink(shards, s);
            }
        }
        let live: Vec<&Arc<ReplicaSink>> = sinks
            .iter()
            .filter(|s| !s.closed.load(Ordering::Relaxed))
            .collect();
        if live.is_empty() {
            crate::log_warning!("Diskless rdb transfer, last replica dropped, killing fork child.");
            // SAFETY: signalling our own child (SIGUSR1: a deliberate stop, not an error).
            unsafe {
                libc::kill(pid, libc::SIGUSR1);
            }
            return;
        }
        if live
            .iter()
            .any(|s| s.rdb.lock().data.len() >= QUEUE_BYTES_MAX)
        {
            std::thread::sleep(std::time::Duration::from_millis(BACKOFF_MS));
            continue;
        }
        let n = match file.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => {
                crate::log_warning!("Diskless rdb transfer: error reading from the child: {}", e);
                break;
            }
        };
        let chunk = &buf[..n];
        tail.extend_from_slice(&chunk[chunk.len().saturating_sub(EOF_MARK_BYTES)..]);
        if tail.len() > EOF_MARK_BYTES {
            tail.drain(..tail.len() - EOF_MARK_BYTES);
        }
        for s in live {
            let mut r = s.rdb.lock();
            r.started = true;
            r.data.extend_from_slice(chunk);
            drop(r);
            poke(shards, s);
        }
    }
    let complete = tail == mark;
    for s in sinks {
        if complete {
            let mut r = s.rdb.lock();
            r.done = true;
            r.eof = true;
        } else {
            kill_sink(shards, s);
        }
        poke(shards, s);
    }
    if complete {
        crate::log_notice!(
            "Diskless rdb transfer, done reading from pipe, {} replicas still up.",
            sinks
                .iter()
                .filter(|s| !s.closed.load(Ordering::Relaxed))
                .count()
        );
    }
}

/// The persistence cron reaped a child: if it was ours, the disk target's replicas get the
/// file, and a failed child's replicas are dropped (they will ask again).
pub fn on_child_done(server: &Server, pid: i32, exit: Exit) {
    let ch = {
        let mut ss = SYNC.lock();
        match &ss.child {
            Some(c) if c.pid == pid => ss.child.take(),
            _ => None,
        }
    };
    let Some(ch) = ch else {
        return;
    };
    let ok = exit == Exit::Code(0);
    if ch.socket {
        if !ok {
            crate::log_warning!("Background transfer error");
            // The reader drops them too when the mark is missing; a replica already served
            // whole is not touched.
            for s in &ch.sinks {
                if !s.rdb.lock().done {
                    kill_sink(&server.shards, s);
                }
            }
        } else {
            crate::log_notice!("Background RDB transfer terminated with success");
        }
        return;
    }
    if !ok {
        crate::log_warning!("SYNC failed. BGSAVE child returned an error");
        drop_sinks(server, &ch.sinks);
        return;
    }
    for s in ch.sinks {
        if s.closed.load(Ordering::Relaxed) {
            continue;
        }
        let shards = server.shards.clone();
        let path = ch.path.clone();
        let spawned = std::thread::Builder::new()
            .name("repl-rdb-file".into())
            .spawn(move || send_file(&path, &s, &shards));
        if let Err(e) = spawned {
            crate::log_warning!("Can't start the RDB sender: {}", e);
        }
    }
}

/// Streams a saved RDB to one replica as `$<len>\r\n<bytes>` (`sendBulkToSlave`).
fn send_file(path: &std::path::Path, sink: &Arc<ReplicaSink>, shards: &[Arc<ShardHandle>]) {
    let opened = std::fs::File::open(path).and_then(|f| {
        let len = f.metadata()?.len();
        Ok((f, len))
    });
    let (mut file, len) = match opened {
        Ok(x) => x,
        Err(e) => {
            crate::log_warning!("SYNC failed. Can't open/stat DB after BGSAVE: {}", e);
            kill_sink(shards, sink);
            return;
        }
    };
    {
        let mut r = sink.rdb.lock();
        r.started = true;
        r.data.extend_from_slice(format!("${len}\r\n").as_bytes());
    }
    let mut buf = vec![0u8; CHUNK_BYTES];
    let mut sent = 0u64;
    while sent < len {
        if sink.closed.load(Ordering::Relaxed) {
            return;
        }
        if sink.rdb.lock().data.len() >= QUEUE_BYTES_MAX {
            std::thread::sleep(std::time::Duration::from_millis(BACKOFF_MS));
            continue;
        }
        let want = CHUNK_BYTES.min((len - sent) as usize);
        let n = match file.read(&mut buf[..want]) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => {
                crate::log_warning!("Read error sending DB to replica: {}", e);
                break;
            }
        };
        sink.rdb.lock().data.extend_from_slice(&buf[..n]);
        sent += n as u64;
        poke(shards, sink);
    }
    if sent < len {
        kill_sink(shards, sink);
        return;
    }
    sink.rdb.lock().done = true;
    poke(shards, sink);
    crate::log_notice!("Synchronization with replica {} succeeded", sink.ip.lock());
}

fn poke(shards: &[Arc<ShardHandle>], sink: &ReplicaSink) {
    if let Some(h) = shards.get(sink.conn.shard) {
        h.mailbox.poke();
    }
}

/// Closes a replica's connection (its shard closes it on its next turn).
pub fn kill_sink(shards: &[Arc<ShardHandle>], sink: &ReplicaSink) {
    sink.closed.store(true, Ordering::Relaxed);
    if let Some(h) = shards.get(sink.conn.shard) {
        let mut batch = vec![crate::shard::mesh::Msg::Kill {
            token: sink.conn.token,
            gen: sink.conn.gen,
        }];
        h.mailbox.post(shards.len(), &mut batch);
    }
}

fn drop_sinks(server: &Server, sinks: &[Arc<ReplicaSink>]) {
    for s in sinks {
        kill_sink(&server.shards, s);
    }
    server
        .feed
        .with(|st| st.replicas.retain(|r| !r.closed.load(Ordering::Relaxed)));
}

/// Whether a replica is waiting for or receiving a full synchronization (INFO's
/// `state=wait_bgsave|send_bulk`).
pub fn state_name(sink: &ReplicaSink) -> &'static str {
    match sink.phase() {
        // A diskless transfer that went out is online for Redis (its stream starts on ACK).
        SyncPhase::Online | SyncPhase::WaitAck => "online",
        SyncPhase::WaitBgsave => "wait_bgsave",
        SyncPhase::SendBulk => {
            // Redis shows `send_bulk` only while a saved file is being sent; a replica whose
            // save (to disk or to its socket) still runs is `wait_bgsave`.
            let r = sink.rdb.lock();
            if r.started && !r.eof {
                "send_bulk"
            } else {
                "wait_bgsave"
            }
        }
    }
}

/// The replicas waiting for a fork (INFO lists them as `wait_bgsave`).
pub fn waiting_sinks() -> Vec<Arc<ReplicaSink>> {
    SYNC.lock().waiting.iter().map(|w| w.sink.clone()).collect()
}

/// The replication identity an RDB recorded (`rdbSaveInfo`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SavedIdentity {
    pub replid: String,
    pub offset: u64,
    pub stream_db: usize,
}

/// Collects the identity's AUX fields while a file loads.
#[derive(Default)]
pub struct IdentityAux {
    replid: Option<String>,
    offset: Option<i64>,
    stream_db: Option<i64>,
}

impl IdentityAux {
    pub fn take(&mut self, key: &[u8], value: &[u8]) {
        let text = || String::from_utf8_lossy(value).into_owned();
        match key {
            b"repl-id" => self.replid = Some(text()),
            b"repl-offset" => self.offset = text().parse().ok(),
            b"repl-stream-db" => self.stream_db = text().parse().ok(),
            _ => {}
        }
    }

    /// The identity, if the file holds a usable one (Redis ignores an offset or a stream
    /// database of -1).
    pub fn identity(&self) -> Option<SavedIdentity> {
        let replid = self.replid.clone().filter(|r| r.len() == 40)?;
        let offset = u64::try_from(self.offset?).ok()?;
        let stream_db = usize::try_from(self.stream_db?).ok()?;
        Some(SavedIdentity {
            replid,
            offset,
            stream_db,
        })
    }
}

/// A start-up load restored an identity a replica may continue from.
static RESTORED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Whether the start-up RDB gave this replica a history to continue (PSYNC with it).
pub fn restored_history() -> bool {
    RESTORED.load(Ordering::Relaxed)
}

/// After the start-up RDB load (`loadDataFromDisk`): a master keeps the file's history as
/// its secondary one (replicas of the previous run continue partially), with the DELs of the
/// keys that expired meanwhile in a fresh backlog; a replica takes it as its own, to PSYNC
/// with. A master without a usable identity keeps no backlog.
pub fn restore_identity(
    server: &Server,
    saved: Option<SavedIdentity>,
    expired: &[(usize, Vec<u8>)],
) {
    let cfg = server.config.load();
    let replica = cfg.replicaof.is_some();
    server.feed.with(|st| {
        if replica {
            if let Some(id) = &saved {
                st.replid = id.replid.clone();
                st.offset = id.offset;
                st.stream_db = id.stream_db;
                RESTORED.store(true, Ordering::Relaxed);
            }
            return;
        }
        let Some(id) = saved else {
            return;
        };
        // The saved history continues: the backlog starts at the saved offset, after which
        // the DELs of keys that expired while the server was down are fed.
        st.offset += id.offset;
        st.ensure_backlog(cfg.repl_backlog_size as usize);
        let ops: Vec<super::Op> = expired
            .iter()
            .map(|(db, key)| {
                super::Op::new(
                    *db,
                    vec![
                        bytes::Bytes::from_static(b"DEL"),
                        bytes::Bytes::copy_from_slice(key),
                    ],
                )
            })
            .collect();
        for op in &ops {
            st.feed_ops(std::slice::from_ref(op), false);
        }
        st.replid2 = id.replid;
        st.second_replid_offset = id.offset as i64 + 1;
        st.no_replicas_since_ms = crate::util::now_ms();
    });
}
