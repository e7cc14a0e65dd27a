//! The engine's side of scripting: running a script on the home thread with a busy pump,
//! and serving connections while a script (here or on another shard) is busy.
//!
//! While a script runs past `busy-reply-threshold`, no shard lock may be taken by anyone but
//! the script. `busy_turn` is a loop turn that takes none: it accepts connections, reads and
//! parses input, and `execute` answers every command with `-BUSY` except the allow-busy ones
//! (SCRIPT KILL, FUNCTION KILL, FUNCTION STATS, SHUTDOWN...); mail, blocked-client wake-ups
//! and the cron wait for the next normal turn. Closed connections are freed at once, as
//! Redis does during a busy script (a replica that drops shows in INFO), except those that
//! watch keys, whose unwatching needs shard locks. On the script's own thread the Lua
//! count hook calls `busy_pump`, which polls the ring without waiting and runs `busy_turn`.
//! The script's connection is out of `conns` meanwhile, so its input and a finished send
//! are stashed and given back when the script returns.

use super::{Flow, Shard};
use crate::commands::ConnFn;
use crate::protocol::Out;
use crate::server::ConnCtx;
use crate::shard::io::{Event, Io, Token};
use bytes::Bytes;
use std::time::{Duration, Instant};

impl<I: Io> Shard<I> {
    /// Runs a script command (EVAL family, FCALL) with the connection taken out of `conns`
    /// so the busy pump may serve the others. `top` marks a script command of a client, whose
    /// effects it feeds (`scripting::top_level`); DEBUG LOADAOF, which replays scripts, is
    /// not one.
    pub(super) fn run_script(
        &mut self,
        token: Token,
        f: ConnFn,
        full: &'static str,
        args: &[Bytes],
        now_ms: u64,
        top: bool,
    ) -> Flow {
        let server = self.server.clone();
        let shard = self.id;
        let Some(mut c) = self.conns.get_mut(token as usize).and_then(|s| s.take()) else {
            return Flow::Stop;
        };
        let start = Instant::now();
        let mut out_buf = std::mem::take(&mut c.out);
        let mut c_sending = c.sending;
        let (errors, code, deliveries, notes, ready) = {
            let mut out = Out::new(&mut out_buf, c.proto);
            let mut ctx = ConnCtx {
                client: &mut c,
                server: &server,
                shard,
                now_ms,
                deliveries: Vec::new(),
                notes: Vec::new(),
                ready_keys: Vec::new(),
                propagate: Vec::new(),
            };
            let mut host = Host {
                shard: &mut *self,
                token,
                inflight: c_sending,
                gone: false,
            };
            crate::scripting::with_host(&mut host, || {
                if top {
                    crate::scripting::top_level(|| f(&mut ctx, args, &mut out))
                } else {
                    f(&mut ctx, args, &mut out)
                }
            });
            c_sending = host.inflight;
            let (d, n, r) = (ctx.deliveries, ctx.notes, ctx.ready_keys);
            (out.errors, out.last_error_code, d, n, r)
        };
        c.out = out_buf;
        c.sending = c_sending;
        if let Some(slot) = self.conns.get_mut(token as usize) {
            *slot = Some(c);
        }
        self.give_back_stash();
        {
            let mut data = self.handle.lock_data();
            let st = &mut data.cmd_stats;
            st.record(full, start.elapsed().as_micros() as u64, errors > 0);
            if let Some(code) = code {
                st.record_error(&code);
            }
        }
        self.now_ms = crate::util::now_ms();
        self.poke |= crate::scripting::take_poke();
        self.pending_notes.extend(notes);
        self.ready_keys.extend(ready);
        for d in deliveries {
            self.deliver(d);
        }
        Flow::Continue
    }

    fn give_back_stash(&mut self) {
        for (t, bytes) in std::mem::take(&mut self.script_stash) {
            if let Some(Some(c)) = self.conns.get_mut(t as usize) {
                crate::server::buffers::append_input(c, &bytes);
                self.ready.push(t);
            }
        }
        if let Some((t, buf)) = self.script_sent.take() {
            if let Some(Some(c)) = self.conns.get_mut(t as usize) {
                c.sending = false;
                c.spare = buf;
                crate::server::buffers::on_send_done(c);
                self.to_send.push(t);
            }
        }
    }

    /// Called from the Lua hook while this thread's script is busy.
    fn busy_pump(&mut self) {
        self.poll_during_script(Duration::ZERO, None);
        self.busy_turn();
    }

    /// Polls the ring while this thread runs a script: other connections' input and finished
    /// sends are queued for later turns; the script's own connection's are stashed, or, while
    /// it is in a debugging session (`dbg`), handed to the debugger.
    fn poll_during_script(&mut self, timeout: Duration, mut dbg: Option<&mut DebugConn>) {
        let conns = &mut self.conns;
        let ready = &mut self.ready;
        let to_send = &mut self.to_send;
        let accepted = &mut self.accepted;
        let closed = &mut self.closed;
        let stash = &mut self.script_stash;
        let sent = &mut self.script_sent;
        let mut handler = |ev: Event<'_>| match ev {
            Event::Accepted(fd) => accepted.push(fd),
            Event::Data(t, bytes) => match conns.get_mut(t as usize) {
                Some(Some(c)) if !c.closing => {
                    crate::server::buffers::append_input(c, bytes);
                    ready.push(t);
                }
                Some(None) => match dbg.as_deref_mut().filter(|d| d.token == t) {
                    Some(d) => d.input.extend_from_slice(bytes),
                    None => stash.push((t, bytes.to_vec())),
                },
                _ => {}
            },
            Event::Closed(t) | Event::SendFailed(t) => {
                if let Some(d) = dbg.as_deref_mut().filter(|d| d.token == t) {
                    d.gone = true;
                }
                closed.push(t);
            }
            Event::SendDone(t, buf) => match conns.get_mut(t as usize) {
                Some(Some(c)) => {
                    c.sending = false;
                    c.spare = buf;
                    crate::server::buffers::on_send_done(c);
                    to_send.push(t);
                }
                Some(None) => {
                    if let Some(d) = dbg.as_deref_mut().filter(|d| d.token == t) {
                        d.inflight = false;
                    }
                    *sent = Some((t, buf));
                }
                None => {}
            },
            Event::Wake => {}
        };
        if let Err(e) = self.io.poll(Some(timeout), &mut handler) {
            crate::log_warning!("shard {}: I/O poll failed: {}", self.id, e);
        }
    }

    /// A loop turn that takes no shard lock (see the module comment).
    pub(super) fn busy_turn(&mut self) {
        self.now_ms = crate::util::now_ms();
        for fd in std::mem::take(&mut self.accepted) {
            self.on_accept(fd);
        }
        let mut closed = std::mem::take(&mut self.closed);
        // A token twice (closed, then a failed send): freed by the first, it must not look
        // like the script's connection to the second.
        closed.sort_unstable();
        closed.dedup();
        for t in closed {
            match self.conns.get(t as usize) {
                // The script's own connection (out of `conns`) closes after the script.
                Some(None) => self.closed.push(t),
                Some(Some(c)) if !c.watched.is_empty() => self.closed.push(t),
                _ => self.close_client(t),
            }
        }
        let mut ready = std::mem::take(&mut self.ready);
        // Connections later in the current turn's list, behind the script's own: their input
        // is already in their buffers, and no poll will report it again. They are served here
        // and taken off the turn's list.
        if let Some(rest) = self.turn_ready.get(self.turn_pos..) {
            ready.extend_from_slice(rest);
            self.turn_pos = self.turn_ready.len();
        }
        let mut later = Vec::new();
        for t in ready {
            if self.conns.get(t as usize).is_some_and(|c| c.is_some()) {
                self.process_client(t);
            } else {
                later.push(t);
            }
        }
        self.ready.extend(later);
        self.flush_sends();
    }
}

/// The debugger's view of the script's connection during one poll.
struct DebugConn {
    token: Token,
    input: Vec<u8>,
    inflight: bool,
    gone: bool,
}

/// The engine's side of a script run (`scripting::ScriptHost`): the busy pump, and the
/// debugger's I/O on the script's connection, which stays on the shard's ring (its recv and
/// sends go through the backend as always, so nothing races the ring for the socket).
struct Host<'a, I: Io> {
    shard: &'a mut Shard<I>,
    token: Token,
    /// A send to the script's connection is in flight.
    inflight: bool,
    gone: bool,
}

/// How long the debugger waits for its client to take earlier output (Redis's send timeout).
const DEBUG_SEND_TIMEOUT: Duration = Duration::from_secs(5);

impl<I: Io> Host<'_, I> {
    fn poll(&mut self, timeout: Duration) -> Vec<u8> {
        let mut d = DebugConn {
            token: self.token,
            input: Vec::new(),
            inflight: self.inflight,
            gone: self.gone,
        };
        self.shard.poll_during_script(timeout, Some(&mut d));
        self.inflight = d.inflight;
        self.gone = d.gone;
        if crate::scripting::busy() {
            self.shard.busy_turn();
        }
        d.input
    }
}

impl<I: Io> crate::scripting::ScriptHost for Host<'_, I> {
    fn busy_pump(&mut self) {
        self.shard.busy_pump();
    }

    fn debug_write(&mut self, bytes: Vec<u8>) -> bool {
        let deadline = Instant::now() + DEBUG_SEND_TIMEOUT;
        let mut early = Vec::new();
        while self.inflight && !self.gone && Instant::now() < deadline {
            early.extend(self.poll(Duration::from_millis(100)));
        }
        if !early.is_empty() {
            // Input that came while waiting belongs to the debugger: keep it for its reads.
            self.shard.script_stash.push((self.token, early));
        }
        if self.gone || self.inflight {
            self.gone = true;
            return false;
        }
        let mut buf = match self.shard.script_sent.take() {
            Some((t, mut b)) if t == self.token => {
                b.clear();
                b
            }
            other => {
                self.shard.script_sent = other;
                Vec::new()
            }
        };
        buf.extend_from_slice(&bytes);
        self.shard.io.send(self.token, buf);
        self.inflight = true;
        true
    }

    fn debug_read(&mut self, timeout: Duration) -> crate::scripting::DebugRead {
        use crate::scripting::DebugRead;
        let mut input = Vec::new();
        let stash = std::mem::take(&mut self.shard.script_stash);
        for (t, b) in stash {
            if t == self.token {
                input.extend(b);
            } else {
                self.shard.script_stash.push((t, b));
            }
        }
        if input.is_empty() && !self.gone {
            input = self.poll(timeout);
        }
        if !input.is_empty() {
            DebugRead::Data(input)
        } else if self.gone {
            DebugRead::Gone
        } else {
            DebugRead::Idle
        }
    }
}
