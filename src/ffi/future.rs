//! `sshard_future`: the pending outcome of one asynchronous call.
//!
//! A future completes exactly once. Its completion is delivered to at most
//! one target, chosen by the caller: a C callback (run on a runtime thread,
//! or on the caller's thread if the future had already completed) or a
//! completion queue with a caller token. Waiting (with or without a
//! timeout) and polling work in any case. The decision to deliver is taken
//! under the future's lock; the delivery itself happens outside it.

use std::ffi::c_void;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use super::enums::sshard_future_kind;
use super::error::sshard_error;
use super::handle::{arc_clone, arc_free, arc_into_raw, handle_ref, out_arg, Generational};
use super::prepared::sshard_prepared;
use super::queue::sshard_queue;
use super::result::sshard_result;
use super::session::sshard_session;
use super::status::{
    sshard_status, Fail, FfiResult, SSHARD_STATUS_OK, SSHARD_STATUS_PENDING,
    SSHARD_STATUS_WOULD_DEADLOCK,
};
use crate::runtime::{self, DriveWakers, Driver};

/// Called once when a future completes, with the future (borrowed for the
/// duration of the call) and the caller's `data`. Runs on a library
/// runtime thread (or on the thread that set it, if the future had already
/// completed): it must not block and must not call blocking functions
/// (they return `SSHARD_STATUS_WOULD_DEADLOCK`). Never pass a LuaJIT
/// callback: use a queue instead.
pub type sshard_future_callback =
    Option<unsafe extern "C" fn(future: *mut sshard_future, data: *mut c_void)>;

/// What a successful future yields.
#[derive(Clone)]
pub(crate) enum Payload {
    None,
    Session(Arc<sshard_session>),
    Prepared(Arc<sshard_prepared>),
    Result(Arc<sshard_result>),
}

pub(crate) type Outcome = Result<Payload, sshard_error>;

enum Target {
    None,
    /// The callback or queue was given the completion already.
    Delivered,
    Callback(unsafe extern "C" fn(*mut sshard_future, *mut c_void), usize),
    Queue(Arc<sshard_queue>, u64),
}

struct State {
    outcome: Option<Outcome>,
    target: Target,
    /// Threads blocked in `wait`: completion wakes them only when there
    /// are some (a condvar notify is a system call even with no waiter).
    waiters: usize,
    /// The threads driving the runtime until this completes.
    driving: DriveWakers,
}

/// A pending or completed asynchronous call. Shared and thread-safe; free
/// with `sshard_future_free` (the call goes on; its outcome is dropped
/// unless a callback or queue receives it).
pub struct sshard_future {
    generation: u64,
    kind: sshard_future_kind,
    state: Mutex<State>,
    done: Condvar,
    /// The caller-driven runtime that completes it, if its session has one.
    driver: Option<Driver>,
}

impl Generational for sshard_future {
    fn generation(&self) -> u64 {
        self.generation
    }
}

fn status_of(outcome: &Outcome) -> sshard_status {
    match outcome {
        Ok(_) => SSHARD_STATUS_OK,
        Err(e) => e.status,
    }
}

impl sshard_future {
    pub(crate) fn new(kind: sshard_future_kind) -> Arc<sshard_future> {
        sshard_future::with_driver(kind, None)
    }

    /// A future completed on a runtime that its waiters may drive.
    pub(crate) fn with_driver(
        kind: sshard_future_kind,
        driver: Option<Driver>,
    ) -> Arc<sshard_future> {
        Arc::new(sshard_future {
            generation: runtime::generation(),
            kind,
            state: Mutex::new(State {
                outcome: None,
                target: Target::None,
                waiters: 0,
                driving: DriveWakers::default(),
            }),
            done: Condvar::new(),
            driver,
        })
    }

    pub(crate) fn driver(&self) -> Option<&Driver> {
        self.driver.as_ref()
    }

    /// A future that has already completed.
    pub(crate) fn completed(kind: sshard_future_kind, outcome: Outcome) -> Arc<sshard_future> {
        let f = sshard_future::new(kind);
        f.complete(outcome);
        f
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A poisoned lock only means a panic elsewhere; the state is plain data.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Sets the outcome; later calls are ignored (exactly once).
    pub(crate) fn complete(self: &Arc<Self>, outcome: Outcome) {
        let status = status_of(&outcome);
        let target = {
            let mut state = self.lock();
            if state.outcome.is_some() {
                return;
            }
            state.outcome = Some(outcome);
            if state.waiters > 0 {
                self.done.notify_all();
            }
            let target = match std::mem::replace(&mut state.target, Target::None) {
                Target::None => Target::None,
                target => {
                    state.target = Target::Delivered;
                    target
                }
            };
            (target, state.driving.take())
        };
        let (target, driving) = target;
        driving.wake();
        self.deliver(target, status);
    }

    /// Hands the completion (whose status is `status`) to its target.
    fn deliver(self: &Arc<Self>, target: Target, status: sshard_status) {
        match target {
            Target::None | Target::Delivered => {}
            Target::Callback(callback, data) => {
                let keep = self.clone();
                // SAFETY: the caller registered `callback` as a C function
                // with this signature, and promised `data` stays valid until
                // it is called; the future pointer is alive during the call
                // (`keep` holds a reference).
                unsafe { callback(Arc::as_ptr(&keep).cast_mut(), data as *mut c_void) };
                drop(keep);
            }
            Target::Queue(queue, token) => {
                queue.push(token, status, self.kind, self.clone());
            }
        }
    }

    /// Delivers the completion to `queue` with `token` (see
    /// `sshard_future_set_queue`).
    pub(crate) fn set_queue(self: &Arc<Self>, queue: Arc<sshard_queue>, token: u64) -> FfiResult {
        self.set_target(Target::Queue(queue, token))
    }

    fn set_target(self: &Arc<Self>, target: Target) -> FfiResult {
        let deliver_now = {
            let mut state = self.lock();
            if !matches!(state.target, Target::None) {
                return Err(Fail::state("the future already has a callback or a queue"));
            }
            if let Some(outcome) = &state.outcome {
                // Already completed: deliver now, and refuse a second one.
                let status = status_of(outcome);
                state.target = Target::Delivered;
                Some((target, status))
            } else {
                state.target = target;
                None
            }
        };
        if let Some((target, status)) = deliver_now {
            self.deliver(target, status);
        }
        Ok(())
    }

    /// The outcome's status, or PENDING.
    pub(crate) fn status(&self) -> sshard_status {
        self.lock()
            .outcome
            .as_ref()
            .map_or(SSHARD_STATUS_PENDING, status_of)
    }

    /// Waits for the outcome; `None` waits forever. PENDING on timeout.
    pub(crate) fn wait(&self, timeout: Option<Duration>) -> FfiResult<sshard_status> {
        if runtime::on_runtime_thread() {
            return Err(Fail::new(
                SSHARD_STATUS_WOULD_DEADLOCK,
                "blocking wait on a library runtime thread (inside a callback?)",
            ));
        }
        let deadline = timeout.map(|t| Instant::now() + t);
        if let Some(driver) = &self.driver {
            let driven = driver.drive_until(deadline, |waker| {
                let mut state = self.lock();
                if state.outcome.is_some() {
                    return true;
                }
                state.driving.register(waker);
                false
            });
            if driven.is_some() {
                return Ok(self.status());
            }
        }
        let mut state = self.lock();
        loop {
            if let Some(outcome) = &state.outcome {
                return Ok(status_of(outcome));
            }
            let pause = match deadline {
                None => None,
                Some(deadline) => {
                    let now = Instant::now();
                    if now >= deadline {
                        return Ok(SSHARD_STATUS_PENDING);
                    }
                    Some(deadline - now)
                }
            };
            state.waiters += 1;
            state = match pause {
                None => self.done.wait(state).unwrap_or_else(|e| e.into_inner()),
                Some(pause) => {
                    self.done
                        .wait_timeout(state, pause)
                        .unwrap_or_else(|e| e.into_inner())
                        .0
                }
            };
            state.waiters -= 1;
        }
    }

    /// Runs `f` on the outcome, PENDING if there is none yet.
    pub(crate) fn with_outcome<T>(&self, f: impl FnOnce(&Outcome) -> FfiResult<T>) -> FfiResult<T> {
        let state = self.lock();
        match &state.outcome {
            Some(outcome) => f(outcome),
            None => Err(Fail::new(
                SSHARD_STATUS_PENDING,
                "the future has not completed",
            )),
        }
    }

    /// The failure to report for a non-OK `status` of this future.
    fn failure(&self, status: sshard_status) -> Fail {
        let message = match &self.lock().outcome {
            Some(Err(e)) => e.message.clone(),
            _ => "the future has not completed".to_owned(),
        };
        Fail::new(status, message)
    }

    fn payload(&self, what: &'static str) -> FfiResult<Payload> {
        self.with_outcome(|outcome| match outcome {
            Ok(payload) => Ok(payload.clone()),
            Err(e) => Err(Fail::new(
                e.status,
                format!("the future failed, it has no {what}: {}", e.message),
            )),
        })
    }
}

/// Completes a future when dropped without an outcome: a task cancelled by
/// a runtime shutdown still delivers exactly one (CLOSED) completion.
pub(crate) struct Completer {
    future: Option<Arc<sshard_future>>,
}

impl Completer {
    pub(crate) fn new(future: Arc<sshard_future>) -> Completer {
        Completer {
            future: Some(future),
        }
    }

    pub(crate) fn complete(mut self, outcome: Outcome) {
        if let Some(f) = self.future.take() {
            f.complete(outcome);
        }
    }
}

impl Drop for Completer {
    fn drop(&mut self) {
        if let Some(f) = self.future.take() {
            if !runtime::is_stale(f.generation()) {
                f.complete(Err(sshard_error::closed(
                    "the request was cancelled: its session was freed",
                )));
            }
        }
    }
}

/// # Safety
/// `ptr` is NULL or a live future.
unsafe fn future<'a>(ptr: *const sshard_future) -> FfiResult<&'a sshard_future> {
    // SAFETY: forwarded contract.
    unsafe { handle_ref(ptr, "future") }
}

/// Releases the caller's reference (NULL: no-op).
#[no_mangle]
pub unsafe extern "C" fn sshard_future_free(future: *const sshard_future) -> sshard_status {
    ffi_boundary! {
        // SAFETY: NULL or a reference the caller gives up (API contract).
        unsafe { arc_free(future) }
    }
}

/// What the future yields on success (`SSHARD_FUTURE_KIND_*`).
#[no_mangle]
pub unsafe extern "C" fn sshard_future_get_kind(
    future: *const sshard_future,
    kind: *mut sshard_future_kind,
) -> sshard_status {
    ffi_boundary! {
        // SAFETY: NULL or a live future (API contract).
        let f = unsafe { self::future(future) }?;
        out_arg(kind, "kind")?.write(f.kind);
        Ok(())
    }
}

/// Blocks until the future completes; returns its status (`SSHARD_STATUS_OK`
/// or the failure's). `SSHARD_STATUS_WOULD_DEADLOCK` on a runtime thread.
#[no_mangle]
pub unsafe extern "C" fn sshard_future_wait(future: *const sshard_future) -> sshard_status {
    ffi_boundary! {
        // SAFETY: NULL or a live future (API contract).
        let f = unsafe { self::future(future) }?;
        match f.wait(None)? {
            SSHARD_STATUS_OK => Ok(()),
            s => Err(f.failure(s)),
        }
    }
}

/// Like `sshard_future_wait`, at most `timeout_us` microseconds:
/// `SSHARD_STATUS_PENDING` if it has not completed by then.
#[no_mangle]
pub unsafe extern "C" fn sshard_future_wait_timed(
    future: *const sshard_future,
    timeout_us: u64,
) -> sshard_status {
    ffi_boundary! {
        // SAFETY: NULL or a live future (API contract).
        let f = unsafe { self::future(future) }?;
        match f.wait(Some(Duration::from_micros(timeout_us)))? {
            SSHARD_STATUS_OK => Ok(()),
            s => Err(f.failure(s)),
        }
    }
}

/// Whether the future has completed (never blocks).
#[no_mangle]
pub unsafe extern "C" fn sshard_future_ready(
    future: *const sshard_future,
    ready: *mut bool,
) -> sshard_status {
    ffi_boundary! {
        // SAFETY: NULL or a live future (API contract).
        let f = unsafe { self::future(future) }?;
        out_arg(ready, "ready")?.write(f.status() != SSHARD_STATUS_PENDING);
        Ok(())
    }
}

/// The future's status without blocking: `SSHARD_STATUS_PENDING`, OK, or
/// the failure's status.
#[no_mangle]
pub unsafe extern "C" fn sshard_future_status(future: *const sshard_future) -> sshard_status {
    ffi_boundary! {
        // SAFETY: NULL or a live future (API contract).
        let f = unsafe { self::future(future) }?;
        match f.status() {
            SSHARD_STATUS_OK => Ok(()),
            s => Err(f.failure(s)),
        }
    }
}

/// Calls `callback(future, data)` once when the future completes (at once,
/// on this thread, if it already has). A future has at most one callback or
/// queue: a second one is `SSHARD_STATUS_WRONG_STATE`.
#[no_mangle]
pub unsafe extern "C" fn sshard_future_set_callback(
    future: *const sshard_future,
    callback: sshard_future_callback,
    data: *mut c_void,
) -> sshard_status {
    ffi_boundary! {
        // SAFETY: NULL or a live future (API contract).
        let f = unsafe { arc_clone(future, "future") }?;
        let callback = callback.ok_or_else(|| Fail::null("callback"))?;
        f.set_target(Target::Callback(callback, data as usize))
    }
}

/// Delivers the completion to `queue` as one event carrying `token` and a
/// new reference to the future (freed by whoever polls the event). At once
/// if the future already completed. A future has at most one callback or
/// queue: a second one is `SSHARD_STATUS_WRONG_STATE`.
#[no_mangle]
pub unsafe extern "C" fn sshard_future_set_queue(
    future: *const sshard_future,
    queue: *const sshard_queue,
    token: u64,
) -> sshard_status {
    ffi_boundary! {
        // SAFETY: NULL or a live future (API contract).
        let f = unsafe { arc_clone(future, "future") }?;
        // SAFETY: NULL or a live queue (API contract).
        let q = unsafe { arc_clone(queue, "queue") }?;
        q.attach_driver(f.driver());
        f.set_queue(q, token)
    }
}

/// The error of a failed future (a view valid as long as the future);
/// `SSHARD_STATUS_PENDING` if not completed, `SSHARD_STATUS_WRONG_STATE` if
/// it succeeded.
#[no_mangle]
pub unsafe extern "C" fn sshard_future_get_error(
    future: *const sshard_future,
    error: *mut *const sshard_error,
) -> sshard_status {
    ffi_boundary! {
        // SAFETY: NULL or a live future (API contract).
        let f = unsafe { self::future(future) }?;
        let out = out_arg(error, "error")?;
        f.with_outcome(|outcome| match outcome {
            Ok(_) => Err(Fail::state("the future succeeded; it has no error")),
            Err(e) => {
                // The outcome is never replaced once set, so the error stays
                // at this address as long as the future lives.
                out.write(e as *const sshard_error);
                Ok(())
            }
        })
    }
}

/// The result of an execute or batch future: a new reference, freed with
/// `sshard_result_free`. Fails with the future's status if it failed,
/// `SSHARD_STATUS_PENDING` if not completed.
#[no_mangle]
pub unsafe extern "C" fn sshard_future_get_result(
    future: *const sshard_future,
    result: *mut *const sshard_result,
) -> sshard_status {
    ffi_boundary! {
        // SAFETY: NULL or a live future (API contract).
        let f = unsafe { self::future(future) }?;
        let out = out_arg(result, "result")?;
        match f.payload("result")? {
            Payload::Result(r) => {
                out.write(arc_into_raw(r));
                Ok(())
            }
            _ => Err(Fail::state("this future yields no result")),
        }
    }
}

/// The prepared statement of a prepare future: a new reference, freed with
/// `sshard_prepared_free`.
#[no_mangle]
pub unsafe extern "C" fn sshard_future_get_prepared(
    future: *const sshard_future,
    prepared: *mut *const sshard_prepared,
) -> sshard_status {
    ffi_boundary! {
        // SAFETY: NULL or a live future (API contract).
        let f = unsafe { self::future(future) }?;
        let out = out_arg(prepared, "prepared")?;
        match f.payload("prepared statement")? {
            Payload::Prepared(p) => {
                out.write(arc_into_raw(p));
                Ok(())
            }
            _ => Err(Fail::state("this future yields no prepared statement")),
        }
    }
}

/// The session of a connect future: a new reference, freed with
/// `sshard_session_free`.
#[no_mangle]
pub unsafe extern "C" fn sshard_future_get_session(
    future: *const sshard_future,
    session: *mut *const sshard_session,
) -> sshard_status {
    ffi_boundary! {
        // SAFETY: NULL or a live future (API contract).
        let f = unsafe { self::future(future) }?;
        let out = out_arg(session, "session")?;
        match f.payload("session")? {
            Payload::Session(s) => {
                out.write(arc_into_raw(s));
                Ok(())
            }
            _ => Err(Fail::state("this future yields no session")),
        }
    }
}
