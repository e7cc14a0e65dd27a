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
//! replica or an AOF replay applies it atomically; except the lazy-expiry deletions of SCAN and
//! RANDOMKEY called directly, which Redis sends unwrapped (`flag::TOUCHES_ARBITRARY_KEYS`).
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
    /// The AOF only (not replicas): a script's `redis.set_repl(redis.REPL_AOF)`.
    pub aof_only: bool,
}

impl Op {
    pub fn new(db: usize, argv: Vec<Bytes>) -> Op {
        Op {
            db,
            argv,
            repl_only: false,
            aof_only: false,
        }
    }
}

/// A connection on some shard that receives the replication stream.
pub struct ReplicaSink {
    pub conn: crate::shard::mesh::ConnRef,
    /// The stream offset up to which the replica's shard moved the stream to the connection's
    /// output: its reference into the shared buffer (`Backlog`). `UNREGISTERED` until the
    /// sink joins `ReplState::replicas`.
    pub pos: AtomicU64,
    /// The stream's end offset, published by the feed (`Feed::end`).
    stream_end: Arc<AtomicU64>,
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
/// The connection's output takes stream bytes from the shared buffer only up to this: the
/// rest stays shared (referenced, not copied) until the socket takes it.
const STREAM_OUT_BYTES_MAX: usize = 1 << 20;
/// `ReplicaSink::pos` of a sink that does not reference the buffer yet.
pub const UNREGISTERED: u64 = u64::MAX;

impl ReplicaSink {
    pub fn new(conn: crate::shard::mesh::ConnRef, feed: &Feed) -> ReplicaSink {
        ReplicaSink {
            conn,
            pos: AtomicU64::new(UNREGISTERED),
            stream_end: feed.end.clone(),
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

    /// Stream bytes fed but not yet moved to the connection: the replica's share of the shared
    /// buffer, which its output limit counts (Redis's `getClientOutputBufferMemoryUsage`).
    pub fn lag(&self) -> u64 {
        let pos = self.pos.load(Ordering::Acquire);
        if pos == UNREGISTERED {
            return 0;
        }
        self.stream_end.load(Ordering::Acquire).saturating_sub(pos)
    }

    /// Moves what the replica may receive now into `out`: the synchronization bytes while a
    /// full sync is under way (bounded by `RDB_OUT_BYTES_MAX`), then the stream from the
    /// shared buffer (bounded by `STREAM_OUT_BYTES_MAX`).
    pub fn drain_into(&self, feed: &Feed, out: &mut Vec<u8>) -> usize {
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
        n + self.drain_stream(feed, out)
    }

    fn drain_stream(&self, feed: &Feed, out: &mut Vec<u8>) -> usize {
        if self.lag() == 0 || out.len() >= STREAM_OUT_BYTES_MAX {
            return 0;
        }
        let room = STREAM_OUT_BYTES_MAX - out.len();
        let st = feed.state.lock();
        let pos = self.pos.load(Ordering::Acquire);
        let Some(b) = st.backlog.as_ref().filter(|_| pos != UNREGISTERED) else {
            return 0;
        };
        let n = b.copy_from(pos, room, out);
        self.pos.store(pos + n as u64, Ordering::Release);
        n
    }
}

/// Stream bytes per block of the shared buffer, the unit it grows and is trimmed by (Redis's
/// `PROTO_REPLY_CHUNK_BYTES`); a larger write gets larger blocks, up to a sixteenth of the
/// backlog.
const BLOCK_BYTES: usize = 16 * 1024;
/// What one block costs beside its bytes, counted in `mem_total_replication_buffers` (Redis
/// counts its `replBufBlock` header and list node the same way).
const BLOCK_OVERHEAD: usize = 64;
/// Blocks one trim frees at most, so a call never holds the feed's lock long; the cron
/// finishes what a large release left (Redis trims incrementally too).
const TRIM_BLOCKS_MAX: usize = 1024;

struct Block {
    /// Stream offset before the block's first byte.
    start: u64,
    data: Vec<u8>,
}

/// The shared replication buffer (Redis 7.0's `repl_buffer_blocks`): one list of blocks that
/// is both the backlog and every replica's pending output. A replica holds only its position
/// (`ReplicaSink::pos`); the blocks before the oldest position still needed are freed once the
/// backlog keeps at least `size` bytes without them. So replicas never copy the stream in
/// advance, and a slow replica makes the backlog grow beyond `repl-backlog-size` (which a
/// reconnecting replica may then use for a partial resync) until it catches up or is dropped.
pub struct Backlog {
    blocks: std::collections::VecDeque<Block>,
    size: usize,
    /// Stream offset after the last byte (equals `master_repl_offset`).
    end: u64,
    /// Allocated bytes of all blocks plus their overhead (`mem_total_replication_buffers`).
    mem: usize,
}

impl Backlog {
    /// An empty backlog whose first byte will be stream offset `offset + 1`.
    pub fn new(size: usize, offset: u64) -> Backlog {
        Backlog {
            blocks: Default::default(),
            size: size.max(16 * 1024),
            end: offset,
            mem: 0,
        }
    }

    pub fn size(&self) -> usize {
        self.size
    }

    /// Bytes held (`repl_backlog_histlen`); may exceed `size` while replicas need them.
    pub fn histlen(&self) -> usize {
        self.blocks
            .front()
            .map_or(0, |b| (self.end - b.start) as usize)
    }

    /// `mem_total_replication_buffers`.
    pub fn mem(&self) -> usize {
        self.mem
    }

    /// The stream offset of the first byte held (`repl_backlog_first_byte_offset`).
    pub fn first_byte(&self) -> u64 {
        self.blocks.front().map_or(self.end, |b| b.start) + 1
    }

    fn append(&mut self, mut data: &[u8]) {
        while !data.is_empty() {
            let room = self
                .blocks
                .back()
                .map_or(0, |b| b.data.capacity() - b.data.len());
            if room == 0 {
                // At most a sixteenth of the backlog (Redis's cap): a huge write spans several
                // blocks, so the backlog can free its head once replicas are past it, instead of
                // keeping one block a reconnecting replica could never be fed from in bounds.
                let cap = (self.size / 16).max(BLOCK_BYTES);
                let data_vec = Vec::with_capacity(data.len().clamp(BLOCK_BYTES, cap));
                self.mem += data_vec.capacity() + BLOCK_OVERHEAD;
                self.blocks.push_back(Block {
                    start: self.end,
                    data: data_vec,
                });
                continue;
            }
            let n = room.min(data.len());
            if let Some(b) = self.blocks.back_mut() {
                b.data.extend_from_slice(&data[..n]);
            }
            self.end += n as u64;
            data = &data[n..];
        }
    }

    /// Frees leading blocks that no replica still needs (`min_ref`: the lowest replica
    /// position) while at least `size` bytes stay held.
    fn trim(&mut self, min_ref: u64, max_blocks: usize) {
        let mut freed = 0;
        while freed < max_blocks && self.blocks.len() > 1 {
            let Some(first) = self.blocks.front() else {
                break;
            };
            let len = first.data.len();
            if self.histlen() - len < self.size || first.start + len as u64 > min_ref {
                break;
            }
            let cap = first.data.capacity();
            self.blocks.pop_front();
            self.mem -= cap + BLOCK_OVERHEAD;
            freed += 1;
        }
    }

    /// Appends to `out` up to `max` stream bytes from offset `from` (the bytes after it; `from`
    /// at least `first_byte() - 1`). Returns how many.
    fn copy_from(&self, from: u64, max: usize, out: &mut Vec<u8>) -> usize {
        let mut i = self
            .blocks
            .partition_point(|b| b.start <= from)
            .saturating_sub(1);
        let mut at = from;
        let stop = self.end.min(from.saturating_add(max as u64));
        while at < stop {
            let Some(b) = self.blocks.get(i) else { break };
            let lo = (at - b.start) as usize;
            let hi = ((stop - b.start) as usize).min(b.data.len());
            if lo < hi {
                out.extend_from_slice(&b.data[lo..hi]);
                at += (hi - lo) as u64;
            }
            i += 1;
        }
        (at - from) as usize
    }

    /// The last `len` bytes held (len ≤ histlen).
    fn tail(&self, len: usize) -> Vec<u8> {
        let len = len.min(self.histlen());
        let mut v = Vec::with_capacity(len);
        self.copy_from(self.end - len as u64, len, &mut v);
        v
    }

    /// Changes the size; the next trim frees what the new size and the replicas allow.
    pub fn resize(&mut self, size: usize) {
        self.size = size.max(16 * 1024);
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
    /// Bumped by every `feed_control` (REPLCONF GETACK, a re-fed upstream command): bytes
    /// that shards move to their replicas at once rather than at their next coalesced send
    /// (`shard::engine::repl_pump`). Shared with `Feed::urgent`; bumped once the stream's
    /// new end is published (`urgent_pending` until then).
    urgent: Arc<AtomicU64>,
    urgent_pending: bool,
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
    /// `ReplState::urgent`, readable without the lock.
    urgent: Arc<AtomicU64>,
    active: AtomicBool,
    /// The AOF consumes the stream (`ReplState::aof` is set): a replica records what its
    /// master's commands did only then, since its replication stream is its master's bytes.
    aof_active: AtomicBool,
    /// The replication stream's end offset (`master_repl_offset` while there is a backlog),
    /// readable without the lock; replicas compare their position with it.
    end: Arc<AtomicU64>,
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
        let urgent = Arc::new(AtomicU64::new(0));
        Feed {
            urgent: urgent.clone(),
            active: AtomicBool::new(false),
            aof_active: AtomicBool::new(false),
            end: Arc::new(AtomicU64::new(0)),
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
                urgent,
                urgent_pending: false,
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
        self.aof_active.store(st.aof.is_some(), Ordering::Relaxed);
        self.publish_end(&mut st);
        r
    }

    /// How many times bytes that want to reach replicas at once were fed (see
    /// `ReplState::urgent`).
    #[inline]
    pub fn urgent(&self) -> u64 {
        self.urgent.load(Ordering::SeqCst)
    }

    /// Whether the AOF consumes the stream.
    #[inline]
    pub fn aof_active(&self) -> bool {
        self.aof_active.load(Ordering::Relaxed)
    }

    fn publish_end(&self, st: &mut ReplState) {
        let end = st.backlog.as_ref().map_or(st.offset, |b| b.end);
        self.end.store(end, Ordering::Release);
        REPL_BUF_EXCESS.store(st.buffer_excess() as u64, Ordering::Relaxed);
        if st.urgent_pending {
            st.urgent_pending = false;
            st.urgent.fetch_add(1, Ordering::SeqCst);
        }
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
        if poke != 0 || st.backlog.is_some() {
            self.publish_end(&mut st);
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
        let poke = match raw {
            Some(raw) => st.feed_raw(raw),
            None => 0,
        };
        self.publish_end(&mut st);
        poke
    }

    /// The AOF stream's end offset: bytes ever appended to it.
    #[inline]
    pub fn aof_end(&self) -> u64 {
        self.aof_end.load(Ordering::SeqCst)
    }
}

impl ReplState {
    /// Starts a new history here: a fresh random replid and no previous one (Redis's
    /// `changeReplicationId` + `clearReplicationId2`). A replica that asks to continue
    /// either of the old ids from now on gets a full resynchronization.
    pub fn new_history(&mut self) {
        self.replid = crate::server::random_hex(40);
        self.replid2 = "0".repeat(40);
        self.second_replid_offset = -1;
    }

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
                poke |= 1u64 << (r.conn.shard % 64);
            }
            backlog.trim(min_ref(replicas), TRIM_BLOCKS_MAX);
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
        self.urgent_pending = true;
        let mut poke = 0u64;
        self.replicas.retain(|r| !r.closed.load(Ordering::Relaxed));
        if let Some(backlog) = &mut self.backlog {
            backlog.append(data);
            backlog.trim(min_ref(&self.replicas), TRIM_BLOCKS_MAX);
            for r in self.replicas.iter() {
                poke |= 1u64 << (r.conn.shard % 64);
            }
        }
        poke
    }

    /// Starts a new history (a full sync from a master, or a fresh master): an empty backlog
    /// whose first byte will be `offset + 1`.
    pub fn reset_backlog(&mut self, size: usize) {
        self.backlog = Some(Backlog::new(size, self.offset));
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
            self.backlog = Some(Backlog::new(size, self.offset));
            // Redis starts a fresh history: the first byte of the backlog is offset+1.
            self.repl_db = None;
        }
    }

    /// The offset of the first byte the backlog holds (`repl_backlog_first_byte_offset`).
    pub fn backlog_first_byte(&self) -> u64 {
        match &self.backlog {
            Some(b) => b.first_byte(),
            None => 0,
        }
    }

    /// Registers a replica that will receive the stream after offset `from` (the fork point
    /// of its full sync, or where its partial resync continues).
    pub fn attach_replica(&mut self, sink: Arc<ReplicaSink>, from: u64) {
        sink.pos.store(from, Ordering::Release);
        self.replicas.push(sink);
    }

    /// A replica went away: it no longer holds the buffer's blocks.
    pub fn detach_replica(&mut self, sink: &Arc<ReplicaSink>) {
        self.replicas.retain(|r| !Arc::ptr_eq(r, sink));
        self.trim_backlog();
    }

    /// Frees what neither the backlog's size nor a replica still needs (after a replica left
    /// or caught up, a resize, and from the cron).
    pub fn trim_backlog(&mut self) {
        self.replicas.retain(|r| !r.closed.load(Ordering::Relaxed));
        let min = min_ref(&self.replicas);
        if let Some(b) = self.backlog.as_mut() {
            b.trim(min, TRIM_BLOCKS_MAX);
        }
    }

    /// The shared buffer's bytes beyond the backlog's own size (what replicas hold there):
    /// INFO's `mem_clients_slaves` part and what eviction does not count.
    pub fn buffer_excess(&self) -> usize {
        self.backlog
            .as_ref()
            .map_or(0, |b| b.mem().saturating_sub(b.size()))
    }

    /// The stream from offset `from` (the next byte a replica needs) if the backlog still
    /// holds it.
    pub fn backlog_from(&self, from: u64) -> Option<Vec<u8>> {
        let b = self.backlog.as_ref()?;
        if from > b.end + 1 || from < b.first_byte() {
            return None;
        }
        Some(b.tail((b.end + 1 - from) as usize))
    }

    /// Whether the backlog holds the stream from offset `from` on.
    pub fn backlog_has(&self, from: u64) -> bool {
        self.backlog
            .as_ref()
            .is_some_and(|b| from <= b.end + 1 && from >= b.first_byte())
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

/// The lowest position of the registered replicas (`u64::MAX` when none references the
/// buffer).
fn min_ref(replicas: &[Arc<ReplicaSink>]) -> u64 {
    replicas
        .iter()
        .filter(|r| !r.closed.load(Ordering::Relaxed))
        .map(|r| r.pos.load(Ordering::Acquire))
        .min()
        .unwrap_or(u64::MAX)
}

/// INFO memory's view of the shared replication buffer (Redis's `getMemoryOverheadData`):
/// with replicas attached, what exceeds `repl-backlog-size` is theirs.
pub struct ReplMemory {
    /// `mem_replication_backlog`.
    pub backlog: u64,
    /// `mem_total_replication_buffers`.
    pub total: u64,
    /// The replicas' part of `mem_clients_slaves`.
    pub replicas: u64,
}

pub fn memory(feed: &Feed) -> ReplMemory {
    feed.with(|st| {
        let Some(b) = &st.backlog else {
            return ReplMemory {
                backlog: 0,
                total: 0,
                replicas: 0,
            };
        };
        let (mem, size) = (b.mem() as u64, b.size() as u64);
        let attached = st
            .replicas
            .iter()
            .any(|r| !r.closed.load(Ordering::Relaxed));
        if attached && mem > size {
            ReplMemory {
                backlog: size,
                total: mem,
                replicas: mem - size,
            }
        } else {
            ReplMemory {
                backlog: mem,
                total: mem,
                replicas: 0,
            }
        }
    })
}

/// `ReplState::buffer_excess` as last published, for eviction (`storage::evict`).
static REPL_BUF_EXCESS: AtomicU64 = AtomicU64::new(0);

/// The shared replication buffer's memory beyond `repl-backlog-size`: replicas' share, which
/// eviction leaves out of `used_memory` as Redis's `freeMemoryGetNotCountedMemory` does.
pub fn buffer_excess() -> u64 {
    REPL_BUF_EXCESS.load(Ordering::Relaxed)
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
    let mut ops_iter = ops
        .iter()
        .filter(|o| if aof { !o.repl_only } else { !o.aof_only })
        .peekable();
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
    fn backlog_keeps_at_least_its_size_and_what_replicas_need() {
        let mut b = Backlog::new(16 * 1024, 1000);
        let data: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
        // A replica still needs everything after offset 1000: nothing is freed.
        for piece in data.chunks(1000) {
            b.append(piece);
        }
        b.trim(1000, usize::MAX);
        assert_eq!(b.histlen(), data.len());
        assert_eq!(b.first_byte(), 1001);
        assert!(b.mem() >= data.len());
        let mut out = Vec::new();
        assert_eq!(b.copy_from(1000 + 5000, 30_000, &mut out), 30_000);
        assert_eq!(out, &data[5000..35_000]);
        // It caught up: the backlog keeps between `size` and `size` plus a block.
        b.trim(1000 + data.len() as u64, usize::MAX);
        assert!(
            b.histlen() >= 16 * 1024 && b.histlen() < 32 * 1024,
            "{}",
            b.histlen()
        );
        assert_eq!(b.tail(16 * 1024), &data[data.len() - 16 * 1024..]);
        assert!(b.mem() < 48 * 1024, "{}", b.mem());
        // A big write spans blocks of at most max(16 KiB, size / 16): the backlog trims back
        // to about its size.
        b.append(&vec![7u8; 100_000]);
        b.trim(u64::MAX, usize::MAX);
        assert!(
            b.histlen() >= 16 * 1024 && b.histlen() < 32 * 1024,
            "{}",
            b.histlen()
        );
        assert!(b.tail(16 * 1024) == vec![7u8; 16 * 1024]);
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
