//! Replication commands of the master side: SYNC, PSYNC, REPLCONF (see `crate::replication`).

use super::{flag, Cmd};
use crate::replication::master;

const SYNC_FLAGS: u32 = flag::ADMIN | flag::NOSCRIPT | flag::NO_MULTI;

pub static COMMANDS: [Cmd; 3] = [
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
