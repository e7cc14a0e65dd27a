//! The engine's side of scripting: running a script on the home thread with a busy pump,
//! and serving connections while a script (here or on another shard) is busy.
//!
//! While a script runs past `busy-reply-threshold`, no shard lock may be taken by anyone but
//! the script. `busy_turn` is a loop turn that takes none: it accepts connections, reads and
//! parses input, and `execute` answers every command with `-BUSY` except the allow-busy ones
//! (SCRIPT KILL, FUNCTION KILL, FUNCTION STATS, SHUTDOWN...); mail, blocked-client wake-ups,
//! closes and the cron wait for the next normal turn. On the script's own thread the Lua
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
            let mut pump = || self.busy_pump();
            crate::scripting::with_busy_pump(&mut pump, || {
                if top {
                    crate::scripting::top_level(|| f(&mut ctx, args, &mut out))
                } else {
                    f(&mut ctx, args, &mut out)
                }
            });
            let (d, n, r) = (ctx.deliveries, ctx.notes, ctx.ready_keys);
            (out.errors, out.last_error_code, d, n, r)
        };
        c.out = out_buf;
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
        {
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
                    Some(None) => stash.push((t, bytes.to_vec())),
                    _ => {}
                },
                Event::Closed(t) | Event::SendFailed(t) => closed.push(t),
                Event::SendDone(t, buf) => match conns.get_mut(t as usize) {
                    Some(Some(c)) => {
                        c.sending = false;
                        c.spare = buf;
                        crate::server::buffers::on_send_done(c);
                        to_send.push(t);
                    }
                    Some(None) => *sent = Some((t, buf)),
                    None => {}
                },
                Event::Wake => {}
            };
            if let Err(e) = self.io.poll(Some(Duration::ZERO), &mut handler) {
                crate::log_warning!("shard {}: I/O poll failed: {}", self.id, e);
            }
        }
        self.busy_turn();
    }

    /// A loop turn that takes no shard lock (see the module comment).
    pub(super) fn busy_turn(&mut self) {
        self.now_ms = crate::util::now_ms();
        for fd in std::mem::take(&mut self.accepted) {
            self.on_accept(fd);
        }
        let ready = std::mem::take(&mut self.ready);
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
