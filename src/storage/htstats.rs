//! `DEBUG HTSTATS` and `DEBUG HTSTATS-KEY`: a hash table's shape in Redis's `dictGetStats`
//! text.
//!
//! Our tables are not Redis's `dict`, so the figures are our tables' own, in Redis's format:
//! - the set `hashtable` encoding (`set::table::MemberTable`) is chained like a dict: its
//!   buckets, chains and chain-length distribution are reported as they are;
//! - the hash `hashtable` encoding, the sorted-set member index and the keyspace's slot
//!   tables are open-addressing (hashbrown) tables: every element sits in its own bucket, so
//!   "table size" is the buckets allocated, every chain has length 1 and the distribution is
//!   empty buckets against occupied ones.
//!
//! None of our tables rehashes incrementally (they resize at once, or a segment at a time),
//! so the "rehashing target" section Redis prints for a dict in mid-rehash never appears.

use std::fmt::Write;

/// Redis's `DICT_STATS_VECTLEN`: chains of this length or more share the last counter.
const VECTLEN: usize = 50;

/// One table's shape.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HtStats {
    /// Buckets.
    pub size: u64,
    /// Elements.
    pub used: u64,
    /// Buckets by chain length (index 0: empty buckets; the last counts longer chains too).
    pub chains: [u64; VECTLEN],
    /// The longest chain.
    pub max_chain: u64,
    /// Elements counted by walking the chains.
    pub total_chain: u64,
}

impl Default for HtStats {
    fn default() -> Self {
        HtStats {
            size: 0,
            used: 0,
            chains: [0; VECTLEN],
            max_chain: 0,
            total_chain: 0,
        }
    }
}

impl HtStats {
    /// Counts one bucket whose chain has `len` elements.
    pub fn bucket(&mut self, len: u64) {
        self.size += 1;
        self.used += len;
        self.total_chain += len;
        self.max_chain = self.max_chain.max(len);
        self.chains[(len as usize).min(VECTLEN - 1)] += 1;
    }

    /// Adds an open-addressing table of `buckets` buckets holding `used` elements, each in a
    /// bucket of its own.
    pub fn open(&mut self, buckets: u64, used: u64) {
        let buckets = buckets.max(used);
        self.size += buckets;
        self.used += used;
        self.total_chain += used;
        if used > 0 {
            self.max_chain = self.max_chain.max(1);
        }
        self.chains[0] += buckets - used;
        self.chains[1] += used;
    }

    /// Redis's `_dictGetStatsHt` text for table 0 (the main hash table).
    pub fn write(&self, out: &mut String) {
        let name = "main hash table";
        if self.used == 0 {
            let _ = write!(
                out,
                "Hash table 0 stats ({name}):\nNo stats available for empty dictionaries\n"
            );
            return;
        }
        let slots: u64 = self.chains[1..].iter().sum();
        let _ = write!(
            out,
            "Hash table 0 stats ({name}):\n table size: {}\n number of elements: {}\n different slots: {}\n max chain length: {}\n avg chain length (counted): {:.2}\n avg chain length (computed): {:.2}\n Chain length distribution:\n",
            self.size,
            self.used,
            slots,
            self.max_chain,
            self.total_chain as f32 / slots as f32,
            self.used as f32 / slots as f32,
        );
        for (i, n) in self.chains[..VECTLEN - 1].iter().enumerate() {
            if *n == 0 {
                continue;
            }
            let _ = writeln!(
                out,
                "   {i}: {n} ({:.2}%)",
                (*n as f32 / self.size as f32) * 100.0
            );
        }
    }
}

/// Buckets behind a hashbrown table of this capacity (hashbrown keeps 7/8 of its buckets
/// usable from 8 buckets up, all but one below).
pub fn hashbrown_buckets(capacity: usize) -> u64 {
    let b = match capacity {
        0 => 0,
        1..=3 => 4,
        4..=7 => 8,
        c => (c * 8 / 7).next_power_of_two(),
    };
    b as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_matches_redis_layout() {
        let mut s = HtStats::default();
        s.bucket(0);
        s.bucket(2);
        s.bucket(1);
        s.bucket(0);
        let mut out = String::new();
        s.write(&mut out);
        assert_eq!(
            out,
            "Hash table 0 stats (main hash table):\n table size: 4\n number of elements: 3\n different slots: 2\n max chain length: 2\n avg chain length (counted): 1.50\n avg chain length (computed): 1.50\n Chain length distribution:\n   0: 2 (50.00%)\n   1: 1 (25.00%)\n   2: 1 (25.00%)\n"
        );
        let mut empty = String::new();
        HtStats::default().write(&mut empty);
        assert_eq!(
            empty,
            "Hash table 0 stats (main hash table):\nNo stats available for empty dictionaries\n"
        );
    }

    #[test]
    fn open_tables_put_every_element_in_its_own_bucket() {
        let mut s = HtStats::default();
        s.open(hashbrown_buckets(14), 10);
        assert_eq!((s.size, s.used, s.max_chain), (16, 10, 1));
        assert_eq!((s.chains[0], s.chains[1]), (6, 10));
    }
}
