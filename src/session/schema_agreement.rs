//! Schema agreement: after a schema change the session waits (bounded)
//! until every node that is up reports the same schema version, as the
//! drivers do, so that the next statement finds the new table or column
//! whichever node coordinates it.

use std::time::Duration;

use tokio::time::Instant;

use crate::cluster::rows::NamedRows;
use crate::cluster::ClusterState;
use crate::protocol::response::ResultBody;
use crate::protocol::{QueryParameters, Request, Response};

const VERSION_QUERY: &str = "SELECT schema_version FROM system.local WHERE key = 'local'";
/// Pause between two rounds of asking.
const POLL: Duration = Duration::from_millis(100);

/// Waits until the nodes that are up agree, at most `bound`; whether they
/// did. A node that cannot be asked does not block agreement (it is down
/// as far as requests go).
pub async fn wait(state: &ClusterState, bound: Duration) -> bool {
    let deadline = Instant::now() + bound;
    loop {
        if versions_agree(state, deadline).await {
            return true;
        }
        if Instant::now() + POLL >= deadline {
            return false;
        }
        tokio::time::sleep(POLL).await;
    }
}

async fn versions_agree(state: &ClusterState, deadline: Instant) -> bool {
    let mut asks = tokio::task::JoinSet::new();
    for node in state.nodes().iter().filter(|n| n.up) {
        let Some(conn) = node.pool().and_then(|p| p.connection(None)) else {
            continue;
        };
        let budget = deadline.saturating_duration_since(Instant::now());
        asks.spawn(async move {
            let request = Request::Query {
                query: VERSION_QUERY.to_owned(),
                params: QueryParameters::default(),
            };
            let frame = conn
                .send_with_timeout(&request, &Default::default(), budget)
                .await
                .ok()?;
            match frame.response {
                Response::Result(ResultBody::Rows(rows)) => {
                    NamedRows::new(&rows).uuid(0, "schema_version")
                }
                _ => None,
            }
        });
    }
    let mut first = None;
    let mut agree = true;
    while let Some(joined) = asks.join_next().await {
        if let Ok(Some(version)) = joined {
            match first {
                None => first = Some(version),
                Some(v) if v != version => agree = false,
                Some(_) => {}
            }
        }
    }
    agree
}
