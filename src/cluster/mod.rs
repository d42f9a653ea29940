//! Cluster metadata: topology from the system tables, keyspace replication,
//! and (with the control connection) keeping them current.

pub mod rows;
pub mod schema;
pub mod topology;
