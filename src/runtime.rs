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
use std::ptr;
use std::sync::atomic::{AtomicPtr, AtomicU64, Ordering};
use std::sync::Once;
use std::time::Duration;

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
}

/// One multi-threaded tokio runtime owned by the library.
pub struct Runtime {
    rt: Option<tokio::runtime::Runtime>,
    generation: u64,
}

impl Runtime {
    /// Builds and starts a runtime (registers the fork handler first).
    pub fn new(config: RuntimeConfig) -> io::Result<Runtime> {
        register_atfork()?;
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
            generation: generation(),
        })
    }

    /// The tokio handle, to spawn or enter.
    pub fn handle(&self) -> &tokio::runtime::Handle {
        match &self.rt {
            Some(rt) => rt.handle(),
            None => unreachable!("the runtime is only taken in Drop"),
        }
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
