//! MIGRATE between real servers: shardis → shardis, shardis → redis-server and redis-server →
//! shardis, with COPY, REPLACE, AUTH, AUTH2, KEYS over several shards, the BUSYKEY and
//! connection errors, the connection cache, and the DEL a migration propagates to replicas.

mod common;

use common::{wait_until, Reply, RespConn, ServerKind, TestServer};
use std::time::{Duration, Instant};

fn shardis(extra: &[&str]) -> TestServer {
    let mut args = vec!["--shards", "4", "--enable-debug-command", "yes"];
    args.extend_from_slice(extra);
    TestServer::start(ServerKind::Shardis, &args)
}

fn redis() -> TestServer {
    TestServer::start(ServerKind::Redis, &["--enable-debug-command", "yes"])
}

fn text(r: &Reply) -> String {
    match r {
        Reply::Status(b) | Reply::Error(b) | Reply::Bulk(b) => String::from_utf8_lossy(b).into(),
        Reply::Int(n) => n.to_string(),
        other => format!("{other:?}"),
    }
}

fn call(c: &mut RespConn, args: &[&str]) -> String {
    text(&c.call(args))
}

fn migrate(c: &mut RespConn, to: &TestServer, key: &str, db: u32, rest: &[&str]) -> String {
    let port = to.port().to_string();
    let db = db.to_string();
    let mut args = vec!["MIGRATE", "127.0.0.1", &port, key, &db, "5000"];
    args.extend_from_slice(rest);
    call(c, &args)
}

/// A value of every type (both encodings where there are two) under `prefix`, plus a key
/// with a TTL; returns the keys.
fn fill(c: &mut RespConn, prefix: &str) -> Vec<String> {
    let k = |s: &str| format!("{prefix}{s}");
    call(c, &["SET", &k("str"), "hello"]);
    call(c, &["SET", &k("int"), "12345"]);
    call(c, &["RPUSH", &k("list"), "a", "b", "c"]);
    call(c, &["HSET", &k("hash"), "f1", "v1", "f2", "v2"]);
    call(c, &["SADD", &k("intset"), "1", "2", "3"]);
    call(c, &["SADD", &k("set"), "x", "y", "z"]);
    call(c, &["ZADD", &k("zset"), "1", "m1", "2.5", "m2"]);
    let big: Vec<String> = (0..300).map(|i| format!("member{i}")).collect();
    let mut zadd = vec!["ZADD".to_string(), k("bigzset")];
    for (i, m) in big.iter().enumerate() {
        zadd.push(i.to_string());
        zadd.push(m.clone());
    }
    let zadd: Vec<&str> = zadd.iter().map(String::as_str).collect();
    call(c, &zadd);
    call(c, &["PFADD", &k("hll"), "a", "b", "c"]);
    call(c, &["SET", &k("ttl"), "soon", "EX", "100"]);
    [
        "str", "int", "list", "hash", "intset", "set", "zset", "bigzset", "hll", "ttl",
    ]
    .iter()
    .map(|s| k(s))
    .collect()
}

/// Each key's DUMP payload's value as seen through type-specific reads, for comparison.
fn snapshot(c: &mut RespConn, key: &str) -> String {
    let ty = call(c, &["TYPE", key]);
    let body = match ty.as_str() {
        "string" => call(c, &["GET", key]),
        "list" => format!("{:?}", c.call(&["LRANGE", key, "0", "-1"])),
        "hash" => {
            let mut v = sorted(c.call(&["HGETALL", key]));
            v.sort();
            v.join(",")
        }
        "set" => sorted(c.call(&["SMEMBERS", key])).join(","),
        "zset" => format!("{:?}", c.call(&["ZRANGE", key, "0", "-1", "WITHSCORES"])),
        _ => String::new(),
    };
    format!("{ty}:{body}")
}

fn sorted(r: Reply) -> Vec<String> {
    let mut v: Vec<String> = r.as_array().unwrap_or_default().iter().map(text).collect();
    v.sort();
    v
}

fn ttl(c: &mut RespConn, key: &str) -> i64 {
    c.call(&["TTL", key]).as_int().unwrap_or(-3)
}

/// Moves every type from `from` to `to` (keys spread over shards, KEYS form, another db),
/// checks them there, gone here, TTL kept.
fn move_all(from: &TestServer, to: &TestServer) {
    let mut a = from.conn();
    let mut b = to.conn();
    let keys = fill(&mut a, "mv:");
    let before: Vec<String> = keys.iter().map(|k| snapshot(&mut a, k)).collect();
    let mut rest = vec!["KEYS"];
    rest.extend(keys.iter().map(String::as_str));
    rest.push("mv:missing");
    assert_eq!(migrate(&mut a, to, "", 3, &rest), "OK");
    for k in &keys {
        assert_eq!(call(&mut a, &["EXISTS", k]), "0", "{k} still on the source");
    }
    call(&mut b, &["SELECT", "3"]);
    let after: Vec<String> = keys.iter().map(|k| snapshot(&mut b, k)).collect();
    assert_eq!(before, after);
    let t = ttl(&mut b, "mv:ttl");
    assert!((90..=100).contains(&t), "ttl {t}");
    assert_eq!(ttl(&mut b, "mv:str"), -1);
    // The single-key form.
    call(&mut a, &["SET", "one", "1"]);
    assert_eq!(migrate(&mut a, to, "one", 3, &[]), "OK");
    assert_eq!(call(&mut b, &["GET", "one"]), "1");
    assert_eq!(call(&mut a, &["EXISTS", "one"]), "0");
}

#[test]
fn shardis_to_redis_and_redis_to_shardis() {
    let ours = shardis(&[]);
    let theirs = redis();
    move_all(&ours, &theirs);
    // And everything back, redis-server being the one migrating (RESTORE of its payloads).
    let mut r = theirs.conn();
    call(&mut r, &["SELECT", "3"]);
    call(&mut r, &["FLUSHDB"]);
    let keys = fill(&mut r, "back:");
    let before: Vec<String> = keys.iter().map(|k| snapshot(&mut r, k)).collect();
    let mut rest = vec!["KEYS"];
    rest.extend(keys.iter().map(String::as_str));
    assert_eq!(migrate(&mut r, &ours, "", 0, &rest), "OK");
    let mut s = ours.conn();
    let after: Vec<String> = keys.iter().map(|k| snapshot(&mut s, k)).collect();
    assert_eq!(before, after);
    assert!(ttl(&mut s, "back:ttl") > 0);
    assert_eq!(call(&mut r, &["DBSIZE"]), "0");
}

#[test]
fn shardis_to_shardis_copy_replace_busykey_nokey_and_cache() {
    let from = shardis(&[]);
    let to = shardis(&[]);
    move_all(&from, &to);
    let mut a = from.conn();
    let mut b = to.conn();
    assert!(call(&mut a, &["INFO", "stats"]).contains("migrate_cached_sockets:1"));

    // COPY keeps the source; without REPLACE an existing target key is BUSYKEY.
    call(&mut a, &["SET", "k", "v1"]);
    assert_eq!(migrate(&mut a, &to, "k", 0, &["COPY"]), "OK");
    assert_eq!(call(&mut a, &["GET", "k"]), "v1");
    call(&mut a, &["SET", "k", "v2"]);
    assert_eq!(
        migrate(&mut a, &to, "k", 0, &["COPY"]),
        "ERR Target instance replied with error: BUSYKEY Target key name already exists."
    );
    assert_eq!(call(&mut b, &["GET", "k"]), "v1");
    assert_eq!(migrate(&mut a, &to, "k", 0, &["COPY", "REPLACE"]), "OK");
    assert_eq!(call(&mut b, &["GET", "k"]), "v2");
    assert_eq!(call(&mut a, &["GET", "k"]), "v2");

    // Only acknowledged keys are deleted.
    for k in ["a", "b", "c", "d"] {
        call(&mut a, &["SET", k, "src"]);
    }
    call(&mut b, &["SET", "c", "taken"]);
    let r = migrate(&mut a, &to, "", 0, &["KEYS", "a", "b", "c", "d"]);
    assert!(
        r.starts_with("ERR Target instance replied with error: BUSYKEY"),
        "{r}"
    );
    assert_eq!(call(&mut a, &["EXISTS", "a", "b", "c", "d"]), "1");
    assert_eq!(call(&mut a, &["GET", "c"]), "src");
    assert_eq!(call(&mut b, &["GET", "c"]), "taken");

    // NOKEY, syntax.
    assert_eq!(migrate(&mut a, &to, "nothing", 0, &[]), "NOKEY");
    assert_eq!(
        migrate(&mut a, &to, "", 0, &["KEYS", "none1", "none2"]),
        "NOKEY"
    );
    assert_eq!(
        migrate(&mut a, &to, "c", 0, &["KEYS", "c"]),
        "ERR When using MIGRATE KEYS option, the key argument must be set to the empty string"
    );
    assert_eq!(migrate(&mut a, &to, "c", 0, &["AUTH"]), "ERR syntax error");
    assert_eq!(migrate(&mut a, &to, "c", 0, &["BOGUS"]), "ERR syntax error");

    // The target closes the cached connection: MIGRATE retries on a fresh one
    // transparently.
    let killed = call(
        &mut b,
        &["CLIENT", "KILL", "TYPE", "normal", "SKIPME", "yes"],
    );
    assert_eq!(killed, "1");
    call(&mut a, &["SET", "retry", "yes"]);
    assert_eq!(migrate(&mut a, &to, "retry", 0, &[]), "OK");
    assert_eq!(call(&mut b, &["GET", "retry"]), "yes");

    // Idle connections are closed after about 10 seconds.
    wait_until(
        "the idle MIGRATE connection closes",
        Duration::from_secs(30),
        || call(&mut a, &["INFO", "stats"]).contains("migrate_cached_sockets:0"),
    );
}

#[test]
fn auth_and_auth2() {
    let from = shardis(&[]);
    let to = shardis(&[]);
    let mut b = to.conn();
    assert_eq!(
        call(&mut b, &["CONFIG", "SET", "requirepass", "secret"]),
        "OK"
    );
    let mut a = from.conn();
    call(&mut a, &["RPUSH", "l", "1", "2"]);
    let r = migrate(&mut a, &to, "l", 0, &["COPY"]);
    assert!(
        r.starts_with("ERR Target instance replied with error: NOAUTH"),
        "{r}"
    );
    let r = migrate(&mut a, &to, "l", 0, &["COPY", "AUTH", "wrong"]);
    assert!(
        r.starts_with("ERR Target instance replied with error: WRONGPASS"),
        "{r}"
    );
    assert_eq!(migrate(&mut a, &to, "l", 0, &["AUTH", "secret"]), "OK");
    call(&mut a, &["SET", "s", "x"]);
    assert_eq!(
        migrate(&mut a, &to, "s", 0, &["AUTH2", "default", "secret"]),
        "OK"
    );
    assert_eq!(call(&mut b, &["LLEN", "l"]), "2");
    assert_eq!(call(&mut b, &["GET", "s"]), "x");
    assert_eq!(call(&mut a, &["EXISTS", "l", "s"]), "0");
}

#[test]
fn connection_and_read_timeouts_keep_the_key() {
    let from = shardis(&[]);
    let mut a = from.conn();
    call(&mut a, &["SET", "k", "v"]);
    // Nothing listens on this port.
    let dead = common::free_port().to_string();
    let r = call(&mut a, &["MIGRATE", "127.0.0.1", &dead, "k", "0", "500"]);
    assert_eq!(r, "IOERR error or timeout connecting to the client");
    assert_eq!(call(&mut a, &["GET", "k"]), "v");

    // A target that does not answer in time.
    let to = redis();
    let mut sleeper = to.conn();
    sleeper.send(&[b"DEBUG", b"SLEEP", b"2"]);
    let started = Instant::now();
    let port = to.port().to_string();
    let r = call(&mut a, &["MIGRATE", "127.0.0.1", &port, "k", "0", "300"]);
    assert!(r.starts_with("IOERR error or timeout"), "{r}");
    assert!(started.elapsed() < Duration::from_secs(30));
    assert_eq!(call(&mut a, &["GET", "k"]), "v");
    // The other shards kept serving meanwhile is not asserted (timing); the server is alive.
    from.assert_alive();
}

#[test]
fn migration_propagates_del_to_replicas() {
    let master = shardis(&[]);
    let port = master.port().to_string();
    let replica = shardis(&["--replicaof", "127.0.0.1", &port]);
    let to = shardis(&[]);
    let mut m = master.conn();
    let mut r = replica.conn();
    for i in 0..20 {
        call(&mut m, &["SET", &format!("key{i}"), "v"]);
    }
    call(&mut m, &["SET", "kept", "v"]);
    wait_until("the replica has the keys", Duration::from_secs(30), || {
        call(&mut r, &["DBSIZE"]) == "21"
    });
    let keys: Vec<String> = (0..20).map(|i| format!("key{i}")).collect();
    let mut rest = vec!["KEYS"];
    rest.extend(keys.iter().map(String::as_str));
    assert_eq!(migrate(&mut m, &to, "", 0, &rest), "OK");
    assert_eq!(call(&mut m, &["SET", "kept", "copied"]), "OK");
    assert_eq!(migrate(&mut m, &to, "kept", 0, &["COPY", "REPLACE"]), "OK");
    wait_until(
        "the replica drops the migrated keys",
        Duration::from_secs(30),
        || call(&mut r, &["DBSIZE"]) == "1" && call(&mut r, &["GET", "kept"]) == "copied",
    );
    assert_eq!(call(&mut to.conn(), &["DBSIZE"]), "21");
}
