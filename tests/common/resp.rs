//! A raw RESP client for tests: exact bytes in, exact bytes out.
//!
//! Differential tests compare servers byte for byte, so this client never re-encodes what it
//! reads: `read_reply` returns the exact bytes of one complete reply, found by a framing reader
//! that understands every RESP2 and RESP3 type (`+ - : $ * _ , # ! = ( % ~ > |`), nesting and
//! the null forms (`$-1`, `*-1`, `_`). A RESP3 attribute (`|`) is not a reply on its own: it is
//! returned together with the reply it annotates. `decode` turns those bytes into a `Reply` for
//! tests that need values rather than bytes.
//!
//! Every read has a deadline (the socket's read timeout), so a server that stops answering fails
//! the test with a message instead of hanging it.

use std::fmt::Write as _;
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::time::{Duration, Instant};

/// How long one read may wait for the server. Generous: the machine is small and shared.
pub const READ_TIMEOUT: Duration = Duration::from_secs(10);
/// Nesting deeper than this in a reply is treated as a framing error, not followed.
const NESTING_DEPTH_MAX: usize = 128;

/// Why a buffer does not hold one well-formed reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FrameError {
    /// The server sent bytes that are not RESP at `offset`.
    Invalid { offset: usize, why: String },
}

/// The length of the first complete reply in `buf`: `Ok(None)` when more bytes are needed.
pub fn frame_len(buf: &[u8]) -> Result<Option<usize>, FrameError> {
    frame_end(buf, 0, 0)
}

fn invalid(offset: usize, why: &str) -> FrameError {
    FrameError::Invalid {
        offset,
        why: why.to_string(),
    }
}

/// The index just past the CRLF of the line starting at `at`, and the line's content.
fn line_at(buf: &[u8], at: usize) -> Option<(usize, &[u8])> {
    let rest = buf.get(at..)?;
    let nl = rest.windows(2).position(|w| w == b"\r\n")?;
    Some((at + nl + 2, &rest[..nl]))
}

fn parse_len(line: &[u8], offset: usize) -> Result<i64, FrameError> {
    std::str::from_utf8(line)
        .ok()
        .and_then(|s| s.parse::<i64>().ok())
        .ok_or_else(|| invalid(offset, "length is not an integer"))
}

/// Where the reply starting at `at` ends, or `None` when it is not complete yet.
fn frame_end(buf: &[u8], at: usize, depth: usize) -> Result<Option<usize>, FrameError> {
    if depth > NESTING_DEPTH_MAX {
        return Err(invalid(at, "nesting too deep"));
    }
    let Some(&kind) = buf.get(at) else {
        return Ok(None);
    };
    let Some((after_line, line)) = line_at(buf, at + 1) else {
        return Ok(None);
    };
    match kind {
        b'+' | b'-' | b':' | b'_' | b',' | b'#' | b'(' => Ok(Some(after_line)),
        b'$' | b'!' | b'=' => {
            let len = parse_len(line, at)?;
            if len == -1 && kind == b'$' {
                return Ok(Some(after_line));
            }
            if len < 0 {
                return Err(invalid(at, "negative blob length"));
            }
            let end = after_line + len as usize + 2;
            if buf.len() < end {
                return Ok(None);
            }
            if &buf[end - 2..end] != b"\r\n" {
                return Err(invalid(end - 2, "blob not followed by CRLF"));
            }
            Ok(Some(end))
        }
        b'*' | b'~' | b'>' | b'%' | b'|' => {
            let count = parse_len(line, at)?;
            if count == -1 && kind == b'*' {
                return Ok(Some(after_line));
            }
            if count < 0 {
                return Err(invalid(at, "negative aggregate length"));
            }
            let per_entry = if kind == b'%' || kind == b'|' { 2 } else { 1 };
            let mut pos = after_line;
            for _ in 0..count * per_entry {
                match frame_end(buf, pos, depth + 1)? {
                    Some(next) => pos = next,
                    None => return Ok(None),
                }
            }
            if kind == b'|' {
                // An attribute annotates the reply that follows it: both form one reply.
                return frame_end(buf, pos, depth + 1);
            }
            Ok(Some(pos))
        }
        _ => Err(invalid(at, &format!("unknown type byte {}", show(&[kind])))),
    }
}

/// Encodes a command as a RESP multibulk.
pub fn encode_command(args: &[&[u8]]) -> Vec<u8> {
    let mut out = Vec::with_capacity(16 + args.iter().map(|a| a.len() + 16).sum::<usize>());
    out.extend_from_slice(format!("*{}\r\n", args.len()).as_bytes());
    for arg in args {
        out.extend_from_slice(format!("${}\r\n", arg.len()).as_bytes());
        out.extend_from_slice(arg);
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// One connection to a server, with a buffer of bytes read but not yet returned.
pub struct RespConn {
    stream: TcpStream,
    buf: Vec<u8>,
    /// What the connection is to, for messages.
    peer: SocketAddr,
}

impl RespConn {
    /// Connects to 127.0.0.1:`port` with the standard read and write timeouts.
    pub fn connect(port: u16) -> io::Result<RespConn> {
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let stream = TcpStream::connect_timeout(&addr, READ_TIMEOUT)?;
        RespConn::from_stream(stream)
    }

    pub fn from_stream(stream: TcpStream) -> io::Result<RespConn> {
        stream.set_read_timeout(Some(READ_TIMEOUT))?;
        stream.set_write_timeout(Some(READ_TIMEOUT))?;
        // Both fail on a connection the server has already closed, which some tests expect.
        let _ = stream.set_nodelay(true);
        let peer = stream
            .peer_addr()
            .unwrap_or_else(|_| SocketAddr::from(([0, 0, 0, 0], 0)));
        Ok(RespConn {
            stream,
            buf: Vec::new(),
            peer,
        })
    }

    pub fn stream(&self) -> &TcpStream {
        &self.stream
    }

    /// Sends one command as a multibulk, without waiting for the reply.
    pub fn send(&mut self, args: &[&[u8]]) {
        let bytes = encode_command(args);
        self.send_raw(&bytes);
    }

    /// Sends bytes as they are.
    pub fn send_raw(&mut self, bytes: &[u8]) {
        if let Err(e) = self.try_send_raw(bytes) {
            panic!("send to {} failed: {e}", self.peer);
        }
    }

    pub fn try_send_raw(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.stream.write_all(bytes)
    }

    /// The exact bytes of the next complete reply. Panics, with what was read so far, on a
    /// timeout, a closed connection or bytes that are not RESP.
    pub fn read_reply(&mut self) -> Vec<u8> {
        match self.try_read_reply() {
            Ok(reply) => reply,
            Err(e) => panic!(
                "reading a reply from {} failed: {e}; unparsed bytes so far: {}",
                self.peer,
                show(&self.buf[..self.buf.len().min(512)])
            ),
        }
    }

    /// Like `read_reply`, but hands failures back: `UnexpectedEof` when the server closed the
    /// connection, `WouldBlock`/`TimedOut` on a timeout, `InvalidData` on a framing error.
    pub fn try_read_reply(&mut self) -> io::Result<Vec<u8>> {
        loop {
            match frame_len(&self.buf) {
                Ok(Some(len)) => return Ok(self.buf.drain(..len).collect()),
                Ok(None) => {}
                Err(FrameError::Invalid { offset, why }) => {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!("not RESP at byte {offset}: {why}"),
                    ))
                }
            }
            let mut chunk = [0u8; 16 * 1024];
            let n = match self.stream.read(&mut chunk) {
                Ok(n) => n,
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) =>
                {
                    let waited = self
                        .stream
                        .read_timeout()
                        .ok()
                        .flatten()
                        .unwrap_or(READ_TIMEOUT);
                    return Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        format!("no complete reply within {waited:?}"),
                    ));
                }
                Err(e) => return Err(e),
            };
            if n == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "server closed the connection",
                ));
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }

    /// Sends a command and returns the exact bytes of its reply.
    pub fn cmd(&mut self, args: &[&[u8]]) -> Vec<u8> {
        self.send(args);
        self.read_reply()
    }

    /// `cmd` with string arguments, decoded.
    pub fn call(&mut self, args: &[&str]) -> Reply {
        let args: Vec<&[u8]> = args.iter().map(|a| a.as_bytes()).collect();
        let bytes = self.cmd(&args);
        decode(&bytes).unwrap_or_else(|e| panic!("undecodable reply {}: {e}", show(&bytes)))
    }

    /// Reads everything until the server closes the connection or `timeout` passes. Returns the
    /// bytes (including any not yet returned by `read_reply`) and whether the server closed.
    pub fn read_until_close(&mut self, timeout: Duration) -> (Vec<u8>, bool) {
        let deadline = Instant::now() + timeout;
        let mut out = std::mem::take(&mut self.buf);
        let mut chunk = [0u8; 16 * 1024];
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return (out, false);
            }
            let _ = self.stream.set_read_timeout(Some(left.min(READ_TIMEOUT)));
            match self.stream.read(&mut chunk) {
                Ok(0) => return (out, true),
                Ok(n) => out.extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == io::ErrorKind::ConnectionReset => return (out, true),
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return (out, true),
            }
        }
    }

    /// Half-closes the connection: the server sees end of input.
    pub fn shutdown_write(&self) {
        let _ = self.stream.shutdown(Shutdown::Write);
    }
}

/// A decoded reply, for tests that need values rather than bytes.
#[derive(Debug, Clone, PartialEq)]
pub enum Reply {
    Status(Vec<u8>),
    Error(Vec<u8>),
    Int(i64),
    Bulk(Vec<u8>),
    /// `$-1`, `*-1` and RESP3's `_`.
    Null,
    Array(Vec<Reply>),
    /// RESP3 double, as sent (`,1.5`).
    Double(Vec<u8>),
    Bool(bool),
    BigNumber(Vec<u8>),
    BlobError(Vec<u8>),
    /// RESP3 verbatim string: the three-letter format and the text.
    Verbatim(Vec<u8>, Vec<u8>),
    Map(Vec<(Reply, Reply)>),
    Set(Vec<Reply>),
    Push(Vec<Reply>),
    /// RESP3 attributes and the reply they annotate.
    Attribute(Vec<(Reply, Reply)>, Box<Reply>),
}

impl Reply {
    pub fn is_error(&self) -> bool {
        matches!(self, Reply::Error(_) | Reply::BlobError(_))
    }

    /// The bytes of a status, bulk, error, double, big number or verbatim reply.
    pub fn as_bytes(&self) -> Option<&[u8]> {
        match self {
            Reply::Status(b)
            | Reply::Error(b)
            | Reply::Bulk(b)
            | Reply::Double(b)
            | Reply::BigNumber(b)
            | Reply::BlobError(b)
            | Reply::Verbatim(_, b) => Some(b),
            _ => None,
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        self.as_bytes().and_then(|b| std::str::from_utf8(b).ok())
    }

    pub fn as_int(&self) -> Option<i64> {
        match self {
            Reply::Int(n) => Some(*n),
            _ => None,
        }
    }

    /// The elements of an array, set or push reply.
    pub fn as_array(&self) -> Option<&[Reply]> {
        match self {
            Reply::Array(v) | Reply::Set(v) | Reply::Push(v) => Some(v),
            _ => None,
        }
    }
}

/// Decodes one complete reply; trailing bytes are an error.
pub fn decode(bytes: &[u8]) -> Result<Reply, String> {
    let (reply, end) = decode_at(bytes, 0, 0)?;
    if end != bytes.len() {
        return Err(format!(
            "{} trailing bytes after the reply",
            bytes.len() - end
        ));
    }
    Ok(reply)
}

fn decode_at(buf: &[u8], at: usize, depth: usize) -> Result<(Reply, usize), String> {
    if depth > NESTING_DEPTH_MAX {
        return Err("nesting too deep".into());
    }
    let kind = *buf.get(at).ok_or("empty reply")?;
    let (after_line, line) = line_at(buf, at + 1).ok_or("incomplete line")?;
    let text = || String::from_utf8_lossy(line).into_owned();
    let int = || {
        text()
            .parse::<i64>()
            .map_err(|e| format!("bad integer {:?}: {e}", text()))
    };
    let blob = |len: i64| -> Result<(Vec<u8>, usize), String> {
        let end = after_line + usize::try_from(len).map_err(|_| "negative length")?;
        let bytes = buf.get(after_line..end).ok_or("incomplete blob")?;
        Ok((bytes.to_vec(), end + 2))
    };
    let reply = match kind {
        b'+' => (Reply::Status(line.to_vec()), after_line),
        b'-' => (Reply::Error(line.to_vec()), after_line),
        b':' => (Reply::Int(int()?), after_line),
        b'_' => (Reply::Null, after_line),
        b',' => (Reply::Double(line.to_vec()), after_line),
        b'(' => (Reply::BigNumber(line.to_vec()), after_line),
        b'#' => (Reply::Bool(line == b"t"), after_line),
        b'$' if int()? == -1 => (Reply::Null, after_line),
        b'*' if int()? == -1 => (Reply::Null, after_line),
        b'$' => blob(int()?).map(|(b, end)| (Reply::Bulk(b), end))?,
        b'!' => blob(int()?).map(|(b, end)| (Reply::BlobError(b), end))?,
        b'=' => {
            let (b, end) = blob(int()?)?;
            let (format, body) = if b.len() >= 4 {
                (b[..3].to_vec(), b[4..].to_vec())
            } else {
                (Vec::new(), b)
            };
            (Reply::Verbatim(format, body), end)
        }
        b'*' | b'~' | b'>' => {
            let (items, end) = decode_items(buf, after_line, int()?, depth)?;
            let reply = match kind {
                b'*' => Reply::Array(items),
                b'~' => Reply::Set(items),
                _ => Reply::Push(items),
            };
            (reply, end)
        }
        b'%' | b'|' => {
            let (items, end) = decode_items(buf, after_line, int()? * 2, depth)?;
            let mut pairs = Vec::with_capacity(items.len() / 2);
            let mut it = items.into_iter();
            while let (Some(k), Some(v)) = (it.next(), it.next()) {
                pairs.push((k, v));
            }
            if kind == b'%' {
                (Reply::Map(pairs), end)
            } else {
                let (inner, end) = decode_at(buf, end, depth + 1)?;
                (Reply::Attribute(pairs, Box::new(inner)), end)
            }
        }
        other => return Err(format!("unknown type byte {}", show(&[other]))),
    };
    Ok(reply)
}

fn decode_items(
    buf: &[u8],
    mut at: usize,
    count: i64,
    depth: usize,
) -> Result<(Vec<Reply>, usize), String> {
    let count = usize::try_from(count).map_err(|_| "negative aggregate length")?;
    let mut items = Vec::with_capacity(count.min(4096));
    for _ in 0..count {
        let (item, next) = decode_at(buf, at, depth + 1)?;
        items.push(item);
        at = next;
    }
    Ok((items, at))
}

/// Bytes as a quoted, escaped string, the way redis-cli shows them.
pub fn show(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() + 2);
    out.push('"');
    for &b in bytes {
        match b {
            b'"' => out.push_str("\\\""),
            b'\\' => out.push_str("\\\\"),
            b'\r' => out.push_str("\\r"),
            b'\n' => out.push_str("\\n"),
            b'\t' => out.push_str("\\t"),
            0x20..=0x7e => out.push(b as char),
            _ => {
                let _ = write!(out, "\\x{b:02x}");
            }
        }
    }
    out.push('"');
    out
}

/// A command as the space-separated, quoted list of its arguments.
pub fn show_command(args: &[Vec<u8>]) -> String {
    args.iter().map(|a| show(a)).collect::<Vec<_>>().join(" ")
}

/// A reply shortened for messages: long replies keep their start and their length.
pub fn show_short(bytes: &[u8], max: usize) -> String {
    if bytes.len() <= max {
        show(bytes)
    } else {
        format!("{}... ({} bytes)", show(&bytes[..max]), bytes.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_every_type() {
        let cases: &[&[u8]] = &[
            b"+OK\r\n",
            b"-ERR x\r\n",
            b":-5\r\n",
            b"$-1\r\n",
            b"$0\r\n\r\n",
            b"$3\r\na\r\n\r\n",
            b"*-1\r\n",
            b"*0\r\n",
            b"*2\r\n$1\r\na\r\n*1\r\n:1\r\n",
            b"_\r\n",
            b",1.5\r\n",
            b"#t\r\n",
            b"!3\r\nERR\r\n",
            b"=7\r\ntxt:abc\r\n",
            b"(123\r\n",
            b"%1\r\n+a\r\n:1\r\n",
            b"~1\r\n+a\r\n",
            b">2\r\n+message\r\n+x\r\n",
            b"|1\r\n+ttl\r\n:3\r\n+OK\r\n",
        ];
        for case in cases {
            let mut buf = case.to_vec();
            buf.extend_from_slice(b"+NEXT\r\n");
            assert_eq!(frame_len(&buf), Ok(Some(case.len())), "{}", show(case));
            for cut in 0..case.len() {
                assert_eq!(
                    frame_len(&case[..cut]),
                    Ok(None),
                    "{} cut at {cut}",
                    show(case)
                );
            }
            decode(case).unwrap_or_else(|e| panic!("{}: {e}", show(case)));
        }
    }

    #[test]
    fn rejects_non_resp() {
        assert!(frame_len(b"hello\r\n").is_err());
        assert!(frame_len(b"$3\r\nabcde\r\n").is_err());
        assert!(frame_len(b"$x\r\n").is_err());
    }

    #[test]
    fn decodes_values() {
        assert_eq!(
            decode(b"*3\r\n$1\r\na\r\n:7\r\n$-1\r\n"),
            Ok(Reply::Array(vec![
                Reply::Bulk(b"a".to_vec()),
                Reply::Int(7),
                Reply::Null
            ]))
        );
        assert_eq!(
            decode(b"%1\r\n+k\r\n#f\r\n"),
            Ok(Reply::Map(vec![(
                Reply::Status(b"k".to_vec()),
                Reply::Bool(false)
            )]))
        );
    }
}
