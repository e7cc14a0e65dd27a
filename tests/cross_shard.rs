//! The cross-shard path: a command for another shard's key runs directly under that shard's
//! lock when it is free, and hops to the owner when it is not (see `shard`'s module comment).
//! Whichever way each command goes, a connection's replies come back in request order and
//! every command sees the connection's earlier writes.

mod common;

use common::{RespConn, ServerKind, TestServer};

/// Sums `field=N` over the `shardN:` lines of INFO shards.
fn info_shards_sum(conn: &mut RespConn, field: &str) -> u64 {
    let info = conn.call(&["INFO", "shards"]);
    let text =
        String::from_utf8_lossy(info.as_bytes().expect("INFO is a bulk string")).into_owned();
    let prefix = format!("{field}=");
    text.lines()
        .filter(|l| l.starts_with("shard"))
        .flat_map(|l| l.split([':', ',']))
        .filter_map(|kv| kv.trim().strip_prefix(prefix.as_str()))
        .map(|v| v.parse::<u64>().expect("a counter"))
        .sum()
}

/// Eight clients pipeline writes and reads of their own keys, spread over both shards, while
/// the others do the same: the owners' locks are taken by turns, so some commands run
/// directly and others may hop. Every reply must be the one its position in the pipeline
/// asks for.
#[test]
fn pipelined_commands_over_shards_keep_order_direct_or_hopped() {
    let server = TestServer::start(ServerKind::Shardis, &["--shards", "2"]);
    let port = server.port();
    const CLIENTS: usize = 8;
    const ROUNDS: usize = 60;
    const KEYS: usize = 16;
    let workers: Vec<_> = (0..CLIENTS)
        .map(|id| {
            std::thread::spawn(move || {
                let mut c = RespConn::connect(port).expect("connect");
                for round in 0..ROUNDS {
                    // One pipeline: SET each key, INCR a counter per key, GET each key back.
                    let mut expect: Vec<Vec<u8>> = Vec::new();
                    let mut pipe = Vec::new();
                    for k in 0..KEYS {
                        let key = format!("c{id}:k{k}");
                        let value = format!("v{round}");
                        pipe.extend(common::resp::encode_command(&[
                            b"SET",
                            key.as_bytes(),
                            value.as_bytes(),
                        ]));
                        expect.push(b"+OK\r\n".to_vec());
                        let counter = format!("c{id}:n{k}");
                        pipe.extend(common::resp::encode_command(&[b"INCR", counter.as_bytes()]));
                        expect.push(format!(":{}\r\n", round + 1).into_bytes());
                    }
                    for k in 0..KEYS {
                        let key = format!("c{id}:k{k}");
                        pipe.extend(common::resp::encode_command(&[b"GET", key.as_bytes()]));
                        let value = format!("v{round}");
                        expect.push(format!("${}\r\n{}\r\n", value.len(), value).into_bytes());
                    }
                    c.send_raw(&pipe);
                    for (i, want) in expect.iter().enumerate() {
                        let got = c.read_reply();
                        assert_eq!(
                            String::from_utf8_lossy(&got),
                            String::from_utf8_lossy(want),
                            "client {id}, round {round}, reply {i}"
                        );
                    }
                }
            })
        })
        .collect();
    for w in workers {
        w.join().expect("a client thread failed");
    }
    let mut c = server.conn();
    // Half the keys are the other shard's for each connection: those ran there directly or
    // hopped, and the direct path must have been taken (the locks are free most of the time).
    let direct = info_shards_sum(&mut c, "direct_in");
    let hopped = info_shards_sum(&mut c, "hops_in");
    let total = (CLIENTS * ROUNDS * KEYS * 3) as u64;
    assert!(direct > 0, "no command ran directly (hops_in={hopped})");
    assert!(
        direct + hopped > total / 4 && direct + hopped < total * 3 / 4,
        "about half of {total} commands should be cross-shard: direct {direct}, hopped {hopped}"
    );
}
