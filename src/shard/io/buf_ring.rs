//! The provided-buffer ring of the io_uring backend: the memory multishot recv writes into.
//!
//! Two anonymous mappings: the ring itself (an array of `io_uring_buf` entries, page aligned as
//! the kernel requires, shared with it) and the buffers (`count` × `buf_bytes`). The kernel
//! takes buffers from the head of the ring, one per recv completion, and names the buffer it
//! used in the completion (its bid). The buffer is then ours: we lend it to the handler as
//! `Data` and hand it back at the tail with `recycle`. The tail is a u16 in entry 0's reserved
//! field, written with release ordering so that the kernel sees the entry before the tail.
//!
//! The mappings must stay valid while the kernel may use them: until the ring is unregistered
//! or the io_uring torn down. `Uring`'s drop waits for that; if it cannot tell, it calls `leak`
//! and the mappings are never unmapped.

use std::io;
use std::ptr;
use std::sync::atomic::{AtomicU16, Ordering};

/// `struct io_uring_buf` from the kernel's uapi.
#[repr(C)]
struct BufEntry {
    addr: u64,
    len: u32,
    bid: u16,
    /// In entry 0, the ring's tail; unused elsewhere.
    resv: u16,
}

const _: () = assert!(std::mem::size_of::<BufEntry>() == 16);

pub(super) struct BufRing {
    entries: *mut BufEntry,
    entries_bytes: usize,
    bufs: *mut u8,
    bufs_bytes: usize,
    count: u16,
    buf_bytes: u32,
    /// Our copy of the tail; the kernel reads the shared one.
    tail: u16,
    /// Never unmap: the kernel may still be using the memory.
    leaked: bool,
}

fn map_anonymous(bytes: usize) -> io::Result<*mut u8> {
    // SAFETY: an anonymous private mapping at an address of the kernel's choice touches no
    // existing memory.
    let addr = unsafe {
        libc::mmap(
            ptr::null_mut(),
            bytes,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
    };
    if addr == libc::MAP_FAILED {
        return Err(io::Error::last_os_error());
    }
    Ok(addr.cast())
}

impl BufRing {
    /// Maps the ring and the buffers and puts every buffer in the ring. `count` must be a power
    /// of two (the kernel masks ring indexes with `count - 1`).
    pub(super) fn new(count: u16, buf_bytes: u32) -> io::Result<BufRing> {
        assert!(count.is_power_of_two() && count <= 1 << 15, "buffer count");
        assert!(buf_bytes > 0, "buffer size");
        let entries_bytes = usize::from(count) * std::mem::size_of::<BufEntry>();
        let bufs_bytes = usize::from(count) * buf_bytes as usize;
        let entries = map_anonymous(entries_bytes)?.cast::<BufEntry>();
        let bufs = match map_anonymous(bufs_bytes) {
            Ok(bufs) => bufs,
            Err(e) => {
                // SAFETY: `entries` was mapped above with this length and is not used after.
                unsafe { libc::munmap(entries.cast(), entries_bytes) };
                return Err(e);
            }
        };
        let mut ring = BufRing {
            entries,
            entries_bytes,
            bufs,
            bufs_bytes,
            count,
            buf_bytes,
            tail: 0,
            leaked: false,
        };
        for bid in 0..count {
            ring.recycle(bid);
        }
        Ok(ring)
    }

    /// The address to register with the kernel.
    pub(super) fn ring_addr(&self) -> u64 {
        self.entries as u64
    }

    pub(super) fn count(&self) -> u16 {
        self.count
    }

    pub(super) fn buf_bytes(&self) -> u32 {
        self.buf_bytes
    }

    /// The first `len` bytes of buffer `bid`, which a completion just handed to us.
    pub(super) fn data(&self, bid: u16, len: usize) -> &[u8] {
        assert!(bid < self.count, "the kernel named a buffer we do not have");
        assert!(
            len <= self.buf_bytes as usize,
            "the kernel filled a buffer past its end"
        );
        // SAFETY: the buffer lies inside the `bufs` mapping (checked above), which lives as long
        // as `self`. The kernel handed it to us with the completion and does not write it again
        // until `recycle` puts it back in the ring, which takes `&mut self`, so not while this
        // borrow lives.
        unsafe {
            let start = self.bufs.add(usize::from(bid) * self.buf_bytes as usize);
            std::slice::from_raw_parts(start, len)
        }
    }

    /// Hands buffer `bid` back to the kernel.
    pub(super) fn recycle(&mut self, bid: u16) {
        assert!(bid < self.count, "recycling a buffer we do not have");
        let index = usize::from(self.tail & (self.count - 1));
        let addr = self.bufs as u64 + u64::from(bid) * u64::from(self.buf_bytes);
        // SAFETY: `index` < `count`, so the entry lies inside the `entries` mapping. The kernel
        // does not read entries between the shared tail and its head, and this one is at our
        // tail, not yet published. Fields are written one by one so that entry 0's `resv` (the
        // shared tail, read by the kernel at any time) is not touched.
        unsafe {
            let entry = self.entries.add(index);
            ptr::addr_of_mut!((*entry).addr).write(addr);
            ptr::addr_of_mut!((*entry).len).write(self.buf_bytes);
            ptr::addr_of_mut!((*entry).bid).write(bid);
        }
        self.tail = self.tail.wrapping_add(1);
        // SAFETY: entry 0's `resv` is a 2-aligned u16 inside the mapping, and every access to it
        // on our side is atomic (the kernel's is an acquire load).
        let shared_tail = unsafe { AtomicU16::from_ptr(ptr::addr_of_mut!((*self.entries).resv)) };
        shared_tail.store(self.tail, Ordering::Release);
    }

    /// Keeps the memory mapped forever: called when the kernel may still use it.
    pub(super) fn leak(&mut self) {
        self.leaked = true;
    }
}

impl Drop for BufRing {
    fn drop(&mut self) {
        if self.leaked {
            return;
        }
        // SAFETY: both mappings were made in `new` with these lengths, and the owner guarantees
        // the kernel no longer uses them (otherwise it called `leak`).
        unsafe {
            libc::munmap(self.bufs.cast(), self.bufs_bytes);
            libc::munmap(self.entries.cast(), self.entries_bytes);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ring_starts_full_and_wraps() {
        let mut ring = BufRing::new(4, 64).expect("map");
        assert_eq!(ring.tail, 4);
        for bid in [2, 0, 3, 1, 2] {
            ring.recycle(bid);
        }
        assert_eq!(ring.tail, 9);
        assert_eq!(ring.data(3, 64).len(), 64);
        // SAFETY: reading the entries we wrote; no kernel is attached in this test.
        let (addr, bid) = unsafe {
            let e = ring.entries.add(8 & 3);
            ((*e).addr, (*e).bid)
        };
        assert_eq!(bid, 2);
        assert_eq!(addr, ring.bufs as u64 + 2 * 64);
    }
}
