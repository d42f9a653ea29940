//! `sshard_session`: a connected session (shared, thread-safe), and the
//! asynchronous calls on it. Each call returns at once with an
//! `sshard_future`; argument errors are reported synchronously, everything
//! else through the future.
//!
//! Each session owns its runtime, started by `sshard_session_connect` with
//! the config's worker-thread count (never at load time). Requests are
//! counted from submission to completion so `sshard_session_close` can
//! wait for every request submitted before it. Freeing the last reference
//! without closing shuts the runtime down: requests still in flight then
//! complete with `SSHARD_STATUS_CLOSED`.

use std::ffi::c_char;
use std::future::Future;
use std::pin::pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;

use super::config::sshard_config;
use super::enums::{
    sshard_future_kind, SSHARD_FUTURE_KIND_BATCH, SSHARD_FUTURE_KIND_CLOSE,
    SSHARD_FUTURE_KIND_CONNECT, SSHARD_FUTURE_KIND_EXECUTE, SSHARD_FUTURE_KIND_PREPARE,
    SSHARD_FUTURE_KIND_USE_KEYSPACE,
};
use super::error::sshard_error;
use super::future::{sshard_future, Completer, Outcome, Payload};
use super::handle::{arc_free, arc_into_raw, handle_ref, out_arg, str_arg, Generational};
use super::prepared::sshard_prepared;
use super::result::sshard_result;
use super::statement::{sshard_batch, sshard_statement};
use super::status::{sshard_status, Fail, FfiResult, SSHARD_STATUS_RUNTIME};
use crate::runtime::{self, Runtime, RuntimeConfig};
use crate::session::{Query, Session};

/// Extra time `close` waits for requests in flight beyond the request
/// timeout.
const CLOSE_SLACK: Duration = Duration::from_secs(5);

/// Requests submitted and not yet completed.
#[derive(Default)]
struct InFlight {
    count: AtomicUsize,
    closing: AtomicBool,
    /// The session handle is gone: its runtime is stopping under the
    /// requests still in flight.
    freed: AtomicBool,
    idle: Notify,
}

impl InFlight {
    fn enter(self: &Arc<Self>) -> Option<InFlightGuard> {
        self.count.fetch_add(1, Ordering::SeqCst);
        if self.closing.load(Ordering::SeqCst) {
            self.leave();
            return None;
        }
        Some(InFlightGuard(self.clone()))
    }

    fn leave(&self) {
        if self.count.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.idle.notify_waiters();
        }
    }

    async fn wait_idle(&self) {
        loop {
            let mut notified = pin!(self.idle.notified());
            notified.as_mut().enable();
            if self.count.load(Ordering::SeqCst) == 0 {
                return;
            }
            notified.await;
        }
    }
}

struct InFlightGuard(Arc<InFlight>);

impl Drop for InFlightGuard {
    fn drop(&mut self) {
        self.0.leave();
    }
}

/// A connected session. Shared and thread-safe; free with
/// `sshard_session_free` (close it first to let requests finish).
pub struct sshard_session {
    generation: u64,
    session: Session,
    inflight: Arc<InFlight>,
    /// Declared last: dropped after the session handle.
    runtime: Arc<Runtime>,
}

impl Drop for sshard_session {
    fn drop(&mut self) {
        // Before the fields: the runtime (dropped last) stops the requests.
        self.inflight.freed.store(true, Ordering::SeqCst);
    }
}

impl Generational for sshard_session {
    fn generation(&self) -> u64 {
        self.generation
    }
}

impl sshard_session {
    /// Runs the future `make` returns on the session's runtime; its outcome
    /// completes the returned future (or CLOSED if the runtime goes away
    /// first). The future is made on the runtime thread: it is kilobytes,
    /// so it is boxed (tokio moves a task's future by value several
    /// times), and a block made and freed on one thread is cheapest.
    fn submit<M, F>(&self, kind: sshard_future_kind, make: M) -> Arc<sshard_future>
    where
        M: FnOnce() -> F + Send + 'static,
        F: Future<Output = Outcome> + Send + 'static,
    {
        let Some(guard) = self.inflight.enter() else {
            return sshard_future::completed(
                kind,
                Err(sshard_error::closed("the session is closed or closing")),
            );
        };
        let future = sshard_future::new(kind);
        let completer = Completer::new(future.clone());
        self.runtime.spawn(async move {
            let outcome = match Box::pin(make()).await {
                // Its connections were torn down by the stopping runtime,
                // not by the cluster: say so (as for the cancelled ones).
                Err(_) if guard.0.freed.load(Ordering::SeqCst) => Err(sshard_error::closed(
                    "the session was freed with the request in flight",
                )),
                outcome => outcome,
            };
            completer.complete(outcome);
            drop(guard);
        });
        future
    }
}

/// # Safety
/// `ptr` is NULL or a live session.
unsafe fn session<'a>(ptr: *const sshard_session) -> FfiResult<&'a sshard_session> {
    // SAFETY: forwarded contract.
    unsafe { handle_ref(ptr, "session") }
}

/// Wraps a result; `statement` (what produced it) describes rows sent
/// without metadata and fetches the next page.
fn result_outcome(
    outcome: Result<crate::session::QueryResult, crate::session::DriverError>,
    statement: Option<crate::session::Statement>,
) -> Outcome {
    match outcome {
        Ok(result) => {
            let prepared = match statement.as_ref().map(|s| &s.query) {
                Some(Query::Prepared(p)) => Some(p.clone()),
                _ => None,
            };
            Ok(Payload::Result(Arc::new(sshard_result::paged(
                result,
                prepared.as_ref(),
                statement,
            ))))
        }
        Err(e) => Err(sshard_error::from_driver(e)),
    }
}

/// Starts connecting with a copy of `config`: starts the session's runtime
/// and returns a future (`SSHARD_FUTURE_KIND_CONNECT`) that yields the
/// session (`sshard_future_get_session`).
#[no_mangle]
pub unsafe extern "C" fn sshard_session_connect(
    config: *const sshard_config,
    future: *mut *const sshard_future,
) -> sshard_status {
    ffi_boundary! {
        // SAFETY: NULL or a live config (API contract).
        let config = unsafe { handle_ref(config, "config") }?;
        let out = out_arg(future, "future")?;
        if config.session.contact_points.is_empty() {
            return Err(Fail::invalid("the config has no contact point"));
        }
        let runtime = Runtime::new(RuntimeConfig {
            worker_threads: config.worker_threads as usize,
            thread_name: "sshard-worker".into(),
            dispatch: Some(super::log::dispatch()),
        })
        .map_err(|e| Fail::new(SSHARD_STATUS_RUNTIME, format!("cannot start the runtime: {e}")))?;
        let runtime = Arc::new(runtime);
        let session_config = config.session.clone();
        let f = sshard_future::new(SSHARD_FUTURE_KIND_CONNECT);
        let completer = Completer::new(f.clone());
        let task_runtime = runtime.clone();
        runtime.spawn(async move {
            let outcome = match Session::connect(session_config).await {
                Ok(session) => {
                    tracing::info!(shard_aware = session.is_shard_aware(), "session connected");
                    Ok(Payload::Session(Arc::new(sshard_session {
                        generation: runtime::generation(),
                        session,
                        inflight: Arc::default(),
                        runtime: task_runtime,
                    })))
                }
                Err(e) => {
                    tracing::warn!(error = %e, "connect failed");
                    drop(task_runtime);
                    Err(sshard_error::from_driver(e))
                }
            };
            completer.complete(outcome);
        });
        drop(runtime);
        out.write(arc_into_raw(f));
        Ok(())
    }
}

/// Releases the caller's reference (NULL: no-op). When the last one goes,
/// the runtime stops; requests still in flight complete with CLOSED.
#[no_mangle]
pub unsafe extern "C" fn sshard_session_free(session: *const sshard_session) -> sshard_status {
    ffi_boundary! {
        // SAFETY: NULL or a reference the caller gives up (API contract).
        unsafe { arc_free(session) }
    }
}

/// Refuses new requests (their futures fail with CLOSED), waits for every
/// request submitted before (bounded by the request timeout), then closes
/// the connections. The future (`SSHARD_FUTURE_KIND_CLOSE`) completes then.
#[no_mangle]
pub unsafe extern "C" fn sshard_session_close(
    session: *const sshard_session,
    future: *mut *const sshard_future,
) -> sshard_status {
    ffi_boundary! {
        // SAFETY: NULL or a live session (API contract).
        let s = unsafe { self::session(session) }?;
        let out = out_arg(future, "future")?;
        s.inflight.closing.store(true, Ordering::SeqCst);
        let f = sshard_future::new(SSHARD_FUTURE_KIND_CLOSE);
        let completer = Completer::new(f.clone());
        let inflight = s.inflight.clone();
        let session = s.session.clone();
        let bound = session.config().request_timeout + CLOSE_SLACK;
        s.runtime.spawn(async move {
            if tokio::time::timeout(bound, inflight.wait_idle()).await.is_err() {
                tracing::warn!("close: requests still in flight after {bound:?}");
            }
            session.close().await;
            completer.complete(Ok(Payload::None));
        });
        out.write(arc_into_raw(f));
        Ok(())
    }
}

/// Prepares `query` on the cluster; the future
/// (`SSHARD_FUTURE_KIND_PREPARE`) yields an `sshard_prepared`.
#[no_mangle]
pub unsafe extern "C" fn sshard_session_prepare(
    session: *const sshard_session,
    query: *const c_char,
    query_len: usize,
    future: *mut *const sshard_future,
) -> sshard_status {
    ffi_boundary! {
        // SAFETY: NULL or a live session (API contract).
        let s = unsafe { self::session(session) }?;
        // SAFETY: `(query, query_len)` is readable memory (API contract).
        let query = unsafe { str_arg(query, query_len, "query") }?.to_owned();
        let out = out_arg(future, "future")?;
        let session = s.session.clone();
        let f = s.submit(SSHARD_FUTURE_KIND_PREPARE, move || async move {
            match session.prepare(&query).await {
                Ok(p) => Ok(Payload::Prepared(sshard_prepared::new(p))),
                Err(e) => Err(sshard_error::from_driver(e)),
            }
        });
        out.write(arc_into_raw(f));
        Ok(())
    }
}

/// Executes a copy of `statement` (one page); the future
/// (`SSHARD_FUTURE_KIND_EXECUTE`) yields an `sshard_result`. The statement
/// stays the caller's and may be changed or freed at once.
#[no_mangle]
pub unsafe extern "C" fn sshard_session_execute(
    session: *const sshard_session,
    statement: *const sshard_statement,
    future: *mut *const sshard_future,
) -> sshard_status {
    ffi_boundary! {
        // SAFETY: NULL or a live session (API contract).
        let s = unsafe { self::session(session) }?;
        // SAFETY: NULL or a live statement (API contract).
        let statement = unsafe { handle_ref(statement, "statement") }?.to_statement()?;
        let out = out_arg(future, "future")?;
        out.write(arc_into_raw(submit_execute(s, statement)));
        Ok(())
    }
}

/// Runs `statement` on the session's runtime; the future yields its result.
fn submit_execute(s: &sshard_session, statement: crate::session::Statement) -> Arc<sshard_future> {
    let session = s.session.clone();
    s.submit(SSHARD_FUTURE_KIND_EXECUTE, move || async move {
        let outcome = session.execute(&statement).await;
        result_outcome(outcome, Some(statement))
    })
}

/// Fetches the page after `result` (which must come from
/// `sshard_session_execute` and have more pages, else WRONG_STATE): the
/// same statement with the result's paging state. The future
/// (`SSHARD_FUTURE_KIND_EXECUTE`) yields the next `sshard_result`, which
/// can be paged on the same way.
#[no_mangle]
pub unsafe extern "C" fn sshard_session_next_page(
    session: *const sshard_session,
    result: *const sshard_result,
    future: *mut *const sshard_future,
) -> sshard_status {
    ffi_boundary! {
        // SAFETY: NULL or a live session (API contract).
        let s = unsafe { self::session(session) }?;
        // SAFETY: NULL or a live result (API contract).
        let r = unsafe { handle_ref(result, "result") }?;
        let out = out_arg(future, "future")?;
        let statement = r
            .next_page()
            .cloned()
            .ok_or_else(|| Fail::state("the result has no next page"))?;
        out.write(arc_into_raw(submit_execute(s, statement)));
        Ok(())
    }
}

/// Executes a copy of `batch`; the future (`SSHARD_FUTURE_KIND_BATCH`)
/// yields an `sshard_result`.
#[no_mangle]
pub unsafe extern "C" fn sshard_session_batch(
    session: *const sshard_session,
    batch: *const sshard_batch,
    future: *mut *const sshard_future,
) -> sshard_status {
    ffi_boundary! {
        // SAFETY: NULL or a live session (API contract).
        let s = unsafe { self::session(session) }?;
        // SAFETY: NULL or a live batch (API contract).
        let batch = unsafe { handle_ref(batch, "batch") }?.batch().clone();
        let out = out_arg(future, "future")?;
        if batch.statements.is_empty() {
            return Err(Fail::invalid("the batch has no statement"));
        }
        let session = s.session.clone();
        let f = s.submit(SSHARD_FUTURE_KIND_BATCH, move || async move {
            result_outcome(session.batch(&batch).await, None)
        });
        out.write(arc_into_raw(f));
        Ok(())
    }
}

/// Switches every connection to `keyspace` (the exact, case-sensitive
/// name); the future (`SSHARD_FUTURE_KIND_USE_KEYSPACE`) yields nothing.
#[no_mangle]
pub unsafe extern "C" fn sshard_session_use_keyspace(
    session: *const sshard_session,
    keyspace: *const c_char,
    keyspace_len: usize,
    future: *mut *const sshard_future,
) -> sshard_status {
    ffi_boundary! {
        // SAFETY: NULL or a live session (API contract).
        let s = unsafe { self::session(session) }?;
        // SAFETY: `(keyspace, keyspace_len)` is readable memory (API contract).
        let keyspace = unsafe { str_arg(keyspace, keyspace_len, "keyspace") }?.to_owned();
        let out = out_arg(future, "future")?;
        if keyspace.is_empty() {
            return Err(Fail::invalid("empty keyspace name"));
        }
        let session = s.session.clone();
        let f = s.submit(SSHARD_FUTURE_KIND_USE_KEYSPACE, move || async move {
            session
                .use_keyspace(&keyspace)
                .await
                .map(|()| Payload::None)
                .map_err(sshard_error::from_driver)
        });
        out.write(arc_into_raw(f));
        Ok(())
    }
}

/// Whether requests go to the shard that owns their data (some node
/// reported Scylla sharding).
#[no_mangle]
pub unsafe extern "C" fn sshard_session_is_shard_aware(
    session: *const sshard_session,
    shard_aware: *mut bool,
) -> sshard_status {
    ffi_boundary! {
        // SAFETY: NULL or a live session (API contract).
        let s = unsafe { self::session(session) }?;
        out_arg(shard_aware, "shard_aware")?.write(s.session.is_shard_aware());
        Ok(())
    }
}

/// The number of requests submitted on the session and not yet completed.
#[no_mangle]
pub unsafe extern "C" fn sshard_session_in_flight(
    session: *const sshard_session,
    count: *mut usize,
) -> sshard_status {
    ffi_boundary! {
        // SAFETY: NULL or a live session (API contract).
        let s = unsafe { self::session(session) }?;
        out_arg(count, "count")?.write(s.inflight.count.load(Ordering::SeqCst));
        Ok(())
    }
}

impl sshard_session {
    pub(crate) fn rust_session(&self) -> &Session {
        &self.session
    }
}
