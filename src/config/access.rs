//! Reading, writing and formatting one directive of a `Config`, whatever its type and wherever
//! its value lives (typed field or `Config::extras`).
//!
//! `assign` is Redis's per-type `set` (validation included, errors as Redis words them): the
//! config-file loader and CONFIG SET both end here, they only differ in how they split values
//! into arguments and in the one place Redis tells them apart (`save` lines in a file
//! accumulate, CONFIG SET replaces). `format_get` is Redis's per-type `get`, the CONFIG GET
//! text. The special directives (`save`, `bind`, `client-output-buffer-limit`...) are spelled
//! out below, each with its parser and formatter next to each other.

use super::directives::{Directive, EnumItems, Form, Kind, Special, MULTI_ARG};
use super::values::{format_percentile, lossy, memtoull, split_args, strerror, string2ll};
use super::values::{strtoll, yes_no};
use super::{notify, ClientClass, Config, ObufLimit, ReplicaOf, SaveRule};
use std::path::{Path, PathBuf};

/// A value of a directive without a typed field.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Value {
    Bool(bool),
    Num(i128),
    Enum(u32),
    Str(Option<Vec<u8>>),
}

/// Where a value comes from: Redis lets the first `save` line of a config load replace the
/// defaults and the following ones add rules, while CONFIG SET always replaces.
pub(crate) enum Mode<'a> {
    File { save_seen: &'a mut bool },
    Command,
}

/// `CONFIG_BINDADDR_MAX`.
const BIND_ADDRESSES_MAX: usize = 16;
/// Bounds of each `oom-score-adj-values` element.
const OOM_SCORE_ADJ_MAX: i64 = 2000;

fn stored(cfg: &Config, d: &Directive) -> Option<Value> {
    cfg.extras.0.get(d.name).cloned()
}

pub(crate) fn read_bool(cfg: &Config, d: &Directive) -> bool {
    match &d.kind {
        Kind::Bool {
            field: Some((get, _)),
            ..
        } => get(cfg),
        Kind::Bool { default, .. } => match stored(cfg, d) {
            Some(Value::Bool(v)) => v,
            _ => *default,
        },
        _ => false,
    }
}

pub(crate) fn read_num(cfg: &Config, d: &Directive) -> i128 {
    match &d.kind {
        Kind::Num {
            field: Some((get, _)),
            ..
        } => get(cfg),
        Kind::Num { default, .. } => match stored(cfg, d) {
            Some(Value::Num(v)) => v,
            _ => *default,
        },
        _ => 0,
    }
}

pub(crate) fn read_enum(cfg: &Config, d: &Directive) -> u32 {
    match &d.kind {
        Kind::Enum {
            field: Some((get, _)),
            ..
        } => get(cfg),
        Kind::Enum { default, .. } => match stored(cfg, d) {
            Some(Value::Enum(v)) => v,
            _ => *default,
        },
        _ => 0,
    }
}

pub(crate) fn read_str(cfg: &Config, d: &Directive) -> Option<Vec<u8>> {
    match &d.kind {
        Kind::Str {
            field: Some((get, _)),
            ..
        } => get(cfg).map(<[u8]>::to_vec),
        Kind::Str { default, .. } => match stored(cfg, d) {
            Some(Value::Str(v)) => v,
            _ => default.map(|s| s.as_bytes().to_vec()),
        },
        _ => None,
    }
}

fn write(cfg: &mut Config, d: &'static Directive, value: Value) {
    match (&d.kind, value) {
        (
            Kind::Bool {
                field: Some((_, set)),
                ..
            },
            Value::Bool(v),
        ) => set(cfg, v),
        (
            Kind::Num {
                field: Some((_, set)),
                ..
            },
            Value::Num(v),
        ) => set(cfg, v),
        (
            Kind::Enum {
                field: Some((_, set)),
                ..
            },
            Value::Enum(v),
        ) => set(cfg, v),
        (
            Kind::Str {
                field: Some((_, set)),
                ..
            },
            Value::Str(v),
        ) => set(cfg, v),
        (_, value) => {
            cfg.extras.0.insert(d.name, value);
        }
    }
}

/// Validates `args` for `d` and stores the value in `cfg`; on error `cfg` may be partly
/// changed only for that directive (callers work on a copy). The error is Redis's text.
pub(crate) fn assign(
    cfg: &mut Config,
    d: &'static Directive,
    args: &[Vec<u8>],
    mode: Mode<'_>,
) -> Result<(), String> {
    let first = args.first().map_or(&[][..], Vec::as_slice);
    let value = match &d.kind {
        Kind::Bool { check, .. } => {
            let v = yes_no(first).ok_or("argument must be 'yes' or 'no'")?;
            if let Some(check) = check {
                check(v)?;
            }
            Value::Bool(v)
        }
        Kind::Num {
            min,
            max,
            form,
            unsigned,
            ..
        } => Value::Num(parse_number(first, *min, *max, *form, *unsigned)?),
        Kind::Enum { items, check, .. } => {
            let v = enum_value(items, args, d.flags & MULTI_ARG != 0)
                .ok_or_else(|| enum_error(items))?;
            if let Some(check) = check {
                check(v)?;
            }
            Value::Enum(v)
        }
        Kind::Str {
            empty_is_null,
            check,
            ..
        } => {
            if let Some(check) = check {
                check(first)?;
            }
            Value::Str(if *empty_is_null && first.is_empty() {
                None
            } else {
                Some(first.to_vec())
            })
        }
        Kind::Special(which) => return assign_special(cfg, *which, args, mode),
    };
    write(cfg, d, value);
    Ok(())
}

/// Redis's `numericParseString` followed by `numericBoundaryCheck`.
fn parse_number(
    arg: &[u8],
    min: i128,
    max: i128,
    form: Form,
    unsigned: bool,
) -> Result<i128, String> {
    let parsed: Option<i64> = match form {
        Form::Memory => memtoull(arg).map(|v| v as i64),
        Form::MemoryPercent => memtoull(arg).map(|v| v as i64).or_else(|| {
            let digits = arg.strip_suffix(b"%").filter(|d| !d.is_empty())?;
            string2ll(digits).filter(|&p| p >= 0).map(|p| -p)
        }),
        Form::Octal => match super::values::strtoll(arg, 8) {
            (v, true, false) => Some(v),
            _ => None,
        },
        Form::Int => string2ll(arg),
    };
    let raw = parsed.ok_or(match form {
        Form::Memory => "argument must be a memory value",
        Form::MemoryPercent => "argument must be a memory or percent value",
        Form::Octal => "argument couldn't be parsed as an octal number",
        Form::Int => "argument couldn't be parsed into an integer",
    })?;
    // Redis compares `unsigned` C types as unsigned: -1 becomes a huge number.
    let v = if unsigned {
        i128::from(raw as u64)
    } else {
        i128::from(raw)
    };
    if form == Form::MemoryPercent && v < 0 {
        if v < min {
            return Err(format!(
                "percentage argument must be less or equal to {}",
                -min
            ));
        }
    } else if v < min || v > max {
        return Err(if form == Form::Octal {
            format!("argument must be between {min:o} and {max:o} inclusive")
        } else {
            format!("argument must be between {min} and {max} inclusive")
        });
    }
    Ok(v)
}

/// `configEnumGetValue`: each argument must name an item (any case); with bit flags several
/// arguments are OR-ed, else exactly one is allowed.
pub(crate) fn enum_value(items: EnumItems, args: &[Vec<u8>], bitflags: bool) -> Option<u32> {
    if args.is_empty() || (!bitflags && args.len() != 1) {
        return None;
    }
    let mut value = 0;
    for arg in args {
        let mut matched = false;
        for &(name, v) in items {
            if arg.eq_ignore_ascii_case(name.as_bytes()) {
                value |= v;
                matched = true;
            }
        }
        if !matched {
            return None;
        }
    }
    Some(value)
}

/// `configEnumGetName`: the first exact match, or for bit flags the names of the bits set, in
/// table order; `unknown` when nothing fits.
pub(crate) fn enum_name(items: EnumItems, value: u32, bitflags: bool) -> String {
    let mut names = Vec::new();
    let mut unmatched = value;
    for &(name, v) in items {
        if v == value {
            return name.to_string();
        }
        if bitflags && v != 0 && v == unmatched & v {
            names.push(name);
            unmatched &= !v;
        }
    }
    if names.is_empty() || unmatched != 0 {
        return "unknown".to_string();
    }
    names.join(" ")
}

fn enum_error(items: EnumItems) -> String {
    /// Redis formats the message into a 256-byte buffer.
    const MESSAGE_LEN_MAX: usize = 255;
    let names: Vec<&str> = items.iter().map(|&(name, _)| name).collect();
    let mut message = format!(
        "argument(s) must be one of the following: {}",
        names.join(", ")
    );
    message.truncate(MESSAGE_LEN_MAX);
    message
}

/// The CONFIG GET text of a directive.
pub(crate) fn format_get(cfg: &Config, d: &Directive) -> String {
    match &d.kind {
        Kind::Bool { .. } => if read_bool(cfg, d) { "yes" } else { "no" }.to_string(),
        Kind::Num { form, .. } => {
            let v = read_num(cfg, d);
            match form {
                Form::MemoryPercent if v < 0 => format!("{}%", -v),
                Form::Octal => format!("{v:o}"),
                _ => v.to_string(),
            }
        }
        Kind::Enum { items, .. } => enum_name(items, read_enum(cfg, d), d.flags & MULTI_ARG != 0),
        Kind::Str { .. } => read_str(cfg, d).map(|v| lossy(&v)).unwrap_or_default(),
        Kind::Special(which) => format_special(cfg, *which),
    }
}

fn format_special(cfg: &Config, which: Special) -> String {
    match which {
        Special::Dir => effective_dir(cfg),
        Special::Save => {
            let rules: Vec<String> = cfg
                .save
                .iter()
                .map(|r| format!("{} {}", r.seconds, r.changes))
                .collect();
            rules.join(" ")
        }
        Special::ClientOutputBufferLimit => {
            let classes = ["normal", "slave", "pubsub"];
            let parts: Vec<String> = classes
                .iter()
                .zip(cfg.client_output_buffer_limit.iter())
                .map(|(class, l)| {
                    format!("{class} {} {} {}", l.hard_bytes, l.soft_bytes, l.soft_secs)
                })
                .collect();
            parts.join(" ")
        }
        Special::OomScoreAdjValues => {
            let values: Vec<String> = cfg
                .oom_score_adj_values
                .iter()
                .map(i32::to_string)
                .collect();
            values.join(" ")
        }
        Special::NotifyKeyspaceEvents => keyspace_events_to_string(cfg.notify_keyspace_events),
        Special::Bind => cfg.bind.join(" "),
        Special::ReplicaOf => match &cfg.replicaof {
            Some(r) => format!("{} {}", r.host, r.port),
            None => String::new(),
        },
        Special::LatencyTrackingInfoPercentiles => {
            let values: Vec<String> = cfg
                .latency_tracking_info_percentiles
                .iter()
                .map(|&p| format_percentile(p))
                .collect();
            values.join(" ")
        }
    }
}

fn assign_special(
    cfg: &mut Config,
    which: Special,
    args: &[Vec<u8>],
    mode: Mode<'_>,
) -> Result<(), String> {
    const WRONG_ARGS: &str = "wrong number of arguments";
    match which {
        Special::Dir => match args {
            [path] => {
                cfg.dir = resolve_dir(cfg, path)?;
                Ok(())
            }
            _ => Err(WRONG_ARGS.to_string()),
        },
        Special::Save => assign_save(cfg, args, mode),
        Special::ClientOutputBufferLimit => assign_obuf(cfg, args),
        Special::OomScoreAdjValues => assign_oom_values(cfg, args),
        Special::NotifyKeyspaceEvents => {
            let [flags] = args else {
                return Err(WRONG_ARGS.to_string());
            };
            cfg.notify_keyspace_events = keyspace_events_from_string(flags)
                .ok_or("Invalid event class character. Use 'Ag$lshzxeKEtmdn'.")?;
            Ok(())
        }
        Special::Bind => {
            if args.len() > BIND_ADDRESSES_MAX {
                return Err("Too many bind addresses specified.".to_string());
            }
            cfg.bind = match args {
                [only] if only.is_empty() => Vec::new(),
                _ => args.iter().map(|a| lossy(a)).collect(),
            };
            Ok(())
        }
        Special::ReplicaOf => assign_replicaof(cfg, args),
        Special::LatencyTrackingInfoPercentiles => assign_percentiles(cfg, args),
    }
}

/// `oom-score-adj-values <master> <replica> <bgchild>`.
fn assign_oom_values(cfg: &mut Config, args: &[Vec<u8>]) -> Result<(), String> {
    let [a, b, c] = args else {
        return Err("wrong number of arguments".to_string());
    };
    let mut values = [0i32; 3];
    for (slot, arg) in values.iter_mut().zip([a, b, c]) {
        match strtoll(arg, 10) {
            (v, true, _) if (-OOM_SCORE_ADJ_MAX..=OOM_SCORE_ADJ_MAX).contains(&v) => {
                *slot = v as i32
            }
            _ => {
                return Err(
                    "Invalid oom-score-adj-values, elements must be between -2000 and \
                            2000."
                        .to_string(),
                )
            }
        }
    }
    cfg.oom_score_adj_values = values;
    Ok(())
}

/// `replicaof <host> <port>`, or `replicaof no one`.
fn assign_replicaof(cfg: &mut Config, args: &[Vec<u8>]) -> Result<(), String> {
    let [host, port] = args else {
        return Err("wrong number of arguments".to_string());
    };
    if host.eq_ignore_ascii_case(b"no") && port.eq_ignore_ascii_case(b"one") {
        cfg.replicaof = None;
        return Ok(());
    }
    let port = match strtoll(port, 10) {
        (p, true, false) => u16::try_from(p).map_err(|_| "Invalid master port")?,
        _ => return Err("Invalid master port".to_string()),
    };
    cfg.replicaof = Some(ReplicaOf {
        host: lossy(host),
        port,
    });
    Ok(())
}

/// `save <seconds> <changes> ...`, or `save ""` for none.
fn assign_save(cfg: &mut Config, args: &[Vec<u8>], mode: Mode<'_>) -> Result<(), String> {
    const INVALID: &str = "Invalid save parameters";
    let args = match args {
        [only] if only.is_empty() => {
            cfg.save.clear();
            &[][..]
        }
        _ => args,
    };
    if !args.len().is_multiple_of(2) {
        return Err(INVALID.to_string());
    }
    let mut rules = Vec::with_capacity(args.len() / 2);
    for pair in args.chunks_exact(2) {
        let (seconds, changes) = match pair {
            [s, c] => (strtoll(s, 10), strtoll(c, 10)),
            _ => return Err(INVALID.to_string()),
        };
        match (seconds, changes) {
            ((s, true, _), (c, true, _)) if s >= 1 && c >= 0 => rules.push(SaveRule {
                seconds: s as u64,
                changes: c as u64,
            }),
            _ => return Err(INVALID.to_string()),
        }
    }
    match mode {
        // The first `save` line of a load replaces the defaults, the next ones add rules.
        Mode::File { save_seen } => {
            if !*save_seen {
                *save_seen = true;
                cfg.save.clear();
            }
        }
        Mode::Command => cfg.save.clear(),
    }
    cfg.save.extend(rules);
    Ok(())
}

/// `client-output-buffer-limit <class> <hard> <soft> <soft-seconds> ...`: all classes are
/// validated before any is changed.
fn assign_obuf(cfg: &mut Config, args: &[Vec<u8>]) -> Result<(), String> {
    if !args.len().is_multiple_of(4) {
        return Err("Wrong number of arguments in buffer limit configuration.".to_string());
    }
    let mut updates = Vec::with_capacity(args.len() / 4);
    for group in args.chunks_exact(4) {
        let [class, hard, soft, secs] = group else {
            continue;
        };
        let class = match class.to_ascii_lowercase().as_slice() {
            b"normal" => ClientClass::Normal,
            b"slave" | b"replica" => ClientClass::Replica,
            b"pubsub" => ClientClass::Pubsub,
            _ => {
                return Err(
                    "Invalid client class specified in buffer limit configuration.".to_string(),
                )
            }
        };
        // Redis stores the seconds in an int, so it checks the truncated value.
        let (secs, secs_whole, _) = strtoll(secs, 10);
        let secs = secs as i32;
        match (memtoull(hard), memtoull(soft)) {
            (Some(hard_bytes), Some(soft_bytes)) if secs >= 0 && secs_whole => {
                let limit = ObufLimit {
                    hard_bytes,
                    soft_bytes,
                    soft_secs: secs as u64,
                };
                updates.push((class, limit));
            }
            _ => {
                return Err(
                    "Error in hard, soft or soft_seconds setting in buffer limit \
                            configuration."
                        .to_string(),
                )
            }
        }
    }
    for (class, limit) in updates {
        if let Some(slot) = cfg.client_output_buffer_limit.get_mut(class as usize) {
            *slot = limit;
        }
    }
    Ok(())
}

fn assign_percentiles(cfg: &mut Config, args: &[Vec<u8>]) -> Result<(), String> {
    let args = match args {
        [only] if only.is_empty() => &[][..],
        _ => args,
    };
    let mut values = Vec::with_capacity(args.len());
    for arg in args {
        let v = parse_double(arg).ok_or("Invalid latency-tracking-info-percentiles parameters")?;
        if !(0.0..=100.0).contains(&v) {
            return Err(
                "latency-tracking-info-percentiles parameters should sit between \
                        [0.0,100.0]"
                    .to_string(),
            );
        }
        values.push(v);
    }
    cfg.latency_tracking_info_percentiles = values;
    Ok(())
}

/// Redis's `string2d`: the whole argument, no leading blank, not NaN.
fn parse_double(arg: &[u8]) -> Option<f64> {
    if arg.first().is_none_or(|&c| super::values::is_c_space(c)) {
        return None;
    }
    let v: f64 = std::str::from_utf8(arg).ok()?.parse().ok()?;
    if v.is_nan() {
        return None;
    }
    Some(v)
}

/// Parses `notify-keyspace-events` classes (`keyspaceEventsStringToFlags`).
pub(crate) fn keyspace_events_from_string(classes: &[u8]) -> Option<u32> {
    let mut flags = 0;
    for &c in classes {
        flags |= match c {
            b'A' => notify::ALL,
            b'g' => notify::GENERIC,
            b'$' => notify::STRING,
            b'l' => notify::LIST,
            b's' => notify::SET,
            b'h' => notify::HASH,
            b'z' => notify::ZSET,
            b'x' => notify::EXPIRED,
            b'e' => notify::EVICTED,
            b'K' => notify::KEYSPACE,
            b'E' => notify::KEYEVENT,
            b't' => notify::STREAM,
            b'm' => notify::KEY_MISS,
            b'd' => notify::MODULE,
            b'n' => notify::NEW,
            _ => return None,
        };
    }
    Some(flags)
}

/// Formats `notify-keyspace-events` flags (`keyspaceEventsFlagsToString`).
pub(crate) fn keyspace_events_to_string(flags: u32) -> String {
    let mut out = String::new();
    if flags & notify::ALL == notify::ALL {
        out.push('A');
    } else {
        let classes = [
            (notify::GENERIC, 'g'),
            (notify::STRING, '$'),
            (notify::LIST, 'l'),
            (notify::SET, 's'),
            (notify::HASH, 'h'),
            (notify::ZSET, 'z'),
            (notify::EXPIRED, 'x'),
            (notify::EVICTED, 'e'),
            (notify::STREAM, 't'),
            (notify::MODULE, 'd'),
            (notify::NEW, 'n'),
        ];
        out.extend(
            classes
                .iter()
                .filter(|(bit, _)| flags & bit != 0)
                .map(|&(_, c)| c),
        );
    }
    let tail = [
        (notify::KEYSPACE, 'K'),
        (notify::KEYEVENT, 'E'),
        (notify::KEY_MISS, 'm'),
    ];
    out.extend(
        tail.iter()
            .filter(|(bit, _)| flags & bit != 0)
            .map(|&(_, c)| c),
    );
    out
}

/// The directory the server runs in: `dir` once set (absolute), else the process's.
pub(crate) fn effective_dir(cfg: &Config) -> String {
    match std::fs::canonicalize(&cfg.dir) {
        Ok(path) => path.to_string_lossy().into_owned(),
        Err(_) => cfg.dir.clone(),
    }
}

/// Resolves a path the way the process would see it after Redis's `chdir(dir)`.
pub(crate) fn path_in_dir(cfg: &Config, path: &Path) -> PathBuf {
    Path::new(&cfg.dir).join(path)
}

/// Redis `chdir()`s; we check the directory exists and keep its canonical absolute path, with
/// the error text `chdir` would have given.
fn resolve_dir(cfg: &Config, path: &[u8]) -> Result<String, String> {
    let target = path_in_dir(cfg, Path::new(&lossy(path)));
    let meta = std::fs::metadata(&target).map_err(|e| strerror(&e))?;
    if !meta.is_dir() {
        return Err("Not a directory".to_string());
    }
    let canonical = std::fs::canonicalize(&target).map_err(|e| strerror(&e))?;
    Ok(canonical.to_string_lossy().into_owned())
}

/// Splits a multi-argument value from the config file: one non-empty argument is split again
/// (so `--save "900 1"` works), otherwise the words are used as they are.
pub(crate) fn file_args(d: &Directive, words: &[Vec<u8>]) -> Vec<Vec<u8>> {
    match words {
        [only] if d.flags & MULTI_ARG != 0 && !only.is_empty() => {
            split_args(only).unwrap_or_default()
        }
        _ => words.to_vec(),
    }
}

#[cfg(test)]
mod tests {
    use super::super::directives::lookup;
    use super::*;

    fn set(cfg: &mut Config, name: &str, args: &[&str]) -> Result<(), String> {
        let (d, _) = lookup(name.as_bytes()).ok_or("no such directive")?;
        let args: Vec<Vec<u8>> = args.iter().map(|a| a.as_bytes().to_vec()).collect();
        assign(cfg, d, &args, Mode::Command)
    }

    fn get(cfg: &Config, name: &str) -> String {
        lookup(name.as_bytes())
            .map(|(d, _)| format_get(cfg, d))
            .unwrap_or_default()
    }

    #[test]
    fn numbers_and_ranges() {
        let mut c = Config::default();
        assert_eq!(
            set(&mut c, "port", &["abc"]),
            Err("argument couldn't be parsed into an integer".into())
        );
        assert_eq!(
            set(&mut c, "port", &["65536"]),
            Err("argument must be between 0 and 65535 inclusive".into())
        );
        set(&mut c, "port", &["7000"]).expect("valid");
        assert_eq!(c.port, 7000);
        let neg = set(&mut c, "hash-max-listpack-entries", &["-1"]);
        assert_eq!(
            neg,
            Err("argument must be between 0 and 9223372036854775807 inclusive".into())
        );
        set(&mut c, "maxmemory", &["1GB"]).expect("valid");
        assert_eq!(
            (c.maxmemory, get(&c, "maxmemory")),
            (1 << 30, "1073741824".to_string())
        );
        assert_eq!(
            set(&mut c, "maxmemory", &["10xb"]),
            Err("argument must be a memory value".into())
        );
        set(&mut c, "maxmemory-clients", &["5%"]).expect("valid");
        assert_eq!(get(&c, "maxmemory-clients"), "5%");
        let too_big = set(&mut c, "maxmemory-clients", &["200%"]);
        assert_eq!(
            too_big,
            Err("percentage argument must be less or equal to 100".into())
        );
        let bad = set(&mut c, "maxmemory-clients", &["-1"]);
        assert_eq!(
            bad,
            Err("argument must be a memory or percent value".into())
        );
        assert_eq!(
            set(&mut c, "unixsocketperm", &["999"]),
            Err("argument couldn't be parsed as an octal number".into())
        );
        assert_eq!(
            set(&mut c, "unixsocketperm", &["1000"]),
            Err("argument must be between 0 and 777 inclusive".into())
        );
        set(&mut c, "unixsocketperm", &["700"]).expect("valid");
        assert_eq!(
            (c.unixsocketperm, get(&c, "unixsocketperm")),
            (0o700, "700".to_string())
        );
        set(&mut c, "hz", &["0"]).expect("valid");
        assert_eq!(c.hz, 1);
        set(&mut c, "hz", &["9999"]).expect("valid");
        assert_eq!(get(&c, "hz"), "500");
        set(&mut c, "maxmemory", &["18446744073709551615"]).expect("unsigned wraps in range");
        assert_eq!(c.maxmemory, u64::MAX);
    }

    #[test]
    fn enums_and_flags() {
        let mut c = Config::default();
        let err = set(&mut c, "loglevel", &["foo"]);
        assert_eq!(
            err,
            Err("argument(s) must be one of the following: debug, verbose, notice, warning".into())
        );
        set(&mut c, "appendfsync", &["ALWAYS"]).expect("any case");
        assert_eq!(c.appendfsync, super::super::AppendFsync::Always);
        set(&mut c, "shutdown-on-sigint", &["nosave", "force", "now"]).expect("flags");
        assert_eq!(get(&c, "shutdown-on-sigint"), "nosave now force");
        let both = set(&mut c, "shutdown-on-sigint", &["save", "nosave"]);
        assert_eq!(
            both,
            Err("shutdown options SAVE and NOSAVE can't be used simultaneously".into())
        );
        set(&mut c, "oom-score-adj", &["relative"]).expect("alias item");
        assert_eq!(get(&c, "oom-score-adj"), "yes");
        set(&mut c, "io-backend", &["epoll"]).expect("valid");
        assert_eq!(c.io_backend, super::super::IoBackend::Epoll);
    }

    #[test]
    fn specials() {
        let mut c = Config::default();
        set(&mut c, "notify-keyspace-events", &["KEA"]).expect("valid");
        assert_eq!(get(&c, "notify-keyspace-events"), "AKE");
        set(&mut c, "notify-keyspace-events", &["Ex"]).expect("valid");
        assert_eq!(get(&c, "notify-keyspace-events"), "xE");
        let bad = set(&mut c, "notify-keyspace-events", &["KEAq"]);
        assert_eq!(
            bad,
            Err("Invalid event class character. Use 'Ag$lshzxeKEtmdn'.".into())
        );
        set(
            &mut c,
            "client-output-buffer-limit",
            &["pubsub", "1mb", "0", "0"],
        )
        .expect("ok");
        assert_eq!(
            get(&c, "client-output-buffer-limit"),
            "normal 0 0 0 slave 268435456 67108864 60 pubsub 1048576 0 0"
        );
        let bad = set(
            &mut c,
            "client-output-buffer-limit",
            &["master", "1", "1", "1"],
        );
        assert_eq!(
            bad,
            Err("Invalid client class specified in buffer limit configuration.".into())
        );
        set(&mut c, "replicaof", &["10.0.0.1", "6380"]).expect("ok");
        assert_eq!(get(&c, "replicaof"), "10.0.0.1 6380");
        assert_eq!(
            set(&mut c, "replicaof", &["h", "abc"]),
            Err("Invalid master port".into())
        );
        set(&mut c, "replicaof", &["NO", "one"]).expect("ok");
        assert_eq!(c.replicaof, None);
        set(
            &mut c,
            "latency-tracking-info-percentiles",
            &["1.5", "99.99900"],
        )
        .expect("ok");
        assert_eq!(get(&c, "latency-tracking-info-percentiles"), "1.5 99.999");
        let bad = set(&mut c, "latency-tracking-info-percentiles", &["101"]);
        assert!(bad.is_err());
        set(&mut c, "bind", &[""]).expect("ok");
        assert!(c.bind.is_empty());
        let many: Vec<String> = (0..17).map(|i| i.to_string()).collect();
        let many: Vec<&str> = many.iter().map(String::as_str).collect();
        assert_eq!(
            set(&mut c, "bind", &many),
            Err("Too many bind addresses specified.".into())
        );
        assert_eq!(
            set(&mut c, "oom-score-adj-values", &["1", "2"]),
            Err("wrong number of arguments".into())
        );
        set(&mut c, "oom-score-adj-values", &["1", "2", "3"]).expect("ok");
        assert_eq!(get(&c, "oom-score-adj-values"), "1 2 3");
    }

    #[test]
    fn save_rules_accumulate_only_in_files() {
        let (d, _) = lookup(b"save").expect("save");
        let mut c = Config::default();
        let mut seen = false;
        let words = |s: &str| {
            s.split(' ')
                .map(|w| w.as_bytes().to_vec())
                .collect::<Vec<_>>()
        };
        assign(
            &mut c,
            d,
            &words("900 1"),
            Mode::File {
                save_seen: &mut seen,
            },
        )
        .expect("ok");
        assign(
            &mut c,
            d,
            &words("300 10"),
            Mode::File {
                save_seen: &mut seen,
            },
        )
        .expect("ok");
        assert_eq!(get(&c, "save"), "900 1 300 10");
        assign(&mut c, d, &words("60 5"), Mode::Command).expect("ok");
        assert_eq!(get(&c, "save"), "60 5");
        assert_eq!(
            set(&mut c, "save", &["900"]),
            Err("Invalid save parameters".into())
        );
        assert_eq!(
            set(&mut c, "save", &["0", "1"]),
            Err("Invalid save parameters".into())
        );
        set(&mut c, "save", &[""]).expect("ok");
        assert!(c.save.is_empty());
    }

    #[test]
    fn strings_and_dir() {
        let mut c = Config::default();
        let bad = set(&mut c, "dbfilename", &["a/b"]);
        assert_eq!(
            bad,
            Err("dbfilename can't be a path, just a filename".into())
        );
        assert_eq!(
            set(&mut c, "appendfilename", &[""]),
            Err("appendfilename can't be empty".into())
        );
        set(&mut c, "pidfile", &["/tmp/x.pid"]).expect("ok");
        assert_eq!(c.pidfile, "/tmp/x.pid");
        set(&mut c, "masteruser", &[""]).expect("ok");
        assert_eq!(c.masteruser, None);
        let missing = set(&mut c, "dir", &["/nonexistent-shardis-dir"]);
        assert_eq!(missing, Err("No such file or directory".into()));
        let tmp = std::env::temp_dir();
        set(&mut c, "dir", &[&tmp.to_string_lossy()]).expect("ok");
        let canonical = std::fs::canonicalize(&tmp).expect("tmp");
        assert_eq!(c.dir, canonical.to_string_lossy());
        assert_eq!(get(&c, "dir"), c.dir);
    }

    #[test]
    fn keyspace_event_round_trip() {
        for s in ["", "A", "AKE", "g$lshzxetn", "KEm", "xE"] {
            let flags = keyspace_events_from_string(s.as_bytes()).expect(s);
            assert_eq!(keyspace_events_to_string(flags), s);
        }
    }
}
