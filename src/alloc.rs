//! The global allocator: mimalloc, wrapped to count the bytes the server holds.
//!
//! `used_memory` (INFO, maxmemory) must count everything the server allocates — keys, values,
//! client buffers, tables — cheaply enough to run on every allocation. Each allocation adds
//! mimalloc's rounded size for its layout (`mi_good_size`, the bytes the block really takes) to
//! a counter; each free subtracts the same function of the same layout, so the sum is exact for
//! what is live, whatever thread frees a block.
//!
//! Why counters rather than mimalloc's own statistics: mimalloc's statistics are per heap,
//! merged lazily when threads exit or when printed, and not readable as one cheap number;
//! `mi_process_info` reports committed pages, which is RSS-like (it includes free space in
//! pages) and not what Redis calls `used_memory`. Counting at the allocator boundary is what
//! Redis's zmalloc does.
//!
//! Contention: the counter is striped. Each thread adds to its own cache line (assigned
//! round-robin on the thread's first allocation), so an allocation costs one thread-local read
//! and one uncontended relaxed atomic add; readers sum the stripes.

use std::alloc::{GlobalAlloc, Layout};
use std::cell::Cell;
use std::sync::atomic::{AtomicIsize, AtomicUsize, Ordering};

/// mimalloc's C functions used here, beyond what the `mimalloc` crate wraps. They are part of
/// the static library `libmimalloc-sys` builds and links for the `mimalloc` crate (declared
/// here rather than through that crate's `extended` feature, which pulls another dependency).
mod ffi {
    use std::ffi::{c_char, c_void};
    pub type OutputFun = Option<unsafe extern "C" fn(msg: *const c_char, arg: *mut c_void)>;
    extern "C" {
        pub fn mi_good_size(size: usize) -> usize;
        pub fn mi_collect(force: bool);
        pub fn mi_version() -> std::ffi::c_int;
        pub fn mi_stats_print_out(out: OutputFun, arg: *mut c_void);
        #[allow(clippy::too_many_arguments)]
        pub fn mi_process_info(
            elapsed_msecs: *mut usize,
            user_msecs: *mut usize,
            system_msecs: *mut usize,
            current_rss: *mut usize,
            peak_rss: *mut usize,
            current_commit: *mut usize,
            peak_commit: *mut usize,
            page_faults: *mut usize,
        );
    }
}

const STRIPES: usize = 32;

#[repr(align(128))]
struct Stripe(AtomicIsize);

#[allow(clippy::declare_interior_mutable_const)]
const STRIPE_ZERO: Stripe = Stripe(AtomicIsize::new(0));
static STRIPES_USED: [Stripe; STRIPES] = [STRIPE_ZERO; STRIPES];
static NEXT_STRIPE: AtomicUsize = AtomicUsize::new(0);
/// The highest `used_memory` seen by `used_memory_sample` (Redis's peak, also sampled).
static PEAK: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    static MY_STRIPE: Cell<usize> = const { Cell::new(usize::MAX) };
}

fn stripe() -> &'static AtomicIsize {
    let i = MY_STRIPE
        .try_with(|s| {
            let mut i = s.get();
            if i == usize::MAX {
                i = NEXT_STRIPE.fetch_add(1, Ordering::Relaxed) % STRIPES;
                s.set(i);
            }
            i
        })
        // During thread teardown the thread-local is gone: use the shared first stripe.
        .unwrap_or(0);
    &STRIPES_USED[i % STRIPES].0
}

/// The bytes mimalloc really takes for `layout`.
fn charged(layout: &Layout) -> isize {
    // SAFETY: mi_good_size is a pure function of its argument.
    let n = unsafe { ffi::mi_good_size(layout.size()) };
    n as isize
}

pub struct Counting;

// SAFETY: every method forwards to mimalloc, a correct global allocator, unchanged; the
// counting around it has no effect on the blocks.
unsafe impl GlobalAlloc for Counting {
    #[inline]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = mimalloc::MiMalloc.alloc(layout);
        if !p.is_null() {
            stripe().fetch_add(charged(&layout), Ordering::Relaxed);
        }
        p
    }

    #[inline]
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let p = mimalloc::MiMalloc.alloc_zeroed(layout);
        if !p.is_null() {
            stripe().fetch_add(charged(&layout), Ordering::Relaxed);
        }
        p
    }

    #[inline]
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        stripe().fetch_sub(charged(&layout), Ordering::Relaxed);
        mimalloc::MiMalloc.dealloc(ptr, layout)
    }

    #[inline]
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let p = mimalloc::MiMalloc.realloc(ptr, layout, new_size);
        if !p.is_null() {
            // SAFETY (of the layout): realloc's contract guarantees `new_size` with the old
            // alignment is a valid layout.
            let new_layout = Layout::from_size_align_unchecked(new_size, layout.align());
            stripe().fetch_add(charged(&new_layout) - charged(&layout), Ordering::Relaxed);
        }
        p
    }
}

/// The bytes mimalloc hands out for a request of `size` bytes (its size class).
pub fn good_size(size: usize) -> usize {
    if size == 0 {
        return 0;
    }
    // SAFETY: mi_good_size is a pure function of its argument.
    unsafe { ffi::mi_good_size(size) }
}

/// `used_memory` once the server finished starting (Redis's `used_memory_startup`).
static STARTUP: AtomicUsize = AtomicUsize::new(0);

pub fn mark_startup() {
    STARTUP.store(used_memory(), Ordering::Relaxed);
}

pub fn startup() -> usize {
    STARTUP.load(Ordering::Relaxed)
}

/// Bytes allocated through the global allocator and not freed (Redis's `used_memory`).
pub fn used_memory() -> usize {
    let sum: isize = STRIPES_USED
        .iter()
        .map(|s| s.0.load(Ordering::Relaxed))
        .sum();
    sum.max(0) as usize
}

/// The net bytes the calling thread's stripe counts: the difference of two readings is what
/// the thread allocated (positive) or freed (negative) in between, as long as no other thread
/// shares its stripe (there are `STRIPES` of them, assigned round-robin) and frees nothing on
/// it meanwhile. Eviction measures what one deletion freed this way (Redis reads
/// `zmalloc_used_memory` around it, which is exact on its single thread).
pub fn thread_used() -> isize {
    stripe().load(Ordering::Relaxed)
}

/// `used_memory`, recording it into the peak.
pub fn used_memory_sample() -> usize {
    let used = used_memory();
    PEAK.fetch_max(used, Ordering::Relaxed);
    used
}

pub fn peak() -> usize {
    PEAK.load(Ordering::Relaxed)
}

/// Resets the peak to the current use (MEMORY STATS after CONFIG RESETSTAT).
pub fn reset_peak() {
    PEAK.store(used_memory(), Ordering::Relaxed);
}

/// Resident set size of the process, from /proc/self/statm (0 when unreadable).
pub fn rss_bytes() -> usize {
    let Ok(text) = std::fs::read_to_string("/proc/self/statm") else {
        return 0;
    };
    let pages: usize = text
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    // SAFETY: sysconf has no preconditions.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    pages * usize::try_from(page).unwrap_or(4096)
}

/// mimalloc's view of the process: (committed bytes, peak committed bytes).
pub fn allocator_committed() -> (usize, usize) {
    let mut elapsed = 0usize;
    let mut user = 0usize;
    let mut system = 0usize;
    let mut rss = 0usize;
    let mut peak_rss = 0usize;
    let mut commit = 0usize;
    let mut peak_commit = 0usize;
    let mut faults = 0usize;
    // SAFETY: every out-pointer is a valid local.
    unsafe {
        ffi::mi_process_info(
            &mut elapsed,
            &mut user,
            &mut system,
            &mut rss,
            &mut peak_rss,
            &mut commit,
            &mut peak_commit,
            &mut faults,
        );
    }
    (commit, peak_commit)
}

/// mimalloc's version as a number (major*100 + minor*10 + patch).
pub fn mimalloc_version() -> u32 {
    // SAFETY: mi_version has no preconditions.
    u32::try_from(unsafe { ffi::mi_version() }).unwrap_or(0)
}

/// Returns freed memory to the OS (MEMORY PURGE).
pub fn purge() {
    // SAFETY: mi_collect may be called from any thread at any time.
    unsafe { ffi::mi_collect(true) }
}

/// Lets mimalloc give back what it freed and kept: purges whose delay expired happen only on
/// allocator activity, so a shard that goes idle right after freeing large blocks (a flood of
/// big query buffers, a dropped client) would keep them resident. Called from the shards'
/// cron; collects at most once a second per thread, and only once the shard has had no
/// command to run for a second: a collection visits every page of the thread's heap and
/// frees the pages that emptied, which after a lazy free of a big value or database (blocks
/// the `lazyfree` thread returned to this shard's pages) takes milliseconds, a stall no
/// client may see. A busy shard allocates, and allocation collects pages incrementally.
pub fn collect_when_quiet(now_ms: u64, last_busy_ms: u64) {
    thread_local! {
        static LAST: Cell<u64> = const { Cell::new(0) };
    }
    if now_ms.saturating_sub(last_busy_ms) < 1000 {
        return;
    }
    let due = LAST
        .try_with(|last| {
            let due = now_ms.saturating_sub(last.get()) >= 1000;
            if due {
                last.set(now_ms);
            }
            due
        })
        .unwrap_or(false);
    if due {
        collect();
    }
}

/// One collection of the calling thread's heap (mimalloc's `mi_collect(false)`).
pub fn collect() {
    // SAFETY: mi_collect may be called from any thread at any time.
    unsafe { ffi::mi_collect(false) }
}

/// mimalloc's statistics report as text (MEMORY MALLOC-STATS).
pub fn malloc_stats() -> String {
    unsafe extern "C" fn sink(msg: *const std::ffi::c_char, arg: *mut std::ffi::c_void) {
        // SAFETY: `arg` is the `String` passed below, alive for the whole call; mimalloc
        // passes a NUL-terminated message.
        let out = &mut *arg.cast::<String>();
        out.push_str(&std::ffi::CStr::from_ptr(msg).to_string_lossy());
    }
    let mut out = String::new();
    // SAFETY: the callback only appends to `out`, which outlives the call.
    unsafe {
        ffi::mi_stats_print_out(Some(sink), (&mut out as *mut String).cast());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_live_allocations() {
        let before = used_memory();
        let v: Vec<u8> = std::hint::black_box(Vec::with_capacity(1 << 20));
        let during = used_memory();
        drop(v);
        let after = used_memory();
        // Other test threads allocate concurrently: allow slack, but a megabyte must show.
        assert!(
            during >= before + (1 << 20) - (256 << 10),
            "{before} -> {during}"
        );
        assert!(after + (768 << 10) <= during, "{during} -> {after}");
    }

    #[test]
    fn thread_counter_sees_this_threads_frees() {
        let v: Vec<u8> = std::hint::black_box(Vec::with_capacity(100_000));
        let before = thread_used();
        drop(v);
        // A test thread sharing the stripe may allocate meanwhile: leave room for it.
        assert!(before - thread_used() >= 50_000);
    }
}
