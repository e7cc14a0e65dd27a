//! Replication: the ordered command stream every write feeds (`feed`), the master side of
//! the replication protocol (`master`: SYNC/PSYNC, REPLCONF, WAIT, the master's PING,
//! min-replicas; `fullsync`: the RDB a replica starts from, by a forked child to disk or to
//! its socket), the replica side (`replica`: REPLICAOF, the link to our master that loads
//! its RDB and applies its stream, chaining, promotion), and what INFO and ROLE show (`info`).
//!
//! The stream is also what the AOF logs; see `feed` for how shards feed it in order.

pub mod failover;
pub mod feed;
pub mod fullsync;
pub mod info;
pub mod master;
pub mod replica;

pub use feed::{Feed, Op, ReplicaSink};
