//! ACL over TCP: users, AUTH, permission checks (commands, keys, channels, selectors, MULTI,
//! EXEC, scripts), the ACL command family and the ACL file. The deterministic replies are
//! compared byte for byte with redis-server's; the rest is checked by shape and content.

mod common;

use common::{wait_until, Reply, RespConn, ServerKind, TestServer};
use std::time::Duration;

fn arr(r: &Reply) -> &[Reply] {
    r.as_array()
        .unwrap_or_else(|| panic!("not an array: {:?}", r))
}

/// Command sequences whose replies must be identical on redis-server and shardis. Each inner
/// list runs on a fresh connection (so AUTH in one does not leak into the next).
const SCRIPT: &[&[&[&str]]] = &[
    &[
        &["acl", "list"],
        &["acl", "setuser", "alice"],
        &["acl", "list"],
        &["acl", "getuser", "alice"],
        &[
            "acl", "setuser", "bob", "on", ">p1", "~k*", "%R~r*", "%W~w*", "&ch", "+get", "+set",
        ],
        &[
            "acl",
            "setuser",
            "bob",
            "+publish",
            "+subscribe",
            "+psubscribe",
            "+multi",
            "+exec",
        ],
        &[
            "acl",
            "setuser",
            "bob",
            "+eval",
            "+config|get",
            "(~x* +del)",
        ],
        &["acl", "getuser", "bob"],
        &["acl", "getuser", "nobody"],
        &["acl", "users"],
        &["acl", "whoami"],
        &["acl", "cat"],
        &["acl", "cat", "nosuchcat"],
        &["acl", "setuser", "x", "badrule"],
        &["acl", "setuser", "x", "+nosuchcommand"],
        &["acl", "setuser", "x", "+@nosuchcat"],
        &["acl", "setuser", "x", "(~a", "+get"],
        &["acl", "setuser", "x", "~*", "~a"],
        &["acl", "setuser", "x", "&*", "&a"],
        &["acl", "setuser", "x", "#abc"],
        &["acl", "setuser", "x", "<nope"],
        &["acl", "setuser", "x", "+config|get|x"],
        &["acl", "setuser", "x", "%X~a"],
        &["acl", "setuser", "has space"],
        &["acl", "users"],
        &["acl", "deluser", "default"],
        &["acl", "dryrun", "bob", "get", "k1"],
        &["acl", "dryrun", "bob", "get", "z"],
        &["acl", "dryrun", "bob", "del", "x1"],
        &["acl", "dryrun", "bob", "del", "k1"],
        &["acl", "dryrun", "bob", "publish", "other", "m"],
        &["acl", "dryrun", "bob", "config", "get", "maxmemory"],
        &["acl", "dryrun", "bob", "config", "set", "maxmemory", "1"],
        &["acl", "dryrun", "nobody", "get", "x"],
        &["acl", "dryrun", "bob", "nosuch"],
        &["acl", "dryrun", "bob", "get"],
        &["acl", "genpass", "0"],
        &["acl", "genpass", "x"],
        &["acl", "log", "x"],
        &["acl", "nosuch"],
    ],
    &[
        &["auth", "bob", "wrong"],
        &["auth", "nobody", "p1"],
        &["auth", "alice", "x"],
        &["auth", "only-one-arg-with-nopass-default"],
        &["auth", "bob", "p1"],
        &["acl", "whoami"],
        &["set", "k1", "v"],
        &["get", "k1"],
        &["set", "z", "v"],
        &["get", "r1"],
        &["set", "r1", "v"],
        &["set", "w1", "v"],
        &["get", "w1"],
        &["del", "x1"],
        &["del", "k1"],
        &["lpush", "k1", "a"],
        &["config", "get", "maxmemory"],
        &["config", "set", "maxmemory", "1"],
        &["publish", "ch", "m"],
        &["publish", "other", "m"],
        &["multi"],
        &["set", "k2", "1"],
        &["set", "zz", "1"],
        &["exec"],
        &["multi"],
        &["set", "k3", "1"],
        &["exec"],
        &["eval", "return redis.call('set','k4','1')", "0"],
        &["eval", "return redis.pcall('set','zz','1')", "0"],
        &["eval", "return redis.pcall('lpush','k5','1')", "0"],
        &["eval", "return redis.pcall('publish','nope','1')", "0"],
    ],
    &[
        &["hello", "3", "auth", "bob", "wrong"],
        &["hello", "2", "auth", "bob", "p1", "setname", "c1"],
        &["acl", "whoami"],
        &["client", "getname"],
    ],
    &[
        &["acl", "setuser", "bob", "resetkeys", "~*", "clearselectors"],
        &["acl", "getuser", "bob"],
        &["acl", "setuser", "bob", "reset"],
        &["acl", "getuser", "bob"],
        &[
            "acl",
            "setuser",
            "bob",
            "nopass",
            "on",
            "allcommands",
            "allkeys",
            "allchannels",
        ],
        &["acl", "list"],
        &["acl", "deluser", "bob", "alice", "nobody"],
        &["acl", "users"],
    ],
];

/// Redis emits single-command rules (`+get +set`) in its command dict's hash order, which
/// changes between its own runs: runs of them are sorted before comparing.
fn canonical(reply: &[u8]) -> String {
    let text = String::from_utf8_lossy(reply);
    let mut previous = "";
    let lines: Vec<String> = text
        .split("\r\n")
        .map(|line| {
            // HELLO's client id differs between the servers.
            if std::mem::replace(&mut previous, line) == "id" && line.starts_with(':') {
                return ":ID".to_string();
            }
            let mut words: Vec<&str> = line.split(' ').collect();
            let single = |w: &str| {
                let b = w.as_bytes();
                b.len() > 1 && (b[0] == b'+' || b[0] == b'-') && b[1] != b'@'
            };
            let mut i = 0;
            while i < words.len() {
                if single(words[i]) {
                    let start = i;
                    while i < words.len() && single(words[i]) {
                        i += 1;
                    }
                    words[start..i].sort_unstable();
                } else {
                    i += 1;
                }
            }
            words.join(" ")
        })
        .collect();
    lines.join("\r\n")
}

fn differential(shards: &str) {
    let redis = TestServer::start(ServerKind::Redis, &[]);
    let ours = TestServer::start(ServerKind::Shardis, &["--shards", shards]);
    for (n, session) in SCRIPT.iter().enumerate() {
        let mut a = redis.conn();
        let mut b = ours.conn();
        for cmd in session.iter() {
            let args: Vec<&[u8]> = cmd.iter().map(|s| s.as_bytes()).collect();
            let want = a.cmd(&args);
            let got = b.cmd(&args);
            assert_eq!(
                canonical(&got),
                canonical(&want),
                "session {n}, command {:?} ({shards} shards)",
                cmd
            );
        }
    }
    // The log: same entries apart from the times and the client lines.
    let fields = |c: &mut RespConn| -> Vec<Vec<String>> {
        arr(&c.call(&["acl", "log"]))
            .iter()
            .map(|e| {
                let f = arr(e);
                assert_eq!(f.len(), 14, "{:?}", e);
                let s: Vec<String> = f
                    .iter()
                    .map(|x| {
                        x.as_str()
                            .map(String::from)
                            .or_else(|| x.as_int().map(|i| i.to_string()))
                            .unwrap_or_default()
                    })
                    .collect();
                assert!(s[13].contains(" user="), "{:?}", s);
                s[..10].to_vec()
            })
            .collect()
    };
    let want = fields(&mut redis.conn());
    let got = fields(&mut ours.conn());
    assert!(!want.is_empty());
    assert_eq!(got, want, "ACL LOG ({shards} shards)");
}

#[test]
fn acl_differential_one_shard() {
    differential("1");
}

#[test]
fn acl_differential_four_shards() {
    differential("4");
}

#[test]
fn acl_genpass_and_log_reset() {
    let s = TestServer::start(ServerKind::Shardis, &["--shards", "2"]);
    let mut c = s.conn();
    let p = c.call(&["acl", "genpass"]);
    let p = p.as_str().expect("bulk");
    assert_eq!(p.len(), 64);
    assert!(p.bytes().all(|b| b.is_ascii_hexdigit()));
    let p5 = c.call(&["acl", "genpass", "5"]);
    assert_eq!(p5.as_str().map(str::len), Some(2));
    assert!(c.call(&["auth", "nobody", "x"]).is_error());
    assert!(c.call(&["auth", "nobody", "x"]).is_error());
    let log = c.call(&["acl", "log"]);
    let entries = arr(&log);
    assert_eq!(entries.len(), 1);
    assert_eq!(arr(&entries[0])[1].as_int(), Some(2), "merged count");
    assert_eq!(c.call(&["acl", "log", "reset"]).as_str(), Some("OK"));
    assert_eq!(arr(&c.call(&["acl", "log"])).len(), 0);
}

#[test]
fn acl_deluser_disconnects_and_client_list_names_the_user() {
    let s = TestServer::start(ServerKind::Shardis, &["--shards", "4"]);
    let mut admin = s.conn();
    let ok = |r: Reply| assert_eq!(r.as_str(), Some("OK"), "{:?}", r);
    ok(admin.call(&["acl", "setuser", "carl", "on", ">pw", "~*", "+@all"]));
    // Several connections, so some land on other shards than the admin's.
    let mut users: Vec<RespConn> = (0..6).map(|_| s.conn()).collect();
    for u in users.iter_mut() {
        ok(u.call(&["auth", "carl", "pw"]));
        assert_eq!(u.call(&["acl", "whoami"]).as_str(), Some("carl"));
    }
    let info = users[0].call(&["client", "info"]);
    assert!(
        info.as_str().is_some_and(|l| l.contains(" user=carl ")),
        "{:?}",
        info
    );
    // A rule change reaches connections on every shard.
    ok(admin.call(&["acl", "setuser", "carl", "-get"]));
    for u in users.iter_mut() {
        wait_until("the new rule applies", Duration::from_secs(10), || {
            u.call(&["get", "a"]).is_error()
        });
    }
    assert_eq!(admin.call(&["acl", "deluser", "carl"]).as_int(), Some(1));
    for u in users.iter_mut() {
        let (_, closed) = u.read_until_close(Duration::from_secs(10));
        assert!(closed, "a deleted user's connection is closed");
    }
    assert!(admin.call(&["client", "kill", "user", "carl"]).is_error());
    assert_eq!(admin.call(&["ping"]).as_str(), Some("PONG"));
}

#[test]
fn acl_requirepass_sets_the_default_password() {
    let s = TestServer::start(ServerKind::Shardis, &["--shards", "2"]);
    let mut c = s.conn();
    assert_eq!(
        c.call(&["config", "set", "requirepass", "secret"]).as_str(),
        Some("OK")
    );
    let mut other = s.conn();
    wait_until("AUTH is required", Duration::from_secs(10), || {
        let mut fresh = s.conn();
        fresh.call(&["get", "a"]).is_error()
    });
    let r = other.call(&["auth", "wrong"]);
    assert!(r.is_error(), "{:?}", r);
    assert_eq!(other.call(&["auth", "secret"]).as_str(), Some("OK"));
    assert_eq!(
        other.call(&["auth", "default", "secret"]).as_str(),
        Some("OK")
    );
    let list = c.call(&["acl", "list"]);
    let line = arr(&list)[0].as_str().unwrap_or("").to_string();
    assert!(line.starts_with("user default on #"), "{line}");
    assert_eq!(
        c.call(&["config", "set", "requirepass", ""]).as_str(),
        Some("OK")
    );
    wait_until("no AUTH needed", Duration::from_secs(10), || {
        let mut fresh = s.conn();
        !fresh.call(&["get", "a"]).is_error()
    });
}

#[test]
fn acl_file_load_and_save() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("users.acl");
    std::fs::write(
        &path,
        "user default on nopass ~* &* +@all\nuser dan on >dpw ~d* +get\n",
    )
    .expect("write");
    let p = path.to_str().expect("utf8");
    let s = TestServer::start(ServerKind::Shardis, &["--aclfile", p]);
    let mut c = s.conn();
    assert_eq!(
        c.call(&["acl", "users"]),
        Reply::Array(vec![
            Reply::Bulk(b"dan".to_vec()),
            Reply::Bulk(b"default".to_vec())
        ])
    );
    assert_eq!(c.call(&["auth", "dan", "dpw"]).as_str(), Some("OK"));
    assert!(c.call(&["get", "x"]).is_error());
    assert!(!c.call(&["get", "d1"]).is_error());
    let mut admin = s.conn();
    assert_eq!(
        admin
            .call(&["acl", "setuser", "eve", "on", "nopass", "+ping"])
            .as_str(),
        Some("OK")
    );
    assert_eq!(admin.call(&["acl", "save"]).as_str(), Some("OK"));
    let saved = std::fs::read_to_string(&path).expect("read");
    assert!(
        saved.contains("user eve on nopass resetchannels -@all +ping\n"),
        "{saved}"
    );
    // LOAD from a file without dan: dan's connection goes.
    std::fs::write(&path, "user default on nopass ~* &* +@all\n").expect("write");
    assert_eq!(admin.call(&["acl", "load"]).as_str(), Some("OK"));
    let (_, closed) = c.read_until_close(Duration::from_secs(10));
    assert!(closed);
    std::fs::write(&path, "user bad +nosuch\n").expect("write");
    let r = admin.call(&["acl", "load"]);
    assert!(r.is_error(), "{:?}", r);
    assert_eq!(arr(&admin.call(&["acl", "users"])).len(), 1);
}
