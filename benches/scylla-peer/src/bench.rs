//! Subcommand `bench`: the official `scylla` crate as a benchmark client.
//! The workloads, timing and result line are `bench-core`'s, shared with
//! `sshard-rust`; this file only maps the driver calls.

use bench_core::{insert_cql, select_cql, Driver, Options, Res};
use scylla::client::session::Session;
use scylla::client::session_builder::SessionBuilder;
use scylla::statement::prepared::PreparedStatement;
use scylla::statement::Consistency;

use crate::node_views;

pub struct ScyllaRust {
    session: Session,
    insert: Option<PreparedStatement>,
    select: Option<PreparedStatement>,
}

fn prepared(p: &Option<PreparedStatement>) -> Res<&PreparedStatement> {
    p.as_ref().ok_or_else(|| "statement not prepared".into())
}

impl Driver for ScyllaRust {
    const NAME: &'static str = "scylla-rust";

    async fn connect(opts: &Options) -> Res<Self> {
        // Defaults otherwise: token-aware, shard-aware, no compression.
        let session = SessionBuilder::new()
            .known_node(&opts.contact)
            .disallow_shard_aware_port(!opts.shard_aware_port)
            .build()
            .await?;
        Ok(ScyllaRust {
            session,
            insert: None,
            select: None,
        })
    }

    fn pools_full(&self, opts: &Options) -> bool {
        let views = node_views(&self.session);
        if opts.expect_nodes.is_some_and(|n| views.len() != n) || views.is_empty() {
            return false;
        }
        if views.iter().any(|v| v.nr_shards.is_none() || !v.connected) {
            return false;
        }
        let shards: u64 = views
            .iter()
            .filter_map(|v| v.nr_shards)
            .map(u64::from)
            .sum();
        self.session.get_metrics().get_total_connections() >= shards
    }

    fn connections(&self) -> u64 {
        self.session.get_metrics().get_total_connections()
    }

    async fn query(&self, cql: &str) -> Res<()> {
        self.session.query_unpaged(cql, ()).await?;
        Ok(())
    }

    async fn prepare(&mut self, keyspace: &str, table: &str) -> Res<()> {
        let mut insert = self.session.prepare(insert_cql(keyspace, table)).await?;
        let mut select = self.session.prepare(select_cql(keyspace, table)).await?;
        for p in [&mut insert, &mut select] {
            if !p.is_token_aware() {
                return Err("prepared statement is not token aware".into());
            }
            p.set_consistency(Consistency::LocalOne);
        }
        self.insert = Some(insert);
        self.select = Some(select);
        Ok(())
    }

    async fn insert(&self, key: i64, value: &str, tag: i64) -> Res<()> {
        self.session
            .execute_unpaged(prepared(&self.insert)?, (key, value, tag))
            .await?;
        Ok(())
    }

    async fn select(&self, key: i64) -> Res<Option<(String, i64)>> {
        let result = self
            .session
            .execute_unpaged(prepared(&self.select)?, (key,))
            .await?;
        Ok(result
            .into_rows_result()?
            .maybe_first_row::<(String, i64)>()?)
    }

    async fn close(&self) {
        // The scylla crate closes its connections when the session drops.
    }
}
