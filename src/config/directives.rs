//! The directive registry: every directive of Redis 7.0.15's `standardConfig` table (TLS
//! included) plus shardis's own `shards` and `io-backend`, declared once, as data.
//!
//! An entry says what a directive is (name, alias, type with its default, range and unit,
//! flags), where its value lives (a typed `Config` field through a getter/setter pair, or the
//! generic `Config::extras` map when the field is absent) and whether the engine honours it
//! (`Support`). Parsing, CONFIG GET/SET and CONFIG REWRITE are generic walks over this table, so
//! adding a directive, or giving a stored one a typed field, is a one-line change here.
//!
//! Flags, ranges, defaults and enum spellings are Redis's (`config.c`, 7.0.15); the numeric
//! "unsigned" marker reproduces which C types Redis range-checks as unsigned (`unsigned int`,
//! `unsigned long long`, `size_t`), because that decides whether `-1` is "out of range" or a
//! huge number. When a subsystem starts honouring a directive, flip its `Support` to `Engine`.

use super::{AppendFsync, Config, IoBackend, MaxmemoryPolicy, ProtectedAction, ReplDisklessLoad};
use std::collections::HashMap;
use std::sync::OnceLock;

/// Only settable at start-up.
pub(crate) const IMMUTABLE: u16 = 1 << 0;
/// Holds a secret: CONFIG SET arguments are redacted.
pub(crate) const SENSITIVE: u16 = 1 << 1;
/// Takes several arguments (`save 900 1`); one quoted argument is split.
pub(crate) const MULTI_ARG: u16 = 1 << 2;
/// Left out of CONFIG GET patterns; an exact name still finds it.
pub(crate) const HIDDEN: u16 = 1 << 3;
/// CONFIG SET needs `enable-protected-configs`.
pub(crate) const PROTECTED: u16 = 1 << 4;
/// CONFIG SET refused while loading the dataset.
pub(crate) const DENY_LOADING: u16 = 1 << 5;
/// Settable at run time (no flag), for readability of the table.
const MODIFIABLE: u16 = 0;

/// Whether the engine honours a directive.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Support {
    /// The engine uses the value.
    Engine,
    /// Accepted and stored, not honoured yet: reported by `Config::unimplemented_in_use` when it
    /// differs from the default.
    Pending,
    /// Has no observable effect in shardis by design (jemalloc, io-threads, active defrag,
    /// lazy freeing, process title...), so nothing needs reporting.
    Inert,
}

/// How a number is written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Form {
    /// Plain integer (`string2ll`).
    Int,
    /// Bytes with optional unit `k kb m mb g gb` (`memtoull`).
    Memory,
    /// Bytes, or `N%` stored as `-N` (only `maxmemory-clients`).
    MemoryPercent,
    /// Octal (`unixsocketperm`).
    Octal,
}

/// The special directives, whose syntax is their own.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Special {
    Dir,
    Save,
    ClientOutputBufferLimit,
    OomScoreAdjValues,
    NotifyKeyspaceEvents,
    Bind,
    ReplicaOf,
    LatencyTrackingInfoPercentiles,
}

pub(crate) type BoolField = (fn(&Config) -> bool, fn(&mut Config, bool));
pub(crate) type NumField = (fn(&Config) -> i128, fn(&mut Config, i128));
pub(crate) type EnumField = (fn(&Config) -> u32, fn(&mut Config, u32));
pub(crate) type StrField = (
    fn(&Config) -> Option<&[u8]>,
    fn(&mut Config, Option<Vec<u8>>),
);
pub(crate) type EnumItems = &'static [(&'static str, u32)];
type Check<T> = Option<fn(T) -> Result<(), &'static str>>;
type StrCheck = Option<fn(&[u8]) -> Result<(), &'static str>>;

/// A directive's type, default and storage (`field: None` = kept in `Config::extras`).
pub(crate) enum Kind {
    Bool {
        default: bool,
        check: Check<bool>,
        field: Option<BoolField>,
    },
    Num {
        min: i128,
        max: i128,
        default: i128,
        form: Form,
        unsigned: bool,
        field: Option<NumField>,
    },
    /// With `MULTI_ARG`, a set of bit flags (`shutdown-on-sigint save now`).
    Enum {
        items: EnumItems,
        default: u32,
        check: Check<u32>,
        field: Option<EnumField>,
    },
    /// `empty_is_null`: an empty value means "unset" (rewrite drops the line).
    Str {
        default: Option<&'static str>,
        empty_is_null: bool,
        check: StrCheck,
        field: Option<StrField>,
    },
    Special(Special),
}

/// One registry entry.
pub(crate) struct Directive {
    pub name: &'static str,
    pub alias: Option<&'static str>,
    pub flags: u16,
    pub kind: Kind,
    pub support: Support,
}

impl Directive {
    /// The name CONFIG GET patterns and error messages use for this entry reached by name or by
    /// alias (Redis registers the alias as an entry of its own).
    pub fn registered_name(&self, via_alias: bool) -> &'static str {
        match (via_alias, self.alias) {
            (true, Some(alias)) => alias,
            _ => self.name,
        }
    }
}

const INT_MIN: i128 = i32::MIN as i128;
const INT_MAX: i128 = i32::MAX as i128;
const UINT_MAX: i128 = u32::MAX as i128;
const LONG_MAX: i128 = i64::MAX as i128;
const ULLONG_MAX: i128 = u64::MAX as i128;
const MIB: i128 = 1024 * 1024;
/// The largest `shards` value accepted: a bound on threads, rings and queues (N² of them).
pub(crate) const SHARDS_MAX: i128 = 1024;

// The table's entries are brace-delimited macro calls, one line each where it fits: rustfmt
// leaves them as written, so the table reads as a table. `"name" | "alias"` declares an alias.

macro_rules! alias {
    () => {
        None
    };
    ($alias:literal) => {
        Some($alias)
    };
}

macro_rules! yesno {
    ($name:literal $(| $alias:literal)?, $flags:expr, $def:literal, $sup:ident) => {
        Directive {
            name: $name,
            alias: alias!($($alias)?),
            flags: $flags,
            support: Support::$sup,
            kind: Kind::Bool { default: $def, check: None, field: None },
        }
    };
    ($name:literal $(| $alias:literal)?, $flags:expr, $def:literal, $sup:ident, $f:ident) => {
        Directive {
            name: $name,
            alias: alias!($($alias)?),
            flags: $flags,
            support: Support::$sup,
            kind: Kind::Bool {
                default: $def,
                check: None,
                field: Some((|c: &Config| c.$f, |c: &mut Config, v: bool| c.$f = v)),
            },
        }
    };
}

/// `S`/`U`: whether Redis range-checks the C type as signed or unsigned.
macro_rules! num {
    (@sign S) => {
        false
    };
    (@sign U) => {
        true
    };
    (@field) => {
        None
    };
    (@field $f:ident as $t:ty) => {
        Some((|c: &Config| c.$f as i128, |c: &mut Config, v: i128| c.$f = v as $t))
    };
    ($name:literal $(| $alias:literal)?, $flags:expr, $min:expr, $max:expr, $def:expr,
     $form:ident $sign:ident, $sup:ident $(, $f:ident as $t:ty)?) => {
        Directive {
            name: $name,
            alias: alias!($($alias)?),
            flags: $flags,
            support: Support::$sup,
            kind: Kind::Num {
                min: $min,
                max: $max,
                default: $def,
                form: Form::$form,
                unsigned: num!(@sign $sign),
                field: num!(@field $($f as $t)?),
            },
        }
    };
}

macro_rules! choice {
    (@field) => {
        None
    };
    (@field $get:expr, $set:expr) => {
        Some(($get, $set))
    };
    ($name:literal, $flags:expr, $items:expr, $def:expr, $sup:ident $(, $get:expr, $set:expr)?) => {
        Directive {
            name: $name,
            alias: None,
            flags: $flags,
            support: Support::$sup,
            kind: Kind::Enum {
                items: $items,
                default: $def,
                check: None,
                field: choice!(@field $($get, $set)?),
            },
        }
    };
}

/// Storage of typed strings: `string` (a `String`), `nullable` (a `String`, empty = unset),
/// `opt` (an `Option<String>`), `bytes` (an `Option<Vec<u8>>`).
macro_rules! text {
    (@null NULL) => {
        true
    };
    (@null EMPTY) => {
        false
    };
    (@field) => {
        None
    };
    (@field string $f:ident) => {
        Some((|c: &Config| Some(c.$f.as_bytes()), |c: &mut Config, v| c.$f = text_of(v)))
    };
    (@field nullable $f:ident) => {
        Some((|c: &Config| nonempty(&c.$f), |c: &mut Config, v| c.$f = text_of(v)))
    };
    (@field opt $f:ident) => {
        Some((
            |c: &Config| c.$f.as_deref().map(str::as_bytes),
            |c: &mut Config, v| c.$f = opt_text(v),
        ))
    };
    (@field bytes $f:ident) => {
        Some((|c: &Config| c.$f.as_deref(), |c: &mut Config, v| c.$f = v))
    };
    ($name:literal $(| $alias:literal)?, $flags:expr, $def:expr, $null:ident, $check:expr,
     $sup:ident $(, $how:ident $f:ident)?) => {
        Directive {
            name: $name,
            alias: alias!($($alias)?),
            flags: $flags,
            support: Support::$sup,
            kind: Kind::Str {
                default: $def,
                empty_is_null: text!(@null $null),
                check: $check,
                field: text!(@field $($how $f)?),
            },
        }
    };
}

macro_rules! special {
    ($name:literal $(| $alias:literal)?, $flags:expr, $which:ident, $sup:ident) => {
        Directive {
            name: $name,
            alias: alias!($($alias)?),
            flags: $flags,
            support: Support::$sup,
            kind: Kind::Special(Special::$which),
        }
    };
}

const LOGLEVEL: EnumItems = &[("debug", 0), ("verbose", 1), ("notice", 2), ("warning", 3)];
const MAXMEMORY_POLICY: EnumItems = &[
    ("volatile-lru", 0),
    ("volatile-lfu", 1),
    ("volatile-random", 2),
    ("volatile-ttl", 3),
    ("allkeys-lru", 4),
    ("allkeys-lfu", 5),
    ("allkeys-random", 6),
    ("noeviction", 7),
];
const SYSLOG_FACILITY: EnumItems = &[
    ("user", 8),
    ("local0", 128),
    ("local1", 136),
    ("local2", 144),
    ("local3", 152),
    ("local4", 160),
    ("local5", 168),
    ("local6", 176),
    ("local7", 184),
];
const SUPERVISED: EnumItems = &[("upstart", 3), ("systemd", 2), ("auto", 1), ("no", 0)];
const APPENDFSYNC: EnumItems = &[("everysec", 1), ("always", 0), ("no", 2)];
const SHUTDOWN_ON_SIG: EnumItems = &[
    ("default", 0),
    ("save", 1),
    ("nosave", 2),
    ("now", 4),
    ("force", 8),
];
const REPL_DISKLESS_LOAD: EnumItems = &[("disabled", 0), ("on-empty-db", 1), ("swapdb", 2)];
const TLS_AUTH_CLIENTS: EnumItems = &[("no", 0), ("yes", 1), ("optional", 2)];
const OOM_SCORE_ADJ: EnumItems = &[("no", 0), ("yes", 1), ("relative", 1), ("absolute", 2)];
const ACL_PUBSUB_DEFAULT: EnumItems = &[("allchannels", 1), ("resetchannels", 0)];
const SANITIZE_DUMP_PAYLOAD: EnumItems = &[("no", 0), ("yes", 1), ("clients", 2)];
const PROTECTED_ACTION: EnumItems = &[("no", 0), ("yes", 1), ("local", 2)];
const ENDPOINT_TYPE: EnumItems = &[("ip", 0), ("hostname", 1), ("unknown-endpoint", 2)];
const PROPAGATION_ERROR: EnumItems = &[("ignore", 0), ("panic", 1), ("panic-on-replicas", 2)];
const IO_BACKEND: EnumItems = &[("auto", 0), ("uring", 1), ("epoll", 2)];

fn loglevel_code(c: &Config) -> u32 {
    LOGLEVEL
        .iter()
        .find(|(n, _)| *n == c.loglevel)
        .map_or(2, |&(_, v)| v)
}

fn set_loglevel(c: &mut Config, code: u32) {
    if let Some((name, _)) = LOGLEVEL.iter().find(|&&(_, v)| v == code) {
        c.loglevel = (*name).to_string();
    }
}

fn set_maxmemory_policy(c: &mut Config, code: u32) {
    use MaxmemoryPolicy::*;
    let all = [
        VolatileLru,
        VolatileLfu,
        VolatileRandom,
        VolatileTtl,
        AllkeysLru,
        AllkeysLfu,
        AllkeysRandom,
        Noeviction,
    ];
    c.maxmemory_policy = all.get(code as usize).copied().unwrap_or(Noeviction);
}

fn appendfsync_code(c: &Config) -> u32 {
    match c.appendfsync {
        AppendFsync::Always => 0,
        AppendFsync::Everysec => 1,
        AppendFsync::No => 2,
    }
}

fn set_appendfsync(c: &mut Config, code: u32) {
    c.appendfsync = match code {
        0 => AppendFsync::Always,
        2 => AppendFsync::No,
        _ => AppendFsync::Everysec,
    };
}

fn set_repl_diskless_load(c: &mut Config, code: u32) {
    c.repl_diskless_load = match code {
        1 => ReplDisklessLoad::OnEmptyDb,
        2 => ReplDisklessLoad::Swapdb,
        _ => ReplDisklessLoad::Disabled,
    };
}

fn protected_action(code: u32) -> ProtectedAction {
    match code {
        1 => ProtectedAction::Yes,
        2 => ProtectedAction::Local,
        _ => ProtectedAction::No,
    }
}

fn protected_code(p: ProtectedAction) -> u32 {
    match p {
        ProtectedAction::No => 0,
        ProtectedAction::Yes => 1,
        ProtectedAction::Local => 2,
    }
}

fn io_backend_code(c: &Config) -> u32 {
    match c.io_backend {
        IoBackend::Auto => 0,
        IoBackend::Uring => 1,
        IoBackend::Epoll => 2,
    }
}

fn set_io_backend(c: &mut Config, code: u32) {
    c.io_backend = match code {
        1 => IoBackend::Uring,
        2 => IoBackend::Epoll,
        _ => IoBackend::Auto,
    };
}

/// For `String` fields where the empty string means "unset" (Redis's NULL).
fn nonempty(s: &str) -> Option<&[u8]> {
    if s.is_empty() {
        None
    } else {
        Some(s.as_bytes())
    }
}

fn text_of(v: Option<Vec<u8>>) -> String {
    v.map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default()
}

fn opt_text(v: Option<Vec<u8>>) -> Option<String> {
    v.map(|b| String::from_utf8_lossy(&b).into_owned())
}

fn check_activedefrag(on: bool) -> Result<(), &'static str> {
    if on {
        return Err(
            "Active defragmentation cannot be enabled: it requires a Redis server \
                    compiled with a modified Jemalloc like the one shipped by default with the \
                    Redis source distribution",
        );
    }
    Ok(())
}

fn is_base_name(v: &[u8]) -> bool {
    !v.contains(&b'/') && !v.contains(&b'\\')
}

fn check_dbfilename(v: &[u8]) -> Result<(), &'static str> {
    if !is_base_name(v) {
        return Err("dbfilename can't be a path, just a filename");
    }
    Ok(())
}

fn check_appendfilename(v: &[u8]) -> Result<(), &'static str> {
    if v.is_empty() {
        return Err("appendfilename can't be empty");
    }
    if !is_base_name(v) {
        return Err("appendfilename can't be a path, just a filename");
    }
    Ok(())
}

fn check_appenddirname(v: &[u8]) -> Result<(), &'static str> {
    if v.is_empty() {
        return Err("appenddirname can't be empty");
    }
    if !is_base_name(v) {
        return Err("appenddirname can't be a path, just a dirname");
    }
    Ok(())
}

fn check_shutdown_flags(flags: u32) -> Result<(), &'static str> {
    if flags & super::shutdown::SAVE != 0 && flags & super::shutdown::NOSAVE != 0 {
        return Err("shutdown options SAVE and NOSAVE can't be used simultaneously");
    }
    Ok(())
}

/// `NET_HOST_STR_LEN` in Redis.
const HOSTNAME_LEN_MAX: usize = 256;

fn check_hostname(v: &[u8]) -> Result<(), &'static str> {
    if v.len() >= HOSTNAME_LEN_MAX {
        return Err("Hostnames must be less than 256 characters");
    }
    if !v
        .iter()
        .all(|&c| c.is_ascii_alphanumeric() || c == b'-' || c == b'.')
    {
        return Err("Hostnames may only contain alphanumeric characters, hyphens or dots");
    }
    Ok(())
}

/// Redis expands the template with an empty title: unknown `{variables}`, a dangling `{` or an
/// expansion that is blank are refused. `listen-addr`, `config-file` and the ports always
/// expand to something; `title`, `server-mode` and `unixsocket` may be empty.
fn check_proc_title_template(v: &[u8]) -> Result<(), &'static str> {
    const BAD: &str = "template format is invalid or contains unknown variables";
    let mut visible = false;
    let mut rest = v;
    while let Some(open) = rest.iter().position(|&c| c == b'{') {
        let (literal, tail) = rest.split_at(open);
        visible |= literal.iter().any(|&c| c != b' ');
        let name_and_more = tail.get(1..).ok_or(BAD)?;
        if name_and_more.is_empty() {
            return Err(BAD);
        }
        if name_and_more.first() == Some(&b'{') {
            visible = true;
            rest = name_and_more.get(1..).unwrap_or_default();
            continue;
        }
        let close = name_and_more.iter().position(|&c| c == b'}').ok_or(BAD)?;
        let (name, after) = name_and_more.split_at(close);
        visible |= match name {
            b"title" | b"server-mode" | b"unixsocket" => false,
            b"listen-addr" | b"config-file" | b"port" | b"tls-port" => true,
            _ => return Err(BAD),
        };
        rest = after.get(1..).unwrap_or_default();
    }
    visible |= rest.iter().any(|&c| c != b' ');
    if visible {
        Ok(())
    } else {
        Err(BAD)
    }
}

const MOD: u16 = MODIFIABLE;
const IMM: u16 = IMMUTABLE;

/// The registry, in Redis's table order, shardis's directives last.
pub(crate) static TABLE: &[Directive] = &[
    // Booleans.
    yesno! {"rdbchecksum", IMM, true, Engine, rdbchecksum},
    yesno! {"daemonize", IMM, false, Engine, daemonize},
    yesno! {"io-threads-do-reads", IMM, false, Inert},
    yesno! {"always-show-logo", IMM, false, Inert},
    yesno! {"protected-mode", MOD, true, Pending, protected_mode},
    yesno! {"rdbcompression", MOD, true, Engine, rdbcompression},
    yesno! {"rdb-del-sync-files", MOD, false, Pending, rdb_del_sync_files},
    yesno! {"activerehashing", MOD, true, Inert},
    yesno! {"stop-writes-on-bgsave-error", MOD, true, Engine, stop_writes_on_bgsave_error},
    yesno! {"set-proc-title", IMM, true, Inert},
    yesno! {"dynamic-hz", MOD, true, Pending, dynamic_hz},
    yesno! {"lazyfree-lazy-eviction", MOD, false, Engine, lazyfree_lazy_eviction},
    yesno! {"lazyfree-lazy-expire", MOD, false, Engine, lazyfree_lazy_expire},
    yesno! {"lazyfree-lazy-server-del", MOD, false, Engine, lazyfree_lazy_server_del},
    yesno! {"lazyfree-lazy-user-del", MOD, false, Engine, lazyfree_lazy_user_del},
    yesno! {"lazyfree-lazy-user-flush", MOD, false, Engine, lazyfree_lazy_user_flush},
    yesno! {"repl-disable-tcp-nodelay", MOD, false, Pending, repl_disable_tcp_nodelay},
    yesno! {"repl-diskless-sync", MOD, true, Engine, repl_diskless_sync},
    // Only pace fsyncs while a file is written (every 4 MB); shardis fsyncs once at the end,
    // which is what `no`, the only value reported, asks for. Same for the RDB one below.
    yesno! {"aof-rewrite-incremental-fsync", MOD, true, Inert},
    yesno! {"no-appendfsync-on-rewrite", MOD, false, Engine, no_appendfsync_on_rewrite},
    yesno! {"cluster-require-full-coverage", MOD, true, Pending, cluster_require_full_coverage},
    yesno! {"rdb-save-incremental-fsync", MOD, true, Inert},
    yesno! {"aof-load-truncated", MOD, true, Engine, aof_load_truncated},
    yesno! {"aof-use-rdb-preamble", MOD, true, Engine, aof_use_rdb_preamble},
    yesno! {"aof-timestamp-enabled", MOD, false, Engine, aof_timestamp_enabled},
    yesno! {"cluster-replica-no-failover" | "cluster-slave-no-failover", MOD, false, Pending,
    cluster_replica_no_failover},
    yesno! {"replica-lazy-flush" | "slave-lazy-flush", MOD, false, Pending, replica_lazy_flush},
    yesno! {"replica-serve-stale-data" | "slave-serve-stale-data", MOD, true, Engine,
    replica_serve_stale_data},
    yesno! {"replica-read-only" | "slave-read-only", MOD, true, Engine, replica_read_only},
    yesno! {"replica-ignore-maxmemory" | "slave-ignore-maxmemory", MOD, true, Engine,
    replica_ignore_maxmemory},
    yesno! {"jemalloc-bg-thread", MOD, true, Inert},
    Directive {
        name: "activedefrag",
        alias: None,
        flags: MOD,
        support: Support::Inert,
        kind: Kind::Bool {
            default: false,
            check: Some(check_activedefrag),
            field: None,
        },
    },
    yesno! {"syslog-enabled", IMM, false, Pending},
    yesno! {"cluster-enabled", IMM, false, Pending, cluster_enabled},
    yesno! {"appendonly", MOD | DENY_LOADING, false, Engine, appendonly},
    yesno! {"cluster-allow-reads-when-down", MOD, false, Pending, cluster_allow_reads_when_down},
    yesno! {"cluster-allow-pubsubshard-when-down", MOD, true, Pending},
    yesno! {"crash-log-enabled", MOD, true, Inert},
    yesno! {"crash-memcheck-enabled", MOD, true, Inert},
    yesno! {"use-exit-on-panic", MOD | HIDDEN, false, Inert},
    yesno! {"disable-thp", IMM, true, Engine, disable_thp},
    yesno! {"cluster-allow-replica-migration", MOD, true, Pending},
    yesno! {"replica-announced", MOD, true, Engine, replica_announced},
    yesno! {"latency-tracking", MOD, true, Engine, latency_tracking},
    yesno! {"aof-disable-auto-gc", MOD, false, Engine},
    yesno! {"replica-ignore-disk-write-errors", MOD, false, Pending},
    yesno! {"lua-enable-deprecated-api", IMM | HIDDEN, false, Engine},
    // Strings.
    text! {"aclfile", IMM, Some(""), EMPTY, None, Engine, string aclfile},
    text! {"unixsocket", IMM, None, NULL, None, Engine, opt unixsocket},
    text! {"pidfile", IMM, None, NULL, None, Engine, nullable pidfile},
    text! {"replica-announce-ip" | "slave-announce-ip", MOD, None, NULL, None, Engine,
    opt replica_announce_ip},
    text! {"masteruser", MOD | SENSITIVE, None, NULL, None, Engine, opt masteruser},
    text! {"cluster-announce-ip", MOD, None, NULL, None, Pending, opt cluster_announce_ip},
    text! {"cluster-config-file", IMM, Some("nodes.conf"), EMPTY, None, Pending,
    string cluster_config_file},
    text! {"cluster-announce-hostname", MOD, None, NULL, Some(check_hostname), Pending},
    text! {"syslog-ident", IMM, Some("redis"), EMPTY, None, Pending},
    text! {"dbfilename", MOD | PROTECTED, Some("dump.rdb"), EMPTY, Some(check_dbfilename), Engine,
    string dbfilename},
    text! {"appendfilename", IMM, Some("appendonly.aof"), EMPTY, Some(check_appendfilename),
    Engine, string appendfilename},
    text! {"appenddirname", IMM, Some("appendonlydir"), EMPTY, Some(check_appenddirname),
    Engine, string appenddirname},
    text! {"server_cpulist", IMM, None, NULL, None, Pending},
    text! {"bio_cpulist", IMM, None, NULL, None, Pending},
    text! {"aof_rewrite_cpulist", IMM, None, NULL, None, Pending},
    text! {"bgsave_cpulist", IMM, None, NULL, None, Pending},
    text! {"ignore-warnings", MOD, Some(""), EMPTY, None, Inert},
    text! {"proc-title-template", MOD, Some("{title} {listen-addr} {server-mode}"), EMPTY,
    Some(check_proc_title_template), Inert},
    text! {"bind-source-addr", MOD, None, NULL, None, Pending},
    text! {"logfile", IMM, Some(""), EMPTY, None, Engine, string logfile},
    text! {"masterauth", MOD | SENSITIVE, None, NULL, None, Engine, bytes masterauth},
    text! {"requirepass", MOD | SENSITIVE, None, NULL, None, Engine, bytes requirepass},
    // Enums.
    choice! {"supervised", IMM, SUPERVISED, 0, Pending},
    choice! {"syslog-facility", IMM, SYSLOG_FACILITY, 128, Pending},
    choice! {"repl-diskless-load", MOD | DENY_LOADING, REPL_DISKLESS_LOAD, 0, Engine,
    |c: &Config| c.repl_diskless_load as u32, set_repl_diskless_load},
    choice! {"loglevel", MOD, LOGLEVEL, 2, Engine, loglevel_code, set_loglevel},
    choice! {"maxmemory-policy", MOD, MAXMEMORY_POLICY, 7, Engine,
    |c: &Config| c.maxmemory_policy as u32, set_maxmemory_policy},
    choice! {"appendfsync", MOD, APPENDFSYNC, 1, Engine, appendfsync_code, set_appendfsync},
    choice! {"oom-score-adj", MOD, OOM_SCORE_ADJ, 0, Pending},
    choice! {"acl-pubsub-default", MOD, ACL_PUBSUB_DEFAULT, 0, Engine,
    |c| c.acl_pubsub_default, |c, v| c.acl_pubsub_default = v},
    choice! {"sanitize-dump-payload", MOD, SANITIZE_DUMP_PAYLOAD, 0, Engine},
    choice! {"enable-protected-configs", IMM, PROTECTED_ACTION, 0, Engine,
    |c: &Config| protected_code(c.enable_protected_configs),
    |c: &mut Config, v| c.enable_protected_configs = protected_action(v)},
    choice! {"enable-debug-command", IMM, PROTECTED_ACTION, 0, Engine,
    |c: &Config| protected_code(c.enable_debug_command),
    |c: &mut Config, v| c.enable_debug_command = protected_action(v)},
    choice! {"enable-module-command", IMM, PROTECTED_ACTION, 0, Pending,
    |c: &Config| protected_code(c.enable_module_command),
    |c: &mut Config, v| c.enable_module_command = protected_action(v)},
    choice! {"cluster-preferred-endpoint-type", MOD, ENDPOINT_TYPE, 0, Pending},
    choice! {"propagation-error-behavior", MOD, PROPAGATION_ERROR, 0, Pending},
    Directive {
        name: "shutdown-on-sigint",
        alias: None,
        flags: MOD | MULTI_ARG,
        support: Support::Engine,
        kind: Kind::Enum {
            items: SHUTDOWN_ON_SIG,
            default: 0,
            check: Some(check_shutdown_flags),
            field: Some((|c| c.shutdown_on_sigint, |c, v| c.shutdown_on_sigint = v)),
        },
    },
    Directive {
        name: "shutdown-on-sigterm",
        alias: None,
        flags: MOD | MULTI_ARG,
        support: Support::Engine,
        kind: Kind::Enum {
            items: SHUTDOWN_ON_SIG,
            default: 0,
            check: Some(check_shutdown_flags),
            field: Some((|c| c.shutdown_on_sigterm, |c, v| c.shutdown_on_sigterm = v)),
        },
    },
    // Integers: name, flags, min, max, default, form and signedness, support, field.
    num! {"databases", IMM, 1, INT_MAX, 16, Int S, Engine, databases as usize},
    num! {"port", MOD, 0, 65535, 6379, Int S, Engine, port as u16},
    num! {"io-threads", IMM, 1, 128, 1, Int S, Inert},
    num! {"auto-aof-rewrite-percentage", MOD, 0, INT_MAX, 100, Int S, Engine,
    auto_aof_rewrite_percentage as u32},
    num! {"cluster-replica-validity-factor" | "cluster-slave-validity-factor", MOD, 0, INT_MAX,
    10, Int S, Pending, cluster_replica_validity_factor as u32},
    num! {"list-max-listpack-size" | "list-max-ziplist-size", MOD, INT_MIN, INT_MAX, -2, Int S,
    Engine, list_max_listpack_size as i32},
    num! {"tcp-keepalive", MOD, 0, INT_MAX, 300, Int S, Engine, tcp_keepalive_secs as u64},
    num! {"cluster-migration-barrier", MOD, 0, INT_MAX, 1, Int S, Pending,
    cluster_migration_barrier as u32},
    num! {"active-defrag-cycle-min", MOD, 1, 99, 1, Int S, Inert},
    num! {"active-defrag-cycle-max", MOD, 1, 99, 25, Int S, Inert},
    num! {"active-defrag-threshold-lower", MOD, 0, 1000, 10, Int S, Inert},
    num! {"active-defrag-threshold-upper", MOD, 0, 1000, 100, Int S, Inert},
    num! {"lfu-log-factor", MOD, 0, INT_MAX, 10, Int S, Engine, lfu_log_factor as u32},
    num! {"lfu-decay-time", MOD, 0, INT_MAX, 1, Int S, Engine, lfu_decay_time as u32},
    num! {"replica-priority" | "slave-priority", MOD, 0, INT_MAX, 100, Int S, Engine,
    replica_priority as u32},
    num! {"repl-diskless-sync-delay", MOD, 0, INT_MAX, 5, Int S, Engine,
    repl_diskless_sync_delay_secs as u32},
    num! {"maxmemory-samples", MOD, 1, INT_MAX, 5, Int S, Engine, maxmemory_samples as u32},
    num! {"maxmemory-eviction-tenacity", MOD, 0, 100, 10, Int S, Engine,
    maxmemory_eviction_tenacity as u32},
    num! {"timeout", MOD, 0, INT_MAX, 0, Int S, Engine, timeout_secs as u64},
    num! {"replica-announce-port" | "slave-announce-port", MOD, 0, 65535, 0, Int S, Engine,
    replica_announce_port as u16},
    num! {"tcp-backlog", IMM, 0, INT_MAX, 511, Int S, Engine, tcp_backlog as u32},
    num! {"cluster-port", IMM, 0, 65535, 0, Int S, Pending, cluster_port as u16},
    num! {"cluster-announce-bus-port", MOD, 0, 65535, 0, Int S, Pending,
    cluster_announce_bus_port as u16},
    num! {"cluster-announce-port", MOD, 0, 65535, 0, Int S, Pending,
    cluster_announce_port as u16},
    num! {"cluster-announce-tls-port", MOD, 0, 65535, 0, Int S, Pending},
    num! {"repl-timeout", MOD, 1, INT_MAX, 60, Int S, Engine, repl_timeout_secs as u32},
    num! {"repl-ping-replica-period" | "repl-ping-slave-period", MOD, 1, INT_MAX, 10, Int S,
    Engine, repl_ping_replica_period_secs as u32},
    num! {"list-compress-depth", MOD, 0, INT_MAX, 0, Int S, Pending, list_compress_depth as u32},
    num! {"rdb-key-save-delay", MOD | HIDDEN, INT_MIN, INT_MAX, 0, Int S, Engine},
    num! {"key-load-delay", MOD | HIDDEN, INT_MIN, INT_MAX, 0, Int S, Engine},
    num! {"active-expire-effort", MOD, 1, 10, 1, Int S, Pending, active_expire_effort as u32},
    // Redis accepts any hz but runs (and reports) it clamped to 1..=500.
    Directive {
        name: "hz",
        alias: None,
        flags: MOD,
        support: Support::Engine,
        kind: Kind::Num {
            min: 0,
            max: INT_MAX,
            default: 10,
            form: Form::Int,
            unsigned: false,
            field: Some((|c| c.hz as i128, |c, v| c.hz = v.clamp(1, 500) as u32)),
        },
    },
    num! {"min-replicas-to-write" | "min-slaves-to-write", MOD, 0, INT_MAX, 0, Int S, Engine,
    min_replicas_to_write as u32},
    num! {"min-replicas-max-lag" | "min-slaves-max-lag", MOD, 0, INT_MAX, 10, Int S, Engine,
    min_replicas_max_lag_secs as u32},
    num! {"watchdog-period", MOD | HIDDEN, 0, INT_MAX, 0, Int S, Engine},
    num! {"shutdown-timeout", MOD, 0, INT_MAX, 10, Int S, Pending, shutdown_timeout_secs as u32},
    num! {"repl-diskless-sync-max-replicas", MOD, 0, INT_MAX, 0, Int S, Engine,
    repl_diskless_sync_max_replicas as u32},
    // Unsigned ints.
    num! {"maxclients", MOD, 1, UINT_MAX, 10000, Int U, Engine, maxclients as usize},
    num! {"unixsocketperm", IMM, 0, 0o777, 0, Octal U, Engine, unixsocketperm as u32},
    num! {"socket-mark-id", IMM, 0, UINT_MAX, 0, Int U, Pending},
    // Unsigned longs (range-checked as signed by Redis).
    num! {"active-defrag-max-scan-fields", MOD, 1, LONG_MAX, 1000, Int S, Inert},
    num! {"slowlog-max-len", MOD, 0, LONG_MAX, 128, Int S, Engine, slowlog_max_len as u64},
    num! {"acllog-max-len", MOD, 0, LONG_MAX, 128, Int S, Engine, acllog_max_len as u64},
    // Long longs.
    num! {"busy-reply-threshold" | "lua-time-limit", MOD, 0, LONG_MAX, 5000, Int S, Engine,
    busy_reply_threshold_ms as u64},
    num! {"cluster-node-timeout", MOD, 0, LONG_MAX, 15000, Int S, Pending,
    cluster_node_timeout_ms as u64},
    num! {"slowlog-log-slower-than", MOD, -1, LONG_MAX, 10000, Int S, Engine,
    slowlog_log_slower_than_us as i64},
    num! {"latency-monitor-threshold", MOD, 0, LONG_MAX, 0, Int S, Engine,
    latency_monitor_threshold_ms as u64},
    num! {"proto-max-bulk-len", MOD, MIB, LONG_MAX, 512 * MIB, Memory S, Engine,
    proto_max_bulk_len as u64},
    num! {"stream-node-max-entries", MOD, 0, LONG_MAX, 100, Int S, Engine,
    stream_node_max_entries as u64},
    num! {"repl-backlog-size", MOD, 1, LONG_MAX, MIB, Memory S, Engine,
    repl_backlog_size as u64},
    // Unsigned long longs.
    num! {"maxmemory", MOD, 0, ULLONG_MAX, 0, Memory U, Engine, maxmemory as u64},
    num! {"cluster-link-sendbuf-limit", MOD, 0, ULLONG_MAX, 0, Memory U, Pending},
    // size_t (unsigned) and ssize_t.
    num! {"hash-max-listpack-entries" | "hash-max-ziplist-entries", MOD, 0, LONG_MAX, 512,
    Int U, Engine, hash_max_listpack_entries as u64},
    num! {"set-max-intset-entries", MOD, 0, LONG_MAX, 512, Int U, Engine,
    set_max_intset_entries as u64},
    num! {"zset-max-listpack-entries" | "zset-max-ziplist-entries", MOD, 0, LONG_MAX, 128,
    Int U, Engine, zset_max_listpack_entries as u64},
    num! {"active-defrag-ignore-bytes", MOD, 1, LONG_MAX, 100 * MIB, Memory U, Inert},
    num! {"hash-max-listpack-value" | "hash-max-ziplist-value", MOD, 0, LONG_MAX, 64,
    Memory U, Engine, hash_max_listpack_value as u64},
    num! {"stream-node-max-bytes", MOD, 0, LONG_MAX, 4096, Memory U, Engine,
    stream_node_max_bytes as u64},
    num! {"zset-max-listpack-value" | "zset-max-ziplist-value", MOD, 0, LONG_MAX, 64,
    Memory U, Engine, zset_max_listpack_value as u64},
    num! {"hll-sparse-max-bytes", MOD, 0, LONG_MAX, 3000, Memory U, Engine,
    hll_sparse_max_bytes as u64},
    num! {"tracking-table-max-keys", MOD, 0, LONG_MAX, 1_000_000, Int U, Engine,
    tracking_table_max_keys as u64},
    num! {"client-query-buffer-limit", MOD, MIB, LONG_MAX, 1024 * MIB, Memory U, Engine,
    client_query_buffer_limit as u64},
    num! {"maxmemory-clients", MOD, -100, LONG_MAX, 0, MemoryPercent S, Engine,
    maxmemory_clients as i64},
    // time_t and off_t.
    num! {"repl-backlog-ttl", MOD, 0, LONG_MAX, 3600, Int S, Engine,
    repl_backlog_ttl_secs as u64},
    num! {"auto-aof-rewrite-min-size", MOD, 0, LONG_MAX, 64 * MIB, Memory S, Engine,
    auto_aof_rewrite_min_size as u64},
    num! {"loading-process-events-interval-bytes", MOD | HIDDEN, 1024, INT_MAX, 2 * MIB,
    Int S, Pending},
    // TLS (Redis built with OpenSSL, as Debian's is).
    num! {"tls-port", MOD, 0, 65535, 0, Int S, Pending},
    num! {"tls-session-cache-size", MOD, 0, INT_MAX, 20 * 1024, Int S, Pending},
    num! {"tls-session-cache-timeout", MOD, 0, INT_MAX, 300, Int S, Pending},
    yesno! {"tls-cluster", MOD, false, Pending},
    yesno! {"tls-replication", MOD, false, Pending},
    choice! {"tls-auth-clients", MOD, TLS_AUTH_CLIENTS, 1, Pending},
    yesno! {"tls-prefer-server-ciphers", MOD, false, Pending},
    yesno! {"tls-session-caching", MOD, true, Pending},
    text! {"tls-cert-file", MOD, None, NULL, None, Pending},
    text! {"tls-key-file", MOD, None, NULL, None, Pending},
    text! {"tls-key-file-pass", MOD, None, NULL, None, Pending},
    text! {"tls-client-cert-file", MOD, None, NULL, None, Pending},
    text! {"tls-client-key-file", MOD, None, NULL, None, Pending},
    text! {"tls-client-key-file-pass", MOD, None, NULL, None, Pending},
    text! {"tls-dh-params-file", MOD, None, NULL, None, Pending},
    text! {"tls-ca-cert-file", MOD, None, NULL, None, Pending},
    text! {"tls-ca-cert-dir", MOD, None, NULL, None, Pending},
    text! {"tls-protocols", MOD, None, NULL, None, Pending},
    text! {"tls-ciphers", MOD, None, NULL, None, Pending},
    text! {"tls-ciphersuites", MOD, None, NULL, None, Pending},
    // Special.
    special! {"dir", MOD | PROTECTED | DENY_LOADING, Dir, Engine},
    special! {"save", MOD | MULTI_ARG, Save, Engine},
    special! {"client-output-buffer-limit", MOD | MULTI_ARG, ClientOutputBufferLimit, Engine},
    special! {"oom-score-adj-values", MOD | MULTI_ARG, OomScoreAdjValues, Pending},
    special! {"notify-keyspace-events", MOD, NotifyKeyspaceEvents, Engine},
    special! {"bind", MOD | MULTI_ARG, Bind, Engine},
    special! {"replicaof" | "slaveof", IMM | MULTI_ARG, ReplicaOf, Engine},
    special! {"latency-tracking-info-percentiles", MOD | MULTI_ARG, LatencyTrackingInfoPercentiles,
    Engine},
    // shardis's own: hidden from `CONFIG GET *` (like Redis's hidden configs) so a glob
    // lists what Redis lists; asked by name they answer.
    num! {"shards", IMM | HIDDEN, 0, SHARDS_MAX, 0, Int S, Engine, shards as usize},
    choice! {"io-backend", IMM | HIDDEN, IO_BACKEND, 0, Engine, io_backend_code, set_io_backend},
];

/// Finds a directive by name or alias, in any case. The flag tells whether the alias matched
/// (Redis treats the two names as separate entries: errors and duplicates follow that).
pub(crate) fn lookup(name: &[u8]) -> Option<(&'static Directive, bool)> {
    static INDEX: OnceLock<HashMap<Vec<u8>, (usize, bool)>> = OnceLock::new();
    let index = INDEX.get_or_init(|| {
        let mut map = HashMap::with_capacity(TABLE.len() * 2);
        for (i, d) in TABLE.iter().enumerate() {
            map.insert(d.name.as_bytes().to_vec(), (i, false));
            if let Some(alias) = d.alias {
                map.insert(alias.as_bytes().to_vec(), (i, true));
            }
        }
        map
    });
    let &(i, via_alias) = index.get(&name.to_ascii_lowercase())?;
    TABLE.get(i).map(|d| (d, via_alias))
}

/// Every registered name (primary names and aliases) with its entry, in table order.
pub(crate) fn registered() -> impl Iterator<Item = (&'static str, &'static Directive)> {
    TABLE
        .iter()
        .flat_map(|d| std::iter::once((d.name, d)).chain(d.alias.map(|a| (a, d))))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_lowercase_and_found() {
        let mut seen = std::collections::HashSet::new();
        for (name, d) in registered() {
            assert!(seen.insert(name), "duplicate {name}");
            assert_eq!(name, name.to_ascii_lowercase());
            let (found, _) = lookup(name.to_ascii_uppercase().as_bytes()).expect(name);
            assert_eq!(found.name, d.name);
        }
        assert!(lookup(b"no-such-directive").is_none());
    }

    #[test]
    fn aliases_resolve_to_primary() {
        let (d, via_alias) = lookup(b"slaveof").expect("slaveof");
        assert_eq!((d.name, via_alias), ("replicaof", true));
        assert_eq!(d.registered_name(via_alias), "slaveof");
        let (d, _) = lookup(b"hash-max-ziplist-entries").expect("alias");
        assert_eq!(d.name, "hash-max-listpack-entries");
        let (d, _) = lookup(b"lua-time-limit").expect("alias");
        assert_eq!(d.name, "busy-reply-threshold");
    }

    #[test]
    fn proc_title_templates() {
        assert!(check_proc_title_template(b"{title} {listen-addr} {server-mode}").is_ok());
        assert!(check_proc_title_template(b"--my--title--template").is_ok());
        assert!(check_proc_title_template(b"{title}").is_err());
        assert!(check_proc_title_template(b"{nope}").is_err());
        assert!(check_proc_title_template(b"{port").is_err());
        assert!(check_proc_title_template(b"x {").is_err());
        assert!(check_proc_title_template(b"{{").is_ok());
        assert!(check_proc_title_template(b"  ").is_err());
    }

    #[test]
    fn hostnames() {
        assert!(check_hostname(b"node-1.example").is_ok());
        assert!(check_hostname(b"bad_host").is_err());
        assert!(check_hostname(&[b'a'; 256]).is_err());
    }
}
