//! shardis: a Redis 7.0 compatible in-memory data server, built as an io_uring shard-per-core
//! engine.
//!
//! The whole architecture in a page:
//!
//! - `shard`: one pinned thread per core, each running a single-threaded event loop on its own
//!   io_uring ring (epoll when the ring is unavailable), behind the narrow `shard::io::Io`
//!   interface. Each shard owns the keys of the hash slots mapped to it (`slot mod N`) and has
//!   its own SO_REUSEPORT listener; a connection lives on the shard that accepted it.
//! - `protocol`: RESP2/RESP3 parsing of requests (multibulk and inline) and the reply writer.
//! - `server`: per-connection state (`Client`), the dispatcher (lookup, arity, auth, routing)
//!   and the state shared by all shards (`Server`: config, client registry, statistics).
//! - `commands`: the command table, declared as data, and one file per command family. A data
//!   command is a plain function over a `storage::Keyspace`; it never does I/O.
//! - `storage`: the keyspace of a shard, organized per slot, values and their encodings,
//!   expiry.
//! - `config`: typed configuration, redis.conf and command-line parsing, CONFIG GET/SET.
//! - `persistence`: the RDB file format, SAVE/BGSAVE (a forked child writes the snapshot while
//!   the shards keep serving), the save rules, loading at start-up and `--check-rdb`.
//! - `replication`: the one ordered stream of propagated commands (for replicas and the AOF),
//!   and the master side of SYNC/PSYNC.
//!
//! A command whose keys all live on the connection's home shard runs inline. Keys on one other
//! shard: the command travels to the owner over a bounded queue and the reply comes back in
//! order. Keys on several shards: the home thread takes the involved shards' locks in shard
//! order and runs the command over all of them at once, so no client sees half of it (see
//! `shard`).

#[global_allocator]
static GLOBAL: alloc::Counting = alloc::Counting;

pub mod acl;
pub mod alloc;
pub mod commands;
pub mod config;
pub mod latency;
pub mod log;
pub mod persistence;
pub mod protocol;
pub mod pubsub;
pub mod replication;
pub mod scripting;
pub mod server;
pub mod shard;
pub mod storage;
pub mod syscheck;
pub mod tracking;
pub mod util;
pub mod watchdog;
