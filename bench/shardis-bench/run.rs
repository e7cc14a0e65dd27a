//! The load generator: client threads, each driving its connections from one epoll loop.
//!
//! Closed loop: every connection keeps `pipeline` requests in flight and sends the next as
//! soon as a reply arrives; latency runs from the moment the request was written.
//!
//! Open loop: each connection has a schedule of intended send times (rate / connections per
//! second, uniform or Poisson gaps). A request whose time has come waits in the connection's
//! backlog while `pipeline` requests are already in flight; its latency still counts from its
//! *intended* time, so a server that stalls is charged for every request it delayed
//! (coordinated omission corrected, as wrk2 does). A timerfd wakes the loop at the next
//! intended time with sub-millisecond precision.
//!
//! Cluster mode: a connection is a set of sockets, one per node, opened as needed; requests
//! go to the owner of their key's slot (from CLUSTER SLOTS, updated by MOVED), ASK sends
//! ASKING then the request to the named node, and a redirected request keeps its intended time.

use crate::args::Opts;
use crate::resp::{self, Reply};
use crate::workload::Generator;
use hdrhistogram::Histogram;
use std::collections::{BinaryHeap, VecDeque};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

/// Latencies are recorded in nanoseconds, from 1 ns to one hour, 3 significant digits.
pub const LATENCY_NS_MAX: u64 = 3_600_000_000_000;
/// Requests an open-loop connection may have waiting to be sent before the run is declared
/// hopelessly overloaded (their intended times are still charged, see `backlog_dropped`).
const BACKLOG_MAX: usize = 1_000_000;
/// Bytes read per read call.
const READ_CHUNK_BYTES: usize = 64 * 1024;
/// Nodes a cluster-mode connection may learn about.
const NODES_MAX: usize = 1024;

pub fn now_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

pub fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, LATENCY_NS_MAX, 3).expect("valid histogram bounds")
}

/// State shared by the client threads and the main thread.
pub struct Shared {
    pub stop: AtomicBool,
    /// Requests intended at or after this instant are recorded (u64::MAX while warming up).
    pub record_from_ns: AtomicU64,
    pub done: AtomicU64,
    pub lat_sum_ns: AtomicU64,
    pub lat_max_ns: AtomicU64,
    pub errors: AtomicU64,
    /// Stop draining in-flight requests after this instant.
    pub drain_until_ns: AtomicU64,
}

impl Shared {
    pub fn new() -> Shared {
        Shared {
            stop: AtomicBool::new(false),
            record_from_ns: AtomicU64::new(u64::MAX),
            done: AtomicU64::new(0),
            lat_sum_ns: AtomicU64::new(0),
            lat_max_ns: AtomicU64::new(0),
            errors: AtomicU64::new(0),
            drain_until_ns: AtomicU64::new(u64::MAX),
        }
    }
}

/// What a thread hands back.
pub struct ThreadResult {
    pub hist: Histogram<u64>,
    pub errors: u64,
    pub first_error: Option<String>,
    pub redirects: u64,
    /// Requests recorded as intended but never completed (overload at the end of the run).
    pub unfinished: u64,
    pub last_reply_ns: u64,
    /// (due time, latency) of requests slower than `--slow-ms`, monotonic nanoseconds.
    pub slow: Vec<(u64, u64)>,
}

/// The cluster's slot map, as known at start.
#[derive(Clone)]
pub struct Topology {
    pub nodes: Vec<(String, u16)>,
    /// Node index per slot.
    pub slots: Vec<u16>,
}

pub struct ThreadPlan {
    pub gens: Vec<Generator>,
    /// Requests this thread may issue once recording starts (None: until stop).
    pub budget: Option<u64>,
    pub topo: Topology,
}

struct Pending {
    intended_ns: u64,
    /// The request, kept in cluster mode to resend it after MOVED/ASK.
    bytes: Option<Vec<u8>>,
    /// ASKING's own reply, not a request's.
    asking: bool,
    /// Sent before measuring started, as seen when the request budget was checked (its
    /// reply is not recorded even if `record_from_ns` is already set when it comes).
    warmup: bool,
}

struct Sock {
    stream: TcpStream,
    out: Vec<u8>,
    inb: Vec<u8>,
    pending: VecDeque<Pending>,
    want_write: bool,
}

struct Conn {
    socks: Vec<Option<Sock>>,
    gen: Generator,
    inflight: usize,
    backlog: VecDeque<u64>,
    next_due_ns: u64,
    per_conn_rate: f64,
    /// With `--batches`: when the current batch's first reply bytes were read.
    batch_first_read_ns: Option<u64>,
}

/// Opens a connection and runs the handshake (HELLO, AUTH, SELECT) in blocking mode.
pub fn connect(o: &Opts, host: &str, port: u16) -> Result<TcpStream, String> {
    let mut s = TcpStream::connect((host, port))
        .map_err(|e| format!("connect {}:{}: {}", host, port, e))?;
    s.set_nodelay(true).map_err(|e| e.to_string())?;
    let mut cmds: Vec<Vec<u8>> = Vec::new();
    if o.resp == 3 {
        let mut hello: Vec<&[u8]> = vec![b"HELLO", b"3"];
        if let Some(pw) = &o.auth {
            hello.extend_from_slice(&[
                b"AUTH",
                o.user.as_deref().unwrap_or("default").as_bytes(),
                pw.as_bytes(),
            ]);
        }
        cmds.push(resp::encode(&hello));
    } else if let Some(pw) = &o.auth {
        match &o.user {
            Some(u) => cmds.push(resp::encode(&[b"AUTH", u.as_bytes(), pw.as_bytes()])),
            None => cmds.push(resp::encode(&[b"AUTH", pw.as_bytes()])),
        }
    }
    if o.db != 0 && !o.cluster {
        cmds.push(resp::encode(&[b"SELECT", o.db.to_string().as_bytes()]));
    }
    for c in cmds {
        if let resp::Value::Err(e) = call(&mut s, &c)? {
            return Err(format!("{}:{}: {}", host, port, e));
        }
    }
    Ok(s)
}

/// Sends one command on a blocking stream and reads its reply.
pub fn call(s: &mut TcpStream, cmd: &[u8]) -> Result<resp::Value, String> {
    s.write_all(cmd).map_err(|e| e.to_string())?;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 16 * 1024];
    loop {
        if let Some((_, v)) = resp::parse_value(&buf, 0)? {
            return Ok(v);
        }
        let n = s.read(&mut chunk).map_err(|e| e.to_string())?;
        if n == 0 {
            return Err("connection closed by the server".into());
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// Reads CLUSTER SLOTS into a topology.
pub fn cluster_topology(o: &Opts) -> Result<Topology, String> {
    let mut s = connect(o, &o.host, o.port)?;
    let v = call(&mut s, &resp::encode(&[b"CLUSTER", b"SLOTS"]))?;
    let resp::Value::Arr(ranges) = v else {
        return Err(format!("CLUSTER SLOTS: unexpected reply {:?}", v));
    };
    let mut topo = Topology {
        nodes: Vec::new(),
        slots: vec![0; 16384],
    };
    for r in ranges {
        let resp::Value::Arr(items) = r else { continue };
        let (Some(resp::Value::Int(a)), Some(resp::Value::Int(b)), Some(resp::Value::Arr(m))) =
            (items.first(), items.get(1), items.get(2))
        else {
            continue;
        };
        let (Some(resp::Value::Str(h)), Some(resp::Value::Int(p))) = (m.first(), m.get(1)) else {
            continue;
        };
        let mut host = String::from_utf8_lossy(h).into_owned();
        if host.is_empty() || host == "?" {
            host = o.host.clone();
        }
        let node = (host, *p as u16);
        let idx = match topo.nodes.iter().position(|n| *n == node) {
            Some(i) => i,
            None => {
                topo.nodes.push(node);
                topo.nodes.len() - 1
            }
        };
        for slot in (*a).max(0)..=(*b).min(16383) {
            topo.slots[slot as usize] = idx as u16;
        }
    }
    if topo.nodes.is_empty() {
        return Err("CLUSTER SLOTS returned no slots".into());
    }
    Ok(topo)
}

struct Loop<'a> {
    o: &'a Opts,
    shared: &'a Shared,
    epfd: i32,
    timerfd: i32,
    conns: Vec<Conn>,
    topo: Topology,
    hist: Histogram<u64>,
    errors: u64,
    first_error: Option<String>,
    redirects: u64,
    budget: Option<u64>,
    /// Open loop: (Reverse(next due), connection).
    due: BinaryHeap<std::cmp::Reverse<(u64, usize)>>,
    dirty: Vec<(usize, usize)>,
    last_reply_ns: u64,
    stopping: bool,
    slow: Vec<(u64, u64)>,
}

fn epoll_ctl(epfd: i32, op: i32, fd: i32, events: u32, data: u64) {
    let mut ev = libc::epoll_event { events, u64: data };
    // SAFETY: `ev` is a valid epoll_event; fds are owned by this thread's streams.
    unsafe { libc::epoll_ctl(epfd, op, fd, &mut ev) };
}

const TIMER_TOKEN: u64 = u64::MAX;

fn token(conn: usize, node: usize) -> u64 {
    (conn * NODES_MAX + node) as u64
}

impl<'a> Loop<'a> {
    fn sock(&mut self, c: usize, node: usize) -> Result<&mut Sock, String> {
        let conn = &mut self.conns[c];
        if conn.socks.len() <= node {
            conn.socks.resize_with(node + 1, || None);
        }
        if conn.socks[node].is_none() {
            let (h, p) = self.topo.nodes[node].clone();
            let stream = connect(self.o, &h, p)?;
            stream.set_nonblocking(true).map_err(|e| e.to_string())?;
            epoll_ctl(
                self.epfd,
                libc::EPOLL_CTL_ADD,
                stream.as_raw_fd(),
                libc::EPOLLIN as u32,
                token(c, node),
            );
            conn.socks[node] = Some(Sock {
                stream,
                out: Vec::new(),
                inb: Vec::new(),
                pending: VecDeque::new(),
                want_write: false,
            });
        }
        conn.socks[node]
            .as_mut()
            .ok_or_else(|| "no socket".to_string())
    }

    fn node_of(&self, key: &[u8]) -> usize {
        if !self.o.cluster || key.is_empty() {
            return 0;
        }
        let slot = shardis::storage::key_slot(key) as usize;
        self.topo.slots.get(slot).copied().unwrap_or(0) as usize
    }

    /// Generates one request on connection `c`, intended at `intended_ns`.
    fn issue(&mut self, c: usize, intended_ns: u64, warmup: bool) -> Result<(), String> {
        let mut bytes = Vec::new();
        let key = self.conns[c].gen.next(&mut bytes).unwrap_or_default();
        let node = self.node_of(&key);
        let cluster = self.o.cluster;
        let s = self.sock(c, node)?;
        s.out.extend_from_slice(&bytes);
        s.pending.push_back(Pending {
            intended_ns,
            bytes: cluster.then_some(bytes),
            asking: false,
            warmup,
        });
        self.conns[c].inflight += 1;
        self.dirty.push((c, node));
        Ok(())
    }

    /// Whether one more request may be sent (the budget counts only measured ones), and if
    /// so whether it is sent before measuring started.
    fn may_issue(&mut self) -> Option<bool> {
        if self.stopping {
            return None;
        }
        let recording = self.shared.record_from_ns.load(Ordering::Relaxed) != u64::MAX;
        match &mut self.budget {
            Some(0) if recording => None,
            Some(b) if recording => {
                *b -= 1;
                Some(false)
            }
            _ => Some(!recording),
        }
    }

    /// Closed loop: top connection `c` up to the pipeline depth.
    fn fill_closed(&mut self, c: usize) -> Result<(), String> {
        if self.o.batches && self.conns[c].inflight > 0 {
            return Ok(());
        }
        while self.conns[c].inflight < self.o.pipeline {
            let Some(warmup) = self.may_issue() else {
                break;
            };
            self.issue(c, now_ns(), warmup)?;
        }
        Ok(())
    }

    /// Open loop: move due intended times into the backlog, send what the depth allows.
    fn fill_open(&mut self, c: usize, now: u64) -> Result<(), String> {
        let poisson = self.o.poisson;
        let conn = &mut self.conns[c];
        while conn.next_due_ns <= now && !self.stopping {
            if conn.backlog.len() < BACKLOG_MAX {
                conn.backlog.push_back(conn.next_due_ns);
            }
            let mean_gap = 1e9 / conn.per_conn_rate;
            let gap = if poisson {
                conn.gen.rng.exp() * mean_gap
            } else {
                mean_gap
            };
            conn.next_due_ns += gap.max(1.0) as u64;
        }
        while self.conns[c].inflight < self.o.pipeline {
            let Some(&t) = self.conns[c].backlog.front() else {
                break;
            };
            // Requests already intended are sent while draining; new ones need the budget.
            let warmup = if self.stopping {
                false
            } else {
                match self.may_issue() {
                    Some(w) => w,
                    None => {
                        self.conns[c].backlog.clear();
                        break;
                    }
                }
            };
            self.conns[c].backlog.pop_front();
            self.issue(c, t, warmup)?;
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<(), String> {
        let mut dirty = std::mem::take(&mut self.dirty);
        dirty.sort_unstable();
        dirty.dedup();
        for &(c, node) in &dirty {
            let epfd = self.epfd;
            let Some(Some(s)) = self.conns[c].socks.get_mut(node) else {
                continue;
            };
            let mut written = 0;
            while written < s.out.len() {
                match s.stream.write(&s.out[written..]) {
                    Ok(0) => return Err("server closed the connection".into()),
                    Ok(n) => written += n,
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(format!("write: {}", e)),
                }
            }
            s.out.drain(..written);
            let want = !s.out.is_empty();
            if want != s.want_write {
                s.want_write = want;
                let ev = libc::EPOLLIN as u32 | if want { libc::EPOLLOUT as u32 } else { 0 };
                epoll_ctl(
                    epfd,
                    libc::EPOLL_CTL_MOD,
                    s.stream.as_raw_fd(),
                    ev,
                    token(c, node),
                );
            }
        }
        dirty.clear();
        self.dirty = dirty;
        Ok(())
    }

    fn on_readable(&mut self, c: usize, node: usize) -> Result<(), String> {
        // redis-benchmark reads its clock when the socket turns readable, before reading.
        let readable_ns = now_ns();
        let mut chunk = [0u8; READ_CHUNK_BYTES];
        loop {
            let Some(Some(s)) = self.conns[c].socks.get_mut(node) else {
                return Ok(());
            };
            match s.stream.read(&mut chunk) {
                Ok(0) => return Err("server closed the connection".into()),
                Ok(n) => {
                    s.inb.extend_from_slice(&chunk[..n]);
                    if n < chunk.len() {
                        break;
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(format!("read: {}", e)),
            }
        }
        let now = now_ns();
        // redis-benchmark's latency: every reply of a batch counts up to the batch's first
        // read event, reading and parsing excluded.
        let reply_ns = if self.o.batches && self.o.rate.is_none() {
            *self.conns[c].batch_first_read_ns.get_or_insert(readable_ns)
        } else {
            now
        };
        let record_from = self.shared.record_from_ns.load(Ordering::Relaxed);
        let mut pos = 0;
        let mut redirects: Vec<(Pending, String)> = Vec::new();
        let mut completed = 0usize;
        let (mut n_rec, mut sum, mut max) = (0u64, 0u64, 0u64);
        {
            let Some(Some(s)) = self.conns[c].socks.get_mut(node) else {
                return Ok(());
            };
            while let Some((end, reply)) = resp::parse(&s.inb, pos)? {
                pos = end;
                if reply == Reply::Push {
                    continue;
                }
                let Some(p) = s.pending.pop_front() else {
                    return Err("reply without a request".into());
                };
                if p.asking {
                    continue;
                }
                if let Reply::Error(e) = &reply {
                    if self.o.cluster && (e.starts_with("MOVED ") || e.starts_with("ASK ")) {
                        redirects.push((p, e.clone()));
                        continue;
                    }
                    self.errors += 1;
                    if self.first_error.is_none() {
                        self.first_error = Some(e.clone());
                    }
                }
                completed += 1;
                if p.intended_ns >= record_from && !p.warmup {
                    let lat = reply_ns
                        .saturating_sub(p.intended_ns)
                        .clamp(1, LATENCY_NS_MAX);
                    let _ = self.hist.record(lat);
                    if self.o.slow_log.is_some() && lat as f64 >= self.o.slow_ms * 1e6 {
                        self.slow.push((p.intended_ns, lat));
                    }
                    n_rec += 1;
                    sum += lat;
                    max = max.max(lat);
                }
            }
            s.inb.drain(..pos);
        }
        if n_rec > 0 {
            self.last_reply_ns = now;
            self.shared.done.fetch_add(n_rec, Ordering::Relaxed);
            self.shared.lat_sum_ns.fetch_add(sum, Ordering::Relaxed);
            self.shared.lat_max_ns.fetch_max(max, Ordering::Relaxed);
        }
        self.conns[c].inflight -= completed;
        if self.conns[c].inflight == 0 {
            self.conns[c].batch_first_read_ns = None;
        }
        for (p, e) in redirects {
            self.redirect(c, p, &e)?;
        }
        if self.o.rate.is_none() {
            self.fill_closed(c)?;
        } else {
            self.fill_open(c, now)?;
        }
        Ok(())
    }

    /// Resends a request after `MOVED slot host:port` or `ASK slot host:port`.
    fn redirect(&mut self, c: usize, p: Pending, err: &str) -> Result<(), String> {
        self.redirects += 1;
        let mut parts = err.split(' ');
        let (kind, slot, addr) = (parts.next(), parts.next(), parts.next());
        let (Some(kind), Some(slot), Some(addr)) = (kind, slot, addr) else {
            return Err(format!("bad redirect '{}'", err));
        };
        let slot: usize = slot
            .parse()
            .map_err(|_| format!("bad redirect '{}'", err))?;
        let (h, port) = crate::args::host_port(addr)?;
        let h = if h.is_empty() { self.o.host.clone() } else { h };
        let node = match self.topo.nodes.iter().position(|n| n.0 == h && n.1 == port) {
            Some(i) => i,
            None if self.topo.nodes.len() < NODES_MAX => {
                self.topo.nodes.push((h, port));
                self.topo.nodes.len() - 1
            }
            None => return Err("too many cluster nodes".into()),
        };
        let asking = kind == "ASK";
        if !asking {
            if let Some(s) = self.topo.slots.get_mut(slot) {
                *s = node as u16;
            }
        }
        let bytes = p.bytes.clone().unwrap_or_default();
        let s = self.sock(c, node)?;
        if asking {
            s.out.extend_from_slice(&resp::encode(&[b"ASKING"]));
            s.pending.push_back(Pending {
                intended_ns: p.intended_ns,
                bytes: None,
                asking: true,
                warmup: p.warmup,
            });
        }
        s.out.extend_from_slice(&bytes);
        s.pending.push_back(p);
        self.dirty.push((c, node));
        Ok(())
    }

    fn arm_timer(&mut self) {
        let Some(std::cmp::Reverse((t, _))) = self.due.peek() else {
            return;
        };
        let spec = libc::itimerspec {
            it_interval: libc::timespec {
                tv_sec: 0,
                tv_nsec: 0,
            },
            it_value: libc::timespec {
                tv_sec: (*t / 1_000_000_000) as libc::time_t,
                tv_nsec: (*t % 1_000_000_000).max(1) as libc::c_long,
            },
        };
        // SAFETY: timerfd is ours; `spec` is valid for the call.
        unsafe {
            libc::timerfd_settime(
                self.timerfd,
                libc::TFD_TIMER_ABSTIME,
                &spec,
                std::ptr::null_mut(),
            )
        };
    }

    fn on_timer(&mut self) -> Result<(), String> {
        let mut buf = [0u8; 8];
        // SAFETY: reading the 8-byte expiry count of our own non-blocking timerfd.
        unsafe { libc::read(self.timerfd, buf.as_mut_ptr().cast(), 8) };
        let now = now_ns();
        while let Some(&std::cmp::Reverse((t, c))) = self.due.peek() {
            if t > now {
                break;
            }
            self.due.pop();
            self.fill_open(c, now)?;
            let next = self.conns[c].next_due_ns;
            if !self.stopping {
                self.due.push(std::cmp::Reverse((next, c)));
            }
        }
        Ok(())
    }

    fn inflight(&self) -> usize {
        self.conns
            .iter()
            .map(|c| c.inflight + c.backlog.len())
            .sum()
    }

    fn run(&mut self) -> Result<(), String> {
        let start = now_ns();
        for c in 0..self.conns.len() {
            if self.o.rate.is_some() {
                // Stagger connections across one mean gap so they do not fire together.
                let gap = 1e9 / self.conns[c].per_conn_rate;
                let offset = (gap * c as f64 / self.conns.len() as f64) as u64;
                self.conns[c].next_due_ns = start + offset;
                self.due.push(std::cmp::Reverse((start + offset, c)));
            } else {
                self.fill_closed(c)?;
            }
        }
        let mut events = vec![libc::epoll_event { events: 0, u64: 0 }; 1024];
        loop {
            self.flush()?;
            if self.shared.stop.load(Ordering::Relaxed) && !self.stopping {
                self.stopping = true;
                self.due.clear();
            }
            let budget_spent = self.budget == Some(0)
                && self.shared.record_from_ns.load(Ordering::Relaxed) != u64::MAX;
            if (self.stopping || budget_spent) && self.inflight() == 0 {
                return Ok(());
            }
            if self.stopping && now_ns() > self.shared.drain_until_ns.load(Ordering::Relaxed) {
                return Ok(());
            }
            self.arm_timer();
            // SAFETY: `events` is a valid buffer of `events.len()` entries.
            let n = unsafe {
                libc::epoll_wait(self.epfd, events.as_mut_ptr(), events.len() as i32, 50)
            };
            for ev in events.iter().take(n.max(0) as usize) {
                let data = ev.u64;
                if data == TIMER_TOKEN {
                    self.on_timer()?;
                    continue;
                }
                let (c, node) = (data as usize / NODES_MAX, data as usize % NODES_MAX);
                if ev.events & (libc::EPOLLOUT as u32) != 0 {
                    self.dirty.push((c, node));
                }
                if ev.events & (libc::EPOLLIN as u32 | libc::EPOLLHUP as u32) != 0 {
                    self.on_readable(c, node)?;
                }
            }
        }
    }
}

/// Runs one client thread to completion.
pub fn thread_main(o: Arc<Opts>, shared: Arc<Shared>, plan: ThreadPlan) -> ThreadResult {
    // SAFETY: plain syscalls creating descriptors owned (and closed) by this function.
    let (epfd, timerfd) = unsafe {
        libc::prctl(libc::PR_SET_TIMERSLACK, 1 as libc::c_ulong);
        (
            libc::epoll_create1(libc::EPOLL_CLOEXEC),
            libc::timerfd_create(
                libc::CLOCK_MONOTONIC,
                libc::TFD_NONBLOCK | libc::TFD_CLOEXEC,
            ),
        )
    };
    epoll_ctl(
        epfd,
        libc::EPOLL_CTL_ADD,
        timerfd,
        libc::EPOLLIN as u32,
        TIMER_TOKEN,
    );
    let nconns = plan.gens.len().max(1);
    let per_conn_rate = o.rate.unwrap_or(1.0) / o.connections as f64;
    let conns = plan
        .gens
        .into_iter()
        .map(|gen| Conn {
            socks: Vec::new(),
            gen,
            inflight: 0,
            backlog: VecDeque::new(),
            next_due_ns: 0,
            per_conn_rate,
            batch_first_read_ns: None,
        })
        .collect();
    let mut lp = Loop {
        o: &o,
        shared: &shared,
        epfd,
        timerfd,
        conns,
        topo: plan.topo,
        hist: new_histogram(),
        errors: 0,
        first_error: None,
        redirects: 0,
        budget: plan.budget,
        due: BinaryHeap::with_capacity(nconns),
        dirty: Vec::new(),
        last_reply_ns: 0,
        stopping: false,
        slow: Vec::new(),
    };
    let outcome = lp.run();
    let unfinished = lp.inflight() as u64;
    if let Err(e) = outcome {
        lp.errors += 1;
        lp.first_error.get_or_insert(e);
        shared.stop.store(true, Ordering::Relaxed);
    }
    shared.errors.fetch_add(lp.errors, Ordering::Relaxed);
    // SAFETY: closing descriptors this function created.
    unsafe {
        libc::close(timerfd);
        libc::close(epfd);
    }
    ThreadResult {
        hist: lp.hist,
        errors: lp.errors,
        first_error: lp.first_error,
        redirects: lp.redirects,
        unfinished,
        last_reply_ns: lp.last_reply_ns,
        slow: lp.slow,
    }
}
