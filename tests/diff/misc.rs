//! Generic errors (wrong arity, unknown commands and subcommands) and connection commands.
//!
//! Redis checks arity and looks the command up before any handler runs, so these errors are
//! the same for every family; their texts (lower-case command names, arguments quoted and cut
//! at 128 bytes) are part of the contract.

use super::{Check, Cmd, Conn, Gen};

/// Commands of the families above with their Redis 7.0 arity (negative: at least that many).
const ARITIES: &[(&str, i32)] = &[
    ("GET", 2),
    ("SET", -3),
    ("GETEX", -2),
    ("GETDEL", 2),
    ("GETSET", 3),
    ("SETNX", 3),
    ("SETEX", 4),
    ("PSETEX", 4),
    ("MGET", -2),
    ("MSET", -3),
    ("MSETNX", -3),
    ("INCR", 2),
    ("DECR", 2),
    ("INCRBY", 3),
    ("DECRBY", 3),
    ("INCRBYFLOAT", 3),
    ("APPEND", 3),
    ("STRLEN", 2),
    ("GETRANGE", 4),
    ("SUBSTR", 4),
    ("SETRANGE", 4),
    ("LCS", -3),
    ("SETBIT", 4),
    ("GETBIT", 3),
    ("BITCOUNT", -2),
    ("BITPOS", -3),
    ("BITOP", -4),
    ("BITFIELD", -2),
    ("BITFIELD_RO", -2),
    ("DEL", -2),
    ("UNLINK", -2),
    ("EXISTS", -2),
    ("TYPE", 2),
    ("EXPIRE", -3),
    ("PEXPIRE", -3),
    ("EXPIREAT", -3),
    ("PEXPIREAT", -3),
    ("TTL", 2),
    ("PTTL", 2),
    ("EXPIRETIME", 2),
    ("PEXPIRETIME", 2),
    ("PERSIST", 2),
    ("RENAME", 3),
    ("RENAMENX", 3),
    ("COPY", -3),
    ("MOVE", 3),
    ("TOUCH", -2),
    ("DBSIZE", 1),
    ("SELECT", 2),
    ("KEYS", 2),
    ("SCAN", -2),
    ("RANDOMKEY", 1),
    ("ECHO", 2),
    ("OBJECT", -2),
    ("LPUSH", -3),
    ("RPUSH", -3),
    ("LPUSHX", -3),
    ("RPUSHX", -3),
    ("LPOP", -2),
    ("RPOP", -2),
    ("LLEN", 2),
    ("LRANGE", 4),
    ("LINDEX", 3),
    ("LSET", 4),
    ("LINSERT", 5),
    ("LREM", 4),
    ("LTRIM", 4),
    ("LPOS", -3),
    ("LMOVE", 5),
    ("RPOPLPUSH", 3),
    ("LMPOP", -4),
    ("BLPOP", -3),
    ("BRPOP", -3),
    ("BLMOVE", 6),
    ("BRPOPLPUSH", 4),
    ("BLMPOP", -5),
    ("HSET", -4),
    ("HSETNX", 4),
    ("HGET", 3),
    ("HMSET", -4),
    ("HMGET", -3),
    ("HDEL", -3),
    ("HLEN", 2),
    ("HSTRLEN", 3),
    ("HEXISTS", 3),
    ("HKEYS", 2),
    ("HVALS", 2),
    ("HGETALL", 2),
    ("HINCRBY", 4),
    ("HINCRBYFLOAT", 4),
    ("HRANDFIELD", -2),
    ("HSCAN", -3),
    ("SADD", -3),
    ("SREM", -3),
    ("SCARD", 2),
    ("SISMEMBER", 3),
    ("SMISMEMBER", -3),
    ("SMEMBERS", 2),
    ("SRANDMEMBER", -2),
    ("SPOP", -2),
    ("SMOVE", 4),
    ("SINTER", -2),
    ("SUNION", -2),
    ("SDIFF", -2),
    ("SINTERSTORE", -3),
    ("SUNIONSTORE", -3),
    ("SDIFFSTORE", -3),
    ("SINTERCARD", -3),
    ("SSCAN", -3),
    ("PFADD", -2),
    ("PFCOUNT", -2),
    ("PFMERGE", -2),
    ("XADD", -5),
    ("XLEN", 2),
    ("XRANGE", -4),
    ("XREVRANGE", -4),
    ("XDEL", -3),
    ("XTRIM", -4),
    ("XSETID", -3),
    ("XREAD", -4),
    ("XREADGROUP", -7),
    ("XACK", -4),
    ("XPENDING", -3),
    ("XCLAIM", -6),
    ("XAUTOCLAIM", -6),
    ("MULTI", 1),
    ("EXEC", 1),
    ("DISCARD", 1),
    ("WATCH", -2),
    ("UNWATCH", 1),
    ("ZADD", -4),
    ("ZINCRBY", 4),
    ("ZSCORE", 3),
    ("ZMSCORE", -3),
    ("ZCARD", 2),
    ("ZCOUNT", 4),
    ("ZLEXCOUNT", 4),
    ("ZRANGE", -4),
    ("ZRANGEBYSCORE", -4),
    ("ZRANGEBYLEX", -4),
    ("ZREVRANGE", -4),
    ("ZREVRANGEBYSCORE", -4),
    ("ZREVRANGEBYLEX", -4),
    ("ZRANGESTORE", -5),
    ("ZRANK", 3),
    ("ZREVRANK", 3),
    ("ZREM", -3),
    ("ZREMRANGEBYSCORE", 4),
    ("ZREMRANGEBYRANK", 4),
    ("ZREMRANGEBYLEX", 4),
    ("ZPOPMIN", -2),
    ("ZPOPMAX", -2),
    ("ZMPOP", -4),
    ("BZPOPMIN", -3),
    ("BZPOPMAX", -3),
    ("BZMPOP", -5),
    ("ZUNION", -3),
    ("ZINTER", -3),
    ("ZDIFF", -3),
    ("ZUNIONSTORE", -4),
    ("ZINTERSTORE", -4),
    ("ZDIFFSTORE", -4),
    ("ZINTERCARD", -3),
    ("ZRANDMEMBER", -2),
    ("ZSCAN", -3),
    ("GEOADD", -5),
    ("GEOPOS", -2),
    ("GEODIST", -4),
    ("GEOHASH", -2),
    ("GEOSEARCH", -7),
    ("GEOSEARCHSTORE", -8),
    ("GEORADIUS", -6),
    ("GEORADIUS_RO", -6),
    ("GEORADIUSBYMEMBER", -5),
    ("GEORADIUSBYMEMBER_RO", -5),
];

/// Wrong arity, unknown commands, unknown subcommands.
pub fn errors(g: &mut Gen) -> Cmd {
    match g.rng.below(10) {
        0..=5 => wrong_arity(g),
        6..=8 => unknown_command(g),
        _ => unknown_subcommand(g),
    }
}

/// A known command with too few or too many arguments.
fn wrong_arity(g: &mut Gen) -> Cmd {
    let (name, arity) = *g.rng.pick(ARITIES);
    let needed = arity.unsigned_abs() as usize;
    let argc = if arity > 0 && (needed == 1 || g.rng.chance(1, 2)) {
        needed + g.count(2)
    } else if needed > 1 {
        1 + g.rng.index(needed - 1)
    } else {
        // A command of arity -1 accepts any count; ask for one that does not.
        return g.c("GET").exact();
    };
    let mut args = g.c(name);
    for _ in 1..argc {
        args = args.arg(if g.rng.chance(1, 2) {
            g.key()
        } else {
            g.value()
        });
    }
    args.exact()
}

/// An argument for an unknown command: short, long (past the 128 bytes an error quotes),
/// with CR/LF (replaced by spaces in errors), or binary.
fn junk_arg(g: &mut Gen) -> Vec<u8> {
    match g.rng.below(6) {
        0 => {
            let len = 100 + g.rng.below(100) as usize;
            g.rng.bytes_from(len, b"abcdef")
        }
        1 => b"a\r\nb".to_vec(),
        2 => Vec::new(),
        3 => {
            let len = g.count(6);
            g.rng.bytes_from(len, b"ab\x00\xff ")
        }
        _ => g.value(),
    }
}

fn unknown_command(g: &mut Gen) -> Cmd {
    let name: Vec<u8> = match g.rng.below(8) {
        0 => Vec::new(),
        1 => b"GET ".to_vec(),
        2 => b"sett".to_vec(),
        3 => {
            let len = 130 + g.rng.below(20) as usize;
            g.rng.bytes_from(len, b"qz")
        }
        _ => {
            // The prefix keeps random names clear of real commands.
            let len = g.count(8);
            let mut name = b"qq".to_vec();
            name.extend(g.rng.bytes_from(len, b"abcdefghijklmnopqrstuvwxyz_"));
            name
        }
    };
    let mut args = vec![name];
    for _ in 0..g.rng.below(4) {
        args.push(junk_arg(g));
    }
    Cmd {
        args,
        check: Check::Exact,
        conn: Conn::Main,
    }
}

fn unknown_subcommand(g: &mut Gen) -> Cmd {
    let sub = *g.rng.pick(&["FOO", "", "encodingx", "ENCODING\r\n"]);
    let key = g.key();
    match g.rng.below(3) {
        // A known container without a subcommand, or a subcommand with the wrong arity.
        0 => g.c("OBJECT").exact(),
        1 => g.c("OBJECT").arg("ENCODING").exact(),
        _ => g.c("OBJECT").arg(sub).arg(key).exact(),
    }
}

/// PING, ECHO, and HELLO switching between RESP2 and RESP3.
pub fn connection(g: &mut Gen) -> Cmd {
    match g.rng.below(10) {
        0 | 1 => g.c("PING").exact(),
        2 => {
            let message = g.value();
            g.c("PING").arg(message).exact()
        }
        3 | 4 => {
            let message = g.value();
            g.c("ECHO").arg(message).exact()
        }
        // The reply to HELLO holds the client id, which differs between servers.
        5..=7 => g
            .c("HELLO")
            .arg(*g.rng.pick(&["2", "3"]))
            .check(Check::SameShape),
        8 => g.c("HELLO").check(Check::SameShape),
        _ => g
            .c("HELLO")
            .arg(*g.rng.pick(&["4", "1", "abc", "-1"]))
            .exact(),
    }
}
