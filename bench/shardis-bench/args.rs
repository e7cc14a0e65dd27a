//! Command-line options of shardis-bench, parsed by hand (no argument-parsing crate: the
//! binary keeps its dependencies to `hdrhistogram` and `libc`).

use crate::workload::{KeyDist, SizeDist};

pub const USAGE: &str = "\
shardis-bench: a latency benchmark for any RESP server (shardis, Redis, Valkey)

usage: shardis-bench [options]
 connection:
  -h, --host HOST          server host (127.0.0.1)
  -p, --port PORT          server port (6379)
  -a, --auth PASSWORD      AUTH password   --user NAME   ACL user for AUTH
      --db N               SELECT this database (0)
      --resp 2|3           protocol (2); 3 sends HELLO 3
      --cluster            cluster mode: route by slot (CLUSTER SLOTS), follow MOVED/ASK
 load:
  -c, --connections N      connections in all (50)
      --threads N          client threads (1); connections are spread over them
  -P, --pipeline N         requests in flight per connection (1)
      --batches            closed loop as redis-benchmark: send -P requests, wait for all
                           their replies, and count each one's latency up to the batch's
                           first read (for calibrating against redis-benchmark)
  -d, --duration SECS      measured duration (10) ...
  -n, --requests N         ... or a request count (overrides --duration)
      --warmup SECS        unmeasured warm-up before measuring (0)
      --rate R             open loop: R requests/s in all (default: closed loop)
      --arrival uniform|poisson   open-loop inter-arrival times (uniform)
 workload:
  -t, --tests LIST         get, set, or a mix: --ratio SET:GET (e.g. 1:9)
      --ratio S:G          SET:GET mix by ratio
      --command TEMPLATE   any command; __key__ is a random key, __data__ a value,
                           __int__ a random integer in the keyspace (repeatable; round robin)
  -r, --keyspace N         distinct keys (100000)
      --key-prefix P       key prefix (key:)
      --key-dist D         uniform | zipf:THETA (0<THETA<1) | sequential | gaussian[:SIGMA]
                           (SIGMA as a fraction of the keyspace, 0.1)
  -s, --value-size D       N | MIN-MAX (uniform) | N:W,N:W,... (weighted) bytes (3)
      --seed N             random seed (printed; runs are reproducible)
 output:
      --json FILE          results as JSON (- for stdout)
      --hdr FILE           HdrHistogram percentile distribution (values in ms)
      --slow-log FILE      every request slower than --slow-ms, one a line: the Unix time
                           it was due (s) and its latency (ms), in order of due time
      --slow-ms MS         threshold of --slow-log (1)
      --svg FILE           SVG plot of latency by percentile (every run overlaid)
      --plot OUT.svg FILES...  only plot these .hdr files overlaid, then exit
      --label NAME         name of this run in outputs
      --no-progress        no per-second progress line
      --no-server-cpu      do not read INFO cpu before and after
      --compare HOST:PORT  run the same workload against both servers, A B A B..., with ratios
      --rounds N           rounds per server with --compare (2)
      --help
";

#[derive(Clone, Debug)]
pub struct Opts {
    pub host: String,
    pub port: u16,
    pub auth: Option<String>,
    pub user: Option<String>,
    pub db: u32,
    pub resp: u8,
    pub cluster: bool,
    pub connections: usize,
    pub threads: usize,
    pub pipeline: usize,
    /// redis-benchmark's lock-step pipelining and first-read latency (`--batches`).
    pub batches: bool,
    pub duration_secs: f64,
    pub requests: Option<u64>,
    pub warmup_secs: f64,
    pub rate: Option<f64>,
    pub poisson: bool,
    /// Templates; `set_ratio`/`get_ratio` build the GET/SET mix.
    pub templates: Vec<String>,
    pub set_ratio: u32,
    pub get_ratio: u32,
    pub keyspace: u64,
    pub key_prefix: String,
    pub key_dist: KeyDist,
    pub value_size: SizeDist,
    pub seed: u64,
    pub json: Option<String>,
    pub hdr: Option<String>,
    pub slow_log: Option<String>,
    pub slow_ms: f64,
    pub svg: Option<String>,
    pub plot: Option<(String, Vec<String>)>,
    pub label: Option<String>,
    pub progress: bool,
    pub server_cpu: bool,
    pub compare: Option<(String, u16)>,
    pub rounds: usize,
}

impl Default for Opts {
    fn default() -> Self {
        Opts {
            host: "127.0.0.1".into(),
            port: 6379,
            auth: None,
            user: None,
            db: 0,
            resp: 2,
            cluster: false,
            connections: 50,
            threads: 1,
            pipeline: 1,
            batches: false,
            duration_secs: 10.0,
            requests: None,
            warmup_secs: 0.0,
            rate: None,
            poisson: false,
            templates: Vec::new(),
            set_ratio: 0,
            get_ratio: 1,
            keyspace: 100_000,
            key_prefix: "key:".into(),
            key_dist: KeyDist::Uniform,
            value_size: SizeDist::Fixed(3),
            seed: 0,
            json: None,
            hdr: None,
            slow_log: None,
            slow_ms: 1.0,
            svg: None,
            plot: None,
            label: None,
            progress: true,
            server_cpu: true,
            compare: None,
            rounds: 2,
        }
    }
}

fn num<T: std::str::FromStr>(flag: &str, v: &str) -> Result<T, String> {
    v.parse()
        .map_err(|_| format!("invalid value '{}' for {}", v, flag))
}

pub fn host_port(v: &str) -> Result<(String, u16), String> {
    let (h, p) = v
        .rsplit_once(':')
        .ok_or_else(|| format!("expected HOST:PORT, got '{}'", v))?;
    Ok((h.to_string(), num("HOST:PORT", p)?))
}

/// Parses the arguments (without the program name). `Ok(None)` means `--help`.
pub fn parse(args: &[String]) -> Result<Option<Opts>, String> {
    let mut o = Opts {
        seed: seed_from_clock(),
        ..Opts::default()
    };
    let mut tests: Option<String> = None;
    let mut i = 0;
    while i < args.len() {
        let a = args[i].as_str();
        if a == "--help" {
            return Ok(None);
        }
        let flags_without_value = ["--cluster", "--no-progress", "--no-server-cpu", "--batches"];
        if flags_without_value.contains(&a) {
            match a {
                "--cluster" => o.cluster = true,
                "--no-progress" => o.progress = false,
                "--batches" => o.batches = true,
                _ => o.server_cpu = false,
            }
            i += 1;
            continue;
        }
        let v = args
            .get(i + 1)
            .ok_or_else(|| format!("{} needs a value", a))?
            .clone();
        i += 2;
        match a {
            "-h" | "--host" => o.host = v,
            "-p" | "--port" => o.port = num(a, &v)?,
            "-a" | "--auth" => o.auth = Some(v),
            "--user" => o.user = Some(v),
            "--db" => o.db = num(a, &v)?,
            "--resp" => o.resp = num(a, &v)?,
            "-c" | "--connections" => o.connections = num(a, &v)?,
            "--threads" => o.threads = num(a, &v)?,
            "-P" | "--pipeline" => o.pipeline = num(a, &v)?,
            "-d" | "--duration" => o.duration_secs = num(a, &v)?,
            "-n" | "--requests" => o.requests = Some(num(a, &v)?),
            "--warmup" => o.warmup_secs = num(a, &v)?,
            "--rate" => o.rate = Some(num(a, &v)?),
            "--arrival" => {
                o.poisson = match v.as_str() {
                    "poisson" => true,
                    "uniform" => false,
                    _ => return Err(format!("unknown arrival '{}'", v)),
                }
            }
            "-t" | "--tests" => tests = Some(v),
            "--ratio" => {
                let (s, g) = v.split_once(':').ok_or("--ratio wants SET:GET")?;
                o.set_ratio = num(a, s)?;
                o.get_ratio = num(a, g)?;
                tests = Some("mix".into());
            }
            "--command" => o.templates.push(v),
            "-r" | "--keyspace" => o.keyspace = num(a, &v)?,
            "--key-prefix" => o.key_prefix = v,
            "--key-dist" => o.key_dist = KeyDist::parse(&v)?,
            "-s" | "--value-size" => o.value_size = SizeDist::parse(&v)?,
            "--seed" => o.seed = num(a, &v)?,
            "--json" => o.json = Some(v),
            "--hdr" => o.hdr = Some(v),
            "--slow-log" => o.slow_log = Some(v),
            "--slow-ms" => o.slow_ms = num(a, &v)?,
            "--svg" => o.svg = Some(v),
            "--plot" => {
                let files = args[i..].to_vec();
                o.plot = Some((v, files));
                i = args.len();
            }
            "--label" => o.label = Some(v),
            "--compare" => o.compare = Some(host_port(&v)?),
            "--rounds" => o.rounds = num(a, &v)?,
            _ => return Err(format!("unknown option '{}' (see --help)", a)),
        }
    }
    match tests.as_deref() {
        None | Some("mix") => {}
        Some(t) => {
            let (mut s, mut g) = (0, 0);
            for part in t.split(',') {
                match part.to_ascii_lowercase().as_str() {
                    "get" => g = 1,
                    "set" => s = 1,
                    other => return Err(format!("unknown test '{}' (get, set)", other)),
                }
            }
            o.set_ratio = s;
            o.get_ratio = g;
        }
    }
    validate(&o)?;
    Ok(Some(o))
}

fn validate(o: &Opts) -> Result<(), String> {
    if o.connections == 0 || o.threads == 0 || o.pipeline == 0 {
        return Err("connections, threads and pipeline must be at least 1".into());
    }
    if o.threads > o.connections {
        return Err("more threads than connections".into());
    }
    if o.keyspace == 0 {
        return Err("keyspace must be at least 1".into());
    }
    if o.resp != 2 && o.resp != 3 {
        return Err("--resp is 2 or 3".into());
    }
    if o.templates.is_empty() && o.set_ratio + o.get_ratio == 0 {
        return Err("empty workload".into());
    }
    if let Some(r) = o.rate {
        if r.is_nan() || r <= 0.0 || r.is_infinite() {
            return Err("--rate must be positive".into());
        }
    }
    Ok(())
}

fn seed_from_clock() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(1)
}
