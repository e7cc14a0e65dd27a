//! Judging commands whose replies are random: SRANDMEMBER, HRANDFIELD and ZRANDMEMBER
//! (`Check::Random`), and SPOP (`Check::Spop`), which also changes what it picks from.
//!
//! Two servers pick differently, so their replies are compared only by shape (the same RESP
//! type, the same number of picks), and each server's picks are checked against its own copy
//! of the collection, read right after the command: every pick a member, values and scores
//! right, no repeats for a positive count.
//!
//! SPOP leaves the two servers holding different members. The check reads what each holds
//! after the pop, checks that the pops and the rest add up to the same set on both, and then
//! makes the second server hold what the first one does: SADD what only it popped, then SREM
//! what only the first popped (in that order, so the set never empties and loses its TTL).
//! Encodings need care too: when SPOP takes nearly a whole set, Redis rebuilds the set from
//! the members that stay (`SPOP_MOVE_STRATEGY_MUL`), so its encoding follows which members
//! stayed, and those differ between servers. Each server's encoding is checked against what
//! Redis's rule gives for its own pops; when the re-synchronised set then has another encoding
//! than the first server's, it is rebuilt (DEL, SADD, PEXPIREAT), which gives the encoding the
//! rule gives for the first server's members.

use super::compare::{arg_slices, call, pairs_of, Verdict};
use super::{Cmd, Collection};
use crate::common::resp::{decode, encode_command, Reply, RespConn};
use std::collections::BTreeSet;

/// Redis's `SPOP_MOVE_STRATEGY_MUL`: SPOP with a count rebuilds the set when the members that
/// stay, times this, are no more than the count.
const SPOP_MOVE_STRATEGY_MUL: u64 = 5;
/// Redis's default `set-max-intset-entries`.
const INTSET_ENTRIES_MAX: usize = 512;

/// A collection as its members and, for hashes and sorted sets, their values or scores.
type Snapshot = Vec<(Reply, Option<Reply>)>;

/// The whole collection at `key` as the server holds it now.
pub fn snapshot(
    conn: &mut RespConn,
    collection: Collection,
    key: &[u8],
) -> Result<Snapshot, String> {
    let reply = match collection {
        Collection::Set => call(conn, &[b"SMEMBERS", key], "SMEMBERS")?,
        Collection::Hash => call(conn, &[b"HGETALL", key], "HGETALL")?,
        Collection::Zset => call(
            conn,
            &[b"ZRANGE", key, b"0", b"-1", b"WITHSCORES"],
            "ZRANGE",
        )?,
    };
    let shown = format!("{reply:?}");
    match collection {
        Collection::Set => reply
            .as_array()
            .map(|items| items.iter().map(|m| (m.clone(), None)).collect())
            .ok_or_else(|| format!("SMEMBERS answered {shown}")),
        _ => pairs_of(&reply)
            .map(|pairs| pairs.into_iter().map(|(m, v)| (m, Some(v))).collect())
            .ok_or_else(|| format!("the collection read answered {shown}")),
    }
}

/// The picks in a reply to SRANDMEMBER/HRANDFIELD/ZRANDMEMBER/SPOP: members and, with
/// WITHVALUES/WITHSCORES, their values.
fn picks_of(reply: &Reply, with_values: bool) -> Option<Snapshot> {
    match reply {
        Reply::Null => Some(Vec::new()),
        Reply::Bulk(_) => Some(vec![(reply.clone(), None)]),
        _ if with_values => {
            if reply.as_array()?.is_empty() {
                return Some(Vec::new());
            }
            let pairs = pairs_of(reply)?;
            Some(pairs.into_iter().map(|(m, v)| (m, Some(v))).collect())
        }
        _ => Some(
            reply
                .as_array()?
                .iter()
                .map(|m| (m.clone(), None))
                .collect(),
        ),
    }
}

/// What a random-pick command asked for: its count (none for the single-pick form) and
/// whether values come with the members.
fn pick_request(args: &[Vec<u8>]) -> (Option<i64>, bool) {
    let count = args
        .get(2)
        .and_then(|c| std::str::from_utf8(c).ok())
        .and_then(|c| c.parse::<i64>().ok());
    (count, args.len() > 3)
}

/// Checks one server's picks against its own collection.
fn check_picks(picks: &Snapshot, whole: &Snapshot, count: Option<i64>) -> Result<(), String> {
    let expected = match count {
        None => whole.len().min(1),
        Some(n) if n >= 0 => whole.len().min(n as usize),
        Some(_) if whole.is_empty() => 0,
        Some(n) => n.unsigned_abs() as usize,
    };
    if picks.len() != expected {
        return Err(format!(
            "{} picks, expected {expected} from {} members",
            picks.len(),
            whole.len()
        ));
    }
    for (member, value) in picks {
        let found = whole.iter().find(|(m, _)| m == member);
        match found {
            None => return Err(format!("picked {member:?}, not a member")),
            Some((_, v)) if value.is_some() && v != value => {
                return Err(format!("picked {member:?} with {value:?}, it holds {v:?}"))
            }
            Some(_) => {}
        }
    }
    if count.is_some_and(|n| n > 0) {
        let distinct: BTreeSet<String> = picks.iter().map(|(m, _)| format!("{m:?}")).collect();
        if distinct.len() != picks.len() {
            return Err("repeated picks for a positive count".into());
        }
    }
    Ok(())
}

/// SRANDMEMBER/HRANDFIELD/ZRANDMEMBER: same reply type and length, and each server's picks
/// valid for its own collection. The outer `Err` is an I/O failure.
pub fn random_picks(
    cmd: &Cmd,
    collection: Collection,
    ra: &[u8],
    rb: &[u8],
    a: &mut RespConn,
    b: &mut RespConn,
) -> Result<Result<(), String>, String> {
    let (da, db) = (decode(ra)?, decode(rb)?);
    let key = &cmd.args[1];
    let whole_a = snapshot(a, collection, key)?;
    let whole_b = snapshot(b, collection, key)?;
    let (count, with_values) = pick_request(&cmd.args);
    if ra.first() != rb.first() {
        return Ok(Err("different reply types".into()));
    }
    let (Some(picks_a), Some(picks_b)) = (picks_of(&da, with_values), picks_of(&db, with_values))
    else {
        return Ok(Err("a reply is not a list of picks".into()));
    };
    let judgement = check_picks(&picks_a, &whole_a, count)
        .map_err(|e| format!("redis: {e}"))
        .and_then(|()| check_picks(&picks_b, &whole_b, count).map_err(|e| format!("other: {e}")));
    Ok(judgement)
}

/// The members of a snapshot or of picks, as sorted debug strings with the replies.
fn member_set(items: &Snapshot) -> BTreeSet<(String, Vec<u8>)> {
    items
        .iter()
        .map(|(m, _)| (format!("{m:?}"), m.as_bytes().unwrap_or_default().to_vec()))
        .collect()
}

/// Whether Redis stores `member` in an intset: the exact text of a 64-bit integer
/// (`string2ll`: no sign but '-', no leading zeros, no spaces, not "-0").
fn is_intset_member(member: &[u8]) -> bool {
    let digits = member.strip_prefix(b"-").unwrap_or(member);
    let canonical = match digits {
        [b'0'] => digits.len() == member.len(),
        [b'1'..=b'9', rest @ ..] => rest.iter().all(u8::is_ascii_digit),
        _ => false,
    };
    canonical
        && std::str::from_utf8(member)
            .ok()
            .and_then(|m| m.parse::<i64>().ok())
            .is_some()
}

/// The encoding Redis gives a set built from `members` by adding them one by one.
fn fresh_encoding(members: &BTreeSet<(String, Vec<u8>)>) -> &'static [u8] {
    let all_ints = members.iter().all(|(_, m)| is_intset_member(m));
    if all_ints && members.len() <= INTSET_ENTRIES_MAX {
        b"intset"
    } else {
        b"hashtable"
    }
}

/// What one server did with an SPOP: its encoding before and after, what it popped and what
/// it holds now.
struct Popped {
    before: Reply,
    after: Reply,
    popped: BTreeSet<(String, Vec<u8>)>,
    left: BTreeSet<(String, Vec<u8>)>,
}

impl Popped {
    /// The encoding Redis's rules give after this server's pop of `count` (none: one member).
    fn expected_encoding(&self, count: Option<u64>) -> Option<Vec<u8>> {
        if self.left.is_empty() {
            return None;
        }
        let size = (self.left.len() + self.popped.len()) as u64;
        let rebuilt =
            count.is_some_and(|c| c > 0 && c < size && (size - c) * SPOP_MOVE_STRATEGY_MUL <= c);
        if rebuilt {
            Some(fresh_encoding(&self.left).to_vec())
        } else {
            self.before.as_bytes().map(<[u8]>::to_vec)
        }
    }
}

fn encoding(conn: &mut RespConn, key: &[u8]) -> Result<Reply, String> {
    call(conn, &[b"OBJECT", b"ENCODING", key], "OBJECT ENCODING")
}

/// SPOP on both servers, judged and followed by the re-synchronisation the module comment
/// describes.
pub fn spop(cmd: &Cmd, a: &mut RespConn, b: &mut RespConn) -> Result<Verdict, String> {
    let key = &cmd.args[1];
    let (before_a, before_b) = (encoding(a, key)?, encoding(b, key)?);
    let request = encode_command(&arg_slices(&cmd.args));
    a.try_send_raw(&request)
        .map_err(|e| format!("sending to the first server: {e}"))?;
    b.try_send_raw(&request)
        .map_err(|e| format!("sending to the second server: {e}"))?;
    let ra = a
        .try_read_reply()
        .map_err(|e| format!("first server: {e}"))?;
    let rb = b
        .try_read_reply()
        .map_err(|e| format!("second server: {e}"))?;
    if ra.first() == Some(&b'-') || rb.first() == Some(&b'-') {
        let same = ra == rb;
        return Ok(Verdict::judged(
            ra,
            rb,
            if same { Ok(()) } else { Err(String::new()) },
        ));
    }
    let pa = popped(a, key, before_a, &ra)?;
    let pb = popped(b, key, before_b, &rb)?;
    let count = cmd
        .args
        .get(2)
        .and_then(|c| std::str::from_utf8(c).ok()?.parse().ok());
    let judgement = judge_spop(&ra, &rb, &pa, &pb, count);
    let judgement = match judgement {
        Ok(()) => resync_spop(key, &pa, &pb, a, b)?,
        failed => failed,
    };
    Ok(Verdict::judged(ra, rb, judgement))
}

/// What a server popped (from its reply) and holds now.
fn popped(conn: &mut RespConn, key: &[u8], before: Reply, raw: &[u8]) -> Result<Popped, String> {
    let reply = decode(raw)?;
    let picks = picks_of(&reply, false).ok_or_else(|| format!("SPOP answered {reply:?}"))?;
    Ok(Popped {
        before,
        after: encoding(conn, key)?,
        popped: member_set(&picks),
        left: member_set(&snapshot(conn, Collection::Set, key)?),
    })
}

/// Whether two SPOPs are alike: same reply type and count, pops and rest adding up to the same
/// set, each server's encoding what Redis's rules give for its own pops.
fn judge_spop(
    ra: &[u8],
    rb: &[u8],
    pa: &Popped,
    pb: &Popped,
    count: Option<u64>,
) -> Result<(), String> {
    if ra.first() != rb.first() {
        return Err("different reply types".into());
    }
    if pa.popped.len() != pb.popped.len() {
        return Err("different numbers of members popped".into());
    }
    let before_a: BTreeSet<_> = pa.left.union(&pa.popped).collect();
    let before_b: BTreeSet<_> = pb.left.union(&pb.popped).collect();
    if before_a != before_b || before_a.len() != pa.left.len() + pa.popped.len() {
        return Err("popped members and what is left do not add up".into());
    }
    for (name, p) in [("redis", pa), ("other", pb)] {
        let expected = p.expected_encoding(count);
        if expected.as_deref() != p.after.as_bytes() {
            return Err(format!(
                "{name}: encoding {:?} after SPOP, Redis's rules give {:?}",
                p.after,
                expected.map(|e| String::from_utf8_lossy(&e).into_owned())
            ));
        }
    }
    Ok(())
}

/// Makes the second server hold what the first holds after an SPOP, encoding included. The
/// outer `Err` is an I/O failure; the inner one a difference.
fn resync_spop(
    key: &[u8],
    pa: &Popped,
    pb: &Popped,
    a: &mut RespConn,
    b: &mut RespConn,
) -> Result<Result<(), String>, String> {
    let to_add: Vec<&[u8]> = pb
        .popped
        .difference(&pa.popped)
        .map(|m| m.1.as_slice())
        .collect();
    let to_remove: Vec<&[u8]> = pa
        .popped
        .difference(&pb.popped)
        .map(|m| m.1.as_slice())
        .collect();
    for (name, members) in [(&b"SADD"[..], &to_add), (b"SREM", &to_remove)] {
        if members.is_empty() {
            continue;
        }
        let mut args: Vec<&[u8]> = vec![name, key];
        args.extend(members.iter());
        let reply = call(b, &args, "re-synchronising after SPOP")?;
        if reply.as_int() != Some(members.len() as i64) {
            return Ok(Err(format!("re-synchronising after SPOP: {reply:?}")));
        }
    }
    if encoding(b, key)? != pa.after {
        if pa.after.as_bytes() != Some(fresh_encoding(&pa.left)) {
            return Ok(Err("the encodings differ after re-synchronising".into()));
        }
        rebuild_set(key, &pa.left, a, b)?;
    }
    let now_b = member_set(&snapshot(b, Collection::Set, key)?);
    if now_b != pa.left || encoding(b, key)? != pa.after {
        return Ok(Err("the sets differ after re-synchronising".into()));
    }
    Ok(Ok(()))
}

/// Replaces the set at `key` on `b` with `members`, built afresh, expiring when `a`'s does.
fn rebuild_set(
    key: &[u8],
    members: &BTreeSet<(String, Vec<u8>)>,
    a: &mut RespConn,
    b: &mut RespConn,
) -> Result<(), String> {
    let expire_at = call(a, &[b"PEXPIRETIME", key], "PEXPIRETIME")?;
    call(b, &[b"DEL", key], "DEL")?;
    let mut args: Vec<&[u8]> = vec![b"SADD", key];
    args.extend(members.iter().map(|m| m.1.as_slice()));
    call(b, &args, "SADD")?;
    if let Some(at) = expire_at.as_int().filter(|at| *at > 0) {
        let at = at.to_string();
        call(b, &[b"PEXPIREAT", key, at.as_bytes()], "PEXPIREAT")?;
    }
    Ok(())
}
