//! The small sorted set encoding: member/score pairs in one `Listpack`, sorted by score, then
//! by member bytes (Redis's `listpack` encoding of zsets, `zzl*` in `t_zset.c`).
//!
//! Members are stored as `Listpack::insert_at` stores any value (canonical integers as
//! integers). Scores are stored in one of two forms:
//! - an integer entry when the score is an integer Redis's `double2ll` accepts (|v| <= 2^62)
//!   and it fits the entry header (|v| < 2^61): 2 to 10 bytes, like Redis's integer entries;
//! - otherwise the score's 8 IEEE bytes as a string entry (9 bytes in all), where Redis
//!   writes its `%.17g` text (usually 19 to 26 bytes). Both read back as the same double.
//!
//! Redis's quirk is kept: the listpack cannot hold -0 (it is written as the integer 0), so a
//! listpack-encoded set reports 0 for a member added with -0 while a skiplist one reports -0.
//!
//! Every operation is a linear walk, as in Redis: the encoding is only used up to
//! `zset-max-listpack-entries` (128 by default) pairs.

use crate::storage::listpack::{Item, Listpack};

/// Redis's `double2ll`: the integer a double equals exactly, when it lies within ±2^62.
pub fn double2ll(d: f64) -> Option<i64> {
    const LIMIT: f64 = (i64::MAX / 2) as f64;
    if !(-LIMIT..=LIMIT).contains(&d) {
        return None;
    }
    let n = d as i64;
    (n as f64 == d).then_some(n)
}

/// Scores at or past this magnitude are stored as raw bytes even when integral (they do not
/// fit a listpack integer header).
const INT_SCORE_LIMIT: i64 = 1 << 61;

/// The entry a score is stored as.
enum ScoreEntry {
    Int(i64),
    Raw([u8; 8]),
}

impl ScoreEntry {
    fn of(score: f64) -> ScoreEntry {
        match double2ll(score) {
            Some(n) if n.unsigned_abs() < INT_SCORE_LIMIT as u64 => ScoreEntry::Int(n),
            _ => ScoreEntry::Raw(score.to_le_bytes()),
        }
    }
}

/// The score an entry holds.
pub fn item_score(item: Item) -> f64 {
    match item {
        Item::Int(n) => n as f64,
        Item::Str(b) => match <[u8; 8]>::try_from(b) {
            Ok(raw) => f64::from_le_bytes(raw),
            // Only this module writes score entries; anything else is a bug.
            Err(_) => {
                debug_assert!(false, "malformed score entry");
                0.0
            }
        },
    }
}

/// The pair whose member entry starts at `off`: member, score, offset of the next pair.
pub fn pair_at(lp: &Listpack, off: usize) -> (Item<'_>, f64, usize) {
    let (member, score_off) = lp.get_at(off);
    let (score, next) = lp.get_at(score_off);
    (member, item_score(score), next)
}

/// Offset of the member entry of the pair at `rank`.
pub fn offset_of_rank(lp: &Listpack, rank: usize) -> Option<usize> {
    lp.offset_of(i64::try_from(rank.checked_mul(2)?).ok()?)
}

/// The member's entry offset and score.
pub fn find(lp: &Listpack, member: &[u8]) -> Option<(usize, f64)> {
    let off = lp.find(0, member, 2)?;
    let (_, score, _) = pair_at(lp, off);
    Some((off, score))
}

/// Inserts a pair whose member is not present, at its place in (score, member) order.
pub fn insert(lp: &mut Listpack, member: &[u8], score: f64) {
    let mut off = 0;
    let end = lp.bytes();
    while off < end {
        let (m, s, next) = pair_at(lp, off);
        if s > score || (s == score && m.with_bytes(|b| b > member)) {
            break;
        }
        off = next;
    }
    let entry = ScoreEntry::of(score);
    let score_item = match &entry {
        ScoreEntry::Int(n) => Item::Int(*n),
        ScoreEntry::Raw(raw) => Item::Str(raw),
    };
    lp.insert_items_at(off, &[Item::packed(member), score_item]);
}

/// Appends a pair that sorts after every pair present (building from sorted input).
pub fn push_back(lp: &mut Listpack, member: &[u8], score: f64) {
    let entry = ScoreEntry::of(score);
    let score_item = match &entry {
        ScoreEntry::Int(n) => Item::Int(*n),
        ScoreEntry::Raw(raw) => Item::Str(raw),
    };
    lp.insert_items_at(lp.bytes(), &[Item::packed(member), score_item]);
}

/// Removes `n` pairs starting with the one at `rank`.
pub fn remove_ranks(lp: &mut Listpack, rank: usize, n: usize) {
    if let Some(off) = offset_of_rank(lp, rank) {
        lp.remove_range(off, n.saturating_mul(2));
    }
    shrink(lp);
}

/// Removes the pair whose member entry starts at `off`.
pub fn remove_at(lp: &mut Listpack, off: usize) {
    lp.remove_range(off, 2);
    shrink(lp);
}

/// Gives memory back after removals, as Redis's listpack reallocates on every delete; some
/// slack is kept so that alternating adds and removes do not reallocate each time.
fn shrink(lp: &mut Listpack) {
    if lp.capacity() > lp.bytes() + lp.bytes() / 4 + 64 {
        lp.shrink_to_fit();
    }
}

/// The 0-based rank of a member.
pub fn rank(lp: &Listpack, member: &[u8]) -> Option<usize> {
    let mut off = 0;
    let end = lp.bytes();
    let mut rank = 0;
    while off < end {
        let (m, next) = lp.get_at(off);
        if m.eq_bytes(member) {
            return Some(rank);
        }
        off = lp.get_at(next).1;
        rank += 1;
    }
    None
}

/// Pairs in order (or reverse order) from a rank on.
pub struct Iter<'a> {
    lp: &'a Listpack,
    /// Offset of the next pair's member entry (forward iteration).
    off: usize,
    left: usize,
    /// For reverse iteration: the member offsets of the pairs still to return, last on top
    /// (the listpack has no back-lengths to walk backwards with).
    back: Vec<usize>,
    rev: bool,
}

pub fn iter_from(lp: &Listpack, rank: usize, rev: bool) -> Iter<'_> {
    let pairs = lp.len() / 2;
    let empty = Iter {
        lp,
        off: 0,
        left: 0,
        back: Vec::new(),
        rev,
    };
    if rank >= pairs {
        return empty;
    }
    if rev {
        let mut back = Vec::with_capacity(rank + 1);
        let mut off = 0;
        for _ in 0..=rank {
            back.push(off);
            off = pair_at(lp, off).2;
        }
        return Iter {
            left: rank + 1,
            back,
            ..empty
        };
    }
    match offset_of_rank(lp, rank) {
        Some(off) => Iter {
            off,
            left: pairs - rank,
            ..empty
        },
        None => empty,
    }
}

impl<'a> Iterator for Iter<'a> {
    type Item = (Item<'a>, f64);

    fn next(&mut self) -> Option<(Item<'a>, f64)> {
        if self.left == 0 {
            return None;
        }
        self.left -= 1;
        if self.rev {
            let off = self.back.pop()?;
            let (member, score, _) = pair_at(self.lp, off);
            return Some((member, score));
        }
        let (member, score, next) = pair_at(self.lp, self.off);
        self.off = next;
        Some((member, score))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.left, Some(self.left))
    }
}

impl ExactSizeIterator for Iter<'_> {}
