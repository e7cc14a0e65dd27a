//! Tests for the HyperLogLog commands.
//!
//! Fixtures were recorded from redis-server 7.0.15 (`--save ''`, default config): the exact
//! reply bytes, and the exact HLL strings (GET) before and after each operation. Small
//! strings are spelled out in hex; 12 KiB dense ones are pinned by their SHA-1, so a match
//! proves our bytes are Redis's bytes, and those bytes then serve as Redis-written input.
//!
//! `differential_against_real_redis` (ignored; needs a server) replays random operation
//! sequences, corrupted strings included, against a live redis-server and against our
//! handlers, comparing every reply byte for byte.

use super::*;
use crate::commands::string::tests::{tokenize, Harness};
use crate::commands::{self, Kind};
use crate::storage::hll::DENSE_BYTES;
use crate::storage::{Entry, ShardData};
use bytes::Bytes;

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex fixture"))
        .collect()
}

fn sha1_hex(b: &[u8]) -> String {
    sha1_smol::Sha1::from(b).digest().to_string()
}

fn b(s: impl AsRef<[u8]>) -> Bytes {
    Bytes::copy_from_slice(s.as_ref())
}

/// `prefix0 .. prefix{n-1}`, the element lists the fixtures were recorded with.
fn elements(prefix: &str, n: usize) -> Vec<Bytes> {
    (0..n).map(|i| b(format!("{prefix}{i}"))).collect()
}

fn bulk_reply(data: &[u8]) -> Vec<u8> {
    let mut v = format!("${}\r\n", data.len()).into_bytes();
    v.extend_from_slice(data);
    v.extend_from_slice(b"\r\n");
    v
}

trait HarnessExt {
    fn argv(&mut self, head: &str, rest: &[Bytes]) -> Vec<u8>;
    fn bytes_of(&mut self, key: &str) -> Vec<u8>;
    fn set_raw(&mut self, key: &str, value: &[u8]);
}

impl HarnessExt for Harness {
    /// `head` tokenized, then `rest` as further arguments.
    fn argv(&mut self, head: &str, rest: &[Bytes]) -> Vec<u8> {
        let mut args = tokenize(head);
        args.extend_from_slice(rest);
        self.run(&args)
    }

    fn bytes_of(&mut self, key: &str) -> Vec<u8> {
        match self.entry(key.as_bytes()).map(|e| e.value) {
            Some(Value::Str(s)) => s.to_vec(),
            other => panic!("{key} holds {other:?}"),
        }
    }

    fn set_raw(&mut self, key: &str, value: &[u8]) {
        assert_eq!(self.run(&[b("set"), b(key), b(value)]), b"+OK\r\n");
    }
}

fn encoding_of_entry(e: Option<Entry>) -> &'static str {
    e.map_or("none", |e| e.value.encoding())
}

// ---------------------------------------------------------------------------------------
// Recorded from Redis: sparse.

/// `PFADD s a b c` in Redis, before and after the PFCOUNT that caches 3.
const SPARSE_ABC: &str = "48594c4c01000000000000000000008060f38050b1844bfb80425a";
const SPARSE_ABC_COUNTED: &str = "48594c4c01000000030000000000000060f38050b1844bfb80425a";

#[test]
fn pfadd_and_pfcount_match_redis_bytes() {
    let mut h = Harness::new(2);
    h.script(&[
        ("pfcount s", b":0\r\n"),
        ("pfadd s a b c", b":1\r\n"),
        ("pfadd s a b c", b":0\r\n"),
        ("pfdebug encoding s", b"+sparse\r\n"),
        (
            "pfdebug decode s",
            b"$44\r\nZ:8436 v:1,1 Z:4274 v:2,1 Z:3068 v:1,1 Z:603\r\n",
        ),
    ]);
    assert_eq!(h.bytes_of("s"), hex(SPARSE_ABC));
    assert_eq!(encoding_of_entry(h.entry(b"s")), "raw");
    let dirty = h.dirty();
    assert_eq!(h.cmd("pfcount s"), b":3\r\n");
    assert_eq!(h.bytes_of("s"), hex(SPARSE_ABC_COUNTED));
    assert_eq!(h.dirty(), dirty + 1, "recomputing the cache is a write");
    assert_eq!(h.cmd("pfcount s"), b":3\r\n");
    assert_eq!(h.dirty(), dirty + 1, "a valid cache is only read");
}

/// `PFADD s200 e0..e199` in Redis: a 513-byte sparse HLL; PFCOUNT then caches 200.
const SPARSE_200: &str = "48594c4c010000000000000000000080368421801980409f8408a40e88409084406c9c01900188128838844094804\
11c8817884055800080407a80411d8812804075800d842a8040638440768c404684414880098040d5800980409480407e9040738040628440a28040\
8384405d84148040cb8407840d8040f080405e80068427844081803c844047840780404e80408f84039404844043840c842684406e80407380404084\
409d84198019802a8441028c088441298010801c884060801080404b8c4052881b8040b080406e8040bc802b8c40f58040618c1a840380407e8040\
8080404580088440fd80405a80406684409f8040468c108c018401841e8811802384407d8440de84406280308812844065840784198040de844046\
84408b8814802988008402800a8840578041a79011842e844070801f840180189440f98440848c168421813c881d801380368410804089844044804\
147800380228040b88440bb88404684168040c684404980048440e680404380388c405c80405584409980268005800380405480409e88404c882e88\
40448040b080198408841f880380405b841b803f804044804055800d88128440d380405988408b800290407e800784407b801d841d8040af841884\
0f844045803384404f80288440a78440768040578419844048800e9022840a80406a840d8039801380409a8828804046844044";

#[test]
fn sparse_with_many_registers_matches_redis() {
    let mut h = Harness::new(2);
    assert_eq!(h.argv("pfadd s200", &elements("e", 200)), b":1\r\n");
    let expected = hex(SPARSE_200);
    assert_eq!(expected.len(), 513);
    assert_eq!(h.bytes_of("s200"), expected);
    assert_eq!(h.cmd("pfcount s200"), b":200\r\n");
    assert_eq!(h.bytes_of("s200")[8..16], hex("c800000000000000"));
    // Redis's bytes, given back to us, count the same.
    h.set_raw("copy", &expected);
    assert_eq!(h.cmd("pfcount copy"), b":200\r\n");
}

#[test]
fn sparse_promotes_to_dense_where_redis_does() {
    // Adding p0, p1, ... one at a time, Redis's HLL reached 3000 bytes after p1669 and
    // turned dense on p1670; PFCOUNT then said 1678.
    let mut h = Harness::new(2);
    for i in 0..1670 {
        h.run(&[b("pfadd"), b("pr"), b(format!("p{i}"))]);
    }
    assert_eq!(h.cmd("pfdebug encoding pr"), b"+sparse\r\n");
    let before = h.bytes_of("pr");
    assert_eq!(before.len(), 3000);
    assert_eq!(
        sha1_hex(&before),
        "7a89234681c9ffade520d41d8b5c25d442778257"
    );
    assert_eq!(h.cmd("pfadd pr p1670"), b":1\r\n");
    assert_eq!(h.cmd("pfdebug encoding pr"), b"+dense\r\n");
    assert_eq!(
        sha1_hex(&h.bytes_of("pr")),
        "046d5cf56d2834f5037bcb3e089d00322ceffa98"
    );
    assert_eq!(h.cmd("pfcount pr"), b":1678\r\n");
}

#[test]
fn sparse_limit_is_the_configured_one() {
    // With hll-sparse-max-bytes 100, Redis turned dense on q28, from these bytes. The
    // storage layer takes the limit as an argument, so this test leaves the global alone.
    let before = hex(
        "48594c4c01000000000000000000008041de8c4c178040ef8841688443158440dc8041d18040e480430f88\
         40d88440718041708040c88440728811884076883b8447fa80429d8040fe8c414f8040908040c88045a4884\
         36884429888427e80437a804139",
    );
    let mut s = hll::new_sparse();
    for i in 0..28 {
        hll::add(&mut s, format!("q{i}").as_bytes(), 100).expect("valid");
    }
    hll::invalidate_cache(&mut s);
    assert_eq!(s, before);
    assert_eq!(hll::add(&mut s, b"q28", 100), Ok(true));
    assert_eq!(hll::encoding_of(&s), Some(Encoding::Dense));
    assert_eq!(sha1_hex(&s), "c103f28f295f3017fd07c1dc6e5cb67f225c0a32");
}

/// SHA-1 of Redis's dense HLL after `PFADD d e0..e4999`, after the PFCOUNT that caches 4968,
/// and after `PFADD d f0..f99`.
const DENSE_5000_SHA1: &str = "21f2bcbf124c89c42b46e149b5d2218e30c42fd1";
const DENSE_5000_COUNTED_SHA1: &str = "96a367e68466cf15738f8f4dbb54a5c87e55a814";
const DENSE_5100_SHA1: &str = "0178e435b0fb6e1c2c5c5d85193db241df8a07f0";

fn dense_5000(h: &mut Harness, key: &str) -> Vec<u8> {
    assert_eq!(
        h.argv(&format!("pfadd {key}"), &elements("e", 5000)),
        b":1\r\n"
    );
    h.bytes_of(key)
}

#[test]
fn dense_matches_redis_bytes() {
    let mut h = Harness::new(2);
    let d = dense_5000(&mut h, "d");
    assert_eq!(d.len(), DENSE_BYTES);
    assert_eq!(h.cmd("pfdebug encoding d"), b"+dense\r\n");
    assert_eq!(sha1_hex(&d), DENSE_5000_SHA1);
    assert_eq!(d[8..16], hex("0000000000000080"));
    assert_eq!(h.cmd("pfcount d"), b":4968\r\n");
    assert_eq!(sha1_hex(&h.bytes_of("d")), DENSE_5000_COUNTED_SHA1);
    assert_eq!(h.argv("pfadd d", &elements("f", 100)), b":1\r\n");
    assert_eq!(sha1_hex(&h.bytes_of("d")), DENSE_5100_SHA1);
    assert_eq!(h.cmd("pfcount d"), b":5067\r\n");

    // The bytes are Redis's (same SHA-1): stored by SET, as from DUMP or an RDB file, they
    // behave as in Redis.
    let mut fresh = Harness::new(2);
    fresh.set_raw("r", &d);
    assert_eq!(encoding_of_entry(fresh.entry(b"r")), "raw");
    assert_eq!(fresh.cmd("pfcount r"), b":4968\r\n");
    assert_eq!(fresh.argv("pfadd r", &elements("f", 100)), b":1\r\n");
    assert_eq!(sha1_hex(&fresh.bytes_of("r")), DENSE_5100_SHA1);
}

#[test]
fn dense_written_by_redis_todense() {
    // `PFADD t a b c` then `PFDEBUG TODENSE t` in Redis: a 12304-byte string whose only
    // non-zero bytes are these.
    let mut t = vec![0u8; DENSE_BYTES];
    for (at, byte) in [
        (0, 72),
        (1, 89),
        (2, 76),
        (3, 76),
        (15, 128),
        (6343, 1),
        (9549, 8),
        (11851, 1),
    ] {
        t[at] = byte;
    }
    let mut h = Harness::new(2);
    h.cmd("pfadd t a b c");
    assert_eq!(h.cmd("pfdebug todense t"), b":1\r\n");
    assert_eq!(h.bytes_of("t"), t);
    let mut fresh = Harness::new(2);
    fresh.set_raw("t", &t);
    fresh.script(&[
        ("pfcount t", b":3\r\n"),
        ("pfdebug encoding t", b"+dense\r\n"),
        ("pfdebug todense t", b":0\r\n"),
        ("pfadd t a b c", b":0\r\n"),
    ]);
    let registers = fresh.cmd("pfdebug getreg t");
    assert!(registers.starts_with(b"*16384\r\n:0\r\n"));
    assert_eq!(registers.len(), 8 + 16384 * 4);
}

/// `PFADD m1 a b c`, `PFADD m2 b c d`, `PFMERGE m3 m1 m2` in Redis (and `PFMERGE m1 m2`
/// leaves m1 the same).
const MERGED_ABCD: &str = "48594c4c0100000000000000000000805c7b8044768050b1844bfb80425a";

#[test]
fn pfmerge_matches_redis_bytes() {
    let mut h = Harness::new(2);
    h.cmd("pfadd m1 a b c");
    h.cmd("pfadd m2 b c d");
    let dirty = h.dirty();
    assert_eq!(h.cmd("pfmerge m3 m1 m2"), b"+OK\r\n");
    assert_eq!(h.dirty(), dirty + 1);
    assert_eq!(h.bytes_of("m3"), hex(MERGED_ABCD));
    assert_eq!(h.cmd("pfcount m3"), b":4\r\n");
    assert_eq!(h.cmd("pfmerge m1 m2"), b"+OK\r\n");
    assert_eq!(h.bytes_of("m1"), hex(MERGED_ABCD));

    // A dense source makes the destination dense (m1 back to a b c; d: e0..e4999, counted,
    // then f0..f99).
    h.cmd("del m1");
    h.cmd("pfadd m1 a b c");
    dense_5000(&mut h, "d");
    h.cmd("pfcount d");
    h.argv("pfadd d", &elements("f", 100));
    assert_eq!(h.cmd("pfmerge m4 m1 d"), b"+OK\r\n");
    assert_eq!(h.cmd("pfdebug encoding m4"), b"+dense\r\n");
    assert_eq!(
        sha1_hex(&h.bytes_of("m4")),
        "b928bdb1e6612df65f5e187ab1bdb312801f0ab4"
    );
    assert_eq!(h.cmd("pfcount m4"), b":5071\r\n");
    assert_eq!(h.cmd("pfcount m2 d nokey"), b":5071\r\n");

    // Two sparse sources whose union is still small enough stays sparse, byte for byte.
    h.argv("pfadd ms1", &elements("x", 300));
    h.argv("pfadd ms2", &elements("y", 300));
    assert_eq!(h.cmd("pfmerge m6 ms1 ms2"), b"+OK\r\n");
    let m6 = h.bytes_of("m6");
    assert_eq!(m6.len(), 1221);
    assert_eq!(sha1_hex(&m6), "39c72371d7738f85d14c8139c35d1128f4882bb3");
    assert_eq!(h.cmd("pfcount m6"), b":603\r\n");
    assert_eq!(h.cmd("pfcount ms1 ms2"), b":603\r\n");
}

#[test]
fn errors_match_redis() {
    let mut h = Harness::new(2);
    h.script(&[
        ("set str hello", b"+OK\r\n"),
        (
            "pfadd str a",
            b"-WRONGTYPE Key is not a valid HyperLogLog string value.\r\n",
        ),
        (
            "pfcount str",
            b"-WRONGTYPE Key is not a valid HyperLogLog string value.\r\n",
        ),
        (
            "pfcount str nokey",
            b"-WRONGTYPE Key is not a valid HyperLogLog string value.\r\n",
        ),
        (
            "pfmerge x str",
            b"-WRONGTYPE Key is not a valid HyperLogLog string value.\r\n",
        ),
        (
            "pfmerge str",
            b"-WRONGTYPE Key is not a valid HyperLogLog string value.\r\n",
        ),
        (
            "pfdebug encoding str",
            b"-WRONGTYPE Key is not a valid HyperLogLog string value.\r\n",
        ),
        ("set int 12345678901234567", b"+OK\r\n"),
        (
            "pfcount int",
            b"-WRONGTYPE Key is not a valid HyperLogLog string value.\r\n",
        ),
        (
            "pfdebug encoding nokey",
            b"-ERR The specified key does not exist\r\n",
        ),
        (
            "pfdebug bogus nokey",
            b"-ERR The specified key does not exist\r\n",
        ),
        ("pfadd h", b":1\r\n"),
        (
            "pfdebug bogus\\x00x h",
            b"-ERR Unknown PFDEBUG subcommand 'bogus'\r\n",
        ),
        (
            "pfdebug bogus\\x0d\\x0ax h",
            b"-ERR Unknown PFDEBUG subcommand 'bogus  x'\r\n",
        ),
        ("pfdebug DECODE h", b"$7\r\nZ:16384\r\n"),
        ("pfdebug todense h", b":1\r\n"),
        ("pfdebug todense h", b":0\r\n"),
        ("pfdebug decode h", b"-ERR HLL encoding is not sparse\r\n"),
        ("pfdebug encoding h", b"+dense\r\n"),
        // Bytes appended to a sparse HLL: found when the opcodes are walked.
        ("pfadd c a b c", b":1\r\n"),
        ("append c hello", b":32\r\n"),
        (
            "pfcount c",
            b"-INVALIDOBJ Corrupted HLL object detected\r\n",
        ),
        ("pfadd c zz", b":1\r\n"),
        (
            "pfcount c c",
            b"-INVALIDOBJ Corrupted HLL object detected\r\n",
        ),
        (
            "pfmerge c2 c",
            b"-INVALIDOBJ Corrupted HLL object detected\r\n",
        ),
        (
            "pfdebug getreg c",
            b"-INVALIDOBJ Corrupted HLL object detected\r\n",
        ),
        (
            "pfdebug todense c",
            b"-INVALIDOBJ Corrupted HLL object detected\r\n",
        ),
        (
            "pfdebug decode c",
            b"$81\r\nZ:2778 v:1,1 Z:5657 v:1,1 Z:4274 v:2,1 Z:3068 v:1,1 Z:603 Z:10342 Z:11373 \
              Z:12033\r\n",
        ),
        // Broken magic, unknown encoding, dense of the wrong length, too short.
        ("pfadd w a", b":1\r\n"),
        ("setrange w 0 0123", b":21\r\n"),
        (
            "pfcount w",
            b"-WRONGTYPE Key is not a valid HyperLogLog string value.\r\n",
        ),
        ("pfadd v a", b":1\r\n"),
        ("setrange v 4 x", b":21\r\n"),
        (
            "pfcount v",
            b"-WRONGTYPE Key is not a valid HyperLogLog string value.\r\n",
        ),
        ("pfadd u a", b":1\r\n"),
        ("pfdebug todense u", b":1\r\n"),
        ("setrange u 4 \\x01", b":12304\r\n"),
        (
            "pfcount u",
            b"-INVALIDOBJ Corrupted HLL object detected\r\n",
        ),
        ("pfadd u2 a", b":1\r\n"),
        ("setrange u2 4 \\x00", b":21\r\n"),
        (
            "pfcount u2",
            b"-WRONGTYPE Key is not a valid HyperLogLog string value.\r\n",
        ),
        ("set short HYLL\\x01", b"+OK\r\n"),
        (
            "pfcount short",
            b"-WRONGTYPE Key is not a valid HyperLogLog string value.\r\n",
        ),
        (
            "pfselftest x",
            b"-ERR wrong number of arguments for 'pfselftest' command\r\n",
        ),
        (
            "pfdebug x",
            b"-ERR wrong number of arguments for 'pfdebug' command\r\n",
        ),
        (
            "pfadd",
            b"-ERR wrong number of arguments for 'pfadd' command\r\n",
        ),
        (
            "pfcount",
            b"-ERR wrong number of arguments for 'pfcount' command\r\n",
        ),
        (
            "pfmerge",
            b"-ERR wrong number of arguments for 'pfmerge' command\r\n",
        ),
    ]);
    // A value of another type is the standard WRONGTYPE.
    let mut ks = Keyspace::one(&mut h.shard, 1, 0, 0);
    ks.set(b"l", Value::List(Default::default()));
    h.script(&[
        (
            "pfadd l a",
            b"-WRONGTYPE Operation against a key holding the wrong kind of value\r\n",
        ),
        (
            "pfcount l str",
            b"-WRONGTYPE Operation against a key holding the wrong kind of value\r\n",
        ),
        (
            "pfmerge l",
            b"-WRONGTYPE Operation against a key holding the wrong kind of value\r\n",
        ),
        (
            "pfdebug getreg l",
            b"-WRONGTYPE Operation against a key holding the wrong kind of value\r\n",
        ),
    ]);
}

#[test]
fn estimate_overflow_is_redis_long_long() {
    // Every register 63: Ertl's sum is 0, the estimate infinite; Redis's llroundl gives
    // LLONG_MIN, replied as -9223372036854775808 and cached with the stale bit set.
    let mut all_63 = b"HYLL".to_vec();
    all_63.extend_from_slice(&hex("000000000000000000000080"));
    all_63.resize(DENSE_BYTES, 0xff);
    let mut h = Harness::new(2);
    h.set_raw("all63", &all_63);
    assert_eq!(h.cmd("pfcount all63"), b":-9223372036854775808\r\n");
    assert_eq!(h.bytes_of("all63")[8..16], hex("0000000000000080"));
    assert_eq!(h.cmd("pfcount all63"), b":-9223372036854775808\r\n");
    let mut zero = all_63.clone();
    zero[16..].fill(0);
    h.set_raw("zero", &zero);
    assert_eq!(h.cmd("pfcount zero"), b":0\r\n");
}

#[test]
fn cache_and_encoding_follow_redis() {
    let mut h = Harness::new(2);
    // Redis's tests: the cache's stale bit is byte 15.
    h.cmd("pfadd hll a b c");
    h.cmd("pfcount hll");
    assert_eq!(h.bytes_of("hll")[15], 0x00);
    h.cmd("pfadd hll a b c");
    assert_eq!(h.bytes_of("hll")[15], 0x00);
    h.cmd("pfadd hll 1 2 3");
    assert_eq!(h.bytes_of("hll")[15], 0x80);
    // An HLL stored by SET is embstr; PFCOUNT makes it raw even when only reading the cache.
    h.set_raw("e", &hex(SPARSE_ABC_COUNTED));
    assert_eq!(encoding_of_entry(h.entry(b"e")), "embstr");
    let dirty = h.dirty();
    assert_eq!(h.cmd("pfcount e"), b":3\r\n");
    assert_eq!(encoding_of_entry(h.entry(b"e")), "raw");
    assert_eq!(h.dirty(), dirty);
    // A cached value is trusted, whatever the registers say.
    let mut lying = hex(SPARSE_ABC);
    lying[8] = 42;
    lying[15] = 0;
    h.set_raw("lying", &lying);
    assert_eq!(h.cmd("pfcount lying"), b":42\r\n");
    assert_eq!(h.cmd("pfcount lying nokey"), b":3\r\n");
}

#[test]
fn dirty_counts_follow_redis() {
    let mut h = Harness::new(2);
    let d0 = h.dirty();
    h.cmd("pfadd k");
    assert_eq!(h.dirty(), d0 + 1, "a new key");
    h.cmd("pfadd k a b c");
    assert_eq!(h.dirty(), d0 + 4, "one per register changed");
    h.cmd("pfadd k a b c");
    assert_eq!(h.dirty(), d0 + 4);
    h.cmd("pfcount k k");
    assert_eq!(h.dirty(), d0 + 4, "a union writes nothing");
    h.cmd("pfdebug encoding k");
    h.cmd("pfdebug decode k");
    assert_eq!(h.dirty(), d0 + 4);
    h.cmd("pfdebug getreg k");
    assert_eq!(h.dirty(), d0 + 5, "GETREG turned it dense");
    h.cmd("pfdebug getreg k");
    h.cmd("pfdebug todense k");
    assert_eq!(h.dirty(), d0 + 5);
    h.cmd("pfmerge k");
    assert_eq!(h.dirty(), d0 + 6);
}

/// Two shards, keys on each: PFMERGE and PFCOUNT over a `Keyspace` spanning both.
#[test]
fn pfmerge_and_pfcount_across_shards() {
    use crate::storage::{key_slot, slot_owner};
    let on = |shard: usize| {
        (0..)
            .map(|i| format!("k{i}"))
            .filter(move |k| slot_owner(key_slot(k.as_bytes()), 2) == shard)
    };
    let mut zero = on(0);
    let mut one = on(1);
    let (src_a, dest) = (zero.next().expect("key"), zero.next().expect("key"));
    let src_b = one.next().expect("key");
    let mut shards = [ShardData::new(0, 16), ShardData::new(1, 16)];
    let run = |shards: &mut [ShardData; 2], line: &str| {
        let args = tokenize(line);
        let cmd = commands::lookup(&args[0]).expect("command");
        let Kind::Data(handler) = cmd.kind else {
            panic!("not a data command")
        };
        let [s0, s1] = shards;
        let mut ks = Keyspace::many(vec![s1, s0], 2, 0, 0);
        let mut buf = Vec::new();
        handler(&mut ks, &args, &mut Out::new(&mut buf, 2));
        buf
    };
    run(&mut shards, &format!("pfadd {src_a} a b c"));
    run(&mut shards, &format!("pfadd {src_b} b c d"));
    assert_eq!(shards[0].dbs[0].keys, 1);
    assert_eq!(shards[1].dbs[0].keys, 1);
    assert_eq!(
        run(&mut shards, &format!("pfcount {src_a} {src_b}")),
        b":4\r\n"
    );
    assert_eq!(
        run(&mut shards, &format!("pfmerge {dest} {src_a} {src_b}")),
        b"+OK\r\n"
    );
    let mut ks = Keyspace::one(&mut shards[0], 2, 0, 0);
    match ks.peek(dest.as_bytes()).map(|e| &e.value) {
        Some(Value::Str(s)) => assert_eq!(s.to_vec(), hex(MERGED_ABCD)),
        other => panic!("{other:?}"),
    }
    assert_eq!(run(&mut shards, &format!("pfcount {dest}")), b":4\r\n");
    // The dense side of a merge may live on the other shard too.
    let big: Vec<Bytes> = elements("e", 5000);
    let mut args = vec![b("pfadd"), b(&src_b)];
    args.extend(big);
    let mut ks = Keyspace::one(&mut shards[1], 2, 0, 0);
    let mut buf = Vec::new();
    pfadd(&mut ks, &args, &mut Out::new(&mut buf, 2));
    assert_eq!(
        run(&mut shards, &format!("pfmerge {dest} {src_b}")),
        b"+OK\r\n"
    );
    assert_eq!(
        run(&mut shards, &format!("pfdebug encoding {dest}")),
        b"+dense\r\n"
    );
}

#[test]
fn self_test_passes() {
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut random = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state >> 33
    };
    let size = hll::SelfTestSize {
        register_cycles: 3,
        elements_max: 100_000,
    };
    assert_eq!(hll::self_test(&size, &mut random, 3000), Ok(()));
}

mod corrupt {
    use super::*;
    use proptest::prelude::*;

    /// An HLL-looking string: the header, then either random sparse opcodes, a random dense
    /// body, or Redis's own sparse bytes with a few bytes changed.
    fn hll_like() -> impl Strategy<Value = Vec<u8>> {
        let header = |encoding: u8, card: [u8; 8]| {
            let mut s = b"HYLL".to_vec();
            s.push(encoding);
            s.extend_from_slice(&[0, 0, 0]);
            s.extend_from_slice(&card);
            s
        };
        prop_oneof![
            (any::<[u8; 8]>(), prop::collection::vec(any::<u8>(), 0..80)).prop_map(
                move |(card, body)| {
                    let mut s = header(1, card);
                    s.extend_from_slice(&body);
                    s
                }
            ),
            (any::<[u8; 8]>(), any::<u64>()).prop_map(move |(card, seed)| {
                let mut s = header(0, card);
                let mut x = seed | 1;
                s.extend((0..DENSE_BYTES - 16).map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    x as u8
                }));
                s
            }),
            prop::collection::vec((16usize..513, any::<u8>()), 1..4).prop_map(|edits| {
                let mut s = hex(SPARSE_200);
                for (at, byte) in edits {
                    s[at] = byte;
                }
                s
            }),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]

        /// Every command on corrupted HLLs replies something well-formed and never panics.
        #[test]
        fn commands_on_corrupt_hlls_never_panic(
            a in hll_like(),
            b_value in hll_like(),
            adds in prop::collection::vec(0u32..100_000, 0..30),
        ) {
            let mut h = Harness::new(2);
            h.set_raw("a", &a);
            h.set_raw("b", &b_value);
            let elements: Vec<Bytes> = adds.iter().map(|i| b(i.to_string())).collect();
            let mut replies = vec![
                h.cmd("pfcount a"),
                h.cmd("pfcount a b"),
                h.argv("pfadd a", &elements),
                h.cmd("pfcount a"),
                h.cmd("pfmerge a b"),
                h.cmd("pfmerge c a b"),
                h.cmd("pfcount c"),
            ];
            for sub in ["decode", "encoding", "getreg", "todense"] {
                replies.push(h.cmd(&format!("pfdebug {sub} b")));
            }
            for reply in replies {
                prop_assert!(matches!(reply.first(), Some(b':' | b'+' | b'-' | b'$' | b'*')));
                prop_assert!(reply.ends_with(b"\r\n"));
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// Differential testing against a live redis-server.

/// A minimal RESP client returning each reply's exact bytes.
struct Live {
    reader: std::io::BufReader<std::net::TcpStream>,
    writer: std::net::TcpStream,
}

impl Live {
    fn connect(port: u16) -> Live {
        let stream = std::net::TcpStream::connect(("127.0.0.1", port)).expect("redis-server");
        Live {
            reader: std::io::BufReader::new(stream.try_clone().expect("clone")),
            writer: stream,
        }
    }

    fn call(&mut self, args: &[Bytes]) -> Vec<u8> {
        use std::io::Write;
        let mut req = format!("*{}\r\n", args.len()).into_bytes();
        for a in args {
            req.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
            req.extend_from_slice(a);
            req.extend_from_slice(b"\r\n");
        }
        self.writer.write_all(&req).expect("write");
        let mut reply = Vec::new();
        self.read_reply(&mut reply);
        reply
    }

    fn read_reply(&mut self, reply: &mut Vec<u8>) {
        use std::io::{BufRead, Read};
        let start = reply.len();
        self.reader.read_until(b'\n', reply).expect("read");
        let line = String::from_utf8_lossy(&reply[start + 1..reply.len() - 2]).into_owned();
        match reply[start] {
            b'$' => {
                let n: i64 = line.parse().expect("bulk length");
                if n >= 0 {
                    let mut data = vec![0u8; n as usize + 2];
                    self.reader.read_exact(&mut data).expect("bulk");
                    reply.extend_from_slice(&data);
                }
            }
            b'*' => {
                let n: i64 = line.parse().expect("array length");
                for _ in 0..n.max(0) {
                    self.read_reply(reply);
                }
            }
            _ => {}
        }
    }
}

/// xorshift64*, seeded and printed so a failure can be replayed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// A sparse string of random opcodes: usually covering exactly 16384 registers, in
/// encodings Redis itself would not write (short XZEROs, unfused VALs, a cut XZERO).
fn crafted_sparse(rng: &mut Rng) -> Vec<u8> {
    let mut s = hll::new_sparse();
    s.truncate(16);
    let mut left = 16384usize;
    while left > 0 {
        let run;
        match rng.below(4) {
            0 => {
                run = (1 + rng.below(64)).min(left);
                s.push((run - 1) as u8);
            }
            1 => {
                let longest = if rng.below(2) == 0 { 300 } else { 16384 };
                run = (1 + rng.below(longest)).min(left);
                s.push(0x40 | ((run - 1) >> 8) as u8);
                s.push(((run - 1) & 0xff) as u8);
            }
            _ => {
                run = (1 + rng.below(4)).min(left);
                s.push(0x80 | ((rng.below(32) as u8) << 2) | (run - 1) as u8);
            }
        }
        left -= run;
    }
    match rng.below(10) {
        0 => {
            s.pop();
        }
        1 => s.push(rng.next() as u8),
        _ => {}
    }
    s
}

/// Whether a sparse string's last opcode is an XZERO missing its second byte. Redis reads
/// the byte past its string there: the terminating NUL at first, but its own update of such
/// an opcode writes past the new end, and later reads see that byte. We always read 0, so
/// after such an update the two may differ (a documented difference).
fn ends_in_cut_xzero(s: &[u8]) -> bool {
    if hll::encoding_of(s) != Some(hll::Encoding::Sparse) {
        return false;
    }
    let mut p = 16;
    while p < s.len() {
        let xzero = s[p] & 0xc0 == 0x40;
        if xzero && p + 1 == s.len() {
            return true;
        }
        p += if xzero { 2 } else { 1 };
    }
    false
}

/// One random command over keys `h0..h3` (the caller sends it to both servers).
fn random_command(rng: &mut Rng, h: &mut Harness) -> Vec<Bytes> {
    let key = |rng: &mut Rng| b(format!("h{}", rng.below(4)));
    let element = |rng: &mut Rng| b(format!("e{}", rng.below(30_000)));
    match rng.below(100) {
        0..=34 => {
            let n = match rng.below(20) {
                0 => 500 + rng.below(3000),
                1 => 0,
                _ => rng.below(40),
            };
            let mut args = vec![b("pfadd"), key(rng)];
            args.extend((0..n).map(|_| element(rng)));
            args
        }
        35..=49 => {
            let mut args = vec![b("pfcount")];
            args.extend((0..1 + rng.below(3)).map(|_| key(rng)));
            args
        }
        50..=59 => {
            let mut args = vec![b("pfmerge")];
            args.extend((0..1 + rng.below(4)).map(|_| key(rng)));
            args
        }
        60..=69 => {
            let sub = ["getreg", "decode", "encoding", "todense", "DeCoDe", "bogus"];
            vec![b("pfdebug"), b(sub[rng.below(sub.len())]), key(rng)]
        }
        70..=77 => vec![b("get"), key(rng)],
        78..=83 => {
            // Corrupt the current string in some way.
            let k = key(rng);
            let mut v = match h.entry(&k).map(|e| e.value) {
                Some(Value::Str(s)) => s.to_vec(),
                _ => hll::new_sparse(),
            };
            for _ in 0..1 + rng.below(3) {
                match rng.below(6) {
                    0 if !v.is_empty() => {
                        let at = rng.below(v.len());
                        v[at] = rng.next() as u8;
                    }
                    1 => v.truncate(rng.below(v.len() + 1)),
                    2 => v.extend((0..rng.below(8)).map(|_| rng.next() as u8)),
                    3 if v.len() > 16 => {
                        let at = 16 + rng.below(v.len() - 16);
                        v[at] ^= 1 << rng.below(8);
                    }
                    4 if v.len() > 15 => v[15] &= 0x7f,
                    _ => {}
                }
            }
            vec![b("set"), k, b(v)]
        }
        84..=89 => vec![b("set"), key(rng), b(crafted_sparse(rng))],
        90..=94 => vec![b("del"), key(rng)],
        95..=97 => vec![b("object"), b("encoding"), key(rng)],
        _ => {
            let bytes_max = [0, 1, 20, 100, 300, 3000, 6000][rng.below(7)];
            limits::set(&LIMITS.hll_sparse_max_bytes, bytes_max);
            vec![
                b("config"),
                b("set"),
                b("hll-sparse-max-bytes"),
                b(bytes_max.to_string()),
            ]
        }
    }
}

/// Runs `SHARDIS_HLL_DIFF_OPS` (default 20,000) random commands against the redis-server on
/// port `SHARDIS_REDIS_PORT` and against our handlers; `SHARDIS_HLL_DIFF_SEED` replays a
/// run. Changes the process-wide `hll-sparse-max-bytes`, so run it alone:
/// `SHARDIS_REDIS_PORT=6399 cargo test --lib differential_against_real_redis -- --ignored`.
#[test]
#[ignore]
fn differential_against_real_redis() {
    let port: u16 = std::env::var("SHARDIS_REDIS_PORT")
        .expect("SHARDIS_REDIS_PORT")
        .parse()
        .expect("port");
    let seed: u64 = std::env::var("SHARDIS_HLL_DIFF_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| crate::util::now_us() | 1);
    let ops: usize = std::env::var("SHARDIS_HLL_DIFF_OPS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20_000);
    eprintln!("differential seed {seed}");
    let mut live = Live::connect(port);
    assert_eq!(live.call(&[b("flushall")]), b"+OK\r\n");
    live.call(&[b("config"), b("set"), b("hll-sparse-max-bytes"), b("3000")]);
    limits::set(&LIMITS.hll_sparse_max_bytes, 3000);
    let mut h = Harness::new(2);
    let mut rng = Rng(seed);
    let mut tally = std::collections::BTreeMap::<String, usize>::new();
    let mut history = Vec::new();
    let history_shown: usize = std::env::var("SHARDIS_HLL_DIFF_HISTORY")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(12);
    for step in 0..ops {
        let args = random_command(&mut rng, &mut h);
        if args[0] == "set" && ends_in_cut_xzero(&args[2]) {
            // Redis would read the byte past its string there: see `ends_in_cut_xzero`.
            *tally
                .entry("set skipped (cut XZERO)".to_string())
                .or_default() += 1;
            continue;
        }
        let name = String::from_utf8_lossy(&args[0]).into_owned();
        let theirs = live.call(&args);
        let ours = match name.as_str() {
            "config" => b"+OK\r\n".to_vec(),
            // OBJECT is a container the harness does not open; its answer is the entry's.
            "object" => match h.entry(&args[2]) {
                Some(e) => bulk_reply(e.value.encoding().as_bytes()),
                None => b"$-1\r\n".to_vec(),
            },
            _ => h.run(&args),
        };
        let reply_kind = match theirs.first() {
            Some(b'-' | b'+') => {
                String::from_utf8_lossy(&theirs[..theirs.len().min(12)]).into_owned()
            }
            _ if name == "object" => String::from_utf8_lossy(&theirs).into_owned(),
            _ => "ok".to_string(),
        };
        *tally.entry(format!("{name} {reply_kind}")).or_default() += 1;
        let shown: Vec<String> = args
            .iter()
            .take(5)
            .map(|a| crate::util::repr(&a[..a.len().min(24)]))
            .collect();
        history.push(format!("{step}: {shown:?} ({} args)", args.len()));
        if ours != theirs {
            let differ = ours.iter().zip(&theirs).position(|(a, b)| a != b);
            let from = differ.unwrap_or(0).saturating_sub(16);
            let show = |r: &[u8]| {
                let to = r.len().min(from + 64);
                r.get(from..to).map_or(String::new(), |s| {
                    s.iter().map(|b| format!("{b:02x}")).collect::<String>()
                })
            };
            panic!(
                "seed {seed} step {step}: {shown:?}\n{}\nlengths redis {} ours {}, first \
                 difference at {differ:?}; from byte {from}:\n redis: {}\n  ours: {}",
                history[history.len().saturating_sub(history_shown)..].join("\n"),
                theirs.len(),
                ours.len(),
                show(&theirs),
                show(&ours)
            );
        }
    }
    limits::set(&LIMITS.hll_sparse_max_bytes, 3000);
    live.call(&[b("config"), b("set"), b("hll-sparse-max-bytes"), b("3000")]);
    eprintln!("{ops} commands, identical replies: {tally:#?}");
}
