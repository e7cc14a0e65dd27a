//! Replication commands of the master side: SYNC, PSYNC, REPLCONF (see `crate::replication`).

use super::{flag, Cmd};
use crate::replication::{failover, info, master, replica};

const SYNC_FLAGS: u32 = flag::ADMIN | flag::NOSCRIPT | flag::NO_MULTI;

const REPLICAOF_FLAGS: u32 = flag::ADMIN | flag::NOSCRIPT | flag::STALE;

pub static COMMANDS: [Cmd; 8] = [
    Cmd::conn("wait", 3, flag::NOSCRIPT, master::wait).with_acl(&["slow", "connection"]),
    Cmd::conn("replicaof", 3, REPLICAOF_FLAGS, replica::replicaof_command).with_acl(&[
        "admin",
        "slow",
        "dangerous",
    ]),
    Cmd::conn("slaveof", 3, REPLICAOF_FLAGS, replica::replicaof_command).with_acl(&[
        "admin",
        "slow",
        "dangerous",
    ]),
    Cmd::conn(
        "role",
        1,
        flag::NOSCRIPT | flag::LOADING | flag::STALE | flag::FAST,
        info::role,
    )
    .with_acl(&["admin", "fast", "dangerous"]),
    Cmd::conn(
        "failover",
        -1,
        flag::ADMIN | flag::NOSCRIPT | flag::STALE,
        failover::command,
    )
    .with_acl(&["admin", "slow", "dangerous"]),
    Cmd::conn("sync", 1, SYNC_FLAGS, master::sync).with_acl(&["admin", "slow", "dangerous"]),
    Cmd::conn("psync", -3, SYNC_FLAGS, master::psync).with_acl(&["admin", "slow", "dangerous"]),
    Cmd::conn(
        "replconf",
        -1,
        flag::ADMIN | flag::NOSCRIPT | flag::LOADING | flag::STALE | flag::ALLOW_BUSY,
        master::replconf,
    )
    .with_acl(&["admin", "slow", "dangerous"]),
];
