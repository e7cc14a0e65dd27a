//! The sorted set value type (Redis's zset), in Redis 7.0's two encodings.
//!
//! - `listpack` (`pack`): member/score pairs in one packed buffer, sorted by score then member,
//!   while the set has at most `zset-max-listpack-entries` members of at most
//!   `zset-max-listpack-value` bytes. Linear operations over a few cache lines.
//! - `skiplist` (`ranked::RankedSet`): a hash index from member to score plus an
//!   order-statistic B+tree standing in for Redis's skiplist: O(1) score lookups, O(log n)
//!   inserts, deletes, ranks and range starts. `OBJECT ENCODING` still says `skiplist`.
//!
//! Conversion happens where Redis converts: a set grows out of `listpack` when an insertion
//! would pass either threshold (`zsetAdd`) and never goes back, except that sets built whole by
//! a command (ZUNIONSTORE and friends, ZRANGESTORE, GEOSEARCHSTORE) are created in whichever
//! encoding their final size calls for (`from_sorted`, Redis's
//! `zsetConvertToListpackIfNeeded`).
//!
//! Order: scores compare as doubles (-0 equals 0), ties by member bytes as `memcmp` then
//! length. Scores are never NaN; `add` refuses them.
//!
//! Ranges follow `t_zset.c` step by step, because with mixed scores a lex range is not a
//! contiguous run and the answer depends on how the walk is done: the listpack encoding finds
//! a lex range's first element by scanning from the start (its last by scanning from the end),
//! the big encoding by binary search, as Redis's skiplist walk does. For score ranges, and lex
//! ranges over equal scores, both agree with Redis exactly.
//!
//! Callers are the sorted set and geo commands (`commands::zset`, `commands::geo`) and, for the
//! blocking pops, the engine through the commands' pop helpers.

pub mod pack;
pub mod ranked;
#[cfg(test)]
mod tests;
pub mod tree;

use super::compact::{Enc, PackedOr};
use super::limits::{self, LIMITS};
use super::listpack::{Item, Listpack};
use ranked::RankedSet;

/// Redis's `LISTPACK_MAX_SAFETY_SIZE`: a listpack never grows past 1 GiB.
const LISTPACK_SAFETY_BYTES: usize = 1 << 30;

/// The encoding thresholds in force.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// `zset-max-listpack-entries`
    pub entries: usize,
    /// `zset-max-listpack-value`
    pub value: usize,
}

#[cfg(test)]
thread_local! {
    /// Tests set their own thresholds per thread instead of the process-wide config.
    pub(crate) static TEST_LIMITS: std::cell::Cell<Option<Limits>> =
        const { std::cell::Cell::new(None) };
}

impl Limits {
    pub fn current() -> Limits {
        #[cfg(test)]
        if let Some(l) = TEST_LIMITS.with(|c| c.get()) {
            return l;
        }
        let get = |f| usize::try_from(limits::get(f)).unwrap_or(0);
        Limits {
            entries: get(&LIMITS.zset_max_listpack_entries),
            value: get(&LIMITS.zset_max_listpack_value),
        }
    }
}

/// A score range (`zrangespec`): `min`/`max`, each inclusive unless its `ex` flag is set.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ScoreRange {
    pub min: f64,
    pub max: f64,
    pub minex: bool,
    pub maxex: bool,
}

impl ScoreRange {
    pub fn gte_min(&self, v: f64) -> bool {
        if self.minex {
            v > self.min
        } else {
            v >= self.min
        }
    }

    pub fn lte_max(&self, v: f64) -> bool {
        if self.maxex {
            v < self.max
        } else {
            v <= self.max
        }
    }

    /// Whether the range is empty whatever the set holds.
    pub fn is_void(&self) -> bool {
        self.min > self.max || (self.min == self.max && (self.minex || self.maxex))
    }
}

/// One end of a lex range: `-`, `+` or a string (Redis's `shared.minstring`, `maxstring`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LexBound {
    NegInf,
    PosInf,
    Value(Vec<u8>),
}

impl LexBound {
    /// Redis's `sdscmplex` between two bounds.
    fn cmp_bound(&self, other: &LexBound) -> std::cmp::Ordering {
        use std::cmp::Ordering::*;
        match (self, other) {
            (LexBound::NegInf, LexBound::NegInf) | (LexBound::PosInf, LexBound::PosInf) => Equal,
            (LexBound::NegInf, _) | (_, LexBound::PosInf) => Less,
            (LexBound::PosInf, _) | (_, LexBound::NegInf) => Greater,
            (LexBound::Value(a), LexBound::Value(b)) => a.cmp(b),
        }
    }

    /// `sdscmplex(value, bound)` for a member's bytes.
    fn cmp_value(&self, value: &[u8]) -> std::cmp::Ordering {
        use std::cmp::Ordering::*;
        match self {
            LexBound::NegInf => Greater,
            LexBound::PosInf => Less,
            LexBound::Value(b) => value.cmp(b),
        }
    }
}

/// A lex range (`zlexrangespec`). `-` and `+` are exclusive, as Redis parses them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LexRange {
    pub min: LexBound,
    pub max: LexBound,
    pub minex: bool,
    pub maxex: bool,
}

impl LexRange {
    pub fn gte_min(&self, v: &[u8]) -> bool {
        let c = self.min.cmp_value(v);
        if self.minex {
            c.is_gt()
        } else {
            c.is_ge()
        }
    }

    pub fn lte_max(&self, v: &[u8]) -> bool {
        let c = self.max.cmp_value(v);
        if self.maxex {
            c.is_lt()
        } else {
            c.is_le()
        }
    }

    /// Whether the range is empty whatever the set holds.
    pub fn is_void(&self) -> bool {
        let c = self.min.cmp_bound(&self.max);
        c.is_gt() || (c.is_eq() && (self.minex || self.maxex))
    }

    fn item_gte_min(&self, m: Item) -> bool {
        m.with_bytes(|b| self.gte_min(b))
    }

    fn item_lte_max(&self, m: Item) -> bool {
        m.with_bytes(|b| self.lte_max(b))
    }
}

/// ZADD's options (`ZADD_IN_*`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AddFlags {
    pub incr: bool,
    pub nx: bool,
    pub xx: bool,
    pub gt: bool,
    pub lt: bool,
}

/// What `add` did (`ZADD_OUT_*`), with the member's score afterwards.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Added {
    /// A new member.
    New(f64),
    /// An existing member moved to a new score.
    Updated(f64),
    /// An existing member was processed but its score did not change.
    Same(f64),
    /// Nothing done: NX, XX, GT or LT ruled it out.
    Nop,
}

/// The score, or the sum an increment produced, is not a number.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NotANumber;

/// A sorted set.
#[derive(Clone, Debug, PartialEq)]
pub struct ZSet {
    /// One word: the listpack, or the boxed skiplist stand-in (see `storage::compact`).
    enc: PackedOr<RankedSet>,
}

impl Default for ZSet {
    fn default() -> Self {
        ZSet::new()
    }
}

/// Elements in rank order (either direction), with their scores.
pub enum Iter<'a> {
    Listpack(pack::Iter<'a>),
    Skiplist(ranked::Iter<'a>),
}

impl<'a> Iterator for Iter<'a> {
    type Item = (Item<'a>, f64);

    fn next(&mut self) -> Option<(Item<'a>, f64)> {
        match self {
            Iter::Listpack(it) => it.next(),
            Iter::Skiplist(it) => it.next().map(|(m, s)| (Item::Str(m), s)),
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        match self {
            Iter::Listpack(it) => it.size_hint(),
            Iter::Skiplist(it) => it.size_hint(),
        }
    }
}

impl ExactSizeIterator for Iter<'_> {}

impl ZSet {
    /// An empty set in the small encoding (Redis's `createZsetListpackObject`; the first
    /// insertion converts it at once when the thresholds forbid the listpack).
    pub fn new() -> ZSet {
        ZSet {
            enc: PackedOr::packed(Listpack::new_forward()),
        }
    }

    /// The name OBJECT ENCODING reports.
    pub fn encoding(&self) -> &'static str {
        match self.enc.get() {
            Enc::Packed(_) => "listpack",
            Enc::Big(_) => "skiplist",
        }
    }

    /// Whether the set is in the listpack encoding.
    pub fn is_listpack(&self) -> bool {
        self.enc.is_packed()
    }

    /// The member index's shape, or `None` for a listpack (DEBUG HTSTATS-KEY).
    pub fn table_stats(&self) -> Option<crate::storage::htstats::HtStats> {
        match self.enc.get() {
            Enc::Packed(_) => None,
            Enc::Big(r) => Some(r.index_stats()),
        }
    }

    pub fn len(&self) -> usize {
        match self.enc.get() {
            Enc::Packed(lp) => lp.len() / 2,
            Enc::Big(r) => r.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// A set holding `pairs`, which must be sorted by (score, member) with distinct members,
    /// in the encoding their size calls for (`zsetConvertToListpackIfNeeded`).
    pub fn from_sorted<M: AsRef<[u8]>>(pairs: &[(M, f64)]) -> ZSet {
        let limits = Limits::current();
        let longest = pairs
            .iter()
            .map(|(m, _)| m.as_ref().len())
            .max()
            .unwrap_or(0);
        let total: usize = pairs.iter().map(|(m, _)| m.as_ref().len()).sum();
        if pairs.len() <= limits.entries
            && longest <= limits.value
            && total <= LISTPACK_SAFETY_BYTES
        {
            let mut lp = Listpack::new_forward();
            for (m, s) in pairs {
                pack::push_back(&mut lp, m.as_ref(), *s);
            }
            ZSet {
                enc: PackedOr::packed(lp),
            }
        } else {
            let mut r = RankedSet::with_capacity(pairs.len());
            for (m, s) in pairs {
                r.push_back(m.as_ref(), *s);
            }
            ZSet {
                enc: PackedOr::big(Box::new(r)),
            }
        }
    }

    /// Moves a listpack set to the big encoding (`zsetConvert`).
    pub fn convert_to_skiplist(&mut self) {
        let Enc::Packed(lp) = self.enc.get() else {
            return;
        };
        let mut r = RankedSet::with_capacity(lp.len() / 2);
        for (m, s) in pack::iter_from(lp, 0, false) {
            m.with_bytes(|b| r.push_back(b, s));
        }
        self.enc = PackedOr::big(Box::new(r));
    }

    pub fn score(&self, member: &[u8]) -> Option<f64> {
        match self.enc.get() {
            Enc::Packed(lp) => pack::find(lp, member).map(|(_, s)| s),
            Enc::Big(r) => r.score(member),
        }
    }

    /// Redis's `zsetAdd`: adds `member` or updates its score under `flags`.
    pub fn add(&mut self, score: f64, member: &[u8], flags: AddFlags) -> Result<Added, NotANumber> {
        if score.is_nan() {
            return Err(NotANumber);
        }
        let Some(current) = self.score(member) else {
            if flags.xx {
                return Ok(Added::Nop);
            }
            self.insert_new(member, score);
            return Ok(Added::New(score));
        };
        if flags.nx {
            return Ok(Added::Nop);
        }
        let mut score = score;
        if flags.incr {
            score += current;
            if score.is_nan() {
                return Err(NotANumber);
            }
        }
        if (flags.lt && score >= current) || (flags.gt && score <= current) {
            return Ok(Added::Nop);
        }
        if score == current {
            return Ok(Added::Same(score));
        }
        match self.enc.get_mut() {
            Enc::Packed(lp) => {
                if let Some((off, _)) = pack::find(lp, member) {
                    lp.remove_range(off, 2);
                }
                pack::insert(lp, member, score);
            }
            Enc::Big(r) => r.set_score(member, score),
        }
        Ok(Added::Updated(score))
    }

    /// Inserts a member known to be absent, converting first when the listpack would pass a
    /// threshold.
    fn insert_new(&mut self, member: &[u8], score: f64) {
        if let Enc::Packed(lp) = self.enc.get_mut() {
            let limits = Limits::current();
            if lp.len() / 2 + 1 > limits.entries
                || member.len() > limits.value
                || lp.bytes() + member.len() > LISTPACK_SAFETY_BYTES
            {
                self.convert_to_skiplist();
            }
        }
        match self.enc.get_mut() {
            Enc::Packed(lp) => pack::insert(lp, member, score),
            Enc::Big(r) => r.insert(member, score),
        }
    }

    /// Removes a member; false when it was absent.
    pub fn remove(&mut self, member: &[u8]) -> bool {
        match self.enc.get_mut() {
            Enc::Packed(lp) => match pack::find(lp, member) {
                Some((off, _)) => {
                    pack::remove_at(lp, off);
                    true
                }
                None => false,
            },
            Enc::Big(r) => r.remove(member).is_some(),
        }
    }

    /// The member's 0-based rank, from the lowest score or (`rev`) from the highest.
    pub fn rank(&self, member: &[u8], rev: bool) -> Option<usize> {
        let rank = match self.enc.get() {
            Enc::Packed(lp) => pack::rank(lp, member),
            Enc::Big(r) => r.rank(member),
        }?;
        Some(if rev { self.len() - 1 - rank } else { rank })
    }

    /// The element at a (forward) rank.
    pub fn get(&self, rank: usize) -> Option<(Item<'_>, f64)> {
        self.iter_from(rank, false).next()
    }

    /// Walks from a (forward) rank toward the end, or toward the start when `rev`.
    pub fn iter_from(&self, rank: usize, rev: bool) -> Iter<'_> {
        match self.enc.get() {
            Enc::Packed(lp) => Iter::Listpack(pack::iter_from(lp, rank, rev)),
            Enc::Big(r) => Iter::Skiplist(r.iter_from(rank, rev)),
        }
    }

    /// Every element in order.
    pub fn iter(&self) -> Iter<'_> {
        self.iter_from(0, false)
    }

    /// The rank of the first element satisfying `pred`: a forward scan in the listpack, a
    /// binary search (for `pred` false then true) in the big encoding.
    fn first_where(&self, pred: impl Fn(Item, f64) -> bool) -> Option<usize> {
        match self.enc.get() {
            Enc::Packed(lp) => pack::iter_from(lp, 0, false).position(|(m, s)| pred(m, s)),
            Enc::Big(r) => {
                let p = r.partition_point(|m, s| !pred(Item::Str(m), s));
                (p < r.len()).then_some(p)
            }
        }
    }

    /// The rank of the last element satisfying `pred`: a backward scan in the listpack, a
    /// binary search (for `pred` true then false) in the big encoding.
    fn last_where(&self, pred: impl Fn(Item, f64) -> bool) -> Option<usize> {
        match self.enc.get() {
            Enc::Packed(lp) => {
                let last = (lp.len() / 2).checked_sub(1)?;
                let back = pack::iter_from(lp, last, true).position(|(m, s)| pred(m, s))?;
                Some(last - back)
            }
            Enc::Big(r) => r
                .partition_point(|m, s| pred(Item::Str(m), s))
                .checked_sub(1),
        }
    }

    fn score_at(&self, rank: usize) -> Option<f64> {
        self.get(rank).map(|(_, s)| s)
    }

    /// `zslIsInRange`: whether some part of the set may lie in the range.
    fn may_hold_scores(&self, range: &ScoreRange) -> bool {
        let (Some(first), Some(last)) = (self.score_at(0), self.len().checked_sub(1)) else {
            return false;
        };
        !range.is_void()
            && self.score_at(last).is_some_and(|s| range.gte_min(s))
            && range.lte_max(first)
    }

    /// The rank of the first element in a score range (`zslFirstInRange`).
    pub fn first_in_range(&self, range: &ScoreRange) -> Option<usize> {
        if !self.may_hold_scores(range) {
            return None;
        }
        let r = self.first_where(|_, s| range.gte_min(s))?;
        self.score_at(r).filter(|&s| range.lte_max(s)).map(|_| r)
    }

    /// The rank of the last element in a score range (`zslLastInRange`).
    pub fn last_in_range(&self, range: &ScoreRange) -> Option<usize> {
        if !self.may_hold_scores(range) {
            return None;
        }
        let r = self.last_where(|_, s| range.lte_max(s))?;
        self.score_at(r).filter(|&s| range.gte_min(s)).map(|_| r)
    }

    /// `zslIsInLexRange`.
    fn may_hold_lex(&self, range: &LexRange) -> bool {
        if range.is_void() {
            return false;
        }
        let Some(last) = self.len().checked_sub(1) else {
            return false;
        };
        self.get(last).is_some_and(|(m, _)| range.item_gte_min(m))
            && self.get(0).is_some_and(|(m, _)| range.item_lte_max(m))
    }

    /// The rank of the first element in a lex range (`zslFirstInLexRange`).
    pub fn first_in_lex(&self, range: &LexRange) -> Option<usize> {
        if !self.may_hold_lex(range) {
            return None;
        }
        let r = self.first_where(|m, _| range.item_gte_min(m))?;
        self.get(r)
            .filter(|(m, _)| range.item_lte_max(*m))
            .map(|_| r)
    }

    /// The rank of the last element in a lex range (`zslLastInLexRange`).
    pub fn last_in_lex(&self, range: &LexRange) -> Option<usize> {
        if !self.may_hold_lex(range) {
            return None;
        }
        let r = self.last_where(|m, _| range.item_lte_max(m))?;
        self.get(r)
            .filter(|(m, _)| range.item_gte_min(*m))
            .map(|_| r)
    }

    /// ZCOUNT: elements in a score range.
    pub fn count_in_range(&self, range: &ScoreRange) -> usize {
        let Some(first) = self.first_in_range(range) else {
            return 0;
        };
        match self.enc.get() {
            Enc::Packed(_) => self
                .iter_from(first, false)
                .take_while(|(_, s)| range.lte_max(*s))
                .count(),
            Enc::Big(_) => self
                .last_in_range(range)
                .map_or(self.len() - first, |last| last + 1 - first),
        }
    }

    /// ZLEXCOUNT: elements in a lex range.
    pub fn count_in_lex(&self, range: &LexRange) -> usize {
        let Some(first) = self.first_in_lex(range) else {
            return 0;
        };
        match self.enc.get() {
            Enc::Packed(_) => self
                .iter_from(first, false)
                .take_while(|(m, _)| range.item_lte_max(*m))
                .count(),
            Enc::Big(_) => self
                .last_in_lex(range)
                .map_or(self.len() - first, |last| (last + 1).saturating_sub(first)),
        }
    }

    /// Removes the elements of ranks `start..start + n`.
    pub fn remove_ranks(&mut self, start: usize, n: usize) {
        match self.enc.get_mut() {
            Enc::Packed(lp) => pack::remove_ranks(lp, start, n),
            Enc::Big(r) => {
                for _ in 0..n {
                    if r.remove_at(start).is_none() {
                        break;
                    }
                }
            }
        }
    }

    /// ZREMRANGEBYSCORE: removes the run from the range's first element while scores stay
    /// within the maximum. Returns how many were removed.
    pub fn remove_score_range(&mut self, range: &ScoreRange) -> usize {
        let Some(first) = self.first_in_range(range) else {
            return 0;
        };
        let n = self
            .iter_from(first, false)
            .take_while(|(_, s)| range.lte_max(*s))
            .count();
        self.remove_ranks(first, n);
        n
    }

    /// ZREMRANGEBYLEX: as `remove_score_range` for a lex range (the big encoding starts at the
    /// first member not below the minimum, without the listpack's whole-range pre-check, as
    /// Redis's skiplist does).
    pub fn remove_lex_range(&mut self, range: &LexRange) -> usize {
        let first = match self.enc.get() {
            Enc::Packed(_) => self.first_in_lex(range),
            Enc::Big(_) => self.first_where(|m, _| range.item_gte_min(m)),
        };
        let Some(first) = first else {
            return 0;
        };
        let n = self
            .iter_from(first, false)
            .take_while(|(m, _)| range.item_lte_max(*m))
            .count();
        self.remove_ranks(first, n);
        n
    }

    /// Removes and returns the element with the lowest score, or the highest when `max`.
    pub fn pop(&mut self, max: bool) -> Option<(Vec<u8>, f64)> {
        let rank = if max { self.len().checked_sub(1)? } else { 0 };
        match self.enc.get_mut() {
            Enc::Packed(lp) => {
                let off = pack::offset_of_rank(lp, rank)?;
                let (m, s, _) = pack::pair_at(lp, off);
                let member = m.to_vec();
                pack::remove_at(lp, off);
                Some((member, s))
            }
            Enc::Big(r) => r.remove_at(rank).map(|(m, s)| (m.into_vec(), s)),
        }
    }

    /// One step of ZSCAN. A listpack set is returned whole with cursor 0, as Redis does; the
    /// big encoding walks its slots (see `ranked`). `f` gets each member and its score as
    /// Redis prints it there.
    pub fn scan(&self, cursor: u64, count: usize, mut f: impl FnMut(Item, &[u8])) -> u64 {
        match self.enc.get() {
            Enc::Packed(lp) => {
                for (m, s) in pack::iter_from(lp, 0, false) {
                    f(m, listpack_score_text(s).as_bytes());
                }
                0
            }
            Enc::Big(r) => r.scan(cursor, count, |m, s| {
                f(
                    Item::Str(m),
                    crate::protocol::write::fmt_double(s).as_bytes(),
                )
            }),
        }
    }

    /// Heap bytes held by the value (for memory accounting).
    pub fn heap_bytes(&self) -> usize {
        match self.enc.get() {
            Enc::Packed(lp) => lp.capacity(),
            Enc::Big(r) => std::mem::size_of::<RankedSet>() + r.heap_bytes(),
        }
    }
}

/// A score as a listpack stores it in Redis (`d2string`): integers within ±2^62 as integers,
/// anything else as `%.17g`.
fn listpack_score_text(s: f64) -> String {
    match pack::double2ll(s) {
        Some(n) => n.to_string(),
        None => crate::protocol::write::fmt_double(s),
    }
}
