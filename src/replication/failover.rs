//! FAILOVER: a coordinated hand-over from this master to one of its replicas (Redis 7.0's
//! `failoverCommand`, `updateFailoverStatus`).
//!
//! The happy path: FAILOVER pauses writes (a pause of its own, which CLIENT UNPAUSE does not
//! lift); the cron watches the replicas' acknowledged offsets; once the target (or, without
//! TO, any replica) acknowledged our whole stream, this server becomes a replica of it and its
//! link sends `PSYNC <replid> <offset> FAILOVER`; the target, seeing its own replid, promotes
//! itself and answers +CONTINUE, so no byte is lost and nobody needs a full sync. The pause
//! ends when the target answered (`psync_answered`). With TIMEOUT the wait is bounded: it
//! aborts, or with FORCE fails over anyway. FAILOVER ABORT, a timeout, or a target that
//! rejects the PSYNC bring this server back to master.
//!
//! The state is one mutex-protected record (commands, shard 0's cron and the replication link
//! read it) plus an atomic the engine reads per write to know whether writes are paused.

use crate::commands::parse;
use crate::protocol::Out;
use crate::server::{ConnCtx, Server};
use bytes::Bytes;
use parking_lot::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

/// `master_failover_state`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    None,
    /// Writes paused, waiting for a replica to acknowledge everything.
    WaitForSync,
    /// We are a replica of the target, sending it PSYNC FAILOVER.
    InProgress,
}

struct Failover {
    phase: Phase,
    target: Option<(String, u16)>,
    /// Unix ms; 0 = no timeout.
    end_ms: u64,
    force: bool,
}

static STATE: Mutex<Failover> = Mutex::new(Failover {
    phase: Phase::None,
    target: None,
    end_ms: 0,
    force: false,
});

/// Writes are paused for a failover (read by the engine with every write).
static PAUSING: AtomicBool = AtomicBool::new(false);

/// Whether writes wait for a failover to end.
#[inline]
pub fn pausing() -> bool {
    PAUSING.load(Ordering::Relaxed)
}

/// `master_failover_state` for INFO.
pub fn state_name() -> &'static str {
    match STATE.lock().phase {
        Phase::None => "no-failover",
        Phase::WaitForSync => "waiting-for-sync",
        Phase::InProgress => "failover-in-progress",
    }
}

/// A failover is under way (SYNC/PSYNC and REPLICAOF are refused).
pub fn active() -> bool {
    STATE.lock().phase != Phase::None
}

/// The replication link asks: does its PSYNC carry FAILOVER?
pub fn in_progress() -> bool {
    STATE.lock().phase == Phase::InProgress
}

fn clear(st: &mut Failover) {
    st.phase = Phase::None;
    st.target = None;
    st.end_ms = 0;
    st.force = false;
    // Parked connections resume on their shard's next turn (a shard holding parked
    // connections looks every few milliseconds).
    PAUSING.store(false, Ordering::Relaxed);
}

/// Ends a failover that cannot complete (`abortFailover`): back to master if we had already
/// turned replica.
fn abort(server: &Server, st: &mut Failover, reason: &str) {
    if st.phase == Phase::None {
        return;
    }
    match &st.target {
        Some((h, p)) => crate::log_notice!("FAILOVER to {}:{} aborted: {}", h, p, reason),
        None => crate::log_notice!("FAILOVER to any replica aborted: {}", reason),
    }
    if st.phase == Phase::InProgress {
        super::replica::promote(server);
    }
    clear(st);
}

/// The link got the target's answer to PSYNC FAILOVER: done if it accepted (+CONTINUE, or a
/// full resync, which is not wrong), else back to master.
pub fn psync_answered(server: &Server, accepted: bool) {
    let mut st = STATE.lock();
    if st.phase != Phase::InProgress {
        return;
    }
    if accepted {
        clear(&mut st);
    } else {
        abort(server, &mut st, "Failover target rejected psync request");
    }
}

/// FAILOVER [TO host port [FORCE]] [TIMEOUT ms] | FAILOVER ABORT.
pub fn command(ctx: &mut ConnCtx, args: &[Bytes], out: &mut Out) {
    let server = ctx.server;
    if ctx.config().cluster_enabled {
        out.error(
            "ERR FAILOVER not allowed in cluster mode. Use CLUSTER FAILOVER command instead.",
        );
        return;
    }
    if args.len() == 2 && parse::eq(&args[1], "abort") {
        let mut st = STATE.lock();
        if st.phase == Phase::None {
            out.error("ERR No failover in progress.");
            return;
        }
        abort(server, &mut st, "Failover manually aborted");
        out.ok();
        return;
    }
    let mut timeout_ms = 0i64;
    let mut force = false;
    let mut target: Option<(String, i64)> = None;
    let mut j = 1;
    while j < args.len() {
        if parse::eq(&args[j], "timeout") && j + 1 < args.len() && timeout_ms == 0 {
            let Ok(t) = parse::i64_arg(&args[j + 1]) else {
                out.error(crate::commands::err::NOT_INT);
                return;
            };
            if t <= 0 {
                out.error("ERR FAILOVER timeout must be greater than 0");
                return;
            }
            timeout_ms = t;
            j += 2;
        } else if parse::eq(&args[j], "to") && j + 2 < args.len() && target.is_none() {
            let Ok(port) = parse::i64_arg(&args[j + 2]) else {
                out.error(crate::commands::err::NOT_INT);
                return;
            };
            target = Some((String::from_utf8_lossy(&args[j + 1]).into_owned(), port));
            j += 3;
        } else if parse::eq(&args[j], "force") && !force {
            force = true;
            j += 1;
        } else {
            out.error(crate::commands::err::SYNTAX);
            return;
        }
    }
    let mut st = STATE.lock();
    if st.phase != Phase::None {
        out.error("ERR FAILOVER already in progress.");
        return;
    }
    if super::replica::is_replica() {
        out.error("ERR FAILOVER is not valid when server is a replica.");
        return;
    }
    let replicas = replicas(server);
    if replicas.is_empty() {
        out.error("ERR FAILOVER requires connected replicas.");
        return;
    }
    if force && (timeout_ms == 0 || target.is_none()) {
        out.error("ERR FAILOVER with force option requires both a timeout and target HOST and IP.");
        return;
    }
    if let Some((host, port)) = &target {
        let Some(r) = replicas
            .iter()
            .find(|r| r.0.eq_ignore_ascii_case(host) && r.1 as i64 == *port)
        else {
            out.error("ERR FAILOVER target HOST and PORT is not a replica.");
            return;
        };
        if !r.3 {
            out.error("ERR FAILOVER target replica is not online.");
            return;
        }
        crate::log_notice!("FAILOVER requested to {}:{}.", host, port);
        st.target = Some((host.clone(), *port as u16));
    } else {
        crate::log_notice!("FAILOVER requested to any replica.");
    }
    st.end_ms = if timeout_ms > 0 {
        crate::util::now_ms() + timeout_ms as u64
    } else {
        0
    };
    st.force = force;
    st.phase = Phase::WaitForSync;
    PAUSING.store(true, Ordering::Relaxed);
    out.ok();
}

/// (ip, listening port, acknowledged offset, online) of every replica.
fn replicas(server: &Server) -> Vec<(String, u64, u64, bool)> {
    let mut sinks = super::fullsync::waiting_sinks();
    server
        .feed
        .with(|st| sinks.extend(st.replicas.iter().cloned()));
    sinks
        .iter()
        .filter(|s| !s.closed.load(Ordering::Relaxed))
        .map(|s| {
            (
                s.ip.lock().clone(),
                s.listening_port.load(Ordering::Relaxed),
                s.ack_offset.load(Ordering::Relaxed),
                s.phase() == super::feed::SyncPhase::Online,
            )
        })
        .collect()
}

/// Shard 0's cron (`updateFailoverStatus`): time out, or fail over to a replica that caught up.
pub fn cron(server: &Server) {
    let mut st = STATE.lock();
    if st.phase != Phase::WaitForSync {
        return;
    }
    let now = crate::util::now_ms();
    if st.end_ms != 0 && st.end_ms <= now {
        if st.force {
            if let Some((h, p)) = st.target.clone() {
                crate::log_notice!("FAILOVER to {}:{} time out exceeded, failing over.", h, p);
                st.phase = Phase::InProgress;
                drop(st);
                super::replica::set_master(server, &h, p);
                return;
            }
        }
        abort(server, &mut st, "Replica never caught up before timeout");
        return;
    }
    let offset = server.feed.with(|f| f.offset);
    let replicas = replicas(server);
    let caught_up = match &st.target {
        Some((h, p)) => replicas
            .iter()
            .any(|r| r.0.eq_ignore_ascii_case(h) && r.1 == *p as u64 && r.2 == offset),
        None => match replicas.iter().find(|r| r.2 == offset) {
            Some(r) => {
                st.target = Some((r.0.clone(), r.1 as u16));
                true
            }
            None => false,
        },
    };
    if !caught_up {
        return;
    }
    let Some((h, p)) = st.target.clone() else {
        return;
    };
    st.phase = Phase::InProgress;
    crate::log_notice!("Failover target {}:{} is synced, failing over.", h, p);
    drop(st);
    super::replica::set_master(server, &h, p);
}
