//! shardis-bench: a latency benchmark for any RESP server.
//!
//! It measures what users of a cache feel: percentiles up to p99.999 at a fixed offered rate
//! (open loop, coordinated omission corrected) as well as the peak of a closed loop, and the
//! server's CPU time per request read from the server itself (INFO cpu before and after), so a
//! comparison of two servers on one machine reports efficiency, not just speed. `--compare`
//! alternates two servers (A B A B ...) so drift in the machine's state hits both alike.
//!
//! Layout: `args` (options), `workload` (templates, key and size distributions, random
//! numbers), `resp` (reply framing), `run` (client threads over epoll), `report` (table,
//! JSON, HdrHistogram files, SVG). Dependencies: `hdrhistogram` and `libc` only.

mod args;
mod report;
mod resp;
mod run;
mod workload;

use args::Opts;
use report::RunResult;
use run::{Shared, ThreadPlan, Topology};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use workload::{Generator, Keys, Rng, Template};

/// How long in-flight requests may take to come back once the run has stopped.
const DRAIN_NS_MAX: u64 = 2_000_000_000;

fn main() {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let o = match args::parse(&argv) {
        Ok(Some(o)) => o,
        Ok(None) => {
            print!("{}", args::USAGE);
            return;
        }
        Err(e) => {
            eprintln!("shardis-bench: {}", e);
            std::process::exit(2);
        }
    };
    if let Err(e) = real_main(o) {
        eprintln!("shardis-bench: {}", e);
        std::process::exit(1);
    }
}

fn real_main(o: Opts) -> Result<(), String> {
    if let Some((out, files)) = &o.plot {
        let all = files
            .iter()
            .map(|f| report::series_from_file(f))
            .collect::<Result<Vec<_>, _>>()?;
        std::fs::write(out, report::svg("latency by percentile", &all))
            .map_err(|e| format!("{}: {}", out, e))?;
        return Ok(());
    }
    raise_fd_limit();
    eprintln!(
        "# seed {} | {} connections, {} threads, pipeline {}, {}",
        o.seed,
        o.connections,
        o.threads,
        o.pipeline,
        mode(&o)
    );
    let targets: Vec<(String, u16)> = match &o.compare {
        Some(b) => vec![(o.host.clone(), o.port), b.clone()],
        None => vec![(o.host.clone(), o.port)],
    };
    let rounds = if o.compare.is_some() {
        o.rounds.max(1)
    } else {
        1
    };
    let mut results: Vec<Vec<RunResult>> = targets.iter().map(|_| Vec::new()).collect();
    println!("{}", report::table_header());
    for round in 0..rounds {
        for (i, (h, p)) in targets.iter().enumerate() {
            let label = match (&o.label, o.compare.is_some()) {
                (_, true) => format!("{}#{}", if i == 0 { "A" } else { "B" }, round + 1),
                (Some(l), false) => l.clone(),
                (None, false) => format!("{}:{}", h, p),
            };
            let r = run_once(&o, h, *p, &label)?;
            println!("{}", report::table_row(&r));
            if let Some(e) = &r.first_error {
                eprintln!("# {}: {} errors, first: {}", label, r.errors, e);
            }
            results[i].push(r);
        }
    }
    let finals: Vec<RunResult> = results
        .into_iter()
        .zip(&targets)
        .enumerate()
        .map(|(i, (rs, (h, p)))| merge(rs, i, &format!("{}:{}", h, p), &o))
        .collect();
    if o.compare.is_some() {
        print_ratios(&finals);
    }
    write_outputs(&o, &finals)
}

fn mode(o: &Opts) -> String {
    match o.rate {
        Some(r) => format!(
            "open loop at {} req/s ({} arrivals)",
            r,
            if o.poisson { "poisson" } else { "uniform" }
        ),
        None => "closed loop".into(),
    }
}

fn raise_fd_limit() {
    let mut rl = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `rl` is a valid rlimit for both calls.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut rl) == 0 && rl.rlim_cur < rl.rlim_max {
            rl.rlim_cur = rl.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &rl);
        }
    }
}

/// The workload's templates with their weights.
fn templates(o: &Opts) -> Result<Vec<(Template, u32)>, String> {
    if !o.templates.is_empty() {
        return o
            .templates
            .iter()
            .map(|t| Template::parse(t).map(|t| (t, 1)))
            .collect();
    }
    let mut v = Vec::new();
    if o.set_ratio > 0 {
        v.push((Template::parse("SET __key__ __data__")?, o.set_ratio));
    }
    if o.get_ratio > 0 {
        v.push((Template::parse("GET __key__")?, o.get_ratio));
    }
    Ok(v)
}

fn plans(o: &Opts, topo: &Topology) -> Result<Vec<ThreadPlan>, String> {
    let tpls = templates(o)?;
    let zetan = Keys::zetan(o.keyspace, &o.key_dist);
    let mut plans: Vec<ThreadPlan> = (0..o.threads)
        .map(|_| ThreadPlan {
            gens: Vec::new(),
            budget: None,
            topo: topo.clone(),
        })
        .collect();
    for c in 0..o.connections {
        let start = o.keyspace * c as u64 / o.connections as u64;
        let keys = Keys::new(o.keyspace, &o.key_dist, start, zetan);
        let rng = Rng::new(o.seed.wrapping_add(c as u64 * 0x1000_0001));
        let gen = Generator::new(tpls.clone(), &o.key_prefix, keys, o.value_size.clone(), rng);
        plans[c % o.threads].gens.push(gen);
    }
    if let Some(n) = o.requests {
        let t = o.threads as u64;
        for (i, p) in plans.iter_mut().enumerate() {
            p.budget = Some(n / t + u64::from((i as u64) < n % t));
        }
    }
    Ok(plans)
}

/// Server CPU seconds (user + system) from INFO cpu, summed over the nodes.
fn server_cpu_secs(o: &Opts, nodes: &[(String, u16)]) -> Option<f64> {
    let mut total = 0.0;
    for (h, p) in nodes {
        let mut s = run::connect(o, h, *p).ok()?;
        let v = run::call(&mut s, &resp::encode(&[b"INFO", b"cpu"])).ok()?;
        let resp::Value::Str(text) = v else {
            return None;
        };
        let text = String::from_utf8_lossy(&text).into_owned();
        for line in text.lines() {
            if let Some(v) = line
                .strip_prefix("used_cpu_sys:")
                .or_else(|| line.strip_prefix("used_cpu_user:"))
            {
                total += v.trim().parse::<f64>().ok()?;
            }
        }
    }
    Some(total)
}

/// `--slow-log`'s text: due times moved from the monotonic clock to Unix time, so that a
/// script can place them against events it timed itself.
fn slow_log(mut slow: Vec<(u64, u64)>) -> String {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec.
    unsafe { libc::clock_gettime(libc::CLOCK_REALTIME, &mut ts) };
    let unix_ns = ts.tv_sec as i128 * 1_000_000_000 + ts.tv_nsec as i128;
    let offset = unix_ns - run::now_ns() as i128;
    slow.sort_unstable();
    let mut out = String::new();
    for (due, lat) in slow {
        let unix = (due as i128 + offset) as f64 / 1e9;
        out.push_str(&format!("{:.6} {:.3}\n", unix, lat as f64 / 1e6));
    }
    out
}

fn run_once(o: &Opts, host: &str, port: u16, label: &str) -> Result<RunResult, String> {
    let mut o = o.clone();
    o.host = host.to_string();
    o.port = port;
    let topo = if o.cluster {
        run::cluster_topology(&o)?
    } else {
        Topology {
            nodes: vec![(host.to_string(), port)],
            slots: Vec::new(),
        }
    };
    let o = Arc::new(o);
    let shared = Arc::new(Shared::new());
    let mut handles = Vec::new();
    for plan in plans(&o, &topo)? {
        let (o2, s2) = (o.clone(), shared.clone());
        handles.push(
            std::thread::Builder::new()
                .name("bench-client".into())
                .spawn(move || run::thread_main(o2, s2, plan))
                .map_err(|e| e.to_string())?,
        );
    }
    std::thread::sleep(Duration::from_secs_f64(o.warmup_secs));
    let cpu0 = if o.server_cpu {
        server_cpu_secs(&o, &topo.nodes)
    } else {
        None
    };
    let t0 = run::now_ns();
    shared.record_from_ns.store(t0, Ordering::Relaxed);
    let deadline = t0 + (o.duration_secs * 1e9) as u64;
    let (mut last_done, mut last_sum, mut tick) = (0u64, 0u64, 1u64);
    loop {
        std::thread::sleep(Duration::from_millis(20));
        let now = run::now_ns();
        let finished = handles.iter().all(|h| h.is_finished());
        if finished || (o.requests.is_none() && now >= deadline) {
            break;
        }
        if o.progress && now >= t0 + tick * 1_000_000_000 {
            let done = shared.done.load(Ordering::Relaxed);
            let sum = shared.lat_sum_ns.load(Ordering::Relaxed);
            let n = done - last_done;
            let mean = if n > 0 {
                (sum - last_sum) as f64 / n as f64 / 1000.0
            } else {
                0.0
            };
            eprintln!(
                "[{:>4}s] {:>9} req/s  mean {:>9.1} us  max {:>9.1} us  errors {}",
                tick,
                n,
                mean,
                shared.lat_max_ns.load(Ordering::Relaxed) as f64 / 1000.0,
                shared.errors.load(Ordering::Relaxed)
            );
            (last_done, last_sum) = (done, sum);
            tick += 1;
        }
    }
    let stop_ns = run::now_ns();
    shared
        .drain_until_ns
        .store(stop_ns + DRAIN_NS_MAX, Ordering::Relaxed);
    shared.stop.store(true, Ordering::Relaxed);
    let mut hist = run::new_histogram();
    let (mut errors, mut first_error, mut redirects, mut unfinished, mut last) =
        (0, None, 0, 0, stop_ns);
    let mut slow = Vec::new();
    for h in handles {
        let r = h
            .join()
            .map_err(|_| "a client thread panicked".to_string())?;
        let _ = hist.add(&r.hist);
        slow.extend(r.slow);
        errors += r.errors;
        redirects += r.redirects;
        unfinished += r.unfinished;
        if o.requests.is_some() || o.rate.is_some() {
            last = last.max(r.last_reply_ns);
        }
        if first_error.is_none() {
            first_error = r.first_error;
        }
    }
    if o.requests.is_some() {
        last = last.min(run::now_ns());
    }
    if let Some(path) = &o.slow_log {
        std::fs::write(path, slow_log(slow)).map_err(|e| format!("{}: {}", path, e))?;
    }
    let cpu1 = if o.server_cpu {
        server_cpu_secs(&o, &topo.nodes)
    } else {
        None
    };
    let requests = hist.len();
    let cpu_us_per_req = match (cpu0, cpu1) {
        (Some(a), Some(b)) if requests > 0 => Some((b - a) * 1e6 / requests as f64),
        _ => None,
    };
    Ok(RunResult {
        label: label.to_string(),
        target: format!("{}:{}", host, port),
        mode: mode(&o),
        requests,
        errors,
        first_error,
        redirects,
        unfinished,
        elapsed_s: last.saturating_sub(t0) as f64 / 1e9,
        hist,
        cpu_us_per_req,
    })
}

/// Folds the rounds of one target into one result: histograms added, throughput and CPU per
/// request as medians over the rounds.
fn merge(mut rs: Vec<RunResult>, i: usize, target: &str, o: &Opts) -> RunResult {
    let median = |mut v: Vec<f64>| -> Option<f64> {
        v.retain(|x| x.is_finite());
        v.sort_by(|a, b| a.total_cmp(b));
        v.get(v.len() / 2).copied()
    };
    let rps = median(rs.iter().map(|r| r.rps()).collect()).unwrap_or(0.0);
    let cpu = median(rs.iter().filter_map(|r| r.cpu_us_per_req).collect());
    let mut first = rs.remove(0);
    for r in rs {
        let _ = first.hist.add(&r.hist);
        first.errors += r.errors;
        first.redirects += r.redirects;
        first.unfinished += r.unfinished;
    }
    first.requests = first.hist.len();
    // Keep the median throughput: elapsed scaled so that requests / elapsed = rps.
    first.elapsed_s = if rps > 0.0 {
        first.requests as f64 / rps
    } else {
        0.0
    };
    first.cpu_us_per_req = cpu;
    first.label = match (&o.label, o.compare.is_some()) {
        (Some(l), false) => l.clone(),
        (_, true) => format!("{} {}", if i == 0 { "A" } else { "B" }, target),
        (None, false) => target.to_string(),
    };
    first
}

fn print_ratios(f: &[RunResult]) {
    let (Some(a), Some(b)) = (f.first(), f.get(1)) else {
        return;
    };
    println!();
    println!("{}", report::table_header());
    println!("{}", report::table_row(a));
    println!("{}", report::table_row(b));
    let mut line = format!(
        "{:<16} {:>10} {:>11.3} {:>9.3}",
        "B/A",
        "",
        b.rps() / a.rps(),
        { b.mean_us() / a.mean_us() }
    );
    for (p, _) in report::PERCENTILES {
        line.push_str(&format!(" {:>9.3}", b.pct_us(*p) / a.pct_us(*p)));
    }
    let cpu = match (a.cpu_us_per_req, b.cpu_us_per_req) {
        (Some(x), Some(y)) if x > 0.0 => format!("{:.3}", y / x),
        _ => "-".into(),
    };
    line.push_str(&format!(" {:>9.3} {:>10}", b.max_us() / a.max_us(), cpu));
    println!("{}", line);
}

fn write_outputs(o: &Opts, finals: &[RunResult]) -> Result<(), String> {
    let write = |path: &str, text: &str| -> Result<(), String> {
        if path == "-" {
            print!("{}", text);
            Ok(())
        } else {
            std::fs::write(path, text).map_err(|e| format!("{}: {}", path, e))
        }
    };
    if let Some(path) = &o.json {
        let text = if finals.len() == 1 {
            report::json(&finals[0])
        } else {
            let runs: Vec<String> = finals.iter().map(report::json).collect();
            format!("{{\"runs\":[{}]}}", runs.join(","))
        };
        write(path, &(text + "\n"))?;
    }
    if let Some(path) = &o.hdr {
        for (i, r) in finals.iter().enumerate() {
            let p = if finals.len() == 1 {
                path.clone()
            } else {
                let stem = path.strip_suffix(".hdr").unwrap_or(path);
                format!("{}-{}.hdr", stem, if i == 0 { "A" } else { "B" })
            };
            write(&p, &report::percentile_distribution(&r.hist))?;
        }
    }
    if let Some(path) = &o.svg {
        let all: Vec<report::Series> = finals
            .iter()
            .map(|r| report::series(&r.label, &r.hist))
            .collect();
        write(
            path,
            &report::svg(&format!("latency by percentile, {}", mode(o)), &all),
        )?;
    }
    Ok(())
}
