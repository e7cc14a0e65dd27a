//! Replication: the ordered command stream every write feeds (`feed`), and the master side of
//! the replication protocol (`master`: SYNC/PSYNC, REPLCONF, replicas' output).
//!
//! The stream is also what the AOF logs; see `feed` for how shards feed it in order.

pub mod feed;
pub mod info;
pub mod master;
pub mod replica;

pub use feed::{Feed, Op, ReplicaSink};
