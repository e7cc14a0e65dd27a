//! The keyspace: what a shard owns.
//!
//! A shard owns `ShardData`: one `Db` per logical database, each organized by hash slot
//! (slot -> table), so that slot counts, slot migration and SCAN cursors are natural. Only
//! slots whose owner is this shard ever hold keys here. Values live in `Entry`s with their
//! absolute expiry deadline in milliseconds (0 = none).
//!
//! Command handlers never touch `ShardData` directly: they go through `Keyspace`, a view over
//! the one or several shards a command has locked, which routes each key to its shard, applies
//! lazy expiry on access and counts hits, misses and changes.

pub mod blocking;
pub mod compact;
pub mod db;
pub mod evict;
pub mod hash;
pub mod hll;
pub mod htstats;
pub mod keyspace;
pub mod lazyfree;
pub mod limits;
pub mod list;
pub mod listpack;
pub mod memory;
pub mod set;
pub mod slot_table;
pub mod stream;
pub mod thin;
pub mod value;
pub mod watch;
pub mod zset;

pub use db::{Db, Entry, ShardData};
pub use keyspace::Keyspace;
pub use value::Value;

/// Redis Cluster's slot count.
pub const SLOTS: usize = 16384;

/// The hash slot of a key: CRC16-XMODEM of the key, or of its `{hashtag}` when the key holds a
/// non-empty one, modulo 16384 — exactly Redis Cluster's function.
pub fn key_slot(key: &[u8]) -> u16 {
    let tagged = match key.iter().position(|&b| b == b'{') {
        Some(open) => match key[open + 1..].iter().position(|&b| b == b'}') {
            Some(len) if len > 0 => &key[open + 1..open + 1 + len],
            _ => key,
        },
        None => key,
    };
    crate::util::crc16(tagged) & (SLOTS as u16 - 1)
}

/// The shard that owns a slot under the default layout (`slot mod N`).
pub fn slot_owner(slot: u16, nshards: usize) -> usize {
    slot as usize % nshards.max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_match_redis_cluster() {
        // Values from Redis's CLUSTER KEYSLOT.
        assert_eq!(key_slot(b"foo"), 12182);
        assert_eq!(key_slot(b"bar"), 5061);
        assert_eq!(key_slot(b"{user1000}.following"), key_slot(b"user1000"));
        assert_eq!(key_slot(b"foo{}{bar}"), key_slot(b"foo{}{bar}"));
        assert_eq!(
            key_slot(b"{}foo"),
            crc16::State::<crc16::XMODEM>::calculate(b"{}foo") & 16383
        );
        assert_eq!(key_slot(b"123456789"), 0x31C3 & 16383);
    }
}
