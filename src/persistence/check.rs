//! `shardis-server --check-rdb FILE` (and the binary run as `redis-check-rdb FILE`): decode a
//! whole RDB without starting a server, print a summary shaped like redis-check-rdb's, and
//! exit 0 when the file is valid, 1 otherwise.

use super::rdb::{read_rdb, LoadedEntry, RdbError};
use std::io::BufReader;

/// Runs the check and returns the process exit status.
pub fn run(path: &str) -> i32 {
    println!("[offset 0] Checking RDB file {path}");
    let file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) => {
            println!("Cannot check RDB that is a directory or can't be opened: {e}");
            return 1;
        }
    };
    let mut reader = BufReader::with_capacity(1 << 20, file);
    let now_ms = crate::util::now_ms();
    let (mut keys, mut expires, mut already_expired) = (0u64, 0u64, 0u64);
    let mut last_key: Vec<u8> = Vec::new();
    let mut sink = |e: LoadedEntry| -> Result<(), RdbError> {
        keys += 1;
        if e.entry.expire_ms != 0 {
            expires += 1;
            if e.entry.expire_ms <= now_ms {
                already_expired += 1;
            }
        }
        last_key = e.key;
        Ok(())
    };
    let mut aux = |k: &[u8], v: &[u8]| {
        println!(
            "[info] AUX FIELD {} = '{}'",
            String::from_utf8_lossy(k),
            String::from_utf8_lossy(v)
        );
    };
    let result = read_rdb(&mut reader, &mut sink, &mut aux);
    match result {
        Ok(stats) => {
            for code in &stats.functions {
                let first = code.split(|&b| b == b'\n').next().unwrap_or_default();
                println!(
                    "[info] FUNCTION library '{}'",
                    String::from_utf8_lossy(first)
                );
            }
            match stats.checksum {
                Some(_) => println!("[offset {}] Checksum OK", stats.bytes),
                None => println!(
                    "[offset {}] RDB file was saved with checksum disabled: no check performed.",
                    stats.bytes
                ),
            }
            println!("[offset {}] \\o/ RDB looks OK! \\o/", stats.bytes);
            println!("[info] {keys} keys read");
            println!("[info] {expires} expires");
            println!("[info] {already_expired} already expired");
            0
        }
        Err(e) => {
            println!("--- RDB ERROR DETECTED ---");
            let offset = match &e {
                RdbError::Corrupt { offset, .. }
                | RdbError::Unsupported { offset, .. }
                | RdbError::Checksum { offset, .. } => offset.to_string(),
                _ => "?".to_string(),
            };
            println!("[offset {offset}] {e}");
            println!("[additional info] In file: {path}");
            if !last_key.is_empty() {
                println!(
                    "[additional info] Last key read successfully: '{}'",
                    String::from_utf8_lossy(&last_key)
                );
            }
            println!("[info] {keys} keys read");
            println!("[info] {expires} expires");
            println!("[info] {already_expired} already expired");
            1
        }
    }
}
