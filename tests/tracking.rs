//! Client-side caching (CLIENT TRACKING) over real connections, with 1 and 4 shards: RESP3
//! push invalidations (idle delivery and order against replies), RESP2 redirection to a
//! `__redis__:invalidate` subscriber (flush nulls, broken redirect), BCAST prefixes with
//! NOLOOP, OPTIN with CLIENT CACHING; and the exact reply bytes of the CLIENT TRACKING family,
//! errors included, next to redis-server.

mod common;

use common::{show, RespConn, ServerKind, TestServer};

const SHARD_COUNTS: [&str; 2] = ["1", "4"];
/// Keys spread over every shard of a 4-shard server (and so, for most, off the home shard of
/// the connection that reads them).
const KEYS: [&str; 8] = ["k0", "k1", "k2", "k3", "foo", "bar", "user:1", "x{t}"];

fn bulk(s: &str) -> String {
    format!("${}\r\n{}\r\n", s.len(), s)
}

fn push_invalidate(key: &str) -> Vec<u8> {
    format!(">2\r\n$10\r\ninvalidate\r\n*1\r\n{}", bulk(key)).into_bytes()
}

fn expect(conn: &mut RespConn, want: &[u8], what: &str) {
    let got = conn.read_reply();
    assert_eq!(show(&got), show(want), "{what}");
}

fn ok(conn: &mut RespConn, args: &[&str]) {
    let args: Vec<&[u8]> = args.iter().map(|a| a.as_bytes()).collect();
    let got = conn.cmd(&args);
    assert!(
        got.starts_with(b"+OK") || got.starts_with(b"%") || got.starts_with(b"*"),
        "{args:?} answered {}",
        show(&got)
    );
}

fn start(shards: &str) -> TestServer {
    TestServer::start(ServerKind::Shardis, &["--shards", shards])
}

#[test]
fn resp3_push_invalidation() {
    for shards in SHARD_COUNTS {
        let server = start(shards);
        let mut reader = server.conn();
        let mut writer = server.conn();
        ok(&mut reader, &["HELLO", "3"]);
        ok(&mut reader, &["CLIENT", "TRACKING", "on"]);
        for key in KEYS {
            ok(&mut writer, &["SET", key, "old"]);
            assert_eq!(
                reader.cmd(&[b"GET", key.as_bytes()]),
                bulk("old").into_bytes()
            );
            ok(&mut writer, &["SET", key, "new"]);
            // Delivered to an idle client without it asking.
            expect(&mut reader, &push_invalidate(key), "idle invalidation");
            // Read again: tracked again; a write followed at once by a read of the new value
            // gets the invalidation before the value.
            assert_eq!(
                reader.cmd(&[b"GET", key.as_bytes()]),
                bulk("new").into_bytes()
            );
            ok(&mut writer, &["SET", key, "newer"]);
            reader.send(&[b"GET", key.as_bytes()]);
            expect(
                &mut reader,
                &push_invalidate(key),
                "invalidation before the new value",
            );
            expect(
                &mut reader,
                &bulk("newer").into_bytes(),
                "new value after it",
            );
            // The client's own write: its reply first, then the invalidation.
            reader.send(&[b"SET", key.as_bytes(), b"mine"]);
            expect(&mut reader, b"+OK\r\n", "own write's reply");
            expect(
                &mut reader,
                &push_invalidate(key),
                "own write's invalidation after it",
            );
            assert_eq!(
                reader.cmd(&[b"PING"]),
                b"+PONG\r\n".to_vec(),
                "nothing left over"
            );
        }
        // MULTI/EXEC: the invalidation follows the whole transaction's reply.
        assert_eq!(reader.cmd(&[b"GET", b"k0"]), bulk("mine").into_bytes());
        ok(&mut reader, &["MULTI"]);
        assert_eq!(reader.cmd(&[b"INCR", b"k9"]), b"+QUEUED\r\n".to_vec());
        assert_eq!(reader.cmd(&[b"SET", b"k0", b"2"]), b"+QUEUED\r\n".to_vec());
        reader.send(&[b"EXEC"]);
        expect(&mut reader, b"*2\r\n:1\r\n+OK\r\n", "EXEC reply");
        expect(&mut reader, &push_invalidate("k0"), "after EXEC");
        // FLUSHALL by another client: a null invalidation.
        assert_eq!(reader.cmd(&[b"GET", b"k1"]), bulk("mine").into_bytes());
        ok(&mut writer, &["FLUSHALL"]);
        expect(
            &mut reader,
            b">2\r\n$10\r\ninvalidate\r\n_\r\n",
            "flush null",
        );
        let info = reader.cmd(&[b"INFO", b"stats"]);
        let text = String::from_utf8_lossy(&info);
        assert!(text.contains("tracking_total_keys:0"), "{text}");
    }
}

#[test]
fn resp2_redirect_to_subscriber() {
    for shards in SHARD_COUNTS {
        let server = start(shards);
        let mut target = server.conn();
        let mut tracker = server.conn();
        let mut writer = server.conn();
        let id = target.call(&["CLIENT", "ID"]).as_int().expect("id");
        target.cmd(&[b"SUBSCRIBE", b"__redis__:invalidate"]);
        let ids = id.to_string();
        ok(
            &mut tracker,
            &["CLIENT", "TRACKING", "on", "REDIRECT", &ids],
        );
        assert_eq!(
            tracker.cmd(&[b"CLIENT", b"GETREDIR"]),
            format!(":{id}\r\n").into_bytes()
        );
        let list = tracker.cmd(&[b"CLIENT", b"INFO"]);
        let line = String::from_utf8_lossy(&list);
        assert!(line.contains(" flags=t "), "{line}");
        assert!(line.contains(&format!(" redir={id} ")), "{line}");
        for key in KEYS {
            tracker.cmd(&[b"GET", key.as_bytes()]);
            ok(&mut writer, &["SET", key, "v"]);
            let want = format!(
                "*3\r\n$7\r\nmessage\r\n$20\r\n__redis__:invalidate\r\n*1\r\n{}",
                bulk(key)
            );
            expect(&mut target, want.as_bytes(), "redirected invalidation");
        }
        tracker.cmd(&[b"GET", b"k0"]);
        ok(&mut writer, &["FLUSHDB"]);
        let want = b"*3\r\n$7\r\nmessage\r\n$20\r\n__redis__:invalidate\r\n$-1\r\n";
        expect(
            &mut target,
            want,
            "flush null, in the tracking client's RESP2",
        );
        // The target goes away: a RESP3 tracking client is told at its next invalidation.
        assert_eq!(target.cmd(&[b"QUIT"]), b"+OK\r\n".to_vec());
        ok(&mut tracker, &["HELLO", "3"]);
        tracker.cmd(&[b"GET", b"k1"]);
        ok(&mut writer, &["SET", "k1", "w"]);
        let want = format!(">2\r\n$21\r\ntracking-redir-broken\r\n:{id}\r\n");
        expect(&mut tracker, want.as_bytes(), "broken redirect");
        let info = tracker.cmd(&[b"CLIENT", b"TRACKINGINFO"]);
        let want = format!(
            "%3\r\n$5\r\nflags\r\n~2\r\n$2\r\non\r\n$15\r\nbroken_redirect\r\n\
             $8\r\nredirect\r\n:{id}\r\n$8\r\nprefixes\r\n*0\r\n"
        );
        assert_eq!(show(&info), show(want.as_bytes()));
        let list = tracker.cmd(&[b"CLIENT", b"INFO"]);
        assert!(String::from_utf8_lossy(&list).contains(" flags=tR "));
    }
}

#[test]
fn bcast_prefixes_and_noloop() {
    for shards in SHARD_COUNTS {
        let server = start(shards);
        let mut bcast = server.conn();
        let mut writer = server.conn();
        ok(&mut bcast, &["HELLO", "3"]);
        ok(
            &mut bcast,
            &[
                "CLIENT", "TRACKING", "on", "BCAST", "PREFIX", "a:", "PREFIX", "b:", "NOLOOP",
            ],
        );
        ok(
            &mut writer,
            &["MSET", "a:1{t}", "1", "c:1{t}", "1", "a:2{t}", "2"],
        );
        let want = format!(
            ">2\r\n$10\r\ninvalidate\r\n*2\r\n{}{}",
            bulk("a:1{t}"),
            bulk("a:2{t}")
        );
        expect(&mut bcast, want.as_bytes(), "keys of prefix a:");
        // NOLOOP: its own writes are not reported; others' are.
        ok(&mut bcast, &["SET", "b:mine", "1"]);
        ok(&mut writer, &["SET", "b:theirs", "1"]);
        expect(
            &mut bcast,
            &push_invalidate("b:theirs"),
            "others' write only",
        );
        let info = writer.cmd(&[b"INFO", b"stats"]);
        assert!(String::from_utf8_lossy(&info).contains("tracking_total_prefixes:2"));
        let info = writer.cmd(&[b"INFO", b"clients"]);
        assert!(String::from_utf8_lossy(&info).contains("tracking_clients:1"));
        let list = bcast.cmd(&[b"CLIENT", b"INFO"]);
        assert!(String::from_utf8_lossy(&list).contains(" flags=tB "));
        ok(&mut bcast, &["CLIENT", "TRACKING", "off"]);
        let info = writer.cmd(&[b"INFO", b"stats"]);
        assert!(String::from_utf8_lossy(&info).contains("tracking_total_prefixes:0"));
    }
}

#[test]
fn optin_with_caching() {
    for shards in SHARD_COUNTS {
        let server = start(shards);
        let mut reader = server.conn();
        let mut writer = server.conn();
        ok(&mut reader, &["HELLO", "3"]);
        ok(&mut reader, &["CLIENT", "TRACKING", "on", "OPTIN"]);
        for key in KEYS {
            reader.cmd(&[b"GET", key.as_bytes()]);
        }
        assert_eq!(
            reader.cmd(&[b"CLIENT", b"CACHING", b"yes"]),
            b"+OK\r\n".to_vec()
        );
        reader.cmd(&[b"GET", b"k2"]);
        // The mark covers one command only.
        reader.cmd(&[b"GET", b"k3"]);
        for key in KEYS {
            ok(&mut writer, &["SET", key, "1"]);
        }
        reader.send(&[b"PING"]);
        expect(&mut reader, &push_invalidate("k2"), "the opted-in key only");
        expect(&mut reader, b"+PONG\r\n", "then the reply");
        let info = writer.cmd(&[b"INFO", b"stats"]);
        assert!(String::from_utf8_lossy(&info).contains("tracking_total_keys:0"));
    }
}

/// Replies of the CLIENT TRACKING family, with `id` (the redirect target's id) shown as
/// `<id>` so the two servers compare.
fn tracking_transcript(kind: ServerKind) -> Vec<String> {
    let server = TestServer::start(kind, &[]);
    let mut c = server.conn();
    let mut other = server.conn();
    let id = other
        .call(&["CLIENT", "ID"])
        .as_int()
        .expect("id")
        .to_string();
    let script: Vec<Vec<&str>> = vec![
        vec!["CLIENT", "TRACKING"],
        vec!["CLIENT", "TRACKING", "maybe"],
        vec!["CLIENT", "TRACKING", "on", "whatever"],
        vec!["CLIENT", "TRACKING", "on", "PREFIX"],
        vec!["CLIENT", "TRACKING", "on", "PREFIX", "a"],
        vec!["CLIENT", "TRACKING", "on", "OPTIN", "OPTOUT"],
        vec!["CLIENT", "TRACKING", "on", "BCAST", "OPTOUT"],
        vec!["CLIENT", "TRACKING", "on", "REDIRECT", "x"],
        vec!["CLIENT", "TRACKING", "on", "REDIRECT", "999999"],
        vec!["CLIENT", "TRACKING", "on", "REDIRECT", "-1"],
        vec![
            "CLIENT", "TRACKING", "on", "REDIRECT", "$ID", "REDIRECT", "$ID",
        ],
        vec![
            "CLIENT", "TRACKING", "on", "BCAST", "PREFIX", "FOOBAR", "PREFIX", "FOO",
        ],
        vec!["CLIENT", "CACHING", "yes"],
        vec!["CLIENT", "GETREDIR"],
        vec!["CLIENT", "TRACKINGINFO"],
        vec![
            "CLIENT", "TRACKING", "on", "BCAST", "PREFIX", "b", "PREFIX", "a",
        ],
        vec!["CLIENT", "TRACKING", "on", "BCAST", "PREFIX", "ab"],
        vec!["CLIENT", "TRACKING", "on"],
        vec!["CLIENT", "TRACKINGINFO"],
        vec!["CLIENT", "TRACKING", "off"],
        vec![
            "CLIENT", "TRACKING", "on", "REDIRECT", "$ID", "OPTIN", "NOLOOP",
        ],
        vec!["CLIENT", "GETREDIR"],
        vec!["CLIENT", "CACHING", "no"],
        vec!["CLIENT", "CACHING", "perhaps"],
        vec!["CLIENT", "CACHING"],
        vec!["CLIENT", "CACHING", "yes"],
        vec!["CLIENT", "TRACKINGINFO"],
        vec!["CLIENT", "TRACKING", "on", "OPTOUT"],
        vec!["CLIENT", "TRACKING", "on", "BCAST"],
        vec!["CLIENT", "GETREDIR", "extra"],
        vec!["CLIENT", "TRACKINGINFO", "extra"],
        vec!["HELLO", "3"],
        vec!["CLIENT", "TRACKINGINFO"],
        vec!["CLIENT", "TRACKING", "off"],
        vec!["CLIENT", "TRACKING", "on", "OPTOUT"],
        vec!["CLIENT", "CACHING", "no"],
        vec!["CLIENT", "TRACKINGINFO"],
        vec!["CLIENT", "TRACKING", "off"],
        vec!["CLIENT", "TRACKINGINFO"],
        vec!["CLIENT", "GETREDIR"],
    ];
    let mut out = Vec::new();
    for args in script {
        let bytes: Vec<&[u8]> = args
            .iter()
            .map(|a| {
                if *a == "$ID" {
                    id.as_bytes()
                } else {
                    a.as_bytes()
                }
            })
            .collect();
        let reply = c.cmd(&bytes);
        let reply = String::from_utf8_lossy(&reply)
            .replace(&format!(":{id}\r\n"), ":<id>\r\n")
            .into_bytes();
        let mut text = show(&reply);
        if args[0] == "HELLO" {
            text = "(hello)".to_string();
        }
        out.push(format!("{} -> {}", args.join(" "), text));
    }
    out
}

#[test]
fn tracking_replies_match_redis() {
    let redis = tracking_transcript(ServerKind::Redis);
    let ours = tracking_transcript(ServerKind::Shardis);
    for (r, s) in redis.iter().zip(ours.iter()) {
        assert_eq!(s, r, "shardis (left) and redis (right) differ");
    }
    assert_eq!(redis.len(), ours.len());
}
