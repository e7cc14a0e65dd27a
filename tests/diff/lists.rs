//! List commands (`t_list.c` in Redis): pushes, pops, ranges, edits, moves (across shards when
//! the keys are), LMPOP, and the blocking forms.
//!
//! Elements come mostly from a small pool, so that LREM, LPOS and LINSERT find what they look
//! for; sometimes they are any value, including long and binary ones.
//!
//! A blocking command waits only when every key it names is empty, and then answers null when
//! its timeout (10 to 100 ms, which Redis rounds up to its 100 ms timer) runs out: the reply is
//! deterministic, but each wait costs a tenth of a second on redis-server. So a blocking
//! command usually comes right after a push onto one of its keys, which makes it take the
//! non-blocking path (or fail with WRONGTYPE without waiting), and only now and then stands
//! alone, where it may wait.

use super::{Args, Check, Cmd, Gen, GenFn, KeySet, WakeKind, Waker};

/// The list family's own names: `{l}` keys share a shard, `list:*` spread.
pub const KEYS: KeySet = KeySet {
    names: &[b"{l}a", b"{l}b", b"{l}c", b"list:1", b"list:2", b"list:3"],
    tagged: 3,
};

/// Keys only the woken blocking commands use (`woken.rs`): deleted right before, so those
/// commands always block.
pub const WAKE_KEYS: KeySet = KeySet {
    names: &[b"{l}w1", b"{l}w2", b"wake:l"],
    tagged: 2,
};

/// The timeout of a blocking command that another client wakes: long, since it never runs
/// out unless a server fails to wake the client.
pub const WAKE_TIMEOUT: &str = "5";

/// One weighted generator per command.
const COMMANDS: &[(u32, GenFn)] = &[
    (2, del),
    (2, encoding),
    (12, push),
    (3, pushx),
    (8, pop),
    (3, llen),
    (6, lrange),
    (3, lindex),
    (2, lset),
    (3, linsert),
    (3, lrem),
    (2, ltrim),
    (4, lpos),
    (4, lmove),
    (2, rpoplpush),
    (3, lmpop),
    (4, blocking),
    (1, woken),
];

/// One blocking command in this many stands alone (so it may wait 100 ms on redis-server).
const LONE_BLOCKING_ONE_IN: u64 = 30;

pub fn generate(g: &mut Gen) -> Cmd {
    let command = *g.rng.weighted(COMMANDS);
    command(g)
}

fn del(g: &mut Gen) -> Cmd {
    g.del_in(&KEYS)
}

fn encoding(g: &mut Gen) -> Cmd {
    g.encoding_in(&KEYS)
}

/// A list element: mostly from a small pool (so that searches hit), sometimes any value.
fn element(g: &mut Gen) -> Vec<u8> {
    if g.rng.chance(3, 4) {
        g.rng
            .pick(&[&b"a"[..], b"b", b"c", b"d", b"1", b"2", b"10", b"-1", b""])
            .to_vec()
    } else {
        g.value()
    }
}

/// 1 to 5 elements, now and then a long run of them.
fn elements(g: &mut Gen) -> Vec<Vec<u8>> {
    let n = if g.rng.chance(1, 40) {
        20 + g.rng.index(60)
    } else {
        g.count(5)
    };
    (0..n).map(|_| element(g)).collect()
}

/// LEFT or RIGHT, in either case, or now and then a wrong word.
fn side(g: &mut Gen) -> &'static str {
    if g.rng.chance(1, 30) {
        g.rng.pick::<&str>(&["UP", "", "LEFTX"])
    } else {
        g.rng
            .pick::<&str>(&["LEFT", "RIGHT", "LEFT", "RIGHT", "left", "Right"])
    }
}

/// A list index or range bound: mostly small, sometimes extreme or not a number.
fn index(g: &mut Gen) -> Vec<u8> {
    match g.rng.below(20) {
        0 => g.junk_int(),
        1 => g
            .rng
            .pick(&[&b"9223372036854775807"[..], b"-9223372036854775808"])
            .to_vec(),
        _ => g.rng.range(-12, 12).to_string().into_bytes(),
    }
}

fn push_args(g: &mut Gen, name: &str) -> Args {
    let key = g.key_in(&KEYS);
    let items = elements(g);
    g.c(name).arg(key).args(items)
}

/// LPUSH or RPUSH.
fn push(g: &mut Gen) -> Cmd {
    let name = *g.rng.pick(&["LPUSH", "RPUSH"]);
    push_args(g, name).exact()
}

/// LPUSHX or RPUSHX: only onto an existing list.
fn pushx(g: &mut Gen) -> Cmd {
    let name = *g.rng.pick(&["LPUSHX", "RPUSHX"]);
    push_args(g, name).exact()
}

/// LPOP or RPOP, with or without a count (0 and negative ones included).
fn pop(g: &mut Gen) -> Cmd {
    let name = *g.rng.pick(&["LPOP", "RPOP"]);
    let key = g.key_in(&KEYS);
    let args = g.c(name).arg(key);
    match g.rng.below(8) {
        0..=3 => args.exact(),
        4 => args.arg(g.int_or_junk(-2, 0, 3)).exact(),
        _ => args.arg(g.rng.range(1, 8).to_string()).exact(),
    }
}

fn llen(g: &mut Gen) -> Cmd {
    let key = g.key_in(&KEYS);
    g.c("LLEN").arg(key).exact()
}

fn lrange(g: &mut Gen) -> Cmd {
    let key = g.key_in(&KEYS);
    let (start, stop) = if g.rng.chance(1, 4) {
        (b"0".to_vec(), b"-1".to_vec())
    } else {
        (index(g), index(g))
    };
    g.c("LRANGE").arg(key).arg(start).arg(stop).exact()
}

fn lindex(g: &mut Gen) -> Cmd {
    let (key, at) = (g.key_in(&KEYS), index(g));
    g.c("LINDEX").arg(key).arg(at).exact()
}

/// LSET: out-of-range indexes and missing keys fail.
fn lset(g: &mut Gen) -> Cmd {
    let (key, at, item) = (g.key_in(&KEYS), index(g), element(g));
    g.c("LSET").arg(key).arg(at).arg(item).exact()
}

/// LINSERT key BEFORE|AFTER pivot element.
fn linsert(g: &mut Gen) -> Cmd {
    let key = g.key_in(&KEYS);
    let place = if g.rng.chance(1, 20) {
        g.rng.pick(&["MIDDLE", ""])
    } else {
        g.rng.pick(&["BEFORE", "AFTER", "before", "After"])
    };
    let (pivot, item) = (element(g), element(g));
    g.c("LINSERT")
        .arg(key)
        .arg(place)
        .arg(pivot)
        .arg(item)
        .exact()
}

/// LREM key count element: from the head (count > 0), the tail (< 0) or all (0).
fn lrem(g: &mut Gen) -> Cmd {
    let (key, count, item) = (g.key_in(&KEYS), g.int_or_junk(-3, 3, 20), element(g));
    g.c("LREM").arg(key).arg(count).arg(item).exact()
}

fn ltrim(g: &mut Gen) -> Cmd {
    let (key, start, stop) = (g.key_in(&KEYS), index(g), index(g));
    g.c("LTRIM").arg(key).arg(start).arg(stop).exact()
}

/// LPOS key element [RANK rank] [COUNT num-matches] [MAXLEN len], options in any order,
/// with zero, negative and extreme values.
fn lpos(g: &mut Gen) -> Cmd {
    let (key, item) = (g.key_in(&KEYS), element(g));
    let mut args = g.c("LPOS").arg(key).arg(item);
    for _ in 0..g.rng.below(4) {
        args = match g.rng.below(20) {
            0..=5 => args.arg("RANK").arg(lpos_rank(g)),
            6..=11 => args.arg("COUNT").arg(g.int_or_junk(0, 3, 20)),
            12..=17 => args.arg("MAXLEN").arg(g.int_or_junk(0, 6, 20)),
            18 => args.arg(*g.rng.pick(&["COUNT", "MAXLEN"])).arg("-1"),
            _ => args.arg(*g.rng.pick(&["RANK", "FOO"])),
        };
    }
    args.exact()
}

/// An LPOS rank: mostly small and non-zero, sometimes 0 (refused), extreme or not a number.
fn lpos_rank(g: &mut Gen) -> Vec<u8> {
    match g.rng.below(20) {
        0 => b"0".to_vec(),
        1 => b"9223372036854775807".to_vec(),
        2 if g.rng.chance(1, 2) => b"-9223372036854775808".to_vec(),
        2 => b"-9223372036854775807".to_vec(),
        3 => g
            .rng
            .pick(&[&b"abc"[..], b"1.5", b"", b"9223372036854775808"])
            .to_vec(),
        _ => {
            let rank = g.rng.range(1, 3);
            (if g.rng.chance(1, 3) { -rank } else { rank })
                .to_string()
                .into_bytes()
        }
    }
}

/// LMOVE source destination LEFT|RIGHT LEFT|RIGHT: same key, same shard or across shards.
fn lmove(g: &mut Gen) -> Cmd {
    let keys = g.keys_in(&KEYS, 2);
    let (from, to) = (side(g), side(g));
    g.c("LMOVE").args(keys).arg(from).arg(to).exact()
}

fn rpoplpush(g: &mut Gen) -> Cmd {
    let keys = g.keys_in(&KEYS, 2);
    g.c("RPOPLPUSH").args(keys).exact()
}

/// The `numkeys key... LEFT|RIGHT [COUNT n]` tail of LMPOP and BLMPOP.
fn mpop_args(g: &mut Gen, mut args: Args) -> Args {
    let n = g.count(3);
    let keys = g.keys_in(&KEYS, n);
    args = args.arg(g.numkeys(n)).args(keys).arg(side(g));
    match g.rng.below(12) {
        0..=3 => args,
        4 => args.arg("COUNT").arg(g.int_or_junk(-1, 0, 3)),
        5 => args.arg(*g.rng.pick(&["COUNT", "FOO"])),
        _ => args.arg("COUNT").arg(g.rng.range(1, 6).to_string()),
    }
}

/// LMPOP numkeys key [key ...] LEFT|RIGHT [COUNT count].
fn lmpop(g: &mut Gen) -> Cmd {
    let args = g.c("LMPOP");
    mpop_args(g, args).exact()
}

/// A blocking pop or move, usually right after an RPUSH onto one of its keys (see the module
/// comment); returns the push and plans the blocking command after it.
fn blocking(g: &mut Gen) -> Cmd {
    let cmd = blocking_cmd(g);
    if g.rng.chance(1, LONE_BLOCKING_ONE_IN) {
        return cmd;
    }
    let key = blocking_key(&cmd);
    let items = elements(g);
    let push = g.c("RPUSH").arg(key).args(items).exact();
    g.plan([Box::new(move |_: &mut Gen| cmd) as super::Step]);
    push
}

/// BLPOP, BRPOP, BLMOVE, BRPOPLPUSH or BLMPOP, on its own (inside MULTI, which it cannot block
/// in, or after a push).
pub fn blocking_cmd(g: &mut Gen) -> Cmd {
    let args = match g.rng.below(5) {
        0 | 1 => {
            let n = g.count(3);
            let keys = g.keys_in(&KEYS, n);
            let name = *g.rng.pick(&["BLPOP", "BRPOP"]);
            g.c(name).args(keys).arg(g.block_timeout())
        }
        2 => {
            let keys = g.keys_in(&KEYS, 2);
            let (from, to) = (side(g), side(g));
            let timeout = g.block_timeout();
            g.c("BLMOVE").args(keys).arg(from).arg(to).arg(timeout)
        }
        3 => {
            let keys = g.keys_in(&KEYS, 2);
            g.c("BRPOPLPUSH").args(keys).arg(g.block_timeout())
        }
        _ => {
            let timeout = g.block_timeout();
            let args = g.c("BLMPOP").arg(timeout);
            mpop_args(g, args)
        }
    };
    args.exact()
}

/// SELECT of a database, DEL of the wake keys there, then (planned) a blocking command on some
/// of them that the second connection wakes (`Check::Woken`); all its arguments are valid, so
/// that it blocks.
fn woken(g: &mut Gen) -> Cmd {
    let n = g.count(2);
    let keys: Vec<Vec<u8>> = (0..n)
        .map(|_| g.rng.pick(WAKE_KEYS.names).to_vec())
        .collect();
    let db = g.rng.below(super::DBS);
    let kind = *g.rng.pick(&[WakeKind::Last, WakeKind::Ordered]);
    let waker = Waker { db, kind };
    let from = *g.rng.pick(&["LEFT", "RIGHT"]);
    let to = *g.rng.pick(&["LEFT", "RIGHT"]);
    let dest = g.key_in(&KEYS);
    let args = match g.rng.below(5) {
        0 | 1 => {
            let name = *g.rng.pick(&["BLPOP", "BRPOP"]);
            g.c(name).args(keys).arg(WAKE_TIMEOUT)
        }
        2 => g
            .c("BLMOVE")
            .arg(&keys[0])
            .arg(dest)
            .arg(from)
            .arg(to)
            .arg(WAKE_TIMEOUT),
        3 => g.c("BRPOPLPUSH").arg(&keys[0]).arg(dest).arg(WAKE_TIMEOUT),
        _ => {
            let args = g
                .c("BLMPOP")
                .arg(WAKE_TIMEOUT)
                .arg(n.to_string())
                .args(keys)
                .arg(from);
            if g.rng.chance(1, 2) {
                args.arg("COUNT").arg(g.rng.range(1, 3).to_string())
            } else {
                args
            }
        }
    };
    let cmd = args.check(Check::Woken(waker));
    let del = g.c("DEL").args(WAKE_KEYS.names).exact();
    g.plan([
        Box::new(move |_: &mut Gen| del) as super::Step,
        Box::new(move |_: &mut Gen| cmd),
    ]);
    g.c("SELECT").arg(db.to_string()).exact()
}

/// A key of a blocking command to push onto first: its first key (BLMOVE's and BRPOPLPUSH's
/// source), or for BLMPOP the first argument after `numkeys`.
fn blocking_key(cmd: &Cmd) -> Vec<u8> {
    let name = cmd.args[0].to_ascii_uppercase();
    let at = if name == b"BLMPOP" { 3 } else { 1 };
    cmd.args.get(at).cloned().unwrap_or_default()
}
