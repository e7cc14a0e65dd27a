//! The differential command generator: seeded random commands whose replies must be identical
//! on Redis 7.0 and on shardis.
//!
//! `Gen::next` draws one command from a weighted table of families; each family lives in its
//! own file with one function per command (`strings.rs`, `keys.rs`, `lists.rs`, `hashes.rs`,
//! `sets.rs`, `zsets.rs`, `geo.rs`, `hll.rs`, `transactions.rs`, `misc.rs`), so a new data type
//! is a new file and one line in `FAMILIES`. A command carries a `Check` that says how its two
//! replies are compared; almost all are compared byte for byte, errors included.
//!
//! A family may plan the commands that follow its own (`Gen::plan`): a transaction is MULTI,
//! its queued commands and EXEC, each generated when its turn comes; a blocking pop comes
//! right after a push onto its key. Commands go to one of two connections per server
//! (`Conn`): the second plays another client, for WATCH.
//!
//! Determinism is the generator's job, not the comparison's: the same command sequence must
//! produce the same replies on two servers that run it at slightly different moments.
//! - Relative expiries are whole seconds, never below 1000 s, so no key expires during a run.
//!   They are `base + index` seconds (`index` = the command's position in the run) with bases
//!   10^7 s apart, so two deadlines set by different commands always differ by at least half a
//!   second plus the time between the commands: `GT`/`LT` comparisons between them can never
//!   depend on which millisecond a server happened to run a command in.
//! - Absolute expiries are either in the past (EXPIREAT and GETEX then delete the key at once)
//!   or years after any relative deadline, so they are deterministic too. SET gets future ones
//!   only: Redis 7.0 stores a key SET with a past EXAT/PXAT and leaves it to the expiry cycle,
//!   so DBSIZE would depend on when that cycle ran.
//! - Replies that depend on the clock or on hash order use a looser `Check`: TTL-like integers
//!   may differ by a few seconds, KEYS and set members are compared sorted, SCAN and the key
//!   scans are iterated to completion and the sets found compared, RANDOMKEY only as null or
//!   not null, hash fields exactly while the hash is a listpack and sorted after, random picks
//!   (SRANDMEMBER, HRANDFIELD, ZRANDMEMBER, SPOP) by shape and against each server's own
//!   collection, after which SPOP's differences are undone (`sampled.rs`).
//! - Blocking commands wait only when every key they name is empty, and then for 10 to 100 ms,
//!   after which both servers answer null; no command relies on another client to wake it.
//! - BYLEX ranges are read only on keys whose members all score 0 (`zsets::LEX_KEYS`):
//!   Redis's answer over mixed scores depends on its skiplist's random levels.
//!
//! The keyspace is small (about 30 names, and 5 or 6 per data type) so commands collide often;
//! some names share a `{hashtag}` and some do not, so multi-key commands span shards. It
//! includes the empty name and binary names. Each type's family draws mostly from its own
//! names and sometimes from all of them, so commands meet values of every type (WRONGTYPE).
//!
//! Known shardis bugs are left out of the generation (`KnownBug`, one variant per bug, each
//! exclusion naming it) so that a run can find others; `SHARDIS_DIFF_KNOWN_BUGS=1` puts them
//! back.

pub mod compare;
mod geo;
mod hashes;
mod hll;
mod keys;
mod lists;
mod misc;
mod sampled;
mod scripting;
mod sets;
mod streams;
mod strings;
mod transactions;
pub mod woken;
mod zsets;

use crate::common::rng::Rng;
use std::collections::VecDeque;

/// How the two replies to a command are compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Check {
    /// Byte for byte.
    Exact,
    /// Byte for byte, except that two non-negative integers may differ by `tolerance`
    /// (TTL, PTTL, EXPIRETIME, PEXPIRETIME).
    Near { tolerance: i64 },
    /// An array compared as a sorted list of its elements (KEYS, SMEMBERS, SINTER...).
    SortedArray,
    /// Only whether the reply is null (RANDOMKEY); errors exactly.
    NullOrNot,
    /// The command is a `SCAN 0 ...`: both servers are scanned to completion with the same
    /// options and the sets of keys compared.
    ScanAll,
    /// Same RESP type and neither an error (HELLO, whose reply holds a client id).
    SameShape,
    /// HKEYS, HVALS, HGETALL (`pairs`) of the hash at `args[1]`: byte for byte when the first
    /// server holds it as a listpack (insertion order, which shardis keeps too), otherwise
    /// compared as sorted multisets of elements or of field/value pairs (hash-table order is
    /// each server's own).
    HashOrder { pairs: bool },
    /// `SSCAN|HSCAN|ZSCAN key 0 ...`: each server iterated to completion, and the sets of
    /// elements (of field/value or member/score pairs when `pairs`) compared.
    ScanKey { pairs: bool },
    /// SRANDMEMBER, HRANDFIELD, ZRANDMEMBER: random picks, so only the shape is compared (the
    /// same RESP type, the same count) and each server's picks are checked against its own
    /// copy of the collection (members exist, values match, no repeats for a positive count).
    Random(Collection),
    /// SPOP: checked like `Random(Set)` against what each server held before the pop, and
    /// each server's encoding against Redis's rules for its own pop; the second server is then
    /// made to hold what the first does (SADD, SREM, and a rebuild when the encodings differ),
    /// so that the keyspaces stay identical (`sampled.rs`).
    Spop,
    /// A blocking command on just-deleted keys, woken by the second connection once the
    /// server reports it blocked (`woken.rs`); the wakers' replies and its own compared.
    Woken(Waker),
}

/// How the second connection wakes a `Check::Woken` command: in database `db` (the one the
/// first connection SELECTed just before), with pushes of `kind`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Waker {
    pub db: u64,
    pub kind: WakeKind,
}

/// The pushes that wake a `Check::Woken` command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WakeKind {
    /// A push (RPUSH or ZADD of two elements) onto the last key it waits on.
    Last,
    /// A transaction pushing onto its last key, then its first: it must be served from the
    /// last, which became ready first.
    Ordered,
}

/// The collection type behind a `Check::Random`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Collection {
    Set,
    Hash,
    Zset,
}

/// Which of the two connections per server a command goes to. The second one plays another
/// client: it touches watched keys between WATCH and EXEC, and wakes blocked commands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Conn {
    Main,
    Second,
}

/// One generated command.
#[derive(Debug, Clone)]
pub struct Cmd {
    pub args: Vec<Vec<u8>>,
    pub check: Check,
    pub conn: Conn,
}

impl Cmd {
    /// The same command, sent on the second connection of each server.
    pub fn on_second(mut self) -> Cmd {
        self.conn = Conn::Second;
        self
    }
}

/// A command under construction.
pub struct Args(Vec<Vec<u8>>);

impl Args {
    pub fn arg(mut self, a: impl AsRef<[u8]>) -> Args {
        self.0.push(a.as_ref().to_vec());
        self
    }

    pub fn args<A: AsRef<[u8]>>(mut self, items: impl IntoIterator<Item = A>) -> Args {
        self.0
            .extend(items.into_iter().map(|a| a.as_ref().to_vec()));
        self
    }

    pub fn exact(self) -> Cmd {
        self.check(Check::Exact)
    }

    pub fn check(self, check: Check) -> Cmd {
        Cmd {
            args: self.0,
            check,
            conn: Conn::Main,
        }
    }
}

/// A generator of one command, or of one family of commands.
pub type GenFn = fn(&mut Gen) -> Cmd;

/// Every family with its weight. A later data type adds one line here.
pub const FAMILIES: &[(u32, &str, GenFn)] = &[
    (50, "strings", strings::generate),
    (35, "keys", keys::generate),
    (25, "lists", lists::generate),
    (25, "hashes", hashes::generate),
    (25, "sets", sets::generate),
    (25, "zsets", zsets::generate),
    (8, "geo", geo::generate),
    (10, "hll", hll::generate),
    (15, "streams", streams::generate),
    (6, "transactions", transactions::generate),
    (8, "errors", misc::errors),
    (3, "connection", misc::connection),
    (12, "scripting", scripting::generate),
];

/// Names of the keyspace. Groups share a hashtag (same slot, so same shard); the rest spread.
pub const KEYS: &[&[u8]] = &[
    b"{user1}:name",
    b"{user1}:age",
    b"{user1}:bits",
    b"{user1}:n",
    b"{user1}:s",
    b"{user2}:a",
    b"{user2}:b",
    b"{user2}:c",
    b"{user2}:d",
    b"{t}x",
    b"{t}y",
    b"{t}z",
    b"k1",
    b"k2",
    b"k3",
    b"k4",
    b"k5",
    b"k6",
    b"counter",
    b"bits",
    b"float",
    b"dest",
    b"",
    b"bin\x00\xff\r\n",
    b"sp ace",
    b"{}",
    b"{",
    b"a{b}c",
    b"\xe2\x82\xac",
    b"*?[]",
];

/// Names that mostly hold numbers, so that INCR and friends succeed often enough.
const COUNTERS: &[&[u8]] = &[b"counter", b"{user1}:n", b"{t}y", b"float"];

/// Indexes into `KEYS` of the groups that share a hashtag.
const TAG_GROUPS: &[&[usize]] = &[&[0, 1, 2, 3, 4], &[5, 6, 7, 8], &[9, 10, 11]];

/// A data type's own key names: the first `tagged` share one hashtag (so live on one shard),
/// the others spread over the shards. The families draw mostly from their own set, so that
/// their commands mostly find a value of their type, and sometimes from anywhere, so that
/// WRONGTYPE and cross-shard cases come up.
pub struct KeySet {
    pub names: &'static [&'static [u8]],
    pub tagged: usize,
}

/// Every type's key set; `Gen::key` draws from these too, so that string and keyspace
/// commands meet lists, hashes, sets and HyperLogLogs.
const TYPED_KEYS: &[&KeySet] = &[
    &lists::KEYS,
    &hashes::KEYS,
    &sets::KEYS,
    &hll::KEYS,
    &streams::KEYS,
];

/// Databases the generator uses (SELECT, MOVE, COPY ... DB).
pub const DBS: u64 = 4;

/// Bases of relative expiries in seconds; see the module comment for why they are far apart.
const TTL_BASES_SECS: &[i64] = &[1000, 10_000_000, 20_000_000];

/// A command still to come in a planned sequence (a transaction), generated when its turn
/// comes so that it gets its own index.
pub type Step = Box<dyn FnOnce(&mut Gen) -> Cmd>;

/// Families whose commands a transaction may queue: not `transactions` itself (no nesting of
/// plans) and not `connection` (HELLO's reply holds a client id).
const NOT_QUEUEABLE: &[&str] = &["transactions", "connection"];

/// Known shardis bugs (differences from Redis 7.0.15) whose cases the generator leaves out,
/// so that a run can find other differences. `SHARDIS_DIFF_KNOWN_BUGS=1` generates them again,
/// to check a fix. Each exclusion in the families asks `Gen::avoids` with its bug; remove the
/// variant and its exclusions with the fix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KnownBug {}

/// Set to generate the cases of `KnownBug` too.
const KNOWN_BUGS_ENV: &str = "SHARDIS_DIFF_KNOWN_BUGS";

/// Every `KnownBug`, for the run's opening note.
pub const KNOWN_BUGS: &[KnownBug] = &[];

/// Whether the run generates the cases of known bugs (`SHARDIS_DIFF_KNOWN_BUGS` set).
pub fn known_bugs_included() -> bool {
    std::env::var_os(KNOWN_BUGS_ENV).is_some()
}

/// The generator's state: its randomness, the position in the run, the enabled families and
/// the rest of a planned sequence.
pub struct Gen {
    pub rng: Rng,
    index: i64,
    families: Vec<(u32, GenFn)>,
    /// The enabled families a transaction may queue commands from (all of them when none is
    /// enabled, as with `SHARDIS_DIFF_FAMILIES=transactions`).
    pub queueable: Vec<(u32, GenFn)>,
    plan: VecDeque<Step>,
    /// Whether the cases of `KnownBug` are generated too.
    #[allow(dead_code)] // read by `avoids`, which no family calls while no bug is known
    known_bugs: bool,
}

impl Gen {
    /// A generator over the families named in `only` (all when empty).
    pub fn new(seed: u64, only: &[String]) -> Gen {
        let enabled = |name: &str| only.is_empty() || only.iter().any(|o| o == name);
        let families: Vec<(u32, GenFn)> = FAMILIES
            .iter()
            .filter(|(_, name, _)| enabled(name))
            .map(|(weight, _, f)| (*weight, *f))
            .collect();
        assert!(
            !families.is_empty(),
            "no known family in {only:?}; known: {:?}",
            family_names()
        );
        let queueable_all = FAMILIES
            .iter()
            .filter(|(_, name, _)| !NOT_QUEUEABLE.contains(name));
        let mut queueable: Vec<(u32, GenFn)> = queueable_all
            .clone()
            .filter(|(_, name, _)| enabled(name))
            .map(|(weight, _, f)| (*weight, *f))
            .collect();
        if queueable.is_empty() {
            queueable = queueable_all.map(|(weight, _, f)| (*weight, *f)).collect();
        }
        Gen {
            rng: Rng::new(seed),
            index: 0,
            families,
            queueable,
            plan: VecDeque::new(),
            known_bugs: known_bugs_included(),
        }
    }

    /// The position of the command being generated in the run.
    pub fn index(&self) -> i64 {
        self.index
    }

    /// Whether to leave out the cases of a known shardis bug (see `KnownBug`).
    #[allow(dead_code)] // no family calls it while no bug is known
    pub fn avoids(&self, _bug: KnownBug) -> bool {
        !self.known_bugs
    }

    /// The command at position `index` of the run.
    pub fn next(&mut self, index: u64) -> Cmd {
        self.index = index as i64;
        if let Some(step) = self.plan.pop_front() {
            return step(self);
        }
        // Rare, so that the keyspace has time to fill up between two flushes.
        if self.rng.chance(1, 5000) {
            let args = self.c("FLUSHDB");
            return match self.rng.below(3) {
                0 => args.exact(),
                1 => args.arg("ASYNC").exact(),
                _ => args.arg("SYNC").exact(),
            };
        }
        let family = *self.rng.weighted(&self.families);
        family(self)
    }

    /// Plans `steps` to be generated by the next calls of `next`, in order.
    pub fn plan(&mut self, steps: impl IntoIterator<Item = Step>) {
        self.plan.extend(steps);
    }

    /// How many planned steps are left.
    pub fn plan_len(&self) -> usize {
        self.plan.len()
    }

    /// Drops the planned steps after the first `len`.
    pub fn truncate_plan(&mut self, len: usize) {
        self.plan.truncate(len);
    }

    /// A command named `name`, sometimes in mixed case (names are case-insensitive).
    pub fn c(&mut self, name: &str) -> Args {
        let name: Vec<u8> = if self.rng.chance(1, 5) {
            name.bytes()
                .map(|b| {
                    if self.rng.chance(1, 2) {
                        b.to_ascii_lowercase()
                    } else {
                        b
                    }
                })
                .collect()
        } else {
            name.as_bytes().to_vec()
        };
        Args(vec![name])
    }

    /// A key name: mostly from `KEYS`, sometimes one of a data type's own names, rarely one
    /// that nothing else uses.
    pub fn key(&mut self) -> Vec<u8> {
        if self.rng.chance(1, 50) {
            return format!("other:{}", self.rng.below(1000)).into_bytes();
        }
        if self.rng.chance(1, 16) {
            let set = *self.rng.pick(TYPED_KEYS);
            return self.rng.pick(set.names).to_vec();
        }
        self.rng.pick(KEYS).to_vec()
    }

    /// A key for a command of the type that owns `set`: mostly one of its names.
    pub fn key_in(&mut self, set: &KeySet) -> Vec<u8> {
        if self.rng.chance(11, 12) {
            self.rng.pick(set.names).to_vec()
        } else {
            self.key()
        }
    }

    /// `n` keys for a multi-key command of the type that owns `set`: half of the time all from
    /// its hashtag group (one shard), otherwise each drawn by `key_in` (usually several shards).
    pub fn keys_in(&mut self, set: &KeySet, n: usize) -> Vec<Vec<u8>> {
        if self.rng.chance(1, 2) {
            let tagged = &set.names[..set.tagged];
            (0..n).map(|_| self.rng.pick(tagged).to_vec()).collect()
        } else {
            (0..n).map(|_| self.key_in(set)).collect()
        }
    }

    /// A key for INCR and friends: mostly one that holds a number.
    pub fn counter_key(&mut self) -> Vec<u8> {
        if self.rng.chance(2, 3) {
            self.rng.pick(COUNTERS).to_vec()
        } else {
            self.key()
        }
    }

    /// A value to store under `key`: mostly a number for the counters.
    pub fn value_for(&mut self, key: &[u8]) -> Vec<u8> {
        if COUNTERS.contains(&key) && self.rng.chance(2, 3) {
            self.rng.range(-1000, 1000).to_string().into_bytes()
        } else {
            self.value()
        }
    }

    /// `n` key names, half of the time from one hashtag group (so on one shard).
    pub fn keys(&mut self, n: usize) -> Vec<Vec<u8>> {
        if self.rng.chance(1, 2) {
            let group = *self.rng.pick(TAG_GROUPS);
            (0..n)
                .map(|_| KEYS[*self.rng.pick(group)].to_vec())
                .collect()
        } else {
            (0..n).map(|_| self.key()).collect()
        }
    }

    /// A timeout for a blocking command: 10 to 100 ms, or now and then one Redis refuses.
    /// Never 0 (block forever) nor below a millisecond (which Redis rounds down to 0): the
    /// generator never relies on another client to wake a blocked one.
    pub fn block_timeout(&mut self) -> Vec<u8> {
        if self.rng.chance(1, 20) {
            return self
                .rng
                .pick(&[&b"-1"[..], b"abc", b"", b"-0.5", b"nan", b"0.01x"])
                .to_vec();
        }
        self.valid_block_timeout()
    }

    /// A timeout for a blocking command that Redis accepts: 10 to 100 ms.
    pub fn valid_block_timeout(&mut self) -> Vec<u8> {
        self.rng
            .pick(&[
                &b"0.01"[..],
                b"0.01",
                b"0.02",
                b"0.05",
                b"0.1",
                b".01",
                b"1e-2",
            ])
            .to_vec()
    }

    /// A `numkeys` argument for `keys`: usually right, sometimes 0, negative, too large (then
    /// Redis reads options as keys or complains) or not a number.
    pub fn numkeys(&mut self, keys: usize) -> Vec<u8> {
        match self.rng.below(25) {
            0 => b"0".to_vec(),
            1 => b"-1".to_vec(),
            2 => (keys + 1 + self.rng.index(3)).to_string().into_bytes(),
            3 => self.junk_int(),
            4 if keys > 1 => (keys - 1).to_string().into_bytes(),
            _ => keys.to_string().into_bytes(),
        }
    }

    /// OBJECT ENCODING of one of a type's own names: encodings are part of the contract, and
    /// asking often finds a divergence near the command that caused it.
    pub fn encoding_in(&mut self, set: &KeySet) -> Cmd {
        let key = self.key_in(set);
        self.c("OBJECT").arg("ENCODING").arg(key).exact()
    }

    /// DEL of one of a type's own names: a string written there by another family would
    /// otherwise stay until a FLUSHDB, and collections would only grow.
    pub fn del_in(&mut self, set: &KeySet) -> Cmd {
        let key = self.rng.pick(set.names).to_vec();
        self.c("DEL").arg(key).exact()
    }

    /// A small count: 1 to `max`.
    pub fn count(&mut self, max: u64) -> usize {
        1 + self.rng.below(max) as usize
    }

    /// A string value: integers, floats, empty, binary, short words and 40-60 byte strings
    /// (either side of the 44-byte embstr limit).
    pub fn value(&mut self) -> Vec<u8> {
        match self.rng.below(15) {
            0..=4 => self.rng.range(-100, 100).to_string().into_bytes(),
            5 => self.rng.pick(INT_EDGES).to_vec(),
            6 => self.rng.pick(FLOATS).to_vec(),
            7 => Vec::new(),
            8 => {
                let len = self.count(8);
                self.rng.bytes(len)
            }
            9..=12 => {
                let len = self.count(12);
                self.rng.bytes_from(len, b"abcdefxyz")
            }
            13 => {
                let len = 40 + self.rng.below(21) as usize;
                self.rng.bytes_from(len, b"abcdefghij0123456789")
            }
            _ => {
                let len = self.count(4);
                self.rng.bytes_from(len, b"\x00\x01\x0f\xf0\xff\xaa\x55")
            }
        }
    }

    /// An integer in `lo..=hi` as text, or one time in `junk_one_in` something that is not a
    /// valid integer or is out of any sane range.
    pub fn int_or_junk(&mut self, lo: i64, hi: i64, junk_one_in: u64) -> Vec<u8> {
        if self.rng.chance(1, junk_one_in) {
            self.junk_int()
        } else {
            self.rng.range(lo, hi).to_string().into_bytes()
        }
    }

    /// Text that is not a valid integer, or an extreme one.
    pub fn junk_int(&mut self) -> Vec<u8> {
        self.rng.pick(JUNK_INTS).to_vec()
    }

    /// A relative expiry in seconds (see the module comment).
    pub fn rel_secs(&mut self) -> i64 {
        *self.rng.pick(TTL_BASES_SECS) + self.index
    }

    /// A relative expiry in milliseconds: like `rel_secs`, plus half a second.
    pub fn rel_ms(&mut self) -> i64 {
        self.rel_secs() * 1000 + 500
    }

    /// An absolute unix time in seconds, far in the past or far in the future.
    pub fn abs_secs(&mut self) -> i64 {
        if self.rng.chance(1, 3) {
            *self.rng.pick(&[1, 1_000_000_000, 1_600_000_000])
        } else {
            self.future_secs()
        }
    }

    /// An absolute unix time in seconds, years after any relative deadline of a run.
    pub fn future_secs(&mut self) -> i64 {
        *self
            .rng
            .pick(&[3_000_000_000, 4_102_444_800, 5_000_000_000 + self.index])
    }

    /// An absolute unix time in milliseconds, far in the past or far in the future.
    pub fn abs_ms(&mut self) -> i64 {
        self.abs_secs() * 1000 + self.rng.range(0, 999)
    }

    /// A seconds argument for a relative expiry: mostly valid, sometimes zero, negative,
    /// overflowing or not a number.
    pub fn secs_arg(&mut self) -> Vec<u8> {
        match self.rng.below(20) {
            0 => b"0".to_vec(),
            1 => self.rng.range(-100_000, -1).to_string().into_bytes(),
            2 => self.junk_int(),
            _ => self.rel_secs().to_string().into_bytes(),
        }
    }

    /// A milliseconds argument for a relative expiry, like `secs_arg`.
    pub fn ms_arg(&mut self) -> Vec<u8> {
        match self.rng.below(20) {
            0 => b"0".to_vec(),
            1 => self.rng.range(-100_000_000, -1).to_string().into_bytes(),
            2 => self.junk_int(),
            _ => self.rel_ms().to_string().into_bytes(),
        }
    }

    /// An absolute-time argument in seconds, sometimes invalid.
    pub fn abs_secs_arg(&mut self) -> Vec<u8> {
        if self.rng.chance(1, 15) {
            self.junk_int()
        } else {
            self.abs_secs().to_string().into_bytes()
        }
    }

    /// An absolute-time argument in milliseconds, sometimes invalid.
    pub fn abs_ms_arg(&mut self) -> Vec<u8> {
        if self.rng.chance(1, 15) {
            self.junk_int()
        } else {
            self.abs_ms().to_string().into_bytes()
        }
    }

    /// An absolute time in the future for SET's EXAT (`ms` false) or PXAT, sometimes invalid.
    /// SET never takes a past time here: Redis 7.0 keeps such a key until its expiry cycle
    /// finds it, so DBSIZE would depend on when that cycle ran.
    pub fn future_arg(&mut self, ms: bool) -> Vec<u8> {
        if self.rng.chance(1, 15) {
            return self.junk_int();
        }
        let secs = self.future_secs();
        let at = if ms {
            secs * 1000 + self.rng.range(0, 999)
        } else {
            secs
        };
        at.to_string().into_bytes()
    }

    /// A database index: mostly one of `0..DBS`, sometimes out of range or not a number.
    pub fn db_arg(&mut self) -> Vec<u8> {
        match self.rng.below(15) {
            0 => self
                .rng
                .pick(&[&b"16"[..], b"-1", b"100000000000", b"abc", b""])
                .to_vec(),
            _ => self.rng.below(DBS).to_string().into_bytes(),
        }
    }
}

/// Names of all families, for messages.
pub fn family_names() -> Vec<&'static str> {
    FAMILIES.iter().map(|(_, name, _)| *name).collect()
}

/// Integers at the edges of what Redis parses as a 64-bit integer.
const INT_EDGES: &[&[u8]] = &[
    b"0",
    b"-0",
    b"+1",
    b"007",
    b"9223372036854775807",
    b"-9223372036854775808",
    b"9223372036854775806",
    b"9223372036854775808",
    b"18446744073709551615",
    b" 1",
    b"1 ",
    b"0x10",
    b"1e3",
    b"12345678901234567890",
];

/// Float texts: what INCRBYFLOAT accepts, and some it refuses.
pub const FLOATS: &[&[u8]] = &[
    b"1.5",
    b"-0.25",
    b"3.0",
    b"1e2",
    b"0.1",
    b"-1.1",
    b"10.5",
    b"5.0e3",
    b"3.14159",
    b"-7",
    b"100000000000",
    b"inf",
    b"-inf",
    b"nan",
    b"1.2.3",
    b" 2",
    b"",
];

/// Arguments that should fail integer parsing (or overflow what they feed).
const JUNK_INTS: &[&[u8]] = &[
    b"abc",
    b"",
    b"1.5",
    b" 1",
    b"1 ",
    b"0x10",
    b"+",
    b"-",
    b"1e3",
    b"9223372036854775807",
    b"-9223372036854775808",
    b"9223372036854775808",
    b"-9223372036854775809",
    b"99999999999999999999",
    b"\x00",
];
