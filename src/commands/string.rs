//! String commands (minimal set; the full family is being written).

use super::{flag, Cmd, Keys};
use crate::commands::err;
use crate::protocol::Out;
use crate::storage::value::RStr;
use crate::storage::{Keyspace, Value};
use bytes::Bytes;

const R: u32 = flag::READONLY | flag::FAST;
const W: u32 = flag::WRITE | flag::DENYOOM;

pub static COMMANDS: [Cmd; 2] = [
    Cmd::data("get", 2, R, Keys::Range(1, 1, 1), get).with_acl(&["read", "string", "fast"]),
    Cmd::data("set", -3, W, Keys::Range(1, 1, 1), set).with_acl(&["write", "string", "slow"]),
];

fn get(ks: &mut Keyspace, args: &[Bytes], out: &mut Out) {
    match ks.lookup_read(&args[1]).map(|e| &e.value) {
        None => out.null(),
        Some(Value::Str(s)) => {
            let mut scratch = [0u8; 24];
            out.bulk(s.as_bytes(&mut scratch));
        }
        #[allow(unreachable_patterns)]
        Some(_) => out.error(err::WRONGTYPE),
    }
}

fn set(ks: &mut Keyspace, args: &[Bytes], out: &mut Out) {
    if args.len() != 3 {
        out.error(err::SYNTAX);
        return;
    }
    ks.set(&args[1], Value::Str(RStr::from_bytes(&args[2])));
    ks.signal_modified(&args[1]);
    ks.notify('$', "set", &args[1]);
    ks.dirty(1);
    out.ok();
}
