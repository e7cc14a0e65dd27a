//! The conformance suite of `Io`: every test is written once, generic over the backend, and
//! instantiated for each backend at the bottom. The server side runs on the test thread (an
//! io_uring with SINGLE_ISSUER must be driven by the thread that created it); clients are
//! plain blocking `std::net::TcpStream`s on other threads.
//!
//! A backend that cannot be set up here (io_uring forbidden) skips its tests with a line on
//! stdout instead of failing: the engine falls back to epoll in that case too.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::os::fd::{AsRawFd, RawFd};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use super::epoll::Epoll;
use super::uring::Uring;
use super::{Event, Io, Token};

/// Every test gives up after this long instead of hanging the suite.
const TEST_DEADLINE: Duration = Duration::from_secs(20);

/// An `Event` with its data copied out, so that it outlives the handler call.
#[derive(Debug)]
enum Seen {
    Accepted(RawFd),
    Data(Token, Vec<u8>),
    Closed(Token),
    SendDone(Token, Vec<u8>),
    SendFailed(Token),
    Wake,
}

impl Seen {
    fn token(&self) -> Option<Token> {
        match self {
            Seen::Data(t, _) | Seen::Closed(t) | Seen::SendDone(t, _) | Seen::SendFailed(t) => {
                Some(*t)
            }
            Seen::Accepted(_) | Seen::Wake => None,
        }
    }
}

fn poll_seen<T: Io>(io: &mut T, timeout: Option<Duration>) -> Vec<Seen> {
    let mut seen = Vec::new();
    io.poll(timeout, &mut |event| {
        seen.push(match event {
            Event::Accepted(fd) => Seen::Accepted(fd),
            Event::Data(t, d) => Seen::Data(t, d.to_vec()),
            Event::Closed(t) => Seen::Closed(t),
            Event::SendDone(t, b) => Seen::SendDone(t, b),
            Event::SendFailed(t) => Seen::SendFailed(t),
            Event::Wake => Seen::Wake,
        })
    })
    .expect("poll");
    seen
}

/// Polls until `step` returns true for some event; panics at `TEST_DEADLINE`.
fn pump<T: Io>(io: &mut T, mut step: impl FnMut(&mut T, Seen) -> bool) {
    let deadline = Instant::now() + TEST_DEADLINE;
    loop {
        assert!(Instant::now() < deadline, "test deadline passed");
        for seen in poll_seen(io, Some(Duration::from_millis(100))) {
            if step(io, seen) {
                return;
            }
        }
    }
}

/// Joins a client thread while polling (and ignoring events): a backend may submit what the
/// client waits for (a close, say) only when polled, as the engine always does.
fn join_polling<T: Io>(io: &mut T, client: thread::JoinHandle<()>) {
    let deadline = Instant::now() + TEST_DEADLINE;
    while !client.is_finished() {
        assert!(Instant::now() < deadline, "test deadline passed");
        let _ = poll_seen(io, Some(Duration::from_millis(10)));
    }
    client.join().expect("client");
}

fn listener() -> (TcpListener, SocketAddr) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.set_nonblocking(true).expect("nonblocking");
    let addr = listener.local_addr().expect("addr");
    (listener, addr)
}

fn eventfd(flags: libc::c_int) -> RawFd {
    // SAFETY: plain syscall without pointers.
    let fd = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | flags) };
    assert!(fd >= 0, "eventfd");
    fd
}

fn write_eventfd(fd: RawFd) {
    let one = 1u64.to_ne_bytes();
    // SAFETY: `one` is valid for reads of 8 bytes for the call.
    let n = unsafe { libc::write(fd, one.as_ptr().cast(), one.len()) };
    assert_eq!(n, 8);
}

/// Accepts one connection and registers it under `token`.
fn accept_one<T: Io>(io: &mut T, token: Token) {
    pump(io, |io, seen| match seen {
        Seen::Accepted(fd) => {
            io.add_conn(token, fd).expect("add_conn");
            true
        }
        other => panic!("unexpected {other:?}"),
    });
}

/// An echo server over `Io`: what a connection sends comes back; a line starting with `close`
/// makes the server close the connection once the echo is written.
#[derive(Default)]
struct Echo {
    next_token: Token,
    free: Vec<Token>,
    conns: HashMap<Token, EchoConn>,
    accepted: usize,
    closed: usize,
}

#[derive(Default)]
struct EchoConn {
    queued: Vec<u8>,
    in_flight: bool,
    spare: Vec<u8>,
    close_after_send: bool,
}

impl Echo {
    fn handle<T: Io>(&mut self, io: &mut T, seen: Seen) {
        match seen {
            Seen::Accepted(fd) => {
                let token = self.free.pop().unwrap_or_else(|| {
                    self.next_token += 1;
                    self.next_token - 1
                });
                io.add_conn(token, fd).expect("add_conn");
                self.conns.insert(token, EchoConn::default());
                self.accepted += 1;
            }
            Seen::Data(token, data) => {
                let conn = self.conns.get_mut(&token).expect("data for a live token");
                if data.starts_with(b"close") {
                    conn.close_after_send = true;
                }
                conn.queued.extend_from_slice(&data);
            }
            Seen::SendDone(token, buf) => {
                let conn = self
                    .conns
                    .get_mut(&token)
                    .expect("send done for a live token");
                assert!(buf.is_empty(), "SendDone hands the buffer back cleared");
                assert!(conn.in_flight);
                conn.in_flight = false;
                conn.spare = buf;
            }
            Seen::Closed(token) | Seen::SendFailed(token) => self.close(io, token),
            Seen::Wake => {}
        }
    }

    /// Starts the sends that can start, closes what asked for it.
    fn flush<T: Io>(&mut self, io: &mut T) {
        let mut to_close = Vec::new();
        for (&token, conn) in self.conns.iter_mut() {
            if conn.in_flight {
                continue;
            }
            if !conn.queued.is_empty() {
                let mut buf = std::mem::take(&mut conn.spare);
                buf.append(&mut conn.queued);
                conn.in_flight = true;
                io.send(token, buf);
            } else if conn.close_after_send {
                to_close.push(token);
            }
        }
        for token in to_close {
            self.close(io, token);
        }
    }

    fn close<T: Io>(&mut self, io: &mut T, token: Token) {
        if self.conns.remove(&token).is_some() {
            io.close(token);
            self.free.push(token);
            self.closed += 1;
        }
    }

    /// Runs until `done` holds; panics at `TEST_DEADLINE`.
    fn run<T: Io>(&mut self, io: &mut T, mut done: impl FnMut(&Echo) -> bool) {
        let deadline = Instant::now() + TEST_DEADLINE;
        while !done(self) {
            assert!(Instant::now() < deadline, "test deadline passed");
            for seen in poll_seen(io, Some(Duration::from_millis(100))) {
                self.handle(io, seen);
            }
            self.flush(io);
        }
    }
}

fn read_n(stream: &mut TcpStream, len: usize) -> Vec<u8> {
    let mut buf = vec![0; len];
    stream.read_exact(&mut buf).expect("read echo");
    buf
}

// ---- the tests ----

fn echo<T: Io>(io: &mut T) {
    let (listener, addr) = listener();
    io.add_listener(listener.as_raw_fd()).expect("add_listener");
    let client = thread::spawn(move || {
        let mut s = TcpStream::connect(addr).expect("connect");
        s.write_all(b"hello world\n").expect("write");
        assert_eq!(read_n(&mut s, 12), b"hello world\n");
        s.write_all(b"again\n").expect("write");
        assert_eq!(read_n(&mut s, 6), b"again\n");
        s.shutdown(Shutdown::Write).expect("shutdown");
        let mut rest = Vec::new();
        s.read_to_end(&mut rest).expect("read to EOF");
        assert!(rest.is_empty());
    });
    let mut echo = Echo::default();
    echo.run(io, |e| e.accepted == 1 && e.closed == 1);
    join_polling(io, client);
}

fn large_send<T: Io>(io: &mut T) {
    const LEN: usize = 8 << 20;
    let (listener, addr) = listener();
    io.add_listener(listener.as_raw_fd()).expect("add_listener");
    let client = thread::spawn(move || {
        let mut s = TcpStream::connect(addr).expect("connect");
        // Not reading for a while fills the socket buffers: the server must wait for room.
        thread::sleep(Duration::from_millis(200));
        let got = read_n(&mut s, LEN);
        assert!(
            got.iter().enumerate().all(|(i, &b)| b == (i % 251) as u8),
            "pattern"
        );
    });
    accept_one(io, 7);
    let data: Vec<u8> = (0..LEN).map(|i| (i % 251) as u8).collect();
    io.send(7, data);
    pump(io, |_, seen| match seen {
        Seen::SendDone(7, buf) => {
            assert!(
                buf.is_empty() && buf.capacity() >= LEN,
                "the same buffer, cleared"
            );
            true
        }
        other => panic!("unexpected {other:?}"),
    });
    client.join().expect("client");
    pump(io, |_, seen| matches!(seen, Seen::Closed(7)));
    io.close(7);
}

fn many_connections<T: Io>(io: &mut T) {
    const THREADS: usize = 4;
    const PER_THREAD: usize = 50;
    let (listener, addr) = listener();
    io.add_listener(listener.as_raw_fd()).expect("add_listener");
    let clients: Vec<_> = (0..THREADS)
        .map(|t| {
            thread::spawn(move || {
                let mut streams: Vec<TcpStream> = (0..PER_THREAD)
                    .map(|_| TcpStream::connect(addr).expect("connect"))
                    .collect();
                for (i, s) in streams.iter_mut().enumerate() {
                    let verb = if i % 2 == 0 { "close" } else { "keep" };
                    let line = format!("{verb} {t} {i:04}\n");
                    s.write_all(line.as_bytes()).expect("write");
                }
                for (i, mut s) in streams.into_iter().enumerate() {
                    let verb = if i % 2 == 0 { "close" } else { "keep" };
                    let line = format!("{verb} {t} {i:04}\n");
                    assert_eq!(read_n(&mut s, line.len()), line.as_bytes());
                    if i % 2 == 0 {
                        // The server closes this one: EOF follows the echo.
                        let mut rest = Vec::new();
                        s.read_to_end(&mut rest).expect("read to EOF");
                        assert!(rest.is_empty());
                    }
                }
            })
        })
        .collect();
    let mut echo = Echo::default();
    let total = THREADS * PER_THREAD;
    echo.run(io, |e| e.accepted == total && e.closed == total);
    for client in clients {
        join_polling(io, client);
    }
}

/// Several clients each push a burst much larger than one receive buffer and read it back.
fn bulk_echo<T: Io>(io: &mut T) {
    const CLIENTS: usize = 8;
    const BYTES: usize = 256 << 10;
    let (listener, addr) = listener();
    io.add_listener(listener.as_raw_fd()).expect("add_listener");
    let clients: Vec<_> = (0..CLIENTS)
        .map(|c| {
            thread::spawn(move || {
                let mut s = TcpStream::connect(addr).expect("connect");
                let data: Vec<u8> = (0..BYTES).map(|i| (i * 7 + c) as u8).collect();
                s.write_all(&data).expect("write");
                assert!(read_n(&mut s, BYTES) == data, "echo of client {c}");
            })
        })
        .collect();
    let mut echo = Echo::default();
    echo.run(io, |e| e.accepted == CLIENTS && e.closed == CLIENTS);
    for client in clients {
        join_polling(io, client);
    }
}

fn wake<T: Io>(io: &mut T, eventfd_flags: libc::c_int) {
    let efd = eventfd(eventfd_flags);
    io.set_wake_fd(efd).expect("set_wake_fd");
    for round in 0..3 {
        let waker = thread::spawn(move || {
            thread::sleep(Duration::from_millis(30));
            for _ in 0..3 {
                write_eventfd(efd);
            }
        });
        let start = Instant::now();
        let seen = poll_seen(io, None);
        assert!(
            matches!(seen.as_slice(), [Seen::Wake, ..]),
            "round {round}: {seen:?}"
        );
        assert!(start.elapsed() >= Duration::from_millis(20));
        waker.join().expect("waker");
        // The counter was drained: at most one more wake-up for writes that raced the read.
        let seen = poll_seen(io, Some(Duration::from_millis(20)));
        assert!(seen.iter().all(|s| matches!(s, Seen::Wake)), "{seen:?}");
    }
    // The eventfd stays open: the backend may still have an operation on it until dropped.
}

fn timeout<T: Io>(io: &mut T) {
    let (listener, _addr) = listener();
    io.add_listener(listener.as_raw_fd()).expect("add_listener");
    let efd = eventfd(0);
    io.set_wake_fd(efd).expect("set_wake_fd");
    let start = Instant::now();
    assert!(poll_seen(io, Some(Duration::from_millis(60))).is_empty());
    let took = start.elapsed();
    assert!(
        took >= Duration::from_millis(55),
        "returned early: {took:?}"
    );
    assert!(took < Duration::from_secs(2), "returned late: {took:?}");
    let start = Instant::now();
    assert!(poll_seen(io, Some(Duration::ZERO)).is_empty());
    assert!(start.elapsed() < Duration::from_millis(50));
    assert!(poll_seen(io, Some(Duration::from_micros(300))).is_empty());
    drop(listener);
}

/// A client that writes `byte` in a loop until the connection fails.
fn spammer(addr: SocketAddr, byte: u8) -> thread::JoinHandle<()> {
    thread::spawn(move || {
        let mut s = TcpStream::connect(addr).expect("connect");
        let chunk = [byte; 4096];
        while s.write_all(&chunk).is_ok() {}
    })
}

fn no_events_after_close<T: Io>(io: &mut T) {
    let (listener, addr) = listener();
    io.add_listener(listener.as_raw_fd()).expect("add_listener");
    let client = spammer(addr, b'x');
    accept_one(io, 3);
    pump(io, |_, seen| matches!(seen, Seen::Data(3, _)));
    // A send that cannot finish (the client never reads) is in flight when the token closes.
    io.send(3, vec![b'y'; 8 << 20]);
    let _ = poll_seen(io, Some(Duration::ZERO));
    io.close(3);
    let until = Instant::now() + Duration::from_millis(300);
    while Instant::now() < until {
        let seen = poll_seen(io, Some(Duration::from_millis(50)));
        assert!(seen.is_empty(), "events after close: {seen:?}");
    }
    join_polling(io, client);
}

fn token_reuse<T: Io>(io: &mut T) {
    let (listener, addr) = listener();
    io.add_listener(listener.as_raw_fd()).expect("add_listener");
    let old = spammer(addr, b'A');
    accept_one(io, 0);
    pump(io, |_, seen| matches!(seen, Seen::Data(0, _)));
    let (ready_tx, ready_rx) = mpsc::channel::<()>();
    let new = thread::spawn(move || {
        let mut s = TcpStream::connect(addr).expect("connect");
        ready_rx.recv().expect("go");
        s.write_all(b"BBBB").expect("write");
        assert_eq!(read_n(&mut s, 3), b"ok\n");
    });
    let mut new_fd = None;
    pump(io, |_, seen| match seen {
        Seen::Accepted(fd) => {
            new_fd = Some(fd);
            true
        }
        _ => false, // more data from the old connection
    });
    // Between two polls: the old connection (with a send in flight and completions possibly
    // queued) closes and its token goes at once to the new one.
    io.send(0, vec![b'z'; 8 << 20]);
    io.close(0);
    io.add_conn(0, new_fd.expect("accepted")).expect("add_conn");
    ready_tx.send(()).expect("go");
    let mut got = Vec::new();
    pump(io, |io, seen| match seen {
        Seen::Data(0, data) => {
            assert!(
                data.iter().all(|&b| b == b'B'),
                "old connection's data under new token"
            );
            got.extend_from_slice(&data);
            if got.len() == 4 {
                io.send(0, b"ok\n".to_vec());
            }
            false
        }
        Seen::SendDone(0, _) => true,
        other => panic!("unexpected {other:?}"),
    });
    new.join().expect("new client");
    pump(io, |_, seen| matches!(seen, Seen::Closed(0)));
    io.close(0);
    join_polling(io, old);
}

fn send_to_vanished_peer<T: Io>(io: &mut T) {
    let (listener, addr) = listener();
    io.add_listener(listener.as_raw_fd()).expect("add_listener");
    let client = thread::spawn(move || {
        let s = TcpStream::connect(addr).expect("connect");
        thread::sleep(Duration::from_millis(100));
        // Linger 0: close sends a reset, as a crashed client's kernel would.
        let linger = libc::linger {
            l_onoff: 1,
            l_linger: 0,
        };
        // SAFETY: `linger` is valid for reads of its size for the call.
        let ret = unsafe {
            libc::setsockopt(
                s.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_LINGER,
                (&linger as *const libc::linger).cast(),
                std::mem::size_of::<libc::linger>() as libc::socklen_t,
            )
        };
        assert_eq!(ret, 0);
    });
    accept_one(io, 5);
    io.send(5, vec![b'q'; 8 << 20]);
    let mut failed = false;
    pump(io, |_, seen| match seen {
        Seen::SendFailed(5) => {
            failed = true;
            true
        }
        Seen::Closed(5) => false,
        other => panic!("unexpected {other:?}"),
    });
    assert!(failed);
    io.close(5);
    join_polling(io, client);
}

fn empty_send<T: Io>(io: &mut T) {
    let (listener, addr) = listener();
    io.add_listener(listener.as_raw_fd()).expect("add_listener");
    let client = thread::spawn(move || {
        let mut s = TcpStream::connect(addr).expect("connect");
        let mut rest = Vec::new();
        s.read_to_end(&mut rest).expect("read to EOF");
        assert!(rest.is_empty());
    });
    accept_one(io, 1);
    io.send(1, Vec::with_capacity(64));
    pump(io, |_, seen| match seen {
        Seen::SendDone(1, buf) => buf.is_empty(),
        other => panic!("unexpected {other:?}"),
    });
    io.close(1);
    join_polling(io, client);
    let seen = poll_seen(io, Some(Duration::from_millis(20)));
    assert!(seen.iter().all(|s| s.token() != Some(1)), "{seen:?}");
}

// ---- instantiation per backend ----

fn new_epoll() -> Option<Epoll> {
    Some(Epoll::new().expect("epoll"))
}

macro_rules! conformance {
    ($backend:ident, $make:path) => {
        mod $backend {
            use super::*;

            #[test]
            fn echo() {
                if let Some(mut io) = $make() {
                    super::echo(&mut io);
                }
            }
            #[test]
            fn large_send() {
                if let Some(mut io) = $make() {
                    super::large_send(&mut io);
                }
            }
            #[test]
            fn many_connections() {
                if let Some(mut io) = $make() {
                    super::many_connections(&mut io);
                }
            }
            #[test]
            fn bulk_echo() {
                if let Some(mut io) = $make() {
                    super::bulk_echo(&mut io);
                }
            }
            #[test]
            fn wake_nonblocking_eventfd() {
                if let Some(mut io) = $make() {
                    super::wake(&mut io, libc::EFD_NONBLOCK);
                }
            }
            #[test]
            fn wake_blocking_eventfd() {
                if let Some(mut io) = $make() {
                    super::wake(&mut io, 0);
                }
            }
            #[test]
            fn timeout() {
                if let Some(mut io) = $make() {
                    super::timeout(&mut io);
                }
            }
            #[test]
            fn no_events_after_close() {
                if let Some(mut io) = $make() {
                    super::no_events_after_close(&mut io);
                }
            }
            #[test]
            fn token_reuse() {
                if let Some(mut io) = $make() {
                    super::token_reuse(&mut io);
                }
            }
            #[test]
            fn send_to_vanished_peer() {
                if let Some(mut io) = $make() {
                    super::send_to_vanished_peer(&mut io);
                }
            }
            #[test]
            fn empty_send() {
                if let Some(mut io) = $make() {
                    super::empty_send(&mut io);
                }
            }
        }
    };
}

fn new_uring() -> Option<Uring> {
    match Uring::new(256) {
        Ok(ring) => Some(ring),
        Err(e) => {
            println!("skipping: io_uring cannot be set up here ({e})");
            None
        }
    }
}

conformance!(epoll_backend, new_epoll);
/// A ring with two 1 KiB receive buffers: multishot recvs run out of buffers all the time
/// (ENOBUFS) and must be re-armed without losing or reordering data.
fn new_uring_starved() -> Option<Uring> {
    match Uring::with_recv_buffers(64, 2, 1024) {
        Ok(ring) => Some(ring),
        Err(e) => {
            println!("skipping: io_uring cannot be set up here ({e})");
            None
        }
    }
}

conformance!(uring_backend, new_uring);
conformance!(uring_starved_backend, new_uring_starved);
