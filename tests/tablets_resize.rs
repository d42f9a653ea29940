//! Tablet splits and merges under load (`POST /admin/tablets/split`,
//! `/admin/tablets/merge`): the client's map stays correct by overlap
//! replacement, with the misroute bound of tests/tablets_concurrency.rs
//! (at most twice the tablets a pass has to learn), at 256 in flight.

mod common;
mod session_support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::{wait_until, Emulator};
use scylla_shard::session::{Prepared, Session, Statement};
use session_support::*;

const IN_FLIGHT: usize = 256;
const PASS: usize = 1024;

/// Writes keys `first..first + PASS`, `IN_FLIGHT` at a time; every write
/// must succeed. Returns the routing counters the pass moved.
async fn pass(
    emulator: &Emulator,
    session: &Session,
    prepared: &Arc<Prepared>,
    first: i32,
) -> Routing {
    let before = routing(emulator);
    let next = Arc::new(AtomicUsize::new(0));
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..IN_FLIGHT {
        let (session, prepared, next) = (session.clone(), prepared.clone(), next.clone());
        workers.spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= PASS {
                    return;
                }
                let k = first + i as i32;
                let mut st = Statement::prepared(prepared.clone());
                st.values = vec![int(k), int(k)];
                st.idempotent = true;
                session
                    .execute(&st)
                    .await
                    .unwrap_or_else(|e| panic!("insert {k}: {e}"));
            }
        });
    }
    let all = async {
        while let Some(done) = workers.join_next().await {
            done.expect("worker");
        }
    };
    tokio::time::timeout(Duration::from_secs(120), all)
        .await
        .expect("pass within 120 s");
    let moved = routing(emulator).since(&before);
    assert_eq!(moved.routable, PASS as f64, "{moved:?}");
    moved
}

/// Passes until one is exact (at most `rounds`); each within `bound`.
async fn settle(
    emulator: &Emulator,
    session: &Session,
    prepared: &Arc<Prepared>,
    bound: f64,
    label: &str,
) -> Vec<Routing> {
    let mut passes = Vec::new();
    for round in 0..3 {
        let stats = session.metrics().tablets;
        let moved = pass(emulator, session, prepared, (round * PASS) as i32).await;
        assert!(
            moved.misrouted() <= bound,
            "{label}: {moved:?}; map before {stats:?}, after {:?}",
            session.metrics().tablets
        );
        passes.push(moved);
        if moved.misrouted() == 0.0 {
            return passes;
        }
    }
    panic!("{label}: not exact within 3 passes: {passes:?}");
}

fn entries(session: &Session) -> usize {
    session.metrics().tablets.tablets
}

async fn wait_lapsed(session: &Session) {
    // Nothing tells a client that tablets split, merged or moved: entries
    // stay trusted until no answer confirmed them for the trust window.
    wait_until("learned tablets lapse", STEP, || {
        session.metrics().tablets.trusted == 0
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn splits_and_merges_keep_the_map_correct_within_the_bound() {
    let emulator = Emulator::start(3, 4, &["--tablets"]);
    let session = connect(&emulator).await;
    run(
        &session,
        "CREATE KEYSPACE rs WITH replication = {'class': 'NetworkTopologyStrategy', 'datacenter1': 1} AND tablets = {'enabled': true, 'initial': 8}",
    )
    .await;
    run(&session, "CREATE TABLE rs.t (k int PRIMARY KEY, v int)").await;
    let prepared = session
        .prepare("INSERT INTO rs.t (k, v) VALUES (?, ?)")
        .await
        .expect("prepare");
    wait_pools_filled(&session, 4).await;

    let learn = settle(&emulator, &session, &prepared, 2.0 * 8.0, "8 tablets").await;
    assert_eq!(entries(&session), 8);

    // Split: the halves stay where the tablet was, so the 8 wide entries
    // still route every request right, trusted or not.
    let answer = emulator.admin(0, "/admin/tablets/split?keyspace=rs");
    assert_eq!(answer.trim(), "split 1 tables: rs.t=16");
    let after_split = pass(&emulator, &session, &prepared, 0).await;
    assert_eq!(after_split.misrouted(), 0.0, "{after_split:?}");
    wait_lapsed(&session).await;
    let lapsed = pass(&emulator, &session, &prepared, 0).await;
    assert_eq!(lapsed.misrouted(), 0.0, "{lapsed:?}");

    // The halves move apart: the wide entries are replaced by the narrow
    // ones the payloads describe (overlap replacement).
    //
    // The window: an answer from a half that did not move confirms the
    // whole wide entry (without a payload, tablets-routing-v1 says
    // nothing about the layout), so requests held behind that probe for
    // the other half go out by it until a payload of the new width
    // arrives; then every wider entry is cut into the new tablets (see
    // `TableTablets::conform`). Measured 27 misroutes for 16 tablets
    // (46 before the cut).
    emulator.admin(0, "/admin/tablets/shuffle");
    wait_lapsed(&session).await;
    let moved = settle(
        &emulator,
        &session,
        &prepared,
        2.0 * 16.0,
        "16 tablets, moved",
    )
    .await;
    assert!(moved[0].misrouted() > 0.0, "the shuffle moved tablets");
    assert_eq!(entries(&session), 16, "every wide entry replaced");

    // Merge: the odd siblings take the even ones' replicas, so half the
    // narrow entries are stale; one payload of a merged tablet replaces
    // both of its halves.
    let answer = emulator.admin(0, "/admin/tablets/merge");
    assert_eq!(answer.trim(), "merged 1 tables: rs.t=8");
    wait_lapsed(&session).await;
    let merged = settle(&emulator, &session, &prepared, 2.0 * 8.0, "merged to 8").await;
    eprintln!(
        "learn {learn:?}; after split {after_split:?}, lapsed {lapsed:?}; moved {moved:?}; merged {merged:?}; entries {}",
        entries(&session)
    );
    // Entries for halves nothing contradicted may remain (they still
    // route right); never more than before the merge.
    assert!(entries(&session) <= 16);
    session.close().await;
}
