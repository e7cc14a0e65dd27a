//! The slow log: the most recent commands that took at least `slowlog-log-slower-than`
//! microseconds, newest first, at most `slowlog-max-len` of them (Redis's slowlog.c).
//!
//! An entry keeps at most 32 arguments (the last one replaced by "... (N more arguments)"),
//! each string cut to 128 bytes plus "... (N more bytes)", and sensitive arguments
//! (passwords of AUTH, HELLO AUTH and sensitive CONFIG SET values) replaced by "(redacted)".

use crate::commands::Cmd;
use bytes::Bytes;
use std::collections::VecDeque;

/// `SLOWLOG_ENTRY_MAX_ARGC` and `SLOWLOG_ENTRY_MAX_STRING`.
pub const ENTRY_ARGS_MAX: usize = 32;
pub const ENTRY_STRING_BYTES_MAX: usize = 128;

pub struct Entry {
    pub id: u64,
    pub time_secs: u64,
    pub duration_us: u64,
    pub args: Vec<Vec<u8>>,
    pub addr: String,
    pub name: Vec<u8>,
}

/// Configs whose values CONFIG SET must not show (Redis's `SENSITIVE_CONFIG`).
const SENSITIVE_CONFIGS: &[&str] = &["masterauth", "masteruser", "requirepass"];

/// Indices of arguments Redis replaces by "(redacted)" before logging (slow log and MONITOR).
pub fn redacted(cmd: &Cmd, args: &[Bytes]) -> Vec<usize> {
    let eq = |a: &[u8], s: &str| a.eq_ignore_ascii_case(s.as_bytes());
    match cmd.name {
        "auth" => (1..args.len()).collect(),
        "hello" => {
            let mut v = Vec::new();
            let mut j = 2;
            while j < args.len() {
                if eq(&args[j], "auth") && j + 2 < args.len() {
                    v.extend([j + 1, j + 2]);
                    j += 3;
                } else {
                    j += 1;
                }
            }
            v
        }
        "migrate" => {
            // As MIGRATE's option parser redacts: up to KEYS or the first unknown option.
            let mut v = Vec::new();
            let mut j = 6;
            while j < args.len() {
                let more = args.len() - 1 - j;
                if eq(&args[j], "copy") || eq(&args[j], "replace") {
                    j += 1;
                } else if eq(&args[j], "auth") && more >= 1 {
                    v.push(j + 1);
                    j += 2;
                } else if eq(&args[j], "auth2") && more >= 2 {
                    v.extend([j + 1, j + 2]);
                    j += 3;
                } else {
                    break;
                }
            }
            v
        }
        "setuser" if args.first().is_some_and(|a| eq(a, "acl")) => (2..args.len()).collect(),
        "set" if args.first().is_some_and(|a| eq(a, "config")) => {
            let mut v = Vec::new();
            let mut j = 2;
            while j + 1 < args.len() {
                if SENSITIVE_CONFIGS.iter().any(|s| eq(&args[j], s)) {
                    v.push(j + 1);
                }
                j += 2;
            }
            v
        }
        _ => Vec::new(),
    }
}

impl Entry {
    /// Builds an entry (its id is given when pushed).
    pub fn new(
        cmd: &'static Cmd,
        args: &[Bytes],
        duration_us: u64,
        addr: String,
        name: Vec<u8>,
    ) -> Entry {
        let hidden = redacted(cmd, args);
        let argc = args.len().min(ENTRY_ARGS_MAX);
        let mut out = Vec::with_capacity(argc);
        for (j, a) in args.iter().take(argc).enumerate() {
            if argc != args.len() && j == argc - 1 {
                out.push(format!("... ({} more arguments)", args.len() - argc + 1).into_bytes());
            } else if hidden.contains(&j) {
                out.push(b"(redacted)".to_vec());
            } else if a.len() > ENTRY_STRING_BYTES_MAX {
                let mut s = a[..ENTRY_STRING_BYTES_MAX].to_vec();
                s.extend_from_slice(
                    format!("... ({} more bytes)", a.len() - ENTRY_STRING_BYTES_MAX).as_bytes(),
                );
                out.push(s);
            } else {
                out.push(a.to_vec());
            }
        }
        Entry {
            id: 0,
            time_secs: crate::util::now_ms() / 1000,
            duration_us,
            args: out,
            addr,
            name,
        }
    }
}

#[derive(Default)]
pub struct SlowLog {
    /// Newest first.
    entries: VecDeque<Entry>,
    next_id: u64,
}

impl SlowLog {
    /// Adds an entry and trims the log to `max_len` (Redis trims only on push, so lowering
    /// `slowlog-max-len` takes effect at the next slow command).
    pub fn push(&mut self, mut e: Entry, max_len: u64) {
        e.id = self.next_id;
        self.next_id += 1;
        self.entries.push_front(e);
        while self.entries.len() as u64 > max_len {
            self.entries.pop_back();
        }
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Entry ids keep counting across a reset, as in Redis.
    pub fn reset(&mut self) {
        self.entries.clear();
    }

    pub fn newest(&self, count: usize) -> impl Iterator<Item = &Entry> {
        self.entries.iter().take(count)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cmd(name: &str) -> &'static Cmd {
        crate::commands::lookup(name.as_bytes()).unwrap()
    }

    fn args(v: &[&str]) -> Vec<Bytes> {
        v.iter()
            .map(|s| Bytes::copy_from_slice(s.as_bytes()))
            .collect()
    }

    #[test]
    fn trims_arguments_and_strings() {
        let many: Vec<String> = (0..40).map(|i| i.to_string()).collect();
        let refs: Vec<&str> = many.iter().map(|s| s.as_str()).collect();
        let e = Entry::new(cmd("sadd"), &args(&refs), 5, "a:1".into(), vec![]);
        assert_eq!(e.args.len(), 32);
        assert_eq!(e.args[31], b"... (9 more arguments)");
        assert_eq!(e.args[30], b"30");
        let long = "A".repeat(129);
        let e = Entry::new(
            cmd("set"),
            &args(&["set", "k", &long]),
            5,
            "".into(),
            vec![],
        );
        let want = format!("{}... (1 more bytes)", "A".repeat(128));
        assert_eq!(e.args[2], want.as_bytes());
    }

    #[test]
    fn redacts_migrate_credentials() {
        let cmd = crate::commands::lookup(b"migrate").expect("migrate");
        let args: Vec<Bytes> = [
            "migrate", "h", "1", "k", "0", "5000", "COPY", "AUTH2", "u", "p",
        ]
        .iter()
        .map(|s| Bytes::from(s.to_string()))
        .collect();
        assert_eq!(redacted(cmd, &args), vec![8, 9]);
        let args: Vec<Bytes> = [
            "migrate", "h", "1", "", "0", "5000", "AUTH", "pw", "KEYS", "a",
        ]
        .iter()
        .map(|s| Bytes::from(s.to_string()))
        .collect();
        assert_eq!(redacted(cmd, &args), vec![7]);
    }

    #[test]
    fn redacts_passwords() {
        let e = Entry::new(
            cmd("auth"),
            &args(&["auth", "u", "p"]),
            1,
            "".into(),
            vec![],
        );
        assert_eq!(
            e.args,
            vec![
                b"auth".to_vec(),
                b"(redacted)".to_vec(),
                b"(redacted)".to_vec()
            ]
        );
        let config = crate::commands::lookup(b"config").unwrap();
        let set = config.find_sub(b"set").unwrap();
        let a = args(&["config", "set", "masterauth", "pw", "hz", "10"]);
        let e = Entry::new(set, &a, 1, "".into(), vec![]);
        assert_eq!(e.args[3], b"(redacted)");
        assert_eq!(e.args[5], b"10");
    }

    #[test]
    fn ids_survive_reset_and_length_is_bounded() {
        let mut log = SlowLog::default();
        for _ in 0..5 {
            log.push(
                Entry::new(cmd("ping"), &args(&["ping"]), 1, "".into(), vec![]),
                3,
            );
        }
        assert_eq!(log.len(), 3);
        assert_eq!(log.newest(1).next().unwrap().id, 4);
        log.reset();
        assert!(log.is_empty());
        log.push(
            Entry::new(cmd("ping"), &args(&["ping"]), 1, "".into(), vec![]),
            3,
        );
        assert_eq!(log.newest(1).next().unwrap().id, 5);
    }
}
