//! shardis-bench against real servers: it runs, exits 0 and writes parseable JSON, an
//! HdrHistogram percentile-distribution file and an SVG, with sane numbers (counts that add
//! up, ordered percentiles, no errors). No timing is asserted.

mod common;

use common::{ServerKind, TestServer};
use std::path::Path;
use std::process::Command;

fn bench() -> Command {
    Command::new(env!("CARGO_BIN_EXE_shardis-bench"))
}

fn run(cmd: &mut Command) -> String {
    let out = cmd.output().expect("run shardis-bench");
    assert!(
        out.status.success(),
        "shardis-bench failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The number after `"key":` in a flat JSON object (the tool's output has no nesting
/// ambiguity for these keys).
fn num(json: &str, key: &str) -> f64 {
    let pat = format!("\"{}\":", key);
    let at = json
        .find(&pat)
        .unwrap_or_else(|| panic!("{} missing in {}", key, json))
        + pat.len();
    let rest = &json[at..];
    let end = rest.find([',', '}']).unwrap_or(rest.len());
    rest[..end]
        .trim()
        .parse()
        .unwrap_or_else(|_| panic!("{} is not a number in {}", key, json))
}

fn check_json(json: &str, requests: Option<f64>) {
    assert!(json.trim_start().starts_with('{') && json.trim_end().ends_with('}'));
    if let Some(n) = requests {
        assert_eq!(num(json, "requests"), n, "{}", json);
    }
    assert!(num(json, "requests") > 0.0);
    assert_eq!(num(json, "errors"), 0.0, "{}", json);
    assert!(num(json, "throughput_rps") > 0.0);
    let p: Vec<f64> = [
        "min", "p50", "p90", "p99", "p99.9", "p99.99", "p99.999", "max",
    ]
    .iter()
    .map(|k| num(json, k))
    .collect();
    assert!(p[0] > 0.0, "{}", json);
    assert!(
        p.windows(2).all(|w| w[0] <= w[1]),
        "percentiles out of order: {}",
        json
    );
    assert!(num(json, "server_cpu_us_per_request") >= 0.0, "{}", json);
}

fn check_files(hdr: &Path, svg: &Path, requests: f64) {
    let text = std::fs::read_to_string(hdr).expect("hdr file");
    assert!(text.starts_with("       Value     Percentile TotalCount 1/(1-Percentile)"));
    let last = text
        .lines()
        .rfind(|l| !l.starts_with('#') && l.split_whitespace().count() >= 3)
        .expect("a percentile line");
    let cols: Vec<&str> = last.split_whitespace().collect();
    assert_eq!(cols[1].parse::<f64>().ok(), Some(1.0), "{}", last);
    assert!(
        text.contains(&format!("Total count    = {:>12}]", requests as u64)),
        "{}",
        text
    );
    let plot = std::fs::read_to_string(svg).expect("svg file");
    assert!(plot.starts_with("<svg") && plot.contains("<polyline"));
}

#[test]
fn closed_loop_against_both_servers() {
    for kind in [ServerKind::Redis, ServerKind::Shardis] {
        let extra: &[&str] = match kind {
            ServerKind::Shardis => &["--shards", "2"],
            ServerKind::Redis => &[],
        };
        let s = TestServer::start(kind, extra);
        let dir = tempfile::tempdir().unwrap();
        let (json, hdr, svg) = (
            dir.path().join("r.json"),
            dir.path().join("r.hdr"),
            dir.path().join("r.svg"),
        );
        run(bench()
            .args([
                "-p",
                &s.port().to_string(),
                "-c",
                "8",
                "--threads",
                "2",
                "-P",
                "4",
            ])
            .args([
                "-n", "20000", "--ratio", "1:3", "-r", "1000", "-s", "10-100",
            ])
            .args(["--key-dist", "zipf:0.9", "--no-progress"])
            .arg("--json")
            .arg(&json)
            .arg("--hdr")
            .arg(&hdr)
            .arg("--svg")
            .arg(&svg));
        let j = std::fs::read_to_string(&json).unwrap();
        check_json(&j, Some(20000.0));
        check_files(&hdr, &svg, 20000.0);
        // The SETs of the mix reached the server.
        let keys = s.conn().call(&["dbsize"]).as_int().unwrap();
        assert!(keys > 0 && keys <= 1000, "{}", keys);
    }
}

#[test]
fn open_loop_templates_resp3_and_compare() {
    let a = TestServer::start(ServerKind::Redis, &[]);
    let b = TestServer::start(ServerKind::Shardis, &[]);
    // Open loop at a modest rate with a command template and RESP3.
    let out = run(bench()
        .args(["-p", &a.port().to_string(), "-c", "4", "--rate", "2000"])
        .args([
            "--arrival",
            "poisson",
            "-d",
            "1",
            "--resp",
            "3",
            "--no-progress",
        ])
        .args(["--command", "HSET h:__key__ f __data__", "--json", "-"]));
    let json = out.lines().last().unwrap();
    check_json(json, None);
    assert!(json.contains("open loop at 2000"), "{}", json);
    assert!(a.conn().call(&["dbsize"]).as_int().unwrap() > 0);
    // --compare: two runs, one per server.
    let out = run(bench()
        .args(["-p", &a.port().to_string(), "--compare"])
        .arg(format!("127.0.0.1:{}", b.port()))
        .args([
            "--rounds", "1", "-n", "3000", "-c", "4", "-t", "get", "--json", "-",
        ])
        .arg("--no-progress"));
    assert!(out.contains("B/A"), "{}", out);
    let json = out.lines().last().unwrap();
    assert!(json.starts_with("{\"runs\":["), "{}", json);
    for run in json.split("{\"label\"").skip(1) {
        let one = format!("{{\"label\"{}}}", run.trim_end_matches([']', '}', ',']));
        check_json(&one, Some(3000.0));
    }
}

#[test]
fn bad_options_are_refused() {
    for args in [
        &["--key-dist", "zipf:2"][..],
        &["-c", "0"],
        &["--ratio", "x"],
        &["--nope"],
        &["-s", "20-10"],
    ] {
        let out = bench().args(args).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{:?}", args);
        assert!(String::from_utf8_lossy(&out.stderr).starts_with("shardis-bench: "));
    }
}

/// `--batches` (redis-benchmark's lock-step pipelining): a request count that is not a
/// multiple of the depth still ends with exactly that many measured requests, every one
/// answered.
#[test]
fn batches_mode_counts_every_request() {
    let s = TestServer::start(ServerKind::Shardis, &["--shards", "2"]);
    let out = run(bench()
        .args([
            "-p",
            &s.port().to_string(),
            "-c",
            "3",
            "-P",
            "8",
            "--batches",
        ])
        .args(["-n", "1001", "--command", "INCR counter", "--no-progress"])
        .args(["--json", "-"]));
    let j = out.trim().lines().last().unwrap_or_default().to_string();
    check_json(&j, Some(1001.0));
    // Requests sent before measuring starts (while the server's CPU time is read) reach the
    // server but are not counted.
    let n = s.conn().call(&["get", "counter"]);
    let n = n.as_str().and_then(|v| v.parse::<i64>().ok()).unwrap_or(0);
    assert!(n >= 1001, "{}", n);
}

/// --slow-log lists every request at or over --slow-ms with its due time on the Unix clock:
/// with a threshold of 0, every request the run recorded (as many as its JSON counts), in
/// order, within the run's wall-clock span.
#[test]
fn slow_log_lists_requests_with_unix_due_times() {
    let s = TestServer::start(ServerKind::Shardis, &[]);
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("slow.log");
    let unix = || {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs_f64()
    };
    let t0 = unix();
    let out = run(bench()
        .args(["-p", &s.port().to_string(), "-c", "2", "--rate", "500"])
        .args(["-d", "0.5", "-t", "get", "--no-progress", "--json", "-"])
        .args(["--slow-ms", "0", "--slow-log"])
        .arg(&log));
    let t1 = unix();
    let json = out.lines().last().unwrap();
    check_json(json, None);
    let requests = num(json, "requests") as usize;
    let text = std::fs::read_to_string(&log).unwrap();
    let rows: Vec<(f64, f64)> = text
        .lines()
        .map(|l| {
            let (due, lat) = l.split_once(' ').expect("two fields");
            (due.parse().unwrap(), lat.parse().unwrap())
        })
        .collect();
    assert_eq!(
        rows.len(),
        requests,
        "one line per recorded request: {text}"
    );
    assert!(rows.windows(2).all(|w| w[0].0 <= w[1].0), "in due order");
    for (due, lat) in &rows {
        assert!(
            *due >= t0 - 1.0 && *due <= t1 + 1.0,
            "{due} outside {t0}..{t1}"
        );
        assert!(*lat > 0.0);
    }
    // A threshold no request reaches: an empty log.
    run(bench()
        .args([
            "-p",
            &s.port().to_string(),
            "-n",
            "50",
            "-t",
            "get",
            "--no-progress",
        ])
        .args(["--slow-ms", "100000", "--slow-log"])
        .arg(&log));
    assert_eq!(std::fs::read_to_string(&log).unwrap(), "");
}
