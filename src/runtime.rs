//! The library's internal tokio runtimes and `fork()` detection.
//!
//! * A runtime is built only when a caller asks for one (a session connects);
//!   nothing starts at load time.
//! * Its worker threads are marked, so blocking calls made on them (a future
//!   wait from inside a completion callback) can refuse instead of
//!   deadlocking: [`on_runtime_thread`].
//! * Its worker threads may carry a scoped `tracing` dispatcher chosen by the
//!   caller (the library's log sink); no global subscriber is ever installed.
//! * The first runtime registers a `pthread_atfork` child handler that bumps a
//!   process-wide *generation*. Every object records the generation it was
//!   made in; in a forked child the old objects are stale ([`is_stale`]) and
//!   must be leaked, never dropped (their runtime's threads do not exist in
//!   the child). [`leak`] keeps such leftovers reachable so leak checkers do
//!   not report them as lost.
//! * A runtime is never dropped in a blocking way on one of its own threads:
//!   [`Runtime`]'s `Drop` uses `shutdown_background` there.
//! * The runtime's threads block the asynchronous signals, so a signal sent
//!   to the process reaches one of the application's threads. A program
//!   that waits for its signals on one thread (nginx's master sleeps in
//!   `sigsuspend`) would otherwise miss one that a library thread took.
//!
//! Why this module has `unsafe` outside `src/ffi/`: registering the fork
//! handler and masking signals are libc calls (`pthread_atfork`,
//! `pthread_sigmask`), and the leak list must be
//! lock-free (a forked child may inherit a mutex held by a thread that no
//! longer exists), so it links raw nodes. Each block says why it is sound.
#![deny(clippy::undocumented_unsafe_blocks)]

use std::any::Any;
use std::cell::{Cell, RefCell};
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::ptr;
use std::sync::atomic::{AtomicPtr, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, Once};
use std::task::Waker;
use std::thread::ThreadId;
use std::time::{Duration, Instant};

use tokio::task::JoinHandle;

static GENERATION: AtomicU64 = AtomicU64::new(0);
static ATFORK: Once = Once::new();

/// How long dropping a runtime from an ordinary thread waits for its worker
/// threads to finish.
const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(2);

thread_local! {
    static ON_RUNTIME_THREAD: Cell<bool> = const { Cell::new(false) };
    static DISPATCH_GUARD: RefCell<Option<tracing::dispatcher::DefaultGuard>> =
        const { RefCell::new(None) };
}

/// The current process generation: 0 until the first `fork()` that happens
/// after a runtime was started, then incremented in each such child.
pub fn generation() -> u64 {
    GENERATION.load(Ordering::Relaxed)
}

/// Whether an object made in generation `gen` belongs to a parent process
/// (this process is a child forked after the object was made).
pub fn is_stale(gen: u64) -> bool {
    gen != generation()
}

/// Whether the calling thread is a worker (or blocking-pool) thread of one
/// of the library's runtimes.
pub fn on_runtime_thread() -> bool {
    ON_RUNTIME_THREAD.with(Cell::get)
}

extern "C" fn after_fork_in_child() {
    // Async-signal-safe: one atomic increment.
    GENERATION.fetch_add(1, Ordering::SeqCst);
}

/// Blocks every signal but those a fault raises on the calling thread;
/// returns the mask it had.
fn block_async_signals() -> libc::sigset_t {
    // SAFETY: sigset_t is plain data, initialised by sigfillset before use;
    // the set and the old mask are locals that outlive the calls.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        let mut old: libc::sigset_t = std::mem::zeroed();
        libc::sigfillset(&mut set);
        for fault in [
            libc::SIGSEGV,
            libc::SIGBUS,
            libc::SIGFPE,
            libc::SIGILL,
            libc::SIGTRAP,
            libc::SIGABRT,
        ] {
            libc::sigdelset(&mut set, fault);
        }
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, &mut old);
        old
    }
}

/// Restores a mask that `block_async_signals` returned.
fn set_signal_mask(mask: &libc::sigset_t) {
    // SAFETY: `mask` is a valid sigset_t from pthread_sigmask; a null old
    // mask is allowed.
    unsafe {
        libc::pthread_sigmask(libc::SIG_SETMASK, mask, ptr::null_mut());
    }
}

fn register_atfork() -> io::Result<()> {
    let mut result = Ok(());
    ATFORK.call_once(|| {
        // SAFETY: `after_fork_in_child` is an `extern "C"` function with the
        // signature pthread_atfork expects, performs only an atomic increment
        // (async-signal-safe) and never unwinds.
        let rc = unsafe { libc::pthread_atfork(None, None, Some(after_fork_in_child)) };
        if rc != 0 {
            result = Err(io::Error::from_raw_os_error(rc));
        }
    });
    result
}

struct LeakNode {
    next: *mut LeakNode,
    _value: Box<dyn Any + Send>,
}

static LEAKED: AtomicPtr<LeakNode> = AtomicPtr::new(ptr::null_mut());

/// Keeps `value` alive forever without running its destructor, reachable
/// from a static list (so memory checkers see it as reachable, not lost).
/// Lock-free, so it is usable in a forked child whatever locks the parent's
/// threads held.
pub fn leak<T: Send + 'static>(value: T) {
    let node = Box::into_raw(Box::new(LeakNode {
        next: ptr::null_mut(),
        _value: Box::new(value),
    }));
    let mut head = LEAKED.load(Ordering::Acquire);
    loop {
        // Link the node in front of the current head. Writing through the
        // pointer needs no `unsafe` trick: rebuild the node instead.
        let rebuilt = relink(node, head);
        match LEAKED.compare_exchange_weak(head, rebuilt, Ordering::AcqRel, Ordering::Acquire) {
            Ok(_) => return,
            Err(actual) => head = actual,
        }
    }
}

/// Sets `node.next = head` and returns `node`.
fn relink(node: *mut LeakNode, head: *mut LeakNode) -> *mut LeakNode {
    // SAFETY: `node` comes from `Box::into_raw` in `leak` and is not yet
    // published (the CAS that would publish it has not succeeded), so this
    // thread has exclusive access to it.
    unsafe {
        (*node).next = head;
    }
    node
}

/// Settings of one runtime.
#[derive(Clone, Default)]
pub struct RuntimeConfig {
    /// Worker threads; 0 picks the number of CPUs, capped at 4.
    pub worker_threads: usize,
    /// Prefix of the threads' names.
    pub thread_name: String,
    /// A `tracing` dispatcher made the default on the runtime's threads.
    pub dispatch: Option<tracing::Dispatch>,
    /// Run the I/O on the threads that wait for it ([`Driver`]): one
    /// current-thread runtime, driven by whichever caller waits, and by a
    /// standby thread while none does. `worker_threads` is then ignored.
    pub caller_driven: bool,
}

/// One tokio runtime owned by the library: multi-threaded, or driven by
/// its callers (see [`RuntimeConfig::caller_driven`]).
pub struct Runtime {
    rt: Option<tokio::runtime::Runtime>,
    /// Set for a caller-driven runtime; it owns the tokio runtime then.
    driven: Option<Arc<Driven>>,
    submissions: Arc<Submissions>,
    generation: u64,
}

/// A task started from outside the runtime.
type Submitted = Pin<Box<dyn Future<Output = ()> + Send>>;

/// Tasks submitted from outside the runtime (the C API's requests), started
/// in batches by one dispatcher task. A spawn from outside wakes the
/// runtime's I/O driver with a syscall every time: one per request, and the
/// tasks then start one at a time, each flushing its connection alone
/// (measured at 256 in flight: 1 wake-up write, 0.64 sendto and 0.62
/// recvfrom per request, against 0.06 for the Rust scylla crate). Here a
/// submission wakes the dispatcher only when the queue was empty, and the
/// dispatcher starts the whole batch at once on the runtime.
#[derive(Default)]
struct Submissions {
    queue: Mutex<Vec<Submitted>>,
    wake: tokio::sync::Notify,
}

impl Submissions {
    /// Queues `tasks` together: at most one wake-up for them all.
    fn push(&self, tasks: impl IntoIterator<Item = Submitted>) {
        let first = {
            let mut queue = self.queue.lock().unwrap_or_else(|e| e.into_inner());
            let was_empty = queue.is_empty();
            queue.extend(tasks);
            was_empty && !queue.is_empty()
        };
        if first {
            self.wake.notify_one();
        }
    }

    /// Runs on the runtime for its lifetime: starts every batch submitted.
    async fn dispatch(self: Arc<Self>) {
        let mut batch = Vec::new();
        loop {
            self.wake.notified().await;
            std::mem::swap(
                &mut batch,
                &mut *self.queue.lock().unwrap_or_else(|e| e.into_inner()),
            );
            for task in batch.drain(..) {
                tokio::spawn(task);
            }
        }
    }
}

impl Runtime {
    /// Builds and starts a runtime (registers the fork handler first).
    pub fn new(config: RuntimeConfig) -> io::Result<Runtime> {
        register_atfork()?;
        if config.caller_driven {
            return Driven::start(config);
        }
        let workers = if config.worker_threads == 0 {
            std::thread::available_parallelism()
                .map(|n| n.get().min(4))
                .unwrap_or(2)
        } else {
            config.worker_threads
        };
        let name = if config.thread_name.is_empty() {
            "sshard-worker".to_owned()
        } else {
            config.thread_name.clone()
        };
        let dispatch = config.dispatch.clone();
        // Threads started while building inherit the blocked mask, so no
        // signal reaches them before their own on_thread_start.
        let caller_mask = block_async_signals();
        let built = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(workers)
            .thread_name(name)
            .enable_all()
            .on_thread_start(move || {
                block_async_signals();
                ON_RUNTIME_THREAD.with(|f| f.set(true));
                if let Some(dispatch) = &dispatch {
                    let guard = tracing::dispatcher::set_default(dispatch);
                    DISPATCH_GUARD.with(|g| *g.borrow_mut() = Some(guard));
                }
            })
            .on_thread_stop(|| {
                DISPATCH_GUARD.with(|g| g.borrow_mut().take());
            })
            .build();
        set_signal_mask(&caller_mask);
        let rt = built?;
        Ok(Runtime {
            rt: Some(rt),
            driven: None,
            submissions: Arc::default(),
            generation: generation(),
        }
        .dispatching())
    }

    /// Starts the task that starts submitted tasks.
    fn dispatching(self) -> Runtime {
        self.spawn(self.submissions.clone().dispatch());
        self
    }

    /// The tokio handle, to spawn or enter.
    pub fn handle(&self) -> &tokio::runtime::Handle {
        match (&self.rt, &self.driven) {
            (Some(rt), _) => rt.handle(),
            (None, Some(driven)) => &driven.handle,
            (None, None) => unreachable!("the runtime is only taken in Drop"),
        }
    }

    /// For a caller-driven runtime, what lets a waiting thread drive it.
    pub fn driver(&self) -> Option<Driver> {
        self.driven.as_ref().map(|d| Driver(Arc::downgrade(d)))
    }

    /// Starts a task on the runtime from outside it, with the tasks
    /// submitted meanwhile (see [`Submissions`]).
    pub fn submit(&self, task: impl Future<Output = ()> + Send + 'static) {
        self.submissions.push([Box::pin(task) as Submitted]);
    }

    /// Like `submit` for many tasks, started together (one wake-up).
    pub fn submit_many<F>(&self, tasks: impl IntoIterator<Item = F>)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        // Boxed before the lock is taken.
        let tasks: Vec<Submitted> = tasks
            .into_iter()
            .map(|t| Box::pin(t) as Submitted)
            .collect();
        self.submissions.push(tasks);
    }

    /// Spawns a task on the runtime.
    pub fn spawn<F>(&self, future: F) -> JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.handle().spawn(future)
    }

    /// Generation the runtime was started in.
    pub fn generation(&self) -> u64 {
        self.generation
    }
}

impl Drop for Runtime {
    fn drop(&mut self) {
        if let Some(driven) = self.driven.take() {
            if is_stale(self.generation) {
                // Forked child: no standby thread here, and its lock may be
                // held by a thread that does not exist.
                leak(driven);
            } else {
                // The standby thread lets go; the tokio runtime stops when
                // the last thread driving it is done (`Driven`'s Drop).
                driven.close();
            }
            return;
        }
        let Some(rt) = self.rt.take() else { return };
        if is_stale(self.generation) {
            // Forked child: the worker threads do not exist here; joining
            // them would hang. Keep the remains reachable and move on.
            leak(rt);
        } else if on_runtime_thread() || tokio::runtime::Handle::try_current().is_ok() {
            // Never block inside an asynchronous context.
            rt.shutdown_background();
        } else {
            rt.shutdown_timeout(SHUTDOWN_TIMEOUT);
        }
    }
}

impl std::fmt::Debug for Runtime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runtime")
            .field("generation", &self.generation)
            .finish()
    }
}

/// How long the standby thread leaves a caller-driven runtime alone after
/// a caller stopped driving it, so a caller that waits again soon (the next
/// request) finds it free. It is also how often the standby looks.
const STANDBY_GRACE: Duration = Duration::from_millis(2);

/// Looks the standby thread takes while callers keep the runtime busy
/// before it parks until the last one lets go: a thread blocked in a long
/// wait then costs no wake-ups (it was 500 a second), and a busy caller
/// one notification per this many looks.
const STANDBY_LOOKS_BEFORE_PARKING: u32 = 10;

/// A current-thread tokio runtime that the threads waiting for its work
/// drive: `Driver::drive` runs the connection I/O, timers and tasks on the
/// calling thread until what it waits for is ready, so a request goes out
/// and its response comes back on the thread that waits for it, with no
/// wake-up of another thread. While no caller drives, a standby thread
/// does (callbacks, timers, heartbeats, requests nobody waits for).
pub(crate) struct Driven {
    rt: Option<tokio::runtime::Runtime>,
    handle: tokio::runtime::Handle,
    dispatch: Option<tracing::Dispatch>,
    state: Mutex<DrivenState>,
    /// Wakes the standby thread's turn (it gives the runtime up).
    wanted: tokio::sync::Notify,
    /// Wakes the parked standby thread (the last caller let go).
    released: Condvar,
    generation: u64,
}

#[derive(Default)]
struct DrivenState {
    /// Callers driving or waiting to drive.
    callers: usize,
    /// When the last caller stopped.
    released: Option<Instant>,
    /// The standby thread holds the runtime.
    standby_driving: bool,
    /// The standby thread waits for `Driven::released`.
    standby_parked: bool,
    /// Times the standby thread looked whether it should drive.
    standby_looks: u64,
    closing: bool,
}

impl Driven {
    fn start(config: RuntimeConfig) -> io::Result<Runtime> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .on_thread_start(|| {
                // Blocking-pool threads.
                block_async_signals();
                ON_RUNTIME_THREAD.with(|f| f.set(true));
            })
            .build()?;
        let driven = Arc::new(Driven {
            handle: rt.handle().clone(),
            rt: Some(rt),
            dispatch: config.dispatch.clone(),
            state: Mutex::new(DrivenState::default()),
            wanted: tokio::sync::Notify::new(),
            released: Condvar::new(),
            generation: generation(),
        });
        let name = if config.thread_name.is_empty() {
            "sshard-standby".to_owned()
        } else {
            config.thread_name.clone()
        };
        let weak = Arc::downgrade(&driven);
        let caller_mask = block_async_signals();
        let spawned = std::thread::Builder::new()
            .name(name)
            .spawn(move || standby(weak));
        set_signal_mask(&caller_mask);
        spawned?;
        Ok(Runtime {
            rt: None,
            driven: Some(driven),
            submissions: Arc::default(),
            generation: generation(),
        }
        .dispatching())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, DrivenState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn runtime(&self) -> &tokio::runtime::Runtime {
        match &self.rt {
            Some(rt) => rt,
            None => unreachable!("the runtime is only taken in Drop"),
        }
    }

    fn close(&self) {
        self.lock().closing = true;
        self.wanted.notify_one();
        self.released.notify_all();
    }

    /// Runs `future` to completion on this thread, driving the runtime.
    fn block_on<F: Future>(&self, future: F) -> F::Output {
        let was_marked = ON_RUNTIME_THREAD.with(|f| f.replace(true));
        let _dispatch = self.dispatch.as_ref().map(tracing::dispatcher::set_default);
        let out = self.runtime().block_on(future);
        ON_RUNTIME_THREAD.with(|f| f.set(was_marked));
        out
    }
}

impl Drop for Driven {
    fn drop(&mut self) {
        let Some(rt) = self.rt.take() else { return };
        if is_stale(self.generation) {
            leak(rt);
        } else {
            rt.shutdown_timeout(SHUTDOWN_TIMEOUT);
        }
    }
}

/// The standby thread of a caller-driven runtime: drives it whenever no
/// caller has for `STANDBY_GRACE`, and gives it up as soon as one wants it.
fn standby(weak: std::sync::Weak<Driven>) {
    ON_RUNTIME_THREAD.with(|f| f.set(true));
    loop {
        let Some(driven) = weak.upgrade() else { return };
        {
            let mut state = driven.lock();
            let mut looks = 0;
            loop {
                if state.closing {
                    return;
                }
                state.standby_looks += 1;
                let quiet = state.callers == 0
                    && state
                        .released
                        .is_none_or(|at| at.elapsed() >= STANDBY_GRACE);
                if quiet {
                    state.standby_driving = true;
                    break;
                }
                looks += 1;
                if looks >= STANDBY_LOOKS_BEFORE_PARKING && state.callers > 0 {
                    looks = 0;
                    state.standby_parked = true;
                    while state.standby_parked && !state.closing {
                        state = driven
                            .released
                            .wait(state)
                            .unwrap_or_else(|e| e.into_inner());
                    }
                    continue;
                }
                drop(state);
                std::thread::sleep(STANDBY_GRACE);
                state = driven.lock();
            }
        }
        driven.block_on(driven.wanted.notified());
        driven.lock().standby_driving = false;
    }
}

/// Lets a thread that waits for a caller-driven runtime's work drive it.
/// Holds the runtime weakly: once its session is gone, `drive` says so.
#[derive(Clone)]
pub struct Driver(std::sync::Weak<Driven>);

impl Driver {
    /// Runs `future` on the calling thread, driving the runtime until it
    /// completes; `None` (without running it) if the runtime is gone or
    /// the calling thread is already one of the library's (a callback).
    pub fn drive<F: Future>(&self, future: F) -> Option<F::Output> {
        // Not from a library thread (a callback), nor from inside another
        // tokio runtime (tokio refuses to nest them).
        if on_runtime_thread() || tokio::runtime::Handle::try_current().is_ok() {
            return None;
        }
        let driven = self.0.upgrade()?;
        let take_from_standby = {
            let mut state = driven.lock();
            if state.closing {
                return None;
            }
            state.callers += 1;
            state.standby_driving
        };
        if take_from_standby {
            driven.wanted.notify_one();
        }
        let out = driven.block_on(future);
        let mut state = driven.lock();
        state.callers -= 1;
        state.released = Some(Instant::now());
        let unpark = state.callers == 0 && state.standby_parked;
        if unpark {
            state.standby_parked = false;
        }
        drop(state);
        if unpark {
            driven.released.notify_one();
        }
        Some(out)
    }

    /// Drives the runtime until `ready` says so or `deadline` passes;
    /// `ready` is given the waker to store where the awaited event will
    /// wake it. `None` when it cannot be driven from here (see `drive`).
    pub fn drive_until(
        &self,
        deadline: Option<Instant>,
        mut ready: impl FnMut(&std::task::Waker) -> bool,
    ) -> Option<()> {
        let ready = std::future::poll_fn(move |cx| {
            if ready(cx.waker()) {
                std::task::Poll::Ready(())
            } else {
                std::task::Poll::Pending
            }
        });
        self.drive(async {
            match deadline {
                None => ready.await,
                Some(at) => {
                    let _ = tokio::time::timeout_at(at.into(), ready).await;
                }
            }
        })
    }

    /// Whether both drive the same runtime.
    pub fn same(&self, other: &Driver) -> bool {
        self.0.ptr_eq(&other.0)
    }
}

/// The threads driving a caller-driven runtime until one event (a future's
/// completion, an event in a queue): every one of them must be woken by it.
/// Several threads can wait on one future or one queue; a thread that is
/// not the one woken goes on driving (or waiting for the runtime) without
/// ever looking again, so keeping only the last waker would leave the
/// others blocked for good. A thread registers each time it looks, and its
/// latest waker replaces its earlier one (a thread waits for one thing at a
/// time): at most one entry per thread.
#[derive(Default)]
pub struct DriveWakers {
    /// The usual case, one waiting thread, without an allocation.
    first: Option<(ThreadId, Waker)>,
    more: Vec<(ThreadId, Waker)>,
}

impl DriveWakers {
    /// Notes that the calling thread waits for the event, to be woken
    /// through `waker`.
    pub fn register(&mut self, waker: &Waker) {
        let me = std::thread::current().id();
        let mine = match &mut self.first {
            None => {
                self.first = Some((me, waker.clone()));
                return;
            }
            Some((thread, kept)) if *thread == me => kept,
            Some(_) => match self.more.iter_mut().find(|(thread, _)| *thread == me) {
                Some((_, kept)) => kept,
                None => {
                    self.more.push((me, waker.clone()));
                    return;
                }
            },
        };
        if !mine.will_wake(waker) {
            *mine = waker.clone();
        }
    }

    /// Takes every registered waker out, to wake them once the lock that
    /// guards the event is released.
    pub fn take(&mut self) -> DriveWakers {
        std::mem::take(self)
    }

    /// Wakes every thread that registered.
    pub fn wake(self) {
        if let Some((_, first)) = self.first {
            first.wake();
        }
        for (_, waker) in self.more {
            waker.wake();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;

    #[test]
    fn runtime_threads_are_marked_and_plain_threads_are_not() {
        assert!(!on_runtime_thread());
        let rt = Runtime::new(RuntimeConfig {
            worker_threads: 2,
            ..Default::default()
        })
        .unwrap();
        let (tx, rx) = mpsc::channel();
        rt.spawn(async move {
            tx.send(on_runtime_thread()).unwrap();
        });
        assert!(rx.recv_timeout(Duration::from_secs(5)).unwrap());
        assert!(!is_stale(rt.generation()));
    }

    /// Whether `signal` is blocked on the calling thread.
    fn blocked(signal: libc::c_int) -> bool {
        // SAFETY: a zeroed sigset_t filled in by pthread_sigmask (a null new
        // set only reads the mask).
        unsafe {
            let mut mask: libc::sigset_t = std::mem::zeroed();
            libc::pthread_sigmask(libc::SIG_BLOCK, ptr::null(), &mut mask);
            libc::sigismember(&mask, signal) == 1
        }
    }

    #[test]
    fn runtime_threads_block_process_signals_and_the_caller_keeps_its_mask() {
        let caller_blocked = blocked(libc::SIGQUIT);
        let rt = Runtime::new(RuntimeConfig {
            worker_threads: 2,
            ..Default::default()
        })
        .unwrap();
        assert_eq!(blocked(libc::SIGQUIT), caller_blocked);
        let (tx, rx) = mpsc::channel();
        for _ in 0..4 {
            let tx = tx.clone();
            rt.spawn(async move {
                let on_worker = [libc::SIGQUIT, libc::SIGTERM, libc::SIGHUP, libc::SIGCHLD]
                    .iter()
                    .all(|&s| blocked(s));
                let on_blocking = tokio::task::spawn_blocking(|| blocked(libc::SIGQUIT))
                    .await
                    .unwrap();
                tx.send((on_worker, on_blocking, blocked(libc::SIGSEGV)))
                    .unwrap();
            });
        }
        for _ in 0..4 {
            let (on_worker, on_blocking, segv) = rx.recv_timeout(Duration::from_secs(5)).unwrap();
            assert!(on_worker && on_blocking && !segv);
        }
    }

    #[test]
    fn dropping_a_runtime_on_its_own_thread_does_not_panic() {
        let rt = Runtime::new(RuntimeConfig {
            worker_threads: 1,
            ..Default::default()
        })
        .unwrap();
        let handle = rt.handle().clone();
        let (tx, rx) = mpsc::channel();
        handle.spawn(async move {
            drop(rt);
            tx.send(()).unwrap();
        });
        rx.recv_timeout(Duration::from_secs(5)).unwrap();
    }

    fn caller_driven() -> Runtime {
        Runtime::new(RuntimeConfig {
            caller_driven: true,
            ..Default::default()
        })
        .unwrap()
    }

    #[test]
    fn a_caller_driven_runtime_runs_its_tasks_on_the_waiting_thread() {
        let rt = caller_driven();
        let driver = rt.driver().expect("a caller-driven runtime has a driver");
        let caller = std::thread::current().id();
        let (tx, rx) = tokio::sync::oneshot::channel();
        rt.spawn(async move {
            let _ = tx.send((std::thread::current().id(), on_runtime_thread()));
        });
        let (ran_on, marked) = driver.drive(rx).expect("driven").unwrap();
        assert_eq!(ran_on, caller);
        assert!(
            marked,
            "a thread is marked as the runtime's while it drives"
        );
        assert!(!on_runtime_thread(), "and unmarked after");
        // Timers run while a caller drives.
        let slept = driver.drive(async { tokio::time::sleep(Duration::from_millis(5)).await });
        assert!(slept.is_some());
    }

    #[test]
    fn the_standby_thread_drives_while_no_caller_does() {
        let rt = caller_driven();
        let (tx, rx) = mpsc::channel();
        rt.spawn(async move {
            tokio::time::sleep(Duration::from_millis(1)).await;
            tx.send(std::thread::current().id()).unwrap();
        });
        let ran_on = rx
            .recv_timeout(Duration::from_secs(5))
            .expect("the standby ran it");
        assert_ne!(ran_on, std::thread::current().id());
        // A caller then takes the runtime from the standby and drives it.
        let driver = rt.driver().unwrap();
        let (tx, rx) = tokio::sync::oneshot::channel();
        rt.spawn(async move {
            let _ = tx.send(std::thread::current().id());
        });
        assert!(driver.drive(rx).is_some());
    }

    #[test]
    fn the_standby_thread_parks_while_a_caller_drives() {
        let rt = caller_driven();
        let driven = rt.driven.clone().expect("caller-driven");
        let driver = rt.driver().unwrap();
        let looks = || driven.lock().standby_looks;
        let before = looks();
        // Looking every STANDBY_GRACE would be about 200 looks.
        driver.drive(async { tokio::time::sleep(Duration::from_millis(400)).await });
        let during = looks() - before;
        assert!(during <= 20, "{during} looks while a caller drove");
        // Once the caller lets go, the standby drives again.
        let (tx, rx) = mpsc::channel();
        rt.spawn(async move {
            tx.send(std::thread::current().id()).unwrap();
        });
        let ran_on = rx
            .recv_timeout(Duration::from_secs(5))
            .expect("the standby ran it");
        assert_ne!(ran_on, std::thread::current().id());
    }

    #[test]
    fn callers_on_several_threads_share_a_caller_driven_runtime() {
        let rt = Arc::new(caller_driven());
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let rt = rt.clone();
                std::thread::spawn(move || {
                    let driver = rt.driver().unwrap();
                    for _ in 0..200 {
                        let (tx, rx) = tokio::sync::oneshot::channel();
                        rt.spawn(async move {
                            tokio::task::yield_now().await;
                            let _ = tx.send(());
                        });
                        driver.drive(rx).expect("driven").unwrap();
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
    }

    /// One event, as a future's completion or a queue's push: whether it
    /// happened, and the threads driving until it does.
    #[derive(Default)]
    struct Event {
        happened: bool,
        waiting: DriveWakers,
        /// Distinct threads that registered.
        registered: std::collections::HashSet<std::thread::ThreadId>,
    }

    #[test]
    fn every_thread_driving_until_one_event_is_woken_by_it() {
        let rt = Arc::new(caller_driven());
        let event = Arc::new(Mutex::new(Event::default()));
        let (done_tx, done_rx) = mpsc::channel();
        for _ in 0..3 {
            let (driver, event, done) = (rt.driver().unwrap(), event.clone(), done_tx.clone());
            // No deadline: only the event ends the wait. A waiter that is
            // never woken stays blocked (the channel below times out).
            std::thread::spawn(move || {
                let driven = driver.drive_until(None, |waker| {
                    let mut e = event.lock().unwrap();
                    if e.happened {
                        return true;
                    }
                    e.waiting.register(waker);
                    e.registered.insert(std::thread::current().id());
                    false
                });
                let _ = done.send(driven.is_some());
            });
        }
        // The event happens once all three wait for it (one drives, the
        // others wait for the runtime or drive after it).
        let happen = event.clone();
        rt.spawn(async move {
            while happen.lock().unwrap().registered.len() < 3 {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            let wakers = {
                let mut e = happen.lock().unwrap();
                e.happened = true;
                e.waiting.take()
            };
            wakers.wake();
        });
        for n in 0..3 {
            let woken = done_rx.recv_timeout(Duration::from_secs(30));
            assert_eq!(woken, Ok(true), "waiter {n} of 3 was woken by the event");
        }
    }

    /// A waker counting its wakes.
    struct Counted(std::sync::atomic::AtomicUsize);

    impl std::task::Wake for Counted {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    #[test]
    fn drive_wakers_keep_each_threads_latest_waker_and_wake_each_once() {
        let counts: Vec<_> = (0..4)
            .map(|_| Arc::new(Counted(std::sync::atomic::AtomicUsize::new(0))))
            .collect();
        let wakers: Vec<Waker> = counts.iter().map(|c| Waker::from(c.clone())).collect();
        let waiting = Arc::new(Mutex::new(DriveWakers::default()));
        // This thread looks five times with one waker, then with another
        // (it went from waiting for the runtime to driving it).
        for _ in 0..5 {
            waiting.lock().unwrap().register(&wakers[0].clone());
        }
        waiting.lock().unwrap().register(&wakers[1]);
        // Two other threads, each twice.
        for waker in &wakers[2..] {
            let (waiting, waker) = (waiting.clone(), waker.clone());
            std::thread::spawn(move || {
                for _ in 0..2 {
                    waiting.lock().unwrap().register(&waker);
                }
            })
            .join()
            .unwrap();
        }
        let taken = {
            let mut waiting = waiting.lock().unwrap();
            assert_eq!(waiting.more.len(), 2, "one entry per thread");
            let taken = waiting.take();
            assert!(waiting.first.is_none() && waiting.more.is_empty());
            taken
        };
        taken.wake();
        let woken: Vec<usize> = counts.iter().map(|c| c.0.load(Ordering::SeqCst)).collect();
        assert_eq!(woken, [0, 1, 1, 1], "each thread's latest waker, once");
    }

    #[test]
    fn a_driver_refuses_to_nest_and_outliving_its_runtime_is_harmless() {
        let rt = caller_driven();
        let driver = rt.driver().unwrap();
        let (tx, rx) = mpsc::channel();
        let inner = driver.clone();
        rt.spawn(async move {
            // Inside the runtime (a callback's thread): no nested drive.
            tx.send(inner.drive(async {}).is_none()).unwrap();
        });
        let (done_tx, done_rx) = tokio::sync::oneshot::channel::<()>();
        let handle = rt.handle().clone();
        handle.spawn(async move {
            tokio::time::sleep(Duration::from_millis(1)).await;
            let _ = done_tx.send(());
        });
        let _ = driver.drive(done_rx);
        assert!(rx.recv_timeout(Duration::from_secs(5)).unwrap());
        drop(rt);
        // Gone (or closing): the wait falls back to sleeping.
        assert!(driver.drive(async {}).is_none());
    }

    #[test]
    fn leak_keeps_values_reachable() {
        for i in 0..100 {
            leak(vec![i; 4]);
        }
        let mut n = 0;
        let mut p = LEAKED.load(Ordering::Acquire);
        while !p.is_null() {
            n += 1;
            // SAFETY: nodes in the list are never freed.
            p = unsafe { (*p).next };
        }
        assert!(n >= 100);
    }

    #[test]
    fn scoped_dispatch_reaches_runtime_threads_only() {
        use std::sync::atomic::AtomicUsize;
        use std::sync::Arc;
        struct Counting(Arc<AtomicUsize>);
        impl tracing::Subscriber for Counting {
            fn enabled(&self, _: &tracing::Metadata<'_>) -> bool {
                true
            }
            fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
                tracing::span::Id::from_u64(1)
            }
            fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}
            fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
            fn event(&self, _: &tracing::Event<'_>) {
                self.0.fetch_add(1, Ordering::SeqCst);
            }
            fn enter(&self, _: &tracing::span::Id) {}
            fn exit(&self, _: &tracing::span::Id) {}
        }
        let count = Arc::new(AtomicUsize::new(0));
        let rt = Runtime::new(RuntimeConfig {
            worker_threads: 1,
            thread_name: "t".into(),
            dispatch: Some(tracing::Dispatch::new(Counting(count.clone()))),
            caller_driven: false,
        })
        .unwrap();
        let (tx, rx) = mpsc::channel();
        rt.spawn(async move {
            tracing::warn!("from the runtime");
            tx.send(()).unwrap();
        });
        rx.recv_timeout(Duration::from_secs(5)).unwrap();
        tracing::warn!("from the test thread");
        assert_eq!(count.load(Ordering::SeqCst), 1);
    }
}
