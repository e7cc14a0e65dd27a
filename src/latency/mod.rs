//! Latency introspection, as Redis 7.0: the slow log, the latency monitor and per-command
//! latency histograms.
//!
//! - **Per-command histograms** (`LATENCY HISTOGRAM`, `INFO latencystats`): one per command
//!   for the whole server, as Redis has, in `HISTOGRAMS` behind a mutex. Each is an
//!   HdrHistogram of nanoseconds, 1 ns to 1 s at 2 significant digits, Redis's bounds,
//!   recording the command's duration in microseconds × 1000 as Redis does; that is about
//!   24 KB, counted in `used_memory` and so against `maxmemory`, which is why there is not one
//!   per shard. Every command records its duration in its shard's `CommandStats` (under the
//!   lock the command holds anyway), in a short buffer of samples that is added to the shared
//!   histogram when it fills (`LATENCY_PENDING_MAX`) and before any reader looks
//!   (`flush_shards`): one uncontended lock per 32 commands of a kind on the hot path.
//! - **The slow log** and **the latency monitor** are touched only by commands over a
//!   threshold (10 ms and off by default), so they are one global structure each behind a
//!   mutex: that keeps Redis's semantics exactly (one id sequence, one order, `slowlog-max-len`
//!   over all entries) at no cost to commands under the thresholds.
//!
//! The hot-path check (`after_command`) reads the thresholds from a per-thread copy refreshed
//! when the config generation changes, so a `CONFIG SET slowlog-log-slower-than 0` applies to
//! the very command that set it, as in Redis (which checks after the command ran).
//!
//! Who calls it: the shard engine after every executed command (`after_command`), the expire
//! cycle (`add_sample("expire-cycle", ms)`), and `commands::latency` for the replies.

pub mod events;
pub mod slowlog;

use crate::commands::{flag, Cmd};
use crate::server::{ClientShared, Server};
use bytes::Bytes;
use std::cell::Cell;
use std::sync::Mutex;

/// Histogram bounds of Redis (`LATENCY_HISTOGRAM_{MIN,MAX}_VALUE`, precision 2).
pub const HIST_NS_MIN: u64 = 1;
pub const HIST_NS_MAX: u64 = 1_000_000_000;
pub const HIST_SIGFIG: u8 = 2;

pub type Histogram = hdrhistogram::Histogram<u64>;

pub fn new_histogram() -> Option<Histogram> {
    Histogram::new_with_bounds(HIST_NS_MIN, HIST_NS_MAX, HIST_SIGFIG).ok()
}

/// Samples (µs) a shard buffers per command before adding them to the shared histogram.
pub const LATENCY_PENDING_MAX: usize = 32;

/// The per-command histograms, by full command name.
static HISTOGRAMS: Mutex<std::collections::BTreeMap<&'static str, Histogram>> =
    Mutex::new(std::collections::BTreeMap::new());

/// Adds buffered samples (µs) of `name` to its histogram, emptying `pending`.
pub fn flush_samples(name: &'static str, pending: &mut Vec<u32>) {
    if pending.is_empty() {
        return;
    }
    let Ok(mut all) = HISTOGRAMS.lock() else {
        return pending.clear();
    };
    if !all.contains_key(name) {
        let Some(h) = new_histogram() else {
            return pending.clear();
        };
        all.insert(name, h);
    }
    if let Some(h) = all.get_mut(name) {
        for us in pending.drain(..) {
            record_us(h, u64::from(us));
        }
    }
}

/// Adds every shard's buffered samples to the histograms (before reading them).
pub fn flush_shards(server: &Server) {
    for s in &server.shards {
        s.lock_data().cmd_stats.flush_latency();
    }
}

/// Runs `f` over the histograms (call `flush_shards` first).
pub fn with_histograms<R>(
    f: impl FnOnce(&std::collections::BTreeMap<&'static str, Histogram>) -> R,
) -> R {
    match HISTOGRAMS.lock() {
        Ok(all) => f(&all),
        Err(_) => f(&std::collections::BTreeMap::new()),
    }
}

/// Drops every histogram (CONFIG RESETSTAT, after the shards' buffers were reset).
pub fn reset_histograms() {
    if let Ok(mut all) = HISTOGRAMS.lock() {
        all.clear();
    }
}

/// Records a duration given in microseconds (Redis records `duration * 1000`).
pub fn record_us(h: &mut Histogram, us: u64) {
    let ns = us.saturating_mul(1000).clamp(HIST_NS_MIN, HIST_NS_MAX);
    let _ = h.record(ns);
}

/// The global, rarely touched parts.
#[derive(Default)]
pub struct Introspection {
    pub slowlog: Mutex<slowlog::SlowLog>,
    pub events: Mutex<events::Events>,
}

/// The thresholds the hot path needs, copied from the config.
#[derive(Clone, Copy)]
struct Settings {
    generation: u64,
    slowlog_us: i64,
    slowlog_max_len: u64,
    monitor_ms: u64,
    tracking: bool,
}

thread_local! {
    static SETTINGS: Cell<Settings> = const { Cell::new(Settings {
        generation: 0,
        slowlog_us: 10_000,
        slowlog_max_len: 128,
        monitor_ms: 0,
        tracking: true,
    }) };
}

fn settings(server: &Server) -> Settings {
    let generation = server.config.generation();
    let s = SETTINGS.with(|s| s.get());
    if s.generation == generation {
        return s;
    }
    let cfg = server.config.load();
    let s = Settings {
        generation,
        slowlog_us: cfg.slowlog_log_slower_than_us,
        slowlog_max_len: cfg.slowlog_max_len,
        monitor_ms: cfg.latency_monitor_threshold_ms,
        tracking: cfg.latency_tracking,
    };
    SETTINGS.with(|c| c.set(s));
    s
}

/// Whether per-command histograms are recorded (`latency-tracking`), as last seen by this
/// thread. `CommandStats::record` asks it.
pub fn tracking() -> bool {
    SETTINGS.with(|s| s.get().tracking)
}

/// Refreshes this thread's copy of the thresholds (cheap when the config did not change).
pub fn refresh(server: &Server) {
    settings(server);
}

/// A command that just ran: its table entry, arguments, duration and client.
pub struct Executed<'a> {
    pub cmd: &'static Cmd,
    pub args: &'a [Bytes],
    pub duration_us: u64,
    pub client: ClientRef<'a>,
}

/// The client a command ran for: at hand on its home shard, or named by (shard, token) when
/// the command hopped to another shard (looked up only if the command turns out slow).
#[derive(Clone, Copy)]
pub enum ClientRef<'a> {
    Local(&'a ClientShared),
    Remote { shard: usize, token: u32 },
}

/// The hook the engine calls after every command: feeds the latency monitor and the slow log
/// when the command crossed their thresholds. Costs two comparisons otherwise.
#[inline]
pub fn after_command(server: &Server, e: Executed<'_>) {
    let s = settings(server);
    let us = e.duration_us;
    let spike = s.monitor_ms > 0 && us / 1000 >= s.monitor_ms;
    let slow = s.slowlog_us >= 0 && us as i64 >= s.slowlog_us;
    if spike || slow {
        record_slow(server, &e, s, spike, slow);
    }
}

#[cold]
fn record_slow(server: &Server, e: &Executed<'_>, s: Settings, spike: bool, slow: bool) {
    if spike {
        let event = if e.cmd.flags & flag::FAST != 0 {
            "fast-command"
        } else {
            "command"
        };
        add_sample_now(server, event, e.duration_us / 1000, s.monitor_ms);
    }
    if slow && e.cmd.flags & flag::SKIP_SLOWLOG == 0 {
        let (addr, name) = match e.client {
            ClientRef::Local(c) => (c.addr.clone(), c.name()),
            ClientRef::Remote { shard, token } => server
                .client_list()
                .iter()
                .find(|c| c.shard == shard && c.token == token)
                .map(|c| (c.addr.clone(), c.name()))
                .unwrap_or_default(),
        };
        let entry = slowlog::Entry::new(e.cmd, e.args, e.duration_us, addr, name);
        if let Ok(mut log) = server.latency.slowlog.lock() {
            log.push(entry, s.slowlog_max_len);
        }
    }
}

fn add_sample_now(server: &Server, event: &'static str, ms: u64, threshold_ms: u64) {
    if threshold_ms == 0 || ms < threshold_ms {
        return;
    }
    if let Ok(mut ev) = server.latency.events.lock() {
        ev.add(event, crate::util::now_ms() / 1000, ms);
    }
}

/// `latencyAddSampleIfNeeded`: records `ms` for `event` when it reaches the threshold.
pub fn add_sample(server: &Server, event: &'static str, ms: u64) {
    let s = settings(server);
    add_sample_now(server, event, ms, s.monitor_ms);
}

/// `printf("%f")` then Redis's `trimDoubleString`: `50`, `99.9`.
fn percentile_name(p: f64) -> String {
    let mut s = format!("{p:.6}");
    while s.ends_with('0') {
        s.pop();
    }
    if s.ends_with('.') {
        s.pop();
    }
    s
}

/// One `INFO latencystats` line: `latency_percentiles_usec_get:p50=1.003,p99=2.007\r\n`.
pub fn percentiles_line(name: &str, h: &Histogram, percentiles: &[f64]) -> String {
    let parts: Vec<String> = percentiles
        .iter()
        .map(|&p| {
            let v = h.value_at_quantile(p / 100.0) as f64 / 1000.0;
            format!("p{}={:.3}", percentile_name(p), v)
        })
        .collect();
    format!(
        "latency_percentiles_usec_{}:{}\r\n",
        info_safe(name),
        parts.join(",")
    )
}

/// `getSafeInfoString`: `#`, `:`, CR and LF become `_`.
fn info_safe(s: &str) -> String {
    s.chars()
        .map(|c| if "#:\r\n".contains(c) { '_' } else { c })
        .collect()
}

/// `fillCommandCDF`'s buckets: (µs, cumulative count) at each power-of-two reporting level
/// from 1024 ns (`hdr_iter_log_init(1024, 2)`), only where the count grew.
pub fn cdf(h: &Histogram) -> Vec<(u64, u64)> {
    let total = h.len();
    let mut out = Vec::new();
    let mut previous = 0;
    let mut level: u64 = 1024;
    while previous < total && level <= HIST_NS_MAX.saturating_mul(2) {
        let reported = h.highest_equivalent(h.lowest_equivalent(level));
        let cumulative = h.count_between(0, reported);
        if cumulative > previous {
            out.push((reported / 1000, cumulative));
        }
        previous = cumulative;
        level = level.saturating_mul(2);
    }
    out
}

/// Anonymous huge pages this process uses (`AnonHugePages:` summed over /proc/self/smaps),
/// as Redis's `THPGetAnonHugePagesSize` for LATENCY DOCTOR.
pub fn thp_anon_huge_pages_bytes() -> u64 {
    let Ok(text) = std::fs::read_to_string("/proc/self/smaps") else {
        return 0;
    };
    text.lines()
        .filter_map(|l| l.strip_prefix("AnonHugePages:"))
        .filter_map(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .sum::<u64>()
        * 1024
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentile_line_and_cdf() {
        let mut h = new_histogram().unwrap();
        for us in [1, 1, 3, 100] {
            record_us(&mut h, us);
        }
        let line = percentiles_line("config|get", &h, &[50.0, 99.9]);
        assert_eq!(
            line,
            "latency_percentiles_usec_config|get:p50=1.003,p99.9=100.351\r\n"
        );
        let c = cdf(&h);
        assert_eq!(c.first(), Some(&(1, 2)));
        assert_eq!(c.last().map(|x| x.1), Some(4));
        assert!(c.windows(2).all(|w| w[0].0 < w[1].0 && w[0].1 < w[1].1));
    }
}
