//! The routing truth: for a request on one partition, is the coordinator a
//! replica, and is the connection's shard the one that owns the data? For
//! tablet tables a misroute also earns a `tablets-routing-v1` payload.

use scylla_shard::routing::token::Token;

use super::schema::Table;
use super::{ExecContext, RoutingVerdict};

#[derive(Debug, Clone)]
pub struct RoutingFacts {
    pub verdict: RoutingVerdict,
    pub payload: Option<Vec<u8>>,
}

/// Judges where a request on `token` of `table` landed.
pub fn judge(ctx: &ExecContext<'_>, table: &Table, token: Token) -> RoutingFacts {
    let me = ctx.node.info.index;
    if let Some(layout) = &table.tablets {
        let layout = layout.lock().unwrap();
        let index = layout.tablet_of(token.value());
        let replicas = &layout.tablets[index];
        let verdict = match replicas.iter().find(|r| r.node == me) {
            None => RoutingVerdict {
                misrouted_node: true,
                misrouted_shard: false,
            },
            Some(r) => RoutingVerdict {
                misrouted_node: false,
                misrouted_shard: r.shard != ctx.shard,
            },
        };
        let misrouted = verdict.misrouted_node || verdict.misrouted_shard;
        let payload = (misrouted && ctx.tablets_routing_v1).then(|| {
            layout
                .routing_info(index, &ctx.db.membership().nodes)
                .encode()
        });
        return RoutingFacts { verdict, payload };
    }
    let catalog = ctx.db.catalog.read().unwrap();
    let is_replica = catalog
        .keyspaces
        .get(&table.schema.keyspace)
        .map(|ks| {
            ctx.db
                .membership()
                .ring
                .replicas(&ks.strategy, token)
                .contains(&me)
        })
        .unwrap_or(true);
    RoutingFacts {
        verdict: RoutingVerdict {
            misrouted_node: !is_replica,
            misrouted_shard: is_replica && ctx.db.sharder.shard_of(token) != ctx.shard,
        },
        payload: None,
    }
}
