//! Client buffers: what a connection holds, the limits on it, and client eviction.
//!
//! What it owns: the measure of a connection's memory (Redis's `getClientMemoryUsage`, the
//! `tot-mem` of CLIENT LIST), `client-output-buffer-limit` (hard and soft limits per class:
//! normal, replica, pubsub), `maxmemory-clients` (client eviction), the query buffer's
//! resizing, and the figures CLIENT LIST, CLIENT INFO and INFO show about all of them.
//!
//! How it is measured. A connection's pending output is every reply byte not yet confirmed
//! written to its socket: the bytes queued in `Client::out` plus the whole buffer handed to
//! the I/O backend and not completed yet (`Client::sending_bytes`; an io_uring Send keeps its
//! buffer until the kernel is done with it, so the buffer is memory we hold). A replica's
//! initial RDB payload is exempt (Redis sends it from the file, outside the output buffer),
//! until the sends that carry it complete. The query buffer is `Client::inbuf`: its length,
//! minus the headers and arguments of the incomplete command already parsed (Redis moves
//! those to `argv` and trims the buffer), is `qbuf`; what it can still take without growing
//! is `qbuf-free`.
//!
//! Who calls it. The home shard's engine, which alone touches a `Client`: after each command
//! (a hard limit stops a pipeline at once, so nothing of it is sent), before handing output to
//! the backend (`check_output`, then `publish`), when a send completes, and from its cron
//! (soft limits reached without traffic, query buffer resizing, the recent-peak samples).
//! `publish` copies the figures into the client's `ClientShared::bufs` atomics, which CLIENT
//! LIST on any shard reads, and adds the change of its total to its shard's sum.
//!
//! Client eviction is global: `maxmemory-clients` bounds the sum over every shard of normal
//! and pub/sub clients' memory. Each shard keeps its own sum (written only by its thread, so
//! keeping it costs no contention); a publish that finds the global sum at or above the limit
//! runs `evict`, which picks the largest evictable clients of all shards until the sum drops
//! below it, marks them killed (CLIENT LIST no longer shows them) and asks their home shards
//! to close them. Redis evicts from its largest size bucket first; sorting by size is the same
//! order, made exact.

use super::{Client, ClientShared, Server};
use crate::config::{ClientClass, Config};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU32, AtomicU64, Ordering};

/// An argument this long is read into a buffer sized for it (Redis's `PROTO_MBULK_BIG_ARG`).
const BIG_ARG_BYTES: usize = 32 * 1024;
/// A query buffer's capacity when a connection starts, or starts over after being given back.
pub const QUERY_BUF_BYTES_INITIAL: usize = 20 * 1024;
/// A query buffer is resized only when it wastes more than this (Redis: 4 KiB).
const QUERY_BUF_WASTE_BYTES_MIN: usize = 4 * 1024;
/// Above this a query buffer shrinks to its recent peak (Redis's `PROTO_RESIZE_THRESHOLD`).
const QUERY_BUF_RESIZE_BYTES_MIN: usize = 32 * 1024;
/// A connection idle longer than this gives its query buffer's free space back.
const QUERY_BUF_IDLE_MS_MAX: u64 = 2000;
/// A written reply buffer larger than this is given back at once (Redis's
/// `PROTO_REPLY_CHUNK_BYTES`, the size of its reply list nodes).
const REPLY_CHUNK_BYTES: usize = 16 * 1024;
/// A spare reply buffer larger than this is given back when the connection is idle.
const REPLY_BUF_SPARE_BYTES_MAX: usize = 64 * 1024;
/// Output an unauthenticated client may hold (Redis: 1024 bytes).
const UNAUTHENTICATED_OUTPUT_BYTES_MAX: usize = 1024;
/// The smallest effective `maxmemory-clients`, so a bad setting cannot lock everyone out.
const EVICTION_LIMIT_BYTES_MIN: u64 = 128 * 1024;
/// Arguments walked when measuring an incomplete command; beyond, the rest counts as `qbuf`.
const PARTIAL_ARGS_WALKED_MAX: usize = 1 << 16;
/// After an eviction pass that found nothing to evict, the next waits this long.
const EVICTION_RETRY_MS: u64 = 10;
/// Seconds of INFO's `client_recent_max_*` samples (Redis's `CLIENTS_PEAK_MEM_USAGE_SLOTS`).
const PEAK_SLOTS: usize = 8;

/// Dynamic CLIENT LIST flags, as bits of `BufStats::flags`.
pub mod flag {
    pub const PUBSUB: u32 = 1;
    pub const MULTI: u32 = 2;
    pub const BLOCKED: u32 = 4;
    pub const CLOSE_AFTER_REPLY: u32 = 8;
    pub const NO_EVICT: u32 = 16;
}

/// A client's buffer figures as its home shard last published them.
pub struct BufStats {
    pub qbuf: AtomicU64,
    pub qbuf_free: AtomicU64,
    pub argv_mem: AtomicU64,
    pub multi_mem: AtomicU64,
    pub rbs: AtomicU64,
    pub rbp: AtomicU64,
    pub obl: AtomicU64,
    pub oll: AtomicU64,
    pub omem: AtomicU64,
    pub tot_mem: AtomicU64,
    pub sub: AtomicU32,
    pub psub: AtomicU32,
    pub ssub: AtomicU32,
    /// Commands queued since MULTI, or -1.
    pub multi: AtomicI64,
    pub flags: AtomicU32,
    /// Normal or pub/sub, without CLIENT NO-EVICT: `maxmemory-clients` may close it.
    pub evictable: AtomicBool,
}

impl Default for BufStats {
    fn default() -> BufStats {
        BufStats {
            qbuf: AtomicU64::new(0),
            qbuf_free: AtomicU64::new(0),
            argv_mem: AtomicU64::new(0),
            multi_mem: AtomicU64::new(0),
            rbs: AtomicU64::new(0),
            rbp: AtomicU64::new(0),
            obl: AtomicU64::new(0),
            oll: AtomicU64::new(0),
            omem: AtomicU64::new(0),
            tot_mem: AtomicU64::new(0),
            sub: AtomicU32::new(0),
            psub: AtomicU32::new(0),
            ssub: AtomicU32::new(0),
            multi: AtomicI64::new(-1),
            flags: AtomicU32::new(0),
            evictable: AtomicBool::new(false),
        }
    }
}

/// `maxmemory-clients` in bytes as the shards last saw it (0: no client eviction), and how
/// far the memory of normal and pub/sub clients is above it. Redis runs client eviction
/// before key eviction and frees the clients it picks at once, so its key eviction never
/// counts more client memory than `maxmemory-clients`. Here the clients chosen are closed by
/// their home shards a moment later, and a client's replies may land in one batch from
/// another shard: key eviction leaves the excess out (`not_counted_for_keys`) rather than
/// evict keys for memory that client eviction is giving back.
static CLIENT_LIMIT_BYTES: AtomicU64 = AtomicU64::new(0);
static CLIENTS_EXCESS_BYTES: AtomicU64 = AtomicU64::new(0);

/// Reply bytes an owner shard produced for another shard's connection and that have not
/// landed in its output yet (`Msg::Replies` in a mailbox). In Redis they would be in the
/// client's output buffer at once; here they count in the client's memory when they land,
/// and client eviction looks at them then. Until then key eviction leaves them out, so a
/// burst of replies in transit cannot evict keys ahead of the clients that asked for them.
static REPLIES_IN_TRANSIT_BYTES: AtomicU64 = AtomicU64::new(0);

/// Replies for another shard's connection leave the owner shard (`capacity`: their buffer's).
pub fn replies_sent(capacity: usize) {
    let bytes = crate::alloc::good_size(capacity) as u64;
    REPLIES_IN_TRANSIT_BYTES.fetch_add(bytes, Ordering::Relaxed);
}

/// Replies from an owner shard reached the connection's home shard.
pub fn replies_landed(capacity: usize) {
    let bytes = crate::alloc::good_size(capacity) as u64;
    let _ = REPLIES_IN_TRANSIT_BYTES.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |v| {
        Some(v.saturating_sub(bytes))
    });
}

/// Memory of clients that key eviction leaves out: what is above `maxmemory-clients`,
/// replies in transit between shards, output buffers of closed connections.
pub fn not_counted_for_keys() -> u64 {
    CLIENTS_EXCESS_BYTES.load(Ordering::Relaxed)
        + REPLIES_IN_TRANSIT_BYTES.load(Ordering::Relaxed)
        + crate::shard::io::orphan_send_bytes()
}

/// Server-wide client memory: per-shard sums, eviction state, INFO figures.
pub struct ClientsMem {
    /// Per shard: memory of normal and pub/sub clients (Redis's `stat_clients_type_memory`
    /// of both), and of replicas. Written by the shard's thread only.
    normal_bytes: Vec<AtomicU64>,
    replica_bytes: Vec<AtomicU64>,
    /// Per shard: replicas' own pending output (the stream bytes copied out of the shared
    /// buffer, an initial RDB payload), which eviction does not count.
    replica_private_bytes: Vec<AtomicU64>,
    /// INFO stats `evicted_clients`.
    pub evicted_clients: AtomicU64,
    evicting: parking_lot::Mutex<()>,
    /// No eviction pass before this Unix ms (after one that found nothing to evict).
    retry_after_ms: AtomicU64,
    /// Largest query and output buffers seen per second, in a ring of `PEAK_SLOTS` seconds.
    peak_in: [AtomicU64; PEAK_SLOTS],
    peak_out: [AtomicU64; PEAK_SLOTS],
    peak_slot_secs: AtomicU64,
    /// `DEBUG REPLYBUFFER RESIZING <0|1>`: whether idle reply buffers are given back.
    pub reply_buffer_resizing: AtomicBool,
}

impl ClientsMem {
    pub fn new(nshards: usize) -> ClientsMem {
        ClientsMem {
            normal_bytes: (0..nshards).map(|_| AtomicU64::new(0)).collect(),
            replica_bytes: (0..nshards).map(|_| AtomicU64::new(0)).collect(),
            replica_private_bytes: (0..nshards).map(|_| AtomicU64::new(0)).collect(),
            evicted_clients: AtomicU64::new(0),
            evicting: parking_lot::Mutex::new(()),
            retry_after_ms: AtomicU64::new(0),
            peak_in: Default::default(),
            peak_out: Default::default(),
            peak_slot_secs: AtomicU64::new(0),
            reply_buffer_resizing: AtomicBool::new(true),
        }
    }

    /// INFO memory `mem_clients_normal`: normal and pub/sub clients.
    pub fn normal_total(&self) -> u64 {
        self.normal_bytes
            .iter()
            .map(|a| a.load(Ordering::Relaxed))
            .sum()
    }

    /// INFO memory `mem_clients_slaves`.
    pub fn replica_total(&self) -> u64 {
        self.replica_bytes
            .iter()
            .map(|a| a.load(Ordering::Relaxed))
            .sum()
    }

    /// INFO clients `client_recent_max_input_buffer` and `client_recent_max_output_buffer`.
    pub fn recent_max(&self) -> (u64, u64) {
        let max = |a: &[AtomicU64; PEAK_SLOTS]| {
            a.iter()
                .map(|v| v.load(Ordering::Relaxed))
                .max()
                .unwrap_or(0)
        };
        (max(&self.peak_in), max(&self.peak_out))
    }

    fn sample_peaks(&self, now_ms: u64, input: u64, output: u64) {
        let secs = now_ms / 1000;
        let slot = (secs as usize) % PEAK_SLOTS;
        if self.peak_slot_secs.swap(secs, Ordering::Relaxed) != secs {
            // A new second: its slot starts over (racy between shards, harmlessly).
            self.peak_in[slot].store(0, Ordering::Relaxed);
            self.peak_out[slot].store(0, Ordering::Relaxed);
        }
        self.peak_in[slot].fetch_max(input, Ordering::Relaxed);
        self.peak_out[slot].fetch_max(output, Ordering::Relaxed);
    }
}

/// The `client-output-buffer-limit` class of a client (masters and monitors count as normal).
pub fn class(c: &Client) -> ClientClass {
    if c.replica.is_some() {
        ClientClass::Replica
    } else if c.subscriptions() > 0 && !c.monitor {
        ClientClass::Pubsub
    } else {
        ClientClass::Normal
    }
}

/// Reply bytes not yet confirmed written to the socket.
pub fn pending_output(c: &Client) -> usize {
    c.out.len() + c.sending_bytes
}

/// A send completed: its bytes are written (and any RDB payload they carried).
pub fn on_send_done(c: &mut Client) {
    c.obuf_exempt_bytes = c.obuf_exempt_bytes.saturating_sub(c.sending_bytes);
    c.sending_bytes = 0;
    c.sending_alloc = 0;
    // A buffer that carried more than a reply chunk is given back once written, as Redis
    // frees the reply list's nodes after writing them: kept, it would count in the client's
    // memory and in used_memory (a burst of tracking invalidations to many clients, sent at
    // once, would otherwise feed eviction until the keyspace is empty).
    if c.spare.capacity() > REPLY_CHUNK_BYTES {
        c.spare = Vec::new();
    }
    if c.out.is_empty() {
        crate::tracking::unsent_released(c);
    }
}

/// The pending output the limits and `omem` count (a replica's RDB payload excluded).
pub fn counted_output(c: &Client) -> usize {
    // A replica's share of the shared replication buffer counts as its output.
    let shared = c.replica.as_ref().map_or(0, |s| s.lag() as usize);
    pending_output(c).saturating_sub(c.obuf_exempt_bytes) + shared
}

/// The hard limit in bytes that applies to a client now (`usize::MAX`: none).
fn hard_limit(c: &Client, cfg: &Config) -> usize {
    if !c.authenticated && crate::acl::auth_required() {
        return UNAUTHENTICATED_OUTPUT_BYTES_MAX;
    }
    let cls = class(c);
    let l = cfg.client_output_buffer_limit[cls as usize];
    let mut hard = l.hard_bytes;
    if cls == ClientClass::Replica && hard != 0 {
        // A replica's limit is never below the backlog (Redis ignores a smaller setting).
        hard = hard.max(cfg.repl_backlog_size);
    }
    if hard == 0 {
        usize::MAX
    } else {
        usize::try_from(hard).unwrap_or(usize::MAX)
    }
}

/// How many more reply bytes a command may write into `Client::out` before the client's hard
/// limit closes it: the reply writer's `limit_bytes`, which lets a command producing a huge
/// reply stop early.
pub fn reply_room(c: &Client, cfg: &Config) -> usize {
    let hard = hard_limit(c, cfg);
    if hard == usize::MAX {
        return usize::MAX;
    }
    hard.saturating_add(c.obuf_exempt_bytes)
        .saturating_sub(c.sending_bytes)
}

/// Whether to keep a client's replies until its in-flight hops are back: under an output
/// limit, a pipeline's replies are judged together, as Redis judges the replies of one read
/// before writing any (so a pipeline that overflows gets none). Without a limit (the default
/// for normal clients) replies leave as soon as they are ready.
pub fn hold_output(c: &Client, cfg: &Config) -> bool {
    c.inflight > 0 && !c.out.is_empty() && hard_limit(c, cfg) != usize::MAX
}

/// Waits (a few milliseconds at most) until every other shard has run a whole loop turn, so
/// that what its connections received before now is parsed and published: CLIENT LIST then
/// shows the query buffers a client filled before asking, as Redis's single thread would.
pub fn catch_up(server: &Server, me: usize) {
    const WAIT_MS_MAX: u64 = 5;
    let marks: Vec<(usize, u64)> = server
        .shards
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != me)
        .map(|(i, h)| (i, h.turns.load(Ordering::Acquire)))
        .collect();
    let deadline = std::time::Instant::now() + std::time::Duration::from_millis(WAIT_MS_MAX);
    loop {
        // Two more turns: the second started after the mark, so its poll saw what arrived
        // before. An idle shard sleeps between turns, so it is woken for each.
        let mut behind = false;
        for (i, m) in &marks {
            if let Some(h) = server.shards.get(*i) {
                if h.turns.load(Ordering::Acquire) < m + 2 {
                    behind = true;
                    h.wake();
                }
            }
        }
        if !behind || std::time::Instant::now() >= deadline {
            return;
        }
        std::thread::sleep(std::time::Duration::from_micros(20));
    }
}

/// Whether the client's output reached its hard limit (checked after every command, so a
/// pipeline stops at once and none of its replies is sent).
pub fn over_hard_limit(c: &Client, cfg: &Config) -> bool {
    let used = counted_output(c);
    used > 0 && used >= hard_limit(c, cfg)
}

/// Checks the hard and soft limits (Redis's `checkClientOutputBufferLimits`), keeping the
/// soft limit's timer. True: the client must be closed.
pub fn check_output(c: &mut Client, cfg: &Config, now_ms: u64) -> bool {
    let used = counted_output(c);
    if used == 0 && c.replica.is_none() {
        c.obuf_soft_since_ms = 0;
        return false;
    }
    if used >= hard_limit(c, cfg) {
        return true;
    }
    let l = cfg.client_output_buffer_limit[class(c) as usize];
    if l.soft_bytes == 0 || (used as u64) < l.soft_bytes {
        c.obuf_soft_since_ms = 0;
        return false;
    }
    if c.obuf_soft_since_ms == 0 {
        c.obuf_soft_since_ms = now_ms.max(1);
        return false;
    }
    now_ms.saturating_sub(c.obuf_soft_since_ms) > l.soft_secs.saturating_mul(1000)
}

/// Logs a close for the output buffer limits, as Redis does (`scheduled`: from the write
/// path, Redis's asynchronous close; otherwise from the cron).
pub fn log_obuf_close(c: &Client, now_ms: u64, scheduled: bool) {
    let info = crate::commands::connection::client_line(&c.shared, now_ms, None);
    if scheduled {
        crate::log_warning!(
            "Client {} scheduled to be closed ASAP for overcoming of output buffer limits.",
            info
        );
    } else {
        crate::log_warning!(
            "Client {} closed for overcoming of output buffer limits.",
            info
        );
    }
}

/// What an incomplete multibulk command at the head of a query buffer already parsed: the
/// bytes of its headers and complete arguments, and those arguments' length and count.
#[derive(Clone, Copy, Default, Debug, PartialEq, Eq)]
pub struct Partial {
    pub consumed: usize,
    pub argv_bytes: usize,
    pub argc: usize,
    /// When the buffer ends inside an argument's payload: the buffer length that completes
    /// that argument (0 otherwise).
    pub arg_end: usize,
}

/// Measures the incomplete command at the head of `buf` (nothing for an inline command or a
/// complete one, which Redis would not hold in `argv` between reads).
pub fn partial_command(buf: &[u8]) -> Partial {
    let none = Partial::default();
    if buf.first() != Some(&b'*') {
        return none;
    }
    let Some((count, mut pos)) = header(buf, 0) else {
        return none;
    };
    let mut p = Partial {
        consumed: pos,
        ..none
    };
    let count = usize::try_from(count).unwrap_or(0);
    for _ in 0..count.min(PARTIAL_ARGS_WALKED_MAX) {
        if buf.get(pos) != Some(&b'$') {
            return p;
        }
        let Some((len, data)) = header(buf, pos) else {
            return p;
        };
        let Ok(len) = usize::try_from(len) else {
            return none;
        };
        p.consumed = data;
        let end = data.saturating_add(len).saturating_add(2);
        if end > buf.len() {
            p.arg_end = end;
            return p;
        }
        pos = end;
        p.consumed = end;
        p.argv_bytes += len;
        p.argc += 1;
    }
    if p.argc == count {
        // Complete: it runs before the next read, so nothing of it is held between reads.
        return none;
    }
    p
}

/// A big argument is arriving (Redis's `PROTO_MBULK_BIG_ARG`): the query buffer is given
/// exactly the room it needs, as Redis sizes its buffer for a big bulk, rather than doubling
/// (which would hold up to twice the argument, and count so in `tot-mem`).
pub fn prepare_big_arg(c: &mut Client) {
    if c.inbuf.is_empty() {
        if c.inbuf.capacity() == 0 && c.qbuf_peak >= BIG_ARG_BYTES {
            // An exactly sized buffer was used up by a big argument: like Redis, expect
            // another and keep room for it (the cron's resize gives it back if none comes).
            replace_query_buffer(c, bytes::BytesMut::with_capacity(c.qbuf_peak));
            c.inbuf_for_big_arg = true;
        }
        return;
    }
    let p = partial_command(&c.inbuf);
    if p.arg_end >= p.consumed + BIG_ARG_BYTES && c.inbuf.capacity() < p.arg_end {
        let mut b = bytes::BytesMut::with_capacity(p.arg_end);
        b.extend_from_slice(&c.inbuf);
        replace_query_buffer(c, b);
        c.inbuf_for_big_arg = true;
    }
}

/// Installs a new query buffer, recording its allocation.
fn replace_query_buffer(c: &mut Client, b: bytes::BytesMut) {
    c.inbuf_alloc = b.capacity();
    c.inbuf = b;
    c.inbuf_for_big_arg = false;
}

/// Appends received bytes to a client's query buffer. The buffer grows here, not inside
/// `BytesMut`, so that its allocation is known (`Client::inbuf_alloc`): `BytesMut::capacity`
/// counts only the room after the commands already split off, while their bytes stay part of
/// the allocation until it is reused, so `tot-mem`, client eviction and `used_memory` would
/// disagree by up to the whole buffer.
/// True when the buffer grew.
pub fn append_input(c: &mut Client, data: &[u8]) -> bool {
    let len = c.inbuf.len();
    let grew = c.inbuf.capacity() - len < data.len();
    if grew {
        let need = len + data.len();
        // A big argument on its way gets a buffer sized for it, as Redis does (and keeps once
        // it ran, expecting another: `shrink_drained_query_buffer` leaves it); anything else
        // doubles.
        let p = partial_command(&c.inbuf);
        let big_arg = p.arg_end >= p.consumed + BIG_ARG_BYTES;
        let cap = if big_arg {
            need.max(p.arg_end)
        } else if need > c.inbuf_alloc {
            need.max(c.inbuf_alloc.saturating_mul(2))
        } else {
            c.inbuf_alloc
        }
        .max(QUERY_BUF_BYTES_INITIAL);
        let mut b = bytes::BytesMut::with_capacity(cap);
        b.extend_from_slice(&c.inbuf);
        replace_query_buffer(c, b);
        c.inbuf_for_big_arg = big_arg;
    }
    c.inbuf.extend_from_slice(data);
    grew
}

/// A query buffer grew while input arrived: under `maxmemory-clients`, the client's memory is
/// judged at once, before its commands run (Redis updates a client's memory after each read
/// and evicts before the next command), since a burst the turn then runs and drains would
/// otherwise never be seen at its peak.
pub fn input_grew(server: &Server, shard: usize, c: &mut Client, cfg: &Config, now_ms: u64) {
    if c.inbuf_alloc <= QUERY_BUF_BYTES_INITIAL || eviction_limit(cfg) == 0 {
        return;
    }
    if publish(server, shard, c, cfg) {
        evict(server, cfg, shard, now_ms);
    }
}

/// After a turn's commands ran: a drained query buffer that grew past Redis's resize
/// threshold while a pipeline arrived faster than it ran goes back to the initial size at
/// once (Redis reads 16 KiB at a time and runs what it read, so its buffer never holds a
/// whole burst). A buffer sized for a big argument stays: Redis expects another one.
pub fn shrink_drained_query_buffer(c: &mut Client) {
    if c.inbuf.is_empty() && c.inbuf_alloc > QUERY_BUF_RESIZE_BYTES_MIN && !c.inbuf_for_big_arg {
        replace_query_buffer(c, bytes::BytesMut::with_capacity(QUERY_BUF_BYTES_INITIAL));
    }
}

/// A `*N` or `$N` header line starting at `at`: its number and where the line after it starts.
fn header(buf: &[u8], at: usize) -> Option<(i64, usize)> {
    let rest = buf.get(at + 1..)?;
    let end = memchr::memchr(b'\r', rest.get(..rest.len().min(32))?)?;
    let n = std::str::from_utf8(rest.get(..end)?).ok()?.parse().ok()?;
    Some((n, at + 1 + end + 2))
}

/// A client's figures, computed on its home shard.
pub struct Figures {
    pub qbuf: usize,
    pub qbuf_free: usize,
    pub argv_mem: usize,
    pub multi_mem: usize,
    pub rbs: usize,
    pub obl: usize,
    pub oll: usize,
    pub omem: usize,
    pub tot_mem: usize,
}

/// Bytes of a client's own structures, counted once per client.
const CLIENT_STRUCT_BYTES: usize =
    std::mem::size_of::<Client>() + std::mem::size_of::<ClientShared>();

/// Measures a client. `current`: the arguments of the command it is running (its own CLIENT
/// LIST / INFO line), whose frame was split off the query buffer but is still held.
pub fn figures(c: &Client, current: Option<&[bytes::Bytes]>) -> Figures {
    let partial = if c.inbuf.is_empty() {
        Partial::default()
    } else {
        partial_command(&c.inbuf)
    };
    let (cur_frame, cur_argv, cur_argc) = match current {
        Some(args) => {
            let data: usize = args.iter().map(|a| a.len()).sum();
            let frame = header_len(args.len())
                + args
                    .iter()
                    .map(|a| header_len(a.len()) + a.len() + 2)
                    .sum::<usize>();
            (frame, data, args.len())
        }
        None => (0, 0, 0),
    };
    let qbuf = c.inbuf.len() - partial.consumed + cur_frame;
    let qbuf_free = query_buf_alloc(c) - c.inbuf.len();
    let argv_mem = partial.argv_bytes + cur_argv;
    let (multi_mem, multi_overhead) = match &c.multi {
        Some(q) => {
            let args: usize = q.iter().flat_map(|e| e.args.iter()).map(|a| a.len()).sum();
            let n: usize = q.iter().map(|e| e.args.len()).sum();
            (
                args,
                q.capacity() * std::mem::size_of::<super::client::Queued>()
                    + n * std::mem::size_of::<bytes::Bytes>(),
            )
        }
        None => (0, 0),
    };
    let rbs = (c.out.capacity() - c.out.len()) + c.spare.capacity();
    // The buffer being sent holds its whole allocation, not only the bytes to send; each
    // buffer holds what the allocator hands out for its capacity (its size class), as
    // `used_memory` counts it.
    let slack = |cap: usize| crate::alloc::good_size(cap).saturating_sub(cap);
    let sending_slack = c.sending_alloc.saturating_sub(c.sending_bytes)
        + slack(c.sending_alloc)
        + slack(c.out.capacity())
        + slack(c.spare.capacity());
    let omem = counted_output(c);
    let subs = (c.subs.capacity() + c.psubs.capacity() + c.ssubs.capacity())
        * std::mem::size_of::<bytes::Bytes>();
    let watched = c.watched.capacity() * std::mem::size_of_val(&c.watched.first());
    let tot_mem = omem
        + query_buf_alloc(c)
        + rbs
        + sending_slack
        + cur_frame
        + cur_argc * std::mem::size_of::<bytes::Bytes>()
        + multi_mem
        + multi_overhead
        + subs
        + watched
        + crate::tracking::client_memory_bytes(&c.shared)
        + CLIENT_STRUCT_BYTES;
    Figures {
        qbuf,
        qbuf_free,
        argv_mem,
        multi_mem,
        rbs,
        obl: c.out.len(),
        oll: usize::from(c.sending_bytes > 0),
        omem,
        tot_mem,
    }
}

/// Bytes the query buffer's allocation holds (at least what `BytesMut` reports).
fn query_buf_alloc(c: &Client) -> usize {
    c.inbuf_alloc.max(c.inbuf.capacity())
}

/// Bytes of a `*N\r\n` or `$N\r\n` header.
fn header_len(n: usize) -> usize {
    let mut digits = 1;
    let mut v = n;
    while v >= 10 {
        v /= 10;
        digits += 1;
    }
    digits + 3
}

/// Stores a client's figures for other threads, and its memory in its shard's sum. Returns
/// whether client eviction should run (the global sum reached `maxmemory-clients`).
pub fn publish(server: &Server, shard: usize, c: &mut Client, cfg: &Config) -> bool {
    let limit = eviction_limit(cfg);
    if CLIENT_LIMIT_BYTES.load(Ordering::Relaxed) != limit {
        CLIENT_LIMIT_BYTES.store(limit, Ordering::Relaxed);
        update_clients_excess(&server.client_mem);
    }
    let f = figures(c, None);
    let s = &c.shared.bufs;
    s.qbuf.store(f.qbuf as u64, Ordering::Relaxed);
    s.qbuf_free.store(f.qbuf_free as u64, Ordering::Relaxed);
    s.argv_mem.store(f.argv_mem as u64, Ordering::Relaxed);
    s.multi_mem.store(f.multi_mem as u64, Ordering::Relaxed);
    s.rbs.store(f.rbs as u64, Ordering::Relaxed);
    s.rbp.store(c.reply_peak_bytes as u64, Ordering::Relaxed);
    s.obl.store(f.obl as u64, Ordering::Relaxed);
    s.oll.store(f.oll as u64, Ordering::Relaxed);
    s.omem.store(f.omem as u64, Ordering::Relaxed);
    s.tot_mem.store(f.tot_mem as u64, Ordering::Relaxed);
    s.sub.store(c.subs.len() as u32, Ordering::Relaxed);
    s.psub.store(c.psubs.len() as u32, Ordering::Relaxed);
    s.ssub.store(c.ssubs.len() as u32, Ordering::Relaxed);
    s.multi.store(
        c.multi.as_ref().map_or(-1, |q| q.len() as i64),
        Ordering::Relaxed,
    );
    let mut flags = 0;
    if c.subscriptions() > 0 {
        flags |= flag::PUBSUB;
    }
    if c.multi.is_some() {
        flags |= flag::MULTI;
    }
    if c.blocked.is_some() {
        flags |= flag::BLOCKED;
    }
    if c.close_after_reply {
        flags |= flag::CLOSE_AFTER_REPLY;
    }
    if c.no_evict {
        flags |= flag::NO_EVICT;
    }
    s.flags.store(flags, Ordering::Relaxed);
    let cls = class(c);
    let counted_replica = cls == ClientClass::Replica;
    s.evictable
        .store(!counted_replica && !c.no_evict, Ordering::Relaxed);
    let counted = Counted {
        total: f.tot_mem as u64,
        replica: counted_replica,
        private_output: if counted_replica {
            pending_output(c) as u64
        } else {
            0
        },
    };
    account(server, shard, c, counted);
    c.reply_peak_bytes = c.reply_peak_bytes.max(pending_output(c));
    eviction_due(server, cfg)
}

/// What a client's memory adds to its shard's sums.
#[derive(Clone, Copy, Default, Debug, PartialEq, Eq)]
pub struct Counted {
    /// Its `tot-mem`.
    pub total: u64,
    /// Counted among replicas (`mem_clients_slaves`), not normal clients.
    pub replica: bool,
    /// A replica's pending output outside the shared replication buffer (the shared part
    /// is counted once, by the feed: `replication::feed::buffer_excess`).
    pub private_output: u64,
}

/// Moves the client's memory in its shard's sums from what was counted to `now`.
fn account(server: &Server, shard: usize, c: &mut Client, now: Counted) {
    let cm = &server.client_mem;
    let (Some(normal), Some(replicas), Some(private)) = (
        cm.normal_bytes.get(shard),
        cm.replica_bytes.get(shard),
        cm.replica_private_bytes.get(shard),
    ) else {
        return;
    };
    let old = c.mem_counted;
    if old == now {
        return;
    }
    // Only this shard's thread writes its sums: a load and a store, no read-modify-write.
    let sub = |a: &AtomicU64, v: u64| {
        a.store(
            a.load(Ordering::Relaxed).saturating_sub(v),
            Ordering::Relaxed,
        )
    };
    let add = |a: &AtomicU64, v: u64| {
        a.store(
            a.load(Ordering::Relaxed).saturating_add(v),
            Ordering::Relaxed,
        )
    };
    sub(if old.replica { replicas } else { normal }, old.total);
    add(if now.replica { replicas } else { normal }, now.total);
    c.mem_counted = now;
    update_clients_excess(cm);
    if old.private_output != now.private_output {
        sub(private, old.private_output);
        add(private, now.private_output);
        let all = cm
            .replica_private_bytes
            .iter()
            .map(|a| a.load(Ordering::Relaxed))
            .sum();
        crate::storage::evict::set_not_counted(all);
    }
}

/// Keeps `CLIENTS_EXCESS_BYTES` current (a few loads when client eviction is on).
fn update_clients_excess(cm: &ClientsMem) {
    let limit = CLIENT_LIMIT_BYTES.load(Ordering::Relaxed);
    let excess = if limit == 0 {
        0
    } else {
        cm.normal_total().saturating_sub(limit)
    };
    if CLIENTS_EXCESS_BYTES.load(Ordering::Relaxed) != excess {
        CLIENTS_EXCESS_BYTES.store(excess, Ordering::Relaxed);
    }
}

/// Removes a closing client's memory from its shard's sums.
pub fn forget(server: &Server, shard: usize, c: &mut Client) {
    crate::tracking::unsent_released(c);
    let replica = c.mem_counted.replica;
    account(
        server,
        shard,
        c,
        Counted {
            replica,
            ..Counted::default()
        },
    );
}

/// `maxmemory-clients` in bytes (0: no client eviction), as Redis's `getClientEvictionLimit`.
pub fn eviction_limit(cfg: &Config) -> u64 {
    let v = cfg.maxmemory_clients;
    let bytes = if v < 0 && cfg.maxmemory > 0 {
        (cfg.maxmemory as f64 * (-v) as f64 / 100.0) as u64
    } else if v > 0 {
        v as u64
    } else {
        return 0;
    };
    bytes.max(EVICTION_LIMIT_BYTES_MIN)
}

/// Whether the clients' memory reached the limit (a few loads when the limit is set).
pub fn eviction_due(server: &Server, cfg: &Config) -> bool {
    let limit = eviction_limit(cfg);
    limit != 0 && server.client_mem.normal_total() >= limit
}

/// Client eviction (Redis's `evictClients`): closes the largest evictable clients of every
/// shard until the memory of normal and pub/sub clients is below `maxmemory-clients`.
/// `from`: the calling shard (its queue in the victims' mailboxes).
pub fn evict(server: &Server, cfg: &Config, from: usize, now_ms: u64) {
    let limit = eviction_limit(cfg);
    let cm = &server.client_mem;
    if limit == 0 || cm.retry_after_ms.load(Ordering::Relaxed) > now_ms {
        return;
    }
    let Some(_pass) = cm.evicting.try_lock() else {
        return;
    };
    let mut total = cm.normal_total();
    let mut candidates = Vec::new();
    for c in server.client_list() {
        let mem = c.bufs.tot_mem.load(Ordering::Relaxed);
        if c.kill.load(Ordering::Relaxed) {
            // Already on its way out: its memory is as good as given back.
            total = total.saturating_sub(mem);
        } else if c.bufs.evictable.load(Ordering::Relaxed) {
            candidates.push((mem, c));
        }
    }
    candidates.sort_by_key(|c| std::cmp::Reverse(c.0));
    let mut evicted = 0;
    for (mem, c) in candidates {
        if total < limit {
            break;
        }
        let info = crate::commands::connection::client_line(&c, now_ms, None);
        crate::log_notice!("Evicting client: {}", info);
        c.kill.store(true, Ordering::SeqCst);
        if let Some(h) = server.shards.get(c.shard) {
            let msg = crate::shard::mesh::Msg::Kill {
                token: c.token,
                gen: c.gen,
            };
            if !h.mailbox.post(from, &mut vec![msg]) {
                // A full queue: the shard's cron closes killed clients anyway.
                h.wake();
            }
        }
        cm.evicted_clients.fetch_add(1, Ordering::Relaxed);
        total = total.saturating_sub(mem);
        evicted += 1;
    }
    if total >= limit {
        if evicted == 0 {
            cm.retry_after_ms
                .store(now_ms + EVICTION_RETRY_MS, Ordering::Relaxed);
        }
        crate::log_warning!("Over client maxmemory after evicting all evictable clients");
    }
}

/// The cron's care of one client: query buffer resizing (once a second), giving back a large
/// idle reply buffer, the recent-peak samples. Returns whether the soft or hard output limit
/// closes it.
pub fn cron(server: &Server, c: &mut Client, cfg: &Config, now_ms: u64, resize: bool) -> bool {
    let idle_ms = now_ms.saturating_sub(c.shared.last_interaction_ms.load(Ordering::Relaxed));
    if resize {
        resize_query_buffer(c, idle_ms);
        if server
            .client_mem
            .reply_buffer_resizing
            .load(Ordering::Relaxed)
            && idle_ms > QUERY_BUF_IDLE_MS_MAX
            && c.spare.capacity() > REPLY_BUF_SPARE_BYTES_MAX
        {
            c.spare = Vec::new();
        }
        c.reply_peak_bytes = pending_output(c);
    }
    let input = query_buf_alloc(c) as u64;
    server
        .client_mem
        .sample_peaks(now_ms, input, counted_output(c) as u64);
    check_output(c, cfg, now_ms)
}

/// Redis's `clientsCronResizeQueryBuffer`: an idle connection's buffer shrinks to what it
/// holds; a busy one's, when more than twice its recent peak, to that peak.
fn resize_query_buffer(c: &mut Client, idle_ms: u64) {
    let cap = query_buf_alloc(c);
    let len = c.inbuf.len();
    if cap - len > QUERY_BUF_WASTE_BYTES_MIN {
        let target = if idle_ms > QUERY_BUF_IDLE_MS_MAX {
            Some(len)
        } else if cap > QUERY_BUF_RESIZE_BYTES_MIN && cap / 2 > c.qbuf_peak {
            Some(len.max(c.qbuf_peak))
        } else {
            None
        };
        if let Some(mut target) = target {
            // Never below the argument on its way (Redis: `bulklen + 2`).
            if len > 0 {
                target = target.max(partial_command(&c.inbuf).arg_end).min(cap);
            }
            let mut b = bytes::BytesMut::with_capacity(target);
            b.extend_from_slice(&c.inbuf);
            replace_query_buffer(c, b);
        }
    }
    c.qbuf_peak = c.inbuf.len();
}

/// The buffer part of a CLIENT LIST line.
pub struct Snapshot {
    pub figures: [u64; 10],
    pub subs: [u32; 3],
    pub multi: i64,
    pub flags: u32,
}

impl Snapshot {
    /// What the home shard last published.
    pub fn published(s: &BufStats) -> Snapshot {
        let l = |a: &AtomicU64| a.load(Ordering::Relaxed);
        Snapshot {
            figures: [
                l(&s.qbuf),
                l(&s.qbuf_free),
                l(&s.argv_mem),
                l(&s.multi_mem),
                l(&s.rbs),
                l(&s.rbp),
                l(&s.obl),
                l(&s.oll),
                l(&s.omem),
                l(&s.tot_mem),
            ],
            subs: [
                s.sub.load(Ordering::Relaxed),
                s.psub.load(Ordering::Relaxed),
                s.ssub.load(Ordering::Relaxed),
            ],
            multi: s.multi.load(Ordering::Relaxed),
            flags: s.flags.load(Ordering::Relaxed),
        }
    }

    /// A client measured now, on its home shard, while it runs `args` (its own line).
    pub fn live(c: &Client, args: &[bytes::Bytes]) -> Snapshot {
        let f = figures(c, Some(args));
        let published = c.shared.bufs.flags.load(Ordering::Relaxed);
        let mut flags = published & !(flag::PUBSUB | flag::MULTI | flag::NO_EVICT);
        if c.subscriptions() > 0 {
            flags |= flag::PUBSUB;
        }
        if c.multi.is_some() {
            flags |= flag::MULTI;
        }
        if c.no_evict {
            flags |= flag::NO_EVICT;
        }
        Snapshot {
            figures: [
                f.qbuf as u64,
                f.qbuf_free as u64,
                f.argv_mem as u64,
                f.multi_mem as u64,
                f.rbs as u64,
                c.reply_peak_bytes as u64,
                f.obl as u64,
                f.oll as u64,
                f.omem as u64,
                f.tot_mem as u64,
            ],
            subs: [
                c.subs.len() as u32,
                c.psubs.len() as u32,
                c.ssubs.len() as u32,
            ],
            multi: c.multi.as_ref().map_or(-1, |q| q.len() as i64),
            flags,
        }
    }

    /// CLIENT LIST `flags=`: the fixed role flag (`S`, `O`, `M`), then the dynamic ones in
    /// Redis's order; `N` when there is none.
    pub fn flags_text(&self, role: &str, tracking: &str, unix: bool) -> String {
        let mut f: String = role.chars().filter(|&ch| ch != 'N').collect();
        for (bit, ch) in [
            (flag::PUBSUB, 'P'),
            (flag::MULTI, 'x'),
            (flag::BLOCKED, 'b'),
        ] {
            if self.flags & bit != 0 {
                f.push(ch);
            }
        }
        // `t`, `R`, `B`: tracking, broken redirect, broadcast mode.
        f.push_str(tracking);
        if self.flags & flag::CLOSE_AFTER_REPLY != 0 {
            f.push('c');
        }
        if unix {
            f.push('U');
        }
        if self.flags & flag::NO_EVICT != 0 {
            f.push('e');
        }
        if f.is_empty() {
            f.push('N');
        }
        f
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partial_big_argument_counts_only_its_bytes() {
        let mut b = b"*1\r\n$10\r\nabc".to_vec();
        let p = partial_command(&b);
        assert_eq!(p.consumed, 9);
        assert_eq!(b.len() - p.consumed, 3);
        b.extend_from_slice(b"defghij\r\n");
        assert_eq!(partial_command(&b), Partial::default(), "complete command");
    }

    #[test]
    fn partial_counts_complete_arguments() {
        let b = b"*3\r\n$3\r\nset\r\n$1\r\nk\r\n$5\r\nva";
        let p = partial_command(b);
        assert_eq!(p.argc, 2);
        assert_eq!(p.argv_bytes, 4);
        assert_eq!(b.len() - p.consumed, 2);
    }

    #[test]
    fn partial_ignores_inline_and_garbage() {
        assert_eq!(partial_command(b"PING"), Partial::default());
        assert_eq!(partial_command(b"*x\r\n"), Partial::default());
        assert_eq!(partial_command(b"*2\r\n$-5\r\n"), Partial::default());
        assert_eq!(partial_command(b"*"), Partial::default());
    }

    #[test]
    fn header_lengths() {
        assert_eq!(header_len(2), 4);
        assert_eq!(header_len(10), 5);
        assert_eq!(header_len(1_000_000), 10);
    }
}
