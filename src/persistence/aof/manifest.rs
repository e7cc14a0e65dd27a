//! The AOF manifest (`<appendfilename>.manifest` in `appenddirname`), in Redis 7.0's text
//! format: one line per file, `file <name> seq <n> type <b|h|i>`, the base first, then history
//! files, then incr files in increasing sequence. Lines starting with `#` are comments; names
//! that need quoting are written as Redis's `sdscatrepr` writes them and read back with its
//! argument splitting rules (double quotes with `\xHH` escapes, or single quotes).
//!
//! Updates are atomic: the text goes to `temp-<appendfilename>.manifest`, which is fsynced,
//! renamed over the manifest, and the directory fsynced, so a crash leaves the old or the new
//! manifest, never a torn one.

use std::io::Write;
use std::path::{Path, PathBuf};

/// A manifest line's file type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FileType {
    Base,
    History,
    Incr,
}

impl FileType {
    fn code(self) -> char {
        match self {
            FileType::Base => 'b',
            FileType::History => 'h',
            FileType::Incr => 'i',
        }
    }
}

/// One file named by the manifest.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AofInfo {
    pub name: String,
    pub seq: i64,
    pub kind: FileType,
}

/// The manifest: which files make up the AOF, and the sequence counters for new ones.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Manifest {
    pub base: Option<AofInfo>,
    pub history: Vec<AofInfo>,
    pub incr: Vec<AofInfo>,
    pub base_seq: i64,
    pub incr_seq: i64,
}

/// The longest manifest line Redis reads.
const MANIFEST_LINE_BYTES_MAX: usize = 1024;

impl Manifest {
    /// The manifest as Redis writes it (`getAofManifestAsString`).
    pub fn to_text(&self) -> String {
        let mut s = String::new();
        let all = self.base.iter().chain(&self.history).chain(&self.incr);
        for ai in all {
            s.push_str(&format!(
                "file {} seq {} type {}\n",
                repr_if_needed(&ai.name),
                ai.seq,
                ai.kind.code()
            ));
        }
        s
    }

    /// Parses a manifest (`aofLoadManifestFromFile`). The error is Redis's message, with the
    /// offending line when there is one.
    pub fn parse(text: &[u8]) -> Result<Manifest, String> {
        let mut m = Manifest::default();
        let mut maxseq = 0i64;
        let mut linenum = 0;
        let fail = |why: &str, line: Option<(usize, &str)>| -> String {
            match line {
                Some((n, l)) => format!("Reading the manifest file, at line {n}: '{l}': {why}"),
                None => why.to_string(),
            }
        };
        let mut rest = text;
        if rest.is_empty() {
            return Err(fail("Found an empty AOF manifest", None));
        }
        while !rest.is_empty() {
            let (raw, next) = match rest.iter().position(|&b| b == b'\n') {
                Some(i) => (&rest[..i], &rest[i + 1..]),
                None => {
                    if rest.first() == Some(&b'#') {
                        break;
                    }
                    return Err(fail(
                        "The AOF manifest file contains too long line",
                        Some((linenum + 1, &String::from_utf8_lossy(rest))),
                    ));
                }
            };
            rest = next;
            linenum += 1;
            if raw.first() == Some(&b'#') {
                continue;
            }
            if raw.len() > MANIFEST_LINE_BYTES_MAX {
                return Err(fail("The AOF manifest file contains too long line", None));
            }
            let line = String::from_utf8_lossy(raw)
                .trim_matches([' ', '\t', '\r'])
                .to_string();
            let here = Some((linenum, line.as_str()));
            if line.is_empty() {
                return Err(fail("Invalid AOF manifest file format", here));
            }
            let argv = split_args(line.as_bytes())
                .filter(|a| a.len() >= 6 && a.len() % 2 == 0)
                .ok_or_else(|| fail("Invalid AOF manifest file format", here))?;
            let (mut name, mut seq, mut kind) = (None, 0i64, None);
            for pair in argv.chunks(2) {
                let key = String::from_utf8_lossy(&pair[0]).to_ascii_lowercase();
                match key.as_str() {
                    "file" => {
                        let n = String::from_utf8_lossy(&pair[1]).into_owned();
                        if n.contains('/') {
                            return Err(fail("File can't be a path, just a filename", here));
                        }
                        name = Some(n);
                    }
                    "seq" => seq = atoll(&pair[1]),
                    "type" => kind = pair[1].first().copied(),
                    _ => {}
                }
            }
            let (Some(name), Some(kind)) = (name, kind) else {
                return Err(fail("Invalid AOF manifest file format", here));
            };
            if seq == 0 {
                return Err(fail("Invalid AOF manifest file format", here));
            }
            match kind {
                b'b' => {
                    if m.base.is_some() {
                        return Err(fail("Found duplicate base file information", here));
                    }
                    m.base_seq = seq;
                    m.base = Some(AofInfo {
                        name,
                        seq,
                        kind: FileType::Base,
                    });
                }
                b'h' => m.history.push(AofInfo {
                    name,
                    seq,
                    kind: FileType::History,
                }),
                b'i' => {
                    if seq <= maxseq {
                        return Err(fail("Found a non-monotonic sequence number", here));
                    }
                    maxseq = seq;
                    m.incr_seq = seq;
                    m.incr.push(AofInfo {
                        name,
                        seq,
                        kind: FileType::Incr,
                    });
                }
                _ => return Err(fail("Unknown AOF file type", here)),
            }
        }
        if linenum == 0 {
            return Err(fail("Found an empty AOF manifest", None));
        }
        Ok(m)
    }

    /// Reads `dir/<filename>.manifest`; `Ok(None)` when it does not exist.
    pub fn read(dir: &Path, filename: &str) -> Result<Option<Manifest>, String> {
        let path = dir.join(manifest_name(filename));
        match std::fs::read(&path) {
            Ok(text) => Manifest::parse(&text).map(Some),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(format!(
                "Fatal error: can't open the AOF manifest file {} for reading: {}",
                path.display(),
                e
            )),
        }
    }

    /// Writes the manifest atomically (temp file, fsync, rename, fsync the directory).
    pub fn persist(&self, dir: &Path, filename: &str) -> std::io::Result<()> {
        let tmp = dir.join(format!("temp-{}", manifest_name(filename)));
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(self.to_text().as_bytes())?;
        f.sync_all()?;
        drop(f);
        std::fs::rename(&tmp, dir.join(manifest_name(filename)))?;
        fsync_dir(dir)
    }

    /// The next base file's name, marking the current base as history
    /// (`getNewBaseFileNameAndMarkPreAsHistory`).
    pub fn new_base(&mut self, filename: &str, rdb: bool) -> String {
        if let Some(mut b) = self.base.take() {
            b.kind = FileType::History;
            self.history.insert(0, b);
        }
        self.base_seq += 1;
        let name = format!(
            "{filename}.{}.base.{}",
            self.base_seq,
            if rdb { "rdb" } else { "aof" }
        );
        self.base = Some(AofInfo {
            name: name.clone(),
            seq: self.base_seq,
            kind: FileType::Base,
        });
        name
    }

    /// The next incr file's name, appended to the incr list (`getNewIncrAofName`).
    pub fn new_incr(&mut self, filename: &str) -> String {
        self.incr_seq += 1;
        let name = format!("{filename}.{}.incr.aof", self.incr_seq);
        self.incr.push(AofInfo {
            name: name.clone(),
            seq: self.incr_seq,
            kind: FileType::Incr,
        });
        name
    }

    /// Moves every incr file but the last `keep` to history (`markRewrittenIncrAofAsHistory`).
    pub fn incr_to_history(&mut self, keep: usize) {
        let n = self.incr.len().saturating_sub(keep);
        for mut ai in self.incr.drain(..n).rev() {
            ai.kind = FileType::History;
            self.history.insert(0, ai);
        }
    }
}

pub fn manifest_name(filename: &str) -> String {
    format!("{filename}.manifest")
}

pub fn fsync_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::File::open(dir)?.sync_all()
}

pub fn path_in(dir: &Path, name: &str) -> PathBuf {
    dir.join(name)
}

fn atoll(b: &[u8]) -> i64 {
    let s = String::from_utf8_lossy(b);
    let s = s.trim_start();
    let (neg, digits) = match s.strip_prefix('-') {
        Some(d) => (true, d),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    let mut v: i64 = 0;
    for c in digits.bytes().take_while(u8::is_ascii_digit) {
        v = v.saturating_mul(10).saturating_add((c - b'0') as i64);
    }
    if neg {
        -v
    } else {
        v
    }
}

/// Whether Redis would quote the name (`sdsneedsrepr`).
fn repr_if_needed(name: &str) -> String {
    let needs = name
        .bytes()
        .any(|c| c == b'\\' || c == b'"' || c == b'\'' || !(0x21..0x7f).contains(&c));
    if !needs {
        return name.to_string();
    }
    let mut s = String::from("\"");
    for c in name.bytes() {
        match c {
            b'\\' => s.push_str("\\\\"),
            b'"' => s.push_str("\\\""),
            b'\n' => s.push_str("\\n"),
            b'\r' => s.push_str("\\r"),
            b'\t' => s.push_str("\\t"),
            7 => s.push_str("\\a"),
            8 => s.push_str("\\b"),
            c if c.is_ascii_graphic() || c == b' ' => s.push(c as char),
            c => s.push_str(&format!("\\x{c:02x}")),
        }
    }
    s.push('"');
    s
}

/// Redis's `sdssplitargs`: words separated by blanks, double-quoted words with escapes,
/// single-quoted words. `None` on unbalanced quotes.
pub fn split_args(line: &[u8]) -> Option<Vec<Vec<u8>>> {
    let mut out = Vec::new();
    let mut i = 0;
    let n = line.len();
    loop {
        while i < n && line[i].is_ascii_whitespace() {
            i += 1;
        }
        if i >= n {
            return Some(out);
        }
        let mut cur = Vec::new();
        let (mut inq, mut insq) = (false, false);
        loop {
            if inq {
                if i >= n {
                    return None;
                }
                let c = line[i];
                if c == b'\\' && i + 3 < n && line[i + 1] == b'x' {
                    let hex = std::str::from_utf8(&line[i + 2..i + 4]).ok();
                    if let Some(v) = hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                        cur.push(v);
                        i += 4;
                        continue;
                    }
                }
                if c == b'\\' && i + 1 < n {
                    i += 1;
                    cur.push(match line[i] {
                        b'n' => b'\n',
                        b'r' => b'\r',
                        b't' => b'\t',
                        b'b' => 8,
                        b'a' => 7,
                        o => o,
                    });
                } else if c == b'"' {
                    if i + 1 < n && !line[i + 1].is_ascii_whitespace() {
                        return None;
                    }
                    inq = false;
                    i += 1;
                    break;
                } else {
                    cur.push(c);
                }
                i += 1;
            } else if insq {
                if i >= n {
                    return None;
                }
                let c = line[i];
                if c == b'\\' && i + 1 < n && line[i + 1] == b'\'' {
                    cur.push(b'\'');
                    i += 2;
                    continue;
                }
                if c == b'\'' {
                    if i + 1 < n && !line[i + 1].is_ascii_whitespace() {
                        return None;
                    }
                    insq = false;
                    i += 1;
                    break;
                }
                cur.push(c);
                i += 1;
            } else {
                if i >= n {
                    break;
                }
                match line[i] {
                    b' ' | b'\n' | b'\r' | b'\t' | 0 => break,
                    b'"' => inq = true,
                    b'\'' => insq = true,
                    c => cur.push(c),
                }
                i += 1;
            }
        }
        let _ = (inq, insq);
        out.push(cur);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_redis_text() {
        let text = b"file appendonly.aof.2.base.rdb seq 2 type b\n\
                     file appendonly.aof.1.base.rdb seq 1 type h\n\
                     file appendonly.aof.3.incr.aof seq 3 type i\n\
                     file appendonly.aof.4.incr.aof seq 4 type i\n";
        let m = Manifest::parse(text).expect("valid");
        assert_eq!(m.base_seq, 2);
        assert_eq!(m.incr_seq, 4);
        assert_eq!(m.history.len(), 1);
        assert_eq!(m.to_text().as_bytes(), &text[..]);
    }

    #[test]
    fn rejects_what_redis_rejects() {
        assert!(Manifest::parse(b"").is_err());
        assert!(Manifest::parse(b"file a seq 1 type x\n").is_err());
        assert!(Manifest::parse(b"file a seq 2 type i\nfile b seq 1 type i\n").is_err());
        assert!(Manifest::parse(b"file a/b seq 1 type b\n").is_err());
        assert!(Manifest::parse(b"file a seq 1\n").is_err());
        assert!(Manifest::parse(b"file a seq 1 type b\nfile b seq 2 type b\n").is_err());
        assert!(Manifest::parse(b"# only a comment\n").is_ok());
    }

    #[test]
    fn quoted_names_survive() {
        let mut m = Manifest::default();
        m.new_incr("a b\"c");
        let back = Manifest::parse(m.to_text().as_bytes()).expect("valid");
        assert_eq!(back.incr[0].name, "a b\"c.1.incr.aof");
    }

    #[test]
    fn rewrite_moves_old_files_to_history() {
        let mut m = Manifest::default();
        m.new_base("x", true);
        m.new_incr("x");
        m.new_incr("x");
        m.new_base("x", true);
        m.incr_to_history(1);
        assert_eq!(m.base.as_ref().map(|b| b.seq), Some(2));
        assert_eq!(m.incr.len(), 1);
        assert_eq!(m.history.len(), 2);
    }
}
