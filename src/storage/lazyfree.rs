//! Lazy freeing: large values and whole databases are dropped on a helper thread, so UNLINK of
//! a ten-million-element set or FLUSHALL ASYNC never stalls a shard's loop.
//!
//! A shard detaches what it deletes (the keyspace no longer holds it) and hands it here; the
//! `lazyfree` thread, started on first use, drops it. That thread never takes CPU time a shard
//! wants (`SCHED_IDLE`, see `run_in_background`) and returns what it freed to the OS itself
//! (`Purger`), so neither the freeing nor mimalloc's later purge runs in a shard's loop. Like Redis's `lazyfreeFreeObject`, only
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

/// What the helper drops.
enum Garbage {
    Value(Value),
    Db(Db),
}

/// Something to drop on the helper thread, with the object count it stands for.
struct Job {
    garbage: Garbage,
    objects: u64,
}

/// Bytes the helper frees between two purges of the allocator (see `Purger`).
const PURGE_EVERY_BYTES: isize = 64 << 20;
/// Bytes freed since the last purge that make the helper purge once its queue is drained.
/// This last purge does most of the work (strace, FLUSHALL ASYNC of 4M keys: about half of
/// the helper's 7700 `madvise` calls): with 8 MB here instead, the shard made those 3800
/// calls itself, as with no purging on the helper at all. Not yet understood why the purges
/// every `PURGE_EVERY_BYTES` during the free leave that much; measured, not derived.
const PURGE_AT_DRAIN_BYTES: isize = 1 << 20;

/// Gives the memory the helper frees back to the OS from the helper itself.
///
/// mimalloc returns emptied ranges to the OS ("purges", `madvise`) a delay after they were
/// freed, in whichever thread next asks the arenas to collect: under load that is a shard
/// taking a page, or its cron collection. A shard then spent tens of milliseconds in
/// `madvise` for memory the helper freed (`perf trace` after a FLUSHALL ASYNC of 4M keys:
/// 207 calls on `shard-0` in one 23 ms burst). So the helper forces a purge itself after
/// every `PURGE_EVERY_BYTES` it frees and when its queue drains (`PURGE_AT_DRAIN_BYTES`),
/// before any range is due elsewhere; a database is freed a chunk of slots at a time so that
/// this happens during a long free too.
struct Purger {
    /// The helper's allocation counter at the last purge (or its highest since).
    mark: isize,
}

impl Purger {
    fn new() -> Purger {
        Purger {
            mark: crate::alloc::thread_used(),
        }
    }

    /// Purges when `at_least` bytes were freed since the last purge.
    fn tick(&mut self, at_least: isize) {
        let now = crate::alloc::thread_used();
        if self.mark - now >= at_least.max(1) {
            crate::alloc::purge();
            self.mark = crate::alloc::thread_used();
        } else if now > self.mark {
            self.mark = now;
        }
    }
}

fn queue() -> Option<Sender<Job>> {
    static QUEUE: OnceLock<Mutex<Sender<Job>>> = OnceLock::new();
    let tx = QUEUE.get_or_init(|| {
        let (tx, rx) = channel::<Job>();
        let spawned = std::thread::Builder::new()
            .name("lazyfree".into())
            .spawn(move || {
                run_in_background();
                let mut purger = Purger::new();
                while let Ok(job) = rx.recv() {
                    match job.garbage {
                        Garbage::Value(v) => drop(v),
                        Garbage::Db(mut db) => {
                            while db.slots.drop_last_chunk() {
                                purger.tick(PURGE_EVERY_BYTES);
                            }
                        }
                    }
                    PENDING.fetch_sub(job.objects, Ordering::Relaxed);
                    FREED.fetch_add(job.objects, Ordering::Relaxed);
                    if PENDING.load(Ordering::Relaxed) == 0 {
                        // The queue is drained: purge what was freed (program wide) here
                        // rather than in a shard's loop (see `PURGE_AT_DRAIN_BYTES`).
                        purger.tick(PURGE_AT_DRAIN_BYTES);
                        crate::alloc::collect();
                    } else {
                        purger.tick(PURGE_EVERY_BYTES);
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

fn hand_off(garbage: Garbage, objects: u64) {
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
        hand_off(Garbage::Value(v), 1);
    }
}

/// Frees a detached database (FLUSHDB/FLUSHALL ASYNC) on the helper thread.
pub fn free_db(db: Db) {
    let keys = db.keys as u64;
    if keys == 0 {
        return;
    }
    hand_off(Garbage::Db(db), keys);
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

    #[test]
    fn a_database_is_freed_chunk_by_chunk() {
        let mut db = Db::default();
        for i in 0..5000u32 {
            let key = format!("k{i}");
            let slot = crate::storage::key_slot(key.as_bytes());
            db.insert(
                slot,
                key.as_bytes(),
                super::super::db::Entry::new(Value::from_bytes(b"v")),
            );
        }
        let mut copy = Db::default();
        std::mem::swap(&mut copy, &mut db);
        // Every chunk with tables comes out once, then none.
        let mut chunks = 0;
        while copy.slots.drop_last_chunk() {
            chunks += 1;
        }
        assert!(chunks > 100 && chunks <= 1024, "{chunks}");
        assert!(copy.slots.used_from(0).next().is_none());
        assert!(!copy.slots.drop_last_chunk());
        let mut db = Db::default();
        db.insert(
            7,
            b"k",
            super::super::db::Entry::new(Value::from_bytes(b"v")),
        );
        let before = stats().1;
        free_db(db);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while stats().1 == before && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        assert!(stats().1 > before, "the helper freed the database");
    }
}
