//! `shardis-server --check-aof FILE` and the binary run as `redis-check-aof FILE`: validates
//! an AOF (a manifest, or a single base/incr file) without starting a server, as
//! `redis-check-aof` does. Exit status 0 when valid, 1 otherwise.

use super::load::{CommandReader, ReadError};
use super::manifest::Manifest;
use std::io::{BufReader, Read};
use std::path::Path;

/// Checks one file of commands: `Ok(bytes)` when every command is whole and MULTI/EXEC
/// balanced, else the offset of the last valid command and why.
fn check_commands(path: &Path, start: u64) -> Result<u64, (u64, String)> {
    let file = std::fs::File::open(path).map_err(|e| (0, e.to_string()))?;
    let mut file = BufReader::new(file);
    if start > 0 {
        std::io::copy(&mut (&mut file).take(start), &mut std::io::sink())
            .map_err(|e| (0, e.to_string()))?;
    }
    let mut r = CommandReader::new(file, start);
    let mut valid = start;
    let mut multi_at: Option<u64> = None;
    loop {
        match r.next_command() {
            Ok(Some(argv)) => {
                if argv[0].eq_ignore_ascii_case(b"multi") {
                    if multi_at.is_some() {
                        return Err((valid, "Unexpected MULTI".into()));
                    }
                    multi_at = Some(valid);
                } else if argv[0].eq_ignore_ascii_case(b"exec") && multi_at.take().is_none() {
                    return Err((valid, "Unexpected EXEC".into()));
                }
                valid = r.offset;
            }
            Ok(None) => {
                if let Some(at) = multi_at {
                    return Err((at, "Reached EOF before reading EXEC for MULTI".into()));
                }
                return Ok(valid);
            }
            Err(ReadError::Truncated) => return Err((valid, "Truncated file".into())),
            Err(ReadError::Format) => return Err((valid, "Bad file format".into())),
            Err(ReadError::Io(e)) => return Err((valid, e)),
        }
    }
}

/// Checks one file (RDB base or commands). Prints like redis-check-aof.
fn check_file(path: &Path) -> bool {
    let mut sig = [0u8; 5];
    let is_rdb = std::fs::File::open(path)
        .and_then(|mut f| f.read_exact(&mut sig))
        .is_ok()
        && &sig == b"REDIS";
    let name = path.display();
    if is_rdb {
        println!(
            "The AOF appears to start with an RDB preamble.\nChecking the RDB preamble to start:"
        );
        let code = crate::persistence::check::run(&path.to_string_lossy());
        if code != 0 {
            println!("RDB preamble of AOF file is not sane, aborting.");
            return false;
        }
        println!("RDB preamble is OK, proceeding with AOF tail...");
        println!("AOF {name} is valid");
        return true;
    }
    match check_commands(path, 0) {
        Ok(n) => {
            println!(
                "AOF analyzed: filename={name}, size={}, ok_up_to={n}, ok_up_to_line=?, diff=0",
                size(path)
            );
            println!("AOF {name} is valid");
            true
        }
        Err((at, why)) => {
            println!("0x{at:>16x}: {why}");
            println!(
                "AOF analyzed: filename={name}, size={}, ok_up_to={at}, diff={}",
                size(path),
                size(path).saturating_sub(at)
            );
            println!("AOF {name} is not valid. Use the --fix option to try fixing it.");
            false
        }
    }
}

fn size(path: &Path) -> u64 {
    std::fs::metadata(path).map_or(0, |m| m.len())
}

/// Runs the check; returns the exit status.
pub fn run(file: &str) -> i32 {
    let path = Path::new(file);
    if !path.exists() {
        println!("Cannot open file {file}: No such file or directory");
        return 1;
    }
    if file.ends_with(".manifest") {
        let dir = path.parent().unwrap_or(Path::new("."));
        let text = match std::fs::read(path) {
            Ok(t) => t,
            Err(e) => {
                println!("Cannot open file {file}: {e}");
                return 1;
            }
        };
        let m = match Manifest::parse(&text) {
            Ok(m) => m,
            Err(e) => {
                println!("Invalid AOF manifest file format: {e}");
                return 1;
            }
        };
        println!("Start checking Multi Part AOF");
        let files: Vec<_> = m.base.iter().chain(&m.incr).collect();
        for f in files {
            let p = dir.join(&f.name);
            println!(
                "Start to check {} AOF file {}.",
                if f.seq == m.base_seq && m.base.as_ref().is_some_and(|b| b.name == f.name) {
                    "BASE"
                } else {
                    "INCR"
                },
                f.name
            );
            if !check_file(&p) {
                return 1;
            }
        }
        println!("All AOF files and manifest are valid");
        return 0;
    }
    if check_file(path) {
        0
    } else {
        1
    }
}
