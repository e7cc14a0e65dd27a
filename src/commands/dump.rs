//! DUMP and RESTORE: a value serialized in RDB form (version 10, CRC64 footer), compatible
//! with Redis's payloads both ways (`persistence::rdb`).

use super::{err, flag, parse, prop, Cmd, Keys};
use crate::persistence::rdb;
use crate::protocol::Out;
use crate::storage::{Entry, Keyspace};
use bytes::Bytes;

pub static COMMANDS: [Cmd; 2] = [
    Cmd::data("dump", 2, flag::READONLY, Keys::Range(1, 1, 1), dump)
        .with_acl(&["keyspace", "read", "slow"]),
    Cmd::data(
        "restore",
        -4,
        flag::WRITE | flag::DENYOOM,
        Keys::Range(1, 1, 1),
        restore,
    )
    .with_acl(&["keyspace", "write", "slow", "dangerous"]),
];

fn dump(ks: &mut Keyspace, args: &[Bytes], out: &mut Out) {
    match ks.lookup_read(&args[1]) {
        None => out.null(),
        Some(e) => out.bulk(&rdb::dump_payload(&e.value)),
    }
}

fn restore(ks: &mut Keyspace, args: &[Bytes], out: &mut Out) {
    let (mut replace, mut absttl) = (false, false);
    let mut idle: Option<i64> = None;
    let mut freq: Option<i64> = None;
    let mut j = 4;
    while j < args.len() {
        let more = j + 1 < args.len();
        if parse::eq(&args[j], "replace") {
            replace = true;
        } else if parse::eq(&args[j], "absttl") {
            absttl = true;
        } else if parse::eq(&args[j], "idletime") && more && freq.is_none() {
            match parse::i64_arg(&args[j + 1]) {
                Ok(v) if v >= 0 => idle = Some(v),
                Ok(_) => return out.error("ERR Invalid IDLETIME value, must be >= 0"),
                Err(e) => return out.error(e),
            }
            j += 1;
        } else if parse::eq(&args[j], "freq") && more && idle.is_none() {
            match parse::i64_arg(&args[j + 1]) {
                Ok(v) if (0..=255).contains(&v) => freq = Some(v),
                Ok(_) => return out.error("ERR Invalid FREQ value, must be >= 0 and <= 255"),
                Err(e) => return out.error(e),
            }
            j += 1;
        } else {
            return out.error(err::SYNTAX);
        }
        j += 1;
    }
    let key = &args[1];
    if !replace && ks.lookup_write(key).is_some() {
        return out.error("BUSYKEY Target key name already exists.");
    }
    let ttl = match parse::i64_arg(&args[2]) {
        Ok(t) if t >= 0 => t,
        Ok(_) => return out.error("ERR Invalid TTL value, must be >= 0"),
        Err(e) => return out.error(e),
    };
    let deep = rdb::deep_sanitize_restore(ks.from_master);
    let value = match rdb::restore_payload_deep(&args[3], deep) {
        Ok(v) => v,
        Err(rdb::RdbError::Checksum { .. }) => {
            return out.error("ERR DUMP payload version or checksum are wrong")
        }
        Err(rdb::RdbError::Corrupt { reason, .. }) if reason.contains("footer") => {
            return out.error("ERR DUMP payload version or checksum are wrong")
        }
        Err(rdb::RdbError::Unsupported { reason, .. }) if reason.contains("version") => {
            return out.error("ERR DUMP payload version or checksum are wrong")
        }
        Err(e) => {
            // Redis logs the decoder's complaint at verbose level in a RESTORE context.
            crate::log_verbose!("{}", e);
            return out.error("ERR Bad data format");
        }
    };
    let deleted = replace && ks.remove(key).is_some();
    let deadline = if ttl != 0 && !absttl {
        ttl.saturating_add(ks.now_ms as i64)
    } else {
        ttl
    };
    if deadline != 0 && (deadline as u64) <= ks.now_ms {
        if deleted {
            ks.signal_modified(key);
            ks.notify('g', "del", key);
            ks.dirty(1);
            ks.rewrite_as(|| prop::deletion(key, false));
        }
        return out.ok();
    }
    let mut entry = Entry::new(value);
    entry.expire_ms = deadline.max(0) as u64;
    if let Some(secs) = idle {
        entry.lru_secs = entry
            .lru_secs
            .saturating_sub(secs.min(u32::MAX as i64) as u32);
    }
    if let Some(f) = freq {
        entry.lfu = crate::storage::evict::lfu_with_freq(f.clamp(0, 255) as u8);
    }
    ks.insert_entry(key, entry);
    ks.signal_modified(key);
    ks.notify('g', "restore", key);
    ks.dirty(1);
    if ttl != 0 && !absttl {
        // Propagated with the absolute deadline.
        ks.rewrite_as(|| {
            let mut v = args.to_vec();
            v[2] = prop::num(deadline);
            v.push(prop::lit("ABSTTL"));
            v
        });
    }
    out.ok();
}
