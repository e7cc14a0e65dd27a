//! Tests across the module: the command line and config files end to end (with temporary
//! files), Redis 7.0.15's own CONFIG GET output as an oracle for every default, and CONFIG
//! REWRITE round trips on disk.

use super::access::format_get;
use super::directives::{Kind, TABLE};
use super::load::parse_cli_with_stdin;
use super::*;
use std::path::PathBuf;
use std::sync::atomic::AtomicUsize;

/// A directory under the system temp dir, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> TempDir {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let path = std::env::temp_dir().join(format!(
            "shardis-config-test-{}-{}-{n}",
            std::process::id(),
            crate::util::now_us()
        ));
        std::fs::create_dir_all(&path).expect("create temp dir");
        TempDir(std::fs::canonicalize(&path).expect("canonical temp dir"))
    }

    fn file(&self, name: &str, content: &str) -> String {
        let path = self.0.join(name);
        std::fs::write(&path, content).expect("write temp file");
        path.to_string_lossy().into_owned()
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn args(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

fn run_with_stdin(list: &[&str], stdin: &str) -> Result<Config, String> {
    let input = stdin.as_bytes().to_vec();
    match parse_cli_with_stdin(&args(list), &mut || Ok(input.clone()))? {
        CliAction::Run(c) => Ok(c),
        other => Err(format!("unexpected {other:?}")),
    }
}

fn run(list: &[&str]) -> Result<Config, String> {
    run_with_stdin(list, "")
}

fn value(c: &Config, name: &str) -> String {
    c.get(&[name.as_bytes()])
        .into_iter()
        .next()
        .map(|(_, v)| v)
        .unwrap_or_default()
}

fn report(line: usize, text: &str, message: &str) -> String {
    format!(
        "\n*** FATAL CONFIG FILE ERROR (Redis 7.0.15) ***\nReading the configuration file, at \
         line {line}\n>>> '{text}'\n{message}"
    )
}

#[test]
fn matches_redis_config_get_of_defaults() {
    // `redis-server --port 17999` (Debian's 7.0.15), `CONFIG GET *`, sorted.
    let oracle = include_str!("testdata/redis-7.0.15-config-get.tsv");
    let c = Config {
        port: 17999,
        ..Config::default()
    };
    let ours: std::collections::BTreeMap<String, String> = c.get(&[b"*"]).into_iter().collect();
    let mut theirs = std::collections::BTreeMap::new();
    for line in oracle.lines() {
        let (name, v) = line.split_once('\t').expect("name<TAB>value");
        theirs.insert(name.to_string(), v.to_string());
    }
    assert_eq!(theirs.len(), 192);
    for (name, expected) in &theirs {
        let got = ours
            .get(name)
            .unwrap_or_else(|| panic!("{name} missing from CONFIG GET *"));
        if name != "dir" {
            assert_eq!(got, expected, "{name}");
        }
    }
    // Exactly Redis's set: shardis's own directives are hidden, answered only by name.
    let extra: Vec<&String> = ours.keys().filter(|k| !theirs.contains_key(*k)).collect();
    assert!(extra.is_empty(), "{extra:?}");
    let named: Vec<(String, String)> = c.get(&[b"shards", b"io-backend"]);
    assert_eq!(named.len(), 2, "{named:?}");
}

#[test]
fn typed_defaults_agree_with_the_table() {
    let c = Config::default();
    assert!(c.extras.0.is_empty());
    for d in TABLE {
        let expected = match &d.kind {
            Kind::Bool { default, .. } => if *default { "yes" } else { "no" }.to_string(),
            Kind::Num { default, form, .. } => match form {
                directives::Form::Octal => format!("{default:o}"),
                _ => default.to_string(),
            },
            Kind::Enum { items, default, .. } => {
                access::enum_name(items, *default, d.flags & directives::MULTI_ARG != 0)
            }
            Kind::Str { default, .. } => default.unwrap_or_default().to_string(),
            Kind::Special(_) => continue,
        };
        assert_eq!(format_get(&c, d), expected, "{}", d.name);
    }
    assert_eq!(c.unimplemented_in_use(), Vec::<String>::new());
}

#[test]
fn no_arguments_means_defaults() {
    assert_eq!(run(&[]), Ok(Config::default()));
}

#[test]
fn version_and_help_are_distinct_actions() {
    let no_stdin = &mut || Ok(Vec::new());
    for (flag, action) in [
        ("-v", CliAction::Version),
        ("--version", CliAction::Version),
        ("-h", CliAction::Help),
        ("--help", CliAction::Help),
    ] {
        assert_eq!(
            parse_cli_with_stdin(&args(&[flag, "--port", "x"]), no_stdin),
            Ok(action)
        );
    }
    assert_eq!(Config::from_args(&args(&["-v"])), Err(version_text()));
}

#[test]
fn file_then_options_override() {
    let dir = TempDir::new();
    let file = dir.file(
        "a.conf",
        "# comment\n\n  port 7000  \nsave 900 1\nMAXMEMORY 1mb\r\nrequirepass \"a b\\x41\"\n\
         hash-max-ziplist-entries 100\nlogfile ''\nslaveof 10.0.0.1 6380\n",
    );
    let c = run(&[
        &file, "--port", "7001", "--save", "100", "100", "--shards", "4",
    ])
    .expect("ok");
    assert_eq!(c.port, 7001);
    assert_eq!(value(&c, "save"), "900 1 100 100");
    assert_eq!(c.maxmemory, 1 << 20);
    assert_eq!(c.requirepass.as_deref(), Some(&b"a bA"[..]));
    assert_eq!(c.hash_max_listpack_entries, 100);
    assert_eq!(c.shards, 4);
    assert_eq!(
        c.replicaof,
        Some(ReplicaOf {
            host: "10.0.0.1".into(),
            port: 6380
        })
    );
    assert_eq!(c.config_file.as_deref(), Some(file.as_str()));

    let c = run(&[&file, "--save", ""]).expect("ok");
    assert!(c.save.is_empty());
    let c = run(&[&file, "--save", "--loglevel", "verbose"]).expect("ok");
    assert!(c.save.is_empty());
    assert_eq!(c.loglevel, "verbose");
    let c = run(&["--loglevel", "verbose", "--save"]).expect("ok");
    assert!(c.save.is_empty());
    let c = run(&["--save", "100", "100"]).expect("ok");
    assert_eq!(value(&c, "save"), "100 100");
}

#[test]
fn command_line_forms_redis_accepts() {
    let c = run(&["--maxmemory 700mb", "--maxmemory-policy volatile-lru"]).expect("ok");
    assert_eq!(
        (c.maxmemory, c.maxmemory_policy),
        (734_003_200, MaxmemoryPolicy::VolatileLru)
    );
    let c = run(&["--maxmemory '700mb'", "--maxmemory-policy 'volatile-lru'"]).expect("ok");
    assert_eq!(c.maxmemory, 734_003_200);
    let c = run(&[
        "--proc-title-template",
        "--my--title--template",
        "--loglevel",
        "verbose",
    ])
    .expect("ok");
    assert_eq!(value(&c, "proc-title-template"), "--my--title--template");
    let c = run(&[
        "--proc-title-template",
        "--save",
        "--save",
        "",
        "--loglevel",
        "verbose",
    ])
    .expect("ok");
    assert_eq!(
        (value(&c, "proc-title-template").as_str(), c.save.len()),
        ("--save", 0)
    );
    let c = run(&["--shutdown-on-sigint", "nosave", "force", "now"]).expect("ok");
    assert_eq!(value(&c, "shutdown-on-sigint"), "nosave now force");
    let c = run(&["--shutdown-on-sigterm", "nosave force"]).expect("ok");
    assert_eq!(value(&c, "shutdown-on-sigterm"), "nosave force");
    let c = run(&["--replicaof", "127.0.0.1", "6380", "--io-backend", "epoll"]).expect("ok");
    assert_eq!(value(&c, "slaveof"), "127.0.0.1 6380");
    assert_eq!(c.io_backend, IoBackend::Epoll);
    let c = run(&["--sentinel", "--port", "26379"]).expect("ok");
    assert!(c.sentinel_mode);
}

#[test]
fn command_line_errors_like_redis() {
    let e = |list: &[&str]| run(list).err().unwrap_or_default();
    let int = "argument couldn't be parsed into an integer";
    let wrong = "wrong number of arguments";
    assert_eq!(e(&["--port", "abc"]), report(2, "port \"abc\"", int));
    assert_eq!(e(&["--port"]), report(2, "port", wrong));
    assert_eq!(
        e(&["--port", "6380", "--loglevel"]),
        report(3, "loglevel", wrong)
    );
    assert_eq!(
        e(&["--port", "6379", "6380"]),
        report(2, "port \"6379\" \"6380\"", wrong)
    );
    let both = "port \"--loglevel\" \"verbose\"";
    assert_eq!(
        e(&["--port", "--loglevel", "verbose"]),
        report(2, both, wrong)
    );
    assert_eq!(
        e(&["--port", "--bla", "--loglevel", "verbose"]),
        report(2, "port \"--bla\"", int)
    );
    let levels = "argument(s) must be one of the following: debug, verbose, notice, warning";
    let log = ["--logfile", "--my--log--file", "--loglevel", "--bla"];
    let dir = TempDir::new();
    let log_path = dir.0.join("--my--log--file");
    let log_arg = log_path.to_string_lossy().into_owned();
    assert_eq!(
        e(&[log[0], &log_arg, log[2], log[3]]),
        report(3, "loglevel \"--bla\"", levels)
    );
    let shutdown = "argument(s) must be one of the following: default, save, nosave, now, force";
    assert_eq!(
        e(&["--shutdown-on-sigint"]),
        report(2, "shutdown-on-sigint", shutdown)
    );
    let replica = "replicaof \"127.0.0.1\" \"abc\"";
    assert_eq!(
        e(&["--replicaof", "127.0.0.1", "abc"]),
        report(2, replica, "Invalid master port")
    );
    let replica = "replicaof \"--127.0.0.1\"";
    assert_eq!(
        e(&["--replicaof", "--127.0.0.1", "--abc"]),
        report(2, replica, wrong)
    );
    let bad = "Bad directive or wrong number of arguments";
    assert_eq!(e(&["--foo", "bar"]), report(2, "foo \"bar\"", bad));
    assert_eq!(
        e(&["--save", "900"]),
        report(2, "save \"900\"", "Invalid save parameters")
    );
    assert_eq!(
        e(&["--daemonize", "maybe"]),
        report(2, "daemonize \"maybe\"", "argument must be 'yes' or 'no'")
    );
    let shards = "argument must be between 0 and 1024 inclusive";
    assert_eq!(
        e(&["--shards", "5000"]),
        report(2, "shards \"5000\"", shards)
    );
    let io = "argument(s) must be one of the following: auto, uring, epoll";
    assert_eq!(
        e(&["--io-backend", "kqueue"]),
        report(2, "io-backend \"kqueue\"", io)
    );
    assert_eq!(
        e(&["--dir", "/nonexistent-shardis"]),
        report(
            2,
            "dir \"/nonexistent-shardis\"",
            "No such file or directory"
        )
    );
    let cluster =
        "\n*** FATAL CONFIG FILE ERROR (Redis 7.0.15) ***\nreplicaof directive not allowed \
                   in cluster mode";
    assert_eq!(
        e(&["--cluster-enabled", "yes", "--replicaof", "a", "1"]),
        cluster
    );
    let logfile = "\n*** FATAL CONFIG FILE ERROR (Redis 7.0.15) ***\nCan't open the log file: No \
                   such file or directory";
    assert_eq!(e(&["--logfile", "/nonexistent-shardis/x.log"]), logfile);
    let sentinel = "sentinel directive while not in sentinel mode";
    assert_eq!(
        e(&["--sentinel-x", "1"]),
        report(2, "sentinel-x \"1\"", bad)
    );
    let dir2 = TempDir::new();
    let f = dir2.file("s.conf", "sentinel monitor m 127.0.0.1 6379 2\n");
    assert_eq!(
        e(&[&f]),
        report(1, "sentinel monitor m 127.0.0.1 6379 2", sentinel)
    );
}

#[test]
fn file_errors_carry_line_numbers() {
    let dir = TempDir::new();
    let three = dir.file("three.conf", "port 1\n# c\n\nport x y\n");
    let wrong = "wrong number of arguments";
    assert_eq!(run(&[&three]), Err(report(4, "port x y", wrong)));
    let two = dir.file("two.conf", "port 1\nport 2\n");
    let int = "argument couldn't be parsed into an integer";
    assert_eq!(
        run(&[&two, "--port", "abc"]),
        Err(report(4, "port \"abc\"", int))
    );
    let no_newline = dir.file("nonl.conf", "port 1");
    assert_eq!(
        run(&[&no_newline, "--port", "abc"]),
        Err(report(2, "port \"abc\"", int))
    );
    let quotes = dir.file("q.conf", "port 1\nrequirepass \"abc\n");
    let unbalanced = "Unbalanced quotes in configuration line";
    assert_eq!(
        run(&[&quotes]),
        Err(report(2, "requirepass \"abc", unbalanced))
    );
    let units = dir.file("u.conf", "maxmemory 10xb\n");
    let memory = "argument must be a memory value";
    assert_eq!(run(&[&units]), Err(report(1, "maxmemory 10xb", memory)));
    let missing = dir.0.join("missing.conf").to_string_lossy().into_owned();
    assert_eq!(
        run(&[&missing]),
        Err(format!(
            "Fatal error, can't open config file '{missing}': No such file or directory"
        ))
    );
    assert_eq!(
        run_with_stdin(&["-", "--port", "abc"], "port 77\n"),
        Err(report(3, "port \"abc\"", int))
    );
    let module = "Module config specified without value";
    let m = dir.file("m.conf", "mymodule.opt\n");
    assert_eq!(run(&[&m]), Err(report(1, "mymodule.opt", module)));
}

#[test]
fn stdin_and_includes() {
    let c = run_with_stdin(&["-", "--hz", "20"], "port 7777\nhz 5\n").expect("ok");
    assert_eq!((c.port, c.hz, c.config_file.clone()), (7777, 20, None));
    let c = run_with_stdin(&["--hz", "20", "-"], "port 7778\n").expect("ok");
    assert_eq!(c.port, 7778);

    let dir = TempDir::new();
    std::fs::create_dir(dir.0.join("conf.d")).expect("mkdir");
    dir.file("conf.d/b.conf", "maxmemory 2mb\n");
    dir.file("conf.d/a.conf", "maxmemory 1mb\nhz 30\n");
    dir.file("conf.d/.hidden.conf", "hz 40\n");
    let inc = dir.file("inc.conf", "port 7100\n\nport oops\n");
    let pattern = dir.0.join("conf.d/*.conf").to_string_lossy().into_owned();
    let empty = dir.0.join("none.d/*.conf").to_string_lossy().into_owned();
    let main = dir.file(
        "main.conf",
        &format!("include {pattern}\ninclude {empty}\nport 7000\n"),
    );
    let c = run(&[&main]).expect("ok");
    assert_eq!((c.maxmemory, c.hz, c.port), (2 << 20, 30, 7000));

    let bad = dir.file("bad.conf", &format!("port 7000\ninclude {inc}\n"));
    let int = "argument couldn't be parsed into an integer";
    assert_eq!(run(&[&bad]), Err(report(3, "port oops", int)));
    let missing = dir.0.join("nope.conf").to_string_lossy().into_owned();
    let gone = dir.file("gone.conf", &format!("include {missing}\n"));
    let expected =
        format!("Fatal error, can't open config file '{missing}': No such file or directory");
    assert_eq!(run(&[&gone]), Err(expected));
    let looping = dir.0.join("loop.conf").to_string_lossy().into_owned();
    dir.file("loop.conf", &format!("include {looping}\n"));
    assert!(run(&[&looping])
        .err()
        .unwrap_or_default()
        .contains("too many levels of include"));
}

#[test]
fn relative_paths_follow_dir() {
    let dir = TempDir::new();
    std::fs::create_dir(dir.0.join("data")).expect("mkdir");
    dir.file("data/extra.conf", "port 7200\n");
    let main = dir.file(
        "main.conf",
        &format!("dir {}\ndir data\ninclude extra.conf\n", dir.0.display()),
    );
    let c = run(&[&main]).expect("ok");
    assert_eq!(c.dir, dir.0.join("data").to_string_lossy());
    assert_eq!(c.port, 7200);
    assert_eq!(value(&c, "dir"), c.dir);
}

#[test]
fn lines_for_other_subsystems_are_kept() {
    let dir = TempDir::new();
    let file = dir.file(
        "k.conf",
        "rename-command FLUSHALL \"\"\nuser alice on >pw ~* +@all\nloadmodule /m.so a b\n\
         mod.opt 1 2\nmod.opt 3\nlist-max-ziplist-entries 5\nlua-replicate-commands yes\n\
         maxmemory 1mb\nio-threads 4\n",
    );
    let c = run(&[&file]).expect("ok");
    assert_eq!(c.rename_commands.len(), 1);
    let rename = &c.rename_commands[0];
    assert_eq!(
        (rename.args.as_slice(), rename.line_number),
        (&args(&["rename-command", "FLUSHALL", ""])[..], 1)
    );
    assert_eq!(
        rename.fatal_error("No such command in rename-command"),
        report(
            1,
            "rename-command FLUSHALL \"\"",
            "No such command in rename-command"
        )
    );
    assert_eq!(
        c.acl_users[0].args,
        args(&["user", "alice", "on", ">pw", "~*", "+@all"])
    );
    assert_eq!(c.loadmodules[0].line_number, 3);
    assert_eq!(c.module_configs.len(), 1);
    assert_eq!(c.module_configs[0].args, args(&["mod.opt", "3"]));
    assert_eq!(c.unimplemented_in_use(), args(&["loadmodule", "mod.opt"]));
}

#[test]
fn rewrite_round_trip_on_disk() {
    let dir = TempDir::new();
    let original = "# my settings\nport 7000\nsave 900 1\nsave 300 10\n\nslave-read-only yes\n\
                    include /dev/null\nrename-command DEBUG \"\"\n";
    let file = dir.file("r.conf", original);
    let c = run(&[&file]).expect("ok");
    let pairs: [(&[u8], &[u8]); 6] = [
        (b"maxmemory", b"3mb"),
        (b"save", b"60 5"),
        (b"notify-keyspace-events", b"KEA"),
        (b"replica-read-only", b"no"),
        (b"requirepass", b"s3cr\"et"),
        (b"client-output-buffer-limit", b"pubsub 1mb 0 0"),
    ];
    let changed = c.set(&pairs).expect("valid");
    changed.rewrite().expect("rewrite");
    let text = std::fs::read_to_string(&file).expect("read back");
    let expected_start = "# my settings\nport 7000\nsave 60 5\n\nreplica-read-only no\n\
                          include /dev/null\nrename-command DEBUG \"\"\n\n\
                          # Generated by CONFIG REWRITE\n";
    assert!(text.starts_with(expected_start), "{text}");
    assert!(text.contains("\nrequirepass \"s3cr\\\"et\"\n"), "{text}");
    assert!(text.contains("\nmaxmemory 3mb\n"), "{text}");
    assert!(text.contains(&format!(
        "\ndir {}\n",
        values::repr(changed.dir_for_tests().as_bytes())
    )));
    let reread = run(&[&file]).expect("rewritten file parses");
    assert_eq!(reread.get(&[b"*"]), changed.get(&[b"*"]));
    // A second rewrite keeps the values (Redis may move `client-output-buffer-limit` lines
    // around between rewrites; so do we), and no temporary file is left behind.
    reread.rewrite().expect("rewrite again");
    assert_eq!(
        run(&[&file]).expect("parses").get(&[b"*"]),
        changed.get(&[b"*"])
    );
    let leftovers: Vec<_> = std::fs::read_dir(&dir.0)
        .expect("ls")
        .filter_map(Result::ok)
        .collect();
    assert_eq!(leftovers.len(), 1);
    // Everything at its default and force-all still parse back to the same values.
    changed.rewrite_with(true).expect("force all");
    let forced = run(&[&file]).expect("parses");
    assert_eq!(forced.get(&[b"*"]), changed.get(&[b"*"]));
}

#[test]
fn rewrite_needs_a_config_file() {
    let c = Config::default();
    assert_eq!(
        c.rewrite(),
        Err("ERR The server is running without a config file".to_string())
    );
    let dir = TempDir::new();
    let c = Config {
        config_file: Some(dir.0.join("fresh.conf").to_string_lossy().into_owned()),
        ..Config::default()
    };
    c.rewrite().expect("missing file is created");
    let text = std::fs::read_to_string(dir.0.join("fresh.conf")).expect("written");
    assert!(text.starts_with("# Generated by CONFIG REWRITE\ndir "));
    let c = Config {
        config_file: Some("/nonexistent-shardis/x.conf".to_string()),
        ..Config::default()
    };
    assert_eq!(
        c.rewrite(),
        Err("ERR Rewriting config file: No such file or directory".into())
    );
}

#[test]
fn shared_config_generations() {
    let shared = SharedConfig::new(Config::default());
    assert_eq!(shared.generation(), 1);
    let next = shared.load().set(&[(b"hz", b"50")]).expect("valid");
    shared.store(next);
    assert_eq!((shared.generation(), shared.load().hz), (2, 50));
}

impl Config {
    fn dir_for_tests(&self) -> String {
        access::effective_dir(self)
    }
}
