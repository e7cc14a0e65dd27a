//! DEBUG DIGEST and DIGEST-VALUE: Redis's dataset digest, bit for bit.
//!
//! Redis computes, per key, `mix(key)` then the value's digest, xors the per-key digests of a
//! database together (so key order does not matter) and mixes in the database index. Because
//! the same function over the same data gives the same 20 bytes on both servers, comparing
//! digests compares whole datasets across shardis and real Redis.

use crate::storage::{Entry, Value};

pub type Digest = [u8; 20];

fn sha1(data: &[u8]) -> Digest {
    sha1_smol::Sha1::from(data).digest().bytes()
}

/// digest ^= SHA1(data)
pub fn xor_digest(digest: &mut Digest, data: &[u8]) {
    let h = sha1(data);
    for (d, x) in digest.iter_mut().zip(h.iter()) {
        *d ^= x;
    }
}

/// digest = SHA1(digest ^ SHA1(data)): order-preserving mixing.
pub fn mix_digest(digest: &mut Digest, data: &[u8]) {
    xor_digest(digest, data);
    *digest = sha1(&digest[..]);
}

/// Redis's type codes (OBJ_STRING ...), mixed into each value's digest.
fn type_code(v: &Value) -> u32 {
    match v {
        Value::Str(_) => 0,
        Value::List(_) => 1,
        Value::Set(_) => 2,
        Value::ZSet(_) => 3,
        Value::Hash(_) => 4,
        Value::Stream(_) => 6,
    }
}

/// The digest of one key's value (what DEBUG DIGEST-VALUE prints), mixed into `digest`.
pub fn value_digest(digest: &mut Digest, e: &Entry) {
    mix_digest(digest, &type_code(&e.value).to_be_bytes());
    match &e.value {
        Value::Str(s) => {
            let mut scratch = [0u8; 24];
            mix_digest(digest, s.as_bytes(&mut scratch));
        }
        Value::List(l) => {
            for item in l.iter() {
                item.with_bytes(|b| mix_digest(digest, b));
            }
        }
        Value::Set(set) => {
            for m in set.iter() {
                m.with_bytes(|b| xor_digest(digest, b));
            }
        }
        Value::Hash(h) => {
            for (field, value) in h.iter() {
                let mut ele = [0u8; 20];
                field.with_bytes(|b| mix_digest(&mut ele, b));
                value.with_bytes(|b| mix_digest(&mut ele, b));
                xor_digest(digest, &ele);
            }
        }
        Value::ZSet(z) => {
            for (member, score) in z.iter() {
                let mut ele = [0u8; 20];
                member.with_bytes(|b| mix_digest(&mut ele, b));
                mix_digest(&mut ele, crate::protocol::fmt_double(score).as_bytes());
                xor_digest(digest, &ele);
            }
        }
        Value::Stream(st) => {
            for (id, fields) in st.iter() {
                mix_digest(digest, format!("{}.{}", id.ms, id.seq).as_bytes());
                for f in fields {
                    mix_digest(digest, f);
                }
            }
        }
    }
    if e.expire_ms != 0 {
        xor_digest(digest, b"!!expire!!");
    }
}

/// The digest of a key/value pair as DEBUG DIGEST xors it into its database's digest.
pub fn key_digest(key: &[u8], e: &Entry) -> Digest {
    let mut d = [0u8; 20];
    mix_digest(&mut d, key);
    value_digest(&mut d, e);
    d
}

pub fn hex(d: &Digest) -> String {
    d.iter().map(|b| format!("{:02x}", b)).collect()
}
