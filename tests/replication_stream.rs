//! The replication stream, differentially: the same scenarios run on redis-server 7.0 and on
//! shardis (4 shards) while a `SYNC` connection listens to each, and the commands each server
//! propagates must be the same: rewrites (SET EX as SET PXAT, EXPIRE as PEXPIREAT, SPOP as
//! SREM, blocking pops as plain pops, INCRBYFLOAT as SET KEEPTTL, ...), deletions of expired
//! keys, MULTI/EXEC wrapping, SELECT, and nothing for commands that changed nothing.
//!
//! Absolute deadlines differ by the time between the two runs, so a number within a day of
//! now in a position that holds a deadline is compared as `<ms-deadline>`.

mod common;

use common::{RespConn, ServerKind, TestServer};
use std::io::Read;
use std::net::TcpStream;
use std::time::{Duration, Instant};

/// One step of a scenario.
enum Step {
    /// A command on the main connection (its reply is read and ignored).
    Cmd(&'static [&'static str]),
    /// Sleep, for lazy expiry.
    Sleep(u64),
    /// A second connection blocks with this command; the next steps wake it.
    Block(&'static [&'static str]),
    /// Wait for the blocked connection's reply.
    Unblocked,
}

use Step::*;

/// A listener on the replication stream.
struct Stream {
    sock: TcpStream,
    buf: Vec<u8>,
}

impl Stream {
    fn attach(port: u16) -> Stream {
        let mut c = RespConn::connect(port).expect("connect");
        c.call(&["CONFIG", "SET", "repl-ping-replica-period", "3600"]);
        drop(c);
        let sock = TcpStream::connect(("127.0.0.1", port)).expect("connect");
        sock.set_read_timeout(Some(Duration::from_secs(10)))
            .expect("timeout");
        let mut s = Stream {
            sock,
            buf: Vec::new(),
        };
        std::io::Write::write_all(&mut s.sock, b"SYNC\r\n").expect("send SYNC");
        // Newlines may precede the payload (the master's keep-alives while it prepares it).
        let len = loop {
            let line = s.line();
            if line.is_empty() {
                continue;
            }
            assert_eq!(
                line[0],
                b'$',
                "SYNC reply {:?}",
                String::from_utf8_lossy(&line)
            );
            break std::str::from_utf8(&line[1..])
                .expect("ascii")
                .parse::<usize>()
                .expect("length");
        };
        s.take(len);
        s
    }

    fn fill(&mut self) {
        let mut chunk = [0u8; 65536];
        let n = self.sock.read(&mut chunk).expect("stream read");
        assert!(n > 0, "the master closed the replication stream");
        self.buf.extend_from_slice(&chunk[..n]);
    }

    fn line(&mut self) -> Vec<u8> {
        loop {
            if let Some(i) = self.buf.windows(2).position(|w| w == b"\r\n") {
                let l = self.buf[..i].to_vec();
                self.buf.drain(..i + 2);
                return l;
            }
            if self.buf.first() == Some(&b'\n') {
                self.buf.remove(0);
                return Vec::new();
            }
            self.fill();
        }
    }

    fn take(&mut self, n: usize) -> Vec<u8> {
        while self.buf.len() < n {
            self.fill();
        }
        self.buf.drain(..n).collect()
    }

    /// The next propagated command, its name lowercased.
    fn command(&mut self) -> Vec<String> {
        let head = self.line();
        assert_eq!(
            head.first(),
            Some(&b'*'),
            "not a command: {:?}",
            String::from_utf8_lossy(&head)
        );
        let n: usize = std::str::from_utf8(&head[1..])
            .expect("ascii")
            .parse()
            .expect("count");
        let mut argv = Vec::with_capacity(n);
        for i in 0..n {
            let l = self.line();
            let len: usize = std::str::from_utf8(&l[1..])
                .expect("ascii")
                .parse()
                .expect("len");
            let arg = self.take(len + 2);
            let mut s = String::from_utf8_lossy(&arg[..len]).into_owned();
            if i == 0 {
                s = s.to_lowercase();
            }
            argv.push(s);
        }
        argv
    }

    /// Commands until the end marker (`SET __end__ <tag>`), PINGs left out.
    fn until_marker(&mut self, tag: &str) -> Vec<Vec<String>> {
        let mut v = Vec::new();
        loop {
            let c = self.command();
            if c.len() == 3 && c[0] == "set" && c[1] == "__end__" && c[2] == tag {
                return v;
            }
            if c[0] != "ping" {
                v.push(c);
            }
        }
    }
}

/// Replaces absolute ms deadlines (within a day of now) by a placeholder.
fn normalize(cmds: Vec<Vec<String>>) -> Vec<Vec<String>> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_millis() as i64;
    cmds.into_iter()
        .map(|c| {
            c.into_iter()
                .map(|a| match a.parse::<i64>() {
                    Ok(n) if (n - now).abs() < 86_400_000 => "<ms-deadline>".to_string(),
                    _ => a,
                })
                .collect()
        })
        .collect()
}

fn run(server: &TestServer, steps: &[Step], tag: &str) -> Vec<Vec<String>> {
    let mut stream = Stream::attach(server.port());
    let mut c = RespConn::connect(server.port()).expect("connect");
    let mut blocked: Option<RespConn> = None;
    for step in steps {
        match step {
            Cmd(args) => {
                c.call(args);
            }
            Sleep(ms) => std::thread::sleep(Duration::from_millis(*ms)),
            Block(args) => {
                let mut b = RespConn::connect(server.port()).expect("connect");
                let a: Vec<&[u8]> = args.iter().map(|s| s.as_bytes()).collect();
                b.send(&a);
                // Blocked once the server counts it.
                let deadline = Instant::now() + Duration::from_secs(10);
                loop {
                    let info = c.call(&["INFO", "clients"]);
                    let text =
                        String::from_utf8_lossy(info.as_bytes().unwrap_or_default()).into_owned();
                    if text.contains("blocked_clients:1") {
                        break;
                    }
                    assert!(Instant::now() < deadline, "client never blocked");
                    std::thread::sleep(Duration::from_millis(10));
                }
                blocked = Some(b);
            }
            Unblocked => {
                let mut b = blocked.take().expect("a blocked client");
                b.read_reply();
            }
        }
    }
    c.call(&["SET", "__end__", tag]);
    normalize(stream.until_marker(tag))
}

fn scenarios() -> Vec<(&'static str, Vec<Step>)> {
    vec![
        (
            "strings",
            vec![
                Cmd(&["SET", "a", "1"]),
                Cmd(&["SET", "b", "2", "EX", "100"]),
                Cmd(&["SET", "b2", "2", "NX", "PX", "100000"]),
                Cmd(&["SETEX", "c", "100", "v"]),
                Cmd(&["PSETEX", "d", "100000", "v"]),
                Cmd(&["SET", "e", "v", "GET"]),
                Cmd(&["SET", "e", "w", "XX", "GET"]),
                Cmd(&["SET", "e", "w", "NX"]),
                Cmd(&["GETSET", "a", "5"]),
                Cmd(&["INCRBYFLOAT", "f", "1.5"]),
                Cmd(&["INCRBYFLOAT", "f", "0.1"]),
                Cmd(&["GETEX", "b", "PERSIST"]),
                Cmd(&["GETEX", "b", "PERSIST"]),
                Cmd(&["GETEX", "b", "PX", "100000"]),
                Cmd(&["GETEX", "b", "EXAT", "1000"]),
                Cmd(&["GETEX", "a"]),
                Cmd(&["GETDEL", "c"]),
                Cmd(&["GETDEL", "c"]),
                Cmd(&["APPEND", "a", "x"]),
                Cmd(&["SET", "d", "v2", "KEEPTTL"]),
                Cmd(&["MSET", "x", "1", "y", "2", "z", "3"]),
                Cmd(&["MSETNX", "x", "1", "q", "2"]),
                Cmd(&["INCR", "n"]),
                Cmd(&["DECRBY", "n", "5"]),
                Cmd(&["SETRANGE", "a", "3", "zz"]),
                Cmd(&["GET", "a"]),
            ],
        ),
        (
            "expiry",
            vec![
                Cmd(&["SET", "a", "1"]),
                Cmd(&["EXPIRE", "a", "100"]),
                Cmd(&["PEXPIRE", "a", "100000", "NX"]),
                Cmd(&["PEXPIRE", "a", "200000", "GT"]),
                Cmd(&["EXPIREAT", "a", "4000000000"]),
                Cmd(&["PEXPIREAT", "a", "4000000000000"]),
                Cmd(&["PERSIST", "a"]),
                Cmd(&["PERSIST", "a"]),
                Cmd(&["EXPIRE", "a", "-1"]),
                Cmd(&["EXPIRE", "missing", "100"]),
                Cmd(&["DEBUG", "SET-ACTIVE-EXPIRE", "0"]),
                Cmd(&["SET", "lazy", "v", "PX", "1"]),
                Cmd(&["SET", "lazy2", "5", "PX", "1"]),
                Sleep(20),
                Cmd(&["GET", "lazy"]),
                Cmd(&["INCR", "lazy2"]),
                Cmd(&["DEBUG", "SET-ACTIVE-EXPIRE", "1"]),
            ],
        ),
        (
            "collections",
            vec![
                Cmd(&["SADD", "s", "only"]),
                Cmd(&["SPOP", "s"]),
                Cmd(&["SADD", "s2", "a", "b"]),
                Cmd(&["SPOP", "s2", "5"]),
                Cmd(&["SADD", "s3", "m"]),
                Cmd(&["SPOP", "s3", "1"]),
                Cmd(&["SREM", "s3", "nothing"]),
                Cmd(&["HSET", "h", "f", "1"]),
                Cmd(&["HINCRBYFLOAT", "h", "f", "1.5"]),
                Cmd(&["HINCRBY", "h", "g", "2"]),
                Cmd(&["RPUSH", "l", "a", "b", "c", "d", "e"]),
                Cmd(&["LPOP", "l"]),
                Cmd(&["BLPOP", "l", "0"]),
                Cmd(&["BRPOP", "l", "0"]),
                Cmd(&["BLMOVE", "l", "l2", "LEFT", "RIGHT", "0"]),
                Cmd(&["BRPOPLPUSH", "l2", "l", "0"]),
                Cmd(&["LMPOP", "1", "l", "LEFT", "COUNT", "10"]),
                Cmd(&["RPUSH", "l2", "x", "y"]),
                Cmd(&["BLMPOP", "0", "1", "l2", "RIGHT"]),
                Cmd(&["ZADD", "z", "1", "a", "2", "b", "3", "c", "4", "d"]),
                Cmd(&["ZPOPMIN", "z"]),
                Cmd(&["BZPOPMAX", "z", "0"]),
                Cmd(&["ZMPOP", "1", "z", "MIN", "COUNT", "1"]),
                Cmd(&["BZMPOP", "0", "1", "z", "MAX", "COUNT", "5"]),
                Cmd(&["GEOADD", "g", "13.361389", "38.115556", "Palermo"]),
                Cmd(&["PFADD", "hll", "a", "b"]),
                Cmd(&["PFCOUNT", "hll"]),
                Cmd(&["PFCOUNT", "hll"]),
            ],
        ),
        (
            "blocked-clients",
            vec![
                Block(&["BLPOP", "q", "0"]),
                Cmd(&["RPUSH", "q", "x", "y"]),
                Unblocked,
                Block(&["BLMOVE", "q2", "q3", "RIGHT", "LEFT", "0"]),
                Cmd(&["LPUSH", "q2", "m"]),
                Unblocked,
                Block(&["BZPOPMIN", "zq", "0"]),
                Cmd(&["ZADD", "zq", "1", "a", "2", "b"]),
                Unblocked,
                Block(&["BLMPOP", "0", "1", "q4", "LEFT", "COUNT", "3"]),
                Cmd(&["RPUSH", "q4", "1", "2"]),
                Unblocked,
            ],
        ),
        (
            "streams",
            vec![
                Cmd(&["XADD", "s1", "1-1", "f", "v"]),
                Cmd(&["XADD", "s1", "2-*", "f", "v"]),
                Cmd(&["XADD", "s1", "MAXLEN", "~", "1", "3-0", "f", "v"]),
                Cmd(&["XADD", "s1", "MINID", "=", "2", "4-0", "f", "v"]),
                Cmd(&[
                    "XADD",
                    "s1",
                    "NOMKSTREAM",
                    "MINID",
                    "~",
                    "3",
                    "LIMIT",
                    "5",
                    "5-*",
                    "f",
                    "v",
                ]),
                Cmd(&["XADD", "nope", "NOMKSTREAM", "1-0", "f", "v"]),
                Cmd(&["XTRIM", "s1", "MAXLEN", "~", "0"]),
                Cmd(&["XTRIM", "s1", "MAXLEN", "2"]),
                Cmd(&["XDEL", "s1", "5-0", "99-0"]),
                Cmd(&[
                    "XSETID",
                    "s1",
                    "10-0",
                    "ENTRIESADDED",
                    "20",
                    "MAXDELETEDID",
                    "5-0",
                ]),
                Cmd(&["XGROUP", "CREATE", "s2", "g", "$", "MKSTREAM"]),
                Cmd(&["XADD", "s2", "1-0", "a", "1"]),
                Cmd(&["XADD", "s2", "2-0", "a", "2"]),
                Cmd(&[
                    "XREADGROUP",
                    "GROUP",
                    "g",
                    "c1",
                    "COUNT",
                    "1",
                    "STREAMS",
                    "s2",
                    ">",
                ]),
                Cmd(&[
                    "XREADGROUP",
                    "GROUP",
                    "g",
                    "c2",
                    "NOACK",
                    "STREAMS",
                    "s2",
                    ">",
                ]),
                Cmd(&["XREADGROUP", "GROUP", "g", "c1", "STREAMS", "s2", "0"]),
                Cmd(&["XACK", "s2", "g", "1-0", "7-0"]),
                Cmd(&["XADD", "s2", "3-0", "a", "3"]),
                Cmd(&["XADD", "s2", "4-0", "a", "4"]),
                Cmd(&["XREADGROUP", "GROUP", "g", "c1", "STREAMS", "s2", ">"]),
                Cmd(&["XCLAIM", "s2", "g", "c2", "0", "3-0", "RETRYCOUNT", "5"]),
                Cmd(&[
                    "XCLAIM", "s2", "g", "c2", "0", "1-0", "LASTID", "9-0", "JUSTID",
                ]),
                Cmd(&["XAUTOCLAIM", "s2", "g", "c3", "0", "0", "COUNT", "1"]),
                Cmd(&["XDEL", "s2", "4-0"]),
                Cmd(&["XAUTOCLAIM", "s2", "g", "c1", "0", "0", "JUSTID"]),
                Cmd(&["XGROUP", "CREATECONSUMER", "s2", "g", "c4"]),
                Cmd(&["XGROUP", "DELCONSUMER", "s2", "g", "c4"]),
                Cmd(&["XGROUP", "SETID", "s2", "g", "0", "ENTRIESREAD", "0"]),
                Cmd(&["XGROUP", "DESTROY", "s2", "g"]),
                Cmd(&["XGROUP", "CREATE", "s3", "g2", "$", "MKSTREAM"]),
                Block(&[
                    "XREADGROUP",
                    "GROUP",
                    "g2",
                    "c",
                    "BLOCK",
                    "0",
                    "STREAMS",
                    "s3",
                    ">",
                ]),
                Cmd(&["XADD", "s3", "5-0", "x", "y"]),
                Unblocked,
                Block(&["XREAD", "BLOCK", "0", "STREAMS", "s3", "$"]),
                Cmd(&["XADD", "s3", "6-0", "x", "y"]),
                Unblocked,
            ],
        ),
        (
            "transactions-and-dbs",
            vec![
                Cmd(&["MULTI"]),
                Cmd(&["SET", "t1", "1"]),
                Cmd(&["GET", "t1"]),
                Cmd(&["SET", "t2", "2"]),
                Cmd(&["EXEC"]),
                Cmd(&["MULTI"]),
                Cmd(&["SET", "t3", "3"]),
                Cmd(&["EXEC"]),
                Cmd(&["MULTI"]),
                Cmd(&["GET", "t3"]),
                Cmd(&["EXEC"]),
                Cmd(&["MULTI"]),
                Cmd(&["SELECT", "2"]),
                Cmd(&["SET", "t4", "4"]),
                Cmd(&["SELECT", "0"]),
                Cmd(&["INCR", "t4"]),
                Cmd(&["EXEC"]),
                Cmd(&["SELECT", "5"]),
                Cmd(&["SET", "d5", "v"]),
                Cmd(&["MOVE", "d5", "6"]),
                Cmd(&["SELECT", "0"]),
                Cmd(&["COPY", "t1", "t1copy"]),
                Cmd(&["RENAME", "t1copy", "t1new"]),
                Cmd(&["SWAPDB", "0", "1"]),
                Cmd(&["SWAPDB", "0", "1"]),
                Cmd(&["DEL", "t1new", "nope"]),
                Cmd(&["DEL", "nope"]),
                Cmd(&["UNLINK", "t2"]),
                Cmd(&["PUBLISH", "chan", "hello"]),
                Cmd(&["FLUSHDB"]),
                Cmd(&["SADD", "u1", "a"]),
                Cmd(&["SADD", "u2", "b"]),
                Cmd(&["SUNIONSTORE", "u3", "u1", "u2"]),
                Cmd(&["RPUSH", "sortme", "3", "1", "2"]),
                Cmd(&["SORT", "sortme", "STORE", "sorted"]),
                Cmd(&["FLUSHALL"]),
            ],
        ),
    ]
}

#[test]
fn replication_stream_matches_redis() {
    let redis = TestServer::start(ServerKind::Redis, &["--enable-debug-command", "yes"]);
    let shardis = TestServer::start(
        ServerKind::Shardis,
        &["--enable-debug-command", "yes", "--shards", "4"],
    );
    let mut failures = Vec::new();
    for (name, steps) in scenarios() {
        for s in [&redis, &shardis] {
            RespConn::connect(s.port())
                .expect("connect")
                .call(&["FLUSHALL"]);
        }
        let want = run(&redis, &steps, name);
        let got = run(&shardis, &steps, name);
        assert!(!want.is_empty(), "{name}: redis propagated nothing");
        if want != got {
            failures.push(format!(
                "scenario {name}:\n  redis:   {want:?}\n  shardis: {got:?}"
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// SCAN and RANDOMKEY delete the expired keys they meet and propagate each DEL on its own,
/// never inside MULTI/EXEC (Redis's `touches_arbitrary_keys`): compared with redis-server as
/// sets, because the two servers walk their keys in different orders.
#[test]
fn scan_and_randomkey_lazy_expiry_is_not_wrapped() {
    let redis = TestServer::start(ServerKind::Redis, &["--enable-debug-command", "yes"]);
    let shardis = TestServer::start(
        ServerKind::Shardis,
        &["--enable-debug-command", "yes", "--shards", "4"],
    );
    for walk in [&["SCAN", "0"][..], &["RANDOMKEY"][..]] {
        let mut streams = Vec::new();
        for s in [&redis, &shardis] {
            let mut c = RespConn::connect(s.port()).expect("connect");
            c.call(&["FLUSHALL"]);
            c.call(&["DEBUG", "SET-ACTIVE-EXPIRE", "0"]);
            let mut stream = Stream::attach(s.port());
            for k in ["foo1", "foo2", "foo3"] {
                c.call(&["SET", k, "bar", "PX", "1"]);
            }
            std::thread::sleep(Duration::from_millis(20));
            // RANDOMKEY deletes every expired key it draws until it finds a live one or the
            // keyspace is empty: here it empties it.
            c.call(walk);
            c.call(&["DEBUG", "SET-ACTIVE-EXPIRE", "1"]);
            c.call(&["SET", "__end__", "x"]);
            let mut got = normalize(stream.until_marker("x"));
            got.retain(|cmd| {
                cmd.first().is_some_and(|n| {
                    !n.eq_ignore_ascii_case("SET") && !n.eq_ignore_ascii_case("SELECT")
                })
            });
            assert!(
                !got.iter().any(|cmd| cmd[0].eq_ignore_ascii_case("MULTI")),
                "{walk:?} wrapped its deletions: {got:?}"
            );
            got.sort();
            streams.push(got);
        }
        assert_eq!(streams[0].len(), 3, "redis: {:?}", streams[0]);
        assert_eq!(streams[0], streams[1], "{walk:?}: redis vs shardis");
    }
}
