//! The session: the driver's public Rust API (connect, prepare, execute,
//! batch, paging, close), on top of the pools, cluster metadata and routing.

mod types;

pub use types::{Batch, DriverError, Prepared, Query, QueryResult, SessionConfig, Statement};
