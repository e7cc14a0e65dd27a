//! The engine's side of client-side caching (see `crate::tracking`): marking the current
//! client around its commands, draining invalidations into connections in reply order, waking
//! the home shards of clients given invalidations, broadcasting BCAST keys, and keeping the
//! tracking table under `tracking-table-max-keys`.

use super::{conn_mut, Shard};
use crate::shard::io::{Io, Token};
use crate::shard::mesh::Msg;
use crate::storage::{key_slot, slot_owner};
use crate::tracking;
use bytes::Bytes;

impl<I: Io> Shard<I> {
    /// Before a command: the client becomes the current client, the table is brought under
    /// its limit (Redis does it in `processCommand`), and invalidations produced so far reach
    /// the client ahead of the command's reply. (Eviction follows, in the command's
    /// admission: `evict::admit_command`.)
    ///
    /// Returns the state to restore afterwards: a connection served while this thread's
    /// script is busy runs nested inside the script caller's command.
    pub(super) fn tracking_before(&mut self, token: Token) -> (u64, bool) {
        let outer = tracking::current();
        let max_keys = self.cfg.tracking_table_max_keys as usize;
        let Some(c) = conn_mut(&mut self.conns, token) else {
            return outer;
        };
        tracking::set_current(c.id(), false);
        if max_keys > 0 && tracking::total_keys() > max_keys && !crate::scripting::running() {
            for h in &self.server.shards {
                if tracking::total_keys() <= max_keys {
                    break;
                }
                h.lock_data().tracking.limit(max_keys);
            }
        }
        if let Some(c) = conn_mut(&mut self.conns, token) {
            if !(c.reply_off || c.reply_skip_next) && tracking::drain_client(c) {
                self.to_send.push(token);
            }
        }
        tracking::set_in_call(true);
        outer
    }

    /// After a command: keys read by a script are remembered, invalidations held for the
    /// client during its command are sent, BCAST keys are broadcast, the CLIENT CACHING mark
    /// is spent, and clients given invalidations are drained or woken.
    pub(super) fn tracking_after(&mut self, token: Token, args: &[Bytes], outer: (u64, bool)) {
        if outer.0 != 0 {
            // Nested in a busy script's command: what is held or queued is the script
            // caller's, delivered when its command ends.
            tracking::set_current(outer.0, outer.1);
            return;
        }
        tracking::set_in_call(false);
        if tracking::take_script_read() {
            self.track_script_keys(token, args);
        }
        tracking::flush_deferred();
        let touched = tracking::table::take_bcast_touched();
        if touched != 0 && !crate::scripting::running() {
            self.broadcast_shards(touched);
        }
        if let Some(c) = conn_mut(&mut self.conns, token) {
            let h = &c.shared.tracking;
            // CLIENT CACHING applies to the next command or transaction only.
            if h.flags() & tracking::flags::CACHING != 0
                && c.multi.is_none()
                && !c.shared.last_cmd_name().starts_with("client|")
            {
                tracking::set_caching(&c.shared, false);
            }
            if c.close_after_reply {
                // QUIT: the client is gone for invalidations at once, as in Redis, where it
                // is freed before its OK can be read.
                tracking::forget(&c.shared);
            }
        }
        tracking::set_current(0, false);
        self.process_wakes();
    }

    /// Redis tracks the keys a script declares when the script calls a read-only command.
    fn track_script_keys(&mut self, token: Token, args: &[Bytes]) {
        let Some(c) = conn_mut(&mut self.conns, token) else {
            return;
        };
        if !c.shared.tracking.remembers_reads() {
            return;
        }
        let id = c.id();
        let Some(cmd) = args.first().and_then(|a| crate::commands::lookup(a)) else {
            return;
        };
        for i in cmd.key_indices(args) {
            let Some(k) = args.get(i) else { continue };
            let owner = slot_owner(key_slot(k), self.nshards);
            if let Some(h) = self.server.shards.get(owner) {
                h.lock_data().tracking.remember(k, id);
            }
        }
    }

    /// Broadcasts the BCAST keys queued on the shards of `mask` (bit i % 64 = shard i).
    fn broadcast_shards(&mut self, mask: u64) {
        for h in &self.server.shards {
            if mask & (1u64 << (h.id % 64)) != 0 {
                h.lock_data().tracking.broadcast();
            }
        }
    }

    /// Drains the clients of this shard that were given invalidations; asks the home shards
    /// of the others to.
    pub(super) fn process_wakes(&mut self) {
        if !tracking::has_wakes() {
            return;
        }
        let mut wakes = tracking::take_wakes();
        wakes.sort_unstable();
        wakes.dedup();
        for (shard, token, id) in wakes {
            if shard == self.id {
                self.wake_local(token, id);
            } else if let Some(b) = self.outbox.get_mut(shard) {
                b.push(Msg::TrackingWake { token, id });
            }
        }
    }

    /// Drains a client of this shard, when doing so now keeps its replies in order.
    pub(super) fn wake_local(&mut self, token: Token, id: u64) {
        let Some(c) = conn_mut(&mut self.conns, token) else {
            return;
        };
        if c.id() == id && tracking::drain_client(c) {
            self.to_send.push(token);
        }
    }

    /// The cron's share: the table limit and the broadcast of keys expired or evicted on this
    /// shard, then whatever that produced is delivered.
    pub(super) fn tracking_cron(&mut self) {
        if tracking::active() {
            let max_keys = self.cfg.tracking_table_max_keys as usize;
            let mut data = self.handle.lock_data();
            data.tracking.limit(max_keys);
            data.tracking.broadcast();
        }
        tracking::table::take_bcast_touched();
        self.process_wakes();
    }
}
