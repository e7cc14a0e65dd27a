//! What replication shows: the `# Replication` section of INFO, ROLE, and the sync counters of
//! `# Stats`.

use super::replica::{is_replica, LinkStatus};
use crate::protocol::Out;
use crate::server::{ConnCtx, Server};
use bytes::Bytes;
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};

/// `sync_full`, `sync_partial_ok`, `sync_partial_err` of INFO stats.
pub static SYNC_FULL: AtomicU64 = AtomicU64::new(0);
pub static SYNC_PARTIAL_OK: AtomicU64 = AtomicU64::new(0);

/// CONFIG RESETSTAT's replication part (`sync_full`, `sync_partial_ok`, `sync_partial_err`).
pub fn reset_stats() {
    SYNC_FULL.store(0, Ordering::Relaxed);
    SYNC_PARTIAL_OK.store(0, Ordering::Relaxed);
    SYNC_PARTIAL_ERR.store(0, Ordering::Relaxed);
}
pub static SYNC_PARTIAL_ERR: AtomicU64 = AtomicU64::new(0);

/// One attached replica as INFO and ROLE show it.
struct ReplicaLine {
    ip: String,
    port: u64,
    offset: u64,
    lag_secs: u64,
    state: &'static str,
}

/// Every replica: those waiting for a fork (not in the feed yet), then the feed's.
fn replicas(srv: &Server) -> Vec<ReplicaLine> {
    let now = crate::util::now_ms();
    let mut sinks = super::fullsync::waiting_sinks();
    srv.feed
        .with(|st| sinks.extend(st.replicas.iter().cloned()));
    sinks
        .iter()
        .filter(|r| !r.closed.load(Ordering::Relaxed))
        .map(|r| {
            let state = super::fullsync::state_name(r);
            ReplicaLine {
                ip: r.ip.lock().clone(),
                port: r.listening_port.load(Ordering::Relaxed),
                offset: r.ack_offset.load(Ordering::Relaxed),
                lag_secs: if state == "online" {
                    now.saturating_sub(r.ack_ms.load(Ordering::Relaxed)) / 1000
                } else {
                    0
                },
                state,
            }
        })
        .collect()
}

/// The `# Replication` section, with every field Redis 7.0 prints.
pub fn section(srv: &Server) -> String {
    let cfg = srv.config.load();
    let now = crate::util::now_ms();
    let mut t = String::from("# Replication\r\n");
    let (replid, replid2, offset, second, backlog) = srv.feed.with(|st| {
        (
            st.replid.clone(),
            st.replid2.clone(),
            st.offset,
            st.second_replid_offset,
            st.backlog
                .as_ref()
                .map(|b| (b.size(), st.backlog_first_byte(), b.histlen())),
        )
    });
    if is_replica() {
        let link = srv.link.state.lock();
        let (host, port) = link.master.clone().unwrap_or_default();
        let up = link.status == LinkStatus::Connected;
        let syncing = link.status == LinkStatus::Transfer;
        // Without a master client or a cached one Redis shows 1.
        let link_offset = if up || link.cached { offset } else { 1 };
        let _ = write!(
            t,
            "role:slave\r\nmaster_host:{}\r\nmaster_port:{}\r\nmaster_link_status:{}\r\nmaster_last_io_seconds_ago:{}\r\nmaster_sync_in_progress:{}\r\nslave_read_repl_offset:{}\r\nslave_repl_offset:{}\r\n",
            host,
            port,
            if up { "up" } else { "down" },
            if up {
                (now.saturating_sub(link.last_io_ms) / 1000) as i64
            } else {
                -1
            },
            syncing as u8,
            link_offset,
            link_offset
        );
        if syncing {
            let total = link.transfer_size;
            let read = link.transfer_read as i64;
            let perc = if total > 0 {
                read as f64 * 100.0 / total as f64
            } else {
                0.0
            };
            let _ = write!(
                t,
                "master_sync_total_bytes:{}\r\nmaster_sync_read_bytes:{}\r\nmaster_sync_left_bytes:{}\r\nmaster_sync_perc:{:.2}\r\nmaster_sync_last_io_seconds_ago:{}\r\n",
                total,
                read,
                total - read,
                perc,
                now.saturating_sub(link.last_io_ms) / 1000
            );
        }
        if !up {
            let since = if link.down_since_ms == 0 {
                -1
            } else {
                (now.saturating_sub(link.down_since_ms) / 1000) as i64
            };
            let _ = write!(t, "master_link_down_since_seconds:{}\r\n", since);
        }
        let _ = write!(
            t,
            "slave_priority:{}\r\nslave_read_only:{}\r\nreplica_announced:{}\r\n",
            cfg.replica_priority, cfg.replica_read_only as u8, cfg.replica_announced as u8
        );
    } else {
        t.push_str("role:master\r\n");
    }
    let lines = replicas(srv);
    let _ = write!(t, "connected_slaves:{}\r\n", lines.len());
    if cfg.min_replicas_to_write > 0 {
        let good = lines
            .iter()
            .filter(|l| l.state == "online")
            .filter(|l| l.lag_secs <= cfg.min_replicas_max_lag_secs as u64)
            .count();
        let _ = write!(t, "min_slaves_good_slaves:{}\r\n", good);
    }
    for (i, l) in lines.iter().enumerate() {
        let _ = write!(
            t,
            "slave{}:ip={},port={},state={},offset={},lag={}\r\n",
            i, l.ip, l.port, l.state, l.offset, l.lag_secs
        );
    }
    let (size, first, histlen) = backlog.unwrap_or((cfg.repl_backlog_size as usize, 0, 0));
    let _ = write!(
        t,
        "master_failover_state:{}\r\nmaster_replid:{}\r\nmaster_replid2:{}\r\nmaster_repl_offset:{}\r\nsecond_repl_offset:{}\r\nrepl_backlog_active:{}\r\nrepl_backlog_size:{}\r\nrepl_backlog_first_byte_offset:{}\r\nrepl_backlog_histlen:{}\r\n",
        super::failover::state_name(),
        replid,
        replid2,
        offset,
        second,
        backlog.is_some() as u8,
        size,
        first,
        histlen
    );
    t
}

/// ROLE.
pub fn role(ctx: &mut ConnCtx, _args: &[Bytes], out: &mut Out) {
    let srv = ctx.server;
    let offset = srv.feed.with(|st| st.offset);
    if is_replica() {
        let link = srv.link.state.lock();
        let (host, port) = link.master.clone().unwrap_or_default();
        let state = match link.status {
            LinkStatus::None | LinkStatus::Connect => "connect",
            LinkStatus::Connecting => "connecting",
            LinkStatus::Handshake => "handshake",
            LinkStatus::Transfer => "sync",
            LinkStatus::Connected => "connected",
        };
        let up = link.status == LinkStatus::Connected;
        out.array(5);
        out.bulk_str("slave");
        out.bulk_str(&host);
        out.int(port as i64);
        out.bulk_str(state);
        out.int(if up { offset as i64 } else { -1 });
        return;
    }
    let lines = replicas(srv);
    out.array(3);
    out.bulk_str("master");
    out.int(offset as i64);
    let lines: Vec<ReplicaLine> = lines.into_iter().filter(|l| l.state == "online").collect();
    out.array(lines.len());
    for l in lines {
        out.array(3);
        out.bulk_str(&l.ip);
        out.bulk_str(&l.port.to_string());
        out.bulk_str(&l.offset.to_string());
    }
}
