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
    (now << 8) | counter
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

use super::db::{Entry, ShardData};
use super::keyspace::Keyspace;
use crate::protocol::Out;

/// Redis's `-OOM` error for a DENYOOM command that cannot get memory.
pub const OOM: &str = "OOM command not allowed when used memory > 'maxmemory'.";
/// Candidates the eviction pool keeps (Redis's EVPOOL_SIZE).
const POOL_SIZE: usize = 16;

/// The best candidates seen so far, ascending by score (the best one last): Redis's eviction
/// pool, one per shard, kept across calls so each round of sampling improves on the last.
#[derive(Default, Debug)]
pub struct Pool {
    candidates: Vec<(u64, usize, Box<[u8]>)>,
}

impl Pool {
    fn offer(&mut self, score: u64, db: usize, key: &[u8]) {
        if self
            .candidates
            .iter()
            .any(|(_, d, k)| *d == db && &**k == key)
        {
            return;
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

/// A random key of `shard` (in any db when `db` is None) for the random policies and for
/// sampling: a random slot of the shard holding keys, then a random entry of it.
fn sample(
    shard: &ShardData,
    nshards: usize,
    volatile: bool,
    mut visit: impl FnMut(usize, &[u8], &Entry),
    count: usize,
) -> usize {
    let mut seen = 0;
    for (db_index, db) in shard.dbs.iter().enumerate() {
        let pool = if volatile { db.volatile } else { db.keys };
        if pool == 0 {
            continue;
        }
        let owned = super::SLOTS.div_ceil(nshards.max(1));
        let mut tries = 0;
        while seen < count && tries < count * 16 {
            tries += 1;
            let slot = shard.id + (random_u64() as usize % owned) * nshards.max(1);
            let Some(t) = db.table(slot as u16) else {
                continue;
            };
            if volatile && t.volatile == 0 {
                continue;
            }
            let Some((k, e)) = t.nth(random_u64() as usize % t.len()) else {
                continue;
            };
            if volatile && e.expire_ms == 0 {
                continue;
            }
            visit(db_index, k, e);
            seen += 1;
        }
        if seen < count {
            // A sparse keyspace (a few keys over thousands of slots): random probes miss, so
            // walk the owned slots from a random one (Redis's dictGetRandomKey always finds a
            // key when there is one).
            let start = random_u64() as usize % owned;
            for i in 0..owned {
                if seen >= count {
                    break;
                }
                let slot = shard.id + ((start + i) % owned) * nshards.max(1);
                let Some(t) = db.table(slot as u16) else {
                    continue;
                };
                if t.is_empty() || (volatile && t.volatile == 0) {
                    continue;
                }
                let found = (0..t.len().min(16)).find_map(|_| {
                    t.nth(random_u64() as usize % t.len())
                        .filter(|(_, e)| !volatile || e.expire_ms != 0)
                });
                if let Some((k, e)) = found {
                    visit(db_index, k, e);
                    seen += 1;
                }
            }
        }
    }
    seen
}

/// Picks the next key to evict from `shard`: (db, key). None when nothing is evictable.
fn pick(shard: &mut ShardData, nshards: usize, policy: Policy) -> Option<(usize, Box<[u8]>)> {
    let volatile = policy.volatile_only();
    let samples = SETTINGS.samples.load(Ordering::Relaxed).max(1) as usize;
    if matches!(policy, Policy::AllkeysRandom | Policy::VolatileRandom) {
        let mut found = None;
        sample(
            shard,
            nshards,
            volatile,
            |db, k, _| found = Some((db, k.into())),
            1,
        );
        return found;
    }
    let now = crate::util::lru_secs();
    let mut pool = std::mem::take(&mut shard.evict_pool);
    sample(
        shard,
        nshards,
        volatile,
        |db, k, e| pool.offer(score(policy, e, now), db, k),
        samples,
    );
    // The best candidate that still exists (a pooled key may have been deleted since).
    let mut picked = None;
    while let Some((_, db, key)) = pool.candidates.pop() {
        let slot = super::key_slot(&key);
        let live = shard
            .dbs
            .get(db)
            .and_then(|d| d.get(slot, &key))
            .is_some_and(|e| !volatile || e.expire_ms != 0);
        if live {
            picked = Some((db, key));
            break;
        }
    }
    shard.evict_pool = pool;
    picked
}

/// Whether memory is over the budget now.
pub fn over_budget() -> bool {
    let max = maxmemory();
    // Invalidations waiting for their connections are not the keyspace's memory (see
    // `tracking::pending_bytes`).
    max != 0
        && crate::alloc::used_memory().saturating_sub(crate::tracking::pending_bytes()) as u64 > max
}

/// Redis's `performEvictions` for the shards a command locked, run before a data command when
/// `maxmemory` is set. Returns false (after writing the OOM error) when the command is a
/// DENYOOM one and memory could not be brought under the budget.
pub fn admit(ks: &mut Keyspace, flags: u32, out: &mut Out) -> bool {
    if !over_budget() {
        return true;
    }
    let denyoom = flags & crate::commands::flag::DENYOOM != 0;
    let policy = policy();
    if policy == Policy::Noeviction {
        if denyoom {
            out.error(OOM);
            return false;
        }
        return true;
    }
    let start = crate::util::now_us();
    let limit = time_limit_us(SETTINGS.tenacity.load(Ordering::Relaxed));
    let nshards = ks.nshards();
    let mut failed = false;
    let mut evicted: Vec<(usize, Box<[u8]>)> = Vec::new();
    while over_budget() {
        let mut evicted_one = false;
        for shard in ks.shards_mut() {
            if let Some((db, key)) = pick(shard, nshards, policy) {
                if evict_key(shard, db, &key) {
                    evicted.push((db, key));
                }
                evicted_one = true;
                if !over_budget() {
                    break;
                }
            }
        }
        if !evicted_one {
            failed = true;
            break;
        }
        // Values being freed on the lazyfree thread will lower used_memory soon: let the
        // command run rather than evict more than needed (Redis's EVICT_RUNNING).
        if super::lazyfree::stats().0 > 0 {
            break;
        }
        if limit.is_some_and(|l| crate::util::now_us().saturating_sub(start) > l) {
            break;
        }
    }
    if ks.prop.on {
        // Each eviction reaches replicas and the AOF as its own DEL (or UNLINK).
        ks.prop.ops.extend(deletions(&evicted));
    }
    if crate::pubsub::notify_enabled('e') {
        for (db, key) in evicted {
            ks.notifications.push(crate::pubsub::Notification {
                db,
                class: 'e',
                event: "evicted",
                key: bytes::Bytes::from(key.into_vec()),
            });
        }
    }
    // Keys elsewhere: their shards evict them in their cron (the budget is global), so this
    // command is not refused for memory this shard cannot free.
    let elsewhere = failed && keys_on_other_shards(ks);
    if failed && denyoom && !elsewhere {
        out.error(OOM);
        return false;
    }
    true
}

/// Evictable keys per shard as of each shard's last cron (lock-free view of the others).
static SHARD_KEYS: [AtomicU64; 256] = [const { AtomicU64::new(0) }; 256];

fn keys_on_other_shards(ks: &Keyspace) -> bool {
    let mine: Vec<usize> = ks.shards().iter().map(|s| s.id).collect();
    SHARD_KEYS
        .iter()
        .enumerate()
        .take(ks.nshards())
        .any(|(i, n)| !mine.contains(&i) && n.load(Ordering::Relaxed) > 0)
}

/// A shard's periodic part of the global budget: publishes its key count, and evicts its own
/// keys while the server is over `maxmemory` (memory may be held by another shard's keys'
/// writers; every shard gives back from what it owns), within the tenacity time budget.
///
/// Returns the keys evicted, for the caller to propagate (`deletions`).
pub fn cron(shard: &mut ShardData, nshards: usize) -> Vec<(usize, Box<[u8]>)> {
    let policy = policy();
    // What this shard could evict under the policy: every key, or the volatile ones.
    let keys: usize = if policy.volatile_only() {
        shard.dbs.iter().map(|d| d.volatile).sum()
    } else {
        shard.dbs.iter().map(|d| d.keys).sum()
    };
    if let Some(c) = SHARD_KEYS.get(shard.id) {
        c.store(keys as u64, Ordering::Relaxed);
    }
    let mut evicted = Vec::new();
    if policy == Policy::Noeviction || !over_budget() {
        return evicted;
    }
    let start = crate::util::now_us();
    let limit = time_limit_us(SETTINGS.tenacity.load(Ordering::Relaxed)).unwrap_or(u64::MAX);
    while over_budget() && crate::util::now_us().saturating_sub(start) <= limit {
        let Some((db, key)) = pick(shard, nshards, policy) else {
            break;
        };
        if evict_key(shard, db, &key) {
            evicted.push((db, key));
        }
    }
    evicted
}

/// The propagated form of evictions: `DEL key` each (UNLINK under lazyfree-lazy-eviction), as
/// Redis's propagateDeletion.
pub fn deletions(evicted: &[(usize, Box<[u8]>)]) -> Vec<crate::replication::Op> {
    let lazy = super::limits::lazy(&super::limits::LAZY.eviction);
    evicted
        .iter()
        .map(|(db, key)| {
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

/// Deletes one key chosen by eviction: counts it and wakes its watchers. False when the key
/// was gone already.
fn evict_key(shard: &mut ShardData, db: usize, key: &[u8]) -> bool {
    let slot = super::key_slot(key);
    let Some(d) = shard.dbs.get_mut(db) else {
        return false;
    };
    let Some(old) = d.remove(slot, key) else {
        return false;
    };
    if super::limits::lazy(&super::limits::LAZY.eviction) {
        super::lazyfree::free_value(old.value);
    }
    shard.stats.evicted_keys += 1;
    shard.watch.touch(db, key, false);
    if crate::tracking::active() {
        shard.tracking.key_modified(shard.id, key, 0);
    }
    true
}
