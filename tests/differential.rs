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
//! - `SHARDIS_DIFF_KNOWN_BUGS`: when set, also generate the cases of known shardis bugs that
//!   are left out by default (`diff::KnownBug`), e.g. to check a fix.
//! - `SHARDIS_DIFF_KEEP_GOING`: report up to this many differences before failing (default
//!   0: fail at the first). After each one both servers are flushed (FLUSHALL), so that one
//!   bug does not echo through the rest of the run; the test still fails at the end.
//!
//! On the first difference the test prints the seed, the command's index, the command, both
//! replies and the commands before it, and fails. After the last command the whole keyspace of
//! the databases used is compared too (names, types, encodings, contents, expiries), so a
//! divergence no reply showed is still caught.
//!
//! Each server gets two connections: the generator's commands go to the first, except those
//! that play another client (touching a watched key, waking a blocked command).

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
    /// Per command name: replies that were not errors, of those how many were null, and
    /// errors.
    stats: BTreeMap<String, (usize, usize, usize)>,
}

impl Log {
    fn record(&mut self, index: usize, cmd: &diff::Cmd, reply: &[u8]) {
        let is_error = reply.first() == Some(&b'-');
        self.error_replies += usize::from(is_error);
        let mut name = String::from_utf8_lossy(&cmd.args[0]).to_uppercase();
        if name.starts_with("QQ") || name.len() > 20 {
            name = "(unknown command)".into();
        }
        let is_null = matches!(reply, b"$-1\r\n" | b"*-1\r\n" | b"_\r\n");
        let entry = self.stats.entry(name).or_default();
        *if is_error { &mut entry.2 } else { &mut entry.0 } += 1;
        entry.1 += usize::from(is_null);
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
        for (name, (ok, nulls, errors)) in &self.stats {
            println!("{name:>16}: {ok:>7} ok ({nulls:>6} null) {errors:>7} errors");
        }
    }
}

/// Runs `commands` generated commands on redis-server (first) and `candidate` (second).
fn run(test: &str, candidate: ServerKind, candidate_args: &[&str], commands: usize) {
    let seed = rng::seed(test);
    if !diff::known_bugs_included() {
        println!(
            "{test}: leaving out the cases of known shardis bugs {:?} (SHARDIS_DIFF_KNOWN_BUGS=1 \
             generates them)",
            diff::KNOWN_BUGS
        );
    }
    let reference = TestServer::start(ServerKind::Redis, &[]);
    let tested = TestServer::start(candidate, candidate_args);
    let mut conns = Conns {
        a: reference.conn(),
        b: tested.conn(),
        a2: reference.conn(),
        b2: tested.conn(),
    };
    let mut generator = diff::Gen::new(seed, &families_from_env());
    let mut log = Log::default();
    let started = Instant::now();
    let servers = format!("{} {}", candidate.name(), candidate_args.join(" "));
    let keep_going = env_usize("SHARDIS_DIFF_KEEP_GOING", 0);
    let mut differences = 0;
    let report = |index: usize, command: String, log: &Log, what: &str| -> String {
        let history: Vec<&str> = log.history.iter().map(|s| s.as_str()).collect();
        failure_report(
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
        let what = match run_one(&cmd, &mut conns, candidate.name(), &mut log, index) {
            Ok(()) => continue,
            Err(what) => what,
        };
        tested.assert_alive();
        let message = report(index, show_command(&cmd.args), &log, &what);
        if differences >= keep_going || what.starts_with("connection failure") {
            panic!("{message}");
        }
        differences += 1;
        println!("{message}");
        if let Err(e) = resynchronise(&mut conns) {
            panic!("{}", report(index, "(resynchronising)".into(), &log, &e));
        }
    }
    tested.assert_alive();
    let end = "(keyspaces compared after the last command)";
    if let Err(e) = leave_transaction(&mut conns.a, &mut conns.b) {
        panic!("{}", report(commands, end.into(), &log, &e));
    }
    if let Err(e) = compare_keyspaces(&mut conns.a, &mut conns.b) {
        panic!("{}", report(commands, end.into(), &log, &e));
    }
    if std::env::var_os("SHARDIS_DIFF_STATS").is_some() {
        log.print_stats();
    }
    assert!(
        differences == 0,
        "{test}: {differences} differences (see above; SHARDIS_DIFF_KEEP_GOING={keep_going})"
    );
    println!(
        "{test}: {commands} commands ({} answered with an error), identical replies and \
         keyspaces, in {:.1?}",
        log.error_replies,
        started.elapsed()
    );
}

/// Two connections to each server: `a` and `a2` to redis-server, `b` and `b2` to the other.
struct Conns {
    a: RespConn,
    b: RespConn,
    a2: RespConn,
    b2: RespConn,
}

/// Runs one command on the pair of connections it names and records it; `Err` describes a
/// difference or a connection failure.
fn run_one(
    cmd: &diff::Cmd,
    conns: &mut Conns,
    other: &str,
    log: &mut Log,
    index: usize,
) -> Result<(), String> {
    let result = match cmd.check {
        diff::Check::Woken(waker) => diff::woken::run(
            cmd,
            waker,
            [&mut conns.a, &mut conns.b],
            [&mut conns.a2, &mut conns.b2],
        ),
        _ => match cmd.conn {
            diff::Conn::Main => compare::run(cmd, &mut conns.a, &mut conns.b),
            diff::Conn::Second => compare::run(cmd, &mut conns.a2, &mut conns.b2),
        },
    };
    let (ca, cb) = match cmd.conn {
        diff::Conn::Main => (&mut conns.a, &mut conns.b),
        diff::Conn::Second => (&mut conns.a2, &mut conns.b2),
    };
    let verdict = match result {
        Ok(verdict) if verdict.same => {
            log.record(index, cmd, &verdict.a);
            return Ok(());
        }
        Ok(verdict) => verdict,
        Err(e) => return Err(format!("connection failure: {e}")),
    };
    let keyspace = describe_current_db_difference(ca, cb, other);
    let note = if verdict.note.is_empty() {
        String::new()
    } else {
        format!("\n  why: {}", verdict.note)
    };
    let second = if cmd.conn == diff::Conn::Second {
        ", on the second connection"
    } else {
        ""
    };
    Err(format!(
        "replies differ ({:?}{second})\n  redis:   {}\n  {other}: {}{note}\n  {keyspace}",
        cmd.check,
        common::show(&verdict.a),
        common::show(&verdict.b)
    ))
}

/// After a difference in `SHARDIS_DIFF_KEEP_GOING` mode: both servers leave any transaction
/// and are flushed, so that later differences are not echoes of this one.
fn resynchronise(conns: &mut Conns) -> Result<(), String> {
    for conn in [&mut conns.a, &mut conns.b] {
        for command in [&b"DISCARD"[..], b"FLUSHALL"] {
            conn.try_send_raw(&common::resp::encode_command(&[command]))
                .map_err(|e| format!("sending: {e}"))?;
            conn.try_read_reply().map_err(|e| format!("reading: {e}"))?;
        }
    }
    Ok(())
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

fn failure_report(f: &Failure, what: &str) -> String {
    format!(
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

/// Ends a transaction the run may have stopped in the middle of, so that the keyspace
/// comparison's commands run instead of being queued. Both servers must answer alike.
fn leave_transaction(a: &mut RespConn, b: &mut RespConn) -> Result<(), String> {
    for command in ["DISCARD", "UNWATCH"] {
        let cmd = diff::Cmd {
            args: vec![command.into()],
            check: diff::Check::Exact,
            conn: diff::Conn::Main,
        };
        let verdict = compare::run(&cmd, a, b)?;
        if !verdict.same {
            return Err(format!(
                "{command}: redis {} vs {}",
                common::show(&verdict.a),
                common::show(&verdict.b)
            ));
        }
    }
    Ok(())
}

/// How the keyspace comparison reads a key's value, by the type the first server reports.
fn value_probes(type_name: &[u8], key: &[u8]) -> Vec<diff::Cmd> {
    let probe = |args: &[&[u8]], check| diff::Cmd {
        args: args.iter().map(|a| a.to_vec()).collect(),
        check,
        conn: diff::Conn::Main,
    };
    let exact = diff::Check::Exact;
    let mut probes = vec![
        probe(&[b"OBJECT", b"ENCODING", key], exact),
        probe(&[b"PTTL", key], diff::Check::Near { tolerance: 5000 }),
    ];
    probes.push(match type_name {
        b"list" => probe(&[b"LRANGE", key, b"0", b"-1"], exact),
        b"hash" => probe(&[b"HGETALL", key], diff::Check::HashOrder { pairs: true }),
        b"set" => probe(&[b"SMEMBERS", key], diff::Check::SortedArray),
        b"zset" => probe(&[b"ZRANGE", key, b"0", b"-1", b"WITHSCORES"], exact),
        b"stream" => probe(&[b"XRANGE", key, b"-", b"+"], exact),
        _ => probe(&[b"GET", key], exact),
    });
    probes
}

/// Compares every key of the databases the generator uses: names, types, encodings, values and
/// whether they expire (TTLs within tolerance).
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
            let type_cmd = diff::Cmd {
                args: vec![b"TYPE".to_vec(), key.clone()],
                check: diff::Check::Exact,
                conn: diff::Conn::Main,
            };
            let mut cmds = vec![type_cmd];
            let mut type_name = None;
            while let Some(cmd) = cmds.pop() {
                let verdict = compare::run(&cmd, a, b)?;
                if !verdict.same {
                    return Err(format!(
                        "db {db}: {} differs: redis {} vs {} {}",
                        show_command(&cmd.args),
                        common::show(&verdict.a),
                        common::show(&verdict.b),
                        verdict.note
                    ));
                }
                if type_name.is_none() {
                    let name = common::decode(&verdict.a).map_err(|e| format!("TYPE: {e}"))?;
                    let name = name.as_bytes().unwrap_or_default().to_vec();
                    cmds = value_probes(&name, key);
                    type_name = Some(name);
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
