//! Logging for C callers. The library logs through `tracing`; it never
//! installs a global subscriber. Its own runtime threads get this module's
//! subscriber as their *scoped* default (see `runtime::RuntimeConfig`), so
//! only the library's events reach the host's sinks:
//!
//! * a level (`sshard_log_set_level`, any time);
//! * a C callback (`sshard_log_set_callback`; runs on runtime threads, must
//!   not block);
//! * and/or a bounded buffer drained by `sshard_log_poll` (for event loops
//!   and LuaJIT, which must not be called back from foreign threads).

use std::collections::VecDeque;
use std::ffi::{c_char, c_void};
use std::fmt::Write as _;
use std::ptr;
use std::sync::atomic::{fence, AtomicPtr, AtomicU64, AtomicU8, AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};

use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::subscriber::Interest;
use tracing::{Event, Level, Metadata, Subscriber};

use super::enums::{
    sshard_log_level, SSHARD_LOG_LEVEL_DEBUG, SSHARD_LOG_LEVEL_ERROR, SSHARD_LOG_LEVEL_INFO,
    SSHARD_LOG_LEVEL_TRACE, SSHARD_LOG_LEVEL_WARN,
};
use super::handle::{out_arg, write_opt};
use super::status::{sshard_status, Fail, SSHARD_STATUS_NOT_PRESENT};
use crate::runtime;

/// Receives one log record: level, target (module) and message, borrowed
/// for the duration of the call, plus the caller's `data`. Runs on library
/// runtime threads: it must not block nor call back into the library.
pub type sshard_log_callback = Option<
    unsafe extern "C" fn(
        level: sshard_log_level,
        target: *const c_char,
        target_len: usize,
        message: *const c_char,
        message_len: usize,
        data: *mut c_void,
    ),
>;

type RawCallback =
    unsafe extern "C" fn(sshard_log_level, *const c_char, usize, *const c_char, usize, *mut c_void);

static LEVEL: AtomicU8 = AtomicU8::new(SSHARD_LOG_LEVEL_WARN);

/// Buffered records at most (`sshard_log_set_buffer`).
pub const SSHARD_LOG_BUFFER_MAX: usize = 1_048_576;

/// The callback and its data, replaced in place under a sequence lock: a
/// reader (every log event) never blocks and never sees the callback of
/// one call with the data of another; replacing allocates nothing, so a
/// host that swaps sinks forever uses no more memory.
struct CallbackCell {
    /// Odd while a writer is storing.
    sequence: AtomicU64,
    /// A `RawCallback` as an address; 0: none.
    callback: AtomicUsize,
    data: AtomicUsize,
}

static CALLBACK: CallbackCell = CallbackCell {
    sequence: AtomicU64::new(0),
    callback: AtomicUsize::new(0),
    data: AtomicUsize::new(0),
};

impl CallbackCell {
    fn store(&self, callback: usize, data: usize) {
        // Writers take turns by moving the sequence from even to odd.
        let mut seq = self.sequence.load(Ordering::Relaxed);
        loop {
            if seq & 1 == 1 {
                std::hint::spin_loop();
                seq = self.sequence.load(Ordering::Relaxed);
                continue;
            }
            match self.sequence.compare_exchange_weak(
                seq,
                seq + 1,
                Ordering::Acquire,
                Ordering::Relaxed,
            ) {
                Ok(_) => break,
                Err(now) => seq = now,
            }
        }
        fence(Ordering::Release);
        self.callback.store(callback, Ordering::Relaxed);
        self.data.store(data, Ordering::Relaxed);
        self.sequence.store(seq + 2, Ordering::Release);
    }

    fn load(&self) -> Option<(RawCallback, usize)> {
        loop {
            let before = self.sequence.load(Ordering::Acquire);
            let callback = self.callback.load(Ordering::Relaxed);
            let data = self.data.load(Ordering::Relaxed);
            fence(Ordering::Acquire);
            if before & 1 == 0 && self.sequence.load(Ordering::Relaxed) == before {
                if callback == 0 {
                    return None;
                }
                // SAFETY: a non-zero address was stored by `store` from a
                // `RawCallback` (`sshard_log_set_callback`), and the pair
                // was read between two equal even sequence numbers, so it
                // is one consistent (callback, data) pair.
                let callback = unsafe { std::mem::transmute::<usize, RawCallback>(callback) };
                return Some((callback, data));
            }
            std::hint::spin_loop();
        }
    }
}

struct LogBuffer {
    generation: u64,
    /// 0: not buffering.
    capacity: AtomicUsize,
    records: Mutex<VecDeque<(sshard_log_level, String)>>,
}

/// The process's buffer, made on first use and reused by every
/// `sshard_log_set_buffer`. A forked child makes its own (the parent's
/// lock may have been held by a thread that does not exist in the child);
/// the parent's is leaked, once per fork.
static BUFFER: AtomicPtr<LogBuffer> = AtomicPtr::new(ptr::null_mut());

fn existing_buffer() -> Option<&'static LogBuffer> {
    let p = BUFFER.load(Ordering::Acquire);
    // SAFETY: buffers stored in BUFFER are never freed.
    let b = unsafe { p.as_ref() }?;
    (!runtime::is_stale(b.generation)).then_some(b)
}

fn buffer_for_update() -> &'static LogBuffer {
    loop {
        if let Some(b) = existing_buffer() {
            return b;
        }
        let old = BUFFER.load(Ordering::Acquire);
        let new = Box::into_raw(Box::new(LogBuffer {
            generation: runtime::generation(),
            capacity: AtomicUsize::new(0),
            records: Mutex::new(VecDeque::new()),
        }));
        if BUFFER
            .compare_exchange(old, new, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
        {
            if !old.is_null() {
                runtime::leak(LeakedPtr { _target: old });
            }
        } else {
            // SAFETY: `new` was never published; it is still ours.
            drop(unsafe { Box::from_raw(new) });
        }
    }
}

/// A buffer that is collecting records.
fn buffer() -> Option<&'static LogBuffer> {
    existing_buffer().filter(|b| b.capacity.load(Ordering::Relaxed) > 0)
}

/// A pointer kept only so leak checkers see its target as reachable.
struct LeakedPtr<T> {
    _target: *mut T,
}
// SAFETY: the pointer is never dereferenced through this wrapper.
unsafe impl<T> Send for LeakedPtr<T> {}

fn level_number(level: &Level) -> sshard_log_level {
    match *level {
        Level::ERROR => SSHARD_LOG_LEVEL_ERROR,
        Level::WARN => SSHARD_LOG_LEVEL_WARN,
        Level::INFO => SSHARD_LOG_LEVEL_INFO,
        Level::DEBUG => SSHARD_LOG_LEVEL_DEBUG,
        _ => SSHARD_LOG_LEVEL_TRACE,
    }
}

fn has_sink() -> bool {
    CALLBACK.callback.load(Ordering::Relaxed) != 0 || buffer().is_some()
}

#[derive(Default)]
struct Message {
    text: String,
    fields: String,
}

impl Visit for Message {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.text.push_str(value);
        } else {
            let _ = write!(self.fields, " {}={}", field.name(), value);
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            let _ = write!(self.text, "{value:?}");
        } else {
            let _ = write!(self.fields, " {}={:?}", field.name(), value);
        }
    }
}

/// The library's subscriber: filters by level and forwards to the sinks.
struct Sink;

impl Subscriber for Sink {
    fn register_callsite(&self, _: &'static Metadata<'static>) -> Interest {
        // The level can change at any time: ask `enabled` every time.
        Interest::sometimes()
    }

    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        metadata.is_event()
            && level_number(metadata.level()) <= LEVEL.load(Ordering::Relaxed)
            && has_sink()
    }

    fn new_span(&self, _: &Attributes<'_>) -> Id {
        Id::from_u64(1)
    }

    fn record(&self, _: &Id, _: &Record<'_>) {}

    fn record_follows_from(&self, _: &Id, _: &Id) {}

    fn event(&self, event: &Event<'_>) {
        let mut message = Message::default();
        event.record(&mut message);
        message.text.push_str(&message.fields);
        let level = level_number(event.metadata().level());
        let target = event.metadata().target();
        emit(level, target, &message.text);
    }

    fn enter(&self, _: &Id) {}

    fn exit(&self, _: &Id) {}
}

fn emit(level: sshard_log_level, target: &str, text: &str) {
    if let Some((callback, data)) = CALLBACK.load() {
        // SAFETY: the host registered this C function with this signature
        // and promised `data` stays valid while it is registered; the
        // strings are borrowed for the duration of the call.
        unsafe {
            callback(
                level,
                target.as_ptr().cast(),
                target.len(),
                text.as_ptr().cast(),
                text.len(),
                data as *mut c_void,
            )
        };
    }
    if let Some(buffer) = buffer() {
        let mut records = buffer.records.lock().unwrap_or_else(|e| e.into_inner());
        let capacity = buffer.capacity.load(Ordering::Relaxed);
        while records.len() >= capacity.max(1) {
            records.pop_front();
        }
        records.push_back((level, format!("{target}: {text}")));
    }
}

/// The dispatcher made the default on the library's runtime threads.
pub(crate) fn dispatch() -> tracing::Dispatch {
    static DISPATCH: OnceLock<tracing::Dispatch> = OnceLock::new();
    DISPATCH
        .get_or_init(|| tracing::Dispatch::new(Sink))
        .clone()
}

/// Sets the most verbose level delivered (`SSHARD_LOG_LEVEL_OFF` ..
/// `SSHARD_LOG_LEVEL_TRACE`; default WARN). May be called at any time.
#[no_mangle]
pub extern "C" fn sshard_log_set_level(level: sshard_log_level) -> sshard_status {
    ffi_boundary! {
        if level > SSHARD_LOG_LEVEL_TRACE {
            return Err(Fail::invalid(format!("unknown log level {level}")));
        }
        LEVEL.store(level, Ordering::Relaxed);
        Ok(())
    }
}

/// Sets (or with NULL removes) the log callback; `data` is passed back to
/// it. The callback may still be running on another thread for a short
/// while after it is replaced.
#[no_mangle]
pub extern "C" fn sshard_log_set_callback(
    callback: sshard_log_callback,
    data: *mut c_void,
) -> sshard_status {
    ffi_boundary! {
        match callback {
            Some(callback) => CALLBACK.store(callback as usize, data as usize),
            None => CALLBACK.store(0, 0),
        }
        Ok(())
    }
}

/// Keeps the last `capacity` log records (at most
/// `SSHARD_LOG_BUFFER_MAX`) for `sshard_log_poll`; 0 stops buffering and
/// drops what is buffered. A smaller capacity drops the oldest records.
#[no_mangle]
pub extern "C" fn sshard_log_set_buffer(capacity: usize) -> sshard_status {
    ffi_boundary! {
        if capacity > SSHARD_LOG_BUFFER_MAX {
            return Err(Fail::invalid(format!(
                "log buffer of {capacity} records (at most {SSHARD_LOG_BUFFER_MAX})"
            )));
        }
        let buffer = buffer_for_update();
        let mut records = buffer.records.lock().unwrap_or_else(|e| e.into_inner());
        buffer.capacity.store(capacity, Ordering::Relaxed);
        while records.len() > capacity {
            records.pop_front();
        }
        if capacity == 0 {
            *records = VecDeque::new();
        }
        Ok(())
    }
}

/// Takes the oldest buffered record: copies up to `capacity` bytes of its
/// text (`target: message`, not NUL-terminated) into `buffer` and stores
/// its full length in `length` (longer than `capacity`: truncated) and its
/// level in `level` (may be NULL). `SSHARD_STATUS_NOT_PRESENT` when empty.
#[no_mangle]
pub unsafe extern "C" fn sshard_log_poll(
    level: *mut sshard_log_level,
    buffer: *mut c_char,
    capacity: usize,
    length: *mut usize,
) -> sshard_status {
    ffi_boundary! {
        let length = out_arg(length, "length")?;
        if capacity > 0 && buffer.is_null() {
            return Err(Fail::null("buffer"));
        }
        let record = self::buffer().and_then(|b| {
            b.records.lock().unwrap_or_else(|e| e.into_inner()).pop_front()
        });
        let Some((record_level, text)) = record else {
            return Err(Fail::new(SSHARD_STATUS_NOT_PRESENT, "no buffered log record"));
        };
        let n = text.len().min(capacity);
        if n > 0 {
            // SAFETY: `buffer` is non-NULL with room for `capacity >= n`
            // bytes (API contract); the source is our own string.
            unsafe { ptr::copy_nonoverlapping(text.as_ptr(), buffer.cast::<u8>(), n) };
        }
        length.write(text.len());
        write_opt(level, record_level);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ffi::enums::SSHARD_LOG_LEVEL_OFF;
    use crate::ffi::status::*;
    use std::sync::atomic::AtomicUsize;

    static CALLS: AtomicUsize = AtomicUsize::new(0);

    unsafe extern "C" fn count_calls(
        _: sshard_log_level,
        _: *const c_char,
        _: usize,
        message: *const c_char,
        len: usize,
        data: *mut c_void,
    ) {
        // SAFETY: the library passes a live (pointer, length) string.
        let text = unsafe { std::slice::from_raw_parts(message.cast::<u8>(), len) };
        if text.starts_with(b"ffi log test") && data as usize == 42 {
            CALLS.fetch_add(1, Ordering::SeqCst);
        }
    }

    /// One test drives the process-wide log state (tests run in parallel).
    #[test]
    fn level_callback_and_buffer_work_on_scoped_threads_only() {
        assert_eq!(sshard_log_set_level(9), SSHARD_STATUS_INVALID_ARGUMENT);
        assert_eq!(sshard_log_set_level(SSHARD_LOG_LEVEL_INFO), 0);
        assert_eq!(
            sshard_log_set_callback(Some(count_calls), 42 as *mut c_void),
            0
        );
        assert_eq!(sshard_log_set_buffer(2), 0);
        let d = dispatch();
        tracing::dispatcher::with_default(&d, || {
            tracing::info!(n = 1, "ffi log test one");
            tracing::debug!("ffi log test filtered out");
            tracing::warn!("ffi log test two");
            tracing::error!("ffi log test three");
        });
        // Not on a scoped thread: nothing reaches the sinks.
        tracing::error!("ffi log test not captured");
        assert_eq!(CALLS.load(Ordering::SeqCst), 3);
        let mut buf = [0u8; 64];
        let mut len = 0;
        let mut level = 0;
        // SAFETY: buffers and out pointers are valid locals.
        unsafe {
            // Capacity 2: the oldest record was dropped.
            assert_eq!(
                sshard_log_poll(&mut level, buf.as_mut_ptr().cast(), buf.len(), &mut len),
                0
            );
            assert_eq!(level, SSHARD_LOG_LEVEL_WARN);
            assert!(std::str::from_utf8(&buf[..len])
                .unwrap()
                .ends_with("ffi log test two"));
            assert_eq!(
                sshard_log_poll(std::ptr::null_mut(), buf.as_mut_ptr().cast(), 4, &mut len),
                0
            );
            assert!(len > 4);
            assert_eq!(
                sshard_log_poll(&mut level, buf.as_mut_ptr().cast(), buf.len(), &mut len),
                SSHARD_STATUS_NOT_PRESENT
            );
            assert_eq!(
                sshard_log_poll(&mut level, std::ptr::null_mut(), 10, &mut len),
                SSHARD_STATUS_NULL_ARGUMENT
            );
            assert_eq!(
                sshard_log_poll(
                    &mut level,
                    buf.as_mut_ptr().cast(),
                    10,
                    std::ptr::null_mut()
                ),
                SSHARD_STATUS_NULL_ARGUMENT
            );
        }
        assert_eq!(sshard_log_set_level(SSHARD_LOG_LEVEL_OFF), 0);
        tracing::dispatcher::with_default(&d, || tracing::error!("ffi log test off"));
        assert_eq!(CALLS.load(Ordering::SeqCst), 3);
        assert_eq!(sshard_log_set_callback(None, std::ptr::null_mut()), 0);
        assert_eq!(sshard_log_set_buffer(0), 0);
        assert_eq!(sshard_log_set_level(SSHARD_LOG_LEVEL_WARN), 0);
    }
}
