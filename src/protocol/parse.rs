//! Request parsing: the bytes a connection received, turned into one command's arguments.
//!
//! This module owns the two request syntaxes Redis 7.0 accepts and every limit it enforces on
//! them, with Redis's exact error texts (`processMultibulkBuffer`, `processInlineBuffer` and
//! `sdssplitargs` in Redis's `networking.c` and `sds.c`):
//!
//! - **Multibulk** (the buffer starts with `*`): `*<count>\r\n` then `count` times
//!   `$<len>\r\n<len bytes>\r\n`. Every argument is a zero-copy slice of the command's frame:
//!   the frame is split off the connection's read buffer and frozen, and the arguments are
//!   `Bytes::slice`s of it.
//! - **Inline** (anything else): one line ending in `\n` (a `\r` before it is dropped), split
//!   into words like `sdssplitargs` does, with double quotes (`\n \r \t \b \a \\ \"`, `\xHH`
//!   escapes) and single quotes (only `\'`). A closing quote must be followed by a blank or
//!   the end of the line. Words without quotes are slices of the frame; quoted words are
//!   copied, since their escapes change the bytes.
//!
//! `parse_command` is called by a connection's read path after every read, and again after
//! every command it returns, until it returns `Ok(None)`. It is stateless: an incomplete
//! command leaves the buffer untouched and is walked again from its start on the next call.
//! That walk only reads headers (bulk payloads are stepped over by their length), so a large
//! value arriving in many reads costs a few header reads per call. The price is a command with
//! a huge argument count arriving in many small reads, whose headers are walked once per read;
//! keeping a cursor across calls would need a state argument the interface does not have.
//!
//! The multibulk path is built for about a million commands a second per core: one walk over
//! the headers, where a header of at most 18 digits is read in one short pass and anything else
//! takes a general path (bounded `memchr` for the line end, then `string2ll`'s rules) that
//! gives the same answer; argument spans recorded on the stack for up to 8 arguments; one
//! allocation (the argument vector, sized from the arguments present); and the last argument
//! takes the frame itself instead of another reference to it.
//!
//! Invariants:
//! - The parser never allocates from a length the client *claims*: a `$1000000000` header
//!   reserves nothing, and the argument vector is sized from the arguments actually present.
//! - No input makes it panic or loop: every index is checked, every integer parse is bounded
//!   to 20 bytes, every line search is bounded to `LINE_BYTES_MAX + 1` bytes, and every pass of
//!   the top-level loop either returns or removes at least one byte from the buffer.
//! - Errors are reported in stream order, as soon as the offending header is buffered, even if
//!   the command is incomplete (Redis keeps a cursor, so it reports them just as early).
//!
//! Where Redis's behaviour depends on how the bytes were cut into reads, this parser takes the
//! rule that does not: a line (inline request, count or bulk header) whose terminator is not
//! within its first `LINE_BYTES_MAX` bytes is refused once more than that many bytes are
//! buffered. Redis searches whatever happens to be buffered, so with its 16 KiB reads it may
//! still accept a line of up to about 80 KiB; it never refuses a line of 64 KiB or less, and
//! neither does this parser. Other deliberate differences, all on malformed input:
//! - A NUL byte is an ordinary byte here. Redis searches its buffer with C string functions, so
//!   a NUL before a line's terminator hides the terminator and the connection waits until a
//!   "too big" error; this parser reads the line (a NUL inside a count is then simply invalid).
//! - `expected '$', got 'X'` can only carry text: a byte above 0x7F is shown as U+FFFD (what a
//!   UTF-8 reader shows for the raw byte Redis sends). CR and LF become spaces as in Redis.
//!
//! Like Redis, the multibulk parser does not check the byte after a header's `\r` nor the two
//! bytes after a payload: it steps over them, so `*1\rX$4\r\nPINGyy` is `PING`.

// A decoder of client input: no index may panic (style rule 6), so the lint enforces it.
#![deny(clippy::indexing_slicing, clippy::unwrap_used, clippy::expect_used)]

use bytes::{Buf, Bytes, BytesMut};
use memchr::memchr;
use std::fmt;

/// Longest line accepted before its terminator, in bytes: an inline request, a multibulk count
/// or a bulk header. Redis's `PROTO_INLINE_MAX_SIZE`.
const LINE_BYTES_MAX: usize = 64 * 1024;

/// Largest multibulk count: Redis 7.0 refuses `ll > INT_MAX`.
const MULTIBULK_COUNT_MAX: i64 = i32::MAX as i64;

/// Largest multibulk count an unauthenticated client may send.
const UNAUTHENTICATED_MULTIBULK_COUNT_MAX: i64 = 10;

/// Largest bulk length an unauthenticated client may send, in bytes.
const UNAUTHENTICATED_BULK_BYTES_MAX: i64 = 16 * 1024;

/// Longest decimal integer `string2ll` reads, in bytes (it refuses `LONG_STR_SIZE` = 21 and
/// more), so a count or length line longer than this is invalid without looking further.
const INTEGER_BYTES_MAX: usize = 20;

/// Argument spans recorded on the stack before spilling to the heap: enough for the commands
/// that make up nearly all traffic (GET, SET, HSET, ...), which then cost no extra allocation.
const SPANS_INLINE_MAX: usize = 8;

/// Most spans reserved at once when spilling. The reservation is sized from the claimed count,
/// so it is bounded: a client claiming two billion arguments gets room for this many.
const SPANS_RESERVE_MAX: usize = 1024;

/// Limits the parser enforces, from config and the connection's state.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// `proto-max-bulk-len`: the largest bulk length accepted, in bytes. Redis does not apply
    /// it to its replication master's stream; a caller parsing that stream passes `u64::MAX`.
    pub proto_max_bulk_len: u64,
    /// Whether the client counts as authenticated. Must be `true` when no authentication is
    /// required (default user active and `nopass`), as Redis's `authRequired()` is then false.
    /// Unauthenticated clients may send at most 10 arguments of at most 16 KiB each.
    pub authenticated: bool,
}

/// A protocol violation. After replying with `message()` the connection is closed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProtoError {
    /// An inline request without `\n` within its first 64 KiB.
    TooBigInlineRequest,
    /// An inline request whose quotes are not closed, or whose closing quote is followed by
    /// something other than a blank.
    UnbalancedQuotes,
    /// A multibulk count line without `\r` within its first 64 KiB.
    TooBigMultibulkCount,
    /// A multibulk count that is not a `string2ll` integer, or is above `INT_MAX`.
    InvalidMultibulkLength,
    /// A multibulk count above 10 from an unauthenticated client.
    UnauthenticatedMultibulkLength,
    /// A bulk header line without `\r` within its first 64 KiB.
    TooBigBulkCount,
    /// A bulk header line that does not start with `$`; carries the byte found instead.
    ExpectedDollar(u8),
    /// A bulk length that is not a `string2ll` integer, is negative or exceeds
    /// `proto-max-bulk-len`.
    InvalidBulkLength,
    /// A bulk length above 16 KiB from an unauthenticated client.
    UnauthenticatedBulkLength,
}

impl ProtoError {
    /// The exact error text Redis 7.0 sends (without the leading '-'). Redis sends all of
    /// these through `addReplyError`, which prefixes `ERR `.
    #[must_use]
    pub fn message(&self) -> String {
        let text = match self {
            ProtoError::TooBigInlineRequest => "too big inline request",
            ProtoError::UnbalancedQuotes => "unbalanced quotes in request",
            ProtoError::TooBigMultibulkCount => "too big mbulk count string",
            ProtoError::InvalidMultibulkLength => "invalid multibulk length",
            ProtoError::UnauthenticatedMultibulkLength => "unauthenticated multibulk length",
            ProtoError::TooBigBulkCount => "too big bulk count string",
            ProtoError::ExpectedDollar(found) => {
                return format!(
                    "ERR Protocol error: expected '$', got '{}'",
                    printable_byte(*found)
                );
            }
            ProtoError::InvalidBulkLength => "invalid bulk length",
            ProtoError::UnauthenticatedBulkLength => "unauthenticated bulk length",
        };
        format!("ERR Protocol error: {text}")
    }
}

impl fmt::Display for ProtoError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message())
    }
}

impl std::error::Error for ProtoError {}

/// The character `expected '$', got '%c'` shows for `byte`. Redis maps CR and LF in error
/// texts to spaces so the reply stays one line; a byte above 0x7F cannot be held by a `String`
/// as one byte, so it becomes the replacement character a UTF-8 reader would show.
fn printable_byte(byte: u8) -> char {
    match byte {
        b'\r' | b'\n' => ' ',
        0..=0x7F => char::from(byte),
        _ => char::REPLACEMENT_CHARACTER,
    }
}

/// Parses one command from the front of `buf`, removing its bytes; the arguments share the
/// buffer's memory. `Ok(None)`: not enough bytes yet (nothing removed except skipped empty
/// inline lines and multibulks with a count <= 0, which Redis ignores).
///
/// # Errors
///
/// A protocol violation, with the text Redis replies before closing the connection. The
/// buffer's state is then unspecified: the caller replies `-{message}\r\n` and closes.
pub fn parse_command(
    buf: &mut BytesMut,
    limits: &Limits,
) -> Result<Option<Vec<Bytes>>, ProtoError> {
    let mut args = Vec::new();
    Ok(parse_command_into(buf, limits, &mut args)?.then_some(args))
}

/// [`parse_command`] into a vector the caller owns and reuses: the connection loop parses
/// every command of a pipeline into the same vector, which saves an allocation and a free per
/// command. On `Ok(true)` `args` holds the command (anything in it before was cleared); on
/// `Ok(false)` and on errors it is empty.
///
/// # Errors
///
/// As [`parse_command`].
pub fn parse_command_into(
    buf: &mut BytesMut,
    limits: &Limits,
    args: &mut Vec<Bytes>,
) -> Result<bool, ProtoError> {
    args.clear();
    // Each pass returns or removes at least one byte (a skipped line or an empty multibulk),
    // so the loop runs at most `buf.len() + 1` times.
    loop {
        let step = match buf.first() {
            None => return Ok(false),
            Some(b'*') => parse_multibulk(buf, limits, args)?,
            Some(_) => parse_inline(buf, args)?,
        };
        match step {
            Step::NeedMore => return Ok(false),
            Step::Skipped => {}
            Step::Command => return Ok(true),
        }
    }
}

/// The outcome of looking at the front of the buffer once.
enum Step {
    /// The request is incomplete; nothing was removed.
    NeedMore,
    /// A request without arguments was removed; look again.
    Skipped,
    /// A command was removed from the buffer into the caller's vector.
    Command,
}

/// Where a line that starts at some offset ends.
enum LineEnd {
    /// Index of the terminator byte.
    At(usize),
    /// No terminator yet, and the line may still become legal.
    Pending,
    /// More than `LINE_BYTES_MAX` bytes are buffered and none of the first
    /// `LINE_BYTES_MAX + 1` is the terminator.
    TooLong,
}

/// Finds `terminator` in the line starting at `start`, looking at no more than
/// `LINE_BYTES_MAX + 1` bytes, so that a call costs the same however much is buffered.
fn find_line_end(buf: &[u8], start: usize, terminator: u8) -> LineEnd {
    let rest = buf.get(start..).unwrap_or_default();
    let window = rest.get(..=LINE_BYTES_MAX).unwrap_or(rest);
    match memchr(terminator, window) {
        Some(offset) => LineEnd::At(start + offset),
        None if rest.len() > LINE_BYTES_MAX => LineEnd::TooLong,
        None => LineEnd::Pending,
    }
}

/// Parses a decimal integer exactly as Redis's `string2ll`: an optional `-`, then `0` alone
/// or a digit 1-9 followed by digits; at most 20 bytes; within `i64`. So `+5`, ` 5`, `05`,
/// `-0` and the empty string are all invalid.
fn parse_redis_integer(text: &[u8]) -> Option<i64> {
    if text.is_empty() || text.len() > INTEGER_BYTES_MAX {
        return None;
    }
    if text == b"0" {
        return Some(0);
    }
    let (negative, digits) = match text.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, text),
    };
    if !matches!(digits.first(), Some(b'1'..=b'9')) {
        return None;
    }
    let mut magnitude: u64 = 0;
    for &byte in digits {
        if !byte.is_ascii_digit() {
            return None;
        }
        magnitude = magnitude
            .checked_mul(10)?
            .checked_add(u64::from(byte - b'0'))?;
    }
    if negative {
        // i64::MIN's magnitude is one more than i64::MAX's, so subtract rather than negate.
        0i64.checked_sub_unsigned(magnitude)
    } else {
        i64::try_from(magnitude).ok()
    }
}

// ------------------------------------------------------------------------------------------
// Multibulk
// ------------------------------------------------------------------------------------------

/// Parses a multibulk request at the front of `buf` (which starts with `*`): a full walk that
/// records where the arguments are, then one split of the frame and one slice per argument.
fn parse_multibulk(
    buf: &mut BytesMut,
    limits: &Limits,
    args: &mut Vec<Bytes>,
) -> Result<Step, ProtoError> {
    let mut spans = Spans::new();
    let frame_len = match scan_multibulk(buf, limits, &mut spans)? {
        Scan::Incomplete => return Ok(Step::NeedMore),
        Scan::Empty { frame_len } => {
            buf.advance(frame_len);
            return Ok(Step::Skipped);
        }
        Scan::Complete { frame_len } => frame_len,
    };
    // In bounds: `scan_multibulk` returns a length no greater than the buffer's, and every span
    // it recorded ends before that length.
    let mut frame = buf.split_to(frame_len).freeze();
    args.reserve(spans.len());
    let mut spans = spans.iter();
    // A complete command has at least one argument; the last one takes the frame itself, which
    // saves a reference count increment and decrement per command.
    let Some(last) = spans.next_back() else {
        return Ok(Step::Skipped);
    };
    args.extend(spans.map(|span| frame.slice(span.start..span.start + span.len)));
    frame.advance(last.start);
    frame.truncate(last.len);
    args.push(frame);
    Ok(Step::Command)
}

/// What a walk over a multibulk request found.
enum Scan {
    /// Some header or payload is not fully buffered yet.
    Incomplete,
    /// A count <= 0: Redis consumes the line and runs nothing.
    Empty { frame_len: usize },
    /// A whole command of `frame_len` bytes; its argument spans were recorded.
    Complete { frame_len: usize },
}

/// Walks the multibulk request at the front of `buf`, validating each header in stream order
/// and recording each argument's span, without copying or allocating from claimed lengths.
fn scan_multibulk(buf: &[u8], limits: &Limits, spans: &mut Spans) -> Result<Scan, ProtoError> {
    let (count, mut pos) = match quick_header(buf, 0, b'*') {
        Some(quick) => quick,
        None => match header_line(buf, 0) {
            HeaderLine::Complete { cr, next } => {
                (buf.get(1..cr).and_then(parse_redis_integer), next)
            }
            HeaderLine::Pending => return Ok(Scan::Incomplete),
            HeaderLine::TooLong => return Err(ProtoError::TooBigMultibulkCount),
        },
    };
    let count = count
        .filter(|&count| count <= MULTIBULK_COUNT_MAX)
        .ok_or(ProtoError::InvalidMultibulkLength)?;
    if count > UNAUTHENTICATED_MULTIBULK_COUNT_MAX && !limits.authenticated {
        return Err(ProtoError::UnauthenticatedMultibulkLength);
    }
    // Positive and at most INT_MAX, so it fits; a count <= 0 reads as zero arguments.
    let count = usize::try_from(count).unwrap_or(0);
    if count == 0 {
        return Ok(Scan::Empty { frame_len: pos });
    }
    // Each pass either returns or moves `pos` forward by at least 6 bytes (`$0\r\n\r\n`), so
    // the loop is bounded by the buffer's length as much as by the claimed count.
    for index in 0..count {
        match scan_bulk(buf, pos, limits)? {
            Some(span) => {
                spans.push(span, count - index);
                pos = span.start + span.len + 2;
            }
            None => return Ok(Scan::Incomplete),
        }
    }
    Ok(Scan::Complete { frame_len: pos })
}

/// A header line (`*count` or `$len`), found but not interpreted.
enum HeaderLine {
    /// `cr` is the index of the line's `\r`, `next` where the following data starts.
    Complete {
        cr: usize,
        next: usize,
    },
    Pending,
    TooLong,
}

/// Finds the header line starting at `start`. Like Redis, it ends at the first `\r`, needs one
/// more byte to be buffered, and steps over that byte without checking that it is `\n`.
fn header_line(buf: &[u8], start: usize) -> HeaderLine {
    match find_line_end(buf, start, b'\r') {
        LineEnd::At(cr) if cr + 2 <= buf.len() => HeaderLine::Complete { cr, next: cr + 2 },
        LineEnd::At(_) | LineEnd::Pending => HeaderLine::Pending,
        LineEnd::TooLong => HeaderLine::TooLong,
    }
}

/// Most digits the quick header path reads: 18 nines still fit in an `i64`, so it needs no
/// overflow check. Longer numbers take the general path.
const QUICK_DIGITS_MAX: usize = 18;

/// The common header, read in one short pass without a search: `prefix`, then `0` or a digit
/// 1-9 followed by at most 17 digits, then `\r` and one more buffered byte. Returns the value
/// and where the data after the header starts, exactly as `header_line` and
/// `parse_redis_integer` would. `None` means "take the general path", never "invalid".
fn quick_header(buf: &[u8], start: usize, prefix: u8) -> Option<(Option<i64>, usize)> {
    let line = buf.get(start..)?;
    let (&first, digits) = line.split_first()?;
    if first != prefix || digits.first() == Some(&b'0') && digits.get(1) != Some(&b'\r') {
        return None;
    }
    let mut value: i64 = 0;
    for (count, &byte) in digits.iter().enumerate().take(QUICK_DIGITS_MAX + 1) {
        match byte {
            b'0'..=b'9' if count < QUICK_DIGITS_MAX => value = value * 10 + i64::from(byte - b'0'),
            // `count + 2` (the `\r` and the byte after it) is buffered past the digits.
            b'\r' if count > 0 && count + 2 <= digits.len() => {
                return Some((Some(value), start + 1 + count + 2));
            }
            _ => return None,
        }
    }
    None
}

/// Reads the bulk argument whose header starts at `start`: `Some(span)` when its payload and
/// the two bytes after it are buffered, `None` when something is still missing. The header is
/// checked as soon as its line is complete, before the payload arrives.
fn scan_bulk(buf: &[u8], start: usize, limits: &Limits) -> Result<Option<Span>, ProtoError> {
    let (len, payload_start) = match quick_header(buf, start, b'$') {
        Some(quick) => quick,
        None => {
            let (cr, next) = match header_line(buf, start) {
                HeaderLine::Complete { cr, next } => (cr, next),
                HeaderLine::Pending => return Ok(None),
                HeaderLine::TooLong => return Err(ProtoError::TooBigBulkCount),
            };
            match buf.get(start) {
                Some(b'$') => {}
                Some(&found) => return Err(ProtoError::ExpectedDollar(found)),
                None => return Ok(None),
            }
            (buf.get(start + 1..cr).and_then(parse_redis_integer), next)
        }
    };
    let len = len
        .filter(|&len| u64::try_from(len).is_ok_and(|len| len <= limits.proto_max_bulk_len))
        .ok_or(ProtoError::InvalidBulkLength)?;
    if len > UNAUTHENTICATED_BULK_BYTES_MAX && !limits.authenticated {
        return Err(ProtoError::UnauthenticatedBulkLength);
    }
    // A length that does not fit in memory can never be fully buffered: keep waiting, as Redis
    // does, until the connection's query buffer limit ends it.
    let Ok(len) = usize::try_from(len) else {
        return Ok(None);
    };
    let frame_end = payload_start
        .checked_add(len)
        .and_then(|end| end.checked_add(2));
    match frame_end {
        Some(end) if end <= buf.len() => Ok(Some(Span {
            start: payload_start,
            len,
        })),
        _ => Ok(None),
    }
}

/// Where one argument's payload lies in the frame.
#[derive(Clone, Copy, Debug, Default)]
struct Span {
    start: usize,
    len: usize,
}

/// The argument spans of one command: the first `SPANS_INLINE_MAX` on the stack, the rest on
/// the heap, so a common command records its spans without allocating.
struct Spans {
    head: [Span; SPANS_INLINE_MAX],
    head_len: usize,
    tail: Vec<Span>,
}

impl Spans {
    fn new() -> Self {
        Spans {
            head: [Span::default(); SPANS_INLINE_MAX],
            head_len: 0,
            tail: Vec::new(),
        }
    }

    /// Records `span`; `claimed_left` (this one included) sizes the first heap reservation,
    /// bounded by `SPANS_RESERVE_MAX`.
    fn push(&mut self, span: Span, claimed_left: usize) {
        if let Some(slot) = self.head.get_mut(self.head_len) {
            *slot = span;
            self.head_len += 1;
            return;
        }
        if self.tail.capacity() == 0 {
            self.tail.reserve(claimed_left.min(SPANS_RESERVE_MAX));
        }
        self.tail.push(span);
    }

    fn len(&self) -> usize {
        self.head_len + self.tail.len()
    }

    fn iter(&self) -> impl DoubleEndedIterator<Item = &Span> {
        self.head.iter().take(self.head_len).chain(self.tail.iter())
    }
}

// ------------------------------------------------------------------------------------------
// Inline
// ------------------------------------------------------------------------------------------

/// Parses an inline request at the front of `buf`: one line ending in `\n`, split like
/// `sdssplitargs`. A line with no words (empty or blanks only) is removed and skipped.
fn parse_inline(buf: &mut BytesMut, args: &mut Vec<Bytes>) -> Result<Step, ProtoError> {
    let newline = match find_line_end(buf, 0, b'\n') {
        LineEnd::At(newline) => newline,
        LineEnd::Pending => return Ok(Step::NeedMore),
        LineEnd::TooLong => return Err(ProtoError::TooBigInlineRequest),
    };
    // Redis finds the line end with `strchr`, which stops at a NUL byte: a NUL before the
    // newline hides it, so the request waits for more bytes until it is too big.
    if memchr::memchr(0, buf.get(..newline).unwrap_or_default()).is_some() {
        if buf.len() > LINE_BYTES_MAX {
            return Err(ProtoError::TooBigInlineRequest);
        }
        return Ok(Step::NeedMore);
    }
    // Redis drops one `\r` right before the `\n`; any other `\r` is a blank inside the line.
    let line_len = match newline.checked_sub(1) {
        Some(before) if buf.get(before) == Some(&b'\r') => before,
        _ => newline,
    };
    let frame = buf.split_to(newline + 1).freeze();
    let words = split_inline_args(&frame.slice(..line_len))?;
    if words.is_empty() {
        return Ok(Step::Skipped);
    }
    *args = words;
    Ok(Step::Command)
}

/// `isspace` in the C locale: the blanks `sdssplitargs` skips between words and accepts after
/// a closing quote. Note that a word without quotes ends only at space, `\t`, `\r` or `\n`.
fn is_c_space(byte: u8) -> bool {
    matches!(byte, b' ' | b'\t' | b'\n' | b'\r' | 0x0B | 0x0C)
}

/// Splits an inline line into words as `sdssplitargs` does.
fn split_inline_args(line: &Bytes) -> Result<Vec<Bytes>, ProtoError> {
    let mut args = Vec::new();
    let mut pos = 0;
    // Every word is at least one byte long, so the loop ends within `line.len()` passes.
    loop {
        while line.get(pos).is_some_and(|&byte| is_c_space(byte)) {
            pos += 1;
        }
        if pos >= line.len() {
            return Ok(args);
        }
        let (arg, next) = inline_word(line, pos)?;
        args.push(arg);
        pos = next;
    }
}

/// Reads the word starting at `start` (not a blank): unquoted bytes up to a space, `\t`, `\r`
/// or `\n`, or unquoted bytes followed by one quoted part that ends the word. Returns the word
/// and where reading goes on.
fn inline_word(line: &Bytes, start: usize) -> Result<(Bytes, usize), ProtoError> {
    let mut pos = start;
    loop {
        let quote = match line.get(pos) {
            None | Some(b' ' | b'\t' | b'\r' | b'\n') => return Ok((line.slice(start..pos), pos)),
            Some(&quote @ (b'"' | b'\'')) => quote,
            Some(_) => {
                pos += 1;
                continue;
            }
        };
        let mut word = line.get(start..pos).unwrap_or_default().to_vec();
        let next = if quote == b'"' {
            read_double_quoted(line, pos + 1, &mut word)?
        } else {
            read_single_quoted(line, pos + 1, &mut word)?
        };
        return Ok((Bytes::from(word), next));
    }
}

/// Reads a double-quoted part whose content starts at `pos` into `word`, decoding escapes.
/// Returns the index after the closing quote.
fn read_double_quoted(
    line: &[u8],
    mut pos: usize,
    word: &mut Vec<u8>,
) -> Result<usize, ProtoError> {
    loop {
        match line.get(pos) {
            None => return Err(ProtoError::UnbalancedQuotes),
            Some(b'"') => return after_closing_quote(line, pos + 1),
            Some(b'\\') => {
                let escaped = line.get(pos + 1).ok_or(ProtoError::UnbalancedQuotes)?;
                match (escaped, hex_byte(line, pos + 2)) {
                    (b'x', Some(byte)) => {
                        word.push(byte);
                        pos += 4;
                    }
                    (&escaped, _) => {
                        word.push(unescape(escaped));
                        pos += 2;
                    }
                }
            }
            Some(&byte) => {
                word.push(byte);
                pos += 1;
            }
        }
    }
}

/// Reads a single-quoted part whose content starts at `pos` into `word`; only `\'` is an
/// escape. Returns the index after the closing quote.
fn read_single_quoted(
    line: &[u8],
    mut pos: usize,
    word: &mut Vec<u8>,
) -> Result<usize, ProtoError> {
    loop {
        match line.get(pos) {
            None => return Err(ProtoError::UnbalancedQuotes),
            Some(b'\\') if line.get(pos + 1) == Some(&b'\'') => {
                word.push(b'\'');
                pos += 2;
            }
            Some(b'\'') => return after_closing_quote(line, pos + 1),
            Some(&byte) => {
                word.push(byte);
                pos += 1;
            }
        }
    }
}

/// A closing quote must be followed by a blank or the end of the line.
fn after_closing_quote(line: &[u8], next: usize) -> Result<usize, ProtoError> {
    match line.get(next) {
        Some(&byte) if !is_c_space(byte) => Err(ProtoError::UnbalancedQuotes),
        _ => Ok(next),
    }
}

/// The byte written by the two hex digits at `pos`, if both are hex digits.
fn hex_byte(line: &[u8], pos: usize) -> Option<u8> {
    let high = char::from(*line.get(pos)?).to_digit(16)?;
    let low = char::from(*line.get(pos + 1)?).to_digit(16)?;
    u8::try_from(high * 16 + low).ok()
}

/// The byte a backslash escape inside double quotes stands for; unknown escapes stand for the
/// escaped byte itself (`\"` is `"`, `\\` is `\`, `\q` is `q`).
fn unescape(escaped: u8) -> u8 {
    match escaped {
        b'n' => b'\n',
        b'r' => b'\r',
        b't' => b'\t',
        b'b' => 0x08,
        b'a' => 0x07,
        other => other,
    }
}

#[cfg(test)]
// A test fails by panicking; indexing and unwrap are the shortest way to say what it expects.
#[allow(clippy::indexing_slicing, clippy::unwrap_used)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use proptest::sample::Index;

    const DEFAULT_BULK_BYTES_MAX: u64 = 512 * 1024 * 1024;

    fn authenticated() -> Limits {
        Limits {
            proto_max_bulk_len: DEFAULT_BULK_BYTES_MAX,
            authenticated: true,
        }
    }

    fn unauthenticated() -> Limits {
        Limits {
            proto_max_bulk_len: DEFAULT_BULK_BYTES_MAX,
            authenticated: false,
        }
    }

    type Command = Vec<Vec<u8>>;

    /// One call on a fresh buffer holding `input`.
    fn parse_once(input: &[u8], limits: &Limits) -> Result<Option<Command>, ProtoError> {
        let mut buf = BytesMut::from(input);
        parse_command(&mut buf, limits).map(|found| found.map(to_vecs))
    }

    fn to_vecs(args: Vec<Bytes>) -> Command {
        args.into_iter().map(|arg| arg.to_vec()).collect()
    }

    fn words(text: &[&str]) -> Command {
        text.iter().map(|word| word.as_bytes().to_vec()).collect()
    }

    fn error_of(input: &[u8], limits: &Limits) -> ProtoError {
        match parse_once(input, limits) {
            Err(error) => error,
            other => panic!("expected an error for {input:?}, got {other:?}"),
        }
    }

    fn encode(command: &[Vec<u8>]) -> Vec<u8> {
        let mut out = format!("*{}\r\n", command.len()).into_bytes();
        for arg in command {
            out.extend_from_slice(format!("${}\r\n", arg.len()).as_bytes());
            out.extend_from_slice(arg);
            out.extend_from_slice(b"\r\n");
        }
        out
    }

    /// Everything a stream of bytes produces: the commands, then how parsing stopped.
    #[derive(Debug, PartialEq)]
    struct Outcome {
        commands: Vec<Command>,
        /// The error that ended parsing, or the bytes left waiting for more.
        end: Result<Vec<u8>, ProtoError>,
    }

    /// Appends each chunk and calls the parser until it wants more, stopping at an error. The
    /// number of calls is bounded by the bytes fed, so a parser that loops fails the test.
    fn feed(chunks: &[&[u8]], limits: &Limits) -> Outcome {
        let mut buf = BytesMut::new();
        let mut commands = Vec::new();
        let total_bytes: usize = chunks.iter().map(|chunk| chunk.len()).sum();
        let mut calls_left = total_bytes + chunks.len() + 1;
        for chunk in chunks {
            buf.extend_from_slice(chunk);
            loop {
                assert!(calls_left > 0, "parser made no progress");
                calls_left -= 1;
                let before = buf.len();
                match parse_command(&mut buf, limits) {
                    Ok(Some(args)) => {
                        assert!(!args.is_empty(), "a command has at least one argument");
                        assert!(buf.len() < before, "a command consumes bytes");
                        commands.push(to_vecs(args));
                    }
                    Ok(None) => break,
                    Err(error) => {
                        return Outcome {
                            commands,
                            end: Err(error),
                        }
                    }
                }
            }
        }
        Outcome {
            commands,
            end: Ok(buf.to_vec()),
        }
    }

    /// Cuts `bytes` at the given points (in any order, duplicates allowed).
    fn cut<'a>(bytes: &'a [u8], points: &[Index]) -> Vec<&'a [u8]> {
        let mut offsets: Vec<usize> = points
            .iter()
            .map(|point| point.index(bytes.len() + 1))
            .collect();
        offsets.sort_unstable();
        let mut chunks = Vec::new();
        let mut start = 0;
        for offset in offsets {
            chunks.push(&bytes[start..offset]);
            start = offset;
        }
        chunks.push(&bytes[start..]);
        chunks
    }

    // --- Multibulk ------------------------------------------------------------------------

    #[test]
    fn multibulk_command_is_parsed_and_removed() {
        let mut buf = BytesMut::from(&b"*3\r\n$3\r\nSET\r\n$3\r\nkey\r\n$5\r\nvalue\r\n*1"[..]);
        let args = parse_command(&mut buf, &authenticated()).unwrap().unwrap();
        assert_eq!(to_vecs(args), words(&["SET", "key", "value"]));
        assert_eq!(&buf[..], b"*1");
    }

    #[test]
    fn multibulk_arguments_share_the_read_buffer() {
        let mut buf = BytesMut::from(&b"*2\r\n$3\r\nGET\r\n$3\r\nkey\r\n"[..]);
        let base = buf.as_ptr() as usize;
        let args = parse_command(&mut buf, &authenticated()).unwrap().unwrap();
        assert_eq!(args[0].as_ptr() as usize - base, 8);
        assert_eq!(args[1].as_ptr() as usize - base, 17);
    }

    #[test]
    fn multibulk_with_many_arguments_spills_to_the_heap() {
        let command: Command = (0..100).map(|n| format!("arg{n}").into_bytes()).collect();
        assert_eq!(
            parse_once(&encode(&command), &authenticated()),
            Ok(Some(command))
        );
    }

    #[test]
    fn every_proper_prefix_waits_and_removes_nothing() {
        let bytes = encode(&words(&["SET", "key", "value"]));
        for len in 0..bytes.len() {
            let mut buf = BytesMut::from(&bytes[..len]);
            assert_eq!(
                parse_command(&mut buf, &authenticated()),
                Ok(None),
                "prefix {len}"
            );
            assert_eq!(buf.len(), len);
        }
    }

    #[test]
    fn empty_and_negative_multibulks_are_skipped() {
        for input in [
            &b"*0\r\n*1\r\n$4\r\nPING\r\n"[..],
            b"*-1\r\n*-10\r\n*1\r\n$4\r\nPING\r\n",
        ] {
            assert_eq!(
                parse_once(input, &unauthenticated()),
                Ok(Some(words(&["PING"])))
            );
        }
        let mut buf = BytesMut::from(&b"*0\r\n*-1\r\n"[..]);
        assert_eq!(parse_command(&mut buf, &authenticated()), Ok(None));
        assert!(buf.is_empty());
    }

    #[test]
    fn byte_after_cr_and_payload_trailer_are_not_checked() {
        // Redis steps over these bytes without looking; so do we.
        let input = b"*2\rX$4\rXPINGyy$0\r\n\r\n";
        assert_eq!(
            parse_once(input, &authenticated()),
            Ok(Some(words(&["PING", ""])))
        );
    }

    #[test]
    fn header_waits_for_the_byte_after_cr() {
        assert_eq!(parse_once(b"*abc\r", &authenticated()), Ok(None));
        assert_eq!(parse_once(b"*1\r\n$x\r", &authenticated()), Ok(None));
        assert_eq!(parse_once(b"*1\r", &authenticated()), Ok(None));
        assert_eq!(parse_once(b"*1\r\n$0\r", &authenticated()), Ok(None));
    }

    #[test]
    fn claimed_lengths_reserve_nothing() {
        let mut buf = BytesMut::with_capacity(64);
        buf.extend_from_slice(b"*2147483647\r\n$3\r\nGET\r\n$536870912\r\nabc");
        let capacity = buf.capacity();
        assert_eq!(parse_command(&mut buf, &authenticated()), Ok(None));
        assert_eq!(buf.capacity(), capacity);
    }

    #[test]
    fn errors_are_reported_before_the_command_is_complete() {
        let input = b"*3\r\n$3\r\nSET\r\n$1\r\nx\r\n$-10\r\n";
        assert_eq!(
            error_of(input, &authenticated()),
            ProtoError::InvalidBulkLength
        );
    }

    // --- Error texts and their conditions ---------------------------------------------------

    #[test]
    fn every_error_text_is_redis_text() {
        let cases = [
            (
                ProtoError::TooBigInlineRequest,
                "ERR Protocol error: too big inline request",
            ),
            (
                ProtoError::UnbalancedQuotes,
                "ERR Protocol error: unbalanced quotes in request",
            ),
            (
                ProtoError::TooBigMultibulkCount,
                "ERR Protocol error: too big mbulk count string",
            ),
            (
                ProtoError::InvalidMultibulkLength,
                "ERR Protocol error: invalid multibulk length",
            ),
            (
                ProtoError::UnauthenticatedMultibulkLength,
                "ERR Protocol error: unauthenticated multibulk length",
            ),
            (
                ProtoError::TooBigBulkCount,
                "ERR Protocol error: too big bulk count string",
            ),
            (
                ProtoError::ExpectedDollar(b'f'),
                "ERR Protocol error: expected '$', got 'f'",
            ),
            (
                ProtoError::InvalidBulkLength,
                "ERR Protocol error: invalid bulk length",
            ),
            (
                ProtoError::UnauthenticatedBulkLength,
                "ERR Protocol error: unauthenticated bulk length",
            ),
        ];
        for (error, text) in cases {
            assert_eq!(error.message(), text);
            assert_eq!(error.to_string(), text);
        }
    }

    #[test]
    fn expected_dollar_shows_the_byte_on_one_line() {
        let shown = |byte| ProtoError::ExpectedDollar(byte).message();
        assert_eq!(shown(b'\r'), "ERR Protocol error: expected '$', got ' '");
        assert_eq!(shown(b'\n'), "ERR Protocol error: expected '$', got ' '");
        assert_eq!(shown(0), "ERR Protocol error: expected '$', got '\0'");
        assert_eq!(
            shown(0xFF),
            "ERR Protocol error: expected '$', got '\u{FFFD}'"
        );
    }

    #[test]
    fn too_big_mbulk_count_string() {
        let mut input = vec![b'*'; LINE_BYTES_MAX];
        assert_eq!(parse_once(&input, &authenticated()), Ok(None));
        input.push(b'1');
        assert_eq!(
            error_of(&input, &authenticated()),
            ProtoError::TooBigMultibulkCount
        );
        // The rule looks at the line, not at the whole buffer: a `\r` further on is too late.
        input.extend_from_slice(b"\r\n");
        assert_eq!(
            error_of(&input, &authenticated()),
            ProtoError::TooBigMultibulkCount
        );
    }

    #[test]
    fn invalid_multibulk_length() {
        for input in [
            &b"*3000000000\r\n"[..],
            b"*2147483648\r\n",
            b"*abc\r\n",
            b"*\r\n",
            b"*+1\r\n",
            b"* 1\r\n",
            b"*1 \r\n",
            b"*01\r\n",
            b"*-0\r\n",
            b"*1\0\r\n",
            b"*99999999999999999999\r\n",
        ] {
            assert_eq!(
                error_of(input, &authenticated()),
                ProtoError::InvalidMultibulkLength
            );
        }
        // INT_MAX itself is accepted: the parser waits for the arguments.
        assert_eq!(parse_once(b"*2147483647\r\n", &authenticated()), Ok(None));
        // Validity is checked before authentication.
        assert_eq!(
            error_of(b"*abc\r\n", &unauthenticated()),
            ProtoError::InvalidMultibulkLength
        );
    }

    #[test]
    fn unauthenticated_multibulk_length() {
        assert_eq!(
            error_of(b"*11\r\n", &unauthenticated()),
            ProtoError::UnauthenticatedMultibulkLength
        );
        assert_eq!(parse_once(b"*10\r\n", &unauthenticated()), Ok(None));
        assert_eq!(parse_once(b"*11\r\n", &authenticated()), Ok(None));
    }

    #[test]
    fn too_big_bulk_count_string() {
        let mut input = b"*1\r\n".to_vec();
        input.resize(4 + LINE_BYTES_MAX, b'$');
        assert_eq!(parse_once(&input, &authenticated()), Ok(None));
        input.push(b'1');
        assert_eq!(
            error_of(&input, &authenticated()),
            ProtoError::TooBigBulkCount
        );
        // The line is measured before its first byte is checked, as in Redis.
        let mut input = b"*1\r\nfoo".to_vec();
        assert_eq!(parse_once(&input, &authenticated()), Ok(None));
        input.resize(5 + LINE_BYTES_MAX, b'o');
        assert_eq!(
            error_of(&input, &authenticated()),
            ProtoError::TooBigBulkCount
        );
    }

    #[test]
    fn expected_dollar() {
        let cases: [(&[u8], u8); 4] = [
            (b"*1\r\nfoo\r\n", b'f'),
            (b"*3\r\n$3\r\nSET\r\n$1\r\nx\r\nfooz\r\n", b'f'),
            (b"*1\r\n\r\n", b'\r'),
            (b"*2\r\n$1\r\na\r\n:1\r\n", b':'),
        ];
        for (input, found) in cases {
            assert_eq!(
                error_of(input, &authenticated()),
                ProtoError::ExpectedDollar(found)
            );
        }
        // Without the header's `\r` Redis does not look at its first byte yet.
        assert_eq!(parse_once(b"*1\r\nfoo", &authenticated()), Ok(None));
    }

    #[test]
    fn invalid_bulk_length() {
        for header in [
            "$-10",
            "$-1",
            "$-0",
            "$2000000000",
            "$blabla",
            "$+5",
            "$ 5",
            "$05",
            "$5 ",
            "$",
            "$1x",
            "$9223372036854775808",
            "$999999999999999999",
            "$9999999999999999999",
            "$00",
        ] {
            let input = format!("*3\r\n$3\r\nSET\r\n$1\r\nx\r\n{header}\r\n");
            assert_eq!(
                error_of(input.as_bytes(), &authenticated()),
                ProtoError::InvalidBulkLength,
                "{header}"
            );
        }
        let small = Limits {
            proto_max_bulk_len: 5,
            authenticated: true,
        };
        assert_eq!(
            parse_once(b"*1\r\n$5\r\nhello\r\n", &small),
            Ok(Some(words(&["hello"])))
        );
        assert_eq!(
            error_of(b"*1\r\n$6\r\n", &small),
            ProtoError::InvalidBulkLength
        );
        assert_eq!(
            parse_once(b"*1\r\n$0\r\n\r\n", &small),
            Ok(Some(words(&[""])))
        );
    }

    #[test]
    fn unauthenticated_bulk_length() {
        assert_eq!(
            parse_once(b"*1\r\n$16384\r\n", &unauthenticated()),
            Ok(None)
        );
        assert_eq!(
            error_of(b"*1\r\n$16385\r\n", &unauthenticated()),
            ProtoError::UnauthenticatedBulkLength
        );
        assert_eq!(parse_once(b"*1\r\n$16385\r\n", &authenticated()), Ok(None));
        // Above proto-max-bulk-len is invalid first, authenticated or not.
        let small = Limits {
            proto_max_bulk_len: 20_000,
            authenticated: false,
        };
        assert_eq!(
            error_of(b"*1\r\n$20001\r\n", &small),
            ProtoError::InvalidBulkLength
        );
    }

    #[test]
    fn redis_integer_rules() {
        let valid: [(&[u8], i64); 7] = [
            (b"0", 0),
            (b"5", 5),
            (b"-5", -5),
            (b"1234567890", 1_234_567_890),
            (b"9223372036854775807", i64::MAX),
            (b"-9223372036854775808", i64::MIN),
            (b"10", 10),
        ];
        for (text, value) in valid {
            assert_eq!(parse_redis_integer(text), Some(value));
        }
        for text in [
            &b""[..],
            b"-",
            b"+5",
            b" 5",
            b"5 ",
            b"05",
            b"00",
            b"-0",
            b"-05",
            b"1.0",
            b"9223372036854775808",
            b"-9223372036854775809",
            b"18446744073709551616",
            b"000000000000000000001",
        ] {
            assert_eq!(parse_redis_integer(text), None, "{text:?}");
        }
    }

    // --- Inline -----------------------------------------------------------------------------

    #[test]
    fn inline_lines_end_in_newline_with_optional_cr() {
        assert_eq!(
            parse_once(b"PING\r\n", &authenticated()),
            Ok(Some(words(&["PING"])))
        );
        assert_eq!(
            parse_once(b"set a b\n", &authenticated()),
            Ok(Some(words(&["set", "a", "b"])))
        );
        assert_eq!(parse_once(b"PING", &authenticated()), Ok(None));
        assert_eq!(parse_once(b"PING\r", &authenticated()), Ok(None));
        // Only the `\r` right before `\n` is dropped; others are blanks.
        assert_eq!(
            parse_once(b"a\rb\r\r\n", &authenticated()),
            Ok(Some(words(&["a", "b"])))
        );
    }

    #[test]
    fn inline_words_share_the_read_buffer() {
        let mut buf = BytesMut::from(&b"GET key\r\n"[..]);
        let base = buf.as_ptr() as usize;
        let args = parse_command(&mut buf, &authenticated()).unwrap().unwrap();
        assert_eq!(args[1].as_ptr() as usize - base, 4);
    }

    #[test]
    fn empty_inline_lines_are_skipped() {
        let input = b"\r\n\n   \t\r\n\x0b\x0c\nPING\r\n";
        let mut buf = BytesMut::from(&input[..]);
        let args = parse_command(&mut buf, &unauthenticated())
            .unwrap()
            .unwrap();
        assert_eq!(to_vecs(args), words(&["PING"]));
        assert!(buf.is_empty());
        let mut buf = BytesMut::from(&b"\r\n\r\n"[..]);
        assert_eq!(parse_command(&mut buf, &authenticated()), Ok(None));
        assert!(buf.is_empty());
    }

    #[test]
    fn inline_blanks() {
        let parsed = |input: &[u8]| parse_once(input, &authenticated());
        assert_eq!(parsed(b"  a \t b  \n"), Ok(Some(words(&["a", "b"]))));
        // `\v` and `\f` are skipped between words but do not end a word, as in sdssplitargs.
        assert_eq!(
            parsed(b"\x0ba\x0bb\x0c c\n"),
            Ok(Some(words(&["a\x0bb\x0c", "c"])))
        );
    }

    #[test]
    fn inline_double_quotes() {
        let parsed = |input: &[u8]| parse_once(input, &authenticated());
        assert_eq!(
            parsed(b"set \"hello world\" x\n"),
            Ok(Some(words(&["set", "hello world", "x"])))
        );
        assert_eq!(
            parsed(b"\"\\n\\r\\t\\b\\a\\\\\\\"\\q\"\n"),
            Ok(Some(vec![b"\n\r\t\x08\x07\\\"q".to_vec()]))
        );
        assert_eq!(
            parsed(b"\"\\x41\\x4a\\xfF\\x00\"\n"),
            Ok(Some(vec![b"AJ\xff\x00".to_vec()]))
        );
        // `\x` without two hex digits is an unknown escape: just `x`.
        assert_eq!(parsed(b"\"\\xZZ\\x4\"\n"), Ok(Some(words(&["xZZx4"]))));
        assert_eq!(parsed(b"\"\" x\n"), Ok(Some(words(&["", "x"]))));
        // A quote inside a word opens a quoted part that ends the word.
        assert_eq!(
            parsed(b"foo\"bar baz\" x\n"),
            Ok(Some(words(&["foobar baz", "x"])))
        );
        // Any blank may follow the closing quote, `\v` included.
        assert_eq!(parsed(b"\"a\"\x0bb\n"), Ok(Some(words(&["a", "b"]))));
        // Raw `\r` inside quotes is kept.
        assert_eq!(parsed(b"\"a\rb\"\r\n"), Ok(Some(words(&["a\rb"]))));
    }

    #[test]
    fn inline_single_quotes() {
        let parsed = |input: &[u8]| parse_once(input, &authenticated());
        assert_eq!(parsed(b"'it\\'s' x\n"), Ok(Some(words(&["it's", "x"]))));
        assert_eq!(
            parsed(b"'a\\nb \"c\"'\n"),
            Ok(Some(words(&["a\\nb \"c\""])))
        );
        assert_eq!(parsed(b"x'y z'\n"), Ok(Some(words(&["xy z"]))));
    }

    #[test]
    fn unbalanced_quotes_in_request() {
        for input in [
            &b"set \"\"\"test-key\"\"\" test-value\r\nping\r\n"[..],
            b"\"abc\n",
            b"'abc\n",
            b"\"a\\\"\n",
            b"\"a\\\n",
            b"\"a\"b\n",
            b"'a'b\n",
            b"\"a\"\"\n",
            b"'a\\'\n",
        ] {
            assert_eq!(
                error_of(input, &authenticated()),
                ProtoError::UnbalancedQuotes,
                "{input:?}"
            );
        }
    }

    #[test]
    fn too_big_inline_request() {
        let mut input = vec![b'a'; LINE_BYTES_MAX];
        assert_eq!(parse_once(&input, &authenticated()), Ok(None));
        // A line of exactly the limit is accepted.
        input.push(b'\n');
        let command = parse_once(&input, &authenticated()).unwrap().unwrap();
        assert_eq!(command[0].len(), LINE_BYTES_MAX);
        input.pop();
        input.push(b'a');
        assert_eq!(
            error_of(&input, &authenticated()),
            ProtoError::TooBigInlineRequest
        );
        input.push(b'\n');
        assert_eq!(
            error_of(&input, &authenticated()),
            ProtoError::TooBigInlineRequest
        );
    }

    #[test]
    fn inline_and_multibulk_interleave() {
        let input = b"PING\r\n*2\r\n$4\r\nECHO\r\n$2\r\nhi\r\nECHO 'x y'\n";
        let outcome = feed(&[input], &authenticated());
        let expected = vec![
            words(&["PING"]),
            words(&["ECHO", "hi"]),
            words(&["ECHO", "x y"]),
        ];
        assert_eq!(
            outcome,
            Outcome {
                commands: expected,
                end: Ok(Vec::new())
            }
        );
    }

    // --- Properties ---------------------------------------------------------------------------

    /// Pieces that, glued at random, reach deep into both parsers far more often than random
    /// bytes do.
    const FRAGMENTS: &[&[u8]] = &[
        b"*",
        b"$",
        b"\r\n",
        b"\r",
        b"\n",
        b"0",
        b"1",
        b"2",
        b"3",
        b"10",
        b"-1",
        b"-",
        b"+",
        b" ",
        b"\t",
        b"\"",
        b"'",
        b"\\",
        b"x",
        b"4f",
        b"a",
        b"PING",
        b"*1\r\n",
        b"*2\r\n",
        b"*0\r\n",
        b"*-1\r\n",
        b"$0\r\n",
        b"$1\r\n",
        b"$3\r\nfoo\r\n",
        b"\0",
        b"\xff",
        b"\x0b",
    ];

    fn protocol_noise() -> impl Strategy<Value = Vec<u8>> {
        prop_oneof![
            prop::collection::vec(any::<u8>(), 0..200),
            prop::collection::vec(prop::sample::select(FRAGMENTS), 0..60)
                .prop_map(|parts| parts.concat()),
        ]
    }

    fn any_limits() -> impl Strategy<Value = Limits> {
        (
            prop::sample::select(&[0u64, 3, 100, DEFAULT_BULK_BYTES_MAX][..]),
            any::<bool>(),
        )
            .prop_map(|(proto_max_bulk_len, authenticated)| Limits {
                proto_max_bulk_len,
                authenticated,
            })
    }

    fn any_command() -> impl Strategy<Value = Command> {
        prop::collection::vec(prop::collection::vec(any::<u8>(), 0..40), 1..10)
    }

    /// Frames Redis consumes without running anything.
    const NO_OPS: &[&[u8]] = &[b"*0\r\n", b"*-1\r\n", b"\r\n", b"\n", b"  \r\n"];

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(3000))]

        #[test]
        fn any_bytes_never_panic_nor_stall(input in protocol_noise(), limits in any_limits()) {
            let mut buf = BytesMut::from(&input[..]);
            for _ in 0..=input.len() {
                let before = buf.len();
                match parse_command(&mut buf, &limits) {
                    Ok(Some(args)) => {
                        prop_assert!(!args.is_empty());
                        prop_assert!(buf.len() < before);
                    }
                    Ok(None) => {
                        // Stateless: asking again without new bytes changes nothing.
                        let waiting = buf.clone();
                        prop_assert_eq!(parse_command(&mut buf, &limits), Ok(None));
                        prop_assert_eq!(buf, waiting);
                        return Ok(());
                    }
                    Err(_) => return Ok(()),
                }
            }
            prop_assert!(false, "more commands than bytes");
        }

        #[test]
        fn quick_header_agrees_with_the_general_path(
            head in prop::collection::vec(prop::sample::select(&b"$*-0"[..]), 0..3),
            digits in prop::collection::vec(prop::sample::select(&b"0123456789999"[..]), 0..22),
            tail in prop::collection::vec(prop::sample::select(&b"\r\n0x"[..]), 0..4),
        ) {
            let line = [head, digits, tail].concat();
            if let Some(quick) = quick_header(&line, 0, b'$') {
                let general = match header_line(&line, 0) {
                    HeaderLine::Complete { cr, next } => {
                        Some((line.get(1..cr).and_then(parse_redis_integer), next))
                    }
                    HeaderLine::Pending | HeaderLine::TooLong => None,
                };
                prop_assert_eq!(line.first(), Some(&b'$'));
                prop_assert_eq!(Some(quick), general);
            }
        }

        #[test]
        fn how_bytes_are_cut_never_matters(
            input in protocol_noise(),
            points in prop::collection::vec(any::<Index>(), 0..8),
            limits in any_limits(),
        ) {
            prop_assert_eq!(feed(&cut(&input, &points), &limits), feed(&[&input], &limits));
        }

        #[test]
        fn one_command_round_trips_in_any_chunks(
            command in any_command(),
            points in prop::collection::vec(any::<Index>(), 0..8),
        ) {
            let bytes = encode(&command);
            let outcome = feed(&cut(&bytes, &points), &authenticated());
            prop_assert_eq!(outcome, Outcome { commands: vec![command], end: Ok(Vec::new()) });
        }

        #[test]
        fn pipelined_commands_round_trip_in_any_chunks(
            commands in prop::collection::vec(
                (any_command(), prop::option::of(prop::sample::select(NO_OPS))),
                1..6,
            ),
            points in prop::collection::vec(any::<Index>(), 0..12),
        ) {
            let mut bytes = Vec::new();
            for (command, no_op) in &commands {
                bytes.extend_from_slice(no_op.unwrap_or_default());
                bytes.extend_from_slice(&encode(command));
            }
            let outcome = feed(&cut(&bytes, &points), &authenticated());
            let expected = commands.into_iter().map(|(command, _)| command).collect();
            prop_assert_eq!(outcome, Outcome { commands: expected, end: Ok(Vec::new()) });
        }
    }

    /// Not a check: prints the parser's cost per command on a long pipeline. Run with
    /// `cargo test --release --lib throughput -- --ignored --nocapture`.
    #[test]
    #[ignore]
    fn throughput_report() {
        const COMMANDS: usize = 1_000_000;
        let set = encode(&words(&["SET", "key:000000000001", "value12345"]));
        let get = encode(&words(&["GET", "key:000000000001"]));
        for (name, command) in [("SET", set), ("GET", get)] {
            let pipeline = command.repeat(COMMANDS);
            let mut buf = BytesMut::from(&pipeline[..]);
            let started = std::time::Instant::now();
            let mut parsed = 0;
            while let Some(args) = parse_command(&mut buf, &authenticated()).unwrap() {
                parsed += 1;
                std::hint::black_box(args);
            }
            let elapsed_ns = started.elapsed().as_nanos();
            assert_eq!(parsed, COMMANDS);
            println!("{name}: {} ns/command", elapsed_ns / COMMANDS as u128);
        }
    }
}
