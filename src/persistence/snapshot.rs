//! Saving RDB snapshots: SAVE, BGSAVE, the `save <seconds> <changes>` rules, the save at
//! shutdown, and the state INFO persistence reports.
//!
//! A snapshot is always written the same way (`write_file`): `temp-<pid>.rdb` in the working
//! directory (which is `dir`), buffered, fsynced, then renamed over `dbfilename`, so the
//! target is either the old file or the whole new one, never a torn mix. SAVE and the
//! shutdown save run it in the calling thread with every shard locked (the server is stopped
//! meanwhile, as Redis's is); BGSAVE runs it in a forked child (`child`) while the shards keep
//! serving.
//!
//! Changes since the last save (`rdb_changes_since_last_save`) are the sum of the shards'
//! `dirty` counters. When a background save starts, each shard's counter is recorded; when it
//! succeeds, each shard's counter drops by what it was at the fork, so changes made while the
//! child ran still count (Redis's `dirty_before_bgsave`, per shard).
//!
//! `Persistence` is the one piece of shared state: a mutex around the bookkeeping (the child,
//! counters, the function libraries to re-emit) plus atomics for what every command reads
//! (`bgsave_failed` for MISCONF, `loading` for LOADING). The persistence cron (`cron`) runs
//! on the main thread ten times a second: it reaps the child and fires the save rules and
//! scheduled BGSAVEs.

use super::child::{self, ChildKind, Exit, Running};
use super::rdb::{DbView, RdbOptions, RdbWriter};
use crate::config::Config;
use crate::server::Server;
use crate::shard::DataGuard;
use crate::storage::ShardData;
use crate::{log_notice, log_warning};
use parking_lot::Mutex;
use std::io::{BufWriter, Write};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// After a failed background save, automatic saves wait this long before retrying (Redis's
/// `CONFIG_BGSAVE_RETRY_DELAY`).
const BGSAVE_RETRY_DELAY_SECS: u64 = 5;
/// The snapshot file is written through a buffer of this size.
const WRITE_BUFFER_BYTES: usize = 1 << 20;

/// Redis's MISCONF text (`shared.bgsaveerr`, without the leading `-`).
pub const MISCONF: &str = "MISCONF Redis is configured to save RDB snapshots, but it's currently unable to persist to disk. Commands that may modify the data set are disabled, because this instance is configured to report errors during writes if RDB snapshotting fails (stop-writes-on-bgsave-error option). Please check the Redis logs for details about the RDB error.";

/// Persistence state shared by all threads (a field of `Server`).
pub struct Persistence {
    state: Mutex<State>,
    /// The last background save failed (`lastbgsave_status == C_ERR`).
    pub bgsave_failed: AtomicBool,
    /// A dataset is being loaded (INFO `loading`, `-LOADING`).
    pub loading: AtomicBool,
    /// The dataset loading (with `loading`) is a replica's async load (`repl-diskless-load
    /// swapdb` from its own master's history): the old dataset is served meanwhile, and only
    /// commands Redis flags `no-async-loading` get `-LOADING`.
    pub async_loading: AtomicBool,
    pub latest_fork_usec: AtomicU64,
    pub total_forks: AtomicU64,
    /// Start-up load progress (INFO `loading_*`).
    pub loading_start_secs: AtomicU64,
    pub loading_total_bytes: AtomicU64,
    pub loading_loaded_bytes: AtomicU64,
    /// Unix ms when the start-up load began (0: not loading at start-up). See `admit`.
    pub startup_loading_since_ms: AtomicU64,
}

/// The bookkeeping behind `Persistence`'s mutex.
#[derive(Default)]
pub struct State {
    pub child: Option<Running>,
    /// BGSAVE SCHEDULE (or a BGSAVE while another child ran): start one when possible.
    pub bgsave_scheduled: bool,
    /// Each shard's `dirty` when the running background save forked.
    pub dirty_at_fork: Vec<u64>,
    /// Unix seconds of the last background save attempt.
    pub last_bgsave_try_secs: u64,
    /// Duration of the last background save, seconds (-1 = none yet).
    pub rdb_save_time_last_secs: i64,
    pub rdb_saves: u64,
    pub rdb_last_cow_bytes: u64,
    pub load_keys_loaded: u64,
    pub load_keys_expired: u64,
    /// Function library code read from the last RDB loaded (the loader hands each library
    /// to `scripting::load_library`; snapshots take the registry's libraries).
    pub functions: Vec<Vec<u8>>,
}

impl Default for Persistence {
    fn default() -> Self {
        Persistence {
            state: Mutex::new(State {
                rdb_save_time_last_secs: -1,
                ..Default::default()
            }),
            bgsave_failed: AtomicBool::new(false),
            loading: AtomicBool::new(false),
            async_loading: AtomicBool::new(false),
            latest_fork_usec: AtomicU64::new(0),
            total_forks: AtomicU64::new(0),
            loading_start_secs: AtomicU64::new(0),
            loading_total_bytes: AtomicU64::new(0),
            loading_loaded_bytes: AtomicU64::new(0),
            startup_loading_since_ms: AtomicU64::new(0),
        }
    }
}

impl Persistence {
    pub fn state(&self) -> parking_lot::MutexGuard<'_, State> {
        self.state.lock()
    }

    /// Whether write commands get MISCONF (`writeCommandsDeniedByDiskError` for RDB).
    pub fn writes_refused(&self, cfg: &Config) -> bool {
        self.bgsave_failed.load(Ordering::Relaxed)
            && cfg.stop_writes_on_bgsave_error
            && !cfg.save.is_empty()
    }
}

/// The persistence checks of `processCommand`, run by the engine after the dispatcher's own
/// checks: `-LOADING` for commands without the `loading` flag while a dataset loads, and
/// `-MISCONF` for writes (EXEC of a transaction holding one, and PING, as in Redis) after a
/// failed background save with `stop-writes-on-bgsave-error`. Two atomic loads when nothing
/// is wrong.
pub fn admit(
    server: &Server,
    cfg: &Config,
    client: &crate::server::Client,
    p: crate::server::dispatch::Prepared,
) -> Result<crate::server::dispatch::Prepared, crate::server::dispatch::Rejected> {
    use crate::commands::flag;
    let misconf = server.persistence.writes_refused(cfg);
    let loading = server.persistence.loading.load(Ordering::Relaxed) && !short_startup_load(server);
    let aof_failed = server.aof.write_errno.load(Ordering::Relaxed) != 0;
    if !misconf && !loading && !aof_failed {
        return Ok(p);
    }
    let queued = |f: u32| {
        p.cmd.name == "exec"
            && client
                .multi
                .as_ref()
                .is_some_and(|q| q.iter().any(|c| c.flags & f != 0))
    };
    let is_write = p.cmd.flags & flag::WRITE != 0 || queued(flag::WRITE);
    if misconf && (is_write || p.cmd.name == "ping") {
        return Err(crate::server::dispatch::Rejected {
            error: MISCONF.as_bytes().to_vec(),
            full_name: Some(p.full_name),
        });
    }
    if is_write || p.cmd.name == "ping" {
        if let Some(e) = server.aof.misconf() {
            return Err(crate::server::dispatch::Rejected {
                error: e.into_bytes(),
                full_name: Some(p.full_name),
            });
        }
    }
    let deny_loading = p.cmd.flags & flag::LOADING == 0
        || (p.cmd.name == "exec"
            && client
                .multi
                .as_ref()
                .is_some_and(|q| q.iter().any(|c| c.cmd.flags & flag::LOADING == 0)));
    let deny_loading = if server.persistence.async_loading.load(Ordering::Relaxed) {
        no_async_loading(p.cmd.name)
    } else {
        deny_loading
    };
    if loading && deny_loading {
        return Err(crate::server::dispatch::Rejected {
            error: b"LOADING Redis is loading the dataset in memory".to_vec(),
            full_name: Some(p.full_name),
        });
    }
    Ok(p)
}

/// The commands Redis 7.0 flags `no-async-loading` (refused while a replica loads its
/// master's RDB asynchronously).
#[cold]
fn no_async_loading(name: &str) -> bool {
    matches!(
        name,
        "bgrewriteaof" | "bgsave" | "psync" | "replicaof" | "save" | "slaveof" | "sync"
    )
}

/// The MISCONF error writes get while the disk is failing (`writeCommandsDeniedByDiskError`
/// and `writeCommandsGetDiskErrorMessage`): a failed background save with
/// `stop-writes-on-bgsave-error`, or a failing AOF write. For callers outside `admit`
/// (writes inside scripts).
pub fn disk_error(server: &Server) -> Option<String> {
    if server.persistence.writes_refused(&server.config.load()) {
        return Some(MISCONF.to_string());
    }
    server.aof.misconf()
}

/// A command arriving in the first moments of a start-up load waits this long for the load
/// to end before getting `-LOADING`.
const STARTUP_LOADING_GRACE_MS: u64 = 200;

/// Redis serves nobody during a short start-up load (its event loop only runs between
/// chunks of a long one), so a client connecting at once gets its reply after the load, not
/// `-LOADING`; tests and tools rely on that. The shard threads here answer from the start,
/// so a command arriving within `STARTUP_LOADING_GRACE_MS` of the load's start waits (this
/// shard thread holds no lock meanwhile) until the load ends or the grace runs out. Returns
/// whether the load ended meanwhile.
#[cold]
fn short_startup_load(server: &Server) -> bool {
    let p = &server.persistence;
    let since = p.startup_loading_since_ms.load(Ordering::Relaxed);
    if since == 0 {
        return false;
    }
    let until = since + STARTUP_LOADING_GRACE_MS;
    while p.loading.load(Ordering::SeqCst) {
        if crate::util::now_ms() >= until {
            return false;
        }
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    true
}

/// What a save needs, copied out of the config before any fork.
pub struct SaveJob {
    pub filename: String,
    pub opts: RdbOptions,
    /// `rdb-key-save-delay`: microseconds to sleep after each key (negative: busy loop of
    /// that many iterations), to slow saves down in tests.
    pub key_delay_us: i64,
    pub functions: Vec<Vec<u8>>,
    /// Extra AUX fields (the replication identity: `repl-stream-db`, `repl-id`,
    /// `repl-offset`), filled in at the fork by whoever knows them.
    pub aux: Vec<(&'static str, String)>,
}

impl SaveJob {
    pub fn new(server: &Server, functions: Vec<Vec<u8>>) -> SaveJob {
        let cfg = server.config.load();
        SaveJob {
            filename: cfg.dbfilename.clone(),
            opts: RdbOptions {
                compression: cfg.rdbcompression,
                checksum: cfg.rdbchecksum,
                used_mem_bytes: crate::commands::info::rss_bytes(),
                ..Default::default()
            },
            key_delay_us: config_int(&cfg, "rdb-key-save-delay"),
            functions,
            aux: Vec::new(),
        }
    }
}

/// A numeric directive read through CONFIG GET (hidden test knobs without a typed field).
pub fn config_int(cfg: &Config, name: &str) -> i64 {
    cfg.get(&[name.as_bytes()])
        .first()
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0)
}

pub(crate) fn key_delay(us: i64) {
    if us > 0 {
        std::thread::sleep(std::time::Duration::from_micros(us as u64));
    } else if us < 0 {
        for i in 0..us.unsigned_abs() {
            std::hint::black_box(i);
        }
    }
}

/// The name of the temporary file a save by process `pid` writes.
pub fn temp_name(pid: u32) -> String {
    format!("temp-{pid}.rdb")
}

/// Writes the shards' data as an RDB to `temp-<our pid>.rdb`, fsyncs it and renames it over
/// the job's file. `on_key` runs after each key (progress reports). Returns the bytes written;
/// on failure the temporary file is removed and the error logged as Redis logs it.
pub fn write_file(
    shards: &[&ShardData],
    job: &SaveJob,
    on_key: &mut dyn FnMut(),
    log: &dyn Fn(&str),
) -> std::io::Result<u64> {
    let temp = temp_name(std::process::id());
    let file = match std::fs::File::create(&temp) {
        Ok(f) => f,
        Err(e) => {
            let cwd = std::env::current_dir().map(|p| p.display().to_string());
            log(&format!(
                "Failed opening the temp RDB file {} (in server root dir {}) for saving: {}",
                temp,
                cwd.unwrap_or_default(),
                e
            ));
            return Err(e);
        }
    };
    let written = write_rdb(BufWriter::with_capacity(WRITE_BUFFER_BYTES, file), shards, job, on_key)
        .and_then(|(w, bytes)| {
            let file = w.into_inner().map_err(|e| e.into_error())?;
            file.sync_all()?;
            Ok(bytes)
        })
        .and_then(|bytes| {
        std::fs::rename(&temp, &job.filename).map_err(|e| {
            let cwd = std::env::current_dir().map(|p| p.display().to_string());
            log(&format!(
                "Error moving temp DB file {} on the final destination {} (in server root dir {}): {}",
                temp,
                job.filename,
                cwd.unwrap_or_default(),
                e
            ));
            e
        })?;
        Ok(bytes)
    });
    match written {
        Ok(bytes) => {
            // The rename itself must survive a crash too.
            if let Ok(d) = std::fs::File::open(".") {
                let _ = d.sync_all();
            }
            Ok(bytes)
        }
        Err(e) => {
            log(&format!("Write error saving DB on disk: {e}"));
            let _ = std::fs::remove_file(&temp);
            Err(e)
        }
    }
}

/// Writes the whole RDB of `shards` to `w` (flushed) and returns it with the bytes written.
pub fn write_rdb<W: Write>(
    w: W,
    shards: &[&ShardData],
    job: &SaveJob,
    on_key: &mut dyn FnMut(),
) -> std::io::Result<(W, u64)> {
    let aux: Vec<(&[u8], &[u8])> = job
        .aux
        .iter()
        .map(|(k, v)| (k.as_bytes(), v.as_bytes()))
        .collect();
    let mut rw = RdbWriter::with_aux(w, &job.opts, &aux)?;
    for code in &job.functions {
        rw.function(code)?;
    }
    for view in DbView::from_shards(shards) {
        rw.select_db(view.index, view.keys(), view.volatile())?;
        for (key, entry) in view.entries() {
            rw.entry(key, entry)?;
            key_delay(job.key_delay_us);
            on_key();
        }
    }
    let (mut w, bytes) = rw.finish()?;
    w.flush()?;
    Ok((w, bytes))
}

/// Sum of the shards' change counters.
pub fn dirty_of(guards: &[DataGuard<'_>]) -> u64 {
    guards.iter().map(|g| g.stats.dirty).sum()
}

/// Keys in every database of every shard.
pub fn keys_of(guards: &[DataGuard<'_>]) -> u64 {
    guards
        .iter()
        .map(|g| g.dbs.iter().map(|d| d.keys as u64).sum::<u64>())
        .sum()
}

/// A synchronous save (`rdbSave`) over shards the caller holds. On success the change
/// counters restart at zero and LASTSAVE moves.
///
/// Lock order: shard locks, then the persistence state (briefly); never the reverse, so a
/// thread holding shards (EXEC, DEBUG RELOAD) can always reach the state.
pub fn save_locked(server: &Server, guards: &mut [DataGuard<'_>]) -> std::io::Result<()> {
    let functions = crate::scripting::library_codes_vec();
    let mut job = SaveJob::new(server, functions);
    job.aux = crate::replication::fullsync::save_info(server);
    let shards: Vec<&ShardData> = guards.iter().map(|g| &**g).collect();
    write_file(&shards, &job, &mut || {}, &|m| log_warning!("{}", m))?;
    log_notice!("DB saved on disk");
    for g in guards.iter_mut() {
        g.stats.dirty = 0;
    }
    server
        .lastsave_secs
        .store(crate::util::now_ms() / 1000, Ordering::Relaxed);
    server
        .persistence
        .bgsave_failed
        .store(false, Ordering::Relaxed);
    server.persistence.state().rdb_saves += 1;
    Ok(())
}

fn rdb_child_running(server: &Server) -> bool {
    server
        .persistence
        .state()
        .child
        .as_ref()
        .is_some_and(|c| matches!(c.kind, ChildKind::Rdb | ChildKind::RdbSocket))
}

/// SAVE: refused while a background save runs.
pub fn save(server: &Server) -> Result<(), &'static str> {
    if rdb_child_running(server) {
        return Err("ERR Background save already in progress");
    }
    let mut guards = server.lock_all();
    save_locked(server, &mut guards).map_err(|_| "ERR")
}

/// What BGSAVE answered.
#[derive(Debug, PartialEq, Eq)]
pub enum BgsaveReply {
    Started,
    Scheduled,
    AlreadyInProgress,
    OtherChild,
    Failed,
}

/// BGSAVE [SCHEDULE] (`bgsaveCommand`).
pub fn bgsave(server: &Server, schedule: bool) -> BgsaveReply {
    start_bgsave(server, schedule)
}

/// Forks the BGSAVE child (`rdbSaveBackground`) unless a child already runs. Every shard is
/// held from before the check to after the fork, and every fork holds them all, so two
/// children can never start at once.
fn start_bgsave(server: &Server, schedule: bool) -> BgsaveReply {
    let functions = crate::scripting::library_codes_vec();
    let mut job = SaveJob::new(server, functions);
    let guards = server.lock_all();
    let mut st = server.persistence.state();
    match st.child.as_ref().map(|c| c.kind) {
        Some(ChildKind::Rdb | ChildKind::RdbSocket) => return BgsaveReply::AlreadyInProgress,
        _ if in_exec() => {
            st.bgsave_scheduled = true;
            return BgsaveReply::Scheduled;
        }
        Some(_) if schedule => {
            st.bgsave_scheduled = true;
            return BgsaveReply::Scheduled;
        }
        Some(_) => return BgsaveReply::OtherChild,
        None => {}
    }
    job.aux = crate::replication::fullsync::save_info(server);
    match fork_save(server, &guards, &mut st, job) {
        Ok(_) => BgsaveReply::Started,
        Err(_) => BgsaveReply::Failed,
    }
}

/// Forks a child that saves `job` to disk, over shards the caller holds with no child
/// running (`st` is the persistence state, locked). Returns the child's pid.
pub fn fork_save(
    server: &Server,
    guards: &[DataGuard<'_>],
    st: &mut State,
    job: SaveJob,
) -> std::io::Result<i32> {
    let clog = crate::log::child_log();
    st.last_bgsave_try_secs = crate::util::now_ms() / 1000;
    let keys_total = keys_of(guards);
    let dirty_at_fork: Vec<u64> = guards.iter().map(|g| g.stats.dirty).collect();
    let forked = child::fork_child(guards, ChildKind::Rdb, keys_total, |shards, reporter| {
        let log = |m: &str| clog.log(crate::log::Level::Warning, m);
        let mut on_key = || reporter.key_done();
        match write_file(shards, &job, &mut on_key, &log) {
            Ok(_) => {
                clog.log(crate::log::Level::Notice, "DB saved on disk");
                log_cow(&clog, "RDB");
                0
            }
            Err(_) => 1,
        }
    });
    match forked {
        Ok((running, fork_usec)) => {
            let p = &server.persistence;
            p.latest_fork_usec.store(fork_usec, Ordering::Relaxed);
            p.total_forks.fetch_add(1, Ordering::Relaxed);
            log_notice!("Background saving started by pid {}", running.pid);
            let pid = running.pid;
            st.child = Some(running);
            st.dirty_at_fork = dirty_at_fork;
            st.bgsave_scheduled = false;
            Ok(pid)
        }
        Err(e) => {
            server
                .persistence
                .bgsave_failed
                .store(true, Ordering::Relaxed);
            log_warning!("Can't save in background: fork: {}", e);
            Err(e)
        }
    }
}

/// The child's closing log line about its copy-on-write cost.
pub fn log_cow(clog: &crate::log::ChildLog, what: &str) {
    let cow = child::private_dirty_bytes();
    clog.log(
        crate::log::Level::Notice,
        &format!(
            "Fork CoW for {what}: current {} MB, peak {} MB, average {} MB",
            cow >> 20,
            cow >> 20,
            cow >> 21
        ),
    );
}

/// Kills a running BGSAVE child (FLUSHALL, SHUTDOWN). With `wait`, reaps it at once and
/// removes its temporary file; otherwise the cron reaps it (the exit by SIGUSR1 is not an
/// error).
pub fn kill_rdb_child(server: &Server, wait: bool) {
    let mut st = server.persistence.state();
    let Some(c) = st
        .child
        .as_mut()
        .filter(|c| matches!(c.kind, ChildKind::Rdb | ChildKind::RdbSocket))
    else {
        return;
    };
    c.kill();
    if wait {
        let pid = c.pid;
        let _ = c.try_reap(true);
        st.child = None;
        let _ = std::fs::remove_file(temp_name(pid as u32));
    }
}

/// The persistence cron (main thread, about 10 times a second): reap the child, then start a
/// scheduled BGSAVE or one a save rule asks for.
pub fn cron(server: &Server) {
    let (done, dirty_at_fork) = {
        let mut st = server.persistence.state();
        let done = st.child.as_mut().and_then(|c| {
            c.read_reports();
            c.try_reap(false)
        });
        if done.is_some() {
            st.child = None;
        }
        (done, std::mem::take(&mut st.dirty_at_fork))
    };
    if let Some(done) = done {
        finish_child(server, done, &dirty_at_fork);
    } else if !dirty_at_fork.is_empty() {
        server.persistence.state().dirty_at_fork = dirty_at_fork;
    }
    let (busy, scheduled, last_try) = {
        let st = server.persistence.state();
        (
            st.child.is_some(),
            st.bgsave_scheduled,
            st.last_bgsave_try_secs,
        )
    };
    if busy || server.shutdown.load(Ordering::Relaxed) {
        return;
    }
    let now_secs = crate::util::now_ms() / 1000;
    let may_retry = !server.persistence.bgsave_failed.load(Ordering::Relaxed)
        || now_secs.saturating_sub(last_try) > BGSAVE_RETRY_DELAY_SECS;
    if !may_retry {
        return;
    }
    if scheduled {
        start_bgsave(server, false);
        return;
    }
    let cfg = server.config.load();
    if cfg.save.is_empty() {
        return;
    }
    let dirty: u64 = server
        .shards
        .iter()
        .map(|s| s.lock_data().stats.dirty)
        .sum();
    let since = now_secs.saturating_sub(server.lastsave_secs.load(Ordering::Relaxed));
    if let Some(rule) = cfg
        .save
        .iter()
        .find(|r| dirty >= r.changes && since > r.seconds)
    {
        log_notice!(
            "{} changes in {} seconds. Saving...",
            rule.changes,
            rule.seconds
        );
        start_bgsave(server, false);
    }
}

/// Bookkeeping after a child exits (`backgroundSaveDoneHandlerDisk`).
fn finish_child(server: &Server, done: child::Finished, dirty_at_fork: &[u64]) {
    match done.kind {
        ChildKind::AofRewrite => {
            super::aof::rewrite::on_child_done(server, done);
            return;
        }
        ChildKind::RdbSocket => {
            crate::replication::fullsync::on_child_done(server, done.pid, done.exit);
            return;
        }
        ChildKind::Rdb => {}
    }
    let p = &server.persistence;
    let mut saved = false;
    match done.exit {
        Exit::Code(0) => {
            log_notice!("Background saving terminated with success");
            for (shard, at_fork) in server.shards.iter().zip(dirty_at_fork) {
                let mut d = shard.lock_data();
                d.stats.dirty = d.stats.dirty.saturating_sub(*at_fork);
            }
            server
                .lastsave_secs
                .store(crate::util::now_ms() / 1000, Ordering::Relaxed);
            p.bgsave_failed.store(false, Ordering::Relaxed);
            saved = true;
        }
        Exit::Code(_) => {
            log_warning!("Background saving error");
            p.bgsave_failed.store(true, Ordering::Relaxed);
        }
        Exit::Signal(sig) => {
            log_warning!("Background saving terminated by signal {}", sig);
            let _ = std::fs::remove_file(temp_name(done.pid as u32));
            if sig != libc::SIGUSR1 {
                p.bgsave_failed.store(true, Ordering::Relaxed);
            }
        }
    }
    let mut st = p.state();
    if saved {
        st.rdb_saves += 1;
    }
    st.rdb_save_time_last_secs = (done.elapsed_ms / 1000) as i64;
    st.rdb_last_cow_bytes = done.last.cow_bytes;
    drop(st);
    crate::replication::fullsync::on_child_done(server, done.pid, done.exit);
}

/// FLUSHALL's persistence side (`flushAllDataAndResetRDB`), after a FLUSHALL alone or after
/// an EXEC that ran one: a running BGSAVE is aborted (the cron reaps it and removes its
/// temporary file), and when save rules exist the now empty dataset is saved at once, which
/// also resets `rdb_changes_since_last_save` to 0 (Redis 7.0 does not count the FLUSHALL).
pub fn after_flushall(server: &Server) {
    kill_rdb_child(server, false);
    if server.config.load().save.is_empty() {
        return;
    }
    let mut guards = server.lock_all();
    let _ = save_locked(server, &mut guards);
}

thread_local! {
    /// This thread is running the commands of an EXEC (Redis's `server.in_exec`).
    static IN_EXEC: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Marks the running thread as inside EXEC until dropped (BGSAVE and BGREWRITEAOF are then
/// scheduled rather than started, as in Redis).
pub struct InExec(bool);

impl InExec {
    pub fn enter() -> InExec {
        InExec(IN_EXEC.with(|c| c.replace(true)))
    }
}

impl Drop for InExec {
    fn drop(&mut self) {
        let prev = self.0;
        IN_EXEC.with(|c| c.set(prev));
    }
}

/// Whether the running command is part of an EXEC.
pub fn in_exec() -> bool {
    IN_EXEC.with(|c| c.get())
}

/// The persistence side of shutting down (`finishShutdown`), for SHUTDOWN and the signals:
/// kill a BGSAVE child, save when rules exist (unless NOSAVE) or when SAVE is given, and
/// exit the process with every shard still held. Returns false, leaving the server running,
/// only when the save failed without FORCE.
pub fn shutdown(server: &Server, flags: u32) -> bool {
    use crate::config::shutdown::{FORCE, NOSAVE, SAVE};
    let mut flags = flags;
    if server.persistence.loading.load(Ordering::Relaxed) {
        flags = (flags & !SAVE) | NOSAVE;
    }
    // A debugging session stops waiting for its client, so the locks below come free.
    crate::scripting::ldb::on_shutdown(true);
    if rdb_child_running(server) {
        log_warning!("There is a child saving an .rdb. Killing it!");
        kill_rdb_child(server, true);
    }
    let cfg = server.config.load();
    if flags & NOSAVE != 0 && crate::scripting::busy() {
        // A busy script holds the shards until it returns, which it may never do: exit
        // without them, from inside the script as Redis does (nothing is saved).
        super::aof::rewrite::flush_on_shutdown(server);
        server.shutdown.store(true, Ordering::SeqCst);
        crate::server::run::exit_after_shutdown(server, &[])
    }
    let mut guards = server.lock_all();
    super::aof::rewrite::flush_on_shutdown(server);
    if (!cfg.save.is_empty() && flags & NOSAVE == 0) || flags & SAVE != 0 {
        log_notice!("Saving the final RDB snapshot before exiting.");
        if save_locked(server, &mut guards).is_err() {
            if flags & FORCE == 0 {
                log_warning!("Error trying to save the DB, can't exit.");
                crate::scripting::ldb::on_shutdown(false);
                return false;
            }
            log_warning!("Error trying to save the DB. Exit anyway.");
        }
    }
    // Exit while every shard is still held: no command runs after the snapshot, so no
    // write is acknowledged and then lost (Redis exits from inside the command too).
    server.shutdown.store(true, Ordering::SeqCst);
    crate::server::run::exit_after_shutdown(server, &guards)
}

/// INFO persistence, every field Redis 7.0 prints (AOF fields with AOF off).
pub fn info_section(server: &Server, dirty: u64) -> String {
    let st = server.persistence.state();
    let now_ms = crate::util::now_ms();
    let rdb_child = st
        .child
        .as_ref()
        .filter(|c| matches!(c.kind, ChildKind::Rdb | ChildKind::RdbSocket));
    let (cow_peak, cow, cow_age, perc, processed, total, current_secs) = match &st.child {
        Some(c) => (
            c.cow_peak_bytes,
            c.last.cow_bytes,
            if c.last_at_ms > 0 {
                now_ms.saturating_sub(c.last_at_ms) / 1000
            } else {
                0
            },
            if c.keys_total > 0 {
                c.last.keys_processed as f64 * 100.0 / c.keys_total as f64
            } else {
                0.0
            },
            c.last.keys_processed,
            c.keys_total,
            now_ms.saturating_sub(c.start_ms) as i64 / 1000,
        ),
        None => (0, 0, 0, 0.0, 0, 0, -1),
    };
    let p = &server.persistence;
    let async_loading = p.async_loading.load(Ordering::Relaxed);
    let loading = (p.loading.load(Ordering::Relaxed) && !async_loading) as u8;
    let async_loading = async_loading as u8;
    let lastsave = server.lastsave_secs.load(Ordering::Relaxed);
    let mut text = format!(
        "# Persistence\r\nloading:{loading}\r\nasync_loading:{async_loading}\r\ncurrent_cow_peak:{cow_peak}\r\n\
         current_cow_size:{cow}\r\ncurrent_cow_size_age:{cow_age}\r\ncurrent_fork_perc:{perc:.2}\r\n\
         current_save_keys_processed:{processed}\r\ncurrent_save_keys_total:{total}\r\n\
         rdb_changes_since_last_save:{dirty}\r\nrdb_bgsave_in_progress:{}\r\n\
         rdb_last_save_time:{lastsave}\r\nrdb_last_bgsave_status:{}\r\n\
         rdb_last_bgsave_time_sec:{}\r\nrdb_current_bgsave_time_sec:{}\r\nrdb_saves:{}\r\n\
         rdb_last_cow_size:{}\r\nrdb_last_load_keys_expired:{}\r\nrdb_last_load_keys_loaded:{}\r\n",
        rdb_child.is_some() as u8,
        if p.bgsave_failed.load(Ordering::Relaxed) {
            "err"
        } else {
            "ok"
        },
        st.rdb_save_time_last_secs,
        if rdb_child.is_some() { current_secs } else { -1 },
        st.rdb_saves,
        st.rdb_last_cow_bytes,
        st.load_keys_expired,
        st.load_keys_loaded,
    );
    drop(st);
    text.push_str(&super::aof::info_fields(server));
    if loading == 1 {
        text.push_str(&loading_fields(p));
    }
    text
}

/// The `loading_*` fields Redis adds while a load runs.
fn loading_fields(p: &Persistence) -> String {
    let start = p.loading_start_secs.load(Ordering::Relaxed);
    let total = p.loading_total_bytes.load(Ordering::Relaxed);
    let done = p.loading_loaded_bytes.load(Ordering::Relaxed).min(total);
    let perc = if total > 0 {
        done as f64 * 100.0 / total as f64
    } else {
        0.0
    };
    let elapsed = (crate::util::now_ms() / 1000).saturating_sub(start);
    let eta = if elapsed == 0 {
        1
    } else {
        elapsed * (total - done).max(1) / (done + 1)
    };
    format!(
        "loading_start_time:{start}\r\nloading_total_bytes:{total}\r\nloading_rdb_used_mem:0\r\n\
         loading_loaded_bytes:{done}\r\nloading_loaded_perc:{perc:.2}\r\nloading_eta_seconds:{eta}\r\n"
    )
}
