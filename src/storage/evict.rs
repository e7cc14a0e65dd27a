//! maxmemory: the eviction settings every shard reads, Redis's LFU counter, and the eviction
//! pool.
//!
//! Settings (`maxmemory`, the policy, samples, tenacity, the LFU knobs) live in atomics written
//! at start-up and on CONFIG SET (`apply`), so the hot path reads them without locks.
//!
//! The LFU word of an entry follows Redis's 24-bit layout: the minutes clock (mod 2^16) of the
//! last decrement in bits 8..24 and a logarithmic counter (0..=255, new keys start at 5) in bits
//! 0..8. An access first decays the counter by one per `lfu-decay-time` minutes elapsed, then
//! increments it with probability `1 / ((counter - 5) * lfu-log-factor + 1)`.

use std::cell::Cell;
use std::sync::atomic::{AtomicU32, AtomicU64, AtomicU8, Ordering};

/// The counter a new key starts with (so it is not evicted before it had a chance).
pub const LFU_INIT_VAL: u32 = 5;

/// Policy codes as stored in `POLICY` (the same order as `config::MaxmemoryPolicy`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Policy {
    VolatileLru,
    VolatileLfu,
    VolatileRandom,
    VolatileTtl,
    AllkeysLru,
    AllkeysLfu,
    AllkeysRandom,
    Noeviction,
}

impl Policy {
    fn from_code(c: u8) -> Policy {
        use Policy::*;
        [
            VolatileLru,
            VolatileLfu,
            VolatileRandom,
            VolatileTtl,
            AllkeysLru,
            AllkeysLfu,
            AllkeysRandom,
        ]
        .get(c as usize)
        .copied()
        .unwrap_or(Noeviction)
    }

    /// The name CONFIG and INFO use.
    pub fn name(self) -> &'static str {
        match self {
            Policy::VolatileLru => "volatile-lru",
            Policy::VolatileLfu => "volatile-lfu",
            Policy::VolatileRandom => "volatile-random",
            Policy::VolatileTtl => "volatile-ttl",
            Policy::AllkeysLru => "allkeys-lru",
            Policy::AllkeysLfu => "allkeys-lfu",
            Policy::AllkeysRandom => "allkeys-random",
            Policy::Noeviction => "noeviction",
        }
    }

    pub fn is_lfu(self) -> bool {
        matches!(self, Policy::VolatileLfu | Policy::AllkeysLfu)
    }

    pub fn is_lru(self) -> bool {
        matches!(self, Policy::VolatileLru | Policy::AllkeysLru)
    }

    /// Whether only keys with an expiry may be evicted.
    pub fn volatile_only(self) -> bool {
        matches!(
            self,
            Policy::VolatileLru
                | Policy::VolatileLfu
                | Policy::VolatileRandom
                | Policy::VolatileTtl
        )
    }
}

pub struct Settings {
    pub maxmemory: AtomicU64,
    policy: AtomicU8,
    pub samples: AtomicU32,
    pub tenacity: AtomicU32,
    pub lfu_log_factor: AtomicU32,
    pub lfu_decay_time: AtomicU32,
}

pub static SETTINGS: Settings = Settings {
    maxmemory: AtomicU64::new(0),
    policy: AtomicU8::new(7),
    samples: AtomicU32::new(5),
    tenacity: AtomicU32::new(10),
    lfu_log_factor: AtomicU32::new(10),
    lfu_decay_time: AtomicU32::new(1),
};

pub fn policy() -> Policy {
    Policy::from_code(SETTINGS.policy.load(Ordering::Relaxed))
}

pub fn maxmemory() -> u64 {
    SETTINGS.maxmemory.load(Ordering::Relaxed)
}

/// Copies the eviction settings from a config (start-up and CONFIG SET).
pub fn apply(cfg: &crate::config::Config) {
    use crate::config::MaxmemoryPolicy as P;
    let code = match cfg.maxmemory_policy {
        P::VolatileLru => 0,
        P::VolatileLfu => 1,
        P::VolatileRandom => 2,
        P::VolatileTtl => 3,
        P::AllkeysLru => 4,
        P::AllkeysLfu => 5,
        P::AllkeysRandom => 6,
        P::Noeviction => 7,
    };
    SETTINGS.policy.store(code, Ordering::Relaxed);
    SETTINGS.maxmemory.store(cfg.maxmemory, Ordering::Relaxed);
    let s = &SETTINGS;
    s.samples.store(cfg.maxmemory_samples, Ordering::Relaxed);
    s.tenacity
        .store(cfg.maxmemory_eviction_tenacity, Ordering::Relaxed);
    s.lfu_log_factor
        .store(cfg.lfu_log_factor, Ordering::Relaxed);
    s.lfu_decay_time
        .store(cfg.lfu_decay_time, Ordering::Relaxed);
    if cfg.maxmemory != 0 {
        // Memory may be over the new limit: evict without waiting for a command (Redis's
        // `updateMaxmemory`).
        start_background();
    }
}

/// Redis's LFU minutes clock: Unix minutes mod 2^16.
fn lfu_minutes() -> u32 {
    (crate::util::lru_secs() / 60) & 0xFFFF
}

/// The LFU word of a new key.
pub fn lfu_new() -> u32 {
    (lfu_minutes() << 8) | LFU_INIT_VAL
}

/// Minutes since `ldt` on the 16-bit wrapping clock.
fn minutes_since(ldt: u32, now: u32) -> u32 {
    if now >= ldt {
        now - ldt
    } else {
        65535 - ldt + now
    }
}

/// The counter after decay (what OBJECT FREQ reports), without storing it.
pub fn lfu_decayed(word: u32) -> u32 {
    lfu_decayed_at(
        word,
        lfu_minutes(),
        SETTINGS.lfu_decay_time.load(Ordering::Relaxed),
    )
}

fn lfu_decayed_at(word: u32, now_min: u32, decay_time: u32) -> u32 {
    let ldt = (word >> 8) & 0xFFFF;
    let counter = word & 0xFF;
    // Decay time 0: the counter never decays.
    let periods = minutes_since(ldt, now_min)
        .checked_div(decay_time)
        .unwrap_or(0);
    counter.saturating_sub(periods)
}

thread_local! {
    /// The LFU increment's coin (xorshift64*), seeded per thread from the clock.
    static COIN: Cell<u64> = Cell::new(crate::util::now_us() | 1);
}

/// A uniform number in [0, 1).
fn coin() -> f64 {
    COIN.with(|state| {
        let mut x = state.get();
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        state.set(x);
        (x.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11) as f64 / (1u64 << 53) as f64
    })
}

/// A pseudo-random u64 of this thread (for sampling keys).
pub fn random_u64() -> u64 {
    COIN.with(|state| {
        let mut x = state.get();
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        state.set(x);
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    })
}

/// The logarithmic increment: likelier the smaller the counter.
fn lfu_log_incr(counter: u32, log_factor: u32, r: f64) -> u32 {
    if counter >= 255 {
        return 255;
    }
    let base = counter.saturating_sub(LFU_INIT_VAL) as f64;
    let p = 1.0 / (base * log_factor as f64 + 1.0);
    if r < p {
        counter + 1
    } else {
        counter
    }
}

/// A bit of an entry's LFU word, above Redis's 24: the value is a small integer stored while
/// maxmemory with an LRU or LFU policy kept Redis from sharing it (its
/// `MAXMEMORY_FLAG_NO_SHARED_INTEGERS`: such objects need their own access time), so OBJECT
/// REFCOUNT reports 1 for it rather than the shared objects' count.
pub const UNSHARED_INT: u32 = 1 << 31;
/// Redis's `OBJ_SHARED_INTEGERS`: 0..10000 are shared objects.
pub const SHARED_INTEGERS: i64 = 10_000;

/// Whether Redis would store a small integer as its shared object now.
pub fn shares_integers() -> bool {
    let p = policy();
    maxmemory() == 0 || !(p.is_lru() || p.is_lfu())
}

/// The LFU word after one access (decay, then increment, stamped with the current minute).
pub fn lfu_touch(word: u32) -> u32 {
    let now = lfu_minutes();
    let decay = SETTINGS.lfu_decay_time.load(Ordering::Relaxed);
    let counter = lfu_decayed_at(word, now, decay);
    let counter = lfu_log_incr(
        counter,
        SETTINGS.lfu_log_factor.load(Ordering::Relaxed),
        coin(),
    );
    (word & UNSHARED_INT) | (now << 8) | counter
}

/// The LFU word holding `freq` now (RESTORE ... FREQ, RDB load).
pub fn lfu_with_freq(freq: u8) -> u32 {
    (lfu_minutes() << 8) | freq as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lfu_counter_decays_per_period_and_wraps() {
        let word = (100 << 8) | 20;
        assert_eq!(lfu_decayed_at(word, 100, 1), 20);
        assert_eq!(lfu_decayed_at(word, 105, 1), 15);
        assert_eq!(lfu_decayed_at(word, 110, 2), 15);
        assert_eq!(lfu_decayed_at(word, 200, 1), 0);
        assert_eq!(
            lfu_decayed_at(word, 200, 0),
            20,
            "decay time 0: never decays"
        );
        // The 16-bit clock wrapped: 65535 - 65530 + 3 = 8 minutes.
        assert_eq!(lfu_decayed_at((65530 << 8) | 20, 3, 1), 12);
    }

    #[test]
    fn lfu_increment_is_logarithmic() {
        assert_eq!(lfu_log_incr(5, 10, 0.99), 6, "at the initial value: always");
        assert_eq!(lfu_log_incr(255, 10, 0.0), 255);
        assert_eq!(lfu_log_incr(15, 10, 0.5), 15, "p = 1/101");
        assert_eq!(lfu_log_incr(15, 10, 0.005), 16);
        // A million hits with factor 10 land near Redis's documented 255.
        let mut c = LFU_INIT_VAL;
        for _ in 0..1_000_000 {
            c = lfu_log_incr(c, 10, coin());
        }
        assert!(c >= 200, "counter after 1M hits: {c}");
    }
}

// ----- Eviction -----
//
// The budget is global (one `used_memory` for the process) and so is the choice of victims:
// like Redis's `performEvictions`, which samples every database into one pool, a pass samples
// every shard and evicts the best candidate among all of them, until memory is under the
// limit. A pass therefore needs every shard: it runs before a command (`admit_command`, from
// the connection's thread, holding no shard lock) and takes all the shard locks in ascending
// order, as any multi-shard operation does (see `shard`'s opening comment). Under the limit
// it costs one read of the memory counter and touches no other shard.
//
// Each shard keeps its own pool of the best candidates it has seen (Redis's EVPOOL_SIZE per
// shard rather than one for the process): the pass refills each shard's pool with
// `maxmemory-samples` keys per database, then evicts the best head among the pools. Scores
// are comparable across shards (idle seconds, 255 - LFU counter, or the deadline), so this is
// one pool of 16 per shard, never worse than Redis's single pool of 16.
//
// A pass stops after the tenacity time budget (`evictionTimeLimitUs`), checked every 16 keys
// as Redis does; eviction then continues from shard 0's cron (Redis's eviction timer proc),
// which also follows a CONFIG SET maxmemory.

use super::db::{Entry, ShardData};
use super::keyspace::Keyspace;
use crate::protocol::Out;
use std::sync::atomic::AtomicBool;

/// Redis's `-OOM` error for a DENYOOM command that cannot get memory.
pub const OOM: &str = "OOM command not allowed when used memory > 'maxmemory'.";
/// Candidates each shard's eviction pool keeps (Redis's EVPOOL_SIZE).
const POOL_SIZE: usize = 16;
/// Evictions between two checks of the time budget (as Redis).
const KEYS_PER_TIME_CHECK: usize = 16;
/// Sampling rounds a pass tries when every sampled candidate turned out gone, before it
/// reports that nothing is evictable.
const SAMPLE_ROUNDS_MAX: usize = 16;

/// What a pass concluded (Redis's EVICT_OK, EVICT_RUNNING, EVICT_FAIL).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Under the limit (or eviction does not apply now).
    Ok,
    /// Over the limit, but the time budget ran out: eviction continues in the cron.
    Running,
    /// Over the limit with nothing left that the policy may evict.
    Fail,
}

/// A key a pass evicted: (shard id, db, key).
pub type Evicted = (usize, usize, Box<[u8]>);

/// Set when a pass stopped for time (or maxmemory was lowered): shard 0's cron continues.
static RUNNING: AtomicBool = AtomicBool::new(false);

/// Asks the cron to run a pass soon (CONFIG SET maxmemory, as Redis's
/// `startEvictionTimeProc`).
pub fn start_background() {
    RUNNING.store(true, Ordering::Relaxed);
}

/// Whether the cron should run a pass.
pub fn running() -> bool {
    RUNNING.load(Ordering::Relaxed)
}

/// The best candidates seen so far, ascending by score (the best one last): Redis's eviction
/// pool, one per shard, kept across passes so each round of sampling improves on the last.
#[derive(Default, Debug)]
pub struct Pool {
    candidates: Vec<(u64, usize, Box<[u8]>)>,
}

impl Pool {
    fn offer(&mut self, score: u64, db: usize, key: &[u8]) {
        if let Some(at) = self
            .candidates
            .iter()
            .position(|(_, d, k)| *d == db && &**k == key)
        {
            // Sampled again: its score is fresher than the pooled one.
            self.candidates.remove(at);
        }
        if self.candidates.len() >= POOL_SIZE {
            match self.candidates.first() {
                Some((worst, _, _)) if *worst >= score => return,
                _ => {
                    self.candidates.remove(0);
                }
            }
        }
        let at = self.candidates.partition_point(|(s, _, _)| *s < score);
        self.candidates.insert(at, (score, db, key.into()));
    }

    fn best_score(&self) -> Option<u64> {
        self.candidates.last().map(|(s, _, _)| *s)
    }
}

/// How evictable an entry is under `policy` (higher = evict sooner).
fn score(policy: Policy, e: &Entry, now_secs: u32) -> u64 {
    match policy {
        Policy::AllkeysLru | Policy::VolatileLru => u64::from(now_secs.saturating_sub(e.lru_secs)),
        Policy::AllkeysLfu | Policy::VolatileLfu => u64::from(255 - lfu_decayed(e.lfu).min(255)),
        Policy::VolatileTtl => u64::MAX - e.expire_ms,
        _ => 0,
    }
}

/// Redis's eviction time budget for a tenacity (`evictionTimeLimitUs`); None = unlimited.
fn time_limit_us(tenacity: u32) -> Option<u64> {
    if tenacity <= 10 {
        Some(50 * u64::from(tenacity))
    } else if tenacity < 100 {
        Some((500.0 * 1.15f64.powi(tenacity as i32 - 10)) as u64)
    } else {
        None
    }
}

/// Keys of `shard` the policy may evict.
fn evictable(shard: &ShardData, volatile: bool) -> usize {
    shard
        .dbs
        .iter()
        .map(|d| if volatile { d.volatile } else { d.keys })
        .sum()
}

/// Visits about `count` random keys of each database of `shard` (only keys with an expiry
/// when `volatile`), as Redis's `dictGetSomeKeys`: from a random slot onwards, a share of
/// each non-empty table proportional to its size (at least one key), so a shard whose keys
/// sit in a few slots is sampled as well as one whose keys are spread over all of them.
fn sample(
    shard: &ShardData,
    volatile: bool,
    count: usize,
    mut visit: impl FnMut(usize, &[u8], &Entry),
) -> usize {
    let mut seen = 0;
    for (db_index, db) in shard.dbs.iter().enumerate() {
        let total = if volatile { db.volatile } else { db.keys };
        if total == 0 {
            continue;
        }
        let start = random_u64() as usize % super::SLOTS;
        let tables = db
            .slots
            .used_from(start)
            .chain(db.slots.used_from(0).take_while(|(s, _)| *s < start));
        let mut got = 0;
        for (_, t) in tables {
            if got >= count {
                break;
            }
            let len = if volatile { t.volatile } else { t.len() };
            if len == 0 {
                continue;
            }
            let share = (count * len).div_ceil(total).clamp(1, count - got);
            for _ in 0..share {
                let r = random_u64() as usize % t.len();
                let found = if volatile {
                    let mut it = t.iter().skip(r).chain(t.iter().take(r));
                    it.find(|(_, e)| e.expire_ms != 0)
                } else {
                    t.nth(r)
                };
                if let Some((k, e)) = found {
                    visit(db_index, k, e);
                    got += 1;
                }
            }
        }
        seen += got;
    }
    seen
}

/// The next key to evict among `shards` under `policy`: (index in `shards`, db, key). None
/// when nothing is evictable.
fn pick(shards: &mut [&mut ShardData], policy: Policy) -> Option<(usize, usize, Box<[u8]>)> {
    let volatile = policy.volatile_only();
    if matches!(policy, Policy::AllkeysRandom | Policy::VolatileRandom) {
        return pick_random(shards, volatile);
    }
    let samples = SETTINGS.samples.load(Ordering::Relaxed).max(1) as usize;
    let now = crate::util::lru_secs();
    for _ in 0..SAMPLE_ROUNDS_MAX {
        let mut any = false;
        for shard in shards.iter_mut() {
            if evictable(shard, volatile) == 0 {
                continue;
            }
            any = true;
            let mut pool = std::mem::take(&mut shard.evict_pool);
            sample(shard, volatile, samples, |db, k, e| {
                pool.offer(score(policy, e, now), db, k)
            });
            shard.evict_pool = pool;
        }
        if !any {
            return None;
        }
        // The best head among the pools that still names a live key (a pooled key may have
        // been deleted or lost its expiry since it was sampled: a ghost, dropped).
        loop {
            let best = shards
                .iter()
                .enumerate()
                .filter_map(|(i, s)| s.evict_pool.best_score().map(|sc| (sc, i)))
                .max();
            let Some((_, i)) = best else { break };
            let shard = &mut *shards[i];
            let Some((_, db, key)) = shard.evict_pool.candidates.pop() else {
                break;
            };
            let slot = super::key_slot(&key);
            let live = shard
                .dbs
                .get(db)
                .and_then(|d| d.get(slot, &key))
                .is_some_and(|e| !volatile || e.expire_ms != 0);
            if live {
                return Some((i, db, key));
            }
        }
    }
    None
}

/// A random evictable key: a shard drawn in proportion to its evictable keys, then a random
/// key of it (Redis draws from each database in turn).
fn pick_random(shards: &mut [&mut ShardData], volatile: bool) -> Option<(usize, usize, Box<[u8]>)> {
    let counts: Vec<usize> = shards.iter().map(|s| evictable(s, volatile)).collect();
    let total: usize = counts.iter().sum();
    if total == 0 {
        return None;
    }
    let mut draw = random_u64() as usize % total;
    let i = counts.iter().position(|&n| {
        if draw < n {
            true
        } else {
            draw -= n;
            false
        }
    })?;
    let mut found = None;
    sample(shards[i], volatile, 1, |db, k, _| {
        found = Some((db, k.into()))
    });
    found.map(|(db, key)| (i, db, key))
}

/// Bytes of `used_memory` that eviction does not count (Redis's
/// `freeMemoryGetNotCountedMemory`): replicas' own pending output, kept current by
/// `server::buffers` as it changes, plus the shared replication buffer beyond the backlog.
/// A replica's share of the shared buffer is memory the feed holds once, whatever the number
/// of replicas: it is counted there only.
static NOT_COUNTED_BYTES: AtomicU64 = AtomicU64::new(0);

pub fn set_not_counted(bytes: u64) {
    NOT_COUNTED_BYTES.store(bytes, Ordering::Relaxed);
}

/// INFO memory `mem_not_counted_for_evict`.
pub fn not_counted() -> u64 {
    NOT_COUNTED_BYTES.load(Ordering::Relaxed) + crate::replication::feed::buffer_excess()
}

/// Memory as eviction counts it: `used_memory` without what replicas' buffers hold aside
/// (so that a slow replica does not make the master evict its dataset) and without the
/// invalidations waiting for their connections (`tracking::pending_bytes`), nor what clients
/// that client eviction closes hold and replies between shards
/// (`buffers::not_counted_for_keys`).
fn counted_used() -> u64 {
    (crate::alloc::used_memory() as u64)
        .saturating_sub(crate::tracking::pending_bytes() as u64)
        .saturating_sub(crate::server::buffers::not_counted_for_keys())
        .saturating_sub(not_counted())
}

/// Whether memory is over the budget now.
pub fn over_budget() -> bool {
    let max = maxmemory();
    max != 0 && counted_used() > max
}

/// Redis's `performEvictions` over `shards` (every shard of the server, locked): evicts the
/// best candidates across all of them until the bytes their deletions freed reach what was
/// over the limit when the pass started, nothing is evictable, or the time budget ran out.
/// The evicted keys are appended to `evicted`.
///
/// What a deletion frees is measured around the deletion alone (this thread's allocation
/// counter before and after), as Redis measures `zmalloc_used_memory` around `dbDelete`:
/// the invalidation messages the deletion then sends to tracking clients are not subtracted
/// from what it freed. Judging by the live total instead would let those messages, or
/// another thread's allocations, decide how many keys go.
pub fn perform(shards: &mut [&mut ShardData], evicted: &mut Vec<Evicted>) -> Outcome {
    let max = maxmemory();
    let used = counted_used();
    if max == 0 || used <= max {
        RUNNING.store(false, Ordering::Relaxed);
        return Outcome::Ok;
    }
    let policy = policy();
    if policy == Policy::Noeviction {
        RUNNING.store(false, Ordering::Relaxed);
        return Outcome::Fail;
    }
    let to_free = (used - max) as i64;
    let start = crate::util::now_us();
    let limit_us = time_limit_us(SETTINGS.tenacity.load(Ordering::Relaxed));
    let lazy = super::limits::lazy(&super::limits::LAZY.eviction);
    let mut keys = 0usize;
    let mut freed = 0i64;
    let outcome = loop {
        let Some((i, db, key)) = pick(shards, policy) else {
            break Outcome::Fail;
        };
        let shard = &mut *shards[i];
        let before = crate::alloc::thread_used();
        let removed = remove_for_eviction(shard, db, &key, lazy);
        freed += (before - crate::alloc::thread_used()) as i64;
        if removed {
            after_eviction(shard, db, &key);
            evicted.push((shard.id, db, key));
        }
        keys += 1;
        if freed >= to_free {
            break Outcome::Ok;
        }
        if keys.is_multiple_of(KEYS_PER_TIME_CHECK) {
            // Values freed on the lazyfree thread do not show in this thread's counter: look
            // at the total now and then (as Redis does under lazyfree-lazy-eviction).
            if lazy && !over_budget() {
                break Outcome::Ok;
            }
            if limit_us.is_some_and(|l| crate::util::now_us().saturating_sub(start) > l) {
                break Outcome::Running;
            }
        }
    };
    RUNNING.store(outcome == Outcome::Running, Ordering::Relaxed);
    if outcome == Outcome::Fail && lazy {
        // Values being freed on the lazyfree thread may bring memory under the limit: wait
        // for them a little, within the time budget (as Redis).
        let limit = limit_us.unwrap_or(1000);
        while super::lazyfree::stats().0 > 0 && crate::util::now_us().saturating_sub(start) < limit
        {
            if !over_budget() {
                return Outcome::Ok;
            }
            std::thread::sleep(std::time::Duration::from_micros(limit.min(1000)));
        }
    }
    outcome
}

/// Whether eviction applies now: not on a replica ignoring maxmemory, not while loading,
/// not inside a running script, not while clients are paused (Redis's
/// `isSafeToPerformEvictions`).
fn safe_now(server: &crate::server::Server, cfg: &crate::config::Config) -> bool {
    let ignored = crate::replication::replica::is_replica() && cfg.replica_ignore_maxmemory;
    let loading = server.persistence.loading.load(Ordering::Relaxed);
    !ignored
        && !loading
        && !crate::scripting::running()
        && !server.paused_for(true, crate::util::now_ms())
}

/// A pass over every shard of `server`, taking their locks in ascending order; the evictions
/// are propagated (fed while the shards are still locked, as every deletion) and their
/// `evicted` events appended to `notes`. Returns the outcome and the replica shards to poke.
/// The caller must hold no shard lock.
pub fn perform_all(
    server: &crate::server::Server,
    notes: &mut Vec<crate::pubsub::Notification>,
) -> (Outcome, u64) {
    let mut guards = server.lock_all();
    let mut parts: Vec<&mut ShardData> = guards.iter_mut().map(|g| &mut **g).collect();
    let mut evicted = Vec::new();
    let outcome = perform(&mut parts, &mut evicted);
    let poke = if evicted.is_empty() {
        0
    } else {
        server.feed.propagate(&deletions(&evicted), false)
    };
    drop(parts);
    drop(guards);
    notes.extend(notifications(evicted));
    (outcome, poke)
}

/// Redis's maxmemory step of `processCommand`, before a command runs (from the connection's
/// thread, holding no shard lock): a pass when over the limit, then Redis's OOM error for a
/// deny-oom command (EXEC holding one, or anything but EXEC/DISCARD/QUIT/RESET queued inside
/// MULTI) when nothing more could be evicted. Under the limit: one read of the counter.
pub fn admit_command(
    server: &crate::server::Server,
    cfg: &crate::config::Config,
    client: &crate::server::Client,
    p: crate::server::dispatch::Prepared,
    notes: &mut Vec<crate::pubsub::Notification>,
    poke: &mut u64,
) -> Result<crate::server::dispatch::Prepared, crate::server::dispatch::Rejected> {
    if !over_budget() || !safe_now(server, cfg) {
        return Ok(p);
    }
    let (outcome, shards) = perform_all(server, notes);
    *poke |= shards;
    if outcome != Outcome::Fail {
        return Ok(p);
    }
    use crate::commands::flag::DENYOOM;
    let queued_denyoom = p.cmd.name == "exec"
        && client
            .multi
            .as_ref()
            .is_some_and(|q| q.iter().any(|c| c.flags & DENYOOM != 0));
    let in_multi =
        client.multi.is_some() && !matches!(p.cmd.name, "exec" | "discard" | "quit" | "reset");
    if p.cmd.flags & DENYOOM != 0 || queued_denyoom || in_multi {
        return Err(crate::server::dispatch::Rejected {
            error: OOM.as_bytes().to_vec(),
            full_name: Some(p.full_name),
        });
    }
    Ok(p)
}

/// Eviction for a keyspace that spans every shard (a script about to write, FUNCTION LOAD):
/// a pass over them, then false (after writing the OOM error) when a deny-oom command cannot
/// get memory. The evictions are recorded in the keyspace's propagation and notifications.
pub fn admit(ks: &mut Keyspace, flags: u32, out: &mut Out) -> bool {
    if !over_budget() {
        return true;
    }
    let mut evicted = Vec::new();
    let outcome = {
        let mut parts = ks.shards_mut();
        perform(&mut parts, &mut evicted)
    };
    if ks.prop.on {
        // Each eviction reaches replicas and the AOF as its own DEL (or UNLINK).
        ks.prop.ops.extend(deletions(&evicted));
    }
    ks.notifications.extend(notifications(evicted));
    if outcome == Outcome::Fail && flags & crate::commands::flag::DENYOOM != 0 {
        out.error(OOM);
        return false;
    }
    true
}

/// The continuation of a pass that ran out of time (Redis's eviction timer proc), from shard
/// 0's cron, holding no shard lock.
pub fn cron(
    server: &crate::server::Server,
    cfg: &crate::config::Config,
    notes: &mut Vec<crate::pubsub::Notification>,
) -> u64 {
    if !running() || maxmemory() == 0 || !safe_now(server, cfg) {
        return 0;
    }
    perform_all(server, notes).1
}

/// The `evicted` keyspace events of a pass (when enabled).
fn notifications(evicted: Vec<Evicted>) -> Vec<crate::pubsub::Notification> {
    if evicted.is_empty() || !crate::pubsub::notify_enabled('e') {
        return Vec::new();
    }
    evicted
        .into_iter()
        .map(|(_, db, key)| crate::pubsub::Notification {
            db,
            class: 'e',
            event: "evicted",
            key: bytes::Bytes::from(key.into_vec()),
        })
        .collect()
}

/// The propagated form of evictions: `DEL key` each (UNLINK under lazyfree-lazy-eviction), as
/// Redis's propagateDeletion.
pub fn deletions(evicted: &[Evicted]) -> Vec<crate::replication::Op> {
    let lazy = super::limits::lazy(&super::limits::LAZY.eviction);
    evicted
        .iter()
        .map(|(_, db, key)| {
            crate::replication::Op::new(
                *db,
                vec![
                    super::keyspace::del_or_unlink(lazy),
                    bytes::Bytes::copy_from_slice(key),
                ],
            )
        })
        .collect()
}

/// Deletes one key chosen by eviction and frees its value (or hands it to the lazyfree
/// thread). False when the key was gone already.
fn remove_for_eviction(shard: &mut ShardData, db: usize, key: &[u8], lazy: bool) -> bool {
    let slot = super::key_slot(key);
    let Some(d) = shard.dbs.get_mut(db) else {
        return false;
    };
    let Some(old) = d.remove(slot, key) else {
        return false;
    };
    if lazy {
        super::lazyfree::free_value(old.value);
    }
    true
}

/// What follows an eviction: the count, watchers, tracking clients' invalidations.
fn after_eviction(shard: &mut ShardData, db: usize, key: &[u8]) {
    shard.stats.evicted_keys += 1;
    shard.watch.touch(db, key, false);
    if crate::tracking::active() {
        shard.tracking.key_modified(shard.id, key, 0);
    }
}
