//! Tablets learned under concurrency: however many requests are in flight
//! when a table's tablets are unknown (or have just moved), the misrouted
//! requests stay within twice the number of tablets the requests touch,
//! and once learned, requests to known tablets never wait.
//!
//! Measured with the emulator's routing counters at 1, 64 and 256 requests
//! in flight, on 8 and 64 tablets, RF 1 and 3, before and after
//! `POST /admin/tablets/shuffle`.

mod common;
mod session_support;

use std::collections::HashSet;
use std::sync::Arc;

use common::Emulator;
use scylla_shard::routing::tablets::tablet_index_of;
use scylla_shard::routing::token::murmur3_token;
use scylla_shard::session::{Prepared, Session};
use session_support::*;

/// Requests per pass for `concurrency` in flight.
fn pass_size(concurrency: usize) -> usize {
    (4 * concurrency).max(256)
}

/// The tablet (of `tablets`) key `k` falls in.
fn tablet_of(k: i32, tablets: usize) -> usize {
    let token = murmur3_token(&k.to_be_bytes());
    tablet_index_of(token.value(), tablets).expect("power of two")
}

/// What one pass did, from the emulator's and the session's counters.
#[derive(Debug)]
struct Pass {
    routing: Routing,
    // Printed with a failure.
    #[allow(dead_code)]
    touched: usize,
    /// Touched tablets the map had no entry for when the pass started.
    unknown: usize,
    held: u64,
    // Printed with a failure, to tell learning from guessing.
    #[allow(dead_code)]
    probes: u64,
    #[allow(dead_code)]
    payloads: u64,
}

impl Pass {
    /// Misroutes within twice the tablets the pass had to learn (a blind
    /// request that happened to reach a replica teaches nothing, so a
    /// touched tablet can stay unknown until a later pass misses it).
    fn assert_bound(&self, label: &str) {
        assert!(
            self.routing.misrouted() <= 2.0 * self.unknown as f64,
            "{label}: {self:?}"
        );
    }
}

/// Writes keys `first..first + count`, `concurrency` requests in flight
/// from the start (every worker's first request leaves at once).
#[allow(clippy::too_many_arguments)] // one call site, through `pass_from`
async fn pass(
    emulator: &Emulator,
    session: &Session,
    prepared: &Arc<Prepared>,
    tablets: usize,
    first: i32,
    count: usize,
    concurrency: usize,
    unknown: usize,
) -> Pass {
    let touched: HashSet<usize> = (first..first + count as i32)
        .map(|k| tablet_of(k, tablets))
        .collect();
    let before = routing(emulator);
    let stats_before = session.metrics().tablets;
    write_keys(session, prepared, first, count, concurrency).await;
    let routing = routing(emulator).since(&before);
    assert_eq!(routing.routable, count as f64, "{routing:?}");
    let stats = session.metrics().tablets;
    Pass {
        routing,
        touched: touched.len(),
        unknown: unknown.min(touched.len()),
        held: stats.requests_held - stats_before.requests_held,
        probes: stats.probes - stats_before.probes,
        payloads: stats.payloads_received - stats_before.payloads_received,
    }
}

/// One table: learn at `concurrency`, converge, shuffle, learn again.
async fn scenario(
    emulator: &Emulator,
    session: &Session,
    tablets: usize,
    rf: usize,
    concurrency: usize,
) {
    let ks = format!("t{tablets}_rf{rf}_c{concurrency}");
    run(
        session,
        &format!(
            "CREATE KEYSPACE {ks} WITH replication = {{'class': 'NetworkTopologyStrategy', \
             'datacenter1': {rf}}} AND tablets = {{'enabled': true, 'initial': {tablets}}}"
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
    let count = pass_size(concurrency);
    let label = format!("{tablets} tablets, RF {rf}, {concurrency} in flight");

    let entries_before = session.metrics().tablets.tablets;
    let unknown = |session: &Session| tablets + entries_before - session.metrics().tablets.tablets;
    let pass_from = |first: i32, unknown: usize| {
        pass(
            emulator,
            session,
            &prepared,
            tablets,
            first,
            count,
            concurrency,
            unknown,
        )
    };

    let learn = pass_from(0, tablets).await;
    learn.assert_bound(&format!("{label}, unknown tablets"));
    let known = pass_from(0, unknown(session)).await;
    known.assert_bound(&format!("{label}, learned"));
    if known.unknown == 0 {
        assert_eq!(
            known.held, 0,
            "{label}: known tablets never wait: {known:?}"
        );
    }

    emulator.admin(0, "/admin/tablets/shuffle");
    // Nothing tells a client that tablets moved: entries stay trusted
    // until no answer confirmed them for the trust window (a burst right
    // after a migration goes by them, as requests in flight do). Once
    // they lapse, one request per tablet checks before the rest follow.
    common::wait_until("learned tablets lapse", STEP, || {
        session.metrics().tablets.trusted == 0
    })
    .await;
    // Every touched tablet may have moved.
    let moved = pass_from(count as i32, tablets).await;
    moved.assert_bound(&format!("{label}, after a shuffle"));
    assert!(
        moved.routing.misrouted() > 0.0,
        "{label}: the shuffle moved tablets: {moved:?}"
    );
    // Entries learned while the layout was changing stay in doubt until a
    // request sent after the doubt confirms them: a pass may still probe
    // (never misroute) before requests to every tablet go straight.
    let mut again = Vec::new();
    for _ in 0..3 {
        let pass = pass_from(0, unknown(session)).await;
        pass.assert_bound(&format!("{label}, relearning"));
        let settled = pass.held == 0 && pass.routing.misrouted() == 0.0;
        again.push(pass);
        if settled {
            break;
        }
    }
    assert!(
        again
            .last()
            .is_some_and(|p| p.held == 0 && p.routing.misrouted() == 0.0),
        "{label}: settled within 3 passes after the shuffle: {again:?}"
    );
    eprintln!("{label}: learn {learn:?}; after shuffle {moved:?}; then {again:?}");
}

async fn scenarios(tablets: usize, rf: usize) {
    let emulator = Emulator::start(3, 4, &["--tablets"]);
    let session = connect(&emulator).await;
    wait_pools_filled(&session, 4).await;
    for concurrency in [1, 64, 256] {
        scenario(&emulator, &session, tablets, rf, concurrency).await;
    }
    session.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eight_tablets_rf1() {
    scenarios(8, 1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eight_tablets_rf3() {
    scenarios(8, 3).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sixty_four_tablets_rf1() {
    scenarios(64, 1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sixty_four_tablets_rf3() {
    scenarios(64, 3).await;
}
