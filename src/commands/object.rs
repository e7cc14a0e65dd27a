//! OBJECT: introspection of one key's value (ENCODING, REFCOUNT, IDLETIME, FREQ, HELP).
//!
//! OBJECT is a container command; each subcommand is its own table entry with its own arity
//! and key position (the key is the third argument). Lookups use Redis's
//! `LOOKUP_NOTOUCH|LOOKUP_NONOTIFY`: they expire lazily and count hits and misses but never
//! update the access time they are there to report. A missing key answers null.
//!
//! Deliberate differences from Redis 7.0:
//! - REFCOUNT answers 2147483647 (Redis's shared-object count) for every int-encoded string
//!   in 0..=9999, as Redis does for values SET or INCR creates when no maxmemory policy
//!   forbids shared integers; a COPY of such a value answers 1 in Redis and 2147483647 here,
//!   because values are not reference counted. Every other value answers 1.
//!
//! IDLETIME works under the LRU and other non-LFU policies, FREQ under the LFU ones; each
//! answers Redis's error under the other kind (see `storage::evict`).

use super::keys::lookup_notouch;
use super::{flag, Cmd, Keys};
use crate::protocol::Out;
use crate::storage::db::lru_clock;
use crate::storage::evict;
use crate::storage::value::RStr;
use crate::storage::{Entry, Keyspace, Value};
use bytes::Bytes;

pub static COMMANDS: [Cmd; 1] = [Cmd::container("object", 0, &SUBCOMMANDS).with_acl(&["slow"])];

const OBJECT_KEY: Keys = Keys::Range(2, 2, 1);
const ACL_READ_SLOW: &[&str] = &["keyspace", "read", "slow"];

static SUBCOMMANDS: [Cmd; 5] = [
    Cmd::data("encoding", 3, flag::READONLY, OBJECT_KEY, object_encoding).with_acl(ACL_READ_SLOW),
    Cmd::data("freq", 3, flag::READONLY, OBJECT_KEY, object_freq).with_acl(ACL_READ_SLOW),
    Cmd::data("idletime", 3, flag::READONLY, OBJECT_KEY, object_idletime).with_acl(ACL_READ_SLOW),
    Cmd::data("refcount", 3, flag::READONLY, OBJECT_KEY, object_refcount).with_acl(ACL_READ_SLOW),
    Cmd::data(
        "help",
        2,
        flag::LOADING | flag::STALE,
        Keys::None,
        object_help,
    )
    .with_acl(&["keyspace", "slow"]),
];

/// The OBJECT subcommands' lookup: no access-time update, a null reply for a missing key.
fn object_lookup(ks: &mut Keyspace, key: &[u8], out: &mut Out, f: impl FnOnce(&Entry, &mut Out)) {
    lookup_notouch(ks, key, |e| match e {
        Some(e) => f(e, out),
        None => out.null(),
    });
}

fn object_encoding(ks: &mut Keyspace, args: &[Bytes], out: &mut Out) {
    object_lookup(ks, &args[2], out, |e, out| out.bulk_str(e.value.encoding()));
}

/// Redis shares the integers 0..=9999 (`OBJ_SHARED_INTEGERS`) between keys and reports
/// their refcount as `INT_MAX`, unless they were stored while an LRU or LFU maxmemory policy
/// forbade sharing (`evict::UNSHARED_INT`).
fn object_refcount(ks: &mut Keyspace, args: &[Bytes], out: &mut Out) {
    const SHARED_REFCOUNT: i64 = i32::MAX as i64;
    object_lookup(ks, &args[2], out, |e, out| match &e.value {
        Value::Str(RStr::Int(n))
            if (0..evict::SHARED_INTEGERS).contains(n) && e.lfu & evict::UNSHARED_INT == 0 =>
        {
            out.int(SHARED_REFCOUNT)
        }
        _ => out.int(1),
    });
}

fn object_idletime(ks: &mut Keyspace, args: &[Bytes], out: &mut Out) {
    object_lookup(ks, &args[2], out, |e, out| {
        if evict::policy().is_lfu() {
            return out.error(
                "ERR An LFU maxmemory policy is selected, idle time not tracked. Please note \
                 that when switching between policies at runtime LRU and LFU data will take \
                 some time to adjust.",
            );
        }
        out.int(i64::from(lru_clock().saturating_sub(e.lru_secs)))
    });
}

/// The LFU counter after decay, as Redis's OBJECT FREQ (which does not count as an access).
fn object_freq(ks: &mut Keyspace, args: &[Bytes], out: &mut Out) {
    object_lookup(ks, &args[2], out, |e, out| {
        if !evict::policy().is_lfu() {
            return out.error(
                "ERR An LFU maxmemory policy is not selected, access frequency not tracked. \
                 Please note that when switching between policies at runtime LRU and LFU data \
                 will take some time to adjust.",
            );
        }
        out.int(i64::from(evict::lfu_decayed(e.lfu)))
    });
}

fn object_help(_ks: &mut Keyspace, _args: &[Bytes], out: &mut Out) {
    help_reply(
        out,
        "OBJECT",
        &[
            "ENCODING <key>",
            "    Return the kind of internal representation used in order to store the value",
            "    associated with a <key>.",
            "FREQ <key>",
            "    Return the access frequency index of the <key>. The returned integer is",
            "    proportional to the logarithm of the recent access frequency of the key.",
            "IDLETIME <key>",
            "    Return the idle time of the <key>, that is the approximated number of",
            "    seconds elapsed since the last access to the key.",
            "REFCOUNT <key>",
            "    Return the number of references of the value associated with the specified",
            "    <key>.",
        ],
    );
}

/// Redis's `addReplyHelp`: a header naming the command, the lines, then HELP itself.
pub(crate) fn help_reply(out: &mut Out, command: &str, lines: &[&str]) {
    out.array(lines.len() + 3);
    out.simple(&format!(
        "{} <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
        command
    ));
    for line in lines {
        out.simple(line);
    }
    out.simple("HELP");
    out.simple("    Prints this help.");
}

#[cfg(test)]
mod tests {
    use super::super::keys::harness::World;

    #[test]
    fn object_subcommands() {
        let mut w = World::new(2);
        w.set("int", "12");
        w.set("shared", "9999");
        w.set("big", "10000");
        w.set("neg", "-1");
        w.set("s", "hello");
        w.set("long", &"x".repeat(45));
        let cases = [
            ("object encoding int", "$3\r\nint\r\n"),
            ("object encoding s", "$6\r\nembstr\r\n"),
            ("object encoding long", "$3\r\nraw\r\n"),
            ("object encoding nokey", "$-1\r\n"),
            ("object refcount int", ":2147483647\r\n"),
            ("object refcount shared", ":2147483647\r\n"),
            ("object refcount big", ":1\r\n"),
            ("object refcount neg", ":1\r\n"),
            ("object refcount s", ":1\r\n"),
            ("object refcount nokey", "$-1\r\n"),
            ("object idletime s", ":0\r\n"),
            ("object idletime nokey", "$-1\r\n"),
            ("object freq nokey", "$-1\r\n"),
            (
                "object freq s",
                "-ERR An LFU maxmemory policy is not selected, access frequency not tracked. \
                 Please note that when switching between policies at runtime LRU and LFU data \
                 will take some time to adjust.\r\n",
            ),
            (
                "object encoding",
                "-ERR wrong number of arguments for 'object|encoding' command\r\n",
            ),
            (
                "object help x",
                "-ERR wrong number of arguments for 'object|help' command\r\n",
            ),
        ];
        for (line, reply) in cases {
            assert_eq!(w.run(line), reply, "{}", line);
        }
        w.entry(0, "s").expect("stored").lru_secs -= 100;
        let idle = w.run("object idletime s");
        assert!(idle == ":100\r\n" || idle == ":101\r\n", "{}", idle);
        w.proto = 3;
        assert_eq!(w.run("object encoding nokey"), "_\r\n");
    }

    #[test]
    fn object_help_is_redis_text() {
        let mut w = World::new(1);
        let expected = "*15\r\n\
            +OBJECT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:\r\n\
            +ENCODING <key>\r\n\
            +    Return the kind of internal representation used in order to store the value\r\n\
            +    associated with a <key>.\r\n\
            +FREQ <key>\r\n\
            +    Return the access frequency index of the <key>. The returned integer is\r\n\
            +    proportional to the logarithm of the recent access frequency of the key.\r\n\
            +IDLETIME <key>\r\n\
            +    Return the idle time of the <key>, that is the approximated number of\r\n\
            +    seconds elapsed since the last access to the key.\r\n\
            +REFCOUNT <key>\r\n\
            +    Return the number of references of the value associated with the specified\r\n\
            +    <key>.\r\n\
            +HELP\r\n\
            +    Prints this help.\r\n";
        assert_eq!(w.run("object HELP"), expected);
    }
}
