//! Loading an RDB file into the shards: at start-up (before any client is served) and for
//! DEBUG RELOAD.
//!
//! The file is decoded once, in order, by `rdb::read_rdb`; each key goes straight to the
//! shard that owns its slot, into the database the file names. The caller holds every shard
//! (start-up: nothing runs yet; DEBUG RELOAD: the command holds them all, as Redis's single
//! thread does), so the load is atomic to clients. Keys whose deadline has passed are skipped
//! and counted, as a master does. A duplicate key is an error unless merging (DEBUG RELOAD
//! MERGE), and a database index beyond `databases` is fatal, as in Redis.
//!
//! On any error nothing is written anywhere: start-up logs the file and the byte offset and
//! exits with status 1, leaving the file as it was.

use super::rdb::{read_rdb, LoadedEntry, RdbError};
use crate::server::Server;
use crate::shard::DataGuard;
use crate::storage::{key_slot, slot_owner};
use crate::{log_notice, log_warning};
use std::io::{BufReader, Read};
use std::sync::atomic::Ordering;

/// Reads the file through a buffer of this size.
const READ_BUFFER_BYTES: usize = 1 << 20;

/// What a successful load did.
#[derive(Debug, Default)]
pub struct Loaded {
    pub keys_loaded: u64,
    pub keys_expired: u64,
    pub functions: Vec<Vec<u8>>,
    /// The replication identity the file recorded (`repl-id`, `repl-offset`,
    /// `repl-stream-db`), when it has all three.
    pub repl: Option<crate::replication::fullsync::SavedIdentity>,
    /// The keys dropped because they had expired (db, key): a master propagates their DELs.
    pub expired: Vec<(usize, Vec<u8>)>,
}

/// Why a load failed.
#[derive(Debug)]
pub enum LoadError {
    /// The file could not be opened (`NotFound` = there is no file).
    Open(std::io::Error),
    /// The file is not a loadable RDB.
    Rdb(RdbError),
}

impl LoadError {
    /// The log lines Redis would print for this failure, naming the file and the offset.
    pub fn report(&self, path: &str) -> Vec<String> {
        match self {
            LoadError::Open(e) => vec![format!("Fatal error loading the DB: {e}. Exiting.")],
            LoadError::Rdb(RdbError::Checksum {
                offset,
                stored,
                computed,
            }) => vec![
                format!(
                    "Wrong RDB checksum expected: ({stored:016x}) got: ({computed:016x}). Aborting now."
                ),
                format!(
                    "Internal error in RDB reading offset {offset} of file {path} -> RDB CRC error"
                ),
            ],
            LoadError::Rdb(RdbError::Corrupt { offset, reason })
            | LoadError::Rdb(RdbError::Unsupported { offset, reason }) => {
                let mut lines = Vec::new();
                if reason.contains("integrity check failed") {
                    // Redis reports the failed validation, then where reading stopped.
                    lines.push(format!("{reason}."));
                }
                lines.push(format!(
                    "Internal error in RDB reading offset {offset} of file {path} -> {reason}"
                ));
                lines
            }
            LoadError::Rdb(RdbError::Io(e)) => {
                vec![format!("Error reading the RDB file {path}: {e}")]
            }
            LoadError::Rdb(RdbError::Rejected(reason)) => {
                vec![format!("Error loading the RDB file {path}: {reason}")]
            }
        }
    }
}

/// Where loaded keys go.
pub enum Target<'a, 'g> {
    /// Shards the caller holds for the whole load (DEBUG RELOAD).
    Held(&'a mut [DataGuard<'g>]),
    /// The server's shards, locked for one batch of keys at a time, so that the shard
    /// threads keep answering (`-LOADING`, INFO, DEBUG LOG) while a start-up load runs.
    Batched(&'a Server),
}

/// Keys decoded before the shards are locked to insert them (start-up loading).
const LOAD_BATCH_KEYS: usize = 1024;

/// Why a load stopped early.
fn interrupted_error() -> RdbError {
    RdbError::Rejected("loading interrupted by a shutdown signal".into())
}

/// Loads the RDB at `path` into `target`. With `merge`, a key already present is replaced;
/// otherwise a duplicate is an error. `key_delay_us` (`key-load-delay`) slows each key down
/// for tests; `interrupted` is asked between batches whether to give up.
pub fn load_file(
    path: &str,
    target: Target<'_, '_>,
    databases: usize,
    merge: bool,
    key_delay_us: i64,
    interrupted: &dyn Fn() -> bool,
) -> Result<Loaded, LoadError> {
    let file = std::fs::File::open(path).map_err(LoadError::Open)?;
    let total = file.metadata().map(|m| m.len()).unwrap_or(0);
    let (mut target, progress) = match target {
        Target::Held(g) => (Target::Held(g), None),
        Target::Batched(server) => {
            let p = &server.persistence;
            p.loading_total_bytes.store(total, Ordering::Relaxed);
            p.loading_loaded_bytes.store(0, Ordering::Relaxed);
            p.loading_start_secs
                .store(crate::util::now_ms() / 1000, Ordering::Relaxed);
            (Target::Batched(server), Some(&p.loading_loaded_bytes))
        }
    };
    let mut reader = Counting {
        inner: BufReader::with_capacity(READ_BUFFER_BYTES, file),
        progress,
    };
    let now_ms = crate::util::now_ms();
    let mut loaded = Loaded::default();
    let mut batch: Vec<LoadedEntry> = Vec::with_capacity(LOAD_BATCH_KEYS);
    let mut repl_aux = crate::replication::fullsync::IdentityAux::default();
    let result = {
        let mut sink = |e: LoadedEntry| -> Result<(), RdbError> {
            super::snapshot::key_delay(key_delay_us);
            match &mut target {
                Target::Held(guards) => insert(guards, e, databases, merge, now_ms, &mut loaded),
                Target::Batched(server) => {
                    batch.push(e);
                    if batch.len() < LOAD_BATCH_KEYS {
                        return Ok(());
                    }
                    flush(server, &mut batch, databases, merge, now_ms, &mut loaded)?;
                    if interrupted() {
                        return Err(interrupted_error());
                    }
                    Ok(())
                }
            }
        };
        let mut aux = |k: &[u8], v: &[u8]| {
            repl_aux.take(k, v);
            log_aux(k, v, now_ms)
        };
        read_rdb(&mut reader, &mut sink, &mut aux)
    };
    loaded.repl = repl_aux.identity();
    let stats = result.map_err(LoadError::Rdb)?;
    if let Target::Batched(server) = &target {
        flush(server, &mut batch, databases, merge, now_ms, &mut loaded).map_err(LoadError::Rdb)?;
    }
    loaded.functions = stats.functions;
    for key in &stats.empty_keys {
        log_warning!(
            "rdbLoadObject skipping empty key: {}",
            String::from_utf8_lossy(key)
        );
    }
    if stats.empty_keys_skipped > 0 {
        log_warning!(
            "Done loading RDB, keys loaded: {}, keys expired: {}, empty keys skipped: {}.",
            loaded.keys_loaded,
            loaded.keys_expired,
            stats.empty_keys_skipped
        );
    } else {
        log_notice!(
            "Done loading RDB, keys loaded: {}, keys expired: {}.",
            loaded.keys_loaded,
            loaded.keys_expired
        );
    }
    Ok(loaded)
}

/// Inserts a batch of keys with every shard locked once.
fn flush(
    server: &Server,
    batch: &mut Vec<LoadedEntry>,
    databases: usize,
    merge: bool,
    now_ms: u64,
    loaded: &mut Loaded,
) -> Result<(), RdbError> {
    if batch.is_empty() {
        return Ok(());
    }
    let mut guards = server.lock_all();
    for e in batch.drain(..) {
        insert(&mut guards, e, databases, merge, now_ms, loaded)?;
    }
    Ok(())
}

/// One key into the shard that owns its slot; an expired key is counted and dropped.
fn insert(
    guards: &mut [DataGuard<'_>],
    e: LoadedEntry,
    databases: usize,
    merge: bool,
    now_ms: u64,
    loaded: &mut Loaded,
) -> Result<(), RdbError> {
    if e.db >= databases {
        return Err(RdbError::Rejected(format!(
            "FATAL: Data file was created with a Redis server configured to handle more than {databases} databases. Exiting"
        )));
    }
    if e.entry.expire_ms != 0 && e.entry.expire_ms <= now_ms {
        loaded.keys_expired += 1;
        loaded.expired.push((e.db, e.key.to_vec()));
        return Ok(());
    }
    let nshards = guards.len();
    let slot = key_slot(&e.key);
    let shard = guards
        .get_mut(slot_owner(slot, nshards))
        .ok_or_else(|| RdbError::Rejected("no shard owns the key's slot".into()))?;
    let db = shard
        .dbs
        .get_mut(e.db)
        .ok_or_else(|| RdbError::Rejected(format!("database {} missing", e.db)))?;
    if db.insert(slot, &e.key, e.entry).is_some() && !merge {
        return Err(RdbError::Rejected(format!(
            "RDB has duplicated key '{}' in DB {}",
            String::from_utf8_lossy(&e.key),
            e.db
        )));
    }
    loaded.keys_loaded += 1;
    Ok(())
}

/// A reader that publishes how many bytes it has read (INFO's `loading_loaded_bytes`).
struct Counting<'a, R> {
    inner: R,
    progress: Option<&'a std::sync::atomic::AtomicU64>,
}

impl<R: Read> Read for Counting<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        if let Some(p) = self.progress {
            p.fetch_add(n as u64, Ordering::Relaxed);
        }
        Ok(n)
    }
}

/// The AUX fields Redis logs while loading.
fn log_aux(key: &[u8], value: &[u8], now_ms: u64) {
    let v = String::from_utf8_lossy(value);
    match key {
        b"redis-ver" => log_notice!("Loading RDB produced by version {}", v),
        b"ctime" => {
            if let Ok(ctime) = v.parse::<i64>() {
                let age = (now_ms / 1000) as i64 - ctime;
                log_notice!("RDB age {} seconds", age.max(0));
            }
        }
        b"used-mem" => {
            if let Ok(bytes) = v.parse::<u64>() {
                log_notice!(
                    "RDB memory usage when created {:.2} Mb",
                    bytes as f64 / (1024.0 * 1024.0)
                );
            }
        }
        _ => {}
    }
}

/// Records a successful load in the persistence state (INFO, the functions to re-emit).
fn record(server: &Server, loaded: Loaded) {
    record_keys(server, &loaded);
    let mut st = server.persistence.state();
    // The registry is the truth from here on: the file's libraries replace it.
    crate::scripting::flush_libraries();
    for code in &loaded.functions {
        if let Err(e) = crate::scripting::load_library(code) {
            crate::log_warning!("Failed loading a function library from the RDB: {}", e);
        }
    }
    st.functions = loaded.functions;
}

/// The key counts of a load (INFO).
fn record_keys(server: &Server, loaded: &Loaded) {
    let mut st = server.persistence.state();
    st.load_keys_loaded = loaded.keys_loaded;
    st.load_keys_expired = loaded.keys_expired;
}

/// Whether start-up has a file to load (the caller sets `loading` before serving anyone).
pub fn startup_file_exists(server: &Server) -> bool {
    std::path::Path::new(&server.config.load().dbfilename).exists()
}

/// Loads `dir/dbfilename` at start-up (`loadDataFromDisk`), while the shard threads already
/// answer with `-LOADING`. A missing file is an empty dataset. Any other failure is logged
/// (file, offset, reason) and returns the exit status 1; nothing is written. `interrupted`
/// is polled between batches (a SIGTERM during the load ends it, without saving).
pub fn load_at_startup(server: &Server, interrupted: &dyn Fn() -> bool) -> Result<(), i32> {
    let cfg = server.config.load();
    let path = cfg.dbfilename.clone();
    if !std::path::Path::new(&path).exists() {
        server.persistence.loading.store(false, Ordering::SeqCst);
        return Ok(());
    }
    let start = std::time::Instant::now();
    server.persistence.loading.store(true, Ordering::SeqCst);
    let key_delay_us = super::snapshot::config_int(&cfg, "key-load-delay");
    let result = load_file(
        &path,
        Target::Batched(server),
        cfg.databases,
        false,
        key_delay_us,
        interrupted,
    );
    server.persistence.loading.store(false, Ordering::SeqCst);
    match result {
        Ok(mut loaded) => {
            let repl = loaded.repl.take();
            let expired = std::mem::take(&mut loaded.expired);
            record(server, loaded);
            log_notice!(
                "DB loaded from disk: {:.3} seconds",
                start.elapsed().as_secs_f64()
            );
            crate::replication::fullsync::restore_identity(server, repl, &expired);
            Ok(())
        }
        Err(LoadError::Rdb(RdbError::Rejected(why))) if interrupted() => {
            log_warning!("{}", why);
            Err(0)
        }
        Err(e) => {
            for line in e.report(&path) {
                log_warning!("{}", line);
            }
            if !matches!(e, LoadError::Open(_)) {
                log_warning!("Terminating server after rdb file reading failure.");
            }
            Err(1)
        }
    }
}

/// The options of DEBUG RELOAD.
#[derive(Clone, Copy, Debug, Default)]
pub struct ReloadOptions {
    pub nosave: bool,
    pub noflush: bool,
    pub merge: bool,
}

/// DEBUG RELOAD: save (unless NOSAVE), empty the dataset (unless NOFLUSH), load the file
/// (MERGE: duplicates replace), all with every shard held. Returns Redis's error text.
pub fn debug_reload(server: &Server, opts: ReloadOptions) -> Result<(), String> {
    let mut guards = server.lock_all();
    if !opts.nosave && super::snapshot::save_locked(server, &mut guards).is_err() {
        return Err("ERR".into());
    }
    if !opts.noflush {
        for g in guards.iter_mut() {
            for db in g.dbs.iter_mut() {
                db.clear();
            }
        }
    }
    let cfg = server.config.load();
    server.persistence.loading.store(true, Ordering::SeqCst);
    let key_delay_us = super::snapshot::config_int(&cfg, "key-load-delay");
    let result = load_file(
        &cfg.dbfilename,
        Target::Held(&mut guards),
        cfg.databases,
        opts.merge,
        key_delay_us,
        &|| false,
    );
    server.persistence.loading.store(false, Ordering::SeqCst);
    drop(guards);
    match result {
        Ok(mut loaded) => {
            // As Redis: the flush empties the function registry too; without it the file's
            // libraries must not clash with loaded ones, unless MERGE lets them replace.
            let functions = std::mem::take(&mut loaded.functions);
            record_keys(server, &loaded);
            if !opts.noflush {
                crate::scripting::flush_libraries();
            }
            for code in &functions {
                if let Err(e) = crate::scripting::load_library_replace(code, opts.merge) {
                    log_warning!("Failed loading a function library from the RDB: {}", e);
                    return Err("ERR Error trying to load the RDB dump".into());
                }
            }
            server.persistence.state().functions = functions;
            log_warning!("DB reloaded by DEBUG RELOAD");
            Ok(())
        }
        Err(e) => {
            for line in e.report(&cfg.dbfilename) {
                log_warning!("{}", line);
            }
            Err("ERR Error trying to load the RDB dump, check server logs.".into())
        }
    }
}
