//! Keeping the input that kills the process: the input being decoded is
//! published here, and on a fatal signal (stack overflow, abort) or an
//! allocation above the hard cap it is written to a file in the corpus
//! directory before the process dies. Only async-signal-safe calls (open,
//! write, close) run on that path, with no allocation.
//!
//! Why this module has `unsafe`: signal handlers and raw file writes are
//! libc calls; each block says why it is sound.

use std::sync::atomic::{AtomicPtr, AtomicUsize, Ordering};

static INPUT: AtomicPtr<u8> = AtomicPtr::new(std::ptr::null_mut());
static INPUT_LEN: AtomicUsize = AtomicUsize::new(0);

/// NUL-terminated path of the crash file, written once by [`arm`].
const PATH_CAPACITY: usize = 4096;
static PATH_LEN: AtomicUsize = AtomicUsize::new(0);
static mut PATH: [u8; PATH_CAPACITY] = [0; PATH_CAPACITY];

/// Name of the file a fatal input is written to, inside the corpus.
pub const CRASH_FILE: &str = "crash-latest.bin";

/// Publishes `input` as the one being decoded (until the next call).
pub fn set_current(input: &[u8]) {
    INPUT_LEN.store(0, Ordering::SeqCst);
    INPUT.store(input.as_ptr().cast_mut(), Ordering::SeqCst);
    INPUT_LEN.store(input.len(), Ordering::SeqCst);
}

/// Forgets the current input (it is about to be freed).
pub fn clear_current() {
    INPUT_LEN.store(0, Ordering::SeqCst);
}

/// Makes fatal inputs land in `dir/crash-latest.bin` and installs the
/// signal handlers. Call once, from the fuzzing thread, before fuzzing.
pub fn arm(dir: &std::path::Path) {
    let path = dir.join(CRASH_FILE);
    let bytes = path.as_os_str().as_encoded_bytes();
    if bytes.len() >= PATH_CAPACITY || PATH_LEN.load(Ordering::SeqCst) != 0 {
        return;
    }
    // SAFETY: written once, before any handler that reads it is installed
    // and before PATH_LEN publishes it.
    unsafe {
        let path_buf = &mut *std::ptr::addr_of_mut!(PATH);
        path_buf[..bytes.len()].copy_from_slice(bytes);
        path_buf[bytes.len()] = 0;
    }
    PATH_LEN.store(bytes.len(), Ordering::SeqCst);
    for signal in [
        libc::SIGSEGV,
        libc::SIGBUS,
        libc::SIGILL,
        libc::SIGFPE,
        libc::SIGABRT,
    ] {
        // SAFETY: a zeroed sigaction with a handler of the right signature;
        // SA_ONSTACK uses the alternate stack std sets up (stack overflows),
        // SA_RESETHAND restores the default action so the signal, raised
        // again when the handler returns, ends the process.
        unsafe {
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = on_fatal_signal as *const () as usize;
            action.sa_flags = libc::SA_ONSTACK | libc::SA_RESETHAND | libc::SA_SIGINFO;
            libc::sigemptyset(&mut action.sa_mask);
            libc::sigaction(signal, &action, std::ptr::null_mut());
        }
    }
}

extern "C" fn on_fatal_signal(
    _signal: libc::c_int,
    _info: *mut libc::siginfo_t,
    _context: *mut libc::c_void,
) {
    write_input();
    note(b"fuzz: fatal signal; the input is in the corpus directory as crash-latest.bin\n");
}

/// Saves the current input, says why, and aborts.
pub fn dump_and_abort(why: &[u8]) -> ! {
    write_input();
    note(why);
    note(b"fuzz: the input is in the corpus directory as crash-latest.bin\n");
    std::process::abort()
}

fn note(message: &[u8]) {
    // SAFETY: write(2) of a valid buffer to stderr; the result is ignored
    // (nothing else can be done on this path).
    unsafe {
        libc::write(2, message.as_ptr().cast(), message.len());
    }
}

fn write_input() {
    let len = INPUT_LEN.load(Ordering::SeqCst);
    let input = INPUT.load(Ordering::SeqCst);
    if PATH_LEN.load(Ordering::SeqCst) == 0 || input.is_null() || len == 0 {
        return;
    }
    // SAFETY: PATH is NUL-terminated and no longer written once PATH_LEN is
    // set; `input` points at `len` bytes the fuzzing loop keeps alive while
    // they are published; open/write/close are async-signal-safe.
    unsafe {
        let path = std::ptr::addr_of!(PATH).cast::<libc::c_char>();
        let fd = libc::open(path, libc::O_CREAT | libc::O_WRONLY | libc::O_TRUNC, 0o644);
        if fd >= 0 {
            libc::write(fd, input.cast(), len);
            libc::close(fd);
        }
    }
}
