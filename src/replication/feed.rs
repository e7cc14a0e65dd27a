//! The one ordered command stream: what the dataset's changes look like to replicas and to
//! the AOF.
//!
//! Every execution path (a command on its home shard, a hop, a multi-shard command, EXEC, a
//! served blocked client, active expiry, a script) collects the operations it propagates as
//! `Op`s (see `storage::Keyspace`'s propagation fields) and hands them to `Feed::propagate`
//! **while it still holds the shard locks it ran under**. Two writes to one key are serialized
//! by that key's shard lock, so they reach the stream in the order they were applied; writes to
//! different shards are independent and may interleave in any order. A unit of several ops
//! (EXEC, a script, a command that also deleted expired keys) is wrapped in MULTI/EXEC so a
//! replica or an AOF replay applies it atomically.
//!
//! The lock order is: shard locks (ascending), then the feed's mutex; nothing takes a shard
//! lock while holding the feed.
//!
//! The stream has two consumers with their own framing state: replication (the backlog and
//! every attached replica, counted by `master_repl_offset`) and the AOF (pending bytes for the
//! writer). Each tracks the database its stream last selected and emits SELECT when an op is
//! for another one, exactly as Redis's `replicationFeedSlaves` and `feedAppendOnlyFile` do.
//! Ops marked `repl_only` (PUBLISH, the master's PING) skip the AOF.
//!
//! When nothing consumes the stream (no backlog, AOF off) `active()` is false and the engine
//! does not even collect ops, so a server without replicas or AOF pays one relaxed load per
//! command.

use bytes::Bytes;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};
use std::sync::Arc;

/// One propagated command: its database and its arguments.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Op {
    pub db: usize,
    pub argv: Vec<Bytes>,
    /// Replication only (not the AOF): PUBLISH, the master's PING.
    pub repl_only: bool,
}

impl Op {
    pub fn new(db: usize, argv: Vec<Bytes>) -> Op {
        Op {
            db,
            argv,
            repl_only: false,
        }
    }
}

/// A connection on some shard that receives the replication stream.
pub struct ReplicaSink {
    pub conn: crate::shard::mesh::ConnRef,
    /// Stream bytes not yet moved to the connection's output by its shard.
    pub pending: parking_lot::Mutex<Vec<u8>>,
    /// The replica's last acknowledged offset (REPLCONF ACK).
    pub ack_offset: AtomicU64,
    /// Unix ms of the last ACK.
    pub ack_ms: AtomicU64,
    /// The connection is gone: the feed drops the sink.
    pub closed: AtomicBool,
    /// `REPLCONF listening-port`, for INFO replication and ROLE.
    pub listening_port: AtomicU64,
    /// The replica's address (`REPLCONF ip-address` or the peer's), for INFO and ROLE.
    pub ip: parking_lot::Mutex<String>,
    /// Where the replica is in its synchronization (`SyncPhase` as a u8).
    phase: AtomicU8,
    /// The full synchronization's bytes (the +FULLRESYNC line, the RDB and its framing), fed
    /// by `replication::fullsync` and sent before any stream byte.
    pub rdb: parking_lot::Mutex<RdbOutbound>,
    /// It attached with the old SYNC and never acknowledges (`CLIENT_PRE_PSYNC`): the
    /// master does not time it out.
    pub pre_psync: AtomicBool,
}

/// Where a replica is in its synchronization; its stream bytes wait in `pending` until it
/// is `Online`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum SyncPhase {
    /// Receiving the stream (after a partial resync, or once its RDB went out).
    Online = 0,
    /// Waiting for a background save to start (`wait_bgsave` in INFO).
    WaitBgsave = 1,
    /// A save runs for it, or its RDB is being sent (`send_bulk`).
    SendBulk = 2,
    /// A diskless RDB went out: the stream waits for the replica's first ACK, which says it
    /// loaded the RDB (a replica reading up to the EOF mark must not see stream bytes after
    /// the mark in the same read).
    WaitAck = 3,
}

/// The full synchronization bytes a replica still has to receive.
#[derive(Default)]
pub struct RdbOutbound {
    pub data: Vec<u8>,
    /// The RDB itself started (keep-alive newlines stop).
    pub started: bool,
    /// Everything is queued: once `data` is sent the replica moves on.
    pub done: bool,
    /// The transfer used the EOF framing (the stream then waits for the first ACK).
    pub eof: bool,
}

/// The connection's output takes synchronization bytes only while it holds fewer than this,
/// so a slow replica's output stays bounded while a whole RDB is being sent.
const RDB_OUT_BYTES_MAX: usize = 1 << 20;

impl ReplicaSink {
    pub fn new(conn: crate::shard::mesh::ConnRef) -> ReplicaSink {
        ReplicaSink {
            conn,
            pending: parking_lot::Mutex::new(Vec::new()),
            ack_offset: AtomicU64::new(0),
            ack_ms: AtomicU64::new(crate::util::now_ms()),
            closed: AtomicBool::new(false),
            listening_port: AtomicU64::new(0),
            ip: parking_lot::Mutex::new(String::new()),
            phase: AtomicU8::new(SyncPhase::Online as u8),
            rdb: parking_lot::Mutex::new(RdbOutbound::default()),
            pre_psync: AtomicBool::new(false),
        }
    }

    pub fn phase(&self) -> SyncPhase {
        match self.phase.load(Ordering::Acquire) {
            0 => SyncPhase::Online,
            1 => SyncPhase::WaitBgsave,
            2 => SyncPhase::SendBulk,
            _ => SyncPhase::WaitAck,
        }
    }

    pub fn set_phase(&self, p: SyncPhase) {
        self.phase.store(p as u8, Ordering::Release);
    }

    /// A REPLCONF ACK arrived: a replica waiting for it after a diskless transfer goes online.
    pub fn on_ack(&self) {
        let _ = self.phase.compare_exchange(
            SyncPhase::WaitAck as u8,
            SyncPhase::Online as u8,
            Ordering::AcqRel,
            Ordering::Acquire,
        );
    }

    /// Moves what the replica may receive now into `out`: the synchronization bytes while a
    /// full sync is under way (bounded by `RDB_OUT_BYTES_MAX`), then the pending stream.
    pub fn drain_into(&self, out: &mut Vec<u8>) -> usize {
        let mut n = 0;
        match self.phase() {
            SyncPhase::Online => {}
            SyncPhase::WaitAck => return 0,
            SyncPhase::WaitBgsave | SyncPhase::SendBulk => {
                if out.len() >= RDB_OUT_BYTES_MAX {
                    return 0;
                }
                let mut r = self.rdb.lock();
                n = r.data.len();
                out.extend_from_slice(&r.data);
                r.data.clear();
                if !r.done {
                    return n;
                }
                r.data.shrink_to_fit();
                // Its RDB went out: the replica's timeout counts from now (`replicaPutOnline`).
                self.ack_ms.store(crate::util::now_ms(), Ordering::Relaxed);
                if r.eof {
                    self.set_phase(SyncPhase::WaitAck);
                    return n;
                }
                self.set_phase(SyncPhase::Online);
            }
        }
        n + self.drain_stream(out)
    }

    fn drain_stream(&self, out: &mut Vec<u8>) -> usize {
        let mut p = self.pending.lock();
        let n = p.len();
        if out.is_empty() {
            std::mem::swap(out, &mut *p);
        } else {
            out.extend_from_slice(&p);
            p.clear();
        }
        n
    }
}

/// The replication backlog: the last `size` bytes of the stream, as a ring.
pub struct Backlog {
    buf: Vec<u8>,
    size: usize,
    /// Where the next byte goes in `buf`.
    idx: usize,
    /// Bytes held (at most `size`).
    histlen: usize,
}

impl Backlog {
    pub fn new(size: usize) -> Backlog {
        let size = size.max(16 * 1024);
        Backlog {
            buf: Vec::new(),
            size,
            idx: 0,
            histlen: 0,
        }
    }

    pub fn size(&self) -> usize {
        self.size
    }

    pub fn histlen(&self) -> usize {
        self.histlen
    }

    fn append(&mut self, mut data: &[u8]) {
        if self.buf.len() < self.size {
            // Grow lazily up to `size` so an idle backlog costs nothing.
            let want = (self.buf.len() + data.len()).min(self.size);
            self.buf.resize(want, 0);
        }
        if data.len() > self.size {
            data = &data[data.len() - self.size..];
        }
        while !data.is_empty() {
            let room = self.size - self.idx;
            let n = room.min(data.len());
            self.buf[self.idx..self.idx + n].copy_from_slice(&data[..n]);
            self.idx = (self.idx + n) % self.size;
            data = &data[n..];
            self.histlen = (self.histlen + n).min(self.size);
        }
    }

    /// The last `len` bytes held (len ≤ histlen).
    fn tail(&self, len: usize) -> Vec<u8> {
        let len = len.min(self.histlen);
        let start = (self.idx + self.size - len) % self.size;
        let mut v = Vec::with_capacity(len);
        if start + len <= self.size {
            v.extend_from_slice(&self.buf[start..start + len]);
        } else {
            v.extend_from_slice(&self.buf[start..]);
            v.extend_from_slice(&self.buf[..len - (self.size - start)]);
        }
        v
    }

    /// Changes the size, keeping the most recent bytes that fit.
    pub fn resize(&mut self, size: usize) {
        let size = size.max(16 * 1024);
        if size == self.size {
            return;
        }
        let keep = self.tail(self.histlen.min(size));
        *self = Backlog::new(size);
        self.append(&keep);
    }
}

/// Replication identity and position (PSYNC2).
pub struct ReplState {
    pub replid: String,
    /// The previous master's replid, valid up to `second_replid_offset`.
    pub replid2: String,
    pub second_replid_offset: i64,
    /// `master_repl_offset`: bytes fed to the replication stream so far.
    pub offset: u64,
    /// The offset right after the last write fed (not counting the GETACKs and PINGs the
    /// master adds itself): what WAIT waits for, as Redis's client `woff` excludes them.
    pub write_offset: u64,
    pub backlog: Option<Backlog>,
    /// The stream's selected database; `None` forces a SELECT before the next op.
    repl_db: Option<usize>,
    pub replicas: Vec<Arc<ReplicaSink>>,
    /// Pending AOF bytes, when the AOF is on.
    pub aof: Option<Vec<u8>>,
    /// Bytes ever appended to the AOF stream (the writer's offsets; see `persistence::aof`).
    pub aof_total: u64,
    aof_db: Option<usize>,
    /// Unix seconds of the last `#TS:` annotation in the AOF stream (`aof_cur_timestamp`).
    aof_ts_secs: u64,
    scratch: Vec<u8>,
    /// This server is a replica: its replication stream is its master's, re-fed byte for byte
    /// by the link (`feed_raw`), so local ops (a writable replica's writes) feed the AOF only.
    pub upstream: bool,
    /// The database the upstream stream last selected (the RDB's `repl-stream-db` for a
    /// sub-replica's full sync).
    pub stream_db: usize,
    /// Unix ms when the last replica went away (`repl-backlog-ttl`).
    pub no_replicas_since_ms: u64,
}

/// `aof-timestamp-enabled`, mirrored from the config (`persistence::aof::Aof::apply_config`).
static AOF_TIMESTAMPS: AtomicBool = AtomicBool::new(false);

pub fn set_aof_timestamps(on: bool) {
    AOF_TIMESTAMPS.store(on, Ordering::Relaxed);
}

#[inline]
pub fn aof_timestamps() -> bool {
    AOF_TIMESTAMPS.load(Ordering::Relaxed)
}

/// The AOF's timestamp annotation line (`#TS:<unix seconds>`), which loaders skip and
/// `redis-check-aof --truncate-to-timestamp` reads.
pub fn timestamp_annotation(unix_secs: u64) -> String {
    format!("#TS:{unix_secs}\r\n")
}

pub struct Feed {
    active: AtomicBool,
    /// `ReplState::aof_total`, readable without the lock (stored under it).
    aof_end: AtomicU64,
    state: parking_lot::Mutex<ReplState>,
}

impl Default for Feed {
    fn default() -> Self {
        Feed::new()
    }
}

impl Feed {
    pub fn new() -> Feed {
        Feed {
            active: AtomicBool::new(false),
            aof_end: AtomicU64::new(0),
            state: parking_lot::Mutex::new(ReplState {
                replid: crate::server::random_hex(40),
                replid2: "0".repeat(40),
                second_replid_offset: -1,
                offset: 0,
                write_offset: 0,
                backlog: None,
                repl_db: None,
                replicas: Vec::new(),
                aof: None,
                aof_total: 0,
                aof_db: None,
                aof_ts_secs: 0,
                scratch: Vec::new(),
                upstream: false,
                stream_db: 0,
                no_replicas_since_ms: 0,
            }),
        }
    }

    /// Whether anything consumes the stream (backlog or AOF): execution paths collect ops only
    /// then.
    #[inline]
    pub fn active(&self) -> bool {
        self.active.load(Ordering::Relaxed)
    }

    /// Runs `f` on the state under the feed's lock, then refreshes `active`.
    pub fn with<R>(&self, f: impl FnOnce(&mut ReplState) -> R) -> R {
        let mut st = self.state.lock();
        let r = f(&mut st);
        self.active
            .store(st.backlog.is_some() || st.aof.is_some(), Ordering::Relaxed);
        r
    }

    /// Appends one execution unit to the stream. `wrap`: several ops that must apply
    /// atomically are framed by MULTI/EXEC (a single op never is). Returns the set of shards
    /// (bit i = shard i) owning replicas that now have data to send.
    pub fn propagate(&self, ops: &[Op], wrap: bool) -> u64 {
        if ops.is_empty() || !self.active() {
            return 0;
        }
        let wrap = wrap && ops.len() > 1;
        let mut st = self.state.lock();
        let poke = st.feed(ops, wrap);
        if st.aof.is_some() {
            self.aof_end.store(st.aof_total, Ordering::SeqCst);
        }
        poke
    }

    /// A replica applied one command of its master's stream: `ops` (what it did) go to the
    /// AOF, `raw` (the master's bytes) to the backlog and sub-replicas, under one lock so both
    /// keep the stream's order. Returns the shards to poke, as `propagate`.
    pub fn apply_upstream(&self, ops: &[Op], wrap: bool, raw: Option<&[u8]>) -> u64 {
        let mut st = self.state.lock();
        if st.aof.is_some() && !ops.is_empty() {
            let ReplState {
                aof,
                aof_total,
                aof_db,
                ..
            } = &mut *st;
            if let Some(buf) = aof {
                let before = buf.len();
                encode_unit(buf, aof_db, ops, wrap && ops.len() > 1, true);
                *aof_total += (buf.len() - before) as u64;
            }
            self.aof_end.store(st.aof_total, Ordering::SeqCst);
        }
        match raw {
            Some(raw) => st.feed_raw(raw),
            None => 0,
        }
    }

    /// The AOF stream's end offset: bytes ever appended to it.
    #[inline]
    pub fn aof_end(&self) -> u64 {
        self.aof_end.load(Ordering::SeqCst)
    }
}

impl ReplState {
    fn feed(&mut self, ops: &[Op], wrap: bool) -> u64 {
        let ReplState {
            backlog,
            repl_db,
            replicas,
            aof,
            aof_total,
            aof_db,
            aof_ts_secs,
            scratch,
            offset,
            write_offset,
            upstream,
            ..
        } = self;
        let mut poke = 0u64;
        if let Some(backlog) = backlog.as_mut().filter(|_| !*upstream) {
            scratch.clear();
            encode_unit(scratch, repl_db, ops, wrap, false);
            backlog.append(scratch);
            *offset += scratch.len() as u64;
            *write_offset = *offset;
            replicas.retain(|r| !r.closed.load(Ordering::Relaxed));
            for r in replicas.iter() {
                r.pending.lock().extend_from_slice(scratch);
                poke |= 1u64 << (r.conn.shard % 64);
            }
        }
        if let Some(buf) = aof {
            let before = buf.len();
            if aof_timestamps() {
                // `aof-timestamp-enabled`: an annotation whenever the second changed, before
                // the unit (and its SELECT), as Redis's `feedAppendOnlyFile`.
                let now_secs = crate::util::now_ms() / 1000;
                if now_secs > *aof_ts_secs {
                    *aof_ts_secs = now_secs;
                    buf.extend_from_slice(timestamp_annotation(now_secs).as_bytes());
                }
            }
            encode_unit(buf, aof_db, ops, wrap, true);
            *aof_total += (buf.len() - before) as u64;
        }
        poke
    }

    /// Appends bytes of the upstream master's stream exactly as received (a replica re-feeding
    /// its backlog and sub-replicas, so offsets match along a chain). Returns the shards to
    /// poke, as `propagate`.
    pub fn feed_raw(&mut self, data: &[u8]) -> u64 {
        let poke = self.feed_control(data);
        self.write_offset = self.offset;
        poke
    }

    /// Appends bytes the master adds to the stream itself (REPLCONF GETACK, PING): like
    /// `feed_raw`, but WAIT does not wait for them.
    pub fn feed_control(&mut self, data: &[u8]) -> u64 {
        self.offset += data.len() as u64;
        let mut poke = 0u64;
        if let Some(backlog) = &mut self.backlog {
            backlog.append(data);
        }
        self.replicas.retain(|r| !r.closed.load(Ordering::Relaxed));
        for r in self.replicas.iter() {
            r.pending.lock().extend_from_slice(data);
            poke |= 1u64 << (r.conn.shard % 64);
        }
        poke
    }

    /// Starts a new history (a full sync from a master, or a fresh master): an empty backlog
    /// whose first byte will be `offset + 1`.
    pub fn reset_backlog(&mut self, size: usize) {
        self.backlog = Some(Backlog::new(size));
        self.repl_db = None;
    }

    /// Forces a SELECT before the next op of the replication stream (a new replica starts
    /// from an RDB that selected nothing).
    pub fn reset_repl_db(&mut self) {
        self.repl_db = None;
    }

    /// Forces a SELECT before the next op of the AOF stream (a new incr file).
    pub fn reset_aof_db(&mut self) {
        self.aof_db = None;
    }

    /// Creates the backlog if there is none (the first replica attaching).
    pub fn ensure_backlog(&mut self, size: usize) {
        if self.backlog.is_none() {
            self.backlog = Some(Backlog::new(size));
            // Redis starts a fresh history: the first byte of the backlog is offset+1.
            self.repl_db = None;
        }
    }

    /// The offset of the first byte the backlog holds (`repl_backlog_first_byte_offset`).
    pub fn backlog_first_byte(&self) -> u64 {
        match &self.backlog {
            Some(b) => self.offset + 1 - b.histlen() as u64,
            None => 0,
        }
    }

    /// The stream from offset `from` (the next byte a replica needs) if the backlog still
    /// holds it.
    pub fn backlog_from(&self, from: u64) -> Option<Vec<u8>> {
        let b = self.backlog.as_ref()?;
        if from > self.offset + 1 || from < self.backlog_first_byte() {
            return None;
        }
        Some(b.tail((self.offset + 1 - from) as usize))
    }

    /// The last `n` bytes of the backlog, if there is one.
    pub fn backlog_tail(&self, n: usize) -> Option<Vec<u8>> {
        self.backlog.as_ref().map(|b| b.tail(n))
    }

    /// Appends raw bytes to the replication stream only (the master's PING is an op; this is
    /// for nothing but tests of framing).
    pub fn feed_ops(&mut self, ops: &[Op], wrap: bool) -> u64 {
        self.feed(ops, wrap)
    }
}

/// Appends `argv` as a RESP multibulk.
pub fn encode_command(out: &mut Vec<u8>, argv: &[Bytes]) {
    out.push(b'*');
    out.extend_from_slice(argv.len().to_string().as_bytes());
    out.extend_from_slice(b"\r\n");
    for a in argv {
        out.push(b'$');
        out.extend_from_slice(a.len().to_string().as_bytes());
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(a);
        out.extend_from_slice(b"\r\n");
    }
}

fn select_if_needed(out: &mut Vec<u8>, sel: &mut Option<usize>, db: usize) {
    if *sel != Some(db) {
        let n = db.to_string();
        encode_command(
            out,
            &[
                Bytes::from_static(b"SELECT"),
                Bytes::copy_from_slice(n.as_bytes()),
            ],
        );
        *sel = Some(db);
    }
}

/// Encodes one unit for one consumer; `aof` skips replication-only ops.
fn encode_unit(out: &mut Vec<u8>, sel: &mut Option<usize>, ops: &[Op], wrap: bool, aof: bool) {
    let mut ops_iter = ops.iter().filter(|o| !(aof && o.repl_only)).peekable();
    let Some(first) = ops_iter.peek() else {
        return;
    };
    if wrap {
        select_if_needed(out, sel, first.db);
        encode_command(out, &[Bytes::from_static(b"MULTI")]);
    }
    for op in ops_iter {
        select_if_needed(out, sel, op.db);
        encode_command(out, &op.argv);
    }
    if wrap {
        encode_command(out, &[Bytes::from_static(b"EXEC")]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn op(db: usize, args: &[&str]) -> Op {
        Op::new(
            db,
            args.iter()
                .map(|a| Bytes::copy_from_slice(a.as_bytes()))
                .collect(),
        )
    }

    #[test]
    fn units_select_and_wrap_like_redis() {
        let mut out = Vec::new();
        let mut sel = None;
        encode_unit(
            &mut out,
            &mut sel,
            &[op(0, &["SET", "a", "1"])],
            false,
            false,
        );
        encode_unit(
            &mut out,
            &mut sel,
            &[op(9, &["DEL", "x"]), op(9, &["INCR", "y"])],
            true,
            false,
        );
        let s = String::from_utf8(out).expect("ascii");
        assert_eq!(
            s,
            "*2\r\n$6\r\nSELECT\r\n$1\r\n0\r\n*3\r\n$3\r\nSET\r\n$1\r\na\r\n$1\r\n1\r\n\
             *2\r\n$6\r\nSELECT\r\n$1\r\n9\r\n*1\r\n$5\r\nMULTI\r\n*2\r\n$3\r\nDEL\r\n$1\r\nx\r\n\
             *2\r\n$4\r\nINCR\r\n$1\r\ny\r\n*1\r\n$4\r\nEXEC\r\n"
        );
    }

    #[test]
    fn aof_skips_replication_only_ops() {
        let mut out = Vec::new();
        let mut sel = Some(0);
        let mut ping = op(0, &["PING"]);
        ping.repl_only = true;
        encode_unit(&mut out, &mut sel, &[ping], false, true);
        assert!(out.is_empty());
    }

    #[test]
    fn backlog_keeps_the_most_recent_bytes() {
        let mut b = Backlog::new(16 * 1024);
        let data: Vec<u8> = (0..40_000u32).map(|i| (i % 251) as u8).collect();
        b.append(&data[..10_000]);
        b.append(&data[10_000..]);
        assert_eq!(b.histlen(), 16 * 1024);
        assert_eq!(b.tail(100), &data[data.len() - 100..]);
        assert_eq!(b.tail(16 * 1024), &data[data.len() - 16 * 1024..]);
        b.resize(20 * 1024);
        assert_eq!(b.tail(16 * 1024), &data[data.len() - 16 * 1024..]);
    }

    #[test]
    fn backlog_from_answers_only_what_it_holds() {
        let feed = Feed::new();
        feed.with(|st| st.ensure_backlog(16 * 1024));
        assert!(feed.active());
        feed.propagate(&[op(0, &["SET", "k", "v"])], false);
        feed.with(|st| {
            let all = st.backlog_from(1).expect("held");
            assert!(all.starts_with(b"*2\r\n$6\r\nSELECT"));
            assert_eq!(st.backlog_from(st.offset + 1), Some(Vec::new()));
            assert_eq!(st.backlog_from(st.offset + 2), None);
        });
    }
}
