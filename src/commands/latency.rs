//! SLOWLOG and LATENCY: the replies over `crate::latency`'s slow log, latency monitor and the
//! per-shard command histograms (merged here, when read).

use super::{flag, object::help_reply, parse, Cmd};
use crate::latency::events::DoctorContext;
use crate::protocol::Out;
use crate::server::ConnCtx;
use bytes::Bytes;
use std::collections::BTreeMap;

const ADMIN: u32 = flag::ADMIN | flag::LOADING | flag::STALE;
const ADMIN_NOSCRIPT: u32 = ADMIN | flag::NOSCRIPT;
const ACL_ADMIN: &[&str] = &["admin", "slow", "dangerous"];

pub static COMMANDS: [Cmd; 2] = [
    Cmd::container("slowlog", 0, &SLOWLOG_SUBS),
    Cmd::container("latency", 0, &LATENCY_SUBS),
];

pub static SLOWLOG_SUBS: [Cmd; 4] = [
    Cmd::conn("get", -2, ADMIN, slowlog_get).with_acl(ACL_ADMIN),
    Cmd::conn("len", 2, ADMIN, slowlog_len).with_acl(ACL_ADMIN),
    Cmd::conn("reset", 2, ADMIN, slowlog_reset).with_acl(ACL_ADMIN),
    Cmd::conn("help", 2, flag::LOADING | flag::STALE, slowlog_help).with_acl(&["slow"]),
];

pub static LATENCY_SUBS: [Cmd; 7] = [
    Cmd::conn("doctor", 2, ADMIN_NOSCRIPT, latency_doctor).with_acl(ACL_ADMIN),
    Cmd::conn("graph", 3, ADMIN_NOSCRIPT, latency_graph).with_acl(ACL_ADMIN),
    Cmd::conn("help", 2, flag::LOADING | flag::STALE, latency_help).with_acl(&["slow"]),
    Cmd::conn("histogram", -2, ADMIN_NOSCRIPT, latency_histogram).with_acl(ACL_ADMIN),
    Cmd::conn("history", 3, ADMIN_NOSCRIPT, latency_history).with_acl(ACL_ADMIN),
    Cmd::conn("latest", 2, ADMIN_NOSCRIPT, latency_latest).with_acl(ACL_ADMIN),
    Cmd::conn("reset", -2, ADMIN_NOSCRIPT, latency_reset).with_acl(ACL_ADMIN),
];

/// `addReplySubcommandSyntaxError`.
fn syntax_error(args: &[Bytes], out: &mut Out) {
    let sub = args.get(1).map(|a| &a[..a.len().min(128)]).unwrap_or(b"");
    out.error(&format!(
        "ERR unknown subcommand or wrong number of arguments for '{}'. Try {} HELP.",
        String::from_utf8_lossy(sub),
        String::from_utf8_lossy(&args[0]).to_uppercase()
    ));
}

fn slowlog_get(ctx: &mut ConnCtx, args: &[Bytes], out: &mut Out) {
    if args.len() > 3 {
        return syntax_error(args, out);
    }
    let mut count: usize = 10;
    if let Some(a) = args.get(2) {
        let msg = "ERR count should be greater than or equal to -1";
        match parse::i64_in(a, -1, i64::MAX, msg) {
            Ok(-1) => count = usize::MAX,
            Ok(n) => count = n as usize,
            Err(e) => return out.error(e),
        }
    }
    let Ok(log) = ctx.server.latency.slowlog.lock() else {
        return out.array(0);
    };
    let entries: Vec<_> = log.newest(count).collect();
    out.array(entries.len());
    for e in entries {
        out.array(6);
        out.int(e.id as i64);
        out.int(e.time_secs as i64);
        out.int(e.duration_us as i64);
        out.array(e.args.len());
        for a in &e.args {
            out.bulk(a);
        }
        out.bulk(e.addr.as_bytes());
        out.bulk(&e.name);
    }
}

fn slowlog_len(ctx: &mut ConnCtx, _args: &[Bytes], out: &mut Out) {
    let n = ctx.server.latency.slowlog.lock().map_or(0, |l| l.len());
    out.int(n as i64);
}

fn slowlog_reset(ctx: &mut ConnCtx, _args: &[Bytes], out: &mut Out) {
    if let Ok(mut l) = ctx.server.latency.slowlog.lock() {
        l.reset();
    }
    out.ok();
}

fn slowlog_help(_ctx: &mut ConnCtx, _args: &[Bytes], out: &mut Out) {
    help_reply(
        out,
        "SLOWLOG",
        &[
            "GET [<count>]",
            "    Return top <count> entries from the slowlog (default: 10, -1 mean all).",
            "    Entries are made of:",
            "    id, timestamp, time in microseconds, arguments array, client IP and port,",
            "    client name",
            "LEN",
            "    Return the length of the slowlog.",
            "RESET",
            "    Reset the slowlog.",
        ],
    );
}

fn now_secs() -> u64 {
    crate::util::now_ms() / 1000
}

fn latency_latest(ctx: &mut ConnCtx, _args: &[Bytes], out: &mut Out) {
    let Ok(ev) = ctx.server.latency.events.lock() else {
        return out.array(0);
    };
    out.array(ev.series.len());
    for (name, ts) in &ev.series {
        let last = ts.latest();
        out.array(4);
        out.bulk(name.as_bytes());
        out.int(last.time_secs as i64);
        out.int(last.ms as i64);
        out.int(ts.max_ms as i64);
    }
}

fn latency_history(ctx: &mut ConnCtx, args: &[Bytes], out: &mut Out) {
    let Ok(ev) = ctx.server.latency.events.lock() else {
        return out.array(0);
    };
    let Some((_, ts)) = ev.get(&args[2]) else {
        return out.array(0);
    };
    let samples: Vec<_> = ts.in_order().collect();
    out.array(samples.len());
    for s in samples {
        out.array(2);
        out.int(s.time_secs as i64);
        out.int(s.ms as i64);
    }
}

fn latency_reset(ctx: &mut ConnCtx, args: &[Bytes], out: &mut Out) {
    let Ok(mut ev) = ctx.server.latency.events.lock() else {
        return out.int(0);
    };
    let n = if args.len() == 2 {
        ev.reset(None)
    } else {
        args[2..].iter().map(|a| ev.reset(Some(a))).sum()
    };
    out.int(n as i64);
}

fn latency_graph(ctx: &mut ConnCtx, args: &[Bytes], out: &mut Out) {
    let text = {
        let Ok(ev) = ctx.server.latency.events.lock() else {
            return out.error("ERR latency monitor unavailable");
        };
        ev.get(&args[2])
            .map(|(name, ts)| crate::latency::events::graph(name, ts, now_secs()))
    };
    match text {
        Some(t) => out.verbatim(t.as_bytes(), "txt"),
        None => out.error(&format!(
            "ERR No samples available for event '{}'",
            String::from_utf8_lossy(&args[2])
        )),
    }
}

fn latency_doctor(ctx: &mut ConnCtx, _args: &[Bytes], out: &mut Out) {
    let cfg = ctx.config();
    let cx = DoctorContext {
        now_secs: now_secs(),
        monitor_threshold_ms: cfg.latency_monitor_threshold_ms,
        slowlog_slower_than_us: cfg.slowlog_log_slower_than_us,
        hz: cfg.hz as u64,
        thp_anon_bytes: crate::latency::thp_anon_huge_pages_bytes(),
    };
    let text = match ctx.server.latency.events.lock() {
        Ok(ev) => crate::latency::events::doctor(&ev, &cx),
        Err(_) => String::new(),
    };
    out.verbatim(text.as_bytes(), "txt");
}

fn latency_help(_ctx: &mut ConnCtx, _args: &[Bytes], out: &mut Out) {
    help_reply(
        out,
        "LATENCY",
        &[
            "DOCTOR",
            "    Return a human readable latency analysis report.",
            "GRAPH <event>",
            "    Return an ASCII latency graph for the <event> class.",
            "HISTORY <event>",
            "    Return time-latency samples for the <event> class.",
            "LATEST",
            "    Return the latest latency samples for all events.",
            "RESET [<event> ...]",
            "    Reset latency data of one or more <event> classes.",
            "    (default: reset all data for all event classes)",
            "HISTOGRAM [COMMAND ...]",
            "    Return a cumulative distribution of latencies in the format of a histogram for the specified command names.",
            "    If no commands are specified then all histograms are replied.",
        ],
    );
}

/// Every command's histogram, merged over the shards, by full name.
fn merged_histograms(ctx: &ConnCtx) -> BTreeMap<&'static str, crate::latency::Histogram> {
    let mut all: BTreeMap<&'static str, crate::latency::Histogram> = BTreeMap::new();
    for s in &ctx.server.shards {
        let d = s.lock_data();
        for (name, st) in &d.cmd_stats.cmds {
            let Some(h) = &st.latency else { continue };
            match all.get_mut(name.0) {
                Some(mine) => {
                    let _ = mine.add(&**h);
                }
                None => {
                    all.insert(name.0, (**h).clone());
                }
            }
        }
    }
    all
}

fn reply_cdf(out: &mut Out, name: &str, h: &crate::latency::Histogram) {
    out.bulk(name.as_bytes());
    out.map(2);
    out.bulk(b"calls");
    out.int(h.len() as i64);
    out.bulk(b"histogram_usec");
    let buckets = crate::latency::cdf(h);
    out.map(buckets.len());
    for (us, count) in buckets {
        out.int(us as i64);
        out.int(count as i64);
    }
}

fn latency_histogram(ctx: &mut ConnCtx, args: &[Bytes], out: &mut Out) {
    let all = merged_histograms(ctx);
    if args.len() == 2 {
        out.map(all.len());
        for (name, h) in &all {
            reply_cdf(out, name, h);
        }
        return;
    }
    // Each named command (or `parent|sub`), and every subcommand of a named container.
    let mut picked: Vec<(&'static str, &crate::latency::Histogram)> = Vec::new();
    for a in &args[2..] {
        let name = String::from_utf8_lossy(a).to_lowercase();
        let (parent, sub) = match name.split_once('|') {
            Some((p, s)) => (p.to_string(), Some(s.to_string())),
            None => (name.clone(), None),
        };
        let Some(cmd) = super::lookup(parent.as_bytes()) else {
            continue;
        };
        let mut names: Vec<String> = Vec::new();
        match sub {
            Some(s) => match cmd.find_sub(s.as_bytes()) {
                Some(sc) => names.push(format!("{}|{}", cmd.name, sc.name)),
                None => continue,
            },
            None => {
                names.push(cmd.name.to_string());
                names.extend(
                    cmd.subcommands
                        .iter()
                        .map(|sc| format!("{}|{}", cmd.name, sc.name)),
                );
            }
        }
        for n in names {
            if let Some((k, h)) = all.get_key_value(n.as_str()) {
                picked.push((k, h));
            }
        }
    }
    out.map(picked.len());
    for (name, h) in picked {
        reply_cdf(out, name, h);
    }
}
