//! The engine's side of client buffers (`server::buffers`): the output limits checked after
//! every command and before every send, the figures published for CLIENT LIST and client
//! eviction, and the per-client cron (soft limits reached without traffic, query buffer
//! resizing, INFO's recent peaks).
//!
//! A client over its output limit is closed on the spot, before anything more is handed to
//! the backend: Redis flags it "close ASAP" and frees it before its next write, so neither
//! sends the replies that overflowed. Its in-flight send, if any, is cancelled with the
//! connection.

use super::{conn_mut, Shard};
use crate::server::buffers;
use crate::shard::io::{Io, Token};

/// Clients a cron pass visits at least (Redis's `CLIENTS_CRON_MIN_ITERATIONS`).
const CLIENTS_PER_CRON_PASS_MIN: u64 = 5;

impl<I: Io> Shard<I> {
    /// After a command: closes the client if its output reached the hard limit, so the rest
    /// of its pipeline does not run. True: the client is gone.
    pub(super) fn obuf_hard_limit_reached(&mut self, token: Token) -> bool {
        let Some(c) = conn_mut(&mut self.conns, token) else {
            return true;
        };
        if !buffers::over_hard_limit(c, &self.cfg) {
            return false;
        }
        buffers::publish(&self.server, self.id, c, &self.cfg);
        buffers::log_obuf_close(c, self.now_ms, true);
        self.close_client(token);
        true
    }

    /// Before handing a client's output to the backend: the output limits (closing the client
    /// if reached), then its figures for other threads, then client eviction if due.
    /// True: the client is gone.
    pub(super) fn check_buffers(&mut self, token: Token) -> bool {
        let Some(c) = conn_mut(&mut self.conns, token) else {
            return false;
        };
        if buffers::check_output(c, &self.cfg, self.now_ms) {
            buffers::publish(&self.server, self.id, c, &self.cfg);
            buffers::log_obuf_close(c, self.now_ms, true);
            self.close_client(token);
            return true;
        }
        if buffers::publish(&self.server, self.id, c, &self.cfg) {
            buffers::evict(&self.server, &self.cfg, self.id, self.now_ms);
        }
        false
    }

    /// Before a command (Redis's `evictClients` in `processCommand`, ahead of key eviction)
    /// and when replies from another shard land in the client's output: with
    /// `maxmemory-clients` set, the client's figures are published (what its commands queued
    /// counts at once, not at the end of the turn) and client eviction runs if due.
    /// True: the client was evicted (a command it sent must not run).
    pub(super) fn evict_clients_for(&mut self, token: Token) -> bool {
        if buffers::eviction_limit(&self.cfg) == 0 {
            return false;
        }
        let Some(c) = conn_mut(&mut self.conns, token) else {
            return true;
        };
        if buffers::publish(&self.server, self.id, c, &self.cfg) {
            buffers::evict(&self.server, &self.cfg, self.id, self.now_ms);
        }
        c.shared.kill.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The cron's pass over this shard's clients.
    pub(super) fn clients_cron(&mut self) {
        let now = self.now_ms;
        // Redis's clientsCron visits at least five clients per pass and every client at least
        // once a second: with few clients each one's buffers are resized (and its recent peak
        // restarted) every pass, with many once a second.
        let clients = self.conns.iter().filter(|c| c.is_some()).count() as u64;
        let hz = self.cfg.hz.clamp(1, 500) as u64;
        let every = clients.div_ceil(CLIENTS_PER_CRON_PASS_MIN).clamp(1, hz);
        let tick = self.cron_ticks;
        self.cron_ticks = tick.wrapping_add(1);
        let mut over = Vec::new();
        let mut evict = false;
        for t in 0..self.conns.len() {
            let Some(c) = conn_mut(&mut self.conns, t as Token) else {
                continue;
            };
            let resize = (tick + t as u64).is_multiple_of(every);
            if buffers::cron(&self.server, c, &self.cfg, now, resize) {
                over.push(t as Token);
                continue;
            }
            evict |= buffers::publish(&self.server, self.id, c, &self.cfg);
        }
        for t in over {
            if let Some(c) = conn_mut(&mut self.conns, t) {
                buffers::publish(&self.server, self.id, c, &self.cfg);
                // A replica's share of the replication buffer grows as writes are fed, where
                // Redis checks it and closes asynchronously: its log line says so.
                let scheduled = c.replica.is_some();
                buffers::log_obuf_close(c, now, scheduled);
            }
            self.close_client(t);
        }
        if evict {
            buffers::evict(&self.server, &self.cfg, self.id, now);
        }
    }
}
