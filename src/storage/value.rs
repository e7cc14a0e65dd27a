//! Values and their encodings.
//!
//! Strings keep Redis's three encodings so `OBJECT ENCODING` answers as Redis does: `int`
//! (a canonical decimal i64), `embstr` (at most 44 bytes, created by SET-like commands) and
//! `raw` (longer, or modified in place by APPEND/SETRANGE/SETBIT).

/// The longest string Redis stores as `embstr`.
pub const EMBSTR_LEN_MAX: usize = 44;

#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Str(RStr),
    /// Lists, hashes and sorted sets are one word each (a listpack pointer, or a tagged
    /// pointer to their big encoding: `storage::compact`), so they need no box of their own.
    List(super::list::List),
    Hash(super::hash::Hash),
    Set(Box<super::set::Set>),
    ZSet(super::zset::ZSet),
    Stream(Box<super::stream::Stream>),
}

#[derive(Clone, Debug, PartialEq)]
pub enum RStr {
    Int(i64),
    /// Immutable strings behind one thin pointer (the length lives in the allocation), so
    /// that a `Value` is two words: "embstr" up to 44 bytes, "raw" beyond.
    Emb(super::thin::ThinBytes),
    /// Strings changed in place (APPEND, SETRANGE, SETBIT...), with room to grow; boxed so
    /// the variant stays one word.
    Raw(Box<Vec<u8>>),
}

impl Value {
    /// The name TYPE reports.
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Str(_) => "string",
            Value::List(_) => "list",
            Value::Hash(_) => "hash",
            Value::Set(_) => "set",
            Value::ZSet(_) => "zset",
            Value::Stream(_) => "stream",
        }
    }

    /// The name OBJECT ENCODING reports.
    pub fn encoding(&self) -> &'static str {
        match self {
            Value::Str(RStr::Int(_)) => "int",
            // Redis embeds strings of up to 44 bytes; longer immutable ones share our thin
            // layout but are "raw" to clients, as in Redis.
            Value::Str(RStr::Emb(b)) if b.len() <= EMBSTR_LEN_MAX => "embstr",
            Value::Str(RStr::Emb(_)) => "raw",
            Value::Str(RStr::Raw(_)) => "raw",
            Value::List(l) => l.encoding(),
            Value::Hash(h) => h.encoding(),
            Value::Set(s) => s.encoding(),
            Value::ZSet(z) => z.encoding(),
            Value::Stream(_) => "stream",
        }
    }

    /// A string value as SET creates it: int-encoded when it is a canonical i64, else one
    /// thin allocation (embstr or raw by length).
    pub fn from_bytes(b: &[u8]) -> Value {
        Value::Str(RStr::from_bytes(b))
    }
}

impl RStr {
    pub fn from_bytes(b: &[u8]) -> RStr {
        if b.len() <= 20 {
            if let Some(n) = parse_canonical_i64(b) {
                return RStr::Int(n);
            }
        }
        // Every string a client sets is one thin allocation, whatever its length: the
        // keyspace's values are mostly never modified in place, and a boxed vector would cost
        // a second allocation (24 bytes) per key. The first in-place change (APPEND,
        // SETRANGE...) moves it to `Raw` (`make_raw`).
        RStr::Emb(b.into())
    }

    /// A raw-encoded string owning `v`.
    pub fn raw(v: Vec<u8>) -> RStr {
        RStr::Raw(Box::new(v))
    }

    /// An embstr-encoded string of `b`.
    pub fn emb(b: &[u8]) -> RStr {
        RStr::Emb(b.into())
    }

    /// The string's bytes (ints are formatted into `scratch`).
    pub fn as_bytes<'a>(&'a self, scratch: &'a mut [u8; 24]) -> &'a [u8] {
        match self {
            RStr::Int(n) => {
                let mut it = crate::protocol::write::itoa_buf(*n);
                let s = it.as_bytes_mut();
                scratch[..s.len()].copy_from_slice(s);
                &scratch[..s.len()]
            }
            RStr::Emb(b) => b,
            RStr::Raw(v) => v.as_slice(),
        }
    }

    /// The bytes, as an owned vector.
    pub fn to_vec(&self) -> Vec<u8> {
        let mut scratch = [0u8; 24];
        self.as_bytes(&mut scratch).to_vec()
    }

    pub fn len(&self) -> usize {
        match self {
            RStr::Int(n) => crate::protocol::write::itoa_buf(*n).as_bytes_mut().len(),
            RStr::Emb(b) => b.len(),
            RStr::Raw(v) => v.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Turns the value into the raw encoding and returns its buffer for in-place changes.
    pub fn make_raw(&mut self) -> &mut Vec<u8> {
        if !matches!(self, RStr::Raw(_)) {
            *self = RStr::raw(self.to_vec());
        }
        match self {
            RStr::Raw(v) => v,
            // The line above made it raw.
            _ => unreachable!("make_raw left a non-raw string"),
        }
    }
}

/// Parses a decimal i64 the way Redis's `string2ll` does: no leading '+', no leading zeros
/// (except "0" itself), no spaces, no "-0".
pub fn parse_canonical_i64(b: &[u8]) -> Option<i64> {
    if b.is_empty() || b.len() > 20 {
        return None;
    }
    if b == b"0" {
        return Some(0);
    }
    let (neg, digits) = if b[0] == b'-' {
        (true, &b[1..])
    } else {
        (false, b)
    };
    if digits.is_empty() || digits[0] == b'0' {
        return None;
    }
    let mut v: u64 = 0;
    for &c in digits {
        if !c.is_ascii_digit() {
            return None;
        }
        v = v.checked_mul(10)?.checked_add((c - b'0') as u64)?;
    }
    if neg {
        if v > i64::MAX as u64 + 1 {
            None
        } else {
            Some((v as i64).wrapping_neg())
        }
    } else if v > i64::MAX as u64 {
        None
    } else {
        Some(v as i64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_ints() {
        assert_eq!(parse_canonical_i64(b"0"), Some(0));
        assert_eq!(parse_canonical_i64(b"-9223372036854775808"), Some(i64::MIN));
        assert_eq!(parse_canonical_i64(b"9223372036854775808"), None);
        assert_eq!(parse_canonical_i64(b"01"), None);
        assert_eq!(parse_canonical_i64(b"-0"), None);
        assert_eq!(parse_canonical_i64(b"+1"), None);
        assert_eq!(parse_canonical_i64(b" 1"), None);
        assert_eq!(Value::from_bytes(b"12").encoding(), "int");
        assert_eq!(Value::from_bytes(b"hello").encoding(), "embstr");
        assert_eq!(Value::from_bytes(&[b'x'; 45]).encoding(), "raw");
    }

    #[test]
    fn values_stay_two_words() {
        // Every key pays for a Value: keep it at 16 bytes.
        assert_eq!(std::mem::size_of::<Value>(), 16);
        assert_eq!(std::mem::size_of::<super::super::list::List>(), 8);
        assert_eq!(std::mem::size_of::<super::super::hash::Hash>(), 8);
        assert_eq!(std::mem::size_of::<super::super::zset::ZSet>(), 8);
    }
}
