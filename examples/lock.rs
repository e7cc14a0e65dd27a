//! Distributed locks on shardis (or any Redis 7.0): a single-server lock and a Redlock client.
//!
//! - Acquire: `SET key token NX PX ttl` with a random token, retried until a deadline.
//! - Release: a compare-and-delete script, so only the holder's token deletes the key (a lock
//!   that expired and was taken by someone else is left alone).
//! - Watchdog: a thread renewing the TTL with a compare-and-pexpire script every third of the
//!   TTL while the holder works, so long critical sections keep the lock.
//! - Redlock: the same token on N independent servers; the lock is held when a majority
//!   accepted it within the validity time (TTL minus the time spent and a clock-drift margin),
//!   otherwise every server is released.
//!
//! Run: `cargo run --release --example lock -- 6379 6380 6381` (ports of independent servers;
//! one port runs the single-server demo only).

#![allow(dead_code)]

use std::io::{self, BufRead, BufReader, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// A RESP2 reply.
#[derive(Debug, Clone, PartialEq)]
pub enum Reply {
    Status(String),
    Error(String),
    Int(i64),
    Bulk(Option<Vec<u8>>),
    Array(Option<Vec<Reply>>),
}

/// A minimal blocking RESP2 connection.
pub struct Conn {
    w: TcpStream,
    r: BufReader<TcpStream>,
}

impl Conn {
    pub fn connect(port: u16) -> io::Result<Conn> {
        let s = TcpStream::connect(("127.0.0.1", port))?;
        s.set_nodelay(true)?;
        s.set_read_timeout(Some(Duration::from_secs(30)))?;
        Ok(Conn {
            r: BufReader::new(s.try_clone()?),
            w: s,
        })
    }

    pub fn cmd(&mut self, args: &[&[u8]]) -> io::Result<Reply> {
        let mut buf = format!("*{}\r\n", args.len()).into_bytes();
        for a in args {
            buf.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
            buf.extend_from_slice(a);
            buf.extend_from_slice(b"\r\n");
        }
        self.w.write_all(&buf)?;
        self.read()
    }

    fn line(&mut self) -> io::Result<String> {
        let mut l = String::new();
        if self.r.read_line(&mut l)? == 0 {
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "closed"));
        }
        Ok(l.trim_end_matches("\r\n").to_string())
    }

    fn read(&mut self) -> io::Result<Reply> {
        let l = self.line()?;
        let bad = || io::Error::new(io::ErrorKind::InvalidData, "bad reply");
        let (t, rest) = l.split_at(1.min(l.len()));
        let n = || rest.parse::<i64>().map_err(|_| bad());
        Ok(match t {
            "+" => Reply::Status(rest.to_string()),
            "-" => Reply::Error(rest.to_string()),
            ":" => Reply::Int(n()?),
            "$" => {
                let len = n()?;
                if len < 0 {
                    Reply::Bulk(None)
                } else {
                    let mut b = vec![0u8; len as usize + 2];
                    io::Read::read_exact(&mut self.r, &mut b)?;
                    b.truncate(len as usize);
                    Reply::Bulk(Some(b))
                }
            }
            "*" => {
                let len = n()?;
                if len < 0 {
                    Reply::Array(None)
                } else {
                    let mut v = Vec::with_capacity(len as usize);
                    for _ in 0..len {
                        v.push(self.read()?);
                    }
                    Reply::Array(Some(v))
                }
            }
            _ => return Err(bad()),
        })
    }

    /// Runs a script by its sha, loading it on NOSCRIPT.
    pub fn script(&mut self, body: &str, keys: &[&[u8]], args: &[&[u8]]) -> io::Result<Reply> {
        let sha = sha1_hex(body.as_bytes());
        let nkeys = keys.len().to_string();
        let mut argv: Vec<&[u8]> = vec![b"EVALSHA", sha.as_bytes(), nkeys.as_bytes()];
        argv.extend_from_slice(keys);
        argv.extend_from_slice(args);
        let r = self.cmd(&argv)?;
        if matches!(&r, Reply::Error(e) if e.starts_with("NOSCRIPT")) {
            argv[0] = b"EVAL";
            argv[1] = body.as_bytes();
            return self.cmd(&argv);
        }
        Ok(r)
    }
}

/// Deletes the key only while it still holds our token.
pub const RELEASE_SCRIPT: &str = "if redis.call('get', KEYS[1]) == ARGV[1] then \
     return redis.call('del', KEYS[1]) else return 0 end";

/// Extends the TTL only while the key still holds our token.
pub const RENEW_SCRIPT: &str = "if redis.call('get', KEYS[1]) == ARGV[1] then \
     return redis.call('pexpire', KEYS[1], ARGV[2]) else return 0 end";

/// SHA-1 in hex (script ids), written out here to keep the example dependency-free.
pub fn sha1_hex(data: &[u8]) -> String {
    let mut h: [u32; 5] = [0x67452301, 0xEFCDAB89, 0x98BADCFE, 0x10325476, 0xC3D2E1F0];
    let mut msg = data.to_vec();
    let bit_len = (data.len() as u64).wrapping_mul(8);
    msg.push(0x80);
    while msg.len() % 64 != 56 {
        msg.push(0);
    }
    msg.extend_from_slice(&bit_len.to_be_bytes());
    for chunk in msg.chunks(64) {
        let mut w = [0u32; 80];
        for i in 0..16 {
            w[i] = u32::from_be_bytes([
                chunk[4 * i],
                chunk[4 * i + 1],
                chunk[4 * i + 2],
                chunk[4 * i + 3],
            ]);
        }
        for i in 16..80 {
            w[i] = (w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16]).rotate_left(1);
        }
        let [mut a, mut b, mut c, mut d, mut e] = h;
        for (i, wi) in w.iter().enumerate() {
            let (f, k) = match i {
                0..=19 => ((b & c) | (!b & d), 0x5A827999),
                20..=39 => (b ^ c ^ d, 0x6ED9EBA1),
                40..=59 => ((b & c) | (b & d) | (c & d), 0x8F1BBCDC),
                _ => (b ^ c ^ d, 0xCA62C1D6),
            };
            let t = a
                .rotate_left(5)
                .wrapping_add(f)
                .wrapping_add(e)
                .wrapping_add(k)
                .wrapping_add(*wi);
            e = d;
            d = c;
            c = b.rotate_left(30);
            b = a;
            a = t;
        }
        for (x, y) in h.iter_mut().zip([a, b, c, d, e]) {
            *x = x.wrapping_add(y);
        }
    }
    h.iter().map(|x| format!("{x:08x}")).collect()
}

/// A random token: 20 bytes from the OS, in hex.
pub fn random_token() -> String {
    let mut b = [0u8; 20];
    if let Ok(mut f) = std::fs::File::open("/dev/urandom") {
        let _ = io::Read::read_exact(&mut f, &mut b);
    }
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// A held lock on one server.
pub struct Lock {
    pub key: String,
    pub token: String,
    pub ttl_ms: u64,
}

/// Tries `SET key token NX PX ttl` until it succeeds or `wait` has passed.
pub fn acquire(
    conn: &mut Conn,
    key: &str,
    ttl_ms: u64,
    wait: Duration,
) -> io::Result<Option<Lock>> {
    let token = random_token();
    let deadline = Instant::now() + wait;
    let ttl = ttl_ms.to_string();
    let mut backoff_us = 50u64;
    loop {
        let r = conn.cmd(&[
            b"SET",
            key.as_bytes(),
            token.as_bytes(),
            b"NX",
            b"PX",
            ttl.as_bytes(),
        ])?;
        if r == Reply::Status("OK".into()) {
            return Ok(Some(Lock {
                key: key.to_string(),
                token,
                ttl_ms,
            }));
        }
        if Instant::now() >= deadline {
            return Ok(None);
        }
        std::thread::sleep(Duration::from_micros(backoff_us));
        backoff_us = (backoff_us * 2).min(5_000);
    }
}

/// Releases the lock if we still hold it. True when our key was deleted.
pub fn release(conn: &mut Conn, lock: &Lock) -> io::Result<bool> {
    let r = conn.script(
        RELEASE_SCRIPT,
        &[lock.key.as_bytes()],
        &[lock.token.as_bytes()],
    )?;
    Ok(r == Reply::Int(1))
}

/// Extends the lock's TTL if we still hold it.
pub fn renew(conn: &mut Conn, lock: &Lock) -> io::Result<bool> {
    let ttl = lock.ttl_ms.to_string();
    let r = conn.script(
        RENEW_SCRIPT,
        &[lock.key.as_bytes()],
        &[lock.token.as_bytes(), ttl.as_bytes()],
    )?;
    Ok(r == Reply::Int(1))
}

/// Renews a lock every third of its TTL on its own connection until stopped.
///
/// A lease can still be lost: if this thread (or the whole client process) is stalled for
/// longer than the TTL, the key expires and another client may take the lock. `stop` reports
/// the longest time the lease went without a successful renewal, so the holder can tell.
pub struct Watchdog {
    stop: Arc<AtomicBool>,
    longest_gap_ms: Arc<std::sync::atomic::AtomicU64>,
    handle: Option<JoinHandle<()>>,
}

impl Watchdog {
    pub fn start(port: u16, lock: &Lock) -> io::Result<Watchdog> {
        let acquired = Instant::now();
        let mut conn = Conn::connect(port)?;
        let stop = Arc::new(AtomicBool::new(false));
        let longest_gap_ms = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let lock = Lock {
            key: lock.key.clone(),
            token: lock.token.clone(),
            ttl_ms: lock.ttl_ms,
        };
        let (s, gap) = (stop.clone(), longest_gap_ms.clone());
        let period = Duration::from_millis((lock.ttl_ms / 3).max(1));
        let handle = std::thread::spawn(move || {
            let mut last = acquired;
            let mut next = acquired + period;
            let note = |since: Instant| {
                let ms = since.elapsed().as_millis() as u64;
                gap.fetch_max(ms, Ordering::Relaxed);
            };
            while !s.load(Ordering::Relaxed) {
                if Instant::now() >= next {
                    let renewed = matches!(renew(&mut conn, &lock), Ok(true));
                    note(last);
                    if !renewed {
                        return;
                    }
                    last = Instant::now();
                    next = last + period;
                }
                std::thread::sleep(Duration::from_millis(5));
            }
            note(last);
        });
        Ok(Watchdog {
            stop,
            longest_gap_ms,
            handle: Some(handle),
        })
    }

    /// Stops renewing. Returns the longest stretch, in milliseconds, the lease went without a
    /// successful renewal (from acquisition to the first renewal, between renewals, and from
    /// the last one to now); at or past the TTL the lock may have expired meanwhile.
    pub fn stop(mut self) -> u64 {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
        self.longest_gap_ms.load(Ordering::Relaxed)
    }
}

/// A Redlock client over independent servers.
pub struct Redlock {
    conns: Vec<Conn>,
    /// Clock drift allowance: 1 % of the TTL plus 2 ms, as the Redlock description suggests.
    drift_factor: f64,
}

/// A lock held on a majority of servers, valid until `valid_until`.
pub struct RedLockHeld {
    pub lock: Lock,
    pub valid_until: Instant,
}

impl Redlock {
    pub fn new(ports: &[u16]) -> io::Result<Redlock> {
        Ok(Redlock {
            conns: ports
                .iter()
                .map(|&p| Conn::connect(p))
                .collect::<io::Result<_>>()?,
            drift_factor: 0.01,
        })
    }

    /// One attempt per round on every server; retries rounds until `wait` has passed.
    pub fn lock(
        &mut self,
        key: &str,
        ttl_ms: u64,
        wait: Duration,
    ) -> io::Result<Option<RedLockHeld>> {
        let deadline = Instant::now() + wait;
        let quorum = self.conns.len() / 2 + 1;
        let ttl = ttl_ms.to_string();
        loop {
            let token = random_token();
            let start = Instant::now();
            let mut granted = 0;
            for c in &mut self.conns {
                let r = c.cmd(&[
                    b"SET",
                    key.as_bytes(),
                    token.as_bytes(),
                    b"NX",
                    b"PX",
                    ttl.as_bytes(),
                ]);
                if matches!(r, Ok(Reply::Status(ref s)) if s == "OK") {
                    granted += 1;
                }
            }
            let drift = Duration::from_millis((ttl_ms as f64 * self.drift_factor) as u64 + 2);
            let elapsed = start.elapsed();
            let lock = Lock {
                key: key.to_string(),
                token,
                ttl_ms,
            };
            if granted >= quorum && elapsed + drift < Duration::from_millis(ttl_ms) {
                let valid_until = start + Duration::from_millis(ttl_ms) - drift;
                return Ok(Some(RedLockHeld { lock, valid_until }));
            }
            self.unlock(&lock);
            if Instant::now() >= deadline {
                return Ok(None);
            }
            std::thread::sleep(Duration::from_millis(
                1 + (random_token().as_bytes()[0] % 10) as u64,
            ));
        }
    }

    /// Releases on every server (also ones that did not grant it: a reply may have been lost).
    pub fn unlock(&mut self, lock: &Lock) {
        for c in &mut self.conns {
            let _ = release(c, lock);
        }
    }
}

fn main() -> io::Result<()> {
    let ports: Vec<u16> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let Some(&first) = ports.first() else {
        eprintln!("usage: lock PORT [PORT...]");
        std::process::exit(2);
    };
    let mut conn = Conn::connect(first)?;
    let lock = acquire(&mut conn, "example:lock", 1_000, Duration::from_secs(5))?
        .ok_or_else(|| io::Error::other("could not acquire example:lock"))?;
    println!("acquired example:lock with token {}", lock.token);
    let dog = Watchdog::start(first, &lock)?;
    std::thread::sleep(Duration::from_millis(2_500));
    let gap = dog.stop();
    println!("longest stretch without a renewal: {gap} ms (TTL 1000 ms)");
    println!(
        "still held after 2.5 s thanks to the watchdog: {}",
        renew(&mut conn, &lock)?
    );
    println!("released: {}", release(&mut conn, &lock)?);
    if ports.len() >= 3 {
        let mut rl = Redlock::new(&ports)?;
        match rl.lock("example:redlock", 2_000, Duration::from_secs(5))? {
            Some(h) => {
                println!(
                    "redlock held on a majority of {} servers for {:?}",
                    ports.len(),
                    h.valid_until.saturating_duration_since(Instant::now())
                );
                rl.unlock(&h.lock);
            }
            None => println!("redlock not acquired"),
        }
    }
    Ok(())
}
