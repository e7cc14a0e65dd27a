//! Set algebra with Redis 7.0's algorithms (`sinterGenericCommand`,
//! `sunionDiffGenericCommand`), kept because they decide both the cost and what a client
//! sees: the order of SINTER's reply (the smallest set's order) and the encoding of a stored
//! result (every result starts as an empty intset and grows through `Set::add_ref`, so it is
//! an intset exactly when Redis's would be one).
//!
//! Inputs are borrowed sets; a missing key is `None` (an empty set). The same key given twice
//! is the same `&Set`, recognised by address as Redis compares object pointers.

use super::{intset_entries_max, MemberRef, Set, SetFull};

/// The sets sorted by ascending cardinality (Redis sorts before intersecting).
fn by_size<'a>(sets: &[&'a Set]) -> Vec<&'a Set> {
    let mut v = sets.to_vec();
    v.sort_by_key(|s| s.len());
    v
}

/// Calls `f` with each member of the intersection of `sets` (all present, at least one), in
/// the smallest set's iteration order, until `f` returns false.
pub fn intersect_each<'a>(sets: &[&'a Set], mut f: impl FnMut(MemberRef<'a>) -> bool) {
    let sorted = by_size(sets);
    let Some((&first, rest)) = sorted.split_first() else {
        return;
    };
    'members: for m in first.iter() {
        for &s in rest {
            if !std::ptr::eq(s, first) && !s.contains_ref(m) {
                continue 'members;
            }
        }
        if !f(m) {
            return;
        }
    }
}

/// SINTERCARD: the intersection's size, counting stopped at `limit` (0 = no limit).
pub fn inter_card(sets: &[&Set], limit: usize) -> usize {
    let mut n = 0;
    intersect_each(sets, |_| {
        n += 1;
        limit == 0 || n < limit
    });
    n
}

/// SINTERSTORE's result.
pub fn inter(sets: &[&Set]) -> Result<Set, SetFull> {
    let max = intset_entries_max();
    let mut out = Set::new_intset();
    let mut res = Ok(());
    intersect_each(sets, |m| match out.add_ref(m, max) {
        Ok(_) => true,
        Err(e) => {
            res = Err(e);
            false
        }
    });
    res.map(|()| out)
}

/// SUNION's and SUNIONSTORE's result.
pub fn union(sets: &[Option<&Set>]) -> Result<Set, SetFull> {
    let max = intset_entries_max();
    let mut out = Set::new_intset();
    for s in sets.iter().flatten() {
        for m in s.iter() {
            out.add_ref(m, max)?;
        }
    }
    Ok(out)
}

/// SDIFF's and SDIFFSTORE's result: the first set minus all the others.
///
/// Redis picks between two algorithms by estimated work: (1) test each member of the first
/// set against the others, sorted largest first, O(|first| * sets); (2) copy the first set
/// and remove every member of the others, O(total). Algorithm 1 gets a factor 2 advantage.
/// The choice shows in the result's encoding (algorithm 2's copy may have converted before
/// the removals), so it is kept.
pub fn diff(sets: &[Option<&Set>]) -> Result<Set, SetFull> {
    let max = intset_entries_max();
    let mut out = Set::new_intset();
    let Some((Some(first), rest)) = sets.split_first() else {
        return Ok(out);
    };
    if rest.iter().flatten().any(|s| std::ptr::eq(*s, *first)) {
        return Ok(out);
    }
    let present: Vec<&Set> = rest.iter().flatten().copied().collect();
    let algo_one_work = (first.len() * (present.len() + 1)) / 2;
    let algo_two_work = first.len() + present.iter().map(|s| s.len()).sum::<usize>();
    if algo_one_work <= algo_two_work {
        let mut others = present;
        others.sort_by_key(|s| std::cmp::Reverse(s.len()));
        for m in first.iter() {
            if !others.iter().any(|s| s.contains_ref(m)) {
                out.add_ref(m, max)?;
            }
        }
    } else {
        for m in first.iter() {
            out.add_ref(m, max)?;
        }
        for s in present {
            if out.is_empty() {
                break;
            }
            for m in s.iter() {
                out.remove_ref(m);
            }
        }
    }
    Ok(out)
}
