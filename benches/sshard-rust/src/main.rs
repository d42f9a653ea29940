//! `sshard-rust`: libscylla_shard driven through its Rust session API
//! (`scylla_shard::session`), the core that the C API wraps. It measures the
//! library's own cost without the C boundary; the C client measures the
//! library as C programs use it.
//!
//! The workloads, timing and result line are `bench-core`'s, shared with
//! `scylla-peer bench`; this file only maps the driver calls.

use std::process::ExitCode;
use std::sync::Arc;

use bench_core::{insert_cql, select_cql, Driver, Options, Res};
use scylla_shard::protocol::Value;
use scylla_shard::session::{Prepared, Session, SessionConfig, Statement};

struct SshardRust {
    session: Session,
    insert: Option<Arc<Prepared>>,
    select: Option<Arc<Prepared>>,
}

fn prepared(p: &Option<Arc<Prepared>>) -> Res<Statement> {
    p.as_ref()
        .map(|p| Statement::prepared(Arc::clone(p)))
        .ok_or_else(|| "statement not prepared".into())
}

fn bigint(v: i64) -> Value {
    Value::Set(v.to_be_bytes().to_vec())
}

/// `host:port` into the contact point and the port every node listens on.
fn split_contact(contact: &str) -> Res<(String, u16)> {
    match contact.rsplit_once(':') {
        Some((host, port)) => Ok((host.to_string(), port.parse()?)),
        None => Ok((contact.to_string(), 9042)),
    }
}

impl Driver for SshardRust {
    const NAME: &'static str = "sshard-rust";

    async fn connect(opts: &Options) -> Res<Self> {
        let (host, port) = split_contact(&opts.contact)?;
        // Defaults otherwise: shard-aware port, one connection per shard,
        // tablet awareness, LOCAL_ONE, no compression.
        let config = SessionConfig {
            contact_points: vec![host],
            port,
            shard_aware_port: opts.shard_aware_port,
            ..SessionConfig::default()
        };
        Ok(SshardRust {
            session: Session::connect(config).await?,
            insert: None,
            select: None,
        })
    }

    fn pools_full(&self, opts: &Options) -> bool {
        let nodes = self.session.metrics().nodes;
        if opts.expect_nodes.is_some_and(|n| nodes.len() != n) || nodes.is_empty() {
            return false;
        }
        nodes.iter().all(|n| {
            n.up && n
                .nr_shards
                .is_some_and(|s| n.connections_per_shard.len() == usize::from(s))
                && n.connections_per_shard.iter().all(|&c| c >= 1)
        })
    }

    fn connections(&self) -> u64 {
        let nodes = self.session.metrics().nodes;
        nodes
            .iter()
            .flat_map(|n| n.connections_per_shard.iter())
            .map(|&c| c as u64)
            .sum()
    }

    async fn query(&self, cql: &str) -> Res<()> {
        self.session.execute(&Statement::simple(cql)).await?;
        Ok(())
    }

    async fn prepare(&mut self, keyspace: &str, table: &str) -> Res<()> {
        let insert = self.session.prepare(&insert_cql(keyspace, table)).await?;
        let select = self.session.prepare(&select_cql(keyspace, table)).await?;
        if insert.table().is_none() || select.table().is_none() {
            return Err("prepared statement has no routing metadata".into());
        }
        self.insert = Some(insert);
        self.select = Some(select);
        Ok(())
    }

    async fn insert(&self, key: i64, value: &str, tag: i64) -> Res<()> {
        let mut st = prepared(&self.insert)?;
        st.values = vec![
            bigint(key),
            Value::Set(value.as_bytes().to_vec()),
            bigint(tag),
        ];
        self.session.execute(&st).await?;
        Ok(())
    }

    async fn select(&self, key: i64) -> Res<Option<(String, i64)>> {
        let mut st = prepared(&self.select)?;
        st.values = vec![bigint(key)];
        let result = self.session.execute(&st).await?;
        let rows = result.rows.ok_or("SELECT returned no rows result")?;
        if rows.is_empty() || rows.metadata.column_count < 2 {
            return Ok(None);
        }
        match (rows.cell(0, 0), rows.cell(0, 1)) {
            (Some(v), Some(tag)) => {
                let v = String::from_utf8(v.to_vec())?;
                let tag: [u8; 8] = tag.try_into()?;
                Ok(Some((v, i64::from_be_bytes(tag))))
            }
            other => Err(format!("unexpected row {other:?}").into()),
        }
    }

    fn diagnostics(&self) -> bench_core::serde_json::Value {
        let state = self.session.cluster_state();
        let mut total = scylla_shard::pool::PoolStats::default();
        for pool in state.nodes().iter().filter_map(|n| n.pool()) {
            let s = pool.stats();
            total.attempts += s.attempts;
            total.failed_attempts += s.failed_attempts;
            total.opened_shard_aware += s.opened_shard_aware;
            total.opened_regular += s.opened_regular;
            total.connections_discarded += s.connections_discarded;
            total.shard_aware_failures += s.shard_aware_failures;
            total.nat_detections += s.nat_detections;
        }
        bench_core::serde_json::json!({
            "attempts": total.attempts,
            "failed_attempts": total.failed_attempts,
            "opened_shard_aware": total.opened_shard_aware,
            "opened_regular": total.opened_regular,
            "discarded": total.connections_discarded,
            "shard_aware_failures": total.shard_aware_failures,
            "nat_detections": total.nat_detections,
        })
    }

    async fn close(&self) {
        self.session.close().await;
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    bench_core::main::<SshardRust>(&args)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contact_splits_into_host_and_port() {
        assert_eq!(
            split_contact("127.0.0.7:19999").unwrap(),
            ("127.0.0.7".to_string(), 19999)
        );
        assert_eq!(
            split_contact("localhost").unwrap(),
            ("localhost".to_string(), 9042)
        );
        assert!(split_contact("h:x").is_err());
    }
}
