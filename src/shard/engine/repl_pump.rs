//! Moving the replication stream from the shared buffer (`replication::feed`) to this shard's
//! replica connections, in coalesced sends.
//!
//! Every shard feeds the one stream; a replica's connection lives on one shard, which copies
//! the new bytes to its output and sends them. Sent at every loop turn of every shard (and
//! with the owner woken for each write another shard fed), the stream went out in pieces of
//! a few commands: at `-P 1` with 50 clients each replica woke and read about once per five
//! writes, and the wake-ups between the master's shards cost the master as much again. On a
//! machine where replicas and master share cores, that per-send cost is most of what
//! replication costs.
//!
//! So the stream is moved at most once per `PUMP_INTERVAL` per shard, unless a replica has
//! `PUMP_BYTES` waiting, a full synchronization is under way, or the master added something
//! that wants an answer (REPLCONF GETACK for WAIT: `Feed::urgent`), which go at once. A shard
//! with stream bytes pending sleeps no longer than the interval's end and says so
//! (`ShardHandle::repl_timer`), so the shards that feed it need not wake it: every byte
//! reaches its replica's output within the interval. This trades at most half a millisecond
//! of replication delay for sends of tens of commands each, the way Nagle or interrupt
//! coalescing trade latency for fewer wake-ups.

use super::{conn_mut, Shard};
use crate::replication::feed::SyncPhase;
use crate::shard::io::Io;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

/// The longest stream bytes wait for more to join them before they are sent.
pub(super) const PUMP_INTERVAL: Duration = Duration::from_micros(500);
/// Stream bytes pending for one replica that are sent at once, whatever the interval.
const PUMP_BYTES: u64 = 64 * 1024;

impl<I: Io> Shard<I> {
    /// Moves the replication stream fed since the last pump to this shard's replicas, when
    /// `pump_due` says it is time.
    pub(super) fn pump_replicas(&mut self) {
        let now = Instant::now();
        if !self.pump_due(now) {
            return;
        }
        self.repl_pumped = now;
        let mut i = 0;
        while i < self.replicas.len() {
            let t = self.replicas[i];
            i += 1;
            let Some(c) = conn_mut(&mut self.conns, t) else {
                continue;
            };
            let Some(sink) = c.replica.clone() else {
                continue;
            };
            // A killed replica (CLIENT KILL inside a transaction) gets nothing more of the
            // stream, not even what was fed after the kill in the same EXEC.
            if c.shared.kill.load(Ordering::Relaxed) {
                continue;
            }
            if sink.drain_into(&self.server.feed, &mut c.out) > 0 {
                self.to_send.push(t);
            }
        }
    }

    /// Whether this turn moves the stream: the interval since the last pump ended, the master
    /// added bytes that want an answer, a replica is in a full synchronization (its RDB is
    /// never held back), or one has `PUMP_BYTES` waiting.
    fn pump_due(&mut self, now: Instant) -> bool {
        let urgent = self.server.feed.urgent();
        if urgent != self.repl_urgent_seen {
            self.repl_urgent_seen = urgent;
            return true;
        }
        if now.saturating_duration_since(self.repl_pumped) >= PUMP_INTERVAL {
            return true;
        }
        self.replicas.iter().any(|&t| {
            self.conns
                .get(t as usize)
                .and_then(|c| c.as_ref())
                .and_then(|c| c.replica.as_ref())
                .is_some_and(|s| s.phase() != SyncPhase::Online || s.lag() >= PUMP_BYTES)
        })
    }

    /// Before the loop sleeps: how long it may, if a replica's stream bytes are pending (the
    /// rest of the interval). Publishes whether it will wake on its own for them
    /// (`ShardHandle::repl_timer`), which spares feeding shards a wake-up.
    pub(super) fn replica_wait(&mut self) -> Option<Duration> {
        let pending = self.replicas.iter().any(|&t| {
            self.conns
                .get(t as usize)
                .and_then(|c| c.as_ref())
                .filter(|c| !c.shared.kill.load(Ordering::Relaxed))
                .and_then(|c| c.replica.as_ref())
                .is_some_and(|s| s.phase() == SyncPhase::Online && s.lag() > 0)
        });
        self.handle.repl_timer.store(pending, Ordering::SeqCst);
        pending
            .then(|| (self.repl_pumped + PUMP_INTERVAL).saturating_duration_since(Instant::now()))
    }

    /// After the loop woke: the timer no longer stands for a pump to come (this turn pumps or
    /// arms it again before sleeping).
    pub(super) fn replica_woke(&mut self) {
        if self.handle.repl_timer.load(Ordering::Relaxed) {
            self.handle.repl_timer.store(false, Ordering::SeqCst);
        }
    }
}
