//! Many connections: 10,000 idle clients must not stop a server from serving a new one, and
//! `maxclients` refuses the client past the limit the way Redis does.
//!
//! The test process raises its RLIMIT_NOFILE soft limit to the hard limit (the servers it
//! starts inherit it); when the hard limit is too low for 10,000 connections the idle test
//! prints why and skips. The two idle tests hold 10,000 descriptors each, so they take turns.
//! `SHARDIS_IDLE_CONNECTIONS` changes the count.

mod common;

use common::{env_usize, show, wait_for, RespConn, ServerKind, TestServer};
use std::sync::Mutex;
use std::time::Duration;

/// Idle connections held open by default.
const IDLE_CONNECTIONS: usize = 10_000;
/// Descriptors the test process needs besides the idle connections.
const FD_SPARE: u64 = 512;
/// Connections opened between two checks that the server has accepted them all, so the
/// kernel's accept backlog never overflows (a dropped SYN costs a second of retransmit).
const CONNECT_BATCH: usize = 200;
/// What Redis 7.0 writes to a client past `maxclients` before closing it.
const MAX_CLIENTS_REPLY: &[u8] = b"-ERR max number of clients reached\r\n";
/// The `maxclients` of the limit tests.
const MAX_CLIENTS: usize = 100;

/// The idle tests take turns: together they would need twice the descriptors.
static MANY_DESCRIPTORS: Mutex<()> = Mutex::new(());

#[test]
fn idle_connections_redis() {
    idle_connections(ServerKind::Redis);
}

#[test]
fn idle_connections_shardis() {
    idle_connections(ServerKind::Shardis);
}

#[test]
fn maxclients_redis_refuses_the_next_client() {
    let redis = TestServer::start(
        ServerKind::Redis,
        &["--maxclients", &MAX_CLIENTS.to_string()],
    );
    let outcome = maxclients_outcome(&redis);
    assert_eq!(
        outcome,
        (MAX_CLIENTS_REPLY.to_vec(), true),
        "redis answered {} to client #{}",
        show(&outcome.0),
        MAX_CLIENTS + 1
    );
}

#[test]
fn maxclients_shardis_matches_redis() {
    let limit = MAX_CLIENTS.to_string();
    let redis = TestServer::start(ServerKind::Redis, &["--maxclients", &limit]);
    let shardis = TestServer::start(ServerKind::Shardis, &["--maxclients", &limit]);
    let expected = maxclients_outcome(&redis);
    let got = maxclients_outcome(&shardis);
    assert_eq!(
        got,
        expected,
        "client #{} past maxclients {MAX_CLIENTS}: shardis {} (closed: {}), redis {} (closed: {})",
        MAX_CLIENTS + 1,
        show(&got.0),
        got.1,
        show(&expected.0),
        expected.1
    );
}

/// Raises the soft RLIMIT_NOFILE to the hard limit and returns the new soft limit.
fn raise_nofile_limit() -> u64 {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `limit` is a valid rlimit for getrlimit to fill in.
    let got = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) };
    assert_eq!(got, 0, "getrlimit: {}", std::io::Error::last_os_error());
    if limit.rlim_cur < limit.rlim_max {
        limit.rlim_cur = limit.rlim_max;
        // SAFETY: `limit` is a valid rlimit whose soft limit does not exceed the hard one.
        let set = unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &limit) };
        assert_eq!(set, 0, "setrlimit: {}", std::io::Error::last_os_error());
    }
    limit.rlim_cur
}

fn ping(conn: &mut RespConn, what: &str) {
    let reply = conn.cmd(&[b"PING"]);
    assert_eq!(
        reply,
        b"+PONG\r\n",
        "{what}: PING answered {}",
        show(&reply)
    );
}

fn idle_connections(kind: ServerKind) {
    let _turn = MANY_DESCRIPTORS
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let count = env_usize("SHARDIS_IDLE_CONNECTIONS", IDLE_CONNECTIONS);
    let limit = raise_nofile_limit();
    if limit < count as u64 + FD_SPARE {
        println!(
            "SKIPPED: the RLIMIT_NOFILE hard limit is {limit}, and {count} idle connections \
             need {}",
            count as u64 + FD_SPARE
        );
        return;
    }
    // The default maxclients (10000) would refuse the new client this test needs.
    let max_clients = (count + 100).to_string();
    let server = TestServer::start(kind, &["--maxclients", &max_clients]);
    let mut idle = open_connections(&server, count);
    server.assert_alive();
    println!("{} holds {count} idle connections", kind.name());

    let mut fresh = server.conn();
    assert_eq!(fresh.cmd(&[b"SET", b"fresh", b"client"]), b"+OK\r\n");
    assert_eq!(fresh.cmd(&[b"GET", b"fresh"]), b"$6\r\nclient\r\n");

    // Each shard accepts from its own listener at its own pace: wait (with a deadline) until
    // every connection the kernel completed has been accepted.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while let Some(clients) = server.info_field("clients", "connected_clients") {
        let clients: usize = clients.parse().expect("connected_clients is a number");
        if clients > count {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "connected_clients is {clients} with {count} idle + 1 open"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    // Every idle connection is still served: all PINGs first, then all replies.
    for conn in idle.iter_mut() {
        conn.send(&[b"PING"]);
    }
    for (i, conn) in idle.iter_mut().enumerate() {
        let reply = conn.read_reply();
        assert_eq!(
            reply,
            b"+PONG\r\n",
            "idle connection #{i} answered {}",
            show(&reply)
        );
    }
    drop(idle);
    if server.info_field("clients", "connected_clients").is_some() {
        wait_for(
            "the idle clients to be gone",
            Duration::from_secs(30),
            || {
                let clients: usize = server
                    .info_field("clients", "connected_clients")?
                    .parse()
                    .ok()?;
                (clients <= 2).then_some(())
            },
        );
    }
    ping(&mut fresh, "the new client after the idle ones left");
    server.assert_alive();
}

/// Opens `count` connections, checking every `CONNECT_BATCH` that the server has taken them.
fn open_connections(server: &TestServer, count: usize) -> Vec<RespConn> {
    let mut conns = Vec::with_capacity(count);
    for i in 0..count {
        let conn = RespConn::connect(server.port())
            .unwrap_or_else(|e| panic!("idle connection #{i} of {count}: {e}"));
        conns.push(conn);
        if (i + 1) % CONNECT_BATCH == 0 {
            // Accepts are in order: an answer on the newest means all before it were taken.
            ping(
                conns.last_mut().expect("just pushed"),
                &format!("idle connection #{i}"),
            );
        }
    }
    conns
}

/// Fills a server with `MAX_CLIENTS` clients, returns what the next one receives and whether
/// the server closed it, and checks that a slot freed by a leaving client can be reused.
fn maxclients_outcome(server: &TestServer) -> (Vec<u8>, bool) {
    let mut clients: Vec<RespConn> = (0..MAX_CLIENTS).map(|_| server.conn()).collect();
    for (i, conn) in clients.iter_mut().enumerate() {
        ping(conn, &format!("client #{} of {MAX_CLIENTS}", i + 1));
    }
    let mut extra = server.conn();
    let outcome = extra.read_until_close(Duration::from_secs(10));
    drop(clients.pop());
    let mut replacement = wait_for("a client slot to free up", Duration::from_secs(20), || {
        // Until then the server refuses new clients: errors here are expected.
        let mut conn = RespConn::connect(server.port()).ok()?;
        conn.try_send_raw(b"*1\r\n$4\r\nPING\r\n").ok()?;
        (conn.try_read_reply().ok()? == b"+PONG\r\n").then_some(conn)
    });
    ping(&mut replacement, "the client that replaced a leaving one");
    server.assert_alive();
    outcome
}

/// A second server on a port another one listens on must refuse to start, as redis-server
/// does, rather than join the first one's SO_REUSEPORT group and take half its connections.
#[test]
fn a_second_server_on_a_busy_port_refuses_to_start() {
    let first = TestServer::start(ServerKind::Shardis, &["--shards", "2"]);
    let dir = tempfile::tempdir().expect("tempdir");
    let out = std::process::Command::new(ServerKind::Shardis.binary())
        .args(["--port", &first.port().to_string(), "--shards", "2"])
        .current_dir(dir.path())
        .output()
        .expect("run a second server");
    let log =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "the second server started: {log}");
    assert!(
        log.contains("bind: Address already in use") && log.contains("Failed listening on port"),
        "unexpected output: {log}"
    );
    first.assert_alive();
    let mut c = first.conn();
    c.send(&[b"PING"]);
    assert_eq!(c.read_reply(), b"+PONG\r\n");
}
