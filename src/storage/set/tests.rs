//! Model-based tests: `Set` against a `BTreeSet<Vec<u8>>` through random operation sequences
//! that cross the intset/hashtable conversion, plus the set algebra against the model's.

use super::rng::Rng;
use super::*;
use proptest::prelude::*;
use std::collections::BTreeSet;

type Model = BTreeSet<Vec<u8>>;

/// Members that exercise every branch: small, 32-bit and 64-bit integers, strings that look
/// like integers but are not canonical, and plain strings.
fn member() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        (-40i64..40).prop_map(|n| n.to_string().into_bytes()),
        prop::sample::select(vec![
            i64::MIN,
            i64::MAX,
            70_000,
            -70_000,
            1 << 40,
            32767,
            -32768,
            32768
        ])
        .prop_map(|n| n.to_string().into_bytes()),
        prop::sample::select(vec![
            "01",
            "+1",
            "-0",
            "",
            " 1",
            "1 ",
            "9223372036854775808"
        ])
        .prop_map(|s| s.as_bytes().to_vec()),
        "[a-e]{1,3}".prop_map(String::into_bytes),
    ]
}

#[derive(Debug, Clone)]
enum Op {
    Add(Vec<u8>),
    Remove(Vec<u8>),
    RemoveAt(usize),
    Contains(Vec<u8>),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => member().prop_map(Op::Add),
        2 => member().prop_map(Op::Remove),
        1 => any::<usize>().prop_map(Op::RemoveAt),
        1 => member().prop_map(Op::Contains),
    ]
}

fn is_int(m: &[u8]) -> bool {
    parse_canonical_i64(m).is_some()
}

fn members_of(s: &Set) -> Model {
    s.iter().map(|m| m.to_vec()).collect()
}

fn check_against(s: &Set, model: &Model, expect_intset: bool) {
    assert_eq!(s.len(), model.len());
    assert_eq!(members_of(s), *model);
    assert_eq!(s.iter().len(), model.len());
    for (i, m) in s.iter().enumerate() {
        assert_eq!(s.get(i), Some(m));
    }
    assert_eq!(s.get(s.len()), None);
    let expected = if expect_intset { "intset" } else { "hashtable" };
    assert_eq!(s.encoding(), expected);
    if let Repr::Int(is) = &s.repr {
        let v: Vec<i64> = is.iter().collect();
        assert!(v.windows(2).all(|w| w[0] < w[1]), "intset not sorted");
    }
    if let Repr::Table(t) = &s.repr {
        t.check();
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    #[test]
    fn set_matches_model(ops in prop::collection::vec(op(), 1..300), max in 0usize..40) {
        let mut s = Set::new_intset();
        let mut model = Model::new();
        let mut intset = true;
        for op in ops {
            match op {
                Op::Add(m) => {
                    let added = s.add_ref(MemberRef::Bytes(&m), max).map_err(|_| "full");
                    prop_assert_eq!(added, Ok(model.insert(m.clone())));
                    // An intset converts on a non-integer, or when an insert passes `max`.
                    if !is_int(&m) || (added == Ok(true) && model.len() > max) {
                        intset = false;
                    }
                }
                Op::Remove(m) => prop_assert_eq!(s.remove(&m), model.remove(&m)),
                Op::RemoveAt(i) => {
                    if model.is_empty() {
                        prop_assert!(!s.remove_at(i));
                    } else {
                        let i = i % model.len();
                        let m = s.get(i).map(|m| m.to_vec()).unwrap_or_default();
                        prop_assert!(s.remove_at(i));
                        prop_assert!(model.remove(&m));
                    }
                }
                Op::Contains(m) => prop_assert_eq!(s.contains(&m), model.contains(&m)),
            }
            check_against(&s, &model, intset);
        }
    }

    #[test]
    fn scan_returns_every_member(
        members in prop::collection::btree_set(member(), 0..200),
        count in 1usize..20,
        start_as_table in any::<bool>(),
    ) {
        let mut s = if start_as_table { Set::new_table(0) } else { Set::new_intset() };
        for m in &members {
            s.add_ref(MemberRef::Bytes(m), 16).ok();
        }
        let mut seen = Model::new();
        let mut cursor = 0u64;
        let mut calls = 0;
        loop {
            cursor = s.scan(cursor, count, |m| { seen.insert(m.to_vec()); });
            calls += 1;
            if cursor == 0 || calls > 100_000 {
                break;
            }
        }
        prop_assert_eq!(seen, members);
    }

    #[test]
    fn algebra_matches_model(
        a in prop::collection::btree_set(member(), 0..60),
        b in prop::collection::btree_set(member(), 0..60),
        c in prop::collection::btree_set(member(), 0..60),
        c_missing in any::<bool>(),
    ) {
        let build = |m: &Model| {
            let mut s = Set::new_intset();
            for x in m {
                s.add(x).ok();
            }
            s
        };
        let (sa, sb, sc) = (build(&a), build(&b), build(&c));
        let c = if c_missing { Model::new() } else { c };
        let opt_c = if c_missing { None } else { Some(&sc) };
        let sets = [Some(&sa), Some(&sb), opt_c];

        let union = ops::union(&sets).map_err(|_| TestCaseError::fail("set full"))?;
        let want: Model = a.iter().chain(&b).chain(&c).cloned().collect();
        let all_int = want.iter().all(|m| is_int(m)) && want.len() <= intset_entries_max();
        prop_assert_eq!(members_of(&union), want);
        prop_assert_eq!(union.encoding() == "intset", all_int);

        let diff = ops::diff(&sets).map_err(|_| TestCaseError::fail("set full"))?;
        let want: Model = a.iter().filter(|m| !b.contains(*m) && !c.contains(*m)).cloned().collect();
        prop_assert_eq!(members_of(&diff), want);

        let same = ops::diff(&[Some(&sa), None, Some(&sa)]).map_err(|_| TestCaseError::fail("set full"))?;
        prop_assert!(same.is_empty());

        if !c_missing {
            let inter = ops::inter(&[&sa, &sb, &sc]).map_err(|_| TestCaseError::fail("set full"))?;
            let want: Model = a.iter().filter(|m| b.contains(*m) && c.contains(*m)).cloned().collect();
            prop_assert_eq!(ops::inter_card(&[&sa, &sb, &sc], 0), want.len());
            prop_assert_eq!(ops::inter_card(&[&sa, &sb, &sc], 1), want.len().min(1));
            let all_int = want.iter().all(|m| is_int(m));
            prop_assert_eq!(members_of(&inter), want);
            prop_assert_eq!(inter.encoding() == "intset", all_int);
        }
        prop_assert_eq!(ops::inter_card(&[&sa, &sa], 0), a.len());
    }
}

#[test]
fn conversion_at_the_threshold_and_never_back() {
    let mut s = Set::new_intset();
    for i in 0..4 {
        assert_eq!(s.add_ref(MemberRef::Int(i), 4), Ok(true));
    }
    assert_eq!(s.encoding(), "intset");
    assert_eq!(s.add_ref(MemberRef::Int(3), 4), Ok(false));
    assert_eq!(s.encoding(), "intset");
    assert_eq!(s.add_ref(MemberRef::Int(4), 4), Ok(true));
    assert_eq!(s.encoding(), "hashtable");
    for i in 0..5 {
        assert!(s.remove_ref(MemberRef::Int(i)) || i == 99);
    }
    assert!(s.is_empty());
    assert_eq!(s.encoding(), "hashtable");
    assert!(s.contains(b"x") || s.add(b"x") == Ok(true));
    let mut t = Set::new_intset();
    assert_eq!(t.add(b"12"), Ok(true));
    assert_eq!(t.add(b"012"), Ok(true));
    assert_eq!(t.encoding(), "hashtable");
    assert!(t.contains(b"12") && t.contains(b"012") && !t.contains(b"+12"));
    assert_eq!(Set::new_for(b"-5").encoding(), "intset");
    assert_eq!(Set::new_for(b"-0").encoding(), "hashtable");
}

#[test]
fn a_set_value_is_small() {
    assert_eq!(std::mem::size_of::<Set>(), 24);
    assert_eq!(std::mem::size_of::<IntSet>(), 24);
}

#[test]
fn equality_ignores_encoding() {
    let mut a = Set::new_intset();
    let mut b = Set::new_table(0);
    for m in [&b"1"[..], b"2", b"3"] {
        a.add(m).ok();
        b.add(m).ok();
    }
    assert_eq!(a.encoding(), "intset");
    assert_eq!(b.encoding(), "hashtable");
    assert_eq!(a, b);
    b.remove(b"3");
    assert_ne!(a, b);
}

#[test]
fn random_index_is_uniform() {
    let seed = Rng::from_os().next_u64();
    let mut rng = Rng::seeded(seed);
    for table in [false, true] {
        let mut s = if table {
            Set::new_table(0)
        } else {
            Set::new_intset()
        };
        for i in 0..10 {
            s.add(i.to_string().as_bytes()).ok();
        }
        let mut counts = [0u32; 10];
        for _ in 0..10_000 {
            counts[s.random_index(&mut rng)] += 1;
        }
        let chi: f64 = counts
            .iter()
            .map(|&c| (c as f64 - 1000.0).powi(2) / 1000.0)
            .sum();
        // df = 9: 40 is the 0.001 % critical value Redis's suite uses.
        assert!(
            chi < 40.0,
            "seed {seed}: chi-square {chi} counts {counts:?}"
        );
    }
}

/// Resident set size of this process in bytes (Linux).
fn rss_bytes() -> usize {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: usize = statm
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    pages * 4096
}

/// Memory per member of 1M sets of 10–100 members: `user:<id below 10^7>` strings (hashtable
/// encoding) and integers below 10^7 (intset, 32-bit). Run with
/// `cargo test --release --lib set_memory_per_member -- --ignored --nocapture`; this test
/// runs on the test binary's allocator, so for figures comparable with Redis the same loop
/// was run in a scratch binary on the server's allocator (mimalloc), and the same data was
/// loaded into both servers with paced pipelines of 500 SADDs (55,032,636 and 54,991,618
/// members). Measured (bytes per member):
///
/// | shape     | shardis sets only (RSS) | Redis 7.0.15 sets only (used_memory − keys) |
/// |-----------|-------------------------|---------------------------------------------|
/// | hashtable | 52.5                    | 66.1                                        |
/// | intset    | 4.9                     | 4.8                                         |
///
/// Whole servers, hashtable shape, keys included: shardis 55.9 B/member of RSS, Redis 69.4
/// (RSS) or 67.2 (`used_memory`). Intsets cost the same 4 bytes per member in both; the
/// per-set wrapper is 24 bytes here against Redis's 16-byte robj plus 8-byte header.
#[test]
#[ignore]
fn set_memory_per_member() {
    const SETS: usize = 1_000_000;
    let mut rng = Rng::seeded(7);
    for strings in [true, false] {
        let before = rss_bytes();
        let mut sets: Vec<Box<Set>> = Vec::with_capacity(SETS);
        let vec_bytes = SETS * std::mem::size_of::<Box<Set>>();
        let (mut members, mut heap) = (0usize, 0usize);
        for _ in 0..SETS {
            let n = 10 + rng.index(91);
            let mut s = Set::new_intset();
            for _ in 0..n {
                let id = rng.below(10_000_000);
                let m = if strings {
                    format!("user:{id}")
                } else {
                    id.to_string()
                };
                s.add(m.as_bytes()).ok();
            }
            members += s.len();
            heap += s.heap_bytes() + std::mem::size_of::<Set>();
            sets.push(Box::new(s));
        }
        let rss = rss_bytes().saturating_sub(before).saturating_sub(vec_bytes);
        println!(
            "{}: {} sets, {} members, {:.1} B/member by RSS, {:.1} B/member payload",
            sets[0].encoding(),
            SETS,
            members,
            rss as f64 / members as f64,
            heap as f64 / members as f64
        );
        drop(sets);
    }
}
