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
