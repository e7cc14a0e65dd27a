//! Generic key commands (minimal set; the full family is being written).

use super::{flag, Cmd, Keys};
use crate::protocol::Out;
use crate::storage::Keyspace;
use bytes::Bytes;

pub static COMMANDS: [Cmd; 3] = [
    Cmd::data("del", -2, flag::WRITE, Keys::Range(1, -1, 1), del)
        .with_acl(&["keyspace", "write", "slow"]),
    Cmd::data(
        "exists",
        -2,
        flag::READONLY | flag::FAST,
        Keys::Range(1, -1, 1),
        exists,
    )
    .with_acl(&["keyspace", "read", "fast"]),
    Cmd::data(
        "dbsize",
        1,
        flag::READONLY | flag::FAST | flag::ALL_SHARDS,
        Keys::None,
        dbsize,
    )
    .with_acl(&["keyspace", "read", "fast"]),
];

fn del(ks: &mut Keyspace, args: &[Bytes], out: &mut Out) {
    let mut n = 0;
    for k in &args[1..] {
        if ks.remove(k).is_some() {
            ks.signal_modified(k);
            ks.notify('g', "del", k);
            n += 1;
        }
    }
    ks.dirty(n as u64);
    out.int(n);
}

fn exists(ks: &mut Keyspace, args: &[Bytes], out: &mut Out) {
    let n = args[1..].iter().filter(|k| ks.exists(k)).count();
    out.int(n as i64);
}

fn dbsize(ks: &mut Keyspace, _args: &[Bytes], out: &mut Out) {
    out.int(ks.dbsize() as i64);
}
