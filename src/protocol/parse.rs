//! Request parsing. (Interface; the full implementation replaces the body.)

use bytes::{Bytes, BytesMut};

/// Limits the parser enforces, from config.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// `proto-max-bulk-len`.
    pub proto_max_bulk_len: u64,
    /// Whether the client has authenticated (unauthenticated clients get tighter limits).
    pub authenticated: bool,
}

/// A protocol violation. After replying with `message()` the connection is closed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ProtoError {
    InvalidMultibulkLength,
    InvalidBulkLength,
}

impl ProtoError {
    /// The exact error text Redis 7.0 sends (without the leading '-').
    pub fn message(&self) -> String {
        match self {
            ProtoError::InvalidMultibulkLength => "ERR Protocol error: invalid multibulk length",
            ProtoError::InvalidBulkLength => "ERR Protocol error: invalid bulk length",
        }
        .to_string()
    }
}

/// Parses one command from the front of `buf`, removing its bytes. `Ok(None)`: not enough
/// bytes yet (nothing removed except skipped empty lines / empty multibulks).
pub fn parse_command(
    buf: &mut BytesMut,
    limits: &Limits,
) -> Result<Option<Vec<Bytes>>, ProtoError> {
    let _ = limits;
    loop {
        if buf.is_empty() || buf[0] != b'*' {
            return Ok(None);
        }
        let Some(nl) = buf.iter().position(|&b| b == b'\n') else {
            return Ok(None);
        };
        let n: i64 = std::str::from_utf8(&buf[1..nl - 1])
            .ok()
            .and_then(|s| s.parse().ok())
            .ok_or(ProtoError::InvalidMultibulkLength)?;
        if n <= 0 {
            let _ = buf.split_to(nl + 1);
            continue;
        }
        let mut pos = nl + 1;
        let mut spans = Vec::with_capacity(n as usize);
        for _ in 0..n {
            if pos >= buf.len() {
                return Ok(None);
            }
            let Some(off) = buf[pos..].iter().position(|&b| b == b'\n') else {
                return Ok(None);
            };
            let len: usize = std::str::from_utf8(&buf[pos + 1..pos + off - 1])
                .ok()
                .and_then(|s| s.parse().ok())
                .ok_or(ProtoError::InvalidBulkLength)?;
            let start = pos + off + 1;
            if buf.len() < start + len + 2 {
                return Ok(None);
            }
            spans.push((start, len));
            pos = start + len + 2;
        }
        let frame = buf.split_to(pos).freeze();
        return Ok(Some(
            spans
                .into_iter()
                .map(|(s, l)| frame.slice(s..s + l))
                .collect(),
        ));
    }
}
