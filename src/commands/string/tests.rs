//! Handler-level tests for the string family.
//!
//! Each script is a sequence of commands with the exact reply bytes redis-server 7.0.15
//! returned for it (recorded from a fresh server: FLUSHALL, then the lines in order, RESP2
//! unless the test name ends in `_resp3`). `Harness` replays them through our command
//! table with the dispatcher's arity check, on one shard with a fixed clock, and compares
//! byte for byte. Facts the wire cannot show (encodings, deadlines, `dirty`) are checked on the
//! stored entries directly.

use crate::commands::{self, Kind};
use crate::protocol::Out;
use crate::storage::{Entry, Keyspace, ShardData};

/// A fixed "now" (2023-11-14) so relative expiries are deterministic and absolute ones
/// such as `EXAT 1` lie in the past, as they do for the recording server.
pub(crate) const NOW_MS: u64 = 1_700_000_000_000;

pub(crate) struct Harness {
    pub shard: ShardData,
    pub now_ms: u64,
    pub proto: u8,
}

impl Harness {
    pub fn new(proto: u8) -> Harness {
        Harness {
            shard: ShardData::new(0, 16),
            now_ms: NOW_MS,
            proto,
        }
    }

    /// Runs one command as the dispatcher would (lookup, arity, handler) and returns the
    /// reply bytes.
    pub fn run(&mut self, args: &[bytes::Bytes]) -> Vec<u8> {
        let mut buf = Vec::new();
        let mut out = Out::new(&mut buf, self.proto);
        let Some(cmd) = args.first().and_then(|name| commands::lookup(name)) else {
            panic!("unknown command in test: {:?}", args.first());
        };
        let argc = args.len() as i32;
        let arity_ok =
            (cmd.arity > 0 && argc == cmd.arity) || (cmd.arity < 0 && argc >= -cmd.arity);
        if !arity_ok {
            out.error(&commands::err::wrong_args(cmd.name));
            return buf;
        }
        let Kind::Data(handler) = cmd.kind else {
            panic!("not a data command: {}", cmd.name);
        };
        let mut ks = Keyspace::one(&mut self.shard, 1, 0, self.now_ms);
        handler(&mut ks, args, &mut out);
        buf
    }

    /// Runs `line` (see `tokenize`) and returns the reply.
    pub fn cmd(&mut self, line: &str) -> Vec<u8> {
        self.run(&tokenize(line))
    }

    /// Replays a recorded script, failing on the first reply that differs.
    pub fn script(&mut self, steps: &[(&str, &[u8])]) {
        for (i, (line, expected)) in steps.iter().enumerate() {
            let got = self.cmd(line);
            assert!(
                got == *expected,
                "step {i}: {line}\n  expected {:?}\n       got {:?}",
                String::from_utf8_lossy(expected),
                String::from_utf8_lossy(&got),
            );
        }
    }

    /// The stored entry for `key` (no expiry check, no statistics).
    pub fn entry(&mut self, key: &[u8]) -> Option<Entry> {
        let mut ks = Keyspace::one(&mut self.shard, 1, 0, 0);
        ks.peek(key).cloned()
    }

    pub fn dirty(&self) -> u64 {
        self.shard.stats.dirty
    }
}

/// Splits a command line: arguments are separated by spaces, `"..."` quotes one that holds
/// spaces (or is empty), and `\xNN`, `\\`, `\"` escape bytes anywhere.
pub(crate) fn tokenize(line: &str) -> Vec<bytes::Bytes> {
    let s = line.as_bytes();
    let mut args = Vec::new();
    let mut i = 0;
    while i < s.len() {
        if s[i] == b' ' {
            i += 1;
            continue;
        }
        let quoted = s[i] == b'"';
        if quoted {
            i += 1;
        }
        let mut arg = Vec::new();
        while i < s.len() {
            let c = s[i];
            if quoted && c == b'"' {
                i += 1;
                break;
            }
            if !quoted && c == b' ' {
                break;
            }
            if c == b'\\' && i + 1 < s.len() {
                if s[i + 1] == b'x' {
                    let hex = std::str::from_utf8(&s[i + 2..i + 4]).expect("hex escape");
                    arg.push(u8::from_str_radix(hex, 16).expect("hex escape"));
                    i += 4;
                } else {
                    arg.push(s[i + 1]);
                    i += 2;
                }
                continue;
            }
            arg.push(c);
            i += 1;
        }
        args.push(bytes::Bytes::from(arg));
    }
    args
}

use super::PROTO_MAX_BULK_LEN;

#[test]
fn set_options() {
    Harness::new(2).script(&[
        (r#"set foo bar"#, b"+OK\r\n"),
        (r#"get foo"#, b"$3\r\nbar\r\n"),
        (r#"set foo bar nx"#, b"$-1\r\n"),
        (r#"set foo baz xx"#, b"+OK\r\n"),
        (r#"get foo"#, b"$3\r\nbaz\r\n"),
        (r#"set new v xx"#, b"$-1\r\n"),
        (r#"exists new"#, b":0\r\n"),
        (r#"set foo v nx xx"#, b"-ERR syntax error\r\n"),
        (r#"set foo v xx nx"#, b"-ERR syntax error\r\n"),
        (r#"set foo v nx nx"#, b"$-1\r\n"),
        (r#"set foo v ex 10 px 100"#, b"-ERR syntax error\r\n"),
        (r#"set foo v px 100 ex 10"#, b"-ERR syntax error\r\n"),
        (r#"set foo v ex 10 keepttl"#, b"-ERR syntax error\r\n"),
        (r#"set foo v keepttl ex 10"#, b"-ERR syntax error\r\n"),
        (r#"set foo v keepttl pxat 10"#, b"-ERR syntax error\r\n"),
        (r#"set foo v exat 10 pxat 10"#, b"-ERR syntax error\r\n"),
        (r#"set foo v ex 10 ex 20"#, b"+OK\r\n"),
        (r#"set foo v ex"#, b"-ERR syntax error\r\n"),
        (r#"set foo v persist"#, b"-ERR syntax error\r\n"),
        (
            r#"set foo v ex 0"#,
            b"-ERR invalid expire time in 'set' command\r\n",
        ),
        (
            r#"set foo v ex -1"#,
            b"-ERR invalid expire time in 'set' command\r\n",
        ),
        (
            r#"set foo v px 0"#,
            b"-ERR invalid expire time in 'set' command\r\n",
        ),
        (
            r#"set foo v exat 0"#,
            b"-ERR invalid expire time in 'set' command\r\n",
        ),
        (
            r#"set foo v pxat -5"#,
            b"-ERR invalid expire time in 'set' command\r\n",
        ),
        (
            r#"set foo v ex abc"#,
            b"-ERR value is not an integer or out of range\r\n",
        ),
        (
            r#"set foo v ex 9223372036854775"#,
            b"-ERR invalid expire time in 'set' command\r\n",
        ),
        (
            r#"set foo v ex 9223372036854776"#,
            b"-ERR invalid expire time in 'set' command\r\n",
        ),
        (
            r#"set foo v px 9223372036854775807"#,
            b"-ERR invalid expire time in 'set' command\r\n",
        ),
        (r#"set foo v exat 9223372036854775"#, b"+OK\r\n"),
        (
            r#"set foo v exat 9223372036854776"#,
            b"-ERR invalid expire time in 'set' command\r\n",
        ),
        (r#"set foo v pxat 9223372036854775807"#, b"+OK\r\n"),
        (
            r#"set foo v ex 1.5"#,
            b"-ERR value is not an integer or out of range\r\n",
        ),
        (r#"set foo v EX 100 GET"#, b"$1\r\nv\r\n"),
        (r#"set foo w GeT"#, b"$1\r\nv\r\n"),
        (r#"set missing w get"#, b"$-1\r\n"),
        (r#"get missing"#, b"$1\r\nw\r\n"),
        (r#"set foo x nx get"#, b"$1\r\nw\r\n"),
        (r#"get foo"#, b"$1\r\nw\r\n"),
        (r#"set nokey x xx get"#, b"$-1\r\n"),
        (r#"exists nokey"#, b":0\r\n"),
        (r#"set foo y get xx"#, b"$1\r\nw\r\n"),
        (r#"set k v pxat 1"#, b"+OK\r\n"),
        (r#"get k"#, b"$-1\r\n"),
        (r#"set k v exat 1"#, b"+OK\r\n"),
        (r#"exists k"#, b":0\r\n"),
        (r#"set k v ex 100 keepttl"#, b"-ERR syntax error\r\n"),
        (r#"set "nx\x00junk" v"#, b"+OK\r\n"),
        (r#"set foo v "nx\x00junk""#, b"$-1\r\n"),
        (r#"set foo v NX"#, b"$-1\r\n"),
        (r#"set foo v bogus"#, b"-ERR syntax error\r\n"),
        (
            r#"set foo"#,
            b"-ERR wrong number of arguments for 'set' command\r\n",
        ),
        (r#"set "" """#, b"+OK\r\n"),
        (r#"get """#, b"$0\r\n\r\n"),
        (
            r#"set"#,
            b"-ERR wrong number of arguments for 'set' command\r\n",
        ),
    ]);
}

#[test]
fn getex() {
    Harness::new(2).script(&[
        (r#"getex missing"#, b"$-1\r\n"),
        (r#"getex missing ex bogus"#, b"$-1\r\n"),
        (r#"getex missing nx"#, b"-ERR syntax error\r\n"),
        (r#"set foo bar"#, b"+OK\r\n"),
        (r#"getex foo"#, b"$3\r\nbar\r\n"),
        (r#"getex foo ex 100"#, b"$3\r\nbar\r\n"),
        (r#"getex foo px 100000"#, b"$3\r\nbar\r\n"),
        (r#"getex foo exat 99999999999"#, b"$3\r\nbar\r\n"),
        (r#"getex foo pxat 99999999999999"#, b"$3\r\nbar\r\n"),
        (r#"getex foo persist"#, b"$3\r\nbar\r\n"),
        (r#"getex foo persist ex 10"#, b"-ERR syntax error\r\n"),
        (r#"getex foo ex 10 persist"#, b"-ERR syntax error\r\n"),
        (r#"getex foo ex 10 px 10"#, b"-ERR syntax error\r\n"),
        (r#"getex foo keepttl"#, b"-ERR syntax error\r\n"),
        (r#"getex foo get"#, b"-ERR syntax error\r\n"),
        (
            r#"getex foo ex 0"#,
            b"-ERR invalid expire time in 'getex' command\r\n",
        ),
        (
            r#"getex foo ex -1"#,
            b"-ERR invalid expire time in 'getex' command\r\n",
        ),
        (
            r#"getex foo ex abc"#,
            b"-ERR value is not an integer or out of range\r\n",
        ),
        (
            r#"getex foo px 9223372036854775807"#,
            b"-ERR invalid expire time in 'getex' command\r\n",
        ),
        (
            r#"getex foo ex 9223372036854776"#,
            b"-ERR invalid expire time in 'getex' command\r\n",
        ),
        (r#"getex foo exat 1"#, b"$3\r\nbar\r\n"),
        (r#"get foo"#, b"$-1\r\n"),
        (r#"exists foo"#, b":0\r\n"),
        (r#"set foo bar"#, b"+OK\r\n"),
        (r#"getex foo pxat 1"#, b"$3\r\nbar\r\n"),
        (r#"exists foo"#, b":0\r\n"),
    ]);
}

#[test]
fn get_family() {
    Harness::new(2).script(&[
        (r#"get nokey"#, b"$-1\r\n"),
        (r#"set foo bar"#, b"+OK\r\n"),
        (r#"getdel foo"#, b"$3\r\nbar\r\n"),
        (r#"getdel foo"#, b"$-1\r\n"),
        (r#"exists foo"#, b":0\r\n"),
        (r#"set foo 123"#, b"+OK\r\n"),
        (r#"getset foo 456"#, b"$3\r\n123\r\n"),
        (r#"getset foo 789"#, b"$3\r\n456\r\n"),
        (r#"get foo"#, b"$3\r\n789\r\n"),
        (r#"getset newkey x"#, b"$-1\r\n"),
        (r#"get newkey"#, b"$1\r\nx\r\n"),
        (
            r#"getdel"#,
            b"-ERR wrong number of arguments for 'getdel' command\r\n",
        ),
        (
            r#"getset a"#,
            b"-ERR wrong number of arguments for 'getset' command\r\n",
        ),
        (
            r#"get a b"#,
            b"-ERR wrong number of arguments for 'get' command\r\n",
        ),
        (r#"set n -0"#, b"+OK\r\n"),
        (r#"get n"#, b"$2\r\n-0\r\n"),
        (r#"set n 00"#, b"+OK\r\n"),
        (r#"get n"#, b"$2\r\n00\r\n"),
        (r#"set big 9223372036854775808"#, b"+OK\r\n"),
        (r#"get big"#, b"$19\r\n9223372036854775808\r\n"),
    ]);
}

#[test]
fn setnx_setex() {
    Harness::new(2).script(&[
        (r#"setnx foo bar"#, b":1\r\n"),
        (r#"setnx foo baz"#, b":0\r\n"),
        (r#"get foo"#, b"$3\r\nbar\r\n"),
        (r#"setex foo 100 v"#, b"+OK\r\n"),
        (r#"get foo"#, b"$1\r\nv\r\n"),
        (
            r#"setex foo 0 v"#,
            b"-ERR invalid expire time in 'setex' command\r\n",
        ),
        (
            r#"setex foo -1 v"#,
            b"-ERR invalid expire time in 'setex' command\r\n",
        ),
        (
            r#"setex foo abc v"#,
            b"-ERR value is not an integer or out of range\r\n",
        ),
        (
            r#"setex foo 9223372036854776 v"#,
            b"-ERR invalid expire time in 'setex' command\r\n",
        ),
        (r#"psetex foo 100000 v2"#, b"+OK\r\n"),
        (r#"get foo"#, b"$2\r\nv2\r\n"),
        (
            r#"psetex foo 0 v"#,
            b"-ERR invalid expire time in 'psetex' command\r\n",
        ),
        (
            r#"psetex foo 9223372036854775807 v"#,
            b"-ERR invalid expire time in 'psetex' command\r\n",
        ),
        (
            r#"psetex foo -10 v"#,
            b"-ERR invalid expire time in 'psetex' command\r\n",
        ),
        (
            r#"setex foo 10"#,
            b"-ERR wrong number of arguments for 'setex' command\r\n",
        ),
    ]);
}

#[test]
fn mget_mset() {
    Harness::new(2).script(&[
        (r#"mset a 1 b 2 c 3"#, b"+OK\r\n"),
        (
            r#"mget a b c nokey"#,
            b"*4\r\n$1\r\n1\r\n$1\r\n2\r\n$1\r\n3\r\n$-1\r\n",
        ),
        (
            r#"mset a 1 b"#,
            b"-ERR wrong number of arguments for 'mset' command\r\n",
        ),
        (
            r#"mset a"#,
            b"-ERR wrong number of arguments for 'mset' command\r\n",
        ),
        (r#"msetnx a 10 x 20"#, b":0\r\n"),
        (r#"mget a x"#, b"*2\r\n$1\r\n1\r\n$-1\r\n"),
        (r#"msetnx x 1 y 2"#, b":1\r\n"),
        (r#"mget x y"#, b"*2\r\n$1\r\n1\r\n$1\r\n2\r\n"),
        (
            r#"msetnx z"#,
            b"-ERR wrong number of arguments for 'msetnx' command\r\n",
        ),
        (
            r#"msetnx z 1 q"#,
            b"-ERR wrong number of arguments for 'msetnx' command\r\n",
        ),
        (r#"mset a 1 a 2"#, b"+OK\r\n"),
        (r#"get a"#, b"$1\r\n2\r\n"),
        (r#"msetnx p 1 p 2"#, b":1\r\n"),
        (r#"get p"#, b"$1\r\n2\r\n"),
        (
            r#"mget"#,
            b"-ERR wrong number of arguments for 'mget' command\r\n",
        ),
    ]);
}

#[test]
fn incr() {
    Harness::new(2).script(&[
        (r#"incr n"#, b":1\r\n"),
        (r#"incr n"#, b":2\r\n"),
        (r#"decr n"#, b":1\r\n"),
        (r#"incrby n 10"#, b":11\r\n"),
        (r#"decrby n 5"#, b":6\r\n"),
        (r#"incrby n -20"#, b":-14\r\n"),
        (r#"decrby n -3"#, b":-11\r\n"),
        (r#"get n"#, b"$3\r\n-11\r\n"),
        (
            r#"incrby n abc"#,
            b"-ERR value is not an integer or out of range\r\n",
        ),
        (
            r#"incrby n 1.5"#,
            b"-ERR value is not an integer or out of range\r\n",
        ),
        (
            r#"incrby n " 1""#,
            b"-ERR value is not an integer or out of range\r\n",
        ),
        (
            r#"incrby n +1"#,
            b"-ERR value is not an integer or out of range\r\n",
        ),
        (
            r#"incrby n 01"#,
            b"-ERR value is not an integer or out of range\r\n",
        ),
        (
            r#"decrby n -9223372036854775808"#,
            b"-ERR decrement would overflow\r\n",
        ),
        (
            r#"decrby n 9223372036854775807"#,
            b"-ERR increment or decrement would overflow\r\n",
        ),
        (r#"set max 9223372036854775807"#, b"+OK\r\n"),
        (
            r#"incr max"#,
            b"-ERR increment or decrement would overflow\r\n",
        ),
        (r#"incrby max 0"#, b":9223372036854775807\r\n"),
        (r#"decr max"#, b":9223372036854775806\r\n"),
        (r#"set min -9223372036854775808"#, b"+OK\r\n"),
        (
            r#"decr min"#,
            b"-ERR increment or decrement would overflow\r\n",
        ),
        (
            r#"decrby min 1"#,
            b"-ERR increment or decrement would overflow\r\n",
        ),
        (
            r#"incrby min -1"#,
            b"-ERR increment or decrement would overflow\r\n",
        ),
        (r#"incr min"#, b":-9223372036854775807\r\n"),
        (r#"set s hello"#, b"+OK\r\n"),
        (
            r#"incr s"#,
            b"-ERR value is not an integer or out of range\r\n",
        ),
        (r#"set sp " 11""#, b"+OK\r\n"),
        (
            r#"incr sp"#,
            b"-ERR value is not an integer or out of range\r\n",
        ),
        (r#"set f 1.5"#, b"+OK\r\n"),
        (
            r#"incr f"#,
            b"-ERR value is not an integer or out of range\r\n",
        ),
        (r#"set big 99999999999999999999"#, b"+OK\r\n"),
        (
            r#"incr big"#,
            b"-ERR value is not an integer or out of range\r\n",
        ),
        (r#"set z 0"#, b"+OK\r\n"),
        (r#"incr z"#, b":1\r\n"),
        (
            r#"incrby z 9223372036854775807"#,
            b"-ERR increment or decrement would overflow\r\n",
        ),
        (r#"incr z"#, b":2\r\n"),
        (r#"set neg -5"#, b"+OK\r\n"),
        (
            r#"incrby neg -9223372036854775803"#,
            b":-9223372036854775808\r\n",
        ),
        (
            r#"incrby neg -1"#,
            b"-ERR increment or decrement would overflow\r\n",
        ),
        (r#"incrby neg 9223372036854775807"#, b":-1\r\n"),
    ]);
}

#[test]
fn incrbyfloat() {
    Harness::new(2).script(&[
        (r#"incrbyfloat f 10.5"#, b"$4\r\n10.5\r\n"),
        (r#"incrbyfloat f 3.0e3"#, b"$6\r\n3010.5\r\n"),
        (r#"incrbyfloat f -3010.5"#, b"$1\r\n0\r\n"),
        (r#"get f"#, b"$1\r\n0\r\n"),
        (r#"set i 1"#, b"+OK\r\n"),
        (r#"incrbyfloat i -1.1"#, b"$4\r\n-0.1\r\n"),
        (r#"set foo 5.0e3"#, b"+OK\r\n"),
        (r#"incrbyfloat foo 2.0e2"#, b"$4\r\n5200\r\n"),
        (r#"set foo 1"#, b"+OK\r\n"),
        (r#"incrbyfloat foo 1"#, b"$1\r\n2\r\n"),
        (r#"incrbyfloat foo inf"#, b"-ERR increment would produce NaN or Infinity\r\n"),
        (r#"incrbyfloat foo +inf"#, b"-ERR increment would produce NaN or Infinity\r\n"),
        (r#"incrbyfloat foo -inf"#, b"-ERR increment would produce NaN or Infinity\r\n"),
        (r#"incrbyfloat foo nan"#, b"-ERR value is not a valid float\r\n"),
        (r#"incrbyfloat foo abc"#, b"-ERR value is not a valid float\r\n"),
        (r#"incrbyfloat foo " 1""#, b"-ERR value is not a valid float\r\n"),
        (r#"incrbyfloat foo "1 ""#, b"-ERR value is not a valid float\r\n"),
        (r#"incrbyfloat foo 0x1p4"#, b"$2\r\n18\r\n"),
        (r#"incrbyfloat foo 1e-5"#, b"$8\r\n18.00001\r\n"),
        (r#"set bad hello"#, b"+OK\r\n"),
        (r#"incrbyfloat bad 1"#, b"-ERR value is not a valid float\r\n"),
        (r#"incrbyfloat bad xyz"#, b"-ERR value is not a valid float\r\n"),
        (r#"set spaced " 11""#, b"+OK\r\n"),
        (r#"incrbyfloat spaced 1"#, b"-ERR value is not a valid float\r\n"),
        (r#"set inf inf"#, b"+OK\r\n"),
        (r#"incrbyfloat inf 1"#, b"-ERR increment would produce NaN or Infinity\r\n"),
        (r#"incrbyfloat inf abc"#, b"-ERR value is not a valid float\r\n"),
        (r#"set big 1e4932"#, b"+OK\r\n"),
        (r#"incrbyfloat big 1e4932"#, b"-ERR increment would produce NaN or Infinity\r\n"),
        (r#"incrbyfloat neg -0.1"#, b"$4\r\n-0.1\r\n"),
        (r#"incrbyfloat neg -0.2"#, b"$4\r\n-0.3\r\n"),
        (r#"incrbyfloat tiny 0.00000000000000001"#, b"$19\r\n0.00000000000000001\r\n"),
        (r#"incrbyfloat tiny 0.000000000000000001"#, b"$19\r\n0.00000000000000001\r\n"),
        (r#"incrbyfloat x 17179869184"#, b"$11\r\n17179869184\r\n"),
        (r#"incrbyfloat x 1.5"#, b"$13\r\n17179869185.5\r\n"),
        (r#"set ni 9223372036854775807"#, b"+OK\r\n"),
        (r#"incrbyfloat ni 1"#, b"$19\r\n9223372036854775808\r\n"),
        (r#"set ni2 -9223372036854775808"#, b"+OK\r\n"),
        (r#"incrbyfloat ni2 -0.5"#, b"$20\r\n-9223372036854775808\r\n"),
        (r#"incrbyfloat e 1e400"#, b"$401\r\n10000000000000000000281880683947586514586453433629052038625910693539685534008629862039363994848324160522094053927317616200295822777259255734023828976593340661017797447434546173917862448116674971723778943824391593338047470675026246684401359237513603830343735485505244955964979021825038280091068414947402456898653040951017512658092615827588920183472511643316591362664138176309734806343732497430221946880\r\n"),
        (r#"incrbyfloat e -1e400"#, b"$1\r\n0\r\n"),
        (r#"incrbyfloat w 1234567890.12345678901234567890"#, b"$28\r\n1234567890.12345678906422108\r\n"),
        (r#"incrbyfloat long 123456789012345678901234567890123456789012345.5"#, b"$45\r\n123456789012345678896802277657040928322355200\r\n"),
    ]);
}

#[test]
fn append_strlen() {
    Harness::new(2).script(&[
        (r#"append foo bar"#, b":3\r\n"),
        (r#"append foo 100"#, b":6\r\n"),
        (r#"get foo"#, b"$6\r\nbar100\r\n"),
        (r#"strlen foo"#, b":6\r\n"),
        (r#"strlen nokey"#, b":0\r\n"),
        (r#"set n 12345"#, b"+OK\r\n"),
        (r#"strlen n"#, b":5\r\n"),
        (r#"append n 6"#, b":6\r\n"),
        (r#"get n"#, b"$6\r\n123456\r\n"),
        (r#"incr n"#, b":123457\r\n"),
        (r#"append n """#, b":6\r\n"),
        (r#"append empty """#, b":0\r\n"),
        (r#"exists empty"#, b":1\r\n"),
        (r#"strlen empty"#, b":0\r\n"),
        (r#"set x -1"#, b"+OK\r\n"),
        (r#"strlen x"#, b":2\r\n"),
    ]);
}

#[test]
fn getrange() {
    Harness::new(2).script(&[
        (r#"set foo hello"#, b"+OK\r\n"),
        (r#"getrange foo 0 -1"#, b"$5\r\nhello\r\n"),
        (r#"getrange foo 0 2"#, b"$3\r\nhel\r\n"),
        (r#"getrange foo -3 -1"#, b"$3\r\nllo\r\n"),
        (r#"getrange foo 1 100"#, b"$4\r\nello\r\n"),
        (r#"getrange foo -100 1"#, b"$2\r\nhe\r\n"),
        (r#"getrange foo 3 1"#, b"$0\r\n\r\n"),
        (r#"getrange foo -1 -3"#, b"$0\r\n\r\n"),
        (r#"getrange foo -1 -1"#, b"$1\r\no\r\n"),
        (r#"getrange foo 5 10"#, b"$0\r\n\r\n"),
        (r#"getrange foo 4 4"#, b"$1\r\no\r\n"),
        (r#"getrange nokey 0 -1"#, b"$0\r\n\r\n"),
        (
            r#"getrange nokey a b"#,
            b"-ERR value is not an integer or out of range\r\n",
        ),
        (
            r#"getrange foo a 1"#,
            b"-ERR value is not an integer or out of range\r\n",
        ),
        (
            r#"getrange foo 1 b"#,
            b"-ERR value is not an integer or out of range\r\n",
        ),
        (
            r#"getrange foo -9223372036854775808 9223372036854775807"#,
            b"$5\r\nhello\r\n",
        ),
        (r#"substr foo 1 3"#, b"$3\r\nell\r\n"),
        (r#"substr foo -2 -1"#, b"$2\r\nlo\r\n"),
        (r#"set n 1234"#, b"+OK\r\n"),
        (r#"getrange n 1 2"#, b"$2\r\n23\r\n"),
        (r#"set e """#, b"+OK\r\n"),
        (r#"getrange e 0 -1"#, b"$0\r\n\r\n"),
        (r#"getrange e 0 0"#, b"$0\r\n\r\n"),
        (r#"getrange e -1 -1"#, b"$0\r\n\r\n"),
    ]);
}

#[test]
fn setrange() {
    Harness::new(2).script(&[
        (r#"setrange foo 0 hello"#, b":5\r\n"),
        (r#"setrange foo 6 world"#, b":11\r\n"),
        (r#"get foo"#, b"$11\r\nhello\x00world\r\n"),
        (r#"setrange foo 0 J"#, b":11\r\n"),
        (r#"get foo"#, b"$11\r\nJello\x00world\r\n"),
        (r#"setrange foo -1 x"#, b"-ERR offset is out of range\r\n"),
        (
            r#"setrange foo abc x"#,
            b"-ERR value is not an integer or out of range\r\n",
        ),
        (
            r#"setrange foo 1.5 x"#,
            b"-ERR value is not an integer or out of range\r\n",
        ),
        (r#"setrange nokey 5 """#, b":0\r\n"),
        (r#"exists nokey"#, b":0\r\n"),
        (r#"setrange foo 100 """#, b":11\r\n"),
        (
            r#"setrange foo 536870912 x"#,
            b"-ERR string exceeds maximum allowed size (proto-max-bulk-len)\r\n",
        ),
        (r#"setrange nokey 536870912 """#, b":0\r\n"),
        (
            r#"setrange nokey2 536870912 x"#,
            b"-ERR string exceeds maximum allowed size (proto-max-bulk-len)\r\n",
        ),
        (r#"setrange foo 536870912 """#, b":11\r\n"),
        (r#"set n 1234"#, b"+OK\r\n"),
        (r#"setrange n 1 99"#, b":4\r\n"),
        (r#"get n"#, b"$4\r\n1994\r\n"),
        (r#"incr n"#, b":1995\r\n"),
        (r#"setrange n 6 x"#, b":7\r\n"),
        (r#"get n"#, b"$7\r\n1995\x00\x00x\r\n"),
    ]);
}

#[test]
fn lcs() {
    Harness::new(2).script(&[
        (r#"mset virus1 ohmytext virus2 mynewtext"#, b"+OK\r\n"),
        (r#"lcs virus1 virus2"#, b"$6\r\nmytext\r\n"),
        (r#"lcs virus1 virus2 len"#, b":6\r\n"),
        (r#"lcs virus1 virus2 idx"#, b"*4\r\n$7\r\nmatches\r\n*2\r\n*2\r\n*2\r\n:4\r\n:7\r\n*2\r\n:5\r\n:8\r\n*2\r\n*2\r\n:2\r\n:3\r\n*2\r\n:0\r\n:1\r\n$3\r\nlen\r\n:6\r\n"),
        (r#"lcs virus1 virus2 idx minmatchlen 4"#, b"*4\r\n$7\r\nmatches\r\n*1\r\n*2\r\n*2\r\n:4\r\n:7\r\n*2\r\n:5\r\n:8\r\n$3\r\nlen\r\n:6\r\n"),
        (r#"lcs virus1 virus2 idx minmatchlen 4 withmatchlen"#, b"*4\r\n$7\r\nmatches\r\n*1\r\n*3\r\n*2\r\n:4\r\n:7\r\n*2\r\n:5\r\n:8\r\n:4\r\n$3\r\nlen\r\n:6\r\n"),
        (r#"lcs virus1 virus2 idx withmatchlen"#, b"*4\r\n$7\r\nmatches\r\n*2\r\n*3\r\n*2\r\n:4\r\n:7\r\n*2\r\n:5\r\n:8\r\n:4\r\n*3\r\n*2\r\n:2\r\n:3\r\n*2\r\n:0\r\n:1\r\n:2\r\n$3\r\nlen\r\n:6\r\n"),
        (r#"lcs virus1 virus2 len idx"#, b"-ERR If you want both the length and indexes, please just use IDX.\r\n"),
        (r#"lcs virus1 virus2 idx len"#, b"-ERR If you want both the length and indexes, please just use IDX.\r\n"),
        (r#"lcs virus1 virus2 minmatchlen"#, b"-ERR syntax error\r\n"),
        (r#"lcs virus1 virus2 minmatchlen abc"#, b"-ERR value is not an integer or out of range\r\n"),
        (r#"lcs virus1 virus2 minmatchlen -5 idx"#, b"*4\r\n$7\r\nmatches\r\n*2\r\n*2\r\n*2\r\n:4\r\n:7\r\n*2\r\n:5\r\n:8\r\n*2\r\n*2\r\n:2\r\n:3\r\n*2\r\n:0\r\n:1\r\n$3\r\nlen\r\n:6\r\n"),
        (r#"lcs virus1 virus2 bogus"#, b"-ERR syntax error\r\n"),
        (r#"lcs virus1 virus2 len withmatchlen"#, b":6\r\n"),
        (r#"lcs virus1 nokey"#, b"$0\r\n\r\n"),
        (r#"lcs nokey1 nokey2 idx"#, b"*4\r\n$7\r\nmatches\r\n*0\r\n$3\r\nlen\r\n:0\r\n"),
        (r#"lcs nokey1 nokey2 len"#, b":0\r\n"),
        (r#"mset a ABCBDAB b BDCABA"#, b"+OK\r\n"),
        (r#"lcs a b"#, b"$4\r\nBDAB\r\n"),
        (r#"lcs a b idx withmatchlen"#, b"*4\r\n$7\r\nmatches\r\n*2\r\n*3\r\n*2\r\n:5\r\n:6\r\n*2\r\n:3\r\n:4\r\n:2\r\n*3\r\n*2\r\n:3\r\n:4\r\n*2\r\n:0\r\n:1\r\n:2\r\n$3\r\nlen\r\n:4\r\n"),
        (r#"lcs b a idx"#, b"*4\r\n$7\r\nmatches\r\n*4\r\n*2\r\n*2\r\n:5\r\n:5\r\n*2\r\n:5\r\n:5\r\n*2\r\n*2\r\n:4\r\n:4\r\n*2\r\n:3\r\n:3\r\n*2\r\n*2\r\n:2\r\n:2\r\n*2\r\n:2\r\n:2\r\n*2\r\n*2\r\n:0\r\n:0\r\n*2\r\n:1\r\n:1\r\n$3\r\nlen\r\n:4\r\n"),
        (r#"mset c 1234 d 2345"#, b"+OK\r\n"),
        (r#"lcs c d idx withmatchlen"#, b"*4\r\n$7\r\nmatches\r\n*1\r\n*3\r\n*2\r\n:1\r\n:3\r\n*2\r\n:0\r\n:2\r\n:3\r\n$3\r\nlen\r\n:3\r\n"),
        (r#"mset s1 aaaaaaaaaa s2 aaaaa"#, b"+OK\r\n"),
        (r#"lcs s1 s2 idx withmatchlen"#, b"*4\r\n$7\r\nmatches\r\n*1\r\n*3\r\n*2\r\n:5\r\n:9\r\n*2\r\n:0\r\n:4\r\n:5\r\n$3\r\nlen\r\n:5\r\n"),
        (r#"lcs s1 s1 idx withmatchlen"#, b"*4\r\n$7\r\nmatches\r\n*1\r\n*3\r\n*2\r\n:0\r\n:9\r\n*2\r\n:0\r\n:9\r\n:10\r\n$3\r\nlen\r\n:10\r\n"),
        (r#"lcs virus1"#, b"-ERR wrong number of arguments for 'lcs' command\r\n"),
    ]);
}

#[test]
fn set_options_resp3() {
    Harness::new(3).script(&[
        (r#"set foo bar"#, b"+OK\r\n"),
        (r#"get foo"#, b"$3\r\nbar\r\n"),
        (r#"set foo bar nx"#, b"_\r\n"),
        (r#"set foo baz xx"#, b"+OK\r\n"),
        (r#"get foo"#, b"$3\r\nbaz\r\n"),
        (r#"set new v xx"#, b"_\r\n"),
        (r#"exists new"#, b":0\r\n"),
        (r#"set foo v nx xx"#, b"-ERR syntax error\r\n"),
        (r#"set foo v xx nx"#, b"-ERR syntax error\r\n"),
        (r#"set foo v nx nx"#, b"_\r\n"),
        (r#"set foo v ex 10 px 100"#, b"-ERR syntax error\r\n"),
        (r#"set foo v px 100 ex 10"#, b"-ERR syntax error\r\n"),
        (r#"set foo v ex 10 keepttl"#, b"-ERR syntax error\r\n"),
        (r#"set foo v keepttl ex 10"#, b"-ERR syntax error\r\n"),
        (r#"set foo v keepttl pxat 10"#, b"-ERR syntax error\r\n"),
        (r#"set foo v exat 10 pxat 10"#, b"-ERR syntax error\r\n"),
        (r#"set foo v ex 10 ex 20"#, b"+OK\r\n"),
        (r#"set foo v ex"#, b"-ERR syntax error\r\n"),
        (r#"set foo v persist"#, b"-ERR syntax error\r\n"),
        (
            r#"set foo v ex 0"#,
            b"-ERR invalid expire time in 'set' command\r\n",
        ),
        (
            r#"set foo v ex -1"#,
            b"-ERR invalid expire time in 'set' command\r\n",
        ),
        (
            r#"set foo v px 0"#,
            b"-ERR invalid expire time in 'set' command\r\n",
        ),
        (
            r#"set foo v exat 0"#,
            b"-ERR invalid expire time in 'set' command\r\n",
        ),
        (
            r#"set foo v pxat -5"#,
            b"-ERR invalid expire time in 'set' command\r\n",
        ),
        (
            r#"set foo v ex abc"#,
            b"-ERR value is not an integer or out of range\r\n",
        ),
        (
            r#"set foo v ex 9223372036854775"#,
            b"-ERR invalid expire time in 'set' command\r\n",
        ),
        (
            r#"set foo v ex 9223372036854776"#,
            b"-ERR invalid expire time in 'set' command\r\n",
        ),
        (
            r#"set foo v px 9223372036854775807"#,
            b"-ERR invalid expire time in 'set' command\r\n",
        ),
        (r#"set foo v exat 9223372036854775"#, b"+OK\r\n"),
        (
            r#"set foo v exat 9223372036854776"#,
            b"-ERR invalid expire time in 'set' command\r\n",
        ),
        (r#"set foo v pxat 9223372036854775807"#, b"+OK\r\n"),
        (
            r#"set foo v ex 1.5"#,
            b"-ERR value is not an integer or out of range\r\n",
        ),
        (r#"set foo v EX 100 GET"#, b"$1\r\nv\r\n"),
        (r#"set foo w GeT"#, b"$1\r\nv\r\n"),
        (r#"set missing w get"#, b"_\r\n"),
        (r#"get missing"#, b"$1\r\nw\r\n"),
        (r#"set foo x nx get"#, b"$1\r\nw\r\n"),
        (r#"get foo"#, b"$1\r\nw\r\n"),
        (r#"set nokey x xx get"#, b"_\r\n"),
        (r#"exists nokey"#, b":0\r\n"),
        (r#"set foo y get xx"#, b"$1\r\nw\r\n"),
        (r#"set k v pxat 1"#, b"+OK\r\n"),
        (r#"get k"#, b"_\r\n"),
        (r#"set k v exat 1"#, b"+OK\r\n"),
        (r#"exists k"#, b":0\r\n"),
        (r#"set k v ex 100 keepttl"#, b"-ERR syntax error\r\n"),
        (r#"set "nx\x00junk" v"#, b"+OK\r\n"),
        (r#"set foo v "nx\x00junk""#, b"_\r\n"),
        (r#"set foo v NX"#, b"_\r\n"),
        (r#"set foo v bogus"#, b"-ERR syntax error\r\n"),
        (
            r#"set foo"#,
            b"-ERR wrong number of arguments for 'set' command\r\n",
        ),
        (r#"set "" """#, b"+OK\r\n"),
        (r#"get """#, b"$0\r\n\r\n"),
        (
            r#"set"#,
            b"-ERR wrong number of arguments for 'set' command\r\n",
        ),
    ]);
}

#[test]
fn getex_resp3() {
    Harness::new(3).script(&[
        (r#"getex missing"#, b"_\r\n"),
        (r#"getex missing ex bogus"#, b"_\r\n"),
        (r#"getex missing nx"#, b"-ERR syntax error\r\n"),
        (r#"set foo bar"#, b"+OK\r\n"),
        (r#"getex foo"#, b"$3\r\nbar\r\n"),
        (r#"getex foo ex 100"#, b"$3\r\nbar\r\n"),
        (r#"getex foo px 100000"#, b"$3\r\nbar\r\n"),
        (r#"getex foo exat 99999999999"#, b"$3\r\nbar\r\n"),
        (r#"getex foo pxat 99999999999999"#, b"$3\r\nbar\r\n"),
        (r#"getex foo persist"#, b"$3\r\nbar\r\n"),
        (r#"getex foo persist ex 10"#, b"-ERR syntax error\r\n"),
        (r#"getex foo ex 10 persist"#, b"-ERR syntax error\r\n"),
        (r#"getex foo ex 10 px 10"#, b"-ERR syntax error\r\n"),
        (r#"getex foo keepttl"#, b"-ERR syntax error\r\n"),
        (r#"getex foo get"#, b"-ERR syntax error\r\n"),
        (
            r#"getex foo ex 0"#,
            b"-ERR invalid expire time in 'getex' command\r\n",
        ),
        (
            r#"getex foo ex -1"#,
            b"-ERR invalid expire time in 'getex' command\r\n",
        ),
        (
            r#"getex foo ex abc"#,
            b"-ERR value is not an integer or out of range\r\n",
        ),
        (
            r#"getex foo px 9223372036854775807"#,
            b"-ERR invalid expire time in 'getex' command\r\n",
        ),
        (
            r#"getex foo ex 9223372036854776"#,
            b"-ERR invalid expire time in 'getex' command\r\n",
        ),
        (r#"getex foo exat 1"#, b"$3\r\nbar\r\n"),
        (r#"get foo"#, b"_\r\n"),
        (r#"exists foo"#, b":0\r\n"),
        (r#"set foo bar"#, b"+OK\r\n"),
        (r#"getex foo pxat 1"#, b"$3\r\nbar\r\n"),
        (r#"exists foo"#, b":0\r\n"),
    ]);
}

#[test]
fn get_family_resp3() {
    Harness::new(3).script(&[
        (r#"get nokey"#, b"_\r\n"),
        (r#"set foo bar"#, b"+OK\r\n"),
        (r#"getdel foo"#, b"$3\r\nbar\r\n"),
        (r#"getdel foo"#, b"_\r\n"),
        (r#"exists foo"#, b":0\r\n"),
        (r#"set foo 123"#, b"+OK\r\n"),
        (r#"getset foo 456"#, b"$3\r\n123\r\n"),
        (r#"getset foo 789"#, b"$3\r\n456\r\n"),
        (r#"get foo"#, b"$3\r\n789\r\n"),
        (r#"getset newkey x"#, b"_\r\n"),
        (r#"get newkey"#, b"$1\r\nx\r\n"),
        (
            r#"getdel"#,
            b"-ERR wrong number of arguments for 'getdel' command\r\n",
        ),
        (
            r#"getset a"#,
            b"-ERR wrong number of arguments for 'getset' command\r\n",
        ),
        (
            r#"get a b"#,
            b"-ERR wrong number of arguments for 'get' command\r\n",
        ),
        (r#"set n -0"#, b"+OK\r\n"),
        (r#"get n"#, b"$2\r\n-0\r\n"),
        (r#"set n 00"#, b"+OK\r\n"),
        (r#"get n"#, b"$2\r\n00\r\n"),
        (r#"set big 9223372036854775808"#, b"+OK\r\n"),
        (r#"get big"#, b"$19\r\n9223372036854775808\r\n"),
    ]);
}

#[test]
fn mget_mset_resp3() {
    Harness::new(3).script(&[
        (r#"mset a 1 b 2 c 3"#, b"+OK\r\n"),
        (
            r#"mget a b c nokey"#,
            b"*4\r\n$1\r\n1\r\n$1\r\n2\r\n$1\r\n3\r\n_\r\n",
        ),
        (
            r#"mset a 1 b"#,
            b"-ERR wrong number of arguments for 'mset' command\r\n",
        ),
        (
            r#"mset a"#,
            b"-ERR wrong number of arguments for 'mset' command\r\n",
        ),
        (r#"msetnx a 10 x 20"#, b":0\r\n"),
        (r#"mget a x"#, b"*2\r\n$1\r\n1\r\n_\r\n"),
        (r#"msetnx x 1 y 2"#, b":1\r\n"),
        (r#"mget x y"#, b"*2\r\n$1\r\n1\r\n$1\r\n2\r\n"),
        (
            r#"msetnx z"#,
            b"-ERR wrong number of arguments for 'msetnx' command\r\n",
        ),
        (
            r#"msetnx z 1 q"#,
            b"-ERR wrong number of arguments for 'msetnx' command\r\n",
        ),
        (r#"mset a 1 a 2"#, b"+OK\r\n"),
        (r#"get a"#, b"$1\r\n2\r\n"),
        (r#"msetnx p 1 p 2"#, b":1\r\n"),
        (r#"get p"#, b"$1\r\n2\r\n"),
        (
            r#"mget"#,
            b"-ERR wrong number of arguments for 'mget' command\r\n",
        ),
    ]);
}

#[test]
fn lcs_resp3() {
    Harness::new(3).script(&[
        (r#"mset virus1 ohmytext virus2 mynewtext"#, b"+OK\r\n"),
        (r#"lcs virus1 virus2"#, b"$6\r\nmytext\r\n"),
        (r#"lcs virus1 virus2 len"#, b":6\r\n"),
        (r#"lcs virus1 virus2 idx"#, b"%2\r\n$7\r\nmatches\r\n*2\r\n*2\r\n*2\r\n:4\r\n:7\r\n*2\r\n:5\r\n:8\r\n*2\r\n*2\r\n:2\r\n:3\r\n*2\r\n:0\r\n:1\r\n$3\r\nlen\r\n:6\r\n"),
        (r#"lcs virus1 virus2 idx minmatchlen 4"#, b"%2\r\n$7\r\nmatches\r\n*1\r\n*2\r\n*2\r\n:4\r\n:7\r\n*2\r\n:5\r\n:8\r\n$3\r\nlen\r\n:6\r\n"),
        (r#"lcs virus1 virus2 idx minmatchlen 4 withmatchlen"#, b"%2\r\n$7\r\nmatches\r\n*1\r\n*3\r\n*2\r\n:4\r\n:7\r\n*2\r\n:5\r\n:8\r\n:4\r\n$3\r\nlen\r\n:6\r\n"),
        (r#"lcs virus1 virus2 idx withmatchlen"#, b"%2\r\n$7\r\nmatches\r\n*2\r\n*3\r\n*2\r\n:4\r\n:7\r\n*2\r\n:5\r\n:8\r\n:4\r\n*3\r\n*2\r\n:2\r\n:3\r\n*2\r\n:0\r\n:1\r\n:2\r\n$3\r\nlen\r\n:6\r\n"),
        (r#"lcs virus1 virus2 len idx"#, b"-ERR If you want both the length and indexes, please just use IDX.\r\n"),
        (r#"lcs virus1 virus2 idx len"#, b"-ERR If you want both the length and indexes, please just use IDX.\r\n"),
        (r#"lcs virus1 virus2 minmatchlen"#, b"-ERR syntax error\r\n"),
        (r#"lcs virus1 virus2 minmatchlen abc"#, b"-ERR value is not an integer or out of range\r\n"),
        (r#"lcs virus1 virus2 minmatchlen -5 idx"#, b"%2\r\n$7\r\nmatches\r\n*2\r\n*2\r\n*2\r\n:4\r\n:7\r\n*2\r\n:5\r\n:8\r\n*2\r\n*2\r\n:2\r\n:3\r\n*2\r\n:0\r\n:1\r\n$3\r\nlen\r\n:6\r\n"),
        (r#"lcs virus1 virus2 bogus"#, b"-ERR syntax error\r\n"),
        (r#"lcs virus1 virus2 len withmatchlen"#, b":6\r\n"),
        (r#"lcs virus1 nokey"#, b"$0\r\n\r\n"),
        (r#"lcs nokey1 nokey2 idx"#, b"%2\r\n$7\r\nmatches\r\n*0\r\n$3\r\nlen\r\n:0\r\n"),
        (r#"lcs nokey1 nokey2 len"#, b":0\r\n"),
        (r#"mset a ABCBDAB b BDCABA"#, b"+OK\r\n"),
        (r#"lcs a b"#, b"$4\r\nBDAB\r\n"),
        (r#"lcs a b idx withmatchlen"#, b"%2\r\n$7\r\nmatches\r\n*2\r\n*3\r\n*2\r\n:5\r\n:6\r\n*2\r\n:3\r\n:4\r\n:2\r\n*3\r\n*2\r\n:3\r\n:4\r\n*2\r\n:0\r\n:1\r\n:2\r\n$3\r\nlen\r\n:4\r\n"),
        (r#"lcs b a idx"#, b"%2\r\n$7\r\nmatches\r\n*4\r\n*2\r\n*2\r\n:5\r\n:5\r\n*2\r\n:5\r\n:5\r\n*2\r\n*2\r\n:4\r\n:4\r\n*2\r\n:3\r\n:3\r\n*2\r\n*2\r\n:2\r\n:2\r\n*2\r\n:2\r\n:2\r\n*2\r\n*2\r\n:0\r\n:0\r\n*2\r\n:1\r\n:1\r\n$3\r\nlen\r\n:4\r\n"),
        (r#"mset c 1234 d 2345"#, b"+OK\r\n"),
        (r#"lcs c d idx withmatchlen"#, b"%2\r\n$7\r\nmatches\r\n*1\r\n*3\r\n*2\r\n:1\r\n:3\r\n*2\r\n:0\r\n:2\r\n:3\r\n$3\r\nlen\r\n:3\r\n"),
        (r#"mset s1 aaaaaaaaaa s2 aaaaa"#, b"+OK\r\n"),
        (r#"lcs s1 s2 idx withmatchlen"#, b"%2\r\n$7\r\nmatches\r\n*1\r\n*3\r\n*2\r\n:5\r\n:9\r\n*2\r\n:0\r\n:4\r\n:5\r\n$3\r\nlen\r\n:5\r\n"),
        (r#"lcs s1 s1 idx withmatchlen"#, b"%2\r\n$7\r\nmatches\r\n*1\r\n*3\r\n*2\r\n:0\r\n:9\r\n*2\r\n:0\r\n:9\r\n:10\r\n$3\r\nlen\r\n:10\r\n"),
        (r#"lcs virus1"#, b"-ERR wrong number of arguments for 'lcs' command\r\n"),
    ]);
}

// From Redis's own unit/type/string.tcl.
#[test]
fn lcs_rna() {
    Harness::new(2).script(&[
        (r#"set virus1{t} CACCTTCCCAGGTAACAAACCAACCAACTTTCGATCTCTTGTAGATCTGTTCTCTAAACGAACTTTAAAATCTGTGTGGCTGTCACTCGGCTGCATGCTTAGTGCACTCACGCAGTATAATTAATAACTAATTACTGTCGTTGACAGGACACGAGTAACTCGTCTATCTTCTGCAGGCTGCTTACGGTTTCGTCCGTGTTGCAGCCGATCATCAGCACATCTAGGTTTCGTCCGGGTGTG"#, b"+OK\r\n"),
        (r#"set virus2{t} ATTAAAGGTTTATACCTTCCCAGGTAACAAACCAACCAACTTTCGATCTCTTGTAGATCTGTTCTCTAAACGAACTTTAAAATCTGTGTGGCTGTCACTCGGCTGCATGCTTAGTGCACTCACGCAGTATAATTAATAACTAATTACTGTCGTTGACAGGACACGAGTAACTCGTCTATCTTCTGCAGGCTGCTTACGGTTTCGTCCGTGTTGCAGCCGATCATCAGCACATCTAGGTTT"#, b"+OK\r\n"),
        (r#"lcs virus1{t} virus2{t}"#, b"$227\r\nACCTTCCCAGGTAACAAACCAACCAACTTTCGATCTCTTGTAGATCTGTTCTCTAAACGAACTTTAAAATCTGTGTGGCTGTCACTCGGCTGCATGCTTAGTGCACTCACGCAGTATAATTAATAACTAATTACTGTCGTTGACAGGACACGAGTAACTCGTCTATCTTCTGCAGGCTGCTTACGGTTTCGTCCGTGTTGCAGCCGATCATCAGCACATCTAGGTTT\r\n"),
        (r#"lcs virus1{t} virus2{t} len"#, b":227\r\n"),
        (r#"lcs virus1{t} virus2{t} idx"#, b"*4\r\n$7\r\nmatches\r\n*5\r\n*2\r\n*2\r\n:238\r\n:238\r\n*2\r\n:239\r\n:239\r\n*2\r\n*2\r\n:236\r\n:236\r\n*2\r\n:238\r\n:238\r\n*2\r\n*2\r\n:229\r\n:230\r\n*2\r\n:236\r\n:237\r\n*2\r\n*2\r\n:224\r\n:224\r\n*2\r\n:235\r\n:235\r\n*2\r\n*2\r\n:1\r\n:222\r\n*2\r\n:13\r\n:234\r\n$3\r\nlen\r\n:227\r\n"),
        (r#"lcs virus1{t} virus2{t} idx withmatchlen"#, b"*4\r\n$7\r\nmatches\r\n*5\r\n*3\r\n*2\r\n:238\r\n:238\r\n*2\r\n:239\r\n:239\r\n:1\r\n*3\r\n*2\r\n:236\r\n:236\r\n*2\r\n:238\r\n:238\r\n:1\r\n*3\r\n*2\r\n:229\r\n:230\r\n*2\r\n:236\r\n:237\r\n:2\r\n*3\r\n*2\r\n:224\r\n:224\r\n*2\r\n:235\r\n:235\r\n:1\r\n*3\r\n*2\r\n:1\r\n:222\r\n*2\r\n:13\r\n:234\r\n:222\r\n$3\r\nlen\r\n:227\r\n"),
        (r#"lcs virus1{t} virus2{t} idx withmatchlen minmatchlen 5"#, b"*4\r\n$7\r\nmatches\r\n*1\r\n*3\r\n*2\r\n:1\r\n:222\r\n*2\r\n:13\r\n:234\r\n:222\r\n$3\r\nlen\r\n:227\r\n"),
        (r#"set foo bar"#, b"+OK\r\n"),
        (r#"getrange foo 0 4294967297"#, b"$3\r\nbar\r\n"),
        (r#"setrange K 9223372036854775807 A"#, b"-ERR string exceeds maximum allowed size (proto-max-bulk-len)\r\n"),
        (r#"setrange K 2147483647 A"#, b"-ERR string exceeds maximum allowed size (proto-max-bulk-len)\r\n"),
    ]);
}

// ---------------------------------------------------------------------------------------
// What the wire does not show: encodings, deadlines, `dirty`, multi-shard views.

use crate::storage::value::RStr;
use crate::storage::Value;

fn encoding(h: &mut Harness, key: &str) -> &'static str {
    h.entry(key.as_bytes())
        .map_or("none", |e| e.value.encoding())
}

fn deadline(h: &mut Harness, key: &str) -> u64 {
    h.entry(key.as_bytes()).map_or(u64::MAX, |e| e.expire_ms)
}

#[test]
fn encodings_follow_redis() {
    let mut h = Harness::new(2);
    // Expected encodings as OBJECT ENCODING reported them on redis-server 7.0.15.
    h.cmd("set i 123");
    h.cmd("set e hello");
    h.cmd(&format!("set r {}", "x".repeat(45)));
    h.cmd("set big 12345678901234567890123");
    assert_eq!(
        [
            encoding(&mut h, "i"),
            encoding(&mut h, "e"),
            encoding(&mut h, "r")
        ],
        ["int", "embstr", "raw"]
    );
    assert_eq!(encoding(&mut h, "big"), "embstr");
    h.cmd("append i 4");
    assert_eq!(encoding(&mut h, "i"), "raw");
    h.cmd("incr i");
    assert_eq!(encoding(&mut h, "i"), "int");
    h.cmd("setrange e 0 J");
    assert_eq!(encoding(&mut h, "e"), "raw");
    h.cmd("setrange fresh 0 1");
    assert_eq!(encoding(&mut h, "fresh"), "raw");
    h.cmd("append a 12");
    assert_eq!(encoding(&mut h, "a"), "int");
    h.cmd("incrbyfloat f 3");
    assert_eq!(encoding(&mut h, "f"), "embstr");
    h.cmd("incrbyfloat g 1e50");
    assert_eq!(encoding(&mut h, "g"), "raw");
    h.cmd("mset m1 7 m2 seven");
    assert_eq!(
        [encoding(&mut h, "m1"), encoding(&mut h, "m2")],
        ["int", "embstr"]
    );
    h.cmd("getset m2 8");
    assert_eq!(encoding(&mut h, "m2"), "int");
    assert_eq!(
        h.entry(b"m2").map(|e| e.value),
        Some(Value::Str(RStr::Int(8)))
    );
}

#[test]
fn set_deadlines() {
    let mut h = Harness::new(2);
    h.cmd("set k v ex 100");
    assert_eq!(deadline(&mut h, "k"), NOW_MS + 100_000);
    h.cmd("set k v px 1500");
    assert_eq!(deadline(&mut h, "k"), NOW_MS + 1500);
    h.cmd("set k v exat 1800000000");
    assert_eq!(deadline(&mut h, "k"), 1_800_000_000_000);
    h.cmd("set k v pxat 1800000000123");
    assert_eq!(deadline(&mut h, "k"), 1_800_000_000_123);
    h.cmd("set k w keepttl");
    assert_eq!(deadline(&mut h, "k"), 1_800_000_000_123);
    h.cmd("set k w");
    assert_eq!(deadline(&mut h, "k"), 0);
    h.cmd("setex k 10 v");
    assert_eq!(deadline(&mut h, "k"), NOW_MS + 10_000);
    h.cmd("psetex k 10 v");
    assert_eq!(deadline(&mut h, "k"), NOW_MS + 10);
    // A deadline in the past is stored as given (Redis 7.0 does not delete at once); the
    // next access expires the key.
    h.cmd("set past v pxat 5");
    assert_eq!(deadline(&mut h, "past"), 5);
    assert_eq!(h.cmd("dbsize"), b":2\r\n");
    assert_eq!(h.cmd("get past"), b"$-1\r\n");
    assert_eq!(h.cmd("dbsize"), b":1\r\n");
}

#[test]
fn writers_keep_or_drop_the_ttl_like_redis() {
    let mut h = Harness::new(2);
    let ttl = NOW_MS + 100_000;
    for (setup, cmd, keeps) in [
        ("set k 1 ex 100", "incr k", true),
        ("set k 1 ex 100", "incrbyfloat k 1.5", true),
        ("set k 1 ex 100", "append k x", true),
        ("set k 1 ex 100", "setrange k 0 x", true),
        ("set k 1 ex 100", "setbit k 1 1", true),
        ("set k 1 ex 100", "bitfield k set u8 0 1", true),
        ("set k 1 ex 100", "getex k", true),
        ("set k 1 ex 100", "getset k 2", false),
        ("set k 1 ex 100", "set k 2", false),
        ("set k 1 ex 100", "mset k 2", false),
        ("set k 1 ex 100", "getex k persist", false),
        ("set k 1 ex 100", "bitop not k k", false),
    ] {
        h.cmd(setup);
        h.cmd(cmd);
        let expected = if keeps { ttl } else { 0 };
        assert_eq!(deadline(&mut h, "k"), expected, "{cmd}");
    }
    h.cmd("set k 1");
    h.cmd("getex k px 2500");
    assert_eq!(deadline(&mut h, "k"), NOW_MS + 2500);
    h.cmd("getex k exat 1800000000");
    assert_eq!(deadline(&mut h, "k"), 1_800_000_000_000);
}

#[test]
fn dirty_counts_changes_like_redis() {
    let mut h = Harness::new(2);
    let step = |h: &mut Harness, line: &str, delta: u64| {
        let before = h.dirty();
        h.cmd(line);
        assert_eq!(h.dirty() - before, delta, "{line}");
    };
    step(&mut h, "mset a 1 b 2 c 3", 3);
    step(&mut h, "msetnx a 1 d 2", 0);
    step(&mut h, "msetnx d 1 e 2", 2);
    step(&mut h, "set a 1 nx", 0);
    step(&mut h, "set a 1 ex 10", 1);
    step(&mut h, "getex a", 0);
    step(&mut h, "getex a persist", 1);
    step(&mut h, "getex a persist", 0);
    step(&mut h, "getdel nokey", 0);
    step(&mut h, "getdel a", 1);
    step(&mut h, "setrange b 0 \"\"", 0);
    step(&mut h, "setbit b 0 1", 1);
    step(&mut h, "setbit b 0 1", 0);
    step(&mut h, "setbit b 100 0", 1);
    step(&mut h, "bitfield b set u8 0 178", 0);
    step(&mut h, "bitfield b set u8 0 1 set u8 8 1 get u8 0", 2);
    step(&mut h, "bitop and nokey nokey2", 0);
    step(&mut h, "incr b", 0);
}

#[test]
fn multi_shard_commands_reach_every_shard() {
    // Two shards; keys land on each by slot. The dispatcher would lock both and hand the
    // handler a view over them.
    let mut s0 = ShardData::new(0, 16);
    let mut s1 = ShardData::new(1, 16);
    let owner = |k: &str| crate::storage::slot_owner(crate::storage::key_slot(k.as_bytes()), 2);
    let (a, b) = ("a", "b");
    assert_ne!(owner(a), owner(b));
    let run = |s0: &mut ShardData, s1: &mut ShardData, line: &str| {
        let args = tokenize(line);
        let mut buf = Vec::new();
        let mut out = Out::new(&mut buf, 2);
        let Some(Kind::Data(f)) = commands::lookup(&args[0]).map(|c| c.kind) else {
            panic!("{line}");
        };
        let mut ks = Keyspace::many(vec![s0, s1], 2, 0, NOW_MS);
        f(&mut ks, &args, &mut out);
        buf
    };
    assert_eq!(run(&mut s0, &mut s1, "mset a hello b help"), b"+OK\r\n");
    assert_eq!(s0.dbs[0].keys + s1.dbs[0].keys, 2);
    assert_eq!(s0.dbs[0].keys, 1);
    assert_eq!(
        run(&mut s0, &mut s1, "mget a b"),
        b"*2\r\n$5\r\nhello\r\n$4\r\nhelp\r\n"
    );
    assert_eq!(run(&mut s0, &mut s1, "msetnx a 1 b 2"), b":0\r\n");
    assert_eq!(run(&mut s0, &mut s1, "lcs a b"), b"$3\r\nhel\r\n");
    assert_eq!(run(&mut s0, &mut s1, "bitop or b a b"), b":5\r\n");
    assert_eq!(run(&mut s0, &mut s1, "get b"), b"$5\r\nhel|o\r\n");
}

#[test]
fn setrange_and_append_respect_proto_max_bulk_len() {
    let mut h = Harness::new(2);
    h.cmd("set k abc");
    // 512 MiB - 3 more bytes would fit; the check is on the sum, nothing is allocated here.
    assert!(super::length_ok(3, PROTO_MAX_BULK_LEN - 3));
    assert!(!super::length_ok(3, PROTO_MAX_BULK_LEN - 2));
    assert!(!super::length_ok(u64::MAX, 2));
    assert_eq!(
        h.cmd("setrange k 536870910 xyz"),
        b"-ERR string exceeds maximum allowed size (proto-max-bulk-len)\r\n"
    );
}

#[test]
fn getrange_clamps_like_redis() {
    use super::clamp_range;
    assert_eq!(clamp_range(0, -1, 5), Some((0, 4)));
    assert_eq!(clamp_range(-100, 100, 5), Some((0, 4)));
    assert_eq!(clamp_range(-1, -3, 5), None);
    assert_eq!(clamp_range(0, -1, 0), None);
    assert_eq!(clamp_range(i64::MIN, i64::MAX, 3), Some((0, 2)));
    assert_eq!(clamp_range(4, 2, 5), None);
}

#[test]
fn lcs_walk_matches_redis_ranges() {
    use super::{lcs_table, lcs_walk, LcsMatch};
    let (a, b) = (b"ohmytext", b"mynewtext");
    let t = lcs_table(a, b).expect("small table");
    let (common, matches) = lcs_walk(a, b, &t, 0);
    assert_eq!(common, b"mytext");
    assert_eq!(
        matches,
        vec![
            LcsMatch {
                a: (4, 7),
                b: (5, 8),
                len: 4
            },
            LcsMatch {
                a: (2, 3),
                b: (0, 1),
                len: 2
            },
        ]
    );
    let (_, long_only) = lcs_walk(a, b, &t, 3);
    assert_eq!(long_only.len(), 1);
    let (common, matches) = lcs_walk(b"", b"abc", &lcs_table(b"", b"abc").expect("empty"), 0);
    assert!(common.is_empty() && matches.is_empty());
    // (alen+1)(blen+1) cells of 4 bytes may not exceed 512 MiB.
    let big = vec![b'x'; 12_000];
    assert_eq!(
        lcs_table(&big, &big).err(),
        Some("ERR Insufficient memory, transient memory for LCS exceeds proto-max-bulk-len")
    );
}

#[test]
fn lookups_count_hits_and_misses_like_redis() {
    let mut h = Harness::new(2);
    h.cmd("mset a 1 b 2");
    let mut step = |line: &str, hits: u64, misses: u64| {
        let before = (h.shard.stats.hits, h.shard.stats.misses);
        h.cmd(line);
        let after = (h.shard.stats.hits, h.shard.stats.misses);
        assert_eq!(
            (after.0 - before.0, after.1 - before.1),
            (hits, misses),
            "{line}"
        );
    };
    // Reads count; the write-side lookups of SET, INCR, APPEND, SETRANGE, SETBIT do not.
    step("mget a b nokey", 2, 1);
    step("get a", 1, 0);
    step("set a 5 get", 1, 0);
    step("set c 5", 0, 0);
    step("incr a", 0, 0);
    step("append a x", 0, 0);
    step("setbit z 1 1", 0, 0);
    step("bitfield z get u8 0", 1, 0);
    step("bitfield z set u8 0 1", 0, 0);
    step("lcs a nokey", 1, 1);
    step("bitop or d a nokey", 1, 1);
    step("strlen nokey", 0, 1);
    step("getex a", 1, 0);
}
