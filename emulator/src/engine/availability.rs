//! Availability: a request on a partition needs as many live replicas as
//! its consistency level blocks for, counted as Scylla counts them
//! (`db::assure_sufficient_live_nodes`): QUORUM and ALL from the keyspace's
//! replication factor, the LOCAL_ levels from the coordinator's
//! datacenter, EACH_QUORUM per datacenter. Short of that the coordinator
//! answers Unavailable (0x1000) with `required` and `alive`, so data whose
//! replicas are all down is never served, and a level above the
//! replication factor (THREE on RF 1) fails even with every node up.

use scylla_shard::protocol::response::{error_code, ErrorBody, ErrorDetails};
use scylla_shard::protocol::Consistency;
use scylla_shard::routing::replication::ReplicationStrategy;
use scylla_shard::routing::token::Token;

use super::error::{invalid, EngineError};
use super::schema::Table;
use super::{tablets_rf, ExecContext};

/// Replication factor per datacenter of `table`'s keyspace, and its
/// replicas of `token` (node indexes).
fn placement(
    ctx: &ExecContext<'_>,
    table: &Table,
    token: Token,
) -> (Vec<(String, usize)>, Vec<usize>) {
    let catalog = ctx.db.catalog.read().unwrap();
    let Some(ks) = catalog.keyspaces.get(&table.schema.keyspace) else {
        return (Vec::new(), Vec::new());
    };
    let membership = ctx.db.membership();
    let per_dc = match &ks.strategy {
        ReplicationStrategy::NetworkTopology { per_dc } => per_dc.clone(),
        ReplicationStrategy::Simple { rf } => vec![(String::new(), *rf)],
        _ => tablets_rf(ctx.db, ks),
    };
    let replicas = match &table.tablets {
        Some(layout) => {
            let layout = layout.lock().unwrap();
            let index = layout.tablet_of(token.value());
            layout.tablets[index].iter().map(|r| r.node).collect()
        }
        None => membership.ring.replicas(&ks.strategy, token),
    };
    (per_dc, replicas)
}

fn unavailable(consistency: Consistency, required: usize, alive: usize) -> EngineError {
    EngineError(ErrorBody {
        code: error_code::UNAVAILABLE,
        message: format!(
            "Cannot achieve consistency level for cl {consistency}. Requires {required}, alive {alive}"
        ),
        details: ErrorDetails::Unavailable {
            consistency,
            required: required as i32,
            alive: alive as i32,
        },
    })
}

/// Checks that a request at `consistency` on `token` of `table` can be
/// served now; `write` tells reads from writes (ANY and EACH_QUORUM are
/// write-only levels).
pub fn check(
    ctx: &ExecContext<'_>,
    table: &Table,
    token: Token,
    consistency: Consistency,
    write: bool,
) -> Result<(), EngineError> {
    if !write && consistency == Consistency::Any {
        return Err(invalid("ANY ConsistencyLevel is only supported for writes"));
    }
    if !write && consistency == Consistency::EachQuorum {
        return Err(invalid(
            "EACH_QUORUM ConsistencyLevel is only supported for writes",
        ));
    }
    let (per_dc, replicas) = placement(ctx, table, token);
    let db = ctx.db;
    let membership = db.membership();
    let dc_of = |node: usize| membership.nodes.get(node).map(|n| n.datacenter.as_str());
    let local_dc = ctx.node.info.datacenter.as_str();
    let total_rf: usize = per_dc.iter().map(|(_, rf)| rf).sum();
    // SimpleStrategy has no datacenters: its LOCAL_ levels cover the ring.
    let simple = per_dc.iter().all(|(dc, _)| dc.is_empty());
    let rf_in = |dc: &str| -> usize {
        if simple {
            total_rf
        } else {
            per_dc
                .iter()
                .filter(|(d, _)| d == dc)
                .map(|(_, rf)| rf)
                .sum()
        }
    };
    let alive_in = |dc: Option<&str>| {
        db.live_count(
            replicas
                .iter()
                .copied()
                .filter(|&r| simple || dc.is_none() || dc_of(r) == dc),
        )
    };
    let (required, alive) = match consistency {
        // A hint on the coordinator is enough.
        Consistency::Any => return Ok(()),
        Consistency::One => (1, alive_in(None)),
        Consistency::Two => (2, alive_in(None)),
        Consistency::Three => (3, alive_in(None)),
        Consistency::Quorum | Consistency::Serial => (total_rf / 2 + 1, alive_in(None)),
        Consistency::All => (total_rf, alive_in(None)),
        Consistency::LocalOne => (1, alive_in(Some(local_dc))),
        Consistency::LocalQuorum | Consistency::LocalSerial => {
            (rf_in(local_dc) / 2 + 1, alive_in(Some(local_dc)))
        }
        Consistency::EachQuorum => {
            for (dc, rf) in &per_dc {
                let (required, alive) = (rf / 2 + 1, alive_in(Some(dc)));
                if alive < required {
                    return Err(unavailable(consistency, required, alive));
                }
            }
            return Ok(());
        }
    };
    if alive < required {
        return Err(unavailable(consistency, required, alive));
    }
    Ok(())
}
