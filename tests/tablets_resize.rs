//! Tablet splits and merges under load (`POST /admin/tablets/split`,
//! `/admin/tablets/merge`): the client's map stays correct by overlap
//! replacement, with the misroute bound of tests/tablets_concurrency.rs
//! (at most twice the tablets a pass has to learn), at 1, 64 and 256 in
//! flight, RF 1 and 3.

mod common;
mod session_support;

use std::sync::Arc;

use common::{wait_until, Emulator};
use scylla_shard::session::{Prepared, Session};
use session_support::*;

const PASS: usize = 1024;

/// One table under test, written `in_flight` requests at a time.
struct Load<'a> {
    emulator: &'a Emulator,
    session: &'a Session,
    prepared: Arc<Prepared>,
    in_flight: usize,
}

/// Writes keys `first..first + PASS`, `in_flight` at a time; every write
/// must succeed. Returns the routing counters the pass moved.
async fn pass(load: &Load<'_>, first: i32) -> Routing {
    let Load {
        emulator,
        session,
        prepared,
        in_flight,
    } = load;
    let before = routing(emulator);
    write_keys(session, prepared, first, PASS, *in_flight).await;
    let moved = routing(emulator).since(&before);
    assert_eq!(moved.routable, PASS as f64, "{moved:?}");
    moved
}

/// Passes until one is exact (at most 3); each within `bound`.
async fn settle(load: &Load<'_>, bound: f64, label: &str) -> Vec<Routing> {
    let session = load.session;
    let mut passes = Vec::new();
    for round in 0..3 {
        let stats = session.metrics().tablets;
        let moved = pass(load, (round * PASS) as i32).await;
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

async fn wait_lapsed(session: &Session) {
    // Nothing tells a client that tablets split, merged or moved: entries
    // stay trusted until no answer confirmed them for the trust window.
    wait_until("learned tablets lapse", STEP, || {
        session.metrics().tablets.trusted == 0
    })
    .await;
}

/// One keyspace of 8 tablets at RF `rf`: learn, split, move the halves,
/// merge; every pass within the bound, the map exact after each step.
async fn scenario(emulator: &Emulator, session: &Session, rf: usize, in_flight: usize) {
    let ks = format!("rs{rf}_{in_flight}");
    run(
        session,
        &format!(
            "CREATE KEYSPACE {ks} WITH replication = {{'class': 'NetworkTopologyStrategy', \
             'datacenter1': {rf}}} AND tablets = {{'enabled': true, 'initial': 8}}"
        ),
    )
    .await;
    run(
        session,
        &format!("CREATE TABLE {ks}.t (k int PRIMARY KEY, v int)"),
    )
    .await;
    let prepared = session
        .prepare(&format!("INSERT INTO {ks}.t (k, v) VALUES (?, ?)"))
        .await
        .expect("prepare");
    let load = Load {
        emulator,
        session,
        prepared,
        in_flight,
    };
    let label = format!("RF {rf}, {in_flight} in flight");
    let entries = || session.metrics().tablets.tablets;
    let before = entries();

    let learn = settle(&load, 2.0 * 8.0, &format!("{label}: 8 tablets")).await;
    assert_eq!(entries() - before, 8);

    // Split: the halves stay where the tablet was, so the 8 wide entries
    // still route every request right, trusted or not; once they lapse,
    // each is checked a half at a time (see
    // `TableTablets::confirm_suspect`).
    let answer = emulator.admin(0, &format!("/admin/tablets/split?keyspace={ks}"));
    assert_eq!(answer.trim(), format!("split 1 tables: {ks}.t=16"));
    let after_split = pass(&load, 0).await;
    assert_eq!(after_split.misrouted(), 0.0, "{label}: {after_split:?}");
    wait_lapsed(session).await;
    let lapsed = pass(&load, 0).await;
    assert_eq!(lapsed.misrouted(), 0.0, "{label}: {lapsed:?}");

    // The halves move apart: the wide entries give way to the narrow ones
    // the payloads describe (overlap replacement), one misroute per moved
    // half. Before the halving, an answer from the unmoved half confirmed
    // the whole wide entry and 39-50 requests went to the moved half.
    emulator.admin(0, "/admin/tablets/shuffle");
    wait_lapsed(session).await;
    let moved = settle(&load, 2.0 * 16.0, &format!("{label}: 16 tablets, moved")).await;
    assert!(
        moved[0].misrouted() > 0.0,
        "{label}: the shuffle moved tablets"
    );
    // Halves that landed together may stay one entry (they route alike).
    assert!(
        (before + 8..=before + 16).contains(&entries()),
        "{}",
        entries()
    );

    // Merge: the odd siblings take the even ones' replicas, so half the
    // narrow entries are stale; one payload of a merged tablet replaces
    // both of its halves.
    let answer = emulator.admin(0, &format!("/admin/tablets/merge?keyspace={ks}"));
    assert_eq!(answer.trim(), format!("merged 1 tables: {ks}.t=8"));
    wait_lapsed(session).await;
    let merged = settle(&load, 2.0 * 8.0, &format!("{label}: merged to 8")).await;
    eprintln!(
        "{label}: learn {learn:?}; after split {after_split:?}, lapsed {lapsed:?}; \
         moved {moved:?}; merged {merged:?}; entries {}",
        entries() - before
    );
    assert!(entries() - before <= 8, "{}", entries() - before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn splits_and_merges_keep_the_map_correct_within_the_bound() {
    let emulator = Emulator::start(3, 4, &["--tablets"]);
    let session = connect(&emulator).await;
    wait_pools_filled(&session, 4).await;
    for (rf, in_flight) in [(1, 256), (3, 256), (1, 64), (3, 1)] {
        scenario(&emulator, &session, rf, in_flight).await;
    }
    session.close().await;
}
