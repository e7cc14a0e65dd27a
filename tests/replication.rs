//! Replication between real binaries over TCP, both ways with real redis-server 7.0: a shardis
//! replica (4 shards) of a Redis master and a Redis replica of a shardis master (4 shards),
//! each synchronised while a writer keeps changing every type, then compared with DEBUG
//! DIGEST; links broken with CLIENT KILL resume with a partial resync (`sync_partial_ok` on the
//! master); READONLY; promotion with REPLICAOF NO ONE and a sibling resuming partially;
//! chained replicas with equal offsets.

mod common;

use common::{wait_for, wait_until, Reply, RespConn, ServerKind, TestServer};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

const SYNC_TIMEOUT: Duration = Duration::from_secs(60);

fn start(kind: ServerKind, extra: &[&str]) -> TestServer {
    let mut args = vec![
        "--enable-debug-command",
        "yes",
        "--repl-diskless-sync-delay",
        "0",
    ];
    if kind == ServerKind::Shardis {
        args.extend(["--shards", "4"]);
    }
    args.extend_from_slice(extra);
    TestServer::start(kind, &args)
}

fn replica_of(kind: ServerKind, master: &TestServer, extra: &[&str]) -> TestServer {
    let port = master.port().to_string();
    let mut args = vec!["--replicaof", "127.0.0.1", port.as_str()];
    args.extend_from_slice(extra);
    start(kind, &args)
}

fn field(s: &TestServer, section: &str, name: &str) -> String {
    s.info_field(section, name).unwrap_or_default()
}

fn offset(s: &TestServer) -> u64 {
    field(s, "replication", "master_repl_offset")
        .parse()
        .unwrap_or(0)
}

/// Waits until the replica's link is up and it applied everything the master streamed.
fn wait_caught_up(master: &TestServer, replica: &TestServer) {
    wait_until("replica caught up", SYNC_TIMEOUT, || {
        field(replica, "replication", "master_link_status") == "up"
            && offset(master) > 0
            && offset(replica) == offset(master)
    });
}

/// Waits until both hold the same dataset. The master's active expiry may delete a key (and
/// stream its DEL) between two DEBUG DIGEST calls, so equality is awaited rather than sampled
/// once; a real divergence never converges and fails with both digests.
fn wait_same(master: &TestServer, replica: &TestServer, what: &str) {
    let mut last = (String::new(), String::new());
    let deadline = std::time::Instant::now() + SYNC_TIMEOUT;
    while std::time::Instant::now() < deadline {
        wait_caught_up(master, replica);
        last = (digest(master), digest(replica));
        if last.0 == last.1 && offset(master) == offset(replica) {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("{what}: datasets differ: {} vs {}", last.0, last.1);
}

fn digest(s: &TestServer) -> String {
    match s.conn().call(&["DEBUG", "DIGEST"]) {
        Reply::Status(b) | Reply::Bulk(b) => String::from_utf8_lossy(&b).into_owned(),
        other => panic!("DEBUG DIGEST: {other:?}"),
    }
}

/// One round of writes over every type, in two databases, with expiries, deletions and a
/// transaction. `i` varies the keys and values.
fn write_round(c: &mut RespConn, i: u64) {
    let k = |p: &str| format!("{p}:{}", i % 50);
    let v = i.to_string();
    let cmds: Vec<Vec<String>> = vec![
        vec!["SELECT".into(), (i % 2).to_string()],
        vec!["SET".into(), k("s"), v.clone()],
        vec!["INCRBY".into(), k("n"), "3".into()],
        vec!["APPEND".into(), k("s"), "x".into()],
        vec!["RPUSH".into(), k("l"), v.clone(), "b".into(), "c".into()],
        vec!["LPOP".into(), k("l")],
        vec!["SADD".into(), k("set"), v.clone(), "m".into()],
        vec!["SREM".into(), k("set"), "m".into()],
        vec![
            "HSET".into(),
            k("h"),
            "f".into(),
            v.clone(),
            "g".into(),
            "1".into(),
        ],
        vec!["HINCRBY".into(), k("h"), "g".into(), "2".into()],
        vec!["ZADD".into(), k("z"), (i % 7).to_string(), v.clone()],
        vec!["ZINCRBY".into(), k("z"), "1.5".into(), v.clone()],
        vec!["PFADD".into(), k("hll"), v.clone()],
        vec!["SET".into(), k("ttl"), v.clone(), "PX".into(), "150".into()],
        vec!["EXPIRE".into(), k("n"), "1000".into()],
        vec!["MSET".into(), k("a"), v.clone(), k("b"), v.clone()],
        vec!["MULTI".into()],
        vec!["INCR".into(), k("tx")],
        vec!["LPUSH".into(), k("txl"), v.clone()],
        vec!["EXEC".into()],
    ];
    for cmd in &cmds {
        let args: Vec<&str> = cmd.iter().map(|s| s.as_str()).collect();
        let r = c.call(&args);
        assert!(!r.is_error(), "{cmd:?}: {r:?}");
    }
    if i.is_multiple_of(10) {
        c.call(&["DEL", &k("l"), &k("set")]);
    }
}

/// A writer thread on `port` until `stop`.
fn writer(port: u16, stop: Arc<AtomicBool>, start_at: u64) -> std::thread::JoinHandle<u64> {
    std::thread::spawn(move || {
        let mut c = RespConn::connect(port).expect("connect writer");
        let mut i = start_at;
        while !stop.load(Ordering::Relaxed) {
            write_round(&mut c, i);
            i += 1;
        }
        i
    })
}

fn load_during(port: u16, what: impl FnOnce()) {
    let stop = Arc::new(AtomicBool::new(false));
    let w = writer(port, stop.clone(), 0);
    what();
    stop.store(true, Ordering::Relaxed);
    let rounds = w.join().expect("writer");
    assert!(rounds > 0, "the writer made no progress");
}

fn partial_ok(master: &TestServer) -> u64 {
    field(master, "stats", "sync_partial_ok")
        .parse()
        .unwrap_or(0)
}

fn full_syncs(master: &TestServer) -> u64 {
    field(master, "stats", "sync_full").parse().unwrap_or(0)
}

/// Initial data, a sync under load, a comparison, then a link killed under load that must
/// resume with +CONTINUE.
fn interop(master_kind: ServerKind, replica_kind: ServerKind) {
    let master = start(master_kind, &["--repl-backlog-size", "100mb"]);
    {
        let mut c = master.conn();
        for i in 0..300 {
            write_round(&mut c, 10_000 + i);
        }
    }
    let mut replica = None;
    load_during(master.port(), || {
        replica = Some(replica_of(replica_kind, &master, &[]));
        std::thread::sleep(Duration::from_millis(1500));
    });
    let replica = replica.expect("replica");
    wait_same(&master, &replica, "after the full sync");
    let dbsize = master.conn().call(&["DBSIZE"]).as_int().unwrap_or(0);
    assert!(dbsize > 0, "empty dataset");

    let before_partial = partial_ok(&master);
    let before_full = full_syncs(&master);
    load_during(master.port(), || {
        std::thread::sleep(Duration::from_millis(300));
        let killed = replica
            .conn()
            .call(&["CLIENT", "KILL", "TYPE", "master"])
            .as_int();
        assert_eq!(killed, Some(1), "the replica has one master link");
        wait_until("partial resync", SYNC_TIMEOUT, || {
            partial_ok(&master) > before_partial
        });
        std::thread::sleep(Duration::from_millis(300));
    });
    wait_caught_up(&master, &replica);
    assert_eq!(
        full_syncs(&master),
        before_full,
        "the link resumed with a full sync"
    );
    wait_same(&master, &replica, "after the partial resync");
}

#[test]
fn shardis_replica_of_redis_master() {
    interop(ServerKind::Redis, ServerKind::Shardis);
}

#[test]
fn redis_replica_of_shardis_master() {
    interop(ServerKind::Shardis, ServerKind::Redis);
}

#[test]
fn replica_rejects_writes_and_keeps_expired_keys_for_the_master() {
    let master = start(ServerKind::Shardis, &[]);
    let replica = replica_of(ServerKind::Shardis, &master, &[]);
    let mut m = master.conn();
    m.call(&["SET", "k", "v"]);
    m.call(&["DEBUG", "SET-ACTIVE-EXPIRE", "0"]);
    m.call(&["SET", "short", "v", "PX", "100"]);
    wait_caught_up(&master, &replica);
    let mut r = replica.conn();
    assert_eq!(r.call(&["GET", "k"]).as_str(), Some("v"));
    let err = r.call(&["SET", "k", "w"]);
    assert_eq!(
        err.as_str(),
        Some("READONLY You can't write against a read only replica.")
    );
    // Inside MULTI the error aborts the transaction, as in Redis.
    r.call(&["MULTI"]);
    assert!(r.call(&["INCR", "k"]).is_error());
    assert!(r.call(&["EXEC"]).is_error());
    std::thread::sleep(Duration::from_millis(200));
    // Logically expired: absent for clients, but still held until the master deletes it.
    assert_eq!(r.call(&["GET", "short"]), Reply::Null);
    assert_eq!(r.call(&["DBSIZE"]).as_int(), Some(2));
    // The master's lazy expiry propagates the DEL.
    assert_eq!(m.call(&["GET", "short"]), Reply::Null);
    wait_caught_up(&master, &replica);
    assert_eq!(r.call(&["DBSIZE"]).as_int(), Some(1));
    let role = r.call(&["ROLE"]);
    let Reply::Array(items) = role else {
        panic!("ROLE: {role:?}")
    };
    assert_eq!(items.first().and_then(|r| r.as_str()), Some("slave"));
    assert_eq!(items.get(3).and_then(|r| r.as_str()), Some("connected"));
}

#[test]
fn writable_replica_expires_its_own_keys_only() {
    let master = start(ServerKind::Shardis, &[]);
    let replica = replica_of(ServerKind::Shardis, &master, &[]);
    let mut m = master.conn();
    m.call(&["DEBUG", "SET-ACTIVE-EXPIRE", "0"]);
    m.call(&["SET", "theirs", "v", "PX", "50"]);
    wait_caught_up(&master, &replica);
    let mut r = replica.conn();
    assert_eq!(
        r.call(&["CONFIG", "SET", "replica-read-only", "no"])
            .as_str(),
        Some("OK")
    );
    assert_eq!(
        r.call(&["SET", "mine", "v", "PX", "50"]).as_str(),
        Some("OK")
    );
    // Our own key with a deadline is deleted by the replica's active expiry; the master's
    // expired key stays until the master's DEL.
    wait_until("the replica's own key expired", SYNC_TIMEOUT, || {
        r.call(&["DBSIZE"]).as_int() == Some(1)
    });
    assert_eq!(r.call(&["GET", "theirs"]), Reply::Null);
    // A write deletes the master's logically expired key and creates it anew, without TTL.
    assert_eq!(r.call(&["INCR", "theirs"]).as_int(), Some(1));
    assert_eq!(r.call(&["TTL", "theirs"]).as_int(), Some(-1));
}

#[test]
fn chain_promotion_and_sibling_partial_resync() {
    let master = start(ServerKind::Shardis, &[]);
    let a = replica_of(ServerKind::Shardis, &master, &[]);
    let b = replica_of(ServerKind::Shardis, &master, &[]);
    let chained = replica_of(ServerKind::Shardis, &a, &[]);
    load_during(master.port(), || {
        std::thread::sleep(Duration::from_millis(800));
    });
    wait_caught_up(&master, &a);
    wait_caught_up(&master, &b);
    wait_caught_up(&a, &chained);
    // The master's PINGs move its offset too: wait until the chain has caught up with it.
    wait_until(
        "chained offset equals the master's",
        Duration::from_secs(20),
        || offset(&chained) == offset(&master),
    );
    wait_same(&master, &a, "replica");
    wait_same(&master, &chained, "chained replica");

    // Promote a; b follows it and must continue where it was, not resync in full.
    let ok = a.conn().call(&["REPLICAOF", "NO", "ONE"]);
    assert_eq!(ok.as_str(), Some("OK"));
    assert_eq!(field(&a, "replication", "role"), "master");
    assert_ne!(
        field(&a, "replication", "master_replid2"),
        "0000000000000000000000000000000000000000"
    );
    let before = partial_ok(&a);
    let before_full = full_syncs(&a);
    let port = a.port().to_string();
    b.conn().call(&["REPLICAOF", "127.0.0.1", &port]);
    wait_until("b resumed from a", SYNC_TIMEOUT, || partial_ok(&a) > before);
    a.conn().call(&["SET", "after-promotion", "1"]);
    wait_caught_up(&a, &b);
    wait_caught_up(&a, &chained);
    assert_eq!(
        full_syncs(&a),
        before_full,
        "a sibling or the chained replica resynced in full"
    );
    wait_same(&a, &b, "sibling after promotion");
    wait_same(&a, &chained, "chained replica after promotion");
    let v = wait_for("write on b", SYNC_TIMEOUT, || {
        b.conn()
            .call(&["GET", "after-promotion"])
            .as_str()
            .map(String::from)
    });
    assert_eq!(v, "1");
}

#[test]
fn wait_counts_replicas_that_acknowledged() {
    let master = start(ServerKind::Shardis, &[]);
    let ours = replica_of(ServerKind::Shardis, &master, &[]);
    let theirs = replica_of(ServerKind::Redis, &master, &[]);
    wait_until("two replicas online", SYNC_TIMEOUT, || {
        field(&master, "replication", "connected_slaves") == "2"
    });
    let mut m = master.conn();
    for i in 0..20 {
        let v = i.to_string();
        assert_eq!(m.call(&["SET", "w", &v]).as_str(), Some("OK"));
        assert_eq!(m.call(&["WAIT", "2", "0"]).as_int(), Some(2), "WAIT 2 0");
        // Acknowledged means applied: both replicas hold the write now.
        assert_eq!(ours.conn().call(&["GET", "w"]).as_str(), Some(v.as_str()));
        assert_eq!(theirs.conn().call(&["GET", "w"]).as_str(), Some(v.as_str()));
    }
    // Both replicas acknowledged the last write already: Redis answers 2, not 1 (the
    // GETACKs the previous WAITs added to the stream are not waited for).
    assert_eq!(m.call(&["WAIT", "1", "0"]).as_int(), Some(2), "WAIT 1 0");
    // More replicas than there are: the timeout answers with how many did.
    assert_eq!(m.call(&["WAIT", "3", "200"]).as_int(), Some(2));
    assert!(ours.conn().call(&["WAIT", "1", "0"]).is_error());

    // min-replicas-to-write: writes refused while too few replicas are attached.
    m.call(&["CONFIG", "SET", "min-replicas-to-write", "3"]);
    assert_eq!(
        m.call(&["SET", "x", "1"]).as_str(),
        Some("NOREPLICAS Not enough good replicas to write.")
    );
    assert_eq!(m.call(&["GET", "w"]).as_str(), Some("19"));
    m.call(&["CONFIG", "SET", "min-replicas-to-write", "2"]);
    assert_eq!(m.call(&["SET", "x", "1"]).as_str(), Some("OK"));
}

/// Clients blocked on a replica are served by the master's replicated writes, as Redis's
/// replica serves them after applying its master's command: XREAD BLOCK on a read-only
/// replica (keys on several of its shards), BLPOP and BZPOPMIN on a writable one. A
/// blocking write command on a read-only replica is refused, not blocked.
#[test]
fn replica_blocked_clients_wake_on_replicated_writes() {
    for master_kind in [ServerKind::Shardis, ServerKind::Redis] {
        let master = start(master_kind, &[]);
        let ro = replica_of(ServerKind::Shardis, &master, &[]);
        let rw = replica_of(ServerKind::Shardis, &master, &["--replica-read-only", "no"]);
        let mut m = master.conn();
        m.call(&["XADD", "s1", "1-1", "f", "v"]);
        m.call(&["XADD", "s2", "1-1", "f", "v"]);
        wait_caught_up(&master, &ro);
        wait_caught_up(&master, &rw);

        let mut refused = ro.conn();
        let r = refused.call(&["BLPOP", "l", "0"]);
        assert_eq!(
            r.as_str(),
            Some("READONLY You can't write against a read only replica."),
            "{master_kind:?}"
        );

        // Three blocked clients, then the master's writes.
        let mut xread = ro.conn();
        xread.send(&[
            b"XREAD", b"BLOCK", b"0", b"STREAMS", b"s1", b"s2", b"$", b"$",
        ]);
        let mut blpop = rw.conn();
        blpop.send(&[b"BLPOP", b"l1", b"l2", b"0"]);
        let mut bzpop = rw.conn();
        bzpop.send(&[b"BZPOPMIN", b"z", b"0"]);
        wait_until("three blocked clients", SYNC_TIMEOUT, || {
            field(&ro, "clients", "blocked_clients") == "1"
                && field(&rw, "clients", "blocked_clients") == "2"
        });
        m.call(&["XADD", "s2", "2-1", "k", "w"]);
        m.call(&["RPUSH", "l2", "a", "b"]);
        m.call(&["ZADD", "z", "3", "m"]);

        let got = common::decode(&xread.read_reply()).expect("a reply");
        let streams = got.as_array().expect("XREAD reply");
        assert_eq!(streams.len(), 1, "{master_kind:?}: {got:?}");
        let s = streams[0].as_array().expect("stream entry");
        assert_eq!(s[0].as_str(), Some("s2"));
        let entries = s[1].as_array().expect("entries");
        assert_eq!(
            entries[0].as_array().expect("entry")[0].as_str(),
            Some("2-1")
        );

        let got = common::decode(&blpop.read_reply()).expect("a reply");
        let pair: Vec<_> = got
            .as_array()
            .expect("BLPOP reply")
            .iter()
            .map(|r| r.as_str().unwrap_or_default().to_string())
            .collect();
        assert_eq!(pair, ["l2", "a"], "{master_kind:?}");
        let got = common::decode(&bzpop.read_reply()).expect("a reply");
        let triple: Vec<_> = got
            .as_array()
            .expect("BZPOPMIN reply")
            .iter()
            .map(|r| r.as_str().unwrap_or_default().to_string())
            .collect();
        assert_eq!(triple, ["z", "m", "3"], "{master_kind:?}");
        assert_eq!(field(&ro, "clients", "blocked_clients"), "0");
        assert_eq!(field(&rw, "clients", "blocked_clients"), "0");
    }
}

/// DEBUG CHANGE-REPL-ID starts a new history on the master (`changeReplicationId` +
/// `clearReplicationId2`): a replica that reconnects asking to continue the old id must
/// resync in full, and then follows the new id.
#[test]
fn debug_change_repl_id_forces_a_full_resync() {
    let master = start(ServerKind::Shardis, &[]);
    let replica = replica_of(ServerKind::Shardis, &master, &[]);
    master.conn().call(&["SET", "k", "1"]);
    wait_caught_up(&master, &replica);
    let old = field(&master, "replication", "master_replid");
    assert_eq!(field(&replica, "replication", "master_replid"), old);
    let fulls = full_syncs(&master);
    let partials = partial_ok(&master);

    let mut m = master.conn();
    assert_eq!(m.call(&["DEBUG", "CHANGE-REPL-ID"]).as_str(), Some("OK"));
    let new = field(&master, "replication", "master_replid");
    assert_ne!(new, old);
    assert_eq!(new.len(), 40);
    assert_eq!(
        field(&master, "replication", "master_replid2"),
        "0000000000000000000000000000000000000000"
    );
    assert_eq!(field(&master, "replication", "second_repl_offset"), "-1");
    assert!(m.call(&["DEBUG", "CHANGE-REPL-ID", "x"]).is_error());

    m.call(&["CLIENT", "KILL", "TYPE", "replica"]);
    m.call(&["SET", "k", "2"]);
    wait_until("the replica follows the new replid", SYNC_TIMEOUT, || {
        field(&replica, "replication", "master_replid") == new
    });
    wait_caught_up(&master, &replica);
    assert_eq!(full_syncs(&master), fulls + 1, "no full resync");
    assert_eq!(partial_ok(&master), partials, "continued the old history");
    assert_eq!(replica.conn().call(&["GET", "k"]).as_str(), Some("2"));
}

/// REPLICAOF host port answers the clients blocked while the server was a master with
/// Redis's -UNBLOCKED error and closes their connections (`disconnectAllBlockedClients`,
/// `CLIENT_CLOSE_AFTER_REPLY`): the new master's stream must not serve them (the suite's
/// "BLPOP followed by role change, issue #2473"). A command pipelined behind the BLPOP never
/// runs; a client in WAIT (a replica attached but never acknowledging) gets the same; both
/// errors count in errorstats.
#[test]
fn replicaof_unblocks_clients_blocked_as_a_master() {
    const UNBLOCKED: &str =
        "UNBLOCKED force unblock from blocking operation, instance state changed (master -> replica?)";
    let master = start(ServerKind::Shardis, &[]);
    let b = start(ServerKind::Shardis, &[]);
    // A replica that never acknowledges keeps WAIT 1 0 blocked.
    let mut silent = b.conn();
    silent.call(&["REPLCONF", "listening-port", "1"]);
    silent.send(&[b"SYNC"]);
    wait_until("the silent replica attached", SYNC_TIMEOUT, || {
        field(&b, "replication", "connected_slaves") == "1"
    });
    let mut waiting = b.conn();
    waiting.call(&["SET", "w", "1"]);
    waiting.send(&[b"WAIT", b"1", b"0"]);
    let mut blocked = b.conn();
    let mut pipeline = common::resp::encode_command(&[b"BLPOP", b"foo", b"0"]);
    pipeline.extend(common::resp::encode_command(&[b"SET", b"after", b"1"]));
    blocked.send_raw(&pipeline);
    wait_until("one blocked client", SYNC_TIMEOUT, || {
        field(&b, "clients", "blocked_clients") == "1"
    });
    let port = master.port().to_string();
    assert_eq!(
        b.conn().call(&["REPLICAOF", "127.0.0.1", &port]).as_str(),
        Some("OK")
    );
    for (what, conn) in [("BLPOP", &mut blocked), ("WAIT", &mut waiting)] {
        let (bytes, closed) = conn.read_until_close(SYNC_TIMEOUT);
        assert_eq!(
            bytes,
            format!("-{UNBLOCKED}\r\n").as_bytes(),
            "{what}: {}",
            common::show(&bytes)
        );
        assert!(closed, "{what}: the connection stays open");
    }
    assert_eq!(
        field(&b, "errorstats", "errorstat_UNBLOCKED"),
        "count=2",
        "errorstats"
    );
    // Only the waiting client's SET ran: the one pipelined behind BLPOP was never read.
    let set_stats = field(&b, "commandstats", "cmdstat_set");
    assert!(set_stats.starts_with("calls=1,"), "{set_stats}");
    // Linked first, so the RPUSH reaches b through the stream (a master with no replica yet
    // has no offset to wait for).
    wait_until("b linked", SYNC_TIMEOUT, || {
        field(&b, "replication", "master_link_status") == "up"
    });
    master.conn().call(&["RPUSH", "foo", "a", "b", "c"]);
    wait_caught_up(&master, &b);
    let list = b.conn().call(&["LRANGE", "foo", "0", "-1"]);
    let items: Vec<_> = list
        .as_array()
        .expect("LRANGE reply")
        .iter()
        .map(|r| r.as_str().unwrap_or_default().to_string())
        .collect();
    assert_eq!(items, ["a", "b", "c"]);
    assert_eq!(field(&b, "clients", "blocked_clients"), "0");
}
