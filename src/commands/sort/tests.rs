//! Handler-level tests for SORT and SORT_RO.
//!
//! `recorded` holds scripts replayed on redis-server 7.0.15 with the exact reply bytes it gave,
//! in RESP2 and RESP3, over two shards here so that BY and GET patterns read keys of both (see
//! `commands::zset::tests` for the harness). One detail of the recording: Redis reads `errno`
//! after `strtod` without clearing it, so after one `ERANGE` every later numeric SORT fails
//! until some unrelated system call fails with another error; the recorder made a `chdir`
//! fail (CONFIG SET dir to a missing directory) before each command, so the replies are those
//! of a fresh `errno`, which is what shardis models.

mod recorded;

pub(crate) use crate::commands::zset::tests::run_script;
