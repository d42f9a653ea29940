//! Unit tests of the C API that need no cluster: bound statements and type
//! checks, results and value views, futures and queues (exactly-once
//! delivery under races, blocking calls refused on runtime threads), and
//! NULL / invalid arguments of every function not covered in its module.

use std::ffi::{c_char, c_void};
use std::ptr::{null, null_mut};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier};
use std::time::Duration;

use super::enums::*;
use super::error::sshard_error;
use super::future::*;
use super::handle::arc_into_raw;
use super::prepared::*;
use super::queue::*;
use super::result::*;
use super::session::*;
use super::statement::*;
use super::status::*;
use super::value::*;
use super::view::*;
use crate::protocol::response::{PreparedMetadata, ResultMetadata, Rows};
use crate::protocol::types::UdtType;
use crate::protocol::{ColumnSpec, ColumnType, CqlValue};
use crate::runtime::{Runtime, RuntimeConfig};
use crate::session::{Prepared, QueryResult};

fn spec(name: &str, ty: ColumnType) -> ColumnSpec {
    ColumnSpec::new("ks", "t", name, ty)
}

/// An empty slot for queue events.
const NO_EVENT: sshard_event = sshard_event {
    token: 0,
    future: std::ptr::null_mut(),
    status: 0,
    kind: 0,
};

fn s(text: &str) -> (*const c_char, usize) {
    (text.as_ptr().cast(), text.len())
}

fn prepared(columns: Vec<ColumnSpec>) -> *const sshard_prepared {
    let p = Prepared {
        id: vec![1, 2, 3],
        query: "INSERT ...".into(),
        keyspace: Some("ks".into()),
        metadata: PreparedMetadata {
            is_lwt: false,
            pk_indexes: vec![0],
            bind_columns: columns,
        },
        result_metadata: ResultMetadata::default(),
    };
    arc_into_raw(sshard_prepared::new(Arc::new(p)))
}

#[test]
fn bound_statements_are_type_checked_by_index_and_name() {
    let p = prepared(vec![
        spec("id", ColumnType::Int),
        spec("name", ColumnType::Text),
        spec("Tags", ColumnType::Set(Box::new(ColumnType::Text))),
        spec("id", ColumnType::Int),
    ]);
    // SAFETY: live handles from this test, freed once; live strings.
    unsafe {
        let mut n = 0;
        assert_eq!(sshard_prepared_parameter_count(p, &mut n), 0);
        assert_eq!(n, 4);
        let (mut name, mut len) = (null(), 0);
        assert_eq!(sshard_prepared_parameter_name(p, 1, &mut name, &mut len), 0);
        assert_eq!(std::slice::from_raw_parts(name.cast::<u8>(), len), b"name");
        assert_eq!(
            sshard_prepared_parameter_name(p, 4, &mut name, &mut len),
            SSHARD_STATUS_INDEX_OUT_OF_RANGE
        );
        let mut dt = null();
        assert_eq!(sshard_prepared_parameter_data_type(p, 2, &mut dt), 0);
        let mut lwt = true;
        assert_eq!(sshard_prepared_is_lwt(p, &mut lwt), 0);
        assert!(!lwt);

        let mut st = null_mut();
        assert_eq!(sshard_prepared_bind(p, &mut st), 0);
        assert_eq!(sshard_statement_value_count(st, &mut n), 0);
        assert_eq!(n, 4);
        assert_eq!(super::bind::sshard_statement_bind_int32(st, 0, 5), 0);
        assert_eq!(
            super::bind::sshard_statement_bind_int64(st, 0, 5),
            SSHARD_STATUS_TYPE_MISMATCH
        );
        let (t, tl) = s("bob");
        assert_eq!(super::bind::sshard_statement_bind_text(st, 1, t, tl), 0);
        assert_eq!(
            super::bind::sshard_statement_bind_text(st, 0, t, tl),
            SSHARD_STATUS_TYPE_MISMATCH
        );
        // By name: every marker named `id` is bound.
        let (n_id, n_len) = s("ID");
        assert_eq!(
            super::bind::sshard_statement_bind_int32_by_name(st, n_id, n_len, 9),
            0
        );
        let (q, ql) = s("\"Tags\"");
        let mut b = null_mut();
        assert_eq!(sshard_builder_new(SSHARD_TYPE_SET, &mut b), 0);
        assert_eq!(super::bind::sshard_builder_append_text(b, t, tl), 0);
        assert_eq!(
            super::bind::sshard_statement_bind_builder_by_name(st, q, ql, b),
            0
        );
        let (lower, ll) = s("tags");
        assert_eq!(
            super::bind::sshard_statement_bind_builder_by_name(st, lower, ll, b),
            SSHARD_STATUS_NAME_NOT_FOUND
        );
        assert_eq!(
            super::bind::sshard_statement_bind_int32(st, 4, 1),
            SSHARD_STATUS_INDEX_OUT_OF_RANGE
        );
        let statement = (*st).to_statement().unwrap();
        let expected = CqlValue::Int(9).to_bytes().unwrap();
        assert_eq!(statement.values[0].as_bytes(), Some(&expected[..]));
        assert_eq!(statement.values[3].as_bytes(), Some(&expected[..]));
        assert_eq!(sshard_builder_free(b), 0);
        assert_eq!(sshard_statement_free(st), 0);
        assert_eq!(sshard_prepared_free(p), 0);
    }
}

fn rows_result() -> QueryResult {
    let udt = ColumnType::Udt(Box::new(UdtType {
        keyspace: "ks".into(),
        name: "addr".into(),
        fields: vec![
            ("street".into(), ColumnType::Text),
            ("no".into(), ColumnType::Int),
        ],
    }));
    let columns = vec![
        spec("id", ColumnType::Int),
        spec("name", ColumnType::Text),
        spec(
            "m",
            ColumnType::Map(Box::new(ColumnType::Text), Box::new(ColumnType::BigInt)),
        ),
        spec("a", udt),
        spec("d", ColumnType::Date),
    ];
    let row = |id: i32, name: Option<&str>| {
        vec![
            Some(CqlValue::Int(id).to_bytes().unwrap()),
            name.map(|n| CqlValue::Text(n.into()).to_bytes().unwrap()),
            Some(
                CqlValue::Map(vec![(CqlValue::Text("k".into()), CqlValue::BigInt(7))])
                    .to_bytes()
                    .unwrap(),
            ),
            Some(
                CqlValue::Udt(vec![
                    ("street".into(), Some(CqlValue::Text("Main".into()))),
                    ("no".into(), None),
                ])
                .to_bytes()
                .unwrap(),
            ),
            Some(vec![1, 2]), // malformed date
        ]
    };
    QueryResult {
        rows: Some(
            Rows::from_cells(
                ResultMetadata::with_columns(columns),
                vec![row(1, Some("ann")), row(2, None)],
            )
            .unwrap(),
        ),
        paging_state: Some(vec![9, 9]),
        coordinator: Some("127.0.0.1:9042".parse().unwrap()),
        shard: Some(3),
        ..Default::default()
    }
}

#[test]
fn results_and_views_read_every_shape() {
    let r = arc_into_raw(Arc::new(sshard_result::new(rows_result(), None)));
    // SAFETY: `r` is live until freed at the end; views are used before that.
    unsafe {
        let mut n = 0;
        assert_eq!(sshard_result_row_count(r, &mut n), 0);
        assert_eq!(n, 2);
        assert_eq!(sshard_result_column_count(r, &mut n), 0);
        assert_eq!(n, 5);
        let mut more = false;
        assert_eq!(sshard_result_has_more_pages(r, &mut more), 0);
        assert!(more);
        let (mut ps, mut psl) = (null(), 0);
        assert_eq!(sshard_result_paging_state(r, &mut ps, &mut psl), 0);
        assert_eq!(std::slice::from_raw_parts(ps, psl), &[9, 9]);
        let mut shard = 0;
        assert_eq!(sshard_result_shard(r, &mut shard), 0);
        assert_eq!(shard, 3);
        let (mut p, mut pl) = (null(), 0);
        assert_eq!(sshard_result_coordinator(r, &mut p, &mut pl), 0);
        assert_eq!(
            std::slice::from_raw_parts(p.cast::<u8>(), pl),
            b"127.0.0.1:9042"
        );
        assert_eq!(
            sshard_result_keyspace(r, &mut p, &mut pl),
            SSHARD_STATUS_NOT_PRESENT
        );
        let mut kind = 0;
        assert_eq!(sshard_result_column_type(r, 2, &mut kind), 0);
        assert_eq!(kind, SSHARD_TYPE_MAP);
        let (name, nl) = s("NAME");
        assert_eq!(sshard_result_column_index(r, name, nl, &mut n), 0);
        assert_eq!(n, 1);

        let mut v = null();
        assert_eq!(sshard_result_value(r, 0, 1, &mut v), 0);
        assert_eq!(sshard_value_get_text(v, &mut p, &mut pl), 0);
        assert_eq!(std::slice::from_raw_parts(p.cast::<u8>(), pl), b"ann");
        let mut i = 0i32;
        assert_eq!(
            sshard_value_get_int32(v, &mut i),
            SSHARD_STATUS_TYPE_MISMATCH
        );
        assert_eq!(sshard_result_value(r, 1, 1, &mut v), 0);
        assert_eq!(
            sshard_value_get_text(v, &mut p, &mut pl),
            SSHARD_STATUS_NULL_VALUE
        );
        assert_eq!(
            sshard_result_value(r, 2, 0, &mut v),
            SSHARD_STATUS_INDEX_OUT_OF_RANGE
        );
        assert_eq!(
            sshard_result_value(r, 0, 5, &mut v),
            SSHARD_STATUS_INDEX_OUT_OF_RANGE
        );

        // Map.
        assert_eq!(sshard_result_value(r, 0, 2, &mut v), 0);
        assert_eq!(sshard_value_element_count(v, &mut n), 0);
        assert_eq!(n, 1);
        let (mut k, mut e) = (null(), null());
        assert_eq!(sshard_value_map_entry(v, 0, &mut k, &mut e), 0);
        let mut big = 0i64;
        assert_eq!(sshard_value_get_int64(e, &mut big), 0);
        assert_eq!(big, 7);
        assert_eq!(
            sshard_value_map_entry(v, 1, &mut k, &mut e),
            SSHARD_STATUS_INDEX_OUT_OF_RANGE
        );
        // UDT.
        let mut row = null();
        assert_eq!(sshard_result_row(r, 0, &mut row), 0);
        let (a, al) = s("a");
        assert_eq!(sshard_row_value_by_name(row, a, al, &mut v), 0);
        assert_eq!(sshard_value_field(v, 1, &mut p, &mut pl, &mut e), 0);
        assert_eq!(std::slice::from_raw_parts(p.cast::<u8>(), pl), b"no");
        let mut null_flag = false;
        assert_eq!(sshard_value_is_null(e, &mut null_flag), 0);
        assert!(null_flag);
        let (st, stl) = s("street");
        assert_eq!(sshard_value_field_by_name(v, st, stl, &mut e), 0);
        assert_eq!(sshard_value_get_text(e, &mut p, &mut pl), 0);
        assert_eq!(std::slice::from_raw_parts(p.cast::<u8>(), pl), b"Main");
        // A malformed cell is a DECODE error, not a crash.
        assert_eq!(sshard_row_value(row, 4, &mut v), 0);
        let mut days = 0;
        assert_eq!(sshard_value_get_date(v, &mut days), SSHARD_STATUS_DECODE);
        assert_eq!(sshard_result_free(r), 0);
    }
}

/// Rows sent without metadata are described by the prepared statement
/// that asked for them when the column count agrees, and stay readable as
/// raw bytes when it does not; rows without columns are still rows.
#[test]
fn rows_without_metadata_take_the_prepared_columns_when_they_fit() {
    let described = Arc::new(Prepared {
        id: vec![7],
        query: "SELECT a, b FROM ks.t".into(),
        keyspace: None,
        metadata: PreparedMetadata::default(),
        result_metadata: ResultMetadata::with_columns(vec![
            spec("a", ColumnType::Int),
            spec("b", ColumnType::Text),
        ]),
    });
    let rows = |column_count: usize, rows: Vec<Vec<Option<Vec<u8>>>>| QueryResult {
        rows: Some(
            Rows::from_cells(
                ResultMetadata {
                    column_count,
                    no_metadata: true,
                    ..Default::default()
                },
                rows,
            )
            .unwrap(),
        ),
        ..Default::default()
    };
    let cells = |a: i32, b: &str| vec![Some(a.to_be_bytes().to_vec()), Some(b.as_bytes().to_vec())];
    let fitting = rows(
        2,
        vec![cells(1, "one"), vec![None, None], cells(3, "three")],
    );
    let r = arc_into_raw(Arc::new(sshard_result::new(fitting, Some(&described))));
    let odd = rows(1, vec![vec![Some(vec![1, 2])]]);
    let odd = arc_into_raw(Arc::new(sshard_result::new(odd, Some(&described))));
    // SAFETY: live results, each freed once; views used while they live.
    unsafe {
        let (mut v, mut n, mut i) = (null(), 0usize, 0i32);
        assert_eq!(sshard_result_row_count(r, &mut n), 0);
        assert_eq!(n, 3);
        let mut index = 9;
        assert_eq!(sshard_result_column_index(r, s("b").0, 1, &mut index), 0);
        assert_eq!(index, 1);
        assert_eq!(sshard_result_value(r, 2, 0, &mut v), 0);
        assert_eq!(sshard_value_get_int32(v, &mut i), 0);
        assert_eq!(i, 3);
        let (mut text, mut len) = (null(), 0);
        assert_eq!(sshard_result_value(r, 2, 1, &mut v), 0);
        assert_eq!(sshard_value_get_text(v, &mut text, &mut len), 0);
        assert_eq!(std::slice::from_raw_parts(text.cast::<u8>(), len), b"three");
        let mut row = null();
        assert_eq!(sshard_result_row(r, 1, &mut row), 0);
        let mut null_value = false;
        assert_eq!(sshard_row_value(row, 1, &mut v), 0);
        assert_eq!(sshard_value_is_null(v, &mut null_value), 0);
        assert!(null_value);
        assert_eq!(
            sshard_row_value(row, 2, &mut v),
            SSHARD_STATUS_INDEX_OUT_OF_RANGE
        );

        assert_eq!(sshard_result_value(odd, 0, 0, &mut v), 0);
        let mut blob = null();
        assert_eq!(sshard_value_get_blob(v, &mut blob, &mut len), 0);
        assert_eq!(std::slice::from_raw_parts(blob, len), &[1, 2]);
        assert_eq!(
            sshard_result_column_index(odd, s("a").0, 1, &mut index),
            SSHARD_STATUS_NAME_NOT_FOUND
        );

        for res in [r, odd] {
            assert_eq!(sshard_result_free(res), 0);
        }
    }
}

#[test]
fn a_result_without_rows_has_no_columns() {
    let r = arc_into_raw(Arc::new(sshard_result::new(
        QueryResult {
            keyspace: Some("ks".into()),
            ..Default::default()
        },
        None,
    )));
    // SAFETY: live result, freed once.
    unsafe {
        let mut has = true;
        assert_eq!(sshard_result_has_rows(r, &mut has), 0);
        assert!(!has);
        let mut n = 1;
        assert_eq!(sshard_result_row_count(r, &mut n), 0);
        assert_eq!(n, 0);
        let (mut p, mut pl) = (null(), 0);
        assert_eq!(sshard_result_keyspace(r, &mut p, &mut pl), 0);
        assert_eq!(
            sshard_result_coordinator(r, &mut p, &mut pl),
            SSHARD_STATUS_NOT_PRESENT
        );
        let mut ps = null();
        assert_eq!(sshard_result_paging_state(r, &mut ps, &mut pl), 0);
        assert!(ps.is_null() && pl == 0);
        assert_eq!(sshard_result_free(r), 0);
    }
}

/// Many threads race to complete one future while another attaches a
/// queue: exactly one event, every time.
#[test]
fn completion_is_delivered_exactly_once_under_races() {
    for round in 0..200 {
        let f = sshard_future::new(SSHARD_FUTURE_KIND_EXECUTE);
        let q = sshard_queue::new();
        let barrier = Arc::new(Barrier::new(4));
        let mut threads = Vec::new();
        for i in 0..3 {
            let (f, barrier) = (f.clone(), barrier.clone());
            threads.push(std::thread::spawn(move || {
                barrier.wait();
                let outcome = if i == 0 {
                    Ok(Payload::None)
                } else {
                    Err(sshard_error::closed("x"))
                };
                f.complete(outcome);
            }));
        }
        let fp = Arc::as_ptr(&f);
        let qp = Arc::as_ptr(&q);
        barrier.wait();
        // SAFETY: both pointers are kept alive by `f` and `q`.
        assert_eq!(unsafe { sshard_future_set_queue(fp, qp, round) }, 0);
        for t in threads {
            t.join().unwrap();
        }
        let mut events = [NO_EVENT; 4];
        let mut n = 0;
        // SAFETY: live queue, caller-allocated array of 4 events.
        unsafe {
            assert_eq!(sshard_queue_poll(qp, events.as_mut_ptr(), 4, &mut n), 0);
            assert_eq!(n, 1, "round {round}");
            assert_eq!(events[0].token, round);
            assert_eq!(events[0].status, f.status());
            assert_eq!(sshard_future_free(events[0].future), 0);
            assert_eq!(
                sshard_future_set_queue(fp, qp, 1),
                SSHARD_STATUS_WRONG_STATE
            );
        }
    }
}

static CALLBACKS: AtomicUsize = AtomicUsize::new(0);

unsafe extern "C" fn count_callback(_: *mut sshard_future, data: *mut c_void) {
    assert_eq!(data as usize, 7);
    CALLBACKS.fetch_add(1, Ordering::SeqCst);
}

#[test]
fn callbacks_run_once_and_blocking_calls_on_runtime_threads_are_refused() {
    let f = sshard_future::new(SSHARD_FUTURE_KIND_PREPARE);
    let fp = Arc::as_ptr(&f);
    // SAFETY: `f` keeps the future alive.
    unsafe {
        assert_eq!(
            sshard_future_set_callback(fp, Some(count_callback), 7 as *mut c_void),
            0
        );
        assert_eq!(
            sshard_future_set_callback(fp, Some(count_callback), 7 as *mut c_void),
            SSHARD_STATUS_WRONG_STATE
        );
        assert_eq!(sshard_future_wait_timed(fp, 1000), SSHARD_STATUS_PENDING);
        assert_eq!(sshard_future_status(fp), SSHARD_STATUS_PENDING);
        let mut r = null();
        assert_eq!(sshard_future_get_result(fp, &mut r), SSHARD_STATUS_PENDING);
    }
    let rt = Runtime::new(RuntimeConfig {
        worker_threads: 1,
        ..Default::default()
    })
    .unwrap();
    let q = sshard_queue::new();
    let (tx, rx) = std::sync::mpsc::channel();
    let (f2, q2) = (f.clone(), q.clone());
    rt.spawn(async move {
        let fp = Arc::as_ptr(&f2);
        let qp = Arc::as_ptr(&q2);
        let mut n = 0;
        // SAFETY: the Arcs moved into the task keep both alive.
        let statuses = unsafe {
            (
                sshard_future_wait(fp),
                sshard_future_wait_timed(fp, 10),
                sshard_queue_wait(qp, null_mut(), 0, 10, &mut n),
            )
        };
        f2.complete(Ok(Payload::None));
        tx.send(statuses).unwrap();
    });
    let statuses = rx.recv_timeout(Duration::from_secs(10)).unwrap();
    assert_eq!(
        statuses,
        (
            SSHARD_STATUS_WOULD_DEADLOCK,
            SSHARD_STATUS_WOULD_DEADLOCK,
            SSHARD_STATUS_WOULD_DEADLOCK
        )
    );
    // SAFETY: `f` is alive.
    unsafe {
        assert_eq!(sshard_future_wait(fp), 0);
        let mut e = null();
        assert_eq!(
            sshard_future_get_error(fp, &mut e),
            SSHARD_STATUS_WRONG_STATE
        );
        let mut r = null();
        assert_eq!(
            sshard_future_get_result(fp, &mut r),
            SSHARD_STATUS_WRONG_STATE
        );
    }
    assert_eq!(CALLBACKS.load(Ordering::SeqCst), 1);
    f.complete(Ok(Payload::None));
    assert_eq!(CALLBACKS.load(Ordering::SeqCst), 1);
}

#[test]
fn a_dropped_task_completes_its_future_with_closed() {
    let f = sshard_future::new(SSHARD_FUTURE_KIND_EXECUTE);
    drop(Completer::new(f.clone()));
    assert_eq!(f.status(), SSHARD_STATUS_CLOSED);
    let c = Completer::new(f.clone());
    c.complete(Ok(Payload::None)); // already completed: ignored
    assert_eq!(f.status(), SSHARD_STATUS_CLOSED);
}

#[test]
fn the_eventfd_is_readable_exactly_while_events_wait() {
    let q = sshard_queue::new();
    let qp = Arc::as_ptr(&q);
    let mut fd = -1;
    // SAFETY: live queue and out pointer.
    assert_eq!(unsafe { sshard_queue_fd(qp, &mut fd) }, 0);
    let readable = || readable_now(fd);
    assert!(!readable());
    for token in 0..3 {
        let f = sshard_future::completed(SSHARD_FUTURE_KIND_EXECUTE, Ok(Payload::None));
        // SAFETY: live future and queue.
        let status = unsafe { sshard_future_set_queue(Arc::as_ptr(&f), qp, token) };
        assert_eq!(status, 0);
    }
    assert!(readable());
    let mut events = [NO_EVENT; 2];
    let mut n = 0;
    // SAFETY: live queue, array of 2 events; received futures freed once.
    unsafe {
        assert_eq!(sshard_queue_poll(qp, events.as_mut_ptr(), 2, &mut n), 0);
        assert_eq!(n, 2);
        assert!(readable());
        for e in &events[..n] {
            assert_eq!(sshard_future_free(e.future), 0);
        }
        assert_eq!(sshard_queue_wait(qp, events.as_mut_ptr(), 2, -1, &mut n), 0);
        assert_eq!(n, 1);
        assert_eq!(events[0].token, 2);
        assert_eq!(sshard_future_free(events[0].future), 0);
    }
    assert!(!readable());
}

fn readable_now(fd: i32) -> bool {
    let mut p = libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one valid pollfd, zero timeout.
    unsafe { libc::poll(&mut p, 1, 0) == 1 }
}

/// The eventfd is made on demand: asked for while events already wait, it
/// is readable at once, and every later call returns the same descriptor.
#[test]
fn an_eventfd_asked_for_late_is_readable_at_once() {
    let q = sshard_queue::new();
    let qp = Arc::as_ptr(&q);
    let f = sshard_future::completed(SSHARD_FUTURE_KIND_EXECUTE, Ok(Payload::None));
    let (mut fd, mut again) = (-1, -1);
    // SAFETY: live future, queue and out pointers.
    unsafe {
        assert_eq!(sshard_future_set_queue(Arc::as_ptr(&f), qp, 9), 0);
        assert_eq!(sshard_queue_fd(qp, &mut fd), 0);
        assert_eq!(sshard_queue_fd(qp, &mut again), 0);
    }
    assert!(fd >= 0);
    assert_eq!(fd, again);
    assert!(readable_now(fd));
    let mut event = [NO_EVENT];
    let mut n = 0;
    // SAFETY: live queue, array of one event; the received future freed once.
    unsafe {
        assert_eq!(sshard_queue_poll(qp, event.as_mut_ptr(), 1, &mut n), 0);
        assert_eq!((n, event[0].token), (1, 9));
        assert_eq!(sshard_future_free(event[0].future), 0);
    }
    assert!(!readable_now(fd));
}

/// Several threads asleep on one queue: each push wakes a sleeper nobody
/// woke yet, so every event is taken, whatever the interleaving.
#[test]
fn every_sleeper_on_a_queue_is_woken_by_its_own_event() {
    const SLEEPERS: usize = 4;
    for _ in 0..50 {
        let q = sshard_queue::new();
        let barrier = Arc::new(Barrier::new(SLEEPERS + 1));
        let threads: Vec<_> = (0..SLEEPERS)
            .map(|_| {
                let (q, barrier) = (q.clone(), barrier.clone());
                std::thread::spawn(move || {
                    let mut event = [NO_EVENT];
                    let mut n = 0;
                    barrier.wait();
                    // SAFETY: live queue (the Arc), array of one event; the
                    // received future is freed once.
                    unsafe {
                        let qp = Arc::as_ptr(&q);
                        let status =
                            sshard_queue_wait(qp, event.as_mut_ptr(), 1, 10_000_000, &mut n);
                        assert_eq!((status, n), (0, 1));
                        assert_eq!(sshard_future_free(event[0].future), 0);
                    }
                    event[0].token
                })
            })
            .collect();
        barrier.wait();
        for token in 0..SLEEPERS as u64 {
            let f = sshard_future::new(SSHARD_FUTURE_KIND_EXECUTE);
            // SAFETY: live future and queue.
            let status =
                unsafe { sshard_future_set_queue(Arc::as_ptr(&f), Arc::as_ptr(&q), token) };
            assert_eq!(status, 0);
            f.complete(Ok(Payload::None));
        }
        let mut tokens: Vec<u64> = threads.into_iter().map(|t| t.join().unwrap()).collect();
        tokens.sort_unstable();
        assert_eq!(tokens, (0..SLEEPERS as u64).collect::<Vec<_>>());
        assert_eq!(q.len(), 0);
    }
}

/// NULL handles and out pointers of the functions whose modules do not
/// test them.
#[test]
fn null_arguments_are_refused_everywhere_else() {
    const NULL: sshard_status = SSHARD_STATUS_NULL_ARGUMENT;
    let (t, tl) = s("x");
    let mut fut = null();
    let mut st = null_mut();
    let mut n = 0usize;
    let mut flag = false;
    let mut v = null();
    let (mut p, mut pl) = (null(), 0usize);
    let mut bp = null();
    // SAFETY: only NULL handles (or live locals as out pointers) are passed.
    unsafe {
        // Statements and batches.
        assert_eq!(sshard_statement_new(null(), 3, 0, &mut st), NULL);
        assert_eq!(sshard_statement_new(t, tl, 0, null_mut()), NULL);
        assert_eq!(sshard_statement_value_count(null(), &mut n), NULL);
        assert_eq!(sshard_statement_set_consistency(null_mut(), 1), NULL);
        assert_eq!(sshard_statement_set_serial_consistency(null_mut(), 8), NULL);
        assert_eq!(sshard_statement_set_page_size(null_mut(), 1), NULL);
        assert_eq!(
            sshard_statement_set_paging_state(null_mut(), null(), 0),
            NULL
        );
        assert_eq!(
            sshard_statement_set_paging_state_from_result(null_mut(), null()),
            NULL
        );
        assert_eq!(sshard_statement_set_timestamp(null_mut(), 1), NULL);
        assert_eq!(sshard_statement_set_idempotent(null_mut(), true), NULL);
        assert_eq!(sshard_statement_set_timeout_ms(null_mut(), 1), NULL);
        assert_eq!(sshard_statement_new(t, tl, 0, &mut st), 0);
        assert_eq!(sshard_statement_value_count(st, null_mut()), NULL);
        assert_eq!(sshard_statement_set_paging_state(st, null(), 4), NULL);
        assert_eq!(
            sshard_statement_set_paging_state_from_result(st, null()),
            NULL
        );
        let mut b = null_mut();
        assert_eq!(sshard_batch_new(0, null_mut()), NULL);
        assert_eq!(sshard_batch_add_statement(null_mut(), st), NULL);
        assert_eq!(sshard_batch_statement_count(null(), &mut n), NULL);
        assert_eq!(sshard_batch_set_consistency(null_mut(), 1), NULL);
        assert_eq!(sshard_batch_set_serial_consistency(null_mut(), 8), NULL);
        assert_eq!(sshard_batch_set_timestamp(null_mut(), 1), NULL);
        assert_eq!(sshard_batch_set_idempotent(null_mut(), true), NULL);
        assert_eq!(sshard_batch_set_timeout_ms(null_mut(), 1), NULL);
        assert_eq!(sshard_batch_new(SSHARD_BATCH_TYPE_COUNTER, &mut b), 0);
        assert_eq!(sshard_batch_add_statement(b, null()), NULL);
        assert_eq!(sshard_batch_statement_count(b, null_mut()), NULL);
        assert_eq!(
            sshard_batch_set_serial_consistency(b, SSHARD_CONSISTENCY_ALL),
            SSHARD_STATUS_INVALID_ARGUMENT
        );
        assert_eq!(sshard_batch_free(b), 0);
        assert_eq!(sshard_statement_free(st), 0);

        // Prepared statements.
        assert_eq!(sshard_prepared_bind(null(), &mut st), NULL);
        assert_eq!(sshard_prepared_parameter_count(null(), &mut n), NULL);
        assert_eq!(
            sshard_prepared_parameter_name(null(), 0, &mut p, &mut pl),
            NULL
        );
        let mut dt = null();
        assert_eq!(
            sshard_prepared_parameter_data_type(null(), 0, &mut dt),
            NULL
        );
        assert_eq!(sshard_prepared_is_lwt(null(), &mut flag), NULL);
        let prep = prepared(vec![spec("a", ColumnType::Int)]);
        assert_eq!(sshard_prepared_bind(prep, null_mut()), NULL);
        assert_eq!(sshard_prepared_parameter_count(prep, null_mut()), NULL);
        assert_eq!(
            sshard_prepared_parameter_name(prep, 0, null_mut(), &mut pl),
            NULL
        );
        assert_eq!(
            sshard_prepared_parameter_data_type(prep, 0, null_mut()),
            NULL
        );
        assert_eq!(sshard_prepared_is_lwt(prep, null_mut()), NULL);
        assert_eq!(sshard_prepared_free(prep), 0);

        // Sessions.
        assert_eq!(
            super::session::sshard_session_connect(null(), &mut fut),
            NULL
        );
        let mut cfg = null_mut();
        assert_eq!(super::config::sshard_config_new(&mut cfg), 0);
        assert_eq!(
            super::session::sshard_session_connect(cfg, null_mut()),
            NULL
        );
        assert_eq!(super::config::sshard_config_free(cfg), 0);
        assert_eq!(sshard_session_close(null(), &mut fut), NULL);
        assert_eq!(sshard_session_prepare(null(), t, tl, &mut fut), NULL);
        assert_eq!(sshard_session_execute(null(), null(), &mut fut), NULL);
        assert_eq!(sshard_session_batch(null(), null(), &mut fut), NULL);
        assert_eq!(
            super::session::sshard_session_next_page(null(), null(), &mut fut),
            NULL
        );
        assert_eq!(sshard_session_use_keyspace(null(), t, tl, &mut fut), NULL);
        assert_eq!(sshard_session_is_shard_aware(null(), &mut flag), NULL);
        assert_eq!(sshard_session_in_flight(null(), &mut n), NULL);
        let mut m = std::mem::MaybeUninit::<super::metrics::sshard_metrics>::uninit();
        assert_eq!(
            super::metrics::sshard_session_get_metrics(
                null(),
                m.as_mut_ptr(),
                std::mem::size_of::<super::metrics::sshard_metrics>()
            ),
            NULL
        );
        {
            use super::metrics::*;
            let mut snap = null();
            assert_eq!(sshard_session_get_metrics_snapshot(null(), &mut snap), NULL);
            assert!(snap.is_null());
            assert_eq!(sshard_metrics_snapshot_free(null()), 0);
            assert_eq!(
                sshard_metrics_snapshot_totals(null(), m.as_mut_ptr(), 64),
                NULL
            );
            assert_eq!(sshard_metrics_snapshot_node_count(null(), &mut n), NULL);
            let mut node = std::mem::MaybeUninit::<sshard_node_metrics>::uninit();
            assert_eq!(
                sshard_metrics_snapshot_node(null(), 0, node.as_mut_ptr(), 64),
                NULL
            );
            let (mut text, mut len) = (null(), 0usize);
            assert_eq!(
                sshard_metrics_snapshot_prometheus(null(), &mut text, &mut len),
                NULL
            );
        }
        assert!(fut.is_null());

        // Futures.
        let mut kind = 0;
        assert_eq!(sshard_future_get_kind(null(), &mut kind), NULL);
        assert_eq!(sshard_future_wait(null()), NULL);
        assert_eq!(sshard_future_wait_timed(null(), 1), NULL);
        assert_eq!(sshard_future_ready(null(), &mut flag), NULL);
        assert_eq!(sshard_future_status(null()), NULL);
        assert_eq!(sshard_future_set_callback(null(), None, null_mut()), NULL);
        assert_eq!(sshard_future_set_queue(null(), null(), 0), NULL);
        let mut e = null();
        assert_eq!(sshard_future_get_error(null(), &mut e), NULL);
        let mut r = null();
        assert_eq!(sshard_future_get_result(null(), &mut r), NULL);
        let mut pr = null();
        assert_eq!(sshard_future_get_prepared(null(), &mut pr), NULL);
        let mut sess = null();
        assert_eq!(sshard_future_get_session(null(), &mut sess), NULL);
        let f = sshard_future::completed(SSHARD_FUTURE_KIND_CLOSE, Ok(Payload::None));
        let fp = Arc::as_ptr(&f);
        assert_eq!(sshard_future_get_kind(fp, null_mut()), NULL);
        assert_eq!(sshard_future_ready(fp, null_mut()), NULL);
        assert_eq!(sshard_future_set_callback(fp, None, null_mut()), NULL);
        assert_eq!(sshard_future_set_queue(fp, null(), 0), NULL);
        assert_eq!(sshard_future_get_error(fp, null_mut()), NULL);
        assert_eq!(sshard_future_get_result(fp, null_mut()), NULL);
        assert_eq!(
            sshard_future_get_prepared(fp, &mut pr),
            SSHARD_STATUS_WRONG_STATE
        );
        assert_eq!(
            sshard_future_get_session(fp, &mut sess),
            SSHARD_STATUS_WRONG_STATE
        );

        // Queues.
        assert_eq!(sshard_queue_new(null_mut()), NULL);
        assert_eq!(sshard_queue_poll(null(), null_mut(), 0, &mut n), NULL);
        assert_eq!(sshard_queue_wait(null(), null_mut(), 0, 0, &mut n), NULL);
        let mut fd = 0;
        assert_eq!(sshard_queue_fd(null(), &mut fd), NULL);
        assert_eq!(sshard_queue_pending(null(), &mut n), NULL);
        let mut q = null();
        assert_eq!(sshard_queue_new(&mut q), 0);
        assert_eq!(sshard_queue_poll(q, null_mut(), 0, null_mut()), NULL);
        assert_eq!(sshard_queue_poll(q, null_mut(), 1, &mut n), NULL);
        assert_eq!(sshard_queue_wait(q, null_mut(), 1, 0, &mut n), NULL);
        assert_eq!(sshard_queue_wait(q, null_mut(), 0, 0, null_mut()), NULL);
        assert_eq!(sshard_queue_fd(q, null_mut()), NULL);
        assert_eq!(sshard_queue_pending(q, null_mut()), NULL);
        assert_eq!(sshard_queue_free(q), 0);

        // Results and rows.
        assert_eq!(sshard_result_row_count(null(), &mut n), NULL);
        assert_eq!(sshard_result_column_count(null(), &mut n), NULL);
        assert_eq!(sshard_result_has_rows(null(), &mut flag), NULL);
        assert_eq!(sshard_result_column_name(null(), 0, &mut p, &mut pl), NULL);
        let mut ty = 0;
        assert_eq!(sshard_result_column_type(null(), 0, &mut ty), NULL);
        assert_eq!(sshard_result_column_data_type(null(), 0, &mut dt), NULL);
        assert_eq!(sshard_result_column_index(null(), t, tl, &mut n), NULL);
        let mut row = null();
        assert_eq!(sshard_result_row(null(), 0, &mut row), NULL);
        assert_eq!(sshard_result_value(null(), 0, 0, &mut v), NULL);
        assert_eq!(sshard_row_value(null(), 0, &mut v), NULL);
        assert_eq!(sshard_row_value_by_name(null(), t, tl, &mut v), NULL);
        assert_eq!(sshard_result_has_more_pages(null(), &mut flag), NULL);
        assert_eq!(sshard_result_paging_state(null(), &mut bp, &mut pl), NULL);
        assert_eq!(sshard_result_coordinator(null(), &mut p, &mut pl), NULL);
        let mut shard = 0;
        assert_eq!(sshard_result_shard(null(), &mut shard), NULL);
        assert_eq!(sshard_result_keyspace(null(), &mut p, &mut pl), NULL);
        let res = arc_into_raw(Arc::new(sshard_result::new(rows_result(), None)));
        assert_eq!(sshard_result_row_count(res, null_mut()), NULL);
        assert_eq!(sshard_result_column_name(res, 0, null_mut(), &mut pl), NULL);
        assert_eq!(sshard_result_column_index(res, null(), 1, &mut n), NULL);
        assert_eq!(sshard_result_row(res, 0, null_mut()), NULL);
        assert_eq!(sshard_result_value(res, 0, 0, null_mut()), NULL);
        assert_eq!(sshard_result_paging_state(res, null_mut(), &mut pl), NULL);
        assert_eq!(sshard_result_row(res, 0, &mut row), 0);
        assert_eq!(sshard_row_value(row, 0, null_mut()), NULL);
        assert_eq!(sshard_row_value_by_name(row, null(), 2, &mut v), NULL);

        // Values.
        assert_eq!(sshard_result_value(res, 0, 0, &mut v), 0);
        let mut i8v = 0i8;
        let mut i16v = 0i16;
        let mut i32v = 0i32;
        let mut i64v = 0i64;
        let mut f32v = 0f32;
        let mut f64v = 0f64;
        let mut buf = [0u8; 16];
        let mut e1 = null();
        let mut e2 = null();
        for value in [null(), v] {
            // NULL view: every call refuses; live view: NULL outputs refused.
            assert_eq!(sshard_value_is_null(value, null_mut()), NULL);
            assert_eq!(sshard_value_type(value, null_mut()), NULL);
            assert_eq!(sshard_value_data_type(value, null_mut()), NULL);
            assert_eq!(sshard_value_get_bool(value, null_mut()), NULL);
            assert_eq!(sshard_value_get_int8(value, null_mut()), NULL);
            assert_eq!(sshard_value_get_int16(value, null_mut()), NULL);
            assert_eq!(sshard_value_get_int32(value, null_mut()), NULL);
            assert_eq!(sshard_value_get_int64(value, null_mut()), NULL);
            assert_eq!(sshard_value_get_counter(value, null_mut()), NULL);
            assert_eq!(sshard_value_get_float(value, null_mut()), NULL);
            assert_eq!(sshard_value_get_double(value, null_mut()), NULL);
            assert_eq!(sshard_value_get_text(value, null_mut(), &mut pl), NULL);
            assert_eq!(sshard_value_get_blob(value, null_mut(), &mut pl), NULL);
            assert_eq!(sshard_value_get_bytes(value, null_mut(), &mut pl), NULL);
            assert_eq!(sshard_value_get_uuid(value, null_mut()), NULL);
            assert_eq!(sshard_value_get_inet(value, null_mut(), &mut pl), NULL);
            assert_eq!(sshard_value_get_date(value, null_mut()), NULL);
            assert_eq!(sshard_value_get_time(value, null_mut()), NULL);
            assert_eq!(sshard_value_get_timestamp(value, null_mut()), NULL);
            assert_eq!(
                sshard_value_get_duration(value, null_mut(), &mut i32v, &mut i64v),
                NULL
            );
            assert_eq!(
                sshard_value_get_decimal(value, null_mut(), &mut pl, &mut i32v),
                NULL
            );
            assert_eq!(sshard_value_get_varint(value, null_mut(), &mut pl), NULL);
            assert_eq!(sshard_value_element_count(value, null_mut()), NULL);
            assert_eq!(sshard_value_element(value, 0, null_mut()), NULL);
            assert_eq!(sshard_value_map_entry(value, 0, null_mut(), &mut e2), NULL);
            assert_eq!(
                sshard_value_field(value, 0, null_mut(), &mut pl, &mut e1),
                NULL
            );
            assert_eq!(sshard_value_field_by_name(value, t, tl, null_mut()), NULL);
        }
        // Wrong getters on an int value.
        const MISMATCH: sshard_status = SSHARD_STATUS_TYPE_MISMATCH;
        assert_eq!(sshard_value_get_int32(v, &mut i32v), 0);
        assert_eq!(i32v, 1);
        assert_eq!(sshard_value_get_bool(v, &mut flag), MISMATCH);
        assert_eq!(sshard_value_get_int8(v, &mut i8v), MISMATCH);
        assert_eq!(sshard_value_get_int16(v, &mut i16v), MISMATCH);
        assert_eq!(sshard_value_get_int64(v, &mut i64v), MISMATCH);
        assert_eq!(sshard_value_get_counter(v, &mut i64v), MISMATCH);
        assert_eq!(sshard_value_get_float(v, &mut f32v), MISMATCH);
        assert_eq!(sshard_value_get_double(v, &mut f64v), MISMATCH);
        assert_eq!(sshard_value_get_blob(v, &mut bp, &mut pl), MISMATCH);
        assert_eq!(sshard_value_get_uuid(v, buf.as_mut_ptr()), MISMATCH);
        assert_eq!(
            sshard_value_get_inet(v, buf.as_mut_ptr(), &mut pl),
            MISMATCH
        );
        assert_eq!(sshard_value_get_time(v, &mut i64v), MISMATCH);
        assert_eq!(sshard_value_get_timestamp(v, &mut i64v), MISMATCH);
        assert_eq!(
            sshard_value_get_duration(v, &mut i32v, &mut i32v, &mut i64v),
            MISMATCH
        );
        assert_eq!(
            sshard_value_get_decimal(v, &mut bp, &mut pl, &mut i32v),
            MISMATCH
        );
        assert_eq!(sshard_value_get_varint(v, &mut bp, &mut pl), MISMATCH);
        assert_eq!(sshard_value_element_count(v, &mut n), MISMATCH);
        assert_eq!(sshard_value_element(v, 0, &mut e1), MISMATCH);
        assert_eq!(sshard_value_map_entry(v, 0, &mut e1, &mut e2), MISMATCH);
        assert_eq!(sshard_value_field(v, 0, &mut p, &mut pl, &mut e1), MISMATCH);
        assert_eq!(sshard_value_field_by_name(v, t, tl, &mut e1), MISMATCH);
        assert_eq!(sshard_result_free(res), 0);
    }
}

#[test]
fn results_expose_warnings_and_the_tracing_id() {
    let traced = QueryResult {
        warnings: vec!["Batch modifying 2 partitions".into(), "second".into()],
        tracing_id: Some([7; 16]),
        ..Default::default()
    };
    let r = arc_into_raw(Arc::new(sshard_result::new(traced, None)));
    let plain = arc_into_raw(Arc::new(sshard_result::new(QueryResult::default(), None)));
    // SAFETY: both results are live until freed at the end; out pointers
    // are valid locals.
    unsafe {
        let mut n = 9;
        assert_eq!(sshard_result_warning_count(r, &mut n), 0);
        assert_eq!(n, 2);
        let (mut p, mut len) = (std::ptr::null(), 0);
        assert_eq!(sshard_result_warning(r, 1, &mut p, &mut len), 0);
        assert_eq!(std::slice::from_raw_parts(p.cast::<u8>(), len), b"second");
        assert_eq!(
            sshard_result_warning(r, 2, &mut p, &mut len),
            SSHARD_STATUS_INDEX_OUT_OF_RANGE
        );
        let mut id = [0u8; 16];
        assert_eq!(sshard_result_tracing_id(r, id.as_mut_ptr()), 0);
        assert_eq!(id, [7; 16]);
        let mut untouched = [1u8; 16];
        assert_eq!(
            sshard_result_tracing_id(plain, untouched.as_mut_ptr()),
            SSHARD_STATUS_NOT_PRESENT
        );
        assert_eq!(untouched, [1; 16]);
        assert_eq!(sshard_result_warning_count(plain, &mut n), 0);
        assert_eq!(n, 0);
        assert_eq!(
            sshard_result_tracing_id(r, std::ptr::null_mut()),
            SSHARD_STATUS_NULL_ARGUMENT
        );
        assert_eq!(sshard_result_free(r), 0);
        assert_eq!(sshard_result_free(plain), 0);
    }
}

/// A result takes at most 3x its frame's bytes whatever its rows' shape,
/// every cell read through a view: many small ints, many NULLs.
#[test]
fn results_stay_within_three_times_their_frame() {
    use crate::protocol::frame::{decode_response, FrameHeader, HEADER_LEN};
    use crate::protocol::response::{ResultBody, Rows};
    use crate::protocol::Response;
    let shapes: [(&str, ColumnType, Option<Vec<u8>>); 2] = [
        ("int", ColumnType::Int, Some(7i32.to_be_bytes().to_vec())),
        ("null", ColumnType::Int, None),
    ];
    for (name, ty, cell) in shapes {
        let count = 200_000;
        let columns = vec![spec("v", ty)];
        let rows = Rows::from_cells(
            ResultMetadata::with_columns(columns),
            vec![vec![cell.clone()]; count],
        )
        .unwrap();
        let frame = crate::protocol::frame::encode_response(
            0,
            &Response::Result(ResultBody::Rows(rows)),
            &Default::default(),
            None,
        )
        .unwrap();
        let header = FrameHeader::parse(frame[..HEADER_LEN].try_into().unwrap()).unwrap();
        let (_, Response::Result(ResultBody::Rows(decoded))) =
            decode_response(&header, &frame[HEADER_LEN..], None).unwrap()
        else {
            panic!("rows expected")
        };
        let result = sshard_result::new(
            QueryResult {
                rows: Some(decoded),
                ..Default::default()
            },
            None,
        );
        let r = arc_into_raw(Arc::new(result));
        // SAFETY: `r` is live until freed below; views used before that.
        unsafe {
            let mut v = null();
            let mut is_null = false;
            for row in 0..count {
                assert_eq!(sshard_result_value(r, row, 0, &mut v), 0);
                assert_eq!(sshard_value_is_null(v, &mut is_null), 0);
                assert_eq!(is_null, cell.is_none());
            }
            let held = (*r).memory();
            assert!(
                held <= 3 * frame.len(),
                "{name}: {held} bytes held for a {} byte frame",
                frame.len()
            );
            assert_eq!(sshard_result_free(r), 0);
        }
    }
}
