//! Loading the AOF: the manifest, the base file, the incr files (`loadAppendOnlyFiles`).
//!
//! Commands are parsed by `CommandReader` (shared with `check`) and replayed through the
//! command table on a keyspace spanning every shard, in the database the stream selected.
//! MULTI…EXEC is queued and applied as one unit; an incomplete one at the end of the last
//! file is reverted like a truncated tail. The shards are locked one batch of commands at a
//! time (start-up, while they answer `-LOADING`) or held by the caller (DEBUG LOADAOF).
//!
//! Errors are Redis's log lines. A truncated tail of the last file is cut at the last whole
//! command when `aof-load-truncated` is on; everything else stops the load with nothing
//! written.

use super::manifest::Manifest;
use super::Logged;
use crate::commands::Kind;
use crate::persistence::load::Target;
use crate::server::Server;
use crate::shard::DataGuard;
use crate::storage::{Keyspace, ShardData};
use crate::{log_notice, log_warning};
use bytes::Bytes;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::sync::atomic::Ordering;

/// Redis's limit on a `*`/`$` header line (`AOF_ANNOTATION_LINE_MAX_LEN`).
const LINE_BYTES_MAX: usize = 1024;
/// Commands replayed per lock of every shard during a start-up load.
const REPLAY_BATCH_CMDS: usize = 1024;
/// The largest argument accepted (Redis's `proto-max-bulk-len` ceiling).
const ARG_BYTES_MAX: u64 = 1 << 40;

/// How reading a command failed.
#[derive(Debug, PartialEq, Eq)]
pub enum ReadError {
    /// The file ends inside a command.
    Truncated,
    /// Not RESP where a command should be.
    Format,
    Io(String),
}

/// Parses RESP commands from an AOF, tracking the byte offset.
pub struct CommandReader<R> {
    inner: R,
    pub offset: u64,
    line: Vec<u8>,
}

impl<R: BufRead> CommandReader<R> {
    pub fn new(inner: R, offset: u64) -> Self {
        CommandReader {
            inner,
            offset,
            line: Vec::new(),
        }
    }

    /// Reads one line including `\n` (at most `LINE_BYTES_MAX` bytes, as `fgets`). Returns
    /// false at EOF before any byte.
    fn read_line(&mut self) -> Result<bool, ReadError> {
        self.line.clear();
        let mut limited = (&mut self.inner).take(LINE_BYTES_MAX as u64 - 1);
        let n = limited
            .read_until(b'\n', &mut self.line)
            .map_err(|e| ReadError::Io(e.to_string()))?;
        self.offset += n as u64;
        Ok(n > 0)
    }

    /// The next command: `Ok(None)` at a clean end of file.
    pub fn next_command(&mut self) -> Result<Option<Vec<Bytes>>, ReadError> {
        loop {
            if !self.read_line()? {
                return Ok(None);
            }
            match self.line.first() {
                Some(b'#') => {
                    // An annotation (`#TS:...`): skip the rest of a long line too.
                    while !self.line.ends_with(b"\n") {
                        if !self.read_line()? {
                            return Ok(None);
                        }
                    }
                    continue;
                }
                Some(b'*') => break,
                _ => return Err(ReadError::Format),
            }
        }
        if !self.line.ends_with(b"\n") {
            return Err(if self.line.len() < LINE_BYTES_MAX - 1 {
                ReadError::Truncated
            } else {
                ReadError::Format
            });
        }
        let argc = atoi(self.line.get(1..).unwrap_or_default());
        if argc < 1 {
            return Err(ReadError::Format);
        }
        let mut argv = Vec::with_capacity((argc as usize).min(1024));
        for _ in 0..argc {
            if !self.read_line()? {
                return Err(ReadError::Truncated);
            }
            if self.line.first() != Some(&b'$') {
                return Err(ReadError::Format);
            }
            if !self.line.ends_with(b"\n") {
                return Err(ReadError::Truncated);
            }
            let len = atoi(self.line.get(1..).unwrap_or_default());
            if len < 0 || len as u64 > ARG_BYTES_MAX {
                return Err(ReadError::Format);
            }
            let mut arg = vec![0u8; len as usize];
            self.read_exact(&mut arg)?;
            let mut crlf = [0u8; 2];
            self.read_exact(&mut crlf)?;
            argv.push(Bytes::from(arg));
        }
        Ok(Some(argv))
    }

    fn read_exact(&mut self, buf: &mut [u8]) -> Result<(), ReadError> {
        match self.inner.read_exact(buf) {
            Ok(()) => {
                self.offset += buf.len() as u64;
                Ok(())
            }
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => Err(ReadError::Truncated),
            Err(e) => Err(ReadError::Io(e.to_string())),
        }
    }
}

/// `atoi`/`strtol` of a header line's number.
fn atoi(b: &[u8]) -> i64 {
    let mut v: i64 = 0;
    let (neg, digits) = match b.first() {
        Some(b'-') => (true, &b[1..]),
        _ => (false, b),
    };
    for &c in digits.iter().take_while(|c| c.is_ascii_digit()) {
        v = v.saturating_mul(10).saturating_add((c - b'0') as i64);
    }
    if neg {
        -v
    } else {
        v
    }
}

/// How loading one file ended (`AOF_OK`, `AOF_EMPTY`, `AOF_TRUNCATED`...).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FileStatus {
    Ok,
    Empty,
    NotExist,
    Truncated,
    Failed,
}

/// Applies replayed commands to the shards.
pub struct Replayer<'a, 'g> {
    target: Target<'a, 'g>,
    nshards: usize,
    databases: usize,
    db: usize,
    /// Commands queued inside MULTI.
    multi: Option<Vec<Vec<Bytes>>>,
    batch: Vec<Vec<Bytes>>,
    scratch: Vec<u8>,
    warned_conn: bool,
}

impl<'a, 'g> Replayer<'a, 'g> {
    pub fn new(target: Target<'a, 'g>, nshards: usize, databases: usize) -> Self {
        Replayer {
            target,
            nshards,
            databases,
            db: 0,
            multi: None,
            batch: Vec::new(),
            scratch: Vec::new(),
            warned_conn: false,
        }
    }

    /// Takes one command from the file. Returns the unknown command's name on error.
    fn push(&mut self, argv: Vec<Bytes>) -> Result<(), String> {
        let Some(cmd) = crate::commands::lookup(&argv[0]) else {
            return Err(String::from_utf8_lossy(&argv[0]).into_owned());
        };
        match cmd.name {
            "multi" => {
                self.multi = Some(Vec::new());
                return Ok(());
            }
            "exec" => {
                if let Some(q) = self.multi.take() {
                    self.batch.extend(q);
                }
                return Ok(());
            }
            _ => {}
        }
        if self.multi.is_none() && crate::scripting::runs_script(cmd) {
            if let Target::Batched(server) = self.target {
                // A script of an old AOF (propagated verbatim): it takes the shards itself,
                // so the batch before it is applied first and no lock is held meanwhile.
                self.apply();
                run_script(server, self.db, cmd, &argv);
                return Ok(());
            }
        }
        match self.multi.as_mut() {
            Some(q) => q.push(argv),
            None => self.batch.push(argv),
        }
        if self.multi.is_none() && self.batch.len() >= REPLAY_BATCH_CMDS {
            self.apply();
        }
        Ok(())
    }

    fn in_multi(&self) -> bool {
        self.multi.is_some()
    }

    /// Applies the batch, with every shard locked (or held).
    pub fn apply(&mut self) {
        if self.batch.is_empty() {
            return;
        }
        let batch = std::mem::take(&mut self.batch);
        match &mut self.target {
            Target::Held(guards) => {
                let (nshards, databases) = (self.nshards, self.databases);
                for argv in &batch {
                    run_one(
                        guards,
                        nshards,
                        databases,
                        &mut self.db,
                        argv,
                        &mut self.scratch,
                        &mut self.warned_conn,
                    );
                }
            }
            Target::Batched(server) => {
                let mut guards = server.lock_all();
                for argv in &batch {
                    run_one(
                        &mut guards,
                        self.nshards,
                        self.databases,
                        &mut self.db,
                        argv,
                        &mut self.scratch,
                        &mut self.warned_conn,
                    );
                }
            }
        }
    }
}

/// Runs a script command (EVAL, EVALSHA, FCALL...) of the file as a client of its own would,
/// its reply discarded (`loadSingleAppendOnlyFile`'s fake client). At start-up and for
/// DEBUG LOADAOF: no shard is held by the caller.
fn run_script(server: &Server, db: usize, cmd: &'static crate::commands::Cmd, argv: &[Bytes]) {
    let Kind::Conn(f) = cmd.kind else {
        return;
    };
    let now = crate::util::now_ms();
    let shared = std::sync::Arc::new(crate::server::client::ClientShared {
        id: server
            .next_client_id
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed),
        shard: 0,
        token: u32::MAX,
        addr: "?:0".to_string(),
        laddr: "?:0".to_string(),
        unix: false,
        fd: -1,
        created_ms: now,
        name: std::sync::Mutex::new(Vec::new()),
        lib_name: std::sync::Mutex::new(Vec::new()),
        lib_ver: std::sync::Mutex::new(Vec::new()),
        db: db.into(),
        last_interaction_ms: now.into(),
        last_cmd: std::ptr::null_mut::<crate::commands::Cmd>().into(),
        proto: 2.into(),
        gen: 0,
        bufs: Default::default(),
        flags: std::sync::Mutex::new("N".to_string()),
        kill: Default::default(),
        waiter: std::sync::Mutex::new(None),
        tracking: Default::default(),
    });
    let mut client = crate::server::Client::new(u32::MAX, 0, -1, shared, true);
    client.db = db;
    let mut scratch = Vec::new();
    let mut out = crate::protocol::Out::new(&mut scratch, 2);
    let mut ctx = crate::server::ConnCtx {
        client: &mut client,
        server,
        // No shard thread runs this script: none may take it for its own busy script.
        shard: usize::MAX,
        now_ms: now,
        deliveries: Vec::new(),
        notes: Vec::new(),
        ready_keys: Vec::new(),
        propagate: Vec::new(),
    };
    f(&mut ctx, argv, &mut out);
    drop(out);
    if scratch.first() == Some(&b'-') {
        log_warning!(
            "Script command '{}' from the AOF failed: {}",
            cmd.name,
            String::from_utf8_lossy(&scratch).trim_end()
        );
    }
}

/// Runs one command of the file over every shard.
fn run_one(
    guards: &mut [DataGuard<'_>],
    nshards: usize,
    databases: usize,
    db: &mut usize,
    argv: &[Bytes],
    scratch: &mut Vec<u8>,
    warned_conn: &mut bool,
) {
    let Some(mut cmd) = crate::commands::lookup(&argv[0]) else {
        return;
    };
    if cmd.name == "function" {
        // Libraries live outside the shards: FUNCTION LOAD & co. go to the registry.
        if let Err(e) = crate::scripting::functions::replay(argv) {
            log_warning!("Failed replaying a FUNCTION command from the AOF: {}", e);
        }
        return;
    }
    if cmd.name == "select" {
        if let Some(n) = argv
            .get(1)
            .and_then(|a| std::str::from_utf8(a).ok())
            .and_then(|s| s.parse::<usize>().ok())
            .filter(|n| *n < databases)
        {
            *db = n;
        }
        return;
    }
    if !cmd.subcommands.is_empty() && argv.len() >= 2 {
        if let Some(sub) = cmd.find_sub(&argv[1]) {
            cmd = sub;
        }
    }
    let Kind::Data(f) = cmd.kind else {
        if !*warned_conn {
            log_warning!(
                "AOF command '{}' is not replayed (connection-level command)",
                String::from_utf8_lossy(&argv[0])
            );
            *warned_conn = true;
        }
        return;
    };
    scratch.clear();
    let mut out = crate::protocol::Out::new(scratch, 2);
    let parts: Vec<&mut ShardData> = guards.iter_mut().map(|g| &mut **g).collect();
    let mut ks = Keyspace::many(parts, nshards, *db, crate::util::now_ms());
    ks.no_block = true;
    ks.no_touch = true;
    ks.loading = true;
    ks.exec(f, argv, &mut out);
    drop(ks);
    for g in guards.iter_mut() {
        g.blocking.ready.clear();
    }
}

/// Replays the commands of one file from `offset` (after an RDB preamble, or 0).
fn replay_file(
    path: &Path,
    name: &str,
    replayer: &mut Replayer<'_, '_>,
    truncate_ok: bool,
    progress: Option<&std::sync::atomic::AtomicU64>,
    start: u64,
) -> FileStatus {
    let file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) => {
            log_warning!(
                "Fatal error: can't open the append log file {} for reading: {}",
                name,
                e
            );
            return FileStatus::Failed;
        }
    };
    let mut file = file;
    if start > 0 {
        use std::io::Seek;
        if let Err(e) = file.seek(std::io::SeekFrom::Start(start)) {
            log_warning!(
                "Unrecoverable error reading the append only file {}: {}",
                name,
                e
            );
            return FileStatus::Failed;
        }
    }
    let mut reader = CommandReader::new(BufReader::with_capacity(1 << 20, file), start);
    let mut valid_up_to = start;
    let mut valid_before_multi = start;
    let mut reported = start;
    let err = loop {
        if let Some(p) = progress {
            p.fetch_add(reader.offset - reported, Ordering::Relaxed);
            reported = reader.offset;
        }
        match reader.next_command() {
            Ok(Some(argv)) => {
                let is_multi = argv[0].eq_ignore_ascii_case(b"multi");
                if is_multi {
                    valid_before_multi = valid_up_to;
                }
                if let Err(unknown) = replayer.push(argv) {
                    log_warning!(
                        "Unknown command '{}' reading the append only file {}",
                        unknown,
                        name
                    );
                    return FileStatus::Failed;
                }
                valid_up_to = reader.offset;
            }
            Ok(None) => {
                if replayer.in_multi() {
                    log_warning!(
                        "Revert incomplete MULTI/EXEC transaction in AOF file {}",
                        name
                    );
                    replayer.multi = None;
                    valid_up_to = valid_before_multi;
                    break ReadError::Truncated;
                }
                replayer.apply();
                return FileStatus::Ok;
            }
            Err(e) => break e,
        }
    };
    match err {
        ReadError::Io(e) => {
            log_warning!(
                "Unrecoverable error reading the append only file {}: {}",
                name,
                e
            );
            FileStatus::Failed
        }
        ReadError::Format => {
            // Redis's message names no position; the offset of the first command that does
            // not parse tells the operator where to look (or where `--fix` would cut).
            log_warning!(
                "Bad file format in the append only file {} at offset {}",
                name,
                valid_up_to
            );
            log_warning!(
                "Bad file format reading the append only file {}: make a backup of your AOF file, then use ./redis-check-aof --fix <filename.manifest>",
                name
            );
            FileStatus::Failed
        }
        ReadError::Truncated => {
            replayer.multi = None;
            if truncate_ok {
                log_warning!(
                    "!!! Warning: short read while loading the AOF file {}!!!",
                    name
                );
                log_warning!(
                    "!!! Truncating the AOF {} at offset {} !!!",
                    name,
                    valid_up_to
                );
                let cut = std::fs::OpenOptions::new()
                    .write(true)
                    .open(path)
                    .and_then(|f| f.set_len(valid_up_to).and_then(|_| f.sync_all()));
                match cut {
                    Ok(()) => {
                        log_warning!(
                            "AOF {} loaded anyway because aof-load-truncated is enabled",
                            name
                        );
                        replayer.apply();
                        return FileStatus::Truncated;
                    }
                    Err(e) => log_warning!("Error truncating the AOF file {}: {}", name, e),
                }
            }
            log_warning!(
                "Unexpected end of file reading the append only file {}. You can: 1) Make a backup of your AOF file, then use ./redis-check-aof --fix <filename.manifest>. 2) Alternatively you can set the 'aof-load-truncated' configuration option to yes and restart the server.",
                name
            );
            FileStatus::Failed
        }
    }
}

/// Loads one file of the AOF (`loadSingleAppendOnlyFile`): an RDB base or commands.
fn load_one(
    server: &Server,
    dir: &Path,
    name: &str,
    replayer: &mut Replayer<'_, '_>,
    truncate_ok: bool,
) -> FileStatus {
    let path = dir.join(name);
    let meta = match std::fs::metadata(&path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            log_warning!("The append log file {} doesn't exist: {}", name, e);
            return FileStatus::NotExist;
        }
        Err(e) => {
            log_warning!(
                "Fatal error: can't open the append log file {} for reading: {}",
                name,
                e
            );
            return FileStatus::Failed;
        }
    };
    if meta.len() == 0 {
        return FileStatus::Empty;
    }
    let mut sig = [0u8; 5];
    let is_rdb = std::fs::File::open(&path)
        .and_then(|mut f| f.read_exact(&mut sig))
        .is_ok()
        && &sig == b"REDIS";
    let progress = match &replayer.target {
        Target::Batched(s) => Some(&s.persistence.loading_loaded_bytes),
        Target::Held(_) => None,
    };
    if !is_rdb {
        return replay_file(&path, name, replayer, truncate_ok, progress, 0);
    }
    let cfg = server.config.load();
    let old_style = name == cfg.appendfilename;
    if old_style {
        log_notice!("Reading RDB preamble from AOF file...");
    } else {
        log_notice!("Reading RDB base file on AOF loading...");
    }
    replayer.apply();
    let path_s = path.to_string_lossy().into_owned();
    let target = match &mut replayer.target {
        Target::Held(g) => Target::Held(g),
        Target::Batched(s) => Target::Batched(s),
    };
    match crate::persistence::load::load_file(&path_s, target, cfg.databases, false, 0, &|| false) {
        Ok(_) if old_style => match rdb_end(&path) {
            Some(end) => {
                log_notice!("Reading the remaining AOF tail...");
                replay_file(&path, name, replayer, truncate_ok, None, end)
            }
            None => FileStatus::Failed,
        },
        Ok(_) => FileStatus::Ok,
        Err(e) => {
            for line in e.report(&path_s) {
                log_warning!("{}", line);
            }
            log_warning!(
                "Error reading the RDB base file {}, AOF loading aborted",
                name
            );
            FileStatus::Failed
        }
    }
}

/// Where the RDB preamble of an old-style AOF ends (a second pass that keeps nothing).
fn rdb_end(path: &Path) -> Option<u64> {
    struct Counting<R>(R, u64);
    impl<R: Read> Read for Counting<R> {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            let n = self.0.read(buf)?;
            self.1 += n as u64;
            Ok(n)
        }
    }
    let f = std::fs::File::open(path).ok()?;
    let mut r = Counting(BufReader::new(f), 0);
    crate::persistence::rdb::read_rdb(&mut r, &mut |_| Ok(()), &mut |_, _| {}).ok()?;
    Some(r.1)
}

/// Moves an old-style AOF (`dir/<appendfilename>`) into the AOF directory as the base of a
/// new manifest (`aofUpgradePrepare`), when the directory has no AOF of its own.
fn upgrade_if_needed(dir: &Path, filename: &str, m: &mut Manifest) -> Result<(), Logged> {
    if !Path::new(filename).exists() {
        return Ok(());
    }
    let empty = m.base.is_none() && m.incr.is_empty();
    let interrupted = m.base.as_ref().is_some_and(|b| b.name == filename)
        && m.incr.is_empty()
        && !dir.join(filename).exists();
    if dir.exists() && !empty && !interrupted {
        return Ok(());
    }
    if let Err(e) = std::fs::create_dir_all(dir) {
        log_warning!(
            "Can't open or create append-only dir {}: {}",
            dir.display(),
            e
        );
        return Err(Logged);
    }
    *m = Manifest {
        base: Some(super::manifest::AofInfo {
            name: filename.to_string(),
            seq: 1,
            kind: super::manifest::FileType::Base,
        }),
        base_seq: 1,
        ..Default::default()
    };
    if let Err(e) = m.persist(dir, filename) {
        log_warning!("Can't persist the AOF manifest: {}", e);
        return Err(Logged);
    }
    if let Err(e) = std::fs::rename(filename, dir.join(filename)) {
        log_warning!(
            "Error trying to rename the existing AOF to the new AOF directory {}: {}",
            dir.display(),
            e
        );
        return Err(Logged);
    }
    log_notice!(
        "Successfully migrated an old-style AOF into the AOF directory {}.",
        dir.display()
    );
    Ok(())
}

/// What a successful load found.
#[derive(Debug, Default)]
pub struct Loaded {
    pub manifest: Manifest,
    pub base_size: u64,
    pub total_size: u64,
    pub last_incr_size: u64,
    /// No AOF at all (`AOF_NOT_EXIST`).
    pub not_exist: bool,
}

/// Loads the AOF the manifest names into `target`. `Err` after Redis's log lines.
pub fn load_all(
    server: &Server,
    manifest: Manifest,
    dir: &Path,
    target: Target<'_, '_>,
) -> Result<Loaded, Logged> {
    let cfg = server.config.load();
    let mut loaded = Loaded {
        not_exist: manifest.base.is_none() && manifest.incr.is_empty(),
        ..Default::default()
    };
    if loaded.not_exist {
        loaded.manifest = manifest;
        return Ok(loaded);
    }
    let files: Vec<String> = manifest
        .base
        .iter()
        .chain(&manifest.incr)
        .map(|i| i.name.clone())
        .collect();
    for name in &files {
        match std::fs::metadata(dir.join(name)) {
            Ok(m) => loaded.total_size += m.len(),
            Err(e) => {
                log_warning!("The append log file {} doesn't exist: {}", name, e);
                return Err(Logged);
            }
        }
    }
    loaded.last_incr_size = manifest
        .incr
        .last()
        .and_then(|i| std::fs::metadata(dir.join(&i.name)).ok())
        .map_or(0, |m| m.len());
    if let Target::Batched(s) = &target {
        let p = &s.persistence;
        p.loading_total_bytes
            .store(loaded.total_size, Ordering::Relaxed);
        p.loading_loaded_bytes.store(0, Ordering::Relaxed);
        p.loading_start_secs
            .store(crate::util::now_ms() / 1000, Ordering::Relaxed);
    }
    let mut replayer = Replayer::new(target, server.nshards(), cfg.databases);
    let total = files.len();
    for (i, name) in files.iter().enumerate() {
        let last = i + 1 == total;
        let start = std::time::Instant::now();
        let status = load_one(server, dir, name, &mut replayer, cfg.aof_load_truncated);
        let is_base = i == 0 && manifest.base.is_some();
        if is_base {
            loaded.base_size = std::fs::metadata(dir.join(name)).map_or(0, |m| m.len());
        }
        match status {
            FileStatus::Ok | FileStatus::Empty => {}
            FileStatus::Truncated if last => {}
            FileStatus::Truncated => {
                log_warning!("Fatal error: the truncated file is not the last file");
                return Err(Logged);
            }
            FileStatus::NotExist | FileStatus::Failed => return Err(Logged),
        }
        if matches!(status, FileStatus::Ok | FileStatus::Truncated) {
            log_notice!(
                "DB loaded from {} file {}: {:.3} seconds",
                if is_base { "base" } else { "incr" },
                name,
                start.elapsed().as_secs_f64()
            );
        }
    }
    replayer.apply();
    if cfg.aof_load_truncated {
        // A file cut above changed the sizes.
        loaded.total_size = files
            .iter()
            .filter_map(|n| std::fs::metadata(dir.join(n)).ok())
            .map(|m| m.len())
            .sum();
        loaded.last_incr_size = manifest
            .incr
            .last()
            .and_then(|i| std::fs::metadata(dir.join(&i.name)).ok())
            .map_or(0, |m| m.len());
    }
    loaded.manifest = manifest;
    Ok(loaded)
}

/// Reads the manifest of the configured AOF directory, logging Redis's fatal message on
/// error.
pub fn read_manifest(dir: &Path, filename: &str) -> Result<Manifest, Logged> {
    match Manifest::read(dir, filename) {
        Ok(m) => Ok(m.unwrap_or_default()),
        Err(e) => {
            log_warning!("*** FATAL AOF MANIFEST FILE ERROR ***");
            log_warning!("{}", e);
            Err(Logged)
        }
    }
}

/// Start-up with `appendonly yes` (`loadDataFromDisk` + `aofOpenIfNeededOnServerStart`):
/// load the AOF, then open it for appending and start the writer. `Err(status)` to exit.
pub fn load_at_startup(server: &std::sync::Arc<Server>) -> Result<(), i32> {
    let cfg = server.config.load();
    let dir = std::path::PathBuf::from(&cfg.appenddirname);
    let start = std::time::Instant::now();
    let mut manifest = read_manifest(&dir, &cfg.appendfilename).map_err(|_| 1)?;
    upgrade_if_needed(&dir, &cfg.appendfilename, &mut manifest).map_err(|_| 1)?;
    let result = load_all(server, manifest, &dir, Target::Batched(server));
    let loaded = result.map_err(|_| 1)?;
    for s in &server.shards {
        s.lock_data().stats.dirty = 0;
    }
    if !loaded.not_exist && loaded.total_size > 0 {
        log_notice!(
            "DB loaded from append only file: {:.3} seconds",
            start.elapsed().as_secs_f64()
        );
    }
    let opened = super::rewrite::open_on_startup(server, loaded).map_err(|_| 1);
    // Only now may writes run: the AOF collects them.
    server.persistence.loading.store(false, Ordering::SeqCst);
    opened
}

/// DEBUG LOADAOF: make the AOF durable, empty the dataset, load the AOF again, all with every
/// shard held. A failed load exits the process, as Redis does.
pub fn debug_loadaof(server: &Server) -> Result<(), String> {
    {
        let mut guards = server.lock_all();
        super::rewrite::wait_durable(server);
        for g in guards.iter_mut() {
            for db in g.dbs.iter_mut() {
                db.clear();
            }
        }
        // Redis's `emptyData` here empties the function libraries too; the AOF brings them
        // back.
        crate::scripting::flush_libraries();
        // Set before the shards are let go: from here on other connections get -LOADING, as
        // from Redis's `startLoading`, while the load takes the shards one batch at a time.
        server.persistence.loading.store(true, Ordering::SeqCst);
    }
    let cfg = server.config.load();
    let dir = std::path::PathBuf::from(&cfg.appenddirname);
    let Ok(manifest) = read_manifest(&dir, &cfg.appendfilename) else {
        server.persistence.loading.store(false, Ordering::SeqCst);
        return Err("ERR".to_string());
    };
    let result = load_all(server, manifest, &dir, Target::Batched(server));
    for g in server.lock_all().iter_mut() {
        g.stats.dirty = 0;
    }
    server.persistence.loading.store(false, Ordering::SeqCst);
    match result {
        Ok(loaded) => {
            // The manifest read from disk becomes the server's, as Redis's
            // `aofLoadManifestFromDisk` (after a rewrite with the AOF off it names no incr
            // file, and the next one is numbered 1 again).
            server.aof.state.lock().manifest = loaded.manifest;
            super::rewrite::gc_history(server);
            log_warning!("Append Only File loaded by DEBUG LOADAOF");
            Ok(())
        }
        Err(Logged) => {
            log_warning!("Fatal error: DEBUG LOADAOF failed, exiting");
            std::process::exit(1)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_all(data: &[u8]) -> (Vec<Vec<Bytes>>, Result<(), ReadError>, u64) {
        let mut r = CommandReader::new(data, 0);
        let mut cmds = Vec::new();
        loop {
            match r.next_command() {
                Ok(Some(c)) => cmds.push(c),
                Ok(None) => return (cmds, Ok(()), r.offset),
                Err(e) => return (cmds, Err(e), r.offset),
            }
        }
    }

    #[test]
    fn reads_commands_and_skips_annotations() {
        let data = b"#TS:1700000000\r\n*2\r\n$6\r\nSELECT\r\n$1\r\n0\r\n*3\r\n$3\r\nSET\r\n$1\r\na\r\n$0\r\n\r\n";
        let (cmds, res, off) = read_all(data);
        assert_eq!(res, Ok(()));
        assert_eq!(cmds.len(), 2);
        assert_eq!(cmds[1][2].len(), 0);
        assert_eq!(off, data.len() as u64);
    }

    #[test]
    fn truncated_and_corrupt_tails_are_told_apart() {
        let good = b"*3\r\n$3\r\nSET\r\n$1\r\na\r\n$1\r\nb\r\n";
        for cut in 1..good.len() {
            let (cmds, res, _) = read_all(&good[..cut]);
            assert!(cmds.is_empty());
            assert_eq!(res, Err(ReadError::Truncated), "cut at {cut}");
        }
        let (_, res, _) = read_all(b"*3\r\n$3\r\nSET\r\nX1\r\n");
        assert_eq!(res, Err(ReadError::Format));
        let (_, res, _) = read_all(b"hello\r\n");
        assert_eq!(res, Err(ReadError::Format));
    }
}
