//! A session's metrics in the Prometheus text exposition format (version
//! 0.0.4), for programs that serve them on their own metrics endpoint.

use std::fmt::Write as _;

use super::latency::LatencySummary;
use super::metrics::{NodeMetrics, SessionMetrics};

const PREFIX: &str = "scylla_shard";

impl SessionMetrics {
    /// The metrics as Prometheus text: one family per metric, with HELP
    /// and TYPE lines, per-node series labelled by address, datacenter and
    /// rack.
    pub fn to_prometheus(&self) -> String {
        render(self)
    }
}

fn render(m: &SessionMetrics) -> String {
    let mut out = Exposition::default();
    let e = &m.errors_by_kind;
    out.family(
        "requests_total",
        "counter",
        "Requests accepted from the caller (execute, batch, prepare).",
    )
    .sample("", m.requests);
    let errors = out.family(
        "errors_total",
        "counter",
        "Failed requests by the kind of their final error.",
    );
    for (kind, n) in [
        ("client_timeout", e.client_timeouts),
        ("server_timeout", e.server_timeouts),
        ("unavailable", e.unavailable),
        ("overloaded", e.overloaded),
        ("other_server", e.other_server),
        ("connection", e.connection),
        ("no_host", e.no_host),
        ("client", e.client),
    ] {
        errors.sample(&format!("kind=\"{kind}\""), n);
    }
    out.family(
        "retries_total",
        "counter",
        "Attempts beyond the first of each request.",
    )
    .sample("", m.retries);
    let decisions = out.family(
        "retry_decisions_total",
        "counter",
        "Retry policy decisions after failed attempts.",
    );
    let d = &m.retry_decisions;
    for (decision, n) in [
        ("same_target", d.same_target),
        ("next_target", d.next_target),
        ("downgraded", d.downgraded),
        ("ignored", d.ignored),
        ("rethrown", d.rethrown),
    ] {
        decisions.sample(&format!("decision=\"{decision}\""), n);
    }
    out.family(
        "speculative_executions_total",
        "counter",
        "Speculative attempts started.",
    )
    .sample("", m.speculative_executions);
    out.family(
        "speculative_wins_total",
        "counter",
        "Requests a speculative attempt answered first.",
    )
    .sample("", m.speculative_wins);
    out.family(
        "in_flight",
        "gauge",
        "Requests admitted and not yet completed.",
    )
    .sample("", m.in_flight);
    out.latency(
        "request_latency_seconds",
        "Latency of caller requests.",
        [("", &m.latency)],
    );
    out.family(
        "prepared_cached",
        "gauge",
        "Prepared statements in the session's cache.",
    )
    .sample("", m.prepared_cached as u64);
    out.family("tablet_tables", "gauge", "Tables in the tablet map.")
        .sample("", m.tablets.tables as u64);
    out.family("tablets", "gauge", "Tablets in the tablet map.")
        .sample("", m.tablets.tablets as u64);
    out.family(
        "tablet_payloads_total",
        "counter",
        "tablets-routing-v1 payloads received.",
    )
    .sample("", m.tablets.payloads_received);

    let labels: Vec<String> = m.nodes.iter().map(node_labels).collect();
    let nodes = || m.nodes.iter().zip(labels.iter());
    out.per_node(
        "node_up",
        "gauge",
        "1 while the node is up as far as the driver knows.",
        nodes(),
        |n| u64::from(n.up),
    );
    out.per_node(
        "node_shards",
        "gauge",
        "Shards of the node (0: not known yet).",
        nodes(),
        |n| n.nr_shards.map_or(0, u64::from),
    );
    let connections = out.family(
        "connections",
        "gauge",
        "Live connections per node and shard.",
    );
    for (node, l) in nodes() {
        for (shard, n) in node.connections_per_shard.iter().enumerate() {
            connections.sample(&format!("{l},shard=\"{shard}\""), *n as u64);
        }
    }
    let requests = out.family(
        "node_requests_total",
        "counter",
        "Attempts sent per node and shard (shard \"other\": unknown).",
    );
    for (node, l) in nodes() {
        for (shard, n) in node.requests_per_shard.iter().enumerate() {
            requests.sample(&format!("{l},shard=\"{shard}\""), *n);
        }
        requests.sample(&format!("{l},shard=\"other\""), node.requests_other);
    }
    out.per_node(
        "node_errors_total",
        "counter",
        "Attempts that failed per node.",
        nodes(),
        |n| n.errors,
    );
    out.latency(
        "node_latency_seconds",
        "Latency of attempts per node.",
        nodes().map(|(node, l)| (l.as_str(), &node.latency)),
    );
    let opened = out.family(
        "connections_opened_total",
        "counter",
        "Connections established per node, by the port used.",
    );
    for (node, l) in nodes() {
        opened.sample(
            &format!("{l},port=\"shard_aware\""),
            node.pool.opened_shard_aware,
        );
        opened.sample(&format!("{l},port=\"regular\""), node.pool.opened_regular);
    }
    out.per_node(
        "shard_aware_failures_total",
        "counter",
        "Shard-aware port attempts that could not connect.",
        nodes(),
        |n| n.pool.shard_aware_failures,
    );
    out.per_node(
        "nat_detections_total",
        "counter",
        "Shard-aware connections that landed on another shard (NAT).",
        nodes(),
        |n| n.pool.nat_detections,
    );
    out.text
}

fn node_labels(node: &NodeMetrics) -> String {
    format!(
        "node=\"{}\",datacenter=\"{}\",rack=\"{}\"",
        escape(&node.address.to_string()),
        escape(&node.datacenter),
        escape(&node.rack)
    )
}

/// A label value as the text format wants it.
fn escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

#[derive(Default)]
struct Exposition {
    text: String,
    name: String,
}

impl Exposition {
    /// Starts a metric family; its samples follow.
    fn family(&mut self, name: &str, kind: &str, help: &str) -> &mut Self {
        self.name = format!("{PREFIX}_{name}");
        let _ = writeln!(self.text, "# HELP {} {help}", self.name);
        let _ = writeln!(self.text, "# TYPE {} {kind}", self.name);
        self
    }

    /// A family with one sample per node.
    fn per_node<'a>(
        &mut self,
        name: &str,
        kind: &str,
        help: &str,
        nodes: impl Iterator<Item = (&'a NodeMetrics, &'a String)>,
        value: impl Fn(&NodeMetrics) -> u64,
    ) {
        self.family(name, kind, help);
        for (node, labels) in nodes {
            self.sample(labels, value(node));
        }
    }

    fn sample(&mut self, labels: &str, value: u64) -> &mut Self {
        self.line("", labels, &value.to_string());
        self
    }

    fn line(&mut self, suffix: &str, labels: &str, value: &str) {
        let _ = if labels.is_empty() {
            writeln!(self.text, "{}{suffix} {value}", self.name)
        } else {
            writeln!(self.text, "{}{suffix}{{{labels}}} {value}", self.name)
        };
    }

    /// A summary family: quantiles in seconds, then sum and count.
    fn latency<'a>(
        &mut self,
        name: &str,
        help: &str,
        series: impl IntoIterator<Item = (&'a str, &'a LatencySummary)>,
    ) {
        self.family(name, "summary", help);
        for (labels, s) in series {
            let sep = if labels.is_empty() { "" } else { "," };
            for (q, us) in [
                ("0.5", s.p50_us),
                ("0.95", s.p95_us),
                ("0.99", s.p99_us),
                ("0.999", s.p999_us),
            ] {
                self.line("", &format!("{labels}{sep}quantile=\"{q}\""), &seconds(us));
            }
            self.line("_sum", labels, &seconds(s.sum_us));
            self.line("_count", labels, &s.count.to_string());
        }
    }
}

fn seconds(us: u64) -> String {
    format!("{}.{:06}", us / 1_000_000, us % 1_000_000)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::TabletStats;
    use crate::pool::PoolStats;
    use crate::session::metrics::{ErrorCounts, RetryDecisionCounts};

    fn sample() -> SessionMetrics {
        SessionMetrics {
            nodes: vec![NodeMetrics {
                address: "127.0.0.1:9042".parse().unwrap(),
                host_id: [0; 16],
                datacenter: "dc\"1".into(),
                rack: "r\\1".into(),
                up: true,
                nr_shards: Some(2),
                connections_per_shard: vec![1, 2],
                requests_per_shard: vec![5, 7],
                requests_other: 1,
                errors: 3,
                latency: LatencySummary {
                    count: 13,
                    sum_us: 1_300,
                    mean_us: 100,
                    p50_us: 90,
                    p95_us: 150,
                    p99_us: 1_500_000,
                    p999_us: 1_500_000,
                    max_us: 1_500_000,
                },
                shard_aware_port_in_use: true,
                pool: PoolStats {
                    opened_shard_aware: 2,
                    opened_regular: 1,
                    ..PoolStats::default()
                },
            }],
            tablets: TabletStats::default(),
            requests: 12,
            errors: 2,
            errors_by_kind: ErrorCounts {
                client_timeouts: 1,
                unavailable: 1,
                ..ErrorCounts::default()
            },
            retries: 1,
            retry_decisions: RetryDecisionCounts {
                downgraded: 1,
                ..RetryDecisionCounts::default()
            },
            speculative_executions: 5,
            speculative_wins: 2,
            in_flight: 4,
            latency: LatencySummary::default(),
            prepared_cached: 3,
        }
    }

    #[test]
    fn renders_families_with_labels_escaped() {
        let text = render(&sample());
        for line in [
            "# TYPE scylla_shard_requests_total counter",
            "scylla_shard_requests_total 12",
            "scylla_shard_errors_total{kind=\"client_timeout\"} 1",
            "scylla_shard_errors_total{kind=\"unavailable\"} 1",
            "scylla_shard_in_flight 4",
            "# TYPE scylla_shard_speculative_wins_total counter",
            "scylla_shard_speculative_executions_total 5",
            "scylla_shard_speculative_wins_total 2",
            "scylla_shard_retry_decisions_total{decision=\"downgraded\"} 1",
            "scylla_shard_retry_decisions_total{decision=\"rethrown\"} 0",
            "scylla_shard_connections{node=\"127.0.0.1:9042\",datacenter=\"dc\\\"1\",rack=\"r\\\\1\",shard=\"1\"} 2",
            "scylla_shard_node_requests_total{node=\"127.0.0.1:9042\",datacenter=\"dc\\\"1\",rack=\"r\\\\1\",shard=\"other\"} 1",
            "scylla_shard_node_latency_seconds{node=\"127.0.0.1:9042\",datacenter=\"dc\\\"1\",rack=\"r\\\\1\",quantile=\"0.99\"} 1.500000",
            "scylla_shard_node_latency_seconds_count{node=\"127.0.0.1:9042\",datacenter=\"dc\\\"1\",rack=\"r\\\\1\"} 13",
            "scylla_shard_request_latency_seconds_count 0",
            "scylla_shard_connections_opened_total{node=\"127.0.0.1:9042\",datacenter=\"dc\\\"1\",rack=\"r\\\\1\",port=\"regular\"} 1",
        ] {
            assert!(text.lines().any(|l| l == line), "missing {line:?} in\n{text}");
        }
        // Every sample belongs to the family declared last before it.
        let mut family = String::new();
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                family = rest.split(' ').next().unwrap().to_string();
            } else if !line.starts_with('#') {
                assert!(line.starts_with(&family), "{line} outside {family}");
            }
        }
    }
}
