//! The replica side of replication: the link to our master.
//!
//! ## Why a helper thread
//! The link is one TCP connection with a strictly sequential life: connect, handshake
//! (PING, AUTH, REPLCONF, PSYNC), receive an RDB of any size, load it into every shard, then
//! apply an endless command stream. It is driven by one dedicated thread (`repl-link`) with
//! blocking socket reads on a short timeout, not by a shard's ring: the handshake and the
//! transfer are request/response sequences that a state machine inside the engine would spread
//! over a dozen states for no gain, and applying a command needs nothing a shard thread has
//! that another thread lacks. Every command from the master runs exactly like a multi-shard
//! client command: through the dispatcher (`dispatch::prepare`, which finds its shards), under
//! the locks of the shards it touches taken in ascending order (the global lock order of
//! `crate::shard`), through `Keyspace::exec`, with its reply discarded. So a master's command
//! is atomic to every client of the replica, and the engine's hot paths are untouched; the
//! cost is one lock round per applied command, which the stream's rate easily affords.
//!
//! ## Offsets and chaining
//! The replica's offset is its feed's `master_repl_offset`. Each command is re-fed to the
//! feed byte for byte as received (`ReplState::feed_raw`) **while the locks it ran under are
//! still held**, so a sub-replica's snapshot (taken under every shard lock) always agrees with
//! the offset it is given; a MULTI ... EXEC unit is re-fed whole at EXEC. A replica's backlog
//! and sub-replicas therefore carry exactly its master's stream, and offsets match along a
//! chain. While this server is a replica, `feed.upstream` keeps local writes (a writable
//! replica) out of the replication stream, as Redis does.
//!
//! ## Identity (PSYNC2)
//! A full sync takes the master's replid and offset from `+FULLRESYNC` and starts a fresh
//! backlog. `+CONTINUE <newid>` moves our replid to replid2 (valid up to
//! `second_replid_offset`) so our own sub-replicas can still continue. REPLICAOF NO ONE does the
//! same shift with a new random replid, so siblings re-pointed to us resume partially.
//!
//! ## Expiry
//! A replica never expires keys (see `storage::keyspace::replica_expiry`): normal clients read
//! a key whose deadline passed as absent; only the master's DEL removes it.

use crate::commands::Kind;
use crate::protocol::{parse_command_into, Limits, Out};
use crate::server::dispatch::{self, Route};
use crate::server::{Client, ClientShared, ConnCtx, Server};
use crate::storage::{Keyspace, ShardData};
use bytes::{Bytes, BytesMut};
use std::io::{ErrorKind, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// How long a blocking read waits before the link checks for REPLICAOF changes, kills and
/// timeouts, and sends its ACK.
const POLL_MS: u64 = 100;
/// Bytes read from the socket at once.
const READ_CHUNK_BYTES: usize = 256 * 1024;
/// The EOF marker of a diskless transfer (`$EOF:<40 bytes>`).
const EOF_MARK_BYTES: usize = 40;
/// A handshake reply line longer than this is a protocol error.
const LINE_BYTES_MAX: usize = 64 * 1024;

/// `master_link_status` and the handshake's progress.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LinkStatus {
    /// Not a replica.
    None,
    /// Must (re)connect.
    Connect,
    Connecting,
    Handshake,
    /// Receiving the RDB.
    Transfer,
    Connected,
}

/// What the link shares with the rest of the server (INFO, ROLE, REPLICAOF).
pub struct LinkState {
    pub master: Option<(String, u16)>,
    /// Bumped by every REPLICAOF: a link of an older epoch ends.
    pub epoch: u64,
    pub status: LinkStatus,
    /// Unix ms of the last byte from the master.
    pub last_io_ms: u64,
    /// Unix ms the link went down (`master_link_down_since_seconds`).
    pub down_since_ms: u64,
    /// Whether our replid/offset describe a history the master may continue (PSYNC id off).
    pub cached: bool,
    pub transfer_size: i64,
    pub transfer_read: u64,
    pub transfer_start_ms: u64,
}

pub struct Link {
    pub state: parking_lot::Mutex<LinkState>,
    wake: parking_lot::Condvar,
    /// Held by the link while it applies one command, and by REPLICAOF while it changes the
    /// epoch: a link whose epoch ended applies nothing more, so a promoted replica's offset
    /// stops exactly where `second_replid_offset` says. Lock order: this, then shard locks,
    /// then the feed.
    apply: parking_lot::Mutex<()>,
}

/// How long REPLICAOF waits for the link to finish the command it is applying. Only a
/// REPLICAOF inside MULTI (which holds every shard lock the link may be waiting for) can
/// reach it; it then goes on without the guarantee.
const APPLY_WAIT_MS: u64 = 2000;

impl Default for Link {
    fn default() -> Self {
        Link {
            state: parking_lot::Mutex::new(LinkState {
                master: None,
                epoch: 0,
                status: LinkStatus::None,
                last_io_ms: 0,
                down_since_ms: 0,
                cached: false,
                transfer_size: -1,
                transfer_read: 0,
                transfer_start_ms: 0,
            }),
            wake: parking_lot::Condvar::new(),
            apply: parking_lot::Mutex::new(()),
        }
    }
}

/// The link is up (for `replica-serve-stale-data`), read without a lock by every command.
static LINK_UP: AtomicBool = AtomicBool::new(false);

pub fn is_replica() -> bool {
    crate::storage::keyspace::replica_expiry()
}

pub fn link_up() -> bool {
    LINK_UP.load(Ordering::Relaxed)
}

/// The error a replica gives a command of a normal client instead of running it, if any:
/// writes on a read-only replica, and everything but STALE commands while the link is down
/// and `replica-serve-stale-data` is off. One relaxed load when not a replica.
pub fn reject(
    cfg: &crate::config::Config,
    server: &Server,
    cmd: &crate::commands::Cmd,
) -> Option<&'static str> {
    reject_flags(cfg, server, cmd.flags)
}

/// `reject` on a command's flags as admission computes them (EXEC's from its queue, a
/// script's from its declared flags: `commands::multi::admission_flags`).
pub fn reject_flags(
    cfg: &crate::config::Config,
    server: &Server,
    flags: u32,
) -> Option<&'static str> {
    use crate::commands::flag;
    if !is_replica() {
        if cfg.min_replicas_to_write > 0
            && flags & flag::WRITE != 0
            && !super::master::enough_good_replicas(cfg, server)
        {
            return Some("NOREPLICAS Not enough good replicas to write.");
        }
        return None;
    }
    if !cfg.replica_serve_stale_data && !link_up() && flags & flag::STALE == 0 {
        return Some(
            "MASTERDOWN Link with MASTER is down and replica-serve-stale-data is set to 'no'.",
        );
    }
    if cfg.replica_read_only && flags & flag::WRITE != 0 {
        return Some("READONLY You can't write against a read only replica.");
    }
    None
}

/// The error a write command inside a script gets before the script wrote anything
/// (`scriptVerifyWriteCommandAllow`): READONLY on a read-only replica (unless the script
/// runs for our master), NOREPLICAS on a master short of good replicas.
pub fn script_write_error(server: &Server, client: &Client) -> Option<&'static str> {
    let cfg = server.config.load();
    if is_replica() {
        let from_master = client.shared.flags.lock().is_ok_and(|f| f.contains('M'));
        if cfg.replica_read_only && !from_master {
            return Some("READONLY You can't write against a read only replica.");
        }
        return None;
    }
    if cfg.min_replicas_to_write > 0 && !super::master::enough_good_replicas(&cfg, server) {
        return Some("NOREPLICAS Not enough good replicas to write.");
    }
    None
}

/// A writable replica's active expiry (shard cron): the keys its own clients gave a deadline
/// (`ShardData::replica_volatile`) are deleted once it passed, as Redis's `expireSlaveKeys`;
/// the master's keys wait for the master's DEL. Keys gone or persisted leave the set. The
/// deletions feed our AOF (never the replication stream: a replica's is its master's).
/// Returns the shards to poke.
pub fn expire_written_keys(server: &Server, data: &mut ShardData) -> u64 {
    if data.replica_volatile.is_empty() {
        return 0;
    }
    let now = crate::util::now_ms();
    let mut dead: Vec<crate::storage::db::DeadKey> = Vec::new();
    let ShardData {
        replica_volatile,
        dbs,
        stats,
        watch,
        ..
    } = data;
    replica_volatile.retain(|(db, key)| {
        let slot = crate::storage::key_slot(key);
        let Some(d) = dbs.get_mut(*db) else {
            return false;
        };
        match d.get(slot, key) {
            Some(e) if e.is_expired(now) => {
                d.remove(slot, key);
                watch.touch(*db, key, false);
                dead.push((*db, key.clone()));
                false
            }
            Some(e) => e.expire_ms != 0,
            None => false,
        }
    });
    stats.expired_keys += dead.len() as u64;
    if dead.is_empty() || !server.feed.active() {
        return 0;
    }
    let lazy = crate::storage::limits::lazy(&crate::storage::limits::LAZY.expire);
    let ops: Vec<crate::replication::Op> = dead
        .into_iter()
        .map(|(db, k)| {
            crate::replication::Op::new(
                db,
                vec![
                    crate::storage::keyspace::del_or_unlink(lazy),
                    Bytes::from(Vec::from(k)),
                ],
            )
        })
        .collect();
    server.feed.propagate(&ops, false)
}

/// Starts the link thread and applies `replicaof` from the configuration.
pub fn start(server: Arc<Server>) {
    let cfg = server.config.load();
    if let Some(r) = &cfg.replicaof {
        set_master(&server, &r.host, r.port);
        // A replica starting from nothing has no history to continue; one whose RDB
        // recorded its master's replid and offset has.
        server.link.state.lock().cached = super::fullsync::restored_history();
    }
    let s = server.clone();
    let spawned = std::thread::Builder::new()
        .name("repl-link".into())
        .spawn(move || run(s));
    if let Err(e) = spawned {
        crate::log_warning!("Cannot spawn the replication link thread: {}", e);
    }
}

/// Makes this server a replica of `host:port` (REPLICAOF host port, `replicaof`).
pub fn set_master(server: &Server, host: &str, port: u16) {
    let was_master = !is_replica();
    let _applying = server
        .link
        .apply
        .try_lock_for(Duration::from_millis(APPLY_WAIT_MS));
    {
        let mut st = server.link.state.lock();
        st.master = Some((host.to_string(), port));
        st.epoch += 1;
        st.status = LinkStatus::Connect;
        // A link that existed goes down now; a master turning replica was never linked
        // (Redis's `repl_down_since` stays 0: -1 in INFO).
        st.down_since_ms = if was_master { 0 } else { crate::util::now_ms() };
        if was_master {
            // Our own history is what the new master may continue (Redis's cached master
            // "using myself").
            st.cached = true;
        }
    }
    LINK_UP.store(false, Ordering::Relaxed);
    crate::storage::keyspace::set_replica_expiry(true);
    server.feed.with(|st| st.upstream = true);
    unblock_all_clients(server);
    update_config(server, Some((host, port)));
    server.link.wake.notify_all();
}

/// REPLICAOF host port calls so far (this server turning replica, or changing master): a
/// WAIT that started before one is answered -UNBLOCKED (`master::wait_demoted`).
static DEMOTIONS: AtomicU64 = AtomicU64::new(0);

pub fn demotions() -> u64 {
    DEMOTIONS.load(Ordering::SeqCst)
}

/// The error a client blocked when the server turned replica gets (`disconnectAllBlockedClients`).
const UNBLOCKED_TEXT: &str =
    "UNBLOCKED force unblock from blocking operation, instance state changed (master -> replica?)";

/// Redis's `disconnectAllBlockedClients` on REPLICAOF host port: a client blocked while we
/// were a master (or on the old master's data) must not be served by the new master's
/// stream, which would desync us from it. Each blocked client gets Redis's -UNBLOCKED error,
/// counted in errorstats, and its connection is closed once the error is sent (Redis flags it
/// `CLIENT_CLOSE_AFTER_REPLY`: nothing more of its input runs). Clients in WAIT get the same
/// from their shard (`master::wait_demoted`); clients paused by CLIENT PAUSE are not blocked
/// in this sense and run their command later, as Redis's postponed clients.
fn unblock_all_clients(server: &Server) {
    DEMOTIONS.fetch_add(1, Ordering::SeqCst);
    for c in server.client_list() {
        let waiter = c.waiter.lock().ok().and_then(|g| g.clone());
        let Some(w) = waiter.filter(|w| w.claim()) else {
            continue;
        };
        let mut bytes = Vec::new();
        Out::new(&mut bytes, w.proto).error(UNBLOCKED_TEXT);
        if let Some(h) = server.shards.get(w.conn.shard) {
            h.lock_data().cmd_stats.record_error("UNBLOCKED");
        }
        let msg = crate::shard::mesh::Msg::Unblocked {
            token: w.conn.token,
            gen: w.conn.gen,
            bytes,
            close: true,
        };
        if let Some(h) = server.shards.get(w.conn.shard) {
            h.mailbox.post(server.nshards(), &mut vec![msg]);
        }
    }
}

/// A WAIT's client of `shard` when the server turned replica: the -UNBLOCKED error (counted
/// in errorstats), then the connection closes, as `unblock_all_clients` does for the others.
pub fn unblocked_reply(server: &Server, shard: usize, client: &mut Client) {
    Out::new(&mut client.out, client.proto).error(UNBLOCKED_TEXT);
    client.close_after_reply = true;
    if let Some(h) = server.shards.get(shard) {
        h.lock_data().cmd_stats.record_error("UNBLOCKED");
    }
}

/// REPLICAOF NO ONE: back to master, with a new replid whose history continues the old one.
pub fn promote(server: &Server) {
    let _applying = server
        .link
        .apply
        .try_lock_for(Duration::from_millis(APPLY_WAIT_MS));
    {
        let mut st = server.link.state.lock();
        st.master = None;
        st.epoch += 1;
        st.status = LinkStatus::None;
        st.down_since_ms = 0;
    }
    LINK_UP.store(false, Ordering::Relaxed);
    crate::storage::keyspace::set_replica_expiry(false);
    let size = server.config.load().repl_backlog_size as usize;
    let subs = server.feed.with(|st| {
        st.replid2 = std::mem::replace(&mut st.replid, crate::server::random_hex(40));
        st.second_replid_offset = st.offset as i64 + 1;
        st.upstream = false;
        st.reset_repl_db();
        st.ensure_backlog(size);
        std::mem::take(&mut st.replicas)
    });
    // Sub-replicas reconnect and learn the new replid with a partial resync.
    kill_sinks(server, &subs);
    update_config(server, None);
    server.link.wake.notify_all();
}

fn update_config(server: &Server, master: Option<(&str, u16)>) {
    let mut cfg = (*server.config.load()).clone();
    cfg.replicaof = master.map(|(h, p)| crate::config::ReplicaOf {
        host: h.to_string(),
        port: p,
    });
    server.config.store(cfg);
}

/// Closes replica connections (their shards close them on the next turn).
fn kill_sinks(server: &Server, sinks: &[Arc<super::ReplicaSink>]) {
    for s in sinks {
        s.closed.store(true, Ordering::Relaxed);
        if let Some(h) = server.shards.get(s.conn.shard) {
            let mut batch = vec![crate::shard::mesh::Msg::Kill {
                token: s.conn.token,
                gen: s.conn.gen,
            }];
            h.mailbox.post(server.nshards(), &mut batch);
        }
    }
}

fn run(server: Arc<Server>) {
    while !server.shutdown.load(Ordering::Relaxed) {
        let target = {
            let mut st = server.link.state.lock();
            match &st.master {
                None => {
                    server
                        .link
                        .wake
                        .wait_for(&mut st, Duration::from_millis(200));
                    continue;
                }
                Some(m) => (m.clone(), st.epoch),
            }
        };
        let ((host, port), epoch) = target;
        let mut session = Session::new(&server, epoch);
        match session.run(&host, port) {
            Ok(()) => {}
            Err(e) => {
                crate::log_warning!("Replication link with MASTER {}:{}: {}", host, port, e);
            }
        }
        session.close();
        LINK_UP.store(false, Ordering::Relaxed);
        let mut st = server.link.state.lock();
        if st.epoch == epoch && st.master.is_some() {
            st.status = LinkStatus::Connect;
            st.down_since_ms = crate::util::now_ms();
            // Retry in a second, or at once after a REPLICAOF.
            server
                .link
                .wake
                .wait_for(&mut st, Duration::from_millis(1000));
        }
    }
}

/// Why a link ended.
#[derive(Debug)]
enum LinkError {
    Io(std::io::Error),
    Protocol(String),
    /// REPLICAOF changed, the link was killed, or the server shuts down.
    Aborted,
}

impl std::fmt::Display for LinkError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LinkError::Io(e) => write!(f, "I/O error: {e}"),
            LinkError::Protocol(s) => f.write_str(s),
            LinkError::Aborted => f.write_str("link closed"),
        }
    }
}

impl From<std::io::Error> for LinkError {
    fn from(e: std::io::Error) -> Self {
        LinkError::Io(e)
    }
}

type LinkResult<T> = Result<T, LinkError>;

/// One connection to the master, from connect to disconnect.
struct Session<'a> {
    server: &'a Server,
    epoch: u64,
    stream: Option<TcpStream>,
    /// Received, unprocessed bytes.
    buf: Vec<u8>,
    /// What each socket read fills (then appended to `buf`).
    chunk: Vec<u8>,
    /// The pseudo-client commands from the master run as (flag M in CLIENT LIST).
    client: Client,
    last_ack_ms: u64,
}

impl<'a> Session<'a> {
    fn new(server: &'a Server, epoch: u64) -> Session<'a> {
        let now = crate::util::now_ms();
        let shared = Arc::new(ClientShared {
            id: server.next_client_id.fetch_add(1, Ordering::Relaxed),
            shard: 0,
            token: u32::MAX,
            addr: "?:0".to_string(),
            laddr: "?:0".to_string(),
            unix: false,
            fd: -1,
            created_ms: now,
            name: Mutex::new(Vec::new()),
            lib_name: Mutex::new(Vec::new()),
            lib_ver: Mutex::new(Vec::new()),
            db: Default::default(),
            last_interaction_ms: now.into(),
            last_cmd: std::ptr::null_mut::<crate::commands::Cmd>().into(),
            proto: 2.into(),
            gen: 0,
            bufs: Default::default(),
            flags: Mutex::new("M".to_string()),
            kill: Default::default(),
            waiter: Mutex::new(None),
            tracking: Default::default(),
        });
        Session {
            server,
            epoch,
            stream: None,
            buf: Vec::new(),
            chunk: Vec::new(),
            client: Client::new(u32::MAX, 0, -1, shared, true),
            last_ack_ms: 0,
        }
    }

    fn close(&mut self) {
        if self.stream.take().is_some() {
            self.server.unregister_client(self.client.id());
        }
    }

    fn set_status(&self, s: LinkStatus) {
        self.server.link.state.lock().status = s;
    }

    fn aborted(&self) -> bool {
        self.server.shutdown.load(Ordering::Relaxed)
            || self.client.shared.kill.load(Ordering::Relaxed)
            || self.server.link.state.lock().epoch != self.epoch
    }

    fn timeout_ms(&self) -> u64 {
        self.server.config.load().repl_timeout_secs.max(1) as u64 * 1000
    }

    fn run(&mut self, host: &str, port: u16) -> LinkResult<()> {
        self.set_status(LinkStatus::Connecting);
        crate::log_notice!("Connecting to MASTER {}:{}", host, port);
        let addr = (host, port)
            .to_socket_addrs()?
            .next()
            .ok_or_else(|| LinkError::Protocol(format!("cannot resolve {host}")))?;
        let stream = TcpStream::connect_timeout(&addr, Duration::from_millis(self.timeout_ms()))?;
        stream.set_nodelay(true)?;
        stream.set_read_timeout(Some(Duration::from_millis(POLL_MS)))?;
        let local = stream
            .local_addr()
            .map(|a| a.to_string())
            .unwrap_or_default();
        let shared = self.client.shared.clone();
        let shared = Arc::new(ClientShared {
            addr: addr.to_string(),
            laddr: local,
            unix: false,
            id: shared.id,
            shard: 0,
            token: u32::MAX,
            fd: -1,
            created_ms: shared.created_ms,
            name: Mutex::new(Vec::new()),
            lib_name: Mutex::new(Vec::new()),
            lib_ver: Mutex::new(Vec::new()),
            db: Default::default(),
            last_interaction_ms: crate::util::now_ms().into(),
            last_cmd: std::ptr::null_mut::<crate::commands::Cmd>().into(),
            proto: 2.into(),
            gen: 0,
            bufs: Default::default(),
            flags: Mutex::new("M".to_string()),
            kill: Default::default(),
            waiter: Mutex::new(None),
            tracking: Default::default(),
        });
        self.client.shared = shared.clone();
        self.stream = Some(stream);
        crate::log_notice!("MASTER <-> REPLICA sync started");
        self.set_status(LinkStatus::Handshake);
        self.handshake()?;
        self.server.register_client(shared);
        self.stream_loop()
    }

    fn stream(&mut self) -> LinkResult<&mut TcpStream> {
        self.stream
            .as_mut()
            .ok_or_else(|| LinkError::Protocol("not connected".into()))
    }

    fn send(&mut self, argv: &[&[u8]]) -> LinkResult<()> {
        let argv: Vec<Bytes> = argv.iter().map(|a| Bytes::copy_from_slice(a)).collect();
        let mut out = Vec::new();
        super::feed::encode_command(&mut out, &argv);
        self.stream()?.write_all(&out)?;
        Ok(())
    }

    /// Reads more bytes into `buf`; Ok(0) on a poll timeout. Fails on EOF, on abort and when
    /// nothing came for `repl-timeout`.
    fn fill(&mut self) -> LinkResult<usize> {
        if self.aborted() {
            return Err(LinkError::Aborted);
        }
        // Into the session's read chunk, allocated once.
        if self.chunk.is_empty() {
            self.chunk = vec![0u8; READ_CHUNK_BYTES];
        }
        let stream = self
            .stream
            .as_mut()
            .ok_or_else(|| LinkError::Protocol("not connected".into()))?;
        let r = stream.read(&mut self.chunk);
        let now = crate::util::now_ms();
        match r {
            Ok(0) => Err(LinkError::Protocol("connection lost".into())),
            Ok(n) => {
                self.buf.extend_from_slice(&self.chunk[..n]);
                self.server.link.state.lock().last_io_ms = now;
                Ok(n)
            }
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                let last = self.server.link.state.lock().last_io_ms;
                if now.saturating_sub(last) > self.timeout_ms() {
                    // Redis's three texts, by the link's stage.
                    let why = match self.server.link.state.lock().status {
                        LinkStatus::Connecting | LinkStatus::Handshake => {
                            "Timeout connecting to the MASTER..."
                        }
                        LinkStatus::Transfer => {
                            "Timeout receiving bulk data from MASTER... If the problem persists try to set the 'repl-timeout' parameter in redis.conf to a larger value."
                        }
                        _ => "MASTER timeout: no data nor PING received...",
                    };
                    return Err(LinkError::Protocol(why.into()));
                }
                Ok(0)
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => Ok(0),
            Err(e) => Err(e.into()),
        }
    }

    /// One reply line (without CRLF).
    fn line(&mut self) -> LinkResult<String> {
        self.server.link.state.lock().last_io_ms = crate::util::now_ms();
        loop {
            if let Some(i) = self.buf.iter().position(|&b| b == b'\n') {
                let mut l: Vec<u8> = self.buf.drain(..=i).collect();
                l.pop();
                if l.last() == Some(&b'\r') {
                    l.pop();
                }
                return Ok(String::from_utf8_lossy(&l).into_owned());
            }
            if self.buf.len() > LINE_BYTES_MAX {
                return Err(LinkError::Protocol("reply line too long".into()));
            }
            self.fill()?;
        }
    }

    fn command(&mut self, argv: &[&[u8]]) -> LinkResult<String> {
        self.send(argv)?;
        self.line()
    }

    fn handshake(&mut self) -> LinkResult<()> {
        let cfg = self.server.config.load();
        let pong = self.command(&[b"PING"])?;
        if pong.starts_with('-')
            && !pong.starts_with("-NOAUTH")
            && !pong.starts_with("-NOPERM")
            && !pong.starts_with("-ERR operation not permitted")
        {
            return Err(LinkError::Protocol(format!(
                "Error reply to PING from master: '{pong}'"
            )));
        }
        if let Some(pass) = &cfg.masterauth {
            let r = match &cfg.masteruser {
                Some(user) => self.command(&[b"AUTH", user.as_bytes(), pass])?,
                None => self.command(&[b"AUTH", pass])?,
            };
            if r.starts_with('-') {
                return Err(LinkError::Protocol(format!(
                    "Unable to AUTH to MASTER: {r}"
                )));
            }
        }
        let port = if cfg.replica_announce_port != 0 {
            cfg.replica_announce_port
        } else {
            cfg.port
        };
        let port = port.to_string();
        self.command(&[b"REPLCONF", b"listening-port", port.as_bytes()])?;
        if let Some(ip) = &cfg.replica_announce_ip {
            self.command(&[b"REPLCONF", b"ip-address", ip.as_bytes()])?;
        }
        self.command(&[b"REPLCONF", b"capa", b"eof", b"capa", b"psync2"])?;
        let cached = self.server.link.state.lock().cached;
        let (id, off) = if cached {
            self.server
                .feed
                .with(|st| (st.replid.clone(), (st.offset + 1).to_string()))
        } else {
            ("?".to_string(), "-1".to_string())
        };
        // A master handing over to us (FAILOVER) asks its target to take over.
        let failover = super::failover::in_progress();
        if failover {
            self.send(&[b"PSYNC", id.as_bytes(), off.as_bytes(), b"FAILOVER"])?;
        } else {
            self.send(&[b"PSYNC", id.as_bytes(), off.as_bytes()])?;
        }
        let reply = loop {
            // Newlines keep the link alive while the master prepares.
            let l = self.line()?;
            if !l.is_empty() {
                break l;
            }
        };
        if failover {
            let accepted = reply.starts_with("+FULLRESYNC") || reply.starts_with("+CONTINUE");
            super::failover::psync_answered(self.server, accepted);
        }
        if let Some(rest) = reply.strip_prefix("+FULLRESYNC") {
            let mut it = rest.split_whitespace();
            let id = it.next().unwrap_or_default().to_string();
            let off = it.next().and_then(|s| s.parse::<u64>().ok()).unwrap_or(0);
            crate::log_notice!("Full resync from master: {}:{}", id, off);
            self.full_sync(&id, off)
        } else if let Some(rest) = reply.strip_prefix("+CONTINUE") {
            let server = self.server;
            let _applying = server.link.apply.lock();
            if server.link.state.lock().epoch != self.epoch {
                return Err(LinkError::Aborted);
            }
            self.continue_sync(rest.trim());
            Ok(())
        } else {
            Err(LinkError::Protocol(format!(
                "Unexpected reply to PSYNC from master: {reply}"
            )))
        }
    }

    fn continue_sync(&mut self, new_id: &str) {
        crate::log_notice!("MASTER <-> REPLICA sync: Master accepted a Partial Resynchronization.");
        let size = self.server.config.load().repl_backlog_size as usize;
        let (subs, db) = self.server.feed.with(|st| {
            st.upstream = true;
            st.ensure_backlog(size);
            let db = st.stream_db;
            if !new_id.is_empty() && new_id != st.replid {
                st.replid2 = std::mem::replace(&mut st.replid, new_id.to_string());
                st.second_replid_offset = st.offset as i64 + 1;
                crate::log_notice!("Master replication ID changed to {}", new_id);
                return (std::mem::take(&mut st.replicas), db);
            }
            (Vec::new(), db)
        });
        // The stream goes on in the database it last selected.
        self.client.db = db;
        kill_sinks(self.server, &subs);
        self.server.link.state.lock().cached = true;
        crate::log_notice!("Successful partial resynchronization with master.");
    }

    /// Receives the RDB (`$<len>` or diskless `$EOF:<mark>`), flushes the dataset and loads it.
    fn full_sync(&mut self, replid: &str, offset: u64) -> LinkResult<()> {
        self.set_status(LinkStatus::Transfer);
        let header = loop {
            let l = self.line()?;
            // The master sends newlines to keep the link alive while it prepares the RDB.
            if !l.is_empty() {
                break l;
            }
        };
        if header.starts_with('-') {
            return Err(LinkError::Protocol(format!(
                "MASTER aborted replication with an error: {header}"
            )));
        }
        let Some(spec) = header.strip_prefix('$') else {
            return Err(LinkError::Protocol(format!(
                "Bad protocol from MASTER, the first byte is not '$': {header}"
            )));
        };
        if self.server.config.load().repl_diskless_load != crate::config::ReplDisklessLoad::Disabled
        {
            return self.full_sync_streaming(spec, replid, offset);
        }
        if dataset_empty(self.server) {
            return self.full_sync_into_empty(spec, replid, offset);
        }
        let data = if let Some(mark) = spec.strip_prefix("EOF:") {
            let mark = mark.as_bytes().to_vec();
            if mark.len() != EOF_MARK_BYTES {
                return Err(LinkError::Protocol("bad EOF marker".into()));
            }
            self.start_transfer(-1);
            crate::log_notice!(
                "MASTER <-> REPLICA sync: receiving streamed RDB from master with EOF to disk"
            );
            loop {
                if self.buf.len() >= EOF_MARK_BYTES && self.buf.ends_with(&mark) {
                    let mut d = std::mem::take(&mut self.buf);
                    d.truncate(d.len() - EOF_MARK_BYTES);
                    break d;
                }
                self.fill()?;
                self.progress();
            }
        } else {
            let len: usize = spec
                .parse()
                .map_err(|_| LinkError::Protocol(format!("bad bulk length {spec}")))?;
            self.start_transfer(len as i64);
            crate::log_notice!(
                "MASTER <-> REPLICA sync: receiving {} bytes from master to disk",
                len
            );
            while self.buf.len() < len {
                self.fill()?;
                self.progress();
            }
            let rest = self.buf.split_off(len);
            std::mem::replace(&mut self.buf, rest)
        };
        let server = self.server;
        let (_applying, aof_was_on) = self.begin_install()?;
        let to_disk = self.server.config.load().repl_diskless_load
            == crate::config::ReplDisklessLoad::Disabled;
        crate::log_notice!("MASTER <-> REPLICA sync: Flushing old data");
        crate::log_notice!("MASTER <-> REPLICA sync: Loading DB in memory");
        // The file is written by another thread while the dataset loads from memory.
        let loaded = std::thread::scope(|s| {
            if to_disk {
                s.spawn(|| save_transfer(server, &data));
            }
            load_rdb(server, &data)
        });
        drop(data);
        if aof_was_on && crate::persistence::aof::rewrite::start_appendonly(server).is_err() {
            crate::log_warning!(
                "Failed enabling the AOF after successful master synchronization! Trying it again in one second."
            );
        }
        let stream_db = loaded?;
        self.after_load(replid, offset, stream_db);
        Ok(())
    }

    /// Before a received dataset replaces ours: takes the apply lock (so REPLICAOF waits for
    /// the install, and a link whose epoch ended installs nothing), then stops the AOF, which
    /// starts again with a rewrite of the loaded dataset (`restartAOFAfterSYNC`: its old
    /// files describe a dataset that is gone). Returns the lock and whether the AOF was on.
    fn begin_install(&self) -> LinkResult<(parking_lot::MutexGuard<'a, ()>, bool)> {
        let server = self.server;
        let applying = server.link.apply.lock();
        if server.link.state.lock().epoch != self.epoch {
            return Err(LinkError::Aborted);
        }
        let aof_was_on = {
            use crate::persistence::aof::AofState;
            server.aof.state.lock().aof_state != AofState::Off
        };
        if aof_was_on {
            crate::persistence::aof::rewrite::stop_appendonly(server);
        }
        Ok((applying, aof_was_on))
    }

    /// The master's identity after its RDB is loaded: its replid and offset, a fresh backlog,
    /// and sub-replicas dropped (they hold another history now).
    fn after_load(&mut self, replid: &str, offset: u64, stream_db: usize) {
        let size = self.server.config.load().repl_backlog_size as usize;
        let subs = self.server.feed.with(|st| {
            st.replid = replid.to_string();
            st.replid2 = "0".repeat(40);
            st.second_replid_offset = -1;
            st.offset = offset;
            st.upstream = true;
            st.stream_db = stream_db;
            st.reset_backlog(size);
            std::mem::take(&mut st.replicas)
        });
        // Our sub-replicas hold another history now: they must sync again.
        kill_sinks(self.server, &subs);
        self.client.db = stream_db;
        {
            let mut st = self.server.link.state.lock();
            st.cached = true;
            st.transfer_size = -1;
        }
        crate::log_notice!("MASTER <-> REPLICA sync: Finished with success");
    }

    /// `repl-diskless-load swapdb|on-empty-db`: the RDB is parsed straight from the socket
    /// (at the pace `key-load-delay` allows, so a slow replica holds its master's child back
    /// as a Redis replica does), into a dataset of its own; the current one is replaced only
    /// when the whole transfer arrived intact, so a failed transfer leaves it as it was.
    /// Clients get `-LOADING` meanwhile.
    fn full_sync_streaming(&mut self, spec: &str, replid: &str, offset: u64) -> LinkResult<()> {
        // A load from the socket is one long step of the link (see `watchdog`).
        let _watched = crate::watchdog::long_step("replication link");
        let (mark, len) = transfer_spec(spec)?;
        self.start_transfer(len.map_or(-1, |l| l as i64));
        let server = self.server;
        let cfg = server.config.load();
        // Async loading (swapdb from the history we already hold, as Redis 7.0): the old
        // dataset stays served meanwhile, since it is an earlier point of the same one.
        let async_load = cfg.repl_diskless_load == crate::config::ReplDisklessLoad::Swapdb
            && server.feed.with(|st| st.replid == replid);
        crate::log_notice!("MASTER <-> REPLICA sync: Loading DB in memory");
        let key_delay_us = crate::persistence::snapshot::config_int(&cfg, "key-load-delay");
        let databases = cfg.databases;
        let p = &server.persistence;
        p.loading_start_secs
            .store(crate::util::now_ms() / 1000, Ordering::Relaxed);
        p.loading_total_bytes
            .store(len.unwrap_or(0), Ordering::Relaxed);
        p.loading_loaded_bytes.store(0, Ordering::Relaxed);
        p.async_loading.store(async_load, Ordering::SeqCst);
        p.loading.store(true, Ordering::SeqCst);
        let done_loading = || {
            p.loading.store(false, Ordering::SeqCst);
            p.async_loading.store(false, Ordering::SeqCst);
        };
        let mut functions = Vec::new();
        let mut entries = Vec::new();
        let mut stream_db = StreamDbAux::default();
        let parsed = {
            let mut reader = LinkReader {
                session: self,
                left: len,
                error: None,
                pos: 0,
            };
            let mut sink = |e: crate::persistence::rdb::LoadedEntry| {
                db_in_range(&e, databases)?;
                crate::persistence::snapshot::key_delay(key_delay_us);
                entries.push(e);
                Ok(())
            };
            let mut aux = |k: &[u8], v: &[u8]| stream_db.take(k, v);
            let r = crate::persistence::rdb::read_rdb(&mut reader, &mut sink, &mut aux);
            rdb_read_outcome(r, reader.error.take(), "from socket", &mut functions)
        };
        let checked = parsed.and_then(|()| match &mark {
            Some(mark) => self.expect_mark(mark),
            None => Ok(()),
        });
        if let Err(e) = checked {
            done_loading();
            crate::log_warning!(
                "Failed trying to load the MASTER synchronization DB from socket, discarding the received data"
            );
            return Err(e);
        }
        let (_applying, aof_was_on) = self.begin_install().inspect_err(|_| done_loading())?;
        let keys = install(server, entries);
        // The master's function libraries replace ours (after the shard locks: the VM is
        // always taken before them).
        install_functions(&functions);
        done_loading();
        crate::log_notice!("Done loading RDB, keys loaded: {}, keys expired: 0.", keys);
        if aof_was_on && crate::persistence::aof::rewrite::start_appendonly(server).is_err() {
            crate::log_warning!(
                "Failed enabling the AOF after successful master synchronization! Trying it again in one second."
            );
        }
        self.after_load(replid, offset, stream_db.db(databases));
        Ok(())
    }

    /// `repl-diskless-load disabled` with nothing to lose (an empty dataset, as for a fresh
    /// replica): the RDB is parsed while it arrives, so parsing overlaps the master's save
    /// (diskless) or the transfer (disk) instead of following it, and the bytes are kept and
    /// written to `dbfilename` at the end, as the disabled mode does. As in Redis's disabled
    /// mode, clients are served from the current (empty) dataset during the transfer, not
    /// answered `-LOADING`: the parsed keys replace it only once the whole transfer arrived
    /// intact, under every shard lock (`loading` is on for that install only). A failed
    /// transfer leaves the dataset as it was.
    fn full_sync_into_empty(&mut self, spec: &str, replid: &str, offset: u64) -> LinkResult<()> {
        // A load from the socket is one long step of the link (see `watchdog`).
        let _watched = crate::watchdog::long_step("replication link");
        let (mark, len) = transfer_spec(spec)?;
        self.start_transfer(len.map_or(-1, |l| l as i64));
        match len {
            Some(len) => crate::log_notice!(
                "MASTER <-> REPLICA sync: receiving {} bytes from master to disk",
                len
            ),
            None => crate::log_notice!(
                "MASTER <-> REPLICA sync: receiving streamed RDB from master with EOF to disk"
            ),
        }
        let server = self.server;
        let databases = server.config.load().databases;
        let mut copy = Vec::new();
        let mut stream_db = StreamDbAux::default();
        let mut functions = Vec::new();
        let mut entries = Vec::new();
        let parsed = {
            let mut reader = TeeReader {
                inner: LinkReader {
                    session: self,
                    left: len,
                    error: None,
                    pos: 0,
                },
                copy: &mut copy,
            };
            let mut sink = |e: crate::persistence::rdb::LoadedEntry| {
                db_in_range(&e, databases)?;
                entries.push(e);
                Ok(())
            };
            let mut aux = |k: &[u8], v: &[u8]| stream_db.take(k, v);
            let r = crate::persistence::rdb::read_rdb(&mut reader, &mut sink, &mut aux);
            rdb_read_outcome(r, reader.inner.error.take(), "", &mut functions)
        };
        parsed.and_then(|()| match &mark {
            Some(mark) => self.expect_mark(mark),
            None => Ok(()),
        })?;
        let (_applying, aof_was_on) = self.begin_install()?;
        crate::log_notice!("MASTER <-> REPLICA sync: Flushing old data");
        crate::log_notice!("MASTER <-> REPLICA sync: Loading DB in memory");
        let p = &server.persistence;
        p.loading_start_secs
            .store(crate::util::now_ms() / 1000, Ordering::Relaxed);
        p.loading_total_bytes
            .store(copy.len() as u64, Ordering::Relaxed);
        p.loading_loaded_bytes
            .store(copy.len() as u64, Ordering::Relaxed);
        p.loading.store(true, Ordering::SeqCst);
        let keys = install(server, entries);
        install_functions(&functions);
        p.loading.store(false, Ordering::SeqCst);
        crate::log_notice!("Done loading RDB, keys loaded: {}, keys expired: 0.", keys);
        std::thread::scope(|s| {
            s.spawn(|| save_transfer(server, &copy));
            if aof_was_on && crate::persistence::aof::rewrite::start_appendonly(server).is_err() {
                crate::log_warning!(
                    "Failed enabling the AOF after successful master synchronization! Trying it again in one second."
                );
            }
        });
        self.after_load(replid, offset, stream_db.db(databases));
        Ok(())
    }

    /// Reads the 40-byte EOF mark that closes a diskless transfer.
    fn expect_mark(&mut self, mark: &[u8]) -> LinkResult<()> {
        while self.buf.len() < EOF_MARK_BYTES {
            self.fill()?;
        }
        if &self.buf[..EOF_MARK_BYTES] != mark {
            return Err(LinkError::Protocol(
                "the diskless RDB does not end with its EOF mark".into(),
            ));
        }
        self.buf.drain(..EOF_MARK_BYTES);
        Ok(())
    }

    fn start_transfer(&self, size: i64) {
        let mut st = self.server.link.state.lock();
        st.transfer_size = size;
        st.transfer_read = 0;
        st.transfer_start_ms = crate::util::now_ms();
    }

    fn progress(&self) {
        self.server.link.state.lock().transfer_read = self.buf.len() as u64;
    }

    fn send_ack(&mut self) -> LinkResult<()> {
        let off = self.server.feed.with(|st| st.offset).to_string();
        self.send(&[b"REPLCONF", b"ACK", off.as_bytes()])?;
        self.last_ack_ms = crate::util::now_ms();
        Ok(())
    }

    /// Applies the command stream until the link ends. The commands one read completed are
    /// applied as one batch under one hold of the apply lock (one epoch check, one clock
    /// reading, one argument vector), so a busy stream costs the replica what its commands
    /// cost, not a round of locks and allocations each.
    fn stream_loop(&mut self) -> LinkResult<()> {
        self.set_status(LinkStatus::Connected);
        LINK_UP.store(true, Ordering::Relaxed);
        self.send_ack()?;
        let mut applier = Applier::new(self.server);
        applier.db = self.client.db;
        let mut args: Vec<Bytes> = Vec::new();
        loop {
            if !self.buf.is_empty() {
                let limits = Limits {
                    proto_max_bulk_len: self.server.config.load().proto_max_bulk_len,
                    authenticated: true,
                };
                let mut pb = BytesMut::from(&self.buf[..]);
                let mut pos = 0;
                let server = self.server;
                let mut applying = None;
                loop {
                    let before = pb.len();
                    match parse_command_into(&mut pb, &limits, &mut args) {
                        Ok(true) => {}
                        Ok(false) => break,
                        Err(e) => return Err(LinkError::Protocol(e.message())),
                    }
                    let n = before - pb.len();
                    let (start, end) = (pos, pos + n);
                    pos = end;
                    if args.is_empty() {
                        continue;
                    }
                    if applying.is_none() {
                        applying = Some(server.link.apply.lock());
                        if server.link.state.lock().epoch != self.epoch {
                            return Err(LinkError::Aborted);
                        }
                        applier.now_ms = crate::util::now_ms();
                    }
                    let raw = self.buf.get(start..end).unwrap_or_default();
                    if applier.apply(&mut self.client, &args, raw) {
                        // REPLCONF GETACK: answered with the offset before it, then counted.
                        self.send_ack()?;
                        let raw = self.buf.get(start..end).unwrap_or_default();
                        applier.feed_plain(raw);
                    }
                }
                drop(applying);
                self.buf.drain(..pos);
            }
            let now = crate::util::now_ms();
            if now.saturating_sub(self.last_ack_ms) >= 1000 {
                self.send_ack()?;
            }
            self.fill()?;
        }
    }
}

/// `repl-diskless-load disabled`: the received RDB also replaces `dbfilename`, as Redis's
/// replica writes the transfer to disk before loading it (written to a temporary file and
/// renamed, so the old snapshot stays whole until the new one is).
fn save_transfer(server: &Server, data: &[u8]) {
    let name = server.config.load().dbfilename.clone();
    let temp = format!(
        "temp-{}.{}.rdb",
        crate::util::now_ms() / 1000,
        std::process::id()
    );
    let written = std::fs::File::create(&temp).and_then(|mut f| {
        f.write_all(data)?;
        f.sync_all()?;
        std::fs::rename(&temp, &name)
    });
    if let Err(e) = written {
        let _ = std::fs::remove_file(&temp);
        crate::log_warning!(
            "Failed trying to rename the temp DB into {} in MASTER <-> REPLICA synchronization: {}",
            name,
            e
        );
    }
}

/// The socket as a `Read` for the RDB parser: the session's buffered bytes first, then more
/// from the link (bounded by the bulk length when there is one). A link failure is kept in
/// `error` (the parser only sees an I/O error).
struct LinkReader<'s, 'a> {
    session: &'s mut Session<'a>,
    left: Option<u64>,
    error: Option<LinkError>,
    /// Bytes of `session.buf` already handed out (dropped from it when the reader is: a
    /// drain per read would move the rest of the buffer every time).
    pos: usize,
}

impl Drop for LinkReader<'_, '_> {
    fn drop(&mut self) {
        self.session.buf.drain(..self.pos);
    }
}

impl Read for LinkReader<'_, '_> {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        if self.left == Some(0) || out.is_empty() {
            return Ok(0);
        }
        if self.pos == self.session.buf.len() {
            self.session.buf.clear();
            self.pos = 0;
        }
        while self.session.buf.is_empty() {
            match self.session.fill() {
                Ok(got) => {
                    self.session.server.link.state.lock().transfer_read += got as u64;
                }
                Err(e) => {
                    let msg = e.to_string();
                    self.error = Some(e);
                    return Err(std::io::Error::other(msg));
                }
            }
        }
        let avail = &self.session.buf[self.pos..];
        let mut n = out.len().min(avail.len());
        if let Some(left) = self.left {
            n = n.min(left as usize);
            self.left = Some(left - n as u64);
        }
        out[..n].copy_from_slice(&avail[..n]);
        self.pos += n;
        Ok(n)
    }
}

/// Whether every database of every shard is empty.
fn dataset_empty(server: &Server) -> bool {
    server.with_all(0, |ks| {
        ks.shards_mut()
            .iter()
            .all(|s| s.dbs.iter().all(|d| d.keys == 0))
    })
}

/// A reader that keeps a copy of what it read (the transfer, for `dbfilename`).
struct TeeReader<'c, R> {
    inner: R,
    copy: &'c mut Vec<u8>,
}

impl<R: Read> Read for TeeReader<'_, R> {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(out)?;
        self.copy.extend_from_slice(&out[..n]);
        Ok(n)
    }
}

/// Replaces the whole dataset with `entries` under every shard lock. Returns the keys
/// installed.
fn install(server: &Server, entries: Vec<crate::persistence::rdb::LoadedEntry>) -> usize {
    let n = entries.len();
    server.with_all(0, |ks| {
        ks.signal_flushed(None);
        for shard in ks.shards_mut() {
            for db in shard.dbs.iter_mut() {
                db.clear();
            }
            shard.replica_volatile.clear();
        }
        // The master's keys: none is this replica's to expire.
        ks.loading = true;
        for e in entries {
            ks.db = e.db;
            ks.insert_entry(&e.key, e.entry);
        }
    });
    n
}

/// The master's RDB names the database its stream selected last (AUX `repl-stream-db`): the
/// replica's stream applier starts there, as the master's next command assumes it.
#[derive(Default)]
struct StreamDbAux(usize);

impl StreamDbAux {
    /// Takes the AUX field if it is `repl-stream-db` (others are not ours to read here).
    fn take(&mut self, key: &[u8], value: &[u8]) {
        if key != b"repl-stream-db" {
            return;
        }
        if let Some(n) = std::str::from_utf8(value).ok().and_then(|s| s.parse().ok()) {
            self.0 = n;
        }
    }

    /// The stream's database, within the `databases` we have.
    fn db(&self, databases: usize) -> usize {
        self.0.min(databases.saturating_sub(1))
    }
}

/// A key of the master's RDB must belong to one of our databases.
fn db_in_range(
    e: &crate::persistence::rdb::LoadedEntry,
    databases: usize,
) -> Result<(), crate::persistence::rdb::RdbError> {
    if e.db >= databases {
        return Err(crate::persistence::rdb::RdbError::Corrupt {
            offset: 0,
            reason: format!("database {} out of range", e.db),
        });
    }
    Ok(())
}

/// Replaces the function libraries with those of the master's RDB.
fn install_functions(functions: &[Vec<u8>]) {
    crate::scripting::flush_libraries();
    for code in functions {
        if let Err(e) = crate::scripting::load_library(code) {
            crate::log_warning!("Failed loading a function library from the RDB: {}", e);
        }
    }
}

/// Flushes every database and loads an RDB from memory, under every shard lock. Returns the
/// stream's database (`repl-stream-db`).
fn load_rdb(server: &Server, data: &[u8]) -> LinkResult<usize> {
    let _watched = crate::watchdog::long_step("replication link");
    let databases = server.config.load().databases;
    let mut stream_db = StreamDbAux::default();
    let result = server.with_all(0, |ks| {
        ks.signal_flushed(None);
        for shard in ks.shards_mut() {
            for db in shard.dbs.iter_mut() {
                db.clear();
            }
            shard.replica_volatile.clear();
        }
        ks.loading = true;
        let mut sink = |e: crate::persistence::rdb::LoadedEntry| {
            db_in_range(&e, databases)?;
            ks.db = e.db;
            ks.insert_entry(&e.key, e.entry);
            Ok(())
        };
        let mut aux = |k: &[u8], v: &[u8]| stream_db.take(k, v);
        crate::persistence::rdb::read_rdb(&mut &data[..], &mut sink, &mut aux)
    });
    match result {
        Ok(stats) => {
            // A full sync replaces the function libraries too (after the shard locks are
            // released: the VM is always taken before them).
            install_functions(&stats.functions);
            crate::log_notice!(
                "Done loading RDB, keys loaded: {}, keys expired: 0.",
                stats.keys
            );
            Ok(stream_db.db(databases))
        }
        Err(e) => Err(LinkError::Protocol(format!(
            "Failed trying to load the MASTER synchronization DB from memory: {e}"
        ))),
    }
}

/// Applies the master's commands: SELECT, MULTI/EXEC and PING handled here, everything else
/// through the dispatcher and the command table.
struct Applier<'a> {
    server: &'a Server,
    db: usize,
    /// A MULTI in progress: the queued commands and the raw bytes since MULTI.
    multi: Option<(Vec<Vec<Bytes>>, Vec<u8>)>,
    scratch: Vec<u8>,
    /// What the commands of the master's transaction did, fed to the AOF at its EXEC.
    unit: Vec<crate::replication::Op>,
    /// The clock of the batch being applied (read once per batch by `stream_loop`).
    now_ms: u64,
}

impl<'a> Applier<'a> {
    fn new(server: &'a Server) -> Self {
        Applier {
            server,
            db: 0,
            multi: None,
            scratch: Vec::new(),
            unit: Vec::new(),
            now_ms: crate::util::now_ms(),
        }
    }

    /// Re-feeds bytes that change no data (no shard lock needed).
    fn feed_plain(&mut self, raw: &[u8]) {
        let poke = self.server.feed.with(|st| st.feed_raw(raw));
        poke_shards(self.server, poke);
    }

    /// Applies one command; true for REPLCONF GETACK (the caller acks, then feeds it).
    fn apply(&mut self, client: &mut Client, args: &[Bytes], raw: &[u8]) -> bool {
        let name = &args[0];
        let is = |n: &str| name.eq_ignore_ascii_case(n.as_bytes());
        if let Some((queue, bytes)) = &mut self.multi {
            bytes.extend_from_slice(raw);
            if !is("exec") {
                if !is("multi") {
                    queue.push(args.to_vec());
                }
                return false;
            }
            let (queue, bytes) = self.multi.take().unwrap_or_default();
            self.exec(client, &queue, &bytes);
            return false;
        }
        if is("multi") {
            self.multi = Some((Vec::new(), raw.to_vec()));
        } else if is("select") {
            self.select(client, args);
            let db = self.db;
            let poke = self.server.feed.with(|st| {
                st.stream_db = db;
                st.feed_raw(raw)
            });
            poke_shards(self.server, poke);
        } else if is("ping") {
            self.feed_plain(raw);
        } else if is("replconf") {
            let getack = args
                .get(1)
                .is_some_and(|a| a.eq_ignore_ascii_case(b"getack"));
            if getack {
                return true;
            }
            self.feed_plain(raw);
        } else {
            self.run(client, args, Some(raw));
            if crate::tracking::active() {
                crate::tracking::after_foreign(self.server);
            }
        }
        false
    }

    /// The master's SELECT: later commands run in that database.
    fn select(&mut self, client: &mut Client, args: &[Bytes]) {
        let n = std::str::from_utf8(args.get(1).map_or(&b""[..], |a| &a[..]))
            .ok()
            .and_then(|s| s.parse::<usize>().ok());
        if let Some(n) = n.filter(|&n| n < self.server.config.load().databases) {
            self.db = n;
            client.db = n;
        }
    }

    /// EXEC of the master's transaction: every shard held for the whole unit. A SELECT in it
    /// (a script's effects that changed database) applies to the commands after it, and the
    /// stream stays in the last database selected, as on the master.
    fn exec(&mut self, client: &mut Client, queue: &[Vec<Bytes>], raw: &[u8]) {
        let all: Vec<usize> = (0..self.server.nshards()).collect();
        let holds = self.server.hold_shards(&all);
        self.unit.clear();
        for args in queue {
            if args[0].eq_ignore_ascii_case(b"select") {
                self.select(client, args);
                continue;
            }
            self.run(client, args, None);
        }
        let unit = std::mem::take(&mut self.unit);
        let db = self.db;
        self.server.feed.with(|st| st.stream_db = db);
        let poke = self.server.feed.apply_upstream(&unit, true, Some(raw));
        drop(holds);
        poke_shards(self.server, poke);
        if crate::tracking::active() {
            crate::tracking::after_foreign(self.server);
        }
    }

    /// Runs one command with its reply discarded; re-feeds `raw` under its locks.
    fn run(&mut self, client: &mut Client, args: &[Bytes], raw: Option<&[u8]>) {
        let server = self.server;
        let nshards = server.nshards();
        client.db = self.db;
        let p = match dispatch::prepare(client, args, 0, nshards, false) {
            Ok(p) => p,
            Err(rej) => {
                let name = crate::commands::lookup(&args[0]).map(|c| c.name);
                critical_error(server, &rej.error, rej.full_name.or(name));
                if let Some(raw) = raw {
                    self.feed_plain(raw);
                }
                return;
            }
        };
        self.scratch.clear();
        let mut out = Out::new(&mut self.scratch, 2);
        let now_ms = self.now_ms;
        let (one, many) = match p.route {
            Route::Conn => {
                let Kind::Conn(f) = p.cmd.kind else { return };
                let mut ctx = ConnCtx {
                    client,
                    server,
                    shard: 0,
                    now_ms,
                    deliveries: Vec::new(),
                    notes: Vec::new(),
                    ready_keys: Vec::new(),
                    propagate: Vec::new(),
                };
                f(&mut ctx, args, &mut out);
                if self.scratch.first() == Some(&b'-') {
                    critical_error(server, &self.scratch, Some(p.full_name));
                }
                let deliveries = std::mem::take(&mut ctx.deliveries);
                let ops = std::mem::take(&mut ctx.propagate);
                let ready = std::mem::take(&mut ctx.ready_keys);
                let poke = self.feed_applied(ops, raw);
                poke_shards(server, poke);
                deliver(server, deliveries);
                wake_blocked(server, ready);
                return;
            }
            Route::Local => ([0], Vec::new()),
            Route::Remote(s) => ([s], Vec::new()),
            Route::Multi(set) => ([0], set),
        };
        let ids: &[usize] = if many.is_empty() { &one } else { &many };
        let Kind::Data(f) = p.cmd.kind else { return };
        let full_name = p.full_name;
        let (poke, ready) = self.run_data(f, args, ids, full_name, raw);
        poke_shards(server, poke);
        wake_blocked(server, ready);
    }

    /// Runs a data command under its shards' locks (one lock and no allocation in the common
    /// case, as the engine's `run_data`); re-feeds `raw` before they are released. Returns the
    /// shards to poke and the keys made ready.
    fn run_data(
        &mut self,
        f: crate::commands::DataFn,
        args: &[Bytes],
        ids: &[usize],
        full_name: &'static str,
        raw: Option<&[u8]>,
    ) -> (u64, Vec<ReadyKey>) {
        let server = self.server;
        let nshards = server.nshards();
        let started = crate::util::cycles::now();
        let mut single;
        let mut several;
        let guards: &mut [crate::shard::DataGuard<'_>] = match ids {
            [only] => match server.shards.get(*only) {
                Some(h) => {
                    single = [h.lock_data()];
                    &mut single
                }
                None => return (0, Vec::new()),
            },
            _ => {
                several = server.lock_shards(ids);
                &mut several
            }
        };
        self.scratch.clear();
        let mut out = Out::new(&mut self.scratch, 2);
        let done = {
            let mut ks = if guards.len() == 1 {
                Keyspace::one(&mut guards[0], nshards, self.db, self.now_ms)
            } else {
                let parts: Vec<&mut ShardData> = guards.iter_mut().map(|g| &mut **g).collect();
                Keyspace::many(parts, nshards, self.db, self.now_ms)
            };
            ks.from_master = true;
            ks.no_block = true;
            // What the command did is what our AOF logs (the master's bytes are what our
            // backlog and sub-replicas get): recorded only when there is an AOF.
            ks.prop.on = server.feed.aof_active();
            ks.exec(f, args, &mut out);
            if self.scratch.first() == Some(&b'-') {
                // Logged before the command reaches our backlog (its dump is the context).
                critical_error(server, &self.scratch, Some(full_name));
            }
            let ready = ks.take_ready();
            let ops = ks.take_ops();
            (self.feed_applied(ops, raw), ready)
        };
        // The master's commands count in our INFO commandstats, as in Redis.
        if let Some(g) = guards.first_mut() {
            let us = crate::util::cycles::us_between(started, crate::util::cycles::now());
            g.cmd_stats.record(full_name, us, false);
        }
        done
    }

    /// Feeds one applied command: alone (`raw` given), or into the transaction's unit.
    fn feed_applied(&mut self, ops: Vec<crate::replication::Op>, raw: Option<&[u8]>) -> u64 {
        match raw {
            Some(raw) => self.server.feed.apply_upstream(&ops, true, Some(raw)),
            None => {
                self.unit.extend(ops);
                0
            }
        }
    }
}

/// A command of our master's stream failed here: logged as Redis's `afterErrorReply` does
/// (the replies to the master are never sent), with the latest bytes of the backlog, which
/// do not hold the failed command yet.
fn critical_error(server: &Server, reply: &[u8], name: Option<&str>) {
    let mut e = reply.strip_prefix(b"-").unwrap_or(reply);
    if let Some(end) = e.iter().position(|&b| b == b'\r') {
        e = &e[..end];
    }
    let e = &e[..e.len().min(4096)];
    crate::log_warning!(
        "== CRITICAL == This replica is sending an error to its master: '{}' after processing the command '{}'",
        String::from_utf8_lossy(e),
        name.unwrap_or("<unknown>")
    );
    let tail = server.feed.with(|st| st.backlog_tail(256));
    if let Some(tail) = tail.filter(|t| !t.is_empty()) {
        crate::log_warning!("Latest backlog is: '{}'", crate::util::repr(&tail));
    }
}

/// A key made ready for blocked clients: (owner shard, db, key).
type ReadyKey = (usize, usize, Box<[u8]>);

/// Keys the master's command made ready for clients blocked on this replica (XREAD BLOCK,
/// or BLPOP on a writable replica): each key's owner shard serves their waiters on its
/// next turn, as Redis serves them right after the command (`handleClientsBlockedOnKeys`).
fn wake_blocked(server: &Server, ready: Vec<ReadyKey>) {
    if ready.is_empty() {
        return;
    }
    let nshards = server.nshards();
    let mut by_shard: Vec<Vec<ReadyKey>> = vec![Vec::new(); nshards];
    for r in ready {
        if let Some(keys) = by_shard.get_mut(r.0) {
            keys.push(r);
        }
    }
    for (sid, keys) in by_shard.into_iter().enumerate() {
        let Some(h) = server.shards.get(sid).filter(|_| !keys.is_empty()) else {
            continue;
        };
        // The link is not a shard: it posts as the outside sender, and waits for room
        // rather than dropping a wake-up (its waiters would block forever).
        let mut batch = vec![crate::shard::mesh::Msg::Ready(keys)];
        while !h.mailbox.post(nshards, &mut batch) {
            if server.shutdown.load(Ordering::Relaxed) {
                return;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    }
}

fn poke_shards(server: &Server, poke: u64) {
    if poke == 0 {
        return;
    }
    for (i, h) in server.shards.iter().enumerate() {
        if poke & (1u64 << (i % 64)) != 0 {
            h.mailbox.poke();
        }
    }
}

/// Hands PUBLISH deliveries of the master's stream to the subscribers' shards.
fn deliver(server: &Server, deliveries: Vec<crate::pubsub::Delivery>) {
    for d in deliveries {
        if let Some(h) = server.shards.get(d.to.shard) {
            let mut batch = vec![crate::shard::mesh::Msg::Publish(d)];
            h.mailbox.post(server.nshards(), &mut batch);
        }
    }
}

/// REPLICAOF host port | NO ONE (and SLAVEOF).
pub fn replicaof_command(ctx: &mut ConnCtx, args: &[Bytes], out: &mut Out) {
    let server = ctx.server;
    if super::failover::active() {
        out.error("ERR REPLICAOF not allowed while failing over.");
        return;
    }
    if args[1].eq_ignore_ascii_case(b"no") && args[2].eq_ignore_ascii_case(b"one") {
        if is_replica() {
            promote(server);
            crate::log_notice!(
                "MASTER MODE enabled (user request from '{}')",
                ctx.client.shared.addr
            );
        }
        out.ok();
        return;
    }
    if ctx.client.replica.is_some() {
        out.error("ERR Command is not valid when client is a replica.");
        return;
    }
    let port = match crate::commands::parse::i64_arg(&args[2]) {
        Ok(p) if (0..=65535).contains(&p) => p as u16,
        _ => {
            out.error("ERR Invalid master port");
            return;
        }
    };
    let host = String::from_utf8_lossy(&args[1]).into_owned();
    let same = {
        let st = server.link.state.lock();
        st.master
            .as_ref()
            .is_some_and(|(h, p)| h.eq_ignore_ascii_case(&host) && *p == port)
    };
    if same {
        crate::log_notice!("REPLICAOF would result into synchronization with the master we are already connected with. No operation performed.");
        out.raw(b"+OK Already connected to specified master\r\n");
        return;
    }
    set_master(server, &host, port);
    crate::log_notice!(
        "REPLICAOF {}:{} enabled (user request from '{}')",
        host,
        port,
        ctx.client.shared.addr
    );
    out.ok();
}

/// What reading the master's RDB came to: the link's own failure first (a short read, logged
/// as Redis's `rdbReportReadError` logs it), then the RDB's; on success the function
/// libraries it carried go to `functions`. `how` qualifies the error text (" from socket").
fn rdb_read_outcome(
    r: Result<crate::persistence::rdb::RdbStats, crate::persistence::rdb::RdbError>,
    link_error: Option<LinkError>,
    how: &str,
    functions: &mut Vec<Vec<u8>>,
) -> Result<(), LinkError> {
    match (r, link_error) {
        (_, Some(link_error)) => {
            crate::log_warning!(
                "Internal error in RDB reading offset 0, function at rdb.c:0 -> Unexpected EOF reading RDB file"
            );
            Err(link_error)
        }
        (Err(e), None) => {
            let sep = if how.is_empty() { "" } else { " " };
            Err(LinkError::Protocol(format!(
                "Failed trying to load the MASTER synchronization DB{sep}{how}: {e}"
            )))
        }
        (Ok(stats), None) => {
            *functions = stats.functions;
            Ok(())
        }
    }
}

/// The transfer announced after +FULLRESYNC: `$EOF:<40-byte mark>` (diskless, ends with the
/// mark) or `$<length>`. Returns (mark, length), one of them set.
fn transfer_spec(spec: &str) -> LinkResult<(Option<Vec<u8>>, Option<u64>)> {
    match spec.strip_prefix("EOF:") {
        Some(m) if m.len() == EOF_MARK_BYTES => Ok((Some(m.as_bytes().to_vec()), None)),
        Some(_) => Err(LinkError::Protocol("bad EOF marker".into())),
        None => spec
            .parse::<u64>()
            .map(|len| (None, Some(len)))
            .map_err(|_| LinkError::Protocol(format!("bad bulk length {spec}"))),
    }
}
