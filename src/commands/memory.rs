//! MEMORY (USAGE, STATS, DOCTOR, PURGE, MALLOC-STATS, HELP) and the figures INFO's memory
//! section shares with it.
//!
//! `used_memory` comes from the counting global allocator (`crate::alloc`): every byte the
//! server holds, in mimalloc's size classes. The overhead/dataset split follows Redis: the
//! keyspace's own tables and per-key headers, the start-up footprint and client buffers are
//! overhead; the rest is dataset. RSS is read from /proc; the `allocator_*` figures are
//! mimalloc's committed memory (what the allocator holds from the OS).

use super::{flag, Cmd, Keys};
use crate::alloc;
use crate::protocol::Out;
use crate::server::ConnCtx;
use crate::storage::{memory, Keyspace};
use bytes::Bytes;

pub static COMMANDS: [Cmd; 1] = [Cmd::container("memory", 0, &SUBCOMMANDS).with_acl(&["slow"])];

static SUBCOMMANDS: [Cmd; 6] = [
    Cmd::data("usage", -3, flag::READONLY, Keys::Range(2, 2, 1), usage)
        .with_acl(&["keyspace", "read", "slow"]),
    Cmd::conn("stats", 2, 0, stats).with_acl(&["slow"]),
    Cmd::conn("doctor", 2, 0, doctor).with_acl(&["slow"]),
    Cmd::conn("purge", 2, 0, purge).with_acl(&["slow"]),
    Cmd::conn("malloc-stats", 2, 0, malloc_stats).with_acl(&["slow"]),
    Cmd::conn("help", 2, flag::LOADING | flag::STALE, help).with_acl(&["slow"]),
];

/// A snapshot of the server's memory, the figures of INFO memory and MEMORY STATS.
pub struct Report {
    pub used: usize,
    pub peak: usize,
    pub startup: usize,
    pub rss: usize,
    pub allocator_committed: usize,
    /// Per db with keys: (index, main table bytes, expires table bytes).
    pub dbs: Vec<(usize, usize, usize)>,
    pub keyspace_overhead: usize,
    pub overhead: usize,
    pub keys: usize,
    pub dataset: usize,
}

impl Report {
    /// Reads the counters and walks every shard's slot tables (one shard locked at a time).
    pub fn gather(ctx: &ConnCtx) -> Report {
        let used = alloc::used_memory_sample();
        let peak = alloc::peak().max(used);
        let startup = alloc::startup().min(used);
        let ndb = ctx.config().databases;
        let mut dbs = vec![(0usize, 0usize, 0usize); ndb];
        let mut keyspace_overhead = 0;
        let mut keys = 0;
        for s in &ctx.server.shards {
            let d = s.lock_data();
            for (i, db) in d.dbs.iter().enumerate().take(ndb) {
                keys += db.keys;
                keyspace_overhead += memory::db_overhead(db);
                let (main, expires) = memory::db_table_bytes(db);
                dbs[i].0 += db.keys;
                dbs[i].1 += main;
                dbs[i].2 += expires;
            }
        }
        let dbs = dbs
            .into_iter()
            .enumerate()
            .filter(|(_, (k, _, _))| *k > 0)
            .map(|(i, (_, m, e))| (i, m, e))
            .collect();
        let overhead = (startup + keyspace_overhead).min(used);
        Report {
            used,
            peak,
            startup,
            rss: alloc::rss_bytes(),
            allocator_committed: alloc::allocator_committed().0,
            dbs,
            keyspace_overhead,
            overhead,
            keys,
            dataset: used - overhead,
        }
    }

    pub fn dataset_perc(&self) -> f64 {
        let net = self.used.saturating_sub(self.startup);
        if net == 0 {
            0.0
        } else {
            self.dataset as f64 * 100.0 / net as f64
        }
    }

    pub fn peak_perc(&self) -> f64 {
        if self.peak == 0 {
            0.0
        } else {
            self.used as f64 * 100.0 / self.peak as f64
        }
    }

    /// RSS over used memory (Redis's mem_fragmentation_ratio).
    pub fn frag(&self) -> f64 {
        ratio(self.rss, self.used)
    }

    /// What the allocator holds over what is allocated.
    pub fn allocator_frag(&self) -> f64 {
        ratio(self.allocator_committed, self.used)
    }

    /// RSS over what the allocator holds.
    pub fn rss_overhead(&self) -> f64 {
        ratio(self.rss, self.allocator_committed)
    }
}

fn ratio(a: usize, b: usize) -> f64 {
    if b == 0 {
        0.0
    } else {
        a as f64 / b as f64
    }
}

fn diff(a: usize, b: usize) -> i64 {
    a as i64 - b as i64
}

/// INFO's memory section.
pub fn info_section(ctx: &ConnCtx, t: &mut String) {
    use std::fmt::Write;
    let r = Report::gather(ctx);
    let cfg = ctx.config();
    let maxmemory = cfg.maxmemory;
    let total_system = total_system_memory();
    let policy = crate::storage::evict::policy().name();
    let lazy = crate::storage::lazyfree::stats();
    let repl_mem = crate::replication::feed::memory(&ctx.server.feed);
    let _ = write!(
        t,
        "# Memory\r\nused_memory:{used}\r\nused_memory_human:{used_h}\r\nused_memory_rss:{rss}\r\nused_memory_rss_human:{rss_h}\r\nused_memory_peak:{peak}\r\nused_memory_peak_human:{peak_h}\r\nused_memory_peak_perc:{peak_perc:.2}%\r\nused_memory_overhead:{overhead}\r\nused_memory_startup:{startup}\r\nused_memory_dataset:{dataset}\r\nused_memory_dataset_perc:{dataset_perc:.2}%\r\nallocator_allocated:{used}\r\nallocator_active:{committed}\r\nallocator_resident:{committed}\r\ntotal_system_memory:{total_system}\r\ntotal_system_memory_human:{total_system_h}\r\n{scripting}maxmemory:{maxmemory}\r\nmaxmemory_human:{maxmemory_h}\r\nmaxmemory_policy:{policy}\r\nallocator_frag_ratio:{afrag:.2}\r\nallocator_frag_bytes:{afrag_b}\r\nallocator_rss_ratio:1.00\r\nallocator_rss_bytes:0\r\nrss_overhead_ratio:{rss_ratio:.2}\r\nrss_overhead_bytes:{rss_b}\r\nmem_fragmentation_ratio:{frag:.2}\r\nmem_fragmentation_bytes:{frag_b}\r\nmem_not_counted_for_evict:{not_counted}\r\nmem_replication_backlog:{repl_backlog}\r\nmem_total_replication_buffers:{repl_buffers}\r\nmem_clients_slaves:{clients_slaves}\r\nmem_clients_normal:{clients_normal}\r\nmem_cluster_links:0\r\nmem_aof_buffer:0\r\nmem_allocator:mimalloc-{mi_version}\r\nactive_defrag_running:0\r\nlazyfree_pending_objects:{lazy_pending}\r\nlazyfreed_objects:{lazy_done}\r\n",
        used = r.used,
        used_h = human(r.used as u64),
        rss = r.rss,
        rss_h = human(r.rss as u64),
        peak = r.peak,
        peak_h = human(r.peak as u64),
        peak_perc = r.peak_perc(),
        overhead = r.overhead,
        startup = r.startup,
        dataset = r.dataset,
        dataset_perc = r.dataset_perc(),
        committed = r.allocator_committed,
        total_system = total_system,
        total_system_h = human(total_system as u64),
        maxmemory = maxmemory,
        maxmemory_h = human(maxmemory),
        policy = policy,
        afrag = r.allocator_frag(),
        afrag_b = diff(r.allocator_committed, r.used),
        rss_ratio = r.rss_overhead(),
        rss_b = diff(r.rss, r.allocator_committed),
        frag = r.frag(),
        frag_b = diff(r.rss, r.used),
        mi_version = mimalloc_version(),
        lazy_pending = lazy.0,
        lazy_done = lazy.1,
        scripting = crate::scripting::info_memory_fields(),
        repl_backlog = repl_mem.backlog,
        repl_buffers = repl_mem.total,
        clients_slaves = repl_mem.replicas + ctx.server.client_mem.replica_total(),
        not_counted = crate::storage::evict::not_counted(),
        clients_normal = ctx.server.client_mem.normal_total(),
    );
}

fn mimalloc_version() -> String {
    let v = alloc::mimalloc_version();
    format!("{}.{}.{}", v / 100, (v / 10) % 10, v % 10)
}

/// Physical memory of the machine (sysconf), as Redis's `total_system_memory`.
fn total_system_memory() -> usize {
    // SAFETY: sysconf has no preconditions.
    let (pages, page) = unsafe {
        (
            libc::sysconf(libc::_SC_PHYS_PAGES),
            libc::sysconf(libc::_SC_PAGESIZE),
        )
    };
    usize::try_from(pages).unwrap_or(0) * usize::try_from(page).unwrap_or(0)
}

/// Redis's human-readable byte counts (`bytesToHuman`).
pub fn human(n: u64) -> String {
    let f = n as f64;
    const K: f64 = 1024.0;
    if f < K {
        format!("{}B", n)
    } else if f < K * K {
        format!("{:.2}K", f / K)
    } else if f < K * K * K {
        format!("{:.2}M", f / K / K)
    } else if f < K * K * K * K {
        format!("{:.2}G", f / K / K / K)
    } else if f < K * K * K * K * K {
        format!("{:.2}T", f / K / K / K / K)
    } else {
        format!("{:.2}P", f / K / K / K / K / K)
    }
}

/// MEMORY USAGE key [SAMPLES count]. Collections are measured whole (see `storage::memory`),
/// so SAMPLES is validated and otherwise has no effect.
fn usage(ks: &mut Keyspace, args: &[Bytes], out: &mut Out) {
    let mut j = 3;
    while j < args.len() {
        if args[j].eq_ignore_ascii_case(b"samples") && j + 1 < args.len() {
            match super::parse::i64_arg(&args[j + 1]) {
                Ok(n) if n >= 0 => {}
                Ok(_) => return out.error(super::err::SYNTAX),
                Err(e) => return out.error(e),
            }
            j += 2;
        } else {
            return out.error(super::err::SYNTAX);
        }
    }
    let key = &args[2];
    super::keys::lookup_notouch(ks, key, |e| match e {
        Some(e) => out.int(memory::key_usage(key, e) as i64),
        None => out.null(),
    });
}

fn stats(ctx: &mut ConnCtx, _args: &[Bytes], out: &mut Out) {
    let r = Report::gather(ctx);
    out.map(27 + r.dbs.len());
    let int = |out: &mut Out, name: &str, v: i64| {
        out.bulk_str(name);
        out.int(v);
    };
    int(out, "peak.allocated", r.peak as i64);
    int(out, "total.allocated", r.used as i64);
    int(out, "startup.allocated", r.startup as i64);
    for name in [
        "replication.backlog",
        "clients.slaves",
        "clients.normal",
        "cluster.links",
        "aof.buffer",
        "lua.caches",
        "functions.caches",
    ] {
        int(out, name, 0);
    }
    for &(i, main, expires) in &r.dbs {
        out.bulk_str(&format!("db.{i}"));
        out.map(3);
        int(out, "overhead.hashtable.main", main as i64);
        int(out, "overhead.hashtable.expires", expires as i64);
        int(out, "overhead.hashtable.slot-to-keys", 0);
    }
    int(out, "overhead.total", r.overhead as i64);
    int(out, "keys.count", r.keys as i64);
    let net = r.used.saturating_sub(r.startup);
    int(
        out,
        "keys.bytes-per-key",
        net.checked_div(r.keys).unwrap_or(0) as i64,
    );
    int(out, "dataset.bytes", r.dataset as i64);
    let double = |out: &mut Out, name: &str, v: f64| {
        out.bulk_str(name);
        out.double(v);
    };
    double(out, "dataset.percentage", r.dataset_perc());
    double(out, "peak.percentage", r.peak_perc());
    int(out, "allocator.allocated", r.used as i64);
    int(out, "allocator.active", r.allocator_committed as i64);
    int(out, "allocator.resident", r.allocator_committed as i64);
    double(out, "allocator-fragmentation.ratio", r.allocator_frag());
    int(
        out,
        "allocator-fragmentation.bytes",
        diff(r.allocator_committed, r.used),
    );
    double(out, "allocator-rss.ratio", 1.0);
    int(out, "allocator-rss.bytes", 0);
    double(out, "rss-overhead.ratio", r.rss_overhead());
    int(
        out,
        "rss-overhead.bytes",
        diff(r.rss, r.allocator_committed),
    );
    double(out, "fragmentation", r.frag());
    int(out, "fragmentation.bytes", diff(r.rss, r.used));
}

const DOCTOR_EMPTY: &str = "Hi Sam, this instance is empty or is using very little memory, my issues detector can't be used in these conditions. Please, leave for your mission on Earth and fill it with some data. The new Sam and I will be back to our programming as soon as I finished rebooting.\n";
const DOCTOR_FINE: &str = "Hi Sam, I can't find any memory issue in your instance. I can only account for what occurs on this base.\n";

/// MEMORY DOCTOR: Redis's checks over the same figures (the ones shardis has: peak, total
/// fragmentation, allocator fragmentation, process RSS overhead).
fn doctor(ctx: &mut ConnCtx, _args: &[Bytes], out: &mut Out) {
    let r = Report::gather(ctx);
    const MB10: i64 = 10 << 20;
    let text = if r.used < 5 << 20 {
        DOCTOR_EMPTY.to_string()
    } else {
        let mut issues = String::new();
        if r.peak as f64 / r.used as f64 > 1.5 {
            issues.push_str(" * Peak memory: In the past this instance used more than 150% the memory that is currently using. The allocator is normally not able to release memory after a peak, so you can expect to see a big fragmentation ratio, however this is actually harmless and is only due to the memory peak, and if the Redis instance Resident Set Size (RSS) is currently bigger than expected, the memory will be used as soon as you fill the Redis instance with more data. If the memory peak was only occasional and you want to try to reclaim memory, please try the MEMORY PURGE command, otherwise the only other option is to shutdown and restart the instance.\n\n");
        }
        if r.frag() > 1.4 && diff(r.rss, r.used) > MB10 {
            issues.push_str(" * High total RSS: This instance has a memory fragmentation and RSS overhead greater than 1.4 (this means that the Resident Set Size of the Redis process is much larger than the sum of the logical allocations Redis performed). This problem is usually due either to a large peak memory (check if there is a peak memory entry above in the report) or may result from a workload that causes the allocator to fragment memory a lot. If the problem is a large peak memory, then there is no issue. Otherwise, make sure you are using the Jemalloc allocator and not the default libc malloc. Note: The currently used allocator is \"mimalloc\".\n\n");
        }
        if r.allocator_frag() > 1.1 && diff(r.allocator_committed, r.used) > MB10 {
            issues.push_str(" * High allocator fragmentation: This instance has an allocator external fragmentation greater than 1.1. This problem is usually due either to a large peak memory (check if there is a peak memory entry above in the report) or may result from a workload that causes the allocator to fragment memory a lot. You can try enabling 'activedefrag' config option.\n\n");
        }
        if r.rss_overhead() > 1.1 && diff(r.rss, r.allocator_committed) > MB10 {
            issues.push_str(" * High process RSS overhead: This instance has non-allocator RSS memory overhead is greater than 1.1 (this means that the Resident Set Size of the Redis process is much larger than the RSS the allocator holds). This problem may be due to Lua scripts or Modules.\n\n");
        }
        if issues.is_empty() {
            DOCTOR_FINE.to_string()
        } else {
            format!("Sam, I detected a few issues in this Redis instance memory implants:\n\n{issues}I'm here to keep you safe, Sam. I want to help you.\n")
        }
    };
    out.verbatim(text.as_bytes(), "txt");
}

fn purge(_ctx: &mut ConnCtx, _args: &[Bytes], out: &mut Out) {
    alloc::purge();
    out.ok();
}

fn malloc_stats(_ctx: &mut ConnCtx, _args: &[Bytes], out: &mut Out) {
    let text = alloc::malloc_stats();
    out.verbatim(text.as_bytes(), "txt");
}

fn help(_ctx: &mut ConnCtx, _args: &[Bytes], out: &mut Out) {
    super::object::help_reply(
        out,
        "MEMORY",
        &[
            "DOCTOR",
            "    Return memory problems reports.",
            "MALLOC-STATS",
            "    Return internal statistics report from the memory allocator.",
            "PURGE",
            "    Attempt to purge dirty pages for reclamation by the allocator.",
            "STATS",
            "    Return information about the memory usage of the server.",
            "USAGE <key> [SAMPLES <count>]",
            "    Return memory in bytes used by <key> and its value. Nested values are",
            "    sampled up to <count> times (default: 5, 0 means sample all).",
        ],
    );
}
