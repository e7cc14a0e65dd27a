//! The software watchdog (`watchdog-period`, Redis's `debug.c` "Software Watchdog"): when a
//! loop does not come back to its top within the period, a SIGALRM interrupts it where it
//! is and the log gets Redis's block — `--- WATCHDOG TIMER EXPIRED ---`, the interrupted
//! instruction (`EIP:`) and the backtrace of the stalled thread — so a slow command or a
//! stuck loop can be seen from the outside.
//!
//! Redis has one event loop: it re-arms a one-shot process timer (`setitimer`) from its cron
//! and the signal reaches the main thread. shardis has one loop per shard, so each watched
//! thread owns a POSIX timer aimed at itself (`SIGEV_THREAD_ID`): a shard re-arms its own
//! timer at the top of every loop turn (`pet`, at most every `REARM_MS_MIN` ms, a syscall
//! only while the watchdog is on), so only a shard that stays inside one turn for the
//! period is reported, with its own stack. The replication link thread is watched during a
//! full synchronization's load (`long_step`): like Redis's main thread during a diskless
//! load, it is then inside one long step and is reported once if that step outlasts the
//! period (the signal also interrupts its blocking reads with EINTR, which the link
//! retries, as Redis's `replica can handle EINTR if use diskless load` test checks).
//!
//! The signal handler does only what is async-signal-safe: it takes the interrupted
//! instruction from the signal context, walks the stack with glibc's `backtrace()` (warmed
//! up when the watchdog is enabled, as its first call loads the unwinder), stores the frame
//! addresses in a free static slot and writes one byte to a pipe. A reporter thread reads
//! the pipe, names the frames (`symbols`) and writes the log block; nothing is allocated or
//! locked on the interrupted thread, which may itself hold the allocator's or the logger's
//! lock.
//!
//! Like Redis, a period shorter than two cron periods (`2 * 1000 / hz` ms) is raised to that
//! (a healthy loop may wait that long for its cron), and 0 turns the watchdog off (SIGALRM
//! is then ignored, so a timer already in flight is harmless).

mod symbols;

use crate::config::Config;
use std::cell::RefCell;
use std::sync::atomic::{AtomicI32, AtomicI64, AtomicU64, AtomicU8, AtomicUsize, Ordering};
use std::sync::Mutex;

/// Frames kept of a stalled thread's stack (Redis keeps 100).
const FRAMES_MAX: usize = 100;
/// Reports that may wait for the reporter at once (several shards can stall together, e.g.
/// behind one DEBUG SLEEP); a stall finding every slot taken is not reported.
const SLOTS_MAX: usize = 8;
/// A loop re-arms its timer at most this often: a syscall per turn would cost throughput,
/// and a stall is only reported that much later.
const REARM_MS_MIN: u64 = 10;

/// The effective period in ms, 0 when off.
static PERIOD_MS: AtomicU64 = AtomicU64::new(0);
/// The pipe's write end the handler signals the reporter through, -1 before it exists.
static WAKE_FD: AtomicI32 = AtomicI32::new(-1);
/// Serializes turning the watchdog on and off.
static SWITCH: Mutex<()> = Mutex::new(());
/// The watched threads, for the reporter's thread names and for disarming all at once.
static WATCHED: Mutex<Vec<Watched>> = Mutex::new(Vec::new());

struct Watched {
    tid: i32,
    name: String,
    timer: usize,
}

/// What the handler hands to the reporter: one stalled thread's stack.
struct Slot {
    state: AtomicU8,
    tid: AtomicI32,
    unix_secs: AtomicI64,
    eip: AtomicUsize,
    len: AtomicUsize,
    frames: [AtomicUsize; FRAMES_MAX],
}

const SLOT_FREE: u8 = 0;
const SLOT_FILLING: u8 = 1;
const SLOT_READY: u8 = 2;

impl Slot {
    const fn new() -> Slot {
        Slot {
            state: AtomicU8::new(SLOT_FREE),
            tid: AtomicI32::new(0),
            unix_secs: AtomicI64::new(0),
            eip: AtomicUsize::new(0),
            len: AtomicUsize::new(0),
            frames: [const { AtomicUsize::new(0) }; FRAMES_MAX],
        }
    }
}

static SLOTS: [Slot; SLOTS_MAX] = [const { Slot::new() }; SLOTS_MAX];

/// This thread's timer, deleted when the thread ends.
struct ThreadTimer {
    id: libc::timer_t,
    tid: i32,
    armed: bool,
    armed_at_ms: u64,
}

impl ThreadTimer {
    /// A timer that sends SIGALRM to the calling thread only.
    fn create() -> Option<ThreadTimer> {
        // SAFETY: gettid has no preconditions.
        let tid = unsafe { libc::gettid() };
        // SAFETY: a zeroed sigevent is valid; the fields set are those SIGEV_THREAD_ID reads.
        let mut ev: libc::sigevent = unsafe { std::mem::zeroed() };
        ev.sigev_notify = libc::SIGEV_THREAD_ID;
        ev.sigev_signo = libc::SIGALRM;
        ev.sigev_notify_thread_id = tid;
        let mut id: libc::timer_t = std::ptr::null_mut();
        // SAFETY: `ev` and `id` are valid for the call.
        if unsafe { libc::timer_create(libc::CLOCK_MONOTONIC, &mut ev, &mut id) } != 0 {
            crate::log_warning!(
                "Cannot create the watchdog timer: {}",
                std::io::Error::last_os_error()
            );
            return None;
        }
        Some(ThreadTimer {
            id,
            tid,
            armed: false,
            armed_at_ms: 0,
        })
    }

    fn set(&mut self, period_ms: u64, now_ms: u64) {
        set_timer(self.id, period_ms);
        self.armed = period_ms > 0;
        self.armed_at_ms = now_ms;
    }
}

impl Drop for ThreadTimer {
    fn drop(&mut self) {
        if let Ok(mut w) = WATCHED.lock() {
            w.retain(|t| t.tid != self.tid);
        }
        // SAFETY: the timer was created by `create` and is deleted once.
        unsafe {
            libc::timer_delete(self.id);
        }
    }
}

/// Arms a one-shot timer for `period_ms` (0 disarms it). Any thread may set any timer.
fn set_timer(id: libc::timer_t, period_ms: u64) {
    let spec = libc::itimerspec {
        it_interval: libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        },
        it_value: libc::timespec {
            tv_sec: (period_ms / 1000) as libc::time_t,
            tv_nsec: ((period_ms % 1000) * 1_000_000) as libc::c_long,
        },
    };
    // SAFETY: `id` is a live timer (deleted only by its thread's `Drop`, after it left
    // `WATCHED`, whose lock callers hold or which is the caller's own); `spec` is valid.
    unsafe {
        libc::timer_settime(id, 0, &spec, std::ptr::null_mut());
    }
}

thread_local! {
    static TIMER: RefCell<Option<ThreadTimer>> = const { RefCell::new(None) };
}

/// Watches the calling thread under `name` (shown in reports); its loop calls `pet`.
pub fn register_thread(name: &str, cfg: &Config) {
    apply_config(cfg);
    with_own_timer(name, |_| ());
}

/// Runs `f` on the calling thread's timer, created and registered under `name` if needed.
fn with_own_timer<R>(name: &str, f: impl FnOnce(&mut ThreadTimer) -> R) -> Option<R> {
    TIMER.with(|t| {
        let mut t = t.borrow_mut();
        if t.is_none() {
            let timer = ThreadTimer::create()?;
            if let Ok(mut w) = WATCHED.lock() {
                w.push(Watched {
                    tid: timer.tid,
                    name: name.to_string(),
                    timer: timer.id as usize,
                });
            }
            *t = Some(timer);
        }
        t.as_mut().map(f)
    })
}

/// The top of a watched loop's turn: the stall clock starts again (at most every
/// `REARM_MS_MIN` ms). Costs one atomic load while the watchdog is off.
#[inline]
pub fn pet(now_ms: u64) {
    let period = PERIOD_MS.load(Ordering::Relaxed);
    if period == 0 {
        return;
    }
    TIMER.with(|t| {
        if let Some(t) = t.borrow_mut().as_mut() {
            if !t.armed || now_ms.saturating_sub(t.armed_at_ms) >= REARM_MS_MIN {
                t.set(period, now_ms);
            }
        }
    });
}

/// A long step of a thread that is not an event loop (the replication link's load): the
/// watchdog fires once if it outlasts the period. Dropping the guard ends the step.
pub struct LongStep {
    armed: bool,
}

pub fn long_step(name: &str) -> LongStep {
    let period = PERIOD_MS.load(Ordering::Relaxed);
    let armed =
        period > 0 && with_own_timer(name, |t| t.set(period, crate::util::now_ms())).is_some();
    LongStep { armed }
}

impl Drop for LongStep {
    fn drop(&mut self) {
        if self.armed {
            TIMER.with(|t| {
                if let Some(t) = t.borrow_mut().as_mut() {
                    t.set(0, 0);
                }
            });
        }
    }
}

/// `watchdog-period`: turns the watchdog on, off or changes its period.
pub fn apply_config(cfg: &Config) {
    let configured = crate::persistence::snapshot::config_int(cfg, "watchdog-period").max(0) as u64;
    let period = match configured {
        0 => 0,
        ms => ms.max(2 * (1000 / cfg.hz.clamp(1, 500) as u64)),
    };
    if PERIOD_MS.load(Ordering::Relaxed) == period {
        return;
    }
    let _switching = SWITCH.lock();
    if PERIOD_MS.load(Ordering::Relaxed) == period {
        return;
    }
    if period == 0 {
        PERIOD_MS.store(0, Ordering::SeqCst);
        if let Ok(w) = WATCHED.lock() {
            for t in w.iter() {
                set_timer(t.timer as libc::timer_t, 0);
            }
        }
        // A timer armed meanwhile by a loop that had not seen the change finds SIGALRM
        // ignored.
        set_handler(false);
        return;
    }
    if !start_reporter() {
        return;
    }
    set_handler(true);
    PERIOD_MS.store(period, Ordering::SeqCst);
}

fn set_handler(on: bool) {
    // SAFETY: a zeroed sigaction with an empty mask is valid; the handler is an
    // `extern "C"` function with the SA_SIGINFO signature, or SIG_IGN.
    unsafe {
        let mut act: libc::sigaction = std::mem::zeroed();
        libc::sigemptyset(&mut act.sa_mask);
        if on {
            act.sa_flags = libc::SA_SIGINFO;
            act.sa_sigaction = on_alarm as *const () as usize;
        } else {
            act.sa_sigaction = libc::SIG_IGN;
        }
        libc::sigaction(libc::SIGALRM, &act, std::ptr::null_mut());
    }
}

/// Creates the pipe and the reporter thread once. Also takes one backtrace, so that the
/// handler's first one does not load the unwinder.
fn start_reporter() -> bool {
    if WAKE_FD.load(Ordering::SeqCst) >= 0 {
        return true;
    }
    let mut warm = [std::ptr::null_mut(); 4];
    // SAFETY: the buffer holds 4 entries.
    unsafe {
        libc::backtrace(warm.as_mut_ptr(), warm.len() as libc::c_int);
    }
    let mut fds = [0 as libc::c_int; 2];
    // SAFETY: `fds` holds two descriptors.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        crate::log_warning!(
            "Cannot start the watchdog: {}",
            std::io::Error::last_os_error()
        );
        return false;
    }
    // SAFETY: the write end is ours; a full pipe must never block the handler.
    unsafe {
        libc::fcntl(fds[1], libc::F_SETFL, libc::O_NONBLOCK);
    }
    let read_fd = fds[0];
    let spawned = std::thread::Builder::new()
        .name("watchdog".into())
        .spawn(move || report_loop(read_fd));
    if let Err(e) = spawned {
        crate::log_warning!("Cannot start the watchdog: {}", e);
        // SAFETY: both ends are ours and unused.
        unsafe {
            libc::close(fds[0]);
            libc::close(fds[1]);
        }
        return false;
    }
    WAKE_FD.store(fds[1], Ordering::SeqCst);
    true
}

/// SIGALRM on a stalled thread. Async-signal-safe: atomics, `backtrace`, `time`, `write`.
extern "C" fn on_alarm(_sig: libc::c_int, _info: *mut libc::siginfo_t, context: *mut libc::c_void) {
    // SAFETY: errno is thread-local; it is restored for the interrupted code.
    let errno = unsafe { *libc::__errno_location() };
    let slot = SLOTS.iter().find(|s| {
        s.state
            .compare_exchange(
                SLOT_FREE,
                SLOT_FILLING,
                Ordering::Acquire,
                Ordering::Relaxed,
            )
            .is_ok()
    });
    if let Some(slot) = slot {
        let mut frames = [std::ptr::null_mut(); FRAMES_MAX];
        // SAFETY: the buffer holds FRAMES_MAX entries; the unwinder was loaded beforehand.
        let n = unsafe { libc::backtrace(frames.as_mut_ptr(), FRAMES_MAX as libc::c_int) };
        let n = (n.max(0) as usize).min(FRAMES_MAX);
        for (to, from) in slot.frames.iter().zip(&frames[..n]) {
            to.store(*from as usize, Ordering::Relaxed);
        }
        slot.len.store(n, Ordering::Relaxed);
        slot.eip.store(interrupted_ip(context), Ordering::Relaxed);
        // SAFETY: gettid and time(NULL) are async-signal-safe.
        unsafe {
            slot.tid.store(libc::gettid(), Ordering::Relaxed);
            slot.unix_secs
                .store(libc::time(std::ptr::null_mut()) as i64, Ordering::Relaxed);
        }
        slot.state.store(SLOT_READY, Ordering::Release);
        let fd = WAKE_FD.load(Ordering::Relaxed);
        if fd >= 0 {
            // SAFETY: writing one byte from a local to the (non-blocking) pipe.
            unsafe {
                libc::write(fd, [1u8].as_ptr().cast(), 1);
            }
        }
    }
    // SAFETY: as above.
    unsafe {
        *libc::__errno_location() = errno;
    }
}

/// The instruction the signal interrupted, from the signal context (0 where unknown).
fn interrupted_ip(context: *mut libc::c_void) -> usize {
    if context.is_null() {
        return 0;
    }
    #[cfg(all(target_os = "linux", target_arch = "x86_64"))]
    {
        // SAFETY: for an SA_SIGINFO handler the third argument is the `ucontext_t`.
        unsafe {
            let uc = &*(context as *const libc::ucontext_t);
            uc.uc_mcontext.gregs[libc::REG_RIP as usize] as usize
        }
    }
    #[cfg(all(target_os = "linux", target_arch = "aarch64"))]
    {
        // SAFETY: for an SA_SIGINFO handler the third argument is the `ucontext_t`.
        unsafe {
            let uc = &*(context as *const libc::ucontext_t);
            uc.uc_mcontext.pc as usize
        }
    }
    #[cfg(not(all(
        target_os = "linux",
        any(target_arch = "x86_64", target_arch = "aarch64")
    )))]
    {
        0
    }
}

/// A stalled thread's stack, copied out of its slot.
struct Report {
    tid: i32,
    unix_secs: i64,
    eip: usize,
    frames: Vec<usize>,
}

fn report_loop(fd: libc::c_int) {
    unpin();
    let mut buf = [0u8; 64];
    loop {
        // SAFETY: reading into a local buffer from our pipe.
        let n = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) };
        if n == 0 {
            return;
        }
        if n < 0 && std::io::Error::last_os_error().kind() != std::io::ErrorKind::Interrupted {
            return;
        }
        for slot in &SLOTS {
            if slot.state.load(Ordering::Acquire) != SLOT_READY {
                continue;
            }
            let len = slot.len.load(Ordering::Relaxed).min(FRAMES_MAX);
            let report = Report {
                tid: slot.tid.load(Ordering::Relaxed),
                unix_secs: slot.unix_secs.load(Ordering::Relaxed),
                eip: slot.eip.load(Ordering::Relaxed),
                frames: slot.frames[..len]
                    .iter()
                    .map(|f| f.load(Ordering::Relaxed))
                    .collect(),
            };
            slot.state.store(SLOT_FREE, Ordering::Release);
            crate::log::raw(&render(&report));
        }
    }
}

/// The reporter is spawned by a shard, pinned to its CPU: it takes the main thread's CPUs
/// instead, so that a report of a stalled shard does not wait behind that same shard.
fn unpin() {
    // SAFETY: a zeroed cpu_set_t is an empty set; both calls only read or fill `set`.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        let size = std::mem::size_of::<libc::cpu_set_t>();
        if libc::sched_getaffinity(libc::getpid(), size, &mut set) == 0 {
            libc::sched_setaffinity(0, size, &set);
        }
    }
}

/// Redis's block (`watchdogSignalHandler` + `logStackTrace`), with the stalled thread named.
fn render(r: &Report) -> String {
    use std::fmt::Write;
    let head = format!("{}:signal-handler ({}) ", std::process::id(), r.unix_secs);
    let name = WATCHED
        .lock()
        .ok()
        .and_then(|w| w.iter().find(|t| t.tid == r.tid).map(|t| t.name.clone()))
        .unwrap_or_else(|| "thread".to_string());
    let mut s = String::new();
    let _ = writeln!(s, "{head}\n--- WATCHDOG TIMER EXPIRED ---");
    let _ = writeln!(
        s,
        "{name} (tid {}) did not return to its loop within {} ms",
        r.tid,
        PERIOD_MS.load(Ordering::Relaxed)
    );
    s.push_str("\n------ STACK TRACE ------\n");
    if r.eip != 0 {
        let _ = writeln!(s, "EIP:\n{}", symbols::describe(r.eip, false));
    }
    s.push_str("\nBacktrace:\n");
    // The handler's own frames and the signal trampoline come first: the stack proper starts
    // at the interrupted instruction.
    let from = r.frames.iter().position(|&f| f == r.eip).unwrap_or(0);
    for (i, &f) in r.frames.iter().enumerate().skip(from) {
        let _ = writeln!(s, "{}", symbols::describe(f, i > from));
    }
    let _ = writeln!(s, "{head}--------\n");
    s
}
