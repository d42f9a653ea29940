//! Routing: token of a partition key, shard of a token, replicas of a token.
//!
//! Pure, allocation-light computations shared by the driver and the emulator.

pub mod plan;
pub mod replication;
pub mod sharder;
pub mod tablets;
pub mod token;
