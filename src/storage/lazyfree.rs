//! Lazy freeing: large values and whole databases are dropped on a helper thread, so UNLINK of
//! a ten-million-element set or FLUSHALL ASYNC never stalls a shard's loop.
//!
//! A shard detaches what it deletes (the keyspace no longer holds it) and hands it here; the
//! `lazyfree` thread, started on first use, drops it. Like Redis's `lazyfreeFreeObject`, only
//! values whose freeing costs more than `FREE_EFFORT_MIN` steps (elements of a hash-table or
//! skiplist collection, nodes of a quicklist) travel: dropping a small value inline is cheaper
//! than the hand-off. Counters feed INFO (`lazyfree_pending_objects`, `lazyfreed_objects`).
//!
//! The queue is unbounded on purpose, as Redis's background-job list is: bounding it would make
//! the shard wait for the helper, the stall this module exists to avoid. Its size is visible as
//! `lazyfree_pending_objects`.
//!
//! Which deletions go lazily follows the `lazyfree-lazy-*` settings (`limits::LAZY`, which
//! also decide whether a deletion is propagated as DEL or UNLINK).

use super::db::Db;
use super::value::Value;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{channel, Sender};
use std::sync::{Mutex, OnceLock};

/// Redis's LAZYFREE_THRESHOLD: values cheaper to free than this are dropped inline.
const FREE_EFFORT_MIN: usize = 64;

static PENDING: AtomicU64 = AtomicU64::new(0);
static FREED: AtomicU64 = AtomicU64::new(0);

/// (objects waiting to be freed, objects freed lazily since start).
pub fn stats() -> (u64, u64) {
    (
        PENDING.load(Ordering::Relaxed),
        FREED.load(Ordering::Relaxed),
    )
}

/// CONFIG RESETSTAT: `lazyfreed_objects` starts over (as Redis's `lazyfreeResetStats`).
pub fn reset_stats() {
    FREED.store(0, Ordering::Relaxed);
}

/// Something to drop on the helper thread, with the object count it stands for.
struct Job {
    garbage: Box<dyn Send>,
    objects: u64,
}

fn queue() -> Option<Sender<Job>> {
    static QUEUE: OnceLock<Mutex<Sender<Job>>> = OnceLock::new();
    let tx = QUEUE.get_or_init(|| {
        let (tx, rx) = channel::<Job>();
        let spawned = std::thread::Builder::new()
            .name("lazyfree".into())
            .spawn(move || {
                run_in_background();
                while let Ok(job) = rx.recv() {
                    drop(job.garbage);
                    PENDING.fetch_sub(job.objects, Ordering::Relaxed);
                    FREED.fetch_add(job.objects, Ordering::Relaxed);
                    if PENDING.load(Ordering::Relaxed) == 0 {
                        // The queue is drained: purge the arenas' emptied ranges (program
                        // wide) here rather than in a shard's loop.
                        crate::alloc::collect();
                    }
                }
            });
        if spawned.is_err() {
            crate::log_warning!("Can't start the lazyfree thread: freeing inline");
        }
        Mutex::new(tx)
    });
    tx.lock().ok().map(|t| t.clone())
}

/// Makes the calling thread (the helper) a background thread that never delays a shard.
///
/// The helper is started by the first shard that frees something big, and a thread inherits
/// its creator's CPU affinity: it would be pinned to that shard's CPU and share it with the
/// shard, the scheduler giving each a slice of milliseconds in turn while a client waits
/// (seen with `perf sched timehist`: every run of `lazyfree` on the shard's CPU, the shard
/// runnable and waiting up to 3.7 ms behind it). So it takes the process's CPUs (the main
/// thread's set), and the `SCHED_IDLE` policy: it runs on a CPU no shard needs, and a shard
/// that wakes preempts it at once. Under full load it still progresses, slowly (the kernel
/// gives idle-policy threads a minimal share), and memory is released when load eases, which
/// `lazyfree_pending_objects` shows meanwhile.
fn run_in_background() {
    // SAFETY: a zeroed cpu_set_t is an empty set and a zeroed sched_param is priority 0 (the
    // only priority of SCHED_IDLE); the calls only read or fill these locals and apply to the
    // calling thread (id 0).
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        let size = std::mem::size_of::<libc::cpu_set_t>();
        if libc::sched_getaffinity(libc::getpid(), size, &mut set) == 0 {
            libc::sched_setaffinity(0, size, &set);
        }
        let param: libc::sched_param = std::mem::zeroed();
        if libc::sched_setscheduler(0, libc::SCHED_IDLE, &param) != 0 {
            crate::log_verbose!("lazyfree: SCHED_IDLE refused; running at normal priority");
        }
    }
}

fn hand_off(garbage: Box<dyn Send>, objects: u64) {
    let Some(tx) = queue() else {
        return drop(garbage);
    };
    PENDING.fetch_add(objects, Ordering::Relaxed);
    if let Err(returned) = tx.send(Job { garbage, objects }) {
        // The helper is gone (it could not start): free here.
        PENDING.fetch_sub(objects, Ordering::Relaxed);
        drop(returned.0.garbage);
    }
}

/// Redis's `lazyfreeGetFreeEffort`: roughly the allocations freeing `v` walks.
pub fn free_effort(v: &Value) -> usize {
    match v {
        Value::Str(_) => 1,
        Value::List(l) => l.nodes().count(),
        Value::Hash(h) if !h.is_packed() => h.len(),
        Value::Set(s) if s.encoding() == "hashtable" => s.len(),
        Value::ZSet(z) if z.encoding() == "skiplist" => z.len(),
        // Each node is an allocation, and so is each group and its pending entries (the
        // first group's PEL stands for every group's, as in Redis: constant time).
        Value::Stream(st) => {
            let pel = st.groups.values().next().map_or(0, |g| g.pel.len());
            st.node_count() + st.groups.len() * (1 + pel)
        }
        _ => 1,
    }
}

/// Frees a deleted value: on the helper thread when it is big, else right here.
pub fn free_value(v: Value) {
    if free_effort(&v) > FREE_EFFORT_MIN {
        hand_off(Box::new(v), 1);
    }
}

/// Frees a detached database (FLUSHDB/FLUSHALL ASYNC) on the helper thread.
pub fn free_db(db: Db) {
    let keys = db.keys as u64;
    if keys == 0 {
        return;
    }
    hand_off(Box::new(db), keys);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn big_values_are_freed_off_thread_and_counted() {
        let mut set = crate::storage::set::Set::new_table(1000);
        for i in 0..1000u32 {
            let _ = set.add(format!("m{i}").as_bytes());
        }
        let v = Value::Set(Box::new(set));
        assert!(free_effort(&v) > FREE_EFFORT_MIN);
        let before = stats().1;
        free_value(v);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while stats().1 == before && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        assert!(stats().1 > before, "the helper freed the set");
        assert_eq!(free_effort(&Value::from_bytes(b"x")), 1);
    }
}
