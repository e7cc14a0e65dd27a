//! Access control lists, as Redis 7.0 has them: users, their passwords and what they may run.
//!
//! One user table is shared by every shard (`TABLE`, behind a reader-writer lock that only
//! AUTH, ACL commands, accepts and the per-turn refresh take). A user is an immutable
//! `Arc<User>`: ACL SETUSER builds a new one and swaps it in, and bumps `EPOCH`; each shard,
//! once per loop turn, sees the epoch move and hands its connections their user's new `Arc`.
//!
//! The hot path: a connection holds `acl: Option<Arc<User>>`, `None` when its user may run
//! everything (`+@all ~* &*`, the default user unless restricted), so an unrestricted
//! connection pays one branch per command and nothing else (`admit`). A restricted one runs
//! Redis's check (`ACLCheckAllUserCommandPerm`): some selector must allow the command (its
//! bit, or an allowed first argument), every key (by the key spec's read/write flags) and
//! every channel; the error reported is the most relevant one over the selectors.
//!
//! Commands get ids once (`registry`): every table entry, subcommands included, with its ACL
//! categories as Redis derives them (`specs::categories`). `requirepass` keeps working: it sets
//! the default user's password (`sync_requirepass`), as Redis's `ACLUpdateDefaultUserPassword`.

pub mod command;
pub mod file;
mod sha256;

use crate::commands::{self, specs, Cmd, Kind};
use bytes::Bytes;
use parking_lot::{Mutex, RwLock};
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

pub use sha256::hex as password_hash;

/// Read / write key permissions (`%R~`, `%W~`).
pub const PERM_READ: u8 = 1;
pub const PERM_WRITE: u8 = 2;
pub const PERM_ALL: u8 = PERM_READ | PERM_WRITE;

/// Why a command was denied (Redis's ACL_DENIED_*; the order is their relevance).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
pub enum Denied {
    Cmd = 1,
    Key = 2,
    Auth = 3,
    Channel = 4,
}

/// Where a denial happened (ACL LOG `context`).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Context {
    Toplevel,
    Lua,
    Multi,
}

// ---------------------------------------------------------------------------------------------
// The command registry.

pub struct CmdInfo {
    pub cmd: &'static Cmd,
    pub full: &'static str,
    /// Bit i: `specs::CATEGORIES[i]`.
    pub cats: u32,
    /// Ids of the subcommands (for a parent).
    pub subs: Vec<usize>,
    pub is_sub: bool,
}

pub struct Registry {
    pub cmds: Vec<CmdInfo>,
    by_ptr: HashMap<usize, usize>,
}

pub fn registry() -> &'static Registry {
    static R: OnceLock<Registry> = OnceLock::new();
    R.get_or_init(|| {
        let mut cmds = Vec::new();
        let mut by_ptr = HashMap::new();
        let mut push = |cmds: &mut Vec<CmdInfo>, c: &'static Cmd, full: &'static str, sub: bool| {
            let cats = specs::categories(c, full)
                .iter()
                .filter_map(|n| specs::CATEGORIES.iter().position(|k| k == n))
                .fold(0u32, |m, i| m | (1 << i));
            by_ptr.insert(c as *const Cmd as usize, cmds.len());
            cmds.push(CmdInfo {
                cmd: c,
                full,
                cats,
                subs: Vec::new(),
                is_sub: sub,
            });
            cmds.len() - 1
        };
        for c in commands::all() {
            let id = push(&mut cmds, c, c.name, false);
            for s in c.subcommands {
                let sid = push(&mut cmds, s, crate::server::dispatch::full_name(c, s), true);
                cmds[id].subs.push(sid);
            }
        }
        Registry { cmds, by_ptr }
    })
}

impl Registry {
    pub fn id(&self, c: &'static Cmd) -> Option<usize> {
        self.by_ptr.get(&(c as *const Cmd as usize)).copied()
    }

    /// `ACLLookupCommand`: `get`, `config|get` (case-insensitive).
    fn lookup(&self, name: &str) -> Option<usize> {
        match name.split_once('|') {
            None => commands::lookup(name.as_bytes()).and_then(|c| self.id(c)),
            Some((p, s)) => {
                let parent = commands::lookup(p.as_bytes())?;
                let sub = parent.find_sub(s.as_bytes())?;
                self.id(sub)
            }
        }
    }
}

pub fn category_bit(name: &str) -> Option<u32> {
    specs::CATEGORIES
        .iter()
        .position(|k| k.eq_ignore_ascii_case(name))
        .map(|i| 1u32 << i)
}

// ---------------------------------------------------------------------------------------------
// Selectors and users.

#[derive(Clone, PartialEq, Eq)]
pub struct Selector {
    pub root: bool,
    /// One flag per registry id.
    allowed: Vec<bool>,
    /// Redis's reserved command bit: set by `+@all` only, so the user also gets commands
    /// added later. Decides whether the description starts from `+@all` or `-@all`.
    future: bool,
    all_commands: bool,
    /// Allowed first arguments of otherwise denied commands (`+select|0`), by id.
    firstargs: BTreeMap<usize, Vec<String>>,
    all_keys: bool,
    patterns: Vec<(Vec<u8>, u8)>,
    pub(crate) all_channels: bool,
    channels: Vec<Vec<u8>>,
}

/// Why a rule was refused (Redis's errno cases in `ACLSetUserStringError`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RuleError {
    Unknown,
    Syntax,
    KeysAfterAll,
    ChannelsAfterAll,
    NoSuchPassword,
    BadHash,
    FirstArgOfSub,
    Duplicate,
}

impl RuleError {
    pub fn text(self) -> &'static str {
        match self {
            RuleError::Unknown => "Unknown command or category name in ACL",
            RuleError::Syntax => "Syntax error",
            RuleError::KeysAfterAll => "Adding a pattern after the * pattern (or the 'allkeys' flag) is not valid and does not have any effect. Try 'resetkeys' to start with an empty list of patterns",
            RuleError::ChannelsAfterAll => "Adding a pattern after the * pattern (or the 'allchannels' flag) is not valid and does not have any effect. Try 'resetchannels' to start with an empty list of channels",
            RuleError::NoSuchPassword => "The password you are trying to remove from the user does not exist",
            RuleError::BadHash => "The password hash must be exactly 64 characters and contain only lowercase hexadecimal characters",
            RuleError::FirstArgOfSub => "Allowing first-arg of a subcommand is not supported",
            RuleError::Duplicate => "Duplicate user found. A user can only be defined once in config files",
        }
    }
}

fn has_spaces(s: &[u8]) -> bool {
    s.iter().any(|&b| b.is_ascii_whitespace() || b == 0)
}

impl Selector {
    fn new(root: bool) -> Selector {
        Selector {
            root,
            allowed: vec![false; registry().cmds.len()],
            future: false,
            all_commands: false,
            firstargs: BTreeMap::new(),
            all_keys: false,
            patterns: Vec::new(),
            all_channels: pubsub_default_all(),
            channels: Vec::new(),
        }
    }

    fn set_bit(&mut self, id: usize, on: bool) {
        if let Some(b) = self.allowed.get_mut(id) {
            *b = on;
        }
        if !on {
            self.all_commands = false;
        }
    }

    /// `ACLChangeSelectorPerm`: a command and, for a parent, all its subcommands.
    fn change(&mut self, id: usize, on: bool) {
        self.set_bit(id, on);
        self.firstargs.remove(&id);
        if let Some(info) = registry().cmds.get(id) {
            for &s in &info.subs {
                self.set_bit(s, on);
            }
        }
    }

    fn set_category(&mut self, bit: u32, on: bool) {
        for (id, info) in registry().cmds.iter().enumerate() {
            if info.cats & bit != 0 {
                self.change(id, on);
            }
        }
    }

    /// `ACLSetSelector`: one rule about commands, keys or channels.
    pub fn apply(&mut self, op: &str) -> Result<(), RuleError> {
        let b = op.as_bytes();
        let lower = op.to_ascii_lowercase();
        match lower.as_str() {
            "allkeys" | "~*" => {
                self.all_keys = true;
                self.patterns.clear();
            }
            "resetkeys" => {
                self.all_keys = false;
                self.patterns.clear();
            }
            "allchannels" | "&*" => {
                self.all_channels = true;
                self.channels.clear();
            }
            "resetchannels" => {
                self.all_channels = false;
                self.channels.clear();
            }
            "allcommands" | "+@all" => {
                self.allowed.iter_mut().for_each(|b| *b = true);
                self.future = true;
                self.all_commands = true;
                self.firstargs.clear();
            }
            "nocommands" | "-@all" => {
                self.allowed.iter_mut().for_each(|b| *b = false);
                self.future = false;
                self.all_commands = false;
                self.firstargs.clear();
            }
            _ => return self.apply_pattern_or_command(b),
        }
        Ok(())
    }

    fn apply_pattern_or_command(&mut self, b: &[u8]) -> Result<(), RuleError> {
        match b.first() {
            Some(b'~' | b'%') => self.add_key_pattern(b),
            Some(b'&') => {
                if self.all_channels {
                    return Err(RuleError::ChannelsAfterAll);
                }
                let pat = &b[1..];
                if has_spaces(pat) {
                    return Err(RuleError::Syntax);
                }
                if !self.channels.iter().any(|c| c == pat) {
                    self.channels.push(pat.to_vec());
                }
                Ok(())
            }
            Some(&sign @ (b'+' | b'-')) => {
                let on = sign == b'+';
                let rest = std::str::from_utf8(&b[1..]).map_err(|_| RuleError::Unknown)?;
                if let Some(cat) = rest.strip_prefix('@') {
                    let bit = category_bit(cat).ok_or(RuleError::Unknown)?;
                    self.set_category(bit, on);
                    return Ok(());
                }
                if on && rest.contains('|') {
                    return self.allow_with_pipe(rest);
                }
                let id = registry().lookup(rest).ok_or(RuleError::Unknown)?;
                self.change(id, on);
                Ok(())
            }
            _ => Err(RuleError::Syntax),
        }
    }

    fn add_key_pattern(&mut self, b: &[u8]) -> Result<(), RuleError> {
        if self.all_keys {
            return Err(RuleError::KeysAfterAll);
        }
        let (flags, pat) = if b[0] == b'%' {
            // `%RW` without `~` is accepted as Redis 7.0 does: an empty pattern.
            let mut flags = 0u8;
            let mut i = 1;
            let mut bad = false;
            while i < b.len() {
                match b[i].to_ascii_uppercase() {
                    b'R' if flags & PERM_READ == 0 => flags |= PERM_READ,
                    b'W' if flags & PERM_WRITE == 0 => flags |= PERM_WRITE,
                    b'~' => {
                        i += 1;
                        break;
                    }
                    _ => {
                        bad = true;
                        break;
                    }
                }
                i += 1;
            }
            if flags == 0 || bad {
                return Err(RuleError::Syntax);
            }
            (flags, &b[i..])
        } else {
            (PERM_ALL, &b[1..])
        };
        if has_spaces(pat) {
            return Err(RuleError::Syntax);
        }
        match self.patterns.iter_mut().find(|(p, _)| p == pat) {
            Some(p) => p.1 |= flags,
            None => self.patterns.push((pat.to_vec(), flags)),
        }
        self.all_keys = false;
        Ok(())
    }

    /// `+cmd|sub` (a subcommand) or `+cmd|firstarg` (a command without subcommands).
    fn allow_with_pipe(&mut self, rest: &str) -> Result<(), RuleError> {
        let (name, sub) = rest.rsplit_once('|').ok_or(RuleError::Syntax)?;
        let reg = registry();
        let id = reg.lookup(name).ok_or(RuleError::Unknown)?;
        let info = &reg.cmds[id];
        if info.is_sub {
            return Err(RuleError::FirstArgOfSub);
        }
        if sub.is_empty() {
            return Err(RuleError::Syntax);
        }
        if !info.cmd.subcommands.is_empty() {
            let sid = reg.lookup(rest).ok_or(RuleError::Unknown)?;
            self.change(sid, true);
            return Ok(());
        }
        crate::log_warning!(
            "Deprecation warning: Allowing a first arg of an otherwise blocked command is a misuse of ACL and may get disabled in the future (offender: +{})",
            rest
        );
        let list = self.firstargs.entry(id).or_default();
        if !list.iter().any(|s| s.eq_ignore_ascii_case(sub)) {
            list.push(sub.to_string());
        }
        Ok(())
    }

    fn unrestricted(&self) -> bool {
        self.all_commands && self.all_keys && self.all_channels
    }

    /// `ACLSelectorCheckCmd`: Ok, or the reason and the argument index at fault.
    fn check(&self, id: usize, info: &CmdInfo, args: &[Bytes]) -> Result<(), (Denied, usize)> {
        if !self.all_commands
            && info.cmd.flags & commands::flag::NO_AUTH == 0
            && !self.allowed.get(id).copied().unwrap_or(false)
        {
            let idx = if info.is_sub { 2 } else { 1 };
            let ok = self.firstargs.get(&id).is_some_and(|l| {
                args.get(idx)
                    .is_some_and(|a| l.iter().any(|s| s.as_bytes().eq_ignore_ascii_case(a)))
            });
            if !ok {
                return Err((Denied::Cmd, 0));
            }
        }
        if !self.all_keys && matches!(info.cmd.kind, Kind::Data(_)) {
            for (pos, flags) in specs::keys_and_flags(info.cmd, info.full, args) {
                let Some(key) = args.get(pos) else { continue };
                if !self.key_allowed(key, key_perm(flags)) {
                    return Err((Denied::Key, pos));
                }
            }
        }
        if !self.all_channels {
            for (pos, pattern) in channel_args(info.full, args) {
                let Some(ch) = args.get(pos) else { continue };
                if !self.channel_allowed(ch, pattern) {
                    return Err((Denied::Channel, pos));
                }
            }
        }
        Ok(())
    }

    fn key_allowed(&self, key: &[u8], need: u8) -> bool {
        self.all_keys
            || self
                .patterns
                .iter()
                .any(|(p, f)| f & need == need && crate::util::glob_match(p, key, false))
    }

    fn channel_allowed(&self, ch: &[u8], is_pattern: bool) -> bool {
        self.all_channels
            || self.channels.iter().any(|p| {
                if is_pattern {
                    p == ch
                } else {
                    crate::util::glob_match(p, ch, false)
                }
            })
    }

    /// Key patterns as `ACL GETUSER` shows them (space separated).
    pub fn keys_text(&self) -> String {
        if self.all_keys {
            return "~*".into();
        }
        let v: Vec<String> = self.patterns.iter().map(pattern_text).collect();
        v.join(" ")
    }

    pub fn channels_text(&self) -> String {
        if self.all_channels {
            return "&*".into();
        }
        let v: Vec<String> = self
            .channels
            .iter()
            .map(|c| format!("&{}", String::from_utf8_lossy(c)))
            .collect();
        v.join(" ")
    }

    /// `ACLDescribeSelector`: keys, channels, then command rules.
    fn describe(&self) -> String {
        let mut s = String::new();
        if self.all_keys {
            s.push_str("~* ");
        } else {
            for p in &self.patterns {
                s.push_str(&pattern_text(p));
                s.push(' ');
            }
        }
        if self.all_channels {
            s.push_str("&* ");
        } else {
            s.push_str("resetchannels ");
            for c in &self.channels {
                s.push('&');
                s.push_str(&String::from_utf8_lossy(c));
                s.push(' ');
            }
        }
        s.push_str(&self.command_rules());
        s
    }

    /// `ACLDescribeSelectorCommandRules`: `+@all`/`-@all`, then the categories that fit best,
    /// then single commands until the rules rebuild exactly this selector's bits.
    pub fn command_rules(&self) -> String {
        let reg = registry();
        let additive = !self.future;
        let mut rules = String::new();
        let mut fake = Selector::new(false);
        if additive {
            rules.push_str("-@all ");
            let _ = fake.apply("-@all");
        } else {
            rules.push_str("+@all ");
            let _ = fake.apply("+@all");
        }
        let mut temp = self.clone();
        let mut applied = [false; 32];
        loop {
            let mut best: Option<usize> = None;
            let (mut mindiff, mut maxsame) = (usize::MAX, 0usize);
            for (j, _) in specs::CATEGORIES.iter().enumerate() {
                if applied[j] {
                    continue;
                }
                let (mut on, mut off) = (0usize, 0usize);
                for (id, info) in reg.cmds.iter().enumerate() {
                    if info.cats & (1 << j) != 0 {
                        if temp.allowed[id] {
                            on += 1;
                        } else {
                            off += 1;
                        }
                    }
                }
                let (diff, same) = if additive { (off, on) } else { (on, off) };
                if same > diff && (diff < mindiff || (diff == mindiff && same > maxsame)) {
                    best = Some(j);
                    mindiff = diff;
                    maxsame = same;
                }
            }
            let Some(j) = best else { break };
            let name = specs::CATEGORIES[j];
            fake.set_category(1 << j, additive);
            temp.set_category(1 << j, !additive);
            rules.push_str(if additive { "+@" } else { "-@" });
            rules.push_str(name);
            rules.push(' ');
            applied[j] = true;
        }
        for (id, info) in reg.cmds.iter().enumerate() {
            if info.is_sub {
                continue;
            }
            self.single_rule(&mut fake, id, &mut rules);
            for &s in &info.subs {
                self.single_rule(&mut fake, s, &mut rules);
            }
        }
        rules.pop();
        rules
    }

    fn single_rule(&self, fake: &mut Selector, id: usize, rules: &mut String) {
        let info = &registry().cmds[id];
        let user = self.allowed[id];
        if user != fake.allowed[id] {
            rules.push(if user { '+' } else { '-' });
            rules.push_str(info.full);
            rules.push(' ');
            fake.change(id, user);
        }
        if !user {
            if let Some(list) = self.firstargs.get(&id) {
                for a in list {
                    rules.push('+');
                    rules.push_str(info.full);
                    rules.push('|');
                    rules.push_str(a);
                    rules.push(' ');
                }
            }
        }
    }
}

fn pattern_text((p, f): &(Vec<u8>, u8)) -> String {
    let prefix = match *f {
        PERM_READ => "%R~",
        PERM_WRITE => "%W~",
        _ => "~",
    };
    format!("{prefix}{}", String::from_utf8_lossy(p))
}

/// The read/write permission a key needs given its key-spec flags (`ACLSelectorCheckKey`).
fn key_perm(flags: &[&str]) -> u8 {
    let mut need = 0;
    for f in flags {
        match *f {
            "access" => need |= PERM_READ,
            "insert" | "delete" | "update" => need |= PERM_WRITE,
            _ => {}
        }
    }
    need
}

/// Channel arguments a command publishes or subscribes to, and whether each is a pattern.
fn channel_args(full: &str, args: &[Bytes]) -> Vec<(usize, bool)> {
    match full {
        "publish" | "spublish" => vec![(1, false)],
        "subscribe" | "ssubscribe" => (1..args.len()).map(|i| (i, false)).collect(),
        "psubscribe" => (1..args.len()).map(|i| (i, true)).collect(),
        _ => Vec::new(),
    }
}

#[derive(Clone, PartialEq, Eq)]
pub struct User {
    pub name: String,
    pub enabled: bool,
    pub nopass: bool,
    /// `sanitize-payload` (Some(true)) / `skip-sanitize-payload` (Some(false)).
    pub sanitize: Option<bool>,
    /// SHA-256 hex of each password.
    pub passwords: Vec<String>,
    /// The root selector first.
    pub selectors: Vec<Selector>,
}

/// Splits `(`...`)` selector arguments that `sdssplitargs` broke up back into one
/// (`ACLMergeSelectorArguments`). Err: index of the unmatched opening argument.
pub fn merge_selector_args(args: &[String]) -> Result<Vec<String>, usize> {
    let mut out = Vec::new();
    let mut open: Option<(usize, String)> = None;
    for (i, a) in args.iter().enumerate() {
        match open.as_mut() {
            Some((_, acc)) => {
                acc.push(' ');
                acc.push_str(a);
                if a.ends_with(')') {
                    if let Some((_, acc)) = open.take() {
                        out.push(acc);
                    }
                }
            }
            None if a.starts_with('(') && !a.ends_with(')') => open = Some((i, a.clone())),
            None => out.push(a.clone()),
        }
    }
    match open {
        Some((i, _)) => Err(i),
        None => Ok(out),
    }
}

impl User {
    /// `ACLCreateUser`: off, no passwords, no commands, no keys, channels per
    /// `acl-pubsub-default`.
    pub fn new(name: &str) -> User {
        User {
            name: name.to_string(),
            enabled: false,
            nopass: false,
            sanitize: None,
            passwords: Vec::new(),
            selectors: vec![Selector::new(true)],
        }
    }

    fn default_user() -> User {
        let mut u = User::new("default");
        for r in ["+@all", "~*", "&*", "on", "nopass"] {
            let _ = u.apply(r);
        }
        u
    }

    fn root(&mut self) -> &mut Selector {
        if self.selectors.is_empty() {
            self.selectors.push(Selector::new(true));
        }
        &mut self.selectors[0]
    }

    /// `ACLSetUser`: one rule.
    pub fn apply(&mut self, op: &str) -> Result<(), RuleError> {
        if op.is_empty() {
            return Ok(());
        }
        let lower = op.to_ascii_lowercase();
        match lower.as_str() {
            "on" => self.enabled = true,
            "off" => self.enabled = false,
            "skip-sanitize-payload" => self.sanitize = Some(false),
            "sanitize-payload" => self.sanitize = Some(true),
            "nopass" => {
                self.nopass = true;
                self.passwords.clear();
            }
            "resetpass" => {
                self.nopass = false;
                self.passwords.clear();
            }
            "clearselectors" => self.selectors.truncate(1),
            "reset" => {
                for r in ["resetpass", "resetkeys", "resetchannels"] {
                    self.apply(r)?;
                }
                if pubsub_default_all() {
                    self.apply("allchannels")?;
                }
                self.enabled = false;
                self.sanitize = Some(true);
                self.selectors.truncate(1);
                self.apply("-@all")?;
            }
            _ => return self.apply_other(op),
        }
        Ok(())
    }

    fn apply_other(&mut self, op: &str) -> Result<(), RuleError> {
        let first = op.as_bytes()[0];
        match first {
            b'>' | b'#' => {
                let hash = if first == b'>' {
                    sha256::hex(&op.as_bytes()[1..])
                } else {
                    check_hash(&op[1..])?
                };
                if !self.passwords.contains(&hash) {
                    self.passwords.push(hash);
                }
                self.nopass = false;
                Ok(())
            }
            b'<' | b'!' => {
                let hash = if first == b'<' {
                    sha256::hex(&op.as_bytes()[1..])
                } else {
                    check_hash(&op[1..])?
                };
                let before = self.passwords.len();
                self.passwords.retain(|p| *p != hash);
                if self.passwords.len() == before {
                    return Err(RuleError::NoSuchPassword);
                }
                Ok(())
            }
            b'(' if op.ends_with(')') && op.len() >= 2 => {
                let inner = &op[1..op.len() - 1];
                let mut s = Selector::new(false);
                for part in
                    crate::config::values::split_args(inner.as_bytes()).ok_or(RuleError::Syntax)?
                {
                    s.apply(&String::from_utf8_lossy(&part))?;
                }
                self.selectors.push(s);
                Ok(())
            }
            _ => self.root().apply(op),
        }
    }

    /// Applies rules atomically (`ACLStringSetUser`): all or none.
    pub fn apply_all(&mut self, rules: &[String]) -> Result<(), String> {
        let merged = merge_selector_args(rules).map_err(|i| {
            format!(
                "Unmatched parenthesis in acl selector starting at '{}'.",
                rules[i]
            )
        })?;
        let mut tmp = self.clone();
        for r in &merged {
            tmp.apply(r)
                .map_err(|e| format!("Error in ACL SETUSER modifier '{}': {}", r, e.text()))?;
        }
        *self = tmp;
        Ok(())
    }

    /// No check can fail for this user: the connection skips the ACL check.
    pub fn unrestricted(&self) -> bool {
        self.selectors.first().is_some_and(|s| s.unrestricted())
    }

    pub fn flags(&self) -> Vec<&'static str> {
        let mut v = vec![if self.enabled { "on" } else { "off" }];
        if self.nopass {
            v.push("nopass");
        }
        match self.sanitize {
            Some(false) => v.push("skip-sanitize-payload"),
            Some(true) => v.push("sanitize-payload"),
            None => {}
        }
        v
    }

    /// `ACLDescribeUser`: the rules that rebuild this user (ACL LIST, ACL SAVE).
    pub fn describe(&self) -> String {
        let mut s = String::new();
        for f in self.flags() {
            s.push_str(f);
            s.push(' ');
        }
        for p in &self.passwords {
            s.push('#');
            s.push_str(p);
            s.push(' ');
        }
        for sel in &self.selectors {
            if sel.root {
                s.push_str(&sel.describe());
            } else {
                s.push_str(" (");
                s.push_str(&sel.describe());
                s.push(')');
            }
        }
        s
    }

    /// `ACLUserCheckChannelPerm`: some selector allows the channel (a pattern subscription
    /// needs the same pattern, literally).
    pub fn channel_allowed(&self, channel: &[u8], pattern: bool) -> bool {
        self.selectors
            .iter()
            .any(|s| s.channel_allowed(channel, pattern))
    }

    pub fn check_password(&self, pass: &[u8]) -> bool {
        if !self.enabled {
            return false;
        }
        if self.nopass {
            return true;
        }
        let h = sha256::hex(pass);
        self.passwords.contains(&h)
    }

    /// `ACLCheckAllUserCommandPerm`.
    pub fn check(&self, cmd: &'static Cmd, args: &[Bytes]) -> Result<(), (Denied, usize)> {
        let reg = registry();
        let Some(id) = reg.id(cmd) else {
            return Ok(());
        };
        let info = &reg.cmds[id];
        let mut worst = (Denied::Cmd, 0usize);
        for s in &self.selectors {
            match s.check(id, info, args) {
                Ok(()) => return Ok(()),
                Err((r, i)) => {
                    if r > worst.0 || (r == worst.0 && i > worst.1) {
                        worst = (r, i);
                    }
                }
            }
        }
        Err(worst)
    }
}

fn check_hash(h: &str) -> Result<String, RuleError> {
    let ok = h.len() == 64
        && h.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    if ok {
        Ok(h.to_string())
    } else {
        Err(RuleError::BadHash)
    }
}

// ---------------------------------------------------------------------------------------------
// The shared table.

pub struct LogEntry {
    pub count: u64,
    pub reason: Denied,
    pub context: Context,
    pub object: Vec<u8>,
    pub username: Vec<u8>,
    pub created_ms: u64,
    pub client_info: String,
}

pub struct Table {
    pub users: BTreeMap<String, Arc<User>>,
    pub log: VecDeque<LogEntry>,
    /// The `requirepass` last applied to the default user.
    synced_requirepass: Option<Option<Vec<u8>>>,
}

static TABLE: OnceLock<RwLock<Table>> = OnceLock::new();
/// Bumped on every change of a user; shards compare it once per loop turn.
static EPOCH: AtomicU64 = AtomicU64::new(1);
/// Whether connections start unauthenticated (the default user has a password or is off).
static AUTH_REQUIRED: AtomicBool = AtomicBool::new(false);
static PUBSUB_DEFAULT_ALL: AtomicBool = AtomicBool::new(false);
pub static LOG_MAX_LEN: AtomicU64 = AtomicU64::new(128);
/// Users of connections not authenticated as `default`, by client id.
static AUTHED: OnceLock<Mutex<HashMap<u64, String>>> = OnceLock::new();

pub fn table() -> &'static RwLock<Table> {
    TABLE.get_or_init(|| {
        let mut users = BTreeMap::new();
        users.insert("default".to_string(), Arc::new(User::default_user()));
        RwLock::new(Table {
            users,
            log: VecDeque::new(),
            synced_requirepass: None,
        })
    })
}

fn authed() -> &'static Mutex<HashMap<u64, String>> {
    AUTHED.get_or_init(|| Mutex::new(HashMap::new()))
}

fn pubsub_default_all() -> bool {
    PUBSUB_DEFAULT_ALL.load(Ordering::Relaxed)
}

pub fn set_pubsub_default_all(all: bool) {
    PUBSUB_DEFAULT_ALL.store(all, Ordering::Relaxed);
}

pub fn epoch() -> u64 {
    EPOCH.load(Ordering::Acquire)
}

/// Call after changing `t.users`.
pub fn changed(t: &Table) {
    let auth = t
        .users
        .get("default")
        .is_none_or(|u| !u.nopass || !u.enabled);
    AUTH_REQUIRED.store(auth, Ordering::Relaxed);
    EPOCH.fetch_add(1, Ordering::AcqRel);
}

pub fn auth_required() -> bool {
    AUTH_REQUIRED.load(Ordering::Relaxed)
}

/// `ACLUpdateDefaultUserPassword`, when `requirepass` changed since the last call.
pub fn sync_requirepass(requirepass: &Option<Vec<u8>>) {
    {
        let t = table().read();
        if t.synced_requirepass.as_ref() == Some(requirepass) {
            return;
        }
    }
    let mut t = table().write();
    if t.synced_requirepass.as_ref() == Some(requirepass) {
        return;
    }
    t.synced_requirepass = Some(requirepass.clone());
    let mut u = t
        .users
        .get("default")
        .map(|u| (**u).clone())
        .unwrap_or_else(User::default_user);
    let _ = u.apply("resetpass");
    match requirepass {
        Some(p) if !p.is_empty() => {
            u.passwords.push(sha256::hex(p));
        }
        _ => u.nopass = true,
    }
    t.users.insert("default".into(), Arc::new(u));
    changed(&t);
}

/// The permissions a connection of `user` carries: None when it may run everything.
pub fn perms_of(user: &Arc<User>) -> Option<Arc<User>> {
    if user.unrestricted() {
        None
    } else {
        Some(user.clone())
    }
}

/// A new connection's permissions (it starts as the default user).
pub fn default_perms() -> Option<Arc<User>> {
    table().read().users.get("default").and_then(perms_of)
}

/// The user a client is authenticated as.
pub fn client_user(id: u64) -> String {
    authed()
        .lock()
        .get(&id)
        .cloned()
        .unwrap_or_else(|| "default".to_string())
}

pub fn set_client_user(id: u64, name: &str) {
    let mut m = authed().lock();
    if name == "default" {
        m.remove(&id);
    } else {
        m.insert(id, name.to_string());
    }
}

pub fn forget_client(id: u64) {
    if let Some(m) = AUTHED.get() {
        m.lock().remove(&id);
    }
}

/// Client ids authenticated as `name` (not `default`).
pub fn clients_of(name: &str) -> Vec<u64> {
    authed()
        .lock()
        .iter()
        .filter(|(_, u)| *u == name)
        .map(|(id, _)| *id)
        .collect()
}

/// A shard's per-turn refresh after the epoch moved: every connection gets its user's
/// current permissions.
pub fn refresh_clients<'a>(clients: impl Iterator<Item = &'a mut crate::server::Client>) {
    let t = table().read();
    let m = authed().lock();
    for c in clients {
        let name = m.get(&c.id()).map(|s| s.as_str()).unwrap_or("default");
        c.acl = match t.users.get(name) {
            Some(u) => perms_of(u),
            // A deleted user's connections are being closed; until then they may run nothing.
            None => Some(Arc::new(User::new(name))),
        };
    }
}

/// Adds an ACL LOG entry (`addACLLogEntry`), merging it with a recent identical one.
pub fn log(reason: Denied, context: Context, object: &[u8], username: &[u8], client_info: String) {
    let now = crate::util::now_ms();
    let mut t = table().write();
    let found = t.log.iter().take(10).position(|e| {
        e.reason == reason && e.context == context && e.object == object && e.username == username
    });
    if let Some(i) = found {
        if let Some(mut e) = t.log.remove(i) {
            e.count += 1;
            e.created_ms = now;
            e.client_info = client_info;
            t.log.push_front(e);
        }
        return;
    }
    t.log.push_front(LogEntry {
        count: 1,
        reason,
        context,
        object: object.to_vec(),
        username: username.to_vec(),
        created_ms: now,
        client_info,
    });
    let max = LOG_MAX_LEN.load(Ordering::Relaxed) as usize;
    t.log.truncate(max);
}

// ---------------------------------------------------------------------------------------------
// The checks.

/// The NOPERM error for a denied top-level command (`processCommand`).
pub fn noperm_text(reason: Denied, full: &str) -> String {
    match reason {
        Denied::Cmd => format!("NOPERM this user has no permissions to run the '{full}' command"),
        Denied::Key => {
            "NOPERM this user has no permissions to access one of the keys used as arguments".into()
        }
        Denied::Channel => {
            "NOPERM this user has no permissions to access one of the channels used as arguments"
                .into()
        }
        Denied::Auth => "NOPERM no permission".into(),
    }
}

/// The denial's object for ACL LOG: the command's full name, or the key or channel.
fn object_of(reason: Denied, full: &str, args: &[Bytes], pos: usize) -> Vec<u8> {
    match reason {
        Denied::Cmd => full.as_bytes().to_vec(),
        _ => args.get(pos).map(|a| a.to_vec()).unwrap_or_default(),
    }
}

/// Checks a restricted client's command; logs a denial. The caller has already found that
/// the client is restricted (`acl` is Some).
pub fn check_logged(
    c: &crate::server::Client,
    user: &User,
    cmd: &'static Cmd,
    full: &str,
    args: &[Bytes],
    context: Context,
) -> Result<(), Denied> {
    user.check(cmd, args).map_err(|(reason, pos)| {
        // The client line names the denied command (a script's caller keeps its own).
        let current = (context != Context::Lua).then_some(full);
        let info =
            crate::commands::connection::client_line(&c.shared, crate::util::now_ms(), current);
        log(
            reason,
            context,
            &object_of(reason, full, args, pos),
            user.name.as_bytes(),
            info,
        );
        reason
    })
}

/// The admission step of every command (`server::dispatch` result in, same out or NOPERM).
#[inline]
pub fn admit(
    c: &crate::server::Client,
    p: crate::server::dispatch::Prepared,
    args: &[Bytes],
) -> Result<crate::server::dispatch::Prepared, crate::server::dispatch::Rejected> {
    let Some(user) = &c.acl else {
        return Ok(p);
    };
    let context = if c.multi.is_some() {
        Context::Multi
    } else {
        Context::Toplevel
    };
    match check_logged(c, user, p.cmd, p.full_name, args, context) {
        Ok(()) => Ok(p),
        Err(reason) => Err(crate::server::dispatch::Rejected {
            error: noperm_text(reason, p.full_name).into_bytes(),
            full_name: Some(p.full_name),
        }),
    }
}

/// EXEC's re-check of a queued command (`execCommand`): the error, if the rules changed.
pub fn exec_check(
    c: &crate::server::Client,
    cmd: &'static Cmd,
    full: &str,
    args: &[Bytes],
) -> Option<String> {
    let user = c.acl.as_ref()?;
    let reason = check_logged(c, user, cmd, full, args, Context::Multi).err()?;
    let why = match reason {
        Denied::Cmd => "no permission to execute the command or subcommand",
        Denied::Key => "no permission to touch the specified keys",
        Denied::Channel => "no permission to access one of the channels used as arguments",
        Denied::Auth => "no permission",
    };
    Some(format!("NOPERM ACLs rules changed between the moment the transaction was accumulated and the EXEC call. This command is no longer allowed for the following reason: {why}"))
}

/// `redis.acl_check_cmd`: whether the client's user may run `argv` (no log entry).
pub fn allowed(c: &crate::server::Client, argv: &[Bytes]) -> bool {
    let Some(user) = c.acl.as_ref() else {
        return true;
    };
    let Some(mut cmd) = argv.first().and_then(|n| commands::lookup(n)) else {
        return false;
    };
    if !cmd.subcommands.is_empty() {
        if let Some(s) = argv.get(1).and_then(|a| cmd.find_sub(a)) {
            cmd = s;
        }
    }
    user.check(cmd, argv).is_ok()
}

/// A script's `redis.call` check (`scriptVerifyACL`): the error text, if denied.
pub fn script_check(
    c: &crate::server::Client,
    cmd: &'static Cmd,
    full: &str,
    args: &[Bytes],
) -> Result<(), &'static str> {
    let Some(user) = c.acl.as_ref() else {
        return Ok(());
    };
    match check_logged(c, user, cmd, full, args, Context::Lua) {
        Ok(()) => Ok(()),
        Err(Denied::Cmd) => Err("The user executing the script can't run this command or subcommand"),
        Err(Denied::Key) => Err("The user executing the script can't access at least one of the keys mentioned in the command arguments"),
        Err(Denied::Channel) => Err("The user executing the script can't publish to the channel mentioned in the command"),
        Err(Denied::Auth) => Err("The user executing the script lacking the permissions for the command"),
    }
}

/// Start-up: the `user` directives or the ACL file, then `requirepass` and the ACL settings.
pub fn init(cfg: &crate::config::Config) -> Result<(), String> {
    apply_config(cfg);
    if !cfg.acl_users.is_empty() && !cfg.aclfile.is_empty() {
        return Err("Configuring Redis with users defined in redis.conf and at the same setting an ACL file path is invalid. This setup is very likely to lead to configuration errors and security holes, please define either an ACL file or declare users directly in your redis.conf, but not both.".into());
    }
    if !cfg.acl_users.is_empty() {
        let text: String = cfg
            .acl_users
            .iter()
            .map(|d| {
                let words: Vec<String> = d.args.iter().map(|a| quote_word(a)).collect();
                words.join(" ") + "\n"
            })
            .collect();
        let mut users = file::parse_users(&text, "redis.conf")
            .map_err(|e| format!("Error in user declaration '{}'", e.trim_end()))?;
        let mut t = table().write();
        if let Some(d) = users.remove("default") {
            t.users.insert("default".into(), d);
            t.synced_requirepass = Some(None);
        }
        t.users.extend(users);
        changed(&t);
    }
    if !cfg.aclfile.is_empty() {
        file::load(&cfg.aclfile)
            .map_err(|e| format!("Aborting Redis startup because of ACL errors: {e}"))?;
    }
    // Redis applies `requirepass` after the users: it sets the default user's password.
    if cfg.requirepass.is_some() {
        sync_requirepass(&cfg.requirepass);
    } else {
        let mut t = table().write();
        t.synced_requirepass = Some(None);
        changed(&t);
    }
    Ok(())
}

fn quote_word(a: &str) -> String {
    if a.bytes()
        .any(|b| b.is_ascii_whitespace() || b == b'"' || b == b'\'')
    {
        format!("{a:?}")
    } else {
        a.to_string()
    }
}

/// Settings that may change at run time (CONFIG SET).
pub fn apply_config(cfg: &crate::config::Config) {
    LOG_MAX_LEN.store(cfg.acllog_max_len, Ordering::Relaxed);
    set_pubsub_default_all(cfg.acl_pubsub_default == 1);
    if table().read().synced_requirepass.is_some() {
        sync_requirepass(&cfg.requirepass);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(rules: &str) -> User {
        let mut u = User::new("u");
        let rules: Vec<String> = rules.split(' ').map(String::from).collect();
        u.apply_all(&rules).expect("rules");
        u
    }

    fn argv(s: &str) -> Vec<Bytes> {
        s.split(' ')
            .map(|a| Bytes::copy_from_slice(a.as_bytes()))
            .collect()
    }

    fn check(u: &User, cmd: &str) -> Result<(), (Denied, usize)> {
        let a = argv(cmd);
        let mut c = commands::lookup(&a[0]).expect("command");
        if !c.subcommands.is_empty() {
            c = c.find_sub(&a[1]).expect("sub");
        }
        u.check(c, &a)
    }

    #[test]
    fn describe_matches_redis() {
        assert_eq!(User::default_user().describe(), "on nopass ~* &* +@all");
        assert_eq!(User::new("a").describe(), "off resetchannels -@all");
        let u = user("on >p1 ~k* %R~r* &ch +get (~x +set)");
        assert_eq!(
            u.describe(),
            "on #f64551fcd6f07823cb87971cfb91446425da18286b3ab1ef935e0cbd7a69f68a ~k* %R~r* \
             resetchannels &ch -@all +get (~x resetchannels -@all +set)"
        );
        assert_eq!(
            user("+@all -client|kill").selectors[0].command_rules(),
            "+@all -client|kill"
        );
        assert_eq!(
            user("-@all +select|0").selectors[0].command_rules(),
            "-@all +select|0"
        );
    }

    #[test]
    fn checks() {
        let u = user("on ~k* %R~r* &ch +get +set +publish +subscribe +config|get");
        assert_eq!(check(&u, "get k1"), Ok(()));
        assert_eq!(check(&u, "get z"), Err((Denied::Key, 1)));
        assert_eq!(check(&u, "get r1"), Ok(()));
        assert_eq!(check(&u, "set r1 v"), Err((Denied::Key, 1)));
        assert_eq!(check(&u, "del k1"), Err((Denied::Cmd, 0)));
        assert_eq!(check(&u, "publish ch m"), Ok(()));
        assert_eq!(check(&u, "publish other m"), Err((Denied::Channel, 1)));
        assert_eq!(check(&u, "config get x"), Ok(()));
        assert_eq!(check(&u, "config set x y"), Err((Denied::Cmd, 0)));
        let s = user("on -@all (~a* +get) (~b* +set)");
        assert_eq!(check(&s, "get a1"), Ok(()));
        assert_eq!(check(&s, "get b1"), Err((Denied::Key, 1)));
        assert_eq!(check(&s, "set b1 v"), Ok(()));
        assert!(User::default_user().unrestricted());
        assert!(!u.unrestricted());
    }

    #[test]
    fn rule_errors() {
        let mut u = User::new("x");
        assert_eq!(u.apply("bad"), Err(RuleError::Syntax));
        assert_eq!(u.apply("+nosuch"), Err(RuleError::Unknown));
        assert_eq!(u.apply("+@nosuch"), Err(RuleError::Unknown));
        assert_eq!(u.apply("#abc"), Err(RuleError::BadHash));
        assert_eq!(u.apply("<nope"), Err(RuleError::NoSuchPassword));
        assert_eq!(u.apply("+config|get|x"), Err(RuleError::FirstArgOfSub));
        u.apply("~*").expect("allkeys");
        assert_eq!(u.apply("~a"), Err(RuleError::KeysAfterAll));
        let args = vec!["(~a".to_string(), "+get".to_string()];
        assert!(u.apply_all(&args).is_err());
    }
}
