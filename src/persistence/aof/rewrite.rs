//! Opening, switching, rewriting and closing the AOF (`rewriteAppendOnlyFileBackground`,
//! `backgroundRewriteDoneHandler`, `startAppendOnly`, `stopAppendOnly`,
//! `aofOpenIfNeededOnServerStart`).
//!
//! Lock order: shard locks, then the persistence state, then the AOF state, then the writer's
//! take lock, then the feed. A rewrite starts with every shard held, so the cut between the
//! old incr file and the new one, and the image the child sees, are the same stream position.

use super::manifest::{fsync_dir, Manifest};
use super::writer::{self, Ctl};
use super::{AofState, Logged, State};
use crate::persistence::child::{self, ChildKind, Exit, Finished};
use crate::persistence::snapshot::{self, SaveJob};
use crate::replication::feed::encode_command;
use crate::server::Server;
use crate::storage::{ShardData, Value};
use crate::{log_notice, log_warning};
use bytes::Bytes;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::{Arc, OnceLock};

/// The running rewrite.
pub struct Rewriting {
    pub start_ms: u64,
    pub pid: i32,
    /// The base file the child writes (inside the AOF directory).
    pub base_name: String,
    /// `AOF_WAIT_REWRITE`: the temporary incr file the writer appends to meanwhile.
    pub temp_incr: Option<String>,
}

/// Rewrites that failed in a row after which automatic ones slow down (Redis's
/// `AOF_REWRITE_LIMITE_THRESHOLD`).
const REWRITE_FAILURES_BEFORE_LIMIT: u64 = 3;
/// The longest wait between limited rewrites (`AOF_REWRITE_LIMITE_MAX_MINUTES`).
const REWRITE_LIMIT_DELAY_MINUTES_MAX: u64 = 60;
/// The base file is written through a buffer of this size.
const WRITE_BUFFER_BYTES: usize = 1 << 20;

/// The server, for the threads this module starts from a command (the writer needs it).
static SERVER: OnceLock<Arc<Server>> = OnceLock::new();

/// Called once at start-up.
pub fn register(server: &Arc<Server>) {
    let _ = SERVER.set(server.clone());
    server.aof.apply_config(&server.config.load());
}

fn dir_of(server: &Server) -> (PathBuf, String) {
    let cfg = server.config.load();
    (
        PathBuf::from(&cfg.appenddirname),
        cfg.appendfilename.clone(),
    )
}

fn temp_incr_name(filename: &str) -> String {
    format!("temp-{filename}.incr")
}

fn ensure_dir(dir: &Path) -> Result<(), Logged> {
    if let Err(e) = std::fs::create_dir_all(dir) {
        log_warning!(
            "Can't open or create append-only dir {}: {}",
            dir.display(),
            e
        );
        return Err(Logged);
    }
    Ok(())
}

/// Opens (creating) an incr file for appending: its current size is where writes go.
fn open_incr(path: &Path) -> std::io::Result<(File, u64)> {
    let f = std::fs::OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(false)
        .open(path)?;
    let size = f.metadata()?.len();
    Ok((f, size))
}

/// Starts collecting the AOF stream and the writer thread on `file`.
fn start_writer(server: &Arc<Server>, st: &mut State, file: File, size: u64) -> Result<(), Logged> {
    let aof = &server.aof;
    let start = {
        let _q = aof.take_lock.lock();
        server.feed.with(|f| {
            f.aof = Some(Vec::new());
            f.reset_aof_db();
            f.aof_total
        })
    };
    aof.durable.store(start, Ordering::SeqCst);
    aof.incr_size.store(size, Ordering::Relaxed);
    aof.write_errno.store(0, Ordering::SeqCst);
    aof.writer_running.store(true, Ordering::SeqCst);
    aof.set_on(true);
    match writer::spawn(server.clone(), file, size, start) {
        Ok(h) => {
            st.writer = Some(h);
            Ok(())
        }
        Err(e) => {
            log_warning!("Can't start the AOF writer thread: {}", e);
            stop_collecting(server);
            Err(Logged)
        }
    }
}

fn stop_collecting(server: &Server) -> Vec<u8> {
    server.aof.set_on(false);
    let _q = server.aof.take_lock.lock();
    server.feed.with(|f| f.aof.take().unwrap_or_default())
}

/// Start-up with `appendonly yes`, after loading: create the first base when there is no AOF
/// at all, open the last incr file (or a new one), persist the manifest, start the writer.
pub fn open_on_startup(server: &Arc<Server>, loaded: super::load::Loaded) -> Result<(), Logged> {
    register(server);
    let cfg = server.config.load();
    let (dir, filename) = dir_of(server);
    ensure_dir(&dir)?;
    let mut m = loaded.manifest;
    let mut base_size = loaded.base_size;
    if m.base.is_none() && m.incr.is_empty() {
        let base = m.new_base(&filename, cfg.aof_use_rdb_preamble);
        let job = BaseJob::new(server, &dir, &base, cfg.aof_use_rdb_preamble);
        let guards = server.lock_all();
        let shards: Vec<&ShardData> = guards.iter().map(|g| &**g).collect();
        let written = write_base(&job, &shards, &dir, &base, &mut || {}, &|m| {
            log_warning!("{}", m)
        });
        drop(guards);
        base_size = written.map_err(|e| {
            log_warning!("Can't create the AOF base file {}: {}", base, e);
            Logged
        })?;
        log_notice!("Creating AOF base file {} on server start", base);
    }
    let existed = !m.incr.is_empty();
    let name = match m.incr.last() {
        Some(i) => i.name.clone(),
        None => m.new_incr(&filename),
    };
    let (file, size) = open_incr(&dir.join(&name)).map_err(|e| {
        log_warning!("Can't open the append-only file {}: {}", name, e);
        Logged
    })?;
    if let Err(e) = m.persist(&dir, &filename) {
        log_warning!("Can't persist the AOF manifest: {}", e);
        return Err(Logged);
    }
    if existed {
        log_notice!("Opening AOF incr file {} on server start", name);
    } else {
        log_notice!("Creating AOF incr file {} on server start", name);
    }
    let mut st = server.aof.state.lock();
    st.dir = dir;
    st.filename = filename;
    st.manifest = m;
    st.aof_state = AofState::On;
    st.rewrite_base_size = base_size;
    st.other_files_size = loaded
        .total_size
        .saturating_sub(loaded.last_incr_size)
        .max(base_size);
    start_writer(server, &mut st, file, size)
}

/// What a base file needs, prepared before any fork (the child takes no lock).
pub struct BaseJob {
    /// The RDB settings, or `None` for an AOF-format base.
    rdb: Option<SaveJob>,
    /// An AOF-format base opens with a `#TS:` annotation (`aof-timestamp-enabled`).
    timestamp: bool,
    /// The function libraries' code: an AOF-format base loads them with FUNCTION LOAD.
    functions: Vec<Vec<u8>>,
}

impl BaseJob {
    pub fn new(server: &Server, dir: &Path, name: &str, rdb: bool) -> BaseJob {
        // The live registry's libraries, read before the fork (the child takes no lock).
        let functions = crate::scripting::library_codes_vec();
        let rdb = rdb.then(|| {
            let mut job = SaveJob::new(server, functions.clone());
            job.filename = dir.join(name).to_string_lossy().into_owned();
            job
        });
        BaseJob {
            rdb,
            timestamp: crate::replication::feed::aof_timestamps(),
            functions,
        }
    }
}

/// Writes a base file for `shards` into `dir/name`: an RDB, or RESP commands. Returns its
/// size. The file appears under its name only once complete and fsynced. Takes no lock (it
/// runs in the rewrite child); `log` reports failures.
pub fn write_base(
    job: &BaseJob,
    shards: &[&ShardData],
    dir: &Path,
    name: &str,
    on_key: &mut dyn FnMut(),
    log: &dyn Fn(&str),
) -> std::io::Result<u64> {
    let target = dir.join(name);
    if let Some(job) = &job.rdb {
        snapshot::write_file(shards, job, on_key, log)?;
    } else {
        write_aof_base(shards, dir, &target, job, on_key)?;
    }
    fsync_dir(dir)?;
    Ok(std::fs::metadata(&target)?.len())
}

/// An AOF-format base (`aof-use-rdb-preamble no`): SELECT per database, SET for strings,
/// RESTORE with a DUMP payload for the other types (real Redis loads both), PEXPIREAT for
/// volatile keys.
fn write_aof_base(
    shards: &[&ShardData],
    dir: &Path,
    target: &Path,
    job: &BaseJob,
    on_key: &mut dyn FnMut(),
) -> std::io::Result<()> {
    use crate::persistence::rdb::DbView;
    let temp = dir.join(format!("temp-rewriteaof-{}.aof", std::process::id()));
    let file = File::create(&temp)?;
    let mut w = BufWriter::with_capacity(WRITE_BUFFER_BYTES, file);
    let mut buf = Vec::new();
    let body = (|| -> std::io::Result<()> {
        if job.timestamp {
            let now_secs = crate::util::now_ms() / 1000;
            w.write_all(crate::replication::feed::timestamp_annotation(now_secs).as_bytes())?;
        }
        for code in &job.functions {
            buf.clear();
            encode_command(
                &mut buf,
                &[
                    Bytes::from_static(b"FUNCTION"),
                    Bytes::from_static(b"LOAD"),
                    Bytes::copy_from_slice(code),
                ],
            );
            w.write_all(&buf)?;
        }
        for view in DbView::from_shards(shards) {
            if view.keys() == 0 {
                continue;
            }
            buf.clear();
            encode_command(
                &mut buf,
                &[
                    Bytes::from_static(b"SELECT"),
                    Bytes::from(view.index.to_string()),
                ],
            );
            w.write_all(&buf)?;
            for (key, entry) in view.entries() {
                buf.clear();
                let k = Bytes::copy_from_slice(key);
                match &entry.value {
                    Value::Str(s) => encode_command(
                        &mut buf,
                        &[
                            Bytes::from_static(b"SET"),
                            k.clone(),
                            Bytes::from(s.to_vec()),
                        ],
                    ),
                    v => encode_command(
                        &mut buf,
                        &[
                            Bytes::from_static(b"RESTORE"),
                            k.clone(),
                            Bytes::from_static(b"0"),
                            Bytes::from(crate::persistence::rdb::dump_payload(v)),
                        ],
                    ),
                }
                if entry.expire_ms != 0 {
                    encode_command(
                        &mut buf,
                        &[
                            Bytes::from_static(b"PEXPIREAT"),
                            k,
                            Bytes::from(entry.expire_ms.to_string()),
                        ],
                    );
                }
                w.write_all(&buf)?;
                on_key();
            }
        }
        w.flush()?;
        w.get_ref().sync_all()
    })();
    if let Err(e) = body {
        let _ = std::fs::remove_file(&temp);
        return Err(e);
    }
    drop(w);
    std::fs::rename(&temp, target)
}

/// Waits until every byte appended to the AOF stream so far is durable (the writer is
/// running and not failing), or a few seconds passed.
pub fn wait_durable(server: &Server) {
    let aof = &server.aof;
    if !aof.is_on() {
        return;
    }
    let end = server.feed.aof_end();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while aof.durable() < end && std::time::Instant::now() < deadline {
        aof.bell.ring();
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
}

/// What BGREWRITEAOF answers.
pub enum RewriteReply {
    Started,
    Scheduled,
    InProgress,
    Failed,
}

/// BGREWRITEAOF (`bgrewriteaofCommand`).
pub fn bgrewriteaof(server: &Server) -> RewriteReply {
    {
        let pst = server.persistence.state();
        match pst.child.as_ref().map(|c| c.kind) {
            Some(ChildKind::AofRewrite) => return RewriteReply::InProgress,
            Some(_) => {
                drop(pst);
                server.aof.state.lock().rewrite_scheduled = true;
                return RewriteReply::Scheduled;
            }
            None => {}
        }
    }
    match start_rewrite(server) {
        Ok(()) => RewriteReply::Started,
        Err(Logged) => RewriteReply::Failed,
    }
}

/// Starts a background rewrite (`rewriteAppendOnlyFileBackground`): every shard held, the
/// writer switched to a new incr file at this exact stream position, the child forked.
pub fn start_rewrite(server: &Server) -> Result<(), Logged> {
    let Some(arc) = SERVER.get().cloned() else {
        return Err(Logged);
    };
    let cfg = server.config.load();
    let (dir, filename) = dir_of(server);
    let ext = if cfg.aof_use_rdb_preamble {
        "rdb"
    } else {
        "aof"
    };
    let base_seq = server.aof.state.lock().manifest.base_seq + 1;
    let base_name = format!("{filename}.{base_seq}.base.{ext}");
    let job = BaseJob::new(server, &dir, &base_name, cfg.aof_use_rdb_preamble);
    let guards = server.lock_all();
    let mut pst = server.persistence.state();
    if pst.child.is_some() {
        return Err(Logged);
    }
    let mut st = server.aof.state.lock();
    ensure_dir(&dir)?;
    st.dir = dir.clone();
    st.filename = filename.clone();
    let temp_incr = open_new_incr(&arc, &mut st, &dir, &filename)?;
    let keys_total: u64 = guards
        .iter()
        .map(|g| g.dbs.iter().map(|d| d.keys as u64).sum::<u64>())
        .sum();
    let clog = crate::log::child_log();
    let (child_dir, child_base) = (dir.clone(), base_name.clone());
    let forked = child::fork_child(&guards, ChildKind::AofRewrite, keys_total, |shards, rep| {
        let mut on_key = || rep.key_done();
        let log = |m: &str| clog.log(crate::log::Level::Warning, m);
        match write_base(&job, shards, &child_dir, &child_base, &mut on_key, &log) {
            Ok(_) => {
                let cow = child::private_dirty_bytes();
                clog.log(
                    crate::log::Level::Notice,
                    &format!("Successfully created the temporary AOF base file {child_base}"),
                );
                clog.log(
                    crate::log::Level::Notice,
                    &format!(
                        "Fork CoW for AOF rewrite: current {} MB, peak {} MB, average {} MB",
                        cow >> 20,
                        cow >> 20,
                        cow >> 21
                    ),
                );
                0
            }
            Err(e) => {
                clog.log(
                    crate::log::Level::Warning,
                    &format!("Error writing the AOF base file {child_base}: {e}"),
                );
                1
            }
        }
    });
    drop(guards);
    match forked {
        Ok((running, fork_usec)) => {
            let p = &server.persistence;
            p.latest_fork_usec.store(fork_usec, Ordering::Relaxed);
            p.total_forks.fetch_add(1, Ordering::Relaxed);
            log_notice!(
                "Background append only file rewriting started by pid {}",
                running.pid
            );
            st.rewrite = Some(Rewriting {
                start_ms: crate::util::now_ms(),
                pid: running.pid,
                base_name,
                temp_incr,
            });
            st.rewrite_scheduled = false;
            server.aof.child_running.store(true, Ordering::Relaxed);
            pst.child = Some(running);
            Ok(())
        }
        Err(e) => {
            log_warning!("Can't rewrite append only file in background: fork: {}", e);
            st.last_bgrewrite_ok = false;
            Err(Logged)
        }
    }
}

/// `openNewIncrAofForAppend`: with the AOF on, a new incr file named in the manifest at once;
/// waiting for the first rewrite, a temporary incr file (returned). The writer switches to
/// it at the current stream position (the caller holds every shard, so nothing is appended
/// meanwhile).
fn open_new_incr(
    server: &Arc<Server>,
    st: &mut State,
    dir: &Path,
    filename: &str,
) -> Result<Option<String>, Logged> {
    match st.aof_state {
        AofState::Off => Ok(None),
        AofState::On => {
            let mut m = st.manifest.clone();
            let name = m.new_incr(filename);
            let (file, _) = open_incr(&dir.join(&name)).map_err(|e| {
                log_warning!("Can't open the append-only file {}: {}", name, e);
                Logged
            })?;
            if let Err(e) = m.persist(dir, filename) {
                log_warning!("Can't persist the AOF manifest: {}", e);
                let _ = std::fs::remove_file(dir.join(&name));
                return Err(Logged);
            }
            st.manifest = m;
            st.other_files_size += server.aof.incr_size.load(Ordering::Relaxed);
            switch_writer(server, file);
            Ok(None)
        }
        AofState::WaitRewrite => {
            let name = temp_incr_name(filename);
            let file = std::fs::OpenOptions::new()
                .create(true)
                .write(true)
                .truncate(true)
                .open(dir.join(&name))
                .map_err(|e| {
                    log_warning!("Can't open the append-only file {}: {}", name, e);
                    Logged
                })?;
            if server.aof.writer_running.load(Ordering::SeqCst) {
                switch_writer(server, file);
            } else {
                start_writer(server, st, file, 0)?;
            }
            Ok(Some(name))
        }
    }
}

/// Tells the writer to finish the current file with the bytes appended so far and continue
/// in `file`.
fn switch_writer(server: &Server, file: File) {
    let aof = &server.aof;
    {
        let mut q = aof.take_lock.lock();
        let tail = server.feed.with(|f| {
            f.reset_aof_db();
            f.aof.as_mut().map(std::mem::take).unwrap_or_default()
        });
        q.push(Ctl::Switch { tail, file });
        aof.ctl_pending.store(true, Ordering::SeqCst);
    }
    aof.bell.ring();
}

/// The rewrite child ended (`backgroundRewriteDoneHandler`); called by the persistence cron.
pub fn on_child_done(server: &Server, done: Finished) {
    let aof = &server.aof;
    aof.child_running.store(false, Ordering::Relaxed);
    let mut st = aof.state.lock();
    let Some(rw) = st.rewrite.take() else {
        return;
    };
    st.last_cow_bytes = done.last.cow_bytes;
    st.last_rewrite_time_secs = (done.elapsed_ms / 1000) as i64;
    let ok = done.exit == Exit::Code(0) && finish_success(server, &mut st, &rw).is_ok();
    if ok {
        st.rewrites += 1;
        st.last_bgrewrite_ok = true;
        st.rewrites_consecutive_failures = 0;
        log_notice!("Background AOF rewrite finished successfully");
        return;
    }
    let _ = std::fs::remove_file(st.dir.join(&rw.base_name));
    let _ = std::fs::remove_file(format!("temp-{}.rdb", done.pid));
    let _ = std::fs::remove_file(st.dir.join(format!("temp-rewriteaof-{}.aof", done.pid)));
    match done.exit {
        Exit::Signal(sig) if sig == libc::SIGUSR1 => {
            log_warning!("Background AOF rewrite terminated by signal {}", sig);
        }
        Exit::Signal(sig) => {
            log_warning!("Background AOF rewrite terminated by signal {}", sig);
            st.last_bgrewrite_ok = false;
            st.rewrites_consecutive_failures += 1;
        }
        Exit::Code(_) => {
            log_warning!("Background AOF rewrite terminated with error");
            st.last_bgrewrite_ok = false;
            st.rewrites_consecutive_failures += 1;
        }
    }
    if st.aof_state == AofState::WaitRewrite {
        // Still no base: the temp incr file goes (the next rewrite's fork captures
        // everything it held, and that rewrite opens a fresh one), and the cron tries again
        // (`aofDelTempIncrAofFile`).
        if let Some(temp) = &rw.temp_incr {
            log_notice!("Removing the temp incr aof file {} in the background", temp);
            let _ = std::fs::remove_file(st.dir.join(temp));
        }
        st.rewrite_scheduled = true;
    }
}

/// Swaps the manifest to the new base (and, after `appendonly yes`, the first real incr file),
/// then deletes the files it no longer names.
fn finish_success(server: &Server, st: &mut State, rw: &Rewriting) -> Result<(), Logged> {
    let dir = st.dir.clone();
    let filename = st.filename.clone();
    let cfg = server.config.load();
    let mut m: Manifest = st.manifest.clone();
    if let Some(temp) = &rw.temp_incr {
        let name = m.new_incr(&filename);
        if let Err(e) = std::fs::rename(dir.join(temp), dir.join(&name)) {
            log_warning!(
                "Error trying to rename the temporary AOF incr file {} into {}: {}",
                temp,
                name,
                e
            );
            return Err(Logged);
        }
    }
    let base = m.new_base(&filename, cfg.aof_use_rdb_preamble);
    if base != rw.base_name {
        // The preamble setting changed meanwhile: name the base as the child wrote it.
        if let Some(b) = m.base.as_mut() {
            b.name = rw.base_name.clone();
        }
    }
    let keep = if st.aof_state == AofState::Off { 0 } else { 1 };
    m.incr_to_history(keep);
    let _ = fsync_dir(&dir);
    if let Err(e) = m.persist(&dir, &filename) {
        log_warning!("Can't persist the AOF manifest: {}", e);
        return Err(Logged);
    }
    log_notice!(
        "Successfully renamed the temporary AOF base file {} into {}",
        rw.base_name,
        rw.base_name
    );
    del_history_files(&cfg, &mut m, &dir, &filename);
    let base_size = std::fs::metadata(dir.join(&rw.base_name)).map_or(0, |md| md.len());
    let incr_others: u64 = m
        .incr
        .iter()
        .rev()
        .skip(1)
        .filter_map(|i| std::fs::metadata(dir.join(&i.name)).ok())
        .map(|md| md.len())
        .sum();
    st.other_files_size = base_size + incr_others;
    st.rewrite_base_size = base_size + incr_others + server.aof.incr_size.load(Ordering::Relaxed);
    st.manifest = m;
    if st.aof_state == AofState::WaitRewrite {
        st.aof_state = AofState::On;
        log_notice!("Background AOF rewrite terminated with success");
    } else {
        log_notice!("Background AOF rewrite terminated with success");
    }
    Ok(())
}

/// Whether `aof-disable-auto-gc` keeps history files (named in the manifest as `type h`).
fn auto_gc_disabled(cfg: &crate::config::Config) -> bool {
    cfg.get(&[b"aof-disable-auto-gc".as_slice()])
        .first()
        .is_some_and(|(_, v)| v == "yes")
}

/// Deletes the history files and drops them from the manifest (`aofDelHistoryFiles`), unless
/// `aof-disable-auto-gc` keeps them. The files go only once the manifest no longer names them.
fn del_history_files(cfg: &crate::config::Config, m: &mut Manifest, dir: &Path, filename: &str) {
    if auto_gc_disabled(cfg) || m.history.is_empty() {
        return;
    }
    let history: Vec<String> = m.history.drain(..).map(|h| h.name).collect();
    if m.persist(dir, filename).is_ok() {
        for h in history {
            log_notice!("Removing the history file {} in the background", h);
            let _ = std::fs::remove_file(dir.join(&h));
        }
    }
}

/// DEBUG LOADAOF and `CONFIG SET aof-disable-auto-gc no`: delete the history files the
/// manifest names, if auto GC is on.
pub fn gc_history(server: &Server) {
    let cfg = server.config.load();
    let mut st = server.aof.state.lock();
    let (dir, filename) = (st.dir.clone(), st.filename.clone());
    if filename.is_empty() {
        return;
    }
    del_history_files(&cfg, &mut st.manifest, &dir, &filename);
}

/// `CONFIG SET appendonly yes` (`startAppendOnly`): collect into a temporary incr file and
/// rewrite the first base.
pub fn start_appendonly(server: &Server) -> Result<(), String> {
    {
        let mut st = server.aof.state.lock();
        if st.aof_state != AofState::Off {
            return Ok(());
        }
        st.aof_state = AofState::WaitRewrite;
    }
    let busy = server.persistence.state().child.is_some();
    if busy || crate::persistence::snapshot::in_exec() {
        // Another child runs, or a transaction (Redis forks no child inside EXEC): the
        // rewrite starts when the cron finds it possible; meanwhile nothing is collected, as
        // the rewrite will capture the dataset at its fork.
        server.aof.state.lock().rewrite_scheduled = true;
        if busy {
            log_warning!("AOF was enabled but there is already another background operation. An AOF background was scheduled to start when possible.");
        } else {
            log_warning!("AOF was enabled during a transaction. An AOF background was scheduled to start when possible.");
        }
        return Ok(());
    }
    if start_rewrite(server).is_err() {
        server.aof.state.lock().aof_state = AofState::Off;
        stop_writer(server);
        log_warning!(
            "Redis needs to enable the AOF but can't trigger a background AOF rewrite operation. Check the above logs for more info about the error."
        );
        return Err("ERR".into());
    }
    Ok(())
}

/// Stops the writer after it wrote and fsynced everything collected.
fn stop_writer(server: &Server) {
    let aof = &server.aof;
    let handle = aof.state.lock().writer.take();
    if !aof.writer_running.load(Ordering::SeqCst) {
        stop_collecting(server);
        return;
    }
    {
        let mut q = aof.take_lock.lock();
        aof.set_on(false);
        let tail = server.feed.with(|f| f.aof.take().unwrap_or_default());
        q.push(Ctl::Stop { tail });
        aof.ctl_pending.store(true, Ordering::SeqCst);
    }
    aof.bell.ring();
    if let Some(h) = handle {
        let _ = h.join();
    }
    aof.publish_durable(server, server.feed.aof_end());
}

/// `CONFIG SET appendonly no` (`stopAppendOnly`): flush, fsync, close; kill a rewrite child.
pub fn stop_appendonly(server: &Server) {
    if server.aof.state.lock().aof_state == AofState::Off {
        return;
    }
    // As Redis's `killAppendOnlyChild`: the child is killed and reaped at once, so a
    // BGREWRITEAOF right after finds no rewrite in progress.
    let killed = {
        let mut st = server.persistence.state();
        match st.child.take() {
            Some(mut c) if c.kind == ChildKind::AofRewrite => {
                c.kill();
                c.try_reap(true)
            }
            other => {
                st.child = other;
                None
            }
        }
    };
    if let Some(done) = killed {
        let pid = done.pid;
        on_child_done(server, done);
        // Logged last, as Redis's single line for it (tools look for it at the log's end).
        log_notice!("Killing running AOF rewrite child: {}", pid);
    }
    stop_writer(server);
    let mut st = server.aof.state.lock();
    if let Some(temp) = st.rewrite.as_ref().and_then(|r| r.temp_incr.clone()) {
        let _ = std::fs::remove_file(st.dir.join(temp));
    }
    st.aof_state = AofState::Off;
    st.rewrite_scheduled = false;
}

/// After CONFIG SET: start or stop the AOF, and mirror the fsync settings. The error is
/// CONFIG SET's reply when the AOF cannot be turned on.
pub fn config_changed(server: &Server) -> Result<(), String> {
    let cfg = server.config.load();
    server.aof.apply_config(&cfg);
    gc_history(server);
    let state = server.aof.state.lock().aof_state;
    if cfg.appendonly && state == AofState::Off {
        return start_appendonly(server).map_err(|_| {
            "ERR CONFIG SET failed (possibly related to argument 'appendonly') - Unable to turn on AOF. Check server logs.".to_string()
        });
    } else if !cfg.appendonly && state != AofState::Off {
        stop_appendonly(server);
    }
    Ok(())
}

/// The AOF part of the server cron (main thread): scheduled rewrites and the auto-rewrite
/// rule (`auto-aof-rewrite-percentage`, `auto-aof-rewrite-min-size`).
pub fn cron(server: &Server) {
    if server.persistence.state().child.is_some() || server.shutdown.load(Ordering::Relaxed) {
        return;
    }
    let cfg = server.config.load();
    let (scheduled, state, current, base) = {
        let st = server.aof.state.lock();
        (
            st.rewrite_scheduled,
            st.aof_state,
            st.other_files_size + server.aof.incr_size.load(Ordering::Relaxed),
            st.rewrite_base_size,
        )
    };
    if scheduled {
        if !rewrite_limited(server) {
            let _ = start_rewrite(server);
        }
        return;
    }
    if state != AofState::On || cfg.auto_aof_rewrite_percentage == 0 {
        return;
    }
    if current <= cfg.auto_aof_rewrite_min_size {
        return;
    }
    let base = base.max(1);
    let growth = (current * 100 / base) as i64 - 100;
    if growth >= cfg.auto_aof_rewrite_percentage as i64 && !rewrite_limited(server) {
        log_notice!("Starting automatic rewriting of AOF on {}% growth", growth);
        let _ = start_rewrite(server);
    }
}

/// After `REWRITE_FAILURES_BEFORE_LIMIT` consecutive failures, automatic and scheduled
/// rewrites wait 1 minute, then 2, 4... up to `REWRITE_LIMIT_DELAY_MINUTES_MAX`
/// (`aofRewriteLimited`); BGREWRITEAOF by hand is never limited. Asked only when a rewrite
/// would start, so each delay is announced once.
fn rewrite_limited(server: &Server) -> bool {
    let mut st = server.aof.state.lock();
    if st.rewrites_consecutive_failures < REWRITE_FAILURES_BEFORE_LIMIT {
        st.limit_delay_minutes = 0;
        st.limit_until_secs = 0;
        return false;
    }
    let now_secs = crate::util::now_ms() / 1000;
    if st.limit_until_secs != 0 {
        if now_secs < st.limit_until_secs {
            return true;
        }
        st.limit_until_secs = 0;
        return false;
    }
    st.limit_delay_minutes = (st.limit_delay_minutes * 2).clamp(1, REWRITE_LIMIT_DELAY_MINUTES_MAX);
    st.limit_until_secs = now_secs + st.limit_delay_minutes * 60;
    log_warning!(
        "Background AOF rewrite has repeatedly failed and triggered the limit, will retry in {} minutes",
        st.limit_delay_minutes
    );
    true
}

/// Shutdown: everything collected reaches the disk before the process exits.
pub fn flush_on_shutdown(server: &Server) {
    if server.aof.is_on() {
        log_notice!("Calling fsync() on the AOF file.");
        stop_writer(server);
    }
}
