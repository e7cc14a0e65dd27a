//! INFO: the sections Redis 7.0 prints, plus `shards` (keys, commands and hops per shard).
//!
//! Field names and order follow Redis, since clients, exporters and Redis's own test suite
//! parse them. Values are summed over shards where Redis has one number.

use crate::protocol::Out;
use crate::server::stats::CommandStats;
use crate::server::ConnCtx;
use bytes::Bytes;
use std::fmt::Write;
use std::sync::atomic::Ordering;

const DEFAULT: &[&str] = &[
    "server",
    "clients",
    "memory",
    "persistence",
    "stats",
    "replication",
    "cpu",
    "module_list",
    "errorstats",
    "cluster",
    "keyspace",
    "shards",
];
const ALL_EXTRA: &[&str] = &["commandstats", "latencystats"];

pub fn info(ctx: &mut ConnCtx, args: &[Bytes], out: &mut Out) {
    let mut sections: Vec<String> = Vec::new();
    let add = |s: &str, v: &mut Vec<String>| {
        if !v.iter().any(|x| x == s) {
            v.push(s.to_string());
        }
    };
    if args.len() == 1 {
        for s in DEFAULT {
            add(s, &mut sections);
        }
    }
    for a in &args[1..] {
        let a = String::from_utf8_lossy(a).to_ascii_lowercase();
        match a.as_str() {
            "default" => DEFAULT.iter().for_each(|s| add(s, &mut sections)),
            "all" | "everything" => DEFAULT
                .iter()
                .chain(ALL_EXTRA)
                .for_each(|s| add(s, &mut sections)),
            other => add(other, &mut sections),
        }
    }
    let text = render(ctx, &sections);
    out.verbatim(text.as_bytes(), "txt");
}

fn rusage(who: i32) -> (String, String) {
    // SAFETY: getrusage fills the zeroed struct we pass.
    let ru = unsafe {
        let mut ru: libc::rusage = std::mem::zeroed();
        libc::getrusage(who, &mut ru);
        ru
    };
    (
        format!("{}.{:06}", ru.ru_stime.tv_sec, ru.ru_stime.tv_usec),
        format!("{}.{:06}", ru.ru_utime.tv_sec, ru.ru_utime.tv_usec),
    )
}

/// Resident set size of this process in bytes.
pub fn rss_bytes() -> u64 {
    let page = 4096u64;
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| {
            s.split_whitespace()
                .nth(1)
                .and_then(|v| v.parse::<u64>().ok())
        })
        .map_or(0, |p| p * page)
}

fn render(ctx: &mut ConnCtx, sections: &[String]) -> String {
    let srv = ctx.server;
    let cfg = ctx.config();
    let mut stats = CommandStats::default();
    for s in &srv.shards {
        stats.merge(&s.lock_data().cmd_stats);
    }
    // Keyspace figures, read shard by shard (never all locks at once).
    let ndb = cfg.databases;
    let mut keys = vec![0usize; ndb];
    let mut volatile = vec![0usize; ndb];
    let mut per_shard_keys = Vec::new();
    let (mut hits, mut misses, mut expired, mut dirty) = (0, 0, 0, 0);
    let mut evicted = 0;
    for s in &srv.shards {
        let d = s.lock_data();
        let mut total = 0;
        for (i, db) in d.dbs.iter().enumerate().take(ndb) {
            keys[i] += db.keys;
            volatile[i] += db.volatile;
            total += db.keys;
        }
        per_shard_keys.push(total);
        hits += d.stats.hits;
        misses += d.stats.misses;
        expired += d.stats.expired_keys;
        evicted += d.stats.evicted_keys;
        dirty += d.stats.dirty;
    }
    let now_ms = crate::util::now_ms();
    let uptime = now_ms.saturating_sub(srv.start_ms) / 1000;
    let mut t = String::new();
    for (n, sec) in sections.iter().enumerate() {
        let before = t.len();
        if n > 0 && !t.is_empty() {
            t.push_str("\r\n");
        }
        let hdr = t.len();
        match sec.as_str() {
            "server" => {
                let uts = nix::sys::utsname::uname().ok();
                let os = uts.map_or("Linux".to_string(), |u| {
                    format!(
                        "{} {} {}",
                        u.sysname().to_string_lossy(),
                        u.release().to_string_lossy(),
                        u.machine().to_string_lossy()
                    )
                });
                let _ = write!(
                    t,
                    "# Server\r\nredis_version:{}\r\nredis_git_sha1:00000000\r\nredis_git_dirty:0\r\nredis_build_id:0\r\nredis_mode:standalone\r\nos:{}\r\narch_bits:64\r\nmonotonic_clock:POSIX clock_gettime\r\nmultiplexing_api:io_uring\r\natomicvar_api:c11-builtin\r\ngcc_version:0.0.0\r\nprocess_id:{}\r\nprocess_supervised:no\r\nrun_id:{}\r\ntcp_port:{}\r\nserver_time_usec:{}\r\nuptime_in_seconds:{}\r\nuptime_in_days:{}\r\nhz:{}\r\nconfigured_hz:{}\r\nlru_clock:{}\r\nexecutable:{}\r\nconfig_file:{}\r\nio_threads_active:0\r\nshardis_version:{}\r\nshards:{}\r\n",
                    crate::server::run::REDIS_VERSION,
                    os,
                    std::process::id(),
                    srv.run_id,
                    cfg.port,
                    crate::util::now_us(),
                    uptime,
                    uptime / 86400,
                    cfg.hz,
                    cfg.hz,
                    (now_ms / 1000) & ((1 << 24) - 1),
                    srv.executable,
                    cfg.config_file.clone().unwrap_or_default(),
                    env!("CARGO_PKG_VERSION"),
                    srv.nshards(),
                );
            }
            "clients" => {
                let _ = write!(
                    t,
                    "# Clients\r\nconnected_clients:{}\r\ncluster_connections:0\r\nmaxclients:{}\r\nclient_recent_max_input_buffer:{}\r\nclient_recent_max_output_buffer:{}\r\nblocked_clients:{}\r\ntracking_clients:{}\r\nclients_in_timeout_table:{}\r\n",
                    srv.connected_clients.load(Ordering::Relaxed),
                    cfg.maxclients,
                    srv.client_mem.recent_max().0,
                    srv.client_mem.recent_max().1,
                    srv.blocked_clients.load(Ordering::Relaxed),
                    crate::tracking::tracking_clients(),
                    srv.blocked_clients.load(Ordering::Relaxed)
                );
            }
            "memory" => super::memory::info_section(ctx, &mut t),
            "persistence" => {
                t.push_str(&crate::persistence::snapshot::info_section(srv, dirty));
            }
            "stats" => {
                let _ = write!(
                    t,
                    "# Stats\r\ntotal_connections_received:{}\r\ntotal_commands_processed:{}\r\ninstantaneous_ops_per_sec:0\r\ntotal_net_input_bytes:{}\r\ntotal_net_output_bytes:{}\r\ntotal_net_repl_input_bytes:0\r\ntotal_net_repl_output_bytes:0\r\ninstantaneous_input_kbps:0.00\r\ninstantaneous_output_kbps:0.00\r\ninstantaneous_input_repl_kbps:0.00\r\ninstantaneous_output_repl_kbps:0.00\r\nrejected_connections:{}\r\nsync_full:{}\r\nsync_partial_ok:{}\r\nsync_partial_err:{}\r\nexpired_keys:{}\r\nexpired_stale_perc:0.00\r\nexpired_time_cap_reached_count:0\r\nexpire_cycle_cpu_milliseconds:0\r\nevicted_keys:{}\r\nevicted_clients:{}\r\ntotal_eviction_exceeded_time:0\r\ncurrent_eviction_exceeded_time:0\r\nkeyspace_hits:{}\r\nkeyspace_misses:{}\r\npubsub_channels:0\r\npubsub_patterns:0\r\npubsubshard_channels:0\r\nlatest_fork_usec:{}\r\ntotal_forks:{}\r\nmigrate_cached_sockets:{}\r\nslave_expires_tracked_keys:0\r\nactive_defrag_hits:0\r\nactive_defrag_misses:0\r\nactive_defrag_key_hits:0\r\nactive_defrag_key_misses:0\r\ntotal_active_defrag_time:0\r\ncurrent_active_defrag_time:0\r\ntracking_total_keys:{}\r\ntracking_total_items:{}\r\ntracking_total_prefixes:{}\r\nunexpected_error_replies:0\r\ntotal_error_replies:{}\r\ndump_payload_sanitizations:0\r\ntotal_reads_processed:0\r\ntotal_writes_processed:0\r\nio_threaded_reads_processed:0\r\nio_threaded_writes_processed:0\r\nreply_buffer_shrinks:0\r\nreply_buffer_expands:0\r\n",
                    srv.stats.connections_received.load(Ordering::Relaxed),
                    stats.total_commands,
                    srv.stats.net_input_bytes.load(Ordering::Relaxed),
                    srv.stats.net_output_bytes.load(Ordering::Relaxed),
                    srv.stats.rejected_connections.load(Ordering::Relaxed),
                    crate::replication::info::SYNC_FULL.load(Ordering::Relaxed),
                    crate::replication::info::SYNC_PARTIAL_OK.load(Ordering::Relaxed),
                    crate::replication::info::SYNC_PARTIAL_ERR.load(Ordering::Relaxed),
                    expired,
                    evicted,
                    srv.client_mem.evicted_clients.load(Ordering::Relaxed),
                    hits,
                    misses,
                    srv.persistence.latest_fork_usec.load(Ordering::Relaxed),
                    srv.persistence.total_forks.load(Ordering::Relaxed),
                    crate::commands::migrate::cached_sockets(),
                    crate::tracking::total_keys(),
                    crate::tracking::total_items(),
                    crate::tracking::total_prefixes(),
                    stats.total_error_replies,
                );
            }
            "replication" => {
                t.push_str(&crate::replication::info::section(srv));
            }
            "cpu" => {
                let (ss, su) = rusage(libc::RUSAGE_SELF);
                let (cs, cu) = rusage(libc::RUSAGE_CHILDREN);
                let _ = write!(
                    t,
                    "# CPU\r\nused_cpu_sys:{}\r\nused_cpu_user:{}\r\nused_cpu_sys_children:{}\r\nused_cpu_user_children:{}\r\nused_cpu_sys_main_thread:{}\r\nused_cpu_user_main_thread:{}\r\n",
                    ss, su, cs, cu, ss, su
                );
            }
            "module_list" | "modules" => t.push_str("# Modules\r\n"),
            "errorstats" => {
                t.push_str("# Errorstats\r\n");
                let mut v: Vec<_> = stats.errors.iter().collect();
                v.sort();
                for (k, n) in v {
                    let _ = write!(t, "errorstat_{}:count={}\r\n", k, n);
                }
            }
            "cluster" => t.push_str("# Cluster\r\ncluster_enabled:0\r\n"),
            "keyspace" => {
                t.push_str("# Keyspace\r\n");
                for i in 0..ndb {
                    if keys[i] > 0 {
                        let _ = write!(
                            t,
                            "db{}:keys={},expires={},avg_ttl=0\r\n",
                            i, keys[i], volatile[i]
                        );
                    }
                }
            }
            "commandstats" => {
                t.push_str("# Commandstats\r\n");
                let mut v: Vec<_> = stats.cmds.iter().collect();
                v.sort_by_key(|(k, _)| k.0);
                for (k, s) in v {
                    let per = if s.calls > 0 {
                        s.usec as f64 / s.calls as f64
                    } else {
                        0.0
                    };
                    let _ = write!(
                        t,
                        "cmdstat_{}:calls={},usec={},usec_per_call={:.2},rejected_calls={},failed_calls={}\r\n",
                        k.0, s.calls, s.usec, per, s.rejected_calls, s.failed_calls
                    );
                }
            }
            "latencystats" => {
                t.push_str("# Latencystats\r\n");
                let percentiles = ctx.config().latency_tracking_info_percentiles.clone();
                crate::latency::flush_shards(srv);
                crate::latency::with_histograms(|all| {
                    for (k, h) in all {
                        t.push_str(&crate::latency::percentiles_line(k, h, &percentiles));
                    }
                });
            }
            "shards" => {
                t.push_str("# Shards\r\n");
                for (i, s) in srv.shards.iter().enumerate() {
                    let st = s.lock_data().cmd_stats.clone();
                    let _ = write!(
                        t,
                        "shard{}:keys={},commands={},hops_in={},hops_out={},direct_in={},multi_shard={},connections={}\r\n",
                        i,
                        per_shard_keys.get(i).copied().unwrap_or(0),
                        st.total_commands,
                        st.hops_in,
                        st.hops_out,
                        st.direct_in,
                        st.multi_shard,
                        s.connections.load(Ordering::Relaxed)
                    );
                }
            }
            _ => {}
        }
        if t.len() == hdr {
            t.truncate(before);
        }
    }
    t
}
