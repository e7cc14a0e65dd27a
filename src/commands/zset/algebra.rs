//! ZUNION, ZINTER, ZDIFF, their STORE forms and ZINTERCARD (`zunionInterDiffGenericCommand`).
//!
//! Inputs may be sorted sets or plain sets (every member scoring 1). Each input is looked up
//! once, in argument order, for statistics and the type check; the work then visits one input
//! at a time again (`peek_zset`), because a handler holds one borrow of the keyspace at a time:
//! - ZINTER copies the smallest input (the result is a subset of it) and filters and
//!   aggregates it against each other input in turn, smallest first;
//! - ZUNION accumulates member -> score over the inputs, smallest first;
//! - ZDIFF copies the first input and removes what any other holds.
//!
//! Per member, scores are combined in the same order as Redis (inputs sorted by size with a
//! stable sort, as glibc's merge-sort `qsort` is), so sums round identically; a NaN from
//! `weight * score` counts as 0 and an `inf + -inf` sum as 0, as in Redis. Results are ordered
//! by (score, member) and a stored result gets the encoding its size calls for.

use super::{
    err, pair, pairs_header, parse, peek_zset, set_members, Args, Keyspace, Out, Value, ZSet,
};
use crate::storage::listpack::Item;
use hashbrown::{HashMap, HashSet};
use std::cmp::Ordering;

const ERR_WEIGHT: &str = "ERR weight value is not a float";
const ERR_LIMIT_NEGATIVE: &str = "ERR LIMIT can't be negative";

#[derive(Clone, Copy, PartialEq, Eq)]
enum Op {
    Union,
    Inter,
    Diff,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Aggregate {
    Sum,
    Min,
    Max,
}

/// `zunionInterAggregate`.
fn aggregate(target: &mut f64, value: f64, how: Aggregate) {
    match how {
        Aggregate::Sum => {
            *target += value;
            if target.is_nan() {
                *target = 0.0;
            }
        }
        Aggregate::Min => {
            if value < *target {
                *target = value;
            }
        }
        Aggregate::Max => {
            if value > *target {
                *target = value;
            }
        }
    }
}

/// One input: where its key is, what it holds, its weight.
struct Input {
    arg: usize,
    len: usize,
    weight: f64,
    /// The members of a plain set input (sorted sets are read in place).
    set: Option<Vec<Vec<u8>>>,
}

impl Input {
    /// The input's score for `member`, weighted, when it holds it.
    fn score_of(
        &self,
        ks: &mut Keyspace,
        args: &Args,
        member: &[u8],
        set: &Option<HashSet<&[u8]>>,
    ) -> Option<f64> {
        let s = match set {
            Some(members) => members.contains(member).then_some(1.0),
            None => peek_zset(ks, &args[self.arg]).and_then(|z| z.score(member)),
        }?;
        Some(s * self.weight)
    }

    /// Calls `f` with every (member, unweighted score) of the input.
    fn for_each(&self, ks: &mut Keyspace, args: &Args, mut f: impl FnMut(&[u8], f64)) {
        if let Some(members) = &self.set {
            for m in members {
                f(m, 1.0);
            }
        } else if let Some(z) = peek_zset(ks, &args[self.arg]) {
            for (m, s) in z.iter() {
                m.with_bytes(|b| f(b, s));
            }
        }
    }
}

/// The parsed command.
struct Parsed {
    inputs: Vec<Input>,
    how: Aggregate,
    withscores: bool,
    /// ZINTERCARD's LIMIT (0: none).
    limit: usize,
}

/// Parses numkeys, looks every input up (WRONGTYPE for anything but a set or sorted set),
/// then parses the options, in Redis's order.
fn parse_and_lookup(
    ks: &mut Keyspace,
    args: &Args,
    numkeys_idx: usize,
    op: Op,
    store: bool,
    card_only: bool,
    name: &str,
) -> Result<Parsed, String> {
    let setnum = parse::i64_arg(&args[numkeys_idx]).map_err(str::to_string)?;
    if setnum < 1 {
        return Err(format!(
            "ERR at least 1 input key is needed for '{name}' command"
        ));
    }
    let first = numkeys_idx + 1;
    if setnum as u64 > (args.len() - first) as u64 {
        return Err(err::SYNTAX.to_string());
    }
    let setnum = setnum as usize;
    let mut p = Parsed {
        inputs: lookup_inputs(ks, args, first, setnum)?,
        how: Aggregate::Sum,
        withscores: false,
        limit: 0,
    };
    let mut j = first + setnum;
    while j < args.len() {
        j += parse_option(args, j, op, store, card_only, &mut p)?;
    }
    Ok(p)
}

/// Looks the `setnum` inputs from `args[first]` up, in order (`lookupKeyRead` each).
fn lookup_inputs(
    ks: &mut Keyspace,
    args: &Args,
    first: usize,
    setnum: usize,
) -> Result<Vec<Input>, String> {
    let mut inputs = Vec::with_capacity(setnum);
    for (arg, key) in args.iter().enumerate().skip(first).take(setnum) {
        let (len, set) = match ks.lookup_read(key).map(|e| &e.value) {
            None => (0, None),
            Some(Value::ZSet(z)) => (z.len(), None),
            Some(v) => match set_members(v) {
                Some(members) => (members.len(), Some(members)),
                None => return Err(err::WRONGTYPE.to_string()),
            },
        };
        inputs.push(Input {
            arg,
            len,
            weight: 1.0,
            set,
        });
    }
    Ok(inputs)
}

/// Parses the option at `args[j]`; returns how many arguments it took.
fn parse_option(
    args: &Args,
    j: usize,
    op: Op,
    store: bool,
    card_only: bool,
    p: &mut Parsed,
) -> Result<usize, String> {
    let remaining = args.len() - j;
    let setnum = p.inputs.len();
    let a = &args[j];
    if op != Op::Diff && !card_only && remaining > setnum && parse::kw(a, "weights") {
        for (k, input) in p.inputs.iter_mut().enumerate() {
            input.weight =
                super::number::string2d(&args[j + 1 + k]).ok_or(ERR_WEIGHT.to_string())?;
        }
        Ok(1 + setnum)
    } else if op != Op::Diff && !card_only && remaining >= 2 && parse::kw(a, "aggregate") {
        let how = &args[j + 1];
        p.how = if parse::kw(how, "sum") {
            Aggregate::Sum
        } else if parse::kw(how, "min") {
            Aggregate::Min
        } else if parse::kw(how, "max") {
            Aggregate::Max
        } else {
            return Err(err::SYNTAX.to_string());
        };
        Ok(2)
    } else if !store && !card_only && parse::kw(a, "withscores") {
        p.withscores = true;
        Ok(1)
    } else if card_only && remaining >= 2 && parse::kw(a, "limit") {
        p.limit = parse::i64_arg(&args[j + 1])
            .ok()
            .and_then(|n| usize::try_from(n).ok())
            .ok_or(ERR_LIMIT_NEGATIVE.to_string())?;
        Ok(2)
    } else {
        Err(err::SYNTAX.to_string())
    }
}

/// A plain set input's members as a lookup table.
fn set_table(input: &Input) -> Option<HashSet<&[u8]>> {
    input
        .set
        .as_ref()
        .map(|v| v.iter().map(Vec::as_slice).collect())
}

fn inter(ks: &mut Keyspace, args: &Args, p: &Parsed) -> Vec<(Vec<u8>, f64)> {
    let Some(smallest) = p.inputs.first().filter(|i| i.len > 0) else {
        return Vec::new();
    };
    let mut acc: Vec<(Vec<u8>, f64)> = Vec::with_capacity(smallest.len);
    smallest.for_each(ks, args, |m, s| {
        let score = smallest.weight * s;
        acc.push((m.to_vec(), if score.is_nan() { 0.0 } else { score }));
    });
    for input in &p.inputs[1..] {
        let table = set_table(input);
        acc.retain_mut(|(m, score)| match input.score_of(ks, args, m, &table) {
            Some(v) => {
                aggregate(score, v, p.how);
                true
            }
            None => false,
        });
        if acc.is_empty() {
            break;
        }
    }
    acc
}

fn union(ks: &mut Keyspace, args: &Args, p: &Parsed) -> Vec<(Vec<u8>, f64)> {
    let largest = p.inputs.last().map_or(0, |i| i.len);
    let mut acc: HashMap<Vec<u8>, f64> = HashMap::with_capacity(largest);
    for input in p.inputs.iter().filter(|i| i.len > 0) {
        input.for_each(ks, args, |m, s| {
            let mut score = input.weight * s;
            if score.is_nan() {
                score = 0.0;
            }
            match acc.get_mut(m) {
                Some(existing) => aggregate(existing, score, p.how),
                None => {
                    acc.insert(m.to_vec(), score);
                }
            }
        });
    }
    acc.into_iter().collect()
}

fn diff(ks: &mut Keyspace, args: &Args, p: &Parsed) -> Vec<(Vec<u8>, f64)> {
    let Some(first) = p.inputs.first().filter(|i| i.len > 0) else {
        return Vec::new();
    };
    let mut acc: Vec<(Vec<u8>, f64)> = Vec::with_capacity(first.len);
    first.for_each(ks, args, |m, s| acc.push((m.to_vec(), s)));
    for input in p.inputs[1..].iter().filter(|i| i.len > 0) {
        let table = set_table(input);
        acc.retain(|(m, _)| input.score_of(ks, args, m, &table).is_none());
        if acc.is_empty() {
            break;
        }
    }
    acc
}

fn by_score_then_member(a: &(Vec<u8>, f64), b: &(Vec<u8>, f64)) -> Ordering {
    a.1.partial_cmp(&b.1)
        .unwrap_or(Ordering::Equal)
        .then_with(|| a.0.cmp(&b.0))
}

/// The generic command: `dst` for the STORE forms, `card_only` for ZINTERCARD.
fn generic(
    ks: &mut Keyspace,
    args: &Args,
    out: &mut Out,
    dst: Option<&[u8]>,
    op: Op,
    card_only: bool,
    name: &str,
) {
    let numkeys_idx = if dst.is_some() { 2 } else { 1 };
    let mut p = match parse_and_lookup(ks, args, numkeys_idx, op, dst.is_some(), card_only, name) {
        Ok(p) => p,
        Err(e) => return out.error(&e),
    };
    if op != Op::Diff {
        p.inputs.sort_by_key(|i| i.len);
    }
    let mut result = match op {
        Op::Inter => inter(ks, args, &p),
        Op::Union => union(ks, args, &p),
        Op::Diff => diff(ks, args, &p),
    };
    if card_only {
        let n = result.len();
        return out.int(if p.limit > 0 { n.min(p.limit) } else { n } as i64);
    }
    result.sort_by(by_score_then_member);
    let Some(dst) = dst else {
        pairs_header(out, result.len(), p.withscores);
        for (m, s) in &result {
            pair(out, Item::Str(m), *s, p.withscores);
        }
        return;
    };
    if result.is_empty() {
        out.int(0);
        if ks.remove(dst).is_some() {
            ks.signal_modified(dst);
            ks.notify('g', "del", dst);
            ks.dirty(1);
        }
        return;
    }
    let n = result.len();
    ks.set(dst, Value::ZSet(ZSet::from_sorted(&result)));
    ks.signal_modified(dst);
    out.int(n as i64);
    let event = match op {
        Op::Union => "zunionstore",
        Op::Inter => "zinterstore",
        Op::Diff => "zdiffstore",
    };
    ks.notify('z', event, dst);
    ks.dirty(1);
}

pub(super) fn zunion(ks: &mut Keyspace, args: &Args, out: &mut Out) {
    generic(ks, args, out, None, Op::Union, false, "zunion");
}

pub(super) fn zinter(ks: &mut Keyspace, args: &Args, out: &mut Out) {
    generic(ks, args, out, None, Op::Inter, false, "zinter");
}

pub(super) fn zintercard(ks: &mut Keyspace, args: &Args, out: &mut Out) {
    generic(ks, args, out, None, Op::Inter, true, "zintercard");
}

pub(super) fn zdiff(ks: &mut Keyspace, args: &Args, out: &mut Out) {
    generic(ks, args, out, None, Op::Diff, false, "zdiff");
}

pub(super) fn zunionstore(ks: &mut Keyspace, args: &Args, out: &mut Out) {
    let dst = args[1].clone();
    generic(ks, args, out, Some(&dst), Op::Union, false, "zunionstore");
}

pub(super) fn zinterstore(ks: &mut Keyspace, args: &Args, out: &mut Out) {
    let dst = args[1].clone();
    generic(ks, args, out, Some(&dst), Op::Inter, false, "zinterstore");
}

pub(super) fn zdiffstore(ks: &mut Keyspace, args: &Args, out: &mut Out) {
    let dst = args[1].clone();
    generic(ks, args, out, Some(&dst), Op::Diff, false, "zdiffstore");
}
