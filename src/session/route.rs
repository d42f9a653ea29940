//! Replicas of one request: vnode keyspaces from the precomputed ring
//! (shard = the node's sharder applied to the token), tablet tables from
//! the tablet map (shard as the server reported it).
//!
//! A tablet the map cannot route without doubt (no entry, or a suspect
//! one: in doubt after a layout change, or not confirmed lately) goes
//! through [`learn`]: one request per region probes (sent anywhere, or by
//! the suspect entry), and the requests behind it wait for its answer,
//! bounded in time; see `cluster/tablet_learning.rs` for why and what it
//! costs. Every answer without payload from a replica the map named
//! confirms the entry, which keeps it trusted.

use std::time::Instant;

use crate::cluster::{Admission, ClusterState, LearningTicket, Lookup, Region, TabletMap};
use crate::protocol::tablets_payload::{TabletRoutingInfo, TABLETS_ROUTING_V1_KEY};
use crate::protocol::ResponseExtensions;
use crate::routing::plan::Target;
use crate::routing::token::Token;

/// Rounds of waiting for probes one request goes through at most. An
/// answer usually settles it; the first payload of a table only reveals
/// its layout (a second round), and a blind probe that happened to reach a
/// replica brings no payload (another round, each less likely).
const MAX_LEARNING_ROUNDS: usize = 8;

/// What routing knows about one request.
#[derive(Debug, Clone, Copy)]
pub struct RoutingInfo<'a> {
    pub keyspace: &'a str,
    pub table: &'a str,
    pub token: Token,
    /// A misroute would bring a tablet payload (the key is bound with
    /// markers and the request is not a batch); only such requests learn,
    /// probe and confirm.
    pub learns: bool,
}

/// How [`replicas`] found them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resolution {
    /// From the ring (or there is nothing to route by).
    Direct,
    /// From a trusted tablet entry.
    Tablet,
    /// A tablet table without a trusted entry for the token: `region` is
    /// what one probe would learn; `hinted` if an unconfirmed entry's
    /// replicas were written; `check`, the one of them no answer vouched
    /// for yet, which a probe should ask.
    Learn {
        region: Region,
        hinted: bool,
        check: Option<Target>,
    },
}

/// Writes the replicas of `info` into `out` (cleared first), primary first.
pub fn replicas(
    state: &ClusterState,
    tablets: &TabletMap,
    tablet_awareness: bool,
    info: &RoutingInfo<'_>,
    out: &mut Vec<Target>,
) -> Resolution {
    out.clear();
    let Some(keyspace) = state.keyspace(info.keyspace) else {
        return Resolution::Direct;
    };
    if keyspace.uses_tablets {
        if !tablet_awareness {
            return Resolution::Direct;
        }
        let learns = info.learns;
        let mut push = |replicas: &[([u8; 16], u16)]| {
            // Unknown hosts are skipped until the topology names them.
            out.extend(replicas.iter().filter_map(|(host, shard)| {
                Some(Target {
                    node: state.node_index_by_host_id(host)?,
                    shard: Some(*shard),
                })
            }));
        };
        let token = info.token.value();
        return tablets.lookup(info.keyspace, info.table, token, |found| match found {
            Lookup::Trusted(tablet) => {
                push(&tablet.replicas);
                Resolution::Tablet
            }
            Lookup::Unconfirmed(tablet) => {
                push(&tablet.replicas);
                if !learns {
                    return Resolution::Direct;
                }
                let check = tablet.unverified_replica().and_then(|i| {
                    let (host, shard) = tablet.replicas[i];
                    Some(Target {
                        node: state.node_index_by_host_id(&host)?,
                        shard: Some(shard),
                    })
                });
                Resolution::Learn {
                    region: Region {
                        first: tablet.first,
                        last: tablet.last,
                    },
                    hinted: true,
                    check,
                }
            }
            Lookup::Unknown(_) if !learns => Resolution::Direct,
            Lookup::Unknown(region) => Resolution::Learn {
                region,
                hinted: false,
                check: None,
            },
        });
    }
    for &node in state.vnode_replicas(info.keyspace, info.token).iter() {
        let shard = state
            .node(node)
            .and_then(|n| n.pool())
            .and_then(|p| p.sharder())
            .map(|s| s.shard_of(info.token));
        out.push(Target { node, shard });
    }
    Resolution::Direct
}

/// What a request learning its tablet holds while it runs.
#[derive(Default)]
pub struct Learning {
    /// Set when this request is the probe of its region.
    pub ticket: Option<LearningTicket>,
    /// The replicas came from a map entry (trusted or suspect): a plain
    /// answer from one of them confirms it.
    pub by_map: bool,
}

impl Learning {
    /// A request that routed by `resolution` without learning.
    pub fn routed(resolution: Resolution) -> Learning {
        Learning {
            ticket: None,
            by_map: matches!(
                resolution,
                Resolution::Tablet | Resolution::Learn { hinted: true, .. }
            ),
        }
    }
}

/// For a request [`replicas`] answered `Learn` for: becomes its region's
/// probe, or waits (until `deadline` at most) for the probe in flight and
/// routes by what it taught. `out` holds the replicas to use afterwards.
pub async fn learn(
    state: &ClusterState,
    tablets: &TabletMap,
    info: &RoutingInfo<'_>,
    out: &mut Vec<Target>,
    deadline: Instant,
) -> Learning {
    for _ in 0..MAX_LEARNING_ROUNDS {
        let resolution = replicas(state, tablets, true, info, out);
        let Resolution::Learn {
            region,
            hinted,
            check,
        } = resolution
        else {
            return Learning::routed(resolution);
        };
        let admission =
            tablets
                .learning
                .admit(info.keyspace, info.table, info.token.value(), region);
        match admission {
            Admission::Probe(ticket) => {
                if let Some(replica) = check {
                    // Ask the replica nothing vouched for yet: the others
                    // answered for themselves.
                    out.clear();
                    out.push(replica);
                }
                return Learning {
                    ticket: Some(ticket),
                    by_map: hinted,
                };
            }
            Admission::Wait(probe) => {
                let until = deadline.min(Instant::now() + tablets.learning.hold_limit());
                if !probe.wait(until).await {
                    break;
                }
            }
        }
    }
    // Waited long enough: go by what the map says now.
    Learning::routed(replicas(state, tablets, true, info, out))
}

/// Records the tablet a response's custom payload describes, if any, as
/// learned from a request sent at `sequence`; whether there was one.
pub fn learn_tablet(
    tablets: &TabletMap,
    info: &RoutingInfo<'_>,
    extensions: &ResponseExtensions,
    sequence: u64,
) -> bool {
    let Some(raw) = extensions
        .custom_payload
        .as_ref()
        .and_then(|p| p.get(TABLETS_ROUTING_V1_KEY))
    else {
        return false;
    };
    match TabletRoutingInfo::decode(raw) {
        Ok(tablet) => {
            tablets.record_at(info.keyspace, info.table, &tablet, sequence);
        }
        Err(e) => tracing::warn!(
            keyspace = info.keyspace,
            table = info.table,
            error = %e,
            "ignoring an invalid tablets-routing-v1 payload"
        ),
    }
    true
}
