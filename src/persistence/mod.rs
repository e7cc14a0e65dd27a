//! Persistence: the on-disk formats shared with Redis 7.0, and the machinery that writes and
//! reads them.
//!
//! - `rdb`: the RDB version 10 format, as a pure encoder/decoder over `Write`/`Read`.
//! - `child`: fork at a safe point (every shard held), run a job in the child over the
//!   copy-on-write image, reap it (`ChildKind::Rdb` for BGSAVE; the AOF rewrite will be
//!   `ChildKind::AofRewrite`).
//! - `snapshot`: SAVE, BGSAVE, the save rules and their cron, the save at shutdown, the
//!   shared `Persistence` state and INFO persistence.
//! - `load`: loading an RDB into the shards at start-up and for DEBUG RELOAD.
//! - `check`: `--check-rdb FILE` / `redis-check-rdb FILE`.
//!
//! The AOF (multi-part layout, manifest, fsync policy) will live beside them in `aof`,
//! reusing `child` for rewrites, `rdb` for RDB-preamble base files and `load` for them.

pub mod check;
pub mod child;
pub mod load;
pub mod rdb;
pub mod snapshot;

pub use snapshot::Persistence;
