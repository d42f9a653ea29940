//! `sshard_queue`: a completion queue. Futures given to it with
//! `sshard_future_set_queue` each deliver exactly one event carrying the
//! caller's 64-bit token. Events are drained in batches by a non-blocking
//! poll into a caller-allocated array, or by a blocking wait. An eventfd is
//! readable exactly while events are waiting, for epoll / libuv / asyncio
//! loops (and LuaJIT, which must never be called back from a foreign
//! thread). A Unix-domain socket that gets one byte per empty-to-non-empty
//! transition serves event loops that can only wait on sockets they open
//! themselves (OpenResty's cosockets).

use std::collections::VecDeque;
use std::ffi::{c_char, OsStr};
use std::os::fd::AsRawFd;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use super::enums::sshard_future_kind;
use super::future::sshard_future;
use super::handle::{arc_free, arc_into_raw, bytes_arg, handle_ref, out_arg, Generational};
use super::status::{
    sshard_status, Fail, FfiResult, SSHARD_STATUS_INTERNAL, SSHARD_STATUS_WOULD_DEADLOCK,
};
use crate::runtime::{self, DriveWakers, Driver};

/// One completion. `future` is a new reference owned by the receiver:
/// read its result / error, then `sshard_future_free` it.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct sshard_event {
    /// The token given to `sshard_future_set_queue`.
    pub token: u64,
    /// The completed future (owned by the receiver).
    pub future: *mut sshard_future,
    /// The future's status (`SSHARD_STATUS_OK` or its failure).
    pub status: sshard_status,
    /// What the future yields (`SSHARD_FUTURE_KIND_*`).
    pub kind: sshard_future_kind,
}

struct Pending {
    token: u64,
    status: sshard_status,
    kind: sshard_future_kind,
    future: Arc<sshard_future>,
}

/// The waiting events and who must hear of them. Two system calls are
/// avoided where they would be wasted: a condvar notify (a futex call even
/// with nobody waiting) happens only for a sleeper nobody has woken yet,
/// and the eventfd exists only once somebody asked for it.
#[derive(Default)]
struct Events {
    pending: VecDeque<Pending>,
    /// Threads asleep in `sshard_queue_wait` that no push has woken yet.
    sleeping: usize,
    /// Notifies sent so far: a sleeper that sees it unchanged after waking
    /// was not woken by a push and takes itself off `sleeping`.
    wakeups: u64,
    /// Made by `sshard_queue_fd`; readable while `pending` is non-empty.
    eventfd: Option<i32>,
    /// Made by `sshard_queue_notify_socket`.
    notify: Option<NotifySocket>,
    /// The caller-driven runtime its futures complete on, if they all
    /// complete on one: a wait drives it instead of sleeping.
    driver: DriverSlot,
    /// The threads driving that runtime until an event is waiting.
    driving: DriveWakers,
}

/// Which runtime a wait on the queue may drive.
#[derive(Default)]
enum DriverSlot {
    /// No future from a caller-driven session yet.
    #[default]
    None,
    One(Driver),
    /// Futures from several runtimes, or from a threaded one: waits sleep.
    Mixed,
}

/// A listening Unix-domain stream socket whose clients get one byte each
/// time the queue goes from empty to non-empty. Clients are accepted when
/// that happens (a connect completes in the listen backlog before it is
/// accepted), so no thread waits on the listener.
struct NotifySocket {
    listener: UnixListener,
    clients: Vec<UnixStream>,
    path: PathBuf,
}

/// Clients a notify socket serves at most.
const MAX_NOTIFY_CLIENTS: usize = 64;

impl NotifySocket {
    fn bind(path: &Path) -> std::io::Result<NotifySocket> {
        let listener = UnixListener::bind(path)?;
        let ready = listener
            .set_nonblocking(true)
            .and_then(|()| std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)));
        if let Err(e) = ready {
            let _ = std::fs::remove_file(path);
            return Err(e);
        }
        Ok(NotifySocket {
            listener,
            clients: Vec::new(),
            path: path.to_path_buf(),
        })
    }

    /// Accepts the clients that connected since the last call, then writes
    /// one byte to every client; a client that hung up is dropped. A full
    /// socket buffer (a client that has not read its earlier bytes) is
    /// skipped: it has a byte to wake on already.
    fn signal(&mut self) {
        while self.clients.len() < MAX_NOTIFY_CLIENTS {
            match self.listener.accept() {
                Ok((client, _)) => self.clients.push(client),
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(_) => break,
            }
        }
        self.clients.retain(|client| {
            let byte = 1u8;
            // SAFETY: `client` is an open socket we own; the buffer is one
            // readable byte. MSG_NOSIGNAL: a client that hung up must not
            // raise SIGPIPE in the host; MSG_DONTWAIT: never block here.
            let sent = unsafe {
                libc::send(
                    client.as_raw_fd(),
                    (&byte as *const u8).cast(),
                    1,
                    libc::MSG_NOSIGNAL | libc::MSG_DONTWAIT,
                )
            };
            sent == 1 || {
                let e = std::io::Error::last_os_error();
                matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::Interrupted
                )
            }
        });
    }
}

impl Drop for NotifySocket {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// A completion queue. Shared and thread-safe; free with
/// `sshard_queue_free` (events still queued are dropped with it).
pub struct sshard_queue {
    generation: u64,
    events: Mutex<Events>,
    ready: Condvar,
}

impl Generational for sshard_queue {
    fn generation(&self) -> u64 {
        self.generation
    }
}

fn eventfd_signal(fd: i32) {
    let one: u64 = 1;
    // SAFETY: `fd` is this queue's open eventfd; the buffer is 8 readable
    // bytes as eventfd requires. A failure (counter overflow) is impossible
    // with at most one pending write per empty-to-non-empty transition.
    unsafe { libc::write(fd, (&one as *const u64).cast(), 8) };
}

fn eventfd_reset(fd: i32) {
    let mut value: u64 = 0;
    // SAFETY: `fd` is this queue's open non-blocking eventfd; the buffer is
    // 8 writable bytes. EAGAIN (already reset) is fine.
    unsafe { libc::read(fd, (&mut value as *mut u64).cast(), 8) };
}

impl sshard_queue {
    pub(crate) fn new() -> Arc<sshard_queue> {
        Arc::new(sshard_queue {
            generation: runtime::generation(),
            events: Mutex::default(),
            ready: Condvar::new(),
        })
    }

    fn lock(&self) -> MutexGuard<'_, Events> {
        self.events.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn push(
        &self,
        token: u64,
        status: sshard_status,
        kind: sshard_future_kind,
        future: Arc<sshard_future>,
    ) {
        let mut events = self.lock();
        if events.pending.is_empty() {
            if let Some(fd) = events.eventfd {
                eventfd_signal(fd);
            }
            if let Some(notify) = events.notify.as_mut() {
                notify.signal();
            }
        }
        events.pending.push_back(Pending {
            token,
            status,
            kind,
            future,
        });
        let wake = events.sleeping > 0;
        if wake {
            events.sleeping -= 1;
            events.wakeups += 1;
        }
        let driving = events.driving.take();
        drop(events);
        if wake {
            self.ready.notify_one();
        }
        driving.wake();
    }

    /// Notes the runtime a future delivered here completes on.
    pub(crate) fn attach_driver(&self, driver: Option<&Driver>) {
        let mut events = self.lock();
        events.driver = match (std::mem::take(&mut events.driver), driver) {
            (DriverSlot::None, Some(d)) => DriverSlot::One(d.clone()),
            (DriverSlot::One(mine), Some(d)) if mine.same(d) => DriverSlot::One(mine),
            (DriverSlot::None, None) => DriverSlot::None,
            _ => DriverSlot::Mixed,
        };
    }

    /// Drives the queue's runtime on this thread until an event waits or
    /// `deadline` passes; false if it cannot be driven from here.
    fn drive_until_event(&self, deadline: Option<Instant>) -> bool {
        let driver = match &self.lock().driver {
            DriverSlot::One(d) => d.clone(),
            _ => return false,
        };
        driver
            .drive_until(deadline, |waker| {
                let mut events = self.lock();
                if !events.pending.is_empty() {
                    return true;
                }
                events.driving.register(waker);
                false
            })
            .is_some()
    }

    /// Moves up to `out.max` events out; returns how many.
    fn drain_into(&self, events: &mut Events, out: EventsOut) -> usize {
        let n = out.max.min(events.pending.len());
        for i in 0..n {
            let Some(p) = events.pending.pop_front() else {
                break;
            };
            out.write(
                i,
                sshard_event {
                    token: p.token,
                    future: arc_into_raw(p.future),
                    status: p.status,
                    kind: p.kind,
                },
            );
        }
        if events.pending.is_empty() {
            if let Some(fd) = events.eventfd {
                eventfd_reset(fd);
            }
        }
        n
    }

    /// Blocks until an event is waiting or `deadline` passes.
    fn wait_for_event<'a>(
        &'a self,
        mut events: MutexGuard<'a, Events>,
        deadline: Option<Instant>,
    ) -> MutexGuard<'a, Events> {
        let mut yielded = false;
        while events.pending.is_empty() {
            let pause = match deadline {
                None => None,
                Some(deadline) => {
                    let now = Instant::now();
                    if now >= deadline {
                        break;
                    }
                    Some(deadline - now)
                }
            };
            if !yielded {
                // Once per wait, before sleeping: let a runtime thread that
                // is about to complete something run first (a futex sleep
                // and wake-up cost two context switches).
                yielded = true;
                drop(events);
                std::thread::yield_now();
                events = self.lock();
                continue;
            }
            events.sleeping += 1;
            let seen = events.wakeups;
            events = match pause {
                None => self.ready.wait(events).unwrap_or_else(|e| e.into_inner()),
                Some(pause) => {
                    self.ready
                        .wait_timeout(events, pause)
                        .unwrap_or_else(|e| e.into_inner())
                        .0
                }
            };
            if events.wakeups == seen {
                // Timed out or woke spuriously: no push counted on us.
                events.sleeping -= 1;
            }
        }
        events
    }

    /// The eventfd, made on first use (readable at once if events wait).
    fn eventfd(&self) -> FfiResult<i32> {
        let mut events = self.lock();
        if let Some(fd) = events.eventfd {
            return Ok(fd);
        }
        // SAFETY: plain system call with constant flags.
        let fd = unsafe { libc::eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC) };
        if fd < 0 {
            return Err(Fail::new(
                SSHARD_STATUS_INTERNAL,
                format!("eventfd failed: {}", std::io::Error::last_os_error()),
            ));
        }
        if !events.pending.is_empty() {
            eventfd_signal(fd);
        }
        events.eventfd = Some(fd);
        Ok(fd)
    }

    fn notify_socket(&self, path: &Path) -> FfiResult {
        let mut events = self.lock();
        if events.notify.is_some() {
            return Err(Fail::state("the queue already has a notify socket"));
        }
        let notify = NotifySocket::bind(path).map_err(|e| {
            Fail::invalid(format!(
                "cannot listen on the Unix socket {}: {e}",
                path.display()
            ))
        })?;
        events.notify = Some(notify);
        Ok(())
    }

    pub(crate) fn len(&self) -> usize {
        self.lock().pending.len()
    }
}

impl Drop for sshard_queue {
    fn drop(&mut self) {
        let events = self.events.get_mut().unwrap_or_else(|e| e.into_inner());
        if let Some(fd) = events.eventfd {
            // SAFETY: the queue owns its eventfd and nothing uses it any more.
            unsafe { libc::close(fd) };
        }
    }
}

/// # Safety
/// `ptr` is NULL or a live queue.
unsafe fn queue<'a>(ptr: *const sshard_queue) -> FfiResult<&'a sshard_queue> {
    // SAFETY: forwarded contract.
    unsafe { handle_ref(ptr, "queue") }
}

/// A caller-allocated array of `max` events, possibly uninitialized.
struct EventsOut {
    ptr: *mut sshard_event,
    max: usize,
}

impl EventsOut {
    fn write(&self, i: usize, event: sshard_event) {
        assert!(i < self.max);
        // SAFETY: `events_arg` checked `ptr` is non-NULL when `max > 0`, the
        // caller promised `max` writable events, and `i < max`. `write`
        // neither reads nor drops the (maybe uninitialized) old content.
        unsafe { self.ptr.add(i).write(event) }
    }
}

/// # Safety
/// Unless NULL, `events` points to `max` writable events.
unsafe fn events_arg(events: *mut sshard_event, max: usize) -> FfiResult<EventsOut> {
    if max > 0 && events.is_null() {
        return Err(Fail::null("events"));
    }
    Ok(EventsOut { ptr: events, max })
}

/// Makes a completion queue (shared, thread-safe). Free it with
/// `sshard_queue_free`.
#[no_mangle]
pub unsafe extern "C" fn sshard_queue_new(queue: *mut *const sshard_queue) -> sshard_status {
    ffi_boundary! {
        let out = out_arg(queue, "queue")?;
        out.write(arc_into_raw(sshard_queue::new()));
        Ok(())
    }
}

/// Releases the caller's reference (NULL: no-op). Futures still pointed at
/// the queue keep it alive until they complete; events nobody polls are
/// dropped with it. The notify socket goes now (its file removed, its
/// clients hung up): only the caller's reference could make use of it.
#[no_mangle]
pub unsafe extern "C" fn sshard_queue_free(queue: *const sshard_queue) -> sshard_status {
    ffi_boundary! {
        if !queue.is_null() {
            // SAFETY: a live queue until the arc_free below (API contract).
            if let Ok(q) = unsafe { self::queue(queue) } {
                let notify = q.lock().notify.take();
                drop(notify);
            }
        }
        // SAFETY: NULL or a reference the caller gives up (API contract).
        unsafe { arc_free(queue) }
    }
}

/// Moves up to `max` waiting events into `events` without blocking; their
/// count goes to `count` (0 when none is waiting).
#[no_mangle]
pub unsafe extern "C" fn sshard_queue_poll(
    queue: *const sshard_queue,
    events: *mut sshard_event,
    max: usize,
    count: *mut usize,
) -> sshard_status {
    ffi_boundary! {
        // SAFETY: NULL or a live queue (API contract).
        let q = unsafe { self::queue(queue) }?;
        let count = out_arg(count, "count")?;
        // SAFETY: `events` holds `max` writable events (API contract).
        let out = unsafe { events_arg(events, max) }?;
        let mut pending = q.lock();
        count.write(q.drain_into(&mut pending, out));
        Ok(())
    }
}

/// Waits until at least one event is waiting or `timeout_us` microseconds
/// pass (negative: no limit), then polls like `sshard_queue_poll` (`count`
/// is 0 on timeout). `SSHARD_STATUS_WOULD_DEADLOCK` on a runtime thread.
#[no_mangle]
pub unsafe extern "C" fn sshard_queue_wait(
    queue: *const sshard_queue,
    events: *mut sshard_event,
    max: usize,
    timeout_us: i64,
    count: *mut usize,
) -> sshard_status {
    ffi_boundary! {
        // SAFETY: NULL or a live queue (API contract).
        let q = unsafe { self::queue(queue) }?;
        let count = out_arg(count, "count")?;
        // SAFETY: `events` holds `max` writable events (API contract).
        let out = unsafe { events_arg(events, max) }?;
        if runtime::on_runtime_thread() {
            return Err(Fail::new(
                SSHARD_STATUS_WOULD_DEADLOCK,
                "blocking queue wait on a library runtime thread (inside a callback?)",
            ));
        }
        let deadline = u64::try_from(timeout_us)
            .ok()
            .map(|us| Instant::now() + Duration::from_micros(us));
        let mut pending = q.lock();
        while pending.pending.is_empty() {
            drop(pending);
            if !q.drive_until_event(deadline) {
                pending = q.wait_for_event(q.lock(), deadline);
                break;
            }
            pending = q.lock();
            // Another waiter may have taken the event that ended the drive:
            // drive again (not sleep) until the deadline.
            if deadline.is_some_and(|at| Instant::now() >= at) {
                break;
            }
        }
        count.write(q.drain_into(&mut pending, out));
        Ok(())
    }
}

/// The queue's eventfd: readable exactly while events are waiting. Add it
/// to epoll/poll (level-triggered), and poll the queue when it is readable.
/// Made on the first call (a queue nobody asks for it from never writes
/// it); later calls return the same descriptor. Owned by the queue: do not
/// read, write or close it.
#[no_mangle]
pub unsafe extern "C" fn sshard_queue_fd(
    queue: *const sshard_queue,
    fd: *mut i32,
) -> sshard_status {
    ffi_boundary! {
        // SAFETY: NULL or a live queue (API contract).
        let q = unsafe { self::queue(queue) }?;
        let out = out_arg(fd, "fd")?;
        out.write(q.eventfd()?);
        Ok(())
    }
}

/// The number of events waiting.
#[no_mangle]
pub unsafe extern "C" fn sshard_queue_pending(
    queue: *const sshard_queue,
    count: *mut usize,
) -> sshard_status {
    ffi_boundary! {
        // SAFETY: NULL or a live queue (API contract).
        let q = unsafe { self::queue(queue) }?;
        out_arg(count, "count")?.write(q.len());
        Ok(())
    }
}

/// Longest socket path (`sizeof(sockaddr_un.sun_path)` less its NUL).
const MAX_SOCKET_PATH: usize = 107;

/// Makes the queue also signal through a Unix-domain stream socket that it
/// listens on at `path` (a file system path that must not exist yet, at most
/// 107 bytes), for event loops that can connect to a socket but cannot wait
/// on a descriptor they did not open (OpenResty's cosockets): each time the
/// queue goes from empty to non-empty, one byte is written to every client
/// connected to it. A byte says "events may be waiting", never how many:
/// read whatever bytes are there, then poll until the queue is empty (only
/// an empty queue sends the next byte). A client that connects while events
/// are already waiting gets its first byte at the next transition, so it
/// polls once after connecting. Writing never blocks; clients are accepted
/// by the writes themselves (at most 64). The file gets mode 0600 and is
/// removed by `sshard_queue_free`; choose a path in a directory only the
/// process's user can write. One socket per queue: a second call is
/// `SSHARD_STATUS_WRONG_STATE`; a path that exists or cannot be bound is
/// `SSHARD_STATUS_INVALID_ARGUMENT` (the message says why).
#[no_mangle]
pub unsafe extern "C" fn sshard_queue_notify_socket(
    queue: *const sshard_queue,
    path: *const c_char,
    path_len: usize,
) -> sshard_status {
    ffi_boundary! {
        // SAFETY: NULL or a live queue (API contract).
        let q = unsafe { self::queue(queue) }?;
        // SAFETY: `path` holds `path_len` readable bytes (API contract).
        let bytes = unsafe { bytes_arg(path.cast(), path_len, "path") }?;
        if bytes.is_empty() || bytes.len() > MAX_SOCKET_PATH || bytes.contains(&0) {
            return Err(Fail::invalid(format!(
                "a socket path has 1 to {MAX_SOCKET_PATH} bytes and no NUL (got {})",
                bytes.len()
            )));
        }
        q.notify_socket(Path::new(OsStr::from_bytes(bytes)))
    }
}
