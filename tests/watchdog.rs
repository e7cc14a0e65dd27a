//! The software watchdog (`watchdog-period`): a shard that stays inside one loop turn longer
//! than the period is reported in the log with Redis's block (`--- WATCHDOG TIMER EXPIRED
//! ---`, `EIP:`, the backtrace) naming the function it is stuck in; period 0 turns it off.
//! A replica's diskless load is one long step of its link thread: it is reported too, and
//! the signal's EINTR does not break the transfer (Redis's "replica can handle EINTR if use
//! diskless load").

mod common;

use common::{wait_until, ServerKind, TestServer};
use std::time::Duration;

const REPORT_TIMEOUT: Duration = Duration::from_secs(30);
const EXPIRED: &str = "--- WATCHDOG TIMER EXPIRED ---";

fn log_of(s: &TestServer) -> String {
    std::fs::read_to_string(s.log_path()).unwrap_or_default()
}

fn reports(s: &TestServer) -> usize {
    log_of(s).matches(EXPIRED).count()
}

/// The report blocks of the log, each from its header to its closing `--------` line.
fn report_blocks(s: &TestServer) -> Vec<String> {
    let log = log_of(s);
    log.split(EXPIRED)
        .skip(1)
        .map(|rest| rest.split(") --------").next().unwrap_or(rest).to_string())
        .collect()
}

#[test]
fn a_slow_command_is_reported_with_its_stack_until_turned_off() {
    let s = TestServer::start(
        ServerKind::Shardis,
        &["--enable-debug-command", "yes", "--shards", "2"],
    );
    let mut c = s.conn();
    assert_eq!(
        c.call(&["CONFIG", "SET", "watchdog-period", "200"])
            .as_str(),
        Some("OK")
    );
    assert_eq!(c.call(&["DEBUG", "SLEEP", "1"]).as_str(), Some("OK"));
    wait_until("a report naming DEBUG", REPORT_TIMEOUT, || {
        report_blocks(&s)
            .iter()
            .any(|b| b.contains("commands::server::debug"))
    });
    let block = report_blocks(&s)
        .into_iter()
        .find(|b| b.contains("commands::server::debug"))
        .expect("the report");
    for part in [
        "did not return to its loop within 200 ms",
        "------ STACK TRACE ------",
        "EIP:\n",
        "Backtrace:\n",
        "shard::engine::Shard<I>::turn",
    ] {
        assert!(block.contains(part), "{part:?} missing from:\n{block}");
    }
    let log = log_of(&s);
    assert!(
        log.contains(&format!("{}:signal-handler (", s.pid())),
        "no signal-handler header line"
    );

    // Off: no timer is armed any more, however long a command takes.
    assert_eq!(
        c.call(&["CONFIG", "SET", "watchdog-period", "0"]).as_str(),
        Some("OK")
    );
    std::thread::sleep(Duration::from_millis(500));
    let before = reports(&s);
    assert_eq!(c.call(&["DEBUG", "SLEEP", "1"]).as_str(), Some("OK"));
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(reports(&s), before, "a report while the watchdog is off");
    s.assert_alive();
}

#[test]
fn a_diskless_load_is_reported_and_survives_the_interruption() {
    let master = TestServer::start(
        ServerKind::Shardis,
        &[
            "--enable-debug-command",
            "yes",
            "--repl-diskless-sync",
            "yes",
            "--repl-diskless-sync-delay",
            "0",
            "--rdbcompression",
            "no",
        ],
    );
    let mut m = master.conn();
    assert_eq!(
        m.call(&["DEBUG", "POPULATE", "400", "key", "10000"])
            .as_str(),
        Some("OK")
    );
    // 2.5 ms per key: the transfer lasts about a second, five watchdog periods. 4 MB of
    // values, so that the child's write buffer (1 MB) reaches the replica before the end:
    // its load starts early and is one long step of its link.
    m.call(&["CONFIG", "SET", "rdb-key-save-delay", "2500"]);
    let replica = TestServer::start(
        ServerKind::Shardis,
        &["--repl-diskless-load", "on-empty-db"],
    );
    let mut r = replica.conn();
    r.call(&["CONFIG", "SET", "watchdog-period", "200"]);
    let port = master.port().to_string();
    r.call(&["REPLICAOF", "127.0.0.1", &port]);
    wait_until("a report of the replication link", REPORT_TIMEOUT, || {
        report_blocks(&replica)
            .iter()
            .any(|b| b.contains("replication link (tid"))
    });
    wait_until("the load completed", Duration::from_secs(60), || {
        replica
            .info_field("replication", "master_link_status")
            .as_deref()
            == Some("up")
    });
    assert_eq!(r.call(&["DBSIZE"]).as_int(), Some(400));
    assert_eq!(
        master.info_field("stats", "sync_full").as_deref(),
        Some("1"),
        "the interrupted transfer was started again"
    );
    assert_eq!(
        log_of(&replica)
            .matches("MASTER <-> REPLICA sync started")
            .count(),
        1
    );
}
