//! Client-side caching (`CLIENT TRACKING`): which clients may hold which keys, and the
//! invalidation messages they get when those keys change.
//!
//! ## What lives where
//! - A key's tracking entry (the ids of the clients that read it) lives with the key, in its
//!   shard's `Table` (`ShardData::tracking`), and is touched only under that shard's lock, at
//!   the same points where WATCH is touched: `Keyspace::signal_modified`, lazy and active
//!   expiry, eviction, flushes. As in Redis the table is keyed by key name only (not by db).
//! - A client's tracking state (`Handle`, inside `ClientShared`) is written by its home shard
//!   and read by whatever thread invalidates a key: flags in one atomic word, the redirect id.
//! - `DIRECTORY` maps the ids of tracking clients and of redirect targets to their
//!   `ClientShared`, so an invalidation found on any shard can be addressed (Redis's
//!   `lookupClientByID`). `PREFIXES` is the BCAST prefix table, global as in Redis.
//!
//! ## Delivery and order
//! An invalidation is an `Event` pushed into the receiving client's inbox (in its `Handle`),
//! under the lock of the key's shard. The receiving client's home thread turns its inbox into
//! bytes (a RESP3 push, or a `__redis__:invalidate` pub/sub message for a RESP2 redirect
//! target) at the points where it is about to append a reply produced under the shard locks
//! of the command: before running a command inline, between eviction and execution (Redis's
//! `trackingHandlePendingKeyInvalidations` in `processCommand`), and on the remote shard that
//! runs a hopped command, which puts the events into the reply bytes it sends back. Events
//! produced before a read of the key's new value therefore always precede its reply, and
//! events produced after a reply always follow it. A client with commands in flight to
//! another shard is not drained at home until their replies are back (the in-flight shard
//! drains it, or the replies' arrival does). An idle client is drained when a `TrackingWake`
//! reaches its home shard.
//!
//! As in Redis, invalidations for the client whose command is running (the "current client",
//! a thread-local set by the engine) are held until that command's reply is written
//! (`DEFERRED`), so they never interleave with a reply or a transaction's replies, and a
//! NOLOOP client gets none for its own writes.
//!
//! ## Cost when nobody tracks
//! Every hook starts with `active()`: one relaxed load of a global counter of tracking
//! clients. Tables, inboxes and thread-locals stay untouched otherwise.

pub mod command;
pub mod table;

pub use table::Table;

use crate::server::{Client, ClientShared};
use bytes::Bytes;
use parking_lot::{Mutex, RwLock};
use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, LazyLock};

/// Client tracking flags, one atomic word per client (`Handle::flags`).
pub mod flags {
    pub const ON: u32 = 1 << 0;
    pub const BCAST: u32 = 1 << 1;
    pub const OPTIN: u32 = 1 << 2;
    pub const OPTOUT: u32 = 1 << 3;
    /// CLIENT CACHING YES (optin) / NO (optout) given for the next command.
    pub const CACHING: u32 = 1 << 4;
    pub const NOLOOP: u32 = 1 << 5;
    pub const BROKEN_REDIR: u32 = 1 << 6;
}

/// Clients with tracking on (INFO `tracking_clients`): the global "is anybody tracking" test.
static CLIENTS: AtomicUsize = AtomicUsize::new(0);
/// Keys and (key, client) items across every shard's table (INFO stats).
static TOTAL_KEYS: AtomicUsize = AtomicUsize::new(0);
static TOTAL_ITEMS: AtomicUsize = AtomicUsize::new(0);
/// Prefixes in `PREFIXES`, readable without its lock.
static PREFIX_COUNT: AtomicUsize = AtomicUsize::new(0);
/// Shard tables holding keys modified since their last broadcast.
static BCAST_PENDING: AtomicUsize = AtomicUsize::new(0);
/// Bytes of invalidations waiting in inboxes: left out of eviction's budget, as Redis leaves
/// the invalidation messages an eviction produces out of the memory it counts as freed
/// (otherwise evicting a key that many clients cache makes room for nothing, and eviction
/// feeds itself until the keyspace is empty).
static INBOX_BYTES: AtomicUsize = AtomicUsize::new(0);

/// Bytes of invalidations moved into clients' reply buffers and not yet sent: still left out
/// of eviction's budget. Redis writes them to the sockets before it runs another command, so
/// the next command's eviction check never sees them; here they may sit a loop turn of the
/// client's shard, and the next command (on any shard) would count them.
static UNSENT_BYTES: AtomicUsize = AtomicUsize::new(0);

/// Bytes of invalidations queued or in reply buffers, not yet handed to their sockets.
pub fn pending_bytes() -> usize {
    INBOX_BYTES.load(Ordering::Relaxed) + UNSENT_BYTES.load(Ordering::Relaxed)
}

/// The client's invalidations were sent (its reply buffer drained), or it is gone.
pub fn unsent_released(c: &mut Client) {
    if c.tracking_unsent > 0 {
        UNSENT_BYTES.fetch_sub(c.tracking_unsent, Ordering::Relaxed);
        c.tracking_unsent = 0;
    }
}

/// Tracking clients and redirect targets by id.
static DIRECTORY: LazyLock<RwLock<HashMap<u64, Arc<ClientShared>>>> =
    LazyLock::new(|| RwLock::new(HashMap::new()));

/// BCAST prefix → ids of the clients registered for it.
static PREFIXES: RwLock<BTreeMap<Vec<u8>, Vec<u64>>> = RwLock::new(BTreeMap::new());

/// The engine's one cheap test: does any client track?
#[inline]
pub fn active() -> bool {
    CLIENTS.load(Ordering::Relaxed) > 0
}

pub fn tracking_clients() -> usize {
    CLIENTS.load(Ordering::Relaxed)
}

pub fn total_keys() -> usize {
    TOTAL_KEYS.load(Ordering::Relaxed)
}

pub fn total_items() -> usize {
    TOTAL_ITEMS.load(Ordering::Relaxed)
}

pub fn total_prefixes() -> usize {
    PREFIX_COUNT.load(Ordering::Relaxed)
}

/// An invalidation on its way to a client, turned into bytes by its home thread.
enum Event {
    /// `payload` is the RESP of the "keys" part: an array of keys, or a null (flush).
    Invalidate { payload: Bytes, redirected: bool },
    /// The redirect target is gone (RESP3 clients are told).
    RedirBroken(u64),
}

impl Event {
    /// What the event holds, for `INBOX_BYTES`.
    fn bytes(&self) -> usize {
        std::mem::size_of::<Event>()
            + match self {
                Event::Invalidate { payload, .. } => payload.len(),
                Event::RedirBroken(_) => 0,
            }
    }
}

/// A client's tracking state, reachable from any thread through its `ClientShared`.
#[derive(Default)]
pub struct Handle {
    flags: AtomicU32,
    redirect: AtomicU64,
    /// BCAST prefixes of this client, sorted (written by its home thread only).
    prefixes: Mutex<Vec<Vec<u8>>>,
    inbox: Mutex<Vec<Event>>,
    pending: AtomicBool,
    /// In `DIRECTORY`.
    listed: AtomicBool,
}

impl Handle {
    #[inline]
    pub fn flags(&self) -> u32 {
        self.flags.load(Ordering::Acquire)
    }

    pub fn redirect(&self) -> u64 {
        self.redirect.load(Ordering::Acquire)
    }

    /// Events wait in the inbox.
    #[inline]
    pub fn has_pending(&self) -> bool {
        self.pending.load(Ordering::Acquire)
    }

    pub fn prefixes(&self) -> Vec<Vec<u8>> {
        self.prefixes.lock().clone()
    }

    /// Whether a read-only command run now should remember its keys for this client
    /// (tracking on, not BCAST, and the OPTIN/OPTOUT choice of CLIENT CACHING).
    pub fn remembers_reads(&self) -> bool {
        let f = self.flags();
        if f & flags::ON == 0 || f & flags::BCAST != 0 {
            return false;
        }
        let caching = f & flags::CACHING != 0;
        !((f & flags::OPTIN != 0 && !caching) || (f & flags::OPTOUT != 0 && caching))
    }

    fn push(&self, ev: Event) {
        INBOX_BYTES.fetch_add(ev.bytes(), Ordering::Relaxed);
        self.inbox.lock().push(ev);
        self.pending.store(true, Ordering::Release);
    }
}

thread_local! {
    /// The client whose command this thread runs (0: none), and whether it is inside the
    /// command's execution proper (Redis's `server.fixed_time_expire`), where its own
    /// invalidations wait for the reply.
    static CURRENT: Cell<(u64, bool)> = const { Cell::new((0, false)) };
    /// Invalidations for the current client, sent after its reply: a key, or None (flush).
    static DEFERRED: RefCell<Vec<Option<Bytes>>> = const { RefCell::new(Vec::new()) };
    /// Clients given events by this thread whose home shard must drain them:
    /// (home shard, token, client id).
    static WAKES: RefCell<Vec<(usize, u32, u64)>> = const { RefCell::new(Vec::new()) };
    /// A script run by this thread called a read-only command (its keys are tracked).
    static SCRIPT_READ: Cell<bool> = const { Cell::new(false) };
    /// Shards (bit i % 64) whose broadcast keys this thread added to.
    static BCAST_TOUCHED: Cell<u64> = const { Cell::new(0) };
}

/// Sets the current client (0: none) and whether its command is executing.
pub fn set_current(id: u64, in_call: bool) {
    CURRENT.with(|c| c.set((id, in_call)));
}

pub fn set_in_call(in_call: bool) {
    CURRENT.with(|c| {
        let (id, _) = c.get();
        c.set((id, in_call));
    });
}

pub fn current() -> (u64, bool) {
    CURRENT.with(|c| c.get())
}

/// A read-only command ran inside a script.
pub fn note_script_read() {
    if active() {
        SCRIPT_READ.with(|c| c.set(true));
    }
}

pub fn take_script_read() -> bool {
    SCRIPT_READ.with(|c| c.replace(false))
}

/// Clients this thread gave events to since the last call.
pub fn take_wakes() -> Vec<(usize, u32, u64)> {
    WAKES.with(|w| std::mem::take(&mut *w.borrow_mut()))
}

pub fn has_wakes() -> bool {
    WAKES.with(|w| !w.borrow().is_empty())
}

fn wake(c: &ClientShared) {
    WAKES.with(|w| w.borrow_mut().push((c.shard, c.token, c.id)));
}

/// The RESP of a one-key invalidation array.
fn key_payload(key: &[u8]) -> Bytes {
    let mut v = Vec::with_capacity(key.len() + 16);
    v.extend_from_slice(b"*1\r\n$");
    v.extend_from_slice(key.len().to_string().as_bytes());
    v.extend_from_slice(b"\r\n");
    v.extend_from_slice(key);
    v.extend_from_slice(b"\r\n");
    Bytes::from(v)
}

/// The RESP null of a flush, in the tracking client's protocol (as Redis's
/// `shared.null[c->resp]`, even when it is delivered to a redirect target).
fn null_payload(proto: usize) -> Bytes {
    Bytes::from_static(if proto >= 3 { b"_\r\n" } else { b"$-1\r\n" })
}

/// Sends `payload` for tracking client `c`: to its redirect target when it has one (or a
/// broken-redirect notice to itself when the target is gone), else to itself.
fn send(dir: &HashMap<u64, Arc<ClientShared>>, c: &ClientShared, payload: Bytes) {
    let redirect = c.tracking.redirect();
    if redirect == 0 {
        c.tracking.push(Event::Invalidate {
            payload,
            redirected: false,
        });
        wake(c);
        return;
    }
    match dir
        .get(&redirect)
        .filter(|r| !r.kill.load(Ordering::Relaxed))
    {
        Some(r) => {
            r.tracking.push(Event::Invalidate {
                payload,
                redirected: true,
            });
            wake(r);
        }
        None => {
            c.tracking
                .flags
                .fetch_or(flags::BROKEN_REDIR, Ordering::AcqRel);
            c.tracking.push(Event::RedirBroken(redirect));
            wake(c);
        }
    }
}

/// Delivers the invalidations held for the current client during its command. Called by the
/// engine once the command's reply is written.
pub fn flush_deferred() {
    let held = DEFERRED.with(|d| std::mem::take(&mut *d.borrow_mut()));
    if held.is_empty() {
        return;
    }
    let (id, _) = current();
    let dir = DIRECTORY.read();
    let Some(c) = dir.get(&id) else { return };
    for k in held {
        let payload = match k {
            Some(k) => key_payload(&k),
            None => null_payload(c.proto.load(Ordering::Relaxed)),
        };
        send(&dir, c, payload);
    }
}

/// Writes the events waiting for a client into `out`, formatted for its protocol: RESP3
/// gets `>2 invalidate <keys>` pushes, a RESP2 redirect target in pub/sub mode gets messages
/// on `__redis__:invalidate`, anything else is dropped (RESP2 has no pushes). False when there
/// was nothing.
pub fn drain_into(shared: &ClientShared, proto: u8, subscribed: bool, out: &mut Vec<u8>) -> bool {
    if !shared.tracking.has_pending() {
        return false;
    }
    let events = {
        let mut g = shared.tracking.inbox.lock();
        shared.tracking.pending.store(false, Ordering::Release);
        std::mem::take(&mut *g)
    };
    let held: usize = events.iter().map(Event::bytes).sum();
    INBOX_BYTES.fetch_sub(held, Ordering::Relaxed);
    for ev in events {
        match ev {
            Event::Invalidate {
                payload,
                redirected,
            } => {
                if proto >= 3 {
                    out.extend_from_slice(b">2\r\n$10\r\ninvalidate\r\n");
                } else if redirected && subscribed {
                    out.extend_from_slice(
                        b"*3\r\n$7\r\nmessage\r\n$20\r\n__redis__:invalidate\r\n",
                    );
                } else {
                    continue;
                }
                out.extend_from_slice(&payload);
            }
            Event::RedirBroken(id) => {
                if proto >= 3 {
                    out.extend_from_slice(b">2\r\n$21\r\ntracking-redir-broken\r\n:");
                    out.extend_from_slice(id.to_string().as_bytes());
                    out.extend_from_slice(b"\r\n");
                }
            }
        }
    }
    true
}

/// Drains a home client's inbox into its output when that keeps replies and invalidations in
/// order: nothing in flight on another shard, not blocked (its reply comes first), and its
/// replies not being dropped (CLIENT REPLY OFF/SKIP: drained after the reply is discarded).
pub fn drain_client(c: &mut Client) -> bool {
    if !c.shared.tracking.has_pending() || c.inflight > 0 || c.blocked.is_some() {
        return false;
    }
    let subscribed = c.subscriptions() > 0;
    let mut out = std::mem::take(&mut c.out);
    let before = out.len();
    let any = drain_into(&c.shared, c.proto, subscribed, &mut out);
    let added = out.len() - before;
    c.out = out;
    if added > 0 {
        UNSENT_BYTES.fetch_add(added, Ordering::Relaxed);
        c.tracking_unsent += added;
    }
    any
}

/// Like `drain_client`, into a reply buffer taken out of the client for a command.
pub fn drain_before_reply(c: &Client, out: &mut Vec<u8>) {
    if !c.shared.tracking.has_pending() || c.reply_off || c.reply_skip_this || c.blocked.is_some() {
        return;
    }
    drain_into(&c.shared, c.proto, c.subscriptions() > 0, out);
}

/// Before a data command runs (after `evict::admit_command` made room): the invalidations
/// queued for the current client, those of keys evicted to make room included, reach it
/// before its reply (Redis sends them at once, outside the command's execution).
pub fn before_exec(c: &Client, out: &mut crate::protocol::Out) {
    set_in_call(false);
    drain_before_reply(c, out.buf);
    set_in_call(true);
}

/// What a hop to another shard carries so that shard can track and drain for the client.
pub struct RemoteCtx {
    pub client: Arc<ClientShared>,
    /// The client's replies are kept (no CLIENT REPLY OFF/SKIP) and it is not blocked.
    pub may_drain: bool,
    pub subscribed: bool,
}

/// The context of a hop, when tracking is in use or the client has events waiting.
pub fn remote_ctx(c: &Client) -> Option<RemoteCtx> {
    if !active() && !c.shared.tracking.has_pending() {
        return None;
    }
    Some(RemoteCtx {
        client: c.shared.clone(),
        may_drain: !(c.reply_off || c.reply_skip_this || c.reply_skip_next),
        subscribed: c.subscriptions() > 0,
    })
}

impl RemoteCtx {
    pub fn drain(&self, proto: u8, out: &mut Vec<u8>) {
        if self.may_drain {
            drain_into(&self.client, proto, self.subscribed, out);
        }
    }
}

/// After a command ran for `client`: a read-only command remembers its keys for a client
/// that tracks them (Redis's `trackingRememberKeys`, called from `call()`).
pub fn after_read(
    ks: &mut crate::storage::Keyspace,
    client: &ClientShared,
    cmd: &crate::commands::Cmd,
    args: &[Bytes],
) {
    use crate::commands::flag;
    if cmd.flags & flag::READONLY == 0 || !client.tracking.remembers_reads() {
        return;
    }
    remember_keys(ks, cmd, args, client.id);
}

/// Remembers the keys of `cmd` (pub/sub shard channels are not keys to cache).
fn remember_keys(
    ks: &mut crate::storage::Keyspace,
    cmd: &crate::commands::Cmd,
    args: &[Bytes],
    id: u64,
) {
    if cmd.flags & crate::commands::flag::PUBSUB != 0 {
        return;
    }
    let indices = cmd.key_indices(args);
    if indices.is_empty() {
        return;
    }
    let nshards = ks.nshards();
    let mut shards = ks.shards_mut();
    for i in indices {
        let Some(k) = args.get(i) else { continue };
        let owner = crate::storage::slot_owner(crate::storage::key_slot(k), nshards);
        if let Some(s) = shards.iter_mut().find(|s| s.id == owner) {
            s.tracking.remember(k, id);
        }
    }
}

impl RemoteCtx {
    /// Runs a hopped command for the client on the owner shard, as `run_data` does at home:
    /// current client, eviction, invalidations drained ahead of the reply, execution, keys
    /// remembered, and the client's own invalidations after its reply.
    pub fn exec(
        &self,
        ks: &mut crate::storage::Keyspace,
        rc: &crate::shard::mesh::RemoteCmd,
        f: fn(&mut crate::storage::Keyspace, &[Bytes], &mut crate::protocol::Out),
        out: &mut crate::protocol::Out,
    ) {
        set_current(self.client.id, false);
        // Eviction ran on the home shard before the hop (`evict::admit_command`).
        self.drain(out.proto, out.buf);
        set_in_call(true);
        ks.exec(f, &rc.args, out);
        if rc.track_reads {
            remember_keys(ks, rc.cmd, &rc.args, self.client.id);
        }
        set_in_call(false);
        flush_deferred();
        self.drain(out.proto, out.buf);
        set_current(0, false);
    }
}

/// For threads that change keys outside the shard loops (the replica's link applying its
/// master's stream): broadcasts the BCAST keys they queued and wakes the home shards of the
/// clients they gave invalidations, through the mailboxes' slot for non-shard threads.
pub fn after_foreign(server: &crate::server::Server) {
    let touched = table::take_bcast_touched();
    if touched != 0 {
        for h in &server.shards {
            if touched & (1u64 << (h.id % 64)) != 0 {
                h.lock_data().tracking.broadcast();
            }
        }
    }
    if !has_wakes() {
        return;
    }
    let mut wakes = take_wakes();
    wakes.sort_unstable();
    wakes.dedup();
    let outside = server.nshards();
    for (shard, token, id) in wakes {
        if let Some(h) = server.shards.get(shard) {
            let mut batch = vec![crate::shard::mesh::Msg::TrackingWake { token, id }];
            h.mailbox.post(outside, &mut batch);
        }
    }
}

/// Registers a client in the directory (tracking clients and redirect targets).
fn list(c: &Arc<ClientShared>) {
    if !c.tracking.listed.swap(true, Ordering::AcqRel) {
        DIRECTORY.write().insert(c.id, c.clone());
    }
}

/// A client goes away (closed, or QUIT answered): tracking off, out of the directory.
pub fn forget(c: &ClientShared) {
    if c.tracking.flags() & flags::ON != 0 {
        disable(c);
    }
    if c.tracking.listed.load(Ordering::Acquire) && c.tracking.listed.swap(false, Ordering::AcqRel)
    {
        DIRECTORY.write().remove(&c.id);
    }
}

/// Redis's `disableTracking`: leaves every BCAST prefix, clears the flags. Keys the client
/// read stay in the tables and are dropped lazily when invalidated.
pub fn disable(c: &ClientShared) {
    let h = &c.tracking;
    let prefixes = std::mem::take(&mut *h.prefixes.lock());
    if !prefixes.is_empty() {
        let mut table = PREFIXES.write();
        for p in prefixes {
            if let Some(ids) = table.get_mut(&p) {
                ids.retain(|&i| i != c.id);
                if ids.is_empty() {
                    table.remove(&p);
                    PREFIX_COUNT.fetch_sub(1, Ordering::Relaxed);
                }
            }
        }
    }
    let old = h.flags.swap(0, Ordering::AcqRel);
    if old & flags::ON != 0 {
        CLIENTS.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Redis's `enableTracking` (options already validated).
pub fn enable(c: &Arc<ClientShared>, redirect: u64, options: u32, prefixes: &[Vec<u8>]) {
    let h = &c.tracking;
    list(c);
    let keep = h.flags() & flags::CACHING;
    let old = h.flags.swap(
        flags::ON
            | keep
            | (options & (flags::BCAST | flags::OPTIN | flags::OPTOUT | flags::NOLOOP)),
        Ordering::AcqRel,
    );
    if old & flags::ON == 0 {
        CLIENTS.fetch_add(1, Ordering::Relaxed);
    }
    h.redirect.store(redirect, Ordering::Release);
    if options & flags::BCAST != 0 {
        let mut mine = h.prefixes.lock();
        let mut table = PREFIXES.write();
        let empty: [Vec<u8>; 1] = [Vec::new()];
        let wanted: &[Vec<u8>] = if prefixes.is_empty() {
            &empty
        } else {
            prefixes
        };
        for p in wanted {
            if mine.contains(p) {
                continue;
            }
            let ids = table.entry(p.clone()).or_insert_with(|| {
                PREFIX_COUNT.fetch_add(1, Ordering::Relaxed);
                Vec::new()
            });
            ids.push(c.id);
            mine.push(p.clone());
        }
        mine.sort();
    }
}

/// Makes a redirect target reachable by invalidations.
pub fn list_target(c: &Arc<ClientShared>) {
    list(c);
}

/// Sets or clears the CLIENT CACHING mark.
pub fn set_caching(c: &ClientShared, on: bool) {
    if on {
        c.tracking.flags.fetch_or(flags::CACHING, Ordering::AcqRel);
    } else {
        c.tracking
            .flags
            .fetch_and(!flags::CACHING, Ordering::AcqRel);
    }
}

/// Memory a client's BCAST prefixes hold, counted in its `tot-mem` (client eviction), as
/// Redis counts its prefix tree.
pub fn client_memory_bytes(c: &ClientShared) -> usize {
    if c.tracking.flags() & flags::BCAST == 0 {
        return 0;
    }
    let prefixes = c.tracking.prefixes.lock();
    prefixes.capacity() * std::mem::size_of::<Vec<u8>>()
        + prefixes.iter().map(|p| p.capacity()).sum::<usize>()
}

/// CLIENT LIST `flags=` letters of a client's tracking state, in Redis's order.
pub fn list_flags(c: &ClientShared) -> &'static str {
    let f = c.tracking.flags();
    match (
        f & flags::ON != 0,
        f & flags::BROKEN_REDIR != 0,
        f & flags::BCAST != 0,
    ) {
        (false, _, _) => "",
        (true, false, false) => "t",
        (true, true, false) => "tR",
        (true, false, true) => "tB",
        (true, true, true) => "tRB",
    }
}

/// CLIENT LIST `redir=`: the redirect id while tracking, else -1.
pub fn list_redir(c: &ClientShared) -> i64 {
    if c.tracking.flags() & flags::ON != 0 {
        c.tracking.redirect() as i64
    } else {
        -1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_are_resp() {
        assert_eq!(&key_payload(b"k1")[..], b"*1\r\n$2\r\nk1\r\n");
        assert_eq!(&null_payload(2)[..], b"$-1\r\n");
        assert_eq!(&null_payload(3)[..], b"_\r\n");
    }
}
