//! The server: state shared by all shards, and what a connection-level command can reach.
//!
//! `Server` holds what is genuinely global — config, the shard handles, the client registry,
//! server-wide counters — behind explicit synchronization. Everything else is owned by a shard.
//! `ConnCtx` is what a `Kind::Conn` handler sees: its own `Client` and the `Server`.

pub mod buffers;
pub mod client;
pub mod dispatch;
pub mod listener;
pub mod run;
pub mod stats;

use crate::config::{Config, SharedConfig};
use crate::shard::ShardHandle;
use crate::shard::{DataGuard, LockHold};
use crate::storage::{Keyspace, ShardData};
pub use client::{Client, ClientShared};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

/// Server-wide counters (INFO stats).
#[derive(Default)]
pub struct ServerStats {
    pub connections_received: AtomicU64,
    pub rejected_connections: AtomicU64,
    pub net_input_bytes: AtomicU64,
    pub net_output_bytes: AtomicU64,
}

pub struct Server {
    pub config: SharedConfig,
    pub shards: Vec<Arc<ShardHandle>>,
    pub clients: Mutex<BTreeMap<u64, Arc<ClientShared>>>,
    pub connected_clients: AtomicUsize,
    pub next_client_id: AtomicU64,
    pub stats: ServerStats,
    pub start_ms: u64,
    pub run_id: String,
    pub shutdown: AtomicBool,
    pub exit_code: AtomicUsize,
    /// Executable path, config path (INFO server).
    pub executable: String,
    /// Commands are paused until this Unix ms (CLIENT PAUSE); 0 = not paused.
    pub pause_until_ms: AtomicU64,
    pub pause_writes_only: AtomicBool,
    pub lastsave_secs: AtomicU64,
    /// DEBUG SET-ACTIVE-EXPIRE.
    pub active_expire: AtomicBool,
    /// Connections in MONITOR mode, and their count (checked without the lock).
    pub monitors: Mutex<Vec<crate::shard::mesh::ConnRef>>,
    pub monitor_count: AtomicUsize,
    /// Clients waiting in blocking commands (INFO blocked_clients).
    pub blocked_clients: AtomicUsize,
    /// Pub/sub subscriptions.
    pub pubsub: parking_lot::RwLock<crate::pubsub::Registry>,
    /// SLOWLOG and the latency monitor.
    pub latency: crate::latency::Introspection,
    /// RDB snapshots, the background child, loading (see `persistence::snapshot`).
    pub persistence: crate::persistence::Persistence,
    /// The replication/AOF command stream.
    pub feed: crate::replication::Feed,
    /// Connections that completed SYNC/PSYNC and still stream.
    pub connected_replicas: AtomicUsize,
    /// The append-only file (see `persistence::aof`).
    pub aof: crate::persistence::aof::Aof,
    /// The link to our master when this server is a replica.
    pub link: crate::replication::replica::Link,
    /// Client memory: per-shard sums, client eviction, INFO figures.
    pub client_mem: buffers::ClientsMem,
}

impl Server {
    pub fn new(cfg: Config, shards: Vec<Arc<ShardHandle>>) -> Server {
        let now = crate::util::now_ms();
        let nshards = shards.len();
        Server {
            config: SharedConfig::new(cfg),
            shards,
            clients: Mutex::new(BTreeMap::new()),
            connected_clients: AtomicUsize::new(0),
            next_client_id: AtomicU64::new(1),
            stats: ServerStats::default(),
            start_ms: now,
            run_id: random_hex(40),
            shutdown: AtomicBool::new(false),
            exit_code: AtomicUsize::new(0),
            executable: std::env::current_exe()
                .map(|p| p.display().to_string())
                .unwrap_or_default(),
            pause_until_ms: AtomicU64::new(0),
            pause_writes_only: AtomicBool::new(false),
            lastsave_secs: AtomicU64::new(now / 1000),
            active_expire: AtomicBool::new(true),
            monitors: Mutex::new(Vec::new()),
            monitor_count: AtomicUsize::new(0),
            blocked_clients: AtomicUsize::new(0),
            pubsub: Default::default(),
            latency: Default::default(),
            persistence: Default::default(),
            feed: crate::replication::Feed::new(),
            connected_replicas: AtomicUsize::new(0),
            aof: Default::default(),
            link: Default::default(),
            client_mem: buffers::ClientsMem::new(nshards),
        }
    }

    pub fn nshards(&self) -> usize {
        self.shards.len()
    }

    /// Locks the given shards in ascending id order — the global lock order that makes the
    /// multi-shard path deadlock-free. `ids` must be sorted and unique.
    pub fn lock_shards(&self, ids: &[usize]) -> Vec<DataGuard<'_>> {
        debug_assert!(ids.windows(2).all(|w| w[0] < w[1]), "lock order violated");
        ids.iter()
            .filter_map(|&i| self.shards.get(i))
            .map(|s| s.lock_data())
            .collect()
    }

    /// Takes the given shards' locks (sorted ids) without borrowing their data.
    pub fn hold_shards(&self, ids: &[usize]) -> Vec<LockHold<'_>> {
        debug_assert!(ids.windows(2).all(|w| w[0] < w[1]), "lock order violated");
        ids.iter()
            .filter_map(|&i| self.shards.get(i))
            .map(|s| s.hold())
            .collect()
    }

    pub fn lock_all(&self) -> Vec<DataGuard<'_>> {
        self.shards.iter().map(|s| s.lock_data()).collect()
    }

    /// Runs `f` over a keyspace spanning every shard, all locked.
    pub fn with_all<R>(&self, db: usize, f: impl FnOnce(&mut Keyspace) -> R) -> R {
        let mut guards = self.lock_all();
        let parts: Vec<&mut ShardData> = guards.iter_mut().map(|g| &mut **g).collect();
        let mut ks = Keyspace::many(parts, self.nshards(), db, crate::util::now_ms());
        f(&mut ks)
    }

    pub fn register_client(&self, c: Arc<ClientShared>) {
        if let Ok(mut m) = self.clients.lock() {
            m.insert(c.id, c);
        }
    }

    pub fn unregister_client(&self, id: u64) {
        if let Ok(mut m) = self.clients.lock() {
            m.remove(&id);
        }
    }

    /// Takes a client out of the registry and, when it was still there, out of
    /// `connected_clients` (`counted`: accepted connections are, the master link is not).
    /// CLIENT KILL calls it at once, as Redis frees a killed client at once; the home shard
    /// calls it again when it closes the connection, which then changes nothing.
    pub fn drop_client(&self, id: u64, counted: bool) {
        let was = self
            .clients
            .lock()
            .map(|mut m| m.remove(&id).is_some())
            .unwrap_or(false);
        if was && counted {
            self.connected_clients.fetch_sub(1, Ordering::Relaxed);
        }
    }

    /// CLIENT KILL of another connection: removes it from the registry and shuts its socket
    /// down at once, so that its peer sees the connection end before the killer's reply, as
    /// Redis's synchronous `freeClient` gives it (a killed replica must not still look
    /// connected to its master). Its home shard then sees the socket end and frees the rest.
    /// That shard removes a connection from the registry before it closes the descriptor,
    /// so a descriptor found here under the registry's lock is still this client's.
    pub fn drop_and_shut_down(&self, c: &ClientShared) {
        let Ok(mut clients) = self.clients.lock() else {
            return;
        };
        if clients.remove(&c.id).is_none() {
            return;
        }
        self.connected_clients.fetch_sub(1, Ordering::Relaxed);
        if c.fd >= 0 {
            // SAFETY: the descriptor is still the client's (see above); shutdown(2) only
            // ends the connection, the home shard closes the descriptor.
            unsafe {
                libc::shutdown(c.fd, libc::SHUT_RDWR);
            }
        }
    }

    pub fn client_list(&self) -> Vec<Arc<ClientShared>> {
        self.clients
            .lock()
            .map(|m| m.values().cloned().collect())
            .unwrap_or_default()
    }

    /// Whether a command must wait because of CLIENT PAUSE.
    pub fn paused_for(&self, is_write: bool, now_ms: u64) -> bool {
        let until = self.pause_until_ms.load(Ordering::Relaxed);
        (until > now_ms && (is_write || !self.pause_writes_only.load(Ordering::Relaxed)))
            || (is_write && crate::replication::failover::pausing())
    }

    pub fn request_shutdown(&self) {
        self.shutdown.store(true, Ordering::SeqCst);
        for s in &self.shards {
            s.wake();
        }
    }
}

/// What a connection-level handler can reach.
pub struct ConnCtx<'a> {
    pub client: &'a mut Client,
    pub server: &'a Server,
    pub shard: usize,
    pub now_ms: u64,
    /// Messages the command published, delivered by the engine after it returns.
    pub deliveries: Vec<crate::pubsub::Delivery>,
    /// Keyspace events fired by commands run on the caller's behalf (scripts), published by
    /// the engine after it returns.
    pub notes: Vec<crate::pubsub::Notification>,
    /// Keys written by those commands that blocked clients wait on: (shard, db, key).
    pub ready_keys: Vec<(usize, usize, Box<[u8]>)>,
    /// What the command propagates to replicas and the AOF (PUBLISH, FUNCTION LOAD...),
    /// fed by the engine after it returns.
    pub propagate: Vec<crate::replication::Op>,
}

impl ConnCtx<'_> {
    pub fn config(&self) -> Arc<Config> {
        self.server.config.load()
    }
}

/// `n` random hex characters (run ids), from the OS's randomness.
pub fn random_hex(n: usize) -> String {
    let mut bytes = vec![0u8; n.div_ceil(2)];
    if std::fs::File::open("/dev/urandom")
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut bytes))
        .is_err()
    {
        let seed = crate::util::now_us();
        for (i, b) in bytes.iter_mut().enumerate() {
            *b = (seed >> ((i % 8) * 8)) as u8 ^ (i as u8).wrapping_mul(31);
        }
    }
    let mut s: String = bytes.iter().map(|b| format!("{:02x}", b)).collect();
    s.truncate(n);
    s
}
