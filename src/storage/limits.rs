//! Encoding thresholds (`*-max-listpack-*`, `set-max-intset-entries`...), readable from any
//! shard without locks. Config writes them at start-up and on CONFIG SET; value types read
//! them when deciding whether a collection stays compact.

use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};

pub struct EncodingLimits {
    pub list_max_listpack_size: AtomicI64,
    pub list_compress_depth: AtomicI64,
    pub hash_max_listpack_entries: AtomicI64,
    pub hash_max_listpack_value: AtomicI64,
    pub set_max_intset_entries: AtomicI64,
    pub zset_max_listpack_entries: AtomicI64,
    pub zset_max_listpack_value: AtomicI64,
    pub hll_sparse_max_bytes: AtomicI64,
    pub stream_node_max_bytes: AtomicI64,
    pub stream_node_max_entries: AtomicI64,
}

/// Defaults until config is applied at start-up (`apply`), which sets Redis 7.0's values
/// (the hash threshold here stays at 128, below Redis's 512, because handler-level tests
/// that run without a config rely on it).
pub static LIMITS: EncodingLimits = EncodingLimits {
    list_max_listpack_size: AtomicI64::new(-2),
    list_compress_depth: AtomicI64::new(0),
    hash_max_listpack_entries: AtomicI64::new(128),
    hash_max_listpack_value: AtomicI64::new(64),
    set_max_intset_entries: AtomicI64::new(512),
    zset_max_listpack_entries: AtomicI64::new(128),
    zset_max_listpack_value: AtomicI64::new(64),
    hll_sparse_max_bytes: AtomicI64::new(3000),
    stream_node_max_bytes: AtomicI64::new(4096),
    stream_node_max_entries: AtomicI64::new(100),
};

/// `lazyfree-lazy-*`: whether deletions of each origin free lazily, and so whether they are
/// propagated as UNLINK (lazy) or DEL, as Redis does.
pub struct LazyFree {
    pub expire: AtomicBool,
    pub user_del: AtomicBool,
    pub server_del: AtomicBool,
    pub eviction: AtomicBool,
    pub user_flush: AtomicBool,
}

pub static LAZY: LazyFree = LazyFree {
    expire: AtomicBool::new(false),
    user_del: AtomicBool::new(false),
    server_del: AtomicBool::new(false),
    eviction: AtomicBool::new(false),
    user_flush: AtomicBool::new(false),
};

/// Reads one lazy-free flag.
pub fn lazy(flag: &AtomicBool) -> bool {
    flag.load(Ordering::Relaxed)
}

/// Reads one threshold.
pub fn get(field: &AtomicI64) -> i64 {
    field.load(Ordering::Relaxed)
}

pub fn set(field: &AtomicI64, v: i64) {
    field.store(v, Ordering::Relaxed)
}

/// Copies the thresholds from a config (at start-up and after CONFIG SET).
pub fn apply(cfg: &crate::config::Config) {
    crate::pubsub::set_notify_flags(cfg.notify_keyspace_events);
    if let Some((_, mode)) = cfg.get(&[b"sanitize-dump-payload".as_slice()]).first() {
        crate::persistence::rdb::set_sanitize_dump(mode);
    }
    super::evict::apply(cfg);
    LAZY.expire
        .store(cfg.lazyfree_lazy_expire, Ordering::Relaxed);
    LAZY.user_del
        .store(cfg.lazyfree_lazy_user_del, Ordering::Relaxed);
    LAZY.server_del
        .store(cfg.lazyfree_lazy_server_del, Ordering::Relaxed);
    LAZY.eviction
        .store(cfg.lazyfree_lazy_eviction, Ordering::Relaxed);
    LAZY.user_flush
        .store(cfg.lazyfree_lazy_user_flush, Ordering::Relaxed);
    set(
        &LIMITS.list_max_listpack_size,
        cfg.list_max_listpack_size as i64,
    );
    set(&LIMITS.list_compress_depth, cfg.list_compress_depth as i64);
    set(
        &LIMITS.hash_max_listpack_entries,
        cfg.hash_max_listpack_entries as i64,
    );
    set(
        &LIMITS.hash_max_listpack_value,
        cfg.hash_max_listpack_value as i64,
    );
    set(
        &LIMITS.set_max_intset_entries,
        cfg.set_max_intset_entries as i64,
    );
    set(
        &LIMITS.zset_max_listpack_entries,
        cfg.zset_max_listpack_entries as i64,
    );
    set(
        &LIMITS.zset_max_listpack_value,
        cfg.zset_max_listpack_value as i64,
    );
    set(
        &LIMITS.hll_sparse_max_bytes,
        i64::try_from(cfg.hll_sparse_max_bytes).unwrap_or(i64::MAX),
    );
    set(
        &LIMITS.stream_node_max_bytes,
        i64::try_from(cfg.stream_node_max_bytes).unwrap_or(i64::MAX),
    );
    set(
        &LIMITS.stream_node_max_entries,
        i64::try_from(cfg.stream_node_max_entries).unwrap_or(i64::MAX),
    );
}
