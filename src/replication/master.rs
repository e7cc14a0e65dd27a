//! The master side of replication: SYNC, PSYNC and REPLCONF.
//!
//! A replica is a connection like any other, on whichever shard accepted it. SYNC/PSYNC turns
//! it into a stream consumer: a `ReplicaSink` registered with the feed receives every
//! propagated byte, and the connection's shard moves those bytes to its output each loop
//! turn (the feeding shard pokes it awake).
//!
//! A full resynchronization is `fullsync`'s: a forked child writes the RDB (to disk or to the
//! replica's socket) and the sink, registered at the fork, holds the stream meanwhile. A partial
//! resynchronization (`+CONTINUE`) answers from the backlog under the feed's lock.

use super::feed::ReplicaSink;
use crate::commands::parse;
use crate::protocol::Out;
use crate::server::ConnCtx;
use bytes::Bytes;
use std::sync::atomic::Ordering;
use std::sync::Arc;

/// SYNC: the old protocol, a full resynchronization without the +FULLRESYNC line.
pub fn sync(ctx: &mut ConnCtx, _args: &[Bytes], out: &mut Out) {
    start_replica(ctx, None, out);
}

/// PSYNC replid offset.
pub fn psync(ctx: &mut ConnCtx, args: &[Bytes], out: &mut Out) {
    if ctx.client.replica.is_some() {
        return;
    }
    if args.len() > 3 && parse::eq(&args[3], "failover") {
        // Our master hands over to us: it must share our history (`syncCommand`).
        crate::log_warning!(
            "Failover request received for replid {}.",
            String::from_utf8_lossy(&args[1])
        );
        if !super::replica::is_replica() {
            out.error("ERR PSYNC FAILOVER can't be sent to a master.");
            return;
        }
        let ours = ctx
            .server
            .feed
            .with(|st| st.replid.as_bytes() == &args[1][..]);
        if !ours {
            out.error("ERR PSYNC FAILOVER replid must match my replid.");
            return;
        }
        super::replica::promote(ctx.server);
        crate::log_notice!(
            "MASTER MODE enabled (failover request from '{}')",
            ctx.client.shared.addr
        );
    }
    let replid = args.get(1).map(|a| String::from_utf8_lossy(a).into_owned());
    let offset = match args.get(2).map(|a| parse::i64_arg(a)) {
        Some(Ok(o)) => Some(o),
        Some(Err(_)) if !super::failover::active() && sync_allowed() => {
            out.error(crate::commands::err::NOT_INT);
            crate::log_warning!(
                "Replica {} asks for synchronization but with a wrong offset",
                replica_name(ctx)
            );
            return;
        }
        _ => None,
    };
    start_replica(
        ctx,
        Some((replid.unwrap_or_default(), offset.unwrap_or(-1))),
        out,
    );
}

/// Whether a replica could sync with us now (not a replica whose link is down).
fn sync_allowed() -> bool {
    !super::replica::is_replica() || super::replica::link_up()
}

/// The replica's IP as INFO and the logs show it: the one it announced with
/// `REPLCONF ip-address` (`replica-announce-ip`), else its connection's peer address.
fn replica_ip(ctx: &ConnCtx) -> String {
    if let Some(ip) = &ctx.client.replica_announced_ip {
        return ip.clone();
    }
    let addr = &ctx.client.shared.addr;
    addr.rsplit_once(':')
        .map_or(addr.as_str(), |(host, _)| host)
        .to_string()
}

/// The replica's name in logs (`replicationGetSlaveName`).
fn replica_name(ctx: &ConnCtx) -> String {
    let ip = replica_ip(ctx);
    match ctx.client.replica_listening_port {
        Some(p) if p != 0 => format!("{ip}:{p}"),
        _ => format!("{ip}:<unknown-replica-port>"),
    }
}

/// A connection that became a replica sent a command other than REPLCONF: Redis refuses
/// keyspace commands ("Replica can't interact with the keyspace") and disconnects a replica
/// whose command generated any reply, since a reply would corrupt its stream. Returns the
/// error to log as the reply that was refused, or `None` for REPLCONF (and a repeated
/// SYNC/PSYNC, ignored), which run normally. The caller closes the connection.
#[cold]
pub fn replica_command(
    prepared: &Result<crate::server::dispatch::Prepared, crate::server::dispatch::Rejected>,
) -> Option<String> {
    use crate::commands::flag;
    let (full_name, error) = match prepared {
        Ok(p) if matches!(p.cmd.name, "replconf" | "sync" | "psync") => return None,
        Ok(p) if p.cmd.flags & (flag::WRITE | flag::READONLY | flag::MAY_REPLICATE) != 0 => (
            p.full_name,
            Some("ERR Replica can't interact with the keyspace".to_string()),
        ),
        Ok(p) => (p.full_name, None),
        Err(r) => (
            r.full_name.unwrap_or("<unknown>"),
            Some(String::from_utf8_lossy(&r.error).into_owned()),
        ),
    };
    if let Some(e) = &error {
        crate::log_warning!(
            "== CRITICAL == This master is sending an error to its replica: '{}' after processing the command '{}'",
            e.strip_prefix("ERR ").unwrap_or(e),
            full_name
        );
    }
    Some(format!(
        "Replica generated a reply to command '{full_name}'"
    ))
}

fn start_replica(ctx: &mut ConnCtx, psync: Option<(String, i64)>, out: &mut Out) {
    if ctx.client.replica.is_some() {
        // Already a replica: Redis ignores a second SYNC.
        return;
    }
    if !ctx.client.out.is_empty() || ctx.client.inflight > 0 {
        out.error("ERR SYNC and PSYNC are invalid with pending output");
        return;
    }
    let me = crate::shard::mesh::ConnRef {
        shard: ctx.shard,
        token: ctx.client.token,
        gen: ctx.client.gen,
    };
    let sink = Arc::new(ReplicaSink::new(me, &ctx.server.feed));
    sink.pre_psync.store(psync.is_none(), Ordering::Relaxed);
    *sink.ip.lock() = replica_ip(ctx);
    if super::failover::active() {
        out.error("NOMASTERLINK Can't SYNC while failing over");
        return;
    }
    if super::replica::is_replica() && !super::replica::link_up() {
        out.error("NOMASTERLINK Can't SYNC while not connected with my master");
        return;
    }
    if let Some(port) = ctx.client.replica_listening_port {
        sink.listening_port.store(port, Ordering::Relaxed);
    }
    let psync2 = ctx.client.replica_capa_psync2;
    let feed = &ctx.server.feed;
    // A partial resynchronization, if the replica's history is ours and the backlog has it.
    if let Some((replid, from)) = &psync {
        let cont = feed.with(|st| {
            let ours = *replid == st.replid
                || (*replid == st.replid2 && *from <= st.second_replid_offset);
            if !ours || *from < 0 {
                if replid != "?" {
                    crate::log_notice!(
                        "Partial resynchronization not accepted: Replication ID mismatch (Replica asked for '{}', my replication IDs are '{}' and '{}')",
                        replid, st.replid, st.replid2
                    );
                }
                return None;
            }
            if !st.backlog_has(*from as u64) {
                crate::log_notice!(
                    "Unable to partial resync with replica for lack of backlog (Replica request was: {}).",
                    from
                );
                return None;
            }
            // The replica references the shared buffer from there on; its shard moves the
            // bytes to the connection after the +CONTINUE line, nothing is copied now.
            let len = st.offset + 1 - *from as u64;
            st.attach_replica(sink.clone(), *from as u64 - 1);
            Some((st.replid.clone(), len))
        });
        if let Some((id, len)) = cont {
            let line = if psync2 {
                format!("+CONTINUE {id}\r\n")
            } else {
                "+CONTINUE\r\n".to_string()
            };
            out.raw(line.as_bytes());
            super::info::SYNC_PARTIAL_OK.fetch_add(1, Ordering::Relaxed);
            become_replica(ctx, sink);
            crate::log_notice!(
                "Partial resynchronization request from {} accepted. Sending {} bytes of backlog starting from offset {}.",
                ctx.client.shared.addr,
                len,
                from
            );
            return;
        }
    }
    // A full resynchronization: a forked child produces the RDB (see `fullsync`).
    super::info::SYNC_FULL.fetch_add(1, Ordering::Relaxed);
    if psync.as_ref().is_some_and(|(id, _)| id != "?") {
        super::info::SYNC_PARTIAL_ERR.fetch_add(1, Ordering::Relaxed);
    }
    crate::log_notice!(
        "Full resync requested by replica {}",
        ctx.client.shared.addr
    );
    let eof = ctx.client.replica_capa_eof;
    become_replica(ctx, sink.clone());
    super::fullsync::request(ctx.server, sink, eof, psync.is_some());
}

fn become_replica(ctx: &mut ConnCtx, sink: Arc<ReplicaSink>) {
    ctx.client.replica = Some(sink);
    if let Ok(mut f) = ctx.client.shared.flags.lock() {
        *f = "S".to_string();
    }
    ctx.server
        .connected_replicas
        .fetch_add(1, Ordering::Relaxed);
}

/// REPLCONF option value [option value ...].
pub fn replconf(ctx: &mut ConnCtx, args: &[Bytes], out: &mut Out) {
    if args.len().is_multiple_of(2) {
        out.error(crate::commands::err::SYNTAX);
        return;
    }
    let mut i = 1;
    while i + 1 < args.len() {
        let (opt, val) = (&args[i], &args[i + 1]);
        if parse::eq(opt, "listening-port") {
            match parse::i64_arg(val) {
                Ok(p) if (0..=65535).contains(&p) => {
                    ctx.client.replica_listening_port = Some(p as u64);
                    if let Some(s) = &ctx.client.replica {
                        s.listening_port.store(p as u64, Ordering::Relaxed);
                    }
                }
                _ => {
                    out.error(crate::commands::err::NOT_INT);
                    return;
                }
            }
        } else if parse::eq(opt, "ip-address") {
            ctx.client.replica_announced_ip = Some(String::from_utf8_lossy(val).into_owned());
        } else if parse::eq(opt, "capa") {
            if parse::eq(val, "psync2") {
                ctx.client.replica_capa_psync2 = true;
            } else if parse::eq(val, "eof") {
                ctx.client.replica_capa_eof = true;
            }
        } else if parse::eq(opt, "ack") || parse::eq(opt, "fack") {
            // Acknowledgements get no reply.
            if let (Some(sink), Ok(off)) = (&ctx.client.replica, parse::i64_arg(val)) {
                if parse::eq(opt, "ack") {
                    sink.ack_offset.store(off.max(0) as u64, Ordering::Relaxed);
                    sink.ack_ms.store(crate::util::now_ms(), Ordering::Relaxed);
                    sink.on_ack();
                }
            }
            i += 2;
            if i >= args.len() {
                return;
            }
            continue;
        } else if parse::eq(opt, "getack") {
            // Only masters answer GETACK; a master ignores it.
            return;
        } else if parse::eq(opt, "rdb-only") || parse::eq(opt, "rdb-filter-only") {
            // Accepted; this server always sends the whole dataset.
        } else {
            out.error(&format!(
                "ERR Unrecognized REPLCONF option: {}",
                String::from_utf8_lossy(opt)
            ));
            return;
        }
        i += 2;
    }
    out.ok();
}

/// A WAIT in progress (see `Client::wait_ack`).
#[derive(Clone, Copy, Debug)]
pub struct WaitAck {
    /// The offset every counted replica must have acknowledged.
    pub target: u64,
    pub replicas: usize,
    /// Unix ms; 0 = no timeout.
    pub deadline_ms: u64,
    /// `replica::demotions()` when it started: a REPLICAOF host port since ends it.
    pub demotions: u64,
}

/// Whether this server turned replica while the WAIT waited: Redis's
/// `disconnectAllBlockedClients` answers it -UNBLOCKED and closes the connection.
pub fn wait_demoted(w: &WaitAck) -> bool {
    w.demotions != super::replica::demotions()
}

/// Online replicas that acknowledged at least `target` (Redis's
/// `replicationCountAcksByOffset`: a replica still waiting for or loading its RDB counts for
/// nothing, even for a WAIT whose writes went out before the stream began, which its RDB
/// carries but it cannot serve yet).
pub fn acked(server: &crate::server::Server, target: u64) -> usize {
    server.feed.with(|st| {
        st.replicas
            .iter()
            .filter(|r| !r.closed.load(Ordering::Relaxed))
            .filter(|r| r.phase() == super::feed::SyncPhase::Online)
            .filter(|r| r.ack_offset.load(Ordering::Relaxed) >= target)
            .count()
    })
}

/// Asks every replica for an acknowledgement: `REPLCONF GETACK *` on the stream, without a
/// SELECT (it concerns no database).
fn request_acks(server: &crate::server::Server) -> u64 {
    let mut cmd = Vec::new();
    super::feed::encode_command(
        &mut cmd,
        &[
            Bytes::from_static(b"REPLCONF"),
            Bytes::from_static(b"GETACK"),
            Bytes::from_static(b"*"),
        ],
    );
    server.feed.with(|st| {
        if st.upstream || st.backlog.is_none() {
            return 0;
        }
        st.feed_control(&cmd)
    })
}

/// WAIT numreplicas timeout.
pub fn wait(ctx: &mut ConnCtx, args: &[Bytes], out: &mut Out) {
    if super::replica::is_replica() {
        out.error("ERR WAIT cannot be used with replica instances. Please also note that since Redis 4.0 if a replica is configured to be writable (which is not the default) writes to replicas are just local and are not propagated.");
        return;
    }
    let Ok(n) = parse::i64_arg(&args[1]) else {
        out.error(crate::commands::err::NOT_INT);
        return;
    };
    let timeout = match parse::i64_arg(&args[2]) {
        Ok(t) if t >= 0 => t as u64,
        Ok(_) => {
            out.error("ERR timeout is negative");
            return;
        }
        Err(_) => {
            out.error("ERR timeout is not an integer or out of range");
            return;
        }
    };
    // The last write's offset (Redis waits for the client's own last write, `woff`; this
    // is the last write of any client, never past the GETACKs and PINGs we added).
    let target = ctx.server.feed.with(|st| st.write_offset.min(st.offset));
    let have = acked(ctx.server, target);
    if have as i64 >= n {
        out.int(have as i64);
        return;
    }
    let poke = request_acks(ctx.server);
    poke_shards(ctx.server, poke);
    ctx.client.wait_ack = Some(WaitAck {
        target,
        replicas: n.max(0) as usize,
        deadline_ms: if timeout == 0 {
            0
        } else {
            crate::util::now_ms() + timeout
        },
        demotions: super::replica::demotions(),
    });
}

/// DEBUG REPLICATE cmd [arg ...]: feeds a command to the replicas only (not the AOF, not run
/// here), in the stream's current database, as Redis's does (a way to make replicas diverge
/// in tests).
pub fn debug_replicate(server: &crate::server::Server, argv: &[Bytes]) {
    let mut cmd = Vec::new();
    super::feed::encode_command(&mut cmd, argv);
    let poke = server.feed.with(|st| {
        if st.upstream || st.backlog.is_none() {
            return 0;
        }
        st.feed_raw(&cmd)
    });
    poke_shards(server, poke);
}

fn poke_shards(server: &crate::server::Server, poke: u64) {
    for (i, h) in server.shards.iter().enumerate() {
        if poke & (1u64 << (i % 64)) != 0 {
            h.mailbox.poke();
        }
    }
}

/// The master's periodic work (shard 0's cron): PING the replicas every
/// `repl-ping-replica-period` so they can tell a quiet master from a dead link.
pub fn cron(server: &crate::server::Server) {
    super::failover::cron(server);
    drop_timed_out(server);
    super::fullsync::cron(server);
    backlog_cron(server);
    static LAST_PING_MS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let now = crate::util::now_ms();
    let period_ms = server.config.load().repl_ping_replica_period_secs.max(1) as u64 * 1000;
    let last = LAST_PING_MS.load(Ordering::Relaxed);
    if last == 0 {
        // The period counts from start-up, as Redis's cron loops do: a replica attaching
        // does not get a PING at once.
        LAST_PING_MS.store(now, Ordering::Relaxed);
        return;
    }
    if now.saturating_sub(last) < period_ms {
        return;
    }
    LAST_PING_MS.store(now, Ordering::Relaxed);
    let mut ping = Vec::new();
    super::feed::encode_command(&mut ping, &[Bytes::from_static(b"PING")]);
    let poke = server.feed.with(|st| {
        if st.upstream || st.backlog.is_none() || st.replicas.is_empty() {
            return 0;
        }
        st.feed_control(&ping)
    });
    poke_shards(server, poke);
}

/// Disconnects replicas that acknowledged nothing for `repl-timeout` (Redis's
/// "streaming sync" timeout; replicas of the old SYNC never acknowledge and are spared).
/// A replica stalled during a diskless full sync is `fullsync`'s.
fn drop_timed_out(server: &crate::server::Server) {
    use super::feed::SyncPhase;
    let timeout_ms = server.config.load().repl_timeout_secs.max(1) as u64 * 1000;
    let now = crate::util::now_ms();
    let dead: Vec<Arc<ReplicaSink>> = server.feed.with(|st| {
        st.replicas
            .iter()
            .filter(|r| !r.closed.load(Ordering::Relaxed) && !r.pre_psync.load(Ordering::Relaxed))
            .filter(|r| matches!(r.phase(), SyncPhase::Online | SyncPhase::WaitAck))
            .filter(|r| now.saturating_sub(r.ack_ms.load(Ordering::Relaxed)) > timeout_ms)
            .cloned()
            .collect()
    });
    for r in dead {
        crate::log_warning!(
            "Disconnecting timedout replica (streaming sync): {}",
            sink_name(&r)
        );
        super::fullsync::kill_sink(&server.shards, &r);
    }
}

/// A replica's name in logs from its sink (`replicationGetSlaveName`).
pub fn sink_name(sink: &ReplicaSink) -> String {
    let ip = sink.ip.lock().clone();
    match sink.listening_port.load(Ordering::Relaxed) {
        0 => format!("{ip}:<unknown-replica-port>"),
        p => format!("{ip}:{p}"),
    }
}

/// `min-replicas-to-write`: whether enough replicas acknowledged within
/// `min-replicas-max-lag` seconds for a write to be accepted.
pub fn enough_good_replicas(cfg: &crate::config::Config, server: &crate::server::Server) -> bool {
    if cfg.min_replicas_to_write == 0 || cfg.min_replicas_max_lag_secs == 0 {
        return true;
    }
    let now = crate::util::now_ms();
    let max_lag_ms = cfg.min_replicas_max_lag_secs as u64 * 1000;
    let good = server.feed.with(|st| {
        st.replicas
            .iter()
            .filter(|r| !r.closed.load(Ordering::Relaxed))
            // Online for Redis too: a diskless replica waiting to send its first ACK.
            .filter(|r| {
                matches!(
                    r.phase(),
                    super::feed::SyncPhase::Online | super::feed::SyncPhase::WaitAck
                )
            })
            .filter(|r| now.saturating_sub(r.ack_ms.load(Ordering::Relaxed)) <= max_lag_ms)
            .count()
    });
    good >= cfg.min_replicas_to_write as usize
}

/// CONFIG SET changed the configuration: a new `repl-backlog-size` applies at once (a
/// smaller backlog forgets its oldest bytes now, as Redis's resize does, so a replica
/// reconnecting right after cannot continue from them).
pub fn config_changed(server: &crate::server::Server) {
    let size = server.config.load().repl_backlog_size as usize;
    server.feed.with(|st| {
        if let Some(b) = st.backlog.as_mut() {
            b.resize(size);
        }
        st.trim_backlog();
    });
}

/// Applies `repl-backlog-size` changes (CONFIG SET) and frees the backlog of a master left
/// without replicas for `repl-backlog-ttl` seconds, starting a new history as Redis does (a
/// replica never frees its backlog: it may be promoted).
fn backlog_cron(server: &crate::server::Server) {
    let cfg = server.config.load();
    let now = crate::util::now_ms();
    let waiting = !super::fullsync::waiting_sinks().is_empty();
    server.feed.with(|st| {
        let Some(b) = st.backlog.as_mut() else {
            st.no_replicas_since_ms = 0;
            return;
        };
        b.resize(cfg.repl_backlog_size as usize);
        st.trim_backlog();
        let alone = st.replicas.iter().all(|r| r.closed.load(Ordering::Relaxed)) && !waiting;
        if !alone || st.upstream || super::replica::is_replica() {
            st.no_replicas_since_ms = 0;
            return;
        }
        if st.no_replicas_since_ms == 0 {
            st.no_replicas_since_ms = now;
            return;
        }
        let ttl_secs = cfg.repl_backlog_ttl_secs;
        if ttl_secs > 0 && now.saturating_sub(st.no_replicas_since_ms) >= ttl_secs * 1000 {
            st.backlog = None;
            st.new_history();
            st.no_replicas_since_ms = 0;
            crate::log_notice!(
                "Replication backlog freed after {} seconds without connected replicas.",
                ttl_secs
            );
        }
    });
}
