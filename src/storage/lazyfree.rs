//! Lazy freeing: counters INFO reports (`lazyfree_pending_objects`, `lazyfreed_objects`).
//!
//! Values are freed inline today (UNLINK and the ASYNC flushes free like DEL and the SYNC
//! flushes); these counters are where a background freeing thread reports its work.

use std::sync::atomic::{AtomicU64, Ordering};

static PENDING: AtomicU64 = AtomicU64::new(0);
static FREED: AtomicU64 = AtomicU64::new(0);

/// (objects waiting to be freed, objects freed lazily since start).
pub fn stats() -> (u64, u64) {
    (
        PENDING.load(Ordering::Relaxed),
        FREED.load(Ordering::Relaxed),
    )
}
