//! The start-up report of directives that are accepted but not honoured ("Accepted but not
//! implemented yet: NAME"): it names what really is not implemented and nothing the engine uses.

mod common;

use common::{wait_for, ServerKind, TestServer};
use std::collections::BTreeSet;
use std::time::Duration;

const REPORT: &str = "Accepted but not implemented yet: ";

/// The directives the start-up log reports as not implemented, once the server is initialized.
fn reported(s: &TestServer) -> BTreeSet<String> {
    let log = wait_for(
        "Server initialized in the log",
        Duration::from_secs(30),
        || {
            let log = std::fs::read_to_string(s.log_path()).ok()?;
            log.contains("Server initialized").then_some(log)
        },
    );
    log.lines()
        .filter_map(|line| line.split_once(REPORT))
        .map(|(_, name)| name.trim().to_string())
        .collect()
}

#[test]
fn startup_report_names_only_unimplemented_directives() {
    // Every one of these differs from its default and is honoured by the engine (or, for the
    // incremental fsyncs, is what shardis does anyway), so none may be reported.
    let honoured: &[(&str, &str)] = &[
        ("appendonly", "yes"),
        ("appendfsync", "always"),
        ("aof-use-rdb-preamble", "no"),
        ("aof-load-truncated", "no"),
        ("appendfilename", "other.aof"),
        ("auto-aof-rewrite-percentage", "50"),
        ("repl-diskless-sync", "no"),
        ("repl-diskless-sync-delay", "0"),
        ("repl-diskless-load", "swapdb"),
        ("repl-backlog-ttl", "60"),
        ("busy-reply-threshold", "1000"),
        ("enable-debug-command", "yes"),
        ("lua-enable-deprecated-api", "yes"),
        ("notify-keyspace-events", "KEA"),
        ("hash-max-listpack-entries", "10"),
        ("set-max-intset-entries", "10"),
        ("zset-max-listpack-value", "10"),
        ("list-max-listpack-size", "-1"),
        ("stream-node-max-entries", "10"),
        ("hll-sparse-max-bytes", "100"),
        ("tracking-table-max-keys", "10"),
        ("replica-priority", "50"),
        ("aof-rewrite-incremental-fsync", "no"),
    ];
    // Not implemented: these must still be reported.
    let pending: &[(&str, &str)] = &[
        ("cluster-announce-ip", "1.2.3.4"),
        ("tls-session-cache-timeout", "100"),
        ("list-compress-depth", "1"),
    ];
    let mut args: Vec<String> = Vec::new();
    for (name, value) in honoured.iter().chain(pending) {
        args.push(format!("--{name}"));
        args.push((*value).to_string());
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let s = TestServer::start(ServerKind::Shardis, &args);

    let expected: BTreeSet<String> = pending.iter().map(|(n, _)| n.to_string()).collect();
    assert_eq!(reported(&s), expected, "log:\n{}", s.log_tail());

    // The honoured values are in effect, not just unreported.
    let mut c = s.conn();
    for (name, value) in honoured {
        let r = c.call(&["CONFIG", "GET", name]);
        let got: Vec<String> = r
            .as_array()
            .unwrap_or_else(|| panic!("CONFIG GET {name}: {r:?}"))
            .iter()
            .filter_map(|v| v.as_str().map(str::to_string))
            .collect();
        let want = if *name == "notify-keyspace-events" {
            "AKE"
        } else {
            value
        };
        assert_eq!(got, vec![name.to_string(), want.to_string()], "{name}");
    }
    assert_eq!(
        s.info_field("persistence", "aof_enabled").as_deref(),
        Some("1")
    );
    let r = c.call(&["DEBUG", "SLEEP", "0"]);
    assert!(!r.is_error(), "DEBUG with enable-debug-command yes: {r:?}");
}

#[test]
fn startup_report_is_empty_with_defaults() {
    let s = TestServer::start_with_defaults(ServerKind::Shardis, &[]);
    assert_eq!(reported(&s), BTreeSet::new(), "log:\n{}", s.log_tail());
}
