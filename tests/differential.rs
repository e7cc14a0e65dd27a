//! Differential testing: the same seeded random command sequence goes to Debian's redis-server
//! and to shardis, and every reply must be identical (errors included), as judged by each
//! command's `Check` (see `diff/mod.rs`).
//!
//! Knobs (environment):
//! - `SHARDIS_SEED`: reproduce a run (every run prints its seed first).
//! - `SHARDIS_DIFF_COMMANDS`: commands per shardis run (default 200000).
//! - `SHARDIS_DIFF_SELF_COMMANDS`: commands of the redis-against-redis run (default 20000).
//! - `SHARDIS_DIFF_FAMILIES`: comma-separated families to generate (default all; see
//!   `diff::FAMILIES`), to narrow a failure down.
//! - `SHARDIS_DIFF_STATS`: when set, print how often each command succeeded and failed.
//!
//! On the first difference the test prints the seed, the command's index, the command, both
//! replies and the commands before it, and fails. After the last command the whole keyspace of
//! the databases used is compared too, so a divergence no reply showed is still caught.

mod common;
mod diff;

use common::{env_usize, rng, show_command, show_short, RespConn, ServerKind, TestServer};
use diff::compare;
use std::collections::{BTreeMap, VecDeque};
use std::time::Instant;

/// Commands shown before the failing one.
const HISTORY_LEN: usize = 20;
/// Bytes of a reply shown in the history.
const HISTORY_REPLY_BYTES: usize = 80;

#[test]
fn differential_redis_against_itself() {
    let commands = env_usize("SHARDIS_DIFF_SELF_COMMANDS", 20_000);
    run(
        "differential_redis_against_itself",
        ServerKind::Redis,
        &[],
        commands,
    );
}

#[test]
fn differential_shardis_one_shard() {
    let commands = env_usize("SHARDIS_DIFF_COMMANDS", 200_000);
    run(
        "differential_shardis_one_shard",
        ServerKind::Shardis,
        &["--shards", "1"],
        commands,
    );
}

#[test]
fn differential_shardis_four_shards() {
    let commands = env_usize("SHARDIS_DIFF_COMMANDS", 200_000);
    run(
        "differential_shardis_four_shards",
        ServerKind::Shardis,
        &["--shards", "4"],
        commands,
    );
}

/// The families named in `SHARDIS_DIFF_FAMILIES`, or none (meaning all).
fn families_from_env() -> Vec<String> {
    match std::env::var("SHARDIS_DIFF_FAMILIES") {
        Ok(list) => list
            .split(',')
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .collect(),
        Err(_) => Vec::new(),
    }
}

/// What a run has seen so far: the last commands, and counts for the summary.
#[derive(Default)]
struct Log {
    history: VecDeque<String>,
    error_replies: usize,
    /// Per command name: replies that were not errors, and errors.
    stats: BTreeMap<String, (usize, usize)>,
}

impl Log {
    fn record(&mut self, index: usize, cmd: &diff::Cmd, reply: &[u8]) {
        let is_error = reply.first() == Some(&b'-');
        self.error_replies += usize::from(is_error);
        let mut name = String::from_utf8_lossy(&cmd.args[0]).to_uppercase();
        if name.starts_with("QQ") || name.len() > 20 {
            name = "(unknown command)".into();
        }
        let entry = self.stats.entry(name).or_default();
        *if is_error { &mut entry.1 } else { &mut entry.0 } += 1;
        if self.history.len() == HISTORY_LEN {
            self.history.pop_front();
        }
        self.history.push_back(format!(
            "#{index}: {}  ->  {}",
            show_command(&cmd.args),
            show_short(reply, HISTORY_REPLY_BYTES)
        ));
    }

    fn print_stats(&self) {
        for (name, (ok, errors)) in &self.stats {
            println!("{name:>16}: {ok:>7} ok {errors:>7} errors");
        }
    }
}

/// Runs `commands` generated commands on redis-server (first) and `candidate` (second).
fn run(test: &str, candidate: ServerKind, candidate_args: &[&str], commands: usize) {
    let seed = rng::seed(test);
    let reference = TestServer::start(ServerKind::Redis, &[]);
    let tested = TestServer::start(candidate, candidate_args);
    let (mut a, mut b) = (reference.conn(), tested.conn());
    let mut generator = diff::Gen::new(seed, &families_from_env());
    let mut log = Log::default();
    let started = Instant::now();
    let servers = format!("{} {}", candidate.name(), candidate_args.join(" "));
    let failure = |index: usize, command: String, log: &Log, what: &str| -> ! {
        let history: Vec<&str> = log.history.iter().map(|s| s.as_str()).collect();
        fail(
            &Failure {
                test,
                seed,
                index,
                command,
                servers: &servers,
                history,
            },
            what,
        )
    };
    for index in 0..commands {
        let cmd = generator.next(index as u64);
        match compare::run(&cmd, &mut a, &mut b) {
            Ok(verdict) if verdict.same => log.record(index, &cmd, &verdict.a),
            Ok(verdict) => {
                let keyspace = describe_current_db_difference(&mut a, &mut b, candidate.name());
                let what = format!(
                    "replies differ ({:?})\n  redis:   {}\n  {}: {}\n  {keyspace}",
                    cmd.check,
                    common::show(&verdict.a),
                    candidate.name(),
                    common::show(&verdict.b)
                );
                failure(index, show_command(&cmd.args), &log, &what);
            }
            Err(e) => {
                tested.assert_alive();
                let what = format!("connection failure: {e}");
                failure(index, show_command(&cmd.args), &log, &what);
            }
        }
    }
    tested.assert_alive();
    if let Err(e) = compare_keyspaces(&mut a, &mut b) {
        failure(
            commands,
            "(keyspaces compared after the last command)".into(),
            &log,
            &e,
        );
    }
    if std::env::var_os("SHARDIS_DIFF_STATS").is_some() {
        log.print_stats();
    }
    println!(
        "{test}: {commands} commands ({} answered with an error), identical replies and \
         keyspaces, in {:.1?}",
        log.error_replies,
        started.elapsed()
    );
}

/// What a failure report says.
struct Failure<'a> {
    test: &'a str,
    seed: u64,
    index: usize,
    command: String,
    /// The server compared with redis-server, and its arguments.
    servers: &'a str,
    history: Vec<&'a str>,
}

fn fail(f: &Failure, what: &str) -> ! {
    panic!(
        "{test}: difference at command #{index} (seed {seed}, reproduce with \
         SHARDIS_SEED={seed}; servers: redis vs {servers})\n  command: {command}\n  \
         {what}\n--- the {n} commands before it (with the common reply) ---\n{}\n---",
        f.history.join("\n"),
        test = f.test,
        index = f.index,
        seed = f.seed,
        servers = f.servers,
        command = f.command,
        n = f.history.len(),
    )
}

/// Compares every key of the databases the generator uses: names, types, values and whether
/// they expire (TTLs within tolerance).
fn compare_keyspaces(a: &mut RespConn, b: &mut RespConn) -> Result<(), String> {
    for db in 0..diff::DBS {
        let db = db.to_string();
        for conn in [&mut *a, &mut *b] {
            let reply = conn.cmd(&[b"SELECT", db.as_bytes()]);
            if reply != b"+OK\r\n" {
                return Err(format!("SELECT {db} answered {}", common::show(&reply)));
            }
        }
        let mut names = Vec::new();
        for conn in [&mut *a, &mut *b] {
            let mut keys = keys_of(conn)?;
            keys.sort();
            names.push(keys);
        }
        if names[0] != names[1] {
            return Err(format!(
                "db {db}: KEYS * differ:\n  redis: {:?}\n  other: {:?}",
                names[0], names[1]
            ));
        }
        for key in &names[0] {
            for (command, tolerance) in [("TYPE", None), ("GET", None), ("PTTL", Some(5000))] {
                let check = match tolerance {
                    Some(tolerance) => diff::Check::Near { tolerance },
                    None => diff::Check::Exact,
                };
                let cmd = diff::Cmd {
                    args: vec![command.into(), key.clone()],
                    check,
                };
                let verdict = compare::run(&cmd, a, b)?;
                if !verdict.same {
                    return Err(format!(
                        "db {db}: {} differs: redis {} vs {}",
                        show_command(&cmd.args),
                        common::show(&verdict.a),
                        common::show(&verdict.b)
                    ));
                }
            }
        }
    }
    Ok(())
}

fn keys_of(conn: &mut RespConn) -> Result<Vec<Vec<u8>>, String> {
    let raw = conn.cmd(&[b"KEYS", b"*"]);
    let reply = common::decode(&raw).map_err(|e| format!("KEYS *: {e}"))?;
    let items = reply
        .as_array()
        .ok_or_else(|| format!("KEYS * answered {reply:?}"))?;
    items
        .iter()
        .map(|k| {
            k.as_bytes()
                .map(<[u8]>::to_vec)
                .ok_or_else(|| format!("KEYS item {k:?}"))
        })
        .collect()
}

/// For a failure report: the keys of the current database that only one server has, with
/// their TTLs. Best effort: a connection failure here is reported as text.
fn describe_current_db_difference(a: &mut RespConn, b: &mut RespConn, other: &str) -> String {
    let (keys_a, keys_b) = match (keys_of(a), keys_of(b)) {
        (Ok(x), Ok(y)) => (x, y),
        (x, y) => return format!("(could not list keys: {:?} / {:?})", x.err(), y.err()),
    };
    let mut lines = Vec::new();
    for (name, keys, others, conn) in [
        ("redis", &keys_a, &keys_b, &mut *a),
        (other, &keys_b, &keys_a, &mut *b),
    ] {
        for key in keys.iter().filter(|k| !others.contains(k)) {
            let pttl = conn.cmd(&[b"PTTL", key]);
            lines.push(format!(
                "only {name} has key {} (PTTL {})",
                common::show(key),
                common::show(&pttl)
            ));
        }
    }
    if lines.is_empty() {
        "both servers have the same key names in the current database".into()
    } else {
        lines.join("\n  ")
    }
}
