//! Cluster metadata: topology from the system tables, keyspace replication,
//! and (with the control connection) keeping them current.
//!
//! `Cluster` is the handle the session uses: an atomically swapped
//! [`ClusterState`] snapshot for the request path, the tablet map, and a
//! background worker (`worker.rs`) that owns the control connection and
//! the node pools.

pub mod control;
mod endpoint;
pub mod name_hash;
pub mod cql_type;
pub mod host_policy;
pub mod node;
pub mod rows;
pub mod schema;
pub mod state;
mod tablet_learning;
pub mod tablets;
pub mod topology;
mod worker;

pub use control::{ControlConnection, Metadata, MetadataError, OpenFailure};
pub use host_policy::{AddressTranslator, HostFilter, HostPolicy, StaticAddressMap};
pub use node::{NodeRuntime, ShardCounters};
pub use state::{ClusterState, Node};
pub use tablets::{
    Admission, Applied, LearningTicket, Lookup, Region, TableTablets, Tablet, TabletMap,
    TabletStats,
};
pub use worker::{Cluster, ClusterConfig};

/// Canonical text form of a UUID (for logs and metrics).
pub fn format_uuid(bytes: &[u8; 16]) -> String {
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn uuid_text() {
        let mut id = [0u8; 16];
        id[6] = 0x40;
        id[8] = 0x80;
        id[15] = 1;
        assert_eq!(
            super::format_uuid(&id),
            "00000000-0000-4000-8000-000000000001"
        );
    }
}
