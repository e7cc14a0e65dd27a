//! Handler-level tests for the hash family.
//!
//! Each script is a sequence of commands with the exact reply bytes redis-server 7.0.15
//! returned for it, recorded from a fresh server (FLUSHALL, HELLO 2 or 3, then the lines in
//! order). `Harness` replays them through the command table with the dispatcher's arity
//! check, on one shard, and compares byte for byte. What depends on randomness or on hash
//! order (HRANDFIELD, HSCAN and HGETALL of a `hashtable` hash) is checked by its shape and
//! contents instead; what the wire cannot show (encodings, `dirty`, statistics) is checked on
//! the shard directly.

use super::*;
use crate::commands::{self, Kind};
use crate::storage::ShardData;
use std::collections::{BTreeMap, BTreeSet};

const NOW_MS: u64 = 1_700_000_000_000;

struct Harness {
    shard: ShardData,
    proto: u8,
}

impl Harness {
    fn new(proto: u8) -> Harness {
        Harness {
            shard: ShardData::new(0, 16),
            proto,
        }
    }

    /// Runs one command as the dispatcher would (lookup, arity, handler); returns the reply.
    fn run(&mut self, args: &[Bytes]) -> Vec<u8> {
        let mut buf = Vec::new();
        let mut out = Out::new(&mut buf, self.proto);
        let Some(cmd) = args.first().and_then(|name| commands::lookup(name)) else {
            panic!("unknown command in test: {:?}", args.first());
        };
        let argc = args.len() as i32;
        let arity_ok =
            (cmd.arity > 0 && argc == cmd.arity) || (cmd.arity < 0 && argc >= -cmd.arity);
        if !arity_ok {
            out.error(&err::wrong_args(cmd.name));
            return buf;
        }
        let Kind::Data(handler) = cmd.kind else {
            panic!("not a data command: {}", cmd.name);
        };
        let mut ks = Keyspace::one(&mut self.shard, 1, 0, NOW_MS);
        handler(&mut ks, args, &mut out);
        buf
    }

    fn cmd(&mut self, line: &str) -> Vec<u8> {
        self.run(&tokenize(line))
    }

    /// Replays a recorded script, failing on the first reply that differs.
    fn script(&mut self, steps: &[(&str, &[u8])]) {
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

    /// The hash stored at `key`, if any.
    fn hash(&mut self, key: &str) -> Option<Hash> {
        let mut ks = Keyspace::one(&mut self.shard, 1, 0, NOW_MS);
        match ks.peek(key.as_bytes()).map(|e| &e.value) {
            Some(Value::Hash(h)) => Some((*h).clone()),
            _ => None,
        }
    }

    fn encoding(&mut self, key: &str) -> &'static str {
        self.hash(key).map_or("none", |h| h.encoding())
    }

    /// Fills `key` with `f0..f{n-1}` set to their index.
    fn fill(&mut self, key: &str, n: usize) {
        let mut args = vec![Bytes::from("hset"), Bytes::from(key.to_string())];
        for i in 0..n {
            args.push(Bytes::from(format!("f{i}")));
            args.push(Bytes::from(i.to_string()));
        }
        assert_eq!(self.run(&args), format!(":{n}\r\n").into_bytes());
    }
}

/// Splits a command line: arguments are separated by spaces, `"..."` quotes one that holds
/// spaces (or is empty), and `\xNN`, `\\`, `\"` escape bytes anywhere.
fn tokenize(line: &str) -> Vec<Bytes> {
    let s = line.as_bytes();
    let mut args = Vec::new();
    let mut i = 0;
    while i < s.len() {
        if s[i] == b' ' {
            i += 1;
            continue;
        }
        let quoted = s[i] == b'"';
        i += quoted as usize;
        let mut arg = Vec::new();
        while i < s.len() {
            match s[i] {
                b'"' if quoted => {
                    i += 1;
                    break;
                }
                b' ' if !quoted => break,
                b'\\' if s.get(i + 1) == Some(&b'x') => {
                    let hex = std::str::from_utf8(&s[i + 2..i + 4]).expect("hex escape");
                    arg.push(u8::from_str_radix(hex, 16).expect("hex escape"));
                    i += 4;
                }
                b'\\' if i + 1 < s.len() => {
                    arg.push(s[i + 1]);
                    i += 2;
                }
                c => {
                    arg.push(c);
                    i += 1;
                }
            }
        }
        args.push(Bytes::from(arg));
    }
    args
}

/// Parses one RESP reply (enough of RESP2/3 for these tests): bulk strings as bytes, arrays
/// and maps as nested vectors (maps flattened).
#[derive(Debug, Clone, PartialEq)]
enum Resp {
    Bulk(Vec<u8>),
    Int(i64),
    Array(Vec<Resp>),
    Error(String),
}

fn parse_resp(b: &[u8]) -> (Resp, &[u8]) {
    let end = b.windows(2).position(|w| w == b"\r\n").expect("line");
    let line = std::str::from_utf8(&b[1..end]).expect("utf8");
    let rest = &b[end + 2..];
    match b[0] {
        b'-' => (Resp::Error(line.to_string()), rest),
        b':' => (Resp::Int(line.parse().expect("int")), rest),
        b'$' => {
            let n: usize = line.parse().expect("len");
            (Resp::Bulk(rest[..n].to_vec()), &rest[n + 2..])
        }
        b'*' | b'%' => {
            let n: usize = line.parse().expect("len");
            let n = if b[0] == b'%' { 2 * n } else { n };
            let mut items = Vec::new();
            let mut rest = rest;
            for _ in 0..n {
                let (item, r) = parse_resp(rest);
                items.push(item);
                rest = r;
            }
            (Resp::Array(items), rest)
        }
        other => panic!("unexpected reply type {}", other as char),
    }
}

fn resp(b: &[u8]) -> Resp {
    let (r, rest) = parse_resp(b);
    assert!(rest.is_empty(), "trailing bytes");
    r
}

fn bulks(r: &Resp) -> Vec<Vec<u8>> {
    match r {
        Resp::Array(items) => items
            .iter()
            .map(|i| match i {
                Resp::Bulk(b) => b.clone(),
                other => panic!("not a bulk: {other:?}"),
            })
            .collect(),
        other => panic!("not an array: {other:?}"),
    }
}

fn pairs(flat: &[Vec<u8>]) -> BTreeMap<Vec<u8>, Vec<u8>> {
    flat.chunks(2)
        .map(|p| (p[0].clone(), p[1].clone()))
        .collect()
}

/// `f0..f{n-1}` mapped to their index, as `Harness::fill` stores them.
fn filled(n: usize) -> BTreeMap<Vec<u8>, Vec<u8>> {
    (0..n)
        .map(|i| (format!("f{i}").into_bytes(), i.to_string().into_bytes()))
        .collect()
}

#[test]
fn basic_replies_match_redis() {
    let mut h = Harness::new(2);
    h.script(&[
        ("hset h a 1 b", b"-ERR wrong number of arguments for 'hset' command\r\n"),
        ("hset h a 1 b 2", b":2\r\n"),
        ("hmset h a 1 b", b"-ERR wrong number of arguments for 'hmset' command\r\n"),
        ("hmset h c 3 d \"\"", b"+OK\r\n"),
        ("hset h a x", b":0\r\n"),
        ("hget h a", b"$1\r\nx\r\n"),
        ("hget h nofield", b"$-1\r\n"),
        ("hget nokey a", b"$-1\r\n"),
        ("hmget h a nofield b", b"*3\r\n$1\r\nx\r\n$-1\r\n$1\r\n2\r\n"),
        ("hmget nokey a b", b"*2\r\n$-1\r\n$-1\r\n"),
        ("hlen h", b":4\r\n"),
        ("hlen nokey", b":0\r\n"),
        ("hstrlen h a", b":1\r\n"),
        ("hstrlen h nofield", b":0\r\n"),
        ("hstrlen nokey a", b":0\r\n"),
        ("hexists h a", b":1\r\n"),
        ("hexists h nofield", b":0\r\n"),
        ("hexists nokey a", b":0\r\n"),
        ("hkeys h", b"*4\r\n$1\r\na\r\n$1\r\nb\r\n$1\r\nc\r\n$1\r\nd\r\n"),
        ("hvals h", b"*4\r\n$1\r\nx\r\n$1\r\n2\r\n$1\r\n3\r\n$0\r\n\r\n"),
        ("hgetall h", b"*8\r\n$1\r\na\r\n$1\r\nx\r\n$1\r\nb\r\n$1\r\n2\r\n$1\r\nc\r\n$1\r\n3\r\n$1\r\nd\r\n$0\r\n\r\n"),
        ("hkeys nokey", b"*0\r\n"),
        ("hvals nokey", b"*0\r\n"),
        ("hgetall nokey", b"*0\r\n"),
        ("hsetnx h a y", b":0\r\n"),
        ("hsetnx h e 5", b":1\r\n"),
        ("hsetnx nx f v", b":1\r\n"),
        ("hdel h a nofield b", b":2\r\n"),
        ("hdel nokey a", b":0\r\n"),
        ("hdel nx f f", b":1\r\n"),
        ("exists nx", b":0\r\n"),
        ("hgetall h", b"*6\r\n$1\r\nc\r\n$1\r\n3\r\n$1\r\nd\r\n$0\r\n\r\n$1\r\ne\r\n$1\r\n5\r\n"),
        ("hset ints 0 0 -1 -1 9223372036854775807 9223372036854775807 -9223372036854775808 -9223372036854775808 01 01 1.0 1.0", b":6\r\n"),
        ("hgetall ints", b"*12\r\n$1\r\n0\r\n$1\r\n0\r\n$2\r\n-1\r\n$2\r\n-1\r\n$19\r\n9223372036854775807\r\n$19\r\n9223372036854775807\r\n$20\r\n-9223372036854775808\r\n$20\r\n-9223372036854775808\r\n$2\r\n01\r\n$2\r\n01\r\n$3\r\n1.0\r\n$3\r\n1.0\r\n"),
        ("hstrlen ints -9223372036854775808", b":20\r\n"),
        ("hget ints 01", b"$2\r\n01\r\n"),
        ("hget ints 1", b"$-1\r\n"),
        ("hdel ints 0 -1 9223372036854775807 -9223372036854775808 01 1.0", b":6\r\n"),
        ("exists ints", b":0\r\n"),
        ("set s x", b"+OK\r\n"),
        ("hset s a 1", b"-WRONGTYPE Operation against a key holding the wrong kind of value\r\n"),
        ("hsetnx s a 1", b"-WRONGTYPE Operation against a key holding the wrong kind of value\r\n"),
        ("hmset s a 1", b"-WRONGTYPE Operation against a key holding the wrong kind of value\r\n"),
        ("hget s a", b"-WRONGTYPE Operation against a key holding the wrong kind of value\r\n"),
        ("hmget s a", b"-WRONGTYPE Operation against a key holding the wrong kind of value\r\n"),
        ("hdel s a", b"-WRONGTYPE Operation against a key holding the wrong kind of value\r\n"),
        ("hlen s", b"-WRONGTYPE Operation against a key holding the wrong kind of value\r\n"),
        ("hstrlen s a", b"-WRONGTYPE Operation against a key holding the wrong kind of value\r\n"),
        ("hexists s a", b"-WRONGTYPE Operation against a key holding the wrong kind of value\r\n"),
        ("hkeys s", b"-WRONGTYPE Operation against a key holding the wrong kind of value\r\n"),
        ("hvals s", b"-WRONGTYPE Operation against a key holding the wrong kind of value\r\n"),
        ("hgetall s", b"-WRONGTYPE Operation against a key holding the wrong kind of value\r\n"),
        ("hincrby s a 1", b"-WRONGTYPE Operation against a key holding the wrong kind of value\r\n"),
        ("hincrbyfloat s a 1", b"-WRONGTYPE Operation against a key holding the wrong kind of value\r\n"),
        ("hrandfield s", b"-WRONGTYPE Operation against a key holding the wrong kind of value\r\n"),
        ("hrandfield s 1", b"-WRONGTYPE Operation against a key holding the wrong kind of value\r\n"),
        ("hscan s 0", b"-WRONGTYPE Operation against a key holding the wrong kind of value\r\n"),
        ("hincrby s a x", b"-ERR value is not an integer or out of range\r\n"),
        ("hincrbyfloat s a x", b"-ERR value is not a valid float\r\n"),
        ("hscan s x", b"-ERR invalid cursor\r\n"),
        ("hrandfield s x", b"-ERR value is not an integer or out of range\r\n"),
    ]);
    assert_eq!(h.encoding("h"), "listpack");
}

#[test]
fn arity_errors_match_redis() {
    Harness::new(2).script(&[
        (
            "hset h",
            b"-ERR wrong number of arguments for 'hset' command\r\n",
        ),
        (
            "hset h a",
            b"-ERR wrong number of arguments for 'hset' command\r\n",
        ),
        (
            "hget h",
            b"-ERR wrong number of arguments for 'hget' command\r\n",
        ),
        (
            "hget h a b",
            b"-ERR wrong number of arguments for 'hget' command\r\n",
        ),
        (
            "hmget h",
            b"-ERR wrong number of arguments for 'hmget' command\r\n",
        ),
        (
            "hdel h",
            b"-ERR wrong number of arguments for 'hdel' command\r\n",
        ),
        (
            "hlen",
            b"-ERR wrong number of arguments for 'hlen' command\r\n",
        ),
        (
            "hlen h x",
            b"-ERR wrong number of arguments for 'hlen' command\r\n",
        ),
        (
            "hstrlen h",
            b"-ERR wrong number of arguments for 'hstrlen' command\r\n",
        ),
        (
            "hexists h a b",
            b"-ERR wrong number of arguments for 'hexists' command\r\n",
        ),
        (
            "hkeys",
            b"-ERR wrong number of arguments for 'hkeys' command\r\n",
        ),
        (
            "hvals h x",
            b"-ERR wrong number of arguments for 'hvals' command\r\n",
        ),
        (
            "hgetall h x",
            b"-ERR wrong number of arguments for 'hgetall' command\r\n",
        ),
        (
            "hincrby h a",
            b"-ERR wrong number of arguments for 'hincrby' command\r\n",
        ),
        (
            "hincrbyfloat h a 1 2",
            b"-ERR wrong number of arguments for 'hincrbyfloat' command\r\n",
        ),
        (
            "hrandfield",
            b"-ERR wrong number of arguments for 'hrandfield' command\r\n",
        ),
        (
            "hscan h",
            b"-ERR wrong number of arguments for 'hscan' command\r\n",
        ),
        (
            "hsetnx h a",
            b"-ERR wrong number of arguments for 'hsetnx' command\r\n",
        ),
        (
            "hmset h a",
            b"-ERR wrong number of arguments for 'hmset' command\r\n",
        ),
    ]);
}

#[test]
fn increments_match_redis() {
    let mut h = Harness::new(2);
    h.script(&[
        ("hincrby h n 5", b":5\r\n"),
        ("hincrby h n -7", b":-2\r\n"),
        ("hget h n", b"$2\r\n-2\r\n"),
        ("hincrby h n 9223372036854775807", b":9223372036854775805\r\n"),
        ("hincrby h n -9223372036854775807", b":-2\r\n"),
        ("hincrby h n -1", b":-3\r\n"),
        ("hincrby h n -1", b":-4\r\n"),
        ("hset h n 9223372036854775806", b":0\r\n"),
        ("hincrby h n 1", b":9223372036854775807\r\n"),
        ("hincrby h n 1", b"-ERR increment or decrement would overflow\r\n"),
        ("hset h s \" 11\"", b":1\r\n"),
        ("hincrby h s 1", b"-ERR hash value is not an integer\r\n"),
        ("hset h s \"11 \"", b":0\r\n"),
        ("hincrby h s 1", b"-ERR hash value is not an integer\r\n"),
        ("hset h s 011", b":0\r\n"),
        ("hincrby h s 1", b"-ERR hash value is not an integer\r\n"),
        ("hset h s -0", b":0\r\n"),
        ("hincrby h s 1", b"-ERR hash value is not an integer\r\n"),
        ("hset h s \"\"", b":0\r\n"),
        ("hincrby h s 1", b"-ERR hash value is not an integer\r\n"),
        ("hset h s 17179869184", b":0\r\n"),
        ("hincrby h s 17179869184", b":34359738368\r\n"),
        ("hincrby h s 1.5", b"-ERR value is not an integer or out of range\r\n"),
        ("hincrby h s 9223372036854775808", b"-ERR value is not an integer or out of range\r\n"),
        ("hincrby h s \" 1\"", b"-ERR value is not an integer or out of range\r\n"),
        ("hincrby h s +1", b"-ERR value is not an integer or out of range\r\n"),
        ("hincrby newkey f -3", b":-3\r\n"),
        ("hincrbyfloat h f 1.23", b"$4\r\n1.23\r\n"),
        ("hincrbyfloat h f 0.77", b"$1\r\n2\r\n"),
        ("hincrbyfloat h f -0.1", b"$3\r\n1.9\r\n"),
        ("hincrbyfloat h g 10.5", b"$4\r\n10.5\r\n"),
        ("hincrbyfloat h g 3.0e3", b"$6\r\n3010.5\r\n"),
        ("hincrbyfloat h g -1e-20", b"$6\r\n3010.5\r\n"),
        ("hincrbyfloat h i 0.1", b"$3\r\n0.1\r\n"),
        ("hincrbyfloat h i 0.2", b"$3\r\n0.3\r\n"),
        ("hincrbyfloat h n 1", b"$19\r\n9223372036854775808\r\n"),
        ("hincrbyfloat h n 0", b"$19\r\n9223372036854775808\r\n"),
        ("hincrbyfloat h s 0x10", b"$11\r\n34359738384\r\n"),
        ("hincrbyfloat h z -0.0", b"$1\r\n0\r\n"),
        ("hincrbyfloat h z 1e17", b"$18\r\n100000000000000000\r\n"),
        ("hincrbyfloat h z -1e17", b"$1\r\n0\r\n"),
        ("hincrbyfloat h x inf", b"-ERR value is NaN or Infinity\r\n"),
        ("hincrbyfloat h x -infinity", b"-ERR value is NaN or Infinity\r\n"),
        ("hincrbyfloat h x nan", b"-ERR value is not a valid float\r\n"),
        ("hincrbyfloat h x 1e5000", b"-ERR value is not a valid float\r\n"),
        ("hincrbyfloat h x \" 1\"", b"-ERR value is not a valid float\r\n"),
        ("hincrbyfloat h x 1x", b"-ERR value is not a valid float\r\n"),
        ("hincrbyfloat h x \"\"", b"-ERR value is not a valid float\r\n"),
        ("exists newfloat", b":0\r\n"),
        ("hincrbyfloat newfloat x inf", b"-ERR value is NaN or Infinity\r\n"),
        ("exists newfloat", b":0\r\n"),
        ("hset h bad \"1\\x002\"", b":1\r\n"),
        ("hincrbyfloat h bad 1", b"-ERR hash value is not a float\r\n"),
        ("hset h bad abc", b":0\r\n"),
        ("hincrbyfloat h bad 1", b"-ERR hash value is not a float\r\n"),
        ("hset h inf inf", b":1\r\n"),
        ("hincrbyfloat h inf 1", b"-ERR increment would produce NaN or Infinity\r\n"),
        ("hset h big 1e4932", b":1\r\n"),
        ("hincrbyfloat h big 1e4932", b"-ERR increment would produce NaN or Infinity\r\n"),
        ("hset h big 0x1p64", b":0\r\n"),
        ("hincrbyfloat h big 0", b"$20\r\n18446744073709551616\r\n"),
        ("hincrby h big 1", b"-ERR hash value is not an integer\r\n"),
        ("hgetall h", b"*18\r\n$1\r\nn\r\n$19\r\n9223372036854775808\r\n$1\r\ns\r\n$11\r\n34359738384\r\n$1\r\nf\r\n$3\r\n1.9\r\n$1\r\ng\r\n$6\r\n3010.5\r\n$1\r\ni\r\n$3\r\n0.3\r\n$1\r\nz\r\n$1\r\n0\r\n$3\r\nbad\r\n$3\r\nabc\r\n$3\r\ninf\r\n$3\r\ninf\r\n$3\r\nbig\r\n$20\r\n18446744073709551616\r\n"),
    ]);
    assert_eq!(h.encoding("h"), "listpack");
}

#[test]
fn resp3_replies_match_redis() {
    Harness::new(3).script(&[
        ("hset h a 1 b 2", b":2\r\n"),
        ("hgetall h", b"%2\r\n$1\r\na\r\n$1\r\n1\r\n$1\r\nb\r\n$1\r\n2\r\n"),
        ("hgetall nokey", b"%0\r\n"),
        ("hkeys nokey", b"*0\r\n"),
        ("hget h nofield", b"_\r\n"),
        ("hmget h a nofield", b"*2\r\n$1\r\n1\r\n_\r\n"),
        ("hrandfield nokey", b"_\r\n"),
        ("hrandfield nokey 3", b"*0\r\n"),
        ("hrandfield nokey -3 withvalues", b"*0\r\n"),
        ("hset one f v", b":1\r\n"),
        ("hrandfield one", b"$1\r\nf\r\n"),
        ("hrandfield one 1", b"*1\r\n$1\r\nf\r\n"),
        ("hrandfield one 1 withvalues", b"*1\r\n*2\r\n$1\r\nf\r\n$1\r\nv\r\n"),
        ("hrandfield one -1 withvalues", b"*1\r\n*2\r\n$1\r\nf\r\n$1\r\nv\r\n"),
        ("hrandfield one -3", b"*3\r\n$1\r\nf\r\n$1\r\nf\r\n$1\r\nf\r\n"),
        ("hrandfield one -3 withvalues", b"*3\r\n*2\r\n$1\r\nf\r\n$1\r\nv\r\n*2\r\n$1\r\nf\r\n$1\r\nv\r\n*2\r\n$1\r\nf\r\n$1\r\nv\r\n"),
        ("hrandfield one 5 withvalues", b"*1\r\n*2\r\n$1\r\nf\r\n$1\r\nv\r\n"),
        ("hrandfield one 0 withvalues", b"*0\r\n"),
        ("hrandfield one 0", b"*0\r\n"),
        ("hincrbyfloat h c 2.5", b"$3\r\n2.5\r\n"),
        ("hscan h 0", b"*2\r\n$1\r\n0\r\n*6\r\n$1\r\na\r\n$1\r\n1\r\n$1\r\nb\r\n$1\r\n2\r\n$1\r\nc\r\n$3\r\n2.5\r\n"),
        ("hscan nokey 0", b"*2\r\n$1\r\n0\r\n*0\r\n"),
    ]);
}

#[test]
fn hrandfield_on_one_field_matches_redis() {
    Harness::new(2).script(&[
        ("hrandfield nokey", b"$-1\r\n"),
        ("hrandfield nokey 3", b"*0\r\n"),
        ("hrandfield nokey -3 withvalues", b"*0\r\n"),
        ("hrandfield nokey x", b"-ERR value is not an integer or out of range\r\n"),
        ("hrandfield nokey 1 bad", b"-ERR syntax error\r\n"),
        ("hset one f 7", b":1\r\n"),
        ("hrandfield one", b"$1\r\nf\r\n"),
        ("hrandfield one 1", b"*1\r\n$1\r\nf\r\n"),
        ("hrandfield one 1 withvalues", b"*2\r\n$1\r\nf\r\n$1\r\n7\r\n"),
        ("hrandfield one -1 withvalues", b"*2\r\n$1\r\nf\r\n$1\r\n7\r\n"),
        ("hrandfield one -3", b"*3\r\n$1\r\nf\r\n$1\r\nf\r\n$1\r\nf\r\n"),
        ("hrandfield one -3 withvalues", b"*6\r\n$1\r\nf\r\n$1\r\n7\r\n$1\r\nf\r\n$1\r\n7\r\n$1\r\nf\r\n$1\r\n7\r\n"),
        ("hrandfield one 5 withvalues", b"*2\r\n$1\r\nf\r\n$1\r\n7\r\n"),
        ("hrandfield one 5 WITHVALUES", b"*2\r\n$1\r\nf\r\n$1\r\n7\r\n"),
        ("hrandfield one 0 withvalues", b"*0\r\n"),
        ("hrandfield one 0", b"*0\r\n"),
        ("hrandfield one -9223372036854775808", b"-ERR value is out of range, value must between -9223372036854775807 and 9223372036854775807\r\n"),
        ("hrandfield one 9223372036854775807", b"*1\r\n$1\r\nf\r\n"),
        ("hrandfield one -9223372036854775808 withvalues", b"-ERR value is out of range, value must between -9223372036854775807 and 9223372036854775807\r\n"),
        ("hrandfield one -4611686018427387904 withvalues", b"-ERR value is out of range\r\n"),
        ("hrandfield one 4611686018427387904 withvalues", b"-ERR value is out of range\r\n"),
        ("hrandfield one 4611686018427387903 withvalues", b"*2\r\n$1\r\nf\r\n$1\r\n7\r\n"),
        ("hrandfield one 1 withvaluesx", b"-ERR syntax error\r\n"),
        ("hrandfield one 1 withvalues x", b"-ERR syntax error\r\n"),
        ("hrandfield one x withvaluesx", b"-ERR value is not an integer or out of range\r\n"),
        ("hrandfield one 1 \"withvalues\\x00junk\"", b"*2\r\n$1\r\nf\r\n$1\r\n7\r\n"),
    ]);
}

#[test]
fn hscan_of_a_listpack_matches_redis() {
    Harness::new(2).script(&[
        ("hset h a 1 b 2 c 3 abc 12 -5 x", b":5\r\n"),
        ("hscan h 0", b"*2\r\n$1\r\n0\r\n*10\r\n$1\r\na\r\n$1\r\n1\r\n$1\r\nb\r\n$1\r\n2\r\n$1\r\nc\r\n$1\r\n3\r\n$3\r\nabc\r\n$2\r\n12\r\n$2\r\n-5\r\n$1\r\nx\r\n"),
        ("hscan h 123", b"*2\r\n$1\r\n0\r\n*10\r\n$1\r\na\r\n$1\r\n1\r\n$1\r\nb\r\n$1\r\n2\r\n$1\r\nc\r\n$1\r\n3\r\n$3\r\nabc\r\n$2\r\n12\r\n$2\r\n-5\r\n$1\r\nx\r\n"),
        ("hscan h -1", b"*2\r\n$1\r\n0\r\n*10\r\n$1\r\na\r\n$1\r\n1\r\n$1\r\nb\r\n$1\r\n2\r\n$1\r\nc\r\n$1\r\n3\r\n$3\r\nabc\r\n$2\r\n12\r\n$2\r\n-5\r\n$1\r\nx\r\n"),
        ("hscan h +5", b"*2\r\n$1\r\n0\r\n*10\r\n$1\r\na\r\n$1\r\n1\r\n$1\r\nb\r\n$1\r\n2\r\n$1\r\nc\r\n$1\r\n3\r\n$3\r\nabc\r\n$2\r\n12\r\n$2\r\n-5\r\n$1\r\nx\r\n"),
        ("hscan h \"\"", b"*2\r\n$1\r\n0\r\n*10\r\n$1\r\na\r\n$1\r\n1\r\n$1\r\nb\r\n$1\r\n2\r\n$1\r\nc\r\n$1\r\n3\r\n$3\r\nabc\r\n$2\r\n12\r\n$2\r\n-5\r\n$1\r\nx\r\n"),
        ("hscan h \" 0\"", b"-ERR invalid cursor\r\n"),
        ("hscan h 0x", b"-ERR invalid cursor\r\n"),
        ("hscan h 18446744073709551615", b"*2\r\n$1\r\n0\r\n*10\r\n$1\r\na\r\n$1\r\n1\r\n$1\r\nb\r\n$1\r\n2\r\n$1\r\nc\r\n$1\r\n3\r\n$3\r\nabc\r\n$2\r\n12\r\n$2\r\n-5\r\n$1\r\nx\r\n"),
        ("hscan h 18446744073709551616", b"-ERR invalid cursor\r\n"),
        ("hscan h -18446744073709551616", b"-ERR invalid cursor\r\n"),
        ("hscan h \"5\\x00junk\"", b"*2\r\n$1\r\n0\r\n*10\r\n$1\r\na\r\n$1\r\n1\r\n$1\r\nb\r\n$1\r\n2\r\n$1\r\nc\r\n$1\r\n3\r\n$3\r\nabc\r\n$2\r\n12\r\n$2\r\n-5\r\n$1\r\nx\r\n"),
        ("hscan h 0 count 1", b"*2\r\n$1\r\n0\r\n*10\r\n$1\r\na\r\n$1\r\n1\r\n$1\r\nb\r\n$1\r\n2\r\n$1\r\nc\r\n$1\r\n3\r\n$3\r\nabc\r\n$2\r\n12\r\n$2\r\n-5\r\n$1\r\nx\r\n"),
        ("hscan h 0 count 0", b"-ERR syntax error\r\n"),
        ("hscan h 0 count -1", b"-ERR syntax error\r\n"),
        ("hscan h 0 count x", b"-ERR value is not an integer or out of range\r\n"),
        ("hscan h 0 count", b"-ERR syntax error\r\n"),
        ("hscan h 0 match", b"-ERR syntax error\r\n"),
        ("hscan h 0 match a*", b"*2\r\n$1\r\n0\r\n*4\r\n$1\r\na\r\n$1\r\n1\r\n$3\r\nabc\r\n$2\r\n12\r\n"),
        ("hscan h 0 MATCH * COUNT 100", b"*2\r\n$1\r\n0\r\n*10\r\n$1\r\na\r\n$1\r\n1\r\n$1\r\nb\r\n$1\r\n2\r\n$1\r\nc\r\n$1\r\n3\r\n$3\r\nabc\r\n$2\r\n12\r\n$2\r\n-5\r\n$1\r\nx\r\n"),
        ("hscan h 0 match -* match a?c", b"*2\r\n$1\r\n0\r\n*2\r\n$3\r\nabc\r\n$2\r\n12\r\n"),
        ("hscan h 0 match [ab]", b"*2\r\n$1\r\n0\r\n*4\r\n$1\r\na\r\n$1\r\n1\r\n$1\r\nb\r\n$1\r\n2\r\n"),
        ("hscan h 0 type string", b"-ERR syntax error\r\n"),
        ("hscan h 0 novalue", b"-ERR syntax error\r\n"),
        ("hscan h 0 \"count\\x00x\" 1", b"*2\r\n$1\r\n0\r\n*10\r\n$1\r\na\r\n$1\r\n1\r\n$1\r\nb\r\n$1\r\n2\r\n$1\r\nc\r\n$1\r\n3\r\n$3\r\nabc\r\n$2\r\n12\r\n$2\r\n-5\r\n$1\r\nx\r\n"),
        ("hscan h x match a*", b"-ERR invalid cursor\r\n"),
        ("hscan nokey 0 bad", b"*2\r\n$1\r\n0\r\n*0\r\n"),
        ("hscan nokey x", b"-ERR invalid cursor\r\n"),
    ]);
}

#[test]
fn hashtable_replies_match_redis() {
    let mut h = Harness::new(2);
    h.fill("big", 200);
    assert_eq!(h.encoding("big"), "hashtable");
    h.script(&[
        ("hlen big", b":200\r\n"),
        ("hget big f7", b"$1\r\n7\r\n"),
        ("hget big f200", b"$-1\r\n"),
        (
            "hmget big f0 f199 nofield",
            b"*3\r\n$1\r\n0\r\n$3\r\n199\r\n$-1\r\n",
        ),
        ("hstrlen big f150", b":3\r\n"),
        ("hexists big f150", b":1\r\n"),
        ("hincrby big f150 -151", b":-1\r\n"),
        ("hincrbyfloat big f7 0.5", b"$3\r\n7.5\r\n"),
        ("hset big f7 x f200 y", b":1\r\n"),
        ("hsetnx big f200 z", b":0\r\n"),
        ("hdel big f0 f1 nofield", b":2\r\n"),
        ("hlen big", b":199\r\n"),
        ("hset long a b", b":1\r\n"),
        (
            "hset long v aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
            b":1\r\n",
        ),
        (
            "hget long v",
            b"$65\r\naaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n",
        ),
        ("hstrlen long v", b":65\r\n"),
        ("hdel long v", b":1\r\n"),
        ("hgetall long", b"*2\r\n$1\r\na\r\n$1\r\nb\r\n"),
    ]);
    assert_eq!(h.encoding("big"), "hashtable");
    assert_eq!(h.encoding("long"), "hashtable", "conversion is one way");
}

#[test]
fn encodings_follow_redis_thresholds() {
    let mut h = Harness::new(2);
    h.fill("at", 128);
    assert_eq!(h.encoding("at"), "listpack", "128 entries stay packed");
    h.cmd("hset at f128 128");
    assert_eq!(h.encoding("at"), "hashtable", "the 129th converts");
    let v64 = "v".repeat(64);
    h.cmd(&format!("hset v64 {v64} {v64}"));
    assert_eq!(h.encoding("v64"), "listpack", "64 bytes stay packed");
    h.cmd(&format!("hsetnx v65 a {v64}v"));
    assert_eq!(h.encoding("v65"), "hashtable");
    // HINCRBYFLOAT converts on a long field (checked in `hashTypeSet`), as Redis does.
    h.cmd(&format!("hincrbyfloat f65 {v64}f 1"));
    assert_eq!(h.encoding("f65"), "hashtable");
    h.cmd("hincrbyfloat short g 1");
    assert_eq!(h.encoding("short"), "listpack");
    // HSET checks every argument before writing, so a long argument converts even when it
    // only overwrites a field that is then deleted.
    h.cmd(&format!("hset mixed a 1 a {v64}xx"));
    h.cmd("hset mixed a 1");
    assert_eq!(h.encoding("mixed"), "hashtable");
}

#[test]
fn dirty_counts_match_redis() {
    // Deltas of `rdb_changes_since_last_save` on redis-server 7.0.15 for the same commands.
    let mut h = Harness::new(2);
    let steps: &[(&str, u64)] = &[
        ("hset h a 1 b 2", 2),
        ("hset h a 1 c 3", 2),
        ("hsetnx h a 1", 0),
        ("hdel h a b zz", 2),
        ("hincrby h c 1", 1),
        ("hincrby h c x", 0),
        ("hdel h zz", 0),
        ("hincrbyfloat h c 1.5", 1),
        ("hmset h x 1 y 2 z 3", 3),
        ("hset h", 0),
    ];
    for (line, delta) in steps {
        let before = h.shard.stats.dirty;
        h.cmd(line);
        assert_eq!(h.shard.stats.dirty - before, *delta, "{line}");
    }
}

#[test]
fn reads_count_hits_and_misses() {
    let mut h = Harness::new(2);
    h.cmd("hset h a 1");
    let (hits, misses) = (h.shard.stats.hits, h.shard.stats.misses);
    for line in [
        "hget h a",
        "hget nokey a",
        "hlen h",
        "hgetall nokey",
        "hrandfield h",
    ] {
        h.cmd(line);
    }
    assert_eq!(h.shard.stats.hits - hits, 3);
    assert_eq!(h.shard.stats.misses - misses, 2);
    // Writes look keys up without counting, as Redis's lookupKeyWrite.
    h.cmd("hdel nokey a");
    h.cmd("hset h b 2");
    assert_eq!(h.shard.stats.hits - hits, 3);
    assert_eq!(h.shard.stats.misses - misses, 2);
}

#[test]
fn emptied_hashes_are_deleted_and_failed_writes_create_nothing() {
    let mut h = Harness::new(2);
    h.fill("big", 300);
    let mut args = vec![Bytes::from("hdel"), Bytes::from("big")];
    args.extend((0..300).map(|i| Bytes::from(format!("f{i}"))));
    args.push(Bytes::from("f0"));
    assert_eq!(h.run(&args), b":300\r\n");
    assert!(h.hash("big").is_none());
    assert_eq!(h.cmd("exists big"), b":0\r\n");
    for line in [
        "hincrby n f x",
        "hincrbyfloat n f inf",
        "hincrbyfloat n f nan",
        "hrandfield n 1 bad",
    ] {
        h.cmd(line);
        assert!(h.hash("n").is_none(), "{line}");
    }
    assert_eq!(h.shard.dbs[0].keys, 0);
}

#[test]
fn whole_hashtable_reads_return_every_field_once() {
    for proto in [2, 3] {
        let mut h = Harness::new(proto);
        h.fill("big", 1000);
        let want = filled(1000);
        let all = bulks(&resp(&h.cmd("hgetall big")));
        assert_eq!(all.len(), 2000);
        assert_eq!(pairs(&all), want);
        let keys = bulks(&resp(&h.cmd("hkeys big")));
        let vals = bulks(&resp(&h.cmd("hvals big")));
        assert_eq!(keys.len(), 1000);
        // HKEYS and HVALS walk the same order as HGETALL.
        let zipped: Vec<Vec<u8>> = keys
            .iter()
            .zip(&vals)
            .flat_map(|(k, v)| [k.clone(), v.clone()])
            .collect();
        assert_eq!(zipped, all);
        if proto == 3 {
            assert!(h.cmd("hgetall big").starts_with(b"%1000\r\n"));
        }
    }
}

/// Runs a full HSCAN with `options`, returning the pairs and the number of calls.
fn full_scan(h: &mut Harness, key: &str, options: &str) -> (Vec<Vec<u8>>, usize) {
    let mut cursor = "0".to_string();
    let mut found = Vec::new();
    let mut calls = 0;
    loop {
        let reply = resp(&h.cmd(&format!("hscan {key} {cursor} {options}")));
        let Resp::Array(parts) = reply else {
            panic!("not an array");
        };
        let Resp::Bulk(next) = &parts[0] else {
            panic!("cursor is not a bulk string");
        };
        found.extend(bulks(&parts[1]));
        calls += 1;
        cursor = String::from_utf8(next.clone()).expect("decimal cursor");
        assert!(cursor.parse::<u64>().is_ok(), "cursor {cursor}");
        if cursor == "0" {
            return (found, calls);
        }
        assert!(calls < 10_000, "scan does not end");
    }
}

#[test]
fn hscan_walks_a_hashtable() {
    let mut h = Harness::new(2);
    h.fill("big", 1000);
    let (found, calls) = full_scan(&mut h, "big", "");
    assert_eq!(found.len(), 2000, "every field exactly once");
    assert_eq!(pairs(&found), filled(1000));
    assert!(calls >= 100, "COUNT 10 by default: {calls} calls");
    let (found, calls) = full_scan(&mut h, "big", "COUNT 300");
    assert_eq!(pairs(&found), filled(1000));
    assert!(calls <= 10, "{calls} calls");
    let (found, _) = full_scan(&mut h, "big", "MATCH f1?? COUNT 50");
    let want: BTreeMap<_, _> = filled(1000)
        .into_iter()
        .filter(|(k, _)| k.len() == 4 && k.starts_with(b"f1"))
        .collect();
    assert_eq!(pairs(&found), want);
    // Any cursor is accepted; the scan just starts from that point of the hash space.
    assert!(matches!(
        resp(&h.cmd("hscan big 18446744073709551615")),
        Resp::Array(_)
    ));
}

#[test]
fn hscan_survives_rehashing_between_calls() {
    // Fields f0..f499 stay; others come and go between calls, splitting and merging the
    // table's segments. Every stable field must come back.
    let mut h = Harness::new(2);
    h.fill("big", 500);
    let mut cursor = "0".to_string();
    let mut seen: BTreeMap<Vec<u8>, usize> = BTreeMap::new();
    let mut round = 0;
    loop {
        let reply = resp(&h.cmd(&format!("hscan big {cursor} COUNT 7")));
        let Resp::Array(parts) = reply else {
            panic!("not an array");
        };
        let Resp::Bulk(next) = &parts[0] else {
            panic!("no cursor");
        };
        for pair in bulks(&parts[1]).chunks(2) {
            *seen.entry(pair[0].clone()).or_default() += 1;
        }
        cursor = String::from_utf8(next.clone()).expect("cursor");
        if cursor == "0" {
            break;
        }
        round += 1;
        for i in 0..40 {
            h.cmd(&format!("hset big x{round}_{i} v"));
        }
        if round > 2 {
            for i in 0..40 {
                h.cmd(&format!("hdel big x{}_{i}", round - 2));
            }
        }
    }
    for i in 0..500 {
        assert_eq!(seen.get(format!("f{i}").as_bytes()), Some(&1), "f{i}");
    }
}

fn chi_square(counts: &BTreeMap<Vec<u8>, usize>, cells: usize) -> f64 {
    let total: usize = counts.values().sum();
    let expected = total as f64 / cells as f64;
    let seen: f64 = counts
        .values()
        .map(|&c| (c as f64 - expected).powi(2) / expected)
        .sum();
    // Cells never drawn count fully.
    seen + (cells - counts.len()) as f64 * expected
}

#[test]
fn hrandfield_cases_follow_redis() {
    seed_random(0x5eed);
    for (key, n) in [("small", 10), ("big", 300)] {
        let mut h = Harness::new(2);
        h.fill(key, n);
        let want = filled(n);
        let draws = |h: &mut Harness, line: &str| bulks(&resp(&h.cmd(line)));
        // Case 1: negative counts repeat; every element belongs; WITHVALUES pairs are right.
        let got = draws(&mut h, &format!("hrandfield {key} -{}", 20 * n));
        assert_eq!(got.len(), 20 * n);
        let mut counts = BTreeMap::new();
        for f in &got {
            assert!(want.contains_key(f));
            *counts.entry(f.clone()).or_insert(0) += 1;
        }
        // Degrees of freedom n-1; these bounds are far in the tail (p < 1e-4).
        let bound = if n == 10 { 40.0 } else { 420.0 };
        assert!(chi_square(&counts, n) < bound, "{key}");
        let got = draws(&mut h, &format!("hrandfield {key} -7 withvalues"));
        assert_eq!(got.len(), 14);
        for p in got.chunks(2) {
            assert_eq!(want.get(&p[0]), Some(&p[1]));
        }
        // Case 2: at least the size returns everything once.
        let got = draws(&mut h, &format!("hrandfield {key} {} withvalues", n + 5));
        assert_eq!(pairs(&got), want);
        assert_eq!(got.len(), 2 * n);
        // Cases 3 and 4: distinct fields, the exact count, all of them reachable.
        for size in [n * 8 / 10, n / 5] {
            let mut union = BTreeSet::new();
            for _ in 0..60 {
                let got = draws(&mut h, &format!("hrandfield {key} {size} withvalues"));
                assert_eq!(got.len(), 2 * size);
                let unique = pairs(&got);
                assert_eq!(unique.len(), size, "distinct");
                for (f, v) in unique {
                    assert_eq!(want.get(&f), Some(&v));
                    union.insert(f);
                }
            }
            assert_eq!(union.len(), n, "{key} {size}: every field comes up");
        }
    }
}

#[test]
fn hrandfield_resp3_shapes() {
    let mut h = Harness::new(3);
    h.fill("big", 300);
    for line in [
        "hrandfield big 5 withvalues",
        "hrandfield big -5 withvalues",
    ] {
        let Resp::Array(items) = resp(&h.cmd(line)) else {
            panic!("array");
        };
        assert_eq!(items.len(), 5);
        for item in items {
            assert_eq!(bulks(&item).len(), 2, "{line}: pairs are 2-element arrays");
        }
    }
    assert_eq!(bulks(&resp(&h.cmd("hrandfield big 5"))).len(), 5);
    assert!(matches!(resp(&h.cmd("hrandfield big")), Resp::Bulk(_)));
}

#[test]
fn hrandfield_bounds_repeats() {
    let mut h = Harness::new(2);
    h.cmd("hset h a 1");
    let limit = RANDOM_REPEATS_MAX as i64;
    assert_eq!(
        h.cmd(&format!("hrandfield h -{}", limit + 1)),
        b"-ERR value is out of range\r\n"
    );
    assert_eq!(
        h.cmd("hrandfield h -9223372036854775807"),
        b"-ERR value is out of range\r\n"
    );
    // Positive counts are bounded by the hash itself.
    assert_eq!(
        h.cmd("hrandfield h 9223372036854775807"),
        b"*1\r\n$1\r\na\r\n"
    );
}

#[test]
fn long_double_formatting() {
    // `%.17Lf` of the exact value, trimmed; ties to even as glibc.
    assert_eq!(format_long_double(1.5), "1.5");
    assert_eq!(format_long_double(3.0), "3");
    assert_eq!(format_long_double(-0.0), "0");
    assert_eq!(format_long_double(-1e-20), "0");
    assert_eq!(format_long_double(0.1), "0.10000000000000001");
    assert_eq!(format_long_double(1e20), "100000000000000000000");
    assert_eq!(
        format_long_double(0.000003814697265625),
        "0.00000381469726562"
    );
    assert_eq!(
        format_long_double(0.000011444091796875),
        "0.00001144409179688"
    );
    assert_eq!(format_long_double(-2.5), "-2.5");
    assert_eq!(format_long_double(5e-324), "0");
    assert_eq!(format_long_double(f64::INFINITY), "inf");
    assert_eq!(format_long_double(f64::NEG_INFINITY), "-inf");
    assert_eq!(format_long_double(f64::MAX).len(), 309);
}
