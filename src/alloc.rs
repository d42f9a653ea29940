//! The library's memory allocator (cargo feature `mimalloc`, on by
//! default).
//!
//! Through the C API every request crosses threads: the caller's thread
//! builds it, a runtime thread frees it, and the result goes the other
//! way. glibc malloc serialises those cross-thread frees on its arena
//! locks (and takes the slow path for most of them); mimalloc frees them
//! into per-thread lists without a lock. Measured on the C benchmark
//! client: about a quarter fewer instructions per request and a steadier
//! CPU time (see benches/README.md).
//!
//! `SSHARD_ALLOCATOR=system` in the environment, read once before the
//! first allocation, selects the system allocator instead: for memory
//! checkers such as valgrind, which only see the system allocator's
//! blocks. Rust programs that set their own `#[global_allocator]` turn the
//! feature off (`default-features = false`).
//!
//! Blocks of 256 KiB and more (a large result, a big frame) bypass mimalloc:
//! they are mapped from the kernel and unmapped when freed. mimalloc keeps
//! a block freed on another thread until its owner thread runs again, so a
//! big result decoded on a runtime thread and freed by the caller stayed
//! resident (96 MiB for a 32 MB frame in the hostile suite); unmapped, it
//! goes back at once, as with glibc, which maps such blocks too.
//!
//! mimalloc is built without transparent huge pages (Cargo.toml says why).
//!
//! Why this module has `unsafe` outside `src/ffi/`: a global allocator is
//! an `unsafe impl GlobalAlloc` by definition, mimalloc is reached through
//! its C functions, and the choice reads the environment with `getenv`
//! (std's reader allocates, which the first allocation cannot do). Each
//! block says why it is sound.

#![deny(clippy::undocumented_unsafe_blocks)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicU8, Ordering};

use libmimalloc_sys as mi;

/// Alignment every mimalloc block has (`MI_MAX_ALIGN_SIZE`): below it the
/// plain calls do; above it the aligned ones.
const MI_MAX_ALIGN: usize = 16;

const UNDECIDED: u8 = 0;
const USE_MIMALLOC: u8 = 1;
const USE_SYSTEM: u8 = 2;

static CHOICE: AtomicU8 = AtomicU8::new(UNDECIDED);

/// Which allocator serves this process, decided at the first allocation.
#[inline]
fn choice() -> u8 {
    match CHOICE.load(Ordering::Relaxed) {
        UNDECIDED => decide(),
        decided => decided,
    }
}

#[cold]
fn decide() -> u8 {
    // Must not allocate: it runs inside the first allocation.
    // SAFETY: getenv with a NUL-terminated name; the result is NULL or a
    // NUL-terminated string, read at once.
    let value = unsafe { libc::getenv(c"SSHARD_ALLOCATOR".as_ptr()) };
    let wanted = if value.is_null() {
        USE_MIMALLOC
    } else {
        // SAFETY: non-NULL getenv result: a NUL-terminated string.
        match unsafe { std::ffi::CStr::from_ptr(value) }.to_bytes() {
            b"system" => USE_SYSTEM,
            _ => USE_MIMALLOC,
        }
    };
    // Threads racing on the first allocation read the same environment;
    // whichever stores first decides for all.
    match CHOICE.compare_exchange(UNDECIDED, wanted, Ordering::Relaxed, Ordering::Relaxed) {
        Ok(_) => wanted,
        Err(decided) => decided,
    }
}

/// mimalloc, or the system allocator when the environment asks for it.
pub struct LibraryAllocator;

/// mimalloc through its C API (the plain calls when the alignment allows).
struct Mimalloc;

// SAFETY: mimalloc's functions meet GlobalAlloc's contract: blocks at
// least `size` bytes, aligned as asked (every block is aligned to
// MI_MAX_ALIGN; the `_aligned` calls for more), freed by `mi_free`
// whatever call made them.
unsafe impl GlobalAlloc for Mimalloc {
    #[inline]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: plain C calls with a non-zero size (GlobalAlloc contract).
        unsafe {
            if layout.align() <= MI_MAX_ALIGN {
                mi::mi_malloc(layout.size()).cast()
            } else {
                mi::mi_malloc_aligned(layout.size(), layout.align()).cast()
            }
        }
    }

    #[inline]
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: as in `alloc`.
        unsafe {
            if layout.align() <= MI_MAX_ALIGN {
                mi::mi_zalloc(layout.size()).cast()
            } else {
                mi::mi_zalloc_aligned(layout.size(), layout.align()).cast()
            }
        }
    }

    #[inline]
    unsafe fn dealloc(&self, ptr: *mut u8, _layout: Layout) {
        // SAFETY: `ptr` came from one of the calls above.
        unsafe { mi::mi_free(ptr.cast()) }
    }

    #[inline]
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: `ptr` came from one of the calls above, with `layout`.
        unsafe {
            if layout.align() <= MI_MAX_ALIGN {
                mi::mi_realloc(ptr.cast(), new_size).cast()
            } else {
                mi::mi_realloc_aligned(ptr.cast(), new_size, layout.align()).cast()
            }
        }
    }
}

/// Blocks from this size up are mapped pages of their own.
const MAPPED_FROM: usize = 256 << 10;
const PAGE: usize = 4096;

/// Large blocks straight from the kernel: `mmap` to make, `munmap` to
/// free, `mremap` to grow or shrink in place or by moving pages.
struct Mapped;

impl Mapped {
    /// Whether a block of this layout is (or would be) mapped.
    #[inline]
    fn serves(layout: &Layout) -> bool {
        layout.size() >= MAPPED_FROM && layout.align() <= PAGE
    }

    fn pages(size: usize) -> usize {
        size.div_ceil(PAGE) * PAGE
    }

    fn alloc(size: usize) -> *mut u8 {
        // SAFETY: an anonymous private mapping at an address the kernel
        // picks; no existing memory is touched. Fresh pages are zeroed.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                Mapped::pages(size),
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if p == libc::MAP_FAILED {
            std::ptr::null_mut()
        } else {
            p.cast()
        }
    }

    /// # Safety
    /// `ptr` was returned by `Mapped::alloc`/`realloc` for `size` bytes.
    unsafe fn dealloc(ptr: *mut u8, size: usize) {
        // SAFETY: the caller's contract: exactly the pages of one mapping.
        unsafe { libc::munmap(ptr.cast(), Mapped::pages(size)) };
    }

    /// # Safety
    /// As `dealloc`; both sizes are at least `MAPPED_FROM`.
    unsafe fn realloc(ptr: *mut u8, size: usize, new_size: usize) -> *mut u8 {
        // SAFETY: the caller's contract: one whole mapping, which mremap
        // may move (its contents go with it).
        let p = unsafe {
            libc::mremap(
                ptr.cast(),
                Mapped::pages(size),
                Mapped::pages(new_size),
                libc::MREMAP_MAYMOVE,
            )
        };
        if p == libc::MAP_FAILED {
            std::ptr::null_mut()
        } else {
            p.cast()
        }
    }
}

/// mimalloc for small blocks, mappings for large ones (see the module
/// comment); the size of a block's layout says which made it.
struct Tiered;

// SAFETY: a block is mapped exactly when its layout says so (`serves`),
// which GlobalAlloc guarantees is the same layout at free time; realloc
// across the boundary copies between the two and frees the old block
// with the allocator that made it.
unsafe impl GlobalAlloc for Tiered {
    #[inline]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if Mapped::serves(&layout) {
            return Mapped::alloc(layout.size());
        }
        // SAFETY: forwarded contract.
        unsafe { Mimalloc.alloc(layout) }
    }

    #[inline]
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if Mapped::serves(&layout) {
            // Fresh anonymous pages are zero.
            return Mapped::alloc(layout.size());
        }
        // SAFETY: forwarded contract.
        unsafe { Mimalloc.alloc_zeroed(layout) }
    }

    #[inline]
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from the allocator `serves` names for `layout`.
        unsafe {
            if Mapped::serves(&layout) {
                Mapped::dealloc(ptr, layout.size())
            } else {
                Mimalloc.dealloc(ptr, layout)
            }
        }
    }

    #[inline]
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: the new layout is valid (GlobalAlloc contract: non-zero
        // size that does not overflow with this alignment).
        let new_layout = unsafe { Layout::from_size_align_unchecked(new_size, layout.align()) };
        let (was, will) = (Mapped::serves(&layout), Mapped::serves(&new_layout));
        // SAFETY: `ptr` came from the allocator `serves` names for
        // `layout`; when the allocator changes, the smaller of the two
        // sizes is copied between distinct blocks and the old one freed
        // where it came from.
        unsafe {
            match (was, will) {
                (false, false) => Mimalloc.realloc(ptr, layout, new_size),
                (true, true) => Mapped::realloc(ptr, layout.size(), new_size),
                _ => {
                    let new = self.alloc(new_layout);
                    if !new.is_null() {
                        std::ptr::copy_nonoverlapping(ptr, new, layout.size().min(new_size));
                        self.dealloc(ptr, layout);
                    }
                    new
                }
            }
        }
    }
}

// SAFETY: every call is forwarded to one of two sound allocators, always
// the same one for the life of the process (the choice never changes once
// made, before any block exists), so each block is freed by the allocator
// that made it.
unsafe impl GlobalAlloc for LibraryAllocator {
    #[inline]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded contract.
        unsafe {
            match choice() {
                USE_SYSTEM => System.alloc(layout),
                _ => Tiered.alloc(layout),
            }
        }
    }

    #[inline]
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded contract.
        unsafe {
            match choice() {
                USE_SYSTEM => System.alloc_zeroed(layout),
                _ => Tiered.alloc_zeroed(layout),
            }
        }
    }

    #[inline]
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded contract; `ptr` came from the same allocator.
        unsafe {
            match choice() {
                USE_SYSTEM => System.dealloc(ptr, layout),
                _ => Tiered.dealloc(ptr, layout),
            }
        }
    }

    #[inline]
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: forwarded contract; `ptr` came from the same allocator.
        unsafe {
            match choice() {
                USE_SYSTEM => System.realloc(ptr, layout, new_size),
                _ => Tiered.realloc(ptr, layout, new_size),
            }
        }
    }
}

#[global_allocator]
static GLOBAL: LibraryAllocator = LibraryAllocator;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_environment_picks_the_allocator_and_blocks_cross_threads() {
        let expected = match std::env::var("SSHARD_ALLOCATOR").as_deref() {
            Ok("system") => USE_SYSTEM,
            _ => USE_MIMALLOC,
        };
        assert_eq!(choice(), expected);
        let v: Vec<u64> = (0..10_000).collect();
        let moved = std::thread::spawn(move || v.iter().sum::<u64>())
            .join()
            .unwrap();
        assert_eq!(moved, 49_995_000);
        assert_eq!(choice(), expected);
    }

    #[test]
    fn over_aligned_blocks_keep_their_alignment_and_content_through_realloc() {
        for align in [8, 16, 64, 128, 4096] {
            let layout = Layout::from_size_align(200, align).unwrap();
            // SAFETY: non-zero size; every block is freed once with the
            // layout it has at that moment.
            unsafe {
                let p = GLOBAL.alloc_zeroed(layout);
                assert!(!p.is_null());
                assert_eq!(p as usize % align, 0);
                assert!(std::slice::from_raw_parts(p, 200).iter().all(|&b| b == 0));
                p.write_bytes(0xab, 200);
                let q = GLOBAL.realloc(p, layout, 5000);
                assert!(!q.is_null());
                assert_eq!(q as usize % align, 0);
                assert!(std::slice::from_raw_parts(q, 200)
                    .iter()
                    .all(|&b| b == 0xab));
                GLOBAL.dealloc(q, Layout::from_size_align(5000, align).unwrap());
            }
        }
    }

    #[test]
    fn blocks_keep_their_content_across_the_mapped_boundary() {
        let small = Layout::from_size_align(1000, 8).unwrap();
        let sizes = [
            MAPPED_FROM - 1,
            MAPPED_FROM,
            3 * MAPPED_FROM + 5,
            2 * MAPPED_FROM,
            1000,
        ];
        // SAFETY: non-zero sizes; each realloc passes the block's current
        // layout and the last one frees it with its final layout.
        unsafe {
            let mut p = GLOBAL.alloc(small);
            assert!(!p.is_null());
            p.write_bytes(0x5a, 1000);
            let mut layout = small;
            for size in sizes {
                p = GLOBAL.realloc(p, layout, size);
                assert!(!p.is_null(), "realloc to {size}");
                assert!(std::slice::from_raw_parts(p, 1000)
                    .iter()
                    .all(|&b| b == 0x5a));
                p.add(size - 1).write(0x11);
                layout = Layout::from_size_align(size, 8).unwrap();
            }
            GLOBAL.dealloc(p, layout);
            let big = Layout::from_size_align(2 * MAPPED_FROM, 64).unwrap();
            let z = GLOBAL.alloc_zeroed(big);
            assert!(!z.is_null());
            assert!(std::slice::from_raw_parts(z, big.size())
                .iter()
                .all(|&b| b == 0));
            GLOBAL.dealloc(z, big);
        }
    }
}
