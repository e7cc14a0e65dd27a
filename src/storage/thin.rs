//! Thin owned byte buffers: one pointer wide, the length stored in the allocation.
//!
//! The keyspace pays for every word of every key, so the pieces it stores per key are built to
//! be one pointer wide: `ThinBytes` (a small string value's bytes) and `EntryBox` (a key's
//! `Entry` and the key bytes in one allocation, see `slot_table`). `Box<[u8]>` is two words
//! (pointer and length); here the length lives in the allocation itself, where it costs one
//! byte for the short strings that dominate caches.
//!
//! Layout of a `ThinBytes` allocation: one length byte `n`; when `n < 255` the `n` bytes follow,
//! else eight bytes of little-endian length, then the bytes. Alignment 1.
//!
//! All the unsafe code of the keyspace's storage lives here and in `slot_table`; each block
//! states why it is sound. The types behave like `Box`: unique ownership, freed on drop, `Send`
//! and `Sync` because nothing is shared.

use std::alloc::{alloc, dealloc, handle_alloc_error, Layout};
use std::ptr::NonNull;

/// Lengths from this value on are stored in eight extra bytes.
const LONG_LEN: u8 = u8::MAX;

/// An immutable byte string behind one thin pointer.
pub struct ThinBytes {
    ptr: NonNull<u8>,
}

// SAFETY: `ThinBytes` owns its allocation uniquely (like `Box<[u8]>`), and its bytes are never
// mutated after construction.
unsafe impl Send for ThinBytes {}
// SAFETY: shared access only reads.
unsafe impl Sync for ThinBytes {}

impl ThinBytes {
    fn header_len(len: usize) -> usize {
        if len < LONG_LEN as usize {
            1
        } else {
            9
        }
    }

    fn layout(len: usize) -> Layout {
        // A slice of `len` bytes exists in memory, so `len + 9` cannot overflow isize.
        match Layout::from_size_align(Self::header_len(len) + len, 1) {
            Ok(l) => l,
            Err(_) => unreachable!("a byte string longer than the address space"),
        }
    }

    pub fn new(bytes: &[u8]) -> ThinBytes {
        let layout = Self::layout(bytes.len());
        // SAFETY: the layout has non-zero size (at least the length byte).
        let raw = unsafe { alloc(layout) };
        let Some(ptr) = NonNull::new(raw) else {
            handle_alloc_error(layout)
        };
        let header = Self::header_len(bytes.len());
        // SAFETY: the allocation holds `header + bytes.len()` bytes; the writes below stay
        // inside it, and `bytes` cannot overlap a fresh allocation.
        unsafe {
            if header == 1 {
                raw.write(bytes.len() as u8);
            } else {
                raw.write(LONG_LEN);
                raw.add(1)
                    .cast::<[u8; 8]>()
                    .write_unaligned((bytes.len() as u64).to_le_bytes());
            }
            std::ptr::copy_nonoverlapping(bytes.as_ptr(), raw.add(header), bytes.len());
        }
        ThinBytes { ptr }
    }

    pub fn len(&self) -> usize {
        // SAFETY: the allocation starts with the length byte, followed by eight length bytes
        // when it is LONG_LEN (see `new`).
        unsafe {
            let first = self.ptr.as_ptr().read();
            if first < LONG_LEN {
                first as usize
            } else {
                u64::from_le_bytes(self.ptr.as_ptr().add(1).cast::<[u8; 8]>().read_unaligned())
                    as usize
            }
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn as_slice(&self) -> &[u8] {
        let len = self.len();
        // SAFETY: `len` bytes follow the header inside the allocation, initialized by `new`
        // and never written again; the borrow of `self` keeps the allocation alive.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr().add(Self::header_len(len)), len) }
    }

    /// Bytes the allocation takes (before the allocator's rounding).
    pub fn alloc_len(&self) -> usize {
        let len = self.len();
        Self::header_len(len) + len
    }
}

impl Drop for ThinBytes {
    fn drop(&mut self) {
        let layout = Self::layout(self.len());
        // SAFETY: allocated in `new` with exactly this layout (the length never changes).
        unsafe { dealloc(self.ptr.as_ptr(), layout) }
    }
}

impl Clone for ThinBytes {
    fn clone(&self) -> Self {
        ThinBytes::new(self.as_slice())
    }
}

impl std::ops::Deref for ThinBytes {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        self.as_slice()
    }
}

impl AsRef<[u8]> for ThinBytes {
    fn as_ref(&self) -> &[u8] {
        self.as_slice()
    }
}

impl PartialEq for ThinBytes {
    fn eq(&self, other: &Self) -> bool {
        self.as_slice() == other.as_slice()
    }
}

impl std::fmt::Debug for ThinBytes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}", String::from_utf8_lossy(self.as_slice()))
    }
}

impl From<&[u8]> for ThinBytes {
    fn from(b: &[u8]) -> Self {
        ThinBytes::new(b)
    }
}

impl From<Vec<u8>> for ThinBytes {
    fn from(b: Vec<u8>) -> Self {
        ThinBytes::new(&b)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_every_length_class() {
        for len in [0usize, 1, 7, 44, 254, 255, 256, 70_000] {
            let data: Vec<u8> = (0..len).map(|i| (i * 31 % 251) as u8).collect();
            let t = ThinBytes::new(&data);
            assert_eq!(t.len(), len);
            assert_eq!(t.as_slice(), &data[..]);
            let c = t.clone();
            drop(t);
            assert_eq!(&*c, &data[..]);
        }
        assert_eq!(std::mem::size_of::<ThinBytes>(), 8);
        assert_eq!(std::mem::size_of::<Option<ThinBytes>>(), 8);
    }
}
