//! Model tests of `ZSet`: random operation sequences against a `BTreeMap` of member to score
//! (sorted on demand), with thresholds small enough that sets convert mid-sequence.

use super::*;
use proptest::prelude::*;
use std::cmp::Ordering;
use std::collections::BTreeMap;

fn with_limits<R>(entries: usize, value: usize, f: impl FnOnce() -> R) -> R {
    TEST_LIMITS.with(|c| c.set(Some(Limits { entries, value })));
    let r = f();
    TEST_LIMITS.with(|c| c.set(None));
    r
}

/// The model: member -> score, plus whether the set has left the listpack.
#[derive(Default)]
struct Model {
    map: BTreeMap<Vec<u8>, f64>,
    big: bool,
}

impl Model {
    fn sorted(&self) -> Vec<(Vec<u8>, f64)> {
        let mut v: Vec<(Vec<u8>, f64)> = self.map.iter().map(|(m, s)| (m.clone(), *s)).collect();
        v.sort_by(|a, b| {
            a.1.partial_cmp(&b.1)
                .unwrap_or(Ordering::Equal)
                .then_with(|| a.0.cmp(&b.0))
        });
        v
    }

    /// Redis's `zsetAdd` on the model.
    fn add(
        &mut self,
        score: f64,
        member: &[u8],
        f: AddFlags,
        limits: Limits,
    ) -> Result<Added, NotANumber> {
        let Some(&cur) = self.map.get(member) else {
            if f.xx {
                return Ok(Added::Nop);
            }
            if self.map.len() + 1 > limits.entries || member.len() > limits.value {
                self.big = true;
            }
            self.map.insert(member.to_vec(), score);
            return Ok(Added::New(score));
        };
        if f.nx {
            return Ok(Added::Nop);
        }
        let score = if f.incr { score + cur } else { score };
        if score.is_nan() {
            return Err(NotANumber);
        }
        if (f.lt && score >= cur) || (f.gt && score <= cur) {
            return Ok(Added::Nop);
        }
        if score == cur {
            return Ok(Added::Same(score));
        }
        self.map.insert(member.to_vec(), score);
        Ok(Added::Updated(score))
    }
}

#[derive(Debug, Clone)]
enum Op {
    Add(f64, Vec<u8>, AddFlags),
    Remove(Vec<u8>),
    RemoveRanks(usize, usize),
    RemoveScores(ScoreRange),
    Pop(bool),
}

fn member() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        3 => proptest::collection::vec(prop_oneof![Just(b'a'), Just(b'b'), Just(b'c')], 0..4),
        1 => (-20i64..20).prop_map(|n| n.to_string().into_bytes()),
        1 => Just(b"007".to_vec()),
        1 => proptest::collection::vec(any::<u8>(), 5..12),
    ]
}

fn score() -> impl Strategy<Value = f64> {
    prop_oneof![
        4 => (-5i32..5).prop_map(f64::from),
        2 => (-50i32..50).prop_map(|n| f64::from(n) / 4.0),
        1 => Just(f64::INFINITY),
        1 => Just(f64::NEG_INFINITY),
        1 => Just(-0.0),
        1 => Just(2f64.powi(61)),
        1 => Just(2f64.powi(62)),
        1 => Just(3e18),
        1 => Just(0.1),
    ]
}

fn flags() -> impl Strategy<Value = AddFlags> {
    (0u8..8).prop_map(|f| match f {
        0 => AddFlags {
            nx: true,
            ..Default::default()
        },
        1 => AddFlags {
            xx: true,
            ..Default::default()
        },
        2 => AddFlags {
            gt: true,
            ..Default::default()
        },
        3 => AddFlags {
            lt: true,
            xx: true,
            ..Default::default()
        },
        4 => AddFlags {
            incr: true,
            ..Default::default()
        },
        _ => AddFlags::default(),
    })
}

fn range() -> impl Strategy<Value = ScoreRange> {
    (score(), score(), any::<bool>(), any::<bool>()).prop_map(|(min, max, minex, maxex)| {
        ScoreRange {
            min,
            max,
            minex,
            maxex,
        }
    })
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        8 => (score(), member(), flags()).prop_map(|(s, m, f)| Op::Add(s, m, f)),
        3 => member().prop_map(Op::Remove),
        1 => (0usize..20, 0usize..4).prop_map(|(s, n)| Op::RemoveRanks(s, n)),
        1 => range().prop_map(Op::RemoveScores),
        1 => any::<bool>().prop_map(Op::Pop),
    ]
}

/// Expected ranks of a score range in the model's order.
fn model_range(sorted: &[(Vec<u8>, f64)], r: &ScoreRange) -> Vec<usize> {
    (0..sorted.len())
        .filter(|&i| r.gte_min(sorted[i].1) && r.lte_max(sorted[i].1))
        .collect()
}

fn check(z: &ZSet, model: &Model, probe: &[ScoreRange]) {
    let sorted = model.sorted();
    assert_eq!(z.len(), sorted.len());
    assert_eq!(
        z.encoding(),
        if model.big { "skiplist" } else { "listpack" }
    );
    if let Enc::Big(r) = z.enc.get() {
        r.check();
    }
    let got: Vec<(Vec<u8>, f64)> = z.iter().map(|(m, s)| (m.to_vec(), s)).collect();
    assert_eq!(got.len(), sorted.len());
    for (g, e) in got.iter().zip(&sorted) {
        assert_eq!(g.0, e.0);
        assert!(g.1 == e.1, "score of {:?}: {} vs {}", e.0, g.1, e.1);
    }
    if let Some(last) = sorted.len().checked_sub(1) {
        let back: Vec<Vec<u8>> = z.iter_from(last, true).map(|(m, _)| m.to_vec()).collect();
        let mut expected: Vec<Vec<u8>> = sorted.iter().map(|p| p.0.clone()).collect();
        expected.reverse();
        assert_eq!(back, expected);
    }
    for (rank, (m, s)) in sorted.iter().enumerate() {
        assert!(z.score(m) == Some(*s));
        assert_eq!(z.rank(m, false), Some(rank));
        assert_eq!(z.rank(m, true), Some(sorted.len() - 1 - rank));
    }
    for r in probe {
        let ranks = model_range(&sorted, r);
        assert_eq!(z.first_in_range(r), ranks.first().copied(), "{r:?}");
        assert_eq!(z.last_in_range(r), ranks.last().copied(), "{r:?}");
        assert_eq!(z.count_in_range(r), ranks.len(), "{r:?}");
    }
}

fn run(ops: Vec<Op>, probe: &[ScoreRange], limits: Limits) {
    let mut z = ZSet::new();
    let mut model = Model::default();
    for op in ops {
        match op {
            Op::Add(s, m, f) => {
                let got = z.add(s, &m, f);
                let expected = model.add(s, &m, f, limits);
                match (got, expected) {
                    (Ok(Added::New(a)), Ok(Added::New(b)))
                    | (Ok(Added::Updated(a)), Ok(Added::Updated(b)))
                    | (Ok(Added::Same(a)), Ok(Added::Same(b))) => assert!(a == b),
                    (g, e) => assert_eq!(g, e),
                }
            }
            Op::Remove(m) => assert_eq!(z.remove(&m), model.map.remove(&m).is_some()),
            Op::RemoveRanks(start, n) => {
                let sorted = model.sorted();
                let n = n.min(sorted.len().saturating_sub(start));
                z.remove_ranks(start, n);
                for (m, _) in sorted.iter().skip(start).take(n) {
                    model.map.remove(m);
                }
            }
            Op::RemoveScores(r) => {
                let sorted = model.sorted();
                let ranks = model_range(&sorted, &r);
                assert_eq!(z.remove_score_range(&r), ranks.len());
                for i in ranks {
                    model.map.remove(&sorted[i].0);
                }
            }
            Op::Pop(max) => {
                let sorted = model.sorted();
                let expected = if max { sorted.last() } else { sorted.first() };
                let got = z.pop(max);
                assert_eq!(got.as_ref().map(|p| &p.0), expected.map(|p| &p.0));
                if let Some((m, _)) = expected {
                    model.map.remove(m);
                }
            }
        }
        check(&z, &model, probe);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    #[test]
    fn behaves_like_the_model(
        ops in proptest::collection::vec(op(), 1..120),
        probe in proptest::collection::vec(range(), 4),
    ) {
        let limits = Limits { entries: 8, value: 6 };
        with_limits(limits.entries, limits.value, || run(ops, &probe, limits));
    }

    /// Lex ranges over members of one score, in both encodings: first, last, count and
    /// removal agree with a filter over the sorted members.
    #[test]
    fn lex_ranges_over_equal_scores(
        members in proptest::collection::btree_set(member(), 0..40),
        bounds in proptest::collection::vec((member(), any::<bool>(), 0u8..4), 2),
        big in any::<bool>(),
    ) {
        let bound = |(m, ex, kind): &(Vec<u8>, bool, u8)| match kind {
            0 => (LexBound::NegInf, true),
            1 => (LexBound::PosInf, true),
            _ => (LexBound::Value(m.clone()), *ex),
        };
        let (min, minex) = bound(&bounds[0]);
        let (max, maxex) = bound(&bounds[1]);
        let range = LexRange { min, max, minex, maxex };
        let pairs: Vec<(Vec<u8>, f64)> = members.iter().map(|m| (m.clone(), 1.0)).collect();
        let mut z = with_limits(if big { 0 } else { 1000 }, 1000, || ZSet::from_sorted(&pairs));
        let inside: Vec<usize> = (0..pairs.len())
            .filter(|&i| range.gte_min(&pairs[i].0) && range.lte_max(&pairs[i].0))
            .collect();
        prop_assert_eq!(z.first_in_lex(&range), inside.first().copied());
        prop_assert_eq!(z.last_in_lex(&range), inside.last().copied());
        prop_assert_eq!(z.count_in_lex(&range), inside.len());
        prop_assert_eq!(z.remove_lex_range(&range), inside.len());
        prop_assert_eq!(z.len(), pairs.len() - inside.len());
    }
}

#[test]
fn thresholds_choose_the_encoding() {
    with_limits(3, 4, || {
        let mut z = ZSet::new();
        for (i, m) in ["a", "b", "c"].iter().enumerate() {
            z.add(i as f64, m.as_bytes(), AddFlags::default())
                .expect("a number");
        }
        assert_eq!(z.encoding(), "listpack");
        z.add(9.0, b"d", AddFlags::default()).expect("a number");
        assert_eq!(z.encoding(), "skiplist");
        // Conversion is one way.
        while z.pop(false).is_some() {}
        assert_eq!(z.encoding(), "skiplist");
        let mut z = ZSet::new();
        z.add(1.0, b"abcde", AddFlags::default()).expect("a number");
        assert_eq!(z.encoding(), "skiplist");
        // Sets built whole take the encoding their size calls for.
        assert_eq!(ZSet::from_sorted(&[(b"abcd", 1.0)]).encoding(), "listpack");
        assert_eq!(ZSet::from_sorted(&[(b"abcde", 1.0)]).encoding(), "skiplist");
        let four: Vec<(Vec<u8>, f64)> = (0..4).map(|i| (vec![b'a' + i], 0.0)).collect();
        assert_eq!(ZSet::from_sorted(&four).encoding(), "skiplist");
    });
    with_limits(0, 64, || {
        let mut z = ZSet::new();
        z.add(1.0, b"a", AddFlags::default()).expect("a number");
        assert_eq!(z.encoding(), "skiplist");
    });
}

#[test]
fn listpack_drops_the_sign_of_zero_like_redis() {
    with_limits(128, 64, || {
        let mut z = ZSet::new();
        z.add(-0.0, b"a", AddFlags::default()).expect("a number");
        assert!(z
            .score(b"a")
            .is_some_and(|s| s == 0.0 && s.is_sign_positive()));
        let mut big = ZSet::from_sorted(&[(b"x".repeat(100), 1.0)]);
        big.add(-0.0, b"a", AddFlags::default()).expect("a number");
        assert!(big.score(b"a").is_some_and(|s| s.is_sign_negative()));
    });
}

#[test]
fn scores_keep_every_bit_in_the_listpack() {
    with_limits(128, 64, || {
        let scores = [
            0.1,
            -1.5e-300,
            4.9e-324,
            1e17,
            2f64.powi(61),
            2f64.powi(62),
            -(2f64.powi(62)),
            9.2e18,
            f64::INFINITY,
            f64::NEG_INFINITY,
            123456789.0,
        ];
        let mut z = ZSet::new();
        for (i, s) in scores.iter().enumerate() {
            z.add(*s, format!("m{i}").as_bytes(), AddFlags::default())
                .expect("a number");
        }
        assert_eq!(z.encoding(), "listpack");
        for (i, s) in scores.iter().enumerate() {
            assert_eq!(
                z.score(format!("m{i}").as_bytes()).map(f64::to_bits),
                Some(s.to_bits())
            );
        }
        // Integers take listpack integer entries: one byte each for a small member and score
        // (sorted set listpacks carry no back-lengths).
        let mut small = ZSet::new();
        small.add(5.0, b"7", AddFlags::default()).expect("a number");
        let Enc::Packed(lp) = small.enc.get() else {
            panic!("listpack")
        };
        assert_eq!(lp.bytes(), 2);
        // Other scores take 9 bytes, where Redis writes up to 26 characters.
        small.add(0.1, b"8", AddFlags::default()).expect("a number");
        let Enc::Packed(lp) = small.enc.get() else {
            panic!("listpack")
        };
        assert_eq!(lp.bytes(), 2 + 1 + 9);
    });
}

#[test]
fn big_sets_stay_consistent_through_churn() {
    // A deterministic walk through a few thousand elements: sequential appends, random
    // updates and deletions, pops from both ends.
    let mut z = with_limits(16, 64, || {
        let mut z = ZSet::new();
        for i in 0..3000u32 {
            z.add(
                f64::from(i),
                format!("m{i}").as_bytes(),
                AddFlags::default(),
            )
            .expect("a number");
        }
        z
    });
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    for _ in 0..6000 {
        let i = next() % 4000;
        let m = format!("m{i}");
        match next() % 4 {
            0 => {
                z.remove(m.as_bytes());
            }
            1 => {
                let _ = z.pop(next() % 2 == 0);
            }
            _ => {
                z.add((next() % 100) as f64, m.as_bytes(), AddFlags::default())
                    .expect("a number");
            }
        }
    }
    let Enc::Big(r) = z.enc.get() else {
        panic!("skiplist")
    };
    r.check();
    let mut cursor = 0;
    let mut seen = 0;
    loop {
        cursor = z.scan(cursor, 10, |_, _| seen += 1);
        if cursor == 0 {
            break;
        }
    }
    assert_eq!(seen, z.len());
}

/// Memory per element of many small sets (run with `--ignored --nocapture`, release).
#[test]
#[ignore]
fn memory_per_element_probe() {
    fn rss() -> usize {
        let s = std::fs::read_to_string("/proc/self/statm").expect("statm");
        s.split(' ')
            .nth(1)
            .and_then(|p| p.parse::<usize>().ok())
            .unwrap_or(0)
            * 4096
    }
    let keys = 100_000;
    let before = rss();
    let mut sets = Vec::with_capacity(keys);
    let mut elements = 0;
    let mut cap = 0;
    let mut len = 0;
    for i in 0..keys {
        let n = 10 + (i * 7919) % 91;
        let mut z = ZSet::new();
        for j in 0..n {
            z.add(
                (j * 10) as f64,
                format!("member{j}").as_bytes(),
                AddFlags::default(),
            )
            .expect("a number");
        }
        elements += n;
        if let Enc::Packed(lp) = z.enc.get() {
            cap += lp.capacity();
            len += lp.bytes();
        }
        sets.push(z);
    }
    let after = rss();
    println!(
        "elements {elements} rss/elem {:.2} capacity/elem {:.2} bytes/elem {:.2}",
        (after - before) as f64 / elements as f64,
        cap as f64 / elements as f64,
        len as f64 / elements as f64
    );
}

/// Per-key cost of the keyspace around small sets (run with `--ignored --nocapture`).
#[test]
#[ignore]
fn memory_per_key_probe() {
    fn rss() -> usize {
        let s = std::fs::read_to_string("/proc/self/statm").expect("statm");
        s.split(' ')
            .nth(1)
            .and_then(|p| p.parse::<usize>().ok())
            .unwrap_or(0)
            * 4096
    }
    let keys = 100_000;
    let mut shard = crate::storage::ShardData::new(0, 16);
    let before = rss();
    let mut elements = 0;
    {
        let mut ks = crate::storage::Keyspace::one(&mut shard, 1, 0, 0);
        for i in 0..keys {
            let n = 10 + (i * 7919) % 91;
            let mut z = ZSet::new();
            for j in 0..n {
                z.add(
                    (j * 10) as f64,
                    format!("member{j}").as_bytes(),
                    AddFlags::default(),
                )
                .expect("a number");
            }
            elements += n;
            ks.set(format!("z:{i}").as_bytes(), crate::storage::Value::ZSet(z));
        }
    }
    let after = rss();
    println!(
        "keys {keys} elements {elements} rss/elem {:.2} rss/key {:.1} entry size {}",
        (after - before) as f64 / elements as f64,
        (after - before) as f64 / keys as f64,
        std::mem::size_of::<crate::storage::Entry>()
    );
}

/// Memory per element of big sets in the skiplist encoding (run with `--ignored --nocapture`).
#[test]
#[ignore]
fn memory_per_element_big_probe() {
    fn rss() -> usize {
        let s = std::fs::read_to_string("/proc/self/statm").expect("statm");
        s.split(' ')
            .nth(1)
            .and_then(|p| p.parse::<usize>().ok())
            .unwrap_or(0)
            * 4096
    }
    let keys = 10_000;
    let before = rss();
    let mut sets = Vec::with_capacity(keys);
    let mut heap = 0;
    for i in 0..keys {
        let mut z = ZSet::new();
        for j in 0..1000 {
            let score = ((i % 1000) as f64) * 0.37 + (j as f64) * 1.1 + 0.0001;
            z.add(score, format!("member{j}").as_bytes(), AddFlags::default())
                .expect("a number");
        }
        heap += z.heap_bytes();
        sets.push(z);
    }
    let after = rss();
    let elements = keys * 1000;
    println!(
        "big: elements {elements} rss/elem {:.2} heap/elem {:.2}",
        (after - before) as f64 / elements as f64,
        heap as f64 / elements as f64
    );
}
