//! `PackedOr<T>`: a collection's two encodings in one pointer — a `Listpack` while it is
//! small, a boxed general structure `T` once it grows.
//!
//! Why: most collection keys are small, and each pays for how its value is held. An enum of
//! the two encodings is two words (a tag and a pointer), so it needs a box of its own to fit
//! in a `Value`: 32 bytes plus the listpack's own allocation, where Redis pays a 16-byte
//! `robj`. Here the tag lives in the pointer's low bit instead (both allocations are aligned
//! to at least 2), so the whole value is one word and sits directly in `Value`.
//!
//! The word is exactly a `Listpack` when the bit is clear, which is what lets `get`/`get_mut`
//! lend out `&Listpack`/`&mut Listpack` without a guard: a listpack that reallocates writes
//! its new (aligned, untagged) pointer straight into the word. When the bit is set, the word
//! minus the bit is a `Box<T>`'s pointer. This module holds all of the unsafe code for it.

use super::listpack::Listpack;
use std::marker::PhantomData;
use std::mem::ManuallyDrop;
use std::ptr::NonNull;

/// One of the two encodings, by reference or by value.
pub enum Enc<L, B> {
    Packed(L),
    Big(B),
}

/// A listpack or a `Box<T>`, one pointer wide.
#[repr(transparent)]
pub struct PackedOr<T> {
    word: NonNull<u8>,
    owns: PhantomData<Box<T>>,
}

// SAFETY: a `PackedOr<T>` uniquely owns a `Listpack` or a `Box<T>`, both `Send` when `T` is.
unsafe impl<T: Send> Send for PackedOr<T> {}
// SAFETY: shared access only hands out shared references.
unsafe impl<T: Sync> Sync for PackedOr<T> {}

const TAG: usize = 1;

impl<T> PackedOr<T> {
    /// `T` must leave the pointer's low bit free.
    const ALIGNED: () = assert!(std::mem::align_of::<T>() >= 2);

    pub fn packed(lp: Listpack) -> Self {
        let lp = ManuallyDrop::new(lp);
        // SAFETY: `Listpack` is a transparent `NonNull<u8>`; ownership moves into the word.
        let word = unsafe { std::mem::transmute_copy::<Listpack, NonNull<u8>>(&lp) };
        debug_assert_eq!(
            word.as_ptr().addr() & TAG,
            0,
            "listpack pointer not aligned"
        );
        PackedOr {
            word,
            owns: PhantomData,
        }
    }

    pub fn big(b: Box<T>) -> Self {
        let () = Self::ALIGNED;
        let tagged = Box::into_raw(b).cast::<u8>().map_addr(|a| a | TAG);
        PackedOr {
            // SAFETY: the address has its low bit set, so it is not null.
            word: unsafe { NonNull::new_unchecked(tagged) },
            owns: PhantomData,
        }
    }

    pub fn is_packed(&self) -> bool {
        self.word.as_ptr().addr() & TAG == 0
    }

    fn big_ptr(&self) -> *mut T {
        self.word.as_ptr().map_addr(|a| a & !TAG).cast::<T>()
    }

    pub fn get(&self) -> Enc<&Listpack, &T> {
        if self.is_packed() {
            // SAFETY: with the tag clear the word is a `Listpack` (transparent over the same
            // pointer type), owned by `self` and borrowed for as long as `self` is.
            Enc::Packed(unsafe { &*(self as *const Self).cast::<Listpack>() })
        } else {
            // SAFETY: with the tag set the untagged word came from `Box::into_raw` of a live `T`.
            Enc::Big(unsafe { &*self.big_ptr() })
        }
    }

    pub fn get_mut(&mut self) -> Enc<&mut Listpack, &mut T> {
        if self.is_packed() {
            // SAFETY: as in `get`; the exclusive borrow of `self` covers the word, and any
            // pointer a listpack stores there is aligned, so the tag stays clear.
            Enc::Packed(unsafe { &mut *(self as *mut Self).cast::<Listpack>() })
        } else {
            // SAFETY: as in `get`, exclusively.
            Enc::Big(unsafe { &mut *self.big_ptr() })
        }
    }

    /// Takes the encoding out by value.
    pub fn into_inner(self) -> Enc<Listpack, Box<T>> {
        let this = ManuallyDrop::new(self);
        if this.is_packed() {
            // SAFETY: the word is a `Listpack` (see `get`); `this` is never dropped, so
            // ownership moves exactly once.
            Enc::Packed(unsafe { std::mem::transmute_copy::<NonNull<u8>, Listpack>(&this.word) })
        } else {
            // SAFETY: the untagged word came from `Box::into_raw`; ownership moves back once.
            Enc::Big(unsafe { Box::from_raw(this.big_ptr()) })
        }
    }
}

impl<T> Drop for PackedOr<T> {
    fn drop(&mut self) {
        if self.is_packed() {
            // SAFETY: the word is an owned `Listpack` (see `get`), dropped once here.
            unsafe { std::ptr::drop_in_place((self as *mut Self).cast::<Listpack>()) }
        } else {
            // SAFETY: the untagged word came from `Box::into_raw`, freed once here.
            drop(unsafe { Box::from_raw(self.big_ptr()) })
        }
    }
}

impl<T: Clone> Clone for PackedOr<T> {
    fn clone(&self) -> Self {
        match self.get() {
            Enc::Packed(lp) => PackedOr::packed(lp.clone()),
            Enc::Big(b) => PackedOr::big(Box::new(b.clone())),
        }
    }
}

/// An empty listpack.
impl<T> Default for PackedOr<T> {
    fn default() -> Self {
        PackedOr::packed(Listpack::new())
    }
}

/// Equal when both hold the same encoding with equal contents.
impl<T: PartialEq> PartialEq for PackedOr<T> {
    fn eq(&self, other: &Self) -> bool {
        match (self.get(), other.get()) {
            (Enc::Packed(a), Enc::Packed(b)) => a == b,
            (Enc::Big(a), Enc::Big(b)) => a == b,
            _ => false,
        }
    }
}

impl<T: std::fmt::Debug> std::fmt::Debug for PackedOr<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.get() {
            Enc::Packed(lp) => f.debug_tuple("Packed").field(lp).finish(),
            Enc::Big(b) => f.debug_tuple("Big").field(b).finish(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_word_and_both_encodings_round_trip() {
        assert_eq!(std::mem::size_of::<PackedOr<Vec<u8>>>(), 8);
        assert_eq!(std::mem::size_of::<Option<PackedOr<Vec<u8>>>>(), 8);
        let mut v: PackedOr<Vec<u8>> = PackedOr::packed(Listpack::new());
        for i in 0..200 {
            match v.get_mut() {
                Enc::Packed(lp) => lp.push_back(format!("element-{i}").as_bytes()),
                Enc::Big(_) => unreachable!(),
            }
        }
        let copy = v.clone();
        match copy.get() {
            Enc::Packed(lp) => {
                assert_eq!(lp.len(), 200);
                assert!(lp.get(199).is_some_and(|i| i.eq_bytes(b"element-199")));
            }
            Enc::Big(_) => panic!("clone changed the encoding"),
        }
        v = PackedOr::big(Box::new(vec![1, 2, 3]));
        assert!(!v.is_packed());
        if let Enc::Big(b) = v.get_mut() {
            b.push(4);
        }
        match v.clone().into_inner() {
            Enc::Big(b) => assert_eq!(*b, vec![1, 2, 3, 4]),
            Enc::Packed(_) => panic!("lost the box"),
        }
        match copy.into_inner() {
            Enc::Packed(lp) => assert_eq!(lp.len(), 200),
            Enc::Big(_) => panic!("lost the listpack"),
        }
    }
}
