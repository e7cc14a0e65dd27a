//! Handler-level tests for SORT and SORT_RO.
//!
//! `recorded` holds scripts replayed on redis-server 7.0.15 with the exact reply bytes it gave,
//! in RESP2 and RESP3, over two shards here so that BY and GET patterns read keys of both (see
//! `commands::zset::tests` for the harness). One detail of the recording: Redis reads `errno`
//! after `strtod` without clearing it, so after one `ERANGE` every later numeric SORT fails
//! until some unrelated system call fails with another error; the recorder made a `chdir`
//! fail (CONFIG SET dir to a missing directory) before each command, so the replies are those
//! of a fresh `errno`, which is what shardis models.

mod recorded;

pub(crate) use crate::commands::zset::tests::run_script;

use super::{pqsort, sort_keys, target, window, Target};
use crate::commands::keys::harness::World;
use crate::commands::string::tests::tokenize;
use crate::commands::zset::tests::run;
use crate::storage::{key_slot, slot_owner};

/// The keys COMMAND GETKEYS reports, as redis-server 7.0.15 reported them.
#[test]
fn keys_like_sort_get_keys() {
    let cases = [
        ("sort abc store def", vec!["abc", "def"]),
        (
            "sort abc store invalid store stillbad store def",
            vec!["abc", "def"],
        ),
        ("sort abc limit store x store y", vec!["abc", "y"]),
        ("sort abc get store store x", vec!["abc", "x"]),
        ("sort abc by store", vec!["abc"]),
        ("sort abc store", vec!["abc"]),
        ("sort abc store x limit 1", vec!["abc", "x"]),
        ("sort abc STORE x get", vec!["abc", "x"]),
        ("sort abc store store store", vec!["abc", "store"]),
        ("sort abc asc store x by y", vec!["abc", "x"]),
    ];
    for (line, want) in cases {
        let args = tokenize(line);
        let got: Vec<&[u8]> = sort_keys(&args).iter().map(|&i| &args[i][..]).collect();
        let want: Vec<&[u8]> = want.iter().map(|k| k.as_bytes()).collect();
        assert_eq!(got, want, "{line}");
    }
    let sort_ro = crate::commands::lookup(b"sort_ro").expect("sort_ro in the table");
    assert_eq!(
        sort_ro.key_indices(&tokenize("sort_ro abc store x")),
        vec![1]
    );
}

/// `dirty` grows as in Redis (deltas of `rdb_changes_since_last_save` recorded from
/// redis-server 7.0.15): by the stored length, by one for a deleted destination.
#[test]
fn dirty_counts_like_redis() {
    let steps = [
        ("rpush l 3 1 2", 3),
        ("sort l store dst", 3),
        ("sort l get # get nokey store dst", 6),
        ("sort l limit 5 5 store dst", 1),
        ("sort l limit 5 5 store dst", 0),
        ("sort l", 0),
        ("sort nokey store dst2", 0),
        ("set dst2 x", 1),
        ("sort nokey store dst2", 1),
        ("sort l by nosort store dst", 3),
        ("zadd z 1 a", 1),
        ("sort z", 0),
        ("sort_ro l", 0),
    ];
    let mut w = World::new(2);
    for (line, delta) in steps {
        let before = w.dirty();
        run(&mut w, line);
        assert_eq!(w.dirty() - before, delta, "{line}");
    }
}

/// Every pattern lookup is a read: keyspace hits and misses as redis-server 7.0.15 counted
/// them (INFO stats deltas).
#[test]
fn lookups_count_hits_and_misses() {
    let mut w = World::new(2);
    for line in [
        "rpush l 3 1 2 4",
        "mset w_1 40 w_2 30 w_3 20",
        "hset o_1 name one",
    ] {
        run(&mut w, line);
    }
    let steps = [
        ("sort l by w_*", 4, 1),
        ("sort nokey by w_*", 0, 1),
        ("sort l by w_* limit 0 1 get w_*", 4, 2),
        ("sort l by w_* alpha", 4, 1),
        ("sort l by w_* store dst", 4, 1),
        ("sort l by w_* get # get w_* get o_*->name get nokey", 8, 5),
        ("sort l by nosort get o_*->name", 2, 3),
    ];
    let counts = |w: &World| -> (u64, u64) {
        let hits = w.shards.iter().map(|s| s.stats.hits).sum();
        let misses = w.shards.iter().map(|s| s.stats.misses).sum();
        (hits, misses)
    };
    for (line, hits, misses) in steps {
        let before = counts(&w);
        run(&mut w, line);
        let after = counts(&w);
        assert_eq!(
            (after.0 - before.0, after.1 - before.1),
            (hits, misses),
            "{line}"
        );
    }
}

/// The recorded scripts only prove cross-shard lookups if their keys do live on both shards.
#[test]
fn recorded_keys_span_both_shards() {
    let shard = |k: &str| slot_owner(key_slot(k.as_bytes()), 2);
    let weights = ["w_1", "w_2", "w_3", "w_4", "o_1", "o_2", "o_3", "o_4"];
    assert!(weights.iter().any(|k| shard(k) != shard("l")));
    assert!(weights.iter().any(|k| shard(k) == shard("l")));
    // STORE destinations on the other shard too (`other`, `a` in the store script).
    assert_ne!(shard("l"), shard("other"));
    assert_ne!(shard("l"), shard("a"));
}

#[test]
fn patterns_resolve_like_lookup_key_by_pattern() {
    let key = |k: &str, f: Option<&'static str>| Target::Key(k.into(), f.map(str::as_bytes));
    assert_eq!(target(b"#", b"e"), Target::Element);
    assert_eq!(target(b"#\0x", b"e"), Target::Element);
    assert_eq!(target(b"##", b"e"), Target::Nothing);
    assert_eq!(target(b"nosort", b"e"), Target::Nothing);
    assert_eq!(target(b"a\0*", b"e"), Target::Nothing);
    assert_eq!(target(b"", b"e"), Target::Nothing);
    assert_eq!(target(b"w_*", b"e"), key("w_e", None));
    assert_eq!(target(b"*_*", b"e"), key("e_*", None));
    assert_eq!(target(b"o_*->f", b"e"), key("o_e", Some("f")));
    assert_eq!(target(b"o_*->f->g", b"e"), key("o_e", Some("f->g")));
    assert_eq!(target(b"o_*->", b"e"), key("o_e->", None));
    assert_eq!(target(b"->*", b"e"), key("->e", None));
    assert_eq!(target(b"o_*x->f\0g", b"e"), key("o_ex", Some("f\0g")));
    assert_eq!(target(b"o_*->\0f", b"e"), key("o_e->\0f", None));
    assert_eq!(target(b"o_*-\0>f", b"e"), key("o_e-\0>f", None));
}

#[test]
fn limit_windows_like_redis() {
    // (len, LIMIT start, LIMIT count) -> the elements output.
    let cases = [
        ((0, 0, -1), (0, 0)),
        ((0, 3, 5), (0, 0)),
        ((5, 0, -1), (0, 5)),
        ((5, 1, 2), (1, 3)),
        ((5, 0, 0), (0, 0)),
        ((5, -3, 2), (0, 2)),
        ((5, 2, -7), (2, 5)),
        ((5, 4, 10), (4, 5)),
        ((5, 5, 1), (4, 4)),
        ((5, i64::MAX, i64::MAX), (4, 4)),
        ((5, i64::MIN, i64::MIN), (0, 5)),
    ];
    for ((len, start, count), want) in cases {
        assert_eq!(window(len, start, count), want, "{len} {start} {count}");
    }
}

/// `pqsort` puts in every position of the window what a full sort puts there, and keeps
/// the vector a permutation, for any window, length and amount of ties. Prints its seed.
#[test]
fn pqsort_sorts_the_window() {
    let seed = crate::util::now_us();
    let mut rng = crate::storage::hash::Rng::new(seed);
    for _ in 0..2000 {
        let n = rng.below(120) as usize + 1;
        let distinct = rng.below(n as u64) + 1;
        let v: Vec<(u64, usize)> = (0..n).map(|i| (rng.below(distinct), i)).collect();
        let low = rng.below(n as u64) as usize;
        let high = low + rng.below((n - low) as u64) as usize;
        let by_key = |a: &(u64, usize), b: &(u64, usize)| a.0.cmp(&b.0);
        let mut partial = v.clone();
        pqsort(&mut partial, &by_key, low, high);
        let mut full = v.clone();
        full.sort_by(by_key);
        let keys = |s: &[(u64, usize)]| s.iter().map(|p| p.0).collect::<Vec<_>>();
        assert_eq!(
            keys(&partial[low..=high]),
            keys(&full[low..=high]),
            "seed {seed}: n {n} window {low}..={high}"
        );
        let mut ids: Vec<usize> = partial.iter().map(|p| p.1).collect();
        ids.sort_unstable();
        assert!(
            ids.iter().copied().eq(0..n),
            "seed {seed}: not a permutation"
        );
        let mut whole = v.clone();
        pqsort(&mut whole, &by_key, 0, n - 1);
        assert_eq!(keys(&whole), keys(&full), "seed {seed}: full window");
    }
}
