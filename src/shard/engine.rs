//! The shard event loop: accept, read, parse, dispatch, route, reply — one thread, one ring.
//!
//! A loop turn: wait for I/O events (one submit per turn), drain the mailbox, run the commands
//! of every connection that received bytes, post the turn's batches to other shards, hand
//! finished replies to the I/O backend, and run the periodic cron (active expiry) on time.

use super::io::{Event, Io, Token};
use super::mesh::{ConnRef, Msg, RemoteCmd};
use super::ShardHandle;
use crate::commands::Kind;
use crate::config::Config;
use crate::protocol::{parse_command_into, Limits, Out};
use crate::server::client::Queued;
use crate::server::dispatch::{self, Route};
use crate::server::{Client, ClientShared, ConnCtx, Server};
use crate::storage::blocking::{BlockRequest, NullReply, WaitFor, Waiter};
use crate::storage::{key_slot, slot_owner, Keyspace, ShardData};
use bytes::Bytes;
use std::os::fd::RawFd;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

mod buffers;
mod repl_pump;
mod script_busy;
mod tracking;

/// Bytes read from a connection per loop turn before others get their turn.
const CONN_TURN_CMDS_MAX: usize = 4096;
/// The argument vector kept for the next commands holds at most this many slots: a command
/// of 100,000 arguments run here would otherwise leave 3.2 MB in `used_memory` until a hop
/// to another shard happens to take the vector (Redis frees `argv` after every command).
const ARGS_SCRATCH_KEEP: usize = 1024;

pub struct Shard<I: Io> {
    id: usize,
    nshards: usize,
    io: I,
    server: Arc<Server>,
    handle: Arc<ShardHandle>,
    conns: Vec<Option<Client>>,
    gens: Vec<u32>,
    free: Vec<u32>,
    /// Connections with unprocessed input.
    ready: Vec<Token>,
    /// The previous turn's `ready`, kept for its capacity.
    ready_spare: Vec<Token>,
    /// This turn's `ready` while the turn works through it, and how far it got: a script
    /// run by one of them serves the rest in busy mode (their input was read already, so
    /// no poll will report it again).
    turn_ready: Vec<Token>,
    turn_pos: usize,
    /// Connections with output to hand to the backend.
    to_send: Vec<Token>,
    accepted: Vec<RawFd>,
    closed: Vec<Token>,
    /// Outgoing message batches, by destination shard.
    outbox: Vec<Vec<Msg>>,
    spare_msgs: Vec<Msg>,
    cfg: Arc<Config>,
    cfg_gen: u64,
    /// The ACL epoch this shard's connections reflect, and whether new ones must AUTH.
    acl_epoch: u64,
    acl_auth_required: bool,
    next_cron_ms: u64,
    /// When a client last had a command to run (the allocator's collection waits for quiet).
    last_busy_ms: u64,
    /// Commands sent to other shards this turn, added to the statistics once per turn.
    hops_out_pending: u64,
    /// Connections waiting for CLIENT PAUSE to end.
    paused: Vec<Token>,
    /// Connections blocked in BLPOP & co. (checked for timeouts).
    blocked: Vec<Token>,
    /// Keyspace events of the command just run, published once its locks are released.
    pending_notes: Vec<crate::pubsub::Notification>,
    /// The loop turn's clock (Unix ms): one reading per turn, refreshed after commands that
    /// may take long (connection-level ones).
    now_ms: u64,
    /// Keys written this turn that blocked clients wait on: (shard, db, key).
    ready_keys: Vec<(usize, usize, Box<[u8]>)>,
    /// The argument vector `process_client` parses every command into, kept between turns.
    args_scratch: Vec<Bytes>,
    /// While this thread runs a busy script: input and a finished send that arrived for the
    /// script's own connection (out of `conns` meanwhile), given back when it ends.
    script_stash: Vec<(Token, Vec<u8>)>,
    script_sent: Option<(Token, Vec<u8>)>,
    /// Shards (bit i = shard i) whose replicas got stream data from this shard's writes this
    /// turn: they are poked awake once per turn.
    poke: u64,
    /// This shard's connections that are replicas (SYNC/PSYNC), fed from their sinks.
    replicas: Vec<Token>,
    /// When the stream was last moved to them, and the feed's urgent count then
    /// (`repl_pump`).
    repl_pumped: Instant,
    repl_urgent_seen: u64,
    /// Connections whose replies wait for the AOF to be durable (`appendfsync always`).
    aof_held: Vec<Token>,
    /// The AOF stream's end when this shard last rang the AOF writer.
    aof_rung: u64,
    /// Connections waiting in WAIT for replicas' acknowledgements.
    waiting_acks: Vec<Token>,
    /// Cron passes so far: which clients' buffers are resized in this one (`clients_cron`).
    cron_ticks: u64,
}

/// How `run_data` takes its shard locks.
#[derive(Clone, Copy)]
enum Lock {
    /// Wait for them (in ascending shard order).
    Wait,
    /// One shard's lock, only if it is free now or within a short spin.
    Try,
}

enum Flow {
    Continue,
    Park(Vec<Bytes>),
    Stop,
}

impl<I: Io> Shard<I> {
    pub fn new(id: usize, io: I, server: Arc<Server>, handle: Arc<ShardHandle>) -> Shard<I> {
        let nshards = server.nshards();
        let cfg = server.config.load();
        let cfg_gen = server.config.generation();
        Shard {
            id,
            nshards,
            io,
            server,
            handle,
            conns: Vec::new(),
            gens: Vec::new(),
            free: Vec::new(),
            ready: Vec::new(),
            ready_spare: Vec::new(),
            turn_ready: Vec::new(),
            turn_pos: 0,
            to_send: Vec::new(),
            accepted: Vec::new(),
            closed: Vec::new(),
            outbox: (0..nshards).map(|_| Vec::new()).collect(),
            spare_msgs: Vec::new(),
            cfg,
            cfg_gen,
            acl_epoch: 0,
            acl_auth_required: crate::acl::auth_required(),
            next_cron_ms: 0,
            last_busy_ms: 0,
            hops_out_pending: 0,
            paused: Vec::new(),
            blocked: Vec::new(),
            pending_notes: Vec::new(),
            now_ms: crate::util::now_ms(),
            ready_keys: Vec::new(),
            args_scratch: Vec::new(),
            script_stash: Vec::new(),
            script_sent: None,
            poke: 0,
            replicas: Vec::new(),
            repl_pumped: Instant::now(),
            repl_urgent_seen: 0,
            aof_held: Vec::new(),
            aof_rung: 0,
            waiting_acks: Vec::new(),
            cron_ticks: 0,
        }
    }

    pub fn run(mut self) {
        crate::watchdog::register_thread(&format!("shard {}", self.id), &self.cfg);
        while !self.server.shutdown.load(Ordering::Relaxed) {
            self.turn();
        }
        for t in 0..self.conns.len() {
            if self.conns[t].is_some() {
                self.close_client(t as Token);
            }
        }
    }

    fn turn(&mut self) {
        self.now_ms = crate::util::now_ms();
        crate::watchdog::pet(self.now_ms);
        let mut timeout = Duration::from_millis(self.next_cron_ms.saturating_sub(self.now_ms));
        let busy = !self.ready.is_empty() || self.outbox.iter().any(|b| !b.is_empty());
        if !self.paused.is_empty() || !self.waiting_acks.is_empty() {
            timeout = timeout.min(Duration::from_millis(10));
        }
        if let Some(ms) = self.nearest_block_deadline_ms() {
            let now = crate::util::now_ms();
            timeout = timeout.min(Duration::from_millis(ms.saturating_sub(now)));
        }
        if !self.replicas.is_empty() {
            if let Some(wait) = self.replica_wait() {
                timeout = timeout.min(wait);
            }
        }
        if busy || !self.handle.mailbox.prepare_sleep() {
            timeout = Duration::ZERO;
        }
        {
            let conns = &mut self.conns;
            let ready = &mut self.ready;
            let to_send = &mut self.to_send;
            let accepted = &mut self.accepted;
            let closed = &mut self.closed;
            let server = &self.server;
            let (cfg, id, now_ms) = (&self.cfg, self.id, self.now_ms);
            let mut handler = |ev: Event<'_>| match ev {
                Event::Accepted(fd) => accepted.push(fd),
                Event::Data(t, bytes) => {
                    if let Some(Some(c)) = conns.get_mut(t as usize) {
                        if !c.closing {
                            if crate::server::buffers::append_input(c, bytes) {
                                crate::server::buffers::input_grew(server, id, c, cfg, now_ms);
                            }
                            server
                                .stats
                                .net_input_bytes
                                .fetch_add(bytes.len() as u64, Ordering::Relaxed);
                            ready.push(t);
                        }
                    }
                }
                Event::Closed(t) | Event::SendFailed(t) => closed.push(t),
                Event::SendDone(t, buf) => {
                    if let Some(Some(c)) = conns.get_mut(t as usize) {
                        c.sending = false;
                        c.spare = buf;
                        crate::server::buffers::on_send_done(c);
                        to_send.push(t);
                    }
                }
                Event::Wake => {}
            };
            if let Err(e) = self.io.poll(Some(timeout), &mut handler) {
                crate::log_warning!("shard {}: I/O poll failed: {}", self.id, e);
            }
        }
        self.handle.mailbox.woke();
        self.replica_woke();
        if crate::scripting::wait_for_script(self.id) {
            // A script on another thread is busy: serve connections without shard locks,
            // polling again soon (the cron, which would set the poll timeout, waits too).
            self.busy_turn();
            std::thread::sleep(Duration::from_millis(1));
            return;
        }
        self.now_ms = crate::util::now_ms();
        self.refresh_config();
        for fd in std::mem::take(&mut self.accepted) {
            self.on_accept(fd);
        }
        for t in std::mem::take(&mut self.closed) {
            self.close_client(t);
        }
        self.drain_mail();
        if !self.ready_keys.is_empty() {
            self.serve_ready();
        }
        self.resume_paused();
        if !self.waiting_acks.is_empty() {
            self.answer_waits();
        }
        self.expire_blocked();
        // Swapped with last turn's vector, not taken: a fresh one would allocate every turn.
        let spare = std::mem::take(&mut self.ready_spare);
        self.turn_ready = std::mem::replace(&mut self.ready, spare);
        if !self.turn_ready.is_empty() {
            self.last_busy_ms = self.now_ms;
        }
        self.turn_pos = 0;
        while let Some(&t) = self.turn_ready.get(self.turn_pos) {
            self.turn_pos += 1;
            self.process_client(t);
        }
        let mut ready = std::mem::take(&mut self.turn_ready);
        ready.clear();
        self.ready_spare = ready;
        self.flush_outbox();
        if !self.replicas.is_empty() {
            self.pump_replicas();
        }
        self.flush_sends();
        // Not while a script runs: its active expiry would wait for the script's shard locks.
        if self.now_ms >= self.next_cron_ms && !crate::scripting::running() {
            self.cron();
        }
        let turns = &self.handle.turns;
        turns.store(turns.load(Ordering::Relaxed) + 1, Ordering::Release);
    }

    fn refresh_config(&mut self) {
        let g = self.server.config.generation();
        if g != self.cfg_gen {
            self.cfg = self.server.config.load();
            self.cfg_gen = g;
            crate::acl::apply_config(&self.cfg);
            crate::watchdog::apply_config(&self.cfg);
        }
        let e = crate::acl::epoch();
        if e != self.acl_epoch {
            self.acl_epoch = e;
            self.acl_auth_required = crate::acl::auth_required();
            crate::acl::refresh_clients(self.conns.iter_mut().flatten());
        }
    }

    fn on_accept(&mut self, fd: RawFd) {
        let srv = &self.server;
        if srv.connected_clients.load(Ordering::Relaxed) >= self.cfg.maxclients {
            let msg = b"-ERR max number of clients reached\r\n";
            // SAFETY: writing a static buffer to a socket we own, then closing it.
            unsafe {
                libc::write(fd, msg.as_ptr() as *const libc::c_void, msg.len());
                libc::close(fd);
            }
            srv.stats
                .rejected_connections
                .fetch_add(1, Ordering::Relaxed);
            return;
        }
        let token = match self.free.pop() {
            Some(t) => t,
            None => {
                self.conns.push(None);
                self.gens.push(0);
                (self.conns.len() - 1) as Token
            }
        };
        self.gens[token as usize] = self.gens[token as usize].wrapping_add(1);
        let gen = self.gens[token as usize];
        let (addr, laddr, unix) = match peer_names(fd) {
            Some(names) => (names.0, names.1, false),
            // A Unix socket client: Redis names both ends `<unixsocket>:0`.
            None => {
                let path = self.cfg.unixsocket.as_deref().unwrap_or_default();
                (format!("{path}:0"), format!("{path}:0"), true)
            }
        };
        if !unix {
            set_keepalive(fd, self.cfg.tcp_keepalive_secs);
        }
        let shared = Arc::new(ClientShared {
            id: srv.next_client_id.fetch_add(1, Ordering::Relaxed),
            shard: self.id,
            token,
            addr,
            laddr,
            unix,
            fd,
            created_ms: crate::util::now_ms(),
            name: Mutex::new(Vec::new()),
            lib_name: Mutex::new(Vec::new()),
            lib_ver: Mutex::new(Vec::new()),
            db: Default::default(),
            last_interaction_ms: crate::util::now_ms().into(),
            last_cmd: std::ptr::null_mut::<crate::commands::Cmd>().into(),
            proto: 2.into(),
            gen: 0,
            bufs: Default::default(),
            flags: Mutex::new("N".to_string()),
            kill: Default::default(),
            waiter: Mutex::new(None),
            tracking: Default::default(),
        });
        let auth = !self.acl_auth_required;
        srv.register_client(shared.clone());
        srv.connected_clients.fetch_add(1, Ordering::Relaxed);
        srv.stats
            .connections_received
            .fetch_add(1, Ordering::Relaxed);
        self.handle.connections.fetch_add(1, Ordering::Relaxed);
        let mut client = Client::new(token, gen, fd, shared, auth);
        client.acl = crate::acl::default_perms();
        self.conns[token as usize] = Some(client);
        if let Err(e) = self.io.add_conn(token, fd) {
            crate::log_warning!("Error registering fd event for the new client: {}", e);
            self.close_client(token);
        }
    }

    fn close_client(&mut self, token: Token) {
        let Some(slot) = self.conns.get_mut(token as usize) else {
            return;
        };
        let Some(mut c) = slot.take() else { return };
        // Out of the registry before the descriptor closes: see `Server::drop_and_shut_down`.
        self.server.drop_client(c.id(), true);
        self.io.close(token);
        crate::server::buffers::forget(&self.server, self.id, &mut c);
        if !c.watched.is_empty() {
            crate::commands::multi::unwatch_all(&self.server, &mut c);
        }
        if c.subscriptions() > 0 {
            crate::commands::pubsub::unsubscribe_all(&self.server, self.id, &mut c);
        }
        crate::tracking::forget(&c.shared);
        if let Some(w) = &c.blocked {
            w.claim();
            self.server.blocked_clients.fetch_sub(1, Ordering::Relaxed);
            self.blocked.retain(|&t| t != token);
            if let Ok(mut g) = c.shared.waiter.lock() {
                *g = None;
            }
        }
        if let Some(sink) = &c.replica {
            sink.closed.store(true, Ordering::Relaxed);
            self.replicas.retain(|&t| t != token);
            self.server
                .connected_replicas
                .fetch_sub(1, Ordering::Relaxed);
            self.server.feed.with(|st| st.detach_replica(sink));
        }
        if c.monitor {
            if let Ok(mut m) = self.server.monitors.lock() {
                m.retain(|r| !(r.shard == self.id && r.token == token && r.gen == c.gen));
                self.server.monitor_count.store(m.len(), Ordering::SeqCst);
            }
        }
        crate::acl::forget_client(c.id());
        self.handle.connections.fetch_sub(1, Ordering::Relaxed);
        self.free.push(token);
    }

    fn client(&mut self, token: Token) -> Option<&mut Client> {
        conn_mut(&mut self.conns, token)
    }

    /// Runs the commands a connection has buffered, until it runs out of complete commands,
    /// must wait for in-flight replies, or closes.
    fn process_client(&mut self, token: Token) {
        // One vector for every command of the pipeline (see `parse_command_into`).
        let mut args = std::mem::take(&mut self.args_scratch);
        for _ in 0..CONN_TURN_CMDS_MAX {
            let limit = self.cfg.client_query_buffer_limit as usize;
            let max_bulk = self.cfg.proto_max_bulk_len;
            let no_pass = !self.acl_auth_required;
            let Some(c) = conn_mut(&mut self.conns, token) else {
                break;
            };
            // A blocked client's next commands wait for its reply, as in Redis (which reads
            // nothing more of a blocked client's query buffer until it is unblocked).
            if c.closing
                || c.close_after_reply
                || c.wait_ack.is_some()
                || c.blocked.is_some()
                || c.shared.kill.load(Ordering::Relaxed)
            {
                break;
            }
            c.qbuf_peak = c.qbuf_peak.max(c.inbuf.len());
            if let Some(a) = c.parked.take() {
                args = a;
            } else {
                let limits = Limits {
                    proto_max_bulk_len: max_bulk,
                    authenticated: c.authenticated || no_pass,
                };
                match parse_command_into(&mut c.inbuf, &limits, &mut args) {
                    Ok(true) => {}
                    Ok(false) => {
                        crate::server::buffers::prepare_big_arg(c);
                        if c.inbuf.len() > limit {
                            crate::log_warning!(
                                "Closing client that reached max query buffer length: {} (qbuf initial bytes: {})",
                                crate::commands::connection::client_line(&c.shared, self.now_ms, None),
                                crate::util::repr(&c.inbuf[..c.inbuf.len().min(64)])
                            );
                            c.closing = true;
                            self.closed.push(token);
                        }
                        break;
                    }
                    Err(e) => {
                        let mut out = Out::new(&mut c.out, c.proto);
                        out.error(&e.message());
                        c.close_after_reply = true;
                        self.to_send.push(token);
                        break;
                    }
                }
            }
            if self.evict_clients_for(token) {
                break;
            }
            let tracking = crate::tracking::active();
            let outer = if tracking {
                self.tracking_before(token)
            } else {
                (0, false)
            };
            let flow = self.execute(token, &mut args);
            if tracking || crate::tracking::active() {
                self.tracking_after(token, &args, outer);
            }
            args.clear();
            match flow {
                Flow::Continue => {}
                Flow::Park(parked) => {
                    if let Some(c) = self.client(token) {
                        c.parked = Some(parked);
                    }
                    break;
                }
                Flow::Stop => break,
            }
            if self.obuf_hard_limit_reached(token) {
                break;
            }
        }
        args.clear();
        if args.capacity() > ARGS_SCRATCH_KEEP {
            args = Vec::new();
        }
        self.args_scratch = args;
        if self.client(token).is_none() {
            return;
        }
        let more = self.client(token).is_some_and(|c| {
            c.parked.is_none()
                && c.inflight == 0
                && c.blocked.is_none()
                && c.wait_ack.is_none()
                && !c.inbuf.is_empty()
                && !c.closing
        });
        if more {
            // The per-turn command budget ran out with input left: continue next turn.
            self.ready.push(token);
        }
        self.hold_for_aof(token);
        if let Some(c) = self.client(token) {
            crate::server::client::shrink_idle_query_buffer(c);
        }
        self.to_send.push(token);
    }

    /// Runs one parsed command. `args` stays the caller's: whatever keeps the arguments (a
    /// parked command, a MULTI queue, a hop to another shard) takes them out of it.
    fn execute(&mut self, token: Token, args: &mut Vec<Bytes>) -> Flow {
        let nshards = self.nshards;
        let auth_required = self.acl_auth_required;
        let home = self.id;
        let handle = &self.handle;
        let Some(c) = conn_mut(&mut self.conns, token) else {
            return Flow::Stop;
        };
        if args.is_empty() {
            return Flow::Continue;
        }
        let mut prepared = dispatch::prepare(c, args, home, nshards, auth_required)
            .and_then(|p| crate::acl::admit(c, p, args))
            .and_then(|p| crate::persistence::snapshot::admit(&self.server, &self.cfg, c, p))
            .and_then(|p| {
                let (notes, poke) = (&mut self.pending_notes, &mut self.poke);
                crate::storage::evict::admit_command(&self.server, &self.cfg, c, p, notes, poke)
            })
            .and_then(|p| {
                let flags = crate::commands::multi::admission_flags(c, p.cmd, args);
                match crate::replication::replica::reject_flags(&self.cfg, &self.server, flags) {
                    Some(e) => Err(dispatch::Rejected {
                        error: e.as_bytes().to_vec(),
                        full_name: Some(p.full_name),
                    }),
                    None => Ok(p),
                }
            });
        if c.replica.is_some() {
            if let Some(why) = crate::replication::master::replica_command(&prepared) {
                let line = crate::commands::connection::client_line(&c.shared, self.now_ms, None);
                crate::log_warning!("{}, disconnecting it: {}", why, line);
                c.closing = true;
                self.closed.push(token);
                return Flow::Stop;
            }
        }
        if c.inflight > 0 {
            let same = matches!(&prepared, Ok(p) if p.route == Route::Remote(c.inflight_shard));
            if !same {
                return Flow::Park(std::mem::take(args));
            }
        }
        let now_ms = self.now_ms;
        c.shared
            .last_interaction_ms
            .store(now_ms, Ordering::Relaxed);
        if crate::scripting::wait_for_script(home) {
            if let Ok(p) = &prepared {
                if p.cmd.flags & crate::commands::flag::ALLOW_BUSY == 0
                    || !matches!(p.cmd.kind, Kind::Conn(_))
                {
                    // A rejection like any other: it flags an open transaction, and a
                    // rejected EXEC discards it (Redis's `rejectCommand`).
                    prepared = Err(dispatch::Rejected {
                        error: crate::scripting::busy_error().as_bytes().to_vec(),
                        full_name: Some(p.full_name),
                    });
                }
            }
        }
        let p = match prepared {
            Ok(p) => p,
            Err(mut rej) => {
                if c.multi.is_some() {
                    c.multi_error = true;
                }
                if rej.full_name == Some("exec") {
                    // Redis aborts the transaction when EXEC itself is rejected.
                    let reason = rej
                        .error
                        .strip_prefix(b"ERR ")
                        .unwrap_or(&rej.error)
                        .to_vec();
                    rej.error = b"EXECABORT Transaction discarded because of: ".to_vec();
                    rej.error.extend_from_slice(&reason);
                    c.multi = None;
                    c.multi_error = false;
                    crate::commands::multi::unwatch_all(&self.server, c);
                }
                let mut out = Out::new(&mut c.out, c.proto);
                out.error_bytes(&rej.error);
                if crate::scripting::running() {
                    // Never wait for a script's shard locks just to count a rejection.
                    return Flow::Continue;
                }
                let mut data = handle.lock_data();
                let st = &mut data.cmd_stats;
                st.record_rejected(rej.full_name);
                if let Some(code) = out.last_error_code.as_deref() {
                    st.record_error(code);
                }
                return Flow::Continue;
            }
        };
        let paused = self.server.paused_for(
            p.cmd.flags & (crate::commands::flag::WRITE | crate::commands::flag::MAY_REPLICATE)
                != 0,
            now_ms,
        );
        if paused && p.cmd.name != "client" {
            self.paused.push(token);
            return Flow::Park(std::mem::take(args));
        }
        let monitored = self.server.monitor_count.load(Ordering::Relaxed) > 0;
        if monitored
            && (p.cmd.flags & (crate::commands::flag::SKIP_MONITOR | crate::commands::flag::ADMIN)
                == 0
                || crate::scripting::is_script_call(p.cmd.name))
        {
            // Scripts and functions are skip-monitor commands that Redis feeds itself, so
            // that the commands they run appear after them.
            self.feed_monitors(token, p.cmd, args);
        }
        let Some(c) = conn_mut(&mut self.conns, token) else {
            return Flow::Stop;
        };
        c.shared.set_last_cmd(p.cmd);
        if c.proto == 2
            && c.subscriptions() > 0
            && !crate::commands::pubsub::allowed_in_subscribed_mode(p.cmd.name)
        {
            Out::new(&mut c.out, c.proto).error(&format!(
                "ERR Can't execute '{}': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context",
                p.full_name
            ));
            return Flow::Continue;
        }
        if c.multi.is_some()
            && !matches!(
                p.cmd.name,
                "exec" | "discard" | "multi" | "watch" | "quit" | "reset"
            )
        {
            let flags = crate::commands::multi::admission_flags(c, p.cmd, args);
            let mut out = Out::new(&mut c.out, c.proto);
            if p.cmd.flags & crate::commands::flag::NO_MULTI != 0 {
                out.error("ERR Command not allowed inside a transaction");
                c.multi_error = true;
            } else if let Some(q) = c.multi.as_mut() {
                q.push(Queued {
                    cmd: p.cmd,
                    full_name: p.full_name,
                    args: std::mem::take(args),
                    flags,
                });
                out.simple("QUEUED");
            }
            return Flow::Continue;
        }
        if p.cmd.name == "exec" && c.multi.is_some() {
            self.run_exec(token);
            if !self.ready_keys.is_empty() {
                self.serve_ready();
            }
            return Flow::Continue;
        }
        c.reply_skip_this = c.reply_skip_next;
        c.reply_skip_next = false;
        let out_before = c.out.len();
        let flow = match p.route {
            Route::Conn => {
                let flow = self.run_conn(token, p.cmd, p.full_name, args, now_ms);
                if monitored {
                    for line in crate::scripting::take_monitor_lines() {
                        self.send_monitor_line(line);
                    }
                }
                flow
            }
            Route::Local => {
                self.run_data(token, p.cmd, p.full_name, args, &[home], now_ms, Lock::Wait);
                Flow::Continue
            }
            Route::Multi(set) => {
                self.run_data(token, p.cmd, p.full_name, args, &set, now_ms, Lock::Wait);
                if p.cmd.name == "flushall" {
                    crate::persistence::snapshot::after_flushall(&self.server);
                }
                Flow::Continue
            }
            Route::Remote(s) => {
                // Direct when nothing of this connection is queued for that shard (a queued
                // command must not be overtaken) and its lock can be had at once; else the hop.
                let direct = self.client(token).is_some_and(|c| c.inflight == 0)
                    && self.run_data(token, p.cmd, p.full_name, args, &[s], now_ms, Lock::Try);
                if !direct {
                    self.send_remote(token, s, p.cmd, p.full_name, std::mem::take(args));
                    Flow::Continue
                } else if self.evict_clients_for(token) {
                    // As when a hop's replies land: the reply counts for client eviction at
                    // once, before the next command's key eviction sees it in used_memory.
                    Flow::Stop
                } else {
                    Flow::Continue
                }
            }
        };
        // CLIENT REPLY OFF/SKIP drop the command's reply, except pub/sub confirmations, which
        // Redis sends as pushes whatever the reply mode.
        let pushes = crate::commands::pubsub::is_subscription_command(p.cmd.name);
        if let Some(c) = self.client(token) {
            if (c.reply_off || c.reply_skip_this) && c.out.len() >= out_before && !pushes {
                c.out.truncate(out_before);
            }
        }
        if !self.pending_notes.is_empty() {
            let notes = std::mem::take(&mut self.pending_notes);
            self.publish_notifications(notes);
        }
        if !self.ready_keys.is_empty() {
            self.serve_ready();
        }
        flow
    }

    fn run_conn(
        &mut self,
        token: Token,
        cmd: &'static crate::commands::Cmd,
        full: &'static str,
        args: &[Bytes],
        now_ms: u64,
    ) -> Flow {
        let Kind::Conn(f) = cmd.kind else {
            return Flow::Continue;
        };
        if crate::scripting::runs_script(cmd) {
            return self.run_script(token, f, full, args, now_ms, true);
        }
        if cmd.name == "debug"
            && args
                .get(1)
                .is_some_and(|a| a.eq_ignore_ascii_case(b"loadaof"))
        {
            // The AOF's scripts run on this thread: a slow one serves the others -LOADING
            // through the busy pump. Not top level: what it replays is not fed again.
            return self.run_script(token, f, full, args, now_ms, false);
        }
        let server = self.server.clone();
        let shard = self.id;
        let Some(c) = self.client(token) else {
            return Flow::Stop;
        };
        let start = Instant::now();
        let mut out_buf = std::mem::take(&mut c.out);
        let (errors, code, deliveries, notes, ready, poke) = {
            let proto = c.proto;
            let mut out = Out::new(&mut out_buf, proto);
            let mut ctx = ConnCtx {
                client: c,
                server: &server,
                shard,
                now_ms,
                deliveries: Vec::new(),
                notes: Vec::new(),
                ready_keys: Vec::new(),
                propagate: Vec::new(),
            };
            f(&mut ctx, args, &mut out);
            let poke = server.feed.propagate(&ctx.propagate, true);
            let (n, r) = (ctx.notes, ctx.ready_keys);
            (out.errors, out.last_error_code, ctx.deliveries, n, r, poke)
        };
        c.out = out_buf;
        let stop = c.close_after_reply || c.closing;
        let us = start.elapsed().as_micros() as u64;
        crate::latency::after_command(
            &server,
            crate::latency::Executed {
                cmd,
                args,
                duration_us: us,
                client: crate::latency::ClientRef::Local(&c.shared),
            },
        );
        let waits = c.wait_ack.is_some();
        let new_replica = c.replica.is_some() && !self.replicas.contains(&token);
        if new_replica {
            self.replicas.push(token);
        }
        self.pending_notes.extend(notes);
        self.ready_keys.extend(ready);
        if waits {
            self.waiting_acks.push(token);
        }
        self.poke |= poke;
        // While a script holds the shard locks (an allow-busy command ran), the statistics
        // are skipped rather than waited for.
        if !(crate::scripting::running() && self.server.shards.len() > 1) {
            let mut data = self.handle.lock_data();
            let st = &mut data.cmd_stats;
            st.record(full, us, errors > 0);
            if let Some(code) = code {
                st.record_error(&code);
            }
        }
        self.now_ms = crate::util::now_ms();
        for d in deliveries {
            self.deliver(d);
        }
        if stop {
            Flow::Stop
        } else {
            Flow::Continue
        }
    }

    /// Runs a data command under the locks of `shards` (sorted, locked in order). With
    /// `Lock::Try` (one other shard's command, the direct path) it gives up when that shard's
    /// lock stays taken through a short spin (`ShardHandle::try_lock_data`) and returns false:
    /// the caller sends the command there instead.
    #[allow(clippy::too_many_arguments)]
    fn run_data(
        &mut self,
        token: Token,
        cmd: &'static crate::commands::Cmd,
        full: &'static str,
        args: &[Bytes],
        shards: &[usize],
        now_ms: u64,
        lock: Lock,
    ) -> bool {
        let Kind::Data(f) = cmd.kind else {
            return true;
        };
        let server = &self.server;
        let nshards = self.nshards;
        let home = self.id;
        let Some(c) = conn_mut(&mut self.conns, token) else {
            return true;
        };
        let start = crate::util::cycles::now();
        // The common case takes one lock and allocates nothing; several shards are locked in
        // ascending order.
        let mut one;
        let mut many;
        let guards: &mut [super::DataGuard<'_>] = match shards {
            [only] => match server.shards.get(*only) {
                Some(h) => {
                    one = [match lock {
                        Lock::Wait => h.lock_data(),
                        Lock::Try => match h.try_lock_data() {
                            Some(g) => g,
                            None => return false,
                        },
                    }];
                    &mut one
                }
                None => return true,
            },
            _ => {
                many = server.lock_shards(shards);
                &mut many
            }
        };
        let mut out_buf = std::mem::take(&mut c.out);
        let mut out = Out::new(&mut out_buf, c.proto);
        out.limit_bytes = crate::server::buffers::reply_room(c, &self.cfg);
        let block = {
            let mut ks = if guards.len() == 1 {
                Keyspace::one(&mut guards[0], nshards, c.db, now_ms)
            } else {
                let parts: Vec<&mut ShardData> = guards.iter_mut().map(|g| &mut **g).collect();
                Keyspace::many(parts, nshards, c.db, now_ms)
            };
            ks.no_touch = c.no_touch;
            ks.prop.on = server.feed.active();
            // Eviction ran before the command (`evict::admit_command`); with tracking on,
            // the invalidations it and earlier writes queued go out ahead of the reply.
            let tracking = crate::tracking::active();
            if tracking {
                crate::tracking::before_exec(c, &mut out);
            }
            ks.exec(f, args, &mut out);
            if tracking {
                crate::tracking::after_read(&mut ks, &c.shared, cmd, args);
            }
            if ks.prop.on {
                // Fed while the shards are still locked: see `replication::feed`. SCAN's and
                // RANDOMKEY's lazy-expiry deletions go out unwrapped, as in Redis.
                let wrap = cmd.flags & crate::commands::flag::TOUCHES_ARBITRARY_KEYS == 0;
                self.poke |= server.feed.propagate(&ks.take_ops(), wrap);
            }
            (ks.block.take(), std::mem::take(&mut ks.notifications))
        };
        let (block, notes) = block;
        let (failed, code) = (out.errors > 0, out.last_error_code.take());
        c.out = out_buf;
        let blocked = block.is_some();
        if let Some(req) = block {
            let w = blocked_waiter(c, home, req, args);
            for k in &w.req.keys {
                let owner = slot_owner(key_slot(k), nshards);
                if let Some(g) = guards.iter_mut().find(|g| g.id == owner) {
                    g.blocking.add(c.db, k, w.clone());
                }
            }
            block_client(c, w, &mut self.blocked);
            server.blocked_clients.fetch_add(1, Ordering::Relaxed);
        }
        for g in guards.iter_mut() {
            if g.blocking.ready.is_empty() {
                continue;
            }
            let id = g.id;
            for (db, k) in g.blocking.ready.drain(..) {
                self.ready_keys.push((id, db, k));
            }
        }
        let us = crate::util::cycles::us_between(start, crate::util::cycles::now());
        if !blocked {
            // A blocked command is logged when it is served (`serve_one`), as in Redis.
            crate::latency::after_command(
                server,
                crate::latency::Executed {
                    cmd,
                    args,
                    duration_us: us,
                    client: crate::latency::ClientRef::Local(&c.shared),
                },
            );
        }
        let stats_at = guards.iter().position(|g| g.id == home).unwrap_or(0);
        if let Some(g) = guards.get_mut(stats_at) {
            let foreign = g.id != home;
            let st = &mut g.cmd_stats;
            st.record(full, us, failed);
            if let Some(code) = code.as_deref() {
                st.record_error(code);
            }
            if shards.len() > 1 {
                st.multi_shard += 1;
            } else if foreign {
                st.direct_in += 1;
            }
        }
        self.pending_notes.extend(notes);
        true
    }

    fn send_remote(
        &mut self,
        token: Token,
        dest: usize,
        cmd: &'static crate::commands::Cmd,
        full: &'static str,
        args: Vec<Bytes>,
    ) {
        let home = self.id;
        let Some(c) = conn_mut(&mut self.conns, token) else {
            return;
        };
        c.inflight += 1;
        c.inflight_shard = dest;
        let conn = ConnRef {
            shard: home,
            token,
            gen: c.gen,
        };
        let (db, proto, no_touch) = (c.db, c.proto, c.no_touch);
        let reply_room = crate::server::buffers::reply_room(c, &self.cfg);
        let track_reads = crate::tracking::active()
            && cmd.flags & crate::commands::flag::READONLY != 0
            && c.shared.tracking.remembers_reads();
        let rc = RemoteCmd {
            cmd,
            full_name: full,
            args,
            track_reads,
        };
        let batch = &mut self.outbox[dest];
        if let Some(Msg::Exec {
            conn: last, cmds, ..
        }) = batch.last_mut()
        {
            if *last == conn {
                cmds.push(rc);
                return;
            }
        }
        batch.push(Msg::Exec {
            conn,
            db,
            proto,
            no_touch,
            reply_room,
            cmds: vec![rc],
            tracking: crate::tracking::remote_ctx(c),
        });
        self.handle.lock_data().cmd_stats.hops_out += 1;
    }

    /// Sends a MONITOR line for a command to every monitoring connection.
    fn feed_monitors(&mut self, token: Token, cmd: &crate::commands::Cmd, args: &[Bytes]) {
        let Some(c) = self.client(token) else { return };
        let addr: std::borrow::Cow<'_, str> = if c.shared.unix {
            // Redis: `[0 unix:/path]`.
            format!("unix:{}", c.shared.addr.trim_end_matches(":0")).into()
        } else {
            c.shared.addr.as_str().into()
        };
        let hidden = crate::latency::slowlog::redacted(cmd, args);
        let line = crate::commands::connection::monitor_line(c.db, &addr, args, &hidden);
        self.send_monitor_line(line);
    }

    /// Hands a MONITOR line to every monitoring connection, in order with earlier lines.
    fn send_monitor_line(&mut self, line: Bytes) {
        let monitors = self
            .server
            .monitors
            .lock()
            .map(|m| m.clone())
            .unwrap_or_default();
        for m in monitors {
            if m.shard == self.id {
                if let Some(mc) = conn_mut(&mut self.conns, m.token) {
                    if mc.gen == m.gen {
                        mc.out.extend_from_slice(&line);
                        self.to_send.push(m.token);
                    }
                }
            } else if let Some(b) = self.outbox.get_mut(m.shard) {
                b.push(Msg::Monitor {
                    token: m.token,
                    gen: m.gen,
                    line: line.clone(),
                });
            }
        }
    }

    /// EXEC: runs the queued commands while holding every shard they (and the watched keys)
    /// live on, so the transaction is atomic and isolated across shards.
    fn run_exec(&mut self, token: Token) {
        let server = self.server.clone();
        let nshards = self.nshards;
        let home = self.id;
        let Some(c) = conn_mut(&mut self.conns, token) else {
            return;
        };
        let queued = c.multi.take().unwrap_or_default();
        let aborted = std::mem::take(&mut c.multi_error);
        let start = crate::util::cycles::now();
        if aborted {
            crate::commands::multi::unwatch_all(&server, c);
            Out::new(&mut c.out, c.proto)
                .error("EXECABORT Transaction discarded because of previous errors.");
            if !crate::scripting::running() {
                // A failed call of EXEC and an EXECABORT error reply, as Redis counts them.
                let st = &mut self.handle.lock_data().cmd_stats;
                st.record("exec", 0, true);
                st.record_error("EXECABORT");
            }
            return;
        }
        // Every shard the transaction may touch, in ascending order.
        let mut ids: Vec<usize> = Vec::new();
        for q in &queued {
            if let Kind::Data(_) = q.cmd.kind {
                if q.cmd.flags & crate::commands::flag::ALL_SHARDS != 0 {
                    ids.extend(0..nshards);
                } else {
                    for i in q.cmd.key_indices(&q.args) {
                        if let Some(k) = q.args.get(i) {
                            ids.push(slot_owner(key_slot(k), nshards));
                        }
                    }
                }
            }
        }
        for (_, k, _) in &c.watched {
            ids.push(slot_owner(key_slot(k), nshards));
        }
        // A connection-level command may lock shards itself (INFO, DEBUG): holding every shard
        // first keeps all acquisitions in the global order.
        if queued.iter().any(|q| matches!(q.cmd.kind, Kind::Conn(_))) {
            ids.extend(0..nshards);
        }
        // The home shard too: each queued command's statistics are recorded there while the
        // others are held, and taking it later, out of order, could deadlock with another
        // transaction holding it and waiting for one of ours.
        ids.push(home);
        ids.sort_unstable();
        ids.dedup();
        let holds = server.hold_shards(&ids);
        let now_ms = crate::util::now_ms();
        if crate::commands::multi::watch_broken(&server, c, now_ms) {
            crate::commands::multi::unwatch_all(&server, c);
            Out::new(&mut c.out, c.proto).null_array();
            return;
        }
        crate::commands::multi::unwatch_all(&server, c);
        Out::new(&mut c.out, c.proto).array(queued.len());
        let mut notes = Vec::new();
        let mut deliveries = Vec::new();
        // What the transaction propagates, fed as one MULTI/EXEC unit before the locks go.
        let mut unit = Vec::new();
        let in_exec = crate::persistence::snapshot::InExec::enter();
        for q in &queued {
            let cmd_start = crate::util::cycles::now();
            let mut out_buf = std::mem::take(&mut c.out);
            let mut out = Out::new(&mut out_buf, c.proto);
            // ACL rules may have changed since the command was queued.
            let denied = crate::acl::exec_check(c, q.cmd, q.full_name, &q.args);
            if let Some(e) = &denied {
                out.error(e);
            }
            match if denied.is_some() {
                Kind::Container
            } else {
                q.cmd.kind
            } {
                Kind::Data(f) => {
                    let mut ids: Vec<usize> =
                        if q.cmd.flags & crate::commands::flag::ALL_SHARDS != 0 {
                            (0..nshards).collect()
                        } else {
                            q.cmd
                                .key_indices(&q.args)
                                .iter()
                                .filter_map(|&i| q.args.get(i))
                                .map(|k| slot_owner(key_slot(k), nshards))
                                .collect()
                        };
                    if ids.is_empty() {
                        ids.push(home);
                    }
                    ids.sort_unstable();
                    ids.dedup();
                    let mut guards = server.lock_shards(&ids);
                    {
                        let parts: Vec<&mut ShardData> =
                            guards.iter_mut().map(|g| &mut **g).collect();
                        let mut ks = Keyspace::many(parts, nshards, c.db, now_ms);
                        ks.no_touch = c.no_touch;
                        ks.no_block = true;
                        ks.prop.on = server.feed.active();
                        ks.exec(f, &q.args, &mut out);
                        if crate::tracking::active() {
                            crate::tracking::after_read(&mut ks, &c.shared, q.cmd, &q.args);
                        }
                        unit.append(&mut ks.prop.ops);
                        self.ready_keys.extend(ks.take_ready());
                        notes.append(&mut ks.notifications);
                    }
                }
                Kind::Conn(f) => {
                    let mut ctx = ConnCtx {
                        client: c,
                        server: &server,
                        shard: home,
                        now_ms,
                        deliveries: Vec::new(),
                        notes: Vec::new(),
                        ready_keys: Vec::new(),
                        propagate: Vec::new(),
                    };
                    f(&mut ctx, &q.args, &mut out);
                    if let Some(w) = ctx.client.wait_ack.take() {
                        // WAIT inside a transaction answers at once.
                        out.int(crate::replication::master::acked(&server, w.target) as i64);
                    }
                    deliveries.append(&mut ctx.deliveries);
                    unit.append(&mut ctx.propagate);
                    notes.append(&mut ctx.notes);
                    self.ready_keys.append(&mut ctx.ready_keys);
                }
                Kind::Container => {}
            }
            let (failed, code) = (out.errors > 0, out.last_error_code.take());
            c.out = out_buf;
            let us = crate::util::cycles::us_between(cmd_start, crate::util::cycles::now());
            crate::latency::after_command(
                &server,
                crate::latency::Executed {
                    cmd: q.cmd,
                    args: &q.args,
                    duration_us: us,
                    client: crate::latency::ClientRef::Local(&c.shared),
                },
            );
            let mut data = self.handle.lock_data();
            data.cmd_stats.record(q.full_name, us, failed);
            if let Some(code) = code {
                data.cmd_stats.record_error(&code);
            }
        }
        self.poke |= server.feed.propagate(&unit, true);
        drop(in_exec);
        drop(holds);
        if queued.iter().any(|q| q.cmd.name == "flushall") {
            crate::persistence::snapshot::after_flushall(&server);
        }
        let us = crate::util::cycles::us_between(start, crate::util::cycles::now());
        if let Some(exec) = crate::commands::lookup(b"exec") {
            crate::latency::after_command(
                &server,
                crate::latency::Executed {
                    cmd: exec,
                    args: &[],
                    duration_us: us,
                    client: crate::latency::ClientRef::Local(&c.shared),
                },
            );
        }
        self.handle.lock_data().cmd_stats.record("exec", us, false);
        self.publish_notifications(notes);
        for d in deliveries {
            self.deliver(d);
        }
    }

    /// Serves blocked clients waiting on keys written since the last call, in arrival order.
    fn serve_ready(&mut self) {
        // Keys are served in the order they became ready (as Redis does); serving may make
        // more keys ready (BLMOVE), which join the end of the list.
        let mut next = 0;
        while next < self.ready_keys.len() {
            if next >= 100_000 {
                // A bound on chained wake-ups (BLMOVE rings); the rest wait for the next write.
                break;
            }
            let (sid, db, key) = self.ready_keys[next].clone();
            next += 1;
            while self.serve_one(sid, db, &key) {}
        }
        self.ready_keys.clear();
    }

    /// Serves the first waiter on a ready key that the key can serve now (a waiter of another
    /// kind, or an XREAD on a deleted stream, lets the ones behind it go first). True when one
    /// was served.
    fn serve_one(&mut self, sid: usize, db: usize, key: &[u8]) -> bool {
        let Some(h) = self.server.shards.get(sid).cloned() else {
            return false;
        };
        let waiters = h.lock_data().blocking.unclaimed(db, key);
        for w in waiters {
            if self.serve_waiter(sid, db, key, w) {
                return true;
            }
        }
        false
    }

    /// Serves `w` if `key` has what it waits for. True when it was served, or found served
    /// elsewhere meanwhile (the caller looks again).
    fn serve_waiter(&mut self, sid: usize, db: usize, key: &[u8], w: Arc<Waiter>) -> bool {
        let server = self.server.clone();
        let nshards = self.nshards;
        let mut ids = vec![sid];
        if let Some(extra) = &w.req.extra_key {
            ids.push(slot_owner(key_slot(extra), nshards));
        }
        ids.sort_unstable();
        ids.dedup();
        let mut guards = server.lock_shards(&ids);
        let mut bytes = Vec::new();
        let mut served_notes = Vec::new();
        // The served client is the current client while its command runs, and gets its own
        // invalidations after its reply (as Redis, which serves it as `current_client`).
        let tracking = crate::tracking::active();
        let outer = crate::tracking::current();
        let error_code;
        {
            let parts: Vec<&mut ShardData> = guards.iter_mut().map(|g| &mut **g).collect();
            let mut ks = Keyspace::many(parts, nshards, db, crate::util::now_ms());
            // On before the lookup: a key found expired here is deleted and its DEL
            // propagated, as Redis's lookup in handleClientsBlockedOnKeys does.
            ks.prop.on = server.feed.active();
            let has_data = match ks.peek(key).map(|e| &e.value) {
                _ if w.req.wait_for == WaitFor::Stream => {
                    crate::commands::stream::waiter_ready(&mut ks, key, &w.args)
                }
                Some(crate::storage::Value::List(l)) => {
                    w.req.wait_for == WaitFor::List && !l.is_empty()
                }
                Some(crate::storage::Value::ZSet(z)) => {
                    w.req.wait_for == WaitFor::ZSet && !z.is_empty()
                }
                _ => false,
            };
            if !has_data {
                if ks.prop.on {
                    self.poke |= server.feed.propagate(&ks.take_ops(), false);
                }
                let notes = std::mem::take(&mut ks.notifications);
                drop(ks);
                drop(guards);
                self.publish_notifications(notes);
                return false;
            }
            if !w.claim() {
                // Served elsewhere meanwhile: drop it here and try the next waiter.
                drop(ks);
                if let Some(g) = guards.iter_mut().find(|g| g.id == sid) {
                    g.blocking.remove(db, key, &w);
                }
                return true;
            }
            let mut out = Out::new(&mut bytes, w.proto);
            let start = crate::util::cycles::now();
            if tracking {
                crate::tracking::set_current(w.client_id, true);
            }
            (w.req.serve)(&mut ks, key, &w.args, &mut out);
            error_code = out.last_error_code.take();
            if ks.prop.on {
                self.poke |= server.feed.propagate(&ks.take_ops(), true);
            }
            if let Some(cmd) = w.args.first().and_then(|a| crate::commands::lookup(a)) {
                crate::latency::after_command(
                    &server,
                    crate::latency::Executed {
                        cmd,
                        args: &w.args,
                        duration_us: crate::util::cycles::us_between(
                            start,
                            crate::util::cycles::now(),
                        ),
                        client: crate::latency::ClientRef::Remote {
                            shard: w.conn.shard,
                            token: w.conn.token,
                        },
                    },
                );
            }
            self.ready_keys.extend(ks.take_ready());
            served_notes.append(&mut ks.notifications);
        }
        if let Some(g) = guards.iter_mut().find(|g| g.id == sid) {
            g.blocking.remove(db, key, &w);
        }
        drop(guards);
        if let Some(code) = error_code {
            // A blocked client answered with an error counts in errorstats, as Redis's
            // updateStatsOnUnblock does.
            let mut data = self.handle.lock_data();
            data.cmd_stats.record_error(&code);
            if let Some(cmd) = w.args.first().and_then(|n| crate::commands::lookup(n)) {
                data.cmd_stats.record_failed(cmd.name);
            }
        }
        self.publish_notifications(served_notes);
        let conn = w.conn;
        if conn.shard == self.id {
            self.deliver_unblock(conn.token, conn.gen, &bytes, false);
        } else if let Some(b) = self.outbox.get_mut(conn.shard) {
            b.push(Msg::Unblocked {
                token: conn.token,
                gen: conn.gen,
                bytes,
                close: false,
            });
        }
        if tracking {
            crate::tracking::set_in_call(false);
            crate::tracking::flush_deferred();
            crate::tracking::set_current(outer.0, outer.1);
        }
        true
    }

    /// Ends a blocked client's wait with `bytes` as its reply; `close`: the connection closes
    /// once it is sent, and reads nothing more.
    fn deliver_unblock(&mut self, token: Token, gen: u32, bytes: &[u8], close: bool) {
        let Some(c) = conn_mut(&mut self.conns, token) else {
            return;
        };
        if c.gen != gen || c.blocked.is_none() {
            return;
        }
        c.blocked = None;
        c.close_after_reply |= close;
        if let Ok(mut g) = c.shared.waiter.lock() {
            *g = None;
        }
        c.out.extend_from_slice(bytes);
        if c.shared.tracking.has_pending() {
            crate::tracking::drain_client(c);
        }
        c.aof_hold = c
            .aof_hold
            .max(crate::persistence::aof::hold_point(&self.server));
        self.server.blocked_clients.fetch_sub(1, Ordering::Relaxed);
        self.blocked.retain(|&t| t != token);
        self.to_send.push(token);
        self.ready.push(token);
    }

    fn nearest_block_deadline_ms(&self) -> Option<u64> {
        self.blocked
            .iter()
            .filter_map(|&t| self.conns.get(t as usize)?.as_ref()?.blocked.as_ref())
            .map(|w| w.req.deadline_ms)
            .filter(|&d| d > 0)
            .min()
    }

    /// Answers blocked clients whose timeout passed (null reply) or that were unblocked.
    fn expire_blocked(&mut self) {
        if self.blocked.is_empty() {
            return;
        }
        let now = crate::util::now_ms();
        let mut done = Vec::new();
        for &t in &self.blocked {
            let Some(Some(c)) = self.conns.get(t as usize) else {
                continue;
            };
            let Some(w) = &c.blocked else { continue };
            if w.req.deadline_ms != 0 && w.req.deadline_ms <= now && w.claim() {
                let mut bytes = Vec::new();
                let mut out = Out::new(&mut bytes, c.proto);
                match w.req.null {
                    NullReply::Array => out.null_array(),
                    NullReply::Bulk => out.null(),
                }
                done.push((t, c.gen, bytes));
            }
        }
        for (t, gen, bytes) in done {
            self.deliver_unblock(t, gen, &bytes, false);
        }
    }

    /// Hands a pub/sub message to its subscriber: directly when it lives here, else through
    /// the mesh to its home shard.
    fn deliver(&mut self, d: crate::pubsub::Delivery) {
        if d.to.shard == self.id {
            self.deliver_local(&d);
        } else if let Some(b) = self.outbox.get_mut(d.to.shard) {
            b.push(Msg::Publish(d));
        }
    }

    fn deliver_local(&mut self, d: &crate::pubsub::Delivery) {
        let Some(c) = conn_mut(&mut self.conns, d.to.token) else {
            return;
        };
        if c.gen != d.to.gen {
            return;
        }
        crate::pubsub::encode(d, c.proto, &mut c.out);
        self.to_send.push(d.to.token);
    }

    /// Publishes the keyspace events a command fired.
    fn publish_notifications(&mut self, notes: Vec<crate::pubsub::Notification>) {
        for n in notes {
            for (channel, message) in crate::pubsub::notification_messages(&n) {
                let receivers = self
                    .server
                    .pubsub
                    .read()
                    .receivers(&channel, &message, false);
                for d in receivers {
                    self.deliver(d);
                }
            }
        }
    }

    /// Resumes connections held by CLIENT PAUSE once it is over.
    fn resume_paused(&mut self) {
        if self.paused.is_empty() || self.server.paused_for(true, crate::util::now_ms()) {
            return;
        }
        let list = std::mem::take(&mut self.paused);
        self.ready.extend(list);
    }

    /// `appendfsync always`: the client's replies so far wait for the AOF stream's current end.
    fn hold_for_aof(&mut self, token: Token) {
        let point = crate::persistence::aof::hold_point(&self.server);
        if point != 0 {
            if let Some(c) = self.client(token) {
                c.aof_hold = c.aof_hold.max(point);
            }
        }
    }

    fn flush_outbox(&mut self) {
        self.process_wakes();
        crate::persistence::aof::kick(&self.server, &mut self.aof_rung);
        // Not our own bit (this turn's pump, or the timer `replica_wait` arms, moves what we
        // fed), nor a shard that will wake on its own for its replicas (`repl_pump`).
        let poke = std::mem::take(&mut self.poke) & !(1u64 << (self.id % 64));
        if poke != 0 {
            for (i, h) in self.server.shards.iter().enumerate() {
                if poke & (1u64 << (i % 64)) != 0 && !h.repl_timer.load(Ordering::SeqCst) {
                    h.mailbox.poke();
                }
            }
        }
        if self.hops_out_pending > 0 {
            self.handle.lock_data().cmd_stats.hops_out += self.hops_out_pending;
            self.hops_out_pending = 0;
        }
        for dest in 0..self.outbox.len() {
            if self.outbox[dest].is_empty() {
                continue;
            }
            let Some(h) = self.server.shards.get(dest) else {
                continue;
            };
            h.mailbox.post(self.id, &mut self.outbox[dest]);
        }
    }

    fn drain_mail(&mut self) {
        let mut spare = std::mem::take(&mut self.spare_msgs);
        let mut msgs = Vec::new();
        self.handle.mailbox.drain(&mut spare, |m| msgs.push(m));
        self.spare_msgs = spare;
        for m in msgs {
            match m {
                Msg::Exec {
                    conn,
                    db,
                    proto,
                    no_touch,
                    reply_room,
                    cmds,
                    tracking,
                } => self.exec_for_remote(conn, db, (proto, no_touch, reply_room), cmds, tracking),
                Msg::TrackingWake { token, id } => self.wake_local(token, id),
                Msg::Replies { conn, count, bytes } => self.on_replies(conn, count, bytes),
                Msg::Unblocked {
                    token,
                    gen,
                    bytes,
                    close,
                } => self.deliver_unblock(token, gen, &bytes, close),
                Msg::Publish(d) => self.deliver_local(&d),
                Msg::Monitor { token, gen, line } => {
                    if let Some(c) = conn_mut(&mut self.conns, token) {
                        if c.gen == gen {
                            c.out.extend_from_slice(&line);
                            self.to_send.push(token);
                        }
                    }
                }
                Msg::Kill { token, gen } => {
                    if self.client(token).is_some_and(|c| c.gen == gen) {
                        self.close_client(token);
                    }
                }
                Msg::Ready(keys) => self.ready_keys.extend(keys),
                Msg::Listeners { close, add } => {
                    for fd in close {
                        self.io.close_listener(fd);
                    }
                    for fd in add {
                        if let Err(e) = self.io.add_listener(fd) {
                            crate::log_warning!(
                                "shard {}: cannot accept on listener: {}",
                                self.id,
                                e
                            );
                        }
                    }
                }
            }
        }
    }

    /// Runs commands sent by another shard's connection and sends the replies back.
    fn exec_for_remote(
        &mut self,
        conn: ConnRef,
        db: usize,
        (proto, no_touch, reply_room): (u8, bool, usize),
        cmds: Vec<RemoteCmd>,
        tracking: Option<crate::tracking::RemoteCtx>,
    ) {
        let mut bytes = Vec::new();
        let mut notes = Vec::new();
        let count = cmds.len();
        let now_ms = crate::util::now_ms();
        {
            let mut data = self.handle.lock_data();
            for rc in &cmds {
                let Kind::Data(f) = rc.cmd.kind else { continue };
                let start = crate::util::cycles::now();
                let mut out = Out::new(&mut bytes, proto);
                out.limit_bytes = reply_room;
                let mut ks = Keyspace::one(&mut data, self.nshards, db, now_ms);
                ks.no_touch = no_touch;
                ks.prop.on = self.server.feed.active();
                match &tracking {
                    None => ks.exec(f, &rc.args, &mut out),
                    Some(t) => t.exec(&mut ks, rc, f, &mut out),
                }
                if ks.prop.on {
                    self.poke |= self.server.feed.propagate(&ks.take_ops(), true);
                }
                notes.append(&mut ks.notifications);
                let id = data.id;
                for (db, k) in data.blocking.ready.drain(..) {
                    self.ready_keys.push((id, db, k));
                }
                if tracking.is_some() {
                    crate::tracking::table::take_bcast_touched();
                    data.tracking.broadcast();
                }
                let us = crate::util::cycles::us_between(start, crate::util::cycles::now());
                crate::latency::after_command(
                    &self.server,
                    crate::latency::Executed {
                        cmd: rc.cmd,
                        args: &rc.args,
                        duration_us: us,
                        client: crate::latency::ClientRef::Remote {
                            shard: conn.shard,
                            token: conn.token,
                        },
                    },
                );
                let st = &mut data.cmd_stats;
                st.record(rc.full_name, us, out.errors > 0);
                if let Some(code) = out.last_error_code.as_deref() {
                    st.record_error(code);
                }
                st.hops_in += 1;
            }
            // Counted in transit before the lock is released: key eviction, which takes every
            // shard's lock, never sees these replies in no client's memory.
            crate::server::buffers::replies_sent(bytes.capacity());
        }
        if let Some(b) = self.outbox.get_mut(conn.shard) {
            b.push(Msg::Replies { conn, count, bytes });
        } else {
            crate::server::buffers::replies_landed(bytes.capacity());
        }
        if !notes.is_empty() {
            self.publish_notifications(notes);
        }
    }

    fn on_replies(&mut self, conn: ConnRef, count: usize, bytes: Vec<u8>) {
        // Out of transit once the client's memory, published, counts them.
        let in_transit = bytes.capacity();
        self.land_replies(conn, count, bytes);
        crate::server::buffers::replies_landed(in_transit);
    }

    fn land_replies(&mut self, conn: ConnRef, count: usize, bytes: Vec<u8>) {
        let Some(c) = conn_mut(&mut self.conns, conn.token) else {
            return;
        };
        if c.gen != conn.gen {
            return;
        }
        // A killed client (client eviction, CLIENT KILL) is closed without further replies.
        if !c.shared.kill.load(Ordering::Relaxed) {
            c.out.extend_from_slice(&bytes);
        }
        // The owner shard fed the AOF before replying: the stream's end covers it.
        c.aof_hold = c
            .aof_hold
            .max(crate::persistence::aof::hold_point(&self.server));
        c.inflight = c.inflight.saturating_sub(count);
        if c.inflight == 0 && c.shared.tracking.has_pending() {
            crate::tracking::drain_client(c);
        }
        self.to_send.push(conn.token);
        if c.inflight == 0 && (c.parked.is_some() || !c.inbuf.is_empty()) {
            self.ready.push(conn.token);
        }
        self.evict_clients_for(conn.token);
    }

    /// Answers WAITs whose replicas acknowledged enough, or whose timeout passed.
    fn answer_waits(&mut self) {
        let now = crate::util::now_ms();
        let server = self.server.clone();
        let mut i = 0;
        while i < self.waiting_acks.len() {
            let t = self.waiting_acks[i];
            let Some(c) = conn_mut(&mut self.conns, t) else {
                self.waiting_acks.swap_remove(i);
                continue;
            };
            let Some(w) = c.wait_ack else {
                self.waiting_acks.swap_remove(i);
                continue;
            };
            let demoted = crate::replication::master::wait_demoted(&w);
            let n = crate::replication::master::acked(&server, w.target);
            if demoted || n >= w.replicas || (w.deadline_ms != 0 && now >= w.deadline_ms) {
                c.wait_ack = None;
                if demoted {
                    crate::replication::replica::unblocked_reply(&server, self.id, c);
                } else {
                    Out::new(&mut c.out, c.proto).int(n as i64);
                }
                self.waiting_acks.swap_remove(i);
                self.to_send.push(t);
                self.ready.push(t);
                continue;
            }
            i += 1;
        }
    }

    fn flush_sends(&mut self) {
        let mut list = std::mem::take(&mut self.to_send);
        list.append(&mut self.aof_held);
        list.sort_unstable();
        list.dedup();
        let durable = self.server.aof.durable();
        let mut held = std::mem::take(&mut self.aof_held);
        for t in list.drain(..) {
            if self.check_buffers(t) {
                continue;
            }
            let Some(c) = conn_mut(&mut self.conns, t) else {
                continue;
            };
            if c.sending || crate::server::buffers::hold_output(c, &self.cfg) {
                continue;
            }
            if c.aof_hold > durable {
                if !c.out.is_empty() {
                    held.push(t);
                    continue;
                }
            } else {
                c.aof_hold = 0;
            }
            if c.out.is_empty() {
                if c.close_after_reply && c.inflight == 0 {
                    self.close_client(t);
                }
                continue;
            }
            let mut buf = std::mem::take(&mut c.spare);
            buf.clear();
            std::mem::swap(&mut buf, &mut c.out);
            c.sending = true;
            c.sending_bytes = buf.len();
            c.sending_alloc = buf.capacity();
            self.server
                .stats
                .net_output_bytes
                .fetch_add(buf.len() as u64, Ordering::Relaxed);
            self.io.send(t, buf);
        }
        self.to_send = list;
        if !held.is_empty() {
            let need = held
                .iter()
                .filter_map(|&t| self.conns.get(t as usize)?.as_ref().map(|c| c.aof_hold))
                .min()
                .unwrap_or(0);
            if crate::persistence::aof::wait_for(&self.server, self.id, need) {
                // The writer moved meanwhile: look again next turn without sleeping.
                self.handle.mailbox.poke();
            }
        }
        self.aof_held = held;
    }

    fn cron(&mut self) {
        crate::util::refresh_lru_secs();
        crate::alloc::collect_when_quiet(self.now_ms, self.last_busy_ms);
        let hz = self.cfg.hz.clamp(1, 500);
        let period = Duration::from_millis(1000 / hz as u64);
        self.next_cron_ms = self.now_ms + period.as_millis() as u64;
        if crate::commands::server::cron_paused() {
            return;
        }
        // Active expiry: up to a quarter of the period, in slices, as Redis's slow cycle.
        let budget = period / 4;
        let start = Instant::now();
        if self.id == 0 {
            crate::replication::master::cron(&self.server);
            crate::commands::migrate::cron();
        }
        // A replica never expires keys: its master's DELs do.
        // Nor while a dataset loads: a key's deadline may be moved by a later command of
        // the AOF (Redis's `keyIsExpired` is false while loading).
        while self.server.active_expire.load(Ordering::Relaxed)
            && !crate::scripting::running()
            && !crate::replication::replica::is_replica()
            && !self.server.persistence.loading.load(Ordering::Relaxed)
        {
            let propagating = self.server.feed.active();
            let notifying = crate::pubsub::notify_enabled('x');
            let mut dead = Vec::new();
            let deleted = {
                let mut d = self.handle.lock_data();
                let wanted = (propagating || notifying).then_some(&mut dead);
                let n = d.active_expire(crate::util::now_ms(), 256, wanted);
                if propagating && !dead.is_empty() {
                    // Each deletion is its own unit, never wrapped (as Redis's active expiry).
                    let lazy = crate::storage::limits::lazy(&crate::storage::limits::LAZY.expire);
                    let ops: Vec<crate::replication::Op> = dead
                        .iter()
                        .map(|(db, k)| {
                            crate::replication::Op::new(
                                *db,
                                vec![
                                    crate::storage::keyspace::del_or_unlink(lazy),
                                    Bytes::copy_from_slice(k),
                                ],
                            )
                        })
                        .collect();
                    self.poke |= self.server.feed.propagate(&ops, false);
                }
                n
            };
            if notifying && !dead.is_empty() {
                let notes = dead
                    .into_iter()
                    .map(|(db, k)| crate::pubsub::Notification {
                        db,
                        class: 'x',
                        event: "expired",
                        key: Bytes::from(Vec::from(k)),
                    })
                    .collect();
                self.publish_notifications(notes);
            }
            if deleted < 64 || start.elapsed() >= budget {
                break;
            }
        }
        if crate::replication::replica::is_replica()
            && self.server.active_expire.load(Ordering::Relaxed)
        {
            let mut d = self.handle.lock_data();
            self.poke |= crate::replication::replica::expire_written_keys(&self.server, &mut d);
        }
        crate::latency::add_sample(
            &self.server,
            "expire-cycle",
            start.elapsed().as_millis() as u64,
        );
        if self.id == 0 {
            // A maxmemory pass that ran out of time continues here (see `storage::evict`).
            let mut notes = Vec::new();
            self.poke |= crate::storage::evict::cron(&self.server, &self.cfg, &mut notes);
            if !notes.is_empty() {
                self.publish_notifications(notes);
            }
        }
        self.tracking_cron();
        if !self.to_send.is_empty() {
            self.flush_sends();
        }
        self.clients_cron();
        self.reap_idle_clients();
    }

    fn reap_idle_clients(&mut self) {
        let timeout_ms = self.cfg.timeout_secs * 1000;
        let now = crate::util::now_ms();
        let mut dead = Vec::new();
        for (t, c) in self.conns.iter().enumerate() {
            let Some(c) = c else { continue };
            let killed = c.shared.kill.load(Ordering::Relaxed);
            let idle_ms = now.saturating_sub(c.shared.last_interaction_ms.load(Ordering::Relaxed));
            // Blocked clients, monitors and in-flight hops are not idle (as in Redis).
            let timed_out = timeout_ms > 0
                && c.inflight == 0
                && c.blocked.is_none()
                && !c.monitor
                && idle_ms > timeout_ms;
            if killed || timed_out {
                dead.push(t as Token);
            }
        }
        for t in dead {
            self.close_client(t);
        }
    }
}

/// The waiter for a client that must block.
fn blocked_waiter(c: &Client, home: usize, mut req: BlockRequest, args: &[Bytes]) -> Arc<Waiter> {
    let args = req.args.take().unwrap_or_else(|| args.to_vec());
    Arc::new(Waiter {
        client_id: c.id(),
        conn: ConnRef {
            shard: home,
            token: c.token,
            gen: c.gen,
        },
        claimed: false.into(),
        db: c.db,
        proto: c.proto,
        args,
        req,
    })
}

fn block_client(c: &mut Client, w: Arc<Waiter>, blocked: &mut Vec<Token>) {
    if let Ok(mut g) = c.shared.waiter.lock() {
        *g = Some(w.clone());
    }
    c.blocked = Some(w);
    blocked.push(c.token);
}

fn conn_mut(conns: &mut [Option<Client>], token: Token) -> Option<&mut Client> {
    conns.get_mut(token as usize).and_then(|c| c.as_mut())
}

/// `tcp-keepalive`: probes after `secs` idle, as Redis's anetKeepAlive configures them.
fn set_keepalive(fd: RawFd, secs: u64) {
    if secs == 0 {
        return;
    }
    let on: libc::c_int = 1;
    let idle = secs.min(i32::MAX as u64) as libc::c_int;
    let intvl = (idle / 3).max(1);
    let cnt: libc::c_int = 3;
    let sz = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: setsockopt on a socket we own with pointers to live c_ints.
    unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_KEEPALIVE,
            &on as *const _ as *const _,
            sz,
        );
        libc::setsockopt(
            fd,
            libc::IPPROTO_TCP,
            libc::TCP_KEEPIDLE,
            &idle as *const _ as *const _,
            sz,
        );
        libc::setsockopt(
            fd,
            libc::IPPROTO_TCP,
            libc::TCP_KEEPINTVL,
            &intvl as *const _ as *const _,
            sz,
        );
        libc::setsockopt(
            fd,
            libc::IPPROTO_TCP,
            libc::TCP_KEEPCNT,
            &cnt as *const _ as *const _,
            sz,
        );
    }
}

/// The peer's and our own `ip:port`, or `None` for a Unix domain socket.
fn peer_names(fd: RawFd) -> Option<(String, String)> {
    use nix::sys::socket::{getpeername, getsockname, SockaddrLike, SockaddrStorage};
    let local = getsockname::<SockaddrStorage>(fd).ok();
    if local.as_ref().and_then(|a| a.family()) == Some(nix::sys::socket::AddressFamily::Unix) {
        return None;
    }
    let fmt = |a: Option<SockaddrStorage>| -> String {
        let Some(a) = a else { return "?:0".to_string() };
        if let Some(v4) = a.as_sockaddr_in() {
            format!("{}:{}", v4.ip(), v4.port())
        } else if let Some(v6) = a.as_sockaddr_in6() {
            format!("{}:{}", v6.ip(), v6.port())
        } else {
            "?:0".to_string()
        }
    };
    Some((fmt(getpeername::<SockaddrStorage>(fd).ok()), fmt(local)))
}
