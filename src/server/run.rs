//! Start-up and shutdown: logging, the banner, shard threads (pinned, each with its own
//! listeners and I/O backend), signal handling.

use super::listener;
use super::Server;
use crate::config::{Config, IoBackend};
use crate::shard::engine::Shard;
use crate::shard::io::epoll::Epoll;
use crate::shard::io::uring::Uring;
use crate::shard::io::Io;
use crate::shard::ShardHandle;
use crate::{log_notice, log_warning};
use nix::sys::signal::{SigSet, Signal};
use std::net::SocketAddr;
use std::os::fd::RawFd;
use std::sync::atomic::Ordering;
use std::sync::Arc;

pub const REDIS_VERSION: &str = "7.0.15";

/// The CPUs this process may run on (respects taskset / cgroups).
fn allowed_cpus() -> Vec<usize> {
    match nix::sched::sched_getaffinity(nix::unistd::Pid::from_raw(0)) {
        Ok(set) => (0..nix::sched::CpuSet::count())
            .filter(|&i| set.is_set(i).unwrap_or(false))
            .collect(),
        Err(_) => vec![0],
    }
}

fn pin_to(cpu: usize) {
    let mut set = nix::sched::CpuSet::new();
    if set.set(cpu).is_ok() {
        let _ = nix::sched::sched_setaffinity(nix::unistd::Pid::from_raw(0), &set);
    }
}

fn banner(cfg: &Config, shards: usize) {
    log_notice!("oO0OoO0OoO0Oo shardis is starting oO0OoO0OoO0Oo");
    log_notice!(
        "shardis version={} (Redis {} compatible), bits=64, pid={}, just started",
        env!("CARGO_PKG_VERSION"),
        REDIS_VERSION,
        std::process::id()
    );
    match &cfg.config_file {
        Some(f) => log_notice!("Configuration loaded from {}", f),
        None => log_notice!(
            "Warning: no config file specified, using the default config. In order to specify a config file use shardis-server /path/to/redis.conf"
        ),
    }
    crate::log::raw(&format!(
        "shardis {} (Redis {} compatible) 64 bit\nRunning in standalone mode with {} shards\nPort: {}\n    PID: {}\n\n",
        env!("CARGO_PKG_VERSION"),
        REDIS_VERSION,
        shards,
        cfg.port,
        std::process::id()
    ));
}

/// Binds every configured address for one shard. The first shard's call (`probe`) also checks
/// that no other process holds the port (see `listener::probe`).
fn listeners(cfg: &Config, probe: bool) -> Result<Vec<RawFd>, String> {
    let mut fds = Vec::new();
    if cfg.port == 0 {
        // No TCP at all (Redis's `port 0`): only the Unix socket, if any, listens.
        return Ok(fds);
    }
    for spec in &cfg.bind {
        let (ip, optional) = listener::parse_bind(spec);
        let Some(ip) = ip else {
            if optional {
                continue;
            }
            return Err(format!("Invalid bind address '{}'", spec));
        };
        let addr = SocketAddr::new(ip, cfg.port);
        let bound = if probe {
            listener::probe(addr).and_then(|()| listener::listen(addr, cfg.tcp_backlog as i32))
        } else {
            listener::listen(addr, cfg.tcp_backlog as i32)
        };
        match bound {
            Ok(fd) => fds.push(fd),
            Err(e) if optional && e.raw_os_error() != Some(libc::EADDRINUSE) => {}
            Err(e) => {
                log_warning!(
                    "Warning: Could not create server TCP listening socket {}:{}: bind: {}",
                    spec.trim_start_matches('-'),
                    cfg.port,
                    // The C library's text, as Redis prints it (without Rust's "(os error N)").
                    e.to_string().split(" (os error").next().unwrap_or_default()
                );
                return Err(format!(
                    "Failed listening on port {} (TCP), aborting.",
                    cfg.port
                ));
            }
        }
    }
    if fds.is_empty() {
        return Err(format!(
            "Failed listening on port {} (TCP), aborting.",
            cfg.port
        ));
    }
    Ok(fds)
}

/// CONFIG SET `port`/`bind` at run time. Every shard's new listeners are bound first and only
/// then swapped for the old ones (each shard closes its own on its next turn), so a port or
/// address that cannot be bound fails the CONFIG SET with the server still listening where it
/// was. Redis closes first and re-listens on the old port to roll back; binding first leaves
/// no moment without a listener. Returns Redis's apply error text on failure.
pub fn rebind(server: &Server, old: &Config, new: &Config) -> Result<(), String> {
    static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _one = lock(&ONE_AT_A_TIME);
    // Only a new port can be held by another process: with the same port our own listeners
    // would fail the probe (see `listener::probe`).
    let port_changed = new.port != old.port;
    let mut fresh: Vec<Vec<RawFd>> = Vec::with_capacity(server.shards.len());
    for i in 0..server.shards.len() {
        match listeners(new, port_changed && i == 0) {
            Ok(fds) => fresh.push(fds),
            Err(e) => {
                log_warning!("{}", e);
                for fd in fresh.into_iter().flatten() {
                    // SAFETY: bound by `listeners` above and never handed to anyone.
                    unsafe { libc::close(fd) };
                }
                return Err(if port_changed {
                    "Unable to listen on this port. Check server logs.".to_string()
                } else {
                    "Failed to bind to specified addresses.".to_string()
                });
            }
        }
    }
    let external = server.shards.len();
    for (h, add) in server.shards.iter().zip(fresh) {
        let close = std::mem::replace(&mut *lock(&h.tcp_listeners), add.clone());
        let mut batch = vec![crate::shard::mesh::Msg::Listeners { close, add }];
        while !batch.is_empty() {
            if !h.mailbox.post(external, &mut batch) {
                // A full queue (4096 messages): the shard is draining it.
                h.wake();
                std::thread::sleep(std::time::Duration::from_millis(1));
            }
        }
    }
    Ok(())
}

fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn run_shard<I: Io>(io: I, id: usize, server: Arc<Server>, fds: Vec<RawFd>) {
    let handle = server.shards[id].clone();
    let mut io = io;
    if let Err(e) = io.set_wake_fd(handle.mailbox.wake_fd()) {
        log_warning!("shard {}: cannot watch the wake fd: {}", id, e);
    }
    for fd in fds {
        if let Err(e) = io.add_listener(fd) {
            log_warning!("shard {}: cannot accept on listener: {}", id, e);
        }
    }
    Shard::new(id, io, server, handle).run();
}

/// Raises the open-files limit to fit `maxclients` plus our own descriptors, as Redis does,
/// lowering `maxclients` (with a warning) when the hard limit does not allow it.
fn adjust_open_files_limit(cfg: &mut Config) {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    const RESERVED_FDS: u64 = 32;
    let want = cfg.maxclients as u64 + RESERVED_FDS;
    let Ok((soft, hard)) = getrlimit(Resource::RLIMIT_NOFILE) else {
        return;
    };
    if soft >= want {
        return;
    }
    let target = want.min(hard);
    if setrlimit(Resource::RLIMIT_NOFILE, target, hard).is_ok() && target >= want {
        log_notice!(
            "Increased maximum number of open files to {} (it was originally set to {}).",
            target,
            soft
        );
        return;
    }
    let got = getrlimit(Resource::RLIMIT_NOFILE).map_or(soft, |(s, _)| s);
    let clients = got.saturating_sub(RESERVED_FDS).max(1) as usize;
    log_warning!(
        "You requested maxclients of {} requiring at least {} max file descriptors.",
        cfg.maxclients,
        want
    );
    log_warning!(
        "Server can't set maximum open files to {} because of OS error: Operation not permitted.",
        want
    );
    log_warning!(
        "Current maximum open files is {}. maxclients has been reduced to {} to compensate for low ulimit. If you need higher maxclients increase 'ulimit -n'.",
        got,
        clients
    );
    cfg.maxclients = clients;
}

fn write_pidfile(path: &str) {
    if path.is_empty() {
        return;
    }
    if let Err(e) = std::fs::write(path, format!("{}\n", std::process::id())) {
        log_warning!("Failed to write PID file: {}", e);
    }
}

/// Detaches from the terminal (`daemonize yes`), before any thread exists.
fn daemonize() -> Result<(), String> {
    // SAFETY: called before any other thread is started, so fork is safe.
    match unsafe { nix::unistd::fork() } {
        Ok(nix::unistd::ForkResult::Parent { .. }) => std::process::exit(0),
        Ok(nix::unistd::ForkResult::Child) => {}
        Err(e) => return Err(format!("fork failed: {}", e)),
    }
    let _ = nix::unistd::setsid();
    if let Ok(devnull) = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/null")
    {
        use std::os::fd::AsRawFd;
        for fd in 0..3 {
            // SAFETY: duplicating /dev/null over the standard descriptors.
            unsafe {
                libc::dup2(devnull.as_raw_fd(), fd);
            }
        }
    }
    Ok(())
}

/// Whether one of the (blocked) signals in `sigs` is waiting to be taken.
fn signal_pending(sigs: &SigSet) -> bool {
    // SAFETY: sigpending fills a local set; sigismember only reads it.
    unsafe {
        let mut pending: libc::sigset_t = std::mem::zeroed();
        if libc::sigpending(&mut pending) != 0 {
            return false;
        }
        sigs.iter()
            .any(|s| libc::sigismember(&pending, s as libc::c_int) == 1)
    }
}

fn pidfile_path(cfg: &Config) -> String {
    if cfg.pidfile.is_empty() && cfg.daemonize {
        "/var/run/redis_6379.pid".to_string()
    } else {
        cfg.pidfile.clone()
    }
}

/// How often the main thread runs the persistence cron while it waits for signals.
const MAIN_CRON_PERIOD_MS: i64 = 100;

/// The main thread's loop: wait for SIGTERM/SIGINT, running the persistence cron (reaping
/// the BGSAVE child, save rules) in between. A signal saves and exits as
/// `shutdown-on-sigterm`/`shutdown-on-sigint` say; when that save fails the server keeps
/// running, as Redis's does.
fn wait_for_shutdown(server: &Server, sigs: &SigSet) {
    let period = libc::timespec {
        tv_sec: 0,
        tv_nsec: MAIN_CRON_PERIOD_MS * 1_000_000,
    };
    while !server.shutdown.load(Ordering::SeqCst) {
        // SAFETY: waiting on a signal set that is blocked in every thread.
        let sig = unsafe { libc::sigtimedwait(sigs.as_ref(), std::ptr::null_mut(), &period) };
        if sig < 0 {
            crate::persistence::snapshot::cron(server);
            crate::persistence::aof::rewrite::cron(server);
            continue;
        }
        if server.shutdown.load(Ordering::SeqCst) {
            return;
        }
        let cfg = server.config.load();
        let (name, flags) = if sig == libc::SIGINT {
            ("SIGINT", cfg.shutdown_on_sigint)
        } else {
            ("SIGTERM", cfg.shutdown_on_sigterm)
        };
        log_warning!("Received {} scheduling shutdown...", name);
        if !crate::persistence::snapshot::shutdown(server, flags) {
            log_warning!(
                "{} received but errors trying to shut down the server, check the logs for more information",
                name
            );
        }
    }
}

/// Removes the `unixsocket` file at exit, as Redis does.
fn remove_unix_socket(cfg: &Config) {
    if let Some(path) = cfg.unixsocket.as_deref().filter(|p| !p.is_empty()) {
        log_notice!("Removing the unix socket file.");
        if let Err(e) = std::fs::remove_file(path) {
            log_warning!("Error removing the unix socket file: {}", e);
        }
    }
}

/// The end of a shutdown decided while the caller holds every shard (`guards`, kept held
/// until the process is gone): remove the pid file, log, exit.
pub fn exit_after_shutdown(server: &Server, guards: &[crate::shard::DataGuard<'_>]) -> ! {
    let _still_held = guards;
    // Stop accepting now: an io_uring accept in flight keeps a listener open for a moment
    // after the process is gone, and a client connecting then must be refused, not reset.
    for h in server.shards.iter() {
        for &fd in lock(&h.tcp_listeners).iter() {
            // SAFETY: a listening socket of ours; only its state changes.
            unsafe { libc::shutdown(fd, libc::SHUT_RDWR) };
        }
    }
    let cfg = server.config.load();
    let pidfile = pidfile_path(&cfg);
    remove_unix_socket(&cfg);
    if !pidfile.is_empty() {
        log_notice!("Removing the pid file.");
        let _ = std::fs::remove_file(&pidfile);
    }
    log_warning!("shardis is now ready to exit, bye bye...");
    std::process::exit(server.exit_code.load(Ordering::SeqCst) as i32)
}

/// A panic is a bug: it is logged, as Redis logs a crash, and ends the process. Left to
/// itself it would end only its thread, and a shard thread gone leaves its slots unanswered
/// while the rest of the server runs on (seen once: SHUTDOWN then did nothing).
fn abort_on_panic() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let thread = std::thread::current();
        log_warning!("=== SHARDIS BUG REPORT START: Cut & paste starting from here ===");
        log_warning!(
            "thread '{}' panicked: {}",
            thread.name().unwrap_or("?"),
            info
        );
        log_warning!("=== SHARDIS BUG REPORT END. Make sure to include from START to END. ===");
        default(info);
        std::process::abort();
    }));
}

/// Runs the server until shutdown. Returns the process exit code.
pub fn run(mut cfg: Config) -> i32 {
    if cfg.daemonize {
        if let Err(e) = daemonize() {
            eprintln!("{}", e);
            return 1;
        }
    }
    crate::log::init(&cfg.logfile, &cfg.loglevel);
    abort_on_panic();
    if !cfg.dir.is_empty() {
        if let Err(e) = std::env::set_current_dir(&cfg.dir) {
            log_warning!("Can't chdir to '{}': {}", cfg.dir, e);
            return 1;
        }
    }
    if let Err(e) = crate::commands::apply_renames(&cfg.rename_commands) {
        eprintln!("{}", e);
        return 1;
    }
    adjust_open_files_limit(&mut cfg);
    crate::storage::limits::apply(&cfg);
    crate::util::cycles::calibrate();
    crate::util::refresh_lru_secs();
    let cpus = allowed_cpus();
    let nshards = if cfg.shards == 0 {
        cpus.len().max(1)
    } else {
        cfg.shards
    };
    banner(&cfg, nshards);
    for w in crate::syscheck::startup_warnings(&cfg) {
        log_warning!("{}", w);
    }

    // Signals are handled by the main thread only: block them before spawning shards.
    let mut sigs = SigSet::empty();
    sigs.add(Signal::SIGTERM);
    sigs.add(Signal::SIGINT);
    let _ = sigs.thread_block();
    // SAFETY: ignoring SIGPIPE process-wide; writes to closed sockets then fail with EPIPE.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_IGN);
    }

    let mut handles = Vec::new();
    for i in 0..nshards {
        match ShardHandle::new(i, nshards, cfg.databases) {
            Ok(h) => handles.push(Arc::new(h)),
            Err(e) => {
                log_warning!("Cannot create shard {}: {}", i, e);
                return 1;
            }
        }
    }
    let mut per_shard_fds = Vec::new();
    for (i, handle) in handles.iter().enumerate() {
        match listeners(&cfg, i == 0) {
            Ok(f) => {
                *lock(&handle.tcp_listeners) = f.clone();
                per_shard_fds.push(f)
            }
            Err(e) => {
                log_warning!("{}", e);
                return 1;
            }
        }
    }
    let unixsocket = cfg.unixsocket.clone().filter(|p| !p.is_empty());
    if let Some(path) = &unixsocket {
        match listener::listen_unix(path, cfg.unixsocketperm, cfg.tcp_backlog as i32) {
            Ok(fd) => per_shard_fds.iter_mut().for_each(|f| f.push(fd)),
            Err(e) => {
                let why = e.to_string();
                log_warning!(
                    "Failed opening Unix socket: {}",
                    why.split(" (os error").next().unwrap_or_default()
                );
                return 1;
            }
        }
    }
    if per_shard_fds.iter().all(|f| f.is_empty()) {
        log_warning!("Configured to not listen anywhere, exiting.");
        return 1;
    }
    let backend = cfg.io_backend;
    if let Err(e) = crate::acl::init(&cfg) {
        log_warning!("{}", e);
        return 1;
    }
    let server = Arc::new(Server::new(cfg.clone(), handles));
    for what in cfg.unimplemented_in_use() {
        log_warning!("Accepted but not implemented yet: {}", what);
    }
    log_notice!("Server initialized");
    // Clients connecting during the load get -LOADING from the start.
    // With the AOF on, Redis 7.0 loads the AOF only, never the RDB.
    // With the AOF on, clients get -LOADING until the AOF is open for appending, even when
    // there is nothing to load: a write before that would be acknowledged and not logged.
    let has_rdb = if cfg.appendonly {
        true
    } else {
        crate::persistence::load::startup_file_exists(&server)
    };
    crate::persistence::aof::rewrite::register(&server);
    server.persistence.loading.store(has_rdb, Ordering::SeqCst);
    if has_rdb {
        server
            .persistence
            .startup_loading_since_ms
            .store(crate::util::now_ms(), Ordering::SeqCst);
    }

    let (tx, rx) = std::sync::mpsc::channel::<Result<String, String>>();
    let mut threads = Vec::new();
    for (id, fds) in per_shard_fds.into_iter().enumerate() {
        let server = server.clone();
        let cpu = cpus.get(id % cpus.len().max(1)).copied().unwrap_or(0);
        let tx = tx.clone();
        let t = std::thread::Builder::new()
            .name(format!("shard-{}", id))
            .spawn(move || {
                pin_to(cpu);
                let uring = match backend {
                    IoBackend::Epoll => Err("epoll requested".to_string()),
                    _ => Uring::new(4096).map_err(|e| e.to_string()),
                };
                match uring {
                    Ok(io) => {
                        let _ = tx.send(Ok(format!(
                            "shard {} on CPU {}: {}",
                            id,
                            cpu,
                            io.describe()
                        )));
                        run_shard(io, id, server, fds);
                    }
                    Err(why) if backend != IoBackend::Uring => match Epoll::new() {
                        Ok(io) => {
                            let _ = tx.send(Ok(format!(
                                "shard {} on CPU {}: {} (io_uring unavailable: {})",
                                id,
                                cpu,
                                io.describe(),
                                why
                            )));
                            run_shard(io, id, server, fds);
                        }
                        Err(e) => {
                            let _ = tx.send(Err(format!("shard {}: no I/O backend: {}", id, e)));
                        }
                    },
                    Err(why) => {
                        let _ =
                            tx.send(Err(format!("shard {}: io_uring unavailable: {}", id, why)));
                    }
                }
            });
        match t {
            Ok(t) => threads.push(t),
            Err(e) => {
                log_warning!("Cannot spawn shard thread: {}", e);
                return 1;
            }
        }
    }
    drop(tx);
    for _ in 0..nshards {
        match rx.recv() {
            Ok(Ok(line)) => log_notice!("{}", line),
            Ok(Err(e)) => {
                log_warning!("{}", e);
                server.request_shutdown();
                return 1;
            }
            Err(_) => return 1,
        }
    }
    let interrupted = || signal_pending(&sigs);
    let loaded = if cfg.appendonly {
        crate::persistence::aof::load::load_at_startup(&server)
    } else {
        crate::persistence::load::load_at_startup(&server, &interrupted)
    };
    if let Err(code) = loaded {
        server.request_shutdown();
        for t in threads {
            let _ = t.join();
        }
        return code;
    }
    let pidfile = pidfile_path(&cfg);
    write_pidfile(&pidfile);
    crate::replication::replica::start(server.clone());
    crate::alloc::mark_startup();
    if cfg.port != 0 {
        log_notice!("Ready to accept connections tcp");
    }
    if let Some(path) = &unixsocket {
        log_notice!("The server is now ready to accept connections at {}", path);
    }

    wait_for_shutdown(&server, &sigs);
    server.request_shutdown();
    for t in threads {
        let _ = t.join();
    }
    remove_unix_socket(&cfg);
    if !pidfile.is_empty() {
        log_notice!("Removing the pid file.");
        let _ = std::fs::remove_file(&pidfile);
    }
    log_warning!("shardis is now ready to exit, bye bye...");
    server.exit_code.load(Ordering::SeqCst) as i32
}
