//! A connection's state. `Client` lives on the connection's home shard thread and is touched
//! by nothing else; `ClientShared` is the small part other threads may read or request
//! (CLIENT LIST / KILL from a connection on another shard).

use bytes::BytesMut;
use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

/// What other threads can see of a client.
pub struct ClientShared {
    pub id: u64,
    pub shard: usize,
    /// The connection's token on its home shard (with `shard`, names it in hop messages).
    pub token: u32,
    pub addr: String,
    pub laddr: String,
    /// Connected over the `unixsocket` (flag `U`, counts as local).
    pub unix: bool,
    pub fd: i32,
    pub created_ms: u64,
    pub name: Mutex<Vec<u8>>,
    pub lib_name: Mutex<Vec<u8>>,
    pub lib_ver: Mutex<Vec<u8>>,
    pub db: AtomicUsize,
    pub last_interaction_ms: AtomicU64,
    /// The last command's table entry (null before the first), for CLIENT LIST's `cmd=`.
    pub last_cmd: AtomicPtr<crate::commands::Cmd>,
    pub proto: AtomicUsize,
    /// The connection's generation on its home shard (with `token`, names it in messages).
    pub gen: u32,
    /// Buffer figures published by the home shard (CLIENT LIST, client eviction).
    pub bufs: super::buffers::BufStats,
    pub flags: Mutex<String>,
    /// Set by CLIENT KILL from any thread; the home shard closes the connection.
    pub kill: AtomicBool,
    /// The waiter while the client is blocked (CLIENT UNBLOCK claims it from any thread).
    pub waiter: Mutex<Option<Arc<crate::storage::blocking::Waiter>>>,
    /// Client-side caching state and pending invalidations (see `tracking`).
    pub tracking: crate::tracking::Handle,
}

impl ClientShared {
    /// The last command's full name (`NULL` before the first).
    pub fn last_cmd_name(&self) -> &'static str {
        let p = self.last_cmd.load(Ordering::Relaxed);
        // SAFETY: the pointer is null or was taken from a `&'static Cmd` of the command table.
        match unsafe { p.as_ref() } {
            Some(c) => crate::server::dispatch::cmd_full_name(c),
            None => "NULL",
        }
    }

    pub fn set_last_cmd(&self, cmd: &'static crate::commands::Cmd) {
        self.last_cmd
            .store(cmd as *const _ as *mut _, Ordering::Relaxed);
    }

    pub fn name(&self) -> Vec<u8> {
        self.name.lock().map(|g| g.clone()).unwrap_or_default()
    }
}

/// Per-connection state on its home shard.
pub struct Client {
    pub token: u32,
    pub gen: u32,
    pub fd: i32,
    pub shared: Arc<ClientShared>,
    pub inbuf: BytesMut,
    /// Bytes of `inbuf`'s allocation (`server::buffers::append_input` grows it).
    pub inbuf_alloc: usize,
    /// `inbuf` was sized for a big argument (kept when drained, as Redis does).
    pub inbuf_for_big_arg: bool,
    /// Invalidation bytes put in `out` and not sent yet (`tracking::pending_bytes`).
    pub tracking_unsent: usize,
    /// Replies not yet handed to the I/O backend.
    pub out: Vec<u8>,
    /// A buffer returned by the backend after a send, reused for the next one.
    pub spare: Vec<u8>,
    pub sending: bool,
    /// Bytes of the buffer handed to the backend and not completed yet (pending output).
    pub sending_bytes: usize,
    /// The allocation of that buffer (at least `sending_bytes`).
    pub sending_alloc: usize,
    /// Leading output bytes exempt from the output limits: a replica's RDB payload.
    pub obuf_exempt_bytes: usize,
    /// Unix ms since the output stays above the soft limit (0: below it).
    pub obuf_soft_since_ms: u64,
    /// The largest query buffer length since the last resize check.
    pub qbuf_peak: usize,
    /// The largest pending output since the last resize check (CLIENT LIST `rbp`).
    pub reply_peak_bytes: usize,
    /// Memory counted in the shard's sums, and whether as a replica (`server::buffers`).
    pub mem_counted: super::buffers::Counted,
    pub proto: u8,
    pub db: usize,
    pub authenticated: bool,
    /// The user's permissions when restricted; None: it may run everything (`acl`).
    pub acl: Option<Arc<crate::acl::User>>,
    /// Commands sent to another shard whose replies have not come back.
    pub inflight: usize,
    pub inflight_shard: usize,
    /// A parsed command waiting for in-flight replies before it may run.
    pub parked: Option<Vec<bytes::Bytes>>,
    /// Close once `out` is written (QUIT, protocol errors).
    pub close_after_reply: bool,
    pub closing: bool,
    /// CLIENT REPLY OFF / SKIP.
    pub reply_off: bool,
    pub reply_skip_next: bool,
    pub reply_skip_this: bool,
    pub no_touch: bool,
    pub no_evict: bool,
    pub monitor: bool,
    /// Set while the client waits in a blocking command.
    pub blocked: Option<Arc<crate::storage::blocking::Waiter>>,
    /// Commands queued since MULTI (None outside a transaction).
    pub multi: Option<Vec<Queued>>,
    /// A command was rejected while queueing: EXEC will abort.
    pub multi_error: bool,
    /// Keys this client WATCHes: (db, key, whether it had expired then), and the flag raised when
    /// any of them changes.
    pub watched: Vec<(usize, bytes::Bytes, crate::storage::watch::ExpiredMark)>,
    pub watch_flag: crate::storage::watch::WatchFlag,
    /// Pub/sub subscriptions: channels, patterns, shard channels.
    pub subs: Vec<bytes::Bytes>,
    pub psubs: Vec<bytes::Bytes>,
    pub ssubs: Vec<bytes::Bytes>,
    /// Set by SYNC/PSYNC: the connection receives the replication stream.
    pub replica: Option<Arc<crate::replication::ReplicaSink>>,
    /// REPLCONF listening-port / ip-address / capa psync2, before and after SYNC.
    pub replica_listening_port: Option<u64>,
    pub replica_announced_ip: Option<String>,
    pub replica_capa_psync2: bool,
    /// `REPLCONF capa eof`: the replica reads a diskless (EOF-framed) RDB.
    pub replica_capa_eof: bool,
    /// `appendfsync always`: replies wait until the AOF is durable up to this stream offset
    /// (0 = nothing to wait for).
    pub aof_hold: u64,
    /// A WAIT in progress: the engine answers it when enough replicas acknowledged.
    pub wait_ack: Option<crate::replication::master::WaitAck>,
    /// SCRIPT DEBUG mode for the next EVAL (`scripting::ldb::MODE_*`).
    pub script_debug: u8,
}

/// A command queued inside MULTI.
pub struct Queued {
    pub cmd: &'static crate::commands::Cmd,
    pub full_name: &'static str,
    pub args: Vec<bytes::Bytes>,
    /// The command's flags as queued (a script's declared flags included): what EXEC is
    /// admitted on (`commands::multi::admission_flags`).
    pub flags: u32,
}

impl Client {
    pub fn new(token: u32, gen: u32, fd: i32, shared: Arc<ClientShared>, auth: bool) -> Self {
        Client {
            token,
            gen,
            fd,
            shared,
            inbuf: BytesMut::with_capacity(QUERY_BUF_BYTES_INITIAL),
            inbuf_alloc: QUERY_BUF_BYTES_INITIAL,
            inbuf_for_big_arg: false,
            tracking_unsent: 0,
            out: Vec::new(),
            spare: Vec::new(),
            sending: false,
            sending_bytes: 0,
            sending_alloc: 0,
            obuf_exempt_bytes: 0,
            obuf_soft_since_ms: 0,
            qbuf_peak: 0,
            reply_peak_bytes: 0,
            mem_counted: Default::default(),
            proto: 2,
            db: 0,
            authenticated: auth,
            acl: None,
            inflight: 0,
            aof_hold: 0,
            inflight_shard: 0,
            parked: None,
            close_after_reply: false,
            closing: false,
            reply_off: false,
            reply_skip_next: false,
            reply_skip_this: false,
            no_touch: false,
            no_evict: false,
            monitor: false,
            blocked: None,
            multi: None,
            multi_error: false,
            watched: Vec::new(),
            watch_flag: Default::default(),
            subs: Vec::new(),
            psubs: Vec::new(),
            ssubs: Vec::new(),
            replica: None,
            replica_listening_port: None,
            replica_announced_ip: None,
            replica_capa_psync2: false,
            replica_capa_eof: false,
            wait_ack: None,
            script_debug: 0,
        }
    }

    pub fn id(&self) -> u64 {
        self.shared.id
    }

    /// Subscriptions of every kind.
    pub fn subscriptions(&self) -> usize {
        self.subs.len() + self.psubs.len() + self.ssubs.len()
    }

    pub fn set_db(&mut self, db: usize) {
        self.db = db;
        self.shared.db.store(db, Ordering::Relaxed);
    }
}

/// A query buffer at least this large is given back once it is drained.
const QUERY_BUF_SHRINK_BYTES_MIN: usize = 1024 * 1024;
use super::buffers::QUERY_BUF_BYTES_INITIAL;

/// Gives back a big drained query buffer at once: a pipeline of large writes grows it to
/// megabytes, which would otherwise stay held until the cron's resize (`server::buffers`)
/// and count in used_memory meanwhile. Smaller buffers are left to that resize, which keeps
/// Redis's observable sizes (CLIENT LIST `qbuf-free`).
pub fn shrink_idle_query_buffer(c: &mut Client) {
    if c.inbuf.is_empty() && c.inbuf_alloc >= QUERY_BUF_SHRINK_BYTES_MIN {
        c.inbuf = BytesMut::with_capacity(QUERY_BUF_BYTES_INITIAL);
        c.inbuf_alloc = QUERY_BUF_BYTES_INITIAL;
        c.inbuf_for_big_arg = false;
    }
    super::buffers::shrink_drained_query_buffer(c);
}
