//! Replicas of one request: vnode keyspaces from the precomputed ring
//! (shard = the node's sharder applied to the token), tablet tables from
//! the tablet map (shard as the server reported it). A tablet the map does
//! not know yields no replicas: the plan then picks any node and the
//! server's `tablets-routing-v1` answer fills the map.

use crate::cluster::{ClusterState, TabletMap};
use crate::protocol::tablets_payload::{TabletRoutingInfo, TABLETS_ROUTING_V1_KEY};
use crate::protocol::ResponseExtensions;
use crate::routing::plan::Target;
use crate::routing::token::Token;

/// What routing knows about one request.
#[derive(Debug, Clone, Copy)]
pub struct RoutingInfo<'a> {
    pub keyspace: &'a str,
    pub table: &'a str,
    pub token: Token,
}

/// Writes the replicas of `info` into `out` (cleared first), primary first.
pub fn replicas(
    state: &ClusterState,
    tablets: &TabletMap,
    tablet_awareness: bool,
    info: &RoutingInfo<'_>,
    out: &mut Vec<Target>,
) {
    out.clear();
    let Some(keyspace) = state.keyspace(info.keyspace) else {
        return;
    };
    if keyspace.uses_tablets {
        if tablet_awareness {
            tablets.with_tablet(info.keyspace, info.table, info.token.value(), |tablet| {
                // Unknown hosts are skipped until the topology names them.
                out.extend(tablet.replicas.iter().filter_map(|(host, shard)| {
                    Some(Target {
                        node: state.node_index_by_host_id(host)?,
                        shard: Some(*shard),
                    })
                }));
            });
        }
        return;
    }
    for &node in state.vnode_replicas(info.keyspace, info.token).iter() {
        let shard = state
            .node(node)
            .and_then(|n| n.pool())
            .and_then(|p| p.sharder())
            .map(|s| s.shard_of(info.token));
        out.push(Target { node, shard });
    }
}

/// Records the tablet a response's custom payload describes, if any.
pub fn learn_tablet(tablets: &TabletMap, info: &RoutingInfo<'_>, extensions: &ResponseExtensions) {
    let Some(raw) = extensions
        .custom_payload
        .as_ref()
        .and_then(|p| p.get(TABLETS_ROUTING_V1_KEY))
    else {
        return;
    };
    match TabletRoutingInfo::decode(raw) {
        Ok(tablet) => tablets.record(info.keyspace, info.table, &tablet),
        Err(e) => tracing::warn!(
            keyspace = info.keyspace,
            table = info.table,
            error = %e,
            "ignoring an invalid tablets-routing-v1 payload"
        ),
    }
}
