//! `sshard_session`: a connected session (shared, thread-safe), and the
//! asynchronous calls on it. Each call returns at once with an
//! `sshard_future`; argument errors are reported synchronously, everything
//! else through the future.
//!
//! Each session owns its runtime, started by `sshard_session_connect` with
//! the config's worker-thread count (never at load time). A request is
//! admitted by the core session when it is submitted, so a close (or the
//! free of the last reference, which closes) waits for every request
//! submitted before it; the runtime stops once that close is done.

use std::ffi::c_char;
use std::future::Future;
use std::sync::Arc;

use super::config::sshard_config;
use super::enums::{
    sshard_future_kind, SSHARD_FUTURE_KIND_BATCH, SSHARD_FUTURE_KIND_CLOSE,
    SSHARD_FUTURE_KIND_CONNECT, SSHARD_FUTURE_KIND_EXECUTE, SSHARD_FUTURE_KIND_PREPARE,
    SSHARD_FUTURE_KIND_USE_KEYSPACE,
};
use super::error::sshard_error;
use super::future::{sshard_future, Completer, Outcome, Payload};
use super::handle::{
    arc_clone, arc_free, arc_into_raw, handle_ref, out_arg, slice_arg, str_arg, Generational,
};
use super::prepared::sshard_prepared;
use super::queue::sshard_queue;
use super::result::sshard_result;
use super::statement::{sshard_batch, sshard_statement};
use super::status::{sshard_status, Fail, FfiResult, SSHARD_STATUS_RUNTIME};
use crate::runtime::{self, Runtime, RuntimeConfig};
use crate::session::{Admission, Query, Session};

/// A connected session. Shared and thread-safe; free with
/// `sshard_session_free`.
pub struct sshard_session {
    generation: u64,
    session: Session,
    runtime: Arc<Runtime>,
}

impl Drop for sshard_session {
    /// The last reference is gone: close the session in the background so
    /// the requests already submitted finish normally; the close task
    /// holds the runtime until then, and the runtime stops after it.
    fn drop(&mut self) {
        if runtime::is_stale(self.generation) {
            return;
        }
        let session = self.session.clone();
        let runtime = self.runtime.clone();
        self.runtime.spawn(async move {
            session.close().await;
            drop(runtime);
        });
    }
}

impl Generational for sshard_session {
    fn generation(&self) -> u64 {
        self.generation
    }
}

impl sshard_session {
    /// Admits the request now, on the caller's thread (a close that follows
    /// waits for it), then runs the future `make` returns on the session's
    /// runtime; its outcome completes the returned future. The future is
    /// made on the runtime thread: it is kilobytes, so it is boxed (tokio
    /// moves a task's future by value several times), and a block made and
    /// freed on one thread is cheapest.
    fn submit<M, F>(&self, kind: sshard_future_kind, make: M) -> Arc<sshard_future>
    where
        M: FnOnce(Admission) -> F + Send + 'static,
        F: Future<Output = Outcome> + Send + 'static,
    {
        let (future, task) = self.task(kind, make);
        if let Some(task) = task {
            self.runtime.submit(task);
        }
        future
    }

    /// The future of one request and the task that completes it (none when
    /// the session refused it: the future has completed with the error).
    fn task<M, F>(
        &self,
        kind: sshard_future_kind,
        make: M,
    ) -> (
        Arc<sshard_future>,
        Option<impl Future<Output = ()> + Send + 'static>,
    )
    where
        M: FnOnce(Admission) -> F + Send + 'static,
        F: Future<Output = Outcome> + Send + 'static,
    {
        let admission = match self.session.admit() {
            Ok(admission) => admission,
            Err(e) => {
                let error = Err(sshard_error::from_driver(e));
                return (sshard_future::completed(kind, error), None);
            }
        };
        let future = sshard_future::with_driver(kind, self.runtime.driver());
        let completer = Completer::new(future.clone());
        let task = async move {
            completer.complete(Box::pin(make(admission)).await);
        };
        (future, Some(task))
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
    statement: Option<Arc<crate::session::Statement>>,
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
        let communicator = config.session.communicator.is_some();
        if config.session.contact_points.is_empty() && !communicator {
            return Err(Fail::invalid("the config has no contact point"));
        }
        // One connection to the daemon needs one thread, not one per CPU.
        let worker_threads = match config.worker_threads {
            0 if communicator => 1,
            n => n as usize,
        };
        let runtime = Runtime::new(RuntimeConfig {
            worker_threads,
            thread_name: "sshard-worker".into(),
            dispatch: Some(super::log::dispatch()),
            caller_driven: config.caller_driven,
        })
        .map_err(|e| Fail::new(SSHARD_STATUS_RUNTIME, format!("cannot start the runtime: {e}")))?;
        let runtime = Arc::new(runtime);
        let session_config = config.session.clone();
        let f = sshard_future::with_driver(SSHARD_FUTURE_KIND_CONNECT, runtime.driver());
        let completer = Completer::new(f.clone());
        let task_runtime = runtime.clone();
        runtime.spawn(async move {
            let outcome = match Session::connect(session_config).await {
                Ok(session) => {
                    tracing::info!(shard_aware = session.is_shard_aware(), "session connected");
                    Ok(Payload::Session(Arc::new(sshard_session {
                        generation: runtime::generation(),
                        session,
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

/// Releases the caller's reference (NULL: no-op). Never blocks. When the
/// last reference goes, the session closes in the background as
/// `sshard_session_close` does: requests submitted before complete
/// normally (their futures stay valid), then the connections close and
/// the session's threads stop.
#[no_mangle]
pub unsafe extern "C" fn sshard_session_free(session: *const sshard_session) -> sshard_status {
    ffi_boundary! {
        // SAFETY: NULL or a reference the caller gives up (API contract).
        unsafe { arc_free(session) }
    }
}

/// Refuses new requests (their futures fail with CLOSED), waits for every
/// request submitted before (at most the request timeout plus 5 s), then
/// closes the connections. The future (`SSHARD_FUTURE_KIND_CLOSE`)
/// completes then. The session may be freed at once: that does not cancel
/// anything.
#[no_mangle]
pub unsafe extern "C" fn sshard_session_close(
    session: *const sshard_session,
    future: *mut *const sshard_future,
) -> sshard_status {
    ffi_boundary! {
        // SAFETY: NULL or a live session (API contract).
        let s = unsafe { self::session(session) }?;
        let out = out_arg(future, "future")?;
        // At once: a request submitted after this call is refused.
        s.session.refuse_new();
        let f = sshard_future::new(SSHARD_FUTURE_KIND_CLOSE);
        let completer = Completer::new(f.clone());
        let session = s.session.clone();
        // Holds the runtime until the close is done: a free right after
        // this call also closes, and its task must not stop the runtime
        // (cancelling this one) if it finishes first.
        let runtime = s.runtime.clone();
        s.runtime.spawn(async move {
            session.close().await;
            completer.complete(Ok(Payload::None));
            drop(runtime);
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
        let f = s.submit(SSHARD_FUTURE_KIND_PREPARE, move |admission| async move {
            match admission.prepare(&query).await {
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
fn submit_execute(
    s: &sshard_session,
    statement: Arc<crate::session::Statement>,
) -> Arc<sshard_future> {
    s.submit(SSHARD_FUTURE_KIND_EXECUTE, move |admission| {
        execute(admission, statement)
    })
}

/// Runs an admitted statement.
async fn execute(admission: Admission, statement: Arc<crate::session::Statement>) -> Outcome {
    let outcome = admission.execute(&statement).await;
    result_outcome(outcome, Some(statement))
}

/// Executes `count` statements at once, each as `sshard_session_execute`
/// would (the statements stay the caller's), and delivers each completion
/// to `queue` as an event carrying `tokens[i]` and a reference to its
/// future (freed by whoever polls the event, as with
/// `sshard_future_set_queue`). One call and one wake-up of the runtime for
/// them all, where `count` execute and set_queue calls cost three calls
/// each. All or nothing: a NULL or invalid statement starts none of them,
/// and the error names its index. `count` 0 does nothing.
#[no_mangle]
pub unsafe extern "C" fn sshard_session_execute_many(
    session: *const sshard_session,
    statements: *const *const sshard_statement,
    count: usize,
    queue: *const sshard_queue,
    tokens: *const u64,
) -> sshard_status {
    ffi_boundary! {
        // SAFETY: NULL or a live session (API contract).
        let s = unsafe { self::session(session) }?;
        // SAFETY: NULL or a live queue (API contract).
        let q = unsafe { arc_clone(queue, "queue") }?;
        // SAFETY: NULL or `count` readable entries each (API contract).
        let statements = unsafe { slice_arg(statements, count, "statements") }?;
        // SAFETY: as above.
        let tokens = unsafe { slice_arg(tokens, count, "tokens") }?;
        let mut shared = Vec::with_capacity(count);
        for (i, &statement) in statements.iter().enumerate() {
            // SAFETY: NULL or a live statement (API contract).
            let statement = unsafe { handle_ref(statement, "statement") }
                .and_then(|st| st.to_statement())
                .map_err(|fail| Fail::new(fail.status, format!("statements[{i}]: {}", fail.message)))?;
            shared.push(statement);
        }
        q.attach_driver(s.runtime.driver().as_ref());
        let mut tasks = Vec::with_capacity(count);
        for (statement, &token) in shared.into_iter().zip(tokens) {
            let (future, task) = s.task(SSHARD_FUTURE_KIND_EXECUTE, move |admission| {
                execute(admission, statement)
            });
            // Cannot fail: a new future has no callback or queue yet.
            future.set_queue(q.clone(), token)?;
            tasks.extend(task);
        }
        s.runtime.submit_many(tasks);
        Ok(())
    }
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
        let f = s.submit(SSHARD_FUTURE_KIND_BATCH, move |admission| async move {
            result_outcome(admission.batch(&batch).await, None)
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
        let f = s.submit(SSHARD_FUTURE_KIND_USE_KEYSPACE, move |admission| async move {
            admission
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
        out_arg(count, "count")?.write(s.session.in_flight());
        Ok(())
    }
}

impl sshard_session {
    pub(crate) fn rust_session(&self) -> &Session {
        &self.session
    }
}
