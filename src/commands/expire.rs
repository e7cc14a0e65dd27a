//! Expiry commands: EXPIRE, PEXPIRE, EXPIREAT, PEXPIREAT, TTL, PTTL, EXPIRETIME, PEXPIRETIME
//! and PERSIST.
//!
//! A key's deadline is stored as absolute Unix milliseconds (`Entry::expire_ms`, 0 = none).
//! Every time computation uses the command's clock, `Keyspace::now_ms`, read once per command
//! as Redis does, so a handler sees one consistent "now" and tests control time exactly.
//!
//! The setters follow Redis's order of checks, which decides which error a client sees: the
//! NX/XX/GT/LT options first, then the integer, then overflow of the unit conversion and of
//! the addition of the base time, and only then whether the key exists. A deadline that is
//! already past deletes the key (and counts as a DEL). The TTL family looks keys up the way
//! Redis's `LOOKUP_NOTOUCH` does: lazily expired, counted as hits or misses, access time
//! untouched.

use super::keys::lookup_notouch;
use super::{err, flag, parse, prop, Cmd, Keys};
use crate::protocol::Out;
use crate::storage::Keyspace;
use bytes::Bytes;

const KEY1: Keys = Keys::Range(1, 1, 1);
const SET_FLAGS: u32 = flag::WRITE | flag::FAST;
const GET_FLAGS: u32 = flag::READONLY | flag::FAST;
const ACL_WRITE: &[&str] = &["keyspace", "write", "fast"];
const ACL_READ: &[&str] = &["keyspace", "read", "fast"];

pub static COMMANDS: [Cmd; 9] = [
    Cmd::data("expire", -3, SET_FLAGS, KEY1, expire).with_acl(ACL_WRITE),
    Cmd::data("pexpire", -3, SET_FLAGS, KEY1, pexpire).with_acl(ACL_WRITE),
    Cmd::data("expireat", -3, SET_FLAGS, KEY1, expireat).with_acl(ACL_WRITE),
    Cmd::data("pexpireat", -3, SET_FLAGS, KEY1, pexpireat).with_acl(ACL_WRITE),
    Cmd::data("ttl", 2, GET_FLAGS, KEY1, ttl).with_acl(ACL_READ),
    Cmd::data("pttl", 2, GET_FLAGS, KEY1, pttl).with_acl(ACL_READ),
    Cmd::data("expiretime", 2, GET_FLAGS, KEY1, expiretime).with_acl(ACL_READ),
    Cmd::data("pexpiretime", 2, GET_FLAGS, KEY1, pexpiretime).with_acl(ACL_READ),
    Cmd::data("persist", 2, SET_FLAGS, KEY1, persist).with_acl(ACL_WRITE),
];

#[derive(Clone, Copy, PartialEq, Eq)]
enum Unit {
    Seconds,
    Milliseconds,
}

/// The EXPIRE options NX, XX, GT and LT.
#[derive(Clone, Copy, Default)]
struct Conditions {
    /// Only when the key has no deadline.
    nx: bool,
    /// Only when the key has a deadline.
    xx: bool,
    /// Only when the new deadline is later; no deadline counts as infinitely late.
    gt: bool,
    /// Only when the new deadline is earlier; no deadline counts as infinitely late.
    lt: bool,
}

impl Conditions {
    /// Redis's `parseExtendedExpireArgumentsOrReply`: any mix of the four words (repeats are
    /// fine), then the compatibility rules. XX combines with GT or LT: both must hold.
    fn parse(opts: &[Bytes]) -> Result<Conditions, String> {
        let mut c = Conditions::default();
        for opt in opts {
            if parse::eq(opt, "nx") {
                c.nx = true;
            } else if parse::eq(opt, "xx") {
                c.xx = true;
            } else if parse::eq(opt, "gt") {
                c.gt = true;
            } else if parse::eq(opt, "lt") {
                c.lt = true;
            } else {
                // Redis formats the option with %s: it ends at a NUL byte.
                let shown = opt.split(|&b| b == 0).next().unwrap_or_default();
                let shown = String::from_utf8_lossy(shown);
                return Err(format!("ERR Unsupported option {}", shown));
            }
        }
        if c.nx && (c.xx || c.gt || c.lt) {
            let e = "ERR NX and XX, GT or LT options at the same time are not compatible";
            return Err(e.to_string());
        }
        if c.gt && c.lt {
            return Err("ERR GT and LT options at the same time are not compatible".to_string());
        }
        Ok(c)
    }

    /// Whether `when_ms` may replace the key's deadline `current_ms` (None = no deadline).
    fn hold(self, current_ms: Option<i64>, when_ms: i64) -> bool {
        let refused = (self.nx && current_ms.is_some())
            || (self.xx && current_ms.is_none())
            || (self.gt && current_ms.is_none_or(|c| when_ms <= c))
            || (self.lt && current_ms.is_some_and(|c| when_ms >= c));
        !refused
    }
}

/// The absolute deadline in ms from the time argument, or Redis's overflow error.
fn deadline_ms(arg: i64, unit: Unit, base_ms: i64, command: &str) -> Result<i64, String> {
    let ms = match unit {
        Unit::Seconds => arg.checked_mul(1000),
        Unit::Milliseconds => Some(arg),
    };
    ms.and_then(|ms| ms.checked_add(base_ms))
        .ok_or_else(|| err::invalid_expire(command))
}

/// EXPIRE, PEXPIRE, EXPIREAT and PEXPIREAT. `relative` adds the command's clock.
fn expire_generic(ks: &mut Keyspace, args: &[Bytes], out: &mut Out, unit: Unit, relative: bool) {
    let command = match (unit, relative) {
        (Unit::Seconds, true) => "expire",
        (Unit::Milliseconds, true) => "pexpire",
        (Unit::Seconds, false) => "expireat",
        (Unit::Milliseconds, false) => "pexpireat",
    };
    let key = &args[1];
    let conditions = match Conditions::parse(&args[3..]) {
        Ok(c) => c,
        Err(e) => return out.error(&e),
    };
    let arg = match parse::i64_arg(&args[2]) {
        Ok(n) => n,
        Err(e) => return out.error(e),
    };
    let now_ms = i64::try_from(ks.now_ms).unwrap_or(i64::MAX);
    let base_ms = if relative { now_ms } else { 0 };
    let when_ms = match deadline_ms(arg, unit, base_ms, command) {
        Ok(w) => w,
        Err(e) => return out.error(&e),
    };
    let Some(entry) = ks.lookup_write(key) else {
        return out.int(0);
    };
    let current_ms =
        (entry.expire_ms != 0).then(|| i64::try_from(entry.expire_ms).unwrap_or(i64::MAX));
    if !conditions.hold(current_ms, when_ms) {
        return out.int(0);
    }
    if when_ms <= now_ms && !(ks.loading && when_ms > 0) {
        ks.remove(key);
        ks.signal_modified(key);
        ks.notify('g', "del", key);
        ks.rewrite_as(|| prop::deletion(key, prop::lazy_expire()));
    } else {
        // `when_ms > now_ms >= 0` (or a past deadline kept while loading, where the file's
        // PEXPIREAT is positive), so it is never the 0 of "none".
        ks.set_expire(key, when_ms.unsigned_abs());
        ks.signal_modified(key);
        ks.notify('g', "expire", key);
        // Propagated as PEXPIREAT with the absolute deadline, keeping the conditions.
        if command != "pexpireat" {
            ks.rewrite_as(|| {
                let mut v = vec![prop::lit("PEXPIREAT"), key.clone(), prop::num(when_ms)];
                v.extend_from_slice(&args[3..]);
                v
            });
        }
    }
    ks.dirty(1);
    out.int(1);
}

fn expire(ks: &mut Keyspace, args: &[Bytes], out: &mut Out) {
    expire_generic(ks, args, out, Unit::Seconds, true);
}

fn pexpire(ks: &mut Keyspace, args: &[Bytes], out: &mut Out) {
    expire_generic(ks, args, out, Unit::Milliseconds, true);
}

fn expireat(ks: &mut Keyspace, args: &[Bytes], out: &mut Out) {
    expire_generic(ks, args, out, Unit::Seconds, false);
}

fn pexpireat(ks: &mut Keyspace, args: &[Bytes], out: &mut Out) {
    expire_generic(ks, args, out, Unit::Milliseconds, false);
}

/// TTL, PTTL, EXPIRETIME and PEXPIRETIME: -2 for a missing key, -1 without a deadline, else
/// the remaining (or absolute) time, never negative. Seconds round to nearest, as Redis's
/// `(ttl+500)/1000`.
fn ttl_generic(ks: &mut Keyspace, args: &[Bytes], out: &mut Out, unit: Unit, absolute: bool) {
    let now_ms = ks.now_ms;
    let deadline = lookup_notouch(ks, &args[1], |e| e.map(|e| e.expire_ms));
    let reply = match deadline {
        None => -2,
        Some(0) => -1,
        Some(deadline_ms) => {
            let ms = if absolute {
                deadline_ms
            } else {
                deadline_ms.saturating_sub(now_ms)
            };
            let value = match unit {
                Unit::Milliseconds => i128::from(ms),
                Unit::Seconds => (i128::from(ms) + 500) / 1000,
            };
            i64::try_from(value).unwrap_or(i64::MAX)
        }
    };
    out.int(reply);
}

fn ttl(ks: &mut Keyspace, args: &[Bytes], out: &mut Out) {
    ttl_generic(ks, args, out, Unit::Seconds, false);
}

fn pttl(ks: &mut Keyspace, args: &[Bytes], out: &mut Out) {
    ttl_generic(ks, args, out, Unit::Milliseconds, false);
}

fn expiretime(ks: &mut Keyspace, args: &[Bytes], out: &mut Out) {
    ttl_generic(ks, args, out, Unit::Seconds, true);
}

fn pexpiretime(ks: &mut Keyspace, args: &[Bytes], out: &mut Out) {
    ttl_generic(ks, args, out, Unit::Milliseconds, true);
}

fn persist(ks: &mut Keyspace, args: &[Bytes], out: &mut Out) {
    let key = &args[1];
    let had_deadline = ks.lookup_write(key).is_some_and(|e| e.expire_ms != 0);
    if !had_deadline {
        return out.int(0);
    }
    ks.set_expire(key, 0);
    ks.signal_modified(key);
    ks.notify('g', "persist", key);
    ks.dirty(1);
    out.int(1);
}

#[cfg(test)]
mod tests {
    use super::super::keys::harness::{World, T0_MS};

    fn check(w: &mut World, cases: &[(&str, &str)]) {
        for (line, reply) in cases {
            assert_eq!(w.run(line), *reply, "{}", line);
        }
    }

    const NX_CONFLICT: &str =
        "-ERR NX and XX, GT or LT options at the same time are not compatible\r\n";
    const GT_LT_CONFLICT: &str = "-ERR GT and LT options at the same time are not compatible\r\n";

    #[test]
    fn option_errors_come_first() {
        let mut w = World::new(2);
        w.set("a", "1");
        check(
            &mut w,
            &[
                ("expire a 100 nx xx", NX_CONFLICT),
                ("expire a 100 nx gt", NX_CONFLICT),
                ("expire a 100 lt nx", NX_CONFLICT),
                ("expire a 100 gt lt", GT_LT_CONFLICT),
                ("expire a 100 xx gt lt", GT_LT_CONFLICT),
                ("expire a 100 foo", "-ERR Unsupported option foo\r\n"),
                ("expire a 100 nx foo", "-ERR Unsupported option foo\r\n"),
                ("expire nokey 100 foo", "-ERR Unsupported option foo\r\n"),
                ("expire nokey x foo", "-ERR Unsupported option foo\r\n"),
                (
                    "expire a foo nx",
                    "-ERR value is not an integer or out of range\r\n",
                ),
                (
                    "expire nokey foo",
                    "-ERR value is not an integer or out of range\r\n",
                ),
                (
                    "expire a",
                    "-ERR wrong number of arguments for 'expire' command\r\n",
                ),
            ],
        );
        assert_eq!(
            w.run_args(&[b"expire", b"a", b""]),
            "-ERR value is not an integer or out of range\r\n"
        );
        assert_eq!(w.run("ttl a"), ":-1\r\n");
        assert_eq!(w.dirty(), 0);
    }

    #[test]
    fn overflow_errors() {
        let mut w = World::new(1);
        w.set("a", "1");
        check(
            &mut w,
            &[
                (
                    "expire a 9223372036854775807",
                    "-ERR invalid expire time in 'expire' command\r\n",
                ),
                (
                    "expire a 9223372036854776",
                    "-ERR invalid expire time in 'expire' command\r\n",
                ),
                (
                    "expire a -9223372036854776",
                    "-ERR invalid expire time in 'expire' command\r\n",
                ),
                (
                    "pexpire a 9223372036854775807",
                    "-ERR invalid expire time in 'pexpire' command\r\n",
                ),
                (
                    "expireat a 9223372036854776",
                    "-ERR invalid expire time in 'expireat' command\r\n",
                ),
                ("expireat a 9223372036854775", ":1\r\n"),
                ("pexpireat a 9223372036854775807", ":1\r\n"),
                ("pexpiretime a", ":9223372036854775807\r\n"),
                ("expiretime a", ":9223372036854776\r\n"),
                ("pexpireat a -9223372036854775808", ":1\r\n"),
                ("exists a", ":0\r\n"),
            ],
        );
    }

    #[test]
    fn condition_matrix() {
        // (TTL before in s or none, command, reply, TTL after)
        let cases: &[(Option<u64>, &str, &str, i64)] = &[
            (None, "expire k 100", ":1\r\n", 100),
            (None, "expire k 100 nx", ":1\r\n", 100),
            (None, "expire k 100 xx", ":0\r\n", -1),
            (None, "expire k 100 gt", ":0\r\n", -1),
            (None, "expire k 100 lt", ":1\r\n", 100),
            (None, "expire k 100 xx lt", ":0\r\n", -1),
            (None, "expire k 100 xx gt", ":0\r\n", -1),
            (None, "expire k 100 NX nx", ":1\r\n", 100),
            (Some(50), "expire k 100", ":1\r\n", 100),
            (Some(50), "expire k 100 nx", ":0\r\n", 50),
            (Some(50), "expire k 100 xx", ":1\r\n", 100),
            (Some(50), "expire k 100 gt", ":1\r\n", 100),
            (Some(50), "expire k 10 gt", ":0\r\n", 50),
            (Some(50), "expire k 50 gt", ":0\r\n", 50),
            (Some(50), "expire k 10 lt", ":1\r\n", 10),
            (Some(50), "expire k 100 lt", ":0\r\n", 50),
            (Some(50), "expire k 50 lt", ":0\r\n", 50),
            (Some(50), "expire k 10 xx lt", ":1\r\n", 10),
            (Some(50), "expire k 100 gt xx", ":1\r\n", 100),
            (Some(50), "pexpire k 100 lt", ":1\r\n", 0),
            (Some(50), "pexpire k 1500 xx", ":1\r\n", 2),
            (Some(50), "pexpire k 1499 xx", ":1\r\n", 1),
        ];
        for &(before, line, reply, after) in cases {
            let mut w = World::new(2);
            w.put(0, "k", "v", before.map_or(0, |s| T0_MS + s * 1000));
            assert_eq!(w.run(line), reply, "{line} with ttl {before:?}");
            assert_eq!(
                w.run("ttl k"),
                format!(":{after}\r\n"),
                "{line} with ttl {before:?}"
            );
        }
    }

    #[test]
    fn past_deadlines_delete() {
        let cases = [
            "expire k -1",
            "expire k 0",
            "pexpire k 0",
            "expireat k 0",
            "pexpireat k 1",
            "expireat k 1700000000",
            "expire k -1 lt",
            "expire k -1 nx",
        ];
        for line in cases {
            let mut w = World::new(2);
            w.set("k", "v");
            assert_eq!(w.run(line), ":1\r\n", "{}", line);
            assert_eq!(w.stored(0), 0, "{}", line);
            assert_eq!(w.dirty(), 1, "{}", line);
        }
        let mut w = World::new(2);
        w.set("k", "v");
        assert_eq!(w.run("expire k -1 gt"), ":0\r\n");
        assert_eq!(w.run("expire k -1 xx"), ":0\r\n");
        assert_eq!(w.run("expire nokey -1"), ":0\r\n");
        assert_eq!(w.stored(0), 1);
        // One millisecond in the future keeps the key.
        assert_eq!(w.run("pexpireat k 1700000000001"), ":1\r\n");
        assert_eq!(w.run("pttl k"), ":1\r\n");
        w.now_ms += 1;
        assert_eq!(w.run("pttl k"), ":-2\r\n");
    }

    #[test]
    fn ttl_family() {
        let mut w = World::new(2);
        w.set("p", "v");
        w.put(0, "v", "x", T0_MS + 99_999_999_000);
        check(
            &mut w,
            &[
                ("ttl nokey", ":-2\r\n"),
                ("pttl nokey", ":-2\r\n"),
                ("expiretime nokey", ":-2\r\n"),
                ("pexpiretime nokey", ":-2\r\n"),
                ("ttl p", ":-1\r\n"),
                ("pttl p", ":-1\r\n"),
                ("expiretime p", ":-1\r\n"),
                ("pexpiretime p", ":-1\r\n"),
                ("ttl v", ":99999999\r\n"),
                ("pttl v", ":99999999000\r\n"),
                ("expireat v 99999999999", ":1\r\n"),
                ("expiretime v", ":99999999999\r\n"),
                ("pexpiretime v", ":99999999999000\r\n"),
            ],
        );
        w.put(0, "r", "x", T0_MS + 1_500);
        assert_eq!(w.run("ttl r"), ":2\r\n");
        w.now_ms += 1;
        assert_eq!(w.run("ttl r"), ":1\r\n");
        assert_eq!(w.run("pttl r"), ":1499\r\n");
        w.now_ms += 1_499;
        assert_eq!(w.run("ttl r"), ":-2\r\n");
        // Lookups leave the access time alone and count as hits/misses.
        w.entry(0, "v").expect("stored").lru_secs = 3;
        w.run("ttl v");
        assert_eq!(w.entry(0, "v").expect("stored").lru_secs, 3);
    }

    #[test]
    fn persist_removes_the_deadline() {
        let mut w = World::new(2);
        w.put(0, "v", "x", T0_MS + 10_000);
        w.set("p", "x");
        check(
            &mut w,
            &[
                ("persist v", ":1\r\n"),
                ("persist v", ":0\r\n"),
                ("ttl v", ":-1\r\n"),
                ("persist p", ":0\r\n"),
                ("persist nokey", ":0\r\n"),
            ],
        );
        assert_eq!(w.shards.iter().map(|s| s.dbs[0].volatile).sum::<usize>(), 0);
        assert_eq!(w.dirty(), 1);
        w.put(0, "gone", "x", T0_MS);
        assert_eq!(w.run("persist gone"), ":0\r\n");
        assert_eq!(w.stored(0), 2);
    }

    #[test]
    fn setting_a_deadline_counts_volatile_keys() {
        let mut w = World::new(2);
        w.set("a", "1");
        w.set("b", "1");
        assert_eq!(w.run("expire a 10"), ":1\r\n");
        assert_eq!(w.run("pexpire a 20000"), ":1\r\n");
        assert_eq!(w.run("expire b 10"), ":1\r\n");
        assert_eq!(w.shards.iter().map(|s| s.dbs[0].volatile).sum::<usize>(), 2);
        assert_eq!(w.dirty(), 3);
        w.now_ms += 20_000;
        assert_eq!(w.run("exists a b"), ":0\r\n");
        assert_eq!(w.stored(0), 0);
    }
}
