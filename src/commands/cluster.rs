//! CLUSTER as a server with `cluster-enabled no` answers it: every subcommand exists in the
//! command table (so COMMAND, scripts and MULTI see Redis's arity and flags, and CLUSTER RESET
//! is refused inside a script) and replies that cluster support is disabled, exactly as Redis
//! 7.0 does in that mode. Cluster mode itself belongs to the cluster module when it lands.

use super::{flag, Cmd};
use crate::protocol::Out;
use crate::server::ConnCtx;
use bytes::Bytes;

pub static COMMANDS: [Cmd; 1] = [Cmd::container("cluster", 0, &CLUSTER_SUBS)];

const ADMIN: u32 = flag::ADMIN | flag::STALE;

const fn sub(name: &'static str, arity: i32, flags: u32) -> Cmd {
    Cmd::conn(name, arity, flags, disabled).with_acl(&["slow"])
}

pub static CLUSTER_SUBS: [Cmd; 27] = [
    sub("addslots", -3, ADMIN),
    sub("addslotsrange", -4, ADMIN),
    sub("bumpepoch", 2, ADMIN),
    sub("count-failure-reports", 3, ADMIN),
    sub("countkeysinslot", 3, flag::STALE),
    sub("delslots", -3, ADMIN),
    sub("delslotsrange", -4, ADMIN),
    sub("failover", -2, ADMIN),
    sub("flushslots", 2, ADMIN),
    sub("forget", 3, ADMIN),
    sub("getkeysinslot", 4, flag::STALE),
    sub("help", 2, flag::LOADING | flag::STALE),
    sub("info", 2, flag::STALE),
    sub("keyslot", 3, flag::STALE),
    sub("links", 2, flag::STALE),
    sub("meet", -4, ADMIN),
    sub("myid", 2, flag::STALE),
    sub("nodes", 2, flag::STALE),
    sub("replicas", 3, ADMIN),
    sub("replicate", 3, ADMIN),
    sub("reset", -2, ADMIN | flag::NOSCRIPT),
    sub("saveconfig", 2, ADMIN),
    sub("set-config-epoch", 3, ADMIN),
    sub("setslot", -4, ADMIN),
    sub("shards", 2, flag::STALE),
    sub("slaves", 3, ADMIN),
    sub("slots", 2, flag::STALE),
];

fn disabled(_ctx: &mut ConnCtx, _args: &[Bytes], out: &mut Out) {
    out.error("ERR This instance has cluster support disabled");
}
