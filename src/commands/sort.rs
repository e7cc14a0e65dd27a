//! SORT and SORT_RO (Redis's `sort.c`): the elements of a list, set or sorted set, sorted
//! numerically or alphabetically, by themselves or by weights read from other keys, with
//! LIMIT, GET projections and (SORT only) STORE into a list.
//!
//! Both commands carry `flag::ALL_SHARDS`: the BY and GET patterns name keys built from the
//! elements' contents (`weight_*`, `obj_*->field`), which no key position declares and which
//! may live on any shard, so the dispatcher locks every shard and the whole command runs
//! atomically over one `Keyspace` spanning them. The declared keys (the sorted key, and for
//! SORT the last STORE destination, found as Redis's `sortGetKeys` finds it) serve COMMAND
//! GETKEYS.
//!
//! The handler follows `sortCommandGeneric` step by step, because most of its behaviour is
//! observable:
//! - Options are parsed left to right; the first bad one answers (a LIMIT argument that is
//!   not an integer gives that error, an unknown word or a missing argument `ERR syntax
//!   error`, and so does STORE in SORT_RO). Later options override earlier ones, and a BY
//!   pattern without `*` turns sorting off for good (`dontsort`), even if another BY follows.
//! - Then the key is looked up (`WRONGTYPE` for strings and hashes; a missing key sorts as an
//!   empty list), and a sorted set is converted to its big encoding, as Redis does.
//! - `dontsort` keeps a list's or sorted set's own order (reversed by DESC) and reads only
//!   the LIMIT window from it; a set keeps its iteration order, except under STORE where it
//!   is sorted ALPHA instead so that what is stored is deterministic.
//! - Scores: with ALPHA, BY values compare as strings (a missing one first); without it the
//!   element or its BY value is read as a double with `strtod` (`score::sort_score`), a
//!   missing BY value counting as 0, and any unreadable one makes the command fail with
//!   "One or more scores can't be converted into double" (after all the lookups, as Redis).
//!   Equal scores fall back to comparing the elements, so numeric sorts are deterministic.
//!   Strings compare with `strcoll` under the environment's collation (Redis calls
//!   `setlocale(LC_COLLATE, "")`); in the C and C.UTF-8 locales that is `strcmp`, byte order
//!   stopping at the first NUL, which is what shardis does. STORE compares with `memcmp` and
//!   lengths instead.
//! - The sort is glibc's `qsort` (a stable merge sort: `slice::sort_by`), or Redis's partial
//!   quicksort `pqsort` over just the LIMIT window when BY is given and LIMIT narrows the
//!   output. Only ALPHA sorts by BY values can tie between different elements, and there the
//!   order of ties follows the algorithm, so both are reproduced.
//! - GET `#` yields the element, `pattern` a string key, `pattern->field` a hash field, and
//!   anything missing or of another type a nil (an empty string in a stored list).
//! - STORE writes a list (replacing the destination and its TTL, event `sortstore`, `dirty`
//!   by the number of stored elements) or deletes the destination when there is nothing to
//!   store (event `del`).
//!
//! Differences from Redis, by necessity: where Redis takes a set's or a sorted set's elements
//! in its hash table order (sets without sorting; the input of an ALPHA sort by BY values that
//! tie), ours are taken in our own iteration order, so those ties and unsorted hashtable sets
//! can come out in another order. Redis also never clears `errno` before `strtod`, so after
//! one out-of-range number every later numeric SORT fails until some unrelated system call
//! fails with another error; here each number is judged on its own. In scripts, as under
//! STORE, a set read with a constant BY is sorted ALPHA (its order must not depend on a hash
//! table). Not applicable yet: Redis refuses BY and GET patterns in cluster mode or to users
//! without access to every key.

mod score;
#[cfg(test)]
mod tests;

use super::zset::WrongType;
use super::{err, flag, parse, Args, Cmd, Keys};
use crate::protocol::Out;
use crate::storage::list::{End, Fill, List};
use crate::storage::value::RStr;
use crate::storage::{Keyspace, Value};
use std::cmp::Ordering;

const ACL_WRITE: &[&str] = &["write", "set", "sortedset", "list", "slow", "dangerous"];
const ACL_READ: &[&str] = &["read", "set", "sortedset", "list", "slow", "dangerous"];
const ERR_NOT_DOUBLE: &str = "ERR One or more scores can't be converted into double";

pub static COMMANDS: [Cmd; 2] = [
    Cmd::data(
        "sort",
        -2,
        flag::WRITE | flag::DENYOOM | flag::ALL_SHARDS,
        Keys::Custom(sort_keys),
        sort,
    )
    .with_acl(ACL_WRITE),
    Cmd::data(
        "sort_ro",
        -2,
        flag::READONLY | flag::ALL_SHARDS,
        Keys::Range(1, 1, 1),
        sort_ro,
    )
    .with_acl(ACL_READ),
];

/// SORT's keys as Redis's `sortGetKeys` finds them: the sorted key, and the argument after
/// the last STORE, skipping the arguments of LIMIT, GET and BY.
fn sort_keys(args: &Args) -> Vec<usize> {
    let mut store = None;
    let mut i = 2;
    while i < args.len() {
        let word = &args[i];
        if parse::kw(word, "limit") {
            i += 2;
        } else if parse::kw(word, "store") && i + 1 < args.len() {
            store = Some(i + 1);
        } else if parse::kw(word, "get") || parse::kw(word, "by") {
            i += 1;
        }
        i += 1;
    }
    std::iter::once(1).chain(store).collect()
}

fn sort(ks: &mut Keyspace, args: &Args, out: &mut Out) {
    sort_generic(ks, args, out, false);
}

fn sort_ro(ks: &mut Keyspace, args: &Args, out: &mut Out) {
    sort_generic(ks, args, out, true);
}

// ---------------------------------------------------------------------------------------
// Options.

/// The parsed options, with Redis's defaults.
struct Options<'a> {
    desc: bool,
    alpha: bool,
    limit_start: i64,
    /// -1 (or any negative) = to the end.
    limit_count: i64,
    store: Option<&'a [u8]>,
    by: Option<&'a [u8]>,
    /// A BY pattern without `*` was seen: nothing to sort, no weights to read.
    dontsort: bool,
    gets: Vec<&'a [u8]>,
}

/// The option loop of `sortCommandGeneric`: keywords compared as C strings, the first bad
/// option answering.
fn parse_options(args: &Args, readonly: bool) -> Result<Options<'_>, &'static str> {
    let mut o = Options {
        desc: false,
        alpha: false,
        limit_start: 0,
        limit_count: -1,
        store: None,
        by: None,
        dontsort: false,
        gets: Vec::new(),
    };
    let mut j = 2;
    while j < args.len() {
        let word = &args[j];
        let left = args.len() - j - 1;
        if parse::kw(word, "asc") {
            o.desc = false;
        } else if parse::kw(word, "desc") {
            o.desc = true;
        } else if parse::kw(word, "alpha") {
            o.alpha = true;
        } else if parse::kw(word, "limit") && left >= 2 {
            o.limit_start = parse::i64_arg(&args[j + 1])?;
            o.limit_count = parse::i64_arg(&args[j + 2])?;
            j += 2;
        } else if !readonly && parse::kw(word, "store") && left >= 1 {
            o.store = Some(&args[j + 1]);
            j += 1;
        } else if parse::kw(word, "by") && left >= 1 {
            o.by = Some(&args[j + 1]);
            if !c_str(&args[j + 1]).contains(&b'*') {
                o.dontsort = true;
            }
            j += 1;
        } else if parse::kw(word, "get") && left >= 1 {
            o.gets.push(&args[j + 1]);
            j += 1;
        } else {
            return Err(err::SYNTAX);
        }
        j += 1;
    }
    Ok(o)
}

/// The bytes C sees of an argument: up to its first NUL.
fn c_str(b: &[u8]) -> &[u8] {
    b.split(|&c| c == 0).next().unwrap_or(b)
}

// ---------------------------------------------------------------------------------------
// The command.

/// One element to sort, with what it sorts by.
struct Row {
    element: Vec<u8>,
    /// The numeric weight (0 when its BY key is missing).
    score: f64,
    /// The ALPHA weight read through BY (`None`: missing, sorts first).
    weight: Option<Vec<u8>>,
}

impl Row {
    fn new(element: Vec<u8>) -> Row {
        Row {
            element,
            score: 0.0,
            weight: None,
        }
    }
}

/// The elements to output: `rows[start..stop]` once sorted.
struct Loaded {
    rows: Vec<Row>,
    start: usize,
    stop: usize,
}

fn sort_generic(ks: &mut Keyspace, args: &Args, out: &mut Out, readonly: bool) {
    let mut o = match parse_options(args, readonly) {
        Ok(o) => o,
        Err(e) => return out.error(e),
    };
    let Ok(mut loaded) = load(ks, &args[1], &mut o) else {
        return out.error(err::WRONGTYPE);
    };
    if !o.dontsort {
        if !weigh(ks, &o, &mut loaded.rows) {
            // Redis still sorts, then discards the result; the reply is the same.
            return out.error(ERR_NOT_DOUBLE);
        }
        order(&o, &mut loaded);
    }
    let window = loaded.rows.get(loaded.start..loaded.stop).unwrap_or(&[]);
    match o.store {
        Some(dst) => store(ks, &o, dst, window, out),
        None => reply(ks, &o, window, out),
    }
}

/// Looks the key up and takes its elements (`Err` for a value of another type), settling
/// the LIMIT window and the cases where `dontsort` changes.
fn load(ks: &mut Keyspace, key: &[u8], o: &mut Options) -> Result<Loaded, WrongType> {
    let mut empty = Value::List(Default::default());
    let in_script = ks.in_script;
    let value = match ks.lookup_read(key) {
        Some(entry) => &mut entry.value,
        None => &mut empty,
    };
    let len = match value {
        Value::List(l) => l.len(),
        Value::Set(s) => {
            if o.dontsort && (o.store.is_some() || in_script) {
                // A set has no order of its own to keep: what STORE writes (or a script
                // sees) must not depend on its hash table, so it is sorted ALPHA after all.
                o.dontsort = false;
                o.alpha = true;
                o.by = None;
            }
            s.len()
        }
        Value::ZSet(z) => {
            z.convert_to_skiplist();
            z.len()
        }
        Value::Str(_) | Value::Hash(_) | Value::Stream(_) => return Err(WrongType),
    };
    let (start, stop) = window(len, o.limit_start, o.limit_count);
    let (rows, start, stop) = match value {
        Value::List(l) if o.dontsort => {
            let from = if o.desc {
                len.saturating_sub(1 + start)
            } else {
                start
            };
            let rows: Vec<Row> = l
                .iter_from(from, !o.desc)
                .take(stop - start)
                .map(|item| Row::new(item.to_vec()))
                .collect();
            (rows, 0, stop - start)
        }
        Value::List(l) => (rows_of(l.iter().map(|i| i.to_vec())), start, stop),
        Value::Set(s) => (rows_of(s.iter().map(|m| m.to_vec())), start, stop),
        Value::ZSet(z) if o.dontsort => {
            let from = if o.desc {
                len.saturating_sub(1 + start)
            } else {
                start
            };
            let rows: Vec<Row> = z
                .iter_from(from, o.desc)
                .take(stop - start)
                .map(|(m, _)| Row::new(m.to_vec()))
                .collect();
            (rows, 0, stop - start)
        }
        Value::ZSet(z) => (rows_of(z.iter().map(|(m, _)| m.to_vec())), start, stop),
        Value::Str(_) | Value::Hash(_) | Value::Stream(_) => return Err(WrongType),
    };
    Ok(Loaded { rows, start, stop })
}

fn rows_of(elements: impl Iterator<Item = Vec<u8>>) -> Vec<Row> {
    elements.map(Row::new).collect()
}

/// Redis's LIMIT arithmetic over `len` elements, as a half-open window `start..stop`
/// (`stop >= start`).
fn window(len: usize, limit_start: i64, limit_count: i64) -> (usize, usize) {
    let len = len as i64;
    let mut start = limit_start.clamp(0, len);
    let count = limit_count.clamp(-1, len);
    let mut end = if count < 0 {
        len - 1
    } else {
        start + count - 1
    };
    if start >= len {
        start = len - 1;
        end = len - 2;
    }
    end = end.min(len - 1);
    let start = start.max(0);
    (start as usize, (end + 1).max(start) as usize)
}

/// Reads every row's weight: through the BY pattern when there is one, else the element
/// itself. False when a numeric weight is not a double.
fn weigh(ks: &mut Keyspace, o: &Options, rows: &mut [Row]) -> bool {
    let mut all_numbers = true;
    for row in rows.iter_mut() {
        match o.by {
            Some(pattern) => {
                let alpha = o.alpha;
                let mut score = 0.0;
                let mut ok = true;
                let weight = with_pattern_value(ks, pattern, &row.element, |v| {
                    let v = v?;
                    if alpha {
                        return Some(v.to_vec());
                    }
                    match score::sort_score(v) {
                        Some(s) => score = s,
                        None => ok = false,
                    }
                    None
                });
                row.weight = weight;
                row.score = score;
                all_numbers &= ok;
            }
            None if o.alpha => {}
            None => match score::sort_score(&row.element) {
                Some(s) => row.score = s,
                None => all_numbers = false,
            },
        }
    }
    all_numbers
}

/// Sorts the rows as Redis would: the whole vector with a stable sort, or with BY and a
/// narrowing LIMIT only the window, with `pqsort`.
fn order(o: &Options, loaded: &mut Loaded) {
    let how = Compare {
        desc: o.desc,
        alpha: o.alpha,
        by: o.by.is_some(),
        binary: o.store.is_some(),
    };
    let cmp = |a: &Row, b: &Row| how.rows(a, b);
    let rows = &mut loaded.rows;
    let narrowed = loaded.start != 0 || loaded.stop != rows.len();
    if o.by.is_some() && narrowed {
        if loaded.stop > loaded.start {
            pqsort(rows, &cmp, loaded.start, loaded.stop - 1);
        }
    } else {
        rows.sort_by(cmp);
    }
}

/// Redis's `sortCompare` with its settings.
#[derive(Clone, Copy)]
struct Compare {
    desc: bool,
    alpha: bool,
    /// ALPHA compares the BY weights rather than the elements.
    by: bool,
    /// STORE: strings compare as `memcmp` then length, not as C strings.
    binary: bool,
}

impl Compare {
    fn rows(&self, a: &Row, b: &Row) -> Ordering {
        let asc = if !self.alpha {
            match a.score.partial_cmp(&b.score) {
                Some(Ordering::Equal) | None => a.element.cmp(&b.element),
                Some(unequal) => unequal,
            }
        } else if self.by {
            match (&a.weight, &b.weight) {
                (None, None) => Ordering::Equal,
                (None, Some(_)) => Ordering::Less,
                (Some(_), None) => Ordering::Greater,
                (Some(x), Some(y)) => self.strings(x, y),
            }
        } else {
            self.strings(&a.element, &b.element)
        };
        if self.desc {
            asc.reverse()
        } else {
            asc
        }
    }

    fn strings(&self, a: &[u8], b: &[u8]) -> Ordering {
        if self.binary {
            a.cmp(b)
        } else {
            c_str(a).cmp(c_str(b))
        }
    }
}

/// The array reply: the elements, or for each one its GET values.
fn reply(ks: &mut Keyspace, o: &Options, rows: &[Row], out: &mut Out) {
    if o.gets.is_empty() {
        out.array(rows.len());
        for row in rows {
            out.bulk(&row.element);
        }
        return;
    }
    out.array(rows.len() * o.gets.len());
    for row in rows {
        for pattern in &o.gets {
            with_pattern_value(ks, pattern, &row.element, |v| match v {
                Some(b) => out.bulk(b),
                None => out.null(),
            });
        }
    }
}

/// STORE: the output as a list at `dst` (missing GET values as empty strings), or `dst`
/// deleted when the output is empty. Replies with the number of elements stored.
fn store(ks: &mut Keyspace, o: &Options, dst: &[u8], rows: &[Row], out: &mut Out) {
    let fill = Fill::current();
    let mut list = List::new();
    for row in rows {
        if o.gets.is_empty() {
            list.push(End::Tail, &row.element, fill);
        }
        for pattern in &o.gets {
            with_pattern_value(ks, pattern, &row.element, |v| {
                list.push(End::Tail, v.unwrap_or(b""), fill)
            });
        }
    }
    let stored = list.len();
    if stored > 0 {
        ks.set(dst, Value::List(list));
        ks.signal_modified(dst);
        ks.notify('l', "sortstore", dst);
        ks.dirty(stored as u64);
    } else if ks.remove(dst).is_some() {
        ks.signal_modified(dst);
        ks.notify('g', "del", dst);
        ks.dirty(1);
    }
    out.int(stored as i64);
}

// ---------------------------------------------------------------------------------------
// Patterns.

/// What a BY or GET pattern designates for one element (Redis's `lookupKeyByPattern`).
#[derive(Debug, PartialEq)]
enum Target<'p> {
    /// `#`: the element itself.
    Element,
    /// No `*` in the pattern: nothing (a constant key is never read).
    Nothing,
    /// The key made by putting the element in place of the first `*`, and the hash field
    /// after `->` when there is a non-empty one.
    Key(Vec<u8>, Option<&'p [u8]>),
}

/// Resolves `pattern` for `element`. Like Redis, it looks for `#`, `*` and `->` in the
/// pattern as a C string (up to its first NUL) but cuts the key and field from the whole
/// argument.
fn target<'p>(pattern: &'p [u8], element: &[u8]) -> Target<'p> {
    let head = c_str(pattern);
    if head == b"#" {
        return Target::Element;
    }
    let Some(star) = head.iter().position(|&b| b == b'*') else {
        return Target::Nothing;
    };
    let arrow = head[star + 1..]
        .windows(2)
        .position(|w| w == b"->")
        .map(|i| star + 1 + i)
        .filter(|&i| head.len() > i + 2);
    let (suffix, field) = match arrow {
        Some(i) => (&pattern[star + 1..i], Some(&pattern[i + 2..])),
        None => (&pattern[star + 1..], None),
    };
    let mut key = Vec::with_capacity(star + element.len() + suffix.len());
    key.extend_from_slice(&pattern[..star]);
    key.extend_from_slice(element);
    key.extend_from_slice(suffix);
    Target::Key(key, field)
}

/// Runs `f` on the value `pattern` designates for `element`: a string key's bytes, a hash
/// field's value, the element for `#`; `None` when missing or of another type. Lookups are
/// reads (`lookupKeyRead`: expiry, hit and miss counts, access time).
fn with_pattern_value<R>(
    ks: &mut Keyspace,
    pattern: &[u8],
    element: &[u8],
    f: impl FnOnce(Option<&[u8]>) -> R,
) -> R {
    let (key, field) = match target(pattern, element) {
        Target::Element => return f(Some(element)),
        Target::Nothing => return f(None),
        Target::Key(key, field) => (key, field),
    };
    let mut scratch = [0u8; 24];
    match (ks.lookup_read(&key).map(|e| &e.value), field) {
        (Some(Value::Str(s)), None) => f(Some(RStr::as_bytes(s, &mut scratch))),
        (Some(Value::Hash(h)), Some(field)) => match h.get(field) {
            Some(item) => {
                let bytes = item.to_vec();
                f(Some(&bytes))
            }
            None => f(None),
        },
        _ => f(None),
    }
}

// ---------------------------------------------------------------------------------------
// Redis's partial quicksort.

/// Redis's `pqsort`: the quicksort of Bentley and McIlroy ("Engineering a Sort Function",
/// 1993: median of three, of nine above 40 elements; three-way partition gathering equal keys
/// at both ends; insertion sort below 7 elements) that only recurses into parts overlapping
/// positions `low..=high`. Those positions end up holding what a full sort would put there;
/// ties come out in the order this algorithm leaves them, which is what makes it observable.
fn pqsort<T>(v: &mut [T], cmp: &impl Fn(&T, &T) -> Ordering, low: usize, high: usize) {
    let n = v.len();
    pqsort_at(v, 0, n, cmp, low, high);
}

/// `pqsort` on `v[base..base + n]`; `low` and `high` are positions in the whole of `v`.
fn pqsort_at<T>(
    v: &mut [T],
    mut base: usize,
    mut n: usize,
    cmp: &impl Fn(&T, &T) -> Ordering,
    low: usize,
    high: usize,
) {
    loop {
        if n < 7 {
            insertion_sort(&mut v[base..base + n], cmp);
            return;
        }
        let pivot = choose_pivot(v, base, n, cmp);
        v.swap(base, pivot);
        let (pa, pb, pc, pd) = partition(v, base, n, cmp);
        // Move the keys equal to the pivot from both ends to the middle.
        let end = base + n;
        let r = (pa - base).min(pb - pa);
        swap_runs(v, base, pb - r, r);
        let r = (pd - pc).min(end - pd - 1);
        swap_runs(v, pb, end - r, r);
        let less = pb - pa;
        if less > 1 && overlaps(base, base + less - 1, low, high) {
            pqsort_at(v, base, less, cmp, low, high);
        }
        let greater = pd - pc;
        if greater > 1 && overlaps(end - greater, end - 1, low, high) {
            // The second part is iterated rather than recursed into, as Redis does.
            base = end - greater;
            n = greater;
            continue;
        }
        return;
    }
}

fn insertion_sort<T>(v: &mut [T], cmp: &impl Fn(&T, &T) -> Ordering) {
    for i in 1..v.len() {
        let mut j = i;
        while j > 0 && cmp(&v[j - 1], &v[j]) == Ordering::Greater {
            v.swap(j, j - 1);
            j -= 1;
        }
    }
}

/// Whether the positions `first..=last` hold any of `low..=high`.
fn overlaps(first: usize, last: usize, low: usize, high: usize) -> bool {
    !((low < first && high < first) || (low > last && high > last))
}

fn med3<T>(v: &[T], a: usize, b: usize, c: usize, cmp: &impl Fn(&T, &T) -> Ordering) -> usize {
    use Ordering::{Greater, Less};
    if cmp(&v[a], &v[b]) == Less {
        if cmp(&v[b], &v[c]) == Less {
            b
        } else if cmp(&v[a], &v[c]) == Less {
            c
        } else {
            a
        }
    } else if cmp(&v[b], &v[c]) == Greater {
        b
    } else if cmp(&v[a], &v[c]) == Less {
        a
    } else {
        c
    }
}

fn choose_pivot<T>(v: &[T], base: usize, n: usize, cmp: &impl Fn(&T, &T) -> Ordering) -> usize {
    let mut mid = base + n / 2;
    if n > 7 {
        let mut first = base;
        let mut last = base + n - 1;
        if n > 40 {
            let d = n / 8;
            first = med3(v, first, first + d, first + 2 * d, cmp);
            mid = med3(v, mid - d, mid, mid + d, cmp);
            last = med3(v, last - 2 * d, last - d, last, cmp);
        }
        mid = med3(v, first, mid, last, cmp);
    }
    mid
}

/// Partitions `v[base+1..base+n]` around the pivot at `v[base]`. Returns `(pa, pb, pc, pd)`:
/// keys equal to the pivot in `base+1..pa` and `pd+1..base+n`, smaller ones in `pa..pb`,
/// greater ones in `pc+1..=pd`.
fn partition<T>(
    v: &mut [T],
    base: usize,
    n: usize,
    cmp: &impl Fn(&T, &T) -> Ordering,
) -> (usize, usize, usize, usize) {
    let (mut pa, mut pb) = (base + 1, base + 1);
    let (mut pc, mut pd) = (base + n - 1, base + n - 1);
    loop {
        while pb <= pc {
            match cmp(&v[pb], &v[base]) {
                Ordering::Greater => break,
                Ordering::Equal => {
                    v.swap(pa, pb);
                    pa += 1;
                }
                Ordering::Less => {}
            }
            pb += 1;
        }
        while pb <= pc {
            match cmp(&v[pc], &v[base]) {
                Ordering::Less => break,
                Ordering::Equal => {
                    v.swap(pc, pd);
                    pd -= 1;
                }
                Ordering::Greater => {}
            }
            pc -= 1;
        }
        if pb > pc {
            return (pa, pb, pc, pd);
        }
        v.swap(pb, pc);
        pb += 1;
        pc -= 1;
    }
}

/// Swaps the runs of `n` elements at `a` and `b`, element by element, in place.
fn swap_runs<T>(v: &mut [T], a: usize, b: usize, n: usize) {
    for k in 0..n {
        v.swap(a + k, b + k);
    }
}
