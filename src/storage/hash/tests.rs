//! Model tests of `Hash` against a `BTreeMap`, the encodings' conversion rules, the scan
//! guarantee under concurrent changes, and the random draws' fairness.

use super::Rng;
use super::*;
use proptest::prelude::*;
use std::collections::{BTreeMap, BTreeSet};

type Model = BTreeMap<Vec<u8>, Vec<u8>>;

fn bytes(i: Item<'_>) -> Vec<u8> {
    i.to_vec()
}

fn contents(h: &Hash) -> Model {
    let m: Model = h.iter().map(|(f, v)| (bytes(f), bytes(v))).collect();
    assert_eq!(m.len(), h.len(), "iteration yields each field once");
    m
}

fn small(entries_max: usize, value_bytes_max: usize) -> Limits {
    Limits {
        entries_max,
        value_bytes_max,
    }
}

#[test]
fn packed_until_a_bound_is_crossed() {
    let limits = small(3, 5);
    let mut h = Hash::new();
    assert_eq!(h.encoding(), "listpack");
    assert!(h.set(b"a", b"1", &limits));
    assert!(!h.set(b"a", b"22", &limits));
    assert!(h.set(b"b", b"12345", &limits));
    assert!(h.set(b"c", b"-7", &limits));
    assert_eq!(h.encoding(), "listpack");
    assert!(h.set(b"d", b"x", &limits));
    assert_eq!(h.encoding(), "hashtable", "4 entries > 3");
    assert!(h.remove(b"d") && h.remove(b"c") && h.remove(b"b"));
    assert_eq!(h.encoding(), "hashtable", "conversion is one way");
    assert_eq!(h.get(b"a").map(bytes), Some(b"22".to_vec()));

    let mut h = Hash::new();
    h.set(b"a", b"12345", &limits);
    assert_eq!(h.encoding(), "listpack", "exactly the bound stays packed");
    h.set(b"a", b"123456", &limits);
    assert_eq!(h.encoding(), "hashtable", "a long value converts");
    let mut h = Hash::new();
    h.set(b"abcdef", b"1", &limits);
    assert_eq!(h.encoding(), "hashtable", "a long field converts");

    let mut h = Hash::new();
    h.convert_for_inputs([&b"ab"[..], b"cdefgh"], &limits);
    assert_eq!(
        h.encoding(),
        "hashtable",
        "HSET's arguments are checked up front"
    );
    let mut h = Hash::new();
    h.set(b"x", b"y", &small(0, 5));
    assert_eq!(
        h.encoding(),
        "hashtable",
        "entries 0: the first insert converts"
    );
}

#[test]
fn packed_integers_read_back_as_sent() {
    let limits = small(128, 64);
    let mut h = Hash::new();
    for v in [
        "0",
        "-1",
        "9223372036854775807",
        "-9223372036854775808",
        "01",
        "1.0",
        "",
    ] {
        h.set(v.as_bytes(), v.as_bytes(), &limits);
    }
    for v in [
        "0",
        "-1",
        "9223372036854775807",
        "-9223372036854775808",
        "01",
        "1.0",
        "",
    ] {
        let got = h.get(v.as_bytes()).map(bytes);
        assert_eq!(got, Some(v.as_bytes().to_vec()), "{v:?}");
        assert_eq!(h.get(v.as_bytes()).map(|i| i.len()), Some(v.len()));
    }
    assert!(h.get(b"+0").is_none() && h.get(b"-0").is_none());
    let before = contents(&h);
    h.convert();
    assert_eq!(contents(&h), before);
}

#[test]
fn sizes_stay_small() {
    // The packed hash is boxed inside `Value`; keep its header at a Vec plus a count.
    assert!(
        std::mem::size_of::<Hash>() <= 32,
        "{}",
        std::mem::size_of::<Hash>()
    );
}

#[derive(Debug, Clone)]
enum Op {
    Set(Vec<u8>, Vec<u8>),
    Remove(Vec<u8>),
    Inputs(Vec<Vec<u8>>),
}

fn field() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        (0i64..40).prop_map(|n| n.to_string().into_bytes()),
        (0u8..30).prop_map(|n| format!("f{n}").into_bytes()),
        proptest::collection::vec(any::<u8>(), 0..12),
    ]
}

fn value() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        any::<i64>().prop_map(|n| n.to_string().into_bytes()),
        proptest::collection::vec(any::<u8>(), 0..16),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (field(), value()).prop_map(|(f, v)| Op::Set(f, v)),
        3 => field().prop_map(Op::Remove),
        1 => proptest::collection::vec(value(), 0..4).prop_map(Op::Inputs),
    ]
}

/// Applies `op` to both and returns whether it must have converted a packed hash.
fn apply(h: &mut Hash, model: &mut Model, op: &Op, limits: &Limits) -> bool {
    match op {
        Op::Set(f, v) => {
            let new = h.set(f, v, limits);
            assert_eq!(new, model.insert(f.clone(), v.clone()).is_none());
            f.len() > limits.value_bytes_max
                || v.len() > limits.value_bytes_max
                || model.len() > limits.entries_max
        }
        Op::Remove(f) => {
            assert_eq!(h.remove(f), model.remove(f).is_some());
            false
        }
        Op::Inputs(inputs) => {
            h.convert_for_inputs(inputs.iter().map(|i| &i[..]), limits);
            inputs.iter().any(|i| i.len() > limits.value_bytes_max)
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(100))]

    /// Random operations with random thresholds: same contents as the model after every
    /// step, and packed exactly while no bound was ever crossed.
    #[test]
    fn behaves_like_a_btreemap(
        entries_max in 0usize..12,
        value_bytes_max in 0usize..14,
        ops in proptest::collection::vec(op(), 1..80),
    ) {
        let limits = small(entries_max, value_bytes_max);
        let mut h = Hash::new();
        let mut model = Model::new();
        let mut converted = false;
        for op in &ops {
            converted |= apply(&mut h, &mut model, op, &limits);
            prop_assert_eq!(h.is_packed(), !converted, "after {:?}", op);
            prop_assert_eq!(h.len(), model.len());
            prop_assert_eq!(&contents(&h), &model);
            for (f, v) in &model {
                prop_assert_eq!(h.get(f).map(bytes), Some(v.clone()));
            }
            let mut copy = h.clone();
            copy.convert();
            prop_assert_eq!(&copy, &h);
        }
    }

    /// The table alone, with segments of 4..8 pairs so every insert or delete may split or
    /// merge, over a field space wide enough to reach several directory levels.
    #[test]
    fn segmented_table_behaves_like_a_btreemap(
        segment_len in 4usize..9,
        ops in proptest::collection::vec(
            prop_oneof![
                3 => (0u16..400, any::<u16>()).prop_map(|(f, v)| (true, f, v)),
                2 => (0u16..400, any::<u16>()).prop_map(|(f, v)| (false, f, v)),
            ],
            1..500,
        ),
    ) {
        let limits = small(0, 0);
        let mut h = Hash::with_small_segments(segment_len);
        let mut model = Model::new();
        for (insert, f, v) in ops {
            let f = format!("field:{f}").into_bytes();
            if insert {
                let v = v.to_string().into_bytes();
                prop_assert_eq!(h.set(&f, &v, &limits), model.insert(f, v).is_none());
            } else {
                prop_assert_eq!(h.remove(&f), model.remove(&f).is_some());
            }
        }
        prop_assert_eq!(&contents(&h), &model);
        for (f, v) in &model {
            prop_assert_eq!(h.get(f).map(bytes), Some(v.clone()));
        }
        if let Some((segments, _)) = h.table_shape() {
            prop_assert!(model.len() <= 2 * segment_len || segments > 1, "never split");
        }
        // Deleting everything merges back down to one segment.
        for f in model.keys() {
            prop_assert!(h.remove(f));
        }
        prop_assert!(h.is_empty());
        prop_assert_eq!(h.table_shape(), Some((1, 0)));
    }

    /// The HSCAN guarantee: with the table splitting and merging between calls, every field
    /// present for the whole scan is returned exactly once, and nothing is returned that was
    /// never there.
    #[test]
    fn scan_returns_every_stable_field_once(
        segment_len in 4usize..12,
        initial in proptest::collection::btree_set(0u16..2000, 0..300),
        count in 1usize..20,
        churn in proptest::collection::vec((any::<bool>(), 0u16..2000), 0..400),
    ) {
        let limits = small(0, 0);
        let key = |n: u16| format!("k{n}").into_bytes();
        let mut h = Hash::with_small_segments(segment_len);
        for &n in &initial {
            h.set(&key(n), b"v", &limits);
        }
        // Churn touches only fields outside `initial`, so those stay put the whole scan.
        let churn: Vec<(bool, u16)> =
            churn.into_iter().filter(|(_, n)| !initial.contains(n)).collect();
        let mut ever: BTreeSet<Vec<u8>> = initial.iter().map(|&n| key(n)).collect();
        let mut seen: BTreeMap<Vec<u8>, usize> = BTreeMap::new();
        let mut cursor = 0;
        let mut churn_at = 0;
        let mut calls = 0;
        loop {
            cursor = h.scan(cursor, count, |f, _| *seen.entry(bytes(f)).or_default() += 1);
            calls += 1;
            prop_assert!(calls < 100_000, "scan does not terminate");
            if cursor == 0 {
                break;
            }
            for &(insert, n) in churn.iter().skip(churn_at).take(3) {
                if insert {
                    h.set(&key(n), b"w", &limits);
                    ever.insert(key(n));
                } else {
                    h.remove(&key(n));
                }
            }
            churn_at += 3;
        }
        for &n in &initial {
            prop_assert_eq!(seen.get(&key(n)).copied(), Some(1), "field k{}", n);
        }
        for f in seen.keys() {
            prop_assert!(ever.contains(f));
        }
    }
}

#[test]
fn scan_respects_count_on_a_table() {
    let limits = small(0, 0);
    let mut h = Hash::new();
    for i in 0..2000 {
        h.set(format!("f{i}").as_bytes(), b"v", &limits);
    }
    assert!(h.table_shape().is_some_and(|(segments, _)| segments > 4));
    let mut cursor = 0;
    let mut total = 0;
    let mut calls = 0;
    loop {
        let mut n = 0;
        cursor = h.scan(cursor, 10, |_, _| n += 1);
        assert!(n <= 10);
        total += n;
        calls += 1;
        if cursor == 0 {
            break;
        }
    }
    assert_eq!(total, 2000);
    assert!(calls >= 200, "{calls} calls");
    // A packed hash ignores the cursor and returns everything at once.
    let mut p = Hash::new();
    p.set(b"a", b"1", &small(8, 8));
    let mut n = 0;
    assert_eq!(p.scan(12345, 1, |_, _| n += 1), 0);
    assert_eq!(n, 1);
}

#[test]
fn random_draws_are_uniform() {
    // Uneven segments (tiny split threshold, fields skewed by deletions) must not skew the
    // draw: each of 60 fields should come up about 1/60 of the time.
    let limits = small(0, 0);
    let mut h = Hash::with_small_segments(6);
    for i in 0..200 {
        h.set(format!("f{i}").as_bytes(), b"v", &limits);
    }
    for i in 60..200 {
        h.remove(format!("f{i}").as_bytes());
    }
    let mut packed = Hash::new();
    for i in 0..60 {
        packed.set(format!("f{i}").as_bytes(), b"v", &small(128, 64));
    }
    for hash in [&h, &packed] {
        let mut rng = Rng::new(7);
        let sampler = Sampler::new(hash);
        let mut counts: BTreeMap<Vec<u8>, u32> = BTreeMap::new();
        let draws = 60_000;
        for _ in 0..draws {
            let (f, _) = sampler.draw(hash, &mut rng).expect("non-empty");
            *counts.entry(bytes(f)).or_default() += 1;
        }
        assert_eq!(counts.len(), 60);
        let expected = draws as f64 / 60.0;
        let chi2: f64 = counts
            .values()
            .map(|&c| (c as f64 - expected).powi(2) / expected)
            .sum();
        // 59 degrees of freedom: 100 is far in the tail (p < 0.001).
        assert!(chi2 < 100.0, "{} chi2 {chi2}", hash.encoding());
    }
    assert!(Hash::new().random(&mut Rng::new(1)).is_none());
}

#[test]
fn segments_past_the_depth_bound_grow() {
    // A directory capped at 4 slots: segments of 4 fields must grow instead of splitting,
    // and lookups, scans and random draws stay right.
    let limits = small(0, 0);
    let mut h = Hash::with_table_shape(4, 2);
    for i in 0..300 {
        h.set(format!("f{i}").as_bytes(), b"v", &limits);
    }
    assert!(h
        .table_shape()
        .is_some_and(|(segments, depth)| segments <= 4 && depth <= 2));
    assert_eq!(h.len(), 300);
    assert!((0..300).all(|i| h.contains(format!("f{i}").as_bytes())));
    let mut seen = BTreeSet::new();
    let mut cursor = 0;
    loop {
        cursor = h.scan(cursor, 7, |f, _| assert!(seen.insert(bytes(f))));
        if cursor == 0 {
            break;
        }
    }
    assert_eq!(seen.len(), 300);
    let sampler = Sampler::new(&h);
    let mut rng = Rng::new(3);
    let mut counts: BTreeMap<Vec<u8>, u32> = BTreeMap::new();
    for _ in 0..30_000 {
        let (f, _) = sampler.draw(&h, &mut rng).expect("non-empty");
        *counts.entry(bytes(f)).or_default() += 1;
    }
    assert_eq!(counts.len(), 300);
    assert!(
        counts.values().all(|&c| (50..=170).contains(&c)),
        "{counts:?}"
    );
    for i in 0..300 {
        assert!(h.remove(format!("f{i}").as_bytes()));
    }
    assert_eq!(h.table_shape(), Some((1, 0)));
}

#[test]
fn rng_below_stays_in_range() {
    let mut rng = Rng::new(42);
    assert_eq!(rng.below(0), 0);
    for n in [1u64, 2, 3, 7, 1000, u64::MAX] {
        for _ in 0..1000 {
            assert!(rng.below(n) < n);
        }
    }
}

/// Resident memory of this process in bytes (Linux).
fn rss_bytes() -> usize {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: usize = statm
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    pages * 4096
}

/// The memory benchmark's data set: hash `i` of `fields(i)` fields named `field:<j>`, each
/// set to `(i+j)%1000` for even `j` and `v<(i*j)%10000>` for odd `j` (the same data the
/// report's redis-server comparison loads over the wire).
fn build_hashes(keys: usize, fields: impl Fn(usize) -> usize) -> (Vec<super::super::Value>, usize) {
    let limits = Limits::current();
    let mut total = 0;
    let values = (0..keys)
        .map(|i| {
            // One HSET per hash, as the wire comparison sends it.
            let args: Vec<(Vec<u8>, Vec<u8>)> = (0..fields(i))
                .map(|j| {
                    let value = if j % 2 == 0 {
                        ((i + j) % 1000).to_string()
                    } else {
                        format!("v{}", (i * j) % 10000)
                    };
                    (format!("field:{j}").into_bytes(), value.into_bytes())
                })
                .collect();
            let mut h = Hash::new();
            total += h.set_all(args.iter().map(|(f, v)| (&f[..], &v[..])), &limits);
            super::super::Value::Hash(h)
        })
        .collect();
    (values, total)
}

fn report_memory(name: &str, keys: usize, fields: fn(usize) -> usize) {
    let before = rss_bytes();
    let (values, total) = build_hashes(keys, fields);
    let after = rss_bytes();
    let mut heap = 0;
    let mut encoding = "";
    for v in &values {
        if let super::super::Value::Hash(h) = v {
            heap += std::mem::size_of::<Hash>() + h.heap_bytes();
            encoding = h.encoding();
        }
    }
    eprintln!(
        "{name}: {total} fields, {encoding}, RSS {:.2} B/field, requested {:.2} B/field",
        after.saturating_sub(before) as f64 / total as f64,
        heap as f64 / total as f64,
    );
}

/// Memory per field of packed hash values alone (no keyspace). Run each memory test in its
/// own process, as RSS does not shrink back between them:
/// `cargo test --release --lib memory_listpack -- --ignored --nocapture`.
#[test]
#[ignore]
fn memory_listpack() {
    report_memory("1M hashes of 10-100 fields", 1_000_000, |i| {
        10 + (i * 7919) % 91
    });
}

/// As `memory_listpack`, for hashtable-encoded hashes.
#[test]
#[ignore]
fn memory_hashtable() {
    report_memory("10k hashes of 1000 fields", 10_000, |_| 1000);
}
