//! The master side of replication: SYNC, PSYNC and REPLCONF.
//!
//! A replica is a connection like any other, on whichever shard accepted it. SYNC/PSYNC turns
//! it into a stream consumer: a `ReplicaSink` registered with the feed receives every
//! propagated byte, and the connection's shard moves those bytes to its output each loop
//! turn (the feeding shard pokes it awake).
//!
//! A full resynchronization takes every shard lock, writes the RDB of the whole dataset into
//! the reply and registers the sink before releasing the locks, so the replica gets exactly
//! the writes after the snapshot: no write can be fed while all shards are held. A partial
//! resynchronization (`+CONTINUE`) answers from the backlog under the feed's lock.

use super::feed::ReplicaSink;
use crate::commands::parse;
use crate::persistence::rdb::{DbView, RdbOptions, RdbWriter};
use crate::protocol::Out;
use crate::server::ConnCtx;
use crate::storage::ShardData;
use bytes::Bytes;
use std::sync::atomic::Ordering;
use std::sync::Arc;

/// SYNC: the old protocol, a full resynchronization without the +FULLRESYNC line.
pub fn sync(ctx: &mut ConnCtx, _args: &[Bytes], out: &mut Out) {
    start_replica(ctx, None, out);
}

/// PSYNC replid offset.
pub fn psync(ctx: &mut ConnCtx, args: &[Bytes], out: &mut Out) {
    let replid = args.get(1).map(|a| String::from_utf8_lossy(a).into_owned());
    let offset = args
        .get(2)
        .and_then(|a| std::str::from_utf8(a).ok())
        .and_then(|s| s.parse::<i64>().ok());
    start_replica(
        ctx,
        Some((replid.unwrap_or_default(), offset.unwrap_or(-1))),
        out,
    );
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
    let cfg = ctx.config();
    let me = crate::shard::mesh::ConnRef {
        shard: ctx.shard,
        token: ctx.client.token,
        gen: ctx.client.gen,
    };
    let sink = Arc::new(ReplicaSink::new(me));
    *sink.ip.lock() = match &ctx.client.replica_announced_ip {
        Some(ip) => ip.clone(),
        None => {
            let a = &ctx.client.shared.addr;
            a.rsplit_once(':')
                .map_or(a.as_str(), |(h, _)| h)
                .to_string()
        }
    };
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
            if st.backlog_from(*from as u64).is_none() {
                crate::log_notice!(
                    "Unable to partial resync with replica for lack of backlog (Replica request was: {}).",
                    from
                );
            }
            let data = st.backlog_from(*from as u64)?;
            st.replicas.push(sink.clone());
            Some((st.replid.clone(), data))
        });
        if let Some((id, data)) = cont {
            let line = if psync2 {
                format!("+CONTINUE {id}\r\n")
            } else {
                "+CONTINUE\r\n".to_string()
            };
            out.raw(line.as_bytes());
            out.raw(&data);
            super::info::SYNC_PARTIAL_OK.fetch_add(1, Ordering::Relaxed);
            become_replica(ctx, sink);
            crate::log_notice!(
                "Partial resynchronization request from {} accepted. Sending {} bytes of backlog starting from offset {}.",
                ctx.client.shared.addr,
                data.len(),
                from
            );
            return;
        }
    }
    // A full resynchronization: the snapshot and the registration happen under every lock.
    super::info::SYNC_FULL.fetch_add(1, Ordering::Relaxed);
    if psync.as_ref().is_some_and(|(id, _)| id != "?") {
        super::info::SYNC_PARTIAL_ERR.fetch_add(1, Ordering::Relaxed);
    }
    let opts = RdbOptions {
        compression: cfg.rdbcompression,
        checksum: cfg.rdbchecksum,
        ..Default::default()
    };
    let result = {
        let guards = ctx.server.lock_all();
        let shards: Vec<&ShardData> = guards.iter().map(|g| &**g).collect();
        let views = DbView::from_shards(&shards);
        feed.with(|st| {
            if st.backlog.is_none() {
                // A fresh history for the first replica, as Redis does.
                st.replid = crate::server::random_hex(40);
                st.replid2 = "0".repeat(40);
                st.second_replid_offset = -1;
                st.ensure_backlog(cfg.repl_backlog_size as usize);
            }
            st.reset_repl_db();
            let offset = st.offset;
            let replid = st.replid.clone();
            let aux_off = offset.to_string();
            // A replica's stream goes on in the database its master last selected.
            let stream_db = (if st.upstream { st.stream_db } else { 0 }).to_string();
            let extra: [(&[u8], &[u8]); 3] = [
                (b"repl-stream-db", stream_db.as_bytes()),
                (b"repl-id", replid.as_bytes()),
                (b"repl-offset", aux_off.as_bytes()),
            ];
            let rdb = RdbWriter::with_aux(Vec::new(), &opts, &extra).and_then(|mut w| {
                for v in &views {
                    w.db(v)?;
                }
                w.finish()
            });
            match rdb {
                Ok((bytes, _)) => {
                    st.replicas.push(sink.clone());
                    Ok((replid, offset, bytes))
                }
                Err(e) => Err(e),
            }
        })
    };
    match result {
        Ok((replid, offset, rdb)) => {
            if psync.is_some() {
                out.raw(format!("+FULLRESYNC {replid} {offset}\r\n").as_bytes());
            }
            out.raw(format!("${}\r\n", rdb.len()).as_bytes());
            out.raw(&rdb);
            // Redis sends the RDB outside the output buffer: it does not count against the
            // replica's output limit (`server::buffers`).
            ctx.client.obuf_exempt_bytes = out.buf.len();
            become_replica(ctx, sink);
            crate::log_notice!(
                "Synchronization with replica {} succeeded (full resync, {} bytes)",
                ctx.client.shared.addr,
                rdb.len()
            );
        }
        Err(e) => {
            crate::log_warning!("Can't produce the RDB for a replica: {}", e);
            ctx.client.close_after_reply = true;
        }
    }
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
            }
        } else if parse::eq(opt, "ack") || parse::eq(opt, "fack") {
            // Acknowledgements get no reply.
            if let (Some(sink), Ok(off)) = (&ctx.client.replica, parse::i64_arg(val)) {
                if parse::eq(opt, "ack") {
                    sink.ack_offset.store(off.max(0) as u64, Ordering::Relaxed);
                    sink.ack_ms.store(crate::util::now_ms(), Ordering::Relaxed);
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
}

/// Replicas that acknowledged at least `target`.
pub fn acked(server: &crate::server::Server, target: u64) -> usize {
    server.feed.with(|st| {
        st.replicas
            .iter()
            .filter(|r| !r.closed.load(Ordering::Relaxed))
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
        st.feed_raw(&cmd)
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
    let target = ctx.server.feed.with(|st| st.offset);
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
    });
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
    static LAST_PING_MS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let now = crate::util::now_ms();
    let period_ms = server.config.load().repl_ping_replica_period_secs.max(1) as u64 * 1000;
    let last = LAST_PING_MS.load(Ordering::Relaxed);
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
        st.feed_raw(&ping)
    });
    poke_shards(server, poke);
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
            .filter(|r| now.saturating_sub(r.ack_ms.load(Ordering::Relaxed)) <= max_lag_ms)
            .count()
    });
    good >= cfg.min_replicas_to_write as usize
}
