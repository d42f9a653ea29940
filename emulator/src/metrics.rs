//! Per-node counters of what clients did, served as Prometheus text.

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};

/// Which listener accepted a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PortKind {
    Regular,
    ShardAware,
}

/// Counters of one shard.
#[derive(Debug, Default)]
pub struct ShardCounters {
    pub accepted_regular: AtomicU64,
    pub accepted_shard_aware: AtomicU64,
    pub current_connections: AtomicU64,
    /// Open connections accepted through the regular port: the regular
    /// listener balances on its own connections only, as Seastar does.
    pub current_regular: AtomicU64,
    pub requests: AtomicU64,
    pub misrouted_node: AtomicU64,
    pub misrouted_shard: AtomicU64,
    pub tablet_payloads: AtomicU64,
    /// Connections that sent REGISTER (a driver's control connection), so
    /// storms can count them apart from the pools.
    pub registered: AtomicU64,
    /// Routable requests (single partition, key known) that reached this
    /// shard: the denominator of the misroute counters.
    pub routable_requests: AtomicU64,
}

/// Picks one counter of a shard.
type CounterOf = fn(&ShardCounters) -> &AtomicU64;

/// Counters of one node, indexed by shard.
#[derive(Debug)]
pub struct NodeMetrics {
    pub shards: Vec<ShardCounters>,
}

fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

impl NodeMetrics {
    pub fn new(shards: u16) -> NodeMetrics {
        NodeMetrics {
            shards: (0..shards).map(|_| ShardCounters::default()).collect(),
        }
    }

    pub fn shard(&self, shard: u16) -> &ShardCounters {
        &self.shards[shard as usize]
    }

    pub fn connection_opened(&self, shard: u16, port: PortKind) {
        let s = self.shard(shard);
        match port {
            PortKind::Regular => {
                bump(&s.accepted_regular);
                bump(&s.current_regular);
            }
            PortKind::ShardAware => bump(&s.accepted_shard_aware),
        }
        bump(&s.current_connections);
    }

    pub fn connection_closed(&self, shard: u16, port: PortKind) {
        let s = self.shard(shard);
        s.current_connections.fetch_sub(1, Ordering::Relaxed);
        if port == PortKind::Regular {
            s.current_regular.fetch_sub(1, Ordering::Relaxed);
        }
    }

    pub fn request(&self, shard: u16) {
        bump(&self.shard(shard).requests);
    }

    pub fn routable(&self, shard: u16) {
        bump(&self.shard(shard).routable_requests);
    }

    pub fn misrouted_node(&self, shard: u16) {
        bump(&self.shard(shard).misrouted_node);
    }

    pub fn misrouted_shard(&self, shard: u16) {
        bump(&self.shard(shard).misrouted_shard);
    }

    pub fn tablet_payload(&self, shard: u16) {
        bump(&self.shard(shard).tablet_payloads);
    }

    pub fn registered(&self, shard: u16) {
        bump(&self.shard(shard).registered);
    }

    /// The shard a new regular-port connection goes to: the one with the
    /// fewest open regular-port connections, ties to the lowest id.
    pub fn least_loaded_shard(&self) -> u16 {
        let mut best = 0;
        let mut best_count = u64::MAX;
        for (shard, s) in self.shards.iter().enumerate() {
            let count = s.current_regular.load(Ordering::Relaxed);
            if count < best_count {
                best = shard as u16;
                best_count = count;
            }
        }
        best
    }

    /// The Prometheus text exposition of every counter.
    pub fn render(&self, port: u16, shard_aware_port: u16, node_up: bool) -> String {
        let mut out = String::new();
        let metric = |out: &mut String, name: &str, kind: &str, help: &str| {
            let _ = writeln!(out, "# HELP {name} {help}");
            let _ = writeln!(out, "# TYPE {name} {kind}");
        };
        metric(
            &mut out,
            "emulator_connections_accepted_total",
            "counter",
            "Connections accepted, per listening port and shard.",
        );
        for (shard, s) in self.shards.iter().enumerate() {
            for (p, counter) in [
                (port, &s.accepted_regular),
                (shard_aware_port, &s.accepted_shard_aware),
            ] {
                let _ = writeln!(
                    out,
                    "emulator_connections_accepted_total{{port=\"{p}\",shard=\"{shard}\"}} {}",
                    counter.load(Ordering::Relaxed)
                );
            }
        }
        let per_shard: [(&str, &str, &str, CounterOf); 7] = [
            (
                "emulator_connections_current",
                "gauge",
                "Open client connections per shard.",
                |s| &s.current_connections,
            ),
            (
                "emulator_requests_total",
                "counter",
                "Requests served per shard (every opcode but STARTUP/OPTIONS/AUTH).",
                |s| &s.requests,
            ),
            (
                "emulator_routable_requests_total",
                "counter",
                "Single-partition user-table requests naming their full partition key.",
                |s| &s.routable_requests,
            ),
            (
                "emulator_misrouted_node_total",
                "counter",
                "Routable requests that reached a node which is not a replica.",
                |s| &s.misrouted_node,
            ),
            (
                "emulator_misrouted_shard_total",
                "counter",
                "Routable requests that reached a replica on a shard that does not own the data.",
                |s| &s.misrouted_shard,
            ),
            (
                "emulator_tablet_payloads_sent_total",
                "counter",
                "RESULTs that carried a tablets-routing-v1 payload.",
                |s| &s.tablet_payloads,
            ),
            (
                "emulator_connections_registered_total",
                "counter",
                "Connections that sent REGISTER (drivers' control connections).",
                |s| &s.registered,
            ),
        ];
        for (name, kind, help, field) in per_shard {
            metric(&mut out, name, kind, help);
            for (shard, s) in self.shards.iter().enumerate() {
                let _ = writeln!(
                    out,
                    "{name}{{shard=\"{shard}\"}} {}",
                    field(s).load(Ordering::Relaxed)
                );
            }
        }
        metric(
            &mut out,
            "emulator_node_up",
            "gauge",
            "1 while the node serves CQL.",
        );
        let _ = writeln!(out, "emulator_node_up {}", u8::from(node_up));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_per_shard() {
        let m = NodeMetrics::new(2);
        m.connection_opened(1, PortKind::ShardAware);
        m.request(1);
        m.misrouted_shard(0);
        let text = m.render(9042, 19042, true);
        assert!(text.contains("emulator_connections_accepted_total{port=\"19042\",shard=\"1\"} 1"));
        assert!(text.contains("emulator_connections_accepted_total{port=\"9042\",shard=\"1\"} 0"));
        assert!(text.contains("emulator_connections_current{shard=\"1\"} 1"));
        assert!(text.contains("emulator_requests_total{shard=\"1\"} 1"));
        assert!(text.contains("emulator_misrouted_shard_total{shard=\"0\"} 1"));
        m.connection_opened(0, PortKind::Regular);
        assert_eq!(m.least_loaded_shard(), 1);
        m.connection_closed(0, PortKind::Regular);
        assert_eq!(m.least_loaded_shard(), 0);
    }
}
