//! The fuzzer's global allocator: the system allocator, counting the bytes
//! live, their peak since a mark, and the largest single request, so an
//! input that makes the decoders allocate far more than its own size is a
//! finding even when the memory is never touched (and so never resident).
//!
//! One request above [`HARD_CAP`] would risk the machine: the input is
//! written to the crash file and the process aborts.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

/// A single allocation larger than this aborts the run (after saving the
/// input): no input of the fuzzer's sizes may ask for it.
pub const HARD_CAP: usize = 1 << 30;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);
static LARGEST: AtomicUsize = AtomicUsize::new(0);
/// With [`explain_above`], allocations larger than this are explained.
static EXPLAIN_ABOVE: AtomicUsize = AtomicUsize::new(usize::MAX);
/// Where explanations go: printed, or kept for [`take_explained`].
static EXPLAIN_PRINTS: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
static EXPLAINED: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());

thread_local! {
    /// Set while a stack is taken (which allocates itself).
    static EXPLAINING: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// From now on, every allocation above `bytes` has its stack printed to
/// stderr (`print`) or kept for [`take_explained`]; `usize::MAX` stops.
pub fn explain_above(bytes: usize, print: bool) {
    EXPLAIN_PRINTS.store(print, Ordering::SeqCst);
    EXPLAIN_ABOVE.store(bytes, Ordering::SeqCst);
}

/// The stacks kept since the last call.
pub fn take_explained() -> Vec<String> {
    std::mem::take(&mut *EXPLAINED.lock().unwrap_or_else(|p| p.into_inner()))
}

fn explain(size: usize) {
    if EXPLAINING.with(|e| e.replace(true)) {
        return;
    }
    let stack = format!(
        "allocation of {size} bytes at:\n{}",
        std::backtrace::Backtrace::force_capture()
    );
    if EXPLAIN_PRINTS.load(Ordering::SeqCst) {
        eprintln!("{stack}");
    } else {
        EXPLAINED
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(stack);
    }
    EXPLAINING.with(|e| e.set(false));
}

pub struct CountingAllocator;

fn grew(size: usize) {
    if size > HARD_CAP {
        super::crash::dump_and_abort(b"allocation above the hard cap\n");
    }
    let live = LIVE.fetch_add(size, Ordering::Relaxed) + size;
    PEAK.fetch_max(live, Ordering::Relaxed);
    LARGEST.fetch_max(size, Ordering::Relaxed);
    if size > EXPLAIN_ABOVE.load(Ordering::Relaxed) {
        explain(size);
    }
}

fn shrank(size: usize) {
    LIVE.fetch_sub(size, Ordering::Relaxed);
}

// SAFETY: every call is forwarded unchanged to the system allocator; the
// counters are plain atomics and never allocate.
unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        grew(layout.size());
        // SAFETY: forwarded with the caller's layout.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        grew(layout.size());
        // SAFETY: forwarded with the caller's layout.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        shrank(layout.size());
        // SAFETY: `ptr` came from this allocator with `layout`.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        grew(new_size);
        shrank(layout.size());
        // SAFETY: `ptr` came from this allocator with `layout`.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

/// What one stretch of work allocated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Usage {
    /// Highest live bytes above the mark.
    pub peak: usize,
    /// The largest single allocation (or reallocation) asked for.
    pub largest: usize,
}

/// The live bytes when a stretch began.
#[derive(Debug, Clone, Copy)]
pub struct Mark(usize);

/// Starts measuring (one thread at a time: the counters are global).
pub fn mark() -> Mark {
    let live = LIVE.load(Ordering::Relaxed);
    PEAK.store(live, Ordering::Relaxed);
    LARGEST.store(0, Ordering::Relaxed);
    Mark(live)
}

impl Mark {
    pub fn usage(self) -> Usage {
        Usage {
            peak: PEAK.load(Ordering::Relaxed).saturating_sub(self.0),
            largest: LARGEST.load(Ordering::Relaxed),
        }
    }
}
