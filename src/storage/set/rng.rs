//! The random source of SRANDMEMBER and SPOP: wyrand, one generator per thread.
//!
//! Why this and not a crate: the whole generator is five lines, passes the statistical tests
//! the set commands need (Redis's suite runs chi-square tests on SRANDMEMBER), costs one
//! multiply per draw, and keeps `Cargo.toml` untouched. Each thread's generator is seeded
//! from the OS (`getrandom`) on first use; tests reseed it with `seed_thread` to make a run
//! reproducible, and print the seed they used.

use std::cell::Cell;

/// wyrand (Wang Yi's 64-bit generator, the one `fastrand` uses).
#[derive(Clone, Copy, Debug)]
pub struct Rng {
    state: u64,
}

impl Rng {
    pub fn seeded(seed: u64) -> Self {
        Rng { state: seed }
    }

    /// A generator seeded from the OS, falling back to the clock and an address if the
    /// `getrandom` call fails.
    pub fn from_os() -> Self {
        let mut seed = [0u8; 8];
        // SAFETY: the buffer is valid for writes of its full length.
        let n = unsafe { libc::getrandom(seed.as_mut_ptr().cast(), seed.len(), 0) };
        let mut s = u64::from_le_bytes(seed);
        if n != seed.len() as isize {
            s = crate::util::now_us() ^ (&seed as *const _ as u64).rotate_left(32);
        }
        Rng::seeded(s)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0xa076_1d64_78bd_642f);
        let t = u128::from(self.state) * u128::from(self.state ^ 0xe703_7ed1_a0b4_28db);
        (t ^ (t >> 64)) as u64
    }

    /// A uniform value in `0..n` (`n > 0`), without modulo bias (Lemire's method).
    pub fn below(&mut self, n: u64) -> u64 {
        debug_assert!(n > 0);
        let threshold = n.wrapping_neg() % n.max(1);
        loop {
            let m = u128::from(self.next_u64()) * u128::from(n);
            if (m as u64) >= threshold {
                return (m >> 64) as u64;
            }
        }
    }

    /// A uniform index below `n` (`n > 0`).
    pub fn index(&mut self, n: usize) -> usize {
        self.below(n as u64) as usize
    }
}

thread_local! {
    static THREAD_RNG: Cell<Option<Rng>> = const { Cell::new(None) };
}

/// Runs `f` with this thread's generator.
pub fn with_thread<R>(f: impl FnOnce(&mut Rng) -> R) -> R {
    THREAD_RNG.with(|c| {
        let mut rng = c.get().unwrap_or_else(Rng::from_os);
        let r = f(&mut rng);
        c.set(Some(rng));
        r
    })
}

/// Reseeds this thread's generator (tests).
pub fn seed_thread(seed: u64) {
    THREAD_RNG.with(|c| c.set(Some(Rng::seeded(seed))));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn below_is_uniform_enough() {
        let mut r = Rng::seeded(42);
        let mut counts = [0u32; 10];
        for _ in 0..100_000 {
            counts[r.index(10)] += 1;
        }
        // Chi-square with 9 degrees of freedom; 27.9 is the 0.1 % critical value.
        let chi: f64 = counts
            .iter()
            .map(|&c| (c as f64 - 10_000.0).powi(2) / 10_000.0)
            .sum();
        assert!(chi < 27.9, "chi-square {chi}, counts {counts:?}");
        assert_eq!(r.below(1), 0);
    }
}
