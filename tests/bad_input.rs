//! Malformed input: the server must survive it, keep serving others, give memory back, and
//! answer it with Redis's exact error replies.
//!
//! - `malformed_flood_*`: 10,000 seeded malformed payloads (garbage, bad and huge multibulk and
//!   bulk lengths, big bulk claims followed by a disconnect, truncated frames, unbalanced
//!   quotes, inline lines over 64 KiB, random binary) over 8 threads that each keep a few
//!   connections open at once, while a witness client does SET/GET throughout and must get
//!   every reply within its deadline. Afterwards the server still answers and its RSS (and
//!   INFO's `used_memory` and `connected_clients`, when it has INFO) is back near its baseline.
//!   `SHARDIS_BAD_INPUT_PAYLOADS` changes the count; `SHARDIS_SEED` reproduces a run.
//! - `canonical_*`: a fixed table of malformed inputs with the bytes Redis 7.0 answers and
//!   whether it closes the connection; redis-server is checked against the table, shardis
//!   against a live redis-server.

mod common;

use common::rng::{self, Rng};
use common::{env_usize, show, show_short, wait_for, RespConn, ServerKind, TestServer};
use std::collections::VecDeque;
use std::io::Write;
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

/// Threads sending payloads.
const THREADS: usize = 8;
/// Connections a sending thread keeps open before closing its oldest.
const PENDING_PER_THREAD_MAX: usize = 4;
/// How long a server may take to close a connection after our end of input.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(10);
/// The witness's deadline for each reply.
const WITNESS_REPLY_TIMEOUT: Duration = Duration::from_secs(10);
/// Memory the server may keep above its baseline after the flood.
const MEMORY_SLACK_BYTES: u64 = 64 << 20;
/// How long memory and client counts may take to settle after the flood.
const SETTLE_TIMEOUT: Duration = Duration::from_secs(30);

#[test]
fn malformed_flood_redis() {
    flood("malformed_flood_redis", ServerKind::Redis, &[]);
}

#[test]
fn malformed_flood_shardis() {
    flood("malformed_flood_shardis", ServerKind::Shardis, &[]);
}

#[test]
fn canonical_malformed_inputs_redis_matches_table() {
    let server = TestServer::start(ServerKind::Redis, &[]);
    let mut failures = Vec::new();
    for case in CANONICAL {
        let got = run_canonical(&server, case);
        let closed = if case.closes {
            Closed::ByItself
        } else {
            Closed::AfterEndOfInput
        };
        let expected = (case.reply.to_vec(), closed);
        if got != expected {
            failures.push(format!(
                "{}: sent {}\n  expected {} ({:?})\n  got      {} ({:?})",
                case.name,
                show_short(case.input, 60),
                show(&expected.0),
                expected.1,
                show(&got.0),
                got.1
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "redis-server differs from the table:\n{}",
        failures.join("\n")
    );
}

#[test]
fn canonical_malformed_inputs_shardis_matches_redis() {
    let redis = TestServer::start(ServerKind::Redis, &[]);
    let shardis = TestServer::start(ServerKind::Shardis, &[]);
    let mut failures = Vec::new();
    for case in CANONICAL {
        let expected = run_canonical(&redis, case);
        let got = run_canonical(&shardis, case);
        if got.1 == Closed::Never {
            failures.push(format!(
                "{}: shardis never closed the connection; stopping",
                case.name
            ));
            break;
        }
        if got != expected {
            failures.push(format!(
                "{}: sent {}\n  redis   {} ({:?})\n  shardis {} ({:?})",
                case.name,
                show_short(case.input, 60),
                show(&expected.0),
                expected.1,
                show(&got.0),
                got.1
            ));
        }
    }
    shardis.assert_alive();
    assert!(
        failures.is_empty(),
        "shardis differs from redis-server:\n{}",
        failures.join("\n")
    );
}

/// One canonical malformed input and Redis 7.0's answer to it.
struct Canonical {
    name: &'static str,
    input: &'static [u8],
    /// Everything Redis writes before the connection ends.
    reply: &'static [u8],
    /// Whether Redis closes the connection by itself (a protocol error). When it does not, the
    /// connection must stay open until the test half-closes it, and then be closed.
    closes: bool,
}

const INVALID_MULTIBULK: &[u8] = b"-ERR Protocol error: invalid multibulk length\r\n";
const INVALID_BULK: &[u8] = b"-ERR Protocol error: invalid bulk length\r\n";
const UNBALANCED: &[u8] = b"-ERR Protocol error: unbalanced quotes in request\r\n";

/// 70,000 bytes: more than an inline request or a length line may be (64 KiB).
const LONG_LINE: &[u8] = &[b'7'; 70_000];
const LONG_MULTIBULK_LINE: &[u8] = &{
    let mut line = [b'7'; 70_000];
    line[0] = b'*';
    line
};
const LONG_BULK_LINE: &[u8] = &{
    let mut line = [b'7'; 70_000];
    let head = b"*1\r\n$";
    let mut i = 0;
    while i < head.len() {
        line[i] = head[i];
        i += 1;
    }
    line
};

const CANONICAL: &[Canonical] = &[
    Canonical {
        name: "multibulk count not a number",
        input: b"*abc\r\n",
        reply: INVALID_MULTIBULK,
        closes: true,
    },
    Canonical {
        name: "multibulk count over INT_MAX",
        input: b"*2147483648\r\n",
        reply: INVALID_MULTIBULK,
        closes: true,
    },
    Canonical {
        name: "multibulk count with a sign",
        input: b"*+1\r\n$4\r\nPING\r\n",
        reply: INVALID_MULTIBULK,
        closes: true,
    },
    Canonical {
        name: "bulk length not a number",
        input: b"*1\r\n$abc\r\n",
        reply: INVALID_BULK,
        closes: true,
    },
    Canonical {
        name: "bulk length negative",
        input: b"*1\r\n$-1\r\n",
        reply: INVALID_BULK,
        closes: true,
    },
    Canonical {
        name: "bulk length over proto-max-bulk-len",
        input: b"*1\r\n$536870913\r\n",
        reply: INVALID_BULK,
        closes: true,
    },
    Canonical {
        name: "array element not a bulk",
        input: b"*1\r\nGET\r\n",
        reply: b"-ERR Protocol error: expected '$', got 'G'\r\n",
        closes: true,
    },
    Canonical {
        name: "integer inside a request",
        input: b"*2\r\n$4\r\nECHO\r\n:1\r\n",
        reply: b"-ERR Protocol error: expected '$', got ':'\r\n",
        closes: true,
    },
    Canonical {
        name: "unbalanced double quote",
        input: b"SET \"key\r\n",
        reply: UNBALANCED,
        closes: true,
    },
    Canonical {
        name: "unbalanced single quote",
        input: b"ECHO 'a\r\n",
        reply: UNBALANCED,
        closes: true,
    },
    Canonical {
        name: "closing quote not followed by space",
        input: b"ECHO \"a\"b\r\n",
        reply: UNBALANCED,
        closes: true,
    },
    Canonical {
        name: "inline request over 64 KiB",
        input: LONG_LINE,
        reply: b"-ERR Protocol error: too big inline request\r\n",
        closes: true,
    },
    Canonical {
        name: "multibulk count line over 64 KiB",
        input: LONG_MULTIBULK_LINE,
        reply: b"-ERR Protocol error: too big mbulk count string\r\n",
        closes: true,
    },
    Canonical {
        name: "bulk length line over 64 KiB",
        input: LONG_BULK_LINE,
        reply: b"-ERR Protocol error: too big bulk count string\r\n",
        closes: true,
    },
    Canonical {
        name: "replies before a protocol error",
        input: b"PING\r\n*1\r\n$4\r\nPING\r\n*x\r\n",
        reply: b"+PONG\r\n+PONG\r\n-ERR Protocol error: invalid multibulk length\r\n",
        closes: true,
    },
    Canonical {
        name: "empty lines",
        input: b"\r\n\r\n\n",
        reply: b"",
        closes: false,
    },
    Canonical {
        name: "empty and null multibulks",
        input: b"*0\r\n*-1\r\nPING\r\n",
        reply: b"+PONG\r\n",
        closes: false,
    },
    Canonical {
        name: "inline with escapes",
        input: b"SET canon \"a\\x41\\n\"\r\nGET canon\r\n",
        reply: b"+OK\r\n$3\r\naA\n\r\n",
        closes: false,
    },
    Canonical {
        name: "inline with single quotes",
        input: b"ECHO 'b \"c'\r\n",
        reply: b"$4\r\nb \"c\r\n",
        closes: false,
    },
    Canonical {
        name: "inline unknown command",
        input: b"FOO bar\r\n",
        reply: b"-ERR unknown command 'FOO', with args beginning with: 'bar' \r\n",
        closes: false,
    },
    Canonical {
        name: "inline ended by LF alone",
        input: b"PING\n",
        reply: b"+PONG\r\n",
        closes: false,
    },
    Canonical {
        name: "bulk outside a multibulk",
        input: b"$5\r\nhellx\r\n",
        reply: b"-ERR unknown command '$5', with args beginning with: \r\n-ERR unknown command \
            'hellx', with args beginning with: \r\n",
        closes: false,
    },
    // Redis looks for the inline line end with strchr, which stops at the NUL: the request
    // never completes and the server waits for more input.
    Canonical {
        name: "inline NUL byte hides the line end",
        input: b"ECHO a\x00b\r\n",
        reply: b"",
        closes: false,
    },
    Canonical {
        name: "wrong arity through multibulk",
        input: b"*3\r\n$4\r\nECHO\r\n$1\r\na\r\n$1\r\nb\r\n",
        reply: b"-ERR wrong number of arguments for 'echo' command\r\n",
        closes: false,
    },
    Canonical {
        name: "empty command name",
        input: b"*1\r\n$0\r\n\r\n",
        reply: b"-ERR unknown command '', with args beginning with: \r\n",
        closes: false,
    },
    Canonical {
        name: "truncated request then end of input",
        input: b"*2\r\n$3\r\nGET\r\n$1",
        reply: b"",
        closes: false,
    },
    Canonical {
        name: "big bulk claim then end of input",
        input: b"*1\r\n$100000000\r\nabc",
        reply: b"",
        closes: false,
    },
];

/// How a connection that was sent a canonical input ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Closed {
    /// The server closed it without waiting for our end of input (a protocol error).
    ByItself,
    /// It stayed open until our half-close, then the server closed it.
    AfterEndOfInput,
    /// It stayed open even after our half-close.
    Never,
}

/// How long a connection that should stay open is watched before the half-close. A server
/// that is slower than this to close on its own is only missed, never wrongly failed.
const STAYS_OPEN_WATCH: Duration = Duration::from_millis(300);

/// Sends a canonical input on a new connection; returns what the server wrote and how the
/// connection ended.
fn run_canonical(server: &TestServer, case: &Canonical) -> (Vec<u8>, Closed) {
    let mut conn = server.conn();
    // A server that closes early may refuse the rest of a long input: that is not a failure.
    let _ = conn.try_send_raw(case.input);
    let (mut bytes, closed) = conn.read_until_close(if case.closes {
        CLOSE_TIMEOUT
    } else {
        STAYS_OPEN_WATCH
    });
    if closed {
        return (bytes, Closed::ByItself);
    }
    conn.shutdown_write();
    let (rest, closed) = conn.read_until_close(CLOSE_TIMEOUT);
    bytes.extend(rest);
    (
        bytes,
        if closed {
            Closed::AfterEndOfInput
        } else {
            Closed::Never
        },
    )
}

/// How a payload's connection ends.
#[derive(Debug, Clone, Copy)]
enum Ending {
    /// Half-close, then read until the server closes (it must, within `CLOSE_TIMEOUT`).
    HalfClose,
    /// Close without reading.
    Drop,
    /// Close with a reset (SO_LINGER 0).
    Reset,
}

struct Payload {
    kind: &'static str,
    bytes: Vec<u8>,
    ending: Ending,
}

/// Words for inline requests: harmless commands and nonsense, never anything that changes
/// server state beyond a few keys.
const INLINE_WORDS: &[&[u8]] = &[
    b"SET", b"GET", b"ECHO", b"PING", b"EXISTS", b"bad:k", b"x", b"", b"FOO",
];

/// Makes the bytes of one kind of payload.
type PayloadFn = fn(&mut Rng) -> Vec<u8>;

/// The kinds of malformed payload, each with its generator.
const PAYLOAD_KINDS: &[(&str, PayloadFn)] = &[
    ("random binary", random_binary),
    ("bad multibulk count", bad_multibulk_count),
    ("bad bulk length", bad_bulk_length),
    ("big bulk claim then disconnect", big_bulk_claim),
    ("huge multibulk count then disconnect", huge_multibulk_count),
    ("truncated frame", truncated_frame),
    ("unbalanced quotes", unbalanced_quotes),
    ("oversized inline line", oversized_inline),
    ("inline garbage", inline_garbage),
    ("valid request then garbage", valid_then_garbage),
    ("wrong type inside a request", wrong_type_inside),
];

fn payload(rng: &mut Rng) -> Payload {
    let (kind, generate) = *rng.pick(PAYLOAD_KINDS);
    let bytes = generate(rng);
    let ending = match rng.below(4) {
        0 | 1 => Ending::HalfClose,
        2 => Ending::Drop,
        _ => Ending::Reset,
    };
    Payload {
        kind,
        bytes,
        ending,
    }
}

fn random_binary(rng: &mut Rng) -> Vec<u8> {
    let len = rng.range(1, 512) as usize;
    rng.bytes(len)
}

fn bad_multibulk_count(rng: &mut Rng) -> Vec<u8> {
    let count: &[u8] = rng.pick_bytes(&[
        &b"-5"[..],
        b"abc",
        b"",
        b"2147483648",
        b"99999999999999999999",
        b" 3",
        b"1x",
    ]);
    let mut b = [&b"*"[..], count, b"\r\n"].concat();
    let tail = rng.below(40) as usize;
    b.extend(rng.bytes_from(tail, b"$*\r\n0123abc"));
    b
}

fn bad_bulk_length(rng: &mut Rng) -> Vec<u8> {
    let len: &[u8] = rng.pick_bytes(&[
        &b"-5"[..],
        b"-2",
        b"536870913",
        b"1000000000",
        b"abc",
        b"",
        b"1x",
        b"99999999999999999999",
    ]);
    [&b"*2\r\n$3\r\nGET\r\n$"[..], len, b"\r\nabc\r\n"].concat()
}

/// A bulk length the server accepts (up to proto-max-bulk-len), then a few bytes of it.
fn big_bulk_claim(rng: &mut Rng) -> Vec<u8> {
    let claim = rng.range(1_000_000, 536_870_912);
    let mut b = format!("*2\r\n$4\r\nECHO\r\n${claim}\r\n").into_bytes();
    let tail = rng.below(100) as usize;
    b.extend(rng.bytes(tail));
    b
}

fn huge_multibulk_count(rng: &mut Rng) -> Vec<u8> {
    format!("*{}\r\n$1\r\na\r\n", rng.range(100_000, 2_147_483_647)).into_bytes()
}

fn truncated_frame(rng: &mut Rng) -> Vec<u8> {
    let len = rng.below(64) as usize;
    let value = rng.bytes(len);
    let name: &[u8] = rng.pick_bytes(&[&b"SET"[..], b"ECHO", b"GETSET"]);
    let full = common::resp::encode_command(&[name, b"bad:k", &value]);
    let cut = rng.index(full.len());
    full[..cut].to_vec()
}

fn unbalanced_quotes(rng: &mut Rng) -> Vec<u8> {
    let word: &[u8] = rng.pick_bytes(INLINE_WORDS);
    let quote: &[u8] = rng.pick_bytes(&[
        &b" \"abc"[..],
        b" 'x",
        b" \"a\"b",
        b" \"\\x4",
        b" 'a'b",
        b" \"\\\"",
    ]);
    [word, quote, b"\r\n"].concat()
}

/// More than the 64 KiB an inline request may be, with or without its line end.
fn oversized_inline(rng: &mut Rng) -> Vec<u8> {
    let len = 65_536 + rng.range(1, 16_384) as usize;
    let mut b = rng.bytes_from(len, b"abc \"'");
    if rng.chance(1, 2) {
        b.extend_from_slice(b"\r\n");
    }
    b
}

fn inline_garbage(rng: &mut Rng) -> Vec<u8> {
    let mut b = Vec::new();
    for _ in 0..rng.range(1, 8) {
        let word: &[u8] = rng.pick_bytes(INLINE_WORDS);
        let separator: &[u8] =
            rng.pick_bytes(&[&b" "[..], b"  ", b"\t", b"\x00", b"\r", b"\r\n", b"\n"]);
        b.extend_from_slice(word);
        b.extend_from_slice(separator);
    }
    b
}

fn valid_then_garbage(rng: &mut Rng) -> Vec<u8> {
    let mut b = b"*1\r\n$4\r\nPING\r\n".to_vec();
    let tail = rng.range(1, 64) as usize;
    b.extend(rng.bytes(tail));
    b
}

fn wrong_type_inside(rng: &mut Rng) -> Vec<u8> {
    let item: &[u8] = rng.pick_bytes(&[
        &b":1\r\n"[..],
        b"+OK\r\n",
        b"-ERR\r\n",
        b"*1\r\n",
        b"%1\r\n",
        b"_\r\n",
    ]);
    [&b"*2\r\n$4\r\nECHO\r\n"[..], item].concat()
}

/// A connection whose payload was sent and that is waiting to be ended.
struct Pending {
    index: usize,
    kind: &'static str,
    stream: TcpStream,
    ending: Ending,
}

/// Writes `bytes` in a few random pieces, so that frames are cut at odd places. A write error
/// (the server may already have closed after a protocol error) ends the sending quietly.
fn send_in_pieces(stream: &mut TcpStream, bytes: &[u8], rng: &mut Rng) {
    let mut rest = bytes;
    while !rest.is_empty() {
        let piece = if rng.chance(1, 2) {
            rest.len()
        } else {
            rng.range(1, rest.len() as i64) as usize
        };
        if stream.write_all(&rest[..piece]).is_err() {
            return;
        }
        rest = &rest[piece..];
    }
}

fn end_connection(pending: Pending) -> Result<(), String> {
    match pending.ending {
        Ending::HalfClose => {
            let mut conn = RespConn::from_stream(pending.stream)
                .map_err(|e| format!("payload #{} ({}): {e}", pending.index, pending.kind))?;
            conn.shutdown_write();
            let (_, closed) = conn.read_until_close(CLOSE_TIMEOUT);
            if !closed {
                return Err(format!(
                    "payload #{} ({}): the server kept the connection open {CLOSE_TIMEOUT:?} \
                     after the end of input",
                    pending.index, pending.kind
                ));
            }
        }
        Ending::Drop => drop(pending.stream),
        Ending::Reset => {
            set_linger_zero(&pending.stream);
            drop(pending.stream);
        }
    }
    Ok(())
}

fn set_linger_zero(stream: &TcpStream) {
    use std::os::fd::AsRawFd;
    let linger = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: the fd is a live socket owned by `stream`, and `linger` is a valid, correctly
    // sized option value for SO_LINGER.
    unsafe {
        libc::setsockopt(
            stream.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            (&linger as *const libc::linger).cast(),
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        );
    }
}

/// One sending thread: payloads `thread, thread + THREADS, ...` below `total`.
fn attacker(port: u16, seed: u64, thread: usize, total: usize) -> Result<usize, String> {
    let mut rng = Rng::new(seed ^ (thread as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15));
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let mut pending: VecDeque<Pending> = VecDeque::new();
    let mut sent = 0;
    for index in (thread..total).step_by(THREADS) {
        let payload = payload(&mut rng);
        let mut stream = TcpStream::connect_timeout(&addr, CLOSE_TIMEOUT)
            .map_err(|e| format!("payload #{index}: connect failed: {e}"))?;
        let _ = stream.set_nodelay(true);
        // A server that stops reading must not block this thread for good.
        stream
            .set_write_timeout(Some(CLOSE_TIMEOUT))
            .map_err(|e| e.to_string())?;
        send_in_pieces(&mut stream, &payload.bytes, &mut rng);
        sent += 1;
        pending.push_back(Pending {
            index,
            kind: payload.kind,
            stream,
            ending: payload.ending,
        });
        if pending.len() > PENDING_PER_THREAD_MAX {
            if let Some(oldest) = pending.pop_front() {
                end_connection(oldest)?;
            }
        }
    }
    for p in pending {
        end_connection(p)?;
    }
    Ok(sent)
}

/// What the witness saw: operations done and the slowest one.
struct WitnessReport {
    ops: usize,
    slowest: Duration,
}

/// SET/GET in a loop until `stop`, every reply within `WITNESS_REPLY_TIMEOUT`.
fn witness(port: u16, stop: &AtomicBool) -> Result<WitnessReport, String> {
    let mut conn = RespConn::connect(port).map_err(|e| format!("witness connect: {e}"))?;
    conn.stream()
        .set_read_timeout(Some(WITNESS_REPLY_TIMEOUT))
        .map_err(|e| e.to_string())?;
    let mut report = WitnessReport {
        ops: 0,
        slowest: Duration::ZERO,
    };
    while !stop.load(Ordering::Relaxed) {
        let value = format!("value-{}", report.ops);
        let started = Instant::now();
        conn.send(&[b"SET", b"witness", value.as_bytes()]);
        let set = conn
            .try_read_reply()
            .map_err(|e| format!("witness SET #{}: {e}", report.ops))?;
        conn.send(&[b"GET", b"witness"]);
        let get = conn
            .try_read_reply()
            .map_err(|e| format!("witness GET #{}: {e}", report.ops))?;
        report.slowest = report.slowest.max(started.elapsed());
        let expected_get = format!("${}\r\n{value}\r\n", value.len()).into_bytes();
        if set != b"+OK\r\n" || get != expected_get {
            return Err(format!(
                "witness got {} and {} for {value}",
                show(&set),
                show(&get)
            ));
        }
        report.ops += 1;
        thread::sleep(Duration::from_millis(2));
    }
    Ok(report)
}

/// A numeric INFO field, or `None` when the server has no INFO (or no such field).
fn info_number(server: &TestServer, section: &str, field: &str) -> Option<u64> {
    server.info_field(section, field)?.parse().ok()
}

fn flood(test: &str, kind: ServerKind, args: &[&str]) {
    let seed = rng::seed(test);
    let total = env_usize("SHARDIS_BAD_INPUT_PAYLOADS", 10_000);
    let server = TestServer::start(kind, args);
    let port = server.port();
    // The baseline: after a few commands and a moment to settle.
    let mut conn = server.conn();
    for _ in 0..10 {
        assert_eq!(conn.cmd(&[b"SET", b"warmup", b"1"]), b"+OK\r\n");
    }
    thread::sleep(Duration::from_millis(200));
    let rss_baseline = server.rss_bytes().expect("reading the server's VmRSS");
    let used_baseline = info_number(&server, "memory", "used_memory");

    let stop = Arc::new(AtomicBool::new(false));
    let witness_thread = {
        let stop = Arc::clone(&stop);
        thread::spawn(move || witness(port, &stop))
    };
    let started = Instant::now();
    let attackers: Vec<_> = (0..THREADS)
        .map(|t| thread::spawn(move || attacker(port, seed, t, total)))
        .collect();
    let mut sent = 0;
    let mut errors = Vec::new();
    for handle in attackers {
        match handle.join().expect("attacker thread panicked") {
            Ok(n) => sent += n,
            Err(e) => errors.push(e),
        }
    }
    stop.store(true, Ordering::Relaxed);
    let witness_report = witness_thread.join().expect("witness thread panicked");
    println!("{test}: {sent} payloads in {:.1?}", started.elapsed());
    server.assert_alive();
    assert!(
        errors.is_empty(),
        "{test} (seed {seed}): {}",
        errors.join("\n")
    );
    let witness_report = witness_report.unwrap_or_else(|e| panic!("{test} (seed {seed}): {e}"));
    println!(
        "{test}: witness did {} SET+GET, slowest {:?}",
        witness_report.ops, witness_report.slowest
    );
    assert!(witness_report.ops > 0, "the witness was never served");
    assert_eq!(sent, total);

    let mut after = server.conn();
    assert_eq!(after.cmd(&[b"PING"]), b"+PONG\r\n");
    assert_eq!(after.cmd(&[b"GET", b"warmup"]), b"$1\r\n1\r\n");
    check_settles(&server, rss_baseline, used_baseline);
}

/// Waits until the flood's connections are gone and memory is back near the baseline.
fn check_settles(server: &TestServer, rss_baseline: u64, used_baseline: Option<u64>) {
    if info_number(server, "clients", "connected_clients").is_some() {
        wait_for(
            "connected_clients to fall back to at most 3",
            SETTLE_TIMEOUT,
            || (info_number(server, "clients", "connected_clients")? <= 3).then_some(()),
        );
    } else {
        println!("no INFO clients: connected_clients not checked");
    }
    let rss_limit = rss_baseline + MEMORY_SLACK_BYTES;
    let mut rss = 0;
    let settled = wait_for_opt(SETTLE_TIMEOUT, || {
        rss = server.rss_bytes().unwrap_or(u64::MAX);
        rss <= rss_limit
    });
    assert!(
        settled,
        "RSS stayed at {rss} bytes, above baseline {rss_baseline} + {MEMORY_SLACK_BYTES}"
    );
    println!("RSS baseline {rss_baseline}, after {rss}");
    match used_baseline {
        Some(baseline) => {
            let mut used = 0;
            let settled = wait_for_opt(SETTLE_TIMEOUT, || {
                used = info_number(server, "memory", "used_memory").unwrap_or(u64::MAX);
                used <= baseline + MEMORY_SLACK_BYTES
            });
            assert!(
                settled,
                "used_memory stayed at {used}, above baseline {baseline} + slack"
            );
            println!("used_memory baseline {baseline}, after {used}");
        }
        None => println!("no INFO memory: used_memory not checked"),
    }
}

/// Polls `check` until it holds or `timeout` passes; returns whether it held.
fn wait_for_opt(timeout: Duration, mut check: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if check() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        thread::sleep(common::POLL_INTERVAL);
    }
}
