//! Streams against redis-server: DUMP payloads of streams with consumer groups restore in
//! both directions with identical contents, groups, PELs and DEBUG DIGEST-VALUE; and a blocked XREAD /
//! XREADGROUP is woken by an XADD from another connection, also when the stream lives on
//! another shard than the blocked client's connection.

mod common;

use common::{wait_until, RespConn, ServerKind, TestServer};
use std::time::Duration;

/// Builds a stream with deletions, trimming, two groups, consumers and pending entries.
fn build(c: &mut RespConn, key: &str) {
    for i in 1..=150 {
        let id = format!("{i}-1");
        let v = format!("value-{i}");
        c.call(&["XADD", key, &id, "f", &v, "n", "12"]);
    }
    c.call(&["XADD", key, "151-0", "other", "x"]);
    c.call(&["XDEL", key, "3-1", "120-1"]);
    c.call(&["XTRIM", key, "MINID", "2"]);
    c.call(&["XGROUP", "CREATE", key, "g1", "0"]);
    c.call(&["XGROUP", "CREATE", key, "g2", "$", "ENTRIESREAD", "7"]);
    c.call(&[
        "XREADGROUP",
        "GROUP",
        "g1",
        "alice",
        "COUNT",
        "5",
        "STREAMS",
        key,
        ">",
    ]);
    c.call(&[
        "XREADGROUP",
        "GROUP",
        "g1",
        "bob",
        "COUNT",
        "3",
        "STREAMS",
        key,
        ">",
    ]);
    c.call(&["XACK", key, "g1", "4-1"]);
    c.call(&["XGROUP", "CREATECONSUMER", key, "g2", "carol"]);
}

/// What must be equal after a transfer (no clock-dependent fields).
fn probe(c: &mut RespConn, key: &str) -> Vec<Vec<u8>> {
    let k = key.as_bytes();
    vec![
        c.cmd(&[b"XRANGE", k, b"-", b"+"]),
        c.cmd(&[b"XLEN", k]),
        c.cmd(&[b"XINFO", b"GROUPS", k]),
        c.cmd(&[b"XPENDING", k, b"g1"]),
        c.cmd(&[b"XPENDING", k, b"g2"]),
        c.cmd(&[b"DEBUG", b"DIGEST-VALUE", k]),
        c.cmd(&[b"TYPE", k]),
        c.cmd(&[b"OBJECT", b"ENCODING", k]),
    ]
}

fn transfer(from: &mut RespConn, to: &mut RespConn, key: &str) {
    let payload = from.call(&["DUMP", key]);
    let payload = payload.as_bytes().expect("DUMP payload").to_vec();
    let r = to.cmd(&[b"RESTORE", key.as_bytes(), b"0", &payload, b"REPLACE"]);
    assert_eq!(r, b"+OK\r\n", "RESTORE: {}", String::from_utf8_lossy(&r));
}

#[test]
fn stream_dump_restore_both_ways_and_reload() {
    let redis = TestServer::start(ServerKind::Redis, &["--enable-debug-command", "yes"]);
    let shardis = TestServer::start(
        ServerKind::Shardis,
        &["--enable-debug-command", "yes", "--shards", "2"],
    );
    let (mut r, mut s) = (redis.conn(), shardis.conn());
    build(&mut r, "rs");
    build(&mut s, "ss");
    // The same commands give the same stream on both.
    let want = probe(&mut r, "rs");
    assert_eq!(probe(&mut s, "ss"), want, "built streams differ");
    assert!(String::from_utf8_lossy(&want[5]).len() > 40, "digest");

    // Redis's payload restores here, ours restores in Redis.
    transfer(&mut r, &mut s, "rs");
    assert_eq!(probe(&mut s, "rs"), want, "Redis DUMP restored in shardis");
    transfer(&mut s, &mut r, "ss");
    assert_eq!(probe(&mut r, "ss"), want, "shardis DUMP restored in Redis");

    // Our own payload restores here too, and the stream goes on from where it was: last ID,
    // groups' positions.
    let mut s2 = shardis.conn();
    transfer(&mut s, &mut s2, "ss");
    assert_eq!(
        probe(&mut s2, "ss"),
        want,
        "shardis DUMP restored in shardis"
    );
    let r3 = s.call(&["XADD", "ss", "151-0", "f", "v"]);
    assert!(r3.is_error(), "last ID kept across reload");
    let read = s.cmd(&[
        b"XREADGROUP",
        b"GROUP",
        b"g1",
        b"dave",
        b"COUNT",
        b"1",
        b"STREAMS",
        b"ss",
        b">",
    ]);
    let expected = r.cmd(&[
        b"XREADGROUP",
        b"GROUP",
        b"g1",
        b"dave",
        b"COUNT",
        b"1",
        b"STREAMS",
        b"ss",
        b">",
    ]);
    assert_eq!(read, expected);
}

fn blocked(c: &mut RespConn, n: usize) -> bool {
    let info = c.call(&["INFO", "clients"]);
    String::from_utf8_lossy(info.as_bytes().unwrap_or_default())
        .contains(&format!("blocked_clients:{n}\r\n"))
}

/// A client blocked in XREAD / XREADGROUP on a key is woken by an XADD from another
/// connection; the keys are spread so that some live on the other shard.
#[test]
fn blocked_stream_reads_wake_on_xadd() {
    let shardis = TestServer::start(ServerKind::Shardis, &["--shards", "2"]);
    let mut c = shardis.conn();
    for key in ["st:a", "st:b", "st:c", "st:d"] {
        c.call(&["XADD", key, "1-0", "old", "1"]);
        c.call(&["XGROUP", "CREATE", key, "g", "$"]);

        let mut reader = shardis.conn();
        reader.send(&[
            b"XREAD",
            b"BLOCK",
            b"0",
            b"STREAMS",
            b"nope",
            key.as_bytes(),
            b"$",
            b"$",
        ]);
        let mut group_reader = shardis.conn();
        group_reader.send(&[
            b"XREADGROUP",
            b"GROUP",
            b"g",
            b"alice",
            b"BLOCK",
            b"0",
            b"STREAMS",
            key.as_bytes(),
            b">",
        ]);
        wait_until("two clients blocked", Duration::from_secs(10), || {
            blocked(&mut c, 2)
        });
        c.call(&["XADD", key, "2-0", "new", "2"]);
        let want = format!(
            "*1\r\n*2\r\n${}\r\n{key}\r\n*1\r\n*2\r\n$3\r\n2-0\r\n*2\r\n$3\r\nnew\r\n$1\r\n2\r\n",
            key.len()
        );
        assert_eq!(String::from_utf8_lossy(&reader.read_reply()), want);
        assert_eq!(String::from_utf8_lossy(&group_reader.read_reply()), want);
        // The group delivered it: it is pending for alice.
        let pending = c.cmd(&[b"XPENDING", key.as_bytes(), b"g"]);
        assert!(String::from_utf8_lossy(&pending).contains("alice"), "{key}");
    }

    // A blocked XREADGROUP whose stream is deleted gets an error; XREAD keeps waiting and
    // times out with a null.
    c.call(&["XGROUP", "CREATE", "st:e", "g", "$", "MKSTREAM"]);
    let mut group_reader = shardis.conn();
    group_reader.send(&[
        b"XREADGROUP",
        b"GROUP",
        b"g",
        b"bob",
        b"BLOCK",
        b"0",
        b"STREAMS",
        b"st:e",
        b">",
    ]);
    let mut reader = shardis.conn();
    reader.send(&[b"XREAD", b"BLOCK", b"300", b"STREAMS", b"st:e", b"$"]);
    wait_until("two clients blocked", Duration::from_secs(10), || {
        blocked(&mut c, 2)
    });
    c.call(&["DEL", "st:e"]);
    assert_eq!(
        group_reader.read_reply(),
        b"-UNBLOCKED the stream key no longer exists\r\n"
    );
    assert_eq!(reader.read_reply(), b"*-1\r\n");
}
