//! Persistence: the on-disk formats shared with Redis 7.0.
//!
//! - `rdb`: the RDB version 10 format, as a pure encoder/decoder over `Write`/`Read`. SAVE,
//!   BGSAVE (fork, temp file, rename), start-up loading, replication's full sync and
//!   DUMP/RESTORE drive it; none of that scheduling lives here.
//!
//! The AOF (multi-part layout, manifest, fsync policy) will live beside it in `aof`, reusing
//! `rdb` for RDB-preamble base files.

pub mod rdb;
