//! SLOWLOG, LATENCY and INFO latencystats over TCP, differential against redis-server where
//! the replies are deterministic (argument trimming and redaction, client names, errors, help
//! texts, the doctor's text with monitoring off, reply shapes) and checked against the
//! thresholds where they depend on time (DEBUG SLEEP durations, with generous bounds).

mod common;

use common::{Reply, RespConn, ServerKind, TestServer};

const DEBUG: &[&str] = &["--enable-debug-command", "yes"];

/// redis-server and shardis, both with DEBUG enabled; `shardis_extra` goes to shardis only.
fn both(shardis_extra: &[&str]) -> Vec<TestServer> {
    let mut args = DEBUG.to_vec();
    args.extend_from_slice(shardis_extra);
    vec![
        TestServer::start(ServerKind::Redis, DEBUG),
        TestServer::start(ServerKind::Shardis, &args),
    ]
}

fn ok(c: &mut RespConn, args: &[&str]) {
    let r = c.call(args);
    assert!(!r.is_error(), "{:?} -> {:?}", args, r);
}

fn arr(r: &Reply) -> &[Reply] {
    r.as_array()
        .unwrap_or_else(|| panic!("not an array: {:?}", r))
}

/// A slow log entry without what varies between runs: (argv, client name), and checks the
/// rest's shape (id, time, duration are integers; the address is ip:port).
fn entry(e: &Reply) -> (Vec<String>, String) {
    let f = arr(e);
    assert_eq!(f.len(), 6, "{:?}", e);
    for field in &f[..3] {
        assert!(field.as_int().is_some(), "{:?}", e);
    }
    let addr = f[4].as_str().unwrap_or("");
    assert!(addr.starts_with("127.0.0.1:"), "{:?}", e);
    let argv = arr(&f[3])
        .iter()
        .map(|a| String::from_utf8_lossy(a.as_bytes().unwrap_or(b"?")).into_owned())
        .collect();
    (argv, f[5].as_str().unwrap_or("?").to_string())
}

fn slowlog_entries(c: &mut RespConn) -> Vec<(Vec<String>, String)> {
    arr(&c.call(&["slowlog", "get", "-1"]))
        .iter()
        .map(entry)
        .collect()
}

/// The same commands on both servers give the same slow log (oldest last).
#[test]
fn slowlog_entries_match_redis() {
    let servers = both(&["--shards", "4"]);
    let mut logs = Vec::new();
    for s in &servers {
        let mut c = s.conn();
        ok(&mut c, &["config", "set", "slowlog-log-slower-than", "0"]);
        ok(&mut c, &["slowlog", "reset"]);
        ok(&mut c, &["client", "setname", "intro"]);
        // Keys on several shards of shardis (hops and a multi-shard command).
        for k in ["a", "b", "c", "{x}1", "zz"] {
            ok(&mut c, &["set", k, "v"]);
        }
        ok(&mut c, &["mset", "a", "1", "b", "2", "c", "3"]);
        let many: Vec<String> = (0..40).map(|i| i.to_string()).collect();
        let mut sadd = vec!["sadd", "set"];
        sadd.extend(many.iter().map(|s| s.as_str()));
        ok(&mut c, &sadd);
        let long = "A".repeat(300);
        ok(&mut c, &["set", "long", &long]);
        ok(
            &mut c,
            &["config", "set", "masterauth", "secret", "hz", "10"],
        );
        let _ = c.call(&["auth", "user", "wrong"]);
        // No such key: NOKEY before any connection is tried, so the target does not matter.
        for tail in [&["AUTH", "pw"][..], &["COPY", "AUTH2", "u", "pw"]] {
            let mut m = vec!["migrate", "127.0.0.1", "1", "nokey", "0", "5000"];
            m.extend_from_slice(tail);
            ok(&mut c, &m);
        }
        ok(&mut c, &["multi"]);
        ok(&mut c, &["incr", "n"]);
        ok(&mut c, &["exec"]);
        ok(&mut c, &["config", "set", "slowlog-log-slower-than", "-1"]);
        logs.push(slowlog_entries(&mut c));
    }
    let (redis, shardis) = (&logs[0], &logs[1]);
    assert_eq!(shardis, redis);
    // And what Redis does is what the brief says: trimmed, redacted, EXEC not logged.
    let flat: Vec<String> = redis.iter().map(|(a, _)| a.join(" ")).collect();
    assert!(flat.iter().any(|l| l.ends_with("... (11 more arguments)")));
    assert!(flat
        .iter()
        .any(|l| l.ends_with(&format!("{}... (172 more bytes)", "A".repeat(128)))));
    assert!(flat
        .iter()
        .any(|l| l == "config set masterauth (redacted) hz 10"));
    assert!(flat.iter().any(|l| l == "auth (redacted) (redacted)"));
    assert!(flat
        .iter()
        .any(|l| l == "migrate 127.0.0.1 1 nokey 0 5000 COPY AUTH2 (redacted) (redacted)"));
    assert!(!flat.iter().any(|l| l == "exec"));
    // Named from CLIENT SETNAME on (SLOWLOG RESET ran before it).
    assert!(redis
        .iter()
        .filter(|(argv, _)| argv[0] != "slowlog")
        .all(|(_, name)| name == "intro"));
}

#[test]
fn slowlog_ids_length_and_errors_match_redis() {
    let mut replies: Vec<Vec<Reply>> = Vec::new();
    for s in both(&[]) {
        let mut c = s.conn();
        let mut r = Vec::new();
        ok(&mut c, &["config", "set", "slowlog-log-slower-than", "0"]);
        ok(&mut c, &["config", "set", "slowlog-max-len", "3"]);
        for _ in 0..10 {
            ok(&mut c, &["ping"]);
        }
        r.push(c.call(&["slowlog", "len"]));
        let first = arr(&c.call(&["slowlog", "get"]))[0].clone();
        let id_before = arr(&first)[0].as_int().unwrap();
        ok(&mut c, &["slowlog", "reset"]);
        let after = arr(&c.call(&["slowlog", "get", "1"]))[0].clone();
        // Ids keep counting across RESET.
        assert!(arr(&after)[0].as_int().unwrap() > id_before);
        r.push(c.call(&["slowlog", "get", "0"]));
        r.push(c.call(&["slowlog", "get", "-2"]));
        r.push(c.call(&["slowlog", "get", "x"]));
        r.push(c.call(&["slowlog", "get", "1", "2"]));
        r.push(c.call(&["slowlog", "foo"]));
        r.push(c.call(&["slowlog"]));
        r.push(c.call(&["slowlog", "help"]));
        r.push(c.call(&["slowlog", "len", "x"]));
        replies.push(r);
    }
    assert_eq!(replies[1], replies[0]);
    assert_eq!(replies[0][0], Reply::Int(3));
}

#[test]
fn slowlog_threshold_and_debug_sleep() {
    for s in both(&[]) {
        let mut c = s.conn();
        ok(
            &mut c,
            &["config", "set", "slowlog-log-slower-than", "100000"],
        );
        ok(&mut c, &["slowlog", "reset"]);
        ok(&mut c, &["ping"]);
        assert_eq!(c.call(&["slowlog", "len"]), Reply::Int(0), "{:?}", s.kind());
        ok(&mut c, &["debug", "sleep", "0.2"]);
        let log = c.call(&["slowlog", "get"]);
        let e = arr(&arr(&log)[0]);
        assert!(e[2].as_int().unwrap() >= 200_000, "{:?}", log);
        assert_eq!(entry(&arr(&log)[0]).0, vec!["debug", "sleep", "0.2"]);
    }
}

#[test]
fn latency_monitor_records_spikes_like_redis() {
    let mut shapes = Vec::new();
    for s in both(&[]) {
        let mut c = s.conn();
        // Deterministic texts first: nothing recorded, monitoring off.
        let mut r = vec![
            c.call(&["latency", "doctor"]),
            c.call(&["latency", "latest"]),
            c.call(&["latency", "history", "command"]),
            c.call(&["latency", "graph", "command"]),
            c.call(&["latency", "reset"]),
            c.call(&["latency", "help"]),
            c.call(&["latency", "help", "x"]),
            c.call(&["latency", "nope"]),
        ];
        ok(
            &mut c,
            &["config", "set", "latency-monitor-threshold", "50"],
        );
        ok(&mut c, &["debug", "sleep", "0.1"]);
        let latest = c.call(&["latency", "latest"]);
        let ev = arr(&latest)
            .iter()
            .map(|e| arr(e).to_vec())
            .find(|e| e.first().and_then(|n| n.as_str()) == Some("command"))
            .unwrap_or_else(|| panic!("no command event: {latest:?}"));
        let (last, max) = (ev[2].as_int().unwrap(), ev[3].as_int().unwrap());
        assert!(last >= 100 && max >= last, "{:?}", latest);
        let hist = c.call(&["latency", "history", "command"]);
        assert_eq!(arr(&hist).len(), 1, "{:?}", hist);
        let graph = c.call(&["latency", "graph", "command"]);
        let text = graph.as_str().unwrap_or("").to_string();
        assert!(text.starts_with("command - high "), "{:?}", graph);
        let doctor = c.call(&["latency", "doctor"]);
        assert!(doctor
            .as_str()
            .unwrap_or("")
            .contains("1. command: 1 latency spikes"));
        r.push(c.call(&["latency", "reset", "nosuch", "COMMAND"]));
        // Only the reset event is compared: on a loaded machine either server may record an
        // unrelated spike (an expire cycle descheduled for 50 ms) at any moment.
        let latest = c.call(&["latency", "latest"]);
        let command: Vec<Reply> = arr(&latest)
            .iter()
            .filter(|e| arr(e).first().and_then(|n| n.as_str()) == Some("command"))
            .cloned()
            .collect();
        r.push(Reply::Array(command));
        shapes.push(r);
    }
    assert_eq!(shapes[1], shapes[0]);
    assert_eq!(shapes[0][8], Reply::Int(1));
}

/// LATENCY HISTOGRAM's structure: per command, calls and cumulative buckets.
fn histogram_calls(r: &Reply) -> Vec<(String, i64)> {
    let items = arr(r);
    let mut out = Vec::new();
    for pair in items.chunks(2) {
        let name = pair[0].as_str().unwrap_or("?").to_string();
        let body = arr(&pair[1]);
        assert_eq!(body[0].as_str(), Some("calls"));
        assert_eq!(body[2].as_str(), Some("histogram_usec"));
        let buckets: Vec<i64> = arr(&body[3]).iter().filter_map(|b| b.as_int()).collect();
        // Cumulative counts grow and end at `calls`.
        let counts: Vec<i64> = buckets.iter().skip(1).step_by(2).copied().collect();
        assert!(counts.windows(2).all(|w| w[0] < w[1]), "{:?}", buckets);
        assert_eq!(counts.last().copied(), body[1].as_int(), "{:?}", body);
        out.push((name, body[1].as_int().unwrap_or(-1)));
    }
    out.sort();
    out
}

#[test]
fn latency_histogram_and_latencystats_match_redis() {
    let mut all = Vec::new();
    for s in both(&["--shards", "2"]) {
        let mut c = s.conn();
        ok(&mut c, &["config", "resetstat"]);
        for k in ["a", "b", "c", "d"] {
            ok(&mut c, &["set", k, "1"]);
        }
        ok(&mut c, &["get", "a"]);
        ok(&mut c, &["client", "id"]);
        let mut r = vec![
            histogram_calls(&c.call(&["latency", "histogram", "set", "get", "nosuch"])),
            histogram_calls(&c.call(&["latency", "histogram", "client"])),
            histogram_calls(&c.call(&["latency", "histogram", "client|id"])),
        ];
        ok(
            &mut c,
            &[
                "config",
                "set",
                "latency-tracking-info-percentiles",
                "50 99.99",
            ],
        );
        let info = c.call(&["info", "latencystats"]);
        let text = info.as_str().unwrap_or("").to_string();
        let line = text
            .lines()
            .find(|l| l.starts_with("latency_percentiles_usec_set:"))
            .unwrap_or_else(|| panic!("{}", text));
        let (_, values) = line.split_once(':').unwrap();
        let names: Vec<&str> = values
            .split(',')
            .map(|kv| kv.split_once('=').unwrap().0)
            .collect();
        assert_eq!(names, ["p50", "p99.99"]);
        for kv in values.split(',') {
            let v = kv.split_once('=').unwrap().1;
            assert!(v.parse::<f64>().unwrap() > 0.0 && v.split_once('.').unwrap().1.len() == 3);
        }
        ok(&mut c, &["config", "set", "latency-tracking", "no"]);
        ok(&mut c, &["config", "resetstat"]);
        ok(&mut c, &["set", "a", "1"]);
        r.push(histogram_calls(&c.call(&["latency", "histogram", "set"])));
        all.push(r);
    }
    assert_eq!(all[1], all[0]);
    assert_eq!(
        all[0][0],
        vec![("get".to_string(), 1), ("set".to_string(), 4)]
    );
    assert!(all[0][3].is_empty());
}

/// COMMAND INFO, DOCS, GETKEYS, GETKEYSANDFLAGS and LIST FILTERBY answer byte for byte as
/// redis-server does for commands both implement (the key specs, tips, flags with
/// movablekeys, ACL categories and documentation Redis publishes), including the errors.
#[test]
fn command_introspection_matches_redis() {
    let servers = both(&[]);
    let mut conns: Vec<RespConn> = servers.iter().map(|s| s.conn()).collect();
    let same = |conns: &mut Vec<RespConn>, args: &[&str]| {
        let a: Vec<&[u8]> = args.iter().map(|s| s.as_bytes()).collect();
        let r = conns[0].cmd(&a);
        let s = conns[1].cmd(&a);
        assert_eq!(
            String::from_utf8_lossy(&r),
            String::from_utf8_lossy(&s),
            "{args:?}"
        );
    };
    for name in [
        "get",
        "set",
        "mset",
        "lmove",
        "zunionstore",
        "eval",
        "fcall",
        "sort",
        "sort_ro",
        "georadius",
        "xread",
        "xreadgroup",
        "bitfield",
        "blpop",
        "lpop",
        "rename",
        "object|encoding",
        "memory|usage",
        "config|get",
        "get|key",
        "config|get|key",
        "nosuchcommand",
    ] {
        same(&mut conns, &["command", "info", name]);
        same(&mut conns, &["command", "docs", name]);
    }
    for getkeys in [
        &["set", "k1", "v1"][..],
        &["set", "k1", "v1", "get"],
        &["mset", "k1", "v1", "k2", "v2"],
        &["lmove", "k1", "k2", "left", "right"],
        &["sort", "k1", "store", "k2"],
        &["zunionstore", "d", "2", "a", "b"],
        &["eval", "return 1", "0"],
        &["eval", "return 1", "2", "a", "b", "x"],
        &["bitfield", "k", "get", "u8", "0"],
        &["bitfield", "k", "set", "u8", "0", "1"],
        &["xread", "count", "2", "streams", "s1", "s2", "0", "0"],
        &["ping", "x"],
        &["get"],
        &["nosuchcommand", "x"],
    ] {
        for sub in ["getkeys", "getkeysandflags"] {
            let mut args = vec!["command", sub];
            args.extend_from_slice(getkeys);
            same(&mut conns, &args);
        }
    }
    // Several matches come in the order of Redis's command dict, a hash order that changes
    // from one redis-server process to the next: compared as sets.
    let sorted = |c: &mut RespConn| -> Vec<String> {
        let mut v: Vec<String> =
            arr(&c.call(&["command", "list", "filterby", "pattern", "config|*re*"]))
                .iter()
                .filter_map(|r| r.as_str().map(str::to_string))
                .collect();
        v.sort();
        v
    };
    let theirs = sorted(&mut conns[0]);
    assert_eq!(theirs, ["config|resetstat", "config|rewrite"]);
    assert_eq!(sorted(&mut conns[1]), theirs);
    for filter in [
        &["list", "filterby", "pattern", "get"][..],
        &["list", "filterby", "module", "nosuchmodule"],
        &["list", "filterby", "aclcat", "nosuchcategory"],
        &["list", "filterby", "bad", "x"],
        &["list", "bad"],
    ] {
        let mut args = vec!["command"];
        args.extend_from_slice(filter);
        same(&mut conns, &args);
    }
    // Categories filter: every Redis scripting command is listed by ours too.
    let cat = |c: &mut RespConn| -> Vec<String> {
        let mut v: Vec<String> =
            arr(&c.call(&["command", "list", "filterby", "aclcat", "scripting"]))
                .iter()
                .filter_map(|r| r.as_str().map(str::to_string))
                .collect();
        v.sort();
        v
    };
    let theirs = cat(&mut conns[0]);
    let ours = cat(&mut conns[1]);
    for name in theirs.iter().filter(|n| !n.starts_with("acl")) {
        assert!(ours.contains(name), "{name} missing from {ours:?}");
    }
}

/// MONITOR lines without their timestamp and client address: `"cmd" "arg" ...`.
fn monitor_args(line: &Reply) -> String {
    let text = line
        .as_str()
        .unwrap_or_else(|| panic!("not a status: {:?}", line));
    let (_, rest) = text
        .split_once("] ")
        .unwrap_or_else(|| panic!("no address part: {}", text));
    rest.to_string()
}

/// MONITOR hides the same arguments as Redis: passwords of AUTH, HELLO AUTH and MIGRATE
/// AUTH/AUTH2.
#[test]
fn monitor_redacts_like_redis() {
    let servers = both(&["--shards", "2"]);
    let mut seen = Vec::new();
    for s in &servers {
        let mut mon = s.conn();
        assert_eq!(mon.call(&["monitor"]).as_str(), Some("OK"));
        let mut c = s.conn();
        let cmds: [&[&str]; 5] = [
            &[
                "migrate",
                "127.0.0.1",
                "1",
                "nokey",
                "0",
                "5000",
                "AUTH",
                "pw",
            ],
            &[
                "migrate",
                "127.0.0.1",
                "1",
                "nokey",
                "0",
                "5000",
                "AUTH2",
                "u",
                "pw",
            ],
            &["auth", "not-real"],
            &["auth", "not-real", "not-a-password"],
            &["hello", "2", "AUTH", "not-real", "not-a-password"],
        ];
        for cmd in cmds {
            let _ = c.call(cmd);
        }
        let lines: Vec<String> = (0..cmds.len())
            .map(|_| monitor_args(&common::decode(&mon.read_reply()).expect("a reply")))
            .collect();
        seen.push(lines);
    }
    assert_eq!(seen[1], seen[0]);
    assert_eq!(
        seen[0][1],
        r#""migrate" "127.0.0.1" "1" "nokey" "0" "5000" "AUTH2" "(redacted)" "(redacted)""#
    );
}

/// CONFIG SET `port` moves every shard's listener; a port another process holds fails the
/// whole CONFIG SET (nothing else changes) and the server keeps listening where it was.
#[test]
fn config_set_port_rebinds_or_rolls_back() {
    let s = TestServer::start(ServerKind::Shardis, &["--shards", "2"]);
    let old = s.port();
    let mut c = s.conn();
    let busy = std::net::TcpListener::bind(("127.0.0.1", common::free_port())).expect("bind");
    let busy_port = busy.local_addr().expect("addr").port().to_string();
    let r = c.call(&["config", "set", "maxmemory", "10000001", "port", &busy_port]);
    assert!(r.is_error(), "CONFIG SET to a held port must fail: {:?}", r);
    assert_eq!(
        r.as_str(),
        Some(
            "ERR CONFIG SET failed (possibly related to argument 'port') - Unable to listen on \
             this port. Check server logs."
        )
    );
    let mm = c.call(&["config", "get", "maxmemory"]);
    assert_eq!(arr(&mm)[1].as_str(), Some("0"));
    // Still accepting on the old port, on every shard (connections spread over both).
    for _ in 0..8 {
        let mut n = RespConn::connect(old).expect("old port still listens");
        assert_eq!(n.call(&["ping"]).as_str(), Some("PONG"));
    }
    drop(busy);

    let new = common::free_port();
    ok(&mut c, &["config", "set", "port", &new.to_string()]);
    for _ in 0..8 {
        let mut n = common::wait_for("the new port", std::time::Duration::from_secs(10), || {
            RespConn::connect(new).ok()
        });
        assert_eq!(n.call(&["ping"]).as_str(), Some("PONG"));
    }
    common::wait_until(
        "the old port closed",
        std::time::Duration::from_secs(10),
        || std::net::TcpStream::connect(("127.0.0.1", old)).is_err(),
    );
    // The connection that moved it is still served.
    assert_eq!(c.call(&["ping"]).as_str(), Some("PONG"));
    let port = c.call(&["config", "get", "port"]);
    assert_eq!(arr(&port)[1].as_str(), Some(new.to_string().as_str()));
}

/// A blocked BLPOP ended by CLIENT UNBLOCK ... ERROR counts as a failed call with an
/// `UNBLOCKED` error in INFO errorstats, commandstats and total_error_replies, as Redis's
/// updateStatsOnUnblock does.
#[test]
fn client_unblock_error_counts_in_errorstats() {
    for kind in [ServerKind::Redis, ServerKind::Shardis] {
        let s = TestServer::start(kind, &[]);
        let mut c = s.conn();
        let mut blocked = s.conn();
        assert_eq!(c.cmd(&[b"CONFIG", b"RESETSTAT"]), b"+OK\r\n");
        let id = blocked.call(&["CLIENT", "ID"]).as_int().expect("an id");
        blocked.send_raw(&common::resp::encode_command(&[
            b"BLPOP",
            b"list1{t}",
            b"0",
        ]));
        common::wait_until(
            "the client to block",
            std::time::Duration::from_secs(10),
            || s.info_field("clients", "blocked_clients").as_deref() == Some("1"),
        );
        let id = id.to_string();
        assert_eq!(
            c.cmd(&[b"CLIENT", b"UNBLOCK", id.as_bytes(), b"ERROR"]),
            b":1\r\n"
        );
        assert_eq!(
            blocked.read_reply(),
            b"-UNBLOCKED client unblocked via CLIENT UNBLOCK\r\n"
        );
        let name = kind.name();
        assert_eq!(
            s.info_field("errorstats", "errorstat_UNBLOCKED").as_deref(),
            Some("count=1"),
            "{name}"
        );
        let blpop = s
            .info_field("commandstats", "cmdstat_blpop")
            .unwrap_or_default();
        assert!(
            blpop.starts_with("calls=1,") && blpop.ends_with(",rejected_calls=0,failed_calls=1"),
            "{name}: {blpop}"
        );
        assert_eq!(
            s.info_field("stats", "total_error_replies").as_deref(),
            Some("1"),
            "{name}"
        );
    }
}
