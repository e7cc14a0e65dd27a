//! Command and error statistics, kept per shard and summed for INFO.

use hashbrown::HashMap;
use std::hash::{BuildHasherDefault, Hash, Hasher};

/// A command's full name. Nearly every name comes from the command table's one static
/// string per command (`dispatch::full_name`), so equality tries the address before the
/// bytes, and the short name is hashed inline: no SipHash and no `memcmp` call per command.
#[derive(Clone, Copy, Debug)]
pub struct CmdName(pub &'static str);

impl PartialEq for CmdName {
    fn eq(&self, o: &CmdName) -> bool {
        std::ptr::eq(self.0, o.0) || self.0 == o.0
    }
}

impl Eq for CmdName {}

impl Hash for CmdName {
    fn hash<H: Hasher>(&self, h: &mut H) {
        h.write(self.0.as_bytes());
    }
}

/// A small multiplicative hash for command names (a few bytes, not attacker-chosen: they are
/// the table's names).
#[derive(Default)]
pub struct NameHasher(u64);

impl Hasher for NameHasher {
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0.rotate_left(5) ^ u64::from(b)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
    }
    fn finish(&self) -> u64 {
        self.0
    }
}

#[derive(Default, Clone, Debug)]
pub struct CmdStat {
    pub calls: u64,
    pub usec: u64,
    pub rejected_calls: u64,
    pub failed_calls: u64,
    /// Durations (µs) not yet added to the command's histogram (`latency-tracking`; see
    /// `crate::latency`).
    pub latency_pending: Vec<u32>,
}

#[derive(Default, Clone, Debug)]
pub struct CommandStats {
    /// Keyed by the full name (`get`, `config|get`).
    pub cmds: HashMap<CmdName, CmdStat, BuildHasherDefault<NameHasher>>,
    /// Error replies by code (`ERR`, `WRONGTYPE`).
    pub errors: HashMap<String, u64>,
    pub total_commands: u64,
    pub total_error_replies: u64,
    /// Commands that ran on this shard for a connection of another shard.
    pub hops_in: u64,
    /// Commands this shard's connections sent to other shards.
    pub hops_out: u64,
    /// Commands that locked several shards.
    pub multi_shard: u64,
    /// Commands of another shard's connections that its thread ran on this shard's data
    /// under this shard's lock (the direct path, no hop).
    pub direct_in: u64,
}

impl CommandStats {
    pub fn record(&mut self, name: &'static str, usec: u64, failed: bool) {
        let s = self.cmds.entry(CmdName(name)).or_default();
        s.calls += 1;
        s.usec += usec;
        if failed {
            s.failed_calls += 1;
        }
        if crate::latency::tracking() {
            s.latency_pending
                .push(u32::try_from(usec).unwrap_or(u32::MAX));
            // The first call creates the histogram, as in Redis (so its memory shows in
            // `used_memory` when Redis's would); later ones are added in batches.
            if s.calls == 1 || s.latency_pending.len() >= crate::latency::LATENCY_PENDING_MAX {
                crate::latency::flush_samples(name, &mut s.latency_pending);
            }
        }
        self.total_commands += 1;
    }

    /// A blocked command answered with an error when unblocked (Redis's
    /// `updateStatsOnUnblock`): its call was counted when it blocked.
    pub fn record_failed(&mut self, name: &'static str) {
        self.cmds.entry(CmdName(name)).or_default().failed_calls += 1;
    }

    pub fn record_rejected(&mut self, name: Option<&'static str>) {
        if let Some(name) = name {
            self.cmds.entry(CmdName(name)).or_default().rejected_calls += 1;
        }
    }

    pub fn record_error(&mut self, code: &str) {
        self.total_error_replies += 1;
        // Redis caps distinct error codes at 128 to bound memory.
        if self.errors.len() < 128 || self.errors.contains_key(code) {
            *self.errors.entry(code.to_string()).or_default() += 1;
        }
    }

    /// Adds every command's buffered durations to the shared latency histograms.
    pub fn flush_latency(&mut self) {
        for (name, s) in self.cmds.iter_mut() {
            crate::latency::flush_samples(name.0, &mut s.latency_pending);
        }
    }

    /// Adds another shard's figures (not its buffered durations: see `flush_latency`).
    pub fn merge(&mut self, o: &CommandStats) {
        for (k, v) in &o.cmds {
            let s = self.cmds.entry(*k).or_default();
            s.calls += v.calls;
            s.usec += v.usec;
            s.rejected_calls += v.rejected_calls;
            s.failed_calls += v.failed_calls;
        }
        for (k, v) in &o.errors {
            *self.errors.entry(k.clone()).or_default() += v;
        }
        self.total_commands += o.total_commands;
        self.total_error_replies += o.total_error_replies;
        self.hops_in += o.hops_in;
        self.hops_out += o.hops_out;
        self.direct_in += o.direct_in;
        self.multi_shard += o.multi_shard;
    }

    pub fn reset(&mut self) {
        *self = CommandStats::default();
    }
}
